//! The business's webhook: the parsed message is POSTed as JSON, signed with
//! HMAC-SHA256; the answer describes a reply (`{"type":"text","content":"..."}`, any
//! reply type) or is 204 for none.
//!
//! WeChat waits 5 s for a passive reply. The webhook call runs in its own task: if it
//! answers within the deadline its reply goes back to WeChat; if it answers later, the
//! dispatcher has already told WeChat `success`, and the reply is delivered through the
//! customer-service message API instead (unless `late_reply = false`). Failures are logged
//! and counted, never lost silently.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::json;
use wxgate_proto::Reply;

use super::customer_service::CustomerService;
use super::handler::{Handled, Handler, MessageContext};
use crate::clock::Clock;
use crate::config::WebhookConfig;
use crate::error::{Error, Result};

pub use crate::util::{
    webhook_signature as sign, WEBHOOK_SIGNATURE_HEADER as SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER as TIMESTAMP_HEADER,
};

/// Outcomes of webhook calls, for metrics and tests.
#[derive(Debug, Default)]
pub struct WebhookStats {
    pub replied: AtomicU64,
    pub no_reply: AtomicU64,
    pub late_delivered: AtomicU64,
    pub failed: AtomicU64,
}

pub struct WebhookHandler {
    account: String,
    config: WebhookConfig,
    http: reqwest::Client,
    clock: Clock,
    /// Where a late reply goes.
    customer_service: Arc<dyn CustomerService>,
    pub stats: Arc<WebhookStats>,
}

enum Outcome {
    Reply(Reply),
    NoReply,
}

impl WebhookHandler {
    pub fn new(
        account: &str,
        config: WebhookConfig,
        clock: Clock,
        customer_service: Arc<dyn CustomerService>,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .map_err(|e| Error::Config(format!("webhook client: {e}")))?;
        Ok(WebhookHandler {
            account: account.to_owned(),
            config,
            http,
            clock,
            customer_service,
            stats: Arc::default(),
        })
    }

    async fn call(
        http: reqwest::Client,
        config: WebhookConfig,
        now: i64,
        body: Vec<u8>,
    ) -> Result<Outcome> {
        let endpoint = "webhook".to_owned();
        let resp = http
            .post(&config.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, now.to_string())
            .header(
                SIGNATURE_HEADER,
                sign(config.secret.expose().as_bytes(), now, &body),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| Error::Transport {
                endpoint: endpoint.clone(),
                reason: e.without_url().to_string(),
            })?;
        let status = resp.status();
        if status == reqwest::StatusCode::NO_CONTENT {
            return Ok(Outcome::NoReply);
        }
        if !status.is_success() {
            return Err(Error::Transport {
                endpoint,
                reason: format!("HTTP {status}"),
            });
        }
        let bytes = read_limited(resp, config.max_answer_bytes)
            .await
            .map_err(|reason| Error::Transport {
                endpoint: endpoint.clone(),
                reason,
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Outcome::NoReply);
        }
        let reply: Reply = serde_json::from_slice(&bytes).map_err(|e| Error::Transport {
            endpoint: endpoint.clone(),
            reason: format!("the answer is not a reply: {e}"),
        })?;
        reply.validate()?;
        Ok(Outcome::Reply(reply))
    }
}

impl Handler for WebhookHandler {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn handle<'a>(&'a self, ctx: &'a MessageContext) -> BoxFuture<'a, Result<Handled>> {
        Box::pin(async move {
            let body = serde_json::to_vec(&json!({
                "account": ctx.account,
                "appid": ctx.appid,
                "format": ctx.format,
                "message": ctx.message,
                "plaintext": ctx.plaintext,
                "xml": xml_of(ctx),
            }))
            .unwrap_or_default();
            let now = self.clock.now();
            let (tx, rx) = tokio::sync::oneshot::channel();
            let (http, config, customer_service, stats) = (
                self.http.clone(),
                self.config.clone(),
                self.customer_service.clone(),
                self.stats.clone(),
            );
            let (account, appid, openid) = (
                self.account.clone(),
                ctx.appid.clone(),
                ctx.message.from_user_name.clone(),
            );
            // The call runs on its own so that it outlives WeChat's deadline if it must,
            // under the push's request id (for the warnings it may log).
            crate::web::request_id::spawn(async move {
                let started = std::time::Instant::now();
                let result = Self::call(http, config.clone(), now, body).await;
                // Every call's time, answered or failed: the console's latency chart.
                metrics::histogram!("wxgate_webhook_duration_seconds")
                    .record(started.elapsed().as_secs_f64());
                let outcome = match &result {
                    Ok(Outcome::Reply(_)) => {
                        stats.replied.fetch_add(1, Ordering::Relaxed);
                        "replied"
                    }
                    Ok(Outcome::NoReply) => {
                        stats.no_reply.fetch_add(1, Ordering::Relaxed);
                        "no_reply"
                    }
                    Err(e) => {
                        tracing::warn!(account = %account, error = %e, "webhook failed");
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                        "failed"
                    }
                };
                metrics::counter!("wxgate_webhook_total", "account" => crate::metrics::account_label(&account), "outcome" => outcome).increment(1);
                let Err(Ok(Outcome::Reply(reply))) = tx.send(result) else {
                    return;
                };
                // The passive reply window is gone: send it as a customer-service message.
                if !config.late_reply {
                    tracing::info!(account = %account, "late webhook reply dropped (late_reply = false)");
                    return;
                }
                match customer_service.send(&appid, &openid, &reply).await {
                    Ok(()) => {
                        stats.late_delivered.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("wxgate_webhook_total", "account" => crate::metrics::account_label(&account), "outcome" => "late_delivered").increment(1);
                        tracing::info!(account = %account, "late webhook reply sent as a customer-service message");
                    }
                    Err(e) => {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("wxgate_webhook_total", "account" => crate::metrics::account_label(&account), "outcome" => "failed").increment(1);
                        tracing::warn!(account = %account, error = %e, "late webhook reply could not be delivered");
                    }
                }
            });
            match rx.await {
                Ok(Ok(Outcome::Reply(r))) => Ok(Handled::Reply(r)),
                Ok(Ok(Outcome::NoReply)) => Ok(Handled::NoReply),
                Ok(Err(e)) => Err(e),
                Err(_) => Ok(Handled::NoReply),
            }
        })
    }
}

/// The answer's body, refused past `limit` bytes (by its length when it says one, else
/// as it arrives): a webhook cannot make wxgate hold megabytes for a reply.
async fn read_limited(
    mut resp: reqwest::Response,
    limit: usize,
) -> std::result::Result<Vec<u8>, String> {
    let too_large = || format!("the answer is over webhook.max_answer_bytes ({limit} bytes)");
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The push as a WeChat XML document: as received for an XML push, the same fields
/// written as XML for a JSON push, so a webhook written for XML pushes reads both.
fn xml_of(ctx: &MessageContext) -> std::borrow::Cow<'_, str> {
    match ctx.format {
        wxgate_proto::PushFormat::Xml => ctx.plaintext.as_str().into(),
        wxgate_proto::PushFormat::Json => {
            wxgate_proto::message::write_fields(&ctx.message.raw).into()
        }
    }
}
