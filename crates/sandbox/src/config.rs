//! What the sandbox plays: apps, their test users and WeChat's limits.

use serde::{Deserialize, Serialize};

/// The sandbox's configuration (`sandbox.toml`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// Where `wxgate sandbox` listens; tests use port 0.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Consent pages approve at once, as the first test user (for scripted tests).
    #[serde(default)]
    pub auto_approve: bool,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default, rename = "app")]
    pub apps: Vec<AppConfig>,
    /// WeChat Pay merchants (`[[pay_merchant]]`).
    #[serde(default, rename = "pay_merchant")]
    pub pay_merchants: Vec<PayMerchantConfig>,
}

/// A WeChat Pay merchant of the sandbox. Its keys are the bundled sandbox keys
/// (`crates/sandbox/keys`) unless given.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PayMerchantConfig {
    pub mchid: String,
    /// The APIv3 key (32 characters).
    pub apiv3_key: String,
    /// The serial of the merchant's API certificate, which its requests name.
    #[serde(default = "default_merchant_serial")]
    pub merchant_serial: String,
    /// The merchant's public key (PEM) that verifies its requests.
    #[serde(default)]
    pub merchant_public_key: Option<String>,
    /// What WeChat Pay signs with for this merchant: `certificate` (the platform
    /// certificate) or `public_key` (the WeChat Pay public key); switchable at run time.
    #[serde(default = "default_signer")]
    pub signer: String,
}

fn default_merchant_serial() -> String {
    crate::keys::MERCHANT_SERIAL.into()
}

fn default_signer() -> String {
    "certificate".into()
}

fn default_listen() -> String {
    "127.0.0.1:18341".into()
}

/// WeChat's documented limits, changeable for tests.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Lifetime of access tokens and tickets (7200 s).
    pub token_ttl: i64,
    /// How long a superseded classic token keeps working (5 minutes).
    pub token_overlap: i64,
    /// Classic `/cgi-bin/token` calls a day (2000).
    pub token_daily_quota: u64,
    /// Stable token calls a minute and a day (10,000 and 500,000).
    pub stable_minute_quota: u64,
    pub stable_daily_quota: u64,
    /// Forced stable refreshes a day (20) and the least interval between them (30 s).
    pub stable_force_daily: u64,
    pub stable_force_interval: i64,
    /// `clear_quota` calls a month (10).
    pub clear_quota_monthly: u64,
    /// OAuth code and js_code lifetime (5 minutes).
    pub code_ttl: i64,
    /// OAuth refresh_token lifetime (30 days).
    pub refresh_token_ttl: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            token_ttl: 7200,
            token_overlap: 300,
            token_daily_quota: 2000,
            stable_minute_quota: 10_000,
            stable_daily_quota: 500_000,
            stable_force_daily: 20,
            stable_force_interval: 30,
            clear_quota_monthly: 10,
            code_ttl: 300,
            refresh_token_ttl: 30 * 86400,
        }
    }
}

/// Official Account, Mini Program or third-party platform (component).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AppKind {
    #[default]
    Official,
    /// 小程序; the older name `miniapp` is accepted too.
    #[serde(rename = "miniprogram", alias = "miniapp")]
    MiniProgram,
    /// 第三方平台: an open-platform component, whose token comes from
    /// `api_component_token` with the verify ticket WeChat pushes it.
    Component,
}

/// One app of the platform.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub appid: String,
    pub secret: String,
    #[serde(default)]
    pub kind: AppKind,
    /// The account's original ID (`gh_...`), the `ToUserName` of its pushes.
    #[serde(default = "default_original_id")]
    pub original_id: String,
    /// Push settings, used by the message pusher.
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub encoding_aes_key: Option<String>,
    /// Hosts allowed in an OAuth `redirect_uri` (网页授权域名); empty allows any.
    #[serde(default)]
    pub oauth_domains: Vec<String>,
    /// Hosts allowed for JS-SDK pages (JS接口安全域名); empty allows any.
    #[serde(default)]
    pub js_domains: Vec<String>,
    /// Addresses allowed to call the token endpoints (IP白名单); any when empty. Others
    /// get WeChat's 40164 naming the address it saw.
    #[serde(default)]
    pub ip_whitelist: Vec<String>,
    /// Followers generated beyond the test users, to exercise `user/get` paging.
    #[serde(default)]
    pub extra_followers: usize,
    #[serde(default, rename = "user")]
    pub users: Vec<TestUser>,
}

fn default_original_id() -> String {
    "gh_sandbox".into()
}

/// A WeChat user of the sandbox.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TestUser {
    pub openid: String,
    #[serde(default)]
    pub unionid: Option<String>,
    #[serde(default)]
    pub nickname: String,
    /// 1 male, 2 female, 0 unknown.
    #[serde(default)]
    pub sex: u8,
    #[serde(default)]
    pub province: String,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub country: String,
    #[serde(default)]
    pub headimgurl: String,
    #[serde(default)]
    pub privilege: Vec<String>,
    /// For Mini Program phone-number data.
    #[serde(default)]
    pub phone: Option<String>,
}

impl SandboxConfig {
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// A ready configuration with one Official Account and one Mini Program, each with
    /// two test users: what tests and `wxgate demo` start from.
    pub fn example() -> Self {
        Self::from_toml(include_str!("../sandbox.example.toml")).expect("bundled example parses")
    }
}
