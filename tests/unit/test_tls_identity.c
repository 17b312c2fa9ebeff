/* test_tls_identity.c: RFC 5922 §7 identities, RFC 5924 EKU and RFC 5280
 * chains, for every row of the certificate matrix (tests/certs/make-matrix.sh)
 * both through the library and through real TLS handshakes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/identity.h"
#include "tls/tls_ctx.h"
#include "tls_harness.h"

#define MAX_ROWS 256
#define FIELD 256

struct row {
	char name[FIELD];
	char file[FIELD];
	char domain[FIELD]; /* "" when '-' */
	int exit_code;
	char verdict[FIELD];
	char ca[FIELD];
	char crl[FIELD];
	char chain[FIELD];
	enum tls_eku_mode eku;
	enum tls_role role;
	bool legacy_cn;
};

static char matrix_dir[1024]; /* short enough that every path below fits */
static struct row rows[MAX_ROWS];
static size_t nrows;

/* ---- matrix set-up ---- */

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void script_path(char *buf, size_t size)
{
	const char *src = getenv("SIPSD_SRC");
	const char *data = getenv("SIPSD_TEST_DATA");
	if (src && *src) {
		snprintf(buf, size, "%s/tests/certs/make-matrix.sh", src);
	} else if (data && *data) {
		/* SIPSD_TEST_DATA is <src>/tests/data. */
		snprintf(buf, size, "%s/../certs/make-matrix.sh", data);
	} else {
		/* CTest runs unit tests from the source directory. */
		snprintf(buf, size, "tests/certs/make-matrix.sh");
	}
}

