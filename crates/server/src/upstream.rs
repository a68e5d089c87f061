//! The client for WeChat's APIs (or the sandbox's): timeouts, bounded retries with
//! backoff for busy answers and transport errors, and WeChat's `{errcode, errmsg}` turned
//! into a typed [`Error::WeChat`]. Error messages name the endpoint path only, never a
//! URL, so no `access_token` or `secret` from a query string reaches a log.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use wxgate_proto::ErrCode;

use crate::config::UpstreamConfig;
use crate::error::{Error, Result};

#[derive(Clone)]
pub struct Upstream {
    http: reqwest::Client,
    api_base: String,
    open_base: String,
    retries: u32,
    backoff: Duration,
}

/// A raw answer, for the proxy: status, content type and body, unchanged.
pub struct RawAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: bytes::Bytes,
}

fn transport(endpoint: &str, e: reqwest::Error) -> Error {
    Error::Transport {
        endpoint: endpoint.to_owned(),
        reason: e.without_url().to_string(),
    }
}

/// Reads WeChat's JSON answer: a non-zero errcode is an error.
pub fn check_answer(endpoint: &str, body: &[u8]) -> Result<Value> {
    let v: Value = serde_json::from_slice(body).map_err(|_| Error::Transport {
        endpoint: endpoint.to_owned(),
        reason: "the answer is not JSON".into(),
    })?;
    match v.get("errcode").and_then(Value::as_i64) {
        Some(code) if code != 0 => Err(Error::WeChat {
            endpoint: endpoint.to_owned(),
            code: ErrCode::from_code(code),
            errmsg: v
                .get("errmsg")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        }),
        _ => Ok(v),
    }
}

impl Upstream {
    pub fn new(cfg: &UpstreamConfig) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Config(format!("upstream client: {e}")))?;
        Ok(Upstream {
            http,
            api_base: cfg.api_base.trim_end_matches('/').to_owned(),
            open_base: cfg.open_base.trim_end_matches('/').to_owned(),
            retries: cfg.retries,
            backoff: Duration::from_millis(cfg.backoff_ms),
        })
    }

    pub fn open_base(&self) -> &str {
        &self.open_base
    }

    /// Sends once and returns the raw answer (no retry, no errcode interpretation).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<(bytes::Bytes, Option<String>)>,
    ) -> Result<RawAnswer> {
        let url = format!("{}{}", self.api_base, path);
        let mut req = self.http.request(method, url).query(query);
        if let Some((bytes, content_type)) = body {
            if let Some(ct) = content_type {
                req = req.header(reqwest::header::CONTENT_TYPE, ct);
            }
            req = req.body(bytes);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                metrics::counter!("wxgate_upstream_calls_total", "endpoint" => path.to_owned(), "errcode" => "transport").increment(1);
                return Err(transport(path, e));
            }
        };
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                metrics::counter!("wxgate_upstream_calls_total", "endpoint" => path.to_owned(), "errcode" => "transport").increment(1);
                return Err(transport(path, e));
            }
        };
        let errcode = if status >= 500 {
            "http_5xx".to_owned()
        } else {
            serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("errcode").and_then(Value::as_i64))
                .unwrap_or(0)
                .to_string()
        };
        metrics::counter!("wxgate_upstream_calls_total", "endpoint" => path.to_owned(), "errcode" => errcode).increment(1);
        Ok(RawAnswer {
            status,
            content_type,
            body,
        })
    }

    /// Calls a JSON API of `api_base`, retrying busy answers (-1), HTTP 5xx and transport
    /// errors up to `retries` times with doubling backoff.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        json: Option<&Value>,
    ) -> Result<Value> {
        let mut attempt = 0;
        loop {
            let body = json.map(|j| {
                (
                    bytes::Bytes::from(serde_json::to_vec(j).unwrap_or_default()),
                    Some("application/json".to_owned()),
                )
            });
            let result = match self.send_raw(method.clone(), path, query, body).await {
                Ok(raw) if raw.status >= 500 => Err(Error::Transport {
                    endpoint: path.to_owned(),
                    reason: format!("HTTP {}", raw.status),
                }),
                Ok(raw) => check_answer(path, &raw.body),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_transient() && attempt < self.retries => {
                    tracing::warn!(endpoint = path, attempt, error = %e, "upstream call failed; retrying");
                    tokio::time::sleep(self.backoff * 2u32.pow(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}
