//! Failure, as integration tests: Redis dies under load, WeChat is unreachable for longer
//! than a token lives, and a fleet of three runs a simulated day of mixed traffic.

use crate::common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use wxgate::Clock;
use wxgate_sandbox::pusher::{push, MessageMode, PushOptions, PushTarget};
use wxgate_sandbox::{messages, Sandbox, SandboxConfig};

fn quiet(toml: String) -> String {
    toml.replace("check_interval_ms = 100", "check_interval_ms = 3600000")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_under_load_and_restarted() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let mut redis = RedisServer::start();
    let dir = TempDir::new("redis-dies");
    let g = start_gateway(
        &gateway_toml(
            &sb.base_url(),
            dir.path(),
            &redis_store(&redis.url()),
            "",
            "",
        ),
        Clock::system(),
    )
    .await;
    let http = reqwest::Client::new();
    let token_url = format!("{}/api/v1/default/token", g.url());
    let config_url = format!(
        "{}/wx/config?url={}",
        g.url(),
        "http%3A%2F%2F127.0.0.1%3A18340%2Fpage"
    );
    let (status, warm) = api_get(&http, token_url.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(
        api_get(&http, config_url.clone()).await.0,
        200,
        "ticket warm"
    );
    let token = warm["access_token"].as_str().unwrap().to_owned();

    // Load: bounded, loopback, until told to stop.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (http, stop, token_url, config_url) = (
            http.clone(),
            stop.clone(),
            token_url.clone(),
            config_url.clone(),
        );
        load.push(tokio::spawn(async move {
            let (mut ok, mut failed, mut n) = (0u64, 0u64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && n < 20_000 {
                n += 1;
                let url = if n % 2 == 0 { &token_url } else { &config_url };
                match http
                    .get(url)
                    .bearer_auth(API_KEY)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                {
                    Ok(200) => ok += 1,
                    _ => failed += 1,
                }
            }
            (ok, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ready = http
        .get(format!("{}/readyz", g.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let v: Value = ready.json().await.unwrap();
    assert_eq!(v["store"]["ok"], false, "{v}");
    assert_eq!(v["store"]["kind"], "redis");
    let (status, v) = api_get(&http, token_url.clone()).await;
    assert_eq!(
        (status, v["access_token"].as_str()),
        (200, Some(token.as_str())),
        "answered from memory"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = http
            .get(format!("{}/readyz", g.url()))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "readyz never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (mut ok, mut failed) = (0, 0);
    for l in load {
        let (o, f) = l.await.unwrap();
        ok += o;
        failed += f;
    }
    assert!(ok > 100, "the load ran: {ok}");
    assert_eq!(
        failed, 0,
        "every request was answered while Redis was down and after ({ok} ok)"
    );
    // The store works again: a forced refresh goes through it.
    let r = http
        .post(format!("{}/api/v1/default/token/refresh", g.url()))
        .bearer_auth(API_KEY)
        .json(&json!({"stale": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sandbox_calls(&sb, "/cgi-bin/ticket/getticket", OA), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechat_unreachable_longer_than_a_token_lives() {
    let mut sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let addr = sb.addr;
    let dir = TempDir::new("unreachable");
    let clock = Clock::system();
    let g = start_gateway(
        &quiet(gateway_toml(&sb.base_url(), dir.path(), embedded(), "", "")),
        clock.clone(),
    )
    .await;
    let http = reqwest::Client::new();
    let token_url = format!("{}/api/v1/default/token", g.url());
    let (status, first) = api_get(&http, token_url.clone()).await;
    assert_eq!(status, 200);
    // WeChat goes away; tokens are served until they expire.
    sb.stop();
    drop(sb);
    tokio::time::sleep(Duration::from_millis(200)).await;
    clock.advance(7000);
    g.state.ctx.credentials.refresh_due().await;
    let (status, v) = api_get(&http, token_url.clone()).await;
    assert_eq!(
        (status, v["access_token"].clone()),
        (200, first["access_token"].clone())
    );
    clock.advance(300);
    let (status, v) = api_get(&http, token_url.clone()).await;
    assert_eq!(status, 503, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("/cgi-bin/stable_token"),
        "the message names what failed: {msg}"
    );
    let r = http
        .get(format!(
            "{}/wx/config?url=http%3A%2F%2F127.0.0.1%2Fp",
            g.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().await.unwrap()["state"]["code"], 5000000);
    // WeChat is back but busy: the errcode comes through (once the failure remembered
    // for the fleet has passed).
    after_failure_backoff().await;
    let mut config = SandboxConfig::example();
    config.listen = addr.to_string();
    let sb = Sandbox::start(config).await.unwrap();
    sb.platform
        .faults
        .lock()
        .unwrap()
        .add(serde_json::from_value(json!({"path": "*", "kind": "busy", "count": 3})).unwrap());
    let (status, v) = api_get(&http, token_url.clone()).await;
    assert_eq!(
        (status, v["error"]["errcode"].as_i64()),
        (503, Some(-1)),
        "{v}"
    );
    // Recovered, without a restart.
    after_failure_backoff().await;
    let (status, v) = api_get(&http, token_url).await;
    assert_eq!(status, 200, "{v}");
    assert!(sb
        .platform
        .check_token(v["access_token"].as_str().unwrap())
        .is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fleet_of_three_for_a_simulated_day() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let redis = RedisServer::start();
    let clock = Clock::system();
    let rules = "[[accounts.default.rules]]\nkeyword = \"hello\"\nreply = { type = \"text\", content = \"hi\" }\n";
    let dirs: Vec<TempDir> = (0..3)
        .map(|i| TempDir::new(&format!("fleet-day-{i}")))
        .collect();
    let mut fleet = Vec::new();
    for d in &dirs {
        let toml = quiet(gateway_toml(
            &sb.base_url(),
            d.path(),
            &redis_store(&redis.url()),
            "",
            rules,
        ));
        fleet.push(start_gateway(&toml, clock.clone()).await);
    }
    let http = reqwest::Client::new();
    let pusher = reqwest::Client::new();
    let (mut requests, mut tokens, mut tickets) = (0u64, HashSet::new(), HashSet::new());
    for minute in 0..(24 * 60) {
        if minute > 0 {
            clock.advance(60);
            sb.platform.clock.advance(60);
        }
        let (a, b, c) = (&fleet[0], &fleet[1], &fleet[2]);
        tokio::join!(
            a.state.ctx.credentials.refresh_due(),
            b.state.ctx.credentials.refresh_due(),
            c.state.ctx.credentials.refresh_due()
        );
        let g = &fleet[minute % 3];
        let h = &fleet[(minute + 1) % 3];
        let page = "http%3A%2F%2F127.0.0.1%3A18340%2Fday.html";
        let msg = messages::sample(
            "text",
            "gh_sandbox00001",
            "oSandboxUser000000000000001",
            clock.now(),
            minute as u64 + 1,
            Some("hello"),
        )
        .unwrap();
        let target = PushTarget {
            url: format!("{}/wx/service", h.url()),
            token: "sandboxtoken".into(),
            appid: OA.into(),
            encoding_aes_key: Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into()),
            mode: MessageMode::Safe,
            format: Default::default(),
        };
        let opts = PushOptions {
            timestamp: Some(clock.now()),
            nonce: None,
        };
        let (tok, tic, cfg, proxied, pushed) = tokio::join!(
            api_get(&http, format!("{}/api/v1/default/token", g.url())),
            api_get(&http, format!("{}/api/v1/default/ticket/jsapi", h.url())),
            http.get(format!("{}/wx/config?url={page}", g.url())).send(),
            api_get(
                &http,
                format!("{}/api/v1/default/proxy/cgi-bin/user/get", h.url())
            ),
            push(&pusher, &target, &msg, &opts),
        );
        requests += 5;
        assert_eq!(tok.0, 200, "minute {minute}: {}", tok.1);
        assert_eq!(tic.0, 200, "minute {minute}: {}", tic.1);
        assert_eq!(cfg.unwrap().status(), 200, "minute {minute}");
        assert_eq!(
            (proxied.0, proxied.1["total"].as_u64()),
            (200, Some(2)),
            "minute {minute}: {}",
            proxied.1
        );
        let pushed = pushed.unwrap();
        assert_eq!(
            pushed
                .reply
                .as_ref()
                .and_then(|r| r.text("Content").map(str::to_owned))
                .as_deref(),
            Some("hi"),
            "minute {minute}"
        );
        let token = tok.1["access_token"].as_str().unwrap().to_owned();
        assert!(
            sb.platform.check_token(&token).is_ok(),
            "minute {minute}: an expired or invalid token was served"
        );
        let ticket = tic.1["ticket"].as_str().unwrap().to_owned();
        assert!(
            sb.platform.valid_tickets(OA, "jsapi").contains(&ticket),
            "minute {minute}: an expired ticket was served"
        );
        tokens.insert(token);
        tickets.insert(ticket);
    }
    let token_fetches = sandbox_calls(&sb, "/cgi-bin/stable_token", OA);
    let ticket_fetches = sandbox_calls(&sb, "/cgi-bin/ticket/getticket", OA);
    // A stable token lives 7200 s and is refreshed 280 s ahead: 13 windows in a day.
    assert_eq!(
        token_fetches, 13,
        "one fetch per refresh window across the fleet"
    );
    assert_eq!(tokens.len() as u64, token_fetches);
    assert_eq!(ticket_fetches, 13);
    assert_eq!(tickets.len() as u64, ticket_fetches);
    println!("{requests} requests over a simulated day: {token_fetches} token fetches, {ticket_fetches} ticket fetches, 0 errors");
}

/// With the store unreachable and no valid token in memory, a refresh waits for the
/// store (and then fails) instead of fetching without the fleet's lock: every instance
/// would fetch, and each new access_token cuts the others' short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_waits_for_the_store_instead_of_fetching_without_the_lock() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let mut redis = RedisServer::start();
    let dir = TempDir::new("refresh-waits");
    let clock = Clock::system();
    let toml = quiet(gateway_toml(
        &sb.base_url(),
        dir.path(),
        &redis_store(&redis.url()),
        "",
        "",
    ))
    .replace("wait_timeout_ms = 10000", "wait_timeout_ms = 1500");
    let g = start_gateway(&toml, clock.clone()).await;
    let http = reqwest::Client::new();
    let token_url = format!("{}/api/v1/default/token", g.url());
    assert_eq!(api_get(&http, token_url.clone()).await.0, 200);
    let fetches = || sandbox_calls(&sb, "/cgi-bin/stable_token", OA);
    assert_eq!(fetches(), 1);

    redis.kill();
    // The token in memory expires (by the gateway's clock) while the store is down.
    clock.advance(7200);
    let started = Instant::now();
    let (status, v) = api_get(&http, token_url.clone()).await;
    assert_eq!(status, 503, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("store"),
        "says why: {v}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "it waited"
    );
    assert_eq!(fetches(), 1, "no fetch without the fleet's lock");
    let (status, v) = api_get(&http, format!("{}/readyz", g.url())).await;
    assert_eq!(status, 503);
    assert!(
        v["store"]["state"]
            .as_str()
            .unwrap()
            .starts_with("unavailable"),
        "{v}"
    );

    // The store is back: the next request refreshes, once, under the lock.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, v) = api_get(&http, token_url.clone()).await;
        if status == 200 {
            assert!(sb
                .platform
                .check_token(v["access_token"].as_str().unwrap())
                .is_ok());
            break;
        }
        assert!(Instant::now() < deadline, "never recovered: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(fetches(), 2);
    // (Not ready as a whole: the Mini Program's token expired too, and nothing asked.)
    let (_, v) = api_get(&http, format!("{}/readyz", g.url())).await;
    assert_eq!(
        (&v["store"]["ok"], &v["store"]["state"]),
        (&json!(true), &json!("recovered")),
        "{v}"
    );
}
