/* test_tls_resume.c: session resumption that never skips the identity
 * decision (docs/tls-identity.md): the decision of the full handshake is
 * restored and checked again on both sides, a session is used only for the
 * SIP domain it was made for, ticket keys rotate (current + previous), the
 * session id context binds tickets to the trust settings, the decision's
 * age is bounded across resumptions, and resumption can be switched off.
 * Real TLS 1.3 and TLS 1.2 handshakes on a socketpair; certificates made at
 * test time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/log.h"
#include "tls/identity.h"
#include "tls/tls_ctx.h"
#include "tls_harness.h"

static int group_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "%s/sipsd-resume-test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	EVP_PKEY *ca_key = EVP_EC_gen("P-256");
	X509 *ca = cert_make(ca_key, "sipsd test root", NULL, NULL, true, NULL, NULL);
	pem_write("ca", ca, NULL);
	/* One certificate for two SIP domains: a session made for one must
	 * still never be offered for the other. */
	leaf_make("multi", false, "multi", "URI:sip:example.com,URI:sip:example.net", NULL, ca,
		  ca_key);
	leaf_make("com", false, "example.com", "URI:sip:example.com", NULL, ca, ca_key);
	leaf_make("net", false, "example.net", "URI:sip:example.net", NULL, ca, ca_key);
	leaf_make("client", false, "client", "URI:sip:client.example", "1.3.6.1.5.5.7.3.20", ca,
		  ca_key);
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	return 0;
}

/* Server -> client, then client -> server: the client's read also
 * processes TLS 1.3 NewSessionTicket messages. */
static bool conn_exchange(struct conn *k)
{
	static const char pong[] = "SIP/2.0 200 OK\r\n";
	char buf[64];
	ERR_clear_error();
	if (SSL_write(k->s.ssl, pong, (int)sizeof(pong) - 1) != (int)sizeof(pong) - 1)
		return false;
	if (app_read(&k->c, buf, (int)sizeof(pong) - 1) != (int)sizeof(pong) - 1)
		return false;
	return conn_data_passes(k);
}

/* ---- contexts ---- */

struct srv_opts {
	const char *cert; /* base name: NAME.pem / NAME.key */
	const char *ca;	  /* file name of the trust anchors */
	bool require_client_cert;
	bool legacy_cn;
	bool resume;
	unsigned lifetime_s;
	struct tls_ticket_keys *keys;
};

static struct srv_opts srv_defaults(const char *cert)
{
	return (struct srv_opts){cert, "ca.pem", false, true, true, 0, NULL};
}

static struct tls_ctx *server_make(const struct srv_opts *o)
{
	char cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX], name[64];
	struct tls_ctx_cfg cfg;
	struct tls_ctx *ctx;
	snprintf(name, sizeof(name), "%s.pem", o->cert);
	path_of(cert, name);
	snprintf(name, sizeof(name), "%s.key", o->cert);
	path_of(key, name);
	path_of(ca, o->ca);
	tls_ctx_cfg_init(&cfg);
	cfg.cert_file = cert;
	cfg.key_file = key;
	cfg.ca_file = ca;
	cfg.require_client_cert = o->require_client_cert;
	cfg.policy.legacy_cn = o->legacy_cn;
	cfg.resume = o->resume;
	if (o->lifetime_s)
		cfg.resume_lifetime_s = o->lifetime_s;
	cfg.ticket_keys = o->keys;
	assert_int_equal(tls_ctx_create(&cfg, TLS_SIDE_SERVER, &ctx), 0);
	return ctx;
}

static struct tls_ctx *client_make(const char *cert, bool resume, unsigned lifetime_s,
				   unsigned cache_size)
{
	char c[PATH_MAX], k[PATH_MAX], ca[PATH_MAX], name[64];
	struct tls_ctx_cfg cfg;
	struct tls_ctx *ctx;
	path_of(ca, "ca.pem");
	tls_ctx_cfg_init(&cfg);
	cfg.ca_file = ca;
	if (cert) {
		snprintf(name, sizeof(name), "%s.pem", cert);
		path_of(c, name);
		snprintf(name, sizeof(name), "%s.key", cert);
		path_of(k, name);
		cfg.cert_file = c;
		cfg.key_file = k;
	}
	cfg.resume = resume;
	if (lifetime_s)
		cfg.resume_lifetime_s = lifetime_s;
	if (cache_size)
		cfg.session_cache_size = cache_size;
	assert_int_equal(tls_ctx_create(&cfg, TLS_SIDE_CLIENT, &ctx), 0);
	return ctx;
}

