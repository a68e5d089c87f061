//! The pusher against a small, correct gateway written here with the protocol core: every
//! sample kind in every mode arrives verifiable and parseable, replies are checked as
//! WeChat checks them, and wrong replies are caught.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::routing::post;
use axum::Router;
use std::collections::HashMap;
use wxgate_proto::crypto::MsgCrypt;
use wxgate_proto::reply::encrypted_reply_xml;
use wxgate_proto::signature::verify_server_signature;
use wxgate_proto::xml::DEFAULT_LIMIT;
use wxgate_proto::{Envelope, Message, Reply};
use wxgate_sandbox::messages::{self, KINDS};
use wxgate_sandbox::pusher::{push, MessageMode, PushError, PushOptions, PushTarget};

const TOKEN: &str = "pushtoken";
const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APPID: &str = "wxpushtest";

/// How the test gateway misbehaves.
#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    Correct,
    PlaintextReply,
    BadReplySignature,
    WrongAddress,
}

#[derive(Clone)]
struct Gw {
    seen: Arc<Mutex<Vec<Message>>>,
    behaviour: Behaviour,
}

async fn gateway(
    State(gw): State<Gw>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> (axum::http::StatusCode, String) {
    let g = |k: &str| q.get(k).cloned().unwrap_or_default();
    if !verify_server_signature(TOKEN, &g("timestamp"), &g("nonce"), &g("signature")) {
        return (axum::http::StatusCode::FORBIDDEN, "bad signature".into());
    }
    let body = String::from_utf8(body.to_vec()).unwrap();
    let crypt = MsgCrypt::new(TOKEN, KEY, APPID).unwrap();
    let encrypted = g("encrypt_type") == "aes";
    let plain = if encrypted {
        let env = Envelope::parse(&body, DEFAULT_LIMIT).unwrap();
        crypt
            .open(
                &g("msg_signature"),
                &g("timestamp"),
                &g("nonce"),
                &env.encrypt,
            )
            .unwrap()
    } else {
        body
    };
    let msg = Message::parse(&plain, DEFAULT_LIMIT).unwrap();
    gw.seen.lock().unwrap().push(msg.clone());
    let to = if gw.behaviour == Behaviour::WrongAddress {
        "someone-else"
    } else {
        &msg.from_user_name
    };
    let reply = Reply::Text {
        content: format!("echo {}", msg.msg_type),
    }
    .to_xml(to, &msg.to_user_name, msg.create_time)
    .unwrap();
    if !encrypted || gw.behaviour == Behaviour::PlaintextReply {
        return (axum::http::StatusCode::OK, reply);
    }
    let mut sealed = crypt.seal(&reply, "1700000000", "replynonce");
    if gw.behaviour == Behaviour::BadReplySignature {
        sealed.msg_signature = "0".repeat(40);
    }
    (axum::http::StatusCode::OK, encrypted_reply_xml(&sealed))
}

async fn start(behaviour: Behaviour) -> (String, Gw) {
    let gw = Gw {
        seen: Arc::default(),
        behaviour,
    };
    let app = Router::new()
        .route("/wx/service", post(gateway))
        .with_state(gw.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/wx/service"), gw)
}

fn target(url: &str, mode: MessageMode) -> PushTarget {
    PushTarget {
        url: url.into(),
        token: TOKEN.into(),
        appid: APPID.into(),
        encoding_aes_key: Some(KEY.into()),
        mode,
        format: Default::default(),
    }
}

#[tokio::test]
async fn every_kind_in_every_mode() {
    let (url, gw) = start(Behaviour::Correct).await;
    let http = reqwest::Client::new();
    for mode in [
        MessageMode::Plaintext,
        MessageMode::Compatible,
        MessageMode::Safe,
    ] {
        for (i, kind) in KINDS.iter().enumerate() {
            let msg = messages::sample(kind, "gh_test", "oUser", 1_700_000_000, i as u64 + 1, None)
                .unwrap();
            let out = push(&http, &target(&url, mode), &msg, &PushOptions::default())
                .await
                .unwrap();
            assert_eq!(out.status, 200, "{kind} {mode:?}");
            assert_eq!(
                out.encrypted,
                mode != MessageMode::Plaintext,
                "{kind} {mode:?}"
            );
            let reply = out.reply.unwrap();
            assert_eq!(reply.text("ToUserName"), Some("oUser"));
            assert!(reply.text("Content").unwrap().starts_with("echo "));
        }
    }
    let seen = gw.seen.lock().unwrap();
    assert_eq!(seen.len(), 3 * KINDS.len());
    // Every kind parsed into a known variant (none fell back to Unknown).
    for m in seen.iter() {
        assert_ne!(m.kind, wxgate_proto::MessageKind::Unknown, "{m:?}");
        if let Some(e) = m.event() {
            assert!(!matches!(e, wxgate_proto::Event::Unknown { .. }), "{e:?}");
        }
    }
}

#[tokio::test]
async fn wrong_replies_are_caught() {
    let http = reqwest::Client::new();
    let msg = messages::sample("text", "gh_test", "oUser", 1_700_000_000, 1, Some("hi")).unwrap();
    let (url, _) = start(Behaviour::PlaintextReply).await;
    let e = push(
        &http,
        &target(&url, MessageMode::Safe),
        &msg,
        &PushOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, PushError::PlaintextInSafeMode), "{e}");
    let (url, _) = start(Behaviour::BadReplySignature).await;
    let e = push(
        &http,
        &target(&url, MessageMode::Safe),
        &msg,
        &PushOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, PushError::ReplyCrypto(_)), "{e}");
    let (url, _) = start(Behaviour::WrongAddress).await;
    let e = push(
        &http,
        &target(&url, MessageMode::Plaintext),
        &msg,
        &PushOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, PushError::ReplyAddress(_)), "{e}");
    let mut no_key = target(&url, MessageMode::Safe);
    no_key.encoding_aes_key = None;
    assert!(matches!(
        push(&http, &no_key, &msg, &PushOptions::default()).await,
        Err(PushError::NoAesKey(_))
    ));
}

#[tokio::test]
async fn admin_push_uses_the_app_settings() {
    let (url, gw) = start(Behaviour::Correct).await;
    let mut cfg = wxgate_sandbox::SandboxConfig::example();
    cfg.apps[0].appid = APPID.into();
    cfg.apps[0].token = Some(TOKEN.into());
    cfg.apps[0].encoding_aes_key = Some(KEY.into());
    let sb = wxgate_sandbox::Sandbox::start_ephemeral(cfg).await.unwrap();
    let v: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/admin/push", sb.base_url()))
        .json(&serde_json::json!({"url": url, "appid": APPID, "mode": "safe", "kind": "CLICK", "text": "MENU_1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["encrypted"], true);
    assert_eq!(v["reply"]["Content"], "echo event");
    let seen = gw.seen.lock().unwrap();
    assert_eq!(seen[0].raw.text("EventKey"), Some("MENU_1"));
    assert_eq!(seen[0].to_user_name, "gh_sandbox00001");
}
