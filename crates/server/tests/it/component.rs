//! The open platform (`[components.NAME]`) against the sandbox's: the ticket pushed to
//! the authorization-event URL and kept for the fleet, the component token fetched once
//! from it, a merchant's authorization exchanged once however many instances see its
//! code, `unauthorized` removing it, and every bad push refused with nothing stored.

use std::time::Duration;

use serde_json::{json, Value};
use wxgate_proto::crypto::MsgCrypt;
use wxgate_proto::signature::server_signature;
use wxgate_sandbox::{Sandbox, SandboxConfig};

use crate::common::*;

pub(crate) const COMPONENT: &str = "wxcomponent00001";
pub(crate) const SECRET: &str = "sandbox-secret-component-01";
pub(crate) const TOKEN: &str = "componenttoken";
pub(crate) const KEY: &str = "ComponentAesKey0123456789abcdefghijklmnopqr";

/// WeChat's first release-test Official Account, and a user of it.
const RELEASE_TEST: &str = "wx570bc396a51b8ff8";
const USER1: &str = "oSandboxUser000000000000001";

pub(crate) async fn sandbox() -> Sandbox {
    let mut config = SandboxConfig::example();
    config.apps.push(
        toml::from_str(&format!(
            "appid = \"{COMPONENT}\"\nsecret = \"{SECRET}\"\nkind = \"component\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\""
        ))
        .unwrap(),
    );
    config.apps.push(
        toml::from_str(&format!(
            "appid = \"{RELEASE_TEST}\"\nsecret = \"release-test-secret\"\noriginal_id = \"gh_3c884a361561\"\n[[user]]\nopenid = \"oReleaseTestUser0000000001\"\nnickname = \"Tester\""
        ))
        .unwrap(),
    );
    Sandbox::start_ephemeral(config).await.unwrap()
}

pub(crate) fn section() -> String {
    format!(
        "[components.platform]\ncomponent_appid = \"{COMPONENT}\"\ncomponent_appsecret = \"{SECRET}\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\n"
    )
}

