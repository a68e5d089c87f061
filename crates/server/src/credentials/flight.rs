//! One fetch however many wait: a mutex per credential in the process (single flight),
//! a lock with a lease in the store across a fleet; waiters poll the store for the new
//! value. Every fetch counts against the account's daily counter.

use std::time::Duration;

use super::status::utc_day;
use super::*;

impl CentralControl {
    pub(super) async fn obtain(
        &self,
        acc: &AccountState,
        kind: Kind,
        want: Want,
    ) -> Result<Credential> {
        let slot = &acc.slots[kind.index()];
        let _flight = slot.flight.lock().await;
        let lock_key = keys::refresh_lock(&acc.name, kind.name());
        let lease = Duration::from_millis(self.cfg.lock_lease_ms);
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.cfg.wait_timeout_ms);
        let mut waited = false;
        loop {
            let now = self.clock.now();
            // Someone (this instance earlier, or another) may have done the work already.
            if let Some(c) = self.cached(slot) {
                if want.satisfied_by(&c, now) {
                    return Ok(c);
                }
            }
            let locked = match self.stored(acc, kind).await {
                Ok(stored) => {
                    if let Some(c) = stored.as_ref().filter(|c| want.satisfied_by(c, now)) {
                        self.remember(slot, c);
                        return Ok(c.clone());
                    }
                    self.store
                        .set_if_absent(&lock_key, &self.owner, lease)
                        .await
                }
                Err(e) => Err(e),
            };
            let locked = match locked {
                Ok(locked) => locked,
                Err(e) => {
                    // The store is unreachable (down, or failing over). Serve memory while
                    // it is valid; else wait for the store: a fetch without the fleet's
                    // lock would let every instance fetch, and each new access_token
                    // cuts the life of the one the others hold. The store's health
                    // logs the outage once; this path stays quiet.
                    if let Some(c) = self.cached(slot).filter(|c| c.usable(now)) {
                        return Ok(c);
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if locked {
                let result = self.fetch_under_lock(acc, kind, &want, slot).await;
                if let Err(e) = self.store.compare_and_delete(&lock_key, &self.owner).await {
                    tracing::warn!(account = %acc.name, kind = kind.name(), error = %e, "lock release failed; the lease will end it");
                }
                return result;
            }
            // Another instance is fetching: wait for the store to hold its result.
            if !waited {
                waited = true;
                metrics::counter!("wxgate_lock_waits_total", "kind" => kind.name()).increment(1);
            }
            if tokio::time::Instant::now() >= deadline {
                if let Some(c) = self.cached(slot).filter(|c| c.usable(self.clock.now())) {
                    return Ok(c);
                }
                return Err(Error::LockTimeout(kind.name().into()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn fetch_under_lock(
        &self,
        acc: &AccountState,
        kind: Kind,
        want: &Want,
        slot: &Slot,
    ) -> Result<Credential> {
        // Re-read under the lock: the previous holder may have just stored a value.
        let stored = self.stored(acc, kind).await?;
        let now = self.clock.now();
        if let Some(c) = stored.as_ref().filter(|c| want.satisfied_by(c, now)) {
            self.remember(slot, c);
            return Ok(c.clone());
        }
        let current = stored.or_else(|| self.cached(slot));
        match self.fetch(acc, kind, want, current.as_ref()).await {
            Ok(c) => {
                let ttl = Duration::from_secs((c.expires_at - self.clock.now()).max(1) as u64);
                let key = keys::credential(&acc.name, kind.name());
                if let Err(e) = self
                    .store
                    .set(
                        &key,
                        &serde_json::to_string(&c).unwrap_or_default(),
                        Some(ttl),
                    )
                    .await
                {
                    // The value is good; other instances will fetch their own meanwhile.
                    tracing::warn!(account = %acc.name, kind = kind.name(), error = %e, "could not store the new credential");
                }
                self.remember(slot, &c);
                Self::observe(acc, kind, &c);
                if let Ok(mut e) = slot.last_error.write() {
                    *e = None;
                }
                Ok(c)
            }
            Err(e) => {
                tracing::warn!(account = %acc.name, kind = kind.name(), error = %e, "fetch failed");
                if let Ok(mut last) = slot.last_error.write() {
                    *last = Some(e.to_string());
                }
                // Keep serving what has not expired.
                match current.filter(|c| c.usable(self.clock.now())) {
                    Some(c) if !matches!(want, Want::NotThis(s) if *s == c.value) => {
                        self.remember(slot, &c);
                        Ok(c)
                    }
                    _ => Err(e),
                }
            }
        }
    }

    /// One upstream fetch (two for a stable token that WeChat still hands back after it
    /// was rejected: normal mode first, then forced).
    async fn fetch(
        &self,
        acc: &AccountState,
        kind: Kind,
        want: &Want,
        current: Option<&Credential>,
    ) -> Result<Credential> {
        let (value, expires_in) = match kind.ticket_type() {
            None => self.fetch_access_token(acc, want).await?,
            Some(t) => self.fetch_ticket(acc, t).await?,
        };
        let now = self.clock.now();
        self.count_fetch(acc, kind, now).await;
        let expires_at = now + expires_in;
        let unchanged = current.is_some_and(|c| c.value == value);
        // WeChat hands back the same value until the late window: try again inside it.
        let margin = if unchanged {
            self.margin(acc, kind).min(120)
        } else {
            self.margin(acc, kind)
        };
        tracing::info!(account = %acc.name, kind = kind.name(), expires_in, "credential fetched");
        Ok(Credential {
            value,
            expires_at,
            fetched_at: now,
            refresh_at: (expires_at - margin)
                .max(now + 30)
                .min(expires_at - MIN_VALIDITY),
        })
    }

    async fn count_fetch(&self, acc: &AccountState, kind: Kind, now: i64) {
        let key = keys::fetch_counter(&acc.name, &format!("{}:{}", kind.name(), utc_day(now)));
        match self.store.increment(&key, Duration::from_secs(2 * 86400)).await {
            Ok(n) => metrics::gauge!("wxgate_credential_fetches_today", "account" => acc.name.clone(), "kind" => kind.name())
                .set(n as f64),
            Err(e) => tracing::warn!(account = %acc.name, error = %e, "fetch counter not updated"),
        }
    }
}
