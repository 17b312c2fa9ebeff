/* tls_ctx.c: OpenSSL contexts, the in-handshake RFC 5922/5924 decision and
 * SNI certificate selection (RFC 6066 §3). Resumption: tls_session.c. */
#include "tls/tls_ctx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "base/log.h"
#include "tls/tls_private.h"

/* TLS 1.2 suites: forward secrecy and AEAD only. TLS 1.3 keeps OpenSSL's
 * defaults (all AEAD). */
#define TLS12_CIPHERS                                                                              \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:P-256:P-384"
/* Peer chains longer than this are refused (leaf + intermediates + root). */
#define TLS_VERIFY_DEPTH 8

/* ex_data indexes: the per-SSL state on every SSL made here, and the
 * struct tls_ctx on its SSL_CTX (so that it lives as long as the last SSL
 * made from it, even after tls_ctx_destroy()). */
static int peer_idx = -1, ctx_idx = -1;
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;

static void peer_state_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			       void *argp)
{
	struct tls_peer_state *st = ptr;
	if (st) {
		free(st->ids_work);
		free(st->ids_compact);
		free(st->target);
		free(st->wanted_buf);
		free(st->served_buf);
	}
	free(st);
}

static void ctx_free(struct tls_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ndomains; i++) {
		X509_free(ctx->domains[i].cert);
		EVP_PKEY_free(ctx->domains[i].key);
		sk_X509_pop_free(ctx->domains[i].chain, X509_free);
	}
	free(ctx->domains);
	tls_session_ctx_free(ctx);
	free(ctx);
}

static void ctx_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	if (ptr)
		ctx_free(ptr);
}

static void idx_init(void)
{
	peer_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, peer_state_free_cb);
	ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctx_free_cb);
}

static int peer_index(void)
{
	pthread_once(&idx_once, idx_init);
	return peer_idx;
}

static int ctx_index(void)
{
	pthread_once(&idx_once, idx_init);
	return ctx_idx;
}

struct tls_peer_state *tls_peer_state_get(const SSL *ssl)
{
	if (!ssl || peer_index() < 0)
		return NULL;
	return SSL_get_ex_data(ssl, peer_index());
}

int64_t tls_now(void)
{
	return (int64_t)time(NULL);
}

void tls_ctx_cfg_init(struct tls_ctx_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->policy = TLS_IDENTITY_POLICY_DEFAULT;
	cfg->resume = true;
	cfg->resume_lifetime_s = TLS_RESUME_LIFETIME_DEFAULT_S;
	cfg->ticket_rotate_s = TLS_TICKET_ROTATE_DEFAULT_S;
	cfg->session_cache_size = TLS_SESSION_CACHE_DEFAULT;
}

/* Log the newest OpenSSL error with our context, then clear the queue. */
static void log_ssl_error(const char *what, const char *file)
{
	char err[256];
	unsigned long e = ERR_peek_last_error();
	if (e)
		ERR_error_string_n(e, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "unknown");
	LOG_ERROR("tls.ctx", "what=\"%s\" file=\"%s\" error=\"%s\"", what, file ? file : "-", err);
	ERR_clear_error();
}

static int file_check(const char *what, const char *file)
{
	if (access(file, R_OK) != 0) {
		int e = errno;
		LOG_ERROR("tls.ctx", "what=\"%s\" file=\"%s\" error=\"%s\"", what, file,
			  strerror(e));
		return -e;
	}
	return 0;
}

/* Add every certificate of a PEM file to the chain we send. */
static int add_chain_file(SSL_CTX *s, const char *file)
{
	BIO *bio = BIO_new_file(file, "r");
	int n = 0;
	X509 *x;
	if (!bio)
		return -ENOENT;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		int ok = SSL_CTX_add1_chain_cert(s, x);
		X509_free(x);
		if (!ok) {
			BIO_free(bio);
			return -ENOMEM;
		}
		n++;
	}
	BIO_free(bio);
	ERR_clear_error(); /* end of file */
	return n > 0 ? 0 : -EBADMSG;
}

void tls_peer_refuse(struct tls_peer *p, enum tls_verdict v, int x509_err, int depth)
{
	if (p->auth == TLS_PEER_REFUSED)
		return;
	p->auth = TLS_PEER_REFUSED;
	p->verdict = v == TLS_VERDICT_OK ? TLS_VERDICT_UNTRUSTED : v;
	p->x509_err = x509_err;
	p->depth = depth;
}

