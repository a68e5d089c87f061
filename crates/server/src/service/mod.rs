//! `/wx/service` (and `/wx/{account}/service`): WeChat's URL verification and the push
//! endpoint for messages and events, in plaintext, compatible and safe mode.
//!
//! The account's configured [`MessageMode`] alone decides what a push must be: in safe and
//! compatible mode only an encrypted push with a valid `msg_signature` (whatever else
//! the document carries), in plaintext mode only a plaintext one. A push goes through,
//! in order: the timestamp window (before the body is read), the signatures (for an
//! encrypted push, `msg_signature` over the `Encrypt` read from a streaming scan that
//! builds nothing else), decryption and the appid, parsing, dedup (a retry, the same
//! message field for field, gets the first answer and runs nothing), the nonce memory
//! (another message under a used timestamp and nonce is a replay, in every mode), then
//! the handlers under WeChat's deadline. Every refusal is a 4xx that changes nothing.

pub mod handler;
pub mod rules;
pub mod webhook;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use wxgate_proto::crypto::MsgCrypt;
use wxgate_proto::reply::{encrypted_reply_xml, SUCCESS};
use wxgate_proto::signature::verify_server_signature;
use wxgate_proto::{Envelope, Error as ProtoError, Message, MessageMode, Reply};

use crate::config::{Config, ServiceConfig};
use crate::credentials::CentralControl;
use crate::error::{Error, Result};
use crate::store::keys;
use crate::web::account::unknown_account;
use crate::web::envelope;
use crate::web::query::query_struct;
use crate::web::{Account, Ctx};
use handler::{Handled, Handler, MessageContext};

/// One account's push settings and handlers, prepared once.
pub struct ServiceAccount {
    pub name: String,
    pub appid: String,
    token: Option<String>,
    crypt: Option<MsgCrypt>,
    mode: MessageMode,
    handlers: Vec<Arc<dyn Handler>>,
}

/// Every account's push settings.
pub struct Service {
    accounts: HashMap<String, ServiceAccount>,
    cfg: ServiceConfig,
    /// The webhook handlers' counters, by account.
    pub webhook_stats: BTreeMap<String, Arc<webhook::WebhookStats>>,
}

impl Service {
    /// Builds each account's handler chain: rules, then `extra` handlers registered by
    /// an embedding program, then the webhook.
    pub fn new(
        config: &Config,
        central: &Arc<CentralControl>,
        mut extra: HashMap<String, Vec<Arc<dyn Handler>>>,
    ) -> Result<Self> {
        let mut accounts = HashMap::new();
        let mut webhook_stats = BTreeMap::new();
        for (name, a) in &config.accounts {
            let crypt = match (&a.token, &a.encoding_aes_key) {
                (Some(t), Some(k)) => Some(MsgCrypt::new(t.expose(), k.expose(), &a.appid)?),
                _ => None,
            };
            let mut handlers: Vec<Arc<dyn Handler>> = Vec::new();
            if !a.rules.is_empty() {
                handlers.push(Arc::new(rules::RulesHandler::new(&a.rules)?));
            }
            handlers.extend(extra.remove(name).unwrap_or_default());
            if let Some(w) = &a.webhook {
                let hook = webhook::WebhookHandler::new(name, w.clone(), central.clone())?;
                webhook_stats.insert(name.clone(), hook.stats.clone());
                handlers.push(Arc::new(hook));
            }
            accounts.insert(
                name.clone(),
                ServiceAccount {
                    name: name.clone(),
                    appid: a.appid.clone(),
                    token: a.token.as_ref().map(|t| t.expose().to_owned()),
                    crypt,
                    mode: a.mode,
                    handlers,
                },
            );
        }
        if let Some(unknown) = extra.keys().next() {
            return Err(Error::Config(format!(
                "handlers registered for unknown account {unknown:?}"
            )));
        }
        Ok(Service {
            accounts,
            cfg: config.service.clone(),
            webhook_stats,
        })
    }
}

query_struct! {
    /// The query WeChat puts on `/wx/service`.
    pub struct PushQuery { signature, timestamp, nonce, echostr, encrypt_type, msg_signature }
}

type Q = PushQuery;

fn refuse(status: StatusCode, account: &str, reason: &str) -> Response {
    // A reason can quote the caller's input (an XML error): bounded in the log line.
    let logged = crate::util::truncate_chars(reason, 200);
    tracing::warn!(
        account,
        status = status.as_u16(),
        reason = logged,
        "push refused"
    );
    metrics::counter!("wxgate_push_refused_total", "account" => account.to_owned(), "status" => status.as_str().to_owned())
        .increment(1);
    envelope::error(status, reason)
}

/// The named parameters, or a refusal naming the first one missing.
fn required<'a, const N: usize>(
    values: [(&'static str, &'a Option<String>); N],
) -> std::result::Result<[&'a str; N], String> {
    let mut out = [""; N];
    for (i, (name, v)) in values.into_iter().enumerate() {
        out[i] = v
            .as_deref()
            .ok_or_else(|| format!("missing query parameter {name}"))?;
    }
    Ok(out)
}

