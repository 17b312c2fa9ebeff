/* tls_ctx.h: per-domain OpenSSL contexts (TLS 1.2/1.3) whose verify callback
 * applies RFC 5922 §7 and RFC 5924 inside the handshake; SNI certificate
 * selection (RFC 6066 §3) and session resumption that restores and re-checks
 * the identity decision. Transport-agnostic: the caller attaches any fd or
 * BIO to the SSL objects made here. */
#ifndef SIPSD_TLS_TLS_CTX_H
#define SIPSD_TLS_TLS_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "base/str.h"
#include "tls/identity.h"

/* Bounds (design.md: every growth path has a named limit). */
#define TLS_CTX_MAX_DOMAINS 64	    /* SNI certificates per server context, besides the default */
#define TLS_TARGET_MAX 64	    /* bytes of a client cache target (e.g. "[2001:db8::1]:5061") */
#define TLS_SESSION_CACHE_MAX 65536 /* upper bound of tls_ctx_cfg.session_cache_size */
#define TLS_SESSION_CACHE_DEFAULT 256	   /* client sessions kept per context */
#define TLS_TICKET_ROTATE_DEFAULT_S 3600   /* ticket key rotation period */
#define TLS_RESUME_LIFETIME_DEFAULT_S 3600 /* how long one full handshake's decision is reused */
#define TLS_TICKETS_PER_HANDSHAKE 1	   /* TLS 1.3 tickets a server sends per handshake */

/* Which end of the connections a context makes. */
enum tls_side {
	TLS_SIDE_SERVER = 0,
	TLS_SIDE_CLIENT,
};

struct tls_ticket_keys; /* below */

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
	const char *domain;	  /* server: the listener's default SIP domain, served
				     without (or with an unknown) SNI and recorded as
				     tls_peer.served_domain (RFC 5922 §7.5); should be
				     an identity of cert_file. NULL: its first identity */
	/* Session resumption (tickets on a server, a session cache on a client).
	 * A resumed handshake restores the identity decision of the full
	 * handshake that made the session and checks it again (see
	 * docs/tls-identity.md); off: every connection is a full handshake. */
	bool resume;			     /* default on */
	unsigned resume_lifetime_s;	     /* max age of a full handshake's decision that
						resumptions may reuse (0: default) */
	unsigned ticket_rotate_s;	     /* server without ticket_keys: key rotation
						period of its own key ring (0: default) */
	unsigned session_cache_size;	     /* client: sessions kept, LRU (0: default) */
	struct tls_ticket_keys *ticket_keys; /* server: a key ring shared with other
						contexts (e.g. the same listener on
						every worker) so that a ticket from one
						resumes on another; the context takes a
						reference. NULL: a ring of its own */
};

/* Fill `cfg` with no files, the default policy (spec.md §2) and resumption
 * on with the default lifetimes. */
void tls_ctx_cfg_init(struct tls_ctx_cfg *cfg);

/* An SSL_CTX with our settings and policy. Opaque; not shared between
 * threads while in use (design.md). */
struct tls_ctx;

/* Build a context. Both sides: TLS 1.2 minimum, AEAD ECDHE suites, no
 * renegotiation, no compression, no early data, SSL_MODE_RELEASE_BUFFERS
 * (idle connections hold no record buffers), and a trust store from
 * ca_file/ca_dir/crl_file (tls_store_create()). Server: always requests a
 * client certificate (RFC 5922 §7.4; spec rule 8), fails the handshake
 * without one only with require_client_cert; selects its certificate by SNI
 * among cert_file and those added with tls_ctx_add_domain(). Resumption as
 * cfg->resume says: server sessions only as tickets (no server-side cache),
 * bound to this context's trust settings (the session id context is a
 * digest of the CA and CRL contents, policy and require_client_cert), so a
 * ticket made under other settings does a full handshake. Returns 0 and
 * *out, or -ENOENT / -EBADMSG (unreadable or bad PEM), -EKEYREJECTED (key
 * does not match the certificate), -EINVAL (a server without certificate),
 * -ENOMEM; the cause is logged. Free with tls_ctx_destroy(). */
