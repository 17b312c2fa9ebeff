/* digest.c: SIP Digest credentials parsing, stateless nonces, challenges and
 * verification (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760). */
#include "registrar/digest.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

/* ---- names ---- */

const char *digest_verdict_name(enum digest_verdict v)
{
	switch (v) {
	case DIGEST_VERIFY_OK:
		return "ok";
	case DIGEST_VERIFY_BAD_RESPONSE:
		return "bad-response";
	case DIGEST_VERIFY_STALE:
		return "stale";
	case DIGEST_VERIFY_BAD_NONCE:
		return "bad-nonce";
	case DIGEST_VERIFY_UNKNOWN_USER:
		return "unknown-user";
	case DIGEST_VERIFY_REALM_MISMATCH:
		return "realm-mismatch";
	case DIGEST_VERIFY_URI_MISMATCH:
		return "uri-mismatch";
	case DIGEST_VERIFY_REPLAY:
		return "replay";
	case DIGEST_VERIFY_UNSUPPORTED:
		return "unsupported";
	}
	return "?";
}

const char *digest_algorithm_name(enum digest_algorithm alg)
{
	switch (alg) {
	case DIGEST_ALG_MD5:
		return "MD5";
	case DIGEST_ALG_MD5_SESS:
		return "MD5-sess";
	case DIGEST_ALG_SHA256:
		return "SHA-256";
	case DIGEST_ALG_SHA256_SESS:
		return "SHA-256-sess";
	case DIGEST_ALG_UNKNOWN:
		break;
	}
	return "?";
}

/* Algorithm tokens are case-insensitive (RFC 7616 §3.3). */
static enum digest_algorithm algorithm_from_str(struct str s)
{
	for (int a = DIGEST_ALG_MD5; a < DIGEST_ALG_UNKNOWN; a++)
		if (str_case_eq_cstr(s, digest_algorithm_name((enum digest_algorithm)a)))
			return (enum digest_algorithm)a;
	return DIGEST_ALG_UNKNOWN;
}

static bool alg_is_sha256(enum digest_algorithm alg)
{
	return alg == DIGEST_ALG_SHA256 || alg == DIGEST_ALG_SHA256_SESS;
}

static bool alg_is_sess(enum digest_algorithm alg)
{
	return alg == DIGEST_ALG_MD5_SESS || alg == DIGEST_ALG_SHA256_SESS;
}

static size_t alg_hash_len(enum digest_algorithm alg)
{
	return alg_is_sha256(alg) ? 32 : 16;
}

/* ---- parsing (RFC 3261 §25.1, RFC 7616 §3.4) ---- */

struct cursor {
	const char *base;
	const char *p;
	const char *end;
};

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* token (RFC 3261 §25.1), from the SIP layer's character table. */
static bool is_token_char(char c)
{
	return sip_is_token_char((unsigned char)c);
}

/* Length of a fold (CRLF or bare LF, then at least one WSP) at p, or 0. */
static size_t fold_len(const char *p, const char *end)
{
	if (p < end && *p == '\r' && p + 2 < end && p[1] == '\n' && is_wsp(p[2]))
		return 2;
	if (p < end && *p == '\n' && p + 1 < end && is_wsp(p[1]))
		return 1;
	return 0;
}

/* Skips LWS (SP, HTAB, folds). Returns true when something was skipped. */
static bool skip_lws(struct cursor *c)
{
	const char *start = c->p;
	for (;;) {
		if (c->p < c->end && is_wsp(*c->p)) {
			c->p++;
			continue;
		}
		size_t f = fold_len(c->p, c->end);
		if (f == 0)
			break;
		c->p += f;
	}
	return c->p != start;
}

static struct str take_token(struct cursor *c)
{
	const char *start = c->p;
	while (c->p < c->end && is_token_char(*c->p))
		c->p++;
	return str_make(start, (size_t)(c->p - start));
}

static int parse_fail(struct digest_credentials *out, const struct cursor *c, int rc,
		      const char *why)
{
	out->error = why;
	out->error_offset = (size_t)(c->p - c->base);
	return rc;
}

/* A quoted-string body (RFC 3261 §25.1): qdtext = LWS / %x21 / %x23-5B /
 * %x5D-7E / UTF8-NONASCII; quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F).
 * On entry c->p is at the opening quote; on success after the closing one,
 * *raw is the text between the quotes and *needs_decode says whether it
 * holds quoted-pairs or folds. */
