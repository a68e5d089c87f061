//! `wxgate serve` and its operator commands, run as processes the way an operator runs
//! them: restarts, a lock holder killed mid-refresh, `check`, `token`, `status`, `quota`.

use crate::common;

mod newcomer;
mod scale;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use wxgate_sandbox::{Sandbox, SandboxConfig};

fn wxgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

async fn token_from(port: u16) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/default/token"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn terminate(mut p: Running) -> std::process::ExitStatus {
    sigterm(&p.0);
    wait_exit(&mut p.0, Duration::from_secs(10))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reuses_the_stored_token_and_the_cli_reports_it() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let dir = TempDir::new("restart");
    let port = free_port();
    let config = write_config(
        &dir,
        "wxgate.toml",
        &gateway_toml(&sb.base_url(), dir.path(), embedded(), "", ""),
        port,
    );

    let out = wxgate(&["check", "--config", &config]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("ok: 2 account(s) (default, mini)"));

    let first = spawn_wxgate(&["serve", "--config", &config], port);
    let (status, v) = token_from(port).await;
    assert_eq!(status, 200);
    let token = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(sandbox_calls(&sb, "/cgi-bin/stable_token", OA), 1);

    // The CLI asks the running server (the embedded store belongs to it).
    let out = wxgate(&["token", "--config", &config, "--account", "default"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), token);
    let out = wxgate(&["status", "--config", &config]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    // An aligned table, a row per credential; no colour into a pipe.
    let lines: Vec<&str> = s.lines().collect();
    assert!(
        lines[0].starts_with("ACCOUNT") && lines[0].contains("EXPIRES IN"),
        "{s}"
    );
    let token_row = lines
        .iter()
        .find(|l| l.starts_with("default ") && l.contains("access_token"))
        .unwrap_or_else(|| panic!("{s}"));
    assert!(token_row.contains("wxsandbox0000001"), "{s}");
    assert!(token_row.contains("1/2000"), "{s}");
    assert!(
        token_row.contains(&wxgate::credentials::digest(&token)),
        "{s}"
    );
    let col = lines[0].find("APPID").unwrap();
    assert!(
        lines[1..].iter().all(|l| l.get(col..col + 2) == Some("wx")),
        "aligned: {s}"
    );
    assert!(!s.contains('\x1b'), "{s}");
    assert!(!s.contains(&token), "status never prints the token");

    assert!(terminate(first).success(), "graceful shutdown exits 0");

    // Offline, the CLI opens the store itself: the stored token, no fetch.
    let out = wxgate(&["token", "--config", &config]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), token);

    let second = spawn_wxgate(&["serve", "--config", &config], port);
    let (status, v) = token_from(port).await;
    assert_eq!(status, 200);
    assert_eq!(
        v["access_token"],
        token.as_str(),
        "the restarted server reuses the stored token"
    );
    assert_eq!(
        sandbox_calls(&sb, "/cgi-bin/stable_token", OA),
        1,
        "0 fetches for the restart"
    );

    let out = wxgate(&[
        "quota",
        "clear",
        "--config",
        &config,
        "--account",
        "default",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("quota cleared for default"));
    assert_eq!(sandbox_calls(&sb, "/cgi-bin/clear_quota", OA), 1);
    drop(second);
}

