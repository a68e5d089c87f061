//! The holes found by attacking a running wxgate over HTTP (the trust issue), beyond
//! pushes (`trust.rs`): the proxy's path and bodies, metrics labels, OAuth code replay
//! and dest origins, slow clients and connection floods, and anonymous requests that
//! spend WeChat calls. Each is driven as the attacker drove it.

use crate::common;

mod round_two;

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use common::*;
use serde_json::{json, Value};
use wxgate::Clock;
use wxgate_sandbox::{Sandbox, SandboxConfig};

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
    let h = Setup::new().tag("proxy-path").upstream(&base).start().await;
    let gw = &h.gw;
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
    let h = Setup::new().tag("metrics").start().await;
    let gw = &h.gw;
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
    let h = Setup::new().tag("proxy-binary").start().await;
    let (sb, gw) = (&h.sb, &h.gw);
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
    let uploads = sandbox_calls(sb, "/cgi-bin/media/upload", OA);
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
    // Its body unread, the connection closes, and the answer says so (a client does not
    // send its next request on it); the client read the answer, not a reset.
    assert_eq!(r.headers()["connection"], "close");
    assert_eq!(sandbox_calls(sb, "/cgi-bin/media/upload", OA), uploads);
}

// 6 and 7. OAuth: a leaked code does not log the attacker in; dests are origins.

const AUTH_SECRET: &str = "trust-test-auth-secret-0123456789";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// The `name=value` of every Set-Cookie of an answer.
fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect()
}

/// One browser's start of a flow: the binding cookie it got, and the callback URL
/// WeChat sends it back to (the code and state in it).
async fn start_flow(http: &reqwest::Client, gw: &str, dest: &str) -> (String, String) {
    let r = http
        .get(format!("{gw}/wx/auth?dest={}&scope=snsapi_base", enc(dest)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let binding = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("wxgate_oauth_"))
        .expect("the start binds the flow to the browser");
    let authorize = location(&r);
    let r = http
        .get(authorize.split('#').next().unwrap())
        .send()
        .await
        .unwrap();
    (binding, location(&r))
}

fn param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

#[tokio::test]
async fn a_leaked_code_does_not_log_the_attacker_in_as_the_victim() {
    let h = Setup::new()
        .tag("oauth-replay")
        .extra(&format!("[auth]\nsecret = \"{AUTH_SECRET}\"\n"))
        .start()
        .await;
    let (sb, gw) = (&h.sb, &h.gw);
    let http = no_redirects();
    let dest = format!("{}/demo/oauth.html", gw.url());

    // The victim logs in.
    let (victim_binding, victim_callback) = start_flow(&http, &gw.url(), &dest).await;
    let r = http
        .get(&victim_callback)
        .header("cookie", &victim_binding)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let victim_info = param(&location(&r), "userinfo");
    assert!(victim_info.contains("openid"), "{victim_info}");
    assert!(set_cookies(&r)
        .iter()
        .any(|c| c.starts_with("wechat_jssdk_server_openid=")));
    let exchanges = sandbox_calls(sb, "/sns/oauth2/access_token", OA);

    // The attacker has the victim's code (a log, a Referer) and starts a flow of their
    // own for a fresh state, then presents the victim's code with it.
    let (attacker_binding, attacker_callback) = start_flow(&http, &gw.url(), &dest).await;
    let victim_code = param(&victim_callback, "code");
    let mut forged = url::Url::parse(&attacker_callback).unwrap();
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "code" {
                victim_code.clone()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let r = http
        .get(forged.as_str())
        .header("cookie", &attacker_binding)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let back = location(&r);
    assert!(
        !back.contains("userinfo="),
        "the attacker got a userinfo: {back}"
    );
    assert!(back.contains("error="), "{back}");
    assert!(
        !set_cookies(&r)
            .iter()
            .any(|c| c.starts_with("wechat_jssdk_server_openid=")),
        "the attacker's browser got a login cookie"
    );
    // WeChat was asked, and refused the used code.
    assert_eq!(
        sandbox_calls(sb, "/sns/oauth2/access_token", OA),
        exchanges + 1
    );

    // A reload of the victim's own callback URL by another browser (no binding): the
    // first result, but no login cookie. The victim's own reload: the cookie again.
    let r = http.get(&victim_callback).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert!(set_cookies(&r)
        .iter()
        .all(|c| !c.starts_with("wechat_jssdk_server_openid=")));
    let forged_binding = format!(
        "{}=forged-binding-value",
        victim_binding.split('=').next().unwrap()
    );
    let r = http
        .get(&victim_callback)
        .header("cookie", &forged_binding)
        .send()
        .await
        .unwrap();
    assert!(set_cookies(&r)
        .iter()
        .all(|c| !c.starts_with("wechat_jssdk_server_openid=")));
    let r = http
        .get(&victim_callback)
        .header("cookie", &victim_binding)
        .send()
        .await
        .unwrap();
    assert!(set_cookies(&r)
        .iter()
        .any(|c| c.starts_with("wechat_jssdk_server_openid=")));
    assert_eq!(param(&location(&r), "userinfo"), victim_info);
    assert_eq!(
        sandbox_calls(sb, "/sns/oauth2/access_token", OA),
        exchanges + 1,
        "reloads are answered from the cache"
    );
}

#[tokio::test]
async fn dests_are_origins_not_hosts() {
    let h = Setup::new()
        .tag("oauth-origins")
        .extra(&format!("[auth]\nsecret = \"{AUTH_SECRET}\"\n"))
        .default_account("auth_dest_hosts = [\"127.0.0.1\"]")
        .start()
        .await;
    let gw = &h.gw;
    let port = h.port;
    let http = no_redirects();
    // A remembered user (a valid cookie) asking for a dest on the allowed host's other
    // ports: refused; a bare host means its default ports only.
    let own = format!("http://127.0.0.1:{port}/demo/oauth.html");
    let (binding, callback) = start_flow(&http, &gw.url(), "http://127.0.0.1/page").await;
    let r = http
        .get(&callback)
        .header("cookie", &binding)
        .send()
        .await
        .unwrap();
    let cookie = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("wechat_jssdk_server_openid="))
        .unwrap();
    for dest in [
        "http://127.0.0.1:9999/steal",
        own.as_str(),
        "https://127.0.0.1:8443/",
    ] {
        let r = http
            .get(format!(
                "{}/wx/auth?dest={}&scope=snsapi_base",
                gw.url(),
                enc(dest)
            ))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{dest}");
        assert!(!r.text().await.unwrap().contains("openid"));
    }
    for dest in ["http://127.0.0.1/page", "https://127.0.0.1/page"] {
        let r = http
            .get(format!(
                "{}/wx/auth?dest={}&scope=snsapi_base",
                gw.url(),
                enc(dest)
            ))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "{dest}");
        assert!(
            location(&r).starts_with(dest),
            "straight back: {}",
            location(&r)
        );
    }
}

