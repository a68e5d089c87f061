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

mod account;
mod compat;
mod component;
mod console;
mod features;
mod pay;
mod server;
mod upstream;

pub use account::{AccountConfig, AccountKind, MessageMode, TokenApi};
pub use compat::{CompatClient, CompatConfig};
pub use component::ComponentConfig;
pub use console::ConsoleConfig;
pub use features::{
    AuthConfig, DemoConfig, MiniProgramConfig, PushConfig, RuleConfig, WebhookConfig,
};
pub use pay::{PayConfig, PayForwardConfig, PayWebhookConfig};
pub use server::{ApiConfig, ApiKeyConfig, RateLimitConfig, ServerConfig};
pub use upstream::{CredentialsConfig, StoreConfig, StoreKind, UpstreamConfig};

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

/// `[metrics]`: what `/metrics` keeps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Series labelled by account (and the per-account gauges). Off for thousands of
    /// accounts: every `account` label is `*`, and `wxgate_credentials{kind,state}`
    /// counts them by state instead.
    pub per_account_labels: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            per_account_labels: true,
        }
    }
}

/// What `/readyz` answers 200 for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Readiness {
    /// The store answers and the instance can serve: one merchant with a revoked secret
    /// does not take every instance out of its load balancer. For many accounts.
    #[default]
    Instance,
    /// Also every account holds a usable access_token: for a single-account deployment
    /// that wants no traffic before its token is there.
    AllAccounts,
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
    /// What `/readyz` means: `instance` (the store answers and this instance can serve;
    /// an account without a token is reported, not a 503 for every account) or
    /// `all_accounts` (also every account holds a usable access_token).
    #[serde(default)]
    pub readiness: Readiness,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    #[serde(default)]
    pub compat: CompatConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub upstream: UpstreamConfig,
    #[serde(default)]
    pub credentials: CredentialsConfig,
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub service: PushConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub demo: DemoConfig,
    #[serde(default)]
    pub console: ConsoleConfig,
    /// `[miniprogram]` (the older `[miniapp]` is accepted too).
    #[serde(default, alias = "miniapp")]
    pub miniprogram: MiniProgramConfig,
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountConfig>,
    /// `[pay.NAME]`: WeChat Pay merchants.
    #[serde(default)]
    pub pay: BTreeMap<String, PayConfig>,
    /// `[components.NAME]`: third-party platforms (第三方平台).
    #[serde(default)]
    pub components: BTreeMap<String, ComponentConfig>,
}

fn default_listen() -> String {
    "127.0.0.1:18340".into()
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
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
        check_env_references(&value)?;
        let config: Config = toml::Value::Table(value)
            .try_into()
            .map_err(|e: toml::de::Error| Error::Config(e.to_string().trim().to_owned()))?;
        config.validate()?;
        Ok(config)
    }

    /// The URL browsers and WeChat reach this server at: `public_url`, else
    /// `http://{listen}`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_owned()
    }

    /// Whether browsers reach this server over https (cookies are `Secure`, OAuth
    /// destinations must be https).
    pub fn serves_https(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
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
        for reserved in ["pay", "component"] {
            if self.accounts.contains_key(reserved) {
                p.push(format!("accounts.{reserved}: the name is reserved (/wx/{reserved}/... are the routes of [{reserved}{}])", if reserved == "pay" { ".NAME" } else { "s.NAME" }));
            }
        }
        for (name, pay) in &self.pay {
            pay.problems(name, &mut p);
        }
        for (name, c) in &self.components {
            c.problems(name, &mut p);
        }
        self.store.problems(&mut p);
        self.upstream.problems(&mut p);
        self.rate_limit.problems(&mut p);
        self.server.problems(&mut p);
        self.credentials.problems(&mut p);
        let public_https = self.serves_https();
        for (name, a) in &self.accounts {
            a.problems(name, public_https, &mut p);
        }
        self.auth.problems(&mut p);
        self.console.problems(&mut p);
        let names: Vec<&str> = self.accounts.keys().map(String::as_str).collect();
        self.api.problems(&names, &mut p);
        // A compat client may name an account's appid or a component's.
        let appids: Vec<&str> = self
            .accounts
            .values()
            .map(|a| a.appid.as_str())
            .chain(self.components.values().map(|c| c.component_appid.as_str()))
            .collect();
        self.compat.problems(&appids, &mut p);
        p
    }
}

