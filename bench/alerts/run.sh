#!/usr/bin/env bash
# make bench-alerts: the [alerts] benchmark in one run on 127.0.0.1.
#  1. Render and queue (three times, median): an outage alert to 10,000 recipients (5,000 subscribed customers ×
#     2 contacts) — audience resolved, 10,000 × 3 templates rendered, 10,000 deliveries and
#     outbox messages committed — timed as the POST /api/v1/alerts request. Target < 1 s.
#  2. Delivery: until all 10,000 are accepted by a local SMTP server (aiosmtpd, the tests'
#     recorder), beside the anchors: Python's smtplib sending the very messages slmhub sent
#     (the bytes the server recorded in the first run, same envelopes) to the same server, one
#     connection per message, all on one connection, and on four connections at once (what the
#     server accepts at most). Each run of slmhub is followed by one of each anchor.
# Prints Markdown tables for bench/RESULTS.md.
#   bench/alerts/run.sh BUILD_DIR [RECIPIENTS] [RUNS]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
recipients=${2:-10000}
runs=${3:-3}
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
  for _ in $(seq 1 1200); do
    if grep -q "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "no '$2' in $1: $(tail -n 20 "$1" 2>/dev/null)" >&2
  return 1
}
now_ms() { date +%s%3N; }

# The SMTP server: the tests' recorder, without TLS, writing what it receives to $work/smtp.
# It runs until its stdin closes: a FIFO this shell holds open until it exits.
mkdir -p "$work/smtp"
mkfifo "$work/smtp.in"
exec 3<>"$work/smtp.in"
# Nothing is ever written here: `read -t` on it is a sleep without starting a process.
mkfifo "$work/tick"
exec 4<>"$work/tick"
"$python" "$root/tests/support/smtp_recorder.py" --dir "$work/smtp" <"$work/smtp.in" \
  >"$work/smtp.out" 2>"$work/smtp.err" &
