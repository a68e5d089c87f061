//! The typed model of what WeChat pushes to an Official Account.
//!
//! Every message and event type of WeChat's documents (接收普通消息, 接收事件推送, 自定义菜单
//! 事件推送, 模板消息 and 群发 job results) has a variant; a type wxgate does not know
//! is kept as [`MessageKind::Unknown`] or [`Event::Unknown`], never rejected, and every
//! message also keeps all its fields as received in [`Message::raw`].

use serde::Serialize;

use crate::xml::{self, Fields, Value};
use crate::{Error, Result};

/// One pushed message or event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// The account's original ID (`gh_...`).
    pub to_user_name: String,
    /// The sender's openid.
    pub from_user_name: String,
    pub create_time: i64,
    /// `MsgType` as received.
    pub msg_type: String,
    #[serde(flatten)]
    pub kind: MessageKind,
    /// Every field as received, known or not.
    pub raw: Fields,
}

/// What kind of message it is, with its type's fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MessageKind {
    Text {
        content: String,
        msg_id: Option<String>,
    },
    Image {
        pic_url: String,
        media_id: String,
        msg_id: Option<String>,
    },
    Voice {
        media_id: String,
        format: String,
        /// Speech recognition result, when the account enabled it.
        recognition: Option<String>,
        msg_id: Option<String>,
    },
    Video {
        media_id: String,
        thumb_media_id: String,
        msg_id: Option<String>,
    },
    ShortVideo {
        media_id: String,
        thumb_media_id: String,
        msg_id: Option<String>,
    },
    Location {
        location_x: f64,
        location_y: f64,
        scale: f64,
        label: String,
        msg_id: Option<String>,
    },
    Link {
        title: String,
        description: String,
        url: String,
        msg_id: Option<String>,
    },
    File {
        title: String,
        description: String,
        file_key: String,
        file_md5: String,
        file_total_len: u64,
        msg_id: Option<String>,
    },
    Event {
        event: Event,
    },
    /// A `MsgType` wxgate does not model; its fields are in [`Message::raw`].
    Unknown,
}

/// An event (`MsgType` = `event`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A follow; from a parametric QR code `event_key` is `qrscene_<scene>` with a ticket.
    Subscribe {
        event_key: Option<String>,
        ticket: Option<String>,
    },
    Unsubscribe,
    /// A follower scanned a parametric QR code.
    Scan {
        event_key: String,
        ticket: Option<String>,
    },
    /// Reported location (上报地理位置).
    Location {
        latitude: f64,
        longitude: f64,
        precision: f64,
    },
    Click {
        event_key: String,
    },
    View {
        /// The URL of the menu item.
        event_key: String,
        menu_id: Option<String>,
    },
    ScancodePush {
        event_key: String,
        scan_type: String,
        scan_result: String,
    },
    ScancodeWaitmsg {
        event_key: String,
        scan_type: String,
        scan_result: String,
    },
    PicSysphoto {
        event_key: String,
        count: u32,
        pic_md5_sums: Vec<String>,
    },
    PicPhotoOrAlbum {
        event_key: String,
        count: u32,
        pic_md5_sums: Vec<String>,
    },
    PicWeixin {
        event_key: String,
        count: u32,
        pic_md5_sums: Vec<String>,
    },
    LocationSelect {
        event_key: String,
        location_x: f64,
        location_y: f64,
        scale: f64,
        label: String,
        poiname: Option<String>,
    },
    TemplateSendJobFinish {
        msg_id: String,
        status: String,
    },
    MassSendJobFinish {
        msg_id: String,
        status: String,
        total_count: u64,
        filter_count: u64,
        sent_count: u64,
        error_count: u64,
    },
    ViewMiniprogram {
        /// The page path of the menu item.
        event_key: String,
        menu_id: Option<String>,
    },
    /// An event wxgate does not model; its fields are in [`Message::raw`].
    Unknown {
        name: String,
    },
}

fn req<'a>(f: &'a Fields, name: &'static str) -> Result<&'a str> {
    f.text(name).ok_or(Error::MissingField(name))
}

