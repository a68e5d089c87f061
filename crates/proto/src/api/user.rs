//! 用户管理: the account's followers, a page of openids at a time (10,000 a page, the
//! next page from `next_openid`), and their profiles, 100 a batch.

use serde::{Deserialize, Serialize};

/// `GET /cgi-bin/user/get?access_token=&next_openid=`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GetFollowers {
    /// Empty for the first page.
    pub next_openid: String,
}

/// A page of followers: `data.openid` is absent on the page after the last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Followers {
    pub total: u64,
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BatchGetUserInfo {
    pub user_list: Vec<UserRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserRef {
    pub openid: String,
    pub lang: String,
}

/// The profiles, in the order asked, as WeChat sent them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserInfoList {
    pub user_info_list: Vec<serde_json::Value>,
}

/// `GET /cgi-bin/user/info?access_token=&openid=&lang=`: one follower's profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GetUserInfo {
    pub openid: String,
    pub lang: String,
}

super::proxied! {
    /// `GET /cgi-bin/tags/get?access_token=`
    GetTags;
    /// `POST /cgi-bin/tags/create?access_token= {tag: {name}}`
    CreateTag;
    /// `POST /cgi-bin/tags/members/batchtagging?access_token= {openid_list, tagid}`
    BatchTagging;
}

super::endpoints! {
    GetFollowers: Get "/cgi-bin/user/get", WithAccessToken -> Followers;
    BatchGetUserInfo: Post "/cgi-bin/user/info/batchget", WithAccessToken -> UserInfoList;
    GetUserInfo: Get "/cgi-bin/user/info", WithAccessToken -> serde_json::Value;
    GetTags: Get "/cgi-bin/tags/get", WithAccessToken -> serde_json::Value;
    CreateTag: Post "/cgi-bin/tags/create", WithAccessToken -> serde_json::Value;
    BatchTagging: Post "/cgi-bin/tags/members/batchtagging", WithAccessToken -> super::Ack;
}
