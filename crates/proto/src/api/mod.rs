//! WeChat's server API as types: for every endpoint wxgate calls, where it is, how it is
//! called and what it answers. The gateway sends these requests and reads these answers;
//! the sandbox reads the same requests and writes the same answers, so the two sides
//! cannot drift.
//!
//! One module per WeChat API family, as WeChat's documentation groups them:
//! [`token`] (access_token), [`ticket`] (JS-SDK tickets), [`sns`] (web authorization and
//! the Mini Program's code exchange), [`message`] (customer-service messages),
//! [`openapi`] (quota, the API hosts' IPs). Adding an endpoint is one request type implementing [`Endpoint`]
//! and its answer type.
//!
//! An answer is read with [`read_answer`]: a non-zero `errcode` becomes a typed
//! [`ApiError::WeChat`], anything else is parsed into the answer type.

pub mod menu;
pub mod message;
pub mod openapi;
pub mod sns;
pub mod ticket;
pub mod token;
pub mod user;
pub mod wxa;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ErrCode;

/// Every WeChat API path wxgate knows by name: the endpoints typed here and the common
/// ones business servers call through the proxy. The gateway labels its upstream
/// metrics with these (anything else is `other`), so a caller cannot grow the metrics
/// with made-up paths.
pub const KNOWN_PATHS: &[&str] = &[
    "/cgi-bin/token",
    "/cgi-bin/stable_token",
    "/cgi-bin/clear_quota",
    "/cgi-bin/ticket/getticket",
    "/cgi-bin/get_api_domain_ip",
    "/cgi-bin/callback/check",
    "/cgi-bin/openapi/quota/get",
    "/cgi-bin/openapi/rid/get",
    "/cgi-bin/user/get",
    "/cgi-bin/user/info",
    "/cgi-bin/user/info/batchget",
    "/cgi-bin/message/custom/send",
    "/cgi-bin/message/custom/typing",
    "/cgi-bin/message/template/send",
    "/cgi-bin/message/subscribe/send",
    "/cgi-bin/message/subscribe/bizsend",
    "/cgi-bin/menu/create",
    "/cgi-bin/menu/get",
    "/cgi-bin/menu/delete",
    "/cgi-bin/get_current_selfmenu_info",
    "/cgi-bin/qrcode/create",
    "/cgi-bin/media/upload",
    "/cgi-bin/media/uploadimg",
    "/cgi-bin/media/get",
    "/cgi-bin/material/add_material",
    "/cgi-bin/material/get_material",
    "/cgi-bin/material/del_material",
    "/cgi-bin/material/batchget_material",
    "/cgi-bin/tags/get",
    "/cgi-bin/tags/create",
    "/cgi-bin/tags/members/batchtagging",
    "/sns/oauth2/access_token",
    "/sns/oauth2/refresh_token",
    "/sns/userinfo",
    "/sns/auth",
    "/sns/jscode2session",
    "/wxa/checksession",
    "/wxa/resetusersessionkey",
    "/wxa/business/getuserphonenumber",
    "/wxa/getwxacodeunlimit",
    "/wxa/getwxacode",
    "/wxa/generatescheme",
    "/wxa/generate_urllink",
    "/wxa/generate_shorklink",
    "/wxa/msg_sec_check",
    "/wxa/media_check_async",
    "/wxa/getpaidunionid",
];

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
pub trait Endpoint: Serialize {
    /// The path under WeChat's API host, for example `/cgi-bin/token`.
    const PATH: &'static str;
    const METHOD: Method;
    /// Whether the call carries the app's `access_token` in its query.
    const NEEDS_ACCESS_TOKEN: bool;
    /// What a successful call answers.
    type Answer: DeserializeOwned + Serialize;
}

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
    fn every_typed_endpoint_is_a_known_path() {
        for path in [
            token::ClassicToken::PATH,
            token::StableToken::PATH,
            ticket::GetTicket::PATH,
            sns::OauthAccessToken::PATH,
            sns::OauthRefreshToken::PATH,
            sns::UserInfoRequest::PATH,
            sns::CheckUserToken::PATH,
            sns::JsCode2Session::PATH,
            message::CustomSend::PATH,
            openapi::ClearQuota::PATH,
            openapi::GetApiDomainIp::PATH,
            menu::CreateMenu::PATH,
            menu::GetMenu::PATH,
            user::GetFollowers::PATH,
            user::BatchGetUserInfo::PATH,
            wxa::GetUserPhoneNumber::PATH,
            wxa::CheckSession::PATH,
            wxa::ResetUserSessionKey::PATH,
            wxa::MsgSecCheck::PATH,
            wxa::GetWxaCodeUnlimit::PATH,
            wxa::GenerateScheme::PATH,
            wxa::GenerateUrlLink::PATH,
            message::SubscribeSend::PATH,
        ] {
            assert!(KNOWN_PATHS.contains(&path), "{path}");
        }
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
