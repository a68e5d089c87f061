//! The open platform's component (第三方平台): the `component_verify_ticket` WeChat
//! pushes it every 10 minutes (each valid 12 hours) and its `component_access_token`
//! (`/cgi-bin/component/api_component_token`), with WeChat's errcodes: 61011 for an
//! appid that is not a component, 40125 for a wrong secret, 61006 for a ticket WeChat
//! did not issue to it, 61005 for one past its 12 hours, 45009 past the daily quota.

use wxgate_proto::ErrCode;

use super::{random_value, Grant, Issued, Platform, WxError, WxResult};
use crate::config::AppKind;

/// An authorization code's life (WeChat: one hour).
const AUTH_CODE_TTL: i64 = 3600;

/// A push due to a component's authorization-event URL: the decrypted XML, to be sealed
/// for it.
#[derive(Debug, Clone)]
pub struct ComponentPushDue {
    pub component_appid: String,
    pub url: String,
    pub xml: String,
}

/// How often WeChat pushes a new verify ticket, and how long each is accepted.
pub const TICKET_EVERY: i64 = 600;
pub const TICKET_VALID: i64 = 12 * 3600;

impl Platform {
    fn component(&self, appid: &str) -> WxResult<()> {
        match self.app(appid) {
            Ok(app) if app.kind == AppKind::Component => Ok(()),
            _ => Err(WxError::new(ErrCode::InvalidComponent)),
        }
    }

    /// The component's newest verify ticket: a new one once the newest is
    /// [`TICKET_EVERY`] old, as WeChat's pushes bring them. Older ones stay accepted for
    /// their 12 hours.
    pub fn component_verify_ticket(&self, component_appid: &str) -> WxResult<String> {
        self.component(component_appid)?;
        let now = self.now();
        let mut s = self.lock();
        let tickets = &mut s
            .apps
            .entry(component_appid.to_owned())
            .or_default()
            .component_tickets;
        match tickets.last() {
            Some((value, at)) if now - at < TICKET_EVERY => Ok(value.clone()),
            _ => {
                tickets.retain(|(_, at)| now - at < TICKET_VALID);
                let value = random_value("ticket@@@", 86);
                tickets.push((value.clone(), now));
                Ok(value)
            }
        }
    }

    /// `POST /cgi-bin/component/api_component_token`: a new token each call (the
    /// previous keeps working for the overlap, as an app's classic token does), from the
    /// component's secret and a ticket it was pushed.
    pub fn component_token(&self, appid: &str, secret: &str, ticket: &str) -> WxResult<Grant> {
        self.component(appid)?;
        self.authenticate(appid, secret, ErrCode::InvalidAppSecret)?;
        let now = self.now();
        let limits = &self.config.limits;
        let mut s = self.lock();
        let st = s.apps.entry(appid.to_owned()).or_default();
        let pushed = st
            .component_tickets
            .iter()
            .find(|(value, _)| !ticket.is_empty() && value == ticket)
            .map(|(_, at)| *at);
        match pushed {
            None => return Err(WxError::new(ErrCode::ComponentTicketInvalid)),
            Some(at) if now - at >= TICKET_VALID => {
                return Err(WxError::new(ErrCode::ComponentTicketExpired))
            }
            Some(_) => {}
        }
        if !st
            .classic_daily
            .take(now.div_euclid(86400), limits.token_daily_quota)
        {
            return Err(WxError::new(ErrCode::ApiDailyQuota));
        }
        let previous = st.classic.take();
        let value = random_value("SBXCAT", 96);
        st.classic = Some(value.clone());
        if let Some(t) = previous.and_then(|p| s.component_tokens.get_mut(&p)) {
            t.revoked_at = Some(now + limits.token_overlap);
        }
        s.component_tokens.insert(
            value.clone(),
            Issued {
                appid: appid.to_owned(),
                expires_at: now + limits.token_ttl,
                revoked_at: None,
            },
        );
        Ok(Grant {
            value,
            expires_in: limits.token_ttl,
        })
    }

