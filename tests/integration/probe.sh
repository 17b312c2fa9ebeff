#!/usr/bin/env bash
# probe.sh: `sipsctl probe DOMAIN` (docs/probe.md) against the trapezoid
# setup on its own addresses (127.0.75.x): dnsmasq with NAPTR/SRV/A records,
# P2 (sipsd, good.pem: URI:sip:example.net) serving example.net over TLS, TCP
# and UDP, and P3 (sipsd, t3-dns.pem: only DNS:p2.example.net) as the SRV
# target of broken.example.
#  - example.net: exit 0, verdict ok, identities {example.net}, OPTIONS 200
#    on every target, CRLF pong on the streams; --json parses and has the
#    fields;
#  - broken.example: exit 1, RFC 5922 name-mismatch reported with the
#    identities found, and no OPTIONS sent to the refused server;
#  - example.net without --ca (system store): exit 1, untrusted;
#  - dead.example (an SRV target where nothing listens): exit 1;
#  - a name that does not exist, and usage errors: exit 2.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/dnsmasq.sh"
P1_IP=127.0.75.1 P2_IP=127.0.75.2 DNS_IP=127.0.75.53
P3_IP=127.0.75.3   # broken.example's SRV target
DEAD_IP=127.0.75.4 # dead.example's SRV target: nothing listens there
source "$(dirname "$0")/lib/trapezoid.sh"
PKI="$TEST_TMP/pki"; mkdir -p "$PKI"; make_pki "$PKI"

trapezoid_dns "$TEST_TMP/records" \
  'naptr-record=example.net,10,60,"s","SIP+D2T","","_sip._tcp.example.net"' \
  'naptr-record=example.net,10,70,"s","SIP+D2U","","_sip._udp.example.net"' \
  "srv-host=_sip._tcp.example.net,p2.example.net,5060,10,10" \
  "srv-host=_sip._udp.example.net,p2.example.net,5060,10,10" \
  'local=/example/' \
  'naptr-record=broken.example,10,50,"s","SIPS+D2T","","_sips._tcp.broken.example"' \
  "srv-host=_sips._tcp.broken.example,p3.broken.example,5061,10,10" \
  "host-record=p3.broken.example,$P3_IP" \
  "srv-host=_sips._tcp.dead.example,p.dead.example,5061,10,10" \
  "host-record=p.dead.example,$DEAD_IP"
start_dnsmasq_any "$TEST_TMP/records" "$DNS_IP" dns
DNS_ADDR=$DNSMASQ_ADDR
trapezoid_conf "$TEST_TMP/p2.conf" example.net "$PKI/good.pem" "$PKI/good.key" "$P2_IP" \
  "[listen tcp $P2_IP:5060]" "[listen udp $P2_IP:5060]"
trapezoid_conf "$TEST_TMP/p3.conf" broken.example "$PKI/t3-dns.pem" "$PKI/t3-dns.key" "$P3_IP"
start_sipsd p2 "$TEST_TMP/p2.conf"
start_sipsd p3 "$TEST_TMP/p3.conf"

# probe NAME ARGS...: run sipsctl probe (bounded by `timeout`), output in
# $TEST_TMP/NAME.out, exit status in $TEST_TMP/NAME.rc.
probe() {
  local name=$1; shift
  local rc=0
  timeout 60 "$SIPSCTL" probe "$@" >"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.err" || rc=$?
  echo "$rc" >"$TEST_TMP/$name.rc"
}
rc_is() { [ "$(cat "$TEST_TMP/$1.rc")" = "$2" ]; }
has() { grep -Eq -- "$2" "$TEST_TMP/$1.out"; }
# json NAME 'STMT; ...; EXPR': EXPR over `j` (the parsed output) is true,
# after the assignments before it.
json() {
  python3 - "$TEST_TMP/$1.out" "$2" <<'PY'
import json, sys
ns = {"j": json.load(open(sys.argv[1]))}
*pre, last = sys.argv[2].split("; ")
exec("\n".join(pre), ns)
sys.exit(0 if eval(last, ns) else 1)
PY
}
CA=(--ca "$PKI/ca.pem" --dns "$DNS_ADDR" --timeout 3)

