//! 自定义菜单: the account's custom menu, with the app's access_token.

use serde::{Deserialize, Serialize};

use super::{Ack, Endpoint, Method};

/// `POST /cgi-bin/menu/create?access_token= {"button": [...]}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CreateMenu(pub serde_json::Value);

impl Endpoint for CreateMenu {
    const PATH: &'static str = "/cgi-bin/menu/create";
    const METHOD: Method = Method::Post;
    const NEEDS_ACCESS_TOKEN: bool = true;
    type Answer = Ack;
}

/// `GET /cgi-bin/menu/get?access_token=`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetMenu {}

impl Endpoint for GetMenu {
    const PATH: &'static str = "/cgi-bin/menu/get";
    const METHOD: Method = Method::Get;
    const NEEDS_ACCESS_TOKEN: bool = true;
    type Answer = Menu;
}

/// `{"menu": {"button": [...]}}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Menu {
    pub menu: serde_json::Value,
}
