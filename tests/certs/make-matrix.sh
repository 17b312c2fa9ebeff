#!/usr/bin/env bash
# make-matrix.sh: a throw-away PKI and the RFC 5922 / RFC 5924 certificate
# matrix (spec.md §2 rules 1-4, §3 T3-T6), made at test time with `openssl`.
#
# Usage: tests/certs/make-matrix.sh OUTDIR
#
# Writes into OUTDIR (created if missing):
#   ca.pem / ca.key         trusted root CA          (the trust anchor)
#   inter.pem / inter.key   intermediate CA under the root (pathlen 0)
#   other-ca.pem            a second root CA that nobody trusts
#   cadir/                  ca.pem in a hashed directory (`openssl rehash`)
#   crl.pem                 CRLs of the root and the intermediate (one revoked leaf)
#   NAME.pem / NAME.key     one leaf certificate and its key per matrix entry
#   MANIFEST                the cases, tab-separated (see its header)
#
# Every key is EC P-256 so that the whole matrix takes a second or two.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
command -v openssl >/dev/null || { echo "make-matrix: openssl not found" >&2; exit 2; }
out=$1
mkdir -p "$out"
cd "$out"
log=openssl.log
: >"$log"

# Run openssl quietly; on failure show what it said and stop.
ossl() {
	if ! openssl "$@" >>"$log" 2>&1; then
		echo "make-matrix: openssl $1 failed; log follows" >&2
		tail -n 20 "$log" >&2
		exit 1
	fi
}

# Hex of a byte string given as printf format (so \0 can be written).
hexof() {
	# shellcheck disable=SC2059
	printf "$1" | od -An -tx1 -v | tr -d ' \n'
}

# DER length octets for a content length below 65536.
derlen() {
	local n=$1
	if [ "$n" -lt 128 ]; then printf '%02x' "$n"
	elif [ "$n" -lt 256 ]; then printf '81%02x' "$n"
	else printf '82%04x' "$n"; fi
}

# GeneralNames with one entry: $1 = context tag byte (82 dNSName, 86 URI,
# 81 rfc822Name), $2 = printf format of the IA5String value. Extra entries
# (already DER hex) may follow as $3...
san_der() {
	local tag=$1 val
	val=$(hexof "$2")
	local body
	body="${tag}$(derlen $((${#val} / 2)))${val}"
	shift 2
	local extra
	for extra in "$@"; do body="${body}${extra}"; done
	printf '30%s%s' "$(derlen $((${#body} / 2)))" "$body"
}

san_entry() {
	local val
	val=$(hexof "$2")
	printf '%s%s%s' "$1" "$(derlen $((${#val} / 2)))" "$val"
}

for ca in root inter; do
	mkdir -p "db-$ca/new"
	: >"db-$ca/index.txt"
	echo 1000 >"db-$ca/serial"
	echo 1000 >"db-$ca/crlnumber"
done

cat >pki.cnf <<CNF
# Throw-away PKI for the sipsd certificate matrix. Not for any real use.
[ca]
default_ca = root_ca

[root_ca]
dir = db-root
database = \$dir/index.txt
serial = \$dir/serial
crlnumber = \$dir/crlnumber
new_certs_dir = \$dir/new
certificate = ca.pem
private_key = ca.key
default_md = sha256
default_days = 825
default_crl_days = 3650
policy = pol_any
unique_subject = no
copy_extensions = none

[inter_ca]
dir = db-inter
database = \$dir/index.txt
serial = \$dir/serial
crlnumber = \$dir/crlnumber
new_certs_dir = \$dir/new
certificate = inter.pem
private_key = inter.key
default_md = sha256
default_days = 825
default_crl_days = 3650
policy = pol_any
unique_subject = no
copy_extensions = none

[pol_any]
organizationName = optional
commonName = optional
emailAddress = optional

[req]
distinguished_name = req_dn
[req_dn]

