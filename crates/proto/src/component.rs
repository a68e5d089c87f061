//! The open platform's (第三方平台) pushes to its authorization-event URL: the envelope
//! (`<xml><AppId>..</AppId><Encrypt>..</Encrypt></xml>`, `AppId` where a message push has
//! `ToUserName`), encrypted with the component's EncodingAESKey (the `receiveid` is the
//! component's appid), and what it carries once decrypted: the `component_verify_ticket`
//! every 10 minutes, and the authorization events (`authorized`, `updateauthorized`,
//! `unauthorized`).

use crate::{xml, Error, Result};

/// The accounts WeChat's release test (全网发布检测) pushes through a platform before it
/// may go live, as the documentation lists them: the five Official Accounts, then the
/// five Mini Programs. A platform answers their pushes as the test requires.
pub const RELEASE_TEST_ACCOUNTS: &[&str] = &[
    "wx570bc396a51b8ff8",
    "wx9252c5e0bb1836fc",
    "wx8e1097c5bc82cde9",
    "wx14550af28c71a144",
    "wxa35b9c23cfe664eb",
    "wxd101a85aa106f53e",
    "wxc39235c15087f6f3",
    "wx7720d01d4b2a4500",
    "wx05d483572dcd5d8b",
    "wx5910277cae6fd970",
];

/// The encrypted envelope. Only `AppId` and `Encrypt` are kept; the rest streams by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentEnvelope {
    pub app_id: Option<String>,
    pub encrypt: String,
}

impl ComponentEnvelope {
    pub fn parse(input: &str, limit: usize) -> Result<Self> {
        let [app_id, encrypt] = xml::root_texts(input, limit, ["AppId", "Encrypt"])?;
        Ok(ComponentEnvelope {
            app_id,
            encrypt: encrypt.ok_or(Error::MissingField("Encrypt"))?,
        })
    }
}

/// An authorizer's grant as the `authorized` and `updateauthorized` events carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub authorizer_appid: String,
    /// Exchanged at `api_query_auth` for the authorizer's tokens.
    pub authorization_code: String,
    /// Unix seconds.
    pub authorization_code_expired_time: i64,
    pub pre_auth_code: String,
}

/// What the authorization-event URL received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentEvent {
    /// `component_verify_ticket`: valid 12 hours, the base of the component's token.
    VerifyTicket {
        ticket: String,
    },
    Authorized(Grant),
    UpdateAuthorized(Grant),
    Unauthorized {
        authorizer_appid: String,
    },
    /// An `InfoType` wxgate does not act on (kept so it can be logged by name).
    Other {
        info_type: String,
    },
}

/// A decrypted push: the component it is for, when, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentPush {
    pub app_id: String,
    pub create_time: i64,
    pub event: ComponentEvent,
}

impl ComponentPush {
    pub fn parse(plaintext: &str, limit: usize) -> Result<Self> {
        let doc = xml::parse(plaintext, limit)?;
        let f = &doc.fields;
        let text = |name: &'static str| f.text(name).map(str::trim).filter(|t| !t.is_empty());
        let required = |name: &'static str| {
            text(name)
                .map(str::to_owned)
                .ok_or(Error::MissingField(name))
        };
        let app_id = required("AppId")?;
        let create_time = text("CreateTime").and_then(|t| t.parse().ok()).unwrap_or(0);
        let info_type = required("InfoType")?;
        let grant = || -> Result<Grant> {
            Ok(Grant {
                authorizer_appid: required("AuthorizerAppid")?,
                authorization_code: required("AuthorizationCode")?,
                authorization_code_expired_time: text("AuthorizationCodeExpiredTime")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0),
                pre_auth_code: text("PreAuthCode").unwrap_or("").to_owned(),
            })
        };
        let event = match info_type.as_str() {
            "component_verify_ticket" => ComponentEvent::VerifyTicket {
                ticket: required("ComponentVerifyTicket")?,
            },
            "authorized" => ComponentEvent::Authorized(grant()?),
            "updateauthorized" => ComponentEvent::UpdateAuthorized(grant()?),
            "unauthorized" => ComponentEvent::Unauthorized {
                authorizer_appid: required("AuthorizerAppid")?,
            },
            _ => ComponentEvent::Other { info_type },
        };
        Ok(ComponentPush {
            app_id,
            create_time,
            event,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documentation's decrypted ticket push, verbatim.
    #[test]
    fn reads_the_documented_ticket_push() {
        let p = ComponentPush::parse(
            "<xml>\n<AppId>some_appid</AppId>\n<CreateTime>1413192605</CreateTime>\n<InfoType>component_verify_ticket</InfoType>\n<ComponentVerifyTicket>some_verify_ticket</ComponentVerifyTicket>\n</xml>",
            xml::DEFAULT_LIMIT,
        )
        .unwrap();
        assert_eq!(p.app_id, "some_appid");
        assert_eq!(p.create_time, 1413192605);
        assert_eq!(
            p.event,
            ComponentEvent::VerifyTicket {
                ticket: "some_verify_ticket".into()
            }
        );
    }

    /// An `authorized` event as WeChat sends it (the release test's account), and the
    /// `unauthorized` one.
    #[test]
    fn reads_authorization_events() {
        let p = ComponentPush::parse("<xml><AppId><![CDATA[wx851e238de6d96eaa]]></AppId>\n<CreateTime>1573485628</CreateTime>\n<InfoType><![CDATA[authorized]]></InfoType><AuthorizerAppid><![CDATA[wx570bc396a51b8ff8]]></AuthorizerAppid><AuthorizationCode><![CDATA[queryauthcode@@@Xl2LZcrx]]></AuthorizationCode><AuthorizationCodeExpiredTime><![CDATA[1573489228]]></AuthorizationCodeExpiredTime><PreAuthCode><![CDATA[preauthcode@@@sHSgAQxc]]></PreAuthCode></xml>", xml::DEFAULT_LIMIT).unwrap();
        let ComponentEvent::Authorized(g) = p.event else {
            panic!("{p:?}")
        };
        assert_eq!(g.authorizer_appid, "wx570bc396a51b8ff8");
        assert_eq!(g.authorization_code, "queryauthcode@@@Xl2LZcrx");
        assert_eq!(g.authorization_code_expired_time, 1573489228);
        let p = ComponentPush::parse("<xml><AppId><![CDATA[wxad6a05d0cd13e12c]]></AppId>\n<CreateTime>1570780299</CreateTime>\n<InfoType><![CDATA[unauthorized]]></InfoType><AuthorizerAppid><![CDATA[wx570bc396a51b8ff8]]></AuthorizerAppid></xml>", xml::DEFAULT_LIMIT).unwrap();
        assert_eq!(
            p.event,
            ComponentEvent::Unauthorized {
                authorizer_appid: "wx570bc396a51b8ff8".into()
            }
        );
        assert!(ComponentPush::parse(
            "<xml><AppId>a</AppId><InfoType>authorized</InfoType></xml>",
            1024
        )
        .is_err());
        let env = ComponentEnvelope::parse("<xml><AppId><![CDATA[wx6d80ca40ad4e00fc]]></AppId><Encrypt><![CDATA[tGwC]]></Encrypt></xml>", 1024).unwrap();
        assert_eq!(
            (env.app_id.as_deref(), env.encrypt.as_str()),
            (Some("wx6d80ca40ad4e00fc"), "tGwC")
        );
    }
}
