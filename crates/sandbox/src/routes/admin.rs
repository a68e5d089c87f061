//! The admin API: what makes the platform a sandbox. Clock, faults, call counters, sent
//! messages, the Mini Program client side (wx.login, getUserInfo, getPhoneNumber) and the
//! message pusher. None of it exists on WeChat; all of it lives under `/admin/`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{param, Params, Shared};
use crate::faults::Fault;
use crate::messages;
use crate::pusher::{self, MessageMode, PushFormat, PushOptions, PushTarget};

fn bad(msg: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": msg.into() })),
    )
        .into_response()
}

pub async fn clock(State(p): State<Shared>) -> Json<Value> {
    Json(json!({ "now": p.now(), "offset": p.clock.offset() }))
}

#[derive(Deserialize)]
pub struct Advance {
    seconds: i64,
}

/// `POST /admin/clock/advance {"seconds": N}`
pub async fn advance(State(p): State<Shared>, Json(a): Json<Advance>) -> Json<Value> {
    let now = p.clock.advance(a.seconds);
    Json(json!({ "now": now, "offset": p.clock.offset() }))
}

/// `POST /admin/faults {path, kind, ms|status, count?, ratio?}`
pub async fn add_fault(State(p): State<Shared>, Json(f): Json<Fault>) -> Response {
    if f.ratio.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
        return bad("ratio must be between 0 and 1");
    }
    if let Ok(mut faults) = p.faults.lock() {
        faults.add(f);
    }
    Json(json!({ "ok": true })).into_response()
}

pub async fn list_faults(State(p): State<Shared>) -> Json<Value> {
    Json(json!(p.faults.lock().map(|f| f.list()).unwrap_or_default()))
}

pub async fn clear_faults(State(p): State<Shared>) -> Json<Value> {
    if let Ok(mut f) = p.faults.lock() {
        f.clear();
    }
    Json(json!({ "ok": true }))
}

/// `GET /admin/calls`: `{path: {total, by_app: {appid: n}}}`
pub async fn calls(State(p): State<Shared>) -> Json<Value> {
    Json(json!(p.calls()))
}

pub async fn reset_calls(State(p): State<Shared>) -> Json<Value> {
    p.reset_calls();
    Json(json!({ "ok": true }))
}

/// `GET /admin/sent?appid=`: customer-service and template messages, oldest first.
pub async fn sent(State(p): State<Shared>, Query(q): Query<Params>) -> Json<Value> {
    let appid = q.get("appid").map(String::as_str);
    Json(json!(p.sent(appid)))
}

/// `GET /admin/token/check?access_token=`: what WeChat would say of this token now,
/// without counting as a call.
pub async fn token_check(State(p): State<Shared>, Query(q): Query<Params>) -> Json<Value> {
    match p.check_token(param(&q, "access_token")) {
        Ok(appid) => Json(json!({ "errcode": 0, "appid": appid })),
        Err(e) => Json(json!({ "errcode": e.code.code(), "errmsg": e.msg })),
    }
}

/// `GET /admin/component/ticket?component_appid=`: the component's newest
/// `component_verify_ticket`, the one WeChat's ten-minute push would carry.
pub async fn component_ticket(State(p): State<Shared>, Query(q): Query<Params>) -> Response {
    match p.component_verify_ticket(param(&q, "component_appid")) {
        Ok(ticket) => Json(json!({ "component_verify_ticket": ticket })).into_response(),
        Err(e) => bad(e.msg),
    }
}

#[derive(Deserialize)]
pub struct ComponentTarget {
    component_appid: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    authorizer_appid: String,
    /// The permission sets the merchant grants (权限集 ids); the sandbox's defaults when
    /// absent.
    #[serde(default)]
    func_info: Option<Vec<i64>>,
}

/// `POST /admin/component/event_url {component_appid, url}`: the component's
/// authorization-event URL (授权事件接收URL); tickets are pushed there from now on.
pub async fn component_event_url(
    State(p): State<Shared>,
    Json(t): Json<ComponentTarget>,
) -> Response {
    match p.set_event_url(&t.component_appid, &t.url) {
        Ok(()) => Json(json!({ "ok": true })).into_response(),
        Err(e) => bad(e.msg),
    }
}

/// `POST /admin/component/authorize {component_appid, authorizer_appid}`: the merchant
/// consents: an authorization code, also pushed in an `authorized` event.
pub async fn component_authorize(
    State(p): State<Shared>,
    Json(t): Json<ComponentTarget>,
) -> Response {
    match p.authorize(
        &t.component_appid,
        &t.authorizer_appid,
        t.func_info.as_deref(),
    ) {
        Ok(code) => Json(json!({ "authorization_code": code })).into_response(),
        Err(e) => bad(e.msg),
    }
}

