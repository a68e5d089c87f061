//! `/wx/config` and `/wx/auth` as pages and browsers use them, through the sandbox.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use wxgate::credentials::Credential;
use wxgate::store::Store;
use wxgate::Clock;
use wxgate_sandbox::{Sandbox, SandboxConfig};

const USER1: &str = "oSandboxUser000000000000001";
const USER2: &str = "oSandboxUser000000000000002";
const SECRET: &str = "web-test-auth-secret-0123456789";

fn web_extra(store_extra: &str) -> String {
    format!(
        r#"
[auth]
secret = "{SECRET}"
sweep_interval_ms = 3600000
{store_extra}

[accounts.default.x]
"#
    )
    .replace("\n[accounts.default.x]\n", "")
}

/// The harness, with web authorization on.
struct Web(Harness);

impl std::ops::Deref for Web {
    type Target = Harness;

    fn deref(&self) -> &Harness {
        &self.0
    }
}

async fn start_web(
    sb: Sandbox,
    store: &str,
    dir: TempDir,
    account_extra: &str,
    clock: Clock,
) -> Web {
    Web(Setup::new()
        .sandbox(sb)
        .store(store)
        .dir(dir)
        .clock(clock)
        .extra(&web_extra(""))
        .default_account(account_extra)
        .start()
        .await)
}

async fn web(account_extra: &str) -> Web {
    Web(Setup::new()
        .tag("web")
        .extra(&web_extra(""))
        .default_account(account_extra)
        .start()
        .await)
}

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

impl Web {
    fn page(&self, path: &str) -> String {
        self.url(path)
    }

    async fn config(&self, q: &str) -> (u16, HeaderMapLite, String) {
        let r = self
            .http
            .get(self.page(&format!("/wx/config?{q}")))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        (status, headers, r.text().await.unwrap())
    }

