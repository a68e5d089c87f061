//! The query strings of the hot routes (`/wx/service`, `/wx/config`), read into a struct
//! of named slots without serde.
//!
//! axum's `Query` goes through serde_urlencoded and serde_path_to_error, and
//! `form_urlencoded` decodes through several copies: together a quarter of a `/wx/config`
//! answer in instructions. These routes read a handful of known names, so a loop that
//! decodes only what needs it does the same job: 147 ns for a push's query against
//! `form_urlencoded`'s 366 filling the same slots, 83 against 197 for a `/wx/config`
//! query (`benches/handwritten.rs`). A name given twice is refused, as the derived deserializer did: one
//! value must not be checked while another is used.

use std::borrow::Cow;

use axum::http::StatusCode;

use super::envelope::Reject;

/// A query's known parameters: `slot` says where a name goes (`None`: ignored).
pub trait QuerySlots: Default {
    fn slot(&mut self, name: &str) -> Option<&mut Option<String>>;

    /// Reads `query` (the part after `?`, if any).
    fn parse(query: Option<&str>) -> Result<Self, Reject> {
        let mut q = Self::default();
        // memchr scans: `split('&')` and `split_once('=')` set up a searcher per call,
        // which on a six-parameter push query cost more than the decoding, and a byte
        // loop over 40-character signatures cost a third of the parse.
        let position = |s: &str, b: u8| memchr::memchr(b, s.as_bytes());
        let mut rest = query.unwrap_or("");
        while !rest.is_empty() {
            let pair = match position(rest, b'&') {
                Some(i) => {
                    let pair = &rest[..i];
                    rest = &rest[i + 1..];
                    pair
                }
                None => std::mem::take(&mut rest),
            };
            let (name, value) = match position(pair, b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, ""),
            };
            let name = decode(name);
            if let Some(slot) = q.slot(&name) {
                if slot.is_some() {
                    return Err(Reject::new(
                        StatusCode::BAD_REQUEST,
                        format!("Parameter Error: {name} is given more than once"),
                    ));
                }
                *slot = Some(decode(value).into_owned());
            }
        }
        Ok(q)
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte, a `%`
/// without two hex digits stays as it is, and bytes that are not UTF-8 become U+FFFD
/// (as `form_urlencoded` does). Borrowed when there is nothing to decode, which is
/// nearly always: WeChat's parameters are digits, hex and letters.
pub fn decode(raw: &str) -> Cow<'_, str> {
    if memchr::memchr2(b'%', b'+', raw.as_bytes()).is_none() {
        return Cow::Borrowed(raw);
    }
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// Declares a struct of optional string parameters, read by [`QuerySlots`], usable as an
/// axum extractor (a refusal is the `/wx` error envelope).
macro_rules! query_struct {
    ($(#[$meta:meta])* pub struct $name:ident { $($field:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        pub struct $name {
            $(pub $field: Option<String>,)+
        }

        impl $crate::web::query::QuerySlots for $name {
            fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
                match name {
                    $(stringify!($field) => Some(&mut self.$field),)+
                    _ => None,
                }
            }
        }

        impl<S: Send + Sync> axum::extract::FromRequestParts<S> for $name {
            type Rejection = $crate::web::envelope::Reject;

            async fn from_request_parts(
                parts: &mut axum::http::request::Parts,
                _: &S,
            ) -> Result<Self, Self::Rejection> {
                <Self as $crate::web::query::QuerySlots>::parse(parts.uri.query())
            }
        }
    };
}
pub(crate) use query_struct;

#[cfg(test)]
mod tests {
    use super::*;

    query_struct! {
        pub struct Sample { url, callback }
    }

    #[test]
    fn reads_known_names_and_decodes() {
        let q = Sample::parse(Some(
            "url=http%3A%2F%2Fa.example%2Fp%3Fx%3D1&other=1&callback=cb",
        ))
        .unwrap();
        assert_eq!(q.url.as_deref(), Some("http://a.example/p?x=1"));
        assert_eq!(q.callback.as_deref(), Some("cb"));
    }

    #[test]
    fn absent_and_empty() {
        let q = Sample::parse(None).unwrap();
        assert!(q.url.is_none());
        let q = Sample::parse(Some("url=")).unwrap();
        assert_eq!(q.url.as_deref(), Some(""));
    }

    #[test]
    fn decodes_as_form_urlencoded_does() {
        for raw in [
            "plain",
            "a+b",
            "%E4%B8%AD%e6%96%87",
            "100%",
            "%zz%4",
            "%FF%FE",
            "%2B+%25",
            "",
        ] {
            let ours = decode(raw);
            let theirs: String = url::form_urlencoded::parse(format!("x={raw}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            assert_eq!(ours, theirs, "{raw}");
        }
        assert!(matches!(decode("abc123"), Cow::Borrowed(_)));
    }

    proptest::proptest! {
        #[test]
        fn decodes_any_value_as_form_urlencoded_does(raw in "[a-zA-Z0-9%+._~ -]{0,40}") {
            let theirs: String = url::form_urlencoded::parse(format!("x={raw}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            proptest::prop_assert_eq!(decode(&raw), theirs);
        }

        #[test]
        fn reads_any_query_as_form_urlencoded_does(raw in "(url|callback|x|u%72l|&|=|[a-c%+0-9]){0,24}") {
            let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect();
            let of = |name: &str| pairs.iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone()).collect::<Vec<_>>();
            let (urls, callbacks) = (of("url"), of("callback"));
            match Sample::parse(Some(&raw)) {
                Ok(q) => {
                    proptest::prop_assert!(urls.len() <= 1 && callbacks.len() <= 1);
                    proptest::prop_assert_eq!(q.url, urls.first().cloned());
                    proptest::prop_assert_eq!(q.callback, callbacks.first().cloned());
                }
                Err(_) => proptest::prop_assert!(urls.len() > 1 || callbacks.len() > 1),
            }
        }
    }

    #[test]
    fn a_name_given_twice_is_refused() {
        let e = Sample::parse(Some("url=a&url=b")).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.msg.contains("url"), "{}", e.msg);
        // Unknown names may repeat: they are not read.
        assert!(Sample::parse(Some("x=1&x=2")).is_ok());
    }
}
