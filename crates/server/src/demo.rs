//! The demo pages under `/demo/` (static files embedded in the binary) and `wxgate demo`:
//! the sandbox and a gateway wired to it, so a newcomer sees everything work in a browser
//! without a WeChat account: JS-SDK, OAuth, a chat through `/wx/service` in safe mode, a
//! simulated Mini Program on `/wx/mp/...`, and the console.
//!
//! What WeChat's side would do in a real phone (seal a push, hand a Mini Program a
//! `wx.login` code or encryptedData) the pages ask the sandbox for through
//! `/demo/api/...`, on the demo's own origin; everything after that is the gateway's
//! real routes, called as a page or Mini Program calls them.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::web::Ctx;

const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../assets/demo/index.html"),
    ),
    (
        "jssdk.html",
        "text/html; charset=utf-8",
        include_str!("../assets/demo/jssdk.html"),
    ),
    (
        "oauth.html",
        "text/html; charset=utf-8",
        include_str!("../assets/demo/oauth.html"),
    ),
    (
        "chat.html",
        "text/html; charset=utf-8",
        include_str!("../assets/demo/chat.html"),
    ),
    (
        "miniprogram.html",
        "text/html; charset=utf-8",
        include_str!("../assets/demo/miniprogram.html"),
    ),
    (
        "demo.js",
        "application/javascript; charset=utf-8",
        include_str!("../assets/demo/demo.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../assets/demo/style.css"),
    ),
];

fn file(name: &str) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, ct, body)) => ([(header::CONTENT_TYPE, *ct)], *body).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /demo/`
pub async fn index(State(s): State<Ctx>) -> Response {
    if !s.config.demo.enabled {
        return StatusCode::NOT_FOUND.into_response();
    }
    file("index.html")
}

/// `GET /demo/{file}`; `env.json` tells the pages where the sandbox is.
pub async fn asset(State(s): State<Ctx>, Path(name): Path<String>) -> Response {
    let Some(sandbox) = demo_on(&s) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if name == "env.json" {
        return Json(json!({ "sandbox": sandbox, "mini_openid": s.config.demo.mini_openid }))
            .into_response();
    }
    file(&name)
}

/// The sandbox's URL while the demo is on.
fn demo_on(s: &Ctx) -> Option<String> {
    s.config.demo.enabled.then(|| {
        s.config
            .demo
            .sandbox_url
            .clone()
            .unwrap_or_else(|| s.upstream.open_base().to_owned())
    })
}

/// Asks the sandbox's admin API (what WeChat's side does in a real phone).
async fn sandbox_admin(sandbox: &str, path: &str, body: serde_json::Value) -> Response {
    let answer = reqwest::Client::new()
        .post(format!("{}{path}", sandbox.trim_end_matches('/')))
        .json(&body)
        .send()
        .await;
    match answer {
        Ok(r) => {
            let status =
                StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            (status, Json(v)).into_response()
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({ "error": format!("the sandbox: {e}") })),
        )
            .into_response(),
    }
}

#[derive(serde::Deserialize)]
pub struct Said {
    text: String,
}

/// `POST /demo/api/chat {"text"}`: the sandbox pushes the text to this gateway's
/// `/wx/service` in safe mode as a WeChat user, and answers what went each way: the
/// message, the encrypted envelope posted, the gateway's encrypted answer, the reply.
pub async fn chat(State(s): State<Ctx>, Json(said): Json<Said>) -> Response {
    let Some(sandbox) = demo_on(&s) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(account) = s.account("default") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let text: String = said.text.chars().take(200).collect();
    let body = json!({
        "url": format!("{}/wx/service", s.config.base_url()),
        "appid": account.appid,
        "mode": "safe",
        "kind": "text",
        "text": text,
    });
    sandbox_admin(&sandbox, "/admin/push", body).await
}

/// `POST /demo/api/mp/{login|phonecode|userinfo}`: what the Mini Program's client gets
/// from WeChat (`wx.login`'s code, the phone button's code, `wx.getUserInfo`'s
/// encryptedData), for the `mini` account's sandbox user.
pub async fn mini_program(State(s): State<Ctx>, Path(what): Path<String>) -> Response {
    let Some(sandbox) = demo_on(&s) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let path = match what.as_str() {
        "login" => "/admin/miniprogram/login",
        "phonecode" => "/admin/miniprogram/phonecode",
        "userinfo" => "/admin/miniprogram/userinfo",
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let (Ok(mini), Some(openid)) = (s.account("mini"), s.config.demo.mini_openid.clone()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    sandbox_admin(
        &sandbox,
        path,
        json!({ "appid": mini.appid, "openid": openid }),
    )
    .await
}
