//! WXBizMsgCrypt: the AES encryption of pushes and replies in safe and compatible mode.
//!
//! - The AES key is `base64_decode(EncodingAESKey + "=")`: 32 bytes; the IV is its first 16.
//! - The plaintext is `random(16) ‖ msg_len (4 bytes, big endian) ‖ msg ‖ appid`, padded
//!   with PKCS#7 to a 32-byte block (so a pad byte is 1..=32, not 1..=16), then encrypted
//!   with AES-256-CBC and base64-encoded into `Encrypt`.
//! - `msg_signature` signs `Encrypt` together with token, timestamp and nonce
//!   ([`crate::signature::msg_signature`]).
//!
//! The same scheme carries XML and JSON pushes alike: this module deals in bytes.

use aes::cipher::{
    block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyInit,
};
use subtle::ConstantTimeEq;

use crate::signature::{msg_signature, verify_msg_signature};
use crate::{Error, Result};

/// The PKCS#7 block WXBizMsgCrypt pads to.
pub const MSG_BLOCK: usize = 32;

/// Decodes base64 the way WeChat's samples do (see [`crate::b64`]); `what` names the
/// field in the error.
pub fn base64_decode(input: &str, what: &'static str) -> Result<Vec<u8>> {
    crate::b64::decode(input.trim().as_bytes()).ok_or(Error::Base64(what))
}

/// Standard base64 with padding, as WeChat sends it.
pub fn base64_encode(bytes: &[u8]) -> String {
    crate::b64::encode(bytes)
}

/// Pads to a multiple of `block` with PKCS#7 (a full block when already aligned).
pub fn pkcs7_pad(data: &mut Vec<u8>, block: usize) {
    let pad = block - data.len() % block;
    data.extend(std::iter::repeat_n(pad as u8, pad));
}

/// Strips PKCS#7 padding for `block`, checking every pad byte.
pub fn pkcs7_unpad(data: &[u8], block: usize) -> Result<&[u8]> {
    let pad = *data.last().ok_or(Error::Padding)? as usize;
    if pad == 0 || pad > block || pad > data.len() {
        return Err(Error::Padding);
    }
    let (body, padding) = data.split_at(data.len() - pad);
    if padding.iter().any(|&b| b as usize != pad) {
        return Err(Error::Padding);
    }
    Ok(body)
}

/// The 32-byte AES key behind an `EncodingAESKey`, with its AES round keys expanded once
/// (expanding them for every push and reply cost more than the AES itself).
#[derive(Clone)]
pub struct EncodingAesKey {
    key: [u8; 32],
    cipher: aes::Aes256,
}

impl PartialEq for EncodingAesKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for EncodingAesKey {}

impl std::fmt::Debug for EncodingAesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncodingAesKey(<redacted>)")
    }
}

impl EncodingAesKey {
    /// Parses the 43-character `EncodingAESKey` of the account's settings.
    pub fn parse(encoding_aes_key: &str) -> Result<Self> {
        if encoding_aes_key.len() != 43 {
            return Err(Error::InvalidAesKey("must be exactly 43 characters"));
        }
        if !encoding_aes_key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        {
            return Err(Error::InvalidAesKey(
                "must use only base64 characters A-Z a-z 0-9 + /",
            ));
        }
        let bytes = crate::b64::decode(encoding_aes_key.as_bytes())
            .ok_or(Error::InvalidAesKey("is not valid base64"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::InvalidAesKey("does not decode to 32 bytes"))?;
        Ok(EncodingAesKey {
            cipher: aes::Aes256::new(&key.into()),
            key,
        })
    }

    /// The raw AES-256 key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.key[..16]);
        iv
    }

    fn cbc_encryptor(&self) -> Aes256CbcEnc {
        Aes256CbcEnc::inner_iv_init(self.cipher.clone(), &self.iv().into())
    }

    fn cbc_decryptor(&self) -> Aes256CbcDec {
        Aes256CbcDec::inner_iv_init(self.cipher.clone(), &self.iv().into())
    }
}

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// Encrypts a message for `appid` with the given 16 random bytes and returns `Encrypt`.
pub fn encrypt_with_random(
    key: &EncodingAesKey,
    appid: &str,
    message: &[u8],
    random16: &[u8; 16],
) -> String {
    let mut full = Vec::with_capacity(20 + message.len() + appid.len() + MSG_BLOCK);
    full.extend_from_slice(random16);
    full.extend_from_slice(&(message.len() as u32).to_be_bytes());
    full.extend_from_slice(message);
    full.extend_from_slice(appid.as_bytes());
    pkcs7_pad(&mut full, MSG_BLOCK);
    let len = full.len();
    let cipher = key.cbc_encryptor();
    // Length is a block multiple by construction, so NoPadding cannot fail.
    let out = cipher
        .encrypt_padded_mut::<NoPadding>(&mut full, len)
        .expect("block-aligned buffer");
    base64_encode(out)
}

/// Encrypts with 16 random bytes from the operating system.
pub fn encrypt(key: &EncodingAesKey, appid: &str, message: &[u8]) -> String {
    encrypt_with_random(key, appid, message, &rand::random())
}

/// What a decrypted `Encrypt` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The 16 random bytes the sender chose.
    pub random: [u8; 16],
    /// The message (XML or JSON).
    pub message: String,
    /// The appid the sender put after the message.
    pub appid: String,
}

