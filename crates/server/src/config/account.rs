//! `[accounts.NAME]`: one Official Account or Mini Program, its secrets, push settings,
//! page allow-lists, rules and webhook.

use serde::{Deserialize, Serialize};

use super::{RuleConfig, Secret, WebhookConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    #[default]
    Official,
    /// 小程序; the older name `miniapp` is accepted too.
    #[serde(rename = "miniprogram", alias = "miniapp")]
    MiniProgram,
}

/// The account's message encryption mode (消息加解密方式): one type for the config, the
/// sandbox's pusher and the push pipeline.
pub use wxgate_proto::MessageMode;

/// Which WeChat API issues the access_token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TokenApi {
    /// `POST /cgi-bin/stable_token`, WeChat's recommendation.
    #[default]
    Stable,
    /// `GET /cgi-bin/token`.
    Classic,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    #[serde(default)]
    pub kind: AccountKind,
    pub appid: String,
    #[serde(default)]
    pub secret: Secret,
    /// The push Token of the server configuration (服务器配置).
    #[serde(default)]
    pub token: Option<Secret>,
    /// The EncodingAESKey of the server configuration: 43 characters.
    #[serde(default)]
    pub encoding_aes_key: Option<Secret>,
    #[serde(default)]
    pub mode: MessageMode,
    /// The push data format (数据格式) set on WeChat's side: `xml` or `json`. Absent, a
    /// push's format is read from its first byte (`<` or `{`), which is unambiguous.
    #[serde(default)]
    pub format: Option<wxgate_proto::PushFormat>,
    #[serde(default)]
    pub token_api: TokenApi,
    /// Kept so that older files load: `mode` alone decides what a push must be, and
    /// `true` here is accepted only beside `mode = "safe"`, which it used to approximate.
    #[serde(default)]
    pub require_encryption: bool,
    /// Page hosts allowed for JS-SDK signatures (the JS接口安全域名); any when empty.
    #[serde(default)]
    pub js_domains: Vec<String>,
    /// Origins allowed to call `/wx/config` with CORS (`https://h5.example.com`).
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// Origins `/wx/auth` may send a user back to (`https://h5.example.com`,
    /// `http://127.0.0.1:8080`); a bare host is that host on its default ports (https,
    /// and http unless public_url is https); public_url's origin when empty.
    #[serde(default)]
    pub auth_dest_hosts: Vec<String>,
    /// The WeChat-compatible `/cgi-bin/token` also accepts this account's real
    /// AppSecret, for SDKs that cannot be given a client secret of `[[compat.clients]]`.
    #[serde(default)]
    pub compat_accepts_app_secret: bool,
    /// Subscribe-message templates named in metrics (`wxgate_subscribe_sent_total`);
    /// any other template is counted as `other`, so callers cannot grow the labels.
    #[serde(default)]
    pub subscribe_templates: Vec<String>,
    /// Reply rules, tried in order before the webhook.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    /// Set (never read from a file) on an authorizer's account, `{component}:{appid}`:
    /// the appid of the third-party platform that acts for it, whose token replaces the
    /// AppSecret in the code exchanges.
    #[serde(skip)]
    pub acting_through: Option<String>,
}

impl AccountConfig {
    /// The account of a merchant a third-party platform acts for: no AppSecret, no push
    /// settings of its own (its pushes reach the component), the platform's page and
    /// redirect origins, and the platform's appid as `acting_through`.
    pub fn for_authorizer(
        appid: &str,
        kind: AccountKind,
        component: &crate::config::ComponentConfig,
    ) -> Self {
        AccountConfig {
            kind,
            appid: appid.to_owned(),
            secret: Default::default(),
            token: None,
            encoding_aes_key: None,
            mode: Default::default(),
            format: None,
            token_api: Default::default(),
            require_encryption: false,
            js_domains: component.js_domains.clone(),
            cors_origins: component.cors_origins.clone(),
            auth_dest_hosts: component.auth_dest_hosts.clone(),
            compat_accepts_app_secret: false,
            subscribe_templates: Vec::new(),
            rules: Vec::new(),
            webhook: None,
            acting_through: Some(component.component_appid.clone()),
        }
    }

    /// The problems of the account `name`; `public_https` when public_url is https.
    pub(super) fn problems(&self, name: &str, public_https: bool, p: &mut Vec<String>) {
        let at = format!("accounts.{name}");
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid_name {
            p.push(format!("{at}: account names use a-z, 0-9, _ and - only"));
        }
        if self.appid.trim().is_empty() {
            p.push(format!("{at}.appid is missing"));
        }
        if self.secret.is_empty() {
            p.push(format!(
                "{at}.secret is missing (a value, or {{ env = \"NAME\" }})"
            ));
        }
        if let Some(key) = &self.encoding_aes_key {
            if let Err(e) = wxgate_proto::EncodingAesKey::parse(key.expose()) {
                p.push(format!(
                    "{at}.encoding_aes_key: {e} (got {} characters)",
                    key.expose().len()
                ));
            }
        }
        if self.mode != MessageMode::Plaintext && self.encoding_aes_key.is_none() {
            p.push(format!("{at}: mode {:?} needs encoding_aes_key", self.mode));
        }
        if self.mode != MessageMode::Plaintext && self.token.is_none() {
            p.push(format!("{at}: mode {:?} needs token", self.mode));
        }
        if self.require_encryption && self.mode != MessageMode::Safe {
            p.push(format!(
                "{at}: require_encryption is replaced by mode = \"safe\" (only encrypted pushes with a valid msg_signature); set mode = \"safe\" and drop require_encryption"
            ));
        }
        p.extend(crate::origin::problems(
            &self.auth_dest_hosts,
            public_https,
            &at,
        ));
        for (i, r) in self.rules.iter().enumerate() {
            r.problems(&format!("{at}.rules[{i}]"), p);
        }
        if let Some(w) = &self.webhook {
            w.problems(&at, p);
        }
    }
}
