#!/usr/bin/env bash
# The hot lane on trial (http/hot.rs): the same build served twice, `server.hot_lane =
# true` and `false` (the router answers `/wx/config` and `/wx/service`, registered flat),
# measured in PAIRS paired rounds of `/wx/config` and a safe push: the server's CPU time
# per request (utime+stime from /proc/PID/stat over the requests wrk completed), the two
# gateways back to back in each round, the order swapped every round so that the VM's
# drift falls on both. The rounds' median difference decides: the lane stays only if the
# router costs more than 3% and more than 0.5 µs a request. Writes bench/lane-results.md.
#
#   bench/lane.sh                       # 5 rounds of 5 s per scenario and gateway
#   PAIRS=7 DURATION=8 bench/lane.sh
# With valgrind: also callgrind's instructions per request of both (bench/profile.sh),
# which do not move with the VM's noise.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wxgate-target}"
DURATION="${DURATION:-5}"
PAIRS="${PAIRS:-5}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
CALLGRIND_N="${CALLGRIND_N:-2000}"

. "$root/bench/common.sh"
need_wrk
cargo build --release -q -p wxgate -p wxgate-bench
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

sb_port=$(free_port); lane_port=$(free_port); router_port=$(free_port)
write_configs "$sb_port" "$lane_port"
mkdir -p "$work/lane" "$work/router"
sed -e "s#data_dir = .*#data_dir = \"$work/lane\"#" "$work/wxgate.toml" > "$work/lane.toml"
sed -e "s#127.0.0.1:$lane_port#127.0.0.1:$router_port#g" -e "s#data_dir = .*#data_dir = \"$work/router\"#" "$work/wxgate.toml" > "$work/router.toml"
printf '[server]\nhot_lane = false\n' >> "$work/router.toml"

"$bin/wxgate" sandbox --config "$work/sandbox.toml" > "$work/sandbox.log" 2>&1 & pids+=($!)
wait_port "$sb_port"
"$bin/wxgate" serve --config "$work/lane.toml" > "$work/lane.log" 2>&1 & lane_pid=$!; pids+=($lane_pid)
"$bin/wxgate" serve --config "$work/router.toml" > "$work/router.log" 2>&1 & router_pid=$!; pids+=($router_pid)
wait_port "$lane_port"; wait_port "$router_port"

page() { echo "http%3A%2F%2F127.0.0.1%3A$1%2Fbench.html"; }
config_url() { echo "http://127.0.0.1:$1/wx/config?url=$(page "$1")"; }
# Both answer alike before anything is measured.
for port in "$lane_port" "$router_port"; do
  curl -fsS "$(config_url "$port")" | grep -q '"signature"' || { echo "no config from $port" >&2; exit 1; }
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$(config_url "$port")" > /dev/null
done

# Distinct pushes: each gateway has its own memory, so both take the same file.
pushes=$(( DURATION * 40000 ))
"$bin/pushgen" "$work/pushes.txt" "$pushes" "$token" "$aes_key" "$appid" hello
one=$(head -1 "$work/pushes.txt")
for port in "$lane_port" "$router_port"; do
  curl -fsS -X POST --data-binary "${one#*$'\t'}" "http://127.0.0.1:$port${one%%$'\t'*}" | grep -q "<Encrypt>" \
    || { echo "no encrypted reply from $port" >&2; exit 1; }
done
sed -i 1d "$work/pushes.txt"

clk=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A CPU
measure() { # name pid url [wrk args...]
  local name=$1 pid=$2 url=$3; shift 3
  local before after out total
  before=$(ticks "$pid")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "$url" "$@")
  after=$(ticks "$pid")
  total=$(echo "$out" | awk '/requests in/ {print $1}')
  if echo "$out" | grep -q 'Non-2xx'; then echo "$name: non-2xx answers" >&2; exit 1; fi
  CPU[$name]=$(awk -v a="$after" -v b="$before" -v t="$total" -v c="$clk" 'BEGIN { printf "%.2f", (a - b) / c / t * 1e6 }')
  printf '%-16s %8s requests  cpu %6s us/req\n' "$name" "$total" "${CPU[$name]}" >&2
}
scenario() { # which gateway round: measures its config and push
  local who=$1 i=$2 pid port
  if [ "$who" = lane ]; then pid=$lane_pid; port=$lane_port; else pid=$router_pid; port=$router_port; fi
  measure "config_${who}_$i" "$pid" "$(config_url "$port")"
  measure "push_${who}_$i" "$pid" "http://127.0.0.1:$port/" -s "$root/bench/push.lua" -- "$work/pushes.txt" "$THREADS"
}
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

