//! Web authorization (网页授权): the authorize page a browser visits, and the `/sns/*`
//! APIs the gateway calls with the code.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use wxgate_proto::api::Ack;
use wxgate_proto::ErrCode;

use wxgate_proto::api::on_behalf::{
    ComponentJsCode2Session, ComponentOauthAccessToken, ComponentOauthRefreshToken,
};
use wxgate_proto::api::sns::{
    CheckUserToken, OauthAccessToken, OauthRefreshToken, UserInfo, UserInfoRequest, UserToken,
};

use super::wechat::Call;
use super::{param, Params, Shared};
use crate::platform::{Platform, WxResult};

/// The sandbox's own consent form target (WeChat's is internal to its page): Allow or
/// Deny, then the redirect WeChat would make.
pub const DECIDE_PAGE: &str = "/connect/oauth2/decide";

/// WeChat's rule for `state`: a-z, A-Z, 0-9, at most 128 bytes.
pub fn state_is_valid(state: &str) -> bool {
    state.len() <= 128 && state.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// WeChat shows an error page, not JSON, when the authorize link is wrong.
fn error_page(code: i64, msg: &str) -> Response {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>微信网页授权</title><h1>参数错误</h1>\
         <p id=errcode>{code}</p><p id=errmsg>{}</p>",
        escape(msg)
    );
    (StatusCode::BAD_REQUEST, Html(body)).into_response()
}

fn refusal(code: i64, msg: &str) -> (i64, String) {
    (code, msg.to_owned())
}

struct Authorize {
    appid: String,
    /// 代公众号发起网页授权: the third-party platform asking for the account.
    component_appid: String,
    redirect_uri: url::Url,
    scope: String,
    state: String,
}

/// The authorize link's checks; an error is the errcode and message of WeChat's page.
fn check_authorize(p: &Shared, q: &Params) -> Result<Authorize, (i64, String)> {
    let appid = param(q, "appid");
    if appid.is_empty() {
        return Err(refusal(10012, "appid 不能为空 (appid missing)"));
    }
    let app = p
        .app(appid)
        .map_err(|_| refusal(ErrCode::InvalidAppId.code(), "invalid appid"))?;
    let component_appid = param(q, "component_appid");
    if !component_appid.is_empty() {
        // A platform may ask only for an account that authorized it.
        p.check_authorized(component_appid, appid)
            .map_err(|e| refusal(e.code.code(), &e.msg))?;
    }
    let raw_redirect = param(q, "redirect_uri");
    if raw_redirect.is_empty() {
        return Err(refusal(
            10011,
            "redirect_uri 不能为空 (redirect_uri missing)",
        ));
    }
    let redirect_uri = url::Url::parse(raw_redirect)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| refusal(10003, "redirect_uri 参数错误 (not an absolute http(s) URL)"))?;
    let host = redirect_uri.host_str().unwrap_or("");
    if !app.oauth_domains.is_empty() && !app.oauth_domains.iter().any(|d| d == host) {
        return Err(refusal(
            10003,
            &format!("redirect_uri 域名与后台配置不一致 ({host})"),
        ));
    }
    if param(q, "response_type") != "code" {
        return Err(refusal(
            ErrCode::InvalidParameter.code(),
            "response_type must be code",
        ));
    }
    let scope = param(q, "scope");
    if scope.is_empty() {
        return Err(refusal(10010, "scope 不能为空 (scope missing)"));
    }
    if scope != "snsapi_base" && scope != "snsapi_userinfo" {
        return Err(refusal(
            10005,
            "此公众号并没有这些 scope 的权限 (unknown scope)",
        ));
    }
    let state = param(q, "state");
    if !state_is_valid(state) {
        return Err(refusal(
            ErrCode::InvalidParameter.code(),
            "state 参数错误: only a-z, A-Z, 0-9, at most 128 bytes",
        ));
    }
    Ok(Authorize {
        appid: appid.to_owned(),
        component_appid: component_appid.to_owned(),
        redirect_uri,
        scope: scope.to_owned(),
        state: state.to_owned(),
    })
}

fn redirect_with(mut target: url::Url, code: Option<&str>, state: &str) -> Response {
    {
        let mut pairs = target.query_pairs_mut();
        if let Some(code) = code {
            pairs.append_pair("code", code);
        }
        pairs.append_pair("state", state);
    }
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

fn chosen_user(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == "sandbox_user")
        .map(|(_, v)| v.to_owned())
}

