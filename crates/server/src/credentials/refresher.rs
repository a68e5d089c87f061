//! The background refresher: each round finds what is due (`refresh_margin` ahead, at a
//! random moment), refreshes it side by side under `max_concurrent_refreshes`, each
//! under `refresh_timeout_ms`, a failing one backing off alone; and publishes where every
//! credential stands for operators.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use super::{AccountState, CentralControl, CredentialState, Kind, Want, MIN_VALIDITY};
use crate::error::Error;

/// WeChat issues a new stable token (and, in the sandbox, ticket) only in the last 5
/// minutes of the current one, so those refresh inside that window.
pub(super) const LATE_WINDOW_MARGIN: i64 = 280;

/// How long a credential that failed `failures` times in a row waits before its next
/// background refresh: 2, 4, 8, ... seconds up to `cap`, scaled by a random 50-100%
/// (so accounts that failed together do not retry together), and never past half of
/// what the credential it holds still has to live (`held`: its expiry).
pub(super) fn backoff_delay(failures: u32, cap: u64, held: Option<i64>, now: i64) -> i64 {
    let exp = 2u64.saturating_pow(failures.min(30)).min(cap.max(1));
    let jittered = (exp as f64 * (0.5 + rand::random::<f64>() / 2.0)).ceil() as i64;
    let before_expiry = held.map_or(i64::MAX, |at| ((at - now - MIN_VALIDITY) / 2).max(1));
    jittered.clamp(1, before_expiry.max(1))
}

impl CentralControl {
    /// Refreshes every active credential that is missing or due, side by side (at
    /// most `max_concurrent_refreshes` at once, each under `refresh_timeout_ms`),
    /// skipping those whose failures put them in backoff; one still refreshing from an
    /// earlier call is waited for, not fetched twice. Returns once all are done. The background
    /// task calls this every `check_interval_ms` without waiting for it; tests call it
    /// to step through time.
    pub async fn refresh_due(&self) {
        let now = self.clock.now();
        let due: Vec<(&AccountState, Kind)> = self
            .accounts
            .values()
            .flat_map(|acc| Kind::ALL.into_iter().map(move |kind| (acc, kind)))
            .filter(|(acc, kind)| self.is_due(acc, *kind, now))
            .collect();
        futures_util::stream::iter(due)
            .for_each_concurrent(None, |(acc, kind)| self.refresh_one(acc, kind))
            .await;
        self.publish_states();
    }

    /// Whether the background refresh should fetch this credential now.
    fn is_due(&self, acc: &AccountState, kind: Kind, now: i64) -> bool {
        let slot = &acc.slots[kind.index()];
        if !slot.active.load(Ordering::Relaxed) {
            return false;
        }
        if slot.backoff.lock().is_ok_and(|b| now < b.1) {
            return false;
        }
        self.cached(slot)
            .is_none_or(|c| !Want::Fresh.satisfied_by(&c, now))
    }

