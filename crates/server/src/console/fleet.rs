//! The fleet as the store sees it: each instance writes a heartbeat every
//! `console.heartbeat_secs` (its address, version, start, last beat), kept for three
//! beats, and lists itself in an index; the console reads them back and names the
//! instance holding each refresh lock (a lock's value is its holder's owner id, which
//! is the instance's id here).
//!
//! Keys (`store::keys::fleet_instance`, `fleet_index`): `wxgate:{fleet}:instance:ID` and
//! the sorted set `wxgate:{fleet}:instances` (score: the last beat), in a slot of their
//! own on a Cluster.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::{keys, Store};

/// Instances listed at most (an index entry whose heartbeat expired is dropped).
const LISTED: usize = 100;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The instance's id: the owner id on its refresh locks.
    pub id: String,
    /// Where it listens, and its public URL.
    pub listen: String,
    pub public_url: Option<String>,
    pub version: String,
    pub started_at: i64,
    pub last_seen: i64,
}

/// Writes this instance's heartbeat, kept for three beats.
pub async fn beat(store: &dyn Store, me: &Heartbeat, every: Duration) {
    let value = serde_json::to_string(me).unwrap_or_default();
    let ttl = every * 3;
    // The store's health logs an outage once; a missed beat is not worth another line.
    if store
        .set(&keys::fleet_instance(&me.id), &value, Some(ttl))
        .await
        .is_ok()
    {
        let _ = store
            .index_put(&keys::fleet_index(), &me.id, me.last_seen)
            .await;
    }
}

/// The instances that beat recently, most recent first.
pub async fn instances(store: &dyn Store) -> crate::Result<Vec<Heartbeat>> {
    let index = keys::fleet_index();
    let listed = store.index_due(&index, i64::MAX, LISTED * 4).await?;
    let mut out = Vec::new();
    for (id, _) in listed {
        match store.get(&keys::fleet_instance(&id)).await? {
            Some(v) => {
                if let Ok(h) = serde_json::from_str::<Heartbeat>(&v) {
                    out.push(h);
                }
            }
            // Its heartbeat expired: it stopped or died.
            None => store.index_remove(&index, &id).await?,
        }
    }
    out.sort_by_key(|h| std::cmp::Reverse(h.last_seen));
    out.truncate(LISTED);
    Ok(out)
}
