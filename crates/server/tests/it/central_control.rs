//! The central control, against the sandbox: one fetch for a fleet at a cold start, one
//! fetch for a storm of forced refreshes, proactive refresh over a simulated day,
//! survival of upstream failures, and the token-injecting proxy.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use wxgate::Clock;
use wxgate_sandbox::{Sandbox, SandboxConfig};

async fn api(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, url).bearer_auth(API_KEY);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// What the sandbox says of a token right now (0 = valid).
fn sandbox_verdict(sb: &Sandbox, token: &str) -> i64 {
    match sb.platform.check_token(token) {
        Ok(_) => 0,
        Err(e) => e.code.code(),
    }
}

/// Invalidates the account's stable token at the sandbox, as a server outside wxgate
/// that force-refreshes would.
async fn outside_force_refresh(sb: &Sandbox) -> String {
    let g = sb
        .platform
        .stable_token("client_credential", OA, OA_SECRET, true)
        .unwrap();
    g.value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fleet_at_a_cold_start_fetches_once() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let redis = RedisServer::start();
    let dir = TempDir::new("fleet");
    let toml = gateway_toml(
        &sb.base_url(),
        dir.path(),
        &redis_store(&redis.url()),
        "",
        "",
    );
    let mut fleet = Vec::new();
    for _ in 0..3 {
        fleet.push(start_gateway(&toml, Clock::system()).await);
    }
    let urls: Vec<String> = fleet.iter().map(|g| g.url()).collect();
    let http = reqwest::Client::new();
    for (path, upstream) in [
        ("token", "/cgi-bin/stable_token"),
        ("ticket/jsapi", "/cgi-bin/ticket/getticket"),
    ] {
        let mut tasks = Vec::new();
        for i in 0..1000 {
            let (http, url) = (
                http.clone(),
                format!("{}/api/v1/default/{path}", urls[i % 3]),
            );
            tasks.push(tokio::spawn(async move { api_get(&http, url).await }));
        }
        let mut values = std::collections::HashSet::new();
        for t in tasks {
            let (status, v) = t.await.unwrap();
            assert_eq!(status, 200, "{v}");
            let value = v["access_token"]
                .as_str()
                .or(v["ticket"].as_str())
                .unwrap()
                .to_owned();
            assert!(v["expires_in"].as_i64().unwrap() > 7000);
            values.insert(value);
        }
        assert_eq!(values.len(), 1, "all 1000 callers got the same {path}");
        assert_eq!(
            sandbox_calls(&sb, upstream, OA),
            1,
            "exactly one upstream fetch for {path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_of_forced_refreshes_fetches_once() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let redis = RedisServer::start();
    let dir = TempDir::new("storm");
    let toml = gateway_toml(
        &sb.base_url(),
        dir.path(),
        &redis_store(&redis.url()),
        "",
        "",
    );
    let mut fleet = Vec::new();
    for _ in 0..3 {
        fleet.push(start_gateway(&toml, Clock::system()).await);
    }
    let http = reqwest::Client::new();
    let (_, v) = api_get(&http, format!("{}/api/v1/default/token", fleet[0].url())).await;
    let stale = v["access_token"].as_str().unwrap().to_owned();
    // Someone else force-refreshes: WeChat now rejects `stale` with 40001.
    outside_force_refresh(&sb).await;
    assert_eq!(sandbox_verdict(&sb, &stale), 40001);
    sb.platform.reset_calls();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (http, url) = (
            http.clone(),
            format!("{}/api/v1/default/token/refresh", fleet[i % 3].url()),
        );
        let body = json!({ "stale": stale });
        tasks.push(tokio::spawn(async move {
            api(&http, reqwest::Method::POST, url, Some(body)).await
        }));
    }
    let mut values = std::collections::HashSet::new();
    for t in tasks {
        let (status, v) = t.await.unwrap();
        assert_eq!(status, 200, "{v}");
        values.insert(v["access_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(values.len(), 1);
    let fresh = values.into_iter().next().unwrap();
    assert_ne!(fresh, stale);
    assert_eq!(sandbox_verdict(&sb, &fresh), 0);
    assert_eq!(
        sandbox_calls(&sb, "/cgi-bin/stable_token", OA),
        1,
        "200 forced refreshes, one fetch"
    );
    // A refresh naming a token that is no longer current changes nothing.
    let (_, v) = api(
        &http,
        reqwest::Method::POST,
        format!("{}/api/v1/default/token/refresh", fleet[1].url()),
        Some(json!({"stale": stale})),
    )
    .await;
    assert_eq!(v["access_token"], fresh.as_str());
    assert_eq!(sandbox_calls(&sb, "/cgi-bin/stable_token", OA), 1);
}

/// A WeChat stand-in that hands back the same stable token in normal mode whatever
/// happens, says every token is dead, and counts what it is asked: the case where only
/// a forced refresh helps.
async fn stuck_upstream() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let log = log.clone();
        async move {
            let path = req.uri().path().to_owned();
            let body = axum::body::to_bytes(req.into_body(), 1 << 16)
                .await
                .unwrap();
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let answer = if path == "/cgi-bin/stable_token" {
                let forced = body["force_refresh"] == true;
                let mut log = log.lock().unwrap();
                let n = log.iter().filter(|p| *p == "forced").count();
                log.push(if forced { "forced" } else { "normal" }.to_owned());
                let n = if forced { n + 1 } else { n };
                json!({"access_token": format!("TOKEN-{n}"), "expires_in": 7200})
            } else {
                log.lock().unwrap().push(path);
                json!({"errcode": 40001, "errmsg": "invalid credential"})
            };
            axum::Json(answer)
        }
    });
    (serve_stand_in(app).await, seen)
}

#[tokio::test]
async fn a_dead_stable_token_that_wechat_still_hands_out_is_forced_once_per_interval() {
    let (upstream, seen) = stuck_upstream().await;
    let dir = TempDir::new("force");
    let toml = gateway_toml(&upstream, dir.path(), embedded(), "", "");
    let g = start_gateway(&toml, Clock::system()).await;
    let http = reqwest::Client::new();
    let count = |what: &str| seen.lock().unwrap().iter().filter(|p| *p == what).count();
    let (_, v) = api_get(&http, format!("{}/api/v1/default/token", g.url())).await;
    assert_eq!(v["access_token"], "TOKEN-0");
    // WeChat says TOKEN-0 is dead and keeps handing it back: forced, once.
    let refresh = |stale: &str| {
        api(
            &http,
            reqwest::Method::POST,
            format!("{}/api/v1/default/token/refresh", g.url()),
            Some(json!({ "stale": stale })),
        )
    };
    let (status, v) = refresh("TOKEN-0").await;
    assert_eq!(
        (status, v["access_token"].as_str()),
        (200, Some("TOKEN-1")),
        "{v}"
    );
    assert_eq!(count("forced"), 1);
    assert_eq!(
        count("/cgi-bin/get_api_domain_ip"),
        1,
        "confirmed dead first"
    );
    // Dead again at once: a second forced refresh within the interval is refused and
    // counted, the token is not burnt again.
    let (status, v) = refresh("TOKEN-1").await;
    assert_ne!(status, 200, "{v}");
    assert_eq!(v["error"]["errcode"], 45011, "{v}");
    assert_eq!(count("forced"), 1, "one forced refresh per interval");
    let metrics = metrics_text(&g.url()).await;
    assert!(
        metrics
            .contains("wxgate_forced_refreshes_total{account=\"default\",outcome=\"limited\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_caller_calling_a_live_token_stale_burns_nothing() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let dir = TempDir::new("live-stale");
    let g = start_gateway(
        &gateway_toml(&sb.base_url(), dir.path(), embedded(), "", ""),
        Clock::system(),
    )
    .await;
    let http = reqwest::Client::new();
    let (_, v) = api_get(&http, format!("{}/api/v1/default/token", g.url())).await;
    let current = v["access_token"].as_str().unwrap().to_owned();
    for _ in 0..20 {
        let (status, v) = api(
            &http,
            reqwest::Method::POST,
            format!("{}/api/v1/default/token/refresh", g.url()),
            Some(json!({"stale": current})),
        )
        .await;
        assert_eq!(
            (status, v["access_token"].as_str()),
            (200, Some(current.as_str()))
        );
    }
    assert_eq!(
        sandbox_verdict(&sb, &current),
        0,
        "still alive for every holder"
    );
    assert_eq!(
        sandbox_calls(&sb, "/cgi-bin/stable_token", OA),
        1,
        "no fetch"
    );
    let checks = sandbox_calls(&sb, "/cgi-bin/get_api_domain_ip", OA);
    assert!(
        (1..=5).contains(&checks),
        "20 claims cost at most the burst of liveness checks: {checks}"
    );
}

#[tokio::test]
async fn classic_token_storm_fetches_once() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let dir = TempDir::new("classic");
    let toml = gateway_toml(&sb.base_url(), dir.path(), embedded(), "", "").replace(
        "mode = \"safe\"",
        "mode = \"safe\"\ntoken_api = \"classic\"",
    );
    let g = start_gateway(&toml, Clock::system()).await;
    let http = reqwest::Client::new();
    let (_, v) = api_get(&http, format!("{}/api/v1/default/token", g.url())).await;
    let stale = v["access_token"].as_str().unwrap().to_owned();
    // Another server fetches a classic token: WeChat retires this one after its overlap.
    sb.platform
        .classic_token("client_credential", OA, OA_SECRET)
        .unwrap();
    sb.platform.clock.advance(301);
    assert_eq!(sandbox_verdict(&sb, &stale), 40001);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (http, url) = (
            http.clone(),
            format!("{}/api/v1/default/token/refresh", g.url()),
        );
        let body = json!({ "stale": stale });
        tasks.push(tokio::spawn(async move {
            api(&http, reqwest::Method::POST, url, Some(body)).await
        }));
    }
    for t in tasks {
        let (status, v) = t.await.unwrap();
        assert_eq!(status, 200);
        assert_ne!(v["access_token"], stale.as_str());
    }
    assert_eq!(
        sandbox_calls(&sb, "/cgi-bin/token", OA),
        2,
        "the first fetch and one refresh"
    );
    assert_eq!(sandbox_calls(&sb, "/cgi-bin/stable_token", OA), 0);
}

#[tokio::test]
async fn a_simulated_day_refreshes_ahead_and_never_serves_an_expired_token() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let dir = TempDir::new("day");
    let toml = gateway_toml(&sb.base_url(), dir.path(), embedded(), "", "")
        .replace("check_interval_ms = 100", "check_interval_ms = 3600000");
    let clock = Clock::system();
    // The day starts at noon UTC whenever the test runs: the daily counter counts from
    // UTC midnight, and a day started just after midnight ended just after the next
    // one, with no fetch yet "today" (the test failed when run at 00:05 UTC).
    let to_noon = (43_200 - clock.now().rem_euclid(86_400)).rem_euclid(86_400);
    clock.advance(to_noon);
    sb.platform.clock.advance(to_noon);
    let g = start_gateway(&toml, clock.clone()).await;
    let central = g.state.ctx.credentials.clone();
    let http = reqwest::Client::new();
    let mut served = std::collections::HashSet::new();
    for minute in 0..(24 * 60) {
        if minute > 0 {
            clock.advance(60);
            sb.platform.clock.advance(60);
        }
        central.refresh_due().await;
        let (status, v) = api_get(&http, format!("{}/api/v1/default/token", g.url())).await;
        assert_eq!(status, 200, "minute {minute}: {v}");
        let token = v["access_token"].as_str().unwrap();
        assert!(v["expires_in"].as_i64().unwrap() > 0);
        assert_eq!(
            sandbox_verdict(&sb, token),
            0,
            "minute {minute}: the token served is valid at WeChat"
        );
        served.insert(token.to_owned());
    }
    let fetches = sandbox_calls(&sb, "/cgi-bin/stable_token", OA);
    assert!(fetches <= 13, "{fetches} fetches in a day");
    assert!(fetches >= 12, "{fetches}: it did refresh");
    assert_eq!(served.len() as u64, fetches);
    // The daily counter the operator sees counts the fetches since midnight: about
    // half the day's, one every two hours or so.
    let status = central.status("default").await.unwrap();
    let today = status[0].fetches_today;
    assert!((5..=7).contains(&today), "{today} fetches since midnight");
}

