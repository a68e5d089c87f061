//! The WeChat-compatible API: wxgate answering as WeChat's API host, so that a business's
//! servers keep their SDK (wechatpy, WxJava, EasyWeChat, node wechat-api, ...) and change
//! one URL. Their tokens, refreshes and quota become the central control's.
//!
//! - `GET /cgi-bin/token` and `POST /cgi-bin/stable_token` answer the central
//!   access_token with its seconds left, never fetching while it is valid. The `secret`
//!   is a client's own (`[[compat.clients]]`), not the AppSecret, which stays in wxgate
//!   (unless `compat_accepts_app_secret`). A wrong one gets WeChat's error and costs
//!   nothing upstream; wrong secrets are rate-limited per client address, and a right
//!   one is never refused.
//! - `force_refresh`, or a client asking again for the token it already holds (what an
//!   SDK does after a 40001), refreshes only if WeChat says the token is dead
//!   ([`crate::credentials::CentralControl::is_dead`]: `/cgi-bin/get_api_domain_ip`, at
//!   a burst of 5 checks per account, then one every 10 s), then compare-and-refresh as
//!   the API does.
//! - `GET /cgi-bin/ticket/getticket` answers the central ticket.
//! - Every other `/cgi-bin/`, `/wxa/`, `/datacube/` and `/card/` path is forwarded with
//!   the central token in place of the caller's, which must be one wxgate handed out
//!   (else 40001, as WeChat would). A token error upstream heals every client at once.
//!
//! - For a third-party platform (`[components.NAME]`): `POST
//!   /cgi-bin/component/api_component_token` answers the managed component token to a
//!   client whose `appids` include the component's appid (its secret as
//!   `component_appsecret`; the SDK's ticket, if any, is ignored), and
//!   `api_authorizer_token` answers an authorizer's managed token to a caller holding the
//!   current component token, echoing the refresh token it sent: the real refresh tokens
//!   never leave wxgate.
//!
//! Errors are WeChat's: HTTP 200 with `{"errcode", "errmsg"}`.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use wxgate_proto::api::component::{AuthorizerToken, ComponentToken};
use wxgate_proto::api::openapi::ClearQuota;
use wxgate_proto::api::ticket::GetTicket;
use wxgate_proto::api::ticket::Ticket;
use wxgate_proto::api::token::AccessToken;
use wxgate_proto::api::token::{ClassicToken, StableToken};
use wxgate_proto::api::{Endpoint, APP_TOKEN_PREFIXES};
use wxgate_proto::ErrCode;

use crate::component::ComponentService;
use crate::config::Config;
use crate::credentials::Kind;
use crate::web::forward::{forward, ForwardError};
use crate::web::limit::Client;
use crate::web::Ctx;

/// What the compatible API remembers: which token each client was handed (so that a
/// repeat ask reads as "my token was rejected"). Bounded by clients x accounts.
#[derive(Default)]
pub struct Compat {
    /// (client, account, token handed out): a few entries, scanned without allocating.
    handed: Mutex<Vec<(String, String, String)>>,
}

pub type SharedCompat = Arc<Compat>;

/// WeChat's error answer.
fn wx_error(code: ErrCode, errmsg: &str) -> Response {
    Json(json!({ "errcode": code.code(), "errmsg": errmsg })).into_response()
}

/// A refusal in WeChat's words, answered as [`wx_error`].
struct WxRefusal(ErrCode, &'static str);

impl IntoResponse for WxRefusal {
    fn into_response(self) -> Response {
        wx_error(self.0, self.1)
    }
}

/// The account that has this appid.
fn account_of<'c>(config: &'c Config, appid: &str) -> Option<&'c str> {
    config
        .accounts
        .iter()
        .find(|(_, a)| a.appid == appid)
        .map(|(name, _)| name.as_str())
}

/// Who is asking, by the secret they present for `appid`: a client's name, or
/// `appsecret` for the account's own secret where that is allowed.
fn client_of<'c>(
    config: &'c Config,
    account: &str,
    appid: &str,
    secret: &str,
    ip: IpAddr,
) -> Option<&'c str> {
    let mut who = None;
    // Every client is compared (no early exit), in constant time.
    for c in &config.compat.clients {
        let may = c.appids.iter().any(|a| a == appid)
            && (c.allow_ips.is_empty() || c.allow_ips.contains(&ip));
        if crate::util::ct_eq(c.secret.expose(), secret) && may {
            who = Some(c.name.as_str());
        }
    }
    let acc = config.accounts.get(account)?;
    if acc.compat_accepts_app_secret && crate::util::ct_eq(acc.secret.expose(), secret) {
        who = who.or(Some("appsecret"));
    }
    who
}