/* What one connection ended with. */
struct result {
	bool c_ok, s_ok; /* handshake and tls_ssl_handshake_done() */
	bool c_reused, s_reused;
	bool data;	      /* application data passed both ways */
	struct tls_peer c, s; /* copies of the peer records */
	/* ... and of what they point at (the SSLs are gone when compared) */
	struct tls_identity_set c_ids, s_ids;
	char c_wanted[TLS_IDENTITY_MAX_NAME + 1], s_wanted[TLS_IDENTITY_MAX_NAME + 1];
	char c_served[TLS_IDENTITY_MAX_NAME + 1], s_served[TLS_IDENTITY_MAX_NAME + 1];
};

/* Make the copy `p` of a peer record self-contained. */
static void peer_keep(struct tls_peer *p, struct tls_identity_set *ids, char *wanted, char *served)
{
	tls_identity_set_copy(ids, p->ids);
	p->ids = ids;
	snprintf(wanted, TLS_IDENTITY_MAX_NAME + 1, "%s", p->wanted);
	p->wanted = wanted;
	snprintf(served, TLS_IDENTITY_MAX_NAME + 1, "%s", p->served_domain);
	p->served_domain = served;
}

static void connect_once(struct tls_ctx *sctx, struct tls_ctx *cctx, const char *domain,
			 const char *target, int max_version, struct result *r)
{
	struct conn k;
	SSL *c;
	memset(r, 0, sizeof(*r));
	assert_int_equal(tls_ssl_client_create_at(cctx, str_from_cstr(domain),
						  str_from_cstr(target ? target : ""), &c),
			 0);
	conn_run(&k, sctx, c, max_version);
	r->c_ok = k.c.ok && tls_ssl_handshake_done(k.c.ssl) == 0;
	r->s_ok = k.s.ok && tls_ssl_handshake_done(k.s.ssl) == 0;
	r->c_reused = SSL_session_reused(k.c.ssl) == 1;
	r->s_reused = SSL_session_reused(k.s.ssl) == 1;
	r->c = *tls_ssl_peer(k.c.ssl);
	r->s = *tls_ssl_peer(k.s.ssl);
	peer_keep(&r->c, &r->c_ids, r->c_wanted, r->c_served);
	peer_keep(&r->s, &r->s_ids, r->s_wanted, r->s_served);
	if (r->c_ok && r->s_ok)
		r->data = conn_exchange(&k);
	conn_close(&k);
}

/* The same decision: auth, verdict, certificate, identity set, domains. */
static void peer_same(const struct tls_peer *a, const struct tls_peer *b)
{
	char sa[512], sb[512];
	assert_int_equal(a->auth, b->auth);
	assert_int_equal(a->verdict, b->verdict);
	assert_int_equal(a->side, b->side);
	assert_int_equal(a->has_cert, b->has_cert);
	assert_memory_equal(a->sha256, b->sha256, sizeof(a->sha256));
	tls_identity_set_format(a->ids, sa, sizeof(sa));
	tls_identity_set_format(b->ids, sb, sizeof(sb));
	assert_string_equal(sa, sb);
	assert_int_equal(a->ids->source, b->ids->source);
	assert_string_equal(a->wanted, b->wanted);
	assert_string_equal(a->served_domain, b->served_domain);
}

static void assert_full(const struct result *r)
{
	assert_true(r->c_ok);
	assert_true(r->s_ok);
	assert_true(r->data);
	assert_false(r->c_reused);
	assert_false(r->s_reused);
	assert_false(r->c.resumed);
	assert_false(r->s.resumed);
}

static void assert_resumed(const struct result *r)
{
	assert_true(r->c_ok);
	assert_true(r->s_ok);
	assert_true(r->data);
	assert_true(r->c_reused);
	assert_true(r->s_reused);
	assert_true(r->c.resumed);
	assert_true(r->s.resumed);
}

