//! `wxgate sandbox`: run the local WeChat platform, or push a message to a gateway as
//! WeChat would.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use wxgate_sandbox::messages;
use wxgate_sandbox::pusher::{self, MessageMode, PushFormat, PushOptions, PushTarget};
use wxgate_sandbox::{Sandbox, SandboxConfig};

use super::Failure;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub command: Option<SandboxCommand>,
    /// The sandbox config (apps, test users, limits); the bundled example when absent.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where to listen, overriding the config's `listen`.
    #[arg(long)]
    pub listen: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Push a message or event to a gateway as WeChat does and print the checked reply.
    Push(PushArgs),
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The gateway's push URL, e.g. http://127.0.0.1:18340/wx/service
    #[arg(long)]
    pub url: String,
    /// plaintext, compatible or safe.
    #[arg(long, default_value = "safe")]
    pub mode: MessageMode,
    /// The data format (数据格式): xml, or json as a Mini Program receives pushes.
    #[arg(long, default_value = "xml")]
    pub format: PushFormat,
    /// What to push: text, image, voice, video, shortvideo, location, link, file,
    /// subscribe, subscribe_qrscene, unsubscribe, SCAN, LOCATION, CLICK, VIEW,
    /// scancode_push, scancode_waitmsg, pic_sysphoto, pic_photo_or_album, pic_weixin,
    /// location_select, TEMPLATESENDJOBFINISH, MASSSENDJOBFINISH, view_miniprogram,
    /// and a Mini Program's miniprogrampage, user_enter_tempsession, wxa_media_check.
    #[arg(long, default_value = "text")]
    pub kind: String,
    /// The text message's content, or the event's EventKey.
    #[arg(long)]
    pub text: Option<String>,
    /// Take appid, token, EncodingAESKey and original ID from this sandbox config ...
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// ... for this app (the first app when absent) ...
    #[arg(long)]
    pub appid: Option<String>,
    /// ... or give them here (these win over the config).
    #[arg(long)]
    pub token: Option<String>,
    #[arg(long)]
    pub aes_key: Option<String>,
    /// The account's original ID, the push's ToUserName.
    #[arg(long)]
    pub to: Option<String>,
    /// The sender's openid.
    #[arg(long)]
    pub from: Option<String>,
}

fn load(path: Option<&PathBuf>) -> Result<SandboxConfig, Failure> {
    match path {
        None => Ok(SandboxConfig::example()),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Failure::new(format!("reading {}: {e}", p.display())))?;
            SandboxConfig::from_toml(&text)
                .map_err(|e| Failure::new(format!("{}: {e}", p.display())))
        }
    }
}

pub async fn run(args: SandboxArgs) -> Result<(), Failure> {
    match args.command {
        Some(SandboxCommand::Push(p)) => push(p).await,
        None => serve(args).await,
    }
}

async fn serve(args: SandboxArgs) -> Result<(), Failure> {
    let mut config = load(args.config.as_ref())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let apps: Vec<String> = config
        .apps
        .iter()
        .map(|a| format!("{} ({:?})", a.appid, a.kind))
        .collect();
    let sandbox = Sandbox::start(config)
        .await
        .map_err(|e| Failure::new(format!("cannot listen: {e}")))?;
    println!("wxgate sandbox listening on {}", sandbox.base_url());
    println!("apps: {}", apps.join(", "));
    println!(
        "point a gateway's api_base and open_base at {}",
        sandbox.base_url()
    );
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| Failure::new(format!("signal: {e}")))?;
    Ok(())
}

async fn push(p: PushArgs) -> Result<(), Failure> {
    let config = load(p.config.as_ref())?;
    let app = match &p.appid {
        Some(id) => config.apps.iter().find(|a| &a.appid == id),
        None => config.apps.first(),
    };
    let appid = p
        .appid
        .clone()
        .or_else(|| app.map(|a| a.appid.clone()))
        .ok_or_else(|| Failure::new("--appid is required"))?;
    let token = p
        .token
        .clone()
        .or_else(|| app.and_then(|a| a.token.clone()))
        .ok_or_else(|| Failure::new("--token is required (or an app with a token in --config)"))?;
    let encoding_aes_key = p
        .aes_key
        .clone()
        .or_else(|| app.and_then(|a| a.encoding_aes_key.clone()));
    let to =
        p.to.clone()
            .or_else(|| app.map(|a| a.original_id.clone()))
            .unwrap_or_else(|| "gh_sandbox".into());
    let from = p
        .from
        .clone()
        .or_else(|| app.and_then(|a| a.users.first()).map(|u| u.openid.clone()))
        .unwrap_or_else(|| "oSandboxUser".into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let message = messages::sample(
        &p.kind,
        &to,
        &from,
        now,
        u64::from(rand::random::<u32>()),
        p.text.as_deref(),
    )
    .ok_or_else(|| {
        Failure::new(format!(
            "unknown --kind {:?}; one of {}",
            p.kind,
            messages::KINDS.join(", ")
        ))
    })?;
    let target = PushTarget {
        url: p.url,
        token,
        appid,
        encoding_aes_key,
        mode: p.mode,
        format: p.format,
    };
    let outcome = pusher::push(
        &reqwest::Client::new(),
        &target,
        &message,
        &PushOptions::default(),
    )
    .await
    .map_err(|e| Failure::new(e.to_string()))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&outcome).unwrap_or_default()
    );
    if outcome.status != 200 {
        return Err(Failure::new(format!(
            "the gateway answered HTTP {}: {}",
            outcome.status,
            outcome.body.trim()
        )));
    }
    Ok(())
}
