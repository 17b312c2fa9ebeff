#!/usr/bin/env bash
# alias_crlf.sh: spec rules 17 and 18 (RFC 5923 ;alias, RFC 5626 §3.5.1
# CRLF keep-alive) on real processes: P1 (example.com) and P2 (example.net)
# on 127.0.60.x, dnsmasq for NAPTR/SRV/A, hand-made clients (lib/tlsua.py)
# and sipsctl UAs.
#  (a) ;alias is ignored (event=conn.alias honoured=no) on TLS without a
#      client certificate and on plain TCP; honoured on mutual TLS, but a
#      connection aliased to an address is reused only for a domain in its
#      verified identity set (the pool is keyed by address AND identity).
#  (b) P1 -> P2 over mutual TLS with ;alias: P2 honours it, and a later call
#      from bob@example.net to alice@example.com goes down that connection
#      instead of a new P2 -> P1 one.
#  (c) a double CRLF is answered with exactly one CRLF over TLS and TCP; a
#      bare CRLF between messages is tolerated.
# P2 runs one worker: connections belong to the worker that accepted them
# and a worker only reuses its own (docs/interop.md, "Connection reuse").
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/dnsmasq.sh"
P1_IP=127.0.60.1 P2_IP=127.0.60.2 DNS_IP=127.0.60.53
ORG_IP=127.0.60.3 # example.org's SRV target: nothing listens there
source "$(dirname "$0")/lib/trapezoid.sh"
TLSUA="python3 $(dirname "$0")/lib/tlsua.py"
PKI="$TEST_TMP/pki"; mkdir -p "$PKI"; make_pki "$PKI"

trapezoid_dns "$TEST_TMP/records" \
  'naptr-record=example.org,10,50,"s","SIPS+D2T","","_sips._tcp.example.org"' \
  "srv-host=_sips._tcp.example.org,p.example.org,5061,10,10" \
  "host-record=p.example.org,$ORG_IP"
start_dnsmasq_any "$TEST_TMP/records" "$DNS_IP" dns
DNS_ADDR=$DNSMASQ_ADDR
trapezoid_conf "$TEST_TMP/p1.conf" example.com "$PKI/p1-com.pem" "$PKI/p1-com.key" "$P1_IP"
trapezoid_conf "$TEST_TMP/p2.conf" example.net "$PKI/good.pem" "$PKI/good.key" "$P2_IP" \
  "[listen tcp $P2_IP:5060]"
# P2 runs two workers: the aliased connection belongs to one of them and
# must be used by both (shared connections, src/transport).
start_sipsd p1 "$TEST_TMP/p1.conf"
start_sipsd p2 "$TEST_TMP/p2.conf"

