//! Web authorization (网页授权): the code the consent page redirects with, its exchange
//! for the user's own access_token, the refresh, userinfo and the token check.

use wxgate_proto::ErrCode;

use super::{random_value, Platform, State, UserCredential, UserGrant, WxError, WxResult};

impl Platform {
    /// Issues the `code` the authorize page redirects with.
    pub fn issue_oauth_code(&self, appid: &str, openid: &str, scope: &str) -> WxResult<String> {
        self.app(appid)?;
        if self.user(appid, openid).is_none() {
            return Err(WxError::new(ErrCode::InvalidOpenid));
        }
        let now = self.now();
        let mut s = self.lock();
        Ok(s.oauth_codes.issue("SBXOC", 28, appid, openid, scope, now))
    }

    fn grant_user(
        &self,
        s: &mut State,
        appid: &str,
        openid: &str,
        scope: &str,
        refresh: Option<String>,
    ) -> UserGrant {
        let now = self.now();
        let access_token = random_value("SBXUT", 80);
        s.user_tokens.insert(
            access_token.clone(),
            UserCredential {
                appid: appid.to_owned(),
                openid: openid.to_owned(),
                scope: scope.to_owned(),
                expires_at: now + self.config.limits.token_ttl,
            },
        );
        let refresh_token = refresh.unwrap_or_else(|| {
            let r = random_value("SBXRT", 80);
            s.refresh_tokens.insert(
                r.clone(),
                UserCredential {
                    appid: appid.to_owned(),
                    openid: openid.to_owned(),
                    scope: scope.to_owned(),
                    expires_at: now + self.config.limits.refresh_token_ttl,
                },
            );
            r
        });
        let unionid = self.user(appid, openid).and_then(|u| u.unionid);
        UserGrant {
            access_token,
            expires_in: self.config.limits.token_ttl,
            refresh_token,
            openid: openid.to_owned(),
            scope: scope.to_owned(),
            unionid,
        }
    }

    /// `GET /sns/oauth2/access_token`: a code works once (40163 after), for 5 minutes
    /// (40029 after, or when unknown or another app's).
    pub fn exchange_oauth_code(
        &self,
        appid: &str,
        secret: &str,
        code: &str,
        grant_type: &str,
    ) -> WxResult<UserGrant> {
        self.authenticate(appid, secret, ErrCode::InvalidAppSecret)?;
        self.grant_for_code(appid, code, grant_type)
    }

    /// `GET /sns/oauth2/component/access_token`: the same for an authorizer's code,
    /// exchanged by a component it authorized (61003 otherwise).
    pub fn component_exchange_oauth_code(
        &self,
        component_appid: &str,
        appid: &str,
        code: &str,
        grant_type: &str,
    ) -> WxResult<UserGrant> {
        self.app(appid)?;
        self.check_authorized(component_appid, appid)?;
        self.grant_for_code(appid, code, grant_type)
    }

    /// `GET /sns/oauth2/component/refresh_token`: a user's token refreshed by the
    /// component the account authorized.
    pub fn component_refresh_user_token(
        &self,
        component_appid: &str,
        appid: &str,
        grant_type: &str,
        refresh_token: &str,
    ) -> WxResult<UserGrant> {
        self.check_authorized(component_appid, appid)?;
        self.refresh_user_token(appid, grant_type, refresh_token)
    }

    fn grant_for_code(&self, appid: &str, code: &str, grant_type: &str) -> WxResult<UserGrant> {
        if grant_type != "authorization_code" {
            return Err(WxError::new(ErrCode::InvalidGrantType));
        }
        if code.is_empty() {
            return Err(WxError::new(ErrCode::CodeMissing));
        }
        let now = self.now();
        let mut s = self.lock();
        let c = s
            .oauth_codes
            .redeem(code, appid, now, self.config.limits.code_ttl)?;
        let (openid, scope) = (c.openid, c.scope);
        Ok(self.grant_user(&mut s, appid, &openid, &scope, None))
    }

    /// `GET /sns/oauth2/refresh_token`: a new user access_token for a refresh_token that
    /// has not passed its 30 days (42002 after, 40030 when unknown).
    pub fn refresh_user_token(
        &self,
        appid: &str,
        grant_type: &str,
        refresh_token: &str,
    ) -> WxResult<UserGrant> {
        self.app(appid)?;
        if grant_type != "refresh_token" {
            return Err(WxError::new(ErrCode::InvalidGrantType));
        }
        let now = self.now();
        let mut s = self.lock();
        let r = match s.refresh_tokens.get(refresh_token) {
            Some(r) if r.appid == appid => r.clone(),
            _ => return Err(WxError::new(ErrCode::InvalidRefreshToken)),
        };
        if now >= r.expires_at {
            return Err(WxError::new(ErrCode::RefreshTokenExpired));
        }
        Ok(self.grant_user(
            &mut s,
            appid,
            &r.openid,
            &r.scope,
            Some(refresh_token.to_owned()),
        ))
    }

    fn check_user_token(&self, access_token: &str, openid: &str) -> WxResult<UserCredential> {
        if access_token.is_empty() {
            return Err(WxError::new(ErrCode::AccessTokenMissing));
        }
        let now = self.now();
        let s = self.lock();
        let t = s.user_tokens.get(access_token).cloned().ok_or_else(|| {
            WxError::with(
                ErrCode::InvalidCredential,
                "invalid credential, access_token is invalid or not latest",
            )
        })?;
        if now >= t.expires_at {
            return Err(WxError::new(ErrCode::AccessTokenExpired));
        }
        if t.openid != openid {
            return Err(WxError::new(ErrCode::InvalidOpenid));
        }
        Ok(t)
    }

    /// `GET /sns/userinfo`: only for snsapi_userinfo tokens (48001 otherwise).
    pub fn sns_userinfo(&self, access_token: &str, openid: &str) -> WxResult<serde_json::Value> {
        let t = self.check_user_token(access_token, openid)?;
        if t.scope != "snsapi_userinfo" {
            return Err(WxError::with(
                ErrCode::ApiUnauthorized,
                "api unauthorized: scope is snsapi_base",
            ));
        }
        let u = self
            .user(&t.appid, openid)
            .ok_or_else(|| WxError::new(ErrCode::InvalidOpenid))?;
        let mut v = serde_json::json!({
            "openid": u.openid,
            "nickname": u.nickname,
            "sex": u.sex,
            "province": u.province,
            "city": u.city,
            "country": u.country,
            "headimgurl": u.headimgurl,
            "privilege": u.privilege,
        });
        if let Some(unionid) = u.unionid {
            v["unionid"] = unionid.into();
        }
        Ok(v)
    }

    /// `GET /sns/auth`: whether a user access token is valid for the openid.
    pub fn sns_auth(&self, access_token: &str, openid: &str) -> WxResult<()> {
        self.check_user_token(access_token, openid).map(|_| ())
    }
}
