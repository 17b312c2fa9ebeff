#!/usr/bin/env bash
# proxy_auth.sh: Digest authentication (RFC 3261 §22) with SIPp: REGISTER
# challenged 401 and accepted with the right password, refused with a wrong
# one; an INVITE from our user challenged 407 and, answered, goes through.
source "$(dirname "$0")/lib/common.sh"
SC="$SIPSD_SRC/tests/integration/sipp"
P=127.0.37.1 A=127.0.37.2 B=127.0.37.3
pki="$TEST_TMP/pki"; mkdir -p "$pki"; make_pki "$pki"
printf 'bob@example.com  bobsecret\nalice@example.com "alice-pass"\n' >"$TEST_TMP/users"
printf 'SEQUENTIAL\nexample.com;bobsecret\n' >"$TEST_TMP/bob.csv"
printf 'SEQUENTIAL\nexample.com;wrong\n' >"$TEST_TMP/bad.csv"
printf 'SEQUENTIAL\nexample.com;alice-pass;alice\n' >"$TEST_TMP/alice.csv"
sed 's/STATUS/200/; s/AUTHUSER/bob/; s/AUTHPASS/bobsecret/' "$SC/register_auth.xml" >"$TEST_TMP/reg200.xml"
sed 's/STATUS/401/; s/AUTHUSER/bob/; s/AUTHPASS/wrong/' "$SC/register_auth.xml" >"$TEST_TMP/reg401.xml"
sed 's/AUTHUSER/alice/; s/AUTHPASS/alice-pass/' "$SC/uac_auth.xml" >"$TEST_TMP/uac_auth.xml"
cat >"$TEST_TMP/p.conf" <<CONF
workers = 2
[domain example.com]
cert = $pki/good.pem
key = $pki/good.key
[listen udp $P:5060]
[auth]
credentials = $TEST_TMP/users
algorithms = md5
check_uri = no   # SIPp puts the proxy's address in uri, not the Request-URI
CONF
check "config with [auth] checks" "$SIPSD" -t -c "$TEST_TMP/p.conf"
start_sipsd p "$TEST_TMP/p.conf"
cd "$TEST_TMP"
sipp_run() {
  local name=$1; shift
  timeout 30 sipp "$@" -m 1 -timeout 15s -timeout_error -trace_err -trace_msg \
    -message_file "$TEST_TMP/$name.msg" -error_file "$TEST_TMP/$name.err" >"$TEST_TMP/$name.out" 2>&1
}
check "REGISTER challenged 401, accepted with the password" \
  sipp_run reg -sf "$TEST_TMP/reg200.xml" -inf "$TEST_TMP/bob.csv" -s bob -i "$A" -p 5070 "$P:5060"
check "the challenge offered MD5 with qop=auth" grep -q 'WWW-Authenticate: Digest .*algorithm=MD5' "$TEST_TMP/reg.msg"
check "REGISTER with a wrong password challenged again" \
  sipp_run regbad -sf "$TEST_TMP/reg401.xml" -inf "$TEST_TMP/bad.csv" -s bob -i "$A" -p 5072 "$P:5060"
timeout 30 sipp -sf "$SC/uas_call.xml" -s bob -i "$A" -p 5070 -m 1 -timeout 15s -timeout_error \
  >"$TEST_TMP/uas.out" 2>&1 &
UAS=$!
PIDS+=("$UAS")
sleep 0.5
check "INVITE from our user challenged 407, then the call completes" \
  sipp_run uac -sf "$TEST_TMP/uac_auth.xml" -inf "$TEST_TMP/alice.csv" -s bob -i "$B" -p 5071 "$P:5060"
rc=0; wait "$UAS" || rc=$?
check "callee saw the call" [ "$rc" = 0 ]
check "the proxy challenged with Proxy-Authenticate" grep -q 'Proxy-Authenticate: Digest' "$TEST_TMP/uac.msg"
stop_pid "$PID_p"
check "sipsd stopped cleanly" grep -q 'event=stopped' "$TEST_TMP/p.log"
[ "$FAILED" -eq 0 ] || { for f in "$TEST_TMP"/*.err; do echo "== $f"; grep -v 'Failed to delete' "$f" | head -30; done; tail -20 "$TEST_TMP/p.log"; }
finish
