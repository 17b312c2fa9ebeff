# common.sh: helpers for integration tests (sourced). Every process started
# is recorded and stopped by PID on exit; every wait is bounded.
set -euo pipefail

: "${SIPSD_BUILD:?SIPSD_BUILD must point at the build directory}"
: "${SIPSD_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}"
SIPSD="$SIPSD_BUILD/sipsd"
SIPSCTL="$SIPSD_BUILD/sipsctl"

TEST_TMP=$(mktemp -d)
PIDS=()
# SIPSD_VALGRIND=1 runs every daemon under valgrind (memcheck): waits for
# start, stop and log lines grow tenfold, and finish() fails the test on any
# memcheck error or definite leak (make valgrind).
WAIT_SCALE=1
[ "${SIPSD_VALGRIND:-0}" = 1 ] && WAIT_SCALE=10
PASSED=0
FAILED=0

cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq $((50 * WAIT_SCALE))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$TEST_TMP"
}
trap cleanup EXIT

ok() { PASSED=$((PASSED + 1)); echo "ok - $*"; }
not_ok() { FAILED=$((FAILED + 1)); echo "not ok - $*"; }

# check DESCRIPTION COMMAND...: passes when COMMAND exits 0.
check() {
  local desc=$1; shift
  if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# make_pki DIR: the throw-away certificate matrix.
make_pki() {
  bash "$SIPSD_SRC/tests/certs/make-matrix.sh" "$1" >/dev/null 2>&1
}

# start_sipsd NAME CONFIG: start a daemon, log in $TEST_TMP/NAME.log, wait
# until it logs its start line (at most 5 s, times WAIT_SCALE).
start_sipsd() {
  local name=$1 conf=$2
  if [ "${SIPSD_VALGRIND:-0}" = 1 ]; then
    valgrind --quiet --vgdb=no --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
      --log-file="$TEST_TMP/$name.%p.vg" "$SIPSD" -c "$conf" >"$TEST_TMP/$name.log" 2>&1 &
  else
    "$SIPSD" -c "$conf" >"$TEST_TMP/$name.log" 2>&1 &
  fi
  local pid=$!
  PIDS+=("$pid")
  eval "PID_$name=$pid"
  for _ in $(seq $((50 * WAIT_SCALE))); do
    grep -q 'event=start ' "$TEST_TMP/$name.log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "sipsd $name did not start:"; cat "$TEST_TMP/$name.log"
  return 1
}

# stop_pid PID: TERM, then wait (bounded), then KILL.
stop_pid() {
  kill "$1" 2>/dev/null || true
  for _ in $(seq $((50 * WAIT_SCALE))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}

# wait_log FILE PATTERN: wait up to 5 s (times WAIT_SCALE) for PATTERN
# (grep -E) in FILE.
wait_log() {
  for _ in $(seq $((50 * WAIT_SCALE))); do
    grep -Eq "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

finish() {
  # A sanitizer build (make sanitize) reports into the daemons' logs: any
  # report fails the test.
  local f
  for f in "$TEST_TMP"/*.log; do
    [ -f "$f" ] || continue
    if grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$f"; then
      not_ok "sanitizer report in $(basename "$f")"
      grep -E -A20 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$f" | head -40
    fi
  done
  # Under valgrind a daemon writes NAME.vg; --quiet leaves it empty unless
  # memcheck found something.
  for f in "$TEST_TMP"/*.vg; do
    [ -f "$f" ] || continue
    if [ -s "$f" ]; then
      not_ok "valgrind report in $(basename "$f")"
      head -60 "$f"
    else
      ok "valgrind: no memcheck error or definite leak in $(basename "$f" .vg)"
    fi
  done
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
