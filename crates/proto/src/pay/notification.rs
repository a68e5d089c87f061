//! What WeChat Pay sends and signs: the signed answer or notification (`Wechatpay-*`
//! headers over `"{timestamp}\n{nonce}\n{body}\n"`), the notification's JSON, and its
//! `resource` encrypted with the merchant's APIv3 key (AEAD_AES_256_GCM).

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use serde::{Deserialize, Serialize};

use super::keys::PublicKey;
use crate::{b64, Error, Result};

/// The prefix of the signature WeChat Pay puts on its deliberate probes (签名探测): a
/// merchant must refuse them, so they must never verify.
pub const SIGNTEST_PREFIX: &str = "WECHATPAY/SIGNTEST/";

/// How far a signed timestamp may be from now: WeChat Pay's rule is under 5 minutes.
pub const MAX_SKEW_SECS: i64 = 300;

/// The `Wechatpay-*` headers of a signed answer or notification.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub timestamp: &'a str,
    pub nonce: &'a str,
    pub signature: &'a str,
    /// The platform certificate's serial or the public key's `PUB_KEY_ID_...`.
    pub serial: &'a str,
}

/// `"{timestamp}\n{nonce}\n{body}\n"`: what WeChat Pay signs.
pub fn signed_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(timestamp.len() + nonce.len() + body.len() + 3);
    for part in [
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

impl Signed<'_> {
    /// Checks the signature with the key `key_for(serial)` names, refusing a probe, a
    /// timestamp [`MAX_SKEW_SECS`] or more from `now`, and an unknown serial.
    pub fn verify<'k>(
        &self,
        body: &[u8],
        now: i64,
        key_for: impl FnOnce(&str) -> Option<&'k PublicKey>,
    ) -> Result<()> {
        if self.signature.starts_with(SIGNTEST_PREFIX) {
            return Err(Error::SignTest);
        }
        let ts: i64 = self.timestamp.parse().map_err(|_| Error::InvalidField {
            field: "Wechatpay-Timestamp",
            reason: "not a number",
        })?;
        if ts.abs_diff(now) >= MAX_SKEW_SECS as u64 {
            return Err(Error::Skewed {
                by: ts.saturating_sub(now),
            });
        }
        let key = key_for(self.serial).ok_or_else(|| Error::UnknownSerial(self.serial.into()))?;
        if key.verify(
            &signed_message(self.timestamp, self.nonce, body),
            self.signature,
        ) {
            Ok(())
        } else {
            Err(Error::SignatureMismatch)
        }
    }
}

/// A notification (回调通知) as WeChat Pay posts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    pub create_time: String,
    #[serde(default)]
    pub resource_type: String,
    pub event_type: String,
    #[serde(default)]
    pub summary: String,
    pub resource: Resource,
}

/// The encrypted part of a notification (or of a downloaded certificate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    #[serde(default)]
    pub original_type: String,
    pub algorithm: String,
    pub ciphertext: String,
    #[serde(default)]
    pub associated_data: String,
    pub nonce: String,
}

/// The algorithm WeChat Pay encrypts resources with.
pub const AEAD_AES_256_GCM: &str = "AEAD_AES_256_GCM";

fn aead_key(apiv3_key: &str) -> Result<LessSafeKey> {
    let key = UnboundKey::new(&AES_256_GCM, apiv3_key.as_bytes())
        .map_err(|_| Error::Key("the APIv3 key is 32 characters"))?;
    Ok(LessSafeKey::new(key))
}

fn aead_nonce(nonce: &str) -> Result<Nonce> {
    Nonce::try_assume_unique_for_key(nonce.as_bytes()).map_err(|_| Error::InvalidField {
        field: "nonce",
        reason: "12 characters",
    })
}

impl Resource {
    /// The plaintext (JSON for a notification, a PEM for a certificate): the tag, the
    /// key and `associated_data` must all match, or nothing is returned.
    pub fn decrypt(&self, apiv3_key: &str) -> Result<String> {
        if self.algorithm != AEAD_AES_256_GCM {
            return Err(Error::InvalidField {
                field: "algorithm",
                reason: "not AEAD_AES_256_GCM",
            });
        }
        let mut data =
            b64::decode(self.ciphertext.as_bytes()).ok_or(Error::Base64("ciphertext"))?;
        let plain = aead_key(apiv3_key)?
            .open_in_place(
                aead_nonce(&self.nonce)?,
                Aad::from(self.associated_data.as_bytes()),
                &mut data,
            )
            .map_err(|_| Error::Aead)?;
        String::from_utf8(plain.to_vec()).map_err(|_| Error::Utf8)
    }

    /// Encrypts `plaintext` as WeChat Pay does (the sandbox's side, and tests).
    pub fn encrypt(
        apiv3_key: &str,
        nonce: &str,
        associated_data: &str,
        original_type: &str,
        plaintext: &str,
    ) -> Result<Resource> {
        let mut data = plaintext.as_bytes().to_vec();
        aead_key(apiv3_key)?
            .seal_in_place_append_tag(
                aead_nonce(nonce)?,
                Aad::from(associated_data.as_bytes()),
                &mut data,
            )
            .map_err(|_| Error::Aead)?;
        Ok(Resource {
            original_type: original_type.into(),
            algorithm: AEAD_AES_256_GCM.into(),
            ciphertext: b64::encode(&data),
            associated_data: associated_data.into(),
            nonce: nonce.into(),
        })
    }
}