/// The checks both token endpoints make, in WeChat's order and with its errcodes: the
/// grant type, the appid, the secret. Only a failure is rate-limited, and per client
/// address: a client with the right secret is answered from the central control (which
/// costs WeChat nothing) however many strangers send wrong secrets for the same appid.
fn authenticate<'c>(
    ctx: &'c Ctx,
    grant_type: &str,
    appid: &str,
    secret: &str,
    ip: IpAddr,
    wrong_secret: ErrCode,
) -> Result<(&'c str, &'c str), WxRefusal> {
    if grant_type != "client_credential" {
        return Err(WxRefusal(ErrCode::InvalidGrantType, "invalid grant_type"));
    }
    if appid.is_empty() {
        return Err(WxRefusal(ErrCode::AppIdMissing, "appid missing"));
    }
    let Some(account) = account_of(&ctx.config, appid) else {
        return Err(WxRefusal(ErrCode::InvalidAppId, "invalid appid"));
    };
    let client = (!secret.is_empty())
        .then(|| client_of(&ctx.config, account, appid, secret, ip))
        .flatten();
    if let Some(client) = client {
        return Ok((account, client));
    }
    if ctx.limits.failed_auth(ClassicToken::PATH, ip).is_err() {
        return Err(WxRefusal(
            ErrCode::ApiMinuteQuota,
            "api minute-quota reach limit: too many wrong secrets from this address, retry later",
        ));
    }
    if secret.is_empty() {
        return Err(WxRefusal(ErrCode::SecretMissing, "appsecret missing"));
    }
    crate::sampled_warn!(
        "compat_wrong_secret",
        account,
        "compatible API: wrong client secret"
    );
    Err(WxRefusal(wrong_secret, "invalid appsecret"))
}

impl Compat {
    /// The token for `client`: the central one, refreshed first only when the client
    /// asks for a new one (forced, or again for the token it holds) and WeChat says
    /// the current one is dead.
    async fn token_for(&self, ctx: &Ctx, account: &str, client: &str, force: bool) -> Response {
        let current = match ctx.credentials.get(account, Kind::AccessToken).await {
            Ok(c) => c,
            Err(e) => return upstream_error(&e),
        };
        let asks_again = self
            .handed
            .lock()
            .unwrap()
            .iter()
            .any(|(c, a, t)| c == client && a == account && *t == current.value);
        let mut token = current.clone();
        let asked = std::time::Instant::now();
        if (force || asks_again)
            && ctx
                .credentials
                .is_dead(account, &current.value, asked)
                .await
        {
            tracing::info!(
                account,
                client,
                "compatible API: the token is dead; refreshing"
            );
            match ctx
                .credentials
                .refresh_stale(account, Kind::AccessToken, &current.value)
                .await
            {
                Ok(fresh) => token = fresh,
                Err(e) => return upstream_error(&e),
            }
        }
        let mut handed = self.handed.lock().unwrap();
        match handed
            .iter_mut()
            .find(|(c, a, _)| c == client && a == account)
        {
            Some((_, _, t)) if *t == token.value => {}
            Some((_, _, t)) => *t = token.value.clone(),
            None => handed.push((client.to_owned(), account.to_owned(), token.value.clone())),
        }
        drop(handed);
        Json(AccessToken {
            expires_in: token.expires_in(ctx.now()),
            access_token: token.value,
        })
        .into_response()
    }
}

/// A failure of the central control, as WeChat would say "busy".
fn upstream_error(e: &crate::Error) -> Response {
    let code = e.errcode().unwrap_or(ErrCode::SystemBusy);
    wx_error(
        code,
        "system error: the central control could not get a token",
    )
}

/// What both token endpoints are asked: the query of `/cgi-bin/token`, the body of
/// `/cgi-bin/stable_token` (only the latter has `force_refresh`).
#[derive(Deserialize)]
pub struct TokenAsk {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    appid: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    force_refresh: bool,
}

/// The answer to a token ask; `wrong_secret` is the endpoint's errcode for a bad secret.
async fn answer_ask(
    ctx: &Ctx,
    compat: &Compat,
    ip: IpAddr,
    ask: &TokenAsk,
    wrong_secret: ErrCode,
) -> Response {
    match authenticate(
        ctx,
        &ask.grant_type,
        &ask.appid,
        &ask.secret,
        ip,
        wrong_secret,
    ) {
        Ok((account, client)) => {
            compat
                .token_for(ctx, account, client, ask.force_refresh)
                .await
        }
        Err(r) => r.into_response(),
    }
}