static int scan_quoted(struct cursor *c, struct str *raw, bool *needs_decode)
{
	c->p++; /* DQUOTE */
	const char *start = c->p;
	*needs_decode = false;
	while (c->p < c->end) {
		unsigned char ch = (unsigned char)*c->p;
		if (ch == '"') {
			*raw = str_make(start, (size_t)(c->p - start));
			c->p++;
			return 0;
		}
		if (ch == '\\') {
			if (c->p + 1 >= c->end || c->p[1] == '\r' || c->p[1] == '\n' ||
			    (unsigned char)c->p[1] > 0x7f)
				return -EBADMSG;
			*needs_decode = true;
			c->p += 2;
			continue;
		}
		if (ch == '\r' || ch == '\n') {
			size_t f = fold_len(c->p, c->end);
			if (f == 0)
				return -EBADMSG;
			*needs_decode = true;
			c->p += f;
			continue;
		}
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return -EBADMSG;
		c->p++;
	}
	return -EBADMSG;
}

/* Decodes a quoted-string body into out->buf: quoted-pairs lose their
 * backslash, a fold (CRLF 1*WSP) becomes one SP (as RFC 7230 §3.2.4 does
 * for obs-fold). Returns 0 and the slice, or -EMSGSIZE. */
static int unquote_into(struct digest_credentials *out, struct str raw, struct str *val)
{
	char *dst = out->buf + out->buf_used;
	size_t room = sizeof(out->buf) - out->buf_used, n = 0;
	for (size_t i = 0; i < raw.len;) {
		char ch = raw.s[i];
		if (ch == '\\') {
			ch = raw.s[i + 1]; /* scan_quoted proved it exists */
			i += 2;
		} else if (ch == '\r' || ch == '\n') {
			i += fold_len(raw.s + i, raw.s + raw.len);
			while (i < raw.len && is_wsp(raw.s[i]))
				i++;
			ch = ' ';
		} else {
			i++;
		}
		if (n == room)
			return -EMSGSIZE;
		dst[n++] = ch;
	}
	*val = str_make(dst, n);
	out->buf_used += n;
	return 0;
}

struct param_slot {
	const char *name;
	unsigned bit;
	size_t offset; /* of the struct str in digest_credentials */
};

static const struct param_slot known_params[] = {
    {"username", DIGEST_P_USERNAME, offsetof(struct digest_credentials, username)},
    {"realm", DIGEST_P_REALM, offsetof(struct digest_credentials, realm)},
    {"nonce", DIGEST_P_NONCE, offsetof(struct digest_credentials, nonce)},
    {"uri", DIGEST_P_URI, offsetof(struct digest_credentials, uri)},
    {"response", DIGEST_P_RESPONSE, offsetof(struct digest_credentials, response)},
    {"algorithm", DIGEST_P_ALGORITHM, offsetof(struct digest_credentials, algorithm_text)},
    {"cnonce", DIGEST_P_CNONCE, offsetof(struct digest_credentials, cnonce)},
    {"opaque", DIGEST_P_OPAQUE, offsetof(struct digest_credentials, opaque)},
    {"qop", DIGEST_P_QOP, offsetof(struct digest_credentials, qop_text)},
    {"nc", DIGEST_P_NC, offsetof(struct digest_credentials, nc_text)},
    {"userhash", DIGEST_P_USERHASH, 0},
};

static bool all_hex(struct str s)
{
	for (size_t i = 0; i < s.len; i++)
		if (!ascii_is_hex(s.s[i]))
			return false;
	return true;
}

/* Interprets the values whose meaning goes beyond their text. */
static int check_values(struct digest_credentials *out, struct cursor *c)
{
	if (out->seen & DIGEST_P_ALGORITHM)
		out->algorithm = algorithm_from_str(out->algorithm_text);
	else
		out->algorithm = DIGEST_ALG_MD5; /* RFC 2617 §3.2.1: absent means MD5 */

	if (out->seen & DIGEST_P_QOP) {
		if (str_case_eq_cstr(out->qop_text, "auth"))
			out->qop = DIGEST_QOP_AUTH;
		else if (str_case_eq_cstr(out->qop_text, "auth-int"))
			out->qop = DIGEST_QOP_AUTH_INT;
		else
			out->qop = DIGEST_QOP_OTHER;
	}

	/* nc-value = 8LHEX, counting from 00000001 (RFC 2617 §3.2.2). */
	if (out->seen & DIGEST_P_NC) {
		if (out->nc_text.len != 8 || !all_hex(out->nc_text))
			return parse_fail(out, c, -EBADMSG, "nc is not 8 hex digits");
		uint32_t v = 0;
		for (size_t i = 0; i < 8; i++)
			v = (v << 4) | (uint32_t)ascii_hex_value(out->nc_text.s[i]);
		if (v == 0)
			return parse_fail(out, c, -EBADMSG, "nc is zero");
		out->nc = v;
	}

	/* request-digest = 32LHEX for MD5 (RFC 3261 §25.1), 64 for SHA-256
	 * (RFC 7616 §3.4.1); an unknown algorithm is left to verify. */
	if (!all_hex(out->response))
		return parse_fail(out, c, -EBADMSG, "response is not hex");
	if (out->algorithm != DIGEST_ALG_UNKNOWN &&
	    out->response.len != 2 * alg_hash_len(out->algorithm))
		return parse_fail(out, c, -EBADMSG, "response length does not fit the algorithm");
	return 0;
}

