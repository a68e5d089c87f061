//! Mini Program open data: the `rawData` signature and `encryptedData` decryption
//! (开放数据校验与解密).
//!
//! - `signature = sha1(rawData + session_key)`, `session_key` as its base64 text.
//! - `encryptedData` is AES-128-CBC with key = base64_decode(session_key) and
//!   iv = base64_decode(iv), PKCS#7 to a 16-byte block; the JSON inside carries a
//!   `watermark.appid` that must be the Mini Program's own.

use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use sha1::{Digest, Sha1};

use crate::crypto::{base64_decode, base64_encode, pkcs7_pad, pkcs7_unpad};
use crate::signature::{digest_matches, hex};
use crate::{Error, Result};

type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;
type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;

/// `sha1(rawData + session_key)`, lowercase hex.
pub fn raw_data_signature(raw_data: &str, session_key: &str) -> String {
    hex(&raw_data_digest(raw_data, session_key))
}

fn raw_data_digest(raw_data: &str, session_key: &str) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(raw_data.as_bytes());
    h.update(session_key.as_bytes());
    h.finalize().into()
}

/// Whether `signature` signs `raw_data` with `session_key` (hex in either case), in
/// constant time.
/// The user login-state signature (用户登录态签名) some server APIs take:
/// `hmac_sha256(post_data, session_key)`, the key being the session_key as written
/// (base64 text), lowercase hex; a GET signs the empty string.
pub fn session_signature(session_key: &str, post_data: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(session_key.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(post_data);
    hex(&mac.finalize().into_bytes())
}

pub fn verify_raw_data(raw_data: &str, session_key: &str, signature: &str) -> bool {
    digest_matches(&raw_data_digest(raw_data, session_key), signature)
}

fn key16(b64: &str, err: Error) -> Result<[u8; 16]> {
    base64_decode(b64, "key")
        .ok()
        .and_then(|v| <[u8; 16]>::try_from(v).ok())
        .ok_or(err)
}

/// Decrypts `encryptedData` to its JSON text without looking at the watermark.
pub fn decrypt_unchecked(session_key: &str, iv: &str, encrypted_data: &str) -> Result<String> {
    let key = key16(session_key, Error::InvalidSessionKey)?;
    let iv = key16(iv, Error::InvalidIv)?;
    let mut data = base64_decode(encrypted_data, "encryptedData")?;
    if data.is_empty() || data.len() % 16 != 0 {
        return Err(Error::CiphertextLength(data.len()));
    }
    let plain = Aes128CbcDec::new(&key.into(), &iv.into())
        .decrypt_padded_mut::<NoPadding>(&mut data)
        .map_err(|_| Error::Padding)?;
    let plain = pkcs7_unpad(plain, 16)?;
    String::from_utf8(plain.to_vec()).map_err(|_| Error::Utf8)
}

/// Decrypted open data: the JSON text exactly as WeChat encrypted it, and parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenData {
    pub text: String,
    pub value: serde_json::Value,
}

/// Decrypts `encryptedData` and checks that its watermark names `appid`.
pub fn decrypt(session_key: &str, iv: &str, encrypted_data: &str, appid: &str) -> Result<OpenData> {
    let text = decrypt_unchecked(session_key, iv, encrypted_data)?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::Json(e.to_string()))?;
    let actual = value
        .get("watermark")
        .and_then(|w| w.get("appid"))
        .and_then(|a| a.as_str())
        .ok_or(Error::MissingField("watermark.appid"))?;
    if actual != appid {
        return Err(Error::WatermarkMismatch {
            actual: actual.to_owned(),
        });
    }
    Ok(OpenData { text, value })
}

/// Encrypts JSON as WeChat does for `encryptedData` (the sandbox plays WeChat with it).
pub fn encrypt(session_key: &str, iv: &str, plaintext: &str) -> Result<String> {
    let key = key16(session_key, Error::InvalidSessionKey)?;
    let iv = key16(iv, Error::InvalidIv)?;
    let mut data = plaintext.as_bytes().to_vec();
    pkcs7_pad(&mut data, 16);
    let len = data.len();
    let out = Aes128CbcEnc::new(&key.into(), &iv.into())
        .encrypt_padded_mut::<NoPadding>(&mut data, len)
        .expect("block-aligned buffer");
    Ok(base64_encode(out))
}
