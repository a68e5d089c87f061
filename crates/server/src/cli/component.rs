//! `wxgate component export|import`: the authorizers' refresh tokens of a third-party
//! platform, to and from an encrypted file (key in `COMPONENT_EXPORT_KEY`), against the
//! configured store (with the embedded store, stop the server first: redb admits one
//! process).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Failure;
use crate::component::{backup, ComponentService};
use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum ComponentCommand {
    /// Writes every authorizer (refresh token, grants) to an encrypted file.
    Export(ExportArgs),
    /// Restores the authorizers of an export into the store.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long, default_value = "wxgate.toml")]
    pub config: PathBuf,
    /// The `[components.NAME]` to export.
    #[arg(long)]
    pub component: String,
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, env = backup::KEY_ENV, hide_env_values = true)]
    pub key: String,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[arg(long, default_value = "wxgate.toml")]
    pub config: PathBuf,
    #[arg(long)]
    pub component: String,
    #[arg(long = "in")]
    pub input: PathBuf,
    #[arg(long, env = backup::KEY_ENV, hide_env_values = true)]
    pub key: String,
}

async fn service(config: &Config) -> Result<ComponentService, Failure> {
    let store = crate::store::open(&config.store, &config.data_dir)
        .await
        .map_err(|e| Failure::new(format!("the store: {e}")))?;
    let upstream = crate::upstream::Upstream::new(&config.upstream)
        .map_err(|e| Failure::new(e.to_string()))?;
    ComponentService::new(config, store, upstream, "cli").map_err(|e| Failure::new(e.to_string()))
}

pub async fn run(cmd: ComponentCommand) -> Result<(), Failure> {
    let load = |p: &PathBuf| Config::load(p).map_err(|e| Failure::new(e.to_string()));
    match cmd {
        ComponentCommand::Export(a) => {
            let config = load(&a.config)?;
            let s = service(&config).await?;
            let c = s
                .component(&a.component)
                .ok_or_else(|| Failure::new(format!("no [components.{}]", a.component)))?;
            let all = s
                .authorizers(c)
                .await
                .map_err(|e| Failure::new(e.to_string()))?;
            let text = backup::seal(&c.cfg.component_appid, &all, &a.key)
                .map_err(|e| Failure::new(e.to_string()))?;
            write_private(&a.out, &text)?;
            println!(
                "exported {} authorizer(s) of {} to {}",
                all.len(),
                a.component,
                a.out.display()
            );
        }
        ComponentCommand::Import(a) => {
            let config = load(&a.config)?;
            let s = service(&config).await?;
            let c = s
                .component(&a.component)
                .ok_or_else(|| Failure::new(format!("no [components.{}]", a.component)))?;
            let text = std::fs::read_to_string(&a.input)
                .map_err(|e| Failure::new(format!("{}: {e}", a.input.display())))?;
            let all = backup::open(&text, &c.cfg.component_appid, &a.key)
                .map_err(|e| Failure::new(e.to_string()))?;
            for one in &all {
                s.save_authorizer(c, one)
                    .await
                    .map_err(|e| Failure::new(e.to_string()))?;
            }
            println!("imported {} authorizer(s) into {}", all.len(), a.component);
        }
    }
    Ok(())
}

/// Writes a file only its owner can read.
fn write_private(path: &PathBuf, text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(|e| Failure::new(format!("{}: {e}", path.display())))
}