rows=""; declare -a config_diff config_rel push_diff push_rel
for i in $(seq "$PAIRS"); do
  # New pushes each round: a push's timestamp leaves WeChat's window (and wxgate's) as
  # the run goes on. Both gateways take the same file; each has its own memory.
  "$bin/pushgen" "$work/pushes.txt" "$pushes" "$token" "$aes_key" "$appid" hello
  if [ $((i % 2)) -eq 1 ]; then scenario lane "$i"; scenario router "$i"; else scenario router "$i"; scenario lane "$i"; fi
  for s in config push; do
    l=${CPU[${s}_lane_$i]}; r=${CPU[${s}_router_$i]}
    d=$(awk -v r="$r" -v l="$l" 'BEGIN { printf "%.2f", r - l }')
    p=$(awk -v r="$r" -v l="$l" 'BEGIN { printf "%.1f", (r / l - 1) * 100 }')
    if [ "$s" = config ]; then config_diff+=("$d"); config_rel+=("$p"); else push_diff+=("$d"); push_rel+=("$p"); fi
  done
  rows+="| $i | ${CPU[config_lane_$i]} | ${CPU[config_router_$i]} | ${CPU[push_lane_$i]} | ${CPU[push_router_$i]} |"$'\n'
done
cd_med=$(median "${config_diff[@]}"); cr_med=$(median "${config_rel[@]}")
pd_med=$(median "${push_diff[@]}"); pr_med=$(median "${push_rel[@]}")
pays() { awk -v d="$1" -v p="$2" 'BEGIN { print (d > 0.5 && p > 3) ? "pays" : "does not pay" }'; }

cg=""
if command -v valgrind > /dev/null && [ "${CALLGRIND:-1}" = 1 ]; then
  for scen in config push; do
    for lane in true false; do
      n=$(HOT_LANE=$lane PROF_OUT="$work" "$root/bench/profile.sh" "$scen" "$CALLGRIND_N" 2>/dev/null | awk '{ for (i = 1; i <= NF; i++) if ($i == "instr/req") print $(i - 1) }')
      cg+="| $scen | $lane | $n |"$'\n'
    done
  done
fi

{
  echo "# The hot lane on trial"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, \`wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s\` per scenario and"
  echo "gateway, over loopback. Produced by \`bench/lane.sh\` (also run by \`bench/run.sh\`). Server CPU µs a"
  echo "request, the lane (\`server.hot_lane = true\`) and the router (\`false\`) back to back in each round:"
  echo
  echo "| round | config, lane | config, router | safe push, lane | safe push, router |"
  echo "|---:|---:|---:|---:|---:|"
  printf '%s' "$rows"
  echo
  echo "Median of the rounds' differences (router − lane): \`/wx/config\` **$cd_med µs ($cr_med%)**, safe push"
  echo "**$pd_med µs ($pr_med%)**. The rule (the lane stays only above 3% and 0.5 µs): config $(pays "$cd_med" "$cr_med"),"
  echo "push $(pays "$pd_med" "$pr_med")."
  if [ -n "$cg" ]; then
    echo
    echo "callgrind, instructions a request (\`bench/profile.sh\`, $CALLGRIND_N requests on one connection):"
    echo
    echo "| scenario | hot_lane | instr/req |"
    echo "|---|---|---:|"
    printf '%s' "$cg"
  fi
} > "$root/bench/lane-results.md"
cat "$root/bench/lane-results.md"
