//! The operator console over HTTP, as an attacker and as an operator meet it: off unless
//! enabled; every data route 401 without a session, with a forged or expired cookie, or
//! after a change of admin key; a guessed key throttled; changes only with the CSRF
//! token; nothing secret in any answer; the rings bounded under a flood of pushes; the
//! warnings with their request ids.

use crate::common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use wxgate::Clock;
use wxgate_sandbox::pusher::{push, MessageMode, PushOptions, PushTarget};
use wxgate_sandbox::{messages, Sandbox, SandboxConfig};

const KEY: &str = "console-admin-key-0123456789";

const DATA: &[&str] = &[
    "/console/api/overview",
    "/console/api/traffic",
    "/console/api/problems",
];

fn console_toml(key: &str) -> String {
    format!("[console]\nenabled = true\nadmin_key = \"{key}\"\nheartbeat_secs = 1\n")
}

async fn gateway(sb: &Sandbox, dir: &TempDir, extra: &str) -> wxgate::gateway::Running {
    let toml = gateway_toml(&sb.base_url(), dir.path(), embedded(), "", extra);
    start_gateway(&toml, Clock::system()).await
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(g: &wxgate::gateway::Running) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: g.url(),
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> (u16, String) {
        let mut r = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            r = r.header("Cookie", format!("wxgate_console={c}"));
        }
        let r = r.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn post(
        &self,
        path: &str,
        cookie: Option<&str>,
        csrf: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let mut r = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(c) = cookie {
            r = r.header("Cookie", format!("wxgate_console={c}"));
        }
        if let Some(t) = csrf {
            r = r.header("X-Wxgate-Csrf", t);
        }
        let r = r.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Logs in; the cookie's value and its Set-Cookie line.
    async fn login(&self, key: &str) -> (u16, Option<(String, String)>) {
        let r = self
            .http
            .post(format!("{}/console/login", self.base))
            .json(&json!({ "key": key }))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let set = r
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned());
        let cookie = set.map(|line| {
            let value = line
                .split(';')
                .next()
                .unwrap()
                .strip_prefix("wxgate_console=")
                .unwrap()
                .to_owned();
            (value, line)
        });
        (status, cookie)
    }
}

/// The warnings layer, as `wxgate serve` installs it (once a process).
fn problems_layer() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let _ = tracing_subscriber::registry()
        .with(wxgate::console::problems::Layer)
        .try_init();
}

#[tokio::test]
async fn the_console_is_off_unless_enabled() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let dir = TempDir::new("console-off");
    let g = gateway(&sb, &dir, "").await;
    let c = Client::new(&g);
    for path in ["/console", "/console/console.js"].iter().chain(DATA) {
        assert_eq!(c.get(path, None).await.0, 404, "{path}");
    }
    assert_eq!(c.login(KEY).await.0, 404);
}

