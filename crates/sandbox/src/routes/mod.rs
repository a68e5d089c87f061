//! The sandbox's HTTP surface: WeChat's endpoints ([`api`], [`oauth`], [`media`]),
//! registered from their typed definitions by [`wechat`]; the JS-SDK check ([`jssdk`]);
//! and the admin API that makes it a sandbox ([`admin`]).

pub mod admin;
pub mod api;
pub mod component;
pub mod jssdk;
pub mod media;
pub mod oauth;
pub mod pay;
pub mod wechat;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::faults::FaultKind;
use crate::platform::{Platform, WxError, WxResult};

pub type Shared = Arc<Platform>;
pub type Params = HashMap<String, String>;

/// A query parameter, empty when absent (WeChat answers a missing one with its own errcode).
pub fn param<'a>(q: &'a Params, name: &str) -> &'a str {
    q.get(name).map(String::as_str).unwrap_or("")
}

/// A typed answer (`wxgate_proto::api`) as the JSON WeChat sends.
pub fn answer<T: serde::Serialize>(typed: T) -> Value {
    serde_json::to_value(typed).unwrap_or_default()
}

/// WeChat's answer shape: HTTP 200 with the JSON, or with `{errcode, errmsg}`.
pub fn wx(result: WxResult<Value>) -> Response {
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => wx_error(&e),
    }
}

pub fn wx_error(e: &WxError) -> Response {
    let rid = crate::platform::random_value("", 8);
    Json(json!({
        "errcode": e.code.code(),
        "errmsg": format!("{} rid: {rid}", e.msg),
    }))
    .into_response()
}

/// Counts every call to a WeChat endpoint and applies injected faults before it runs.
pub async fn faults_and_counts(State(p): State<Shared>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    p.count_call(&path, None);
    let hits = p
        .faults
        .lock()
        .map(|mut f| f.strike(&path, None))
        .unwrap_or_default();
    if let Some(r) = apply(hits).await {
        return r;
    }
    next.run(req).await
}

/// Plays the faults that struck a call: a delay, or the answer that replaces WeChat's.
pub async fn apply(hits: Vec<FaultKind>) -> Option<Response> {
    for hit in hits {
        match hit {
            FaultKind::Latency { ms } => {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await
            }
            FaultKind::Busy => {
                return Some(Json(json!({"errcode": -1, "errmsg": "system error"})).into_response())
            }
            FaultKind::Status { status } => {
                return Some(
                    StatusCode::from_u16(status)
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                        .into_response(),
                )
            }
            FaultKind::Drop => return Some(dropped_connection()),
        }
    }
    None
}

/// The faults set for `appid` on a token endpoint (see [`crate::faults::Fault::appid`]).
pub async fn app_faults(p: &Shared, path: &str, appid: &str) -> Option<Response> {
    let hits = p
        .faults
        .lock()
        .map(|mut f| f.strike(path, Some(appid)))
        .unwrap_or_default();
    apply(hits).await
}

/// An answer whose body fails after the headers: the client sees the connection cut.
fn dropped_connection() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sandbox fault: connection dropped",
        ))
    });
    Response::new(axum::body::Body::from_stream(stream))
}
