/* tls_private.h: what tls_ctx.c and tls_session.c share; not for other
 * layers (they use tls_ctx.h). */
#ifndef SIPSD_TLS_TLS_PRIVATE_H
#define SIPSD_TLS_TLS_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "tls/tls_ctx.h"

/* One more certificate a server context may present, chosen by SNI
 * (RFC 6066 §3; spec rule 10). */
struct tls_domain_cert {
	X509 *cert;
	EVP_PKEY *key;
	STACK_OF(X509) * chain; /* intermediates to send; may be NULL */
	struct tls_identity_set ids;
};

/* Client session cache entry (tls_session.c). */
struct tls_cache_entry {
	SSL_SESSION *sess; /* NULL: free slot */
	uint64_t stamp;	   /* insertion order, for eviction */
	int64_t verified_at;
	unsigned char sha256[32]; /* the server certificate that was authenticated */
	uint16_t key_len;
	char key[TLS_IDENTITY_MAX_NAME + 1 + TLS_TARGET_MAX + 1]; /* wanted '\0' target */
};

struct tls_session_cache {
	pthread_mutex_t lock;
	struct tls_cache_entry *entries;
	size_t size; /* slots */
	uint64_t next_stamp;
};

struct tls_ctx {
	SSL_CTX *ssl_ctx; /* owns this struct (ex_data): freed with the last SSL */
	enum tls_side side;
	struct tls_identity_policy policy;
	bool require_client_cert;
	bool resume;
	unsigned resume_lifetime_s;
	struct tls_identity_set own; /* our default certificate's identities */
	size_t default_len;
	char default_domain[TLS_IDENTITY_MAX_NAME + 1]; /* server: without SNI match */
	struct tls_domain_cert *domains;		/* server: SNI certificates */
	size_t ndomains;
	struct tls_ticket_keys *keys; /* server with resumption */
	bool cache_ready;
	struct tls_session_cache cache; /* client with resumption */
	struct {
		_Atomic uint64_t sni_matched, sni_default, full, resumed, resume_refused,
		    tickets_issued;
	} stats;
};

/* What a resumption must restore: the decision of the full handshake that
 * made the session (checked again before it is used). */
struct tls_resume_rec {
	bool valid;
	uint8_t auth; /* enum tls_peer_auth */
	bool has_cert;
	unsigned char sha256[32];
	int64_t verified_at; /* wall clock of the full handshake's decision */
};

/* Per-SSL state, hung on the SSL as ex_data and freed with it. */
struct tls_peer_state {
	struct tls_peer peer;
	struct tls_identity_policy policy;
	struct tls_ctx *ctx;	      /* alive as long as the SSL (it holds the SSL_CTX) */
	int cert_index;		      /* server: -1 no ClientHello yet, 0 default,
					 i + 1 ctx->domains[i] */
	bool sni_matched;	      /* server: the SNI chose the certificate */
	bool finished;		      /* the end of the handshake was processed */
	int64_t verified_at;	      /* when the verify callback accepted (0: not) */
	struct tls_resume_rec resume; /* offered (client) / accepted ticket (server) */
	uint16_t target_len;
	char *target;	  /* client: cache key part (NULL when empty) */
	char *wanted_buf; /* client: what peer.wanted points at */
	char *served_buf; /* server: peer.served_domain when not ctx->default_domain */
	/* peer.ids points at one of these (or at the static empty set): the
	 * full-size set while a certificate is being decided on, a compact
	 * copy once the handshake has ended. Most clients (UAs) send no
	 * certificate and never get either. */
	struct tls_identity_set *ids_work;
	struct tls_identity_set *ids_compact;
};

/* The full-size identity set of st->peer to write into (allocated on first
 * use; st->peer.ids then points at it). NULL when out of memory. */
struct tls_identity_set *tls_peer_ids_work(struct tls_peer_state *st);

/* The per-SSL state of an SSL made here, or NULL. */
struct tls_peer_state *tls_peer_state_get(const SSL *ssl);

/* Record a refusal on the peer; the first reason wins. */
void tls_peer_refuse(struct tls_peer *p, enum tls_verdict v, int x509_err, int depth);

/* Wall clock in seconds. */
int64_t tls_now(void);

/* ---- tls_session.c ---- */

/* Set up resumption on a new context (ctx->resume is true): tickets and
 * key ring for a server, the session cache for a client. Returns 0 or
 * -ENOMEM. */
int tls_session_ctx_setup(struct tls_ctx *ctx, const struct tls_ctx_cfg *cfg);

/* Free what tls_session_ctx_setup() made (at SSL_CTX free). */
void tls_session_ctx_free(struct tls_ctx *ctx);

/* Client: offer a cached session for (wanted, target) after checking it
 * again; nothing happens when there is none or it fails a check. */
void tls_session_client_offer(struct tls_ctx *ctx, SSL *ssl, struct tls_peer_state *st);

/* At the end of a resumed handshake (once): restore the decision recorded
 * with the session into st->peer after checking it again; a resumed session
 * that was not checked when offered/accepted is refused (fail closed). */
void tls_session_finish(const SSL *ssl, struct tls_peer_state *st);

#endif
