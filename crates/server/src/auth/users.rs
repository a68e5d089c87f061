//! Users remembered by web authorization: their user access_token, refresh_token and
//! userinfo, kept 7 days; the refresh of an expired user token (one instance at a time
//! per openid); and the sweep that refreshes, every minute, only the tokens about to
//! expire, found through an expiry index instead of a scan of every user.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wxgate_proto::api::sns::{OauthAccessToken, OauthRefreshToken, UserInfoRequest};

use crate::config::{AccountConfig, AuthConfig};
use crate::credentials::CentralControl;
use crate::error::{Error, Result};
use crate::store::keys;

/// A remembered user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub openid: String,
    pub scope: String,
    pub access_token: String,
    pub refresh_token: String,
    /// When the user access_token expires (unix seconds).
    pub expires_at: i64,
    /// When wxgate forgets the user.
    pub remember_until: i64,
    /// `/sns/userinfo`'s answer, or `{"openid"}` for snsapi_base.
    pub userinfo: Value,
}

/// A token is refreshed before use when it has less than this left.
const MIN_USER_TOKEN_LIFE: i64 = 60;

pub struct Users {
    central: Arc<CentralControl>,
    cfg: AuthConfig,
    /// Upstream user-token refreshes done by this instance (tests and metrics).
    pub refreshes: AtomicU64,
}

impl Users {
    pub fn new(central: Arc<CentralControl>, cfg: AuthConfig) -> Self {
        Users {
            central,
            cfg,
            refreshes: AtomicU64::new(0),
        }
    }

    fn now(&self) -> i64 {
        self.central.clock().now()
    }

    /// Exchanges a code (`/sns/oauth2/access_token`), fetches userinfo for snsapi_userinfo,
    /// and remembers the user.
    pub async fn login(
        &self,
        account: &str,
        acc: &AccountConfig,
        code: &str,
    ) -> Result<UserRecord> {
        let g = match &acc.acting_through {
            // A merchant's page: its platform exchanges the code with its own token.
            Some(_) => {
                self.central
                    .delegate_for(account)?
                    .oauth_access_token(account, code)
                    .await?
            }
            None => {
                self.central
                    .upstream()
                    .call(&OauthAccessToken::new(
                        &acc.appid,
                        acc.secret.expose(),
                        code,
                    ))
                    .await?
            }
        };
        let userinfo = self.userinfo(&g.access_token, &g.openid, &g.scope).await?;
        let now = self.now();
        let record = UserRecord {
            openid: g.openid,
            scope: g.scope,
            access_token: g.access_token,
            refresh_token: g.refresh_token,
            expires_at: now + g.expires_in,
            remember_until: now + self.cfg.user_ttl,
            userinfo,
        };
        self.save(account, &record).await?;
        Ok(record)
    }

    /// `/sns/userinfo` with the user's token for snsapi_userinfo, else `{"openid"}`.
    async fn userinfo(&self, access_token: &str, openid: &str, scope: &str) -> Result<Value> {
        if scope.split(',').any(|s| s == "snsapi_userinfo") {
            let req = UserInfoRequest {
                access_token: access_token.to_owned(),
                openid: openid.to_owned(),
                lang: "zh_CN".into(),
            };
            let info = self.central.upstream().call(&req).await?;
            Ok(serde_json::to_value(info).unwrap_or_default())
        } else {
            Ok(serde_json::json!({ "openid": openid }))
        }
    }

