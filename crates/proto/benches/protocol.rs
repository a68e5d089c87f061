//! Micro-benchmarks of the protocol core: one safe-mode push from ciphertext to encrypted
//! reply (what `/wx/service` does per message, minus HTTP and the store), and its parts.
//! Run with `cargo bench -p wxgate-proto`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use wxgate_proto::crypto::MsgCrypt;
use wxgate_proto::reply::encrypted_reply_xml;
use wxgate_proto::xml::DEFAULT_LIMIT;
use wxgate_proto::{jssdk, Envelope, Message, Reply};

const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const MSG: &str = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content><MsgId>6054768590064713728</MsgId></xml>";

fn push_round_trip(c: &mut Criterion) {
    let crypt = MsgCrypt::new("spamtest", KEY, "wx2c2769f8efd9abc2").unwrap();
    let sealed = crypt.seal(MSG, "1409735669", "1320562132");
    let envelope = Envelope::to_xml("gh_10f6c3c3ac5a", &sealed.encrypt);
    let reply = Reply::Text {
        content: "Hello from wxgate".into(),
    };

    c.bench_function("safe push: decrypt + parse + reply + encrypt", |b| {
        b.iter(|| {
            let env = Envelope::parse(black_box(&envelope), DEFAULT_LIMIT).unwrap();
            let plain = crypt
                .open(
                    &sealed.msg_signature,
                    "1409735669",
                    "1320562132",
                    &env.encrypt,
                )
                .unwrap();
            let msg = Message::parse(&plain, DEFAULT_LIMIT).unwrap();
            let xml = reply
                .to_xml(&msg.from_user_name, &msg.to_user_name, 1409735670)
                .unwrap();
            black_box(encrypted_reply_xml(&crypt.seal(
                &xml,
                "1409735670",
                "nonce",
            )))
        })
    });
    c.bench_function("decrypt (open)", |b| {
        b.iter(|| {
            crypt
                .open(
                    &sealed.msg_signature,
                    "1409735669",
                    "1320562132",
                    black_box(&sealed.encrypt),
                )
                .unwrap()
        })
    });
    c.bench_function("parse message", |b| {
        b.iter(|| Message::parse(black_box(MSG), DEFAULT_LIMIT).unwrap())
    });
    c.bench_function("encrypt (seal)", |b| {
        b.iter(|| crypt.seal(black_box(MSG), "1409735670", "nonce"))
    });
    c.bench_function("jssdk signature", |b| {
        b.iter(|| jssdk::signature(black_box("sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"), "Wm3WZYTPz0wzccnW", "1414587457", "http://mp.weixin.qq.com?params=value"))
    });
}

criterion_group!(benches, push_round_trip);
criterion_main!(benches);
