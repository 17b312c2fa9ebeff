/* test_tls_sni.c: SNI certificate selection on one server context (spec.md
 * rule 10, RFC 6066 §3), the served domain for Record-Route (RFC 5922 §7.5)
 * and client-certificate checks after the switch, over real TLS 1.3 and
 * TLS 1.2 handshakes on a socketpair. Certificates are made at test time. */
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
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/identity.h"
#include "tls/tls_ctx.h"
#include "tls_harness.h"

static int group_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "%s/sipsd-sni-test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *inter_key = EVP_EC_gen("P-256");
	EVP_PKEY *rogue_key = EVP_EC_gen("P-256");
	X509 *ca = cert_make(ca_key, "sipsd test root", NULL, NULL, true, NULL, NULL);
	X509 *inter = cert_make(inter_key, "sipsd test inter", NULL, NULL, true, ca, ca_key);
	X509 *rogue = cert_make(rogue_key, "rogue root", NULL, NULL, true, NULL, NULL);
	pem_write("ca", ca, NULL);
	pem_write("inter", inter, NULL);
	/* The default: RSA, so that switching to an ECDSA certificate shows
	 * that no key type of the default stays behind. */
	leaf_make("com", true, "example.com", "URI:sip:example.com", NULL, ca, ca_key);
	/* ECDSA, issued by the intermediate: its chain must be sent. */
	leaf_make("net", false, "example.net", "URI:sip:example.net", NULL, inter, inter_key);
	/* dNSName identities only (RFC 5922 §7.1 step 2). */
	leaf_make("org", false, "example.org", "DNS:example.org,DNS:sip.example.org", NULL, ca,
		  ca_key);
	leaf_make("client", false, "client", "URI:sip:client.example", "1.3.6.1.5.5.7.3.20", ca,
		  ca_key);
	leaf_make("rogue-client", false, "client", "URI:sip:client.example", NULL, rogue,
		  rogue_key);
	leaf_make("noid", false, "Some Company", NULL, NULL, ca, ca_key);
	X509_free(ca);
	X509_free(inter);
	X509_free(rogue);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(inter_key);
	EVP_PKEY_free(rogue_key);
	return 0;
}

/* ---- contexts ---- */

static char p_ca[PATH_MAX], p_com[PATH_MAX], p_com_key[PATH_MAX], p_net[PATH_MAX],
    p_net_key[PATH_MAX], p_inter[PATH_MAX], p_org[PATH_MAX], p_org_key[PATH_MAX];

static void paths_init(void)
{
	path_of(p_ca, "ca.pem");
	path_of(p_com, "com.pem");
	path_of(p_com_key, "com.key");
	path_of(p_net, "net.pem");
	path_of(p_net_key, "net.key");
	path_of(p_inter, "inter.pem");
	path_of(p_org, "org.pem");
	path_of(p_org_key, "org.key");
}

/* example.com (default, RSA) + example.net (ECDSA, via intermediate) +
 * example.org / sip.example.org (dNSNames). */
static struct tls_ctx *server_multi(bool require_client_cert, const char *domain)
{
	struct tls_ctx_cfg cfg;
	struct tls_ctx *ctx;
	paths_init();
	tls_ctx_cfg_init(&cfg);
	cfg.cert_file = p_com;
	cfg.key_file = p_com_key;
	cfg.ca_file = p_ca;
	cfg.domain = domain;
	cfg.require_client_cert = require_client_cert;
	assert_int_equal(tls_ctx_create(&cfg, TLS_SIDE_SERVER, &ctx), 0);
	assert_int_equal(tls_ctx_add_domain(ctx, p_net, p_net_key, p_inter), 0);
	assert_int_equal(tls_ctx_add_domain(ctx, p_org, p_org_key, NULL), 0);
	return ctx;
}

static struct tls_ctx *client_ctx(const char *cert, const char *key)
{
	struct tls_ctx_cfg cfg;
	struct tls_ctx *ctx;
	char c[PATH_MAX], k[PATH_MAX];
	paths_init();
	tls_ctx_cfg_init(&cfg);
	cfg.ca_file = p_ca;
	if (cert) {
		path_of(c, cert);
		path_of(k, key);
		cfg.cert_file = c;
		cfg.key_file = k;
	}
	assert_int_equal(tls_ctx_create(&cfg, TLS_SIDE_CLIENT, &ctx), 0);
	return ctx;
}

