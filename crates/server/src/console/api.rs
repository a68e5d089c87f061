//! The console's JSON API: the overview (paged, searchable), traffic, problems, and the two
//! changes it allows (a forced refresh, a quota clear), each behind the CSRF token.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use wxgate_proto::api::openapi::ClearQuota;

use super::{authorized, authorized_change, hardened, refusal, ConsoleState, Denied};
use super::{fleet, problems};
use crate::credentials::Kind;
use crate::store::keys;

/// What the overview lists: a page of accounts, failing first, matching a search.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct OverviewQuery {
    /// Part of an account's name or appid.
    q: String,
    /// 0-based.
    page: usize,
    per_page: Option<usize>,
}

/// Accounts on a page of the console (at most [`MAX_PER_PAGE`]).
pub(super) const PER_PAGE: usize = 20;

pub(super) const MAX_PER_PAGE: usize = 100;

/// `GET /console/api/overview?q=&page=&per_page=`: a summary of every account's
/// credentials by state (ok, due, failing), and a page of the accounts matching `q`
/// (name or appid), failing first, each with its credentials (lifetimes, digests,
/// fetches today, last error, who holds a refresh lock); the store's health and the
/// fleet. With thousands of accounts the page keeps the answer (and the store reads it
/// costs) small.
pub(super) async fn overview(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    query: Result<axum::extract::Query<OverviewQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (c, cookie) = match authorized(&s, &headers).await {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let q = query.map(|q| q.0).unwrap_or_default();
    let ctx = &s.ctx;
    let store = ctx.store.as_ref();
    let needle = q.q.trim().to_lowercase();
    let mut listed: Vec<(crate::credentials::CredentialState, String)> = ctx
        .credentials
        .states()
        .into_iter()
        .filter(|(name, _)| {
            needle.is_empty()
                || name.contains(&needle)
                || ctx
                    .credentials
                    .account(name)
                    .is_ok_and(|a| a.appid.to_lowercase().contains(&needle))
        })
        .map(|(name, state)| (state, name))
        .collect();
    listed.sort();
    let per_page = q.per_page.unwrap_or(PER_PAGE).clamp(1, MAX_PER_PAGE);
    let matched = listed.len();
    let mut accounts = Vec::new();
    for (state, name) in listed
        .iter()
        .skip(q.page.saturating_mul(per_page))
        .take(per_page)
    {
        let name = name.as_str();
        let Ok(config) = ctx.credentials.account(name) else {
            continue;
        };
        let statuses = ctx.credentials.status(name).await.unwrap_or_default();
        let mut credentials = Vec::new();
        for st in statuses {
            let lock = keys::refresh_lock(name, st.kind.name());
            let holder = store.get(&lock).await.ok().flatten();
            let mut v = serde_json::to_value(&st).unwrap_or_default();
            v["name"] = json!(st.kind.name());
            v["lock_holder"] = json!(holder);
            credentials.push(v);
        }
        accounts.push(json!({
            "name": name,
            "appid": config.appid,
            "kind": config.kind,
            "state": state.name(),
            "credentials": credentials,
        }));
    }
    let mut summary = serde_json::Map::new();
    for (kind, counts) in ctx.credentials.by_state() {
        summary.insert(
            kind.name().to_owned(),
            json!({ "failing": counts[0], "due": counts[1], "ok": counts[2] }),
        );
    }
    let store_report = crate::store::report(store, ctx.credentials.account_names()).await;
    let fleet = fleet::instances(store).await.unwrap_or_default();
    hardened(
        Json(json!({
            "now": ctx.now(),
            "instance": ctx.credentials.owner(),
            "daily_quota": ctx.credentials.daily_quota(),
            "summary": summary,
            "total_accounts": ctx.credentials.account_names().count(),
            "matched": matched,
            "page": q.page,
            "pages": matched.div_ceil(per_page),
            "accounts": accounts,
            "store": store_report,
            "fleet": fleet,
            "ip_not_whitelisted": ctx.credentials.ip_refusals(),
            "pay": s.pay.overview(),
            "components": s.components.overview(ctx.now()).await,
            "csrf": c.keys.csrf(&cookie),
        }))
        .into_response(),
    )
}

/// `GET /console/api/traffic`: the last hour, a point a minute.
pub(super) async fn traffic(State(s): State<ConsoleState>, headers: HeaderMap) -> Response {
    match authorized(&s, &headers).await {
        Ok((c, _)) => hardened(Json(c.rings.snapshot()).into_response()),
        Err(r) => r.into_response(),
    }
}

/// `GET /console/api/problems`: the last 100 warnings, newest first.
pub(super) async fn recent_problems(State(s): State<ConsoleState>, headers: HeaderMap) -> Response {
    match authorized(&s, &headers).await {
        Ok(_) => hardened(Json(json!({ "problems": problems::recent() })).into_response()),
        Err(r) => r.into_response(),
    }
}

#[derive(Deserialize)]
pub(super) struct Target {
    account: String,
    /// `access_token`, `jsapi` or `wx_card`.
    #[serde(default)]
    kind: Option<String>,
}

pub(super) fn kind_of(name: Option<&str>) -> Option<Kind> {
    match name.unwrap_or("access_token") {
        "access_token" => Some(Kind::AccessToken),
        other => Kind::from_ticket_type(other.strip_prefix("ticket:").unwrap_or(other)),
    }
}

/// The start of a route that changes something: the session, the CSRF token, and the
/// account (and kind) the body names.
pub(super) async fn change_target(
    s: &ConsoleState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Target, Denied> {
    authorized_change(s, headers).await?;
    serde_json::from_slice::<Target>(body).map_err(|_| {
        Denied::Refused(
            StatusCode::BAD_REQUEST,
            "send {\"account\"} (and \"kind\" for a refresh)",
        )
    })
}

/// `POST /console/api/refresh` `{"account", "kind"}`: the same compare-and-refresh as
/// `/api/v1/{account}/token/refresh`, naming the value this instance holds as stale (so
/// a fleet that already moved on does not fetch again).
pub(super) async fn force_refresh(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let t = match change_target(&s, &headers, &body).await {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    let Some(kind) = kind_of(t.kind.as_deref()) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "kind is access_token, jsapi or wx_card",
        );
    };
    let central = &s.ctx.credentials;
    if central.account(&t.account).is_err() {
        return refusal(StatusCode::NOT_FOUND, "unknown account");
    }
    let current = match central.current(&t.account, kind) {
        Some(c) => c,
        None => match central.get(&t.account, kind).await {
            Ok(c) => c,
            Err(e) => return refusal(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        },
    };
    tracing::info!(account = %t.account, kind = kind.name(), "console: forced refresh");
    match central
        .refresh_stale(&t.account, kind, &current.value)
        .await
    {
        Ok(c) => hardened(
            Json(json!({
                "ok": true,
                "fetched_at": c.fetched_at,
                "expires_at": c.expires_at,
                "digest": crate::credentials::digest(&c.value),
            }))
            .into_response(),
        ),
        Err(e) => refusal(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// `POST /console/api/quota/clear` `{"account"}`: WeChat's `/cgi-bin/clear_quota`
/// (10 times a month), as `wxgate quota clear` calls it.
pub(super) async fn clear_quota(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let t = match change_target(&s, &headers, &body).await {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    let central = &s.ctx.credentials;
    let Ok(appid) = central.account(&t.account).map(|a| a.appid.clone()) else {
        return refusal(StatusCode::NOT_FOUND, "unknown account");
    };
    tracing::info!(account = %t.account, "console: clear quota");
    match central.call_api(&t.account, &ClearQuota { appid }).await {
        Ok(_) => hardened(Json(json!({ "ok": true })).into_response()),
        // WeChat's refusal (48006: ten a month) is an answer to show, not a failure.
        Err(e) => {
            let mut body: Value = json!({ "ok": false, "error": e.to_string() });
            if let Some(code) = e.errcode() {
                body["errcode"] = json!(code.code());
            }
            hardened(Json(body).into_response())
        }
    }
}
