//! 用户管理: the account's followers, a page of openids at a time (10,000 a page, the
//! next page from `next_openid`), and their profiles, 100 a batch.

use serde::{Deserialize, Serialize};

use super::{Endpoint, Method};

/// `GET /cgi-bin/user/get?access_token=&next_openid=`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetFollowers {
    /// Empty for the first page.
    pub next_openid: String,
}

impl Endpoint for GetFollowers {
    const PATH: &'static str = "/cgi-bin/user/get";
    const METHOD: Method = Method::Get;
    const NEEDS_ACCESS_TOKEN: bool = true;
    type Answer = Followers;
}

/// A page of followers: `data.openid` is absent on the page after the last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Followers {
    pub total: u64,
    pub count: u64,
    #[serde(default)]
    pub data: Option<OpenIds>,
    #[serde(default)]
    pub next_openid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenIds {
    pub openid: Vec<String>,
}

/// The most users one `user/info/batchget` takes.
pub const BATCH_MAX: usize = 100;

/// `POST /cgi-bin/user/info/batchget?access_token= {"user_list": [{openid, lang}]}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchGetUserInfo {
    pub user_list: Vec<UserRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    pub openid: String,
    pub lang: String,
}

impl Endpoint for BatchGetUserInfo {
    const PATH: &'static str = "/cgi-bin/user/info/batchget";
    const METHOD: Method = Method::Post;
    const NEEDS_ACCESS_TOKEN: bool = true;
    type Answer = UserInfoList;
}

/// The profiles, in the order asked, as WeChat sent them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserInfoList {
    pub user_info_list: Vec<serde_json::Value>,
}
