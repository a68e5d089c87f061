//! `wxgate serve`, `check`, `token`, `status` and `quota clear`: running the gateway and
//! asking it about its accounts.
//!
//! `token`, `status` and `quota clear` ask the running server over its internal API
//! (with the first configured API key that may use the account) when one listens at the
//! config's `listen`; otherwise they open the store themselves. The embedded store admits
//! one process, so asking the server is the only way while it runs.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};
use wxgate_proto::api::openapi::ClearQuota;
use wxgate_proto::api::Endpoint;

use super::Failure;
use crate::clock::Clock;
use crate::config::{Config, LogFormat};
use crate::credentials::Kind;
use crate::gateway;

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The configuration file (see wxgate.example.toml).
    #[arg(long, short, default_value = "wxgate.toml")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Also ask WeChat (or the sandbox: `upstream.api_base`) for each account's token
    /// once, and say per account what is wrong: the secret, the appid, the IP whitelist
    /// (naming the address WeChat saw), or the network.
    #[arg(long)]
    pub online: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// text or json (overrides the config's log_format).
    #[arg(long)]
    pub log_format: Option<String>,
}

#[derive(Debug, Args)]
pub struct AccountArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[arg(long, short, default_value = "default")]
    pub account: String,
}

#[derive(Debug, Subcommand)]
pub enum QuotaCommand {
    /// Call WeChat's /cgi-bin/clear_quota for the account (10 times a month).
    Clear(AccountArgs),
}

fn load(arg: &ConfigArg) -> Result<Config, Failure> {
    Config::load(&arg.config).map_err(|e| Failure::new(e.to_string()))
}

/// Sets up logging: text or JSON lines on stderr, `RUST_LOG` filtering (default info).
/// Lines a stranger can cause beyond the first few a minute ([`crate::sampled`], target
/// [`crate::sampled::TARGET`]) are kept from stderr but still reach the console's
/// problem list, which counts them.
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer as _;
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
            .add_directive(
                format!("{}=off", crate::sampled::TARGET)
                    .parse()
                    .expect("a valid directive"),
            )
    };
    // Colours only for a terminal: escape codes in a file or a pipe are noise, and
    // formatting them costs every request's span (measured: a quarter of /healthz).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let text = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    // Beside the formatter: warnings kept for the console's "recent problems".
    let problems = crate::console::problems::Layer.with_filter(LevelFilter::WARN);
    let registry = tracing_subscriber::registry().with(problems);
    let _ = match format {
        LogFormat::Json => registry.with(text.json().with_filter(filter())).try_init(),
        LogFormat::Text => registry.with(text.with_filter(filter())).try_init(),
    };
}

pub async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let mut config = load(&args.config)?;
    match args.log_format.as_deref() {
        None => {}
        Some("json") => config.log_format = LogFormat::Json,
        Some("text") => config.log_format = LogFormat::Text,
        Some(other) => {
            return Err(Failure::new(format!(
                "--log-format {other:?}: text or json"
            )))
        }
    }
    init_logging(config.log_format);
    let accounts: Vec<String> = config.accounts.keys().cloned().collect();
    let running = gateway::start(config, Clock::system())
        .await
        .map_err(|e| Failure::new(e.to_string()))?;
    tracing::info!(addr = %running.addr, accounts = ?accounts, store = running.state.ctx.store.kind(), "wxgate listening");
    let pid_file = pid_file(&running.state.ctx.config.data_dir);
    if let Err(e) = std::fs::write(&pid_file, std::process::id().to_string()) {
        tracing::warn!(path = %pid_file.display(), error = %e, "pid file not written: `wxgate reload` will need --pid");
    }
    let path = args.config.config.clone();
    let reloads = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return std::future::pending().await;
            };
            while hup.recv().await.is_some() {
                // Read and validated as `wxgate check` does; an invalid file changes
                // nothing and says why.
                match Config::load(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|c| running.reload(c).map_err(|e| e.to_string()))
                {
                    Ok(what) => tracing::info!(%what, "reload applied"),
                    Err(e) => {
                        tracing::error!(error = %e, "reload refused: the running configuration stays")
                    }
                }
            }
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = shutdown_signal() => {}
        () = reloads => {}
    }
    let _ = std::fs::remove_file(&pid_file);
    tracing::info!("shutting down: finishing in-flight requests");
    running.stop().await;
    Ok(())
}