#[tokio::test]
async fn upstream_trouble_keeps_the_unexpired_token_and_reports_clearly_after() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let dir = TempDir::new("faults");
    // Strict readiness: not ready while an account has no usable token.
    let toml = gateway_toml(
        &sb.base_url(),
        dir.path(),
        embedded(),
        "readiness = \"all_accounts\"",
        "",
    )
    .replace("check_interval_ms = 100", "check_interval_ms = 3600000");
    let clock = Clock::system();
    let g = start_gateway(&toml, clock.clone()).await;
    let http = reqwest::Client::new();
    let token_url = format!("{}/api/v1/default/token", g.url());
    let (_, v) = api_get(&http, token_url.clone()).await;
    let first = v["access_token"].as_str().unwrap().to_owned();
    // Due for refresh, but WeChat is busy, failing, slow.
    clock.advance(7000);
    sb.platform.clock.advance(7000);
    for fault in [
        json!({"path": "*", "kind": "busy"}),
        json!({"path": "*", "kind": "status", "status": 502}),
        json!({"path": "*", "kind": "drop"}),
    ] {
        sb.platform.faults.lock().unwrap().clear();
        sb.platform
            .faults
            .lock()
            .unwrap()
            .add(serde_json::from_value(fault).unwrap());
        // Past the previous failure's backoff (at most 4 s after two failures) and the
        // failure the fleet remembers: each fault is met by a fetch.
        clock.advance(5);
        sb.platform.clock.advance(5);
        after_failure_backoff().await;
        g.state.ctx.credentials.refresh_due().await;
        let (status, v) = api_get(&http, token_url.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(
            v["access_token"],
            first.as_str(),
            "the unexpired token stays in service"
        );
        assert_eq!(sandbox_verdict(&sb, &first), 0);
    }
    // Expired and WeChat still busy: a clear 503 with the errcode.
    sb.platform.faults.lock().unwrap().clear();
    sb.platform
        .faults
        .lock()
        .unwrap()
        .add(serde_json::from_value(json!({"path": "*", "kind": "busy"})).unwrap());
    clock.advance(200);
    sb.platform.clock.advance(200);
    after_failure_backoff().await;
    let (status, v) = api_get(&http, token_url.clone()).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["errcode"], -1);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("system busy"),
        "{v}"
    );
    let ready = http
        .get(format!("{}/readyz", g.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    // WeChat recovers: so does the gateway, without a restart (once the failure it
    // remembers for the fleet has passed).
    sb.platform.faults.lock().unwrap().clear();
    after_failure_backoff().await;
    let (status, v) = api_get(&http, token_url).await;
    assert_eq!(status, 200);
    assert_ne!(v["access_token"], first.as_str());
    // The other account's token expired too; the refresher renews it.
    g.state.ctx.credentials.refresh_due().await;
    let ready = http
        .get(format!("{}/readyz", g.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn the_proxy_injects_the_token_and_recovers_from_an_invalidated_one() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let dir = TempDir::new("proxy");
    let g = start_gateway(
        &gateway_toml(&sb.base_url(), dir.path(), embedded(), "", ""),
        Clock::system(),
    )
    .await;
    let http = reqwest::Client::new();
    let (status, v) = api_get(
        &http,
        format!(
            "{}/api/v1/default/proxy/cgi-bin/user/get?next_openid=",
            g.url()
        ),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["total"], 2);
    assert_eq!(v["data"]["openid"][1], "oSandboxUser000000000000002");
    // A caller's own access_token in the query is replaced, never forwarded.
    let (status, v) = api_get(&http, format!("{}/api/v1/default/proxy/cgi-bin/user/info?openid=oSandboxUser000000000000001&access_token=forged", g.url())).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["openid"], "oSandboxUser000000000000001");
    let send = |text: &'static str| {
        let (http, url) = (
            http.clone(),
            format!(
                "{}/api/v1/default/proxy/cgi-bin/message/custom/send",
                g.url()
            ),
        );
        async move {
            api(&http, reqwest::Method::POST, url, Some(json!({"touser": "oSandboxUser000000000000001", "msgtype": "text", "text": {"content": text}}))).await
        }
    };
    let (status, v) = send("hello").await;
    assert_eq!((status, v["errcode"].as_i64()), (200, Some(0)));
    // The token is invalidated behind the gateway's back: the proxy recovers by itself.
    outside_force_refresh(&sb).await;
    let (status, v) = send("after invalidation").await;
    assert_eq!((status, v["errcode"].as_i64()), (200, Some(0)), "{v}");
    let sent = sb.platform.sent(Some(OA));
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].body["text"]["content"], "after invalidation");
    // WeChat's own errors come back unchanged.
    let (status, v) = api(
        &http,
        reqwest::Method::POST,
        format!(
            "{}/api/v1/default/proxy/cgi-bin/message/custom/send",
            g.url()
        ),
        Some(json!({"touser": "nobody", "msgtype": "text", "text": {"content": "x"}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["errcode"], 40003);
    // A `..` segment is refused (sent raw: URL libraries normalise it away).
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(g.addr).await.unwrap();
    let raw = format!("GET /api/v1/default/proxy/cgi-bin/../admin/calls HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\nConnection: close\r\n\r\n");
    tcp.write_all(raw.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
}

#[tokio::test]
async fn the_api_needs_a_key_for_the_account() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let dir = TempDir::new("auth");
    let g = start_gateway(
        &gateway_toml(&sb.base_url(), dir.path(), embedded(), "", ""),
        Clock::system(),
    )
    .await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/default/token", g.url());
    let before = sandbox_calls(&sb, "/cgi-bin/stable_token", OA);
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(&url)
        .bearer_auth("wrong-key-0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(&url)
        .header("authorization", format!("Basic {API_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(&url)
        .bearer_auth("mini-only-key-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .get(format!("{}/api/v1/mini/token", g.url()))
        .bearer_auth("mini-only-key-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(format!("{}/api/v1/nope/token", g.url()))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .get(format!("{}/api/v1/default/ticket/other", g.url()))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .post(format!("{}/api/v1/default/token/refresh", g.url()))
        .bearer_auth(API_KEY)
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Refused calls changed nothing upstream (the background refresher may have fetched once).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(sandbox_calls(&sb, "/cgi-bin/stable_token", OA) <= before + 1);
}

/// The sandbox's example with `n` more Official Accounts (`wxmany0000000000`, ...), and
/// the gateway's `[accounts.a0]`... sections for them.
fn many_accounts(n: usize) -> (SandboxConfig, String) {
    let mut config = SandboxConfig::example();
    let template = config.apps[0].clone();
    let mut accounts = String::new();
    for i in 0..n {
        let mut app = template.clone();
        app.appid = format!("wxmany{i:010}");
        app.secret = format!("many-secret-{i:04}");
        accounts.push_str(&format!(
            "[accounts.a{i}]\nappid = \"{}\"\nsecret = \"{}\"\n",
            app.appid, app.secret
        ));
        config.apps.push(app);
    }
    (config, accounts)
}

/// A gateway on `sb` for `accounts`, its refresher stepped by hand, with `credentials`
/// lines added; failed fetches not remembered in real time (simulated time runs faster).
async fn stepped_gateway(
    sb: &Sandbox,
    dir: &TempDir,
    accounts: &str,
    credentials: &str,
) -> wxgate::gateway::Running {
    let toml = gateway_toml(&sb.base_url(), dir.path(), embedded(), "", accounts)
        .replace(
            "check_interval_ms = 100",
            &format!("check_interval_ms = 3600000\n{credentials}"),
        )
        .replace(
            &format!("failure_backoff_ms = {FAILURE_BACKOFF_MS}"),
            "failure_backoff_ms = 0",
        );
    start_gateway(&toml, Clock::system()).await
}

fn stable_calls(sb: &Sandbox) -> u64 {
    sb.platform
        .calls()
        .get("/cgi-bin/stable_token")
        .map_or(0, |c| c.total)
}

/// Many accounts: refreshed side by side (bounded), their refresh moments spread inside
/// the margin, and an account WeChat refuses backs off on its own without holding up
/// the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_accounts_refresh_side_by_side_spread_out_and_back_off_alone() {
    let (config, mut accounts) = many_accounts(40);
    // One account whose secret WeChat refuses.
    accounts
        .push_str("[accounts.broken]\nappid = \"wxmany0000000000\"\nsecret = \"not-its-secret\"\n");
    let sb = Sandbox::start_ephemeral(config).await.unwrap();
    // Every token fetch takes 200 ms.
    sb.platform.faults.lock().unwrap().add(
        serde_json::from_value(
            json!({"path": "/cgi-bin/stable_token", "kind": "latency", "ms": 200}),
        )
        .unwrap(),
    );
    let dir = TempDir::new("many");
    let g = stepped_gateway(&sb, &dir, &accounts, "max_backoff_secs = 20").await;
    let clock = g.state.ctx.clock.clone();
    let central = g.state.ctx.credentials.clone();
    // A cold start of 43 accounts: 16 at a time, so about 3 x 200 ms; one at a time it
    // was 43 x 200 ms (8.6 s).
    let started = std::time::Instant::now();
    central.refresh_due().await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "a cold refresh took {took:?}"
    );
    let mut moments = Vec::new();
    for i in 0..40 {
        let status = central.status(&format!("a{i}")).await.unwrap();
        moments.push(status[0].refresh_at.expect("refreshed"));
    }
    // Fetched in the same second, due across the margin's first half (140 s here).
    let (first, last) = (moments.iter().min().unwrap(), moments.iter().max().unwrap());
    assert!(
        last - first >= 60,
        "refresh moments not spread: {moments:?}"
    );
    let distinct: std::collections::HashSet<_> = moments.iter().collect();
    assert!(distinct.len() >= 20, "{moments:?}");
    // The broken account over two simulated minutes: retried after 2, 4, 8, 16, then at
    // most every 20 s, not on every round; the others are not held up.
    let tries = || sandbox_calls(&sb, "/cgi-bin/stable_token", "wxmany0000000000");
    let before = tries();
    for _ in 0..120 {
        clock.advance(1);
        sb.platform.clock.advance(1);
        central.refresh_due().await;
    }
    let retried = tries() - before;
    assert!(
        (4..=16).contains(&retried),
        "retried {retried} times in 120 s"
    );
    let ready = central.readiness();
    let failing: Vec<&String> = ready
        .iter()
        .filter(|(_, s)| s.is_err())
        .map(|(n, _)| n)
        .collect();
    assert_eq!(failing, ["broken"]);
}

/// A thousand accounts, WeChat answering in 50 ms: every token within 10 s of a cold
/// start on an empty store; then a simulated day in which no minute holds more than a
/// tenth of the day's refreshes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_accounts_are_ready_in_seconds_and_come_due_apart() {
    let (config, accounts) = many_accounts(1000);
    let sb = Sandbox::start_ephemeral(config).await.unwrap();
    sb.platform.faults.lock().unwrap().add(
        serde_json::from_value(
            json!({"path": "/cgi-bin/stable_token", "kind": "latency", "ms": 50}),
        )
        .unwrap(),
    );
    let dir = TempDir::new("thousand");
    let g = stepped_gateway(&sb, &dir, &accounts, "").await;
    let clock = g.state.ctx.clock.clone();
    let central = g.state.ctx.credentials.clone();
    let started = std::time::Instant::now();
    central.refresh_due().await;
    let took = started.elapsed();
    let missing = central
        .readiness()
        .iter()
        .filter(|(_, s)| s.is_err())
        .count();
    assert_eq!(missing, 0, "every account holds a token");
    assert!(took < Duration::from_secs(10), "ready after {took:?}");
    sb.platform.faults.lock().unwrap().clear();
    // The next simulated day, a minute at a time.
    let mut per_minute = Vec::new();
    for _ in 0..(24 * 60) {
        clock.advance(60);
        sb.platform.clock.advance(60);
        let before = stable_calls(&sb);
        central.refresh_due().await;
        per_minute.push(stable_calls(&sb) - before);
    }
    let total: u64 = per_minute.iter().sum();
    let busiest = per_minute.iter().max().unwrap();
    assert!(total >= 1000 * 11, "{total} refreshes in a day");
    assert!(
        *busiest * 10 <= total,
        "the busiest minute held {busiest} of {total} refreshes"
    );
    assert_eq!(
        central
            .readiness()
            .iter()
            .filter(|(_, s)| s.is_err())
            .count(),
        0
    );
}

/// One account whose WeChat hangs and one whose secret is refused, over a simulated
/// day: every other account's token stays usable, the two are reported failing,
/// `/readyz` stays 200, and the hanging one's retries are never further apart than the
/// backoff cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_and_a_refused_account_harm_no_other() {
    let (config, mut accounts) = many_accounts(30);
    accounts.push_str(
        "[accounts.refused]\nappid = \"wxmany0000000001\"\nsecret = \"not-its-secret\"\n",
    );
    let sb = Sandbox::start_ephemeral(config).await.unwrap();
    let dir = TempDir::new("hanging");
    let g = stepped_gateway(
        &sb,
        &dir,
        &accounts,
        "refresh_timeout_ms = 50\nmax_backoff_secs = 600",
    )
    .await;
    let clock = g.state.ctx.clock.clone();
    let central = g.state.ctx.credentials.clone();
    // a0's WeChat hangs from the start: a minute for every answer.
    sb.platform.faults.lock().unwrap().add(
        serde_json::from_value(json!({"path": "/cgi-bin/stable_token", "appid": "wxmany0000000000", "kind": "latency", "ms": 60000}))
            .unwrap(),
    );
    let hanging = || sandbox_calls(&sb, "/cgi-bin/stable_token", "wxmany0000000000");
    let mut attempts = Vec::new();
    for minute in 0..(24 * 60) {
        if minute > 0 {
            clock.advance(60);
            sb.platform.clock.advance(60);
        }
        let before = hanging();
        central.refresh_due().await;
        if hanging() > before {
            attempts.push(minute);
        }
        for (name, state) in central.readiness() {
            if name != "a0" && name != "refused" {
                assert!(
                    state.is_ok(),
                    "minute {minute}: {name} has no usable token: {state:?}"
                );
            }
        }
    }
    let gaps = attempts.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    assert!(attempts.len() >= 100, "retried {} times", attempts.len());
    assert!(
        gaps <= 11,
        "retries {gaps} minutes apart, past the 10-minute cap"
    );
    let http = reqwest::Client::new();
    let (status, ready) = api_get(&http, format!("{}/readyz", g.url())).await;
    assert_eq!(status, 200, "{ready}");
    let mut failing: Vec<String> = serde_json::from_value(ready["failing"].clone()).unwrap();
    failing.sort();
    assert_eq!(failing, ["a0", "refused"], "{ready}");
}