int digest_credentials_parse(struct str header_value, struct digest_credentials *out)
{
	memset(out, 0, offsetof(struct digest_credentials, buf));
	struct cursor c = {header_value.s, header_value.s, header_value.s + header_value.len};

	if (header_value.len > SIPS_MAX_LINE)
		return parse_fail(out, &c, -EMSGSIZE, "header value too long");
	skip_lws(&c);
	struct str scheme = take_token(&c);
	if (scheme.len == 0)
		return parse_fail(out, &c, -EBADMSG, "no auth scheme");
	/* credentials = ("Digest" LWS digest-response) / other-response
	 * (RFC 3261 §25.1): other schemes are not ours to judge. */
	if (!str_case_eq_cstr(scheme, "Digest"))
		return parse_fail(out, &c, -ENOTSUP, "not the Digest scheme");
	if (!skip_lws(&c) || c.p == c.end)
		return parse_fail(out, &c, -EBADMSG, "Digest without parameters");

	unsigned count = 0;
	for (;;) {
		struct str name = take_token(&c);
		if (name.len == 0)
			return parse_fail(out, &c, -EBADMSG, "parameter name expected");
		if (++count > DIGEST_MAX_PARAMS)
			return parse_fail(out, &c, -EMSGSIZE, "too many parameters");
		skip_lws(&c);
		if (c.p == c.end || *c.p != '=')
			return parse_fail(out, &c, -EBADMSG, "'=' expected");
		c.p++;
		skip_lws(&c);

		const char *value_at = c.p;
		struct str raw = STR_NULL;
		bool needs_decode = false;
		if (c.p < c.end && *c.p == '"') {
			if (scan_quoted(&c, &raw, &needs_decode) < 0)
				return parse_fail(out, &c, -EBADMSG, "bad quoted string");
		} else {
			raw = take_token(&c);
			if (raw.len == 0)
				return parse_fail(out, &c, -EBADMSG, "parameter value expected");
		}

		const struct param_slot *slot = NULL;
		for (size_t i = 0; i < sizeof(known_params) / sizeof(known_params[0]); i++)
			if (str_case_eq_cstr(name, known_params[i].name))
				slot = &known_params[i];
		if (slot) {
			size_t limit =
			    slot->bit == DIGEST_P_URI ? DIGEST_MAX_URI : DIGEST_MAX_VALUE;
			if (raw.len > limit) {
				c.p = value_at;
				return parse_fail(out, &c, -EMSGSIZE, "parameter value too long");
			}
			if (out->seen & slot->bit) {
				c.p = value_at;
				return parse_fail(out, &c, -EBADMSG, "parameter repeated");
			}
			out->seen |= slot->bit;
			struct str val = raw;
			if (needs_decode && unquote_into(out, raw, &val) < 0) {
				c.p = value_at;
				return parse_fail(out, &c, -EMSGSIZE, "quoted values too long");
			}
			if (slot->bit == DIGEST_P_USERHASH)
				out->userhash = str_case_eq_cstr(val, "true");
			else
				*(struct str *)((char *)out + slot->offset) = val;
		}
		/* Unknown auth-params are ignored (RFC 3261 §25.1 auth-param). */

		skip_lws(&c);
		if (c.p == c.end)
			break;
		if (*c.p != ',')
			return parse_fail(out, &c, -EBADMSG, "',' expected");
		c.p++;
		skip_lws(&c);
	}

	static const struct {
		unsigned bit;
		const char *why;
	} required[] = {
	    {DIGEST_P_USERNAME, "username missing"}, {DIGEST_P_REALM, "realm missing"},
	    {DIGEST_P_NONCE, "nonce missing"},	     {DIGEST_P_URI, "uri missing"},
	    {DIGEST_P_RESPONSE, "response missing"},
	};
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!(out->seen & required[i].bit))
			return parse_fail(out, &c, -EBADMSG, required[i].why);
	/* With qop, cnonce and nc are mandatory; without it they must not be
	 * sent (RFC 2617 §3.2.2). */
	if (out->seen & DIGEST_P_QOP) {
		if (!(out->seen & DIGEST_P_CNONCE))
			return parse_fail(out, &c, -EBADMSG, "qop without cnonce");
		if (!(out->seen & DIGEST_P_NC))
			return parse_fail(out, &c, -EBADMSG, "qop without nc");
	} else if (out->seen & (DIGEST_P_CNONCE | DIGEST_P_NC)) {
		return parse_fail(out, &c, -EBADMSG, "cnonce or nc without qop");
	}
	return check_values(out, &c);
}

