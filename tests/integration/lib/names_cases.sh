#!/usr/bin/env bash
# names_cases.sh: spec §3 T3-T6 (run one with TCASE=T3..T6: t3_names.sh...), the names in P2's certificate as P1 checks
# them as a TLS client (RFC 5922 §7.1-7.3): T3 DNS:p2.example.net only (the
# SRV target is not the domain), and the call going through a second SRV
# target with a good certificate; T4 dNSName ignored when a sip: URI is
# present; T5 legacy CN (on by default, off with legacy_cn = no) and an
# e-mail-only subjectAltName; T6 wildcard, suffix, case, user part, sips:.
# Each refusal: inside the handshake, no SIP byte to P2, alice gets a 5xx, P1
# logs the verdict with wanted and found names.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/dnsmasq.sh"
NET=${NAMES_NET:-127.0.51} # each case script has its own, to run in parallel
P1_IP=$NET.1 P2_IP=$NET.2 DNS_IP=$NET.53
P1NOCN_IP=$NET.3 P2B_IP=$NET.4 P1SRV_IP=$NET.5
source "$(dirname "${BASH_SOURCE[0]}")/trapezoid.sh"
source "$(dirname "${BASH_SOURCE[0]}")/tcases.sh"
# example.org and sub.example.net are served at P2's address too (T4, T6).
tc_setup \
  'naptr-record=example.org,10,50,"s","SIPS+D2T","","_sips._tcp.example.org"' \
  "srv-host=_sips._tcp.example.org,p2.example.net,5061,10,10" \
  'naptr-record=sub.example.net,10,50,"s","SIPS+D2T","","_sips._tcp.sub.example.net"' \
  "srv-host=_sips._tcp.sub.example.net,p2.example.net,5061,10,10"
tc_p1 p1 "$P1_IP"
TC_P1_TLS=("legacy_cn = no")
tc_p1 p1nocn "$P1NOCN_IP"
TC_P1_TLS=()

# call_ok LABEL P1NAME [noack]: the checks of a call that must complete
# through P2 (noack: the caller checks the ACK itself).
call_ok() {
  local label=$1 p1=$2 noack=${3:-}
  check "$label: the call completes" [ "$CALL_RC" = 0 ]
  check "$label: alice got 200 for the INVITE and the BYE" \
    has "$TEST_TMP/alice-$label.out" '<-- SIP/2.0 200 OK \(2 BYE\)'
  tc_bob_done
  check "$label: bob answered the call" has "$TEST_TMP/bob-$label.out" 'result: answered 1 call'
  [ -n "$noack" ] ||
    check "$label: the ACK for the 200 reached bob" has "$TEST_TMP/bob-$label.out" '<-- ACK '
  check "$label: P1 authenticated P2 as example.net" \
    tc_new_has "$p1" "event=tls\.peer .*dir=out .*peer=${TC_P2_IP:-$P2_IP}:5061 .*authenticated=yes"
}

# refused LABEL P1NAME P2NAME TO WANTED VERDICT [FOUND]: a call that P1 must
# refuse to carry to P2 (bob may or may not be registered).
refused() {
  local label=$1 p1=$2 p2=$3 to=$4; shift 4
  tc_mark "$p1"; tc_mark "$p2"
  TC_PROXY="$(ip_of "$p1"):5061" tc_call "$label" "$to"
  tc_refused_checks "$label" "$p1" "$p2" "$@"
}
ip_of() {
  case $1 in p1) echo "$P1_IP" ;; p1nocn) echo "$P1NOCN_IP" ;; p1srv) echo "$P1SRV_IP" ;; esac
}

# TCASE=T3|T4|T5|T6 runs one case (the t3/t4/t5/t6 wrappers); unset, all.
want() { [ -z "${TCASE:-}" ] || [ "$TCASE" = "$1" ]; }

if want T3; then
# ---- T3: only DNS:p2.example.net (the SRV target) ----
tc_p2 p2_t3 t3-dns
refused T3 p1 p2_t3 sips:bob@example.net example.net name-mismatch '\{p2\.example\.net\}'
check "T3: the failure reason names wanted example.net and found {p2.example.net}" \
  tc_new_has p1 'event=proxy\.branch_failed .*wanted=example\.net found=\{p2\.example\.net\}'

# T3, second SRV target: priority 10 -> P2 (t3-dns.pem), priority 20 -> P2b
# (good.pem). The call goes through P2b. A new P1 with its own DNS server
# (P1's DNS cache holds the first records).
trapezoid_dns "$TEST_TMP/records2" \
  "srv-host=_sips._tcp.example.net,p2b.example.net,5061,20,10" \
  "host-record=p2b.example.net,$P2B_IP"
start_dnsmasq_any "$TEST_TMP/records2" "$DNS_IP" dns2
DNS_ADDR=$DNSMASQ_ADDR
tc_p1 p1srv "$P1SRV_IP"
TC_P2_IP=$P2B_IP tc_p2 p2b good
tc_mark p1srv; tc_mark p2_t3
if tc_bob T3-srv sips:bob@example.net "$P2B_IP:5061"; then ok "T3 srv: bob registered at P2b"
else not_ok "T3 srv: bob registered at P2b"; fi
TC_PROXY="$P1SRV_IP:5061" tc_call T3-srv sips:bob@example.net
TC_P2_IP=$P2B_IP call_ok T3-srv p1srv noack
# BUG: the ACK for the 200 is lost. P1 forwards the 2xx ACK statelessly
# (proxy.c forward_ack -> stateless_resolved_cb), to the first RFC 3263
# target only (P2, priority 10), whose certificate it refuses; it never tries
# the next target (P2b) as the INVITE and the BYE do (rule 6: the next target
# is tried), so bob never gets the ACK.
if has "$TEST_TMP/bob-T3-srv.out" '<-- ACK '; then
  ok "T3 srv: the ACK for the 200 reached bob through P2b"
