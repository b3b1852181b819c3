#!/usr/bin/env bash
# The availability scale benchmark (make bench-availability): one fiscal year for 10,000 24x7
# services, 50,000 subscriptions, 1,000,000 overlapping outages and 20 maintenance windows per
# service, reported by slmhub's engine (one month, then all twelve, with credits) beside a bare
# sort-and-sweep union and PostgreSQL 15 multiranges over the same intervals, in one run.
# Fails unless all three give identical per-service, per-month downtime. Builds nothing.
#   bench/availability/run.sh BUILD_DIR [--repeat N] [--one-month YYYY-MM] [--keep DIR]
#                             [generator options: --services N --interruptions N ...]
# Prints the Markdown table for bench/RESULTS.md. ENGINE_BIN=path runs another build of
# bench_availability (e.g. to compare engine versions) instead of BUILD_DIR's.
set -euo pipefail
build=${1:?usage: bench/availability/run.sh BUILD_DIR [options]}
shift
here=$(cd "$(dirname "$0")" && pwd)
bin="$build/bench/availability"
engine_bin=${ENGINE_BIN:-$bin/bench_availability}
repeat=3
one=2026-01
keep=
gen_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --repeat) repeat=$2; shift 2 ;;
    --one-month) one=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    *) gen_args+=("$1" "$2"); shift 2 ;;
  esac
done
for p in "$bin/bench_availability_generate" "$engine_bin" "$bin/bench_sweep"; do
  [ -x "$p" ] || { echo "run.sh: $p is missing; build the bench targets first" >&2; exit 1; }
done
if [ -n "$keep" ]; then
  mkdir -p "$keep"
  work=$(cd "$keep" && pwd)
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi

kv() {  # file key -> value
  grep -oE "(^| )$2=[^ ]+" "$1" | head -n1 | sed 's/.*=//'
}
mib() { awk -v k="$1" 'BEGIN {printf "%.0f MiB", k / 1024}'; }

echo "generating into $work ..." >&2
"$bin/bench_availability_generate" "$work" "${gen_args[@]}" | tee "$work/generate.out" >&2

echo "engine ..." >&2
"$engine_bin" "$work/dataset.json" --one-month "$one" --repeat "$repeat" \
  --totals "$work/engine.totals" --detail "$work/engine.detail" | tee "$work/engine.out" >&2
# A load is one per process (a second one in the same process would reuse the first one's
# memory), and single loads on this VM vary by a third: the engine's load is the median of
# the run above and repeat - 1 more processes that only load.
loads=$(kv "$work/engine.out" load_seconds)
for k in $(seq 2 "$repeat"); do
  "$engine_bin" "$work/dataset.json" --load-only | tee "$work/engine-load-$k.out" >&2
  loads="$loads $(kv "$work/engine-load-$k.out" load_seconds)"
done
echo "bare sweep ..." >&2
"$bin/bench_sweep" "$work/intervals.bin" --one-month "$one" --repeat "$repeat" \
  --totals "$work/sweep.totals" --detail "$work/sweep.detail" | tee "$work/sweep.out" >&2
echo "PostgreSQL ..." >&2
"$here/postgres.sh" "$work" "$work/pg" "$one" "$repeat" | tee "$work/pg.out" >&2
echo "PostgreSQL with the server's default settings ..." >&2
PG_TUNED=0 "$here/postgres.sh" "$work" "$work/pgdefault" "$one" "$repeat" | tee "$work/pgdefault.out" >&2

# All three must agree on every service-month, and on the one-month run.
failed=0
for side in sweep pg pgdefault; do
  for kind in totals detail; do
    if ! cmp -s "$work/engine.$kind" "$work/$side.$kind"; then
      echo "MISMATCH: engine.$kind and $side.$kind differ:" >&2
      diff "$work/engine.$kind" "$work/$side.$kind" | head -n 10 >&2 || true
      failed=1
    fi
  done
done
one_line=$(awk -v m="$one" '$1 == m {print $2}' "$work/engine.totals")
for side in engine sweep pg pgdefault; do
  got=$(kv "$work/$side.out" one_month_downtime_seconds)
  if [ "$got" != "$one_line" ]; then
    echo "MISMATCH: $side one-month downtime $got, twelve-month run says $one_line for $one" >&2
    failed=1
  fi
