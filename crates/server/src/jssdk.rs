//! `/wx/config` (and `/wx/{account}/config`): the JS-SDK `wx.config` signature for a page,
//! as JSON, JSONP or CORS, in the seed server's envelope.
//!
//! The jsapi_ticket comes from the central control (memory, almost always), never from
//! WeChat per request. The page URL is signed as WeChat signs it: everything before `#`.
//! A page on a host outside the account's JS-safe domains is refused with a message that
//! names the host, because that is the usual cause of `config:invalid signature`.

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use wxgate_proto::jssdk;

use std::borrow::Cow;

use crate::credentials::delegate::Purpose;
use crate::credentials::Kind;
use crate::web::envelope::{self, Reject};
use crate::web::query::query_struct;
use crate::web::{account_refusal, Account, Ctx};

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

/// The host of a page URL WeChat can sign: absolute http(s), a host, no whitespace or
/// control characters. (A hand-written check: this runs on every request.)
pub fn page_host(raw: &str) -> Option<&str> {
    let rest = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"))?;
    if raw.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return None;
    }
    let upto = |s: &'_ str, stop: fn(u8) -> bool| s.bytes().position(stop).unwrap_or(s.len());
    let authority = &rest[..upto(rest, |b| matches!(b, b'/' | b'?' | b'#'))];
    let host_port = match authority.bytes().rposition(|b| b == b'@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    let host = match host_port.strip_prefix('[') {
        Some(v6) => &v6[..upto(v6, |b| b == b']')],
        None => &host_port[..upto(host_port, |b| b == b':')],
    };
    (!host.is_empty()).then_some(host)
}

/// The success envelope up to its data (`envelope::OK` is 2000000; a test holds them
/// together).
const OK_PREFIX: &str = r#"{"state":{"code":2000000,"msg":"ok"},"data":"#;

/// The success envelope, `{"state":{"code":2000000,"msg":"ok"},"data":{"appId",
/// "timestamp","nonceStr","signature"[,"signed"]}}`, written directly: it is this route's
/// whole answer, and serde_json's escaping walk cost about as much as the signature.
fn signed_envelope(
    app_id: &str,
    timestamp: &str,
    nonce_str: &str,
    signature: &str,
    signed: Option<&str>,
) -> String {
    // Sized once: the envelope, the names and quotes, the values.
    let values = app_id.len() + timestamp.len() + nonce_str.len() + signature.len();
    let mut out =
        String::with_capacity(OK_PREFIX.len() + 64 + values + signed.map_or(0, |s| s.len() + 16));
    out.push_str(OK_PREFIX);
    out.push('{');
    for (i, (name, value)) in [
        ("appId", Some(app_id)),
        ("timestamp", Some(timestamp)),
        ("nonceStr", Some(nonce_str)),
        ("signature", Some(signature)),
        ("signed", signed),
    ]
    .into_iter()
    .enumerate()
    {
        let Some(value) = value else { continue };
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
        json_string(&mut out, value);
    }
    out.push_str("}}");
    out
}

/// A JSON string literal: as it is when nothing needs escaping (the usual case), else
/// by serde_json.
fn json_string(out: &mut String, s: &str) {
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&Value::from(s).to_string());
    }
}

query_struct! {
    /// The query of `/wx/config`.
    pub struct ConfigQuery { url, callback, debug }
}

/// The request's `Origin`, the one header CORS needs (taking the whole `HeaderMap`
/// would copy every header on every request).
pub struct Origin(Option<HeaderValue>);

impl Origin {
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        Origin(headers.get(header::ORIGIN).cloned())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Origin::of(&parts.headers))
    }
}

fn cors(origin: &Origin, allowed: &[String], resp: &mut Response) {
    let Some(value) = &origin.0 else {
        return;
    };
    let Ok(origin) = value.to_str() else {
        return;
    };
    if allowed.iter().any(|a| a == origin || a == "*") {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value.clone());
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
    answer_text(status, body.to_string(), callback)
}

fn answer_text(status: StatusCode, body: String, callback: Option<&str>) -> Response {
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
            let mut r = Response::new(Body::from(body));
            *r.status_mut() = status;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            r
        }
    }
}

/// `GET /wx/config`, `GET /wx/{account}/config?url=&callback=&debug=1`
pub async fn config(
    State(s): State<Ctx>,
    origin: Origin,
    Account(account): Account,
    q: ConfigQuery,
) -> Response {
    config_for(&s, origin, &account, q).await
}

