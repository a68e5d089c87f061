//! The last [`KEPT`] distinct warnings, for the console: every `warn` or `error` event
//! the gateway logs (an upstream errcode, a refused push and its reason, a failed
//! webhook, the store going away), with the request it happened in.
//!
//! Problems are distinct by level, message and account: a repeat updates its
//! entry (count, last time, latest details) instead of taking a new one, so a stranger's
//! hundred refused requests are one line with a count and cannot push a real problem
//! out of the list.
//!
//! A `tracing` layer beside the log formatter, installed by `wxgate serve` and `demo`.
//! Log lines never carry a secret, a token or a session (the crate's rule), so neither
//! does this; each field is cut to [`FIELD_CHARS`]. The request id comes from
//! [`crate::web::request_id`], the task-local that `http::observe` sets for every
//! request: the request's span is at debug level and absent at the default `info`.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Mutex;

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};

/// Warnings kept.
pub const KEPT: usize = 100;
/// Characters kept of one field's value.
const FIELD_CHARS: usize = 300;

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// Unix seconds (the system clock).
    pub at: i64,
    pub level: &'static str,
    /// Where it was logged (`wxgate::service`, ...).
    pub target: String,
    pub message: String,
    /// The other fields, `name=value` each.
    pub fields: Vec<String>,
    pub request_id: Option<String>,
    /// How many times it happened since it entered the list.
    pub count: u64,
    /// When it first happened (unix seconds).
    pub first_at: i64,
}

impl Problem {
    /// Whether `other` is the same problem (a repeat). Not by target: a repeat left
    /// out of the log ([`crate::sampled`]) comes under another.
    fn same_as(&self, other: &Problem) -> bool {
        self.level == other.level
            && self.message == other.message
            && self.account() == other.account()
    }

    fn account(&self) -> Option<&str> {
        self.fields.iter().find_map(|f| f.strip_prefix("account="))
    }
}

static RECENT: Mutex<VecDeque<Problem>> = Mutex::new(VecDeque::new());

/// The warnings kept, newest first.
pub fn recent() -> Vec<Problem> {
    RECENT
        .lock()
        .map(|r| r.iter().rev().cloned().collect())
        .unwrap_or_default()
}

fn keep(mut p: Problem) {
    if let Ok(mut r) = RECENT.lock() {
        if let Some(i) = r.iter().position(|q| q.same_as(&p)) {
            if let Some(old) = r.remove(i) {
                p.count = old.count.saturating_add(1);
                p.first_at = old.first_at;
            }
        } else if r.len() == KEPT {
            r.pop_front();
        }
        r.push_back(p);
    }
}

/// The layer that keeps warnings.
pub struct Layer;

impl<S: Subscriber> tracing_subscriber::Layer<S> for Layer {
    fn on_event(&self, event: &Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        let level = *event.metadata().level();
        if level > Level::WARN {
            return;
        }
        let mut v = Fields::default();
        event.record(&mut v);
        let request_id = crate::web::request_id::REQUEST_ID
            .try_with(|id| id.as_str().to_owned())
            .ok()
            .or(v.request_id);
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        keep(Problem {
            at,
            first_at: at,
            count: 1,
            level: if level == Level::ERROR {
                "error"
            } else {
                "warn"
            },
            target: event.metadata().target().to_owned(),
            message: v.message,
            fields: v.fields,
            request_id,
        });
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<String>,
    request_id: Option<String>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.record_str(field, &text);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let value = crate::util::truncate_chars(value, FIELD_CHARS);
        match field.name() {
            "message" => self.message = value.to_owned(),
            "request_id" => self.request_id = Some(value.to_owned()),
            name => self.fields.push(format!("{name}={value}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn warnings_are_kept_newest_first_distinct_and_at_most_a_hundred() {
        let subscriber = tracing_subscriber::registry().with(Layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("not a problem");
            tracing::warn!(account = "default", "the real one");
            for i in 0..150 {
                tracing::warn!(account = "default", errcode = 40001, i, "fetch failed");
            }
            for i in 0..150 {
                tracing::warn!(account = format!("a{i}"), "fetch failed");
            }
            tracing::error!(reason = %"x".repeat(1000), "refused");
        });
        let r = recent();
        assert_eq!(r.len(), KEPT);
        assert_eq!(r[0].level, "error");
        assert_eq!(r[0].fields[0].len(), "reason=".len() + FIELD_CHARS);
        assert!(r.iter().all(|p| p.message != "not a problem"));
        // 150 of one problem are one entry with its count and latest details.
        let noise = tracing_subscriber::registry().with(Layer);
        tracing::subscriber::with_default(noise, || {
            tracing::warn!(account = "x", "the real one");
            for i in 0..500 {
                tracing::warn!(account = "default", i, "push refused");
            }
        });
        let r = recent();
        let refused: Vec<_> = r.iter().filter(|p| p.message == "push refused").collect();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].count, 500);
        assert!(refused[0].fields.contains(&"i=499".to_owned()));
        assert!(
            r.iter().any(|p| p.message == "the real one"),
            "noise cannot push it out"
        );
    }
}
