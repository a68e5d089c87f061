//! The internal API for the business's other servers: tokens, tickets, forced refresh,
//! status and the token-injecting proxy. Every call needs an API key from the config as
//! `Authorization: Bearer KEY`; a missing or wrong key is a 401 and nothing else happens.

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};
use crate::credentials::Kind;
use crate::web::forward::{forward, ForwardError};
use wxgate_proto::api::message::SubscribeSend;
use wxgate_proto::api::wxa::{GenerateScheme, GenerateUrlLink, GetWxaCodeUnlimit};
use wxgate_proto::api::{Endpoint, WithAccessToken};

/// The configured key the request presents as `Authorization: Bearer KEY`, checked
/// against every key (constant time, no early exit), or 401.
pub(super) fn key_of<'s>(
    state: &'s AppState,
    headers: &HeaderMap,
) -> Result<&'s crate::config::ApiKeyConfig, ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let mut matched = None;
    for k in &state.ctx.config.api.keys {
        let key = k.key.expose().as_bytes();
        let same = key.len() == presented.len() && bool::from(key.ct_eq(presented.as_bytes()));
        if same {
            matched = Some(k);
        }
    }
    matched.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong API key",
        )
    })
}

/// Checks the bearer key ([`key_of`]) and that the key may use the account.
fn authorize(state: &AppState, headers: &HeaderMap, account: &str) -> Result<(), ApiError> {
    let key = key_of(state, headers)?;
    if !key.accounts.is_empty() && !key.accounts.iter().any(|a| a == account) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this API key may not use account {account:?}"),
        ));
    }
    state.ctx.credentials.account(account)?;
    Ok(())
}

/// An API key for an authorizer's account (`{component}:{appid}`): all accounts, or
/// `component:NAME`, or the account itself among its `accounts`.
fn authorize_authorizer(
    state: &AppState,
    headers: &HeaderMap,
    account: &str,
    component: &str,
) -> Result<(), ApiError> {
    let key = key_of(state, headers)?;
    let scope = format!("component:{component}");
    if !key.accounts.is_empty()
        && !key.accounts.contains(&scope)
        && !key.accounts.iter().any(|a| a == account)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this API key may not use account {account:?}"),
        ));
    }
    Ok(())
}

/// The key check of the routes that also serve a third-party platform's merchants
/// (`{component}:{appid}`, whose credentials the central control asks the component
/// for): [`authorize_authorizer`] for those, [`authorize`] for the others.
fn authorize_any(state: &AppState, headers: &HeaderMap, account: &str) -> Result<(), ApiError> {
    match state.components.split_account(account) {
        Some((component, _)) => authorize_authorizer(state, headers, account, &component.name),
        None => authorize(state, headers, account),
    }
}

/// `GET /api/v1/{account}/token`
pub async fn token(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(account): Path<String>,
) -> Result<Response, ApiError> {
    authorize_any(&s, &headers, &account)?;
    let c = s.ctx.credentials.get(&account, Kind::AccessToken).await?;
    let now = s.ctx.now();
    Ok(Json(json!({ "access_token": c.value, "expires_in": c.expires_in(now) })).into_response())
}

#[derive(Deserialize)]
pub struct RefreshBody {
    stale: String,
}

/// `POST /api/v1/{account}/token/refresh {"stale": "..."}`: refreshes only if `stale`
/// is still the current token and WeChat confirms it dead; answers the current token
/// either way.
pub async fn refresh(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(account): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, &account)?;
    let b: RefreshBody = serde_json::from_slice(&body).map_err(|_| {
        ApiError::bad_request("the body must be {\"stale\": \"<the token that was rejected>\"}")
    })?;
    // Refreshed only if WeChat confirms the token dead: a forced refresh ends the
    // token for every holder, so a caller's word is not enough.
    let credentials = &s.ctx.credentials;
    let asked = std::time::Instant::now();
    let c = match credentials
        .refresh_if_dead(&account, &b.stale, asked)
        .await?
    {
        Some(fresh) => fresh,
        None => credentials.get(&account, Kind::AccessToken).await?,
    };
    let now = s.ctx.now();
    Ok(Json(json!({ "access_token": c.value, "expires_in": c.expires_in(now) })).into_response())
}

/// `GET /api/v1/{account}/ticket/{jsapi|wx_card}`
pub async fn ticket(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((account, ticket_type)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, &account)?;
    let kind = Kind::from_ticket_type(&ticket_type).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_ticket_type",
            "ticket type is jsapi or wx_card",
        )
    })?;
    let c = s.ctx.credentials.get(&account, kind).await?;
    let now = s.ctx.now();
    Ok(Json(json!({ "ticket": c.value, "expires_in": c.expires_in(now) })).into_response())
}

