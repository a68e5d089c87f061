//! The redb file behind the memory: loading every live long-lived entry and index at
//! open, and writing pending changes behind, durably, in one commit.

use super::*;

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
pub(super) fn flush(mem: &Mem, db: &Database) -> Result<(), redb::Error> {
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
                // Idle, the ledger's expired tables still go.
                lock(&mem.pushes).purge(now);
                let _ = flush(&mem, &db);
            })
            .map_err(err)?;
        Ok(EmbeddedStore { mem, db })
    }
}
