//! Operating wxgate: metrics, request ids, graceful shutdown that releases locks, and logs
//! that never carry a secret or a token.

use crate::common;

mod reload;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use wxgate::store::Store;
use wxgate_sandbox::pusher::{push, MessageMode, PushOptions, PushTarget};
use wxgate_sandbox::{messages, Sandbox, SandboxConfig};

#[tokio::test]
async fn metrics_and_request_ids() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let dir = TempDir::new("metrics");
    let g = start_gateway(
        &gateway_toml(&sb.base_url(), dir.path(), embedded(), "", ""),
        wxgate::Clock::system(),
    )
    .await;
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/api/v1/default/token", g.url()))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 16);
    let r = http
        .get(format!("{}/healthz", g.url()))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["x-request-id"],
        "trace-abc-123",
        "a caller's sane id is kept"
    );
    let r = http
        .get(format!("{}/healthz", g.url()))
        .header("x-request-id", "bad id <script>")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "bad id <script>");
    http.get(format!(
        "{}/wx/service?signature=x&timestamp=1&nonce=2&echostr=3",
        g.url()
    ))
    .send()
    .await
    .unwrap();
    let text = http
        .get(format!("{}/metrics", g.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "wxgate_http_requests_total{route=\"/api/v1/{account}/token\",status=\"200\"}",
        "wxgate_http_requests_total{route=\"/wx/service\",status=\"403\"}",
        "wxgate_http_request_duration_seconds_bucket{route=\"/api/v1/{account}/token\"",
        "wxgate_upstream_calls_total{endpoint=\"/cgi-bin/stable_token\",errcode=\"0\"}",
        "wxgate_credential_fetches_today{account=\"default\",kind=\"access_token\"}",
        "wxgate_credential_daily_quota 2000",
        "wxgate_credential_expires_at{account=\"default\",kind=\"access_token\"}",
        "wxgate_push_refused_total{account=\"default\",status=\"403\"}",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    assert!(!text.contains("SBX"), "no credential value in metrics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_releases_locks() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let redis = RedisServer::start();
    let dir = TempDir::new("sigterm");
    let port = free_port();
    let toml = gateway_toml(
        &sb.base_url(),
        dir.path(),
        &redis_store(&redis.url()),
        "",
        "",
    )
    .replace("lock_lease_ms = 5000", "lock_lease_ms = 60000");
    let config = write_config(&dir, "wxgate.toml", &toml, port);
    sb.platform.faults.lock().unwrap().add(
        serde_json::from_value(
            json!({"path": "/cgi-bin/stable_token", "appid": OA, "kind": "latency", "ms": 1500, "count": 1}),
        )
        .unwrap(),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .args(["serve", "--config", &config])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port);
    let request = tokio::spawn(async move {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/api/v1/default/token"))
            .bearer_auth(API_KEY)
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let store = wxgate::store::redis::RedisStore::connect(&redis.url())
        .await
        .unwrap();
    assert!(
        store
            .get("wxgate:{default}:lock:access_token")
            .await
            .unwrap()
            .is_some(),
        "the refresh lock is held"
    );
    sigterm(&child);
    let resp = request
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(resp.status(), 200);
    let status =
        tokio::task::spawn_blocking(move || wait_exit(&mut child, Duration::from_secs(15)))
            .await
            .unwrap();
    assert!(status.success(), "exit 0 after a graceful stop");
    assert!(
        store
            .get("wxgate:{default}:lock:access_token")
            .await
            .unwrap()
            .is_none(),
        "released, not left to its 60 s lease"
    );
    assert!(store
        .get("wxgate:{default}:access_token")
        .await
        .unwrap()
        .is_some());
}

/// Everything a secret or a credential can look like in this run.
fn forbidden(sb: &Sandbox, extra: &[String]) -> Vec<String> {
    let mut f: Vec<String> = vec![
        "sandbox-secret-official-0001".into(),
        "sandbox-secret-miniapp-0001".into(),
        "sandboxtoken".into(),
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into(),
        API_KEY.into(),
        "logs-test-auth-secret-0123456789".into(),
        "logs-test-webhook-secret".into(),
        // Every credential the sandbox issues starts with one of these.
        "SBXAT".into(),
        "SBXST".into(),
        "SBXJT".into(),
        "SBXCT".into(),
        "SBXUT".into(),
        "SBXRT".into(),
        "SBXOC".into(),
        "SBXJC".into(),
    ];
    if let Some(k) = sb.platform.session_key(MINI, "oMiniUser00000000000000001") {
        f.push(k);
    }
    f.extend(extra.iter().cloned());
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_run_at_debug_level_logs_no_secret_and_no_token() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let dir = TempDir::new("logs");
    let port = free_port();
    let extra = r#"
[auth]
secret = "logs-test-auth-secret-0123456789"

[[accounts.default.rules]]
keyword = "hello"
reply = { type = "text", content = "hi {openid}" }

[accounts.default.webhook]
url = "http://127.0.0.1:9/nothing"
secret = "logs-test-webhook-secret"
"#;
    let toml = gateway_toml(&sb.base_url(), dir.path(), embedded(), "", extra).replace(
        "public_url = \"http://127.0.0.1:18340\"",
        &format!("public_url = \"http://127.0.0.1:{port}\""),
    );
    let config = write_config(&dir, "wxgate.toml", &toml, port);
    let log_path = dir.path().join("wxgate.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .args(["serve", "--config", &config, "--log-format", "json"])
        .env("RUST_LOG", "debug")
        .stderr(log)
        .spawn()
        .unwrap();
    wait_for_port(port);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let api = |path: &str| http.get(format!("{base}{path}")).bearer_auth(API_KEY);
    let mut seen = Vec::new();

    // Central control, tickets, forced refresh, proxy.
    let t: Value = api("/api/v1/default/token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = t["access_token"].as_str().unwrap().to_owned();
    api("/api/v1/default/ticket/jsapi").send().await.unwrap();
    http.post(format!("{base}/api/v1/default/token/refresh"))
        .bearer_auth(API_KEY)
        .json(&json!({"stale": token}))
        .send()
        .await
        .unwrap();
    api("/api/v1/default/proxy/cgi-bin/user/get")
        .send()
        .await
        .unwrap();
    api("/api/v1/default/status").send().await.unwrap();
    http.get(format!("{base}/api/v1/default/token"))
        .bearer_auth("wrong-key-0123456789abcd")
        .send()
        .await
        .unwrap();

    // JS-SDK and OAuth, a consent round trip and a return visit.
    let page = format!("{base}/page.html");
    let cfg: Value = http
        .get(format!("{base}/wx/config?url={}&debug=1", urlenc(&page)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cfg["state"]["code"], 2000000);
    let r = http
        .get(format!("{base}/wx/auth?dest={}", urlenc(&page)))
        .send()
        .await
        .unwrap();
    let authorize = r.headers()["location"]
        .to_str()
        .unwrap()
        .split('#')
        .next()
        .unwrap()
        .to_owned();
    let q: std::collections::HashMap<String, String> = url::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let decide = format!(
        "{}/connect/oauth2/decide?appid={}&redirect_uri={}&scope={}&state={}&openid=oSandboxUser000000000000001&decision=allow",
        sb.base_url(), q["appid"], urlenc(&q["redirect_uri"]), q["scope"], q["state"]
    );
    let r = http.get(decide).send().await.unwrap();
    let callback = r.headers()["location"].to_str().unwrap().to_owned();
    seen.push(
        url::Url::parse(&callback)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned(),
    );
    let r = http.get(&callback).send().await.unwrap();
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    seen.push(cookie.split_once('=').unwrap().1.to_owned());
    http.get(format!("{base}/wx/auth?dest={}", urlenc(&page)))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();

    // Mini Program.
    let code = sb
        .platform
        .issue_js_code(MINI, "oMiniUser00000000000000001")
        .unwrap();
    let login: Value = http
        .post(format!("{base}/wx/mini/mp/login"))
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = login["data"]["session"].as_str().unwrap().to_owned();
    seen.push(session.clone());
    let ui: Value = http
        .post(format!("{}/admin/miniprogram/userinfo", sb.base_url()))
        .json(&json!({"appid": MINI, "openid": "oMiniUser00000000000000001"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    http.post(format!("{base}/wx/mini/mp/decrypt"))
        .header("x-wxgate-session", &session)
        .json(&json!({"encryptedData": ui["encryptedData"], "iv": ui["iv"]}))
        .send()
        .await
        .unwrap();
    http.post(format!("{base}/wx/mini/mp/decrypt"))
        .header("x-wxgate-session", &session)
        .json(&json!({"encryptedData": "AAAA", "iv": ui["iv"]}))
        .send()
        .await
        .unwrap();

    // Pushes in every mode, a rule reply, the (dead) webhook, a forged one.
    let target = |mode| PushTarget {
        url: format!("{base}/wx/service"),
        token: "sandboxtoken".into(),
        appid: OA.into(),
        encoding_aes_key: Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into()),
        mode,
        format: Default::default(),
    };
    for (i, mode) in [
        MessageMode::Plaintext,
        MessageMode::Compatible,
        MessageMode::Safe,
    ]
    .into_iter()
    .enumerate()
    {
        for (j, text) in ["hello", "to the webhook"].iter().enumerate() {
            let id = (i * 10 + j) as u64 + 1;
            let msg = messages::sample(
                "text",
                "gh_sandbox00001",
                "oSandboxUser000000000000001",
                1_700_000_000 + id as i64,
                id,
                Some(text),
            )
            .unwrap();
            push(
                &reqwest::Client::new(),
                &target(mode),
                &msg,
                &PushOptions::default(),
            )
            .await
            .unwrap();
        }
    }
    http.post(format!("{base}/wx/service?signature=0&timestamp=1&nonce=2"))
        .body("<xml/>")
        .send()
        .await
        .unwrap();

    // WeChat in trouble, then a graceful stop.
    sb.platform
        .faults
        .lock()
        .unwrap()
        .add(serde_json::from_value(json!({"path": "*", "kind": "busy", "count": 3})).unwrap());
    http.post(format!("{base}/api/v1/default/token/refresh"))
        .bearer_auth(API_KEY)
        .json(&json!({"stale": "whatever"}))
        .send()
        .await
        .unwrap();
    sigterm(&child);
    assert!(
        tokio::task::spawn_blocking(move || wait_exit(&mut child, Duration::from_secs(15)))
            .await
            .unwrap()
            .success()
    );

    let mut logs = String::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(
        logs.lines().count() > 20,
        "a debug run logs plenty:\n{logs}"
    );
    assert!(
        logs.contains("credential fetched") && logs.contains("request_id"),
        "{logs}"
    );
    for line in logs.lines() {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "every line is JSON: {line}"
        );
    }
    if let Ok(dump) = std::env::var("LOG_DUMP") {
        std::fs::write(dump, &logs).unwrap();
    }
    for secret in forbidden(&sb, &seen) {
        assert!(!logs.contains(&secret), "the logs contain {secret:?}");
    }
}

fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