/// `GET /api/v1/{account}/status`: token age, expiry and fetches today, never values.
pub async fn status(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(account): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, &account)?;
    let credentials = s.ctx.credentials.status(&account).await?;
    let appid = s.ctx.credentials.account(&account)?.appid.clone();
    Ok(Json(json!({
        "account": account,
        "appid": appid,
        "daily_quota": s.ctx.credentials.daily_quota(),
        "credentials": credentials,
    }))
    .into_response())
}

/// `ANY /api/v1/{account}/proxy/{*path}`: forwards method, query and body to `api_base`
/// with the account's access_token, retries once on a token error, and returns WeChat's
/// answer unchanged: JSON, or a file (an image from `/wxa/getwxacodeunlimit`, a
/// download from `/cgi-bin/media/get`) with its content type and disposition.
///
/// The body is read only after the key is checked, up to `api.proxy_max_body_bytes`
/// (WeChat's largest uploads are 10 MB media files, multipart, passed through as
/// sent); the path must be plain WeChat API segments and stay under `api_base`.
pub async fn proxy(
    State(s): State<AppState>,
    headers: HeaderMap,
    method: Method,
    Path((account, path)): Path<(String, String)>,
    uri: Uri,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    authorize_any(&s, &headers, &account)?;
    // The path as sent, before axum decoded it: `cgi-bin%2Fuser` would decode into two
    // segments, and README promises no percent-encoding in a proxied path.
    let raw = uri.path().splitn(5, '/').nth(4).unwrap_or_default();
    if raw.contains('%') {
        return Err(ApiError::bad_request(
            "a proxied path is plain segments: no percent-encoding (%2F included)",
        ));
    }
    let path = format!("/{path}");
    // A merchant's calls go with its authorizer token: the central control asks the
    // component for it, and drops and replaces it on a token error like any account's.
    let answer = forward(
        &s.ctx,
        &account,
        method,
        &path,
        query.as_deref(),
        &headers,
        body,
    )
    .await;
    answer.map_err(|e| match e {
        ForwardError::Path(why) => ApiError::bad_request(why),
        ForwardError::TooLarge(limit) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is over api.proxy_max_body_bytes ({limit} bytes)"),
        ),
        ForwardError::Timeout => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "the body did not arrive in time",
        ),
        ForwardError::Upstream(e) => e.into(),
    })
}

#[derive(Deserialize)]
pub struct FollowersQuery {
    #[serde(default)]
    info: Option<String>,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    next_openid: Option<String>,
}

/// `GET /api/v1/{account}/followers?info=1&lang=zh_CN&next_openid=`: every follower as
/// JSON lines (see `crate::followers`).
pub async fn followers(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(account): Path<String>,
    axum::extract::Query(q): axum::extract::Query<FollowersQuery>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, &account)?;
    let export = crate::followers::Export {
        account,
        info: q.info.as_deref().is_some_and(|v| v == "1" || v == "true"),
        lang: q.lang.unwrap_or_else(|| "zh_CN".into()),
        next_openid: q.next_openid.unwrap_or_default(),
    };
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        crate::followers::stream(s.ctx.clone(), export),
    )
        .into_response())
}

