#!/usr/bin/env bash
# make bench-billing: the [billing] benchmark, the real path end to end on one machine.
#  Once: bench/billing/generate.py writes a dataset (America/Chicago, fiscal year from September,
#  two services, 10,000 customers with 2 subscriptions each) and a billing import (per customer 9
#  time entries and 1 on-call request in 2026-10): 12 lines on every invoice.
#  Per run (RUNS times, each on its own fresh SQLite store, since finalising is one-time):
#   1. `slmhub import dataset.json`, then `slmhub serve` on a free port and the billing import
#      POSTed to /api/v1/billing/import with the admin token it created; the server stopped.
#   2. Timed with /usr/bin/time -v: `slmhub export invoices --month 2026-10 --format csv,ubl`
#      (finalises and numbers 10,000 invoices, writes the CSV, 10,000 UBL files and the manifest,
#      synced with one syncfs, published atomically). Then the same command again (re-export: the same
#      bytes, nothing written), timed too. Target: the first < 5 s on 2 cores; peak RSS recorded.
#   3. Checked: exit status 0, the manifest's 10,000 invoices and 120,000 lines, 10,000 .xml +
#      CSV + manifest and nothing else, 20 UBL files validated by xmllint against the UBL 2.1
#      schema, the CSV read back by Python's csv module (120,000 rows + header), and the re-export
#      reporting "unchanged" with every file's inode, size and mtime as before.
#   4. The anchor: Python writing the same 10,002 files (the same bytes, read into memory first)
#      as the export publishes them: a hidden directory, each file written, one syncfs(2), the
#      directory fsynced, renamed into place, the parent fsynced.
# Prints a Markdown table for bench/RESULTS.md (medians of RUNS).
#   bench/billing/run.sh BUILD_DIR [CUSTOMERS] [RUNS]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
customers=${2:-10000}
runs=${3:-3}
month=2026-10
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python=${SLMHUB_PYTHON:-/usr/bin/python3}
slmhub="$build/host/slmhub"
plugin="$build/plugins/billing_export.so"
xsd=${UBL_XSD:-$root/../shared/ubl-2.1/maindoc/UBL-Invoice-2.1.xsd}
for f in "$slmhub" "$plugin" "$xsd" /usr/bin/time; do
  [ -e "$f" ] || { echo "run.sh: $f is missing" >&2; exit 1; }
done
command -v xmllint >/dev/null || { echo "run.sh: xmllint is missing (libxml2-utils)" >&2; exit 1; }
work=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

wait_line() { # file pattern -> waits until the file has a line matching pattern
  for _ in $(seq 1 1200); do
    if grep -q "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "no '$2' in $1: $(tail -n 20 "$1" 2>/dev/null)" >&2
  return 1
}
now_ms() { date +%s%3N; }
fail() { echo "run.sh: FAILED: $*" >&2; exit 1; }
# /usr/bin/time -v output -> "seconds maxrss_kib user sys"
time_figures() {
  awk -F': ' '
    /Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i] }
    /Maximum resident set size/ { rss = $2 }
    /User time/ { u = $2 }
    /System time/ { y = $2 }
    END { printf "%.2f %d %.2f %.2f\n", s, rss, u, y }' "$1"
}

echo "generating $customers customers ..." >&2
"$python" "$here/generate.py" "$work/input" --customers "$customers" --month "$month" >&2
invoices=$customers
lines=$((customers * 12))

: >"$work/first.txt"
: >"$work/again.txt"
: >"$work/anchor.txt"
: >"$work/import.txt"
for r in $(seq 1 "$runs"); do
  dir="$work/run$r"
  mkdir -p "$dir/plugins"
  ln -s "$plugin" "$dir/plugins/billing_export.so"
  cat >"$dir/slmhub.properties" <<EOF
