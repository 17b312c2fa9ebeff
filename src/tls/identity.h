/* identity.h: SIP domain identities in X.509 certificates (RFC 5922 §7.1,
 * §7.2), the EKU policy of RFC 5924, and chain verification (RFC 5280). */
#ifndef SIPSD_TLS_IDENTITY_H
#define SIPSD_TLS_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "base/str.h"

/* Bounds of one identity set. A set lives on every TLS connection, so it is
 * packed: names share one buffer. Names beyond the bounds are dropped and
 * the set is marked `truncated` (a dropped name can only cause a refusal,
 * never a false match). */
#define TLS_IDENTITY_MAX_NAMES 32
#define TLS_IDENTITY_MAX_NAME 253 /* RFC 1035 §2.3.4, in text form */
#define TLS_IDENTITY_BUF_SIZE 2048

/* Why a certificate is or is not accepted. Checks run in this order, the
 * first failure being the verdict: chain (UNTRUSTED..SELF_SIGNED), then
 * BAD_NAME, then EKU, then NO_IDENTITY / NAME_MISMATCH for a wanted domain. */
enum tls_verdict {
	TLS_VERDICT_OK = 0,
	TLS_VERDICT_UNTRUSTED,	   /* no path to a trust anchor, or any other RFC 5280 failure */
	TLS_VERDICT_EXPIRED,	   /* notAfter in the past */
	TLS_VERDICT_NOT_YET_VALID, /* notBefore in the future */
	TLS_VERDICT_REVOKED,	   /* listed in a configured CRL */
	TLS_VERDICT_SELF_SIGNED,   /* a self-signed leaf that is not a trust anchor */
	TLS_VERDICT_NO_IDENTITY,   /* no SIP domain identity at all (RFC 5922 §7.1) */
	TLS_VERDICT_NAME_MISMATCH, /* identities exist, none is the wanted domain (§7.2) */
	TLS_VERDICT_EKU,	   /* refused by the RFC 5924 EKU policy */
	TLS_VERDICT_BAD_NAME,	   /* a name entry with an embedded NUL: certificate refused */
};
#define TLS_VERDICT_COUNT 10

/* Where the identities of a set came from (RFC 5922 §7.1 steps). */
enum tls_identity_source {
	TLS_IDENTITY_SRC_NONE = 0,
	TLS_IDENTITY_SRC_URI, /* subjectAltName URIs `sip:host` */
	TLS_IDENTITY_SRC_DNS, /* subjectAltName dNSNames (no sip: URI present) */
	TLS_IDENTITY_SRC_CN,  /* Subject CN (no subjectAltName at all; legacy) */
};

/* RFC 5924 EKU policy for certificates whose EKU lacks id-kp-sipDomain. */
enum tls_eku_mode {
	TLS_EKU_LENIENT = 0, /* accept serverAuth/clientAuth (by role) or anyExtendedKeyUsage */
	TLS_EKU_STRICT,	     /* refuse them */
};

/* The role the certificate's holder plays in the TLS connection: a proxy
 * checking the server it connected to checks a TLS_ROLE_SERVER certificate;
 * a server checking a client certificate (mutual TLS) a TLS_ROLE_CLIENT one. */
enum tls_role {
	TLS_ROLE_SERVER = 0,
	TLS_ROLE_CLIENT,
};

struct tls_identity_policy {
	bool legacy_cn;	       /* use the Subject CN when there is no subjectAltName */
	enum tls_eku_mode eku; /* RFC 5924 policy */
};

/* The defaults of spec.md §2 rules 2 and 4: legacy CN on, EKU lenient. */
#define TLS_IDENTITY_POLICY_DEFAULT ((struct tls_identity_policy){true, TLS_EKU_LENIENT})

/* The SIP domain identity set of one certificate: lower-cased names, no
 * duplicates. Read names with tls_identity_set_name(). */
struct tls_identity_set {
	uint16_t count;			      /* names held */
	uint16_t used;			      /* bytes of buf in use */
	uint16_t off[TLS_IDENTITY_MAX_NAMES]; /* name i starts at buf + off[i] */
	uint8_t len[TLS_IDENTITY_MAX_NAMES];  /* ...and has len[i] bytes (no NUL) */
	uint8_t source;			      /* enum tls_identity_source */
	bool bad_name;	  /* an entry had an embedded NUL: the set is empty, refuse */
	bool truncated;	  /* names were dropped at the bounds above */
	uint16_t ignored; /* candidate entries skipped as malformed (not identities) */
	char bad_desc[96]; /* with bad_name: the offending entry, escaped */
	/* Last: a compact copy (tls_identity_set_dup) holds only the first
	 * `used` bytes (and a NUL) of it. */
	char buf[TLS_IDENTITY_BUF_SIZE];
};

/* Empty a set. */
void tls_identity_set_init(struct tls_identity_set *set);

/* The empty set (static, never written). */
extern const struct tls_identity_set tls_identity_set_empty;

/* A compact heap copy of `set`: only the part of the name buffer in use is
 * allocated (a few hundred bytes instead of the full size), for sets that
 * live as long as a connection. Read it through the functions of this file
 * (or copy it with tls_identity_set_copy); never assign or memcpy it as a
 * whole struct, and never write to it. Returns NULL when out of memory;
 * the caller frees it with free(). */
struct tls_identity_set *tls_identity_set_dup(const struct tls_identity_set *set);

