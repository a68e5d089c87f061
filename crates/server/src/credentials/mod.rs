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
//! expired keeps being served. If the store fails (down, failing over), so does a valid
//! credential in memory, and a refresh waits for the store instead of fetching without
//! the fleet's lock.
//!
//! Here: the types and the read path. [`flight`]: the single flight and the fleet lock
//! around a fetch. [`fetch`]: the WeChat calls, through `wxgate_proto::api`. [`status`]:
//! what operators see.

mod fetch;
mod flight;
mod status;

pub use status::{check_app, digest, AppCheck, CredentialStatus};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use wxgate_proto::api::openapi::GetApiDomainIp;

use crate::clock::Clock;
use crate::config::{AccountConfig, CredentialsConfig, TokenApi};
use crate::error::{Error, Result};
use crate::store::{keys, SharedStore};
use crate::upstream::Upstream;

/// A credential is not handed out in its last seconds: a caller needs time to use it.
pub const MIN_VALIDITY: i64 = 10;

/// Liveness checks an account may make in a burst, and how often one more is allowed:
/// an honest token error is checked at once, and a caller provoking token errors on
/// purpose costs WeChat at most one check every [`LIVENESS_REFILL`] once the burst is
/// spent (and never a refresh).
pub const LIVENESS_BURST: f64 = 5.0;
pub const LIVENESS_REFILL: Duration = Duration::from_secs(10);

/// The liveness checks of an account's access_token: the last verdict and the budget.
struct Liveness {
    /// (token, when checked, alive).
    verdict: Option<(String, std::time::Instant, bool)>,
    budget: f64,
    refilled: std::time::Instant,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            verdict: None,
            budget: LIVENESS_BURST,
            refilled: std::time::Instant::now(),
        }
    }
}

impl Liveness {
    /// Takes one check from the budget, if any is left.
    fn spend(&mut self) -> bool {
        let now = std::time::Instant::now();
        let earned =
            now.duration_since(self.refilled).as_secs_f64() / LIVENESS_REFILL.as_secs_f64();
        self.budget = (self.budget + earned).min(LIVENESS_BURST);
        self.refilled = now;
        if self.budget >= 1.0 {
            self.budget -= 1.0;
            true
        } else {
            false
        }
    }
}

/// WeChat issues a new stable token (and, in the sandbox, ticket) only in the last 5
/// minutes of the current one, so those refresh inside that window.
const LATE_WINDOW_MARGIN: i64 = 280;

/// How long a credential that failed `failures` times in a row waits before its next
/// background refresh: 2, 4, 8, ... seconds up to `cap`, scaled by a random 50-100%
/// (so accounts that failed together do not retry together), and never past half of
/// what the credential it holds still has to live (`held`: its expiry).
fn backoff_delay(failures: u32, cap: u64, held: Option<i64>, now: i64) -> i64 {
    let exp = 2u64.saturating_pow(failures.min(30)).min(cap.max(1));
    let jittered = (exp as f64 * (0.5 + rand::random::<f64>() / 2.0)).ceil() as i64;
    let before_expiry = held.map_or(i64::MAX, |at| ((at - now - MIN_VALIDITY) / 2).max(1));
    jittered.clamp(1, before_expiry.max(1))
}

/// Where a credential stands, for operators at scale: `ok` (usable, not yet due),
/// `due` (usable, to be refreshed) or `failing` (nothing usable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CredentialState {
    Failing = 0,
    Due = 1,
    Ok = 2,
}

impl CredentialState {
    fn of(c: Option<&Credential>, now: i64) -> Self {
        match c {
            Some(c) if c.usable(now) && c.refresh_at > now => CredentialState::Ok,
            Some(c) if c.usable(now) => CredentialState::Due,
            _ => CredentialState::Failing,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CredentialState::Ok => "ok",
            CredentialState::Due => "due",
            CredentialState::Failing => "failing",
        }
    }
}

/// What is being controlled. Written (in `/api/v1/{account}/status`, the console) by its
/// [`Kind::name`], WeChat's word for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
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

/// WeChat refusing the server's IP address for an account (40164, 61004, 60020).
#[derive(Debug, Clone, Serialize)]
pub struct IpRefused {
    pub account: String,
    /// The address WeChat saw, when its errmsg names one.
    pub ip: Option<String>,
    pub errcode: i64,
    /// Unix seconds of the first refusal in a row.
    pub since: i64,
    #[serde(skip)]
    logged_minute: i64,
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
    /// A background refresh of it is running (a hanging one is not started twice).
    refreshing: AtomicBool,
    /// Told when a background refresh of it ends, for a round that found it running.
    refreshed: tokio::sync::Notify,
    /// Consecutive failed background refreshes, and when the next may start (unix s).
    backoff: std::sync::Mutex<(u32, i64)>,
    last_error: RwLock<Option<String>>,
}