    /// Where the component's pushes go (its authorization-event URL).
    pub fn set_event_url(&self, component_appid: &str, url: &str) -> WxResult<()> {
        self.component(component_appid)?;
        self.lock()
            .apps
            .entry(component_appid.to_owned())
            .or_default()
            .component_event_url = Some(url.into());
        Ok(())
    }

    /// `POST /cgi-bin/component/api_start_push_ticket`: a ticket push soon.
    pub fn start_push_ticket(&self, component_appid: &str, secret: &str) -> WxResult<()> {
        self.component(component_appid)?;
        self.authenticate(component_appid, secret, ErrCode::InvalidAppSecret)?;
        self.lock()
            .apps
            .entry(component_appid.to_owned())
            .or_default()
            .component_push_asked = true;
        Ok(())
    }

    /// What is due to the components' URLs now: a ticket every 10 minutes (or when one
    /// was asked for), and queued events.
    pub fn component_pushes_due(&self, now: i64) -> Vec<ComponentPushDue> {
        let components: Vec<String> = self
            .config
            .apps
            .iter()
            .filter(|a| a.kind == AppKind::Component)
            .map(|a| a.appid.clone())
            .collect();
        let mut due = Vec::new();
        for appid in components {
            let (url, asked, newest) = {
                let s = self.lock();
                let Some(st) = s.apps.get(&appid) else {
                    continue;
                };
                let Some(url) = st.component_event_url.clone() else {
                    continue;
                };
                (
                    url,
                    st.component_push_asked,
                    st.component_tickets.last().map(|(_, at)| *at),
                )
            };
            if asked || newest.is_none_or(|at| now - at >= TICKET_EVERY) {
                let ticket = {
                    let mut s = self.lock();
                    let st = s.apps.entry(appid.clone()).or_default();
                    st.component_push_asked = false;
                    st.component_tickets
                        .retain(|(_, at)| now - at < TICKET_VALID);
                    let ticket = random_value("ticket@@@", 86);
                    st.component_tickets.push((ticket.clone(), now));
                    ticket
                };
                due.push(ComponentPushDue {
                    component_appid: appid.clone(),
                    url: url.clone(),
                    xml: format!("<xml><AppId><![CDATA[{appid}]]></AppId><CreateTime>{now}</CreateTime><InfoType><![CDATA[component_verify_ticket]]></InfoType><ComponentVerifyTicket><![CDATA[{ticket}]]></ComponentVerifyTicket></xml>"),
                });
            }
            let events = std::mem::take(
                &mut self
                    .lock()
                    .apps
                    .entry(appid.clone())
                    .or_default()
                    .component_events,
            );
            due.extend(events.into_iter().map(|xml| ComponentPushDue {
                component_appid: appid.clone(),
                url: url.clone(),
                xml,
            }));
        }
        due
    }

    /// A merchant authorizes the component for its account (the sandbox's consent): an
    /// authorization code, pushed to the component in an `authorized` event and given
    /// back (the merchant's redirect carries it too). `func_info`: the permission sets
    /// granted (权限集 ids), by default those of [`default_func_info`].
    pub fn authorize(
        &self,
        component_appid: &str,
        authorizer_appid: &str,
        func_info: Option<&[i64]>,
    ) -> WxResult<String> {
        self.component(component_appid)?;
        let authorizer = self.app(authorizer_appid)?;
        if authorizer.kind == AppKind::Component {
            return Err(WxError::with(
                ErrCode::InvalidAppId,
                "a component cannot authorize a component",
            ));
        }
        let granted = func_info
            .unwrap_or(default_func_info(authorizer.kind))
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let now = self.now();
        let mut s = self.lock();
        // The permission sets ride on the code, as the scope does on an OAuth code.
        let code = s.auth_codes.issue(
            "queryauthcode@@@",
            86,
            component_appid,
            authorizer_appid,
            &granted,
            now,
        );
        let pre = random_value("preauthcode@@@", 64);
        let xml = format!(
            "<xml><AppId><![CDATA[{component_appid}]]></AppId><CreateTime>{now}</CreateTime><InfoType><![CDATA[authorized]]></InfoType><AuthorizerAppid><![CDATA[{authorizer_appid}]]></AuthorizerAppid><AuthorizationCode><![CDATA[{code}]]></AuthorizationCode><AuthorizationCodeExpiredTime>{}</AuthorizationCodeExpiredTime><PreAuthCode><![CDATA[{pre}]]></PreAuthCode></xml>",
            now + AUTH_CODE_TTL
        );
        s.apps
            .entry(component_appid.to_owned())
            .or_default()
            .component_events
            .push(xml);
        Ok(code)
    }