# ---- the good domain
probe good example.net "${CA[@]}"
echo "== sipsctl probe example.net"; cat "$TEST_TMP/good.out"
check "good: exit 0" rc_is good 0
check "good: summary ok" has good '^summary: ok '
check "good: no problems listed" bash -c "! grep -q '^problems:' '$TEST_TMP/good.out'"
check "good: sips: resolves to the TLS target (NAPTR SIPS+D2T, SRV)" \
  has good "^  sips:example.net +1 target: tls $P2_IP:5061 \(p2.example.net\)"
check "good: sip: resolves to TLS, TCP and UDP targets" \
  has good "^  sip:example.net +3 targets: tls $P2_IP:5061 .*tcp $P2_IP:5060 .*udp $P2_IP:5060"
check "good: three targets, the TLS one found by both URIs" \
  has good "^target 1/3: tls $P2_IP:5061"
check "good: SRV host reported" has good '^  SRV host: +p2.example.net \(priority 10, weight 10\)'
check "good: TLS version and SNI" has good '^  TLS version: +TLSv1\.[23] \(SNI example.net\)'
check "good: identities {example.net} from a sip: URI" \
  has good '^  identities: +\{example.net\} \(source uri\)'
check "good: RFC 5922 ok for example.net" has good '^  RFC 5922: +ok \(authenticates example.net\)'
check "good: EKU ok (role server)" has good '^  EKU: +ok \(RFC 5924, role server'
check "good: expiry with days left" has good '^  expiry: +notAfter 20[0-9-]+T[0-9:]+Z \([0-9]+ days left\)'
check "good: OPTIONS sips:example.net answered 200 over TLS" \
  has good '^  OPTIONS: +sips:example.net -> SIP/2.0 200 OK'
check "good: OPTIONS sip:example.net answered 200 over TCP and UDP" \
  [ "$(grep -c '^  OPTIONS: *sip:example.net -> SIP/2.0 200 OK' "$TEST_TMP/good.out")" = 2 ]
check "good: CRLF pong on TLS and TCP" [ "$(grep -c '^  CRLF ping: *pong$' "$TEST_TMP/good.out")" = 2 ]
check "good: no CRLF ping on UDP" has good '^  CRLF ping: +n/a \(UDP\)'

probe good-json example.net "${CA[@]}" --json
check "good --json: exit 0" rc_is good-json 0
check "good --json: parses" \
  python3 -c 'import json,sys; json.load(sys.stdin)' <"$TEST_TMP/good-json.out"
check "good --json: summary ok, 1 TLS target ok, no problems" \
  json good-json 'j["summary"]["verdict"]=="ok" and j["summary"]["tls_ok"]==1 and j["summary"]["problems"]==[] and j["summary"]["exit"]==0'
check "good --json: three targets with transport, address, srv_host" \
  json good-json '[(t["transport"],t["address"],t["srv_host"]) for t in j["targets"]]==[("tls","'$P2_IP':5061","p2.example.net"),("tcp","'$P2_IP':5060","p2.example.net"),("udp","'$P2_IP':5060","p2.example.net")]'
check "good --json: TLS target: identities, source, verdict, EKU, expiry" \
  json good-json 't=j["targets"][0]["tls"]; c=t["certificate"]; c["identities"]==["example.net"] and c["identity_source"]=="uri" and t["rfc5922"]["verdict"]=="ok" and t["rfc5922"]["authenticated"] and t["eku"]["verdict"]=="ok" and t["eku"]["role"]=="server" and isinstance(c["days_left"],int) and c["days_left"]>0 and c["not_after"].endswith("Z") and len(c["sha256"])==95 and t["version"].startswith("TLSv1.") and t["sni"]=="example.net"'