/// `POST /admin/component/unauthorize {component_appid, authorizer_appid}`
pub async fn component_unauthorize(
    State(p): State<Shared>,
    Json(t): Json<ComponentTarget>,
) -> Response {
    match p.unauthorize(&t.component_appid, &t.authorizer_appid) {
        Ok(()) => Json(json!({ "ok": true })).into_response(),
        Err(e) => bad(e.msg),
    }
}

/// `POST /admin/component/forget {component_appid, authorizer_appid}`: the refresh token
/// stops working, with no event (as an expired one would).
pub async fn component_forget(State(p): State<Shared>, Json(t): Json<ComponentTarget>) -> Response {
    match p.forget_authorizer(&t.component_appid, &t.authorizer_appid) {
        Ok(()) => Json(json!({ "ok": true })).into_response(),
        Err(e) => bad(e.msg),
    }
}

/// `POST /admin/component/release_test {component_appid, url}`: WeChat's release test
/// against the component, `url` its message URL with `$APPID$`; each case's verdict.
pub async fn component_release_test(
    State(p): State<Shared>,
    Json(t): Json<ComponentTarget>,
) -> Response {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(6))
        .build()
        .unwrap_or_default();
    match crate::release::run(&p, &http, &t.component_appid, &t.url).await {
        Ok(report) => Json(report).into_response(),
        Err(msg) => bad(msg),
    }
}

#[derive(Deserialize)]
pub struct UserRef {
    appid: String,
    openid: String,
    #[serde(default)]
    scope: Option<String>,
}

/// `POST /admin/oauth/code {appid, openid, scope}`: a code as if the user had consented.
pub async fn oauth_code(State(p): State<Shared>, Json(u): Json<UserRef>) -> Response {
    let scope = u.scope.unwrap_or_else(|| "snsapi_userinfo".into());
    match p.issue_oauth_code(&u.appid, &u.openid, &scope) {
        Ok(code) => Json(json!({ "code": code })).into_response(),
        Err(e) => bad(e.msg),
    }
}

/// `POST /admin/miniprogram/login {appid, openid}`: what `wx.login()` gives the client.
pub async fn miniprogram_login(State(p): State<Shared>, Json(u): Json<UserRef>) -> Response {
    match p.issue_js_code(&u.appid, &u.openid) {
        Ok(code) => Json(json!({ "code": code })).into_response(),
        Err(e) => bad(e.msg),
    }
}

fn watermark(p: &Shared, appid: &str) -> Value {
    json!({ "timestamp": p.now(), "appid": appid })
}

/// `POST /admin/miniprogram/userinfo {appid, openid}`: what `wx.getUserInfo()` gives the
/// client: rawData, signature, encryptedData and iv under the current session_key.
pub async fn miniprogram_userinfo(State(p): State<Shared>, Json(u): Json<UserRef>) -> Response {
    let Some(session_key) = p.session_key(&u.appid, &u.openid) else {
        return bad("no session: call jscode2session for this user first");
    };
    let Some(user) = p.user(&u.appid, &u.openid) else {
        return bad("unknown user");
    };
    let raw = json!({
        "nickName": user.nickname, "gender": user.sex, "language": "zh_CN",
        "city": user.city, "province": user.province, "country": user.country,
        "avatarUrl": user.headimgurl,
    });
    let mut full = json!({
        "openId": user.openid, "nickName": user.nickname, "gender": user.sex, "language": "zh_CN",
        "city": user.city, "province": user.province, "country": user.country,
        "avatarUrl": user.headimgurl, "watermark": watermark(&p, &u.appid),
    });
    if let Some(unionid) = &user.unionid {
        full["unionId"] = unionid.clone().into();
    }
    sealed_open_data(&session_key, Some(raw.to_string()), &full.to_string())
}

/// `POST /admin/miniprogram/phonenumber {appid, openid}`: what the old `getPhoneNumber`
/// button gave the client: encryptedData and iv.
pub async fn miniprogram_phone(State(p): State<Shared>, Json(u): Json<UserRef>) -> Response {
    let Some(session_key) = p.session_key(&u.appid, &u.openid) else {
        return bad("no session: call jscode2session for this user first");
    };
    let phone = p
        .user(&u.appid, &u.openid)
        .and_then(|u| u.phone)
        .unwrap_or_else(|| "13800138000".into());
    let full = json!({
        "phoneNumber": phone, "purePhoneNumber": phone, "countryCode": "86",
        "watermark": watermark(&p, &u.appid),
    });
    sealed_open_data(&session_key, None, &full.to_string())
}

