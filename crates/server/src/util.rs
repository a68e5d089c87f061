//! Small helpers shared by the gateway's modules.

/// A random identifier of 24 letters and digits (lock owners, OAuth bindings).
pub fn random_id() -> String {
    wxgate_proto::jssdk::nonce_str(24)
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

/// The signature header of wxgate's webhook calls (pushes and payments): `sha256=` and
/// the hex HMAC-SHA256 of `{timestamp}.{body}`.
pub const WEBHOOK_SIGNATURE_HEADER: &str = "x-wxgate-signature";
/// Unix seconds when the call was signed.
pub const WEBHOOK_TIMESTAMP_HEADER: &str = "x-wxgate-timestamp";

/// `sha256=<hex>` over `{timestamp}.{body}`: what a webhook recomputes to trust a call.
pub fn webhook_signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    format!("sha256={}", hmac_hex(secret, &[ts.as_bytes(), b".", body]))
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
pub fn ct_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Runs `work` every `period` until `stop` turns true. A run in progress when the stop
/// comes finishes first, so that what it holds (refresh locks) is released, not leased out.
pub fn spawn_periodic<F, Fut>(
    period: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut work: F,
) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period.max(std::time::Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => work().await,
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
        }
    })
}

/// At most `max` characters of `text`, for a log field that may quote a caller's input:
/// a log line stays bounded whatever a request carries.
pub fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}
