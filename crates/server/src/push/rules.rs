//! Reply rules from the config: match on message type, event and EventKey, exact keyword,
//! keyword contained, or regex; answer with any reply type. A subscribe welcome is a rule
//! with `event = "subscribe"`, a default reply a rule with no condition.

use futures_util::future::BoxFuture;
use regex::Regex;
use wxgate_proto::{MessageKind, Reply};

use super::handler::{Handled, Handler, MessageContext};
use crate::config::RuleConfig;
use crate::error::{Error, Result};

struct Rule {
    config: RuleConfig,
    regex: Option<Regex>,
}

pub struct RulesHandler {
    rules: Vec<Rule>,
}

impl RulesHandler {
    pub fn new(configs: &[RuleConfig]) -> Result<Self> {
        let rules = configs
            .iter()
            .map(|c| {
                let regex = c
                    .regex
                    .as_deref()
                    .map(Regex::new)
                    .transpose()
                    .map_err(|e| Error::Config(format!("rule regex: {e}")))?;
                Ok(Rule {
                    config: c.clone(),
                    regex,
                })
            })
            .collect::<Result<_>>()?;
        Ok(RulesHandler { rules })
    }

    /// The first matching rule's reply, templated.
    pub fn reply_for(&self, ctx: &MessageContext) -> Option<Reply> {
        let m = &ctx.message;
        let content = match &m.kind {
            MessageKind::Text { content, .. } => Some(content.as_str()),
            MessageKind::Voice { recognition, .. } => recognition.as_deref(),
            _ => None,
        };
        let event = m.raw.text("Event");
        let event_key = m.raw.text("EventKey");
        let rule = self.rules.iter().find(|r| {
            let c = &r.config;
            c.msg_type.as_deref().is_none_or(|t| t == m.msg_type)
                && c.event
                    .as_deref()
                    .is_none_or(|e| event.is_some_and(|ev| ev.eq_ignore_ascii_case(e)))
                && c.event_key.as_deref().is_none_or(|k| event_key == Some(k))
                && c.keyword
                    .as_deref()
                    .is_none_or(|k| content.is_some_and(|t| t.trim() == k))
                && c.contains
                    .as_deref()
                    .is_none_or(|k| content.is_some_and(|t| t.contains(k)))
                && r.regex
                    .as_ref()
                    .is_none_or(|re| content.is_some_and(|t| re.is_match(t)))
        })?;
        let mut reply = rule.config.reply.clone();
        if let Reply::Text { content: text } = &mut reply {
            if text.contains('{') {
                *text = text
                    .replace("{openid}", &m.from_user_name)
                    .replace("{content}", content.unwrap_or(""));
            }
        }
        Some(reply)
    }
}

impl Handler for RulesHandler {
    fn name(&self) -> &'static str {
        "rules"
    }

    fn handle<'a>(&'a self, ctx: &'a MessageContext) -> BoxFuture<'a, Result<Handled>> {
        Box::pin(async move { Ok(self.reply_for(ctx).map_or(Handled::Pass, Handled::Reply)) })
    }
}
