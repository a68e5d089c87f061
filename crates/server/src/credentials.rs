//! The central control (中控): the one place that owns each account's `access_token`,
//! `jsapi_ticket` and `wx_card` ticket.
//!
//! Read path: memory, then the store, then WeChat. Whoever fetches holds two locks: a
//! mutex in the process (single flight: one fetch however many requests wait) and a
//! lock in the store (one fetch however many instances wait), the latter with a lease so
//! a crashed holder cannot block refreshes for ever. Waiters poll the store until the new
//! value is there. A background task refreshes each credential `refresh_margin` before
//! it expires. A forced refresh names the `stale` value the caller saw rejected and only
//! fetches while the store still holds that value (compare-and-refresh), so a storm of
//! 40001s across a fleet costs one fetch. If WeChat fails, a credential that has not
//! expired keeps being served.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use wxgate_proto::api::ticket::GetTicket;
use wxgate_proto::api::token::{ClassicToken, StableToken};
use wxgate_proto::api::Endpoint;

use crate::clock::Clock;
use crate::config::{AccountConfig, CredentialsConfig, TokenApi};
use crate::error::{Error, Result};
use crate::store::{keys, SharedStore};
use crate::upstream::Upstream;

/// A credential is not handed out in its last seconds: a caller needs time to use it.
pub const MIN_VALIDITY: i64 = 10;

/// WeChat issues a new stable token (and, in the sandbox, ticket) only in the last 5
/// minutes of the current one, so those refresh inside that window.
const LATE_WINDOW_MARGIN: i64 = 280;

/// What is being controlled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Kind {
    AccessToken,
    JsapiTicket,
    WxCardTicket,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::AccessToken, Kind::JsapiTicket, Kind::WxCardTicket];

    /// The store key suffix and the name in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Kind::AccessToken => "access_token",
            Kind::JsapiTicket => "ticket:jsapi",
            Kind::WxCardTicket => "ticket:wx_card",
        }
    }

    /// The ticket `type` of `getticket`.
    pub fn ticket_type(self) -> Option<&'static str> {
        match self {
            Kind::AccessToken => None,
            Kind::JsapiTicket => Some("jsapi"),
            Kind::WxCardTicket => Some("wx_card"),
        }
    }

    pub fn from_ticket_type(t: &str) -> Option<Kind> {
        match t {
            "jsapi" => Some(Kind::JsapiTicket),
            "wx_card" => Some(Kind::WxCardTicket),
            _ => None,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A credential as stored (JSON) and served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub value: String,
    /// Unix seconds.
    pub expires_at: i64,
    pub fetched_at: i64,
    /// When the background task refreshes it.
    pub refresh_at: i64,
}

impl Credential {
    pub fn usable(&self, now: i64) -> bool {
        self.expires_at - now > MIN_VALIDITY
    }

    pub fn expires_in(&self, now: i64) -> i64 {
        (self.expires_at - now).max(0)
    }
}

/// Why a credential is being obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Want {
    /// Any usable value.
    Usable,
    /// A usable value that is not yet due for refresh.
    Fresh,
    /// A usable value other than this one (it was rejected).
    NotThis(String),
}

impl Want {
    fn satisfied_by(&self, c: &Credential, now: i64) -> bool {
        c.usable(now)
            && match self {
                Want::Usable => true,
                Want::Fresh => c.refresh_at > now,
                Want::NotThis(stale) => &c.value != stale,
            }
    }
}

#[derive(Default)]
struct Slot {
    /// Read on every `/wx/config` and token request. An `ArcSwapOption` rather than a
    /// `RwLock`: a read writes nothing shared, where a lock's reader count is a cache
    /// line passed between cores on every read.
    cached: ArcSwapOption<Credential>,
    flight: tokio::sync::Mutex<()>,
    /// Tickets are refreshed in the background once someone asked for them.
    active: AtomicBool,
    last_error: RwLock<Option<String>>,
}

struct AccountState {
    name: String,
    config: AccountConfig,
    slots: [Slot; 3],
}

/// What `wxgate status` and `/api/v1/{account}/status` show of one credential.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialStatus {
    pub kind: Kind,
    pub fetched_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub expires_in: Option<i64>,
    pub age: Option<i64>,
    pub fetches_today: i64,
    pub last_error: Option<String>,
}