static const char *ver_name(int max_version)
{
	return max_version ? "TLS1.2" : "TLS1.3";
}

/* ---- tests ---- */

/* Full, then resumed twice, with the same peer records on both sides. */
static void resume_basic(int max_version, bool mutual)
{
	static struct result r1, r2, r3;
	struct srv_opts o = srv_defaults("net");
	o.require_client_cert = mutual;
	struct tls_ctx *sctx = server_make(&o);
	struct tls_ctx *cctx = client_make(mutual ? "client" : NULL, true, 0, 0);
	struct tls_ctx_stats st;

	connect_once(sctx, cctx, "example.net", NULL, max_version, &r1);
	assert_full(&r1);
	assert_int_equal(r1.c.auth, TLS_PEER_AUTHENTICATED);
	assert_true(tls_identity_match(r1.c.ids, STR_LIT("example.net")));
	if (mutual) {
		assert_int_equal(r1.s.auth, TLS_PEER_AUTHENTICATED);
		assert_true(tls_identity_match(r1.s.ids, STR_LIT("client.example")));
	} else {
		assert_int_equal(r1.s.auth, TLS_PEER_UNAUTHENTICATED);
	}
	tls_ctx_stats_get(cctx, &st);
	assert_int_equal(st.cached, 1);

	connect_once(sctx, cctx, "example.net", NULL, max_version, &r2);
	if (!r2.c_reused)
		fail_msg("[%s] second connection not resumed", ver_name(max_version));
	assert_resumed(&r2);
	peer_same(&r1.c, &r2.c);
	peer_same(&r1.s, &r2.s);
	/* The log line says so. */
	char line[1024];
	tls_peer_format(&r2.s, line, sizeof(line));
	assert_non_null(strstr(line, "resumed=yes"));
	assert_non_null(strstr(line, mutual ? "auth=authenticated" : "auth=unauthenticated"));

	/* TLS 1.3: from the ticket the resumed connection got; TLS 1.2: the
	 * same session again. */
	connect_once(sctx, cctx, "example.net", NULL, max_version, &r3);
	assert_resumed(&r3);
	peer_same(&r1.c, &r3.c);
	peer_same(&r1.s, &r3.s);

	tls_ctx_stats_get(sctx, &st);
	assert_int_equal(st.full, 1);
	assert_int_equal(st.resumed, 2);
	assert_int_equal(st.resume_refused, 0);
	assert_true(st.tickets_issued >= 1);
	tls_ctx_stats_get(cctx, &st);
	assert_int_equal(st.full, 1);
	assert_int_equal(st.resumed, 2);
	tls_ctx_destroy(sctx);
	tls_ctx_destroy(cctx);
}

static void test_resume_tls13(void **state)
{
	resume_basic(0, false);
}

static void test_resume_tls12(void **state)
{
	resume_basic(TLS1_2_VERSION, false);
}

/* The server sees the client's identities after resumption too. */
static void test_resume_mutual_tls13(void **state)
{
	resume_basic(0, true);
}

static void test_resume_mutual_tls12(void **state)
{
	resume_basic(TLS1_2_VERSION, true);
}

/* A session made for domain A is never offered for domain B, even to a
 * server whose certificate holds both (RFC 5922 §7.3: the decision is per
 * wanted domain), nor to another target. */
