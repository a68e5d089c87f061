//! A small, safe reader and writer for WeChat's `<xml>` documents.
//!
//! WeChat's messages are a flat `<xml>` of named fields, a few of them nested
//! (`ScanCodeInfo`, `SendPicsInfo/PicList/item`, ...). The reader turns a document into
//! ordered [`Fields`] and refuses what WeChat never sends and attackers love: a document
//! type declaration (so no DTD, no external entity: XXE is impossible by construction),
//! entities other than XML's five predefined ones and character references, documents
//! over a size limit, nesting deeper than [`MAX_DEPTH`] and more than [`MAX_ELEMENTS`]
//! elements (a document of empty `<a/>`s costs some 50 bytes of memory an element: the
//! size limit alone would let one request spend megabytes).
//!
//! Hand-written rather than taken from quick-xml, for both reasons a reader can have:
//! its refusals are the point (no DTD to configure away, no entity but the five), and it
//! is faster on what WeChat sends: a text push's fields in 301 ns against quick-xml's
//! 559 reading the same fields (`benches/handwritten.rs`).

use std::borrow::Cow;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::{Error, Result};

mod scan;
mod stream;
mod write;

use scan::{Scanner, Token};

pub use stream::root_texts;
pub use write::{
    push_cdata, push_cdata_field, push_own_cdata_field, push_plain_field, xml_clean, xml_forbidden,
};

/// The default size limit for one pushed document. WeChat's pushes are a few KiB; a
/// compatible-mode push carries its fields twice, once as ciphertext (about 3x); the
/// largest documented events (`MASSSENDJOBFINISH` with its copyright check list) stay
/// well under this.
pub const DEFAULT_LIMIT: usize = 64 << 10;
/// The deepest nesting WeChat uses is 4 (`xml/SendPicsInfo/PicList/item/PicMd5Sum`).
pub const MAX_DEPTH: usize = 8;
/// The most elements a document may hold. WeChat's pushes have a dozen or two; a
/// `SendPicsInfo` of 9 pictures or a mass-send job's result list a few hundred.
pub const MAX_ELEMENTS: usize = 1024;

/// A field's value: text (CDATA or character data) or nested fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Node(Fields),
}

impl Value {
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            Value::Node(_) => None,
        }
    }

    pub fn as_node(&self) -> Option<&Fields> {
        match self {
            Value::Node(n) => Some(n),
            Value::Text(_) => None,
        }
    }
}

/// An element name. WeChat's own field names are borrowed from a static table, so that
/// reading a push allocates for its texts only, not for every name.
pub type Name = Cow<'static, str>;

/// The fields of an element, in document order. A name may repeat (`item`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fields(pub Vec<(Name, Value)>);

impl Fields {
    /// The first field of that name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The text of the first field of that name.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_text)
    }

    /// The nested fields of the first field of that name.
    pub fn node(&self, name: &str) -> Option<&Fields> {
        self.get(name).and_then(Value::as_node)
    }

    /// Every field of that name.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends a field; the first takes room for a message's usual six to eight at once,
    /// rather than growing 4, then 8.
    fn push(&mut self, field: (Name, Value)) {
        if self.0.capacity() == 0 {
            self.0.reserve(8);
        }
        self.0.push(field);
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Value::Text(t) => s.serialize_str(t),
            Value::Node(n) => n.serialize(s),
        }
    }
}

/// As a JSON object; a repeated name becomes an array, in document order.
impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut names: Vec<&str> = Vec::new();
        for (n, _) in &self.0 {
            if !names.contains(&n.as_ref()) {
                names.push(n);
            }
        }
        let mut map = s.serialize_map(Some(names.len()))?;
        for name in names {
            let values: Vec<&Value> = self.all(name).collect();
            if values.len() == 1 {
                map.serialize_entry(name, values[0])?;
            } else {
                map.serialize_entry(name, &values)?;
            }
        }
        map.end()
    }
}

/// A parsed document: the root element's name and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub root: Name,
    pub fields: Fields,
}

struct Open<'a> {
    name: Name,
    /// The text so far, borrowed from the document until a second piece (or an
    /// entity) makes it owned; unused once the element has children.
    text: Cow<'a, str>,
    children: Fields,
}

impl<'a> Open<'a> {
    fn push_text(&mut self, piece: Cow<'a, str>) {
        if !self.children.is_empty() || piece.is_empty() {
            return;
        }
        if self.text.is_empty() {
            self.text = piece;
        } else {
            self.text.to_mut().push_str(&piece);
        }
    }

