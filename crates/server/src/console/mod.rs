//! The operator console, `/console`: one page that answers an operator's questions at a
//! glance (is a token close to expiring with no refresh in sight, how much of today's
//! quota is spent, are pushes refused and why, is the webhook slow, which instance holds
//! a refresh lock), off unless `[console]` enables it.
//!
//! - [`session`]: the login (the admin key for a signed cookie) and CSRF tokens.
//! - [`rings`]: the last hour's traffic, read from the `/metrics` counters by a task.
//! - [`problems`]: the last 100 warnings, kept by a `tracing` layer.
//! - [`fleet`]: the instances' heartbeats in the store.
//!
//! The page and its script are embedded in the binary (no CDN, no build step). Every
//! data route answers 401 without a valid session, and nothing it answers carries a
//! secret, token, ticket or session: only ages, expiries and digests' first characters.

pub mod fleet;
pub mod problems;
pub mod rings;
pub mod session;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use wxgate_proto::api::openapi::ClearQuota;

use crate::credentials::Kind;
use crate::store::keys;
use crate::web::limit::Client;
use crate::web::Ctx;

/// The console's state: its keys, the rings, this instance's heartbeat.
pub struct Console {
    keys: session::Keys,
    pub rings: rings::Rings,
    me: Mutex<fleet::Heartbeat>,
    session_secs: i64,
    heartbeat: Duration,
    /// Sessions this instance saw logged out (nonce, expiry), so a logout holds here
    /// even while the store does not answer. Pruned by expiry.
    revoked: Mutex<Vec<(String, i64)>>,
}

pub type SharedConsole = Option<Arc<Console>>;

/// What the console's routes take from the server's state (through axum's `FromRef`,
/// which `http` provides): the request context and the console, if on.
#[derive(Clone)]
pub struct ConsoleState {
    pub ctx: Ctx,
    pub console: SharedConsole,
}

impl Console {
    /// The console of this gateway, if `[console]` enables it.
    pub fn new(ctx: &Ctx) -> SharedConsole {
        let c = &ctx.config.console;
        let key = c.admin_key.as_ref().filter(|_| c.enabled)?;
        let now = ctx.now();
        Some(Arc::new(Console {
            keys: session::Keys::new(key.expose()),
            rings: rings::Rings::default(),
            me: Mutex::new(fleet::Heartbeat {
                id: ctx.credentials.owner().to_owned(),
                listen: ctx.config.listen.clone(),
                public_url: ctx.config.public_url.clone(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                started_at: now,
                last_seen: now,
            }),
            session_secs: (c.session_hours * 3600) as i64,
            heartbeat: Duration::from_secs(c.heartbeat_secs),
            revoked: Mutex::new(Vec::new()),
        }))
    }

    /// The background work: a sample of the counters every 5 s into the rings, and a
    /// heartbeat every `heartbeat_secs`.
    pub fn spawn(
        self: &Arc<Self>,
        ctx: Ctx,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let me = self.clone();
        let clock = ctx.clock.clone();
        let sampler =
            crate::util::spawn_periodic(Duration::from_secs(5), stop.clone(), move || {
                let (me, now) = (me.clone(), clock.now());
                async move { me.rings.sample(&crate::metrics::render(), now) }
            });
        let me = self.clone();
        let every = self.heartbeat;
        let beat = crate::util::spawn_periodic(every, stop, move || {
            let (me, ctx) = (me.clone(), ctx.clone());
            async move {
                let hb = match me.me.lock() {
                    Ok(mut h) => {
                        h.last_seen = ctx.now();
                        h.clone()
                    }
                    Err(_) => return,
                };
                fleet::beat(ctx.store.as_ref(), &hb, every).await;
            }
        });
        vec![sampler, beat]
    }

    /// The session's cookie value if the request carries a valid one that was not
    /// logged out (here, or on any instance: the store's revocation list). A store
    /// that does not answer does not lock the operator out: the local list still holds.
    async fn session<'a>(&self, ctx: &Ctx, headers: &'a HeaderMap) -> Option<&'a str> {
        let cookie = crate::web::cookie(headers, session::COOKIE)?;
        let (_, nonce) = self.keys.verified(cookie, ctx.now())?;
        if self.revoked_here(nonce, ctx.now()) {
            return None;
        }
        match ctx.store.get(&keys::console_revoked(nonce)).await {
            Ok(Some(_)) => None,
            _ => Some(cookie),
        }
    }

    fn revoked_here(&self, nonce: &str, now: i64) -> bool {
        self.revoked
            .lock()
            .map(|mut r| {
                r.retain(|(_, expiry)| *expiry > now);
                r.iter().any(|(n, _)| n == nonce)
            })
            .unwrap_or(false)
    }

    /// Ends the session of `cookie` for the fleet, if it is a valid one.
    async fn revoke(&self, ctx: &Ctx, cookie: &str) {
        let now = ctx.now();
        let Some((expiry, nonce)) = self.keys.verified(cookie, now) else {
            return;
        };
        if let Ok(mut r) = self.revoked.lock() {
            // Bounded: a session lives at most 30 days, and an operator logs out by hand.
            if r.len() >= 10_000 {
                r.remove(0);
            }
            r.push((nonce.to_owned(), expiry));
        }
        let ttl = Duration::from_secs((expiry - now).max(1) as u64);
        if let Err(e) = ctx
            .store
            .set(&keys::console_revoked(nonce), "1", Some(ttl))
            .await
        {
            tracing::warn!(error = %e, "console: a logout could not be written to the store; other instances accept the session until it expires");
        }
    }
}

