//! Just enough DER to read what WeChat Pay hands out: an RSA public key in its
//! SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`, WeChat Pay's public key) and an
//! X.509 certificate's serial number, validity and key (the platform certificates).
//! Anything else is refused; nothing here allocates for the input's sake.

use crate::{Error, Result};

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const VERSION: u8 = 0xa0;
/// rsaEncryption, 1.2.840.113549.1.1.1.
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

fn bad(what: &'static str) -> Error {
    Error::Der(what)
}

/// One element: its tag, its contents and what follows it.
fn element(input: &[u8]) -> Result<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first().ok_or(bad("truncated"))?;
    let (&first, rest) = rest.split_first().ok_or(bad("truncated"))?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad("length"));
        }
        let len = rest[..n].iter().fold(0usize, |l, &b| l << 8 | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(bad("truncated"));
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// The contents of an element that must have `tag`, and what follows it.
fn expect<'a>(input: &'a [u8], tag: u8, what: &'static str) -> Result<(&'a [u8], &'a [u8])> {
    match element(input)? {
        (t, contents, rest) if t == tag => Ok((contents, rest)),
        _ => Err(bad(what)),
    }
}

/// The RSAPublicKey (PKCS#1) inside a SubjectPublicKeyInfo, which is what an RSA
/// verifier takes.
pub fn rsa_public_key(spki: &[u8]) -> Result<&[u8]> {
    let (info, _) = expect(spki, SEQUENCE, "SubjectPublicKeyInfo")?;
    let (algorithm, rest) = expect(info, SEQUENCE, "algorithm")?;
    let (oid, _) = expect(algorithm, OID, "algorithm")?;
    if oid != RSA_ENCRYPTION {
        return Err(bad("not an RSA key"));
    }
    let (bits, _) = expect(rest, BIT_STRING, "public key")?;
    match bits.split_first() {
        Some((0, key)) => Ok(key),
        _ => Err(bad("public key")),
    }
}

/// What a certificate says that WeChat Pay's rules use.
pub struct CertificateFields<'a> {
    /// The serial number as WeChat Pay writes it (`Wechatpay-Serial`): upper-case hex
    /// without leading zeros.
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
    /// The SubjectPublicKeyInfo.
    pub spki: &'a [u8],
}

/// Reads an X.509 certificate's serial, validity and key.
pub fn certificate(der: &[u8]) -> Result<CertificateFields<'_>> {
    let (cert, _) = expect(der, SEQUENCE, "Certificate")?;
    let (tbs, _) = expect(cert, SEQUENCE, "TBSCertificate")?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION) {
        rest = element(rest)?.2;
    }
    let (serial, rest) = expect(rest, INTEGER, "serialNumber")?;
    let (_signature, rest) = expect(rest, SEQUENCE, "signature")?;
    let (_issuer, rest) = expect(rest, SEQUENCE, "issuer")?;
    let (validity, rest) = expect(rest, SEQUENCE, "validity")?;
    let (_subject, rest) = expect(rest, SEQUENCE, "subject")?;
    let (tag, _, _) = element(rest)?;
    if tag != SEQUENCE {
        return Err(bad("subjectPublicKeyInfo"));
    }
    let spki_len = rest.len() - element(rest)?.2.len();
    let (not_before, after) = time(validity)?;
    let (not_after, _) = time(after)?;
    let digits: String = serial.iter().map(|b| format!("{b:02X}")).collect();
    let serial = digits.trim_start_matches('0');
    Ok(CertificateFields {
        serial: if serial.is_empty() {
            "0".into()
        } else {
            serial.into()
        },
        not_before,
        not_after,
        spki: &rest[..spki_len],
    })
}

/// A UTCTime or GeneralizedTime (`Z` only, as certificates write them) as Unix seconds.
fn time(input: &[u8]) -> Result<(i64, &[u8])> {
    let (tag, text, rest) = element(input)?;
    let text = std::str::from_utf8(text).map_err(|_| bad("time"))?;
    let digits = text.strip_suffix('Z').ok_or(bad("time"))?;
    let (year, rest_digits) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy: i64 = digits[..2].parse().map_err(|_| bad("time"))?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &digits[2..])
        }
        (GENERALIZED_TIME, 14) => (digits[..4].parse().map_err(|_| bad("time"))?, &digits[4..]),
        _ => return Err(bad("time")),
    };
    let field =
        |i: usize| -> Result<i64> { rest_digits[i..i + 2].parse().map_err(|_| bad("time")) };
    let (month, day, hour, minute, second) =
        (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(bad("time"));
    }
    Ok((
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second,
        rest,
    ))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 12, 7), 20_794);
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        assert!(element(&[]).is_err());
        assert!(element(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
        assert!(element(&[0x30, 0x05, 1]).is_err());
        assert!(rsa_public_key(&[0x30, 0x00]).is_err());
        assert!(certificate(b"not DER").is_err());
    }
}
