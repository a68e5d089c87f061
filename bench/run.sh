#!/usr/bin/env bash
# Benchmarks wxgate against a bare hello-world server (bench/limit) in one run, on this
# machine, over loopback only. Builds in release mode, starts the sandbox and wxgate
# (embedded store, then a Redis store on a local redis-server), warms up, measures with
# wrk, and writes bench/results.md.
#
#   bench/run.sh                    # 10 s per scenario, 64 connections, 2 wrk threads
#   DURATION=5 CONNECTIONS=32 bench/run.sh
#   FLOOD=1100000 RATE=5000 SUSTAIN=600 bench/run.sh   # the memory runs' sizes (defaults)
#   PAIRS=5 bench/run.sh            # paired rounds of the limit, the floor and a safe push (the default)
#
# Per scenario: requests/s (and as a ratio to the limit's), p50 and p99 latency, the
# server's CPU time per request (utime+stime from /proc/PID/stat, before and after, over
# the requests wrk completed), errors; and each server's peak RSS (VmHWM). Then, each on
# a fresh gateway, the memory a remembered push costs: a flood of FLOOD distinct pushes
# (plaintext, then safe mode) with the RSS before and after, and a sustained RATE
# pushes/s for SUSTAIN seconds with the RSS every 30 s (bench/src/bin/pushflood.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wxgate-target}"
DURATION="${DURATION:-10}"
FLOOD="${FLOOD:-1100000}"
RATE="${RATE:-5000}"
SUSTAIN="${SUSTAIN:-600}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
PAIRS="${PAIRS:-5}"

. "$root/bench/common.sh"
need_wrk

cargo build --release -q -p wxgate -p wxgate-bench
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

sb_port=$(free_port); gw_port=$(free_port); limit_port=$(free_port); floor_port=$(free_port)
write_configs "$sb_port" "$gw_port"

"$bin/wxgate" sandbox --config "$work/sandbox.toml" > "$work/sandbox.log" 2>&1 & pids+=($!)
wait_port "$sb_port"
"$bin/wxgate" serve --config "$work/wxgate.toml" > "$work/wxgate.log" 2>&1 & gw_pid=$!; pids+=($gw_pid)
"$bin/limit" "127.0.0.1:$limit_port" > /dev/null 2>&1 & limit_pid=$!; pids+=($limit_pid)
"$bin/floor" "127.0.0.1:$floor_port" > /dev/null 2>&1 & floor_pid=$!; pids+=($floor_pid)
wait_port "$gw_port"; wait_port "$limit_port"; wait_port "$floor_port"

page="http%3A%2F%2F127.0.0.1%3A$gw_port%2Fbench.html"
config_url="http://127.0.0.1:$gw_port/wx/config?url=$page"
verify_url=$(python3 - "$token" <<'PY'
import hashlib, sys
token, ts, nonce = sys.argv[1], "1700000000", "123456"
sig = hashlib.sha1("".join(sorted([token, ts, nonce])).encode()).hexdigest()
print(f"signature={sig}&timestamp={ts}&nonce={nonce}&echostr=4375120948345356249")
PY
)
verify_url="http://127.0.0.1:$gw_port/wx/service?$verify_url"
token_url="http://127.0.0.1:$gw_port/api/v1/default/token"

# Warm up: the ticket and token in memory, connections and caches hot.
curl -fsS "$config_url" > /dev/null
curl -fsS -H "Authorization: Bearer $api_key" "$token_url" > /dev/null
curl -fsS "$verify_url" > /dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$config_url" > /dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "http://127.0.0.1:$limit_port/" > /dev/null

# Enough distinct pushes that none repeats within the run.
pushes=$(( DURATION * 70000 ))
"$bin/pushgen" "$work/pushes.txt" "$pushes" "$token" "$aes_key" "$appid" hello
one=$(head -1 "$work/pushes.txt")
curl -fsS -X POST --data-binary "${one#*$'\t'}" "http://127.0.0.1:$gw_port${one%%$'\t'*}" | grep -q "<Encrypt>" \
  || { echo "the push endpoint does not answer an encrypted reply" >&2; exit 1; }
