//! Acting for authorized merchants (代公众号 / 代小程序) against the sandbox's open
//! platform: the JS-SDK signed for a merchant's page, web authorization on its behalf
//! (both scopes), a merchant's Mini Program logged in with its phone number and data
//! decrypted, all with the platform's credentials and none of the merchant's secrets;
//! and every one of them refused, saying why, after the merchant withdrew or when it did
//! not grant the permission set.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::common::*;
use crate::component::{admin, eventually, sandbox, section, status, COMPONENT};

const AUTH_SECRET: &str = "on-behalf-auth-secret-0123456789";
const MINI_USER: &str = "oMiniUser00000000000000001";
const OA_USER: &str = "oSandboxUser000000000000002";
const DEST: &str = "https://saas.example.com/welcome";
const PAGE: &str = "https://h5.example.com/shop?x=1";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// A gateway with the platform `platform` (its page domain, its redirect origin) and web
/// authorization on, the ticket received, and the merchants `grants` authorized (each
/// with the permission sets given, or the sandbox's defaults).
async fn platform(grants: &[(&str, Option<Vec<i64>>)]) -> Harness {
    let extra = format!(
        "{}js_domains = [\"h5.example.com\"]\nauth_dest_hosts = [\"https://saas.example.com\"]\n\n[auth]\nsecret = \"{AUTH_SECRET}\"\n",
        section()
    );
    let h = Setup::new()
        .tag("on-behalf")
        .sandbox(sandbox().await)
        .extra(&extra)
        .start()
        .await;
    let (base, sb_url) = (h.gw.url(), h.sb.base_url());
    admin(&h, &sb_url, "/admin/component/event_url", json!({ "component_appid": COMPONENT, "url": format!("{base}/wx/component/platform/event") })).await;
    eventually("the ticket arrived", || async {
        status(&h, &base).await["ticket_age_secs"].is_number()
    })
    .await;
    let c = h.gw.state.components.component("platform").unwrap();
    for (appid, func_info) in grants {
        let mut body = json!({ "component_appid": COMPONENT, "authorizer_appid": appid });
        if let Some(ids) = func_info {
            body["func_info"] = json!(ids);
        }
        admin(&h, &sb_url, "/admin/component/authorize", body).await;
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
    h
}

async fn get(h: &Harness, url: &str) -> reqwest::Response {
    h.http.get(url).send().await.unwrap()
}

async fn config(h: &Harness, account: &str) -> (u16, Value) {
    let r = get(
        h,
        &format!("{}/wx/{account}/config?url={}", h.gw.url(), enc(PAGE)),
    )
    .await;
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn mp(h: &Harness, path: &str, session: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = h
        .http
        .post(format!("{}/wx/platform:{MINI}/mp/{path}", h.gw.url()))
        .json(&body);
    if let Some(s) = session {
        req = req.header("X-Wxgate-Session", s);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Web authorization for the merchant `OA` through its platform, as a browser follows
/// it: wxgate's link (with `component_appid`), the sandbox's authorize page (and its
/// consent page for snsapi_userinfo), the callback; the final redirect.
async fn log_in(h: &Harness, scope: &str, openid: &str) -> String {
    log_in_at(h, scope, openid).await.0
}

/// [`log_in`], with the callback's URL and the remembered-user cookie it set.
async fn log_in_at(h: &Harness, scope: &str, openid: &str) -> (String, String, String) {
    let r = get(
        h,
        &format!(
            "{}/wx/platform:{OA}/auth?dest={}&scope={scope}",
            h.gw.url(),
            enc(DEST)
        ),
    )
    .await;
    assert_eq!(r.status(), 302);
    let to_wechat = location(&r);
    let (authorize, fragment) = to_wechat.split_once('#').unwrap();
    assert_eq!(fragment, "wechat_redirect");
    let q = query(authorize);
    assert_eq!(q["appid"], OA, "the merchant's appid");
    assert_eq!(q["component_appid"], COMPONENT, "and the platform's");
    let r = get(h, authorize).await;
    let to_callback = if scope == "snsapi_base" {
        assert_eq!(r.status(), 302);
        location(&r)
    } else {
        assert_eq!(r.status(), 200, "the consent page");
        let decide = format!(
            "{}/connect/oauth2/decide?appid={OA}&redirect_uri={}&scope={scope}&state={}&component_appid={COMPONENT}&openid={openid}&decision=allow",
            h.sb.base_url(),
            enc(&q["redirect_uri"]),
            q["state"]
        );
        let r = get(h, &decide).await;
        assert_eq!(r.status(), 302);
        location(&r)
    };
    let r = get(h, &to_callback).await;
    assert_eq!(r.status(), 302);
    let cookie = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .unwrap_or_default();
    (location(&r), to_callback, cookie)
}

fn userinfo_of(redirect: &str) -> Value {
    assert!(redirect.starts_with(DEST), "{redirect}");
    serde_json::from_str(&query(redirect)["userinfo"]).unwrap()
}

#[tokio::test]
async fn a_merchants_pages_users_and_mini_program_through_its_platform() {
    let h = platform(&[(OA, None), (MINI, None)]).await;
    let account = format!("platform:{OA}");

    // JS-SDK: signed with the merchant's jsapi_ticket, which the sandbox's check
    // accepts; twenty pages at once cost one getticket for the merchant.
    let tokens_before = sandbox_calls(&h.sb, "/cgi-bin/token", OA)
        + sandbox_calls(&h.sb, "/cgi-bin/stable_token", OA);
    let answers = futures_util::future::join_all((0..20).map(|_| config(&h, &account))).await;
    for (status, v) in &answers {
        assert_eq!(*status, 200, "{v}");
    }
    let data = &answers[0].1["data"];
    assert_eq!(data["appId"], OA, "the merchant's appid");
    let check: Value = h
        .http
        .post(format!("{}/jssdk/check", h.sb.base_url()))
        .json(&json!({"url": PAGE, "config": data}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(sandbox_calls(&h.sb, "/cgi-bin/ticket/getticket", OA), 1);
    let own_tokens = |h: &Harness| {
        sandbox_calls(&h.sb, "/cgi-bin/token", OA)
            + sandbox_calls(&h.sb, "/cgi-bin/stable_token", OA)
    };
    assert_eq!(
        own_tokens(&h),
        tokens_before,
        "nothing fetched with the merchant's own secret (the harness's default account has it)"
    );
    // A page outside the platform's domains: refused with the reason.
    let r = get(
        &h,
        &format!(
            "{}/wx/{account}/config?url={}",
            h.gw.url(),
            enc("https://evil.example.net/")
        ),
    )
    .await;
    assert_eq!(r.status(), 400);

    // Web authorization on the merchant's behalf, both scopes.
    // (snsapi_base: no consent page; the sandbox's first user.)
    let base = log_in(&h, "snsapi_base", OA_USER).await;
    assert_eq!(userinfo_of(&base)["openid"], "oSandboxUser000000000000001");
    let full = log_in(&h, "snsapi_userinfo", OA_USER).await;
    let info = userinfo_of(&full);
    assert_eq!(info["openid"], OA_USER);
    assert!(info["nickname"].is_string(), "{info}");
    assert_eq!(
        sandbox_calls(&h.sb, "/sns/oauth2/component/access_token", COMPONENT),
        2
    );
    assert_eq!(sandbox_calls(&h.sb, "/sns/oauth2/access_token", OA), 0);

    // The merchant's Mini Program: login, phone number, decrypted data.
    let code = h.sb.platform.issue_js_code(MINI, MINI_USER).unwrap();
    let (status, v) = mp(&h, "login", None, json!({ "code": code })).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["openid"], MINI_USER);
    let session = v["data"]["session"].as_str().unwrap().to_owned();
    let key = h.sb.platform.session_key(MINI, MINI_USER).unwrap();
    assert!(
        !v.to_string().contains(&key),
        "the session_key stays inside"
    );
    assert_eq!(
        sandbox_calls(&h.sb, "/sns/component/jscode2session", COMPONENT),
        1
    );
    let phone_code = h.sb.platform.issue_phone_code(MINI, MINI_USER).unwrap();
    let (status, v) = mp(&h, "phone", Some(&session), json!({ "code": phone_code })).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["phone_info"]["purePhoneNumber"], "13800138000");
    let ui: Value = h
        .http
        .post(format!("{}/admin/miniprogram/userinfo", h.sb.base_url()))
        .json(&json!({"appid": MINI, "openid": MINI_USER}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (status, v) = mp(
        &h,
        "decrypt",
        Some(&session),
        json!({"encryptedData": ui["encryptedData"], "iv": ui["iv"]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["openId"], MINI_USER, "{v}");

    // The session checked with WeChat and reset, with the merchant's authorizer token.
    let r = h
        .http
        .get(format!(
            "{}/wx/platform:{MINI}/mp/session?remote=1",
            h.gw.url()
        ))
        .header("X-Wxgate-Session", &session)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"]["remote_valid"], true, "{v}");
    let (status, v) = mp(&h, "session/reset", Some(&session), json!({})).await;
    assert_eq!(status, 200, "{v}");
    assert_ne!(
        h.sb.platform.session_key(MINI, MINI_USER).unwrap(),
        key,
        "WeChat holds a new session_key"
    );

    // Both merchants withdraw: every call for them is refused, saying so.
    let c = h.gw.state.components.component("platform").unwrap();
    for appid in [OA, MINI] {
        admin(
            &h,
            &h.sb.base_url(),
            "/admin/component/unauthorize",
            json!({ "component_appid": COMPONENT, "authorizer_appid": appid }),
        )
        .await;
        eventually("the withdrawal arrived", || async {
            h.gw.state
                .components
                .authorizer(c, appid)
                .await
                .unwrap()
                .is_none()
        })
        .await;
    }
    let (status, v) = config(&h, &account).await;
    assert_eq!(status, 403, "{v}");
    assert!(
        v["state"]["msg"]
            .as_str()
            .unwrap()
            .contains("has not authorized"),
        "{v}"
    );
    let r = get(
        &h,
        &format!("{}/wx/{account}/auth?dest={}", h.gw.url(), enc(DEST)),
    )
    .await;
    assert_eq!(r.status(), 403);
    let code = h.sb.platform.issue_js_code(MINI, MINI_USER).unwrap();
    let (status, v) = mp(&h, "login", None, json!({ "code": code })).await;
    assert_eq!(status, 403, "{v}");
    let (status, _) = mp(&h, "phone", Some(&session), json!({ "code": "abc" })).await;
    assert_eq!(
        status, 403,
        "an old session does not outlive the authorization"
    );
    assert_eq!(
        sandbox_calls(&h.sb, "/sns/component/jscode2session", COMPONENT),
        1,
        "nothing more was asked of WeChat"
    );
}

#[tokio::test]
async fn a_missing_permission_set_or_an_unknown_merchant_is_named() {
    // The merchant granted messages and menus, not 网页服务权限 (4).
    let h = platform(&[(OA, Some(vec![1, 15]))]).await;
    let (status, v) = config(&h, &format!("platform:{OA}")).await;
    assert_eq!(status, 403, "{v}");
    let msg = v["state"]["msg"].as_str().unwrap();
    assert!(
        msg.contains("网页服务权限") && msg.contains("func_info id 4"),
        "{msg}"
    );
    let r = get(
        &h,
        &format!("{}/wx/platform:{OA}/auth?dest={}", h.gw.url(), enc(DEST)),
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(sandbox_calls(&h.sb, "/cgi-bin/ticket/getticket", OA), 0);
    // A merchant that never authorized, a platform that does not exist, a forged name.
    for (account, want) in [
        (format!("platform:{MINI}"), 403),
        ("nosuch:wxsandbox0000001".to_owned(), 404),
        ("platform:..%2F..".to_owned(), 404),
        (format!("platform:{OA}:x"), 404),
    ] {
        let (status, v) = config(&h, &account).await;
        assert_eq!(status, want, "{account}: {v}");
    }
}

/// Web authorization for a merchant keeps every protection of `/wx/auth`: the return
/// visit skips consent (its cookie per merchant), an expired user token is refreshed
/// through the platform, a reload of the callback exchanges nothing again and sets no
/// cookie without the browser binding, and a foreign `dest` is refused.
#[tokio::test]
async fn web_authorization_for_a_merchant_keeps_every_protection() {
    let h = platform(&[(OA, None)]).await;
    let (back, callback, cookie) = log_in_at(&h, "snsapi_userinfo", OA_USER).await;
    assert_eq!(userinfo_of(&back)["openid"], OA_USER);
    assert!(
        cookie.starts_with(&format!("wechat_jssdk_server_openid_platform.{OA}=")),
        "{cookie}"
    );
    let exchanges = || sandbox_calls(&h.sb, "/sns/oauth2/component/access_token", COMPONENT);
    assert_eq!(exchanges(), 1);
    let start = format!("{}/wx/platform:{OA}/auth?dest={}", h.gw.url(), enc(DEST));
    let visit = |cookie: Option<String>| {
        let mut req = h.http.get(&start);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        async move { req.send().await.unwrap() }
    };
    // The return visit: straight back, no consent.
    let r = visit(Some(cookie.clone())).await;
    assert_eq!(r.status(), 302);
    assert_eq!(userinfo_of(&location(&r))["openid"], OA_USER);
    // The callback reloaded (the code is used): the first result, no second exchange,
    // no cookie for a browser without the flow's binding.
    let r = get(&h, &callback).await;
    assert_eq!(r.status(), 302);
    assert!(r.headers().get("set-cookie").is_none());
    assert_eq!(exchanges(), 1);
    // Two hours on, the user's token is refreshed through the platform.
    h.advance(7200);
    let r = visit(Some(cookie.clone())).await;
    assert_eq!(userinfo_of(&location(&r))["openid"], OA_USER);
    assert_eq!(
        sandbox_calls(&h.sb, "/sns/oauth2/component/refresh_token", COMPONENT),
        1
    );
    assert_eq!(sandbox_calls(&h.sb, "/sns/oauth2/refresh_token", OA), 0);
    // A foreign dest, a forged cookie.
    let r = get(
        &h,
        &format!(
            "{}/wx/platform:{OA}/auth?dest={}",
            h.gw.url(),
            enc("https://evil.example.net/steal")
        ),
    )
    .await;
    assert_eq!(r.status(), 400);
    let forged = format!("wechat_jssdk_server_openid_platform.{OA}=forged.{OA_USER}");
    let r = visit(Some(forged)).await;
    assert!(
        location(&r).starts_with(&h.sb.base_url()),
        "a forged cookie goes through consent"
    );
}

/// A merchant's jsapi_ticket is the fleet's: two instances on Redis, sixty pages at once,
/// one `getticket`; near its end the keeper fetches the next one ahead of any page, and
/// the pages after it are signed with the new one at no further cost.
#[tokio::test]
async fn a_merchants_ticket_is_one_for_the_fleet_and_refreshed_ahead() {
    let redis = RedisServer::start();
    let sb = sandbox().await;
    let sb_url = sb.base_url();
    let extra = format!("{}js_domains = [\"h5.example.com\"]\n", section());
    let h1 = Setup::new()
        .tag("on-behalf-fleet")
        .sandbox(sb)
        .store(&redis_store(&redis.url()))
        .extra(&extra)
        .start()
        .await;
    let h2 = Setup::new()
        .tag("on-behalf-fleet")
        .upstream(&sb_url)
        .store(&redis_store(&redis.url()))
        .extra(&extra)
        .start()
        .await;
    let base = h1.gw.url();
    admin(&h1, &sb_url, "/admin/component/event_url", json!({ "component_appid": COMPONENT, "url": format!("{base}/wx/component/platform/event") })).await;
    eventually("the ticket arrived", || async {
        status(&h1, &base).await["ticket_age_secs"].is_number()
    })
    .await;
    admin(
        &h1,
        &sb_url,
        "/admin/component/authorize",
        json!({ "component_appid": COMPONENT, "authorizer_appid": OA }),
    )
    .await;
    let c = h1.gw.state.components.component("platform").unwrap();
    eventually("authorized", || async {
        h1.gw
            .state
            .components
            .authorizer(c, OA)
            .await
            .unwrap()
            .is_some()
    })
    .await;
    let account = format!("platform:{OA}");
    let pages = (0..60).map(|i| {
        let h = if i % 2 == 0 { &h1 } else { &h2 };
        config(h, &account)
    });
    for (status, v) in futures_util::future::join_all(pages).await {
        assert_eq!(status, 200, "{v}");
    }
    let tickets = || sandbox_calls(&h1.sb, "/cgi-bin/ticket/getticket", OA);
    assert_eq!(tickets(), 1, "one getticket for the fleet");

    // Into the ticket's last minutes: the keeper fetches the next one, unasked.
    h1.advance(7200 - 290);
    h2.clock.advance(7200 - 290);
    eventually("refreshed ahead", || async { tickets() == 2 }).await;
    let (status, v) = config(&h2, &account).await;
    assert_eq!(status, 200, "{v}");
    let check: Value = h1
        .http
        .post(format!("{sb_url}/jssdk/check"))
        .json(&json!({"url": PAGE, "config": v["data"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(check["ok"], true, "signed with the new ticket: {check}");
    assert_eq!(tickets(), 2, "no fetch for the pages after it");
}
