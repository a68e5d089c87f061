//! The limit: a bare axum hello-world server, built with the same toolchain and runtime
//! as wxgate, measured in the same run. Usage: limit 127.0.0.1:PORT
//!
//! `GET /` is the hello world every target is measured against. `POST /wx/service` is
//! the same server doing nothing with a push's bytes: it reads the request wrk sends to
//! wxgate (the signed query, the encrypted envelope) and answers a fixed encrypted reply
//! of the size wxgate answers, made once at start. It prices what the shape of a
//! push (a longer request line, a body, a larger answer) costs HTTP and the kernel
//! before any of wxgate's work, so that `bench/results.md` can say how much of a push's
//! cost is wxgate's own.

use axum::body::Bytes;
use axum::http::header;
use axum::routing::{get, post};
use axum::Router;
use wxgate_proto::crypto::MsgCrypt;
use wxgate_proto::reply::encrypted_reply_xml;
use wxgate_proto::Reply;

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

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18399".into());
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    let reply = push_shaped_reply();
    let app = Router::new()
        .route("/", get(|| async { "Hello, World!" }))
        .route(
            "/wx/service",
            post(move |body: Bytes| async move {
                // The body is read to its end, as wxgate reads it, and then dropped.
                drop(body);
                (
                    [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
                    reply,
                )
            }),
        );
    axum::serve(listener, app).await.expect("serve");
}
