//! A fleet of three gateways on a real Redis Cluster and on a real Sentinel group: one
//! upstream fetch however many ask, pushes deduplicated across instances, Mini Program
//! sessions shared; and the master that holds the account's keys killed under load.

use crate::common;

mod accounts;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use wxgate::Clock;
use wxgate_sandbox::pusher::{push, MessageMode, PushOptions, PushTarget};
use wxgate_sandbox::{messages, Sandbox, SandboxConfig};

const RULES: &str = "[[accounts.default.rules]]\nkeyword = \"hello\"\nreply = { type = \"text\", content = \"hi\" }\n";

struct Fleet {
    sb: Sandbox,
    gws: Vec<wxgate::gateway::Running>,
    /// Every message any instance's handlers saw (one recorder shared by the three).
    recorder: Arc<Recorder>,
    http: reqwest::Client,
    _dirs: Vec<TempDir>,
}

impl Fleet {
    async fn start(store: &str) -> Fleet {
        let sb = Sandbox::start_ephemeral(SandboxConfig::example())
            .await
            .unwrap();
        let recorder = Arc::new(Recorder::default());
        let dirs: Vec<TempDir> = (0..3)
            .map(|i| TempDir::new(&format!("fleet-{i}")))
            .collect();
        let mut gws = Vec::new();
        for d in &dirs {
            let toml = gateway_toml(&sb.base_url(), d.path(), store, "", RULES);
            let config =
                wxgate::Config::from_toml_with_env(&toml, Vec::<(String, String)>::new()).unwrap();
            let handlers = HashMap::from([(
                "default".to_owned(),
                vec![recorder.clone() as Arc<dyn wxgate::push::handler::Handler>],
            )]);
            let state = wxgate::gateway::build_with(config, Clock::system(), handlers)
                .await
                .expect("gateway builds");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            gws.push(wxgate::gateway::start_on(listener, state).await.unwrap());
        }
        Fleet {
            sb,
            gws,
            recorder,
            http: reqwest::Client::new(),
            _dirs: dirs,
        }
    }

    fn url(&self, i: usize, path: &str) -> String {
        format!("{}{path}", self.gws[i % 3].url())
    }

    async fn get(&self, i: usize, path: &str) -> (u16, Value) {
        api_get(&self.http, self.url(i, path)).await
    }

    fn token_fetches(&self) -> u64 {
        sandbox_calls(&self.sb, "/cgi-bin/stable_token", OA)
            + sandbox_calls(&self.sb, "/cgi-bin/token", OA)
    }

    fn ticket_fetches(&self) -> u64 {
        sandbox_calls(&self.sb, "/cgi-bin/ticket/getticket", OA)
    }

