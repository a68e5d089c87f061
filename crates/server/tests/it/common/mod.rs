//! Helpers the integration tests share: free ports, and the `wxgate` binary run as a user
//! runs it.
#![allow(dead_code)]

mod topologies;
#[allow(unused_imports)] // used by the tests that need a Cluster or Sentinel
pub use topologies::*;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Unix seconds by the system clock (what WeChat stamps a push with).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped, so a failing test leaves nothing behind.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `wxgate ARGS...` and waits until `port` accepts connections.
pub fn spawn_wxgate(args: &[&str], port: u16) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("wxgate starts");
    let running = Running(child);
    wait_for_port(port);
    running
}

pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on port {port}");
}

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "wxgate-test-{tag}-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    t ^ N
        .fetch_add(1, Ordering::SeqCst)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A private redis-server on a free port, killed when dropped; it can be killed and
/// restarted on the same port to test recovery.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    /// With an append-only file in this directory (fsync on every write), so a kill
    /// loses nothing written.
    aof_dir: Option<std::path::PathBuf>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let mut r = RedisServer {
            port: free_port(),
            child: None,
            aof_dir: None,
        };
        r.restart();
        r
    }

    /// A redis-server that keeps an append-only file in `dir` across kills.
    pub fn start_durable(dir: &std::path::Path) -> RedisServer {
        let mut r = RedisServer {
            port: free_port(),
            child: None,
            aof_dir: Some(dir.to_owned()),
        };
        r.restart();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        let mut args: Vec<String> = [
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        match &self.aof_dir {
            Some(dir) => args.extend(
                ["--appendonly", "yes", "--appendfsync", "always", "--dir"]
                    .map(String::from)
                    .into_iter()
                    .chain([dir.display().to_string()]),
            ),
            None => args.extend(["--appendonly", "no"].map(String::from)),
        }
        let child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/install-deps.sh installs it)");
        self.child = Some(child);
        wait_for_port(self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub const API_KEY: &str = "test-api-key-0123456789abcdef";
/// How long the tests' gateways remember a failed fetch: short, so that a test of a
/// recovery waits [`after_failure_backoff`] rather than seconds.
pub const FAILURE_BACKOFF_MS: u64 = 300;

/// Waits until a failed fetch is no longer remembered.
pub async fn after_failure_backoff() {
    tokio::time::sleep(std::time::Duration::from_millis(FAILURE_BACKOFF_MS + 50)).await;
}
pub const OA: &str = "wxsandbox0000001";
pub const OA_SECRET: &str = "sandbox-secret-official-0001";
pub const MINI: &str = "wxsandboxmini001";

/// A gateway configuration wired to a sandbox: accounts `default` (the sandbox's Official
/// Account) and `mini` (its Mini Program), one API key, and `extra` TOML appended
/// (top-level keys first, then sections).
pub fn gateway_toml(
    sandbox: &str,
    data_dir: &std::path::Path,
    store: &str,
    top: &str,
    extra: &str,
) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:18340"
data_dir = "{data}"
{top}

[store]
{store}

[upstream]
api_base = "{sandbox}"
open_base = "{sandbox}"
pay_base = "{sandbox}"
mp_base = "{sandbox}"
timeout_ms = 3000
retries = 2
backoff_ms = 20

[credentials]
check_interval_ms = 100
lock_lease_ms = 5000
wait_timeout_ms = 10000
failure_backoff_ms = {FAILURE_BACKOFF_MS}

[[api.keys]]
name = "tests"
key = "{API_KEY}"

[[api.keys]]
name = "mini-only"
key = "mini-only-key-0123456789"
accounts = ["mini"]

[accounts.default]
kind = "official"
appid = "{OA}"
secret = "{OA_SECRET}"
token = "sandboxtoken"
encoding_aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
mode = "safe"

[accounts.mini]
kind = "miniprogram"
appid = "{MINI}"
secret = "sandbox-secret-miniapp-0001"

{extra}
"#,
        data = data_dir.display(),
    )
}

pub fn embedded() -> &'static str {
    "kind = \"embedded\""
}

pub fn redis_store(url: &str) -> String {
    format!("kind = \"redis\"\nredis_url = \"{url}\"")
}

