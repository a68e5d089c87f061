//! Mini Program sessions through the sandbox: login, rawData verification, user-info and
//! phone-number decryption, forged and stale inputs, restarts and a shared fleet.

use crate::common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use wxgate::Clock;
use wxgate_sandbox::{Sandbox, SandboxConfig};

const MINI_USER: &str = "oMiniUser00000000000000001";

struct Mp {
    sb: std::sync::Arc<Sandbox>,
    gw: wxgate::gateway::Running,
    http: reqwest::Client,
}

async fn start(sb: std::sync::Arc<Sandbox>, store: &str, dir: &TempDir, top: &str) -> Mp {
    let toml = gateway_toml(
        &sb.base_url(),
        dir.path(),
        store,
        "",
        &format!("[miniprogram]\n{top}\n"),
    );
    let gw = start_gateway(&toml, Clock::system()).await;
    Mp {
        sb,
        gw,
        http: reqwest::Client::new(),
    }
}

impl Mp {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        session: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/wx/mini/mp/{path}", self.gw.url()));
        if let Some(s) = session {
            req = req.header("X-Wxgate-Session", s);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn login(&self) -> (u16, Value) {
        let code = self.sb.platform.issue_js_code(MINI, MINI_USER).unwrap();
        self.call(
            reqwest::Method::POST,
            "login",
            None,
            Some(json!({ "code": code })),
        )
        .await
    }

    async fn admin(&self, what: &str) -> Value {
        self.http
            .post(format!("{}/admin/miniprogram/{what}", self.sb.base_url()))
            .json(&json!({"appid": MINI, "openid": MINI_USER}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn session_of(v: &Value) -> String {
    v["data"]["session"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn login_verify_decrypt_and_logout() {
    let sb = std::sync::Arc::new(
        Sandbox::start_ephemeral(SandboxConfig::example())
            .await
            .unwrap(),
    );
    let dir = TempDir::new("mp");
    let m = start(sb, embedded(), &dir, "").await;
    let (status, v) = m.login().await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"]["code"], 2000000);
    let d = &v["data"];
    assert_eq!(d["openid"], MINI_USER);
    assert_eq!(d["unionid"], "uSandboxUnion0000000000001");
    assert_eq!(d["expires_in"], 604800);
    let session = session_of(&v);
    assert!(session.len() >= 43, "256 bits in base64: {session}");
    let session_key = m.sb.platform.session_key(MINI, MINI_USER).unwrap();
    assert!(
        !v.to_string().contains(&session_key),
        "the session_key never leaves the server"
    );

    // rawData: genuine and tampered.
    let ui = m.admin("userinfo").await;
    let (status, v) = m
        .call(
            reqwest::Method::POST,
            "verify",
            Some(&session),
            Some(json!({"rawData": ui["rawData"], "signature": ui["signature"]})),
        )
        .await;
    assert_eq!(
        (status, v["data"]["valid"].as_bool()),
        (200, Some(true)),
        "{v}"
    );
    let tampered = ui["rawData"].as_str().unwrap().replace("Band", "Bond");
    let (_, v) = m
        .call(
            reqwest::Method::POST,
            "verify",
            Some(&session),
            Some(json!({"rawData": tampered, "signature": ui["signature"]})),
        )
        .await;
    assert_eq!(v["data"]["valid"], false);

    // User info and phone number.
    let (status, v) = m
        .call(
            reqwest::Method::POST,
            "decrypt",
            Some(&session),
            Some(json!({"encryptedData": ui["encryptedData"], "iv": ui["iv"]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["openId"], MINI_USER);
    assert_eq!(v["data"]["nickName"], "Band");
    assert_eq!(v["data"]["watermark"]["appid"], MINI);
    let phone = m.admin("phonenumber").await;
    let (status, v) = m
        .call(
            reqwest::Method::POST,
            "decrypt",
            Some(&session),
            Some(json!({"encryptedData": phone["encryptedData"], "iv": phone["iv"]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["phoneNumber"], "13800138000");
    assert_eq!(v["data"]["countryCode"], "86");

    // Bad inputs: a clear 400, nothing stored.
    for (body, needle) in [
        (json!({"encryptedData": "!!!", "iv": ui["iv"]}), "base64"),
        (
            json!({"encryptedData": ui["encryptedData"], "iv": "c2hvcnQ="}),
            "iv",
        ),
        (json!({"encryptedData": "QUJD", "iv": ui["iv"]}), "length"),
        (json!({"iv": ui["iv"]}), "encryptedData is required"),
    ] {
        let (status, v) = m
            .call(
                reqwest::Method::POST,
                "decrypt",
                Some(&session),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(v["state"]["msg"].as_str().unwrap().contains(needle), "{v}");
    }
    // Data of another app, under the right key: the watermark gives it away.
    let foreign = wxgate_proto::miniprogram::encrypt(
        &session_key,
        ui["iv"].as_str().unwrap(),
        r#"{"openId":"x","watermark":{"appid":"wxotherapp","timestamp":1}}"#,
    )
    .unwrap();
    let (status, v) = m
        .call(
            reqwest::Method::POST,
            "decrypt",
            Some(&session),
            Some(json!({"encryptedData": foreign, "iv": ui["iv"]})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        v["state"]["msg"].as_str().unwrap().contains("wxotherapp"),
        "{v}"
    );
    let r = m
        .http
        .post(format!("{}/wx/mini/mp/decrypt", m.gw.url()))
        .header("X-Wxgate-Session", &session)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // No session, a forged one.
    let (status, _) = m
        .call(
            reqwest::Method::POST,
            "verify",
            None,
            Some(json!({"rawData": "x", "signature": "y"})),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = m
        .call(
            reqwest::Method::GET,
            "session",
            Some("forged-session-id"),
            None,
        )
        .await;
    assert_eq!(status, 401);

    // checkSession, then logout.
    let (status, v) = m
        .call(reqwest::Method::GET, "session", Some(&session), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["data"]["valid"], true);
    assert_eq!(v["data"]["openid"], MINI_USER);
    let (status, _) = m
        .call(reqwest::Method::DELETE, "session", Some(&session), None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = m
        .call(reqwest::Method::GET, "session", Some(&session), None)
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_new_login_rotates_the_key_and_stale_data_is_explained() {
    let sb = std::sync::Arc::new(
        Sandbox::start_ephemeral(SandboxConfig::example())
            .await
            .unwrap(),
    );
    let dir = TempDir::new("mp-rotate");
    let m = start(sb, embedded(), &dir, "").await;
    let (_, v) = m.login().await;
    let old_session = session_of(&v);
    let old_data = m.admin("userinfo").await;
    let (_, v) = m.login().await;
    let new_session = session_of(&v);
    assert_ne!(old_session, new_session);
    let (status, _) = m
        .call(reqwest::Method::GET, "session", Some(&old_session), None)
        .await;
    assert_eq!(status, 401, "the previous session ended with the rotation");
    let (status, v) = m
        .call(
            reqwest::Method::POST,
            "decrypt",
            Some(&new_session),
            Some(json!({"encryptedData": old_data["encryptedData"], "iv": old_data["iv"]})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(v["state"]["msg"].as_str().unwrap().contains("stale"), "{v}");
    let (_, v) = m
        .call(
            reqwest::Method::POST,
            "verify",
            Some(&new_session),
            Some(json!({"rawData": old_data["rawData"], "signature": old_data["signature"]})),
        )
        .await;
    assert_eq!(v["data"]["valid"], false);
}

#[tokio::test]
async fn wechat_login_errors_are_clear() {
    let sb = std::sync::Arc::new(
        Sandbox::start_ephemeral(SandboxConfig::example())
            .await
            .unwrap(),
    );
    let dir = TempDir::new("mp-errors");
    let m = start(sb, embedded(), &dir, "").await;
    let code = m.sb.platform.issue_js_code(MINI, MINI_USER).unwrap();
    let (status, _) = m
        .call(
            reqwest::Method::POST,
            "login",
            None,
            Some(json!({ "code": code })),
        )
        .await;
    assert_eq!(status, 200);
    let (status, v) = m
        .call(
            reqwest::Method::POST,
            "login",
            None,
            Some(json!({ "code": code })),
        )
        .await;
    assert_eq!(
        (status, v["state"]["errcode"].as_i64()),
        (400, Some(40163)),
        "{v}"
    );
    let (status, v) = m
        .call(
            reqwest::Method::POST,
            "login",
            None,
            Some(json!({ "code": "nonsense" })),
        )
        .await;
    assert_eq!(
        (status, v["state"]["errcode"].as_i64()),
        (400, Some(40029)),
        "{v}"
    );
    let (status, _) = m
        .call(reqwest::Method::POST, "login", None, Some(json!({})))
        .await;
    assert_eq!(status, 400);
    m.sb.platform.faults.lock().unwrap().add(
        serde_json::from_value(json!({"path": "/sns/jscode2session", "kind": "busy"})).unwrap(),
    );
    let code = m.sb.platform.issue_js_code(MINI, MINI_USER).unwrap();
    let (status, v) = m
        .call(
            reqwest::Method::POST,
            "login",
            None,
            Some(json!({ "code": code })),
        )
        .await;
    assert_eq!(
        (status, v["state"]["errcode"].as_i64()),
        (503, Some(-1)),
        "{v}"
    );
    // Official accounts have no Mini Program routes.
    let r = m
        .http
        .post(format!("{}/wx/mp/login", m.gw.url()))
        .json(&json!({"code": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = m
        .http
        .get(format!("{}/wx/nope/mp/session", m.gw.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn the_default_route_serves_a_default_mini_program() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let dir = TempDir::new("mp-default");
    let toml = format!(
        "data_dir = \"{}\"\n[upstream]\napi_base = \"{}\"\nopen_base = \"{}\"\n[accounts.default]\nkind = \"miniapp\"\nappid = \"{MINI}\"\nsecret = \"sandbox-secret-miniapp-0001\"\n",
        dir.path().display(),
        sb.base_url(),
        sb.base_url()
    );
    let gw = start_gateway(&toml, Clock::system()).await;
    let code = sb.platform.issue_js_code(MINI, MINI_USER).unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/wx/mp/login", gw.url()))
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn sessions_slide_with_use() {
    let sb = std::sync::Arc::new(
        Sandbox::start_ephemeral(SandboxConfig::example())
            .await
            .unwrap(),
    );
    let dir = TempDir::new("mp-slide");
    let m = start(sb, embedded(), &dir, "session_ttl = 2").await;
    let (_, v) = m.login().await;
    let session = session_of(&v);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        m.call(reqwest::Method::GET, "session", Some(&session), None)
            .await
            .0,
        200
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        m.call(reqwest::Method::GET, "session", Some(&session), None)
            .await
            .0,
        200,
        "extended by the last use"
    );
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(
        m.call(reqwest::Method::GET, "session", Some(&session), None)
            .await
            .0,
        401,
        "expired after 2 s unused"
    );
}

#[tokio::test]
async fn a_session_survives_a_restart_on_the_embedded_store() {
    let sb = std::sync::Arc::new(
        Sandbox::start_ephemeral(SandboxConfig::example())
            .await
            .unwrap(),
    );
    let dir = TempDir::new("mp-restart");
    let first = start(sb.clone(), embedded(), &dir, "").await;
    let (_, v) = first.login().await;
    let session = session_of(&v);
    first.gw.stop().await;
    // The stopped gateway's background tasks let go of the file shortly after.
    let mut second = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let toml = gateway_toml(&sb.base_url(), dir.path(), embedded(), "", "");
        let config =
            wxgate::Config::from_toml_with_env(&toml, Vec::<(String, String)>::new()).unwrap();
        if let Ok(state) = wxgate::gateway::build(config, Clock::system()).await {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            second = Some(Mp {
                sb: sb.clone(),
                gw: wxgate::gateway::start_on(listener, state).await.unwrap(),
                http: reqwest::Client::new(),
            });
            break;
        }
    }
    let second = second.expect("the store reopens");
    let (status, v) = second
        .call(reqwest::Method::GET, "session", Some(&session), None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["openid"], MINI_USER);
    let ui = second.admin("userinfo").await;
    let (status, _) = second
        .call(
            reqwest::Method::POST,
            "decrypt",
            Some(&session),
            Some(json!({"encryptedData": ui["encryptedData"], "iv": ui["iv"]})),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_shares_sessions_through_redis() {
    let sb = std::sync::Arc::new(
        Sandbox::start_ephemeral(SandboxConfig::example())
            .await
            .unwrap(),
    );
    let redis = RedisServer::start();
    let (da, db) = (TempDir::new("mp-a"), TempDir::new("mp-b"));
    let a = start(sb.clone(), &redis_store(&redis.url()), &da, "").await;
    let b = start(sb, &redis_store(&redis.url()), &db, "").await;
    let (_, v) = a.login().await;
    let session = session_of(&v);
    let ui = b.admin("userinfo").await;
    let (status, v) = b
        .call(
            reqwest::Method::POST,
            "verify",
            Some(&session),
            Some(json!({"rawData": ui["rawData"], "signature": ui["signature"]})),
        )
        .await;
    assert_eq!((status, v["data"]["valid"].as_bool()), (200, Some(true)));
    let (status, v) = b
        .call(
            reqwest::Method::POST,
            "decrypt",
            Some(&session),
            Some(json!({"encryptedData": ui["encryptedData"], "iv": ui["iv"]})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["data"]["openId"], MINI_USER);
    let (status, _) = b
        .call(reqwest::Method::DELETE, "session", Some(&session), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        a.call(reqwest::Method::GET, "session", Some(&session), None)
            .await
            .0,
        401,
        "logged out everywhere"
    );
}

#[tokio::test]
async fn the_phone_number_by_code_needs_a_session_and_a_fresh_button_code() {
    let sb = std::sync::Arc::new(
        Sandbox::start_ephemeral(SandboxConfig::example())
            .await
            .unwrap(),
    );
    let dir = TempDir::new("mp-phone");
    let m = start(sb.clone(), embedded(), &dir, "").await;
    let (_, v) = m.login().await;
    let session = session_of(&v);
    let code = sb.platform.issue_phone_code(MINI, MINI_USER).unwrap();
    let post = |session: Option<String>, code: String| {
        let m = &m;
        async move {
            m.call(
                reqwest::Method::POST,
                "phone",
                session.as_deref(),
                Some(json!({ "code": code })),
            )
            .await
        }
    };
    // No session: 401, and nothing asked of WeChat.
    let (status, _) = post(None, code.clone()).await;
    assert_eq!(status, 401);
    assert_eq!(
        sandbox_calls(&sb, "/wxa/business/getuserphonenumber", MINI),
        0
    );
    // The number, with its country code, checked against the app.
    let (status, v) = post(Some(session.clone()), code.clone()).await;
    assert_eq!(status, 200, "{v}");
    let info = &v["data"]["phone_info"];
    assert_eq!(info["purePhoneNumber"], "13800138000");
    assert_eq!(info["phoneNumber"], "+8613800138000");
    assert_eq!(info["countryCode"], 86);
    assert!(info.get("watermark").is_none());
    // The code once only: 40163, explained.
    let (status, v) = post(Some(session.clone()), code).await;
    assert_eq!(status, 400);
    assert_eq!(v["state"]["errcode"], 40163, "{v}");
    assert!(
        v["state"]["msg"]
            .as_str()
            .unwrap()
            .contains("getPhoneNumber"),
        "{v}"
    );
    // A wx.login code where the button's code belongs: 40029, explained the same way.
    let login_code = sb.platform.issue_js_code(MINI, MINI_USER).unwrap();
    let (status, v) = post(Some(session), login_code).await;
    assert_eq!(status, 400);
    assert_eq!(v["state"]["errcode"], 40029, "{v}");
    assert!(
        v["state"]["msg"]
            .as_str()
            .unwrap()
            .contains("not the wx.login code"),
        "{v}"
    );
}

#[tokio::test]
async fn the_session_key_is_checked_and_reset_with_wechat_and_never_leaves() {
    let sb = std::sync::Arc::new(
        Sandbox::start_ephemeral(SandboxConfig::example())
            .await
            .unwrap(),
    );
    let dir = TempDir::new("mp-remote");
    let m = start(sb.clone(), embedded(), &dir, "").await;
    let (_, v) = m.login().await;
    let session = session_of(&v);
    let get = |path: &'static str| m.call(reqwest::Method::GET, path, Some(&session), None);
    let (status, v) = get("session?remote=1").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["remote_valid"], true);
    assert_eq!(sandbox_calls(&sb, "/wxa/checksession", MINI), 1);
    let (_, v) = get("session").await;
    assert!(
        v["data"].get("remote_valid").is_none(),
        "no remote check unless asked"
    );

    // Reset: a new key at WeChat, kept in the session; data sealed under it decrypts.
    let (status, v) = m
        .call(reqwest::Method::POST, "session/reset", Some(&session), None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["reset"], true);
    assert!(
        !v.to_string().contains("session_key"),
        "the key never leaves: {v}"
    );
    let ui = m.admin("userinfo").await;
    let (status, v) = m
        .call(
            reqwest::Method::POST,
            "decrypt",
            Some(&session),
            Some(json!({"encryptedData": ui["encryptedData"], "iv": ui["iv"]})),
        )
        .await;
    assert_eq!(status, 200, "decrypts under the reset key: {v}");
    let (_, v) = get("session?remote=1").await;
    assert_eq!(v["data"]["remote_valid"], true);

    // A login elsewhere replaces the key at WeChat: the remote check says so, and a
    // reset signed with the stale key is refused (87009), sending the client to log in.
    let code = sb.platform.issue_js_code(MINI, MINI_USER).unwrap();
    sb.platform
        .jscode2session(
            MINI,
            "sandbox-secret-miniapp-0001",
            &code,
            "authorization_code",
        )
        .unwrap();
    let (status, v) = get("session?remote=1").await;
    assert_eq!(status, 200);
    assert_eq!(v["data"]["remote_valid"], false);
    let (status, v) = m
        .call(reqwest::Method::POST, "session/reset", Some(&session), None)
        .await;
    assert_eq!(status, 401, "{v}");
    assert_eq!(v["state"]["errcode"], 87009);
    // Without a session: 401 and nothing asked of WeChat.
    let checks = sandbox_calls(&sb, "/wxa/checksession", MINI);
    let (status, _) = m
        .call(reqwest::Method::GET, "session?remote=1", None, None)
        .await;
    assert_eq!(status, 401);
    assert_eq!(sandbox_calls(&sb, "/wxa/checksession", MINI), checks);
}

#[tokio::test]
async fn user_text_is_checked_by_wechat_for_a_session_without_a_token() {
    let sb = std::sync::Arc::new(
        Sandbox::start_ephemeral(SandboxConfig::example())
            .await
            .unwrap(),
    );
    let dir = TempDir::new("mp-check");
    let m = start(sb.clone(), embedded(), &dir, "").await;
    let (_, v) = m.login().await;
    let session = session_of(&v);
    let check = |session: Option<String>, body: Value| {
        let m = &m;
        async move {
            m.call(
                reqwest::Method::POST,
                "check/text",
                session.as_deref(),
                Some(body),
            )
            .await
        }
    };
    let s = || Some(session.clone());
    let (status, v) = check(s(), json!({"content": "hello there", "scene": 2})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["suggest"], "pass");
    assert_eq!(v["data"]["label"], 100);
    assert!(v["data"]["trace_id"]
        .as_str()
        .unwrap()
        .starts_with("sbx-trace-"));
    let (_, v) = check(s(), json!({"content": "this is sandbox-risky", "scene": 3})).await;
    assert_eq!(v["data"]["suggest"], "risky");
    assert_eq!(v["data"]["label"], 20006);
    let calls = sandbox_calls(&sb, "/wxa/msg_sec_check", MINI);
    assert_eq!(calls, 2);
    // Refused before WeChat: no session, too long, a scene WeChat does not have, empty.
    for (session, body, status) in [
        (None, json!({"content": "x"}), 401),
        (s(), json!({"content": "字".repeat(2501)}), 400),
        (s(), json!({"content": "x", "scene": 9}), 400),
        (s(), json!({"content": ""}), 400),
    ] {
        let (got, v) = check(session, body).await;
        assert_eq!(got, status, "{v}");
    }
    assert_eq!(sandbox_calls(&sb, "/wxa/msg_sec_check", MINI), calls);
}

#[tokio::test]
async fn remote_session_checks_are_rate_limited_per_client() {
    let sb = std::sync::Arc::new(
        Sandbox::start_ephemeral(SandboxConfig::example())
            .await
            .unwrap(),
    );
    let dir = TempDir::new("mp-remote-limit");
    let m = start(sb.clone(), embedded(), &dir, "").await;
    let (_, v) = m.login().await;
    let session = session_of(&v);
    let mut statuses = Vec::new();
    for _ in 0..25 {
        let (status, _) = m
            .call(
                reqwest::Method::GET,
                "session?remote=1",
                Some(&session),
                None,
            )
            .await;
        statuses.push(status);
    }
    // The default burst (20 a client) shared with the login made above.
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(sandbox_calls(&sb, "/wxa/checksession", MINI) < 25);
}
