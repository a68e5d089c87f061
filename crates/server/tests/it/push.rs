//! `/wx/service` through the sandbox's message pusher in all three modes: verification,
//! every message and event type, every reply type, refusals that reach no handler,
//! dedup of retries, the webhook and its deadline, and an independent implementation
//! (wechatpy) on the other end.

use crate::common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use common::*;
use wxgate_proto::crypto::MsgCrypt;
use wxgate_proto::signature::{msg_signature, server_signature};
use wxgate_proto::xml::Fields;
use wxgate_proto::{Envelope, Message};
use wxgate_sandbox::messages::{self, KINDS};
use wxgate_sandbox::pusher::{push, MessageMode, PushOptions, PushOutcome, PushTarget};

const TOKEN: &str = "sandboxtoken";
const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const GH: &str = "gh_sandbox00001";
const USER: &str = "oSandboxUser000000000000001";
const MODES: [MessageMode; 3] = [
    MessageMode::Plaintext,
    MessageMode::Compatible,
    MessageMode::Safe,
];

/// The reply rules, written for `default` and copied to its other-mode twins.
const DEFAULT_RULES: &str = r#"
[[accounts.default.rules]]
keyword = "hello"
reply = { type = "text", content = "Hi {openid}, you said {content}" }
[[accounts.default.rules]]
keyword = "image"
reply = { type = "image", media_id = "MEDIA_IMG" }
[[accounts.default.rules]]
keyword = "voice"
reply = { type = "voice", media_id = "MEDIA_VOICE" }
[[accounts.default.rules]]
keyword = "video"
reply = { type = "video", media_id = "MEDIA_VIDEO", title = "T", description = "D" }
[[accounts.default.rules]]
keyword = "music"
reply = { type = "music", title = "Song", description = "D", music_url = "http://m/1.mp3", hq_music_url = "http://m/hq.mp3", thumb_media_id = "THUMB" }
[[accounts.default.rules]]
keyword = "news"
reply = { type = "news", articles = [{ title = "A1", description = "d1", pic_url = "http://p/1.jpg", url = "http://u/1" }, { title = "A2", url = "http://u/2" }] }
[[accounts.default.rules]]
regex = '^order\s+\d+$'
reply = { type = "text", content = "order noted" }
[[accounts.default.rules]]
contains = "]]>"
reply = { type = "text", content = "tricky ]]> {content}" }
[[accounts.default.rules]]
event = "subscribe"
reply = { type = "text", content = "welcome" }
[[accounts.default.rules]]
msg_type = "event"
event = "CLICK"
event_key = "V1001"
reply = { type = "text", content = "clicked V1001" }

"#;

/// The accounts: `default` (safe mode, from `gateway_toml`) with the rules, and
/// `plain` (safe mode) with no rule, each with a twin per other mode (`-compatible`,
/// `-plaintext`): an account's mode decides which pushes it accepts.
fn rules() -> String {
    let mut out = String::new();
    for twin in ["default", "default-compatible", "default-plaintext"] {
        out.push_str(&DEFAULT_RULES.replace("accounts.default.", &format!("accounts.{twin}.")));
    }
    for (name, mode) in [
        ("default-compatible", "compatible"),
        ("default-plaintext", "plaintext"),
        ("plain", "safe"),
        ("plain-compatible", "compatible"),
        ("plain-plaintext", "plaintext"),
    ] {
        out.push_str(&format!(
            "\n[accounts.{name}]\nappid = \"{OA}\"\nsecret = \"{OA_SECRET}\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\nmode = \"{mode}\"\n"
        ));
    }
    out
}

/// The account that takes `mode`'s pushes for `account`.
fn twin(account: &str, mode: MessageMode) -> String {
    match mode {
        MessageMode::Safe => account.to_owned(),
        other => format!("{account}-{other}"),
    }
}

struct Env {
    h: Harness,
    recorder: Arc<Recorder>,
}

impl std::ops::Deref for Env {
    type Target = Harness;

    fn deref(&self) -> &Harness {
        &self.h
    }
}

