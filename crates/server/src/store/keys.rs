//! Every store key the gateway uses, in one place. All keys of an account start with
//! `wxgate:{account}:`, so one account's state can be listed or dropped at once.

fn key(account: &str, rest: &str) -> String {
    format!("wxgate:{account}:{rest}")
}

/// The stored credential of a kind (`access_token`, `ticket:jsapi`, `ticket:wx_card`).
pub fn credential(account: &str, kind: &str) -> String {
    key(account, kind)
}

/// The refresh lock of a credential.
pub fn refresh_lock(account: &str, kind: &str) -> String {
    key(account, &format!("lock:{kind}"))
}

/// Upstream credential fetches on a UTC day (`YYYYMMDD`), against WeChat's daily quota.
pub fn fetch_counter(account: &str, day: &str) -> String {
    key(account, &format!("fetches:{day}"))
}

/// The last upstream error of a credential, for `/readyz` and `wxgate status`.
pub fn last_error(account: &str, kind: &str) -> String {
    key(account, &format!("last_error:{kind}"))
}

/// The first answer to a pushed message, for WeChat's retries (`MsgId`, or the event's
/// sender, time, event and key).
pub fn dedup(account: &str, message_key: &str) -> String {
    key(account, &format!("dedup:{message_key}"))
}

/// A (timestamp, nonce) pair seen on a push, against replays.
pub fn nonce(account: &str, timestamp: &str, nonce: &str) -> String {
    key(account, &format!("nonce:{timestamp}:{nonce}"))
}
