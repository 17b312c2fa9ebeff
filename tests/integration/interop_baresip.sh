#!/usr/bin/env bash
# interop_baresip.sh: baresip (Debian's baresip-core, a real UA on libre)
# as alice@example.com against sipsd: it finds P1 by RFC 3263 (its own DNS
# client pointed at dnsmasq), registers over TLS, calls bob@example.net (a
# sipsctl UA registered at P2) through P1 and P2 over mutual TLS, hangs up;
# then bob calls alice and P1 sends the INVITE down baresip's registration
# connection (spec rule 16). baresip is driven through its ctrl_tcp module
# (lib/baresip_ctrl.py), runs with -t (it quits by itself) and is stopped by
# PID. What baresip 1.0.0 does not do (sips: URIs, SNI, checking the
# proxy's certificate) is in docs/interop.md; the last part shows the
# certificate point on a P1 with an untrusted certificate.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/dnsmasq.sh"
P1_IP=127.0.62.1 P2_IP=127.0.62.2 DNS_IP=127.0.62.53
UA_IP=127.0.62.20      # baresip's SIP and ctrl_tcp address
BAD_IP=127.0.62.3      # a P1 with a certificate from an untrusted CA
UA2_IP=127.0.62.21     # a second baresip for that one
source "$(dirname "$0")/lib/trapezoid.sh"
CTRL="python3 $(dirname "$0")/lib/baresip_ctrl.py"

if ! command -v baresip >/dev/null; then
  echo "# SKIP: baresip is not installed (scripts/install-deps.sh test installs baresip-core)"
  finish; exit
fi
PKI="$TEST_TMP/pki"; mkdir -p "$PKI"; make_pki "$PKI"
trapezoid_dns "$TEST_TMP/records"
start_dnsmasq_any "$TEST_TMP/records" "$DNS_IP" dns
DNS_ADDR=$DNSMASQ_ADDR
trapezoid_conf "$TEST_TMP/p1.conf" example.com "$PKI/p1-com.pem" "$PKI/p1-com.key" "$P1_IP"
trapezoid_conf "$TEST_TMP/p2.conf" example.net "$PKI/good.pem" "$PKI/good.key" "$P2_IP"
start_sipsd p1 "$TEST_TMP/p1.conf"
start_sipsd p2 "$TEST_TMP/p2.conf"

# bob registers with a sip: AOR over TLS: baresip 1.0.0 cannot dial a sips:
# URI (it prefixes "sip:"), and sipsd answers a sip: request for a
# sips:-only registration with 480 / Warning 381 (RFC 5630).
"$SIPSCTL" call --answer --as sip:bob@example.net --transport tls --proxy "$P2_IP:5061" \
  --ca "$PKI/ca.pem" --calls 1 --wait 40 >"$TEST_TMP/bob.out" 2>&1 &
BOB=$!; PIDS+=("$BOB")
check "bob registered at P2 over TLS" wait_log "$TEST_TMP/bob.out" '<-- SIP/2.0 200 OK \(1 REGISTER\)'

# baresip_conf DIR UA_IP: a configuration without sound devices (aubridge
# plays into itself), the G.711 codecs, ctrl_tcp and the menu commands.
baresip_conf() {
  mkdir -p "$1"
  cat >"$1/config" <<CFG
poll_method		epoll
sip_listen		$2:5060
sip_cafile		$PKI/ca.pem
dns_server		$DNS_ADDR
module_path		/usr/lib/baresip/modules
module			g711.so
module			aubridge.so
module			ctrl_tcp.so
module_tmp		account.so
module_app		menu.so
ctrl_tcp_listen		$2:4444
audio_source		aubridge,nil
audio_player		aubridge,nil
audio_alert		aubridge,nil
CFG
}
# start_baresip NAME DIR: run it in the background (quits after 60 s by
# itself), SIP trace on (-s), output in $TEST_TMP/NAME.out.
start_baresip() {
  baresip -f "$2" -s -t 60 </dev/null >"$TEST_TMP/$1.out" 2>&1 &
  PIDS+=("$!")
  eval "PID_$1=$!"
}

# alice: sip:alice@example.com over TLS; the outbound proxy is the domain
# itself, so baresip resolves example.com (NAPTR/SRV/A) and connects to P1.
baresip_conf "$TEST_TMP/alice" "$UA_IP"
echo '<sip:alice@example.com;transport=tls>;regint=600;outbound="sip:example.com;transport=tls";answermode=auto' \
  >"$TEST_TMP/alice/accounts"
start_baresip alice "$TEST_TMP/alice"
check "baresip: registered (200 OK, 1 binding)" \
  bash -c "for _ in \$(seq 100); do grep -q 'alice@example.com: .*200 OK .*1 binding' '$TEST_TMP/alice.out' && exit 0; sleep 0.1; done; exit 1"
check "P1: alice registered over TLS (event=registrar ... status=200 proto=tls)" \
  grep -Eq 'event=registrar aor=alice@example.com status=200 .*proto=tls conn=[1-9]' "$TEST_TMP/p1.log"
check "P1: baresip's connection is unauthenticated (a UA without a certificate)" \
  grep -Eq 'event=tls.peer .*dir=in .*authenticated=no' "$TEST_TMP/p1.log"
