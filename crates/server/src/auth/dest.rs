//! Where a user may be sent back to, and how: `dest` checked against the account's
//! origins (`crate::origin`), the redirect that carries the userinfo or the error.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::config::{AccountConfig, Config};
use crate::origin::Origin;

/// The origins this account may send users to (see [`crate::origin`]): its
/// `auth_dest_hosts`, or public_url's origin when there are none.
fn dest_origins(config: &Config, acc: &AccountConfig) -> Vec<Origin> {
    if acc.auth_dest_hosts.is_empty() {
        return url::Url::parse(&config.base_url())
            .ok()
            .as_ref()
            .and_then(Origin::of)
            .into_iter()
            .collect();
    }
    let https = config.serves_https();
    acc.auth_dest_hosts
        .iter()
        .filter_map(|e| crate::origin::parse_entry(e, https).ok())
        .flatten()
        .collect()
}

/// `dest` if it is an absolute http(s) URL on an origin (scheme, host and port) this
/// account may send users to.
pub(super) fn checked_dest(
    config: &Config,
    acc: &AccountConfig,
    dest: &str,
) -> Result<url::Url, String> {
    let url = url::Url::parse(dest)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| "Parameter Error: dest must be an absolute http(s) URL".to_owned())?;
    if !dest_origins(config, acc).iter().any(|o| o.allows(&url)) {
        let origin = url.origin().ascii_serialization();
        let shown = crate::util::truncate_chars(&origin, 200);
        return Err(format!(
            "Parameter Error: dest origin {shown} is not allowed"
        ));
    }
    Ok(url)
}

/// `dest` with one more query parameter; its own query and fragment are kept.
pub(super) fn dest_with(mut dest: url::Url, name: &str, value: &Value) -> Response {
    dest.query_pairs_mut().append_pair(name, &value.to_string());
    redirect(dest.as_str())
}

pub(super) fn redirect(location: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
