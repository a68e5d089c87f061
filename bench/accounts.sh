#!/usr/bin/env bash
# Many accounts in one gateway (issue 31), over loopback only, against the release build:
#
# - time to ready: a cold start on an empty store until every account holds a token,
#   for 1,000 and 10,000 accounts, with the sandbox answering stable_token in 50 ms;
# - RSS per account: the 10,000-account gateway with every token held, against a
#   10-account one, per account;
# - `/wx/{account}/config` CPU per request (utime+stime over wrk's requests) with 10
#   and with 10,000 accounts: an account's requests should not pay for the others.
#
#   bench/accounts.sh                         # writes bench/accounts-results.md
#   SIZES="1000 10000" DURATION=10 bench/accounts.sh
# bench/run.sh runs it at its end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wxgate-target}"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
LATENCY_MS="${LATENCY_MS:-50}"
OUT="${OUT:-$root/bench/accounts-results.md}"

. "$root/bench/common.sh"
need_wrk

cargo build --release -q -p wxgate
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# The sandbox: 10,000 Official Accounts (wxacct0000000000 ...).
sb_port=$(free_port)
python3 - "$work/sandbox.toml" "$sb_port" <<'PY'
import sys
path, port = sys.argv[1], sys.argv[2]
with open(path, "w") as f:
    f.write(f'listen = "127.0.0.1:{port}"\n[limits]\nstable_minute_quota = 1000000\nstable_daily_quota = 10000000\n')
    for i in range(10000):
        f.write(f'[[app]]\nappid = "wxacct{i:010d}"\nsecret = "acct-secret-{i:05d}"\n')
PY
"$bin/wxgate" sandbox --config "$work/sandbox.toml" > "$work/sandbox.log" 2>&1 & pids+=($!)
wait_port "$sb_port"
curl -fsS -X POST -H 'content-type: application/json' \
  -d "{\"path\":\"/cgi-bin/stable_token\",\"kind\":\"latency\",\"ms\":$LATENCY_MS}" \
  "http://127.0.0.1:$sb_port/admin/faults" > /dev/null

# gateway N: starts a gateway of N accounts on an empty store; sets gw_port and gw_pid.
gateway() {
  local n=$1
  gw_port=$(free_port)
  mkdir -p "$work/data-$n"
  python3 - "$work/wxgate-$n.toml" "$gw_port" "$sb_port" "$work/data-$n" "$n" <<'PY'
import sys
path, port, sb, data, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
with open(path, "w") as f:
    f.write(f'listen = "127.0.0.1:{port}"\ndata_dir = "{data}"\n[metrics]\nper_account_labels = false\n')
    f.write(f'[upstream]\napi_base = "http://127.0.0.1:{sb}"\nopen_base = "http://127.0.0.1:{sb}"\n')
    f.write('[credentials]\ncheck_interval_ms = 500\n[rate_limit]\nenabled = false\n')
    for i in range(n):
        f.write(f'[accounts.a{i}]\nappid = "wxacct{i:010d}"\nsecret = "acct-secret-{i:05d}"\n')
PY
  "$bin/wxgate" serve --config "$work/wxgate-$n.toml" > "$work/wxgate-$n.log" 2>&1 & gw_pid=$!; pids+=($gw_pid)
}

# ready N: starts a gateway of N accounts and sets ready_secs to the seconds from its
# start until /readyz names no failing account (not a subshell: gw_pid must survive).
ready() {
  local n=$1 start
  start=$(date +%s.%N)
  gateway "$n"
  wait_port "$gw_port"
  ready_secs=never
  for _ in $(seq 1 1200); do
    if curl -fsS "http://127.0.0.1:$gw_port/readyz" | python3 -c 'import json,sys; sys.exit(0 if not json.load(sys.stdin)["failing"] else 1)'; then
      ready_secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
      return
    fi
    sleep 0.1
  done
}

# config_cpu: µs of CPU per /wx/a5/config request on the gateway in gw_pid/gw_port.
config_cpu() {
  local url="http://127.0.0.1:$gw_port/wx/a5/config?url=http%3A%2F%2F127.0.0.1%2Fbench.html"
  curl -fsS "$url" > /dev/null
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$url" > /dev/null
  local before after out reqs
  before=$(ticks "$gw_pid")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "$url")
  after=$(ticks "$gw_pid")
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  awk -v t=$((after - before)) -v r="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz * 1e6 / r }'
}

ready 1000; ready_1k=$ready_secs
kill "$gw_pid"
ready 10000; ready_10k=$ready_secs; pid_10k=$gw_pid; port_10k=$gw_port
rss_10k=$(rss_kib "$pid_10k")
# The 10-account gateway, for the RSS and CPU baselines (tokens held).
ready 10; pid_10=$gw_pid; port_10=$gw_port
rss_10=$(rss_kib "$pid_10")
per_account=$(awk -v a="$rss_10k" -v b="$rss_10" 'BEGIN { printf "%.0f", (a - b) * 1024 / 9990 }')
# Paired rounds, both gateways up: this VM's noise moves one run by more than the
# difference sought. The median of the rounds' ratios is the figure.
ratios=(); cpus_10=(); cpus_10k=()
for _ in $(seq 1 "${PAIRS:-5}"); do
  gw_pid=$pid_10; gw_port=$port_10; c10=$(config_cpu)
  gw_pid=$pid_10k; gw_port=$port_10k; c10k=$(config_cpu)
  cpus_10+=("$c10"); cpus_10k+=("$c10k")
  ratios+=("$(awk -v a="$c10k" -v b="$c10" 'BEGIN { printf "%.3f", a / b }')")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
cpu_10=$(median "${cpus_10[@]}"); cpu_10k=$(median "${cpus_10k[@]}")
cpu_ratio=$(median "${ratios[@]}")

{
  echo "# Many accounts (bench/accounts.sh)"
  echo
  echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on this machine ($(nproc) cores), the sandbox answering"
  echo "\`stable_token\` in ${LATENCY_MS} ms, \`credentials.max_concurrent_refreshes\` at its default (16), an"
  echo "embedded store, \`per_account_labels = false\`. wrk: ${THREADS} threads, ${CONNECTIONS} connections, ${DURATION} s."
  echo
  echo "| row | value |"
  echo "|---|---:|"
  echo "| time to ready, 1,000 accounts (cold start, empty store; every account holding a token) | ${ready_1k} s |"
  echo "| time to ready, 10,000 accounts | ${ready_10k} s |"
  echo "| RSS, 10 accounts | $(awk -v k="$rss_10" 'BEGIN { printf "%.1f", k / 1024 }') MiB |"
  echo "| RSS, 10,000 accounts, tokens held | $(awk -v k="$rss_10k" 'BEGIN { printf "%.1f", k / 1024 }') MiB |"
  echo "| RSS per account | ${per_account} B |"
  echo "| \`/wx/a5/config\` CPU per request, 10 accounts (median of ${PAIRS:-5} rounds) | ${cpu_10} µs |"
  echo "| \`/wx/a5/config\` CPU per request, 10,000 accounts (median) | ${cpu_10k} µs |"
  echo "| ratio, median of the paired rounds (target: within 10%) | ${cpu_ratio} |"
  echo "| the rounds' ratios | ${ratios[*]} |"
} > "$OUT"
cat "$OUT"
