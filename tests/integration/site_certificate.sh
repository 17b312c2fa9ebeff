#!/usr/bin/env bash
# site_certificate.sh: spec §4.4 (site certificate) and §3's extra case "a
# second P2 host taking over when the first is down". example.net is served
# by two hosts found through SRV (_sips._tcp.example.net: p2a priority 10,
# p2b priority 20, on different addresses), both presenting the same domain
# certificate good.pem (URI:sip:example.net). P1 authenticates either as
# example.net with SNI example.net (never the host names p2a/p2b). bob is
# registered at both hosts (registrations are per host). Call 1 goes to p2a;
# p2a is stopped (by PID); call 2 fails over to p2b (RFC 3263 §4.3: next
# target after a transport error) and completes; P1 logs the failed target.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/dnsmasq.sh"
P1_IP=127.0.61.1 P2_IP=127.0.61.2 DNS_IP=127.0.61.53
P2B_IP=127.0.61.3
source "$(dirname "$0")/lib/trapezoid.sh"
PKI="$TEST_TMP/pki"; mkdir -p "$PKI"; make_pki "$PKI"

# The SRV set of example.net: p2a first, p2b second (no p2.example.net).
trapezoid_dns "$TEST_TMP/records.in"
grep -v -e '^srv-host=_sips._tcp.example.net,' -e '^host-record=p2.example.net,' \
  "$TEST_TMP/records.in" >"$TEST_TMP/records"
{
  echo "srv-host=_sips._tcp.example.net,p2a.example.net,5061,10,10"
  echo "srv-host=_sips._tcp.example.net,p2b.example.net,5061,20,10"
  echo "host-record=p2a.example.net,$P2_IP"
  echo "host-record=p2b.example.net,$P2B_IP"
} >>"$TEST_TMP/records"
start_dnsmasq_any "$TEST_TMP/records" "$DNS_IP" dns
DNS_ADDR=$DNSMASQ_ADDR
trapezoid_conf "$TEST_TMP/p1.conf" example.com "$PKI/p1-com.pem" "$PKI/p1-com.key" "$P1_IP"
trapezoid_conf "$TEST_TMP/p2a.conf" example.net "$PKI/good.pem" "$PKI/good.key" "$P2_IP"
trapezoid_conf "$TEST_TMP/p2b.conf" example.net "$PKI/good.pem" "$PKI/good.key" "$P2B_IP"
start_sipsd p1 "$TEST_TMP/p1.conf"
start_sipsd p2a "$TEST_TMP/p2a.conf"
start_sipsd p2b "$TEST_TMP/p2b.conf"

# bob at both hosts of example.net (each host has its own location store).
for h in a b; do
  ip=$P2_IP; [ $h = b ] && ip=$P2B_IP
  "$SIPSCTL" call --answer --as sips:bob@example.net --proxy "$ip:5061" --ca "$PKI/ca.pem" \
    --calls 1 --wait 30 >"$TEST_TMP/bob-$h.out" 2>&1 &
  eval "BOB_$h=$!"; PIDS+=("$!")
  check "bob registered at p2$h ($ip) as example.net" \
    wait_log "$TEST_TMP/bob-$h.out" '<-- SIP/2.0 200 OK \(1 REGISTER\)'
done

# Call 1: both hosts up; p2a (priority 10) takes it.
"$SIPSCTL" call --as sips:alice@example.com --proxy "$P1_IP:5061" --ca "$PKI/ca.pem" \
  --to sips:bob@example.net --hold 1 >"$TEST_TMP/alice-1.out" 2>&1 && rc=0 || rc=$?
check "call 1 completed" [ "$rc" = 0 ]
check "call 1 reached bob at p2a" wait_log "$TEST_TMP/bob-a.out" '<-- INVITE '
check "call 1: P1 authenticated p2a as example.net with SNI example.net" \
  grep -Eq "event=tls.peer .*dir=out peer=$P2_IP:5061 sni=example.net .*authenticated=yes .*wanted=example.net found=\{example\.net\}" \
  "$TEST_TMP/p1.log"

# p2a goes down (stopped by PID).
stop_pid "$PID_p2a"
check "p2a stopped" bash -c "! kill -0 $PID_p2a 2>/dev/null"

# Call 2: RFC 3263 still lists p2a first; its connect fails (transport
# error, a 503 for the branch) and P1 tries p2b, which holds the same site
# certificate and bob's second registration.
start=$(date +%s%N)
"$SIPSCTL" call --as sips:alice@example.com --proxy "$P1_IP:5061" --ca "$PKI/ca.pem" \
  --to sips:bob@example.net --hold 1 --timeout 20 >"$TEST_TMP/alice-2.out" 2>&1 && rc=0 || rc=$?
took_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "# call 2 took ${took_ms} ms (hold 1 s included)"
check "call 2 completed through the second host" [ "$rc" = 0 ]
check "call 2: alice saw 180 and 200" grep -q '<-- SIP/2.0 200 OK (1 INVITE)' "$TEST_TMP/alice-2.out"
check "call 2: bob at p2b answered and saw the BYE" \
  bash -c "for _ in \$(seq 50); do grep -q 'result: answered 1 call' '$TEST_TMP/bob-b.out' && exit 0; sleep 0.1; done; exit 1"
check "call 2: P1 logged the failed first target (p2a, transport error, 503)" \
  grep -Eq "event=proxy.branch_failed status=503 hop=$P2_IP:5061 proto=tls domain=example.net" "$TEST_TMP/p1.log"
check "call 2: P1 authenticated p2b as example.net with SNI example.net (site certificate)" \
  grep -Eq "event=tls.peer .*dir=out peer=$P2B_IP:5061 sni=example.net .*authenticated=yes .*wanted=example.net found=\{example\.net\}" \
  "$TEST_TMP/p1.log"
fp() { grep -E "event=tls.peer .*dir=out peer=$1:5061 " "$TEST_TMP/p1.log" | head -1 |
  sed -E 's/.* sha256=([0-9A-F:]+) .*/\1/'; }
fp_a=$(fp "$P2_IP"); fp_b=$(fp "$P2B_IP")
check "p2a and p2b presented the same site certificate (SHA-256 ${fp_a:0:11}...)" \
  [ -n "$fp_a" ] && [ "$fp_a" = "$fp_b" ]
check "no SNI or name check used the SRV target names p2a/p2b" \
  bash -c "! grep -Eq 'sni=p2[ab]|wanted=p2[ab]' '$TEST_TMP/p1.log'"
check "p2b logged P1's identity set {example.com}" \
  grep -Eq 'event=tls.peer .*dir=in .*authenticated=yes .*found=\{example\.com\}' "$TEST_TMP/p2b.log"
check "call 2 did not wait for a timeout (under 5 s with a 1 s hold)" [ "$took_ms" -lt 5000 ]

stop_pid "$PID_p1"; stop_pid "$PID_p2b"
if [ "$FAILED" -ne 0 ]; then
  for f in alice-1 alice-2 bob-a bob-b; do echo "== $f"; cat "$TEST_TMP/$f.out"; done
  for f in p1 p2a p2b; do echo "== $f"; cat "$TEST_TMP/$f.log"; done
fi
finish
