//! The signature-debugging CLI, driven as a user drives it: arguments, stdin, stdout,
//! stderr and the exit code, with WeChat's published examples.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("../../../proto/tests/data/official.json")).unwrap()
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn wxgate(args: &[&str], stdin: &str) -> Out {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails on its arguments exits before reading stdin: a broken pipe
    // here is expected, and the exit status below tells the story.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

#[test]
fn sign_server_prints_the_documented_signature() {
    let o = wxgate(
        &[
            "sign",
            "server",
            "--token",
            "AAAAA",
            "--timestamp",
            "1714036504",
            "--nonce",
            "1514711492",
        ],
        "",
    );
    assert!(o.ok, "{}", o.stderr);
    assert_eq!(o.stdout, "f464b24fc39322e44b38aa78f5edd27bd1441696\n");
}

#[test]
fn sign_jssdk_with_explain() {
    let v = vectors();
    let e = &v["jssdk"][0];
    let ts = e["timestamp"].to_string();
    let args = [
        "sign",
        "jssdk",
        "--ticket",
        e["jsapi_ticket"].as_str().unwrap(),
        "--noncestr",
        e["noncestr"].as_str().unwrap(),
        "--timestamp",
        &ts,
        "--url",
        "http://mp.weixin.qq.com?params=value#top",
    ];
    let o = wxgate(&args, "");
    assert!(o.ok);
    assert_eq!(o.stdout, "0f9de62fce790f9a083d5c99e95740ceb90c27ed\n");
    let mut explain = args.to_vec();
    explain.push("--explain");
    let o = wxgate(&explain, "");
    assert!(o
        .stdout
        .contains(&format!("string1: {}\n", e["string1"].as_str().unwrap())));
    assert!(o.stdout.contains("#fragment is not signed"));
    assert!(o
        .stdout
        .contains("signature: 0f9de62fce790f9a083d5c99e95740ceb90c27ed"));
}

#[test]
fn crypto_decrypt_the_official_sample_with_its_signature() {
    let v = vectors();
    let e = &v["msg_crypt"][0];
    let s = |k: &str| e[k].as_str().unwrap().to_owned();
    let base = [
        "crypto",
        "decrypt",
        "--aes-key",
        &s("encoding_aes_key"),
        "--app-id",
        &s("appid"),
    ];
    let mut args: Vec<String> = base.iter().map(|x| x.to_string()).collect();
    args.extend(
        [
            "--token",
            &s("token"),
            "--msg-signature",
            &s("msg_signature"),
            "--timestamp",
            &s("timestamp"),
            "--nonce",
            &s("nonce"),
        ]
        .iter()
        .map(|x| x.to_string()),
    );
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = wxgate(&argv, &s("body"));
    assert!(o.ok, "{}", o.stderr);
    assert_eq!(o.stdout.trim_end(), s("expected_plaintext"));

    // A bare Encrypt value works too.
    let o = wxgate(&base, &s("encrypt"));
    assert_eq!(o.stdout.trim_end(), s("expected_plaintext"));

    // A wrong signature is a clear error and a non-zero exit.
    let mut bad = argv.clone();
    let i = bad.iter().position(|a| *a == "--msg-signature").unwrap();
    bad[i + 1] = "5d197aaffba7e9b25a30732f161a50dee96bd5fb";
    let o = wxgate(&bad, &s("body"));
    assert!(!o.ok);
    assert!(o.stdout.is_empty());
    assert!(o.stderr.contains("signature mismatch"), "{}", o.stderr);
    assert!(o.stderr.contains("-40001"), "{}", o.stderr);

    // A wrong appid names the appid the message was for.
    let o = wxgate(
        &[
            "crypto",
            "decrypt",
            "--aes-key",
            &s("encoding_aes_key"),
            "--app-id",
            "wxother",
        ],
        &s("encrypt"),
    );
    assert!(!o.ok);
    assert!(o.stderr.contains("wx2c2769f8efd9abc2"), "{}", o.stderr);

    // A wrong key length is explained.
    let o = wxgate(
        &["crypto", "decrypt", "--aes-key", "short", "--app-id", "wx"],
        &s("encrypt"),
    );
    assert!(!o.ok);
    assert!(o.stderr.contains("43 characters"), "{}", o.stderr);
}

#[test]
fn crypto_encrypt_then_decrypt() {
    let key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    let msg = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>1</MsgId></xml>";
    let o = wxgate(
        &[
            "crypto",
            "encrypt",
            "--aes-key",
            key,
            "--app-id",
            "wx1",
            "--token",
            "tok",
            "--timestamp",
            "1700000000",
            "--nonce",
            "n1",
            "--show-query",
        ],
        msg,
    );
    assert!(o.ok, "{}", o.stderr);
    let mut lines = o.stdout.lines();
    let envelope = lines.next().unwrap();
    let query = lines.next().unwrap();
    assert!(
        envelope.starts_with("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[")
    );
    assert!(query.contains("encrypt_type=aes"));
    let msg_signature = query.split("msg_signature=").nth(1).unwrap();
    let o = wxgate(
        &[
            "crypto",
            "decrypt",
            "--aes-key",
            key,
            "--app-id",
            "wx1",
            "--token",
            "tok",
            "--msg-signature",
            msg_signature,
            "--timestamp",
            "1700000000",
            "--nonce",
            "n1",
        ],
        envelope,
    );
    assert!(o.ok, "{}", o.stderr);
    assert_eq!(o.stdout.trim_end(), msg);
    // Not XML on stdin: a clear error.
    let o = wxgate(
        &[
            "crypto",
            "encrypt",
            "--aes-key",
            key,
            "--app-id",
            "wx1",
            "--token",
            "tok",
        ],
        "not xml <",
    );
    assert!(!o.ok);
    assert!(o.stderr.starts_with("error: "));
}

#[test]
fn miniprogram_decrypt_and_verify_the_demo() {
    let v = vectors();
    let d = &v["miniprogram_decrypt"][0];
    let s = |k: &str| d[k].as_str().unwrap().to_owned();
    let o = wxgate(
        &[
            "miniapp", // the older name, still accepted
            "decrypt",
            "--session-key",
            &s("session_key"),
            "--iv",
            &s("iv"),
            "--app-id",
            &s("appid"),
        ],
        &s("encrypted_data"),
    );
    assert!(o.ok, "{}", o.stderr);
    assert_eq!(o.stdout.trim_end(), s("expected_plaintext"));
    let o = wxgate(
        &[
            "miniprogram",
            "decrypt",
            "--session-key",
            "HyVFkGl5F5OQWJZZaNzBBg==",
            "--iv",
            &s("iv"),
            "--app-id",
            &s("appid"),
        ],
        &s("encrypted_data"),
    );
    assert!(!o.ok);
    assert!(o.stderr.contains("session_key"), "{}", o.stderr);
    let o = wxgate(
        &[
            "miniprogram",
            "decrypt",
            "--session-key",
            &s("session_key"),
            "--iv",
            &s("iv"),
            "--app-id",
            "wxother",
        ],
        &s("encrypted_data"),
    );
    assert!(!o.ok);
    assert!(o.stderr.contains("watermark"), "{}", o.stderr);

    let r = &v["miniprogram_rawdata_signature"][0];
    let raw = format!("{}\n", r["raw_data"].as_str().unwrap());
    let o = wxgate(
        &[
            "miniprogram",
            "verify",
            "--session-key",
            r["session_key"].as_str().unwrap(),
            "--signature",
            r["signature"].as_str().unwrap(),
        ],
        &raw,
    );
    assert!(o.ok, "{}", o.stderr);
    assert_eq!(o.stdout, "valid\n");
    let o = wxgate(
        &[
            "miniprogram",
            "verify",
            "--session-key",
            r["session_key"].as_str().unwrap(),
            "--signature",
            "75e81ceda165f4ffa64f4068af58c64b8f54b88d",
        ],
        &raw,
    );
    assert!(!o.ok);
    assert!(o
        .stderr
        .contains("75e81ceda165f4ffa64f4068af58c64b8f54b88c"));
}

#[test]
fn usage_errors_exit_non_zero() {
    let o = wxgate(&["sign", "server", "--token", "x"], "");
    assert!(!o.ok);
    assert!(o.stderr.contains("--timestamp"));
}
