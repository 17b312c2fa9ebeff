#!/usr/bin/env bash
# valgrind-tests.sh BUILD_DIR [TEST_NAME...]: run integration tests (all, or
# the named ones) with every sipsd under valgrind memcheck, one at a time,
# each bounded to 30 minutes. A test fails on a memcheck error or definite
# leak (see finish() in tests/integration/lib/common.sh) and also on a timing
# check that valgrind's slowdown breaks; the summary tells them apart.
set -uo pipefail
build=$(cd "${1:-build}" && pwd); shift || true
src=$(cd "$(dirname "$0")/.." && pwd)
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in "$src"/tests/integration/*.sh; do names+=("$(basename "$f" .sh)"); done
fi
out=$(mktemp -d)
passed=() memcheck=() other=()
for name in "${names[@]}"; do
  start=$(date +%s)
  SIPSD_VALGRIND=1 SIPSD_BUILD="$build" SIPSD_SRC="$src" \
    timeout 1800 bash "$src/tests/integration/$name.sh" >"$out/$name.log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  if [ "$rc" = 0 ]; then
    passed+=("$name"); echo "pass  $name (${secs}s)"
  elif grep -q '^not ok - valgrind report' "$out/$name.log"; then
    memcheck+=("$name"); echo "FAIL  $name (${secs}s): memcheck report, log $out/$name.log"
  else
    other+=("$name"); echo "fail  $name (${secs}s): $(grep -m1 '^not ok' "$out/$name.log"), log $out/$name.log"
  fi
done
echo "valgrind: ${#passed[@]} passed, ${#memcheck[@]} with memcheck reports, ${#other[@]} failed otherwise (logs in $out)"
[ ${#memcheck[@]} -eq 0 ] && [ ${#other[@]} -eq 0 ]
