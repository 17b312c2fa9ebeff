/* tls_ctx.h: per-domain OpenSSL contexts (TLS 1.2/1.3) whose verify callback
 * applies RFC 5922 §7 and RFC 5924 inside the handshake. Transport-agnostic:
 * the caller attaches any fd or BIO to the SSL objects made here. */
#ifndef SIPSD_TLS_TLS_CTX_H
#define SIPSD_TLS_TLS_CTX_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "base/str.h"
#include "tls/identity.h"

/* Which end of the connections a context makes. */
enum tls_side {
	TLS_SIDE_SERVER = 0,
	TLS_SIDE_CLIENT,
};

/* Configuration of one context; the strings are read during
 * tls_ctx_create() only. */
struct tls_ctx_cfg {
	const char *cert_file;	/* PEM, leaf first, intermediates may follow;
				   required for a server, optional for a client
				   (mutual TLS between proxies, RFC 5922 §7.4) */
	const char *key_file;	/* PEM private key of cert_file (NULL: in cert_file) */
	const char *chain_file; /* optional extra intermediates to send */
	const char *ca_file;	/* trust anchors, PEM bundle */
	const char *ca_dir;	/* trust anchors, hashed directory */
	const char *crl_file;	/* optional CRLs: revocation checked when set */
	struct tls_identity_policy policy;
	bool require_client_cert; /* server: refuse a client without a certificate */
};

/* Fill `cfg` with no files and the default policy (spec.md §2). */
void tls_ctx_cfg_init(struct tls_ctx_cfg *cfg);

/* An SSL_CTX with our settings and policy. Opaque; not shared between
 * threads while in use (design.md). */
struct tls_ctx;

/* Build a context. Both sides: TLS 1.2 minimum, AEAD ECDHE suites, no
 * renegotiation, no compression, no session resumption (every connection
 * runs the verify callback, so no identity decision is ever skipped), and a
 * trust store from ca_file/ca_dir/crl_file (tls_store_create()). Server:
 * always requests a client certificate (RFC 5922 §7.4; spec rule 8), fails
 * the handshake without one only with require_client_cert. Client: verifies
 * the server (SSL_VERIFY_PEER). Returns 0 and *out, or -ENOENT / -EBADMSG
 * (unreadable or bad PEM), -EKEYREJECTED (key does not match the
 * certificate), -EINVAL (a server without certificate), -ENOMEM; the cause
 * is logged. Free with tls_ctx_destroy(). */
int tls_ctx_create(const struct tls_ctx_cfg *cfg, enum tls_side side, struct tls_ctx **out);

/* Free a context; SSL objects made from it stay valid (OpenSSL counts
 * references to the SSL_CTX). NULL is allowed. */
void tls_ctx_destroy(struct tls_ctx *ctx);

/* The OpenSSL context, e.g. to add SNI callbacks later. Owned by ctx. */
SSL_CTX *tls_ctx_ssl_ctx(const struct tls_ctx *ctx);

/* The SIP domain identities of our own certificate (for Record-Route,
 * RFC 5922 §7.5); empty when the context has no certificate. */
const struct tls_identity_set *tls_ctx_identities(const struct tls_ctx *ctx);

/* What the verify callback decided about the peer of one SSL. */
enum tls_peer_auth {
	TLS_PEER_UNAUTHENTICATED = 0, /* no certificate (normal for UAs, RFC 5922 §7.4),
					 or the handshake has not got that far */
	TLS_PEER_AUTHENTICATED,	      /* chain, names, EKU (and for a client the
					 wanted domain) accepted */
	TLS_PEER_REFUSED,	      /* the handshake was aborted; see verdict */
};

struct tls_peer {
	enum tls_peer_auth auth;
	enum tls_verdict verdict; /* why refused (TLS_VERDICT_OK otherwise) */
	int x509_err;		  /* OpenSSL X509_V_* code of a chain failure */
	int depth;		  /* chain depth it refers to */
	enum tls_side side;	  /* our side of the connection */
	bool has_cert;		  /* the peer presented a certificate */
	unsigned char sha256[32]; /* its fingerprint, with has_cert */
	size_t wanted_len;
	char wanted[TLS_IDENTITY_MAX_NAME + 1]; /* client: the domain to authenticate */
	struct tls_identity_set ids;		/* the peer's identity set (also when refused) */
};

/* A client SSL that will authenticate the server as SIP domain `domain`
 * (RFC 5922 §7.3: the domain of the URI given to RFC 3263, never the SRV
 * target; spec rule 5). Sends `domain` as SNI unless it is an IP literal.
 * The verify callback aborts the handshake when the server is not
 * authenticated for `domain`, so no application byte is ever sent to it.
 * Returns 0 and *out in connect state (attach a BIO/fd, then drive
 * SSL_do_handshake()), -EINVAL (ctx not a client context, domain empty,
 * too long or with a NUL), -ENOMEM. Free with SSL_free(). */
int tls_ssl_client_create(struct tls_ctx *ctx, struct str domain, SSL **out);

/* A server SSL in accept state; it records the client's identity set, or
 * 'unauthenticated' when the client sends no certificate. Returns 0 and
 * *out, -EINVAL, -ENOMEM. Free with SSL_free(). */
int tls_ssl_server_create(struct tls_ctx *ctx, SSL **out);

/* The peer record of an SSL made by tls_ssl_*_create(), or NULL for other
 * SSL objects. Owned by the SSL: valid until SSL_free(). */
const struct tls_peer *tls_ssl_peer(const SSL *ssl);

/* Call once SSL_do_handshake() returned 1. Re-checks what the callback
 * decided: a client must have authenticated the wanted domain; a server
 * whose peer sent a certificate must have accepted it. Returns 0, or
 * -EPERM when the connection must be closed without sending anything. */
int tls_ssl_handshake_done(SSL *ssl);

/* One line for the log or the user: `verdict=... wanted=... found={...}
 * sha256=...` (bounded, always NUL-terminated). Returns the length. */
size_t tls_peer_format(const struct tls_peer *peer, char *buf, size_t size);

#endif
