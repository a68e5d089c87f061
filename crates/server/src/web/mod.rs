//! The request-level building blocks every feature uses, below the features and above
//! the protocol: the request context ([`context::Ctx`]), the account a route names
//! ([`account`]), the Node server's `{state, data}` envelope ([`envelope`]), query
//! reading without serde ([`query`]), rate limits and the client address ([`limit`]),
//! body deadlines ([`body`]), and forwarding to WeChat with the account's token
//! ([`forward`]). `http` assembles the features into the server; the
//! features and `web` never import `http`.

pub mod account;
pub mod body;
pub mod context;
pub mod envelope;
pub mod forward;
pub mod limit;
pub mod query;

pub use account::{Account, DEFAULT_ACCOUNT};
pub use context::Ctx;