curl -fsS -X POST --data-binary "${one#*$'\t'}" "http://127.0.0.1:$limit_port${one%%$'\t'*}" | grep -q "<Encrypt>" \
  || { echo "the limit's push-shaped route does not answer an encrypted reply" >&2; exit 1; }
curl -fsS -X POST --data-binary "${one#*$'\t'}" "http://127.0.0.1:$floor_port${one%%$'\t'*}" | grep -q "<Encrypt>" \
  || { echo "the floor does not answer an encrypted reply" >&2; exit 1; }
sed -i 1d "$work/pushes.txt"

clk=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
to_ms() { # wrk latency like 1.23ms / 456.00us / 1.02s
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}

declare -A RPS P50 P99 CPU ERR TOTAL
measure() { # name pid url [wrk args...]
  local name=$1 pid=$2 url=$3; shift 3
  local before after out
  before=$(ticks "$pid")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url" "$@")
  after=$(ticks "$pid")
  local total rps p50 p99 non2xx sockerr
  total=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
  p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")
  p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  sockerr=$(echo "$out" | awk -F'[ ,]+' '/Socket errors/ {print $4+$6+$8+$10}')
  RPS[$name]=$rps; P50[$name]=$p50; P99[$name]=$p99; TOTAL[$name]=$total
  CPU[$name]=$(awk -v a="$after" -v b="$before" -v t="$total" -v c="$clk" 'BEGIN { printf "%.1f", (a - b) / c / t * 1e6 }')
  ERR[$name]=$(( ${non2xx:-0} + ${sockerr:-0} ))
  printf '%-14s %10s req/s  p50 %8s ms  p99 %8s ms  cpu %7s us/req  errors %s\n' \
    "$name" "$rps" "${P50[$name]}" "${P99[$name]}" "${CPU[$name]}" "${ERR[$name]}" >&2
}