static int run_make_matrix(const char *outdir)
{
	char script[PATH_MAX];
	script_path(script, sizeof(script));
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execlp("bash", "bash", script, outdir, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static void copy_field(char *dst, const char *src)
{
	snprintf(dst, FIELD, "%s", src);
}

/* Cut the next `sep`-separated field off *p (in place); NULL at the end.
 * Empty fields between repeated separators are skipped. */
static char *next_field(char **p, char sep)
{
	char *s = *p;
	while (s && *s == sep)
		s++;
	if (!s || !*s)
		return NULL;
	char *end = strchr(s, sep);
	if (end) {
		*end = '\0';
		*p = end + 1;
	} else {
		*p = NULL;
	}
	return s;
}

/* Parse the options column (space-separated, see make-matrix.sh). */
static int parse_options(struct row *r, char *opts)
{
	char *rest = opts;
	for (char *tok = next_field(&rest, ' '); tok; tok = next_field(&rest, ' ')) {
		char *val = NULL;
		if (!strcmp(tok, "-"))
			continue;
		if (!strcmp(tok, "--no-legacy-cn")) {
			r->legacy_cn = false;
			continue;
		}
		val = next_field(&rest, ' ');
		if (!val)
			return -1;
		if (!strcmp(tok, "--ca"))
			copy_field(r->ca, val);
		else if (!strcmp(tok, "--crl"))
			copy_field(r->crl, val);
		else if (!strcmp(tok, "--chain"))
			copy_field(r->chain, val);
		else if (!strcmp(tok, "--eku"))
			r->eku = !strcmp(val, "strict") ? TLS_EKU_STRICT : TLS_EKU_LENIENT;
		else if (!strcmp(tok, "--role"))
			r->role = !strcmp(val, "client") ? TLS_ROLE_CLIENT : TLS_ROLE_SERVER;
		else
			return -1;
	}
	return 0;
}

static int load_manifest(void)
{
	char path[PATH_MAX], line[2048];
	snprintf(path, sizeof(path), "%s/MANIFEST", matrix_dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	nrows = 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		char *cols[6], *rest = line;
		int n = 0;
		for (char *t = next_field(&rest, '\t'); t && n < 6; t = next_field(&rest, '\t'))
			cols[n++] = t;
		if (n != 6 || nrows >= MAX_ROWS) {
			fclose(f);
			return -1;
		}
		struct row *r = &rows[nrows++];
		memset(r, 0, sizeof(*r));
		r->legacy_cn = true;
		copy_field(r->name, cols[0]);
		copy_field(r->file, cols[1]);
		copy_field(r->domain, strcmp(cols[2], "-") ? cols[2] : "");
		r->exit_code = cols[3][0] - '0';
		copy_field(r->verdict, cols[4]);
		if (parse_options(r, cols[5]) < 0) {
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return nrows > 0 ? 0 : -1;
}

static int group_setup(void **state)
{
	(void)state;
	const char *tmp = getenv("TMPDIR");
	signal(SIGPIPE, SIG_IGN);
	snprintf(matrix_dir, sizeof(matrix_dir), "%s/sipsd-tls-test.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(matrix_dir)) {
		fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
		return -1;
	}
	if (run_make_matrix(matrix_dir) < 0) {
		fprintf(stderr, "make-matrix.sh failed\n");
		return -1;
	}
	if (load_manifest() < 0) {
		fprintf(stderr, "cannot parse %s/MANIFEST\n", matrix_dir);
		return -1;
	}
	return 0;
}

static int matrix_teardown(void **state)
{
	(void)state;
	if (matrix_dir[0])
		nftw(matrix_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* ---- helpers ---- */

static void mpath(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", matrix_dir, name);
}

/* "good.pem" -> "good.key" */
static void key_path(char *buf, size_t size, const char *certfile)
{
	char base[FIELD];
	copy_field(base, certfile);
	char *dot = strrchr(base, '.');
	if (dot)
		*dot = '\0';
	snprintf(buf, size, "%s/%s.key", matrix_dir, base);
}

static STACK_OF(X509) * load_pem_certs(const char *path)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	BIO *bio = BIO_new_file(path, "r");
	X509 *x;
	if (!sk || !bio) {
		BIO_free(bio);
		sk_X509_free(sk);
		return NULL;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		sk_X509_push(sk, x);
	BIO_free(bio);
	ERR_clear_error();
	return sk;
}

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int row_store(const struct row *r, X509_STORE **store)
{
	char ca[PATH_MAX], crl[PATH_MAX];
	const char *ca_file = NULL, *ca_dir = NULL;
	if (r->ca[0]) {
		mpath(ca, sizeof(ca), r->ca);
		if (is_dir(ca))
			ca_dir = ca;
		else
			ca_file = ca;
	}
	if (r->crl[0])
		mpath(crl, sizeof(crl), r->crl);
	return tls_store_create(ca_file, ca_dir, r->crl[0] ? crl : NULL, store);
}

/* The verdict `sipsctl cert` would give: chain, then names/EKU/domain. */
static enum tls_verdict row_library_verdict(const struct row *r, struct tls_identity_set *ids)
{
	char path[PATH_MAX];
	X509_STORE *store = NULL;
	STACK_OF(X509) *untrusted = NULL;
	mpath(path, sizeof(path), r->file);
	STACK_OF(X509) *certs = load_pem_certs(path);
	assert_non_null(certs);
	assert_true(sk_X509_num(certs) >= 1);
	if (r->chain[0]) {
		mpath(path, sizeof(path), r->chain);
		untrusted = load_pem_certs(path);
		assert_non_null(untrusted);
	}
	assert_int_equal(row_store(r, &store), 0);
	X509 *leaf = sk_X509_value(certs, 0);
	int err = -1, depth = -1;
	enum tls_verdict v = tls_chain_verify(store, leaf, untrusted, &err, &depth);
	struct tls_identity_policy pol = {r->legacy_cn, r->eku};
	enum tls_verdict names =
	    tls_identity_authenticate(leaf, &pol, r->role, str_from_cstr(r->domain), ids);
	if (v == TLS_VERDICT_OK)
		v = names;
	X509_STORE_free(store);
	sk_X509_pop_free(certs, X509_free);
	sk_X509_pop_free(untrusted, X509_free);
	assert_int_equal(ERR_peek_error(), 0); /* no stray errors left behind */
	return v;
}

static enum tls_verdict verdict_by_name(const char *name)
{
	for (int v = 0; v < TLS_VERDICT_COUNT; v++)
		if (!strcmp(tls_verdict_name((enum tls_verdict)v), name))
			return (enum tls_verdict)v;
	fail_msg("unknown verdict word '%s' in MANIFEST", name);
	return TLS_VERDICT_UNTRUSTED;
}

/* ---- handshakes over a socketpair ---- */

/* struct endpoint, hs_pump and app_read come from tls_harness.c. */

static int app_write(struct endpoint *e, const char *buf, int len)
{
	ERR_clear_error();
	int n = SSL_write(e->ssl, buf, len);
	ERR_clear_error();
	return n;
}

struct pair {
	struct tls_ctx *sctx, *cctx;
	struct endpoint c, s;
};

static void pair_open(struct pair *p, const struct tls_ctx_cfg *scfg,
		      const struct tls_ctx_cfg *ccfg, const char *domain, int max_version)
{
	int sv[2];
	memset(p, 0, sizeof(*p));
	assert_int_equal(tls_ctx_create(scfg, TLS_SIDE_SERVER, &p->sctx), 0);
	assert_int_equal(tls_ctx_create(ccfg, TLS_SIDE_CLIENT, &p->cctx), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(fcntl(sv[i], F_SETFL, fcntl(sv[i], F_GETFL) | O_NONBLOCK), 0);
	assert_int_equal(tls_ssl_client_create(p->cctx, str_from_cstr(domain), &p->c.ssl), 0);
	assert_int_equal(tls_ssl_server_create(p->sctx, &p->s.ssl), 0);
	if (max_version)
		assert_int_equal(SSL_set_max_proto_version(p->c.ssl, max_version), 1);
	p->c.fd = sv[0];
	p->s.fd = sv[1];
	assert_int_equal(SSL_set_fd(p->c.ssl, sv[0]), 1);
	assert_int_equal(SSL_set_fd(p->s.ssl, sv[1]), 1);
}

static void pair_close(struct pair *p)
{
	SSL_free(p->c.ssl);
	SSL_free(p->s.ssl);
	close(p->c.fd);
	close(p->s.fd);
	tls_ctx_destroy(p->sctx);
	tls_ctx_destroy(p->cctx);
	ERR_clear_error();
}

static const char ping[] = "OPTIONS sips:example.net SIP/2.0\r\n";

/* One MANIFEST row through a real handshake. Returns the number of
 * disagreements (printed). */
static int row_handshake(const struct row *r, int max_version)
{
	char cert[PATH_MAX], key[PATH_MAX], chain[PATH_MAX], ca[PATH_MAX], crl[PATH_MAX];
	char good[PATH_MAX], good_key[PATH_MAX], root[PATH_MAX];
	struct tls_ctx_cfg scfg, ccfg;
	struct pair p;
	int bad = 0;
	enum tls_verdict want = verdict_by_name(r->verdict);
	const char *ver = max_version ? "TLS1.2" : "TLS1.3";

	mpath(cert, sizeof(cert), r->file);
	key_path(key, sizeof(key), r->file);
	mpath(chain, sizeof(chain), r->chain);
	mpath(ca, sizeof(ca), r->ca);
	mpath(crl, sizeof(crl), r->crl);
	mpath(good, sizeof(good), "good.pem");
	mpath(good_key, sizeof(good_key), "good.key");
	mpath(root, sizeof(root), "ca.pem");
	tls_ctx_cfg_init(&scfg);
	tls_ctx_cfg_init(&ccfg);

	/* The side that checks uses the row's trust and policy; the other side
	 * presents the row's certificate. */
	struct tls_ctx_cfg *checker = r->role == TLS_ROLE_SERVER ? &ccfg : &scfg;
	struct tls_ctx_cfg *holder = r->role == TLS_ROLE_SERVER ? &scfg : &ccfg;
	holder->cert_file = cert;
	holder->key_file = key;
	holder->chain_file = r->chain[0] ? chain : NULL;
	if (r->ca[0]) {
		if (is_dir(ca))
			checker->ca_dir = ca;
		else
			checker->ca_file = ca;
	}
	checker->crl_file = r->crl[0] ? crl : NULL;
	checker->policy.legacy_cn = r->legacy_cn;
	checker->policy.eku = r->eku;
	if (r->role == TLS_ROLE_CLIENT) {
		/* Mutual TLS: the server is example.net with the good certificate. */
		scfg.cert_file = good;
		scfg.key_file = good_key;
		ccfg.ca_file = root;
	} else {
		/* The server checks no client certificate here; a small store
		 * spares loading the system's for every row. */
		scfg.ca_file = root;
	}
	const char *domain = r->role == TLS_ROLE_SERVER ? r->domain : "example.net";

	pair_open(&p, &scfg, &ccfg, domain, max_version);
	if (!hs_pump(&p.c, &p.s)) {
		print_error("%s [%s]: handshake did not finish\n", r->name, ver);
		pair_close(&p);
		return 1;
	}
	const struct tls_peer *cp = tls_ssl_peer(p.c.ssl);
	const struct tls_peer *sp = tls_ssl_peer(p.s.ssl);
	assert_non_null(cp);
	assert_non_null(sp);
	char line[1024];

	if (r->role == TLS_ROLE_SERVER) {
		/* The client decides inside its handshake. */
		enum tls_verdict got =
		    cp->auth == TLS_PEER_AUTHENTICATED ? TLS_VERDICT_OK : cp->verdict;
		tls_peer_format(cp, line, sizeof(line));
		if (got != want || (want == TLS_VERDICT_OK) != p.c.ok) {
			print_error("%s [%s]: want %s, handshake gave %s (client %s): %s\n",
				    r->name, ver, r->verdict, tls_verdict_name(got),
				    p.c.ok ? "ok" : "failed", line);
			bad++;
		}
		/* Spec rule 6: the wanted domain went out as SNI (an IP literal
		 * never does, RFC 6066 §3). */
		const char *sni = SSL_get_servername(p.s.ssl, TLSEXT_NAMETYPE_host_name);
		unsigned char ip[16];
		bool literal = inet_pton(AF_INET, domain, ip) == 1;
		if (literal ? sni != NULL : (!sni || strcmp(sni, domain))) {
			print_error("%s [%s]: server saw SNI '%s', want '%s'\n", r->name, ver,
				    sni ? sni : "(none)", literal ? "(none)" : domain);
			bad++;
		}
		if (want == TLS_VERDICT_NAME_MISMATCH || want == TLS_VERDICT_NO_IDENTITY) {
			/* The reason names the wanted domain and the found set. */
			char w[FIELD + 16];
			snprintf(w, sizeof(w), "wanted=%s ", domain);
			if (!strstr(line, w) || !strstr(line, "found={")) {
				print_error("%s [%s]: reason lacks wanted/found: %s\n", r->name,
					    ver, line);
				bad++;
			}
		}
		if (want == TLS_VERDICT_OK) {
			if (tls_ssl_handshake_done(p.c.ssl) != 0 || !p.s.ok ||
			    tls_ssl_handshake_done(p.s.ssl) != 0 ||
			    sp->auth != TLS_PEER_UNAUTHENTICATED) {
				print_error("%s [%s]: accepted handshake not usable\n", r->name,
					    ver);
				bad++;
			}
		} else if (cp->auth != TLS_PEER_REFUSED) {
			print_error("%s [%s]: client not marked refused\n", r->name, ver);
			bad++;
		}
	} else {
		/* Mutual TLS: the server checks the client's certificate. */
		tls_peer_format(sp, line, sizeof(line));
		enum tls_verdict got;
		if (sp->auth == TLS_PEER_AUTHENTICATED)
			got = r->domain[0] ? tls_identity_verdict(sp->ids, str_from_cstr(r->domain))
					   : TLS_VERDICT_OK;
		else
			got = sp->auth == TLS_PEER_REFUSED ? sp->verdict : TLS_VERDICT_NO_IDENTITY;
		if (got != want || !sp->has_cert) {
			print_error("%s [%s]: want %s, server side gave %s: %s\n", r->name, ver,
				    r->verdict, tls_verdict_name(got), line);
			bad++;
		}
		bool accepted = want == TLS_VERDICT_OK || want == TLS_VERDICT_NAME_MISMATCH ||
				want == TLS_VERDICT_NO_IDENTITY;
		if (accepted != (p.s.ok && tls_ssl_handshake_done(p.s.ssl) == 0)) {
			print_error("%s [%s]: server handshake %s, want %s\n", r->name, ver,
				    p.s.ok ? "ok" : "failed", accepted ? "ok" : "failed");
			bad++;
		}
	}

	/* Application data: passes only on an accepted connection. The client
	 * sends as soon as its handshake says done, as a transport would. */
	char buf[256];
	int sent = p.c.ok ? app_write(&p.c, ping, (int)sizeof(ping) - 1) : -1;
	int got_bytes = app_read(&p.s, buf, (int)sizeof(buf));
	bool accepted_all = want == TLS_VERDICT_OK ||
			    (r->role == TLS_ROLE_CLIENT && (want == TLS_VERDICT_NAME_MISMATCH ||
							    want == TLS_VERDICT_NO_IDENTITY));
	if (accepted_all) {
		if (sent != (int)sizeof(ping) - 1 || got_bytes != (int)sizeof(ping) - 1 ||
		    memcmp(buf, ping, sizeof(ping) - 1)) {
			print_error("%s [%s]: data did not pass (sent %d, got %d)\n", r->name, ver,
				    sent, got_bytes);
			bad++;
		}
	} else {
		if (r->role == TLS_ROLE_SERVER && (p.c.ok || sent > 0)) {
			print_error("%s [%s]: client could send after refusal\n", r->name, ver);
			bad++;
		}
		if (got_bytes != 0) {
			print_error("%s [%s]: server received %d application bytes\n", r->name, ver,
				    got_bytes);
			bad++;
		}
	}
	pair_close(&p);
	return bad;
}

/* ---- matrix tests ---- */

static void test_matrix_library(void **state)
{
	(void)state;
	static struct tls_identity_set ids;
	int bad = 0;
	for (size_t i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		enum tls_verdict got = row_library_verdict(r, &ids);
		enum tls_verdict want = verdict_by_name(r->verdict);
		int exit_code = got == TLS_VERDICT_OK ? 0 : 1;
		if (got != want || exit_code != r->exit_code) {
			print_error("%s: want %s (exit %d), library gave %s\n", r->name, r->verdict,
				    r->exit_code, tls_verdict_name(got));
			bad++;
		}
	}
	assert_true(nrows >= 40);
	assert_int_equal(bad, 0);
}

static void test_matrix_handshake_tls13(void **state)
{
	(void)state;
	int bad = 0, ran = 0;
	for (size_t i = 0; i < nrows; i++) {
		if (!rows[i].domain[0])
			continue; /* no wanted domain: nothing for a client to check */
		bad += row_handshake(&rows[i], 0);
		ran++;
	}
	assert_true(ran >= 40);
	assert_int_equal(bad, 0);
}

static void test_matrix_handshake_tls12(void **state)
{
	(void)state;
	int bad = 0;
	for (size_t i = 0; i < nrows; i++)
		if (rows[i].domain[0])
			bad += row_handshake(&rows[i], TLS1_2_VERSION);
	assert_int_equal(bad, 0);
}

/* ---- mutual TLS ---- */

static void mutual_cfgs(struct tls_ctx_cfg *scfg, struct tls_ctx_cfg *ccfg, char paths[][PATH_MAX],
			const char *client_cert, const char *client_key)
{
	tls_ctx_cfg_init(scfg);
	tls_ctx_cfg_init(ccfg);
	mpath(paths[0], PATH_MAX, "good.pem");
	mpath(paths[1], PATH_MAX, "good.key");
	mpath(paths[2], PATH_MAX, "ca.pem");
	scfg->cert_file = paths[0];
	scfg->key_file = paths[1];
	scfg->ca_file = paths[2];
	ccfg->ca_file = paths[2];
	if (client_cert) {
		mpath(paths[3], PATH_MAX, client_cert);
		mpath(paths[4], PATH_MAX, client_key);
		ccfg->cert_file = paths[3];
		ccfg->key_file = paths[4];
	}
}

/* RFC 5924: a sipDomain-only client certificate (no clientAuth) must pass
 * the server's check; its identity set is kept on the connection. */
static void test_mutual_sipdomain_client(void **state)
{
	(void)state;
	char paths[5][PATH_MAX];
	struct tls_ctx_cfg scfg, ccfg;
	struct pair p;
	mutual_cfgs(&scfg, &ccfg, paths, "eku-sip.pem", "eku-sip.key");
	scfg.policy.eku = TLS_EKU_STRICT;
	scfg.require_client_cert = true;
	pair_open(&p, &scfg, &ccfg, "example.net", 0);
	assert_true(hs_pump(&p.c, &p.s));
	assert_true(p.c.ok);
	assert_true(p.s.ok);
	assert_int_equal(tls_ssl_handshake_done(p.c.ssl), 0);
	assert_int_equal(tls_ssl_handshake_done(p.s.ssl), 0);
	const struct tls_peer *sp = tls_ssl_peer(p.s.ssl);
	assert_int_equal(sp->auth, TLS_PEER_AUTHENTICATED);
	assert_true(sp->has_cert);
	assert_int_equal(sp->ids->count, 1);
	assert_int_equal(sp->ids->source, TLS_IDENTITY_SRC_URI);
	assert_true(tls_identity_match(sp->ids, STR_LIT("example.net")));
	assert_false(tls_identity_match(sp->ids, STR_LIT("example.com")));
	/* The server's own identities, for Record-Route (RFC 5922 §7.5). */
	assert_true(tls_identity_match(tls_ctx_identities(p.sctx), STR_LIT("example.net")));
	char buf[64];
	assert_int_equal(app_write(&p.c, ping, (int)sizeof(ping) - 1), (int)sizeof(ping) - 1);
	assert_int_equal(app_read(&p.s, buf, sizeof(buf)), (int)sizeof(ping) - 1);
	char line[1024];
	tls_peer_format(sp, line, sizeof(line));
	assert_non_null(strstr(line, "auth=authenticated"));
	assert_non_null(strstr(line, "found={example.net}"));
	assert_non_null(strstr(line, "sha256="));
	pair_close(&p);
}

/* Spec rule 8: a client without a certificate is unauthenticated, not an
 * error, unless the listener requires one. */
static void test_client_without_cert(void **state)
{
	(void)state;
	char paths[5][PATH_MAX];
	struct tls_ctx_cfg scfg, ccfg;
	struct pair p;
	mutual_cfgs(&scfg, &ccfg, paths, NULL, NULL);
	pair_open(&p, &scfg, &ccfg, "example.net", 0);
	assert_true(hs_pump(&p.c, &p.s));
	assert_true(p.c.ok);
	assert_true(p.s.ok);
	assert_int_equal(tls_ssl_handshake_done(p.s.ssl), 0);
	const struct tls_peer *sp = tls_ssl_peer(p.s.ssl);
	assert_int_equal(sp->auth, TLS_PEER_UNAUTHENTICATED);
	assert_false(sp->has_cert);
	assert_int_equal(sp->ids->count, 0);
	assert_int_equal(tls_ssl_peer(p.c.ssl)->auth, TLS_PEER_AUTHENTICATED);
	char buf[64];
	assert_int_equal(app_write(&p.c, ping, (int)sizeof(ping) - 1), (int)sizeof(ping) - 1);
	assert_int_equal(app_read(&p.s, buf, sizeof(buf)), (int)sizeof(ping) - 1);
	pair_close(&p);

	/* require_client_cert: the same client is turned away. */
	scfg.require_client_cert = true;
	pair_open(&p, &scfg, &ccfg, "example.net", 0);
	assert_true(hs_pump(&p.c, &p.s));
	assert_false(p.s.ok);
	assert_int_equal(app_read(&p.s, buf, sizeof(buf)), 0);
	pair_close(&p);
}

/* A refused server certificate: the client's handshake fails, its reason
 * names the wanted domain and the names found (T3). */
static void test_refusal_reason(void **state)
{
	(void)state;
	char paths[5][PATH_MAX];
	struct tls_ctx_cfg scfg, ccfg;
	struct pair p;
	mutual_cfgs(&scfg, &ccfg, paths, NULL, NULL);
	mpath(paths[0], PATH_MAX, "t3-dns.pem");
	mpath(paths[1], PATH_MAX, "t3-dns.key");
	pair_open(&p, &scfg, &ccfg, "example.net", 0);
	assert_true(hs_pump(&p.c, &p.s));
	assert_false(p.c.ok);
	assert_int_equal(tls_ssl_handshake_done(p.c.ssl), -EPERM);
	const struct tls_peer *cp = tls_ssl_peer(p.c.ssl);
	assert_int_equal(cp->auth, TLS_PEER_REFUSED);
	assert_int_equal(cp->verdict, TLS_VERDICT_NAME_MISMATCH);
	assert_true(cp->has_cert);
	char line[1024];
	tls_peer_format(cp, line, sizeof(line));
	assert_non_null(strstr(line, "auth=refused verdict=name-mismatch wanted=example.net "
				     "found={p2.example.net}"));
	assert_int_equal(SSL_get_verify_result(p.c.ssl), X509_V_ERR_APPLICATION_VERIFICATION);
	pair_close(&p);
}

/* ---- contexts and SSL objects ---- */

static void test_ctx_errors(void **state)
{
	(void)state;
	char paths[5][PATH_MAX], other_key[PATH_MAX], nowhere[PATH_MAX];
	struct tls_ctx_cfg scfg, ccfg;
	struct tls_ctx *ctx = NULL;
	mutual_cfgs(&scfg, &ccfg, paths, NULL, NULL);
	mpath(other_key, sizeof(other_key), "t3-dns.key");
	mpath(nowhere, sizeof(nowhere), "nowhere.pem");

	struct tls_ctx_cfg c = scfg;
	c.cert_file = NULL;
	assert_int_equal(tls_ctx_create(&c, TLS_SIDE_SERVER, &ctx), -EINVAL);
	c = scfg;
	c.cert_file = nowhere;
	assert_int_equal(tls_ctx_create(&c, TLS_SIDE_SERVER, &ctx), -ENOENT);
	c = scfg;
	c.key_file = other_key;
	assert_int_equal(tls_ctx_create(&c, TLS_SIDE_SERVER, &ctx), -EKEYREJECTED);
	c = scfg;
	c.ca_file = paths[1]; /* a key, not a certificate */
	assert_int_equal(tls_ctx_create(&c, TLS_SIDE_SERVER, &ctx), -EBADMSG);
	c = scfg;
	c.crl_file = paths[0]; /* a certificate, not a CRL */
	assert_int_equal(tls_ctx_create(&c, TLS_SIDE_SERVER, &ctx), -EBADMSG);
	c = scfg;
	c.ca_dir = nowhere;
	assert_int_equal(tls_ctx_create(&c, TLS_SIDE_SERVER, &ctx), -ENOENT);
	assert_null(ctx);

	/* SSL objects: the side must fit, the domain must be sane. */
	assert_int_equal(tls_ctx_create(&ccfg, TLS_SIDE_CLIENT, &ctx), 0);
	SSL *ssl = NULL;
	assert_int_equal(tls_ssl_server_create(ctx, &ssl), -EINVAL);
	assert_int_equal(tls_ssl_client_create(ctx, STR_NULL, &ssl), -EINVAL);
	assert_int_equal(tls_ssl_client_create(ctx, STR_LIT("exa\0mple.net"), &ssl), -EINVAL);
	char longname[300];
	memset(longname, 'a', sizeof(longname));
	assert_int_equal(tls_ssl_client_create(ctx, str_make(longname, 254), &ssl), -EINVAL);
	assert_null(ssl);
	/* An IP literal is not sent as SNI (RFC 6066 §3). */
	assert_int_equal(tls_ssl_client_create(ctx, STR_LIT("192.0.2.1"), &ssl), 0);
	assert_null(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name));
	assert_string_equal(tls_ssl_peer(ssl)->wanted, "192.0.2.1");
	SSL_free(ssl);
	assert_int_equal(tls_ssl_client_create(ctx, STR_LIT("[2001:db8::1]"), &ssl), 0);
	assert_null(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name));
	SSL_free(ssl);
	assert_int_equal(tls_ssl_client_create(ctx, STR_LIT("example.net"), &ssl), 0);
	assert_string_equal(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name), "example.net");
	assert_int_equal(tls_ssl_handshake_done(ssl), -EPERM); /* no handshake yet */
	SSL_free(ssl);
	tls_ctx_destroy(ctx);
	tls_ctx_destroy(NULL);

	/* A foreign SSL has no peer record. */
	SSL_CTX *raw = SSL_CTX_new(TLS_client_method());
	ssl = SSL_new(raw);
	assert_null(tls_ssl_peer(ssl));
	assert_int_equal(tls_ssl_handshake_done(ssl), -EPERM);
	SSL_free(ssl);
	SSL_CTX_free(raw);
	ERR_clear_error();
}

/* ---- synthetic certificates (no signature needed for names) ---- */

struct san {
	int type; /* GEN_DNS, GEN_URI, GEN_EMAIL, GEN_IPADD */
	const char *val;
	int len; /* 0: strlen */
};

static X509 *mk_cert(const char *const *cns, const int *cn_lens, size_t ncn, const struct san *sans,
		     size_t nsan, bool with_san)
{
	X509 *x = X509_new();
	assert_non_null(x);
	X509_NAME *name = X509_get_subject_name(x);
	for (size_t i = 0; i < ncn; i++)
		assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
							    (const unsigned char *)cns[i],
							    cn_lens ? cn_lens[i] : -1, -1, 0),
				 1);
	if (with_san) {
		GENERAL_NAMES *gens = GENERAL_NAMES_new();
		for (size_t i = 0; i < nsan; i++) {
			GENERAL_NAME *g = GENERAL_NAME_new();
			ASN1_STRING *s = sans[i].type == GEN_IPADD ? ASN1_OCTET_STRING_new()
								   : ASN1_IA5STRING_new();
			int len = sans[i].len ? sans[i].len : (int)strlen(sans[i].val);
			assert_int_equal(ASN1_STRING_set(s, sans[i].val, len), 1);
			GENERAL_NAME_set0_value(g, sans[i].type, s);
			sk_GENERAL_NAME_push(gens, g);
		}
		assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0), 1);
		GENERAL_NAMES_free(gens);
	}
	return x;
}

