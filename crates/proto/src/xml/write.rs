//! Writing WeChat's documents: CDATA fields (a `]]>` inside split across sections) and
//! plain numeric fields.

/// Whether XML 1.0 forbids `c` anywhere in a document, CDATA included: the C0 controls
/// but tab, line feed and carriage return, and U+FFFE, U+FFFF (surrogates cannot be in
/// a `str`). A reply carrying one is not XML, and WeChat drops it.
pub fn xml_forbidden(c: char) -> bool {
    matches!(c, '\0'..='\x08' | '\x0B' | '\x0C' | '\x0E'..='\x1F' | '\u{FFFE}' | '\u{FFFF}')
}

/// Whether `text` may hold a character XML forbids: a C0 control byte other than tab,
/// line feed and carriage return, or U+FFFE/U+FFFF (`EF BF BE`/`EF BF BF`). A first
/// pass looks only for bytes below 0x20 and 0xEF, which most texts have none of.
fn needs_cleaning(bytes: &[u8]) -> bool {
    if !bytes.iter().any(|&b| b < 0x20 || b == 0xEF) {
        return false;
    }
    bytes.iter().enumerate().any(|(i, &b)| {
        (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
            || (b == 0xEF
                && bytes.get(i + 1) == Some(&0xBF)
                && bytes.get(i + 2).is_some_and(|c| *c >= 0xBE))
    })
}

/// `text` without the characters XML forbids ([`xml_forbidden`]); borrowed when it has
/// none.
pub fn xml_clean(text: &str) -> std::borrow::Cow<'_, str> {
    if needs_cleaning(text.as_bytes()) {
        text.chars()
            .filter(|c| !xml_forbidden(*c))
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

/// Appends `text` as CDATA, without the characters XML forbids ([`xml_clean`]). A `]]>`
/// inside the text is split across two sections, the only way CDATA can carry it.
pub fn push_cdata(out: &mut String, text: &str) {
    push_cdata_verbatim(out, &xml_clean(text));
}

/// [`push_cdata`] without the cleaning, for a text that cannot hold a forbidden
/// character.
fn push_cdata_verbatim(out: &mut String, text: &str) {
    out.push_str("<![CDATA[");
    let mut rest = text;
    while let Some(i) = cdata_end(rest) {
        out.push_str(&rest[..i]);
        out.push_str("]]]]><![CDATA[>");
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    out.push_str("]]>");
}

/// Where `]]>` starts in `text`.
fn cdata_end(text: &str) -> Option<usize> {
    super::find(text.as_bytes(), 0, b"]]>")
}

/// Appends `<name><![CDATA[text]]></name>`.
pub fn push_cdata_field(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    push_cdata(out, text);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// [`push_cdata_field`] for a text this crate made from characters XML allows (base64,
/// hex: an `Encrypt`, a `MsgSignature`), written without looking for forbidden ones.
pub fn push_own_cdata_field(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    push_cdata_verbatim(out, text);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Appends `<name>value</name>` for a value that needs no escaping (numbers).
pub fn push_plain_field(out: &mut String, name: &str, value: impl std::fmt::Display) {
    use std::fmt::Write;
    // The tags pushed as they are: one `write!` of the whole field cost four times the
    // formatting of the number alone.
    out.push('<');
    out.push_str(name);
    out.push('>');
    let _ = write!(out, "{value}");
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::super::{parse, DEFAULT_LIMIT};
    use super::*;

    #[test]
    fn finds_the_cdata_end_as_str_find_does() {
        for t in [
            "",
            ">",
            "]>",
            "]]>",
            "a]]>b]]>",
            "]]]>",
            "x>y]]z>]]>",
            "中]]>文",
            "]] >",
        ] {
            assert_eq!(cdata_end(t), t.find("]]>"), "{t}");
        }
    }

    #[test]
    fn characters_xml_forbids_are_dropped_from_cdata() {
        let mut s = String::new();
        push_cdata_field(
            &mut s,
            "Content",
            "a\u{0}b\u{7}c\u{1b}[31md\u{FFFF}e\u{FFFE}\tf\ng，中",
        );
        let doc = parse(&format!("<xml>{s}</xml>"), DEFAULT_LIMIT).unwrap();
        assert_eq!(doc.fields.text("Content"), Some("abc[31mde\tf\ng，中"));
        assert!(matches!(
            xml_clean("中文，全角！\u{FFFD}"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn cdata_escapes_terminator() {
        let mut s = String::new();
        push_cdata_field(&mut s, "Content", "a]]>b");
        let doc = parse(&format!("<xml>{s}</xml>"), DEFAULT_LIMIT).unwrap();
        assert_eq!(doc.fields.text("Content"), Some("a]]>b"));
    }
}
