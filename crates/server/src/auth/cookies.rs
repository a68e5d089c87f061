//! The cookies of web authorization: the remembered user's (`wechat_jssdk_server_openid`,
//! the seed server's name) and the short-lived binding of a flow to the browser that
//! started it (`wxgate_oauth_{nonce}`).

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;

use super::signed::{self, COOKIE};
use super::{route_prefix, Flow};
use crate::web::DEFAULT_ACCOUNT;

/// The cookie of an account: the seed server's name for `default`. A merchant's account
/// (`platform:wx...`) has its `:` written `.`, which a cookie name may hold.
pub fn cookie_name(account: &str) -> String {
    if account == DEFAULT_ACCOUNT {
        COOKIE.to_owned()
    } else {
        format!("{COOKIE}_{}", account.replace(':', "."))
    }
}

pub(super) fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    crate::web::cookie(headers, name).map(str::to_owned)
}

pub(super) fn set_cookie(c: &Flow<'_>, r: &mut Response, openid: &str) {
    let ttl = c.s.config.auth.user_ttl;
    let value = signed::make_cookie(c.secret, &c.account, openid, c.s.now() + ttl);
    let secure = if c.s.config.serves_https() {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={value}; Path=/; Max-Age={ttl}; HttpOnly; SameSite=Lax{secure}",
        cookie_name(&c.account)
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The binding cookie's name: one per flow, so that two flows in two tabs do not
/// overwrite each other's.
pub(super) fn binding_cookie(nonce: &str) -> String {
    format!("wxgate_oauth_{nonce}")
}

/// Sets the browser's binding to the flow with this nonce, for as long as its state
/// lives, sent only to the callback.
pub(super) fn set_binding(c: &Flow<'_>, r: &mut Response, nonce: &str, binding: &str) {
    let secure = if c.s.config.serves_https() {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={binding}; Path={}/auth/callback; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        binding_cookie(nonce),
        route_prefix(&c.account),
        c.s.config.auth.state_ttl
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}
