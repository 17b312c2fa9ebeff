/* tls_session.c: session resumption that never skips the identity decision:
 * rotating ticket keys and a decision record in every ticket (server), a
 * session cache keyed by the wanted SIP domain (client), and the re-check
 * of the record whenever a session is about to be used or was resumed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "base/log.h"
#include "tls/tls_private.h"

/* ---- ticket keys ---- */

/* RFC 5077 §4: key_name (16), AES-256-CBC key, HMAC-SHA256 key. This is
 * the layout OpenSSL's ticket format expects from the key callback. */
struct tls_ticket_key {
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char hmac[32];
};

struct tls_ticket_keys {
	pthread_mutex_t lock;
	unsigned refs;
	uint64_t period_ms;
	uint64_t rotated_ms; /* monotonic time the current key became current */
	struct tls_ticket_key cur, prev;
	bool has_prev;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int key_fresh(struct tls_ticket_key *k)
{
	if (RAND_bytes(k->name, sizeof(k->name)) != 1 ||
	    RAND_priv_bytes(k->aes, sizeof(k->aes)) != 1 ||
	    RAND_priv_bytes(k->hmac, sizeof(k->hmac)) != 1) {
		ERR_clear_error();
		OPENSSL_cleanse(k, sizeof(*k));
		return -EIO;
	}
	return 0;
}

static int ring_rotate_locked(struct tls_ticket_keys *r, uint64_t now)
{
	struct tls_ticket_key k;
	if (key_fresh(&k) < 0)
		return -EIO;
	r->prev = r->cur;
	r->has_prev = true;
	r->cur = k;
	r->rotated_ms = now;
	OPENSSL_cleanse(&k, sizeof(k));
	return 0;
}

/* Rotate when the period has passed. After two periods without use the
 * current key is older than a "previous" may be: both go. */
static int ring_tick_locked(struct tls_ticket_keys *r, uint64_t now)
{
	uint64_t elapsed = now - r->rotated_ms;
	if (elapsed < r->period_ms)
		return 0;
	if (ring_rotate_locked(r, now) < 0)
		return -EIO;
	if (elapsed >= 2 * r->period_ms) {
		OPENSSL_cleanse(&r->prev, sizeof(r->prev));
		r->has_prev = false;
	}
	return 0;
}

int tls_ticket_keys_create(unsigned rotate_s, struct tls_ticket_keys **out)
{
	struct tls_ticket_keys *r;
	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	if (pthread_mutex_init(&r->lock, NULL) != 0) {
		free(r);
		return -ENOMEM;
	}
	r->refs = 1;
	r->period_ms = (uint64_t)(rotate_s ? rotate_s : TLS_TICKET_ROTATE_DEFAULT_S) * 1000u;
	r->rotated_ms = mono_ms();
	if (key_fresh(&r->cur) < 0) {
		pthread_mutex_destroy(&r->lock);
		free(r);
		return -EIO;
	}
	*out = r;
	return 0;
}

int tls_ticket_keys_rotate(struct tls_ticket_keys *keys)
{
	pthread_mutex_lock(&keys->lock);
	int rc = ring_rotate_locked(keys, mono_ms());
	pthread_mutex_unlock(&keys->lock);
	return rc;
}

static struct tls_ticket_keys *keys_ref(struct tls_ticket_keys *keys)
{
	pthread_mutex_lock(&keys->lock);
	keys->refs++;
	pthread_mutex_unlock(&keys->lock);
	return keys;
}

void tls_ticket_keys_destroy(struct tls_ticket_keys *keys)
{
	if (!keys)
		return;
	pthread_mutex_lock(&keys->lock);
	unsigned left = --keys->refs;
	pthread_mutex_unlock(&keys->lock);
	if (left)
		return;
	pthread_mutex_destroy(&keys->lock);
	OPENSSL_cleanse(keys, sizeof(*keys));
	free(keys);
}

/* OpenSSL's ticket key callback: enc = 1 to seal a new ticket with the
 * current key; enc = 0 to open one: 1 under the current key, 2 under the
 * previous one (the ticket is renewed), 0 for any other (a full handshake). */
static int ticket_key_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv,
			 EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct tls_peer_state *st = tls_peer_state_get(ssl);
	struct tls_ticket_keys *r = st ? st->ctx->keys : NULL;
	struct tls_ticket_key k;
	char digest[] = "SHA256";
	int found = 0;

