#!/usr/bin/env bash
# make bench-cluster: one vs three slmhub instances on one PostgreSQL 15 (a throwaway cluster
# on 127.0.0.1, fsync on), all on this machine, in one run:
#  1. Webhook ingest: signed ServiceNow webhooks (bench/servicenow) posted with wrk for
#     SECONDS at CONNECTIONS connections in all, to the one instance, or split over the three
#     (one wrk each, its own webhooks); committed webhooks per second (sum) and p99 (worst).
#  2. Event dispatch: each committed webhook is a `servicenow.received` event for the
#     subscriber `servicenow.servicenow.apply` (no instance configured: the handler only reads the inbox
#     row). Events delivered per second while the backlog left by the ingest drains; one
#     instance at a time holds a subscriber (its lease), so this is one dispatcher's rate
#     whatever the number of instances.
# Prints a Markdown table for bench/RESULTS.md.
#   bench/cluster/run.sh BUILD_DIR [SECONDS] [CONNECTIONS]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
seconds=${2:-10}
conns=${3:-64}
here=$(cd "$(dirname "$0")" && pwd)
python=${SLMHUB_PYTHON:-/usr/bin/python3}
pg_bin=${SLMHUB_PG_BIN:-/usr/lib/postgresql/15/bin}
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  as_pg "$pg_bin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# initdb and postgres refuse to run as root: as root they run as the postgres user.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_line() { # file pattern
  for _ in $(seq 1 600); do
    if grep -q "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "no '$2' in $1: $(tail -n 20 "${1%.out}.err" 2>/dev/null)" >&2
  return 1
}
port_of() { sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$1" | head -n1; }
ms() { date +%s%3N; }

mkdir -p "$work/pg"
[ "$(id -u)" = 0 ] && chown postgres "$work/pg"
as_pg "$pg_bin/initdb" -D "$work/pg/data" -A trust -U postgres >"$work/initdb.log" 2>&1
pg_port=$(free_port)
as_pg "$pg_bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
  -o "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=200" \
  start >/dev/null
psql_pg() { psql -qtA -h 127.0.0.1 -p "$pg_port" -U postgres "$@"; }

secret=bench-webhook-secret
# slmhub holds the key base64-encoded, as ServiceNow's generateMac takes it.
secret_base64=$(printf %s "$secret" | base64 -w0)
mkdir -p "$work/plugins"
ln -s "$build/plugins/servicenow.so" "$work/plugins/servicenow.so"
echo "generating signed webhooks..." >&2
for i in 1 2 3; do "$python" "$here/../servicenow/make_webhooks.py" "$secret" 60000 "node$i" >"$work/hooks-$i.txt"; done

run() { # instances -> table row
  local n=$1 db="bench_$1" ports=() i
  psql_pg -c "CREATE DATABASE $db" postgres
  for i in $(seq 1 "$n"); do
    env SLMHUB_DB_URL="postgresql://postgres@127.0.0.1:$pg_port/$db" SLMHUB_HTTP_PORT=0 \
      SLMHUB_INSTANCE_ID="node$i" SLMHUB_LOG_LEVEL=warning SLMHUB_PLUGINS_DIR="$work/plugins" \
      SLMHUB_AUTH_ADMIN_TOKEN_FILE="$work/admin-$n-$i.token" \
      SLMHUB_SECRET_SERVICENOW_WEBHOOK_SECRET="$secret_base64" \
      "$build/host/slmhub" serve >"$work/s-$n-$i.out" 2>"$work/s-$n-$i.err" &
    pids+=($!)
    wait_line "$work/s-$n-$i.out" "listening on"
    ports+=("$(port_of "$work/s-$n-$i.out")")
  done
  # Spread the connections: each wrk its instance, its own webhooks.
  local per=$((conns / n)) wrks=()
  for i in $(seq 1 "$n"); do
    BENCH_HOOKS="$work/hooks-$i.txt" BENCH_THREADS=1 wrk -t1 -c"$per" -d"${seconds}s" --latency \
      -s "$here/../servicenow/webhook.lua" "http://127.0.0.1:${ports[$((i - 1))]}" \
      >"$work/wrk-$n-$i.txt" 2>&1 &
    wrks+=($!)
  done
  wait "${wrks[@]}"
  local t0 rps p99 backlog0 backlog
  t0=$(ms)
  rps=$(cat "$work"/wrk-"$n"-*.txt | awk '/^Requests\/sec:/ {s += $2} END {printf "%.0f", s}')
  p99=$(cat "$work"/wrk-"$n"-*.txt | awk '$1=="99%" {print $2}' | sort -h | tail -n1)
  backlog_sql="SELECT (SELECT COALESCE(MAX(id), 0) FROM events) - last_id FROM event_cursors WHERE subscriber = 'servicenow.servicenow.apply'"
  backlog0=$(psql_pg -c "$backlog_sql" "$db")
  backlog=$backlog0
  while [ "$backlog" -gt 0 ]; do
    sleep 0.2
    backlog=$(psql_pg -c "$backlog_sql" "$db")
  done
  local drain_ms=$(($(ms) - t0))
  local stored holders
  stored=$(psql_pg -c "SELECT COUNT(*) FROM servicenow_inbox" "$db")
  holders=$(psql_pg -c "SELECT COUNT(DISTINCT holder) FROM event_cursors WHERE holder IS NOT NULL" "$db")
  local dispatch
  dispatch=$(awk -v b="$backlog0" -v t="$drain_ms" 'BEGIN {if (t > 0) printf "%.0f", 1000 * b / t; else print "-"}')
  echo "| $(date -u +%F) | $(nproc) cores | $n instance(s), $conns connections | $rps | $p99 | $stored | $dispatch ($backlog0 left after the ingest, drained in $(awk -v t="$drain_ms" 'BEGIN {printf "%.1f", t / 1000}') s; $holders instance(s) held subscribers) |"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
}

echo "| date | machine | slmhub on one PostgreSQL 15 | webhooks/s (committed, all instances) | p99 (worst) | webhooks stored | events dispatched/s |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
run 1
run 3
