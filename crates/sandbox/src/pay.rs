//! WeChat Pay (API v3) as the sandbox plays it: merchants whose requests must carry a
//! valid `Authorization` signature, transactions and refunds, the `Wechatpay-*` signature
//! on every answer, `GET /v3/certificates`, and notifications signed and encrypted as
//! WeChat Pay sends them, retried on its schedule (15 s, 15 s, 30 s, 3 min, ... for 24 h)
//! against the sandbox clock until a 2xx. It signs with the platform certificate or the
//! WeChat Pay public key, switchable mid-run, and sends signature probes on request.
//!
//! The keys are the bundled sandbox keys (`crates/sandbox/keys`, public: never for real
//! money).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{json, Value};
use wxgate_proto::pay::{
    notification::signed_message, Authorization, PrivateKey, PublicKey, Resource,
};

use wxgate_proto::jssdk::nonce_str;

use crate::config::PayMerchantConfig;

pub use crate::keys::*;

/// WeChat Pay's retry schedule after a failed delivery (seconds after the previous try).
pub const RETRY_AFTER: &[i64] = &[
    15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
];

/// Why a request is refused, as WeChat Pay answers it: `{"code","message"}` with a status.
#[derive(Debug)]
pub struct PayError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

fn err(status: u16, code: &'static str, message: impl Into<String>) -> PayError {
    PayError {
        status,
        code,
        message: message.into(),
    }
}

/// A notification and its delivery.
#[derive(Debug, Clone, Serialize)]
pub struct Outgoing {
    pub id: String,
    pub mchid: String,
    pub url: String,
    pub event_type: String,
    /// The body, the same on every try.
    pub body: String,
    /// The headers of the last try.
    pub headers: BTreeMap<String, String>,
    pub attempts: u32,
    pub delivered: bool,
    /// When the next try is due (sandbox clock), while undelivered.
    pub next_at: i64,
    /// A signature probe (WECHATPAY/SIGNTEST/): sent once, never retried.
    pub probe: bool,
}

#[derive(Debug, Clone, Serialize)]
struct Transaction {
    appid: String,
    mchid: String,
    out_trade_no: String,
    transaction_id: String,
    description: String,
    notify_url: String,
    total: i64,
    openid: String,
    trade_state: String,
    success_time: Option<String>,
    refunded: i64,
}

/// The sandbox's WeChat Pay.
pub struct Pay {
    merchants: Vec<PayMerchantConfig>,
    platform: PrivateKey,
    public: PrivateKey,
    state: Mutex<State>,
}

/// A v3 request as it arrived, for tests that check its signature themselves.
#[derive(Debug, Clone, Serialize)]
pub struct Request {
    pub authorization: String,
    pub method: String,
    pub url: String,
    pub body: String,
    pub verified: bool,
}

#[derive(Default)]
struct State {
    requests: std::collections::VecDeque<Request>,
    transactions: BTreeMap<(String, String), Transaction>,
    outgoing: Vec<Outgoing>,
    signer: BTreeMap<String, String>,
    next: u64,
}

