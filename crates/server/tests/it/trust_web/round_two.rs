//! Trust, round two: defences that an attacker could aim at the users they protect, and
//! requests that cost more than they should. Each test repeats the attack over HTTP as
//! it was found, and shows the legitimate user still served.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wxgate::Clock;
use wxgate_sandbox::pusher::{push, MessageMode, PushOptions, PushTarget};
use wxgate_sandbox::{messages, Sandbox, SandboxConfig};

use super::{no_redirects, start_flow, AUTH_SECRET};
use crate::common::*;

const CLIENT_SECRET: &str = "compat-client-secret-0001";

/// Every request names its client in `x-forwarded-for`, believed from 127.0.0.1: the
/// tests play hundreds of addresses from one machine.
const BEHIND_PROXY: &str =
    "[server]\nclient_ip_header = \"x-forwarded-for\"\ntrusted_proxies = [\"127.0.0.1\"]\n";

fn compat_clients() -> String {
    format!(
        "[compat]\nenabled = true\n[[compat.clients]]\nname = \"backend\"\nsecret = \"{CLIENT_SECRET}\"\nappids = [\"{OA}\"]\n"
    )
}

async fn token_ask(http: &reqwest::Client, h: &Harness, secret: &str, from: &str) -> Value {
    http.get(h.url(&format!(
        "/cgi-bin/token?grant_type=client_credential&appid={OA}&secret={secret}"
    )))
    .header("x-forwarded-for", from)
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap()
}

// 1. A stranger cannot make the real SDK clients fail with 45011.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_sdk_clients_are_never_refused_while_strangers_send_wrong_secrets() {
    let h = Setup::new()
        .tag("r2-compat")
        .top(BEHIND_PROXY)
        .extra(&compat_clients())
        .start()
        .await;
    let http = reqwest::Client::new();
    // 40 workers of one service behind one address, restarting at once.
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (http, url) = (
            http.clone(),
            h.url(&format!(
                "/cgi-bin/token?grant_type=client_credential&appid={OA}&secret={CLIENT_SECRET}"
            )),
        );
        tasks.push(tokio::spawn(async move {
            http.get(url)
                .header("x-forwarded-for", "10.20.30.40")
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        let v = t.await.unwrap();
        assert!(v["access_token"].is_string(), "{v}");
    }
    // 400 addresses send wrong secrets for the public appid, interleaved with the valid
    // client's asks: every valid ask is answered.
    let mut valid = 0;
    for i in 0..400u32 {
        let stranger = format!("198.18.{}.{}", i / 250, i % 250 + 1);
        let wrong = token_ask(&http, &h, "not-the-secret", &stranger).await;
        assert_eq!(wrong["errcode"], 40001, "{wrong}");
        if i % 4 == 0 {
            let ok = token_ask(&http, &h, CLIENT_SECRET, "10.20.30.40").await;
            assert!(ok["access_token"].is_string(), "ask {i}: {ok}");
            valid += 1;
        }
    }
    assert_eq!(valid, 100);
    // One address guessing: past its failure budget it gets 45011, and the right secret
    // from that very address is still answered.
    let guesser = "203.0.113.66";
    let codes: Vec<i64> =
        futures_util::future::join_all((0..15).map(|_| token_ask(&http, &h, "guess", guesser)))
            .await
            .iter()
            .map(|v| v["errcode"].as_i64().unwrap())
            .collect();
    assert_eq!(
        codes.iter().filter(|c| **c == 40001).count(),
        10,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == 45011).count(),
        5,
        "{codes:?}"
    );
    let ok = token_ask(&http, &h, CLIENT_SECRET, guesser).await;
    assert!(ok["access_token"].is_string(), "{ok}");
    assert_eq!(
        sandbox_calls(&h.sb, "/cgi-bin/stable_token", OA),
        1,
        "answering from the central control cost one fetch in all"
    );
}

#[tokio::test]
async fn a_duplicated_token_parameter_gets_wechats_json_error() {
    let h = Setup::new()
        .tag("r2-dup")
        .extra(&compat_clients())
        .start()
        .await;
    let r = reqwest::get(h.url(&format!(
        "/cgi-bin/token?grant_type=client_credential&appid={OA}&appid={OA}&secret={CLIENT_SECRET}"
    )))
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errcode"], 40097, "{v}");
}

