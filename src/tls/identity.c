/* identity.c: RFC 5922 §7.1/§7.2 SIP domain identities, RFC 5924 EKU policy,
 * RFC 5280 chain verification with OpenSSL. */
#include "tls/identity.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

/* id-kp-sipDomain, 1.3.6.1.5.5.7.3.20 (RFC 5924 §4), as DER content octets:
 * OpenSSL 3.0 has no NID for it, so it is compared byte for byte. */
static const unsigned char sip_domain_oid[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x14};

void tls_identity_set_init(struct tls_identity_set *set)
{
	set->count = 0;
	set->used = 0;
	set->source = TLS_IDENTITY_SRC_NONE;
	set->bad_name = false;
	set->truncated = false;
	set->ignored = 0;
	set->buf[0] = '\0';
	set->bad_desc[0] = '\0';
}

const struct tls_identity_set tls_identity_set_empty;

/* Bytes of a set up to the end of its used names, plus a NUL. */
static size_t set_compact_size(const struct tls_identity_set *set)
{
	size_t used = set->used < TLS_IDENTITY_BUF_SIZE ? set->used : TLS_IDENTITY_BUF_SIZE - 1;
	return offsetof(struct tls_identity_set, buf) + used + 1;
}

struct tls_identity_set *tls_identity_set_dup(const struct tls_identity_set *set)
{
	size_t n = set_compact_size(set);
	struct tls_identity_set *d = malloc(n);
	if (!d)
		return NULL;
	memcpy(d, set, n - 1);
	((char *)d)[n - 1] = '\0';
	return d;
}

void tls_identity_set_copy(struct tls_identity_set *dst, const struct tls_identity_set *src)
{
	size_t n = set_compact_size(src);
	memcpy(dst, src, n - 1);
	((char *)dst)[n - 1] = '\0';
}

struct str tls_identity_set_name(const struct tls_identity_set *set, size_t i)
{
	if (i >= set->count)
		return STR_NULL;
	return str_make(set->buf + set->off[i], set->len[i]);
}

const char *tls_identity_source_name(enum tls_identity_source src)
{
	switch (src) {
	case TLS_IDENTITY_SRC_URI:
		return "uri";
	case TLS_IDENTITY_SRC_DNS:
		return "dns";
	case TLS_IDENTITY_SRC_CN:
		return "cn";
	case TLS_IDENTITY_SRC_NONE:
		break;
	}
	return "none";
}

/* A host name as it may appear in a certificate: letters, digits, '-', '.',
 * '_' and '*' (kept so that a wildcard entry shows in the set, where it can
 * only ever match itself, RFC 5922 §7.2). `brackets` also admits an IPv6
 * reference `[...]` (sip: URI hosts, RFC 3261 §25.1). */
static bool host_is_valid(const char *s, size_t n, bool brackets)
{
	if (n == 0 || n > TLS_IDENTITY_MAX_NAME)
		return false;
	if (brackets && s[0] == '[') {
		if (n < 3 || s[n - 1] != ']')
			return false;
		for (size_t i = 1; i + 1 < n; i++)
			if (!ascii_is_hex(s[i]) && s[i] != ':' && s[i] != '.')
				return false;
		return true;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!ascii_is_alpha(c) && !ascii_is_digit(c) && c != '-' && c != '.' && c != '_' &&
		    c != '*')
			return false;
	}
	return true;
}

/* Append a lower-cased copy of a valid host; duplicates are dropped. */
static void set_add(struct tls_identity_set *set, const char *s, size_t n)
{
	char low[TLS_IDENTITY_MAX_NAME];
	for (size_t i = 0; i < n; i++)
		low[i] = ascii_lower(s[i]);
	for (size_t i = 0; i < set->count; i++)
		if (set->len[i] == n && memcmp(set->buf + set->off[i], low, n) == 0)
			return;
	if (set->count >= TLS_IDENTITY_MAX_NAMES || (size_t)set->used + n + 1 > sizeof(set->buf)) {
		set->truncated = true;
		return;
	}
	memcpy(set->buf + set->used, low, n);
	set->buf[set->used + n] = '\0'; /* keeps every name printable with %s */
	set->off[set->count] = set->used;
	set->len[set->count] = (uint8_t)n;
	set->count++;
	set->used = (uint16_t)(set->used + n + 1);
}