done
if [ "$failed" != 0 ]; then
  echo "run.sh: the three computations disagree (files kept in $work)" >&2
  trap - EXIT
  exit 1
fi
total=$(awk '{s += $2} END {print s}' "$work/engine.totals")
service_months=$(wc -l <"$work/engine.detail")

e_load=$(echo "$loads" | tr ' ' '\n' | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'); s_load=$(kv "$work/sweep.out" load_seconds); p_load=$(kv "$work/pg.out" load_seconds)
e_one=$(kv "$work/engine.out" one_month_seconds); s_one=$(kv "$work/sweep.out" one_month_seconds); p_one=$(kv "$work/pg.out" one_month_seconds)
e_all=$(kv "$work/engine.out" all_months_seconds); e_first=$(kv "$work/engine.out" all_months_first_seconds); s_all=$(kv "$work/sweep.out" all_months_seconds); p_all=$(kv "$work/pg.out" all_months_seconds)
e_rss=$(kv "$work/engine.out" peak_rss_kib); s_rss=$(kv "$work/sweep.out" peak_rss_kib); p_rss=$(kv "$work/pg.out" peak_rss_kib)
d_load=$(kv "$work/pgdefault.out" load_seconds); d_one=$(kv "$work/pgdefault.out" one_month_seconds)
d_all=$(kv "$work/pgdefault.out" all_months_seconds); d_rss=$(kv "$work/pgdefault.out" peak_rss_kib)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.1f", a / b; else print "inf"}'; }
verdict() { if awk "BEGIN {exit !($1)}"; then echo "met"; else echo "**not met**"; fi; }

sizes=$(head -n1 "$work/generate.out")
echo "Data: $sizes"
echo "All three agree: $total s of downtime over $service_months service-months with downtime (12 months); $one: $one_line s."
echo "Credits (engine): $(kv "$work/engine.out" all_months_credits) rows, $(kv "$work/engine.out" all_months_credit_cents) cents over 12 months; $one: $(kv "$work/engine.out" one_month_credits) rows, $(kv "$work/engine.out" one_month_credit_cents) cents."
echo
echo "| $(date -u +%F), $(nproc) cores, median of $repeat | load | one month ($one) | twelve months | peak RSS |"
echo "| --- | --- | --- | --- | --- |"
echo "| slmhub engine (load: read_dataset_file, strict, median of $repeat processes ($loads s); computation: one Engine, its index built in $(kv "$work/engine.out" engine_index_seconds) s, then the §5.4 reports with credits) | $e_load s | $e_one s | $e_all s (the first of the $repeat runs: $e_first s) | $(mib "$e_rss") |"
echo "| bare sort-and-sweep (binary file, downtime only) | $s_load s | $s_one s | $s_all s | $(mib "$s_rss") |"
echo "| PostgreSQL $(kv "$work/pg.out" server_version) multiranges (COPY + VACUUM ANALYZE; CREATE TABLE AS), tuned | $p_load s | $p_one s | $p_all s | $(mib "$p_rss") backend |"
echo "| the same, server defaults (work_mem 4 MB, JIT, parallel workers) | $d_load s | $d_one s | $d_all s | $(mib "$d_rss") backend |"
echo
echo "| target | measured | |"
echo "| --- | --- | --- |"
echo "| twelve months with credits < 0.25 s | $e_all s | $(verdict "$e_all < 0.25") |"
echo "| >= 20x faster than PostgreSQL (tuned) | $(ratio "$p_all" "$e_all")x | $(verdict "$p_all >= 20 * $e_all") |"
echo "| >= 20x faster than PostgreSQL (defaults) | $(ratio "$d_all" "$e_all")x | $(verdict "$d_all >= 20 * $e_all") |"
echo "| within 6x of the bare sweep | $(ratio "$e_all" "$s_all")x | $(verdict "$e_all <= 6 * $s_all") |"
echo "| load < 1 s | $e_load s | $(verdict "$e_load < 1") |"
echo "| peak RSS < 1 GiB | $(mib "$e_rss") | $(verdict "$e_rss < 1048576") |"
