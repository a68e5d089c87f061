//! 第三方平台 (the open platform): the component's own credentials. The component's
//! token, `component_access_token`, comes from its AppSecret and the
//! `component_verify_ticket` WeChat pushes to the platform every ten minutes; WeChat
//! answers 61005 (ticket expired), 61006 (ticket invalid) and 61004 (caller's IP not
//! whitelisted) here.

use serde::{Deserialize, Serialize};

use super::{non_empty, two_hours};

/// The authorization page a merchant is sent to on a computer (授权链接, PC), on WeChat's
/// `mp.weixin.qq.com`: `?component_appid=&pre_auth_code=&redirect_uri=&auth_type=`.
/// WeChat redirects back to `redirect_uri?auth_code=&expires_in=`.
pub const COMPONENT_LOGIN_PAGE: &str = "/cgi-bin/componentloginpage";

/// The same in WeChat on a phone, on `open.weixin.qq.com`:
/// `?action=bindcomponent&no_scan=1&component_appid=&pre_auth_code=&redirect_uri=&auth_type=#wechat_redirect`.
pub const BIND_COMPONENT_PAGE: &str = "/wxaopen/safe/bindcomponent";

/// `POST /cgi-bin/component/api_component_token {component_appid, component_appsecret,
/// component_verify_ticket}`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComponentToken {
    pub component_appid: String,
    pub component_appsecret: String,
    pub component_verify_ticket: String,
}

/// The component's token and its lifetime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentAccessToken {
    #[serde(deserialize_with = "non_empty")]
    pub component_access_token: String,
    /// Seconds left.
    #[serde(default = "two_hours")]
    pub expires_in: i64,
}

/// `POST /cgi-bin/component/api_start_push_ticket {component_appid, component_secret}`:
/// asks WeChat to push a `component_verify_ticket` now (at a cold start, or when the
/// newest is too old); the ticket arrives at the authorization-event URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StartPushTicket {
    pub component_appid: String,
    pub component_secret: String,
}

/// `POST /cgi-bin/component/api_create_preauthcode?component_access_token= {component_appid}`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreatePreAuthCode {
    pub component_appid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreAuthCode {
    #[serde(deserialize_with = "non_empty")]
    pub pre_auth_code: String,
    #[serde(default = "two_hours")]
    pub expires_in: i64,
}

/// `POST /cgi-bin/component/api_query_auth?component_access_token=
/// {component_appid, authorization_code}`: an authorization code for the authorizer's
/// tokens and granted permission sets. A code works once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueryAuth {
    pub component_appid: String,
    pub authorization_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryAuthAnswer {
    pub authorization_info: AuthorizationInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationInfo {
    #[serde(deserialize_with = "non_empty")]
    pub authorizer_appid: String,
    #[serde(deserialize_with = "non_empty")]
    pub authorizer_access_token: String,
    #[serde(default = "two_hours")]
    pub expires_in: i64,
    #[serde(deserialize_with = "non_empty")]
    pub authorizer_refresh_token: String,
    /// The permission sets granted: `[{"funcscope_category": {"id": 1}}, ...]`.
    #[serde(default)]
    pub func_info: Vec<serde_json::Value>,
}

/// `POST /cgi-bin/component/api_authorizer_token?component_access_token=
/// {component_appid, authorizer_appid, authorizer_refresh_token}`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthorizerToken {
    pub component_appid: String,
    pub authorizer_appid: String,
    pub authorizer_refresh_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizerAccessToken {
    #[serde(deserialize_with = "non_empty")]
    pub authorizer_access_token: String,
    #[serde(default = "two_hours")]
    pub expires_in: i64,
    /// The refresh token to keep from now on (WeChat may hand back the same one).
    #[serde(deserialize_with = "non_empty")]
    pub authorizer_refresh_token: String,
}

/// `POST /cgi-bin/component/api_get_authorizer_list?component_access_token=
/// {component_appid, offset, count}`: every authorizer with its refresh token (count at
/// most 500), what a lost refresh token is recovered from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GetAuthorizerList {
    pub component_appid: String,
    pub offset: u32,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizerList {
    pub total_count: u64,
    #[serde(default)]
    pub list: Vec<AuthorizerEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizerEntry {
    pub authorizer_appid: String,
    pub refresh_token: String,
    #[serde(default)]
    pub auth_time: i64,
}

super::endpoints! {
    ComponentToken: Post "/cgi-bin/component/api_component_token", WithoutAccessToken -> ComponentAccessToken, names component_appid;
    StartPushTicket: Post "/cgi-bin/component/api_start_push_ticket", WithoutAccessToken -> super::Ack, names component_appid;
    CreatePreAuthCode: Post "/cgi-bin/component/api_create_preauthcode", WithComponentAccessToken -> PreAuthCode, names component_appid;
    QueryAuth: Post "/cgi-bin/component/api_query_auth", WithComponentAccessToken -> QueryAuthAnswer, names component_appid;
    AuthorizerToken: Post "/cgi-bin/component/api_authorizer_token", WithComponentAccessToken -> AuthorizerAccessToken, names component_appid;
    GetAuthorizerList: Post "/cgi-bin/component/api_get_authorizer_list", WithComponentAccessToken -> AuthorizerList, names component_appid;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{read_answer, Endpoint};

    /// The request and answer of WeChat's documentation, verbatim.
    #[test]
    fn reads_and_writes_the_documented_example() {
        let req: ComponentToken = serde_json::from_str(
            r#"{
"component_appid": "appid_value" ,
"component_appsecret": "appsecret_value",
"component_verify_ticket": "ticket_value"
}"#,
        )
        .unwrap();
        assert_eq!(req.appid(), "appid_value");
        assert_eq!(req.component_verify_ticket, "ticket_value");
        let a: ComponentAccessToken = read_answer(
            br#"{
"component_access_token": "61W3mEpU66027wgNZ_MhGHNQDHnFATkDa9-2llqrMBjUwxRSNPbVsMmyD-yq8wZETSoE5NQgecigDrSHkPtIYA",
"expires_in": 7200
}"#,
        )
        .unwrap();
        assert_eq!(a.expires_in, 7200);
        assert!(a.component_access_token.starts_with("61W3mEpU"));
        assert_eq!(
            ComponentToken::PATH,
            "/cgi-bin/component/api_component_token"
        );
    }
}
