//! The embedded store: memory in front of one redb file under `data_dir`.
//!
//! Every operation runs on an in-memory map under its shard's mutex, so it is atomic and takes
//! microseconds; the map is the truth while the process runs (redb admits one process per
//! file, so this store is for a single instance). Long-lived entries (no TTL, or a TTL
//! over [`PERSIST_MIN_TTL`]: credentials, users, sessions, counters, the expiry index)
//! are written behind to redb by a flusher every [`FLUSH_EVERY`] in one durable commit,
//! and at once when the store is dropped (a graceful stop); they are loaded back at the
//! next start, so a restart reuses a valid stored token. Short-lived entries (locks,
//! dedup answers, nonces, OAuth states) live in memory only, packed small ([`short`]):
//! a crash or restart forgets them, which costs at most a repeated handler for a push
//! retried across the restart.
//!
//! Here: the memory and the `Store` operations. [`shard`]: one shard's entries.
//! [`disk`]: loading at open and the write-behind to redb. [`short`]: the packed
//! short-lived entries. [`pushes`]: the push ledger (nonces and dedup answers).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::{PushClaim, Store};
use crate::error::{Error, Result};
use disk::flush;
use short::{Digest, Digester, ShortEntries};

mod disk;
mod pushes;
mod shard;
mod short;

/// key -> expiry (unix ms, 0 = never, 8 bytes big endian) ++ value.
const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// (index, member) -> score.
const INDEX_MEMBERS: TableDefinition<(&str, &str), i64> = TableDefinition::new("index_members");

/// How long a write may wait before it is durable.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Entries that expire sooner than this are not worth a disk write.
pub const PERSIST_MIN_TTL: Duration = Duration::from_secs(15 * 60);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn err(e: impl std::fmt::Display) -> Error {
    metrics::counter!("wxgate_store_errors_total", "store" => "embedded").increment(1);
    Error::Store(format!("embedded: {e}"))
}

#[derive(Debug, Clone)]
struct Entry {
    value: String,
    /// Unix ms; 0 = never.
    expires: i64,
}

impl Entry {
    fn live(&self, now: i64) -> bool {
        self.expires == 0 || self.expires > now
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(8 + self.value.len());
        v.extend_from_slice(&self.expires.to_be_bytes());
        v.extend_from_slice(self.value.as_bytes());
        v
    }

    fn decode(raw: &[u8]) -> Option<Entry> {
        let expires = i64::from_be_bytes(raw.get(..8)?.try_into().ok()?);
        let value = String::from_utf8(raw[8..].to_vec()).ok()?;
        Some(Entry { value, expires })
    }
}

/// A change waiting for the flusher.
enum Change {
    Put(Arc<str>, Vec<u8>),
    Delete(Arc<str>),
    IndexPut(Arc<str>, Arc<str>, i64),
    IndexDelete(Arc<str>, Arc<str>),
}

#[derive(Default)]
struct Index {
    by_score: BTreeSet<(i64, Arc<str>)>,
    members: HashMap<Arc<str>, i64>,
}

/// One shard of the key space: its own lock, so concurrent requests rarely wait and a
/// growing map rehashes a fraction of the keys at a time.
#[derive(Default)]
struct Shard {
    /// Long-lived entries, each with a durable copy in redb (or one pending).
    kv: FastMap<Arc<str>, Entry>,
    /// (expiry, key) of every long-lived entry with a TTL, to purge in order.
    expiry: BTreeSet<(i64, Arc<str>)>,
    /// Short-lived entries, in memory only and packed small.
    short: ShortEntries,
    pending: Vec<Change>,
}

/// A key as the shards need it: its text (long-lived entries) and digest (short-lived
/// entries, and the choice of shard).
struct Key<'a> {
    text: &'a str,
    digest: Digest,
}

/// The expiry indexes (few, small): one lock for all.
#[derive(Default)]
struct Indexes {
    by_name: HashMap<Arc<str>, Index>,
    pending: Vec<Change>,
}

const SHARDS: usize = 32;

/// foldhash as the long-lived map's hasher: its keys are few, short and made by wxgate
/// itself (credentials, users, sessions), so SipHash's flood resistance buys nothing,
/// and foldhash's per-process seed keeps even a chosen key from predicting a bucket.
/// Measured on the store's keys (`benches/handwritten.rs`, 2,200 lookups): foldhash
/// 17.3 µs, rustc-hash 16.0 µs, the FNV-1a written here before 117 µs.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

struct Mem {
    shards: Vec<Mutex<Shard>>,
    indexes: Mutex<Indexes>,
    digester: Digester,
    /// Nonces and dedup answers, a few bytes a push ([`pushes`]).
    pushes: Mutex<pushes::PushLedger>,
}

impl Default for Mem {
    fn default() -> Self {
        Mem {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            indexes: Mutex::new(Indexes::default()),
            digester: Digester::new(),
            pushes: Mutex::new(pushes::PushLedger::default()),
        }
    }
}

impl Mem {
    fn key<'a>(&self, text: &'a str) -> Key<'a> {
        Key {
            text,
            digest: self.digester.digest(text),
        }
    }

    fn shard(&self, key: &Key<'_>) -> &Mutex<Shard> {
        &self.shards[(key.digest.spread() % SHARDS as u64) as usize]
    }
}

