//! WeChat's published examples, verbatim (tests/data/official.json is a copy of the
//! project's shared vectors, each entry with its source).

use serde_json::Value;
use wxgate_proto::crypto::{self, EncodingAesKey, MsgCrypt};
use wxgate_proto::reply::{encrypted_reply_xml, parse_encrypted_reply};
use wxgate_proto::signature::{msg_signature, server_signature, verify_server_signature};
use wxgate_proto::{jssdk, miniprogram, Envelope, Message, MessageKind};

fn vectors() -> Value {
    serde_json::from_str(include_str!("data/official.json")).unwrap()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("field {k}"))
}

fn entry(section: &str, id: &str) -> Value {
    vectors()[section]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("{id}"))
        .clone()
}

#[test]
fn url_signatures_match_the_documents() {
    let v = vectors();
    let list = v["url_signature"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    for e in list {
        let sig = server_signature(s(e, "token"), s(e, "timestamp"), s(e, "nonce"));
        assert_eq!(sig, s(e, "signature"), "{}", s(e, "id"));
        assert!(verify_server_signature(
            s(e, "token"),
            s(e, "timestamp"),
            s(e, "nonce"),
            s(e, "signature")
        ));
        assert!(!verify_server_signature(
            "other",
            s(e, "timestamp"),
            s(e, "nonce"),
            s(e, "signature")
        ));
    }
}

#[test]
fn url_signature_doc_example_literal() {
    // developers.weixin.qq.com message-push.html, GET verification example.
    assert_eq!(
        server_signature("AAAAA", "1714036504", "1514711492"),
        "f464b24fc39322e44b38aa78f5edd27bd1441696"
    );
}

#[test]
fn wxbizmsgcrypt_sample_decrypts_and_re_encrypts_byte_for_byte() {
    let e = entry("msg_crypt", "official-sample-py-push");
    let crypt = MsgCrypt::new(s(&e, "token"), s(&e, "encoding_aes_key"), s(&e, "appid")).unwrap();
    // The sample key's 43rd character carries stray bits: lenient decoding is required.
    let envelope = Envelope::parse(s(&e, "body"), 1 << 20).unwrap();
    assert_eq!(envelope.encrypt, s(&e, "encrypt"));
    assert_eq!(
        msg_signature(
            s(&e, "token"),
            s(&e, "timestamp"),
            s(&e, "nonce"),
            &envelope.encrypt
        ),
        s(&e, "msg_signature")
    );
    let plain = crypt
        .open(
            s(&e, "msg_signature"),
            s(&e, "timestamp"),
            s(&e, "nonce"),
            &envelope.encrypt,
        )
        .unwrap();
    assert_eq!(plain, s(&e, "expected_plaintext"));

    let d = crypto::decrypt(crypt.key(), s(&e, "appid"), s(&e, "encrypt")).unwrap();
    assert_eq!(&d.random, s(&e, "expected_random16").as_bytes());

    let random: [u8; 16] = s(&e, "expected_random16").as_bytes().try_into().unwrap();
    let sealed = crypt.seal_with_random(&plain, s(&e, "timestamp"), s(&e, "nonce"), &random);
    assert_eq!(sealed.encrypt, s(&e, "encrypt"));
    assert_eq!(sealed.msg_signature, s(&e, "msg_signature"));

    // Compatible mode: the same body also parses as a plaintext message.
    let msg = Message::parse(s(&e, "body"), 1 << 20).unwrap();
    assert_eq!(msg.from_user_name, "oyORnuP8q7ou2gfYjqLzSIWZf0rs");
    assert!(matches!(msg.kind, MessageKind::Text { ref content, .. } if content == "abcdteT"));

    // A forged signature and a wrong appid are refused.
    assert!(crypt
        .open(
            "0000000000000000000000000000000000000000",
            s(&e, "timestamp"),
            s(&e, "nonce"),
            &envelope.encrypt
        )
        .is_err());
    let other = MsgCrypt::new(s(&e, "token"), s(&e, "encoding_aes_key"), "wxother").unwrap();
    assert!(matches!(
        other.open(
            s(&e, "msg_signature"),
            s(&e, "timestamp"),
            s(&e, "nonce"),
            &envelope.encrypt
        ),
        Err(wxgate_proto::Error::AppIdMismatch { .. })
    ));
}

#[test]
fn safe_mode_json_push_with_a_pad_byte_over_16() {
    let e = entry("msg_crypt", "doc-msgpush-safe-json-push");
    assert_eq!(e["pad"], 19);
    let crypt = MsgCrypt::new(s(&e, "token"), s(&e, "encoding_aes_key"), s(&e, "appid")).unwrap();
    assert_eq!(crypt.key().as_bytes(), &[0u8; 32]);
    assert_eq!(
        server_signature(s(&e, "token"), s(&e, "timestamp"), s(&e, "nonce")),
        s(&e, "signature")
    );
    let plain = crypt
        .open(
            s(&e, "msg_signature"),
            s(&e, "timestamp"),
            s(&e, "nonce"),
            s(&e, "encrypt"),
        )
        .unwrap();
    assert_eq!(plain, s(&e, "expected_plaintext"));
    let random: [u8; 16] = s(&e, "expected_random16").as_bytes().try_into().unwrap();
    let sealed = crypt.seal_with_random(&plain, s(&e, "timestamp"), s(&e, "nonce"), &random);
    assert_eq!(sealed.encrypt, s(&e, "encrypt"));
}

#[test]
fn safe_mode_reply_is_reproduced_exactly() {
    let e = entry("msg_crypt", "doc-msgpush-safe-json-reply");
    let crypt = MsgCrypt::new(s(&e, "token"), s(&e, "encoding_aes_key"), s(&e, "appid")).unwrap();
    let random: [u8; 16] = s(&e, "expected_random16").as_bytes().try_into().unwrap();
    let sealed = crypt.seal_with_random(
        s(&e, "expected_plaintext"),
        s(&e, "timestamp"),
        s(&e, "nonce"),
        &random,
    );
    assert_eq!(sealed.encrypt, s(&e, "encrypt"));
    assert_eq!(sealed.msg_signature, s(&e, "msg_signature"));
    // The XML envelope of the same reply reads back.
    let xml = encrypted_reply_xml(&sealed);
    assert_eq!(parse_encrypted_reply(&xml, 1 << 20).unwrap(), sealed);
    let opened = crypt
        .open(
            &sealed.msg_signature,
            &sealed.timestamp,
            &sealed.nonce,
            &sealed.encrypt,
        )
        .unwrap();
    assert_eq!(opened, "{\"demo_resp\":\"good luck\"}");
}

#[test]
fn jssdk_appendix_1() {
    let e = entry("jssdk", "official-jssdk-appendix1");
    let ts = e["timestamp"].as_i64().unwrap().to_string();
    assert_eq!(
        jssdk::string_to_sign(s(&e, "jsapi_ticket"), s(&e, "noncestr"), &ts, s(&e, "url")),
        s(&e, "string1")
    );
    assert_eq!(
        jssdk::signature(s(&e, "jsapi_ticket"), s(&e, "noncestr"), &ts, s(&e, "url")),
        "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
    );
    // The fragment is not signed.
    let with_fragment = format!("{}#/page?x=1", s(&e, "url"));
    assert_eq!(
        jssdk::signature(
            s(&e, "jsapi_ticket"),
            s(&e, "noncestr"),
            &ts,
            &with_fragment
        ),
        s(&e, "signature")
    );
    // The copies of the doc without ?params=value give another signature.
    assert_eq!(
        jssdk::signature(
            s(&e, "jsapi_ticket"),
            s(&e, "noncestr"),
            &ts,
            "http://mp.weixin.qq.com"
        ),
        "f4d90daf4b3bca3078ab155816175ba34c443a7b"
    );
    // Verification: either case of the documented signature, not another URL's.
    let verify = |url: &str, sig: &str| {
        jssdk::verify_signature(s(&e, "jsapi_ticket"), s(&e, "noncestr"), &ts, url, sig)
    };
    assert!(verify(
        s(&e, "url"),
        "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
    ));
    assert!(verify(
        s(&e, "url"),
        "0F9DE62FCE790F9A083D5C99E95740CEB90C27ED"
    ));
    assert!(!verify(
        "http://mp.weixin.qq.com",
        "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
    ));
}

#[test]
fn miniprogram_decryption_demo() {
    let e = entry("miniprogram_decrypt", "official-wxa-demo");
    let v = miniprogram::decrypt(
        s(&e, "session_key"),
        s(&e, "iv"),
        s(&e, "encrypted_data"),
        s(&e, "appid"),
    )
    .unwrap();
    assert_eq!(v.text, s(&e, "expected_plaintext"));
    let v = v.value;
    let expected: Value = serde_json::from_str(s(&e, "expected_plaintext")).unwrap();
    assert_eq!(v, expected);
    assert_eq!(v["openId"], "oGZUI0egBJY1zhBYw2KhdUfwVJJE");
    assert_eq!(
        miniprogram::decrypt_unchecked(s(&e, "session_key"), s(&e, "iv"), s(&e, "encrypted_data"))
            .unwrap(),
        s(&e, "expected_plaintext")
    );
    // Re-encrypting reproduces the demo's ciphertext.
    assert_eq!(
        miniprogram::encrypt(
            s(&e, "session_key"),
            s(&e, "iv"),
            s(&e, "expected_plaintext")
        )
        .unwrap(),
        s(&e, "encrypted_data")
    );
    // A foreign watermark is refused.
    assert!(matches!(
        miniprogram::decrypt(
            s(&e, "session_key"),
            s(&e, "iv"),
            s(&e, "encrypted_data"),
            "wxother"
        ),
        Err(wxgate_proto::Error::WatermarkMismatch { .. })
    ));
    // A stale session_key is refused, never garbage.
    assert!(miniprogram::decrypt(
        "HyVFkGl5F5OQWJZZaNzBBg==",
        s(&e, "iv"),
        s(&e, "encrypted_data"),
        s(&e, "appid")
    )
    .is_err());
}

#[test]
fn miniprogram_rawdata_signature() {
    let e = entry("miniprogram_rawdata_signature", "official-rawdata-example");
    assert_eq!(
        miniprogram::raw_data_signature(s(&e, "raw_data"), s(&e, "session_key")),
        "75e81ceda165f4ffa64f4068af58c64b8f54b88c"
    );
    assert!(miniprogram::verify_raw_data(
        s(&e, "raw_data"),
        s(&e, "session_key"),
        s(&e, "signature")
    ));
    assert!(!miniprogram::verify_raw_data(
        &format!("{} ", s(&e, "raw_data")),
        s(&e, "session_key"),
        s(&e, "signature")
    ));
}

#[test]
fn aes_key_of_the_sample_decodes_to_32_bytes() {
    let k = EncodingAesKey::parse("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").unwrap();
    assert_eq!(k.as_bytes().len(), 32);
    assert_eq!(&k.as_bytes()[..3], &[0x69, 0xb7, 0x1d]);
}

/// 用户登录态签名: WeChat's own example, verbatim.
#[test]
fn the_session_signature_of_the_documented_example() {
    let signature = wxgate_proto::miniprogram::session_signature(
        "o0q0otL8aEzpcZL/FT9WsQ==",
        br#"{"foo":"bar"}"#,
    );
    assert_eq!(
        signature,
        "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"
    );
}

#[test]
fn safe_mode_json_push_opens_into_the_typed_message() {
    let e = entry("msg_crypt", "doc-msgpush-safe-json-push");
    let body = e["body"].to_string();
    let env = Envelope::parse_json(&body, 1 << 16).unwrap();
    assert_eq!(env.to_user_name.as_deref(), Some("gh_97417a04a28d"));
    assert_eq!(env.encrypt, s(&e, "encrypt"));
    let crypt = MsgCrypt::new(s(&e, "token"), s(&e, "encoding_aes_key"), s(&e, "appid")).unwrap();
    let plain = crypt
        .open(
            s(&e, "msg_signature"),
            s(&e, "timestamp"),
            s(&e, "nonce"),
            &env.encrypt,
        )
        .unwrap();
    let m = Message::parse_json(&plain, 1 << 16).unwrap();
    assert_eq!(m.to_user_name, "gh_97417a04a28d");
    assert_eq!(m.from_user_name, s(&e, "openid"));
    assert_eq!(m.create_time, 1714112445);
    assert!(
        matches!(m.event(), Some(wxgate_proto::Event::Unknown { name }) if name == "debug_demo")
    );
    assert_eq!(m.raw.text("debug_str"), Some("hello world"));
    // A forged Encrypt under the captured msg_signature is refused.
    let forged = Envelope::to_json("gh_97417a04a28d", &s(&e, "encrypt").replace('+', "/"));
    let env = Envelope::parse_json(&forged, 1 << 16).unwrap();
    assert!(crypt
        .open(
            s(&e, "msg_signature"),
            s(&e, "timestamp"),
            s(&e, "nonce"),
            &env.encrypt
        )
        .is_err());
}

#[test]
fn safe_mode_json_reply_is_reproduced_exactly() {
    let e = entry("msg_crypt", "doc-msgpush-safe-json-reply");
    let crypt = MsgCrypt::new(s(&e, "token"), s(&e, "encoding_aes_key"), s(&e, "appid")).unwrap();
    let random: [u8; 16] = s(&e, "expected_random16").as_bytes().try_into().unwrap();
    let sealed = crypt.seal_with_random(
        s(&e, "expected_plaintext"),
        s(&e, "timestamp"),
        s(&e, "nonce"),
        &random,
    );
    let body: Value =
        serde_json::from_str(&wxgate_proto::reply::encrypted_reply_json(&sealed)).unwrap();
    assert_eq!(body, e["body"]);
    let back =
        wxgate_proto::reply::parse_encrypted_reply_json(&e["body"].to_string(), 1 << 16).unwrap();
    assert_eq!(back, sealed);
}

/// The Mini Program's customer-service pushes in JSON, as 接收消息和事件 shows them.
#[test]
fn miniprogram_json_pushes_of_the_documents() {
    let text = r#"{
  "ToUserName": "toUser",
  "FromUserName": "fromUser",
  "CreateTime": 1482048670,
  "MsgType": "text",
  "Content": "this is a test",
  "MsgId": 1234567890123456
}"#;
    let xml = "<xml>
   <ToUserName><![CDATA[toUser]]></ToUserName>
   <FromUserName><![CDATA[fromUser]]></FromUserName>
   <CreateTime>1482048670</CreateTime>
   <MsgType><![CDATA[text]]></MsgType>
   <Content><![CDATA[this is a test]]></Content>
   <MsgId>1234567890123456</MsgId>
</xml>";
    let from_json = Message::parse_json(text, 1 << 16).unwrap();
    let from_xml = Message::parse(xml, 1 << 16).unwrap();
    assert_eq!(from_json, from_xml);
    assert_eq!(from_json.dedup_key(), from_xml.dedup_key());
    assert!(
        matches!(&from_json.kind, MessageKind::Text { content, msg_id: Some(id) }
        if content == "this is a test" && id == "1234567890123456")
    );

    let image = r#"{
  "ToUserName": "toUser",
  "FromUserName": "fromUser",
  "CreateTime": 1482048670,
  "MsgType": "image",
  "PicUrl": "this is a url",
  "MediaId": "media_id",
  "MsgId": 1234567890123456
}"#;
    assert!(matches!(Message::parse_json(image, 1 << 16).unwrap().kind,
        MessageKind::Image { ref pic_url, ref media_id, .. } if pic_url == "this is a url" && media_id == "media_id"));

    let card = r#"{
  "ToUserName": "toUser",
  "FromUserName": "fromUser",
  "CreateTime": 1482048670,
  "MsgType": "miniprogrampage",
  "MsgId": 1234567890123456,
  "Title":"Title",
  "AppId":"AppId",
  "PagePath":"PagePath",
  "ThumbUrl":"",
  "ThumbMediaId":""
}"#;
    assert!(matches!(Message::parse_json(card, 1 << 16).unwrap().kind,
        MessageKind::MiniProgramPage { ref title, ref app_id, ref page_path, .. }
            if title == "Title" && app_id == "AppId" && page_path == "PagePath"));

    let enter = r#"{
  "ToUserName": "toUser",
  "FromUserName": "fromUser",
  "CreateTime": 1482048670,
  "MsgType": "event",
  "Event": "user_enter_tempsession",
  "SessionFrom": "sessionFrom"
}"#;
    assert_eq!(
        Message::parse_json(enter, 1 << 16).unwrap().event(),
        Some(&wxgate_proto::Event::UserEnterTempsession {
            session_from: "sessionFrom".into()
        })
    );
}