int tls_ctx_create(const struct tls_ctx_cfg *cfg, enum tls_side side, struct tls_ctx **out);

/* Free a context; SSL objects made from it stay valid (OpenSSL counts
 * references to the SSL_CTX). NULL is allowed. */
void tls_ctx_destroy(struct tls_ctx *ctx);

/* The OpenSSL context, owned by ctx. Its verify, ClientHello, servername,
 * info, new-session and ticket callbacks and its session id context are
 * ours: replacing them breaks the identity decision. */
SSL_CTX *tls_ctx_ssl_ctx(const struct tls_ctx *ctx);

/* The SIP domain identities of our own (default) certificate (for
 * Record-Route, RFC 5922 §7.5); empty when the context has no certificate. */
const struct tls_identity_set *tls_ctx_identities(const struct tls_ctx *ctx);

/* Server (spec rule 10, RFC 6066 §3): add the certificate of another SIP
 * domain served on the same socket. A client whose SNI is one of the
 * certificate's identities (RFC 5922 §7.1, ASCII case-insensitive, whole
 * name) gets this certificate; an SNI matching none, or no SNI, gets the
 * default (cfg->cert_file). The default and then the added certificates are
 * searched in order: the first holding the name wins. Verification of the
 * client certificate is the context's and does not change with the choice.
 * `key_file` NULL: the key is in cert_file; `chain_file` optional. Call
 * before the context is used (not thread-safe against handshakes). Returns
 * 0; -EINVAL (not a server context, or the certificate has no SIP domain
 * identity so SNI could never select it), -ENOENT / -EBADMSG /
 * -EKEYREJECTED as tls_ctx_create(), -ENOSPC (TLS_CTX_MAX_DOMAINS), -ENOMEM. */
int tls_ctx_add_domain(struct tls_ctx *server, const char *cert_file, const char *key_file,
		       const char *chain_file);

/* The SIP domain identities of the certificate `i` of a server context:
 * 0 the default, 1..n those added in order; NULL past the end. */
const struct tls_identity_set *tls_ctx_domain_identities(const struct tls_ctx *ctx, size_t i);

/* Does any certificate of the context hold `domain` as an identity? */
bool tls_ctx_has_identity(const struct tls_ctx *ctx, struct str domain);

/* Counters of one context (read while it is in use: relaxed values). */
struct tls_ctx_stats {
	uint64_t sni_matched;	 /* server: SNI chose the certificate */
	uint64_t sni_default;	 /* server: no SNI or unknown SNI, default served */
	uint64_t full;		 /* handshakes that ran the verify decision */
	uint64_t resumed;	 /* handshakes that resumed and passed the re-check */
	uint64_t resume_refused; /* sessions or tickets not used: a re-check failed */
	uint64_t tickets_issued; /* server: tickets carrying our decision record */
	uint64_t cached;	 /* client: sessions in the cache now */
};
void tls_ctx_stats_get(struct tls_ctx *ctx, struct tls_ctx_stats *out);

/* Client: forget every cached session (e.g. after a trust store reload). */
void tls_ctx_sessions_flush(struct tls_ctx *ctx);

/* A ring of session ticket keys (RFC 5077 §4 "recommended ticket
 * construction": AES-256-CBC + HMAC-SHA256, 16-byte key name): the current
 * key encrypts, the current and the previous one decrypt (a ticket under
 * the previous key is renewed); older tickets do a full handshake. Keys come
 * from RAND_priv_bytes() and never leave the process. Rotation happens
 * lazily when a key is needed and `rotate_s` seconds (monotonic clock)
 * have passed since the last one. Thread-safe (a mutex): one ring may serve
 * the contexts of every worker. Reference counted. */
struct tls_ticket_keys;

