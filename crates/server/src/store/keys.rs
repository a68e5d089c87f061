//! Every store key the gateway uses, in one place. All keys of an account start with
//! `wxgate:{account}:` with real braces: the braces are a Redis Cluster hash tag, so
//! every key of one account lives in one slot and a script may touch several of them
//! (a push's dedup answer and nonce) on a Cluster as on one node. It also lets one
//! account's state be listed (`SCAN MATCH wxgate:{name}:*`) or dropped at once.
//!
//! Before 0.6 keys had no braces (`wxgate:default:access_token`). [`legacy`] names a
//! key's old spelling, and [`super::get_migrating`] reads it when the new key is absent,
//! so an upgrade keeps the tokens, users and sessions it already stored.

/// `wxgate:{account}:{part}:{part}...`, built in one allocation (the push path makes
/// one or two keys a request), with room for `more` bytes after it.
fn key_with_room(account: &str, parts: &[&str], more: usize) -> String {
    let len = 9 + account.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>();
    let mut k = String::with_capacity(len + more);
    k.push_str("wxgate:{");
    k.push_str(account);
    k.push('}');
    for p in parts {
        k.push(':');
        k.push_str(p);
    }
    k
}

/// [`key_with_room`] with no room after it.
fn key(account: &str, parts: &[&str]) -> String {
    key_with_room(account, parts, 0)
}

/// The stored credential of a kind (`access_token`, `ticket:jsapi`, `ticket:wx_card`).
pub fn credential(account: &str, kind: &str) -> String {
    key(account, &[kind])
}

/// The refresh lock of a credential.
pub fn refresh_lock(account: &str, kind: &str) -> String {
    key(account, &["lock", kind])
}

/// Upstream credential fetches on a UTC day (`YYYYMMDD`), against WeChat's daily quota.
pub fn fetch_counter(account: &str, day: &str) -> String {
    key(account, &["fetches", day])
}

/// The last upstream error of a credential, for `/readyz` and `wxgate status`.
pub fn last_error(account: &str, kind: &str) -> String {
    key(account, &["last_error", kind])
}

/// A failed fetch of a credential, remembered for the fleet for a short backoff: the
/// requests in that window get its error without calling WeChat again.
pub fn fetch_failure(account: &str, kind: &str) -> String {
    key(account, &["fetch_failed", kind])
}

/// Held while a forced token refresh is not allowed again for the account (WeChat
/// rations them: `force_refresh` 20 a day, 30 s apart).
pub fn forced_refresh(account: &str) -> String {
    key(account, &["forced_refresh"])
}

/// A revoked console session (its nonce), until the session would have expired.
pub fn console_revoked(nonce: &str) -> String {
    key("fleet", &["console_revoked", nonce])
}

/// The first answer to a pushed message, for WeChat's retries (`MsgId`, or the event's
/// sender, time, event and key).
pub fn dedup(account: &str, message_key: &str) -> String {
    key(account, &["dedup", message_key])
}

/// [`dedup`] for a message's digest, hex written straight into the key.
pub fn dedup_digest(account: &str, digest: &[u8; 16]) -> String {
    // Made with room for the hex: reserved after, it was a second allocation and a copy.
    let mut k = key_with_room(account, &["dedup", ""], 2 * digest.len());
    wxgate_proto::signature::push_hex(&mut k, digest);
    k
}

/// A (timestamp, nonce) pair seen on a push, against replays.
pub fn nonce(account: &str, timestamp: &str, nonce: &str) -> String {
    key(account, &["nonce", timestamp, nonce])
}

/// A user remembered by web authorization: tokens and userinfo.
pub fn user(account: &str, openid: &str) -> String {
    key(account, &["user", openid])
}

/// The expiry index of remembered users' access tokens, for the refresh sweep.
pub fn user_index(account: &str) -> String {
    key(account, &["users_by_expiry"])
}

