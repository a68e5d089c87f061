//! The tokenizer under [`parse`](super::parse) and [`root_texts`](super::root_texts): a
//! hand-written scanner for the XML WeChat sends, which is elements, character data,
//! CDATA sections and the five predefined entities, nothing more.
//!
//! Why not a general XML reader: a push is a dozen short fields, and a general reader's
//! machinery (configurable events, buffered names, attribute decoding) cost a safe push
//! about 16,000 instructions, a fifth of its work (`bench/profile.sh`). This one borrows
//! every name and text from the input and allocates only to unescape a text with an
//! entity in it.
//!
//! What it refuses, so that its callers need not: a document type declaration
//! ([`Error::Dtd`], so no entity can be declared and XXE is impossible), any entity but
//! `&lt;` `&gt;` `&amp;` `&apos;` `&quot;` and character references, unterminated
//! comments, CDATA sections, processing instructions and tags, empty or malformed
//! names. Comments, processing instructions and the XML declaration are skipped;
//! attributes (WeChat sends none) are passed over, quotes respected.

use std::borrow::Cow;

use memchr::memchr;

use super::find;
use crate::{Error, Result};

/// One piece of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token<'a> {
    /// `<name ...>`
    Start(&'a str),
    /// `<name .../>`
    Empty(&'a str),
    /// `</name>`
    End(&'a str),
    /// Character data, entities replaced.
    Text(Cow<'a, str>),
    /// The content of `<![CDATA[...]]>`, as it is.
    CData(&'a str),
}

/// A scanner over one document.
pub struct Scanner<'a> {
    input: &'a str,
    pos: usize,
}

fn malformed(what: &str) -> Error {
    Error::Xml(what.to_owned())
}

/// Whether `b` can be in an element name: not a byte that ends or quotes markup, not
/// white space.
fn is_name_byte(b: u8) -> bool {
    !matches!(b, b'<' | b'>' | b'&' | b'"' | b'\'' | b'=' | b'/') && !b.is_ascii_whitespace()
}

/// Whether `name` can be an element name.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_name_byte)
}

impl<'a> Scanner<'a> {
    pub fn new(input: &'a str) -> Self {
        Scanner { input, pos: 0 }
    }

    /// The next token, `None` at the end of the document.
    pub fn next_token(&mut self) -> Result<Option<Token<'a>>> {
        loop {
            let bytes = self.input.as_bytes();
            if self.pos >= bytes.len() {
                return Ok(None);
            }
            if bytes[self.pos] != b'<' {
                let end = memchr(b'<', &bytes[self.pos..]).map_or(bytes.len(), |i| self.pos + i);
                let raw = &self.input[self.pos..end];
                self.pos = end;
                return Ok(Some(Token::Text(unescape(raw)?)));
            }
            let rest = &bytes[self.pos + 1..];
            match rest.first() {
                Some(b'/') => return self.end_tag().map(Some),
                Some(b'?') => self.skip_past(2, b"?>", "unterminated processing instruction")?,
                Some(b'!') => {
                    if rest.starts_with(b"!--") {
                        self.skip_past(4, b"-->", "unterminated comment")?;
                    } else if rest.starts_with(b"![CDATA[") {
                        let start = self.pos + 9;
                        let end = find(bytes, start, b"]]>")
                            .ok_or_else(|| malformed("unterminated CDATA section"))?;
                        self.pos = end + 3;
                        return Ok(Some(Token::CData(&self.input[start..end])));
                    } else if rest.starts_with(b"!DOCTYPE") {
                        return Err(Error::Dtd);
                    } else {
                        return Err(malformed("unknown markup after <!"));
                    }
                }
                Some(_) => return self.start_tag().map(Some),
                None => return Err(malformed("document ends inside a tag")),
            }
        }
    }

    /// Moves past the next `terminator`, searching from `skip` bytes into the markup.
    fn skip_past(&mut self, skip: usize, terminator: &[u8], what: &str) -> Result<()> {
        let end = find(self.input.as_bytes(), self.pos + skip, terminator)
            .ok_or_else(|| malformed(what))?;
        self.pos = end + terminator.len();
        Ok(())
    }

    /// `</name>`, with spaces allowed before the `>`.
    fn end_tag(&mut self) -> Result<Token<'a>> {
        let bytes = self.input.as_bytes();
        let start = self.pos + 2;
        let close = memchr(b'>', &bytes[start..])
            .map(|i| start + i)
            .ok_or_else(|| malformed("document ends inside an end tag"))?;
        let name = self.input[start..close].trim_end_matches([' ', '\t', '\r', '\n']);
        if !valid_name(name) {
            return Err(malformed("malformed end tag"));
        }
        self.pos = close + 1;
        Ok(Token::End(name))
    }

    /// `<name>`, `<name/>`, or either with attributes, which are passed over.
    fn start_tag(&mut self) -> Result<Token<'a>> {
        let bytes = self.input.as_bytes();
        let start = self.pos + 1;
        // The name, in one pass: it ends at a space, `/` or `>`.
        let mut i = start;
        let name_end = loop {
            match bytes.get(i) {
                None => return Err(malformed("document ends inside a tag")),
                Some(&b) if is_name_byte(b) => i += 1,
                Some(b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>') => break i,
                Some(_) => return Err(malformed("malformed start tag")),
            }
        };
        if name_end == start {
            return Err(malformed("malformed start tag"));
        }
        let name = &self.input[start..name_end];
        // The closing `>`, outside quoted attribute values.
        let mut quote = None;
        let close = loop {
            let Some(&b) = bytes.get(i) else {
                return Err(malformed("document ends inside a tag"));
            };
            match (quote, b) {
                (None, b'>') => break i,
                (None, b'"' | b'\'') => quote = Some(b),
                (None, b'<') => return Err(malformed("'<' inside a tag")),
                (Some(q), _) if b == q => quote = None,
                _ => {}
            }
            i += 1;
        };
        let empty = bytes[close - 1] == b'/';
        // After the name: nothing, `/` just before `>`, or attributes after a space.
        let after = &bytes[name_end..close - usize::from(empty)];
        if !after.is_empty() && !after[0].is_ascii_whitespace() {
            return Err(malformed("malformed start tag"));
        }
        self.pos = close + 1;
        Ok(if empty {
            Token::Empty(name)
        } else {
            Token::Start(name)
        })
    }
}

