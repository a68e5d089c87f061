//! The two signatures WeChat puts on every push.
//!
//! `signature` = sha1 of `[token, timestamp, nonce]` sorted lexicographically and
//! concatenated; `msg_signature` adds the `Encrypt` value to the set. Both are lowercase
//! hex. Checks compare in constant time so a forger learns nothing from timing.

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

/// Appends the lowercase hex of bytes (a key built in one allocation).
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(32) {
        for (i, b) in chunk.iter().enumerate() {
            buf[2 * i] = DIGITS[usize::from(b >> 4)];
            buf[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
        }
        // ASCII digits: always UTF-8; one check a chunk rather than one a char.
        out.push_str(std::str::from_utf8(&buf[..2 * chunk.len()]).unwrap_or_default());
    }
}

/// sha1 of the parts sorted and concatenated, as lowercase hex: WeChat's signature shape.
pub fn sorted_sha1(parts: &mut [&str]) -> String {
    hex(&sorted_digest(parts))
}

fn sorted_digest(parts: &mut [&str]) -> [u8; 20] {
    // WeChat signs three or four parts: an insertion sort, which at that size costs less
    // than the general sort's set-up.
    if parts.len() > 8 {
        parts.sort_unstable();
    } else {
        for i in 1..parts.len() {
            let mut j = i;
            while j > 0 && parts[j] < parts[j - 1] {
                parts.swap(j, j - 1);
                j -= 1;
            }
        }
    }
    let mut h = Sha1::new();
    for p in parts.iter() {
        h.update(p.as_bytes());
    }
    h.finalize().into()
}

/// A hex digit's value (either case), or `0xff`: one lookup a digit, one check of the
/// high bits at the end.
const HEX_VALUE: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Whether `signature` (40 hex digits, either case) spells the SHA-1 `digest`, compared
/// in constant time: how every WeChat SHA-1 signature is checked. Compares bytes rather
/// than hex strings: a push checks two signatures, and the strings cost four allocations.
pub fn digest_matches(digest: &[u8; 20], signature: &str) -> bool {
    let hex = signature.as_bytes();
    if hex.len() != 40 {
        return false;
    }
    let mut given = [0u8; 20];
    let mut bad = 0u8;
    for (byte, pair) in given.iter_mut().zip(hex.chunks_exact(2)) {
        let (hi, lo) = (
            HEX_VALUE[usize::from(pair[0])],
            HEX_VALUE[usize::from(pair[1])],
        );
        bad |= hi | lo;
        *byte = hi << 4 | (lo & 0xf);
    }
    bad & 0x80 == 0 && bool::from(digest.ct_eq(&given))
}

/// The server signature (`signature` query parameter) over token, timestamp and nonce.
pub fn server_signature(token: &str, timestamp: &str, nonce: &str) -> String {
    sorted_sha1(&mut [token, timestamp, nonce])
}

/// The message signature (`msg_signature`) over token, timestamp, nonce and `Encrypt`.
pub fn msg_signature(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> String {
    sorted_sha1(&mut [token, timestamp, nonce, encrypt])
}

/// Whether `signature` is the server signature. Case-insensitive hex, as WeChat's own
/// samples compare it.
pub fn verify_server_signature(token: &str, timestamp: &str, nonce: &str, signature: &str) -> bool {
    digest_matches(&sorted_digest(&mut [token, timestamp, nonce]), signature)
}

/// Whether `signature` is the `msg_signature` of the `Encrypt` value.
pub fn verify_msg_signature(
    token: &str,
    timestamp: &str,
    nonce: &str,
    encrypt: &str,
    signature: &str,
) -> bool {
    digest_matches(
        &sorted_digest(&mut [token, timestamp, nonce, encrypt]),
        signature,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_signed_in_sorted_order_whatever_their_order() {
        let parts = ["b", "ab", "a", "", "ba"];
        let mut sorted = parts;
        sorted.sort_unstable();
        let expected = sha1::Sha1::digest(sorted.concat().as_bytes());
        // Every rotation and its reverse, three to five parts (the last beyond WeChat's).
        for n in 3..=parts.len() {
            for r in 0..n {
                let mut p: Vec<&str> = parts[..n].to_vec();
                p.rotate_left(r);
                let mut want: Vec<&str> = p.clone();
                want.sort_unstable();
                let digest = sha1::Sha1::digest(want.concat().as_bytes());
                assert_eq!(sorted_digest(&mut p.clone())[..], digest[..]);
                p.reverse();
                assert_eq!(sorted_digest(&mut p)[..], digest[..]);
            }
        }
        assert_eq!(sorted_digest(&mut parts.clone())[..], expected[..]);
        let mut many: Vec<String> = (0..20).rev().map(|i| format!("{i:02}")).collect();
        let mut refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let digest = sorted_digest(&mut refs);
        many.sort();
        assert_eq!(digest[..], sha1::Sha1::digest(many.concat().as_bytes())[..]);
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }

    #[test]
    fn verification_takes_either_case_and_nothing_else() {
        // WeChat's documented GET verification example.
        let (token, ts, nonce) = ("AAAAA", "1714036504", "1514711492");
        let sig = "f464b24fc39322e44b38aa78f5edd27bd1441696";
        assert!(verify_server_signature(token, ts, nonce, sig));
        assert!(verify_server_signature(
            token,
            ts,
            nonce,
            &sig.to_uppercase()
        ));
        for bad in [
            "",
            &sig[..38],
            &format!("{sig}00"),
            "f464b24fc39322e44b38aa78f5edd27bd144169g",
            "f464b24fc39322e44b38aa78f5edd27bd1441697",
            " 464b24fc39322e44b38aa78f5edd27bd1441696",
            "+464b24fc39322e44b38aa78f5edd27bd1441696",
        ] {
            assert!(!verify_server_signature(token, ts, nonce, bad), "{bad:?}");
        }
        // Every byte but a hex digit, in every position, is refused.
        let digits: Vec<u8> = (b'0'..=b'9')
            .chain(b'a'..=b'f')
            .chain(b'A'..=b'F')
            .collect();
        for b in (0u8..0x80).filter(|b| !digits.contains(b)) {
            for at in [0, 1, 20, 39] {
                let mut forged = sig.as_bytes().to_vec();
                forged[at] = b;
                let forged = String::from_utf8(forged).unwrap();
                assert!(
                    !verify_server_signature(token, ts, nonce, &forged),
                    "{forged:?}"
                );
            }
        }
        let non_ascii = format!("é{}", &sig[2..]);
        assert!(!verify_server_signature(token, ts, nonce, &non_ascii));
        let enc = "some Encrypt value";
        let msg_sig = msg_signature(token, ts, nonce, enc);
        assert!(verify_msg_signature(token, ts, nonce, enc, &msg_sig));
        assert!(!verify_msg_signature(token, ts, nonce, "other", &msg_sig));
    }
}
