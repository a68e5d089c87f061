//! The embedded store's push ledger: what a push leaves behind for its windows (its
//! nonce, and its dedup answer for WeChat's retries), at a few bytes a push.
//!
//! A push is two 8-byte words: its nonce key's digest and its dedup key's digest (whose
//! two low bits hold the answer's state). No expiry is stored per entry: entries are
//! grouped in tables by the second their expiry falls in, rounded up to [`GRAIN`], and a
//! table is dropped whole when that time passes, so an entry lives at most `GRAIN`
//! longer than asked (never shorter). A table is a SwissTable of bare `u64`s: 8 bytes and
//! a control byte an entry, at the table's load (7/8 at most, half that just after it
//! grew). Measured by `bench/run.sh`: see the README's arithmetic.
//!
//! The answers themselves: `pending` and `done:` (success, nearly every push's answer)
//! are the state bits; any other answer (a reply) is kept once, shared by every push
//! that got the same, beside the digest.
//!
//! Digests are 64-bit SipHash-1-3 with random keys per process: two of a million
//! remembered keys collide with probability about n²/2⁶⁵ (3 x 10⁻⁸), and nobody can aim
//! for a collision without the keys. A collision makes one push look like another's
//! retry (answered `success`, its handlers not run) or a replay (refused), never
//! another user's reply read out: a kept reply carries a second, independent 64-bit
//! digest of its push, checked before it is answered.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use hashbrown::HashTable;

use crate::store::{PushClaim, PUSH_DONE, PUSH_PENDING};

/// The width of an expiry table, in ms.
pub const GRAIN: i64 = 10_000;

const STATE: u64 = 0b11;
const PENDING: u64 = 0;
const DONE: u64 = 1;
const OTHER: u64 = 2;

/// Entries grouped by expiry: table end (ms, a multiple of [`GRAIN`]) -> digests.
#[derive(Default)]
struct Ring(BTreeMap<i64, HashTable<u64>>);