/// Character data with its entities replaced; borrowed when it has none.
fn unescape(raw: &str) -> Result<Cow<'_, str>> {
    let Some(first) = memchr(b'&', raw.as_bytes()) else {
        return Ok(Cow::Borrowed(raw));
    };
    let mut out = String::with_capacity(raw.len());
    out.push_str(&raw[..first]);
    let mut rest = &raw[first..];
    while let Some(amp) = memchr(b'&', rest.as_bytes()) {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = memchr(b';', after.as_bytes())
            .filter(|&i| i <= 10)
            .ok_or_else(|| malformed("unterminated entity"))?;
        out.push(entity(&after[..semi])?);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// The character an entity (without `&` and `;`) stands for.
fn entity(name: &str) -> Result<char> {
    let code = match name {
        "lt" => return Ok('<'),
        "gt" => return Ok('>'),
        "amp" => return Ok('&'),
        "apos" => return Ok('\''),
        "quot" => return Ok('"'),
        _ => match name.strip_prefix('#') {
            Some(hex) if hex.starts_with(['x', 'X']) => u32::from_str_radix(&hex[1..], 16),
            Some(dec) => dec.parse::<u32>(),
            None => return Err(Error::Xml(format!("unknown entity &{name};"))),
        },
    };
    code.ok()
        .filter(|&c| c != 0)
        .and_then(char::from_u32)
        .ok_or_else(|| malformed("invalid character reference"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(doc: &str) -> Result<Vec<Token<'_>>> {
        let mut s = Scanner::new(doc);
        let mut out = Vec::new();
        while let Some(t) = s.next_token()? {
            out.push(t);
        }
        Ok(out)
    }

    #[test]
    fn scans_a_wechat_push() {
        let doc = "<?xml version=\"1.0\"?><!-- c --><xml><A><![CDATA[x<y]]></A><B>1 &amp; &#x41;&#66;</B><C k=\"a/>b\" /></xml>";
        assert_eq!(
            tokens(doc).unwrap(),
            vec![
                Token::Start("xml"),
                Token::Start("A"),
                Token::CData("x<y"),
                Token::End("A"),
                Token::Start("B"),
                Token::Text(Cow::Owned("1 & AB".into())),
                Token::End("B"),
                Token::Empty("C"),
                Token::End("xml"),
            ]
        );
    }

    #[test]
    fn borrows_text_without_entities() {
        let t = tokens("<a>plain</a>").unwrap();
        assert!(matches!(&t[1], Token::Text(Cow::Borrowed("plain"))));
    }

    #[test]
    fn refuses_what_wechat_never_sends() {
        for bad in [
            "<a>&xxe;</a>",
            "<a>&amp</a>",
            "<a>&#0;</a>",
            "<a>&#xD800;</a>",
            "<a>&#x110000;</a>",
            "<a><![CDATA[x</a>",
            "<!-- x",
            "<?xml ",
            "<a",
            "<a b=\">\"",
            "<>",
            "< a>",
            "<a/b>",
            "</>",
            "</a b>",
            "<a <b>",
            "<!ELEMENT a>",
            "<",
        ] {
            assert!(tokens(bad).is_err(), "{bad:?}");
        }
        assert_eq!(tokens("<!DOCTYPE x><x/>"), Err(Error::Dtd));
    }

    #[test]
    fn end_tags_may_carry_trailing_spaces() {
        assert_eq!(
            tokens("<a></a \n>").unwrap(),
            vec![Token::Start("a"), Token::End("a")]
        );
    }
}