    /// A merchant withdraws: its refresh token stops working, and the component is told.
    pub fn unauthorize(&self, component_appid: &str, authorizer_appid: &str) -> WxResult<()> {
        self.component(component_appid)?;
        let now = self.now();
        let mut s = self.lock();
        let st = s.apps.entry(component_appid.to_owned()).or_default();
        st.authorizer_refresh.remove(authorizer_appid);
        st.component_events.push(format!(
            "<xml><AppId><![CDATA[{component_appid}]]></AppId><CreateTime>{now}</CreateTime><InfoType><![CDATA[unauthorized]]></InfoType><AuthorizerAppid><![CDATA[{authorizer_appid}]]></AuthorizerAppid></xml>"
        ));
        Ok(())
    }

    /// The component an access token belongs to (40001/42001 as for app tokens).
    pub fn check_component_token(&self, token: &str) -> WxResult<String> {
        if token.is_empty() {
            return Err(WxError::with(
                ErrCode::AccessTokenMissing,
                "component_access_token missing",
            ));
        }
        let now = self.now();
        let s = self.lock();
        match s.component_tokens.get(token) {
            Some(t) if now < t.valid_until() => Ok(t.appid.clone()),
            Some(_) => Err(WxError::new(ErrCode::AccessTokenExpired)),
            None => Err(WxError::with(
                ErrCode::InvalidCredential,
                "invalid credential, component_access_token is invalid or not latest",
            )),
        }
    }

    /// `api_query_auth`: a code works once, for an hour, for its component; the
    /// authorizer gets an access token (usable on the app APIs, as WeChat's is) and a
    /// refresh token.
    pub fn query_auth(&self, component_appid: &str, code: &str) -> WxResult<serde_json::Value> {
        let now = self.now();
        let (authorizer, granted) = {
            let mut s = self.lock();
            let c = s
                .auth_codes
                .redeem(code, component_appid, now, AUTH_CODE_TTL)
                .map_err(|_| WxError::with(ErrCode::Other(61009), "code is invalid"))?;
            (c.openid, c.scope)
        };
        let func_info: Vec<serde_json::Value> = granted
            .split(',')
            .filter_map(|id| id.parse::<i64>().ok())
            .map(|id| serde_json::json!({ "funcscope_category": { "id": id } }))
            .collect();
        let (token, refresh) = {
            let mut s = self.lock();
            let value = random_value("SBXAUT", 96);
            s.tokens.insert(
                value.clone(),
                Issued {
                    appid: authorizer.clone(),
                    expires_at: now + self.config.limits.token_ttl,
                    revoked_at: None,
                },
            );
            let refresh = random_value("refreshtoken@@@", 64);
            s.apps
                .entry(component_appid.to_owned())
                .or_default()
                .authorizer_refresh
                .insert(authorizer.clone(), refresh.clone());
            (value, refresh)
        };
        Ok(serde_json::json!({ "authorization_info": {
            "authorizer_appid": authorizer,
            "authorizer_access_token": token,
            "expires_in": self.config.limits.token_ttl,
            "authorizer_refresh_token": refresh,
            "func_info": func_info,
        }}))
    }

    /// `api_create_preauthcode`: a pre-authorization code for the component's link, half
    /// an hour, one use.
    pub fn pre_auth_code(&self, component_appid: &str) -> String {
        let now = self.now();
        self.lock()
            .pre_auth_codes
            .issue("preauthcode@@@", 64, component_appid, "", "", now)
    }

    /// The merchant consents on the authorization page: the link's pre-authorization
    /// code is used up, and the authorization code is made (and pushed).
    pub fn consent(
        &self,
        component_appid: &str,
        pre_auth_code: &str,
        authorizer_appid: &str,
    ) -> WxResult<String> {
        let now = self.now();
        self.lock()
            .pre_auth_codes
            .redeem(pre_auth_code, component_appid, now, 1800)
            .map_err(|_| {
                WxError::with(
                    ErrCode::Other(61010),
                    "pre_auth_code is invalid, used or expired",
                )
            })?;
        self.authorize(component_appid, authorizer_appid, None)
    }

