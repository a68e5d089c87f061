//! Base64 (RFC 4648's standard alphabet) as WeChat's samples read and write it.
//!
//! Writing is the standard, padded form. Reading is lenient the way Java's and Python's
//! decoders in Tencent's samples are, and real keys rely on it: padding may be short or
//! missing, and the stray low bits of a last character are ignored (the 43rd character
//! of an `EncodingAESKey` usually carries two). Anything else (a character outside the
//! alphabet, padding in the middle, a length no encoder makes) is refused.
//!
//! Written here rather than taken from the `base64` crate's general engine, which spent
//! about 10 instructions a character on a push's `Encrypt`: a table lookup per
//! character with one validity check per block does the same in about a third.

/// The alphabet, by 6-bit value.
const ENCODE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A character's 6-bit value, or `INVALID`.
const DECODE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[ENCODE[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Marks a byte outside the alphabet: its high bit is what the decoder checks.
const INVALID: u8 = 0xff;

/// Padded standard base64.
pub fn encode(bytes: &[u8]) -> String {
    // Written into a buffer of the final size: pushing each group (a capacity check and
    // a copy) cost as much as encoding it. Six bytes (eight characters) a step while
    // they last, then three.
    let mut out = vec![b'='; bytes.len().div_ceil(3) * 4];
    let sextet = |n: u64, shift: u32| ENCODE[((n >> shift) & 63) as usize];
    let wide = bytes.len() / 6;
    for (c, o) in bytes
        .chunks_exact(6)
        .zip(out.chunks_exact_mut(8))
        .take(wide)
    {
        let n = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], 0, 0]);
        o.copy_from_slice(&[
            sextet(n, 58),
            sextet(n, 52),
            sextet(n, 46),
            sextet(n, 40),
            sextet(n, 34),
            sextet(n, 28),
            sextet(n, 22),
            sextet(n, 16),
        ]);
    }
    let (rest, out_rest) = (&bytes[wide * 6..], &mut out[wide * 8..]);
    let chunks = rest.chunks_exact(3);
    let tail = chunks.remainder();
    let mut groups = out_rest.chunks_exact_mut(4);
    for (c, o) in chunks.zip(&mut groups) {
        let n = u64::from(c[0]) << 16 | u64::from(c[1]) << 8 | u64::from(c[2]);
        o.copy_from_slice(&[sextet(n, 18), sextet(n, 12), sextet(n, 6), sextet(n, 0)]);
    }
    if let Some(o) = groups.next() {
        // The last group: one or two bytes, the rest of it already `=`.
        let n = tail
            .iter()
            .enumerate()
            .fold(0u64, |n, (i, &b)| n | u64::from(b) << (16 - 8 * i));
        for (i, slot) in o.iter_mut().take(tail.len() + 1).enumerate() {
            *slot = sextet(n, 18 - 6 * i as u32);
        }
    }
    // Every byte written is from the ASCII alphabet or `=`.
    String::from_utf8(out).unwrap_or_default()
}

/// Leniently decoded base64 (see the module docs), or `None`.
pub fn decode(input: &[u8]) -> Option<Vec<u8>> {
    let unpadded = match input {
        [rest @ .., b'=', b'='] => rest,
        [rest @ .., b'='] => rest,
        _ => input,
    };
    let pads = input.len() - unpadded.len();
    // A final group of one character encodes no whole byte, and padding never follows a
    // complete group or makes a group longer than four.
    let tail = unpadded.len() % 4;
    if tail == 1 || (pads > 0 && (tail == 0 || tail + pads > 4)) {
        return None;
    }
    let whole = unpadded.len() / 4;
    let mut out = vec![0u8; whole * 3 + tail.saturating_sub(1)];
    let mut bad = 0u8;
    // Eight characters (six bytes) a step while they last, then four; one check of
    // every value's high bit at the end.
    let wide = whole / 2;
    for (c, o) in unpadded
        .chunks_exact(8)
        .zip(out.chunks_exact_mut(6))
        .take(wide)
    {
        let mut n = 0u64;
        for &ch in c {
            let v = DECODE[ch as usize];
            bad |= v;
            n = n << 6 | u64::from(v & 63);
        }
        o.copy_from_slice(&n.to_be_bytes()[2..]);
    }
    let (rest, out_rest) = (&unpadded[wide * 8..], &mut out[wide * 6..]);
    let (body, last) = out_rest.split_at_mut((whole - wide * 2) * 3);
    for (c, o) in rest.chunks_exact(4).zip(body.chunks_exact_mut(3)) {
        let (a, b, c, d) = (
            DECODE[c[0] as usize],
            DECODE[c[1] as usize],
            DECODE[c[2] as usize],
            DECODE[c[3] as usize],
        );
        bad |= a | b | c | d;
        let n = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
        o.copy_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    // Two or three characters left: one or two bytes, their stray low bits ignored.
    let mut n = 0u32;
    for (i, &ch) in rest[rest.len() / 4 * 4..].iter().enumerate() {
        let v = DECODE[ch as usize];
        bad |= v;
        n |= u32::from(v) << (18 - 6 * i);
    }
    for (i, o) in last.iter_mut().enumerate() {
        *o = (n >> (16 - 8 * i)) as u8;
    }
    (bad & 0x80 == 0).then_some(out)
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