fn opt(f: &Fields, name: &str) -> Option<String> {
    f.text(name).map(str::to_owned)
}

fn owned(f: &Fields, name: &'static str) -> Result<String> {
    req(f, name).map(str::to_owned)
}

fn num<T: std::str::FromStr>(f: &Fields, name: &'static str) -> Result<T> {
    req(f, name)?
        .trim()
        .parse()
        .map_err(|_| Error::InvalidField {
            field: name,
            reason: "not a number",
        })
}

fn sub<'a>(f: &'a Fields, name: &'static str) -> Result<&'a Fields> {
    f.node(name).ok_or(Error::MissingField(name))
}

fn pics(f: &Fields) -> Result<(u32, Vec<String>)> {
    let info = sub(f, "SendPicsInfo")?;
    let count = num(info, "Count")?;
    let md5s = info
        .node("PicList")
        .map(|list| {
            list.all("item")
                .filter_map(Value::as_node)
                .filter_map(|item| item.text("PicMd5Sum").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok((count, md5s))
}

fn scan_code(f: &Fields) -> Result<(String, String)> {
    let info = sub(f, "ScanCodeInfo")?;
    Ok((owned(info, "ScanType")?, owned(info, "ScanResult")?))
}

fn parse_event(f: &Fields) -> Result<Event> {
    let name = req(f, "Event")?;
    let key = || owned(f, "EventKey");
    Ok(match name.to_ascii_lowercase().as_str() {
        "subscribe" => Event::Subscribe {
            event_key: opt(f, "EventKey").filter(|k| !k.is_empty()),
            ticket: opt(f, "Ticket").filter(|t| !t.is_empty()),
        },
        "unsubscribe" => Event::Unsubscribe,
        "scan" => Event::Scan {
            event_key: key()?,
            ticket: opt(f, "Ticket"),
        },
        "location" => Event::Location {
            latitude: num(f, "Latitude")?,
            longitude: num(f, "Longitude")?,
            precision: num(f, "Precision")?,
        },
        "click" => Event::Click { event_key: key()? },
        "view" => Event::View {
            event_key: key()?,
            menu_id: opt(f, "MenuId"),
        },
        "scancode_push" => {
            let (scan_type, scan_result) = scan_code(f)?;
            Event::ScancodePush {
                event_key: key()?,
                scan_type,
                scan_result,
            }
        }
        "scancode_waitmsg" => {
            let (scan_type, scan_result) = scan_code(f)?;
            Event::ScancodeWaitmsg {
                event_key: key()?,
                scan_type,
                scan_result,
            }
        }
        "pic_sysphoto" => {
            let (count, pic_md5_sums) = pics(f)?;
            Event::PicSysphoto {
                event_key: key()?,
                count,
                pic_md5_sums,
            }
        }
        "pic_photo_or_album" => {
            let (count, pic_md5_sums) = pics(f)?;
            Event::PicPhotoOrAlbum {
                event_key: key()?,
                count,
                pic_md5_sums,
            }
        }
        "pic_weixin" => {
            let (count, pic_md5_sums) = pics(f)?;
            Event::PicWeixin {
                event_key: key()?,
                count,
                pic_md5_sums,
            }
        }
        "location_select" => {
            let info = sub(f, "SendLocationInfo")?;
            Event::LocationSelect {
                event_key: key()?,
                location_x: num(info, "Location_X")?,
                location_y: num(info, "Location_Y")?,
                scale: num(info, "Scale")?,
                label: owned(info, "Label")?,
                poiname: opt(info, "Poiname"),
            }
        }
        "templatesendjobfinish" => Event::TemplateSendJobFinish {
            msg_id: owned(f, "MsgID")?,
            status: owned(f, "Status")?,
        },
        "masssendjobfinish" => Event::MassSendJobFinish {
            msg_id: owned(f, "MsgID")?,
            status: owned(f, "Status")?,
            total_count: num(f, "TotalCount")?,
            filter_count: num(f, "FilterCount")?,
            sent_count: num(f, "SentCount")?,
            error_count: num(f, "ErrorCount")?,
        },
        "view_miniprogram" => Event::ViewMiniprogram {
            event_key: key()?,
            menu_id: opt(f, "MenuId"),
        },
        _ => Event::Unknown {
            name: name.to_owned(),
        },
    })
}

impl Message {
    /// Parses a plaintext message document of at most `limit` bytes.
    pub fn parse(input: &str, limit: usize) -> Result<Message> {
        Message::from_fields(xml::parse(input, limit)?.fields)
    }

    /// Builds the typed message from parsed fields.
    pub fn from_fields(f: Fields) -> Result<Message> {
        let msg_type = owned(&f, "MsgType")?;
        let msg_id = opt(&f, "MsgId");
        let kind = match msg_type.as_str() {
            "text" => MessageKind::Text {
                content: owned(&f, "Content")?,
                msg_id,
            },
            "image" => MessageKind::Image {
                pic_url: owned(&f, "PicUrl")?,
                media_id: owned(&f, "MediaId")?,
                msg_id,
            },
            "voice" => MessageKind::Voice {
                media_id: owned(&f, "MediaId")?,
                format: owned(&f, "Format")?,
                recognition: opt(&f, "Recognition"),
                msg_id,
            },
            "video" => MessageKind::Video {
                media_id: owned(&f, "MediaId")?,
                thumb_media_id: owned(&f, "ThumbMediaId")?,
                msg_id,
            },
            "shortvideo" => MessageKind::ShortVideo {
                media_id: owned(&f, "MediaId")?,
                thumb_media_id: owned(&f, "ThumbMediaId")?,
                msg_id,
            },
            "location" => MessageKind::Location {
                location_x: num(&f, "Location_X")?,
                location_y: num(&f, "Location_Y")?,
                scale: num(&f, "Scale")?,
                label: owned(&f, "Label")?,
                msg_id,
            },
            "link" => MessageKind::Link {
                title: owned(&f, "Title")?,
                description: owned(&f, "Description")?,
                url: owned(&f, "Url")?,
                msg_id,
            },
            "file" => MessageKind::File {
                title: owned(&f, "Title")?,
                description: opt(&f, "Description").unwrap_or_default(),
                file_key: owned(&f, "FileKey")?,
                file_md5: owned(&f, "FileMd5")?,
                file_total_len: num(&f, "FileTotalLen")?,
                msg_id,
            },
            "event" => MessageKind::Event {
                event: parse_event(&f)?,
            },
            _ => MessageKind::Unknown,
        };
        Ok(Message {
            to_user_name: owned(&f, "ToUserName")?,
            from_user_name: owned(&f, "FromUserName")?,
            create_time: num(&f, "CreateTime")?,
            msg_type,
            kind,
            raw: f,
        })
    }

    /// The event, when the message is one.
    pub fn event(&self) -> Option<&Event> {
        match &self.kind {
            MessageKind::Event { event } => Some(event),
            _ => None,
        }
    }

    /// The key WeChat's retries of this push share: a digest of every field as
    /// received, 32 hex digits. A retry is the same message, field for field; two
    /// distinct events can share sender, time, event and key (two `wxa_media_check`
    /// results differing in `trace_id`, two template-send results in one second), so
    /// nothing less than the whole message tells them apart.
    pub fn dedup_key(&self) -> String {
        crate::signature::hex(&fields_digest(&self.raw))
    }
}

/// A 128-bit digest of the fields, names and texts in document order, each
/// length-prefixed (so no two different documents feed the same bytes). XXH3-128:
/// a dedup key needs no resistance to crafted collisions (a push that passed its
/// signatures was sent by WeChat), and SHA-256 here cost a tenth of a push's
/// instructions.
pub fn fields_digest(fields: &Fields) -> [u8; 16] {
    use xxhash_rust::xxh3::Xxh3Default;
    fn feed(h: &mut Xxh3Default, fields: &Fields) {
        for (name, value) in &fields.0 {
            h.update(&(name.len() as u32).to_le_bytes());
            h.update(name.as_bytes());
            match value {
                Value::Text(t) => {
                    let mut head = [0u8; 5];
                    head[1..].copy_from_slice(&(t.len() as u32).to_le_bytes());
                    h.update(&head);
                    h.update(t.as_bytes());
                }
                Value::Node(n) => {
                    h.update(&[1]);
                    feed(h, n);
                    h.update(&[2]);
                }
            }
        }
    }
    let mut h = Xxh3Default::new();
    feed(&mut h, fields);
    h.digest128().to_le_bytes()
}

/// The account's message encryption mode (消息加解密方式), as set in WeChat's server
/// configuration. It decides what a push must look like; nothing in a push decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageMode {
    /// 明文模式: plaintext XML; `signature` covers token, timestamp and nonce only.
    #[default]
    Plaintext,
    /// 兼容模式: the plaintext fields and `Encrypt` in one document, `encrypt_type=aes`
    /// and `msg_signature` on the URL. Only the decrypted message is trusted (the
    /// plaintext beside it is covered by no signature); WeChat accepts a plaintext or an
    /// encrypted reply, and its FAQ says to answer `encrypt_type=aes` with ciphertext.
    Compatible,
    /// 安全模式: only `ToUserName` and `Encrypt`; the reply must be encrypted.
    Safe,
}

impl MessageMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageMode::Plaintext => "plaintext",
            MessageMode::Compatible => "compatible",
            MessageMode::Safe => "safe",
        }
    }

    /// Whether pushes carry `Encrypt` and `msg_signature` (compatible and safe).
    pub fn is_encrypted(self) -> bool {
        self != MessageMode::Plaintext
    }
}

