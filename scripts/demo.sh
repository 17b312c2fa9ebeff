#!/usr/bin/env bash
# demo.sh BUILD_DIR: the trapezoid on loopback. Makes a throw-away PKI,
# starts dnsmasq (NAPTR/SRV/A for example.com and example.net), P1 and P2,
# registers bob at P2 over TLS, lets alice call bob through P1 and P2 over
# mutual TLS, prints the message ladder and who authenticated whom as which
# domain, stops everything it started. Exit 0 only if the call completed.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
export SIPSD_BUILD="$build" SIPSD_SRC="$src"
source "$src/tests/integration/lib/common.sh"
source "$src/tests/integration/lib/dnsmasq.sh"
# Addresses of its own, so the demo can run beside the test suite.
P1_IP=127.0.30.1 P2_IP=127.0.30.2 DNS_IP=127.0.30.53
source "$src/tests/integration/lib/trapezoid.sh"

say() { printf '%s\n' "$*"; }
say "== sipsd trapezoid demo (loopback only) =="
PKI="$TEST_TMP/pki"; mkdir -p "$PKI"; make_pki "$PKI"
say "PKI: a throw-away root CA; P1 holds URI:sip:example.com, P2 holds URI:sip:example.net; UAs hold none."
trapezoid_dns "$TEST_TMP/records"
start_dnsmasq_any "$TEST_TMP/records" "$DNS_IP" dns >/dev/null
DNS_ADDR=$DNSMASQ_ADDR
say "DNS: dnsmasq on $DNS_ADDR: example.com -> NAPTR SIPS+D2T -> _sips._tcp -> $P1_IP:5061,"
say "     example.net -> NAPTR SIPS+D2T -> _sips._tcp -> $P2_IP:5061"
trapezoid_conf "$TEST_TMP/p1.conf" example.com "$PKI/p1-com.pem" "$PKI/p1-com.key" "$P1_IP"
trapezoid_conf "$TEST_TMP/p2.conf" example.net "$PKI/good.pem" "$PKI/good.key" "$P2_IP"
start_sipsd p1 "$TEST_TMP/p1.conf"
start_sipsd p2 "$TEST_TMP/p2.conf"
say "P1: sipsd for example.com on $P1_IP:5061;  P2: sipsd for example.net on $P2_IP:5061"
say

"$SIPSCTL" call --answer --as sips:bob@example.net --proxy "$P2_IP:5061" --ca "$PKI/ca.pem" \
  --calls 1 --wait 20 >"$TEST_TMP/bob.out" 2>&1 &
bob=$!
PIDS+=("$bob")
wait_log "$TEST_TMP/bob.out" '200 OK \(1 REGISTER\)' || { cat "$TEST_TMP/bob.out"; exit 1; }
rc=0
"$SIPSCTL" call --as sips:alice@example.com --proxy "$P1_IP:5061" --ca "$PKI/ca.pem" \
  --to sips:bob@example.net --hold 1 >"$TEST_TMP/alice.out" 2>&1 || rc=$?
for _ in $(seq 50); do kill -0 "$bob" 2>/dev/null || break; sleep 0.1; done

say "-- Who authenticated whom (TLS) --"
grep -h '^tls:' "$TEST_TMP/bob.out" "$TEST_TMP/alice.out" | sed 's/^tls: /  UA: /'
field() { sed -n "s/.* $1=\\([^ ]*\\).*/\\1/p" | head -1; }
p1out=$(grep 'event=tls.peer .*dir=out .*authenticated=yes' "$TEST_TMP/p1.log" | head -1 || true)
p2in=$(grep 'event=tls.peer .*dir=in .*authenticated=yes' "$TEST_TMP/p2.log" | head -1 || true)
if [ -n "$p1out" ]; then
  say "  P1 -> P2: mutual TLS $(echo "$p1out" | field version), SNI $(echo "$p1out" | field sni):"
  say "            P1 authenticated P2 as $(echo "$p1out" | field wanted) (certificate identities $(echo "$p1out" | field found))"
fi
if [ -n "$p2in" ]; then
  say "            P2 authenticated P1's client certificate: identities $(echo "$p2in" | field found)," \
      "sha256 $(echo "$p2in" | field sha256 | cut -c1-23)..."
fi
say "  UAs presented no certificate: the proxies logged them as authenticated=no (RFC 5922 §7.4)."
say
say "-- Message ladder (alice's and bob's views, by time) --"
grep -hE '^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} ' "$TEST_TMP/alice.out" "$TEST_TMP/bob.out" | sort -s -k1,1 |
  sed -E -e 's/^([^ ]+) sips:alice@example.com /\1 alice /' -e 's/^([^ ]+) sips:bob@example.net /\1 bob   /'
say
grep -h '^result:' "$TEST_TMP/alice.out" | sed 's/^/alice /'
grep -h '^result:' "$TEST_TMP/bob.out" | sed 's/^/bob   /'
stop_pid "$PID_p1"
stop_pid "$PID_p2"
if [ "$rc" -ne 0 ] || ! grep -q 'result: answered 1 call' "$TEST_TMP/bob.out"; then
  say "demo: the call did NOT complete"
  tail -20 "$TEST_TMP/p1.log" "$TEST_TMP/p2.log"
  exit 1
fi
say "demo: call completed over mutual TLS between example.com and example.net"
