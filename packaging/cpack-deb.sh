#!/bin/sh
# Usage: packaging/cpack-deb.sh BUILD_DIR
# Runs CPack in a configured and built BUILD_DIR (packaging/CMakeLists.txt) and prints the path
# of the .deb it made, BUILD_DIR/slmhub_<version>_<arch>.deb, as its only line on stdout;
# CPack's own output goes to stderr. For `make package` and the package test.
set -eu

build=${1:?usage: $0 BUILD_DIR}
build=$(cd "$build" && pwd)
if [ ! -f "$build/CPackConfig.cmake" ]; then
  echo "cpack-deb: $build/CPackConfig.cmake is missing: configure the build first" >&2
  exit 1
fi
log=$build/cpack-deb.log
if ! (cd "$build" && cpack -G DEB --config CPackConfig.cmake) >"$log" 2>&1; then
  cat "$log" >&2
  echo "cpack-deb: cpack failed (log: $log)" >&2
  exit 1
fi
cat "$log" >&2
# "CPack: - package: /path/slmhub_0.1.0_amd64.deb generated."
deb=$(sed -n 's/^CPack: - package: \(.*\.deb\) generated\.$/\1/p' "$log" | tail -n 1)
if [ -z "$deb" ] || [ ! -f "$deb" ]; then
  echo "cpack-deb: no .deb named in $log" >&2
  exit 1
fi
echo "$deb"
