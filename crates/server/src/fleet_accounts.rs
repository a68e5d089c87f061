//! Accounts kept in the store for the whole fleet, beside those of the file: created,
//! updated and deleted through the internal API (`/api/v1/admin/accounts`, an `admin`
//! key) on any instance, and applied by every instance within `api.accounts_poll_ms`
//! (each polls one document and reloads when it changed, as `wxgate reload` does).
//! This is what an open platform's authorizers will use: accounts that come and go
//! without anyone editing a file.
//!
//! The document is one JSON object, `{name: account}`, each account in the fields of
//! `[accounts.NAME]`. Secrets are kept there (the store already holds every token) and
//! never read back by the API. A name the file defines is the file's: the store cannot
//! shadow it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::{AccountConfig, Config};
use crate::error::{Error, Result};
use crate::store::{keys, SharedStore};

/// What applies a changed document (the running gateway's generations): what changed,
/// in words, or `None` when the document is the one already applied.
pub trait Apply: Send + Sync + 'static {
    fn apply_store_accounts(&self, doc: Option<String>) -> Result<Option<String>>;
}

/// The accounts of the document `doc`, by name.
pub fn parse(doc: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(doc) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Error::Config(
            "the store's accounts document is not a JSON object".into(),
        )),
    }
}

/// One account as the API or the document gives it, checked as the file's are read:
/// unknown fields refused by name, and no `{ env = ... }` (the server's environment is
/// not the caller's to read).
pub fn account_of(name: &str, v: &Value) -> std::result::Result<AccountConfig, String> {
    fn has_env(v: &Value) -> bool {
        match v {
            Value::Object(m) => m.contains_key("env") || m.values().any(has_env),
            Value::Array(a) => a.iter().any(has_env),
            _ => false,
        }
    }
    if has_env(v) {
        return Err(format!(
            "accounts.{name}: an account kept in the store gives its secrets as values, not {{ env = ... }}"
        ));
    }
    serde_json::from_value(v.clone()).map_err(|e| format!("accounts.{name}: {e}"))
}

/// The file's configuration with the store's accounts added (a name the file defines
/// stays the file's), validated as `wxgate check` validates a file.
pub fn merged(file: &Config, doc: Option<&str>) -> Result<Config> {
    let mut config = file.clone();
    if let Some(doc) = doc {
        for (name, v) in parse(doc)? {
            if config.accounts.contains_key(&name) {
                tracing::warn!(account = %name, "an account kept in the store has a name the file defines: the file's is used");
                continue;
            }
            let acc = account_of(&name, &v).map_err(Error::Config)?;
            config.accounts.insert(name, acc);
        }
    }
    config.validate()?;
    Ok(config)
}

/// Polls the document every `period` and applies it when it changed, until `stop`.
pub fn spawn_watch<A: Apply>(
    target: Arc<A>,
    store: SharedStore,
    period: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    crate::util::spawn_periodic(period, stop, move || {
        let (target, store) = (target.clone(), store.clone());
        async move {
            // A store that does not answer changes nothing: its outage is logged once
            // by the store's health.
            let Ok(doc) = store.get(&keys::fleet_accounts()).await else {
                return;
            };
            match target.apply_store_accounts(doc) {
                Ok(Some(what)) => tracing::info!(%what, "accounts kept in the store applied"),
                Ok(None) => {}
                Err(e) => {
                    crate::sampled_warn!("store_accounts_refused", error = %e, "accounts kept in the store not applied: the running configuration stays")
                }
            }
        }
    })
}
