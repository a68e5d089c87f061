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

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::Store;
use crate::error::{Error, Result};
use short::{Digest, Digester, ShortEntries};

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

/// FNV-1a as the long-lived map's hasher: its keys are few, short and made by wxgate
/// itself (credentials, users, sessions), so SipHash's flood resistance buys nothing.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;

struct Mem {
    shards: Vec<Mutex<Shard>>,
    indexes: Mutex<Indexes>,
    digester: Digester,
}

impl Default for Mem {
    fn default() -> Self {
        Mem {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            indexes: Mutex::new(Indexes::default()),
            digester: Digester::new(),
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

impl Shard {
    /// The live value and its expiry (unix ms, 0 = never).
    fn live(&self, key: &Key<'_>, now: i64) -> Option<(&str, i64)> {
        if let Some(found) = self.short.get(key.digest, now) {
            return Some(found);
        }
        let e = self.kv.get(key.text).filter(|e| e.live(now))?;
        Some((e.value.as_str(), e.expires))
    }

    fn put(&mut self, key: &Key<'_>, value: &str, ttl: Option<Duration>) {
        let expires = ttl.map_or(0, |t| now_ms() + (t.as_millis() as i64).max(1));
        self.put_entry(
            key,
            value,
            expires,
            ttl.is_none_or(|t| t >= PERSIST_MIN_TTL),
        );
    }

    /// Puts the entry into the tier `persist` names, taking it out of the other.
    fn put_entry(&mut self, key: &Key<'_>, value: &str, expires: i64, persist: bool) {
        if !persist {
            self.remove_long(key.text);
            self.short.put(key.digest, value, expires);
            return;
        }
        self.short.remove(key.digest);
        let entry = Entry {
            value: value.to_owned(),
            expires,
        };
        let k: Arc<str> = match self.kv.get_key_value(key.text) {
            Some((k, old)) => {
                let k = k.clone();
                if old.expires != 0 {
                    self.expiry.remove(&(old.expires, k.clone()));
                }
                k
            }
            None => Arc::from(key.text),
        };
        if entry.expires != 0 {
            self.expiry.insert((entry.expires, k.clone()));
        }
        self.pending.push(Change::Put(k.clone(), entry.encode()));
        self.kv.insert(k, entry);
    }

    /// Removes a long-lived entry and its durable copy; the entry, if there was one.
    fn remove_long(&mut self, key: &str) -> Option<Entry> {
        let (k, old) = self.kv.remove_entry(key)?;
        if old.expires != 0 {
            self.expiry.remove(&(old.expires, k.clone()));
        }
        self.pending.push(Change::Delete(k));
        Some(old)
    }

    /// Removes the key; true if it held a live value.
    fn remove(&mut self, key: &Key<'_>) -> bool {
        let now = now_ms();
        if let Some(expires) = self.short.remove(key.digest) {
            return expires > now;
        }
        self.remove_long(key.text).is_some_and(|e| e.live(now))
    }

    /// Drops what expired: long-lived entries oldest first, at most `limit`; every
    /// expired short-lived one.
    fn purge(&mut self, now: i64, limit: usize) -> usize {
        let due: Vec<(i64, Arc<str>)> = self
            .expiry
            .range(..(now, Arc::from("")))
            .take(limit)
            .cloned()
            .collect();
        for (expires, key) in &due {
            self.expiry.remove(&(*expires, key.clone()));
            if self.kv.get(key).is_some_and(|e| e.expires == *expires) {
                self.kv.remove(key);
                self.pending.push(Change::Delete(key.clone()));
            }
        }
        due.len() + self.short.purge(now)
    }
}

pub struct EmbeddedStore {
    mem: Arc<Mem>,
    db: Arc<Database>,
}

fn write_pending(db: &Database, changes: Vec<Change>) -> Result<(), redb::Error> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin_write()?;
    tx.set_durability(Durability::Immediate)?;
    {
        let mut kv = tx.open_table(KV)?;
        let mut members = tx.open_table(INDEX_MEMBERS)?;
        for c in changes {
            match c {
                Change::Put(k, raw) => {
                    kv.insert(&*k, raw.as_slice())?;
                }
                Change::Delete(k) => {
                    kv.remove(&*k)?;
                }
                Change::IndexPut(i, m, score) => {
                    members.insert((&*i, &*m), score)?;
                }
                Change::IndexDelete(i, m) => {
                    members.remove((&*i, &*m))?;
                }
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// Writes what is pending to redb, durably, in one commit. Changes of one key stay in
/// order (they come from one shard); on failure they are lost from the queue and the
/// next write of those keys persists them again.
fn flush(mem: &Mem, db: &Database) -> Result<(), redb::Error> {
    let mut changes = Vec::new();
    for shard in &mem.shards {
        changes.append(&mut lock(shard).pending);
    }
    changes.append(&mut lock(&mem.indexes).pending);
    if changes.is_empty() {
        return Ok(());
    }
    let n = changes.len();
    write_pending(db, changes).inspect_err(|e| {
        tracing::warn!(error = %e, changes = n, "embedded store: flush failed");
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic under the lock cannot leave the maps torn in a way that matters more
    // than stopping: keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl EmbeddedStore {
    /// Opens (or creates) the file, loads what it holds, and starts the flusher. The
    /// directory is created when missing.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
        }
        let db = Database::builder()
            .set_cache_size(8 << 20)
            .create(path)
            .map_err(|e| err(format!("{}: {e}", path.display())))?;
        let mem = Mem::default();
        {
            let tx = db.begin_write().map_err(err)?;
            tx.open_table(KV).map_err(err)?;
            tx.open_table(INDEX_MEMBERS).map_err(err)?;
            tx.commit().map_err(err)?;
            let now = now_ms();
            let tx = db.begin_read().map_err(err)?;
            let kv = tx.open_table(KV).map_err(err)?;
            for row in kv.iter().map_err(err)? {
                let (k, v) = row.map_err(err)?;
                if let Some(entry) = Entry::decode(v.value()).filter(|e| e.live(now)) {
                    let key: Arc<str> = Arc::from(k.value());
                    let mut shard = lock(mem.shard(&mem.key(&key)));
                    if entry.expires != 0 {
                        shard.expiry.insert((entry.expires, key.clone()));
                    }
                    shard.kv.insert(key, entry);
                }
            }
            let members = tx.open_table(INDEX_MEMBERS).map_err(err)?;
            for row in members.iter().map_err(err)? {
                let (k, score) = row.map_err(err)?;
                let (index, member) = k.value();
                let mut indexes = lock(&mem.indexes);
                let ix = indexes.by_name.entry(Arc::from(index)).or_default();
                let member: Arc<str> = Arc::from(member);
                ix.by_score.insert((score.value(), member.clone()));
                ix.members.insert(member, score.value());
            }
        }
        let mem = Arc::new(mem);
        let db = Arc::new(db);
        // The flusher holds weak references: it ends when the store is dropped.
        let (weak_mem, weak_db) = (Arc::downgrade(&mem), Arc::downgrade(&db));
        std::thread::Builder::new()
            .name("wxgate-store-flush".into())
            .spawn(move || loop {
                std::thread::sleep(FLUSH_EVERY);
                let (Some(mem), Some(db)) = (weak_mem.upgrade(), weak_db.upgrade()) else {
                    return;
                };
                let now = now_ms();
                for shard in &mem.shards {
                    lock(shard).purge(now, 1_000);
                }
                let _ = flush(&mem, &db);
            })
            .map_err(err)?;
        Ok(EmbeddedStore { mem, db })
    }

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
mod tests {
    use super::*;

    #[tokio::test]
    async fn short_lived_entries_stay_in_memory_and_long_lived_ones_reach_the_file() {
        let dir = std::env::temp_dir().join(format!("wxgate-embedded-{}", std::process::id()));
        let path = dir.join("t.redb");
        {
            let s = EmbeddedStore::open(&path).unwrap();
            s.set("token", "kept", Some(Duration::from_secs(7200)))
                .await
                .unwrap();
            s.set("forever", "kept", None).await.unwrap();
            s.set("dedup", "memory only", Some(Duration::from_secs(60)))
                .await
                .unwrap();
            s.set("was-long", "x", None).await.unwrap();
            s.set("was-long", "now short", Some(Duration::from_secs(5)))
                .await
                .unwrap();
            s.index_put("idx", "a", 5).await.unwrap();
            for i in 0..50 {
                s.set(&format!("short{i}"), "x", Some(Duration::from_millis(20)))
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            for shard in &s.mem.shards {
                lock(shard).purge(now_ms(), usize::MAX);
            }
            let short: usize = s.mem.shards.iter().map(|sh| lock(sh).short.len()).sum();
            assert_eq!(
                short, 2,
                "the 50 expired entries are gone; dedup and was-long stay"
            );
            assert!(s.mem.shards.iter().all(|sh| lock(sh).kv.len() <= 2));
            assert_eq!(
                s.get("dedup").await.unwrap().as_deref(),
                Some("memory only")
            );
        }
        let s = EmbeddedStore::open(&path).unwrap();
        assert_eq!(s.get("token").await.unwrap().as_deref(), Some("kept"));
        assert_eq!(s.get("forever").await.unwrap().as_deref(), Some("kept"));
        assert_eq!(s.get("dedup").await.unwrap(), None, "not persisted");
        assert_eq!(
            s.get("was-long").await.unwrap(),
            None,
            "its durable copy was deleted"
        );
        assert_eq!(
            s.index_due("idx", 10, 10).await.unwrap(),
            vec![("a".to_string(), 5)]
        );
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }
}
