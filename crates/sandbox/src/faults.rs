//! Fault injection: make an endpoint slow, busy, failing or unreachable on demand.

use serde::{Deserialize, Serialize};

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer late (then normally, unless another fault applies).
    Latency { ms: u64 },
    /// `{"errcode":-1,"errmsg":"system error"}`, WeChat's busy answer.
    Busy,
    /// An HTTP error status with an empty body.
    Status { status: u16 },
    /// The connection is cut before a complete answer.
    Drop,
}

/// A fault rule: which endpoint, what, and for how many calls or which share of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    /// The endpoint path (`/cgi-bin/token`), or `*` for every WeChat endpoint.
    pub path: String,
    /// Only the calls of this app (the token endpoints `/cgi-bin/token` and
    /// `/cgi-bin/stable_token`, where the appid is the caller's): one account's WeChat
    /// can hang or fail while the others answer.
    #[serde(default)]
    pub appid: Option<String>,
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Applies to the next `count` calls; forever when absent.
    #[serde(default)]
    pub count: Option<u32>,
    /// Applies to this share of calls (0.0 to 1.0); to all when absent.
    #[serde(default)]
    pub ratio: Option<f64>,
}

/// The active fault rules.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Vec<Fault>,
}

impl Faults {
    pub fn add(&mut self, fault: Fault) {
        self.rules.push(fault);
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    pub fn list(&self) -> Vec<Fault> {
        self.rules.clone()
    }

    /// The faults that strike this call, spending their counts: the rules for any app
    /// when `appid` is `None` (the middleware, before the call is read), else the rules
    /// for that app (a token endpoint, once it read the appid).
    pub fn strike(&mut self, path: &str, appid: Option<&str>) -> Vec<FaultKind> {
        let mut hit = Vec::new();
        for rule in &mut self.rules {
            if rule.path != "*" && rule.path != path {
                continue;
            }
            if rule.appid.as_deref() != appid {
                continue;
            }
            if let Some(r) = rule.ratio {
                if rand::random::<f64>() >= r {
                    continue;
                }
            }
            if let Some(n) = rule.count.as_mut() {
                if *n == 0 {
                    continue;
                }
                *n -= 1;
            }
            hit.push(rule.kind.clone());
        }
        self.rules.retain(|r| r.count != Some(0));
        hit
    }
}
