//! What a push looks like on the wire before it is a message: the account's encryption
//! mode, which decides what a push must be, and the encrypted envelope of the safe and
//! compatible modes.

use serde::Serialize;

use crate::xml;
use crate::{Error, Result};

/// The account's message encryption mode (消息加解密方式), as set in WeChat's server
/// configuration. It decides what a push must look like; nothing in a push decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageMode {
    /// 明文模式: plaintext XML; `signature` covers token, timestamp and nonce only.
    #[default]
    Plaintext,
    /// 兼容模式: the plaintext fields and `Encrypt` in one document, `encrypt_type=aes`
    /// and `msg_signature` on the URL. Only the decrypted message is trusted (the
    /// plaintext beside it is covered by no signature); WeChat accepts a plaintext or an
    /// encrypted reply, and its FAQ says to answer `encrypt_type=aes` with ciphertext.
    Compatible,
    /// 安全模式: only `ToUserName` and `Encrypt`; the reply must be encrypted.
    Safe,
}

impl MessageMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageMode::Plaintext => "plaintext",
            MessageMode::Compatible => "compatible",
            MessageMode::Safe => "safe",
        }
    }

    /// Whether pushes carry `Encrypt` and `msg_signature` (compatible and safe).
    pub fn is_encrypted(self) -> bool {
        self != MessageMode::Plaintext
    }
}

impl std::fmt::Display for MessageMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for MessageMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "plaintext" | "plain" => Ok(MessageMode::Plaintext),
            "compatible" | "compat" => Ok(MessageMode::Compatible),
            "safe" | "aes" => Ok(MessageMode::Safe),
            other => Err(format!(
                "unknown mode {other:?}: plaintext, compatible or safe"
            )),
        }
    }
}

/// The encrypted push envelope of safe mode: `<xml><ToUserName/><Encrypt/></xml>`. In
/// compatible mode the same document also carries the plaintext fields, which are not
/// read: only what `msg_signature` covers is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub to_user_name: Option<String>,
    pub encrypt: String,
}

impl Envelope {
    /// Reads an envelope document of at most `limit` bytes. Only `ToUserName` and
    /// `Encrypt` are kept; the rest streams by without being built, so that a forged
    /// document costs no memory before its `msg_signature` is checked.
    pub fn parse(input: &str, limit: usize) -> Result<Envelope> {
        let [to_user_name, encrypt] = xml::root_texts(input, limit, ["ToUserName", "Encrypt"])?;
        Ok(Envelope {
            to_user_name,
            encrypt: encrypt.ok_or(Error::MissingField("Encrypt"))?,
        })
    }

    /// Reads the envelope of a JSON push (`{"ToUserName": ..., "Encrypt": ...}`), with
    /// the same care: other members are skipped unbuilt.
    pub fn parse_json(input: &str, limit: usize) -> Result<Envelope> {
        let (to_user_name, encrypt) = crate::json::envelope_texts(input, limit)?;
        Ok(Envelope {
            to_user_name,
            encrypt: encrypt.ok_or(Error::MissingField("Encrypt"))?,
        })
    }

    /// Reads an envelope in the push's format.
    pub fn parse_as(format: crate::PushFormat, input: &str, limit: usize) -> Result<Envelope> {
        match format {
            crate::PushFormat::Xml => Envelope::parse(input, limit),
            crate::PushFormat::Json => Envelope::parse_json(input, limit),
        }
    }

    /// Writes the JSON envelope WeChat sends in safe mode.
    pub fn to_json(to_user_name: &str, encrypt: &str) -> String {
        serde_json::json!({ "ToUserName": to_user_name, "Encrypt": encrypt }).to_string()
    }

    /// Writes the envelope WeChat sends in safe mode.
    pub fn to_xml(to_user_name: &str, encrypt: &str) -> String {
        let mut out = String::with_capacity(encrypt.len() + 96);
        out.push_str("<xml>");
        xml::push_cdata_field(&mut out, "ToUserName", to_user_name);
        xml::push_cdata_field(&mut out, "Encrypt", encrypt);
        out.push_str("</xml>");
        out
    }
}