else
  not_ok "T3 srv: the ACK for the 200 reached bob through P2b"
  echo "# BUG: the stateless 2xx ACK went only to the refused first SRV target; P1's handshake failures:"
  tc_new p1srv | grep -E "event=tls\.handshake_failed .*peer=${P2_IP}:5061" | cut -c1-160 | sed 's/^/#   /'
fi
check "T3 srv: P1 first tried P2 (priority 10) and refused it in the handshake" \
  tc_new_has p1srv "event=tls\.handshake_failed .*dir=out .*peer=${P2_IP}:5061 .*verdict=name-mismatch wanted=example\.net found=\{p2\.example\.net\}"
check "T3 srv: P1 authenticated P2b (priority 20) as example.net" \
  tc_new_has p1srv "event=tls\.peer .*dir=out .*peer=${P2B_IP}:5061 .*sni=example\.net .*authenticated=yes .*found=\{example\.net\}"
check "T3 srv: no SIP bytes reached P2" tc_new_lacks p2_t3 'event=tls\.peer .*dir=in .*found=\{example\.com\}'
tc_stop p2b; tc_stop p1srv; tc_stop p2_t3

fi

if want T4; then
# ---- T4: URI:sip:example.net + DNS:example.org; bob@example.org at P2 ----
tc_p2 p2_t4 t4-uri-dns "[domain example.org]" "cert = $PKI/t4-uri-dns.pem" "key = $PKI/t4-uri-dns.key"
tc_mark p1
if tc_bob T4-control sips:bob@example.net "$P2_IP:5061"; then ok "T4 control: bob registered as example.net"
else not_ok "T4 control: bob registered as example.net"; fi
tc_call T4-control sips:bob@example.net
call_ok T4-control p1
# P1 now holds a connection to P2's address verified as {example.net}: it
# must not be reused for example.org (spec rule 17), and a new handshake for
# example.org must fail.
refused T4 p1 p2_t4 sips:bob@example.org example.org name-mismatch '\{example\.net\}'
tc_stop p2_t4

fi

if want T5; then
# ---- T5: no subjectAltName, CN=example.net ----
tc_p2 p2_t5 t5-cn
tc_mark p1
if tc_bob T5 sips:bob@example.net "$P2_IP:5061"; then ok "T5: bob registered"
else not_ok "T5: bob registered"; fi
tc_call T5 sips:bob@example.net
call_ok T5 p1
check "T5: P1 took the identity from the legacy CN" \
  tc_new_has p1 'event=tls\.peer .*dir=out .*authenticated=yes .*found=\{example\.net\} source=cn'
# legacy_cn = no: refused, while bob is registered and reachable.
if tc_bob T5-nocn sips:bob@example.net "$P2_IP:5061"; then ok "T5 legacy_cn=no: bob registered"
else not_ok "T5 legacy_cn=no: bob registered"; fi
refused T5-nocn p1nocn p2_t5 sips:bob@example.net example.net no-identity
stop_pid "$BOB_PID"
check "T5 legacy_cn=no: bob never saw the INVITE" lacks "$TEST_TMP/bob-T5-nocn.out" '<-- INVITE'
tc_stop p2_t5

# T5 variant: subjectAltName with only an e-mail, CN=example.net.
tc_p2 p2_t5e t5-email
refused T5-email p1 p2_t5e sips:bob@example.net example.net no-identity
tc_stop p2_t5e

fi

if want T6; then
# ---- T6: name edge cases ----
tc_p2 p2_t6w t6-wildcard
refused T6-wildcard p1 p2_t6w sips:bob@example.net example.net name-mismatch '\{\*\.example\.net\}'
refused T6-wildcard-sub p1 p2_t6w sips:bob@sub.example.net sub.example.net name-mismatch '\{\*\.example\.net\}'
tc_stop p2_t6w

tc_p2 p2_t6s good
tc_mark p1
if tc_bob T6-suffix-control sips:bob@example.net "$P2_IP:5061"; then ok "T6 suffix control: bob registered"
else not_ok "T6 suffix control: bob registered"; fi
tc_call T6-suffix-control sips:bob@example.net
call_ok T6-suffix-control p1
refused T6-suffix p1 p2_t6s sips:bob@sub.example.net sub.example.net name-mismatch '\{example\.net\}'
tc_stop p2_t6s

tc_p2 p2_t6u t6-upper-uri
tc_mark p1
if tc_bob T6-case sips:bob@example.net "$P2_IP:5061"; then ok "T6 case: bob registered"
else not_ok "T6 case: bob registered"; fi
tc_call T6-case sips:bob@example.net
call_ok T6-case p1
tc_stop p2_t6u

tc_p2 p2_t6user t6-user-uri
refused T6-user-uri p1 p2_t6user sips:bob@example.net example.net no-identity
tc_stop p2_t6user

tc_p2 p2_t6sips t6-sips-uri
refused T6-sips-uri p1 p2_t6sips sips:bob@example.net example.net no-identity
tc_stop p2_t6sips

fi

tc_stop p1; tc_stop p1nocn
if [ "$FAILED" -ne 0 ]; then
  for f in "$TEST_TMP"/alice-*.out "$TEST_TMP"/bob-*.out; do tc_dump "$(basename "$f")"; done
  tc_dump p1.log p1nocn.log p1srv.log
  for f in "$TEST_TMP"/p2*.log; do tc_dump "$(basename "$f")"; done
fi
finish
