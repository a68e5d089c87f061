//! `POST /wx/pay/{name}/notify`: a WeChat Pay notification, verified (signature,
//! timestamp, serial; probes refused), opened with the APIv3 key, then forwarded to the
//! business's webhook exactly once for the whole fleet: the first instance to claim the
//! notification's business key (`out_trade_no` or `out_refund_no` with the event type)
//! delivers it; a retry, or the same event under another id, finds it done.
//!
//! WeChat Pay retries until it gets a 2xx, for 24 hours: wxgate answers 204 only once
//! the webhook accepted the notification (or it was already delivered), and a 5xx with
//! `{"code":"FAIL","message":...}` otherwise, so WeChat Pay tries again. Bad input gets a
//! 4xx with the same shape, a log line naming the reason, and no webhook call.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use wxgate_proto::pay::{Notification, Signed, SCHEME};

use super::{Merchant, PayService, Seen};
use crate::store::keys;
use crate::web::Ctx;

/// How long a claim holds while its delivery runs: longer than the webhook may take.
const CLAIM_LEASE: Duration = Duration::from_secs(30);
/// How long a delivered notification is remembered: past WeChat Pay's 24 hours of
/// retries, and a day more for the resends it may make after a success.
const DONE_TTL: Duration = Duration::from_secs(72 * 3600);
const DONE: &str = "done";

/// The event types counted by name; any other is `other` (labels stay bounded).
const EVENT_TYPES: &[&str] = &[
    "TRANSACTION.SUCCESS",
    "REFUND.SUCCESS",
    "REFUND.ABNORMAL",
    "REFUND.CLOSED",
];

fn event_label(event_type: &str) -> &'static str {
    EVENT_TYPES
        .iter()
        .find(|e| **e == event_type)
        .copied()
        .unwrap_or("other")
}

/// WeChat Pay's answer shape for a failure.
fn fail(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "code": "FAIL", "message": message }))).into_response()
}

/// A refusal of bad input: logged (sampled: strangers can send these) with its reason.
fn refuse(pay: &str, status: StatusCode, reason: &str) -> Response {
    crate::sampled_warn!(
        "pay_notification_refused",
        pay,
        reason,
        "payment notification refused"
    );
    metrics::counter!("wxgate_pay_notifications_total", "pay" => pay.to_owned(), "event_type" => "unknown", "outcome" => "refused").increment(1);
    fail(status, reason)
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `POST /wx/pay/{name}/notify`
pub async fn notify(
    State(ctx): State<Ctx>,
    State(pay): State<Arc<PayService>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(m) = pay.merchant(&name) else {
        return fail(StatusCode::NOT_FOUND, "no such merchant");
    };
    let name = m.name.as_str();
    let body = match to_bytes(body, m.cfg.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => return refuse(name, StatusCode::PAYLOAD_TOO_LARGE, "body over the limit"),
    };
    let now = ctx.now();
    let [Some(timestamp), Some(nonce), Some(signature), Some(serial)] = [
        header(&headers, "wechatpay-timestamp"),
        header(&headers, "wechatpay-nonce"),
        header(&headers, "wechatpay-signature"),
        header(&headers, "wechatpay-serial"),
    ] else {
        return refuse(name, StatusCode::BAD_REQUEST, "missing Wechatpay-* headers");
    };
    if header(&headers, "wechatpay-signature-type").is_some_and(|t| t != SCHEME) {
        return refuse(
            name,
            StatusCode::BAD_REQUEST,
            "unknown Wechatpay-Signature-Type",
        );
    }
    let signed = Signed {
        timestamp,
        nonce,
        signature,
        serial,
    };
    let key = if signature.starts_with(wxgate_proto::pay::SIGNTEST_PREFIX) {
        None
    } else {
        m.key_for(serial, now).await
    };
    if let Err(e) = signed.verify(&body, now, |_| key.as_ref()) {
        return refuse(name, StatusCode::UNAUTHORIZED, &e.to_string());
    }
    let notification: Notification = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(_) => return refuse(name, StatusCode::BAD_REQUEST, "not a notification's JSON"),
    };
    let plaintext = match notification.resource.decrypt(m.cfg.apiv3_key.expose()) {
        Ok(p) => p,
        Err(e) => return refuse(name, StatusCode::BAD_REQUEST, &format!("resource: {e}")),
    };
    let Ok(resource) = serde_json::from_str::<Value>(&plaintext) else {
        return refuse(name, StatusCode::BAD_REQUEST, "the resource is not JSON");
    };
    let outcome = deliver_once(&ctx, m, &notification, &resource, &body, now).await;
    let label = match &outcome {
        Ok(Delivery::Delivered) => "delivered",
        Ok(Delivery::Duplicate) => "duplicate",
        Err(Failure::Busy) => "busy",
        Err(Failure::Webhook(_)) => "webhook_failed",
        Err(Failure::Store) => "store_down",
    };
    metrics::counter!("wxgate_pay_notifications_total", "pay" => name.to_owned(), "event_type" => event_label(&notification.event_type), "outcome" => label).increment(1);
    pay.remember(Seen {
        pay: name.to_owned(),
        id: notification.id.chars().take(64).collect(),
        event_type: event_label(&notification.event_type).to_owned(),
        outcome: label,
        at: now,
    });
    match outcome {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(Failure::Busy) => fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "being delivered by another instance; try again",
        ),
        Err(Failure::Store) => fail(StatusCode::SERVICE_UNAVAILABLE, "store unavailable"),
        Err(Failure::Webhook(why)) => {
            tracing::warn!(pay = name, id = %notification.id, reason = %why, "payment notification not accepted by the webhook; WeChat Pay will retry");
            fail(StatusCode::INTERNAL_SERVER_ERROR, "not delivered yet")
        }
    }
}