smtp_pid=$!
pids+=($!)
wait_line "$work/smtp.out" "^ready"
# The SMTP server's CPU time (user + system, in clock ticks) so far: what each sender costs it.
smtp_ticks() { ticks "$smtp_pid"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
smtp_port=$(awk '/^ready/ {print $2}' "$work/smtp.out")

customers=$((recipients / 2))
"$python" - "$customers" >"$work/dataset.json" <<'PY'
import json, sys
n = int(sys.argv[1])
customers = [{
    "id": f"c{i:05d}", "name": f"Customer {i}", "billing_code": f"B{i:05d}",
    "subscriptions": [{"service": "oracle-prod", "monthly_charge_cents": 100000}],
    "contacts": [
        {"role": "technical_primary", "name": f"Tech {i}", "email": f"tech{i}@c{i}.example.org"},
        {"role": "outage", "name": f"Outage {i}", "email": f"outage{i}@c{i}.example.org"},
        {"role": "billing", "name": f"Billing {i}", "email": f"billing{i}@c{i}.example.org"}]}
    for i in range(n)]
print(json.dumps({
    "timezone": "America/Chicago",
    "services": [{"id": "oracle-prod", "name": "Oracle Database (Production)",
                  "environment": "production", "hours": "24x7", "target_percent": 99.75}],
    "customers": customers}))
PY

mkdir -p "$work/plugins"
ln -s "$build/plugins/tech_alerts.so" "$work/plugins/tech_alerts.so"
# One server per outbox.concurrency compared (SLMHUB_BENCH_LANES, default "4 8"), each with its
# own store and the same data, all sending to the one SMTP server: the settings take turns
# within each run, so they meet the same machine.
lane_settings=(${SLMHUB_BENCH_LANES:-4 8})
declare -A port token server_pid
for lanes in "${lane_settings[@]}"; do
  env SLMHUB_DB_URL="sqlite:$work/alerts-$lanes.db" SLMHUB_HTTP_PORT=0 SLMHUB_LOG_LEVEL=info \
    SLMHUB_HTTP_MAX_BODY_BYTES=100000000 SLMHUB_OUTBOX_CONCURRENCY="$lanes" \
    SLMHUB_AUTH_ADMIN_TOKEN_FILE="$work/admin-$lanes.token" SLMHUB_PLUGINS_DIR="$work/plugins" \
    SLMHUB_PLUGINS_TECH_ALERTS_SMTP_HOST=127.0.0.1 SLMHUB_PLUGINS_TECH_ALERTS_SMTP_PORT="$smtp_port" \
    SLMHUB_PLUGINS_TECH_ALERTS_SMTP_TLS=none SLMHUB_PLUGINS_TECH_ALERTS_SMTP_FROM=alerts@example.org \
    SLMHUB_PLUGINS_TECH_ALERTS_NOTICES_SCHEDULE="0 0 1 1 *" \
    "$build/host/slmhub" serve >"$work/slmhub-$lanes.out" 2>"$work/slmhub-$lanes.err" &
  pids+=($!)
  server_pid[$lanes]=$!
  wait_line "$work/slmhub-$lanes.out" "listening on"
  port[$lanes]=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/slmhub-$lanes.out" | head -n1)
  token[$lanes]=$(cat "$work/admin-$lanes.token")
  curl -sS --fail-with-body -H "Authorization: Bearer ${token[$lanes]}" -H 'Content-Type: application/json' \
    -X POST --data-binary @"$work/dataset.json" "http://127.0.0.1:${port[$lanes]}/api/v1/import" >/dev/null
done
api() { # lanes curl-args... -> the request to that server
  local lanes=$1
  shift
  curl -sS --fail-with-body -H "Authorization: Bearer ${token[$lanes]}" -H 'Content-Type: application/json' "$@"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# The anchors: smtplib replaying the first run's messages as the server recorded them (same
# bytes, same envelopes; read before the clock starts) over `connections` connections at once,
# or one connection per message with 0.
anchor() { # connections -> ms
  "$python" - "$smtp_port" "$work/smtp" "$queued" "$1" <<'PY'
import json, multiprocessing, os, smtplib, sys, time
port, directory, n, connections = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
messages = []
for i in range(1, n + 1):
    stem = os.path.join(directory, "%06d" % i)
    with open(stem + ".json") as f:
        envelope = json.load(f)
    with open(stem + ".eml", "rb") as f:
        messages.append((envelope["mail_from"], envelope["rcpt_tos"], f.read()))

def send(part):
    s = smtplib.SMTP("127.0.0.1", port)
    for mail_from, rcpt_tos, data in part:
        s.sendmail(mail_from, rcpt_tos, data)
    s.quit()

t = time.monotonic()
if connections == 0:
    for mail_from, rcpt_tos, data in messages:
        with smtplib.SMTP("127.0.0.1", port) as one:
            one.sendmail(mail_from, rcpt_tos, data)
else:
    workers = [multiprocessing.Process(target=send, args=(messages[k::connections],))
               for k in range(connections)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
        if w.exitcode != 0:
            sys.exit("an anchor sender failed")
print(int((time.monotonic() - t) * 1000))
PY
}

# Three alerts per server, each delivered in full before the next, so queueing never competes
# with sending and no two servers send at once.
for f in render anchor0 anchor1 anchor4 cpu_anchor0 cpu_anchor1 cpu_anchor4; do : >"$work/$f.txt"; done
for lanes in "${lane_settings[@]}"; do : >"$work/deliver-$lanes.txt" >"$work/drain-$lanes.txt" >"$work/cpu_slmhub-$lanes.txt" >"$work/cpu_own-$lanes.txt"; done
# Run 0 warms up (the first run on this VM is often half as fast, for slmhub and the anchors
# alike) and is not counted.
keep() { if [ "$r" -gt 0 ]; then cat >>"$1"; else cat >/dev/null; fi; }
for r in $(seq 0 "$runs"); do
  for lanes in "${lane_settings[@]}"; do
    db="$work/alerts-$lanes.db"
    body="{\"kind\":\"outage\",\"title\":\"Oracle production is down ($r)\",\"summary\":\"The listener stopped at 10:02; the DBAs are on it.\",\"services\":[\"oracle-prod\"]}"
    received=$(find "$work/smtp" -name '*.json' | wc -l)
    c0=$(smtp_ticks)
    s0=$(ticks "${server_pid[$lanes]}")
    t0=$(now_ms)
    api "$lanes" -X POST -d "$body" "http://127.0.0.1:${port[$lanes]}/api/v1/alerts" >"$work/alert.json"
    t1=$(now_ms)
    id=$(sed -n 's/.*"id":"\(TA-[0-9]*\)".*/\1/p' "$work/alert.json")
    queued=$(sqlite3 "$db" "SELECT COUNT(*) FROM tech_alerts_deliveries WHERE alert_id = '$id'")
    echo "$((t1 - t0))" | keep "$work/render.txt"
    # The end is when the server accepted the last message: its record, written just before
    # the 250 reply. Waited for with shell built-ins only, so the clock costs the machine
    # nothing while slmhub sends (a sqlite3 query ten times a second took ~5 % of a core).
    last=$(printf '%s/smtp/%06d.json' "$work" $((received + queued)))
    for _ in $(seq 1 30000); do
      [ -e "$last" ] && break
      read -r -t 0.02 -u 4 || true
    done
    t2=$(stat -c %.3Y "$last" | tr -d .)
    for _ in $(seq 1 600); do  # and every delivery recorded as sent, untimed
      sent=$(sqlite3 "$db" "SELECT COUNT(*) FROM tech_alerts_deliveries WHERE alert_id = '$id' AND state = 'sent'")
      [ "$sent" -ge "$queued" ] && break
      sleep 0.1
    done
    [ "$sent" -ge "$queued" ] || { echo "alert $id: $sent of $queued deliveries sent" >&2; exit 1; }
    echo "$((t2 - t0))" | keep "$work/deliver-$lanes.txt"
    echo "$((t2 - t1))" | keep "$work/drain-$lanes.txt"
    echo "$(($(smtp_ticks) - c0))" | keep "$work/cpu_slmhub-$lanes.txt"
    echo "$(($(ticks "${server_pid[$lanes]}") - s0))" | keep "$work/cpu_own-$lanes.txt"
  done
  for c in 0 1 4; do
    c0=$(smtp_ticks)
    anchor "$c" | keep "$work/anchor$c.txt"
    echo "$(($(smtp_ticks) - c0))" | keep "$work/cpu_anchor$c.txt"
  done
done
cat "$work"/slmhub-*.err | grep "rendered and queued" | sed 's/^/  server log: /' >&2 || true
render_ms=$(median <"$work/render.txt")
size=$(($(seq -f "$work/smtp/%06g.eml" 1 "$queued" | xargs cat | wc -c) / queued))
lines=$(wc -l <"$work/smtp/000001.eml")
anchor0_ms=$(median <"$work/anchor0.txt")
anchor1_ms=$(median <"$work/anchor1.txt")
anchor4_ms=$(median <"$work/anchor4.txt")
# The server's CPU per message in µs (median over the runs).
per_msg() { awk -v n="$queued" -v hz="$(getconf CLK_TCK)" '{print int($1 * 1000000 / hz / n)}' "$1" | median; }
rate() { awk -v n="$1" -v ms="$2" 'BEGIN {printf "%.0f", n * 1000 / ms}'; }
paired() { paste "$1" "$2" | awk '{printf "%s%.0f", (NR > 1 ? "/" : ""), 100 * $2 / $1}'; } # rate ratio per run
paired_median() { paste "$1" "$2" | awk '{printf "%.0f\n", 100 * $2 / $1}' | median; }
rates() { awk -v n="$queued" '{printf "%s%.0f", (NR > 1 ? "/" : ""), n * 1000 / $1}' "$1"; } # every run, in order

echo "| date | machine | what | figure | |"
echo "| --- | --- | --- | --- | --- |"
echo "| $(date -u +%F) | $(nproc) cores, SQLite | POST /api/v1/alerts: $queued recipients resolved, rendered (subject, text, HTML) and queued | $render_ms ms (median of $(wc -l <"$work/render.txt"); $(paste -sd/ "$work/render.txt")) | target < 1,000 ms |"
pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", 100 * a / b}'; }
echo "| $(date -u +%F) | $(nproc) cores, aiosmtpd on 127.0.0.1 | smtplib, the same $queued messages (~$size bytes, $lines lines) one connection per message | $(rate "$queued" "$anchor0_ms") msg/s | anchor; the server's CPU per message $(per_msg "$work/cpu_anchor0.txt") µs |"
echo "| $(date -u +%F) | $(nproc) cores, aiosmtpd on 127.0.0.1 | smtplib, the same messages on one connection | $(rate "$queued" "$anchor1_ms") msg/s | anchor; server CPU $(per_msg "$work/cpu_anchor1.txt") µs/msg |"
echo "| $(date -u +%F) | $(nproc) cores, aiosmtpd on 127.0.0.1 | smtplib, the same messages on four connections at once | $(rate "$queued" "$anchor4_ms") msg/s | anchor: what the server accepts; server CPU $(per_msg "$work/cpu_anchor4.txt") µs/msg; runs: $(rates "$work/anchor4.txt") msg/s |"
for lanes in "${lane_settings[@]}"; do
  deliver_ms=$(median <"$work/deliver-$lanes.txt")
  drain_ms=$(median <"$work/drain-$lanes.txt")
  echo "| $(date -u +%F) | $(nproc) cores, aiosmtpd on 127.0.0.1 | slmhub outbox → SMTP, all $queued delivered (from the POST; outbox.concurrency $lanes) | $(rate "$queued" "$deliver_ms") msg/s | $(pct "$anchor0_ms" "$deliver_ms") % of one per connection, $(pct "$anchor1_ms" "$deliver_ms") % of one connection, $(pct "$anchor4_ms" "$deliver_ms") % of four; server CPU $(per_msg "$work/cpu_slmhub-$lanes.txt") µs/msg; slmhub's own CPU (render and queue included) $(per_msg "$work/cpu_own-$lanes.txt") µs/msg |"
  echo "| $(date -u +%F) | $(nproc) cores, aiosmtpd on 127.0.0.1 | the same, from the POST's answer (queued) to the last message accepted | $(rate "$queued" "$drain_ms") msg/s | $(pct "$anchor1_ms" "$drain_ms") % of one connection, $(pct "$anchor4_ms" "$drain_ms") % of four; runs: $(rates "$work/drain-$lanes.txt") msg/s; each run against the four-connection anchor that followed it: $(paired "$work/drain-$lanes.txt" "$work/anchor4.txt") % (median $(paired_median "$work/drain-$lanes.txt" "$work/anchor4.txt") %) |"
done