/// Where `wxgate serve` writes its process id, for `wxgate reload`.
fn pid_file(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("wxgate.pid")
}

#[derive(Debug, Args)]
pub struct ReloadArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The running server's process id; by default the one `wxgate serve` wrote into
    /// `data_dir/wxgate.pid`.
    #[arg(long)]
    pub pid: Option<u32>,
}

/// `wxgate reload`: validates the file as `check` does (an invalid one is refused here,
/// and the server is not told), then asks the running server to apply it (SIGHUP). The
/// server logs what it added, removed and changed, or why it refused.
pub fn reload(args: ReloadArgs) -> Result<(), Failure> {
    let config = load(&args.config)?;
    let pid = match args.pid {
        Some(p) => p,
        None => {
            let file = pid_file(&config.data_dir);
            std::fs::read_to_string(&file)
                .map_err(|e| {
                    Failure::new(format!(
                        "reading {}: {e} (is `wxgate serve` running with this config? or give --pid)",
                        file.display()
                    ))
                })?
                .trim()
                .parse()
                .map_err(|_| Failure::new(format!("{} holds no process id", file.display())))?
        }
    };
    #[cfg(unix)]
    {
        let pid = libc::pid_t::try_from(pid)
            .map_err(|_| Failure::new(format!("{pid} is not a process id")))?;
        // SAFETY: kill(2) with a valid signal number; it touches no memory of ours.
        if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
            return Err(Failure::new(format!(
                "signalling process {pid}: {}",
                std::io::Error::last_os_error()
            )));
        }
        println!("ok: the configuration is valid; asked process {pid} to apply it (its log says what changed)");
        Ok(())
    }
    #[cfg(not(unix))]
    Err(Failure::new(
        "reload needs a Unix signal; restart the server instead",
    ))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

pub async fn check(args: CheckArgs) -> Result<(), Failure> {
    let config = load(&args.config)?;
    println!(
        "ok: {} account(s) ({}), store {:?}, listening on {}",
        config.accounts.len(),
        config
            .accounts
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        config.store.kind,
        config.listen
    );
    if args.online {
        check_online(&config).await?;
    }
    Ok(())
}

/// What WeChat says of one account's AppID and AppSecret, from this machine.
async fn online_verdict(
    up: &crate::upstream::Upstream,
    acc: &crate::config::AccountConfig,
) -> (bool, String) {
    use crate::credentials::AppCheck;
    let said = match crate::credentials::check_app(up, &acc.appid, acc.secret.expose()).await {
        AppCheck::Ok { expires_in } => return (true, format!("ok (a token for {expires_in} s)")),
        AppCheck::WrongSecret(code) => format!(
            "wrong secret ({}): copy the AppSecret again (公众平台 → 设置与开发 → 基本配置; Mini Programs: 开发管理 → 开发设置)",
            code.code()
        ),
        AppCheck::UnknownAppId(code) => format!(
            "appid unknown ({}): {} is not an AppID WeChat knows",
            code.code(),
            acc.appid
        ),
        AppCheck::IpNotWhitelisted(code, ip) => {
            let ip = ip.map_or("an address it did not name".to_owned(), |ip| ip.to_string());
            format!(
                "IP not whitelisted: WeChat saw {ip} ({}); add it to 公众平台 → 设置与开发 → 基本配置 → IP白名单 (Mini Programs: 开发管理 → 开发设置 → IP白名单), effective within minutes",
                code.code()
            )
        }
        AppCheck::Refused(c, errmsg) => format!("WeChat refused: {c} ({errmsg})"),
        AppCheck::Unreachable(e) => {
            format!("unreachable: {e} (the network, a proxy, or upstream.api_base)")
        }
    };
    (false, said)
}

/// `check --online`: one token ask per account, a line each; fails if any is not ok.
async fn check_online(config: &Config) -> Result<(), Failure> {
    let up = crate::upstream::Upstream::new(&config.upstream)
        .map_err(|e| Failure::new(e.to_string()))?;
    let mut failed = 0;
    for (name, acc) in &config.accounts {
        let (ok, said) = online_verdict(&up, acc).await;
        failed += usize::from(!ok);
        println!("{name} ({}): {said}", acc.appid);
    }
    if failed > 0 {
        return Err(Failure::new(format!(
            "{failed} of {} account(s) not ok",
            config.accounts.len()
        )));
    }
    Ok(())
}