db.url = sqlite:$dir/store.db
http.host = 127.0.0.1
http.port = 0
http.max_body_bytes = 100000000
plugins.dir = $dir/plugins
plugins.enabled = billing_export
auth.admin_token_file = $dir/admin.token
log.level = information
# The monthly job stays off: only the command below finalises.
plugins.billing_export.export.schedule =
EOF
  conf="$dir/slmhub.properties"

  # 1. The store: the dataset by the CLI, the billing import through the API.
  "$slmhub" import "$work/input/dataset.json" --config "$conf" >"$dir/import.out" 2>"$dir/import.err" ||
    fail "slmhub import: $(cat "$dir/import.out" "$dir/import.err")"
  "$slmhub" serve --config "$conf" >"$dir/serve.out" 2>"$dir/serve.err" &
  server=$!
  wait_line "$dir/serve.out" "listening on"
  port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$dir/serve.out" | head -n1)
  token=$(cat "$dir/admin.token")
  t0=$(now_ms)
  curl -sS --fail-with-body -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    --data-binary @"$work/input/billing.json" "http://127.0.0.1:$port/api/v1/billing/import" \
    >"$dir/billing-import.json" || fail "billing import: $(cat "$dir/billing-import.json")"
  echo "$(($(now_ms) - t0))" >>"$work/import.txt"
  kill "$server"
  wait "$server" || true
  server=
  echo "run $r: store ready ($(cat "$dir/billing-import.json"))" >&2

  # 2. The timed export, then the re-export, with the setup's writes flushed first (the
  # export's one syncfs is then its own). No run deletes anything (the work directory goes at
  # exit): ext4 without a journal (this VM's disk) skips each free inode deleted in the last
  # minutes when it allocates one (recently_deleted() in fs/ext4/ialloc.c), a page-cache
  # lookup per skipped inode on every create. After a mass delete (the previous run's, or the
  # previous benchmark's 20,000+ files) the export's and the anchor's 10,002 creates took 3-4 s
  # more, nearly all sys time, so compare the export with the anchor of the same run.
  sync
  out="$dir/out"
  status=0
  /usr/bin/time -o "$dir/first.time" -v "$slmhub" export invoices --month "$month" --out "$out" \
    --format csv,ubl --config "$conf" >"$dir/first.out" 2>"$dir/first.err" || status=$?
  [ "$status" = 0 ] || fail "export exited $status: $(cat "$dir/first.out" "$dir/first.err")"
  published="$out/invoices-$month"
  find "$published" -printf '%i %s %T@ %f\n' | sort >"$dir/listing.before"
  status=0
  /usr/bin/time -o "$dir/again.time" -v "$slmhub" export invoices --month "$month" --out "$out" \
    --format csv,ubl --config "$conf" >"$dir/again.out" 2>"$dir/again.err" || status=$?
  [ "$status" = 0 ] || fail "re-export exited $status: $(cat "$dir/again.out" "$dir/again.err")"
  find "$published" -printf '%i %s %T@ %f\n' | sort >"$dir/listing.after"
  time_figures "$dir/first.time" >>"$work/first.txt"
  time_figures "$dir/again.time" >>"$work/again.txt"
  sed "s/^/  run $r export: /" "$dir/first.out" >&2
  grep -E "finalised|exported" "$dir/first.err" | sed "s/^/  run $r log: /" >&2 || true
  sed "s/^/  run $r re-export: /" "$dir/again.out" >&2
  grep -hiE " (warning|error) " "$dir/import.err" "$dir/serve.err" "$dir/first.err" "$dir/again.err" |
    sed "s/^/  run $r WARNING in the log: /" >&2 || true

  # 3. Checks.
  grep -q "^wrote " "$dir/first.out" || fail "the export did not say 'wrote': $(cat "$dir/first.out")"
  grep -q "^unchanged: " "$dir/again.out" || fail "the re-export did not say 'unchanged': $(cat "$dir/again.out")"
  cmp -s "$dir/listing.before" "$dir/listing.after" ||
    fail "the re-export changed files: $(diff "$dir/listing.before" "$dir/listing.after" | head -n 5)"
  "$python" - "$published" "$month" "$invoices" "$lines" <<'PY' || fail "manifest or CSV check"
import csv, json, os, sys
d, month, invoices, lines = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
m = json.load(open(os.path.join(d, "manifest.json")))
names = sorted(os.listdir(d))
xml = [n for n in names if n.endswith(".xml")]
other = [n for n in names if not n.endswith(".xml")]
problems = []
if m["documents"] != {"invoices": invoices, "credit_notes": 0}:
    problems.append(f"manifest documents {m['documents']}")
if m["lines"] != lines:
    problems.append(f"manifest lines {m['lines']}")
if len(xml) != invoices or other != [f"invoices-{month}.csv", "manifest.json"]:
    problems.append(f"{len(xml)} .xml files and {other}")
if sorted(f["name"] for f in m["files"]) != sorted(n for n in names if n != "manifest.json"):
    problems.append("the manifest does not list the directory's files")
with open(os.path.join(d, f"invoices-{month}.csv"), newline="") as f:
    rows = list(csv.reader(f, strict=True))
if len(rows) != lines + 1 or any(len(r) != len(rows[0]) for r in rows):
    problems.append(f"CSV has {len(rows)} rows (expected {lines} + header)")
numbers = {r[1] for r in rows[1:]}
if len(numbers) != invoices:
    problems.append(f"CSV names {len(numbers)} invoices")
if problems:
    print("; ".join(problems), file=sys.stderr)
    sys.exit(1)
