#!/usr/bin/env bash
# make bench: authenticated, validated, durable POST /api/v1/interruptions on slmhub
# (SQLite, synchronous=FULL, group commit) beside a bare Poco handler that only parses the
# JSON, in the same run, with wrk on 127.0.0.1. Prints a Markdown table for RESULTS.md.
#   bench/run.sh BUILD_DIR [RUNS] [SECONDS] [CONNECTIONS]
set -euo pipefail
build=${1:-build}
runs=${2:-5}
seconds=${3:-10}
conns=${4:-64}
threads=64  # the server default (http.threads); the anchor gets the same
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

wait_port() {  # file -> port once "listening on" appears
  for _ in $(seq 1 200); do
    if grep -q "listening on" "$1" 2>/dev/null; then
      sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$1" | head -n1
      return 0
    fi
    sleep 0.05
  done
  echo "server did not start: $(cat "$1" "${1%.out}.err" 2>/dev/null)" >&2
  return 1
}

"$build/bench/bench_bare_poco" "$threads" >"$work/bare.out" 2>"$work/bare.err" &
pids+=($!)
bare_port=$(wait_port "$work/bare.out")

export SLMHUB_DB_URL="sqlite:$work/slmhub.db" SLMHUB_HTTP_PORT=0 SLMHUB_LOG_LEVEL=warning \
  SLMHUB_AUTH_ADMIN_TOKEN_FILE="$work/admin.token" SLMHUB_PLUGINS_DIR="$work/no-plugins" \
  SLMHUB_HTTP_THREADS="$threads"
"$build/host/slmhub" serve >"$work/slmhub.out" 2>"$work/slmhub.err" &
pids+=($!)
slm_port=$(wait_port "$work/slmhub.out")
token=$(cat "$work/admin.token")
curl -sf -o /dev/null -H "Authorization: Bearer $token" -X POST \
  "http://127.0.0.1:$slm_port/api/v1/services" \
  -d '{"id":"oracle-prod","name":"Oracle","environment":"production","hours":"24x7","target_percent":99.75}'

run_number=0
measure() {  # port token -> "req/s p99_ms"
  run_number=$((run_number + 1))
  BENCH_RUN="r$run_number" BENCH_TOKEN=$2 wrk -t2 -c"$conns" -d"${seconds}s" --latency -s "$here/post_interruption.lua" \
    "http://127.0.0.1:$1" >"$work/wrk.txt" 2>"$work/wrk.err"
  local rps p99
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$work/wrk.txt")
  p99=$(awk '$1=="99%" {print $2}' "$work/wrk.txt")
  if [ -s "$work/wrk.err" ]; then echo "wrk reported errors: $(head -n 3 "$work/wrk.err")" >&2; fi
  echo "$rps $p99"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Warm both up, then alternate runs so drift hits both alike.
measure "$bare_port" "" >/dev/null
measure "$slm_port" "$token" >/dev/null
: >"$work/bare.txt"; : >"$work/slm.txt"
for i in $(seq 1 "$runs"); do
  measure "$bare_port" "" >>"$work/bare.txt"
  measure "$slm_port" "$token" >>"$work/slm.txt"
done
bare_rps=$(awk '{print $1}' "$work/bare.txt" | median)
bare_p99=$(awk '{print $2}' "$work/bare.txt" | median)
slm_rps=$(awk '{print $1}' "$work/slm.txt" | median)
slm_p99=$(awk '{print $2}' "$work/slm.txt" | median)
stored=$(sqlite3 "$work/slmhub.db" "SELECT COUNT(*) FROM core_interruptions")
ratio=$(awk -v a="$slm_rps" -v b="$bare_rps" 'BEGIN {printf "%.0f", 100 * a / b}')

echo "| date | machine | target | req/s (median of $runs) | p99 | |"
echo "| --- | --- | --- | --- | --- | --- |"
echo "| $(date -u +%F) | $(nproc) cores, wrk -t2 -c$conns -d${seconds}s | bare Poco handler (parse only) | $bare_rps | $bare_p99 | anchor |"
echo "| $(date -u +%F) | $(nproc) cores, wrk -t2 -c$conns -d${seconds}s | slmhub POST /api/v1/interruptions | $slm_rps | $slm_p99 | ${ratio} % of bare; $stored rows committed |"
echo
echo "Runs, alternating (req/s): bare $(awk '{print $1}' "$work/bare.txt" | paste -sd/); slmhub $(awk '{print $1}' "$work/slm.txt" | paste -sd/)."