/* Describe a refused entry with its bytes escaped (\xNN), for the log. */
static void set_refuse(struct tls_identity_set *set, const char *kind, const unsigned char *s,
		       size_t n)
{
	size_t size = sizeof(set->bad_desc);
	int w = snprintf(set->bad_desc, size, "%s:", kind);
	size_t pos = w > 0 ? (size_t)w : 0;
	for (size_t i = 0; i < n && pos + 8 < size; i++) {
		if (s[i] >= 0x21 && s[i] <= 0x7e && s[i] != '\\') {
			set->bad_desc[pos++] = (char)s[i];
		} else {
			w = snprintf(set->bad_desc + pos, size - pos, "\\x%02x", s[i]);
			if (w > 0)
				pos += (size_t)w;
		}
	}
	if (pos >= size)
		pos = size - 1;
	set->bad_desc[pos] = '\0';
	set->count = 0;
	set->used = 0;
	set->buf[0] = '\0';
	set->source = TLS_IDENTITY_SRC_NONE;
	set->bad_name = true;
}

/* RFC 5922 §7.1 URI rule. Returns true when `v` is a sip: URI without a user
 * part (then host and hostlen are set, possibly to an invalid host). */
static bool sip_uri_host(const char *v, size_t n, const char **host, size_t *hostlen)
{
	/* Scheme comparison is case-insensitive (RFC 3986 §3.1). */
	if (n < 4 || !str_case_has_prefix(str_make(v, n), "sip:"))
		return false;
	const char *h = v + 4;
	size_t rest = n - 4;
	/* '@' cannot appear unescaped in a SIP URI's host, port, parameters or
	 * headers (RFC 3261 §25.1), so any '@' means a userinfo part. */
	if (memchr(h, '@', rest))
		return false;
	size_t hl = 0;
	if (rest && h[0] == '[') {
		const char *close = memchr(h, ']', rest);
		hl = close ? (size_t)(close - h) + 1 : rest;
	} else {
		while (hl < rest && h[hl] != ':' && h[hl] != ';' && h[hl] != '?')
			hl++;
	}
	*host = h;
	*hostlen = hl;
	return true;
}

static const char *gen_kind(int type)
{
	switch (type) {
	case GEN_DNS:
		return "DNS";
	case GEN_URI:
		return "URI";
	case GEN_EMAIL:
		return "email";
	default:
		return "other";
	}
}

/* The IA5String of a dNSName, URI or rfc822Name entry, or NULL. */
static const ASN1_IA5STRING *gen_ia5(const GENERAL_NAME *gen)
{
	switch (gen->type) {
	case GEN_DNS:
		return gen->d.dNSName;
	case GEN_URI:
		return gen->d.uniformResourceIdentifier;
	case GEN_EMAIL:
		return gen->d.rfc822Name;
	default:
		return NULL;
	}
}