/* Make a ring with a fresh current key; rotate_s 0: the default. Returns 0
 * and *out, -ENOMEM, -EIO (no randomness). Drop with tls_ticket_keys_destroy(). */
int tls_ticket_keys_create(unsigned rotate_s, struct tls_ticket_keys **out);

/* Rotate now: current becomes previous, a fresh key is current (e.g. on an
 * operator's request). Returns 0, -EIO (no randomness: keys unchanged). */
int tls_ticket_keys_rotate(struct tls_ticket_keys *keys);

/* Drop the caller's reference (contexts hold their own). NULL is allowed. */
void tls_ticket_keys_destroy(struct tls_ticket_keys *keys);

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
	bool resumed;		  /* the session was resumed: the record below was
				     restored from it and checked again */
	/* The strings below are NUL-terminated, owned by the SSL (or its
	 * context), "" when not set. */
	size_t wanted_len;
	const char *wanted; /* client: the domain to authenticate */
	size_t served_domain_len;
	const char *served_domain; /* server: the identity (of our
							  certificate sent) the client
							  asked for by SNI, else the
							  listener's default domain:
							  the host to Record-Route
							  with (RFC 5922 §7.5) */
	/* The peer's identity set (also when refused); never NULL, owned by
	 * the SSL. Once the handshake has ended it is a compact copy
	 * (tls_identity_set_dup): read it through the identity functions. */
	const struct tls_identity_set *ids;
};

/* A client SSL that will authenticate the server as SIP domain `domain`
 * (RFC 5922 §7.3: the domain of the URI given to RFC 3263, never the SRV
 * target; spec rule 5). Sends `domain` as SNI unless it is an IP literal.
 * The verify callback aborts the handshake when the server is not
 * authenticated for `domain`, so no application byte is ever sent to it.
 * With resumption, offers a session cached for the same `domain` (never
 * another one) once its record passes the checks again. Returns 0 and *out
 * in connect state (attach a BIO/fd, then drive SSL_do_handshake()),
 * -EINVAL (ctx not a client context, domain empty, too long or with a NUL),
 * -ENOMEM. Free with SSL_free(). */
int tls_ssl_client_create(struct tls_ctx *ctx, struct str domain, SSL **out);

/* As tls_ssl_client_create(), with the cache key made of `domain` and
 * `target` (opaque, at most TLS_TARGET_MAX bytes, e.g. "192.0.2.7:5061"):
 * sessions of different servers of one domain do not replace each other,
 * and a session is offered only to the target that issued it. An empty
 * target is the same as tls_ssl_client_create(). -EINVAL also for a target
 * too long or with a NUL. */
int tls_ssl_client_create_at(struct tls_ctx *ctx, struct str domain, struct str target, SSL **out);

/* A server SSL in accept state; it records the client's identity set, or
 * 'unauthenticated' when the client sends no certificate, and the domain it
 * served (SNI). On a resumed session the record of the full handshake is
 * restored after it passed the checks again. Returns 0 and *out, -EINVAL,
 * -ENOMEM. Free with SSL_free(). */
int tls_ssl_server_create(struct tls_ctx *ctx, SSL **out);

/* The peer record of an SSL made by tls_ssl_*_create(), or NULL for other
 * SSL objects. Owned by the SSL: valid until SSL_free(). */
const struct tls_peer *tls_ssl_peer(const SSL *ssl);

/* Call once SSL_do_handshake() returned 1. Re-checks what the callback
 * decided (or, on a resumed session, what was restored and re-checked): a
 * client must have authenticated the wanted domain; a server whose peer
 * sent a certificate must have accepted it. Returns 0, or -EPERM when the
 * connection must be closed without sending anything. */
int tls_ssl_handshake_done(SSL *ssl);

/* One line for the log or the user: `auth=... verdict=... wanted=...
 * found={...} source=... served=... resumed=yes|no sha256=... reason="..."`
 * (bounded, always NUL-terminated). Returns the length. */
size_t tls_peer_format(const struct tls_peer *peer, char *buf, size_t size);

#endif
