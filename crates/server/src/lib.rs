//! # wxgate: the gateway between WeChat and a business's own servers
//!
//! This crate owns everything that is not the wire protocol (that is `wxgate-proto`) and
//! not the stand-in for WeChat (that is `wxgate-sandbox`):
//!
//! - [`config`]: the TOML configuration with environment overrides, and its validation.
//! - [`origin`]: web origins in allow-lists (where `/wx/auth` may send a user).
//! - [`store`]: the store trait and its embedded (redb) and Redis implementations.
//! - [`upstream`]: the HTTP client for WeChat's APIs, with retries and typed errcodes.
//! - [`credentials`]: the central control of `access_token` and tickets.
//! - [`auth`]: `/wx/auth`, OAuth web authorization and remembered users.
//! - [`miniprogram`]: `/wx/mp/...`, Mini Program login sessions and open data.
//! - [`component`]: the open platform (第三方平台): the verify ticket, the component's
//!   token and its merchants' authorizations, for a fleet.
//! - [`pay`]: WeChat Pay v3: notifications verified and delivered once for the fleet,
//!   the merchant's calls signed.
//! - [`push`]: `/wx/service`, where WeChat pushes messages and events, and the handlers
//!   that answer them (rules, webhook).
//! - [`jssdk`]: `/wx/config`, the JS-SDK signature.
//! - [`compat`]: the WeChat-compatible API (`/cgi-bin/token`, ...) for existing SDKs.
//! - [`fleet_accounts`]: accounts kept in the store for the whole fleet, applied by
//!   every instance without a restart.
//! - [`followers`]: every follower of an account, streamed.
//! - [`web`]: what every feature's handlers share: the request context, the account a
//!   route names, the envelope, query reading, rate limits, body deadlines.
//! - [`http`]: the routes, the hot lane and the accept loop; [`gateway`]: assembling and
//!   running a server.
//! - [`sampled`]: log lines a stranger can cause, sampled (the first of a minute, then a
//!   summary).
//! - [`console`]: `/console`, the operator console in the browser.
//! - [`demo`]: the demo pages and `wxgate demo`.
//! - [`cli`]: the `wxgate` command line.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod compat;
pub mod component;
pub mod config;
pub mod console;
pub mod credentials;
pub mod demo;
pub mod error;
pub mod fleet_accounts;
pub mod followers;
pub mod gateway;
pub mod http;
pub mod jssdk;
pub mod metrics;
pub mod miniprogram;
pub mod origin;
pub mod pay;
pub mod push;
pub mod sampled;
pub mod store;
pub mod upstream;
pub mod util;
pub mod web;

pub use clock::Clock;
pub use config::Config;
pub use error::{Error, Result};
