//! The two signatures WeChat puts on every push.
//!
//! `signature` = sha1 of `[token, timestamp, nonce]` sorted lexicographically and
//! concatenated; `msg_signature` adds the `Encrypt` value to the set. Both are lowercase
//! hex. Checks compare in constant time so a forger learns nothing from timing.

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.extend_from_slice(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]]);
    }
    // Bytes, then one check: pushing chars re-checks capacity and width for each.
    String::from_utf8(out).unwrap_or_default()
}

/// sha1 of the parts sorted and concatenated, as lowercase hex: WeChat's signature shape.
pub fn sorted_sha1(parts: &mut [&str]) -> String {
    parts.sort_unstable();
    let mut h = Sha1::new();
    for p in parts.iter() {
        h.update(p.as_bytes());
    }
    hex(&h.finalize())
}

/// The server signature (`signature` query parameter) over token, timestamp and nonce.
pub fn server_signature(token: &str, timestamp: &str, nonce: &str) -> String {
    sorted_sha1(&mut [token, timestamp, nonce])
}

/// The message signature (`msg_signature`) over token, timestamp, nonce and `Encrypt`.
pub fn msg_signature(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> String {
    sorted_sha1(&mut [token, timestamp, nonce, encrypt])
}

/// Constant-time equality of two strings (length is not secret).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Whether `signature` is the server signature. Case-insensitive hex, as WeChat's own
/// samples compare it.
pub fn verify_server_signature(token: &str, timestamp: &str, nonce: &str, signature: &str) -> bool {
    constant_time_eq(
        &server_signature(token, timestamp, nonce),
        &signature.to_ascii_lowercase(),
    )
}

/// Whether `signature` is the `msg_signature` of the `Encrypt` value.
pub fn verify_msg_signature(
    token: &str,
    timestamp: &str,
    nonce: &str,
    encrypt: &str,
    signature: &str,
) -> bool {
    constant_time_eq(
        &msg_signature(token, timestamp, nonce, encrypt),
        &signature.to_ascii_lowercase(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }

    #[test]
    fn constant_time_eq_cases() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
