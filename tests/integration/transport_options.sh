#!/usr/bin/env bash
# transport_options.sh: OPTIONS over UDP, TCP and TLS to a running sipsd;
# RFC 5922 refusal inside the handshake; mutual TLS identities logged;
# per-source connection limit; handshake timeout; CRLF keep-alive.
source "$(dirname "$0")/lib/common.sh"
RAW="python3 $SIPSD_SRC/tests/integration/lib/sipraw.py"
IP=127.0.31.1
pki="$TEST_TMP/pki"; mkdir -p "$pki"; make_pki "$pki"

cat >"$TEST_TMP/p2.conf" <<CONF
workers = 2
[tls]
ca_file = $pki/ca.pem
[limits]
max_conns_per_ip = 4
handshake_timeout_ms = 1000
[domain example.net]
cert = $pki/good.pem
key = $pki/good.key
[domain example.org]
cert = $pki/t3-dns.pem
key = $pki/t3-dns.key
[listen udp $IP:5060]
[listen tcp $IP:5060]
[listen udp [::1]:25060]
[listen tcp [::1]:25060]
[listen tls $IP:5061]
domain = example.net
[listen tls $IP:5062]
domain = example.org
CONF
check "config checks (sipsd -t)" "$SIPSD" -t -c "$TEST_TMP/p2.conf"
start_sipsd p2 "$TEST_TMP/p2.conf"
log="$TEST_TMP/p2.log"

out=$("$SIPSCTL" options "sip:$IP:5060" --timeout 5) && rc=0 || rc=$?
check "OPTIONS over UDP answered 200" [ "$rc" = 0 -a "$out" = "SIP/2.0 200 OK" ]
out=$("$SIPSCTL" options "sip:$IP:5060;transport=tcp" --timeout 5) && rc=0 || rc=$?
check "OPTIONS over TCP answered 200" [ "$rc" = 0 -a "$out" = "SIP/2.0 200 OK" ]
out=$("$SIPSCTL" options "sip:[::1]:25060" --timeout 5) && rc=0 || rc=$?
check "OPTIONS over UDP on IPv6 answered 200" [ "$rc" = 0 -a "$out" = "SIP/2.0 200 OK" ]
out=$("$SIPSCTL" options "sip:[::1]:25060;transport=tcp" --timeout 5) && rc=0 || rc=$?
check "OPTIONS over TCP on IPv6 answered 200" [ "$rc" = 0 -a "$out" = "SIP/2.0 200 OK" ]
out=$("$SIPSCTL" options "sips:example.net" --via "$IP:5061" --ca "$pki/ca.pem" --timeout 5) && rc=0 || rc=$?
check "OPTIONS over TLS answered 200" [ "$rc" = 0 ]
check "TLS client saw the server identities {example.net}" grep -q 'server-identities={example.net}' <<<"$out"
check "TLS 1.2 or 1.3 negotiated" grep -Eq 'version=TLSv1\.[23]' <<<"$out"
check "server logged the UA as unauthenticated" wait_log "$log" 'event=tls.peer .*dir=in .*sni=example.net .*authenticated=no'

# RFC 5922 §7.3: the server at 5062 presents, by default, a certificate
# proving only p2.example.net. A client wanting example.com (a domain this
# sipsd does not serve, so SNI picks no other certificate) must refuse
# inside the handshake, sending nothing.
before=$(grep -c 'event=tls.peer' "$log" || true)
out=$("$SIPSCTL" options "sips:example.com" --via "$IP:5062" --ca "$pki/ca.pem" --timeout 5) && rc=0 || rc=$?
check "wrong-domain server refused (exit 1)" [ "$rc" = 1 ]
check "refusal names wanted and found" grep -q 'wanted=example.com found={p2.example.net}' <<<"$out"
sleep 0.3
after=$(grep -c 'event=tls.peer' "$log" || true)
check "server never completed the refused handshake" [ "$before" = "$after" ]
check "server logged the failed handshake" grep -q 'event=tls.handshake_failed' "$log"

# Spec rule 10: one socket, several domains: asked for example.net by SNI,
# the 5062 listener (default example.org) presents example.net's certificate.
out=$("$SIPSCTL" options "sips:example.net" --via "$IP:5062" --ca "$pki/ca.pem" --timeout 5) && rc=0 || rc=$?
check "SNI picks the certificate of the domain asked for (example.net on the example.org listener)" [ "$rc" = 0 ]
check "and the client saw {example.net}" grep -q 'server-identities={example.net}' <<<"$out"

# Mutual TLS: a client certificate with only id-kp-sipDomain (RFC 5924).
out=$("$SIPSCTL" options "sips:example.net" --via "$IP:5061" --ca "$pki/ca.pem" \
      --cert "$pki/eku-sip.pem" --key "$pki/eku-sip.key" --from sip:probe@example.net --timeout 5) && rc=0 || rc=$?
check "mutual TLS with a sipDomain-only client certificate answered" [ "$rc" = 0 ]
check "server logged the client's identities and fingerprint" \
  wait_log "$log" 'event=tls.peer .*dir=in .*authenticated=yes .*found=\{example\.net\} .*sha256=[0-9A-F:]{95}'

# CRLF keep-alive over TCP (RFC 5626 §3.5.1).
check "double CRLF answered with one CRLF" $RAW crlf-ping "$IP" 5060

# Per-source limit: 4 connections held, the 5th closed, the first still served.
check "connection over the per-source limit refused while an earlier one keeps answering" \
  $RAW per-ip-limit "$IP" 5060 4
check "refusal logged with its limit" grep -q 'event=conn.refused .*reason=max_conns_per_ip limit=4' "$log"

# A client that never finishes its handshake is dropped at the timeout (1 s).
check "stalled handshake closed at the handshake timeout" $RAW stalled-handshake "$IP" 5061 --min 0.8 --max 4

# A second sipsd on the same addresses must refuse to start: SO_REUSEPORT
# would otherwise let it take half the traffic silently.
"$SIPSD" -c "$TEST_TMP/p2.conf" >"$TEST_TMP/dup.log" 2>&1 && rc=0 || rc=$?
check "a second sipsd on the same address refuses to start" [ "$rc" = 1 ]
check "and says the address is in use" grep -q 'address already in use by another process' "$TEST_TMP/dup.log"

stop_pid "$PID_p2"
check "sipsd stopped cleanly" grep -q 'event=stopped' "$log"
finish
