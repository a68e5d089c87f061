//! Where state and WeChat are: `[store]`, `[upstream]` and `[credentials]` (the central
//! control's timing and quota).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    #[default]
    Embedded,
    Redis,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default)]
    pub kind: StoreKind,
    /// For `redis` on one node: `redis://127.0.0.1:6379/0`, or `rediss://host:6380/0`
    /// over TLS. One of `redis_url`, `[store.sentinel]` and `[store.cluster]`.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// For `rediss://`: the CA certificate (PEM) that signed the server's, when it is
    /// not in the system's trust store (a managed Redis's own CA, a test CA). Applies to
    /// every node, Sentinel's and Cluster's too.
    #[serde(default)]
    pub redis_ca_file: Option<PathBuf>,
    /// For `redis` behind Redis Sentinel: the master's name and the sentinels; the
    /// store asks them for the master and asks again after a failover.
    #[serde(default)]
    pub sentinel: Option<SentinelConfig>,
    /// For `redis` on a Redis Cluster: some nodes to learn the cluster from; the
    /// client follows `MOVED`/`ASK` and failovers itself.
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
    /// For `embedded`: the file (default `data_dir/wxgate.redb`).
    #[serde(default)]
    pub path: Option<PathBuf>,
}

/// `[store.sentinel]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SentinelConfig {
    /// The name the sentinels monitor the master under (`sentinel monitor <name> ...`).
    pub master_name: String,
    /// The sentinels, `redis://host:26379` (or `rediss://`): at least one.
    pub nodes: Vec<String>,
    /// The data nodes' database number.
    #[serde(default)]
    pub db: i64,
}

/// `[store.cluster]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Seed nodes, `redis://host:7000` (or `rediss://`): any reachable one is enough.
    pub nodes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// WeChat's API host (`/cgi-bin/...`, `/sns/...`); the sandbox's URL in development.
    pub api_base: String,
    /// WeChat's web authorization host (`/connect/oauth2/authorize`).
    pub open_base: String,
    /// WeChat's platform host (`mp.weixin.qq.com`: the open platform's authorization page).
    pub mp_base: String,
    /// WeChat Pay's API host (`/v3/...`), for the signing proxy and certificates.
    pub pay_base: String,
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
            pay_base: "https://api.mch.weixin.qq.com".into(),
            mp_base: "https://mp.weixin.qq.com".into(),
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
    /// A failed fetch is remembered this long for the whole fleet (ms): the requests
    /// in that window get its error without calling WeChat again.
    pub failure_backoff_ms: u64,
    /// At most one forced access_token refresh (`force_refresh`, which ends the
    /// previous token at once for every holder) per account in this many seconds, for
    /// the fleet. WeChat allows 20 a day, 30 s apart.
    pub forced_refresh_interval_secs: u64,
    /// Background refreshes running at once (each account and kind is one): many
    /// accounts are refreshed side by side, and a slow one holds one slot.
    pub max_concurrent_refreshes: usize,
    /// A background refresh gives up after this long (ms), so an account whose WeChat
    /// hangs holds its slot no longer.
    pub refresh_timeout_ms: u64,
    /// A credential whose refresh keeps failing is retried after 2, 4, 8, ... seconds
    /// (with jitter), at most this many, and always well before what it holds expires.
    pub max_backoff_secs: u64,
}

impl Default for CredentialsConfig {
    fn default() -> Self {
        CredentialsConfig {
            refresh_margin: 600,
            check_interval_ms: 15_000,
            lock_lease_ms: 30_000,
            wait_timeout_ms: 10_000,
            daily_quota: 2000,
            failure_backoff_ms: 3000,
            forced_refresh_interval_secs: 60,
            max_concurrent_refreshes: 16,
            refresh_timeout_ms: 30_000,
            max_backoff_secs: 300,
        }
    }
}

impl StoreConfig {
    pub(super) fn problems(&self, p: &mut Vec<String>) {
        if self.kind != StoreKind::Redis {
            return;
        }
        let given = [
            self.redis_url.is_some(),
            self.sentinel.is_some(),
            self.cluster.is_some(),
        ];
        match given.iter().filter(|g| **g).count() {
            0 => p.push(
                "store.redis_url (or [store.sentinel] or [store.cluster]) is required when store.kind = \"redis\"".into(),
            ),
            1 => {}
            _ => p.push(
                "store: give one of redis_url, [store.sentinel] and [store.cluster]".into(),
            ),
        }
        let nodes = (self.sentinel.as_ref().map(|s| ("sentinel", &s.nodes)))
            .into_iter()
            .chain(self.cluster.as_ref().map(|c| ("cluster", &c.nodes)));
        for (section, nodes) in nodes {
            if nodes.is_empty() {
                p.push(format!("store.{section}.nodes: list at least one node"));
            }
            for n in nodes {
                if !(n.starts_with("redis://") || n.starts_with("rediss://")) {
                    p.push(format!(
                        "store.{section}.nodes: {n:?} is not a redis:// or rediss:// URL"
                    ));
                }
            }
        }
        if let Some(s) = &self.sentinel {
            if s.master_name.is_empty() {
                p.push("store.sentinel.master_name is empty".into());
            }
        }
    }
}

impl UpstreamConfig {
    pub(super) fn problems(&self, p: &mut Vec<String>) {
        for (field, base) in [("api_base", &self.api_base), ("open_base", &self.open_base)] {
            if url::Url::parse(base).is_err() {
                p.push(format!("upstream.{field}: {base:?} is not a URL"));
            }
        }
    }
}

impl CredentialsConfig {
    pub(super) fn problems(&self, p: &mut Vec<String>) {
        if self.refresh_margin < 60 {
            p.push("credentials.refresh_margin must be at least 60 seconds".into());
        }
    }
}