# wait_pid PID SECONDS: wait (bounded) for a background process to end.
wait_pid() {
  for _ in $(seq $(($2 * 10))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}
# count PATTERN FILE: lines matching (grep -E), 0 when none.
count() { grep -Ec "$1" "$2" || true; }

# ---- (c) CRLF keep-alive (spec rule 18, RFC 5626 §3.5.1)
$TLSUA crlf "$P2_IP" 5061 --ca "$PKI/ca.pem" --sni example.net >"$TEST_TMP/crlf-tls.out" 2>&1 &&
  rc=0 || rc=$?
cat "$TEST_TMP/crlf-tls.out"
check "(c) TLS: a double CRLF is answered with exactly one CRLF" \
  grep -q '^crlf TLS .*: ping got=.* exact=True' "$TEST_TMP/crlf-tls.out"
check "(c) TLS: a bare CRLF before OPTIONS is tolerated, not answered" \
  grep -q '^crlf TLS: bare CRLF then OPTIONS: .* ok=True' "$TEST_TMP/crlf-tls.out"
check "(c) TLS: a double CRLF right after a message is answered after its 200" \
  grep -q '^crlf TLS: OPTIONS+ping: .* ok=True' "$TEST_TMP/crlf-tls.out"
$TLSUA crlf "$P2_IP" 5060 >"$TEST_TMP/crlf-tcp.out" 2>&1 && rc=0 || rc=$?
cat "$TEST_TMP/crlf-tcp.out"
check "(c) TCP: a double CRLF is answered with exactly one CRLF" \
  grep -q '^crlf TCP: ping got=.* exact=True' "$TEST_TMP/crlf-tcp.out"
check "(c) TCP: bare CRLF tolerated, ping after a message answered" \
  [ "$(grep -c 'ok=True' "$TEST_TMP/crlf-tcp.out")" = 2 ]

# ---- (a) ;alias offered for example.org's address ($ORG_IP:5061) by three
# clients of P2 that hold their connection open: TLS without a client
# certificate, plain TCP, and mutual TLS with p1-com.pem (identity
# example.com: a genuine peer, but not example.org).
"$SIPSCTL" call --answer --as sips:bob@example.net --proxy "$P2_IP:5061" --ca "$PKI/ca.pem" \
  --calls 1 --wait 30 >"$TEST_TMP/bob.out" 2>&1 &
BOB=$!; PIDS+=("$BOB")
check "bob registered at P2" wait_log "$TEST_TMP/bob.out" '<-- SIP/2.0 200 OK \(1 REGISTER\)'

$TLSUA alias "$P2_IP" 5061 --ca "$PKI/ca.pem" --sni example.net --sent-by "$ORG_IP:5061" \
  --hold 20 --until "$TEST_TMP/stop-holders" --expect-none >"$TEST_TMP/alias-nocert.out" 2>&1 &
A1=$!; PIDS+=("$A1")
wait_log "$TEST_TMP/alias-nocert.out" 'OPTIONS answered' || true
$TLSUA alias "$P2_IP" 5060 --sent-by "$ORG_IP:5061" \
  --hold 20 --until "$TEST_TMP/stop-holders" --expect-none >"$TEST_TMP/alias-tcp.out" 2>&1 &
A2=$!; PIDS+=("$A2")
wait_log "$TEST_TMP/alias-tcp.out" 'OPTIONS answered' || true
$TLSUA alias "$P2_IP" 5061 --ca "$PKI/ca.pem" --sni example.net --sent-by "$ORG_IP:5061" \
  --cert "$PKI/p1-com.pem" --key "$PKI/p1-com.key" \
  --hold 20 --until "$TEST_TMP/stop-holders" --expect-none >"$TEST_TMP/alias-com.out" 2>&1 &
A3=$!; PIDS+=("$A3")
wait_log "$TEST_TMP/alias-com.out" 'OPTIONS answered' || true
check "(a) the three ;alias OPTIONS were answered 200" \
  [ "$(cat "$TEST_TMP"/alias-{nocert,tcp,com}.out | grep -c "OPTIONS answered 'SIP/2.0 200")" = 3 ]

nocert_conn=$(grep -E 'event=tls.peer .*dir=in .*authenticated=no' "$TEST_TMP/p2.log" |
  tail -1 | sed -E 's/.* conn=([0-9]+) .*/\1/')
com_conn=$(grep -E 'event=tls.peer .*dir=in .*authenticated=yes .*found=\{example\.com\}' \
  "$TEST_TMP/p2.log" | tail -1 | sed -E 's/.* conn=([0-9]+) .*/\1/')
check "(a) TLS without a client certificate: ;alias ignored (honoured=no, conn=$nocert_conn)" \
  grep -Eq "event=conn.alias conn=$nocert_conn honoured=no" "$TEST_TMP/p2.log"
check "(a) plain TCP: ;alias ignored (honoured=no)" \
  [ "$(count 'event=conn.alias .*honoured=no' "$TEST_TMP/p2.log")" = 2 ]
check "(a) mutual TLS (identity example.com): ;alias honoured (conn=$com_conn)" \
  grep -Eq "event=conn.alias conn=$com_conn honoured=yes alias=$ORG_IP:5061" "$TEST_TMP/p2.log"

# bob calls carol@example.org: RFC 3263 gives $ORG_IP:5061, where only the
# three aliased client connections are filed and nothing listens. None may
# carry the INVITE (none is verified as example.org): P2 must try a new
# connection, which fails, and bob gets a 5xx.
"$SIPSCTL" call --as sips:bob@example.net --proxy "$P2_IP:5061" --ca "$PKI/ca.pem" \
  --to sips:carol@example.org --timeout 10 >"$TEST_TMP/bob-org.out" 2>&1 && rc=0 || rc=$?
check "(a) bob's call to example.org failed with a 5xx" \
  grep -Eq 'result: call failed with 5[0-9][0-9]' "$TEST_TMP/bob-org.out"
check "(a) P2 tried its own connection to $ORG_IP:5061 for example.org" \
  grep -Eq "event=proxy.branch_failed .*hop=$ORG_IP:5061 proto=tls domain=example.org" "$TEST_TMP/p2.log"
sleep 0.5; touch "$TEST_TMP/stop-holders"
for pid in "$A1" "$A2" "$A3"; do wait_pid "$pid" 5 || true; done
check "(a) no request came back on the TLS connection without a certificate" \
  grep -q 'requests received=0' "$TEST_TMP/alias-nocert.out"
check "(a) no request came back on the TCP connection" \
  grep -q 'requests received=0' "$TEST_TMP/alias-tcp.out"
check "(a) no request for example.org on the connection verified as example.com" \
  grep -q 'requests received=0' "$TEST_TMP/alias-com.out"

# ---- (b) the trapezoid: alice calls bob (P1 -> P2, Via ;alias on mutual
# TLS), then bob calls alice: P2 must send the INVITE, ACK and BYE over the
# connection P1 opened, so P1 sees no inbound handshake from P2.
"$SIPSCTL" call --answer --as sips:alice@example.com --proxy "$P1_IP:5061" --ca "$PKI/ca.pem" \
  --calls 1 --wait 30 >"$TEST_TMP/alice.out" 2>&1 &
ALICE=$!; PIDS+=("$ALICE")
check "alice registered at P1" wait_log "$TEST_TMP/alice.out" '<-- SIP/2.0 200 OK \(1 REGISTER\)'
"$SIPSCTL" call --as sips:alice@example.com --proxy "$P1_IP:5061" --ca "$PKI/ca.pem" \
  --to sips:bob@example.net --hold 1 >"$TEST_TMP/alice-call.out" 2>&1 && rc=0 || rc=$?
check "(b) alice's call to bob completed" [ "$rc" = 0 ]
p1_conn=$(grep -E 'event=tls.peer .*dir=in .*authenticated=yes .*found=\{example\.com\}' \
  "$TEST_TMP/p2.log" | tail -1 | sed -E 's/.* conn=([0-9]+) .*/\1/')
check "(b) P2 honoured ;alias on P1's mutually authenticated connection (conn=$p1_conn)" \
  grep -Eq "event=conn.alias conn=$p1_conn honoured=yes alias=$P1_IP:5061" "$TEST_TMP/p2.log"
check "(b) P1 opened one connection to P2" \
  [ "$(count "event=tls.peer .*dir=out .*peer=$P2_IP:5061 " "$TEST_TMP/p1.log")" = 1 ]

"$SIPSCTL" call --as sips:bob@example.net --proxy "$P2_IP:5061" --ca "$PKI/ca.pem" \
  --to sips:alice@example.com --hold 1 >"$TEST_TMP/bob-call.out" 2>&1 && rc=0 || rc=$?
check "(b) bob's call to alice completed (INVITE/200/ACK/BYE/200)" [ "$rc" = 0 ]
wait_pid "$ALICE" 5 || true
check "(b) alice answered the call and saw the BYE" grep -q 'result: answered 1 call' "$TEST_TMP/alice.out"
check "(b) P2 opened no connection of its own to P1 (reused the aliased one)" \
  [ "$(count "event=tls.peer .*dir=out .*peer=$P1_IP:5061 " "$TEST_TMP/p2.log")" = 0 ]
check "(b) P1 accepted no TLS connection from P2 (only its UAs' handshakes)" \
  [ "$(count 'event=tls.peer .*dir=in .*authenticated=yes' "$TEST_TMP/p1.log")" = 0 ]
check "(b) P1 saw the UAs' unauthenticated handshakes only (alice x2)" \
  [ "$(count 'event=tls.peer .*dir=in .*authenticated=no' "$TEST_TMP/p1.log")" = 2 ]

stop_pid "$PID_p1"; stop_pid "$PID_p2"
if [ "$FAILED" -ne 0 ]; then
  for f in alias-nocert alias-tcp alias-com bob-org alice alice-call bob bob-call; do
    echo "== $f"; cat "$TEST_TMP/$f.out"
  done
  echo "== p1"; cat "$TEST_TMP/p1.log"; echo "== p2"; cat "$TEST_TMP/p2.log"
fi
finish
