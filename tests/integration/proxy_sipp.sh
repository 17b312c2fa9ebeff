#!/usr/bin/env bash
# proxy_sipp.sh: sipsd as proxy and registrar between SIPp user agents over
# UDP and TCP: register and call, 486, CANCEL, forking to two contacts
# (one answers, the other is cancelled), 483 at Max-Forwards 0, 482 on a loop.
source "$(dirname "$0")/lib/common.sh"
SC="$SIPSD_SRC/tests/integration/sipp"
P=127.0.35.1            # the proxy
A=127.0.35.2 B=127.0.35.3 C=127.0.35.4   # user agents
pki="$TEST_TMP/pki"; mkdir -p "$pki"; make_pki "$pki"
printf 'SEQUENTIAL\nexample.com;70\n' >"$TEST_TMP/busy.csv"
printf 'SEQUENTIAL\nexample.com;0\n' >"$TEST_TMP/mf0.csv"
printf 'SEQUENTIAL\nloop.test;70\n' >"$TEST_TMP/loop.csv"
printf 'SEQUENTIAL\nexample.com;udp\n' >"$TEST_TMP/dom.csv"
printf 'SEQUENTIAL\nexample.com;tcp\n' >"$TEST_TMP/domtcp.csv"
for s in 486 483 482; do sed "s/STATUS/$s/" "$SC/uac_fail.xml" >"$TEST_TMP/uac_$s.xml"; done

cat >"$TEST_TMP/p.conf" <<CONF
workers = 1
[domain example.com]
cert = $pki/good.pem
key = $pki/good.key
[listen udp $P:5060]
[listen tcp $P:5060]
[route loop.test]
next_hop = udp $P:5060
CONF
start_sipsd p "$TEST_TMP/p.conf"
cd "$TEST_TMP"

# sipp_run NAME ARGS...: one bounded SIPp run (-m 1), exit status kept.
sipp_run() {
  local name=$1; shift
  timeout 30 sipp "$@" -m 1 -timeout 20s -timeout_error -trace_err -trace_msg \
    -message_file "$TEST_TMP/$name.msg" -error_file "$TEST_TMP/$name.err" >"$TEST_TMP/$name.out" 2>&1
}
# sipp_bg NAME ARGS...: a SIPp UAS in the background (its own PID is kept,
# so cleanup stops it); wait_bg NAME waits (bounded) and gets its status.
declare -A BG
sipp_bg() {
  local name=$1; shift
  timeout 30 sipp "$@" -m 1 -timeout 20s -timeout_error -trace_err -trace_msg \
    -message_file "$TEST_TMP/$name.msg" -error_file "$TEST_TMP/$name.err" >"$TEST_TMP/$name.out" 2>&1 &
  BG[$name]=$!
  PIDS+=("$!")
  sleep 0.5
}
wait_bg() {
  local rc=0
  wait "${BG[$1]}" || rc=$?
  [ "$rc" = 0 ]
}
register() { # register USER IP PORT CONTACT-TRANSPORT (the REGISTER goes over UDP)
  local csv="$TEST_TMP/dom.csv"; [ "$4" = tcp ] && csv="$TEST_TMP/domtcp.csv"
  sipp_run "reg-$1-$2-$3" -sf "$SC/register.xml" -inf "$csv" -s "$1" -i "$2" -p "$3" "$P:5060"
}

# 1. UDP: bob registers, caller calls bob: INVITE/180/200/ACK/BYE/200.
check "bob registers over UDP" register bob "$A" 5070 udp
sipp_bg uas1 -sf "$SC/uas_call.xml" -s bob -i "$A" -p 5070
check "UDP call set up and torn down (caller side)" \
  sipp_run uac1 -sf "$SC/uac_call.xml" -inf "$TEST_TMP/dom.csv" -s bob -i "$B" -p 5071 "$P:5060"
check "UDP call set up and torn down (callee side)" wait_bg uas1

# 2. TCP on both sides: carol's contact asks for TCP; the caller uses TCP.
check "carol registers a TCP contact (over UDP)" register carol "$A" 5072 tcp
sipp_bg uas2 -sf "$SC/uas_call.xml" -s carol -i "$A" -p 5072 -t t1
check "TCP call set up and torn down (caller side)" \
  sipp_run uac2 -sf "$SC/uac_call.xml" -inf "$TEST_TMP/dom.csv" -s carol -i "$B" -p 5073 -t t1 "$P:5060"
check "TCP call set up and torn down (callee side)" wait_bg uas2

