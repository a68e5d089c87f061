//! The hand-written parts of the protocol crate against the crates that do the same, on
//! a push's real inputs. A hand-written part stays only where it wins by 10% or more
//! (its doc comment says the figure), or where its reason is not speed. Run:
//! `cargo bench -p wxgate-proto --bench handwritten`.
//!
//! - The XML reader (`xml::parse`) against `quick-xml` reading the same fields: kept
//!   (301 ns against 559 for a text push).
//! - base64: the hand-written codec lost (a push's `Encrypt` decoded in 160 ns against
//!   the crate's 133, a reply's ciphertext encoded in 145 against 118), so `b64` wraps
//!   the crate now; this group measures what `b64` costs as it is.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use wxgate_proto::crypto::MsgCrypt;
use wxgate_proto::{b64, xml};

const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
/// A text push as WeChat sends it (the shape of every message: flat CDATA fields).
const MSG: &str = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content><MsgId>6054768590064713728</MsgId></xml>";

fn base64(c: &mut Criterion) {
    let crypt = MsgCrypt::new("spamtest", KEY, "wx2c2769f8efd9abc2").unwrap();
    // A safe push's `Encrypt` (decoded by every push) and a reply's ciphertext (encoded).
    let encrypt = crypt.seal(MSG, "1409735669", "1320562132").encrypt;
    let cipher = b64::decode(encrypt.as_bytes()).unwrap();
    assert_eq!(b64::encode(&cipher), encrypt);
    let mut g = c.benchmark_group("base64 (the crate, configured by b64)");
    g.bench_function("decode a push's Encrypt", |b| {
        b.iter(|| b64::decode(black_box(encrypt.as_bytes())))
    });
    g.bench_function("encode a reply's ciphertext", |b| {
        b.iter(|| b64::encode(black_box(&cipher)))
    });
    g.finish();
}

/// The root's fields, name and text, as quick-xml reads them: the same work as
/// `xml::parse` on a flat document.
fn quick_fields(input: &str) -> Vec<(String, String)> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(input);
    let mut fields = Vec::new();
    let (mut depth, mut name, mut text) = (0, String::new(), String::new());
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                if depth == 2 {
                    name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                    text.clear();
                }
            }
            Ok(Event::Text(t)) if depth == 2 => {
                text.push_str(&t.decode().unwrap_or_default());
            }
            Ok(Event::CData(t)) if depth == 2 => {
                text.push_str(&String::from_utf8_lossy(&t));
            }
            Ok(Event::End(_)) => {
                if depth == 2 {
                    fields.push((std::mem::take(&mut name), std::mem::take(&mut text)));
                }
                depth -= 1;
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    fields
}

fn xml_reader(c: &mut Criterion) {
    let ours = xml::parse(MSG, xml::DEFAULT_LIMIT).unwrap();
    let theirs = quick_fields(MSG);
    assert_eq!(theirs.len(), 6);
    for (name, text) in &theirs {
        assert_eq!(ours.fields.text(name), Some(text.as_str()), "{name}");
    }
    let mut g = c.benchmark_group("XML, a text push's fields");
    g.bench_function("xml::parse (hand-written)", |b| {
        b.iter(|| xml::parse(black_box(MSG), xml::DEFAULT_LIMIT).unwrap())
    });
    g.bench_function("quick-xml", |b| b.iter(|| quick_fields(black_box(MSG))));
    g.finish();
}

criterion_group!(benches, base64, xml_reader);
criterion_main!(benches);