impl std::fmt::Display for MessageMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for MessageMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "plaintext" | "plain" => Ok(MessageMode::Plaintext),
            "compatible" | "compat" => Ok(MessageMode::Compatible),
            "safe" | "aes" => Ok(MessageMode::Safe),
            other => Err(format!(
                "unknown mode {other:?}: plaintext, compatible or safe"
            )),
        }
    }
}

/// The encrypted push envelope of safe mode: `<xml><ToUserName/><Encrypt/></xml>`. In
/// compatible mode the same document also carries the plaintext fields, which are not
/// read: only what `msg_signature` covers is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub to_user_name: Option<String>,
    pub encrypt: String,
}

impl Envelope {
    /// Reads an envelope document of at most `limit` bytes. Only `ToUserName` and
    /// `Encrypt` are kept; the rest streams by without being built, so that a forged
    /// document costs no memory before its `msg_signature` is checked.
    pub fn parse(input: &str, limit: usize) -> Result<Envelope> {
        let [to_user_name, encrypt] = xml::root_texts(input, limit, ["ToUserName", "Encrypt"])?;
        Ok(Envelope {
            to_user_name,
            encrypt: encrypt.ok_or(Error::MissingField("Encrypt"))?,
        })
    }

    /// Writes the envelope WeChat sends in safe mode.
    pub fn to_xml(to_user_name: &str, encrypt: &str) -> String {
        let mut out = String::with_capacity(encrypt.len() + 96);
        out.push_str("<xml>");
        xml::push_cdata_field(&mut out, "ToUserName", to_user_name);
        xml::push_cdata_field(&mut out, "Encrypt", encrypt);
        out.push_str("</xml>");
        out
    }
}

/// Writes fields as a WeChat document: digits plain, everything else as CDATA. This is
/// how WeChat itself writes pushes, so the sandbox and tests use it to produce them.
pub fn write_fields(fields: &Fields) -> String {
    fn write(out: &mut String, fields: &Fields) {
        for (name, value) in &fields.0 {
            match value {
                Value::Text(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
                    xml::push_plain_field(out, name, t)
                }
                Value::Text(t) => xml::push_cdata_field(out, name, t),
                Value::Node(n) => {
                    out.push('<');
                    out.push_str(name);
                    out.push('>');
                    write(out, n);
                    out.push_str("</");
                    out.push_str(name);
                    out.push('>');
                }
            }
        }
    }
    let mut out = String::from("<xml>");
    write(&mut out, fields);
    out.push_str("</xml>");
    out
}
