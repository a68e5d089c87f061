//! `wxgate init`: a working starter configuration for one Official Account, and exactly
//! what to paste into WeChat's console. The push Token, the EncodingAESKey and every key
//! wxgate needs are generated here, so a newcomer invents none of them by hand.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use base64::Engine;
use rand::RngCore;

use super::Failure;
use crate::config::Config;

/// Where the secrets go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SecretsIn {
    /// Written into the file (keep it private: chmod 600).
    File,
    /// Written as `{ env = "NAME" }` references; the values are printed to export.
    Env,
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Where to write the configuration.
    #[arg(long, default_value = "wxgate.toml")]
    pub out: PathBuf,
    /// The Official Account's AppID (公众平台 → 设置与开发 → 基本配置). Asked when
    /// missing and stdin is a terminal.
    #[arg(long)]
    pub appid: Option<String>,
    /// Its AppSecret (same page). Asked when missing and stdin is a terminal.
    #[arg(long)]
    pub secret: Option<String>,
    /// Wire the account to the local sandbox (`wxgate sandbox`) instead of WeChat: its
    /// example account, no AppSecret needed.
    #[arg(long, conflicts_with_all = ["appid", "secret"])]
    pub sandbox: bool,
    /// The sandbox's address, with `--sandbox`.
    #[arg(long, default_value = "http://127.0.0.1:18341")]
    pub sandbox_url: String,
    /// The URL WeChat and browsers reach this server at (https in production; WeChat
    /// pushes only to ports 80 and 443). Default: http://LISTEN.
    #[arg(long)]
    pub public_url: Option<String>,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:18340")]
    pub listen: String,
    /// `file`: secrets in the file; `env`: `{ env = ... }` references in the file and
    /// the variables printed to export.
    #[arg(long, value_enum, default_value = "file")]
    pub secrets: SecretsIn,
    /// Overwrite the file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// A random string of `n` characters from `alphabet`.
fn random_from(alphabet: &[u8], n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| alphabet[(rng.next_u32() as usize) % alphabet.len()] as char)
        .collect()
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A push Token: 32 letters and digits (WeChat takes 3 to 32).
pub fn new_push_token() -> String {
    random_from(ALNUM, 32)
}

/// An EncodingAESKey as WeChat's console makes one: 43 letters and digits that are the
/// base64 of 32 random bytes (the `=` dropped). Drawn again until the encoding has no
/// `+` or `/`, which WeChat's console does not accept.
pub fn new_encoding_aes_key() -> String {
    let mut rng = rand::thread_rng();
    loop {
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        let encoded = base64::engine::general_purpose::STANDARD.encode(key);
        let encoded = encoded.trim_end_matches('=');
        if encoded.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return encoded.to_owned();
        }
    }
}

/// A key for wxgate's own use (auth secret, API key, console key): 32 hex digits.
fn new_key() -> String {
    random_from(b"0123456789abcdef", 32)
}

