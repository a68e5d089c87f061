//! 自定义菜单: the account's custom menu, with the app's access_token.

use serde::{Deserialize, Serialize};

use super::Ack;

/// `POST /cgi-bin/menu/create?access_token= {"button": [...]}`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CreateMenu(pub serde_json::Value);

/// `GET /cgi-bin/menu/get?access_token=`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GetMenu {}

/// `{"menu": {"button": [...]}}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Menu {
    pub menu: serde_json::Value,
}

/// `GET /cgi-bin/menu/delete?access_token=`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteMenu {}

/// `GET /cgi-bin/get_current_selfmenu_info?access_token=`: the menu as users see it,
/// however it was set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetCurrentSelfMenuInfo {}

super::endpoints! {
    CreateMenu: Post "/cgi-bin/menu/create", WithAccessToken -> Ack;
    GetMenu: Get "/cgi-bin/menu/get", WithAccessToken -> Menu;
    DeleteMenu: Get "/cgi-bin/menu/delete", WithAccessToken -> Ack;
    GetCurrentSelfMenuInfo: Get "/cgi-bin/get_current_selfmenu_info", WithAccessToken -> serde_json::Value;
}