/// Starts a gateway in this process on a free port.
pub async fn start_gateway(toml: &str, clock: wxgate::Clock) -> wxgate::gateway::Running {
    let config = wxgate::Config::from_toml_with_env(toml, Vec::<(String, String)>::new())
        .expect("test config is valid");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let state = wxgate::gateway::build(config, clock)
        .await
        .expect("gateway builds");
    wxgate::gateway::start_on(listener, state).await.unwrap()
}

/// Serves `app` on a free loopback port, for as long as the test runs: a WeChat stand-in
/// or a webhook. Its base URL, `http://127.0.0.1:PORT`.
pub async fn serve_stand_in(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Logs in to the console of the gateway at `base` with `key`: the session cookie as a
/// `Cookie` header value (`wxgate_console=...`).
pub async fn console_cookie(http: &reqwest::Client, base: &str, key: &str) -> String {
    let r = http
        .post(format!("{base}/console/login"))
        .json(&serde_json::json!({ "key": key }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the console login");
    r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// The gateway's `/metrics` text.
pub async fn metrics_text(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `[accounts.NAME]`: the sandbox's Official Account again, in plaintext mode, with
/// `more` lines after it (rules, a webhook section).
pub fn plaintext_account(name: &str, more: &str) -> String {
    format!(
        "[accounts.{name}]\nappid = \"{OA}\"\nsecret = \"{OA_SECRET}\"\ntoken = \"sandboxtoken\"\nmode = \"plaintext\"\n\n{more}\n"
    )
}

/// Where the sandbox's pusher sends plaintext pushes for `account` of `h`.
pub fn plaintext_target(h: &Harness, account: &str) -> wxgate_sandbox::pusher::PushTarget {
    wxgate_sandbox::pusher::PushTarget {
        url: h.url(&format!("/wx/{account}/service")),
        token: "sandboxtoken".into(),
        appid: OA.into(),
        encoding_aes_key: None,
        mode: wxgate_sandbox::pusher::MessageMode::Plaintext,
        format: Default::default(),
    }
}

/// `GET url` with the internal API's key: the status and the JSON answer (`Null` when
/// the answer is not JSON).
pub async fn api_get(http: &reqwest::Client, url: String) -> (u16, serde_json::Value) {
    let r = http.get(url).bearer_auth(API_KEY).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Calls of a sandbox endpoint for an app, from the sandbox's own counters.
pub fn sandbox_calls(sb: &wxgate_sandbox::Sandbox, path: &str, appid: &str) -> u64 {
    sb.platform
        .calls()
        .get(path)
        .and_then(|c| c.by_app.get(appid).copied())
        .unwrap_or(0)
}

/// Writes a gateway config into `dir` under `name`, listening on `port`.
pub fn write_config(dir: &TempDir, name: &str, toml: &str, port: u16) -> String {
    let path = dir.path().join(name);
    let toml = toml.replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    std::fs::write(&path, toml).unwrap();
    path.display().to_string()
}

/// Sends SIGTERM, as an operator's `kill` or a service manager does.
pub fn sigterm(child: &Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
}

/// Waits for the process to exit, failing the test after `within`.
pub fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "wxgate did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One gateway on a free port, wired to its own sandbox (or one given), with a temp
/// dir: the harness the integration tests share. Its `public_url` is its own address,
/// so OAuth redirects come back to it.
pub struct Harness {
    pub sb: wxgate_sandbox::Sandbox,
    pub gw: wxgate::gateway::Running,
    /// Follows no redirects, so a test sees every hop.
    pub http: reqwest::Client,
    pub clock: wxgate::Clock,
    pub port: u16,
    pub dir: TempDir,
}

impl Harness {
    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gw.url())
    }

    /// Moves the gateway's and the sandbox's clocks forward together.
    pub fn advance(&self, seconds: i64) {
        self.clock.advance(seconds);
        self.sb.platform.clock.advance(seconds);
    }
}

/// How to start a [`Harness`]: the accounts of [`gateway_toml`] plus what a test adds.
/// In every piece, `{port}` stands for the gateway's port.
#[derive(Default)]
pub struct Setup {
    top: String,
    extra: String,
    default_account: String,
    store: Option<String>,
    clock: Option<wxgate::Clock>,
    sandbox: Option<wxgate_sandbox::Sandbox>,
    handlers:
        std::collections::HashMap<String, Vec<std::sync::Arc<dyn wxgate::push::handler::Handler>>>,
    tag: Option<&'static str>,
    upstream: Option<String>,
    dir: Option<TempDir>,
}

impl Setup {
    pub fn new() -> Self {
        Setup::default()
    }

    /// Top-level keys and early sections (`[service]`, `[server]`, ...).
    pub fn top(mut self, toml: &str) -> Self {
        self.top.push_str(toml);
        self.top.push('\n');
        self
    }

    /// Sections appended at the end (more accounts, `[auth]`, ...).
    pub fn extra(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self.extra.push('\n');
        self
    }

    /// Keys added to `[accounts.default]`.
    pub fn default_account(mut self, toml: &str) -> Self {
        self.default_account.push_str(toml);
        self.default_account.push('\n');
        self
    }

    /// The `[store]` lines ([`embedded`] by default).
    pub fn store(mut self, store: &str) -> Self {
        self.store = Some(store.to_owned());
        self
    }

    pub fn clock(mut self, clock: wxgate::Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// A sandbox started by the test (shared, or prepared before the gateway starts).
    pub fn sandbox(mut self, sb: wxgate_sandbox::Sandbox) -> Self {
        self.sandbox = Some(sb);
        self
    }

    /// A handler of an embedding program for `account`.
    pub fn handler(
        mut self,
        account: &str,
        h: std::sync::Arc<dyn wxgate::push::handler::Handler>,
    ) -> Self {
        self.handlers.entry(account.to_owned()).or_default().push(h);
        self
    }

    /// Another WeChat stand-in than the sandbox for `upstream.api_base` and `open_base`.
    pub fn upstream(mut self, base: &str) -> Self {
        self.upstream = Some(base.to_owned());
        self
    }

    /// A data dir the test prepared (a store written before the gateway starts).
    pub fn dir(mut self, dir: TempDir) -> Self {
        self.dir = Some(dir);
        self
    }

    /// The temp dir's name tag.
    pub fn tag(mut self, tag: &'static str) -> Self {
        self.tag = Some(tag);
        self
    }

    pub async fn start(self) -> Harness {
        let sb = match self.sandbox {
            Some(sb) => sb,
            None => {
                wxgate_sandbox::Sandbox::start_ephemeral(wxgate_sandbox::SandboxConfig::example())
                    .await
                    .unwrap()
            }
        };
        let dir = self
            .dir
            .unwrap_or_else(|| TempDir::new(self.tag.unwrap_or("harness")));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let port_s = port.to_string();
        let store = self.store.unwrap_or_else(|| embedded().to_owned());
        let upstream = self.upstream.unwrap_or_else(|| sb.base_url());
        let toml = gateway_toml(&upstream, dir.path(), &store, &self.top, &self.extra)
            .replace(
                "public_url = \"http://127.0.0.1:18340\"",
                &format!("public_url = \"http://127.0.0.1:{port}\""),
            )
            .replace(
                "mode = \"safe\"\n",
                &format!("mode = \"safe\"\n{}", self.default_account),
            )
            .replace("{port}", &port_s);
        let config = wxgate::Config::from_toml_with_env(&toml, Vec::<(String, String)>::new())
            .unwrap_or_else(|e| panic!("test config: {e}\n{toml}"));
        let clock = self.clock.unwrap_or_else(wxgate::Clock::system);
        let state = wxgate::gateway::build_with(config, clock.clone(), self.handlers)
            .await
            .expect("gateway builds");
        let gw = wxgate::gateway::start_on(listener, state).await.unwrap();
        Harness {
            sb,
            gw,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            clock,
            port,
            dir,
        }
    }
}

/// A handler of an embedding program that records every message it sees and lets it
/// pass: what the push tests count to know a push reached (or did not reach) handlers.
#[derive(Default)]
pub struct Recorder {
    pub seen: std::sync::Mutex<Vec<wxgate_proto::Message>>,
}

impl wxgate::push::handler::Handler for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    fn handle<'a>(
        &'a self,
        ctx: &'a wxgate::push::handler::MessageContext,
    ) -> futures_util::future::BoxFuture<'a, wxgate::Result<wxgate::push::handler::Handled>> {
        self.seen.lock().unwrap().push(ctx.message.clone());
        Box::pin(async { Ok(wxgate::push::handler::Handled::Pass) })
    }
}
