//! WeChat's JSON pushes (数据格式: JSON), read into the same [`Fields`] as an XML push.
//!
//! A Mini Program (and an Official Account that chooses it) can receive its pushes as a
//! JSON object instead of an `<xml>` document, with the same field names. Reading both
//! into one [`Fields`] tree means one typed model, one dedup digest and one webhook shape
//! for both formats: a string or a number becomes text (numbers as written, so
//! `"CreateTime": 1482048670` and `<CreateTime>1482048670</CreateTime>` are the same
//! field), an object becomes nested fields, and an array becomes the field repeated, as
//! XML repeats an element (WeChat itself sends `"List"` as an object when it holds one
//! item and as an array when it holds more).
//!
//! The same bounds as the XML reader: a size limit, [`MAX_DEPTH`] and [`MAX_ELEMENTS`],
//! checked while reading, so a hostile document is refused before it is built.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::xml::{known_name, too_many_elements, Fields, Name, Value, MAX_DEPTH, MAX_ELEMENTS};
use crate::{Error, Result};

/// The format of a push's body, as set in WeChat's server configuration (数据格式).
/// XML is WeChat's default.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PushFormat {
    #[default]
    Xml,
    Json,
}

impl PushFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            PushFormat::Xml => "xml",
            PushFormat::Json => "json",
        }
    }

    /// The format a body is written in, where that is unambiguous: an XML document
    /// starts with `<`, a JSON object with `{` (after any whitespace).
    pub fn detect(body: &[u8]) -> Option<PushFormat> {
        match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'<') => Some(PushFormat::Xml),
            Some(b'{') => Some(PushFormat::Json),
            _ => None,
        }
    }
}

impl fmt::Display for PushFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PushFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "xml" => Ok(PushFormat::Xml),
            "json" => Ok(PushFormat::Json),
            other => Err(format!("unknown format {other:?}: xml or json")),
        }
    }
}

/// Reads a JSON push (an object) of at most `limit` bytes into fields.
pub fn parse(input: &str, limit: usize) -> Result<Fields> {
    crate::xml::within(input, limit)?;
    let budget = Budget::default();
    let mut de = serde_json::Deserializer::from_str(input);
    let fields = de::Deserializer::deserialize_map(
        &mut de,
        Node {
            budget: &budget,
            depth: 1,
        },
    )
    .map_err(json_err)?;
    de.end().map_err(json_err)?;
    Ok(fields)
}

/// Reads only `ToUserName` and `Encrypt` of an encrypted JSON push; every other member
/// is skipped without being built (the document is not trusted until `msg_signature`
/// over `Encrypt` is checked).
pub fn envelope_texts(input: &str, limit: usize) -> Result<(Option<String>, Option<String>)> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(rename = "ToUserName")]
        to_user_name: Option<String>,
        #[serde(rename = "Encrypt")]
        encrypt: Option<String>,
    }
    crate::xml::within(input, limit)?;
    let env: Envelope = serde_json::from_str(input).map_err(json_err)?;
    Ok((env.to_user_name, env.encrypt))
}

/// Writes fields as WeChat writes a JSON push: texts of digits as numbers (`CreateTime`,
/// `MsgId`), other texts as strings, a repeated name as an array. The sandbox and tests
/// produce JSON pushes with it.
pub fn write_fields(fields: &Fields) -> String {
    fn string(out: &mut String, s: &str) {
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    }
    fn value(out: &mut String, v: &Value) {
        match v {
            // Not `007`: as a number it would lose its zeros.
            Value::Text(t)
                if t.parse::<u64>().is_ok()
                    && t.bytes().all(|b| b.is_ascii_digit())
                    && (t == "0" || !t.starts_with('0')) =>
            {
                out.push_str(t)
            }
            Value::Text(t) => string(out, t),
            Value::Node(n) => object(out, n),
        }
    }
    // In document order (the dedup digest reads fields in order), each name once.
    fn object(out: &mut String, fields: &Fields) {
        out.push('{');
        let mut first = true;
        for (i, (name, _)) in fields.0.iter().enumerate() {
            if fields.0[..i].iter().any(|(n, _)| n == name) {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            string(out, name);
            out.push(':');
            let all: Vec<&Value> = fields.all(name).collect();
            if let [one] = all[..] {
                value(out, one);
            } else {
                out.push('[');
                for (j, v) in all.into_iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    value(out, v);
                }
                out.push(']');
            }
        }
        out.push('}');
    }
    let mut out = String::new();
    object(&mut out, fields);
    out
}

fn json_err(e: serde_json::Error) -> Error {
    Error::Json(e.to_string())
}

/// What one document may still spend.
#[derive(Default)]
struct Budget {
    elements: Cell<usize>,
}

impl Budget {
    fn take<E: de::Error>(&self) -> std::result::Result<(), E> {
        let n = self.elements.get() + 1;
        if n > MAX_ELEMENTS {
            return Err(E::custom(too_many_elements()));
        }
        self.elements.set(n);
        Ok(())
    }
}

/// An object, read into fields.
struct Node<'b> {
    budget: &'b Budget,
    depth: usize,
}

/// A member's value: one field, or (an array) the field repeated.
enum Member {
    One(Value),
    Many(Vec<Value>),
}

