//! Messages the account sends: 客服消息 (customer-service messages), with the app's
//! access_token. The message body is the JSON WeChat documents per `msgtype`
//! (`Reply::to_custom_message` writes it).

use serde::{Deserialize, Serialize};

use super::Ack;

/// `POST /cgi-bin/message/custom/send?access_token= {touser, msgtype, ...}`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomSend(pub serde_json::Value);

/// `POST /cgi-bin/message/subscribe/send?access_token= {touser, template_id, page, data,
/// miniprogram_state, lang}`: a subscribe message (订阅消息), which the user must have
/// accepted for that template (one send per acceptance; 43101 otherwise).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubscribeSend(pub serde_json::Value);

/// A template message's answer: WeChat's status and the message's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateMsgId {
    #[serde(default)]
    pub errcode: i64,
    #[serde(default)]
    pub errmsg: String,
    pub msgid: u64,
}

super::proxied! {
    /// `POST /cgi-bin/message/custom/typing?access_token= {touser, command}`
    CustomTyping;
    /// `POST /cgi-bin/message/template/send?access_token= {touser, template_id, data, ...}`
    TemplateSend;
    /// `POST /cgi-bin/message/subscribe/bizsend?access_token=`: an Official Account's
    /// subscription message.
    SubscribeBizSend;
}

super::endpoints! {
    CustomSend: Post "/cgi-bin/message/custom/send", WithAccessToken -> Ack;
    SubscribeSend: Post "/cgi-bin/message/subscribe/send", WithAccessToken -> Ack;
    CustomTyping: Post "/cgi-bin/message/custom/typing", WithAccessToken -> Ack;
    TemplateSend: Post "/cgi-bin/message/template/send", WithAccessToken -> TemplateMsgId;
    SubscribeBizSend: Post "/cgi-bin/message/subscribe/bizsend", WithAccessToken -> Ack;
}
