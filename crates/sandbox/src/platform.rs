//! The platform's state and rules: tokens, tickets, codes, users, quotas and what was
//! sent. The HTTP routes are thin over this; every WeChat rule the sandbox plays lives
//! here, with the document it comes from.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Serialize;
use wxgate_proto::api::sns::MiniProgramSession;
use wxgate_proto::ErrCode;

use crate::clock::Clock;
use crate::config::{AppConfig, AppKind, SandboxConfig, TestUser};
use crate::faults::Faults;

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
    let body: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect();
    format!("{prefix}{body}")
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

#[derive(Debug, Clone)]
struct OauthCode {
    appid: String,
    openid: String,
    scope: String,
    issued_at: i64,
    used: bool,
}

#[derive(Debug, Clone)]
struct UserToken {
    appid: String,
    openid: String,
    scope: String,
    expires_at: i64,
}

#[derive(Debug, Clone)]
struct RefreshToken {
    appid: String,
    openid: String,
    scope: String,
    expires_at: i64,
}

#[derive(Debug, Clone)]
struct JsCode {
    appid: String,
    openid: String,
    issued_at: i64,
    used: bool,
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
    oauth_codes: HashMap<String, OauthCode>,
    user_tokens: HashMap<String, UserToken>,
    refresh_tokens: HashMap<String, RefreshToken>,
    js_codes: HashMap<String, JsCode>,
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
    /// Temporary media uploaded through `/cgi-bin/media/upload`.
    pub media: crate::routes::media::MediaStore,
}