	if (!r)
		return 0;
	pthread_mutex_lock(&r->lock);
	if (ring_tick_locked(r, mono_ms()) == 0) {
		if (enc) {
			k = r->cur;
			found = 1;
		} else if (!memcmp(key_name, r->cur.name, sizeof(r->cur.name))) {
			k = r->cur;
			found = 1;
		} else if (r->has_prev && !memcmp(key_name, r->prev.name, sizeof(r->prev.name))) {
			k = r->prev;
			found = 2;
		}
	}
	pthread_mutex_unlock(&r->lock);
	if (!found)
		return 0;

	const EVP_CIPHER *cipher = EVP_aes_256_cbc();
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac)),
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
	    OSSL_PARAM_construct_end(),
	};
	bool ok;
	if (enc) {
		memcpy(key_name, k.name, sizeof(k.name));
		ok = RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) == 1 &&
		     EVP_EncryptInit_ex(cctx, cipher, NULL, k.aes, iv) == 1;
	} else {
		ok = EVP_DecryptInit_ex(cctx, cipher, NULL, k.aes, iv) == 1;
	}
	ok = ok && EVP_MAC_CTX_set_params(hctx, params) == 1;
	OPENSSL_cleanse(&k, sizeof(k));
	if (!ok) {
		ERR_clear_error();
		return 0; /* no ticket / not opened: a full handshake */
	}
	return found;
}

/* ---- the decision record ---- */

/* Ticket application data (sealed in the ticket with the session):
 * version, auth, has_cert, verified_at (8, big endian), the peer
 * certificate's SHA-256 (32), then the served domain (1 + up to 253). */
#define REC_VERSION 1
#define REC_FIXED (3 + 8 + 32 + 1)
#define REC_MAX (REC_FIXED + TLS_IDENTITY_MAX_NAME)

static size_t rec_encode(const struct tls_resume_rec *rec, const struct tls_peer *p,
			 unsigned char *buf)
{
	uint64_t t = (uint64_t)rec->verified_at;
	size_t n = p->served_domain_len;
	buf[0] = REC_VERSION;
	buf[1] = rec->auth;
	buf[2] = rec->has_cert;
	for (int i = 0; i < 8; i++)
		buf[3 + i] = (unsigned char)(t >> (56 - 8 * i));
	memcpy(buf + 11, rec->sha256, 32);
	buf[43] = (unsigned char)n;
	memcpy(buf + REC_FIXED, p->served_domain, n);
	return REC_FIXED + n;
}

static int rec_decode(SSL_SESSION *sess, struct tls_resume_rec *rec, struct str *served)
{
	void *data = NULL;
	size_t len = 0;
	if (!SSL_SESSION_get0_ticket_appdata(sess, &data, &len) || !data || len < REC_FIXED) {
		ERR_clear_error();
		return -EBADMSG;
	}
	const unsigned char *b = data;
	if (b[0] != REC_VERSION || b[2] > 1 || len != REC_FIXED + (size_t)b[43])
		return -EBADMSG;
	uint64_t t = 0;
	for (int i = 0; i < 8; i++)
		t = t << 8 | b[3 + i];
	memset(rec, 0, sizeof(*rec));
	rec->auth = b[1];
	rec->has_cert = b[2];
	rec->verified_at = (int64_t)t;
	memcpy(rec->sha256, b + 11, 32);
	*served = str_make((const char *)b + REC_FIXED, b[43]);
	return 0;
}

/* The identity decision for a session about to be used or just resumed,
 * made again from what the session holds: the peer certificate is the one
 * that was decided on (SHA-256), it is within its validity period, its
 * names and EKU pass the current policy and — for a client — it holds the
 * wanted domain (RFC 5922 §7.2/§7.3); the decision it rests on is younger
 * than the context's lifetime (TLS 1.3 gives fresh tickets on each
 * resumption: the age counts from the full handshake, so resuming never
 * prolongs a decision). The chain verdict is the one thing carried over:
 * it is bound to the trust settings by the session id context and to the
 * lifetime. `ids` (may be NULL) receives the peer's identity set. */
