//! JS-SDK tickets: `jsapi_ticket` (for `wx.config`) and the `wx_card` ticket, from
//! `/cgi-bin/ticket/getticket` with the app's access_token.

use serde::{Deserialize, Serialize};

use super::{non_empty, two_hours};

/// `GET /cgi-bin/ticket/getticket?access_token=&type=jsapi|wx_card`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GetTicket {
    #[serde(rename = "type")]
    pub ticket_type: String,
}

/// `{"errcode":0,"errmsg":"ok","ticket":"...","expires_in":7200}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    #[serde(default)]
    pub errcode: i64,
    #[serde(default)]
    pub errmsg: String,
    #[serde(deserialize_with = "non_empty")]
    pub ticket: String,
    #[serde(default = "two_hours")]
    pub expires_in: i64,
}

super::endpoints! {
    GetTicket: Get "/cgi-bin/ticket/getticket", WithAccessToken -> Ticket;
}
