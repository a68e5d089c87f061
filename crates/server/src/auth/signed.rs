//! The two signed values of web authorization.
//!
//! - The OAuth `state`: WeChat only carries a-z, A-Z, 0-9 and at most 128 bytes, so it
//!   cannot hold the dest. It is `{scope: b|u}{nonce: 16}{expiry: 10 digits}{mac: 32 hex}`
//!   (59 characters); the MAC covers the account, scope, nonce, expiry and the dest,
//!   which travels in the redirect_uri's own query. Single use is enforced by the store.
//! - The remembered-user cookie `wechat_jssdk_server_openid` (the seed server's name):
//!   `{openid}.{expiry}.{mac}`, the MAC over the account, openid and expiry.

use crate::util::{ct_eq, hmac_hex};

/// The cookie's name, kept from the Node server wxgate replaces.
pub const COOKIE: &str = "wechat_jssdk_server_openid";

const MAC_LEN: usize = 32;

/// The OAuth scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Base,
    UserInfo,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "snsapi_base" => Some(Scope::Base),
            "snsapi_userinfo" => Some(Scope::UserInfo),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Base => "snsapi_base",
            Scope::UserInfo => "snsapi_userinfo",
        }
    }

    fn letter(self) -> char {
        match self {
            Scope::Base => 'b',
            Scope::UserInfo => 'u',
        }
    }
}

/// What a verified state says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub scope: Scope,
    pub nonce: String,
    pub expiry: i64,
}

fn state_mac(
    secret: &[u8],
    account: &str,
    scope: Scope,
    nonce: &str,
    expiry: i64,
    dest: &str,
) -> String {
    let e = expiry.to_string();
    let mut mac = hmac_hex(
        secret,
        &[
            b"state\0",
            account.as_bytes(),
            b"\0",
            scope.as_str().as_bytes(),
            b"\0",
            nonce.as_bytes(),
            b"\0",
            e.as_bytes(),
            b"\0",
            dest.as_bytes(),
        ],
    );
    mac.truncate(MAC_LEN);
    mac
}

/// The state nonce of a browser binding: the first 16 hex digits of the binding's MAC.
/// The binding itself (a random value) travels only in the starting browser's cookie;
/// the nonce, in the state, can be read by anyone who sees the callback URL but does
/// not give the binding back.
pub fn binding_nonce(secret: &[u8], binding: &str) -> String {
    let mut mac = hmac_hex(secret, &[b"bind\0", binding.as_bytes()]);
    mac.truncate(16);
    mac
}

/// Whether `binding` (from a cookie) is the one whose nonce is `nonce`.
pub fn binding_matches(secret: &[u8], binding: &str, nonce: &str) -> bool {
    ct_eq(&binding_nonce(secret, binding), nonce)
}

/// A new state for a consent round trip to `dest`, with its nonce (see
/// [`binding_nonce`]).
pub fn make_state(
    secret: &[u8],
    account: &str,
    scope: Scope,
    nonce: &str,
    dest: &str,
    expiry: i64,
) -> String {
    format!(
        "{}{nonce}{expiry:010}{}",
        scope.letter(),
        state_mac(secret, account, scope, nonce, expiry, dest)
    )
}

/// Why a state is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateError {
    Malformed,
    Forged,
    Expired,
}

/// Checks a state against the dest it came back with.
pub fn verify_state(
    secret: &[u8],
    account: &str,
    state: &str,
    dest: &str,
    now: i64,
) -> Result<State, StateError> {
    if state.len() != 1 + 16 + 10 + MAC_LEN || !state.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(StateError::Malformed);
    }
    let scope = match &state[..1] {
        "b" => Scope::Base,
        "u" => Scope::UserInfo,
        _ => return Err(StateError::Malformed),
    };
    let nonce = &state[1..17];
    let expiry: i64 = state[17..27].parse().map_err(|_| StateError::Malformed)?;
    let mac = &state[27..];
    if !ct_eq(mac, &state_mac(secret, account, scope, nonce, expiry, dest)) {
        return Err(StateError::Forged);
    }
    if now >= expiry {
        return Err(StateError::Expired);
    }
    Ok(State {
        scope,
        nonce: nonce.to_owned(),
        expiry,
    })
}