/// The console's routes (`/console`, `/console/...`); 404 for all when it is off.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ConsoleState: axum::extract::FromRef<S>,
    Ctx: axum::extract::FromRef<S>,
{
    Router::new()
        .route("/console", get(page))
        .route("/console/", get(page))
        .route("/console/console.js", get(script))
        .route("/console/console.css", get(style))
        .route("/console/login", post(login))
        .route("/console/logout", post(logout))
        .route("/console/api/overview", get(overview))
        .route("/console/api/traffic", get(traffic))
        .route("/console/api/problems", get(recent_problems))
        .route("/console/api/refresh", post(force_refresh))
        .route("/console/api/quota/clear", post(clear_quota))
}

/// What every console answer carries: no caching, no framing, nothing from elsewhere.
fn hardened(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn refusal(status: StatusCode, message: &str) -> Response {
    hardened((status, Json(json!({ "error": message }))).into_response())
}

/// Why a console route does not answer.
enum Denied {
    /// The console is off: as if it did not exist.
    Off,
    Refused(StatusCode, &'static str),
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::Off => StatusCode::NOT_FOUND.into_response(),
            Denied::Refused(status, why) => refusal(status, why),
        }
    }
}

fn console(s: &ConsoleState) -> Result<&Arc<Console>, Denied> {
    s.console.as_ref().ok_or(Denied::Off)
}

/// The console and the session of a data route, or 401.
async fn authorized<'a>(
    s: &'a ConsoleState,
    headers: &HeaderMap,
) -> Result<(&'a Arc<Console>, String), Denied> {
    let c = console(s)?;
    match c.session(&s.ctx, headers).await {
        Some(cookie) => Ok((c, cookie.to_owned())),
        None => Err(Denied::Refused(
            StatusCode::UNAUTHORIZED,
            "log in to the console",
        )),
    }
}

/// [`authorized`], and the CSRF token of a route that changes something.
async fn authorized_change<'a>(
    s: &'a ConsoleState,
    headers: &HeaderMap,
) -> Result<&'a Arc<Console>, Denied> {
    let (c, cookie) = authorized(s, headers).await?;
    let sent = headers
        .get(session::CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if crate::util::ct_eq(sent, &c.keys.csrf(&cookie)) {
        Ok(c)
    } else {
        Err(Denied::Refused(
            StatusCode::FORBIDDEN,
            "missing or wrong X-Wxgate-Csrf",
        ))
    }
}

