//! The client for WeChat's APIs (or the sandbox's): timeouts, bounded retries with
//! backoff for busy answers and transport errors, and WeChat's `{errcode, errmsg}` turned
//! into a typed [`Error::WeChat`]. Error messages name the endpoint path only, never a
//! URL, so no `access_token` or `secret` from a query string reaches a log.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use wxgate_proto::api::{
    self, ApiError, Endpoint, WithAccessToken, WithComponentAccessToken, WithoutAccessToken,
};
use wxgate_proto::ErrCode;

use crate::config::UpstreamConfig;
use crate::error::{Error, Result};

#[derive(Clone)]
pub struct Upstream {
    http: reqwest::Client,
    /// Parsed once; every call's URL is built from it segment by segment.
    api_base: url::Url,
    open_base: String,
    retries: u32,
    backoff: Duration,
}

/// A raw answer, for the proxy: status, content type, content disposition (a
/// downloaded file's name) and body, unchanged.
pub struct RawAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub content_disposition: Option<String>,
    pub body: bytes::Bytes,
}

/// The metric label (and log field) of an upstream path: the path itself when wxgate
/// knows it, else `other`.
pub fn endpoint_label(path: &str) -> &'static str {
    api::known_path(path).unwrap_or("other")
}

/// The metric label of an answer's errcode: the number when wxgate names it (a few
/// dozen), else `other`; `transport` and `http_5xx` for failures without one.
fn errcode_label(code: i64) -> String {
    match ErrCode::from_code(code) {
        ErrCode::Other(_) => "other".to_owned(),
        known => known.code().to_string(),
    }
}

/// Why a path cannot be called under `api_base`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("the path must be WeChat API segments of letters, digits, _, - and . (no . or .. segment, no encoding)")]
    Segment,
    #[error("the path leaves api_base")]
    Escapes,
}

/// `base` with `path`'s segments appended one by one. Each segment must be a plain
/// WeChat API name (letters, digits, `_`, `-`, `.`; not `.` or `..`): a percent sign
/// (a second encoding: `%2e%2e` is `..` to a URL parser), a backslash or anything else
/// is refused, and the result is checked to lie under `base`'s path.
pub fn url_under(base: &url::Url, path: &str) -> std::result::Result<url::Url, PathError> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let plain = |seg: &&str| {
        !seg.is_empty()
            && *seg != "."
            && *seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    };
    if !segments.iter().all(plain) {
        return Err(PathError::Segment);
    }
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| PathError::Escapes)?
        .pop_if_empty()
        .extend(&segments);
    let prefix = base.path().trim_end_matches('/');
    let under = url
        .path()
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.starts_with('/'));
    let same_origin = url.origin() == base.origin();
    if under && same_origin {
        Ok(url)
    } else {
        Err(PathError::Escapes)
    }
}

fn transport(endpoint: &str, e: reqwest::Error) -> Error {
    Error::Transport {
        endpoint: endpoint.to_owned(),
        reason: e.without_url().to_string(),
    }
}

/// A WeChat answer that is not the endpoint's success, as the gateway's error.
fn api_error(endpoint: &'static str, e: ApiError) -> Error {
    match e {
        ApiError::WeChat { code, errmsg } => Error::WeChat {
            endpoint: endpoint.to_owned(),
            code,
            errmsg,
        },
        ApiError::NotJson => Error::Transport {
            endpoint: endpoint.to_owned(),
            reason: "the answer is not JSON".into(),
        },
        ApiError::Shape(why) => Error::Transport {
            endpoint: endpoint.to_owned(),
            reason: format!("unexpected answer: {why}"),
        },
    }
}

/// A request's fields as query pairs (the request types are flat: strings, numbers,
/// booleans).
fn query_of<E: Endpoint>(req: &E) -> Vec<(String, String)> {
    let Ok(Value::Object(fields)) = serde_json::to_value(req) else {
        return Vec::new();
    };
    fields
        .into_iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k, s)),
            Value::Null => None,
            other => Some((k, other.to_string())),
        })
        .collect()
}

