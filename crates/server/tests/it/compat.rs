//! The WeChat-compatible API: an unmodified SDK (wechatpy) pointed at wxgate gets its
//! tokens from the central control, its calls forwarded with the central token, and a
//! token invalidated behind wxgate's back healed; strangers get WeChat's errors and cost
//! nothing upstream.

use crate::common;

use common::*;
use serde_json::{json, Value};

const CLIENT_SECRET: &str = "compat-client-secret-0001";
const USER: &str = "oSandboxUser000000000000001";

fn compat(top: &str) -> Setup {
    Setup::new().tag("compat").top(top).extra(&format!(
        "[compat]\nenabled = true\n[[compat.clients]]\nname = \"backend\"\nsecret = \"{CLIENT_SECRET}\"\nappids = [\"{OA}\"]\n"
    ))
}

/// wechatpy, unmodified, against `base`; its JSON answer.
fn wechatpy(base: &str, secret: &str, calls: usize) -> Result<Value, String> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/interop/wechatpy_compat.py"
    );
    let out = std::process::Command::new("python3")
        .args([script, base, OA, secret, USER, &calls.to_string()])
        .output()
        .expect("python3 runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

fn token_fetches(h: &Harness) -> u64 {
    sandbox_calls(&h.sb, "/cgi-bin/stable_token", OA) + sandbox_calls(&h.sb, "/cgi-bin/token", OA)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_wechatpy_processes_share_one_token_fetch_and_heal_an_invalidated_token() {
    let h = compat("").start().await;
    let base = h.gw.url();
    // 3 SDK processes x 200 calls at a cold start: one upstream token fetch.
    let runs = tokio::task::spawn_blocking(move || {
        let procs: Vec<_> = (0..3)
            .map(|_| {
                let base = base.clone();
                std::thread::spawn(move || wechatpy(&base, CLIENT_SECRET, 200))
            })
            .collect();
        procs
            .into_iter()
            .map(|p| p.join().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let mut tokens = Vec::new();
    for run in runs {
        let v = run.unwrap_or_else(|e| {
            panic!("wechatpy failed (scripts/install-deps.sh installs it):\n{e}")
        });
        assert_eq!(v["user"], USER);
        assert_eq!(v["sent"], 0);
        assert_eq!(v["calls"], 200);
        assert!(v["ticket"].as_str().unwrap().len() > 32);
        tokens.push(v["access_token"].as_str().unwrap().to_owned());
    }
    assert!(tokens.iter().all(|t| *t == tokens[0]), "one central token");
    assert_eq!(token_fetches(&h), 1, "one upstream fetch for 3 x 200 calls");
    let sent = h.sb.platform.sent(Some(OA));
    assert_eq!(
        sent.len(),
        3,
        "the customer-service messages reached WeChat"
    );

    // The token is invalidated behind wxgate's back (a forced stable token at WeChat).
    let r: Value = reqwest::Client::new()
        .post(format!("{}/cgi-bin/stable_token", h.sb.base_url()))
        .json(&json!({"grant_type": "client_credential", "appid": OA, "secret": OA_SECRET, "force_refresh": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(r["access_token"], tokens[0].as_str());
    let fetches = token_fetches(&h);
    // The SDK's next calls still succeed: the forwarded call meets 40001, wxgate
    // refreshes once and retries.
    let base = h.gw.url();
    let v = tokio::task::spawn_blocking(move || wechatpy(&base, CLIENT_SECRET, 5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v["calls"], 5);
    assert!(
        token_fetches(&h) <= fetches + 1,
        "the heal cost at most one fetch"
    );
}

#[tokio::test]
async fn strangers_get_wechats_errors_and_cost_nothing_upstream() {
    let h = compat("").start().await;
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        let url = h.url(&path);
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    // Warm: the central token exists (the refresher may already have fetched it).
    let ok = get(format!(
        "/cgi-bin/token?grant_type=client_credential&appid={OA}&secret={CLIENT_SECRET}"
    ))
    .await;
    let token = ok["access_token"].as_str().unwrap().to_owned();
    assert!(ok["expires_in"].as_i64().unwrap() > 7000, "{ok}");
    let before = (
        token_fetches(&h),
        sandbox_calls(&h.sb, "/cgi-bin/user/get", OA),
    );

    let bad = get(format!(
        "/cgi-bin/token?grant_type=client_credential&appid={OA}&secret=wrong-secret"
    ))
    .await;
    assert_eq!(bad["errcode"], 40001, "{bad}");
    // The real AppSecret is refused unless the account allows it.
    let real = get(format!(
        "/cgi-bin/token?grant_type=client_credential&appid={OA}&secret={OA_SECRET}"
    ))
    .await;
    assert_eq!(real["errcode"], 40001, "{real}");
    let unknown = get(format!(
        "/cgi-bin/token?grant_type=client_credential&appid=wxnobody&secret={CLIENT_SECRET}"
    ))
    .await;
    assert_eq!(unknown["errcode"], 40013, "{unknown}");
    let grant = get(format!(
        "/cgi-bin/token?grant_type=password&appid={OA}&secret={CLIENT_SECRET}"
    ))
    .await;
    assert_eq!(grant["errcode"], 40002, "{grant}");
    let stable: Value = http
        .post(h.url("/cgi-bin/stable_token"))
        .json(&json!({"grant_type": "client_credential", "appid": OA, "secret": "wrong", "force_refresh": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stable["errcode"], 40125, "{stable}");
    // A forged token, a missing one, a path outside WeChat's API.
    let forged = get("/cgi-bin/user/get?access_token=forged-token".into()).await;
    assert_eq!(forged["errcode"], 40001, "{forged}");
    let missing = get("/cgi-bin/user/get".into()).await;
    assert_eq!(missing["errcode"], 41001, "{missing}");
    let outside = get(format!(
        "/cgi-bin/%252e%252e/admin/clock?access_token={token}"
    ))
    .await;
    assert_ne!(outside["errcode"], 0, "{outside}");
    let ticket = get("/cgi-bin/ticket/getticket?access_token=forged&type=jsapi".into()).await;
    assert_eq!(ticket["errcode"], 40001, "{ticket}");
    assert_eq!(
        (
            token_fetches(&h),
            sandbox_calls(&h.sb, "/cgi-bin/user/get", OA)
        ),
        before,
        "nothing reached WeChat"
    );

    // force_refresh with a live token: checked, not fetched.
    let forced: Value = http
        .post(h.url("/cgi-bin/stable_token"))
        .json(&json!({"grant_type": "client_credential", "appid": OA, "secret": CLIENT_SECRET, "force_refresh": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(forced["access_token"], token.as_str());
    assert_eq!(token_fetches(&h), before.0, "a live token is not refetched");
    assert_eq!(sandbox_calls(&h.sb, "/cgi-bin/get_api_domain_ip", OA), 1);

    // Wrong secrets are rate-limited: past the client burst, 45011.
    let mut codes = Vec::new();
    for _ in 0..30 {
        let v = get(format!(
            "/cgi-bin/token?grant_type=client_credential&appid={OA}&secret=wrong"
        ))
        .await;
        codes.push(v["errcode"].as_i64().unwrap());
    }
    assert!(codes.contains(&45011), "{codes:?}");
}

#[tokio::test]
async fn the_compatible_api_can_have_its_own_listener() {
    let port = free_port();
    let h = Setup::new()
        .tag("compat-listen")
        .extra(&format!(
            "[compat]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n[[compat.clients]]\nname = \"backend\"\nsecret = \"{CLIENT_SECRET}\"\nappids = [\"{OA}\"]\n"
        ))
        .start()
        .await;
    assert_eq!(h.gw.compat_addr.map(|a| a.port()), Some(port));
    let on_own = reqwest::get(format!(
        "http://127.0.0.1:{port}/cgi-bin/token?grant_type=client_credential&appid={OA}&secret={CLIENT_SECRET}"
    ))
    .await
    .unwrap()
    .json::<Value>()
    .await
    .unwrap();
    assert!(on_own["access_token"].is_string(), "{on_own}");
    // Not beside /wx/... on the public listener.
    let public = reqwest::get(h.url(&format!(
        "/cgi-bin/token?grant_type=client_credential&appid={OA}&secret={CLIENT_SECRET}"
    )))
    .await
    .unwrap();
    assert_eq!(public.status(), 404);
    // And the compatible listener serves no /wx routes.
    let wx = reqwest::get(format!("http://127.0.0.1:{port}/wx/config?url=x"))
        .await
        .unwrap();
    assert_eq!(wx.status(), 404);
}

/// co-wechat-api (npm), unmodified, against `base`; its JSON answer.
fn co_wechat_api(base: &str, calls: usize) -> Result<Value, String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/interop");
    let out = std::process::Command::new("node")
        .current_dir(dir)
        .args([
            "co_wechat_api.js",
            base,
            OA,
            CLIENT_SECRET,
            USER,
            &calls.to_string(),
        ])
        .output()
        .expect("node runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_sdk_and_wechatpy_share_the_central_token() {
    let h = compat("").start().await;
    let base = h.gw.url();
    let (node, python) = tokio::task::spawn_blocking(move || {
        let b = base.clone();
        let node = std::thread::spawn(move || co_wechat_api(&b, 200));
        let python = wechatpy(&base, CLIENT_SECRET, 200);
        (node.join().unwrap(), python)
    })
    .await
    .unwrap();
    let node = node.unwrap_or_else(|e| {
        panic!("co-wechat-api failed (scripts/install-deps.sh installs it):\n{e}")
    });
    let python = python.unwrap();
    assert_eq!(node["user"], USER);
    assert_eq!(node["sent"], 0);
    assert_eq!(node["menu_created"], 0);
    assert_eq!(node["menu_button"], "V1001_TODAY");
    assert_eq!(node["calls"], 200);
    assert_eq!(
        node["access_token"], python["access_token"],
        "one central token"
    );
    assert_eq!(node["ticket"], python["ticket"]);
    assert_eq!(
        token_fetches(&h),
        1,
        "two SDKs, 400 calls, one upstream fetch"
    );

    // Invalidated behind wxgate's back: the node SDK's next calls still succeed.
    reqwest::Client::new()
        .post(format!("{}/cgi-bin/stable_token", h.sb.base_url()))
        .json(&json!({"grant_type": "client_credential", "appid": OA, "secret": OA_SECRET, "force_refresh": true}))
        .send()
        .await
        .unwrap();
    let fetches = token_fetches(&h);
    let base = h.gw.url();
    let again = tokio::task::spawn_blocking(move || co_wechat_api(&base, 3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again["calls"], 3);
    assert_eq!(token_fetches(&h), fetches + 1, "healed with one fetch");
}

/// `/api/v1/{account}/followers` against a sandbox account with `extra` followers.
async fn followers_harness(extra: usize) -> Harness {
    let mut cfg = wxgate_sandbox::SandboxConfig::example();
    let app = cfg.apps.iter_mut().find(|a| a.appid == OA).unwrap();
    app.extra_followers = extra;
    let sb = wxgate_sandbox::Sandbox::start_ephemeral(cfg).await.unwrap();
    Setup::new()
        .tag("followers")
        .sandbox(sb)
        .top("[api]\nfollowers_call_interval_ms = 1\n")
        .start()
        .await
}

async fn export(h: &Harness, query: &str) -> Vec<Value> {
    let r = reqwest::Client::new()
        .get(h.url(&format!("/api/v1/default/followers?{query}")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    r.text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn followers_past_ten_thousand_stream_page_by_page_and_resume() {
    let h = followers_harness(25_000).await;
    let lines = export(&h, "").await;
    let openids: Vec<&str> = lines.iter().filter_map(|l| l["openid"].as_str()).collect();
    let done = lines.last().unwrap();
    assert_eq!(done["done"], true, "{done}");
    let total = done["total"].as_u64().unwrap() as usize;
    assert!(total > 25_000);
    assert_eq!(openids.len(), total, "every follower once");
    let mut unique = openids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), total);
    let checkpoints: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["next_openid"].as_str())
        .collect();
    assert_eq!(checkpoints.len(), 3, "one checkpoint a page of 10,000");
    assert_eq!(sandbox_calls(&h.sb, "/cgi-bin/user/get", OA), 4);

    // Resumed from the second checkpoint: the last page only.
    let rest = export(&h, &format!("next_openid={}", checkpoints[1])).await;
    let rest_ids = rest.iter().filter(|l| l["openid"].is_string()).count();
    assert_eq!(rest_ids, total - 20_000);
}

#[tokio::test]
async fn followers_with_profiles_in_batches_of_one_hundred() {
    let h = followers_harness(248).await;
    let lines = export(&h, "info=1&lang=en").await;
    let profiles: Vec<&Value> = lines.iter().filter(|l| l["subscribe"] == 1).collect();
    let total = lines.last().unwrap()["total"].as_u64().unwrap() as usize;
    assert_eq!(profiles.len(), total);
    assert_eq!(
        sandbox_calls(&h.sb, "/cgi-bin/user/info/batchget", OA) as usize,
        total.div_ceil(100)
    );
    // Without a key: 401, nothing streamed, nothing asked of WeChat.
    let r = reqwest::get(h.url("/api/v1/default/followers"))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn mini_program_codes_are_pngs_kept_for_identical_requests() {
    let h = Setup::new().tag("wxa-code").start().await;
    let http = reqwest::Client::new();
    let code = |body: Value| {
        http.post(h.url("/api/v1/mini/wxa/code"))
            .bearer_auth(API_KEY)
            .json(&body)
            .send()
    };
    let r = code(json!({"scene": "order=42", "page": "pages/index/index", "width": 430}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.headers()["x-wxgate-cache"], "miss");
    let first = r.bytes().await.unwrap();
    assert!(first.starts_with(b"\x89PNG\r\n\x1a\n"));
    // The same request, its keys in another order: from the store, no WeChat call.
    let r = code(json!({"width": 430, "page": "pages/index/index", "scene": "order=42"}))
        .await
        .unwrap();
    assert_eq!(r.headers()["x-wxgate-cache"], "hit");
    assert_eq!(r.bytes().await.unwrap(), first);
    assert_eq!(sandbox_calls(&h.sb, "/wxa/getwxacodeunlimit", MINI), 1);
    // WeChat's error, as JSON with a 400; not kept.
    let r = code(json!({"scene": "x".repeat(33)})).await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errcode"], 40169);
    // No key: 401, nothing asked.
    let r = reqwest::Client::new()
        .post(h.url("/api/v1/mini/wxa/code"))
        .json(&json!({"scene": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(sandbox_calls(&h.sb, "/wxa/getwxacodeunlimit", MINI), 2);

    // Each code decodes (with Python's zlib, not ours) as a PNG of the asked width; WeChat's
    // default is 430, and widths are held between 280 and 1280.
    assert_eq!(png_size(&first), (430, 430));
    for (asked, got) in [
        (json!(600), 600),
        (json!("300"), 300),
        (json!(100), 280),
        (json!(5000), 1280),
    ] {
        let r = code(json!({"scene": format!("w={asked}"), "width": asked}))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            png_size(&r.bytes().await.unwrap()),
            (got, got),
            "width {asked}"
        );
    }
    let r = code(json!({"scene": "no-width"})).await.unwrap();
    assert_eq!(png_size(&r.bytes().await.unwrap()), (430, 430));
}

/// The width and height of a PNG, decoded by `tests/interop/png_info.py`.
fn png_size(png: &[u8]) -> (u64, u64) {
    use std::io::Write;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/interop/png_info.py"
    );
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(png).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap())
}

#[tokio::test]
async fn url_schemes_and_links_for_a_mini_program() {
    let h = Setup::new().tag("wxa-links").start().await;
    let http = reqwest::Client::new();
    let call = |what: &'static str, body: Value| {
        http.post(h.url(&format!("/api/v1/mini/wxa/{what}")))
            .bearer_auth(API_KEY)
            .json(&body)
            .send()
    };
    let r = call(
        "scheme",
        json!({"jump_wxa": {"path": "pages/index/index", "query": "a=1"}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["openlink"]
            .as_str()
            .unwrap()
            .starts_with("weixin://dl/business/?t="),
        "{v}"
    );
    let r = call("urllink", json!({"path": "pages/index/index"}))
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(
        v["url_link"]
            .as_str()
            .unwrap()
            .starts_with("https://wxaurl.cn/"),
        "{v}"
    );
    // WeChat refuses a page path starting with '/': a 400 carrying its errcode.
    let r = call("urllink", json!({"path": "/pages/index/index"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["errcode"], 40165, "{v}");
    // Not JSON: 400 before WeChat.
    let calls = sandbox_calls(&h.sb, "/wxa/generatescheme", MINI);
    let r = http
        .post(h.url("/api/v1/mini/wxa/scheme"))
        .bearer_auth(API_KEY)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(sandbox_calls(&h.sb, "/wxa/generatescheme", MINI), calls);
}

#[tokio::test]
async fn subscribe_messages_reach_only_users_who_accepted() {
    let h = Setup::new().tag("subscribe").start().await;
    let http = reqwest::Client::new();
    let send = |body: Value| {
        http.post(h.url("/api/v1/mini/subscribe/send"))
            .bearer_auth(API_KEY)
            .json(&body)
            .send()
    };
    let message = |template: &str| {
        json!({
            "touser": "oMiniUser00000000000000001",
            "template_id": template,
            "page": "pages/index/index",
            "miniprogram_state": "formal",
            "lang": "zh_CN",
            "data": { "thing1": { "value": "Your order shipped" }, "time2": { "value": "2026-11-29 12:00" } },
        })
    };
    // The user has not accepted: 43101, explained as WeChat's refusal.
    let r = send(message("TPL_SHIP")).await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["errcode"], 43101, "{v}");
    // The user accepts one message (wx.requestSubscribeMessage): one send goes out.
    reqwest::Client::new()
        .post(format!("{}/admin/miniprogram/subscribe", h.sb.base_url()))
        .json(&json!({"appid": MINI, "openid": "oMiniUser00000000000000001", "template_id": "TPL_SHIP"}))
        .send()
        .await
        .unwrap();
    let r = send(message("TPL_SHIP")).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let sent = h.sb.platform.sent(Some(MINI));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].kind, "subscribe");
    assert_eq!(
        sent[0].body["data"]["thing1"]["value"],
        "Your order shipped"
    );
    // One acceptance, one message.
    let v: Value = send(message("TPL_SHIP"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["error"]["errcode"], 43101);
    // Data that does not fit: 47003.
    let mut bad = message("TPL_SHIP");
    bad["data"] = json!({"thing1": "no value object"});
    let v: Value = send(bad).await.unwrap().json().await.unwrap();
    assert_eq!(v["error"]["errcode"], 47003, "{v}");
    // Counted by result, templates outside the account's list as `other`.
    let metrics = http
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("wxgate_subscribe_sent_total"), "{metrics}");
    assert!(metrics.contains("template=\"other\""));
    assert!(!metrics.contains("TPL_SHIP"));
}
