//! One shard of the key space: reads see only live entries; writes go to the long-lived
//! map (and the flusher's queue) or to the packed short-lived table by their TTL; a
//! purge drops what expired.

use std::time::Duration;

use super::*;

impl Shard {
    /// The live value and its expiry (unix ms, 0 = never).
    pub(super) fn live(&self, key: &Key<'_>, now: i64) -> Option<(&str, i64)> {
        if let Some(found) = self.short.get(key.digest, now) {
            return Some(found);
        }
        let e = self.kv.get(key.text).filter(|e| e.live(now))?;
        Some((e.value.as_str(), e.expires))
    }

    pub(super) fn put(&mut self, key: &Key<'_>, value: &str, ttl: Option<Duration>) {
        let expires = ttl.map_or(0, |t| now_ms() + (t.as_millis() as i64).max(1));
        self.put_entry(
            key,
            value,
            expires,
            ttl.is_none_or(|t| t >= PERSIST_MIN_TTL),
        );
    }

    /// Puts the entry into the tier `persist` names, taking it out of the other.
    pub(super) fn put_entry(&mut self, key: &Key<'_>, value: &str, expires: i64, persist: bool) {
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
    pub(super) fn remove_long(&mut self, key: &str) -> Option<Entry> {
        let (k, old) = self.kv.remove_entry(key)?;
        if old.expires != 0 {
            self.expiry.remove(&(old.expires, k.clone()));
        }
        self.pending.push(Change::Delete(k));
        Some(old)
    }

    /// Removes the key; true if it held a live value.
    pub(super) fn remove(&mut self, key: &Key<'_>) -> bool {
        let now = now_ms();
        if let Some(expires) = self.short.remove(key.digest) {
            return expires > now;
        }
        self.remove_long(key.text).is_some_and(|e| e.live(now))
    }

    /// Drops what expired: long-lived entries oldest first, at most `limit`; every
    /// expired short-lived one.
    pub(super) fn purge(&mut self, now: i64, limit: usize) -> usize {
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