static int peer_key_type(SSL *ssl)
{
	X509 *x = SSL_get0_peer_certificate(ssl);
	assert_non_null(x);
	return EVP_PKEY_get_base_id(X509_get0_pubkey(x));
}

/* ---- tests ---- */

/* Did the peer send the intermediate CA? */
static int chain_has_inter(SSL *ssl)
{
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
	char cn[64];
	for (int i = 0; i < sk_X509_num(chain); i++)
		if (X509_NAME_get_text_by_NID(X509_get_subject_name(sk_X509_value(chain, i)),
					      NID_commonName, cn, sizeof(cn)) > 0 &&
		    !strcmp(cn, "sipsd test inter"))
			return 1;
	return 0;
}

struct sni_case {
	const char *wanted; /* client's wanted domain = SNI */
	bool ok;	    /* client authenticates the server */
	const char *served; /* server's served_domain */
	const char *found;  /* client's view of the server's identities */
	int key_type;	    /* of the certificate the client got */
	int inter;	    /* the server sent our intermediate */
	bool matched;	    /* SNI chose the certificate */
};

static void sni_cases(int max_version)
{
	const struct sni_case cases[] = {
	    {"example.com", true, "example.com", "{example.com}", EVP_PKEY_RSA, 0, true},
	    /* ECDSA with its intermediate. */
	    {"example.net", true, "example.net", "{example.net}", EVP_PKEY_EC, 1, true},
	    {"EXAMPLE.Net", true, "example.net", "{example.net}", EVP_PKEY_EC, 1, true},
	    {"sip.example.org", true, "sip.example.org", "{example.org,sip.example.org}",
	     EVP_PKEY_EC, 0, true},
	    {"example.org", true, "example.org", "{example.org,sip.example.org}", EVP_PKEY_EC, 0,
	     true},
	    /* Unknown SNI: the default, which the client refuses (T3-like). */
	    {"example.info", false, "example.com", "{example.com}", EVP_PKEY_RSA, 0, false},
	    /* No suffix or parent match on the server side either. */
	    {"sub.example.net", false, "example.com", "{example.com}", EVP_PKEY_RSA, 0, false},
	};
	struct tls_ctx *sctx = server_multi(false, NULL);
	struct tls_ctx *cctx = client_ctx(NULL, NULL);
	const char *ver = max_version ? "TLS1.2" : "TLS1.3";
	uint64_t matched = 0, dflt = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct sni_case *t = &cases[i];
		struct conn k;
		SSL *c;
		char line[1024], set[512];
		assert_int_equal(tls_ssl_client_create(cctx, str_from_cstr(t->wanted), &c), 0);
		conn_run(&k, sctx, c, max_version);
		const struct tls_peer *cp = tls_ssl_peer(k.c.ssl);
		const struct tls_peer *sp = tls_ssl_peer(k.s.ssl);
		tls_peer_format(cp, line, sizeof(line));
		tls_identity_set_format(cp->ids, set, sizeof(set));
		if (k.c.ok != t->ok || strcmp(set, t->found) ||
		    strcmp(sp->served_domain, t->served) ||
		    sp->served_domain_len != strlen(t->served))
			fail_msg("%s [%s]: client %s found %s served %s; want %s %s %s: %s",
				 t->wanted, ver, k.c.ok ? "ok" : "refused", set, sp->served_domain,
				 t->ok ? "ok" : "refused", t->found, t->served, line);
		if (t->ok) {
			assert_int_equal(peer_key_type(k.c.ssl), t->key_type);
			assert_true(k.s.ok);
			assert_int_equal(tls_ssl_handshake_done(k.c.ssl), 0);
			assert_int_equal(tls_ssl_handshake_done(k.s.ssl), 0);
			assert_int_equal(cp->auth, TLS_PEER_AUTHENTICATED);
			assert_true(conn_data_passes(&k));
			/* The chain of the chosen certificate came with it. */
			assert_int_equal(chain_has_inter(k.c.ssl), t->inter);
			/* Served domain in the server's log line. */
			tls_peer_format(sp, line, sizeof(line));
			char want[300];
			snprintf(want, sizeof(want), "served=%s ", t->served);
			assert_non_null(strstr(line, want));
		} else {
			assert_int_equal(cp->auth, TLS_PEER_REFUSED);
			assert_int_equal(cp->verdict, TLS_VERDICT_NAME_MISMATCH);
			assert_int_equal(tls_ssl_handshake_done(k.c.ssl), -EPERM);
			assert_false(conn_data_passes(&k));
		}
		matched += t->matched;
		dflt += !t->matched;
		conn_close(&k);
	}
	struct tls_ctx_stats st;
	tls_ctx_stats_get(sctx, &st);
	assert_int_equal(st.sni_matched, matched);
	assert_int_equal(st.sni_default, dflt);
	tls_ctx_destroy(sctx);
	tls_ctx_destroy(cctx);
}

