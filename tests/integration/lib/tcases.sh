# tcases.sh: helpers for the spec §3 TLS test-case scripts (T1 variant,
# T3-T7, the refused peers). Source after common.sh, dnsmasq.sh and
# trapezoid.sh; uses PKI, DNS_ADDR, P1_IP and P2_IP from there. Every wait
# is bounded; every process started is recorded in PIDS (stopped on exit).

# tc_setup [EXTRA DNS RECORD LINES...]: the PKI in $PKI, dnsmasq with the
# trapezoid records plus the extra lines (DNS_ADDR set).
tc_setup() {
  PKI="$TEST_TMP/pki"
  mkdir -p "$PKI"
  make_pki "$PKI"
  trapezoid_dns "$TEST_TMP/records" "$@"
  start_dnsmasq_any "$TEST_TMP/records" "$DNS_IP" dns
  DNS_ADDR=$DNSMASQ_ADDR
}

# tc_p1 NAME IP [EXTRA CONFIG LINES...]: start a P1 (example.com,
# p1-com.pem) on IP:5061. Extra lines go after the listener; [tls] keys go
# through the array TC_P1_TLS (added to the [tls] section), global keys
# (e.g. log_level) through TC_P1_GLOBAL (added at the top).
tc_p1() {
  local name=$1 ip=$2; shift 2
  local f="$TEST_TMP/$name.conf"
  trapezoid_conf "$f" example.com "$PKI/p1-com.pem" "$PKI/p1-com.key" "$ip" "$@"
  tc_tls_lines "$f" "${TC_P1_TLS[@]+"${TC_P1_TLS[@]}"}"
  if [ -n "${TC_P1_GLOBAL+x}" ] && [ "${#TC_P1_GLOBAL[@]}" -gt 0 ]; then
    { printf '%s\n' "${TC_P1_GLOBAL[@]}"; cat "$f"; } >"$f.tmp" && mv "$f.tmp" "$f"
  fi
  start_sipsd "$name" "$f"
}

# tc_p2 NAME CERT [EXTRA CONFIG LINES...]: start a P2 serving example.net on
# $P2_IP:5061 (or $TC_P2_IP) with $PKI/CERT.pem and its key.
tc_p2() {
  local name=$1 cert=$2; shift 2
  local ip=${TC_P2_IP:-$P2_IP}
  trapezoid_conf "$TEST_TMP/$name.conf" example.net "$PKI/$cert.pem" "$PKI/$cert.key" "$ip" "$@"
  start_sipsd "$name" "$TEST_TMP/$name.conf"
}