# 3. 486 Busy Here passes back; the ACK stays hop by hop.
check "dave registers" register dave "$A" 5074 udp
sipp_bg uas3 -sf "$SC/uas_busy.xml" -s dave -i "$A" -p 5074
check "486 reaches the caller" \
  sipp_run uac3 -sf "$TEST_TMP/uac_486.xml" -inf "$TEST_TMP/busy.csv" -s dave -i "$B" -p 5075 "$P:5060"
check "callee got its ACK for the 486" wait_bg uas3

# 4. CANCEL: the caller cancels while erin rings.
check "erin registers" register erin "$A" 5076 udp
sipp_bg uas4 -sf "$SC/uas_cancel.xml" -s erin -i "$A" -p 5076
check "CANCEL answered 200, INVITE 487 (caller side)" \
  sipp_run uac4 -sf "$SC/uac_cancel.xml" -inf "$TEST_TMP/dom.csv" -s erin -i "$B" -p 5077 "$P:5060"
check "callee was cancelled and got its ACK" wait_bg uas4

# 5. Forking: frank has two contacts; one answers, the other is cancelled.
check "frank registers contact 1" register frank "$A" 5078 udp
check "frank registers contact 2" register frank "$C" 5078 udp
sipp_bg uas5a -sf "$SC/uas_cancel.xml" -s frank -i "$C" -p 5078
sleep 0.2
sipp_bg uas5b -sf "$SC/uas_call.xml" -s frank -i "$A" -p 5078
check "forked call answered by one contact (caller side)" \
  sipp_run uac5 -sf "$SC/uac_call.xml" -inf "$TEST_TMP/dom.csv" -s frank -i "$B" -p 5079 "$P:5060"
check "answering contact completed the call" wait_bg uas5b
check "ringing contact was cancelled" wait_bg uas5a

# 6. Max-Forwards 0: 483 Too Many Hops, nothing forwarded.
check "483 at Max-Forwards 0" \
  sipp_run uac6 -sf "$TEST_TMP/uac_483.xml" -inf "$TEST_TMP/mf0.csv" -s bob -i "$B" -p 5081 "$P:5060"

# 7. A loop (loop.test is routed back to ourselves): 482 Loop Detected.
check "482 on a loop" \
  sipp_run uac7 -sf "$TEST_TMP/uac_482.xml" -inf "$TEST_TMP/loop.csv" -s x -i "$B" -p 5083 "$P:5060"

# 8. RFC 3261 §18.1.1: an INVITE over 1300 bytes for a UDP contact goes
# over TCP (gina's contact says UDP; her SIPp listens on TCP only).
check "gina registers a UDP contact" register gina "$A" 5092 udp
sipp_bg uas8 -sf "$SC/uas_call.xml" -s gina -i "$A" -p 5092 -t t1
check "a large INVITE reaches a UDP contact over TCP (caller side)" \
  sipp_run uac8 -sf "$SC/uac_big.xml" -inf "$TEST_TMP/dom.csv" -s gina -i "$B" -p 5093 "$P:5060"
check "a large INVITE reaches a UDP contact over TCP (callee side)" wait_bg uas8
check "it arrived over TCP with a TCP Via" grep -q 'Via: SIP/2.0/TCP 127.0.35.1:5060' "$TEST_TMP/uas8.msg"

# 9. A request from a strict router (RFC 3261 §16.4): our Record-Route URI as
# Request-URI, the real one as the last Route value.
check "strict routing: the last Route value becomes the Request-URI" \
  python3 "$SIPSD_SRC/tests/integration/lib/sipraw.py" strict-route "$P" 5060 example.com 127.0.35.9 5099

stop_pid "$PID_p"
check "sipsd stopped cleanly" grep -q 'event=stopped' "$TEST_TMP/p.log"
if [ "$FAILED" -ne 0 ]; then
  for f in "$TEST_TMP"/*.err; do
    grep -qv 'Failed to delete FD\|following events' "$f" 2>/dev/null && { echo "== $f"; head -40 "$f"; }
  done
  for f in "$TEST_TMP"/uac5.msg "$TEST_TMP"/uas5a.msg "$TEST_TMP"/uas5b.msg; do
    [ -s "$f" ] && { echo "== $f"; grep -E '^(INVITE|ACK|BYE|CANCEL|SIP/2.0)|message (sent|received)' "$f" | head -40; }
  done
  tail -30 "$TEST_TMP/p.log"
fi
finish
