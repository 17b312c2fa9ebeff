#!/usr/bin/env bash
# config_errors.sh: `sipsd -t -c FILE` refuses broken configurations with
# the file and line of the fault, and accepts a good one.
source "$(dirname "$0")/lib/common.sh"
pki="$TEST_TMP/pki"; mkdir -p "$pki"; make_pki "$pki"
good="[domain example.net]
cert = $pki/good.pem
key = $pki/good.key
[listen tls 127.0.44.1:5061]"
# case NAME TEXT EXPECTED-REGEX: the config TEXT must fail with EXPECTED.
case_bad() {
  printf '%s\n' "$2" >"$TEST_TMP/$1.conf"
  out=$("$SIPSD" -t -c "$TEST_TMP/$1.conf" 2>&1) && rc=0 || rc=$?
  check "$1: refused (exit 1)" [ "$rc" = 1 ]
  check "$1: names file and line" grep -Eq "$TEST_TMP/$1.conf:$3" <<<"$out"
}
printf '%s\n' "$good" >"$TEST_TMP/good.conf"
check "a good configuration passes -t" "$SIPSD" -t -c "$TEST_TMP/good.conf"
case_bad unknown-key "$good
frobnicate = yes" "5: unknown key 'frobnicate' in \\[listen\\]"
case_bad bad-section "[nonsense]" "1: unknown section"
case_bad bad-bool "$good
require_client_cert = perhaps" "5: expected yes or no"
case_bad bad-number "[limits]
max_conns = many
$good" "2: expected a whole number"
case_bad missing-file "[domain example.net]
cert = $TEST_TMP/nowhere.pem" "2: cannot read"
case_bad no-listener "[domain example.net]
cert = $pki/good.pem" "0: no \\[listen"
case_bad tls-no-domain "[listen tls 127.0.44.1:5061]" "1: a tls listener needs"
case_bad bad-policy "$good
[policy]
peer_from = maybe" "6: peer_from must be reject, log or off"
case_bad bad-eku "[tls]
eku = sometimes
$good" "2: eku must be lenient or strict"
printf '%s\n' "[domain example.net]" "cert = $pki/good.pem" "key = $pki/t3-dns.key" \
  "[listen tls 127.0.44.1:5061]" >"$TEST_TMP/wrongkey.conf"
out=$("$SIPSD" -t -c "$TEST_TMP/wrongkey.conf" 2>&1) && rc=0 || rc=$?
check "a key that does not match the certificate is refused by -t" [ "$rc" = 1 ]
check "and the message names the domain's line" grep -q 'wrongkey.conf:1: domain example.net' <<<"$out"
finish