/// Decrypts `Encrypt` without checking the appid.
pub fn decrypt_unchecked(key: &EncodingAesKey, encrypt: &str) -> Result<Decrypted> {
    let mut data = base64_decode(encrypt, "Encrypt")?;
    if data.is_empty() || data.len() % 16 != 0 {
        return Err(Error::CiphertextLength(data.len()));
    }
    let cipher = key.cbc_decryptor();
    let plain = cipher
        .decrypt_padded_mut::<NoPadding>(&mut data)
        .map_err(|_| Error::Padding)?;
    let plain = pkcs7_unpad(plain, MSG_BLOCK)?;
    if plain.len() < 20 {
        return Err(Error::MessageLength);
    }
    let msg_len = u32::from_be_bytes([plain[16], plain[17], plain[18], plain[19]]) as usize;
    if msg_len > plain.len() - 20 {
        return Err(Error::MessageLength);
    }
    let mut random = [0u8; 16];
    random.copy_from_slice(&plain[..16]);
    let appid = std::str::from_utf8(&plain[20 + msg_len..])
        .map_err(|_| Error::Utf8)?
        .to_owned();
    // The message stays in the decrypted buffer: moved to its front, not copied out.
    data.truncate(20 + msg_len);
    data.drain(..20);
    Ok(Decrypted {
        random,
        message: String::from_utf8(data).map_err(|_| Error::Utf8)?,
        appid,
    })
}

/// Decrypts `Encrypt` and checks that it was sent for `appid`.
pub fn decrypt(key: &EncodingAesKey, appid: &str, encrypt: &str) -> Result<Decrypted> {
    let d = decrypt_unchecked(key, encrypt)?;
    let same =
        d.appid.len() == appid.len() && bool::from(d.appid.as_bytes().ct_eq(appid.as_bytes()));
    if !same {
        return Err(Error::AppIdMismatch { actual: d.appid });
    }
    Ok(d)
}

/// One account's message crypto: token, `EncodingAESKey` and appid together, as the
/// WXBizMsgCrypt class of WeChat's samples holds them.
#[derive(Clone, Debug)]
pub struct MsgCrypt {
    token: String,
    key: EncodingAesKey,
    appid: String,
}

/// An encrypted message with its signature, ready for the reply envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub encrypt: String,
    pub msg_signature: String,
    pub timestamp: String,
    pub nonce: String,
}

impl MsgCrypt {
    pub fn new(token: &str, encoding_aes_key: &str, appid: &str) -> Result<Self> {
        Ok(MsgCrypt {
            token: token.to_owned(),
            key: EncodingAesKey::parse(encoding_aes_key)?,
            appid: appid.to_owned(),
        })
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn appid(&self) -> &str {
        &self.appid
    }

    pub fn key(&self) -> &EncodingAesKey {
        &self.key
    }

    /// Checks `msg_signature` over `Encrypt`, then decrypts it and checks the appid.
    pub fn open(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
    ) -> Result<String> {
        if !verify_msg_signature(&self.token, timestamp, nonce, encrypt, msg_signature) {
            return Err(Error::SignatureMismatch);
        }
        Ok(decrypt(&self.key, &self.appid, encrypt)?.message)
    }

    /// Encrypts and signs a message with the given random bytes.
    pub fn seal_with_random(
        &self,
        message: &str,
        timestamp: &str,
        nonce: &str,
        random16: &[u8; 16],
    ) -> Sealed {
        let encrypt = encrypt_with_random(&self.key, &self.appid, message.as_bytes(), random16);
        let msg_signature = msg_signature(&self.token, timestamp, nonce, &encrypt);
        Sealed {
            encrypt,
            msg_signature,
            timestamp: timestamp.to_owned(),
            nonce: nonce.to_owned(),
        }
    }

    /// Encrypts and signs a message with random bytes from the operating system.
    pub fn seal(&self, message: &str, timestamp: &str, nonce: &str) -> Sealed {
        self.seal_with_random(message, timestamp, nonce, &rand::random())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs7_every_length() {
        for block in [16usize, 32] {
            for len in 0..(3 * block) {
                let mut v = vec![0xAAu8; len];
                pkcs7_pad(&mut v, block);
                assert_eq!(v.len() % block, 0);
                assert!(v.len() > len && v.len() <= len + block);
                assert_eq!(pkcs7_unpad(&v, block).unwrap().len(), len);
            }
        }
    }

    #[test]
    fn pkcs7_rejects_bad_padding() {
        assert_eq!(pkcs7_unpad(&[], 32), Err(Error::Padding));
        assert_eq!(pkcs7_unpad(&[1, 2, 0], 32), Err(Error::Padding));
        assert_eq!(pkcs7_unpad(&[3, 2, 3], 32), Err(Error::Padding));
        assert_eq!(pkcs7_unpad(&[33; 33], 32), Err(Error::Padding));
        assert_eq!(pkcs7_unpad(&[17; 17], 16), Err(Error::Padding));
        assert_eq!(pkcs7_unpad(&[5; 4], 32), Err(Error::Padding));
    }

    #[test]
    fn aes_key_length_and_alphabet() {
        assert!(EncodingAesKey::parse("abc").is_err());
        assert!(EncodingAesKey::parse(&"A".repeat(44)).is_err());
        assert!(EncodingAesKey::parse(&format!("{}=", "A".repeat(42))).is_err());
        assert!(EncodingAesKey::parse(&"A".repeat(43)).is_ok());
        let k = EncodingAesKey::parse(&"A".repeat(43)).unwrap();
        assert_eq!(k.as_bytes(), &[0u8; 32]);
        assert!(!format!("{k:?}").contains('0'));
    }

    #[test]
    fn round_trip_every_length() {
        let key = EncodingAesKey::parse("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").unwrap();
        for len in 0..200 {
            let msg: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let enc = encrypt(&key, "wxappid", &msg);
            let d = decrypt(&key, "wxappid", &enc).unwrap();
            assert_eq!(d.message.as_bytes(), &msg[..]);
            assert!(matches!(
                decrypt(&key, "wxother", &enc),
                Err(Error::AppIdMismatch { .. })
            ));
        }
    }
}