static enum tls_verdict resume_check(const struct tls_peer_state *st, X509 *cert,
				     const struct tls_resume_rec *rec, struct tls_identity_set *ids)
{
	const struct tls_ctx *ctx = st->ctx;
	bool client = st->peer.side == TLS_SIDE_CLIENT;
	time_t now = time(NULL);
	unsigned char fp[32];
	unsigned int len = 0;

	if (rec->verified_at <= 0 || rec->verified_at > (int64_t)now + 1 ||
	    (int64_t)now - rec->verified_at >= (int64_t)ctx->resume_lifetime_s)
		return TLS_VERDICT_EXPIRED;
	if (rec->auth == TLS_PEER_UNAUTHENTICATED) {
		/* A client without a certificate (spec rule 8); never for a
		 * client's view of a server, nor where one is required. */
		if (client || cert || rec->has_cert || ctx->require_client_cert)
			return TLS_VERDICT_UNTRUSTED;
		if (ids)
			tls_identity_set_init(ids);
		return TLS_VERDICT_OK;
	}
	if (rec->auth != TLS_PEER_AUTHENTICATED || !rec->has_cert || !cert)
		return TLS_VERDICT_UNTRUSTED;
	if (!X509_digest(cert, EVP_sha256(), fp, &len) || len != sizeof(fp) ||
	    CRYPTO_memcmp(fp, rec->sha256, sizeof(fp)) != 0) {
		ERR_clear_error();
		return TLS_VERDICT_UNTRUSTED;
	}
	int after = X509_cmp_time(X509_get0_notAfter(cert), &now);
	int before = X509_cmp_time(X509_get0_notBefore(cert), &now);
	if (after != 1)
		return after == 0 ? TLS_VERDICT_UNTRUSTED : TLS_VERDICT_EXPIRED;
	if (before != -1)
		return before == 0 ? TLS_VERDICT_UNTRUSTED : TLS_VERDICT_NOT_YET_VALID;
	struct tls_identity_set scratch;
	struct str want = client ? str_make(st->peer.wanted, st->peer.wanted_len) : STR_NULL;
	enum tls_verdict v =
	    tls_identity_authenticate(cert, &st->policy, client ? TLS_ROLE_SERVER : TLS_ROLE_CLIENT,
				      want, ids ? ids : &scratch);
	ERR_clear_error();
	return v;
}