/// The running server's internal API, when one answers and a key may use the account.
async fn remote(config: &Config, account: &str) -> Option<(reqwest::Client, String, String)> {
    let key = config
        .api
        .keys
        .iter()
        .find(|k| k.accounts.is_empty() || k.accounts.iter().any(|a| a == account))?
        .key
        .expose()
        .to_owned();
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .ok()?;
    let base = format!("http://{}", config.listen);
    http.get(format!("{base}/healthz")).send().await.ok()?;
    Some((http, base, key))
}

async fn remote_json(
    (http, base, key): &(reqwest::Client, String, String),
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, Failure> {
    let mut req = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| Failure::new(format!("server: {}", e.without_url())))?;
    let status = resp.status();
    let v: Value = resp
        .json()
        .await
        .map_err(|e| Failure::new(format!("server: {}", e.without_url())))?;
    if !status.is_success() {
        return Err(Failure::new(format!(
            "server answered {status}: {}",
            v["error"]["message"].as_str().unwrap_or("")
        )));
    }
    Ok(v)
}

pub async fn token(args: AccountArgs) -> Result<(), Failure> {
    let config = load(&args.config)?;
    if !config.accounts.contains_key(&args.account) {
        return Err(Failure::new(format!("unknown account {:?}", args.account)));
    }
    if let Some(r) = remote(&config, &args.account).await {
        let v = remote_json(
            &r,
            Method::GET,
            &format!("/api/v1/{}/token", args.account),
            None,
        )
        .await?;
        println!("{}", v["access_token"].as_str().unwrap_or_default());
        return Ok(());
    }
    let state = gateway::build(config, Clock::system())
        .await
        .map_err(|e| Failure::new(e.to_string()))?;
    let c = state
        .ctx
        .credentials
        .get(&args.account, Kind::AccessToken)
        .await
        .map_err(|e| Failure::new(e.to_string()))?;
    println!("{}", c.value);
    Ok(())
}

/// A duration for the table: `42s`, `17m`, `2.0h`; `-` when unknown.
fn span(seconds: Option<i64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s.abs() < 120 => format!("{s}s"),
        Some(s) if s.abs() < 7200 => format!("{}m", s / 60),
        Some(s) => format!("{:.1}h", s as f64 / 3600.0),
    }
}

/// One row of `wxgate status` per credential, from `/api/v1/{account}/status`'s shape,
/// with its colour: red for an error or no usable value, yellow past its refresh time.
/// The colour of a failing credential's row (red).
const FAILING: &str = "31";

fn status_rows(account: &str, v: &Value) -> Vec<(Vec<String>, Option<&'static str>)> {
    let quota = v["daily_quota"].as_i64().unwrap_or(2000);
    let appid = v["appid"].as_str().unwrap_or("").to_owned();
    let mut rows = Vec::new();
    for c in v["credentials"].as_array().into_iter().flatten() {
        let age = c["age"].as_i64();
        let now = c["fetched_at"].as_i64().zip(age).map(|(f, a)| f + a);
        let refresh_in = c["refresh_at"].as_i64().zip(now).map(|(r, n)| r - n);
        let expires_in = c["expires_in"].as_i64();
        let error = c["last_error"].as_str().unwrap_or("").to_owned();
        let colour = if !error.is_empty() || expires_in.is_some_and(|e| e <= 0) {
            Some(FAILING)
        } else if refresh_in.is_some_and(|r| r < 0) {
            Some("33")
        } else {
            None
        };
        let kind = c["kind"].as_str().unwrap_or("");
        rows.push((
            vec![
                account.to_owned(),
                appid.clone(),
                kind.to_owned(),
                age.map_or("-".into(), |a| format!("{} ago", span(Some(a)))),
                span(refresh_in),
                span(expires_in),
                c["digest"].as_str().unwrap_or("-").to_owned(),
                format!("{}/{quota}", c["fetches_today"].as_i64().unwrap_or(0)),
                error,
            ],
            colour,
        ));
    }
    rows
}

