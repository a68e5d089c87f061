//! Configuration: one TOML file, every value overridable by environment variables.
//!
//! `WXGATE_A__B__C=value` sets `a.b.c` (segments lowercased, `__` between them): for
//! example `WXGATE_LISTEN`, `WXGATE_STORE__KIND=redis`,
//! `WXGATE_ACCOUNTS__DEFAULT__SECRET`. A value that reads as an integer or a boolean is
//! one. Secrets may be given as `{ env = "NAME" }` instead of a value, so the file can be
//! committed without them. [`Config::load`] validates everything and says exactly what is
//! wrong; `wxgate check` prints that.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A secret from the file or from an environment variable. Its Debug form is redacted.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// How a secret is written in the file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
enum SecretSource {
    Value(String),
    Env { env: String },
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match SecretSource::deserialize(d)? {
            SecretSource::Value(v) => Ok(Secret(v)),
            SecretSource::Env { env } => std::env::var(&env).map(Secret).map_err(|_| {
                serde::de::Error::custom(format!("environment variable {env} is not set"))
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listen address (the old server's port by default).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The URL WeChat and browsers reach this server at (OAuth redirect_uri, cookies).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Where the embedded store and other files live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub log_format: LogFormat,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub upstream: UpstreamConfig,
    #[serde(default)]
    pub credentials: CredentialsConfig,
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub service: ServiceConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub demo: DemoConfig,
    #[serde(default)]
    pub miniapp: MiniappConfig,
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountConfig>,
}

/// The HTTP server: what one client may hold, and where its address comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// A request's header must arrive within this (also: a keep-alive connection idle
    /// this long is closed).
    pub header_read_timeout_ms: u64,
    /// A request's body must arrive within this, from its header (a 408 otherwise).
    pub body_read_timeout_ms: u64,
    /// Behind a reverse proxy: the header it writes the client's address into
    /// (`x-forwarded-for`, `x-real-ip`), believed only from `trusted_proxies`. Its last
    /// address is taken (the one the trusted proxy appended).
    pub client_ip_header: Option<String>,
    /// The addresses of the reverse proxies whose `client_ip_header` is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 1024,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            client_ip_header: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Limits on the routes that spend a WeChat call for an anonymous caller (`/wx/mp/login`,
/// `/wx/auth/callback`): per client address and per account, so that a script cannot
/// burn the app's WeChat API limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Calls a client address (an IPv6 /64) may make a minute, and its burst.
    pub per_client_per_minute: u32,
    pub per_client_burst: u32,
    /// Calls all clients together may make a minute for one account, and its burst.
    pub per_account_per_minute: u32,
    pub per_account_burst: u32,
    /// Client addresses remembered at most; past that, unknown addresses share the
    /// account's limit only (memory stays bounded whatever addresses an attacker uses).
    pub max_clients: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            per_client_per_minute: 60,
            per_client_burst: 20,
            per_account_per_minute: 3000,
            per_account_burst: 300,
            max_clients: 100_000,
        }
    }
}

/// The push endpoint `/wx/service`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// A push whose timestamp is further than this from now (seconds) is refused.
    pub replay_window: i64,
    /// Bodies over this many bytes are refused (413).
    pub max_body_bytes: usize,
    /// How long the first answer to a push is kept for WeChat's retries (seconds).
    pub dedup_ttl: i64,
    /// WeChat gives up after 5 s: answer by then, with `success` if nothing is ready.
    pub deadline_ms: u64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            replay_window: 300,
            max_body_bytes: wxgate_proto::xml::DEFAULT_LIMIT,
            dedup_ttl: 60,
            deadline_ms: 4500,
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
pub struct MiniappConfig {
    /// A session lives this long after its last use (seconds): 7 days.
    pub session_ttl: i64,
}

impl Default for MiniappConfig {
    fn default() -> Self {
        MiniappConfig {
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
}

/// A reply rule: every condition given must hold; the first matching rule answers.
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Deserialize)]
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
}

fn default_webhook_timeout() -> u64 {
    30_000
}

