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