static void test_sni_tls13(void **state)
{
	sni_cases(0);
}

static void test_sni_tls12(void **state)
{
	sni_cases(TLS1_2_VERSION);
}

/* A client that sends no SNI gets the default certificate (spec rule 10). */
static void no_sni(int max_version)
{
	struct tls_ctx *sctx = server_multi(false, NULL);
	struct conn k;

	/* A bare OpenSSL client, no SNI, no verification. */
	SSL_CTX *raw = SSL_CTX_new(TLS_client_method());
	assert_non_null(raw);
	SSL *c = SSL_new(raw);
	SSL_set_connect_state(c);
	conn_run(&k, sctx, c, max_version);
	assert_true(k.c.ok);
	assert_true(k.s.ok);
	assert_null(SSL_get_servername(k.s.ssl, TLSEXT_NAMETYPE_host_name));
	static struct tls_identity_set ids;
	assert_int_equal(tls_identity_extract(SSL_get0_peer_certificate(k.c.ssl), NULL, &ids), 0);
	assert_true(tls_identity_match(&ids, STR_LIT("example.com")));
	assert_int_equal(peer_key_type(k.c.ssl), EVP_PKEY_RSA);
	const struct tls_peer *sp = tls_ssl_peer(k.s.ssl);
	assert_string_equal(sp->served_domain, "example.com");
	assert_int_equal(tls_ssl_handshake_done(k.s.ssl), 0);
	assert_true(conn_data_passes(&k));
	conn_close(&k);

	/* Our client never sends an IP literal as SNI (RFC 6066 §3): the
	 * default comes, and it is no identity for 127.0.0.1. */
	struct tls_ctx *cctx = client_ctx(NULL, NULL);
	assert_int_equal(tls_ssl_client_create(cctx, STR_LIT("127.0.0.1"), &c), 0);
	conn_run(&k, sctx, c, max_version);
	assert_false(k.c.ok);
	assert_int_equal(tls_ssl_peer(k.c.ssl)->verdict, TLS_VERDICT_NAME_MISMATCH);
	assert_string_equal(tls_ssl_peer(k.s.ssl)->served_domain, "example.com");
	conn_close(&k);

	struct tls_ctx_stats st;
	tls_ctx_stats_get(sctx, &st);
	assert_int_equal(st.sni_default, 2);
	assert_int_equal(st.sni_matched, 0);
	SSL_CTX_free(raw);
	tls_ctx_destroy(cctx);
	tls_ctx_destroy(sctx);
}

static void test_no_sni_tls13(void **state)
{
	no_sni(0);
}

static void test_no_sni_tls12(void **state)
{
	no_sni(TLS1_2_VERSION);
}

/* The listener's default domain (cfg.domain) is what an unmatched SNI
 * records; a matched SNI records the identity it matched. */
