//! WeChat's server API as types: for every endpoint wxgate calls, where it is, how it is
//! called and what it answers. The gateway sends these requests and reads these answers;
//! the sandbox reads the same requests and writes the same answers, so the two sides
//! cannot drift.
//!
//! One module per WeChat API family, as WeChat's documentation groups them:
//! [`token`] (access_token), [`ticket`] (JS-SDK tickets), [`sns`] (web authorization and
//! the Mini Program's code exchange), [`message`] (customer-service messages),
//! [`openapi`] (quota, the API hosts' IPs), [`user`], [`menu`], [`qrcode`], [`media`],
//! [`wxa`] (Mini Program), [`component`] (the open platform). Adding an endpoint is its
//! request and answer types and one line in its family's [`endpoints!`] list; the
//! gateway's client, the sandbox's routes and the metric labels all read that line.
//!
//! An answer is read with [`read_answer`]: a non-zero `errcode` becomes a typed
//! [`ApiError::WeChat`], anything else is parsed into the answer type.

pub mod component;
pub mod media;
pub mod menu;
pub mod message;
pub mod on_behalf;
pub mod openapi;
pub mod qrcode;
pub mod sns;
pub mod ticket;
pub mod token;
pub mod user;
pub mod wxa;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ErrCode;

/// The families, in WeChat's documentation order; [`known_path`] reads their lists.
const FAMILIES: &[&[&str]] = &[
    token::ENDPOINTS,
    openapi::ENDPOINTS,
    ticket::ENDPOINTS,
    user::ENDPOINTS,
    message::ENDPOINTS,
    menu::ENDPOINTS,
    qrcode::ENDPOINTS,
    media::ENDPOINTS,
    sns::ENDPOINTS,
    wxa::ENDPOINTS,
    component::ENDPOINTS,
    on_behalf::ENDPOINTS,
];

/// The path of every endpoint declared here (typed or proxied), as `'static` text: the
/// gateway labels its upstream metrics with it (anything else is `other`), so a caller
/// cannot grow the metrics with made-up paths.
pub fn known_path(path: &str) -> Option<&'static str> {
    FAMILIES
        .iter()
        .flat_map(|family| family.iter())
        .find(|known| **known == path)
        .copied()
}

/// Every declared path, family by family.
pub fn known_paths() -> impl Iterator<Item = &'static str> {
    FAMILIES.iter().flat_map(|family| family.iter().copied())
}

/// The path prefixes of WeChat's API host whose calls take the app's access_token (the
/// WeChat-compatible API forwards them). `/sns/` is not one: its calls take a user's.
pub const APP_TOKEN_PREFIXES: &[&str] = &["/cgi-bin", "/wxa", "/datacube", "/card"];

/// The path prefixes whose calls take a user's token (web authorization's
/// `access_token`), never the app's: a proxy must not put the app's token on them, and
/// a token error in their answer says nothing about the app's token.
pub const USER_TOKEN_PREFIXES: &[&str] = &["/sns"];

/// Whether `path` is under one of `prefixes` (a whole segment: `/sns` and `/sns/...`,
/// not `/snsx`).
pub fn under_prefix(path: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// How an endpoint is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The request's fields are the query.
    Get,
    /// The request's fields are the JSON body (the access_token, if any, in the query).
    Post,
}

/// One WeChat endpoint: the request type is the query (GET) or the JSON body (POST).
///
/// Declared with [`endpoints!`] in its family's module, which also lists its path for
/// [`known_path`] and marks it [`WithAccessToken`] or [`WithoutAccessToken`]. The
/// request's fields default when absent, so the sandbox reads a request missing one and
/// answers WeChat's errcode for it, as WeChat does.
pub trait Endpoint: Serialize + DeserializeOwned {
    /// The path under WeChat's API host, for example `/cgi-bin/token`.
    const PATH: &'static str;
    const METHOD: Method;
    /// What a successful call answers.
    type Answer: DeserializeOwned + Serialize;

    /// The appid the request names, for the calls that name one (made with an
    /// AppSecret, a code or a component's token); an access_token call names its app
    /// through the token.
    fn appid(&self) -> &str {
        ""
    }
}

/// An endpoint called with the app's `access_token` (接口调用凭据) in its query. The
/// gateway's token-spending calls take only these, so a call that needs the app's
/// token cannot be sent without it, nor one that must not carry it be sent with it.
pub trait WithAccessToken: Endpoint {}

/// An endpoint that carries its own credentials (an AppSecret, a code, a user's token)
/// and never the app's access_token.
pub trait WithoutAccessToken: Endpoint {}

/// An endpoint of the open platform called with the component's token
/// (`component_access_token`) in its query.
pub trait WithComponentAccessToken: Endpoint {}

