/* digest.h: SIP Digest authentication for the registrar and proxy
 * (RFC 3261 §22, RFC 2617 qop=auth, RFC 7616 and RFC 8760 SHA-256).
 *
 * Digest authenticates a request, never a connection: nothing here marks
 * a transport connection or flow as authenticated (RFC 5922 §8.1,
 * spec.md rule 12). */
#ifndef SIPSD_REGISTRAR_DIGEST_H
#define SIPSD_REGISTRAR_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/limits.h"
#include "base/str.h"
#include "registrar/credentials.h"
#include "sip/msg.h"

/* Limits of one credentials header value (Authorization,
 * Proxy-Authorization). Values over them are refused with -EMSGSIZE. */
#define DIGEST_MAX_VALUE 1024 /* one auth-param value except uri */
#define DIGEST_MAX_URI SIPS_MAX_URI
#define DIGEST_MAX_PARAMS 32	  /* auth-params in one header value, unknown ones included */
#define DIGEST_UNQUOTE_BUF 2048	  /* bytes for values that had quoted-pairs or folds */
#define DIGEST_MAX_REALM 256	  /* realm we challenge with */
#define DIGEST_NONCE_LIFETIME 300 /* seconds, default */
#define DIGEST_CLOCK_SKEW 60	  /* seconds a nonce may come from the future */
/* Nonce-count table: DIGEST_NC_BUCKETS sets of DIGEST_NC_WAYS nonces. */
#define DIGEST_NC_BUCKETS 256
#define DIGEST_NC_WAYS 4

/* Our nonce: base64url (no padding) of 8 + 16 + 32 bytes. */
#define DIGEST_NONCE_LEN 75
/* Longest response hex (SHA-256). */
#define DIGEST_HEX_MAX 64

enum digest_algorithm {
	DIGEST_ALG_MD5 = 0,	/* RFC 2617 §3.2.2.2; the default when absent */
	DIGEST_ALG_MD5_SESS,	/* RFC 2617 §3.2.2.2 */
	DIGEST_ALG_SHA256,	/* RFC 7616 §3.2, RFC 8760 §2 */
	DIGEST_ALG_SHA256_SESS, /* RFC 7616 §3.4.2 */
	DIGEST_ALG_UNKNOWN,	/* parsed, not supported; text kept */
};

#define DIGEST_ALG_BIT(a) (1u << (a))
/* What a context accepts when the configuration says nothing. */
#define DIGEST_ALGS_DEFAULT (DIGEST_ALG_BIT(DIGEST_ALG_MD5) | DIGEST_ALG_BIT(DIGEST_ALG_SHA256))

enum digest_qop {
	DIGEST_QOP_NONE = 0, /* RFC 2069 compatibility: no qop, nc, cnonce */
	DIGEST_QOP_AUTH,
	DIGEST_QOP_AUTH_INT, /* parsed, not supported */
	DIGEST_QOP_OTHER,
};

/* Bits of digest_credentials.seen. */
enum digest_param {
	DIGEST_P_USERNAME = 1u << 0,
	DIGEST_P_REALM = 1u << 1,
	DIGEST_P_NONCE = 1u << 2,
	DIGEST_P_URI = 1u << 3,
	DIGEST_P_RESPONSE = 1u << 4,
	DIGEST_P_ALGORITHM = 1u << 5,
	DIGEST_P_CNONCE = 1u << 6,
	DIGEST_P_OPAQUE = 1u << 7,
	DIGEST_P_QOP = 1u << 8,
	DIGEST_P_NC = 1u << 9,
	DIGEST_P_USERHASH = 1u << 10,
};

/* One parsed Digest credentials value (RFC 3261 §25.1 digest-response).
 * Values are unquoted. A value without quoted-pairs or folds points into
 * the parsed input (which must outlive this struct); one with them is
 * decoded into `buf`, so this struct must not be copied by value (the
 * slices would keep pointing into the original's buf). */
struct digest_credentials {
	struct str username;
	struct str realm;
	struct str nonce;
	struct str uri;
	struct str response; /* hex as sent, 32 (MD5) or 64 (SHA-256) digits */
	struct str cnonce;
	struct str opaque;
	struct str algorithm_text; /* as sent; empty when absent */
	struct str qop_text;	   /* as sent; hashed as is */
	struct str nc_text;	   /* 8 hex digits as sent; hashed as is */
	enum digest_algorithm algorithm;
	enum digest_qop qop;
	uint32_t nc;
	bool userhash; /* RFC 7616 §3.4.4; not supported by verify */
	unsigned seen; /* enum digest_param bits */
	/* why parsing failed (static text) and where, relative to the input */
	const char *error;
	size_t error_offset;
	size_t buf_used;
	char buf[DIGEST_UNQUOTE_BUF];
};