static void stat_inc(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* ---- server: tickets ---- */

/* A ticket is being made: seal the decision record into it. A resumed
 * connection passes on the record it was resumed with (with its original
 * time); a full handshake the verify callback's result. */
static int ticket_gen_cb(SSL *ssl, void *arg)
{
	struct tls_peer_state *st = tls_peer_state_get(ssl);
	SSL_SESSION *sess = SSL_get0_session(ssl);
	unsigned char buf[REC_MAX];
	struct tls_resume_rec rec;

	if (!sess)
		return 1;
	/* A ticket without record never resumes. Clear what a TLS 1.3
	 * resumption copied from the old session first. */
	(void)SSL_SESSION_set1_ticket_appdata(sess, NULL, 0);
	if (!st)
		return 1;
	const struct tls_peer *p = &st->peer;
	if (SSL_session_reused(ssl)) {
		if (!st->resume.valid || p->auth == TLS_PEER_REFUSED)
			return 1;
		rec = st->resume;
	} else {
		if (p->auth == TLS_PEER_REFUSED ||
		    (p->auth == TLS_PEER_AUTHENTICATED && (!p->has_cert || !st->verified_at)))
			return 1;
		memset(&rec, 0, sizeof(rec));
		rec.auth = (uint8_t)p->auth;
		rec.has_cert = p->has_cert;
		memcpy(rec.sha256, p->sha256, sizeof(rec.sha256));
		rec.verified_at = st->verified_at ? st->verified_at : tls_now();
	}
	size_t len = rec_encode(&rec, p, buf);
	if (!SSL_SESSION_set1_ticket_appdata(sess, buf, len)) {
		ERR_clear_error();
		return 1;
	}
	stat_inc(&st->ctx->stats.tickets_issued);
	return 1;
}

/* A ticket was opened (or not): use it only when its record passes the
 * checks for this handshake — the domain the SNI selects now must be the
 * one served when the session was made (our certificate is not sent again
 * on resumption) — else a full handshake (fail closed). */
static SSL_TICKET_RETURN ticket_dec_cb(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname,
				       size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
	struct tls_peer_state *st = tls_peer_state_get(ssl);
	struct tls_resume_rec rec;
	struct str served;

	switch (status) {
	case SSL_TICKET_SUCCESS:
	case SSL_TICKET_SUCCESS_RENEW:
		break;
	case SSL_TICKET_FATAL_ERR_MALLOC:
	case SSL_TICKET_FATAL_ERR_OTHER:
		return SSL_TICKET_RETURN_ABORT;
	default: /* none, empty, unknown or old key: full handshake, new ticket */
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	}
	if (!st)
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	st->resume.valid = false;
	enum tls_verdict v = TLS_VERDICT_UNTRUSTED;
	const char *why = NULL;
	if (rec_decode(sess, &rec, &served) < 0)
		why = "no decision record";
	else if (!str_case_eq(served, str_make(st->peer.served_domain, st->peer.served_domain_len)))
		why = "made for another served domain";
	else if ((v = resume_check(st, SSL_SESSION_get0_peer(sess), &rec, NULL)) != TLS_VERDICT_OK)
		why = "re-check failed";
	if (why) {
		stat_inc(&st->ctx->stats.resume_refused);
		LOG_DEBUG("tls.resume",
			  "what=\"ticket not used\" side=server why=\"%s\" verdict=%s served=%s",
			  why, tls_verdict_name(v),
			  st->peer.served_domain_len ? st->peer.served_domain : "-");
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	}
	st->resume = rec;
	st->resume.valid = true;
	/* TLS 1.3: always renew, so the client gets a fresh ticket for the one
	 * it used (RFC 8446 §C.4; OpenSSL sends none otherwise). TLS 1.2: only
	 * a ticket under the previous key. */
	return status == SSL_TICKET_SUCCESS_RENEW || SSL_version(ssl) == TLS1_3_VERSION
		   ? SSL_TICKET_RETURN_USE_RENEW
		   : SSL_TICKET_RETURN_USE;
}

/* ---- client: the session cache ---- */

/* wanted domain (lower-cased) '\0' target */
static size_t cache_key(const struct tls_peer_state *st, char *key)
{
	size_t n = st->peer.wanted_len;
	for (size_t i = 0; i < n; i++)
		key[i] = ascii_lower(st->peer.wanted[i]);
	key[n++] = '\0';
	if (st->target_len)
		memcpy(key + n, st->target, st->target_len);
	return n + st->target_len;
}

static struct tls_cache_entry *cache_find(struct tls_session_cache *c, const char *key, size_t len)
{
	for (size_t i = 0; i < c->size; i++) {
		struct tls_cache_entry *e = &c->entries[i];
		if (e->sess && e->key_len == len && !memcmp(e->key, key, len))
			return e;
	}
	return NULL;
}

static void entry_clear(struct tls_cache_entry *e)
{
	SSL_SESSION_free(e->sess);
	memset(e, 0, sizeof(*e));
}

/* OpenSSL made a session (TLS 1.2: at the end of a full handshake; TLS 1.3:
 * for every NewSessionTicket). Keep a copy, only for a server we
 * authenticated for the wanted domain. A copy, because OpenSSL marks the
 * SSL's own session object not resumable when the SSL is freed before we
 * sent close_notify (the old "bad session" rule; TLS 1.1+ no longer asks
 * for it, RFC 5246 §7.2.1) — and peers often close first. Returns 0: the
 * SSL keeps its reference. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_peer_state *st = tls_peer_state_get(ssl);
	char key[sizeof(((struct tls_cache_entry *)0)->key)];
	unsigned char fp[32];
	unsigned int fplen = 0;

	if (!st || !st->ctx->cache_ready)
		return 0;
	const struct tls_peer *p = &st->peer;
	X509 *cert = SSL_SESSION_get0_peer(sess);
	if (p->side != TLS_SIDE_CLIENT || p->auth != TLS_PEER_AUTHENTICATED || !p->has_cert ||
	    !st->verified_at || !cert || !SSL_SESSION_is_resumable(sess) ||
	    !X509_digest(cert, EVP_sha256(), fp, &fplen) || fplen != sizeof(fp) ||
	    memcmp(fp, p->sha256, sizeof(fp)) != 0) {
		ERR_clear_error();
		return 0;
	}
	SSL_SESSION *copy = SSL_SESSION_dup(sess);
	if (!copy) {
		ERR_clear_error();
		return 0;
	}
	size_t len = cache_key(st, key);
	struct tls_session_cache *c = &st->ctx->cache;
	pthread_mutex_lock(&c->lock);
	struct tls_cache_entry *e = cache_find(c, key, len);
	for (size_t i = 0; !e && i < c->size; i++)
		if (!c->entries[i].sess)
			e = &c->entries[i];
	if (!e) { /* full: replace the oldest */
		e = &c->entries[0];
		for (size_t i = 1; i < c->size; i++)
			if (c->entries[i].stamp < e->stamp)
				e = &c->entries[i];
	}
	if (e->sess)
		entry_clear(e);
	e->sess = copy;
	e->stamp = ++c->next_stamp;
	e->verified_at = st->verified_at;
	memcpy(e->sha256, fp, sizeof(fp));
	memcpy(e->key, key, len);
	e->key_len = (uint16_t)len;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void tls_session_client_offer(struct tls_ctx *ctx, SSL *ssl, struct tls_peer_state *st)
{
	char key[sizeof(((struct tls_cache_entry *)0)->key)];
	struct tls_resume_rec rec;
	SSL_SESSION *sess;
	bool tls13;

	if (!ctx->cache_ready)
		return;
	size_t len = cache_key(st, key);
	struct tls_session_cache *c = &ctx->cache;
	pthread_mutex_lock(&c->lock);
	struct tls_cache_entry *e = cache_find(c, key, len);
	if (!e) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	memset(&rec, 0, sizeof(rec));
	rec.auth = TLS_PEER_AUTHENTICATED;
	rec.has_cert = true;
	rec.verified_at = e->verified_at;
	memcpy(rec.sha256, e->sha256, sizeof(rec.sha256));
	/* RFC 8446 §C.4: a TLS 1.3 ticket is used once (the connection gets
	 * new ones): the entry leaves the cache. A TLS 1.2 session may be
	 * reused: the SSL gets a copy (see new_session_cb()). */
	tls13 = SSL_SESSION_get_protocol_version(e->sess) == TLS1_3_VERSION;
	if (tls13) {
		sess = e->sess;
		memset(e, 0, sizeof(*e)); /* the reference is ours now */
	} else {
		sess = SSL_SESSION_dup(e->sess);
	}
	pthread_mutex_unlock(&c->lock);
	if (!sess) {
		ERR_clear_error();
		return;
	}

	int64_t now = tls_now();
	const char *why = NULL;
	enum tls_verdict v = TLS_VERDICT_OK;
	if (!SSL_SESSION_is_resumable(sess))
		why = "not resumable";
	else if (now >=
		 (int64_t)SSL_SESSION_get_time(sess) + (int64_t)SSL_SESSION_get_timeout(sess))
		why = "session timed out";
	else if ((v = resume_check(st, SSL_SESSION_get0_peer(sess), &rec, NULL)) != TLS_VERDICT_OK)
		why = "re-check failed";
	else if (SSL_set_session(ssl, sess) != 1)
		why = "cannot set";
	if (!why) {
		st->resume = rec;
		st->resume.valid = true;
	} else {
		ERR_clear_error();
		stat_inc(&ctx->stats.resume_refused);
		LOG_DEBUG("tls.resume",
			  "what=\"cached session not offered\" side=client wanted=%s why=\"%s\" "
			  "verdict=%s",
			  st->peer.wanted, why, tls_verdict_name(v));
		if (!tls13) { /* it will not get better: drop it */
			pthread_mutex_lock(&c->lock);
			e = cache_find(c, key, len);
			if (e)
				entry_clear(e);
			pthread_mutex_unlock(&c->lock);
		}
	}
	SSL_SESSION_free(sess);
}

