//! Mini Program server APIs (`/wxa/...`) with the app's access_token.

use serde::{Deserialize, Serialize};

/// `POST /wxa/business/getuserphonenumber?access_token= {"code"}`: the phone number
/// behind the code of `<button open-type="getPhoneNumber">` (not `wx.login`'s code).
/// A code works once, for 5 minutes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GetUserPhoneNumber {
    pub code: String,
}

/// `{"errcode":0,"errmsg":"ok","phone_info":{...}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneNumber {
    #[serde(default)]
    pub errcode: i64,
    #[serde(default)]
    pub errmsg: String,
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

/// `GET /wxa/checksession?access_token=&openid=&signature=&sig_method=hmac_sha256`:
/// whether WeChat still holds this session_key for the user; `signature` is
/// `session_signature(session_key, b"")`. A stale key answers 87009.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckSession {
    pub openid: String,
    pub signature: String,
    pub sig_method: String,
}

/// `GET /wxa/resetusersessionkey?access_token=&openid=&signature=&sig_method=`: a new
/// session_key for the user, signed with the current one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResetUserSessionKey {
    pub openid: String,
    pub signature: String,
    pub sig_method: String,
}

/// `{"errcode":0,"errmsg":"ok","openid":"...","session_key":"..."}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSessionKey {
    #[serde(default)]
    pub errcode: i64,
    #[serde(default)]
    pub errmsg: String,
    pub openid: String,
    pub session_key: String,
}

/// `POST /wxa/msg_sec_check?access_token= {content, version: 2, scene, openid}`: WeChat's
/// verdict on user text (内容安全, version 2). `scene`: 1 profile, 2 comment, 3 forum,
/// 4 social log. The content is at most 2500 characters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MsgSecCheck {
    pub content: String,
    pub version: u32,
    pub scene: u32,
    pub openid: String,
}

/// The longest text `msg_sec_check` takes, in characters.
pub const MSG_SEC_CHECK_MAX_CHARS: usize = 2500;

/// The verdict: `result.suggest` is `pass`, `review` or `risky`; `label` 100 is normal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecCheckResult {
    #[serde(default)]
    pub errcode: i64,
    #[serde(default)]
    pub errmsg: String,
    pub result: SecVerdict,
    /// Each strategy's verdict, as WeChat lists them.
    #[serde(default)]
    pub detail: Vec<serde_json::Value>,
    #[serde(default)]
    pub trace_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecVerdict {
    pub suggest: String,
    pub label: i64,
}

/// `POST /wxa/getwxacodeunlimit?access_token= {scene, page, width, ...}`: a Mini Program
/// code, permanent, unlimited in number. A success is the image itself (read raw, not
/// as `Answer`); a failure is WeChat's JSON error (40169 for a bad scene).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GetWxaCodeUnlimit(pub serde_json::Value);

/// `POST /wxa/generatescheme?access_token= {jump_wxa: {path, query, env_version}, ...}`:
/// a URL Scheme (`weixin://dl/business/?t=...`) that opens the Mini Program from outside
/// WeChat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GenerateScheme(pub serde_json::Value);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheme {
    #[serde(default)]
    pub errcode: i64,
    #[serde(default)]
    pub errmsg: String,
    pub openlink: String,
}

/// `POST /wxa/generate_urllink?access_token= {path, query, env_version, ...}`: a URL
/// Link (`https://wxaurl.cn/...`) that opens the Mini Program from a browser.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GenerateUrlLink(pub serde_json::Value);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlLink {
    #[serde(default)]
    pub errcode: i64,
    #[serde(default)]
    pub errmsg: String,
    pub url_link: String,
}

super::proxied! {
    /// `POST /wxa/getwxacode?access_token= {path, width, ...}`: a limited Mini Program code
    /// (a PNG; errors as JSON).
    GetWxaCode;
    /// `POST /wxa/genwxashortlink`'s older name `/wxa/generate_shorklink` (WeChat's spelling).
    GenerateShortLink;
    /// `POST /wxa/media_check_async?access_token= {media_url, media_type, version, scene, openid}`
    MediaCheckAsync;
    /// `GET /wxa/getpaidunionid?access_token=&openid=&transaction_id=`
    GetPaidUnionId;
}

super::endpoints! {
    GetUserPhoneNumber: Post "/wxa/business/getuserphonenumber", WithAccessToken -> PhoneNumber;
    CheckSession: Get "/wxa/checksession", WithAccessToken -> super::Ack;
    ResetUserSessionKey: Get "/wxa/resetusersessionkey", WithAccessToken -> NewSessionKey;
    MsgSecCheck: Post "/wxa/msg_sec_check", WithAccessToken -> SecCheckResult;
    GetWxaCodeUnlimit: Post "/wxa/getwxacodeunlimit", WithAccessToken -> super::Ack;
    GenerateScheme: Post "/wxa/generatescheme", WithAccessToken -> Scheme;
    GenerateUrlLink: Post "/wxa/generate_urllink", WithAccessToken -> UrlLink;
    GetWxaCode: Post "/wxa/getwxacode", WithAccessToken -> super::Ack;
    GenerateShortLink: Post "/wxa/generate_shorklink", WithAccessToken -> serde_json::Value;
    MediaCheckAsync: Post "/wxa/media_check_async", WithAccessToken -> serde_json::Value;
    GetPaidUnionId: Get "/wxa/getpaidunionid", WithAccessToken -> serde_json::Value;
}
