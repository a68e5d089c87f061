//! The embedded store: one redb file under `data_dir`. It survives restarts, so a
//! restarted gateway keeps using a valid stored token instead of spending a fetch. redb
//! allows one process per file: this store is for a single instance.
//!
//! Writes commit without an fsync each (dedup answers, nonces and locks are written on
//! every push); a flusher makes them durable within [`FLUSH_EVERY`], and dropping the
//! store (a graceful stop) makes them durable at once. A crash loses at most that window.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::Store;
use crate::error::{Error, Result};

/// key -> expiry (unix ms, 0 = never, 8 bytes big endian) ++ value.
const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// (expiry ms, key) -> (): what to purge, oldest first.
const EXPIRY: TableDefinition<(i64, &str), ()> = TableDefinition::new("expiry");
/// (index, score, member) -> (): range scans by score.
const INDEX: TableDefinition<(&str, i64, &str), ()> = TableDefinition::new("index");
/// (index, member) -> score: to find an entry's position when it moves or goes.
const INDEX_MEMBERS: TableDefinition<(&str, &str), i64> = TableDefinition::new("index_members");

/// How long a write may stay in the page cache before it is made durable.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);

pub struct EmbeddedStore {
    db: Arc<Database>,
    dirty: Arc<AtomicBool>,
}

/// The most expired entries one purge removes (the rest wait for the next round).
const PURGE_BATCH: usize = 5000;

/// Removes entries whose TTL has passed, oldest first, through the expiry table: the
/// work is proportional to what expired, not to the store's size.
fn purge_expired(db: &Database, limit: usize) -> Result<usize, redb::Error> {
    let now = now_ms();
    let tx = EmbeddedStore::begin_fast_write(db)?;
    let mut purged = 0;
    {
        let mut kv = tx.open_table(KV)?;
        let mut exp = tx.open_table(EXPIRY)?;
        let due: Vec<(i64, String)> = exp
            .range((i64::MIN, "")..(now, ""))?
            .take(limit)
            .map(|e| e.map(|(k, _)| (k.value().0, k.value().1.to_owned())))
            .collect::<Result<_, _>>()?;
        for (expiry, key) in due {
            exp.remove((expiry, key.as_str()))?;
            // The key may have been written again since, with another expiry: keep it then.
            let current = kv.get(key.as_str())?.map(|g| expiry_of(g.value()));
            if current == Some(expiry) {
                kv.remove(key.as_str())?;
            }
            purged += 1;
        }
    }
    tx.commit()?;
    Ok(purged)
}