    async fn sandbox_accepts(&self, page: &str, data: &Value) -> Value {
        reqwest::Client::new()
            .post(format!("{}/jssdk/check", self.sb.base_url()))
            .json(&json!({"url": page, "config": data}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn get(&self, url: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(url);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }
}

type HeaderMapLite = HashMap<String, String>;

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn config_json_jsonp_and_the_sandbox_accepts_it() {
    let w = web("").await;
    let page = "http://127.0.0.1:8080/shop/index.html?from=timeline#/cart";
    let (status, headers, body) = w.config(&format!("url={}", enc(page))).await;
    assert_eq!(status, 200, "{body}");
    assert!(headers["content-type"].starts_with("application/json"));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["state"], json!({"code": 2000000, "msg": "ok"}));
    let data = &v["data"];
    assert_eq!(data["appId"], OA);
    let ts = data["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), 10);
    assert!(ts.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(data["nonceStr"].as_str().unwrap().len(), 16);
    assert!(data.get("signed").is_none());
    let verdict = w.sandbox_accepts(page, data).await;
    assert_eq!(verdict["errMsg"], "config:ok", "{verdict}");
    // The ticket was fetched once, not per request.
    for _ in 0..5 {
        w.config(&format!("url={}", enc(page))).await;
    }
    assert_eq!(sandbox_calls(&w.sb, "/cgi-bin/ticket/getticket", OA), 1);

    // JSONP.
    let (status, headers, body) = w
        .config(&format!("url={}&callback=jQuery123_cb.done", enc(page)))
        .await;
    assert_eq!(status, 200);
    assert!(headers["content-type"].starts_with("application/javascript"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        body.starts_with("/**/jQuery123_cb.done({") && body.ends_with("});"),
        "{body}"
    );
    let inner: Value =
        serde_json::from_str(&body["/**/jQuery123_cb.done(".len()..body.len() - 2]).unwrap();
    assert_eq!(w.sandbox_accepts(page, &inner["data"]).await["ok"], true);

    // debug=1 shows what was signed, without the ticket.
    let (_, _, body) = w.config(&format!("url={}&debug=1", enc(page))).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    let signed = v["data"]["signed"].as_str().unwrap();
    assert!(signed.starts_with("jsapi_ticket=<jsapi_ticket>&noncestr="));
    assert!(
        signed.ends_with("&url=http://127.0.0.1:8080/shop/index.html?from=timeline"),
        "{signed}"
    );
}

#[tokio::test]
async fn config_refuses_bad_input() {
    let w =
        web("js_domains = [\"h5.example.com\"]\ncors_origins = [\"https://h5.example.com\"]").await;
    for (q, needle) in [
        ("".to_owned(), "url is required"),
        ("url=".to_owned(), "url is required"),
        (format!("url={}", enc("/relative/page.html")), "absolute"),
        (format!("url={}", enc("javascript:alert(1)")), "absolute"),
        (
            format!("url={}", enc("https://evil.example.net/p")),
            "evil.example.net is not a JS-safe domain",
        ),
        // Parameter pollution: which url would be checked and which signed?
        (
            format!(
                "url={}&url={}",
                enc("https://h5.example.com/a"),
                enc("https://evil.example.net/p")
            ),
            "url is given more than once",
        ),
    ] {
        let (status, _, body) = w.config(&q).await;
        assert_eq!(status, 400, "{q}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["state"]["code"], 4000000);
        assert_eq!(v["data"], "");
        assert!(
            v["state"]["msg"].as_str().unwrap().contains(needle),
            "{q}: {v}"
        );
    }
    let page = enc("https://h5.example.com/a");
    for cb in ["<script>", "alert(1)//", "a b", "1abc", &"a".repeat(65)] {
        let (status, _, body) = w.config(&format!("url={page}&callback={}", enc(cb))).await;
        assert_eq!(status, 400, "{cb}");
        assert!(!body.contains(cb), "the bad callback is not echoed");
    }
    // CORS for a configured origin only, preflight included.
    let r = w
        .http
        .get(w.page(&format!("/wx/config?url={page}")))
        .header("origin", "https://h5.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://h5.example.com"
    );
    let r = w
        .http
        .get(w.page(&format!("/wx/config?url={page}")))
        .header("origin", "https://evil.example.net")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = w
        .http
        .request(reqwest::Method::OPTIONS, w.page("/wx/config"))
        .header("origin", "https://h5.example.com")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://h5.example.com"
    );
    // Unknown account.
    let r = w
        .http
        .get(w.page(&format!("/wx/nope/config?url={page}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // No ticket obtainable: 503 with WeChat's errcode.
    let w = web("").await;
    let page = enc("https://h5.example.com/a");
    w.sb.platform.faults.lock().unwrap().add(
        serde_json::from_value(json!({"path": "/cgi-bin/ticket/getticket", "kind": "busy"}))
            .unwrap(),
    );
    let (status, _, body) = w.config(&format!("url={page}")).await;
    assert_eq!(status, 503);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["state"]["code"], 5000000);
    assert!(
        v["state"]["msg"].as_str().unwrap().contains("errcode -1"),
        "{v}"
    );
}

/// `/wx/config`, `/wx/service` and their `/wx/{account}/...` forms are answered by the
/// hot lane (`http::hot`); an account segment that needs percent-decoding
/// (`/wx/d%65fault/...`, the account `default`) by the router. Same handlers, so the
/// same answers, refusals included. (A success differs only in its fresh nonce,
/// timestamp and signature.)
#[tokio::test]
async fn the_hot_lane_answers_as_the_router_does() {
    hot_routes_answer_alike(web("js_domains = [\"h5.example.com\"]").await).await;
}

/// `server.hot_lane = false`: the router answers `/wx/config` and `/wx/service` (its
/// flat routes), with the same answers and route names as the lane.
#[tokio::test]
async fn with_the_hot_lane_off_the_router_answers_alike() {
    let w = Web(Setup::new()
        .tag("web")
        .top("[server]\nhot_lane = false")
        .extra(&web_extra(""))
        .default_account("js_domains = [\"h5.example.com\"]")
        .start()
        .await);
    assert!(!w.gw.state.ctx.config.server.hot_lane);
    hot_routes_answer_alike(w).await;
}

/// The hot routes' answers by the lane (`/wx/config`, `/wx/default/...`) and by the
/// router (`/wx/d%65fault/...`, which needs decoding), refusals included.
async fn hot_routes_answer_alike(w: Web) {
    use wxgate_proto::crypto::MsgCrypt;
    use wxgate_proto::signature::server_signature;
    use wxgate_proto::Envelope;

    let page = enc("https://h5.example.com/a");
    let answer = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let ctype = r.headers()["content-type"].to_str().unwrap().to_owned();
        (status, ctype, r.text().await.unwrap())
    };
    let get = |path: String| {
        let http = w.http.clone();
        let url = w.page(&path);
        async move { answer(http.get(url).send().await.unwrap()).await }
    };
    for q in [
        String::new(),
        format!("url={}", enc("javascript:alert(1)")),
        format!("url={}", enc("https://evil.example.net/p")),
        format!("url={page}&url={page}"),
        format!("url={page}&callback={}", enc("<script>")),
        format!("url={}&callback=cb", enc("/relative")),
    ] {
        let hot = get(format!("/wx/config?{q}")).await;
        assert_eq!(hot, get(format!("/wx/d%65fault/config?{q}")).await, "{q}");
        assert_eq!(hot, get(format!("/wx/default/config?{q}")).await, "{q}");
        assert!(hot.0 >= 400 || hot.2.starts_with("/**/cb("), "{q}: {hot:?}");
    }
    for path in ["/wx/config", "/wx/default/config", "/wx/d%65fault/config"] {
        for q in [format!("url={page}"), format!("url={page}&callback=cb")] {
            let (status, ctype, body) = get(format!("{path}?{q}")).await;
            assert_eq!(status, 200, "{path}?{q}");
            let json = body.trim_start_matches("/**/cb(").trim_end_matches(");");
            let v: Value = serde_json::from_str(json).unwrap();
            let data = &v["data"];
            assert_eq!(data["appId"], OA, "{path}");
            assert_eq!(data["nonceStr"].as_str().unwrap().len(), 16);
            assert_eq!(data["signature"].as_str().unwrap().len(), 40);
            let accepted = w.sandbox_accepts("https://h5.example.com/a", data).await;
            assert_eq!(accepted["ok"], true, "{path}: {accepted}");
            assert!(ctype.starts_with(if q.contains("callback") {
                "application/javascript"
            } else {
                "application/json"
            }));
        }
    }
    // URL verification: a good and a forged signature.
    let (ts, nonce) = ("1700000000", "4242");
    let good = server_signature("sandboxtoken", ts, nonce);
    for sig in [good.as_str(), "0000000000000000000000000000000000000000"] {
        let q = format!("signature={sig}&timestamp={ts}&nonce={nonce}&echostr=8812");
        let hot = get(format!("/wx/service?{q}")).await;
        assert_eq!(hot, get(format!("/wx/d%65fault/service?{q}")).await);
        assert_eq!(hot, get(format!("/wx/default/service?{q}")).await);
        assert_eq!(hot.0, if sig == good { 200 } else { 403 });
    }
    // Pushes: a genuine safe-mode push (no rule replies: `success`), a forged
    // msg_signature, a missing timestamp, a parameter given twice.
    let crypt = MsgCrypt::new(
        "sandboxtoken",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        OA,
    )
    .unwrap();
    let now = unix_now();
    let push = |path: &'static str, msg_id: u64, forge: bool| {
        let ts = now.to_string();
        let nonce = format!("n{msg_id}");
        let msg = format!(
            "<xml><ToUserName><![CDATA[gh_sandbox00001]]></ToUserName><FromUserName><![CDATA[{USER1}]]></FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>{msg_id}</MsgId></xml>"
        );
        let sealed = crypt.seal(&msg, &ts, &nonce);
        let msg_signature = if forge {
            "f".repeat(40)
        } else {
            sealed.msg_signature
        };
        let url = w.page(&format!(
            "{path}?signature={}&timestamp={ts}&nonce={nonce}&encrypt_type=aes&msg_signature={msg_signature}",
            server_signature("sandboxtoken", &ts, &nonce)
        ));
        let body = Envelope::to_xml("gh_sandbox00001", &sealed.encrypt);
        let http = w.http.clone();
        async move { answer(http.post(url).body(body).send().await.unwrap()).await }
    };
    let hot = push("/wx/service", 9001, false).await;
    assert_eq!(hot, push("/wx/d%65fault/service", 9002, false).await);
    assert_eq!(hot, push("/wx/default/service", 9005, false).await);
    assert_eq!((hot.0, hot.2.as_str()), (200, "success"));
    let hot = push("/wx/service", 9003, true).await;
    assert_eq!(hot, push("/wx/d%65fault/service", 9004, true).await);
    assert_eq!(hot.0, 403);
    for q in ["nonce=1&signature=x", "timestamp=1&timestamp=2&nonce=1"] {
        let post = |path: &str| {
            let http = w.http.clone();
            let url = w.page(&format!("{path}?{q}"));
            async move { answer(http.post(url).body("<xml/>").send().await.unwrap()).await }
        };
        let hot = post("/wx/service").await;
        assert_eq!(hot, post("/wx/d%65fault/service").await, "{q}");
        assert_eq!(hot.0, 400, "{q}");
    }
    // An unknown account: the same 404 from the lane and the router.
    let lane = get(format!("/wx/nope/config?url={page}")).await;
    assert_eq!(lane, get(format!("/wx/n%6fpe/config?url={page}")).await);
    assert_eq!(lane.0, 404);
    // HEAD is the router's (axum answers it from the GET route, without a body).
    let r = w
        .http
        .head(w.page(&format!("/wx/config?url={page}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-request-id").is_some());
    // Both name their routes alike: the router's nested `/wx/{account}` routes and the
    // lane's names are the same patterns, and nothing else appears.
    let metrics = w.get(&w.page("/metrics"), None).await.text().await.unwrap();
    for route in [
        "/wx/config",
        "/wx/{account}/config",
        "/wx/service",
        "/wx/{account}/service",
    ] {
        assert!(metrics.contains(&format!("route=\"{route}\"")), "{route}");
    }
    for nested_only in [
        "route=\"/config\"",
        "route=\"/service\"",
        "route=\"/wx/d%65fault",
    ] {
        assert!(!metrics.contains(nested_only), "{nested_only}");
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn config_signs_the_official_example() {
    // The official JS-SDK example's ticket in the store and its timestamp on the clock:
    // the route signs exactly the official string.
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let dir = TempDir::new("official-jssdk");
    let clock = Clock::system();
    clock.advance(1_414_587_457 - clock.now());
    let ticket =
        "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";
    {
        let store =
            wxgate::store::embedded::EmbeddedStore::open(&dir.path().join("wxgate.redb")).unwrap();
        let now = clock.now();
        let c = Credential {
            value: ticket.into(),
            expires_at: now + 7000,
            fetched_at: now,
            refresh_at: now + 6000,
        };
        store
            .set(
                "wxgate:{default}:ticket:jsapi",
                &serde_json::to_string(&c).unwrap(),
                Some(Duration::from_secs(7000)),
            )
            .await
            .unwrap();
    }
    let w = start_web(sb, embedded(), dir, "", clock).await;
    // The clock runs on from the example's second: it is set again right before each
    // request, and a request that a second boundary overtook (starting the gateway takes
    // a moment; a loaded machine, longer) is asked again, at most twice more.
    let mut v = Value::Null;
    for _ in 0..3 {
        w.clock.advance(1_414_587_457 - w.clock.now());
        let (status, _, body) = w
            .config(&format!(
                "url={}&debug=1",
                enc("http://mp.weixin.qq.com?params=value")
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        v = serde_json::from_str(&body).unwrap();
        if v["data"]["timestamp"] == "1414587457" {
            break;
        }
    }
    let d = &v["data"];
    assert_eq!(d["timestamp"], "1414587457");
    let nonce = d["nonceStr"].as_str().unwrap();
    assert_eq!(
        d["signed"].as_str().unwrap(),
        format!("jsapi_ticket=<jsapi_ticket>&noncestr={nonce}&timestamp=1414587457&url=http://mp.weixin.qq.com?params=value")
    );
    assert_eq!(
        d["signature"].as_str().unwrap(),
        wxgate_proto::jssdk::signature(
            ticket,
            nonce,
            "1414587457",
            "http://mp.weixin.qq.com?params=value"
        )
    );
    // With the example's nonce, the same function gives the published signature.
    assert_eq!(
        wxgate_proto::jssdk::signature(
            ticket,
            "Wm3WZYTPz0wzccnW",
            "1414587457",
            "http://mp.weixin.qq.com?params=value"
        ),
        "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
    );
    assert_eq!(
        sandbox_calls(&w.sb, "/cgi-bin/ticket/getticket", OA),
        0,
        "the stored ticket was used"
    );
}

/// Follows /wx/auth through the sandbox's consent page (Allow as `openid`) and the
/// callback; returns the final response.
async fn log_in(w: &Web, dest: &str, scope: &str, openid: &str) -> reqwest::Response {
    let r = w
        .get(
            &w.page(&format!("/wx/auth?dest={}&scope={scope}", enc(dest))),
            None,
        )
        .await;
    assert_eq!(r.status(), 302);
    let to_wechat = location(&r);
    let (authorize, fragment) = to_wechat.split_once('#').unwrap();
    assert_eq!(fragment, "wechat_redirect");
    let q = query(authorize);
    let r = w.get(authorize, None).await;
    let to_callback = if scope == "snsapi_base" {
        assert_eq!(r.status(), 302);
        location(&r)
    } else {
        assert_eq!(r.status(), 200, "the consent page");
        let decide = format!(
            "{}/connect/oauth2/decide?appid={}&redirect_uri={}&scope={}&state={}&openid={openid}&decision=allow",
            w.sb.base_url(),
            q["appid"],
            enc(&q["redirect_uri"]),
            q["scope"],
            q["state"]
        );
        let r = w.get(&decide, None).await;
        assert_eq!(r.status(), 302);
        location(&r)
    };
    w.get(&to_callback, None).await
}

fn cookie_of(r: &reqwest::Response) -> String {
    let set = r.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn oauth_authorize_link_has_wechats_exact_shape() {
    let w = web("").await;
    let dest = format!("{}/demo/oauth.html?tab=1#top", w.gw.url());
    let r = w
        .get(&w.page(&format!("/wx/auth?dest={}", enc(&dest))), None)
        .await;
    assert_eq!(r.status(), 302);
    let loc = location(&r);
    let prefix = format!(
        "{}/connect/oauth2/authorize?appid={OA}&redirect_uri=",
        w.sb.base_url()
    );
    assert!(loc.starts_with(&prefix), "{loc}");
    let rest = &loc[prefix.len()..];
    let (redirect_uri, rest) = rest
        .split_once("&response_type=code&scope=snsapi_userinfo&state=")
        .unwrap();
    let (state, fragment) = rest.split_once('#').unwrap();
    assert_eq!(fragment, "wechat_redirect");
    assert!(
        state.len() <= 128 && state.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{state}"
    );
    assert!(wxgate_sandbox::routes::oauth::state_is_valid(state));
    let redirect_uri: String = url::form_urlencoded::parse(format!("x={redirect_uri}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned();
    assert!(
        redirect_uri.starts_with(&format!("{}/wx/auth/callback?dest=", w.gw.url())),
        "{redirect_uri}"
    );
    assert_eq!(query(&redirect_uri)["dest"], dest);
}

#[tokio::test]
async fn oauth_full_flows_and_the_return_visit() {
    let w = web("").await;
    let dest = format!("{}/demo/oauth.html?tab=1#top", w.gw.url());
    let r = log_in(&w, &dest, "snsapi_userinfo", USER2).await;
    assert_eq!(r.status(), 302);
    let back = location(&r);
    assert!(
        back.starts_with(&format!("{}/demo/oauth.html?tab=1&userinfo=", w.gw.url())),
        "{back}"
    );
    assert!(back.ends_with("#top"), "the fragment is kept: {back}");
    let info: Value = serde_json::from_str(&query(&back)["userinfo"]).unwrap();
    assert_eq!(info["openid"], USER2);
    assert_eq!(info["nickname"], "小明");
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.starts_with("wechat_jssdk_server_openid="),
        "{set_cookie}"
    );
    for attr in ["Path=/", "Max-Age=604800", "HttpOnly", "SameSite=Lax"] {
        assert!(set_cookie.contains(attr), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "public_url is http");
    let cookie = cookie_of(&r);

    // The return visit skips consent.
    let r = w
        .get(
            &w.page(&format!("/wx/auth?dest={}", enc(&dest))),
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status(), 302);
    let again = location(&r);
    assert!(
        again.starts_with(&dest[..dest.find('#').unwrap()]),
        "{again}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&query(&again)["userinfo"]).unwrap()["nickname"],
        "小明"
    );
    assert_eq!(sandbox_calls(&w.sb, "/sns/oauth2/access_token", OA), 1);

    // A forged cookie is ignored: consent again.
    let forged = cookie.replace(USER2, USER1);
    let r = w
        .get(
            &w.page(&format!("/wx/auth?dest={}", enc(&dest))),
            Some(&forged),
        )
        .await;
    assert!(
        location(&r).starts_with(&w.sb.base_url()),
        "a forged cookie goes to consent"
    );
    let r = w
        .get(
            &w.page(&format!("/wx/auth?dest={}", enc(&dest))),
            Some(&format!("wechat_jssdk_server_openid={USER2}")),
        )
        .await;
    assert!(
        location(&r).starts_with(&w.sb.base_url()),
        "the old server's bare openid is not trusted"
    );

    // snsapi_base: the openid only.
    let r = log_in(&w, &dest, "snsapi_base", USER1).await;
    let info: Value = serde_json::from_str(&query(&location(&r))["userinfo"]).unwrap();
    assert_eq!(info, json!({"openid": USER1}));
    // A base-scope user asking for userinfo needs consent.
    let base_cookie = cookie_of(&r);
    let r = w
        .get(
            &w.page(&format!(
                "/wx/auth?dest={}&scope=snsapi_userinfo",
                enc(&dest)
            )),
            Some(&base_cookie),
        )
        .await;
    assert!(location(&r).starts_with(&w.sb.base_url()));

    // An expired user token is refreshed with the refresh token on the return visit.
    w.advance(7200);
    let r = w
        .get(
            &w.page(&format!("/wx/auth?dest={}", enc(&dest))),
            Some(&cookie),
        )
        .await;
    let again = location(&r);
    assert!(again.contains("userinfo="), "{again}");
    assert_eq!(sandbox_calls(&w.sb, "/sns/oauth2/refresh_token", OA), 1);
    // After 7 days the cookie has expired: consent again.
    w.advance(7 * 86400);
    let r = w
        .get(
            &w.page(&format!("/wx/auth?dest={}", enc(&dest))),
            Some(&cookie),
        )
        .await;
    assert!(location(&r).starts_with(&w.sb.base_url()));
}

#[tokio::test]
async fn oauth_dead_refresh_token_sends_the_user_through_consent() {
    let w = web("").await;
    let dest = format!("{}/demo/oauth.html", w.gw.url());
    let r = log_in(&w, &dest, "snsapi_userinfo", USER1).await;
    let cookie = cookie_of(&r);
    // WeChat's refresh token dies (30 days) while wxgate still remembers the user.
    w.sb.platform.clock.advance(31 * 86400);
    w.clock.advance(7200);
    let r = w
        .get(
            &w.page(&format!("/wx/auth?dest={}", enc(&dest))),
            Some(&cookie),
        )
        .await;
    assert!(location(&r).starts_with(&w.sb.base_url()), "consent again");
    assert!(
        w.gw.state
            .users
            .load("default", USER1)
            .await
            .unwrap()
            .is_none(),
        "the dead user is forgotten"
    );
}

#[tokio::test]
async fn oauth_refusals() {
    let w = web("auth_dest_hosts = [\"http://127.0.0.1:{port}\"]").await;
    let dest = format!("{}/demo/oauth.html", w.gw.url());
    for bad in [
        "https://evil.example.net/",
        "/relative",
        "javascript:alert(1)",
        "",
        "http://127.0.0.1.evil.example.net/",
    ] {
        let r = w
            .get(&w.page(&format!("/wx/auth?dest={}", enc(bad))), None)
            .await;
        assert_eq!(r.status(), 400, "{bad}");
    }
    let r = w
        .get(
            &w.page(&format!("/wx/auth?dest={}&scope=snsapi_login", enc(&dest))),
            None,
        )
        .await;
    assert_eq!(r.status(), 400);

    // Get a real state and code without completing the callback.
    let r = w
        .get(
            &w.page(&format!("/wx/auth?dest={}&scope=snsapi_base", enc(&dest))),
            None,
        )
        .await;
    let authorize = location(&r);
    let r = w.get(authorize.split('#').next().unwrap(), None).await;
    let callback = location(&r);
    let q = query(&callback);
    let cb = |dest: &str, state: &str, code: &str| {
        w.page(&format!(
            "/wx/auth/callback?dest={}&state={state}&code={code}",
            enc(dest)
        ))
    };

    // A forged state, a state for another dest, a malformed one.
    let mut forged = q["state"].clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    assert_eq!(
        w.get(&cb(&dest, &forged, &q["code"]), None).await.status(),
        400
    );
    assert_eq!(
        w.get(&cb(&format!("{dest}?x=1"), &q["state"], &q["code"]), None)
            .await
            .status(),
        400
    );
    assert_eq!(
        w.get(
            &cb("https://evil.example.net/", &q["state"], &q["code"]),
            None
        )
        .await
        .status(),
        400
    );
    assert_eq!(
        w.get(&cb(&dest, "abc", &q["code"]), None).await.status(),
        400
    );
    assert_eq!(
        sandbox_calls(&w.sb, "/sns/oauth2/access_token", OA),
        0,
        "nothing reached WeChat"
    );

    // The genuine callback works; a reload (same code) gets the same result, not 40163.
    let first = w.get(&callback, None).await;
    assert_eq!(first.status(), 302);
    let reload = w.get(&callback, None).await;
    assert_eq!(reload.status(), 302);
    assert_eq!(location(&first), location(&reload));
    assert_eq!(sandbox_calls(&w.sb, "/sns/oauth2/access_token", OA), 1);
    // The same state with another code: replayed.
    let other_code =
        w.sb.platform
            .issue_oauth_code(OA, USER1, "snsapi_base")
            .unwrap();
    assert_eq!(
        w.get(&cb(&dest, &q["state"], &other_code), None)
            .await
            .status(),
        400
    );

    // An expired state.
    let r = w
        .get(
            &w.page(&format!("/wx/auth?dest={}&scope=snsapi_base", enc(&dest))),
            None,
        )
        .await;
    let r = w.get(location(&r).split('#').next().unwrap(), None).await;
    let late = location(&r);
    w.clock.advance(601);
    let r = w.get(&late, None).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn oauth_denied_consent_and_upstream_errors_return_to_dest() {
    let w = web("").await;
    let dest = format!("{}/demo/oauth.html", w.gw.url());
    let r = w
        .get(&w.page(&format!("/wx/auth?dest={}", enc(&dest))), None)
        .await;
    let q = query(location(&r).split('#').next().unwrap());
    let deny = format!(
        "{}/connect/oauth2/decide?appid={}&redirect_uri={}&scope={}&state={}&openid={USER1}&decision=deny",
        w.sb.base_url(), q["appid"], enc(&q["redirect_uri"]), q["scope"], q["state"]
    );
    let r = w.get(&deny, None).await;
    let r = w.get(&location(&r), None).await;
    assert_eq!(r.status(), 302);
    let back = location(&r);
    assert!(back.starts_with(&dest));
    let err: Value = serde_json::from_str(&query(&back)["error"]).unwrap();
    assert_eq!(err["error"], "access_denied");
    assert!(r.headers().get("set-cookie").is_none());

    // The code expires before the exchange: WeChat's 40029 comes back as JSON.
    let r = w
        .get(
            &w.page(&format!("/wx/auth?dest={}&scope=snsapi_base", enc(&dest))),
            None,
        )
        .await;
    let r = w.get(location(&r).split('#').next().unwrap(), None).await;
    let callback = location(&r);
    w.sb.platform.clock.advance(301);
    let r = w.get(&callback, None).await;
    let back = location(&r);
    let err: Value = serde_json::from_str(&query(&back)["error"]).unwrap();
    assert_eq!(err["errcode"], 40029, "{err}");
    assert!(err["errmsg"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sweep_refreshes_only_what_is_due_once_across_two_instances() {
    let sb = Sandbox::start_ephemeral(SandboxConfig::example())
        .await
        .unwrap();
    let redis = RedisServer::start();
    let clock = Clock::system();
    let a = start_web(
        sb,
        &redis_store(&redis.url()),
        TempDir::new("sweep-a"),
        "",
        clock.clone(),
    )
    .await;
    // A second instance on the same Redis, same clock, same secret.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir_b = TempDir::new("sweep-b");
    let toml = gateway_toml(
        &a.sb.base_url(),
        dir_b.path(),
        &redis_store(&redis.url()),
        "",
        &web_extra(""),
    );
    let config = wxgate::Config::from_toml_with_env(&toml, Vec::<(String, String)>::new()).unwrap();
    let b = wxgate::gateway::start_on(
        listener,
        wxgate::gateway::build(config, clock.clone()).await.unwrap(),
    )
    .await
    .unwrap();

    let dest = format!("{}/demo/oauth.html", a.gw.url());
    log_in(&a, &dest, "snsapi_userinfo", USER1).await;
    a.advance(3000);
    log_in(&a, &dest, "snsapi_userinfo", USER2).await;
    let acc =
        a.gw.state
            .ctx
            .credentials
            .account("default")
            .unwrap()
            .clone();
    let sweep_both = || async {
        let (x, y) = tokio::join!(
            a.gw.state.users.sweep("default", &acc),
            b.state.users.sweep("default", &acc)
        );
        x.unwrap() + y.unwrap()
    };
    assert_eq!(sweep_both().await, 0, "nothing is due yet");
    // USER1's token has 7200 - 3000 - 3800 = 400 s left (< 480): due. USER2's is not.
    a.advance(3800);
    assert_eq!(sweep_both().await, 1);
    assert_eq!(sandbox_calls(&a.sb, "/sns/oauth2/refresh_token", OA), 1);
    let u1 =
        a.gw.state
            .users
            .load("default", USER1)
            .await
            .unwrap()
            .unwrap();
    assert!(u1.expires_at - clock.now() > 7000, "USER1 refreshed");
    let u2 =
        a.gw.state
            .users
            .load("default", USER2)
            .await
            .unwrap()
            .unwrap();
    assert!(u2.expires_at - clock.now() > 480, "USER2 untouched");
    assert_eq!(sweep_both().await, 0, "refreshed once");
    // Later USER2 is due.
    a.advance(3000);
    assert_eq!(sweep_both().await, 1);
    assert_eq!(sandbox_calls(&a.sb, "/sns/oauth2/refresh_token", OA), 2);
    // After 7 days the users are dropped, not refreshed.
    a.advance(8 * 86400);
    assert_eq!(sweep_both().await, 0);
    assert!(a
        .gw
        .state
        .users
        .load("default", USER1)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        a.gw.state
            .ctx
            .store
            .index_due("wxgate:{default}:users_by_expiry", i64::MAX, 10)
            .await
            .unwrap()
            .len(),
        0
    );
}
