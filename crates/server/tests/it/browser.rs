//! A real browser test: headless Chromium drives the demo pages of `wxgate demo` (see
//! tests/browser/demo_browser.py). The test script installs chromium, chromedriver and
//! selenium; this test fails, never skips, when they are missing.

use crate::common;

use std::process::Command;

use common::{free_port, spawn_wxgate, wait_for_port};

/// A folder that outlives the test.
struct KeptDir(std::path::PathBuf);

impl KeptDir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

const CONSOLE_KEY: &str = "browser-test-console-key-0123";

/// The screenshots the script takes, each checked to exist.
const SHOTS: &[&str] = &[
    "jssdk.png",
    "consent.png",
    "oauth.png",
    "chat.png",
    "miniprogram.png",
    "pay.png",
    "component-consent.png",
    "component.png",
    "console.png",
    "console-refreshed.png",
];

#[test]
fn the_demo_works_in_a_real_browser() {
    let (port, sandbox_port) = (free_port(), free_port());
    let _demo = spawn_wxgate(
        &[
            "demo",
            "--port",
            &port.to_string(),
            "--sandbox-port",
            &sandbox_port.to_string(),
            "--console-key",
            CONSOLE_KEY,
        ],
        port,
    );
    wait_for_port(sandbox_port);
    // The test's output folder: kept after the run (target/tmp/screenshots).
    let shots_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots_dir).unwrap();
    let shots = KeptDir(shots_dir);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/browser/demo_browser.py"
    );
    let out = Command::new("python3")
        .args([
            script,
            &format!("http://127.0.0.1:{port}"),
            &format!("http://127.0.0.1:{sandbox_port}"),
            shots.path().to_str().unwrap(),
            CONSOLE_KEY,
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "browser test failed (scripts/install-deps.sh installs chromium, chromedriver, selenium):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["jssdk_jsonp"], "config:ok");
    assert_eq!(v["jssdk_fetch"], "config:ok");
    assert_eq!(v["nickname"], "Band");
    assert_eq!(v["openid"], "oSandboxUser000000000000001");
    assert_eq!(v["return_visit_consent_pages"], 0);
    assert!(v["chat_reply"]
        .as_str()
        .is_some_and(|r| r.contains("you said hello")));
    assert_eq!(v["mp_openid"], "oMiniUser00000000000000001");
    assert_eq!(v["mp_session_check"], "valid");
    let delivered = v["pay_delivered"].as_str().unwrap_or("");
    assert!(
        delivered.starts_with("TRANSACTION.SUCCESS for DEMO-")
            && delivered.contains("1.00 CNY, signature verified (1 time)"),
        "{v}"
    );
    assert!(
        v["pay_notification"]
            .as_str()
            .unwrap_or("")
            .contains("accepted (204)"),
        "{v}"
    );
    assert_eq!(v["component_authorizer"], "wxsandbox0000001", "{v}");
    assert_eq!(
        v["component_jssdk"], "config:ok",
        "the merchant's JS-SDK signed by the platform: {v}"
    );
    assert_eq!(
        v["component_reply"],
        "Hello from the platform, on behalf of the merchant (sealed with the platform's key)",
        "{v}"
    );
    assert_eq!(
        v["console_accounts"],
        serde_json::json!(["default", "mini"])
    );
    assert_eq!(v["console_token_lifetime"], 7200);
    assert!(v["console_pushes_seen"].as_u64() >= Some(5), "{v}");
    let refresh_calls = v["console_refresh_fetches"].as_u64().unwrap_or(0);
    assert!((1..=2).contains(&refresh_calls), "{v}");
    for shot in SHOTS {
        let len = std::fs::metadata(shots.path().join(shot))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 1000, "{shot} was taken");
    }
    if let Ok(dir) = std::env::var("SCREENSHOT_DIR") {
        for shot in SHOTS {
            let _ = std::fs::copy(
                shots.path().join(shot),
                std::path::Path::new(&dir).join(shot),
            );
        }
    }
}
