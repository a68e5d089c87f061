//! Bad input never gets a 5xx: every route, fed garbage queries, headers and bodies
//! (including proptest-generated ones), answers a 4xx (or a 2xx where garbage is
//! harmless) and the gateway keeps serving.

use crate::common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestRunner};
use wxgate::Clock;
use wxgate_sandbox::{Sandbox, SandboxConfig};

const ROUTES: &[(&str, &str)] = &[
    ("GET", "/wx/service"),
    ("POST", "/wx/service"),
    ("GET", "/wx/config"),
    ("OPTIONS", "/wx/config"),
    ("GET", "/wx/auth"),
    ("GET", "/wx/auth/callback"),
    ("POST", "/wx/mini/mp/login"),
    ("POST", "/wx/mini/mp/verify"),
    ("POST", "/wx/mini/mp/decrypt"),
    ("GET", "/wx/mini/mp/session"),
    ("DELETE", "/wx/mini/mp/session"),
    ("GET", "/api/v1/default/token"),
    ("POST", "/api/v1/default/token/refresh"),
    ("GET", "/api/v1/default/ticket/jsapi"),
    ("GET", "/api/v1/default/status"),
    ("GET", "/wx/nope/config"),
    ("POST", "/wx/nope/service"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_never_gets_a_5xx() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let dir = TempDir::new("garbage");
    let extra = "[auth]\nsecret = \"garbage-test-secret-0123456789\"\n";
    let g = start_gateway(
        &gateway_toml(&sb.base_url(), dir.path(), embedded(), "", extra),
        Clock::system(),
    )
    .await;
    let base = g.url();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let fixed_queries = [
        "",
        "signature=&timestamp=&nonce=&echostr=",
        "signature=zz&timestamp=-1&nonce=%00&echostr=%FF",
        "url=%E0%A4%A&callback=%3Cscript%3E",
        "url=http://&callback=a.b",
        "dest=http://%5B::1&scope=x",
        "code=%00&state=%FF%FE&dest=https://127.0.0.1/",
        "encrypt_type=aes&msg_signature=1&timestamp=99999999999999999999&nonce=1&signature=1",
        "a=1&a=2&&&==&%",
    ];
    let fixed_bodies: Vec<Vec<u8>> = vec![
        vec![],
        b"{".to_vec(),
        b"null".to_vec(),
        b"{\"code\": 1, \"rawData\": [], \"signature\": {}, \"encryptedData\": 5, \"iv\": null, \"stale\": 7}".to_vec(),
        b"<xml><Encrypt><![CDATA[AAAA]]></Encrypt></xml>".to_vec(),
        b"{\"ToUserName\":\"gh\",\"Encrypt\":\"AAAA\"}".to_vec(),
        format!("{}1{}", "{\"a\":[".repeat(200), "]}".repeat(200)).into_bytes(),
        b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]><xml>&b;</xml>".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x01],
        "中文".repeat(1000).into_bytes(),
    ];
    let headers = [
        ("authorization", "Bearer "),
        ("authorization", "Bearer \u{7f}"),
        (
            "cookie",
            "wechat_jssdk_server_openid=..; wechat_jssdk_server_openid=a.b.c",
        ),
        ("x-wxgate-session", "garbage"),
        ("origin", "null"),
        ("x-request-id", "<script>"),
    ];
    let mut checked = 0;
    for (method, path) in ROUTES {
        for q in fixed_queries {
            for body in &fixed_bodies {
                for (h, v) in headers {
                    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                    let Ok(hv) = reqwest::header::HeaderValue::from_str(v) else {
                        continue;
                    };
                    let r = http
                        .request(m, format!("{base}{path}?{q}"))
                        .header(h, hv)
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    let status = r.status().as_u16();
                    assert!(
                        status < 500 || status == 503 && path.contains("token"),
                        "{method} {path}?{q} [{h}] -> {status}"
                    );
                    checked += 1;
                }
            }
        }
    }

    // Generated garbage too.
    let mut runner = TestRunner::new(PtConfig {
        cases: 200,
        ..PtConfig::default()
    });
    let strategy = (
        0..ROUTES.len(),
        "[ -~]{0,80}",
        proptest::collection::vec(any::<u8>(), 0..300),
    );
    let cases = std::sync::Mutex::new(Vec::new());
    runner
        .run(&strategy, |(i, q, body)| {
            cases.lock().unwrap().push((i, q, body));
            Ok(())
        })
        .unwrap();
    for (i, q, body) in cases.into_inner().unwrap() {
        let (method, path) = ROUTES[i];
        let q: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
        let r = http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{base}{path}?x={q}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().as_u16() < 500,
            "{method} {path}?x={q} -> {}",
            r.status()
        );
        checked += 1;
    }
    assert!(checked > 5000, "{checked}");
    // Still serving.
    let r = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