[v3_root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[v3_inter]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[v3_self]
# What a hand-made self-signed server certificate usually looks like.
basicConstraints = CA:FALSE
subjectKeyIdentifier = hash
subjectAltName = URI:sip:example.net
CNF

# Leaf extensions: one section per certificate profile.
leaf_common='basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid'

{
	ext() { # ext SECTION [extension lines...]
		printf '[%s]\n%s\n' "$1" "$leaf_common"
		shift
		local l
		for l in "$@"; do printf '%s\n' "$l"; done
		printf '\n'
	}
	ext good 'subjectAltName = URI:sip:example.net'
	ext com 'subjectAltName = URI:sip:example.com'
	ext t3_dns 'subjectAltName = DNS:p2.example.net'
	ext t4_uri_dns 'subjectAltName = URI:sip:example.net, DNS:example.org'
	ext no_san
	ext email_only 'subjectAltName = email:admin@example.net'
	ext wildcard 'subjectAltName = DNS:*.example.net'
	ext upper_uri 'subjectAltName = URI:sip:EXAMPLE.NET'
	ext upper_dns 'subjectAltName = DNS:EXAMPLE.ORG'
	ext user_uri 'subjectAltName = URI:sip:admin@example.net'
	ext user_uri_dns 'subjectAltName = URI:sip:admin@example.net, DNS:example.net'
	ext sips_uri 'subjectAltName = URI:sips:example.net'
	ext uri_port 'subjectAltName = URI:sip:example.net:5061;transport=tls'
	ext multi_uri 'subjectAltName = URI:sip:example.com, URI:sip:example.net, DNS:example.org'
	ext other_kinds 'subjectAltName = URI:https://example.net/, URI:tel:+15550100, IP:127.0.0.1, email:sip@example.net'
	ext eku_server 'subjectAltName = URI:sip:example.net' 'extendedKeyUsage = serverAuth'
	ext eku_client 'subjectAltName = URI:sip:example.net' 'extendedKeyUsage = clientAuth'
	ext eku_sip 'subjectAltName = URI:sip:example.net' 'extendedKeyUsage = 1.3.6.1.5.5.7.3.20'
	ext eku_sip_server 'subjectAltName = URI:sip:example.net' 'extendedKeyUsage = 1.3.6.1.5.5.7.3.20, serverAuth'
	ext eku_any 'subjectAltName = URI:sip:example.net' 'extendedKeyUsage = anyExtendedKeyUsage'
	ext eku_email 'subjectAltName = URI:sip:example.net' 'extendedKeyUsage = emailProtection'
	# Embedded NUL (RFC 5922 §7.1 / spec rule 3): hand-built GeneralNames.
	ext nul_dns "subjectAltName = DER:$(san_der 82 'example.net\000.evil.org')"
	ext nul_uri "subjectAltName = DER:$(san_der 86 'sip:example.net\000.evil.org')"
	ext nul_email "subjectAltName = DER:$(san_der 86 'sip:example.net' \
		"$(san_entry 81 'admin@example.net\000.evil.org')")"
} >leaf.cnf

# Root, intermediate and the untrusted root.
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
ossl req -config pki.cnf -new -x509 -key ca.key -days 3650 -extensions v3_root \
	-subj "/O=sipsd test/CN=sipsd test root CA" -out ca.pem
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out inter.key
ossl req -config pki.cnf -new -key inter.key -subj "/O=sipsd test/CN=sipsd test intermediate CA" \
	-out inter.csr
ossl ca -batch -config pki.cnf -name root_ca -notext -preserveDN -days 3650 \
	-extfile pki.cnf -extensions v3_inter -in inter.csr -out inter.pem
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other-ca.key
ossl req -config pki.cnf -new -x509 -key other-ca.key -days 3650 -extensions v3_root \
	-subj "/O=somebody else/CN=untrusted root CA" -out other-ca.pem
mkdir -p cadir
cp ca.pem cadir/sipsd-test-root.pem
ossl rehash cadir

# leaf NAME CA-NAME EXT-SECTION SUBJECT [extra `openssl ca` options...]
leaf() {
	local name=$1 ca=$2 sect=$3 subj=$4
	shift 4
	ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$name.key"
	ossl req -config pki.cnf -new -key "$name.key" -subj "$subj" -out "$name.csr"
	ossl ca -batch -config pki.cnf -name "$ca" -notext -preserveDN -extfile leaf.cnf \
		-extensions "$sect" -in "$name.csr" -out "$name.pem" "$@"
	rm -f "$name.csr"
}

cn=/CN=example.net
leaf good root_ca good "$cn"
leaf p1-com root_ca com /CN=example.com
leaf t3-dns root_ca t3_dns /CN=p2.example.net
leaf t4-uri-dns root_ca t4_uri_dns "$cn"
leaf t5-cn root_ca no_san "$cn"
leaf t5-cn-upper root_ca no_san /CN=EXAMPLE.NET
leaf t5-email root_ca email_only "$cn"
leaf t6-wildcard root_ca wildcard "$cn"
leaf t6-upper-uri root_ca upper_uri /CN=other.example
leaf t6-user-uri root_ca user_uri "$cn"
leaf t6-sips-uri root_ca sips_uri "$cn"
leaf user-uri-dns root_ca user_uri_dns /CN=other.example
leaf upper-dns root_ca upper_dns /CN=other.example
leaf uri-port root_ca uri_port "$cn"
leaf multi-uri root_ca multi_uri "$cn"
leaf other-kinds root_ca other_kinds "$cn"
leaf eku-server root_ca eku_server "$cn"
leaf eku-client root_ca eku_client "$cn"
leaf eku-sip root_ca eku_sip "$cn"
leaf eku-sip-server root_ca eku_sip_server "$cn"
leaf eku-any root_ca eku_any "$cn"
leaf eku-email root_ca eku_email "$cn"
leaf expired root_ca good "$cn" -startdate 20200101000000Z -enddate 20210101000000Z
leaf not-yet-valid root_ca good "$cn" -startdate 20400101000000Z -enddate 20410101000000Z
leaf revoked root_ca good "$cn"
leaf inter-leaf inter_ca good "$cn"
leaf nul-dns root_ca nul_dns "$cn"
leaf nul-uri root_ca nul_uri "$cn"
leaf nul-email root_ca nul_email "$cn"

# Signed by the CA nobody trusts: reuse `openssl ca` with that key.
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out untrusted.key
ossl req -config pki.cnf -new -key untrusted.key -subj "$cn" -out untrusted.csr
ossl x509 -req -in untrusted.csr -CA other-ca.pem -CAkey other-ca.key -set_serial 4242 \
	-days 825 -sha256 -extfile leaf.cnf -extensions good -out untrusted.pem
rm -f untrusted.csr

# Self-signed leaf.
ossl req -config pki.cnf -new -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout self-signed.key -days 825 -extensions v3_self -subj "$cn" -out self-signed.pem

# Revocation: one leaf revoked; CRLs for both issuing CAs in one file.
ossl ca -config pki.cnf -name root_ca -revoke revoked.pem -crl_reason keyCompromise
ossl ca -config pki.cnf -name root_ca -gencrl -out root.crl
ossl ca -config pki.cnf -name inter_ca -gencrl -out inter.crl
cat root.crl inter.crl >crl.pem

# The MANIFEST: name, certificate, domain to check ('-' for none), expected
# `sipsctl cert` exit status, expected verdict word, options for `sipsctl
# cert` (space-separated, file names relative to OUTDIR, '-' for none).
# Role 'client' rows describe a certificate presented by a TLS client
# (mutual TLS); every other row a certificate presented by a TLS server.
ca='--ca ca.pem'
{
	printf '# name\tfile\tdomain\texit\tverdict\toptions\n'
	row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@"; }
	row good good.pem example.net 0 ok "$ca"
	row good-upper-domain good.pem EXAMPLE.NET 0 ok "$ca"
	row good-other-domain good.pem example.com 1 name-mismatch "$ca"
	row good-no-domain good.pem - 0 ok "$ca"
	row good-cadir good.pem example.net 0 ok "--ca cadir"
	row good-crl good.pem example.net 0 ok "$ca --crl crl.pem"
	row good-eku-strict good.pem example.net 0 ok "$ca --eku strict"
	row good-as-client good.pem example.net 0 ok "$ca --role client"
	row good-system-store good.pem example.net 1 untrusted -
	row t3-srv-target t3-dns.pem example.net 1 name-mismatch "$ca"
	row t3-dns-own-name t3-dns.pem p2.example.net 0 ok "$ca"
	row t4-dns-ignored t4-uri-dns.pem example.org 1 name-mismatch "$ca"
	row t4-uri t4-uri-dns.pem example.net 0 ok "$ca"
	row t5-legacy-cn t5-cn.pem example.net 0 ok "$ca"
	row t5-legacy-cn-upper t5-cn-upper.pem example.net 0 ok "$ca"
	row t5-no-legacy-cn t5-cn.pem example.net 1 no-identity "$ca --no-legacy-cn"
	row t5-email-san t5-email.pem example.net 1 no-identity "$ca"
	row t6-wildcard t6-wildcard.pem sub.example.net 1 name-mismatch "$ca"
	row t6-wildcard-base t6-wildcard.pem example.net 1 name-mismatch "$ca"
	row t6-wildcard-literal t6-wildcard.pem '*.example.net' 0 ok "$ca"
	row t6-suffix good.pem sub.example.net 1 name-mismatch "$ca"
	row t6-parent good.pem net 1 name-mismatch "$ca"
	row t6-upper-uri t6-upper-uri.pem example.net 0 ok "$ca"
	row t6-user-uri t6-user-uri.pem example.net 1 no-identity "$ca"
	row t6-sips-uri t6-sips-uri.pem example.net 1 no-identity "$ca"
	row user-uri-then-dns user-uri-dns.pem example.net 0 ok "$ca"
	row upper-dns upper-dns.pem example.org 0 ok "$ca"
	row uri-port-params uri-port.pem example.net 0 ok "$ca"
	row multi-uri-first multi-uri.pem example.com 0 ok "$ca"
	row multi-uri-second multi-uri.pem example.net 0 ok "$ca"
	row multi-uri-dns-ignored multi-uri.pem example.org 1 name-mismatch "$ca"
	row other-kinds other-kinds.pem example.net 1 no-identity "$ca"
	row other-kinds-ip other-kinds.pem 127.0.0.1 1 no-identity "$ca"
	row eku-server-lenient eku-server.pem example.net 0 ok "$ca"
	row eku-server-strict eku-server.pem example.net 1 eku "$ca --eku strict"
	row eku-server-as-client eku-server.pem example.net 1 eku "$ca --role client"
	row eku-sip-strict eku-sip.pem example.net 0 ok "$ca --eku strict"
	row eku-sip-as-client eku-sip.pem example.net 0 ok "$ca --role client"
	row eku-sip-as-client-strict eku-sip.pem example.net 0 ok "$ca --role client --eku strict"
	row eku-sip-server-strict eku-sip-server.pem example.net 0 ok "$ca --eku strict"
	row eku-any-lenient eku-any.pem example.net 0 ok "$ca"
	row eku-any-as-client eku-any.pem example.net 0 ok "$ca --role client"
	row eku-any-strict eku-any.pem example.net 1 eku "$ca --eku strict"
	row eku-client-as-server eku-client.pem example.net 1 eku "$ca"
	row eku-client-as-client eku-client.pem example.net 0 ok "$ca --role client"
	row eku-client-as-client-strict eku-client.pem example.net 1 eku "$ca --role client --eku strict"
	row eku-email eku-email.pem example.net 1 eku "$ca"
	row expired expired.pem example.net 1 expired "$ca"
	row not-yet-valid not-yet-valid.pem example.net 1 not-yet-valid "$ca"
	row untrusted-ca untrusted.pem example.net 1 untrusted "$ca"
	row untrusted-ca-as-client untrusted.pem example.net 1 untrusted "$ca --role client"
	row self-signed self-signed.pem example.net 1 self-signed "$ca"
	row revoked-crl revoked.pem example.net 1 revoked "$ca --crl crl.pem"
	row revoked-crl-as-client revoked.pem example.net 1 revoked "$ca --crl crl.pem --role client"
	row revoked-no-crl revoked.pem example.net 0 ok "$ca"
	row inter-chain inter-leaf.pem example.net 0 ok "$ca --chain inter.pem"
	row inter-chain-crl inter-leaf.pem example.net 0 ok "$ca --chain inter.pem --crl crl.pem"
	row inter-no-chain inter-leaf.pem example.net 1 untrusted "$ca"
	row inter-chain-as-client inter-leaf.pem example.net 0 ok "$ca --chain inter.pem --role client"
	row nul-dns nul-dns.pem example.net 1 bad-name "$ca"
	row nul-uri nul-uri.pem example.net 1 bad-name "$ca"
	row nul-email nul-email.pem example.net 1 bad-name "$ca"
	row nul-dns-no-domain nul-dns.pem - 1 bad-name "$ca"
	row nul-dns-as-client nul-dns.pem example.net 1 bad-name "$ca --role client"
} >MANIFEST

rm -f -- *.crl.old db-*/*.old
exit 0
