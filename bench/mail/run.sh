#!/usr/bin/env bash
# The mail benchmark (make bench-mail; bench/RESULTS.md, [email]): in one run, on one corpus,
#  1. parse only: slmhub's parse_mail and bare GMime (bench_mail_parse), Python's `email`
#     (python_parse.py, Debian's /usr/bin/python3);
#  2. end to end: the real `slmhub serve` (SQLite, synchronous=FULL, fresh store per run) with
#     the email_intake plugin's LMTP listener, loaded by bench_mail_lmtp over N connections;
#     every message must get its 250 with the right ticket, then the store must hold exactly
#     the tickets, messages, attachments and queued auto-replies the corpus implies;
#  3. one 25 MiB message over LMTP into a fresh server: its peak RSS growth;
#  4. Request Tracker 5's rt-mailgate on the first messages of the corpus (bench/mail/rt.sh),
#     when request-tracker5 and rt5-db-sqlite are installed.
# Builds nothing (make bench-mail does). Prints the Markdown tables for bench/RESULTS.md.
#   bench/mail/run.sh BUILD_DIR [--repeat N] [--count N] [--connections N] [--rt-count N]
#                     [--rt-concurrency "1 8"] [--no-rt] [--keep DIR]
# PERF=1 records `perf record --call-graph dwarf` of the server during one extra LMTP run (perf.txt in the
# work directory, kept).
set -euo pipefail
build=${1:?usage: bench/mail/run.sh BUILD_DIR [options]}
shift
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$build" && pwd)
repeat=3
count=2000
connections=8
rt_count=200
rt_concurrency="1 8"
rt=1
keep=
while [ $# -gt 0 ]; do
  case $1 in
    --repeat) repeat=$2; shift 2 ;;
    --count) count=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --rt-count) rt_count=$2; shift 2 ;;
    --rt-concurrency) rt_concurrency=$2; shift 2 ;;
    --no-rt) rt=0; shift ;;
    --keep) keep=$2; shift 2 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
slmhub="$build/host/slmhub"
for p in "$slmhub" "$build/plugins/email_intake.so" "$build/bench/mail/bench_mail_parse" \
  "$build/bench/mail/bench_mail_lmtp"; do
  [ -e "$p" ] || { echo "run.sh: $p is missing; build slmhub email_intake bench_mail_parse bench_mail_lmtp first" >&2; exit 1; }
done
python=/usr/bin/python3
if [ -n "$keep" ]; then
  mkdir -p "$keep"
  work=$(cd "$keep" && pwd)
else
  work=$(mktemp -d)
fi
server_pid=
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
cleanup() { stop_server; [ -n "$keep" ] || rm -rf "$work"; }
trap cleanup EXIT

