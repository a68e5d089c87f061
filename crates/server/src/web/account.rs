//! The account a request names: `/wx/{account}/...` names one, the unprefixed `/wx/...`
//! routes serve the account called `default` (the Node server's single account). The
//! `/wx` routes are written once and mounted under both prefixes; this extractor is the
//! one place that tells them apart.

use std::convert::Infallible;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;

use super::envelope::{self, Reject};

/// The account every unprefixed `/wx/...` route serves.
pub const DEFAULT_ACCOUNT: &str = "default";

/// The account named by the route (`default` when it names none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Account {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        let named = match RawPathParams::from_request_parts(parts, state).await {
            Ok(params) => params
                .iter()
                .find(|(k, _)| *k == "account")
                .map(|(_, v)| v.to_owned()),
            Err(_) => None,
        };
        Ok(Account(named.unwrap_or_else(|| DEFAULT_ACCOUNT.to_owned())))
    }
}

/// The one answer to a route naming an account that is not configured.
pub fn unknown_account(name: &str) -> Response {
    let shown = crate::util::truncate_chars(name, 64);
    envelope::error(StatusCode::NOT_FOUND, format!("unknown account {shown:?}"))
}

/// A route's refusal when it cannot serve the account it names (what
/// `credentials.account_for` said): `unknown` when there is no such account, 403 with
/// the reason when a third-party platform may not act for the merchant, 503 when the
/// store could not tell.
pub fn account_refusal(e: crate::Error, unknown: impl FnOnce() -> Reject) -> Reject {
    match e {
        crate::Error::NotAuthorized(why) => Reject::new(StatusCode::FORBIDDEN, why),
        crate::Error::UnknownAccount(_) => unknown(),
        e => Reject::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}