static void add_eku(X509 *x, const char *const *oids, size_t n)
{
	EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
	for (size_t i = 0; i < n; i++)
		sk_ASN1_OBJECT_push(eku, OBJ_txt2obj(oids[i], 1));
	assert_int_equal(X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, 0), 1);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
}

static void assert_set(const struct tls_identity_set *set, const char *want)
{
	char buf[TLS_IDENTITY_BUF_SIZE + 64];
	tls_identity_set_format(set, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

static void test_uri_forms(void **state)
{
	(void)state;
	static struct tls_identity_set set;
	const struct san sans[] = {
	    {GEN_URI, "SIP:Example.NET", 0}, /* scheme and host case */
	    {GEN_URI, "sip:example.net", 0}, /* duplicate after lower-casing */
	    {GEN_URI, "sip:a.example:5061;transport=tls", 0},
	    {GEN_URI, "sip:b.example?subject=x", 0},
	    {GEN_URI, "sip:[2001:DB8::1]:5061", 0},
	    {GEN_URI, "sip:c.example;lr", 0},
	    {GEN_URI, "sip:", 0},		  /* no host: ignored */
	    {GEN_URI, "sip:bad host.example", 0}, /* not a host: ignored */
	    {GEN_URI, "sip:user@d.example", 0},	  /* user part: not an identity */
	    {GEN_URI, "sip:+1555;phone-context=x@e.example", 0},
	    {GEN_URI, "sips:f.example", 0},
	    {GEN_URI, "sipx:g.example", 0},
	    {GEN_URI, "https://h.example/", 0},
	    {GEN_URI, "si", 0},
	    {GEN_DNS, "dns.example", 0}, /* a sip: URI exists: ignored */
	    {GEN_EMAIL, "sip@i.example", 0},
	    {GEN_IPADD, "\x7f\x00\x00\x01", 4},
	};
	X509 *x = mk_cert(NULL, NULL, 0, sans, sizeof(sans) / sizeof(sans[0]), true);
	assert_int_equal(tls_identity_extract(x, NULL, &set), 0);
	assert_int_equal(set.source, TLS_IDENTITY_SRC_URI);
	assert_set(&set, "{example.net,a.example,b.example,[2001:db8::1],c.example}");
	assert_int_equal(set.ignored, 2);
	assert_false(set.bad_name);
	assert_true(tls_identity_match(&set, STR_LIT("EXAMPLE.net")));
	assert_true(tls_identity_match(&set, STR_LIT("[2001:db8::1]")));
	assert_false(tls_identity_match(&set, STR_LIT("dns.example")));
	assert_false(tls_identity_match(&set, STR_LIT("d.example")));
	assert_false(tls_identity_match(&set, STR_LIT("f.example")));
	assert_false(tls_identity_match(&set, STR_LIT("example.ne")));
	assert_false(tls_identity_match(&set, STR_LIT("example.net.")));
	assert_false(tls_identity_match(&set, STR_NULL));
	assert_int_equal(tls_identity_verdict(&set, STR_LIT("a.example")), TLS_VERDICT_OK);
	assert_int_equal(tls_identity_verdict(&set, STR_LIT("z.example")),
			 TLS_VERDICT_NAME_MISMATCH);
	X509_free(x);
}

static void test_dns_and_cn(void **state)
{
	(void)state;
	static struct tls_identity_set set;
	const struct tls_identity_policy no_cn = {false, TLS_EKU_LENIENT};

	/* dNSNames when no sip: URI is an identity; odd entries ignored. */
	const struct san dns[] = {
	    {GEN_URI, "sip:admin@example.net", 0}, {GEN_DNS, "Example.NET", 0},
	    {GEN_DNS, "*.Example.net", 0},	   {GEN_DNS, "bad name", 0},
	    {GEN_DNS, "caf\xc3\xa9.example", 0},
	};
	const char *cn[] = {"cn.example"};
	X509 *x = mk_cert(cn, NULL, 1, dns, 5, true);
	assert_int_equal(tls_identity_extract(x, NULL, &set), 0);
	assert_int_equal(set.source, TLS_IDENTITY_SRC_DNS);
	assert_set(&set, "{example.net,*.example.net}");
	assert_int_equal(set.ignored, 2);
	assert_false(tls_identity_match(&set, STR_LIT("a.example.net")));
	assert_true(tls_identity_match(&set, STR_LIT("*.example.net")));
	assert_false(tls_identity_match(&set, STR_LIT("cn.example")));
	X509_free(x);

	/* An empty subjectAltName still hides the CN. */
	x = mk_cert(cn, NULL, 1, NULL, 0, true);
	assert_int_equal(tls_identity_extract(x, NULL, &set), 0);
	assert_int_equal(set.count, 0);
	assert_int_equal(tls_identity_verdict(&set, STR_LIT("cn.example")),
			 TLS_VERDICT_NO_IDENTITY);
	X509_free(x);

	/* No subjectAltName: every CN that is a host name, unless disabled. */
	const char *cns[] = {"CN.Example", "Some Company Ltd", "second.example"};
	x = mk_cert(cns, NULL, 3, NULL, 0, false);
	assert_int_equal(tls_identity_extract(x, NULL, &set), 0);
	assert_int_equal(set.source, TLS_IDENTITY_SRC_CN);
	assert_set(&set, "{cn.example,second.example}");
	assert_int_equal(set.ignored, 1);
	assert_int_equal(tls_identity_extract(x, &no_cn, &set), 0);
	assert_int_equal(set.count, 0);
	assert_int_equal(set.source, TLS_IDENTITY_SRC_NONE);
	X509_free(x);

	/* A CN with an embedded NUL refuses the certificate (when used). */
	const char nulcn[] = "example.net\0.evil.org";
	const char *nul[] = {nulcn};
	const int nul_len[] = {(int)sizeof(nulcn) - 1};
	x = mk_cert(nul, nul_len, 1, NULL, 0, false);
	assert_int_equal(tls_identity_extract(x, NULL, &set), -EBADMSG);
	assert_true(set.bad_name);
	assert_int_equal(set.count, 0);
	assert_string_equal(set.bad_desc, "CN:example.net\\x00.evil.org");
	assert_int_equal(tls_identity_verdict(&set, STR_LIT("example.net")), TLS_VERDICT_BAD_NAME);
	assert_false(tls_identity_match(&set, STR_LIT("example.net")));
	assert_int_equal(tls_identity_extract(x, &no_cn, &set), 0);
	assert_false(set.bad_name);
	X509_free(x);

	/* NUL in a URI refuses the certificate even beside a good URI. */
	const struct san nuluri[] = {
	    {GEN_URI, "sip:example.net", 0},
	    {GEN_URI, "sip:example.org\0.evil", 21},
	};
	x = mk_cert(NULL, NULL, 0, nuluri, 2, true);
	assert_int_equal(tls_identity_extract(x, NULL, &set), -EBADMSG);
	assert_true(set.bad_name);
	assert_string_equal(set.bad_desc, "URI:sip:example.org\\x00.evil");
	assert_int_equal(
	    tls_identity_authenticate(x, NULL, TLS_ROLE_SERVER, STR_LIT("example.net"), &set),
	    TLS_VERDICT_BAD_NAME);
	X509_free(x);

	assert_int_equal(tls_identity_extract(NULL, NULL, &set), -EINVAL);
	assert_int_equal(ERR_peek_error(), 0);
}

static void test_bounds(void **state)
{
	(void)state;
	static struct tls_identity_set set;
	static char names[40][300];
	struct san sans[40];

	/* More names than the set holds: the first ones are kept. */
	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "sip:host%02d.example", i);
		sans[i] = (struct san){GEN_URI, names[i], 0};
	}
	X509 *x = mk_cert(NULL, NULL, 0, sans, 40, true);
	assert_int_equal(tls_identity_extract(x, NULL, &set), 0);
	assert_int_equal(set.count, TLS_IDENTITY_MAX_NAMES);
	assert_true(set.truncated);
	assert_true(tls_identity_match(&set, STR_LIT("host00.example")));
	assert_false(tls_identity_match(&set, STR_LIT("host39.example")));
	X509_free(x);

	/* Long names: 253 characters pass, 254 are ignored; the byte budget
	 * of the set truncates before the name count does. */
	for (int i = 0; i < 12; i++) {
		memset(names[i], 'a' + i, 253);
		names[i][253] = '\0';
		sans[i] = (struct san){GEN_DNS, names[i], 0};
	}
	memset(names[12], 'z', 254);
	names[12][254] = '\0';
	sans[12] = (struct san){GEN_DNS, names[12], 0};
	x = mk_cert(NULL, NULL, 0, sans, 13, true);
	assert_int_equal(tls_identity_extract(x, NULL, &set), 0);
	assert_int_equal(set.count, TLS_IDENTITY_BUF_SIZE / 254);
	assert_true(set.truncated);
	assert_int_equal(set.ignored, 1);
	assert_int_equal(tls_identity_set_name(&set, 0).len, 253);
	assert_null(tls_identity_set_name(&set, set.count).s);
	X509_free(x);

	/* Formatting is bounded and always terminated. */
	char small[8];
	tls_identity_set_format(&set, small, sizeof(small));
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_string_equal(small + sizeof(small) - 4, "...");
	char tiny[1] = {'x'};
	assert_int_equal(tls_identity_set_format(&set, tiny, sizeof(tiny)), 0);
	assert_int_equal(tiny[0], '\0');
	char reason[16];
	tls_verdict_format(reason, sizeof(reason), TLS_VERDICT_NAME_MISMATCH, 0,
			   STR_LIT("example.net"), &set);
	assert_int_equal(strlen(reason), sizeof(reason) - 1);
	assert_int_equal(tls_verdict_format(NULL, 0, TLS_VERDICT_OK, 0, STR_NULL, NULL), 0);
}

