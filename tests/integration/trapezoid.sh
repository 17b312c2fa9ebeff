#!/usr/bin/env bash
# trapezoid.sh: spec T1/T2: UAs without certificates register over TLS to
# their own domain's proxy; alice@example.com calls bob@example.net; P1
# resolves example.net (RFC 3263, dnsmasq), opens mutual TLS with SNI
# example.net; the call is set up and torn down along the Record-Route.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/dnsmasq.sh"
source "$(dirname "$0")/lib/trapezoid.sh"
PKI="$TEST_TMP/pki"; mkdir -p "$PKI"; make_pki "$PKI"

trapezoid_dns "$TEST_TMP/records"
start_dnsmasq_any "$TEST_TMP/records" "$DNS_IP" dns
DNS_ADDR=$DNSMASQ_ADDR
trapezoid_conf "$TEST_TMP/p1.conf" example.com "$PKI/p1-com.pem" "$PKI/p1-com.key" "$P1_IP"
trapezoid_conf "$TEST_TMP/p2.conf" example.net "$PKI/good.pem" "$PKI/good.key" "$P2_IP"
start_sipsd p1 "$TEST_TMP/p1.conf"
start_sipsd p2 "$TEST_TMP/p2.conf"

# T1: bob registers at P2 over TLS, authenticating P2 as example.net.
"$SIPSCTL" call --answer --as sips:bob@example.net --proxy "$P2_IP:5061" --ca "$PKI/ca.pem" \
  --calls 1 --wait 20 >"$TEST_TMP/bob.out" 2>&1 &
BOB=$!
PIDS+=("$BOB")
check "T1: bob authenticated P2 as example.net" wait_log "$TEST_TMP/bob.out" 'authenticated its proxy .* as example.net'
check "T1: bob registered" wait_log "$TEST_TMP/bob.out" '<-- SIP/2.0 200 OK \(1 REGISTER\)'
check "T1: P2 marked bob's connection unauthenticated" \
  grep -q 'event=tls.peer .*dir=in .*authenticated=no' "$TEST_TMP/p2.log"
check "T1: P2 bound the registration to the flow" \
  grep -Eq 'event=registrar aor=bob@example.net status=200 .*proto=tls conn=[1-9]' "$TEST_TMP/p2.log"

# T2: alice calls bob.
out=$("$SIPSCTL" call --as sips:alice@example.com --proxy "$P1_IP:5061" --ca "$PKI/ca.pem" \
      --to sips:bob@example.net --hold 1 2>&1) && rc=0 || rc=$?
echo "$out" >"$TEST_TMP/alice.out"
check "T2: alice's call completed" [ "$rc" = 0 ]
check "T2: alice saw 180 and 200" grep -q '<-- SIP/2.0 180' "$TEST_TMP/alice.out"
check "T2: BYE answered 200" grep -q '<-- SIP/2.0 200 OK (2 BYE)' "$TEST_TMP/alice.out"
for _ in $(seq 50); do kill -0 "$BOB" 2>/dev/null || break; sleep 0.1; done
check "T2: the ACK for the 200 reached bob (stateless, along the route set)" \
  grep -q '<-- ACK ' "$TEST_TMP/bob.out"
check "T2: bob answered the call and saw the BYE" grep -q 'result: answered 1 call' "$TEST_TMP/bob.out"
check "T2: P1 authenticated P2 as example.net (SNI example.net)" \
  grep -Eq 'event=tls.peer .*dir=out .*sni=example.net .*authenticated=yes .*found=\{example\.net\}' "$TEST_TMP/p1.log"
check "T2: P2 logged P1's identity set {example.com}" \
  grep -Eq 'event=tls.peer .*dir=in .*authenticated=yes .*found=\{example\.com\}' "$TEST_TMP/p2.log"
check "T2: P2 Record-Routed with a sips: URI of example.net" \
  grep -Eq 'Record-Route: <sips:[^>]*@example.net;lr>' "$TEST_TMP/bob.out"
check "T2: P1 Record-Routed with a sips: URI of example.com" \
  grep -Eq 'Record-Route: <sips:[^>]*@example.com;lr>' "$TEST_TMP/bob.out"
check "T2: the BYE followed the route set (both proxies' Route entries)" \
  grep -Eq '  Route: <sips:[^>]*@example\.com;lr>' "$TEST_TMP/alice.out"
# The callee hangs up: the BYE goes bob -> P2 -> P1 -> alice along the
# route set. The flow token in P2's Record-Route was made by the worker
# that handled the INVITE (P1's connection) and is checked by the worker
# holding bob's flow; with two workers these differ about half the time, so
# four calls, each on a new P1 connection, all have to work.
"$SIPSCTL" call --answer --as sips:bob@example.net --proxy "$P2_IP:5061" --ca "$PKI/ca.pem" \
  --calls 4 --hangup 0 --wait 30 >"$TEST_TMP/bob2.out" 2>&1 &
BOB2=$!
PIDS+=("$BOB2")
wait_log "$TEST_TMP/bob2.out" '200 OK \(1 REGISTER\)' || true
hung=0
for i in 1 2 3 4; do
  stop_pid "$PID_p1"; start_sipsd p1 "$TEST_TMP/p1.conf"
  "$SIPSCTL" call --as sips:alice@example.com --proxy "$P1_IP:5061" --ca "$PKI/ca.pem" \
    --to sips:bob@example.net --hold 5 >"$TEST_TMP/alice-h$i.out" 2>&1 &&
    grep -q 'BYE from the callee answered 200' "$TEST_TMP/alice-h$i.out" && hung=$((hung + 1))
  # Let the 200 for bob's BYE travel back through P1 before P1 restarts.
  for _ in $(seq 50); do
    [ "$(grep -c 'hung up, BYE answered' "$TEST_TMP/bob2.out")" -ge "$i" ] && break
    sleep 0.1
  done
done
check "callee hangs up: 4 of 4 BYEs from bob reached alice (flow tokens verify at every worker)" [ "$hung" = 4 ]
check "callee hangs up: bob's BYEs were answered 200" [ "$(grep -c 'hung up, BYE answered 200' "$TEST_TMP/bob2.out")" = 4 ]
stop_pid "$PID_p1"; stop_pid "$PID_p2"
if [ "$FAILED" -ne 0 ]; then
  echo "== alice"; cat "$TEST_TMP/alice.out"; echo "== bob"; cat "$TEST_TMP/bob.out"
  echo "== p1"; tail -20 "$TEST_TMP/p1.log"; echo "== p2"; tail -20 "$TEST_TMP/p2.log"
fi
finish
