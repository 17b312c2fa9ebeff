#!/usr/bin/env bash
# reload.sh: SIGHUP re-reads certificates and the configuration. A new
# certificate is used by new handshakes while a running TLS connection
# keeps working; a certificate file replaced by garbage, or a config with an
# error, is refused with a clear log line and the old state kept.
source "$(dirname "$0")/lib/common.sh"
PROBE="python3 $SIPSD_SRC/tests/integration/lib/tlsprobe.py"
IP=127.0.39.1
pki="$TEST_TMP/pki"; mkdir -p "$pki"; make_pki "$pki"
cp "$pki/good.pem" "$TEST_TMP/cur.pem"; cp "$pki/good.key" "$TEST_TMP/cur.key"
write_conf() {
  cat >"$TEST_TMP/r.conf" <<CONF
workers = 2
[tls]
ca_file = $pki/ca.pem
[domain example.net]
cert = $TEST_TMP/cur.pem
key = $TEST_TMP/cur.key
[listen tls $IP:5061]
$1
CONF
}
write_conf ""
start_sipsd r "$TEST_TMP/r.conf"
log="$TEST_TMP/r.log"
reloads() { grep -c "event=reload result=$1" "$log" || true; }

fp1=$($PROBE fingerprint "$IP" 5061 "$pki/ca.pem" example.net)
want1=$(openssl x509 -in "$pki/good.pem" -outform DER | sha256sum | cut -d' ' -f1)
check "before reload: the first certificate is served" [ "$fp1" = "$want1" ]

# A TLS connection opened before the reload, kept across it.
mkfifo "$TEST_TMP/ctl"
$PROBE hold "$IP" 5061 "$pki/ca.pem" example.net "$TEST_TMP/ctl" "$TEST_TMP/held.out" &
HOLD=$!
PIDS+=("$HOLD")
exec 3<>"$TEST_TMP/ctl"
echo options >&3
wait_log "$TEST_TMP/held.out" '^SIP/2.0 200' || true
check "held connection answers before the reload" grep -q '^SIP/2.0 200' "$TEST_TMP/held.out"

# 1. A new certificate for the same domain, then SIGHUP.
cp "$pki/eku-sip-server.pem" "$TEST_TMP/cur.pem"; cp "$pki/eku-sip-server.key" "$TEST_TMP/cur.key"
kill -HUP "$PID_r"
wait_log "$log" 'event=reload result=done' || true
check "reload with a new certificate is done" [ "$(reloads done)" = 1 ]
fp2=$($PROBE fingerprint "$IP" 5061 "$pki/ca.pem" example.net)
want2=$(openssl x509 -in "$pki/eku-sip-server.pem" -outform DER | sha256sum | cut -d' ' -f1)
check "new handshakes get the new certificate" [ "$fp2" = "$want2" -a "$fp2" != "$fp1" ]
echo options >&3
for _ in $(seq 50); do [ "$(grep -c '^SIP/2.0 200' "$TEST_TMP/held.out")" -ge 2 ] && break; sleep 0.1; done
check "the connection opened before the reload still answers" \
  [ "$(grep -c '^SIP/2.0 200' "$TEST_TMP/held.out")" -ge 2 ]

# 2. The certificate file replaced by garbage: refused, old state kept.
echo "this is not a certificate" >"$TEST_TMP/cur.pem"
kill -HUP "$PID_r"
for _ in $(seq 50); do [ "$(reloads refused)" -ge 1 ] && break; sleep 0.1; done
check "a garbage certificate is refused" [ "$(reloads refused)" = 1 ]
check "the refusal says why and that nothing changed" \
  grep -q 'event=reload result=refused .*state=unchanged' "$log"
fp3=$($PROBE fingerprint "$IP" 5061 "$pki/ca.pem" example.net)
check "after the refused reload the previous certificate is still served" [ "$fp3" = "$want2" ]

# 3. A configuration with an error: refused, naming the file and line.
cp "$pki/good.pem" "$TEST_TMP/cur.pem"; cp "$pki/good.key" "$TEST_TMP/cur.key"
write_conf "this line is wrong"
kill -HUP "$PID_r"
for _ in $(seq 50); do [ "$(reloads refused)" -ge 2 ] && break; sleep 0.1; done
check "a configuration error is refused with file and line" \
  grep -Eq "event=reload result=refused reason=\".*r.conf:[0-9]+: expected 'key = value'" "$log"
fp4=$($PROBE fingerprint "$IP" 5061 "$pki/ca.pem" example.net)
check "and the running certificate stays" [ "$fp4" = "$want2" ]

# 4. Fixed again: the good certificate comes back.
write_conf ""
kill -HUP "$PID_r"
for _ in $(seq 50); do [ "$(reloads done)" -ge 2 ] && break; sleep 0.1; done
fp5=$($PROBE fingerprint "$IP" 5061 "$pki/ca.pem" example.net)
check "a good reload after refused ones applies" [ "$fp5" = "$want1" ]
echo quit >&3
exec 3>&-
stop_pid "$PID_r"
check "sipsd stopped cleanly" grep -q 'event=stopped' "$log"
[ "$FAILED" -eq 0 ] || grep 'event=reload\|cfg.tls' "$log"
finish
