//! Sample pushes of every message and event type, as WeChat writes them, for the pusher,
//! tests and `wxgate sandbox push`.

use wxgate_proto::xml::{Fields, Value};

fn t(v: impl Into<String>) -> Value {
    Value::Text(v.into())
}

fn node(pairs: Vec<(&str, Value)>) -> Value {
    Value::Node(Fields(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned().into(), v))
            .collect(),
    ))
}

/// Every `MsgType` (and, for events, `Event`) the samples cover.
pub const KINDS: &[&str] = &[
    "text",
    "image",
    "voice",
    "video",
    "shortvideo",
    "location",
    "link",
    "file",
    "subscribe",
    "subscribe_qrscene",
    "unsubscribe",
    "SCAN",
    "LOCATION",
    "CLICK",
    "VIEW",
    "scancode_push",
    "scancode_waitmsg",
    "pic_sysphoto",
    "pic_photo_or_album",
    "pic_weixin",
    "location_select",
    "TEMPLATESENDJOBFINISH",
    "MASSSENDJOBFINISH",
    "view_miniprogram",
    "miniprogrampage",
    "user_enter_tempsession",
    "wxa_media_check",
];

/// A push of that kind from `from` (an openid) to `to` (the account's original ID).
/// `text` is the content of a text message, or the EventKey of a menu event.
pub fn sample(
    kind: &str,
    to: &str,
    from: &str,
    create_time: i64,
    msg_id: u64,
    text: Option<&str>,
) -> Option<Fields> {
    let mut f: Vec<(&str, Value)> = vec![
        ("ToUserName", t(to)),
        ("FromUserName", t(from)),
        ("CreateTime", t(create_time.to_string())),
    ];
    let id = ("MsgId", t(msg_id.to_string()));
    let key = |default: &str| t(text.unwrap_or(default));
    let ev = |name: &str| [("MsgType", t("event")), ("Event", t(name))];
    let pics = || {
        node(vec![
            ("Count", t("1")),
            (
                "PicList",
                node(vec![(
                    "item",
                    node(vec![("PicMd5Sum", t("1b5f7c23b5bf75682a53e7b6d163e185"))]),
                )]),
            ),
        ])
    };
    let scan = || {
        node(vec![
            ("ScanType", t("qrcode")),
            ("ScanResult", t("https://example.com/1")),
        ])
    };
    match kind {
        "text" => f.extend([("MsgType", t("text")), ("Content", key("hello")), id]),
        "image" => f.extend([
            ("MsgType", t("image")),
            ("PicUrl", t("http://mmbiz.qpic.cn/sandbox.jpg")),
            ("MediaId", t("MEDIA_ID_IMAGE")),
            id,
        ]),
        "voice" => f.extend([
            ("MsgType", t("voice")),
            ("MediaId", t("MEDIA_ID_VOICE")),
            ("Format", t("amr")),
            ("Recognition", key("腾讯微信团队")),
            id,
        ]),
        "video" | "shortvideo" => f.extend([
            ("MsgType", t(kind)),
            ("MediaId", t("MEDIA_ID_VIDEO")),
            ("ThumbMediaId", t("MEDIA_ID_THUMB")),
            id,
        ]),
        "location" => f.extend([
            ("MsgType", t("location")),
            ("Location_X", t("23.134521")),
            ("Location_Y", t("113.358803")),
            ("Scale", t("20")),
            ("Label", key("位置信息")),
            id,
        ]),
        "link" => f.extend([
            ("MsgType", t("link")),
            ("Title", t("公众平台官网链接")),
            ("Description", t("公众平台官网链接")),
            ("Url", key("https://mp.weixin.qq.com")),
            id,
        ]),
        "file" => f.extend([
            ("MsgType", t("file")),
            ("Title", key("report.pdf")),
            ("Description", t("")),
            ("FileKey", t("FILE_KEY")),
            ("FileMd5", t("5a3c2b1e")),
            ("FileTotalLen", t("2048")),
            id,
        ]),
        "subscribe" => f.extend(ev("subscribe")),
        "subscribe_qrscene" => {
            f.extend(ev("subscribe"));
            f.extend([
                ("EventKey", t(format!("qrscene_{}", text.unwrap_or("123")))),
                ("Ticket", t("TICKET")),
            ]);
        }
        "unsubscribe" => f.extend(ev("unsubscribe")),
        "SCAN" => {
            f.extend(ev("SCAN"));
            f.extend([("EventKey", key("123")), ("Ticket", t("TICKET"))]);
        }
        "LOCATION" => {
            f.extend(ev("LOCATION"));
            f.extend([
                ("Latitude", t("23.137466")),
                ("Longitude", t("113.352425")),
                ("Precision", t("119.385040")),
            ]);
        }
        "CLICK" => {
            f.extend(ev("CLICK"));
            f.push(("EventKey", key("V1001_TODAY_MUSIC")));
        }
        "VIEW" => {
            f.extend(ev("VIEW"));
            f.extend([
                ("EventKey", key("https://www.qq.com/")),
                ("MenuId", t("208396938")),
            ]);
        }
        "scancode_push" | "scancode_waitmsg" => {
            f.extend(ev(kind));
            f.extend([("EventKey", key("rselfmenu_0_1")), ("ScanCodeInfo", scan())]);
        }
        "pic_sysphoto" | "pic_photo_or_album" | "pic_weixin" => {
            f.extend(ev(kind));
            f.extend([("EventKey", key("rselfmenu_1_0")), ("SendPicsInfo", pics())]);
        }
        "location_select" => {
            f.extend(ev("location_select"));
            f.extend([
                ("EventKey", key("rselfmenu_2_0")),
                (
                    "SendLocationInfo",
                    node(vec![
                        ("Location_X", t("23")),
                        ("Location_Y", t("113")),
                        ("Scale", t("15")),
                        ("Label", t("广州市海珠区客村艺苑路 106号")),
                        ("Poiname", t("")),
                    ]),
                ),
            ]);
        }
        "TEMPLATESENDJOBFINISH" => {
            f.extend(ev("TEMPLATESENDJOBFINISH"));
            f.extend([("MsgID", t(msg_id.to_string())), ("Status", t("success"))]);
        }
        "MASSSENDJOBFINISH" => {
            f.extend(ev("MASSSENDJOBFINISH"));
            f.extend([
                ("MsgID", t(msg_id.to_string())),
                ("Status", t("sendsuccess")),
                ("TotalCount", t("100")),
                ("FilterCount", t("80")),
                ("SentCount", t("75")),
                ("ErrorCount", t("5")),
            ]);
        }
        "view_miniprogram" => {
            f.extend(ev("view_miniprogram"));
            f.extend([
                ("EventKey", key("pages/index/index")),
                ("MenuId", t("MENUID")),
            ]);
        }
        // The Mini Program's customer-service card and events (接收消息和事件).
        "miniprogrampage" => f.extend([
            ("MsgType", t("miniprogrampage")),
            id,
            ("Title", key("Title")),
            ("AppId", t("wxsandboxmini001")),
            ("PagePath", t("pages/index/index")),
            ("ThumbUrl", t("")),
            ("ThumbMediaId", t("")),
        ]),
        "user_enter_tempsession" => {
            f.extend(ev("user_enter_tempsession"));
            f.push(("SessionFrom", key("sessionFrom")));
        }
        "wxa_media_check" => {
            f.extend(ev("wxa_media_check"));
            f.extend([
                ("appid", t("wxsandboxmini001")),
                ("trace_id", key("60f96f1d-3845297a-1976a3ae")),
                ("version", t("2")),
                (
                    "result",
                    node(vec![("suggest", t("pass")), ("label", t("100"))]),
                ),
            ]);
        }
        _ => return None,
    }
    Some(Fields(
        f.into_iter()
            .map(|(k, v)| (k.to_owned().into(), v))
            .collect(),
    ))
}