/// The table hash of an entry: its digest without the state bits, spread (the low bits
/// pick the slot, the high bits the control byte).
fn spread(word: u64) -> u64 {
    (word & !STATE).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn same(word: u64) -> impl Fn(&u64) -> bool {
    move |e| e & !STATE == word & !STATE
}

fn table_end(expires: i64) -> i64 {
    expires.div_euclid(GRAIN) * GRAIN + GRAIN
}

impl Ring {
    /// Drops the tables whose time has passed; the dropped entries, for their answers.
    fn expire(&mut self, now: i64, mut dropped: impl FnMut(u64)) {
        while let Some(entry) = self.0.first_entry() {
            if *entry.key() > now {
                break;
            }
            for &word in entry.remove().iter() {
                dropped(word);
            }
        }
    }

    /// The entry in any live table.
    fn find(&self, word: u64) -> Option<u64> {
        let h = spread(word);
        self.0.values().find_map(|t| t.find(h, same(word)).copied())
    }

    /// The entry in the tables that hold expiries within a second of `expires`.
    fn find_near(&self, word: u64, expires: i64) -> Option<u64> {
        let h = spread(word);
        let (lo, hi) = (table_end(expires - 1_000), table_end(expires + 1_000));
        self.0
            .range(lo..=hi)
            .find_map(|(_, t)| t.find(h, same(word)).copied())
    }

    fn insert(&mut self, word: u64, expires: i64) {
        let table = self.0.entry(table_end(expires)).or_default();
        table.insert_unique(spread(word), word, |&e| spread(e));
    }

    /// Rewrites the entry's state bits where it is.
    fn set_state(&mut self, word: u64) -> bool {
        let h = spread(word);
        for t in self.0.values_mut() {
            if let Some(e) = t.find_mut(h, same(word)) {
                *e = word;
                return true;
            }
        }
        false
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.values().map(HashTable::len).sum()
    }
}

/// The push ledger: nonces and dedup answers, under the store's clock (unix ms).
pub struct PushLedger {
    keys: RandomState,
    nonces: Ring,
    dedup: Ring,
    /// A second, independent digest of the dedup key, for [`PushLedger::others`].
    check: RandomState,
    /// Answers other than pending and success, by dedup digest (state bits cleared),
    /// with the second digest of the push they answer.
    others: HashMap<u64, (u64, Arc<str>)>,
    /// One copy of each distinct other answer.
    pool: HashSet<Arc<str>>,
}

impl Default for PushLedger {
    fn default() -> Self {
        PushLedger {
            keys: RandomState::new(),
            check: RandomState::new(),
            nonces: Ring::default(),
            dedup: Ring::default(),
            others: HashMap::new(),
            pool: HashSet::new(),
        }
    }
}

impl PushLedger {
    fn digest(&self, key: &str) -> u64 {
        self.keys.hash_one(key) & !STATE
    }

    /// Drops the tables whose time has passed (every operation does, and the store's
    /// flusher while no push comes).
    pub fn purge(&mut self, now: i64) {
        self.expire(now);
    }

    fn expire(&mut self, now: i64) {
        self.nonces.expire(now, |_| {});
        let (others, pool) = (&mut self.others, &mut self.pool);
        self.dedup.expire(now, |word| {
            if word & STATE == OTHER {
                release(others, pool, word);
            }
        });
    }

    /// The answer of the entry `word` found for `dedup_key`. A kept reply whose second
    /// digest disagrees belongs to another push that collided: `success`, not its reply.
    fn answer_of(&self, word: u64, dedup_key: &str) -> String {
        match word & STATE {
            PENDING => PUSH_PENDING.to_owned(),
            DONE => PUSH_DONE.to_owned(),
            _ => match self.others.get(&(word & !STATE)) {
                Some((check, a)) if *check == self.check.hash_one(dedup_key) => a.to_string(),
                _ => PUSH_DONE.to_owned(),
            },
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
        self.expire(now);
        let dedup = self.digest(dedup_key);
        if let Some(word) = self.dedup.find(dedup) {
            return PushClaim::Known(self.answer_of(word, dedup_key));
        }
        let nonce = self.digest(nonce_key);
        if self.nonces.find_near(nonce, nonce_expires).is_some() {
            return PushClaim::Replay;
        }
        self.nonces.insert(nonce, nonce_expires);
        self.dedup.insert(dedup | PENDING, dedup_expires);
        PushClaim::Claimed
    }

    /// The remembered answer of a push.
    pub fn answer(&mut self, dedup_key: &str, now: i64) -> Option<String> {
        self.expire(now);
        let word = self.dedup.find(self.digest(dedup_key))?;
        Some(self.answer_of(word, dedup_key))
    }

    /// Records a claimed push's answer; false when the claim is gone (expired).
    pub fn settle(&mut self, dedup_key: &str, answer: &str, now: i64) -> bool {
        self.expire(now);
        let dedup = self.digest(dedup_key);
        let Some(old) = self.dedup.find(dedup) else {
            return false;
        };
        if old & STATE == OTHER {
            release(&mut self.others, &mut self.pool, old);
        }
        let state = match answer {
            PUSH_PENDING => PENDING,
            PUSH_DONE => DONE,
            other => {
                let shared = match self.pool.get(other) {
                    Some(a) => a.clone(),
                    None => {
                        let a: Arc<str> = Arc::from(other);
                        self.pool.insert(a.clone());
                        a
                    }
                };
                let check = self.check.hash_one(dedup_key);
                self.others.insert(dedup, (check, shared));
                OTHER
            }
        };
        self.dedup.set_state(dedup | state)
    }

    /// Nonces and dedup entries remembered (live or waiting for their table to go).
    #[cfg(test)]
    pub fn len(&self) -> (usize, usize) {
        (self.nonces.len(), self.dedup.len())
    }
}

fn release(others: &mut HashMap<u64, (u64, Arc<str>)>, pool: &mut HashSet<Arc<str>>, word: u64) {
    if let Some((_, a)) = others.remove(&(word & !STATE)) {
        // The pool's copy and this one: nobody else holds it.
        if Arc::strong_count(&a) == 2 {
            pool.remove(&a);
        }
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
        for i in 0..100 {
            let d = format!("d{i}");
            l.claim(&d, &format!("n{i}"), T + 60_000, T + 300_000, T);
            assert!(l.settle(&d, "done:1:{\"type\":\"text\"}", T));
        }
        assert_eq!(l.pool.len(), 1, "one copy of a repeated reply");
        assert_eq!(
            l.answer("d7", T).as_deref(),
            Some("done:1:{\"type\":\"text\"}")
        );
        // Past the dedup window (and its table's grain), answers are gone; nonces stay.
        let later = T + 60_000 + GRAIN;
        assert_eq!(l.answer("d7", later), None);
        assert!(l.others.is_empty() && l.pool.is_empty());
        assert_eq!(l.len(), (100, 0));
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
    fn an_entry_lives_at_least_as_long_as_asked_and_at_most_a_grain_more() {
        let mut l = PushLedger::default();
        l.claim("d", "n", T + 30_000, T + 30_000, T);
        assert!(l.answer("d", T + 29_999).is_some());
        assert!(l.answer("d", T + 30_000 + GRAIN).is_none());
        // A nonce's expiry computed a fraction of a second apart still finds it.
        l.claim("d2", "n2", T + 45_500, T + 45_500, T);
        assert!(l.nonces.find_near(l.digest("n2"), T + 44_600).is_some());
        assert!(l.nonces.find_near(l.digest("n2"), T + 46_400).is_some());
    }
}
