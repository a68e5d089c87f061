//! Reading a few fields of a document as it streams by, without building it: what the
//! encrypted envelope needs before its signature is checked.

use quick_xml::events::Event;
use quick_xml::Reader;

use super::{too_many_elements, xml_err, MAX_DEPTH, MAX_ELEMENTS};
use crate::{Error, Result};

/// The text of the root's direct children named in `wanted`, read without building the
/// document: what the encrypted envelope needs before its `msg_signature` is checked.
/// Every other element is skipped as it streams by and costs no memory; the same
/// refusals as [`parse`] apply (DTD, unknown entities, size, depth, element count). A
/// name given twice keeps its first text.
pub fn root_texts<const N: usize>(
    input: &str,
    limit: usize,
    wanted: [&str; N],
) -> Result<[Option<String>; N]> {
    super::within(input, limit)?;
    let mut reader = Reader::from_str(input);
    let mut out: [Option<String>; N] = std::array::from_fn(|_| None);
    // Depth 0: outside the root; 1: in the root; 2: in one of its children.
    let mut depth = 0usize;
    let mut roots = 0usize;
    let mut elements = 0usize;
    // The wanted child being read, by index, and its text so far.
    let mut current: Option<(usize, String)> = None;
    loop {
        match reader.read_event().map_err(xml_err)? {
            Event::DocType(_) => return Err(Error::Dtd),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Start(_) | Event::Empty(_) if elements >= MAX_ELEMENTS => {
                return Err(too_many_elements())
            }
            Event::Start(start) => {
                elements += 1;
                if depth >= MAX_DEPTH {
                    return Err(Error::Xml("nesting too deep".into()));
                }
                if depth == 0 {
                    roots += 1;
                    if roots > 1 {
                        return Err(Error::Xml("more than one root element".into()));
                    }
                } else if depth == 1 {
                    let name = start.name();
                    current = wanted
                        .iter()
                        .position(|w| w.as_bytes() == name.as_ref())
                        .filter(|&i| out[i].is_none())
                        .map(|i| (i, String::new()));
                }
                depth += 1;
            }
            Event::Empty(start) => {
                elements += 1;
                if depth == 0 {
                    roots += 1;
                } else if depth == 1 {
                    let name = start.name();
                    if let Some(i) = wanted.iter().position(|w| w.as_bytes() == name.as_ref()) {
                        out[i].get_or_insert_with(String::new);
                    }
                }
            }
            Event::End(_) => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| Error::Xml("unexpected end tag".into()))?;
                if depth == 1 {
                    if let Some((i, text)) = current.take() {
                        out[i] = Some(text);
                    }
                }
            }
            Event::Text(text) => {
                // Unescaped everywhere, so an unknown entity is refused as `parse` does;
                // borrowed (no allocation) when there is no entity.
                let text = text.unescape().map_err(xml_err)?;
                if depth == 0 {
                    if !text.trim().is_empty() {
                        return Err(Error::Xml("text outside the root element".into()));
                    }
                } else if let Some((_, t)) = current.as_mut().filter(|_| depth == 2) {
                    t.push_str(&text);
                }
            }
            Event::CData(cdata) => {
                if depth == 0 {
                    return Err(Error::Xml("CDATA outside the root element".into()));
                }
                if let Some((_, t)) = current.as_mut().filter(|_| depth == 2) {
                    t.push_str(std::str::from_utf8(&cdata.into_inner()).map_err(xml_err)?);
                }
            }
            Event::Eof => break,
        }
    }
    match (depth, roots) {
        (0, 1) => Ok(out),
        (0, 0) => Err(Error::Xml("no root element".into())),
        (0, _) => Err(Error::Xml("more than one root element".into())),
        _ => Err(Error::Xml("unclosed element".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse, DEFAULT_LIMIT};
    use super::*;

    #[test]
    fn root_texts_reads_what_parse_reads() {
        let doc = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Other><Encrypt>no</Encrypt></Other><Encrypt>a&amp;b<![CDATA[c]]></Encrypt><Encrypt>second</Encrypt><E/></xml>";
        let [to, enc, e, missing] =
            root_texts(doc, DEFAULT_LIMIT, ["ToUserName", "Encrypt", "E", "Nope"]).unwrap();
        assert_eq!(to.as_deref(), Some("gh_1"));
        assert_eq!(enc.as_deref(), Some("a&bc"));
        assert_eq!(e.as_deref(), Some(""));
        assert_eq!(missing, None);
        let parsed = parse(doc, DEFAULT_LIMIT).unwrap();
        assert_eq!(parsed.fields.text("Encrypt"), enc.as_deref());
        for bad in super::super::tests::REFUSED {
            assert!(root_texts(bad, DEFAULT_LIMIT, ["A"]).is_err(), "{bad:?}");
        }
    }
}
