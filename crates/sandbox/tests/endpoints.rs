//! Every sandbox endpoint: its success path and each WeChat error it plays, over HTTP.

use serde_json::{json, Value};
use wxgate_sandbox::{Sandbox, SandboxConfig};

const OA: &str = "wxsandbox0000001";
const OA_SECRET: &str = "sandbox-secret-official-0001";
const MINI: &str = "wxsandboxmini001";
const MINI_SECRET: &str = "sandbox-secret-miniapp-0001";
const USER1: &str = "oSandboxUser000000000000001";
const USER2: &str = "oSandboxUser000000000000002";
const MINI_USER: &str = "oMiniUser00000000000000001";

struct T {
    sb: Sandbox,
    http: reqwest::Client,
}

impl T {
    async fn new() -> T {
        Self::with(SandboxConfig::example()).await
    }

    async fn with(config: SandboxConfig) -> T {
        T {
            sb: Sandbox::start_ephemeral(config).await.unwrap(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sb.base_url())
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn token(&self) -> String {
        let v = self
            .get(&format!(
                "/cgi-bin/token?grant_type=client_credential&appid={OA}&secret={OA_SECRET}"
            ))
            .await;
        v["access_token"].as_str().unwrap().to_owned()
    }

    async fn advance(&self, seconds: i64) {
        self.post("/admin/clock/advance", json!({ "seconds": seconds }))
            .await;
    }

    async fn check(&self, token: &str) -> i64 {
        self.get(&format!("/admin/token/check?access_token={token}"))
            .await["errcode"]
            .as_i64()
            .unwrap()
    }

    async fn calls(&self, path: &str) -> u64 {
        self.get("/admin/calls").await[path]["total"]
            .as_u64()
            .unwrap_or(0)
    }
}

fn errcode(v: &Value) -> i64 {
    v["errcode"].as_i64().unwrap_or(0)
}

#[tokio::test]
async fn classic_token_success_and_errors() {
    let t = T::new().await;
    let v = t
        .get(&format!(
            "/cgi-bin/token?grant_type=client_credential&appid={OA}&secret={OA_SECRET}"
        ))
        .await;
    assert_eq!(v["expires_in"], 7200);
    assert!(v["access_token"].as_str().unwrap().len() > 64);
    assert!(v.get("errcode").is_none());
    let t = &t;
    let e = |q: String| async move { errcode(&t.get(&format!("/cgi-bin/token?{q}")).await) };
    assert_eq!(
        e("grant_type=client_credential&appid=wxnope&secret=x".to_string()).await,
        40013
    );
    assert_eq!(
        e(format!(
            "grant_type=client_credential&appid={OA}&secret=wrong"
        ))
        .await,
        40001
    );
    assert_eq!(
        e(format!("grant_type=password&appid={OA}&secret={OA_SECRET}")).await,
        40002
    );
    assert_eq!(
        e(format!("grant_type=client_credential&secret={OA_SECRET}")).await,
        41002
    );
    assert_eq!(
        e(format!("grant_type=client_credential&appid={OA}")).await,
        41004
    );
}

#[tokio::test]
async fn a_new_classic_token_supersedes_the_old_after_five_minutes() {
    let t = T::new().await;
    let old = t.token().await;
    assert_eq!(t.check(&old).await, 0);
    let new = t.token().await;
    assert_ne!(old, new);
    assert_eq!(
        t.check(&old).await,
        0,
        "the old token works during the overlap"
    );
    t.advance(299).await;
    assert_eq!(t.check(&old).await, 0);
    t.advance(2).await;
    assert_eq!(
        t.check(&old).await,
        40001,
        "superseded: invalid, not latest"
    );
    assert_eq!(t.check(&new).await, 0);
    t.advance(7200).await;
    assert_eq!(t.check(&new).await, 42001, "expired");
    assert_eq!(t.check("made-up").await, 40001);
    assert_eq!(t.check("").await, 41001);
}

#[tokio::test]
async fn classic_daily_quota_answers_45009_and_clear_quota_resets_it() {
    let mut cfg = SandboxConfig::example();
    cfg.limits.token_daily_quota = 3;
    cfg.limits.clear_quota_monthly = 1;
    let t = T::with(cfg).await;
    let mut last = String::new();
    for _ in 0..3 {
        last = t.token().await;
    }
    let v = t
        .get(&format!(
            "/cgi-bin/token?grant_type=client_credential&appid={OA}&secret={OA_SECRET}"
        ))
        .await;
    assert_eq!(errcode(&v), 45009);
    // clear_quota needs a token of the same app.
    let v = t
        .post(
            &format!("/cgi-bin/clear_quota?access_token={last}"),
            json!({"appid": MINI}),
        )
        .await;
    assert_eq!(errcode(&v), 40013);
    let v = t
        .post(
            &format!("/cgi-bin/clear_quota?access_token={last}"),
            json!({"appid": OA}),
        )
        .await;
    assert_eq!(errcode(&v), 0);
    assert_eq!(v["errmsg"], "ok");
    let fresh = t.token().await;
    assert_ne!(fresh, last);
    // Monthly limit on clearing.
    let v = t
        .post(
            &format!("/cgi-bin/clear_quota?access_token={fresh}"),
            json!({"appid": OA}),
        )
        .await;
    assert_eq!(errcode(&v), 48006);
    let v = t
        .post(
            "/cgi-bin/clear_quota?access_token=nope",
            json!({"appid": OA}),
        )
        .await;
    assert_eq!(errcode(&v), 40001);
    // A new day restores the quota.
    t.advance(86400).await;
    assert!(!t.token().await.is_empty());
}

#[tokio::test]
async fn stable_token_modes() {
    let t = T::new().await;
    let stable = |force: bool| {
        let t = &t;
        async move {
            t.post(
                "/cgi-bin/stable_token",
                json!({"grant_type": "client_credential", "appid": OA, "secret": OA_SECRET, "force_refresh": force}),
            )
            .await
        }
    };
    let a = stable(false).await;
    let a_tok = a["access_token"].as_str().unwrap().to_owned();
    assert_eq!(a["expires_in"], 7200);
    // Normal mode: the same token while it is valid, with its remaining life.
    t.advance(1000).await;
    let b = stable(false).await;
    assert_eq!(b["access_token"], a_tok.as_str());
    assert_eq!(b["expires_in"], 6200);
    // Stable and classic are separate: a classic fetch does not touch the stable token.
    let classic = t.token().await;
    assert_ne!(classic, a_tok);
    assert_eq!(t.check(&a_tok).await, 0);
    // In its last 5 minutes normal mode hands out a new one; both stay valid.
    t.advance(6200 - 299).await;
    let c = stable(false).await;
    let c_tok = c["access_token"].as_str().unwrap().to_owned();
    assert_ne!(c_tok, a_tok);
    assert_eq!(t.check(&a_tok).await, 0);
    t.advance(300).await;
    assert_eq!(t.check(&a_tok).await, 42001);
    assert_eq!(t.check(&c_tok).await, 0);
    // Forced: a new token, the previous one invalid at once.
    let d = stable(true).await;
    let d_tok = d["access_token"].as_str().unwrap().to_owned();
    assert_ne!(d_tok, c_tok);
    assert_eq!(t.check(&c_tok).await, 40001);
    // Within 30 s a second force is ignored: same token.
    t.advance(10).await;
    assert_eq!(stable(true).await["access_token"], d_tok.as_str());
    t.advance(30).await;
    assert_ne!(stable(true).await["access_token"], d_tok.as_str());
    // Errors.
    let v = t
        .post(
            "/cgi-bin/stable_token",
            json!({"grant_type": "client_credential", "appid": OA, "secret": "bad"}),
        )
        .await;
    assert_eq!(errcode(&v), 40001);
    let v = t
        .post(
            "/cgi-bin/stable_token",
            json!({"grant_type": "x", "appid": OA, "secret": OA_SECRET}),
        )
        .await;
    assert_eq!(errcode(&v), 40002);
    let v: Value = t
        .http
        .post(t.url("/cgi-bin/stable_token"))
        .body("{not json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(errcode(&v), 47001);
}

#[tokio::test]
async fn stable_force_refresh_is_limited_to_20_a_day() {
    let t = T::new().await;
    for i in 0..20 {
        let v = t
            .post(
                "/cgi-bin/stable_token",
                json!({"grant_type": "client_credential", "appid": OA, "secret": OA_SECRET, "force_refresh": true}),
            )
            .await;
        assert!(v["access_token"].is_string(), "force {i}: {v}");
        t.advance(31).await;
    }
    let v = t
        .post(
            "/cgi-bin/stable_token",
            json!({"grant_type": "client_credential", "appid": OA, "secret": OA_SECRET, "force_refresh": true}),
        )
        .await;
    assert_eq!(errcode(&v), 45009, "{v}");
}

#[tokio::test]
async fn tickets() {
    let t = T::new().await;
    let token = t.token().await;
    let v = t
        .get(&format!(
            "/cgi-bin/ticket/getticket?access_token={token}&type=jsapi"
        ))
        .await;
    assert_eq!(v["errcode"], 0);
    assert_eq!(v["errmsg"], "ok");
    assert_eq!(v["expires_in"], 7200);
    let ticket = v["ticket"].as_str().unwrap().to_owned();
    let again = t
        .get(&format!(
            "/cgi-bin/ticket/getticket?access_token={token}&type=jsapi"
        ))
        .await;
    assert_eq!(again["ticket"], ticket.as_str());
    let card = t
        .get(&format!(
            "/cgi-bin/ticket/getticket?access_token={token}&type=wx_card"
        ))
        .await;
    assert_ne!(card["ticket"], ticket.as_str());
    let bad = t
        .get(&format!(
            "/cgi-bin/ticket/getticket?access_token={token}&type=other"
        ))
        .await;
    assert_eq!(errcode(&bad), 40097);
    let bad = t
        .get("/cgi-bin/ticket/getticket?access_token=forged&type=jsapi")
        .await;
    assert_eq!(errcode(&bad), 40001);
    t.advance(7200).await;
    let bad = t
        .get(&format!(
            "/cgi-bin/ticket/getticket?access_token={token}&type=jsapi"
        ))
        .await;
    assert_eq!(errcode(&bad), 42001);
}

#[tokio::test]
async fn followers_info_and_batchget() {
    let mut cfg = SandboxConfig::example();
    cfg.apps[0].extra_followers = 10_500;
    let t = T::with(cfg).await;
    let token = t.token().await;
    let page1 = t
        .get(&format!("/cgi-bin/user/get?access_token={token}"))
        .await;
    assert_eq!(page1["total"], 10_502);
    assert_eq!(page1["count"], 10_000);
    assert_eq!(page1["data"]["openid"][0], USER1);
    let next = page1["next_openid"].as_str().unwrap();
    let page2 = t
        .get(&format!(
            "/cgi-bin/user/get?access_token={token}&next_openid={next}"
        ))
        .await;
    assert_eq!(page2["count"], 502);
    let last = page2["next_openid"].as_str().unwrap();
    let page3 = t
        .get(&format!(
            "/cgi-bin/user/get?access_token={token}&next_openid={last}"
        ))
        .await;
    assert_eq!(page3["count"], 0);
    assert!(page3.get("data").is_none());
    assert_eq!(
        errcode(&t.get("/cgi-bin/user/get?access_token=x").await),
        40001
    );

    let info = t
        .get(&format!(
            "/cgi-bin/user/info?access_token={token}&openid={USER1}&lang=zh_CN"
        ))
        .await;
    assert_eq!(info["subscribe"], 1);
    assert_eq!(info["unionid"], "uSandboxUnion0000000000001");
    assert_eq!(
        errcode(
            &t.get(&format!(
                "/cgi-bin/user/info?access_token={token}&openid=nobody"
            ))
            .await
        ),
        40003
    );

    let list: Vec<Value> = [USER1, USER2]
        .iter()
        .map(|o| json!({"openid": o, "lang": "zh_CN"}))
        .collect();
    let v = t
        .post(
            &format!("/cgi-bin/user/info/batchget?access_token={token}"),
            json!({"user_list": list}),
        )
        .await;
    assert_eq!(v["user_info_list"].as_array().unwrap().len(), 2);
    let many: Vec<Value> = (0..101).map(|_| json!({"openid": USER1})).collect();
    let v = t
        .post(
            &format!("/cgi-bin/user/info/batchget?access_token={token}"),
            json!({"user_list": many}),
        )
        .await;
    assert_eq!(errcode(&v), 40097);
}

#[tokio::test]
async fn messages_are_validated_and_recorded() {
    let t = T::new().await;
    let token = t.token().await;
    let ok = t
        .post(
            &format!("/cgi-bin/message/custom/send?access_token={token}"),
            json!({"touser": USER1, "msgtype": "text", "text": {"content": "hi"}}),
        )
        .await;
    assert_eq!(ok["errcode"], 0);
    let bad = t
        .post(
            &format!("/cgi-bin/message/custom/send?access_token={token}"),
            json!({"touser": USER1, "msgtype": "bogus"}),
        )
        .await;
    assert_eq!(errcode(&bad), 40008);
    let bad = t
        .post(
            &format!("/cgi-bin/message/custom/send?access_token={token}"),
            json!({"touser": "nobody", "msgtype": "text", "text": {"content": "x"}}),
        )
        .await;
    assert_eq!(errcode(&bad), 40003);
    let tpl = t
        .post(
            &format!("/cgi-bin/message/template/send?access_token={token}"),
            json!({"touser": USER2, "template_id": "T1", "data": {"first": {"value": "x"}}}),
        )
        .await;
    assert_eq!(tpl["errcode"], 0);
    assert!(tpl["msgid"].as_u64().unwrap() > 0);
    let bad = t
        .post(
            &format!("/cgi-bin/message/template/send?access_token={token}"),
            json!({"touser": USER2}),
        )
        .await;
    assert_eq!(errcode(&bad), 40037);
    let sent = t.get(&format!("/admin/sent?appid={OA}")).await;
    let sent = sent.as_array().unwrap();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["kind"], "custom");
    assert_eq!(sent[0]["body"]["text"]["content"], "hi");
    assert_eq!(sent[1]["kind"], "template");
}

#[tokio::test]
async fn jscode2session_and_open_data() {
    let t = T::new().await;
    let code = t
        .post(
            "/admin/miniprogram/login",
            json!({"appid": MINI, "openid": MINI_USER}),
        )
        .await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let q = |c: &str, s: &str| {
        format!(
            "/sns/jscode2session?appid={MINI}&secret={s}&js_code={c}&grant_type=authorization_code"
        )
    };
    let v = t.get(&q(&code, MINI_SECRET)).await;
    assert_eq!(v["openid"], MINI_USER);
    assert_eq!(v["unionid"], "uSandboxUnion0000000000001");
    let key1 = v["session_key"].as_str().unwrap().to_owned();
    assert_eq!(
        errcode(&t.get(&q(&code, MINI_SECRET)).await),
        40163,
        "used code"
    );
    assert_eq!(errcode(&t.get(&q("unknown", MINI_SECRET)).await), 40029);
    // getUserInfo data under the current session_key, verifiable with the protocol core.
    let ui = t
        .post(
            "/admin/miniprogram/userinfo",
            json!({"appid": MINI, "openid": MINI_USER}),
        )
        .await;
    let raw = ui["rawData"].as_str().unwrap();
    assert!(wxgate_proto::miniprogram::verify_raw_data(
        raw,
        &key1,
        ui["signature"].as_str().unwrap()
    ));
    let data = wxgate_proto::miniprogram::decrypt(
        &key1,
        ui["iv"].as_str().unwrap(),
        ui["encryptedData"].as_str().unwrap(),
        MINI,
    )
    .unwrap();
    assert_eq!(data.value["openId"], MINI_USER);
    assert_eq!(data.value["watermark"]["appid"], MINI);
    let phone = t
        .post(
            "/admin/miniprogram/phonenumber",
            json!({"appid": MINI, "openid": MINI_USER}),
        )
        .await;
    let p = wxgate_proto::miniprogram::decrypt(
        &key1,
        phone["iv"].as_str().unwrap(),
        phone["encryptedData"].as_str().unwrap(),
        MINI,
    )
    .unwrap();
    assert_eq!(p.value["phoneNumber"], "13800138000");
    // A new login rotates the session_key.
    let code2 = t
        .post(
            "/admin/miniprogram/login",
            json!({"appid": MINI, "openid": MINI_USER}),
        )
        .await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let key2 = t.get(&q(&code2, MINI_SECRET)).await["session_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(key1, key2);
    // Expired codes and wrong secrets.
    let code3 = t
        .post(
            "/admin/miniprogram/login",
            json!({"appid": MINI, "openid": MINI_USER}),
        )
        .await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(errcode(&t.get(&q(&code3, "wrong")).await), 40125);
    t.advance(301).await;
    assert_eq!(errcode(&t.get(&q(&code3, MINI_SECRET)).await), 40029);
}

#[tokio::test]
async fn oauth_base_and_userinfo_flows() {
    let t = T::new().await;
    let redirect = "https://app.example.com/wx/auth/callback?dest=x";
    let auth = |scope: &str, state: &str| {
        format!(
            "/connect/oauth2/authorize?appid={OA}&redirect_uri={}&response_type=code&scope={scope}&state={state}#wechat_redirect",
            urlencode(redirect)
        )
    };
    // snsapi_base: a silent redirect with code and state, the redirect's own query kept.
    let r = t
        .http
        .get(t.url(&auth("snsapi_base", "abc123")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(loc.host_str(), Some("app.example.com"));
    let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["dest"], "x");
    assert_eq!(q["state"], "abc123");
    let code = q["code"].clone();
    let tok = t
        .get(&format!("/sns/oauth2/access_token?appid={OA}&secret={OA_SECRET}&code={code}&grant_type=authorization_code"))
        .await;
    assert_eq!(tok["scope"], "snsapi_base");
    assert_eq!(tok["openid"], USER1);
    let at = tok["access_token"].as_str().unwrap();
    let ui = t
        .get(&format!(
            "/sns/userinfo?access_token={at}&openid={USER1}&lang=zh_CN"
        ))
        .await;
    assert_eq!(errcode(&ui), 48001, "base scope has no userinfo");
    assert_eq!(
        t.get(&format!("/sns/auth?access_token={at}&openid={USER1}"))
            .await["errcode"],
        0
    );
    let again = t
        .get(&format!("/sns/oauth2/access_token?appid={OA}&secret={OA_SECRET}&code={code}&grant_type=authorization_code"))
        .await;
    assert_eq!(errcode(&again), 40163);

    // snsapi_userinfo: the consent page, then Allow as the second user.
    let page = t
        .http
        .get(t.url(&auth("snsapi_userinfo", "s1")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("id=allow") && html.contains(USER2));
    let decide = format!(
        "/connect/oauth2/decide?appid={OA}&redirect_uri={}&scope=snsapi_userinfo&state=s1&openid={USER2}&decision=allow",
        urlencode(redirect)
    );
    let r = t.http.get(t.url(&decide)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let code = loc
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tok = t
        .get(&format!("/sns/oauth2/access_token?appid={OA}&secret={OA_SECRET}&code={code}&grant_type=authorization_code"))
        .await;
    let at = tok["access_token"].as_str().unwrap().to_owned();
    let rt = tok["refresh_token"].as_str().unwrap().to_owned();
    let ui = t
        .get(&format!(
            "/sns/userinfo?access_token={at}&openid={USER2}&lang=zh_CN"
        ))
        .await;
    assert_eq!(ui["nickname"], "小明");
    assert_eq!(ui["privilege"][0], "chinaunicom");
    assert_eq!(
        errcode(
            &t.get(&format!("/sns/userinfo?access_token={at}&openid={USER1}"))
                .await
        ),
        40003
    );
    // Deny: back without a code.
    let r = t
        .http
        .get(t.url(&decide.replace("decision=allow", "decision=deny")))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(!loc.contains("code=") && loc.contains("state=s1"), "{loc}");
    // The user token expires; the refresh token renews it for 30 days.
    t.advance(7200).await;
    assert_eq!(
        errcode(
            &t.get(&format!("/sns/userinfo?access_token={at}&openid={USER2}"))
                .await
        ),
        42001
    );
    assert_eq!(
        errcode(
            &t.get(&format!("/sns/auth?access_token={at}&openid={USER2}"))
                .await
        ),
        42001
    );
    let re = t
        .get(&format!(
            "/sns/oauth2/refresh_token?appid={OA}&grant_type=refresh_token&refresh_token={rt}"
        ))
        .await;
    let at2 = re["access_token"].as_str().unwrap();
    assert_eq!(re["refresh_token"], rt.as_str());
    assert_eq!(
        t.get(&format!("/sns/userinfo?access_token={at2}&openid={USER2}"))
            .await["openid"],
        USER2
    );
    assert_eq!(
        errcode(
            &t.get(&format!(
                "/sns/oauth2/refresh_token?appid={OA}&grant_type=refresh_token&refresh_token=nope"
            ))
            .await
        ),
        40030
    );
    t.advance(30 * 86400).await;
    assert_eq!(
        errcode(
            &t.get(&format!(
                "/sns/oauth2/refresh_token?appid={OA}&grant_type=refresh_token&refresh_token={rt}"
            ))
            .await
        ),
        42002
    );
    // Codes older than 5 minutes.
    let code = t
        .post("/admin/oauth/code", json!({"appid": OA, "openid": USER1}))
        .await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    t.advance(300).await;
    let old = t
        .get(&format!("/sns/oauth2/access_token?appid={OA}&secret={OA_SECRET}&code={code}&grant_type=authorization_code"))
        .await;
    assert_eq!(errcode(&old), 40029);
    let bad_secret = t
        .get(&format!("/sns/oauth2/access_token?appid={OA}&secret=bad&code={code}&grant_type=authorization_code"))
        .await;
    assert_eq!(errcode(&bad_secret), 40125);
}

#[tokio::test]
async fn authorize_refuses_bad_links() {
    let mut cfg = SandboxConfig::example();
    cfg.apps[0].oauth_domains = vec!["app.example.com".into()];
    let t = T::with(cfg).await;
    let link = |appid: &str, redirect: &str, rt: &str, scope: &str, state: &str| {
        format!(
            "/connect/oauth2/authorize?appid={appid}&redirect_uri={}&response_type={rt}&scope={scope}&state={state}",
            urlencode(redirect)
        )
    };
    let ok = "https://app.example.com/cb";
    for (path, code) in [
        (link("", ok, "code", "snsapi_base", "s"), "10012"),
        (link("wxnope", ok, "code", "snsapi_base", "s"), "40013"),
        (link(OA, "", "code", "snsapi_base", "s"), "10011"),
        (
            link(
                OA,
                "https://evil.example.net/cb",
                "code",
                "snsapi_base",
                "s",
            ),
            "10003",
        ),
        (link(OA, ok, "token", "snsapi_base", "s"), "40097"),
        (link(OA, ok, "code", "", "s"), "10010"),
        (link(OA, ok, "code", "snsapi_login", "s"), "10005"),
        (link(OA, ok, "code", "snsapi_base", "has-dash"), "40097"),
        (
            link(OA, ok, "code", "snsapi_base", &"a".repeat(129)),
            "40097",
        ),
    ] {
        let r = t.http.get(t.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let body = r.text().await.unwrap();
        assert!(
            body.contains(&format!("<p id=errcode>{code}</p>")),
            "{path}: {body}"
        );
    }
    let r = t
        .http
        .get(t.url(&link(OA, ok, "code", "snsapi_base", &"a".repeat(128))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
}

#[tokio::test]
async fn auto_approve_skips_the_consent_page() {
    let mut cfg = SandboxConfig::example();
    cfg.auto_approve = true;
    let t = T::with(cfg).await;
    let r = t
        .http
        .get(t.url(&format!(
            "/connect/oauth2/authorize?appid={OA}&redirect_uri={}&response_type=code&scope=snsapi_userinfo&state=z",
            urlencode("http://localhost/cb")
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(r.headers()["location"].to_str().unwrap().contains("code="));
}

#[tokio::test]
async fn jssdk_check_explains_its_verdict() {
    let mut cfg = SandboxConfig::example();
    cfg.apps[0].js_domains = vec!["h5.example.com".into()];
    let t = T::with(cfg).await;
    let token = t.token().await;
    let ticket = t
        .get(&format!(
            "/cgi-bin/ticket/getticket?access_token={token}&type=jsapi"
        ))
        .await["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = "https://h5.example.com/page?a=1#frag";
    let sig = wxgate_proto::jssdk::signature(&ticket, "nonce1", "1700000000", url);
    let body = |url: &str, sig: &str| json!({"url": url, "config": {"appId": OA, "timestamp": 1700000000, "nonceStr": "nonce1", "signature": sig}});
    let r = t
        .http
        .post(t.url("/jssdk/check"))
        .json(&body(url, &sig))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["errMsg"], "config:ok");
    let v = t
        .post(
            "/jssdk/check",
            body("https://h5.example.com/page?a=2", &sig),
        )
        .await;
    assert_eq!(v["errMsg"], "config:invalid signature");
    assert!(v["reason"]
        .as_str()
        .unwrap()
        .contains("url=https://h5.example.com/page?a=2"));
    assert!(
        !v["reason"].as_str().unwrap().contains(&ticket),
        "the ticket is not echoed"
    );
    let v = t
        .post("/jssdk/check", body("https://other.example.com/", &sig))
        .await;
    assert_eq!(v["errMsg"], "config:invalid url domain");
    let v = t.post("/jssdk/check", json!({"url": url, "appId": "wxnope", "timestamp": "1", "nonceStr": "n", "signature": "s"})).await;
    assert_eq!(v["errMsg"], "config:invalid appId");
    let pre = t
        .http
        .request(reqwest::Method::OPTIONS, t.url("/jssdk/check"))
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 200);
    assert!(pre.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    // An expired ticket makes every signature invalid.
    t.advance(7200).await;
    let v = t.post("/jssdk/check", body(url, &sig)).await;
    assert_eq!(v["ok"], false);
}

#[tokio::test]
async fn counters_count_per_endpoint_and_app() {
    let t = T::new().await;
    t.token().await;
    t.token().await;
    let _ = t
        .get("/cgi-bin/token?grant_type=client_credential&appid=wxnope&secret=x")
        .await;
    let calls = t.get("/admin/calls").await;
    assert_eq!(calls["/cgi-bin/token"]["total"], 3);
    assert_eq!(calls["/cgi-bin/token"]["by_app"][OA], 2);
    t.http.delete(t.url("/admin/calls")).send().await.unwrap();
    assert_eq!(t.calls("/cgi-bin/token").await, 0);
}

#[tokio::test]
async fn faults_busy_status_latency_drop_and_ratio() {
    let t = T::new().await;
    let token_path =
        format!("/cgi-bin/token?grant_type=client_credential&appid={OA}&secret={OA_SECRET}");
    t.post(
        "/admin/faults",
        json!({"path": "/cgi-bin/token", "kind": "busy", "count": 2}),
    )
    .await;
    assert_eq!(errcode(&t.get(&token_path).await), -1);
    assert_eq!(errcode(&t.get(&token_path).await), -1);
    assert!(
        t.get(&token_path).await["access_token"].is_string(),
        "the count is spent"
    );

    t.post(
        "/admin/faults",
        json!({"path": "/cgi-bin/token", "kind": "status", "status": 502, "count": 1}),
    )
    .await;
    let r = t.http.get(t.url(&token_path)).send().await.unwrap();
    assert_eq!(r.status(), 502);

    t.post(
        "/admin/faults",
        json!({"path": "*", "kind": "drop", "count": 1}),
    )
    .await;
    let r = t.http.get(t.url(&token_path)).send().await;
    let failed = match r {
        Err(_) => true,
        Ok(resp) => resp.bytes().await.is_err(),
    };
    assert!(failed, "a dropped connection is a transport error");

    t.post(
        "/admin/faults",
        json!({"path": "/cgi-bin/token", "kind": "latency", "ms": 300, "count": 1}),
    )
    .await;
    let started = std::time::Instant::now();
    assert!(t.get(&token_path).await["access_token"].is_string());
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));

    t.post(
        "/admin/faults",
        json!({"path": "/cgi-bin/token", "kind": "busy", "ratio": 0.5}),
    )
    .await;
    let mut busy = 0;
    for _ in 0..200 {
        if errcode(&t.get(&token_path).await) == -1 {
            busy += 1;
        }
    }
    assert!((40..=160).contains(&busy), "about half busy, got {busy}");
    assert_eq!(t.get("/admin/faults").await.as_array().unwrap().len(), 1);
    t.http.delete(t.url("/admin/faults")).send().await.unwrap();
    assert!(t.get(&token_path).await["access_token"].is_string());
    let v = t
        .post(
            "/admin/faults",
            json!({"path": "*", "kind": "busy", "ratio": 2.0}),
        )
        .await;
    assert!(v["error"].is_string());
}

#[tokio::test]
async fn clock_reads_and_advances() {
    let t = T::new().await;
    let before = t.get("/admin/clock").await["now"].as_i64().unwrap();
    let v = t
        .post("/admin/clock/advance", json!({"seconds": 3600}))
        .await;
    assert!(v["now"].as_i64().unwrap() >= before + 3600);
    assert_eq!(v["offset"], 3600);
    let v = t
        .post("/admin/clock/advance", json!({"seconds": -100}))
        .await;
    assert_eq!(v["offset"], 3600, "time never runs back");
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `/cgi-bin/component/api_component_token`: the open platform's component token, from
/// its secret and a verify ticket it was pushed, with WeChat's errcodes.
#[tokio::test]
async fn component_token_takes_a_pushed_ticket() {
    const COMPONENT: &str = "wxcomponent00001";
    const COMPONENT_SECRET: &str = "sandbox-secret-component-01";
    let mut config = SandboxConfig::example();
    config.apps.push(
        toml::from_str(&format!(
            "appid = \"{COMPONENT}\"\nsecret = \"{COMPONENT_SECRET}\"\nkind = \"component\""
        ))
        .unwrap(),
    );
    let t = T::with(config).await;
    let path = "/cgi-bin/component/api_component_token";
    let ask = |appid: &str, secret: &str, ticket: &str| json!({"component_appid": appid, "component_appsecret": secret, "component_verify_ticket": ticket});
    let ticket = t
        .get(&format!(
            "/admin/component/ticket?component_appid={COMPONENT}"
        ))
        .await["component_verify_ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(ticket.starts_with("ticket@@@"), "{ticket}");

    let v = t
        .post(path, ask(COMPONENT, COMPONENT_SECRET, &ticket))
        .await;
    let token = v["component_access_token"].as_str().unwrap().to_owned();
    assert_eq!(v["expires_in"], 7200);
    // Not an app's access_token: WeChat's app APIs refuse it.
    assert_eq!(t.check(&token).await, 40001);

    let errcode = |v: Value| v["errcode"].as_i64().unwrap();
    assert_eq!(
        errcode(t.post(path, ask(OA, OA_SECRET, &ticket)).await),
        61011
    );
    assert_eq!(
        errcode(t.post(path, ask(COMPONENT, "wrong", &ticket)).await),
        40125
    );
    assert_eq!(
        errcode(
            t.post(path, ask(COMPONENT, COMPONENT_SECRET, "ticket@@@forged"))
                .await
        ),
        61006
    );
    assert_eq!(
        errcode(t.post(path, ask(COMPONENT, COMPONENT_SECRET, "")).await),
        61006
    );
    let r = t
        .http
        .post(t.url(path))
        .body("<xml/>")
        .send()
        .await
        .unwrap();
    assert_eq!(errcode(r.json().await.unwrap()), 47001);

    // A new ticket every 10 minutes; each accepted for 12 hours, then 61005.
    t.advance(600).await;
    let newer = t
        .get(&format!(
            "/admin/component/ticket?component_appid={COMPONENT}"
        ))
        .await["component_verify_ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(newer, ticket);
    assert!(t
        .post(path, ask(COMPONENT, COMPONENT_SECRET, &ticket))
        .await["component_access_token"]
        .is_string());
    t.advance(12 * 3600 - 600).await;
    assert_eq!(
        errcode(
            t.post(path, ask(COMPONENT, COMPONENT_SECRET, &ticket))
                .await
        ),
        61005
    );
    assert!(
        t.post(path, ask(COMPONENT, COMPONENT_SECRET, &newer)).await["component_access_token"]
            .is_string()
    );
    let calls = t.get("/admin/calls").await;
    assert_eq!(calls[path]["by_app"][COMPONENT], 7, "{calls}");
}
