#!/usr/bin/env bash
# torture_streams.sh: every RFC 4475 and RFC 5118 message sent to a running
# sipsd over TCP and over TLS, one fresh connection each, is answered as
# expected (tests/data/rfc4475/RESPONSES.tsv, tests/data/rfc5118/RESPONSES.tsv,
# with the stream framing overrides in lib/send_stream.py) or dropped
# (`none`/`closed` where a stream makes the RFC's answer impossible), and
# sipsd answers an OPTIONS after each one and stops cleanly.
source "$(dirname "$0")/lib/common.sh"
IP=127.0.46.1
pki="$TEST_TMP/pki"; mkdir -p "$pki"; make_pki "$pki"
cat >"$TEST_TMP/t.conf" <<CONF
workers = 2
[domain example.com]
cert = $pki/good.pem
key = $pki/good.key
[listen tcp $IP:5060]
[listen tls $IP:5061]
CONF
D4="$SIPSD_SRC/tests/data/rfc4475"
D5="$SIPSD_SRC/tests/data/rfc5118"
for transport in tcp tls; do
  port=5060; [ "$transport" = tls ] && port=5061
  # Messages that are one transaction to a server (shared branch, sent-by
  # and method) go to a fresh sipsd in the next round; at most 8 rounds.
  only=()
  for round in 1 2 3 4 5 6 7 8; do
    start_sipsd t "$TEST_TMP/t.conf"
    : >"$TEST_TMP/leftover"
    check "$transport round $round: RFC 4475/5118 messages answered as expected" \
      python3 "$SIPSD_SRC/tests/integration/lib/send_stream.py" --transport "$transport" \
      --host "$IP" --port "$port" --ca "$pki/ca.pem" --leftover "$TEST_TMP/leftover" \
      "${only[@]}" "$D4/RESPONSES.tsv:$D4" "$D5/RESPONSES.tsv:$D5"
    check "$transport round $round: sipsd still running" kill -0 "$PID_t"
    stop_pid "$PID_t"
    check "$transport round $round: sipsd stopped cleanly" grep -q 'event=stopped' "$TEST_TMP/t.log"
    [ "$FAILED" -eq 0 ] || { echo "== sipsd log, $transport round $round"; tail -n 60 "$TEST_TMP/t.log"; }
    cat "$TEST_TMP/t.log" >>"$TEST_TMP/all-$transport.txt"
    left=$(cat "$TEST_TMP/leftover")
    [ -n "$left" ] || break
    only=(--only "$left")
  done
  check "$transport: every message was sent" [ -z "$(cat "$TEST_TMP/leftover")" ]
done
finish