pub struct CentralControl {
    store: SharedStore,
    upstream: Upstream,
    clock: Clock,
    cfg: CredentialsConfig,
    accounts: BTreeMap<String, AccountState>,
    /// Identifies this instance's locks.
    owner: String,
}

fn utc_day(unix: i64) -> String {
    // Days since the epoch to a civil date (Howard Hinnant's algorithm).
    let z = unix.div_euclid(86400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}")
}

impl CentralControl {
    pub fn new(
        store: SharedStore,
        upstream: Upstream,
        clock: Clock,
        cfg: CredentialsConfig,
        accounts: &BTreeMap<String, AccountConfig>,
    ) -> Self {
        let accounts = accounts
            .iter()
            .map(|(name, config)| {
                let state = AccountState {
                    name: name.clone(),
                    config: config.clone(),
                    slots: Default::default(),
                };
                state.slots[Kind::AccessToken.index()]
                    .active
                    .store(true, Ordering::Relaxed);
                (name.clone(), state)
            })
            .collect();
        CentralControl {
            store,
            upstream,
            clock,
            cfg,
            accounts,
            owner: crate::util::random_id(),
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    pub fn account_names(&self) -> impl Iterator<Item = &str> {
        self.accounts.keys().map(String::as_str)
    }

    pub fn account(&self, name: &str) -> Result<&AccountConfig> {
        self.state(name).map(|a| &a.config)
    }

    fn state(&self, name: &str) -> Result<&AccountState> {
        self.accounts
            .get(name)
            .ok_or_else(|| Error::UnknownAccount(name.to_owned()))
    }

    fn margin(&self, acc: &AccountState, kind: Kind) -> i64 {
        match (kind, acc.config.token_api) {
            (Kind::AccessToken, TokenApi::Classic) => self.cfg.refresh_margin,
            _ => self.cfg.refresh_margin.min(LATE_WINDOW_MARGIN),
        }
    }

    /// A usable credential: from memory when possible, else from the store or WeChat.
    pub async fn get(&self, account: &str, kind: Kind) -> Result<Credential> {
        let acc = self.state(account)?;
        let slot = &acc.slots[kind.index()];
        // Read first: a store on every request would pass the line between cores.
        if !slot.active.load(Ordering::Relaxed) {
            slot.active.store(true, Ordering::Relaxed);
        }
        if let Some(c) = self.cached(slot) {
            if c.usable(self.clock.now()) {
                return Ok(c);
            }
        }
        self.obtain(acc, kind, Want::Usable).await
    }

    /// Compare-and-refresh: a credential other than `stale`, fetching a new one only if
    /// `stale` is still the current one.
    pub async fn refresh_stale(
        &self,
        account: &str,
        kind: Kind,
        stale: &str,
    ) -> Result<Credential> {
        let acc = self.state(account)?;
        let slot = &acc.slots[kind.index()];
        if let Some(c) = self.cached(slot) {
            if c.value != stale && c.usable(self.clock.now()) {
                return Ok(c);
            }
        }
        self.obtain(acc, kind, Want::NotThis(stale.to_owned()))
            .await
    }

    /// Refreshes every active credential that is missing or due. The background task
    /// calls this every `check_interval_ms`; tests call it to step through time.
    pub async fn refresh_due(&self) {
        for acc in self.accounts.values() {
            for kind in Kind::ALL {
                let slot = &acc.slots[kind.index()];
                if !slot.active.load(Ordering::Relaxed) {
                    continue;
                }
                let now = self.clock.now();
                let due = self
                    .cached(slot)
                    .is_none_or(|c| !Want::Fresh.satisfied_by(&c, now));
                if due {
                    if let Err(e) = self.obtain(acc, kind, Want::Fresh).await {
                        tracing::warn!(account = %acc.name, kind = kind.name(), error = %e, "refresh failed");
                    }
                }
            }
        }
    }

    /// Runs [`CentralControl::refresh_due`] every `check_interval_ms` until `stop`.
    pub fn spawn_refresher(
        self: &Arc<Self>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let period = Duration::from_millis(self.cfg.check_interval_ms);
        crate::util::spawn_periodic(period, stop, move || {
            let me = me.clone();
            async move { me.refresh_due().await }
        })
    }

    fn cached(&self, slot: &Slot) -> Option<Credential> {
        slot.cached.load().as_deref().cloned()
    }

    fn remember(&self, slot: &Slot, c: &Credential) {
        slot.cached.store(Some(Arc::new(c.clone())));
    }

    fn observe(acc: &AccountState, kind: Kind, c: &Credential) {
        metrics::gauge!("wxgate_credential_expires_at", "account" => acc.name.clone(), "kind" => kind.name())
            .set(c.expires_at as f64);
    }

    async fn stored(&self, acc: &AccountState, kind: Kind) -> Result<Option<Credential>> {
        let raw = self
            .store
            .get(&keys::credential(&acc.name, kind.name()))
            .await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    async fn obtain(&self, acc: &AccountState, kind: Kind, want: Want) -> Result<Credential> {
        let slot = &acc.slots[kind.index()];
        let _flight = slot.flight.lock().await;
        let lock_key = keys::refresh_lock(&acc.name, kind.name());
        let lease = Duration::from_millis(self.cfg.lock_lease_ms);
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.cfg.wait_timeout_ms);
        let mut waited = false;
        loop {
            let now = self.clock.now();
            // Someone (this instance earlier, or another) may have done the work already.
            if let Some(c) = self.cached(slot) {
                if want.satisfied_by(&c, now) {
                    return Ok(c);
                }
            }
            let stored = match self.stored(acc, kind).await {
                Ok(s) => s,
                Err(e) => {
                    // The store is down: serve memory while it lasts, else go to WeChat
                    // directly rather than fail (no fleet coordination meanwhile).
                    tracing::warn!(account = %acc.name, kind = kind.name(), error = %e, "store unavailable");
                    if let Some(c) = self.cached(slot).filter(|c| c.usable(now)) {
                        return Ok(c);
                    }
                    let current = self.cached(slot);
                    let c = self.fetch(acc, kind, &want, current.as_ref()).await?;
                    self.remember(slot, &c);
                    return Ok(c);
                }
            };
            if let Some(c) = stored.as_ref().filter(|c| want.satisfied_by(c, now)) {
                self.remember(slot, c);
                return Ok(c.clone());
            }
            if self
                .store
                .set_if_absent(&lock_key, &self.owner, lease)
                .await?
            {
                let result = self.fetch_under_lock(acc, kind, &want, slot).await;
                if let Err(e) = self.store.compare_and_delete(&lock_key, &self.owner).await {
                    tracing::warn!(account = %acc.name, kind = kind.name(), error = %e, "lock release failed; the lease will end it");
                }
                return result;
            }
            // Another instance is fetching: wait for the store to hold its result.
            if !waited {
                waited = true;
                metrics::counter!("wxgate_lock_waits_total", "kind" => kind.name()).increment(1);
            }
            if tokio::time::Instant::now() >= deadline {
                if let Some(c) = self.cached(slot).filter(|c| c.usable(self.clock.now())) {
                    return Ok(c);
                }
                return Err(Error::LockTimeout(kind.name().into()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn fetch_under_lock(
        &self,
        acc: &AccountState,
        kind: Kind,
        want: &Want,
        slot: &Slot,
    ) -> Result<Credential> {
        // Re-read under the lock: the previous holder may have just stored a value.
        let stored = self.stored(acc, kind).await?;
        let now = self.clock.now();
        if let Some(c) = stored.as_ref().filter(|c| want.satisfied_by(c, now)) {
            self.remember(slot, c);
            return Ok(c.clone());
        }
        let current = stored.or_else(|| self.cached(slot));
        match self.fetch(acc, kind, want, current.as_ref()).await {
            Ok(c) => {
                let ttl = Duration::from_secs((c.expires_at - self.clock.now()).max(1) as u64);
                let key = keys::credential(&acc.name, kind.name());
                if let Err(e) = self
                    .store
                    .set(
                        &key,
                        &serde_json::to_string(&c).unwrap_or_default(),
                        Some(ttl),
                    )
                    .await
                {
                    // The value is good; other instances will fetch their own meanwhile.
                    tracing::warn!(account = %acc.name, kind = kind.name(), error = %e, "could not store the new credential");
                }
                self.remember(slot, &c);
                Self::observe(acc, kind, &c);
                if let Ok(mut e) = slot.last_error.write() {
                    *e = None;
                }
                Ok(c)
            }
            Err(e) => {
                tracing::warn!(account = %acc.name, kind = kind.name(), error = %e, "fetch failed");
                if let Ok(mut last) = slot.last_error.write() {
                    *last = Some(e.to_string());
                }
                // Keep serving what has not expired.
                match current.filter(|c| c.usable(self.clock.now())) {
                    Some(c) if !matches!(want, Want::NotThis(s) if *s == c.value) => {
                        self.remember(slot, &c);
                        Ok(c)
                    }
                    _ => Err(e),
                }
            }
        }
    }

    /// One upstream fetch (two for a stable token that WeChat still hands back after it
    /// was rejected: normal mode first, then forced).
    async fn fetch(
        &self,
        acc: &AccountState,
        kind: Kind,
        want: &Want,
        current: Option<&Credential>,
    ) -> Result<Credential> {
        let (value, expires_in) = match kind.ticket_type() {
            None => self.fetch_access_token(acc, want).await?,
            Some(t) => self.fetch_ticket(acc, t).await?,
        };
        let now = self.clock.now();
        self.count_fetch(acc, kind, now).await;
        let expires_at = now + expires_in;
        let unchanged = current.is_some_and(|c| c.value == value);
        // WeChat hands back the same value until the late window: try again inside it.
        let margin = if unchanged {
            self.margin(acc, kind).min(120)
        } else {
            self.margin(acc, kind)
        };
        tracing::info!(account = %acc.name, kind = kind.name(), expires_in, "credential fetched");
        Ok(Credential {
            value,
            expires_at,
            fetched_at: now,
            refresh_at: (expires_at - margin)
                .max(now + 30)
                .min(expires_at - MIN_VALIDITY),
        })
    }

    async fn count_fetch(&self, acc: &AccountState, kind: Kind, now: i64) {
        let key = keys::fetch_counter(&acc.name, &format!("{}:{}", kind.name(), utc_day(now)));
        match self.store.increment(&key, Duration::from_secs(2 * 86400)).await {
            Ok(n) => metrics::gauge!("wxgate_credential_fetches_today", "account" => acc.name.clone(), "kind" => kind.name())
                .set(n as f64),
            Err(e) => tracing::warn!(account = %acc.name, error = %e, "fetch counter not updated"),
        }
    }

    async fn fetch_access_token(&self, acc: &AccountState, want: &Want) -> Result<(String, i64)> {
        let c = &acc.config;
        let (appid, secret) = (c.appid.as_str(), c.secret.expose());
        let up = &self.upstream;
        let answer = match c.token_api {
            TokenApi::Classic => up.call_api(&ClassicToken::new(appid, secret), None).await?,
            TokenApi::Stable => {
                let normal = up
                    .call_api(&StableToken::new(appid, secret, false), None)
                    .await?;
                match want {
                    // Forced refreshes are rationed (20 a day): only when WeChat still
                    // hands back the token that was rejected.
                    Want::NotThis(stale) if &normal.access_token == stale => {
                        tracing::info!(account = %acc.name, "stable token still the rejected one; forcing a refresh");
                        up.call_api(&StableToken::new(appid, secret, true), None)
                            .await?
                    }
                    _ => normal,
                }
            }
        };
        Ok((answer.access_token, answer.expires_in))
    }

    async fn fetch_ticket(&self, acc: &AccountState, ticket_type: &str) -> Result<(String, i64)> {
        let req = GetTicket {
            ticket_type: ticket_type.to_owned(),
        };
        let t = Box::pin(self.call_api(&acc.name, &req)).await?;
        Ok((t.ticket, t.expires_in))
    }

    /// Calls a WeChat endpoint that needs the app's access_token, with the account's;
    /// on a token error (40001, 40014, 42001) refreshes compare-and-set style and
    /// retries once.
    pub async fn call_api<E: Endpoint>(&self, account: &str, req: &E) -> Result<E::Answer> {
        let token = Box::pin(self.get(account, Kind::AccessToken)).await?;
        match self.upstream.call_api(req, Some(&token.value)).await {
            Err(e) if e.errcode().is_some_and(|c| c.is_access_token_invalid()) => {
                tracing::info!(
                    account,
                    endpoint = E::PATH,
                    "access_token rejected; refreshing and retrying once"
                );
                let fresh =
                    Box::pin(self.refresh_stale(account, Kind::AccessToken, &token.value)).await?;
                self.upstream.call_api(req, Some(&fresh.value)).await
            }
            other => other,
        }
    }

    /// Calls a WeChat API with the account's access_token; on a token error (40001,
    /// 40014, 42001) refreshes compare-and-set style and retries once.
    pub async fn call_with_token(
        &self,
        account: &str,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<(bytes::Bytes, Option<String>)>,
    ) -> Result<crate::upstream::RawAnswer> {
        let token = self.get(account, Kind::AccessToken).await?;
        let with = |t: &str| {
            let mut q: Vec<(String, String)> = query
                .iter()
                .filter(|(k, _)| k != "access_token")
                .cloned()
                .collect();
            q.push(("access_token".into(), t.to_owned()));
            q
        };
        let first = self
            .upstream
            .send_raw(method.clone(), path, &with(&token.value), body.clone())
            .await?;
        let rejected =
            wxgate_proto::api::errcode_of(&first.body).is_some_and(|c| c.is_access_token_invalid());
        if !rejected {
            return Ok(first);
        }
        tracing::info!(
            account,
            endpoint = crate::upstream::endpoint_label(path),
            "access_token rejected; refreshing and retrying once"
        );
        let fresh = self
            .refresh_stale(account, Kind::AccessToken, &token.value)
            .await?;
        self.upstream
            .send_raw(method, path, &with(&fresh.value), body)
            .await
    }

    /// What an operator sees of an account's credentials (never their values).
    pub async fn status(&self, account: &str) -> Result<Vec<CredentialStatus>> {
        let acc = self.state(account)?;
        let now = self.clock.now();
        let mut out = Vec::new();
        for kind in Kind::ALL {
            let slot = &acc.slots[kind.index()];
            let c = match self.stored(acc, kind).await {
                Ok(Some(c)) => Some(c),
                _ => self.cached(slot),
            };
            let counter =
                keys::fetch_counter(&acc.name, &format!("{}:{}", kind.name(), utc_day(now)));
            let fetches_today = self
                .store
                .get(&counter)
                .await
                .ok()
                .flatten()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            out.push(CredentialStatus {
                kind,
                fetched_at: c.as_ref().map(|c| c.fetched_at),
                expires_at: c.as_ref().map(|c| c.expires_at),
                expires_in: c.as_ref().map(|c| c.expires_in(now)),
                age: c.as_ref().map(|c| now - c.fetched_at),
                fetches_today,
                last_error: slot.last_error.read().ok().and_then(|e| e.clone()),
            });
        }
        Ok(out)
    }

    /// The daily quota the counters are shown against.
    pub fn daily_quota(&self) -> i64 {
        self.cfg.daily_quota
    }

    /// Whether every account has a usable access_token (for `/readyz`), else why not.
    pub fn readiness(&self) -> Vec<(String, std::result::Result<i64, String>)> {
        let now = self.clock.now();
        self.accounts
            .values()
            .map(|acc| {
                let slot = &acc.slots[Kind::AccessToken.index()];
                let state = match self.cached(slot).filter(|c| c.usable(now)) {
                    Some(c) => Ok(c.expires_in(now)),
                    None => Err(slot
                        .last_error
                        .read()
                        .ok()
                        .and_then(|e| e.clone())
                        .unwrap_or_else(|| "no access_token yet".into())),
                };
                (acc.name.clone(), state)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::utc_day;

    #[test]
    fn utc_days() {
        assert_eq!(utc_day(0), "19700101");
        assert_eq!(utc_day(951_782_400), "20000229");
        assert_eq!(utc_day(1_700_000_000), "20231114");
        assert_eq!(utc_day(1_704_067_199), "20231231");
    }
}