static void test_eku_policy(void **state)
{
	(void)state;
	const char *sip = "1.3.6.1.5.5.7.3.20", *srv = "1.3.6.1.5.5.7.3.1",
		   *cli = "1.3.6.1.5.5.7.3.2", *any = "2.5.29.37.0", *email = "1.3.6.1.5.5.7.3.4";
	const struct {
		const char *oids[3];
		size_t n;
		enum tls_verdict srv_lenient, srv_strict, cli_lenient, cli_strict;
	} cases[] = {
	    {{sip}, 1, TLS_VERDICT_OK, TLS_VERDICT_OK, TLS_VERDICT_OK, TLS_VERDICT_OK},
	    {{srv}, 1, TLS_VERDICT_OK, TLS_VERDICT_EKU, TLS_VERDICT_EKU, TLS_VERDICT_EKU},
	    {{cli}, 1, TLS_VERDICT_EKU, TLS_VERDICT_EKU, TLS_VERDICT_OK, TLS_VERDICT_EKU},
	    {{srv, cli}, 2, TLS_VERDICT_OK, TLS_VERDICT_EKU, TLS_VERDICT_OK, TLS_VERDICT_EKU},
	    {{any}, 1, TLS_VERDICT_OK, TLS_VERDICT_EKU, TLS_VERDICT_OK, TLS_VERDICT_EKU},
	    {{email}, 1, TLS_VERDICT_EKU, TLS_VERDICT_EKU, TLS_VERDICT_EKU, TLS_VERDICT_EKU},
	    {{email, sip}, 2, TLS_VERDICT_OK, TLS_VERDICT_OK, TLS_VERDICT_OK, TLS_VERDICT_OK},
	    {{srv, sip}, 2, TLS_VERDICT_OK, TLS_VERDICT_OK, TLS_VERDICT_OK, TLS_VERDICT_OK},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		X509 *x = mk_cert(NULL, NULL, 0, NULL, 0, false);
		add_eku(x, cases[i].oids, cases[i].n);
		assert_int_equal(tls_eku_check(x, TLS_ROLE_SERVER, TLS_EKU_LENIENT),
				 cases[i].srv_lenient);
		assert_int_equal(tls_eku_check(x, TLS_ROLE_SERVER, TLS_EKU_STRICT),
				 cases[i].srv_strict);
		assert_int_equal(tls_eku_check(x, TLS_ROLE_CLIENT, TLS_EKU_LENIENT),
				 cases[i].cli_lenient);
		assert_int_equal(tls_eku_check(x, TLS_ROLE_CLIENT, TLS_EKU_STRICT),
				 cases[i].cli_strict);
		X509_free(x);
	}
	X509 *x = mk_cert(NULL, NULL, 0, NULL, 0, false);
	assert_int_equal(tls_eku_check(x, TLS_ROLE_CLIENT, TLS_EKU_STRICT), TLS_VERDICT_OK);
	X509_free(x);
	assert_int_equal(tls_eku_check(NULL, TLS_ROLE_CLIENT, TLS_EKU_LENIENT), TLS_VERDICT_EKU);
}

