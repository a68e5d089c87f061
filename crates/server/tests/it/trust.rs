//! The holes found by attacking a running wxgate over HTTP (the trust issue), each driven
//! as the attacker drove it, through the sandbox's pusher or by hand: pushes here; OAuth,
//! the proxy, metrics, connections and rate limits in `trust_web.rs`.

use crate::common;

use std::sync::{Arc, Mutex};

use common::*;
use futures_util::future::BoxFuture;
use wxgate::push::handler::{Handled, Handler, MessageContext};
use wxgate_proto::crypto::MsgCrypt;
use wxgate_proto::message::write_fields;
use wxgate_proto::reply::parse_encrypted_reply;
use wxgate_proto::signature::{msg_signature, server_signature};
use wxgate_proto::xml::{Fields, Value};
use wxgate_proto::{Envelope, Message};
use wxgate_sandbox::messages;
use wxgate_sandbox::pusher::{push, MessageMode, PushOptions, PushTarget};

const TOKEN: &str = "sandboxtoken";
const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const GH: &str = "gh_sandbox00001";
const VICTIM: &str = "oVictim0000000000000000001";
const ATTACKER: &str = "oAttacker00000000000000001";

/// Records what reaches the handlers and answers every text with who sent it.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Message>>,
}

impl Handler for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn handle<'a>(&'a self, ctx: &'a MessageContext) -> BoxFuture<'a, wxgate::Result<Handled>> {
        self.seen.lock().unwrap().push(ctx.message.clone());
        let reply = match ctx.message.raw.text("Content") {
            Some(c) => Handled::Reply(wxgate_proto::Reply::Text {
                content: format!("private answer for {}: {c}", ctx.message.from_user_name),
            }),
            None => Handled::Pass,
        };
        Box::pin(async move { Ok(reply) })
    }
}

struct Env {
    h: Harness,
    recorder: Arc<Recorder>,
}

/// `default` is in safe mode (see `gateway_toml`); `clear` is the same account in
/// plaintext mode, `compat` in compatible mode.
async fn env(top: &str, extra: &str) -> Env {
    let mut accounts = String::new();
    for (name, mode) in [("clear", "plaintext"), ("compat", "compatible")] {
        accounts.push_str(&format!(
            "[accounts.{name}]\nappid = \"{OA}\"\nsecret = \"{OA_SECRET}\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\nmode = \"{mode}\"\n\n"
        ));
    }
    let recorder = Arc::new(Recorder::default());
    let mut setup = Setup::new()
        .tag("trust")
        .top(top)
        .extra(&accounts)
        .extra(extra);
    for account in ["default", "clear", "compat"] {
        setup = setup.handler(account, recorder.clone());
    }
    Env {
        h: setup.start().await,
        recorder,
    }
}

fn text_from(from: &str, content: &str, id: u64, at: i64) -> Fields {
    messages::sample("text", GH, from, at, id, Some(content)).unwrap()
}

impl std::ops::Deref for Env {
    type Target = Harness;

    fn deref(&self) -> &Harness {
        &self.h
    }
}

impl Env {
    fn seen(&self) -> usize {
        self.recorder.seen.lock().unwrap().len()
    }

    fn path(account: &str) -> String {
        if account == "default" {
            "/wx/service".into()
        } else {
            format!("/wx/{account}/service")
        }
    }

