//! The HTTP surface of the gateway: the state every handler shares, the router, and the
//! error answers. Each group of routes has its own module.

pub mod api;
pub mod envelope;
pub mod hot;
pub mod jssdk;
pub mod limit;
pub mod observe;
pub mod ops;
pub mod query;
pub mod serve;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::config::Config;
use crate::credentials::CentralControl;
use crate::error::Error;
use crate::{auth, miniapp, service};

/// What every handler can reach, behind one `Arc`: axum clones the state twice a
/// request (the route's handler service and the `State` extractor), and on two busy
/// cores every shared reference count is a cache line passed between them.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The parts of [`AppState`].
pub struct Shared {
    pub config: Arc<Config>,
    pub central: Arc<CentralControl>,
    pub service: Arc<crate::service::Service>,
    pub users: crate::auth::SharedUsers,
    /// The rate limits of the routes that spend WeChat calls.
    pub limits: limit::Limits,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// An error answer of the internal API: `{"error": {"code", "message", "errcode"?}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub errcode: Option<i64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            errcode: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let (status, code) = match &e {
            Error::UnknownAccount(_) => (StatusCode::NOT_FOUND, "unknown_account"),
            Error::Config(_) | Error::Proto(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Error::WeChat { .. }
            | Error::Transport { .. }
            | Error::LockTimeout(_)
            | Error::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable"),
        };
        ApiError {
            status,
            code,
            errcode: e.errcode().map(|c| c.code()),
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": { "code": self.code, "message": self.message } });
        if let Some(errcode) = self.errcode {
            body["error"]["errcode"] = errcode.into();
        }
        (self.status, Json(body)).into_response()
    }
}

/// Every route, each observed (`observe`). The server answers through [`hot::App`],
/// which takes the hottest requests off this router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            hot::CONFIG,
            get(jssdk::config_default).options(jssdk::preflight_default),
        )
        .route(
            hot::ACCOUNT_CONFIG,
            get(jssdk::config).options(jssdk::preflight),
        )
        .route("/wx/auth", get(auth::start_default))
        .route("/wx/{account}/auth", get(auth::start))
        .route("/wx/auth/callback", get(auth::callback_default))
        .route("/wx/{account}/auth/callback", get(auth::callback))
        .route(
            hot::SERVICE,
            get(service::verify_default).post(service::push_default),
        )
        .route(
            hot::ACCOUNT_SERVICE,
            get(service::verify).post(service::push),
        )
        .route("/api/v1/{account}/token", get(api::token))
        .route("/api/v1/{account}/token/refresh", post(api::refresh))
        .route("/api/v1/{account}/ticket/{ticket_type}", get(api::ticket))
        .route("/api/v1/{account}/status", get(api::status))
        .route("/api/v1/{account}/proxy/{*path}", any(api::proxy))
        .route("/wx/mp/login", post(miniapp::login))
        .route("/wx/{account}/mp/login", post(miniapp::login))
        .route("/wx/mp/verify", post(miniapp::verify))
        .route("/wx/{account}/mp/verify", post(miniapp::verify))
        .route("/wx/mp/decrypt", post(miniapp::decrypt))
        .route("/wx/{account}/mp/decrypt", post(miniapp::decrypt))
        .route(
            "/wx/mp/session",
            get(miniapp::get_session).delete(miniapp::delete_session),
        )
        .route(
            "/wx/{account}/mp/session",
            get(miniapp::get_session).delete(miniapp::delete_session),
        )
        .route("/demo/", get(crate::demo::index))
        .route("/demo/{file}", get(crate::demo::asset))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .layer(observe::ObserveLayer)
        .with_state(state)
}