/// `subscribe_msg_popup_event`: the document's array (its trailing comma, which no JSON
/// reader takes, removed) and the single object WeChat actually sends for one template
/// (reported on the developer forum), and the XML of 订阅通知的事件推送.
#[test]
fn subscribe_popup_events_in_every_shape() {
    use wxgate_proto::{Event, SubscribeChoice};
    let array = r#"{
  "ToUserName": "gh_123456789abc",
  "FromUserName": "o7esq5OI1Uej6Xixw1lA2H7XDVbc",
  "CreateTime": "1620973045",
  "MsgType": "event",
  "Event": "subscribe_msg_popup_event",
  "List": [ {
      "TemplateId": "hD-ixGOhYmUfjOnI8MCzQMPshzGVeux_2vzyvQu7O68",
      "SubscribeStatusString": "accept",
      "PopupScene": "0"
    }]
}"#;
    let object = r#"{
	"CreateTime": 1688953684,
	"Event": "subscribe_msg_popup_event",
	"FromUserName": "o8dH44seYM3qeBzHlrmwI0sAtSfI",
	"List": {
		"PopupScene": "0",
		"SubscribeStatusString": "accept",
		"TemplateId": "BDcgTGpwt7fcRVFhGh-NvjcASaWWmkwzN3y_6mXzJR4"
	},
	"MsgType": "event",
	"ToUserName": "gh_xxxxxxxxxx"
}"#;
    let xml = "<xml>
    <ToUserName><![CDATA[gh_123456789abc]]></ToUserName>
    <FromUserName><![CDATA[otFpruAK8D-E6EfStSYonYSBZ8_4]]></FromUserName>
    <CreateTime>1610969440</CreateTime>
    <MsgType><![CDATA[event]]></MsgType>
    <Event><![CDATA[subscribe_msg_popup_event]]></Event>
    <SubscribeMsgPopupEvent>
        <List>
            <TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId>
            <SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString>
            <PopupScene>2</PopupScene>
        </List>
        <List>
            <TemplateId><![CDATA[9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI]]></TemplateId>
            <SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString>
            <PopupScene>2</PopupScene>
        </List>
    </SubscribeMsgPopupEvent>
