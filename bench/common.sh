# Shared by bench/run.sh and bench/profile.sh (sourced; expects $work): loopback port
# helpers, the bench account's settings, and the sandbox and gateway config files.

# Installs wrk from Debian when it is missing.
need_wrk() {
  command -v wrk >/dev/null 2>&1 && return 0
  echo "installing wrk (Debian)" >&2
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Up to 30 s: a gateway under valgrind starts slowly.
wait_port() { for _ in $(seq 1 600); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

token=benchtoken
aes_key=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG
appid=wxsandbox0000001
api_key=bench-api-key-0123456789
compat_secret=bench-compat-secret-0123

# write_configs SANDBOX_PORT GATEWAY_PORT: $work/sandbox.toml and $work/wxgate.toml.
write_configs() {
  local sb_port=$1 gw_port=$2
  cat > "$work/sandbox.toml" <<TOML
listen = "127.0.0.1:$sb_port"
[[app]]
appid = "$appid"
secret = "bench-secret"
original_id = "gh_sandbox00001"
token = "$token"
encoding_aes_key = "$aes_key"
[[app.user]]
openid = "oSandboxUser000000000000001"
nickname = "Band"
TOML

  cat > "$work/wxgate.toml" <<TOML
listen = "127.0.0.1:$gw_port"
public_url = "http://127.0.0.1:$gw_port"
data_dir = "$work/data"
[upstream]
api_base = "http://127.0.0.1:$sb_port"
open_base = "http://127.0.0.1:$sb_port"
[[api.keys]]
name = "bench"
key = "$api_key"
# Off, as in every earlier run, so the figures compare (a valid compat client is never
# limited anyway; the anonymous routes' limits would refuse wrk's rate).
[rate_limit]
enabled = false
# The memory floods remember more than the default ceiling (1,000,000 pushes).
[service]
max_remembered_pushes = 4000000
[compat]
enabled = true
[[compat.clients]]
name = "bench"
secret = "$compat_secret"
appids = ["$appid"]
[accounts.default]
appid = "$appid"
secret = "bench-secret"
token = "$token"
encoding_aes_key = "$aes_key"
mode = "safe"
[[accounts.default.rules]]
keyword = "hello"
reply = { type = "text", content = "Hello from wxgate" }
# The same account's pushes in plaintext mode, for the memory flood: /wx/plain/service.
[accounts.plain]
appid = "$appid"
secret = "bench-secret"
token = "$token"
encoding_aes_key = "$aes_key"
mode = "plaintext"
[[accounts.plain.rules]]
keyword = "hello"
reply = { type = "text", content = "Hello from wxgate" }
TOML
}