    fn push_child(&mut self, child: (Name, Value)) {
        // Text beside child elements is indentation: dropped.
        self.text = Cow::Borrowed("");
        self.children.push(child);
    }

    fn finish(self) -> (Name, Value) {
        let value = if self.children.is_empty() {
            Value::Text(self.text.into_owned())
        } else {
            Value::Node(self.children)
        };
        (self.name, value)
    }
}

/// Expands to a lookup from a name's bytes to the static name, for WeChat's field names.
macro_rules! known_names {
    ($($name:literal)*) => {
        pub(crate) fn known_name(raw: &[u8]) -> Option<&'static str> {
            match raw {
                $(x if x == $name.as_bytes() => Some($name),)*
                _ => None,
            }
        }
    };
}

// Every field name of WeChat's message, event and envelope documents, the Mini
// Program's included (the JSON reader shares this table).
known_names! {
    "xml" "ToUserName" "FromUserName" "CreateTime" "MsgType" "Content" "MsgId" "MsgID"
    "MsgDataId" "Idx" "Encrypt" "Event" "EventKey" "Ticket" "Latitude" "Longitude"
    "Precision" "PicUrl" "MediaId" "Format" "Recognition" "ThumbMediaId" "Location_X"
    "Location_Y" "Scale" "Label" "Title" "Description" "Url" "FileKey" "FileMd5"
    "FileTotalLen" "MenuId" "ScanCodeInfo" "ScanType" "ScanResult" "SendPicsInfo" "Count"
    "PicList" "item" "PicMd5Sum" "SendLocationInfo" "Poiname" "Status" "TotalCount"
    "FilterCount" "SentCount" "ErrorCount"
    "SessionFrom" "AppId" "PagePath" "ThumbUrl" "List" "TemplateId" "SubscribeStatusString"
    "PopupScene" "SubscribeMsgPopupEvent" "SubscribeMsgChangeEvent" "SubscribeMsgSentEvent"
    "ErrorCode" "ErrorStatus" "appid" "trace_id" "version" "result" "suggest" "label"
    "detail" "strategy" "errcode" "errmsg" "prob"
}

fn name_of(raw: &str) -> Name {
    match known_name(raw.as_bytes()) {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(raw.to_owned()),
    }
}

/// Where `needle`, a markup terminator ending in `>` (`]]>`, `-->`, `?>`), first starts in
/// `hay` at or after `from`: a SIMD scan for its last byte, which texts and base64 rarely
/// hold, then a look back (`str::find` set up a searcher per call: a tenth of a safe-mode
/// reply's instructions).
pub(crate) fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let (&last, head) = needle.split_last()?;
    let mut at = from + head.len();
    while let Some(i) = memchr::memchr(last, hay.get(at..)?) {
        let end = at + i;
        if hay[..end].ends_with(head) {
            return Some(end - head.len());
        }
        at = end + 1;
    }
    None
}

/// Refuses a document over `limit` bytes before any of it is read (every reader of
/// pushes, XML or JSON, starts here).
pub(crate) fn within(input: &str, limit: usize) -> Result<()> {
    if input.len() > limit {
        return Err(Error::TooLarge {
            size: input.len(),
            limit,
        });
    }
    Ok(())
}

/// Parses a document of at most `limit` bytes.
pub fn parse(input: &str, limit: usize) -> Result<Document> {
    within(input, limit)?;
    let mut scanner = Scanner::new(input);
    let mut stack: Vec<Open<'_>> = Vec::with_capacity(4);
    let mut done: Option<(Name, Value)> = None;
    let mut elements = 0usize;
    while let Some(token) = scanner.next_token()? {
        match token {
            Token::Start(_) | Token::Empty(_) if done.is_some() => {
                return Err(Error::Xml("more than one root element".into()))
            }
            Token::Start(_) | Token::Empty(_) if elements >= MAX_ELEMENTS => {
                return Err(too_many_elements())
            }
            Token::Start(name) => {
                elements += 1;
                if stack.len() >= MAX_DEPTH {
                    return Err(Error::Xml("nesting too deep".into()));
                }
                stack.push(Open {
                    name: name_of(name),
                    text: Cow::Borrowed(""),
                    children: Fields::default(),
                });
            }
            Token::Empty(name) => {
                elements += 1;
                let name = name_of(name);
                match stack.last_mut() {
                    Some(parent) => parent.push_child((name, Value::Text(String::new()))),
                    None => done = Some((name, Value::Node(Fields::default()))),
                }
            }
            Token::End(name) => {
                let open = stack
                    .pop()
                    .ok_or_else(|| Error::Xml("unexpected end tag".into()))?;
                if name != open.name {
                    return Err(Error::Xml(format!(
                        "end tag does not match <{}>",
                        open.name
                    )));
                }
                let finished = open.finish();
                match stack.last_mut() {
                    Some(parent) => parent.push_child(finished),
                    None => done = Some(finished),
                }
            }
            Token::Text(text) => match stack.last_mut() {
                Some(open) => open.push_text(text),
                None if text.trim().is_empty() => {}
                None => return Err(Error::Xml("text outside the root element".into())),
            },
            Token::CData(text) => match stack.last_mut() {
                Some(open) => open.push_text(Cow::Borrowed(text)),
                None => return Err(Error::Xml("CDATA outside the root element".into())),
            },
        }
    }
    if !stack.is_empty() {
        return Err(Error::Xml("unclosed element".into()));
    }
    match done {
        Some((root, Value::Node(fields))) => Ok(Document { root, fields }),
        Some((root, Value::Text(_))) => Ok(Document {
            root,
            fields: Fields::default(),
        }),
        None => Err(Error::Xml("no root element".into())),
    }
}