# tc_tls_lines FILE LINES...: insert LINES right after the [tls] header.
tc_tls_lines() {
  local f=$1; shift
  [ $# -gt 0 ] || return 0
  local tmp="$f.tmp" l
  while IFS= read -r l; do
    printf '%s\n' "$l"
    if [ "$l" = "[tls]" ]; then printf '%s\n' "$@"; fi
  done <"$f" >"$tmp"
  mv "$tmp" "$f"
}

# tc_stop NAME: stop the sipsd started as NAME.
tc_stop() {
  local pid
  eval "pid=\${PID_$1:-}"
  [ -n "$pid" ] && stop_pid "$pid"
  return 0
}

# tc_bob NAME AOR PROXY [EXTRA sipsctl ARGS...]: bob registers at PROXY and
# answers one call (bounded by --wait 15); output in $TEST_TMP/bob-NAME.out;
# BOB_PID set. Returns 0 once registered (at most 5 s), else 1.
tc_bob() {
  local name=$1 aor=$2 proxy=$3; shift 3
  "$SIPSCTL" call --answer --as "$aor" --proxy "$proxy" --ca "$PKI/ca.pem" \
    --calls 1 --wait 15 "$@" >"$TEST_TMP/bob-$name.out" 2>&1 &
  BOB_PID=$!
  PIDS+=("$BOB_PID")
  wait_log "$TEST_TMP/bob-$name.out" '<-- SIP/2.0 200 OK \(1 REGISTER\)'
}

# tc_bob_done: wait (at most 3 s) for bob to finish his one call, then stop him.
tc_bob_done() {
  [ -n "${BOB_PID:-}" ] || return 0
  for _ in $(seq 30); do kill -0 "$BOB_PID" 2>/dev/null || break; sleep 0.1; done
  stop_pid "$BOB_PID"
  BOB_PID=
}

# tc_call NAME TO [EXTRA sipsctl ARGS...]: alice calls TO through
# ${TC_PROXY:-$P1_IP:5061} as ${TC_ALICE:-sips:alice@example.com}; output in
# $TEST_TMP/alice-NAME.out; CALL_RC set (bounded by --timeout 8).
tc_call() {
  local name=$1 to=$2; shift 2
  "$SIPSCTL" call --as "${TC_ALICE:-sips:alice@example.com}" --proxy "${TC_PROXY:-$P1_IP:5061}" \
    --ca "$PKI/ca.pem" --to "$to" --hold 0 --timeout 8 "$@" \
    >"$TEST_TMP/alice-$name.out" 2>&1 && CALL_RC=0 || CALL_RC=$?
}

# Log marks: tc_mark NAME remembers how many lines $TEST_TMP/NAME.log has;
# tc_new NAME prints the lines written since.
declare -A TC_MARKS=()
tc_mark() {
  TC_MARKS[$1]=$(wc -l <"$TEST_TMP/$1.log" 2>/dev/null || echo 0)
}
tc_new() {
  tail -n +"$((${TC_MARKS[$1]:-0} + 1))" "$TEST_TMP/$1.log" 2>/dev/null || true
}

# tc_new_has NAME REGEX: REGEX (grep -E) among the lines of NAME's log since
# its mark, waiting up to 3 s for it.
tc_new_has() {
  for _ in $(seq 30); do
    tc_new "$1" | grep -Eq -- "$2" && return 0
    sleep 0.1
  done
  return 1
}

# tc_new_lacks NAME REGEX: REGEX is not among the lines since the mark.
tc_new_lacks() {
  ! tc_new "$1" | grep -Eq -- "$2"
}

# has FILE REGEX / lacks FILE REGEX: grep -E on a file.
has() { grep -Eq -- "$2" "$1" 2>/dev/null; }
lacks() { ! grep -Eq -- "$2" "$1" 2>/dev/null; }

# tc_dump FILES...: print files (base names in $TEST_TMP) with a header;
# for diagnostics when a check failed.
tc_dump() {
  local f
  for f in "$@"; do
    echo "== $f"
    tail -n 40 "$TEST_TMP/$f" 2>/dev/null || echo "(missing)"
  done
}

# tc_refused_checks LABEL P1NAME P2NAME WANTED VERDICT [FOUND]: the checks of
# a peer refused by P1 inside the handshake, for a call just made with
# tc_call (CALL_RC and alice-LABEL.out) after `tc_mark P1NAME; tc_mark P2NAME`:
# alice got a 5xx; P1 logged the handshake failure with the verdict word (and
# wanted/found names) and the failed branch as a 503; P2 never completed a
# handshake with P1 (so no SIP byte reached it) and logged the failure.
tc_refused_checks() {
  local label=$1 p1=$2 p2=$3 wanted=$4 verdict=$5 found=${6:-}
  local ip=${TC_P2_IP:-$P2_IP} pat
  check "$label: the call fails" [ "$CALL_RC" != 0 ]
  check "$label: alice gets a 5xx" has "$TEST_TMP/alice-$label.out" 'call failed with 5[0-9][0-9]'
  pat="event=tls\.handshake_failed .*dir=out .*peer=${ip//./\\.}:5061 .*verdict=$verdict .*wanted=${wanted//./\\.}"
  [ -n "$found" ] && pat="$pat found=$found"
  local shown=${found//\\/}
  check "$label: P1 refused P2 in the handshake (verdict=$verdict, wanted $wanted${shown:+, found $shown})" \
    tc_new_has "$p1" "$pat"
  check "$label: P1's branch failed as a 503 transport error" \
    tc_new_has "$p1" "event=proxy\.branch_failed status=503 .*proto=tls .*domain=${wanted//./\\.}"
  check "$label: P1 never authenticated P2 on this call" \
    tc_new_lacks "$p1" "event=tls\.peer .*dir=out .*peer=${ip//./\\.}:5061"
  check "$label: P2 saw the handshake fail" \
    tc_new_has "$p2" 'event=tls\.handshake_failed .*dir=in'
  check "$label: no TLS connection from P1 completed at P2 (no SIP bytes sent)" \
    tc_new_lacks "$p2" 'event=tls\.peer .*dir=in .*found=\{example\.com\}'
}