PY
  # 20 UBL files spread over the numbers, the first and the last among them.
  ls "$published" | grep '\.xml$' | sort | awk -v n="$invoices" 'NR == 1 || NR == n || NR % int(n / 19 + 1) == 0' |
    head -n 20 | sed "s|^|$published/|" >"$dir/sample.txt"
  xmllint --noout --schema "$xsd" $(cat "$dir/sample.txt") 2>"$dir/xmllint.err" ||
    fail "xmllint: $(grep -v validates "$dir/xmllint.err" | head -n 5)"
  sampled=$(grep -c validates "$dir/xmllint.err")

  # 4. The anchor: the same files and bytes written as publish_directory writes them.
  "$python" - "$published" "$work/anchor$r" >>"$work/anchor.txt" <<'PY'
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
src, dst = sys.argv[1], sys.argv[2]
files = [(n, open(os.path.join(src, n), "rb").read()) for n in sorted(os.listdir(src))]
os.makedirs(dst)
t = time.monotonic()
partial = os.path.join(dst, ".invoices.partial")
os.mkdir(partial)
for name, data in files:
    fd = os.open(os.path.join(partial, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, data)
    os.close(fd)
fd = os.open(partial, os.O_RDONLY | os.O_DIRECTORY)
if libc.syncfs(fd) != 0:
    raise OSError(ctypes.get_errno(), "syncfs")
os.close(fd)
for d in (partial, None):
    fd = os.open(partial if d else dst, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)
    if d:
        os.rename(partial, os.path.join(dst, "invoices"))
print(f"{time.monotonic() - t:.2f} {len(files)} {sum(len(b) for _, b in files)}")
PY
  echo "run $r: export $(tail -n1 "$work/first.txt") (s maxrss_kib user sys), re-export $(tail -n1 "$work/again.txt"), anchor $(tail -n1 "$work/anchor.txt") (s files bytes); $sampled UBL files validated" >&2
done

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
col() { awk -v c="$2" '{print $c}' "$1"; }
list() { col "$1" "$2" | paste -sd/ | sed 's|/| / |g'; }
first_s=$(col "$work/first.txt" 1 | median)
first_rss=$(col "$work/first.txt" 2 | median)
first_user=$(col "$work/first.txt" 3 | median)
first_sys=$(col "$work/first.txt" 4 | median)
again_s=$(col "$work/again.txt" 1 | median)
again_rss=$(col "$work/again.txt" 2 | median)
anchor_s=$(col "$work/anchor.txt" 1 | median)
files=$(col "$work/anchor.txt" 2 | head -n1)
bytes=$(col "$work/anchor.txt" 3 | head -n1)
import_ms=$(median <"$work/import.txt")
mib() { awk -v k="$1" 'BEGIN {printf "%.0f MiB", k / 1024}'; }
mb() { awk -v b="$1" 'BEGIN {printf "%.1f MB", b / 1e6}'; }
max_rss=$(col "$work/first.txt" 2 | sort -g | tail -n1)
verdict() { if awk "BEGIN {exit !($1)}"; then echo "met"; else echo "**not met**"; fi; }
fmt() { echo "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta'; }

rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD -- host sdk plugins connectors 2>/dev/null || rev="$rev + uncommitted changes"
echo "slmhub $(basename "$build") at $rev; $runs runs, each on a fresh store; the timed commands on a warm page cache (the store was just written), after a sync."
echo
echo "| $(date -u +%F), $(nproc) cores, SQLite | figure | |"
echo "| --- | --- | --- |"
echo "| \`slmhub export invoices --month $month --format csv,ubl\`, first run: $(fmt "$invoices") invoices × 12 lines computed, finalised and numbered (one transaction), CSV + $(fmt "$invoices") UBL + manifest ($(fmt "$files") files, $(mb "$bytes")) written, synced (one syncfs) and published | $first_s s (median of $runs: $(list "$work/first.txt" 1)); CPU user $first_user s + sys $first_sys s | target < 5 s |"
echo "| peak RSS of that run (\`/usr/bin/time -v\`) | $(mib "$first_rss") (median; $(list "$work/first.txt" 2) KiB) | recorded |"
echo "| re-export of the final month: the same bytes, nothing written | $again_s s (median of $runs: $(list "$work/again.txt" 1)), peak RSS $(mib "$again_rss") | |"
echo "| anchor: Python writing the same $(fmt "$files") files ($(mb "$bytes")) as the export publishes them (hidden directory, one syncfs, directory fsynced, rename) | $anchor_s s (median of $runs: $(list "$work/anchor.txt" 1)) | anchor: the file I/O alone |"
echo "| (setup, untimed) \`POST /api/v1/billing/import\`: $(fmt $((customers * 9))) time entries + $(fmt "$customers") on-call requests | $(fmt "$import_ms") ms (median of $runs) | |"
echo
echo "| target | measured | |"
echo "| --- | --- | --- |"
echo "| $(fmt "$invoices") billing accounts × 12 lines invoiced and exported (CSV + UBL) in under 5 s on 2 cores | $first_s s median (slowest $(col "$work/first.txt" 1 | sort -g | tail -n1) s) | $(verdict "$first_s < 5") |"
echo "| peak RSS recorded | $(mib "$first_rss") median, $(mib "$max_rss") at most | recorded |"