reg_port=$(sed -E 's/\x1b\[[0-9;]*m//g' "$TEST_TMP/alice.out" |
  grep -m1 -E "^TLS 127\.0\.0\.1:[0-9]+ -> $P1_IP:5061\$" | sed -E 's/^TLS 127\.0\.0\.1:([0-9]+) .*/\1/')
check "baresip found P1 by RFC 3263 (registration connection from port ${reg_port:-?})" \
  [ -n "$reg_port" ]
# The first query after dnsmasq's own probe is baresip's: SRV for sips
# (transport=tls given, so no NAPTR: RFC 3263 §4.1).
check "baresip's first DNS query: SRV _sips._tcp.example.com (dnsmasq log)" \
  bash -c "grep 'query\\[' '$DNSMASQ_LOG' | grep -v probe.invalid | head -1 | grep -q 'query\\[SRV\\] _sips._tcp.example.com'"

# alice (baresip) calls bob.
$CTRL "$UA_IP" 4444 dial sip:bob@example.net >"$TEST_TMP/ctrl-dial.out" 2>&1 && rc=0 || rc=$?
check "baresip accepted the dial command" [ "$rc" = 0 ]
check "the call reached bob (INVITE, then the ACK for his 200)" wait_log "$TEST_TMP/bob.out" '<-- ACK '
check "baresip: call established" wait_log "$TEST_TMP/alice.out" 'Call established: sip:bob@example.net'
check "bob saw P1 and P2 Record-Route (sip:, their own domains)" \
  bash -c "grep -Eq 'Record-Route: <sip:[^>]*@example.net;lr>' '$TEST_TMP/bob.out' &&
           grep -Eq 'Record-Route: <sip:[^>]*@example.com;lr>' '$TEST_TMP/bob.out'"
check "P1 authenticated P2 as example.net" \
  grep -Eq 'event=tls.peer .*dir=out .*sni=example.net .*authenticated=yes .*found=\{example\.net\}' "$TEST_TMP/p1.log"
sleep 1
$CTRL "$UA_IP" 4444 hangup >"$TEST_TMP/ctrl-hangup.out" 2>&1 && rc=0 || rc=$?
check "baresip hung up (BYE along the route set), bob answered the BYE" \
  bash -c "for _ in \$(seq 50); do grep -q 'result: answered 1 call' '$TEST_TMP/bob.out' && exit 0; sleep 0.1; done; exit 1"

# bob calls alice: P1 must send the INVITE down baresip's registration
# connection (the flow), not open one to its Contact address.
"$SIPSCTL" call --as sip:bob@example.net --transport tls --proxy "$P2_IP:5061" --ca "$PKI/ca.pem" \
  --to sip:alice@example.com --hold 1 >"$TEST_TMP/bob-call.out" 2>&1 && rc=0 || rc=$?
check "bob's call to alice completed (baresip answered 200, BYE 200)" [ "$rc" = 0 ]
check "baresip: the INVITE came down its registration connection (port ${reg_port:-?})" \
  bash -c "sed -E 's/\x1b\[[0-9;]*m//g' '$TEST_TMP/alice.out' |
    grep -A1 -E '^TLS $P1_IP:5061 -> 127\.0\.0\.1:$reg_port\$' | grep -q '^INVITE sip:alice'"
check "P1 opened no connection to baresip" \
  bash -c "! grep -Eq 'event=tls.peer .*dir=out .*peer=$UA_IP:' '$TEST_TMP/p1.log'"

# A P1 whose certificate comes from a CA baresip was not given: does
# baresip refuse it? (Informational: it is baresip's behaviour, not sipsd's.)
trapezoid_conf "$TEST_TMP/bad.conf" example.com "$PKI/untrusted.pem" "$PKI/untrusted.key" "$BAD_IP"
start_sipsd bad "$TEST_TMP/bad.conf"
baresip_conf "$TEST_TMP/carol" "$UA2_IP"
echo "<sip:carol@example.com;transport=tls>;regint=600;outbound=\"sip:$BAD_IP:5061;transport=tls\"" \
  >"$TEST_TMP/carol/accounts"
start_baresip carol "$TEST_TMP/carol"
if wait_log "$TEST_TMP/bad.log" 'event=registrar aor=carol@example.com status=200'; then
  echo "# note: baresip $(baresip -h 2>&1 | sed -nE 's/^baresip v([0-9.]+).*/\1/p') registered to a proxy whose certificate is signed by an untrusted CA: it does not authenticate its proxy (docs/interop.md)"
else
  echo "# note: baresip refused a proxy with an untrusted certificate"
fi

stop_pid "$PID_alice"; stop_pid "$PID_carol"
stop_pid "$PID_p1"; stop_pid "$PID_p2"; stop_pid "$PID_bad"
if [ "$FAILED" -ne 0 ]; then
  for f in bob bob-call ctrl-dial ctrl-hangup; do echo "== $f"; cat "$TEST_TMP/$f.out"; done
  echo "== baresip (alice)"; sed -E 's/\x1b\[[0-9;]*m//g' "$TEST_TMP/alice.out" | tail -150
  echo "== p1"; cat "$TEST_TMP/p1.log"; echo "== p2"; cat "$TEST_TMP/p2.log"
fi
finish
