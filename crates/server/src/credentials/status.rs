//! What operators see of the credentials (never their values): ages, expiries, fetches
//! today, the last error, readiness.

use serde::Serialize;
use wxgate_proto::ErrCode;

use super::*;

/// What `wxgate status` and `/api/v1/{account}/status` show of one credential.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialStatus {
    pub kind: Kind,
    pub fetched_at: Option<i64>,
    /// When the refresher will fetch the next one.
    pub refresh_at: Option<i64>,
    pub expires_at: Option<i64>,
    /// The first 8 hex digits of the value's SHA-256: tells two values apart (did a
    /// refresh change it? do two instances hold the same?) without showing either.
    pub digest: Option<String>,
    pub expires_in: Option<i64>,
    pub age: Option<i64>,
    pub fetches_today: i64,
    pub last_error: Option<String>,
}

pub(super) fn utc_day(unix: i64) -> String {
    // Days since the epoch to a civil date (Howard Hinnant's algorithm).
    let z = unix.div_euclid(86400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}")
}

/// The first 8 hex digits of SHA-256 of a credential's value.
pub fn digest(value: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut d = wxgate_proto::signature::hex(&Sha256::digest(value.as_bytes()));
    d.truncate(8);
    d
}

impl CentralControl {
    /// What an operator sees of an account's credentials (never their values).
    pub async fn status(&self, account: &str) -> Result<Vec<CredentialStatus>> {
        let acc = self.state(account)?;
        let now = self.clock.now();
        let mut out = Vec::new();
        for kind in Kind::ALL {
            let slot = &acc.slots[kind.index()];
            let c = match self.stored(acc, kind).await {
                Ok(Some(c)) => Some(c),
                _ => self.cached(slot),
            };
            let counter =
                keys::fetch_counter(&acc.name, &format!("{}:{}", kind.name(), utc_day(now)));
            let fetches_today = self
                .store
                .get(&counter)
                .await
                .ok()
                .flatten()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            out.push(CredentialStatus {
                kind,
                fetched_at: c.as_ref().map(|c| c.fetched_at),
                refresh_at: c.as_ref().map(|c| c.refresh_at),
                expires_at: c.as_ref().map(|c| c.expires_at),
                digest: c.as_ref().map(|c| digest(&c.value)),
                expires_in: c.as_ref().map(|c| c.expires_in(now)),
                age: c.as_ref().map(|c| now - c.fetched_at),
                fetches_today,
                last_error: slot.last_error.read().ok().and_then(|e| e.clone()),
            });
        }
        Ok(out)
    }

    /// The daily quota the counters are shown against.
    pub fn daily_quota(&self) -> i64 {
        self.cfg.daily_quota
    }

    /// Whether every account has a usable access_token (for `/readyz`), else why not.
    pub fn readiness(&self) -> Vec<(String, std::result::Result<i64, String>)> {
        let now = self.clock.now();
        self.accounts
            .values()
            .map(|acc| {
                let slot = &acc.slots[Kind::AccessToken.index()];
                let state = match self.cached(slot).filter(|c| c.usable(now)) {
                    Some(c) => Ok(c.expires_in(now)),
                    None => Err(slot
                        .last_error
                        .read()
                        .ok()
                        .and_then(|e| e.clone())
                        .unwrap_or_else(|| "no access_token yet".into())),
                };
                (acc.name.clone(), state)
            })
            .collect()
    }
}

/// What WeChat says of an AppID and AppSecret, asked from this machine: what
/// `wxgate check --online` reports and what the admin API refuses an account for.
#[derive(Debug)]
pub enum AppCheck {
    /// A token for this many seconds.
    Ok { expires_in: i64 },
    /// 40125 or 40001: the AppSecret.
    WrongSecret(ErrCode),
    /// 40013: the AppID.
    UnknownAppId(ErrCode),
    /// 40164, 61004, 60020: the server's egress IP, when WeChat named it.
    IpNotWhitelisted(ErrCode, Option<std::net::IpAddr>),
    /// Another refusal, with WeChat's words.
    Refused(ErrCode, String),
    /// No answer: the network, a proxy, `upstream.api_base`.
    Unreachable(Error),
}

/// Asks WeChat for a token of `appid` once, with `stable_token` in normal mode: it
/// neither ends the token a running server holds nor spends a forced refresh (a classic
/// `/cgi-bin/token` fetch would retire the running one).
pub async fn check_app(upstream: &Upstream, appid: &str, secret: &str) -> AppCheck {
    use wxgate_proto::api::token::StableToken;
    let e = match upstream.call(&StableToken::new(appid, secret, false)).await {
        Ok(t) => {
            return AppCheck::Ok {
                expires_in: t.expires_in,
            }
        }
        Err(e) => e,
    };
    let (code, errmsg) = match &e {
        Error::WeChat { code, errmsg, .. } => (*code, errmsg.clone()),
        _ => return AppCheck::Unreachable(e),
    };
    match code {
        ErrCode::InvalidAppSecret | ErrCode::InvalidCredential => AppCheck::WrongSecret(code),
        ErrCode::InvalidAppId => AppCheck::UnknownAppId(code),
        c if c.is_ip_not_whitelisted() => {
            AppCheck::IpNotWhitelisted(c, wxgate_proto::errcode::refused_ip(&errmsg))
        }
        c => AppCheck::Refused(c, errmsg),
    }
}

#[cfg(test)]
mod tests {
    use super::utc_day;

    #[test]
    fn utc_days() {
        assert_eq!(utc_day(0), "19700101");
        assert_eq!(utc_day(951_782_400), "20000229");
        assert_eq!(utc_day(1_700_000_000), "20231114");
        assert_eq!(utc_day(1_704_067_199), "20231231");
    }
}
