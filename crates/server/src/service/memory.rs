//! The ceiling on what pushes leave behind. Every accepted push is remembered for the
//! replay window (its nonce, and its dedup answer for WeChat's retries); at a sustained
//! rate that is `pushes per second x replay_window` entries. Past
//! `service.max_remembered_pushes`, a new push is refused with 503, which WeChat
//! retries, rather than remembered: no replay is accepted and no retry handled twice,
//! and the gateway recovers by itself as pushes leave the window. Retries of pushes
//! already remembered are still answered.
//!
//! Counted here per second of the gateway's clock (a ring of at most `replay_window`
//! buckets), whatever store holds the entries themselves.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Pushes remembered per second, over the window.
pub struct PushMemory {
    window: i64,
    ceiling: u64,
    seconds: Mutex<Ring>,
    /// Set while refusing, so that the episode is logged once.
    full: AtomicBool,
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

impl PushMemory {
    /// `ceiling` 0: no ceiling.
    pub fn new(window: i64, ceiling: u64) -> Self {
        PushMemory {
            window: window.max(1),
            ceiling,
            seconds: Mutex::new(Ring::default()),
            full: AtomicBool::new(false),
        }
    }

    /// Pushes remembered now.
    pub fn remembered(&self, now: i64) -> u64 {
        let mut ring = self.seconds.lock().unwrap_or_else(|e| e.into_inner());
        ring.expire(now, self.window);
        ring.total
    }

    /// Whether one more push may be remembered; logs the start and the end of a full
    /// episode once each.
    pub fn has_room(&self, now: i64) -> bool {
        if self.ceiling == 0 {
            return true;
        }
        let room = self.remembered(now) < self.ceiling;
        let was_full = self.full.swap(!room, Ordering::Relaxed);
        if !room && !was_full {
            tracing::warn!(
                ceiling = self.ceiling,
                "push memory full: new pushes are refused with 503 (WeChat retries) until older ones leave the window"
            );
        } else if room && was_full {
            tracing::info!("push memory has room again");
        }
        room
    }

    /// Counts a push remembered at `now`.
    pub fn remember(&self, now: i64) {
        let mut ring = self.seconds.lock().unwrap_or_else(|e| e.into_inner());
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
        let m = PushMemory::new(300, 3);
        let t = 1_000_000;
        for i in 0..3 {
            assert!(m.has_room(t + i));
            m.remember(t + i);
        }
        assert!(!m.has_room(t + 10));
        assert_eq!(m.remembered(t + 299), 3);
        assert_eq!(m.remembered(t + 300), 2, "the first second left the window");
        assert!(m.has_room(t + 300));
        assert_eq!(m.remembered(t + 400), 0);
        assert!(PushMemory::new(300, 0).has_room(t), "0: no ceiling");
    }
}
