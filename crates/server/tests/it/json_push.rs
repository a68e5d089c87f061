//! Pushes in JSON (数据格式 JSON), as a Mini Program receives them: every mode through the
//! sandbox's pusher, the answer WeChat's rule asks for (`success`, the reply sent through
//! the customer-service API once), the webhook's one shape for both formats, the
//! document's own safe-mode example over HTTP, and bad input refused with a 4xx before
//! any handler runs.

use crate::common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use common::*;
use wxgate_proto::crypto::MsgCrypt;
use wxgate_proto::signature::{msg_signature, server_signature};
use wxgate_proto::xml::Fields;
use wxgate_proto::{Envelope, Event, PushFormat};
use wxgate_sandbox::messages;
use wxgate_sandbox::pusher::{push, MessageMode, PushOptions, PushOutcome, PushTarget};

const TOKEN: &str = "minipushtoken";
const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const GH: &str = "gh_sandboxmini1";
const USER: &str = "oMiniUser00000000000000001";
const MODES: [MessageMode; 3] = [
    MessageMode::Plaintext,
    MessageMode::Compatible,
    MessageMode::Safe,
];

/// A Mini Program account per mode (`mp-safe`, ...), JSON pushes, one rule (before the
/// recorder, which sees only what the rule lets pass).
fn accounts(format: &str) -> String {
    let mut out = String::new();
    for mode in MODES {
        out.push_str(&format!(
            r#"
[accounts.mp-{mode}]
kind = "miniprogram"
appid = "{MINI}"
secret = "sandbox-secret-miniapp-0001"
token = "{TOKEN}"
encoding_aes_key = "{KEY}"
mode = "{mode}"
{format}
[[accounts.mp-{mode}.rules]]
contains = "hello"
reply = {{ type = "text", content = "Hi {{openid}}, you said {{content}}" }}
"#
        ));
    }
    out
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

async fn env(extra: &str) -> Env {
    let recorder = Arc::new(Recorder::default());
    let mut setup = Setup::new().tag("json-push").extra(extra);
    for mode in MODES {
        setup = setup.handler(&format!("mp-{mode}"), recorder.clone());
    }
    Env {
        h: setup.start().await,
        recorder,
    }
}

impl Env {
    fn target(&self, account: &str, mode: MessageMode, format: PushFormat) -> PushTarget {
        PushTarget {
            mode,
            ..target(self, account, format)
        }
    }

    async fn push_json(&self, mode: MessageMode, msg: &Fields, opts: &PushOptions) -> PushOutcome {
        let target = self.target(&format!("mp-{mode}"), mode, PushFormat::Json);
        push(&self.http, &target, msg, opts).await.unwrap()
    }

    fn seen(&self) -> usize {
        self.recorder.seen.lock().unwrap().len()
    }

    /// The customer-service messages the sandbox received for the Mini Program.
    fn sent_texts(&self) -> Vec<String> {
        self.sb
            .platform
            .sent(Some(MINI))
            .iter()
            .filter(|m| m.kind == "custom" && m.body["touser"] == USER)
            .map(|m| m.body["text"]["content"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    async fn wait_sent(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let sent = self.sent_texts();
            if sent.len() >= n || Instant::now() > deadline {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn text(content: &str, id: u64) -> Fields {
    messages::sample("text", GH, USER, now(), id, Some(content)).unwrap()
}

#[tokio::test]
async fn json_pushes_in_every_mode_answer_success_and_the_reply_goes_out_once() {
    let e = env(&accounts("format = \"json\"")).await;
    for (i, mode) in MODES.into_iter().enumerate() {
        let msg = text(&format!("hello {mode}"), 700 + i as u64);
        let opts = PushOptions {
            timestamp: Some(now()),
            nonce: Some(format!("n-{mode}")),
        };
        let first = e.push_json(mode, &msg, &opts).await;
        assert_eq!(
            (first.status, first.body.as_str()),
            (200, "success"),
            "{mode}"
        );
        // WeChat's retry: the very same request.
        let retry = e.push_json(mode, &msg, &opts).await;
        assert_eq!(
            (retry.status, retry.body.as_str()),
            (200, "success"),
            "{mode}"
        );
        let sent = e.wait_sent(i + 1).await;
        assert_eq!(
            sent.last().map(String::as_str),
            Some(format!("Hi {USER}, you said hello {mode}").as_str()),
            "{mode}: the rule's reply went out as a customer-service message"
        );
    }
    // Each reply was sent once, retries or not.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(e.sent_texts().len(), 3);
    // A push no rule answers reaches the next handler, once however often it is sent.
    let msg = text("no rule for this", 799);
    let opts = PushOptions {
        timestamp: Some(now()),
        nonce: Some("n-pass".into()),
    };
    for _ in 0..2 {
        let out = e.push_json(MessageMode::Safe, &msg, &opts).await;
        assert_eq!(out.body, "success");
    }
    assert_eq!(e.seen(), 1);
    assert_eq!(e.sent_texts().len(), 3);
}

fn msg_time(f: &Fields) -> i64 {
    f.text("CreateTime").unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_mini_programs_events_arrive_typed() {
    let e = env(&accounts("format = \"json\"")).await;
    for (i, kind) in [
        "user_enter_tempsession",
        "wxa_media_check",
        "miniprogrampage",
    ]
    .into_iter()
    .enumerate()
    {
        let msg = messages::sample(kind, GH, USER, now(), 800 + i as u64, None).unwrap();
        let out = e
            .push_json(MessageMode::Safe, &msg, &PushOptions::default())
            .await;
        assert_eq!((out.status, out.body.as_str()), (200, "success"), "{kind}");
    }
    let seen = e.recorder.seen.lock().unwrap().clone();
    assert_eq!(
        seen[0].event(),
        Some(&Event::UserEnterTempsession {
            session_from: "sessionFrom".into()
        })
    );
    assert!(
        matches!(seen[1].event(), Some(Event::WxaMediaCheck { trace_id, suggest: Some(s), label: Some(100), .. })
        if trace_id == "60f96f1d-3845297a-1976a3ae" && s == "pass")
    );
    assert!(matches!(
        &seen[2].kind,
        wxgate_proto::MessageKind::MiniProgramPage { page_path, .. } if page_path == "pages/index/index"
    ));
}

fn target(h: &Harness, account: &str, format: PushFormat) -> PushTarget {
    PushTarget {
        url: h.url(&format!("/wx/{account}/service")),
        token: TOKEN.into(),
        appid: MINI.into(),
        encoding_aes_key: Some(KEY.into()),
        mode: MessageMode::Safe,
        format,
    }
}

/// A webhook that records what it is sent and replies.
async fn recording_hook() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let b = bodies.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: Bytes| {
            let b = b.clone();
            async move {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let content = v["message"]["raw"]["Content"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                b.lock().unwrap().push(v);
                serde_json::json!({"type": "text", "content": format!("hook: {content}")})
                    .to_string()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, bodies)
}

#[tokio::test]
async fn the_webhook_receives_one_shape_for_both_formats() {
    let (url, bodies) = recording_hook().await;
    let mut extra = String::new();
    for (name, format) in [("as-xml", "xml"), ("as-json", "json")] {
        extra.push_str(&format!(
            "\n[accounts.{name}]\nkind = \"miniprogram\"\nappid = \"{MINI}\"\nsecret = \"sandbox-secret-miniapp-0001\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\nmode = \"safe\"\nformat = \"{format}\"\n[accounts.{name}.webhook]\nurl = \"{url}\"\nsecret = \"s\"\n"
        ));
    }
    let e = Setup::new().tag("json-push").extra(&extra).start().await;
    let msg = text("same message", 901);
    let xml = push(
        &e.http,
        &target(&e, "as-xml", PushFormat::Xml),
        &msg,
        &PushOptions::default(),
    )
    .await
    .unwrap();
    // An XML push gets its passive reply, encrypted.
    assert!(xml.encrypted);
    assert_eq!(
        xml.reply.unwrap().text("Content"),
        Some("hook: same message")
    );
    let json = push(
        &e.http,
        &target(&e, "as-json", PushFormat::Json),
        &msg,
        &PushOptions::default(),
    )
    .await
    .unwrap();
    // A JSON push gets `success`, and the webhook's reply goes out as a message.
    assert_eq!(json.body, "success");
    let deadline = Instant::now() + Duration::from_secs(10);
    while e.sb.platform.sent(Some(MINI)).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = e.sb.platform.sent(Some(MINI));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["text"]["content"], "hook: same message");

    let bodies = bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2);
    let (a, b) = (&bodies[0], &bodies[1]);
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(a), keys(b));
    assert_eq!(
        a["message"], b["message"],
        "one message shape for both formats"
    );
    assert_eq!(
        (a["format"].as_str(), b["format"].as_str()),
        (Some("xml"), Some("json"))
    );
    assert!(a["xml"].as_str().unwrap().starts_with("<xml>"));
    assert!(b["xml"].as_str().unwrap().starts_with("<xml>"));
    assert!(b["plaintext"].as_str().unwrap().starts_with('{'));
    assert_eq!(
        a["message"]["raw"]["CreateTime"],
        msg_time(&msg).to_string()
    );
}

/// The safe-mode JSON push of 消息推送, sent over HTTP as the document shows it, on a
/// gateway whose clock stands at the document's timestamp.
#[tokio::test]
async fn the_documents_safe_mode_json_push_is_accepted_as_is() {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("../../../proto/tests/data/official.json")).unwrap();
    let e = v["msg_crypt"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "doc-msgpush-safe-json-push")
        .unwrap()
        .clone();
    let s = |k: &str| e[k].as_str().unwrap().to_owned();
    let extra = format!(
        "\n[accounts.doc]\nkind = \"miniprogram\"\nappid = \"{}\"\nsecret = \"x\"\ntoken = \"{}\"\nencoding_aes_key = \"{}\"\nmode = \"safe\"\nformat = \"json\"\n",
        s("appid"),
        s("token"),
        s("encoding_aes_key")
    );
    let recorder = Arc::new(Recorder::default());
    let clock = wxgate::Clock::system();
    clock.advance(s("timestamp").parse::<i64>().unwrap() - now());
    let h = Setup::new()
        .extra(&extra)
        .clock(clock)
        .handler("doc", recorder.clone())
        .start()
        .await;
    let url = h.url(&format!(
        "/wx/doc/service?signature={}&timestamp={}&nonce={}&openid={}&encrypt_type=aes&msg_signature={}",
        s("signature"),
        s("timestamp"),
        s("nonce"),
        s("openid"),
        s("msg_signature")
    ));
    let body = e["body"].to_string();
    for _ in 0..2 {
        let r = h.http.post(&url).body(body.clone()).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "success");
    }
    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "WeChat's retry ran no handler");
    assert!(matches!(seen[0].event(), Some(Event::Unknown { name }) if name == "debug_demo"));
    assert_eq!(seen[0].raw.text("debug_str"), Some("hello world"));
    assert_eq!(seen[0].from_user_name, s("openid"));
}

fn signed(ts: i64, nonce: &str) -> String {
    format!(
        "signature={}&timestamp={ts}&nonce={nonce}",
        server_signature(TOKEN, &ts.to_string(), nonce)
    )
}

#[tokio::test]
async fn bad_json_pushes_get_a_4xx_and_reach_no_handler() {
    let e = env(&accounts("format = \"json\"")).await;
    let post = |path: &str, query: String, body: String| {
        let url = e.url(&format!("{path}?{query}"));
        let http = e.http.clone();
        async move {
            let r = http.post(url).body(body).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let head = format!(
        r#""ToUserName":"{GH}","FromUserName":"{USER}","CreateTime":{},"MsgType":"text""#,
        now()
    );
    let deep = format!("{{{head},\"a\":{}1{}}}", "{\"b\":".repeat(9), "}".repeat(9));
    let wide = format!("{{{head},\"a\":[{}0]}}", "0,".repeat(2000));
    let plain = "/wx/mp-plaintext/service";
    for (i, (body, status, why)) in [
        (
            format!("{{{head},\"Content\":\"x\""),
            400,
            "EOF while parsing an object",
        ),
        (
            format!("[{{{head}}}]"),
            400,
            "neither an XML document nor a JSON object",
        ),
        (format!("{{{head}}}"), 400, "missing field Content"),
        (deep, 400, "nesting too deep"),
        (wide, 400, "more than 1024 elements"),
        (
            "<xml><MsgType>text</MsgType></xml>".to_owned(),
            400,
            "the account's format is json",
        ),
        (
            "success".to_owned(),
            400,
            "neither an XML document nor a JSON object",
        ),
        (
            format!("{{{head},\"Content\":1e999}}"),
            400,
            "number out of range",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let (got, text) = post(plain, signed(now(), &format!("bad{i}")), body).await;
        assert_eq!(got, status, "{why}: {text}");
        assert!(text.contains(why), "{why}: {text}");
    }
    // Safe mode: a plaintext JSON push, a forged Encrypt, a wrong-appid ciphertext.
    let safe = "/wx/mp-safe/service";
    let ts = now();
    let (got, _) = post(
        safe,
        signed(ts, "p1"),
        format!("{{{head},\"Content\":\"hello\"}}"),
    )
    .await;
    assert_eq!(got, 403, "plaintext into a safe-mode account");
    let crypt = MsgCrypt::new(TOKEN, KEY, MINI).unwrap();
    let inner = format!("{{{head},\"Content\":\"hello\"}}");
    let sealed = crypt.seal(&inner, &ts.to_string(), "p2");
    // Another first character: always a different ciphertext than the signed one.
    let first = if sealed.encrypt.starts_with('A') {
        "B"
    } else {
        "A"
    };
    let forged = Envelope::to_json(GH, &format!("{first}{}", &sealed.encrypt[1..]));
    let q = format!(
        "{}&encrypt_type=aes&msg_signature={}",
        signed(ts, "p2"),
        sealed.msg_signature
    );
    assert_eq!(post(safe, q, forged).await.0, 403, "forged Encrypt");
    let other = MsgCrypt::new(TOKEN, KEY, "wxsomeoneelse0001").unwrap();
    let sealed = other.seal(&inner, &ts.to_string(), "p3");
    let q = format!(
        "{}&encrypt_type=aes&msg_signature={}",
        signed(ts, "p3"),
        sealed.msg_signature
    );
    let body = Envelope::to_json(GH, &sealed.encrypt);
    assert_eq!(post(safe, q, body).await.0, 403, "another app's ciphertext");
    // An Encrypt that is not base64, under its own valid msg_signature.
    let garbage = "not*base64!";
    let q = format!(
        "{}&encrypt_type=aes&msg_signature={}",
        signed(ts, "p4"),
        msg_signature(TOKEN, &ts.to_string(), "p4", garbage)
    );
    let (got, text) = post(safe, q, Envelope::to_json(GH, garbage)).await;
    assert_eq!(got, 400, "{text}");
    assert_eq!(e.seen(), 0, "no bad push reached a handler");

    // A genuine push, then another body under its timestamp and nonce: a replay.
    let (got, text) = post(
        plain,
        signed(ts, "once"),
        format!("{{{head},\"Content\":\"genuine\",\"MsgId\":1}}"),
    )
    .await;
    assert_eq!((got, text.as_str()), (200, "success"));
    let (got, text) = post(
        plain,
        signed(ts, "once"),
        format!("{{{head},\"Content\":\"genuine again\",\"MsgId\":2}}"),
    )
    .await;
    assert_eq!(got, 403, "{text}");
    assert!(text.contains("replay"), "{text}");
    assert_eq!(e.seen(), 1);
}

#[tokio::test]
async fn an_account_without_a_format_reads_each_push_as_it_comes() {
    let e = env(&accounts("")).await;
    let mode = MessageMode::Safe;
    for (format, id) in [(PushFormat::Xml, 1), (PushFormat::Json, 2)] {
        let target = e.target("mp-safe", mode, format);
        let out = push(
            &e.http,
            &target,
            &text("hello", id),
            &PushOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(out.status, 200, "{format}");
        // XML gets its passive reply; JSON gets success and a customer-service message.
        assert_eq!(out.reply.is_some(), format == PushFormat::Xml, "{format}");
    }
    assert_eq!(e.wait_sent(1).await.len(), 1);
}

/// `wxgate sandbox push --format json`, the way a developer tries a Mini Program account.
#[tokio::test]
async fn sandbox_push_sends_json_from_the_command_line() {
    let e = env(&accounts("format = \"json\"")).await;
    let url = e.url("/wx/mp-safe/service");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_wxgate"))
            .args([
                "sandbox",
                "push",
                "--url",
                &url,
                "--mode",
                "safe",
                "--format",
                "json",
                "--appid",
                MINI,
                "--token",
                TOKEN,
                "--aes-key",
                KEY,
                "--to",
                GH,
                "--from",
                USER,
                "--kind",
                "text",
                "--text",
                "hello cli",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["status"].as_u64(), v["body"].as_str()),
        (Some(200), Some("success"))
    );
    assert_eq!(
        e.wait_sent(1).await,
        [format!("Hi {USER}, you said hello cli")]
    );
}
