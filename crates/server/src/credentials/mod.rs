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
//! around a fetch. [`fetch`]: the WeChat calls, through `wxgate_proto::api`.
//! [`liveness`]: whether a token WeChat called invalid is dead. [`refresher`]: the
//! background refreshes. [`status`]: what operators see. [`delegate`]: the accounts
//! another part holds the credentials of (a third-party platform's authorizers).

pub mod delegate;
mod fetch;
mod flight;
mod liveness;
mod refresher;
mod status;

pub use liveness::{LIVENESS_BURST, LIVENESS_REFILL};
pub use status::{check_app, digest, AppCheck, CredentialStatus};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwapOption;
use liveness::Liveness;
use refresher::LATE_WINDOW_MARGIN;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::config::{AccountConfig, CredentialsConfig, TokenApi};
use crate::error::{Error, Result};
use crate::store::{keys, SharedStore};
use crate::upstream::Upstream;

/// A credential is not handed out in its last seconds: a caller needs time to use it.
pub const MIN_VALIDITY: i64 = 10;

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
    /// Who answers for the accounts that are not configured (`{component}:{appid}`).
    delegate: std::sync::OnceLock<Arc<dyn delegate::Delegate>>,
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
            delegate: std::sync::OnceLock::new(),
        }
    }

    /// Sets who answers for the accounts named `{component}:{appid}` (once, when the
    /// gateway is built).
    pub fn set_delegate(&self, d: Arc<dyn delegate::Delegate>) {
        let _ = self.delegate.set(d);
    }

    /// The delegate answering for `name`, a name that is not a configured account.
    pub fn delegate_for(&self, name: &str) -> Result<&dyn delegate::Delegate> {
        match self.delegate.get() {
            Some(d) if name.contains(':') => Ok(d.as_ref()),
            _ => Err(Error::UnknownAccount(name.to_owned())),
        }
    }

    /// The account a route serves: a configured one, or one the delegate acts for (for
    /// `purpose`, which it checks).
    pub async fn account_for(
        &self,
        name: &str,
        purpose: delegate::Purpose,
    ) -> Result<std::borrow::Cow<'_, AccountConfig>> {
        match self.accounts.get(name) {
            Some(a) => Ok(std::borrow::Cow::Borrowed(&a.config)),
            None => self
                .delegate_for(name)?
                .account(name, purpose)
                .await
                .map(std::borrow::Cow::Owned),
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
        let Some(acc) = self.accounts.get(account) else {
            return self.delegate_for(account)?.credential(account, kind).await;
        };
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
        let Some(acc) = self.accounts.get(account) else {
            return self
                .delegate_for(account)?
                .refresh_stale(account, kind, stale)
                .await;
        };
        let slot = &acc.slots[kind.index()];
        if let Some(c) = self.cached(slot) {
            if c.value != stale && c.usable(self.clock.now()) {
                return Ok(c);
            }
        }
        self.obtain(acc, kind, Want::NotThis(stale.to_owned()))
            .await
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

    async fn stored(&self, acc: &AccountState, kind: Kind) -> Result<Option<Credential>> {
        let key = keys::credential(&acc.name, kind.name());
        let raw = crate::store::get_migrating(self.store.as_ref(), &key).await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }
}