#[tokio::test]
async fn an_https_public_url_sends_users_back_over_https_only() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let dir = TempDir::new("oauth-https");
    let toml = gateway_toml(
        &sb.base_url(),
        dir.path(),
        embedded(),
        "",
        &format!("[auth]\nsecret = \"{AUTH_SECRET}\"\n"),
    )
    .replace(
        "public_url = \"http://127.0.0.1:18340\"",
        "public_url = \"https://wx.example.com\"",
    )
    .replace(
        "mode = \"safe\"\n",
        "mode = \"safe\"\nauth_dest_hosts = [\"wx.example.com\"]\n",
    );
    let gw = start_gateway(&toml, Clock::system()).await;
    let http = no_redirects();
    let r = http
        .get(format!(
            "{}/wx/auth?dest={}",
            gw.url(),
            enc("http://wx.example.com/page")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .get(format!(
            "{}/wx/auth?dest={}",
            gw.url(),
            enc("https://wx.example.com/page")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    // The binding cookie is Secure under an https public_url.
    let raw: Vec<_> = r.headers().get_all("set-cookie").iter().collect();
    assert!(raw.iter().any(|v| v.to_str().unwrap().contains("; Secure")));

    // `wxgate check` refuses an explicit http origin beside an https public_url.
    let unsafe_toml = toml.replace(
        "auth_dest_hosts = [\"wx.example.com\"]",
        "auth_dest_hosts = [\"http://wx.example.com\"]",
    );
    let path = dir.path().join("unsafe.toml");
    std::fs::write(&path, unsafe_toml).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .args(["check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("auth_dest_hosts") && said.contains("plain-http"),
        "{said}"
    );
}

// 11. Slow clients and connection floods.

const SLOW: &str =
    "[server]\nheader_read_timeout_ms = 1000\nbody_read_timeout_ms = 1000\nmax_connections = 50\n";

/// Reads until the server closes the connection (or `within` passes): how long it took,
/// and what it said.
fn read_until_closed(
    stream: &mut std::net::TcpStream,
    within: std::time::Duration,
) -> (std::time::Duration, String) {
    use std::io::Read;
    let started = std::time::Instant::now();
    stream
        .set_read_timeout(Some(std::time::Duration::from_millis(100)))
        .unwrap();
    let mut said = Vec::new();
    let mut buf = [0u8; 1024];
    while started.elapsed() < within {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => said.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    (
        started.elapsed(),
        String::from_utf8_lossy(&said).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_header_or_body_is_cut_off() {
    use std::io::Write;
    let h = Setup::new().tag("slowloris").top(SLOW).start().await;
    let gw = &h.gw;
    let addr = gw.addr;
    tokio::task::spawn_blocking(move || {
        // One header line every 300 ms, for ever: closed after the 1 s header deadline.
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
        let started = std::time::Instant::now();
        let mut closed = false;
        for i in 0..40 {
            std::thread::sleep(std::time::Duration::from_millis(300));
            if s.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes()).is_err() {
                closed = true;
                break;
            }
            let (_, said) = read_until_closed(&mut s, std::time::Duration::from_millis(1));
            if !said.is_empty() {
                closed = true;
                break;
            }
        }
        let held = started.elapsed();
        assert!(closed, "a trickled header held the connection for {held:?}");
        assert!(held < std::time::Duration::from_secs(5), "held {held:?}");

        // A body trickled a byte at a time: 408 within the body deadline.
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"POST /wx/service?signature=x&timestamp=1&nonce=n HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n<xml>").unwrap();
        let (took, said) = read_until_closed(&mut s, std::time::Duration::from_secs(5));
        // (the push is refused on its window before its body is read: that is a 403)
        assert!(said.starts_with("HTTP/1.1 4"), "{said}");
        assert!(took < std::time::Duration::from_secs(3), "{took:?}");
    })
    .await
    .unwrap();

    // A proxied upload trickled: 408, not a connection held for ever.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(format!("POST /api/v1/default/proxy/cgi-bin/media/upload?type=image HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\nContent-Length: 100000\r\n\r\nabc").as_bytes())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut said = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut said))
        .await
        .expect("answered within the body deadline")
        .unwrap();
    let said = String::from_utf8_lossy(&said[..n]).to_string();
    assert!(said.starts_with("HTTP/1.1 408"), "{said}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}

/// Sends `chunk` on `s` until a write fails or `limit` passes; the bytes it took.
fn send_until_closed(
    s: &mut std::net::TcpStream,
    chunk: &[u8],
    pause_ms: u64,
    limit: std::time::Duration,
) -> usize {
    use std::io::Write;
    let started = std::time::Instant::now();
    let mut sent = 0;
    while started.elapsed() < limit {
        match s.write(chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
        std::thread::sleep(std::time::Duration::from_millis(pause_ms));
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_after_its_refusal_is_read_for_a_bounded_time_and_size() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let h = Setup::new().tag("linger").start().await;
    let addr = h.gw.addr;
    let refused = "POST /api/v1/default/proxy/cgi-bin/media/upload?type=image HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n";
    tokio::task::spawn_blocking(move || {
        // As fast as loopback takes it: the 401 comes at once and says the connection
        // closes; the server then reads and drops what follows, up to 64 MiB, and closes.
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(refused.as_bytes()).unwrap();
        let mut head = [0u8; 512];
        let n = s.read(&mut head).unwrap();
        let said = String::from_utf8_lossy(&head[..n]).to_lowercase();
        assert!(said.starts_with("http/1.1 401"), "{said}");
        assert!(said.contains("connection: close"), "{said}");
        s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        let started = Instant::now();
        let sent = send_until_closed(&mut s, &[b'a'; 64 << 10], 0, Duration::from_secs(20));
        let took = started.elapsed();
        // Past what socket buffers hold (so it was read), and not much past the cap.
        assert!(
            sent > 16 << 20,
            "only {sent} bytes taken: no lingering read"
        );
        assert!(sent < 80 << 20, "{sent} bytes taken: the cap is 64 MiB");
        assert!(took < Duration::from_secs(8), "{took:?}");

        // A trickle after the refusal: closed once the 5 s linger passes.
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(refused.as_bytes()).unwrap();
        let n = s.read(&mut head).unwrap();
        assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 401"));
        let started = Instant::now();
        send_until_closed(&mut s, &[b'a'; 1024], 200, Duration::from_secs(20));
        let took = started.elapsed();
        assert!(
            took > Duration::from_secs(4) && took < Duration::from_secs(9),
            "{took:?}"
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_half_sent_requests_are_bounded_and_closed() {
    use std::io::Write;
    let h = Setup::new().tag("halfsent").top(SLOW).start().await;
    let gw = &h.gw;
    let addr = gw.addr;
    let url = format!("{}/healthz", gw.url());
    // From a host of their own (127.0.0.2): near the cap, a host past its share of
    // connections has its new ones closed, which the genuine client below is not.
    let mut held: Vec<std::net::TcpStream> = Vec::new();
    for _ in 0..200 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let Ok(s) = socket.connect(addr).await else {
            continue;
        };
        let mut s = s.into_std().unwrap();
        s.set_nonblocking(false).unwrap();
        // Closed at once when the host is past its share: counted as closed below.
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
        held.push(s);
    }
    assert_eq!(held.len(), 200);
    // A genuine request still gets through once the deadline frees the slots.
    let started = std::time::Instant::now();
    let r = reqwest::Client::new()
        .get(&url)
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() < std::time::Duration::from_secs(8));
    // Every half-sent request is closed by the server within a few deadlines.
    let closed = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
        held.iter_mut()
            .map(|s| {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let (took, _) = read_until_closed(s, left.max(std::time::Duration::from_millis(1)));
                took < left
            })
            .filter(|closed| *closed)
            .count()
    })
    .await
    .unwrap();
    assert_eq!(closed, 200, "half-sent connections left open");
    let metrics = reqwest::get(format!("{}/metrics", gw.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The host was held to its share near the cap (half of it): refused and counted.
    assert!(
        metrics.contains("wxgate_connections_refused_total{why=\"client_share\"}"),
        "the limit was reached and counted: {metrics}"
    );
}

// 12. Anonymous requests that spend WeChat calls are rate-limited.

#[tokio::test]
async fn bogus_logins_cannot_burn_the_apps_wechat_calls() {
    let limits = "[rate_limit]\nper_client_per_minute = 5\nper_client_burst = 5\nper_account_per_minute = 8\nper_account_burst = 8\n\n[server]\nclient_ip_header = \"x-forwarded-for\"\ntrusted_proxies = [\"10.9.9.9\"]\n";
    let h = Setup::new().tag("ratelimit").top(limits).start().await;
    let (sb, gw) = (&h.sb, &h.gw);
    let http = reqwest::Client::new();
    let login = |forwarded: Option<String>| {
        let mut req = http
            .post(format!("{}/wx/mini/mp/login", gw.url()))
            .json(&json!({"code": "bogus-code"}));
        if let Some(f) = forwarded {
            req = req.header("x-forwarded-for", f);
        }
        req.send()
    };
    let mut statuses = Vec::new();
    for i in 0..20 {
        // A forged X-Forwarded-For from a peer that is not a trusted proxy changes nothing.
        let r = login(Some(format!("203.0.113.{i}"))).await.unwrap();
        if r.status() == 429 {
            let retry: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=61).contains(&retry), "{retry}");
        }
        statuses.push(r.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        15,
        "{statuses:?}"
    );
    assert_eq!(sandbox_calls(sb, "/sns/jscode2session", MINI), 5);
    let metrics = http
        .get(format!("{}/metrics", gw.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("wxgate_rate_limited_total{route=\"/wx/mp/login\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_and_the_account_are_limited() {
    let limits = "[rate_limit]\nper_client_per_minute = 2\nper_client_burst = 2\nper_account_per_minute = 8\nper_account_burst = 8\n\n[server]\nclient_ip_header = \"x-forwarded-for\"\ntrusted_proxies = [\"127.0.0.1\"]\n";
    let h = Setup::new()
        .tag("ratelimit-proxy")
        .top(limits)
        .start()
        .await;
    let (sb, gw) = (&h.sb, &h.gw);
    let http = reqwest::Client::new();
    let login = |ip: &str| {
        http.post(format!("{}/wx/mini/mp/login", gw.url()))
            .header("x-forwarded-for", format!("6.6.6.6, {ip}"))
            .json(&json!({"code": "bogus-code"}))
            .send()
    };
    // One client: its own limit (2), whatever it writes before the proxy's entry.
    let mut one = Vec::new();
    for _ in 0..4 {
        one.push(login("198.51.100.1").await.unwrap().status().as_u16());
    }
    assert_eq!(one, [400, 400, 429, 429]);
    // Many clients (a botnet): the account's limit (8 in all) holds.
    let mut many = Vec::new();
    for i in 2..22 {
        many.push(
            login(&format!("198.51.100.{i}"))
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(many.iter().filter(|s| **s == 400).count(), 6, "{many:?}");
    assert_eq!(sandbox_calls(sb, "/sns/jscode2session", MINI), 8);
}

#[tokio::test]
async fn oauth_callbacks_with_bogus_codes_are_limited() {
    let h = Setup::new()
        .tag("ratelimit-oauth")
        .extra(&format!("[auth]\nsecret = \"{AUTH_SECRET}\"\n"))
        .start()
        .await;
    let (sb, gw) = (&h.sb, &h.gw);
    let http = no_redirects();
    let dest = format!("{}/demo/oauth.html", gw.url());
    // The default limit: a burst of 20 a client.
    let mut statuses = Vec::new();
    for _ in 0..24 {
        let (binding, callback) = start_flow(&http, &gw.url(), &dest).await;
        let mut forged = url::Url::parse(&callback).unwrap();
        let pairs: Vec<(String, String)> = forged
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "code" {
                    "bogus".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        forged.query_pairs_mut().clear().extend_pairs(pairs);
        let r = http
            .get(forged.as_str())
            .header("cookie", binding)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 302).count(),
        20,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(sandbox_calls(sb, "/sns/oauth2/access_token", OA), 20);
}