/* ---- both ---- */

void tls_session_finish(const SSL *ssl, struct tls_peer_state *st)
{
	struct tls_peer *p = &st->peer;
	X509 *cert = SSL_get0_peer_certificate(ssl);
	enum tls_verdict v = TLS_VERDICT_UNTRUSTED;

	p->resumed = true;
	/* The set is written only for a certificate; without memory for it,
	 * the resumption is refused (fail closed). */
	struct tls_identity_set *ids = cert ? tls_peer_ids_work(st) : NULL;
	if (st->resume.valid && (!cert || ids))
		v = resume_check(st, cert, &st->resume, ids);
	if (v != TLS_VERDICT_OK) {
		/* Resumed with a session we did not check, or the check no
		 * longer passes: tls_ssl_handshake_done() refuses it. */
		p->has_cert = cert != NULL;
		tls_peer_refuse(p, v, X509_V_ERR_APPLICATION_VERIFICATION, 0);
		stat_inc(&st->ctx->stats.resume_refused);
		LOG_DEBUG("tls.resume", "what=\"resumed session refused\" verdict=%s",
			  tls_verdict_name(v));
		return;
	}
	p->auth = (enum tls_peer_auth)st->resume.auth;
	p->verdict = TLS_VERDICT_OK;
	p->has_cert = st->resume.has_cert;
	memcpy(p->sha256, st->resume.sha256, sizeof(p->sha256));
	st->verified_at = st->resume.verified_at;
	stat_inc(&st->ctx->stats.resumed);
}