/// Declares a family's endpoints: for each request type, its method, path, whether it
/// carries the app's access_token, its answer and the field naming its appid (if any); and the family's `ENDPOINTS` list that
/// [`known_path`] reads. One line per endpoint, so a path is written once.
macro_rules! endpoints {
    ($( $req:ident: $method:ident $path:literal, $token:ident -> $answer:ty $(, names $appid:ident)?; )*) => {
        $(
            impl $crate::api::Endpoint for $req {
                const PATH: &'static str = $path;
                const METHOD: $crate::api::Method = $crate::api::Method::$method;
                type Answer = $answer;
                // The appid a call is counted under: the component's for the calls a
                // platform makes for a merchant, whose own `appid` field is the merchant's.
                $(#[allow(clippy::misnamed_getters)]
                fn appid(&self) -> &str {
                    &self.$appid
                })?
            }
            impl $crate::api::$token for $req {}
        )*
        /// This family's paths, for [`crate::api::known_path`].
        pub const ENDPOINTS: &[&str] = &[$($path),*];
    };
}
pub(crate) use endpoints;

/// Declares endpoints the gateway only proxies: the request is its JSON (or query) as
/// the caller wrote it and the answer is WeChat's JSON, unread.
macro_rules! proxied {
    ($( $(#[$doc:meta])* $req:ident; )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
            #[serde(transparent)]
            pub struct $req(pub serde_json::Value);
        )*
    };
}
pub(crate) use proxied;

/// WeChat's `{"errcode": 0, "errmsg": "ok"}`, the whole answer of calls that only say
/// whether they worked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    #[serde(default)]
    pub errcode: i64,
    #[serde(default)]
    pub errmsg: String,
}

impl Ack {
    pub fn ok() -> Self {
        Ack {
            errcode: 0,
            errmsg: "ok".into(),
        }
    }
}

/// Why an answer is not the endpoint's success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{code} ({errmsg})")]
    WeChat { code: ErrCode, errmsg: String },
    #[error("the answer is not JSON")]
    NotJson,
    #[error("the answer lacks what the endpoint promises: {0}")]
    Shape(String),
}

/// Reads an endpoint's answer: `{errcode != 0, errmsg}` is [`ApiError::WeChat`].
pub fn read_answer<A: DeserializeOwned>(body: &[u8]) -> Result<A, ApiError> {
    #[derive(Deserialize)]
    struct Status {
        #[serde(default)]
        errcode: i64,
        #[serde(default)]
        errmsg: String,
    }
    let status: Status = serde_json::from_slice(body).map_err(|_| ApiError::NotJson)?;
    if status.errcode != 0 {
        return Err(ApiError::WeChat {
            code: ErrCode::from_code(status.errcode),
            errmsg: status.errmsg,
        });
    }
    serde_json::from_slice(body).map_err(|e| ApiError::Shape(e.to_string()))
}

/// The errcode of an answer, when it has a non-zero one (for answers that are files on
/// success, such as a Mini Program code).
pub fn errcode_of(body: &[u8]) -> Option<ErrCode> {
    match read_answer::<serde::de::IgnoredAny>(body) {
        Err(ApiError::WeChat { code, .. }) => Some(code),
        _ => None,
    }
}

/// A field WeChat sends as a string, never empty in a valid answer.
pub(crate) fn non_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Err(serde::de::Error::custom("empty"));
    }
    Ok(s)
}

/// WeChat's default lifetime of a token or ticket when an answer omits it.
pub(crate) fn two_hours() -> i64 {
    7200
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_path_is_known_once() {
        let all: Vec<_> = known_paths().collect();
        for path in &all {
            assert_eq!(all.iter().filter(|p| *p == path).count(), 1, "{path}");
            assert_eq!(known_path(path), Some(*path));
            assert!(path.starts_with('/') && !path.ends_with('/'), "{path}");
        }
        assert_eq!(
            known_path(token::ClassicToken::PATH),
            Some("/cgi-bin/token")
        );
        assert_eq!(known_path("/cgi-bin/made-up"), None);
        assert!(all.len() >= 48, "{}", all.len());
    }

    #[test]
    fn errcodes_become_typed_errors() {
        let e = read_answer::<token::AccessToken>(br#"{"errcode":40013,"errmsg":"invalid appid"}"#)
            .unwrap_err();
        assert_eq!(
            e,
            ApiError::WeChat {
                code: ErrCode::InvalidAppId,
                errmsg: "invalid appid".into()
            }
        );
        assert_eq!(read_answer::<Ack>(b"<html>"), Err(ApiError::NotJson));
        assert!(matches!(
            read_answer::<token::AccessToken>(br#"{"access_token":"","expires_in":7200}"#),
            Err(ApiError::Shape(_))
        ));
        let ok: Ack = read_answer(br#"{"errcode":0,"errmsg":"ok"}"#).unwrap();
        assert_eq!(ok, Ack::ok());
        assert_eq!(errcode_of(b"\x89PNG"), None);
        assert_eq!(
            errcode_of(br#"{"errcode":40169,"errmsg":"x"}"#),
            Some(ErrCode::InvalidScene)
        );
    }
}
