#!/usr/bin/env bash
# location_snapshot.sh: the memory location store keeps its registrations
# across a restart ([location] snapshot). bob registers over UDP, alice
# over TLS on an outbound flow (RFC 5626) that stays open. sipsd crashes
# (SIGKILL) after a periodic snapshot and starts again: bob's binding is
# back with its expiry and a call reaches him; alice's is dropped (her flow
# died with the process, RFC 5626 §5.3) and said so in the log. A clean
# stop writes the snapshot too. A damaged snapshot stops the start instead
# of being overwritten.
source "$(dirname "$0")/lib/common.sh"
SC="$SIPSD_SRC/tests/integration/sipp"
P=127.0.38.1
A=127.0.38.2 B=127.0.38.3
pki="$TEST_TMP/pki"; mkdir -p "$pki"; make_pki "$pki"
printf 'SEQUENTIAL\nexample.com;udp\n' >"$TEST_TMP/dom.csv"
SNAP="$TEST_TMP/location.snap"
CTL="$TEST_TMP/control.sock"

cat >"$TEST_TMP/p.conf" <<CONF
workers = 2
control = $CTL
[domain example.com]
cert = $pki/good.pem
key = $pki/good.key
[listen udp $P:5060]
[listen tls $P:5061]
[location]
store = memory
snapshot = $SNAP
snapshot_interval = 1
CONF
sed -i 's/good\.pem/p1-com.pem/; s/good\.key/p1-com.key/' "$TEST_TMP/p.conf"
check "configuration with [location] passes sipsd -t" "$SIPSD" -t -c "$TEST_TMP/p.conf"
start_sipsd p "$TEST_TMP/p.conf"
cd "$TEST_TMP"

sipp_run() {
  local name=$1; shift
  timeout 30 sipp "$@" -m 1 -timeout 20s -timeout_error -trace_err \
    -message_file "$TEST_TMP/$name.msg" -error_file "$TEST_TMP/$name.err" >"$TEST_TMP/$name.out" 2>&1
}

check "bob registers over UDP" \
  sipp_run reg-bob -sf "$SC/register.xml" -inf "$TEST_TMP/dom.csv" -s bob -i "$A" -p 5070 "$P:5060"
"$SIPSCTL" call --answer --as sips:alice@example.com --proxy "$P:5061" --ca "$pki/ca.pem" \
  --calls 1 --wait 60 >"$TEST_TMP/alice.out" 2>&1 &
ALICE=$!; PIDS+=("$ALICE")
check "alice registers over TLS and keeps her outbound flow" \
  wait_log "$TEST_TMP/alice.out" '<-- SIP/2.0 200 OK \(1 REGISTER\)'
check "the periodic snapshot holds both (snapshot_interval = 1)" \
  bash -c "for _ in \$(seq 50); do grep -q 'bob@' '$SNAP' 2>/dev/null && grep -q 'alice@' '$SNAP' && exit 0; sleep 0.1; done; exit 1"
"$SIPSCTL" registrations --control "$CTL" >"$TEST_TMP/regs-before.txt" 2>&1 || true
check "two bindings before the crash" \
  bash -c "grep -q 'aor=bob@example.com' '$TEST_TMP/regs-before.txt' && grep -q 'aor=alice@example.com' '$TEST_TMP/regs-before.txt'"

# A crash: no clean stop, the last periodic snapshot is what there is.
kill -9 "$PID_p"; wait "$PID_p" 2>/dev/null || true
mv "$TEST_TMP/p.log" "$TEST_TMP/p-first.log"
start_sipsd p "$TEST_TMP/p.conf"
check "the start restored bob and dropped alice's outbound flow" \
  grep -Eq 'event=location.snapshot .*restored=1 dropped_outbound=1' "$TEST_TMP/p.log"
"$SIPSCTL" registrations --control "$CTL" >"$TEST_TMP/regs-after.txt" 2>&1 || true
check "bob is registered after the restart" grep -q 'aor=bob@example.com' "$TEST_TMP/regs-after.txt"
exp=$(sed -nE 's/.*aor=bob@example.com .*expires_in=([0-9]+).*/\1/p' "$TEST_TMP/regs-after.txt" | head -1)
check "with the expiry it had (expires_in=$exp of 300)" [ -n "$exp" ] && [ "$exp" -gt 280 ] && [ "$exp" -le 300 ]
check "alice is not (she registers again on a new flow)" \
  bash -c "! grep -q 'alice@example.com' '$TEST_TMP/regs-after.txt'"

# A call to bob after the restart reaches his UDP contact.
timeout 30 sipp -sf "$SC/uas_call.xml" -s bob -i "$A" -p 5070 -m 1 -timeout 20s -timeout_error \
  >"$TEST_TMP/uas.out" 2>&1 &
UAS=$!; PIDS+=("$UAS"); sleep 0.5
check "a call to bob completes after the restart" \
  sipp_run uac -sf "$SC/uac_call.xml" -inf "$TEST_TMP/dom.csv" -s bob -i "$B" -p 5071 "$P:5060"
check "bob's UAS answered it" wait "$UAS"

# A clean stop writes the snapshot; the next start restores it.
stop_pid "$PID_p"
check "the stop wrote the snapshot" grep -Eq 'event=location.snapshot .*saved=1' "$TEST_TMP/p.log"
mv "$TEST_TMP/p.log" "$TEST_TMP/p-second.log"
start_sipsd p "$TEST_TMP/p.conf"
check "the next start restored bob again" \
  grep -Eq 'event=location.snapshot .*restored=1 dropped_outbound=0' "$TEST_TMP/p.log"
stop_pid "$PID_p"
mv "$TEST_TMP/p.log" "$TEST_TMP/p-third.log"

# A damaged snapshot: sipsd refuses to start and leaves the file alone.
echo "garbage" >"$SNAP"
"$SIPSD" -c "$TEST_TMP/p.conf" >"$TEST_TMP/p-damaged.log" 2>&1 && rc=0 || rc=$?
check "sipsd does not start on a damaged snapshot (exit $rc)" [ "$rc" != 0 ]
check "it says why" grep -q 'snapshot .* is damaged' "$TEST_TMP/p-damaged.log"
check "the damaged file is kept for a human" grep -q garbage "$SNAP"

if [ "$FAILED" -ne 0 ]; then
  for f in p-first p-second p-third p-damaged; do echo "== $f"; cat "$TEST_TMP/$f.log" 2>/dev/null; done
  cat "$TEST_TMP"/regs-*.txt
fi
finish
