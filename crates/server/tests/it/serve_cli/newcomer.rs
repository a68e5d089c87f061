//! A newcomer's first hour, as the README's quick start tells it: `wxgate init`, paste
//! what it prints, `wxgate check --online`, `wxgate serve`, and WeChat's URL
//! verification and a safe-mode push with the printed Token and EncodingAESKey. Then
//! what `check --online` says of a wrong secret and of an address outside the IP
//! whitelist, and the docs' snippets and links held to the code.

use std::process::{Command, Output};

use wxgate_sandbox::pusher::{push, MessageMode, PushOptions, PushTarget};
use wxgate_sandbox::{messages, Sandbox, SandboxConfig};

use crate::common::*;

fn wxgate(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("wxgate runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The value printed after `label` on a line of `out`.
fn printed(out: &str, label: &str) -> String {
    out.lines()
        .find_map(|l| l.split_once(label).map(|(_, v)| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("{label:?} not printed:\n{out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_paste_check_serve_verify_and_push() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let dir = TempDir::new("newcomer");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let out = wxgate(
        &[
            "init",
            "--sandbox",
            "--sandbox-url",
            &sb.base_url(),
            "--listen",
            &listen,
            "--out",
            "wxgate.toml",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    let token = printed(&said, "Token (令牌):");
    let aes_key = printed(&said, "EncodingAESKey (消息加解密密钥):");
    let url = printed(&said, "URL (服务器地址):");
    assert_eq!(url, format!("http://{listen}/wx/service"));
    assert_eq!(aes_key.len(), 43);
    assert!(said.contains("安全模式"), "{said}");
    // It does not overwrite what it wrote.
    let again = wxgate(&["init", "--sandbox", "--out", "wxgate.toml"], dir.path());
    assert!(!again.status.success());

    let check = wxgate(
        &["check", "--config", "wxgate.toml", "--online"],
        dir.path(),
    );
    assert!(
        check.status.success(),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    assert!(
        text(&check.stdout).contains("default"),
        "{}",
        text(&check.stdout)
    );

    let config = dir.path().join("wxgate.toml");
    let child = Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _running = Running(child);
    wait_for_port(port);

    // WeChat's URL verification with the printed Token.
    let (ts, nonce) = (now().to_string(), "newcomer-nonce");
    let signature = wxgate_proto::signature::server_signature(&token, &ts, nonce);
    let echo = reqwest::get(format!(
        "{url}?signature={signature}&timestamp={ts}&nonce={nonce}&echostr=hello-wechat"
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert_eq!(echo, "hello-wechat");

    // A safe-mode push sealed with the printed EncodingAESKey.
    let app = &SandboxConfig::example().apps[0];
    let target = PushTarget {
        url,
        token,
        appid: app.appid.clone(),
        encoding_aes_key: Some(aes_key),
        mode: MessageMode::Safe,
        format: Default::default(),
    };
    let msg = messages::sample(
        "text",
        &app.original_id,
        "oNewcomer01",
        now(),
        1,
        Some("hi"),
    )
    .unwrap();
    let answer = push(
        &reqwest::Client::new(),
        &target,
        &msg,
        &PushOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_online_names_a_wrong_secret_and_the_ip_wechat_saw() {
    let mut config = SandboxConfig::example();
    // The official account accepts calls from 10.1.2.3 only; the Mini Program's secret
    // in the gateway's file is wrong.
    config.apps[0].ip_whitelist = vec!["10.1.2.3".into()];
    let sb = Sandbox::start_ephemeral(config).await.unwrap();
    let dir = TempDir::new("check-online");
    let toml = gateway_toml(&sb.base_url(), dir.path(), embedded(), "", "").replace(
        "secret = \"sandbox-secret-miniapp-0001\"",
        "secret = \"a-wrong-secret-000000001\"",
    );
    let path = dir.path().join("wxgate.toml");
    std::fs::write(&path, toml).unwrap();
    let out = wxgate(
        &["check", "--config", path.to_str().unwrap(), "--online"],
        dir.path(),
    );
    assert!(!out.status.success());
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let default = said
        .lines()
        .find(|l| l.starts_with("default"))
        .unwrap_or_default();
    assert!(
        default.contains("40164") && default.contains("127.0.0.1") && default.contains("IP白名单"),
        "{said}"
    );
    let mini = said
        .lines()
        .find(|l| l.starts_with("mini"))
        .unwrap_or_default();
    assert!(mini.contains("40125") || mini.contains("40001"), "{said}");
    for secret in [OA_SECRET, "a-wrong-secret-000000001", API_KEY] {
        assert!(!said.contains(secret), "a secret printed:\n{said}");
    }
}

#[test]
fn check_names_every_missing_variable_and_refuses_wxgate_names() {
    let dir = TempDir::new("check-env");
    let path = dir.path().join("wxgate.toml");
    std::fs::write(
        &path,
        "[accounts.default]\nappid = \"wx1\"\nsecret = { env = \"NEWCOMER_UNSET_A\" }\ntoken = { env = \"NEWCOMER_UNSET_B\" }\n\n[console]\nenabled = true\nadmin_key = { env = \"WXGATE_CONSOLE_KEY\" }\n",
    )
    .unwrap();
    let out = wxgate(&["check", "--config", path.to_str().unwrap()], dir.path());
    assert!(!out.status.success());
    let err = text(&out.stderr);
    for name in ["NEWCOMER_UNSET_A", "NEWCOMER_UNSET_B", "WXGATE_CONSOLE_KEY"] {
        assert!(err.contains(name), "{name} not named:\n{err}");
    }
    assert!(
        err.contains("override"),
        "says why a WXGATE_ name is refused:\n{err}"
    );
}

/// Every ```toml block of the README and `docs/`, as a user would paste it into a
/// config: with an account added when it has none, and its `{ env = ... }` variables set.
#[test]
fn every_toml_snippet_in_the_docs_passes_check() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let mut pages = vec![std::path::PathBuf::from(format!("{root}/README.md"))];
    for e in std::fs::read_dir(format!("{root}/docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            pages.push(p);
        }
    }
    let dir = TempDir::new("snippets");
    let mut checked = 0;
    for page in &pages {
        let body = std::fs::read_to_string(page).unwrap();
        for (i, block) in body.split("```toml\n").skip(1).enumerate() {
            let snippet = block.split("```").next().unwrap();
            let mut toml = snippet.to_owned();
            if !toml.contains("[accounts.") {
                toml.push_str(
                    "\n[accounts.default]\nappid = \"wx0123456789abcdef\"\nsecret = \"an-app-secret\"\n",
                );
            }
            let path = dir.path().join(format!("snippet-{checked}.toml"));
            std::fs::write(&path, &toml).unwrap();
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_wxgate"));
            cmd.args(["check", "--config", path.to_str().unwrap()]);
            // Each referenced variable set as its user would: an EncodingAESKey is 43
            // characters, anything else a long enough secret.
            for line in toml.lines() {
                let Some(name) = line
                    .split("env = \"")
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                else {
                    continue;
                };
                let value = if line.trim_start().starts_with("encoding_aes_key") {
                    "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
                } else if line.trim_start().starts_with("apiv3_key") {
                    "an-apiv3-key-of-32-characters-00"
                } else {
                    "a-value-of-sixteen-characters-or-more"
                };
                cmd.env(name, value);
            }
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "{} snippet {i} fails `wxgate check`: {}\n{snippet}",
                page.display(),
                text(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} snippets found");
}

/// Every relative link of the README and `docs/` leads to a file that exists.
#[test]
fn every_relative_link_in_the_docs_leads_somewhere() {
    let root = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let mut pages = vec![root.join("README.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            pages.push(p);
        }
    }
    let mut links = 0;
    for page in &pages {
        let body = std::fs::read_to_string(page).unwrap();
        for target in body.split("](").skip(1).filter_map(|s| s.split(')').next()) {
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let file = target.split('#').next().unwrap();
            let resolved = page.parent().unwrap().join(file);
            assert!(
                resolved.exists(),
                "{}: the link {target:?} leads nowhere",
                page.display()
            );
            links += 1;
        }
    }
    assert!(links >= 10, "only {links} links found");
}

#[test]
fn the_readme_is_a_first_page_not_the_manual() {
    let readme = include_str!("../../../../../README.md");
    let lines = readme.lines().count();
    assert!(lines < 200, "README has {lines} lines");
}

/// At run time, WeChat refusing the server's IP is one clear error, a metric and a
/// banner on the console naming the address, not a warning per fetch.
#[tokio::test]
async fn a_refused_ip_is_named_on_the_console_and_counted() {
    let mut config = SandboxConfig::example();
    config.apps[0].ip_whitelist = vec!["10.1.2.3".into()];
    let sb = Sandbox::start_ephemeral(config).await.unwrap();
    let key = "console-admin-key-0123456789";
    let h = Setup::new()
        .tag("ip-refused")
        .sandbox(sb)
        .extra(&format!(
            "[console]\nenabled = true\nadmin_key = \"{key}\"\n"
        ))
        .start()
        .await;
    let http = reqwest::Client::new();
    // Asked for a token: WeChat says 40164.
    let (status, v) = api_get(&http, h.url("/api/v1/default/token")).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["errcode"], 40164, "{v}");
    let cookie = console_cookie(&http, &h.gw.url(), key).await;
    let overview: serde_json::Value = http
        .get(h.url("/console/api/overview"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refused = &overview["ip_not_whitelisted"];
    assert_eq!(refused[0]["account"], "default", "{overview}");
    assert_eq!(refused[0]["ip"], "127.0.0.1", "{overview}");
    assert_eq!(refused[0]["errcode"], 40164, "{overview}");
    assert_eq!(
        refused.as_array().unwrap().len(),
        1,
        "the Mini Program is fine"
    );
    let metrics = metrics_text(&h.gw.url()).await;
    assert!(
        metrics.contains("wxgate_ip_not_whitelisted_total{account=\"default\"}"),
        "{metrics}"
    );
    // One broken account does not take the instance out of its load balancer (the
    // default readiness): ready, with the account named as failing.
    let (status, ready) = api_get(&http, h.url("/readyz")).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["failing"], serde_json::json!(["default"]), "{ready}");
    assert_eq!(ready["accounts"]["mini"]["ok"], true, "{ready}");
}