/// The lock that makes one instance refresh a user's token at a time.
pub fn user_lock(account: &str, openid: &str) -> String {
    key(account, &["lock", "user", openid])
}

/// A consumed OAuth state (single use).
pub fn oauth_state(account: &str, nonce: &str) -> String {
    key(account, &["oauth_state", nonce])
}

/// The openid an OAuth code was exchanged for, so a reloaded callback gets the same result.
pub fn oauth_code(account: &str, code_digest: &str) -> String {
    key(account, &["oauth_code", code_digest])
}

/// A Mini Program code kept for identical requests, by the digest of the request.
pub fn wxa_code(account: &str, request_digest: &str) -> String {
    key(account, &["wxa_code", request_digest])
}

/// A WeChat Pay notification by id, `done` once delivered.
pub fn pay_notification(pay: &str, id: &str) -> String {
    format!("wxgate:{{pay:{pay}}}:notification:{id}")
}

/// A payment or refund by its business key (`{event_type}:{out_no}`): claimed while one
/// instance delivers it, `done` after.
pub fn pay_business(pay: &str, key: &str) -> String {
    format!("wxgate:{{pay:{pay}}}:business:{key}")
}

/// A component's `component_verify_ticket` (JSON `{ticket, received_at}`), for the fleet.
pub fn component_ticket(component: &str) -> String {
    format!("wxgate:{{component:{component}}}:ticket")
}

/// A component's `component_access_token` (JSON `{value, expires_at}`).
pub fn component_token(component: &str) -> String {
    format!("wxgate:{{component:{component}}}:token")
}

/// The fleet's lock on fetching a component's token.
pub fn component_token_lock(component: &str) -> String {
    format!("wxgate:{{component:{component}}}:token_lock")
}

/// Set while an `api_start_push_ticket` was asked recently (the fleet asks once).
pub fn component_start_push(component: &str) -> String {
    format!("wxgate:{{component:{component}}}:start_push")
}

/// A push's nonce under its timestamp, remembered for the replay window.
pub fn component_nonce(component: &str, timestamp: &str, nonce: &str) -> String {
    format!("wxgate:{{component:{component}}}:nonce:{timestamp}:{nonce}")
}

/// An authorization code claimed for its one `api_query_auth` (`pending:` then `done`).
pub fn component_auth_code(component: &str, code_digest: &str) -> String {
    format!("wxgate:{{component:{component}}}:auth_code:{code_digest}")
}

/// An authorizer of a component: its refresh token and grants, kept without a TTL.
pub fn component_authorizer(component: &str, appid: &str) -> String {
    format!("wxgate:{{component:{component}}}:authorizer:{appid}")
}

/// A component's authorizers (an index: appid by authorization time), for listing them.
pub fn component_authorizers(component: &str) -> String {
    format!("wxgate:{{component:{component}}}:authorizers")
}

/// The authorizers that must authorize again (WeChat refused their refresh token): the
/// console counts them without reading every authorizer.
pub fn component_authorizers_reauthorize(component: &str) -> String {
    format!("wxgate:{{component:{component}}}:authorizers_reauthorize")
}

/// An authorizer's access_token (JSON `{value, expires_at}`), and the fleet's lock on
/// fetching it.
pub fn component_authorizer_token(component: &str, appid: &str) -> String {
    format!("wxgate:{{component:{component}}}:authorizer_token:{appid}")
}

/// When each authorizer's token is due for refresh (an index, scored by that time).
pub fn component_authorizer_tokens_due(component: &str) -> String {
    format!("wxgate:{{component:{component}}}:authorizer_tokens_due")
}

/// An authorizer's ticket of a type (`jsapi`, `wx_card`; JSON `{value, expires_at}`),
/// and the fleet's lock on fetching it.
pub fn component_authorizer_ticket(component: &str, appid: &str, ticket_type: &str) -> String {
    format!("wxgate:{{component:{component}}}:authorizer_ticket:{ticket_type}:{appid}")
}

