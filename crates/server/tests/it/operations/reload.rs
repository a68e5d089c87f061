//! Accounts changed without a restart: a reload under traffic, in process and through
//! `wxgate reload` on a running `wxgate serve`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wxgate_sandbox::{Sandbox, SandboxConfig};

use crate::common::*;

/// The sandbox's example with `n` more Official Accounts, and `[accounts.aN]` sections
/// for those in `range` (push token `token_of(i)`).
fn accounts(range: std::ops::Range<usize>, token_of: impl Fn(usize) -> String) -> String {
    range
        .map(|i| {
            format!(
                "[accounts.a{i}]\nappid = \"wxrld{i:011}\"\nsecret = \"reload-secret-{i:04}\"\ntoken = \"{}\"\nmode = \"plaintext\"\n",
                token_of(i)
            )
        })
        .collect()
}

fn sandbox_config(n: usize) -> SandboxConfig {
    let mut config = SandboxConfig::example();
    let template = config.apps[0].clone();
    for i in 0..n {
        let mut app = template.clone();
        app.appid = format!("wxrld{i:011}");
        app.secret = format!("reload-secret-{i:04}");
        config.apps.push(app);
    }
    config
}

fn verify_query(token: &str) -> String {
    let (ts, nonce) = (now().to_string(), "reload-nonce");
    let signature = wxgate_proto::signature::server_signature(token, &ts, nonce);
    format!("signature={signature}&timestamp={ts}&nonce={nonce}&echostr=echo")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adds_removes_and_changes_accounts_under_traffic() {
    let sb = Sandbox::start_ephemeral(sandbox_config(25)).await.unwrap();
    let h = Setup::new()
        .tag("reload")
        .sandbox(sb)
        .extra(&accounts(0..15, |_| "sandboxtoken".into()))
        .start()
        .await;
    // Traffic on the accounts that stay, all along.
    let (stop, failed, served) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut traffic = Vec::new();
    for worker in 0..4 {
        let (stop, failed, served, base) =
            (stop.clone(), failed.clone(), served.clone(), h.gw.url());
        traffic.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut i = worker;
            while !stop.load(Ordering::Relaxed) {
                let (status, v) =
                    api_get(&http, format!("{base}/api/v1/a{}/token", 2 + i % 8)).await;
                if status == 200 && v["access_token"].is_string() {
                    served.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // a10..a14 removed, a15..a24 added, a1's push token changed.
    let kept = accounts(0..10, |i| {
        if i == 1 {
            "rotated-token".into()
        } else {
            "sandboxtoken".into()
        }
    });
    let added = accounts(15..25, |_| "sandboxtoken".into());
    let toml = gateway_toml(
        &h.sb.base_url(),
        h.dir.path(),
        embedded(),
        "",
        &format!("{kept}{added}"),
    )
    .replace("http://127.0.0.1:18340", &h.gw.url());
    let config = wxgate::Config::from_toml_with_env(&toml, Vec::<(String, String)>::new()).unwrap();
    let what = h.gw.reload(config).unwrap();
    assert_eq!(what.added.len(), 10, "{what}");
    assert_eq!(
        what.removed,
        (10..15).map(|i| format!("a{i}")).collect::<Vec<_>>()
    );
    assert_eq!(what.changed, ["a1"], "{what}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for t in traffic {
        t.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests on unchanged accounts failed"
    );
    assert!(served.load(Ordering::Relaxed) > 20);
    let http = reqwest::Client::new();
    let (status, _) = api_get(&http, h.url("/api/v1/a12/token")).await;
    assert_eq!(status, 404, "a removed account");
    let (status, v) = api_get(&http, h.url("/api/v1/a20/token")).await;
    assert_eq!(status, 200, "an added account serves: {v}");
    // The changed push token is the one WeChat's verification must use now.
    let get = |token: &str| {
        http.get(h.url(&format!("/wx/a1/service?{}", verify_query(token))))
            .send()
    };
    assert_eq!(
        get("rotated-token").await.unwrap().text().await.unwrap(),
        "echo"
    );
    assert_ne!(get("sandboxtoken").await.unwrap().status(), 200);
    // What only a restart can change is refused, and nothing changes.
    let moved = toml.replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\"");
    let config =
        wxgate::Config::from_toml_with_env(&moved, Vec::<(String, String)>::new()).unwrap();
    let refused = h.gw.reload(config).unwrap_err().to_string();
    assert!(refused.contains("listen"), "{refused}");
    let (status, _) = api_get(&http, h.url("/api/v1/a20/token")).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wxgate_reload_applies_a_valid_file_and_refuses_an_invalid_one() {
    let sb = Sandbox::start_ephemeral(sandbox_config(3)).await.unwrap();
    let dir = TempDir::new("reload-cli");
    let port = free_port();
    let base = gateway_toml(&sb.base_url(), dir.path(), embedded(), "", "");
    let path = write_config(
        &dir,
        "wxgate.toml",
        &(base.clone() + &accounts(0..1, |_| "t0".into())),
        port,
    );
    let _server = spawn_wxgate(&["serve", "--config", &path], port);
    let http = reqwest::Client::new();
    let token = |name: &'static str| {
        let http = http.clone();
        async move {
            api_get(
                &http,
                format!("http://127.0.0.1:{port}/api/v1/{name}/token"),
            )
            .await
            .0
        }
    };
    assert_eq!(token("a0").await, 200);
    assert_eq!(token("a2").await, 404);
    // An invalid file: refused by `wxgate reload` with check's message; nothing changes.
    write_config(
        &dir,
        "wxgate.toml",
        &(base.clone() + "[accounts.a2]\nappid = \"wxrld00000000002\"\n"),
        port,
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .args(["reload", "--config", &path])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("secret"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A valid one: a2 added, a0 removed, within seconds.
    write_config(
        &dir,
        "wxgate.toml",
        &(base + &accounts(2..3, |_| "t2".into())),
        port,
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .args(["reload", "--config", &path])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while token("a2").await != 200 {
        assert!(std::time::Instant::now() < deadline, "a2 never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(token("a0").await, 404);
}
