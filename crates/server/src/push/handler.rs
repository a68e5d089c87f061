//! The handler interface: what turns a pushed message into a reply. wxgate's rules and
//! webhook are handlers; a Rust program embedding wxgate registers its own.

use futures_util::future::BoxFuture;
use wxgate_proto::{Message, PushFormat, Reply};

use crate::error::Result;

/// A message as a handler sees it.
#[derive(Debug, Clone)]
pub struct MessageContext {
    /// The account's name in the config.
    pub account: String,
    pub appid: String,
    pub message: Message,
    /// The push's data format: a reply to a JSON push (a Mini Program's) goes through
    /// the customer-service API, not into the answer.
    pub format: PushFormat,
    /// The plaintext push as WeChat sent it (decrypted in safe mode), XML or JSON.
    pub plaintext: String,
}

/// What a handler decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Answer with this reply.
    Reply(Reply),
    /// Handled, nothing to say: WeChat gets `success`.
    NoReply,
    /// Not mine: ask the next handler.
    Pass,
}

/// Which part of an account's chain a handler is: set where the chain is built (the
/// configured rules, a handler an embedding program registered, the configured
/// webhook), never read from the handler, so an embedder's handler is counted as one
/// whatever it calls itself. `wxgate_pushes_total{outcome}` counts by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerKind {
    Rules,
    Embedded,
    Webhook,
}

/// A handler in an account's chain, with its kind.
#[derive(Clone)]
pub struct Chained {
    pub kind: HandlerKind,
    pub handler: std::sync::Arc<dyn Handler>,
}

/// A message handler. Handlers are tried in order until one does not [`Handled::Pass`];
/// all of them run under WeChat's deadline. An error is logged and counts as a pass.
pub trait Handler: Send + Sync + 'static {
    /// A short name for logs (metrics count by [`HandlerKind`], not by this).
    fn name(&self) -> &'static str;
    fn handle<'a>(&'a self, ctx: &'a MessageContext) -> BoxFuture<'a, Result<Handled>>;
}
