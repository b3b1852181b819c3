#!/usr/bin/env bash
# The PostgreSQL 15 side of the availability scale benchmark: the same per-service, per-month
# downtime with multiranges, (range_agg(outages) * month) - range_agg(maintenance), in a
# throwaway cluster (initdb in a temp dir, 127.0.0.1 on a free port, as the postgres user
# when run as root, like tests/support/postgres_cluster.cpp).
#   bench/availability/postgres.sh DATA_DIR OUT_PREFIX [ONE_MONTH] [REPEAT]
# DATA_DIR holds the generator's interruptions.tsv, maintenance.tsv and months.tsv. Prints
# key=value lines like bench_availability; writes OUT_PREFIX.totals and OUT_PREFIX.detail.
# Timed with psql's \timing (server round trip of the statement only): the load is the COPY
# of both tables plus VACUUM ANALYZE; the computations are CREATE TABLE AS of the
# per-service-month seconds, the median of REPEAT runs. Peak RSS is the VmHWM of the backend
# that ran them (shared buffers it touched included; the postmaster is not counted).
set -euo pipefail
data=$(cd "$1" && pwd)
out=$2
one=${3:-2026-01}
repeat=${4:-1}
bin=${SLMHUB_PG_BIN:-/usr/lib/postgresql/15/bin}
for p in initdb pg_ctl postgres; do
  [ -x "$bin/$p" ] || { echo "postgres.sh: $bin/$p is missing (make deps installs postgresql-15)" >&2; exit 1; }
done

dir=$(mktemp -d /tmp/slmhub-pgbench-XXXXXX)
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$dir"
  as_pg=(runuser -u postgres --)
fi
running=0
cleanup() {
  if [ "$running" = 1 ]; then "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

"${as_pg[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --no-locale \
  --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
# The server reads the COPY files itself (server-side COPY is a timed statement).
for f in interruptions maintenance months; do
  cp "$data/$f.tsv" "$dir/$f.tsv"
done
[ -z "${as_pg[*]}" ] || chown postgres: "$dir"/*.tsv

# A throwaway cluster: fsync off (durability is not what is measured); one process per query,
# as the engine computes single-threaded; no JIT (its compile time is not computation);
# memory enough that no aggregation spills to disk.
# PG_TUNED=0 keeps the server defaults for memory, parallelism and JIT instead.
settings="-c listen_addresses=127.0.0.1 -c unix_socket_directories='$dir' -c fsync=off \
-c synchronous_commit=off -c full_page_writes=off"
if [ "${PG_TUNED:-1}" != 0 ]; then
  settings="$settings -c shared_buffers=512MB -c work_mem=512MB -c maintenance_work_mem=512MB \
-c max_parallel_workers_per_gather=0 -c jit=off"
fi
for _ in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 40000))
  ss -Hltn "sport = :$port" | grep -q . && continue
  if "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$settings -c port=$port" \
    -w -t 60 start >"$dir/pg_ctl.log" 2>&1; then
    running=1
    break
  fi
  grep -q -e "could not bind" -e "already in use" "$dir/server.log" || break
done
if [ "$running" != 1 ]; then
  echo "postgres.sh: the server did not start" >&2
  tail -n 20 "$dir/pg_ctl.log" "$dir/server.log" >&2
  exit 1
fi

psql_run() {  # SQL on stdin -> stdout (unaligned, tuples only, space separated)
  PGOPTIONS="-c client_min_messages=warning" psql -X -q -A -t -F ' ' -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres
}
times_ms() { sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'; }
sum_seconds() { awk '{s += $1} END {printf "%.3f", s / 1000}'; }
median_seconds() { sort -g | awk '{a[NR]=$1} END {printf "%.4f", a[int((NR+1)/2)] / 1000}'; }

psql_run >/dev/null <<SQL
CREATE TABLE months (month text PRIMARY KEY, r tstzrange NOT NULL);
CREATE TABLE interruptions (service int NOT NULL, r tstzrange NOT NULL);
CREATE TABLE maintenance (service int NOT NULL, r tstzrange NOT NULL);
COPY months FROM '$dir/months.tsv';
SQL

load=$(psql_run <<SQL | times_ms | sum_seconds
\timing on
COPY interruptions FROM '$dir/interruptions.tsv';
COPY maintenance FROM '$dir/maintenance.tsv';
VACUUM ANALYZE interruptions;
VACUUM ANALYZE maintenance;
VACUUM ANALYZE months;
SQL
)

# Per service and month: the union of its outages inside the month, minus the union of its
# maintenance windows (all of them are pre-approved and within budget: wholly excluded), in
# seconds. Services without outages have no row (their downtime is 0 everywhere).
query() {  # $1: table name, $2: month filter on `months m`
  cat <<SQL
CREATE TABLE $1 AS
WITH m AS (SELECT month, r FROM months m WHERE $2),
     i AS (SELECT o.service, range_agg(o.r) AS mr
           FROM interruptions o WHERE o.r && (SELECT range_merge(range_agg(r)) FROM m)
           GROUP BY o.service),
     x AS (SELECT w.service, range_agg(w.r) AS mr FROM maintenance w GROUP BY w.service),
     d AS (SELECT m.month, i.service,
                  (i.mr * tstzmultirange(m.r)) - coalesce(x.mr, '{}'::tstzmultirange) AS down
           FROM i CROSS JOIN m LEFT JOIN x ON x.service = i.service)
SELECT d.month, d.service,
       coalesce((SELECT sum(extract(epoch FROM upper(u)) - extract(epoch FROM lower(u)))
                 FROM unnest(d.down) AS u), 0)::bigint AS seconds
FROM d;
SQL
}

runs() {  # $1: table, $2: filter -> the SQL for REPEAT timed runs
  for _ in $(seq 1 "$repeat"); do
    echo "DROP TABLE IF EXISTS $1;"
    printf '%s\n' '\timing on'
    query "$1" "$2"
    printf '%s\n' '\timing off'
  done
}

{
  runs downtime_one "m.month = '$one'"
  runs downtime_all "true"
  echo "SELECT 'rss ' || (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmHWM:\s+(\d+)'))[1];"
} | psql_run >"$dir/compute.out"
one_times=$(times_ms <"$dir/compute.out" | head -n "$repeat" | median_seconds)
all_times=$(times_ms <"$dir/compute.out" | tail -n "$repeat" | median_seconds)
rss=$(sed -n 's/^rss \([0-9]*\)$/\1/p' "$dir/compute.out")

psql_run >"$out.totals" <<SQL
SELECT month, sum(seconds), sum(seconds * (service + 1)) FROM downtime_all GROUP BY month ORDER BY month;
SQL
psql_run >"$out.detail" <<SQL
SELECT month, service, seconds FROM downtime_all WHERE seconds > 0 ORDER BY month, service;
SQL
one_downtime=$(echo "SELECT coalesce(sum(seconds), 0) FROM downtime_one;" | psql_run)
counts=$(echo "SELECT (SELECT count(*) FROM interruptions), (SELECT count(*) FROM maintenance);" | psql_run)
version=$(echo "SHOW server_version;" | psql_run)

echo "server_version=$version rows=${counts// /+}"
echo "load_seconds=$load"
echo "one_month=$one one_month_seconds=$one_times one_month_downtime_seconds=$one_downtime"
echo "months=$(wc -l <"$data/months.tsv") all_months_seconds=$all_times"
echo "peak_rss_kib=$rss"
