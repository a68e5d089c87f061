//! The message pusher: sends a message or event to a gateway exactly as WeChat does, then
//! checks the reply as WeChat would (signature, decryption, addresses) and returns it
//! parsed.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wxgate_proto::crypto::MsgCrypt;
use wxgate_proto::json;
use wxgate_proto::message::write_fields;
use wxgate_proto::reply::{parse_encrypted_reply, parse_encrypted_reply_json};
use wxgate_proto::signature::server_signature;
use wxgate_proto::xml::{self, Fields, Value, DEFAULT_LIMIT};
use wxgate_proto::Envelope;
pub use wxgate_proto::{MessageMode, PushFormat};

/// Where and how to push.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushTarget {
    /// The gateway's push URL (`http://127.0.0.1:18340/wx/service`).
    pub url: String,
    pub token: String,
    pub appid: String,
    #[serde(default)]
    pub encoding_aes_key: Option<String>,
    pub mode: MessageMode,
    /// The data format (数据格式): `xml` (WeChat's default) or `json`.
    #[serde(default)]
    pub format: PushFormat,
}

/// Overrides for tests of replays and windows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PushOptions {
    #[serde(default)]
    pub timestamp: Option<i64>,
    #[serde(default)]
    pub nonce: Option<String>,
}

/// What the gateway answered.
#[derive(Debug, Clone, Serialize)]
pub struct PushOutcome {
    pub status: u16,
    /// The message as written before sealing (XML or JSON).
    pub sent_plaintext: String,
    /// The body posted: the plaintext, or the encrypted envelope in safe mode.
    pub sent: String,
    /// The raw answer body.
    pub body: String,
    /// The reply as the gateway wrote it before sealing, once opened.
    pub reply_plaintext: Option<String>,
    /// The reply, decrypted and parsed; `None` for `success` or an empty answer.
    pub reply: Option<Fields>,
    /// Whether the reply came encrypted.
    pub encrypted: bool,
    #[serde(serialize_with = "millis")]
    pub elapsed: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// Why a push or its reply failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{0} mode needs the account's encoding_aes_key")]
    NoAesKey(&'static str),
    #[error("invalid push settings: {0}")]
    Settings(wxgate_proto::Error),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("the reply's msg_signature or encryption is wrong: {0}")]
    ReplyCrypto(wxgate_proto::Error),
    #[error("the reply is not a valid WeChat reply: {0}")]
    ReplyXml(wxgate_proto::Error),
    #[error("safe mode needs an encrypted reply; the gateway answered plaintext")]
    PlaintextInSafeMode,
    #[error("the reply is addressed wrongly: {0}")]
    ReplyAddress(String),
}

use crate::clock::real_now as now;

