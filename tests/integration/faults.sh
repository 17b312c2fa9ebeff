#!/usr/bin/env bash
# faults.sh: the peer proxy dies in the middle of a call (the caller still
# gets a final answer to its BYE, and no transaction is left behind at P1);
# the DNS server fails (SERVFAIL) or is gone (the caller gets a 5xx quickly,
# sipsd keeps serving).
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/dnsmasq.sh"
P1_IP=127.0.47.1 P2_IP=127.0.47.2 DNS_IP=127.0.47.53
source "$(dirname "$0")/lib/trapezoid.sh"
PKI="$TEST_TMP/pki"; mkdir -p "$PKI"; make_pki "$PKI"
# fail.test is forwarded to a server that refuses: dnsmasq answers SERVFAIL.
trapezoid_dns "$TEST_TMP/records" "server=/fail.test/127.0.47.99#5399"
start_dnsmasq_any "$TEST_TMP/records" "$DNS_IP" dns
DNS_ADDR=$DNSMASQ_ADDR
trapezoid_conf "$TEST_TMP/p1.conf" example.com "$PKI/p1-com.pem" "$PKI/p1-com.key" "$P1_IP" \
  "[limits]" "idle_timeout_ms = 60000"
sed -i "1i control = $TEST_TMP/p1.sock" "$TEST_TMP/p1.conf"
trapezoid_conf "$TEST_TMP/p2.conf" example.net "$PKI/good.pem" "$PKI/good.key" "$P2_IP"
start_sipsd p1 "$TEST_TMP/p1.conf"
start_sipsd p2 "$TEST_TMP/p2.conf"

# 1. A call is up, then P2 is killed (SIGKILL, no goodbye); alice hangs up.
"$SIPSCTL" call --answer --as sips:bob@example.net --proxy "$P2_IP:5061" --ca "$PKI/ca.pem" \
  --calls 1 --wait 30 >"$TEST_TMP/bob.out" 2>&1 &
BOB=$!
PIDS+=("$BOB")
wait_log "$TEST_TMP/bob.out" '200 OK \(1 REGISTER\)' || true
"$SIPSCTL" call --as sips:alice@example.com --proxy "$P1_IP:5061" --ca "$PKI/ca.pem" \
  --to sips:bob@example.net --hold 3 --timeout 40 >"$TEST_TMP/alice.out" 2>&1 &
ALICE=$!
PIDS+=("$ALICE")
wait_log "$TEST_TMP/alice.out" '<-- SIP/2.0 200 OK \(1 INVITE\)' || true
kill -9 "$PID_p2"
rc=0
for _ in $(seq 400); do kill -0 "$ALICE" 2>/dev/null || break; sleep 0.1; done
check "caller still running after 40 s? no: it finished" bash -c "! kill -0 $ALICE 2>/dev/null"
check "the BYE after the peer died got a final answer (5xx or 408)" \
  grep -Eq '<-- SIP/2.0 (5[0-9][0-9]|408) .*\(2 BYE\)' "$TEST_TMP/alice.out"
check "P1 logged the failed branch towards example.net" \
  grep -Eq 'event=proxy.branch_failed .*domain=example.net' "$TEST_TMP/p1.log"
# No transaction left behind at P1 once the timers have run (client
# transactions end at once on a transport error; server ones within 32 s).
left=""
for _ in $(seq 40); do
  left=$("$SIPSCTL" stats --control "$TEST_TMP/p1.sock" | awk '/^sipsd_transactions\{/{s+=$2} END{print s+0}')
  [ "$left" = 0 ] && break
  sleep 1
done
check "no transaction left at P1 ($left)" [ "$left" = 0 ]

# 2. DNS SERVFAIL for the callee's domain: a quick 5xx, P1 keeps serving.
t0=$(date +%s)
"$SIPSCTL" call --as sips:alice@example.com --proxy "$P1_IP:5061" --ca "$PKI/ca.pem" \
  --to sips:carol@fail.test --hold 0 --timeout 15 >"$TEST_TMP/alice2.out" 2>&1 || true
t1=$(date +%s)
check "SERVFAIL: the caller gets a 5xx" grep -Eq 'call failed with 5[0-9][0-9]' "$TEST_TMP/alice2.out"
check "SERVFAIL: within 10 s" [ $((t1 - t0)) -le 10 ]

# 3. The DNS server gone: the same, and sipsd answers OPTIONS meanwhile.
stop_pid "$DNSMASQ_PID"
"$SIPSCTL" call --as sips:alice@example.com --proxy "$P1_IP:5061" --ca "$PKI/ca.pem" \
  --to sips:dave@gone.example.org --hold 0 --timeout 15 >"$TEST_TMP/alice3.out" 2>&1 || true
check "DNS down: the caller gets a 5xx" grep -Eq 'call failed with 5[0-9][0-9]' "$TEST_TMP/alice3.out"
out=$("$SIPSCTL" options "sips:example.com" --via "$P1_IP:5061" --ca "$PKI/ca.pem" --timeout 5) && rc=0 || rc=$?
check "P1 still answers OPTIONS" [ "$rc" = 0 ]
stop_pid "$PID_p1"
check "P1 stopped cleanly" grep -q 'event=stopped' "$TEST_TMP/p1.log"
[ "$FAILED" -eq 0 ] || { cat "$TEST_TMP/alice.out" "$TEST_TMP/alice2.out" "$TEST_TMP/alice3.out"; tail -20 "$TEST_TMP/p1.log"; }
finish
