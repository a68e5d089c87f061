//! openApi 管理: the account's API quota, with the app's access_token.

use serde::{Deserialize, Serialize};

use super::{Ack, Endpoint, Method};

/// `POST /cgi-bin/clear_quota?access_token= {appid}`: resets the day's API call counts
/// (10 times a month).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearQuota {
    pub appid: String,
}

impl Endpoint for ClearQuota {
    const PATH: &'static str = "/cgi-bin/clear_quota";
    const METHOD: Method = Method::Post;
    const NEEDS_ACCESS_TOKEN: bool = true;
    type Answer = Ack;
}

/// `GET /cgi-bin/get_api_domain_ip?access_token=`: the IPs of WeChat's API hosts. The
/// cheapest call that needs a valid access_token, so it tells whether one still is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetApiDomainIp {}

impl Endpoint for GetApiDomainIp {
    const PATH: &'static str = "/cgi-bin/get_api_domain_ip";
    const METHOD: Method = Method::Get;
    const NEEDS_ACCESS_TOKEN: bool = true;
    type Answer = ApiDomainIp;
}

/// `{"ip_list": ["101.89.47.18", ...]}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiDomainIp {
    pub ip_list: Vec<String>,
}
