//! The open platform (第三方平台): `[components.NAME]`. One wxgate holds, for a whole
//! fleet, what the SDKs leave to whichever instance WeChat reaches:
//!
//! - the `component_verify_ticket` WeChat pushes every 10 minutes to
//!   `/wx/component/{name}/event` ([`event`]), stored in the store for every instance;
//!   when none is held, or the newest is older than `ticket_max_age_secs`, the fleet asks
//!   for a push (`api_start_push_ticket`) at most once per `start_push_interval_secs`;
//! - the `component_access_token` ([`Component::component_access_token`]): fetched from
//!   the stored ticket by one instance under the store's lock, shared by all;
//! - authorizations: an authorization code (from the `authorized` event or the merchant's
//!   redirect) exchanged once for the fleet (`api_query_auth`), the authorizer's refresh
//!   token kept without a TTL; `unauthorized` removes it.

pub mod acting;
pub mod authorize;
pub mod backup;
pub mod event;
pub mod release;
pub mod service;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use wxgate_proto::api::component::{AuthorizationInfo, ComponentToken, QueryAuth, StartPushTicket};
use wxgate_proto::crypto::MsgCrypt;
use wxgate_proto::ErrCode;

use crate::config::{ComponentConfig, Config};
use crate::error::{Error, Result};
use crate::store::{keys, SharedStore};
use crate::upstream::Upstream;

/// The ticket as stored for the fleet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredTicket {
    pub ticket: String,
    /// Unix seconds, this gateway's clock.
    pub received_at: i64,
}

/// The component token as stored for the fleet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredToken {
    pub(crate) value: String,
    pub(crate) expires_at: i64,
}

/// An authorizer (授权方) of a component: what acting for it needs, kept for good.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Authorizer {
    pub authorizer_appid: String,
    pub refresh_token: String,
    /// The permission sets granted (`func_info`), as WeChat listed them.
    pub func_info: Vec<serde_json::Value>,
    pub authorized_at: i64,
    /// Set when WeChat refused the refresh token (61023): the merchant must authorize
    /// again through the component's link.
    #[serde(default)]
    pub needs_reauthorization: bool,
}

/// A component token is not handed out in its last minute.
const TOKEN_MARGIN: i64 = 60;
/// Tokens are refreshed ahead, within this many seconds of their end (at a random
/// moment of the later half, for an authorizer's).
pub const REFRESH_MARGIN: i64 = 600;
/// The ticket's life as WeChat documents it.
const TICKET_TTL: Duration = Duration::from_secs(12 * 3600);

/// One component.
pub struct Component {
    pub name: String,
    pub cfg: ComponentConfig,
    pub crypt: MsgCrypt,
    token: ArcSwapOption<StoredToken>,
}

/// Every component, and what they share.
pub struct ComponentService {
    components: BTreeMap<String, Component>,
    pub(crate) store: SharedStore,
    pub(crate) upstream: Upstream,
    owner: String,
}

fn parse<T: serde::de::DeserializeOwned>(v: Option<String>) -> Option<T> {
    v.and_then(|s| serde_json::from_str(&s).ok())
}

