//! WeChat Pay v3 (`[pay.NAME]`) against the sandbox's WeChat Pay: orders through the
//! signing proxy, notifications verified and delivered to the webhook exactly once
//! (retries, replays to any instance of a fleet), every bad input refused with no
//! webhook call, the webhook down then back, and a switch from the platform
//! certificate to the WeChat Pay public key mid-run.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use wxgate_proto::pay::notification::signed_message;
use wxgate_proto::pay::{PrivateKey, Resource};
use wxgate_sandbox::pay as sandbox_pay;

use crate::common::*;

const MCHID: &str = "1900000001";
const APIV3_KEY: &str = "wxgateSandboxApiV3Key00000000001";
const HOOK_SECRET: &str = "pay-hook-secret-0123456789";

/// The business's webhook: what it received, and whether it is down.
#[derive(Default)]
pub struct Hook {
    pub calls: Mutex<Vec<(HeaderMap, Vec<u8>)>>,
    pub down: AtomicBool,
    pub hits: AtomicUsize,
}

impl Hook {
    pub async fn serve(self: &Arc<Self>) -> String {
        let hook = self.clone();
        let app = axum::Router::new().route(
            "/paid",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let hook = hook.clone();
                async move {
                    hook.hits.fetch_add(1, Ordering::SeqCst);
                    if hook.down.load(Ordering::SeqCst) {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    hook.calls.lock().unwrap().push((headers, body.to_vec()));
                    StatusCode::NO_CONTENT
                }
            }),
        );
        format!("{}/paid", serve_stand_in(app).await)
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| serde_json::from_slice(b).unwrap())
            .collect()
    }
}

/// `[pay.shop]` with the sandbox's keys written into `dir`; `more` is added to it.
pub fn pay_section(dir: &TempDir, hook_url: &str, more: &str) -> String {
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let key = write("merchant.key.pem", sandbox_pay::MERCHANT_KEY);
    let cert = write("platform.cert.pem", sandbox_pay::PLATFORM_CERT);
    let public = write("public.pub.pem", sandbox_pay::PUBLIC_KEY_PEM);
    format!(
        r#"
[pay.shop]
mchid = "{MCHID}"
apiv3_key = "{APIV3_KEY}"
private_key_file = "{key}"
merchant_serial = "{}"
platform_certificate_files = ["{cert}"]
wechatpay_public_key_file = "{public}"
wechatpay_public_key_id = "{}"
{more}

[pay.shop.webhook]
url = "{hook_url}"
secret = "{HOOK_SECRET}"
timeout_ms = 2000
"#,
        sandbox_pay::MERCHANT_SERIAL,
        sandbox_pay::PUBLIC_KEY_ID
    )
}

async fn gateway(hook: &Arc<Hook>) -> Harness {
    let url = hook.serve().await;
    let dir = TempDir::new("pay");
    let extra = pay_section(&dir, &url, "");
    Setup::new().tag("pay").dir(dir).extra(&extra).start().await
}

