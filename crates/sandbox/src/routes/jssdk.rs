//! The JS-SDK check: would WeChat accept this `wx.config` on this page? CORS is open so a
//! demo page can ask from the browser.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use wxgate_proto::jssdk;

use super::Shared;

fn cors(mut r: Response) -> Response {
    let h = r.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
    set(h, header::ACCESS_CONTROL_ALLOW_METHODS, "POST, OPTIONS");
    set(h, header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type");
    set(h, header::ACCESS_CONTROL_MAX_AGE, "600");
    r
}

pub async fn preflight() -> Response {
    cors(().into_response())
}

fn as_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// What the check decided.
pub fn check(p: &Shared, body: &Value) -> Value {
    // Accept `{url, config: {...}}` or the config fields at the top level.
    let cfg = body.get("config").unwrap_or(body);
    let url = as_text(body.get("url"));
    let app_id = as_text(cfg.get("appId"));
    let timestamp = as_text(cfg.get("timestamp"));
    let nonce = as_text(cfg.get("nonceStr"));
    let signature = as_text(cfg.get("signature"));
    let fail = |err: &str, reason: String| json!({ "ok": false, "errMsg": err, "reason": reason });
    let app = match p.app(&app_id) {
        Ok(a) => a,
        Err(_) => {
            return fail(
                "config:invalid appId",
                format!("appId {app_id:?} is not an app of this platform"),
            )
        }
    };
    let parsed = match url::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        _ => {
            return fail(
                "config:invalid url",
                format!("{url:?} is not the page's absolute URL"),
            )
        }
    };
    let host = parsed.host_str().unwrap_or("");
    if !app.js_domains.is_empty() && !app.js_domains.iter().any(|d| d == host) {
        return fail(
            "config:invalid url domain",
            format!("{host} is not a JS-safe domain (JS接口安全域名) of {app_id}"),
        );
    }
    if timestamp.is_empty() || nonce.is_empty() || signature.is_empty() {
        return fail(
            "config:invalid signature",
            "timestamp, nonceStr and signature are required".into(),
        );
    }
    let tickets = p.valid_tickets(&app_id, "jsapi");
    if tickets.is_empty() {
        return fail(
            "config:invalid signature",
            "no jsapi_ticket of this app is valid now: the signature was made with an expired or foreign ticket".into(),
        );
    }
    let signed = jssdk::signed_url(&url);
    if tickets
        .iter()
        .any(|t| jssdk::verify_signature(t, &nonce, &timestamp, &url, &signature))
    {
        return json!({ "ok": true, "errMsg": "config:ok" });
    }
    fail(
        "config:invalid signature",
        format!(
            "signature does not match sha1(jsapi_ticket=<current ticket>&noncestr={nonce}&timestamp={timestamp}&url={signed}); \
             check that the page signed exactly this URL (location.href without #) with the current ticket"
        ),
    )
}

/// `POST /jssdk/check {url, config: {appId, timestamp, nonceStr, signature}}`
pub async fn check_route(State(p): State<Shared>, body: Bytes) -> Response {
    let answer = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => check(&p, &v),
        Err(e) => {
            json!({ "ok": false, "errMsg": "config:fail", "reason": format!("body is not JSON: {e}") })
        }
    };
    cors(Json(answer).into_response())
}