check "good --json: OPTIONS 200 and CRLF pong on the TLS target" \
  json good-json 't=j["targets"][0]; t["options"]["status"]==200 and t["options"]["answered"] and t["options"]["request_uri"]=="sips:example.net" and t["crlf_ping"]["pong"] and t["found_by"]==["sips:example.net","sip:example.net"]'
check "good --json: UDP target has no TLS and no CRLF ping" \
  json good-json 't=j["targets"][2]; t["tls"] is None and t["crlf_ping"]["result"]=="n/a" and t["options"]["status"]==200'
check "good --json: both resolutions reported" \
  json good-json '[r["uri"] for r in j["resolution"]]==["sips:example.net","sip:example.net"] and all(r["status"]=="ok" for r in j["resolution"])'

# ---- the broken domain: its server proves p2.example.net (a dNSName), not
# broken.example (RFC 5922 §7.2; spec T3).
probe broken broken.example "${CA[@]}"
echo "== sipsctl probe broken.example"; cat "$TEST_TMP/broken.out"
check "broken: exit 1" rc_is broken 1
check "broken: summary problems" has broken '^summary: problems '
check "broken: RFC 5922 name-mismatch reported on the target" \
  has broken '^  RFC 5922: +name-mismatch \(refused in the handshake: name-mismatch: wanted broken.example, found \{p2.example.net\}\)'
check "broken: identities {p2.example.net} from dNSName reported although refused" \
  has broken '^  identities: +\{p2.example.net\} \(source dns\)'
check "broken: TLS version, EKU and expiry reported although refused" \
  bash -c "grep -Eq '^  TLS version: +TLSv1' '$TEST_TMP/broken.out' && grep -Eq '^  EKU: +ok' '$TEST_TMP/broken.out' && grep -Eq '^  expiry: +notAfter' '$TEST_TMP/broken.out'"
check "broken: no OPTIONS sent to the refused server (RFC 5922 §7.3)" \
  has broken '^  OPTIONS: +not sent \(no SIP to a server not authenticated'
check "broken: the problem list names the mismatch" \
  has broken "^  - tls $P3_IP:5061 \(p3.broken.example\): does not authenticate broken.example \(RFC 5922\): name-mismatch"
check "broken: P3 saw the handshake aborted by the probe (refused inside the handshake)" \
  grep -q 'event=tls.handshake_failed .*alert handshake failure' "$TEST_TMP/p3.log"

probe broken-json broken.example "${CA[@]}" --json
check "broken --json: exit 1, parses, verdict problems" \
  json broken-json 'j["summary"]["verdict"]=="problems" and j["summary"]["exit"]==1 and len(j["summary"]["problems"])>=1'
check "broken --json: name-mismatch with the identities found" \
  json broken-json 't=j["targets"][0]["tls"]; t["rfc5922"]["verdict"]=="name-mismatch" and not t["rfc5922"]["authenticated"] and t["certificate"]["identities"]==["p2.example.net"] and t["certificate"]["identity_source"]=="dns" and t["rfc5922"]["name_match"]=="name-mismatch"'
check "broken --json: OPTIONS not sent, connection tls-refused" \
  json broken-json 't=j["targets"][0]; t["connection"]=="tls-refused" and t["options"]["result"]=="not-sent" and t["options"]["status"] is None and "name-mismatch" in j["summary"]["problems"][0]'

# ---- other broken variants
probe untrusted example.net --dns "$DNS_ADDR" --timeout 3
check "system trust store: exit 1, untrusted (the test CA is not in it)" \
  bash -c "rc_is() { [ \"\$(cat '$TEST_TMP/untrusted.rc')\" = 1 ]; }; rc_is && grep -Eq '^  RFC 5922: +untrusted' '$TEST_TMP/untrusted.out' && grep -Eq '^  name match: +ok for example.net' '$TEST_TMP/untrusted.out'"

