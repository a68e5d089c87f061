//! 第三方平台 (the open platform): the component's own credentials. The component's
//! token, `component_access_token`, comes from its AppSecret and the
//! `component_verify_ticket` WeChat pushes to the platform every ten minutes; WeChat
//! answers 61005 (ticket expired), 61006 (ticket invalid) and 61004 (caller's IP not
//! whitelisted) here.

use serde::{Deserialize, Serialize};

use super::{non_empty, two_hours};

/// `POST /cgi-bin/component/api_component_token {component_appid, component_appsecret,
/// component_verify_ticket}`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComponentToken {
    pub component_appid: String,
    pub component_appsecret: String,
    pub component_verify_ticket: String,
}

/// The component's token and its lifetime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentAccessToken {
    #[serde(deserialize_with = "non_empty")]
    pub component_access_token: String,
    /// Seconds left.
    #[serde(default = "two_hours")]
    pub expires_in: i64,
}

super::endpoints! {
    ComponentToken: Post "/cgi-bin/component/api_component_token", WithoutAccessToken -> ComponentAccessToken, names component_appid;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{read_answer, Endpoint};

    /// The request and answer of WeChat's documentation, verbatim.
    #[test]
    fn reads_and_writes_the_documented_example() {
        let req: ComponentToken = serde_json::from_str(
            r#"{
"component_appid": "appid_value" ,
"component_appsecret": "appsecret_value",
"component_verify_ticket": "ticket_value"
}"#,
        )
        .unwrap();
        assert_eq!(req.appid(), "appid_value");
        assert_eq!(req.component_verify_ticket, "ticket_value");
        let a: ComponentAccessToken = read_answer(
            br#"{
"component_access_token": "61W3mEpU66027wgNZ_MhGHNQDHnFATkDa9-2llqrMBjUwxRSNPbVsMmyD-yq8wZETSoE5NQgecigDrSHkPtIYA",
"expires_in": 7200
}"#,
        )
        .unwrap();
        assert_eq!(a.expires_in, 7200);
        assert!(a.component_access_token.starts_with("61W3mEpU"));
        assert_eq!(
            ComponentToken::PATH,
            "/cgi-bin/component/api_component_token"
        );
    }
}
