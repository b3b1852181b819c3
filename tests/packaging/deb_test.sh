#!/usr/bin/env bash
# The .deb on this machine (issue [operations], docs/packaging.md): dpkg -i, the files where
# they belong and owned right, the slmhub user, the server started as that user answering
# /readyz, `slmhub migrate` idempotent, then dpkg --purge leaving no user, data or unit behind.
#   tests/packaging/deb_test.sh PATH_TO_DEB
# With systemd running, the unit the postinst started is the server under test (on a free port
# through a drop-in); otherwise the binary is started by hand as the slmhub user. HTTP goes to
# 127.0.0.1 only. The machine is restored on every exit, failures included. Exit 77 (skipped,
# one line saying why) without root or dpkg, or where slmhub is already installed: the purge
# would delete that installation's data.
set -euo pipefail

deb=${1:?usage: $0 PATH_TO_DEB}
skip() {
  echo "deb_test: skipped: $*"
  exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (it installs the package with dpkg -i)"
command -v dpkg >/dev/null 2>&1 || skip "dpkg is absent: not a Debian system"
[ -f "$deb" ] || {
  echo "deb_test: $deb: no such file" >&2
  exit 1
}
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
status=$(dpkg-query -W -f='${db:Status-Status}' slmhub 2>/dev/null || true)
case "$status" in
  "" | not-installed) ;;
  *) skip "slmhub is on this machine already (dpkg: $status); the purge would delete its data" ;;
esac
for leftover in /var/lib/slmhub /etc/slmhub; do
  [ ! -e "$leftover" ] || skip "$leftover exists already; the purge at the end would delete it"
done
if getent passwd slmhub >/dev/null || getent group slmhub >/dev/null; then
  skip "a slmhub user or group exists already; the purge at the end would delete it"
fi

SLMHUB=/usr/lib/slmhub/bin/slmhub
CONFIG=/etc/slmhub/slmhub.properties
STATE=/var/lib/slmhub
DROPIN_DIR=/etc/systemd/system/slmhub.service.d
DROPIN=$DROPIN_DIR/zz-deb-test.conf
systemd=no
[ -d /run/systemd/system ] && systemd=yes
work=$(mktemp -d)
chmod 0755 "$work"
server_pid=
failures=0

cleanup() {
  local rc=$?
  set +e
  # A failure while the server started may come before its pid was read.
  [ -n "$server_pid" ] || server_pid=$(cat "$work/run/server.pid" 2>/dev/null)
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    for _ in $(seq 1 100); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  [ "$systemd" = no ] || systemctl stop slmhub.service 2>/dev/null
  # Any process left to the slmhub user (the test made it) would keep the purge from
  # deleting the user.
  if getent passwd slmhub >/dev/null; then
    for proc in /proc/[0-9]*; do
      [ "$(stat -c %U "$proc" 2>/dev/null)" != slmhub ] || kill -KILL "${proc#/proc/}" 2>/dev/null
    done
    sleep 0.5
  fi
  status=$(dpkg-query -W -f='${db:Status-Status}' slmhub 2>/dev/null)
  if [ -n "$status" ] && [ "$status" != not-installed ]; then
    dpkg --purge slmhub >"$work/purge.log" 2>&1 || cat "$work/purge.log" >&2
  fi
  # Whatever a failed purge left: none of it existed before the test (checked above).
  if [ -f "$DROPIN" ]; then
    rm -f "$DROPIN"
    rmdir "$DROPIN_DIR" 2>/dev/null
    [ "$systemd" = no ] || systemctl daemon-reload
  fi
  getent passwd slmhub >/dev/null && userdel slmhub
  getent group slmhub >/dev/null && groupdel slmhub
  rm -rf "$STATE" /etc/slmhub "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
check() {  # description, command...
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else fail "$what"; fi
}
owner_mode() { stat -c '%U:%G %a' "$1"; }
user_of() { stat -c %U "/proc/$1" 2>/dev/null || true; }
http_status() {  # URL -> the status code, 000 when nothing answers
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" || true
  else
    python3 - "$1" <<'EOF' || echo 000
import sys, urllib.error, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=5).status)
except urllib.error.HTTPError as e:
    print(e.code)
EOF
  fi
}
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# --- lintian, when it is installed: no errors (the issue's acceptance) ----------------------
if command -v lintian >/dev/null 2>&1; then
  if lintian --fail-on error "$deb" >"$work/lintian.log" 2>&1; then
    echo "ok: lintian reports no errors"
  else
    cat "$work/lintian.log" >&2
    fail "lintian reports errors"
  fi
