//! The sandbox's controllable clock: real time plus an offset that only grows, so a test
//! can watch a two-hour token expire in a millisecond.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
pub struct Clock {
    offset: AtomicI64,
}

impl Clock {
    /// Unix seconds as the sandbox sees them.
    pub fn now(&self) -> i64 {
        real_now() + self.offset.load(Ordering::SeqCst)
    }

    /// Moves the clock forward (a negative step is ignored: WeChat's time never runs back).
    pub fn advance(&self, seconds: i64) -> i64 {
        if seconds > 0 {
            self.offset.fetch_add(seconds, Ordering::SeqCst);
        }
        self.now()
    }

    pub fn offset(&self) -> i64 {
        self.offset.load(Ordering::SeqCst)
    }
}

/// Unix seconds, the system clock's.
pub fn real_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