enum Delivery {
    Delivered,
    Duplicate,
}

enum Failure {
    /// Another instance holds the claim and has not finished.
    Busy,
    Webhook(String),
    Store,
}

/// The business key: one payment or refund, whatever notification id carries it.
fn business_key(n: &Notification, resource: &Value) -> String {
    let field = |k: &str| {
        resource
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    match field("out_refund_no").or_else(|| field("out_trade_no")) {
        Some(no) => format!("{}:{no}", n.event_type),
        None => format!("id:{}", n.id),
    }
}

async fn deliver_once(
    ctx: &Ctx,
    m: &Merchant,
    n: &Notification,
    resource: &Value,
    raw: &Bytes,
    now: i64,
) -> Result<Delivery, Failure> {
    let store = &ctx.store;
    let by_id = keys::pay_notification(&m.name, &n.id);
    let by_business = keys::pay_business(&m.name, &business_key(n, resource));
    let done = |v: Option<String>| v.as_deref() == Some(DONE);
    if done(store.get(&by_id).await.map_err(|_| Failure::Store)?) {
        return Ok(Delivery::Duplicate);
    }
    let claim = format!("pending:{}", ctx.credentials.owner());
    let mut waited = 0;
    loop {
        if store
            .set_if_absent(&by_business, &claim, CLAIM_LEASE)
            .await
            .map_err(|_| Failure::Store)?
        {
            break;
        }
        let held = store.get(&by_business).await.map_err(|_| Failure::Store)?;
        if done(held) {
            let _ = store.set(&by_id, DONE, Some(DONE_TTL)).await;
            return Ok(Delivery::Duplicate);
        }
        // Another instance is delivering this payment now: wait a little for it.
        if waited >= 20 {
            return Err(Failure::Busy);
        }
        waited += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match forward(m, n, resource, raw, now).await {
        Ok(()) => {
            let _ = store.set(&by_business, DONE, Some(DONE_TTL)).await;
            let _ = store.set(&by_id, DONE, Some(DONE_TTL)).await;
            Ok(Delivery::Delivered)
        }
        Err(why) => {
            let _ = store.compare_and_delete(&by_business, &claim).await;
            Err(Failure::Webhook(why))
        }
    }
}

/// One call to the webhook: wxgate's JSON, HMAC-signed; or, in drop-in mode, WeChat
/// Pay's body re-signed with wxgate's key. A 2xx is acceptance.
async fn forward(
    m: &Merchant,
    n: &Notification,
    resource: &Value,
    raw: &Bytes,
    now: i64,
) -> Result<(), String> {
    let hook = &m.cfg.webhook;
    let req = match &m.forward {
        Some((key, key_id)) => {
            let nonce = wxgate_proto::jssdk::nonce_str(32);
            let ts = now.to_string();
            let signature = key.sign(&wxgate_proto::pay::notification::signed_message(
                &ts, &nonce, raw,
            ));
            m.http
                .post(&hook.url)
                .header("Content-Type", "application/json")
                .header("Wechatpay-Timestamp", ts)
                .header("Wechatpay-Nonce", nonce)
                .header("Wechatpay-Signature", signature)
                .header("Wechatpay-Serial", key_id)
                .header("Wechatpay-Signature-Type", SCHEME)
                .body(raw.clone())
        }
        None => {
            let body = serde_json::to_vec(&json!({
                "pay": m.name,
                "mchid": m.cfg.mchid,
                "id": n.id,
                "event_type": n.event_type,
                "summary": n.summary,
                "create_time": n.create_time,
                "resource_type": n.resource.original_type,
                "resource": resource,
            }))
            .unwrap_or_default();
            let signature =
                crate::util::webhook_signature(hook.secret.expose().as_bytes(), now, &body);
            m.http
                .post(&hook.url)
                .header("Content-Type", "application/json")
                .header(crate::util::WEBHOOK_SIGNATURE_HEADER, signature)
                .header(crate::util::WEBHOOK_TIMESTAMP_HEADER, now.to_string())
                .body(body)
        }
    };
    match req.send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("the webhook answered HTTP {}", r.status().as_u16())),
        Err(e) => Err(e.without_url().to_string()),
    }
}