probe dead dead.example "${CA[@]}"
check "dead.example: exit 1, connect failure listed" \
  bash -c "[ \"\$(cat '$TEST_TMP/dead.rc')\" = 1 ] && grep -Eq '^  - tls $DEAD_IP:5061 \(p.dead.example\): connect: ' '$TEST_TMP/dead.out'"

# example.com's SRV target (P1's address) is a TLS server that proves
# example.com and then says nothing: OPTIONS and the CRLF ping time out,
# within the bound of --timeout.
python3 - "$PKI/p1-com.pem" "$PKI/p1-com.key" "$P1_IP" >"$TEST_TMP/silent.log" 2>&1 <<'PY' &
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[3], 5061))
srv.listen(8)
srv.settimeout(60)
print("ready", flush=True)
while True:
    try:
        conn, _ = srv.accept()
    except socket.timeout:
        break
    conn.settimeout(10)
    try:
        with ctx.wrap_socket(conn, server_side=True) as tls:
            while tls.recv(4096):
                pass
    except (OSError, ssl.SSLError):
        pass
PY
PIDS+=("$!")
SILENT=$!
wait_log "$TEST_TMP/silent.log" '^ready' || { echo "silent server:"; cat "$TEST_TMP/silent.log"; }
start=$(date +%s)
probe silent example.com --ca "$PKI/ca.pem" --dns "$DNS_ADDR" --timeout 1
elapsed=$(($(date +%s) - start))
echo "== sipsctl probe example.com (silent server, --timeout 1, ${elapsed} s)"; cat "$TEST_TMP/silent.out"
check "silent: exit 1" rc_is silent 1
check "silent: the server authenticated example.com" \
  has silent '^  RFC 5922: +ok \(authenticates example.com\)'
check "silent: OPTIONS without an answer is a problem" \
  has silent "^  - tls $P1_IP:5061 \(p1.example.com\): OPTIONS sips:example.com not answered"
check "silent: no CRLF pong is a warning" \
  has silent "^  - tls $P1_IP:5061 \(p1.example.com\): CRLF keep-alive not answered .*no-pong"
check "silent: bounded by --timeout (ping 1 s + OPTIONS 1 s; took ${elapsed} s)" [ "$elapsed" -le 6 ]
stop_pid "$SILENT"

probe nx nx.example "${CA[@]}"
check "a name that does not exist: exit 2" rc_is nx 2
check "a name that does not exist: both resolutions reported" \
  bash -c "grep -Eq '^  sips:nx.example +error: ' '$TEST_TMP/nx.out' && grep -Eq '^  sip:nx.example +error: ' '$TEST_TMP/nx.out'"
probe nx-json nx.example "${CA[@]}" --json
check "a name that does not exist --json: verdict error, exit 2" \
  json nx-json 'j["summary"]["verdict"]=="error" and j["summary"]["exit"]==2 and j["targets"]==[]'

probe usage1
check "usage: no DOMAIN -> exit 2" rc_is usage1 2
probe usage2 sip:bob@example.net
check "usage: a URI instead of a domain -> exit 2" rc_is usage2 2
probe usage3 example.net --timeout 0
check "usage: --timeout 0 -> exit 2" rc_is usage3 2
probe usage4 example.net --dns not-an-address
check "usage: --dns not numeric -> exit 2" rc_is usage4 2
probe usage5 example.net --ca "$TEST_TMP/missing.pem"
check "usage: unreadable --ca -> exit 2" rc_is usage5 2

stop_pid "$PID_p2"; stop_pid "$PID_p3"
if [ "$FAILED" -ne 0 ]; then
  for f in good-json broken-json untrusted dead nx; do echo "== $f"; cat "$TEST_TMP/$f.out" "$TEST_TMP/$f.err"; done
  echo "== p2"; tail -20 "$TEST_TMP/p2.log"; echo "== p3"; tail -20 "$TEST_TMP/p3.log"
fi
finish