static int extract_san(const GENERAL_NAMES *gens, struct tls_identity_set *out)
{
	int n = sk_GENERAL_NAME_num(gens);

	/* Refuse the whole certificate when any textual entry hides a NUL
	 * ("example.net\0.evil.org"): the issuer validated one name, a C string
	 * comparison would see another (spec rule 3). */
	for (int i = 0; i < n; i++) {
		const GENERAL_NAME *gen = sk_GENERAL_NAME_value(gens, i);
		const ASN1_IA5STRING *ia5 = gen_ia5(gen);
		if (!ia5)
			continue;
		const unsigned char *d = ASN1_STRING_get0_data(ia5);
		int len = ASN1_STRING_length(ia5);
		if (len < 0 || (len > 0 && (!d || memchr(d, 0, (size_t)len)))) {
			set_refuse(out, gen_kind(gen->type), d, len > 0 && d ? (size_t)len : 0);
			return -EBADMSG;
		}
	}

	/* Step 1: sip: URIs without a user part. */
	for (int i = 0; i < n; i++) {
		const GENERAL_NAME *gen = sk_GENERAL_NAME_value(gens, i);
		if (gen->type != GEN_URI)
			continue;
		const ASN1_IA5STRING *ia5 = gen->d.uniformResourceIdentifier;
		const char *v = (const char *)ASN1_STRING_get0_data(ia5);
		size_t vl = (size_t)ASN1_STRING_length(ia5);
		const char *host;
		size_t hl;
		if (!v || !sip_uri_host(v, vl, &host, &hl))
			continue;
		if (host_is_valid(host, hl, true))
			set_add(out, host, hl);
		else
			out->ignored++;
	}
	if (out->count > 0 || out->truncated) {
		out->source = TLS_IDENTITY_SRC_URI;
		return 0;
	}

	/* Step 1, DNS: dNSNames only when no sip: URI identity was found. */
	for (int i = 0; i < n; i++) {
		const GENERAL_NAME *gen = sk_GENERAL_NAME_value(gens, i);
		if (gen->type != GEN_DNS)
			continue;
		const char *v = (const char *)ASN1_STRING_get0_data(gen->d.dNSName);
		size_t vl = (size_t)ASN1_STRING_length(gen->d.dNSName);
		if (v && host_is_valid(v, vl, false))
			set_add(out, v, vl);
		else
			out->ignored++;
	}
	if (out->count > 0 || out->truncated)
		out->source = TLS_IDENTITY_SRC_DNS;
	return 0;
}

/* Step 2 (legacy): every Subject CN that is a valid DNS name. */
static int extract_cn(X509 *cert, struct tls_identity_set *out)
{
	const X509_NAME *name = X509_get_subject_name(cert);
	int pos = -1;
	if (!name)
		return 0;
	while ((pos = X509_NAME_get_index_by_NID(name, NID_commonName, pos)) >= 0) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, pos);
		const ASN1_STRING *data = e ? X509_NAME_ENTRY_get_data(e) : NULL;
		unsigned char *utf8 = NULL;
		int len = data ? ASN1_STRING_to_UTF8(&utf8, data) : -1;
		if (len < 0) {
			out->ignored++;
			continue;
		}
		if (memchr(utf8, 0, (size_t)len)) {
			set_refuse(out, "CN", utf8, (size_t)len);
			OPENSSL_free(utf8);
			return -EBADMSG;
		}
		if (host_is_valid((const char *)utf8, (size_t)len, false))
			set_add(out, (const char *)utf8, (size_t)len);
		else
			out->ignored++;
		OPENSSL_free(utf8);
	}
	if (out->count > 0 || out->truncated)
		out->source = TLS_IDENTITY_SRC_CN;
	return 0;
}

int tls_identity_extract(X509 *cert, const struct tls_identity_policy *pol,
			 struct tls_identity_set *out)
{
	struct tls_identity_policy def = TLS_IDENTITY_POLICY_DEFAULT;
	int rc = 0;

	tls_identity_set_init(out);
	if (!cert)
		return -EINVAL;
	if (!pol)
		pol = &def;

	/* Leave OpenSSL's error queue as we found it: a stray error would make
	 * a later SSL_get_error() report SSL_ERROR_SSL on the connection. */
	ERR_set_mark();
	if (X509_get_ext_by_NID(cert, NID_subject_alt_name, -1) >= 0) {
		int crit = -1;
		GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
		if (!gens) {
			/* Undecodable, or present twice (RFC 5280 §4.2). */
			set_refuse(out, crit == -2 ? "duplicate subjectAltName" : "subjectAltName",
				   NULL, 0);
			rc = -EBADMSG;
		} else {
			rc = extract_san(gens, out);
			GENERAL_NAMES_free(gens);
		}
	} else if (pol->legacy_cn) {
		rc = extract_cn(cert, out);
	}
	ERR_pop_to_mark();
	return rc;
}

