//! JS-SDK tickets (`/cgi-bin/ticket/getticket`): `jsapi` and `wx_card`, one per app and
//! kind until it expires.

use wxgate_proto::ErrCode;

use super::{random_value, Grant, Platform, WxError, WxResult};

impl Platform {
    /// `GET /cgi-bin/ticket/getticket`: the current ticket of that type while it has more
    /// than the overlap left, else a new one (the previous stays valid until its expiry).
    pub fn ticket_for(&self, appid: &str, kind: &str) -> WxResult<Grant> {
        if kind != "jsapi" && kind != "wx_card" {
            return Err(WxError::with(
                ErrCode::InvalidParameter,
                "invalid args: type must be jsapi or wx_card",
            ));
        }
        let now = self.now();
        let limits = &self.config.limits;
        let mut s = self.lock();
        let st = s.apps.entry(appid.to_owned()).or_default();
        if let Some((v, exp)) = st.tickets.get(kind) {
            if exp - now > limits.token_overlap {
                return Ok(Grant {
                    value: v.clone(),
                    expires_in: exp - now,
                });
            }
        }
        let prefix = if kind == "jsapi" { "SBXJT" } else { "SBXCT" };
        let value = random_value(prefix, 80);
        let expires_at = now + limits.token_ttl;
        // Keep the superseded ticket findable for the JS-SDK check until it expires.
        if let Some(old) = st
            .tickets
            .insert(kind.to_owned(), (value.clone(), expires_at))
        {
            st.tickets.insert(format!("{kind}:previous"), old);
        }
        Ok(Grant {
            value,
            expires_in: limits.token_ttl,
        })
    }

    /// Tickets of the type that WeChat would accept now (current and superseded).
    pub fn valid_tickets(&self, appid: &str, kind: &str) -> Vec<String> {
        let now = self.now();
        let s = self.lock();
        let Some(st) = s.apps.get(appid) else {
            return vec![];
        };
        [kind.to_owned(), format!("{kind}:previous")]
            .iter()
            .filter_map(|k| st.tickets.get(k))
            .filter(|(_, exp)| *exp > now)
            .map(|(v, _)| v.clone())
            .collect()
    }
}