</xml>";
    let choice = |id: &str, status: &str, scene: &str| SubscribeChoice {
        template_id: id.into(),
        subscribe_status_string: status.into(),
        popup_scene: Some(scene.into()),
    };
    let list = |m: Message| match m.event() {
        Some(Event::SubscribeMsgPopup { list }) => list.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        list(Message::parse_json(array, 1 << 16).unwrap()),
        [choice(
            "hD-ixGOhYmUfjOnI8MCzQMPshzGVeux_2vzyvQu7O68",
            "accept",
            "0"
        )]
    );
    assert_eq!(
        list(Message::parse_json(object, 1 << 16).unwrap()),
        [choice(
            "BDcgTGpwt7fcRVFhGh-NvjcASaWWmkwzN3y_6mXzJR4",
            "accept",
            "0"
        )]
    );
    assert_eq!(
        list(Message::parse(xml, 1 << 16).unwrap()),
        [
            choice("VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc", "accept", "2"),
            choice("9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI", "reject", "2")
        ]
    );
}

/// The media check result of 音视频内容安全识别 (version 2), in JSON.
#[test]
fn wxa_media_check_result_in_json() {
    let push = r#"{
   "ToUserName": "gh_38cc49f9733b",
   "FromUserName": "oH1fu0FdHqpToe2T6gBj0WyB8iS1",
   "CreateTime": 1626959646,
   "MsgType": "event",
   "Event": "wxa_media_check",
   "appid": "wx8f16a5e5f29b6f2b",
   "trace_id": "60f96f1d-3845297a-1976a3ae",
   "version": 2,
   "detail": [{
        "strategy": "content_model",
        "errcode": 0,
        "suggest": "pass",
        "label": 100,
        "prob": 90
   }],
   "errcode": 0,
   "errmsg": "ok",
   "result": {
        "suggest": "pass",
        "label": 100
   }
}"#;
    let m = Message::parse_json(push, 1 << 16).unwrap();
    assert_eq!(
        m.event(),
        Some(&wxgate_proto::Event::WxaMediaCheck {
            appid: "wx8f16a5e5f29b6f2b".into(),
            trace_id: "60f96f1d-3845297a-1976a3ae".into(),
            version: Some(2),
            suggest: Some("pass".into()),
            label: Some(100),
        })
    );
}
