//! The HTTP surface of the gateway: the state every handler shares, the router, and the
//! error answers. Each group of routes has its own module.

pub mod admin;
pub mod api;
mod component;
pub mod conns;
pub mod hot;
pub mod linger;
pub mod observe;
pub mod ops;
mod pay;
pub mod serve;

use std::sync::Arc;

use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::auth::SharedUsers;
use crate::compat::SharedCompat;
use crate::error::Error;
use crate::push::PushService;
use crate::web::Ctx;
use crate::{auth, jssdk, miniprogram, push};

/// Everything the routes reach: the shared request context and each feature's own
/// state, which its handlers take through `FromRef` (`State<Ctx>`,
/// `State<Arc<PushService>>`, `State<SharedUsers>`). One `Arc`: axum clones the state
/// twice a request, and on two busy cores every shared reference count is a cache line
/// passed between them.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The parts of [`AppState`].
pub struct Shared {
    pub ctx: Ctx,
    pub pushes: Arc<PushService>,
    /// WeChat Pay's merchants (`[pay.NAME]`).
    pub pay: Arc<crate::pay::PayService>,
    /// The open platform's components (`[components.NAME]`).
    pub components: Arc<crate::component::ComponentService>,
    pub users: SharedUsers,
    pub compat: SharedCompat,
    /// The operator console, when `[console]` enables it.
    pub console: crate::console::SharedConsole,
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

impl FromRef<AppState> for Ctx {
    fn from_ref(s: &AppState) -> Ctx {
        s.ctx.clone()
    }
}

impl FromRef<AppState> for Arc<PushService> {
    fn from_ref(s: &AppState) -> Arc<PushService> {
        s.pushes.clone()
    }
}

impl FromRef<AppState> for Arc<crate::pay::PayService> {
    fn from_ref(s: &AppState) -> Arc<crate::pay::PayService> {
        s.pay.clone()
    }
}

impl FromRef<AppState> for Arc<crate::component::ComponentService> {
    fn from_ref(s: &AppState) -> Arc<crate::component::ComponentService> {
        s.components.clone()
    }
}

impl FromRef<AppState> for SharedCompat {
    fn from_ref(s: &AppState) -> SharedCompat {
        s.compat.clone()
    }
}

impl FromRef<AppState> for crate::console::ConsoleState {
    fn from_ref(s: &AppState) -> Self {
        crate::console::ConsoleState {
            ctx: s.ctx.clone(),
            console: s.console.clone(),
            pay: s.pay.clone(),
            components: s.components.clone(),
        }
    }
}

impl FromRef<AppState> for SharedUsers {
    fn from_ref(s: &AppState) -> SharedUsers {
        s.users.clone()
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
            Error::NotAuthorized(_) => (StatusCode::FORBIDDEN, "not_authorized"),
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

fn config_routes() -> axum::routing::MethodRouter<AppState> {
    get(jssdk::config).options(jssdk::preflight)
}

fn push_routes() -> axum::routing::MethodRouter<AppState> {
    get(push::verify).post(push::push)
}

/// The `/wx` routes, written once: mounted under `/wx` for the `default` account and
/// under `/wx/{account}` for a named one (`web::Account` tells them apart).
fn wx_routes() -> Router<AppState> {
    Router::new()
        .route("/auth", get(auth::start))
        .route("/auth/callback", get(auth::callback))
        .route("/mp/login", post(miniprogram::login))
        .route("/mp/verify", post(miniprogram::verify))
        .route("/mp/phone", post(miniprogram::phone))
        .route("/mp/check/text", post(miniprogram::check_text))
        .route("/mp/decrypt", post(miniprogram::decrypt))
        .route(
            "/mp/session",
            get(miniprogram::get_session).delete(miniprogram::delete_session),
        )
        .route("/mp/session/reset", post(miniprogram::reset_session))
}

/// Every route, each observed (`observe`). The server answers through [`hot::App`],
/// which takes the hottest requests off this router.
pub fn router(state: AppState) -> Router {
    // The WeChat-compatible API beside `/wx/...`, unless it has a listener of its own.
    let compat = &state.ctx.config.compat;
    let beside = if compat.enabled && compat.listen.is_none() {
        crate::compat::routes()
    } else {
        Router::new()
    };
    Router::new()
        .merge(beside)
        // The hot lane's two routes flat under both prefixes (a nested router is one
        // more dispatch), the rest of `/wx` nested.
        .route(&format!("{}{}", hot::WX, hot::CONFIG), config_routes())
        .route(
            &format!("{}{}", hot::ACCOUNT_WX, hot::CONFIG),
            config_routes(),
        )
        .route(&format!("{}{}", hot::WX, hot::SERVICE), push_routes())
        .route(
            &format!("{}{}", hot::ACCOUNT_WX, hot::SERVICE),
            push_routes(),
        )
        .nest(hot::WX, wx_routes())
        .nest(hot::ACCOUNT_WX, wx_routes())
        .route("/api/v1/{account}/token", get(api::token))
        .route("/api/v1/{account}/token/refresh", post(api::refresh))
        .route("/api/v1/{account}/ticket/{ticket_type}", get(api::ticket))
        .route("/api/v1/{account}/status", get(api::status))
        .route("/api/v1/{account}/followers", get(api::followers))
        .route("/api/v1/{account}/wxa/code", post(api::wxa_code))
        .route("/api/v1/{account}/wxa/scheme", post(api::wxa_scheme))
        .route("/api/v1/{account}/wxa/urllink", post(api::wxa_urllink))
        .route(
            "/api/v1/{account}/subscribe/send",
            post(api::subscribe_send),
        )
        .route("/api/v1/{account}/proxy/{*path}", any(api::proxy))
        .route("/wx/pay/{name}/notify", post(crate::pay::notify::notify))
        .route(
            "/wx/component/{name}/event",
            post(crate::component::event::event),
        )
        .route(
            "/wx/component/{name}/{appid}/service",
            post(crate::component::service::push).get(crate::component::service::verify),
        )
        .route(
            "/wx/component/{name}/authorize",
            get(crate::component::authorize::authorize),
        )
        .route(
            "/wx/component/{name}/callback",
            get(crate::component::authorize::callback),
        )
        .route("/api/v1/component/{name}/status", get(component::status))
        .route("/api/v1/pay/{name}/v3/{*path}", any(pay::proxy))
        .route("/api/v1/pay/{name}/status", get(pay::status))
        .route("/api/v1/admin/accounts", get(admin::list))
        .route(
            "/api/v1/admin/accounts/{name}",
            axum::routing::put(admin::put).delete(admin::delete),
        )
        .merge(crate::console::routes())
        .route("/demo/", get(crate::demo::index))
        .route("/demo/{file}", get(crate::demo::asset))
        .route("/demo/api/chat", post(crate::demo::chat))
        .route("/demo/api/mp/{what}", post(crate::demo::mini_program))
        .route("/demo/api/pay/order", post(crate::demo::pay_order))
        .route(
            "/demo/api/component/push",
            post(crate::demo::component_push),
        )
        .route("/demo/api/pay/webhook", post(crate::demo::pay_webhook))
        .route("/demo/api/pay/deliveries", get(crate::demo::pay_deliveries))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .layer(observe::ObserveLayer)
        .with_state(state)
}

/// The WeChat-compatible API alone, for its own listener (`compat.listen`).
pub fn compat_router(state: AppState) -> Router {
    crate::compat::routes()
        .route("/healthz", get(ops::healthz))
        .layer(observe::ObserveLayer)
        .with_state(state)
}