    pub async fn load(&self, account: &str, openid: &str) -> Result<Option<UserRecord>> {
        let key = keys::user(account, openid);
        let raw = crate::store::get_migrating(self.central.store().as_ref(), &key).await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    async fn save(&self, account: &str, r: &UserRecord) -> Result<()> {
        let ttl = Duration::from_secs((r.remember_until - self.now()).max(1) as u64);
        let store = self.central.store();
        store
            .set(
                &keys::user(account, &r.openid),
                &serde_json::to_string(r).unwrap_or_default(),
                Some(ttl),
            )
            .await?;
        store
            .index_put(&keys::user_index(account), &r.openid, r.expires_at)
            .await
    }

    async fn forget(&self, account: &str, openid: &str) -> Result<()> {
        let store = self.central.store();
        let key = keys::user(account, openid);
        store.delete(&key).await?;
        if let Some(old) = keys::legacy(&key) {
            store.delete(&old).await?;
        }
        store.index_remove(&keys::user_index(account), openid).await
    }

    /// The user with a usable token: refreshed first if it expired (one instance at a
    /// time per openid). `None` when the refresh token is dead: consent is needed again.
    pub async fn usable(
        &self,
        account: &str,
        acc: &AccountConfig,
        record: UserRecord,
    ) -> Result<Option<UserRecord>> {
        if record.expires_at - self.now() > MIN_USER_TOKEN_LIFE {
            return Ok(Some(record));
        }
        let lock = keys::user_lock(account, &record.openid);
        let owner = crate::util::random_id();
        let store = self.central.store();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if store
                .set_if_absent(&lock, &owner, Duration::from_secs(15))
                .await?
            {
                let result = self
                    .refresh_locked(account, acc, &record.openid, MIN_USER_TOKEN_LIFE)
                    .await;
                let _ = store.compare_and_delete(&lock, &owner).await;
                return result;
            }
            // Another request or instance is refreshing this user: wait for its result.
            tokio::time::sleep(Duration::from_millis(50)).await;
            match self.load(account, &record.openid).await? {
                Some(r) if r.expires_at - self.now() > MIN_USER_TOKEN_LIFE => return Ok(Some(r)),
                None => return Ok(None),
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(Error::LockTimeout("user access_token".into()))
                }
                _ => {}
            }
        }
    }

    /// Under the user's lock: reloads, and refreshes if the token has less than `ahead`
    /// seconds left. `None` when the user is gone or the refresh token is dead.
    async fn refresh_locked(
        &self,
        account: &str,
        acc: &AccountConfig,
        openid: &str,
        ahead: i64,
    ) -> Result<Option<UserRecord>> {
        let Some(mut r) = self.load(account, openid).await? else {
            self.central
                .store()
                .index_remove(&keys::user_index(account), openid)
                .await?;
            return Ok(None);
        };
        let now = self.now();
        if now >= r.remember_until {
            self.forget(account, openid).await?;
            return Ok(None);
        }
        if r.expires_at - now > ahead {
            return Ok(Some(r));
        }
        let answer = match &acc.acting_through {
            Some(_) => match self.central.delegate_for(account) {
                Ok(d) => d.oauth_refresh_token(account, &r.refresh_token).await,
                Err(e) => Err(e),
            },
            None => {
                self.central
                    .upstream()
                    .call(&OauthRefreshToken::new(&acc.appid, &r.refresh_token))
                    .await
            }
        };
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let g = match answer {
            Ok(g) => g,
            Err(e) if e.errcode().is_some() && !e.is_transient() => {
                // 42002 / 40030 / 40001: the refresh token is dead; consent again.
                tracing::info!(account, error = %e, "user refresh token no longer valid; forgetting the user");
                self.forget(account, openid).await?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        r.access_token = g.access_token;
        if !g.refresh_token.is_empty() {
            r.refresh_token = g.refresh_token;
        }
        r.expires_at = self.now() + g.expires_in;
        if r.scope.split(',').any(|s| s == "snsapi_userinfo") {
            if let Ok(info) = self.userinfo(&r.access_token, &r.openid, &r.scope).await {
                r.userinfo = info;
            }
        }
        self.save(account, &r).await?;
        Ok(Some(r))
    }

    /// Refreshes the user tokens of `account` that expire within `refresh_ahead`, each
    /// under its openid's lock so that a fleet refreshes each once. Returns how many this
    /// call refreshed.
    pub async fn sweep(&self, account: &str, acc: &AccountConfig) -> Result<usize> {
        let store = self.central.store();
        let ahead = self.cfg.refresh_ahead;
        let due = store
            .index_due(&keys::user_index(account), self.now() + ahead, 500)
            .await?;
        let before = self.refreshes.load(Ordering::Relaxed);
        for (openid, _) in due {
            let lock = keys::user_lock(account, &openid);
            let owner = crate::util::random_id();
            if !store
                .set_if_absent(&lock, &owner, Duration::from_secs(15))
                .await?
            {
                continue; // another instance has this one
            }
            let result = self.refresh_locked(account, acc, &openid, ahead).await;
            let _ = store.compare_and_delete(&lock, &owner).await;
            if let Err(e) = result {
                tracing::warn!(account, error = %e, "user token refresh failed; the next sweep retries");
            }
        }
        Ok((self.refreshes.load(Ordering::Relaxed) - before) as usize)
    }

    /// The sweep of every official account, every `sweep_interval_ms`, until `stop`.
    pub fn spawn_sweeper(
        self: &Arc<Self>,
        accounts: Vec<(String, AccountConfig)>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let accounts = Arc::new(accounts);
        let period = Duration::from_millis(self.cfg.sweep_interval_ms);
        crate::util::spawn_periodic(period, stop, move || {
            let (me, accounts) = (me.clone(), accounts.clone());
            async move {
                for (name, acc) in accounts.iter() {
                    if let Err(e) = me.sweep(name, acc).await {
                        tracing::warn!(account = %name, error = %e, "user sweep failed");
                    }
                }
            }
        })
    }
}