/// A durable, empty commit: everything committed before it becomes durable.
fn flush(db: &Database) -> Result<(), redb::Error> {
    let mut tx = db.begin_write()?;
    tx.set_durability(Durability::Immediate)?;
    tx.commit()?;
    Ok(())
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        if self.dirty.swap(false, Ordering::SeqCst) {
            if let Err(e) = flush(&self.db) {
                tracing::warn!(error = %e, "embedded store: final flush failed");
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn encode(value: &str, ttl: Option<Duration>) -> Vec<u8> {
    let expiry = ttl.map_or(0, |t| now_ms() + t.as_millis().max(1) as i64);
    let mut v = Vec::with_capacity(8 + value.len());
    v.extend_from_slice(&expiry.to_be_bytes());
    v.extend_from_slice(value.as_bytes());
    v
}

/// The live value of a stored entry, or None when expired or corrupt.
fn decode(raw: &[u8]) -> Option<String> {
    if raw.len() < 8 {
        return None;
    }
    let expiry = i64::from_be_bytes(raw[..8].try_into().ok()?);
    if expiry != 0 && expiry <= now_ms() {
        return None;
    }
    String::from_utf8(raw[8..].to_vec()).ok()
}

fn expiry_of(raw: &[u8]) -> i64 {
    raw.get(..8)
        .and_then(|b| b.try_into().ok())
        .map(i64::from_be_bytes)
        .unwrap_or(0)
}

fn err(e: impl std::fmt::Display) -> Error {
    metrics::counter!("wxgate_store_errors_total", "store" => "embedded").increment(1);
    Error::Store(format!("embedded: {e}"))
}

impl EmbeddedStore {
    /// Opens (or creates) the file; its directory is created when missing.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
        }
        let db = Database::create(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
        let tx = db.begin_write().map_err(err)?;
        tx.open_table(KV).map_err(err)?;
        tx.open_table(EXPIRY).map_err(err)?;
        tx.open_table(INDEX).map_err(err)?;
        tx.open_table(INDEX_MEMBERS).map_err(err)?;
        tx.commit().map_err(err)?;
        let db = Arc::new(db);
        let dirty = Arc::new(AtomicBool::new(false));
        // The flusher holds weak references: it ends when the store is dropped.
        let (weak_db, weak_dirty) = (Arc::downgrade(&db), Arc::downgrade(&dirty));
        std::thread::Builder::new()
            .name("wxgate-redb-flush".into())
            .spawn(move || loop {
                std::thread::sleep(FLUSH_EVERY);
                let (Some(db), Some(dirty)) = (weak_db.upgrade(), weak_dirty.upgrade()) else {
                    return;
                };
                match purge_expired(&db, PURGE_BATCH) {
                    Ok(0) => {}
                    Ok(_) => dirty.store(true, Ordering::SeqCst),
                    Err(e) => tracing::warn!(error = %e, "embedded store: purge failed"),
                }
                if dirty.swap(false, Ordering::SeqCst) {
                    if let Err(e) = flush(&db) {
                        dirty.store(true, Ordering::SeqCst);
                        tracing::warn!(error = %e, "embedded store: flush failed");
                    }
                }
            })
            .map_err(err)?;
        Ok(EmbeddedStore { db, dirty })
    }

    /// A write transaction that commits without an fsync (see the module docs).
    fn begin_fast_write(db: &Database) -> Result<redb::WriteTransaction, redb::Error> {
        let mut tx = db.begin_write()?;
        tx.set_durability(Durability::None)?;
        Ok(tx)
    }

    /// Runs blocking redb work off the async threads.
    fn run<T, F>(&self, f: F) -> BoxFuture<'static, Result<T>>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, redb::Error> + Send + 'static,
    {
        let db = self.db.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || f(&db))
                .await
                .map_err(err)?
                .map_err(err)
        })
    }

    /// A write transaction on the KV table (and its expiry table).
    fn write_kv<T, F>(&self, f: F) -> BoxFuture<'static, Result<T>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Kv<'_>) -> Result<T, redb::Error> + Send + 'static,
    {
        let dirty = self.dirty.clone();
        self.run(move |db| {
            let tx = Self::begin_fast_write(db)?;
            let out = {
                let mut kv = Kv {
                    kv: tx.open_table(KV)?,
                    exp: tx.open_table(EXPIRY)?,
                };
                f(&mut kv)?
            };
            tx.commit()?;
            dirty.store(true, Ordering::SeqCst);
            Ok(out)
        })
    }
}

/// The KV table with its expiry table, kept in step.
struct Kv<'t> {
    kv: redb::Table<'t, &'static str, &'static [u8]>,
    exp: redb::Table<'t, (i64, &'static str), ()>,
}

impl Kv<'_> {
    fn live(&self, key: &str) -> Result<Option<String>, redb::Error> {
        Ok(self.kv.get(key)?.and_then(|g| decode(g.value())))
    }

    fn raw(&self, key: &str) -> Result<Option<Vec<u8>>, redb::Error> {
        Ok(self.kv.get(key)?.map(|g| g.value().to_vec()))
    }

    fn put(&mut self, key: &str, raw: &[u8]) -> Result<(), redb::Error> {
        self.kv.insert(key, raw)?;
        let expiry = expiry_of(raw);
        if expiry != 0 {
            self.exp.insert((expiry, key), ())?;
        }
        Ok(())
    }

    /// Removes the key; true if it held a live value.
    fn remove(&mut self, key: &str) -> Result<bool, redb::Error> {
        Ok(self
            .kv
            .remove(key)?
            .is_some_and(|g| decode(g.value()).is_some()))
    }
}