pub async fn config_for(s: &Ctx, origin: Origin, account: &str, q: ConfigQuery) -> Response {
    let callback = q.callback.as_deref();
    if let Some(cb) = callback {
        if !callback_is_valid(cb) {
            return envelope::error(
                StatusCode::BAD_REQUEST,
                "Parameter Error: callback must be a plain identifier",
            );
        }
    }
    // A configured account, or a merchant a third-party platform acts for
    // (`{component}:{appid}`, looked up only when the name is not configured).
    let acc = match s.account(account) {
        Ok(acc) => Cow::Borrowed(acc),
        Err(_) => match s.credentials.account_for(account, Purpose::JsSdk).await {
            Ok(acc) => acc,
            Err(e) => {
                let r =
                    account_refusal(e, || Reject::new(StatusCode::NOT_FOUND, "unknown account"));
                let body = envelope::error_value(r.status, &r.msg);
                return answer(r.status, body, callback);
            }
        },
    };
    let bad = |msg: String| {
        answer(
            StatusCode::BAD_REQUEST,
            envelope::error_value(StatusCode::BAD_REQUEST, &msg),
            callback,
        )
    };
    let Some(raw_url) = q.url.as_deref().filter(|u| !u.is_empty()) else {
        return bad("Parameter Error: url is required".into());
    };
    let Some(host) = page_host(raw_url) else {
        return bad(
            "Parameter Error: url must be the page's absolute http(s) URL (location.href)".into(),
        );
    };
    if !acc.js_domains.is_empty() && !acc.js_domains.iter().any(|d| d == host) {
        return bad(format!(
            "Parameter Error: {host} is not a JS-safe domain of this account (JS接口安全域名); WeChat would answer config:invalid signature"
        ));
    }
    let ticket = match s.credentials.get(account, Kind::JsapiTicket).await {
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
            let body = envelope::error_value(StatusCode::SERVICE_UNAVAILABLE, &msg);
            return answer(StatusCode::SERVICE_UNAVAILABLE, body, callback);
        }
    };
    let timestamp = s.now().to_string();
    let nonce = jssdk::nonce_str(16);
    let signature = jssdk::signature(&ticket.value, &nonce, &timestamp, raw_url);
    let signed = (q.debug.as_deref() == Some("1")).then(|| {
        format!(
            "jsapi_ticket=<jsapi_ticket>&noncestr={nonce}&timestamp={timestamp}&url={}",
            jssdk::signed_url(raw_url)
        )
    });
    let body = signed_envelope(
        &acc.appid,
        &timestamp,
        &nonce,
        &signature,
        signed.as_deref(),
    );
    let mut r = answer_text(StatusCode::OK, body, callback);
    cors(&origin, &acc.cors_origins, &mut r);
    r
}

/// `OPTIONS /wx/config`, `OPTIONS /wx/{account}/config`: CORS preflight for the
/// configured origins.
pub async fn preflight(
    State(s): State<Ctx>,
    origin: Origin,
    Account(account): Account,
) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    if let Ok(acc) = s.credentials.account_for(&account, Purpose::JsSdk).await {
        cors(&origin, &acc.cors_origins, &mut r);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::callback_is_valid;

    #[test]
    fn the_envelope_is_the_json_serde_would_write() {
        use serde_json::json;
        for (app_id, signed) in [
            ("wx1234567890abcdef", None),
            (
                "wx\"odd\\id\u{1}中",
                Some("jsapi_ticket=<jsapi_ticket>&url=http://a/?x=\"1\""),
            ),
        ] {
            let ours = super::signed_envelope(
                app_id,
                "1414587457",
                "Wm3WZYTPz0wzccnW",
                "0f9de62f",
                signed,
            );
            let mut data = json!({
                "appId": app_id,
                "timestamp": "1414587457",
                "nonceStr": "Wm3WZYTPz0wzccnW",
                "signature": "0f9de62f",
            });
            if let Some(s) = signed {
                data["signed"] = s.into();
            }
            let theirs = crate::web::envelope::ok_value(data);
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&ours).unwrap(),
                theirs,
                "{ours}"
            );
        }
    }

    #[test]
    fn page_hosts() {
        use super::page_host;
        for (url, host) in [
            ("https://h5.example.com/a?b=1#c", Some("h5.example.com")),
            ("http://127.0.0.1:8080/x", Some("127.0.0.1")),
            ("http://user:pw@example.com/", Some("example.com")),
            ("http://[::1]:80/", Some("::1")),
            ("https://example.com", Some("example.com")),
            ("https://example.com?x#y", Some("example.com")),
            ("/relative", None),
            ("javascript:alert(1)", None),
            ("ftp://example.com/", None),
            ("https:///nohost", None),
            ("https://exa mple.com/", None),
            ("", None),
        ] {
            assert_eq!(page_host(url), host, "{url}");
        }
    }

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
