//! Every message and event type of WeChat's documents parses into the typed model, and
//! every reply type renders as WeChat documents it. The XML samples follow the documents'
//! examples (接收普通消息, 接收事件推送, 自定义菜单事件推送, 模板消息, 群发).

use wxgate_proto::reply::SUCCESS;
use wxgate_proto::xml::{self, DEFAULT_LIMIT};
use wxgate_proto::{Article, Event, Message, MessageKind, Reply};

fn head(msg_type: &str) -> String {
    format!(
        "<ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[fromUser]]></FromUserName><CreateTime>1348831860</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>"
    )
}

fn msg(msg_type: &str, rest: &str) -> Message {
    let doc = format!("<xml>{}{rest}</xml>", head(msg_type));
    Message::parse(&doc, DEFAULT_LIMIT).unwrap_or_else(|e| panic!("{msg_type}: {e}\n{doc}"))
}

fn event(name: &str, rest: &str) -> Event {
    let m = msg("event", &format!("<Event><![CDATA[{name}]]></Event>{rest}"));
    m.event().cloned().unwrap()
}

#[test]
fn ordinary_messages() {
    let m = msg(
        "text",
        "<Content><![CDATA[this is a test]]></Content><MsgId>1234567890123456</MsgId>",
    );
    assert_eq!(m.to_user_name, "toUser");
    assert_eq!(m.from_user_name, "fromUser");
    assert_eq!(m.create_time, 1348831860);
    assert_eq!(
        m.kind,
        MessageKind::Text {
            content: "this is a test".into(),
            msg_id: Some("1234567890123456".into())
        }
    );
    assert_eq!(m.dedup_key().len(), 32);

    let m = msg("image", "<PicUrl><![CDATA[this is a url]]></PicUrl><MediaId><![CDATA[media_id]]></MediaId><MsgId>1234567890123456</MsgId>");
    assert!(
        matches!(m.kind, MessageKind::Image { ref pic_url, ref media_id, .. } if pic_url == "this is a url" && media_id == "media_id")
    );

    let m = msg("voice", "<MediaId><![CDATA[media_id]]></MediaId><Format><![CDATA[Format]]></Format><MsgId>1234567890123456</MsgId>");
    assert!(
        matches!(m.kind, MessageKind::Voice { recognition: None, ref format, .. } if format == "Format")
    );
    let m = msg("voice", "<MediaID><![CDATA[media_id]]></MediaID><MediaId><![CDATA[media_id]]></MediaId><Format><![CDATA[Format]]></Format><Recognition><![CDATA[腾讯微信团队]]></Recognition><MsgID>1234567890123456</MsgID>");
    assert!(
        matches!(m.kind, MessageKind::Voice { recognition: Some(ref r), .. } if r == "腾讯微信团队")
    );

    let m = msg("video", "<MediaId><![CDATA[media_id]]></MediaId><ThumbMediaId><![CDATA[thumb_media_id]]></ThumbMediaId><MsgId>1234567890123456</MsgId>");
    assert!(
        matches!(m.kind, MessageKind::Video { ref thumb_media_id, .. } if thumb_media_id == "thumb_media_id")
    );
    let m = msg("shortvideo", "<MediaId><![CDATA[media_id]]></MediaId><ThumbMediaId><![CDATA[thumb_media_id]]></ThumbMediaId><MsgId>1234567890123456</MsgId>");
    assert!(matches!(m.kind, MessageKind::ShortVideo { .. }));

    let m = msg("location", "<Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y><Scale>20</Scale><Label><![CDATA[位置信息]]></Label><MsgId>1234567890123456</MsgId>");
    assert!(
        matches!(m.kind, MessageKind::Location { location_x, location_y, scale, ref label, .. }
        if location_x == 23.134521 && location_y == 113.358803 && scale == 20.0 && label == "位置信息")
    );

    let m = msg("link", "<Title><![CDATA[公众平台官网链接]]></Title><Description><![CDATA[公众平台官网链接]]></Description><Url><![CDATA[url]]></Url><MsgId>1234567890123456</MsgId>");
    assert!(matches!(m.kind, MessageKind::Link { ref url, .. } if url == "url"));

    let m = msg("file", "<Title><![CDATA[a.pdf]]></Title><Description><![CDATA[]]></Description><FileKey><![CDATA[key]]></FileKey><FileMd5><![CDATA[5a3c]]></FileMd5><FileTotalLen>2048</FileTotalLen><MsgId>1234567890123456</MsgId>");
    assert!(
        matches!(m.kind, MessageKind::File { file_total_len: 2048, ref file_key, .. } if file_key == "key")
    );
}