/// `GET /cgi-bin/token?grant_type=client_credential&appid=&secret=`
pub async fn token(
    State(ctx): State<Ctx>,
    State(compat): State<SharedCompat>,
    Client(ip): Client,
    ask: Result<Query<TokenAsk>, QueryRejection>,
) -> Response {
    // A parameter given twice (or not as a string) is WeChat's "invalid args", in JSON.
    let Ok(Query(mut ask)) = ask else {
        return wx_error(
            ErrCode::InvalidParameter,
            "invalid args: each parameter once",
        );
    };
    ask.force_refresh = false;
    answer_ask(&ctx, &compat, ip, &ask, ErrCode::InvalidCredential).await
}

/// `POST /cgi-bin/stable_token {grant_type, appid, secret, force_refresh}`
pub async fn stable_token(
    State(ctx): State<Ctx>,
    State(compat): State<SharedCompat>,
    Client(ip): Client,
    body: Bytes,
) -> Response {
    let Ok(ask) = serde_json::from_slice::<TokenAsk>(&body) else {
        return wx_error(ErrCode::InvalidJson, "data format error");
    };
    answer_ask(&ctx, &compat, ip, &ask, ErrCode::InvalidAppSecret).await
}

/// The account whose current central token `token` is, in constant time per account.
/// Only tokens held in memory count (a token wxgate handed out is one), so a forged
/// token costs nothing upstream, even at a cold start.
fn account_by_token(ctx: &Ctx, token: &str) -> Option<String> {
    let mut found = None;
    for name in ctx.config.accounts.keys() {
        if let Some(c) = ctx.credentials.current(name, Kind::AccessToken) {
            if crate::util::ct_eq(&c.value, token) {
                found = Some(name.clone());
            }
        }
    }
    found
}

fn access_token_param(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned())
}

fn not_ours() -> Response {
    wx_error(
        ErrCode::InvalidCredential,
        "invalid credential, access_token is invalid or not latest",
    )
}

#[derive(Deserialize)]
pub struct TicketQuery {
    #[serde(default)]
    access_token: String,
    #[serde(default, rename = "type")]
    ticket_type: String,
}

/// `GET /cgi-bin/ticket/getticket?access_token=&type=jsapi|wx_card`
pub async fn getticket(State(ctx): State<Ctx>, Query(q): Query<TicketQuery>) -> Response {
    if q.access_token.is_empty() {
        return wx_error(ErrCode::AccessTokenMissing, "access_token missing");
    }
    let Some(account) = account_by_token(&ctx, &q.access_token) else {
        return not_ours();
    };
    let Some(kind) = Kind::from_ticket_type(&q.ticket_type) else {
        return wx_error(
            ErrCode::InvalidParameter,
            "invalid args: type is jsapi or wx_card",
        );
    };
    match ctx.credentials.get(&account, kind).await {
        Ok(t) => Json(Ticket {
            errcode: 0,
            errmsg: "ok".into(),
            expires_in: t.expires_in(ctx.now()),
            ticket: t.value,
        })
        .into_response(),
        Err(e) => upstream_error(&e),
    }
}

/// `/cgi-bin/clear_quota` (and its `/v2`): each call spends one of the 10 a month.
fn is_clear_quota(path: &str) -> bool {
    wxgate_proto::api::under_prefix(path, &[ClearQuota::PATH])
}

/// Whether a client allowed to clear the quota calls from `ip`.
fn may_clear_quota(config: &Config, ip: IpAddr) -> bool {
    config
        .compat
        .clients
        .iter()
        .any(|c| c.allow_clear_quota && c.allow_ips.contains(&ip))
}

/// Any other API path: forwarded with the central token in place of the caller's.
pub async fn forwarded(
    State(ctx): State<Ctx>,
    Client(ip): Client,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(token) = access_token_param(query.as_deref()) else {
        return wx_error(ErrCode::AccessTokenMissing, "access_token missing");
    };
    let Some(account) = account_by_token(&ctx, &token) else {
        return not_ours();
    };
    if is_clear_quota(uri.path()) && !may_clear_quota(&ctx.config, ip) {
        return wx_error(
            ErrCode::ApiUnauthorized,
            "api unauthorized: clear_quota through wxgate needs a [[compat.clients]] entry with allow_clear_quota and this address in allow_ips",
        );
    }
    match forward(
        &ctx,
        &account,
        method,
        uri.path(),
        query.as_deref(),
        &headers,
        body,
    )
    .await
    {
        Ok(r) => r,
        Err(ForwardError::Path(_)) => wx_error(ErrCode::InvalidParameter, "invalid url"),
        Err(ForwardError::TooLarge(_)) => wx_error(ErrCode::InvalidFileSize, "body too large"),
        Err(ForwardError::Timeout) => {
            wx_error(ErrCode::SystemBusy, "the body did not arrive in time")
        }
        Err(ForwardError::Upstream(e)) => upstream_error(&e),
    }
}

