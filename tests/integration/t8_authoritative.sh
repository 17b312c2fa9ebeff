#!/usr/bin/env bash
# t8_authoritative.sh: spec T8 (authoritative proxy, spec §4.1). Over P1's
# mutually authenticated connection (identity example.com), P2 receives a
# request From mallory@example.org: peer_from = reject answers 403 and logs
# the peer identity and the From domain; an authorisation entry letting
# example.com speak for example.org accepts it; peer_from = log accepts and
# logs. Also: via_trail = tag adds its verdict header.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/dnsmasq.sh"
P1_IP=127.0.41.1 P2_IP=127.0.41.2 DNS_IP=127.0.41.53
source "$(dirname "$0")/lib/trapezoid.sh"
PKI="$TEST_TMP/pki"; mkdir -p "$PKI"; make_pki "$PKI"
trapezoid_dns "$TEST_TMP/records"
start_dnsmasq_any "$TEST_TMP/records" "$DNS_IP" dns
DNS_ADDR=$DNSMASQ_ADDR
trapezoid_conf "$TEST_TMP/p1.conf" example.com "$PKI/p1-com.pem" "$PKI/p1-com.key" "$P1_IP"
start_sipsd p1 "$TEST_TMP/p1.conf"

# run_case NAME P2-EXTRA-CONFIG...: start P2 with the extra lines, bob
# answering at P2, mallory calling through P1; sets CALL_RC.
run_case() {
  local name=$1; shift
  trapezoid_conf "$TEST_TMP/p2-$name.conf" example.net "$PKI/good.pem" "$PKI/good.key" "$P2_IP" "$@"
  start_sipsd "p2$name" "$TEST_TMP/p2-$name.conf"
  "$SIPSCTL" call --answer --as sips:bob@example.net --proxy "$P2_IP:5061" --ca "$PKI/ca.pem" \
    --calls 1 --wait 8 >"$TEST_TMP/bob-$name.out" 2>&1 &
  local bob=$!
  PIDS+=("$bob")
  wait_log "$TEST_TMP/bob-$name.out" '200 OK \(1 REGISTER\)' || true
  "$SIPSCTL" call --as sips:alice@example.com --from sips:mallory@example.org --proxy "$P1_IP:5061" \
    --ca "$PKI/ca.pem" --to sips:bob@example.net --hold 0 >"$TEST_TMP/alice-$name.out" 2>&1 && CALL_RC=0 || CALL_RC=$?
  stop_pid "$bob"
  eval "stop_pid \$PID_p2$name"
}

run_case reject
check "peer_from=reject (default): the call is refused" [ "$CALL_RC" != 0 ]
check "peer_from=reject: the caller got 403" grep -q 'call failed with 403' "$TEST_TMP/alice-reject.out"
check "peer_from=reject: P2 logged the peer identity and the From domain" \
  grep -Eq 'event=policy .*peer_identities=\{example.com\} from_domain=example.org verdict=reject' "$TEST_TMP/p2reject.log"
check "peer_from=reject: bob never saw the INVITE" bash -c "! grep -q '<-- INVITE' '$TEST_TMP/bob-reject.out'"

run_case authz "[peer example.com]" "may_send_from = example.org"
check "authorisation entry: example.com may speak for example.org, call completes" [ "$CALL_RC" = 0 ]
check "authorisation entry: nothing logged as a mismatch" bash -c "! grep -q 'event=policy' '$TEST_TMP/p2authz.log'"

run_case log "[policy]" "peer_from = log"
check "peer_from=log: call completes" [ "$CALL_RC" = 0 ]
check "peer_from=log: the mismatch is logged" \
  grep -Eq 'event=policy .*from_domain=example.org verdict=log' "$TEST_TMP/p2log.log"

run_case tag "[policy]" "peer_from = off" "via_trail = tag"
check "via_trail=tag: call completes" [ "$CALL_RC" = 0 ]
check "via_trail=tag: bob's INVITE carries the verdict header (From domain not in the Via trail)" \
  grep -q 'X-Sipsd-Via-Trail: fail; from=example.org' "$TEST_TMP/bob-tag.out"
stop_pid "$PID_p1"
finish
