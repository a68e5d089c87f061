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
                    // A fetch failed a moment ago (here or on another instance): its
                    // error, without calling WeChat again until the backoff ends.
                    if let Some(failure) = self.recent_failure(acc, kind).await {
                        return match self.cached(slot).filter(|c| c.usable(now)) {
                            Some(c) if !matches!(&want, Want::NotThis(s) if *s == c.value) => Ok(c),
                            _ => Err(failure),
                        };
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
                // Released however the fetch ends, a timeout that drops it included:
                // else the fleet would wait out the lease before anyone tries again.
                let mut held = HeldLock {
                    store: self.store.clone(),
                    key: lock_key.clone(),
                    owner: self.owner.clone(),
                    released: false,
                };
                let result = self.fetch_under_lock(acc, kind, &want, slot).await;
                held.released = true;
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
                if let Ok(mut refused) = acc.ip_refused.lock() {
                    *refused = None;
                }
                if let Ok(mut e) = slot.last_error.write() {
                    *e = None;
                }
                Ok(c)
            }
            Err(e) => {
                if e.errcode().is_some_and(|c| c.is_ip_not_whitelisted()) {
                    self.note_ip_refused(acc, &e);
                } else {
                    tracing::warn!(account = %acc.name, kind = kind.name(), error = %e, "fetch failed");
                }
                self.remember_failure(acc, kind, &e).await;
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
        // A random moment in the first half of the margin: credentials fetched together
        // (a cold start of many accounts) come due apart, not in one burst for ever.
        let jitter = rand::random::<u64>() % (margin / 2).max(1) as u64;
        tracing::info!(account = %acc.name, kind = kind.name(), expires_in, "credential fetched");
        Ok(Credential {
            value,
            expires_at,
            fetched_at: now,
            refresh_at: (expires_at - margin + jitter as i64)
                .max(now + 30)
                .min(expires_at - MIN_VALIDITY),
        })
    }

    /// Remembers a failed fetch for the fleet for `failure_backoff_ms`.
    async fn remember_failure(&self, acc: &AccountState, kind: Kind, e: &Error) {
        let backoff = Duration::from_millis(self.cfg.failure_backoff_ms);
        if backoff.is_zero() {
            return;
        }
        let failure = RememberedFailure::of(e);
        let key = keys::fetch_failure(&acc.name, kind.name());
        let value = serde_json::to_string(&failure).unwrap_or_default();
        if let Err(e) = self.store.set(&key, &value, Some(backoff)).await {
            tracing::debug!(account = %acc.name, error = %e, "fetch failure not remembered");
        }
    }

    /// The error of a fetch that failed within the backoff, if any.
    async fn recent_failure(&self, acc: &AccountState, kind: Kind) -> Option<Error> {
        if self.cfg.failure_backoff_ms == 0 {
            return None;
        }
        let key = keys::fetch_failure(&acc.name, kind.name());
        let raw = self.store.get(&key).await.ok()??;
        let failure: RememberedFailure = serde_json::from_str(&raw).ok()?;
        metrics::counter!("wxgate_fetch_backoff_answers_total", "kind" => kind.name()).increment(1);
        Some(failure.into_error())
    }

    async fn count_fetch(&self, acc: &AccountState, kind: Kind, now: i64) {
        let key = keys::fetch_counter(&acc.name, &format!("{}:{}", kind.name(), utc_day(now)));
        match self.store.increment(&key, Duration::from_secs(2 * 86400)).await {
            Ok(n) if crate::metrics::per_account_labels() => {
                metrics::gauge!("wxgate_credential_fetches_today", "account" => acc.name.clone(), "kind" => kind.name())
                    .set(n as f64)
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(account = %acc.name, error = %e, "fetch counter not updated"),
        }
    }
}

/// A failed fetch as the store keeps it for the fleet: enough to answer the same error.
#[derive(Serialize, Deserialize)]
struct RememberedFailure {
    endpoint: String,
    /// WeChat's errcode, when WeChat refused.
    errcode: Option<i64>,
    message: String,
}

impl RememberedFailure {
    fn of(e: &Error) -> Self {
        match e {
            Error::WeChat {
                endpoint,
                code,
                errmsg,
            } => RememberedFailure {
                endpoint: endpoint.clone(),
                errcode: Some(code.code()),
                message: errmsg.clone(),
            },
            Error::Transport { endpoint, reason } => RememberedFailure {
                endpoint: endpoint.clone(),
                errcode: None,
                message: reason.clone(),
            },
            other => RememberedFailure {
                endpoint: "fetch".into(),
                errcode: None,
                message: other.to_string(),
            },
        }
    }

    fn into_error(self) -> Error {
        let (endpoint, said) = (
            self.endpoint,
            format!(
                "{} (a fetch failed a moment ago; retried after credentials.failure_backoff_ms)",
                self.message
            ),
        );
        match self.errcode {
            Some(code) => Error::WeChat {
                endpoint,
                code: wxgate_proto::ErrCode::from_code(code),
                errmsg: said,
            },
            None => Error::Transport {
                endpoint,
                reason: said,
            },
        }
    }
}

/// A refresh lock this instance holds: released in the background if the fetch under it
/// is dropped before it could release it (a refresh's timeout).
struct HeldLock {
    store: crate::store::SharedStore,
    key: String,
    owner: String,
    released: bool,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let (store, key, owner) = (
            self.store.clone(),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.owner),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = store.compare_and_delete(&key, &owner).await;
            });
        }
    }
}
