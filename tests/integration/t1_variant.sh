#!/usr/bin/env bash
# t1_variant.sh: spec §3 T1 variant: P1 (the registrar of example.com)
# presents a certificate for another domain (good.pem, URI:sip:example.net).
# The UA alice@example.com authenticates its proxy as example.com inside the
# handshake (RFC 5922 §7.3), so it closes the connection without sending
# REGISTER and says why; P1 registers nobody. Control: with its own
# certificate (URI:sip:example.com) the same registration succeeds.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/dnsmasq.sh"
P1_IP=127.0.50.1 P2_IP=127.0.50.2 DNS_IP=127.0.50.53
source "$(dirname "$0")/lib/trapezoid.sh"
source "$(dirname "$0")/lib/tcases.sh"
tc_setup

# P1 serves example.com but holds example.net's certificate.
trapezoid_conf "$TEST_TMP/p1bad.conf" example.com "$PKI/good.pem" "$PKI/good.key" "$P1_IP"
start_sipsd p1bad "$TEST_TMP/p1bad.conf"

for aor in sips:alice@example.com "sip:alice@example.com --transport tls"; do
  label="T1 variant (${aor%% *})"
  # shellcheck disable=SC2086
  out=$("$SIPSCTL" register --as $aor --proxy "$P1_IP:5061" --ca "$PKI/ca.pem" --timeout 5 2>&1) &&
    rc=0 || rc=$?
  echo "$out" >>"$TEST_TMP/alice.out"
  check "$label: sipsctl register fails with exit 1" [ "$rc" = 1 ]
  check "$label: no REGISTER was sent" bash -c "! grep -q -- '--> REGISTER' <<<\"\$1\"" _ "$out"
  check "$label: the UA reports the refusal: wanted example.com, found {example.net}" \
    grep -Eq 'refused: .*verdict=name-mismatch wanted=example\.com found=\{example\.net\}' <<<"$out"
done
check "T1 variant: P1 saw the handshakes fail (the UA aborted them)" \
  wait_log "$TEST_TMP/p1bad.log" 'event=tls\.handshake_failed .*dir=in'
check "T1 variant: P1 never completed a handshake with the UA" \
  lacks "$TEST_TMP/p1bad.log" 'event=tls\.peer '
check "T1 variant: P1 logged no registrar line" lacks "$TEST_TMP/p1bad.log" 'event=registrar'
stop_pid "$PID_p1bad"

# Control: the same P1 with its own certificate registers alice.
trapezoid_conf "$TEST_TMP/p1.conf" example.com "$PKI/p1-com.pem" "$PKI/p1-com.key" "$P1_IP"
start_sipsd p1 "$TEST_TMP/p1.conf"
out=$("$SIPSCTL" register --as sips:alice@example.com --proxy "$P1_IP:5061" --ca "$PKI/ca.pem" \
  --timeout 5 2>&1) && rc=0 || rc=$?
echo "$out" >>"$TEST_TMP/alice.out"
check "T1 control: with URI:sip:example.com alice registers (exit 0)" [ "$rc" = 0 ]
check "T1 control: the UA authenticated P1 as example.com" \
  grep -q 'authenticated its proxy .* as example.com' <<<"$out"
check "T1 control: P1 marked the UA's connection unauthenticated" \
  wait_log "$TEST_TMP/p1.log" 'event=tls\.peer .*dir=in .*authenticated=no'
check "T1 control: P1 bound the registration to the TLS flow" \
  wait_log "$TEST_TMP/p1.log" 'event=registrar aor=alice@example\.com status=200 .*proto=tls conn=[1-9]'
stop_pid "$PID_p1"

if [ "$FAILED" -ne 0 ]; then
  tc_dump alice.out p1bad.log p1.log
fi
finish
