//! `wxgate sandbox` as a developer runs it: the standalone platform that an independent
//! WeChat client (Python's wechatpy) talks to, and `wxgate sandbox push` against a gateway.

use crate::common;

use std::collections::HashMap;
use std::process::Command;

use axum::body::Bytes;
use axum::extract::Query;
use axum::routing::post;
use common::{free_port, spawn_wxgate};
use wxgate_proto::crypto::MsgCrypt;
use wxgate_proto::reply::encrypted_reply_xml;
use wxgate_proto::xml::DEFAULT_LIMIT;
use wxgate_proto::{Envelope, Message, Reply};

const OA: &str = "wxsandbox0000001";
const OA_SECRET: &str = "sandbox-secret-official-0001";

#[test]
fn wechatpy_obtains_token_ticket_and_followers_from_the_sandbox() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sandbox/sandbox.example.toml"
    );
    let _sandbox = spawn_wxgate(&["sandbox", "--config", config, "--listen", &listen], port);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/interop/wechatpy_client.py"
    );
    let out = Command::new("python3")
        .args([script, &format!("http://{listen}"), OA, OA_SECRET])
        .output()
        .expect("python3 runs (scripts/install-deps.sh installs wechatpy)");
    assert!(
        out.status.success(),
        "wechatpy client failed (is wechatpy installed? scripts/install-deps.sh):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["access_token"].as_str().unwrap().starts_with("SBXAT"));
    assert!(v["ticket"].as_str().unwrap().starts_with("SBXJT"));
    assert_eq!(v["total"], 2);
    assert_eq!(v["openids"][0], "oSandboxUser000000000000001");

    // The sandbox saw wechatpy's calls: exactly one token fetch.
    let calls: serde_json::Value = reqwest::blocking::get(format!("http://{listen}/admin/calls"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(calls["/cgi-bin/token"]["by_app"][OA], 1);
    assert_eq!(calls["/cgi-bin/ticket/getticket"]["by_app"][OA], 1);
    assert_eq!(calls["/cgi-bin/user/get"]["by_app"][OA], 1);
}

const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

async fn echo_gateway(Query(q): Query<HashMap<String, String>>, body: Bytes) -> String {
    let g = |k: &str| q.get(k).cloned().unwrap_or_default();
    let crypt = MsgCrypt::new("sandboxtoken", KEY, OA).unwrap();
    let env = Envelope::parse(std::str::from_utf8(&body).unwrap(), DEFAULT_LIMIT).unwrap();
    let plain = crypt
        .open(
            &g("msg_signature"),
            &g("timestamp"),
            &g("nonce"),
            &env.encrypt,
        )
        .unwrap();
    let msg = Message::parse(&plain, DEFAULT_LIMIT).unwrap();
    let reply = Reply::Text {
        content: format!("got {}", msg.raw.text("Content").unwrap_or("")),
    }
    .to_xml(&msg.from_user_name, &msg.to_user_name, 1)
    .unwrap();
    encrypted_reply_xml(&crypt.seal(&reply, "1", "n"))
}

#[test]
fn sandbox_push_from_the_command_line() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        axum::serve(
            listener,
            axum::Router::new().route("/wx/service", post(echo_gateway)),
        )
        .await
        .unwrap()
    });
    let out = Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .args([
            "sandbox",
            "push",
            "--url",
            &format!("http://{addr}/wx/service"),
            "--mode",
            "safe",
            "--kind",
            "text",
            "--text",
            "hello",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], 200);
    assert_eq!(v["encrypted"], true);
    assert_eq!(v["reply"]["Content"], "got hello");

    let bad = Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .args([
            "sandbox",
            "push",
            "--url",
            &format!("http://{addr}/wx/service"),
            "--kind",
            "nonsense",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown --kind"));
}
