//! The HTTP server's sections: `[server]` (connections, deadlines, the client address
//! behind a proxy), `[rate_limit]` and `[api]` (the internal API's keys and the proxy's
//! body limit).

use serde::Deserialize;

use super::Secret;

/// The HTTP server: what one client may hold, and where its address comes from.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Connections served at once; more wait in the kernel's backlog. Near it, the
    /// oldest idle connection of the client holding the most is closed.
    pub max_connections: usize,
    /// Near `max_connections`, connections one client address (an IPv6 /64) may hold
    /// (at most half of `max_connections`): past it its oldest idle one is closed for a
    /// new one, or the new one if none is idle. `trusted_proxies` have no such share
    /// (they carry many clients).
    pub max_connections_per_client: usize,
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
    /// Who may read `/metrics` and `/readyz` (addresses or CIDR ranges, matched
    /// against the client address); anyone when empty. Others get 403. `/healthz`
    /// stays open for load balancers.
    pub ops_allow: Vec<IpRange>,
    /// Whether `/wx/config` and `/wx/service` are answered by the hot lane (`http::hot`)
    /// in front of the router, or by the router like every other route. The answers are
    /// the same; the lane saves the router's work on the two requests that arrive all
    /// day (bench/results.md, "The hot lane").
    pub hot_lane: bool,
}

/// An address range (`10.0.0.0/8`, `fd00::/8`) or one address, as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    base: std::net::IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address as its IPv4 one).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let bits = |a: IpAddr| -> (u128, u32) {
            match a {
                IpAddr::V4(v) => (u32::from(v) as u128, 32),
                IpAddr::V6(v) => (u128::from(v), 128),
            }
        };
        let ((b, width), (i, iwidth)) = (bits(self.base), bits(ip));
        if width != iwidth {
            return false;
        }
        let host = width - u32::from(self.prefix);
        let mask = if host >= 128 { 0 } else { u128::MAX << host };
        (b & mask) == (i & mask)
    }
}

impl std::str::FromStr for IpRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let base: std::net::IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address or a range like 10.0.0.0/8"))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix is 0 to {max}"))?,
        };
        Ok(IpRange { base, prefix })
    }
}

impl<'de> Deserialize<'de> for IpRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 1024,
            max_connections_per_client: 128,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            client_ip_header: None,
            trusted_proxies: Vec::new(),
            ops_allow: Vec::new(),
            hot_lane: true,
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
    /// Failed authentications (a wrong compat secret, a wrong console key) a client
    /// address may make a minute, and its burst; past them it gets 429 (45011 on the
    /// compatible API) until its budget recovers. Charged to the client only: a right
    /// secret is never refused.
    pub failed_auth_per_client_per_minute: u32,
    pub failed_auth_per_client_burst: u32,
    /// Failed authentications of all clients together a minute: a ceiling on what
    /// failures cost, never applied to a right secret.
    pub failed_auth_per_minute: u32,
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
            failed_auth_per_client_per_minute: 10,
            failed_auth_per_client_burst: 10,
            failed_auth_per_minute: 600,
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
    /// `/api/v1/{account}/followers` spaces its WeChat calls by this much.
    pub followers_call_interval_ms: u64,
    /// `/api/v1/{account}/wxa/code` keeps a code for identical requests this long
    /// (seconds; 0: not kept). Codes are permanent and the API is rate-limited.
    pub wxa_code_cache_secs: u64,
    /// How often each instance looks for changes to the accounts kept in the store
    /// (ms): an account created on one instance serves on every other within this.
    pub accounts_poll_ms: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            keys: Vec::new(),
            proxy_max_body_bytes: 16 << 20,
            followers_call_interval_ms: 20,
            wxa_code_cache_secs: 86400,
            accounts_poll_ms: 2000,
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
    /// May manage the accounts kept in the store (`/api/v1/admin/accounts`).
    #[serde(default)]
    pub admin: bool,
}

impl ServerConfig {
    pub(super) fn problems(&self, p: &mut Vec<String>) {
        if self.client_ip_header.is_some() && self.trusted_proxies.is_empty() {
            p.push("server.client_ip_header needs server.trusted_proxies: a header from anyone else is anyone's to forge".into());
        }
    }
}

impl RateLimitConfig {
    pub(super) fn problems(&self, p: &mut Vec<String>) {
        for (name, v) in [
            ("per_client_per_minute", self.per_client_per_minute),
            ("per_client_burst", self.per_client_burst),
            ("per_account_per_minute", self.per_account_per_minute),
            ("per_account_burst", self.per_account_burst),
            (
                "failed_auth_per_client_per_minute",
                self.failed_auth_per_client_per_minute,
            ),
            (
                "failed_auth_per_client_burst",
                self.failed_auth_per_client_burst,
            ),
            ("failed_auth_per_minute", self.failed_auth_per_minute),
        ] {
            if v == 0 {
                p.push(format!(
                    "rate_limit.{name} must be at least 1 (set rate_limit.enabled = false to turn the limits off)"
                ));
            }
        }
    }
}

impl ApiConfig {
    pub(super) fn problems(&self, accounts: &[&str], p: &mut Vec<String>) {
        for k in &self.keys {
            if k.key.expose().len() < 16 {
                p.push(format!(
                    "api.keys {:?}: a key needs at least 16 characters",
                    k.name
                ));
            }
            for acc in &k.accounts {
                if !accounts.contains(&acc.as_str()) {
                    p.push(format!("api.keys {:?}: unknown account {acc:?}", k.name));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::IpRange;

    #[test]
    fn ranges_hold_what_they_say() {
        let r: IpRange = "10.0.0.0/8".parse().unwrap();
        assert!(r.contains("10.200.3.4".parse().unwrap()));
        assert!(!r.contains("11.0.0.1".parse().unwrap()));
        assert!(r.contains("::ffff:10.1.1.1".parse().unwrap()));
        let one: IpRange = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6: IpRange = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        let all: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<IpRange>().is_err(), "{bad}");
        }
    }
}
