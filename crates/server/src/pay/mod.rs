//! WeChat Pay (API v3) for the business's merchants (`[pay.NAME]`): notifications at
//! `POST /wx/pay/{name}/notify` verified once for the fleet and forwarded to the
//! business's webhook exactly once ([`notify`]), and the merchant's v3 API calls signed
//! with a key the business's servers never hold ([`Merchant::call_signed`], served by
//! `http::pay`). The protocol itself is `wxgate_proto::pay`.

pub mod keys;
pub mod notify;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use wxgate_proto::pay::{Authorization, Certificate, PrivateKey, Resource, Signed};

use crate::config::{Config, PayConfig};
use crate::error::{Error, Result};
use keys::Verifiers;

/// A signed call's answer, passed back as WeChat Pay gave it.
pub struct PayAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: bytes::Bytes,
}

/// One merchant, its keys loaded.
pub struct Merchant {
    pub name: String,
    pub cfg: PayConfig,
    verifiers: Verifiers,
    private: Option<PrivateKey>,
    /// Drop-in mode: wxgate's key and the id forwards carry.
    forward: Option<(PrivateKey, String)>,
    http: reqwest::Client,
    pay_base: String,
    /// When certificates were last downloaded (at most once a minute).
    fetched: Mutex<Option<Instant>>,
}

/// The last notifications, for operators: ids and outcomes, no personal data.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Seen {
    pub pay: String,
    pub id: String,
    pub event_type: String,
    pub outcome: &'static str,
    pub at: i64,
}

/// Every merchant.
pub struct PayService {
    merchants: BTreeMap<String, Merchant>,
    recent: Mutex<VecDeque<Seen>>,
    /// Notifications by merchant and outcome since start.
    counts: Mutex<BTreeMap<(String, &'static str), u64>>,
}

const RECENT: usize = 50;

impl PayService {
    pub fn new(config: &Config) -> Result<Self> {
        let mut merchants = BTreeMap::new();
        for (name, cfg) in &config.pay {
            let at = |what: &str| format!("pay.{name}.{what}");
            let private = keys::private_key(
                &at("private_key"),
                cfg.private_key.as_ref(),
                cfg.private_key_file.as_deref(),
            )?;
            let forward = match &cfg.forward {
                Some(f) => Some((
                    keys::private_key(
                        &at("forward.private_key"),
                        f.private_key.as_ref(),
                        f.private_key_file.as_deref(),
                    )?
                    .ok_or_else(|| Error::Config(format!("{}: no key", at("forward"))))?,
                    f.key_id.clone(),
                )),
                None => None,
            };
            let http = reqwest::Client::builder()
                .timeout(Duration::from_millis(cfg.webhook.timeout_ms.max(100)))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| Error::Config(format!("pay client: {e}")))?;
            merchants.insert(
                name.clone(),
                Merchant {
                    name: name.clone(),
                    verifiers: Verifiers::load(name, cfg)?,
                    cfg: cfg.clone(),
                    private,
                    forward,
                    http,
                    pay_base: config.upstream.pay_base.trim_end_matches('/').to_owned(),
                    fetched: Mutex::new(None),
                },
            );
        }
        Ok(PayService {
            merchants,
            recent: Mutex::new(VecDeque::new()),
            counts: Mutex::default(),
        })
    }

    pub fn merchant(&self, name: &str) -> Option<&Merchant> {
        self.merchants.get(name)
    }

    pub fn merchants(&self) -> impl Iterator<Item = &Merchant> {
        self.merchants.values()
    }

    /// Downloads the platform certificates of the merchants that ask for it.
    pub async fn fetch_certificates(&self, now: i64) {
        for m in self.merchants.values().filter(|m| m.cfg.fetch_certificates) {
            if let Err(e) = m.fetch_certificates(now).await {
                tracing::warn!(pay = %m.name, error = %e, "platform certificates not downloaded");
            }
        }
    }

    fn remember(&self, seen: Seen) {
        if let Ok(mut c) = self.counts.lock() {
            *c.entry((seen.pay.clone(), seen.outcome)).or_default() += 1;
        }
        if let Ok(mut r) = self.recent.lock() {
            if r.len() == RECENT {
                r.pop_front();
            }
            r.push_back(seen);
        }
    }

    /// For the console: each merchant, its keys with expiry, its notifications by outcome
    /// since start and the last ones (ids and outcomes, no personal data).
    pub fn overview(&self) -> serde_json::Value {
        let counts = self.counts.lock().map(|c| c.clone()).unwrap_or_default();
        let recent = self.recent();
        let merchants: Vec<_> = self
            .merchants
            .values()
            .map(|m| {
                let by_outcome: BTreeMap<&str, u64> = counts
                    .iter()
                    .filter(|((pay, _), _)| *pay == m.name)
                    .map(|((_, outcome), n)| (*outcome, *n))
                    .collect();
                let keys: Vec<_> = m
                    .keys()
                    .into_iter()
                    .map(|(id, kind, expires_at)| serde_json::json!({ "id": id, "kind": kind, "expires_at": expires_at }))
                    .collect();
                let last: Vec<_> = recent.iter().rev().filter(|r| r.pay == m.name).take(10).collect();
                serde_json::json!({
                    "name": m.name, "mchid": m.cfg.mchid,
                    "mode": if m.cfg.forward.is_some() { "drop_in" } else { "json" },
                    "keys": keys, "outcomes": by_outcome, "recent": last,
                })
            })
            .collect();
        serde_json::Value::Array(merchants)
    }

