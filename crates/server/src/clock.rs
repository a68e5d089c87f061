//! The gateway's clock. Production reads the system clock; tests add an offset so a
//! simulated day passes in seconds, in step with the sandbox's clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in seconds, with an adjustable offset (zero in production).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Self {
        Clock::default()
    }

    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        self.now_ms() / 1000
    }

    /// Unix milliseconds now.
    pub fn now_ms(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        real + self.offset.load(Ordering::SeqCst) * 1000
    }

    /// Moves this clock (and every clone of it) forward: for tests.
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::SeqCst);
    }
}