#[tokio::test]
async fn clear_quota_through_the_compatible_api_needs_a_client_allowed_it() {
    let allowed = format!(
        "{}[[compat.clients]]\nname = \"ops\"\nsecret = \"ops-client-secret-000001\"\nappids = [\"{OA}\"]\nallow_ips = [\"10.9.9.9\"]\nallow_clear_quota = true\n",
        compat_clients()
    );
    let h = Setup::new()
        .tag("r2-clear")
        .top(BEHIND_PROXY)
        .extra(&allowed)
        .start()
        .await;
    let http = reqwest::Client::new();
    let token = token_ask(&http, &h, CLIENT_SECRET, "10.1.1.1").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let clear = |from: &'static str| {
        http.post(h.url(&format!("/cgi-bin/clear_quota?access_token={token}")))
            .header("x-forwarded-for", from)
            .json(&json!({ "appid": OA }))
            .send()
    };
    let refused: Value = clear("10.1.1.1").await.unwrap().json().await.unwrap();
    assert_eq!(refused["errcode"], 48001, "{refused}");
    assert_eq!(sandbox_calls(&h.sb, "/cgi-bin/clear_quota", OA), 0);
    let done: Value = clear("10.9.9.9").await.unwrap().json().await.unwrap();
    assert_eq!(done["errcode"], 0, "{done}");
    assert_eq!(sandbox_calls(&h.sb, "/cgi-bin/clear_quota", OA), 1);
}

// 1. Anonymous routes are charged only once well-formed, and per family.

