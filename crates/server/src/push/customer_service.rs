//! Where a reply goes when it cannot be the push's answer: a webhook's reply that came
//! after WeChat's 5 s, or any reply to a JSON push (a Mini Program's, which takes no
//! passive reply). It is sent through the customer-service message API
//! (`/cgi-bin/message/custom/send`) with the token of the account the push was *for*:
//! an account's own access_token under the central control, or, for a third-party
//! platform's push, the authorizer's token (the component module provides that one, so
//! this module does not depend on it).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use wxgate_proto::api::message::CustomSend;
use wxgate_proto::Reply;

use crate::credentials::CentralControl;
use crate::error::Result;

/// Sends a reply to a user as a customer-service message.
pub trait CustomerService: Send + Sync + 'static {
    /// `appid`: the account the push was for (for a component's push, the authorizer's).
    fn send<'a>(
        &'a self,
        appid: &'a str,
        openid: &'a str,
        reply: &'a Reply,
    ) -> BoxFuture<'a, Result<()>>;
}

/// An account's own: its access_token from the central control (one fetch for the
/// fleet, compare-and-refresh on a token error).
pub struct OwnToken {
    pub central: Arc<CentralControl>,
    pub account: String,
}

impl CustomerService for OwnToken {
    fn send<'a>(
        &'a self,
        _appid: &'a str,
        openid: &'a str,
        reply: &'a Reply,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let message = CustomSend(reply.to_custom_message(openid)?);
            self.central
                .call_api(&self.account, &message)
                .await
                .map(drop)
        })
    }
}