/// Prints the rows as an aligned table; coloured when stdout is a terminal and
/// `NO_COLOR` is not set.
fn print_table(rows: &[(Vec<String>, Option<&'static str>)]) {
    const HEAD: [&str; 9] = [
        "ACCOUNT",
        "APPID",
        "CREDENTIAL",
        "ISSUED",
        "REFRESH IN",
        "EXPIRES IN",
        "DIGEST",
        "FETCHES TODAY",
        "LAST ERROR",
    ];
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none();
    let mut widths: Vec<usize> = HEAD.iter().map(|h| h.chars().count()).collect();
    for (cells, _) in rows {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        out.trim_end().to_owned()
    };
    let head = line(HEAD.to_vec());
    if colour {
        println!("\x1b[1m{head}\x1b[0m");
    } else {
        println!("{head}");
    }
    for (cells, c) in rows {
        let text = line(cells.iter().map(String::as_str).collect());
        match (colour, c) {
            (true, Some(code)) => println!("\x1b[{code}m{text}\x1b[0m"),
            _ => println!("{text}"),
        }
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only the credentials that are failing (an error, or nothing usable): what to
    /// look at first among thousands of accounts.
    #[arg(long)]
    pub failing: bool,
}

pub async fn status(args: StatusArgs) -> Result<(), Failure> {
    let arg = &args.config;
    let config = load(arg)?;
    let names: Vec<String> = config.accounts.keys().cloned().collect();
    let mut local = None;
    let mut rows = Vec::new();
    for account in &names {
        let v = match remote(&config, account).await {
            Some(r) => {
                remote_json(&r, Method::GET, &format!("/api/v1/{account}/status"), None).await?
            }
            None => {
                if local.is_none() {
                    local = Some(
                        gateway::build(config.clone(), Clock::system())
                            .await
                            .map_err(|e| Failure::new(e.to_string()))?,
                    );
                }
                let state = local.as_ref().expect("built above");
                let credentials = state
                    .ctx
                    .credentials
                    .status(account)
                    .await
                    .map_err(|e| Failure::new(e.to_string()))?;
                json!({
                    "appid": config.accounts[account].appid,
                    "daily_quota": state.ctx.credentials.daily_quota(),
                    "credentials": credentials,
                })
            }
        };
        rows.extend(
            status_rows(account, &v)
                .into_iter()
                .filter(|(_, colour)| !args.failing || *colour == Some(FAILING)),
        );
    }
    print_table(&rows);
    Ok(())
}

pub async fn quota(cmd: QuotaCommand) -> Result<(), Failure> {
    let QuotaCommand::Clear(args) = cmd;
    let config = load(&args.config)?;
    let appid = config
        .accounts
        .get(&args.account)
        .ok_or_else(|| Failure::new(format!("unknown account {:?}", args.account)))?
        .appid
        .clone();
    let body = json!({ "appid": appid });
    let answer: Value = match remote(&config, &args.account).await {
        Some(r) => {
            remote_json(
                &r,
                Method::POST,
                &format!("/api/v1/{}/proxy{}", args.account, ClearQuota::PATH),
                Some(body),
            )
            .await?
        }
        None => {
            let state = gateway::build(config, Clock::system())
                .await
                .map_err(|e| Failure::new(e.to_string()))?;
            let req = ClearQuota {
                appid: appid.clone(),
            };
            match state.ctx.credentials.call_api(&args.account, &req).await {
                Ok(ack) => serde_json::to_value(ack).unwrap_or_default(),
                Err(crate::error::Error::WeChat { code, errmsg, .. }) => {
                    json!({"errcode": code.code(), "errmsg": errmsg})
                }
                Err(e) => return Err(Failure::new(e.to_string())),
            }
        }
    };
    match answer["errcode"].as_i64() {
        Some(0) | None => {
            println!("quota cleared for {} ({appid})", args.account);
            Ok(())
        }
        Some(code) => Err(Failure::new(format!(
            "WeChat refused: {} ({})",
            wxgate_proto::ErrCode::from_code(code),
            answer["errmsg"].as_str().unwrap_or("")
        ))),
    }
}
