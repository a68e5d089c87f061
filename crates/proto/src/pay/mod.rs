//! WeChat Pay's API v3 rules (微信支付 APIv3) as pure functions: the request signature
//! (`Authorization: WECHATPAY2-SHA256-RSA2048 ...` over `"METHOD\nURL\ntimestamp\nnonce\n
//! body\n"`), the signed answers and notifications (`Wechatpay-*` headers), and the
//! encrypted `resource` of a notification.
//!
//! - [`keys`]: the merchant's private key, WeChat Pay's public key, platform certificates.
//! - [`notification`]: verifying what WeChat Pay signed, and opening what it encrypted.
//! - [`der`]: the little DER those keys and certificates need.

pub mod der;
pub mod keys;
pub mod notification;

pub use keys::{Certificate, PrivateKey, PublicKey};
pub use notification::{Notification, Resource, Signed, MAX_SKEW_SECS, SIGNTEST_PREFIX};

use crate::{Error, Result};

/// The scheme of the `Authorization` header and of `Wechatpay-Signature-Type`.
pub const SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";

/// `"{METHOD}\n{URL}\n{timestamp}\n{nonce}\n{body}\n"`: what a merchant signs for a
/// request. `url` is the path with its query, as sent (`/v3/certificates`).
pub fn request_message(
    method: &str,
    url: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(method.len() + url.len() + body.len() + 64);
    for part in [
        method.as_bytes(),
        b"\n",
        url.as_bytes(),
        b"\n",
        timestamp.as_bytes(),
        b"\n",
        nonce.as_bytes(),
        b"\n",
        body,
        b"\n",
    ] {
        m.extend_from_slice(part);
    }
    m
}

/// The `Authorization` header of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub mchid: String,
    pub nonce_str: String,
    pub signature: String,
    pub timestamp: String,
    /// The merchant certificate's serial number.
    pub serial_no: String,
}

impl Authorization {
    /// Signs a request with the merchant's key.
    pub fn sign(
        key: &PrivateKey,
        mchid: &str,
        serial_no: &str,
        (method, url, body): (&str, &str, &[u8]),
        timestamp: i64,
        nonce_str: &str,
    ) -> Self {
        let timestamp = timestamp.to_string();
        let signature = key.sign(&request_message(method, url, &timestamp, nonce_str, body));
        Authorization {
            mchid: mchid.into(),
            nonce_str: nonce_str.into(),
            signature,
            timestamp,
            serial_no: serial_no.into(),
        }
    }

    /// The header's value.
    pub fn header(&self) -> String {
        format!(
            "{SCHEME} mchid=\"{}\",nonce_str=\"{}\",signature=\"{}\",timestamp=\"{}\",serial_no=\"{}\"",
            self.mchid, self.nonce_str, self.signature, self.timestamp, self.serial_no
        )
    }

    /// Reads a header (the sandbox's side): the scheme, then `key="value"` pairs in any
    /// order, each of the five once.
    pub fn parse(header: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidField {
            field: "Authorization",
            reason,
        };
        let params = header
            .strip_prefix(SCHEME)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or(bad("not WECHATPAY2-SHA256-RSA2048"))?;
        let mut fields: [Option<String>; 5] = Default::default();
        for pair in params.split(',') {
            let (name, value) = pair
                .trim()
                .split_once('=')
                .ok_or(bad("a parameter without ="))?;
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or(bad("a parameter not in quotes"))?;
            let i = ["mchid", "nonce_str", "signature", "timestamp", "serial_no"]
                .iter()
                .position(|n| *n == name)
                .ok_or(bad("an unknown parameter"))?;
            if fields[i].replace(value.to_owned()).is_some() {
                return Err(bad("a parameter given twice"));
            }
        }
        let [Some(mchid), Some(nonce_str), Some(signature), Some(timestamp), Some(serial_no)] =
            fields
        else {
            return Err(bad("a parameter missing"));
        };
        Ok(Authorization {
            mchid,
            nonce_str,
            signature,
            timestamp,
            serial_no,
        })
    }

    /// Whether the signature is `key`'s over this request.
    pub fn verify(&self, key: &PublicKey, method: &str, url: &str, body: &[u8]) -> bool {
        key.verify(
            &request_message(method, url, &self.timestamp, &self.nonce_str, body),
            &self.signature,
        )
    }
}
