#!/usr/bin/env bash
# control.sh: a running sipsd answers `sipsctl stats`, `connections`,
# `registrations` and `reload` over its control socket, and serves
# Prometheus text at /metrics; the numbers follow what happened.
source "$(dirname "$0")/lib/common.sh"
IP=127.0.43.1
pki="$TEST_TMP/pki"; mkdir -p "$pki"; make_pki "$pki"
cat >"$TEST_TMP/c.conf" <<CONF
workers = 2
control = $TEST_TMP/control.sock
metrics = $IP:9090
[tls]
ca_file = $pki/ca.pem
[domain example.net]
cert = $pki/good.pem
key = $pki/good.key
[listen tls $IP:5061]
[listen udp $IP:5060]
CONF
start_sipsd c "$TEST_TMP/c.conf"
CTL=(--control "$TEST_TMP/control.sock")

# A UA registered over TLS and kept connected.
"$SIPSCTL" call --answer --as sips:bob@example.net --proxy "$IP:5061" --ca "$pki/ca.pem" \
  --calls 1 --wait 20 >"$TEST_TMP/bob.out" 2>&1 &
BOB=$!
PIDS+=("$BOB")
wait_log "$TEST_TMP/bob.out" '200 OK \(1 REGISTER\)' || true
"$SIPSCTL" options "sip:$IP:5060" --timeout 5 >/dev/null

out=$("$SIPSCTL" stats "${CTL[@]}") && rc=0 || rc=$?
check "sipsctl stats answers" [ "$rc" = 0 ]
check "stats count the TLS connection" grep -Eq '^sipsd_connections [1-9]' <<<"$out"
check "stats count the registration" grep -q '^sipsd_registered_bindings 1' <<<"$out"
check "stats count requests" grep -Eq '^sipsd_requests_total [2-9]' <<<"$out"
out=$("$SIPSCTL" connections "${CTL[@]}")
check "connections list bob's TLS flow as unauthenticated" \
  grep -Eq 'proto=tls dir=in peer=127\.0\.0\.1:[0-9]+ tls=TLSv1\.[23] authenticated=no' <<<"$out"
out=$("$SIPSCTL" registrations "${CTL[@]}")
check "registrations list bob's binding on its flow" \
  grep -Eq '^aor=bob@example.net contact=<sips:bob@[^>]*> expires_in=[0-9]+ .*flow=worker[01]:[1-9]' <<<"$out"
metrics=$(python3 - "$IP" <<'PY'
import socket, sys
s = socket.create_connection((sys.argv[1], 9090), timeout=5)
s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
data = b""
while True:
    c = s.recv(65536)
    if not c:
        break
    data += c
print(data.decode())
PY
)
check "/metrics answers 200 with Prometheus text" grep -q '^HTTP/1.1 200 OK' <<<"$metrics"
check "/metrics has typed counters" grep -q '^# TYPE sipsd_messages_received_total counter' <<<"$metrics"
check "/metrics: connections by transport" grep -Eq '^sipsd_connections_by_transport\{transport="tls"\} [1-9]' <<<"$metrics"
check "/metrics: requests by method" grep -Eq '^sipsd_requests_by_method_total\{method="REGISTER"\} 1$' <<<"$metrics"
check "/metrics: responses by class" grep -Eq '^sipsd_responses_total\{class="2xx"\} [2-9]' <<<"$metrics"
check "/metrics: certificate lifetime" grep -Eq '^sipsd_certificate_days_left\{domain="example.net"\} [0-9]+' <<<"$metrics"
check "/metrics: refusals by verdict" grep -q '^sipsd_tls_handshake_refusals_total{verdict="name-mismatch"} 0' <<<"$metrics"
out=$("$SIPSCTL" reload "${CTL[@]}") && rc=0 || rc=$?
check "sipsctl reload is accepted" [ "$rc" = 0 ]
check "and the daemon reloads" wait_log "$TEST_TMP/c.log" 'event=reload result=done'
out=$("$SIPSCTL" bogus-command "${CTL[@]}" 2>&1) && rc=0 || rc=$?
check "an unknown sipsctl command is a usage error" [ "$rc" = 2 ]
stop_pid "$BOB"
stop_pid "$PID_c"
check "the control socket is removed at stop" [ ! -e "$TEST_TMP/control.sock" ]
check "sipsd stopped cleanly" grep -q 'event=stopped' "$TEST_TMP/c.log"
finish
