//! 代公众号 / 代小程序: the calls a third-party platform makes *for* a merchant that
//! authorized it, with the platform's `component_access_token` where the merchant's own
//! server would use the merchant's AppSecret. Web authorization (代公众号发起网页授权:
//! the authorize link carries `component_appid`, the code is exchanged here) and the
//! Mini Program's login (`jscode2session` for an authorized Mini Program; 61003 when the
//! Mini Program has not authorized the platform). The answers are those of the
//! merchant's own calls (`sns::UserToken`, `sns::MiniProgramSession`).

use serde::{Deserialize, Serialize};

use super::sns::{MiniProgramSession, UserToken};

/// `GET /sns/oauth2/component/access_token?appid=&code=&grant_type=authorization_code
/// &component_appid=&component_access_token=`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComponentOauthAccessToken {
    /// The merchant's (authorizer's) appid.
    pub appid: String,
    pub code: String,
    pub grant_type: String,
    pub component_appid: String,
}

impl ComponentOauthAccessToken {
    pub fn new(appid: &str, code: &str, component_appid: &str) -> Self {
        ComponentOauthAccessToken {
            appid: appid.into(),
            code: code.into(),
            grant_type: "authorization_code".into(),
            component_appid: component_appid.into(),
        }
    }
}

/// `GET /sns/oauth2/component/refresh_token?appid=&grant_type=refresh_token
/// &component_appid=&component_access_token=&refresh_token=`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComponentOauthRefreshToken {
    pub appid: String,
    pub grant_type: String,
    pub component_appid: String,
    pub refresh_token: String,
}

impl ComponentOauthRefreshToken {
    pub fn new(appid: &str, refresh_token: &str, component_appid: &str) -> Self {
        ComponentOauthRefreshToken {
            appid: appid.into(),
            grant_type: "refresh_token".into(),
            component_appid: component_appid.into(),
            refresh_token: refresh_token.into(),
        }
    }
}

/// `GET /sns/component/jscode2session?appid=&js_code=&grant_type=authorization_code
/// &component_appid=&component_access_token=`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComponentJsCode2Session {
    /// The Mini Program's appid.
    pub appid: String,
    pub js_code: String,
    pub grant_type: String,
    pub component_appid: String,
}

impl ComponentJsCode2Session {
    pub fn new(appid: &str, js_code: &str, component_appid: &str) -> Self {
        ComponentJsCode2Session {
            appid: appid.into(),
            js_code: js_code.into(),
            grant_type: "authorization_code".into(),
            component_appid: component_appid.into(),
        }
    }
}

super::endpoints! {
    ComponentOauthAccessToken: Get "/sns/oauth2/component/access_token", WithComponentAccessToken -> UserToken, names component_appid;
    ComponentOauthRefreshToken: Get "/sns/oauth2/component/refresh_token", WithComponentAccessToken -> UserToken, names component_appid;
    ComponentJsCode2Session: Get "/sns/component/jscode2session", WithComponentAccessToken -> MiniProgramSession, names component_appid;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{read_answer, Endpoint};

    /// The documentation's example answer of the Mini Program login, verbatim.
    #[test]
    fn reads_the_documented_login_answer() {
        let a: MiniProgramSession = read_answer(
            br#"{
"openid": "OPENID",
"session_key": "SESSIONKEY",
"unionid":"oHAUs6LSuwgHq-mlnFrffKXw3QYM"
}"#,
        )
        .unwrap();
        assert_eq!(a.openid, "OPENID");
        assert_eq!(a.session_key, "SESSIONKEY");
        assert_eq!(a.unionid.as_deref(), Some("oHAUs6LSuwgHq-mlnFrffKXw3QYM"));
        // The documented refusal: an unauthorized Mini Program.
        let e = read_answer::<MiniProgramSession>(
            br#"{"errcode": 61003, "errmsg": "component is not authorized by this account"}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("61003"), "{e}");
    }

    #[test]
    fn the_requests_carry_the_documented_parameters() {
        let v = serde_json::to_value(ComponentJsCode2Session::new(
            "APPID",
            "JSCODE",
            "COMPONENT_APPID",
        ))
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"appid": "APPID", "js_code": "JSCODE", "grant_type": "authorization_code", "component_appid": "COMPONENT_APPID"})
        );
        // The call is counted and checked under the component.
        assert_eq!(
            ComponentOauthAccessToken::new("a", "c", "COMPONENT").appid(),
            "COMPONENT"
        );
        let v = serde_json::to_value(ComponentOauthRefreshToken::new("APPID", "RT", "C")).unwrap();
        assert_eq!(v["grant_type"], "refresh_token");
        assert_eq!(v["refresh_token"], "RT");
    }
}
