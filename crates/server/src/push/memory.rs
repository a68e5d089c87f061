//! The ceiling on what pushes leave behind. Every accepted push is remembered for the
//! replay window (its nonce, and its dedup answer for WeChat's retries); at a sustained
//! rate that is `pushes per second x replay_window` entries. Past
//! `service.max_remembered_pushes`, a new push is refused with 503, which WeChat
//! retries, rather than remembered: no replay is accepted and no retry handled twice,
//! and the gateway recovers by itself as pushes leave the window. Retries of pushes
//! already remembered are still answered.
//!
//! The ceiling is shared so that one noisy account cannot refuse another's pushes: half
//! of it is reserved in equal shares (each account always has room for
//! `ceiling / (2 x accounts)` pushes), the other half is a pool any account may borrow
//! from. One account alone can fill the whole ceiling; a flood on one account leaves
//! every other account its reserve.
//!
//! Counted here per second of the gateway's clock (a ring of at most `replay_window`
//! buckets per account), whatever store holds the entries themselves.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Pushes remembered per second, over the window, per account.
pub struct PushMemory {
    window: i64,
    ceiling: u64,
    /// Each account's reserved share.
    reserve: u64,
    /// What all accounts together may hold past their reserves.
    pool: u64,
    accounts: Vec<Arc<AccountMemory>>,
    /// Set while refusing, so that the episode is logged once.
    full: AtomicBool,
}

/// One account's remembered pushes.
#[derive(Default)]
pub struct AccountMemory {
    seconds: Mutex<Ring>,
}

#[derive(Default)]
struct Ring {
    buckets: VecDeque<(i64, u64)>,
    total: u64,
}

impl Ring {
    /// Drops the seconds that left the window.
    fn expire(&mut self, now: i64, window: i64) {
        while let Some(&(second, count)) = self.buckets.front() {
            if second > now - window {
                break;
            }
            self.total -= count;
            self.buckets.pop_front();
        }
    }
}

impl AccountMemory {
    fn remembered(&self, now: i64, window: i64) -> u64 {
        let mut ring = self.seconds.lock().unwrap_or_else(|e| e.into_inner());
        ring.expire(now, window);
        ring.total
    }
}

impl PushMemory {
    /// `ceiling` 0: no ceiling. `accounts`: how many accounts share it.
    pub fn new(window: i64, ceiling: u64, accounts: usize) -> Self {
        let n = accounts.max(1) as u64;
        let reserve = ceiling / (2 * n);
        PushMemory {
            window: window.max(1),
            ceiling,
            reserve,
            pool: ceiling - reserve * n,
            accounts: Vec::new(),
            full: AtomicBool::new(false),
        }
    }

    /// A new account's share (call once per account, as many as `new` was told).
    pub fn account(&mut self) -> Arc<AccountMemory> {
        let a = Arc::new(AccountMemory::default());
        self.accounts.push(a.clone());
        a
    }

    /// Pushes remembered now, all accounts together.
    pub fn remembered(&self, now: i64) -> u64 {
        self.accounts
            .iter()
            .map(|a| a.remembered(now, self.window))
            .sum()
    }

    /// What the accounts hold past their reserves.
    fn borrowed(&self, now: i64) -> u64 {
        self.accounts
            .iter()
            .map(|a| a.remembered(now, self.window).saturating_sub(self.reserve))
            .sum()
    }

    /// Whether one more push of `account` (named `name`) may be remembered: within its
    /// reserve, or while the shared pool has room. Logs the start and the end of a full
    /// episode once each.
    pub fn has_room(&self, account: &AccountMemory, name: &str, now: i64) -> bool {
        if self.ceiling == 0 {
            return true;
        }
        // The pool is summed only by an account past its reserve.
        let room =
            account.remembered(now, self.window) < self.reserve || self.borrowed(now) < self.pool;
        let was_full = self.full.swap(!room, Ordering::Relaxed);
        if !room && !was_full {
            tracing::warn!(
                ceiling = self.ceiling,
                account = name,
                "push memory full: new pushes past their account's reserve are refused with 503 (WeChat retries) until older ones leave the window"
            );
        } else if room && was_full {
            tracing::info!("push memory has room again");
        }
        room
    }

    /// Counts a push of `account` remembered at `now`.
    pub fn remember(&self, account: &AccountMemory, now: i64) {
        let mut ring = account.seconds.lock().unwrap_or_else(|e| e.into_inner());
        ring.expire(now, self.window);
        match ring.buckets.back_mut() {
            Some((second, count)) if *second == now => *count += 1,
            _ => ring.buckets.push_back((now, 1)),
        }
        ring.total += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_to_the_ceiling_and_recovers_as_the_window_passes() {
        let mut m = PushMemory::new(300, 3, 1);
        let a = m.account();
        let t = 1_000_000;
        for i in 0..3 {
            assert!(m.has_room(&a, "a", t + i));
            m.remember(&a, t + i);
        }
        assert!(!m.has_room(&a, "a", t + 10));
        assert_eq!(m.remembered(t + 299), 3);
        assert_eq!(m.remembered(t + 300), 2, "the first second left the window");
        assert!(m.has_room(&a, "a", t + 300));
        assert_eq!(m.remembered(t + 400), 0);
        let mut none = PushMemory::new(300, 0, 1);
        let a = none.account();
        assert!(none.has_room(&a, "a", t), "0: no ceiling");
    }

    #[test]
    fn a_noisy_account_leaves_the_others_their_reserve() {
        let mut m = PushMemory::new(300, 100, 4);
        let accounts: Vec<_> = (0..4).map(|_| m.account()).collect();
        let t = 1_000_000;
        let mut noisy = 0;
        while m.has_room(&accounts[0], "noisy", t) {
            m.remember(&accounts[0], t);
            noisy += 1;
        }
        // Its reserve (100 / 8 = 12) and the whole pool (52).
        assert_eq!(noisy, 12 + 52);
        for quiet in &accounts[1..] {
            for _ in 0..12 {
                assert!(m.has_room(quiet, "quiet", t));
                m.remember(quiet, t);
            }
            assert!(!m.has_room(quiet, "quiet", t), "the pool is spent");
        }
        assert!(m.remembered(t) <= 100, "never past the ceiling");
    }
}