kv() {  # file key -> value
  grep -oE "(^| )$2=[^ ]+" "$1" | head -n1 | sed 's/.*=//'
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
free_port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
fail() { echo "run.sh: FAILED: $*" >&2; trap - EXIT; stop_server; echo "files kept in $work" >&2; exit 1; }

start_server() {  # dir -> sets server_pid, lmtp_port
  local dir=$1
  rm -rf "$dir"  # a fresh store, also when --keep names the directory of an earlier run
  mkdir -p "$dir"
  lmtp_port=$(free_port)
  SLMHUB_DB_URL="sqlite:$dir/slmhub.db" SLMHUB_HTTP_PORT=0 \
    SLMHUB_AUTH_ADMIN_TOKEN_FILE="$dir/admin.token" \
    SLMHUB_PLUGINS_DIR="$build/plugins" SLMHUB_PLUGINS_ENABLED=email_intake \
    SLMHUB_PLUGINS_EMAIL_INTAKE_QUEUES=db-requests:DBR:db-requests@example.org \
    SLMHUB_PLUGINS_EMAIL_INTAKE_LMTP_LISTEN="127.0.0.1:$lmtp_port" \
    "$slmhub" serve >"$dir/server.out" 2>"$dir/server.err" &
  server_pid=$!
  for _ in $(seq 1 300); do
    grep -q "LMTP listening" "$dir/server.out" "$dir/server.err" 2>/dev/null && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  fail "the server did not start: $(tail -n 5 "$dir/server.err" "$dir/server.out")"
}

q() { sqlite3 "$1/slmhub.db" "$2"; }

check_store() {  # dir client.out -> fails unless the store holds what the corpus implies
  local dir=$1 out=$2
  local tickets messages autoreplies quarantined
  tickets=$(q "$dir" "SELECT COUNT(*) FROM tickets")
  messages=$(q "$dir" "SELECT COUNT(*) FROM ticket_messages WHERE direction = 'in'")
  autoreplies=$(q "$dir" "SELECT COUNT(*) FROM outbox WHERE channel = 'email' AND subject LIKE '[DBR%'")
  quarantined=$(q "$dir" "SELECT COUNT(*) FROM mail_quarantine")
  [ "$tickets" = "$(kv "$out" expected_tickets)" ] ||
    fail "$dir: $tickets tickets, expected $(kv "$out" expected_tickets)"
  [ "$messages" = "$(kv "$out" messages)" ] ||
    fail "$dir: $messages ticket messages, expected $(kv "$out" messages)"
  [ "$autoreplies" = "$(kv "$out" expected_autoreplies)" ] ||
    fail "$dir: $autoreplies auto-replies in the outbox, expected $(kv "$out" expected_autoreplies)"
  [ "$quarantined" = 0 ] || fail "$dir: $quarantined messages quarantined"
  echo "store_tickets=$tickets store_messages=$messages store_autoreplies=$autoreplies" \
    "store_attachments=$(q "$dir" "SELECT COUNT(*) FROM mail_attachments")" \
    "store_mail_rows=$(q "$dir" "SELECT COUNT(*) FROM mail_messages")"
}

echo "generating the corpus into $work/corpus ..." >&2
"$python" "$here/generate.py" "$work/corpus" --count "$count" | tee "$work/generate.out" >&2

echo "parse only: parse_mail and bare GMime ..." >&2
"$build/bench/mail/bench_mail_parse" "$work/corpus" --repeat "$((repeat * 2 - 1))" |
  tee "$work/parse.out" >&2
echo "parse only: Python's email ..." >&2
"$python" "$here/python_parse.py" "$work/corpus" --repeat "$repeat" | tee "$work/python.out" >&2

: >"$work/lmtp.all"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$repeat"); do
  echo "LMTP run $r of $repeat: $count messages over $connections connections into a fresh store ..." >&2
  start_server "$work/lmtp$r"
  "$build/bench/mail/bench_mail_lmtp" --port "$lmtp_port" --corpus "$work/corpus" \
    --connections "$connections" --server-pid "$server_pid" >"$work/lmtp$r.out" ||
    fail "LMTP run $r: the client failed (see above; server log $work/lmtp$r/server.err)"
  check_store "$work/lmtp$r" "$work/lmtp$r.out" >"$work/lmtp$r.store"
  cat "$work/lmtp$r.store" >>"$work/lmtp$r.out"
  [ "$(kv "$work/lmtp$r.out" store_attachments)" = "$(kv "$work/parse.out" parse_mail_attachments)" ] ||
    fail "LMTP run $r: $(kv "$work/lmtp$r.out" store_attachments) attachments stored, parse_mail finds $(kv "$work/parse.out" parse_mail_attachments)"
  echo "server_vmhwm_kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status")" >>"$work/lmtp$r.out"
  stop_server
  cat "$work/lmtp$r.out" >&2
  cat "$work/lmtp$r.out" >>"$work/lmtp.all"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
lmtp_median() { grep -oE "(^| )$1=[^ ]+" "$work/lmtp.all" | sed 's/.*=//' | median; }
l_rate=$(lmtp_median msgs_per_s); l_mbs=$(lmtp_median mb_per_s)
l_p50=$(lmtp_median p50_ms); l_p99=$(lmtp_median p99_ms); l_cpu=$(lmtp_median server_cpu_us_per_msg); l_ccpu=$(lmtp_median client_cpu_us_per_msg)
l_rates=$(grep -oE "msgs_per_s=[^ ]+" "$work/lmtp.all" | sed 's/.*=//' | paste -sd/ -)