/// Creates an order through wxgate's signing proxy (the sandbox checks the signature;
/// wxgate checks the answer's).
pub async fn order(h: &Harness, base: &str, out_trade_no: &str) -> Value {
    let notify = format!("{base}/wx/pay/shop/notify");
    let r = h
        .http
        .post(format!("{base}/api/v1/pay/shop/v3/pay/transactions/jsapi"))
        .bearer_auth(API_KEY)
        .json(&json!({
            "appid": OA, "mchid": MCHID, "description": "sandbox tea", "out_trade_no": out_trade_no,
            "notify_url": notify, "amount": { "total": 100, "currency": "CNY" },
            "payer": { "openid": "oSandboxUser000000000000001" },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub async fn sandbox_post(h: &Harness, path: &str, body: Value) -> Value {
    h.http
        .post(format!("{}{path}", h.sb.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The sandbox's record of its notifications of `event_type`.
pub async fn sent(h: &Harness, event_type: &str) -> Vec<Value> {
    let v: Value = h
        .http
        .get(format!(
            "{}/admin/pay/notifications?event_type={event_type}",
            h.sb.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["notifications"].as_array().unwrap().clone()
}

pub async fn until(what: &str, mut ok: impl FnMut() -> bool) {
    for _ in 0..100 {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never: {what}");
}

/// Replays a notification the sandbox sent (its body and last headers) to `url`.
pub async fn replay(http: &reqwest::Client, url: &str, n: &Value) -> u16 {
    let mut req = http.post(url).body(n["body"].as_str().unwrap().to_owned());
    for (k, v) in n["headers"].as_object().unwrap() {
        req = req.header(k, v.as_str().unwrap());
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_payment_and_a_refund_reach_the_webhook_once_each() {
    let hook = Arc::new(Hook::default());
    let h = gateway(&hook).await;
    let base = h.gw.url();
    let answer = order(&h, &base, "T-1001").await;
    assert!(
        answer["prepay_id"].as_str().unwrap().starts_with("wx"),
        "{answer}"
    );
    sandbox_post(
        &h,
        "/admin/pay/pay",
        json!({ "mchid": MCHID, "out_trade_no": "T-1001" }),
    )
    .await;
    until("the payment is delivered", || {
        hook.calls.lock().unwrap().len() == 1
    })
    .await;
    let (headers, body) = hook.calls.lock().unwrap()[0].clone();
    let got: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(got["event_type"], "TRANSACTION.SUCCESS");
    assert_eq!(got["pay"], "shop");
    assert_eq!(got["resource"]["out_trade_no"], "T-1001");
    assert_eq!(got["resource"]["trade_state"], "SUCCESS");
    assert_eq!(got["resource"]["amount"]["total"], 100);
    // The webhook can trust it: HMAC-SHA256 over "{timestamp}.{body}".
    let ts: i64 = headers["x-wxgate-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        headers["x-wxgate-signature"].to_str().unwrap(),
        wxgate::util::webhook_signature(HOOK_SECRET.as_bytes(), ts, &body)
    );
    let n = sent(&h, "TRANSACTION.SUCCESS").await;
    assert_eq!(n.len(), 1);
    until_delivered(&h, "TRANSACTION.SUCCESS").await;
    // WeChat Pay resends: 15 more times, the same notification: 204 each, no second call.
    for _ in 0..15 {
        assert_eq!(
            replay(&h.http, &format!("{base}/wx/pay/shop/notify"), &n[0]).await,
            204
        );
    }
    assert_eq!(hook.calls.lock().unwrap().len(), 1);

    // A refund through the proxy, and its notification.
    let r = h
        .http
        .post(format!("{base}/api/v1/pay/shop/v3/refund/domestic/refunds"))
        .bearer_auth(API_KEY)
        .json(&json!({ "out_trade_no": "T-1001", "out_refund_no": "R-1001", "amount": { "refund": 40, "total": 100, "currency": "CNY" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "PROCESSING");
    until("the refund is delivered", || {
        hook.calls.lock().unwrap().len() == 2
    })
    .await;
    let refund = &hook.bodies()[1];
    assert_eq!(refund["event_type"], "REFUND.SUCCESS");
    assert_eq!(refund["resource"]["out_refund_no"], "R-1001");
    // The status route: keys with expiry, the last notifications (ids, no personal data).
    let (code, status) = api_get(&h.http, format!("{base}/api/v1/pay/shop/status")).await;
    assert_eq!(code, 200);
    assert_eq!(status["keys"].as_array().unwrap().len(), 2, "{status}");
    let recent = status["recent"].as_array().unwrap();
    assert!(
        recent
            .iter()
            .filter(|r| r["outcome"] == "duplicate")
            .count()
            >= 15,
        "{status}"
    );
    assert!(!status.to_string().contains("oSandboxUser"), "{status}");
    let metrics = metrics_text(&base).await;
    // Counted by event type and outcome (other tests of this binary count too).
    for outcome in ["delivered", "duplicate"] {
        let line = format!(
            r#"wxgate_pay_notifications_total{{pay="shop",event_type="TRANSACTION.SUCCESS",outcome="{outcome}"}}"#
        );
        assert!(metrics.contains(&line), "{line}\n{metrics}");
    }
}

async fn until_delivered(h: &Harness, event_type: &str) {
    for _ in 0..50 {
        if sent(h, event_type)
            .await
            .iter()
            .all(|n| n["delivered"] == true)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the sandbox never saw {event_type} accepted");
}

/// A notification signed with the sandbox's platform key as `serial`, for bad inputs
/// that need a valid signature over a bad body.
fn signed_by_platform(body: &str, ts: i64) -> Vec<(&'static str, String)> {
    let key = PrivateKey::from_pem(sandbox_pay::PLATFORM_KEY).unwrap();
    let nonce = "n0nce0n0nce0".to_string();
    let sig = key.sign(&signed_message(&ts.to_string(), &nonce, body.as_bytes()));
    vec![
        ("Wechatpay-Timestamp", ts.to_string()),
        ("Wechatpay-Nonce", nonce),
        ("Wechatpay-Signature", sig),
        ("Wechatpay-Serial", sandbox_pay::PLATFORM_SERIAL.to_string()),
        (
            "Wechatpay-Signature-Type",
            "WECHATPAY2-SHA256-RSA2048".to_string(),
        ),
    ]
}

fn notification(resource: Resource) -> String {
    json!({
        "id": "EV-BAD-0001", "create_time": "2026-12-07T13:00:00+08:00", "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功", "resource": resource,
    })
    .to_string()
}

#[tokio::test]
async fn every_bad_notification_is_refused_with_no_webhook_call() {
    let hook = Arc::new(Hook::default());
    let h = gateway(&hook).await;
    let url = format!("{}/wx/pay/shop/notify", h.gw.url());
    let now = now();
    let good = Resource::encrypt(
        APIV3_KEY,
        "abcdefghijkl",
        "transaction",
        "transaction",
        r#"{"out_trade_no":"B-1"}"#,
    )
    .unwrap();
    let body = notification(good.clone());
    let post = |headers: Vec<(&'static str, String)>, body: String| {
        let http = h.http.clone();
        let url = url.clone();
        async move {
            let mut req = http.post(&url).body(body);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            (status, v)
        }
    };
    type Headers = Vec<(&'static str, String)>;
    let mut cases: Vec<(&str, Headers, String, u16)> = Vec::new();
    // Tampered: signed, then changed.
    cases.push((
        "tampered body",
        signed_by_platform(&body, now),
        body.replace("EV-BAD-0001", "EV-BAD-0002"),
        401,
    ));
    // Wrong and unknown serial.
    let mut wrong = signed_by_platform(&body, now);
    wrong[3].1 = sandbox_pay::PUBLIC_KEY_ID.into();
    cases.push((
        "the public key's id over a certificate's signature",
        wrong,
        body.clone(),
        401,
    ));
    let mut unknown = signed_by_platform(&body, now);
    unknown[3].1 = "0123456789ABCDEF".into();
    cases.push(("unknown serial", unknown, body.clone(), 401));
    // Skewed either way, 300 s or more.
    cases.push((
        "late",
        signed_by_platform(&body, now - 300),
        body.clone(),
        401,
    ));
    cases.push((
        "early",
        signed_by_platform(&body, now + 400),
        body.clone(),
        401,
    ));
    // A signature probe.
    let mut probe = signed_by_platform(&body, now);
    probe[2].1 = format!("WECHATPAY/SIGNTEST/{}", probe[2].1);
    cases.push(("SIGNTEST", probe, body.clone(), 401));
    // Missing headers.
    cases.push(("no headers", Vec::new(), body.clone(), 400));
    // A bad GCM tag and the wrong associated_data, validly signed.
    let mut tag = good.clone();
    tag.ciphertext = {
        let mut raw = wxgate_proto::b64::decode(tag.ciphertext.as_bytes()).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        wxgate_proto::b64::encode(&raw)
    };
    let bad_tag = notification(tag);
    cases.push((
        "bad GCM tag",
        signed_by_platform(&bad_tag, now),
        bad_tag,
        400,
    ));
    let mut ad = good.clone();
    ad.associated_data = "refund".into();
    let bad_ad = notification(ad);
    cases.push((
        "wrong associated_data",
        signed_by_platform(&bad_ad, now),
        bad_ad,
        400,
    ));
    // Not JSON, validly signed.
    cases.push((
        "not JSON",
        signed_by_platform("<xml/>", now),
        "<xml/>".into(),
        400,
    ));
    // Oversize.
    let big = "x".repeat(70 << 10);
    cases.push(("oversize", signed_by_platform(&big, now), big, 413));
    for (what, headers, body, want) in cases {
        let (status, v) = post(headers, body).await;
        assert_eq!(status, want, "{what}: {v}");
        assert_eq!(v["code"], "FAIL", "{what}: {v}");
    }
    // The probe as the sandbox sends it, too.
    sandbox_post(
        &h,
        "/admin/pay/signtest",
        json!({ "mchid": MCHID, "url": url }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let probes = sent(&h, "TRANSACTION.SUCCESS").await;
    assert_eq!(probes.len(), 1);
    assert_eq!(
        probes[0]["delivered"], false,
        "a probe must fail: {probes:?}"
    );
    assert_eq!(
        hook.hits.load(Ordering::SeqCst),
        0,
        "no bad input reached the webhook"
    );
    // A good one still passes.
    let (status, _) = post(signed_by_platform(&body, now), body.clone()).await;
    assert_eq!(status, 204);
    assert_eq!(hook.calls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_webhook_down_means_a_5xx_then_delivery_once_it_is_back() {
    let hook = Arc::new(Hook::default());
    let h = gateway(&hook).await;
    let base = h.gw.url();
    hook.down.store(true, Ordering::SeqCst);
    order(&h, &base, "T-2001").await;
    sandbox_post(
        &h,
        "/admin/pay/pay",
        json!({ "mchid": MCHID, "out_trade_no": "T-2001" }),
    )
    .await;
    until("the first try fails", || {
        hook.hits.load(Ordering::SeqCst) >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let n = sent(&h, "TRANSACTION.SUCCESS").await;
    assert_eq!(
        (n[0]["attempts"].as_u64(), n[0]["delivered"].as_bool()),
        (Some(1), Some(false))
    );
    // WeChat Pay answers FAIL with a 5xx, so it retries; 15 s later, by its schedule.
    let status = replay(&h.http, &format!("{base}/wx/pay/shop/notify"), &n[0]).await;
    assert_eq!(status, 500);
    hook.down.store(false, Ordering::SeqCst);
    h.advance(15);
    until("the retry is delivered", || {
        hook.calls.lock().unwrap().len() == 1
    })
    .await;
    until_delivered(&h, "TRANSACTION.SUCCESS").await;
    h.advance(30);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hook.calls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_switch_to_the_public_key_mid_run_loses_and_doubles_nothing() {
    let hook = Arc::new(Hook::default());
    let h = gateway(&hook).await;
    let base = h.gw.url();
    for (i, signer) in ["certificate", "public_key", "certificate", "public_key"]
        .iter()
        .enumerate()
    {
        sandbox_post(
            &h,
            "/admin/pay/switch",
            json!({ "mchid": MCHID, "signer": signer }),
        )
        .await;
        let no = format!("T-30{i}");
        order(&h, &base, &no).await;
        sandbox_post(
            &h,
            "/admin/pay/pay",
            json!({ "mchid": MCHID, "out_trade_no": no }),
        )
        .await;
        until("delivered", || hook.calls.lock().unwrap().len() == i + 1).await;
    }
    let n = sent(&h, "TRANSACTION.SUCCESS").await;
    let serials: Vec<_> = n
        .iter()
        .map(|n| {
            n["headers"]["Wechatpay-Serial"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(serials[1], sandbox_pay::PUBLIC_KEY_ID);
    assert_eq!(serials[0], sandbox_pay::PLATFORM_SERIAL);
    // Every notification once, whichever key signed it, replays included.
    for one in &n {
        assert_eq!(
            replay(&h.http, &format!("{base}/wx/pay/shop/notify"), one).await,
            204
        );
    }
    let got: Vec<_> = hook
        .bodies()
        .iter()
        .map(|b| b["resource"]["out_trade_no"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, ["T-300", "T-301", "T-302", "T-303"]);
}

#[tokio::test]
async fn the_signing_proxy_is_for_holders_of_a_key_only() {
    let hook = Arc::new(Hook::default());
    let h = gateway(&hook).await;
    let base = h.gw.url();
    let url = format!("{base}/api/v1/pay/shop/v3/pay/transactions/out-trade-no/none?mchid={MCHID}");
    assert_eq!(h.http.get(&url).send().await.unwrap().status(), 401);
    let limited = h
        .http
        .get(&url)
        .bearer_auth("mini-only-key-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 403);
    // WeChat Pay's own error passes through (signed answers only on success).
    let r = h.http.get(&url).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "ORDER_NOT_EXIST");
    for bad in [
        "/api/v1/pay/shop/v3/../secret",
        "/api/v1/pay/nope/v3/certificates",
    ] {
        let r = h
            .http
            .get(format!("{base}{bad}"))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        assert!(
            matches!(r.status().as_u16(), 400 | 404),
            "{bad}: {}",
            r.status()
        );
    }
}

/// A fleet of three on one Redis: the notification WeChat Pay delivers to one instance,
/// and 15 replays of it sent to random instances at once, reach the webhook once.
#[tokio::test]
async fn a_fleet_of_three_delivers_each_payment_once() {
    let redis = RedisServer::start();
    let hook = Arc::new(Hook::default());
    let url = hook.serve().await;
    let start = |sandbox: Option<String>| {
        let dir = TempDir::new("pay-fleet");
        let extra = pay_section(&dir, &url, "");
        let mut setup = Setup::new()
            .tag("pay-fleet")
            .dir(dir)
            .store(&redis_store(&redis.url()))
            .extra(&extra);
        if let Some(base) = sandbox {
            setup = setup.upstream(&base);
        }
        setup.start()
    };
    let h1 = start(None).await;
    let h2 = start(Some(h1.sb.base_url())).await;
    let h3 = start(Some(h1.sb.base_url())).await;
    let fleet = [h1.gw.url(), h2.gw.url(), h3.gw.url()];
    for (i, no) in ["F-1", "F-2"].into_iter().enumerate() {
        order(&h1, &fleet[i], no).await;
        sandbox_post(
            &h1,
            "/admin/pay/pay",
            json!({ "mchid": MCHID, "out_trade_no": no }),
        )
        .await;
        // The replays go out while WeChat Pay's own delivery may still be running.
        let n = loop {
            let all = sent(&h1, "TRANSACTION.SUCCESS").await;
            match all.get(i) {
                // Its headers are there once WeChat Pay's first try was made.
                Some(n) if n["headers"].as_object().is_some_and(|h| !h.is_empty()) => {
                    break n.clone()
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        let replays = (0..15).map(|k| {
            let http = h1.http.clone();
            let target = format!("{}/wx/pay/shop/notify", fleet[(k * 7 + i) % 3]);
            let n = n.clone();
            async move { replay(&http, &target, &n).await }
        });
        let statuses = futures_util::future::join_all(replays).await;
        assert!(
            statuses.iter().all(|s| *s == 204 || *s == 503),
            "{statuses:?}"
        );
        until("delivered", || hook.calls.lock().unwrap().len() == i + 1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        for base in &fleet {
            assert_eq!(
                replay(&h1.http, &format!("{base}/wx/pay/shop/notify"), &n).await,
                204
            );
        }
    }
    // A refund of F-1 through the proxy of another instance: once as well.
    let r = h1
        .http
        .post(format!("{}/api/v1/pay/shop/v3/refund/domestic/refunds", fleet[2]))
        .bearer_auth(API_KEY)
        .json(&json!({ "out_trade_no": "F-1", "out_refund_no": "RF-1", "amount": { "refund": 100, "total": 100, "currency": "CNY" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    until("the refund is delivered", || {
        hook.calls.lock().unwrap().len() == 3
    })
    .await;
    until_delivered(&h1, "REFUND.SUCCESS").await;
    let refund = sent(&h1, "REFUND.SUCCESS").await.remove(0);
    let replays = (0..15).map(|k| {
        let http = h1.http.clone();
        let target = format!("{}/wx/pay/shop/notify", fleet[k % 3]);
        let n = refund.clone();
        async move { replay(&http, &target, &n).await }
    });
    let statuses = futures_util::future::join_all(replays).await;
    assert!(statuses.iter().all(|s| *s == 204), "{statuses:?}");
    let got: Vec<_> = hook
        .bodies()
        .iter()
        .map(|b| {
            let r = &b["resource"];
            let no = r["out_refund_no"].as_str().or(r["out_trade_no"].as_str());
            format!("{} {}", b["event_type"].as_str().unwrap(), no.unwrap())
        })
        .collect();
    assert_eq!(
        got,
        [
            "TRANSACTION.SUCCESS F-1",
            "TRANSACTION.SUCCESS F-2",
            "REFUND.SUCCESS RF-1"
        ]
    );
}

/// With neither a certificate nor the public key configured, `fetch_certificates`
/// downloads the platform certificate (`GET /v3/certificates`, opened with the APIv3
/// key) when the first notification names it, and the notification is delivered.
#[tokio::test]
async fn certificates_are_downloaded_when_a_notification_names_one() {
    let hook = Arc::new(Hook::default());
    let url = hook.serve().await;
    let dir = TempDir::new("pay-fetch");
    let key = dir.path().join("merchant.key.pem");
    std::fs::write(&key, sandbox_pay::MERCHANT_KEY).unwrap();
    let extra = format!(
        "[pay.shop]\nmchid = \"{MCHID}\"\napiv3_key = \"{APIV3_KEY}\"\nprivate_key_file = \"{}\"\nmerchant_serial = \"{}\"\nfetch_certificates = true\n[pay.shop.webhook]\nurl = \"{url}\"\nsecret = \"{HOOK_SECRET}\"\n",
        key.display(),
        sandbox_pay::MERCHANT_SERIAL
    );
    let h = Setup::new()
        .tag("pay-fetch")
        .dir(dir)
        .extra(&extra)
        .start()
        .await;
    let base = h.gw.url();
    let (_, status) = api_get(&h.http, format!("{base}/api/v1/pay/shop/status")).await;
    assert_eq!(status["keys"], json!([]), "nothing held before: {status}");
    order(&h, &base, "G-1").await;
    sandbox_post(
        &h,
        "/admin/pay/pay",
        json!({ "mchid": MCHID, "out_trade_no": "G-1" }),
    )
    .await;
    until("delivered", || hook.calls.lock().unwrap().len() == 1).await;
    let (_, status) = api_get(&h.http, format!("{base}/api/v1/pay/shop/status")).await;
    assert_eq!(
        status["keys"][0]["id"],
        sandbox_pay::PLATFORM_SERIAL,
        "{status}"
    );
}

/// Drop-in mode: a handler written with wechatpayv3 (PyPI, unmodified), trusting
/// wxgate's forwarding key in place of WeChat Pay's, verifies and decrypts what wxgate
/// forwards.
#[tokio::test]
async fn a_handler_written_with_wechatpayv3_accepts_the_drop_in_forward() {
    let dir = TempDir::new("pay-dropin");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let forward_key = write("forward.key.pem", sandbox_pay::FORWARD_KEY);
    let forward_pub = write("forward.pub.pem", sandbox_pay::FORWARD_PUBLIC);
    let merchant_key = write("merchant-handler.key.pem", sandbox_pay::MERCHANT_KEY);
    let out = dir.path().join("verified.jsonl");
    let port = free_port();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/interop/wechatpay_handler.py"
    );
    let mut child = std::process::Command::new("python3")
        .args([
            script,
            &port.to_string(),
            out.to_str().unwrap(),
            MCHID,
            APIV3_KEY,
            &merchant_key,
            &forward_pub,
            "PUB_KEY_ID_wxgate_forward",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("python3 with wechatpayv3 (scripts/install-deps.sh)");
    wait_for_port(port);
    let more = format!("\n[pay.shop.forward]\nprivate_key_file = \"{forward_key}\"\nkey_id = \"PUB_KEY_ID_wxgate_forward\"\n");
    let extra = pay_section(&dir, &format!("http://127.0.0.1:{port}/notify"), &more);
    let h = Setup::new()
        .tag("pay-dropin")
        .dir(dir)
        .extra(&extra)
        .start()
        .await;
    let base = h.gw.url();
    order(&h, &base, "D-1").await;
    sandbox_post(
        &h,
        "/admin/pay/pay",
        json!({ "mchid": MCHID, "out_trade_no": "D-1" }),
    )
    .await;
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    until("wechatpayv3 verified the forward", || !read().is_empty()).await;
    let _ = child.kill();
    let _ = child.wait();
    let verified: Value = serde_json::from_str(read().lines().next().unwrap()).unwrap();
    assert_eq!(verified["event_type"], "TRANSACTION.SUCCESS");
    assert_eq!(verified["resource"]["out_trade_no"], "D-1");
    until_delivered(&h, "TRANSACTION.SUCCESS").await;
    let (_, status) = api_get(&h.http, format!("{base}/api/v1/pay/shop/status")).await;
    assert_eq!(status["mode"], "drop_in");
}

/// The signing proxy's requests verify with the sandbox (WeChat Pay's rules) and with
/// Python's `cryptography` (a second implementation of them).
#[tokio::test]
async fn the_signing_proxy_signs_as_a_second_implementation_verifies() {
    let hook = Arc::new(Hook::default());
    let h = gateway(&hook).await;
    let body = r#"{"appid":"wxsandbox0000001","mchid":"1900000001","description":"tea","out_trade_no":"P-1","notify_url":"http://127.0.0.1:1/n","amount":{"total":1}}"#;
    let r = h
        .http
        .post(format!(
            "{}/api/v1/pay/shop/v3/pay/transactions/native",
            h.gw.url()
        ))
        .bearer_auth(API_KEY)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.json::<Value>().await.unwrap()["code_url"]
        .as_str()
        .unwrap()
        .starts_with("weixin://wxpay/"));
    let seen: Value = h
        .http
        .get(format!("{}/admin/pay/requests", h.sb.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let req = seen["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["url"] == "/v3/pay/transactions/native")
        .unwrap()
        .clone();
    assert_eq!(
        req["verified"], true,
        "the sandbox checks it as WeChat Pay does"
    );
    assert_eq!(req["body"], body, "the body goes as the caller wrote it");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/interop/wechatpay_verify.py"
    );
    let check = |body: &str| {
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let input = json!({ "authorization": req["authorization"], "method": "POST", "url": req["url"], "body": body, "public_key": sandbox_pay::MERCHANT_PUBLIC });
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.to_string().as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let ok = check(body);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let v: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(
        (v["mchid"].as_str(), v["serial_no"].as_str()),
        (Some(MCHID), Some(sandbox_pay::MERCHANT_SERIAL))
    );
    // And the second implementation refuses what does not match.
    assert!(!check("{}").status.success());
}

/// The console shows each merchant: its keys with expiry, its notifications by outcome
/// and the last ones, with no personal data.
#[tokio::test]
async fn the_console_shows_the_merchants_notifications_and_keys() {
    const KEY: &str = "console-admin-key-0123456789abcdef";
    let hook = Arc::new(Hook::default());
    let url = hook.serve().await;
    let dir = TempDir::new("pay-console");
    let extra = pay_section(&dir, &url, "");
    let h = Setup::new()
        .tag("pay-console")
        .dir(dir)
        .top(&format!(
            "[console]\nenabled = true\nadmin_key = \"{KEY}\"\n"
        ))
        .extra(&extra)
        .start()
        .await;
    let base = h.gw.url();
    order(&h, &base, "C-1").await;
    sandbox_post(
        &h,
        "/admin/pay/pay",
        json!({ "mchid": MCHID, "out_trade_no": "C-1" }),
    )
    .await;
    until("delivered", || hook.calls.lock().unwrap().len() == 1).await;
    until_delivered(&h, "TRANSACTION.SUCCESS").await;
    let cookie = console_cookie(&h.http, &base, KEY).await;
    let v: Value = h
        .http
        .get(format!("{base}/console/api/overview"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shop = &v["pay"][0];
    assert_eq!(shop["name"], "shop", "{v}");
    assert_eq!(shop["outcomes"]["delivered"], 1, "{shop}");
    let keys: Vec<_> = shop["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [sandbox_pay::PUBLIC_KEY_ID, sandbox_pay::PLATFORM_SERIAL]
    );
    assert!(shop["keys"][1]["expires_at"].as_i64().unwrap() > now() + 365 * 86400);
    assert_eq!(shop["recent"][0]["outcome"], "delivered");
    let text = shop.to_string();
    assert!(
        !text.contains("oSandboxUser") && !text.contains("C-1"),
        "no personal or order data: {text}"
    );
}
