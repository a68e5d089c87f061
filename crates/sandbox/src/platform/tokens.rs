//! The app's access_token: `/cgi-bin/token` (classic: a new token retires the previous
//! one after a 5-minute overlap), `/cgi-bin/stable_token` (the same token until its last
//! 5 minutes; force_refresh rationed) and `/cgi-bin/clear_quota`, with WeChat's limits.

use wxgate_proto::ErrCode;

use crate::config::AppConfig;

use super::{
    random_value, st_last_force, Counter, Grant, Issued, Platform, State, WxError, WxResult,
};

impl Platform {
    fn issue_token(&self, s: &mut State, appid: &str, now: i64, prefix: &str) -> String {
        let value = random_value(prefix, 96);
        s.tokens.insert(
            value.clone(),
            Issued {
                appid: appid.to_owned(),
                expires_at: now + self.config.limits.token_ttl,
                revoked_at: None,
            },
        );
        value
    }

    /// The checks both token endpoints make: grant_type, appid, secret (40001 when wrong).
    fn client_credential(
        &self,
        grant_type: &str,
        appid: &str,
        secret: &str,
    ) -> WxResult<&AppConfig> {
        if grant_type != "client_credential" {
            return Err(WxError::new(ErrCode::InvalidGrantType));
        }
        self.authenticate(appid, secret, ErrCode::InvalidCredential)
    }

    /// `GET /cgi-bin/token`: a new token every call; the previous one keeps working for
    /// the overlap (5 minutes), as getAccessToken documents.
    pub fn classic_token(&self, grant_type: &str, appid: &str, secret: &str) -> WxResult<Grant> {
        let app = self.client_credential(grant_type, appid, secret)?;
        let now = self.now();
        let limits = &self.config.limits;
        let mut s = self.lock();
        let st = s.apps.entry(app.appid.clone()).or_default();
        if !st
            .classic_daily
            .take(now.div_euclid(86400), limits.token_daily_quota)
        {
            return Err(WxError::new(ErrCode::ApiDailyQuota));
        }
        let previous = st.classic.take();
        let value = self.issue_token(&mut s, appid, now, "SBXAT");
        if let Some(prev) = previous {
            if let Some(t) = s.tokens.get_mut(&prev) {
                t.revoked_at = Some(now + limits.token_overlap);
            }
        }
        s.apps.get_mut(appid).expect("app state").classic = Some(value.clone());
        Ok(Grant {
            value,
            expires_in: limits.token_ttl,
        })
    }

    /// `POST /cgi-bin/stable_token`: normal mode returns the current token while it has
    /// more than 5 minutes left, and a new one in its last 5 minutes (both valid meanwhile);
    /// `force_refresh` invalidates the previous token at once, at most 20 times a day, and
    /// is ignored within 30 s of the previous forced refresh (getStableAccessToken).
    pub fn stable_token(
        &self,
        grant_type: &str,
        appid: &str,
        secret: &str,
        force: bool,
    ) -> WxResult<Grant> {
        let app = self.client_credential(grant_type, appid, secret)?;
        let now = self.now();
        let limits = &self.config.limits;
        let mut s = self.lock();
        let st = s.apps.entry(app.appid.clone()).or_default();
        if !st
            .stable_minute
            .take(now.div_euclid(60), limits.stable_minute_quota)
            || !st
                .stable_daily
                .take(now.div_euclid(86400), limits.stable_daily_quota)
        {
            return Err(WxError::new(ErrCode::ApiDailyQuota));
        }
        let current = st.stable.clone();
        let current_left = current
            .as_ref()
            .and_then(|v| s.tokens.get(v))
            .map(|t| t.valid_until() - now)
            .filter(|left| *left > 0);
        if force {
            let recent =
                st_last_force(&s, appid).is_some_and(|t| now - t < limits.stable_force_interval);
            if recent {
                if let (Some(v), Some(left)) = (current.clone(), current_left) {
                    return Ok(Grant {
                        value: v,
                        expires_in: left,
                    });
                }
            } else {
                let st = s.apps.get_mut(appid).expect("app state");
                if !st
                    .force_daily
                    .take(now.div_euclid(86400), limits.stable_force_daily)
                {
                    return Err(WxError::with(
                        ErrCode::ApiDailyQuota,
                        "reach max api daily quota limit: force_refresh is limited to 20 a day",
                    ));
                }
                st.last_force = Some(now);
                if let Some(prev) = current.as_ref() {
                    if let Some(t) = s.tokens.get_mut(prev) {
                        t.revoked_at = Some(now);
                    }
                }
                let value = self.issue_token(&mut s, appid, now, "SBXST");
                s.apps.get_mut(appid).expect("app state").stable = Some(value.clone());
                return Ok(Grant {
                    value,
                    expires_in: limits.token_ttl,
                });
            }
        }
        if let (Some(v), Some(left)) = (current.clone(), current_left) {
            if left > limits.token_overlap {
                return Ok(Grant {
                    value: v,
                    expires_in: left,
                });
            }
        }
        // No valid token, or in its last 5 minutes: a new one; the old stays valid until
        // its own expiry.
        let value = self.issue_token(&mut s, appid, now, "SBXST");
        s.apps.get_mut(appid).expect("app state").stable = Some(value.clone());
        Ok(Grant {
            value,
            expires_in: limits.token_ttl,
        })
    }

    /// The app a token belongs to, or WeChat's error for it: 41001 missing, 42001
    /// expired, 40001 unknown or superseded ("not latest").
    pub fn check_token(&self, token: &str) -> WxResult<String> {
        if token.is_empty() {
            return Err(WxError::new(ErrCode::AccessTokenMissing));
        }
        let now = self.now();
        let s = self.lock();
        match s.tokens.get(token) {
            None => Err(WxError::with(
                ErrCode::InvalidCredential,
                "invalid credential, access_token is invalid or not latest",
            )),
            Some(t) if t.revoked_at.is_some_and(|r| now >= r) && now < t.expires_at => {
                Err(WxError::with(
                    ErrCode::InvalidCredential,
                    "invalid credential, access_token is invalid or not latest",
                ))
            }
            Some(t) if now >= t.valid_until() => Err(WxError::new(ErrCode::AccessTokenExpired)),
            Some(t) => Ok(t.appid.clone()),
        }
    }

    /// `POST /cgi-bin/clear_quota`: resets the app's counts, 10 times a month.
    pub fn clear_quota(&self, token_app: &str, appid: &str) -> WxResult<()> {
        if appid.is_empty() {
            return Err(WxError::new(ErrCode::AppIdMissing));
        }
        if token_app != appid {
            return Err(WxError::with(
                ErrCode::InvalidAppId,
                "appid does not match the access_token",
            ));
        }
        let now = self.now();
        let mut s = self.lock();
        let st = s.apps.entry(appid.to_owned()).or_default();
        if !st.clear_quota_monthly.take(
            now.div_euclid(30 * 86400),
            self.config.limits.clear_quota_monthly,
        ) {
            return Err(WxError::new(ErrCode::ClearQuotaLimit));
        }
        st.classic_daily = Counter::default();
        st.stable_daily = Counter::default();
        st.stable_minute = Counter::default();
        st.force_daily = Counter::default();
        Ok(())
    }
}
