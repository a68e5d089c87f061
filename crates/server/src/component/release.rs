//! WeChat's release test (全网发布检测), answered for its dedicated test accounts: before a
//! third-party platform may go live, WeChat pushes to these accounts through it and checks
//! the answers. wxgate answers as the test requires, for the accounts the documentation
//! lists (and only those):
//!
//! - an event: a text reply `{Event}from_callback`;
//! - the text `TESTCOMPONENT_MSG_TYPE_TEXT`: a text reply
//!   `TESTCOMPONENT_MSG_TYPE_TEXT_callback`;
//! - the text `QUERY_AUTH_CODE:$code$`: an empty answer at once (`success`), then the code
//!   exchanged (`api_query_auth`) and a customer-service text `$code$_from_api` sent to the
//!   user with that authorizer's token.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::json;
use wxgate_proto::api::message::CustomSend;
use wxgate_proto::Reply;

use super::ComponentService;
use crate::clock::Clock;
use crate::push::handler::{Handled, Handler, MessageContext};

/// The release test's accounts, as WeChat's documentation lists them.
pub use wxgate_proto::component::RELEASE_TEST_ACCOUNTS as TEST_ACCOUNTS;

pub const TEXT: &str = "TESTCOMPONENT_MSG_TYPE_TEXT";
pub const QUERY_AUTH_CODE: &str = "QUERY_AUTH_CODE:";

/// The release test's answers, first in a component's chain.
pub struct ReleaseTest {
    pub component: String,
    pub components: Arc<ComponentService>,
    pub clock: Clock,
}

fn text(content: String) -> Handled {
    Handled::Reply(Reply::Text { content })
}

impl Handler for ReleaseTest {
    fn name(&self) -> &'static str {
        "release_test"
    }

    fn handle<'a>(&'a self, ctx: &'a MessageContext) -> BoxFuture<'a, crate::Result<Handled>> {
        let m = &ctx.message;
        let answer = if !TEST_ACCOUNTS.contains(&ctx.appid.as_str()) {
            Handled::Pass
        } else if let Some(event) = m.raw.text("Event") {
            text(format!("{event}from_callback"))
        } else {
            match m.raw.text("Content").map(str::trim) {
                Some(TEXT) => text(format!("{TEXT}_callback")),
                Some(c) if c.starts_with(QUERY_AUTH_CODE) => {
                    let code = c[QUERY_AUTH_CODE.len()..].to_owned();
                    self.answer_by_api(code, m.from_user_name.clone());
                    Handled::NoReply
                }
                _ => Handled::Pass,
            }
        };
        Box::pin(async move { Ok(answer) })
    }
}

impl ReleaseTest {
    /// Exchanges the code and sends `$code$_from_api` with the authorizer's token, on its
    /// own task (WeChat has been answered already).
    fn answer_by_api(&self, code: String, openid: String) {
        let (components, name, clock) = (
            self.components.clone(),
            self.component.clone(),
            self.clock.clone(),
        );
        crate::web::request_id::spawn(async move {
            let Some(c) = components.component(&name) else {
                return;
            };
            let now = clock.now();
            let sent = async {
                let a = components.exchange_code(c, &code, now).await?;
                let message = CustomSend(json!({
                    "touser": openid,
                    "msgtype": "text",
                    "text": { "content": format!("{code}_from_api") },
                }));
                components
                    .call_as(c, &a.authorizer_appid, &message, now)
                    .await
            };
            match sent.await {
                Ok(_) => {
                    tracing::info!(component = %name, "release test: answered by the customer-service API")
                }
                Err(e) => {
                    tracing::warn!(component = %name, error = %e, "release test: customer-service answer not sent")
                }
            }
        });
    }
}
