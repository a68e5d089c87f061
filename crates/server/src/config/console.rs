//! `[console]`: the operator console in the browser (`/console`), off unless enabled.

use serde::Deserialize;

use super::Secret;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    pub enabled: bool,
    /// What an operator types to log in: at least 16 characters (better: `openssl rand
    /// -hex 16`), written as `{ env = "CONSOLE_ADMIN_KEY" }` to keep it out of the file
    /// (not a `WXGATE_*` name: those are read as setting overrides).
    /// The session cookie is signed with a key derived from it, so changing it logs
    /// every console session out.
    pub admin_key: Option<Secret>,
    /// How long a login lasts (hours).
    pub session_hours: u64,
    /// How often this instance writes its heartbeat into the store for the fleet view.
    pub heartbeat_secs: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: false,
            admin_key: None,
            session_hours: 12,
            heartbeat_secs: 10,
        }
    }
}

impl ConsoleConfig {
    pub(super) fn problems(&self, p: &mut Vec<String>) {
        if !self.enabled {
            return;
        }
        match &self.admin_key {
            None => p.push("console.admin_key is required when console.enabled = true".into()),
            Some(k) if k.expose().chars().count() < 16 => {
                p.push("console.admin_key: use at least 16 characters".into())
            }
            Some(_) => {}
        }
        if self.session_hours == 0 || self.session_hours > 24 * 30 {
            p.push("console.session_hours: between 1 and 720".into());
        }
        if self.heartbeat_secs == 0 || self.heartbeat_secs > 300 {
            p.push("console.heartbeat_secs: between 1 and 300".into());
        }
    }
}