fn asset(s: &ConsoleState, content_type: &'static str, body: &'static str) -> Response {
    if let Err(r) = console(s) {
        return r.into_response();
    }
    hardened(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

async fn page(State(s): State<ConsoleState>) -> Response {
    asset(
        &s,
        "text/html; charset=utf-8",
        include_str!("../../assets/console/index.html"),
    )
}

async fn script(State(s): State<ConsoleState>) -> Response {
    asset(
        &s,
        "application/javascript; charset=utf-8",
        include_str!("../../assets/console/console.js"),
    )
}

async fn style(State(s): State<ConsoleState>) -> Response {
    asset(
        &s,
        "text/css; charset=utf-8",
        include_str!("../../assets/console/console.css"),
    )
}

#[derive(Deserialize)]
struct Login {
    key: String,
}

/// `POST /console/login` `{"key"}`: the session cookie, or 401; 429 once the client's
/// address has spent its failed-authentication budget (`[rate_limit]`). The right key
/// always logs in: failures are charged to the address that failed, so nobody can lock
/// the operator out by sending wrong keys.
async fn login(
    State(s): State<ConsoleState>,
    Client(client): Client,
    body: axum::body::Bytes,
) -> Response {
    let c = match console(&s) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let now = s.ctx.now();
    let Ok(Login { key }) = serde_json::from_slice::<Login>(&body) else {
        return refusal(StatusCode::BAD_REQUEST, "send {\"key\": \"...\"}");
    };
    if !c.keys.is_admin_key(&key) {
        if s.ctx.limits.failed_auth("/console/login", client).is_err() {
            return refusal(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed logins from this address: wait a minute",
            );
        }
        crate::sampled_warn!("console_wrong_key", "console: a login with a wrong key");
        return refusal(StatusCode::UNAUTHORIZED, "wrong key");
    }
    let cookie = c.keys.issue(now + c.session_secs);
    let secure = if s.ctx.config.serves_https() {
        "; Secure"
    } else {
        ""
    };
    let set = format!(
        "{}={cookie}; Path=/console; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        session::COOKIE,
        c.session_secs
    );
    let mut r = Json(json!({ "ok": true })).into_response();
    if let Ok(v) = HeaderValue::from_str(&set) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    hardened(r)
}

/// `POST /console/logout`: ends the session for the whole fleet (its nonce goes into the
/// store's revocation list until the cookie would have expired, so a copied cookie
/// stops working everywhere) and forgets the cookie in this browser.
async fn logout(State(s): State<ConsoleState>, headers: HeaderMap) -> Response {
    let c = match console(&s) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    if let Some(cookie) = crate::web::cookie(&headers, session::COOKIE) {
        c.revoke(&s.ctx, cookie).await;
    }
    let mut r = Json(json!({ "ok": true })).into_response();
    let set = format!(
        "{}=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict",
        session::COOKIE
    );
    if let Ok(v) = HeaderValue::from_str(&set) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    hardened(r)
}

/// What the overview lists: a page of accounts, failing first, matching a search.
#[derive(Deserialize, Default)]
#[serde(default)]
struct OverviewQuery {
    /// Part of an account's name or appid.
    q: String,
    /// 0-based.
    page: usize,
    per_page: Option<usize>,
}

/// Accounts on a page of the console (at most [`MAX_PER_PAGE`]).
const PER_PAGE: usize = 20;
const MAX_PER_PAGE: usize = 100;

/// `GET /console/api/overview?q=&page=&per_page=`: a summary of every account's
/// credentials by state (ok, due, failing), and a page of the accounts matching `q`
/// (name or appid), failing first, each with its credentials (lifetimes, digests,
/// fetches today, last error, who holds a refresh lock); the store's health and the
/// fleet. With thousands of accounts the page keeps the answer (and the store reads it
/// costs) small.
async fn overview(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    query: Result<axum::extract::Query<OverviewQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (c, cookie) = match authorized(&s, &headers).await {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let q = query.map(|q| q.0).unwrap_or_default();
    let ctx = &s.ctx;
    let store = ctx.store.as_ref();
    let needle = q.q.trim().to_lowercase();
    let mut listed: Vec<(crate::credentials::CredentialState, String)> = ctx
        .credentials
        .states()
        .into_iter()
        .filter(|(name, _)| {
            needle.is_empty()
                || name.contains(&needle)
                || ctx
                    .credentials
                    .account(name)
                    .is_ok_and(|a| a.appid.to_lowercase().contains(&needle))
        })
        .map(|(name, state)| (state, name))
        .collect();
    listed.sort();
    let per_page = q.per_page.unwrap_or(PER_PAGE).clamp(1, MAX_PER_PAGE);
    let matched = listed.len();
    let mut accounts = Vec::new();
    for (state, name) in listed
        .iter()
        .skip(q.page.saturating_mul(per_page))
        .take(per_page)
    {
        let name = name.as_str();
        let Ok(config) = ctx.credentials.account(name) else {
            continue;
        };
        let statuses = ctx.credentials.status(name).await.unwrap_or_default();
        let mut credentials = Vec::new();
        for st in statuses {
            let lock = keys::refresh_lock(name, st.kind.name());
            let holder = store.get(&lock).await.ok().flatten();
            let mut v = serde_json::to_value(&st).unwrap_or_default();
            v["name"] = json!(st.kind.name());
            v["lock_holder"] = json!(holder);
            credentials.push(v);
        }
        accounts.push(json!({
            "name": name,
            "appid": config.appid,
            "kind": config.kind,
            "state": state.name(),
            "credentials": credentials,
        }));
    }
    let mut summary = serde_json::Map::new();
    for (kind, counts) in ctx.credentials.by_state() {
        summary.insert(
            kind.name().to_owned(),
            json!({ "failing": counts[0], "due": counts[1], "ok": counts[2] }),
        );
    }
    let store_report = crate::store::report(store, ctx.credentials.account_names()).await;
    let fleet = fleet::instances(store).await.unwrap_or_default();
    hardened(
        Json(json!({
            "now": ctx.now(),
            "instance": ctx.credentials.owner(),
            "daily_quota": ctx.credentials.daily_quota(),
            "summary": summary,
            "total_accounts": ctx.credentials.account_names().count(),
            "matched": matched,
            "page": q.page,
            "pages": matched.div_ceil(per_page),
            "accounts": accounts,
            "store": store_report,
            "fleet": fleet,
            "ip_not_whitelisted": ctx.credentials.ip_refusals(),
            "csrf": c.keys.csrf(&cookie),
        }))
        .into_response(),
    )
}

/// `GET /console/api/traffic`: the last hour, a point a minute.
async fn traffic(State(s): State<ConsoleState>, headers: HeaderMap) -> Response {
    match authorized(&s, &headers).await {
        Ok((c, _)) => hardened(Json(c.rings.snapshot()).into_response()),
        Err(r) => r.into_response(),
    }
}

/// `GET /console/api/problems`: the last 100 warnings, newest first.
async fn recent_problems(State(s): State<ConsoleState>, headers: HeaderMap) -> Response {
    match authorized(&s, &headers).await {
        Ok(_) => hardened(Json(json!({ "problems": problems::recent() })).into_response()),
        Err(r) => r.into_response(),
    }
}

#[derive(Deserialize)]
struct Target {
    account: String,
    /// `access_token`, `jsapi` or `wx_card`.
    #[serde(default)]
    kind: Option<String>,
}

fn kind_of(name: Option<&str>) -> Option<Kind> {
    match name.unwrap_or("access_token") {
        "access_token" => Some(Kind::AccessToken),
        other => Kind::from_ticket_type(other.strip_prefix("ticket:").unwrap_or(other)),
    }
}

/// The start of a route that changes something: the session, the CSRF token, and the
/// account (and kind) the body names.
async fn change_target(
    s: &ConsoleState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Target, Denied> {
    authorized_change(s, headers).await?;
    serde_json::from_slice::<Target>(body).map_err(|_| {
        Denied::Refused(
            StatusCode::BAD_REQUEST,
            "send {\"account\"} (and \"kind\" for a refresh)",
        )
    })
}

/// `POST /console/api/refresh` `{"account", "kind"}`: the same compare-and-refresh as
/// `/api/v1/{account}/token/refresh`, naming the value this instance holds as stale (so
/// a fleet that already moved on does not fetch again).
async fn force_refresh(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let t = match change_target(&s, &headers, &body).await {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    let Some(kind) = kind_of(t.kind.as_deref()) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "kind is access_token, jsapi or wx_card",
        );
    };
    let central = &s.ctx.credentials;
    if central.account(&t.account).is_err() {
        return refusal(StatusCode::NOT_FOUND, "unknown account");
    }
    let current = match central.current(&t.account, kind) {
        Some(c) => c,
        None => match central.get(&t.account, kind).await {
            Ok(c) => c,
            Err(e) => return refusal(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        },
    };
    tracing::info!(account = %t.account, kind = kind.name(), "console: forced refresh");
    match central
        .refresh_stale(&t.account, kind, &current.value)
        .await
    {
        Ok(c) => hardened(
            Json(json!({
                "ok": true,
                "fetched_at": c.fetched_at,
                "expires_at": c.expires_at,
                "digest": crate::credentials::digest(&c.value),
            }))
            .into_response(),
        ),
        Err(e) => refusal(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// `POST /console/api/quota/clear` `{"account"}`: WeChat's `/cgi-bin/clear_quota`
/// (10 times a month), as `wxgate quota clear` calls it.
async fn clear_quota(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let t = match change_target(&s, &headers, &body).await {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    let central = &s.ctx.credentials;
    let Ok(appid) = central.account(&t.account).map(|a| a.appid.clone()) else {
        return refusal(StatusCode::NOT_FOUND, "unknown account");
    };
    tracing::info!(account = %t.account, "console: clear quota");
    match central.call_api(&t.account, &ClearQuota { appid }).await {
        Ok(_) => hardened(Json(json!({ "ok": true })).into_response()),
        // WeChat's refusal (48006: ten a month) is an answer to show, not a failure.
        Err(e) => {
            let mut body: Value = json!({ "ok": false, "error": e.to_string() });
            if let Some(code) = e.errcode() {
                body["errcode"] = json!(code.code());
            }
            hardened(Json(body).into_response())
        }
    }
}