/* The verify callback: OpenSSL calls it for every chain error (ok == 0) and
 * once per certificate with ok == 1, the leaf (depth 0) last. Returning 0
 * aborts the handshake with an alert before we send Finished (as a client)
 * — so no application data can follow (RFC 5922 §7.3, spec rule 6). */
static int verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_peer_state *st = ssl ? SSL_get_ex_data(ssl, peer_index()) : NULL;
	if (!st)
		return 0; /* an SSL we did not set up: fail closed */
	struct tls_peer *p = &st->peer;

	if (!p->has_cert) {
		/* Keep the leaf's fingerprint and names even when refused, so
		 * that the log can say what was offered (spec rule 9). */
		X509 *leaf = X509_STORE_CTX_get0_cert(xs);
		unsigned int len = 0;
		struct tls_identity_set *ids = leaf ? tls_peer_ids_work(st) : NULL;
		if (leaf && !ids) {
			tls_peer_refuse(p, TLS_VERDICT_UNTRUSTED, X509_V_ERR_OUT_OF_MEM, 0);
			return 0;
		}
		if (leaf) {
			p->has_cert = true;
			if (!X509_digest(leaf, EVP_sha256(), p->sha256, &len) ||
			    len != sizeof(p->sha256))
				memset(p->sha256, 0, sizeof(p->sha256));
			(void)tls_identity_extract(leaf, &st->policy, ids);
		}
	}
	if (p->auth == TLS_PEER_REFUSED)
		return 0;
	int depth = X509_STORE_CTX_get_error_depth(xs);
	if (!ok) {
		int err = X509_STORE_CTX_get_error(xs);
		tls_peer_refuse(p, tls_verdict_from_x509(err), err, depth);
		return 0;
	}
	if (depth > 0)
		return 1;

	/* The chain is valid up to a trust anchor; now the SIP rules. */
	X509 *leaf = X509_STORE_CTX_get_current_cert(xs);
	enum tls_role role = p->side == TLS_SIDE_CLIENT ? TLS_ROLE_SERVER : TLS_ROLE_CLIENT;
	struct str want =
	    p->side == TLS_SIDE_CLIENT ? str_make(p->wanted, p->wanted_len) : STR_NULL;
	struct tls_identity_set *ids = tls_peer_ids_work(st);
	enum tls_verdict v = ids ? tls_identity_authenticate(leaf, &st->policy, role, want, ids)
				 : TLS_VERDICT_UNTRUSTED;
	if (v != TLS_VERDICT_OK) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
		tls_peer_refuse(p, v, X509_V_ERR_APPLICATION_VERIFICATION, 0);
		return 0;
	}
	p->auth = TLS_PEER_AUTHENTICATED;
	p->verdict = TLS_VERDICT_OK;
	st->verified_at = tls_now();
	return 1;
}

static int ctx_load_cert(SSL_CTX *s, const struct tls_ctx_cfg *cfg)
{
	const char *key = cfg->key_file ? cfg->key_file : cfg->cert_file;
	int rc;

	if ((rc = file_check("certificate", cfg->cert_file)) < 0 ||
	    (rc = file_check("private key", key)) < 0)
		return rc;
	if (SSL_CTX_use_certificate_chain_file(s, cfg->cert_file) != 1) {
		log_ssl_error("certificate", cfg->cert_file);
		return -EBADMSG;
	}
	if (SSL_CTX_use_PrivateKey_file(s, key, SSL_FILETYPE_PEM) != 1) {
		unsigned long e = ERR_peek_last_error();
		bool mismatch = ERR_GET_LIB(e) == ERR_LIB_X509 &&
				ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH;
		log_ssl_error(mismatch ? "private key does not match certificate" : "private key",
			      key);
		return mismatch ? -EKEYREJECTED : -EBADMSG;
	}
	if (SSL_CTX_check_private_key(s) != 1) {
		log_ssl_error("private key does not match certificate", key);
		return -EKEYREJECTED;
	}
	if (cfg->chain_file) {
		if ((rc = file_check("chain", cfg->chain_file)) < 0)
			return rc;
		if ((rc = add_chain_file(s, cfg->chain_file)) < 0) {
			log_ssl_error("chain", cfg->chain_file);
			return rc;
		}
	}
	return 0;
}

/* ---- session id context ---- */

