//! The holes found by attacking a running wxgate over HTTP (the trust issue), beyond
//! pushes (`trust.rs`): the proxy's path and bodies, metrics labels, OAuth code replay
//! and dest origins, slow clients and connection floods, and anonymous requests that
//! spend WeChat calls. Each is driven as the attacker drove it.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use common::*;
use serde_json::{json, Value};
use wxgate::Clock;
use wxgate_sandbox::{Sandbox, SandboxConfig};

async fn sandbox() -> Sandbox {
    Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap()
}

async fn gateway(sb_url: &str, dir: &TempDir, top: &str, extra: &str) -> wxgate::gateway::Running {
    start_gateway(
        &gateway_toml(sb_url, dir.path(), embedded(), top, extra),
        Clock::system(),
    )
    .await
}

// 8. Double encoding does not escape api_base's path.

/// A stand-in WeChat under a path prefix that records every path it is asked for and
/// hands out a token for the stable_token call.
async fn recording_upstream() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |req: Request| {
        let log = log.clone();
        async move {
            let path = req.uri().path().to_owned();
            log.lock().unwrap().push(path.clone());
            if path.ends_with("/stable_token") {
                axum::Json(json!({"access_token": "TOKEN-UNDER-PREFIX", "expires_in": 7200}))
            } else {
                axum::Json(json!({"errcode": 0, "errmsg": "ok", "path": path}))
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/wechat"), seen)
}

#[tokio::test]
async fn the_proxy_stays_under_api_base_whatever_the_encoding() {
    let (base, seen) = recording_upstream().await;
    let dir = TempDir::new("proxy-path");
    let gw = gateway(&base, &dir, "", "").await;
    let http = reqwest::Client::new();
    let call = |path: &str| {
        http.get(format!("{}/api/v1/default/proxy/{path}", gw.url()))
            .bearer_auth(API_KEY)
            .send()
    };
    let ok = call("cgi-bin/user/get").await.unwrap();
    assert_eq!(ok.status(), 200);
    let v: Value = ok.json().await.unwrap();
    assert_eq!(v["path"], "/wechat/cgi-bin/user/get");
    for attack in [
        "%252e%252e/admin/clock",
        "%252E%252E/admin/clock",
        "%2e%2e/admin/clock",
        "..%252fadmin/clock",
        "cgi-bin/%252e%252e/%252e%252e/admin/clock",
        "%25252e%25252e/admin/clock",
        "a%5c..%5cadmin",
        "%252e/admin",
        "cgi-bin%2f..%2f..%2fadmin",
    ] {
        // (reqwest itself resolves a once-encoded `%2e%2e`: that one never reaches the
        // proxy route and is a 404.)
        let r = call(attack).await.unwrap();
        assert!(
            matches!(r.status().as_u16(), 400 | 404),
            "{attack}: {}",
            r.status()
        );
    }
    let paths = seen.lock().unwrap().clone();
    assert!(
        paths.iter().all(|p| p.starts_with("/wechat/")),
        "a call left the prefix: {paths:?}"
    );
    assert!(!paths.iter().any(|p| p.contains("admin")), "{paths:?}");
}

// 9. Metrics labels come from a fixed set.

#[tokio::test]
async fn made_up_proxy_paths_do_not_grow_the_metrics() {
    let sb = sandbox().await;
    let dir = TempDir::new("metrics");
    let gw = gateway(&sb.base_url(), &dir, "", "").await;
    let http = reqwest::Client::new();
    let scrape = || async {
        http.get(format!("{}/metrics", gw.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // Warm every label the calls below can touch.
    let warm = format!("{}/api/v1/default/proxy/zzwarm", gw.url());
    http.get(&warm).bearer_auth(API_KEY).send().await.unwrap();
    let before = scrape().await;
    for i in 0..200 {
        let made_up = format!("madeup{i}{}", "x".repeat(4000));
        let r = http
            .get(format!("{}/api/v1/default/proxy/{made_up}", gw.url()))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().as_u16() < 500 || r.status() == 503,
            "{}",
            r.status()
        );
        // Raw CR, NUL and other bytes a caller may write, encoded.
        let r = http
            .get(format!("{}/api/v1/default/proxy/a%0d%0a%00{i}", gw.url()))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    }
    let after = scrape().await;
    assert!(!after.contains("madeup"), "a made-up path became a label");
    assert!(!after.contains('\r') && !after.contains('\0'));
    assert!(
        after.len() < before.len() + 4096,
        "the scrape grew from {} to {} bytes",
        before.len(),
        after.len()
    );
    assert!(after.contains("endpoint=\"other\""), "{after}");
}

// 10. The proxy carries WeChat's uploads and binary answers.

fn multipart(boundary: &str, filename: &str, content_type: &str, data: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test]
async fn the_proxy_carries_a_10_mb_upload_and_binary_answers() {
    let sb = sandbox().await;
    let dir = TempDir::new("proxy-binary");
    let gw = gateway(&sb.base_url(), &dir, "", "").await;
    let http = reqwest::Client::new();
    let api = |path: &str| format!("{}/api/v1/default/proxy/{path}", gw.url());

    // A 10 MB image (WeChat's limit), every byte value, multipart, through the proxy.
    let image: Vec<u8> = (0..10 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
    let boundary = "wxgateBoundary7MA4YWxk";
    let r = http
        .post(api("cgi-bin/media/upload?type=image"))
        .bearer_auth(API_KEY)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(multipart(boundary, "big.jpg", "image/jpeg", &image))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "image", "{v}");
    let media_id = v["media_id"].as_str().unwrap().to_owned();

    // Downloaded back through the proxy: the same bytes, type and file name.
    let r = http
        .get(api(&format!("cgi-bin/media/get?media_id={media_id}")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("big.jpg"));
    let back = r.bytes().await.unwrap();
    assert!(
        back.as_ref() == image.as_slice(),
        "the file came back changed"
    );

    // A Mini Program code: an image answer with its content type.
    let r = http
        .post(api("wxa/getwxacodeunlimit"))
        .bearer_auth(API_KEY)
        .json(&json!({"scene": "order=42", "page": "pages/index/index"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert!(r.bytes().await.unwrap().starts_with(b"\x89PNG\r\n\x1a\n"));
    // Its JSON error stays JSON.
    let r = http
        .post(api("wxa/getwxacodeunlimit"))
        .bearer_auth(API_KEY)
        .json(&json!({"scene": "x".repeat(33)}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errcode"], 40169);

    // Over the configured limit: 413, and nothing reaches WeChat.
    let uploads = sandbox_calls(&sb, "/cgi-bin/media/upload", OA);
    let r = http
        .post(api("cgi-bin/media/upload?type=image"))
        .bearer_auth(API_KEY)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(vec![b'a'; (16 << 20) + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Without a key, a large body is refused before it is read.
    let r = http
        .post(api("cgi-bin/media/upload?type=image"))
        .body(vec![b'a'; 4 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(sandbox_calls(&sb, "/cgi-bin/media/upload", OA), uploads);
}
