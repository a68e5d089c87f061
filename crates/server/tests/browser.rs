//! A real browser test: headless Chromium drives the demo pages of `wxgate demo` (see
//! tests/browser/demo_browser.py). The test script installs chromium, chromedriver and
//! selenium; this test fails, never skips, when they are missing.

mod common;

use std::process::Command;

use common::{free_port, spawn_wxgate, wait_for_port, TempDir};

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
        ],
        port,
    );
    wait_for_port(sandbox_port);
    let shots = TempDir::new("screenshots");
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
    for shot in ["jssdk.png", "consent.png", "oauth.png"] {
        let len = std::fs::metadata(shots.path().join(shot))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 1000, "{shot} was taken");
    }
    if let Ok(dir) = std::env::var("SCREENSHOT_DIR") {
        for shot in ["jssdk.png", "consent.png", "oauth.png"] {
            let _ = std::fs::copy(
                shots.path().join(shot),
                std::path::Path::new(&dir).join(shot),
            );
        }
    }
}
