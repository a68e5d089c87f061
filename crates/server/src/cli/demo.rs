//! `wxgate demo`: the sandbox and a gateway wired to it on an embedded store in a
//! temporary directory, with the demo pages on. Prints the URLs and serves until stopped.

use clap::Args;
use wxgate_sandbox::{Sandbox, SandboxConfig};

use super::Failure;
use crate::clock::Clock;
use crate::config::Config;
use crate::gateway;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The gateway's port.
    #[arg(long, default_value_t = 18340)]
    pub port: u16,
    /// The sandbox's port.
    #[arg(long, default_value_t = 18341)]
    pub sandbox_port: u16,
    /// The host both listen on and pages use.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The console's admin key (a random one, printed, when absent).
    #[arg(long)]
    pub console_key: Option<String>,
}

/// The gateway configuration `wxgate demo` runs (printed with `--print-config` style use
/// in tests): the sandbox's apps, rules to push against, the demo pages.
pub fn demo_config(
    host: &str,
    port: u16,
    sandbox_url: &str,
    data_dir: &std::path::Path,
    auth_secret: &str,
    api_key: &str,
    console_key: &str,
) -> String {
    format!(
        r#"
listen = "{host}:{port}"
public_url = "http://{host}:{port}"
data_dir = "{data}"

[upstream]
api_base = "{sandbox_url}"
open_base = "{sandbox_url}"
pay_base = "{sandbox_url}"
mp_base = "{sandbox_url}"

[auth]
secret = "{auth_secret}"

[demo]
enabled = true
sandbox_url = "{sandbox_url}"
mini_openid = "oMiniUser00000000000000001"

[console]
enabled = true
admin_key = "{console_key}"
heartbeat_secs = 2

[[api.keys]]
name = "demo"
key = "{api_key}"

[accounts.default]
kind = "official"
appid = "wxsandbox0000001"
secret = "sandbox-secret-official-0001"
token = "sandboxtoken"
encoding_aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
mode = "safe"
auth_dest_hosts = ["http://{host}:{port}", "http://localhost:{port}", "http://127.0.0.1:{port}"]
cors_origins = ["http://{host}:{port}"]

[[accounts.default.rules]]
event = "subscribe"
reply = {{ type = "text", content = "Welcome to the wxgate demo!" }}

[[accounts.default.rules]]
keyword = "hello"
reply = {{ type = "text", content = "Hello {{openid}}, you said {{content}}" }}

[[accounts.default.rules]]
keyword = "news"
reply = {{ type = "news", articles = [{{ title = "wxgate", description = "WeChat plumbing, done once", url = "http://{host}:{port}/demo/" }}] }}

[accounts.mini]
kind = "miniprogram"
appid = "wxsandboxmini001"
secret = "sandbox-secret-miniapp-0001"

# The sandbox's WeChat Pay merchant, with the sandbox's public keys; the platform
# certificate is downloaded from the sandbox on the first notification.
[pay.demo]
mchid = "1900000001"
apiv3_key = "wxgateSandboxApiV3Key00000000001"
private_key = """{merchant_key}"""
merchant_serial = "{merchant_serial}"
fetch_certificates = true

[pay.demo.webhook]
url = "http://{host}:{port}/demo/api/pay/webhook"
secret = "{pay_secret}"

# The sandbox's third-party platform: merchants authorize it, and their fans' pushes are
# answered by its rules.
[components.demo]
component_appid = "wxsandboxcomp001"
component_appsecret = "sandbox-secret-component-0001"
token = "sandboxcomponenttoken"
encoding_aes_key = "SandboxComponentKey0123456789abcdefghijklmn"
auth_dest_hosts = ["http://{host}:{port}", "http://127.0.0.1:{port}", "http://localhost:{port}"]

[[components.demo.rules]]
keyword = "hello"
reply = {{ type = "text", content = "Hello from the platform, on behalf of the merchant" }}
"#,
        data = data_dir.display(),
        merchant_key = wxgate_sandbox::keys::MERCHANT_KEY,
        merchant_serial = wxgate_sandbox::keys::MERCHANT_SERIAL,
        pay_secret = auth_secret,
    )
}

pub async fn run(args: DemoArgs) -> Result<(), Failure> {
    super::ops::init_logging(crate::config::LogFormat::Text);
    let mut sandbox_config = SandboxConfig::example();
    sandbox_config.listen = format!("{}:{}", args.host, args.sandbox_port);
    let sandbox = Sandbox::start(sandbox_config).await.map_err(|e| {
        Failure::new(format!(
            "sandbox cannot listen on {}:{}: {e}",
            args.host, args.sandbox_port
        ))
    })?;
    let data_dir = std::env::temp_dir().join(format!("wxgate-demo-{}", std::process::id()));
    let auth_secret = wxgate_proto::jssdk::nonce_str(32);
    let api_key = format!("demo-{}", wxgate_proto::jssdk::nonce_str(24));
    let console_key = args
        .console_key
        .clone()
        .unwrap_or_else(|| wxgate_proto::jssdk::nonce_str(24));
    let text = demo_config(
        &args.host,
        args.port,
        &sandbox.base_url(),
        &data_dir,
        &auth_secret,
        &api_key,
        &console_key,
    );
    let config = Config::from_toml_with_env(&text, std::env::vars())
        .map_err(|e| Failure::new(e.to_string()))?;
    let running = gateway::start(config, Clock::system())
        .await
        .map_err(|e| Failure::new(e.to_string()))?;
    let g = running.url();
    // The open platform pushes its ticket and events to this gateway.
    let _ = sandbox
        .platform
        .set_event_url("wxsandboxcomp001", &format!("{g}/wx/component/demo/event"));
    println!("wxgate demo is running (Ctrl-C to stop)");
    println!("  gateway   {g}");
    println!("  sandbox   {}", sandbox.base_url());
    println!("  JS-SDK    {g}/demo/jssdk.html");
    println!("  OAuth     {g}/demo/oauth.html");
    println!("  chat      {g}/demo/chat.html");
    println!("  Mini Program {g}/demo/miniprogram.html");
    println!("  WeChat Pay {g}/demo/pay.html");
    println!("  third-party platform {g}/demo/component.html");
    println!("  console   {g}/console   (admin key {console_key})");
    println!("  API key   {api_key}");
    println!("  token     curl -H 'Authorization: Bearer {api_key}' {g}/api/v1/default/token");
    println!(
        "  push      wxgate sandbox push --url {g}/wx/service --mode safe --kind text --text hello"
    );
    println!("  data      {}", data_dir.display());
    let _ = tokio::signal::ctrl_c().await;
    running.stop().await;
    drop(sandbox);
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(())
}