    /// One background refresh: a slot of the bound, the timeout, and the backoff.
    async fn refresh_one(&self, acc: &AccountState, kind: Kind) {
        let slot = &acc.slots[kind.index()];
        if slot.refreshing.swap(true, Ordering::AcqRel) {
            // Another round is refreshing it: this one waits for that refresh to end
            // rather than starting a second.
            loop {
                let ended = slot.refreshed.notified();
                tokio::pin!(ended);
                ended.as_mut().enable();
                if !slot.refreshing.load(Ordering::Acquire) {
                    return;
                }
                ended.await;
            }
        }
        let Ok(_permit) = self.refresh_slots.acquire().await else {
            slot.refreshing.store(false, Ordering::Release);
            slot.refreshed.notify_waiters();
            return;
        };
        let timeout = Duration::from_millis(self.cfg.refresh_timeout_ms.max(1));
        let result = match tokio::time::timeout(timeout, self.obtain(acc, kind, Want::Fresh)).await
        {
            Ok(r) => r.map(drop),
            Err(_) => Err(Error::Transport {
                endpoint: kind.name().into(),
                reason: format!(
                    "no answer within credentials.refresh_timeout_ms ({} ms)",
                    timeout.as_millis()
                ),
            }),
        };
        let now = self.clock.now();
        match result {
            Ok(()) => {
                if let Ok(mut b) = slot.backoff.lock() {
                    *b = (0, 0);
                }
            }
            Err(e) => {
                let held = self.cached(slot).map(|c| c.expires_at);
                let (failures, delay) = match slot.backoff.lock() {
                    Ok(mut b) => {
                        b.0 = b.0.saturating_add(1);
                        let delay = backoff_delay(b.0, self.cfg.max_backoff_secs, held, now);
                        b.1 = now + delay;
                        (b.0, delay)
                    }
                    Err(_) => (0, 0),
                };
                metrics::counter!("wxgate_refresh_failures_total", "kind" => kind.name())
                    .increment(1);
                if !e.errcode().is_some_and(|c| c.is_ip_not_whitelisted()) {
                    tracing::warn!(account = %acc.name, kind = kind.name(), error = %e, failures, retry_in_secs = delay, "refresh failed");
                }
            }
        }
        slot.refreshing.store(false, Ordering::Release);
        slot.refreshed.notify_waiters();
    }

    /// Runs [`CentralControl::refresh_due`] every `check_interval_ms` until `stop`,
    /// each round on its own task: a round held up by a slow account does not hold
    /// up the next round's other accounts.
    pub fn spawn_refresher(
        self: &Arc<Self>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let period = Duration::from_millis(self.cfg.check_interval_ms);
        crate::util::spawn_periodic(period, stop, move || {
            let me = me.clone();
            async move {
                tokio::spawn(async move { me.refresh_due().await });
            }
        })
    }

    /// How many credentials of each kind are ok, due or failing now: `wxgate_credentials`
    /// and what the console's summary counts. A kind nobody asked for (a ticket) is
    /// not counted.
    pub fn by_state(&self) -> Vec<(Kind, [usize; 3])> {
        let now = self.clock.now();
        Kind::ALL
            .into_iter()
            .map(|kind| {
                let mut counts = [0usize; 3];
                for acc in self.accounts.values() {
                    let slot = &acc.slots[kind.index()];
                    if !slot.active.load(Ordering::Relaxed) {
                        continue;
                    }
                    counts[CredentialState::of(self.cached(slot).as_ref(), now) as usize] += 1;
                }
                (kind, counts)
            })
            .collect()
    }

    /// The state of every account's access_token, for listing and filtering.
    pub fn states(&self) -> Vec<(String, CredentialState)> {
        let now = self.clock.now();
        self.accounts
            .values()
            .map(|acc| {
                let slot = &acc.slots[Kind::AccessToken.index()];
                (
                    acc.name.clone(),
                    CredentialState::of(self.cached(slot).as_ref(), now),
                )
            })
            .collect()
    }

    fn publish_states(&self) {
        for (kind, counts) in self.by_state() {
            for state in [
                CredentialState::Ok,
                CredentialState::Due,
                CredentialState::Failing,
            ] {
                metrics::gauge!("wxgate_credentials", "kind" => kind.name(), "state" => state.name())
                    .set(counts[state as usize] as f64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_cap_and_before_expiry() {
        for _ in 0..100 {
            let d = backoff_delay(1, 300, None, 0);
            assert!((1..=2).contains(&d), "{d}");
            let d = backoff_delay(5, 300, None, 0);
            assert!((16..=32).contains(&d), "{d}");
            let d = backoff_delay(30, 300, None, 0);
            assert!((150..=300).contains(&d), "capped: {d}");
            // A token with 200 s left is retried within half of them.
            let d = backoff_delay(30, 300, Some(1_000 + 200), 1_000);
            assert!(d <= (200 - MIN_VALIDITY) / 2, "{d}");
            // Expired: still a second or more, never zero or negative.
            assert_eq!(backoff_delay(30, 300, Some(900), 1_000), 1);
        }
    }
}
