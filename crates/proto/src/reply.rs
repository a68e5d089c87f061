//! Passive replies (被动回复用户消息) and the encrypted reply envelope.
//!
//! A reply goes back in the HTTP answer to a push. `success` (or an empty body) tells
//! WeChat there is nothing to say. In safe mode the reply XML is encrypted and wrapped in
//! `<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>`.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::crypto::Sealed;
use crate::xml::{self, push_cdata_field, push_plain_field};
use crate::{Error, Result};

/// The answer that means "no reply".
pub const SUCCESS: &str = "success";

/// WeChat shows at most 8 articles in a news reply.
pub const MAX_ARTICLES: usize = 8;

/// One article of a news reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Article {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub pic_url: String,
    #[serde(default)]
    pub url: String,
}

/// A passive reply. The JSON form (`{"type":"text","content":"..."}`) is what rules in the
/// config and webhooks use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    Text {
        content: String,
    },
    Image {
        media_id: String,
    },
    Voice {
        media_id: String,
    },
    Video {
        media_id: String,
        #[serde(default)]
        title: String,
        #[serde(default)]
        description: String,
    },
    Music {
        #[serde(default)]
        title: String,
        #[serde(default)]
        description: String,
        #[serde(default)]
        music_url: String,
        #[serde(default)]
        hq_music_url: String,
        thumb_media_id: String,
    },
    News {
        articles: Vec<Article>,
    },
}

impl Reply {
    /// The `MsgType` of the reply.
    pub fn msg_type(&self) -> &'static str {
        match self {
            Reply::Text { .. } => "text",
            Reply::Image { .. } => "image",
            Reply::Voice { .. } => "voice",
            Reply::Video { .. } => "video",
            Reply::Music { .. } => "music",
            Reply::News { .. } => "news",
        }
    }

    /// Checks what WeChat would refuse (a news reply needs 1 to 8 articles).
    pub fn validate(&self) -> Result<()> {
        if let Reply::News { articles } = self {
            if articles.is_empty() || articles.len() > MAX_ARTICLES {
                return Err(Error::NewsArticles(articles.len()));
            }
        }
        Ok(())
    }

    /// The reply XML. `to_user_name` is the user's openid (the push's `FromUserName`),
    /// `from_user_name` the account's original ID (the push's `ToUserName`).
    pub fn to_xml(
        &self,
        to_user_name: &str,
        from_user_name: &str,
        create_time: i64,
    ) -> Result<String> {
        self.validate()?;
        // Room for the tags and every text: growing the buffer once cost more than
        // writing a text reply.
        let texts = match self {
            Reply::Text { content } => content.len(),
            Reply::News { articles } => articles
                .iter()
                .map(|a| 160 + a.title.len() + a.description.len() + a.pic_url.len() + a.url.len())
                .sum(),
            // Media ids, titles and links: a few hundred bytes.
            _ => 512,
        };
        let mut out =
            String::with_capacity(320 + to_user_name.len() + from_user_name.len() + texts);
        out.push_str("<xml>");
        push_cdata_field(&mut out, "ToUserName", to_user_name);
        push_cdata_field(&mut out, "FromUserName", from_user_name);
        push_plain_field(&mut out, "CreateTime", create_time);
        push_cdata_field(&mut out, "MsgType", self.msg_type());
        match self {
            Reply::Text { content } => push_cdata_field(&mut out, "Content", content),
            Reply::Image { media_id } => {
                out.push_str("<Image>");
                push_cdata_field(&mut out, "MediaId", media_id);
                out.push_str("</Image>");
            }
            Reply::Voice { media_id } => {
                out.push_str("<Voice>");
                push_cdata_field(&mut out, "MediaId", media_id);
                out.push_str("</Voice>");
            }
            Reply::Video {
                media_id,
                title,
                description,
            } => {
                out.push_str("<Video>");
                push_cdata_field(&mut out, "MediaId", media_id);
                push_cdata_field(&mut out, "Title", title);
                push_cdata_field(&mut out, "Description", description);
                out.push_str("</Video>");
            }
            Reply::Music {
                title,
                description,
                music_url,
                hq_music_url,
                thumb_media_id,
            } => {
                out.push_str("<Music>");
                push_cdata_field(&mut out, "Title", title);
                push_cdata_field(&mut out, "Description", description);
                push_cdata_field(&mut out, "MusicUrl", music_url);
                push_cdata_field(&mut out, "HQMusicUrl", hq_music_url);
                push_cdata_field(&mut out, "ThumbMediaId", thumb_media_id);
                out.push_str("</Music>");
            }
            Reply::News { articles } => {
                push_plain_field(&mut out, "ArticleCount", articles.len());
                out.push_str("<Articles>");
                for a in articles {
                    out.push_str("<item>");
                    push_cdata_field(&mut out, "Title", &a.title);
                    push_cdata_field(&mut out, "Description", &a.description);
                    push_cdata_field(&mut out, "PicUrl", &a.pic_url);
                    push_cdata_field(&mut out, "Url", &a.url);
                    out.push_str("</item>");
                }
                out.push_str("</Articles>");
            }
        }
        out.push_str("</xml>");
        Ok(out)
    }

    /// The same content as a customer-service message (`/cgi-bin/message/custom/send`),
    /// for a reply that missed the 5-second window of a passive reply.
    pub fn to_custom_message(&self, touser: &str) -> Result<serde_json::Value> {
        self.validate()?;
        let msgtype = self.msg_type();
        let body = match self {
            Reply::Text { content } => json!({ "content": content }),
            Reply::Image { media_id } | Reply::Voice { media_id } => {
                json!({ "media_id": media_id })
            }
            Reply::Video {
                media_id,
                title,
                description,
            } => json!({
                "media_id": media_id,
                "thumb_media_id": media_id,
                "title": title,
                "description": description,
            }),
            Reply::Music {
                title,
                description,
                music_url,
                hq_music_url,
                thumb_media_id,
            } => json!({
                "title": title,
                "description": description,
                "musicurl": music_url,
                "hqmusicurl": hq_music_url,
                "thumb_media_id": thumb_media_id,
            }),
            Reply::News { articles } => json!({
                "articles": articles.iter().map(|a| json!({
                    "title": a.title,
                    "description": a.description,
                    "url": a.url,
                    "picurl": a.pic_url,
                })).collect::<Vec<_>>()
            }),
        };
        Ok(json!({ "touser": touser, "msgtype": msgtype, msgtype: body }))
    }
}

