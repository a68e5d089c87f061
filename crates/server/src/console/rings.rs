//! Traffic over the last hour, a minute a point, for the console's charts.
//!
//! Read from the same counters as `/metrics`, by a task that renders the Prometheus text
//! every few seconds and adds what each counter grew by to the current minute. So the
//! request paths do nothing for the console (no lock, no extra counter), and what it
//! keeps is fixed: [`MINUTES`] points of [`SERIES`] counts and the webhook latency
//! histogram's buckets, however much traffic there is and whatever labels it carries.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde_json::{json, Value};

/// Points kept: an hour.
pub const MINUTES: usize = 60;

/// What is counted a minute, each from one family of `/metrics`.
pub const SERIES: &[&str] = &[
    // Pushes by what answered them (`wxgate_pushes_total{outcome}`).
    "push_rule",
    "push_handler",
    "push_webhook",
    "push_none",
    "push_timeout",
    // Answers from the first attempt, for WeChat's retries (`wxgate_dedup_hits_total`).
    "push_dedup",
    // Webhook replies delivered after the deadline, and webhook failures
    // (`wxgate_webhook_total{outcome}`).
    "push_late",
    "webhook_failed",
    // Pushes refused (`wxgate_push_refused_total{status}`), by status.
    "refused_400",
    "refused_401",
    "refused_403",
    "refused_413",
    "refused_503",
    "refused_other",
    // Requests by route and outcome (`wxgate_http_requests_total{route,status}`).
    "config_ok",
    "config_error",
    "auth_ok",
    "auth_error",
    "mp_login_ok",
    "mp_login_error",
];

/// The upper bounds (seconds) of `wxgate_webhook_duration_seconds`'s buckets
/// (`crate::metrics` sets them for every `*_duration_seconds`), and +Inf.
const BUCKETS: &[f64] = &[
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    f64::INFINITY,
];

#[derive(Clone)]
struct Minute {
    /// Unix minute (seconds / 60).
    at: i64,
    counts: [f64; SERIES.len()],
    /// Webhook calls that took at most `BUCKETS[i]`, not cumulative.
    webhook: [f64; BUCKETS.len()],
}

/// The rings; touched by the sampler every few seconds and by console requests.
pub struct Rings {
    state: Mutex<State>,
}

struct State {
    minutes: VecDeque<Minute>,
    /// The counters' totals at the last sample: the next one adds the difference.
    last: Option<Totals>,
}

#[derive(Clone, Copy)]
struct Totals {
    counts: [f64; SERIES.len()],
    /// Cumulative, as Prometheus writes them.
    webhook: [f64; BUCKETS.len()],
}

impl Default for Rings {
    fn default() -> Self {
        Rings {
            state: Mutex::new(State {
                minutes: VecDeque::with_capacity(MINUTES + 1),
                last: None,
            }),
        }
    }
}

impl Rings {
    /// Adds what the counters in `metrics_text` grew by since the last sample to the
    /// minute of `now` (unix seconds). The first sample only sets the baseline.
    pub fn sample(&self, metrics_text: &str, now: i64) {
        let totals = read_totals(metrics_text);
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        let at = now.div_euclid(60);
        if s.minutes.back().is_none_or(|m| m.at != at) {
            s.minutes.push_back(Minute {
                at,
                counts: [0.0; SERIES.len()],
                webhook: [0.0; BUCKETS.len()],
            });
            while s.minutes.len() > MINUTES {
                s.minutes.pop_front();
            }
        }
        if let Some(last) = s.last {
            let minute = s.minutes.back_mut().expect("pushed above");
            for (i, v) in totals.counts.iter().enumerate() {
                // A counter never shrinks, unless the process's recorder was replaced.
                minute.counts[i] += (v - last.counts[i]).max(0.0);
            }
            let (mut before, mut prev) = (0.0, 0.0);
            for (i, v) in totals.webhook.iter().enumerate() {
                let grew = (v - before) - (last.webhook[i] - prev);
                minute.webhook[i] += grew.max(0.0);
                before = *v;
                prev = last.webhook[i];
            }
        }
        s.last = Some(totals);
    }

