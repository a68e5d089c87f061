//! The platform's state and rules: tokens, tickets, codes, users, quotas and what was
//! sent. The HTTP routes are thin over this; every WeChat rule the sandbox plays lives
//! here, with the document it comes from, one file per WeChat API family:
//! [`tokens`] (access_token, stable_token, quota), [`tickets`], [`oauth`] (web
//! authorization), [`miniprogram`] (jscode2session), [`followers`] (users and sent
//! messages); [`codes`] is the one-time code both kinds of login use.

mod codes;
mod component;
mod followers;
mod miniprogram;
mod oauth;
mod tickets;
mod tokens;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::Serialize;
use wxgate_proto::ErrCode;

use crate::clock::Clock;
use crate::config::{AppConfig, SandboxConfig, TestUser};
use crate::faults::Faults;
use codes::OneTimeCodes;

/// A WeChat error answer: errcode plus errmsg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WxError {
    pub code: ErrCode,
    pub msg: String,
}

impl WxError {
    pub fn new(code: ErrCode) -> Self {
        WxError {
            code,
            msg: code.meaning().to_owned(),
        }
    }

    pub fn with(code: ErrCode, msg: impl Into<String>) -> Self {
        WxError {
            code,
            msg: msg.into(),
        }
    }
}

pub type WxResult<T> = Result<T, WxError>;

/// An opaque random credential, with a prefix that makes sandbox values easy to spot
/// (and to grep for in logs that must not contain them).
pub fn random_value(prefix: &str, len: usize) -> String {
    format!("{prefix}{}", wxgate_proto::jssdk::nonce_str(len))
}

#[derive(Debug, Clone)]
struct Issued {
    appid: String,
    expires_at: i64,
    /// Set when a newer credential superseded this one: valid until then.
    revoked_at: Option<i64>,
}

impl Issued {
    fn valid_until(&self) -> i64 {
        self.revoked_at
            .map_or(self.expires_at, |r| r.min(self.expires_at))
    }
}

/// A user's access_token or refresh_token from web authorization: for whom, for what.
#[derive(Debug, Clone)]
struct UserCredential {
    appid: String,
    openid: String,
    scope: String,
    expires_at: i64,
}

#[derive(Debug, Clone, Default)]
struct Counter {
    window: i64,
    count: u64,
}

impl Counter {
    /// Counts a call in the window; false when the limit was already reached.
    fn take(&mut self, window: i64, limit: u64) -> bool {
        if self.window != window {
            self.window = window;
            self.count = 0;
        }
        if self.count >= limit {
            return false;
        }
        self.count += 1;
        true
    }
}

#[derive(Debug, Default)]
struct AppState {
    classic: Option<String>,
    stable: Option<String>,
    tickets: HashMap<String, (String, i64)>,
    classic_daily: Counter,
    stable_daily: Counter,
    stable_minute: Counter,
    force_daily: Counter,
    last_force: Option<i64>,
    clear_quota_monthly: Counter,
    session_keys: HashMap<String, String>,
    /// A component's verify tickets, newest last, with when each was pushed.
    component_tickets: Vec<(String, i64)>,
    /// A component's authorization-event URL (set by the admin API), whether a ticket
    /// push was asked for (`api_start_push_ticket`), and events waiting to be pushed.
    component_event_url: Option<String>,
    component_push_asked: bool,
    component_events: Vec<String>,
    /// An authorizer's refresh token per component (authorizer appid -> token).
    authorizer_refresh: HashMap<String, String>,
}

/// A message the app sent through the platform, kept for tests to read back.
#[derive(Debug, Clone, Serialize)]
pub struct Sent {
    pub appid: String,
    /// `custom` (customer-service message) or `template`.
    pub kind: String,
    pub at: i64,
    pub body: serde_json::Value,
}

/// A call count: every call, and those that named an app.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallCount {
    pub total: u64,
    pub by_app: BTreeMap<String, u64>,
}

#[derive(Default)]
struct State {
    apps: HashMap<String, AppState>,
    tokens: HashMap<String, Issued>,
    /// `component_access_token`s, apart from the apps' tokens: WeChat accepts neither
    /// in the other's place.
    component_tokens: HashMap<String, Issued>,
    oauth_codes: OneTimeCodes,
    /// The open platform's authorization codes (the code's `openid` is the authorizer's
    /// appid), an hour each.
    auth_codes: OneTimeCodes,
    /// Pre-authorization codes (`api_create_preauthcode`), one use each.
    pre_auth_codes: OneTimeCodes,
    user_tokens: HashMap<String, UserCredential>,
    refresh_tokens: HashMap<String, UserCredential>,
    js_codes: OneTimeCodes,
    phone_codes: OneTimeCodes,
    sent: Vec<Sent>,
    next_msgid: u64,
    calls: BTreeMap<String, CallCount>,
}