bool tls_identity_match(const struct tls_identity_set *set, struct str domain)
{
	if (set->bad_name || domain.len == 0)
		return false;
	for (size_t i = 0; i < set->count; i++)
		if (str_case_eq(tls_identity_set_name(set, i), domain))
			return true;
	return false;
}

enum tls_verdict tls_identity_verdict(const struct tls_identity_set *set, struct str domain)
{
	if (set->bad_name)
		return TLS_VERDICT_BAD_NAME;
	if (set->count == 0)
		return TLS_VERDICT_NO_IDENTITY;
	return tls_identity_match(set, domain) ? TLS_VERDICT_OK : TLS_VERDICT_NAME_MISMATCH;
}

enum tls_verdict tls_eku_check(X509 *cert, enum tls_role role, enum tls_eku_mode mode)
{
	int crit = -1;
	bool sip = false, role_ok = false, any = false;

	if (!cert)
		return TLS_VERDICT_EKU;
	ERR_set_mark();
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(cert, NID_ext_key_usage, &crit, NULL);
	ERR_pop_to_mark();
	if (!eku)
		/* Absent: any use (RFC 5280 §4.2.1.12). Present but undecodable or
		 * duplicated: refuse. */
		return crit == -1 ? TLS_VERDICT_OK : TLS_VERDICT_EKU;
	for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
		const ASN1_OBJECT *obj = sk_ASN1_OBJECT_value(eku, i);
		size_t olen = OBJ_length(obj);
		const unsigned char *od = OBJ_get0_data(obj);
		if (olen == sizeof(sip_domain_oid) && od && !memcmp(od, sip_domain_oid, olen))
			sip = true;
		switch (OBJ_obj2nid(obj)) {
		case NID_server_auth:
			role_ok = role_ok || role == TLS_ROLE_SERVER;
			break;
		case NID_client_auth:
			role_ok = role_ok || role == TLS_ROLE_CLIENT;
			break;
		case NID_anyExtendedKeyUsage:
			any = true;
			break;
		default:
			break;
		}
	}
	EXTENDED_KEY_USAGE_free(eku);
	/* RFC 5924 §4: sipDomain is the SIP purpose; without it a certificate
	 * is accepted for SIP only by local policy (lenient). */
	if (sip)
		return TLS_VERDICT_OK;
	if (mode == TLS_EKU_LENIENT && (role_ok || any))
		return TLS_VERDICT_OK;
	return TLS_VERDICT_EKU;
}

enum tls_verdict tls_identity_authenticate(X509 *cert, const struct tls_identity_policy *pol,
					   enum tls_role role, struct str domain,
					   struct tls_identity_set *ids)
{
	struct tls_identity_policy def = TLS_IDENTITY_POLICY_DEFAULT;
	if (!pol)
		pol = &def;
	if (tls_identity_extract(cert, pol, ids) < 0 || ids->bad_name)
		return TLS_VERDICT_BAD_NAME;
	enum tls_verdict v = tls_eku_check(cert, role, pol->eku);
	if (v != TLS_VERDICT_OK)
		return v;
	if (domain.len == 0)
		return TLS_VERDICT_OK;
	return tls_identity_verdict(ids, domain);
}

/* Read every PEM certificate (or CRL) of `path` into `store`. Returns the
 * count, or -ENOENT / -EBADMSG / -ENOMEM. */
static int store_load_pem(X509_STORE *store, const char *path, bool crl)
{
	BIO *bio = BIO_new_file(path, "r");
	int count = 0, rc = 0;

	if (!bio)
		return errno ? -errno : -ENOENT;
	for (;;) {
		if (crl) {
			X509_CRL *c = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
			if (!c)
				break;
			rc = X509_STORE_add_crl(store, c) ? 0 : -ENOMEM;
			X509_CRL_free(c);
		} else {
			/* _AUX also reads "TRUSTED CERTIFICATE" blocks. */
			X509 *x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
			if (!x)
				break;
			rc = X509_STORE_add_cert(store, x) ? 0 : -ENOMEM;
			X509_free(x);
		}
		if (rc < 0)
			break;
		count++;
	}
	/* The loop ends at end of file (PEM_R_NO_START_LINE) or on bad data. */
	unsigned long e = ERR_peek_last_error();
	if (rc == 0 && e &&
	    !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE))
		rc = -EBADMSG;
	ERR_clear_error();
	BIO_free(bio);
	if (rc < 0)
		return rc;
	return count > 0 ? count : -EBADMSG;
}