/* SHA-256 of a file's bytes; of "-" when there is no file. */
static int digest_file(const char *file, unsigned char out[32])
{
	unsigned char buf[4096];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	BIO *bio = NULL;
	int n, rc = -ENOMEM;

	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		goto out;
	if (!file) {
		if (!EVP_DigestUpdate(md, "-", 1))
			goto out;
	} else {
		bio = BIO_new_file(file, "rb");
		if (!bio) {
			rc = -ENOENT;
			goto out;
		}
		while ((n = BIO_read(bio, buf, sizeof(buf))) > 0)
			if (!EVP_DigestUpdate(md, buf, (size_t)n))
				goto out;
	}
	rc = EVP_DigestFinal_ex(md, out, NULL) ? 0 : -ENOMEM;
out:
	BIO_free(bio);
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return rc;
}

/* The session id context binds a session to the settings that made its
 * identity decision: OpenSSL resumes a session only under the same id
 * context (RFC 5246 §7.4.1.2 leaves this to the server; OpenSSL checks it
 * for tickets too, TLS 1.2 and 1.3). So a ticket made where the CA bundle,
 * the CRLs, the identity policy or require_client_cert differed — another
 * listener sharing the key ring, or a context rebuilt after a CRL update —
 * does a full handshake and meets the verify callback. A CA directory is
 * bound by its path only. */
static int ctx_sid_set(SSL_CTX *s, const struct tls_ctx_cfg *cfg, enum tls_side side)
{
	unsigned char ca[32], crl[32], sid[32];
	unsigned char hdr[16] = "sipsd-sid-1";
	int rc;

	if ((rc = digest_file(cfg->ca_file, ca)) < 0 || (rc = digest_file(cfg->crl_file, crl)) < 0)
		return rc;
	hdr[12] = (unsigned char)side;
	hdr[13] = cfg->policy.legacy_cn;
	hdr[14] = (unsigned char)cfg->policy.eku;
	hdr[15] = cfg->require_client_cert;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const char *dir = cfg->ca_dir ? cfg->ca_dir : "-";
	bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
		  EVP_DigestUpdate(md, hdr, sizeof(hdr)) && EVP_DigestUpdate(md, ca, sizeof(ca)) &&
		  EVP_DigestUpdate(md, crl, sizeof(crl)) &&
		  EVP_DigestUpdate(md, dir, strlen(dir) + 1) && EVP_DigestFinal_ex(md, sid, NULL) &&
		  SSL_CTX_set_session_id_context(s, sid, sizeof(sid));
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return ok ? 0 : -ENOMEM;
}

/* ---- SNI (RFC 6066 §3; spec rule 10) ---- */

/* The host_name of the ClientHello's server_name extension, read before
 * OpenSSL parses it (the client hello callback runs first). OpenSSL accepts
 * exactly one host_name entry and refuses the handshake otherwise; anything
 * else here is "no SNI". */
static bool hello_sni(SSL *ssl, struct str *out)
{
	const unsigned char *p;
	size_t len;

	if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) || len < 5)
		return false;
	size_t list = (size_t)p[0] << 8 | p[1];
	size_t n = (size_t)p[3] << 8 | p[4];
	if (list != len - 2 || p[2] != TLSEXT_NAMETYPE_host_name || n != list - 3 || n == 0 ||
	    n > TLS_IDENTITY_MAX_NAME || memchr(p + 5, 0, n))
		return false;
	*out = str_make((const char *)p + 5, n);
	return true;
}

/* The identity of `set` equal to `name` (RFC 5922 §7.2: whole name, ASCII
 * case-insensitive), as a slice into the set. */
static bool set_find(const struct tls_identity_set *set, struct str name, struct str *found)
{
	for (size_t i = 0; i < set->count; i++) {
		struct str n = tls_identity_set_name(set, i);
		if (str_case_eq(n, name)) {
			*found = n;
			return true;
		}
	}
	return false;
}

/* Which certificate holds `name`: 0 the default, i + 1 domains[i]. */
static bool ctx_cert_find(const struct tls_ctx *ctx, struct str name, size_t *idx,
			  struct str *found)
{
	if (set_find(&ctx->own, name, found)) {
		*idx = 0;
		return true;
	}
	for (size_t i = 0; i < ctx->ndomains; i++)
		if (set_find(&ctx->domains[i].ids, name, found)) {
			*idx = i + 1;
			return true;
		}
	return false;
}