static void test_default_domain(void **state)
{
	struct tls_ctx *sctx = server_multi(false, "EXAMPLE.COM");
	struct tls_ctx *cctx = client_ctx(NULL, NULL);
	struct conn k;
	SSL *c;

	assert_int_equal(tls_ssl_client_create(cctx, STR_LIT("elsewhere.example"), &c), 0);
	conn_run(&k, sctx, c, 0);
	assert_string_equal(tls_ssl_peer(k.s.ssl)->served_domain, "example.com");
	conn_close(&k);
	tls_ctx_destroy(sctx);

	/* A default domain that is not in the certificate: still served (the
	 * context warns), still recorded. */
	sctx = server_multi(false, "other.example");
	assert_int_equal(tls_ssl_client_create(cctx, STR_LIT("elsewhere.example"), &c), 0);
	conn_run(&k, sctx, c, 0);
	assert_string_equal(tls_ssl_peer(k.s.ssl)->served_domain, "other.example");
	conn_close(&k);
	assert_int_equal(tls_ssl_client_create(cctx, STR_LIT("example.net"), &c), 0);
	conn_run(&k, sctx, c, 0);
	assert_true(k.c.ok);
	assert_string_equal(tls_ssl_peer(k.s.ssl)->served_domain, "example.net");
	conn_close(&k);

	/* Context queries. */
	assert_true(tls_ctx_has_identity(sctx, STR_LIT("Example.Net")));
	assert_true(tls_ctx_has_identity(sctx, STR_LIT("sip.example.org")));
	assert_false(tls_ctx_has_identity(sctx, STR_LIT("other.example")));
	assert_false(tls_ctx_has_identity(sctx, STR_NULL));
	assert_true(tls_identity_match(tls_ctx_domain_identities(sctx, 0), STR_LIT("example.com")));
	assert_true(tls_identity_match(tls_ctx_domain_identities(sctx, 1), STR_LIT("example.net")));
	assert_true(tls_identity_match(tls_ctx_domain_identities(sctx, 2), STR_LIT("example.org")));
	assert_null(tls_ctx_domain_identities(sctx, 3));
	assert_true(tls_identity_match(tls_ctx_identities(sctx), STR_LIT("example.com")));
	tls_ctx_destroy(sctx);
	tls_ctx_destroy(cctx);
}

/* Client-certificate verification is the context's and survives the
 * switch: trusted client accepted with its identities, untrusted refused,
 * none refused where required (spec rule 8). */
static void sni_mutual(int max_version)
{
	struct tls_ctx *sctx = server_multi(true, NULL);
	struct tls_ctx *good = client_ctx("client.pem", "client.key");
	struct tls_ctx *rogue = client_ctx("rogue-client.pem", "rogue-client.key");
	struct tls_ctx *none = client_ctx(NULL, NULL);
	const char *const domains[] = {"example.net", "example.com", "sip.example.org"};
	struct conn k;
	SSL *c;

	for (size_t i = 0; i < 3; i++) {
		struct str d = str_from_cstr(domains[i]);
		assert_int_equal(tls_ssl_client_create(good, d, &c), 0);
		conn_run(&k, sctx, c, max_version);
		assert_true(k.c.ok);
		assert_true(k.s.ok);
		assert_int_equal(tls_ssl_handshake_done(k.s.ssl), 0);
		const struct tls_peer *sp = tls_ssl_peer(k.s.ssl);
		assert_int_equal(sp->auth, TLS_PEER_AUTHENTICATED);
		assert_true(tls_identity_match(sp->ids, STR_LIT("client.example")));
		assert_string_equal(sp->served_domain, domains[i]);
		assert_true(conn_data_passes(&k));
		conn_close(&k);

		assert_int_equal(tls_ssl_client_create(rogue, d, &c), 0);
		conn_run(&k, sctx, c, max_version);
		assert_false(k.s.ok);
		sp = tls_ssl_peer(k.s.ssl);
		assert_int_equal(sp->auth, TLS_PEER_REFUSED);
		assert_int_equal(sp->verdict, TLS_VERDICT_UNTRUSTED);
		assert_int_equal(tls_ssl_handshake_done(k.s.ssl), -EPERM);
		conn_close(&k);

		assert_int_equal(tls_ssl_client_create(none, d, &c), 0);
		conn_run(&k, sctx, c, max_version);
		assert_false(k.s.ok);
		assert_int_equal(tls_ssl_handshake_done(k.s.ssl), -EPERM);
		conn_close(&k);
	}
	tls_ctx_destroy(sctx);
	tls_ctx_destroy(good);
	tls_ctx_destroy(rogue);
	tls_ctx_destroy(none);
}

static void test_sni_mutual_tls13(void **state)
{
	sni_mutual(0);
}

static void test_sni_mutual_tls12(void **state)
{
	sni_mutual(TLS1_2_VERSION);
}