if [ "${PERF:-0}" = 1 ]; then
  echo "LMTP run under perf record (DWARF call graphs) ..." >&2
  start_server "$work/lmtpperf"
  perf record --call-graph dwarf,16384 -o "$work/perf.data" -p "$server_pid" >/dev/null 2>&1 &
  perf_pid=$!
  sleep 1
  "$build/bench/mail/bench_mail_lmtp" --port "$lmtp_port" --corpus "$work/corpus" \
    --connections "$connections" --server-pid "$server_pid" >"$work/lmtpperf.out" || true
  kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
  stop_server
  perf report -i "$work/perf.data" --no-children --sort dso,sym --stdio 2>/dev/null |
    grep -v '^$' | head -n 200 >"$work/perf.txt" || true
  cat "$work/lmtpperf.out" >&2
  echo "perf profile: $work/perf.txt" >&2
fi

echo "one 25 MiB message over LMTP into a fresh server ..." >&2
start_server "$work/big"
first=$(awk -F'\t' '$2 == "new" {print $1; exit}' "$work/corpus/manifest.tsv")
"$build/bench/mail/bench_mail_lmtp" --port "$lmtp_port" --corpus "$work/corpus" --connections 1 \
  --only "$first" >"$work/warm.out" || fail "the warm-up message was not delivered"
sleep 1
reset=no
if echo 5 >"/proc/$server_pid/clear_refs" 2>/dev/null; then reset=yes; fi
rss_before=$(awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status")
hwm_before=$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status")
"$build/bench/mail/bench_mail_lmtp" --port "$lmtp_port" --corpus "$work/corpus" --connections 1 \
  --only big.eml --server-pid "$server_pid" >"$work/big.out" || fail "the 25 MiB message was not delivered"
hwm_after=$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status")
stop_server
big_bytes=$(kv "$work/big.out" bytes)
big_seconds=$(kv "$work/big.out" seconds)
# The peak over the resident size just before (the peak itself when it could not be reset).
base=$rss_before; [ "$reset" = yes ] || base=$hwm_before
growth_kib=$((hwm_after - base))
stored=$(q "$work/big" "SELECT size || ' ' || sha256 FROM mail_attachments WHERE name = 'export-full.dmp'")
expected=$("$python" - "$work/corpus/big.eml" <<'EOF'
import email, email.policy, hashlib, sys
m = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=email.policy.default)
data = next(m.iter_attachments()).get_content()
print(len(data), hashlib.sha256(data).hexdigest())
EOF
)
[ "$stored" = "$expected" ] || fail "the 25 MiB message's attachment is stored as '$stored', expected '$expected'"
[ "$(q "$work/big" "SELECT COUNT(*) FROM tickets")" = 2 ] || fail "the 25 MiB message did not make one ticket"

rt_lines=()
if [ "$rt" = 1 ]; then
  for c in $rt_concurrency; do
    echo "Request Tracker: rt-mailgate, $rt_count messages, $c at a time ..." >&2
    set +e
    "$here/rt.sh" "$work/corpus" "$work/rt$c" "$rt_count" "$c" >"$work/rt$c.out" 2>"$work/rt$c.err"
    rt_status=$?
    set -e
    cat "$work/rt$c.out" >&2
    o=$work/rt$c.out
    if [ "$rt_status" = 0 ]; then
      made=$(kv "$o" rt_tickets)
      note="$made tickets, $(kv "$o" rt_autoreplies) auto-replies recorded"
      # Not fatal: this is the other system's result, and losing mail is part of it.
      if [ "$made" != "$rt_count" ] || [ "$(kv "$o" rt_failures)" != 0 ]; then
        note="$note; **$((rt_count - made)) message(s) made no ticket** ($(kv "$o" rt_failures) rt-mailgate failures; RT's log: $work/rt$c/server.log with --keep)"
        echo "run.sh: Request Tracker made $made tickets of $rt_count messages at concurrency $c" >&2
      fi
      rt_lines+=("| Request Tracker $(kv "$o" rt_version) rt-mailgate → tickets (SQLite, rt-server standalone; $rt_count messages, $c rt-mailgate at a time; auto-replies on) | $(kv "$o" rt_tickets_per_s) | $(kv "$o" rt_mb_per_s) | | | $note |")
    elif [ "$rt_status" = 3 ]; then
      rt_lines+=("| Request Tracker rt-mailgate | not installed (apt-get install request-tracker5 rt5-db-sqlite) | | | | |")
      break
    else
      cat "$work/rt$c.err" >&2
      rt_lines+=("| Request Tracker rt-mailgate, $c at a time | failed (rt.sh exit $rt_status): $(tail -n 1 "$work/rt$c.err") | | | | |")
    fi
  done