#[derive(Deserialize)]
pub struct ComponentAsk {
    #[serde(default)]
    component_appid: String,
    #[serde(default)]
    component_appsecret: String,
}

/// `POST /cgi-bin/component/api_component_token`: the managed component token.
pub async fn component_token(
    State(ctx): State<Ctx>,
    State(components): State<Arc<ComponentService>>,
    Client(ip): Client,
    body: Bytes,
) -> Response {
    let Ok(ask) = serde_json::from_slice::<ComponentAsk>(&body) else {
        return wx_error(ErrCode::InvalidJson, "data format error");
    };
    let Some(c) = components.by_appid(&ask.component_appid) else {
        return wx_error(ErrCode::InvalidComponent, "invalid component");
    };
    let mut client = None;
    for cl in &ctx.config.compat.clients {
        let may = cl.appids.contains(&ask.component_appid)
            && (cl.allow_ips.is_empty() || cl.allow_ips.contains(&ip));
        if crate::util::ct_eq(cl.secret.expose(), &ask.component_appsecret) && may {
            client = Some(cl.name.as_str());
        }
    }
    if client.is_none() {
        if ctx.limits.failed_auth(ComponentToken::PATH, ip).is_err() {
            return wx_error(ErrCode::ApiMinuteQuota, "api minute-quota reach limit: too many wrong secrets from this address, retry later");
        }
        crate::sampled_warn!("compat_wrong_component_secret", component = %c.name, "compatible API: wrong client secret for a component");
        return wx_error(ErrCode::InvalidAppSecret, "invalid appsecret");
    }
    match components.component_access_token(c, ctx.now()).await {
        Ok((value, left)) => {
            Json(json!({ "component_access_token": value, "expires_in": left })).into_response()
        }
        Err(e) => upstream_error(&e),
    }
}

#[derive(Deserialize)]
pub struct AuthorizerAsk {
    #[serde(default)]
    component_appid: String,
    #[serde(default)]
    authorizer_appid: String,
    #[serde(default)]
    authorizer_refresh_token: String,
}

#[derive(Deserialize)]
pub struct ComponentTokenParam {
    #[serde(default)]
    component_access_token: String,
}

/// `POST /cgi-bin/component/api_authorizer_token?component_access_token=`: an
/// authorizer's managed token, for a caller holding the current component token.
pub async fn authorizer_token(
    State(ctx): State<Ctx>,
    State(components): State<Arc<ComponentService>>,
    Query(q): Query<ComponentTokenParam>,
    body: Bytes,
) -> Response {
    let Ok(ask) = serde_json::from_slice::<AuthorizerAsk>(&body) else {
        return wx_error(ErrCode::InvalidJson, "data format error");
    };
    let Some(c) = components.by_appid(&ask.component_appid) else {
        return wx_error(ErrCode::InvalidComponent, "invalid component");
    };
    let now = ctx.now();
    match components.component_access_token(c, now).await {
        Ok((current, _)) if crate::util::ct_eq(&current, &q.component_access_token) => {}
        Ok(_) => {
            return wx_error(
                ErrCode::InvalidCredential,
                "invalid credential, component_access_token is invalid or not latest",
            )
        }
        Err(e) => return upstream_error(&e),
    }
    match components
        .authorizer_access_token(c, &ask.authorizer_appid, now)
        .await
    {
        Ok((value, left)) => Json(json!({
            "authorizer_access_token": value,
            "expires_in": left,
            "authorizer_refresh_token": ask.authorizer_refresh_token,
        }))
        .into_response(),
        Err(crate::Error::UnknownAccount(_)) => wx_error(
            ErrCode::Other(61003),
            "component is not authorized by this account",
        ),
        Err(e) => upstream_error(&e),
    }
}

/// The compatible API's routes, for the main router or its own listener.
pub fn routes<S>() -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    Ctx: axum::extract::FromRef<S>,
    SharedCompat: axum::extract::FromRef<S>,
    Arc<ComponentService>: axum::extract::FromRef<S>,
{
    use axum::routing::{any, get, post};
    let mut routes = axum::Router::new()
        .route(ClassicToken::PATH, get(token))
        .route(StableToken::PATH, post(stable_token))
        .route(GetTicket::PATH, get(getticket))
        .route(ComponentToken::PATH, post(component_token))
        .route(AuthorizerToken::PATH, post(authorizer_token));
    for prefix in APP_TOKEN_PREFIXES {
        routes = routes.route(&format!("{prefix}/{{*rest}}"), any(forwarded));
    }
    routes
}
