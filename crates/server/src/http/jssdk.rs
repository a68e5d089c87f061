//! `/wx/config` (and `/wx/{account}/config`): the JS-SDK `wx.config` signature for a page,
//! as JSON, JSONP or CORS, in the seed server's envelope.
//!
//! The jsapi_ticket comes from the central control (memory, almost always), never from
//! WeChat per request. The page URL is signed as WeChat signs it: everything before `#`.
//! A page on a host outside the account's JS-safe domains is refused with a message that
//! names the host, because that is the usual cause of `config:invalid signature`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use wxgate_proto::jssdk;

use super::envelope;
use super::AppState;
use crate::credentials::Kind;

/// JSONP callback names: a plain identifier path, nothing that could close the call.
pub fn callback_is_valid(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'$');
    first_ok
        && name.len() <= 64
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'.')
}

/// The page URL, if it is one WeChat can sign: absolute http(s) with a host.
fn page_url(raw: &str) -> Option<url::Url> {
    url::Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

fn cors(headers: &HeaderMap, allowed: &[String], resp: &mut Response) {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return;
    };
    if allowed.iter().any(|a| a == origin || a == "*") {
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(origin) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
}

/// The envelope as JSON, or as JSONP when a callback was asked for. A JSONP error still
/// answers 200: a `<script>` tag cannot read a status, only the envelope's code.
fn answer(status: StatusCode, body: Value, callback: Option<&str>) -> Response {
    match callback {
        Some(cb) => {
            let js = format!("/**/{cb}({body});");
            let mut r = (StatusCode::OK, js).into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/javascript; charset=utf-8"),
            );
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            r
        }
        None => {
            let mut r = (status, body.to_string()).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            r
        }
    }
}

pub async fn config_default(
    state: State<AppState>,
    headers: HeaderMap,
    q: Query<HashMap<String, String>>,
) -> Response {
    config(state, headers, Path("default".into()), q).await
}

/// `GET /wx/{account}/config?url=&callback=&debug=1`
pub async fn config(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(account): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let callback = q.get("callback").map(String::as_str);
    if let Some(cb) = callback {
        if !callback_is_valid(cb) {
            return envelope::error(
                StatusCode::BAD_REQUEST,
                "Parameter Error: callback must be a plain identifier",
            );
        }
    }
    let Ok(acc) = s.central.account(&account) else {
        return answer(
            StatusCode::NOT_FOUND,
            envelope::error_value(StatusCode::NOT_FOUND, "unknown account"),
            callback,
        );
    };
    let bad = |msg: String| {
        answer(
            StatusCode::BAD_REQUEST,
            envelope::error_value(StatusCode::BAD_REQUEST, &msg),
            callback,
        )
    };
    let Some(raw_url) = q.get("url").filter(|u| !u.is_empty()) else {
        return bad("Parameter Error: url is required".into());
    };
    let Some(parsed) = page_url(raw_url) else {
        return bad(
            "Parameter Error: url must be the page's absolute http(s) URL (location.href)".into(),
        );
    };
    let host = parsed.host_str().unwrap_or_default();
    if !acc.js_domains.is_empty() && !acc.js_domains.iter().any(|d| d == host) {
        return bad(format!(
            "Parameter Error: {host} is not a JS-safe domain of this account (JS接口安全域名); WeChat would answer config:invalid signature"
        ));
    }
    let ticket = match s.central.get(&account, Kind::JsapiTicket).await {
        Ok(t) => t,
        Err(e) => {
            let msg = match e.errcode() {
                Some(code) => format!(
                    "no jsapi_ticket: errcode {} ({})",
                    code.code(),
                    code.meaning()
                ),
                None => format!("no jsapi_ticket: {e}"),
            };
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                envelope::error_value(StatusCode::SERVICE_UNAVAILABLE, &msg),
                callback,
            );
        }
    };
    let timestamp = s.central.clock().now().to_string();
    let nonce = jssdk::nonce_str(16);
    let signature = jssdk::signature(&ticket.value, &nonce, &timestamp, raw_url);
    let mut data = json!({
        "appId": acc.appid,
        "timestamp": timestamp,
        "nonceStr": nonce,
        "signature": signature,
    });
    if q.get("debug").is_some_and(|d| d == "1") {
        data["signed"] = json!(format!(
            "jsapi_ticket=<jsapi_ticket>&noncestr={nonce}&timestamp={timestamp}&url={}",
            jssdk::signed_url(raw_url)
        ));
    }
    let mut r = answer(StatusCode::OK, envelope::ok_value(data), callback);
    cors(&headers, &acc.cors_origins, &mut r);
    r
}

pub async fn preflight_default(state: State<AppState>, headers: HeaderMap) -> Response {
    preflight(state, headers, Path("default".into())).await
}

/// `OPTIONS /wx/{account}/config`: CORS preflight for the configured origins.
pub async fn preflight(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(account): Path<String>,
) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    if let Ok(acc) = s.central.account(&account) {
        cors(&headers, &acc.cors_origins, &mut r);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::callback_is_valid;

    #[test]
    fn callbacks() {
        for ok in [
            "cb",
            "_x",
            "$",
            "jQuery123_456",
            "a.b.c",
            "wx$cb",
            &"a".repeat(64),
        ] {
            assert!(callback_is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "1a",
            "<script>",
            "alert(1)//",
            "a b",
            "a;b",
            "a-b",
            ".a",
            &"a".repeat(65),
            "a\u{2028}",
        ] {
            assert!(!callback_is_valid(bad), "{bad}");
        }
    }
}