fi

# --- install ---------------------------------------------------------------------------------
port=
if [ "$systemd" = yes ]; then
  # The unit the postinst starts listens on a free port of 127.0.0.1, not on 8080.
  port=$(free_port)
  mkdir -p "$DROPIN_DIR"
  printf '[Service]\nEnvironment=SLMHUB_HTTP_HOST=127.0.0.1 SLMHUB_HTTP_PORT=%s\n' "$port" \
    >"$DROPIN"
  systemctl daemon-reload
fi
if ! dpkg -i "$deb" >"$work/install.log" 2>&1; then
  # Missing libraries leave the package unpacked; anything else (a failed postinst) is a
  # failure of the package itself.
  if [ "$(dpkg-query -W -f='${db:Status-Status}' slmhub)" = unpacked ]; then
    echo "dpkg -i: dependencies missing, installing them with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get -y -qq install -f >>"$work/install.log" 2>&1 ||
      true
  fi
fi
if [ "$(dpkg-query -W -f='${db:Status-Status}' slmhub)" != installed ]; then
  cat "$work/install.log" >&2
  echo "FAIL: dpkg -i $deb did not install the package" >&2
  exit 1
fi
echo "ok: dpkg -i $(basename "$deb")"

# --- files, owners, the user -------------------------------------------------------------
check "the binary is root's, 0755" test "$(owner_mode $SLMHUB)" = "root:root 755"
check "/usr/bin/slmhub links to it" test "$(readlink -f /usr/bin/slmhub)" = "$SLMHUB"
check "the SDK is in the private lib directory" test -f /usr/lib/slmhub/lib/libslmhub_sdk.so
# Through its RUNPATH ($ORIGIN/../lib), not a build tree's: on a build machine both exist.
sdk=$(ldd $SLMHUB | sed -n 's/.*libslmhub_sdk\.so => \([^ ]*\) .*/\1/p')
check "the binary loads that SDK ($sdk)" \
  test "$(readlink -f "$sdk")" = /usr/lib/slmhub/lib/libslmhub_sdk.so
check "the binary finds every library" sh -c "! ldd $SLMHUB | grep -q 'not found'"
for p in availability billing_export email_intake servicenow tech_alerts workflows; do
  check "plugin $p installed, root's, 0644" \
    test "$(owner_mode /usr/lib/slmhub/plugins/$p.so 2>/dev/null)" = "root:root 644"
done
extra=
for f in /usr/lib/slmhub/plugins/*; do
  case "$(basename "$f")" in
    availability.so | billing_export.so | email_intake.so | servicenow.so | tech_alerts.so) ;;
    workflows.so) ;;
    *) extra="$extra $(basename "$f")" ;;
  esac
done
check "only the shipped plugins installed${extra:+ (also:$extra)}" test -z "$extra"
check "the configuration is root's, 0644" test "$(owner_mode $CONFIG)" = "root:root 644"
check "the configuration is a conffile" \
  sh -c "dpkg-query -W -f='\${Conffiles}' slmhub | grep -q ' $CONFIG '"
check "its store is in $STATE" grep -qx "db.url = sqlite:$STATE/slmhub.db" $CONFIG
check "it has no demo mail queue" grep -qx "plugins.email_intake.queues =" $CONFIG
check "it drafts reports once the month is over everywhere" \
  grep -qx "plugins.availability.timezone = Etc/GMT+12" $CONFIG
check "the unit is installed" test -f /lib/systemd/system/slmhub.service
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd slmhub) || true
check "the user slmhub: system ($uid), home $home, shell $shell" \
  test "${uid:-1000}" -lt 1000 -a "$home" = "$STATE" -a "${shell##*/}" = nologin
check "the group slmhub" sh -c 'getent group slmhub >/dev/null'
check "$STATE is slmhub's, 0750" test "$(owner_mode $STATE)" = "slmhub:slmhub 750"
check "the postinst migrated the store" test -s "$STATE/slmhub.db"
if command -v deb-systemd-helper >/dev/null 2>&1 || [ "$systemd" = yes ]; then
  check "the unit is enabled" test -L /etc/systemd/system/multi-user.target.wants/slmhub.service
fi
if command -v systemd-analyze >/dev/null 2>&1; then
  # Only slmhub.service's own lines: other units on the machine may have their own issues.
  systemd-analyze verify slmhub.service >"$work/verify.log" 2>&1 || true
  check "systemd-analyze verify slmhub.service" \
    sh -c "! grep -q '^slmhub.service' '$work/verify.log'"