/// Pushes `message` to the gateway and checks its reply.
pub async fn push(
    client: &reqwest::Client,
    target: &PushTarget,
    message: &Fields,
    opts: &PushOptions,
) -> Result<PushOutcome, PushError> {
    let json = target.format == PushFormat::Json;
    let write = |fields: &Fields| {
        if json {
            json::write_fields(fields)
        } else {
            write_fields(fields)
        }
    };
    let plaintext = write(message);
    let timestamp = opts.timestamp.unwrap_or_else(now).to_string();
    let nonce = opts
        .nonce
        .clone()
        .unwrap_or_else(|| rand::random::<u32>().to_string());
    let to = message.text("ToUserName").unwrap_or_default().to_owned();
    let from = message.text("FromUserName").unwrap_or_default().to_owned();

    let mut url = url::Url::parse(&target.url).map_err(|e| PushError::Http(e.to_string()))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair(
            "signature",
            &server_signature(&target.token, &timestamp, &nonce),
        );
        q.append_pair("timestamp", &timestamp);
        q.append_pair("nonce", &nonce);
        q.append_pair("openid", &from);
    }
    let crypt = match target.mode {
        MessageMode::Plaintext => None,
        mode => {
            let key = target
                .encoding_aes_key
                .as_deref()
                .ok_or(PushError::NoAesKey(match mode {
                    MessageMode::Safe => "safe",
                    _ => "compatible",
                }))?;
            Some(MsgCrypt::new(&target.token, key, &target.appid).map_err(PushError::Settings)?)
        }
    };
    let sent_plaintext = plaintext.clone();
    let body = match (&crypt, target.mode) {
        (None, _) => plaintext,
        (Some(c), mode) => {
            let sealed = c.seal(&plaintext, &timestamp, &nonce);
            url.query_pairs_mut()
                .append_pair("encrypt_type", "aes")
                .append_pair("msg_signature", &sealed.msg_signature);
            match (mode, json) {
                (MessageMode::Safe, false) => Envelope::to_xml(&to, &sealed.encrypt),
                (MessageMode::Safe, true) => Envelope::to_json(&to, &sealed.encrypt),
                _ => {
                    let mut both = message.clone();
                    both.0.push(("Encrypt".into(), Value::Text(sealed.encrypt)));
                    write(&both)
                }
            }
        }
    };

    let sent = body.clone();
    let started = Instant::now();
    let resp = client
        .post(url)
        .header(
            "content-type",
            if json { "application/json" } else { "text/xml" },
        )
        .body(body)
        .send()
        .await
        .map_err(|e| PushError::Http(e.to_string()))?;
    let status = resp.status().as_u16();
    let text = resp
        .text()
        .await
        .map_err(|e| PushError::Http(e.to_string()))?;
    let elapsed = started.elapsed();
    let mut outcome = PushOutcome {
        status,
        sent_plaintext,
        sent,
        body: text.clone(),
        reply_plaintext: None,
        reply: None,
        encrypted: false,
        elapsed,
    };
    let trimmed = text.trim();
    if status != 200 || trimmed.is_empty() || trimmed == "success" {
        return Ok(outcome);
    }
    let sealed = if json {
        parse_encrypted_reply_json(trimmed, DEFAULT_LIMIT)
    } else {
        parse_encrypted_reply(trimmed, DEFAULT_LIMIT)
    };
    let reply_text = match sealed {
        Ok(sealed) => {
            let c = crypt.as_ref().ok_or(PushError::ReplyCrypto(
                wxgate_proto::Error::InvalidAesKey("an encrypted reply in plaintext mode"),
            ))?;
            outcome.encrypted = true;
            c.open(
                &sealed.msg_signature,
                &sealed.timestamp,
                &sealed.nonce,
                &sealed.encrypt,
            )
            .map_err(PushError::ReplyCrypto)?
        }
        Err(_) if target.mode == MessageMode::Safe => return Err(PushError::PlaintextInSafeMode),
        Err(_) => trimmed.to_owned(),
    };
    outcome.reply_plaintext = Some(reply_text.clone());
    if json {
        // A JSON push's reply is data for WeChat (消息推送's `{"demo_resp": ...}`), not a
        // message addressed to the user.
        let reply = json::parse(&reply_text, DEFAULT_LIMIT).map_err(PushError::ReplyXml)?;
        outcome.reply = Some(reply);
        return Ok(outcome);
    }
    let reply = xml::parse(&reply_text, DEFAULT_LIMIT)
        .map_err(PushError::ReplyXml)?
        .fields;
    if reply.text("ToUserName") != Some(from.as_str())
        || reply.text("FromUserName") != Some(to.as_str())
    {
        return Err(PushError::ReplyAddress(format!(
            "expected To={from} From={to}, got To={:?} From={:?}",
            reply.text("ToUserName"),
            reply.text("FromUserName")
        )));
    }
    outcome.reply = Some(reply);
    Ok(outcome)
}

/// Pushes what is due to the components' authorization-event URLs (tickets, events),
/// sealed as WeChat seals them: safe mode, the component's appid as `receiveid`, an
/// envelope with `AppId` and `Encrypt`.
pub async fn push_component_events(p: &crate::Platform, http: &reqwest::Client) {
    for due in p.component_pushes_due(p.now()) {
        let Ok(app) = p.app(&due.component_appid) else {
            continue;
        };
        let (Some(token), Some(key)) = (app.token.clone(), app.encoding_aes_key.clone()) else {
            continue;
        };
        let Ok(crypt) = wxgate_proto::crypto::MsgCrypt::new(&token, &key, &due.component_appid)
        else {
            continue;
        };
        let timestamp = p.now().to_string();
        let nonce = rand::random::<u32>().to_string();
        let sealed = crypt.seal(&due.xml, &timestamp, &nonce);
        let body = format!(
            "<xml><AppId><![CDATA[{}]]></AppId><Encrypt><![CDATA[{}]]></Encrypt></xml>",
            due.component_appid, sealed.encrypt
        );
        let signature = wxgate_proto::signature::server_signature(&token, &timestamp, &nonce);
        let Ok(mut url) = url::Url::parse(&due.url) else {
            continue;
        };
        url.query_pairs_mut()
            .append_pair("signature", &signature)
            .append_pair("timestamp", &timestamp)
            .append_pair("nonce", &nonce)
            .append_pair("encrypt_type", "aes")
            .append_pair("msg_signature", &sealed.msg_signature);
        let _ = http.post(url).body(body).send().await;
    }
}
