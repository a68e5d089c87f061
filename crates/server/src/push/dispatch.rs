//! Dispatch: the account's handlers in order (rules, an embedding program's, the
//! webhook) under WeChat's deadline; the first reply wins, `success` when none comes.
//! A JSON push (a Mini Program's) is answered `success` whatever the handlers say, and
//! their reply goes through the customer-service API.

use std::future::Future;
use std::task::Poll;

use wxgate_proto::PushFormat;

use super::answer::Answer;
use super::handler::{Chained, Handled, HandlerKind, MessageContext};
use super::PushAccount;

/// What answered a handled push, as `wxgate_pushes_total{outcome}` counts it.
#[derive(Clone, Copy)]
enum Outcome {
    Rule,
    Handler,
    Webhook,
    None,
    Timeout,
}

impl Outcome {
    /// The labels, in the variants' order.
    const LABELS: [&'static str; 5] = ["rule", "handler", "webhook", "none", "timeout"];

    /// The outcome of the handler that answered, by its place in the chain.
    fn of(kind: HandlerKind) -> Outcome {
        match kind {
            HandlerKind::Rules => Outcome::Rule,
            HandlerKind::Webhook => Outcome::Webhook,
            HandlerKind::Embedded => Outcome::Handler,
        }
    }

    /// Counts a handled push (the console's push chart reads it). The handles are
    /// looked up once: a lookup by name each push cost about 600 instructions, 0.6% of
    /// a safe push.
    fn count(self) {
        static COUNTERS: std::sync::OnceLock<Vec<metrics::Counter>> = std::sync::OnceLock::new();
        let counters = COUNTERS.get_or_init(|| {
            Outcome::LABELS
                .iter()
                .map(|o| metrics::counter!("wxgate_pushes_total", "outcome" => *o))
                .collect()
        });
        counters[self as usize].increment(1);
    }
}

/// The handlers in order, under the deadline; `None` (success) when none replies in time.
pub async fn run_handlers(
    acc: &PushAccount,
    ctx: &MessageContext,
    deadline: tokio::time::Instant,
    now: i64,
) -> Answer {
    let chain = async {
        for Chained { kind, handler } in &acc.handlers {
            match handler.handle(ctx).await {
                Ok(Handled::Pass) => continue,
                Ok(Handled::NoReply) => {
                    Outcome::of(*kind).count();
                    return None;
                }
                Ok(Handled::Reply(r)) => {
                    Outcome::of(*kind).count();
                    return Some(r);
                }
                Err(e) => {
                    tracing::warn!(account = %acc.name, handler = handler.name(), error = %e, "handler failed");
                    continue;
                }
            }
        }
        Outcome::None.count();
        None
    };
    // The chain is polled once before a timer is made: rules (and most embedded
    // handlers) answer at once, and the timer (the scheduler's handle cloned, an entry
    // made and dropped) would cost every such push for nothing.
    let mut chain = std::pin::pin!(chain);
    let first = std::future::poll_fn(|cx| Poll::Ready(chain.as_mut().poll(cx))).await;
    let in_time = match first {
        Poll::Ready(r) => Ok(r),
        Poll::Pending => tokio::time::timeout_at(deadline, chain).await,
    };
    let reply = match in_time {
        Ok(r) => r,
        Err(_) => {
            Outcome::Timeout.count();
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

/// The answer WeChat gets for this push. A JSON push takes no passive message reply
/// (消息推送: answer `success`, reply with 发送客服消息), so a reply to one is sent
/// through `/cgi-bin/message/custom/send` on its own task, once (a retry finds the
/// dedup answer, `success`, and sends nothing), and WeChat gets `success`.
pub fn answer_for_format(acc: &PushAccount, pushed: &MessageContext, answer: Answer) -> Answer {
    let (PushFormat::Json, Some((_, reply))) = (pushed.format, &answer) else {
        return answer;
    };
    let (sender, account, reply) = (
        acc.customer_service.clone(),
        acc.name.clone(),
        reply.clone(),
    );
    let (appid, openid) = (pushed.appid.clone(), pushed.message.from_user_name.clone());
    crate::web::request_id::spawn(async move {
        let outcome = match sender.send(&appid, &openid, &reply).await {
            Ok(()) => "sent",
            Err(e) => {
                tracing::warn!(account = %account, error = %e, "reply to a JSON push not sent as a customer-service message");
                "failed"
            }
        };
        metrics::counter!("wxgate_customer_service_replies_total", "account" => crate::metrics::account_label(&account), "outcome" => outcome).increment(1);
    });
    None
}