/* Copy `src` (full-size or compact) into the full-size set `dst`. */
void tls_identity_set_copy(struct tls_identity_set *dst, const struct tls_identity_set *src);

/* Name `i` (0 <= i < set->count) as a slice into the set; STR_NULL when out
 * of range. */
struct str tls_identity_set_name(const struct tls_identity_set *set, size_t i);

/* Render `{a,b}` into buf (size `size`, always NUL-terminated, truncated
 * with "..." when short). Returns the length written. */
size_t tls_identity_set_format(const struct tls_identity_set *set, char *buf, size_t size);

/* The name of a source: "uri", "dns", "cn" or "none". */
const char *tls_identity_source_name(enum tls_identity_source src);

/* RFC 5922 §7.1: extract the SIP domain identity set of `cert` into `out`
 * (overwritten). `pol` may be NULL for the defaults.
 * - every subjectAltName URI with scheme sip and no user part gives its host
 *   (port and parameters stripped, lower-cased);
 * - only when there is no such URI, every dNSName is an identity;
 * - only when there is no subjectAltName extension, the Subject CN (when
 *   pol->legacy_cn and it looks like a host name).
 * sips: URIs, URIs with a user part, other schemes, e-mail and IP entries are
 * not identities. Returns 0 (the set may be empty); -EBADMSG when an entry
 * (dNSName, URI or e-mail, or the CN when used) has an ASN.1 length different
 * from its C string length, or the extension cannot be decoded — then
 * out->bad_name is set and the set is empty; -EINVAL when cert is NULL. */
int tls_identity_extract(X509 *cert, const struct tls_identity_policy *pol,
			 struct tls_identity_set *out);

/* RFC 5922 §7.2: is `domain` one of the set's names? Whole name, ASCII
 * case-insensitive; no wildcards, no suffix match. */
bool tls_identity_match(const struct tls_identity_set *set, struct str domain);

/* The verdict for a wanted domain given an extracted set: BAD_NAME when the
 * set was refused, NO_IDENTITY when it is empty, NAME_MISMATCH or OK. */
enum tls_verdict tls_identity_verdict(const struct tls_identity_set *set, struct str domain);

/* RFC 5924 EKU policy for `cert` presented by a holder in `role`: no EKU
 * extension -> OK; id-kp-sipDomain -> OK; otherwise OK only when `mode` is
 * lenient and the EKU has serverAuth (role server) / clientAuth (role client)
 * or anyExtendedKeyUsage; else TLS_VERDICT_EKU (also for an undecodable EKU). */
enum tls_verdict tls_eku_check(X509 *cert, enum tls_role role, enum tls_eku_mode mode);

/* Everything but the chain for one certificate: extract the identity set
 * into `ids` (always filled, for logging), then bad name, then EKU, then —
 * when `domain` is not empty — the RFC 5922 §7.2 match. With an empty domain
 * an empty set is acceptable (nothing was wanted). */
enum tls_verdict tls_identity_authenticate(X509 *cert, const struct tls_identity_policy *pol,
					   enum tls_role role, struct str domain,
					   struct tls_identity_set *ids);

/* Build a trust store for chain verification (RFC 5280): `ca_file` a PEM
 * bundle of trust anchors, `ca_dir` an OpenSSL hashed directory (`openssl
 * rehash`), `crl_file` a PEM file of CRLs — when given, revocation of the
 * leaf is checked (X509_V_FLAG_CRL_CHECK) and a missing CRL for its issuer
 * is a failure. When both ca_file and ca_dir are NULL, the system default
 * locations are used. The store's purpose is X509_PURPOSE_ANY: the EKU is
 * decided by tls_eku_check(), so that sipDomain-only certificates pass for
 * mutual TLS (RFC 5924). Returns 0 and a store the caller frees with
 * X509_STORE_free(); -ENOENT (a file cannot be opened), -EBADMSG (a file
 * holds no certificate / CRL), -ENOMEM. */
int tls_store_create(const char *ca_file, const char *ca_dir, const char *crl_file,
		     X509_STORE **out);

/* Verify `cert` with the intermediates in `untrusted` (may be NULL) against
 * `store` at the current time. Returns the verdict (OK or a chain verdict);
 * `x509_err` and `depth` (either may be NULL) receive OpenSSL's error code
 * and the depth it refers to. Internal failures give UNTRUSTED (fail closed). */
enum tls_verdict tls_chain_verify(X509_STORE *store, X509 *cert, STACK_OF(X509) * untrusted,
				  int *x509_err, int *depth);

/* Map an OpenSSL X509_V_ERR_* code to a chain verdict. */
enum tls_verdict tls_verdict_from_x509(int x509_err);

/* The verdict's word: "ok", "untrusted", "expired", "not-yet-valid",
 * "revoked", "self-signed", "no-identity", "name-mismatch", "eku",
 * "bad-name". */
const char *tls_verdict_name(enum tls_verdict v);

/* Render a one-line reason into buf (always NUL-terminated, truncated):
 * the verdict word, then for chain verdicts OpenSSL's text of x509_err, for
 * name verdicts `wanted D, found {..}` (ids and wanted may be NULL/empty),
 * for bad-name the offending entry. Returns the length written. */
size_t tls_verdict_format(char *buf, size_t size, enum tls_verdict v, int x509_err,
			  struct str wanted, const struct tls_identity_set *ids);

#endif
