//! The JS-SDK `wx.config` signature (JS-SDK 附录1).
//!
//! `signature = sha1("jsapi_ticket=T&noncestr=N&timestamp=TS&url=U")`: the four fields in
//! that order, raw (not URL-encoded) values, and the page URL without its `#fragment`.
//! A wrong URL is the usual cause of `config:invalid signature`, so [`string_to_sign`] is
//! public for debugging output.

use rand::distributions::Alphanumeric;
use rand::Rng;
use sha1::{Digest, Sha1};

use crate::signature::hex;

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
    let mut h = Sha1::new();
    h.update(b"jsapi_ticket=");
    h.update(jsapi_ticket.as_bytes());
    h.update(b"&noncestr=");
    h.update(noncestr.as_bytes());
    h.update(b"&timestamp=");
    h.update(timestamp.as_bytes());
    h.update(b"&url=");
    h.update(signed_url(url).as_bytes());
    hex(&h.finalize())
}

/// A nonce of `len` letters and digits (WeChat's examples use 16).
pub fn nonce_str(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
