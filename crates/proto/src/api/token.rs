//! 获取接口调用凭据: the app's `access_token`, from `/cgi-bin/token` (classic: each
//! fetch replaces the previous token after a 5-minute overlap) or `/cgi-bin/stable_token`
//! (stable: the same token until its last 5 minutes; `force_refresh` replaces it at once,
//! 20 times a day).

use serde::{Deserialize, Serialize};

use super::{non_empty, two_hours};

/// `GET /cgi-bin/token?grant_type=client_credential&appid=&secret=`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClassicToken {
    pub grant_type: String,
    pub appid: String,
    pub secret: String,
}

impl ClassicToken {
    pub fn new(appid: &str, secret: &str) -> Self {
        ClassicToken {
            grant_type: "client_credential".into(),
            appid: appid.into(),
            secret: secret.into(),
        }
    }
}

/// `POST /cgi-bin/stable_token {grant_type, appid, secret, force_refresh}`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StableToken {
    pub grant_type: String,
    pub appid: String,
    pub secret: String,
    #[serde(default)]
    pub force_refresh: bool,
}

impl StableToken {
    pub fn new(appid: &str, secret: &str, force_refresh: bool) -> Self {
        StableToken {
            grant_type: "client_credential".into(),
            appid: appid.into(),
            secret: secret.into(),
            force_refresh,
        }
    }
}

/// Both token endpoints' answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessToken {
    #[serde(deserialize_with = "non_empty")]
    pub access_token: String,
    /// Seconds left.
    #[serde(default = "two_hours")]
    pub expires_in: i64,
}

super::endpoints! {
    ClassicToken: Get "/cgi-bin/token", WithoutAccessToken -> AccessToken, names appid;
    StableToken: Post "/cgi-bin/stable_token", WithoutAccessToken -> AccessToken, names appid;
}
