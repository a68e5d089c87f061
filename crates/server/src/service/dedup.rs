//! Dedup and replay memory: a retry of a push (the same message, field for field) gets
//! the first answer and runs nothing; another message under a used timestamp and nonce
//! is a replay. Both live in the store, so a fleet shares them.

use std::time::Duration;

use axum::http::StatusCode;
use wxgate_proto::Reply;

use super::dispatch::{answer_for_format, run_handlers};
use super::handler::MessageContext;
use super::open::{Checked, Refusal};
use super::{Service, ServiceAccount};
use crate::config::ServiceConfig;
use crate::store::keys;
use crate::web::Ctx;

/// The plaintext answer (reply XML or `success`) for this push, whose window and
/// signatures were checked: the cached one for a retry, else the handlers' after the
/// nonce check.
pub async fn answer_once(
    ctx: &Ctx,
    svc: &Service,
    acc: &ServiceAccount,
    pushed: &MessageContext,
    checked: &Checked<'_>,
    now: i64,
) -> Result<Answer, Refusal> {
    let (ts, nonce) = (checked.ts, checked.nonce);
    let store = &ctx.store;
    let cfg = &svc.cfg;
    // Keyed on a digest of the whole (decrypted) message: a cached answer goes only to
    // the same message, never to another push that names its MsgId.
    let dedup_key = keys::dedup_digest(&acc.name, &pushed.message.dedup_digest());
    let deadline = tokio::time::Instant::now() + Duration::from_millis(cfg.deadline_ms);
    // 1. A retry of a push already answered (or being answered) gets that answer.
    match store.get(&dedup_key).await {
        Ok(Some(v)) => {
            metrics::counter!("wxgate_dedup_hits_total", "account" => acc.name.clone())
                .increment(1);
            return Ok(wait_for_answer(ctx, &dedup_key, v, deadline).await);
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(account = %acc.name, error = %e, "dedup unavailable"),
    }
    // 2. A new push is remembered only while there is room (retries, above, always
    //    get their answer): past the ceiling, 503 and WeChat retries later.
    if !svc.memory.has_room(now) {
        return Err(Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "push memory full: retry later",
        ));
    }
    // 3. Claim the message; a concurrent duplicate waits for the claimant's answer.
    let ttl = dedup_ttl(cfg);
    match store.set_if_absent(&dedup_key, PENDING, ttl).await {
        Ok(false) => {
            let v = store
                .get(&dedup_key)
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| PENDING.into());
            return Ok(wait_for_answer(ctx, &dedup_key, v, deadline).await);
        }
        Ok(true) => {}
        Err(e) => tracing::warn!(account = %acc.name, error = %e, "dedup unavailable"),
    }
    // 4. A message seen for the first time under a (timestamp, nonce) already used is a
    //    replay: another body under a captured signature, or the same push after its
    //    dedup answer expired. Genuine retries never get here (they hit the dedup
    //    answer, kept longer than WeChat retries). Every mode: a captured safe-mode push
    //    replayed after its dedup answer expired is refused here too. The nonce is
    //    remembered until its timestamp leaves the window.
    let nonce_key = keys::nonce(&acc.name, checked.timestamp, nonce);
    match store
        .set_if_absent(&nonce_key, "1", window_left(cfg, ts, now))
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            let _ = store.compare_and_delete(&dedup_key, PENDING).await;
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "replay: timestamp and nonce already used",
            ));
        }
        Err(e) => tracing::warn!(account = %acc.name, error = %e, "nonce memory unavailable"),
    }
    svc.memory.remember(now);
    let answer = run_handlers(acc, pushed, deadline, now).await;
    let answer = answer_for_format(ctx, acc, pushed, answer);
    if let Err(e) = store
        .set(&dedup_key, &encode_answer(&answer), Some(ttl))
        .await
    {
        tracing::warn!(account = %acc.name, error = %e, "dedup answer not stored");
    }
    Ok(answer)
}

/// How long a push with timestamp `ts` can still pass the window check.
fn window_left(cfg: &ServiceConfig, ts: i64, now: i64) -> Duration {
    Duration::from_secs((ts.saturating_add(cfg.replay_window) - now + 1).max(1) as u64)
}

/// How long a dedup answer is kept: longer than WeChat retries (3 tries in 15 s), at
/// least 30 s. The nonce memory, not this answer, stops replays after it.
fn dedup_ttl(cfg: &ServiceConfig) -> Duration {
    Duration::from_secs(cfg.dedup_ttl.max(30) as u64)
}

/// A push's answer: a reply made at a time, or `None` for `success`.
pub type Answer = Option<(i64, Reply)>;

const PENDING: &str = "pending";
const DONE: &str = "done:";

/// The stored form: `done:` for success, `done:{create_time}:{reply JSON}` for a reply.
/// The reply XML is made again from it for a retry (the retry names the same sender and
/// account), which keeps a dedup entry small.
fn encode_answer(answer: &Answer) -> String {
    match answer {
        None => DONE.to_owned(),
        Some((t, r)) => format!("{DONE}{t}:{}", serde_json::to_string(r).unwrap_or_default()),
    }
}

fn decode_answer(v: &str) -> Option<Answer> {
    let rest = v.strip_prefix(DONE)?;
    if rest.is_empty() {
        return Some(None);
    }
    let (t, json) = rest.split_once(':')?;
    Some(Some((t.parse().ok()?, serde_json::from_str(json).ok()?)))
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
            .get(key)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| PENDING.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nonce_is_kept_until_its_timestamp_leaves_the_window() {
        let cfg = ServiceConfig::default();
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
