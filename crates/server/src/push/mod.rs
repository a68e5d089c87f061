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

pub mod answer;
pub mod customer_service;
mod dedup;
mod dispatch;
pub mod handler;
pub mod memory;
mod open;
pub mod rules;
pub mod webhook;

use crate::web::envelope::Reject;
pub use answer::Answer;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use wxgate_proto::crypto::MsgCrypt;
use wxgate_proto::reply::{encrypted_reply_xml, SUCCESS};
use wxgate_proto::signature::verify_server_signature;
use wxgate_proto::{MessageMode, PushFormat};

use crate::config::{Config, PushConfig};
use crate::credentials::CentralControl;
use crate::error::{Error, Result};
use crate::web::account::unknown_account;
use crate::web::envelope;
use crate::web::query::query_struct;
use crate::web::{Account, Ctx};
use customer_service::{CustomerService, OwnToken};
use handler::{Chained, Handler, HandlerKind, MessageContext};

/// One account's push settings and handlers, prepared once.
pub struct PushAccount {
    pub name: String,
    pub appid: String,
    token: Option<String>,
    crypt: Option<MsgCrypt>,
    mode: MessageMode,
    /// The configured data format; `None` reads it from each push.
    format: Option<PushFormat>,
    handlers: Vec<Chained>,
    /// Its share of the push memory.
    memory: Arc<memory::AccountMemory>,
    /// Where a reply that cannot be the answer goes (a late one, one to a JSON push).
    customer_service: Arc<dyn CustomerService>,
}

/// Every account's push settings.
pub struct PushService {
    accounts: HashMap<String, PushAccount>,
    cfg: PushConfig,
    /// The ceiling on remembered pushes.
    pub memory: memory::PushMemory,
    /// The webhook handlers' counters, by account.
    pub webhook_stats: BTreeMap<String, Arc<webhook::WebhookStats>>,
}

impl PushService {
    /// Builds each account's handler chain: rules, then `extra` handlers registered by
    /// an embedding program, then the webhook. `component_customer_service` gives each
    /// third-party platform's sender (the authorizer's token), by component name.
    pub fn new(
        config: &Config,
        central: &Arc<CentralControl>,
        mut extra: HashMap<String, Vec<Arc<dyn Handler>>>,
        component_customer_service: impl Fn(&str) -> Arc<dyn CustomerService>,
    ) -> Result<Self> {
        let mut accounts = HashMap::new();
        let mut webhook_stats = BTreeMap::new();
        let mut memory = memory::PushMemory::new(
            config.service.replay_window,
            config.service.max_remembered_pushes,
            config.accounts.len() + config.components.len(),
        );
        for (name, a) in &config.accounts {
            let crypt = match (&a.token, &a.encoding_aes_key) {
                (Some(t), Some(k)) => Some(MsgCrypt::new(t.expose(), k.expose(), &a.appid)?),
                _ => None,
            };
            let customer_service: Arc<dyn CustomerService> = Arc::new(OwnToken {
                central: central.clone(),
                account: name.clone(),
            });
            let handlers = rules_handler(&a.rules)?
                .into_iter()
                .chain(embedded(extra.remove(name)))
                .chain(webhook_handler(
                    name,
                    a.webhook.as_ref(),
                    central,
                    &customer_service,
                    &mut webhook_stats,
                )?)
                .collect();
            accounts.insert(
                name.clone(),
                PushAccount {
                    name: name.clone(),
                    appid: a.appid.clone(),
                    token: a.token.as_ref().map(|t| t.expose().to_owned()),
                    crypt,
                    mode: a.mode,
                    format: a.format,
                    handlers,
                    memory: memory.account(),
                    customer_service,
                },
            );
        }
        // Each third-party platform's authorizers push to one account of its own, sealed
        // with the component's key (the `receiveid` is the component's appid).
        for (name, c) in &config.components {
            let crypt = MsgCrypt::new(
                c.token.expose(),
                c.encoding_aes_key.expose(),
                &c.component_appid,
            )?;
            let account = component_account(name);
            let customer_service = component_customer_service(name);
            // The embedded handlers first here: the release test among them must answer
            // WeChat's test accounts whatever the platform's rules say.
            let handlers = embedded(extra.remove(&account))
                .chain(rules_handler(&c.rules)?)
                .chain(webhook_handler(
                    &account,
                    c.webhook.as_ref(),
                    central,
                    &customer_service,
                    &mut webhook_stats,
                )?)
                .collect();
            accounts.insert(
                account.clone(),
                PushAccount {
                    name: account,
                    appid: c.component_appid.clone(),
                    token: Some(c.token.expose().to_owned()),
                    crypt: Some(crypt),
                    mode: MessageMode::Safe,
                    format: None,
                    handlers,
                    memory: memory.account(),
                    customer_service,
                },
            );
        }
        if let Some(unknown) = extra.keys().next() {
            return Err(Error::Config(format!(
                "handlers registered for unknown account {unknown:?}"
            )));
        }
        Ok(PushService {
            accounts,
            memory,
            cfg: config.service.clone(),
            webhook_stats,
        })
    }
}

/// The configured rules as a handler, if there are any.
fn rules_handler(rules: &[crate::config::RuleConfig]) -> Result<Option<Chained>> {
    if rules.is_empty() {
        return Ok(None);
    }
    Ok(Some(Chained {
        kind: HandlerKind::Rules,
        handler: Arc::new(rules::RulesHandler::new(rules)?),
    }))
}

