//! The `wxgate` command line. Each subcommand prints its result on stdout and a clear
//! error on stderr with a non-zero exit code, so it can be used from scripts.

mod component;
#[cfg(feature = "sandbox")]
mod demo;
mod init;
mod ops;
mod protocol;
#[cfg(feature = "sandbox")]
mod sandbox;

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A gateway between the WeChat platform and your own servers.
#[derive(Debug, Parser)]
#[command(name = "wxgate", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compute signatures, to debug "invalid signature".
    #[command(subcommand)]
    Sign(protocol::SignCommand),
    /// Encrypt or decrypt pushes as WeChat's safe mode does (WXBizMsgCrypt).
    #[command(subcommand)]
    Crypto(protocol::CryptoCommand),
    /// Decrypt and verify Mini Program open data.
    #[command(subcommand, name = "miniprogram", alias = "miniapp")]
    MiniProgram(protocol::MiniProgramCommand),
    /// Run the local WeChat sandbox, or push messages to a gateway as WeChat does.
    #[cfg(feature = "sandbox")]
    Sandbox(sandbox::SandboxArgs),
    /// Run the sandbox and a gateway wired to it, with the demo pages: the way to try wxgate.
    #[cfg(feature = "sandbox")]
    Demo(demo::DemoArgs),
    /// Run the gateway.
    Serve(ops::ServeArgs),
    /// Write a starter configuration for one account and print what to paste into
    /// WeChat's console (服务器配置).
    Init(init::InitArgs),
    /// Validate a configuration and say exactly what is wrong; `--online` also asks
    /// WeChat for each account's token once.
    Check(ops::CheckArgs),
    /// Apply a changed configuration to the running server without a restart (accounts
    /// added, removed or changed): validated here first, then SIGHUP.
    Reload(ops::ReloadArgs),
    /// Print an account's current access_token (for scripts).
    Token(ops::AccountArgs),
    /// Print each account's token age, expiry and fetches today against the quota.
    Status(ops::StatusArgs),
    /// WeChat's API quota.
    #[command(subcommand)]
    Quota(ops::QuotaCommand),
    /// A third-party platform's authorizers: export and import their refresh tokens.
    #[command(subcommand)]
    Component(component::ComponentCommand),
}

/// A failure a subcommand reports: the message goes to stderr, the code is the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 1,
        }
    }
}

impl From<wxgate_proto::Error> for Failure {
    fn from(e: wxgate_proto::Error) -> Self {
        Failure::new(format!("{e} ({})", e.sample_code()))
    }
}

/// Reads all of stdin as UTF-8.
pub(crate) fn read_stdin() -> Result<String, Failure> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| Failure::new(format!("reading stdin: {e}")))?;
    Ok(s)
}

/// Runs an async subcommand on a multi-threaded runtime.
fn block_on<F: std::future::Future<Output = Result<(), Failure>>>(f: F) -> Result<(), Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("starting the runtime: {e}")))?
        .block_on(f)
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sign(c) => protocol::sign(c),
        Command::Crypto(c) => protocol::crypto(c),
        Command::MiniProgram(c) => protocol::miniprogram(c),
        #[cfg(feature = "sandbox")]
        Command::Sandbox(args) => block_on(sandbox::run(args)),
        #[cfg(feature = "sandbox")]
        Command::Demo(args) => block_on(demo::run(args)),
        Command::Serve(args) => block_on(ops::serve(args)),
        Command::Init(args) => init::run(args),
        Command::Check(args) => block_on(ops::check(args)),
        Command::Reload(args) => ops::reload(args),
        Command::Token(args) => block_on(ops::token(args)),
        Command::Status(arg) => block_on(ops::status(arg)),
        Command::Quota(cmd) => block_on(ops::quota(cmd)),
        Command::Component(cmd) => block_on(component::run(cmd)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
