#!/usr/bin/env bash
# tls_peer_refusals.sh: spec §3 extra cases and rules 1 and 4, end to end:
# P1 calls through P2 whose certificate is, in turn: EKU serverAuth only
# (accepted with eku = lenient, the default; refused with eku = strict),
# EKU sipDomain only (accepted by both: OpenSSL's purpose check must not
# refuse it), expired, not yet valid, from an untrusted CA, self-signed,
# revoked (refused when P1 has crl_file; accepted without a CRL), and a leaf
# under an intermediate (accepted with the chain, refused without it). Each
# refusal: inside the handshake, no SIP byte to P2, alice gets a 5xx, P1 logs
# the verdict word.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/dnsmasq.sh"
P1_IP=127.0.54.1 P2_IP=127.0.54.2 DNS_IP=127.0.54.53
P1S_IP=127.0.54.3
source "$(dirname "$0")/lib/trapezoid.sh"
source "$(dirname "$0")/lib/tcases.sh"
tc_setup
# p1: eku lenient (default) with the CRL; p1s: eku = strict, no CRL.
TC_P1_TLS=("crl_file = $PKI/crl.pem")
tc_p1 p1 "$P1_IP"
TC_P1_TLS=("eku = strict")
tc_p1 p1s "$P1S_IP"
TC_P1_TLS=()

p1_ip() { if [ "$1" = p1s ]; then echo "$P1S_IP"; else echo "$P1_IP"; fi; }

# accepted LABEL P1NAME: bob registers at P2, alice calls him through P1NAME;
# the call completes and P1 authenticated P2 as example.net.
accepted() {
  local label=$1 p1=$2
  tc_mark "$p1"
  if tc_bob "$label" sips:bob@example.net "$P2_IP:5061"; then ok "$label: bob registered at P2"
  else not_ok "$label: bob registered at P2"; fi
  TC_PROXY="$(p1_ip "$p1"):5061" tc_call "$label" sips:bob@example.net
  check "$label: the call completes" [ "$CALL_RC" = 0 ]
  tc_bob_done
  check "$label: bob answered the call" has "$TEST_TMP/bob-$label.out" 'result: answered 1 call'
  check "$label: the ACK for the 200 reached bob" has "$TEST_TMP/bob-$label.out" '<-- ACK '
  check "$label: P1 authenticated P2 as example.net" \
    tc_new_has "$p1" "event=tls\.peer .*dir=out .*peer=${P2_IP}:5061 .*authenticated=yes .*verdict=ok .*found=\{example\.net\}"
}

# refused LABEL P1NAME P2NAME VERDICT [bob]: alice's call through P1NAME is
# refused in the handshake with VERDICT; with "bob", bob is registered at P2
# first (his UA accepts the certificate) and must never see the INVITE.
refused() {
  local label=$1 p1=$2 p2=$3 verdict=$4 withbob=${5:-}
  if [ -n "$withbob" ]; then
    if tc_bob "$label" sips:bob@example.net "$P2_IP:5061"; then ok "$label: bob registered at P2"
    else not_ok "$label: bob registered at P2"; fi
  fi
  tc_mark "$p1"; tc_mark "$p2"
  TC_PROXY="$(p1_ip "$p1"):5061" tc_call "$label" sips:bob@example.net
  tc_refused_checks "$label" "$p1" "$p2" example.net "$verdict"
  if [ -n "$withbob" ]; then
    stop_pid "$BOB_PID"
    check "$label: bob never saw the INVITE" lacks "$TEST_TMP/bob-$label.out" '<-- INVITE'
  fi
}

# ---- RFC 5924 EKU ----
tc_p2 p2_ekuserver eku-server
accepted eku-server-lenient p1
refused eku-server-strict p1s p2_ekuserver eku bob
tc_stop p2_ekuserver

tc_p2 p2_ekusip eku-sip
accepted eku-sip-lenient p1
accepted eku-sip-strict p1s
tc_stop p2_ekusip
tc_p2 p2_ekusipc eku-sip
# The other way round: P2's sipDomain-only certificate as a TLS *client*
# certificate (no clientAuth): bob@example.net calls alice@example.com, P2
# opens mutual TLS to P1, which must accept it (spec rule 4, last sentence).
# A fresh P2, so that it has no connection from P1 to reuse (RFC 5923).
# (Roles swap: the callee's output is bob-NAME.out, the caller's alice-NAME.out.)
tc_mark p1; tc_mark p2_ekusipc
if tc_bob eku-sip-client sips:alice@example.com "$P1_IP:5061"; then ok "eku-sip-client: alice registered at P1"
else not_ok "eku-sip-client: alice registered at P1"; fi
TC_ALICE=sips:bob@example.net TC_PROXY="$P2_IP:5061" tc_call eku-sip-client sips:alice@example.com
check "eku-sip-client: bob's call to alice through P2 and P1 completes" [ "$CALL_RC" = 0 ]
tc_bob_done
check "eku-sip-client: P1 authenticated P2's client certificate (sipDomain EKU only) as example.net" \
  tc_new_has p1 'event=tls\.peer .*dir=in .*authenticated=yes .*found=\{example\.net\}'
check "eku-sip-client: the ACK for the 200 reached alice" has "$TEST_TMP/bob-eku-sip-client.out" '<-- ACK '
check "eku-sip-client: P2 authenticated P1 as example.com" \
  tc_new_has p2_ekusipc "event=tls\.peer .*dir=out .*peer=${P1_IP}:5061 .*authenticated=yes .*found=\{example\.com\}"
tc_stop p2_ekusipc

# ---- RFC 5280 chain validation ----
tc_p2 p2_expired expired
refused expired p1 p2_expired expired
tc_stop p2_expired

tc_p2 p2_nyv not-yet-valid
refused not-yet-valid p1 p2_nyv not-yet-valid
tc_stop p2_nyv

tc_p2 p2_untrusted untrusted
refused untrusted-ca p1 p2_untrusted untrusted
tc_stop p2_untrusted

tc_p2 p2_self self-signed
refused self-signed p1 p2_self self-signed
tc_stop p2_self

# Revoked: bob's UA has no CRL and accepts P2; P1 with the CRL refuses it;
# P1 without a CRL (p1s) accepts it.
tc_p2 p2_revoked revoked
refused revoked-crl p1 p2_revoked revoked bob
accepted revoked-no-crl p1s
tc_stop p2_revoked

# A leaf under the intermediate CA: accepted when P2 sends the chain (the
# intermediate's CRL is in crl.pem too), refused as untrusted without it.
tc_p2 p2_inter inter-leaf
refused inter-no-chain p1 p2_inter untrusted
tc_stop p2_inter
trapezoid_conf "$TEST_TMP/p2_interchain.conf" example.net "$PKI/inter-leaf.pem" "$PKI/inter-leaf.key" "$P2_IP"
sed -i "s|^key = .*|&\nchain = $PKI/inter.pem|" "$TEST_TMP/p2_interchain.conf"
start_sipsd p2_interchain "$TEST_TMP/p2_interchain.conf"
accepted inter-chain p1
tc_stop p2_interchain

tc_stop p1; tc_stop p1s
if [ "$FAILED" -ne 0 ]; then
  for f in "$TEST_TMP"/alice-*.out "$TEST_TMP"/bob-*.out; do tc_dump "$(basename "$f")"; done
  tc_dump p1.log p1s.log
  for f in "$TEST_TMP"/p2_*.log; do tc_dump "$(basename "$f")"; done
fi
finish
