//! The Mini Program's login: the js_code `wx.login()` gives, its exchange
//! (`/sns/jscode2session`) for the openid and a new session_key.

use wxgate_proto::api::sns::MiniProgramSession;
use wxgate_proto::api::wxa::{NewSessionKey, PhoneInfo, PhoneNumber, Watermark};
use wxgate_proto::ErrCode;

use crate::config::AppKind;

use super::{Platform, WxError, WxResult};

impl Platform {
    /// The checks before a code is issued: a Mini Program's appid and one of its users.
    fn mini_program_user(&self, appid: &str, openid: &str) -> WxResult<()> {
        let app = self.app(appid)?;
        if app.kind != AppKind::MiniProgram {
            return Err(WxError::with(
                ErrCode::InvalidAppId,
                "not a mini program appid",
            ));
        }
        if self.user(appid, openid).is_none() {
            return Err(WxError::new(ErrCode::InvalidOpenid));
        }
        Ok(())
    }

    /// What `wx.login()` gives the Mini Program: a js_code for the user.
    pub fn issue_js_code(&self, appid: &str, openid: &str) -> WxResult<String> {
        self.mini_program_user(appid, openid)?;
        let now = self.now();
        let mut s = self.lock();
        Ok(s.js_codes.issue("SBXJC", 24, appid, openid, "", now))
    }

    /// `GET /sns/jscode2session`: the user's openid, unionid and a new session_key (a new
    /// login replaces the previous session_key). Codes work once, for 5 minutes.
    pub fn jscode2session(
        &self,
        appid: &str,
        secret: &str,
        js_code: &str,
        grant_type: &str,
    ) -> WxResult<MiniProgramSession> {
        self.authenticate(appid, secret, ErrCode::InvalidAppSecret)?;
        self.session_for_code(appid, js_code, grant_type)
    }

    /// `GET /sns/component/jscode2session`: the same for a Mini Program that authorized
    /// the component (61003 otherwise), the component's token already checked.
    pub fn component_jscode2session(
        &self,
        component_appid: &str,
        appid: &str,
        js_code: &str,
        grant_type: &str,
    ) -> WxResult<MiniProgramSession> {
        self.app(appid)?;
        self.check_authorized(component_appid, appid)?;
        self.session_for_code(appid, js_code, grant_type)
    }

    /// A `wx.login` code of the app's turned into a session, whoever asked.
    fn session_for_code(
        &self,
        appid: &str,
        js_code: &str,
        grant_type: &str,
    ) -> WxResult<MiniProgramSession> {
        if grant_type != "authorization_code" {
            return Err(WxError::new(ErrCode::InvalidGrantType));
        }
        if js_code.is_empty() {
            return Err(WxError::new(ErrCode::CodeMissing));
        }
        let now = self.now();
        let session_key = wxgate_proto::crypto::base64_encode(&rand::random::<[u8; 16]>());
        let mut s = self.lock();
        let openid = s
            .js_codes
            .redeem(js_code, appid, now, self.config.limits.code_ttl)?
            .openid;
        s.apps
            .entry(appid.to_owned())
            .or_default()
            .session_keys
            .insert(openid.clone(), session_key.clone());
        drop(s);
        let unionid = self.user(appid, &openid).and_then(|u| u.unionid);
        Ok(MiniProgramSession {
            openid,
            session_key,
            unionid,
        })
    }

    /// The user's current session_key (after a jscode2session).
    pub fn session_key(&self, appid: &str, openid: &str) -> Option<String> {
        self.lock()
            .apps
            .get(appid)?
            .session_keys
            .get(openid)
            .cloned()
    }

    /// What `<button open-type="getPhoneNumber">` gives the Mini Program: a code for
    /// the user's phone number (not a `wx.login` code).
    pub fn issue_phone_code(&self, appid: &str, openid: &str) -> WxResult<String> {
        self.mini_program_user(appid, openid)?;
        let now = self.now();
        let mut s = self.lock();
        Ok(s.phone_codes.issue("SBXPC", 32, appid, openid, "", now))
    }

    /// `POST /wxa/business/getuserphonenumber {code}` for the app `token_app`: the
    /// user's number once per code, within 5 minutes (40029 after, or for another
    /// app's code; 40163 when used).
    pub fn phone_number(&self, token_app: &str, code: &str) -> WxResult<PhoneNumber> {
        if code.is_empty() {
            return Err(WxError::new(ErrCode::CodeMissing));
        }
        let now = self.now();
        let openid = self
            .lock()
            .phone_codes
            .redeem(code, token_app, now, self.config.limits.code_ttl)?
            .openid;
        let phone = self
            .user(token_app, &openid)
            .and_then(|u| u.phone)
            .unwrap_or_else(|| "13800138000".into());
        Ok(PhoneNumber {
            errcode: 0,
            errmsg: "ok".into(),
            phone_info: PhoneInfo {
                phone_number: format!("+86{phone}"),
                pure_phone_number: phone,
                country_code: 86.into(),
                watermark: Watermark {
                    timestamp: now,
                    appid: token_app.to_owned(),
                },
            },
        })
    }

    /// `GET /wxa/checksession`: whether the signature is made with the user's current
    /// session_key (87009 else).
    pub fn check_session(
        &self,
        appid: &str,
        openid: &str,
        signature: &str,
        method: &str,
    ) -> WxResult<()> {
        if method != "hmac_sha256" {
            return Err(WxError::with(
                ErrCode::InvalidParameter,
                "invalid args: sig_method is hmac_sha256",
            ));
        }
        let key = self
            .session_key(appid, openid)
            .ok_or_else(|| WxError::new(ErrCode::InvalidSessionSignature))?;
        let expected = wxgate_proto::miniprogram::session_signature(&key, b"");
        if expected != signature {
            return Err(WxError::new(ErrCode::InvalidSessionSignature));
        }
        Ok(())
    }

    /// `GET /wxa/resetusersessionkey`: a new session_key for the user, replacing the one
    /// the request is signed with.
    pub fn reset_session_key(
        &self,
        appid: &str,
        openid: &str,
        signature: &str,
        method: &str,
    ) -> WxResult<NewSessionKey> {
        self.check_session(appid, openid, signature, method)?;
        let session_key = wxgate_proto::crypto::base64_encode(&rand::random::<[u8; 16]>());
        self.lock()
            .apps
            .entry(appid.to_owned())
            .or_default()
            .session_keys
            .insert(openid.to_owned(), session_key.clone());
        Ok(NewSessionKey {
            errcode: 0,
            errmsg: "ok".into(),
            openid: openid.to_owned(),
            session_key,
        })
    }
}