fn rfc3339(t: i64) -> String {
    // Beijing time, as WeChat Pay writes times.
    let t = t + 8 * 3600;
    let (days, secs) = (t.div_euclid(86400), t.rem_euclid(86400));
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+08:00",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Howard Hinnant's civil-from-days.
fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl Pay {
    pub fn new(merchants: Vec<PayMerchantConfig>) -> Self {
        let mut state = State::default();
        for m in &merchants {
            state.signer.insert(m.mchid.clone(), m.signer.clone());
        }
        Pay {
            merchants,
            platform: PrivateKey::from_pem(PLATFORM_KEY).expect("bundled platform key"),
            public: PrivateKey::from_pem(PUBLIC_KEY).expect("bundled public key"),
            state: Mutex::new(state),
        }
    }

    fn merchant(&self, mchid: &str) -> Result<&PayMerchantConfig, PayError> {
        self.merchants
            .iter()
            .find(|m| m.mchid == mchid)
            .ok_or_else(|| {
                err(
                    400,
                    "PARAM_ERROR",
                    format!("mchid {mchid} is not a merchant"),
                )
            })
    }

    /// Checks a request's `Authorization` as WeChat Pay does (401 SIGN_ERROR otherwise),
    /// and keeps the last 50 requests for [`Pay::requests`].
    pub fn authenticate(
        &self,
        header: &str,
        method: &str,
        url: &str,
        body: &[u8],
        now: i64,
    ) -> Result<&PayMerchantConfig, PayError> {
        let result = self.check_signature(header, method, url, body, now);
        let mut s = self.state.lock().unwrap();
        if s.requests.len() == 50 {
            s.requests.pop_front();
        }
        s.requests.push_back(Request {
            authorization: header.into(),
            method: method.into(),
            url: url.into(),
            body: String::from_utf8_lossy(body).into_owned(),
            verified: result.is_ok(),
        });
        result
    }

    /// The last v3 requests, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .cloned()
            .collect()
    }

    fn check_signature(
        &self,
        header: &str,
        method: &str,
        url: &str,
        body: &[u8],
        now: i64,
    ) -> Result<&PayMerchantConfig, PayError> {
        let auth =
            Authorization::parse(header).map_err(|e| err(401, "SIGN_ERROR", e.to_string()))?;
        let m = self
            .merchant(&auth.mchid)
            .map_err(|e| err(401, "SIGN_ERROR", e.message))?;
        if !auth.serial_no.eq_ignore_ascii_case(&m.merchant_serial) {
            return Err(err(
                401,
                "SIGN_ERROR",
                "serial_no is not the merchant's API certificate",
            ));
        }
        let ts: i64 = auth.timestamp.parse().unwrap_or(0);
        if ts.abs_diff(now) > 300 {
            return Err(err(401, "SIGN_ERROR", "timestamp is not within 5 minutes"));
        }
        let key = PublicKey::from_pem(m.merchant_public_key.as_deref().unwrap_or(MERCHANT_PUBLIC))
            .map_err(|_| err(500, "SYSTEM_ERROR", "merchant key"))?;
        if !auth.verify(&key, method, url, body) {
            return Err(err(401, "SIGN_ERROR", "signature verification failed"));
        }
        Ok(m)
    }

    /// The `Wechatpay-*` headers over `body`, with the merchant's current signer.
    pub fn sign(&self, mchid: &str, body: &[u8], now: i64) -> BTreeMap<String, String> {
        let by_public = self.signer(mchid) == "public_key";
        let (key, serial) = if by_public {
            (&self.public, PUBLIC_KEY_ID)
        } else {
            (&self.platform, PLATFORM_SERIAL)
        };
        let nonce = nonce_str(32);
        let ts = now.to_string();
        let signature = key.sign(&signed_message(&ts, &nonce, body));
        BTreeMap::from([
            ("Wechatpay-Timestamp".into(), ts),
            ("Wechatpay-Nonce".into(), nonce),
            ("Wechatpay-Signature".into(), signature),
            ("Wechatpay-Serial".into(), serial.into()),
            (
                "Wechatpay-Signature-Type".into(),
                wxgate_proto::pay::SCHEME.into(),
            ),
        ])
    }

    fn signer(&self, mchid: &str) -> String {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.signer.get(mchid).cloned())
            .unwrap_or_else(|| "certificate".into())
    }

    /// Switches what WeChat Pay signs with for a merchant (`certificate`, `public_key`).
    pub fn switch(&self, mchid: &str, signer: &str) -> Result<(), PayError> {
        self.merchant(mchid)?;
        if signer != "certificate" && signer != "public_key" {
            return Err(err(
                400,
                "PARAM_ERROR",
                "signer is certificate or public_key",
            ));
        }
        self.state
            .lock()
            .unwrap()
            .signer
            .insert(mchid.into(), signer.into());
        Ok(())
    }

    /// `POST /v3/pay/transactions/{jsapi,native}`: an order, not paid yet.
    pub fn create(
        &self,
        m: &PayMerchantConfig,
        kind: &str,
        body: &Value,
        now: i64,
    ) -> Result<Value, PayError> {
        let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let total = body
            .pointer("/amount/total")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let (out_trade_no, notify_url) = (text("out_trade_no"), text("notify_url"));
        if text("mchid") != m.mchid
            || out_trade_no.is_empty()
            || total <= 0
            || !notify_url.starts_with("http")
        {
            return Err(err(
                400,
                "PARAM_ERROR",
                "mchid, out_trade_no, amount.total and notify_url are required",
            ));
        }
        let openid = body
            .pointer("/payer/openid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if kind == "jsapi" && openid.is_empty() {
            return Err(err(
                400,
                "PARAM_ERROR",
                "payer.openid is required for JSAPI",
            ));
        }
        let mut s = self.state.lock().unwrap();
        let key = (m.mchid.clone(), out_trade_no.clone());
        if s.transactions.contains_key(&key) {
            return Err(err(400, "ORDER_EXISTS", "out_trade_no is already used"));
        }
        s.next += 1;
        let transaction_id = format!(
            "42000000{:010}{:04}",
            now.rem_euclid(10_000_000_000),
            s.next % 10_000
        );
        s.transactions.insert(
            key,
            Transaction {
                appid: text("appid"),
                mchid: m.mchid.clone(),
                out_trade_no,
                transaction_id,
                description: text("description"),
                notify_url,
                total,
                openid,
                trade_state: "NOTPAY".into(),
                success_time: None,
                refunded: 0,
            },
        );
        let prepay = format!("wx{}", nonce_str(34));
        Ok(if kind == "native" {
            json!({ "code_url": format!("weixin://wxpay/bizpayurl?pr={prepay}") })
        } else {
            json!({ "prepay_id": prepay })
        })
    }

    fn transaction_json(t: &Transaction) -> Value {
        json!({
            "appid": t.appid, "mchid": t.mchid, "out_trade_no": t.out_trade_no,
            "transaction_id": t.transaction_id, "trade_type": "JSAPI", "trade_state": t.trade_state,
            "trade_state_desc": if t.trade_state == "SUCCESS" { "支付成功" } else { "未支付" },
            "bank_type": "OTHERS", "attach": "", "success_time": t.success_time,
            "payer": { "openid": t.openid },
            "amount": { "total": t.total, "payer_total": t.total, "currency": "CNY", "payer_currency": "CNY" },
        })
    }

    /// `GET /v3/pay/transactions/out-trade-no/{no}?mchid=`
    pub fn query(&self, mchid: &str, out_trade_no: &str) -> Result<Value, PayError> {
        let s = self.state.lock().unwrap();
        s.transactions
            .get(&(mchid.to_owned(), out_trade_no.to_owned()))
            .map(Self::transaction_json)
            .ok_or_else(|| err(404, "ORDER_NOT_EXIST", "no such order"))
    }

    /// The payer pays (the sandbox's admin API): the transaction succeeds and its
    /// TRANSACTION.SUCCESS notification is queued.
    pub fn pay(&self, mchid: &str, out_trade_no: &str, now: i64) -> Result<Outgoing, PayError> {
        let m = self.merchant(mchid)?.clone();
        let t = {
            let mut s = self.state.lock().unwrap();
            let t = s
                .transactions
                .get_mut(&(mchid.to_owned(), out_trade_no.to_owned()))
                .ok_or_else(|| err(404, "ORDER_NOT_EXIST", "no such order"))?;
            if t.trade_state == "SUCCESS" {
                return Err(err(400, "ORDERPAID", "already paid"));
            }
            t.trade_state = "SUCCESS".into();
            t.success_time = Some(rfc3339(now));
            t.clone()
        };
        let resource = Self::transaction_json(&t);
        Ok(self.queue(
            &m,
            &t.notify_url,
            "TRANSACTION.SUCCESS",
            "支付成功",
            "transaction",
            &resource,
            now,
        ))
    }

    /// `POST /v3/refund/domestic/refunds`: the refund is made at once, its REFUND.SUCCESS
    /// notification queued to the refund's `notify_url` (or the order's).
    pub fn refund(&self, m: &PayMerchantConfig, body: &Value, now: i64) -> Result<Value, PayError> {
        let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let (out_trade_no, out_refund_no) = (text("out_trade_no"), text("out_refund_no"));
        let refund = body
            .pointer("/amount/refund")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let (t, refund_id) = {
            let mut s = self.state.lock().unwrap();
            s.next += 1;
            let refund_id = format!(
                "50000000{:010}{:04}",
                now.rem_euclid(10_000_000_000),
                s.next % 10_000
            );
            let t = s
                .transactions
                .get_mut(&(m.mchid.clone(), out_trade_no.clone()))
                .ok_or_else(|| err(404, "RESOURCE_NOT_EXISTS", "no such order"))?;
            if t.trade_state != "SUCCESS"
                || out_refund_no.is_empty()
                || refund <= 0
                || t.refunded + refund > t.total
            {
                return Err(err(
                    400,
                    "PARAM_ERROR",
                    "a paid order, out_refund_no and an amount within the total",
                ));
            }
            t.refunded += refund;
            (t.clone(), refund_id)
        };
        let notify_url = Some(text("notify_url"))
            .filter(|u| !u.is_empty())
            .unwrap_or(t.notify_url.clone());
        let answer = json!({
            "refund_id": refund_id, "out_refund_no": out_refund_no, "transaction_id": t.transaction_id,
            "out_trade_no": t.out_trade_no, "channel": "ORIGINAL", "user_received_account": "支付用户零钱",
            "create_time": rfc3339(now), "status": "PROCESSING",
            "amount": { "total": t.total, "refund": refund, "payer_total": t.total, "payer_refund": refund, "currency": "CNY" },
        });
        let resource = json!({
            "mchid": m.mchid, "out_trade_no": t.out_trade_no, "transaction_id": t.transaction_id,
            "out_refund_no": out_refund_no, "refund_id": refund_id, "refund_status": "SUCCESS",
            "success_time": rfc3339(now), "user_received_account": "支付用户零钱",
            "amount": { "total": t.total, "refund": refund, "payer_total": t.total, "payer_refund": refund },
        });
        self.queue(
            m,
            &notify_url,
            "REFUND.SUCCESS",
            "退款成功",
            "refund",
            &resource,
            now,
        );
        Ok(answer)
    }

    /// A notification, encrypted with the merchant's APIv3 key, queued for delivery now.
    #[allow(clippy::too_many_arguments)]
    fn queue(
        &self,
        m: &PayMerchantConfig,
        url: &str,
        event_type: &str,
        summary: &str,
        original_type: &str,
        resource: &Value,
        now: i64,
    ) -> Outgoing {
        let nonce = nonce_str(12);
        let sealed = Resource::encrypt(
            &m.apiv3_key,
            &nonce,
            original_type,
            original_type,
            &resource.to_string(),
        )
        .expect("a 32-character APIv3 key");
        let id = format!("EV-{}", nonce_str(20));
        let body = json!({
            "id": id, "create_time": rfc3339(now), "resource_type": "encrypt-resource",
            "event_type": event_type, "summary": summary, "resource": sealed,
        })
        .to_string();
        let out = Outgoing {
            id,
            mchid: m.mchid.clone(),
            url: url.into(),
            event_type: event_type.into(),
            body,
            headers: BTreeMap::new(),
            attempts: 0,
            delivered: false,
            next_at: now,
            probe: false,
        };
        self.state.lock().unwrap().outgoing.push(out.clone());
        out
    }

    /// A signature probe to `url`: a notification-shaped body whose signature starts
    /// with `WECHATPAY/SIGNTEST/`, sent once.
    pub fn probe(&self, mchid: &str, url: &str, now: i64) -> Result<(), PayError> {
        let m = self.merchant(mchid)?.clone();
        let mut out = self.queue(
            &m,
            url,
            "TRANSACTION.SUCCESS",
            "签名探测",
            "transaction",
            &json!({}),
            now,
        );
        out.probe = true;
        let mut s = self.state.lock().unwrap();
        if let Some(o) = s.outgoing.iter_mut().find(|o| o.id == out.id) {
            o.probe = true;
        }
        Ok(())
    }

    /// The notifications due now, each with fresh headers and its attempt counted.
    pub fn due(&self, now: i64) -> Vec<Outgoing> {
        let due: Vec<Outgoing> = {
            let s = self.state.lock().unwrap();
            s.outgoing
                .iter()
                .filter(|o| {
                    !o.delivered && o.next_at <= now && (o.attempts as usize) <= RETRY_AFTER.len()
                })
                .filter(|o| !(o.probe && o.attempts > 0))
                .cloned()
                .collect()
        };
        due.into_iter()
            .map(|mut o| {
                o.headers = self.sign(&o.mchid, o.body.as_bytes(), now);
                if o.probe {
                    let sig = o
                        .headers
                        .get("Wechatpay-Signature")
                        .cloned()
                        .unwrap_or_default();
                    o.headers.insert(
                        "Wechatpay-Signature".into(),
                        format!("{}{sig}", wxgate_proto::pay::SIGNTEST_PREFIX),
                    );
                }
                o
            })
            .collect()
    }

    /// Records a try's result: delivered on a 2xx, else the next try on the schedule.
    pub fn settle(&self, sent: &Outgoing, accepted: bool, now: i64) {
        let mut s = self.state.lock().unwrap();
        if let Some(o) = s.outgoing.iter_mut().find(|o| o.id == sent.id) {
            o.headers = sent.headers.clone();
            o.attempts += 1;
            o.delivered = accepted;
            if let Some(after) = RETRY_AFTER.get(o.attempts as usize - 1) {
                o.next_at = now + after;
            }
        }
    }

    /// Every notification and its delivery, for tests and the demo.
    pub fn outgoing(&self) -> Vec<Outgoing> {
        self.state.lock().unwrap().outgoing.clone()
    }

    /// `GET /v3/certificates`: the platform certificate, encrypted with the merchant's
    /// APIv3 key.
    pub fn certificates(&self, m: &PayMerchantConfig, now: i64) -> Value {
        let nonce = nonce_str(12);
        let sealed = Resource::encrypt(
            &m.apiv3_key,
            &nonce,
            "certificate",
            "certificate",
            PLATFORM_CERT,
        )
        .expect("a 32-character APIv3 key");
        json!({ "data": [{
            "serial_no": PLATFORM_SERIAL,
            "effective_time": rfc3339(now - 86400),
            "expire_time": rfc3339(now + 5 * 365 * 86400),
            "encrypt_certificate": {
                "algorithm": sealed.algorithm, "nonce": sealed.nonce,
                "associated_data": sealed.associated_data, "ciphertext": sealed.ciphertext,
            },
        }]})
    }
}

/// One round of deliveries: every due notification POSTed to its URL.
pub async fn deliver_due(pay: &Pay, http: &reqwest::Client, now: i64) {
    for o in pay.due(now) {
        let mut req = http
            .post(&o.url)
            .header("Content-Type", "application/json")
            .body(o.body.clone());
        for (k, v) in &o.headers {
            req = req.header(k, v);
        }
        let accepted = matches!(req.send().await, Ok(r) if r.status().is_success());
        pay.settle(&o, accepted, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_beijing_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T08:00:00+08:00");
        assert_eq!(rfc3339(1_431_925_775), "2015-05-18T13:09:35+08:00");
    }
}
