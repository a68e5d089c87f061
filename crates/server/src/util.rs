//! Small helpers shared by the gateway's modules.

use rand::distributions::Alphanumeric;
use rand::Rng;

/// A random identifier of 24 letters and digits (lock owners, request ids).
pub fn random_id() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

/// Lowercase hex HMAC-SHA256 of the parts, concatenated.
pub fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    wxgate_proto::signature::hex(&mac.finalize().into_bytes())
}