struct AccountState {
    name: String,
    config: AccountConfig,
    slots: [Slot; 3],
    /// WeChat refuses this server's IP for the account (40164 and kin): what it said.
    ip_refused: std::sync::Mutex<Option<IpRefused>>,
    /// The liveness checks of the access_token. An async mutex held across a check: a
    /// storm of token errors waits for one check.
    liveness: tokio::sync::Mutex<Liveness>,
}

pub struct CentralControl {
    store: SharedStore,
    upstream: Upstream,
    clock: Clock,
    cfg: CredentialsConfig,
    accounts: BTreeMap<String, AccountState>,
    /// Identifies this instance's locks.
    owner: String,
    /// Bounds the background refreshes running at once (`max_concurrent_refreshes`).
    refresh_slots: Arc<tokio::sync::Semaphore>,
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
                    liveness: Default::default(),
                    ip_refused: Default::default(),
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
            refresh_slots: Arc::new(tokio::sync::Semaphore::new(
                cfg.max_concurrent_refreshes.max(1),
            )),
            cfg,
            accounts,
            owner: crate::util::random_id(),
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// This instance's id on the refresh locks it holds.
    pub fn owner(&self) -> &str {
        &self.owner
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

    /// Whether WeChat no longer accepts `token`, an access_token of `account` that
    /// wxgate handed out, for a token error seen on a call sent at `sent`. Asked with
    /// the cheapest authenticated call (`/cgi-bin/get_api_domain_ip`), one check at a
    /// time per account: a verdict made after `sent` answers every such error; a newer
    /// error is checked again while the account's budget lasts ([`LIVENESS_BURST`],
    /// one more every [`LIVENESS_REFILL`]), else the last verdict stands (alive, if
    /// this token was never checked). A token error in some other answer is not proof:
    /// `/sns/*` and a few others answer 40001 about a token of the caller's, and a
    /// forced refresh ends the central token for every holder. Only a token error
    /// counts as dead: an unreachable WeChat does not burn a fetch.
    pub async fn is_dead(&self, account: &str, token: &str, sent: std::time::Instant) -> bool {
        let Ok(acc) = self.state(account) else {
            return false;
        };
        let mut memo = acc.liveness.lock().await;
        let known = memo
            .verdict
            .as_ref()
            .filter(|(t, _, _)| t == token)
            .map(|(_, at, alive)| (*at, *alive));
        if let Some((at, alive)) = known {
            if at >= sent {
                return !alive;
            }
        }
        if !memo.spend() {
            metrics::counter!("wxgate_liveness_checks_refused_total", "account" => crate::metrics::account_label(&acc.name))
                .increment(1);
            return known.is_some_and(|(_, alive)| !alive);
        }
        let checked_at = std::time::Instant::now();
        let alive = match self
            .upstream
            .call_with_access_token(&GetApiDomainIp {}, token)
            .await
        {
            Err(e) => !e.errcode().is_some_and(|c| c.is_access_token_invalid()),
            Ok(_) => true,
        };
        memo.verdict = Some((token.to_owned(), checked_at, alive));
        drop(memo);
        if !alive {
            metrics::counter!("wxgate_token_confirmed_dead_total", "account" => crate::metrics::account_label(&acc.name))
                .increment(1);
        }
        !alive
    }

    /// [`CentralControl::refresh_stale`] for an access_token that WeChat rejected in
    /// the answer to a call sent at `sent`, only once [`CentralControl::is_dead`]
    /// confirms it: `None` when the token is alive (the rejection was about something
    /// else).
    pub async fn refresh_if_dead(
        &self,
        account: &str,
        stale: &str,
        sent: std::time::Instant,
    ) -> Result<Option<Credential>> {
        if let Some(c) = self.current(account, Kind::AccessToken) {
            if c.value != stale {
                return Ok(Some(c));
            }
        }
        if !self.is_dead(account, stale, sent).await {
            return Ok(None);
        }
        self.refresh_stale(account, Kind::AccessToken, stale)
            .await
            .map(Some)
    }

    /// The accounts for which WeChat refuses this server's IP right now: what the
    /// console shows as a banner.
    pub fn ip_refusals(&self) -> Vec<IpRefused> {
        self.accounts
            .values()
            .filter_map(|a| a.ip_refused.lock().ok()?.clone())
            .collect()
    }

    /// A fetch refused for the server's IP: remembered for the console, counted, and
    /// one error line a minute naming the address (not a warning per fetch).
    fn note_ip_refused(&self, acc: &AccountState, e: &Error) {
        let (code, errmsg) = match e {
            Error::WeChat { code, errmsg, .. } => (code.code(), errmsg.as_str()),
            _ => return,
        };
        let ip = wxgate_proto::errcode::refused_ip(errmsg).map(|a| a.to_string());
        let now = self.clock.now();
        metrics::counter!("wxgate_ip_not_whitelisted_total", "account" => crate::metrics::account_label(&acc.name))
            .increment(1);
        let Ok(mut slot) = acc.ip_refused.lock() else {
            return;
        };
        let entry = slot.get_or_insert_with(|| IpRefused {
            account: acc.name.clone(),
            ip: ip.clone(),
            errcode: code,
            since: now,
            logged_minute: i64::MIN,
        });
        entry.ip = ip;
        if entry.logged_minute != now.div_euclid(60) {
            entry.logged_minute = now.div_euclid(60);
            tracing::error!(
                account = %acc.name,
                errcode = code,
                egress_ip = entry.ip.as_deref().unwrap_or("unknown"),
                "WeChat refuses this server's IP address: add the egress_ip to the account's IP whitelist (公众平台 → 设置与开发 → 基本配置 → IP白名单; Mini Programs: 开发管理 → 开发设置 → IP白名单)"
            );
        }
    }

    /// Refreshes every active credential that is missing or due, side by side (at
    /// most `max_concurrent_refreshes` at once, each under `refresh_timeout_ms`),
    /// skipping those whose failures put them in backoff; one still refreshing from an
    /// earlier call is waited for, not fetched twice. Returns once all are done. The background
    /// task calls this every `check_interval_ms` without waiting for it; tests call it
    /// to step through time.
    pub async fn refresh_due(&self) {
        let now = self.clock.now();
        let due: Vec<(&AccountState, Kind)> = self
            .accounts
            .values()
            .flat_map(|acc| Kind::ALL.into_iter().map(move |kind| (acc, kind)))
            .filter(|(acc, kind)| self.is_due(acc, *kind, now))
            .collect();
        futures_util::stream::iter(due)
            .for_each_concurrent(None, |(acc, kind)| self.refresh_one(acc, kind))
            .await;
        self.publish_states();
    }

    /// Whether the background refresh should fetch this credential now.
    fn is_due(&self, acc: &AccountState, kind: Kind, now: i64) -> bool {
        let slot = &acc.slots[kind.index()];
        if !slot.active.load(Ordering::Relaxed) {
            return false;
        }
        if slot.backoff.lock().is_ok_and(|b| now < b.1) {
            return false;
        }
        self.cached(slot)
            .is_none_or(|c| !Want::Fresh.satisfied_by(&c, now))
    }

    /// One background refresh: a slot of the bound, the timeout, and the backoff.
    async fn refresh_one(&self, acc: &AccountState, kind: Kind) {
        let slot = &acc.slots[kind.index()];
        if slot.refreshing.swap(true, Ordering::AcqRel) {
            // Another round is refreshing it: this one waits for that refresh to end
            // rather than starting a second.
            loop {
                let ended = slot.refreshed.notified();
                tokio::pin!(ended);
                ended.as_mut().enable();
                if !slot.refreshing.load(Ordering::Acquire) {
                    return;
                }
                ended.await;
            }
        }
        let Ok(_permit) = self.refresh_slots.acquire().await else {
            slot.refreshing.store(false, Ordering::Release);
            slot.refreshed.notify_waiters();
            return;
        };
        let timeout = Duration::from_millis(self.cfg.refresh_timeout_ms.max(1));
        let result = match tokio::time::timeout(timeout, self.obtain(acc, kind, Want::Fresh)).await
        {
            Ok(r) => r.map(drop),
            Err(_) => Err(Error::Transport {
                endpoint: kind.name().into(),
                reason: format!(
                    "no answer within credentials.refresh_timeout_ms ({} ms)",
                    timeout.as_millis()
                ),
            }),
        };
        let now = self.clock.now();
        match result {
            Ok(()) => {
                if let Ok(mut b) = slot.backoff.lock() {
                    *b = (0, 0);
                }
            }
            Err(e) => {
                let held = self.cached(slot).map(|c| c.expires_at);
                let (failures, delay) = match slot.backoff.lock() {
                    Ok(mut b) => {
                        b.0 = b.0.saturating_add(1);
                        let delay = backoff_delay(b.0, self.cfg.max_backoff_secs, held, now);
                        b.1 = now + delay;
                        (b.0, delay)
                    }
                    Err(_) => (0, 0),
                };
                metrics::counter!("wxgate_refresh_failures_total", "kind" => kind.name())
                    .increment(1);
                if !e.errcode().is_some_and(|c| c.is_ip_not_whitelisted()) {
                    tracing::warn!(account = %acc.name, kind = kind.name(), error = %e, failures, retry_in_secs = delay, "refresh failed");
                }
            }
        }
        slot.refreshing.store(false, Ordering::Release);
        slot.refreshed.notify_waiters();
    }

    /// Runs [`CentralControl::refresh_due`] every `check_interval_ms` until `stop`,
    /// each round on its own task: a round held up by a slow account does not hold
    /// up the next round's other accounts.
    pub fn spawn_refresher(
        self: &Arc<Self>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let period = Duration::from_millis(self.cfg.check_interval_ms);
        crate::util::spawn_periodic(period, stop, move || {
            let me = me.clone();
            async move {
                tokio::spawn(async move { me.refresh_due().await });
            }
        })
    }

    /// The credential this instance holds in memory and may hand out, without asking
    /// the store or WeChat: for checking a token a caller presents, which must cost
    /// nothing upstream.
    pub fn current(&self, account: &str, kind: Kind) -> Option<Credential> {
        let acc = self.state(account).ok()?;
        self.cached(&acc.slots[kind.index()])
            .filter(|c| c.usable(self.clock.now()))
    }

    fn cached(&self, slot: &Slot) -> Option<Credential> {
        slot.cached.load().as_deref().cloned()
    }

    fn remember(&self, slot: &Slot, c: &Credential) {
        slot.cached.store(Some(Arc::new(c.clone())));
    }

    fn observe(acc: &AccountState, kind: Kind, c: &Credential) {
        // A series per account only where they are wanted (not for thousands).
        if crate::metrics::per_account_labels() {
            metrics::gauge!("wxgate_credential_expires_at", "account" => acc.name.clone(), "kind" => kind.name())
                .set(c.expires_at as f64);
        }
    }

    /// How many credentials of each kind are ok, due or failing now: `wxgate_credentials`
    /// and what the console's summary counts. A kind nobody asked for (a ticket) is
    /// not counted.
    pub fn by_state(&self) -> Vec<(Kind, [usize; 3])> {
        let now = self.clock.now();
        Kind::ALL
            .into_iter()
            .map(|kind| {
                let mut counts = [0usize; 3];
                for acc in self.accounts.values() {
                    let slot = &acc.slots[kind.index()];
                    if !slot.active.load(Ordering::Relaxed) {
                        continue;
                    }
                    counts[CredentialState::of(self.cached(slot).as_ref(), now) as usize] += 1;
                }
                (kind, counts)
            })
            .collect()
    }

    /// The state of every account's access_token, for listing and filtering.
    pub fn states(&self) -> Vec<(String, CredentialState)> {
        let now = self.clock.now();
        self.accounts
            .values()
            .map(|acc| {
                let slot = &acc.slots[Kind::AccessToken.index()];
                (
                    acc.name.clone(),
                    CredentialState::of(self.cached(slot).as_ref(), now),
                )
            })
            .collect()
    }

    fn publish_states(&self) {
        for (kind, counts) in self.by_state() {
            for state in [
                CredentialState::Ok,
                CredentialState::Due,
                CredentialState::Failing,
            ] {
                metrics::gauge!("wxgate_credentials", "kind" => kind.name(), "state" => state.name())
                    .set(counts[state as usize] as f64);
            }
        }
    }

    async fn stored(&self, acc: &AccountState, kind: Kind) -> Result<Option<Credential>> {
        let key = keys::credential(&acc.name, kind.name());
        let raw = crate::store::get_migrating(self.store.as_ref(), &key).await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_cap_and_before_expiry() {
        for _ in 0..100 {
            let d = backoff_delay(1, 300, None, 0);
            assert!((1..=2).contains(&d), "{d}");
            let d = backoff_delay(5, 300, None, 0);
            assert!((16..=32).contains(&d), "{d}");
            let d = backoff_delay(30, 300, None, 0);
            assert!((150..=300).contains(&d), "capped: {d}");
            // A token with 200 s left is retried within half of them.
            let d = backoff_delay(30, 300, Some(1_000 + 200), 1_000);
            assert!(d <= (200 - MIN_VALIDITY) / 2, "{d}");
            // Expired: still a second or more, never zero or negative.
            assert_eq!(backoff_delay(30, 300, Some(900), 1_000), 1);
        }
    }
}