fi

# --- the server as the service user, /readyz -----------------------------------------------
if [ "$systemd" = yes ]; then
  check "the postinst started the unit" systemctl --quiet is-active slmhub.service
  server_user=$(user_of "$(systemctl show -p MainPID --value slmhub.service)")
else
  # As the unit runs it: the slmhub user, from its state directory. sh -c exec leaves the pid
  # of the server itself in the file (runuser would SIGKILL it 2 s after forwarding SIGTERM).
  install -d -o slmhub -g slmhub "$work/run"
  # shellcheck disable=SC2016 # $$, $1... are the inner shell's.
  (cd "$STATE" && SLMHUB_HTTP_HOST=127.0.0.1 SLMHUB_HTTP_PORT=0 SLMHUB_HTTP_PUBLIC_URL='' \
    runuser -u slmhub -- sh -c 'echo $$ >"$1"; exec "$2" serve --config "$3"' sh \
    "$work/run/server.pid" "$SLMHUB" "$CONFIG" >"$work/server.out" 2>"$work/server.err") &
  for _ in $(seq 1 600); do
    [ -s "$work/run/server.pid" ] && server_pid=$(cat "$work/run/server.pid")
    # The server's output file may not exist yet: the background shell opens it.
    port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$work/server.out" 2>/dev/null || true)
    [ -n "$port" ] && break
    if [ -n "$server_pid" ] && ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  server_pid=$(cat "$work/run/server.pid" 2>/dev/null || true)
  if [ -z "$port" ] || [ -z "$server_pid" ]; then
    cat "$work/server.out" "$work/server.err" >&2
    echo "FAIL: slmhub serve did not start within 60 s" >&2
    exit 1
  fi
  server_user=$(user_of "$server_pid")
fi
check "the server runs as slmhub" test "$server_user" = slmhub
code=000
for _ in $(seq 1 120); do
  code=$(http_status "http://127.0.0.1:$port/readyz")
  [ "$code" = 200 ] && break
  sleep 0.5
done
check "GET /readyz answers 200 (got $code)" test "$code" = 200
check "the admin token is slmhub's, 0600" \
  test "$(owner_mode $STATE/admin.token)" = "slmhub:slmhub 600"

# --- stop, then migrate twice: nothing left to apply, the same versions ----------------------
if [ "$systemd" = yes ]; then
  systemctl stop slmhub.service
  check "the unit stopped" sh -c '! systemctl --quiet is-active slmhub.service'
else
  kill -TERM "$server_pid"
  for _ in $(seq 1 300); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  check "the server stopped on SIGTERM" sh -c "! kill -0 $server_pid 2>/dev/null"
  server_pid=
fi
migrate() {
  (cd "$STATE" &&
    runuser -u slmhub -- "$SLMHUB" migrate --config "$CONFIG" 2>>"$work/migrate.err")
}
first=$(migrate) || fail "slmhub migrate (first run) failed"
second=$(migrate) || fail "slmhub migrate (second run) failed"
check "slmhub migrate lists the host's schema" grep -q '^host ' <<<"$first"
check "slmhub migrate is idempotent" test "$first" = "$second"
check "every file in $STATE is slmhub's" test -z "$(find "$STATE" ! -user slmhub)"

# --- purge: the machine as it was --------------------------------------------------------------
if dpkg --purge slmhub >"$work/purge.log" 2>&1; then
  echo "ok: dpkg --purge slmhub"
else
  cat "$work/purge.log" >&2
  fail "dpkg --purge slmhub"
fi
status=$(dpkg-query -W -f='${db:Status-Status}' slmhub 2>/dev/null || echo not-installed)
check "the package is gone" test "$status" = not-installed
check "the user is gone" sh -c '! getent passwd slmhub >/dev/null'
check "the group is gone" sh -c '! getent group slmhub >/dev/null'
check "$STATE is gone" test ! -e "$STATE"
check "/etc/slmhub is gone" test ! -e /etc/slmhub
check "/usr/lib/slmhub is gone" test ! -e /usr/lib/slmhub
check "no unit link or mask is left" sh -c '! ls /etc/systemd/system/slmhub.service \
  /etc/systemd/system/*.wants/slmhub.service 2>/dev/null | grep -q .'

if [ "$failures" -gt 0 ]; then
  echo "deb_test: $failures check(s) failed" >&2
  exit 1
fi
echo "deb_test: all checks passed"
