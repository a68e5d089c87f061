//! Dedup and replay memory: a retry of a push (the same message, field for field) gets
//! the first answer and runs nothing; another message under a used timestamp and nonce
//! is a replay. Both live in the store, so a fleet shares them.

use std::time::Duration;

use axum::http::StatusCode;

use super::answer::{decode_answer, encode_answer, Answer};
use super::dispatch::{answer_for_format, run_handlers};
use super::handler::MessageContext;
use super::open::Checked;
use super::{PushAccount, PushService};
use crate::config::PushConfig;
use crate::store::{keys, PushClaim, PUSH_PENDING};
use crate::web::envelope::Reject;
use crate::web::Ctx;

/// The plaintext answer (reply XML or `success`) for this push, whose window and
/// signatures were checked: the cached one for a retry, else the handlers' after the
/// nonce check.
pub async fn answer_once(
    ctx: &Ctx,
    svc: &PushService,
    acc: &PushAccount,
    pushed: &MessageContext,
    checked: &Checked<'_>,
    now: i64,
) -> Result<Answer, Reject> {
    let (ts, nonce) = (checked.ts, checked.nonce);
    let store = &ctx.store;
    let cfg = &svc.cfg;
    // Keyed on a digest of the whole (decrypted) message: a cached answer goes only to
    // the same message, never to another push that names its MsgId.
    let dedup_key = keys::dedup_digest(&acc.name, &pushed.message.dedup_digest());
    let deadline = tokio::time::Instant::now() + Duration::from_millis(cfg.deadline_ms);
    let ttl = dedup_ttl(cfg);
    // 1. One atomic step: a retry of a push already answered (or being answered) gets
    //    that answer; a message seen for the first time under a (timestamp, nonce)
    //    already used is a replay (another body under a captured signature, or the same
    //    push after its dedup answer expired; genuine retries hit the dedup answer, kept
    //    longer than WeChat retries), in every mode; else the push is remembered, its
    //    nonce until its timestamp leaves the window. Past the memory's ceiling only
    //    retries are answered: a new push gets 503 and WeChat retries later.
    let claim = if svc.memory.has_room(&acc.memory, &acc.name, now) {
        let nonce_key = keys::nonce(&acc.name, checked.timestamp, nonce);
        store
            .claim_push(&dedup_key, &nonce_key, ttl, window_left(cfg, ts, now))
            .await
    } else {
        match store.push_answer(&dedup_key).await {
            Ok(Some(v)) => Ok(PushClaim::Known(v)),
            Ok(None) => {
                return Err(Reject::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "push memory full: retry later",
                ))
            }
            Err(e) => Err(e),
        }
    };
    match claim {
        Ok(PushClaim::Claimed) => {}
        Ok(PushClaim::Known(v)) => {
            metrics::counter!("wxgate_dedup_hits_total", "account" => crate::metrics::account_label(&acc.name))
                .increment(1);
            return Ok(wait_for_answer(ctx, &dedup_key, v, deadline).await);
        }
        Ok(PushClaim::Replay) => {
            return Err(Reject::new(
                StatusCode::FORBIDDEN,
                "replay: timestamp and nonce already used",
            ))
        }
        // The store is down: handle the push rather than lose it (a retry may run the
        // handlers again, and replays go unchecked until it answers). The store logs
        // the outage once; a line a push would flood the log.
        Err(e) => tracing::debug!(account = %acc.name, error = %e, "push memory unavailable"),
    }
    svc.memory.remember(&acc.memory, now);
    let answer = run_handlers(acc, pushed, deadline, now).await;
    let answer = answer_for_format(acc, pushed, answer);
    if let Err(e) = store
        .settle_push(&dedup_key, &encode_answer(&answer), ttl)
        .await
    {
        tracing::debug!(account = %acc.name, error = %e, "dedup answer not stored");
    }
    Ok(answer)
}

/// How long a push with timestamp `ts` can still pass the window check.
fn window_left(cfg: &PushConfig, ts: i64, now: i64) -> Duration {
    Duration::from_secs((ts.saturating_add(cfg.replay_window) - now + 1).max(1) as u64)
}

/// How long a dedup answer is kept: longer than WeChat retries (3 tries in 15 s), at
/// least 30 s. The nonce memory, not this answer, stops replays after it.
fn dedup_ttl(cfg: &PushConfig) -> Duration {
    Duration::from_secs(cfg.dedup_ttl.max(30) as u64)
}

async fn wait_for_answer(
    ctx: &Ctx,
    key: &str,
    mut value: String,
    deadline: tokio::time::Instant,
) -> Answer {
    loop {
        if let Some(answer) = decode_answer(&value) {
            return answer;
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        value = ctx
            .store
            .push_answer(key)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| PUSH_PENDING.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nonce_is_kept_until_its_timestamp_leaves_the_window() {
        let cfg = PushConfig::default();
        assert_eq!(cfg.replay_window, 300);
        let now = 1_700_000_000;
        let secs = |d: Duration| d.as_secs() as i64;
        assert_eq!(secs(window_left(&cfg, now, now)), 301);
        assert_eq!(secs(window_left(&cfg, now + 300, now)), 601);
        assert_eq!(secs(window_left(&cfg, now - 300, now)), 1);
        assert_eq!(secs(window_left(&cfg, i64::MAX, now)), i64::MAX - now + 1);
        assert_eq!(secs(dedup_ttl(&cfg)), cfg.dedup_ttl);
    }
}