/* Parses one Authorization or Proxy-Authorization header value (RFC 3261
 * §20.7, §20.28, §25.1): scheme "Digest" (any case), LWS, then
 * comma-separated auth-params with token or quoted-string values; LWS and
 * folds tolerated; unknown parameters ignored; a known parameter twice is
 * refused. Required: username, realm, nonce, uri, response; with qop also
 * cnonce and nc. `out` needs no initialisation.
 * Returns 0; -ENOTSUP when the scheme is not Digest (the caller ignores
 * the header, e.g. RFC 4475 §3.3.14 regaut01); -EBADMSG on syntax or
 * missing fields; -EMSGSIZE over a limit. On error out->error and
 * out->error_offset say why and where. */
int digest_credentials_parse(struct str header_value, struct digest_credentials *out);

/* Finds, among the headers `id` (SIP_HDR_AUTHORIZATION or
 * SIP_HDR_PROXY_AUTHORIZATION) of `m`, the Digest credentials whose realm
 * equals `realm` (ASCII case-insensitively, RFC 3261 §22.4: one header per
 * realm) and parses them into `out`. Other schemes and other realms are
 * skipped. Returns 0 when found; -ENOENT when there is none; -EBADMSG /
 * -EMSGSIZE when there is none but a Digest header failed to parse (answer
 * 400). */
int digest_credentials_find(const struct sip_msg *m, enum sip_hdr_id id, struct str realm,
			    struct digest_credentials *out);

/* Configuration of a context; zero means the default. */
struct digest_config {
	/* HMAC key of the nonces, 16 to 64 bytes; NULL for a random one. Give
	 * the same key to every node of a domain that shares the location
	 * store, so a nonce from one verifies at the others. Copied. */
	const uint8_t *secret;
	size_t secret_len;
	uint32_t nonce_lifetime; /* seconds; 0: DIGEST_NONCE_LIFETIME */
	unsigned algorithms;	 /* DIGEST_ALG_BIT set; 0: DIGEST_ALGS_DEFAULT */
	bool with_opaque;	 /* send opaque (derived from the secret) and require it back */
	bool allow_no_qop;	 /* accept RFC 2069 responses without qop (no nc protection) */
	bool no_nc_check;	 /* disable the nonce-count replay table */
	/* Wall clock in seconds (tests inject one); NULL: CLOCK_REALTIME. */
	uint64_t (*now_cb)(void *arg);
	void *now_arg;
};

/* Nonce secret, nonce-count table and policy (opaque). Thread-safe: the
 * table has its own lock, everything else is read-only after create. Use
 * one context per process so that every worker sees every nonce count. */
struct digest_ctx;

/* Creates a context from `cfg` (NULL for all defaults). MD5 is dropped from
 * the algorithms when the OpenSSL provider lacks it (FIPS). Returns 0 and
 * *out, -EINVAL (bad secret length, no algorithm left), -ENOMEM or -EIO
 * (no random bytes). */
int digest_ctx_create(const struct digest_config *cfg, struct digest_ctx **out);

/* Destroys the context and wipes its secret. NULL is allowed. */
void digest_ctx_destroy(struct digest_ctx *ctx);

/* The algorithms the context accepts (DIGEST_ALG_BIT set). */
unsigned digest_ctx_algorithms(const struct digest_ctx *ctx);

/* Writes a fresh nonce for `realm` into `out` (capacity `cap`, at least
 * DIGEST_NONCE_LEN + 1), NUL-terminated: base64url(ts || random ||
 * HMAC-SHA256(secret, ts || random || lower(realm))) (docs/digest.md).
 * Returns its length, -EMSGSIZE, -EINVAL (realm too long) or -EIO. */
int digest_nonce_create(struct digest_ctx *ctx, struct str realm, char *out, size_t cap);

/* Checks a nonce against `realm` and the clock. Returns 0 when ours and
 * fresh; -ESTALE when ours but older than the lifetime (or from too far in
 * the future); -EBADMSG when not ours (malformed, tampered, other realm or
 * other secret). */
int digest_nonce_check(struct digest_ctx *ctx, struct str nonce, struct str realm);

