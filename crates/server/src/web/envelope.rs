//! The answer shape of the `/wx/...` routes, kept from the Node server wxgate replaces:
//! `{"state":{"code":2000000,"msg":"ok"},"data":...}`; errors keep `"data": ""`. A 4xx's
//! `code` is the HTTP status times 10000 (4000000 "Parameter Error", 4030000, 4040000);
//! every 5xx is the seed's 5000000.

use std::borrow::Cow;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

pub const OK: u32 = 2_000_000;

/// The success envelope around `data`.
pub fn ok_value(data: Value) -> Value {
    json!({ "state": { "code": OK, "msg": "ok" }, "data": data })
}

/// An error envelope as a value (for JSONP).
pub fn error_value(status: StatusCode, msg: &str) -> Value {
    let code = if status.is_server_error() {
        5_000_000
    } else {
        u32::from(status.as_u16()) * 10_000
    };
    json!({ "state": { "code": code, "msg": msg }, "data": "" })
}

/// An error answer of a `/wx` route.
pub fn error(status: StatusCode, msg: impl AsRef<str>) -> Response {
    Reject::new(status, msg.as_ref().to_owned()).into_response()
}

/// A refusal of a `/wx` route (the one refusal type of the web layer: the query
/// extractors', the pushes', the handlers'), answered as the error envelope; handlers
/// return `Result<Response, Reject>` and use `?`. The message is borrowed when it is a
/// fixed text, so a refused push allocates nothing for it.
#[derive(Debug, Clone)]
pub struct Reject {
    pub status: StatusCode,
    pub msg: Cow<'static, str>,
    /// WeChat's errcode, when WeChat's answer caused the refusal.
    pub errcode: Option<i64>,
}

impl Reject {
    pub fn new(status: StatusCode, msg: impl Into<Cow<'static, str>>) -> Self {
        Reject {
            status,
            msg: msg.into(),
            errcode: None,
        }
    }

    pub fn with_errcode(mut self, errcode: i64) -> Self {
        self.errcode = Some(errcode);
        self
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        let mut v = error_value(self.status, &self.msg);
        if let Some(code) = self.errcode {
            v["state"]["errcode"] = code.into();
        }
        (self.status, Json(v)).into_response()
    }
}

impl From<wxgate_proto::Error> for Reject {
    /// Forged or foreign is 403, too large 413, malformed 400.
    fn from(e: wxgate_proto::Error) -> Self {
        use wxgate_proto::Error as E;
        let status = match e {
            E::SignatureMismatch | E::AppIdMismatch { .. } => StatusCode::FORBIDDEN,
            E::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Reject::new(status, e.to_string())
    }
}
