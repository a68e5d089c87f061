//! Accounts whose credentials wxgate holds without their AppSecret: a third-party
//! platform's authorizers, named `{component}:{appid}` (account names of the config
//! never hold a `:`). The component module answers for them; the central control asks it
//! whenever a name is not a configured account, so every feature that reads an account's
//! credentials (JS-SDK signatures, the Mini Program's calls, the proxy, customer-service
//! messages) acts for an authorizer as for an account, and the few calls that differ
//! (the code exchanges, made with the component's token) are asked of it by name.

use futures_util::future::BoxFuture;
use wxgate_proto::api::sns::{MiniProgramSession, UserToken};

use super::{Credential, Kind};
use crate::config::AccountConfig;
use crate::error::Result;

/// What a route means to do for the account: each needs its own permission set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `/wx/{account}/config`: an Official Account's JS-SDK (网页服务权限).
    JsSdk,
    /// `/wx/{account}/auth`: web authorization on the account's behalf (网页服务权限).
    WebAuthorization,
    /// `/wx/{account}/mp/...`: a Mini Program's login and data.
    MiniProgram,
}

/// The one who holds the credentials of the accounts it names.
pub trait Delegate: Send + Sync + 'static {
    /// The account as the routes read it (appid, kind, JS-safe domains, CORS and
    /// redirect origins, `acting_through`), if `name` is one of the delegate's and it may
    /// act for it for `purpose`; else `UnknownAccount`, or `NotAuthorized` naming what
    /// is missing.
    fn account<'a>(
        &'a self,
        name: &'a str,
        purpose: Purpose,
    ) -> BoxFuture<'a, Result<AccountConfig>>;

    /// A usable credential (one fetch for the fleet).
    fn credential<'a>(&'a self, name: &'a str, kind: Kind) -> BoxFuture<'a, Result<Credential>>;

    /// Compare-and-refresh: a credential other than `stale`, fetched only while `stale`
    /// is still the fleet's.
    fn refresh_stale<'a>(
        &'a self,
        name: &'a str,
        kind: Kind,
        stale: &'a str,
    ) -> BoxFuture<'a, Result<Credential>>;

    /// A web-authorization code of the account's page, exchanged.
    fn oauth_access_token<'a>(
        &'a self,
        name: &'a str,
        code: &'a str,
    ) -> BoxFuture<'a, Result<UserToken>>;

    /// A user's token of the account, refreshed.
    fn oauth_refresh_token<'a>(
        &'a self,
        name: &'a str,
        refresh_token: &'a str,
    ) -> BoxFuture<'a, Result<UserToken>>;

    /// A `wx.login` code of the account's Mini Program, exchanged.
    fn jscode2session<'a>(
        &'a self,
        name: &'a str,
        js_code: &'a str,
    ) -> BoxFuture<'a, Result<MiniProgramSession>>;
}
