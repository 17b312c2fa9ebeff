#!/usr/bin/env bash
# protos_sample.sh: the 200-case PROTOS c07-sip sample (tests/protos/sample,
# a spread over all 54 groups) sent to a running sipsd over UDP and over TLS
# by tests/protos/run_protos.py; after every case sipsd must still answer an
# OPTIONS. sipsd must still run at the end and stop cleanly on TERM.
# The whole corpus (4,527 cases) is a longer run: docs/robustness.md.
source "$(dirname "$0")/lib/common.sh"
IP=127.0.70.10
HARNESS="python3 $SIPSD_SRC/tests/protos/run_protos.py"
SAMPLE="$SIPSD_SRC/tests/protos/sample"
pki="$TEST_TMP/pki"; mkdir -p "$pki"; make_pki "$pki"
# DNS points at a loopback port where nothing listens, so that a case whose
# Request-URI names a foreign host fails fast instead of asking the system
# resolver.
cat >"$TEST_TMP/p.conf" <<CONF
workers = 2
[tls]
ca_file = $pki/ca.pem
[dns]
servers = 127.0.70.19:53
timeout_ms = 200
tries = 1
[domain example.com]
cert = $pki/p1-com.pem
key = $pki/p1-com.key
[listen udp $IP:5060]
[listen tls $IP:5061]
CONF
start_sipsd p "$TEST_TMP/p.conf"
log="$TEST_TMP/p.log"
ncases=$(find "$SAMPLE" -maxdepth 1 -name '[0-9][0-9][0-9][0-9][0-9][0-9][0-9]' | wc -l)
check "the sample holds 200 cases, case 0000000 among them" [ "$ncases" = 200 -a -f "$SAMPLE/0000000" ]

for proto in udp tls; do
  if [ "$proto" = udp ]; then
    args=(--port 5060)
  else
    args=(--port 5061 --tls --ca "$pki/ca.pem" --sni example.com)
  fi
  # Bounded: 2 s per OPTIONS, 40 s for the whole run (it takes about 1 s).
  out=$($HARNESS "$SAMPLE" --host "$IP" "${args[@]}" --timeout 2 --max-seconds 40 --pid "$PID_p" 2>&1) && rc=0 || rc=$?
  echo "$out" | sed "s/^/# /"
  check "$proto: sipsd answered an OPTIONS after each of the 200 cases" \
    test "$rc" = 0 -a -n "$(grep -x '200 passed, 0 failed' <<<"$out")"
  sent=$(awk '$1 == "total" {print $3}' <<<"$out")
  # UDP: the two cases over 65,507 bytes cannot be datagrams.
  want=$([ "$proto" = udp ] && echo 198 || echo 200)
  check "$proto: $want cases sent" [ "$sent" = "$want" ]
done
check "sipsd still running after both runs" kill -0 "$PID_p"
"$SIPSCTL" options "sip:$IP:5060" --timeout 5 >/dev/null && rc=0 || rc=$?
check "sipsd still answers OPTIONS (sipsctl, UDP)" [ "$rc" = 0 ]
check "parse errors were logged (rate-limited)" grep -q 'event=sip.parse_error' "$log"
stop_pid "$PID_p"
check "sipsd stopped cleanly on TERM" grep -q 'event=stopped' "$log"
[ "$FAILED" -eq 0 ] || { echo "== sipsd log (last 40 lines)"; tail -n 40 "$log"; }
finish