    fn target(&self, i: usize) -> PushTarget {
        PushTarget {
            url: self.url(i, "/wx/service"),
            token: "sandboxtoken".into(),
            appid: OA.into(),
            encoding_aes_key: Some("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into()),
            mode: MessageMode::Safe,
            format: Default::default(),
        }
    }

    /// The Mini Program's sandbox users.
    fn mini_users(&self) -> Vec<String> {
        let app = self.sb.platform.app(MINI).unwrap();
        app.users.iter().map(|u| u.openid.clone()).collect()
    }

    async fn mp_login(&self, i: usize, openid: &str) -> String {
        let code = self.sb.platform.issue_js_code(MINI, openid).unwrap();
        let r = self
            .http
            .post(self.url(i, "/wx/mini/mp/login"))
            .json(&json!({ "code": code }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["data"]["session"].as_str().unwrap().to_owned()
    }

    async fn mp_session(&self, i: usize, session: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(i, "/wx/mini/mp/session"))
            .header("X-Wxgate-Session", session)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn readyz(&self, i: usize) -> (u16, Value) {
        let r = self.http.get(self.url(i, "/readyz")).send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
}

fn text(id: u64, content: &str) -> wxgate_proto::xml::Fields {
    messages::sample(
        "text",
        "gh_sandbox00001",
        "oSandboxUser000000000000001",
        common::now(),
        id,
        Some(content),
    )
    .unwrap()
}

fn reply_of(o: &wxgate_sandbox::pusher::PushOutcome) -> Option<String> {
    o.reply
        .as_ref()
        .and_then(|r| r.text("Content").map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fleet_of_three_on_a_cluster_fetches_once_dedups_pushes_and_shares_sessions() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap();
    let f = Fleet::start(&cluster.store_toml()).await;

    // A cold start: 1000 concurrent token requests over the three instances.
    let mut tasks = Vec::new();
    for i in 0..1000usize {
        let (http, url) = (f.http.clone(), f.url(i, "/api/v1/default/token"));
        tasks.push(tokio::spawn(async move {
            let r = http.get(url).bearer_auth(API_KEY).send().await.unwrap();
            let s = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            (s, v["access_token"].as_str().unwrap_or("").to_owned())
        }));
    }
    let mut tokens = HashSet::new();
    for t in tasks {
        let (status, token) = t.await.unwrap();
        assert_eq!(status, 200);
        tokens.insert(token);
    }
    assert_eq!(tokens.len(), 1, "one token for the whole fleet");
    assert_eq!(f.token_fetches(), 1, "exactly one upstream fetch");
    let token = tokens.into_iter().next().unwrap();
    assert!(f.sb.platform.check_token(&token).is_ok());

    // Pushes: each one delivered to all three instances at once (WeChat retrying on
    // another instance behind a load balancer): handled once, the same reply everywhere.
    let opts = PushOptions {
        timestamp: Some(common::now()),
        nonce: None,
    };
    for id in 1..=20u64 {
        // Not the rule's keyword: the recorder (after the rules) sees it.
        let msg = text(7_000_000 + id, "record me");
        let opts = PushOptions {
            nonce: Some(format!("n{id}")),
            ..opts.clone()
        };
        let (t0, t1, t2) = (f.target(0), f.target(1), f.target(2));
        let (a, b, c) = tokio::join!(
            push(&f.http, &t0, &msg, &opts),
            push(&f.http, &t1, &msg, &opts),
            push(&f.http, &t2, &msg, &opts),
        );
        for o in [a.unwrap(), b.unwrap(), c.unwrap()] {
            assert_eq!((o.status, o.body.as_str()), (200, "success"));
        }
    }
    let seen = f.recorder.seen.lock().unwrap().clone();
    let ids: HashSet<String> = seen
        .iter()
        .map(|m| format!("{:?}", m.dedup_key()))
        .collect();
    assert_eq!(
        (seen.len(), ids.len()),
        (20, 20),
        "each push ran its handlers once across the fleet"
    );

    // Mini Program sessions: made on one instance, good on the others, ended everywhere.
    let user = f.mini_users().into_iter().next().unwrap();
    let session = f.mp_login(0, &user).await;
    for i in 1..3 {
        let (status, v) = f.mp_session(i, &session).await;
        assert_eq!(status, 200, "instance {i}: {v}");
        assert_eq!(v["data"]["openid"], user.as_str());
    }
    let r = f
        .http
        .delete(f.url(2, "/wx/mini/mp/session"))
        .header("X-Wxgate-Session", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        f.mp_session(0, &session).await.0,
        401,
        "logged out fleet-wide"
    );
    let (status, v) = f.readyz(1).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["store"]["mode"], "cluster");
}

/// How a topology loses the master that holds the account's keys.
enum Kill {
    Cluster(RedisCluster),
    Sentinel(RedisSentinel),
}

impl Kill {
    /// Kills the master and returns once the topology has promoted the replica.
    fn kill_and_wait(self) -> Kill {
        match self {
            Kill::Cluster(mut c) => {
                let master =
                    c.master_of(&wxgate::store::keys::credential("default", "access_token"));
                c.kill(master);
                c.wait_failover(master);
                Kill::Cluster(c)
            }
            Kill::Sentinel(mut s) => {
                s.kill_master_and_wait_failover();
                Kill::Sentinel(s)
            }
        }
    }
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    server_errors: AtomicU64,
    other: AtomicU64,
}

impl Tally {
    fn count(&self, status: u16) {
        let c = match status {
            200 => &self.ok,
            500..=599 => &self.server_errors,
            _ => &self.other,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> (u64, u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.server_errors.load(Ordering::Relaxed),
            self.other.load(Ordering::Relaxed),
        )
    }
}

async fn master_killed_under_load(topology: Kill, store: String) {
    let f = Arc::new(Fleet::start(&store).await);
    // Warm: one token and one ticket for the fleet, and three Mini Program users.
    for i in 0..3 {
        assert_eq!(f.get(i, "/api/v1/default/token").await.0, 200);
        let r = f
            .http
            .get(f.url(i, "/wx/config?url=http%3A%2F%2F127.0.0.1%3A18340%2Fpage"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let users = f.mini_users();
    let mut sessions = Vec::new();
    for (i, u) in users.iter().take(3).enumerate() {
        sessions.push((u.clone(), f.mp_login(i, u).await));
    }
    // Replication to the replica is asynchronous: give it a moment, as an operator's
    // fleet has between a login and a failure.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (tokens0, tickets0) = (f.token_fetches(), f.ticket_fetches());
    assert_eq!((tokens0, tickets0), (1, 1));

    // Steady traffic on all three: token and config requests, and pushes.
    let stop = Arc::new(AtomicBool::new(false));
    let (reads, pushes) = (Arc::new(Tally::default()), Arc::new(Tally::default()));
    let mut load = Vec::new();
    for w in 0..6usize {
        let (f, stop, reads) = (f.clone(), stop.clone(), reads.clone());
        load.push(tokio::spawn(async move {
            let mut n = w;
            while !stop.load(Ordering::Relaxed) && n < 200_000 {
                n += 6;
                let path = if n % 2 == 0 {
                    "/api/v1/default/token"
                } else {
                    "/wx/config?url=http%3A%2F%2F127.0.0.1%3A18340%2Fpage"
                };
                let status = match f.http.get(f.url(n, path)).bearer_auth(API_KEY).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 599,
                };
                reads.count(status);
            }
        }));
    }
    for w in 0..2u64 {
        let (f, stop, pushes) = (f.clone(), stop.clone(), pushes.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && n < 100_000 {
                n += 1;
                let msg = text(9_000_000 + w * 1_000_000 + n, "hello");
                let status = match push(
                    &f.http,
                    &f.target(n as usize),
                    &msg,
                    &PushOptions::default(),
                )
                .await
                {
                    Ok(o) => o.status,
                    Err(_) => 599,
                };
                pushes.count(status);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = reads.get();

    // Kill the master; watch /readyz while the topology fails over.
    let killed = tokio::task::spawn_blocking(move || topology.kill_and_wait());
    let started = Instant::now();
    let mut saw_down = None;
    loop {
        let (status, v) = f.readyz(0).await;
        if status == 503 && v["store"]["ok"] == false {
            saw_down.get_or_insert(v.clone());
        }
        if saw_down.is_some() && status == 200 {
            assert_eq!(v["store"]["state"], "recovered", "{v} after {saw_down:?}");
            assert!(v["store"]["outages"].as_u64() >= Some(1), "{v}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "readyz never reported the failover and the recovery (down: {saw_down:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let down = saw_down.unwrap();
    assert!(
        down["store"]["state"]
            .as_str()
            .unwrap()
            .starts_with("unavailable"),
        "{down}"
    );
    let _topology = killed.await.unwrap();
    let recovered_after = started.elapsed();
    // The fleet carries on after the failover: pushes go through the new master.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let o = push(
        &f.http,
        &f.target(1),
        &text(42, "hello"),
        &PushOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        (o.status, reply_of(&o).as_deref()),
        (200, Some("hi")),
        "{}",
        o.body
    );
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }

    let (ok, server_errors, other) = reads.get();
    assert!(
        ok > before.0 + 100,
        "the load ran through the failover: {ok}"
    );
    assert_eq!(
        (server_errors, other),
        (0, 0),
        "token and config requests while the cached token is valid: {ok} ok"
    );
    assert_eq!(
        (f.token_fetches(), f.ticket_fetches()),
        (1, 1),
        "no second upstream fetch"
    );
    for (i, (user, session)) in sessions.iter().enumerate() {
        let (status, v) = f.mp_session(i + 1, session).await;
        assert_eq!(status, 200, "session of {user} lost: {v}");
        assert_eq!(v["data"]["openid"], user.as_str());
    }
    let (push_ok, push_5xx, push_other) = pushes.get();
    assert!(push_ok > 0);
    assert_eq!(push_other, 0, "no push was refused as bad");
    println!(
        "failover: recovered after {recovered_after:?}; {ok} token/config requests, 0 errors; \
         pushes {push_ok} ok, {push_5xx} answered 5xx (WeChat retries them) while the store failed over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cluster_master_of_the_accounts_slot_killed_under_load() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap();
    let store = cluster.store_toml();
    master_killed_under_load(Kill::Cluster(cluster), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sentinel_groups_master_killed_under_load() {
    let group = tokio::task::spawn_blocking(RedisSentinel::start)
        .await
        .unwrap();
    let store = group.store_toml();
    master_killed_under_load(Kill::Sentinel(group), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_of_an_older_version_are_read_after_an_upgrade() {
    let redis = RedisServer::start();
    let old = Fleet::start(&redis_store(&redis.url())).await;
    let (status, v) = old.get(0, "/api/v1/default/token").await;
    assert_eq!(status, 200);
    let token = v["access_token"].as_str().unwrap().to_owned();
    let config = "/wx/config?url=http%3A%2F%2F127.0.0.1%3A18340%2Fpage";
    assert_eq!(old.get(0, config).await.0, 200);
    let user = old.mini_users().into_iter().next().unwrap();
    let session = old.mp_login(0, &user).await;
    let Fleet { sb, gws, .. } = old;
    drop(gws);

    // What a version before the hash tag left: every key spelled wxgate:account:...
    let keys = redis_cli(redis.port, &["--scan", "--pattern", "wxgate:*"]);
    let mut renamed = 0;
    for k in keys.lines().filter(|k| k.starts_with("wxgate:{")) {
        let legacy = k.replacen('{', "", 1).replacen('}', "", 1);
        assert_eq!(redis_cli(redis.port, &["rename", k, &legacy]).trim(), "OK");
        renamed += 1;
    }
    assert!(
        renamed >= 4,
        "token, ticket, session, session index: {keys}"
    );

    // The new version starts on them: no fetch, the same token, the session still good.
    let dir = TempDir::new("upgraded");
    let toml = gateway_toml(
        &sb.base_url(),
        dir.path(),
        &redis_store(&redis.url()),
        "",
        "",
    );
    let g = start_gateway(&toml, Clock::system()).await;
    let http = reqwest::Client::new();
    let (status, v) = api_get(&http, format!("{}/api/v1/default/token", g.url())).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["access_token"].as_str(), Some(token.as_str()));
    let r = http
        .get(format!("{}{config}", g.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        (
            sandbox_calls(&sb, "/cgi-bin/stable_token", OA),
            sandbox_calls(&sb, "/cgi-bin/ticket/getticket", OA)
        ),
        (1, 1),
        "the stored token and ticket were read, not fetched again"
    );
    let session_url = format!("{}/wx/mini/mp/session", g.url());
    let r = http
        .get(&session_url)
        .header("X-Wxgate-Session", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the session made before the upgrade");
    // The session moved to its new key; a logout then ends it for good.
    let legacy_sessions = redis_cli(
        redis.port,
        &["--scan", "--pattern", "wxgate:mini:mp_session:*"],
    );
    assert_eq!(legacy_sessions.trim(), "", "moved, not copied");
    let r = http
        .delete(&session_url)
        .header("X-Wxgate-Session", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(&session_url)
        .header("X-Wxgate-Session", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
