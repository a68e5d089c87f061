//! The hand-written parts of the protocol crate against the crates they replaced, on a
//! push's real inputs: base64 (`b64` vs the `base64` crate, configured as leniently)
//! and the XML reader (`xml::parse` vs `quick-xml` reading the same fields). A
//! hand-written part stays only where it wins by 10% or more (its doc comment says the
//! figure), or where its reason is not speed. Run: `cargo bench -p wxgate-proto --bench
//! handwritten`.

use std::hint::black_box;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use wxgate_proto::crypto::MsgCrypt;
use wxgate_proto::{b64, xml};

const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
/// A text push as WeChat sends it (the shape of every message: flat CDATA fields).
const MSG: &str = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content><MsgId>6054768590064713728</MsgId></xml>";

/// The `base64` crate as lenient as WeChat's samples: short or missing padding, stray
/// trailing bits.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn base64(c: &mut Criterion) {
    let crypt = MsgCrypt::new("spamtest", KEY, "wx2c2769f8efd9abc2").unwrap();
    // A safe push's `Encrypt` (decoded by every push) and a reply's ciphertext (encoded).
    let encrypt = crypt.seal(MSG, "1409735669", "1320562132").encrypt;
    let cipher = b64::decode(encrypt.as_bytes()).unwrap();
    assert_eq!(LENIENT.decode(&encrypt).unwrap(), cipher);
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(&cipher),
        b64::encode(&cipher)
    );
    let mut g = c.benchmark_group("base64 decode, a push's Encrypt");
    g.bench_function("b64 (hand-written)", |b| {
        b.iter(|| b64::decode(black_box(encrypt.as_bytes())))
    });
    g.bench_function("base64 crate", |b| {
        b.iter(|| LENIENT.decode(black_box(encrypt.as_bytes())))
    });
    g.finish();
    let mut g = c.benchmark_group("base64 encode, a reply's ciphertext");
    g.bench_function("b64 (hand-written)", |b| {
        b.iter(|| b64::encode(black_box(&cipher)))
    });
    g.bench_function("base64 crate", |b| {
        b.iter(|| base64::engine::general_purpose::STANDARD.encode(black_box(&cipher)))
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