#[test]
fn check_says_exactly_what_is_wrong() {
    let dir = TempDir::new("check");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[accounts.default]\nappid = \"wx1\"\nsecret = \"s\"\nmode = \"safe\"\ntoken = \"t\"\nencoding_aes_key = \"abc\"\n",
    )
    .unwrap();
    let out = wxgate(&["check", "--config", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("accounts.default.encoding_aes_key") && err.contains("43 characters"),
        "{err}"
    );
    std::fs::write(
        &bad,
        "[accounts.default]\nappid = \"wx1\"\nsecret = \"s\"\nmode = \"encrypted\"\n",
    )
    .unwrap();
    let err = text(&wxgate(&["check", "--config", bad.to_str().unwrap()]).stderr);
    assert!(
        err.contains("encrypted") && err.contains("plaintext"),
        "{err}"
    );
    std::fs::write(&bad, "[accounts.default]\nappid = \"wx1\"\n").unwrap();
    let err = text(&wxgate(&["check", "--config", bad.to_str().unwrap()]).stderr);
    assert!(err.contains("secret is missing"), "{err}");
    let err = text(&wxgate(&["check", "--config", "/nonexistent/wxgate.toml"]).stderr);
    assert!(err.contains("/nonexistent/wxgate.toml"), "{err}");
    // The example configuration in the repository is valid.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../wxgate.example.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .args(["check", "--config", example])
        .env("WX_DEFAULT_SECRET", "secret-from-env")
        .env("WX_MINI_SECRET", "secret-from-env")
        .env("BACKEND_API_KEY", "an-api-key-of-enough-length")
        .env("WEBHOOK_SECRET", "webhook-secret")
        .env("WX_PAY_APIV3_KEY", "an-apiv3-key-of-32-characters-00")
        .env("WX_COMPONENT_SECRET", "a-component-secret")
        .env("AUTH_SECRET", "an-auth-secret-of-enough-length")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_holder_killed_mid_refresh_does_not_block_the_fleet() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let redis = RedisServer::start();
    let dir = TempDir::new("killed");
    let toml = gateway_toml(
        &sb.base_url(),
        dir.path(),
        &redis_store(&redis.url()),
        "",
        "",
    )
    .replace("lock_lease_ms = 5000", "lock_lease_ms = 2000")
    .replace("timeout_ms = 3000", "timeout_ms = 30000");
    // The first fetch hangs: its holder will be killed while holding the lock.
    sb.platform.faults.lock().unwrap().add(
        serde_json::from_value(
            json!({"path": "/cgi-bin/stable_token", "appid": OA, "kind": "latency", "ms": 20000, "count": 1}),
        )
        .unwrap(),
    );
    let (port_a, port_b) = (free_port(), free_port());
    let config_a = write_config(&dir, "a.toml", &toml, port_a);
    let config_b = write_config(&dir, "b.toml", &toml, port_b);
    let a = spawn_wxgate(&["serve", "--config", &config_a], port_a);
    // A's refresher took the lock and waits on WeChat.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sb
        .platform
        .calls()
        .get("/cgi-bin/stable_token")
        .map_or(0, |c| c.total)
        == 0
    {
        assert!(Instant::now() < deadline, "A never called WeChat");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed_at = Instant::now();
    drop(a); // SIGKILL: no lock release
    let _b = spawn_wxgate(&["serve", "--config", &config_b], port_b);
    let (status, v) = token_from(port_b).await;
    assert_eq!(status, 200, "{v}");
    let waited = killed_at.elapsed();
    assert!(
        waited < Duration::from_secs(8),
        "B refreshed after the lease, not never ({waited:?})"
    );
    let token = v["access_token"].as_str().unwrap();
    assert!(sb.platform.check_token(token).is_ok());
    // A's call is still held in the sandbox's latency fault (counted for the app before
    // the fault strikes); B fetched once for the account.
    assert_eq!(
        sandbox_calls(&sb, "/cgi-bin/stable_token", OA),
        2,
        "A's hung fetch and B's"
    );
    assert!(
        sb.platform.calls()["/cgi-bin/stable_token"].total >= 2,
        "A's hung fetch and B's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_push_against_a_running_serve() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let dir = TempDir::new("push");
    let port = free_port();
    let rules = "[[accounts.default.rules]]\nkeyword = \"hello\"\nreply = { type = \"text\", content = \"Hello from wxgate, {openid}\" }\n\n[[accounts.default.rules]]\nevent = \"subscribe\"\nreply = { type = \"text\", content = \"Welcome!\" }\n";
    let config = write_config(
        &dir,
        "wxgate.toml",
        &gateway_toml(&sb.base_url(), dir.path(), embedded(), "", rules),
        port,
    );
    let _serve = spawn_wxgate(&["serve", "--config", &config], port);
    let url = format!("http://127.0.0.1:{port}/wx/service");
    for (mode, kind, text_arg, expected) in [
        (
            "safe",
            "text",
            "hello",
            "Hello from wxgate, oSandboxUser000000000000001",
        ),
        ("compatible", "subscribe", "", "Welcome!"),
    ] {
        let mut args = vec![
            "sandbox", "push", "--url", &url, "--mode", mode, "--kind", kind,
        ];
        if !text_arg.is_empty() {
            args.extend(["--text", text_arg]);
        }
        let out = wxgate(&args);
        assert!(out.status.success(), "{mode}: {}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["status"], 200);
        assert_eq!(
            v["encrypted"], true,
            "an encrypted push is answered encrypted"
        );
        assert_eq!(v["reply"]["Content"], expected, "{mode}");
    }
    // The account is in safe mode: a plaintext push, however well signed, is refused.
    let out = wxgate(&["sandbox", "push", "--url", &url, "--mode", "plaintext"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("403"), "{}", text(&out.stderr));
    // A wrong token: the gateway refuses it, and the command says so.
    let out = wxgate(&[
        "sandbox", "push", "--url", &url, "--token", "wrong", "--mode", "safe",
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("403"), "{}", text(&out.stderr));
}

/// The binary runs on jemalloc with the settings `main.rs` gives it (freed pages back
/// within a second by a background thread, two arenas), as jemalloc itself reports them
/// when asked to confirm.
#[cfg(feature = "jemalloc")]
#[test]
fn the_binary_runs_on_jemalloc_with_its_settings() {
    let out = Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "confirm_conf:true")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = text(&out.stderr);
    for setting in [
        "background_thread:true",
        "dirty_decay_ms:1000",
        "muzzy_decay_ms:0",
        "narenas:2",
    ] {
        assert!(
            err.contains(&format!("Set conf value: {setting}")),
            "{setting} not set: {err}"
        );
    }
}