/// `GET /wx/service`, `GET /wx/{account}/service`
pub async fn verify(State(svc): State<Arc<Service>>, Account(name): Account, q: Q) -> Response {
    verify_for(&svc, &name, q)
}

/// `GET /wx/{account}/service`: URL verification. `signature` over token, timestamp and
/// nonce; the answer is `echostr` exactly as received.
pub fn verify_for(svc: &Service, name: &str, q: Q) -> Response {
    let Some(acc) = svc.accounts.get(name) else {
        return unknown_account(name);
    };
    let Some(token) = &acc.token else {
        return refuse(
            StatusCode::NOT_FOUND,
            name,
            "this account has no push token configured",
        );
    };
    let [signature, timestamp, nonce, echostr] = match required([
        ("signature", &q.signature),
        ("timestamp", &q.timestamp),
        ("nonce", &q.nonce),
        ("echostr", &q.echostr),
    ]) {
        Ok(p) => p,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, name, &e),
    };
    if !verify_server_signature(token, timestamp, nonce, signature) {
        return refuse(StatusCode::FORBIDDEN, name, "signature mismatch");
    }
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        echostr.to_owned(),
    )
        .into_response()
}

/// `POST /wx/service`, `POST /wx/{account}/service`
pub async fn push(
    State(ctx): State<Ctx>,
    State(svc): State<Arc<Service>>,
    Account(name): Account,
    q: Q,
    body: Body,
) -> Response {
    push_for(&ctx, &svc, &name, q, body).await
}

/// A refusal's status for a protocol error: forged or foreign is 403, malformed 400.
fn proto_status(e: &ProtoError) -> StatusCode {
    match e {
        ProtoError::SignatureMismatch | ProtoError::AppIdMismatch { .. } => StatusCode::FORBIDDEN,
        ProtoError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// `POST /wx/{account}/service`: a pushed message or event.
pub async fn push_for(ctx: &Ctx, svc: &Service, name: &str, q: Q, body: Body) -> Response {
    let Some(acc) = svc.accounts.get(name) else {
        return unknown_account(name);
    };
    let Some(token) = &acc.token else {
        return refuse(
            StatusCode::NOT_FOUND,
            name,
            "this account has no push token configured",
        );
    };
    let cfg = &svc.cfg;
    let [timestamp, nonce] = match required([("timestamp", &q.timestamp), ("nonce", &q.nonce)]) {
        Ok(p) => p,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, name, &e),
    };
    // 1. The window, from the query alone, before the body is read.
    let Ok(ts) = timestamp.parse::<i64>() else {
        return refuse(StatusCode::BAD_REQUEST, name, "timestamp is not a number");
    };
    let now = ctx.now();
    if now.abs_diff(ts) > cfg.replay_window.unsigned_abs() {
        let reason = format!(
            "timestamp {ts} is outside the {} s window",
            cfg.replay_window
        );
        return refuse(StatusCode::FORBIDDEN, name, &reason);
    }
    // 2. What the account's mode allows, from the query alone.
    let encrypted = match q.encrypt_type.as_deref() {
        None | Some("raw") => false,
        Some("aes") => true,
        Some(_) => return refuse(StatusCode::BAD_REQUEST, name, "encrypt_type is aes or raw"),
    };
    if encrypted != acc.mode.is_encrypted() {
        let reason = if encrypted {
            "encrypted push refused: the account is in plaintext mode"
        } else {
            "plaintext push refused: the account is in safe or compatible mode, which sends encrypt_type=aes and msg_signature"
        };
        return refuse(StatusCode::FORBIDDEN, name, reason);
    }
    // 3. The URL signature: required in plaintext mode, checked when present otherwise.
    match q.signature.as_deref() {
        Some(sig) if !verify_server_signature(token, timestamp, nonce, sig) => {
            return refuse(StatusCode::FORBIDDEN, name, "signature mismatch")
        }
        None if !encrypted => {
            let missing = "missing query parameter signature";
            return refuse(StatusCode::BAD_REQUEST, name, missing);
        }
        _ => {}
    }
    let body = match to_bytes(body, cfg.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => {
            let status = crate::web::body::body_error_status(&e);
            let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!("body over {} bytes", cfg.max_body_bytes)
            } else {
                "the body did not arrive in time".to_owned()
            };
            return refuse(status, name, &reason);
        }
    };
    let Ok(body) = std::str::from_utf8(&body) else {
        return refuse(StatusCode::BAD_REQUEST, name, "body is not UTF-8");
    };
    // 4. Encrypted: msg_signature over Encrypt, then decryption and the appid. Only the
    //    decrypted message is used: a compatible push's plaintext copy is unsigned.
    let plain = if encrypted {
        let Some(crypt) = &acc.crypt else {
            return refuse(
                StatusCode::NOT_FOUND,
                name,
                "encrypted push, but no encoding_aes_key is configured",
            );
        };
        let Some(msg_signature) = q.msg_signature.as_deref() else {
            let missing = "missing query parameter msg_signature";
            return refuse(StatusCode::BAD_REQUEST, name, missing);
        };
        let env = match Envelope::parse(body, cfg.max_body_bytes) {
            Ok(e) => e,
            Err(e) => return refuse(proto_status(&e), name, &e.to_string()),
        };
        match crypt.open(msg_signature, timestamp, nonce, &env.encrypt) {
            Ok(plain) => plain,
            Err(e) => return refuse(proto_status(&e), name, &e.to_string()),
        }
    } else {
        body.to_owned()
    };
    let message = match Message::parse(&plain, cfg.max_body_bytes) {
        Ok(m) => m,
        Err(e) => return refuse(proto_status(&e), name, &e.to_string()),
    };
    let message = MessageContext {
        account: name.to_owned(),
        appid: acc.appid.clone(),
        message,
        xml: plain,
    };
    // Boxed: inline, its 800 bytes made this future 1.6 KiB, past the allocator's
    // per-thread cache (1 KiB), and every push paid for a slow allocation.
    let answer = match Box::pin(answer_once(ctx, svc, acc, &message, ts, nonce, now)).await {
        Ok(a) => a,
        Err((status, reason)) => return refuse(status, name, &reason),
    };
    respond(ctx, acc, &message, &answer, encrypted)
}

