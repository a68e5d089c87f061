//! The open platform's authorization page (授权页) as the sandbox plays it: the merchant
//! sees the component and picks which of its accounts to authorize; Allow redirects to
//! the component's `redirect_uri` with `auth_code` and `expires_in`, as WeChat does, and
//! the `authorized` event is pushed to the component.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::{param, Params, Shared};
use crate::config::AppKind;

/// The sandbox's own consent form target.
pub const DECIDE_PAGE: &str = "/sandbox/component/decide";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn error_page(msg: &str) -> Response {
    let body = format!("<!doctype html><meta charset=utf-8><title>授权失败</title><h1>授权失败</h1><p id=errmsg>{}</p>", escape(msg));
    (StatusCode::BAD_REQUEST, Html(body)).into_response()
}

/// `GET /cgi-bin/componentloginpage` and `/wxaopen/safe/bindcomponent`.
pub async fn page(State(p): State<Shared>, Query(q): Query<Params>) -> Response {
    let component = param(&q, "component_appid");
    if p.app(component).map(|a| a.kind) != Ok(AppKind::Component) {
        return error_page("component_appid is not a third-party platform");
    }
    if param(&q, "pre_auth_code").is_empty() || url::Url::parse(param(&q, "redirect_uri")).is_err()
    {
        return error_page("pre_auth_code and redirect_uri are required");
    }
    let kinds: &[AppKind] = match param(&q, "auth_type") {
        "1" => &[AppKind::Official],
        "2" => &[AppKind::MiniProgram],
        _ => &[AppKind::Official, AppKind::MiniProgram],
    };
    let options: String = p
        .config
        .apps
        .iter()
        .filter(|a| kinds.contains(&a.kind))
        .enumerate()
        .map(|(i, a)| {
            let checked = if i == 0 { " checked" } else { "" };
            format!("<label><input type=radio name=authorizer_appid value=\"{}\"{checked}> {}</label><br>", escape(&a.appid), escape(&a.appid))
        })
        .collect();
    let hidden = |k: &str| {
        format!(
            "<input type=hidden name={k} value=\"{}\">",
            escape(param(&q, k))
        )
    };
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>授权 (sandbox)</title><h1>Authorize {}</h1>\
         <form method=get action=\"{DECIDE_PAGE}\">{}{}{}<fieldset><legend>Your account</legend>{options}</fieldset>\
         <button id=allow>授权 Authorize</button></form>",
        escape(component),
        hidden("component_appid"),
        hidden("pre_auth_code"),
        hidden("redirect_uri"),
    );
    Html(body).into_response()
}

/// `GET /sandbox/component/decide`: the merchant's consent.
pub async fn decide(State(p): State<Shared>, Query(q): Query<Params>) -> Response {
    let Ok(mut back) = url::Url::parse(param(&q, "redirect_uri")) else {
        return error_page("redirect_uri is not a URL");
    };
    match p.consent(
        param(&q, "component_appid"),
        param(&q, "pre_auth_code"),
        param(&q, "authorizer_appid"),
    ) {
        Ok(code) => {
            back.query_pairs_mut()
                .append_pair("auth_code", &code)
                .append_pair("expires_in", "3600");
            (StatusCode::FOUND, [(header::LOCATION, back.to_string())]).into_response()
        }
        Err(e) => error_page(&e.msg),
    }
}
