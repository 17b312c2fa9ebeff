#!/usr/bin/env bash
# interop_kamailio.sh: Kamailio (Debian's kamailio + kamailio-tls-modules)
# as the proxy of a foreign domain, example.org, peering with sipsd's P2
# (example.net) over mutual TLS in both directions. Kamailio holds a
# certificate made here with the matrix CA: URI:sip:example.org.
#  1. Kamailio -> sipsd: carol@example.org (sipsctl over UDP to Kamailio)
#     calls bob@example.net; Kamailio relays over TLS with its client
#     certificate and SNI example.net (kamailio/kamailio.cfg); P2 logs
#     Kamailio's identity set {example.org} as authenticated; the call is set
#     up and torn down through both proxies.
#  2. sipsd -> Kamailio: bob calls dave@example.org; P2 finds Kamailio by
#     RFC 3263 (dnsmasq), sends SNI example.org, authenticates it as
#     example.org and presents its own certificate, which Kamailio verifies;
#     Kamailio answers 486 (OPTIONS: 200), which comes back to bob.
# Serial and light on purpose: Debian 12's Kamailio 5.6 with OpenSSL 3 is
# known to crash under parallel TLS handshakes. Kamailio runs in the
# foreground (-DD -E), -m 64 -M 16, stopped by PID.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/dnsmasq.sh"
P1_IP=127.0.63.1 P2_IP=127.0.63.2 DNS_IP=127.0.63.53
KAM_IP=127.0.63.10
source "$(dirname "$0")/lib/trapezoid.sh"
KAM_SRC="$(cd "$(dirname "$0")" && pwd)/kamailio"

if ! command -v kamailio >/dev/null ||
   [ ! -e /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so ]; then
  echo "# SKIP: kamailio or its TLS module is not installed (scripts/install-deps.sh test installs kamailio kamailio-tls-modules)"
  finish; exit
fi
PKI="$TEST_TMP/pki"; mkdir -p "$PKI"; make_pki "$PKI"

# Kamailio's certificate: URI:sip:example.org, from the matrix's root CA.
KAM="$TEST_TMP/kam"; mkdir -p "$KAM"
cat >"$KAM/ext.cnf" <<'EXT'
[kam]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = URI:sip:example.org
EXT
{
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$KAM/kam.key" &&
  openssl req -new -key "$KAM/kam.key" -subj /CN=kamailio.example.org -out "$KAM/kam.csr" &&
  openssl x509 -req -in "$KAM/kam.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -set_serial 0x6b616d \
    -days 30 -sha256 -extfile "$KAM/ext.cnf" -extensions kam -out "$KAM/kam.pem"
} >"$KAM/openssl.log" 2>&1
cp "$PKI/ca.pem" "$KAM/ca.pem"
check "Kamailio's certificate carries the identity example.org (sipsctl cert)" \
  bash -c "'$SIPSCTL' cert --domain example.org --ca '$PKI/ca.pem' '$KAM/kam.pem' | grep -q 'example.org'"
for f in kamailio.cfg tls.cfg; do
  sed -e "s|@KAM_IP@|$KAM_IP|g" -e "s|@P2_IP@|$P2_IP|g" -e "s|@DIR@|$KAM|g" \
    "$KAM_SRC/$f" >"$KAM/$f"
done

trapezoid_dns "$TEST_TMP/records" \
  'naptr-record=example.org,10,50,"s","SIPS+D2T","","_sips._tcp.example.org"' \
  "srv-host=_sips._tcp.example.org,kamailio.example.org,5061,10,10" \
  "host-record=kamailio.example.org,$KAM_IP"
start_dnsmasq_any "$TEST_TMP/records" "$DNS_IP" dns
DNS_ADDR=$DNSMASQ_ADDR
trapezoid_conf "$TEST_TMP/p2.conf" example.net "$PKI/good.pem" "$PKI/good.key" "$P2_IP"
start_sipsd p2 "$TEST_TMP/p2.conf"

if ! kamailio -c -f "$KAM/kamailio.cfg" >"$KAM/check.log" 2>&1; then
  not_ok "kamailio -c accepts the configuration"; cat "$KAM/check.log"; finish; exit
fi
kamailio -f "$KAM/kamailio.cfg" -DD -E -m 64 -M 16 -Y "$KAM" >"$TEST_TMP/kam.log" 2>&1 &
KAM_PID=$!; PIDS+=("$KAM_PID")
# Up = it answers an OPTIONS over UDP (no TLS handshake spent on probing).
up=no
for _ in $(seq 20); do
  kill -0 "$KAM_PID" 2>/dev/null || break
  if "$SIPSCTL" options sip:example.org --via "$KAM_IP:5060" --transport udp --timeout 1 \
       >"$TEST_TMP/kam-probe.out" 2>&1; then up=yes; break; fi
  sleep 0.2
done
if [ $up != yes ]; then
  echo "# SKIP: Kamailio did not start here; its log:"; tail -30 "$TEST_TMP/kam.log"
  stop_pid "$KAM_PID"; finish; exit
fi
ok "Kamailio started (pid $KAM_PID, UDP $KAM_IP:5060, TLS $KAM_IP:5061)"

