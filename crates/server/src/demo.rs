//! The demo pages under `/demo/` (static files embedded in the binary) and `wxgate demo`:
//! the sandbox and a gateway wired to it, so a newcomer sees everything work in a browser
//! without a WeChat account: JS-SDK, OAuth, a chat through `/wx/service` in safe mode, a
//! simulated Mini Program on `/wx/mp/...`, a WeChat Pay payment notified and delivered
//! to a webhook, and the console.
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
        "component.html",
        "text/html; charset=utf-8",
        include_str!("../assets/demo/component.html"),
    ),
    (
        "pay.html",
        "text/html; charset=utf-8",
        include_str!("../assets/demo/pay.html"),
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

/// What the demo's payment webhook received, newest last (a few, in memory).
static DELIVERED: std::sync::Mutex<Vec<serde_json::Value>> = std::sync::Mutex::new(Vec::new());

/// `POST /demo/api/pay/order`: the demo merchant orders 1.00 CNY through the signing
/// proxy's own call (`Merchant::call_signed`, as `/api/v1/pay/demo/v3/...` does), and the
/// sandbox's payer pays it; WeChat Pay then notifies `/wx/pay/demo/notify`.
pub async fn pay_order(
    State(s): State<Ctx>,
    State(pay): State<std::sync::Arc<crate::pay::PayService>>,
) -> Response {
    let (Some(sandbox), Some(m)) = (demo_on(&s), pay.merchant("demo")) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let out_trade_no = format!("DEMO-{}", wxgate_proto::jssdk::nonce_str(12));
    let order = json!({
        "appid": "wxsandbox0000001", "mchid": m.cfg.mchid, "description": "wxgate demo tea",
        "out_trade_no": out_trade_no, "amount": { "total": 100, "currency": "CNY" },
        "notify_url": format!("{}/wx/pay/demo/notify", s.config.base_url()),
    });
    let body = bytes::Bytes::from(order.to_string());
    let answer = match m
        .call_signed("POST", "/v3/pay/transactions/native", body, s.now(), true)
        .await
    {
        Ok(a) if a.status == 200 => a,
        Ok(a) => return (StatusCode::BAD_GATEWAY, a.body).into_response(),
        Err(e) => {
            return (
                StatusCode::BAD_GATEWAY,
                Json(json!({ "error": e.to_string() })),
            )
                .into_response()
        }
    };
    let created: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    let paid = json!({ "mchid": m.cfg.mchid, "out_trade_no": out_trade_no });
    let _ = sandbox_admin(&sandbox, "/admin/pay/pay", paid).await;
    Json(json!({ "out_trade_no": out_trade_no, "order": created })).into_response()
}

/// `POST /demo/api/pay/webhook`: the demo merchant's webhook. It checks wxgate's HMAC
/// signature as a business's webhook would, and keeps what it received.
pub async fn pay_webhook(
    State(s): State<Ctx>,
    headers: axum::http::HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let Some(hook) = s.config.pay.get("demo").map(|p| p.webhook.secret.clone()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let ts: i64 = header(crate::util::WEBHOOK_TIMESTAMP_HEADER)
        .parse()
        .unwrap_or(0);
    let expected = crate::util::webhook_signature(hook.expose().as_bytes(), ts, &body);
    let verified = crate::util::ct_eq(&expected, header(crate::util::WEBHOOK_SIGNATURE_HEADER));
    if !verified {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if let Ok(mut d) = DELIVERED.lock() {
        if d.len() == 20 {
            d.remove(0);
        }
        d.push(json!({ "signature_verified": true, "received": v }));
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /demo/api/pay/deliveries`: what the webhook received, and WeChat Pay's side
/// (the sandbox's notifications: attempts, delivered).
pub async fn pay_deliveries(State(s): State<Ctx>) -> Response {
    let Some(sandbox) = demo_on(&s) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let sent: serde_json::Value = match reqwest::get(format!(
        "{}/admin/pay/notifications",
        sandbox.trim_end_matches('/')
    ))
    .await
    {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    };
    let delivered = DELIVERED.lock().map(|d| d.clone()).unwrap_or_default();
    Json(json!({ "webhook": delivered, "wechat_pay": sent["notifications"] })).into_response()
}

#[derive(serde::Deserialize)]
pub struct ForAuthorizer {
    authorizer_appid: String,
}

/// `POST /demo/api/component/push {"authorizer_appid"}`: a fan of the authorizer says
/// "hello"; WeChat (the sandbox) pushes it to the demo platform's message URL, sealed
/// with the platform's key, and the platform's rule answers for the merchant.
pub async fn component_push(State(s): State<Ctx>, Json(f): Json<ForAuthorizer>) -> Response {
    let (Some(sandbox), Some(c)) = (demo_on(&s), s.config.components.get("demo")) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let appid: String = f
        .authorizer_appid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(32)
        .collect();
    let body = json!({
        "url": format!("{}/wx/component/demo/{appid}/service", s.config.base_url()),
        "appid": c.component_appid,
        "mode": "safe",
        "kind": "text",
        "text": "hello",
    });
    sandbox_admin(&sandbox, "/admin/push", body).await
}