rss() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
measure limit "$limit_pid" "http://127.0.0.1:$limit_port/"
measure config "$gw_pid" "$config_url"
measure verify "$gw_pid" "$verify_url"
measure token "$gw_pid" "$token_url" -H "Authorization: Bearer $api_key"
# The WeChat-compatible API: the token endpoint an SDK calls, and one forwarded call
# (the cheapest authenticated WeChat call, answered by the sandbox).
compat_token_url="http://127.0.0.1:$gw_port/cgi-bin/token?grant_type=client_credential&appid=$appid&secret=$compat_secret"
central=$(curl -fsS "$compat_token_url" | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
measure compat_token "$gw_pid" "$compat_token_url"
measure compat_forward "$gw_pid" "http://127.0.0.1:$gw_port/cgi-bin/get_api_domain_ip?access_token=$central"
# Peak RSS before the push flood: the server itself. The flood then keeps every distinct
# push's dedup answer in memory until its timestamp leaves the window, by design.
gw_rss_before_push=$(rss "$gw_pid")
measure push_safe "$gw_pid" "http://127.0.0.1:$gw_port/" -s "$root/bench/push.lua" -- "$work/pushes.txt" "$THREADS"
pushed=$(awk -v r="${RPS[push_safe]}" -v d="$DURATION" 'BEGIN { printf "%d", r * d }')
# The same requests to the limit, which reads each and answers a fixed reply of the size
# wxgate's (bench/src/limit.rs): what a push's shape costs before wxgate's own work.
measure push_shape "$limit_pid" "http://127.0.0.1:$limit_port/" -s "$root/bench/push.lua" -- "$work/pushes.txt" "$THREADS"
# And to the floor, the limit doing WeChat's part of each push (signatures, decryption,
# parsing, the reply encrypted and signed) with wxgate-proto and nothing else, on
# wxgate's allocator; it stays up for the paired rounds.
measure push_floor "$floor_pid" "http://127.0.0.1:$floor_port/" -s "$root/bench/push.lua" -- "$work/pushes.txt" "$THREADS"
# The limit and the safe push again with one worker thread each (TOKIO_WORKER_THREADS=1,
# which both runtimes read), on a fresh gateway: wrk takes one of the two cores, and two
# workers moving a push's larger working set between cores cost it more than the limit.
one_port=$(free_port); limit1_port=$(free_port); mkdir -p "$work/one"
sed -e "s#127.0.0.1:$gw_port#127.0.0.1:$one_port#g" -e "s#data_dir = .*#data_dir = \"$work/one\"#" "$work/wxgate.toml" > "$work/one.toml"
TOKIO_WORKER_THREADS=1 "$bin/wxgate" serve --config "$work/one.toml" > "$work/one.log" 2>&1 & one_pid=$!; pids+=($one_pid)
TOKIO_WORKER_THREADS=1 "$bin/limit" "127.0.0.1:$limit1_port" > /dev/null 2>&1 & limit1_pid=$!; pids+=($limit1_pid)
wait_port "$one_port"; wait_port "$limit1_port"
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "http://127.0.0.1:$limit1_port/" > /dev/null
measure limit_1w "$limit1_pid" "http://127.0.0.1:$limit1_port/"
measure push_safe_1w "$one_pid" "http://127.0.0.1:$one_port/" -s "$root/bench/push.lua" -- "$work/pushes.txt" "$THREADS"
kill "$one_pid" "$limit1_pid"; wait "$one_pid" "$limit1_pid" 2>/dev/null || true
gw_rss=$(rss "$gw_pid"); limit_rss=$(rss "$limit_pid")
ratio() { awk -v a="${RPS[$1]}" -v b="${RPS[limit]}" 'BEGIN { printf "%.2f", a / b }'; }
# CPU per request of scenario $1 over scenario $2's; and $1 times scenario $2's.
cpu_ratio() { awk -v a="${CPU[$1]}" -v b="${CPU[$2]}" 'BEGIN { printf "%.2f", a / b }'; }
cpu_times() { awk -v f="$1" -v c="${CPU[$2]}" 'BEGIN { printf "%.1f", f * c }'; }

# The same scenarios on the Redis store (one node on loopback, nothing saved to disk), on
# a fresh gateway. Round trips a push: wxgate's own count of Redis commands (each one
# request and one answer; a script is one), and Redis's count of the commands clients
# sent (EVALSHA/EVAL for the claim, PSETEX for the answer, GET for a retry's answer).
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no > "$work/redis.log" 2>&1 & redis_pid=$!; pids+=($redis_pid)
wait_port "$redis_port"
rgw_port=$(free_port); mkdir -p "$work/redis-gw"
sed -e "s#127.0.0.1:$gw_port#127.0.0.1:$rgw_port#g" -e "s#data_dir = .*#data_dir = \"$work/redis-gw\"#" "$work/wxgate.toml" > "$work/redis-gw.toml"
printf '[store]\nkind = "redis"\nredis_url = "redis://127.0.0.1:%s/0"\n' "$redis_port" >> "$work/redis-gw.toml"
"$bin/wxgate" serve --config "$work/redis-gw.toml" > "$work/redis-gw.log" 2>&1 & rgw_pid=$!; pids+=($rgw_pid)
wait_port "$rgw_port"
rconfig_url="http://127.0.0.1:$rgw_port/wx/config?url=$page"
curl -fsS "$rconfig_url" > /dev/null
curl -fsS -H "Authorization: Bearer $api_key" "http://127.0.0.1:$rgw_port/api/v1/default/token" > /dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$rconfig_url" > /dev/null
measure redis_config "$rgw_pid" "$rconfig_url"
measure redis_token "$rgw_pid" "http://127.0.0.1:$rgw_port/api/v1/default/token" -H "Authorization: Bearer $api_key"
store_commands() { curl -fsS "http://127.0.0.1:$rgw_port/metrics" | awk '/^wxgate_store_commands_total/ {s += $2} END {printf "%d", s}'; }
# Only commands a client sends: the claim script's own GET and SET count under cmdstat_get
# and cmdstat_set, so those are left out (wxgate sends GET only for a retry's answer).
client_commands() { redis-cli -p "$redis_port" info commandstats | tr -d '\r' | awk -F'[:=,]' '/^cmdstat_(evalsha|eval|psetex|script):/ {s += $3} END {printf "%d", s}'; }
wx_before=$(store_commands); rd_before=$(client_commands)
# The pushes are the ones the embedded run sent: new to this store, still in their window.
measure redis_push_safe "$rgw_pid" "http://127.0.0.1:$rgw_port/" -s "$root/bench/push.lua" -- "$work/pushes.txt" "$THREADS"
wx_after=$(store_commands); rd_after=$(client_commands)
redis_pushes=${TOTAL[redis_push_safe]}
RT_WX=$(awk -v a="$wx_after" -v b="$wx_before" -v n="$redis_pushes" 'BEGIN { printf "%.2f", (a - b) / n }')
RT_REDIS=$(awk -v a="$rd_after" -v b="$rd_before" -v n="$redis_pushes" 'BEGIN { printf "%.2f", (a - b) / n }')
echo "redis round trips a push: $RT_WX (wxgate's count), $RT_REDIS (redis's count)" >&2
redis_gw_rss=$(rss "$rgw_pid")
kill "$rgw_pid" "$redis_pid"; wait "$rgw_pid" "$redis_pid" 2>/dev/null || true

# The memory runs: each on a fresh gateway (its own port and data dir), so that nothing
# remembered before is counted.
fresh_gateway() { # starts one; sets fresh_port and fresh_pid
  fresh_port=$(free_port)
  mkdir -p "$work/fresh-$fresh_port"
  sed -e "s#127.0.0.1:$gw_port#127.0.0.1:$fresh_port#g" -e "s#data_dir = .*#data_dir = \"$work/fresh-$fresh_port\"#" \
    "$work/wxgate.toml" > "$work/fresh-$fresh_port.toml"
  "$bin/wxgate" serve --config "$work/fresh-$fresh_port.toml" > "$work/fresh-$fresh_port.log" 2>&1 &
  fresh_pid=$!; pids+=($fresh_pid)
  wait_port "$fresh_port"
}
# The safe push's ratio to the limit in PAIRS paired rounds: the limit, the floor, then
# a safe push on a fresh gateway, right after each other. This VM's noise moves the
# limit itself by a quarter from one minute to the next (7.6 to 11.8 µs seen in one
# hour), more than the target's margin, and a round shares its minute. The median round
# is the issue's figure; the floor's own median says what the protocol alone costs
# against the same limits.
pair_ratios=(); floor_ratios=(); over_floor=()
for i in $(seq "$PAIRS"); do
  # New pushes each round (the first file's timestamps leave the window as the run goes
  # on), and a warm-up with others, so that the fresh gateway's first second is not
  # measured and no measured push is a retry of a warm-up one.
  "$bin/pushgen" "$work/pair.txt" "$pushes" "$token" "$aes_key" "$appid" hello
  "$bin/pushgen" "$work/warm.txt" 100000 "$token" "$aes_key" "$appid" hello
  measure "limit_pair$i" "$limit_pid" "http://127.0.0.1:$limit_port/"
  measure "floor_pair$i" "$floor_pid" "http://127.0.0.1:$floor_port/" -s "$root/bench/push.lua" -- "$work/pair.txt" "$THREADS"
  fresh_gateway
  wrk -t"$THREADS" -c"$CONNECTIONS" -d1s "http://127.0.0.1:$fresh_port/" -s "$root/bench/push.lua" -- "$work/warm.txt" "$THREADS" > /dev/null
  measure "push_pair$i" "$fresh_pid" "http://127.0.0.1:$fresh_port/" -s "$root/bench/push.lua" -- "$work/pair.txt" "$THREADS"
  kill "$fresh_pid"; wait "$fresh_pid" 2>/dev/null || true
  pair_ratios+=("$(cpu_ratio "push_pair$i" "limit_pair$i")")
  floor_ratios+=("$(cpu_ratio "floor_pair$i" "limit_pair$i")")
  over_floor+=("$(cpu_ratio "push_pair$i" "floor_pair$i")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
pair_median=$(median "${pair_ratios[@]}")
floor_median=$(median "${floor_ratios[@]}")
over_floor_median=$(median "${over_floor[@]}")
pair_rows=""
for i in $(seq "$PAIRS"); do
  j=$((i - 1))
  pair_rows+="| $i | ${CPU[limit_pair$i]} | ${CPU[floor_pair$i]} | ${CPU[push_pair$i]} | ${floor_ratios[$j]} | ${pair_ratios[$j]} | ${over_floor[$j]} |"$'\n'
done
declare -A PER_PUSH FLOOD_RSS
for mode in plaintext safe; do
  fresh_gateway
  path=/wx/service; [ "$mode" = plaintext ] && path=/wx/plain/service
  out=$("$bin/pushflood" flood "http://127.0.0.1:$fresh_port$path" "$fresh_pid" "$token" "$aes_key" "$appid" "$mode" "$FLOOD" "$CONNECTIONS")
  echo "flood $mode: $out" >&2
  PER_PUSH[$mode]=$(echo "$out" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["bytes_per_push"], 1))')
  FLOOD_RSS[$mode]=$(echo "$out" | python3 -c 'import json,sys; v=json.load(sys.stdin); print("%.1f -> %.1f MiB, %d refused, %d failed" % (v["rss_before"] / 1048576, v["rss_after"] / 1048576, v["refused"], v["failed"]))')
  kill "$fresh_pid"; wait "$fresh_pid" 2>/dev/null || true
done
steady_rows=""; steady_peak=""; steady_summary=""
if [ "$SUSTAIN" -gt 0 ]; then
  fresh_gateway
  "$bin/pushflood" steady "http://127.0.0.1:$fresh_port/wx/service" "$fresh_pid" "$token" "$aes_key" "$appid" safe "$RATE" "$SUSTAIN" 30 > "$work/steady.jsonl"
  steady_rows=$(python3 - "$work/steady.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for r in rows:
    print(f"| {r['t']} | {r['sent']} | {r['ok']} | {r['refused']} | {r['failed']} | {r['rss'] / 1048576:.1f} |")
PY
)
  steady_peak=$(tail -1 "$work/steady.jsonl" | python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["peak_rss"] / 1048576))')
  steady_summary=$(tail -1 "$work/steady.jsonl")
  kill "$fresh_pid"; wait "$fresh_pid" 2>/dev/null || true
