#!/usr/bin/env bash
# Runs each libFuzzer target of BUILD_DIR (tests/fuzz/CMakeLists.txt) for SECONDS seconds, one
# after the other (make fuzz; docs/fuzzing.md). Usage: run.sh BUILD_DIR SECONDS TARGET...
#
# Each target reads the committed seeds (tests/fuzz/corpus/<name>) and regressions
# (tests/fuzz/regressions/<name>) and writes what it finds new to BUILD_DIR/fuzz/corpus/<name>,
# which later runs keep using: the committed corpus is never written. A crash, a sanitizer
# report, a broken check, a timeout (-timeout, seconds per input) or running out of memory
# leaves the input in BUILD_DIR/fuzz/artifacts/<name>/ and fails the run after all targets ran.
set -uo pipefail
build=$1
seconds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
work=$build/fuzz
timeout_seconds=${FUZZ_TIMEOUT:-10}
failed=()
summary=()

for name in "$@"; do
  binary=$build/tests/fuzz/fuzz_$name
  corpus=$work/corpus/$name
  artifacts=$work/artifacts/$name
  log=$work/logs/$name.log
  rm -rf "$artifacts"
  mkdir -p "$corpus" "$artifacts" "$work/logs"
  seeds=("$here/corpus/$name")
  [ -d "$here/regressions/$name" ] && seeds+=("$here/regressions/$name")
  dict=()
  [ -f "$here/$name.dict" ] && dict=("-dict=$here/$name.dict")
  echo "== fuzz_$name for ${seconds}s (log: $log)"
  nice -n 10 "$binary" "${dict[@]}" -max_total_time="$seconds" -timeout="$timeout_seconds" \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "$corpus" "${seeds[@]}" >"$log" 2>&1
  status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[^ ]+' "$log" | tail -1)
  summary+=("$(printf '%-14s %10s execs %7s/s  %s' "$name" "${execs:-?}" "${rate:-?}" "$cov")")
  if [ "$status" -ne 0 ]; then
    failed+=("$name")
    echo "!! fuzz_$name failed (exit $status); the input that failed:"
    ls -1 "$artifacts"/* 2>/dev/null | sed 's/^/   /'
    grep -E -m3 'ERROR: |SUMMARY: |Finding|terminate called|what\(\)' "$log" | sed 's/^/   /'
  fi
done

echo "== summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]} (inputs in $work/artifacts/<name>/, logs in $work/logs/)"
  echo "Reproduce with: $build/tests/fuzz/fuzz_<name> <input>"
  exit 1
fi
echo "no findings"
