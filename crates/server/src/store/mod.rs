//! Where the gateway keeps what must outlive a request or be shared by a fleet: tokens,
//! tickets, locks, counters, dedup answers, sessions.
//!
//! One trait, [`Store`], two implementations that pass one conformance suite:
//! [`embedded::EmbeddedStore`] (a redb file; one process; survives restarts) and
//! [`redis::RedisStore`] (shared by many instances; one node, Sentinel or Cluster). Keys are built only in [`keys`],
//! so every key can be found by name in one search. TTLs run on real time.

pub mod embedded;
pub mod keys;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::config::{StoreConfig, StoreKind};
use crate::error::{Error, Result};

/// The operations the gateway needs from a store. Every method is atomic on its key.
pub trait Store: Send + Sync + 'static {
    /// The value, unless absent or expired.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>>>;
    /// Sets the value, expiring after `ttl` (never when `None`).
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>>;
    /// Deletes the key; true if it existed.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>>;
    /// Sets the value only if the key is absent (a lock); true if it was set.
    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Deletes the key only if it holds `expected` (a lock release); true if deleted.
    fn compare_and_delete<'a>(
        &'a self,
        key: &'a str,
        expected: &'a str,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Sets `value` only if the key holds `expected` (`None`: only if absent).
    fn compare_and_set<'a>(
        &'a self,
        key: &'a str,
        expected: Option<&'a str>,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Adds one and returns the new count; the first increment sets the TTL.
    fn increment<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<i64>>;
    /// Puts `member` into the expiry index `index` with `score` (unix seconds).
    fn index_put<'a>(
        &'a self,
        index: &'a str,
        member: &'a str,
        score: i64,
    ) -> BoxFuture<'a, Result<()>>;
    /// Members with a score at most `max`, lowest first, at most `limit`.
    fn index_due<'a>(
        &'a self,
        index: &'a str,
        max: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<(String, i64)>>>;
    /// Removes `member` from the index.
    fn index_remove<'a>(&'a self, index: &'a str, member: &'a str) -> BoxFuture<'a, Result<()>>;
    /// Claims a push for handling, in one atomic step (one round trip on Redis): a
    /// push already remembered under `dedup_key` gets its answer ([`PushClaim::Known`]:
    /// [`PUSH_PENDING`] while it is being handled, then what [`Store::settle_push`]
    /// recorded); else a (timestamp, nonce) already used under `nonce_key` is a
    /// [`PushClaim::Replay`]; else both are remembered, the dedup answer as
    /// [`PUSH_PENDING`] for `dedup_ttl`, the nonce for `nonce_ttl`.
    fn claim_push<'a>(
        &'a self,
        dedup_key: &'a str,
        nonce_key: &'a str,
        dedup_ttl: Duration,
        nonce_ttl: Duration,
    ) -> BoxFuture<'a, Result<PushClaim>>;
    /// The answer remembered for a push, if any.
    fn push_answer<'a>(&'a self, dedup_key: &'a str) -> BoxFuture<'a, Result<Option<String>>>;
    /// Records the answer of a claimed push ([`PUSH_DONE`] for `success`), for
    /// `dedup_ttl` from now at most.
    fn settle_push<'a>(
        &'a self,
        dedup_key: &'a str,
        answer: &'a str,
        dedup_ttl: Duration,
    ) -> BoxFuture<'a, Result<()>>;
    /// Whether the store answers.
    fn ping(&self) -> BoxFuture<'_, Result<()>>;
    /// A short name for logs and `/readyz`.
    fn kind(&self) -> &'static str;
    /// Whether the store has been answering, as its commands found it (no command is
    /// sent): for `/readyz` and the metrics.
    fn health(&self) -> StoreHealth {
        StoreHealth {
            mode: self.kind(),
            up: true,
            down_for_ms: None,
            last_error: None,
            outages: 0,
        }
    }
}

/// What `/readyz` and the console say of the store, from [`report`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreReport {
    pub kind: &'static str,
    pub mode: &'static str,
    /// The store answered, for every account's keys.
    pub ok: bool,
    /// `up`, `recovered` (after an outage), or `unavailable: ...` and what wxgate does
    /// meanwhile, so an operator need not read the source.
    pub state: &'static str,
    pub outages: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down_for_ms: Option<u64>,
}