static void domain_bound(int max_version)
{
	static struct result r;
	struct srv_opts o = srv_defaults("multi");
	struct tls_ctx *sctx = server_make(&o);
	struct tls_ctx *cctx = client_make(NULL, true, 0, 0);
	struct tls_ctx_stats st;

	connect_once(sctx, cctx, "example.com", NULL, max_version, &r);
	assert_full(&r);
	connect_once(sctx, cctx, "example.net", NULL, max_version, &r);
	assert_full(&r); /* a full handshake that authenticated example.net */
	assert_string_equal(r.c.wanted, "example.net");
	assert_true(tls_identity_match(r.c.ids, STR_LIT("example.net")));
	tls_ctx_stats_get(cctx, &st);
	assert_int_equal(st.cached, 2);
	/* The wanted domain is compared case-insensitively. */
	connect_once(sctx, cctx, "EXAMPLE.COM", NULL, max_version, &r);
	assert_resumed(&r);
	assert_string_equal(r.c.wanted, "EXAMPLE.COM");
	/* Another target of the same domain has its own sessions. */
	connect_once(sctx, cctx, "example.com", "192.0.2.1:5061", max_version, &r);
	assert_full(&r);
	connect_once(sctx, cctx, "example.com", "192.0.2.1:5061", max_version, &r);
	assert_resumed(&r);
	connect_once(sctx, cctx, "example.net", NULL, max_version, &r);
	assert_resumed(&r);
	tls_ctx_stats_get(sctx, &st);
	assert_int_equal(st.full, 3);
	assert_int_equal(st.resumed, 3);
	tls_ctx_destroy(sctx);
	tls_ctx_destroy(cctx);
}

static void test_domain_bound_tls13(void **state)
{
	domain_bound(0);
}

static void test_domain_bound_tls12(void **state)
{
	domain_bound(TLS1_2_VERSION);
}

/* SNI: the served domain is restored, and a ticket made while serving
 * example.net does not resume a handshake whose SNI selects example.com
 * (our certificate is not sent again on resumption). */
static void served_domain(int max_version)
{
	static struct result r1, r2;
	char net[PATH_MAX], net_key[PATH_MAX];
	struct srv_opts o = srv_defaults("com");
	struct tls_ctx *sctx = server_make(&o);
	struct tls_ctx *cctx = client_make(NULL, true, 0, 0);
	struct tls_ctx_stats st;
	path_of(net, "net.pem");
	path_of(net_key, "net.key");
	assert_int_equal(tls_ctx_add_domain(sctx, net, net_key, NULL), 0);

	connect_once(sctx, cctx, "example.net", NULL, max_version, &r1);
	assert_full(&r1);
	assert_string_equal(r1.s.served_domain, "example.net");
	connect_once(sctx, cctx, "example.net", NULL, max_version, &r2);
	assert_resumed(&r2);
	assert_string_equal(r2.s.served_domain, "example.net");
	peer_same(&r1.s, &r2.s);

	/* A bare client keeps the session and offers it with other SNIs. */
	SSL_CTX *raw = SSL_CTX_new(TLS_client_method());
	assert_non_null(raw);
	SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_CLIENT);
	struct conn k;
	SSL *c = SSL_new(raw);
	SSL_set_connect_state(c);
	assert_int_equal(SSL_set_tlsext_host_name(c, "example.net"), 1);
	conn_run(&k, sctx, c, max_version);
	assert_true(k.c.ok);
	assert_true(conn_exchange(&k));
	/* A copy: OpenSSL marks the SSL's own session not resumable when it
	 * is freed without close_notify. */
	SSL_SESSION *sess = SSL_SESSION_dup(SSL_get0_session(k.c.ssl));
	assert_non_null(sess);
	conn_close(&k);

	const char *const snis[] = {"example.net", "example.com", "unknown.example", NULL};
	const bool want_reused[] = {true, false, false, false};
	for (int i = 0; i < 4; i++) {
		tls_ctx_stats_get(sctx, &st);
		uint64_t refused = st.resume_refused;
		c = SSL_new(raw);
		SSL_set_connect_state(c);
		if (snis[i])
			assert_int_equal(SSL_set_tlsext_host_name(c, snis[i]), 1);
		SSL_SESSION *copy = SSL_SESSION_dup(sess);
		assert_non_null(copy);
		assert_int_equal(SSL_set_session(c, copy), 1);
		SSL_SESSION_free(copy);
		conn_run(&k, sctx, c, max_version);
		assert_true(k.s.ok);
		if ((SSL_session_reused(k.s.ssl) == 1) != want_reused[i])
			fail_msg("[%s] SNI %s: reused %d", ver_name(max_version),
				 snis[i] ? snis[i] : "(none)", SSL_session_reused(k.s.ssl));
		const struct tls_peer *sp = tls_ssl_peer(k.s.ssl);
		assert_string_equal(sp->served_domain, i == 0 ? "example.net" : "example.com");
		assert_int_equal(sp->resumed, want_reused[i]);
		tls_ctx_stats_get(sctx, &st);
		/* The server saw the ticket and refused it (not merely "not
		 * offered" by the client). */
		assert_int_equal(st.resume_refused, refused + (want_reused[i] ? 0 : 1));
		conn_close(&k);
	}
	SSL_SESSION_free(sess);
	SSL_CTX_free(raw);
	tls_ctx_destroy(sctx);
	tls_ctx_destroy(cctx);
}