    /// The last notifications, newest last.
    pub fn recent(&self) -> Vec<Seen> {
        self.recent
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct CertificateList {
    data: Vec<CertificateEntry>,
}

#[derive(Deserialize)]
struct CertificateEntry {
    encrypt_certificate: Resource,
}

impl Merchant {
    /// The key a `Wechatpay-Serial` names; an unknown serial with `fetch_certificates`
    /// downloads the certificates first (at most once a minute), as a platform
    /// certificate WeChat Pay has just rotated to would be.
    pub async fn key_for(&self, serial: &str, now: i64) -> Option<wxgate_proto::pay::PublicKey> {
        if let Some(k) = self.verifiers.key_for(serial) {
            return Some(k);
        }
        if !self.cfg.fetch_certificates {
            return None;
        }
        let due = self
            .fetched
            .lock()
            .map(|f| f.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)))
            .unwrap_or(false);
        if due {
            if let Err(e) = self.fetch_certificates(now).await {
                tracing::warn!(pay = %self.name, error = %e, "platform certificates not downloaded");
            }
        }
        self.verifiers.key_for(serial)
    }

    /// `GET /v3/certificates`: each certificate decrypted with the APIv3 key (its
    /// authenticity: only WeChat Pay and the merchant hold that key).
    pub async fn fetch_certificates(&self, now: i64) -> Result<usize> {
        if let Ok(mut f) = self.fetched.lock() {
            *f = Some(Instant::now());
        }
        let answer =
            Box::pin(self.call_signed("GET", "/v3/certificates", bytes::Bytes::new(), now, false))
                .await?;
        if answer.status != 200 {
            return Err(Error::Transport {
                endpoint: "/v3/certificates".into(),
                reason: format!("HTTP {}", answer.status),
            });
        }
        let list: CertificateList = serde_json::from_slice(&answer.body)
            .map_err(|e| Error::Config(format!("/v3/certificates: {e}")))?;
        let key = self.cfg.apiv3_key.expose();
        let certs: Vec<Certificate> = list
            .data
            .iter()
            .filter_map(|c| c.encrypt_certificate.decrypt(key).ok())
            .filter_map(|pem| Certificate::from_pem(&pem).ok())
            .collect();
        let n = certs.len();
        self.verifiers.add_certificates(certs);
        tracing::info!(pay = %self.name, certificates = n, "platform certificates downloaded");
        Ok(n)
    }

    /// Calls WeChat Pay's v3 API signed with the merchant's key; a 2xx answer must carry
    /// WeChat Pay's valid signature (`verify`), or it is an error.
    pub async fn call_signed(
        &self,
        method: &str,
        path_and_query: &str,
        body: bytes::Bytes,
        now: i64,
        verify: bool,
    ) -> Result<PayAnswer> {
        let (Some(key), Some(serial)) = (&self.private, &self.cfg.merchant_serial) else {
            return Err(Error::Config(format!(
                "pay.{}: no private_key to sign with",
                self.name
            )));
        };
        let nonce = wxgate_proto::jssdk::nonce_str(32);
        let auth = Authorization::sign(
            key,
            &self.cfg.mchid,
            serial,
            (method, path_and_query, &body),
            now,
            &nonce,
        );
        let method_v = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| Error::Config(format!("{method} is not an HTTP method")))?;
        let mut req = self
            .http
            .request(method_v, format!("{}{path_and_query}", self.pay_base))
            .header("Authorization", auth.header())
            .header("Accept", "application/json")
            .header("User-Agent", concat!("wxgate/", env!("CARGO_PKG_VERSION")));
        if let Some(id) = &self.cfg.wechatpay_public_key_id {
            req = req.header("Wechatpay-Serial", id);
        }
        if !body.is_empty() {
            req = req.header("Content-Type", "application/json").body(body);
        }
        let transport = |e: reqwest::Error| Error::Transport {
            endpoint: path_and_query.split('?').next().unwrap_or("").to_owned(),
            reason: e.without_url().to_string(),
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let (ts, nonce, sig, serial) = (
            header("Wechatpay-Timestamp"),
            header("Wechatpay-Nonce"),
            header("Wechatpay-Signature"),
            header("Wechatpay-Serial"),
        );
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.bytes().await.map_err(transport)?;
        if verify && (200..300).contains(&status) {
            let signed = Signed {
                timestamp: &ts,
                nonce: &nonce,
                signature: &sig,
                serial: &serial,
            };
            let key = self.key_for(&serial, now).await;
            signed
                .verify(&body, now, |_| key.as_ref())
                .map_err(|e| Error::Transport {
                    endpoint: path_and_query.split('?').next().unwrap_or("").to_owned(),
                    reason: format!("WeChat Pay's answer does not verify: {e}"),
                })?;
        }
        Ok(PayAnswer {
            status,
            content_type,
            body,
        })
    }

    /// For operators: the merchant's verifying keys with their expiry.
    pub fn keys(&self) -> Vec<(String, &'static str, Option<i64>)> {
        self.verifiers.describe()
    }
}