static void test_add_domain_errors(void **state)
{
	char noid[PATH_MAX], noid_key[PATH_MAX], nowhere[PATH_MAX];
	struct tls_ctx *sctx = server_multi(false, NULL);
	struct tls_ctx *cctx = client_ctx(NULL, NULL);
	path_of(noid, "noid.pem");
	path_of(noid_key, "noid.key");
	path_of(nowhere, "nowhere.pem");

	assert_int_equal(tls_ctx_add_domain(cctx, p_net, p_net_key, NULL), -EINVAL);
	assert_int_equal(tls_ctx_add_domain(NULL, p_net, p_net_key, NULL), -EINVAL);
	assert_int_equal(tls_ctx_add_domain(sctx, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(tls_ctx_add_domain(sctx, nowhere, NULL, NULL), -ENOENT);
	assert_int_equal(tls_ctx_add_domain(sctx, p_net, nowhere, NULL), -ENOENT);
	assert_int_equal(tls_ctx_add_domain(sctx, p_net, p_com_key, NULL), -EKEYREJECTED);
	assert_int_equal(tls_ctx_add_domain(sctx, p_net, p_net_key, nowhere), -ENOENT);
	assert_int_equal(tls_ctx_add_domain(sctx, p_net, p_net_key, p_net_key), -EBADMSG);
	assert_int_equal(tls_ctx_add_domain(sctx, noid, noid_key, NULL), -EINVAL);
	assert_null(tls_ctx_domain_identities(sctx, 3)); /* nothing added by the failures */

	/* The bound: TLS_CTX_MAX_DOMAINS besides the default. */
	for (int i = 2; i < TLS_CTX_MAX_DOMAINS; i++)
		assert_int_equal(tls_ctx_add_domain(sctx, p_org, p_org_key, NULL), 0);
	assert_int_equal(tls_ctx_add_domain(sctx, p_org, p_org_key, NULL), -ENOSPC);
	assert_non_null(tls_ctx_domain_identities(sctx, TLS_CTX_MAX_DOMAINS));
	assert_null(tls_ctx_domain_identities(sctx, TLS_CTX_MAX_DOMAINS + 1));
	tls_ctx_destroy(sctx);
	tls_ctx_destroy(cctx);
	assert_int_equal(ERR_peek_error(), 0);
}

/* tls_ctx_destroy() while SSLs live: the callbacks' state lives on with
 * the SSL_CTX (ASan checks this run). */
static void test_ctx_outlived(void **state)
{
	struct tls_ctx *sctx = server_multi(false, NULL);
	struct tls_ctx *cctx = client_ctx(NULL, NULL);
	struct conn k;
	SSL *c;
	assert_int_equal(tls_ssl_client_create(cctx, STR_LIT("example.net"), &c), 0);
	int sv[2];
	memset(&k, 0, sizeof(k));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(fcntl(sv[i], F_SETFL, fcntl(sv[i], F_GETFL) | O_NONBLOCK), 0);
	k.c.ssl = c;
	assert_int_equal(tls_ssl_server_create(sctx, &k.s.ssl), 0);
	k.c.fd = sv[0];
	k.s.fd = sv[1];
	SSL_set_fd(k.c.ssl, sv[0]);
	SSL_set_fd(k.s.ssl, sv[1]);
	tls_ctx_destroy(sctx);
	tls_ctx_destroy(cctx);
	assert_true(hs_pump(&k.c, &k.s));
	assert_true(k.c.ok);
	assert_true(k.s.ok);
	assert_string_equal(tls_ssl_peer(k.s.ssl)->served_domain, "example.net");
	assert_int_equal(tls_ssl_handshake_done(k.c.ssl), 0);
	assert_true(conn_data_passes(&k));
	conn_close(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sni_tls13),	     cmocka_unit_test(test_sni_tls12),
	    cmocka_unit_test(test_no_sni_tls13),     cmocka_unit_test(test_no_sni_tls12),
	    cmocka_unit_test(test_default_domain),   cmocka_unit_test(test_sni_mutual_tls13),
	    cmocka_unit_test(test_sni_mutual_tls12), cmocka_unit_test(test_add_domain_errors),
	    cmocka_unit_test(test_ctx_outlived),
	};
	/* Every wait is bounded by count; this bounds the whole run too. */
	alarm(120);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
