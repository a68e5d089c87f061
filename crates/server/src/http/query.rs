//! The query strings of the hot routes (`/wx/service`, `/wx/config`), read into a struct
//! of named slots without serde.
//!
//! axum's `Query` goes through serde_urlencoded and serde_path_to_error, which cost a
//! quarter of a `/wx/config` answer in instructions. These routes read a handful of known
//! names, so a loop over `form_urlencoded::parse` (which decodes only what needs it) does
//! the same job. A name given twice is refused, as the derived deserializer did: one
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
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if let Some(slot) = q.slot(&name) {
                if slot.is_some() {
                    return Err(Reject::new(
                        StatusCode::BAD_REQUEST,
                        format!("Parameter Error: {name} is given more than once"),
                    ));
                }
                *slot = Some(Cow::into_owned(value));
            }
        }
        Ok(q)
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

        impl $crate::http::query::QuerySlots for $name {
            fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
                match name {
                    $(stringify!($field) => Some(&mut self.$field),)+
                    _ => None,
                }
            }
        }

        impl<S: Send + Sync> axum::extract::FromRequestParts<S> for $name {
            type Rejection = $crate::http::envelope::Reject;

            async fn from_request_parts(
                parts: &mut axum::http::request::Parts,
                _: &S,
            ) -> Result<Self, Self::Rejection> {
                <Self as $crate::http::query::QuerySlots>::parse(parts.uri.query())
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
    fn a_name_given_twice_is_refused() {
        let e = Sample::parse(Some("url=a&url=b")).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.msg.contains("url"), "{}", e.msg);
        // Unknown names may repeat: they are not read.
        assert!(Sample::parse(Some("x=1&x=2")).is_ok());
    }
}
