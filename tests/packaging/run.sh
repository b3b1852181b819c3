#!/bin/sh
# The ctest entry package_tests: builds the .deb of BUILD_DIR with CPack, then installs and
# checks it (deb_test.sh). The reasons to skip come first, so a run without root costs nothing.
#   tests/packaging/run.sh BUILD_DIR
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: $0 BUILD_DIR}
if [ "$(id -u)" != 0 ]; then
  echo "package_tests: skipped: needs root (it installs the package with dpkg -i)"
  exit 77
fi
if ! command -v dpkg >/dev/null 2>&1; then
  echo "package_tests: skipped: dpkg is absent: not a Debian system"
  exit 77
fi
deb=$("$here/../../packaging/cpack-deb.sh" "$build")
exec "$here/deb_test.sh" "$deb"
