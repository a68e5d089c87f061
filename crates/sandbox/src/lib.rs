//! # wxgate-sandbox: a local WeChat platform
//!
//! This crate owns the stand-in for WeChat that every gateway test and every offline
//! developer talks to. It serves WeChat's upstream APIs (`/cgi-bin/token`,
//! `/cgi-bin/stable_token`, tickets, web authorization, `jscode2session`, followers,
//! customer-service and template messages, temporary media, Mini Program codes) with
//! WeChat's documented semantics and errcodes, and adds what WeChat cannot give a
//! developer: a controllable clock, fault injection, call counters, a message pusher
//! and a JS-SDK signature check.
//!
//! - [`platform`]: the state and every WeChat rule the sandbox plays.
//! - [`routes`]: the HTTP surface (WeChat's endpoints and `/admin/...`).
//! - [`pusher`] and [`messages`]: pushing messages and events to a gateway as WeChat does.
//! - [`Sandbox::start`]: run it in-process on an ephemeral port, for tests.

pub mod clock;
pub mod config;
pub mod faults;
pub mod keys;
pub mod messages;
pub mod pay;
pub mod platform;
mod png;
pub mod pusher;
pub mod release;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

pub use config::{AppConfig, AppKind, SandboxConfig, TestUser};
pub use platform::Platform;

/// WeChat's endpoints, each registered from its typed definition.
fn wechat() -> routes::wechat::WeChat {
    use routes::{api, media, oauth};
    use wxgate_proto::api::{
        component, media as m, menu, message, on_behalf, openapi, sns, ticket, token, user, wxa,
    };
    routes::wechat::WeChat::new()
        .without_token::<token::ClassicToken>(api::token)
        .without_token::<token::StableToken>(api::stable_token)
        .without_token::<component::ComponentToken>(api::component_token)
        .without_token::<component::StartPushTicket>(api::start_push_ticket)
        .with_component_token::<component::CreatePreAuthCode>(api::create_preauthcode)
        .with_component_token::<component::QueryAuth>(api::query_auth)
        .with_component_token::<component::AuthorizerToken>(api::authorizer_token)
        .with_component_token::<component::GetAuthorizerList>(api::authorizer_list)
        .with_token::<openapi::ClearQuota>(api::clear_quota)
        .with_token::<openapi::GetApiDomainIp>(api::get_api_domain_ip)
        .with_token::<ticket::GetTicket>(api::getticket)
        .with_token::<menu::CreateMenu>(api::menu_create)
        .with_token::<menu::GetMenu>(api::menu_get)
        .with_token::<user::GetFollowers>(api::user_get)
        .with_token::<user::GetUserInfo>(api::user_info)
        .with_token::<user::BatchGetUserInfo>(api::user_batchget)
        .with_token::<message::CustomSend>(api::custom_send)
        .with_token::<message::TemplateSend>(api::template_send)
        .with_token::<message::SubscribeSend>(api::subscribe_send)
        .raw::<m::UploadMedia>(media::upload)
        .raw::<m::GetMedia>(media::get)
        .with_token::<wxa::GetUserPhoneNumber>(api::getuserphonenumber)
        .with_token::<wxa::CheckSession>(api::checksession)
        .with_token::<wxa::ResetUserSessionKey>(api::resetusersessionkey)
        .with_token::<wxa::MsgSecCheck>(api::msg_sec_check)
        .with_token::<wxa::GenerateScheme>(api::generatescheme)
        .with_token::<wxa::GenerateUrlLink>(api::generate_urllink)
        .raw::<wxa::GetWxaCodeUnlimit>(media::getwxacodeunlimit)
        .without_token::<sns::JsCode2Session>(api::jscode2session)
        .without_token::<sns::OauthAccessToken>(oauth::access_token)
        .without_token::<sns::OauthRefreshToken>(oauth::refresh_token)
        .without_token::<sns::UserInfoRequest>(oauth::userinfo)
        .without_token::<sns::CheckUserToken>(oauth::sns_auth)
        .with_component_token::<on_behalf::ComponentOauthAccessToken>(oauth::component_access_token)
        .with_component_token::<on_behalf::ComponentOauthRefreshToken>(
            oauth::component_refresh_token,
        )
        .with_component_token::<on_behalf::ComponentJsCode2Session>(oauth::component_jscode2session)
        .page(sns::AUTHORIZE_PAGE, get(oauth::authorize))
        .page(oauth::DECIDE_PAGE, get(oauth::decide))
        .page(
            component::COMPONENT_LOGIN_PAGE,
            get(routes::component::page),
        )
        .page(component::BIND_COMPONENT_PAGE, get(routes::component::page))
        .page(
            routes::component::DECIDE_PAGE,
            get(routes::component::decide),
        )
}

