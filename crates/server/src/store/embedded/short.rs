//! The embedded store's short-lived entries (a TTL under [`super::PERSIST_MIN_TTL`]:
//! dedup answers, nonces, locks, OAuth states), packed small, because a flood of pushes
//! makes hundreds of thousands of them and each must be kept for its window.
//!
//! A key is kept as a 128-bit keyed digest instead of its text, and a value as an index
//! into a table of distinct values (a flood's dedup answers are a few strings repeated).
//! An entry is then 32 bytes in the map plus the map's slack, where a key string, a value
//! string and a node in an expiry index cost about 250. Expired entries are invisible at
//! once and dropped by [`ShortEntries::purge`], which the flusher runs.
//!
//! Two keys share a digest with probability about n²/2¹²⁹ (10⁻²⁷ for a million keys),
//! and the digest's keys are random per process, so nobody can aim for a collision.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::sync::Arc;

/// A key's 128-bit keyed digest (two SipHash-1-3 with independent random keys).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Digest(u64, u64);

impl Digest {
    /// Bits to pick a shard with (independent of the bits the map uses).
    pub fn spread(self) -> u64 {
        self.1
    }
}

impl Hash for Digest {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.0);
    }
}

/// Makes digests with this process's random keys.
pub struct Digester(RandomState, RandomState);

impl Digester {
    pub fn new() -> Self {
        Digester(RandomState::new(), RandomState::new())
    }

    pub fn digest(&self, key: &str) -> Digest {
        Digest(self.0.hash_one(key), self.1.hash_one(key))
    }
}

/// The digest is already uniformly random: the map uses it as its hash as it is.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `Digest`; fold anything else in, to be total.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Clone, Copy)]
struct Slot {
    /// Unix ms.
    expires: i64,
    /// Index into [`Values`].
    value: u32,
}

/// Distinct values, counted by the entries that hold them (also the push ledger's
/// replies).
#[derive(Default)]
pub(super) struct Values {
    slots: Vec<(Option<Arc<str>>, u32)>,
    free: Vec<u32>,
    by_value: HashMap<Arc<str>, u32>,
}

impl Values {
    pub(super) fn intern(&mut self, v: &str) -> u32 {
        if let Some(&i) = self.by_value.get(v) {
            self.slots[i as usize].1 += 1;
            return i;
        }
        let text: Arc<str> = Arc::from(v);
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = (Some(text.clone()), 1);
                i
            }
            None => {
                self.slots.push((Some(text.clone()), 1));
                (self.slots.len() - 1) as u32
            }
        };
        self.by_value.insert(text, i);
        i
    }

    pub(super) fn release(&mut self, i: u32) {
        let slot = &mut self.slots[i as usize];
        slot.1 -= 1;
        if slot.1 == 0 {
            if let Some(text) = slot.0.take() {
                self.by_value.remove(&text);
            }
            self.free.push(i);
        }
    }

    pub(super) fn get(&self, i: u32) -> &str {
        self.slots[i as usize].0.as_deref().unwrap_or_default()
    }
}

/// One shard's short-lived entries.
#[derive(Default)]
pub struct ShortEntries {
    map: HashMap<Digest, Slot, BuildHasherDefault<PassThrough>>,
    values: Values,
}

impl ShortEntries {
    /// The live value and its expiry (unix ms).
    pub fn get(&self, key: Digest, now: i64) -> Option<(&str, i64)> {
        let slot = self.map.get(&key).filter(|s| s.expires > now)?;
        Some((self.values.get(slot.value), slot.expires))
    }

    pub fn put(&mut self, key: Digest, value: &str, expires: i64) {
        let value = self.values.intern(value);
        if let Some(old) = self.map.insert(key, Slot { expires, value }) {
            self.values.release(old.value);
        }
    }

    /// Removes the entry; its expiry if there was one (live or not).
    pub fn remove(&mut self, key: Digest) -> Option<i64> {
        let old = self.map.remove(&key)?;
        self.values.release(old.value);
        Some(old.expires)
    }

    /// Drops every expired entry, and gives memory back after a flood has passed.
    pub fn purge(&mut self, now: i64) -> usize {
        let before = self.map.len();
        let values = &mut self.values;
        self.map.retain(|_, s| {
            let keep = s.expires > now;
            if !keep {
                values.release(s.value);
            }
            keep
        });
        if self.map.capacity() > 64 && self.map.len() < self.map.capacity() / 4 {
            self.map.shrink_to_fit();
        }
        before - self.map.len()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_shared_and_released() {
        let d = Digester::new();
        let mut s = ShortEntries::default();
        for i in 0..100 {
            s.put(d.digest(&format!("k{i}")), "pending", 1_000);
        }
        assert_eq!(s.values.by_value.len(), 1, "one copy of a repeated value");
        s.put(d.digest("k0"), "done:1", 2_000);
        assert_eq!(s.get(d.digest("k0"), 0), Some(("done:1", 2_000)));
        assert_eq!(s.get(d.digest("k1"), 0), Some(("pending", 1_000)));
        assert_eq!(s.get(d.digest("k1"), 1_000), None, "expired at its expiry");
        assert_eq!(s.remove(d.digest("k2")), Some(1_000));
        assert_eq!(s.remove(d.digest("k2")), None);
        assert_eq!(s.purge(1_500), 98);
        assert_eq!(s.len(), 1);
        assert_eq!(s.values.by_value.len(), 1, "pending released");
        assert_eq!(s.purge(2_000), 1);
        assert!(s.values.by_value.is_empty());
        // A freed value slot is reused.
        s.put(d.digest("again"), "x", 3_000);
        assert!(s.values.slots.len() <= 2);
    }

    #[test]
    fn digests_differ_per_key_and_per_process_keys() {
        let (a, b) = (Digester::new(), Digester::new());
        assert_eq!(a.digest("k"), a.digest("k"));
        assert_ne!(a.digest("k"), a.digest("l"));
        assert_ne!(a.digest("k"), b.digest("k"));
    }
}