fn default_true() -> bool {
    true
}

fn default_listen() -> String {
    "127.0.0.1:18340".into()
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    #[default]
    Embedded,
    Redis,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default)]
    pub kind: StoreKind,
    /// For `redis`: `redis://127.0.0.1:6379/0`.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// For `embedded`: the file (default `data_dir/wxgate.redb`).
    #[serde(default)]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// WeChat's API host (`/cgi-bin/...`, `/sns/...`); the sandbox's URL in development.
    pub api_base: String,
    /// WeChat's web authorization host (`/connect/oauth2/authorize`).
    pub open_base: String,
    pub timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Retries after a busy (-1) answer or a transport error.
    pub retries: u32,
    /// The first retry's delay; each next one doubles it.
    pub backoff_ms: u64,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            api_base: "https://api.weixin.qq.com".into(),
            open_base: "https://open.weixin.qq.com".into(),
            timeout_ms: 5000,
            connect_timeout_ms: 2000,
            retries: 2,
            backoff_ms: 200,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CredentialsConfig {
    /// Refresh this many seconds before expiry (stable tokens: at most 280, because
    /// WeChat hands out a new stable token only in the last 5 minutes).
    pub refresh_margin: i64,
    /// How often the background task looks for credentials due for refresh.
    pub check_interval_ms: u64,
    /// How long a refresh lock is held at most, so a crashed holder does not block
    /// refreshes for ever.
    pub lock_lease_ms: u64,
    /// How long a request waits for another instance's refresh before giving up.
    pub wait_timeout_ms: u64,
    /// WeChat's daily quota for token fetches, shown against the daily counter.
    pub daily_quota: i64,
}

