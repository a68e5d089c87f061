//! The request context: what every feature's handlers reach, as plain fields. Built
//! once by `gateway::build`; cloning it is one reference count.
//!
//! Features take it as `State<Ctx>` and their own state beside it (the push service,
//! the remembered users) through axum's `FromRef`, so that no feature names another's
//! state and `http`, which assembles them, is the only module that knows them all.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::{AccountConfig, Config};
use crate::credentials::CentralControl;
use crate::error::Result;
use crate::store::SharedStore;
use crate::upstream::Upstream;
use crate::web::limit::Limits;

/// The parts of [`Ctx`].
pub struct Context {
    pub config: Arc<Config>,
    pub store: SharedStore,
    pub clock: Clock,
    pub upstream: Upstream,
    /// The central control of access_token and tickets.
    pub credentials: Arc<CentralControl>,
    /// The rate limits of the routes that spend WeChat calls.
    pub limits: Limits,
}

/// The shared request context, behind one `Arc`.
#[derive(Clone)]
pub struct Ctx(Arc<Context>);

impl Ctx {
    pub fn new(context: Context) -> Self {
        Ctx(Arc::new(context))
    }

    /// The configured account of that name, or [`crate::Error::UnknownAccount`].
    pub fn account(&self, name: &str) -> Result<&AccountConfig> {
        self.credentials.account(name)
    }

    /// Now, in seconds (the gateway's clock, which tests move).
    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}

impl std::ops::Deref for Ctx {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.0
    }
}
