//! `/wx/component/{name}/{appid}/service`: the message URL (消息与事件接收URL) WeChat
//! pushes an authorizer's messages and events to (the open platform's
//! `/wx/component/NAME/$APPID$/service`, WeChat putting the authorizer's appid in place
//! of `$APPID$`). The push goes through the same pipeline as `/wx/service`, on the
//! component's push account (`push::component_account`): safe mode, XML or JSON, sealed
//! with the component's key. A push for an appid that is not an authorizer (nor one of
//! WeChat's release-test accounts) is refused.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use futures_util::future::BoxFuture;
use wxgate_proto::api::message::CustomSend;
use wxgate_proto::Reply;

use super::{release, ComponentService};
use crate::clock::Clock;
use crate::push::customer_service::CustomerService;
use crate::push::{self, PushQuery, PushService};
use crate::web::envelope::Reject;
use crate::web::Ctx;

/// An appid's shape (`wx` and letters or digits; WeChat's are 18 characters), checked
/// before anything is looked up with it.
pub(crate) fn plain_appid(appid: &str) -> bool {
    (10..=32).contains(&appid.len())
        && appid.starts_with("wx")
        && appid.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `GET /wx/component/{name}/{appid}/service`: the URL check a server may be asked
/// for when the URL is entered (`signature` over the component's token, `timestamp` and
/// `nonce`; the answer is `echostr`). Answered for any appid in the path, `$APPID$`
/// included: it proves the URL holds the token, and reveals nothing else.
pub async fn verify(
    State(components): State<Arc<ComponentService>>,
    State(pushes): State<Arc<PushService>>,
    Path((name, _appid)): Path<(String, String)>,
    q: PushQuery,
) -> Response {
    if components.component(&name).is_none() {
        return Reject::new(StatusCode::NOT_FOUND, "no such component").into_response();
    }
    push::verify_for(&pushes, &push::component_account(&name), q)
}

/// `POST /wx/component/{name}/{appid}/service`
pub async fn push(
    State(ctx): State<Ctx>,
    State(components): State<Arc<ComponentService>>,
    State(pushes): State<Arc<PushService>>,
    Path((name, appid)): Path<(String, String)>,
    q: PushQuery,
    body: Body,
) -> Response {
    let Some(c) = components.component(&name) else {
        return Reject::new(StatusCode::NOT_FOUND, "no such component").into_response();
    };
    if !plain_appid(&appid) {
        return Reject::new(StatusCode::BAD_REQUEST, "the path's appid is not an appid")
            .into_response();
    }
    let known = match components.authorizer(c, &appid).await {
        Ok(a) => {
            a.is_some() || (c.cfg.release_test && release::TEST_ACCOUNTS.contains(&appid.as_str()))
        }
        Err(_) => {
            return Reject::new(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
                .into_response()
        }
    };
    if !known {
        crate::sampled_warn!("component_push_unknown", component = %name, "push for an appid that is not an authorizer");
        return Reject::new(StatusCode::NOT_FOUND, "not an authorizer of this platform")
            .into_response();
    }
    push::push_as(
        &ctx,
        &pushes,
        &push::component_account(&name),
        &appid,
        q,
        body,
    )
    .await
}

/// Replies to an authorizer's users that cannot be the push's answer (a webhook's late
/// reply, a reply to a JSON push) go as customer-service messages with the authorizer's
/// token: the merchant's account is the one talking to its user.
pub struct AuthorizerCustomerService {
    pub components: Arc<ComponentService>,
    pub component: String,
    pub clock: Clock,
}

impl CustomerService for AuthorizerCustomerService {
    fn send<'a>(
        &'a self,
        appid: &'a str,
        openid: &'a str,
        reply: &'a Reply,
    ) -> BoxFuture<'a, crate::Result<()>> {
        Box::pin(async move {
            let Some(c) = self.components.component(&self.component) else {
                return Err(crate::Error::UnknownAccount(self.component.clone()));
            };
            let message = CustomSend(reply.to_custom_message(openid)?);
            self.components
                .call_as(c, appid, &message, self.clock.now())
                .await
                .map(drop)
        })
    }
}