int digest_credentials_find(const struct sip_msg *m, enum sip_hdr_id id, struct str realm,
			    struct digest_credentials *out)
{
	int first_err = 0;
	for (const struct sip_hdr *h = sip_msg_hdr(m, id); h; h = h->next_same) {
		int rc = digest_credentials_parse(h->value, out);
		if (rc == -ENOTSUP)
			continue;
		if (rc < 0) {
			if (first_err == 0)
				first_err = rc;
			continue;
		}
		if (str_case_eq(out->realm, realm))
			return 0;
	}
	return first_err ? first_err : -ENOENT;
}

/* ---- hashing ---- */

static const EVP_MD *alg_md(enum digest_algorithm alg)
{
	return alg_is_sha256(alg) ? EVP_sha256() : EVP_md5();
}

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
}

/* H(parts joined by ':'), RFC 7616 §3.4.1 H() and KD(). */
static int hash_join(EVP_MD_CTX *md, const EVP_MD *type, const struct str *parts, size_t n,
		     uint8_t *out)
{
	unsigned int len = 0;
	if (EVP_DigestInit_ex(md, type, NULL) != 1)
		return -EIO;
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && EVP_DigestUpdate(md, ":", 1) != 1)
			return -EIO;
		if (parts[i].len && EVP_DigestUpdate(md, parts[i].s, parts[i].len) != 1)
			return -EIO;
	}
	if (EVP_DigestFinal_ex(md, out, &len) != 1)
		return -EIO;
	return (int)len;
}

/* The request-digest as bytes into out (32 bytes of room). Returns its
 * length or a negative errno. */
static int response_bytes(const struct digest_response_input *in, uint8_t *out)
{
	if (in->algorithm >= DIGEST_ALG_UNKNOWN)
		return -ENOTSUP;
	if (in->qop.len && !str_case_eq_cstr(in->qop, "auth"))
		return -ENOTSUP; /* auth-int would hash the body: not offered */
	const EVP_MD *type = alg_md(in->algorithm);
	size_t n = alg_hash_len(in->algorithm);
	uint8_t ha1[32], ha2[32];
	char ha1_hex[64], ha2_hex[64];
	int rc = -ENOMEM;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md)
		return -ENOMEM;

	/* A1 = username ":" realm ":" password (RFC 2617 §3.2.2.2) */
	if (in->ha1) {
		memcpy(ha1, in->ha1, n);
	} else {
		struct str a1[] = {in->username, in->realm, in->password};
		if ((rc = hash_join(md, type, a1, 3, ha1)) < 0)
			goto out;
	}
	hex_encode(ha1, n, ha1_hex);
	/* -sess: A1 = H(user:realm:pass) ":" nonce ":" cnonce */
	if (alg_is_sess(in->algorithm)) {
		struct str s[] = {str_make(ha1_hex, 2 * n), in->nonce, in->cnonce};
		if ((rc = hash_join(md, type, s, 3, ha1)) < 0)
			goto out;
		hex_encode(ha1, n, ha1_hex);
	}
	/* A2 = Method ":" digest-uri-value (qop auth or none) */
	struct str a2[] = {in->method, in->uri};
	if ((rc = hash_join(md, type, a2, 2, ha2)) < 0)
		goto out;
	hex_encode(ha2, n, ha2_hex);
	if (in->qop.len) {
		struct str kd[] = {str_make(ha1_hex, 2 * n), in->nonce, in->nc, in->cnonce, in->qop,
				   str_make(ha2_hex, 2 * n)};
		rc = hash_join(md, type, kd, 6, out);
	} else {
		struct str kd[] = {str_make(ha1_hex, 2 * n), in->nonce, str_make(ha2_hex, 2 * n)};
		rc = hash_join(md, type, kd, 3, out);
	}
out:
	EVP_MD_CTX_free(md);
	OPENSSL_cleanse(ha1, sizeof(ha1));
	OPENSSL_cleanse(ha1_hex, sizeof(ha1_hex));
	return rc;
}

int digest_response_compute(const struct digest_response_input *in, char *hex, size_t cap)
{
	uint8_t r[32];
	int n = response_bytes(in, r);
	if (n < 0)
		return n;
	if (cap < 2 * (size_t)n + 1)
		return -EMSGSIZE;
	hex_encode(r, (size_t)n, hex);
	hex[2 * n] = '\0';
	return 2 * n;
}

/* ---- context ---- */

#define NONCE_TS_LEN 8
#define NONCE_RAND_LEN 16
#define NONCE_MAC_LEN 32
#define NONCE_RAW_LEN (NONCE_TS_LEN + NONCE_RAND_LEN + NONCE_MAC_LEN)
#define NC_KEY_LEN 16
#define SECRET_MAX 64
#define OPAQUE_RAW_LEN 12
#define OPAQUE_LEN 16 /* base64url of 12 bytes */

