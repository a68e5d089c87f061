//! Command results turned into one log line per change of state (unavailable, answers
//! again), the `wxgate_store_up` gauge and the count of outages `/readyz` reads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use super::conn::unreachable;
use crate::store::StoreHealth;

/// Whether the store answers, as the commands find it: a change is logged once and
/// counted, never once a request.
pub(super) struct Health {
    /// The topology: `single`, `sentinel`, `cluster`.
    pub(super) mode: &'static str,
    pub(super) down: AtomicBool,
    pub(super) since: Mutex<Option<(Instant, String)>>,
    pub(super) outages: AtomicU64,
    // Looked up once: every command counts itself.
    pub(super) commands: metrics::Counter,
    pub(super) errors: metrics::Counter,
    pub(super) up: metrics::Gauge,
    pub(super) outages_total: metrics::Counter,
}

impl Health {
    pub(super) fn new(mode: &'static str) -> Health {
        let up = metrics::gauge!("wxgate_store_up", "store" => "redis", "mode" => mode);
        up.set(1.0);
        Health {
            mode,
            down: AtomicBool::new(false),
            since: Mutex::new(None),
            outages: AtomicU64::new(0),
            commands: metrics::counter!("wxgate_store_commands_total", "store" => "redis"),
            errors: metrics::counter!("wxgate_store_errors_total", "store" => "redis"),
            up,
            outages_total: metrics::counter!("wxgate_store_outages_total", "store" => "redis", "mode" => mode),
        }
    }

    pub(super) fn failed(&self, e: &redis::RedisError) {
        self.errors.increment(1);
        if unreachable(e) && !self.down.swap(true, Ordering::AcqRel) {
            if let Ok(mut since) = self.since.lock() {
                *since = Some((Instant::now(), e.to_string()));
            }
            self.outages.fetch_add(1, Ordering::Relaxed);
            self.outages_total.increment(1);
            self.up.set(0.0);
            tracing::warn!(mode = self.mode, error = %e, "redis store unavailable: serving valid tokens and tickets from memory, refreshes wait for the store");
        }
    }

    pub(super) fn answered(&self) {
        // One relaxed load on the hot path; the rest only on a change of state.
        if self.down.load(Ordering::Relaxed) && self.down.swap(false, Ordering::AcqRel) {
            let down_for = self
                .since
                .lock()
                .ok()
                .and_then(|mut s| s.take())
                .map_or(0, |(at, _)| at.elapsed().as_millis() as u64);
            self.up.set(1.0);
            tracing::info!(
                mode = self.mode,
                down_for_ms = down_for,
                "redis store answers again"
            );
        }
    }

    pub(super) fn snapshot(&self) -> StoreHealth {
        let since = self.since.lock().ok().and_then(|s| s.clone());
        StoreHealth {
            mode: self.mode,
            up: !self.down.load(Ordering::Acquire),
            down_for_ms: since
                .as_ref()
                .map(|(at, _)| at.elapsed().as_millis() as u64),
            last_error: since.map(|(_, e)| e),
            outages: self.outages.load(Ordering::Relaxed),
        }
    }
}