#[tokio::test]
async fn a_stranger_gets_nothing_and_a_guesser_is_throttled() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let dir = TempDir::new("console-stranger");
    let g = gateway(&sb, &dir, &console_toml(KEY)).await;
    let c = Client::new(&g);
    // The page itself holds no data; every data route wants a session.
    let (status, page) = c.get("/console", None).await;
    assert_eq!(status, 200);
    assert!(page.contains("console.js") && !page.contains(OA));
    let (_, real) = c.login(KEY).await;
    let (real, set_cookie) = real.unwrap();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/console"), "{set_cookie}");
    let expiry: i64 = real.split('.').nth(1).unwrap().parse().unwrap();
    let forged = [
        String::new(),
        "v1.9999999999.nonce.0000".to_owned(),
        real.replacen(
            &format!("v1.{expiry}."),
            &format!("v1.{}.", expiry + 86400),
            1,
        ),
        format!("{real}0"),
        real.replace("v1.", "v2."),
        // A cookie signed with another admin key (another gateway's console).
        wxgate::console::session::Keys::new("another-admin-key-0123456789").issue(expiry),
    ];
    for path in DATA {
        assert_eq!(c.get(path, None).await.0, 401, "{path} without a cookie");
        for f in &forged {
            assert_eq!(c.get(path, Some(f)).await.0, 401, "{path} with {f:?}");
        }
        assert_eq!(
            c.get(path, Some(&real)).await.0,
            200,
            "{path} with the session"
        );
    }
    for path in ["/console/api/refresh", "/console/api/quota/clear"] {
        let (status, _) = c
            .post(path, None, None, json!({"account": "default"}))
            .await;
        assert_eq!(status, 401, "{path}");
        // A session without the CSRF token (what a forged cross-site form would send).
        let (status, _) = c
            .post(path, Some(&real), None, json!({"account": "default"}))
            .await;
        assert_eq!(status, 403, "{path}");
        let (status, _) = c
            .post(
                path,
                Some(&real),
                Some("0".repeat(64).as_str()),
                json!({"account": "default"}),
            )
            .await;
        assert_eq!(status, 403, "{path}");
    }
    assert_eq!(sandbox_calls(&sb, "/cgi-bin/clear_quota", OA), 0);
    // Bad bodies are 400s.
    for body in ["", "{", "[]", "{\"key\": 1}"] {
        let r = reqwest::Client::new()
            .post(format!("{}/console/login", g.url()))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
    }
    // Guessing: 401 each, then 429 for this address's wrong keys; the right key still
    // logs in (failures are charged to the address that failed, so a guesser cannot
    // lock the operator out).
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(c.login(&format!("guess-{i}-0123456789abcdef")).await.0);
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(&statuses[10..], &[429; 2]);
    assert_eq!(c.login(KEY).await.0, 200);
    // The session from before still works: throttling is for logins.
    assert_eq!(c.get("/console/api/overview", Some(&real)).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_lifetimes_refreshes_and_nothing_secret() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let dir = TempDir::new("console-operator");
    let g = gateway(&sb, &dir, &console_toml(KEY)).await;
    let c = Client::new(&g);
    let http = reqwest::Client::new();
    let (status, token) = api_get(&http, format!("{}/api/v1/default/token", g.url())).await;
    assert_eq!(status, 200, "{token}");
    let token = token["access_token"].as_str().unwrap().to_owned();
    // Asked for, not read from the cache: the start-up fetch of the Mini Program's
    // token may not have finished yet (an empty token here failed a CI run).
    let (status, mini) = api_get(&http, format!("{}/api/v1/mini/token", g.url())).await;
    assert_eq!(status, 200, "{mini}");
    let mini_token = mini["access_token"].as_str().unwrap_or_default().to_owned();
    let (_, cookie) = c.login(KEY).await;
    let (cookie, _) = cookie.unwrap();
    let (status, text) = c.get("/console/api/overview", Some(&cookie)).await;
    assert_eq!(status, 200);
    // Nothing secret: not the token, the AppSecrets, the API key, the AES key, the
    // console key, the Mini Program token.
    for secret in [
        token.as_str(),
        OA_SECRET,
        "sandbox-secret-miniapp-0001",
        API_KEY,
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        KEY,
        mini_token.as_str(),
    ] {
        assert!(
            !secret.is_empty() && !text.contains(secret),
            "the overview shows a secret"
        );
    }
    let v: Value = serde_json::from_str(&text).unwrap();
    let default = v["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "default")
        .unwrap();
    let at = &default["credentials"][0];
    assert_eq!(at["name"], "access_token");
    let (fetched, expires) = (
        at["fetched_at"].as_i64().unwrap(),
        at["expires_at"].as_i64().unwrap(),
    );
    assert_eq!(expires - fetched, 7200, "the sandbox's expires_in");
    assert!(at["refresh_at"].as_i64().unwrap() < expires);
    assert_eq!(at["digest"], wxgate::credentials::digest(&token));
    assert_eq!(at["fetches_today"], 1);
    assert_eq!(v["daily_quota"], 2000);
    assert_eq!(v["store"]["ok"], true);
    let csrf = v["csrf"].as_str().unwrap().to_owned();

    // This instance's heartbeat shows up in the fleet.
    let mut seen = false;
    for _ in 0..40 {
        let (_, text) = c.get("/console/api/overview", Some(&cookie)).await;
        let v: Value = serde_json::from_str(&text).unwrap();
        if v["fleet"]
            .as_array()
            .is_some_and(|f| f.iter().any(|h| h["id"] == v["instance"]))
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen, "the heartbeat reached the store");

    // A forced refresh: a new token, its issue time and digest change.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, r) = c
        .post(
            "/console/api/refresh",
            Some(&cookie),
            Some(&csrf),
            json!({"account": "default", "kind": "access_token"}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert!(r["fetched_at"].as_i64().unwrap() > fetched, "{r}");
    assert_ne!(r["digest"], at["digest"]);
    let fresh = g
        .state
        .ctx
        .credentials
        .current("default", wxgate::credentials::Kind::AccessToken)
        .unwrap();
    assert_ne!(fresh.value, token);
    assert!(sb.platform.check_token(&fresh.value).is_ok());
    // Unknown accounts and kinds are 4xx and fetch nothing.
    let fetches = sandbox_calls(&sb, "/cgi-bin/stable_token", OA);
    for body in [
        json!({"account": "nobody"}),
        json!({"account": "default", "kind": "nonsense"}),
        json!("x"),
    ] {
        let (status, _) = c
            .post(
                "/console/api/refresh",
                Some(&cookie),
                Some(&csrf),
                body.clone(),
            )
            .await;
        assert!((400..500).contains(&status), "{body}: {status}");
    }
    assert_eq!(sandbox_calls(&sb, "/cgi-bin/stable_token", OA), fetches);
    // Clearing the quota calls WeChat once.
    let (status, r) = c
        .post(
            "/console/api/quota/clear",
            Some(&cookie),
            Some(&csrf),
            json!({"account": "default"}),
        )
        .await;
    assert_eq!((status, &r["ok"]), (200, &json!(true)), "{r}");
    assert_eq!(sandbox_calls(&sb, "/cgi-bin/clear_quota", OA), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_pushes_moves_the_chart_and_the_rings_keep_their_size() {
    problems_layer();
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let dir = TempDir::new("console-flood");
    let rules = "[[accounts.default.rules]]\nkeyword = \"hello\"\nreply = { type = \"text\", content = \"hi\" }\n";
    let g = gateway(&sb, &dir, &format!("{}{rules}", console_toml(KEY))).await;
    let c = Client::new(&g);
    let (_, cookie) = c.login(KEY).await;
    let (cookie, _) = cookie.unwrap();
    let console = g.state.console.clone().unwrap();
    let target = PushTarget {
        url: format!("{}/wx/service", g.url()),
        token: "sandboxtoken".into(),
        appid: OA.into(),
        encoding_aes_key: Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into()),
        mode: MessageMode::Safe,
        format: Default::default(),
    };
    let http = reqwest::Client::new();
    let total = |v: &Value, name: &str| -> f64 {
        v["series"][name]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .sum()
    };
    // The sampler's baseline, then a flood: 2000 distinct pushes, 8 at a time.
    console
        .rings
        .sample(&wxgate::metrics::render(), common::now());
    let (_, before) = c.get("/console/api/traffic", Some(&cookie)).await;
    let before: Value = serde_json::from_str(&before).unwrap();
    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let (http, target) = (http.clone(), target.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..250u64 {
                let msg = messages::sample(
                    "text",
                    "gh_sandbox00001",
                    "oSandboxUser000000000000001",
                    common::now(),
                    50_000_000 + w * 1000 + i,
                    Some("hello"),
                )
                .unwrap();
                let o = push(&http, &target, &msg, &PushOptions::default())
                    .await
                    .unwrap();
                assert_eq!(o.status, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // A forged push: refused, and a warning with its request id.
    let r = http
        .post(format!("{}/wx/service?signature=0&timestamp={}&nonce=1&openid=o&encrypt_type=aes&msg_signature=0", g.url(), common::now()))
        .header("X-Request-Id", "forged-push-42")
        .body("<xml><ToUserName><![CDATA[gh]]></ToUserName><Encrypt><![CDATA[AAAA]]></Encrypt></xml>")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    console
        .rings
        .sample(&wxgate::metrics::render(), common::now());
    let (_, after) = c.get("/console/api/traffic", Some(&cookie)).await;
    let after: Value = serde_json::from_str(&after).unwrap();
    let pushed = total(&after, "push_rule") - total(&before, "push_rule");
    assert!(pushed >= 2000.0, "the chart counted the flood: {pushed}");
    assert!(
        total(&after, "refused_401") + total(&after, "refused_403") + total(&after, "refused_400")
            >= 1.0
    );
    // Bounded: an hour of points at most, the fixed series, whatever the flood.
    assert!(console.rings.len() <= wxgate::console::rings::MINUTES);
    assert!(after["minutes"].as_array().unwrap().len() <= 60);
    assert_eq!(
        after["series"].as_object().unwrap().len(),
        wxgate::console::rings::SERIES.len()
    );
    let (_, problems) = c.get("/console/api/problems", Some(&cookie)).await;
    let problems: Value = serde_json::from_str(&problems).unwrap();
    let list = problems["problems"].as_array().unwrap();
    assert!(list.len() <= wxgate::console::problems::KEPT);
    assert!(
        list.iter()
            .any(|p| p["message"] == "push refused" && p["request_id"] == "forged-push-42"),
        "{problems}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_webhook_is_a_problem_with_the_pushs_request_id() {
    problems_layer();
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let dir = TempDir::new("console-webhook");
    // A webhook nobody answers (a port nothing listens on).
    let dead = free_port();
    let hook = format!(
        "[accounts.default.webhook]\nurl = \"http://127.0.0.1:{dead}/hook\"\nsecret = \"hook-secret\"\ntimeout_ms = 500\n"
    );
    let g = gateway(&sb, &dir, &format!("{}{hook}", console_toml(KEY))).await;
    let c = Client::new(&g);
    let (_, cookie) = c.login(KEY).await;
    let (cookie, _) = cookie.unwrap();
    let msg = messages::sample(
        "text",
        "gh_sandbox00001",
        "oSandboxUser000000000000001",
        common::now(),
        77_000_001,
        Some("anyone there?"),
    )
    .unwrap();
    let target = PushTarget {
        url: format!("{}/wx/service", g.url()),
        token: "sandboxtoken".into(),
        appid: OA.into(),
        encoding_aes_key: Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into()),
        mode: MessageMode::Safe,
        format: Default::default(),
    };
    // The sandbox's pusher sends no request id; a proxy in front of wxgate would. Push
    // through a client that adds one.
    let http = reqwest::Client::builder()
        .default_headers(
            [(
                reqwest::header::HeaderName::from_static("x-request-id"),
                reqwest::header::HeaderValue::from_static("hook-fails-7"),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap();
    let o = push(&http, &target, &msg, &PushOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (o.status, o.body.as_str()),
        (200, "success"),
        "WeChat still gets its answer"
    );
    let mut found = Value::Null;
    for _ in 0..50 {
        let (_, text) = c.get("/console/api/problems", Some(&cookie)).await;
        let v: Value = serde_json::from_str(&text).unwrap();
        if let Some(p) = v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["message"] == "webhook failed" && p["request_id"] == "hook-fails-7")
        {
            found = p.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        found.is_object(),
        "the webhook's failure, under the push's request id"
    );
    assert!(!found.to_string().contains("hook-secret"));
}