    /// Whether `authorizer_appid` has authorized the component (and not withdrawn): what
    /// WeChat checks before a call made for it with the component's token (61003).
    pub fn check_authorized(&self, component_appid: &str, authorizer_appid: &str) -> WxResult<()> {
        let s = self.lock();
        let authorized = s
            .apps
            .get(component_appid)
            .is_some_and(|st| st.authorizer_refresh.contains_key(authorizer_appid));
        if authorized {
            Ok(())
        } else {
            Err(WxError::with(
                ErrCode::Other(61003),
                "component is not authorized by this account",
            ))
        }
    }

    /// `api_authorizer_token`: a new access token for the authorizer, from the refresh
    /// token it was given (61023 for any other, or after `unauthorized`).
    pub fn authorizer_token(
        &self,
        component_appid: &str,
        authorizer_appid: &str,
        refresh_token: &str,
    ) -> WxResult<serde_json::Value> {
        let now = self.now();
        let mut s = self.lock();
        let known = s
            .apps
            .get(component_appid)
            .and_then(|st| st.authorizer_refresh.get(authorizer_appid))
            .is_some_and(|r| !refresh_token.is_empty() && r == refresh_token);
        if !known {
            return Err(WxError::new(ErrCode::RefreshTokenInvalid));
        }
        let value = random_value("SBXAUT", 96);
        s.tokens.insert(
            value.clone(),
            Issued {
                appid: authorizer_appid.to_owned(),
                expires_at: now + self.config.limits.token_ttl,
                revoked_at: None,
            },
        );
        Ok(serde_json::json!({
            "authorizer_access_token": value,
            "expires_in": self.config.limits.token_ttl,
            "authorizer_refresh_token": refresh_token,
        }))
    }

    /// `api_get_authorizer_list`: every authorizer of the component with its current
    /// refresh token, `count` (at most 500) from `offset`.
    pub fn authorizer_list(
        &self,
        component_appid: &str,
        offset: u32,
        count: u32,
    ) -> WxResult<serde_json::Value> {
        if count == 0 || count > 500 {
            return Err(WxError::with(
                ErrCode::InvalidParameter,
                "invalid args: count is 1 to 500",
            ));
        }
        let now = self.now();
        let s = self.lock();
        let mut all: Vec<(String, String)> = s
            .apps
            .get(component_appid)
            .map(|st| {
                st.authorizer_refresh
                    .iter()
                    .map(|(a, r)| (a.clone(), r.clone()))
                    .collect()
            })
            .unwrap_or_default();
        all.sort();
        let list: Vec<_> = all
            .iter()
            .skip(offset as usize)
            .take(count as usize)
            .map(|(a, r)| serde_json::json!({ "authorizer_appid": a, "refresh_token": r, "auth_time": now }))
            .collect();
        Ok(serde_json::json!({ "total_count": all.len(), "list": list }))
    }

    /// The authorizer's refresh token stops working without an event (as one WeChat
    /// expired would): for tests of re-authorization.
    pub fn forget_authorizer(&self, component_appid: &str, authorizer_appid: &str) -> WxResult<()> {
        self.component(component_appid)?;
        if let Some(st) = self.lock().apps.get_mut(component_appid) {
            st.authorizer_refresh.remove(authorizer_appid);
        }
        Ok(())
    }
}

/// The permission sets a merchant grants in the sandbox unless told otherwise: for an
/// Official Account 消息管理 (1), 网页服务 (4: JS-SDK and web authorization) and 自定义菜单
/// (15); for a Mini Program 帐号管理 (17), 开发管理与数据分析 (18), 客服消息管理 (19) and
/// 微信登录 (20).
pub fn default_func_info(kind: AppKind) -> &'static [i64] {
    match kind {
        AppKind::MiniProgram => &[17, 18, 19, 20],
        _ => &[1, 4, 15],
    }
}
