//! `[pay.NAME]`: a WeChat Pay merchant (商户号) whose v3 notifications wxgate verifies
//! and forwards, and whose v3 API calls it signs. Keys are PEM text or files; the
//! APIv3 key and the private keys are secrets (never logged).

use std::path::PathBuf;

use serde::Deserialize;

use super::Secret;

/// One merchant.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PayConfig {
    /// 商户号.
    pub mchid: String,
    /// The APIv3 key (APIv3密钥, 32 characters): opens notifications' resources.
    pub apiv3_key: Secret,
    /// The merchant's API private key (`apiclient_key.pem`), as PEM text or a file: signs
    /// the v3 API calls of the signing proxy.
    #[serde(default)]
    pub private_key: Option<Secret>,
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// The serial number of the merchant's API certificate (商户API证书序列号).
    #[serde(default)]
    pub merchant_serial: Option<String>,
    /// The WeChat Pay public key (微信支付公钥) and its id (`PUB_KEY_ID_...`).
    #[serde(default)]
    pub wechatpay_public_key: Option<String>,
    #[serde(default)]
    pub wechatpay_public_key_file: Option<PathBuf>,
    #[serde(default)]
    pub wechatpay_public_key_id: Option<String>,
    /// Platform certificates (平台证书), as PEM files. Both kinds of key may be given at
    /// once, for a switch from certificates to the public key.
    #[serde(default)]
    pub platform_certificate_files: Vec<PathBuf>,
    /// Download the platform certificates (`GET /v3/certificates`, decrypted with the
    /// APIv3 key) at start and when a notification names a serial not known yet (at
    /// most once a minute). Needs the private key and `merchant_serial`.
    #[serde(default)]
    pub fetch_certificates: bool,
    /// Where verified notifications go.
    pub webhook: PayWebhookConfig,
    /// Drop-in mode: forward WeChat Pay's own body re-signed with this key, so a handler
    /// written with a WeChat Pay SDK keeps working by trusting this key instead of
    /// WeChat Pay's. Without it, the webhook gets wxgate's JSON, HMAC-signed.
    #[serde(default)]
    pub forward: Option<PayForwardConfig>,
    /// The largest notification read (bytes).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

fn default_max_body() -> usize {
    64 << 10
}

/// The business's endpoint for verified notifications.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PayWebhookConfig {
    pub url: String,
    /// The HMAC-SHA256 key of `X-Wxgate-Signature` (the JSON format).
    #[serde(default)]
    pub secret: Secret,
    /// How long the webhook may take to accept; past it WeChat Pay is answered with a
    /// failure and retries (its own schedule).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_timeout() -> u64 {
    5000
}

/// wxgate's own key for re-signing forwarded notifications (drop-in mode).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PayForwardConfig {
    #[serde(default)]
    pub private_key: Option<Secret>,
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// The `Wechatpay-Serial` the forwards carry: the id the handler knows the key by.
    pub key_id: String,
}

impl PayConfig {
    pub(super) fn problems(&self, name: &str, p: &mut Vec<String>) {
        let at = format!("pay.{name}");
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            p.push(format!(
                "{at}: the name is letters, digits, - and _ (it is in the notify URL)"
            ));
        }
        if self.mchid.is_empty() || !self.mchid.bytes().all(|b| b.is_ascii_digit()) {
            p.push(format!("{at}.mchid: the merchant id is digits"));
        }
        if self.apiv3_key.expose().len() != 32 {
            p.push(format!("{at}.apiv3_key: the APIv3 key is 32 characters"));
        }
        if self.private_key.is_some() && self.private_key_file.is_some() {
            p.push(format!("{at}: private_key or private_key_file, not both"));
        }
        let has_public =
            self.wechatpay_public_key.is_some() || self.wechatpay_public_key_file.is_some();
        if has_public != self.wechatpay_public_key_id.is_some() {
            p.push(format!(
                "{at}: wechatpay_public_key(_file) and wechatpay_public_key_id go together"
            ));
        }
        if !has_public && self.platform_certificate_files.is_empty() && !self.fetch_certificates {
            p.push(format!("{at}: nothing verifies WeChat Pay's signatures: set wechatpay_public_key_file and wechatpay_public_key_id, platform_certificate_files, or fetch_certificates"));
        }
        let has_private = self.private_key.is_some() || self.private_key_file.is_some();
        if self.fetch_certificates && (!has_private || self.merchant_serial.is_none()) {
            p.push(format!("{at}.fetch_certificates: downloading them needs the private key and merchant_serial"));
        }
        if has_private && self.merchant_serial.is_none() {
            p.push(format!("{at}.merchant_serial: the private key's certificate serial signs every call with it"));
        }
        match url::Url::parse(&self.webhook.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => p.push(format!(
                "{at}.webhook.url: {:?} is not an http(s) URL",
                self.webhook.url
            )),
        }
        match &self.forward {
            Some(f) if f.private_key.is_none() == f.private_key_file.is_none() => p.push(format!(
                "{at}.forward: private_key or private_key_file (one)"
            )),
            None if self.webhook.secret.is_empty() => p.push(format!(
                "{at}.webhook.secret: the JSON forwards are HMAC-signed with it"
            )),
            _ => {}
        }
    }
}