/// A gateway with `extra` (the accounts of `rules()`, at least) and `top`, every
/// `plain` and `default` twin recorded.
async fn env(extra: &str, top: &str) -> Env {
    let recorder = Arc::new(Recorder::default());
    let mut setup = Setup::new().tag("service").top(top).extra(extra);
    for account in MODES
        .iter()
        .flat_map(|m| [twin("plain", *m), twin("default", *m)])
    {
        setup = setup.handler(&account, recorder.clone());
    }
    Env {
        h: setup.start().await,
        recorder,
    }
}

impl Env {
    /// Where `mode`'s pushes for `account` go: the twin in that mode.
    fn target(&self, account: &str, mode: MessageMode) -> PushTarget {
        self.target_exact(&twin(account, mode), mode)
    }

    /// Pushes in `mode` to exactly that account, whatever its own mode.
    fn target_exact(&self, account: &str, mode: MessageMode) -> PushTarget {
        let path = if account == "default" {
            "/wx/service".to_owned()
        } else {
            format!("/wx/{account}/service")
        };
        PushTarget {
            url: format!("{}{path}", self.gw.url()),
            token: TOKEN.into(),
            appid: OA.into(),
            encoding_aes_key: Some(KEY.into()),
            mode,
            format: Default::default(),
        }
    }

    async fn push(&self, account: &str, mode: MessageMode, msg: &Fields) -> PushOutcome {
        push(
            &self.http,
            &self.target(account, mode),
            msg,
            &PushOptions::default(),
        )
        .await
        .unwrap()
    }

    fn seen(&self) -> usize {
        self.recorder.seen.lock().unwrap().len()
    }
}

fn text(content: &str, id: u64) -> Fields {
    messages::sample("text", GH, USER, now(), id, Some(content)).unwrap()
}

