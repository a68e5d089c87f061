//! The features' sections: `[service]` (pushes), `[auth]` (web authorization),
//! `[miniprogram]`, `[demo]`, and an account's reply rules and webhook.

use serde::Deserialize;

use super::Secret;

/// The push endpoint `/wx/service`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// A push whose timestamp is further than this from now (seconds) is refused.
    pub replay_window: i64,
    /// Bodies over this many bytes are refused (413).
    pub max_body_bytes: usize,
    /// How long the first answer to a push is kept for WeChat's retries (seconds).
    pub dedup_ttl: i64,
    /// WeChat gives up after 5 s: answer by then, with `success` if nothing is ready.
    pub deadline_ms: u64,
    /// Pushes remembered at most (each for `replay_window`: its nonce and its dedup
    /// answer); past it new pushes get 503, which WeChat retries. 0: no ceiling.
    pub max_remembered_pushes: u64,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            replay_window: 300,
            max_body_bytes: wxgate_proto::xml::DEFAULT_LIMIT,
            dedup_ttl: 60,
            deadline_ms: 4500,
            max_remembered_pushes: 2_000_000,
        }
    }
}

/// Web authorization (`/wx/auth`) and the remembered-user cookie.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The HMAC key of OAuth `state` values and of the cookie. Without it `/wx/auth` is
    /// off. Every instance of a fleet needs the same one.
    pub secret: Option<Secret>,
    /// How long a user is remembered (and their user token kept), seconds: 7 days.
    pub user_ttl: i64,
    /// How long an OAuth `state` is accepted, seconds.
    pub state_ttl: i64,
    /// The sweep refreshes user tokens that expire within this many seconds.
    pub refresh_ahead: i64,
    pub sweep_interval_ms: u64,
    /// A reloaded callback page replays its code: the first result is kept this long.
    pub code_cache_ttl: i64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            secret: None,
            user_ttl: 7 * 86400,
            state_ttl: 600,
            refresh_ahead: 480,
            sweep_interval_ms: 60_000,
            code_cache_ttl: 300,
        }
    }
}

/// Mini Program login sessions (`/wx/mp/...`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MiniProgramConfig {
    /// A session lives this long after its last use (seconds): 7 days.
    pub session_ttl: i64,
}

impl Default for MiniProgramConfig {
    fn default() -> Self {
        MiniProgramConfig {
            session_ttl: 7 * 86400,
        }
    }
}

/// The demo pages under `/demo/` (`wxgate demo` turns them on).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    #[serde(default)]
    pub enabled: bool,
    /// The sandbox whose JS-SDK check the demo page asks (defaults to upstream.open_base).
    #[serde(default)]
    pub sandbox_url: Option<String>,
    /// The sandbox's Mini Program user the Mini Program page logs in as.
    #[serde(default)]
    pub mini_openid: Option<String>,
}

/// A reply rule: every condition given must hold; the first matching rule answers.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// `MsgType`: text, image, voice, ..., event.
    #[serde(default)]
    pub msg_type: Option<String>,
    /// `Event` (case-insensitive): subscribe, CLICK, ...
    #[serde(default)]
    pub event: Option<String>,
    /// `EventKey` exactly.
    #[serde(default)]
    pub event_key: Option<String>,
    /// The text content equals this (surrounding spaces ignored).
    #[serde(default)]
    pub keyword: Option<String>,
    /// The text content contains this.
    #[serde(default)]
    pub contains: Option<String>,
    /// The text content matches this regular expression.
    #[serde(default)]
    pub regex: Option<String>,
    /// The reply; in text, `{openid}` is the sender and `{content}` what they sent.
    pub reply: wxgate_proto::Reply,
}

/// The business's webhook for messages no rule answered.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// The HMAC-SHA256 key of `X-Wxgate-Signature`.
    pub secret: Secret,
    /// How long a late answer is still awaited, to be sent as a customer-service message.
    #[serde(default = "default_webhook_timeout")]
    pub timeout_ms: u64,
    /// Deliver a reply that missed WeChat's deadline through the customer-service API.
    #[serde(default = "default_true")]
    pub late_reply: bool,
    /// The largest answer read from the webhook (bytes); a larger one is refused and
    /// logged, and the push answered `success`. A reply WeChat takes is a few KiB.
    #[serde(default = "default_webhook_max_answer")]
    pub max_answer_bytes: usize,
}

fn default_webhook_max_answer() -> usize {
    64 << 10
}

fn default_webhook_timeout() -> u64 {
    30_000
}

fn default_true() -> bool {
    true
}

impl AuthConfig {
    pub(super) fn problems(&self, p: &mut Vec<String>) {
        if let Some(secret) = &self.secret {
            if secret.expose().len() < 16 {
                p.push("auth.secret needs at least 16 characters".into());
            }
        }
    }
}

impl RuleConfig {
    pub(super) fn problems(&self, at: &str, p: &mut Vec<String>) {
        if let Some(re) = &self.regex {
            if let Err(e) = regex::Regex::new(re) {
                p.push(format!("{at}.regex: {e}"));
            }
        }
        if let Err(e) = self.reply.validate() {
            p.push(format!("{at}.reply: {e}"));
        }
    }
}

impl WebhookConfig {
    pub(super) fn problems(&self, at: &str, p: &mut Vec<String>) {
        match url::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => p.push(format!(
                "{at}.webhook.url: {:?} is not an absolute http(s) URL",
                self.url
            )),
        }
        if self.secret.is_empty() {
            p.push(format!("{at}.webhook.secret is missing"));
        }
    }
}
