//! One-time codes: the OAuth `code` and the Mini Program's `js_code` follow one rule. A
//! code works once (40163 `code been used` after) and for `code_ttl` seconds (40029
//! `invalid code` after, and for an unknown code or another app's).

use std::collections::HashMap;

use wxgate_proto::ErrCode;

use super::{random_value, WxError, WxResult};

/// What a code was issued for.
#[derive(Debug, Clone)]
pub(super) struct OneTimeCode {
    pub appid: String,
    pub openid: String,
    /// The OAuth scope; empty for a js_code.
    pub scope: String,
    issued_at: i64,
    used: bool,
}

/// The codes of one kind.
#[derive(Debug, Default)]
pub(super) struct OneTimeCodes(HashMap<String, OneTimeCode>);

impl OneTimeCodes {
    /// A new code (`prefix` and `len` random characters) for the user.
    pub fn issue(
        &mut self,
        prefix: &str,
        len: usize,
        appid: &str,
        openid: &str,
        scope: &str,
        now: i64,
    ) -> String {
        let code = random_value(prefix, len);
        self.0.insert(
            code.clone(),
            OneTimeCode {
                appid: appid.to_owned(),
                openid: openid.to_owned(),
                scope: scope.to_owned(),
                issued_at: now,
                used: false,
            },
        );
        code
    }

    /// Uses a code of `appid`, issued less than `ttl` seconds ago and not used yet.
    pub fn redeem(&mut self, code: &str, appid: &str, now: i64, ttl: i64) -> WxResult<OneTimeCode> {
        let c = match self.0.get_mut(code) {
            Some(c) if c.appid == appid && now - c.issued_at < ttl => c,
            _ => return Err(WxError::with(ErrCode::InvalidCode, "invalid code")),
        };
        if c.used {
            return Err(WxError::new(ErrCode::CodeBeenUsed));
        }
        c.used = true;
        Ok(c.clone())
    }
}