/// An embedding program's handlers for an account.
fn embedded(handlers: Option<Vec<Arc<dyn Handler>>>) -> impl Iterator<Item = Chained> {
    handlers.into_iter().flatten().map(|handler| Chained {
        kind: HandlerKind::Embedded,
        handler,
    })
}

/// A push account's webhook handler, if one is configured; its counters kept in `stats`.
fn webhook_handler(
    account: &str,
    config: Option<&crate::config::WebhookConfig>,
    central: &CentralControl,
    customer_service: &Arc<dyn CustomerService>,
    stats: &mut BTreeMap<String, Arc<webhook::WebhookStats>>,
) -> Result<Option<Chained>> {
    let Some(w) = config else {
        return Ok(None);
    };
    let hook = webhook::WebhookHandler::new(
        account,
        w.clone(),
        central.clock().clone(),
        customer_service.clone(),
    )?;
    stats.insert(account.to_owned(), hook.stats.clone());
    Ok(Some(Chained {
        kind: HandlerKind::Webhook,
        handler: Arc::new(hook),
    }))
}

query_struct! {
    /// The query WeChat puts on `/wx/service`.
    pub struct PushQuery { signature, timestamp, nonce, echostr, encrypt_type, msg_signature }
}

type Q = PushQuery;

fn refuse(status: StatusCode, account: &str, reason: &str) -> Response {
    // A reason can quote the caller's input (an XML error): bounded in the log line.
    let logged = crate::util::truncate_chars(reason, 200);
    // A full push memory is logged once an episode (`memory`), not once a push.
    let once_an_episode = status == StatusCode::SERVICE_UNAVAILABLE;
    if !once_an_episode {
        crate::sampled_warn!(
            "push_refused",
            account,
            status = status.as_u16(),
            reason = logged,
            "push refused"
        );
    }
    metrics::counter!("wxgate_push_refused_total", "account" => crate::metrics::account_label(account), "status" => status.as_str().to_owned())
        .increment(1);
    envelope::error(status, reason)
}

/// `GET /wx/service`, `GET /wx/{account}/service`
pub async fn verify(State(svc): State<Arc<PushService>>, Account(name): Account, q: Q) -> Response {
    verify_for(&svc, &name, q)
}

/// `GET /wx/{account}/service`: URL verification. `signature` over token, timestamp and
/// nonce; the answer is `echostr` exactly as received.
pub fn verify_for(svc: &PushService, name: &str, q: Q) -> Response {
    let Some(acc) = svc.accounts.get(name) else {
        return unknown_account(name);
    };
    let Some(token) = &acc.token else {
        let none = "this account has no push token configured";
        return refuse(StatusCode::NOT_FOUND, name, none);
    };
    let [signature, timestamp, nonce, echostr] = match open::required([
        ("signature", &q.signature),
        ("timestamp", &q.timestamp),
        ("nonce", &q.nonce),
        ("echostr", &q.echostr),
    ]) {
        Ok(p) => p,
        Err(r) => return refuse(r.status, name, &r.msg),
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
    State(svc): State<Arc<PushService>>,
    Account(name): Account,
    q: Q,
    body: Body,
) -> Response {
    push_for(&ctx, &svc, &name, q, body).await
}

/// The push account of a third-party platform's authorizers.
pub fn component_account(component: &str) -> String {
    format!("component:{component}")
}

/// A push to a third-party platform's message URL for one of its authorizers: the
/// component's push account, the handlers told the authorizer's appid.
pub async fn push_as(
    ctx: &Ctx,
    svc: &PushService,
    account: &str,
    authorizer_appid: &str,
    q: Q,
    body: Body,
) -> Response {
    let Some(acc) = svc.accounts.get(account) else {
        return unknown_account(account);
    };
    match pipeline(ctx, svc, account, acc, &q, body, Some(authorizer_appid)).await {
        Ok(r) => r,
        Err(refusal) => refuse(refusal.status, account, &refusal.msg),
    }
}

/// `POST /wx/{account}/service`: a pushed message or event.
pub async fn push_for(ctx: &Ctx, svc: &PushService, name: &str, q: Q, body: Body) -> Response {
    let Some(acc) = svc.accounts.get(name) else {
        return unknown_account(name);
    };
    match pipeline(ctx, svc, name, acc, &q, body, None).await {
        Ok(r) => r,
        Err(refusal) => refuse(refusal.status, name, &refusal.msg),
    }
}

/// Open, dedup and dispatch, answer. `on_behalf`: the authorizer a component's push is
/// for (the handlers see its appid).
async fn pipeline(
    ctx: &Ctx,
    svc: &PushService,
    name: &str,
    acc: &PushAccount,
    q: &Q,
    body: Body,
    on_behalf: Option<&str>,
) -> Result<Response, Reject> {
    let cfg = &svc.cfg;
    let now = ctx.now();
    let checked = open::check_query(acc, cfg, q, now)?;
    let body = open::read_body(body, cfg.max_body_bytes).await?;
    let mut pushed = open::open(name, acc, cfg, q, &checked, &body)?;
    if let Some(appid) = on_behalf {
        pushed.appid = appid.to_owned();
    }
    // Boxed: inline, its 800 bytes made this future 1.6 KiB, past the allocator's
    // per-thread cache (1 KiB), and every push paid for a slow allocation.
    let answer = Box::pin(dedup::answer_once(ctx, svc, acc, &pushed, &checked, now)).await?;
    Ok(respond(ctx, acc, &pushed, &answer, checked.encrypted))
}

fn respond(
    ctx: &Ctx,
    acc: &PushAccount,
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
