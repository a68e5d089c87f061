//! The JS-SDK `wx.config` signature (JS-SDK 附录1).
//!
//! `signature = sha1("jsapi_ticket=T&noncestr=N&timestamp=TS&url=U")`: the four fields in
//! that order, raw (not URL-encoded) values, and the page URL without its `#fragment`.
//! A wrong URL is the usual cause of `config:invalid signature`, so [`string_to_sign`] is
//! public for debugging output.

use rand::RngCore;
use sha1::{Digest, Sha1};

use crate::signature::{digest_matches, hex};

/// The page URL as WeChat signs it: everything before the first `#`.
pub fn signed_url(url: &str) -> &str {
    url.split('#').next().unwrap_or(url)
}

/// The exact string that is hashed.
pub fn string_to_sign(jsapi_ticket: &str, noncestr: &str, timestamp: &str, url: &str) -> String {
    format!(
        "jsapi_ticket={jsapi_ticket}&noncestr={noncestr}&timestamp={timestamp}&url={}",
        signed_url(url)
    )
}

/// The `wx.config` signature, lowercase hex.
pub fn signature(jsapi_ticket: &str, noncestr: &str, timestamp: &str, url: &str) -> String {
    hex(&digest(jsapi_ticket, noncestr, timestamp, url))
}

/// Whether `signature` (hex in either case) is the `wx.config` signature, in constant
/// time.
pub fn verify_signature(
    jsapi_ticket: &str,
    noncestr: &str,
    timestamp: &str,
    url: &str,
    signature: &str,
) -> bool {
    digest_matches(&digest(jsapi_ticket, noncestr, timestamp, url), signature)
}

fn digest(jsapi_ticket: &str, noncestr: &str, timestamp: &str, url: &str) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(b"jsapi_ticket=");
    h.update(jsapi_ticket.as_bytes());
    h.update(b"&noncestr=");
    h.update(noncestr.as_bytes());
    h.update(b"&timestamp=");
    h.update(timestamp.as_bytes());
    h.update(b"&url=");
    h.update(signed_url(url).as_bytes());
    h.finalize().into()
}

/// A nonce of `len` letters and digits (WeChat's examples use 16), uniformly drawn: a
/// random byte under 248 (4 × 62) picks a character, a larger one is skipped.
pub fn nonce_str(len: usize) -> String {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let mut out = String::with_capacity(len);
    let mut bytes = [0u8; 32];
    while out.len() < len {
        rng.fill_bytes(&mut bytes);
        for &b in bytes.iter().filter(|&&b| b < 248).take(len - out.len()) {
            out.push(char::from(ALPHABET[usize::from(b % 62)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::nonce_str;

    #[test]
    fn nonces_are_letters_and_digits_spread_evenly() {
        let mut counts = std::collections::HashMap::new();
        for len in [0, 1, 16, 32, 100] {
            assert_eq!(nonce_str(len).len(), len);
        }
        for _ in 0..2000 {
            for c in nonce_str(16).chars() {
                assert!(c.is_ascii_alphanumeric(), "{c:?}");
                *counts.entry(c).or_insert(0u32) += 1;
            }
        }
        // 32,000 draws over 62 characters: about 516 each; a skewed mapping (say `b % 62`
        // over every byte) would give the first 8 characters about 25% more.
        assert_eq!(counts.len(), 62);
        for (c, n) in counts {
            assert!((400..640).contains(&n), "{c:?} drawn {n} times");
        }
    }
}
