/* tls_ctx.c: OpenSSL contexts and the in-handshake RFC 5922/5924 decision. */
#include "tls/tls_ctx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "base/log.h"

/* TLS 1.2 suites: forward secrecy and AEAD only. TLS 1.3 keeps OpenSSL's
 * defaults (all AEAD). */
#define TLS12_CIPHERS                                                                              \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:P-256:P-384"
/* Peer chains longer than this are refused (leaf + intermediates + root). */
#define TLS_VERIFY_DEPTH 8

struct tls_ctx {
	SSL_CTX *ssl_ctx;
	enum tls_side side;
	struct tls_identity_policy policy;
	struct tls_identity_set own; /* our certificate's identities */
};

/* Per-SSL state, hung on the SSL as ex_data and freed with it. */
struct tls_peer_state {
	struct tls_peer peer;
	struct tls_identity_policy policy;
};

static int peer_idx = -1;
static pthread_once_t peer_idx_once = PTHREAD_ONCE_INIT;

static void peer_state_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			       void *argp)
{
	free(ptr);
}

static void peer_idx_init(void)
{
	peer_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, peer_state_free_cb);
}

static int peer_index(void)
{
	pthread_once(&peer_idx_once, peer_idx_init);
	return peer_idx;
}

void tls_ctx_cfg_init(struct tls_ctx_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->policy = TLS_IDENTITY_POLICY_DEFAULT;
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

/* Record a refusal; the first reason wins. */
static void peer_refuse(struct tls_peer *p, enum tls_verdict v, int x509_err, int depth)
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
		if (leaf) {
			p->has_cert = true;
			if (!X509_digest(leaf, EVP_sha256(), p->sha256, &len) ||
			    len != sizeof(p->sha256))
				memset(p->sha256, 0, sizeof(p->sha256));
			(void)tls_identity_extract(leaf, &st->policy, &p->ids);
		}
	}
	if (p->auth == TLS_PEER_REFUSED)
		return 0;
	int depth = X509_STORE_CTX_get_error_depth(xs);
	if (!ok) {
		int err = X509_STORE_CTX_get_error(xs);
		peer_refuse(p, tls_verdict_from_x509(err), err, depth);
		return 0;
	}
	if (depth > 0)
		return 1;

	/* The chain is valid up to a trust anchor; now the SIP rules. */
	X509 *leaf = X509_STORE_CTX_get_current_cert(xs);
	enum tls_role role = p->side == TLS_SIDE_CLIENT ? TLS_ROLE_SERVER : TLS_ROLE_CLIENT;
	struct str want =
	    p->side == TLS_SIDE_CLIENT ? str_make(p->wanted, p->wanted_len) : STR_NULL;
	enum tls_verdict v = tls_identity_authenticate(leaf, &st->policy, role, want, &p->ids);
	if (v != TLS_VERDICT_OK) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
		peer_refuse(p, v, X509_V_ERR_APPLICATION_VERIFICATION, 0);
		return 0;
	}
	p->auth = TLS_PEER_AUTHENTICATED;
	p->verdict = TLS_VERDICT_OK;
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

int tls_ctx_create(const struct tls_ctx_cfg *cfg, enum tls_side side, struct tls_ctx **out)
{
	struct tls_ctx *ctx;
	X509_STORE *store = NULL;
	int rc;

	*out = NULL;
	if (side == TLS_SIDE_SERVER && !cfg->cert_file) {
		LOG_ERROR("tls.ctx", "what=\"server context without a certificate\"");
		return -EINVAL;
	}
	if (peer_index() < 0)
		return -ENOMEM;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->side = side;
	ctx->policy = cfg->policy;
	tls_identity_set_init(&ctx->own);
	ctx->ssl_ctx =
	    SSL_CTX_new(side == TLS_SIDE_SERVER ? TLS_server_method() : TLS_client_method());
	if (!ctx->ssl_ctx) {
		rc = -ENOMEM;
		goto fail;
	}
	SSL_CTX *s = ctx->ssl_ctx;

	if (!SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION) ||
	    !SSL_CTX_set_cipher_list(s, TLS12_CIPHERS) ||
	    !SSL_CTX_set1_groups_list(s, TLS_GROUPS)) {
		log_ssl_error("protocol settings", NULL);
		rc = -EINVAL;
		goto fail;
	}
	SSL_CTX_set_options(s, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
				   SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
	/* No resumption: a resumed session skips the verify callback, and the
	 * identity decision must be made for every connection (and, as a
	 * client, for every wanted domain). */
	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(s, 0);
	SSL_CTX_set_session_id_context(s, (const unsigned char *)"sipsd", 5);

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
	/* The EKU is ours to decide (RFC 5924); see tls_store_create(). */
	SSL_CTX_set_purpose(s, X509_PURPOSE_ANY);
	int mode = SSL_VERIFY_PEER;
	if (side == TLS_SIDE_SERVER && cfg->require_client_cert)
		mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	SSL_CTX_set_verify(s, mode, verify_cb);
	SSL_CTX_set_verify_depth(s, TLS_VERIFY_DEPTH);
	ERR_clear_error();
	*out = ctx;
	return 0;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx->ssl_ctx);
	free(ctx);
	return rc;
}