pub struct EmbeddedStore {
    mem: Arc<Mem>,
    db: Arc<Database>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic under the lock cannot leave the maps torn in a way that matters more
    // than stopping: keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl EmbeddedStore {
    /// Runs `f` on the shard that holds `key`.
    fn with<T>(&self, key: &str, f: impl FnOnce(&mut Shard, &Key<'_>) -> T) -> T {
        let key = self.mem.key(key);
        f(&mut lock(self.mem.shard(&key)), &key)
    }

    fn with_indexes<T>(&self, f: impl FnOnce(&mut Indexes) -> T) -> T {
        f(&mut lock(&self.mem.indexes))
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        if let Err(e) = flush(&self.mem, &self.db) {
            tracing::warn!(error = %e, "embedded store: final flush failed");
        }
    }
}

fn ready<'a, T: Send + 'a>(v: T) -> BoxFuture<'a, Result<T>> {
    Box::pin(std::future::ready(Ok(v)))
}

impl Store for EmbeddedStore {
    fn claim_push<'a>(
        &'a self,
        dedup_key: &'a str,
        nonce_key: &'a str,
        dedup_ttl: Duration,
        nonce_ttl: Duration,
    ) -> BoxFuture<'a, Result<PushClaim>> {
        let now = now_ms();
        let at = |ttl: Duration| now + (ttl.as_millis() as i64).max(1);
        let claim =
            lock(&self.mem.pushes).claim(dedup_key, nonce_key, at(dedup_ttl), at(nonce_ttl), now);
        ready(claim)
    }

    fn push_answer<'a>(&'a self, dedup_key: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        ready(lock(&self.mem.pushes).answer(dedup_key, now_ms()))
    }

    /// The answer keeps the claim's expiry (the ledger has no other).
    fn settle_push<'a>(
        &'a self,
        dedup_key: &'a str,
        answer: &'a str,
        _dedup_ttl: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        lock(&self.mem.pushes).settle(dedup_key, answer, now_ms());
        ready(())
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        ready(self.with(key, |m, k| m.live(k, now_ms()).map(|(v, _)| v.to_owned())))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        self.with(key, |m, k| m.put(k, value, ttl));
        ready(())
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        ready(self.with(key, |m, k| m.remove(k)))
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        ready(self.with(key, |m, k| {
            if m.live(k, now_ms()).is_some() {
                return false;
            }
            m.put(k, value, Some(ttl));
            true
        }))
    }

    fn compare_and_delete<'a>(
        &'a self,
        key: &'a str,
        expected: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        ready(self.with(key, |m, k| {
            if m.live(k, now_ms()).map(|(v, _)| v) != Some(expected) {
                return false;
            }
            m.remove(k);
            true
        }))
    }

    fn compare_and_set<'a>(
        &'a self,
        key: &'a str,
        expected: Option<&'a str>,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool>> {
        ready(self.with(key, |m, k| {
            if m.live(k, now_ms()).map(|(v, _)| v) != expected {
                return false;
            }
            m.put(k, value, ttl);
            true
        }))
    }

    fn increment<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<i64>> {
        ready(self.with(key, |m, k| {
            let now = now_ms();
            match m
                .live(k, now)
                .map(|(v, expires)| (v.parse::<i64>(), expires))
            {
                Some((count, expires)) => {
                    let n = count.unwrap_or(0) + 1;
                    // The first increment's expiry stays.
                    let persist =
                        expires == 0 || expires - now >= PERSIST_MIN_TTL.as_millis() as i64;
                    m.put_entry(k, &n.to_string(), expires, persist);
                    n
                }
                None => {
                    m.put(k, "1", Some(ttl));
                    1
                }
            }
        }))
    }

    fn index_put<'a>(
        &'a self,
        index: &'a str,
        member: &'a str,
        score: i64,
    ) -> BoxFuture<'a, Result<()>> {
        self.with_indexes(|m| {
            let ix_name: Arc<str> = Arc::from(index);
            let ix = m.by_name.entry(ix_name.clone()).or_default();
            let member: Arc<str> = Arc::from(member);
            if let Some(old) = ix.members.insert(member.clone(), score) {
                ix.by_score.remove(&(old, member.clone()));
            }
            ix.by_score.insert((score, member.clone()));
            m.pending.push(Change::IndexPut(ix_name, member, score));
        });
        ready(())
    }

    fn index_due<'a>(
        &'a self,
        index: &'a str,
        max: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<(String, i64)>>> {
        ready(self.with_indexes(|m| {
            m.by_name
                .get(index)
                .map(|ix| {
                    ix.by_score
                        .iter()
                        .take_while(|(s, _)| *s <= max)
                        .take(limit)
                        .map(|(s, member)| (member.to_string(), *s))
                        .collect()
                })
                .unwrap_or_default()
        }))
    }

    fn index_remove<'a>(&'a self, index: &'a str, member: &'a str) -> BoxFuture<'a, Result<()>> {
        self.with_indexes(|m| {
            if let Some(ix) = m.by_name.get_mut(index) {
                if let Some((k, old)) = ix.members.remove_entry(member) {
                    ix.by_score.remove(&(old, k.clone()));
                    m.pending.push(Change::IndexDelete(Arc::from(index), k));
                }
            }
        });
        ready(())
    }

    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        ready(())
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }
}

#[cfg(test)]
mod tests;