int tls_store_create(const char *ca_file, const char *ca_dir, const char *crl_file,
		     X509_STORE **out)
{
	X509_STORE *store = X509_STORE_new();
	int rc = 0;

	*out = NULL;
	if (!store)
		return -ENOMEM;
	ERR_clear_error();
	if (ca_file) {
		rc = store_load_pem(store, ca_file, false);
		if (rc < 0)
			goto fail;
	}
	if (ca_dir) {
		struct stat st;
		if (stat(ca_dir, &st) != 0) {
			rc = -errno;
			goto fail;
		}
		if (!S_ISDIR(st.st_mode)) {
			rc = -ENOTDIR;
			goto fail;
		}
		if (!X509_STORE_load_path(store, ca_dir)) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	if (!ca_file && !ca_dir && !X509_STORE_set_default_paths(store)) {
		rc = -ENOMEM;
		goto fail;
	}
	if (crl_file) {
		rc = store_load_pem(store, crl_file, true);
		if (rc < 0)
			goto fail;
		/* RFC 5280 §6.3 for the leaf; a CRL for its issuer must exist. */
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	}
	/* Purpose checks would apply OpenSSL's serverAuth/clientAuth rules to
	 * the EKU and refuse sipDomain-only certificates in mutual TLS. The EKU
	 * is decided by tls_eku_check() instead (RFC 5924). */
	if (!X509_STORE_set_purpose(store, X509_PURPOSE_ANY)) {
		rc = -ENOMEM;
		goto fail;
	}
	ERR_clear_error();
	*out = store;
	return 0;
fail:
	ERR_clear_error();
	X509_STORE_free(store);
	return rc < 0 ? rc : -EINVAL;
}

enum tls_verdict tls_verdict_from_x509(int x509_err)
{
	switch (x509_err) {
	case X509_V_OK:
		return TLS_VERDICT_OK;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return TLS_VERDICT_EXPIRED;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return TLS_VERDICT_NOT_YET_VALID;
	case X509_V_ERR_CERT_REVOKED:
		return TLS_VERDICT_REVOKED;
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		return TLS_VERDICT_SELF_SIGNED;
	default:
		/* Unknown issuer, a self-signed root sent by the peer but not
		 * trusted (SELF_SIGNED_CERT_IN_CHAIN), bad signature, CA flags,
		 * path length, missing CRL, ...: no path to a trust anchor. */
		return TLS_VERDICT_UNTRUSTED;
	}
}

enum tls_verdict tls_chain_verify(X509_STORE *store, X509 *cert, STACK_OF(X509) * untrusted,
				  int *x509_err, int *depth)
{
	int err = X509_V_ERR_UNSPECIFIED, d = 0;
	enum tls_verdict v = TLS_VERDICT_UNTRUSTED;

	if (store && cert) {
		ERR_set_mark();
		X509_STORE_CTX *ctx = X509_STORE_CTX_new();
		if (ctx && X509_STORE_CTX_init(ctx, store, cert, untrusted)) {
			X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY);
			int r = X509_verify_cert(ctx);
			err = X509_STORE_CTX_get_error(ctx);
			d = X509_STORE_CTX_get_error_depth(ctx);
			if (r == 1)
				err = X509_V_OK;
			else if (err == X509_V_OK)
				err = X509_V_ERR_UNSPECIFIED; /* internal failure: fail closed */
			v = tls_verdict_from_x509(err);
		}
		X509_STORE_CTX_free(ctx);
		ERR_pop_to_mark();
	}
	if (x509_err)
		*x509_err = err;
	if (depth)
		*depth = d;
	return v;
}

