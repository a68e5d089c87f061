//! The embedded store's push ledger: what a push leaves behind for its windows (its
//! nonce, and its dedup answer for WeChat's retries), in a few bytes a push.
//!
//! A push is two entries: its nonce key's 64-bit digest (8 bytes), and its dedup key's
//! digest with its answer (12 bytes: the digest and a 32-bit answer, `pending`,
//! `success`, or a shared reply). No expiry is stored per entry: entries are grouped in
//! tables by the time their expiry falls in, rounded up to [`GRAIN`], and a table is
//! dropped whole when that time passes, so an entry lives at most `GRAIN` longer than
//! asked, never shorter. A table ([`Table`]) is the bare entries, 68 to 85% full, and a
//! new one is sized for the fullest, so at a steady rate none grows: 24 bytes a push at
//! 85%, 30 at 68%. Replies are kept once however many pushes got them ([`Values`]).
//!
//! Digests are SipHash-1-3 with random keys per process: two of a million remembered
//! keys collide with probability about n²/2⁶⁵ (3 x 10⁻⁸), one lookup among them with
//! about n/2⁶⁴ (5 x 10⁻¹⁴), and nobody can aim for a collision without the keys. A
//! collision makes one push look like another's retry (answered with that push's answer,
//! its handlers not run) or a replay (refused).

use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};

use super::short::Values;
use crate::store::{PushClaim, PUSH_DONE, PUSH_PENDING};

/// The width of an expiry table, in ms.
pub const GRAIN: i64 = 10_000;

/// A dedup entry's answer: [`PENDING`], [`DONE`], or `REPLY + i` for the reply `i` of
/// [`Values`].
const PENDING: u32 = 0;
const DONE: u32 = 1;
const REPLY: u32 = 2;

/// An open-addressing table of nonzero digests (0 marks a free slot) with a value
/// beside each, probed linearly, never deleted from (a whole table is dropped when its
/// time passes). Its capacity is any number, not a power of two, so it stays between
/// [`MIN_LOAD`] and [`MAX_LOAD`] full: 8 bytes a digest plus the value at that load,
/// where a SwissTable is between 7/16 and 7/8 full and adds a control byte.
struct Table<V> {
    digests: Box<[u64]>,
    values: Box<[V]>,
    len: usize,
}

/// A table grows when it would pass this load (percent)...
const MAX_LOAD: usize = 85;
/// ... to the size that holds its entries at this load (a quarter more room).
const MIN_LOAD: usize = 68;

impl<V: Copy + Default> Table<V> {
    fn with_capacity(entries: usize) -> Self {
        let slots = (entries * 100 / MAX_LOAD + 1).max(64);
        Table {
            digests: vec![0; slots].into_boxed_slice(),
            values: vec![V::default(); slots].into_boxed_slice(),
            len: 0,
        }
    }

    /// Where `digest`'s probe starts: the spread digest scaled onto the slots.
    fn home(&self, digest: u64) -> usize {
        ((u128::from(spread(digest)) * self.digests.len() as u128) >> 64) as usize
    }

    fn find(&self, digest: u64) -> Option<usize> {
        let n = self.digests.len();
        let mut i = self.home(digest);
        loop {
            match self.digests[i] {
                d if d == digest => return Some(i),
                0 => return None,
                _ => i = if i + 1 == n { 0 } else { i + 1 },
            }
        }
    }

    fn insert(&mut self, digest: u64, value: V) {
        if (self.len + 1) * 100 > self.digests.len() * MAX_LOAD {
            // From MAX_LOAD full to MIN_LOAD full.
            let slots = self.digests.len() * MAX_LOAD / MIN_LOAD;
            let mut bigger = Table::with_capacity(slots * MAX_LOAD / 100);
            for (&d, &v) in self.digests.iter().zip(self.values.iter()) {
                if d != 0 {
                    bigger.put(d, v);
                }
            }
            *self = bigger;
        }
        self.put(digest, value);
    }

    fn put(&mut self, digest: u64, value: V) {
        let n = self.digests.len();
        let mut i = self.home(digest);
        while self.digests[i] != 0 {
            i = if i + 1 == n { 0 } else { i + 1 };
        }
        self.digests[i] = digest;
        self.values[i] = value;
        self.len += 1;
    }
}

/// The digest of a key, never 0 (the free-slot mark).
fn nonzero(digest: u64) -> u64 {
    digest.max(1)
}

