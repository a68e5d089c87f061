//! The limit: a bare axum hello-world server, built with the same toolchain and runtime
//! as wxgate, measured in the same run (the `limit` and `floor` binaries serve it).
//!
//! `GET /` is the hello world every target is measured against. `POST /wx/service` is
//! the same server doing nothing with a push's bytes: it reads the request wrk sends to
//! wxgate (the signed query, the encrypted envelope) and answers a fixed encrypted reply
//! of the size wxgate answers, made once at start. It prices what the shape of a
//! push (a longer request line, a body, a larger answer) costs HTTP and the kernel
//! before any of wxgate's work, so that `bench/results.md` can say how much of a push's
//! cost is wxgate's own.
//!
//! In [`Mode::Floor`] `POST /wx/service` does the protocol's work and nothing else, all
//! of it `wxgate-proto`'s: the URL `signature`, the envelope, `msg_signature`,
//! decryption and the appid, the message parsed, the bench rule's text reply written,
//! encrypted and signed. No dedup or replay memory, no metrics, no logs, no limits. It
//! prices the least a push can cost any server on this stack that does WeChat's part
//! of it, so that the gap to wxgate is what wxgate's own promises cost.

use axum::body::Bytes;
use axum::http::{header, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use wxgate_proto::crypto::MsgCrypt;
use wxgate_proto::reply::encrypted_reply_xml;
use wxgate_proto::signature::verify_server_signature;
use wxgate_proto::{Envelope, Message, PushFormat, Reply};

/// The bench account's settings (`bench/common.sh`) and the bench rule's reply, so that
/// the answer is the size of wxgate's.
const TOKEN: &str = "benchtoken";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APPID: &str = "wxsandbox0000001";

fn push_shaped_reply() -> &'static str {
    let crypt = MsgCrypt::new(TOKEN, AES_KEY, APPID).expect("the bench key is valid");
    let reply = Reply::Text {
        content: "Hello from wxgate".into(),
    };
    let xml = reply
        .to_xml(
            "oSandboxUser000000000000001",
            "gh_sandbox00001",
            1_700_000_000,
        )
        .expect("a text reply is written");
    let sealed = crypt.seal(&xml, "1700000000", "0123456789abcdef");
    Box::leak(encrypted_reply_xml(&sealed).into_boxed_str())
}

/// The query's value of `name` (WeChat's values need no percent-decoding).
fn param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// WeChat's part of a safe-mode push, as wxgate does it, without wxgate's memory.
fn floor_answer(crypt: &MsgCrypt, uri: &Uri, body: &[u8]) -> Result<String, StatusCode> {
    const LIMIT: usize = 64 * 1024;
    let query = uri.query().ok_or(StatusCode::BAD_REQUEST)?;
    let [signature, timestamp, nonce, msg_signature] =
        ["signature", "timestamp", "nonce", "msg_signature"]
            .map(|name| param(query, name).ok_or(StatusCode::BAD_REQUEST));
    let (timestamp, nonce) = (timestamp?, nonce?);
    if !verify_server_signature(TOKEN, timestamp, nonce, signature?) {
        return Err(StatusCode::FORBIDDEN);
    }
    let body = std::str::from_utf8(body).map_err(|_| StatusCode::BAD_REQUEST)?;
    let envelope =
        Envelope::parse_as(PushFormat::Xml, body, LIMIT).map_err(|_| StatusCode::BAD_REQUEST)?;
    let plain = crypt
        .open(msg_signature?, timestamp, nonce, &envelope.encrypt)
        .map_err(|_| StatusCode::FORBIDDEN)?;
    let message =
        Message::parse_as(PushFormat::Xml, &plain, LIMIT).map_err(|_| StatusCode::BAD_REQUEST)?;
    let reply = Reply::Text {
        content: "Hello from wxgate".into(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let xml = reply
        .to_xml(&message.from_user_name, &message.to_user_name, now)
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let sealed = crypt.seal(&xml, &now.to_string(), &wxgate_proto::jssdk::nonce_str(16));
    Ok(encrypted_reply_xml(&sealed))
}

/// What `POST /wx/service` does.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A fixed encrypted reply: a push's shape, none of its work.
    Shape,
    /// WeChat's part of a push, with `wxgate-proto` and nothing else.
    Floor,
}

/// Serves on the address the command line names first (else `default`).
pub async fn serve_from_args(mode: Mode, default: &str) {
    let addr = std::env::args().nth(1).unwrap_or_else(|| default.into());
    serve(&addr, mode).await;
}

/// Serves on `addr` until the process ends.
pub async fn serve(addr: &str, mode: Mode) {
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let app = Router::new().route("/", get(|| async { "Hello, World!" }));
    let app = match mode {
        Mode::Floor => {
            let crypt: &'static MsgCrypt = Box::leak(Box::new(
                MsgCrypt::new(TOKEN, AES_KEY, APPID).expect("the bench key is valid"),
            ));
            app.route(
                "/wx/service",
                post(move |uri: Uri, body: Bytes| async move {
                    match floor_answer(crypt, &uri, &body) {
                        Ok(xml) => (
                            [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
                            xml,
                        )
                            .into_response(),
                        Err(status) => status.into_response(),
                    }
                }),
            )
        }
        Mode::Shape => {
            let reply = push_shaped_reply();
            app.route(
                "/wx/service",
                post(move |body: Bytes| async move {
                    // The body is read to its end, as wxgate reads it, and then dropped.
                    drop(body);
                    (
                        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
                        reply,
                    )
                }),
            )
        }
    };
    axum::serve(listener, app).await.expect("serve");
}