fi
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == "<=") ? (v <= t) : (v >= t); print ok ? "met" : "MISSED" }'; }

{
  echo "# wxgate benchmark"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, \`wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s\` over loopback,"
  echo "against \`bench/limit\` (bare axum hello world) measured in the same run. Produced by \`bench/run.sh\`."
  echo
  echo "| scenario | req/s | ratio to limit | p50 ms | p99 ms | server CPU µs/req | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for s in limit config verify token compat_token compat_forward push_safe push_shape push_floor limit_1w push_safe_1w redis_config redis_token redis_push_safe; do
    echo "| $s | ${RPS[$s]} | $(ratio "$s") | ${P50[$s]} | ${P99[$s]} | ${CPU[$s]} | ${ERR[$s]} |"
  done
  echo
  own=$(awk -v p="${CPU[push_safe]}" -v s="${CPU[push_shape]}" 'BEGIN { printf "%.1f", p - s }')
  shape_ratio=$(cpu_ratio push_shape limit)
  echo "\`push_shape\` is the limit answering the push requests themselves with a fixed encrypted reply of"
  echo "the size wxgate answers: a push's HTTP and kernel cost with none of wxgate's work, ${CPU[push_shape]} µs"
  echo "(${shape_ratio} × the limit's). wxgate's own work a safe push is the difference: ${own} µs."
  protocol=$(awk -v f="${CPU[push_floor]}" -v s="${CPU[push_shape]}" 'BEGIN { printf "%.1f", f - s }')
  promises=$(awk -v p="${CPU[push_safe]}" -v f="${CPU[push_floor]}" 'BEGIN { printf "%.1f", p - f }')
  echo "\`push_floor\` is the limit doing WeChat's part of each push with \`wxgate-proto\` and nothing else"
  echo "(${CPU[push_floor]} µs, $(cpu_ratio push_floor limit) × the limit's): of wxgate's own ${own} µs, the protocol is ${protocol}"
  echo "and the rest, ${promises} µs, is what wxgate adds to it (dedup and replay memory, the rule, metrics, logs, limits)."
  one_ratio=$(cpu_ratio push_safe_1w limit_1w)
  echo
  echo "With one worker thread each (\`*_1w\`, \`TOKIO_WORKER_THREADS=1\` for both servers, a fresh gateway):"
  echo "limit ${CPU[limit_1w]} µs, safe push ${CPU[push_safe_1w]} µs, ${one_ratio} × (two workers: $(cpu_ratio push_safe limit) ×)."
  echo "The issue's target is read on the default, two workers each."
  echo
  echo "Paired rounds (the limit, the floor, then a safe push on a fresh gateway, right after"
  echo "each other; the issue's ratio is the median of push / limit, ${pair_median}; the floor's,"
  echo "the protocol alone, ${floor_median}; the push over its floor, ${over_floor_median}):"
  echo
  echo "| round | limit CPU µs/req | push_floor CPU µs/req | push_safe CPU µs/req | floor / limit | push / limit | push / floor |"
  echo "|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s' "$pair_rows"
  echo
  echo "On the Redis store (\`redis_*\`: one local redis-server, a fresh gateway, peak RSS ${redis_gw_rss} MiB):"
  echo "a push took $RT_WX Redis round trips by wxgate's count (\`wxgate_store_commands_total\`) and"
  echo "$RT_REDIS by Redis's (\`INFO commandstats\`: EVALSHA, EVAL, PSETEX and SCRIPT, which only clients send),"
  echo "over ${redis_pushes} pushes. The CPU column is wxgate's only (Redis's own is not counted)."
  echo
  echo "Peak RSS (VmHWM): wxgate ${gw_rss_before_push} MiB after config, verify and token; ${gw_rss} MiB"
  echo "after the push flood (about ${pushed} distinct pushes, each with its nonce held until its"
  echo "timestamp leaves the window and its dedup answer for dedup_ttl); limit ${limit_rss} MiB."
  echo
  echo "| target | measured | |"
  echo "|---|---:|---|"
  echo "| /wx/config ≥ 0.8 of the limit's req/s | $(ratio config) | $(verdict "$(ratio config)" 0.8 '>=') |"
  echo "| safe-mode push ≥ 0.5 of the limit's req/s | $(ratio push_safe) | $(verdict "$(ratio push_safe)" 0.5 '>=') |"
  echo "| /wx/config CPU ≤ 15 µs/req | ${CPU[config]} | $(verdict "${CPU[config]}" 15 '<=') |"
  echo "| safe-mode push CPU ≤ 30 µs/req | ${CPU[push_safe]} | $(verdict "${CPU[push_safe]}" 30 '<=') |"
  two_limits=$(cpu_times 2 limit)
  echo "| safe-mode push CPU ≤ 2 × the limit's, median of $PAIRS paired rounds (ratio) | ${pair_median} | $(verdict "$pair_median" 2 '<=') |"
  echo "| safe-mode push CPU ≤ 2 × the limit's, in the scenario table (${two_limits} µs/req) | ${CPU[push_safe]} | $(verdict "${CPU[push_safe]}" "$two_limits" '<=') |"
  echo "| push_floor (the protocol alone, no gateway) CPU ≤ 2 × the limit's, median of the same rounds (not a target: whether any gateway can meet the one above) | ${floor_median} | $(verdict "$floor_median" 2 '<=') |"
  echo "| safe-mode push CPU ≤ 1.25 × push_floor's, median of the same rounds (not an issue's target: what wxgate adds to the protocol) | ${over_floor_median} | $(verdict "$over_floor_median" 1.25 '<=') |"
  two_shapes=$(cpu_times 2 push_shape)
  two_1w=$(cpu_times 2 limit_1w)
  echo "| safe-mode push CPU ≤ 2 × the limit's, one worker each (${two_1w} µs/req; not the issue's setup, for comparison) | ${CPU[push_safe_1w]} | $(verdict "${CPU[push_safe_1w]}" "$two_1w" '<=') |"
  echo "| safe-mode push CPU ≤ 2 × push_shape's (${two_shapes} µs/req; not an issue's target, for comparison) | ${CPU[push_safe]} | $(verdict "${CPU[push_safe]}" "$two_shapes" '<=') |"
  echo "| a push on Redis ≤ 2 round trips (wxgate's count) | $RT_WX | $(verdict "$RT_WX" 2 '<=') |"
  echo "| a push on Redis ≤ 2 round trips (Redis's count) | $RT_REDIS | $(verdict "$RT_REDIS" 2 '<=') |"
  for m in plaintext safe; do
    echo "| RSS per remembered push ≤ 48 bytes, $m, a flood of $FLOOD | ${PER_PUSH[$m]} | $(verdict "${PER_PUSH[$m]}" 48 '<=') |"
  done
  for s in config verify push_safe token; do
    echo "| $s p99 < 5 ms | ${P99[$s]} | $(verdict "${P99[$s]}" 5 '<=') |"
  done
  # DESIGN.md asks more than the issue: p99 no worse than the limit's in the same run.
  for s in config verify push_safe token; do
    echo "| $s p99 ≤ the limit's ${P99[limit]} ms (DESIGN.md) | ${P99[$s]} | $(verdict "${P99[$s]}" "${P99[limit]}" '<=') |"
  done
  compat_limit=$(cpu_times 1.1 token)
  echo "| compat token CPU ≤ 1.1 × /api/v1 token's (${compat_limit} µs/req) | ${CPU[compat_token]} | $(verdict "${CPU[compat_token]}" "$compat_limit" '<=') |"
  echo "| peak RSS < 32 MiB (issue: 64), before the push flood | ${gw_rss_before_push} | $(verdict "$gw_rss_before_push" 32 '<=') |"
  echo "| peak RSS < 64 MiB, after the push flood | ${gw_rss} | $(verdict "$gw_rss" 64 '<=') |"
  echo
  echo "Memory a remembered push costs (a fresh gateway each, \`pushflood\`, $CONNECTIONS connections):"
  for m in plaintext safe; do
    echo "- flood of $FLOOD distinct $m pushes: ${FLOOD_RSS[$m]}; ${PER_PUSH[$m]} bytes a push."
  done
  if [ -n "$steady_rows" ]; then
    echo
    echo "Sustained: $RATE safe-mode pushes/s for $SUSTAIN s, RSS every 30 s (a push is remembered"
    echo "300 s, so RSS should level off after about 310 s). Peak RSS $steady_peak MiB. Summary: \`$steady_summary\`"
    echo
    echo "| s | sent | ok | refused | failed | RSS MiB |"
    echo "|---:|---:|---:|---:|---:|---:|"
    echo "$steady_rows"
  fi
  echo
  echo "scenarios: \`config\` GET /wx/config (warm ticket); \`verify\` GET /wx/service URL verification;"
  echo "\`push_safe\` POST /wx/service, safe mode, a distinct signed and encrypted text push per request"
  echo "(decrypt, parse, dedup, replay checks, keyword rule, reply, encrypt); \`token\` GET /api/v1/default/token;"
  echo "\`compat_token\` GET /cgi-bin/token (the WeChat-compatible API, a client secret); \`compat_forward\`"
  echo "GET /cgi-bin/get_api_domain_ip forwarded to the sandbox with the central token (the sandbox's CPU not counted)."
  echo "\`push_shape\` POST /wx/service to the limit with push_safe's requests (its CPU is the limit's)."
  echo "\`push_floor\` the same requests to \`bench/floor\` (the limit on wxgate's allocator, jemalloc): signatures, decryption, parsing, reply, encryption (wxgate-proto), no memory."
  echo "\`limit_1w\`, \`push_safe_1w\` as \`limit\` and \`push_safe\` with TOKIO_WORKER_THREADS=1 (push_safe_1w on a fresh gateway)."
} > "$root/bench/results.md"
cat "$root/bench/results.md"

# Many accounts (time to ready, RSS per account, an account's CPU with 10 vs 10,000).
cleanup
trap - EXIT
DURATION="$DURATION" CONNECTIONS="$CONNECTIONS" THREADS="$THREADS" "$root/bench/accounts.sh"
# The hot lane against the router (bench/lane.sh, PAIRS paired rounds; writes
# bench/lane-results.md), appended to this run's results.
PAIRS="$PAIRS" DURATION="$DURATION" CONNECTIONS="$CONNECTIONS" THREADS="$THREADS" "$root/bench/lane.sh" > /dev/null
{ echo; sed -e '1s/^# /## /' "$root/bench/lane-results.md"; } >> "$root/bench/results.md"
