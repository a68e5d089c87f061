//! The WeChat calls of the central control, through the typed API
//! (`wxgate_proto::api`): the access_token (classic or stable, forcing a stable refresh
//! only when WeChat still hands back the rejected token), tickets, and any endpoint
//! that needs the app's token, retried once after a token error.

use std::time::Duration;

use reqwest::Method;
use wxgate_proto::api::ticket::GetTicket;
use wxgate_proto::api::token::{ClassicToken, StableToken};
use wxgate_proto::api::{Endpoint, WithAccessToken};

use super::*;

impl CentralControl {
    pub(super) async fn fetch_access_token(
        &self,
        acc: &AccountState,
        want: &Want,
    ) -> Result<(String, i64)> {
        let c = &acc.config;
        let (appid, secret) = (c.appid.as_str(), c.secret.expose());
        let up = &self.upstream;
        let answer = match c.token_api {
            TokenApi::Classic => up.call(&ClassicToken::new(appid, secret)).await?,
            TokenApi::Stable => {
                let normal = up.call(&StableToken::new(appid, secret, false)).await?;
                match want {
                    // Forced refreshes are rationed (20 a day): only when WeChat still
                    // hands back the token that was rejected.
                    Want::NotThis(stale) if &normal.access_token == stale => {
                        self.allow_forced_refresh(acc).await?;
                        tracing::info!(account = %acc.name, "stable token still the rejected one; forcing a refresh");
                        up.call(&StableToken::new(appid, secret, true)).await?
                    }
                    _ => normal,
                }
            }
        };
        Ok((answer.access_token, answer.expires_in))
    }

    /// One forced refresh per account every `forced_refresh_interval_secs`, for the
    /// fleet (a key in the store); counted either way. A forced refresh ends the
    /// previous token at once for every holder, and WeChat allows 20 a day.
    async fn allow_forced_refresh(&self, acc: &AccountState) -> Result<()> {
        let every = Duration::from_secs(self.cfg.forced_refresh_interval_secs.max(1));
        let key = keys::forced_refresh(&acc.name);
        let allowed = self.store.set_if_absent(&key, &self.owner, every).await?;
        let outcome = if allowed { "done" } else { "limited" };
        metrics::counter!("wxgate_forced_refreshes_total", "account" => crate::metrics::account_label(&acc.name), "outcome" => outcome)
            .increment(1);
        if allowed {
            return Ok(());
        }
        tracing::warn!(account = %acc.name, "forced refresh refused: one a {}s per account", every.as_secs());
        Err(Error::WeChat {
            endpoint: StableToken::PATH.into(),
            code: wxgate_proto::ErrCode::ApiMinuteQuota,
            errmsg: format!(
                "wxgate: one forced refresh per account every {} s (credentials.forced_refresh_interval_secs)",
                every.as_secs()
            ),
        })
    }

    pub(super) async fn fetch_ticket(
        &self,
        acc: &AccountState,
        ticket_type: &str,
    ) -> Result<(String, i64)> {
        let req = GetTicket {
            ticket_type: ticket_type.to_owned(),
        };
        let t = Box::pin(self.call_api(&acc.name, &req)).await?;
        Ok((t.ticket, t.expires_in))
    }

    /// Calls a WeChat endpoint that needs the app's access_token, with the account's;
    /// on a token error (40001, 40014, 42001) that a liveness check confirms,
    /// refreshes compare-and-set style and retries once.
    pub async fn call_api<E: WithAccessToken>(&self, account: &str, req: &E) -> Result<E::Answer> {
        let token = Box::pin(self.get(account, Kind::AccessToken)).await?;
        let sent = std::time::Instant::now();
        match self
            .upstream
            .call_with_access_token(req, &token.value)
            .await
        {
            Err(e) if e.errcode().is_some_and(|c| c.is_access_token_invalid()) => {
                match Box::pin(self.refresh_if_dead(account, &token.value, sent)).await? {
                    Some(fresh) => {
                        tracing::info!(
                            account,
                            endpoint = E::PATH,
                            "access_token confirmed dead; refreshed, retrying once"
                        );
                        self.upstream
                            .call_with_access_token(req, &fresh.value)
                            .await
                    }
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    /// Calls a WeChat API with the account's access_token; on a token error (40001,
    /// 40014, 42001) that a liveness check confirms, refreshes compare-and-set style
    /// and retries once.
    pub async fn call_with_token(
        &self,
        account: &str,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<(bytes::Bytes, Option<String>)>,
    ) -> Result<crate::upstream::RawAnswer> {
        let token = self.get(account, Kind::AccessToken).await?;
        let with = |t: &str| {
            let mut q: Vec<(String, String)> = query
                .iter()
                .filter(|(k, _)| k != "access_token")
                .cloned()
                .collect();
            q.push(("access_token".into(), t.to_owned()));
            q
        };
        let sent = std::time::Instant::now();
        let first = self
            .upstream
            .send_raw(method.clone(), path, &with(&token.value), body.clone())
            .await?;
        let rejected =
            wxgate_proto::api::errcode_of(&first.body).is_some_and(|c| c.is_access_token_invalid());
        if !rejected {
            return Ok(first);
        }
        let Some(fresh) = self.refresh_if_dead(account, &token.value, sent).await? else {
            // WeChat still accepts the token: the error is about something else (a
            // token of the caller's in the body, say). Answered as WeChat gave it.
            return Ok(first);
        };
        tracing::info!(
            account,
            endpoint = crate::upstream::endpoint_label(path),
            "access_token confirmed dead; refreshed, retrying once"
        );
        self.upstream
            .send_raw(method, path, &with(&fresh.value), body)
            .await
    }
}