/* Put certificate `idx` on the SSL, replacing whatever it holds: every key
 * type is cleared first, so an RSA default cannot stay beside an ECDSA
 * domain certificate and be chosen by signature algorithm. Only the
 * certificate changes: the SSL keeps its context, verify mode and callback,
 * trust store and session id context. */
static int ssl_cert_use(SSL *ssl, const struct tls_ctx *ctx, size_t idx)
{
	X509 *cert;
	EVP_PKEY *key;
	STACK_OF(X509) *chain = NULL;

	if (idx == 0) {
		cert = SSL_CTX_get0_certificate(ctx->ssl_ctx);
		key = SSL_CTX_get0_privatekey(ctx->ssl_ctx);
		if (!SSL_CTX_get0_chain_certs(ctx->ssl_ctx, &chain))
			chain = NULL;
	} else {
		cert = ctx->domains[idx - 1].cert;
		key = ctx->domains[idx - 1].key;
		chain = ctx->domains[idx - 1].chain;
	}
	SSL_certs_clear(ssl);
	if (!cert || !key || SSL_use_cert_and_key(ssl, cert, key, chain, 1) != 1)
		return -ENOMEM;
	return 0;
}

/* Record the domain served: the context's default domain itself (it lives
 * as long as the SSL) when that is the name, else a lower-cased copy of the
 * name an SNI chose.
 * Returns 0 or -ENOMEM (the previous value is kept). */
static int served_set(struct tls_peer_state *st, struct str name)
{
	struct tls_ctx *ctx = st->ctx;
	char *b = NULL;
	if (name.s == ctx->default_domain ||
	    str_case_eq(name, str_make(ctx->default_domain, ctx->default_len))) {
		st->peer.served_domain = ctx->default_domain;
		st->peer.served_domain_len = ctx->default_len;
	} else {
		size_t n = name.len < TLS_IDENTITY_MAX_NAME ? name.len : TLS_IDENTITY_MAX_NAME;
		b = malloc(n + 1);
		if (!b)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++)
			b[i] = ascii_lower(name.s[i]);
		b[n] = '\0';
		st->peer.served_domain = b;
		st->peer.served_domain_len = n;
	}
	free(st->served_buf);
	st->served_buf = b;
	return 0;
}

/* Runs first on every ClientHello (before resumption is decided, so the
 * ticket callback knows which domain is being served). Never refuses a
 * client for its SNI: unknown or no SNI gets the default. */