/// The sandbox platform.
pub struct Platform {
    pub config: SandboxConfig,
    pub clock: Clock,
    pub faults: Mutex<Faults>,
    state: Mutex<State>,
    followers: HashMap<String, Vec<String>>,
    /// WeChat Pay (`/v3/...`).
    pub pay: crate::pay::Pay,
    /// Temporary media uploaded through `/cgi-bin/media/upload`.
    pub media: Mutex<HashMap<String, Media>>,
    /// One-time subscriptions a user accepted: (appid, openid, template_id) -> count.
    pub subscriptions: Mutex<HashMap<(String, String, String), u32>>,
    /// Each app's custom menu (`/cgi-bin/menu/create`).
    pub menus: Mutex<HashMap<String, serde_json::Value>>,
}

/// A freshly issued access token or ticket.
#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    pub value: String,
    pub expires_in: i64,
}

/// A temporary media file (`/cgi-bin/media/upload`), by media_id in [`Platform::media`].
pub struct Media {
    pub kind: String,
    pub filename: String,
    pub content_type: String,
    pub bytes: axum::body::Bytes,
}

/// What `/sns/oauth2/access_token` and `/sns/oauth2/refresh_token` answer: the type the
/// gateway reads.
pub type UserGrant = wxgate_proto::api::sns::UserToken;

impl Platform {
    pub fn new(config: SandboxConfig) -> Self {
        let followers = config
            .apps
            .iter()
            .map(|app| {
                let mut list: Vec<String> = app.users.iter().map(|u| u.openid.clone()).collect();
                list.extend((0..app.extra_followers).map(|i| format!("oFollower{:018}", i)));
                (app.appid.clone(), list)
            })
            .collect();
        let pay = crate::pay::Pay::new(config.pay_merchants.clone());
        Platform {
            config,
            clock: Clock::default(),
            faults: Mutex::new(Faults::default()),
            state: Mutex::new(State {
                next_msgid: 200_000_000,
                ..State::default()
            }),
            followers,
            media: Default::default(),
            pay,
            menus: Default::default(),
            subscriptions: Default::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters to a test double; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn app(&self, appid: &str) -> WxResult<&AppConfig> {
        if appid.is_empty() {
            return Err(WxError::new(ErrCode::AppIdMissing));
        }
        self.config
            .apps
            .iter()
            .find(|a| a.appid == appid)
            .ok_or_else(|| WxError::with(ErrCode::InvalidAppId, format!("invalid appid {appid}")))
    }

    /// The app, if `secret` is its secret.
    /// WeChat's IP whitelist (IP白名单) of `appid`: 40164 naming the address it saw, as
    /// WeChat words it, when the app has a whitelist without `ip`.
    pub fn check_ip(&self, appid: &str, ip: Option<std::net::IpAddr>) -> WxResult<()> {
        let (Ok(app), Some(ip)) = (self.app(appid), ip) else {
            return Ok(());
        };
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        if app.ip_whitelist.is_empty() || app.ip_whitelist.iter().any(|a| a.parse() == Ok(ip)) {
            return Ok(());
        }
        // The open platform names the same refusal with its own errcode.
        if app.kind == crate::config::AppKind::Component {
            return Err(WxError::with(
                ErrCode::ClientIpNotRegistered,
                format!("access clientip is not registered, not in whitelist, clientip:{ip}"),
            ));
        }
        Err(WxError::with(
            ErrCode::InvalidIp,
            format!("invalid ip {ip} ipv6 ::ffff:{ip}, not in whitelist"),
        ))
    }

    pub fn authenticate(&self, appid: &str, secret: &str, wrong: ErrCode) -> WxResult<&AppConfig> {
        let app = self.app(appid)?;
        if secret.is_empty() {
            return Err(WxError::new(ErrCode::SecretMissing));
        }
        if app.secret != secret {
            return Err(WxError::with(wrong, "invalid appsecret"));
        }
        Ok(app)
    }

    pub fn user(&self, appid: &str, openid: &str) -> Option<TestUser> {
        let app = self.app(appid).ok()?;
        if let Some(u) = app.users.iter().find(|u| u.openid == openid) {
            return Some(u.clone());
        }
        self.followers
            .get(appid)?
            .iter()
            .find(|o| *o == openid)
            .map(|o| TestUser {
                openid: o.clone(),
                unionid: None,
                nickname: format!("follower {o}"),
                sex: 0,
                province: String::new(),
                city: String::new(),
                country: "CN".into(),
                headimgurl: String::new(),
                privilege: vec![],
                phone: None,
            })
    }

    // ---- call counters ------------------------------------------------------------

    /// Counts a call: the middleware counts every call (`appid` None, into `total`),
    /// and a handler that can tell the app adds it to `by_app`.
    pub fn count_call(&self, path: &str, appid: Option<&str>) {
        let mut s = self.lock();
        let c = s.calls.entry(path.to_owned()).or_default();
        match appid {
            None => c.total += 1,
            Some(a) => *c.by_app.entry(a.to_owned()).or_default() += 1,
        }
    }

    pub fn calls(&self) -> BTreeMap<String, CallCount> {
        self.lock().calls.clone()
    }

    pub fn reset_calls(&self) {
        self.lock().calls.clear();
    }
}

fn st_last_force(s: &State, appid: &str) -> Option<i64> {
    s.apps.get(appid).and_then(|a| a.last_force)
}
