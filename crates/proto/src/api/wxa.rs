//! Mini Program server APIs (`/wxa/...`) with the app's access_token.

use serde::{Deserialize, Serialize};

use super::{Endpoint, Method};

/// `POST /wxa/business/getuserphonenumber?access_token= {"code"}`: the phone number
/// behind the code of `<button open-type="getPhoneNumber">` (not `wx.login`'s code).
/// A code works once, for 5 minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetUserPhoneNumber {
    pub code: String,
}

impl Endpoint for GetUserPhoneNumber {
    const PATH: &'static str = "/wxa/business/getuserphonenumber";
    const METHOD: Method = Method::Post;
    const NEEDS_ACCESS_TOKEN: bool = true;
    type Answer = PhoneNumber;
}

/// `{"errcode":0,"errmsg":"ok","phone_info":{...}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneNumber {
    pub phone_info: PhoneInfo,
}

/// The number with and without its country code, and whose app it was given to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneInfo {
    pub phone_number: String,
    pub pure_phone_number: String,
    /// A number in WeChat's answer (86), kept as it came.
    pub country_code: serde_json::Value,
    pub watermark: Watermark,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    pub timestamp: i64,
    pub appid: String,
}