void tls_ctx_destroy(struct tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl_ctx);
	free(ctx);
}

SSL_CTX *tls_ctx_ssl_ctx(const struct tls_ctx *ctx)
{
	return ctx->ssl_ctx;
}

const struct tls_identity_set *tls_ctx_identities(const struct tls_ctx *ctx)
{
	return &ctx->own;
}

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
	st->policy = ctx->policy;
	st->peer.auth = TLS_PEER_UNAUTHENTICATED;
	st->peer.verdict = TLS_VERDICT_OK;
	st->peer.side = ctx->side;
	tls_identity_set_init(&st->peer.ids);
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

int tls_ssl_client_create(struct tls_ctx *ctx, struct str domain, SSL **out)
{
	struct tls_peer_state *st;
	SSL *ssl;
	int rc;

	*out = NULL;
	if (!ctx || ctx->side != TLS_SIDE_CLIENT || domain.len == 0 ||
	    domain.len > TLS_IDENTITY_MAX_NAME || memchr(domain.s, 0, domain.len))
		return -EINVAL;
	rc = ssl_create(ctx, &ssl, &st);
	if (rc < 0)
		return rc;
	memcpy(st->peer.wanted, domain.s, domain.len);
	st->peer.wanted[domain.len] = '\0';
	st->peer.wanted_len = domain.len;
	SSL_set_connect_state(ssl);
	/* RFC 5922 §7.3 / spec rule 6: the wanted domain is the SNI. */
	if (!is_ip_literal(domain.s, domain.len) &&
	    !SSL_set_tlsext_host_name(ssl, st->peer.wanted)) {
		ERR_clear_error();
		SSL_free(ssl);
		return -EINVAL;
	}
	*out = ssl;
	return 0;
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
	struct tls_peer_state *st;
	if (!ssl || peer_index() < 0)
		return NULL;
	st = SSL_get_ex_data(ssl, peer_index());
	return st ? &st->peer : NULL;
}

int tls_ssl_handshake_done(SSL *ssl)
{
	const struct tls_peer *p = tls_ssl_peer(ssl);
	if (!p)
		return -EPERM;
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
	tls_identity_set_format(&p->ids, set, sizeof(set));
	fp[0] = '\0';
	for (size_t i = 0, pos = 0; p->has_cert && i < sizeof(p->sha256); i++) {
		w = snprintf(fp + pos, sizeof(fp) - pos, "%s%02X", i ? ":" : "", p->sha256[i]);
		if (w < 0 || (size_t)w >= sizeof(fp) - pos)
			break;
		pos += (size_t)w;
	}
	tls_verdict_format(reason, sizeof(reason), p->verdict, p->x509_err,
			   str_make(p->wanted, p->wanted_len), &p->ids);
	w = snprintf(buf, size,
		     "auth=%s verdict=%s wanted=%s found=%s source=%s sha256=%s reason=\"%s\"",
		     auth_names[p->auth <= TLS_PEER_REFUSED ? p->auth : TLS_PEER_REFUSED],
		     tls_verdict_name(p->verdict), p->wanted_len ? p->wanted : "-", set,
		     tls_identity_source_name((enum tls_identity_source)p->ids.source),
		     p->has_cert ? fp : "-", reason);
	if (w < 0) {
		buf[0] = '\0';
		return 0;
	}
	n = (size_t)w < size ? (size_t)w : size - 1;
	return n;
}
