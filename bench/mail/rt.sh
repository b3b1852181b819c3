#!/usr/bin/env bash
# Request Tracker 5 (Debian's request-tracker5 with rt5-db-sqlite) beside slmhub's mail intake:
# a private copy of the SQLite database Debian's dbconfig created, a private site config
# (RT_SITE_CONFIG / RT_SITE_CONFIG_DIR, nothing under /etc is changed), `Everyone` granted
# CreateTicket and ReplyToTicket (what RT's docs ask for mail-created tickets), the standalone
# server (rt-server, Starman) on 127.0.0.1, then `rt-mailgate --action correspond` once per
# message, as an MTA pipe runs it. Auto-replies are on (RT's default scrip) and go to
# Mail::Mailer's test file ($MailCommand 'testfile') instead of an MTA.
#   bench/mail/rt.sh CORPUS_DIR WORK_DIR [COUNT] [CONCURRENCY]
# Delivers the first COUNT corpus messages (default 200: all new mail or alerts, no replies)
# after two warm-up messages, CONCURRENCY rt-mailgate processes at a time (default 1), and
# prints key=value lines. Exit 3 when RT is not installed. rt_tickets counts the tickets RT
# made; rt-mailgate exits 0 also when RT refused a message for good (RT mails the error to the
# sender instead), so fewer tickets than messages with rt_failures=0 is mail RT dropped.
set -euo pipefail
corpus=${1:?usage: rt.sh CORPUS_DIR WORK_DIR [COUNT] [CONCURRENCY]}
work=${2:?usage: rt.sh CORPUS_DIR WORK_DIR [COUNT] [CONCURRENCY]}
count=${3:-200}
concurrency=${4:-1}
rtdb=/var/lib/dbconfig-common/sqlite3/request-tracker5/rtdb
server=/usr/share/request-tracker5/libexec/rt-server
if ! command -v rt-mailgate >/dev/null || [ ! -x "$server" ] || [ ! -r "$rtdb" ]; then
  echo "rt.sh: request-tracker5 with rt5-db-sqlite is not installed (apt-get install" \
    "request-tracker5 rt5-db-sqlite)" >&2
  exit 3
fi
mkdir -p "$work/conf.d"
work=$(cd "$work" && pwd)
cp "$rtdb" "$work/rtdb"
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/RT_SiteConfig.pm" <<EOF
Set(\$rtname, 'bench.example.org');
Set(\$Organization, 'example.org');
Set(\$CorrespondAddress, 'db-requests@example.org');
Set(\$CommentAddress, 'db-requests-comment@example.org');
Set(\$WebPath, '');
Set(\$WebDomain, '127.0.0.1');
Set(\$WebPort, $port);
Set(\$WebBaseURL, 'http://127.0.0.1:$port');
Set(\$DatabaseType, 'SQLite');
Set(\$DatabaseName, '$work/rtdb');
Set(\$MailCommand, 'testfile');
Set(\$LogToSTDERR, 'warning');
Set(\$LogToSyslog, undef);
Set(\$LogToFile, undef);
Set(\$Timezone, 'UTC');
1;
EOF
cat >"$work/acl.pl" <<'EOF'
@ACL = (
    { GroupDomain => 'SystemInternal', GroupType => 'Everyone', Right => 'CreateTicket' },
    { GroupDomain => 'SystemInternal', GroupType => 'Everyone', Right => 'ReplyToTicket' },
);
1;
EOF
export RT_SITE_CONFIG="$work/RT_SiteConfig.pm" RT_SITE_CONFIG_DIR="$work/conf.d"
rt-setup-database --action insert --datafile "$work/acl.pl" --skip-create >"$work/setup.log" 2>&1

"$server" --port "$port" >"$work/server.log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" && break
  sleep 0.1
done

deliver() {  # file -> 0 or rt-mailgate's status
  rt-mailgate --url "http://127.0.0.1:$port/" --queue General --action correspond <"$1" \
    >>"$work/mailgate.log" 2>&1
}
export -f deliver
export port work

# Two warm-up messages from later in the corpus (the first requests load RT's code).
awk -F'\t' -v n="$count" 'NR > n && $2 == "new" && k < 2 {print $1; k++}' "$corpus/manifest.tsv" |
  while read -r f; do deliver "$corpus/$f"; done
before=$(sqlite3 "$work/rtdb" "SELECT COUNT(*) FROM Tickets")

awk -F'\t' -v n="$count" 'NR <= n {print $1}' "$corpus/manifest.tsv" | sed "s|^|$corpus/|" \
  >"$work/files.txt"
expected_autoreplies=$(awk -F'\t' -v n="$count" 'NR <= n && $2 == "new"' "$corpus/manifest.tsv" | wc -l)
bytes=$(awk -F'\t' -v n="$count" 'NR <= n {s += $5} END {print s}' "$corpus/manifest.tsv")
start=$(date +%s.%N)
failures=0
if [ "$concurrency" = 1 ]; then
  while read -r f; do deliver "$f" || failures=$((failures + 1)); done <"$work/files.txt"
else
  # shellcheck disable=SC2016  # expanded by the inner bash
  xargs -P "$concurrency" -I{} bash -c 'deliver "$1" || echo failed >>"$work/failures"' _ {} \
    <"$work/files.txt"
  [ -f "$work/failures" ] && failures=$(wc -l <"$work/failures")
fi
end=$(date +%s.%N)
after=$(sqlite3 "$work/rtdb" "SELECT COUNT(*) FROM Tickets")
autoreplies=$(sqlite3 "$work/rtdb" "SELECT COUNT(*) FROM Transactions t JOIN Tickets k ON k.id = t.ObjectId
  WHERE t.ObjectType = 'RT::Ticket' AND t.Type = 'EmailRecord' AND k.id > $before")
seconds=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f", b - a}')
echo "rt_version=$(dpkg-query -W -f '${Version}' request-tracker5)"
echo "rt_messages=$count rt_concurrency=$concurrency rt_seconds=$seconds"
echo "rt_tickets=$((after - before)) rt_failures=$failures rt_autoreplies=$autoreplies rt_expected_autoreplies=$expected_autoreplies"
awk -v n="$((after - before))" -v s="$seconds" -v b="$bytes" \
  'BEGIN {printf "rt_tickets_per_s=%.2f rt_mb_per_s=%.3f\n", n / s, b / s / 1e6}'