/// A freshly issued access token or ticket.
#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    pub value: String,
    pub expires_in: i64,
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

    // ---- access tokens --------------------------------------------------------------

    fn issue_token(&self, s: &mut State, appid: &str, now: i64, prefix: &str) -> String {
        let value = random_value(prefix, 96);
        s.tokens.insert(
            value.clone(),
            Issued {
                appid: appid.to_owned(),
                expires_at: now + self.config.limits.token_ttl,
                revoked_at: None,
            },
        );
        value
    }

    /// The checks both token endpoints make: grant_type, appid, secret (40001 when wrong).
    fn client_credential(
        &self,
        grant_type: &str,
        appid: &str,
        secret: &str,
    ) -> WxResult<&AppConfig> {
        if grant_type != "client_credential" {
            return Err(WxError::new(ErrCode::InvalidGrantType));
        }
        self.authenticate(appid, secret, ErrCode::InvalidCredential)
    }

    /// `GET /cgi-bin/token`: a new token every call; the previous one keeps working for
    /// the overlap (5 minutes), as getAccessToken documents.
    pub fn classic_token(&self, grant_type: &str, appid: &str, secret: &str) -> WxResult<Grant> {
        let app = self.client_credential(grant_type, appid, secret)?;
        let now = self.now();
        let limits = &self.config.limits;
        let mut s = self.lock();
        let st = s.apps.entry(app.appid.clone()).or_default();
        if !st
            .classic_daily
            .take(now.div_euclid(86400), limits.token_daily_quota)
        {
            return Err(WxError::new(ErrCode::ApiDailyQuota));
        }
        let previous = st.classic.take();
        let value = self.issue_token(&mut s, appid, now, "SBXAT");
        if let Some(prev) = previous {
            if let Some(t) = s.tokens.get_mut(&prev) {
                t.revoked_at = Some(now + limits.token_overlap);
            }
        }
        s.apps.get_mut(appid).expect("app state").classic = Some(value.clone());
        Ok(Grant {
            value,
            expires_in: limits.token_ttl,
        })
    }

    /// `POST /cgi-bin/stable_token`: normal mode returns the current token while it has
    /// more than 5 minutes left, and a new one in its last 5 minutes (both valid meanwhile);
    /// `force_refresh` invalidates the previous token at once, at most 20 times a day, and
    /// is ignored within 30 s of the previous forced refresh (getStableAccessToken).
    pub fn stable_token(
        &self,
        grant_type: &str,
        appid: &str,
        secret: &str,
        force: bool,
    ) -> WxResult<Grant> {
        let app = self.client_credential(grant_type, appid, secret)?;
        let now = self.now();
        let limits = &self.config.limits;
        let mut s = self.lock();
        let st = s.apps.entry(app.appid.clone()).or_default();
        if !st
            .stable_minute
            .take(now.div_euclid(60), limits.stable_minute_quota)
            || !st
                .stable_daily
                .take(now.div_euclid(86400), limits.stable_daily_quota)
        {
            return Err(WxError::new(ErrCode::ApiDailyQuota));
        }
        let current = st.stable.clone();
        let current_left = current
            .as_ref()
            .and_then(|v| s.tokens.get(v))
            .map(|t| t.valid_until() - now)
            .filter(|left| *left > 0);
        if force {
            let recent =
                st_last_force(&s, appid).is_some_and(|t| now - t < limits.stable_force_interval);
            if recent {
                if let (Some(v), Some(left)) = (current.clone(), current_left) {
                    return Ok(Grant {
                        value: v,
                        expires_in: left,
                    });
                }
            } else {
                let st = s.apps.get_mut(appid).expect("app state");
                if !st
                    .force_daily
                    .take(now.div_euclid(86400), limits.stable_force_daily)
                {
                    return Err(WxError::with(
                        ErrCode::ApiDailyQuota,
                        "reach max api daily quota limit: force_refresh is limited to 20 a day",
                    ));
                }
                st.last_force = Some(now);
                if let Some(prev) = current.as_ref() {
                    if let Some(t) = s.tokens.get_mut(prev) {
                        t.revoked_at = Some(now);
                    }
                }
                let value = self.issue_token(&mut s, appid, now, "SBXST");
                s.apps.get_mut(appid).expect("app state").stable = Some(value.clone());
                return Ok(Grant {
                    value,
                    expires_in: limits.token_ttl,
                });
            }
        }
        if let (Some(v), Some(left)) = (current.clone(), current_left) {
            if left > limits.token_overlap {
                return Ok(Grant {
                    value: v,
                    expires_in: left,
                });
            }
        }
        // No valid token, or in its last 5 minutes: a new one; the old stays valid until
        // its own expiry.
        let value = self.issue_token(&mut s, appid, now, "SBXST");
        s.apps.get_mut(appid).expect("app state").stable = Some(value.clone());
        Ok(Grant {
            value,
            expires_in: limits.token_ttl,
        })
    }

    /// The app a token belongs to, or WeChat's error for it: 41001 missing, 42001
    /// expired, 40001 unknown or superseded ("not latest").
    pub fn check_token(&self, token: &str) -> WxResult<String> {
        if token.is_empty() {
            return Err(WxError::new(ErrCode::AccessTokenMissing));
        }
        let now = self.now();
        let s = self.lock();
        match s.tokens.get(token) {
            None => Err(WxError::with(
                ErrCode::InvalidCredential,
                "invalid credential, access_token is invalid or not latest",
            )),
            Some(t) if t.revoked_at.is_some_and(|r| now >= r) && now < t.expires_at => {
                Err(WxError::with(
                    ErrCode::InvalidCredential,
                    "invalid credential, access_token is invalid or not latest",
                ))
            }
            Some(t) if now >= t.valid_until() => Err(WxError::new(ErrCode::AccessTokenExpired)),
            Some(t) => Ok(t.appid.clone()),
        }
    }

    /// `POST /cgi-bin/clear_quota`: resets the app's counts, 10 times a month.
    pub fn clear_quota(&self, token_app: &str, appid: &str) -> WxResult<()> {
        if appid.is_empty() {
            return Err(WxError::new(ErrCode::AppIdMissing));
        }
        if token_app != appid {
            return Err(WxError::with(
                ErrCode::InvalidAppId,
                "appid does not match the access_token",
            ));
        }
        let now = self.now();
        let mut s = self.lock();
        let st = s.apps.entry(appid.to_owned()).or_default();
        if !st.clear_quota_monthly.take(
            now.div_euclid(30 * 86400),
            self.config.limits.clear_quota_monthly,
        ) {
            return Err(WxError::new(ErrCode::ClearQuotaLimit));
        }
        st.classic_daily = Counter::default();
        st.stable_daily = Counter::default();
        st.stable_minute = Counter::default();
        st.force_daily = Counter::default();
        Ok(())
    }

    // ---- tickets --------------------------------------------------------------------

    /// `GET /cgi-bin/ticket/getticket`: the current ticket of that type while it has more
    /// than the overlap left, else a new one (the previous stays valid until its expiry).
    pub fn ticket(&self, token: &str, kind: &str) -> WxResult<Grant> {
        let appid = self.check_token(token)?;
        if kind != "jsapi" && kind != "wx_card" {
            return Err(WxError::with(
                ErrCode::InvalidParameter,
                "invalid args: type must be jsapi or wx_card",
            ));
        }
        let now = self.now();
        let limits = &self.config.limits;
        let mut s = self.lock();
        let st = s.apps.entry(appid).or_default();
        if let Some((v, exp)) = st.tickets.get(kind) {
            if exp - now > limits.token_overlap {
                return Ok(Grant {
                    value: v.clone(),
                    expires_in: exp - now,
                });
            }
        }
        let prefix = if kind == "jsapi" { "SBXJT" } else { "SBXCT" };
        let value = random_value(prefix, 80);
        let expires_at = now + limits.token_ttl;
        // Keep the superseded ticket findable for the JS-SDK check until it expires.
        if let Some(old) = st
            .tickets
            .insert(kind.to_owned(), (value.clone(), expires_at))
        {
            st.tickets.insert(format!("{kind}:previous"), old);
        }
        Ok(Grant {
            value,
            expires_in: limits.token_ttl,
        })
    }

    /// Tickets of the type that WeChat would accept now (current and superseded).
    pub fn valid_tickets(&self, appid: &str, kind: &str) -> Vec<String> {
        let now = self.now();
        let s = self.lock();
        let Some(st) = s.apps.get(appid) else {
            return vec![];
        };
        [kind.to_owned(), format!("{kind}:previous")]
            .iter()
            .filter_map(|k| st.tickets.get(k))
            .filter(|(_, exp)| *exp > now)
            .map(|(v, _)| v.clone())
            .collect()
    }

    // ---- OAuth ----------------------------------------------------------------------

    /// Issues the `code` the authorize page redirects with.
    pub fn issue_oauth_code(&self, appid: &str, openid: &str, scope: &str) -> WxResult<String> {
        self.app(appid)?;
        if self.user(appid, openid).is_none() {
            return Err(WxError::new(ErrCode::InvalidOpenid));
        }
        let code = random_value("SBXOC", 28);
        let now = self.now();
        self.lock().oauth_codes.insert(
            code.clone(),
            OauthCode {
                appid: appid.to_owned(),
                openid: openid.to_owned(),
                scope: scope.to_owned(),
                issued_at: now,
                used: false,
            },
        );
        Ok(code)
    }

    fn grant_user(
        &self,
        s: &mut State,
        appid: &str,
        openid: &str,
        scope: &str,
        refresh: Option<String>,
    ) -> UserGrant {
        let now = self.now();
        let access_token = random_value("SBXUT", 80);
        s.user_tokens.insert(
            access_token.clone(),
            UserToken {
                appid: appid.to_owned(),
                openid: openid.to_owned(),
                scope: scope.to_owned(),
                expires_at: now + self.config.limits.token_ttl,
            },
        );
        let refresh_token = refresh.unwrap_or_else(|| {
            let r = random_value("SBXRT", 80);
            s.refresh_tokens.insert(
                r.clone(),
                RefreshToken {
                    appid: appid.to_owned(),
                    openid: openid.to_owned(),
                    scope: scope.to_owned(),
                    expires_at: now + self.config.limits.refresh_token_ttl,
                },
            );
            r
        });
        let unionid = self.user(appid, openid).and_then(|u| u.unionid);
        UserGrant {
            access_token,
            expires_in: self.config.limits.token_ttl,
            refresh_token,
            openid: openid.to_owned(),
            scope: scope.to_owned(),
            unionid,
        }
    }

    /// `GET /sns/oauth2/access_token`: a code works once (40163 after), for 5 minutes
    /// (40029 after, or when unknown or another app's).
    pub fn exchange_oauth_code(
        &self,
        appid: &str,
        secret: &str,
        code: &str,
        grant_type: &str,
    ) -> WxResult<UserGrant> {
        self.authenticate(appid, secret, ErrCode::InvalidAppSecret)?;
        if grant_type != "authorization_code" {
            return Err(WxError::new(ErrCode::InvalidGrantType));
        }
        if code.is_empty() {
            return Err(WxError::new(ErrCode::CodeMissing));
        }
        let now = self.now();
        let mut s = self.lock();
        let c = match s.oauth_codes.get_mut(code) {
            Some(c) if c.appid == appid && now - c.issued_at < self.config.limits.code_ttl => c,
            _ => return Err(WxError::with(ErrCode::InvalidCode, "invalid code")),
        };
        if c.used {
            return Err(WxError::new(ErrCode::CodeBeenUsed));
        }
        c.used = true;
        let (openid, scope) = (c.openid.clone(), c.scope.clone());
        Ok(self.grant_user(&mut s, appid, &openid, &scope, None))
    }

    /// `GET /sns/oauth2/refresh_token`: a new user access_token for a refresh_token that
    /// has not passed its 30 days (42002 after, 40030 when unknown).
    pub fn refresh_user_token(
        &self,
        appid: &str,
        grant_type: &str,
        refresh_token: &str,
    ) -> WxResult<UserGrant> {
        self.app(appid)?;
        if grant_type != "refresh_token" {
            return Err(WxError::new(ErrCode::InvalidGrantType));
        }
        let now = self.now();
        let mut s = self.lock();
        let r = match s.refresh_tokens.get(refresh_token) {
            Some(r) if r.appid == appid => r.clone(),
            _ => return Err(WxError::new(ErrCode::InvalidRefreshToken)),
        };
        if now >= r.expires_at {
            return Err(WxError::new(ErrCode::RefreshTokenExpired));
        }
        Ok(self.grant_user(
            &mut s,
            appid,
            &r.openid,
            &r.scope,
            Some(refresh_token.to_owned()),
        ))
    }

    fn check_user_token(&self, access_token: &str, openid: &str) -> WxResult<UserToken> {
        if access_token.is_empty() {
            return Err(WxError::new(ErrCode::AccessTokenMissing));
        }
        let now = self.now();
        let s = self.lock();
        let t = s.user_tokens.get(access_token).cloned().ok_or_else(|| {
            WxError::with(
                ErrCode::InvalidCredential,
                "invalid credential, access_token is invalid or not latest",
            )
        })?;
        if now >= t.expires_at {
            return Err(WxError::new(ErrCode::AccessTokenExpired));
        }
        if t.openid != openid {
            return Err(WxError::new(ErrCode::InvalidOpenid));
        }
        Ok(t)
    }

    /// `GET /sns/userinfo`: only for snsapi_userinfo tokens (48001 otherwise).
    pub fn sns_userinfo(&self, access_token: &str, openid: &str) -> WxResult<serde_json::Value> {
        let t = self.check_user_token(access_token, openid)?;
        if t.scope != "snsapi_userinfo" {
            return Err(WxError::with(
                ErrCode::ApiUnauthorized,
                "api unauthorized: scope is snsapi_base",
            ));
        }
        let u = self
            .user(&t.appid, openid)
            .ok_or_else(|| WxError::new(ErrCode::InvalidOpenid))?;
        let mut v = serde_json::json!({
            "openid": u.openid,
            "nickname": u.nickname,
            "sex": u.sex,
            "province": u.province,
            "city": u.city,
            "country": u.country,
            "headimgurl": u.headimgurl,
            "privilege": u.privilege,
        });
        if let Some(unionid) = u.unionid {
            v["unionid"] = unionid.into();
        }
        Ok(v)
    }

    /// `GET /sns/auth`: whether a user access token is valid for the openid.
    pub fn sns_auth(&self, access_token: &str, openid: &str) -> WxResult<()> {
        self.check_user_token(access_token, openid).map(|_| ())
    }

    // ---- Mini Program ---------------------------------------------------------------

    /// What `wx.login()` gives the Mini Program: a js_code for the user.
    pub fn issue_js_code(&self, appid: &str, openid: &str) -> WxResult<String> {
        let app = self.app(appid)?;
        if app.kind != AppKind::Miniapp {
            return Err(WxError::with(
                ErrCode::InvalidAppId,
                "not a mini program appid",
            ));
        }
        if self.user(appid, openid).is_none() {
            return Err(WxError::new(ErrCode::InvalidOpenid));
        }
        let code = random_value("SBXJC", 24);
        let now = self.now();
        self.lock().js_codes.insert(
            code.clone(),
            JsCode {
                appid: appid.to_owned(),
                openid: openid.to_owned(),
                issued_at: now,
                used: false,
            },
        );
        Ok(code)
    }

    /// `GET /sns/jscode2session`: the user's openid, unionid and a new session_key (a new
    /// login replaces the previous session_key). Codes work once, for 5 minutes.
    pub fn jscode2session(
        &self,
        appid: &str,
        secret: &str,
        js_code: &str,
        grant_type: &str,
    ) -> WxResult<MiniProgramSession> {
        self.authenticate(appid, secret, ErrCode::InvalidAppSecret)?;
        if grant_type != "authorization_code" {
            return Err(WxError::new(ErrCode::InvalidGrantType));
        }
        if js_code.is_empty() {
            return Err(WxError::new(ErrCode::CodeMissing));
        }
        let now = self.now();
        let session_key = wxgate_proto::crypto::base64_encode(&rand::random::<[u8; 16]>());
        let mut s = self.lock();
        let c = match s.js_codes.get_mut(js_code) {
            Some(c) if c.appid == appid && now - c.issued_at < self.config.limits.code_ttl => c,
            _ => return Err(WxError::with(ErrCode::InvalidCode, "invalid code")),
        };
        if c.used {
            return Err(WxError::new(ErrCode::CodeBeenUsed));
        }
        c.used = true;
        let openid = c.openid.clone();
        s.apps
            .entry(appid.to_owned())
            .or_default()
            .session_keys
            .insert(openid.clone(), session_key.clone());
        drop(s);
        let unionid = self.user(appid, &openid).and_then(|u| u.unionid);
        Ok(MiniProgramSession {
            openid,
            session_key,
            unionid,
        })
    }

    /// The user's current session_key (after a jscode2session).
    pub fn session_key(&self, appid: &str, openid: &str) -> Option<String> {
        self.lock()
            .apps
            .get(appid)?
            .session_keys
            .get(openid)
            .cloned()
    }

    // ---- followers and messages -----------------------------------------------------

    /// `GET /cgi-bin/user/get`: followers in pages of at most 10000.
    pub fn followers(&self, appid: &str, next_openid: &str) -> WxResult<serde_json::Value> {
        let all = self.followers.get(appid).cloned().unwrap_or_default();
        let start = if next_openid.is_empty() {
            0
        } else {
            all.iter()
                .position(|o| o == next_openid)
                .map(|i| i + 1)
                .ok_or_else(|| WxError::with(ErrCode::InvalidOpenid, "invalid next_openid"))?
        };
        let page: Vec<String> = all.iter().skip(start).take(10_000).cloned().collect();
        let next = page.last().cloned().unwrap_or_default();
        let mut v = serde_json::json!({
            "total": all.len(),
            "count": page.len(),
            "next_openid": next,
        });
        if !page.is_empty() {
            v["data"] = serde_json::json!({ "openid": page });
        }
        Ok(v)
    }

    /// `GET /cgi-bin/user/info` for a follower.
    pub fn user_info(&self, appid: &str, openid: &str) -> WxResult<serde_json::Value> {
        if openid.is_empty() {
            return Err(WxError::new(ErrCode::OpenidMissing));
        }
        let u = self
            .user(appid, openid)
            .ok_or_else(|| WxError::new(ErrCode::InvalidOpenid))?;
        let mut v = serde_json::json!({
            "subscribe": 1,
            "openid": u.openid,
            "language": "zh_CN",
            "subscribe_time": 1_700_000_000,
            "remark": "",
            "groupid": 0,
            "tagid_list": [],
            "subscribe_scene": "ADD_SCENE_QR_CODE",
            "qr_scene": 0,
            "qr_scene_str": "",
        });
        if let Some(unionid) = u.unionid {
            v["unionid"] = unionid.into();
        }
        Ok(v)
    }

    /// Records a message the app sent, after checking the recipient follows the app.
    pub fn record_sent(&self, appid: &str, kind: &str, body: serde_json::Value) -> WxResult<u64> {
        let touser = body
            .get("touser")
            .and_then(|t| t.as_str())
            .unwrap_or_default();
        if touser.is_empty() {
            return Err(WxError::new(ErrCode::OpenidMissing));
        }
        if self.user(appid, touser).is_none() {
            return Err(WxError::new(ErrCode::InvalidOpenid));
        }
        let now = self.now();
        let mut s = self.lock();
        s.next_msgid += 1;
        let id = s.next_msgid;
        s.sent.push(Sent {
            appid: appid.to_owned(),
            kind: kind.to_owned(),
            at: now,
            body,
        });
        Ok(id)
    }

    pub fn sent(&self, appid: Option<&str>) -> Vec<Sent> {
        self.lock()
            .sent
            .iter()
            .filter(|m| appid.is_none_or(|a| a == m.appid))
            .cloned()
            .collect()
    }
}

fn st_last_force(s: &State, appid: &str) -> Option<i64> {
    s.apps.get(appid).and_then(|a| a.last_force)
}
