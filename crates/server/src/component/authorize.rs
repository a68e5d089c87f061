//! The merchant's side of an authorization (授权流程):
//!
//! - `GET /wx/component/{name}/authorize?dest=&auth_type=&mobile=1` creates a
//!   `pre_auth_code` and sends the merchant's browser to WeChat's authorization page (on a
//!   computer `componentloginpage`, in WeChat on a phone `bindcomponent`), with this
//!   gateway's callback as `redirect_uri`;
//! - `GET /wx/component/{name}/callback?auth_code=&expires_in=&dest=` exchanges the code
//!   once for the fleet (the `authorized` event carries the same code, maybe to another
//!   instance) and sends the merchant to `dest` with `authorizer_appid`, or shows a page.
//!
//! `dest` must be on an origin of `auth_dest_hosts`, checked on the way out and again on
//! the way back (the browser carries it). An unknown, used or expired code gets a clear
//! error page and stores nothing.

use std::sync::Arc;

use axum::extract::Path;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use wxgate_proto::api::component::{CreatePreAuthCode, BIND_COMPONENT_PAGE, COMPONENT_LOGIN_PAGE};

use super::{Component, ComponentService};
use crate::origin::Origin;
use crate::web::Ctx;

fn enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A page for the merchant: what happened, in words.
fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>{}</title><h1>{}</h1><p id=message>{}</p>",
        escape(title),
        escape(title),
        escape(text)
    );
    (status, Html(body)).into_response()
}

fn redirect(location: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// `dest` if it is an absolute http(s) URL on one of the component's origins.
fn checked_dest(ctx: &Ctx, c: &Component, dest: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(dest)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or("dest must be an absolute http(s) URL")?;
    let https = ctx.config.serves_https();
    let allowed = c
        .cfg
        .auth_dest_hosts
        .iter()
        .filter_map(|e| crate::origin::parse_entry(e, https).ok())
        .flatten()
        .any(|o: Origin| o.allows(&url));
    if !allowed {
        return Err(format!(
            "dest origin {} is not in auth_dest_hosts",
            crate::util::truncate_chars(&url.origin().ascii_serialization(), 200)
        ));
    }
    Ok(url)
}

#[derive(Deserialize)]
pub struct Start {
    #[serde(default)]
    dest: Option<String>,
    /// 1 Official Accounts, 2 Mini Programs, 3 both (WeChat's default).
    #[serde(default)]
    auth_type: Option<u8>,
    /// `1`: the link for WeChat on a phone (`bindcomponent`).
    #[serde(default)]
    mobile: Option<u8>,
}

/// `GET /wx/component/{name}/authorize`
pub async fn authorize(
    State(ctx): State<Ctx>,
    State(components): State<Arc<ComponentService>>,
    Path(name): Path<String>,
    Query(q): Query<Start>,
) -> Response {
    let Some(c) = components.component(&name) else {
        return page(
            StatusCode::NOT_FOUND,
            "Unknown platform",
            "No such third-party platform.",
        );
    };
    let auth_type = q.auth_type.unwrap_or(3);
    if !(1..=3).contains(&auth_type) {
        return page(
            StatusCode::BAD_REQUEST,
            "Bad link",
            "auth_type is 1, 2 or 3.",
        );
    }
    let mut callback = match url::Url::parse(&format!(
        "{}/wx/component/{}/callback",
        ctx.config.base_url(),
        c.name
    )) {
        Ok(u) => u,
        Err(_) => {
            return page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Misconfigured",
                "public_url is not a URL.",
            )
        }
    };
    if let Some(dest) = &q.dest {
        if let Err(why) = checked_dest(&ctx, c, dest) {
            return page(StatusCode::BAD_REQUEST, "Bad link", &why);
        }
        callback.query_pairs_mut().append_pair("dest", dest);
    }
    let now = ctx.now();
    let req = CreatePreAuthCode {
        component_appid: c.cfg.component_appid.clone(),
    };
    let created = components.call(c, &req, now);
    let pre = match created.await {
        Ok(p) => p.pre_auth_code,
        Err(e) => {
            tracing::warn!(component = %c.name, error = %e, "no pre_auth_code");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "WeChat did not give an authorization link now; try again in a minute.",
            );
        }
    };
    let params = format!(
        "component_appid={}&pre_auth_code={}&redirect_uri={}&auth_type={auth_type}",
        enc(&c.cfg.component_appid),
        enc(&pre),
        enc(callback.as_str())
    );
    let location = if q.mobile == Some(1) {
        format!(
            "{}{BIND_COMPONENT_PAGE}?action=bindcomponent&no_scan=1&{params}#wechat_redirect",
            ctx.upstream.open_base()
        )
    } else {
        format!(
            "{}{COMPONENT_LOGIN_PAGE}?{params}",
            ctx.config.upstream.mp_base.trim_end_matches('/')
        )
    };
    redirect(&location)
}

#[derive(Deserialize)]
pub struct Back {
    #[serde(default)]
    auth_code: String,
    #[serde(default)]
    dest: Option<String>,
}

/// `GET /wx/component/{name}/callback`
pub async fn callback(
    State(ctx): State<Ctx>,
    State(components): State<Arc<ComponentService>>,
    Path(name): Path<String>,
    Query(q): Query<Back>,
) -> Response {
    let Some(c) = components.component(&name) else {
        return page(
            StatusCode::NOT_FOUND,
            "Unknown platform",
            "No such third-party platform.",
        );
    };
    let plain = q.auth_code.len() <= 256 && q.auth_code.bytes().all(|b| b.is_ascii_graphic());
    if q.auth_code.is_empty() || !plain {
        return page(
            StatusCode::BAD_REQUEST,
            "Not authorized",
            "The link carries no authorization code.",
        );
    }
    let dest = match q
        .dest
        .as_deref()
        .map(|d| checked_dest(&ctx, c, d))
        .transpose()
    {
        Ok(d) => d,
        Err(why) => return page(StatusCode::BAD_REQUEST, "Bad link", &why),
    };
    match components.exchange_code(c, &q.auth_code, ctx.now()).await {
        Ok(a) => match dest {
            Some(mut d) => {
                d.query_pairs_mut()
                    .append_pair("authorizer_appid", &a.authorizer_appid);
                redirect(d.as_str())
            }
            None => page(
                StatusCode::OK,
                "Authorized",
                &format!("{} has authorized this platform.", a.authorizer_appid),
            ),
        },
        Err(e) if e.errcode().is_some() => {
            crate::sampled_warn!("component_auth_code", component = %c.name, error = %e, "authorization code refused");
            page(
                StatusCode::BAD_REQUEST,
                "Not authorized",
                "This authorization link is unknown, already used or expired: start the authorization again.",
            )
        }
        Err(e) => {
            tracing::warn!(component = %c.name, error = %e, "authorization not completed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "The authorization could not be completed now; reload this page.",
            )
        }
    }
}
