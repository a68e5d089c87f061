//! Writing WeChat's documents: CDATA fields (a `]]>` inside split across sections) and
//! plain numeric fields.

/// Appends `text` as CDATA. A `]]>` inside the text is split across two sections, the only
/// way CDATA can carry it.
pub fn push_cdata(out: &mut String, text: &str) {
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
    fn cdata_escapes_terminator() {
        let mut s = String::new();
        push_cdata_field(&mut s, "Content", "a]]>b");
        let doc = parse(&format!("<xml>{s}</xml>"), DEFAULT_LIMIT).unwrap();
        assert_eq!(doc.fields.text("Content"), Some("a]]>b"));
    }
}
