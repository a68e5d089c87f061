//! Acting for authorized merchants (代公众号 / 代小程序). The component answers the
//! central control for the accounts `{component}:{appid}` (it is their
//! [`Delegate`]): their access_token and tickets, kept for the fleet as the component's
//! own token is (one fetch under the store's lock, refreshed ahead by the keeper,
//! compare-and-refresh); the code exchanges of web authorization and of the Mini
//! Program's login, made with the component's token; and whether a route may act for a
//! merchant at all: authorized and not withdrawn, not needing re-authorization, and the
//! permission set (权限集, `func_info`) the route needs granted. A refusal names what is
//! missing and where to send the merchant, not a WeChat errcode.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use wxgate_proto::api::on_behalf::{
    ComponentJsCode2Session, ComponentOauthAccessToken, ComponentOauthRefreshToken,
};
use wxgate_proto::api::sns::{MiniProgramSession, UserToken};
use wxgate_proto::api::ticket::GetTicket;
use wxgate_proto::api::WithComponentAccessToken;

use super::{service::plain_appid, Component, ComponentService, StoredToken, REFRESH_MARGIN};
use crate::clock::Clock;
use crate::config::{AccountConfig, AccountKind};
use crate::credentials::delegate::{Delegate, Purpose};
use crate::credentials::{Credential, Kind};
use crate::error::{Error, Result};
use crate::store::keys;

/// The ticket types kept for authorizers (`getticket?type=`).
pub const TICKET_TYPES: [&str; 2] = ["jsapi", "wx_card"];
/// How a ticket is named in the due index (`ticket:TYPE:APPID`), beside the appids
/// that stand for access_tokens.
pub const TICKET_MEMBER: &str = "ticket:";

/// 网页服务权限: what JS-SDK and web authorization on an Official Account's behalf need.
pub const WEB_SERVICE_FUNCSCOPE: i64 = 4;

impl ComponentService {
    /// An authorizer's ticket of `ticket_type` (`jsapi`, `wx_card`), fetched with its
    /// access_token once for the fleet.
    pub(crate) async fn authorizer_ticket(
        &self,
        c: &Component,
        appid: &str,
        ticket_type: &str,
        now: i64,
    ) -> Result<StoredToken> {
        self.held_or_fetched(
            &keys::component_authorizer_ticket(&c.name, appid, ticket_type),
            &keys::component_authorizer_ticket_lock(&c.name, appid, ticket_type),
            "authorizer ticket",
            now,
            || self.fetch_authorizer_ticket(c, appid, ticket_type, now),
        )
        .await
    }

    pub(super) async fn fetch_authorizer_ticket(
        &self,
        c: &Component,
        appid: &str,
        ticket_type: &str,
        now: i64,
    ) -> Result<StoredToken> {
        let req = GetTicket {
            ticket_type: ticket_type.to_owned(),
        };
        let t = self.call_as(c, appid, &req, now).await?;
        let key = keys::component_authorizer_ticket(&c.name, appid, ticket_type);
        let member = format!("{TICKET_MEMBER}{ticket_type}:{appid}");
        Ok(self
            .keep_for_fleet(c, &key, &member, t.ticket, t.expires_in, now)
            .await)
    }

    /// Drops the fleet's `key` if it still holds `stale` (another instance may have
    /// replaced it already).
    pub(super) async fn drop_if_still(&self, key: &str, stale: &str) -> Result<()> {
        if let Some(v) = self.store.get(key).await? {
            if super::parse::<StoredToken>(Some(v.clone())).is_some_and(|t| t.value == stale) {
                let _ = self.store.compare_and_delete(key, &v).await;
            }
        }
        Ok(())
    }

