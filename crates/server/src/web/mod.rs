//! The request-level building blocks every feature uses, below the features and above
//! the protocol: the request context ([`context::Ctx`]), the account a route names
//! ([`account`]), the Node server's `{state, data}` envelope ([`envelope`]), query
//! reading without serde ([`query`]), rate limits and the client address ([`limit`]),
//! body deadlines ([`body`]), the request id of the request being answered
//! ([`request_id`]), and forwarding to WeChat with the account's token
//! ([`forward`]). `http` assembles the features into the server; the
//! features and `web` never import `http`.

pub mod account;
pub mod body;
pub mod context;
pub mod envelope;
pub mod forward;
pub mod limit;
pub mod query;
pub mod request_id;

pub use account::{account_refusal, Account, DEFAULT_ACCOUNT};
pub use context::Ctx;

/// The value of the request's cookie `name` (any `Cookie` header, any position).
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}
