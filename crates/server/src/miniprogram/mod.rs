//! Mini Program login sessions (`/wx/mp/...` and `/wx/{account}/mp/...`): `wx.login()`'s
//! code becomes a session of wxgate's; the `session_key` never leaves the server, and the
//! client proves itself with the session id in `X-Wxgate-Session`.
//!
//! - `POST login {"code"}`: `jscode2session`, a new random session (256 bits), answered
//!   with `{session, openid, unionid?, expires_in}`. A new login of the same user replaces
//!   their previous session (WeChat has rotated the session_key).
//! - `POST verify {"rawData","signature"}`: `sha1(rawData + session_key)` in constant time.
//! - `POST decrypt {"encryptedData","iv"}`: the decrypted JSON, watermark appid checked.
//! - `GET session` / `DELETE session`: the checkSession counterpart, and logout.
//!
//! Sessions live in the configured store (a fleet shares them), under the SHA-256 of the
//! id, and slide: each use extends them by `miniprogram.session_ttl`.

mod data;
mod login;
mod session;

pub use data::{check_text, decrypt, phone, verify};
pub use login::login;
pub use session::{delete_session, get_session, reset_session};

use std::borrow::Cow;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use wxgate_proto::ErrCode;

use crate::config::{AccountConfig, AccountKind};
use crate::credentials::delegate::Purpose;
use crate::error::Error;
use crate::web::envelope::{self, Reject};
use crate::web::{account_refusal, Ctx};

/// The header that carries the session id.
pub const SESSION_HEADER: &str = "x-wxgate-session";

fn ok(data: Value) -> Response {
    Json(envelope::ok_value(data)).into_response()
}

/// The Mini Program a route serves: a configured one, or one a third-party platform
/// acts for (`{component}:{appid}`; refused, saying why, when it may not).
async fn account<'a>(s: &'a Ctx, name: &str) -> Result<Cow<'a, AccountConfig>, Reject> {
    let none = || {
        let shown = crate::util::truncate_chars(name, 64);
        Reject::new(
            StatusCode::NOT_FOUND,
            format!("no mini program account {shown:?}"),
        )
    };
    match s.credentials.account_for(name, Purpose::MiniProgram).await {
        Ok(a) if a.kind == AccountKind::MiniProgram => Ok(a),
        Ok(_) => Err(none()),
        Err(e) => Err(account_refusal(e, none)),
    }
}

fn body_json(body: &Bytes) -> Result<Value, Reject> {
    serde_json::from_slice(body).map_err(|_| {
        Reject::new(
            StatusCode::BAD_REQUEST,
            "Parameter Error: the body must be JSON",
        )
    })
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a str, Reject> {
    v.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Reject::new(
                StatusCode::BAD_REQUEST,
                format!("Parameter Error: {name} is required"),
            )
        })
}

/// The longest code accepted: WeChat's `wx.login` codes are 32 characters and the
/// phone-number codes 64; anything much longer is not a code, and is refused here
/// instead of costing a WeChat call (and its retries).
const MAX_CODE_LEN: usize = 128;

/// A code as WeChat issues them: letters, digits, `-` and `_`, at most
/// [`MAX_CODE_LEN`] characters.
fn check_code(code: &str) -> Result<(), Reject> {
    let plain = code
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if code.len() > MAX_CODE_LEN || !plain {
        return Err(Reject::new(
            StatusCode::BAD_REQUEST,
            format!("Parameter Error: code is at most {MAX_CODE_LEN} letters, digits, - or _ (the code wx.login or getPhoneNumber gave)"),
        ));
    }
    Ok(())
}

/// A failed WeChat call as the Mini Program's answer: WeChat's refusal with the status
/// `status_of` gives its errcode, WeChat's words and `hint`'s advice, the errcode in
/// `state.errcode`; anything else (transport, store, a lock) a 503.
fn refusal(
    endpoint: &str,
    e: Error,
    status_of: impl Fn(ErrCode) -> StatusCode,
    hint: impl Fn(ErrCode) -> &'static str,
) -> Reject {
    match e {
        Error::WeChat { code, errmsg, .. } => Reject::new(
            status_of(code),
            format!("{endpoint}: {code} ({errmsg}){}", hint(code)),
        )
        .with_errcode(code.code()),
        e => Reject::new(StatusCode::SERVICE_UNAVAILABLE, format!("{endpoint}: {e}")),
    }
}