/// The encrypted reply envelope of safe mode.
pub fn encrypted_reply_xml(sealed: &Sealed) -> String {
    // Room for every text and the 133 bytes of markup: a buffer grown once copied the
    // whole `Encrypt` again.
    let texts = sealed.encrypt.len()
        + sealed.msg_signature.len()
        + sealed.timestamp.len()
        + sealed.nonce.len();
    let mut out = String::with_capacity(texts + 160);
    out.push_str("<xml>");
    // Base64 and hex this crate made: nothing to clean.
    xml::push_own_cdata_field(&mut out, "Encrypt", &sealed.encrypt);
    xml::push_own_cdata_field(&mut out, "MsgSignature", &sealed.msg_signature);
    push_plain_field(&mut out, "TimeStamp", &sealed.timestamp);
    push_cdata_field(&mut out, "Nonce", &sealed.nonce);
    out.push_str("</xml>");
    out
}

/// Reads an encrypted reply envelope (what WeChat does with a safe-mode reply).
pub fn parse_encrypted_reply(input: &str, limit: usize) -> Result<Sealed> {
    sealed_of(&xml::parse(input, limit)?.fields)
}

/// Writes the encrypted reply to a JSON push: the same four fields as
/// [`encrypted_reply_xml`], `TimeStamp` as a number (消息推送's JSON example).
pub fn encrypted_reply_json(sealed: &Sealed) -> String {
    serde_json::json!({
        "Encrypt": sealed.encrypt,
        "MsgSignature": sealed.msg_signature,
        "TimeStamp": sealed.timestamp.parse::<u64>().ok(),
        "Nonce": sealed.nonce,
    })
    .to_string()
}

/// Reads the encrypted reply to a JSON push.
pub fn parse_encrypted_reply_json(input: &str, limit: usize) -> Result<Sealed> {
    sealed_of(&crate::json::parse(input, limit)?)
}

fn sealed_of(f: &xml::Fields) -> Result<Sealed> {
    let get = |name: &'static str| {
        f.text(name)
            .map(str::to_owned)
            .ok_or(Error::MissingField(name))
    };
    Ok(Sealed {
        encrypt: get("Encrypt")?,
        msg_signature: get("MsgSignature")?,
        timestamp: get("TimeStamp")?,
        nonce: get("Nonce")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encrypted_reply_is_written_in_its_first_allocation() {
        for len in [0, 1, 24, 44, 300, 344, 1000, 4096] {
            let sealed = Sealed {
                encrypt: "A".repeat(len),
                msg_signature: "0".repeat(40),
                timestamp: "1700000000".into(),
                nonce: "0123456789abcdef".into(),
            };
            let xml = encrypted_reply_xml(&sealed);
            let texts = len + 40 + 10 + 16;
            assert_eq!(xml.len(), texts + 133, "the markup is 133 bytes");
            assert_eq!(xml.capacity(), texts + 160, "grown at {len}");
        }
    }
}