/* Writes one challenge value for WWW-Authenticate / Proxy-Authenticate
 * (RFC 3261 §22.1, §25.1; RFC 7616 §3.3): realm, a new nonce, opaque when
 * configured, algorithm, qop="auth", and stale=true when `stale`. Not
 * NUL-terminated unless room remains. Returns the length written, -EMSGSIZE
 * when `cap` is too small, -ENOTSUP for an algorithm the context does not
 * accept, -EINVAL for a realm that is empty, too long or holds control
 * characters. */
int digest_challenge_build(struct digest_ctx *ctx, struct str realm, enum digest_algorithm alg,
			   bool stale, char *out, size_t cap);

/* Writes whole header lines "WWW-Authenticate: <challenge>\r\n" (or
 * "Proxy-Authenticate" when `proxy`), one per accepted algorithm in the
 * order of preference SHA-256, SHA-256-sess, MD5, MD5-sess (RFC 8760 §2.4:
 * one challenge per algorithm, the preferred first), ready for the
 * extra_headers of sip_response_build. Returns the length or as
 * digest_challenge_build. */
int digest_challenge_headers_build(struct digest_ctx *ctx, bool proxy, struct str realm, bool stale,
				   char *out, size_t cap);

/* Outcome of digest_verify. Only DIGEST_VERIFY_OK authenticates the
 * request (and only the request). */
enum digest_verdict {
	DIGEST_VERIFY_OK = 0,
	DIGEST_VERIFY_BAD_RESPONSE,   /* wrong password/HA1: 401 afresh or 403 */
	DIGEST_VERIFY_STALE,	      /* right response, nonce too old: 401 stale=true */
	DIGEST_VERIFY_BAD_NONCE,      /* not our nonce (or opaque): 401 afresh */
	DIGEST_VERIFY_UNKNOWN_USER,   /* no entry: answer as BAD_RESPONSE (no user oracle) */
	DIGEST_VERIFY_REALM_MISMATCH, /* credentials for another realm: not ours to judge */
	DIGEST_VERIFY_URI_MISMATCH,   /* uri != Request-URI: 400 (RFC 2617 §3.2.2.5) */
	DIGEST_VERIFY_REPLAY,	      /* nonce count not increasing: 401 stale=true */
	DIGEST_VERIFY_UNSUPPORTED,    /* algorithm/qop not accepted, or no HA1 for it: 401 afresh */
};

/* Verifies credentials `cr` (from digest_credentials_parse) of a request
 * with method `method` (the Request-Line method, RFC 3261 §22.4) and
 * Request-URI text `request_uri` (msg->ruri_raw; the uri parameter must
 * equal it byte for byte), for our `realm`, against `entry` (from
 * credentials_lookup(cr->username, cr->realm); NULL when unknown). HA1 is
 * computed from the entry's password, or taken from its stored HA1 for the
 * algorithm. Responses are compared in constant time (CRYPTO_memcmp). A
 * verdict of OK records the nonce count (replay table). */
enum digest_verdict digest_verify(struct digest_ctx *ctx, const struct digest_credentials *cr,
				  struct str method, struct str request_uri, struct str realm,
				  const struct credential_entry *entry);

/* Short name of a verdict for logs ("ok", "bad-response", ...). */
const char *digest_verdict_name(enum digest_verdict v);

/* Name of an algorithm as written in the protocol ("MD5", "SHA-256"). */
const char *digest_algorithm_name(enum digest_algorithm alg);

/* Everything the response hash takes (RFC 2617 §3.2.2.1, RFC 7616 §3.4.1);
 * both sides use it: the server through digest_verify, a UA (and the
 * tests) directly. */
struct digest_response_input {
	enum digest_algorithm algorithm;
	struct str username;
	struct str realm;
	struct str password;
	const uint8_t *ha1; /* when set, used instead of username:realm:password
			     * (16 bytes for MD5*, 32 for SHA-256*) */
	struct str nonce;
	struct str cnonce;
	struct str nc;	/* "00000001"; empty with qop none */
	struct str qop; /* "auth" or empty (RFC 2069) */
	struct str method;
	struct str uri;
};

/* Computes the request-digest as lowercase hex into `hex` (capacity `cap`,
 * NUL-terminated). Returns the hex length (32 or 64), -EMSGSIZE, -ENOTSUP
 * (unknown algorithm, qop other than auth) or -EIO (OpenSSL). */
int digest_response_compute(const struct digest_response_input *in, char *hex, size_t cap);

#endif
