//! openApi 管理: the account's API quota, with the app's access_token.

use serde::{Deserialize, Serialize};

use super::Ack;

/// `POST /cgi-bin/clear_quota?access_token= {appid}`: resets the day's API call counts
/// (10 times a month).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClearQuota {
    pub appid: String,
}

/// `GET /cgi-bin/get_api_domain_ip?access_token=`: the IPs of WeChat's API hosts. The
/// cheapest call that needs a valid access_token, so it tells whether one still is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GetApiDomainIp {}

/// `{"ip_list": ["101.89.47.18", ...]}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiDomainIp {
    pub ip_list: Vec<String>,
}

super::proxied! {
    /// `POST /cgi-bin/callback/check?access_token= {action, check_operator}`: 网络检测.
    CallbackCheck;
    /// `POST /cgi-bin/openapi/quota/get?access_token= {cgi_path}`: an API's daily quota.
    GetQuota;
    /// `POST /cgi-bin/openapi/rid/get?access_token= {rid}`: what a failed call's rid was.
    GetRid;
}

super::endpoints! {
    ClearQuota: Post "/cgi-bin/clear_quota", WithAccessToken -> Ack;
    GetApiDomainIp: Get "/cgi-bin/get_api_domain_ip", WithAccessToken -> ApiDomainIp;
    CallbackCheck: Post "/cgi-bin/callback/check", WithAccessToken -> serde_json::Value;
    GetQuota: Post "/cgi-bin/openapi/quota/get", WithAccessToken -> serde_json::Value;
    GetRid: Post "/cgi-bin/openapi/rid/get", WithAccessToken -> serde_json::Value;
}