/* A compact copy (what a connection keeps after its handshake) reads the
 * same as the full-size set it was made from, and a full-size copy of it
 * too. */
static void test_set_dup(void **state)
{
	(void)state;
	static struct tls_identity_set set, back;
	static const char *const names[] = {"example.com", "sip.example.net", "a.b"};
	tls_identity_set_init(&set);
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(names[i]);
		set.off[i] = set.used;
		set.len[i] = (uint8_t)n;
		memcpy(set.buf + set.used, names[i], n);
		set.used = (uint16_t)(set.used + n);
		set.count++;
	}
	set.source = TLS_IDENTITY_SRC_URI;
	struct tls_identity_set *d = tls_identity_set_dup(&set);
	assert_non_null(d);
	assert_int_equal(d->count, 3);
	assert_int_equal(d->source, TLS_IDENTITY_SRC_URI);
	for (size_t i = 0; i < 3; i++) {
		assert_true(tls_identity_match(d, str_from_cstr(names[i])));
		assert_true(str_eq(tls_identity_set_name(d, i), str_from_cstr(names[i])));
	}
	assert_false(tls_identity_match(d, STR_LIT("example.org")));
	char a[256], b[256];
	tls_identity_set_format(&set, a, sizeof(a));
	tls_identity_set_format(d, b, sizeof(b));
	assert_string_equal(a, b);
	assert_string_equal(b, "{example.com,sip.example.net,a.b}");
	tls_identity_set_copy(&back, d);
	tls_identity_set_format(&back, b, sizeof(b));
	assert_string_equal(a, b);
	free(d);
	/* The empty set: nothing matches, formats as {}. */
	d = tls_identity_set_dup(&tls_identity_set_empty);
	assert_non_null(d);
	assert_int_equal(d->count, 0);
	assert_false(tls_identity_match(d, STR_LIT("example.com")));
	free(d);
}

