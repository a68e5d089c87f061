//! An operator of many accounts: the console's summary by state, failing accounts first,
//! search and pages; `/metrics` without a series per account; `wxgate status --failing`.
//! Run as a process, so that its metrics settings are its own.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use wxgate_sandbox::{Sandbox, SandboxConfig};

use crate::common::*;

const KEY: &str = "scale-console-key-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_pages_accounts_failing_first_and_metrics_stay_small() {
    let mut config = SandboxConfig::example();
    let template = config.apps[0].clone();
    let mut accounts = String::new();
    for i in 0..45 {
        let mut app = template.clone();
        app.appid = format!("wxscale{i:09}");
        app.secret = format!("scale-secret-{i:04}");
        accounts.push_str(&format!(
            "[accounts.a{i}]\nappid = \"{}\"\nsecret = \"{}\"\n",
            app.appid, app.secret
        ));
        config.apps.push(app);
    }
    accounts
        .push_str("[accounts.broken]\nappid = \"wxscale000000001\"\nsecret = \"not-its-secret\"\n");
    let sb = Sandbox::start_ephemeral(config).await.unwrap();
    let dir = TempDir::new("scale");
    let port = free_port();
    let toml = gateway_toml(
        &sb.base_url(),
        dir.path(),
        embedded(),
        "[metrics]\nper_account_labels = false",
        &format!("{accounts}[console]\nenabled = true\nadmin_key = \"{KEY}\"\n"),
    );
    let path = write_config(&dir, "wxgate.toml", &toml, port);
    let _server = spawn_wxgate(&["serve", "--config", &path], port);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let cookie = console_cookie(&http, &base, KEY).await;
    let overview = |query: &str| {
        let (http, cookie) = (http.clone(), cookie.clone());
        let url = format!("{base}/console/api/overview?{query}");
        async move {
            http.get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    // Every account refreshed but the broken one.
    let deadline = Instant::now() + Duration::from_secs(15);
    let v = loop {
        let v = overview("").await;
        if v["summary"]["access_token"]["ok"].as_u64() == Some(47) {
            break v;
        }
        assert!(Instant::now() < deadline, "{}", v["summary"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        v["summary"]["access_token"]["failing"], 1,
        "{}",
        v["summary"]
    );
    assert_eq!(v["total_accounts"], 48);
    assert_eq!(v["pages"], 3);
    let page = v["accounts"].as_array().unwrap();
    assert_eq!(page.len(), 20);
    assert_eq!(page[0]["name"], "broken", "failing first");
    assert_eq!(page[0]["state"], "failing");
    let last = overview("page=2").await;
    assert_eq!(last["accounts"].as_array().unwrap().len(), 8);
    // A page far past the end is empty, not an overflow.
    let beyond = overview(&format!("page={}", usize::MAX)).await;
    assert_eq!(beyond["accounts"].as_array().unwrap().len(), 0, "{beyond}");
    // Search by name and by appid.
    let found = overview("q=a4").await;
    let names: Vec<&str> = found["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a4", "a40", "a41", "a42", "a43", "a44"], "{found}");
    let by_appid = overview("q=wxscale000000017").await;
    assert_eq!(by_appid["accounts"][0]["name"], "a17");
    // One series per family, not one per account.
    // The gauge is published at the end of each refresher round.
    let deadline = Instant::now() + Duration::from_secs(5);
    let metrics = loop {
        let m = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if m.contains("wxgate_credentials{kind=\"access_token\",state=\"failing\"} 1") {
            break m;
        }
        assert!(Instant::now() < deadline, "{m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!metrics.contains("account=\"a1\""), "{metrics}");
    assert!(
        !metrics.contains("wxgate_credential_expires_at"),
        "{metrics}"
    );
    // `wxgate status --failing`: the broken account only.
    let out = Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .args(["status", "--config", &path, "--failing"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("broken"), "{said}");
    assert!(!said.lines().any(|l| l.starts_with("a1 ")), "{said}");
}
