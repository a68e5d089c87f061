//! The console's login: the admin key from the config, traded for a signed session
//! cookie, and a CSRF token for every request that changes something.
//!
//! The cookie is `v1.{expiry}.{nonce}.{mac}`, the MAC (HMAC-SHA256) keyed by a key
//! derived from the admin key, so every instance of a fleet accepts it and changing the
//! admin key ends every session. Nothing is stored but logouts: a logout writes the
//! session's nonce into the store until the cookie would have expired, and every
//! instance refuses a cookie whose nonce is there. The CSRF token is a second MAC over
//! the cookie: a page of the console reads it from `/console/api/overview` and sends it
//! back in `X-Wxgate-Csrf`; another site can neither read it nor (SameSite=Strict) make
//! the browser send the cookie.

use crate::util::{ct_eq, hmac_hex};

/// The session cookie's name.
pub const COOKIE: &str = "wxgate_console";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-wxgate-csrf";

pub struct Keys {
    mac_key: [u8; 32],
    /// SHA-256 of the admin key: what a login is compared with (in constant time).
    admin_digest: String,
}

impl Keys {
    pub fn new(admin_key: &str) -> Keys {
        use sha2::{Digest, Sha256};
        let mac_key: [u8; 32] = Sha256::new()
            .chain_update(b"wxgate console session\0")
            .chain_update(admin_key.as_bytes())
            .finalize()
            .into();
        let admin_digest = wxgate_proto::signature::hex(&Sha256::digest(admin_key.as_bytes()));
        Keys {
            mac_key,
            admin_digest,
        }
    }

    /// Whether `offered` is the admin key. Both sides are hashed first, so the time
    /// taken says nothing about the key's length either.
    pub fn is_admin_key(&self, offered: &str) -> bool {
        use sha2::{Digest, Sha256};
        let digest = wxgate_proto::signature::hex(&Sha256::digest(offered.as_bytes()));
        ct_eq(&digest, &self.admin_digest)
    }

    /// A new session cookie value, good until `expiry` (unix seconds).
    pub fn issue(&self, expiry: i64) -> String {
        let nonce = crate::util::random_id();
        let mac = self.mac(expiry, &nonce);
        format!("v1.{expiry}.{nonce}.{mac}")
    }

    /// Whether `value` is a cookie this key issued and `now` is before its expiry.
    pub fn verify(&self, value: &str, now: i64) -> bool {
        self.verified(value, now).is_some()
    }

    /// The expiry and nonce of `value` if it is a cookie this key issued and `now` is
    /// before its expiry. The nonce names the session, for revoking it at logout.
    pub fn verified<'a>(&self, value: &'a str, now: i64) -> Option<(i64, &'a str)> {
        let mut parts = value.split('.');
        let (Some("v1"), Some(expiry), Some(nonce), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let expiry = expiry.parse::<i64>().ok()?;
        (ct_eq(mac, &self.mac(expiry, nonce)) && now < expiry).then_some((expiry, nonce))
    }

    /// The CSRF token that goes with a session cookie.
    pub fn csrf(&self, cookie: &str) -> String {
        hmac_hex(&self.mac_key, &[b"csrf\0", cookie.as_bytes()])
    }

    fn mac(&self, expiry: i64, nonce: &str) -> String {
        hmac_hex(
            &self.mac_key,
            &[
                b"session\0",
                expiry.to_string().as_bytes(),
                b".",
                nonce.as_bytes(),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_good_until_it_expires_and_forgeries_are_refused() {
        let k = Keys::new("0123456789abcdef-admin");
        assert!(k.is_admin_key("0123456789abcdef-admin"));
        assert!(!k.is_admin_key("0123456789abcdef-admiN"));
        assert!(!k.is_admin_key(""));
        let c = k.issue(1000);
        assert!(k.verify(&c, 999));
        assert!(!k.verify(&c, 1000), "expired");
        // Another expiry under the same MAC, another key, a tampered MAC, garbage.
        let forged = c.replacen("v1.1000.", "v1.99999.", 1);
        assert!(!k.verify(&forged, 999));
        assert!(!Keys::new("another admin key!!").verify(&c, 999));
        let mut tampered = c.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == '0' { '1' } else { '0' });
        assert!(!k.verify(&tampered, 999));
        for junk in [
            "",
            "v1",
            "v1.1000",
            "v1.x.y.z",
            "v2.1000.n.m",
            &format!("{c}.extra"),
        ] {
            assert!(!k.verify(junk, 0), "{junk}");
        }
        assert_ne!(k.csrf(&c), k.csrf(&k.issue(1000)));
        assert_eq!(k.csrf(&c), k.csrf(&c));
    }
}