struct nc_slot {
	uint8_t key[NC_KEY_LEN]; /* the first bytes of the nonce's MAC */
	uint64_t issued;	 /* the nonce's timestamp */
	uint32_t nc;		 /* highest count accepted */
	bool used;
};

struct digest_ctx {
	uint8_t secret[SECRET_MAX];
	size_t secret_len;
	uint32_t lifetime;
	unsigned algorithms;
	bool with_opaque;
	bool allow_no_qop;
	bool nc_check;
	uint64_t (*now_cb)(void *arg);
	void *now_arg;
	char opaque[OPAQUE_LEN + 1];
	pthread_mutex_t nc_lock;
	struct nc_slot nc[DIGEST_NC_BUCKETS][DIGEST_NC_WAYS];
};

static uint64_t clock_realtime_cb(void *arg)
{
	(void)arg;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec > 0 ? (uint64_t)ts.tv_sec : 0;
}

static uint64_t ctx_now(const struct digest_ctx *ctx)
{
	return ctx->now_cb(ctx->now_arg);
}

/* base64url without padding (RFC 4648 §5): the nonce travels inside a
 * quoted-string and is hashed as text, so it avoids '+', '/' and '='. */
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64url_encode(const uint8_t *in, size_t n, char *out)
{
	size_t o = 0, i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64url[v >> 18];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
		out[o++] = b64url[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = b64url[v >> 18];
		out[o++] = b64url[(v >> 12) & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = b64url[v >> 18];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
	}
	return o;
}

static int b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Decodes exactly `n` bytes from the canonical encoding `in` (unused low
 * bits of the last character must be zero). Returns 0 or -EBADMSG. */
static int b64url_decode_exact(struct str in, uint8_t *out, size_t n)
{
	if (in.len != (n * 8 + 5) / 6)
		return -EBADMSG;
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < in.len; i++) {
		int v = b64url_value(in.s[i]);
		if (v < 0)
			return -EBADMSG;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	return (o == n && acc == 0) ? 0 : -EBADMSG;
}

/* HMAC-SHA256(secret, ts || random || lower(realm)). */
static int nonce_mac(const struct digest_ctx *ctx, const uint8_t *ts_rand, struct str realm,
		     uint8_t *mac)
{
	uint8_t msg[NONCE_TS_LEN + NONCE_RAND_LEN + DIGEST_MAX_REALM];
	unsigned int len = 0;
	if (realm.len > DIGEST_MAX_REALM)
		return -EINVAL;
	memcpy(msg, ts_rand, NONCE_TS_LEN + NONCE_RAND_LEN);
	for (size_t i = 0; i < realm.len; i++)
		msg[NONCE_TS_LEN + NONCE_RAND_LEN + i] = (uint8_t)ascii_lower(realm.s[i]);
	if (!HMAC(EVP_sha256(), ctx->secret, (int)ctx->secret_len, msg,
		  NONCE_TS_LEN + NONCE_RAND_LEN + realm.len, mac, &len) ||
	    len != NONCE_MAC_LEN)
		return -EIO;
	return 0;
}

/* True when the provider can compute `type` (MD5 is absent under FIPS). */
static bool md_available(const EVP_MD *type)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok = md && EVP_DigestInit_ex(md, type, NULL) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

int digest_ctx_create(const struct digest_config *cfg, struct digest_ctx **out)
{
	static const struct digest_config defaults;
	if (!cfg)
		cfg = &defaults;
	*out = NULL;
	if (cfg->secret && (cfg->secret_len < 16 || cfg->secret_len > SECRET_MAX))
		return -EINVAL;
	unsigned algs = cfg->algorithms ? cfg->algorithms : DIGEST_ALGS_DEFAULT;
	algs &= DIGEST_ALG_BIT(DIGEST_ALG_UNKNOWN) - 1;
	if (!md_available(EVP_md5()))
		algs &= ~(DIGEST_ALG_BIT(DIGEST_ALG_MD5) | DIGEST_ALG_BIT(DIGEST_ALG_MD5_SESS));
	if (algs == 0)
		return -EINVAL;

	struct digest_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	if (cfg->secret) {
		memcpy(ctx->secret, cfg->secret, cfg->secret_len);
		ctx->secret_len = cfg->secret_len;
	} else {
		ctx->secret_len = 32;
		if (RAND_bytes(ctx->secret, (int)ctx->secret_len) != 1) {
			free(ctx);
			return -EIO;
		}
	}
	ctx->lifetime = cfg->nonce_lifetime ? cfg->nonce_lifetime : DIGEST_NONCE_LIFETIME;
	ctx->algorithms = algs;
	ctx->with_opaque = cfg->with_opaque;
	ctx->allow_no_qop = cfg->allow_no_qop;
	ctx->nc_check = !cfg->no_nc_check;
	ctx->now_cb = cfg->now_cb ? cfg->now_cb : clock_realtime_cb;
	ctx->now_arg = cfg->now_arg;

	/* opaque = base64url(HMAC(secret, "opaque")[0..12]): the same on every
	 * node sharing the secret, so any of them can check it. */
	uint8_t mac[32];
	unsigned int len = 0;
	if (!HMAC(EVP_sha256(), ctx->secret, (int)ctx->secret_len, (const uint8_t *)"opaque", 6,
		  mac, &len)) {
		OPENSSL_cleanse(ctx, sizeof(*ctx));
		free(ctx);
		return -EIO;
	}
	ctx->opaque[b64url_encode(mac, OPAQUE_RAW_LEN, ctx->opaque)] = '\0';
	if (pthread_mutex_init(&ctx->nc_lock, NULL) != 0) {
		OPENSSL_cleanse(ctx, sizeof(*ctx));
		free(ctx);
		return -ENOMEM;
	}
	*out = ctx;
	return 0;
}

void digest_ctx_destroy(struct digest_ctx *ctx)
{
	if (!ctx)
		return;
	pthread_mutex_destroy(&ctx->nc_lock);
	OPENSSL_cleanse(ctx, sizeof(*ctx));
	free(ctx);
}

unsigned digest_ctx_algorithms(const struct digest_ctx *ctx)
{
	return ctx->algorithms;
}

/* ---- nonces ---- */

int digest_nonce_create(struct digest_ctx *ctx, struct str realm, char *out, size_t cap)
{
	uint8_t raw[NONCE_RAW_LEN];
	if (cap < DIGEST_NONCE_LEN + 1)
		return -EMSGSIZE;
	if (realm.len > DIGEST_MAX_REALM)
		return -EINVAL;
	uint64_t now = ctx_now(ctx);
	for (int i = 0; i < NONCE_TS_LEN; i++)
		raw[i] = (uint8_t)(now >> (8 * (NONCE_TS_LEN - 1 - i)));
	if (RAND_bytes(raw + NONCE_TS_LEN, NONCE_RAND_LEN) != 1)
		return -EIO;
	int rc = nonce_mac(ctx, raw, realm, raw + NONCE_TS_LEN + NONCE_RAND_LEN);
	if (rc < 0)
		return rc;
	size_t n = b64url_encode(raw, sizeof(raw), out);
	out[n] = '\0';
	return (int)n;
}

/* Decodes and authenticates a nonce. Returns 0 with its timestamp and MAC
 * prefix (the replay table key), or -EBADMSG. */
static int nonce_open(const struct digest_ctx *ctx, struct str nonce, struct str realm,
		      uint64_t *issued, uint8_t *key)
{
	uint8_t raw[NONCE_RAW_LEN], mac[NONCE_MAC_LEN];
	if (b64url_decode_exact(nonce, raw, sizeof(raw)) < 0)
		return -EBADMSG;
	if (realm.len > DIGEST_MAX_REALM || nonce_mac(ctx, raw, realm, mac) < 0)
		return -EBADMSG;
	if (CRYPTO_memcmp(mac, raw + NONCE_TS_LEN + NONCE_RAND_LEN, NONCE_MAC_LEN) != 0)
		return -EBADMSG;
	uint64_t ts = 0;
	for (int i = 0; i < NONCE_TS_LEN; i++)
		ts = (ts << 8) | raw[i];
	*issued = ts;
	if (key)
		memcpy(key, mac, NC_KEY_LEN);
	return 0;
}

static bool nonce_fresh(const struct digest_ctx *ctx, uint64_t issued, uint64_t now)
{
	if (issued > now)
		return issued - now <= DIGEST_CLOCK_SKEW;
	return now - issued <= ctx->lifetime;
}

int digest_nonce_check(struct digest_ctx *ctx, struct str nonce, struct str realm)
{
	uint64_t issued;
	if (nonce_open(ctx, nonce, realm, &issued, NULL) < 0)
		return -EBADMSG;
	return nonce_fresh(ctx, issued, ctx_now(ctx)) ? 0 : -ESTALE;
}

/* Nonce-count check (RFC 2617 §3.2.2: the server may detect replays by
 * nc). A nonce enters the table on its first successful use; later uses
 * must carry a higher count. A nonce the table does not hold (never seen,
 * or evicted) is accepted only with nc=1: a client counting further is
 * sent a stale challenge and retries with a new nonce, at no cost to it.
 * Returns true when the count is acceptable (and records it). */
static bool nc_accept(struct digest_ctx *ctx, const uint8_t *key, uint64_t issued, uint32_t nc,
		      uint64_t now)
{
	uint32_t b = ((uint32_t)key[0] << 8 | key[1]) % DIGEST_NC_BUCKETS;
	bool ok;
	pthread_mutex_lock(&ctx->nc_lock);
	struct nc_slot *set = ctx->nc[b], *victim = NULL;
	struct nc_slot *hit = NULL;
	for (int w = 0; w < DIGEST_NC_WAYS; w++)
		if (set[w].used && memcmp(set[w].key, key, NC_KEY_LEN) == 0)
			hit = &set[w];
	if (hit) {
		ok = nc > hit->nc;
		if (ok)
			hit->nc = nc;
	} else {
		ok = nc == 1;
		if (ok) {
			/* a free way, else an expired nonce, else the oldest */
			for (int w = 0; w < DIGEST_NC_WAYS && !victim; w++)
				if (!set[w].used)
					victim = &set[w];
			for (int w = 0; w < DIGEST_NC_WAYS && !victim; w++)
				if (!nonce_fresh(ctx, set[w].issued, now))
					victim = &set[w];
			if (!victim) {
				victim = &set[0];
				for (int w = 1; w < DIGEST_NC_WAYS; w++)
					if (set[w].issued < victim->issued)
						victim = &set[w];
			}
			memcpy(victim->key, key, NC_KEY_LEN);
			victim->issued = issued;
			victim->nc = nc;
			victim->used = true;
		}
	}
	pthread_mutex_unlock(&ctx->nc_lock);
	return ok;
}

/* ---- challenges ---- */

struct out_buf {
	char *p;
	size_t cap;
	size_t len;
	bool overflow;
};

static void ob_put(struct out_buf *o, const char *s, size_t n)
{
	if (o->overflow || n > o->cap - o->len) {
		o->overflow = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void ob_puts(struct out_buf *o, const char *s)
{
	ob_put(o, s, strlen(s));
}

static void ob_terminate(struct out_buf *o)
{
	if (!o->overflow && o->len < o->cap)
		o->p[o->len] = '\0';
}

/* A realm we can put in a quoted-string: printable, no control bytes. */
static bool realm_ok(struct str realm)
{
	if (realm.len == 0 || realm.len > DIGEST_MAX_REALM)
		return false;
	for (size_t i = 0; i < realm.len; i++) {
		unsigned char ch = (unsigned char)realm.s[i];
		if (ch < 0x20 || ch == 0x7f)
			return false;
	}
	return true;
}

static int challenge_write(struct digest_ctx *ctx, struct str realm, enum digest_algorithm alg,
			   bool stale, struct out_buf *o)
{
	if (alg >= DIGEST_ALG_UNKNOWN || !(ctx->algorithms & DIGEST_ALG_BIT(alg)))
		return -ENOTSUP;
	if (!realm_ok(realm))
		return -EINVAL;
	char nonce[DIGEST_NONCE_LEN + 1];
	int rc = digest_nonce_create(ctx, realm, nonce, sizeof(nonce));
	if (rc < 0)
		return rc;
	/* challenge = "Digest" LWS digest-cln *(COMMA digest-cln)
	 * (RFC 3261 §25.1); realm escaped as a quoted-string. */
	ob_puts(o, "Digest realm=\"");
	for (size_t i = 0; i < realm.len; i++) {
		if (realm.s[i] == '"' || realm.s[i] == '\\')
			ob_put(o, "\\", 1);
		ob_put(o, &realm.s[i], 1);
	}
	ob_puts(o, "\", nonce=\"");
	ob_puts(o, nonce);
	if (ctx->with_opaque) {
		ob_puts(o, "\", opaque=\"");
		ob_puts(o, ctx->opaque);
	}
	ob_puts(o, "\", algorithm=");
	ob_puts(o, digest_algorithm_name(alg));
	ob_puts(o, ", qop=\"auth\"");
	if (stale)
		ob_puts(o, ", stale=true");
	return o->overflow ? -EMSGSIZE : 0;
}

int digest_challenge_build(struct digest_ctx *ctx, struct str realm, enum digest_algorithm alg,
			   bool stale, char *out, size_t cap)
{
	struct out_buf o = {out, cap, 0, false};
	int rc = challenge_write(ctx, realm, alg, stale, &o);
	if (rc < 0)
		return rc;
	ob_terminate(&o);
	return (int)o.len;
}

int digest_challenge_headers_build(struct digest_ctx *ctx, bool proxy, struct str realm, bool stale,
				   char *out, size_t cap)
{
	static const enum digest_algorithm order[] = {DIGEST_ALG_SHA256, DIGEST_ALG_SHA256_SESS,
						      DIGEST_ALG_MD5, DIGEST_ALG_MD5_SESS};
	struct out_buf o = {out, cap, 0, false};
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (!(ctx->algorithms & DIGEST_ALG_BIT(order[i])))
			continue;
		ob_puts(&o, proxy ? "Proxy-Authenticate: " : "WWW-Authenticate: ");
		int rc = challenge_write(ctx, realm, order[i], stale, &o);
		if (rc < 0)
			return rc;
		ob_puts(&o, "\r\n");
	}
	if (o.overflow)
		return -EMSGSIZE;
	ob_terminate(&o);
	return (int)o.len;
}

/* ---- verification (RFC 3261 §22.4, RFC 2617 §3.2.2, RFC 7616 §3.4) ---- */

static bool hex_decode(struct str hex, uint8_t *out, size_t n)
{
	if (hex.len != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!ascii_is_hex(hex.s[2 * i]) || !ascii_is_hex(hex.s[2 * i + 1]))
			return false;
		out[i] = (uint8_t)(ascii_hex_value(hex.s[2 * i]) << 4 |
				   ascii_hex_value(hex.s[2 * i + 1]));
	}
	return true;
}

enum digest_verdict digest_verify(struct digest_ctx *ctx, const struct digest_credentials *cr,
				  struct str method, struct str request_uri, struct str realm,
				  const struct credential_entry *entry)
{
	enum digest_algorithm alg = cr->algorithm;
	if (alg >= DIGEST_ALG_UNKNOWN || !(ctx->algorithms & DIGEST_ALG_BIT(alg)))
		return DIGEST_VERIFY_UNSUPPORTED;
	if (cr->userhash)
		return DIGEST_VERIFY_UNSUPPORTED; /* RFC 7616 §3.4.4: never offered */
	if (cr->qop == DIGEST_QOP_NONE ? !ctx->allow_no_qop : cr->qop != DIGEST_QOP_AUTH)
		return DIGEST_VERIFY_UNSUPPORTED;
	/* RFC 3261 §22.4: credentials whose realm is not ours are for
	 * someone else (a proxy may pass them on). */
	if (!str_case_eq(cr->realm, realm))
		return DIGEST_VERIFY_REALM_MISMATCH;
	/* RFC 2617 §3.2.2.5: the uri must name the requested resource. */
	if (!str_eq(cr->uri, request_uri))
		return DIGEST_VERIFY_URI_MISMATCH;
	if (ctx->with_opaque && !str_eq(cr->opaque, str_make(ctx->opaque, OPAQUE_LEN)))
		return DIGEST_VERIFY_BAD_NONCE;

	uint64_t issued = 0;
	uint8_t key[NC_KEY_LEN];
	if (nonce_open(ctx, cr->nonce, realm, &issued, key) < 0)
		return DIGEST_VERIFY_BAD_NONCE;

	/* Pick the secret. An unknown user still costs the same hashing, so
	 * that timing does not tell which users exist. */
	static const uint8_t dummy[32];
	const uint8_t *ha1 = NULL;
	bool unknown =
	    !entry || !str_eq(entry->user, cr->username) || !str_case_eq(entry->realm, cr->realm);
	struct digest_response_input in = {
	    .algorithm = alg,
	    .username = cr->username,
	    .realm = cr->realm,
	    .nonce = cr->nonce,
	    .cnonce = cr->cnonce,
	    .nc = cr->nc_text,
	    .qop = cr->qop_text,
	    .method = method,
	    .uri = cr->uri,
	};
	if (unknown) {
		ha1 = dummy;
	} else if (alg_is_sha256(alg) && entry->has_ha1_sha256) {
		ha1 = entry->ha1_sha256;
	} else if (!alg_is_sha256(alg) && entry->has_ha1_md5) {
		ha1 = entry->ha1_md5;
	} else if (entry->has_password) {
		in.password = entry->password;
	} else {
		return DIGEST_VERIFY_UNSUPPORTED; /* no secret usable with this algorithm */
	}
	in.ha1 = ha1;

	uint8_t expect[32], got[32];
	int n = response_bytes(&in, expect);
	if (n < 0)
		return DIGEST_VERIFY_UNSUPPORTED;
	bool match =
	    hex_decode(cr->response, got, (size_t)n) && CRYPTO_memcmp(expect, got, (size_t)n) == 0;
	OPENSSL_cleanse(expect, sizeof(expect));
	if (unknown)
		return DIGEST_VERIFY_UNKNOWN_USER;
	if (!match)
		return DIGEST_VERIFY_BAD_RESPONSE;

	/* RFC 7616 §3.3: stale only when the digest itself was right. */
	uint64_t now = ctx_now(ctx);
	if (!nonce_fresh(ctx, issued, now))
		return DIGEST_VERIFY_STALE;
	if (ctx->nc_check && cr->qop == DIGEST_QOP_AUTH &&
	    !nc_accept(ctx, key, issued, cr->nc, now))
		return DIGEST_VERIFY_REPLAY;
	return DIGEST_VERIFY_OK;
}