/// Spreads a digest over the table (SipHash output is uniform already; this keeps a
/// table's probe starts uniform whatever made the digest).
fn spread(digest: u64) -> u64 {
    digest.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn table_end(expires: i64) -> i64 {
    expires.div_euclid(GRAIN) * GRAIN + GRAIN
}

/// Entries grouped by expiry: table end (ms, a multiple of [`GRAIN`]) -> entries.
struct Ring<V>(BTreeMap<i64, Table<V>>);

impl<V> Default for Ring<V> {
    fn default() -> Self {
        Ring(BTreeMap::new())
    }
}

impl<V: Copy + Default> Ring<V> {
    /// Drops the tables whose time has passed, each dropped value seen by `dropped`.
    fn expire(&mut self, now: i64, mut dropped: impl FnMut(V)) {
        while let Some(entry) = self.0.first_entry() {
            if *entry.key() > now {
                break;
            }
            let table = entry.remove();
            for (&d, &v) in table.digests.iter().zip(table.values.iter()) {
                if d != 0 {
                    dropped(v);
                }
            }
        }
    }

    /// The value of `digest` in any live table, the newest first: a push's answer is
    /// settled moments after its claim, in the newest table, and each table looked at
    /// costs a cache miss (a dedup window is six or seven tables).
    fn find_mut(&mut self, digest: u64) -> Option<&mut V> {
        self.0
            .values_mut()
            .rev()
            .find_map(|t| t.find(digest).map(|i| &mut t.values[i]))
    }

    /// Whether the tables that hold expiries within a second of `expires` have it.
    fn has_near(&self, digest: u64, expires: i64) -> bool {
        let (lo, hi) = (table_end(expires - 1_000), table_end(expires + 1_000));
        self.0.range(lo..=hi).any(|(_, t)| t.find(digest).is_some())
    }

    fn insert(&mut self, digest: u64, value: V, expires: i64) {
        let end = table_end(expires);
        let expected = || self.0.values().map(|t| t.len).max().unwrap_or(0);
        // Sized for as many as the fullest table holds: at a steady rate a table never
        // grows, and no grown table's old memory is left with the allocator.
        let size = if self.0.contains_key(&end) {
            0
        } else {
            expected()
        };
        self.0
            .entry(end)
            .or_insert_with(|| Table::with_capacity(size.min(1 << 24)))
            .insert(digest, value);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.values().map(|t| t.len).sum()
    }
}

/// The push ledger: nonces and dedup answers, under the store's clock (unix ms).
pub struct PushLedger {
    keys: RandomState,
    nonces: Ring<()>,
    /// The answer of each: [`PENDING`], [`DONE`] or a reply.
    dedup: Ring<u32>,
    replies: Values,
}

impl Default for PushLedger {
    fn default() -> Self {
        PushLedger {
            keys: RandomState::new(),
            nonces: Ring::default(),
            dedup: Ring::default(),
            replies: Values::default(),
        }
    }
}

impl PushLedger {
    fn digest(&self, key: &str) -> u64 {
        nonzero(self.keys.hash_one(key))
    }

    /// Drops the tables whose time has passed (every operation does, and the store's
    /// flusher while no push comes).
    pub fn purge(&mut self, now: i64) {
        self.nonces.expire(now, |_| {});
        let replies = &mut self.replies;
        self.dedup.expire(now, |answer| {
            if answer >= REPLY {
                replies.release(answer - REPLY);
            }
        });
    }

    fn answer_text(&self, answer: u32) -> String {
        match answer {
            PENDING => PUSH_PENDING.to_owned(),
            DONE => PUSH_DONE.to_owned(),
            i => self.replies.get(i - REPLY).to_owned(),
        }
    }

    /// See [`crate::store::Store::claim_push`].
    pub fn claim(
        &mut self,
        dedup_key: &str,
        nonce_key: &str,
        dedup_expires: i64,
        nonce_expires: i64,
        now: i64,
    ) -> PushClaim {
        self.purge(now);
        let dedup = self.digest(dedup_key);
        if let Some(&mut answer) = self.dedup.find_mut(dedup) {
            return PushClaim::Known(self.answer_text(answer));
        }
        let nonce = self.digest(nonce_key);
        if self.nonces.has_near(nonce, nonce_expires) {
            return PushClaim::Replay;
        }
        self.nonces.insert(nonce, (), nonce_expires);
        self.dedup.insert(dedup, PENDING, dedup_expires);
        PushClaim::Claimed
    }

    /// The remembered answer of a push.
    pub fn answer(&mut self, dedup_key: &str, now: i64) -> Option<String> {
        self.purge(now);
        let answer = *self.dedup.find_mut(self.digest(dedup_key))?;
        Some(self.answer_text(answer))
    }

    /// Records a claimed push's answer; false when the claim is gone (expired).
    pub fn settle(&mut self, dedup_key: &str, answer: &str, now: i64) -> bool {
        self.purge(now);
        let digest = self.digest(dedup_key);
        let new = match answer {
            PUSH_PENDING => PENDING,
            PUSH_DONE => DONE,
            reply => REPLY + self.replies.intern(reply),
        };
        let Some(entry) = self.dedup.find_mut(digest) else {
            if new >= REPLY {
                self.replies.release(new - REPLY);
            }
            return false;
        };
        let old = std::mem::replace(entry, new);
        if old >= REPLY {
            self.replies.release(old - REPLY);
        }
        true
    }

    /// Nonces and dedup entries remembered (live or waiting for their table to go).
    #[cfg(test)]
    pub fn len(&self) -> (usize, usize) {
        (self.nonces.len(), self.dedup.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000_000;

    #[test]
    fn a_push_is_claimed_once_then_known_and_its_nonce_is_a_replay() {
        let mut l = PushLedger::default();
        let claim =
            |l: &mut PushLedger, d: &str, n: &str| l.claim(d, n, T + 60_000, T + 300_000, T);
        assert_eq!(claim(&mut l, "d1", "n1"), PushClaim::Claimed);
        assert_eq!(
            claim(&mut l, "d1", "n2"),
            PushClaim::Known("pending".into())
        );
        assert_eq!(claim(&mut l, "d2", "n1"), PushClaim::Replay);
        assert!(l.settle("d1", "done:", T));
        assert_eq!(l.answer("d1", T).as_deref(), Some("done:"));
        assert!(!l.settle("never-claimed", "done:", T));
        assert_eq!(l.len(), (1, 1), "a refused push leaves nothing");
    }

    #[test]
    fn replies_are_kept_once_and_released_with_their_pushes() {
        let mut l = PushLedger::default();
        let reply = "done:1:{\"type\":\"text\"}";
        for i in 0..100 {
            let d = format!("d{i}");
            l.claim(&d, &format!("n{i}"), T + 60_000, T + 300_000, T);
            assert!(l.settle(&d, reply, T));
        }
        assert_eq!(l.replies.get(0), reply);
        assert_eq!(l.answer("d7", T).as_deref(), Some(reply));
        // A settled answer replaced: its reply is released, the other kept.
        assert!(l.settle("d7", "done:", T));
        assert_eq!(l.answer("d7", T).as_deref(), Some("done:"));
        assert_eq!(l.answer("d8", T).as_deref(), Some(reply));
        // Past the dedup window (and its table's grain), answers are gone; nonces stay.
        let later = T + 60_000 + GRAIN;
        assert_eq!(l.answer("d8", later), None);
        assert_eq!(l.len(), (100, 0));
        assert_eq!(l.replies.intern("x"), 0, "the reply's slot was freed");
        assert_eq!(
            l.claim("d7", "n7", later + 60_000, T + 300_000, later),
            PushClaim::Replay,
            "the same push after its dedup answer expired is a replay"
        );
        // Past the nonce window, everything is gone.
        let much_later = T + 300_000 + GRAIN;
        assert_eq!(l.answer("d7", much_later), None);
        assert_eq!(l.len(), (0, 0));
    }

    #[test]
    fn a_table_stays_between_its_loads_and_finds_every_digest() {
        let mut t = Table::<u32>::with_capacity(0);
        for i in 1..=100_000u64 {
            t.insert(nonzero(spread(i)), i as u32);
            let load = t.len * 100 / t.digests.len();
            assert!(load <= MAX_LOAD, "{load}% at {i}");
            if i > 64 {
                assert!(load + 1 >= MIN_LOAD, "{load}% at {i}");
            }
        }
        for i in 1..=100_000u64 {
            let at = t.find(nonzero(spread(i))).unwrap();
            assert_eq!(t.values[at], i as u32);
        }
        assert!(t.find(nonzero(spread(100_001))).is_none());
    }

    #[test]
    fn an_entry_lives_at_least_as_long_as_asked_and_at_most_a_grain_more() {
        let mut l = PushLedger::default();
        l.claim("d", "n", T + 30_000, T + 30_000, T);
        assert!(l.answer("d", T + 29_999).is_some());
        assert!(l.answer("d", T + 30_000 + GRAIN).is_none());
        // A nonce's expiry computed a fraction of a second apart still finds it.
        l.claim("d2", "n2", T + 45_500, T + 45_500, T);
        assert!(l.nonces.has_near(l.digest("n2"), T + 44_600));
        assert!(l.nonces.has_near(l.digest("n2"), T + 46_400));
    }
}