static int client_hello_cb(SSL *ssl, int *al, void *arg)
{
	struct tls_peer_state *st = tls_peer_state_get(ssl);
	struct str sni, name;
	size_t idx = 0;

	if (!st) {
		*al = SSL_AD_INTERNAL_ERROR; /* an SSL we did not set up: fail closed */
		return SSL_CLIENT_HELLO_ERROR;
	}
	struct tls_ctx *ctx = st->ctx;
	bool matched = hello_sni(ssl, &sni) && ctx_cert_find(ctx, sni, &idx, &name);
	if (!matched) {
		idx = 0;
		name = str_make(ctx->default_domain, ctx->default_len);
	}
	size_t cur = st->cert_index > 0 ? (size_t)st->cert_index : 0;
	if (st->cert_index < 0) /* once per handshake (not again after HelloRetryRequest) */
		atomic_fetch_add_explicit(matched ? &ctx->stats.sni_matched
						  : &ctx->stats.sni_default,
					  1, memory_order_relaxed);
	if (idx != cur && ssl_cert_use(ssl, ctx, idx) < 0) {
		ERR_clear_error();
		*al = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	st->cert_index = (int)idx;
	st->sni_matched = matched;
	if (served_set(st, name) < 0) {
		*al = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* Acknowledge the SNI only when a certificate was chosen by it (RFC 6066
 * §3: the server "MAY" use it; an empty acknowledgement says it did). */
static int servername_cb(SSL *ssl, int *al, void *arg)
{
	struct tls_peer_state *st = tls_peer_state_get(ssl);
	return st && st->sni_matched ? SSL_TLSEXT_ERR_OK : SSL_TLSEXT_ERR_NOACK;
}

/* ---- end of handshake ---- */

/* Once per handshake: a full handshake was decided by the verify callback;
 * a resumed one gets its record restored and checked again. */
static void handshake_finish(const SSL *ssl, struct tls_peer_state *st)
{
	if (st->finished || !SSL_is_init_finished(ssl))
		return;
	st->finished = true;
	if (SSL_session_reused(ssl))
		tls_session_finish(ssl, st);
	else
		atomic_fetch_add_explicit(&st->ctx->stats.full, 1, memory_order_relaxed);
	/* The set is final now: keep only the names (a few hundred bytes
	 * instead of the full-size working set) for the connection's life. */
	if (st->ids_work) {
		struct tls_identity_set *d = tls_identity_set_dup(st->ids_work);
		if (d) {
			free(st->ids_work);
			st->ids_work = NULL;
			st->ids_compact = d;
			st->peer.ids = d;
		}
	}
}

struct tls_identity_set *tls_peer_ids_work(struct tls_peer_state *st)
{
	if (!st->ids_work) {
		if (st->ids_compact)
			return NULL; /* decided: the set does not change any more */
		st->ids_work = malloc(sizeof(*st->ids_work));
		if (!st->ids_work)
			return NULL;
		tls_identity_set_init(st->ids_work);
		st->peer.ids = st->ids_work;
	}
	return st->ids_work;
}

static void info_cb(const SSL *ssl, int where, int ret)
{
	struct tls_peer_state *st;
	if ((where & SSL_CB_HANDSHAKE_DONE) && (st = tls_peer_state_get(ssl)) != NULL)
		handshake_finish(ssl, st);
}

/* ---- contexts ---- */

/* The default domain: cfg->domain (lower-cased), else the first identity
 * of our certificate. */
static void ctx_default_domain(struct tls_ctx *ctx, const struct tls_ctx_cfg *cfg)
{
	struct str d = STR_NULL, found;
	if (cfg->domain && *cfg->domain) {
		d = str_from_cstr(cfg->domain);
		if (d.len > TLS_IDENTITY_MAX_NAME)
			d.len = 0;
		if (d.len && !set_find(&ctx->own, d, &found))
			LOG_WARN("tls.ctx",
				 "what=\"default domain is not an identity of the certificate "
				 "(RFC 5922 §7.5)\" domain=\"%s\" file=\"%s\"",
				 cfg->domain, cfg->cert_file ? cfg->cert_file : "-");
	} else if (ctx->own.count) {
		d = tls_identity_set_name(&ctx->own, 0);
	}
	for (size_t i = 0; i < d.len; i++)
		ctx->default_domain[i] = ascii_lower(d.s[i]);
	ctx->default_domain[d.len] = '\0';
	ctx->default_len = d.len;
}

int tls_ctx_create(const struct tls_ctx_cfg *cfg, enum tls_side side, struct tls_ctx **out)
{
	struct tls_ctx *ctx;
	X509_STORE *store = NULL;
	SSL_CTX *s;
	int rc;

	*out = NULL;
	if (side == TLS_SIDE_SERVER && !cfg->cert_file) {
		LOG_ERROR("tls.ctx", "what=\"server context without a certificate\"");
		return -EINVAL;
	}
	if (peer_index() < 0 || ctx_index() < 0)
		return -ENOMEM;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->side = side;
	ctx->policy = cfg->policy;
	ctx->require_client_cert = side == TLS_SIDE_SERVER && cfg->require_client_cert;
	ctx->resume = cfg->resume;
	ctx->resume_lifetime_s =
	    cfg->resume_lifetime_s ? cfg->resume_lifetime_s : TLS_RESUME_LIFETIME_DEFAULT_S;
	tls_identity_set_init(&ctx->own);
	s = SSL_CTX_new(side == TLS_SIDE_SERVER ? TLS_server_method() : TLS_client_method());
	if (!s || !SSL_CTX_set_ex_data(s, ctx_index(), ctx)) {
		SSL_CTX_free(s);
		free(ctx);
		ERR_clear_error();
		return -ENOMEM;
	}
	/* From here on SSL_CTX_free(s) frees ctx too (ctx_free_cb). */
	ctx->ssl_ctx = s;

	if (!SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION) ||
	    !SSL_CTX_set_cipher_list(s, TLS12_CIPHERS) ||
	    !SSL_CTX_set1_groups_list(s, TLS_GROUPS)) {
		log_ssl_error("protocol settings", NULL);
		rc = -EINVAL;
		goto fail;
	}
	SSL_CTX_set_options(s, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
				   SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Idle SIP connections are long-lived and many: give the record
	 * buffers back between reads and writes. */
	SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
	/* No 0-RTT: early data would be processed before the handshake (and so
	 * the identity decision) completes, and it can be replayed. */
	SSL_CTX_set_max_early_data(s, 0);
	if (!ctx->resume) {
		/* Every connection a full handshake through the verify callback. */
		SSL_CTX_set_options(s, SSL_OP_NO_TICKET);
		SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_num_tickets(s, 0);
	}

	if (cfg->cert_file) {
		rc = ctx_load_cert(s, cfg);
		if (rc < 0)
			goto fail;
		X509 *own = SSL_CTX_get0_certificate(s);
		if (own && tls_identity_extract(own, &ctx->policy, &ctx->own) < 0)
			LOG_WARN("tls.ctx",
				 "what=\"own certificate has a refused name\" file=\"%s\"",
				 cfg->cert_file);
	}
	ctx_default_domain(ctx, cfg);

	rc = tls_store_create(cfg->ca_file, cfg->ca_dir, cfg->crl_file, &store);
	if (rc < 0) {
		LOG_ERROR(
		    "tls.ctx",
		    "what=\"trust store\" ca_file=\"%s\" ca_dir=\"%s\" crl=\"%s\" error=\"%s\"",
		    cfg->ca_file ? cfg->ca_file : "-", cfg->ca_dir ? cfg->ca_dir : "-",
		    cfg->crl_file ? cfg->crl_file : "-", strerror(-rc));
		goto fail;
	}
	SSL_CTX_set_cert_store(s, store); /* s owns it now */
	if ((rc = ctx_sid_set(s, cfg, side)) < 0)
		goto fail;
	/* The EKU is ours to decide (RFC 5924); see tls_store_create(). */
	SSL_CTX_set_purpose(s, X509_PURPOSE_ANY);
	int mode = SSL_VERIFY_PEER;
	if (ctx->require_client_cert)
		mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	SSL_CTX_set_verify(s, mode, verify_cb);
	SSL_CTX_set_verify_depth(s, TLS_VERIFY_DEPTH);
	if (side == TLS_SIDE_SERVER) {
		SSL_CTX_set_client_hello_cb(s, client_hello_cb, NULL);
		SSL_CTX_set_tlsext_servername_callback(s, servername_cb);
	}
	SSL_CTX_set_info_callback(s, info_cb);
	if (ctx->resume && (rc = tls_session_ctx_setup(ctx, cfg)) < 0)
		goto fail;
	ERR_clear_error();
	*out = ctx;
	return 0;
fail:
	ERR_clear_error();
	SSL_CTX_free(s);
	return rc;
}

void tls_ctx_destroy(struct tls_ctx *ctx)
{
	if (!ctx)
		return;
	/* The struct goes with the last reference to the SSL_CTX. */
	SSL_CTX_free(ctx->ssl_ctx);
}

SSL_CTX *tls_ctx_ssl_ctx(const struct tls_ctx *ctx)
{
	return ctx->ssl_ctx;
}

const struct tls_identity_set *tls_ctx_identities(const struct tls_ctx *ctx)
{
	return &ctx->own;
}

const struct tls_identity_set *tls_ctx_domain_identities(const struct tls_ctx *ctx, size_t i)
{
	if (i == 0)
		return &ctx->own;
	return i <= ctx->ndomains ? &ctx->domains[i - 1].ids : NULL;
}

bool tls_ctx_has_identity(const struct tls_ctx *ctx, struct str domain)
{
	size_t idx;
	struct str found;
	return domain.len && ctx_cert_find(ctx, domain, &idx, &found);
}

int tls_ctx_add_domain(struct tls_ctx *server, const char *cert_file, const char *key_file,
		       const char *chain_file)
{
	struct tls_ctx_cfg c;
	struct tls_domain_cert *d;
	STACK_OF(X509) *chain = NULL;
	SSL_CTX *tmp;
	int rc;

	if (!server || server->side != TLS_SIDE_SERVER || !cert_file)
		return -EINVAL;
	if (server->ndomains >= TLS_CTX_MAX_DOMAINS) {
		LOG_ERROR("tls.ctx", "what=\"too many SNI domains\" max=%d file=\"%s\"",
			  TLS_CTX_MAX_DOMAINS, cert_file);
		return -ENOSPC;
	}
	d = realloc(server->domains, (server->ndomains + 1) * sizeof(*d));
	if (!d)
		return -ENOMEM;
	server->domains = d;
	d += server->ndomains;
	memset(d, 0, sizeof(*d));

	/* Load and check as for the default, in a scratch context. */
	tmp = SSL_CTX_new(TLS_server_method());
	if (!tmp) {
		ERR_clear_error();
		return -ENOMEM;
	}
	tls_ctx_cfg_init(&c);
	c.cert_file = cert_file;
	c.key_file = key_file;
	c.chain_file = chain_file;
	if ((rc = ctx_load_cert(tmp, &c)) < 0)
		goto out;
	X509 *cert = SSL_CTX_get0_certificate(tmp);
	EVP_PKEY *key = SSL_CTX_get0_privatekey(tmp);
	if (!cert || !key) {
		rc = -EBADMSG;
		goto out;
	}
	if (tls_identity_extract(cert, &server->policy, &d->ids) < 0 || d->ids.count == 0) {
		LOG_ERROR("tls.ctx",
			  "what=\"SNI certificate has no SIP domain identity (RFC 5922 §7.1)\" "
			  "file=\"%s\"",
			  cert_file);
		rc = -EINVAL;
		goto out;
	}
	if (SSL_CTX_get0_chain_certs(tmp, &chain) && chain && sk_X509_num(chain) > 0) {
		d->chain = X509_chain_up_ref(chain);
		if (!d->chain) {
			rc = -ENOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < d->ids.count; i++) {
		struct str n = tls_identity_set_name(&d->ids, i), found;
		size_t idx;
		if (ctx_cert_find(server, n, &idx, &found))
			LOG_WARN("tls.ctx",
				 "what=\"SNI name already served by an earlier certificate\" "
				 "name=\"%.*s\" file=\"%s\"",
				 (int)n.len, n.s, cert_file);
	}
	X509_up_ref(cert);
	EVP_PKEY_up_ref(key);
	d->cert = cert;
	d->key = key;
	server->ndomains++;
	rc = 0;
out:
	SSL_CTX_free(tmp);
	ERR_clear_error();
	return rc;
}

/* ---- SSL objects ---- */

static int ssl_create(struct tls_ctx *ctx, SSL **out, struct tls_peer_state **stp)
{
	int idx = peer_index();
	struct tls_peer_state *st;
	SSL *ssl;

	*out = NULL;
	if (idx < 0)
		return -ENOMEM;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	ssl = SSL_new(ctx->ssl_ctx);
	if (!ssl) {
		free(st);
		ERR_clear_error();
		return -ENOMEM;
	}
	if (!SSL_set_ex_data(ssl, idx, st)) {
		free(st);
		SSL_free(ssl);
		ERR_clear_error();
		return -ENOMEM;
	}
	st->ctx = ctx;
	st->cert_index = -1;
	st->policy = ctx->policy;
	st->peer.auth = TLS_PEER_UNAUTHENTICATED;
	st->peer.verdict = TLS_VERDICT_OK;
	st->peer.side = ctx->side;
	st->peer.ids = &tls_identity_set_empty;
	st->peer.wanted = "";
	st->peer.served_domain = "";
	if (ctx->side == TLS_SIDE_SERVER) /* until the ClientHello says otherwise */
		(void)served_set(st, str_make(ctx->default_domain, ctx->default_len));
	*out = ssl;
	*stp = st;
	return 0;
}

/* An IP literal is never sent as SNI (RFC 6066 §3). */
static bool is_ip_literal(const char *s, size_t n)
{
	char tmp[TLS_IDENTITY_MAX_NAME + 1];
	unsigned char addr[16];
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	str_to_cbuf(str_make(s, n), tmp, sizeof(tmp));
	return inet_pton(AF_INET, tmp, addr) == 1 || inet_pton(AF_INET6, tmp, addr) == 1;
}

int tls_ssl_client_create_at(struct tls_ctx *ctx, struct str domain, struct str target, SSL **out)
{
	struct tls_peer_state *st;
	SSL *ssl;
	int rc;

	*out = NULL;
	if (!ctx || ctx->side != TLS_SIDE_CLIENT || domain.len == 0 ||
	    domain.len > TLS_IDENTITY_MAX_NAME || memchr(domain.s, 0, domain.len) ||
	    target.len > TLS_TARGET_MAX || (target.len && memchr(target.s, 0, target.len)))
		return -EINVAL;
	rc = ssl_create(ctx, &ssl, &st);
	if (rc < 0)
		return rc;
	st->wanted_buf = malloc(domain.len + 1);
	st->target = target.len ? malloc(target.len + 1) : NULL;
	if (!st->wanted_buf || (target.len && !st->target)) {
		SSL_free(ssl);
		return -ENOMEM;
	}
	memcpy(st->wanted_buf, domain.s, domain.len);
	st->wanted_buf[domain.len] = '\0';
	st->peer.wanted = st->wanted_buf;
	st->peer.wanted_len = domain.len;
	if (target.len) {
		memcpy(st->target, target.s, target.len);
		st->target[target.len] = '\0';
	}
	st->target_len = (uint16_t)target.len;
	SSL_set_connect_state(ssl);
	/* RFC 5922 §7.3 / spec rule 6: the wanted domain is the SNI. */
	if (!is_ip_literal(domain.s, domain.len) &&
	    !SSL_set_tlsext_host_name(ssl, st->wanted_buf)) {
		ERR_clear_error();
		SSL_free(ssl);
		return -EINVAL;
	}
	if (ctx->resume)
		tls_session_client_offer(ctx, ssl, st);
	*out = ssl;
	return 0;
}

int tls_ssl_client_create(struct tls_ctx *ctx, struct str domain, SSL **out)
{
	return tls_ssl_client_create_at(ctx, domain, STR_NULL, out);
}

int tls_ssl_server_create(struct tls_ctx *ctx, SSL **out)
{
	struct tls_peer_state *st;
	SSL *ssl;
	int rc;

	*out = NULL;
	if (!ctx || ctx->side != TLS_SIDE_SERVER)
		return -EINVAL;
	rc = ssl_create(ctx, &ssl, &st);
	if (rc < 0)
		return rc;
	SSL_set_accept_state(ssl);
	*out = ssl;
	return 0;
}

const struct tls_peer *tls_ssl_peer(const SSL *ssl)
{
	struct tls_peer_state *st = tls_peer_state_get(ssl);
	if (!st)
		return NULL;
	handshake_finish(ssl, st); /* no-op unless the handshake just ended */
	return &st->peer;
}

int tls_ssl_handshake_done(SSL *ssl)
{
	struct tls_peer_state *st = tls_peer_state_get(ssl);
	if (!st || !SSL_is_init_finished(ssl))
		return -EPERM;
	handshake_finish(ssl, st);
	const struct tls_peer *p = &st->peer;
	X509 *cert = SSL_get0_peer_certificate(ssl);
	if (cert && SSL_get_verify_result(ssl) != X509_V_OK)
		return -EPERM;
	if (p->side == TLS_SIDE_CLIENT)
		return cert && p->auth == TLS_PEER_AUTHENTICATED ? 0 : -EPERM;
	if (cert)
		return p->auth == TLS_PEER_AUTHENTICATED ? 0 : -EPERM;
	return p->auth == TLS_PEER_UNAUTHENTICATED ? 0 : -EPERM;
}

size_t tls_peer_format(const struct tls_peer *p, char *buf, size_t size)
{
	static const char *const auth_names[] = {"unauthenticated", "authenticated", "refused"};
	char set[512], reason[256], fp[3 * 32 + 1];
	size_t n;
	int w;

	if (!size)
		return 0;
	tls_identity_set_format(p->ids, set, sizeof(set));
	fp[0] = '\0';
	for (size_t i = 0, pos = 0; p->has_cert && i < sizeof(p->sha256); i++) {
		w = snprintf(fp + pos, sizeof(fp) - pos, "%s%02X", i ? ":" : "", p->sha256[i]);
		if (w < 0 || (size_t)w >= sizeof(fp) - pos)
			break;
		pos += (size_t)w;
	}
	tls_verdict_format(reason, sizeof(reason), p->verdict, p->x509_err,
			   str_make(p->wanted, p->wanted_len), p->ids);
	w = snprintf(buf, size,
		     "auth=%s verdict=%s wanted=%s found=%s source=%s served=%s resumed=%s "
		     "sha256=%s reason=\"%s\"",
		     auth_names[p->auth <= TLS_PEER_REFUSED ? p->auth : TLS_PEER_REFUSED],
		     tls_verdict_name(p->verdict), p->wanted_len ? p->wanted : "-", set,
		     tls_identity_source_name((enum tls_identity_source)p->ids->source),
		     p->served_domain_len ? p->served_domain : "-", p->resumed ? "yes" : "no",
		     p->has_cert ? fp : "-", reason);
	if (w < 0) {
		buf[0] = '\0';
		return 0;
	}
	n = (size_t)w < size ? (size_t)w : size - 1;
	return n;
}
