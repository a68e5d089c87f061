//! Properties: arbitrary input into every parser and decryptor returns a value or an error
//! and never panics; what is encrypted decrypts back, for every length.

use proptest::prelude::*;
use wxgate_proto::crypto::{self, EncodingAesKey, MsgCrypt};
use wxgate_proto::json;
use wxgate_proto::message::write_fields;
use wxgate_proto::reply::{parse_encrypted_reply, parse_encrypted_reply_json};
use wxgate_proto::xml::{self, Fields, Value, DEFAULT_LIMIT};
use wxgate_proto::{jssdk, miniprogram, Envelope, Message, Reply};

const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn xml_parsers_never_panic(s in ".{0,400}") {
        let _ = xml::parse(&s, DEFAULT_LIMIT);
        let _ = Message::parse(&s, DEFAULT_LIMIT);
        let _ = Envelope::parse(&s, DEFAULT_LIMIT);
        let _ = parse_encrypted_reply(&s, DEFAULT_LIMIT);
    }

    #[test]
    fn xml_like_input_never_panics(s in "(<[a-zA-Z]{1,3}>|</[a-zA-Z]{1,3}>|<!\\[CDATA\\[|\\]\\]>|&[a-z#0-9]{0,5};|<!DOCTYPE|<\\?xml\\?>|[a-z0-9 ]{0,5}){0,40}") {
        let _ = Message::parse(&s, DEFAULT_LIMIT);
        let _ = Envelope::parse(&s, DEFAULT_LIMIT);
    }

    /// The envelope reader (which streams) and the parser (which builds) accept and
    /// refuse the same documents, and read the same text: a document the signature check
    /// passed is never one the parser then reads otherwise.
    #[test]
    fn the_streaming_reader_agrees_with_the_parser(s in "(<xml>|</xml>|<[AB]>|</[AB]>|<[AB]/>|<!\\[CDATA\\[|\\]\\]>|&(amp|lt|x|#65);|<!-- c -->|<\\?p\\?>|[a-z ]{0,3}){0,24}") {
        let parsed = xml::parse(&s, DEFAULT_LIMIT);
        let streamed = xml::root_texts(&s, DEFAULT_LIMIT, ["A", "B"]);
        prop_assert_eq!(parsed.is_ok(), streamed.is_ok(), "{:?}: {:?} / {:?}", s, parsed, streamed);
        if let (Ok(doc), Ok([a, b])) = (parsed, streamed) {
            prop_assert_eq!(doc.fields.text("A"), a.as_deref().filter(|_| doc.fields.node("A").is_none()));
            prop_assert_eq!(doc.fields.text("B"), b.as_deref().filter(|_| doc.fields.node("B").is_none()));
        }
    }

    /// Whatever is encoded reads back, padded or not (WeChat's samples drop padding),
    /// and no input makes the decoder panic.
    #[test]
    fn base64_round_trips_with_or_without_padding(bytes in proptest::collection::vec(any::<u8>(), 0..64), noise in "[A-Za-z0-9+/=\\- ]{0,12}") {
        let encoded = wxgate_proto::b64::encode(&bytes);
        prop_assert_eq!(encoded.len() % 4, 0);
        prop_assert_eq!(wxgate_proto::b64::decode(encoded.as_bytes()), Some(bytes.clone()));
        prop_assert_eq!(wxgate_proto::b64::decode(encoded.trim_end_matches('=').as_bytes()), Some(bytes.clone()));
        for input in [noise.clone(), format!("{}{}", encoded.trim_end_matches('='), noise)] {
            let _ = wxgate_proto::b64::decode(input.as_bytes());
        }
    }

    #[test]
    fn json_parsers_never_panic(s in ".{0,400}") {
        let _ = json::parse(&s, DEFAULT_LIMIT);
        let _ = Message::parse_json(&s, DEFAULT_LIMIT);
        let _ = Envelope::parse_json(&s, DEFAULT_LIMIT);
        let _ = parse_encrypted_reply_json(&s, DEFAULT_LIMIT);
    }

    #[test]
    fn json_like_input_never_panics(s in "(\\{|\\}|\\[|\\]|\"[A-Za-z]{0,3}\"|:|,|-?[0-9]{1,25}(\\.[0-9]+)?(e[0-9]{1,4})?|null|true|\\\\u[0-9a-f]{4}){0,60}") {
        let _ = json::parse(&s, DEFAULT_LIMIT);
        let _ = Message::parse_json(&s, DEFAULT_LIMIT);
        let _ = Envelope::parse_json(&s, DEFAULT_LIMIT);
    }

    /// A push written as WeChat writes it in either format reads back as the same fields,
    /// so its message and dedup digest are the same whichever format the account uses.
    #[test]
    fn a_push_is_the_same_in_both_formats(
        texts in proptest::collection::vec(("(Content|MsgId|Event|Label|[a-z]{1,6})", ".{0,30}"), 1..8),
        list in proptest::collection::vec("[0-9a-z]{0,8}", 0..4),
    ) {
        // A JSON object names a member once (repeats are arrays).
        let mut fields = Fields::default();
        for (name, text) in texts {
            if fields.get(&name).is_none() && name != "List" {
                // What an XML document can carry at all: WeChat's pushes hold no
                // character XML forbids (written, they are dropped).
                let text = xml::xml_clean(&text).into_owned();
                fields.0.push((name.into(), Value::Text(text)));
            }
        }
        for t in list {
            let item = Fields(vec![("TemplateId".into(), Value::Text(t))]);
            fields.0.push(("List".into(), Value::Node(item)));
        }
        let as_json = json::parse(&json::write_fields(&fields), 1 << 20).unwrap();
        prop_assert_eq!(&as_json, &fields);
        let as_xml = xml::parse(&write_fields(&fields), 1 << 20).unwrap().fields;
        prop_assert_eq!(as_xml, as_json);
    }

    #[test]
    fn decryptors_never_panic(s in ".{0,300}", b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let key = EncodingAesKey::parse(KEY).unwrap();
        let _ = crypto::decrypt(&key, "wx1", &s);
        let b64 = crypto::base64_encode(&b);
        let _ = crypto::decrypt(&key, "wx1", &b64);
        let _ = crypto::decrypt_unchecked(&key, &b64);
        let _ = miniprogram::decrypt("tiihtNczf5v6AKRyjwEUhQ==", "r7BXXKkLb8qrSNn05n0qiA==", &b64, "wx1");
        let _ = miniprogram::decrypt(&s, &s, &s, "wx1");
        let _ = EncodingAesKey::parse(&s);
    }

    #[test]
    fn encrypt_decrypt_round_trip(msg in ".{0,600}", appid in "[a-z0-9]{1,32}", random in any::<[u8; 16]>()) {
        let crypt = MsgCrypt::new("token", KEY, &appid).unwrap();
        let sealed = crypt.seal_with_random(&msg, "1409735669", "nonce", &random);
        prop_assert_eq!(crypt.open(&sealed.msg_signature, "1409735669", "nonce", &sealed.encrypt).unwrap(), msg);
        prop_assert!(crypt.open(&sealed.msg_signature, "1409735670", "nonce", &sealed.encrypt).is_err());
    }

    #[test]
    fn tampered_ciphertext_is_an_error_or_other_text(msg in "[a-z]{0,100}", flip in 0usize..64) {
        let key = EncodingAesKey::parse(KEY).unwrap();
        let enc = crypto::encrypt(&key, "wx1", msg.as_bytes());
        let mut raw = crypto::base64_decode(&enc, "t").unwrap();
        let i = flip % raw.len();
        raw[i] ^= 0x01;
        if let Ok(d) = crypto::decrypt(&key, "wx1", &crypto::base64_encode(&raw)) {
            prop_assert_ne!(d.message, msg);
        }
    }

    #[test]
    fn miniprogram_round_trip(json in "\\{\"a\":\"[a-z]{0,80}\",\"watermark\":\\{\"appid\":\"wx1\"\\}\\}") {
        let enc = miniprogram::encrypt("tiihtNczf5v6AKRyjwEUhQ==", "r7BXXKkLb8qrSNn05n0qiA==", &json).unwrap();
        let v = miniprogram::decrypt("tiihtNczf5v6AKRyjwEUhQ==", "r7BXXKkLb8qrSNn05n0qiA==", &enc, "wx1").unwrap();
        prop_assert_eq!(v.value, serde_json::from_str::<serde_json::Value>(&json).unwrap());
    }

    /// Any content comes back, less the characters XML forbids (dropped, so the reply
    /// stays a document WeChat reads).
    #[test]
    fn text_reply_round_trips_any_content(content in ".{0,200}") {
        let x = Reply::Text { content: content.clone() }.to_xml("o", "g", 1).unwrap();
        let doc = xml::parse(&x, DEFAULT_LIMIT).unwrap();
        let allowed: String = content.chars().filter(|c| !xml::xml_forbidden(*c)).collect();
        prop_assert_eq!(doc.fields.text("Content"), Some(allowed.as_str()));
    }

    #[test]
    fn jssdk_signature_ignores_the_fragment(url in "https://[a-z]{1,10}\\.com/[a-z?=&]{0,20}", frag in "[a-z/?=]{0,20}") {
        let a = jssdk::signature("t", "n", "1", &url);
        let b = jssdk::signature("t", "n", "1", &format!("{url}#{frag}"));
        prop_assert_eq!(a, b);
    }
}