/// Every `{ env = "NAME" }` reference of the file, with where it stands
/// (`accounts.default.secret`).
fn env_references(table: &toml::Table, at: &str, out: &mut Vec<(String, String)>) {
    for (key, value) in table {
        let here = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        match value {
            toml::Value::Table(t) => match (t.len(), t.get("env")) {
                (1, Some(toml::Value::String(name))) => out.push((here, name.clone())),
                _ => env_references(t, &here, out),
            },
            toml::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let toml::Value::Table(t) = item {
                        env_references(t, &format!("{here}[{i}]"), out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The secrets read from the environment, all checked before any is read: every
/// variable that is not set is named at once (not one per run), and a `WXGATE_*` name
/// is refused, since the override layer would also read that variable as a setting and
/// break the file.
fn check_env_references(root: &toml::Table) -> Result<()> {
    let mut refs = Vec::new();
    env_references(root, "", &mut refs);
    let mut problems = Vec::new();
    for (at, name) in &refs {
        if name.starts_with("WXGATE_") {
            problems.push(format!(
                "{at}: {{ env = {name:?} }} names a WXGATE_* variable, which is also read as a setting override (WXGATE_<PATH>); name it something else, e.g. {:?}",
                name.trim_start_matches("WXGATE_")
            ));
        }
    }
    let unset: Vec<String> = refs
        .iter()
        .filter(|(_, name)| !name.starts_with("WXGATE_") && std::env::var(name).is_err())
        .map(|(at, name)| format!("{name} (for {at})"))
        .collect();
    if !unset.is_empty() {
        problems.push(format!(
            "environment variables not set: {}",
            unset.join(", ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Config(problems.join("; ")))
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
    fn the_older_miniapp_names_are_accepted() {
        let c = load(
            &format!("{MIN}\n[miniapp]\nsession_ttl = 60\n[accounts.mp]\nkind = \"miniapp\"\nappid = \"wx2\"\nsecret = \"s\"\n"),
            &[],
        )
        .unwrap();
        assert_eq!(c.miniprogram.session_ttl, 60);
        assert_eq!(c.accounts["mp"].kind, AccountKind::MiniProgram);
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
        std::env::set_var("CONFIG_TEST_SECRET_1", "env-secret");
        let c = load(
            "[accounts.default]\nappid = \"wx1\"\nsecret = { env = \"CONFIG_TEST_SECRET_1\" }\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.accounts["default"].secret.expose(), "env-secret");
        assert!(!format!("{c:?}").contains("env-secret"));
        // Every unset variable is named at once, with where it is used.
        let e = load(
            "[accounts.default]\nappid = \"wx1\"\nsecret = { env = \"CONFIG_TEST_UNSET_9\" }\ntoken = { env = \"CONFIG_TEST_UNSET_8\" }\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("CONFIG_TEST_UNSET_9 (for accounts.default.secret)"),
            "{e}"
        );
        assert!(
            e.contains("CONFIG_TEST_UNSET_8 (for accounts.default.token)"),
            "{e}"
        );
        // A WXGATE_* name is refused, set or not: the override layer reads it too.
        std::env::set_var("WXGATE_TEST_SECRET_1", "env-secret");
        let e = load(
            "[accounts.default]\nappid = \"wx1\"\nsecret = { env = \"WXGATE_TEST_SECRET_1\" }\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("setting override"), "{e}");
    }

    #[test]
    fn one_broken_entry_among_ten_thousand_accounts_is_named() {
        let mut text = String::new();
        for i in 0..10_000 {
            let key = if i == 7777 {
                "tooshort"
            } else {
                "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
            };
            text.push_str(&format!(
                "[accounts.a{i}]\nappid = \"wx{i:016}\"\nsecret = \"s\"\ntoken = \"t\"\nencoding_aes_key = \"{key}\"\nmode = \"safe\"\n"
            ));
        }
        let e = load(&text, &[]).unwrap_err().to_string();
        assert!(
            e.contains("accounts.a7777.encoding_aes_key"),
            "{}",
            &e[..e.len().min(300)]
        );
        assert!(
            !e.contains("accounts.a7776"),
            "only the broken entry is named"
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
        let sentinel =
            "[store.sentinel]\nmaster_name = \"m\"\nnodes = [\"redis://127.0.0.1:26379\"]\n";
        let cluster =
            "[store.cluster]\nnodes = [\"redis://127.0.0.1:7000\", \"rediss://h:7001\"]\n";
        for ok in [sentinel, cluster] {
            let c = load(&format!("{MIN}\n[store]\nkind = \"redis\"\n{ok}"), &[]).unwrap();
            assert!(c.store.sentinel.is_some() || c.store.cluster.is_some());
        }
        for (bad, why) in [
            (format!("{sentinel}{cluster}"), "give one of"),
            (
                "[store.cluster]\nnodes = [\"10.0.0.1:7000\"]\n".to_owned(),
                "not a redis:// or rediss:// URL",
            ),
            (
                "[store.cluster]\nnodes = []\n".to_owned(),
                "at least one node",
            ),
            (
                "[store.sentinel]\nmaster_name = \"\"\nnodes = [\"redis://h:1\"]\n".to_owned(),
                "master_name is empty",
            ),
        ] {
            let e = load(&format!("{MIN}\n[store]\nkind = \"redis\"\n{bad}"), &[])
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{e}");
        }
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
