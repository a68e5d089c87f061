//! Opening a push: what can be checked from the query (the window, the account's mode,
//! the URL signature) before the body is read, then the body, `msg_signature`,
//! decryption and parsing, in the push's data format (XML or JSON). Each step is a `?` on a [`Reject`], the web layer's refusal.

use axum::body::{to_bytes, Body, Bytes};
use axum::http::StatusCode;
use wxgate_proto::signature::verify_server_signature;
use wxgate_proto::{Envelope, Message, PushFormat};

use super::handler::MessageContext;
use super::{PushAccount, PushQuery};
use crate::config::PushConfig;
use crate::web::envelope::Reject;

/// The named parameters, or a refusal naming the first one missing.
pub fn required<'a, const N: usize>(
    values: [(&'static str, &'a Option<String>); N],
) -> Result<[&'a str; N], Reject> {
    let mut out = [""; N];
    for (i, (name, v)) in values.into_iter().enumerate() {
        out[i] = v.as_deref().ok_or_else(|| {
            Reject::new(
                StatusCode::BAD_REQUEST,
                format!("missing query parameter {name}"),
            )
        })?;
    }
    Ok(out)
}

/// What the query of a push says, once checked.
pub struct Checked<'q> {
    pub timestamp: &'q str,
    pub ts: i64,
    pub nonce: &'q str,
    /// `encrypt_type=aes`: the body is an envelope with `Encrypt`.
    pub encrypted: bool,
}

/// The checks the query alone allows, before the body is read: the timestamp window,
/// the account's mode (never the body's say), and the URL `signature` (required in
/// plaintext mode, checked when present otherwise).
pub fn check_query<'q>(
    acc: &PushAccount,
    cfg: &PushConfig,
    q: &'q PushQuery,
    now: i64,
) -> Result<Checked<'q>, Reject> {
    let Some(token) = &acc.token else {
        let none = "this account has no push token configured";
        return Err(Reject::new(StatusCode::NOT_FOUND, none));
    };
    let [timestamp, nonce] = required([("timestamp", &q.timestamp), ("nonce", &q.nonce)])?;
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| Reject::new(StatusCode::BAD_REQUEST, "timestamp is not a number"))?;
    if now.abs_diff(ts) > cfg.replay_window.unsigned_abs() {
        let reason = format!(
            "timestamp {ts} is outside the {} s window",
            cfg.replay_window
        );
        return Err(Reject::new(StatusCode::FORBIDDEN, reason));
    }
    let encrypted = match q.encrypt_type.as_deref() {
        None | Some("raw") => false,
        Some("aes") => true,
        Some(_) => {
            return Err(Reject::new(
                StatusCode::BAD_REQUEST,
                "encrypt_type is aes or raw",
            ))
        }
    };
    if encrypted != acc.mode.is_encrypted() {
        let reason = if encrypted {
            "encrypted push refused: the account is in plaintext mode"
        } else {
            "plaintext push refused: the account is in safe or compatible mode, which sends encrypt_type=aes and msg_signature"
        };
        return Err(Reject::new(StatusCode::FORBIDDEN, reason));
    }
    match q.signature.as_deref() {
        Some(sig) if !verify_server_signature(token, timestamp, nonce, sig) => {
            return Err(Reject::new(StatusCode::FORBIDDEN, "signature mismatch"))
        }
        None if !encrypted => {
            let missing = "missing query parameter signature";
            return Err(Reject::new(StatusCode::BAD_REQUEST, missing));
        }
        _ => {}
    }
    Ok(Checked {
        timestamp,
        ts,
        nonce,
        encrypted,
    })
}

/// The body, up to the limit and within its deadline (413 or 408 otherwise).
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, Reject> {
    to_bytes(body, limit).await.map_err(|e| {
        let status = crate::web::body::body_error_status(&e);
        let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("body over {limit} bytes")
        } else {
            "the body did not arrive in time".to_owned()
        };
        Reject::new(status, reason)
    })
}

/// The pushed message: for an encrypted push, `msg_signature` over the `Encrypt` of an
/// envelope streamed without building it, then decryption and the appid (a compatible
/// push's plaintext copy is signed by nothing and never read); then parsing.
pub fn open(
    name: &str,
    acc: &PushAccount,
    cfg: &PushConfig,
    q: &PushQuery,
    checked: &Checked<'_>,
    body: &[u8],
) -> Result<MessageContext, Reject> {
    let body = std::str::from_utf8(body)
        .map_err(|_| Reject::new(StatusCode::BAD_REQUEST, "body is not UTF-8"))?;
    let format = format_of(acc, body.as_bytes())?;
    let plain = if checked.encrypted {
        let crypt = acc.crypt.as_ref().ok_or_else(|| {
            let none = "encrypted push, but no encoding_aes_key is configured";
            Reject::new(StatusCode::NOT_FOUND, none)
        })?;
        let [msg_signature] = required([("msg_signature", &q.msg_signature)])?;
        let env = Envelope::parse_as(format, body, cfg.max_body_bytes)?;
        crypt.open(
            msg_signature,
            checked.timestamp,
            checked.nonce,
            &env.encrypt,
        )?
    } else {
        body.to_owned()
    };
    // The decrypted message is in the envelope's format (WeChat encrypts the push it
    // would have sent in plaintext).
    let message = Message::parse_as(format, &plain, cfg.max_body_bytes)?;
    Ok(MessageContext {
        account: name.to_owned(),
        appid: acc.appid.clone(),
        message,
        format,
        plaintext: plain,
    })
}

/// The push's data format: its first byte says it (`<` or `{`), and it must be the
/// account's configured format when one is set.
fn format_of(acc: &PushAccount, body: &[u8]) -> Result<PushFormat, Reject> {
    let detected = PushFormat::detect(body).ok_or_else(|| {
        Reject::new(
            StatusCode::BAD_REQUEST,
            "the body is neither an XML document nor a JSON object",
        )
    })?;
    match acc.format {
        Some(configured) if configured != detected => Err(Reject::new(
            StatusCode::BAD_REQUEST,
            format!("a {detected} push refused: the account's format is {configured}"),
        )),
        _ => Ok(detected),
    }
}