fn cookie_mac(secret: &[u8], account: &str, openid: &str, expiry: i64) -> String {
    let e = expiry.to_string();
    hmac_hex(
        secret,
        &[
            b"cookie\0",
            account.as_bytes(),
            b"\0",
            openid.as_bytes(),
            b"\0",
            e.as_bytes(),
        ],
    )
}

/// The cookie value remembering `openid` until `expiry`.
pub fn make_cookie(secret: &[u8], account: &str, openid: &str, expiry: i64) -> String {
    format!(
        "{openid}.{expiry}.{}",
        cookie_mac(secret, account, openid, expiry)
    )
}

/// The openid of a valid, unexpired cookie; anything else is ignored, never trusted.
pub fn verify_cookie(secret: &[u8], account: &str, value: &str, now: i64) -> Option<String> {
    let mut parts = value.rsplitn(3, '.');
    let mac = parts.next()?;
    let expiry: i64 = parts.next()?.parse().ok()?;
    let openid = parts.next()?;
    if openid.is_empty()
        || now >= expiry
        || !ct_eq(mac, &cookie_mac(secret, account, openid, expiry))
    {
        return None;
    }
    Some(openid.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &[u8] = b"a-test-secret-of-some-length";

    #[test]
    fn state_fits_wechats_rule_and_round_trips() {
        let nonce = binding_nonce(K, "a-random-binding");
        assert!(binding_matches(K, "a-random-binding", &nonce));
        assert!(!binding_matches(K, "another-binding", &nonce));
        assert!(!binding_matches(K, &nonce, &nonce));
        let s = make_state(
            K,
            "default",
            Scope::UserInfo,
            &nonce,
            "https://a.example.com/x?y=1#z",
            2_000_000_000,
        );
        assert!(
            s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{s}"
        );
        let v = verify_state(
            K,
            "default",
            &s,
            "https://a.example.com/x?y=1#z",
            1_999_999_000,
        )
        .unwrap();
        assert_eq!(v.scope, Scope::UserInfo);
        assert_eq!(
            verify_state(K, "default", &s, "https://evil.example.com/", 1),
            Err(StateError::Forged)
        );
        assert_eq!(
            verify_state(K, "other", &s, "https://a.example.com/x?y=1#z", 1),
            Err(StateError::Forged)
        );
        assert_eq!(
            verify_state(
                b"another-secret-xxxxxxxx",
                "default",
                &s,
                "https://a.example.com/x?y=1#z",
                1
            ),
            Err(StateError::Forged)
        );
        assert_eq!(
            verify_state(
                K,
                "default",
                &s,
                "https://a.example.com/x?y=1#z",
                2_000_000_000
            ),
            Err(StateError::Expired)
        );
        let mut flipped = s.clone();
        flipped.replace_range(0..1, "b");
        assert_eq!(
            verify_state(K, "default", &flipped, "https://a.example.com/x?y=1#z", 1),
            Err(StateError::Forged)
        );
        assert_eq!(
            verify_state(K, "default", "short", "d", 1),
            Err(StateError::Malformed)
        );
        assert_eq!(
            verify_state(K, "default", &format!("{}-", &s[..58]), "d", 1),
            Err(StateError::Malformed)
        );
    }

    #[test]
    fn cookie_round_trips_and_refuses_forgeries() {
        let c = make_cookie(K, "default", "oUser1", 2_000_000_000);
        assert_eq!(
            verify_cookie(K, "default", &c, 1_900_000_000).as_deref(),
            Some("oUser1")
        );
        assert_eq!(
            verify_cookie(K, "default", &c, 2_000_000_000),
            None,
            "expired"
        );
        assert_eq!(verify_cookie(K, "mini", &c, 1), None, "another account");
        assert_eq!(
            verify_cookie(K, "default", &c.replace("oUser1", "oUser2"), 1),
            None,
            "forged openid"
        );
        assert_eq!(
            verify_cookie(K, "default", &c.replace("2000000000", "2100000000"), 1),
            None,
            "forged expiry"
        );
        assert_eq!(
            verify_cookie(K, "default", "oUser1", 1),
            None,
            "the old server's bare openid"
        );
        assert_eq!(verify_cookie(K, "default", "", 1), None);
        assert_eq!(verify_cookie(K, "default", "..", 1), None);
    }
}