    async fn raw(&self, account: &str, query: &str, body: String) -> (u16, String) {
        let r = self
            .http
            .post(format!("{}{}?{query}", self.gw.url(), Self::path(account)))
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    fn target(&self, account: &str, mode: MessageMode) -> PushTarget {
        PushTarget {
            url: format!("{}{}", self.gw.url(), Self::path(account)),
            token: TOKEN.into(),
            appid: OA.into(),
            encoding_aes_key: Some(KEY.into()),
            mode,
            format: Default::default(),
        }
    }
}

fn signed_query(ts: i64, nonce: &str) -> String {
    format!(
        "signature={}&timestamp={ts}&nonce={nonce}",
        server_signature(TOKEN, &ts.to_string(), nonce)
    )
}

/// What a proxy or access log shows of a genuine safe-mode push: its URL and body.
struct Captured {
    query: String,
    body: String,
    ts: i64,
    nonce: String,
}

fn capture_safe_push(message: &Fields, ts: i64, nonce: &str) -> Captured {
    let crypt = MsgCrypt::new(TOKEN, KEY, OA).unwrap();
    let sealed = crypt.seal(&write_fields(message), &ts.to_string(), nonce);
    Captured {
        query: format!(
            "{}&encrypt_type=aes&msg_signature={}",
            signed_query(ts, nonce),
            msg_signature(TOKEN, &ts.to_string(), nonce, &sealed.encrypt)
        ),
        body: Envelope::to_xml(GH, &sealed.encrypt),
        ts,
        nonce: nonce.to_owned(),
    }
}

// 1. `mode` is enforced, and decided from the account, never from the body.

#[tokio::test]
async fn a_safe_mode_account_refuses_a_forged_plaintext_push_under_a_captured_url() {
    let e = env("", "").await;
    let ts = now();
    let genuine = capture_safe_push(&text_from(VICTIM, "hi", 1, ts), ts, "cap1");
    let (status, _) = e.raw("default", &genuine.query, genuine.body.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(e.seen(), 1);

    // The URL's `signature` covers only token, timestamp and nonce: with it, any
    // plaintext body "from" anyone. Dropping encrypt_type and msg_signature, or keeping
    // them, the safe account takes no plaintext.
    let forged = write_fields(&text_from(VICTIM, "transfer everything", 2, ts));
    for query in [
        signed_query(genuine.ts, "fresh-nonce"),
        signed_query(genuine.ts, &genuine.nonce),
        format!("{}&encrypt_type=raw", signed_query(genuine.ts, "n2")),
    ] {
        let (status, body) = e.raw("default", &query, forged.clone()).await;
        assert_eq!(status, 403, "{query}: {body}");
    }
    let (status, _) = e.raw("default", &genuine.query, forged.clone()).await;
    assert_ne!(
        status, 200,
        "a plaintext body under the captured encrypted URL"
    );
    assert_eq!(e.seen(), 1, "no forged push reached a handler");

    // Through the sandbox's pusher too: a plaintext-mode push to a safe account.
    let out = push(
        &e.http,
        &e.target("default", MessageMode::Plaintext),
        &text_from(VICTIM, "hello", 3, now()),
        &PushOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(out.status, 403);
    // And the other way round: an encrypted push to a plaintext account.
    let out = push(
        &e.http,
        &e.target("clear", MessageMode::Safe),
        &text_from(VICTIM, "hello", 4, now()),
        &PushOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(out.status, 403);
    assert_eq!(e.seen(), 1);
}

#[tokio::test]
async fn an_unsigned_msgtype_in_the_envelope_does_not_turn_the_reply_into_plaintext() {
    let e = env("", "").await;
    let ts = now();
    let secret = "my card number is 4111";
    let cap = capture_safe_push(&text_from(VICTIM, secret, 10, ts), ts, "m1");
    // The attacker adds a plaintext MsgType (and a forged Content) beside Encrypt.
    let doctored = cap.body.replace(
        "</ToUserName>",
        "</ToUserName><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[forged]]></Content>",
    );
    for (account, body) in [
        ("default", &cap.body),
        ("default", &doctored),
        ("compat", &doctored),
    ] {
        let (status, answer) = e.raw(account, &cap.query, body.clone()).await;
        assert_eq!(status, 200, "{account}: {answer}");
        assert!(
            !answer.contains(secret),
            "{account}: the reply leaked: {answer}"
        );
        assert!(!answer.contains("forged"), "{account}: {answer}");
        parse_encrypted_reply(&answer, 1 << 16)
            .unwrap_or_else(|err| panic!("{account}: not an encrypted reply ({err}): {answer}"));
    }
    // The handlers saw the decrypted message only, never the unsigned copy.
    let seen = e.recorder.seen.lock().unwrap();
    assert!(seen.iter().all(|m| m.raw.text("Content") == Some(secret)));
}

// 2. The dedup answer goes only to the same message, after the window and signatures.

#[tokio::test]
async fn a_cached_reply_is_never_handed_to_another_push() {
    let e = env("", "").await;
    let ts = now();
    // The victim's push, answered privately.
    let victim = text_from(VICTIM, "what is my balance", 424242, ts);
    let cap = capture_safe_push(&victim, ts, "v1");
    let (status, first) = e.raw("default", &cap.query, cap.body.clone()).await;
    assert_eq!(status, 200);
    assert!(!first.is_empty());

    // An old timestamp with the victim's MsgId, from a made-up sender: refused on the
    // window before anything is looked up, like an unknown MsgId (no oracle either).
    let old = ts - 30 * 86400;
    for id in [424242, 999_999_999] {
        let forged = capture_safe_push(&text_from(ATTACKER, "x", id, old), old, "o1");
        let (status, answer) = e.raw("default", &forged.query, forged.body).await;
        assert_eq!(status, 403, "MsgId {id}: {answer}");
        assert!(!answer.contains(VICTIM));
    }
    let clear_old = write_fields(&text_from(ATTACKER, "x", 424242, old));
    let (status, _) = e.raw("clear", &signed_query(old, "o2"), clear_old).await;
    assert_eq!(status, 403);

    // A fresh, validly signed push that reuses the victim's MsgId but is another
    // message: handled as itself, never given the victim's answer.
    let other = capture_safe_push(&text_from(ATTACKER, "me too", 424242, ts), ts, "a1");
    let (status, answer) = e.raw("default", &other.query, other.body).await;
    assert_eq!(status, 200);
    let crypt = MsgCrypt::new(TOKEN, KEY, OA).unwrap();
    let open = |answer: &str| {
        let sealed = parse_encrypted_reply(answer, 1 << 16).unwrap();
        crypt
            .open(
                &sealed.msg_signature,
                &sealed.timestamp,
                &sealed.nonce,
                &sealed.encrypt,
            )
            .unwrap()
    };
    let reply = open(&answer);
    assert!(reply.contains("private answer for oAttacker"), "{reply}");
    assert!(!reply.contains(VICTIM), "{reply}");
    assert_eq!(e.seen(), 2);
    // The victim's own retry still gets the victim's answer, and runs nothing.
    let (_, again) = e.raw("default", &cap.query, cap.body).await;
    assert_eq!(open(&again), open(&first));
    assert_eq!(e.seen(), 2);
}

// 3. Distinct events that share sender, time, Event and EventKey are all handled.

#[tokio::test]
async fn distinct_events_sharing_sender_time_and_key_each_reach_the_handlers() {
    let e = env("", "").await;
    let ts = now();
    let media_check = |trace: &str| {
        let mut f = messages::sample("subscribe", GH, VICTIM, ts, 0, None).unwrap();
        for (name, value) in f.0.iter_mut() {
            if name == "Event" {
                *value = Value::Text("wxa_media_check".into());
            }
        }
        f.0.push(("appid".into(), Value::Text(OA.into())));
        f.0.push(("trace_id".into(), Value::Text(trace.into())));
        f.0.push(("version".into(), Value::Text("2".into())));
        f
    };
    for (i, trace) in ["trace-a", "trace-b", "trace-c"].iter().enumerate() {
        let out = push(
            &e.http,
            &e.target("default", MessageMode::Safe),
            &media_check(trace),
            &PushOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(out.status, 200);
        assert_eq!(e.seen(), i + 1, "{trace} was merged with an earlier event");
    }
    // A retry of one of them is still recognised.
    push(
        &e.http,
        &e.target("default", MessageMode::Safe),
        &media_check("trace-b"),
        &PushOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(e.seen(), 3);
    let traces: Vec<_> = e
        .recorder
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.raw.text("trace_id").unwrap().to_owned())
        .collect();
    assert_eq!(traces, ["trace-a", "trace-b", "trace-c"]);
}

// 4. Unauthenticated XML costs no memory: small default limit, element cap, and the
//    envelope streamed, not built, before msg_signature is checked.

#[tokio::test]
async fn unauthenticated_xml_is_bounded() {
    let e = env("", "").await;
    let ts = now();
    let flood = |bytes: usize| format!("<xml>{}</xml>", "<a/>".repeat(bytes / 4));
    let q = format!(
        "{}&encrypt_type=aes&msg_signature={}",
        signed_query(ts, "f3"),
        "0".repeat(40)
    );
    // The default limit fits WeChat's pushes with a margin (64 KiB), not 1 MiB.
    let (status, _) = e.raw("default", &q, flood(128 << 10)).await;
    assert_eq!(status, 413);
    let (status, _) = e
        .raw("clear", &signed_query(ts, "f2"), flood(128 << 10))
        .await;
    assert_eq!(status, 413);
    // A plaintext flood at a safe account is refused from its URL, before its body.
    let (status, _) = e
        .raw("default", &signed_query(ts, "f1"), flood(1 << 20))
        .await;
    assert_eq!(status, 403);
    // Within the limit, a forged encrypted envelope full of elements: refused by the
    // element cap or the signature, reaching nothing.
    let (status, _) = e.raw("default", &q, flood(60 << 10)).await;
    assert_eq!(status, 400);
    let padded = format!(
        "<xml><ToUserName>gh</ToUserName>{}<Encrypt>AAAA</Encrypt></xml>",
        "<a/>".repeat(1000)
    );
    let (status, _) = e.raw("default", &q, padded).await;
    assert_eq!(status, 403, "forged msg_signature");
    assert_eq!(e.seen(), 0);
}

#[tokio::test]
async fn a_raised_body_limit_still_caps_the_elements() {
    let e = env("[service]\nmax_body_bytes = 2097152\n", "").await;
    let ts = now();
    let body = format!("<xml>{}</xml>", "<a/>".repeat(1 << 18));
    let (status, answer) = e.raw("clear", &signed_query(ts, "e1"), body).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("elements"), "{answer}");
}

// 5. A timestamp at the far end of i64 is a 403, not an overflow.

#[tokio::test]
async fn an_extreme_timestamp_is_refused_not_overflowed() {
    let e = env("", "").await;
    let body = write_fields(&text_from(VICTIM, "x", 5, now()));
    for ts in [i64::MIN, now() - (1 << 62) - (1 << 62), i64::MAX] {
        let (status, answer) = e.raw("clear", &signed_query(ts, "t1"), body.clone()).await;
        assert_eq!(status, 403, "{ts}: {answer}");
    }
    let (status, _) = e
        .raw(
            "clear",
            "signature=x&timestamp=99999999999999999999&nonce=n",
            body,
        )
        .await;
    assert_eq!(status, 400);
    // The server is still there.
    let r = e
        .http
        .get(format!("{}/healthz", e.gw.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