/// `GET /connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope&state`:
/// snsapi_base redirects at once; snsapi_userinfo shows the consent page (unless the
/// sandbox auto-approves).
pub async fn authorize(
    State(p): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<Params>,
) -> Response {
    let a = match check_authorize(&p, &q) {
        Ok(a) => a,
        Err((code, msg)) => return error_page(code, &msg),
    };
    let users = &p.app(&a.appid).expect("checked").users;
    let Some(first) = users.first() else {
        return error_page(10006, "the sandbox app has no test user");
    };
    let remembered = chosen_user(&headers).filter(|o| users.iter().any(|u| &u.openid == o));
    if a.scope == "snsapi_base" || p.config.auto_approve {
        let openid = remembered.unwrap_or_else(|| first.openid.clone());
        return match p.issue_oauth_code(&a.appid, &openid, &a.scope) {
            Ok(code) => redirect_with(a.redirect_uri, Some(&code), &a.state),
            Err(e) => error_page(e.code.code(), &e.msg),
        };
    }
    let options: String = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let checked = if remembered.as_deref() == Some(u.openid.as_str()) || (remembered.is_none() && i == 0) {
                " checked"
            } else {
                ""
            };
            format!(
                "<label><input type=radio name=openid value=\"{}\"{checked}> {} <small>{}</small></label><br>",
                escape(&u.openid),
                escape(&u.nickname),
                escape(&u.openid)
            )
        })
        .collect();
    let hidden = |k: &str, v: &str| format!("<input type=hidden name={k} value=\"{}\">", escape(v));
    let page = format!(
        "<!doctype html><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>微信授权 (sandbox)</title>\
         <h1>网页授权 (WeChat sandbox)</h1><p>This page asks to use your nickname and avatar.</p>\
         <form method=get action=\"{DECIDE_PAGE}\">{}{}{}{}{}\
         <fieldset><legend>Sign in as</legend>{options}</fieldset>\
         <button id=allow name=decision value=allow>允许 Allow</button> \
         <button id=deny name=decision value=deny>拒绝 Deny</button></form>",
        hidden("appid", &a.appid),
        hidden("redirect_uri", a.redirect_uri.as_str()),
        hidden("scope", &a.scope),
        hidden("state", &a.state),
        hidden("component_appid", &a.component_appid),
    );
    Html(page).into_response()
}

/// The consent form's target: Allow redirects with a code, Deny without one.
pub async fn decide(State(p): State<Shared>, Query(mut q): Query<Params>) -> Response {
    q.insert("response_type".into(), "code".into());
    let a = match check_authorize(&p, &q) {
        Ok(a) => a,
        Err((code, msg)) => return error_page(code, &msg),
    };
    if param(&q, "decision") != "allow" {
        return redirect_with(a.redirect_uri, None, &a.state);
    }
    let openid = param(&q, "openid").to_owned();
    match p.issue_oauth_code(&a.appid, &openid, &a.scope) {
        Ok(code) => {
            let mut r = redirect_with(a.redirect_uri, Some(&code), &a.state);
            if let Ok(v) = format!("sandbox_user={openid}; Path=/; SameSite=Lax").parse() {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => error_page(e.code.code(), &e.msg),
    }
}

/// `GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code`
pub fn access_token(p: &Platform, c: Call<OauthAccessToken>) -> WxResult<UserToken> {
    let r = c.req;
    p.exchange_oauth_code(&r.appid, &r.secret, &r.code, &r.grant_type)
}

/// `GET /sns/oauth2/component/access_token?appid&code&grant_type&component_appid
/// &component_access_token`: the component's token checked by the registration.
pub fn component_access_token(
    p: &Platform,
    c: Call<ComponentOauthAccessToken>,
) -> WxResult<UserToken> {
    let r = c.req;
    p.component_exchange_oauth_code(&c.app, &r.appid, &r.code, &r.grant_type)
}

/// `GET /sns/oauth2/component/refresh_token?appid&grant_type=refresh_token
/// &component_appid&component_access_token&refresh_token`
pub fn component_refresh_token(
    p: &Platform,
    c: Call<ComponentOauthRefreshToken>,
) -> WxResult<UserToken> {
    let r = c.req;
    p.component_refresh_user_token(&c.app, &r.appid, &r.grant_type, &r.refresh_token)
}

/// `GET /sns/component/jscode2session?appid&js_code&grant_type&component_appid
/// &component_access_token`
pub fn component_jscode2session(
    p: &Platform,
    c: Call<ComponentJsCode2Session>,
) -> WxResult<wxgate_proto::api::sns::MiniProgramSession> {
    let r = c.req;
    p.component_jscode2session(&c.app, &r.appid, &r.js_code, &r.grant_type)
}

/// `GET /sns/oauth2/refresh_token?appid&grant_type=refresh_token&refresh_token`
pub fn refresh_token(p: &Platform, c: Call<OauthRefreshToken>) -> WxResult<UserToken> {
    let r = c.req;
    p.refresh_user_token(&r.appid, &r.grant_type, &r.refresh_token)
}

/// `GET /sns/userinfo?access_token&openid&lang`
pub fn userinfo(p: &Platform, c: Call<UserInfoRequest>) -> WxResult<UserInfo> {
    super::api::typed(p.sns_userinfo(&c.req.access_token, &c.req.openid)?)
}

/// `GET /sns/auth?access_token&openid`
pub fn sns_auth(p: &Platform, c: Call<CheckUserToken>) -> WxResult<Ack> {
    p.sns_auth(&c.req.access_token, &c.req.openid)?;
    Ok(Ack::ok())
}