/// Reads one line from the terminal after `prompt`.
fn ask(prompt: &str) -> Result<String, Failure> {
    eprint!("{prompt}: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::new(format!("reading stdin: {e}")))?;
    Ok(line.trim().to_owned())
}

/// One secret of the file: its TOML (a string, or an `{ env = ... }` reference).
struct Secrets {
    mode: SecretsIn,
    exports: Vec<(&'static str, String)>,
}

impl Secrets {
    fn toml(&mut self, env: &'static str, value: &str) -> String {
        match self.mode {
            SecretsIn::File => toml_string(value),
            SecretsIn::Env => {
                self.exports.push((env, value.to_owned()));
                format!("{{ env = \"{env}\" }}")
            }
        }
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The account wxgate is set up for: (appid, secret, api_base) with the sandbox's
/// example account under `--sandbox`.
fn account(args: &InitArgs) -> Result<(String, String, Option<String>), Failure> {
    if args.sandbox {
        #[cfg(feature = "sandbox")]
        {
            let example = wxgate_sandbox::SandboxConfig::example();
            let app = example
                .apps
                .iter()
                .find(|a| a.kind == wxgate_sandbox::config::AppKind::Official)
                .ok_or_else(|| Failure::new("the sandbox example has no Official Account"))?;
            return Ok((
                app.appid.clone(),
                app.secret.clone(),
                Some(args.sandbox_url.trim_end_matches('/').to_owned()),
            ));
        }
        #[cfg(not(feature = "sandbox"))]
        return Err(Failure::new(
            "--sandbox needs a wxgate built with the sandbox feature",
        ));
    }
    let interactive = std::io::stdin().is_terminal();
    let appid = match (&args.appid, interactive) {
        (Some(a), _) => a.clone(),
        (None, true) => ask("AppID (公众平台 → 设置与开发 → 基本配置)")?,
        (None, false) => {
            return Err(Failure::new(
                "give --appid and --secret (from 公众平台 → 设置与开发 → 基本配置), or --sandbox to try it against the local sandbox",
            ))
        }
    };
    let secret = match (&args.secret, interactive) {
        (Some(s), _) => s.clone(),
        (None, true) => ask("AppSecret")?,
        (None, false) => return Err(Failure::new("give --secret (the account's AppSecret)")),
    };
    if !appid.starts_with("wx") || appid.len() < 8 {
        return Err(Failure::new(format!(
            "{appid:?} does not look like an AppID (wx followed by 16 characters)"
        )));
    }
    if secret.is_empty() {
        return Err(Failure::new("the AppSecret is empty"));
    }
    Ok((appid, secret, None))
}

/// What `init` produced: the file's text, and the text to print.
pub struct Starter {
    pub toml: String,
    pub instructions: String,
    /// The file with every secret written in, for validating it here.
    pub resolved: String,
}

/// Builds the starter configuration and its instructions.
pub fn starter(args: &InitArgs) -> Result<Starter, Failure> {
    let (appid, app_secret, api_base) = account(args)?;
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", args.listen));
    let parsed = url::Url::parse(&public_url).map_err(|_| {
        Failure::new(format!(
            "--public-url {public_url:?} is not an absolute URL"
        ))
    })?;
    let host = parsed.host_str().unwrap_or_default().to_owned();
    let (token, aes_key) = (new_push_token(), new_encoding_aes_key());
    let (auth_secret, api_key, console_key) = (new_key(), new_key(), new_key());
    let render = |mode: SecretsIn| {
        let mut s = Secrets {
            mode,
            exports: Vec::new(),
        };
        let upstream = api_base
            .as_ref()
            .map(|b| {
                format!(
                    "\n# The local sandbox stands in for WeChat (`wxgate sandbox`). Remove this\n# section to talk to WeChat itself.\n[upstream]\napi_base = {b:?}\nopen_base = {b:?}\n"
                )
            })
            .unwrap_or_default();
        let text = format!(
            r#"# Written by `wxgate init`. Every setting, commented: wxgate.example.toml.
listen = {listen}
public_url = {public_url}
data_dir = "./data"
{upstream}
[auth]
# Signs OAuth states and the remembered-user cookie (/wx/auth).
secret = {auth}

[[api.keys]]
# Your other servers call /api/v1/... with `Authorization: Bearer KEY`.
name = "backend"
key = {api}

[console]
# The operator console: {public_url}/console
enabled = true
admin_key = {console}

[accounts.default]
kind = "official"
appid = {appid}
secret = {app_secret}
# The server configuration (服务器配置) entered in WeChat's console.
token = {token}
encoding_aes_key = {aes}
mode = "safe"
"#,
            listen = toml_string(&args.listen),
            public_url = toml_string(&public_url),
            auth = s.toml("AUTH_SECRET", &auth_secret),
            api = s.toml("BACKEND_API_KEY", &api_key),
            console = s.toml("CONSOLE_ADMIN_KEY", &console_key),
            appid = toml_string(&appid),
            app_secret = s.toml("WX_DEFAULT_SECRET", &app_secret),
            token = s.toml("WX_DEFAULT_TOKEN", &token),
            aes = s.toml("WX_DEFAULT_ENCODING_AES_KEY", &aes_key),
        );
        (text, s.exports)
    };
    let (toml, exports) = render(args.secrets);
    let (resolved, _) = render(SecretsIn::File);
    let mut out = String::new();
    if !exports.is_empty() {
        out.push_str("Secrets are not in the file: export these before `wxgate serve` (keep them out of your shell history and repository):\n\n");
        for (name, value) in &exports {
            out.push_str(&format!("export {name}={value}\n"));
        }
        out.push('\n');
    }
    let service = format!("{}/wx/service", public_url.trim_end_matches('/'));
    out.push_str(&format!(
        "In WeChat's console (公众平台 → 设置与开发 → 基本配置 → 服务器配置), enter:\n\
         \x20 URL (服务器地址):                      {service}\n\
         \x20 Token (令牌):                          {token}\n\
         \x20 EncodingAESKey (消息加解密密钥):       {aes_key}\n\
         \x20 Encryption (消息加解密方式):           安全模式 (safe mode)\n\
         Then 设置与开发 → 公众号设置 → 功能设置:\n\
         \x20 网页授权域名 (OAuth domain):           {host}\n\
         \x20 JS接口安全域名 (JS-SDK domain):        {host}\n\
         Add the server's egress IP to 基本配置 → IP白名单 (`wxgate check --online` names it if it is missing).\n\
         WeChat pushes only to ports 80 and 443: put wxgate behind your TLS proxy at {public_url}.\n\n\
         Console key: {console_key}\n\
         Check it:  wxgate check --config {out} --online\n\
         Run it:    wxgate serve --config {out}\n",
        out = args.out.display(),
    ));
    Ok(Starter {
        toml,
        instructions: out,
        resolved,
    })
}

/// `wxgate init`
pub fn run(args: InitArgs) -> Result<(), Failure> {
    if args.out.exists() && !args.force {
        return Err(Failure::new(format!(
            "{} exists: choose another --out, or --force to overwrite it",
            args.out.display()
        )));
    }
    let s = starter(&args)?;
    // What is written must load: validated with the secrets in place.
    Config::from_toml_with_env(&s.resolved, Vec::<(String, String)>::new())
        .map_err(|e| Failure::new(format!("the starter configuration is invalid: {e}")))?;
    write_private(&args.out, &s.toml)?;
    println!("wrote {}\n", args.out.display());
    print!("{}", s.instructions);
    Ok(())
}

/// Writes `text` readable by its owner only (it may hold secrets).
fn write_private(path: &std::path::Path, text: &str) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::new(format!("writing {}: {e}", path.display()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path).map_err(fail)?;
    f.write_all(text.as_bytes()).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_what_wechat_takes() {
        for _ in 0..50 {
            let key = new_encoding_aes_key();
            assert_eq!(key.len(), 43);
            assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()), "{key}");
            // It is the base64 of 32 bytes, as WXBizMsgCrypt reads it.
            wxgate_proto::crypto::MsgCrypt::new("token", &key, "wx1234567890abcdef")
                .expect("a valid EncodingAESKey");
            let token = new_push_token();
            assert_eq!(token.len(), 32);
            assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn secrets_in_env_stay_out_of_the_file() {
        let args = InitArgs {
            out: "x.toml".into(),
            appid: Some("wx1234567890abcdef".into()),
            secret: Some("the-app-secret-0123456789".into()),
            sandbox: false,
            sandbox_url: String::new(),
            public_url: Some("https://wx.example.com".into()),
            listen: "127.0.0.1:18340".into(),
            secrets: SecretsIn::Env,
            force: false,
        };
        let s = starter(&args).unwrap();
        assert!(!s.toml.contains("the-app-secret"));
        assert!(s.toml.contains("{ env = \"WX_DEFAULT_SECRET\" }"));
        assert!(
            !s.toml.contains("WXGATE_"),
            "no name the override layer reads"
        );
        assert!(s
            .instructions
            .contains("export WX_DEFAULT_SECRET=the-app-secret-0123456789"));
        assert!(s.instructions.contains("https://wx.example.com/wx/service"));
        assert!(s
            .instructions
            .contains("网页授权域名 (OAuth domain):           wx.example.com"));
        Config::from_toml_with_env(&s.resolved, Vec::<(String, String)>::new()).unwrap();
    }
}
