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

mod api;
pub mod fleet;
mod pages;
pub mod problems;
pub mod rings;
pub mod session;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use self::api::{clear_quota, force_refresh, overview, recent_problems, traffic};
use self::pages::{login, logout, page, script, style};
use crate::store::keys;
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
    /// WeChat Pay's merchants, shown beside the accounts.
    pub pay: Arc<crate::pay::PayService>,
    /// The open platform's components and their authorizers.
    pub components: Arc<crate::component::ComponentService>,
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