/// A member's value at some depth; `in_array` refuses an array directly in an array,
/// which no WeChat push has and no XML element could mean.
#[derive(Clone, Copy)]
struct Item<'b> {
    budget: &'b Budget,
    depth: usize,
    in_array: bool,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Fields;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<Fields, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Fields, A::Error> {
        if self.depth > MAX_DEPTH {
            return Err(de::Error::custom("nesting too deep"));
        }
        let mut fields = Fields::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            self.budget.take()?;
            let name: Name = match known_name(key.as_bytes()) {
                Some(n) => Cow::Borrowed(n),
                None => Cow::Owned(key.into_owned()),
            };
            let item = Item {
                budget: self.budget,
                depth: self.depth + 1,
                in_array: false,
            };
            match map.next_value_seed(item)? {
                Member::One(v) => fields.0.push((name, v)),
                Member::Many(values) => fields
                    .0
                    .extend(values.into_iter().map(|v| (name.clone(), v))),
            }
        }
        Ok(fields)
    }
}

impl<'de> DeserializeSeed<'de> for Item<'_> {
    type Value = Member;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<Member, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Item<'_> {
    type Value = Member;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number, boolean, null, object or array")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Member, E> {
        Ok(Member::One(Value::Text(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Member, E> {
        Ok(Member::One(Value::Text(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Member, E> {
        Ok(Member::One(Value::Text(v.to_string())))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Member, E> {
        Ok(Member::One(Value::Text(v.to_string())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Member, E> {
        Ok(Member::One(Value::Text(v.to_string())))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Member, E> {
        Ok(Member::One(Value::Text(v.to_string())))
    }

    /// `null`: an empty field, as `<Field/>` is.
    fn visit_unit<E: de::Error>(self) -> std::result::Result<Member, E> {
        Ok(Member::One(Value::Text(String::new())))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Member, A::Error> {
        let node = Node {
            budget: self.budget,
            depth: self.depth,
        };
        node.visit_map(map).map(|f| Member::One(Value::Node(f)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Member, A::Error> {
        if self.in_array {
            return Err(de::Error::custom("an array directly inside an array"));
        }
        let mut values = Vec::new();
        let item = || Item {
            in_array: true,
            ..self
        };
        // The first element was counted as the member itself.
        let mut first = true;
        while let Some(member) = seq.next_element_seed(item())? {
            if !first {
                self.budget.take()?;
            }
            first = false;
            if let Member::One(v) = member {
                values.push(v);
            }
        }
        Ok(Member::Many(values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::DEFAULT_LIMIT;

    #[test]
    fn numbers_and_strings_are_text_objects_nest_and_arrays_repeat() {
        let f = parse(
            r#"{"Content":"x","B":1482048670,"C":{"D":["d","e"]},"E":null,"F":true,"G":-1.5}"#,
            DEFAULT_LIMIT,
        )
        .unwrap();
        assert_eq!(f.text("Content"), Some("x"));
        assert_eq!(f.text("B"), Some("1482048670"));
        assert_eq!(f.node("C").unwrap().all("D").count(), 2);
        assert_eq!(f.text("E"), Some(""));
        assert_eq!(f.text("F"), Some("true"));
        assert_eq!(f.text("G"), Some("-1.5"));
        assert!(
            matches!(f.0[0].0, Cow::Borrowed(_)),
            "a WeChat name is not copied"
        );
        let back = serde_json::to_string(&f).unwrap();
        assert_eq!(
            back,
            r#"{"Content":"x","B":"1482048670","C":{"D":["d","e"]},"E":"","F":"true","G":"-1.5"}"#
        );
    }

    #[test]
    fn the_same_push_in_both_formats_is_the_same_fields() {
        let xml = "<xml><ToUserName><![CDATA[toUser]]></ToUserName><CreateTime>1482048670</CreateTime><List><A>1</A></List><List><A>2</A></List></xml>";
        let json = r#"{"ToUserName":"toUser","CreateTime":1482048670,"List":[{"A":1},{"A":"2"}]}"#;
        let from_xml = crate::xml::parse(xml, DEFAULT_LIMIT).unwrap().fields;
        assert_eq!(parse(json, DEFAULT_LIMIT).unwrap(), from_xml);
        assert_eq!(
            parse(&write_fields(&from_xml), DEFAULT_LIMIT).unwrap(),
            from_xml
        );
    }

    #[test]
    fn refuses_what_is_not_a_bounded_object() {
        let deep = format!("{{\"a\":{}1{}}}", "{\"b\":".repeat(8), "}".repeat(8));
        let many = format!("{{\"a\":[{}0]}}", "0,".repeat(MAX_ELEMENTS));
        let many_keys = format!(
            "{{{}\"z\":0}}",
            (0..MAX_ELEMENTS)
                .map(|i| format!("\"k{i}\":0,"))
                .collect::<String>()
        );
        for bad in [
            "",
            "[]",
            "\"x\"",
            "1",
            "{",
            "{\"a\":1}x",
            "{\"a\":[[1]]}",
            "{\"a\":1e999}",
            deep.as_str(),
            many.as_str(),
            many_keys.as_str(),
        ] {
            assert!(parse(bad, 1 << 20).is_err(), "{bad:?}");
        }
        let ok = format!("{{\"a\":[{}0]}}", "0,".repeat(MAX_ELEMENTS - 2));
        assert!(parse(&ok, 1 << 20).is_ok());
        assert!(matches!(
            parse("{\"a\":\"xxxxxxxx\"}", 8),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn detects_the_format_where_unambiguous() {
        assert_eq!(PushFormat::detect(b" \n<xml/>"), Some(PushFormat::Xml));
        assert_eq!(PushFormat::detect(b"\t{}"), Some(PushFormat::Json));
        assert_eq!(PushFormat::detect(b"success"), None);
        assert_eq!(PushFormat::detect(b""), None);
    }
}