pub(crate) async fn admin(h: &Harness, base: &str, path: &str, body: Value) -> Value {
    h.http
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub(crate) async fn status(h: &Harness, base: &str) -> Value {
    api_get(&h.http, format!("{base}/api/v1/component/platform/status"))
        .await
        .1
}

pub(crate) async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut ok: impl FnMut() -> F,
) {
    for _ in 0..100 {
        if ok().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never: {what}");
}

#[tokio::test]
async fn from_nothing_a_ticket_a_token_and_an_authorization_exchanged_once() {
    let redis = RedisServer::start();
    let sb = sandbox().await;
    let sb_url = sb.base_url();
    let start = |sb: Option<Sandbox>| {
        let mut setup = Setup::new()
            .tag("component")
            .store(&redis_store(&redis.url()))
            .extra(&section());
        setup = match sb {
            Some(sb) => setup.sandbox(sb),
            None => setup.upstream(&sb_url),
        };
        setup.start()
    };
    let h1 = start(Some(sb)).await;
    let h2 = start(None).await;
    let h3 = start(None).await;
    let base1 = h1.gw.url();
    // No ticket yet: the component token is refused with the reason, and the fleet
    // has asked WeChat for a push.
    let s = status(&h1, &base1).await;
    assert_eq!(s["component_access_token"]["ok"], false, "{s}");
    eventually("a push was asked for", || async {
        sandbox_calls(
            &h1.sb,
            "/cgi-bin/component/api_start_push_ticket",
            COMPONENT,
        ) >= 1
    })
    .await;
    // The open platform is told where to push; the ticket arrives at one instance and
    // serves both.
    admin(&h1, &sb_url, "/admin/component/event_url", json!({ "component_appid": COMPONENT, "url": format!("{base1}/wx/component/platform/event") })).await;
    eventually("the ticket arrived", || async {
        status(&h1, &base1).await["ticket_age_secs"].is_number()
    })
    .await;
    let s2 = status(&h2, &h2.gw.url()).await;
    assert_eq!(s2["component_access_token"]["ok"], true, "{s2}");
    let s3 = status(&h3, &h3.gw.url()).await;
    assert_eq!(s3["component_access_token"]["ok"], true, "{s3}");
    let s1 = status(&h1, &base1).await;
    assert_eq!(s1["component_access_token"]["ok"], true, "{s1}");
    assert_eq!(
        sandbox_calls(&h1.sb, "/cgi-bin/component/api_component_token", COMPONENT),
        1,
        "one fetch for the fleet"
    );
    assert!(
        !s1.to_string().contains("SBXCAT"),
        "the token itself is never shown: {s1}"
    );

    // A merchant authorizes: the `authorized` event reaches instance 1 while the same
    // code, carried by the merchant's redirect, reaches instance 2: one api_query_auth.
    let code = admin(
        &h1,
        &sb_url,
        "/admin/component/authorize",
        json!({ "component_appid": COMPONENT, "authorizer_appid": OA }),
    )
    .await["authorization_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let c2 = h2.gw.state.components.component("platform").unwrap();
    let by_redirect = h2
        .gw
        .state
        .components
        .exchange_code(c2, &code, now())
        .await
        .unwrap();
    assert_eq!(by_redirect.authorizer_appid, OA);
    assert!(by_redirect.refresh_token.starts_with("refreshtoken@@@"));
    assert_eq!(
        by_redirect.func_info.len(),
        3,
        "the sandbox's default sets: 1, 4, 15"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        sandbox_calls(&h1.sb, "/cgi-bin/component/api_query_auth", COMPONENT),
        1,
        "one exchange for two arrivals"
    );
    let c1 = h1.gw.state.components.component("platform").unwrap();
    let stored = h1
        .gw
        .state
        .components
        .authorizer(c1, OA)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, by_redirect);
    // A used code is WeChat's error, not a second authorizer.
    let again = h1
        .gw
        .state
        .components
        .exchange_code(c1, &code, now())
        .await
        .unwrap();
    assert_eq!(
        again, by_redirect,
        "a second arrival reads the first exchange"
    );
    // The authorizer's own access_token, as an account named `platform:{appid}`: 3 x 300
    // concurrent cold requests on three instances cost one api_authorizer_token, and the
    // token is one WeChat accepts for the merchant's account.
    let account = format!("platform:{OA}");
    // Ready with the token the exchange brought; dropped here so that the asks below
    // find none (a cold start).
    let cold = format!("wxgate:{{component:platform}}:authorizer_token:{OA}");
    assert!(
        h1.gw.state.ctx.store.get(&cold).await.unwrap().is_some(),
        "the exchange's token is kept"
    );
    h1.gw.state.ctx.store.delete(&cold).await.unwrap();
    // 3 x 300 concurrent cold asks, one third to each instance.
    let fleet = [h1.gw.url(), h2.gw.url(), h3.gw.url()];
    let asks = (0..900).map(|i| {
        let http = h1.http.clone();
        let url = format!("{}/api/v1/{account}/token", fleet[i % 3]);
        async move { api_get(&http, url).await }
    });
    let answers = futures_util::future::join_all(asks).await;
    assert!(
        answers
            .iter()
            .all(|(code, v)| *code == 200 && v["access_token"] == answers[0].1["access_token"]),
        "{:?}",
        answers[0]
    );
    assert_eq!(
        sandbox_calls(&h1.sb, "/cgi-bin/component/api_authorizer_token", COMPONENT),
        1
    );
    let token = answers[0].1["access_token"].as_str().unwrap().to_owned();
    let check: Value = h1
        .http
        .get(format!("{sb_url}/admin/token/check?access_token={token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (check["errcode"].as_i64(), check["appid"].as_str()),
        (Some(0), Some(OA)),
        "{check}"
    );
    // The proxy acts as the merchant too: its followers, with the authorizer's token.
    let (code, v) = api_get(
        &h1.http,
        format!("{base1}/api/v1/{account}/proxy/cgi-bin/user/get"),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert!(
        v["total"].as_u64().unwrap() >= 1,
        "the merchant's followers: {v}"
    );
    // The fleet's token for the merchant is one WeChat refuses (revoked, say): the proxy
    // drops it, fetches one and retries once, and the caller never sees the 40001.
    let held_key = format!("wxgate:{{component:platform}}:authorizer_token:{OA}");
    let bogus = json!({ "value": "SBXAUTrevokedbyWeChat", "expires_at": now() + 7000 });
    h1.gw
        .state
        .ctx
        .store
        .set(&held_key, &bogus.to_string(), None)
        .await
        .unwrap();
    let (code, v) = api_get(
        &h1.http,
        format!("{base1}/api/v1/{account}/proxy/cgi-bin/user/get"),
    )
    .await;
    assert_eq!((code, v["errcode"].as_i64()), (200, None), "{v}");
    let replaced = h1.gw.state.ctx.store.get(&held_key).await.unwrap().unwrap();
    assert!(!replaced.contains("revokedbyWeChat"), "{replaced}");
    // An account of no authorizer, a key limited to other accounts.
    assert_eq!(
        api_get(
            &h1.http,
            format!("{base1}/api/v1/platform:wxnotanauthorizer/token")
        )
        .await
        .0,
        404
    );
    let limited = h1
        .http
        .get(format!("{base1}/api/v1/{account}/token"))
        .bearer_auth("mini-only-key-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 403);
    // A stale refresh token WeChat refuses (61023) is recovered from its list.
    let components = &h1.gw.state.components;
    let token_key = format!("wxgate:{{component:platform}}:authorizer_token:{OA}");
    let mut broken = stored.clone();
    broken.refresh_token = "refreshtoken@@@lost".into();
    components.save_authorizer(c1, &broken).await.unwrap();
    h1.gw.state.ctx.store.delete(&token_key).await.unwrap();
    let (code, v) = api_get(&h1.http, format!("{base1}/api/v1/{account}/token")).await;
    assert_eq!(code, 200, "{v}");
    let recovered = components.authorizer(c1, OA).await.unwrap().unwrap();
    assert_eq!(recovered.refresh_token, stored.refresh_token);
    // One WeChat no longer knows at all (expired, say) marks the merchant for
    // re-authorization, and the answer says so.
    admin(
        &h1,
        &sb_url,
        "/admin/component/forget",
        json!({ "component_appid": COMPONENT, "authorizer_appid": OA }),
    )
    .await;
    h1.gw.state.ctx.store.delete(&token_key).await.unwrap();
    let (code, v) = api_get(&h1.http, format!("{base1}/api/v1/{account}/token")).await;
    assert_eq!(
        (code, v["error"]["errcode"].as_i64()),
        (503, Some(61023)),
        "{v}"
    );
    assert!(
        components
            .authorizer(c1, OA)
            .await
            .unwrap()
            .unwrap()
            .needs_reauthorization
    );
    let overview = components.overview(now()).await;
    assert_eq!(
        overview[0]["authorizers"],
        json!({ "ok": 0, "needs_reauthorization": 1 }),
        "the console counts it: {overview}"
    );

    // The merchant withdraws: the authorizer goes.
    admin(
        &h1,
        &sb_url,
        "/admin/component/unauthorize",
        json!({ "component_appid": COMPONENT, "authorizer_appid": OA }),
    )
    .await;
    eventually("unauthorized", || async {
        h1.gw
            .state
            .components
            .authorizer(c1, OA)
            .await
            .unwrap()
            .is_none()
    })
    .await;
}

#[tokio::test]
async fn bad_pushes_are_refused_and_store_nothing() {
    let sb = sandbox().await;
    let h = Setup::new()
        .tag("component-bad")
        .sandbox(sb)
        .extra(&section())
        .start()
        .await;
    let url = format!("{}/wx/component/platform/event", h.gw.url());
    let crypt = MsgCrypt::new(TOKEN, KEY, COMPONENT).unwrap();
    let ticket_xml = |appid: &str| {
        format!("<xml><AppId><![CDATA[{appid}]]></AppId><CreateTime>{}</CreateTime><InfoType><![CDATA[component_verify_ticket]]></InfoType><ComponentVerifyTicket><![CDATA[ticket@@@forged]]></ComponentVerifyTicket></xml>", now())
    };
    let post = |envelope_appid: &str, xml: String, forge: bool, crypt: &MsgCrypt, nonce: &str| {
        let ts = now().to_string();
        let sealed = crypt.seal(&xml, &ts, nonce);
        let sig = if forge {
            "0".repeat(40)
        } else {
            sealed.msg_signature.clone()
        };
        let body = format!("<xml><AppId><![CDATA[{envelope_appid}]]></AppId><Encrypt><![CDATA[{}]]></Encrypt></xml>", sealed.encrypt);
        let target = format!(
            "{url}?signature={}&timestamp={ts}&nonce={nonce}&encrypt_type=aes&msg_signature={sig}",
            server_signature(TOKEN, &ts, nonce)
        );
        let http = h.http.clone();
        async move {
            http.post(target)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let other = MsgCrypt::new(TOKEN, KEY, "wxothercomponent").unwrap();
    assert_eq!(
        post(COMPONENT, ticket_xml(COMPONENT), true, &crypt, "1").await,
        403,
        "forged msg_signature"
    );
    assert_eq!(
        post(
            "wxothercomponent",
            ticket_xml(COMPONENT),
            false,
            &crypt,
            "2"
        )
        .await,
        403,
        "another component's AppId"
    );
    assert_eq!(
        post(
            COMPONENT,
            ticket_xml("wxothercomponent"),
            false,
            &other,
            "3"
        )
        .await,
        403,
        "sealed for another component"
    );
    assert_eq!(
        post(
            COMPONENT,
            ticket_xml("wxothercomponent"),
            false,
            &crypt,
            "4"
        )
        .await,
        403,
        "a ticket for another component"
    );
    let ts = now().to_string();
    let bad = format!("<xml><AppId>{COMPONENT}</AppId><Encrypt>AAAA</Encrypt></xml>");
    let sig = wxgate_proto::signature::msg_signature(TOKEN, &ts, "5", "AAAA");
    let r = h
        .http
        .post(format!(
            "{url}?timestamp={ts}&nonce=5&encrypt_type=aes&msg_signature={sig}"
        ))
        .body(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a bad ciphertext");
    let r = h
        .http
        .post(format!("{url}?timestamp=1&nonce=6&msg_signature=x"))
        .body("<xml/>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "an old timestamp");
    let s = status(&h, &h.gw.url()).await;
    assert!(s["ticket_age_secs"].is_null(), "nothing stored: {s}");
    // A genuine push is stored once; its replay is refused.
    assert_eq!(
        post(COMPONENT, ticket_xml(COMPONENT), false, &crypt, "7").await,
        200
    );
    let ts = now().to_string();
    let sealed = crypt.seal(&ticket_xml(COMPONENT), &ts, "8");
    let body = format!(
        "<xml><AppId><![CDATA[{COMPONENT}]]></AppId><Encrypt><![CDATA[{}]]></Encrypt></xml>",
        sealed.encrypt
    );
    let target = format!(
        "{url}?timestamp={ts}&nonce=8&encrypt_type=aes&msg_signature={}",
        sealed.msg_signature
    );
    assert_eq!(
        h.http
            .post(&target)
            .body(body.clone())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        h.http
            .post(&target)
            .body(body)
            .send()
            .await
            .unwrap()
            .status(),
        403,
        "a replay"
    );
    let s = status(&h, &h.gw.url()).await;
    assert!(s["ticket_age_secs"].is_number(), "{s}");
}

/// The merchant's path: the authorization link, WeChat's page, the redirect back with
/// the code; the code exchanged once (a reload costs nothing); a foreign `dest` and a
/// forged code refused with a page, nothing stored.
#[tokio::test]
async fn a_merchant_authorizes_through_the_link_and_comes_back() {
    let sb = sandbox().await;
    let extra = format!(
        "{}auth_dest_hosts = [\"https://saas.example.com\"]\n",
        section()
    );
    let h = Setup::new()
        .tag("component-link")
        .sandbox(sb)
        .extra(&extra)
        .start()
        .await;
    let base = h.gw.url();
    let sb_url = h.sb.base_url();
    admin(&h, &sb_url, "/admin/component/event_url", json!({ "component_appid": COMPONENT, "url": format!("{base}/wx/component/platform/event") })).await;
    eventually("the ticket arrived", || async {
        status(&h, &base).await["ticket_age_secs"].is_number()
    })
    .await;
    let location = |r: &reqwest::Response| r.headers()["location"].to_str().unwrap().to_owned();

    let dest = "https://saas.example.com/welcome?from=wxgate";
    let r = h
        .http
        .get(format!(
            "{base}/wx/component/platform/authorize?dest={}&auth_type=1",
            url::form_urlencoded::byte_serialize(dest.as_bytes()).collect::<String>()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let to_wechat = location(&r);
    assert!(to_wechat.starts_with(&format!("{sb_url}/cgi-bin/componentloginpage?component_appid={COMPONENT}&pre_auth_code=preauthcode%40%40%40")), "{to_wechat}");
    assert!(to_wechat.ends_with("&auth_type=1"), "{to_wechat}");
    // WeChat's page, then the merchant's Allow.
    let page = h
        .http
        .get(&to_wechat)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(OA) && !page.contains("wxsandboxmini001"),
        "auth_type=1 shows Official Accounts only"
    );
    let form: std::collections::HashMap<String, String> = url::Url::parse(&to_wechat)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let decide = format!(
        "{sb_url}/sandbox/component/decide?component_appid={COMPONENT}&pre_auth_code={}&redirect_uri={}&authorizer_appid={OA}",
        url::form_urlencoded::byte_serialize(form["pre_auth_code"].as_bytes()).collect::<String>(),
        url::form_urlencoded::byte_serialize(form["redirect_uri"].as_bytes()).collect::<String>(),
    );
    let r = h.http.get(&decide).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let back = location(&r);
    assert!(
        back.starts_with(&format!("{base}/wx/component/platform/callback?dest="))
            && back.contains("auth_code=queryauthcode"),
        "{back}"
    );
    // The pre-authorization code works once.
    assert_eq!(h.http.get(&decide).send().await.unwrap().status(), 400);
    let r = h.http.get(&back).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), format!("{dest}&authorizer_appid={OA}"));
    // A reload of the callback: the same answer, still one exchange (the `authorized`
    // event carried the same code too).
    let r = h.http.get(&back).send().await.unwrap();
    assert_eq!(location(&r), format!("{dest}&authorizer_appid={OA}"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sandbox_calls(&h.sb, "/cgi-bin/component/api_query_auth", COMPONENT),
        1
    );
    let c = h.gw.state.components.component("platform").unwrap();
    assert!(h
        .gw
        .state
        .components
        .authorizer(c, OA)
        .await
        .unwrap()
        .is_some());

    // A foreign dest, on the way out and on the way back; a forged code; a mobile link.
    let r = h
        .http
        .get(format!(
            "{base}/wx/component/platform/authorize?dest=https%3A%2F%2Fevil.example.net%2F"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let forged_back = back.replace("saas.example.com", "evil.example.net");
    assert_eq!(h.http.get(&forged_back).send().await.unwrap().status(), 400);
    let r = h
        .http
        .get(format!(
            "{base}/wx/component/platform/callback?auth_code=queryauthcode%40%40%40forged"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("unknown, already used or expired"));
    assert_eq!(
        sandbox_calls(&h.sb, "/cgi-bin/component/api_query_auth", COMPONENT),
        2,
        "the forged code was WeChat's to refuse"
    );
    let r = h
        .http
        .get(format!("{base}/wx/component/platform/authorize?mobile=1"))
        .send()
        .await
        .unwrap();
    let mobile = location(&r);
    assert!(mobile.starts_with(&format!("{sb_url}/wxaopen/safe/bindcomponent?action=bindcomponent&no_scan=1&component_appid={COMPONENT}")) && mobile.ends_with("#wechat_redirect"), "{mobile}");
}

/// Refresh tokens are never lost: they survive Redis killed and restarted (append-only
/// file), an export imported into an empty store restores every authorizer with no
/// re-authorization, and one lost anyway is recovered from `api_get_authorizer_list`.
#[tokio::test]
async fn refresh_tokens_survive_restarts_and_moves() {
    let aof = TempDir::new("component-aof");
    let mut redis = RedisServer::start_durable(aof.path());
    let sb = sandbox().await;
    let sb_url = sb.base_url();
    let h = Setup::new()
        .tag("component-durable")
        .sandbox(sb)
        .store(&redis_store(&redis.url()))
        .extra(&section())
        .start()
        .await;
    let base = h.gw.url();
    admin(&h, &sb_url, "/admin/component/event_url", json!({ "component_appid": COMPONENT, "url": format!("{base}/wx/component/platform/event") })).await;
    eventually("the ticket arrived", || async {
        status(&h, &base).await["ticket_age_secs"].is_number()
    })
    .await;
    for appid in [OA, MINI] {
        admin(
            &h,
            &sb_url,
            "/admin/component/authorize",
            json!({ "component_appid": COMPONENT, "authorizer_appid": appid }),
        )
        .await;
    }
    let c = h.gw.state.components.component("platform").unwrap();
    eventually("both authorized", || async {
        h.gw.state
            .components
            .authorizers(c)
            .await
            .map(|a| a.len())
            .unwrap_or(0)
            == 2
    })
    .await;
    let before = h.gw.state.components.authorizers(c).await.unwrap();

    // Redis killed (SIGKILL) and restarted: every refresh token is still there.
    redis.kill();
    redis.restart();
    let mut after = Vec::new();
    for _ in 0..50 {
        if let Ok(a) = h.gw.state.components.authorizers(c).await {
            after = a;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(after, before, "refresh tokens survive a Redis restart");

    // Export, then import into an empty store: no re-authorization.
    let dir = TempDir::new("component-export");
    let config = dir.path().join("wxgate.toml");
    let write_config = |redis_url: &str| {
        std::fs::write(&config, format!(
            "[store]\n{}\n[upstream]\napi_base = \"{sb_url}\"\n[accounts.default]\nappid = \"{OA}\"\nsecret = \"{OA_SECRET}\"\n\n{}",
            redis_store(redis_url),
            section()
        )).unwrap();
    };
    write_config(&redis.url());
    let file = dir.path().join("authorizers.json");
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_wxgate"))
            .args(args)
            .env("COMPONENT_EXPORT_KEY", "a-backup-passphrase-0123456789")
            .output()
            .unwrap()
    };
    let out = cli(&[
        "component",
        "export",
        "--config",
        config.to_str().unwrap(),
        "--component",
        "platform",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exported = std::fs::read_to_string(&file).unwrap();
    assert!(
        !exported.contains("refreshtoken@@@"),
        "the export is encrypted"
    );
    let empty = RedisServer::start();
    write_config(&empty.url());
    let out = cli(&[
        "component",
        "import",
        "--config",
        config.to_str().unwrap(),
        "--component",
        "platform",
        "--in",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 2 authorizer(s)"));
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .args([
            "component",
            "import",
            "--config",
            config.to_str().unwrap(),
            "--component",
            "platform",
            "--in",
            file.to_str().unwrap(),
        ])
        .env("COMPONENT_EXPORT_KEY", "not-the-backup-passphrase")
        .output()
        .unwrap();
    assert!(!bad.status.success(), "a wrong key opens nothing");
    let moved = Setup::new()
        .tag("component-moved")
        .upstream(&sb_url)
        .store(&redis_store(&empty.url()))
        .extra(&section())
        .start()
        .await;
    // The moved gateway needs the ticket too: the platform pushes to it now.
    admin(&moved, &sb_url, "/admin/component/event_url", json!({ "component_appid": COMPONENT, "url": format!("{}/wx/component/platform/event", moved.gw.url()) })).await;
    eventually("the ticket arrived at the moved gateway", || async {
        status(&moved, &moved.gw.url()).await["ticket_age_secs"].is_number()
    })
    .await;
    for appid in [OA, MINI] {
        let (code, v) = api_get(
            &moved.http,
            format!("{}/api/v1/platform:{appid}/token", moved.gw.url()),
        )
        .await;
        assert_eq!(code, 200, "{appid}: {v}");
    }
    assert_eq!(
        sandbox_calls(&h.sb, "/cgi-bin/component/api_query_auth", COMPONENT),
        2,
        "no re-authorization"
    );

    // A refresh token lost anyway: recovered from WeChat's list.
    let mc = moved.gw.state.components.component("platform").unwrap();
    moved
        .gw
        .state
        .components
        .remove_authorizer(mc, MINI)
        .await
        .unwrap();
    let lists_before = sandbox_calls(
        &h.sb,
        "/cgi-bin/component/api_get_authorizer_list",
        COMPONENT,
    );
    let (code, v) = api_get(
        &moved.http,
        format!("{}/api/v1/platform:{MINI}/token", moved.gw.url()),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        sandbox_calls(
            &h.sb,
            "/cgi-bin/component/api_get_authorizer_list",
            COMPONENT
        ),
        lists_before + 1
    );
    assert!(moved
        .gw
        .state
        .components
        .authorizer(mc, MINI)
        .await
        .unwrap()
        .is_some());
}

/// WeChat's release test (全网发布), as the sandbox's runner plays it: every case passes
/// within 5 s. Then an ordinary authorizer's push goes through the component's rules and
/// webhook with its appid, and a push for an appid that is not an authorizer is refused.
#[tokio::test]
async fn the_release_test_passes_and_authorizers_pushes_reach_the_rules() {
    let sb = sandbox().await;
    let extra = format!(
        "{}\n[[components.platform.rules]]\nkeyword = \"hello\"\nreply = {{ type = \"text\", content = \"Hello from the platform\" }}\n",
        section()
    );
    const CONSOLE_KEY: &str = "console-admin-key-0123456789abcdef";
    let h = Setup::new()
        .tag("component-release")
        .sandbox(sb)
        .top(&format!(
            "[console]\nenabled = true\nadmin_key = \"{CONSOLE_KEY}\"\n"
        ))
        .extra(&extra)
        .start()
        .await;
    let base = h.gw.url();
    let sb_url = h.sb.base_url();
    admin(&h, &sb_url, "/admin/component/event_url", json!({ "component_appid": COMPONENT, "url": format!("{base}/wx/component/platform/event") })).await;
    eventually("the ticket arrived", || async {
        status(&h, &base).await["ticket_age_secs"].is_number()
    })
    .await;
    // The ticket's age is a metric on every instance (set by the keeper's round).
    eventually("the ticket's age is a metric", || async {
        h.http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .lines()
            .any(|l| {
                l.starts_with("wxgate_component_ticket_age_seconds{component=\"platform\"}")
                    && l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) >= Some(0.0)
            })
    })
    .await;
    let report = admin(&h, &sb_url, "/admin/component/release_test", json!({ "component_appid": COMPONENT, "url": format!("{base}/wx/component/platform/$APPID$/service") })).await;
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report["cases"].as_array().unwrap().len(), 5, "{report:#}");
    for c in report["cases"].as_array().unwrap() {
        assert!(c["ms"].as_u64().unwrap() <= 5000, "{c}");
    }

    // An ordinary merchant: authorized, then a fan's "hello" pushed for it.
    admin(
        &h,
        &sb_url,
        "/admin/component/authorize",
        json!({ "component_appid": COMPONENT, "authorizer_appid": OA }),
    )
    .await;
    let c = h.gw.state.components.component("platform").unwrap();
    eventually("authorized", || async {
        h.gw.state
            .components
            .authorizer(c, OA)
            .await
            .unwrap()
            .is_some()
    })
    .await;
    let target = |appid: &str| wxgate_sandbox::pusher::PushTarget {
        url: format!("{base}/wx/component/platform/{appid}/service"),
        token: TOKEN.into(),
        appid: COMPONENT.into(),
        encoding_aes_key: Some(KEY.into()),
        mode: wxgate_sandbox::pusher::MessageMode::Safe,
        format: Default::default(),
    };
    let hello = wxgate_sandbox::messages::sample(
        "text",
        "gh_sandbox00001",
        USER1,
        now(),
        71,
        Some("hello"),
    )
    .unwrap();
    let out = wxgate_sandbox::pusher::push(&h.http, &target(OA), &hello, &Default::default())
        .await
        .unwrap();
    assert!(
        out.encrypted,
        "answered sealed with the component's key: {} {}",
        out.status, out.body
    );
    assert_eq!(
        out.reply.unwrap().text("Content"),
        Some("Hello from the platform")
    );
    // The console shows the platform: its ticket, its token, its authorizers by state.
    let cookie = console_cookie(&h.http, &base, CONSOLE_KEY).await;
    let v: Value = h
        .http
        .get(format!("{base}/console/api/overview"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let p = &v["components"][0];
    assert_eq!(p["name"], "platform", "{v}");
    assert!(
        p["ticket_age_secs"].is_number() && p["component_access_token_expires_in"].is_number(),
        "{p}"
    );
    assert_eq!(
        p["authorizers"]["ok"], 2,
        "the release-test account and the merchant: {p}"
    );
    let merchant = p["listed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["appid"] == OA)
        .unwrap();
    assert_eq!(
        (merchant["state"].as_str(), &merchant["func_info"]),
        (Some("ok"), &json!([1, 4, 15]))
    );
    assert!(
        !p.to_string().contains("refreshtoken"),
        "no refresh token shown: {p}"
    );

    // Not an authorizer: refused, nothing run.
    let out = wxgate_sandbox::pusher::push(&h.http, &target(MINI), &hello, &Default::default())
        .await
        .unwrap();
    assert_eq!(out.status, 404);
    // The release test's answers are for WeChat's test accounts only.
    let probe = wxgate_sandbox::messages::sample(
        "text",
        "gh_sandbox00001",
        USER1,
        now(),
        72,
        Some("TESTCOMPONENT_MSG_TYPE_TEXT"),
    )
    .unwrap();
    let out = wxgate_sandbox::pusher::push(&h.http, &target(OA), &probe, &Default::default())
        .await
        .unwrap();
    assert!(
        out.reply.is_none(),
        "an ordinary merchant's fan gets no release-test answer"
    );
}

/// wechatpy's component client (PyPI), pointed at wxgate's compatible API with a client
/// secret and no ticket of its own, gets the managed component token and an authorizer's
/// managed token; the real refresh token never leaves wxgate.
#[tokio::test]
async fn wechatpys_component_client_gets_managed_tokens() {
    const CLIENT_SECRET: &str = "component-client-secret-0123456789";
    let sb = sandbox().await;
    let extra = format!(
        "{}\n[compat]\nenabled = true\n[[compat.clients]]\nname = \"saas\"\nsecret = \"{CLIENT_SECRET}\"\nappids = [\"{COMPONENT}\"]\n",
        section()
    );
    let h = Setup::new()
        .tag("component-wechatpy")
        .sandbox(sb)
        .extra(&extra)
        .start()
        .await;
    let base = h.gw.url();
    let sb_url = h.sb.base_url();
    admin(&h, &sb_url, "/admin/component/event_url", json!({ "component_appid": COMPONENT, "url": format!("{base}/wx/component/platform/event") })).await;
    eventually("the ticket arrived", || async {
        status(&h, &base).await["ticket_age_secs"].is_number()
    })
    .await;
    admin(
        &h,
        &sb_url,
        "/admin/component/authorize",
        json!({ "component_appid": COMPONENT, "authorizer_appid": OA }),
    )
    .await;
    let c = h.gw.state.components.component("platform").unwrap();
    eventually("authorized", || async {
        h.gw.state
            .components
            .authorizer(c, OA)
            .await
            .unwrap()
            .is_some()
    })
    .await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/interop/wechatpy_component.py"
    );
    // Off the runtime's thread: the gateway it calls runs on this runtime.
    let args = [
        script.to_owned(),
        base.clone(),
        COMPONENT.into(),
        CLIENT_SECRET.into(),
        TOKEN.into(),
        KEY.into(),
        OA.into(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(args)
            .output()
            .expect("python3 with wechatpy (scripts/install-deps.sh)")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (managed, _) =
        h.gw.state
            .components
            .component_access_token(c, now())
            .await
            .unwrap();
    assert_eq!(v["component_access_token"], managed);
    let authorizer = v["authorizer_access_token"].as_str().unwrap();
    let check: Value = h
        .http
        .get(format!(
            "{sb_url}/admin/token/check?access_token={authorizer}"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(check["appid"], OA, "{check}");
    assert_eq!(
        v["refresh_token_kept"], "managed-by-wxgate",
        "the real refresh token is not handed out"
    );
    assert_eq!(
        sandbox_calls(&h.sb, "/cgi-bin/component/api_component_token", COMPONENT),
        1,
        "no fetch for the SDK"
    );
    // A wrong client secret and a stale component token get WeChat's errors.
    let wrong: Value = h.http.post(format!("{base}/cgi-bin/component/api_component_token"))
        .json(&json!({ "component_appid": COMPONENT, "component_appsecret": "wrong", "component_verify_ticket": "x" }))
        .send().await.unwrap().json().await.unwrap();
    assert_eq!(wrong["errcode"], 40125);
    let stale: Value = h.http.post(format!("{base}/cgi-bin/component/api_authorizer_token?component_access_token=stale"))
        .json(&json!({ "component_appid": COMPONENT, "authorizer_appid": OA, "authorizer_refresh_token": "x" }))
        .send().await.unwrap().json().await.unwrap();
    assert_eq!(stale["errcode"], 40001);
}

/// A thousand authorizers: each ready with the token its authorization brought (no
/// fetch), then refreshed ahead once each, spread over the window, eight at a time; the
/// component token refreshed once in the same window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_authorizers_are_ready_and_refreshed_spread() {
    const N: usize = 1000;
    let mut config = SandboxConfig::example();
    config.apps.push(
        toml::from_str(&format!(
            "appid = \"{COMPONENT}\"\nsecret = \"{SECRET}\"\nkind = \"component\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\""
        ))
        .unwrap(),
    );
    let appids: Vec<String> = (0..N).map(|i| format!("wxauthorizer{i:06}")).collect();
    for appid in &appids {
        config
            .apps
            .push(toml::from_str(&format!("appid = \"{appid}\"\nsecret = \"s-{appid}\"")).unwrap());
    }
    let sb = Sandbox::start_ephemeral(config).await.unwrap();
    let h = Setup::new()
        .tag("component-scale")
        .sandbox(sb)
        .extra(&section())
        .start()
        .await;
    let base = h.gw.url();
    let sb_url = h.sb.base_url();
    admin(&h, &sb_url, "/admin/component/event_url", json!({ "component_appid": COMPONENT, "url": format!("{base}/wx/component/platform/event") })).await;
    eventually("the ticket arrived", || async {
        status(&h, &base).await["ticket_age_secs"].is_number()
    })
    .await;
    let started = std::time::Instant::now();
    for appid in &appids {
        admin(
            &h,
            &sb_url,
            "/admin/component/authorize",
            json!({ "component_appid": COMPONENT, "authorizer_appid": appid }),
        )
        .await;
    }
    let c = h.gw.state.components.component("platform").unwrap();
    let components = &h.gw.state.components;
    for _ in 0..600 {
        if components.authorizers(c).await.unwrap().len() == N {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(components.authorizers(c).await.unwrap().len(), N);
    let ready = started.elapsed();
    assert_eq!(
        sandbox_calls(&h.sb, "/cgi-bin/component/api_query_auth", COMPONENT),
        N as u64
    );
    assert_eq!(
        sandbox_calls(&h.sb, "/cgi-bin/component/api_authorizer_token", COMPONENT),
        0,
        "ready with the exchange's tokens"
    );
    // Their refreshes are spread over the window.
    let due =
        h.gw.state
            .ctx
            .store
            .index_due(
                "wxgate:{component:platform}:authorizer_tokens_due",
                i64::MAX,
                2 * N,
            )
            .await
            .unwrap();
    assert_eq!(due.len(), N);
    let (lo, hi) = due.iter().fold((i64::MAX, i64::MIN), |(lo, hi), (_, at)| {
        (lo.min(*at), hi.max(*at))
    });
    assert!(hi - lo >= 200, "refresh times spread over {} s", hi - lo);
    // The window comes: each refreshed once, the component token once.
    h.advance(7200 - 250);
    for _ in 0..600 {
        if sandbox_calls(&h.sb, "/cgi-bin/component/api_authorizer_token", COMPONENT) >= N as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        sandbox_calls(&h.sb, "/cgi-bin/component/api_authorizer_token", COMPONENT),
        N as u64,
        "each once"
    );
    assert_eq!(
        sandbox_calls(&h.sb, "/cgi-bin/component/api_component_token", COMPONENT),
        2,
        "the component token once per window"
    );
    eprintln!("{N} authorizers ready in {ready:?}");
}

/// A component token WeChat refuses (40001) is dropped if the fleet still holds it and
/// the call retried once with a fresh one: one fetch.
#[tokio::test]
async fn a_refused_component_token_is_refreshed_once() {
    let redis = RedisServer::start();
    let sb = sandbox().await;
    let sb_url = sb.base_url();
    let h1 = Setup::new()
        .tag("component-cas")
        .sandbox(sb)
        .store(&redis_store(&redis.url()))
        .extra(&section())
        .start()
        .await;
    let base = h1.gw.url();
    admin(&h1, &sb_url, "/admin/component/event_url", json!({ "component_appid": COMPONENT, "url": format!("{base}/wx/component/platform/event") })).await;
    eventually("the token is held", || async {
        status(&h1, &base).await["component_access_token"]["ok"] == true
    })
    .await;
    let fetched = sandbox_calls(&h1.sb, "/cgi-bin/component/api_component_token", COMPONENT);
    // The fleet's stored token goes bad (WeChat revoked it, say).
    let key = "wxgate:{component:platform}:token";
    let bogus = json!({ "value": "SBXCATrevoked", "expires_at": now() + 7000 }).to_string();
    h1.gw
        .state
        .ctx
        .store
        .set(key, &bogus, Some(Duration::from_secs(7000)))
        .await
        .unwrap();
    // An instance that reads it from the store meets 40001 and recovers with one fetch.
    let h2 = Setup::new()
        .tag("component-cas")
        .upstream(&sb_url)
        .store(&redis_store(&redis.url()))
        .extra(&section())
        .start()
        .await;
    let code = admin(
        &h1,
        &sb_url,
        "/admin/component/authorize",
        json!({ "component_appid": COMPONENT, "authorizer_appid": OA }),
    )
    .await["authorization_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let c2 = h2.gw.state.components.component("platform").unwrap();
    let a = h2
        .gw
        .state
        .components
        .exchange_code(c2, &code, now())
        .await
        .unwrap();
    assert_eq!(a.authorizer_appid, OA);
    assert_eq!(
        sandbox_calls(&h1.sb, "/cgi-bin/component/api_component_token", COMPONENT),
        fetched + 1
    );
    let stored = h1.gw.state.ctx.store.get(key).await.unwrap().unwrap();
    assert!(
        !stored.contains("SBXCATrevoked"),
        "the bad token is replaced for the fleet"
    );
}

/// A simulated day: the fleet keeps its component token with one fetch per two-hour
/// window (refreshed ahead, never twice), the ticket re-pushed every 10 minutes meanwhile.
#[tokio::test]
async fn a_simulated_day_costs_one_component_token_a_window() {
    let redis = RedisServer::start();
    let sb = sandbox().await;
    let sb_url = sb.base_url();
    let h1 = Setup::new()
        .tag("component-day")
        .sandbox(sb)
        .store(&redis_store(&redis.url()))
        .extra(&section())
        .start()
        .await;
    let h2 = Setup::new()
        .tag("component-day")
        .upstream(&sb_url)
        .store(&redis_store(&redis.url()))
        .extra(&section())
        .start()
        .await;
    let base = h1.gw.url();
    admin(&h1, &sb_url, "/admin/component/event_url", json!({ "component_appid": COMPONENT, "url": format!("{base}/wx/component/platform/event") })).await;
    eventually("the token is held", || async {
        status(&h1, &base).await["component_access_token"]["ok"] == true
    })
    .await;
    let fetches = || sandbox_calls(&h1.sb, "/cgi-bin/component/api_component_token", COMPONENT);
    assert_eq!(fetches(), 1);
    for window in 1..=12u64 {
        // Into the window's last ten minutes, in steps the ticket pushes follow.
        for _ in 0..12 {
            h1.advance(575);
            h2.clock.advance(575);
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        eventually("refreshed for the window", || async { fetches() > window }).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(fetches(), window + 1, "one fetch in window {window}");
        let (code, v) = api_get(
            &h2.http,
            format!("{}/api/v1/component/platform/status", h2.gw.url()),
        )
        .await;
        assert_eq!(
            (code, &v["component_access_token"]["ok"]),
            (200, &json!(true)),
            "{v}"
        );
    }
}

/// A webhook that answers every push with a text after `delay_ms` (past the deadline
/// when that is longer), saying which authorizer it was told the push was for.
async fn slow_hook(delay_ms: u64) -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: bytes::Bytes| async move {
            let v: Value = serde_json::from_slice(&body).unwrap();
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            json!({"type": "text", "content": format!("late for {}", v["appid"].as_str().unwrap_or("?"))})
                .to_string()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// A reply that cannot be a push's answer goes out as a customer-service message with
/// the *authorizer's* token: a webhook's reply after the deadline (for an Official
/// Account's fan), and a rule's reply to a JSON push (for a Mini Program's user).
#[tokio::test]
async fn replies_that_miss_the_answer_go_out_with_the_authorizers_token() {
    const MINI_USER: &str = "oMiniUser00000000000000001";
    let hook = slow_hook(900).await;
    let extra = format!(
        "{}\n[[components.platform.rules]]\nkeyword = \"hello\"\nreply = {{ type = \"text\", content = \"Hello from the platform\" }}\n[components.platform.webhook]\nurl = \"{hook}\"\nsecret = \"hook-secret\"\n",
        section()
    );
    let h = Setup::new()
        .tag("component-late")
        .sandbox(sandbox().await)
        .top("[service]\ndeadline_ms = 300\n")
        .extra(&extra)
        .start()
        .await;
    let base = h.gw.url();
    let sb_url = h.sb.base_url();
    admin(&h, &sb_url, "/admin/component/event_url", json!({ "component_appid": COMPONENT, "url": format!("{base}/wx/component/platform/event") })).await;
    eventually("the ticket arrived", || async {
        status(&h, &base).await["ticket_age_secs"].is_number()
    })
    .await;
    let c = h.gw.state.components.component("platform").unwrap();
    for appid in [OA, MINI] {
        admin(
            &h,
            &sb_url,
            "/admin/component/authorize",
            json!({ "component_appid": COMPONENT, "authorizer_appid": appid }),
        )
        .await;
        eventually("authorized", || async {
            h.gw.state
                .components
                .authorizer(c, appid)
                .await
                .unwrap()
                .is_some()
        })
        .await;
    }
    let target = |appid: &str, format| wxgate_sandbox::pusher::PushTarget {
        url: format!("{base}/wx/component/platform/{appid}/service"),
        token: TOKEN.into(),
        appid: COMPONENT.into(),
        encoding_aes_key: Some(KEY.into()),
        mode: wxgate_sandbox::pusher::MessageMode::Safe,
        format,
    };
    let sent_to = |appid: &'static str, user: &'static str| {
        h.sb.platform
            .sent(Some(appid))
            .iter()
            .filter(|m| m.kind == "custom" && m.body["touser"] == user)
            .map(|m| m.body["text"]["content"].as_str().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
    };

    // An Official Account's fan: the webhook answers after the deadline.
    let msg =
        wxgate_sandbox::messages::sample("text", "gh_sandbox00001", USER1, now(), 81, Some("slow"))
            .unwrap();
    let out = wxgate_sandbox::pusher::push(
        &h.http,
        &target(OA, Default::default()),
        &msg,
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!((out.status, out.body.as_str()), (200, "success"));
    eventually("the late reply went out as the merchant", || async {
        sent_to(OA, USER1) == vec![format!("late for {OA}")]
    })
    .await;

    // A Mini Program's user, a JSON push: `success`, and the rule's reply as a message.
    let msg = wxgate_sandbox::messages::sample(
        "text",
        "gh_sandboxmini01",
        MINI_USER,
        now(),
        82,
        Some("hello"),
    )
    .unwrap();
    let json = wxgate_sandbox::pusher::PushFormat::Json;
    let out = wxgate_sandbox::pusher::push(&h.http, &target(MINI, json), &msg, &Default::default())
        .await
        .unwrap();
    assert_eq!((out.status, out.body.as_str()), (200, "success"));
    eventually("the rule's reply went out as the Mini Program", || async {
        sent_to(MINI, MINI_USER) == vec!["Hello from the platform".to_owned()]
    })
    .await;
    assert!(
        h.sb.platform.sent(Some(COMPONENT)).is_empty(),
        "nothing is sent as the platform itself"
    );
    // The message URL's check: the component's token proves it, `$APPID$` and all.
    let ts = now().to_string();
    let sig = server_signature(TOKEN, &ts, "n1");
    for appid in ["$APPID$", OA] {
        let url = format!("{base}/wx/component/platform/{appid}/service?signature={sig}&timestamp={ts}&nonce=n1&echostr=echo-1234");
        let r = h.http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "echo-1234");
    }
    let forged = format!("{base}/wx/component/platform/{OA}/service?signature={}&timestamp={ts}&nonce=n1&echostr=echo-1234", "0".repeat(40));
    assert_eq!(h.http.get(&forged).send().await.unwrap().status(), 403);
}

/// Every instance killed with SIGKILL (real `wxgate serve` processes, mid-flight) and
/// Redis killed and restarted from its append-only file: every refresh token survives,
/// and a new instance serves every authorizer with no re-authorization.
#[tokio::test]
async fn sigkilled_instances_and_a_restarted_redis_lose_no_refresh_token() {
    let aof = TempDir::new("component-kill");
    let mut redis = RedisServer::start_durable(aof.path());
    let sb = sandbox().await;
    let sb_url = sb.base_url();
    let dir = TempDir::new("component-kill-cfg");
    let http = reqwest::Client::new();
    let (redis_url, redis_port) = (redis.url(), redis.port);
    let start = |n: usize| {
        let port = free_port();
        let toml = gateway_toml(
            &sb_url,
            dir.path(),
            &redis_store(&redis_url),
            "",
            &section(),
        );
        let path = write_config(&dir, &format!("wxgate-{n}.toml"), &toml, port);
        (
            spawn_wxgate(&["serve", "--config", &path], port),
            format!("http://127.0.0.1:{port}"),
        )
    };
    let (mut first, first_url) = start(1);
    let (mut second, second_url) = start(2);
    let post = |path: &str, body: Value| {
        let (http, url) = (http.clone(), format!("{sb_url}{path}"));
        async move { http.post(url).json(&body).send().await.unwrap() }
    };
    post("/admin/component/event_url", json!({ "component_appid": COMPONENT, "url": format!("{first_url}/wx/component/platform/event") })).await;
    for appid in [OA, MINI] {
        post(
            "/admin/component/authorize",
            json!({ "component_appid": COMPONENT, "authorizer_appid": appid }),
        )
        .await;
    }
    let token = |base: String, appid: &'static str| {
        let http = http.clone();
        async move { api_get(&http, format!("{base}/api/v1/platform:{appid}/token")).await }
    };
    // The second instance, which saw none of the pushes, serves both merchants.
    for appid in [OA, MINI] {
        let mut served = false;
        for _ in 0..100 {
            if token(second_url.clone(), appid).await.0 == 200 {
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(served, "{appid} served by the second instance");
    }
    let query_auths = sandbox_calls(&sb, "/cgi-bin/component/api_query_auth", COMPONENT);
    assert_eq!(query_auths, 2, "each authorization exchanged once");

    // Both instances killed (SIGKILL) while asks are in flight, then Redis the same way.
    let in_flight: Vec<_> = (0..20)
        .map(|i| {
            tokio::spawn(token(
                if i % 2 == 0 {
                    first_url.clone()
                } else {
                    second_url.clone()
                },
                OA,
            ))
        })
        .collect();
    first.0.kill().unwrap();
    second.0.kill().unwrap();
    for t in in_flight {
        let _ = t.await;
    }
    redis.kill();
    redis.restart();

    // A new instance: both merchants served, with no new authorization; the tokens kept
    // in Redis are dropped first, so each is fetched again with its refresh token.
    let redis_cli = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &redis_port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let held = redis_cli(&["--scan", "--pattern", "*:authorizer_token:*"]);
    assert_eq!(held.lines().count(), 2, "{held}");
    for key in held.lines() {
        redis_cli(&["del", key]);
    }
    let (_third, third_url) = start(3);
    let fetched = sandbox_calls(&sb, "/cgi-bin/component/api_authorizer_token", COMPONENT);
    for appid in [OA, MINI] {
        let mut answer = (0, Value::Null);
        for _ in 0..100 {
            answer = token(third_url.clone(), appid).await;
            if answer.0 == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(answer.0, 200, "{appid}: {}", answer.1);
    }
    assert_eq!(
        sandbox_calls(&sb, "/cgi-bin/component/api_authorizer_token", COMPONENT),
        fetched + 2,
        "each token fetched again with its surviving refresh token"
    );
    assert_eq!(
        sandbox_calls(&sb, "/cgi-bin/component/api_query_auth", COMPONENT),
        query_auths,
        "no re-authorization"
    );
}
