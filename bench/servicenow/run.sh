#!/usr/bin/env bash
# make bench-servicenow: the [servicenow] benchmark, both figures in one run on 127.0.0.1.
#  1. Webhook ingest: signed (HMAC-SHA256), checked, deduplicated and committed webhooks per
#     second and p99 at 64 connections with wrk, beside the bare Poco handler (parse only)
#     in alternating runs. slmhub runs the servicenow plugin alone, on SQLite
#     (synchronous=FULL), without an instance, so only the ingest is measured.
#  2. Sweep: 100,000 incidents in the simulator with 20 ms added to every answer, read and
#     applied by the servicenow.sweep job (budget 20 requests/s, pages of 1,000): wall time,
#     slmhub's CPU time, and the time the budget alone needs. First the sweep that creates
#     100,000 tickets, then a reconciliation sweep after 1,000 more incidents appeared, then
#     a full re-read of all of them (nothing changed). Beside them, the store's floor: the rows
#     the first sweep wrote, written again by a minimal program (store_floor.py).
# Prints Markdown tables for bench/RESULTS.md.
#   bench/servicenow/run.sh BUILD_DIR [RUNS] [SECONDS] [CONNECTIONS]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
runs=${2:-3}
seconds=${3:-10}
conns=${4:-64}
threads=64 # the server default (http.threads); the anchor gets the same
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python=${SLMHUB_PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_line() { # file pattern -> waits until the file has a line matching pattern
  for _ in $(seq 1 600); do
    if grep -q "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "no '$2' in $1: $(cat "$1" "${1%.out}.err" 2>/dev/null | tail -n 20)" >&2
  return 1
}
port_of() { sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$1" | head -n1; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

secret=bench-webhook-secret
# slmhub holds the key base64-encoded, as ServiceNow's generateMac takes it.
secret_base64=$(printf %s "$secret" | base64 -w0)
mkdir -p "$work/plugins"
ln -s "$build/plugins/servicenow.so" "$work/plugins/servicenow.so"

# --- 1. webhook ingest -------------------------------------------------------------------
echo "generating signed webhooks..." >&2
for r in warm $(seq 1 "$runs"); do
  "$python" "$here/make_webhooks.py" "$secret" 150000 "run-$r" >"$work/hooks-$r.txt"
done

"$build/bench/bench_bare_poco" "$threads" >"$work/bare.out" 2>"$work/bare.err" &
pids+=($!)
wait_line "$work/bare.out" "listening on"
bare_port=$(port_of "$work/bare.out")

env SLMHUB_DB_URL="sqlite:$work/ingest.db" SLMHUB_HTTP_PORT=0 SLMHUB_LOG_LEVEL=warning \
  SLMHUB_AUTH_ADMIN_TOKEN_FILE="$work/admin.token" SLMHUB_PLUGINS_DIR="$work/plugins" \
  SLMHUB_HTTP_THREADS="$threads" SLMHUB_SECRET_SERVICENOW_WEBHOOK_SECRET="$secret_base64" \
  "$build/host/slmhub" serve >"$work/ingest.out" 2>"$work/ingest.err" &
slm_pid=$!
pids+=($slm_pid)
wait_line "$work/ingest.out" "listening on"
slm_port=$(port_of "$work/ingest.out")

measure() { # port hooks-file -> "req/s p99"
  BENCH_HOOKS=$2 BENCH_THREADS=2 wrk -t2 -c"$conns" -d"${seconds}s" --latency \
    -s "$here/webhook.lua" "http://127.0.0.1:$1" >"$work/wrk.txt" 2>"$work/wrk.err"
  if [ -s "$work/wrk.err" ]; then echo "wrk reported errors: $(head -n 3 "$work/wrk.err")" >&2; fi
  echo "$(awk '/^Requests\/sec:/ {print $2}' "$work/wrk.txt") $(awk '$1=="99%" {print $2}' "$work/wrk.txt")"
}
# slmhub delivers the servicenow.received events of a run after answering its webhooks; a run
# that began while it still did would share the cores with that work. Every run starts once
# slmhub has used under 3 ticks of CPU in a second; the wait after each of slmhub's runs is
# how long its event delivery trailed the ingest.
settle() { # prints seconds waited
  local start=$SECONDS before after
  for _ in $(seq 1 300); do
    before=$(cpu_ticks "$slm_pid")
    sleep 1
    after=$(cpu_ticks "$slm_pid")
    [ $((after - before)) -lt 3 ] && break
  done
  echo $((SECONDS - start))
}
measure "$bare_port" "$work/hooks-warm.txt" >/dev/null
measure "$slm_port" "$work/hooks-warm.txt" >/dev/null
: >"$work/bare.txt"
: >"$work/slm.txt"
: >"$work/trail.txt"
settle >/dev/null
for r in $(seq 1 "$runs"); do
  measure "$bare_port" "$work/hooks-$r.txt" >>"$work/bare.txt"
  settle >/dev/null
  measure "$slm_port" "$work/hooks-$r.txt" >>"$work/slm.txt"
  settle >>"$work/trail.txt"
done
bare_rps=$(awk '{print $1}' "$work/bare.txt" | median)
bare_p99=$(awk '{print $2}' "$work/bare.txt" | median)
slm_rps=$(awk '{print $1}' "$work/slm.txt" | median)
slm_p99=$(awk '{print $2}' "$work/slm.txt" | median)
stored=$(sqlite3 "$work/ingest.db" "SELECT COUNT(*) FROM servicenow_inbox")
ratio=$(awk -v a="$slm_rps" -v b="$bare_rps" 'BEGIN {printf "%.0f", 100 * a / b}')
trail=$(median <"$work/trail.txt")
kill "${pids[@]}" 2>/dev/null || true
wait 2>/dev/null || true
pids=()

echo "| date | machine | what | req/s (median of $runs) | p99 | |"
echo "| --- | --- | --- | --- | --- | --- |"
echo "| $(date -u +%F) | $(nproc) cores, wrk -t2 -c$conns -d${seconds}s | bare Poco handler (parse only) | $bare_rps | $bare_p99 | anchor |"
echo "| $(date -u +%F) | $(nproc) cores, wrk -t2 -c$conns -d${seconds}s | slmhub POST /api/v1/webhooks/servicenow (HMAC, dedup, committed) | $slm_rps | $slm_p99 | ${ratio} % of bare; $stored webhooks committed; their events delivered ~$trail s after each run's end |"
echo

# --- 2. sweep ------------------------------------------------------------------------------
coproc SIM { exec "$python" "$root/tests/support/servicenow_sim.py" --port 0 --latency-ms 20 --seed 7; }
pids+=($SIM_PID)
read -r -u "${SIM[0]}" line1
read -r -u "${SIM[0]}" line2
sim_port=$(echo "$line2" | awk '$1=="ready" {print $2}')
[ -n "$sim_port" ] || { echo "simulator did not start: $line1 $line2" >&2; exit 1; }
control() { curl -sf -X "$1" -H 'Content-Type: application/json' "http://127.0.0.1:$sim_port/sim/$2" ${3:+-d "$3"}; }
echo "loading 100,000 incidents into the simulator..." >&2
control POST bulk/incident '{"count": 100000, "start": "2026-01-01 00:00:00", "per_step": 3, "_user": "jdoe", "fields": {"short_description": "Generated incident {i}", "state": "2", "urgency": "2"}}' >/dev/null

budget=20
page=1000
env SLMHUB_DB_URL="sqlite:$work/sweep.db" SLMHUB_HTTP_PORT=0 SLMHUB_LOG_LEVEL=warning \
  SLMHUB_AUTH_ADMIN_TOKEN_FILE="$work/admin2.token" SLMHUB_PLUGINS_DIR="$work/plugins" \
  SLMHUB_PLUGINS_SERVICENOW_INSTANCE_URL="http://127.0.0.1:$sim_port" \
  SLMHUB_PLUGINS_SERVICENOW_INSTANCE_USERNAME=slmhub SLMHUB_SECRET_SERVICENOW_PASSWORD=slmhub \
  SLMHUB_PLUGINS_SERVICENOW_INSTANCE_REQUESTS_PER_SECOND=$budget \
  SLMHUB_PLUGINS_SERVICENOW_INSTANCE_PAGE_SIZE=$page \
  SLMHUB_PLUGINS_SERVICENOW_OUTBOUND_ENABLED=false \
  SLMHUB_PLUGINS_SERVICENOW_SWEEP_TABLES=incident \
  SLMHUB_PLUGINS_SERVICENOW_SWEEP_SCHEDULE="0 0 1 1 *" \
  "$build/host/slmhub" serve >"$work/sweep.out" 2>"$work/sweep.err" &
slm_pid=$!
pids+=($slm_pid)
wait_line "$work/sweep.out" "listening on"
sweep_port=$(port_of "$work/sweep.out")
token=$(cat "$work/admin2.token")
hz=$(getconf CLK_TCK)

sweep() { # label -> table row
  local t0 c0 t1 c1 out
  t0=$(date +%s%N)
  c0=$(cpu_ticks "$slm_pid")
  out=$(curl -sf -m 3600 -X POST -d "" -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$sweep_port/api/v1/jobs/servicenow.sweep/run")
  t1=$(date +%s%N)
  c1=$(cpu_ticks "$slm_pid")
  local wall_ms=$(((t1 - t0) / 1000000))
  local cpu_ms=$(((c1 - c0) * 1000 / hz))
  local records
  records=$(echo "$out" | sed -n 's/.*"output":"\([0-9]*\) records read.*/\1/p')
  local pages=$(((records + page - 1) / page + 1))
  local budget_ms=$((pages * 1000 / budget))
  echo "| $(date -u +%F) | $(nproc) cores | $1 | $records | $(awk -v w="$wall_ms" 'BEGIN {printf "%.1f s", w / 1000}') | $(awk -v c="$cpu_ms" -v w="$wall_ms" 'BEGIN {printf "%.1f s (%.0f %% of one core)", c / 1000, 100 * c / w}') | $(awk -v b="$budget_ms" 'BEGIN {printf "%.1f s", b / 1000}') | $(echo "$out" | sed -n 's/.*"output":"\([^"]*\)".*/\1/p') |"
}
echo "| date | machine | sweep (20 ms latency, $budget req/s budget, pages of $page) | records | wall | slmhub CPU | budget alone | outcome |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
sweep "first sweep: 100,000 incidents become tickets"
control POST bulk/incident '{"count": 1000, "per_step": 3, "_user": "jdoe", "fields": {"short_description": "Missed by webhooks {i}"}}' >/dev/null
sweep "reconciliation: 1,000 new since the last sweep"
# From the beginning again (the cursor forgotten): every record is there already, unchanged.
sqlite3 "$work/sweep.db" "DELETE FROM servicenow_cursors"
sweep "full re-read: 101,000 unchanged"
# The store's floor for the first sweep: the rows it wrote for the 100,000 new tickets,
# written again into an empty database of the same schema by a minimal program (no HTTP, no
# JSON, no mapping), one transaction per page as slmhub does.
read -r floor_cpu floor_wall < <("$python" "$here/store_floor.py" "$work/sweep.db" "$work/floor.db" 100000 "$page")
echo "| $(date -u +%F) | $(nproc) cores | anchor: the first sweep's rows (tickets, audit, events, links) written again by store_floor.py | 100000 | $floor_wall s | $floor_cpu s | | the store's own cost of those rows |"