pub fn component_authorizer_ticket_lock(component: &str, appid: &str, ticket_type: &str) -> String {
    format!("wxgate:{{component:{component}}}:authorizer_ticket_lock:{ticket_type}:{appid}")
}

pub fn component_authorizer_token_lock(component: &str, appid: &str) -> String {
    format!("wxgate:{{component:{component}}}:authorizer_token_lock:{appid}")
}

/// A Mini Program login session, under the SHA-256 of its id (a leaked store holds no
/// usable session id).
pub fn mp_session(account: &str, session_digest: &str) -> String {
    key(account, &["mp_session", session_digest])
}

/// The current session of a Mini Program user (a new login replaces it).
pub fn mp_user(account: &str, openid: &str) -> String {
    key(account, &["mp_user", openid])
}

/// An instance's heartbeat, for the console's fleet view. The `{fleet}` tag gives the
/// fleet's keys a slot of their own on a Cluster; an account named `fleet` would share
/// the slot but not these keys (an account's keys have other parts).
pub fn fleet_instance(id: &str) -> String {
    key("fleet", &["instance", id])
}

/// The accounts kept in the store for the fleet (`crate::fleet_accounts`): one JSON
/// document, `{name: account}`.
pub fn fleet_accounts() -> String {
    key("fleet", &["accounts"])
}

/// Held while an instance rewrites [`fleet_accounts`].
pub fn fleet_accounts_lock() -> String {
    key("fleet", &["lock", "accounts"])
}

/// The index of heartbeats (a sorted set by last beat).
pub fn fleet_index() -> String {
    key("fleet", &["instances"])
}

/// The spelling a key had before the hash tag (`wxgate:{a}:x` was `wxgate:a:x`), for
/// reading what an older version stored; `None` for a key that is not an account's.
pub fn legacy(key: &str) -> Option<String> {
    let rest = key.strip_prefix("wxgate:{")?;
    let (account, parts) = rest.split_once('}')?;
    Some(format!("wxgate:{account}{parts}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_shapes() {
        assert_eq!(credential("a", "ticket:jsapi"), "wxgate:{a}:ticket:jsapi");
        assert_eq!(
            refresh_lock("a", "access_token"),
            "wxgate:{a}:lock:access_token"
        );
        assert_eq!(dedup("default", "id:42"), "wxgate:{default}:dedup:id:42");
        let digest = [0xab; 16];
        assert_eq!(
            dedup_digest("default", &digest),
            dedup("default", &wxgate_proto::signature::hex(&digest))
        );
        assert_eq!(
            nonce("a", "1700000000", "n1"),
            "wxgate:{a}:nonce:1700000000:n1"
        );
        assert_eq!(user_lock("a", "o1"), "wxgate:{a}:lock:user:o1");
        assert_eq!(user_index("a"), "wxgate:{a}:users_by_expiry");
        assert_eq!(fleet_instance("i1"), "wxgate:{fleet}:instance:i1");
        assert_eq!(fleet_index(), "wxgate:{fleet}:instances");
        // Every key is exactly as long as it was reserved for (no reallocation).
        let k = mp_user("mini", "o1");
        assert_eq!(k.capacity(), k.len());
        let k = dedup_digest("default", &digest);
        assert_eq!(
            k.capacity(),
            k.len(),
            "the digest's hex fits the first allocation"
        );
    }

    #[test]
    fn legacy_keys_are_the_old_spelling() {
        assert_eq!(
            legacy(&credential("default", "access_token")).as_deref(),
            Some("wxgate:default:access_token")
        );
        assert_eq!(
            legacy(&user("a-b_1", "o:1")).as_deref(),
            Some("wxgate:a-b_1:user:o:1")
        );
        assert_eq!(legacy("wxgate:default:access_token"), None);
        assert_eq!(legacy("other"), None);
    }
}
