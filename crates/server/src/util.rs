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