impl ComponentService {
    pub fn new(
        config: &Config,
        store: SharedStore,
        upstream: Upstream,
        owner: &str,
    ) -> Result<Self> {
        let mut components = BTreeMap::new();
        for (name, cfg) in &config.components {
            let crypt = MsgCrypt::new(
                cfg.token.expose(),
                cfg.encoding_aes_key.expose(),
                &cfg.component_appid,
            )
            .map_err(|e| Error::Config(format!("components.{name}.encoding_aes_key: {e}")))?;
            components.insert(
                name.clone(),
                Component {
                    name: name.clone(),
                    cfg: cfg.clone(),
                    crypt,
                    token: ArcSwapOption::empty(),
                },
            );
        }
        Ok(ComponentService {
            components,
            store,
            upstream,
            owner: owner.to_owned(),
        })
    }

    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.get(name)
    }

    pub fn components(&self) -> impl Iterator<Item = &Component> {
        self.components.values()
    }

    /// The component whose appid an SDK names (the compatible API's requests).
    pub fn by_appid(&self, component_appid: &str) -> Option<&Component> {
        self.components()
            .find(|c| c.cfg.component_appid == component_appid)
    }

    /// The ticket the fleet holds.
    pub async fn ticket(&self, c: &Component) -> Result<Option<StoredTicket>> {
        Ok(parse(
            self.store.get(&keys::component_ticket(&c.name)).await?,
        ))
    }

    /// Stores a pushed ticket for the fleet.
    pub async fn store_ticket(&self, c: &Component, ticket: &str, now: i64) -> Result<()> {
        let value = serde_json::to_string(&StoredTicket {
            ticket: ticket.into(),
            received_at: now,
        })
        .unwrap_or_default();
        self.store
            .set(&keys::component_ticket(&c.name), &value, Some(TICKET_TTL))
            .await
    }

    /// Asks WeChat to push a ticket, unless the fleet asked within
    /// `start_push_interval_secs`. Whether it asked.
    pub async fn start_push_ticket(&self, c: &Component) -> Result<bool> {
        let gate = keys::component_start_push(&c.name);
        let every = Duration::from_secs(c.cfg.start_push_interval_secs.max(1));
        if !self.store.set_if_absent(&gate, &self.owner, every).await? {
            return Ok(false);
        }
        let req = StartPushTicket {
            component_appid: c.cfg.component_appid.clone(),
            component_secret: c.cfg.component_appsecret.expose().to_owned(),
        };
        self.upstream.call(&req).await?;
        tracing::info!(component = %c.name, "asked WeChat to push a component_verify_ticket");
        Ok(true)
    }

    /// Asks for a push when the fleet holds no ticket or only an old one; sets
    /// `wxgate_component_ticket_age_seconds` (-1 while there is none), on every
    /// instance whichever one WeChat pushed to.
    pub async fn keep_ticket_fresh(&self, c: &Component, now: i64) -> Result<()> {
        let ticket = self.ticket(c).await?;
        let age = ticket.as_ref().map_or(-1, |t| now - t.received_at);
        metrics::gauge!("wxgate_component_ticket_age_seconds", "component" => c.name.clone())
            .set(age as f64);
        let stale = match ticket {
            Some(_) => age > c.cfg.ticket_max_age_secs,
            None => true,
        };
        if stale {
            self.start_push_ticket(c).await?;
        }
        Ok(())
    }

    /// The `component_access_token`: memory, then the store, then one fetch for the
    /// fleet under the store's lock, from the stored ticket. A missing ticket, or one
    /// WeChat calls expired or invalid (61005, 61006), asks for a push instead of
    /// retrying, and the caller gets the error.
    pub async fn component_access_token(&self, c: &Component, now: i64) -> Result<(String, i64)> {
        let usable = |t: &StoredToken| t.expires_at - now > TOKEN_MARGIN;
        if let Some(t) = c.token.load_full().filter(|t| usable(t)) {
            return Ok((t.value.clone(), t.expires_at - now));
        }
        let t = self
            .held_or_fetched(
                &keys::component_token(&c.name),
                &keys::component_token_lock(&c.name),
                "component_access_token",
                now,
                || self.fetch_token(c, now),
            )
            .await?;
        let (value, left) = (t.value.clone(), t.expires_at - now);
        c.token.store(Some(Arc::new(t)));
        Ok((value, left))
    }

    async fn fetch_token(&self, c: &Component, now: i64) -> Result<StoredToken> {
        let Some(ticket) = self.ticket(c).await? else {
            let _ = self.start_push_ticket(c).await;
            return Err(Error::WeChat {
                endpoint: <ComponentToken as wxgate_proto::api::Endpoint>::PATH.into(),
                code: ErrCode::ComponentTicketInvalid,
                errmsg: "wxgate: no component_verify_ticket received yet; asked WeChat to push one"
                    .into(),
            });
        };
        let req = ComponentToken {
            component_appid: c.cfg.component_appid.clone(),
            component_appsecret: c.cfg.component_appsecret.expose().to_owned(),
            component_verify_ticket: ticket.ticket,
        };
        match self.upstream.call(&req).await {
            Ok(a) => {
                let key = keys::component_token(&c.name);
                let t = self
                    .hold(&key, a.component_access_token, a.expires_in, now)
                    .await;
                tracing::info!(component = %c.name, expires_in = a.expires_in, "component_access_token fetched");
                Ok(t)
            }
            Err(e) => {
                if matches!(
                    e.errcode(),
                    Some(ErrCode::ComponentTicketExpired | ErrCode::ComponentTicketInvalid)
                ) {
                    let _ = self.start_push_ticket(c).await;
                }
                Err(e)
            }
        }
    }

    /// Calls an open-platform endpoint with the component token. A token error (40001,
    /// 40014, 42001) drops the stored token if it is still the one sent
    /// (compare-and-refresh: a storm of such errors across the fleet costs one fetch) and
    /// retries once with a fresh one.
    pub async fn call<E: wxgate_proto::api::WithComponentAccessToken>(
        &self,
        c: &Component,
        req: &E,
        now: i64,
    ) -> Result<E::Answer> {
        let (token, _) = self.component_access_token(c, now).await?;
        match self
            .upstream
            .call_with_component_access_token(req, &token)
            .await
        {
            Err(e)
                if e.errcode()
                    .is_some_and(|code| code.is_access_token_invalid()) =>
            {
                self.drop_if_still(&keys::component_token(&c.name), &token)
                    .await?;
                if c.token.load().as_ref().is_some_and(|t| t.value == token) {
                    c.token.store(None);
                }
                tracing::info!(component = %c.name, endpoint = E::PATH, "component token refused; refreshing once");
                let (fresh, _) = self.component_access_token(c, now).await?;
                self.upstream
                    .call_with_component_access_token(req, &fresh)
                    .await
            }
            other => other,
        }
    }

    /// Exchanges an authorization code once for the whole fleet: the first to claim it
    /// calls `api_query_auth` and stores the authorizer; a second arrival of the same
    /// code (the redirect and the `authorized` event, on two instances) waits for that
    /// and reads the result. An unknown, used or expired code is WeChat's error.
    pub async fn exchange_code(&self, c: &Component, code: &str, now: i64) -> Result<Authorizer> {
        let digest = crate::util::hmac_hex(c.cfg.component_appid.as_bytes(), &[code.as_bytes()]);
        let claim = keys::component_auth_code(&c.name, &digest[..32]);
        let pending = format!("pending:{}", self.owner);
        for _ in 0..100 {
            if self
                .store
                .set_if_absent(&claim, &pending, Duration::from_secs(30))
                .await?
            {
                let result = self.query_auth(c, code, now).await;
                match &result {
                    Ok(a) => {
                        let done = format!("done:{}", a.authorizer_appid);
                        let _ = self
                            .store
                            .set(&claim, &done, Some(Duration::from_secs(3600)))
                            .await;
                    }
                    Err(_) => {
                        let _ = self.store.compare_and_delete(&claim, &pending).await;
                    }
                }
                return result;
            }
            match self.store.get(&claim).await? {
                Some(v) if v.starts_with("done:") => {
                    let appid = &v["done:".len()..];
                    return self
                        .authorizer(c, appid)
                        .await?
                        .ok_or_else(|| Error::Config(format!("authorizer {appid} vanished")));
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        Err(Error::LockTimeout(format!(
            "component {} authorization code",
            c.name
        )))
    }

    async fn query_auth(&self, c: &Component, code: &str, now: i64) -> Result<Authorizer> {
        let req = QueryAuth {
            component_appid: c.cfg.component_appid.clone(),
            authorization_code: code.into(),
        };
        let info: AuthorizationInfo = self.call(c, &req, now).await?.authorization_info;
        let a = Authorizer {
            authorizer_appid: info.authorizer_appid,
            refresh_token: info.authorizer_refresh_token,
            func_info: info.func_info,
            authorized_at: now,
            needs_reauthorization: false,
        };
        self.save_authorizer(c, &a).await?;
        // The exchange hands out the authorizer's first token too: kept, not fetched again.
        self.store_authorizer_token(
            c,
            &a.authorizer_appid,
            info.authorizer_access_token,
            info.expires_in,
            now,
        )
        .await;
        tracing::info!(component = %c.name, authorizer = %a.authorizer_appid, "authorized");
        Ok(a)
    }

    /// Stores an authorizer's token for the fleet and schedules its refresh at a random
    /// moment of the last [`REFRESH_MARGIN`] seconds before the final minute, so that
    /// authorizers authorized together come due apart.
    async fn store_authorizer_token(
        &self,
        c: &Component,
        appid: &str,
        value: String,
        expires_in: i64,
        now: i64,
    ) -> StoredToken {
        let key = keys::component_authorizer_token(&c.name, appid);
        self.keep_for_fleet(c, &key, appid, value, expires_in, now)
            .await
    }

    /// Stores a credential of an authorizer's under `key` for the fleet, and schedules
    /// its refresh (`due_member` in the due index) at a random moment of the last
    /// [`REFRESH_MARGIN`] seconds before its final minute.
    async fn keep_for_fleet(
        &self,
        c: &Component,
        key: &str,
        due_member: &str,
        value: String,
        expires_in: i64,
        now: i64,
    ) -> StoredToken {
        let t = self.hold(key, value, expires_in, now).await;
        let margin = REFRESH_MARGIN / 2 + rand::random::<i64>().rem_euclid(REFRESH_MARGIN / 2 + 1);
        let refresh_at = (t.expires_at - margin).max(now + 1);
        let _ = self
            .store
            .index_put(
                &keys::component_authorizer_tokens_due(&c.name),
                due_member,
                refresh_at,
            )
            .await;
        t
    }

    /// Stores a token or ticket under `key` for the fleet until its last minute.
    async fn hold(&self, key: &str, value: String, expires_in: i64, now: i64) -> StoredToken {
        let t = StoredToken {
            value,
            expires_at: now + expires_in,
        };
        let ttl = Duration::from_secs((expires_in - TOKEN_MARGIN).max(1) as u64);
        let _ = self
            .store
            .set(
                key,
                &serde_json::to_string(&t).unwrap_or_default(),
                Some(ttl),
            )
            .await;
        t
    }

    /// One round of the refresher: the component token when it is within
    /// [`REFRESH_MARGIN`] of its end, then the authorizer tokens that came due, at most
    /// `limit`, eight at a time, each under the fleet's lock (an instance already on it is
    /// left to it). How many authorizer tokens were refreshed.
    pub async fn refresh_due(&self, c: &Component, now: i64, limit: usize) -> usize {
        let token_key = keys::component_token(&c.name);
        let ticket_held = self.ticket(c).await.ok().flatten().is_some();
        if ticket_held && self.still_due(&token_key, now).await {
            let lock = keys::component_token_lock(&c.name);
            if self
                .store
                .set_if_absent(&lock, &self.owner, Duration::from_secs(10))
                .await
                .unwrap_or(false)
            {
                // Read again under the lock: another instance may have refreshed it
                // between the read above and its release of the lock.
                if self.still_due(&token_key, now).await {
                    if let Ok(t) = self.fetch_token(c, now).await {
                        c.token.store(Some(Arc::new(t)));
                    }
                }
                let _ = self.store.compare_and_delete(&lock, &self.owner).await;
            }
        }
        let due_index = keys::component_authorizer_tokens_due(&c.name);
        let due = self
            .store
            .index_due(&due_index, now, limit)
            .await
            .unwrap_or_default();
        let refreshed = futures_util::stream::iter(due)
            .map(|(appid, _)| {
                let due_index = &due_index;
                async move {
                // A member is an appid (its access_token) or `ticket:TYPE:APPID`.
                let ticket = appid.strip_prefix(acting::TICKET_MEMBER).and_then(|r| r.split_once(':'));
                let (key, lock) = match ticket {
                    Some((kind, id)) => (
                        keys::component_authorizer_ticket(&c.name, id, kind),
                        keys::component_authorizer_ticket_lock(&c.name, id, kind),
                    ),
                    None => (
                        keys::component_authorizer_token(&c.name, &appid),
                        keys::component_authorizer_token_lock(&c.name, &appid),
                    ),
                };
                if !self.store.set_if_absent(&lock, &self.owner, Duration::from_secs(10)).await.unwrap_or(false) {
                    return false;
                }
                // The index was read before the lock: another instance may have
                // refreshed this one since.
                if !self.still_due(&key, now).await {
                    let _ = self.store.compare_and_delete(&lock, &self.owner).await;
                    return false;
                }
                let done = match ticket {
                    Some((kind, id)) => self.fetch_authorizer_ticket(c, id, kind, now).await.map(drop),
                    None => self.fetch_authorizer_token(c, &appid, now).await.map(drop),
                };
                let _ = self.store.compare_and_delete(&lock, &self.owner).await;
                match done {
                    Ok(_) => true,
                    Err(e) => {
                        // Not retried every round: the next try comes with the next token ask.
                        let _ = self.store.index_remove(due_index, &appid).await;
                        crate::sampled_warn!("component_refresh", component = %c.name, authorizer = %appid, error = %e, "authorizer token not refreshed");
                        false
                    }
                }
                }
            })
            .buffer_unordered(8)
            .filter(|ok| std::future::ready(*ok))
            .count()
            .await;
        refreshed
    }

    /// Whether the fleet's value under `key` is missing or within [`REFRESH_MARGIN`] of
    /// its end (a store that cannot answer: not due, the next round asks again).
    async fn still_due(&self, key: &str, now: i64) -> bool {
        match self.store.get(key).await {
            Ok(v) => parse::<StoredToken>(v).is_none_or(|t| t.expires_at - now <= REFRESH_MARGIN),
            Err(_) => false,
        }
    }

    /// Stores an authorizer without a TTL: its refresh token is the only way to act for
    /// the merchant.
    pub async fn save_authorizer(&self, c: &Component, a: &Authorizer) -> Result<()> {
        let key = keys::component_authorizer(&c.name, &a.authorizer_appid);
        self.store
            .set(&key, &serde_json::to_string(a).unwrap_or_default(), None)
            .await?;
        let index = keys::component_authorizers(&c.name);
        self.store
            .index_put(&index, &a.authorizer_appid, a.authorized_at)
            .await?;
        let reauthorize = keys::component_authorizers_reauthorize(&c.name);
        if a.needs_reauthorization {
            self.store
                .index_put(&reauthorize, &a.authorizer_appid, a.authorized_at)
                .await
        } else {
            self.store
                .index_remove(&reauthorize, &a.authorizer_appid)
                .await
        }
    }

    /// Every authorizer the fleet holds.
    pub async fn authorizers(&self, c: &Component) -> Result<Vec<Authorizer>> {
        let index = keys::component_authorizers(&c.name);
        let mut out = Vec::new();
        for (appid, _) in self.store.index_due(&index, i64::MAX, 1_000_000).await? {
            if let Some(a) = self.authorizer(c, &appid).await? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Recovers refresh tokens from WeChat's own list (`api_get_authorizer_list`): an
    /// authorizer missing here, or held with another refresh token, is written as WeChat
    /// lists it (its re-authorization flag cleared). How many were recovered.
    pub async fn reconcile(&self, c: &Component, now: i64) -> Result<usize> {
        let mut offset = 0;
        let mut recovered = 0;
        loop {
            let req = wxgate_proto::api::component::GetAuthorizerList {
                component_appid: c.cfg.component_appid.clone(),
                offset,
                count: 500,
            };
            let page = self.call(c, &req, now).await?;
            for e in &page.list {
                let held = self.authorizer(c, &e.authorizer_appid).await?;
                if held
                    .as_ref()
                    .is_some_and(|h| h.refresh_token == e.refresh_token && !h.needs_reauthorization)
                {
                    continue;
                }
                let a = Authorizer {
                    authorizer_appid: e.authorizer_appid.clone(),
                    refresh_token: e.refresh_token.clone(),
                    func_info: held.map(|h| h.func_info).unwrap_or_default(),
                    authorized_at: if e.auth_time > 0 { e.auth_time } else { now },
                    needs_reauthorization: false,
                };
                self.save_authorizer(c, &a).await?;
                recovered += 1;
            }
            offset += page.list.len() as u32;
            if page.list.is_empty() || u64::from(offset) >= page.total_count {
                break;
            }
        }
        if recovered > 0 {
            tracing::info!(component = %c.name, recovered, "refresh tokens recovered from api_get_authorizer_list");
        }
        Ok(recovered)
    }

    pub async fn authorizer(&self, c: &Component, appid: &str) -> Result<Option<Authorizer>> {
        Ok(parse(
            self.store
                .get(&keys::component_authorizer(&c.name, appid))
                .await?,
        ))
    }

    /// An authorizer's access_token (the merchant's own, for acting on its account):
    /// the store's while it has more than a minute left, else one fetch for the fleet
    /// under the store's lock (`api_authorizer_token` with the stored refresh token). A
    /// refresh token WeChat hands back replaces the stored one; one it refuses (61023)
    /// marks the authorizer as needing re-authorization.
    pub async fn authorizer_access_token(
        &self,
        c: &Component,
        appid: &str,
        now: i64,
    ) -> Result<(String, i64)> {
        let t = self
            .held_or_fetched(
                &keys::component_authorizer_token(&c.name, appid),
                &keys::component_authorizer_token_lock(&c.name, appid),
                "authorizer access_token",
                now,
                || self.fetch_authorizer_token(c, appid, now),
            )
            .await?;
        Ok((t.value, t.expires_at - now))
    }

    /// A value the fleet keeps under `key` while it has more than [`TOKEN_MARGIN`]
    /// left, else fetched by one instance under `lock` while the others wait for it.
    async fn held_or_fetched<Fut>(
        &self,
        key: &str,
        lock: &str,
        what: &str,
        now: i64,
        fetch: impl Fn() -> Fut,
    ) -> Result<StoredToken>
    where
        Fut: std::future::Future<Output = Result<StoredToken>>,
    {
        let usable = |t: &StoredToken| t.expires_at - now > TOKEN_MARGIN;
        for _ in 0..100 {
            if let Some(t) = parse::<StoredToken>(self.store.get(key).await?).filter(usable) {
                return Ok(t);
            }
            if self
                .store
                .set_if_absent(lock, &self.owner, Duration::from_secs(10))
                .await?
            {
                // Read again under the lock: the holder before us may have stored it
                // between our read and its release.
                let fetched = match parse::<StoredToken>(self.store.get(key).await?).filter(usable)
                {
                    Some(t) => Ok(t),
                    None => fetch().await,
                };
                let _ = self.store.compare_and_delete(lock, &self.owner).await;
                return fetched;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(Error::LockTimeout(what.to_owned()))
    }

    async fn fetch_authorizer_token(
        &self,
        c: &Component,
        appid: &str,
        now: i64,
    ) -> Result<StoredToken> {
        let held = match self.authorizer(c, appid).await? {
            Some(a) => Some(a),
            // A refresh token missing here (a lost store, a move): WeChat's list has it,
            // if the merchant still authorizes the platform.
            None => {
                if let Err(e) = self.reconcile(c, now).await {
                    tracing::warn!(component = %c.name, error = %e, "api_get_authorizer_list failed");
                }
                self.authorizer(c, appid).await?
            }
        };
        let Some(mut a) = held else {
            return Err(Error::UnknownAccount(format!(
                "{}:{appid} (not an authorizer of this platform)",
                c.name
            )));
        };
        if a.needs_reauthorization {
            return Err(Error::WeChat {
                endpoint: <wxgate_proto::api::component::AuthorizerToken as wxgate_proto::api::Endpoint>::PATH.into(),
                code: ErrCode::RefreshTokenInvalid,
                errmsg: "wxgate: the merchant must authorize again (its refresh token was refused)"
                    .into(),
            });
        }
        let req = wxgate_proto::api::component::AuthorizerToken {
            component_appid: c.cfg.component_appid.clone(),
            authorizer_appid: appid.into(),
            authorizer_refresh_token: a.refresh_token.clone(),
        };
        match self.call(c, &req, now).await {
            Ok(answer) => {
                if answer.authorizer_refresh_token != a.refresh_token {
                    a.refresh_token = answer.authorizer_refresh_token.clone();
                    self.save_authorizer(c, &a).await?;
                }
                Ok(self
                    .store_authorizer_token(
                        c,
                        appid,
                        answer.authorizer_access_token,
                        answer.expires_in,
                        now,
                    )
                    .await)
            }
            Err(e) => {
                if e.errcode() == Some(ErrCode::RefreshTokenInvalid) {
                    // WeChat's list may hold a newer refresh token than this one.
                    if self.reconcile(c, now).await.unwrap_or(0) > 0 {
                        if let Some(fresh) = self.authorizer(c, appid).await? {
                            if fresh.refresh_token != a.refresh_token {
                                return Box::pin(self.fetch_authorizer_token(c, appid, now)).await;
                            }
                        }
                    }
                    a.needs_reauthorization = true;
                    let _ = self.save_authorizer(c, &a).await;
                    tracing::warn!(component = %c.name, authorizer = appid, "refresh token refused: the merchant must authorize again");
                }
                Err(e)
            }
        }
    }

    /// For the console: each component's ticket age, whether its token is held (read
    /// from the store, never fetched for this), and its authorizers by state with their
    /// permission sets and token life (at most 50 listed). The counts come from the
    /// indexes, so a console open on thousands of authorizers reads 50 of them a refresh.
    pub async fn overview(&self, now: i64) -> serde_json::Value {
        let members = |index: String| async move {
            self.store
                .index_due(&index, i64::MAX, 1_000_000)
                .await
                .unwrap_or_default()
        };
        let mut out = Vec::new();
        for c in self.components.values() {
            let ticket = self.ticket(c).await.ok().flatten();
            let token: Option<StoredToken> = parse(
                self.store
                    .get(&keys::component_token(&c.name))
                    .await
                    .ok()
                    .flatten(),
            );
            let all = members(keys::component_authorizers(&c.name)).await;
            let needing = members(keys::component_authorizers_reauthorize(&c.name))
                .await
                .len();
            let mut listed = Vec::new();
            for (appid, _) in all.iter().take(50) {
                let Ok(Some(a)) = self.authorizer(c, appid).await else {
                    continue;
                };
                let held: Option<StoredToken> = parse(
                    self.store
                        .get(&keys::component_authorizer_token(
                            &c.name,
                            &a.authorizer_appid,
                        ))
                        .await
                        .ok()
                        .flatten(),
                );
                let scopes: Vec<_> = a
                    .func_info
                    .iter()
                    .filter_map(|f| {
                        f.pointer("/funcscope_category/id")
                            .and_then(serde_json::Value::as_i64)
                    })
                    .collect();
                listed.push(serde_json::json!({
                    "appid": a.authorizer_appid,
                    "state": if a.needs_reauthorization { "needs_reauthorization" } else { "ok" },
                    "func_info": scopes,
                    "authorized_at": a.authorized_at,
                    "token_expires_in": held.map(|t| t.expires_at - now),
                }));
            }
            out.push(serde_json::json!({
                "name": c.name,
                "component_appid": c.cfg.component_appid,
                "ticket_age_secs": ticket.map(|t| now - t.received_at),
                "component_access_token_expires_in": token.map(|t| t.expires_at - now),
                "authorizers": { "ok": all.len().saturating_sub(needing), "needs_reauthorization": needing },
                "listed": listed,
            }));
        }
        serde_json::Value::Array(out)
    }

    /// A typed call made as an authorizer (with its access_token); a token error drops
    /// the token if the fleet still holds it and retries once with a fresh one
    /// (compare-and-refresh): what the release test, the customer-service replies to its
    /// users and its tickets go through.
    pub async fn call_as<E: wxgate_proto::api::WithAccessToken>(
        &self,
        c: &Component,
        appid: &str,
        req: &E,
        now: i64,
    ) -> Result<E::Answer> {
        let (token, _) = self.authorizer_access_token(c, appid, now).await?;
        match self.upstream.call_with_access_token(req, &token).await {
            Err(e)
                if e.errcode()
                    .is_some_and(|code| code.is_access_token_invalid()) =>
            {
                match self.replace_authorizer_token(c, appid, &token, now).await? {
                    Some(fresh) => self.upstream.call_with_access_token(req, &fresh).await,
                    None => Err(e),
                }
            }
            answer => answer,
        }
    }

    /// WeChat refused `sent` as an authorizer's token: drop it if the store still holds
    /// it (another instance may have replaced it already) and get the current one.
    /// `None` when that is `sent` again (nothing to retry with).
    async fn replace_authorizer_token(
        &self,
        c: &Component,
        appid: &str,
        sent: &str,
        now: i64,
    ) -> Result<Option<String>> {
        self.drop_if_still(&keys::component_authorizer_token(&c.name, appid), sent)
            .await?;
        let (fresh, _) = self.authorizer_access_token(c, appid, now).await?;
        Ok((fresh != sent).then_some(fresh))
    }

    /// `component:appid` as an account name: the component and the authorizer's appid.
    pub fn split_account<'a>(&'a self, account: &'a str) -> Option<(&'a Component, &'a str)> {
        let (name, appid) = account.split_once(':')?;
        Some((self.component(name)?, appid))
    }

    /// `unauthorized`: the merchant withdrew; its record goes.
    pub async fn remove_authorizer(&self, c: &Component, appid: &str) -> Result<()> {
        let token = keys::component_authorizer_token(&c.name, appid);
        let _ = self.store.delete(&token).await;
        for kind in acting::TICKET_TYPES {
            let _ = self
                .store
                .delete(&keys::component_authorizer_ticket(&c.name, appid, kind))
                .await;
        }
        let index = keys::component_authorizers(&c.name);
        self.store.index_remove(&index, appid).await?;
        let _ = self
            .store
            .index_remove(&keys::component_authorizers_reauthorize(&c.name), appid)
            .await;
        let _ = self
            .store
            .index_remove(&keys::component_authorizer_tokens_due(&c.name), appid)
            .await;
        self.store
            .delete(&keys::component_authorizer(&c.name, appid))
            .await
            .map(drop)
    }
}
