#!/usr/bin/env bash
# torture_udp.sh: every RFC 4475 and RFC 5118 message sent to a running
# sipsd over UDP gets the answer the RFC expects
# (tests/data/rfc4475/RESPONSES.tsv, tests/data/rfc5118/RESPONSES.tsv), and
# sipsd answers an OPTIONS afterwards.
source "$(dirname "$0")/lib/common.sh"
IP=127.0.36.1
pki="$TEST_TMP/pki"; mkdir -p "$pki"; make_pki "$pki"
cat >"$TEST_TMP/t.conf" <<CONF
workers = 2
[domain example.com]
cert = $pki/good.pem
key = $pki/good.key
[listen udp $IP:5060]
CONF
# Messages that are one transaction to a server (shared branch) go to a
# fresh sipsd in the next round; at most 8 rounds per corpus.
for corpus in rfc4475 rfc5118; do
  dir="$SIPSD_SRC/tests/data/$corpus"
  only=()
  for round in 1 2 3 4 5 6 7 8; do
    start_sipsd t "$TEST_TMP/t.conf"
    check "$corpus round $round: messages answered as expected" \
      python3 "$SIPSD_SRC/tests/integration/lib/send_udp.py" "$dir/RESPONSES.tsv" \
      "$dir" "$IP" 5060 "$TEST_TMP/leftover" "${only[@]}"
    out=$("$SIPSCTL" options "sip:$IP:5060" --timeout 5) && rc=0 || rc=$?
    check "$corpus round $round: sipsd still answers OPTIONS" [ "$rc" = 0 ]
    stop_pid "$PID_t"
    check "$corpus round $round: sipsd stopped cleanly" grep -q 'event=stopped' "$TEST_TMP/t.log"
    [ "$FAILED" -eq 0 ] || { echo "== sipsd log, $corpus round $round"; cat "$TEST_TMP/t.log"; }
    left=$(cat "$TEST_TMP/leftover")
    [ -n "$left" ] || break
    only=("$left")
  done
  check "$corpus: every message was sent" [ -z "$(cat "$TEST_TMP/leftover")" ]
done
finish