static void test_served_domain_tls13(void **state)
{
	served_domain(0);
}

static void test_served_domain_tls12(void **state)
{
	served_domain(TLS1_2_VERSION);
}

/* Ticket keys: a ticket under the previous key resumes; one under a key
 * older than that does a full handshake. */
static void rotation(int max_version)
{
	static struct result r;
	struct tls_ticket_keys *keys;
	assert_int_equal(tls_ticket_keys_create(0, &keys), 0);
	struct srv_opts o = srv_defaults("net");
	o.keys = keys;
	struct tls_ctx *sctx = server_make(&o);
	struct tls_ctx *c1 = client_make(NULL, true, 0, 0);
	struct tls_ctx *c2 = client_make(NULL, true, 0, 0);

	connect_once(sctx, c1, "example.net", NULL, max_version, &r);
	assert_full(&r);
	assert_int_equal(tls_ticket_keys_rotate(keys), 0);
	connect_once(sctx, c1, "example.net", NULL, max_version, &r);
	assert_resumed(&r);

	connect_once(sctx, c2, "example.net", NULL, max_version, &r);
	assert_full(&r);
	assert_int_equal(tls_ticket_keys_rotate(keys), 0);
	assert_int_equal(tls_ticket_keys_rotate(keys), 0);
	connect_once(sctx, c2, "example.net", NULL, max_version, &r);
	assert_full(&r);
	/* ...and that connection's ticket (current key) resumes again. */
	connect_once(sctx, c2, "example.net", NULL, max_version, &r);
	assert_resumed(&r);

	/* The contexts hold their own reference to the ring. */
	tls_ticket_keys_destroy(keys);
	connect_once(sctx, c1, "example.net", NULL, max_version, &r);
	assert_true(r.c_ok && r.s_ok);
	tls_ctx_destroy(sctx);
	tls_ctx_destroy(c1);
	tls_ctx_destroy(c2);
}

static void test_rotation_tls13(void **state)
{
	rotation(0);
}