impl Default for CredentialsConfig {
    fn default() -> Self {
        CredentialsConfig {
            refresh_margin: 600,
            check_interval_ms: 15_000,
            lock_lease_ms: 30_000,
            wait_timeout_ms: 10_000,
            daily_quota: 2000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Keys of the business's servers for `/api/v1/...` (bearer tokens).
    pub keys: Vec<ApiKeyConfig>,
    /// The largest request body the proxy forwards (read only after the key is
    /// checked). WeChat's largest uploads are 10 MB media files, plus multipart framing.
    pub proxy_max_body_bytes: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            keys: Vec::new(),
            proxy_max_body_bytes: 16 << 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Who holds the key (for logs; never the key itself).
    pub name: String,
    pub key: Secret,
    /// Accounts the key may use; all when empty.
    #[serde(default)]
    pub accounts: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    #[default]
    Official,
    Miniapp,
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

#[derive(Debug, Clone, Deserialize)]
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
    /// Reply rules, tried in order before the webhook.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
}

impl Config {
    /// Reads the file, applies `WXGATE_*` environment overrides, and validates.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
        Self::from_toml_with_env(&text, std::env::vars())
    }

    /// Parses TOML text with the given environment and validates.
    pub fn from_toml_with_env(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config> {
        let mut value: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| Error::Config(e.to_string()))?;
        for (name, v) in env {
            if let Some(path) = name.strip_prefix("WXGATE_") {
                apply_override(&mut value, path, &v)?;
            }
        }
        let config: Config = toml::Value::Table(value)
            .try_into()
            .map_err(|e: toml::de::Error| Error::Config(e.to_string().trim().to_owned()))?;
        config.validate()?;
        Ok(config)
    }

    /// Every check `wxgate check` runs; the first problem found, said precisely.
    pub fn validate(&self) -> Result<()> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Config(problems.join("; ")))
        }
    }

    /// All problems of the configuration.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.accounts.is_empty() {
            p.push("no [accounts.NAME] section: configure at least one account".into());
        }
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            p.push(format!(
                "listen: {:?} is not an address like 127.0.0.1:18340",
                self.listen
            ));
        }
        if let Some(u) = &self.public_url {
            match url::Url::parse(u) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
                _ => p.push(format!("public_url: {u:?} is not an absolute http(s) URL")),
            }
        }
        if self.store.kind == StoreKind::Redis && self.store.redis_url.is_none() {
            p.push("store.redis_url is required when store.kind = \"redis\"".into());
        }
        for (field, base) in [
            ("api_base", &self.upstream.api_base),
            ("open_base", &self.upstream.open_base),
        ] {
            if url::Url::parse(base).is_err() {
                p.push(format!("upstream.{field}: {base:?} is not a URL"));
            }
        }
        for (name, v) in [
            (
                "per_client_per_minute",
                self.rate_limit.per_client_per_minute,
            ),
            ("per_client_burst", self.rate_limit.per_client_burst),
            (
                "per_account_per_minute",
                self.rate_limit.per_account_per_minute,
            ),
            ("per_account_burst", self.rate_limit.per_account_burst),
        ] {
            if v == 0 {
                p.push(format!(
                    "rate_limit.{name} must be at least 1 (set rate_limit.enabled = false to turn the limits off)"
                ));
            }
        }
        if self.server.client_ip_header.is_some() && self.server.trusted_proxies.is_empty() {
            p.push("server.client_ip_header needs server.trusted_proxies: a header from anyone else is anyone's to forge".into());
        }
        if self.credentials.refresh_margin < 60 {
            p.push("credentials.refresh_margin must be at least 60 seconds".into());
        }
        for (name, a) in &self.accounts {
            let at = format!("accounts.{name}");
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            {
                p.push(format!("{at}: account names use a-z, 0-9, _ and - only"));
            }
            if a.appid.trim().is_empty() {
                p.push(format!("{at}.appid is missing"));
            }
            if a.secret.is_empty() {
                p.push(format!(
                    "{at}.secret is missing (a value, or {{ env = \"NAME\" }})"
                ));
            }
            if let Some(key) = &a.encoding_aes_key {
                if let Err(e) = wxgate_proto::EncodingAesKey::parse(key.expose()) {
                    p.push(format!(
                        "{at}.encoding_aes_key: {e} (got {} characters)",
                        key.expose().len()
                    ));
                }
            }
            if a.mode != MessageMode::Plaintext && a.encoding_aes_key.is_none() {
                p.push(format!("{at}: mode {:?} needs encoding_aes_key", a.mode));
            }
            if a.mode != MessageMode::Plaintext && a.token.is_none() {
                p.push(format!("{at}: mode {:?} needs token", a.mode));
            }
            if a.require_encryption && a.mode != MessageMode::Safe {
                p.push(format!(
                    "{at}: require_encryption is replaced by mode = \"safe\" (only encrypted pushes with a valid msg_signature); set mode = \"safe\" and drop require_encryption"
                ));
            }
            let public_https = self
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"));
            p.extend(crate::origin::problems(
                &a.auth_dest_hosts,
                public_https,
                &at,
            ));
            for (i, r) in a.rules.iter().enumerate() {
                if let Some(re) = &r.regex {
                    if let Err(e) = regex::Regex::new(re) {
                        p.push(format!("{at}.rules[{i}].regex: {e}"));
                    }
                }
                if let Err(e) = r.reply.validate() {
                    p.push(format!("{at}.rules[{i}].reply: {e}"));
                }
            }
            if let Some(w) = &a.webhook {
                match url::Url::parse(&w.url) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                    _ => p.push(format!(
                        "{at}.webhook.url: {:?} is not an absolute http(s) URL",
                        w.url
                    )),
                }
                if w.secret.is_empty() {
                    p.push(format!("{at}.webhook.secret is missing"));
                }
            }
        }
        if let Some(secret) = &self.auth.secret {
            if secret.expose().len() < 16 {
                p.push("auth.secret needs at least 16 characters".into());
            }
        }
        for k in &self.api.keys {
            if k.key.expose().len() < 16 {
                p.push(format!(
                    "api.keys {:?}: a key needs at least 16 characters",
                    k.name
                ));
            }
            for acc in &k.accounts {
                if !self.accounts.contains_key(acc) {
                    p.push(format!("api.keys {:?}: unknown account {acc:?}", k.name));
                }
            }
        }
        p
    }
}

