//! Messages the account sends: 客服消息 (customer-service messages), with the app's
//! access_token. The message body is the JSON WeChat documents per `msgtype`
//! (`Reply::to_custom_message` writes it).

use serde::{Deserialize, Serialize};

use super::{Ack, Endpoint, Method};

/// `POST /cgi-bin/message/custom/send?access_token= {touser, msgtype, ...}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomSend(pub serde_json::Value);

impl Endpoint for CustomSend {
    const PATH: &'static str = "/cgi-bin/message/custom/send";
    const METHOD: Method = Method::Post;
    const NEEDS_ACCESS_TOKEN: bool = true;
    type Answer = Ack;
}

/// `POST /cgi-bin/message/subscribe/send?access_token= {touser, template_id, page, data,
/// miniprogram_state, lang}`: a subscribe message (订阅消息), which the user must have
/// accepted for that template (one send per acceptance; 43101 otherwise).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubscribeSend(pub serde_json::Value);

impl Endpoint for SubscribeSend {
    const PATH: &'static str = "/cgi-bin/message/subscribe/send";
    const METHOD: Method = Method::Post;
    const NEEDS_ACCESS_TOKEN: bool = true;
    type Answer = Ack;
}