    /// Points kept (at most [`MINUTES`]).
    pub fn len(&self) -> usize {
        self.state.lock().map(|s| s.minutes.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The last hour as the console draws it: `{"minutes": [unix seconds...],
    /// "series": {name: [count...]}, "webhook_ms": {"p50": [...], "p90", "p99"}}`,
    /// a point per minute that had a sample, oldest first.
    pub fn snapshot(&self) -> Value {
        let Ok(s) = self.state.lock() else {
            return Value::Null;
        };
        let minutes: Vec<i64> = s.minutes.iter().map(|m| m.at * 60).collect();
        let mut series = serde_json::Map::new();
        for (i, name) in SERIES.iter().enumerate() {
            let points: Vec<f64> = s.minutes.iter().map(|m| m.counts[i]).collect();
            series.insert((*name).to_owned(), json!(points));
        }
        let quantile = |q: f64| -> Vec<Option<f64>> {
            s.minutes
                .iter()
                .map(|m| percentile(&m.webhook, q))
                .collect()
        };
        json!({
            "minutes": minutes,
            "series": series,
            "webhook_ms": { "p50": quantile(0.5), "p90": quantile(0.9), "p99": quantile(0.99) },
        })
    }
}

/// The bucket bound (ms) under which a fraction `q` of the minute's webhook calls
/// finished; `None` for a minute without calls. A histogram only knows its buckets, so
/// this is an upper bound, as Prometheus's `histogram_quantile` at the bucket's edge.
fn percentile(buckets: &[f64; BUCKETS.len()], q: f64) -> Option<f64> {
    let total: f64 = buckets.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let mut seen = 0.0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= q * total {
            let bound = BUCKETS[i];
            // Past the last finite bound: say the last bound, not infinity.
            return Some(if bound.is_finite() { bound } else { 5.0 } * 1000.0);
        }
    }
    None
}

/// A sample's labels, `(name, value)` pairs.
type Labels<'a> = Vec<(&'a str, &'a str)>;

/// One sample line: `name{labels} value`.
fn parse_line(line: &str) -> Option<(&str, Labels<'_>, f64)> {
    if line.starts_with('#') || line.is_empty() {
        return None;
    }
    let (head, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match head.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}')?),
        None => (head, ""),
    };
    let mut pairs = Vec::new();
    // Label values here are route patterns, statuses and outcomes: no `",` inside.
    for pair in labels.split("\",").filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once("=\"")?;
        pairs.push((k, v.trim_end_matches('"')));
    }
    Some((name, pairs, value))
}

fn label<'a>(labels: &[(&str, &'a str)], name: &str) -> &'a str {
    labels
        .iter()
        .find(|(k, _)| *k == name)
        .map_or("", |(_, v)| v)
}

fn series(name: &str) -> usize {
    SERIES
        .iter()
        .position(|s| *s == name)
        .expect("a name from SERIES")
}

