//! Accounts kept in the store for the fleet: created on one instance, served by the
//! others within seconds, deleted everywhere; bad requests refused with the field named.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wxgate::Clock;
use wxgate_sandbox::{Sandbox, SandboxConfig};

use crate::common::*;

const ADMIN_KEY: &str = "admin-key-0123456789abcdef";

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = http.request(method, url).bearer_auth(key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Waits until every gateway of `urls` answers `path` with `status`, at most 5 s.
async fn everywhere(http: &reqwest::Client, urls: &[String], path: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(5);
    for url in urls {
        loop {
            let (got, v) = api_get(http, format!("{url}{path}")).await;
            if got == status {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{url}{path}: {got} {v}, not {status} within 5 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_account_created_on_one_instance_serves_on_all_and_leaves_all() {
    let mut config = SandboxConfig::example();
    let mut shop = config.apps[0].clone();
    shop.appid = "wxfleetshop00001".into();
    shop.secret = "fleet-shop-secret-0001".into();
    config.apps.push(shop);
    let sb = Sandbox::start_ephemeral(config).await.unwrap();
    let redis = RedisServer::start();
    let admin = format!("[[api.keys]]\nname = \"admin\"\nkey = \"{ADMIN_KEY}\"\nadmin = true\n");
    let mut fleet = Vec::new();
    let dirs: Vec<TempDir> = (0..3)
        .map(|i| TempDir::new(&format!("fleet-accounts-{i}")))
        .collect();
    for d in &dirs {
        let toml = gateway_toml(
            &sb.base_url(),
            d.path(),
            &redis_store(&redis.url()),
            "",
            &admin,
        )
        .replace(
            "[[api.keys]]\nname = \"tests\"",
            "[api]\naccounts_poll_ms = 200\n\n[[api.keys]]\nname = \"tests\"",
        );
        fleet.push(start_gateway(&toml, Clock::system()).await);
    }
    let urls: Vec<String> = fleet.iter().map(|g| g.url()).collect();
    let http = reqwest::Client::new();
    let put = |i: usize, name: &str, body: Value, key: &'static str| {
        call(
            &http,
            reqwest::Method::PUT,
            format!("{}/api/v1/admin/accounts/{name}", urls[i]),
            key,
            Some(body),
        )
    };
    let shop = json!({"kind": "official", "appid": "wxfleetshop00001", "secret": "fleet-shop-secret-0001"});
    let (status, v) = put(0, "shop", shop.clone(), ADMIN_KEY).await;
    assert_eq!(status, 201, "{v}");
    everywhere(&http, &urls, "/api/v1/shop/token", 200).await;
    // A page of the new account is signed on the other instances.
    for url in &urls[1..] {
        let r = http
            .get(format!(
                "{url}/wx/shop/config?url=http%3A%2F%2F127.0.0.1%2Fp"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // Listed, with its source, never with a secret.
    let (status, list) = call(
        &http,
        reqwest::Method::GET,
        format!("{}/api/v1/admin/accounts", urls[1]),
        ADMIN_KEY,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        list["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "shop" && a["source"] == "store"),
        "{list}"
    );
    assert!(!list.to_string().contains("fleet-shop-secret"), "{list}");

    // Bad requests: the field named, nothing changed.
    let cases = [
        (
            json!({"appid": "wxfleetshop00001", "secret": "x", "colour": "red"}),
            400,
            "colour",
        ),
        (
            json!({"appid": "wxfleetshop00001", "secret": "a-wrong-secret"}),
            409,
            "appid",
        ),
        (
            json!({"appid": "wxnobody00000001", "secret": "whatever-secret"}),
            400,
            "appid",
        ),
        (
            json!({"appid": OA, "secret": "not-the-secret"}),
            409,
            "appid",
        ),
        (
            json!({"appid": "wxfleetshop00009", "secret": { "env": "HOME" }}),
            400,
            "env",
        ),
    ];
    for (body, want, field) in cases {
        let (status, v) = put(1, "other", body.clone(), ADMIN_KEY).await;
        assert_eq!(status, want, "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap_or("").contains(field),
            "{body}: {v}"
        );
    }
    let (status, v) = put(1, "default", shop.clone(), ADMIN_KEY).await;
    assert_eq!(status, 409, "a name the file defines: {v}");
    let (status, _) = put(1, "other", shop.clone(), API_KEY).await;
    assert_eq!(status, 403, "a key without admin");
    // A secret WeChat refuses, on an account's own appid.
    let (status, v) = put(
        1,
        "shop",
        json!({"appid": "wxfleetshop00001", "secret": "a-wrong-secret"}),
        ADMIN_KEY,
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("secret"),
        "{v}"
    );
    assert!(
        matches!(v["error"]["errcode"].as_i64(), Some(40125 | 40001)),
        "{v}"
    );
    everywhere(&http, &urls, "/api/v1/other/token", 404).await;

    // Deleted on another instance: gone from all.
    let (status, v) = call(
        &http,
        reqwest::Method::DELETE,
        format!("{}/api/v1/admin/accounts/shop", urls[1]),
        ADMIN_KEY,
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    everywhere(&http, &urls, "/api/v1/shop/token", 404).await;
    let (status, _) = call(
        &http,
        reqwest::Method::DELETE,
        format!("{}/api/v1/admin/accounts/default", urls[0]),
        ADMIN_KEY,
        None,
    )
    .await;
    assert_eq!(status, 409, "the file's accounts are the file's");
}
