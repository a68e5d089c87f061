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