#[test]
fn events() {
    assert_eq!(
        event("subscribe", ""),
        Event::Subscribe {
            event_key: None,
            ticket: None
        }
    );
    assert_eq!(
        event(
            "subscribe",
            "<EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>"
        ),
        Event::Subscribe {
            event_key: Some("qrscene_123123".into()),
            ticket: Some("TICKET".into())
        }
    );
    assert_eq!(event("unsubscribe", ""), Event::Unsubscribe);
    assert_eq!(
        event(
            "SCAN",
            "<EventKey><![CDATA[SCENE_VALUE]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>"
        ),
        Event::Scan {
            event_key: "SCENE_VALUE".into(),
            ticket: Some("TICKET".into())
        }
    );
    assert_eq!(
        event("LOCATION", "<Latitude>23.137466</Latitude><Longitude>113.352425</Longitude><Precision>119.385040</Precision>"),
        Event::Location { latitude: 23.137466, longitude: 113.352425, precision: 119.38504 }
    );
    assert_eq!(
        event("CLICK", "<EventKey><![CDATA[EVENTKEY]]></EventKey>"),
        Event::Click {
            event_key: "EVENTKEY".into()
        }
    );
    assert_eq!(
        event(
            "VIEW",
            "<EventKey><![CDATA[www.qq.com]]></EventKey><MenuId>MENUID</MenuId>"
        ),
        Event::View {
            event_key: "www.qq.com".into(),
            menu_id: Some("MENUID".into())
        }
    );
    let scan = "<EventKey><![CDATA[6]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType><ScanResult><![CDATA[1]]></ScanResult></ScanCodeInfo>";
    assert_eq!(
        event("scancode_push", scan),
        Event::ScancodePush {
            event_key: "6".into(),
            scan_type: "qrcode".into(),
            scan_result: "1".into()
        }
    );
    assert!(matches!(
        event("scancode_waitmsg", scan),
        Event::ScancodeWaitmsg { .. }
    ));
    let pics = "<EventKey><![CDATA[6]]></EventKey><SendPicsInfo><Count>1</Count><PicList><item><PicMd5Sum><![CDATA[1b5f7c23b5bf75682a53e7b6d163e185]]></PicMd5Sum></item></PicList></SendPicsInfo>";
    assert_eq!(
        event("pic_sysphoto", pics),
        Event::PicSysphoto {
            event_key: "6".into(),
            count: 1,
            pic_md5_sums: vec!["1b5f7c23b5bf75682a53e7b6d163e185".into()]
        }
    );
    assert!(matches!(
        event("pic_photo_or_album", pics),
        Event::PicPhotoOrAlbum { count: 1, .. }
    ));
    assert!(matches!(
        event("pic_weixin", pics),
        Event::PicWeixin { count: 1, .. }
    ));
    assert_eq!(
        event("location_select", "<EventKey><![CDATA[6]]></EventKey><SendLocationInfo><Location_X><![CDATA[23]]></Location_X><Location_Y><![CDATA[113]]></Location_Y><Scale><![CDATA[15]]></Scale><Label><![CDATA[ 广州市海珠区客村艺苑路 106号]]></Label><Poiname><![CDATA[]]></Poiname></SendLocationInfo>"),
        Event::LocationSelect { event_key: "6".into(), location_x: 23.0, location_y: 113.0, scale: 15.0, label: " 广州市海珠区客村艺苑路 106号".into(), poiname: Some(String::new()) }
    );
    assert_eq!(
        event(
            "TEMPLATESENDJOBFINISH",
            "<MsgID>200163836</MsgID><Status><![CDATA[success]]></Status>"
        ),
        Event::TemplateSendJobFinish {
            msg_id: "200163836".into(),
            status: "success".into()
        }
    );
    assert_eq!(
        event("MASSSENDJOBFINISH", "<MsgID>1988</MsgID><Status><![CDATA[sendsuccess]]></Status><TotalCount>100</TotalCount><FilterCount>80</FilterCount><SentCount>75</SentCount><ErrorCount>5</ErrorCount>"),
        Event::MassSendJobFinish { msg_id: "1988".into(), status: "sendsuccess".into(), total_count: 100, filter_count: 80, sent_count: 75, error_count: 5 }
    );
    assert_eq!(
        event(
            "view_miniprogram",
            "<EventKey><![CDATA[pages/index/index]]></EventKey><MenuId>MENUID</MenuId>"
        ),
        Event::ViewMiniprogram {
            event_key: "pages/index/index".into(),
            menu_id: Some("MENUID".into())
        }
    );
}

