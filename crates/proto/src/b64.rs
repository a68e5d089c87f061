//! Base64 (RFC 4648's standard alphabet) as WeChat's samples read and write it.
//!
//! Writing is the standard, padded form. Reading is lenient the way Java's and Python's
//! decoders in Tencent's samples are, and real keys rely on it: padding may be short or
//! missing, and the stray low bits of a last character are ignored (the 43rd character
//! of an `EncodingAESKey` usually carries two). Anything else (a character outside the
//! alphabet, padding in the middle, a length no encoder makes) is refused.
//!
//! The `base64` crate's engine, configured so. A hand-written codec stood here until it
//! was measured against the crate on a push's real inputs (`benches/handwritten.rs` and
//! its note): the crate decoded a push's `Encrypt` in 133 ns against 160, and encoded a
//! reply's ciphertext in 118 ns against 145, so the crate is used.

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

/// The standard alphabet, padded on the way out, lenient on the way in.
const WECHAT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Padded standard base64.
pub fn encode(bytes: &[u8]) -> String {
    WECHAT.encode(bytes)
}

/// Leniently decoded base64 (see the module docs), or `None`.
pub fn decode(input: &[u8]) -> Option<Vec<u8>> {
    WECHAT.decode(input).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_test_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(encode(plain.as_bytes()), encoded);
            assert_eq!(decode(encoded.as_bytes()).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn lenient_where_the_samples_are() {
        assert_eq!(decode(b"Zg").unwrap(), b"f", "no padding");
        assert_eq!(decode(b"Zg=").unwrap(), b"f", "short padding");
        assert_eq!(decode(b"Zh==").unwrap(), b"f", "stray trailing bits");
        assert_eq!(decode(b"Zm9=").unwrap(), b"fo", "stray trailing bits");
    }

    #[test]
    fn refuses_what_no_encoder_writes() {
        for bad in [
            &b"Z"[..],
            b"Zm9vY",
            b"Zm9v=",
            b"Zm9v==",
            b"Z===",
            b"Zg===",
            b"Zm 9v",
            b"Zm9v\n",
            b"Zm=v",
            b"Zm9-",
            b"Zm9_",
            "Zm9é".as_bytes(),
        ] {
            assert_eq!(decode(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
