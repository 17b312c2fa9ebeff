#!/usr/bin/env bash
# cert_matrix.sh: `sipsctl cert` against every row of the certificate matrix
# (tests/certs/make-matrix.sh): exit status and verdict word (RFC 5922 §7,
# RFC 5924, RFC 5280; spec.md §2 rules 1-4, §3 T3-T6).
#
# Env: SIPSD_BUILD (build dir, holds sipsctl), SIPSD_SRC (source dir).
set -uo pipefail

src=${SIPSD_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${SIPSD_BUILD:-$src/build}
sipsctl=$build/sipsctl
if [ ! -x "$sipsctl" ]; then
	echo "cert_matrix: $sipsctl not found (set SIPSD_BUILD)" >&2
	exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sipsd-cert-matrix.XXXXXX") || exit 2
trap 'rm -rf -- "$tmp"' EXIT

if ! bash "$src/tests/certs/make-matrix.sh" "$tmp/pki" >"$tmp/make.log" 2>&1; then
	echo "cert_matrix: make-matrix.sh failed:" >&2
	cat "$tmp/make.log" >&2
	exit 1
fi

pass=0
fail=0
cd "$tmp/pki" || exit 2
while IFS=$'\t' read -r name file domain want_rc want_verdict opts; do
	case "$name" in '#'* | '') continue ;; esac
	args=()
	# Options hold no spaces inside a value: split on blanks only.
	[ "$opts" = - ] || read -r -a args <<<"$opts"
	[ "$domain" = - ] || args+=(--domain "$domain")
	out=$("$sipsctl" cert "${args[@]}" "$file" 2>&1)
	rc=$?
	got=$(printf '%s\n' "$out" | sed -n 's/^verdict: \([a-z-]*\).*/\1/p')
	if [ "$rc" = "$want_rc" ] && [ "$got" = "$want_verdict" ]; then
		pass=$((pass + 1))
		printf 'ok   %-28s %-14s rc=%s\n' "$name" "$got" "$rc"
	else
		fail=$((fail + 1))
		printf 'FAIL %-28s want %s rc=%s, got %s rc=%s\n' "$name" "$want_verdict" "$want_rc" \
			"${got:-?}" "$rc"
		printf '     sipsctl cert %s %s\n' "${args[*]}" "$file"
		printf '%s\n' "$out" | sed 's/^/     | /'
	fi
done <MANIFEST

# Bad input is a usage / I/O error (exit 2) with a message.
usage_case() {
	local what=$1
	shift
	local out rc
	out=$("$sipsctl" cert "$@" 2>&1 >/dev/null)
	rc=$?
	if [ "$rc" = 2 ] && [ -n "$out" ]; then
		pass=$((pass + 1))
		printf 'ok   %-28s rc=2\n' "$what"
	else
		fail=$((fail + 1))
		printf 'FAIL %-28s want rc=2 and a message, got rc=%s: %s\n' "$what" "$rc" "$out"
	fi
}
usage_case usage-no-cert --ca ca.pem
usage_case usage-missing-file --ca ca.pem does-not-exist.pem
usage_case usage-not-a-cert --ca ca.pem good.key
usage_case usage-bad-ca --ca good.key good.pem
usage_case usage-missing-ca --ca nowhere.pem good.pem
usage_case usage-bad-crl --ca ca.pem --crl ca.pem good.pem
usage_case usage-bad-eku --eku sometimes good.pem
usage_case usage-bad-role --role peer good.pem
usage_case usage-unknown-option --frobnicate good.pem
usage_case usage-missing-value good.pem --domain
usage_case usage-two-certs good.pem t3-dns.pem

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
