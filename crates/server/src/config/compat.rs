//! `[compat]`: wxgate answering as WeChat's API host, so that a business's existing SDKs
//! get their tokens from the central control by changing one URL.

use serde::Deserialize;

use super::Secret;

/// The WeChat-compatible API (`/cgi-bin/token`, `/cgi-bin/stable_token`,
/// `/cgi-bin/ticket/getticket`, and every other API path forwarded).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CompatConfig {
    pub enabled: bool,
    /// Serve it on its own address (an internal network) instead of beside `/wx/...`.
    pub listen: Option<String>,
    /// Who may ask for tokens, each with its own secret in place of the AppSecret.
    pub clients: Vec<CompatClient>,
}

/// One SDK user: it presents `secret` as the `secret` of WeChat's token calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompatClient {
    /// Who holds it (for logs; never the secret).
    pub name: String,
    pub secret: Secret,
    /// The appids it may use.
    pub appids: Vec<String>,
    /// Addresses it may call from; any when empty.
    #[serde(default)]
    pub allow_ips: Vec<std::net::IpAddr>,
    /// Whether it may call `/cgi-bin/clear_quota` through the compatible API (which
    /// spends one of the 10 a month for everyone). Forwarded calls carry the shared
    /// central token, so the caller is known by its address: this needs `allow_ips`.
    #[serde(default)]
    pub allow_clear_quota: bool,
}

impl CompatConfig {
    pub(super) fn problems(&self, appids: &[&str], p: &mut Vec<String>) {
        if let Some(l) = &self.listen {
            if l.parse::<std::net::SocketAddr>().is_err() {
                p.push(format!(
                    "compat.listen: {l:?} is not an address like 127.0.0.1:18342"
                ));
            }
        }
        for c in &self.clients {
            if c.secret.expose().len() < 16 {
                p.push(format!(
                    "compat.clients {:?}: a secret needs at least 16 characters",
                    c.name
                ));
            }
            if c.allow_clear_quota && c.allow_ips.is_empty() {
                p.push(format!(
                    "compat.clients {:?}: allow_clear_quota needs allow_ips (forwarded calls are known by their address)",
                    c.name
                ));
            }
            for a in &c.appids {
                if !appids.contains(&a.as_str()) {
                    p.push(format!(
                        "compat.clients {:?}: appid {a:?} is no configured account's or component's",
                        c.name
                    ));
                }
            }
        }
    }
}