    /// The component and the authorizer's appid an account name stands for.
    fn named<'a>(&'a self, name: &'a str) -> Result<(&'a Component, &'a str)> {
        match self.split_account(name) {
            Some((c, appid)) if plain_appid(appid) => Ok((c, appid)),
            _ => Err(Error::UnknownAccount(name.to_owned())),
        }
    }

    /// Whether the component may act for `appid` for `purpose`, and the account it acts
    /// as.
    pub async fn acting_account(
        &self,
        c: &Component,
        appid: &str,
        purpose: Purpose,
    ) -> Result<AccountConfig> {
        let link = format!("/wx/component/{}/authorize", c.name);
        let Some(a) = self.authorizer(c, appid).await? else {
            return Err(Error::NotAuthorized(format!(
                "{appid} has not authorized the platform {} (or withdrew): send the merchant to {link}",
                c.name
            )));
        };
        if a.needs_reauthorization {
            return Err(Error::NotAuthorized(format!(
                "{appid} must authorize the platform {} again (WeChat refused its refresh token): send the merchant to {link}",
                c.name
            )));
        }
        let needs = match purpose {
            Purpose::JsSdk => Some("JS-SDK"),
            Purpose::WebAuthorization => Some("web authorization"),
            Purpose::MiniProgram => None,
        };
        if let Some(what) = needs {
            let granted = a.func_info.iter().any(|f| {
                f.pointer("/funcscope_category/id")
                    .and_then(serde_json::Value::as_i64)
                    == Some(WEB_SERVICE_FUNCSCOPE)
            });
            if !granted {
                return Err(Error::NotAuthorized(format!(
                    "{appid} did not grant the platform {} the permission set 网页服务权限 (func_info id {WEB_SERVICE_FUNCSCOPE}), which {what} on its behalf needs: ask the merchant to authorize again with it ({link})",
                    c.name
                )));
            }
        }
        let kind = match purpose {
            Purpose::MiniProgram => AccountKind::MiniProgram,
            _ => AccountKind::Official,
        };
        Ok(AccountConfig::for_authorizer(appid, kind, &c.cfg))
    }
}

/// The component service as the central control's [`Delegate`].
pub struct Acting {
    pub components: Arc<ComponentService>,
    pub clock: Clock,
}

fn credential(t: StoredToken, now: i64) -> Credential {
    Credential {
        refresh_at: t.expires_at - REFRESH_MARGIN,
        value: t.value,
        expires_at: t.expires_at,
        fetched_at: now,
    }
}

impl Acting {
    async fn credential_of(&self, name: &str, kind: Kind, now: i64) -> Result<Credential> {
        let (c, appid) = self.components.named(name)?;
        let held = match kind.ticket_type() {
            None => {
                let (value, expires_in) = self
                    .components
                    .authorizer_access_token(c, appid, now)
                    .await?;
                StoredToken {
                    value,
                    expires_at: now + expires_in,
                }
            }
            Some(t) => self.components.authorizer_ticket(c, appid, t, now).await?,
        };
        Ok(credential(held, now))
    }

    /// A call made with the component's token for the merchant `name`: the request built
    /// from the merchant's appid and the component's.
    async fn on_behalf<E: WithComponentAccessToken>(
        &self,
        name: &str,
        request: impl FnOnce(&str, &str) -> E,
    ) -> Result<E::Answer> {
        let (c, appid) = self.components.named(name)?;
        let req = request(appid, &c.cfg.component_appid);
        self.components.call(c, &req, self.clock.now()).await
    }
}

impl Delegate for Acting {
    fn account<'a>(
        &'a self,
        name: &'a str,
        purpose: Purpose,
    ) -> BoxFuture<'a, Result<AccountConfig>> {
        Box::pin(async move {
            let (c, appid) = self.components.named(name)?;
            self.components.acting_account(c, appid, purpose).await
        })
    }

    fn credential<'a>(&'a self, name: &'a str, kind: Kind) -> BoxFuture<'a, Result<Credential>> {
        Box::pin(self.credential_of(name, kind, self.clock.now()))
    }

    fn refresh_stale<'a>(
        &'a self,
        name: &'a str,
        kind: Kind,
        stale: &'a str,
    ) -> BoxFuture<'a, Result<Credential>> {
        Box::pin(async move {
            let (c, appid) = self.components.named(name)?;
            let key = match kind.ticket_type() {
                None => keys::component_authorizer_token(&c.name, appid),
                Some(t) => keys::component_authorizer_ticket(&c.name, appid, t),
            };
            self.components.drop_if_still(&key, stale).await?;
            self.credential_of(name, kind, self.clock.now()).await
        })
    }

    fn oauth_access_token<'a>(
        &'a self,
        name: &'a str,
        code: &'a str,
    ) -> BoxFuture<'a, Result<UserToken>> {
        Box::pin(self.on_behalf(name, |appid, component| {
            ComponentOauthAccessToken::new(appid, code, component)
        }))
    }

    fn oauth_refresh_token<'a>(
        &'a self,
        name: &'a str,
        refresh_token: &'a str,
    ) -> BoxFuture<'a, Result<UserToken>> {
        Box::pin(self.on_behalf(name, |appid, component| {
            ComponentOauthRefreshToken::new(appid, refresh_token, component)
        }))
    }

    fn jscode2session<'a>(
        &'a self,
        name: &'a str,
        js_code: &'a str,
    ) -> BoxFuture<'a, Result<MiniProgramSession>> {
        Box::pin(self.on_behalf(name, |appid, component| {
            ComponentJsCode2Session::new(appid, js_code, component)
        }))
    }
}
