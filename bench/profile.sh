#!/usr/bin/env bash
# Counts instructions per request with callgrind (deterministic, unlike wall time on a
# shared VM). Needs a release build with line tables:
#   CARGO_TARGET_DIR=/work/target-prof CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
#     cargo build --release -p wxgate -p wxgate-bench
#   PROF_TARGET=/work/target-prof bench/profile.sh push 2000
# Scenarios: push, config, healthz, limit, floor (bench/floor, driven with pushes).
# HOT_LANE=false measures the router in the hot lane's place (bench/lane.sh).
# Loopback only; N requests, one connection.
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
. "$here/common.sh"
sb_port=$(free_port); gw_port=$(free_port)
write_configs "$sb_port" "$gw_port"
# HOT_LANE=false: the router answers /wx/config and /wx/service (bench/lane.sh).
if [ -n "${HOT_LANE:-}" ]; then printf '[server]\nhot_lane = %s\n' "$HOT_LANE" >> "$work/wxgate.toml"; fi
"$bin/wxgate" sandbox --config "$work/sandbox.toml" > "$work/sandbox.log" 2>&1 & pids+=($!)
wait_port "$sb_port"
if [ "$scen" = limit ] || [ "$scen" = floor ]; then
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$out/cg.$scen.out "$bin/$scen" "127.0.0.1:$gw_port" > "$work/gw.log" 2>&1 & pids+=($!)
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