#[test]
fn unknown_types_keep_their_fields() {
    let m = msg(
        "device_text",
        "<Title><![CDATA[t]]></Title><AppId><![CDATA[wx1]]></AppId><MsgId>9</MsgId>",
    );
    assert_eq!(m.kind, MessageKind::Unknown);
    assert_eq!(m.raw.text("AppId"), Some("wx1"));
    let e = event("user_get_card", "<CardId><![CDATA[c]]></CardId>");
    assert_eq!(
        e,
        Event::Unknown {
            name: "user_get_card".into()
        }
    );
    let m = msg(
        "event",
        "<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[K]]></EventKey>",
    );
    // A retry (the same message, written the same or differently) shares the key.
    let retry = Message::parse(
        &format!(
            "<xml>\n  {}<Event>CLICK</Event>\n<EventKey><![CDATA[K]]></EventKey></xml>",
            head("event")
        ),
        DEFAULT_LIMIT,
    )
    .unwrap();
    assert_eq!(m.dedup_key(), retry.dedup_key());
}

#[test]
fn distinct_events_sharing_sender_time_event_and_key_are_not_merged() {
    // Two wxa_media_check results that differ only in trace_id.
    let media = |trace: &str| {
        msg(
            "event",
            &format!("<Event><![CDATA[wxa_media_check]]></Event><appid><![CDATA[wx1]]></appid><trace_id><![CDATA[{trace}]]></trace_id><version>2</version><result><suggest><![CDATA[pass]]></suggest><label>100</label></result>"),
        )
    };
    assert_ne!(media("t1").dedup_key(), media("t2").dedup_key());
    assert_eq!(media("t1").dedup_key(), media("t1").dedup_key());
    // Two template-send results in one second, for two different MsgIDs.
    let sent = |id: &str| {
        msg(
            "event",
            &format!("<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>{id}</MsgID><Status><![CDATA[success]]></Status>"),
        )
    };
    assert_ne!(sent("1").dedup_key(), sent("2").dedup_key());
    // Length prefixes: moving text between fields changes the digest.
    let a = msg("text", "<Content>ab</Content><MsgId>1</MsgId>");
    let b = msg("text", "<Content>a</Content><MsgId>b1</MsgId>");
    assert_ne!(a.dedup_key(), b.dedup_key());
}

#[test]
fn missing_and_bad_fields_are_errors() {
    assert!(Message::parse("<xml><MsgType>text</MsgType></xml>", DEFAULT_LIMIT).is_err());
    let doc = format!("<xml>{}</xml>", head("text"));
    assert!(Message::parse(&doc, DEFAULT_LIMIT).is_err());
    let doc = format!("<xml>{}<Location_X>x</Location_X><Location_Y>1</Location_Y><Scale>1</Scale><Label>l</Label></xml>", head("location"));
    assert!(Message::parse(&doc, DEFAULT_LIMIT).is_err());
}

#[test]
fn written_fields_parse_back() {
    let m = msg(
        "text",
        "<Content><![CDATA[a]]>b]]></Content><MsgId>42</MsgId>",
    );
    let again =
        Message::parse(&wxgate_proto::message::write_fields(&m.raw), DEFAULT_LIMIT).unwrap();
    assert_eq!(again, m);
}

#[test]
fn json_form_of_a_message_carries_every_field() {
    let m = msg(
        "event",
        "<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[K]]></EventKey>",
    );
    let v = serde_json::to_value(&m).unwrap();
    assert_eq!(v["kind"], "event");
    assert_eq!(v["event"]["event"], "click");
    assert_eq!(v["event"]["event_key"], "K");
    assert_eq!(v["raw"]["EventKey"], "K");
}

