#!/usr/bin/env bash
# demo.sh BUILD_DIR: the trapezoid demo.
# The proxy (P1/P2, registrar, call) does not exist yet. Until it does, this
# script says so plainly and shows the parts that exist: the SIP parser on
# RFC 4475 messages and, when built, the RFC 5922 verdicts of a throw-away
# certificate set. It exits 0 only if those parts behave as expected.
set -euo pipefail
build=${1:-build}
src=$(cd "$(dirname "$0")/.." && pwd)
sipsctl="$build/sipsctl"

cat <<'TXT'
== sipsd trapezoid demo ==
NOT YET: the proxy and registrar are not built. Once they are, this demo
will start dnsmasq (NAPTR/SRV/A for example.com and example.net), P1 and P2
on 127.0.0.x, register alice@example.com and bob@example.net over TLS with
sipsctl, place a call alice -> bob over mutual TLS between the proxies, and
print the message ladder with who authenticated whom as which domain.

What exists today:
TXT

echo
echo "-- 1. The SIP parser on RFC 4475 torture messages (sipsctl msg) --"
fail=0
for m in wsinv intmeth esc01 semiuri; do
  "$sipsctl" msg "$src/tests/data/rfc4475/$m.txt" || fail=1
done
for m in badinv01 lwsruri scalar02 badvers; do
  if "$sipsctl" msg "$src/tests/data/rfc4475/$m.txt"; then fail=1; fi
done

if "$sipsctl" cert --help >/dev/null 2>&1 && [ -x "$src/tests/certs/make-matrix.sh" ]; then
  echo
  echo "-- 2. RFC 5922 domain identity verdicts (sipsctl cert) --"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$src/tests/certs/make-matrix.sh" "$tmp" >/dev/null
  for name in good t3-dns-srv-target t4-uri-and-dns t6-wildcard; do
    f="$tmp/$name.pem"
    [ -f "$f" ] || continue
    echo "\$ sipsctl cert --ca ca.pem --domain example.net $name.pem"
    "$sipsctl" cert --ca "$tmp/ca.pem" --domain example.net "$f" || true
    echo
  done
fi

if [ $fail -ne 0 ]; then
  echo "demo: a verdict was not the expected one" >&2
  exit 1
fi
echo
echo "demo: the parts that exist behave as expected; the call over mutual TLS comes with the proxy."
