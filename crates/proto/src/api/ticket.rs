//! JS-SDK tickets: `jsapi_ticket` (for `wx.config`) and the `wx_card` ticket, from
//! `/cgi-bin/ticket/getticket` with the app's access_token.

use serde::{Deserialize, Serialize};

use super::{non_empty, two_hours, Endpoint, Method};

/// `GET /cgi-bin/ticket/getticket?access_token=&type=jsapi|wx_card`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetTicket {
    #[serde(rename = "type")]
    pub ticket_type: String,
}

impl Endpoint for GetTicket {
    const PATH: &'static str = "/cgi-bin/ticket/getticket";
    const METHOD: Method = Method::Get;
    const NEEDS_ACCESS_TOKEN: bool = true;
    type Answer = Ticket;
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