#[tokio::test]
async fn malformed_logins_cost_nothing_and_mini_program_floods_do_not_starve_oauth() {
    let limits = format!(
        "[rate_limit]\nper_client_per_minute = 5\nper_client_burst = 5\nper_account_per_minute = 8\nper_account_burst = 8\n\n{BEHIND_PROXY}"
    );
    let h = Setup::new()
        .tag("r2-family")
        .top(&limits)
        .extra(&format!("[auth]\nsecret = \"{AUTH_SECRET}\"\n"))
        .start()
        .await;
    let http = no_redirects();
    let login = |from: String, body: Value| {
        http.post(h.url("/wx/mini/mp/login"))
            .header("x-forwarded-for", from)
            .json(&body)
            .send()
    };
    // 150 addresses send empty or malformed logins: 400 each, nothing charged.
    for i in 0..150u32 {
        let body = match i % 3 {
            0 => json!({}),
            1 => json!({ "code": "" }),
            _ => json!({ "code": "x".repeat(10_000) }),
        };
        let r = login(format!("198.19.0.{}", i % 250 + 1), body)
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    }
    assert_eq!(sandbox_calls(&h.sb, "/sns/jscode2session", MINI), 0);
    // The account's Mini Program budget is spent by well-formed bogus codes...
    let mut statuses = Vec::new();
    for i in 0..12u32 {
        let r = login(format!("198.19.1.{i}"), json!({ "code": "bogus-code" }))
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(sandbox_calls(&h.sb, "/sns/jscode2session", MINI), 8);
    // ...and the OAuth callback of the same gateway is not starved.
    let dest = format!("{}/demo/oauth.html", h.gw.url());
    let (binding, callback) = start_flow(&http, &h.gw.url(), &dest).await;
    let r = http
        .get(&callback)
        .header("cookie", binding)
        .header("x-forwarded-for", "198.19.2.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "the login completes");
    assert_eq!(sandbox_calls(&h.sb, "/sns/oauth2/access_token", OA), 1);
}

#[tokio::test]
async fn check_text_takes_only_wechats_four_scenes() {
    let h = Setup::new().tag("r2-scene").start().await;
    let http = reqwest::Client::new();
    let code =
        h.sb.platform
            .issue_js_code(MINI, "oMiniUser00000000000000001")
            .unwrap();
    let v: Value = http
        .post(h.url("/wx/mini/mp/login"))
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = v["data"]["session"].as_str().unwrap().to_owned();
    for scene in [
        json!("2"),
        json!(2.5),
        json!(0),
        json!(5),
        json!(-1),
        json!(null),
    ] {
        let r = http
            .post(h.url("/wx/mini/mp/check/text"))
            .header("x-wxgate-session", &session)
            .json(&json!({ "content": "hello", "scene": scene }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "scene {scene}");
    }
    let r = http
        .post(h.url("/wx/mini/mp/check/text"))
        .header("x-wxgate-session", &session)
        .json(&json!({ "content": "hello", "scene": 3 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sandbox_calls(&h.sb, "/wxa/msg_sec_check", MINI), 1);
}

// 2. The console's admin is not locked out by anyone.

async fn console_login(http: &reqwest::Client, h: &Harness, key: &str, from: &str) -> u16 {
    http.post(h.url("/console/login"))
        .header("x-forwarded-for", from)
        .json(&json!({ "key": key }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

const CONSOLE_KEY: &str = "console-admin-key-0123456789";

#[tokio::test]
async fn wrong_console_logins_cannot_lock_the_admin_out() {
    let h = Setup::new()
        .tag("r2-console")
        .top(BEHIND_PROXY)
        .extra(&format!(
            "[console]\nenabled = true\nadmin_key = \"{CONSOLE_KEY}\"\n"
        ))
        .start()
        .await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(console_login(&http, &h, "wrong-key-0123456789", "203.0.113.9").await);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        20,
        "{statuses:?}"
    );
    // The right key logs in, from the attacker's own address too.
    assert_eq!(
        console_login(&http, &h, CONSOLE_KEY, "203.0.113.9").await,
        200
    );
    assert_eq!(
        console_login(&http, &h, CONSOLE_KEY, "192.0.2.1").await,
        200
    );
    // Another address is throttled on its own failures only.
    assert_eq!(
        console_login(&http, &h, "wrong-key-0123456789", "192.0.2.1").await,
        401
    );
}

// 8. A logout ends the session for the whole fleet.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_logout_ends_the_session_on_every_instance() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let redis = RedisServer::start();
    let dirs = [TempDir::new("r2-logout-a"), TempDir::new("r2-logout-b")];
    let console = format!("[console]\nenabled = true\nadmin_key = \"{CONSOLE_KEY}\"\n");
    let mut fleet = Vec::new();
    for d in &dirs {
        let toml = gateway_toml(
            &sb.base_url(),
            d.path(),
            &redis_store(&redis.url()),
            "",
            &console,
        );
        fleet.push(start_gateway(&toml, Clock::system()).await);
    }
    let http = reqwest::Client::new();
    let cookie = console_cookie(&http, &fleet[0].url(), CONSOLE_KEY).await;
    let overview = |i: usize| {
        http.get(format!("{}/console/api/overview", fleet[i].url()))
            .header("cookie", &cookie)
            .send()
    };
    assert_eq!(overview(0).await.unwrap().status(), 200);
    assert_eq!(overview(1).await.unwrap().status(), 200);
    let r = http
        .post(format!("{}/console/logout", fleet[0].url()))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The copied cookie is dead on both instances.
    assert_eq!(overview(0).await.unwrap().status(), 401);
    assert_eq!(overview(1).await.unwrap().status(), 401);
}

// 3. Nobody with an API key burns the central token.

/// A WeChat stand-in that answers 40001 on one path (an error about some other token)
/// while the app's token is alive, and counts what it is asked.
async fn upstream_with_a_foreign_40001() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>)
{
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let log = log.clone();
        async move {
            let path = req.uri().path().to_owned();
            log.lock().unwrap().push(path.clone());
            axum::Json(match path.as_str() {
                "/cgi-bin/stable_token" => json!({"access_token": "LIVE-TOKEN", "expires_in": 7200}),
                "/cgi-bin/foreign/token/user" => {
                    json!({"errcode": 40001, "errmsg": "invalid credential: the user token in the body"})
                }
                _ => json!({"errcode": 0, "errmsg": "ok", "ip_list": []}),
            })
        }
    });
    (serve_stand_in(app).await, seen)
}

#[tokio::test]
async fn a_token_error_about_another_token_does_not_refresh_the_central_one() {
    let (upstream, seen) = upstream_with_a_foreign_40001().await;
    let h = Setup::new()
        .tag("r2-foreign")
        .upstream(&upstream)
        .start()
        .await;
    let http = reqwest::Client::new();
    let count = |p: &str| seen.lock().unwrap().iter().filter(|s| *s == p).count();
    let (_, v) = api_get(&http, h.url("/api/v1/default/token")).await;
    assert_eq!(v["access_token"], "LIVE-TOKEN");
    // Both accounts' tokens held (the refresher fetches the Mini Program's too).
    let (_, v) = api_get(&http, h.url("/api/v1/mini/token")).await;
    assert_eq!(v["access_token"], "LIVE-TOKEN");
    let fetches = count("/cgi-bin/stable_token");
    for _ in 0..22 {
        let (status, v) = api_get(
            &http,
            h.url("/api/v1/default/proxy/cgi-bin/foreign/token/user"),
        )
        .await;
        assert_eq!(
            (status, &v["errcode"]),
            (200, &json!(40001)),
            "WeChat's answer as it came: {v}"
        );
    }
    assert_eq!(
        count("/cgi-bin/stable_token"),
        fetches,
        "no refresh, no forced refresh"
    );
    let checks = count("/cgi-bin/get_api_domain_ip");
    assert!(
        (1..=5).contains(&checks),
        "22 foreign token errors cost at most the burst of liveness checks: {checks}"
    );
    // `/sns/*` takes a user's token: refused, never sent with the app's.
    let (status, v) = api_get(
        &http,
        h.url("/api/v1/default/proxy/sns/userinfo?access_token=USER&openid=o1"),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(count("/sns/userinfo"), 0);
    // A proxied path with an encoded slash inside a segment is refused as README says.
    let (status, _) = api_get(&http, h.url("/api/v1/default/proxy/cgi-bin%2Fuser/get")).await;
    assert_eq!(status, 400);
    assert_eq!(count("/cgi-bin/user/get"), 0);
}

// 6. A failed fetch is remembered for the fleet.

#[tokio::test]
async fn while_wechat_fails_anonymous_configs_do_not_each_call_it() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    sb.platform
        .faults
        .lock()
        .unwrap()
        .add(serde_json::from_value(json!({"path": "*", "kind": "busy"})).unwrap());
    let dir = TempDir::new("r2-backoff");
    let toml = gateway_toml(&sb.base_url(), dir.path(), embedded(), "", "").replace(
        &format!("failure_backoff_ms = {FAILURE_BACKOFF_MS}"),
        "failure_backoff_ms = 60000",
    );
    let g = start_gateway(&toml, Clock::system()).await;
    let http = reqwest::Client::new();
    for _ in 0..60 {
        let r = http
            .get(format!(
                "{}/wx/config?url=http%3A%2F%2F127.0.0.1%2Fp",
                g.url()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
    }
    // Every call that reached the sandbox, faulted or not.
    let calls: u64 = sb.platform.calls().values().map(|c| c.total).sum();
    // The refresher's first fetch of each account (3 tries each with retries = 2);
    // then nothing until the backoff ends.
    assert!(
        calls <= 6,
        "60 requests while WeChat fails cost {calls} upstream calls"
    );
}

// 7. One account's pushes cannot refuse another's.

#[tokio::test]
async fn a_noisy_account_leaves_the_others_room_for_their_pushes() {
    let accounts = plaintext_account("noisy", "") + &plaintext_account("quiet", "");
    // 4 accounts share 16: each keeps 2, the other 8 are a pool.
    let h = Setup::new()
        .tag("r2-share")
        .top("[service]\nmax_remembered_pushes = 16\n")
        .extra(&accounts)
        .start()
        .await;
    let mut noisy = Vec::new();
    for i in 0..30 {
        noisy.push(push_text(&h, "noisy", 500 + i, "hi").await.0);
    }
    assert_eq!(noisy.iter().filter(|s| **s == 200).count(), 10, "{noisy:?}");
    assert_eq!(noisy.iter().filter(|s| **s == 503).count(), 20, "{noisy:?}");
    // The quiet account's pushes still pass, up to its reserve.
    assert_eq!(push_text(&h, "quiet", 1000, "hi").await.0, 200);
    assert_eq!(push_text(&h, "quiet", 1001, "hi").await.0, 200);
}

// 4. One host cannot take every connection.

/// Opens `n` idle connections to `port` from `from` (a loopback address of its own).
async fn idle_sockets(from: &str, port: u16, n: usize) -> Vec<tokio::net::TcpStream> {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut held = Vec::new();
    for _ in 0..n {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(format!("{from}:0").parse().unwrap()).unwrap();
        if let Ok(c) = s.connect(addr).await {
            held.push(c);
        }
    }
    held
}

/// Five safe-mode pushes and health checks from 127.0.0.1, each answered within WeChat's
/// 5 s.
async fn pushes_answered_in_time(h: &Harness) {
    let target = PushTarget {
        url: h.url("/wx/service"),
        token: "sandboxtoken".into(),
        appid: OA.into(),
        encoding_aes_key: Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into()),
        mode: MessageMode::Safe,
        format: Default::default(),
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for i in 0..5u64 {
        let started = Instant::now();
        let msg = messages::sample(
            "text",
            "gh_sandbox00001",
            "oUser0001",
            now(),
            900 + i,
            Some("hi"),
        )
        .unwrap();
        let out = push(&http, &target, &msg, &PushOptions::default())
            .await
            .unwrap();
        assert_eq!(out.status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let r = http.get(h.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
}

const SMALL_CAP: &str = "[server]\nmax_connections = 64\nheader_read_timeout_ms = 60000\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_holding_every_connection_does_not_stop_wechats_pushes() {
    let h = Setup::new().tag("r2-conns").top(SMALL_CAP).start().await;
    // A host (127.0.0.2) opens 64 + 200 idle sockets, more than the cap and a backlog.
    let held = idle_sockets("127.0.0.2", h.port, 264).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    pushes_answered_in_time(&h).await;
    let metrics = metrics_text(&h.gw.url()).await;
    assert!(
        metrics.contains("wxgate_connections_refused_total{why=\"client_share\"}"),
        "{metrics}"
    );
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_hosts_holding_every_connection_do_not_stop_wechats_pushes() {
    let h = Setup::new().tag("r2-conns8").top(SMALL_CAP).start().await;
    let mut held = Vec::new();
    for host in 2..10 {
        held.extend(idle_sockets(&format!("127.0.0.{host}"), h.port, 40).await);
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    pushes_answered_in_time(&h).await;
    let metrics = metrics_text(&h.gw.url()).await;
    assert!(
        metrics.contains("wxgate_connections_evicted_total"),
        "idle sockets were closed for the pushes: {metrics}"
    );
    drop(held);
}

// 9. Smaller ones.

#[tokio::test]
async fn metrics_and_readiness_can_be_kept_to_the_operators() {
    let h = Setup::new()
        .tag("r2-ops")
        .top(&format!("{BEHIND_PROXY}ops_allow = [\"10.0.0.0/8\"]\n"))
        .start()
        .await;
    let http = reqwest::Client::new();
    for path in ["/metrics", "/readyz"] {
        let from = |ip: &str| {
            http.get(h.url(path))
                .header("x-forwarded-for", ip.to_owned())
                .send()
        };
        assert_eq!(from("203.0.113.5").await.unwrap().status(), 403, "{path}");
        assert_ne!(from("10.1.2.3").await.unwrap().status(), 403, "{path}");
    }
    let r = http
        .get(h.url("/healthz"))
        .header("x-forwarded-for", "203.0.113.5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "liveness stays open");
}

/// One plaintext push of a text to `account`: the gateway's status and answer.
async fn push_text(h: &Harness, account: &str, id: u64, content: &str) -> (u16, String) {
    let msg = messages::sample(
        "text",
        "gh_sandbox00001",
        "oUser0001",
        now(),
        id,
        Some(content),
    )
    .unwrap();
    let target = plaintext_target(h, account);
    let out = push(
        &reqwest::Client::new(),
        &target,
        &msg,
        &PushOptions::default(),
    )
    .await
    .unwrap();
    (out.status, out.body)
}

#[tokio::test]
async fn a_rule_reply_with_control_characters_is_still_xml() {
    let rules = "[[accounts.clear.rules]]\nkeyword = \"hello\"\nreply = { type = \"text\", content = \"hi\\u0000there\\u001b[31m\\uFFFF!\" }\n";
    let h = Setup::new()
        .tag("r2-ctl")
        .extra(&plaintext_account("clear", rules))
        .start()
        .await;
    let (status, body) = push_text(&h, "clear", 4242, "hello").await;
    assert_eq!(status, 200);
    let doc = wxgate_proto::xml::parse(&body, 65536).expect("the reply is XML");
    assert_eq!(doc.fields.text("Content"), Some("hithere[31m!"));
}

#[tokio::test]
async fn a_webhook_answer_over_the_limit_is_refused() {
    // A webhook that answers a megabyte.
    let hook = serve_stand_in(axum::Router::new().fallback(|| async {
        axum::Json(json!({ "type": "text", "content": "x".repeat(1 << 20) }))
    }))
    .await;
    let webhook = format!(
        "[accounts.clear.webhook]\nurl = \"{hook}/hook\"\nsecret = \"hook-secret-0123456789\"\nlate_reply = false\n"
    );
    let h = Setup::new()
        .tag("r2-hook")
        .extra(&plaintext_account("clear", &webhook))
        .start()
        .await;
    let (status, body) = push_text(&h, "clear", 4343, "hi").await;
    assert_eq!((status, body.as_str()), (200, "success"));
    let metrics = metrics_text(&h.gw.url()).await;
    assert!(
        metrics.contains("wxgate_webhook_total{account=\"clear\",outcome=\"failed\"} 1"),
        "{metrics}"
    );
}

// 5. Refusals are counted and sampled; noise cannot push a real problem out of the list.

#[tokio::test]
async fn a_flood_of_refused_requests_is_one_problem_with_a_count() {
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let _ = tracing_subscriber::registry()
            .with(wxgate::console::problems::Layer)
            .try_init();
    }
    let h = Setup::new()
        .tag("r2-problems")
        .extra(&format!(
            "[auth]\nsecret = \"{AUTH_SECRET}\"\n[console]\nenabled = true\nadmin_key = \"{CONSOLE_KEY}\"\n"
        ))
        .start()
        .await;
    // A real problem first: WeChat refuses the jsapi ticket.
    h.sb.platform.faults.lock().unwrap().add(
        serde_json::from_value(
            json!({"path": "/cgi-bin/ticket/getticket", "kind": "busy", "count": 3}),
        )
        .unwrap(),
    );
    let http = reqwest::Client::new();
    let r = http
        .get(h.url("/wx/config?url=http%3A%2F%2F127.0.0.1%2Fp"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    // Then 300 anonymous refused OAuth starts (a dest on no allowed host).
    for _ in 0..300 {
        let r = http
            .get(h.url("/wx/auth?dest=https%3A%2F%2Fevil.example%2F"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    }
    let metrics = metrics_text(&h.gw.url()).await;
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("wxgate_auth_refused_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(refused >= 300, "every refusal counted: {refused}");
    let cookie = console_cookie(&http, &h.gw.url(), CONSOLE_KEY).await;
    let problems: Value = http
        .get(h.url("/console/api/problems"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = problems["problems"].as_array().unwrap();
    let auth: Vec<&Value> = list
        .iter()
        .filter(|p| p["message"] == "auth request refused")
        .collect();
    assert_eq!(auth.len(), 1, "{problems}");
    assert!(auth[0]["count"].as_u64().unwrap() >= 300, "{problems}");
    assert!(
        list.iter()
            .any(|p| p["message"] == "fetch failed" && p["fields"].to_string().contains("default")),
        "the real problem is still listed: {problems}"
    );
}