fi

verdict() { if awk "BEGIN {exit !($1)}"; then echo "met"; else echo "**not met**"; fi; }
p=$work/parse.out; y=$work/python.out
echo
echo "Corpus: $(sed 's/^corpus: //' "$work/generate.out")."
echo "Load average (1, 5, 15 min) before the LMTP runs: $load_before; after: $load_after."
echo "Every LMTP run: all $(kv "$work/lmtp1.out" messages) messages answered 250 with the expected ticket; the store holds $(kv "$work/lmtp1.out" store_tickets) tickets, $(kv "$work/lmtp1.out" store_messages) ticket messages, $(kv "$work/lmtp1.out" store_attachments) attachments, $(kv "$work/lmtp1.out" store_autoreplies) auto-replies queued, nothing quarantined."
echo
echo "| $(date -u +%F), $(nproc) cores | messages/s | MB/s | p50 | p99 | |"
echo "| --- | --- | --- | --- | --- | --- |"
echo "| slmhub LMTP → committed tickets + queued auto-replies ($connections connections, SQLite synchronous=FULL; median of $repeat fresh-store runs: $l_rates msg/s) | $l_rate | $l_mbs | $l_p50 ms | $l_p99 ms | CPU per message: server $l_cpu µs, load client $l_ccpu µs |"
echo "| parse only: slmhub parse_mail (GMime 3 + body, charsets, HTML text, SHA-256; 1 thread) | $(kv "$p" parse_mail_msgs_per_s) | $(kv "$p" parse_mail_mb_per_s) | | | $(kv "$p" parse_mail_subjects_wrong) subjects wrong, $(kv "$p" parse_mail_attachments) attachments |"
echo "| parse only: bare GMime $(pkg-config --modversion gmime-3.0 2>/dev/null) (parse, subject, decode every part; 1 thread) | $(kv "$p" gmime_msgs_per_s) | $(kv "$p" gmime_mb_per_s) | | | |"
echo "| parse only: Python $(kv "$y" python_version) email, policy.default (1 thread) | $(kv "$y" python_msgs_per_s) | $(kv "$y" python_mb_per_s) | | | $(kv "$y" python_subjects_wrong) subjects wrong, $(kv "$y" python_attachments) attachments |"
for line in "${rt_lines[@]}"; do echo "$line"; done
echo
echo "| target | measured | |"
echo "| --- | --- | --- |"
echo "| >= 2,000 messages/s end to end, < 100 KB mail, $connections LMTP connections, durable | $l_rate msg/s | $(verdict "$l_rate >= 2000") |"
awk -v g="$growth_kib" -v b="$big_bytes" -v s="$big_seconds" -v r="$reset" 'BEGIN {
  printf "| 25 MiB message (%d bytes): peak RSS growth < 2x its size | %.1f MiB = %.2fx (%.2f s%s) | ", b, g / 1024, g * 1024 / b, s, r == "yes" ? "" : "; peak not resettable, growth over the earlier peak"
}'
verdict "$growth_kib * 1024 < 2 * $big_bytes" | sed 's/$/ |/'
echo
echo "25 MiB message alone through parse_mail (bench_mail_parse): $(kv "$p" big_parse_seconds) s, peak RSS growth $(awk -v k="$(kv "$p" big_parse_rss_growth_kib)" 'BEGIN {printf "%.1f MiB", k / 1024}')."
