//! The internal API's WeChat Pay routes (an API key, as for the other `/api/v1` routes;
//! a key limited to accounts needs `pay:NAME` among them):
//!
//! - `ANY /api/v1/pay/{name}/v3/{*path}`: the signing proxy. The call is sent to WeChat
//!   Pay signed with the merchant's key, WeChat Pay's answer is verified, and passed
//!   back as it came; the business's servers never hold the merchant key. Sensitive
//!   fields (encrypted with WeChat Pay's key) are the caller's to encrypt and decrypt.
//! - `GET /api/v1/pay/{name}/status`: the keys and certificates with their expiry, and
//!   the last notifications (ids and outcomes, no personal data).

use axum::body::{to_bytes, Body};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::api::key_of;
use super::{ApiError, AppState};

/// A request body the proxy passes on: WeChat Pay's v3 calls are small JSON.
const MAX_BODY: usize = 256 << 10;

fn authorize<'s>(
    s: &'s AppState,
    headers: &HeaderMap,
    name: &str,
) -> Result<&'s crate::pay::Merchant, ApiError> {
    let key = key_of(s, headers)?;
    let scope = format!("pay:{name}");
    if !key.accounts.is_empty() && !key.accounts.contains(&scope) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this API key may not use {scope:?}"),
        ));
    }
    s.pay.merchant(name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_pay",
            format!("no [pay.{name}]"),
        )
    })
}

/// Plain path segments only: the proxy must not be steered off `/v3/`.
fn plain(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
}

/// `ANY /api/v1/pay/{name}/v3/{*path}`
pub async fn proxy(
    State(s): State<AppState>,
    Path((name, path)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let m = authorize(&s, &headers, &name)?;
    if !plain(&path) {
        return Err(ApiError::bad_request(
            "the path must be plain segments under /v3/",
        ));
    }
    let body = to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the body is over 256 KiB",
        )
    })?;
    let target = match uri.query() {
        Some(q) => format!("/v3/{path}?{q}"),
        None => format!("/v3/{path}"),
    };
    let answer = m
        .call_signed(method.as_str(), &target, body, s.ctx.now(), true)
        .await?;
    let mut r = (
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY),
        answer.body,
    )
        .into_response();
    if let Some(ct) = answer.content_type.and_then(|c| c.parse().ok()) {
        r.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    Ok(r)
}

/// `GET /api/v1/pay/{name}/status`
pub async fn status(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let m = authorize(&s, &headers, &name)?;
    let keys: Vec<_> = m
        .keys()
        .into_iter()
        .map(|(id, kind, expires_at)| json!({ "id": id, "kind": kind, "expires_at": expires_at }))
        .collect();
    let recent: Vec<_> = s
        .pay
        .recent()
        .into_iter()
        .filter(|r| r.pay == name)
        .collect();
    Ok(Json(json!({
        "pay": name,
        "mchid": m.cfg.mchid,
        "mode": if m.cfg.forward.is_some() { "drop_in" } else { "json" },
        "keys": keys,
        "recent": recent,
    }))
    .into_response())
}
