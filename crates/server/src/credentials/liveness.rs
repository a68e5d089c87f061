//! Whether a token WeChat called invalid is dead: one check at a time per account
//! (`/cgi-bin/get_api_domain_ip`, the cheapest call that takes it), a verdict newer than
//! the error answers it, and a budget of checks so a caller provoking token errors costs
//! WeChat little and burns no refresh.

use std::time::Duration;

use wxgate_proto::api::openapi::GetApiDomainIp;

use super::{CentralControl, Credential, Kind};
use crate::error::Result;

/// Liveness checks an account may make in a burst, and how often one more is allowed:
/// an honest token error is checked at once, and a caller provoking token errors on
/// purpose costs WeChat at most one check every [`LIVENESS_REFILL`] once the burst is
/// spent (and never a refresh).
pub const LIVENESS_BURST: f64 = 5.0;
pub const LIVENESS_REFILL: Duration = Duration::from_secs(10);

/// The liveness checks of an account's access_token: the last verdict and the budget.
pub(super) struct Liveness {
    /// (token, when checked, alive).
    verdict: Option<(String, std::time::Instant, bool)>,
    budget: f64,
    refilled: std::time::Instant,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            verdict: None,
            budget: LIVENESS_BURST,
            refilled: std::time::Instant::now(),
        }
    }
}

impl Liveness {
    /// Takes one check from the budget, if any is left.
    fn spend(&mut self) -> bool {
        let now = std::time::Instant::now();
        let earned =
            now.duration_since(self.refilled).as_secs_f64() / LIVENESS_REFILL.as_secs_f64();
        self.budget = (self.budget + earned).min(LIVENESS_BURST);
        self.refilled = now;
        if self.budget >= 1.0 {
            self.budget -= 1.0;
            true
        } else {
            false
        }
    }
}

impl CentralControl {
    /// Whether WeChat no longer accepts `token`, an access_token of `account` that
    /// wxgate handed out, for a token error seen on a call sent at `sent`. Asked with
    /// the cheapest authenticated call (`/cgi-bin/get_api_domain_ip`), one check at a
    /// time per account: a verdict made after `sent` answers every such error; a newer
    /// error is checked again while the account's budget lasts ([`LIVENESS_BURST`],
    /// one more every [`LIVENESS_REFILL`]), else the last verdict stands (alive, if
    /// this token was never checked). A token error in some other answer is not proof:
    /// `/sns/*` and a few others answer 40001 about a token of the caller's, and a
    /// forced refresh ends the central token for every holder. Only a token error
    /// counts as dead: an unreachable WeChat does not burn a fetch.
    pub async fn is_dead(&self, account: &str, token: &str, sent: std::time::Instant) -> bool {
        let Ok(acc) = self.state(account) else {
            return false;
        };
        let mut memo = acc.liveness.lock().await;
        let known = memo
            .verdict
            .as_ref()
            .filter(|(t, _, _)| t == token)
            .map(|(_, at, alive)| (*at, *alive));
        if let Some((at, alive)) = known {
            if at >= sent {
                return !alive;
            }
        }
        if !memo.spend() {
            metrics::counter!("wxgate_liveness_checks_refused_total", "account" => crate::metrics::account_label(&acc.name))
                .increment(1);
            return known.is_some_and(|(_, alive)| !alive);
        }
        let checked_at = std::time::Instant::now();
        let alive = match self
            .upstream
            .call_with_access_token(&GetApiDomainIp {}, token)
            .await
        {
            Err(e) => !e.errcode().is_some_and(|c| c.is_access_token_invalid()),
            Ok(_) => true,
        };
        memo.verdict = Some((token.to_owned(), checked_at, alive));
        drop(memo);
        if !alive {
            metrics::counter!("wxgate_token_confirmed_dead_total", "account" => crate::metrics::account_label(&acc.name))
                .increment(1);
        }
        !alive
    }

    /// [`CentralControl::refresh_stale`] for an access_token that WeChat rejected in
    /// the answer to a call sent at `sent`, only once [`CentralControl::is_dead`]
    /// confirms it: `None` when the token is alive (the rejection was about something
    /// else).
    pub async fn refresh_if_dead(
        &self,
        account: &str,
        stale: &str,
        sent: std::time::Instant,
    ) -> Result<Option<Credential>> {
        if !self.accounts.contains_key(account) {
            // An authorizer's token: its holder drops it if the fleet still holds it
            // (compare-and-refresh), no liveness check of ours.
            let d = self.delegate_for(account)?;
            let fresh = d.refresh_stale(account, Kind::AccessToken, stale).await?;
            return Ok((fresh.value != stale).then_some(fresh));
        }
        if let Some(c) = self.current(account, Kind::AccessToken) {
            if c.value != stale {
                return Ok(Some(c));
            }
        }
        if !self.is_dead(account, stale, sent).await {
            return Ok(None);
        }
        self.refresh_stale(account, Kind::AccessToken, stale)
            .await
            .map(Some)
    }
}
