//! The typed model of what WeChat pushes to an Official Account or a Mini Program, in XML
//! or JSON.
//!
//! Every message and event type of WeChat's documents (接收普通消息, 接收事件推送, 自定义菜单
//! 事件推送, 模板消息 and 群发 job results; the Mini Program's 客服消息, 进入会话事件,
//! media check results and subscribe-message events) has a variant; a type wxgate does not know
//! is kept as [`MessageKind::Unknown`] or [`Event::Unknown`], never rejected, and every
//! message also keeps all its fields as received in [`Message::raw`].

use serde::Serialize;

use crate::xml::{self, Fields, Value};
use crate::{Error, Result};

mod event;

use event::parse_event;
pub use event::{Event, SubscribeChoice, SubscribeSent};

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
    /// A Mini Program card sent in a customer-service session (小程序卡片消息).
    MiniProgramPage {
        title: String,
        app_id: String,
        page_path: String,
        thumb_url: Option<String>,
        thumb_media_id: Option<String>,
        msg_id: Option<String>,
    },
    Event {
        event: Event,
    },
    /// A `MsgType` wxgate does not model; its fields are in [`Message::raw`].
    Unknown,
}

pub(crate) fn req<'a>(f: &'a Fields, name: &'static str) -> Result<&'a str> {
    f.text(name).ok_or(Error::MissingField(name))
}

pub(crate) fn opt(f: &Fields, name: &str) -> Option<String> {
    f.text(name).map(str::to_owned)
}

pub(crate) fn owned(f: &Fields, name: &'static str) -> Result<String> {
    req(f, name).map(str::to_owned)
}

pub(crate) fn num<T: std::str::FromStr>(f: &Fields, name: &'static str) -> Result<T> {
    req(f, name)?
        .trim()
        .parse()
        .map_err(|_| Error::InvalidField {
            field: name,
            reason: "not a number",
        })
}

pub(crate) fn sub<'a>(f: &'a Fields, name: &'static str) -> Result<&'a Fields> {
    f.node(name).ok_or(Error::MissingField(name))
}

impl Message {
    /// Parses a plaintext message document of at most `limit` bytes.
    pub fn parse(input: &str, limit: usize) -> Result<Message> {
        Message::from_fields(xml::parse(input, limit)?.fields)
    }

    /// Parses a plaintext JSON push of at most `limit` bytes (数据格式 JSON): the same
    /// message as its XML twin, field for field.
    pub fn parse_json(input: &str, limit: usize) -> Result<Message> {
        Message::from_fields(crate::json::parse(input, limit)?)
    }

    /// Parses a plaintext push in the given format.
    pub fn parse_as(format: crate::PushFormat, input: &str, limit: usize) -> Result<Message> {
        match format {
            crate::PushFormat::Xml => Message::parse(input, limit),
            crate::PushFormat::Json => Message::parse_json(input, limit),
        }
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
            "miniprogrampage" => MessageKind::MiniProgramPage {
                title: owned(&f, "Title")?,
                app_id: owned(&f, "AppId")?,
                page_path: owned(&f, "PagePath")?,
                thumb_url: opt(&f, "ThumbUrl"),
                thumb_media_id: opt(&f, "ThumbMediaId"),
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
        crate::signature::hex(&self.dedup_digest())
    }

    /// [`Message::dedup_key`] as its 16 bytes.
    pub fn dedup_digest(&self) -> [u8; 16] {
        fields_digest(&self.raw)
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

/// Whether `name` can be written as an element name: an ASCII letter or `_`, then
/// letters, digits, `_`, `-` or `.` (WeChat's field names are all of this kind; `xml` in
/// any case is reserved).
pub fn is_xml_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("xml"))
}

/// Writes fields as a WeChat document: digits plain, everything else as CDATA. This is
/// how WeChat itself writes pushes, so the sandbox and tests use it to produce them.
///
/// A field whose name is not an XML name (a JSON push's member can be called anything)
/// is left out: written as a tag it would make the document something else.
pub fn write_fields(fields: &Fields) -> String {
    fn write(out: &mut String, fields: &Fields) {
        for (name, value) in &fields.0 {
            if !is_xml_name(name) {
                continue;
            }
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