static const char *const verdict_names[TLS_VERDICT_COUNT] = {
    [TLS_VERDICT_OK] = "ok",
    [TLS_VERDICT_UNTRUSTED] = "untrusted",
    [TLS_VERDICT_EXPIRED] = "expired",
    [TLS_VERDICT_NOT_YET_VALID] = "not-yet-valid",
    [TLS_VERDICT_REVOKED] = "revoked",
    [TLS_VERDICT_SELF_SIGNED] = "self-signed",
    [TLS_VERDICT_NO_IDENTITY] = "no-identity",
    [TLS_VERDICT_NAME_MISMATCH] = "name-mismatch",
    [TLS_VERDICT_EKU] = "eku",
    [TLS_VERDICT_BAD_NAME] = "bad-name",
};

const char *tls_verdict_name(enum tls_verdict v)
{
	if ((unsigned)v >= TLS_VERDICT_COUNT)
		return "unknown";
	return verdict_names[v];
}

/* A bounded appender: writes stop at the end of the buffer, which stays
 * NUL-terminated; a truncated result ends in "...". */
struct sbuf {
	char *buf;
	size_t size;
	size_t pos;
	bool full;
};

static void sbuf_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sbuf_add(struct sbuf *b, const char *fmt, ...)
{
	if (b->full || b->size == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(b->buf + b->pos, b->size - b->pos, fmt, ap);
	va_end(ap);
	if (w < 0)
		return;
	if ((size_t)w >= b->size - b->pos) {
		b->full = true;
		b->pos = b->size - 1;
		if (b->size >= 4)
			memcpy(b->buf + b->size - 4, "...", 4);
		return;
	}
	b->pos += (size_t)w;
}

static void sbuf_set(struct sbuf *b, const struct tls_identity_set *set)
{
	sbuf_add(b, "{");
	for (size_t i = 0; set && i < set->count; i++) {
		struct str n = tls_identity_set_name(set, i);
		sbuf_add(b, "%s%.*s", i ? "," : "", (int)n.len, n.s);
	}
	if (set && set->truncated)
		sbuf_add(b, "%s...", set->count ? "," : "");
	sbuf_add(b, "}");
}

size_t tls_identity_set_format(const struct tls_identity_set *set, char *buf, size_t size)
{
	struct sbuf b = {buf, size, 0, false};
	if (size)
		buf[0] = '\0';
	sbuf_set(&b, set);
	return b.pos;
}

size_t tls_verdict_format(char *buf, size_t size, enum tls_verdict v, int x509_err,
			  struct str wanted, const struct tls_identity_set *ids)
{
	struct sbuf b = {buf, size, 0, false};
	if (size)
		buf[0] = '\0';
	sbuf_add(&b, "%s", tls_verdict_name(v));
	switch (v) {
	case TLS_VERDICT_OK:
		break;
	case TLS_VERDICT_UNTRUSTED:
	case TLS_VERDICT_EXPIRED:
	case TLS_VERDICT_NOT_YET_VALID:
	case TLS_VERDICT_REVOKED:
	case TLS_VERDICT_SELF_SIGNED:
		if (x509_err != X509_V_OK)
			sbuf_add(&b, ": %s", X509_verify_cert_error_string(x509_err));
		break;
	case TLS_VERDICT_NO_IDENTITY:
	case TLS_VERDICT_NAME_MISMATCH:
		sbuf_add(&b, ": wanted %.*s, found ", (int)(wanted.len > 253 ? 253 : wanted.len),
			 wanted.len ? wanted.s : "");
		sbuf_set(&b, ids);
		break;
	case TLS_VERDICT_EKU:
		sbuf_add(&b, ": extended key usage not acceptable (RFC 5924)");
		break;
	case TLS_VERDICT_BAD_NAME:
		sbuf_add(&b, ": refused name entry %s",
			 ids && ids->bad_desc[0] ? ids->bad_desc : "(embedded NUL)");
		break;
	}
	return b.pos;
}
