//! The console's page and assets, and logging in and out: a session cookie for the admin
//! key (`session`), wrong keys charged to the sender.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::session;
use super::{console, hardened, refusal, ConsoleState};
use crate::web::limit::Client;

pub(super) fn asset(s: &ConsoleState, content_type: &'static str, body: &'static str) -> Response {
    if let Err(r) = console(s) {
        return r.into_response();
    }
    hardened(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

pub(super) async fn page(State(s): State<ConsoleState>) -> Response {
    asset(
        &s,
        "text/html; charset=utf-8",
        include_str!("../../assets/console/index.html"),
    )
}

pub(super) async fn script(State(s): State<ConsoleState>) -> Response {
    asset(
        &s,
        "application/javascript; charset=utf-8",
        include_str!("../../assets/console/console.js"),
    )
}

pub(super) async fn style(State(s): State<ConsoleState>) -> Response {
    asset(
        &s,
        "text/css; charset=utf-8",
        include_str!("../../assets/console/console.css"),
    )
}

#[derive(Deserialize)]
pub(super) struct Login {
    key: String,
}

/// `POST /console/login` `{"key"}`: the session cookie, or 401; 429 once the client's
/// address has spent its failed-authentication budget (`[rate_limit]`). The right key
/// always logs in: failures are charged to the address that failed, so nobody can lock
/// the operator out by sending wrong keys.
pub(super) async fn login(
    State(s): State<ConsoleState>,
    Client(client): Client,
    body: axum::body::Bytes,
) -> Response {
    let c = match console(&s) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let now = s.ctx.now();
    let Ok(Login { key }) = serde_json::from_slice::<Login>(&body) else {
        return refusal(StatusCode::BAD_REQUEST, "send {\"key\": \"...\"}");
    };
    if !c.keys.is_admin_key(&key) {
        if s.ctx.limits.failed_auth("/console/login", client).is_err() {
            return refusal(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed logins from this address: wait a minute",
            );
        }
        crate::sampled_warn!("console_wrong_key", "console: a login with a wrong key");
        return refusal(StatusCode::UNAUTHORIZED, "wrong key");
    }
    let cookie = c.keys.issue(now + c.session_secs);
    let secure = if s.ctx.config.serves_https() {
        "; Secure"
    } else {
        ""
    };
    let set = format!(
        "{}={cookie}; Path=/console; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        session::COOKIE,
        c.session_secs
    );
    let mut r = Json(json!({ "ok": true })).into_response();
    if let Ok(v) = HeaderValue::from_str(&set) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    hardened(r)
}

/// `POST /console/logout`: ends the session for the whole fleet (its nonce goes into the
/// store's revocation list until the cookie would have expired, so a copied cookie
/// stops working everywhere) and forgets the cookie in this browser.
pub(super) async fn logout(State(s): State<ConsoleState>, headers: HeaderMap) -> Response {
    let c = match console(&s) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    if let Some(cookie) = crate::web::cookie(&headers, session::COOKIE) {
        c.revoke(&s.ctx, cookie).await;
    }
    let mut r = Json(json!({ "ok": true })).into_response();
    let set = format!(
        "{}=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict",
        session::COOKIE
    );
    if let Ok(v) = HeaderValue::from_str(&set) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    hardened(r)
}