fn scalar(v: &str) -> toml::Value {
    if let Ok(i) = v.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match v {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(v.to_owned()),
    }
}

fn apply_override(root: &mut toml::Table, path: &str, value: &str) -> Result<()> {
    let segments: Vec<String> = path.split("__").map(|s| s.to_ascii_lowercase()).collect();
    if segments.iter().any(String::is_empty) {
        return Err(Error::Config(format!(
            "environment variable WXGATE_{path}: empty segment"
        )));
    }
    let (last, parents) = segments.split_last().expect("at least one segment");
    let mut table = root;
    for seg in parents {
        let entry = table
            .entry(seg.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry.as_table_mut().ok_or_else(|| {
            Error::Config(format!(
                "environment variable WXGATE_{path}: {seg} is not a table"
            ))
        })?;
    }
    // An override of a secret written as { env = ... } replaces it with the value.
    table.insert(last.clone(), scalar(value));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
[accounts.default]
appid = "wx1"
secret = "s"
"#;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config> {
        Config::from_toml_with_env(
            text,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn minimal_config_has_defaults() {
        let c = load(MIN, &[]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:18340");
        assert_eq!(c.store.kind, StoreKind::Embedded);
        assert_eq!(c.accounts["default"].token_api, TokenApi::Stable);
        assert_eq!(c.credentials.refresh_margin, 600);
    }

    #[test]
    fn environment_overrides_any_value() {
        let c = load(
            MIN,
            &[
                ("WXGATE_LISTEN", "127.0.0.1:9999"),
                ("WXGATE_STORE__KIND", "redis"),
                ("WXGATE_STORE__REDIS_URL", "redis://127.0.0.1:1/"),
                ("WXGATE_ACCOUNTS__DEFAULT__SECRET", "from-env"),
                ("WXGATE_CREDENTIALS__REFRESH_MARGIN", "900"),
                ("OTHER", "ignored"),
            ],
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:9999");
        assert_eq!(c.store.kind, StoreKind::Redis);
        assert_eq!(c.accounts["default"].secret.expose(), "from-env");
        assert_eq!(c.credentials.refresh_margin, 900);
    }

    #[test]
    fn secrets_from_environment_variables() {
        std::env::set_var("WXGATE_TEST_SECRET_1", "env-secret");
        let c = load(
            "[accounts.default]\nappid = \"wx1\"\nsecret = { env = \"WXGATE_TEST_SECRET_1\" }\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.accounts["default"].secret.expose(), "env-secret");
        assert!(!format!("{c:?}").contains("env-secret"));
        let e = load(
            "[accounts.default]\nappid = \"wx1\"\nsecret = { env = \"WXGATE_TEST_UNSET_9\" }\n",
            &[],
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("WXGATE_TEST_UNSET_9 is not set"),
            "{e}"
        );
    }

    #[test]
    fn problems_are_named_precisely() {
        let e = load(
            "[accounts.default]\nappid = \"wx1\"\nsecret = \"s\"\nmode = \"safe\"\ntoken = \"t\"\nencoding_aes_key = \"tooshort\"\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("accounts.default.encoding_aes_key"), "{e}");
        assert!(e.contains("43 characters"), "{e}");
        let e = load(
            "[accounts.default]\nappid = \"wx1\"\nsecret = \"s\"\nmode = \"secure\"\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("secure") && e.contains("safe"), "{e}");
        let e = load("[accounts.default]\nappid = \"wx1\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("accounts.default.secret is missing"), "{e}");
        let e = load("", &[]).unwrap_err().to_string();
        assert!(e.contains("at least one account"), "{e}");
        let e = load(&format!("{MIN}\n[store]\nkind = \"redis\"\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("redis_url"), "{e}");
        let e = load(
            &format!("{MIN}\n[accounts.Bad]\nappid = \"wx\"\nsecret = \"s\"\n"),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("accounts.Bad"), "{e}");
        let e = load(&format!("{MIN}\nunknown_key = 1\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown_key"), "{e}");
    }
}
