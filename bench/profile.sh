#!/usr/bin/env bash
# Counts instructions per request with callgrind (deterministic, unlike wall time on a
# shared VM). Needs a release build with line tables:
#   CARGO_TARGET_DIR=/work/target-prof CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
#     cargo build --release -p wxgate -p wxgate-bench
#   PROF_TARGET=/work/target-prof bench/profile.sh push 2000
# Scenarios: push, config, healthz, limit. Loopback only; N requests, one connection.
# Then: callgrind_annotate --inclusive=yes bench/cg.SCENARIO.out.1
set -euo pipefail
scen=$1; N=${2:-2000}
here="$(cd "$(dirname "$0")" && pwd)"
bin="${PROF_TARGET:-${CARGO_TARGET_DIR:-$HOME/.cache/wxgate-target}}/release"
out="${PROF_OUT:-$here}"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 600); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
sb_port=$(free_port); gw_port=$(free_port)
token=benchtoken; aes_key=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG; appid=wxsandbox0000001
cat > "$work/sandbox.toml" <<TOML
listen = "127.0.0.1:$sb_port"
[[app]]
appid = "$appid"
secret = "bench-secret"
original_id = "gh_sandbox00001"
token = "$token"
encoding_aes_key = "$aes_key"
TOML
cat > "$work/wxgate.toml" <<TOML
listen = "127.0.0.1:$gw_port"
public_url = "http://127.0.0.1:$gw_port"
data_dir = "$work/data"
[upstream]
api_base = "http://127.0.0.1:$sb_port"
open_base = "http://127.0.0.1:$sb_port"
[accounts.default]
appid = "$appid"
secret = "bench-secret"
token = "$token"
encoding_aes_key = "$aes_key"
mode = "safe"
[[accounts.default.rules]]
keyword = "hello"
reply = { type = "text", content = "Hello from wxgate" }
TOML
"$bin/wxgate" sandbox --config "$work/sandbox.toml" > "$work/sandbox.log" 2>&1 & pids+=($!)
wait_port "$sb_port"
if [ "$scen" = limit ]; then
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$out/cg.$scen.out "$bin/limit" "127.0.0.1:$gw_port" > "$work/gw.log" 2>&1 & pids+=($!)
else
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$out/cg.$scen.out "$bin/wxgate" serve --config "$work/wxgate.toml" > "$work/gw.log" 2>&1 & pids+=($!)
fi
vpid=$!
wait_port "$gw_port"
"$bin/pushgen" "$work/pushes.txt" $((N+200)) "$token" "$aes_key" "$appid" hello
python3 "$here/profile_drive.py" "$scen" "$gw_port" "$work/pushes.txt" 200 > /dev/null
callgrind_control -i on $vpid >/dev/null
python3 "$here/profile_drive.py" "$scen" "$gw_port" "$work/pushes.txt" $N 200
callgrind_control -d $vpid >/dev/null
callgrind_control -i off $vpid >/dev/null
sleep 1
f=$(ls -t $out/cg.$scen.out* | head -1)
tot=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
echo "$scen: total $tot instr over $N req = $((tot / N)) instr/req ($f)"