/// `POST /api/v1/{account}/wxa/code` with the body of `getwxacodeunlimit` (scene, page,
/// width, ...): the PNG itself, or WeChat's JSON error with a 400. An identical request
/// is answered from the store for `api.wxa_code_cache_secs` (codes are permanent, and
/// WeChat limits the calls).
pub async fn wxa_code(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(account): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    use base64::Engine;
    authorize(&s, &headers, &account)?;
    let ctx = &s.ctx;
    let body = crate::web::forward::read_body(ctx, body)
        .await
        .map_err(|_| ApiError::bad_request("the body is too large or too slow"))?;
    let request: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("the body must be getwxacodeunlimit's JSON"))?;
    let canonical = serde_json::to_vec(&request).unwrap_or_default();
    let digest = wxgate_proto::signature::hex(&<sha2::Sha256 as sha2::Digest>::digest(&canonical));
    let key = crate::store::keys::wxa_code(&account, &digest);
    let png = |bytes: Vec<u8>, cached: bool| {
        (
            [
                (header::CONTENT_TYPE, "image/png"),
                (
                    header::HeaderName::from_static("x-wxgate-cache"),
                    if cached { "hit" } else { "miss" },
                ),
            ],
            bytes,
        )
            .into_response()
    };
    let cache_secs = ctx.config.api.wxa_code_cache_secs;
    if cache_secs > 0 {
        if let Ok(Some(stored)) = ctx.store.get(&key).await {
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(stored) {
                return Ok(png(bytes, true));
            }
        }
    }
    let answer = ctx
        .credentials
        .call_with_token(
            &account,
            Method::POST,
            <GetWxaCodeUnlimit as Endpoint>::PATH,
            &[],
            Some((Bytes::from(canonical), Some("application/json".into()))),
        )
        .await?;
    let is_image = answer
        .content_type
        .as_deref()
        .is_some_and(|ct| ct.starts_with("image/"));
    if !is_image {
        // WeChat's JSON error, as it came, with a 400.
        return Ok((
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            answer.body,
        )
            .into_response());
    }
    if cache_secs > 0 {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&answer.body);
        let ttl = std::time::Duration::from_secs(cache_secs);
        if let Err(e) = ctx.store.set(&key, &encoded, Some(ttl)).await {
            tracing::warn!(account, error = %e, "wxa code not cached");
        }
    }
    Ok(png(answer.body.to_vec(), false))
}

/// WeChat's refusal of a caller's request (bad arguments, a user who did not accept):
/// a 400 carrying the errcode.
fn refused(path: &str, code: wxgate_proto::ErrCode, errmsg: &str) -> ApiError {
    let mut e = ApiError::bad_request(format!("{path}: {code} ({errmsg})"));
    e.errcode = Some(code.code());
    e
}

/// An API call of a Mini Program link kind: WeChat's JSON answer, or its error with a
/// 400 (a bad page path, 40165) or a 503.
async fn wxa_link<E: WithAccessToken>(
    s: &AppState,
    headers: &HeaderMap,
    account: &str,
    body: Bytes,
    make: impl FnOnce(serde_json::Value) -> E,
) -> Result<Response, ApiError> {
    authorize(s, headers, account)?;
    let request: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("the body must be JSON"))?;
    match s.ctx.credentials.call_api(account, &make(request)).await {
        Ok(answer) => Ok(Json(answer).into_response()),
        Err(crate::Error::WeChat { code, errmsg, .. }) => Err(refused(E::PATH, code, &errmsg)),
        Err(e) => Err(e.into()),
    }
}

/// `POST /api/v1/{account}/wxa/scheme` with `generatescheme`'s JSON: `{openlink}`.
pub async fn wxa_scheme(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(account): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    wxa_link(&s, &headers, &account, body, GenerateScheme).await
}

/// `POST /api/v1/{account}/wxa/urllink` with `generate_urllink`'s JSON: `{url_link}`.
pub async fn wxa_urllink(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(account): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    wxa_link(&s, &headers, &account, body, GenerateUrlLink).await
}

/// `POST /api/v1/{account}/subscribe/send {touser, template_id, page, data,
/// miniprogram_state, lang}`: a subscribe message through the central token. WeChat's
/// refusals are 400s with the errcode (43101: the user has not accepted this template,
/// 47003: data does not fit it). Counted by template (those the account names in
/// `subscribe_templates`, else `other`) and result.
pub async fn subscribe_send(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(account): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&s, &headers, &account)?;
    let message: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("the body must be subscribe/send's JSON"))?;
    let template = message
        .get("template_id")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let label = s
        .ctx
        .account(&account)?
        .subscribe_templates
        .iter()
        .find(|t| *t == template)
        .cloned()
        .unwrap_or_else(|| "other".to_owned());
    let result = s
        .ctx
        .credentials
        .call_api(&account, &SubscribeSend(message))
        .await;
    let outcome = match &result {
        Ok(_) => "sent".to_owned(),
        Err(e) => match e.errcode() {
            None => "error".to_owned(),
            Some(wxgate_proto::ErrCode::Other(_)) => "other".to_owned(),
            Some(known) => known.code().to_string(),
        },
    };
    metrics::counter!("wxgate_subscribe_sent_total", "account" => crate::metrics::account_label(&account), "template" => label, "result" => outcome)
        .increment(1);
    match result {
        Ok(ack) => Ok(Json(ack).into_response()),
        Err(crate::Error::WeChat { code, errmsg, .. }) => {
            Err(refused(SubscribeSend::PATH, code, &errmsg))
        }
        Err(e) => Err(e.into()),
    }
}