static void test_verdict_names(void **state)
{
	(void)state;
	const char *want[TLS_VERDICT_COUNT] = {
	    "ok",	   "untrusted",	  "expired",	   "not-yet-valid", "revoked",
	    "self-signed", "no-identity", "name-mismatch", "eku",	    "bad-name"};
	for (int v = 0; v < TLS_VERDICT_COUNT; v++)
		assert_string_equal(tls_verdict_name((enum tls_verdict)v), want[v]);
	assert_string_equal(tls_verdict_name((enum tls_verdict)99), "unknown");
	assert_int_equal(tls_verdict_from_x509(X509_V_OK), TLS_VERDICT_OK);
	assert_int_equal(tls_verdict_from_x509(X509_V_ERR_CERT_HAS_EXPIRED), TLS_VERDICT_EXPIRED);
	assert_int_equal(tls_verdict_from_x509(X509_V_ERR_CERT_NOT_YET_VALID),
			 TLS_VERDICT_NOT_YET_VALID);
	assert_int_equal(tls_verdict_from_x509(X509_V_ERR_CERT_REVOKED), TLS_VERDICT_REVOKED);
	assert_int_equal(tls_verdict_from_x509(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT),
			 TLS_VERDICT_SELF_SIGNED);
	assert_int_equal(tls_verdict_from_x509(X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN),
			 TLS_VERDICT_UNTRUSTED);
	assert_int_equal(tls_verdict_from_x509(X509_V_ERR_UNABLE_TO_GET_CRL),
			 TLS_VERDICT_UNTRUSTED);
	char buf[256];
	tls_verdict_format(buf, sizeof(buf), TLS_VERDICT_EXPIRED, X509_V_ERR_CERT_HAS_EXPIRED,
			   STR_NULL, NULL);
	assert_string_equal(buf, "expired: certificate has expired");
	tls_verdict_format(buf, sizeof(buf), TLS_VERDICT_NO_IDENTITY, 0, STR_LIT("example.net"),
			   NULL);
	assert_string_equal(buf, "no-identity: wanted example.net, found {}");
	/* Chain verification fails closed without a store or a certificate. */
	int err = 0;
	assert_int_equal(tls_chain_verify(NULL, NULL, NULL, &err, NULL), TLS_VERDICT_UNTRUSTED);
	assert_int_not_equal(err, X509_V_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_verdict_names),
	    cmocka_unit_test(test_set_dup),
	    cmocka_unit_test(test_uri_forms),
	    cmocka_unit_test(test_dns_and_cn),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_eku_policy),
	    cmocka_unit_test(test_matrix_library),
	    cmocka_unit_test(test_matrix_handshake_tls13),
	    cmocka_unit_test(test_matrix_handshake_tls12),
	    cmocka_unit_test(test_mutual_sipdomain_client),
	    cmocka_unit_test(test_client_without_cert),
	    cmocka_unit_test(test_refusal_reason),
	    cmocka_unit_test(test_ctx_errors),
	};
	/* Every wait is bounded by count; this bounds the whole run too. */
	alarm(240);
	return cmocka_run_group_tests(tests, group_setup, matrix_teardown);
}