/// The sandbox's HTTP application.
pub fn router(platform: Arc<Platform>) -> Router {
    use routes::{admin, jssdk};
    let wechat = wechat()
        .into_router()
        // WeChat's limits are per media type (10 MB at most), checked by the upload.
        .layer(axum::extract::DefaultBodyLimit::max(12 << 20))
        .route_layer(axum::middleware::from_fn_with_state(
            platform.clone(),
            routes::faults_and_counts,
        ));
    // WeChat Pay is another host (api.mch.weixin.qq.com); the sandbox serves both.
    let pay = Router::new()
        .route("/v3/pay/transactions/{kind}", post(routes::pay::create))
        .route(
            "/v3/pay/transactions/out-trade-no/{out_trade_no}",
            get(routes::pay::query),
        )
        .route("/v3/refund/domestic/refunds", post(routes::pay::refund))
        .route("/v3/certificates", get(routes::pay::certificates))
        .route("/admin/pay/pay", post(routes::pay::admin_pay))
        .route("/admin/pay/switch", post(routes::pay::admin_switch))
        .route("/admin/pay/signtest", post(routes::pay::admin_probe))
        .route(
            "/admin/pay/notifications",
            get(routes::pay::admin_notifications),
        )
        .route("/admin/pay/requests", get(routes::pay::admin_requests))
        .route("/admin/pay/keys", get(routes::pay::admin_keys));
    let admin = Router::new()
        .route("/admin/clock", get(admin::clock))
        .route("/admin/clock/advance", post(admin::advance))
        .route(
            "/admin/faults",
            get(admin::list_faults)
                .post(admin::add_fault)
                .delete(admin::clear_faults),
        )
        .route("/admin/calls", get(admin::calls).delete(admin::reset_calls))
        .route("/admin/sent", get(admin::sent))
        .route("/admin/token/check", get(admin::token_check))
        .route("/admin/component/ticket", get(admin::component_ticket))
        .route(
            "/admin/component/event_url",
            post(admin::component_event_url),
        )
        .route(
            "/admin/component/authorize",
            post(admin::component_authorize),
        )
        .route(
            "/admin/component/unauthorize",
            post(admin::component_unauthorize),
        )
        .route("/admin/component/forget", post(admin::component_forget))
        .route(
            "/admin/component/release_test",
            post(admin::component_release_test),
        )
        .route("/admin/oauth/code", post(admin::oauth_code))
        .route(
            "/admin/miniprogram/phonecode",
            post(admin::miniprogram_phonecode),
        )
        .route(
            "/admin/miniprogram/subscribe",
            post(admin::miniprogram_subscribe),
        )
        .route("/admin/miniprogram/login", post(admin::miniprogram_login))
        .route(
            "/admin/miniprogram/userinfo",
            post(admin::miniprogram_userinfo),
        )
        .route(
            "/admin/miniprogram/phonenumber",
            post(admin::miniprogram_phone),
        )
        // The older names of the three routes above, still answered.
        .route("/admin/miniapp/login", post(admin::miniprogram_login))
        .route("/admin/miniapp/userinfo", post(admin::miniprogram_userinfo))
        .route("/admin/miniapp/phonenumber", post(admin::miniprogram_phone))
        .route("/admin/push", post(admin::push))
        .route(
            "/jssdk/check",
            post(jssdk::check_route).options(jssdk::preflight),
        );
    wechat.merge(pay).merge(admin).with_state(platform)
}

/// A running sandbox. Dropping the handle stops it.
pub struct Sandbox {
    pub addr: SocketAddr,
    pub platform: Arc<Platform>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// Dropped with the sandbox: its notifier stops.
    _notifier: tokio::sync::watch::Sender<bool>,
}

impl Sandbox {
    /// Starts on `config.listen` (use port 0 for an ephemeral port) on the current runtime.
    pub async fn start(config: SandboxConfig) -> std::io::Result<Sandbox> {
        let listener = tokio::net::TcpListener::bind(&config.listen).await?;
        Self::serve(listener, config).await
    }

    /// Starts on an ephemeral port of 127.0.0.1, whatever `config.listen` says.
    pub async fn start_ephemeral(config: SandboxConfig) -> std::io::Result<Sandbox> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Self::serve(listener, config).await
    }

    async fn serve(
        listener: tokio::net::TcpListener,
        config: SandboxConfig,
    ) -> std::io::Result<Sandbox> {
        let addr = listener.local_addr()?;
        let platform = Arc::new(Platform::new(config));
        let app = router(platform.clone());
        // WeChat Pay's notifications: a round every 200 ms against the sandbox clock, so
        // retries come due as a test advances it.
        let notifier = platform.clone();
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .unwrap_or_default();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
                    _ = stop_rx.changed() => return,
                }
                pay::deliver_due(&notifier.pay, &http, notifier.now()).await;
                pusher::push_component_events(&notifier, &http).await;
            }
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Sandbox {
            addr,
            platform,
            shutdown: Some(tx),
            _notifier: stop_tx,
        })
    }

    /// `http://127.0.0.1:PORT`: the `api_base` and `open_base` a gateway points at.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop();
    }
}