# bob at P2 (sip: AOR over TLS: the calls from Kamailio are sip:).
"$SIPSCTL" call --answer --as sip:bob@example.net --transport tls --proxy "$P2_IP:5061" \
  --ca "$PKI/ca.pem" --calls 1 --wait 30 >"$TEST_TMP/bob.out" 2>&1 &
BOB=$!; PIDS+=("$BOB")
check "bob registered at P2" wait_log "$TEST_TMP/bob.out" '<-- SIP/2.0 200 OK \(1 REGISTER\)'

# ---- 1. Kamailio -> sipsd
"$SIPSCTL" call --as sip:carol@example.org --transport udp --proxy "$KAM_IP:5060" \
  --to sip:bob@example.net --hold 1 --timeout 10 >"$TEST_TMP/carol.out" 2>&1 && rc=0 || rc=$?
check "1: carol's call through Kamailio and P2 completed (INVITE/200/ACK/BYE/200)" [ "$rc" = 0 ]
check "1: bob answered and saw the BYE" \
  bash -c "for _ in \$(seq 50); do grep -q 'result: answered 1 call' '$TEST_TMP/bob.out' && exit 0; sleep 0.1; done; exit 1"
check "1: P2 authenticated Kamailio's client certificate: found={example.org}" \
  grep -Eq 'event=tls.peer .*dir=in .*authenticated=yes .*found=\{example\.org\}' "$TEST_TMP/p2.log"
check "1: Kamailio sent SNI example.net" \
  grep -Eq 'event=tls.peer .*dir=in .*sni=example.net .*found=\{example\.org\}' "$TEST_TMP/p2.log"
check "1: Kamailio relayed to P2 over TLS (its log)" \
  grep -q "kam-relay to=sip:$P2_IP:5061;transport=tls sni=example.net method=INVITE" "$TEST_TMP/kam.log"
check "1: the ACK and BYE followed the route set through Kamailio to P2" \
  bash -c "grep -q 'kam-relay .*method=ACK' '$TEST_TMP/kam.log' && grep -q 'kam-relay .*method=BYE' '$TEST_TMP/kam.log'"
check "1: one TLS connection from Kamailio carried INVITE, ACK and BYE" \
  [ "$(grep -Ec 'event=tls.peer .*dir=in .*found=\{example\.org\}' "$TEST_TMP/p2.log")" = 1 ]
check "1: bob saw Record-Route from P2 (example.net) and Kamailio" \
  bash -c "grep -Eq 'Record-Route: <sip:[^>]*@example.net;lr>' '$TEST_TMP/bob.out' &&
           grep -Eq 'Record-Route: <sip:$KAM_IP' '$TEST_TMP/bob.out'"
check "1: P2 accepted From example.org from the peer verified as example.org (no policy warning)" \
  bash -c "! grep -q 'event=policy' '$TEST_TMP/p2.log'"

# ---- 2. sipsd -> Kamailio
"$SIPSCTL" call --as sip:bob@example.net --transport tls --proxy "$P2_IP:5061" --ca "$PKI/ca.pem" \
  --to sip:dave@example.org --timeout 10 >"$TEST_TMP/bob-call.out" 2>&1 && rc=0 || rc=$?
check "2: bob's call to dave@example.org came back 486 from Kamailio" \
  grep -q 'result: call failed with 486' "$TEST_TMP/bob-call.out"
check "2: P2 authenticated Kamailio as example.org with SNI example.org" \
  grep -Eq "event=tls.peer .*dir=out peer=$KAM_IP:5061 sni=example.org .*authenticated=yes .*wanted=example.org found=\{example\.org\}" \
  "$TEST_TMP/p2.log"
check "2: Kamailio verified P2's client certificate (verified=1, san_uri=sip:example.net)" \
  grep -Eq 'kam-peer proto=tls verified=1 san_uri=sip:example.net .*sni=example.org' "$TEST_TMP/kam.log"
"$SIPSCTL" options sip:example.org --via "$KAM_IP:5061" --transport tls --ca "$PKI/ca.pem" \
  --cert "$PKI/good.pem" --key "$PKI/good.key" >"$TEST_TMP/options.out" 2>&1 && rc=0 || rc=$?
check "2: sipsctl OPTIONS with example.net's certificate: Kamailio proven as example.org, 200" \
  bash -c "[ $rc = 0 ] && grep -q 'authenticated-as=example.org' '$TEST_TMP/options.out'"

check "Kamailio is still running (no crash)" kill -0 "$KAM_PID"
stop_pid "$KAM_PID"; stop_pid "$PID_p2"
# Until it was told to stop: at SIGTERM Kamailio 5.6 may log a CRITICAL
# "receive_fd(): EOF" from its TCP main process, a shutdown race of its own.
check "Kamailio logged no crash and no error while serving" \
  bash -c "! sed '/signal 15 received\|handle_sigs()/,\$d' '$TEST_TMP/kam.log' |
    grep -Eq 'ERROR|CRITICAL|ALERT|BUG|segfault|signal 11|core dump'"
if [ "$FAILED" -ne 0 ]; then
  for f in carol bob bob-call options; do echo "== $f"; cat "$TEST_TMP/$f.out"; done
  echo "== p2"; cat "$TEST_TMP/p2.log"; echo "== kamailio"; grep -v DEBUG "$TEST_TMP/kam.log" | tail -60
fi
finish