/// The plaintext answer (reply XML or `success`) for this push, whose window and
/// signatures were checked: the cached one for a retry, else the handlers' after the
/// nonce check.
async fn answer_once(
    ctx: &Ctx,
    svc: &Service,
    acc: &ServiceAccount,
    pushed: &MessageContext,
    ts: i64,
    nonce: &str,
    now: i64,
) -> std::result::Result<Answer, (StatusCode, String)> {
    let store = &ctx.store;
    let cfg = &svc.cfg;
    // Keyed on a digest of the whole (decrypted) message: a cached answer goes only to
    // the same message, never to another push that names its MsgId.
    let dedup_key = keys::dedup(&acc.name, &pushed.message.dedup_key());
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
    // 2. Claim the message; a concurrent duplicate waits for the claimant's answer.
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
    // 3. A message seen for the first time under a (timestamp, nonce) already used is a
    //    replay: another body under a captured signature, or the same push after its
    //    dedup answer expired. Genuine retries never get here (they hit the dedup
    //    answer, kept longer than WeChat retries). Every mode: a captured safe-mode push
    //    replayed after its dedup answer expired is refused here too. The nonce is
    //    remembered until its timestamp leaves the window.
    let nonce_key = keys::nonce(&acc.name, &ts.to_string(), nonce);
    match store
        .set_if_absent(&nonce_key, "1", window_left(cfg, ts, now))
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            let _ = store.compare_and_delete(&dedup_key, PENDING).await;
            return Err((
                StatusCode::FORBIDDEN,
                "replay: timestamp and nonce already used".into(),
            ));
        }
        Err(e) => tracing::warn!(account = %acc.name, error = %e, "nonce memory unavailable"),
    }
    let answer = run_handlers(acc, pushed, deadline, now).await;
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

/// The handlers in order, under the deadline; `None` (success) when none replies in time.
async fn run_handlers(
    acc: &ServiceAccount,
    ctx: &MessageContext,
    deadline: tokio::time::Instant,
    now: i64,
) -> Answer {
    let chain = async {
        for h in &acc.handlers {
            match h.handle(ctx).await {
                Ok(Handled::Pass) => continue,
                Ok(Handled::NoReply) => return None,
                Ok(Handled::Reply(r)) => return Some(r),
                Err(e) => {
                    tracing::warn!(account = %acc.name, handler = h.name(), error = %e, "handler failed");
                    continue;
                }
            }
        }
        None
    };
    let reply = match tokio::time::timeout_at(deadline, chain).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!(account = %acc.name, "no reply within the deadline; answering success");
            None
        }
    };
    match reply.map(|r| r.validate().map(|()| r)) {
        Some(Ok(r)) => Some((now, r)),
        Some(Err(e)) => {
            tracing::warn!(account = %acc.name, error = %e, "reply refused");
            None
        }
        None => None,
    }
}

fn respond(
    ctx: &Ctx,
    acc: &ServiceAccount,
    pushed: &MessageContext,
    answer: &Answer,
    encrypt: bool,
) -> Response {
    let m = &pushed.message;
    let xml = match answer
        .as_ref()
        .map(|(t, r)| r.to_xml(&m.from_user_name, &m.to_user_name, *t))
    {
        Some(Ok(xml)) => xml,
        _ => {
            return (
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                SUCCESS,
            )
                .into_response()
        }
    };
    let body = match (&acc.crypt, encrypt) {
        (Some(crypt), true) => {
            let timestamp = ctx.now().to_string();
            let nonce = wxgate_proto::jssdk::nonce_str(16);
            encrypted_reply_xml(&crypt.seal(&xml, &timestamp, &nonce))
        }
        _ => xml,
    };
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
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
