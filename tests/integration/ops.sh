#!/usr/bin/env bash
# ops.sh: running sipsd as a service: readiness, reload and stop reported
# to systemd (Type=notify), privileges dropped to `user` once the sockets
# are bound, and warnings before a domain's or a peer's certificate expires.
source "$(dirname "$0")/lib/common.sh"
IP=127.0.42.1
pki="$TEST_TMP/pki"; mkdir -p "$pki"; make_pki "$pki"
# A certificate for example.net that expires in 10 days.
cat >"$TEST_TMP/ext.cnf" <<'EXT'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectAltName = URI:sip:example.net
EXT
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TEST_TMP/soon.key" 2>/dev/null
openssl req -new -key "$TEST_TMP/soon.key" -subj /CN=example.net -out "$TEST_TMP/soon.csr" 2>/dev/null
openssl x509 -req -in "$TEST_TMP/soon.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial \
  -days 10 -extfile "$TEST_TMP/ext.cnf" -out "$TEST_TMP/soon.pem" 2>/dev/null
chmod 644 "$TEST_TMP"/soon.* ; chmod 755 "$TEST_TMP" "$pki"; chmod 644 "$pki"/*.pem
user_line=""
[ "$(id -u)" = 0 ] && getent passwd nobody >/dev/null && user_line="user = nobody"
cat >"$TEST_TMP/o.conf" <<CONF
workers = 2
$user_line
cert_warn_days = 30
[tls]
ca_file = $pki/ca.pem
[domain example.net]
cert = $TEST_TMP/soon.pem
key = $TEST_TMP/soon.key
[listen tls $IP:5061]
[listen udp $IP:5060]
CONF
python3 "$SIPSD_SRC/tests/integration/lib/notify_listen.py" "$TEST_TMP/notify.sock" "$TEST_TMP/notify.out" 20 &
PIDS+=("$!")
for _ in $(seq 20); do [ -S "$TEST_TMP/notify.sock" ] && break; sleep 0.1; done
chmod 666 "$TEST_TMP/notify.sock" # as systemd's: writable after the privilege drop
NOTIFY_SOCKET="$TEST_TMP/notify.sock" start_sipsd o "$TEST_TMP/o.conf"
log="$TEST_TMP/o.log"
check "readiness reported to systemd (READY=1)" wait_log "$TEST_TMP/notify.out" '^READY=1'
check "certificate expiring in 10 days warned about" \
  grep -Eq 'level=warn event=tls.cert_expiry domain=example.net .*days_left=(9|10) warn_days=30' "$log"
if [ -n "$user_line" ]; then
  uid=$(awk '/^Uid:/{print $2}' "/proc/$PID_o/status")
  check "privileges dropped to nobody after binding (uid $uid)" [ "$uid" = "$(id -u nobody)" ]
  check "the drop is logged" grep -q 'event=privileges user=nobody' "$log"
else
  echo "# note: not root: the user switch is not exercised"
fi
out=$("$SIPSCTL" options "sips:example.net" --via "$IP:5061" --ca "$pki/ca.pem" --timeout 5) && rc=0 || rc=$?
check "serving TLS after the privilege drop" [ "$rc" = 0 ]
# A peer presenting a certificate that expires in 10 days (mutual TLS).
"$SIPSCTL" options "sips:example.net" --via "$IP:5061" --ca "$pki/ca.pem" --cert "$TEST_TMP/soon.pem" \
  --key "$TEST_TMP/soon.key" --from sip:probe@example.net --timeout 5 >/dev/null || true
check "a peer certificate expiring soon is warned about" \
  wait_log "$log" 'level=warn event=tls.peer_cert_expiry .*identities=\{example.net\} days_left=(9|10)'
kill -HUP "$PID_o"
check "reload reported (RELOADING=1 then READY=1)" wait_log "$TEST_TMP/notify.out" '^RELOADING=1'
for _ in $(seq 30); do [ "$(grep -c '^READY=1' "$TEST_TMP/notify.out")" -ge 2 ] && break; sleep 0.1; done
check "ready again after the reload" [ "$(grep -c '^READY=1' "$TEST_TMP/notify.out")" -ge 2 ]
stop_pid "$PID_o"
check "stop reported (STOPPING=1)" grep -q '^STOPPING=1' "$TEST_TMP/notify.out"
check "sipsd stopped cleanly" grep -q 'event=stopped' "$log"
finish
