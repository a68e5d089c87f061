//! `/sns/...`: web authorization (网页授权: the code exchange, the refresh of a user's
//! token, userinfo, token check) and the Mini Program's code exchange
//! (`jscode2session`).

use serde::{Deserialize, Serialize};

use super::{non_empty, two_hours, Ack};

/// The page a browser is sent to for web authorization, on WeChat's open host
/// (`open.weixin.qq.com`), not its API host: `?appid=&redirect_uri=&response_type=code
/// &scope=&state=#wechat_redirect`. WeChat answers it with its consent page and then a
/// redirect carrying `code` and `state`.
pub const AUTHORIZE_PAGE: &str = "/connect/oauth2/authorize";

/// `GET /sns/oauth2/access_token?appid=&secret=&code=&grant_type=authorization_code`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OauthAccessToken {
    pub appid: String,
    pub secret: String,
    pub code: String,
    pub grant_type: String,
}

impl OauthAccessToken {
    pub fn new(appid: &str, secret: &str, code: &str) -> Self {
        OauthAccessToken {
            appid: appid.into(),
            secret: secret.into(),
            code: code.into(),
            grant_type: "authorization_code".into(),
        }
    }
}

/// `GET /sns/oauth2/refresh_token?appid=&grant_type=refresh_token&refresh_token=`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OauthRefreshToken {
    pub appid: String,
    pub grant_type: String,
    pub refresh_token: String,
}

impl OauthRefreshToken {
    pub fn new(appid: &str, refresh_token: &str) -> Self {
        OauthRefreshToken {
            appid: appid.into(),
            grant_type: "refresh_token".into(),
            refresh_token: refresh_token.into(),
        }
    }
}

/// The answer of a code exchange or a refresh: the user's own access_token (not the
/// app's) and what it is good for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserToken {
    #[serde(deserialize_with = "non_empty")]
    pub access_token: String,
    #[serde(default = "two_hours")]
    pub expires_in: i64,
    pub refresh_token: String,
    #[serde(deserialize_with = "non_empty")]
    pub openid: String,
    /// Comma-separated: `snsapi_base`, `snsapi_userinfo`.
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
}

/// `GET /sns/userinfo?access_token=&openid=&lang=` with the user's token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserInfoRequest {
    pub access_token: String,
    pub openid: String,
    pub lang: String,
}

/// A user's profile, passed on to pages as WeChat sent it: the documented fields, and
/// any other WeChat adds, kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserInfo {
    #[serde(deserialize_with = "non_empty")]
    pub openid: String,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// `GET /sns/auth?access_token=&openid=`: whether a user's token is still valid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckUserToken {
    pub access_token: String,
    pub openid: String,
}

/// `GET /sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsCode2Session {
    pub appid: String,
    pub secret: String,
    pub js_code: String,
    pub grant_type: String,
}

impl JsCode2Session {
    pub fn new(appid: &str, secret: &str, js_code: &str) -> Self {
        JsCode2Session {
            appid: appid.into(),
            secret: secret.into(),
            js_code: js_code.into(),
            grant_type: "authorization_code".into(),
        }
    }
}

/// A Mini Program login: who the user is and the session_key of their open data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MiniProgramSession {
    #[serde(deserialize_with = "non_empty")]
    pub openid: String,
    #[serde(deserialize_with = "non_empty")]
    pub session_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
}

super::endpoints! {
    OauthAccessToken: Get "/sns/oauth2/access_token", WithoutAccessToken -> UserToken, names appid;
    OauthRefreshToken: Get "/sns/oauth2/refresh_token", WithoutAccessToken -> UserToken, names appid;
    UserInfoRequest: Get "/sns/userinfo", WithoutAccessToken -> UserInfo;
    CheckUserToken: Get "/sns/auth", WithoutAccessToken -> Ack;
    JsCode2Session: Get "/sns/jscode2session", WithoutAccessToken -> MiniProgramSession, names appid;
}