/// Asks the store whether it answers: PING, then a read in each account's own keys,
/// because a Cluster answers PING from the masters it knows while an account's slot
/// has none (its master died, its replica not yet promoted). On one node or Sentinel
/// it is the same node, and cheap.
pub async fn report<'a>(
    store: &dyn Store,
    accounts: impl IntoIterator<Item = &'a str>,
) -> StoreReport {
    let mut answered = store.ping().await;
    if answered.is_ok() {
        for account in accounts {
            if let Err(e) = store.get(&keys::credential(account, "access_token")).await {
                answered = Err(e);
                break;
            }
        }
    }
    // Read after the commands, which may have ended or begun an outage.
    let health = store.health();
    let (state, error, down_for_ms) = match answered {
        Err(e) => (
            "unavailable: valid tokens and tickets are served from memory; refreshes and pushes wait for the store",
            Some(e.to_string()),
            health.down_for_ms,
        ),
        Ok(()) if health.outages > 0 => ("recovered", None, None),
        Ok(()) => ("up", None, None),
    };
    StoreReport {
        kind: store.kind(),
        mode: health.mode,
        ok: error.is_none(),
        state,
        outages: health.outages,
        error,
        down_for_ms,
    }
}

/// What [`Store::health`] tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreHealth {
    /// `embedded`, or the Redis topology: `single`, `sentinel`, `cluster`.
    pub mode: &'static str,
    /// False from a command that found the store unreachable (a dead node, a failover
    /// under way) to the next command that was answered.
    pub up: bool,
    /// How long the store has been unreachable, while it is.
    pub down_for_ms: Option<u64>,
    /// What the first failed command of this outage said.
    pub last_error: Option<String>,
    /// Outages since the start (each one ended by an answer, or still going on).
    pub outages: u64,
}

pub type SharedStore = Arc<dyn Store>;

/// A claimed push's answer while its handlers run.
pub const PUSH_PENDING: &str = "pending";
/// The answer `success` (nearly every push's): stores keep it in bits, not text.
pub const PUSH_DONE: &str = "done:";

/// What [`Store::claim_push`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushClaim {
    /// New: remembered now, its handlers are to run.
    Claimed,
    /// Seen before (a retry): its answer, or [`PUSH_PENDING`].
    Known(String),
    /// Another message under a used timestamp and nonce.
    Replay,
}

/// [`Store::get`], falling back to the key's pre-0.6 spelling ([`keys::legacy`]) when
/// the key is absent, so values stored by an older version (tokens, remembered users,
/// Mini Program sessions) stay readable after an upgrade. Only for keys whose loss a
/// user would notice: a dedup answer or nonce lives a few minutes and is not migrated.
pub async fn get_migrating(store: &dyn Store, key: &str) -> Result<Option<String>> {
    Ok(find_migrating(store, key).await?.map(|(value, _)| value))
}

/// [`get_migrating`], and the old key when the value was found there (for a caller that
/// moves it).
pub async fn find_migrating(
    store: &dyn Store,
    key: &str,
) -> Result<Option<(String, Option<String>)>> {
    if let Some(v) = store.get(key).await? {
        return Ok(Some((v, None)));
    }
    let Some(old) = keys::legacy(key) else {
        return Ok(None);
    };
    Ok(store.get(&old).await?.map(|v| (v, Some(old))))
}

/// Opens the configured store.
pub async fn open(config: &StoreConfig, data_dir: &std::path::Path) -> Result<SharedStore> {
    match config.kind {
        StoreKind::Embedded => {
            let path = config
                .path
                .clone()
                .unwrap_or_else(|| data_dir.join("wxgate.redb"));
            Ok(Arc::new(embedded::EmbeddedStore::open(&path)?))
        }
        StoreKind::Redis => {
            let topology = match (&config.redis_url, &config.sentinel, &config.cluster) {
                (Some(url), None, None) => redis::Topology::Single(url.clone()),
                (None, Some(s), None) => redis::Topology::Sentinel {
                    master_name: s.master_name.clone(),
                    nodes: s.nodes.clone(),
                    db: s.db,
                },
                (None, None, Some(c)) => redis::Topology::Cluster(c.nodes.clone()),
                _ => {
                    return Err(Error::Config(
                        "the redis store needs one of store.redis_url, [store.sentinel] and [store.cluster]".into(),
                    ))
                }
            };
            let ca = match &config.redis_ca_file {
                Some(path) => Some(std::fs::read(path).map_err(|e| {
                    Error::Config(format!("store.redis_ca_file {}: {e}", path.display()))
                })?),
                None => None,
            };
            Ok(Arc::new(redis::RedisStore::open(topology, ca).await?))
        }
    }
}
