//! Reading a few fields of a document as it streams by, without building it: what the
//! encrypted envelope needs before its signature is checked.

use super::scan::{Scanner, Token};
use super::{too_many_elements, MAX_DEPTH, MAX_ELEMENTS};
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
    let mut scanner = Scanner::new(input);
    let mut out: [Option<String>; N] = std::array::from_fn(|_| None);
    // The names of the open elements: end tags must match them.
    let mut open: Vec<&str> = Vec::with_capacity(4);
    let mut roots = 0usize;
    let mut elements = 0usize;
    // The wanted child being read, by index, and its text so far.
    let mut current: Option<(usize, String)> = None;
    while let Some(token) = scanner.next_token()? {
        let depth = open.len();
        match token {
            Token::Start(_) | Token::Empty(_) if elements >= MAX_ELEMENTS => {
                return Err(too_many_elements())
            }
            Token::Start(_) | Token::Empty(_) if depth == 0 && roots > 0 => {
                return Err(Error::Xml("more than one root element".into()))
            }
            Token::Start(name) => {
                elements += 1;
                if depth >= MAX_DEPTH {
                    return Err(Error::Xml("nesting too deep".into()));
                }
                if depth == 0 {
                    roots += 1;
                } else if depth == 1 {
                    current = wanted
                        .iter()
                        .position(|w| *w == name)
                        .filter(|&i| out[i].is_none())
                        .map(|i| (i, String::new()));
                }
                open.push(name);
            }
            Token::Empty(name) => {
                elements += 1;
                if depth == 0 {
                    roots += 1;
                } else if depth == 1 {
                    if let Some(i) = wanted.iter().position(|w| *w == name) {
                        out[i].get_or_insert_with(String::new);
                    }
                }
            }
            Token::End(name) => {
                if open.pop() != Some(name) {
                    return Err(Error::Xml("end tag does not match".into()));
                }
                if depth == 2 {
                    if let Some((i, text)) = current.take() {
                        out[i] = Some(text);
                    }
                }
            }
            Token::Text(text) if depth == 0 => {
                if !text.trim().is_empty() {
                    return Err(Error::Xml("text outside the root element".into()));
                }
            }
            Token::CData(_) if depth == 0 => {
                return Err(Error::Xml("CDATA outside the root element".into()));
            }
            Token::Text(text) => push_wanted(&mut current, depth, &text),
            Token::CData(text) => push_wanted(&mut current, depth, text),
        }
    }
    match (open.len(), roots) {
        (0, 1) => Ok(out),
        (0, _) => Err(Error::Xml("no root element".into())),
        _ => Err(Error::Xml("unclosed element".into())),
    }
}

/// Text directly inside the wanted child being read.
fn push_wanted(current: &mut Option<(usize, String)>, depth: usize, text: &str) {
    if let Some((_, t)) = current.as_mut().filter(|_| depth == 2) {
        t.push_str(text);
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