pub(crate) fn too_many_elements() -> Error {
    Error::Xml(format!("more than {MAX_ELEMENTS} elements"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wechat_field_names_are_not_copied() {
        let doc = parse(
            "<xml><ToUserName>a</ToUserName><Custom>b</Custom></xml>",
            DEFAULT_LIMIT,
        )
        .unwrap();
        assert!(matches!(doc.root, Cow::Borrowed("xml")));
        assert!(matches!(doc.fields.0[0].0, Cow::Borrowed("ToUserName")));
        assert!(matches!(&doc.fields.0[1].0, Cow::Owned(n) if n == "Custom"));
    }

    #[test]
    fn reads_cdata_text_and_nesting() {
        let doc = parse(
            "<xml><A><![CDATA[x]]></A><B>1 &amp; 2</B><C><D>d</D><D>e</D></C><E/></xml>",
            DEFAULT_LIMIT,
        )
        .unwrap();
        assert_eq!(doc.root, "xml");
        assert_eq!(doc.fields.text("A"), Some("x"));
        assert_eq!(doc.fields.text("B"), Some("1 & 2"));
        let c = doc.fields.node("C").unwrap();
        assert_eq!(c.all("D").count(), 2);
        assert_eq!(doc.fields.text("E"), Some(""));
        let json = serde_json::to_string(&doc.fields).unwrap();
        assert_eq!(json, r#"{"A":"x","B":"1 & 2","C":{"D":["d","e"]},"E":""}"#);
    }

    #[test]
    fn refuses_dtd_and_entities() {
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><A>&xxe;</A></xml>"#;
        assert_eq!(parse(xxe, DEFAULT_LIMIT), Err(Error::Dtd));
        assert!(parse("<xml><A>&xxe;</A></xml>", DEFAULT_LIMIT).is_err());
    }

    /// Documents both readers refuse.
    pub(super) const REFUSED: [&str; 9] = [
        "",
        "<xml>",
        "<xml><A></B></xml>",
        "</xml>",
        "<xml></xml><xml></xml>",
        "text",
        "<xml><A>&xxe;</A></xml>",
        "<!DOCTYPE xml><xml/>",
        "<xml><a><b><c><d><e><f><g><h><i>x</i></h></g></f></e></d></c></b></a></xml>",
    ];

    #[test]
    fn refuses_malformed() {
        for bad in REFUSED {
            assert!(parse(bad, DEFAULT_LIMIT).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refuses_too_many_elements() {
        let doc = format!("<xml>{}</xml>", "<a/>".repeat(MAX_ELEMENTS));
        let e = parse(&doc, DEFAULT_LIMIT).unwrap_err();
        assert!(e.to_string().contains("elements"), "{e}");
        assert!(root_texts(&doc, DEFAULT_LIMIT, ["Encrypt"]).is_err());
        let ok = format!("<xml>{}</xml>", "<a/>".repeat(MAX_ELEMENTS - 1));
        assert!(parse(&ok, DEFAULT_LIMIT).is_ok());
        assert!(root_texts(&ok, DEFAULT_LIMIT, ["Encrypt"]).is_ok());
    }

    #[test]
    fn refuses_oversized() {
        let doc = format!("<xml><A>{}</A></xml>", "a".repeat(100));
        assert!(matches!(parse(&doc, 50), Err(Error::TooLarge { .. })));
    }
}
