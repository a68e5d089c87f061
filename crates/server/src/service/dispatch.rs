//! Dispatch: the account's handlers in order (rules, an embedding program's, the
//! webhook) under WeChat's deadline; the first reply wins, `success` when none comes.

use super::dedup::Answer;
use super::handler::{Handled, MessageContext};
use super::ServiceAccount;

/// The handlers in order, under the deadline; `None` (success) when none replies in time.
pub async fn run_handlers(
    acc: &ServiceAccount,
    ctx: &MessageContext,
    deadline: tokio::time::Instant,
    now: i64,
) -> Answer {
    let chain = async {
        for h in &acc.handlers {
            match h.handle(ctx).await {
                Ok(Handled::Pass) => continue,
                Ok(Handled::NoReply) => return None,
                Ok(Handled::Reply(r)) => return Some(r),
                Err(e) => {
                    tracing::warn!(account = %acc.name, handler = h.name(), error = %e, "handler failed");
                    continue;
                }
            }
        }
        None
    };
    let reply = match tokio::time::timeout_at(deadline, chain).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!(account = %acc.name, "no reply within the deadline; answering success");
            None
        }
    };
    match reply.map(|r| r.validate().map(|()| r)) {
        Some(Ok(r)) => Some((now, r)),
        Some(Err(e)) => {
            tracing::warn!(account = %acc.name, error = %e, "reply refused");
            None
        }
        None => None,
    }
}