fn read_totals(text: &str) -> Totals {
    let mut t = Totals {
        counts: [0.0; SERIES.len()],
        webhook: [0.0; BUCKETS.len()],
    };
    for line in text.lines() {
        let Some((name, labels, v)) = parse_line(line) else {
            continue;
        };
        let slot = match name {
            "wxgate_pushes_total" => match label(&labels, "outcome") {
                "rule" => Some("push_rule"),
                "handler" => Some("push_handler"),
                "webhook" => Some("push_webhook"),
                "none" => Some("push_none"),
                "timeout" => Some("push_timeout"),
                _ => None,
            },
            "wxgate_dedup_hits_total" => Some("push_dedup"),
            "wxgate_webhook_total" => match label(&labels, "outcome") {
                "late_delivered" => Some("push_late"),
                "failed" => Some("webhook_failed"),
                _ => None,
            },
            "wxgate_push_refused_total" => Some(match label(&labels, "status") {
                "400" => "refused_400",
                "401" => "refused_401",
                "403" => "refused_403",
                "413" => "refused_413",
                "503" => "refused_503",
                _ => "refused_other",
            }),
            "wxgate_http_requests_total" => {
                let route = label(&labels, "route");
                let ok = label(&labels, "status").starts_with('2')
                    || label(&labels, "status").starts_with('3');
                let kind = if route == "/wx/config" || route == "/wx/{account}/config" {
                    Some("config")
                } else if route.starts_with("/wx/")
                    && (route.ends_with("/auth") || route.ends_with("/auth/callback"))
                {
                    Some("auth")
                } else if route.starts_with("/wx/") && route.ends_with("/mp/login") {
                    Some("mp_login")
                } else {
                    None
                };
                kind.map(|k| match (k, ok) {
                    ("config", true) => "config_ok",
                    ("config", false) => "config_error",
                    ("auth", true) => "auth_ok",
                    ("auth", false) => "auth_error",
                    ("mp_login", true) => "mp_login_ok",
                    _ => "mp_login_error",
                })
            }
            "wxgate_webhook_duration_seconds_bucket" => {
                let le = label(&labels, "le");
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::NAN)
                };
                if let Some(i) = BUCKETS.iter().position(|b| *b == bound) {
                    t.webhook[i] += v;
                }
                None
            }
            _ => None,
        };
        if let Some(s) = slot {
            t.counts[series(s)] += v;
        }
    }
    // Buckets are cumulative: one missing from the text holds what the one before holds.
    for i in 1..BUCKETS.len() {
        t.webhook[i] = t.webhook[i].max(t.webhook[i - 1]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = r#"# TYPE wxgate_pushes_total counter
wxgate_pushes_total{outcome="rule"} 10
wxgate_pushes_total{outcome="webhook"} 2
wxgate_push_refused_total{account="default",status="403"} 1
wxgate_http_requests_total{route="/wx/config",status="200"} 100
wxgate_http_requests_total{route="/wx/{account}/config",status="400"} 3
wxgate_http_requests_total{route="/wx/mp/login",status="200"} 5
wxgate_webhook_duration_seconds_bucket{le="0.01"} 1
wxgate_webhook_duration_seconds_bucket{le="0.025"} 2
wxgate_webhook_duration_seconds_bucket{le="+Inf"} 2
"#;

    const AFTER: &str = r#"wxgate_pushes_total{outcome="rule"} 15
wxgate_pushes_total{outcome="webhook"} 2
wxgate_push_refused_total{account="default",status="403"} 4
wxgate_push_refused_total{account="other",status="408"} 2
wxgate_http_requests_total{route="/wx/config",status="200"} 130
wxgate_http_requests_total{route="/wx/{account}/config",status="400"} 3
wxgate_http_requests_total{route="/wx/mp/login",status="200"} 5
wxgate_http_requests_total{route="/wx/mp/login",status="429"} 7
wxgate_webhook_duration_seconds_bucket{le="0.01"} 1
wxgate_webhook_duration_seconds_bucket{le="0.025"} 2
wxgate_webhook_duration_seconds_bucket{le="0.1"} 10
wxgate_webhook_duration_seconds_bucket{le="+Inf"} 10
"#;

    fn point(v: &Value, name: &str) -> f64 {
        v["series"][name]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .as_f64()
            .unwrap()
    }

    #[test]
    fn a_minute_counts_what_the_counters_grew_by() {
        let r = Rings::default();
        r.sample(BEFORE, 6000);
        r.sample(AFTER, 6030);
        let v = r.snapshot();
        assert_eq!(v["minutes"], json!([6000]));
        assert_eq!(point(&v, "push_rule"), 5.0);
        assert_eq!(point(&v, "push_webhook"), 0.0);
        assert_eq!(point(&v, "refused_403"), 3.0);
        assert_eq!(point(&v, "refused_other"), 2.0);
        assert_eq!(point(&v, "config_ok"), 30.0);
        assert_eq!(point(&v, "config_error"), 0.0);
        assert_eq!(point(&v, "mp_login_error"), 7.0);
        // 8 webhook calls this minute, all within 100 ms, none within 25 ms.
        assert_eq!(v["webhook_ms"]["p50"], json!([100.0]));
        assert_eq!(v["webhook_ms"]["p99"], json!([100.0]));
    }

    #[test]
    fn the_rings_keep_an_hour_whatever_comes() {
        let r = Rings::default();
        let mut text = String::new();
        for minute in 0..500i64 {
            // Counters that grow and labels never seen before, every minute.
            text.push_str(&format!(
                "wxgate_push_refused_total{{account=\"a{minute}\",status=\"{}\"}} 1\n",
                400 + minute
            ));
            r.sample(&text, minute * 60);
            assert!(r.len() <= MINUTES);
        }
        assert_eq!(r.len(), MINUTES);
        let v = r.snapshot();
        assert_eq!(v["minutes"].as_array().unwrap().len(), MINUTES);
        assert_eq!(v["series"].as_object().unwrap().len(), SERIES.len());
        assert_eq!(point(&v, "refused_other"), 1.0);
    }

    #[test]
    fn a_line_that_is_not_a_sample_is_skipped() {
        for junk in ["", "# HELP x", "x", "x{a=\"b\"", "x{} y", "x{a} 1"] {
            let _ = parse_line(junk);
        }
        assert_eq!(
            parse_line("a_total{x=\"1\",y=\"/wx/{account}/config\"} 2"),
            Some((
                "a_total",
                vec![("x", "1"), ("y", "/wx/{account}/config")],
                2.0
            ))
        );
    }
}
