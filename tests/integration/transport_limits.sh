#!/usr/bin/env bash
# transport_limits.sh: every transport limit refuses or closes the one
# offending connection, is logged and counted, while an established
# connection keeps answering: total connections, handshakes in flight,
# idle timeout, message size, write queue.
source "$(dirname "$0")/lib/common.sh"
RAW="python3 $SIPSD_SRC/tests/integration/lib/sipraw.py"
IP=127.0.33.1
pki="$TEST_TMP/pki"; mkdir -p "$pki"; make_pki "$pki"

cat >"$TEST_TMP/a.conf" <<CONF
workers = 2
[tls]
ca_file = $pki/ca.pem
[limits]
max_conns = 6
max_handshakes = 3
handshake_timeout_ms = 1000
idle_timeout_ms = 1500
max_write_queue = 65536
[domain example.net]
cert = $pki/good.pem
key = $pki/good.key
[listen tcp $IP:5060]
[listen tls $IP:5061]
CONF
start_sipsd a "$TEST_TMP/a.conf"
log="$TEST_TMP/a.log"

check "connection over max_conns refused while an earlier one keeps answering" \
  $RAW max-conns "$IP" 5060 6
check "max_conns refusal logged" grep -q 'event=conn.refused .*reason=max_conns limit=6' "$log"
sleep 0.3
check "TLS handshakes over max_handshakes refused, stalled ones dropped, later accepted" \
  $RAW max-handshakes "$IP" 5061 3 --timeout 1
check "max_handshakes refusal logged" grep -q 'event=conn.refused .*reason=max_handshakes limit=3' "$log"
check "silent connection closed at the idle timeout, keep-alive one kept" \
  $RAW idle "$IP" 5060 --timeout 1.5
check "oversize message and endless header block closed, good connection answers" \
  $RAW oversize "$IP" 5060
check "oversize logged" grep -q 'event=conn.framing_error' "$log"
check "peer that never reads closed at the write-queue limit, others answer" \
  $RAW no-reader "$IP" 5060 --seconds 20
check "write-queue limit logged" grep -q 'event=conn.write_queue_full .*limit=65536' "$log"
out=$("$SIPSCTL" options "sip:$IP:5060;transport=tcp" --timeout 5) && rc=0 || rc=$?
check "sipsd still answers after every limit was hit" [ "$rc" = 0 ]

stop_pid "$PID_a"
check "sipsd stopped cleanly" grep -q 'event=stopped' "$log"
finish