impl Store for EmbeddedStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        let key = key.to_owned();
        self.run(move |db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(KV)?;
            Ok(t.get(key.as_str())?.and_then(|g| decode(g.value())))
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        let (key, raw) = (key.to_owned(), encode(value, ttl));
        self.write_kv(move |t| t.put(&key, &raw))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        let key = key.to_owned();
        self.write_kv(move |t| t.remove(&key))
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        let (key, raw) = (key.to_owned(), encode(value, Some(ttl)));
        self.write_kv(move |t| {
            if t.live(&key)?.is_some() {
                return Ok(false);
            }
            t.put(&key, &raw)?;
            Ok(true)
        })
    }

    fn compare_and_delete<'a>(
        &'a self,
        key: &'a str,
        expected: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        let (key, expected) = (key.to_owned(), expected.to_owned());
        self.write_kv(move |t| {
            if t.live(&key)?.as_deref() != Some(expected.as_str()) {
                return Ok(false);
            }
            t.remove(&key)?;
            Ok(true)
        })
    }

    fn compare_and_set<'a>(
        &'a self,
        key: &'a str,
        expected: Option<&'a str>,
        value: &'a str,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool>> {
        let (key, expected, raw) = (
            key.to_owned(),
            expected.map(str::to_owned),
            encode(value, ttl),
        );
        self.write_kv(move |t| {
            if t.live(&key)? != expected {
                return Ok(false);
            }
            t.put(&key, &raw)?;
            Ok(true)
        })
    }

    fn increment<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<i64>> {
        let key = key.to_owned();
        self.write_kv(move |t| {
            let (count, raw) = match t.raw(&key)? {
                Some(raw) if decode(&raw).is_some() => {
                    let n: i64 = decode(&raw).and_then(|v| v.parse().ok()).unwrap_or(0) + 1;
                    // The first increment's expiry stays.
                    let mut kept = raw[..8].to_vec();
                    kept.extend_from_slice(n.to_string().as_bytes());
                    (n, kept)
                }
                _ => (1, encode("1", Some(ttl))),
            };
            t.put(&key, &raw)?;
            Ok(count)
        })
    }

    fn index_put<'a>(
        &'a self,
        index: &'a str,
        member: &'a str,
        score: i64,
    ) -> BoxFuture<'a, Result<()>> {
        let (index, member) = (index.to_owned(), member.to_owned());
        let dirty = self.dirty.clone();
        self.run(move |db| {
            let tx = Self::begin_fast_write(db)?;
            {
                let mut members = tx.open_table(INDEX_MEMBERS)?;
                let mut idx = tx.open_table(INDEX)?;
                let old = members
                    .insert((index.as_str(), member.as_str()), score)?
                    .map(|g| g.value());
                if let Some(old) = old {
                    idx.remove((index.as_str(), old, member.as_str()))?;
                }
                idx.insert((index.as_str(), score, member.as_str()), ())?;
            }
            tx.commit()?;
            dirty.store(true, Ordering::SeqCst);
            Ok(())
        })
    }

    fn index_due<'a>(
        &'a self,
        index: &'a str,
        max: i64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<(String, i64)>>> {
        let index = index.to_owned();
        self.run(move |db| {
            let tx = db.begin_read()?;
            let idx = tx.open_table(INDEX)?;
            let mut out = Vec::new();
            for entry in idx.range(
                (index.as_str(), i64::MIN, "")..(index.as_str(), max.saturating_add(1), ""),
            )? {
                let (k, _) = entry?;
                let (_, score, member) = k.value();
                out.push((member.to_owned(), score));
                if out.len() >= limit {
                    break;
                }
            }
            Ok(out)
        })
    }

    fn index_remove<'a>(&'a self, index: &'a str, member: &'a str) -> BoxFuture<'a, Result<()>> {
        let (index, member) = (index.to_owned(), member.to_owned());
        let dirty = self.dirty.clone();
        self.run(move |db| {
            let tx = Self::begin_fast_write(db)?;
            {
                let mut members = tx.open_table(INDEX_MEMBERS)?;
                let mut idx = tx.open_table(INDEX)?;
                let old = members
                    .remove((index.as_str(), member.as_str()))?
                    .map(|g| g.value());
                if let Some(old) = old {
                    idx.remove((index.as_str(), old, member.as_str()))?;
                }
            }
            tx.commit()?;
            dirty.store(true, Ordering::SeqCst);
            Ok(())
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        self.run(|db| {
            db.begin_read()?;
            Ok(())
        })
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv_len(db: &Database) -> u64 {
        let tx = db.begin_read().unwrap();
        use redb::ReadableTableMetadata;
        tx.open_table(KV).unwrap().len().unwrap()
    }

    #[tokio::test]
    async fn expired_entries_are_purged_oldest_first_and_rewritten_keys_kept() {
        let dir = std::env::temp_dir().join(format!("wxgate-purge-{}", std::process::id()));
        let store = EmbeddedStore::open(&dir.join("t.redb")).unwrap();
        for i in 0..50 {
            store
                .set(&format!("short{i}"), "x", Some(Duration::from_millis(20)))
                .await
                .unwrap();
        }
        store.set("forever", "x", None).await.unwrap();
        store
            .set("rewritten", "old", Some(Duration::from_millis(20)))
            .await
            .unwrap();
        store
            .set("rewritten", "new", Some(Duration::from_secs(60)))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(kv_len(&store.db), 52);
        assert_eq!(purge_expired(&store.db, 10).unwrap(), 10, "bounded");
        assert_eq!(purge_expired(&store.db, 1000).unwrap(), 41);
        assert_eq!(kv_len(&store.db), 2);
        assert_eq!(
            store.get("rewritten").await.unwrap().as_deref(),
            Some("new")
        );
        assert_eq!(purge_expired(&store.db, 1000).unwrap(), 0);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
}