static void test_rotation_tls12(void **state)
{
	rotation(TLS1_2_VERSION);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Rotation by the clock (period 1 s): one period later a ticket still
 * resumes, two periods later it does not. */
static void test_rotation_timed(void **state)
{
	static struct result r;
	struct tls_ticket_keys *keys;
	assert_int_equal(tls_ticket_keys_create(1, &keys), 0);
	struct srv_opts o = srv_defaults("net");
	o.keys = keys;
	struct tls_ctx *sctx = server_make(&o);
	tls_ticket_keys_destroy(keys);
	struct tls_ctx *c1 = client_make(NULL, true, 0, 0);
	struct tls_ctx *c2 = client_make(NULL, true, 0, 0);

	connect_once(sctx, c1, "example.net", NULL, 0, &r);
	assert_full(&r);
	sleep_ms(1100);
	connect_once(sctx, c1, "example.net", NULL, 0, &r);
	assert_resumed(&r);
	connect_once(sctx, c2, "example.net", NULL, 0, &r);
	assert_full(&r);
	sleep_ms(2100);
	connect_once(sctx, c2, "example.net", NULL, 0, &r);
	assert_full(&r);
	tls_ctx_destroy(sctx);
	tls_ctx_destroy(c1);
	tls_ctx_destroy(c2);
}

/* Resumption off on either side: every connection is a full handshake. */
static void disabled(int max_version)
{
	static struct result r;
	struct tls_ctx_stats st;
	struct srv_opts o = srv_defaults("net");
	o.resume = false;
	struct tls_ctx *off = server_make(&o);
	struct tls_ctx *on =
	    server_make(&(struct srv_opts){"net", "ca.pem", false, true, true, 0, NULL});
	struct tls_ctx *cctx = client_make(NULL, true, 0, 0);
	struct tls_ctx *coff = client_make(NULL, false, 0, 0);

	for (int i = 0; i < 3; i++) {
		connect_once(off, cctx, "example.net", NULL, max_version, &r);
		assert_full(&r);
	}
	tls_ctx_stats_get(cctx, &st);
	assert_int_equal(st.cached, 0);
	tls_ctx_stats_get(off, &st);
	assert_int_equal(st.tickets_issued, 0);

	for (int i = 0; i < 3; i++) {
		connect_once(on, coff, "example.net", NULL, max_version, &r);
		assert_full(&r);
	}
	tls_ctx_stats_get(coff, &st);
	assert_int_equal(st.cached, 0);
	assert_int_equal(st.full, 3);
	tls_ctx_destroy(off);
	tls_ctx_destroy(on);
	tls_ctx_destroy(cctx);
	tls_ctx_destroy(coff);
}

static void test_disabled_tls13(void **state)
{
	disabled(0);
}

static void test_disabled_tls12(void **state)
{
	disabled(TLS1_2_VERSION);
}

/* One ring shared by contexts (workers): a ticket resumes on a context
 * with the same trust settings, and does a full handshake on one whose
 * settings differ (session id context): another policy, or other CA
 * contents (as after a CA or CRL update). */
static void sid_binding(int max_version)
{
	static struct result r;
	struct tls_ticket_keys *keys;
	char ca[PATH_MAX], client[PATH_MAX], ca2[PATH_MAX];
	assert_int_equal(tls_ticket_keys_create(0, &keys), 0);
	/* ca2.pem: the same anchor plus one more certificate. */
	path_of(ca, "ca.pem");
	path_of(client, "client.pem");
	path_of(ca2, "ca2.pem");
	FILE *out = fopen(ca2, "w");
	assert_non_null(out);
	const char *parts[] = {ca, client};
	for (int i = 0; i < 2; i++) {
		char buf[4096];
		size_t n;
		FILE *in = fopen(parts[i], "r");
		assert_non_null(in);
		while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
			assert_int_equal(fwrite(buf, 1, n, out), n);
		fclose(in);
	}
	fclose(out);

	struct srv_opts o = srv_defaults("net");
	o.keys = keys;
	struct tls_ctx *a = server_make(&o);
	struct tls_ctx *a2 = server_make(&o);
	o.legacy_cn = false;
	struct tls_ctx *b = server_make(&o);
	o.legacy_cn = true;
	o.ca = "ca2.pem";
	struct tls_ctx *c = server_make(&o);
	tls_ticket_keys_destroy(keys);
	struct tls_ctx *cctx = client_make(NULL, true, 0, 0);

	connect_once(a, cctx, "example.net", NULL, max_version, &r);
	assert_full(&r);
	connect_once(a2, cctx, "example.net", NULL, max_version, &r);
	assert_resumed(&r);
	connect_once(b, cctx, "example.net", NULL, max_version, &r);
	assert_full(&r);
	connect_once(c, cctx, "example.net", NULL, max_version, &r);
	assert_full(&r);
	connect_once(c, cctx, "example.net", NULL, max_version, &r);
	assert_resumed(&r);
	connect_once(a, cctx, "example.net", NULL, max_version, &r);
	assert_full(&r);
	tls_ctx_destroy(a);
	tls_ctx_destroy(a2);
	tls_ctx_destroy(b);
	tls_ctx_destroy(c);
	tls_ctx_destroy(cctx);
}

static void test_sid_binding_tls13(void **state)
{
	sid_binding(0);
}

static void test_sid_binding_tls12(void **state)
{
	sid_binding(TLS1_2_VERSION);
}

/* The decision's age counts from the full handshake: TLS 1.3 resumptions
 * get fresh tickets, yet cannot prolong it past the lifetime (3 s here).
 * The server enforces it (sctx; its client has the default lifetime), and
 * so does the client (cshort; its server has the default lifetime): there
 * the session is not even offered, although its ticket is young. */
static void test_lifetime(void **state)
{
	static struct result r;
	struct tls_ctx_stats st;
	struct srv_opts o = srv_defaults("net");
	struct tls_ctx *slong = server_make(&o);
	o.lifetime_s = 3;
	struct tls_ctx *sctx = server_make(&o);
	struct tls_ctx *cctx = client_make(NULL, true, 0, 0);
	struct tls_ctx *cshort = client_make(NULL, true, 3, 0);

	connect_once(sctx, cctx, "example.net", NULL, 0, &r);
	assert_full(&r);
	connect_once(slong, cshort, "example.net", NULL, 0, &r);
	assert_full(&r);
	sleep_ms(1100);
	connect_once(sctx, cctx, "example.net", NULL, 0, &r);
	assert_resumed(&r);
	connect_once(slong, cshort, "example.net", NULL, 0, &r);
	assert_resumed(&r);
	sleep_ms(2100);
	/* The tickets are 2 s old, the decisions 3 s. */
	connect_once(sctx, cctx, "example.net", NULL, 0, &r);
	assert_full(&r);
	tls_ctx_stats_get(sctx, &st);
	assert_int_equal(st.resume_refused, 1);
	tls_ctx_stats_get(cctx, &st);
	assert_int_equal(st.resume_refused, 0);

	connect_once(slong, cshort, "example.net", NULL, 0, &r);
	assert_full(&r);
	tls_ctx_stats_get(slong, &st);
	assert_int_equal(st.resume_refused, 0);
	tls_ctx_stats_get(cshort, &st);
	assert_int_equal(st.resume_refused, 1);
	tls_ctx_destroy(slong);
	tls_ctx_destroy(sctx);
	tls_ctx_destroy(cctx);
	tls_ctx_destroy(cshort);
}

/* Fail closed: a session put on one of our client SSLs behind the cache's
 * back (so never re-checked for the wanted domain) is refused when the
 * server resumes it — even where the certificate would match. */
static void unchecked(int max_version)
{
	struct srv_opts o = srv_defaults("multi");
	struct tls_ctx *sctx = server_make(&o);
	struct tls_ctx *cctx = client_make(NULL, true, 0, 0);
	struct conn k;
	SSL *c;

	assert_int_equal(tls_ssl_client_create(cctx, STR_LIT("example.com"), &c), 0);
	conn_run(&k, sctx, c, max_version);
	assert_true(conn_exchange(&k));
	SSL_SESSION *sess = SSL_SESSION_dup(SSL_get0_session(k.c.ssl));
	assert_non_null(sess);
	conn_close(&k);
	tls_ctx_sessions_flush(cctx);

	for (int i = 0; i < 2; i++) {
		assert_int_equal(tls_ssl_client_create(cctx, STR_LIT("example.com"), &c), 0);
		SSL_SESSION *copy = SSL_SESSION_dup(sess);
		assert_int_equal(SSL_set_session(c, copy), 1);
		SSL_SESSION_free(copy);
		conn_run(&k, sctx, c, max_version);
		assert_true(k.c.ok);
		assert_int_equal(SSL_session_reused(k.c.ssl), 1);
		assert_int_equal(tls_ssl_handshake_done(k.c.ssl), -EPERM);
		const struct tls_peer *cp = tls_ssl_peer(k.c.ssl);
		assert_int_equal(cp->auth, TLS_PEER_REFUSED);
		assert_true(cp->resumed);
		conn_close(&k);
	}
	struct tls_ctx_stats st;
	tls_ctx_stats_get(cctx, &st);
	assert_int_equal(st.resume_refused, 2);
	assert_int_equal(st.resumed, 0);

	/* The same session slipped in for example.net: the server, whose one
	 * certificate holds both names, refuses it too — it was made while
	 * serving example.com, and SNI now selects example.net — so this is a
	 * full handshake that authenticates example.net. */
	assert_int_equal(tls_ssl_client_create(cctx, STR_LIT("example.net"), &c), 0);
	SSL_SESSION *copy = SSL_SESSION_dup(sess);
	assert_int_equal(SSL_set_session(c, copy), 1);
	SSL_SESSION_free(copy);
	conn_run(&k, sctx, c, max_version);
	assert_true(k.c.ok);
	assert_int_equal(SSL_session_reused(k.c.ssl), 0);
	assert_int_equal(tls_ssl_handshake_done(k.c.ssl), 0);
	assert_string_equal(tls_ssl_peer(k.s.ssl)->served_domain, "example.net");
	conn_close(&k);
	tls_ctx_stats_get(sctx, &st);
	assert_int_equal(st.resume_refused, 1);
	SSL_SESSION_free(sess);
	tls_ctx_destroy(sctx);
	tls_ctx_destroy(cctx);
}

static void test_unchecked_tls13(void **state)
{
	unchecked(0);
}

static void test_unchecked_tls12(void **state)
{
	unchecked(TLS1_2_VERSION);
}

/* The client cache is bounded (oldest replaced) and can be flushed. */
static void test_cache_bound(void **state)
{
	static struct result r;
	struct tls_ctx_stats st;
	struct srv_opts o = srv_defaults("net");
	struct tls_ctx *sctx = server_make(&o);
	struct tls_ctx *cctx = client_make(NULL, true, 0, 2);
	const char *const targets[] = {"t1", "t2", "t3"};

	for (int i = 0; i < 3; i++) {
		connect_once(sctx, cctx, "example.net", targets[i], TLS1_2_VERSION, &r);
		assert_full(&r);
	}
	tls_ctx_stats_get(cctx, &st);
	assert_int_equal(st.cached, 2);
	connect_once(sctx, cctx, "example.net", "t3", TLS1_2_VERSION, &r);
	assert_resumed(&r);
	connect_once(sctx, cctx, "example.net", "t1", TLS1_2_VERSION, &r);
	assert_full(&r); /* evicted */
	tls_ctx_sessions_flush(cctx);
	tls_ctx_stats_get(cctx, &st);
	assert_int_equal(st.cached, 0);
	connect_once(sctx, cctx, "example.net", "t3", TLS1_2_VERSION, &r);
	assert_full(&r);

	/* Bad targets. */
	SSL *ssl;
	char big[TLS_TARGET_MAX + 2];
	memset(big, 'x', sizeof(big));
	assert_int_equal(tls_ssl_client_create_at(cctx, STR_LIT("example.net"),
						  str_make(big, TLS_TARGET_MAX + 1), &ssl),
			 -EINVAL);
	assert_int_equal(
	    tls_ssl_client_create_at(cctx, STR_LIT("example.net"), STR_LIT("a\0b"), &ssl), -EINVAL);
	assert_int_equal(tls_ssl_client_create_at(cctx, STR_LIT("example.net"),
						  str_make(big, TLS_TARGET_MAX), &ssl),
			 0);
	SSL_free(ssl);
	tls_ctx_destroy(sctx);
	tls_ctx_destroy(cctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_resume_tls13),	cmocka_unit_test(test_resume_tls12),
	    cmocka_unit_test(test_resume_mutual_tls13), cmocka_unit_test(test_resume_mutual_tls12),
	    cmocka_unit_test(test_domain_bound_tls13),	cmocka_unit_test(test_domain_bound_tls12),
	    cmocka_unit_test(test_served_domain_tls13), cmocka_unit_test(test_served_domain_tls12),
	    cmocka_unit_test(test_rotation_tls13),	cmocka_unit_test(test_rotation_tls12),
	    cmocka_unit_test(test_rotation_timed),	cmocka_unit_test(test_disabled_tls13),
	    cmocka_unit_test(test_disabled_tls12),	cmocka_unit_test(test_sid_binding_tls13),
	    cmocka_unit_test(test_sid_binding_tls12),	cmocka_unit_test(test_lifetime),
	    cmocka_unit_test(test_unchecked_tls13),	cmocka_unit_test(test_unchecked_tls12),
	    cmocka_unit_test(test_cache_bound),
	};
	/* Every wait is bounded by count; this bounds the whole run too. */
	alarm(120);
	if (getenv("SIPSD_TEST_DEBUG"))
		log_set_level(LOG_LVL_DEBUG);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