#[tokio::test]
async fn url_verification() {
    let e = env(&rules(), "").await;
    let sig = server_signature(TOKEN, "1714036504", "1514711492");
    let url = |q: String| format!("{}/wx/service?{q}", e.gw.url());
    let r = e
        .http
        .get(url(format!(
            "signature={sig}&timestamp=1714036504&nonce=1514711492&echostr=4375120948345356249"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(r.text().await.unwrap(), "4375120948345356249");
    // The documented example, for the account with that token.
    let doc_sig = "f464b24fc39322e44b38aa78f5edd27bd1441696";
    assert_eq!(
        server_signature("AAAAA", "1714036504", "1514711492"),
        doc_sig
    );
    let r = e
        .http
        .get(url(format!(
            "signature={doc_sig}&timestamp=1714036504&nonce=1514711492&echostr=x"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "another token's signature");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["state"]["msg"], "signature mismatch");
    assert_eq!(body["data"], "");
    let r = e
        .http
        .get(url("timestamp=1&nonce=2&echostr=3".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = e
        .http
        .get(format!(
            "{}/wx/plain/service?signature={sig}&timestamp=1714036504&nonce=1514711492&echostr=e2",
            e.gw.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "e2");
    let r = e
        .http
        .get(format!(
            "{}/wx/nobody/service?signature={sig}&timestamp=1714036504&nonce=1514711492&echostr=e2",
            e.gw.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn every_type_reaches_the_handlers_parsed_in_every_mode() {
    let e = env(&rules(), "").await;
    let base = now();
    for (m, mode) in MODES.iter().enumerate() {
        for (i, kind) in KINDS.iter().enumerate() {
            let id = (m * 100 + i + 1) as u64;
            let msg = messages::sample(kind, GH, USER, base + id as i64, id, None).unwrap();
            let out = e.push("plain", *mode, &msg).await;
            assert_eq!(out.status, 200, "{kind} {mode:?}: {}", out.body);
            assert_eq!(out.body, "success", "no handler replies on `plain`");
        }
    }
    let seen = e.recorder.seen.lock().unwrap();
    assert_eq!(seen.len(), 3 * KINDS.len());
    for (i, m) in seen.iter().enumerate() {
        let kind = KINDS[i % KINDS.len()];
        assert_ne!(m.kind, wxgate_proto::MessageKind::Unknown, "{kind}");
        if let Some(ev) = m.event() {
            assert!(
                !matches!(ev, wxgate_proto::Event::Unknown { .. }),
                "{kind}: {ev:?}"
            );
        }
        assert_eq!(m.from_user_name, USER);
        assert_eq!(m.to_user_name, GH);
    }
}

fn reply_of(out: &PushOutcome) -> &Fields {
    out.reply
        .as_ref()
        .unwrap_or_else(|| panic!("no reply: {}", out.body))
}

#[tokio::test]
async fn every_reply_type_arrives_in_every_mode() {
    let e = env(&rules(), "").await;
    let mut id: u64 = 1000;
    for mode in MODES {
        let mut ask = |content: &str| {
            id += 1;
            text(content, id)
        };
        let out = e.push("default", mode, &ask("hello")).await;
        assert_eq!(
            out.encrypted,
            mode.is_encrypted(),
            "{mode:?}: an encrypted push (encrypt_type=aes) is answered encrypted"
        );
        let r = reply_of(&out);
        assert_eq!(r.text("MsgType"), Some("text"));
        assert_eq!(
            r.text("Content"),
            Some(format!("Hi {USER}, you said hello").as_str())
        );
        let out = e.push("default", mode, &ask("image")).await;
        assert_eq!(
            reply_of(&out).node("Image").unwrap().text("MediaId"),
            Some("MEDIA_IMG")
        );
        let out = e.push("default", mode, &ask("voice")).await;
        assert_eq!(
            reply_of(&out).node("Voice").unwrap().text("MediaId"),
            Some("MEDIA_VOICE")
        );
        let out = e.push("default", mode, &ask("video")).await;
        assert_eq!(
            reply_of(&out).node("Video").unwrap().text("Title"),
            Some("T")
        );
        let out = e.push("default", mode, &ask("music")).await;
        assert_eq!(
            reply_of(&out).node("Music").unwrap().text("HQMusicUrl"),
            Some("http://m/hq.mp3")
        );
        let out = e.push("default", mode, &ask("news")).await;
        let r = reply_of(&out);
        assert_eq!(r.text("ArticleCount"), Some("2"));
        assert_eq!(r.node("Articles").unwrap().all("item").count(), 2);
        let out = e.push("default", mode, &ask("order 42")).await;
        assert_eq!(reply_of(&out).text("Content"), Some("order noted"));
        let out = e.push("default", mode, &ask("a]]>b")).await;
        assert_eq!(reply_of(&out).text("Content"), Some("tricky ]]> a]]>b"));
        id += 1;
        let sub = messages::sample("subscribe", GH, USER, now() + id as i64, id, None).unwrap();
        assert_eq!(
            reply_of(&e.push("default", mode, &sub).await).text("Content"),
            Some("welcome")
        );
        id += 1;
        let click =
            messages::sample("CLICK", GH, USER, now() + id as i64, id, Some("V1001")).unwrap();
        assert_eq!(
            reply_of(&e.push("default", mode, &click).await).text("Content"),
            Some("clicked V1001")
        );
        id += 1;
        let other =
            messages::sample("CLICK", GH, USER, now() + id as i64, id, Some("V2002")).unwrap();
        assert_eq!(
            e.push("default", mode, &other).await.body,
            "success",
            "no rule, no webhook"
        );
    }
}

/// Sends a raw push and returns the status.
async fn raw_push(e: &Env, account_path: &str, query: &str, body: String) -> u16 {
    e.http
        .post(format!("{}{account_path}?{query}", e.gw.url()))
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn sign_query(ts: i64, nonce: &str) -> String {
    format!(
        "signature={}&timestamp={ts}&nonce={nonce}",
        server_signature(TOKEN, &ts.to_string(), nonce)
    )
}

fn safe_query(ts: i64, nonce: &str, encrypt: &str) -> String {
    format!(
        "{}&encrypt_type=aes&msg_signature={}",
        sign_query(ts, nonce),
        msg_signature(TOKEN, &ts.to_string(), nonce, encrypt)
    )
}

#[tokio::test]
async fn bad_pushes_get_a_4xx_and_reach_no_handler() {
    let e = env(&rules(), "").await;
    let p = "/wx/plain-plaintext/service";
    let safe = "/wx/plain/service";
    let ts = now();
    let xml = wxgate_proto::message::write_fields(&text("x", 1));
    let crypt = MsgCrypt::new(TOKEN, KEY, OA).unwrap();

    // Forged signature.
    let q = format!("signature={}&timestamp={ts}&nonce=n1", "0".repeat(40));
    assert_eq!(raw_push(&e, p, &q, xml.clone()).await, 403);
    // Missing signature.
    assert_eq!(
        raw_push(&e, p, &format!("timestamp={ts}&nonce=n1"), xml.clone()).await,
        400
    );
    // Forged msg_signature.
    let sealed = crypt.seal(&xml, &ts.to_string(), "n2");
    let env_xml = Envelope::to_xml(GH, &sealed.encrypt);
    let q = format!(
        "{}&encrypt_type=aes&msg_signature={}",
        sign_query(ts, "n2"),
        "1".repeat(40)
    );
    assert_eq!(raw_push(&e, safe, &q, env_xml.clone()).await, 403);
    // Wrong appid inside a correctly signed message.
    let other = MsgCrypt::new(TOKEN, KEY, "wxsomeoneelse").unwrap();
    let sealed = other.seal(&xml, &ts.to_string(), "n3");
    assert_eq!(
        raw_push(
            &e,
            safe,
            &safe_query(ts, "n3", &sealed.encrypt),
            Envelope::to_xml(GH, &sealed.encrypt)
        )
        .await,
        403
    );
    // Corrupted Encrypt: bad base64, and valid base64 of the wrong length.
    for bad in [
        "!!!notbase64!!!",
        "QUJD",
        &sealed.encrypt[..sealed.encrypt.len() - 8],
    ] {
        assert_eq!(
            raw_push(
                &e,
                safe,
                &safe_query(ts, "n4", bad),
                Envelope::to_xml(GH, bad)
            )
            .await,
            400,
            "{bad}"
        );
    }
    // Malformed XML, an XML without the message fields, a DTD with an external entity.
    for body in [
        "<xml><ToUserName>".to_owned(),
        "not xml at all".to_owned(),
        "<xml><MsgType>text</MsgType></xml>".to_owned(),
        r#"<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><ToUserName>&xxe;</ToUserName></xml>"#.to_owned(),
        "<xml><Content>&xxe;</Content></xml>".to_owned(),
    ] {
        assert_eq!(raw_push(&e, p, &sign_query(ts, "n5"), body.clone()).await, 400, "{body}");
    }
    // An old timestamp (signed correctly).
    let old = ts - 301;
    let xml_old = wxgate_proto::message::write_fields(&text("x", 2));
    assert_eq!(raw_push(&e, p, &sign_query(old, "n6"), xml_old).await, 403);
    // An oversized body.
    let huge = format!("<xml><Content>{}</Content></xml>", "a".repeat(1 << 20));
    assert_eq!(raw_push(&e, p, &sign_query(ts, "n7"), huge).await, 413);
    assert_eq!(e.seen(), 0, "no refused push reached a handler");

    // A replay: the same timestamp and nonce with another message.
    let first = wxgate_proto::message::write_fields(&text("first", 3));
    assert_eq!(raw_push(&e, p, &sign_query(ts, "n8"), first).await, 200);
    assert_eq!(e.seen(), 1);
    let second = wxgate_proto::message::write_fields(&text("second", 4));
    assert_eq!(raw_push(&e, p, &sign_query(ts, "n8"), second).await, 403);
    assert_eq!(e.seen(), 1, "the replay reached no handler");

    // A retry gets the cached answer and runs nothing.
    let same = wxgate_proto::message::write_fields(&text("first", 3));
    assert_eq!(
        raw_push(&e, p, &sign_query(ts, "n8"), same).await,
        200,
        "a retry gets the cached answer"
    );
    assert_eq!(e.seen(), 1);

    // Safe mode: the exact push again gets the dedup answer and runs nothing.
    let xml = wxgate_proto::message::write_fields(&text("sealed", 5));
    let sealed = crypt.seal(&xml, &ts.to_string(), "s1");
    let (q, body) = (
        safe_query(ts, "s1", &sealed.encrypt),
        Envelope::to_xml(GH, &sealed.encrypt),
    );
    assert_eq!(raw_push(&e, safe, &q, body.clone()).await, 200);
    assert_eq!(e.seen(), 2);
    assert_eq!(raw_push(&e, safe, &q, body).await, 200, "the cached answer");
    assert_eq!(e.seen(), 2, "the exact replay reached no handler");
}

/// What a stranger can make the envelope reader read: in safe mode the URL `signature`
/// is optional, so a body reaches the XML scanner before `msg_signature` is checked.
/// Malformed, entity-laden, too deep or too wide envelopes are 400s, a well-formed one
/// under a forged `msg_signature` a 403, and none reaches a handler.
#[tokio::test]
async fn a_strangers_envelope_is_refused_before_any_handler() {
    let e = env(&rules(), "").await;
    let safe = "/wx/plain/service";
    let ts = now();
    let q = format!(
        "timestamp={ts}&nonce=s&encrypt_type=aes&msg_signature={}",
        "0".repeat(40)
    );
    let deep = format!("<xml>{}x{}</xml>", "<a>".repeat(9), "</a>".repeat(9));
    let wide = format!("<xml>{}<Encrypt>QUJD</Encrypt></xml>", "<a/>".repeat(1024));
    for body in [
        r#"<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>"#.to_owned(),
        "<xml><Encrypt>&e;</Encrypt></xml>".to_owned(),
        "<xml><Encrypt>&#0;</Encrypt></xml>".to_owned(),
        "<xml><Encrypt><![CDATA[QUJD</Encrypt></xml>".to_owned(),
        "<xml><Encrypt>QUJD</Encrypt><!-- </xml>".to_owned(),
        "<xml><Encrypt>QUJD</Other></xml>".to_owned(),
        "<xml><Enc\x0crypt>QUJD</Enc\x0crypt></xml>".to_owned(),
        "<xml/><xml><Encrypt>QUJD</Encrypt></xml>".to_owned(),
        deep,
        wide,
    ] {
        assert_eq!(raw_push(&e, safe, &q, body.clone()).await, 400, "{body}");
    }
    let forged = Envelope::to_xml(GH, "QUJDRA==");
    assert_eq!(raw_push(&e, safe, &q, forged).await, 403);
    assert_eq!(e.seen(), 0, "no stranger's envelope reached a handler");
}

/// A push replayed after its dedup answer expired (simulated on Redis by deleting the
/// answer, which the embedded store's ledger cannot be asked to do) is refused: its
/// nonce is still remembered, in every mode.
#[tokio::test]
async fn a_push_replayed_after_its_dedup_answer_expired_is_refused() {
    let redis = RedisServer::start();
    let recorder = Arc::new(Recorder::default());
    let e = Env {
        h: Setup::new()
            .tag("late-replay")
            .extra(&rules())
            .store(&redis_store(&redis.url()))
            .handler("plain-plaintext", recorder.clone())
            .handler("plain", recorder.clone())
            .start()
            .await,
        recorder,
    };
    let (p, safe) = ("/wx/plain-plaintext/service", "/wx/plain/service");
    let ts = now();
    let crypt = MsgCrypt::new(TOKEN, KEY, OA).unwrap();
    let store = e.gw.state.ctx.store.clone();
    let digest = |xml: &str| Message::parse(xml, 1 << 16).unwrap().dedup_key();

    let same = wxgate_proto::message::write_fields(&text("first", 3));
    assert_eq!(
        raw_push(&e, p, &sign_query(ts, "n8"), same.clone()).await,
        200
    );
    assert_eq!(
        raw_push(&e, p, &sign_query(ts, "n8"), same.clone()).await,
        200
    );
    assert_eq!(e.seen(), 1);
    let key = wxgate::store::keys::dedup("plain-plaintext", &digest(&same));
    assert!(store.delete(&key).await.unwrap());
    assert_eq!(raw_push(&e, p, &sign_query(ts, "n8"), same).await, 403);
    assert_eq!(e.seen(), 1, "the late replay reached no handler");

    let xml = wxgate_proto::message::write_fields(&text("sealed", 5));
    let sealed = crypt.seal(&xml, &ts.to_string(), "s1");
    let (q, body) = (
        safe_query(ts, "s1", &sealed.encrypt),
        Envelope::to_xml(GH, &sealed.encrypt),
    );
    assert_eq!(raw_push(&e, safe, &q, body.clone()).await, 200);
    assert_eq!(e.seen(), 2);
    assert!(store
        .get(&wxgate::store::keys::nonce("plain", &ts.to_string(), "s1"))
        .await
        .unwrap()
        .is_some());
    let key = wxgate::store::keys::dedup("plain", &digest(&xml));
    assert!(store
        .get(&key)
        .await
        .unwrap()
        .is_some_and(|v| v.starts_with("done:")));
    assert!(store.delete(&key).await.unwrap());
    assert_eq!(raw_push(&e, safe, &q, body).await, 403);
    assert_eq!(e.seen(), 2, "the late replay reached no handler");
}

#[tokio::test]
async fn an_account_takes_only_its_own_modes_pushes() {
    let e = env(&rules(), "").await;
    let http = reqwest::Client::new();
    let mut id = 770;
    for account_mode in MODES {
        for push_mode in MODES {
            id += 1;
            let account = twin("default", account_mode);
            let target = e.target_exact(&account, push_mode);
            let out = push(&http, &target, &text("hello", id), &PushOptions::default())
                .await
                .unwrap();
            if push_mode == account_mode {
                assert_eq!(out.status, 200, "{account}: {push_mode} {}", out.body);
                assert!(reply_of(&out).text("Content").unwrap().starts_with("Hi "));
                assert_eq!(out.encrypted, account_mode.is_encrypted());
            } else if push_mode.is_encrypted() && account_mode.is_encrypted() {
                // Compatible and safe pushes differ only in the plaintext copy, which is
                // never read: either is a valid encrypted push, answered encrypted.
                assert_eq!(out.status, 200, "{account}: {push_mode} {}", out.body);
                assert!(out.encrypted);
            } else {
                assert_eq!(out.status, 403, "{account}: {push_mode} {}", out.body);
            }
        }
    }
}

/// A webhook server for tests: checks the signature, counts calls, answers after a delay.
struct Hook {
    url: String,
    calls: Arc<AtomicU64>,
    bad_signatures: Arc<AtomicU64>,
}

async fn webhook(delay: Duration, secret: &'static str) -> Hook {
    let calls = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let (c, b) = (calls.clone(), bad.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (c, b) = (c.clone(), b.clone());
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                let ts: i64 = headers["x-wxgate-timestamp"].to_str().unwrap().parse().unwrap();
                let expected = wxgate::push::webhook::sign(secret.as_bytes(), ts, &body);
                if headers["x-wxgate-signature"].to_str().unwrap() != expected {
                    b.fetch_add(1, Ordering::SeqCst);
                }
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert!(v["account"].as_str().unwrap().starts_with("default"));
                assert!(v["xml"].as_str().unwrap().starts_with("<xml>"));
                tokio::time::sleep(delay).await;
                let content = v["message"]["raw"]["Content"].as_str().unwrap_or("").to_owned();
                if content == "quiet" {
                    return (axum::http::StatusCode::NO_CONTENT, String::new());
                }
                (
                    axum::http::StatusCode::OK,
                    serde_json::json!({"type": "text", "content": format!("webhook says: {content}")}).to_string(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Hook {
        url: format!("http://{addr}/hook"),
        calls,
        bad_signatures: bad,
    }
}

fn webhook_toml(url: &str) -> String {
    let mut toml = rules();
    for twin in ["default", "default-compatible", "default-plaintext"] {
        toml.push_str(&format!("\n[accounts.{twin}.webhook]\nurl = \"{url}\"\nsecret = \"hook-secret\"\ntimeout_ms = 20000\n"));
    }
    toml
}

#[tokio::test]
async fn a_retried_push_gets_the_same_reply_and_the_webhook_is_called_once() {
    let hook = webhook(Duration::from_millis(50), "hook-secret").await;
    let e = env(&webhook_toml(&hook.url), "").await;
    let msg = text("from the webhook please", 555);
    for mode in [MessageMode::Safe, MessageMode::Plaintext] {
        let a = e.push("default", mode, &msg).await;
        let b = e.push("default", mode, &msg).await;
        assert_eq!(
            reply_of(&a).text("Content"),
            Some("webhook says: from the webhook please")
        );
        assert_eq!(reply_of(&b).text("Content"), reply_of(&a).text("Content"));
    }
    // The very same request again (WeChat's retry with the same timestamp and nonce).
    let opts = PushOptions {
        timestamp: Some(now()),
        nonce: Some("retry-nonce".into()),
    };
    let c = push(
        &e.http,
        &e.target("default", MessageMode::Safe),
        &msg,
        &opts,
    )
    .await
    .unwrap();
    let d = push(
        &e.http,
        &e.target("default", MessageMode::Safe),
        &msg,
        &opts,
    )
    .await
    .unwrap();
    assert_eq!(reply_of(&c).text("Content"), reply_of(&d).text("Content"));
    assert_eq!(
        hook.calls.load(Ordering::SeqCst),
        2,
        "one webhook call for one message, on each of the two accounts it was pushed to"
    );
    assert_eq!(
        hook.bad_signatures.load(Ordering::SeqCst),
        0,
        "the webhook signature verifies"
    );
    // 204: no reply.
    let quiet = e
        .push("default", MessageMode::Safe, &text("quiet", 556))
        .await;
    assert_eq!(quiet.body, "success");
    // Rules come before the webhook.
    let ruled = e
        .push("default", MessageMode::Safe, &text("hello", 557))
        .await;
    assert!(reply_of(&ruled).text("Content").unwrap().starts_with("Hi "));
    assert_eq!(hook.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_late_webhook_reply_goes_out_as_a_customer_service_message() {
    let hook = webhook(Duration::from_secs(6), "hook-secret").await;
    let e = env(&webhook_toml(&hook.url), "").await;
    let started = Instant::now();
    let out = e
        .push("default", MessageMode::Safe, &text("slow one", 900))
        .await;
    let answered = started.elapsed();
    assert_eq!(out.status, 200);
    assert_eq!(out.body, "success");
    assert!(
        answered < Duration::from_secs(5),
        "answered WeChat in {answered:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sent = e.sb.platform.sent(Some(OA));
        if let Some(m) = sent.first() {
            assert_eq!(m.kind, "custom");
            assert_eq!(m.body["touser"], USER);
            assert_eq!(m.body["msgtype"], "text");
            assert_eq!(m.body["text"]["content"], "webhook says: slow one");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the late reply was never delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = &e.gw.state.pushes.webhook_stats["default"];
    assert_eq!(stats.late_delivered.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_dead_webhook_is_counted_and_wechat_gets_success() {
    let e = env(&webhook_toml("http://127.0.0.1:9/nothing-listens"), "").await;
    let out = e
        .push("default", MessageMode::Safe, &text("anyone?", 901))
        .await;
    assert_eq!(out.body, "success");
    let stats = &e.gw.state.pushes.webhook_stats["default"];
    assert_eq!(stats.failed.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechatpy_encrypts_a_push_and_reads_the_reply() {
    let e = env(&rules(), "").await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/interop/wechatpy_push.py"
    );
    let out = std::process::Command::new("python3")
        .args([
            script,
            &format!("{}/wx/service", e.gw.url()),
            TOKEN,
            KEY,
            OA,
            "hello",
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "wechatpy failed (scripts/install-deps.sh installs it):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["type"], "text");
    assert_eq!(v["content"], format!("Hi {USER}, you said hello"));
    assert_eq!(v["source"], GH);
    assert_eq!(v["target"], USER);
}

#[tokio::test]
async fn a_full_push_memory_refuses_new_pushes_keeps_its_promises_and_recovers() {
    let e = env(&rules(), "[service]\nmax_remembered_pushes = 20\n").await;
    let target = e.target("plain", MessageMode::Safe);
    let at = |clock: &wxgate::Clock, nonce: &str| PushOptions {
        timestamp: Some(clock.now()),
        nonce: Some(nonce.into()),
    };
    // Made once: a message carries its CreateTime, and a retry is the same message (made
    // again a second later it would be another push, refused at the ceiling).
    let flood: Vec<Fields> = (0..30u64).map(|i| text("flood", 10_000 + i)).collect();
    let mut statuses = Vec::new();
    for (i, msg) in flood.iter().enumerate() {
        let out = push(&e.http, &target, msg, &at(&e.clock, &format!("f{i}")))
            .await
            .unwrap();
        statuses.push(out.status);
    }
    // 20 shared by the harness's 7 accounts: this one holds its reserve (20 / 14 = 1)
    // and the pool the reserves leave (20 - 7 x 1 = 13).
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        14,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 503).count(),
        16,
        "{statuses:?}"
    );
    assert_eq!(e.seen(), 14, "refused pushes reach no handler");
    assert_eq!(
        e.gw.state.pushes.memory.remembered(e.clock.now()),
        14,
        "memory stays at the ceiling"
    );

    // A retry of an accepted push still gets its answer, and runs nothing again.
    let retry = push(&e.http, &target, &flood[0], &at(&e.clock, "f0-retry"))
        .await
        .unwrap();
    assert_eq!(retry.status, 200);
    assert_eq!(e.seen(), 14);
    // A replay of an accepted push's timestamp and nonce with another message: refused.
    let replay_ts = e.clock.now();
    let replay = push(
        &e.http,
        &target,
        &text("forged", 99_999),
        &PushOptions {
            timestamp: Some(replay_ts),
            nonce: Some("f1".into()),
        },
    )
    .await
    .unwrap();
    assert_ne!(replay.status, 200);
    assert_eq!(e.seen(), 14);

    // Once the window has passed, pushes are accepted again.
    e.clock.advance(301);
    let later = push(
        &e.http,
        &target,
        &text("after", 20_000),
        &at(&e.clock, "later"),
    )
    .await
    .unwrap();
    assert_eq!(later.status, 200);
    assert_eq!(e.seen(), 15);
}

/// An embedder's handler that calls itself "rules" and answers every text.
struct NamedLikeTheRules;

impl wxgate::push::handler::Handler for NamedLikeTheRules {
    fn name(&self) -> &'static str {
        "rules"
    }
    fn handle<'a>(
        &'a self,
        _: &'a wxgate::push::handler::MessageContext,
    ) -> futures_util::future::BoxFuture<'a, wxgate::Result<wxgate::push::handler::Handled>> {
        let reply = wxgate_proto::Reply::Text {
            content: "from the embedder".into(),
        };
        Box::pin(async move { Ok(wxgate::push::handler::Handled::Reply(reply)) })
    }
}

/// `wxgate_pushes_total{outcome}` counts a handler by its place in the chain (set where
/// the chain is built), not by the name it gives: an embedder's handler named "rules"
/// is counted as a handler.
#[tokio::test]
async fn an_embedded_handler_is_counted_as_one_whatever_its_name() {
    let h = Setup::new()
        .tag("push-kinds")
        .extra(&plaintext_account("embedded", ""))
        .handler("embedded", Arc::new(NamedLikeTheRules))
        .start()
        .await;
    let count = |text: &str, outcome: &str| {
        let line = format!("wxgate_pushes_total{{outcome=\"{outcome}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .map_or(0.0, |v| v.trim().parse::<f64>().unwrap())
    };
    let before = metrics_text(&h.gw.url()).await;
    let msg = messages::sample("text", GH, USER, now(), 77_001, Some("hi")).unwrap();
    let http = reqwest::Client::new();
    let out = push(
        &http,
        &plaintext_target(&h, "embedded"),
        &msg,
        &PushOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(out.status, 200);
    assert!(out.body.contains("from the embedder"), "{}", out.body);
    let after = metrics_text(&h.gw.url()).await;
    // Other tests of this binary push too (the counters are the process's), so only the
    // handler outcome is read: it rose, where the name "rules" once counted as a rule.
    assert!(
        count(&after, "handler") >= count(&before, "handler") + 1.0,
        "{after}"
    );
}