int tls_session_ctx_setup(struct tls_ctx *ctx, const struct tls_ctx_cfg *cfg)
{
	SSL_CTX *s = ctx->ssl_ctx;
	int rc;

	/* OpenSSL's own session lifetime (and the ticket lifetime hint) is
	 * ours; our record's age check is the binding one. */
	SSL_CTX_set_timeout(s, (long)ctx->resume_lifetime_s);
	if (ctx->side == TLS_SIDE_SERVER) {
		if (cfg->ticket_keys)
			ctx->keys = keys_ref(cfg->ticket_keys);
		else if ((rc = tls_ticket_keys_create(cfg->ticket_rotate_s, &ctx->keys)) < 0)
			return rc;
		/* Sessions live in tickets only: every resumption passes
		 * through ticket_dec_cb; there is no server cache to consult. */
		SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
		SSL_CTX_clear_options(s, SSL_OP_NO_TICKET);
		if (!SSL_CTX_set_num_tickets(s, TLS_TICKETS_PER_HANDSHAKE) ||
		    !SSL_CTX_set_tlsext_ticket_key_evp_cb(s, ticket_key_cb) ||
		    !SSL_CTX_set_session_ticket_cb(s, ticket_gen_cb, ticket_dec_cb, NULL)) {
			ERR_clear_error();
			return -ENOMEM;
		}
		return 0;
	}
	size_t n = cfg->session_cache_size ? cfg->session_cache_size : TLS_SESSION_CACHE_DEFAULT;
	if (n > TLS_SESSION_CACHE_MAX)
		n = TLS_SESSION_CACHE_MAX;
	ctx->cache.entries = calloc(n, sizeof(*ctx->cache.entries));
	if (!ctx->cache.entries)
		return -ENOMEM;
	if (pthread_mutex_init(&ctx->cache.lock, NULL) != 0) {
		free(ctx->cache.entries);
		ctx->cache.entries = NULL;
		return -ENOMEM;
	}
	ctx->cache.size = n;
	ctx->cache_ready = true;
	/* Our cache, not OpenSSL's: looked up by wanted domain, not by
	 * session id, and only after the re-check. */
	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(s, new_session_cb);
	return 0;
}

void tls_session_ctx_free(struct tls_ctx *ctx)
{
	tls_ticket_keys_destroy(ctx->keys);
	ctx->keys = NULL;
	if (ctx->cache_ready) {
		for (size_t i = 0; i < ctx->cache.size; i++)
			SSL_SESSION_free(ctx->cache.entries[i].sess);
		free(ctx->cache.entries);
		pthread_mutex_destroy(&ctx->cache.lock);
		ctx->cache_ready = false;
	}
}

void tls_ctx_stats_get(struct tls_ctx *ctx, struct tls_ctx_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->sni_matched = atomic_load_explicit(&ctx->stats.sni_matched, memory_order_relaxed);
	out->sni_default = atomic_load_explicit(&ctx->stats.sni_default, memory_order_relaxed);
	out->full = atomic_load_explicit(&ctx->stats.full, memory_order_relaxed);
	out->resumed = atomic_load_explicit(&ctx->stats.resumed, memory_order_relaxed);
	out->resume_refused =
	    atomic_load_explicit(&ctx->stats.resume_refused, memory_order_relaxed);
	out->tickets_issued =
	    atomic_load_explicit(&ctx->stats.tickets_issued, memory_order_relaxed);
	if (ctx->cache_ready) {
		pthread_mutex_lock(&ctx->cache.lock);
		for (size_t i = 0; i < ctx->cache.size; i++)
			out->cached += ctx->cache.entries[i].sess != NULL;
		pthread_mutex_unlock(&ctx->cache.lock);
	}
}

void tls_ctx_sessions_flush(struct tls_ctx *ctx)
{
	if (!ctx->cache_ready)
		return;
	pthread_mutex_lock(&ctx->cache.lock);
	for (size_t i = 0; i < ctx->cache.size; i++)
		if (ctx->cache.entries[i].sess)
			entry_clear(&ctx->cache.entries[i]);
	pthread_mutex_unlock(&ctx->cache.lock);
}
