//! The open platform's component (第三方平台): the `component_verify_ticket` WeChat
//! pushes it every 10 minutes (each valid 12 hours) and its `component_access_token`
//! (`/cgi-bin/component/api_component_token`), with WeChat's errcodes: 61011 for an
//! appid that is not a component, 40125 for a wrong secret, 61006 for a ticket WeChat
//! did not issue to it, 61005 for one past its 12 hours, 45009 past the daily quota.

use wxgate_proto::ErrCode;

use super::{random_value, Grant, Issued, Platform, WxError, WxResult};
use crate::config::AppKind;

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
}