fn render(reply: &Reply) -> xml::Fields {
    let x = reply.to_xml("openid", "gh_1", 12345).unwrap();
    let doc = xml::parse(&x, DEFAULT_LIMIT).unwrap();
    assert_eq!(doc.root, "xml");
    assert_eq!(doc.fields.text("ToUserName"), Some("openid"));
    assert_eq!(doc.fields.text("FromUserName"), Some("gh_1"));
    assert_eq!(doc.fields.text("CreateTime"), Some("12345"));
    assert_eq!(doc.fields.text("MsgType"), Some(reply.msg_type()));
    doc.fields
}

#[test]
fn every_reply_type_renders() {
    let f = render(&Reply::Text {
        content: "你好 ]]> <b>".into(),
    });
    assert_eq!(f.text("Content"), Some("你好 ]]> <b>"));
    let f = render(&Reply::Image {
        media_id: "m1".into(),
    });
    assert_eq!(f.node("Image").unwrap().text("MediaId"), Some("m1"));
    let f = render(&Reply::Voice {
        media_id: "m2".into(),
    });
    assert_eq!(f.node("Voice").unwrap().text("MediaId"), Some("m2"));
    let f = render(&Reply::Video {
        media_id: "m3".into(),
        title: "t".into(),
        description: "d".into(),
    });
    assert_eq!(f.node("Video").unwrap().text("Title"), Some("t"));
    let f = render(&Reply::Music {
        title: "t".into(),
        description: "d".into(),
        music_url: "http://m".into(),
        hq_music_url: "http://hq".into(),
        thumb_media_id: "th".into(),
    });
    let music = f.node("Music").unwrap();
    assert_eq!(music.text("HQMusicUrl"), Some("http://hq"));
    assert_eq!(music.text("ThumbMediaId"), Some("th"));
    let article = |i: usize| Article {
        title: format!("t{i}"),
        description: "d".into(),
        pic_url: "p".into(),
        url: "u".into(),
    };
    let f = render(&Reply::News {
        articles: (0..8).map(article).collect(),
    });
    assert_eq!(f.text("ArticleCount"), Some("8"));
    assert_eq!(f.node("Articles").unwrap().all("item").count(), 8);
    assert!(Reply::News { articles: vec![] }
        .to_xml("o", "g", 1)
        .is_err());
    assert!(Reply::News {
        articles: (0..9).map(article).collect()
    }
    .to_xml("o", "g", 1)
    .is_err());
    assert_eq!(SUCCESS, "success");
}

#[test]
fn reply_json_form() {
    let r: Reply = serde_json::from_str(r#"{"type":"text","content":"hi"}"#).unwrap();
    assert_eq!(
        r,
        Reply::Text {
            content: "hi".into()
        }
    );
    let r: Reply =
        serde_json::from_str(r#"{"type":"news","articles":[{"title":"a","url":"http://x"}]}"#)
            .unwrap();
    let cs = r.to_custom_message("oid").unwrap();
    assert_eq!(cs["msgtype"], "news");
    assert_eq!(cs["news"]["articles"][0]["url"], "http://x");
    assert!(serde_json::from_str::<Reply>(r#"{"type":"bogus"}"#).is_err());
}

#[test]
fn json_member_names_that_are_not_xml_names_are_not_written_as_tags() {
    let json = r#"{"ToUserName":"gh_x","FromUserName":"o1","CreateTime":1,"MsgType":"text","Content":"hi","a<b/><c":"x","Msg Type":"y","1st":"z","xmlns":"w","Ok_Name-1.2":"kept"}"#;
    let fields = wxgate_proto::json::parse(json, 65536).unwrap();
    let xml = wxgate_proto::message::write_fields(&fields);
    for bad in ["a<b", "Msg Type", "<1st>", "<xmlns>"] {
        assert!(!xml.contains(bad), "{bad} in {xml}");
    }
    let doc = wxgate_proto::xml::parse(&xml, 65536).unwrap();
    assert_eq!(doc.fields.text("Content"), Some("hi"));
    assert_eq!(doc.fields.text("Ok_Name-1.2"), Some("kept"));
}
