//! The keys of WeChat Pay's v3 rules: the merchant's private key (it signs requests,
//! and wxgate's own key re-signs forwarded notifications), and the public keys that
//! verify WeChat Pay's signatures: the WeChat Pay public key (微信支付公钥, named by its
//! `PUB_KEY_ID_...`) or a platform certificate (平台证书, named by its serial number).
//! RSA with SHA-256 and PKCS#1 v1.5 padding (`WECHATPAY2-SHA256-RSA2048`).

use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair, UnparsedPublicKey};

use super::der;
use crate::{b64, Error, Result};

/// The body of a PEM block with `label` (`PRIVATE KEY`, `PUBLIC KEY`, `CERTIFICATE`).
pub fn pem(text: &str, label: &str) -> Result<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).ok_or(Error::Pem(label_name(label)))? + begin.len();
    let stop = text[start..]
        .find(&end)
        .ok_or(Error::Pem(label_name(label)))?
        + start;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    b64::decode(body.as_bytes()).ok_or(Error::Pem(label_name(label)))
}

fn label_name(label: &str) -> &'static str {
    match label {
        "PRIVATE KEY" => "PRIVATE KEY",
        "RSA PRIVATE KEY" => "RSA PRIVATE KEY",
        "PUBLIC KEY" => "PUBLIC KEY",
        _ => "CERTIFICATE",
    }
}

/// An RSA private key that signs (PKCS#8 `PRIVATE KEY`, as WeChat Pay's tool writes
/// `apiclient_key.pem`, or PKCS#1 `RSA PRIVATE KEY`).
pub struct PrivateKey(RsaKeyPair);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(..)")
    }
}

impl PrivateKey {
    pub fn from_pem(text: &str) -> Result<Self> {
        let key = if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
            RsaKeyPair::from_der(&pem(text, "RSA PRIVATE KEY")?)
        } else {
            RsaKeyPair::from_pkcs8(&pem(text, "PRIVATE KEY")?)
        };
        key.map(PrivateKey)
            .map_err(|_| Error::Key("not an RSA private key"))
    }

    /// The base64 RSA-SHA256 (PKCS#1 v1.5) signature of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        let mut sig = vec![0; self.0.public().modulus_len()];
        // Fails only for a key ring could not have loaded.
        let signed = self.0.sign(
            &signature::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            message,
            &mut sig,
        );
        match signed {
            Ok(()) => b64::encode(&sig),
            Err(_) => String::new(),
        }
    }
}

/// An RSA public key that verifies WeChat Pay's (or a merchant's) signatures.
#[derive(Clone)]
pub struct PublicKey(Vec<u8>);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PublicKey(..)")
    }
}

impl PublicKey {
    /// From a `PUBLIC KEY` PEM (SubjectPublicKeyInfo), as WeChat Pay hands out its
    /// public key.
    pub fn from_pem(text: &str) -> Result<Self> {
        Self::from_spki(&pem(text, "PUBLIC KEY")?)
    }

    pub fn from_spki(spki: &[u8]) -> Result<Self> {
        Ok(PublicKey(der::rsa_public_key(spki)?.to_vec()))
    }

    /// Whether `signature` (base64) is this key's RSA-SHA256 signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &str) -> bool {
        let Some(sig) = b64::decode(signature.trim().as_bytes()) else {
            return false;
        };
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.0)
            .verify(message, &sig)
            .is_ok()
    }
}

/// A platform certificate: the serial WeChat Pay names it by, its validity and key.
#[derive(Debug, Clone)]
pub struct Certificate {
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
    pub key: PublicKey,
}

impl Certificate {
    pub fn from_pem(text: &str) -> Result<Self> {
        Self::from_der(&pem(text, "CERTIFICATE")?)
    }

    pub fn from_der(der: &[u8]) -> Result<Self> {
        let fields = der::certificate(der)?;
        Ok(Certificate {
            key: PublicKey::from_spki(fields.spki)?,
            serial: fields.serial,
            not_before: fields.not_before,
            not_after: fields.not_after,
        })
    }
}