impl Upstream {
    pub fn new(cfg: &UpstreamConfig) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Config(format!("upstream client: {e}")))?;
        let api_base = url::Url::parse(&cfg.api_base)
            .map_err(|e| Error::Config(format!("upstream.api_base: {e}")))?;
        Ok(Upstream {
            http,
            api_base,
            open_base: cfg.open_base.trim_end_matches('/').to_owned(),
            retries: cfg.retries,
            backoff: Duration::from_millis(cfg.backoff_ms),
        })
    }

    pub fn open_base(&self) -> &str {
        &self.open_base
    }

    /// Whether `path` can be called under `api_base` (see [`url_under`]).
    pub fn check_path(&self, path: &str) -> std::result::Result<(), PathError> {
        url_under(&self.api_base, path).map(drop)
    }

    /// Sends once and returns the raw answer (no retry, no errcode interpretation).
    /// `path` is made of plain segments ([`url_under`]); anything else is refused
    /// before a connection is made.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<(bytes::Bytes, Option<String>)>,
    ) -> Result<RawAnswer> {
        let label = endpoint_label(path);
        let url = url_under(&self.api_base, path).map_err(|e| Error::Transport {
            endpoint: label.to_owned(),
            reason: e.to_string(),
        })?;
        let mut req = self.http.request(method, url).query(query);
        if let Some((bytes, content_type)) = body {
            if let Some(ct) = content_type {
                req = req.header(reqwest::header::CONTENT_TYPE, ct);
            }
            req = req.body(bytes);
        }
        let count = |errcode: String| {
            metrics::counter!("wxgate_upstream_calls_total", "endpoint" => label, "errcode" => errcode)
                .increment(1)
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                count("transport".into());
                return Err(transport(label, e));
            }
        };
        let status = resp.status().as_u16();
        let header = |name: reqwest::header::HeaderName| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let content_disposition = header(reqwest::header::CONTENT_DISPOSITION);
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                count("transport".into());
                return Err(transport(label, e));
            }
        };
        let errcode = if status >= 500 {
            "http_5xx".to_owned()
        } else {
            errcode_label(
                serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("errcode").and_then(Value::as_i64))
                    .unwrap_or(0),
            )
        };
        count(errcode);
        Ok(RawAnswer {
            status,
            content_type,
            content_disposition,
            body,
        })
    }

    /// Calls a WeChat endpoint that carries its own credentials (an AppSecret, a code, a
    /// user's token) and reads its typed answer; see [`Self::call_endpoint`].
    pub async fn call<E: WithoutAccessToken>(&self, req: &E) -> Result<E::Answer> {
        self.call_endpoint(req, None).await
    }

    /// Calls an open-platform endpoint with the component's `component_access_token`.
    pub async fn call_with_component_access_token<E: WithComponentAccessToken>(
        &self,
        req: &E,
        component_access_token: &str,
    ) -> Result<E::Answer> {
        self.call_endpoint(
            req,
            Some(("component_access_token", component_access_token)),
        )
        .await
    }

    /// Calls a WeChat endpoint with the app's `access_token` (the type says it takes
    /// one) and reads its typed answer; see [`Self::call_endpoint`].
    pub async fn call_with_access_token<E: WithAccessToken>(
        &self,
        req: &E,
        access_token: &str,
    ) -> Result<E::Answer> {
        self.call_endpoint(req, Some(("access_token", access_token)))
            .await
    }

    /// Sends a typed request and reads its typed answer, retrying busy answers (-1),
    /// HTTP 5xx and transport errors up to `retries` times with doubling backoff.
    async fn call_endpoint<E: Endpoint>(
        &self,
        req: &E,
        token: Option<(&str, &str)>,
    ) -> Result<E::Answer> {
        let (method, mut query, body) = match E::METHOD {
            api::Method::Get => (Method::GET, query_of(req), None),
            api::Method::Post => (
                Method::POST,
                Vec::new(),
                Some(bytes::Bytes::from(
                    serde_json::to_vec(req).unwrap_or_default(),
                )),
            ),
        };
        if let Some((name, value)) = token {
            query.push((name.to_owned(), value.to_owned()));
        }
        let mut attempt = 0;
        loop {
            let body = body
                .clone()
                .map(|b| (b, Some("application/json".to_owned())));
            let result = match self.send_raw(method.clone(), E::PATH, &query, body).await {
                Ok(raw) if raw.status >= 500 => Err(Error::Transport {
                    endpoint: E::PATH.to_owned(),
                    reason: format!("HTTP {}", raw.status),
                }),
                Ok(raw) => {
                    api::read_answer::<E::Answer>(&raw.body).map_err(|e| api_error(E::PATH, e))
                }
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_transient() && attempt < self.retries => {
                    tracing::warn!(endpoint = E::PATH, attempt, error = %e, "upstream call failed; retrying");
                    tokio::time::sleep(self.backoff * 2u32.pow(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxied_path_stays_under_api_base() {
        let base = url::Url::parse("http://host:8080/wechat").unwrap();
        let ok = url_under(&base, "/cgi-bin/user/get").unwrap();
        assert_eq!(ok.as_str(), "http://host:8080/wechat/cgi-bin/user/get");
        let root = url::Url::parse("https://api.weixin.qq.com").unwrap();
        assert_eq!(
            url_under(&root, "/wxa/getwxacodeunlimit").unwrap().as_str(),
            "https://api.weixin.qq.com/wxa/getwxacodeunlimit"
        );
        for bad in [
            "/../x",
            "/%2e%2e/x",
            "/%252e%252e/x",
            "/cgi-bin/./token",
            "/cgi-bin//token",
            "/a\\..\\x",
            "/a/%2F/b",
            "/x?y",
            "/x#y",
            "/@evil.example/x",
            "",
        ] {
            assert_eq!(url_under(&base, bad), Err(PathError::Segment), "{bad}");
        }
    }

    #[test]
    fn labels_come_from_a_fixed_set() {
        assert_eq!(endpoint_label("/cgi-bin/token"), "/cgi-bin/token");
        assert_eq!(endpoint_label("/made/up/\r\n"), "other");
        assert_eq!(errcode_label(40001), "40001");
        assert_eq!(errcode_label(123456789), "other");
    }
}
