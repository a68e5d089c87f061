//! `[components.NAME]`: a third-party platform (第三方平台, "component") whose merchants
//! authorize it to act for their Official Accounts and Mini Programs.

use serde::Deserialize;

use super::{RuleConfig, Secret, WebhookConfig};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    pub component_appid: String,
    pub component_appsecret: Secret,
    /// 消息校验Token, as entered on the open platform.
    pub token: Secret,
    /// 消息加解密Key (43 characters).
    pub encoding_aes_key: Secret,
    /// When the newest `component_verify_ticket` is older than this (seconds), wxgate asks
    /// WeChat for a push (`api_start_push_ticket`, at most once per
    /// `start_push_interval_secs` for the fleet). WeChat pushes one every 10 minutes.
    #[serde(default = "default_ticket_max_age")]
    pub ticket_max_age_secs: i64,
    #[serde(default = "default_start_push_interval")]
    pub start_push_interval_secs: u64,
    /// Where `/wx/component/NAME/authorize?dest=` may send the merchant back to, as
    /// origins (`https://saas.example.com`); without `dest`, wxgate shows its own page.
    /// Also where `/wx/NAME:APPID/auth?dest=` (web authorization for a merchant) may
    /// send its users back to.
    #[serde(default)]
    pub auth_dest_hosts: Vec<String>,
    /// Page hosts the JS-SDK may be signed for on the merchants' behalf
    /// (`/wx/NAME:APPID/config`): the platform's 公众号开发域名 (any when empty).
    #[serde(default)]
    pub js_domains: Vec<String>,
    /// Origins allowed to call `/wx/NAME:APPID/config` with CORS.
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// The authorizers' pushes (消息与事件接收URL `/wx/component/NAME/$APPID$/service`)
    /// go through the same rules and webhook as an account's; the webhook's payload
    /// carries the authorizer's appid and `component:NAME` as the account.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    /// Answer WeChat's release test (全网发布) for its test accounts. On by default.
    #[serde(default = "default_true")]
    pub release_test: bool,
}

fn default_true() -> bool {
    true
}

fn default_ticket_max_age() -> i64 {
    1800
}

fn default_start_push_interval() -> u64 {
    300
}

impl ComponentConfig {
    pub(super) fn problems(&self, name: &str, p: &mut Vec<String>) {
        let at = format!("components.{name}");
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            p.push(format!(
                "{at}: the name is letters, digits, - and _ (it is in the event URL)"
            ));
        }
        if !self.component_appid.starts_with("wx") {
            p.push(format!(
                "{at}.component_appid: a component's appid starts with wx"
            ));
        }
        if self.component_appsecret.is_empty() || self.token.is_empty() {
            p.push(format!("{at}: component_appsecret and token are required"));
        }
        if self.encoding_aes_key.expose().len() != 43 {
            p.push(format!("{at}.encoding_aes_key: 43 characters"));
        }
    }
}