fn sealed_open_data(session_key: &str, raw: Option<String>, full: &str) -> Response {
    let iv = wxgate_proto::crypto::base64_encode(&rand::random::<[u8; 16]>());
    let encrypted = match wxgate_proto::miniprogram::encrypt(session_key, &iv, full) {
        Ok(e) => e,
        Err(e) => return bad(e.to_string()),
    };
    let mut v = json!({ "encryptedData": encrypted, "iv": iv });
    if let Some(raw) = raw {
        v["signature"] = wxgate_proto::miniprogram::raw_data_signature(&raw, session_key).into();
        v["rawData"] = raw.into();
    }
    Json(v).into_response()
}

#[derive(Deserialize)]
pub struct PushRequest {
    /// The gateway's push URL.
    url: String,
    appid: String,
    mode: MessageMode,
    /// A sample kind (`text`, `CLICK`, ... see `messages::KINDS`) ...
    #[serde(default)]
    kind: Option<String>,
    /// ... its content or EventKey ...
    #[serde(default)]
    text: Option<String>,
    /// ... or a whole message XML ...
    #[serde(default)]
    xml: Option<String>,
    /// ... or a whole message as a JSON document (text, so its member order is kept).
    #[serde(default)]
    json: Option<String>,
    /// The data format WeChat sends it in: `xml` (the default) or `json`.
    #[serde(default)]
    format: PushFormat,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    msg_id: Option<u64>,
    #[serde(default)]
    options: PushOptions,
}

/// `POST /admin/push`: push a message to a gateway as WeChat would, answer what came back.
pub async fn push(State(p): State<Shared>, Json(r): Json<PushRequest>) -> Response {
    let app = match p.app(&r.appid) {
        Ok(a) => a.clone(),
        Err(e) => return bad(e.msg),
    };
    let Some(token) = app.token.clone() else {
        return bad("the app has no push token in the sandbox config");
    };
    let from = r
        .from
        .or_else(|| app.users.first().map(|u| u.openid.clone()))
        .unwrap_or_else(|| "oSandboxUser".into());
    let limit = wxgate_proto::xml::DEFAULT_LIMIT;
    let message = match (&r.xml, &r.json, &r.kind) {
        (Some(x), _, _) => match wxgate_proto::xml::parse(x, limit) {
            Ok(d) => d.fields,
            Err(e) => return bad(format!("xml: {e}")),
        },
        (None, Some(j), _) => match wxgate_proto::json::parse(j, limit) {
            Ok(f) => f,
            Err(e) => return bad(format!("json: {e}")),
        },
        (None, None, kind) => {
            let kind = kind.as_deref().unwrap_or("text");
            let msg_id = r.msg_id.unwrap_or_else(|| u64::from(rand::random::<u32>()));
            match messages::sample(
                kind,
                &app.original_id,
                &from,
                p.now(),
                msg_id,
                r.text.as_deref(),
            ) {
                Some(m) => m,
                None => {
                    return bad(format!(
                        "unknown kind {kind:?}; one of {:?}",
                        messages::KINDS
                    ))
                }
            }
        }
    };
    let target = PushTarget {
        url: r.url,
        token,
        appid: app.appid.clone(),
        encoding_aes_key: app.encoding_aes_key.clone(),
        mode: r.mode,
        format: r.format,
    };
    let mut opts = r.options;
    opts.timestamp.get_or_insert_with(|| p.now());
    match pusher::push(&reqwest::Client::new(), &target, &message, &opts).await {
        Ok(outcome) => Json(json!(outcome)).into_response(),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

/// `POST /admin/miniprogram/phonecode {appid, openid}`: what the getPhoneNumber button
/// gives the client (a code for `/wxa/business/getuserphonenumber`).
pub async fn miniprogram_phonecode(State(p): State<Shared>, Json(u): Json<UserRef>) -> Response {
    match p.issue_phone_code(&u.appid, &u.openid) {
        Ok(code) => Json(json!({ "code": code })).into_response(),
        Err(e) => bad(&e.msg),
    }
}

#[derive(serde::Deserialize)]
pub struct Subscription {
    appid: String,
    openid: String,
    template_id: String,
}

/// `POST /admin/miniprogram/subscribe {appid, openid, template_id}`: the user accepts
/// one message of the template (what `wx.requestSubscribeMessage` records).
pub async fn miniprogram_subscribe(
    State(p): State<Shared>,
    Json(s): Json<Subscription>,
) -> Response {
    if p.user(&s.appid, &s.openid).is_none() {
        return bad("unknown app or user");
    }
    *p.subscriptions
        .lock()
        .unwrap()
        .entry((s.appid, s.openid, s.template_id))
        .or_default() += 1;
    Json(json!({ "ok": true })).into_response()
}
