//! Forwarding a caller's request to a WeChat API with the account's access_token, for
//! the internal API's proxy and the WeChat-compatible API: the body read under the
//! proxy's limit, the answer returned as WeChat gave it (JSON, or a file with its
//! content type and disposition).

use axum::body::{to_bytes, Body, Bytes};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Ctx;
use crate::error::Error;

/// Why a request could not be forwarded.
#[derive(Debug)]
pub enum ForwardError {
    /// Not a plain WeChat API path under `api_base` (400).
    Path(String),
    /// Over `api.proxy_max_body_bytes` (413).
    TooLarge(usize),
    /// The body did not arrive in time (408).
    Timeout,
    /// The upstream call failed.
    Upstream(Error),
}

/// The request's body, up to the proxy's limit.
pub async fn read_body(ctx: &Ctx, body: Body) -> Result<Bytes, ForwardError> {
    let limit = ctx.config.api.proxy_max_body_bytes;
    to_bytes(body, limit)
        .await
        .map_err(|e| match super::body::body_error_status(&e) {
            StatusCode::PAYLOAD_TOO_LARGE => ForwardError::TooLarge(limit),
            _ => ForwardError::Timeout,
        })
}

/// A caller's request, checked and read, ready to be sent with a token.
struct Prepared {
    method: Method,
    path: String,
    /// The query without the caller's own `access_token`.
    query: Vec<(String, String)>,
    body: Option<(Bytes, Option<String>)>,
}

/// Checks `path` (a plain WeChat API path, not one that takes a user's token) and reads
/// the body under the proxy's limit.
async fn prepare(
    ctx: &Ctx,
    method: Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Prepared, ForwardError> {
    ctx.upstream
        .check_path(path)
        .map_err(|e| ForwardError::Path(e.to_string()))?;
    if wxgate_proto::api::under_prefix(path, wxgate_proto::api::USER_TOKEN_PREFIXES) {
        // These take a user's token: the app's must not be put on them, and their
        // token errors are about the user's.
        return Err(ForwardError::Path(format!(
            "{path} takes a user's access_token, not the app's: call WeChat with the user's token (for OAuth users, /wx/auth remembers them)"
        )));
    }
    let body = read_body(ctx, body).await?;
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .filter(|(k, _)| k != "access_token")
            .collect();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = (!body.is_empty() || method != Method::GET).then_some((body, content_type));
    Ok(Prepared {
        method,
        path: path.to_owned(),
        query,
        body,
    })
}

/// WeChat's answer as it came: status, body, content type and disposition.
fn respond(answer: crate::upstream::RawAnswer) -> Response {
    let mut resp = (
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY),
        answer.body,
    )
        .into_response();
    for (name, value) in [
        (header::CONTENT_TYPE, answer.content_type),
        (header::CONTENT_DISPOSITION, answer.content_disposition),
    ] {
        if let Some(v) = value.and_then(|v| v.parse().ok()) {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}

/// Forwards to `path` with `account`'s token (the caller's own `access_token`, if any,
/// is dropped), retried once after a token error; WeChat's answer as it came.
pub async fn forward(
    ctx: &Ctx,
    account: &str,
    method: Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ForwardError> {
    let p = prepare(ctx, method, path, query, headers, body).await?;
    let answer = ctx
        .credentials
        .call_with_token(account, p.method, &p.path, &p.query, p.body)
        .await
        .map_err(ForwardError::Upstream)?;
    Ok(respond(answer))
}
