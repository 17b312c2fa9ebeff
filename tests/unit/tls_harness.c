/* tls_harness.c: the pieces test_tls_sni.c and test_tls_resume.c share: a
 * throw-away PKI written under a temporary directory, and real TLS
 * handshakes between two SSL objects over a socketpair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
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

#include "tls_harness.h"

char dir[1024]; /* short enough that every path below fits */

/* ---- a throw-away PKI ---- */

void path_of(char *buf, const char *name)
{
	/* dir is at most 1023 bytes and names are short: this always fits. */
	int n = snprintf(buf, PATH_MAX, "%.1023s/%.200s", dir, name);
	(void)n;
}

static void ext_add(X509 *x, X509V3_CTX *v3, int nid, const char *val)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v3, nid, val);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* A certificate for `key`, signed by issuer (self-signed when NULL). */
X509 *cert_make(EVP_PKEY *key, const char *cn, const char *san, const char *eku, bool ca,
		       X509 *issuer, EVP_PKEY *issuer_key)
{
	static long serial = 1000;
	X509 *x = X509_new();
	X509V3_CTX v3;
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	X509_NAME *name = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
						    (const unsigned char *)cn, -1, -1, 0),
			 1);
	assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name), 1);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	ext_add(x, &v3, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	ext_add(x, &v3, NID_key_usage,
		ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment");
	ext_add(x, &v3, NID_subject_key_identifier, "hash");
	if (san)
		ext_add(x, &v3, NID_subject_alt_name, san);
	if (eku)
		ext_add(x, &v3, NID_ext_key_usage, eku);
	assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
	return x;
}

void pem_write(const char *name, X509 *x, EVP_PKEY *key)
{
	char p[PATH_MAX];
	char file[PATH_MAX];
	snprintf(file, sizeof(file), "%s.pem", name);
	path_of(p, file);
	BIO *b = BIO_new_file(p, "w");
	assert_non_null(b);
	assert_int_equal(PEM_write_bio_X509(b, x), 1);
	BIO_free(b);
	if (key) {
		snprintf(file, sizeof(file), "%s.key", name);
		path_of(p, file);
		b = BIO_new_file(p, "w");
		assert_non_null(b);
		assert_int_equal(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL), 1);
		BIO_free(b);
	}
}

/* A leaf `name`.pem/.key signed by issuer. */
void leaf_make(const char *name, bool rsa, const char *cn, const char *san, const char *eku,
		      X509 *issuer, EVP_PKEY *issuer_key)
{
	EVP_PKEY *k = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
	assert_non_null(k);
	X509 *x = cert_make(k, cn, san, eku, false, issuer, issuer_key);
	pem_write(name, x, k);
	X509_free(x);
	EVP_PKEY_free(k);
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

int group_teardown(void **state)
{
	if (dir[0])
		nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* ---- handshakes over a socketpair ---- */

static void hs_step(struct endpoint *e)
{
	if (e->done)
		return;
	ERR_clear_error();
	int r = SSL_do_handshake(e->ssl);
	if (r == 1) {
		e->done = true;
		e->ok = true;
		return;
	}
	int err = SSL_get_error(e->ssl, r);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return;
	e->done = true;
	e->ok = false;
	ERR_clear_error();
	shutdown(e->fd, SHUT_WR); /* as a transport: close, the peer sees EOF */
}

bool hs_pump(struct endpoint *c, struct endpoint *s)
{
	for (int i = 0; i < PUMP_ROUNDS; i++) {
		hs_step(c);
		hs_step(s);
		if (c->done && s->done)
			return true;
	}
	return false;
}

int app_read(struct endpoint *e, char *buf, int size)
{
	int total = 0;
	for (int i = 0; i < 50 && total < size; i++) {
		ERR_clear_error();
		int n = SSL_read(e->ssl, buf + total, size - total);
		if (n > 0) {
			total += n;
			continue;
		}
		int err = SSL_get_error(e->ssl, n);
		if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
			break;
	}
	ERR_clear_error();
	return total;
}

/* Connect a client SSL (made by the caller) to a new server SSL of sctx. */
void conn_run(struct conn *k, struct tls_ctx *sctx, SSL *client, int max_version)
{
	int sv[2];
	memset(k, 0, sizeof(*k));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(fcntl(sv[i], F_SETFL, fcntl(sv[i], F_GETFL) | O_NONBLOCK), 0);
	k->c.ssl = client;
	assert_int_equal(tls_ssl_server_create(sctx, &k->s.ssl), 0);
	if (max_version)
		assert_int_equal(SSL_set_max_proto_version(client, max_version), 1);
	k->c.fd = sv[0];
	k->s.fd = sv[1];
	assert_int_equal(SSL_set_fd(k->c.ssl, sv[0]), 1);
	assert_int_equal(SSL_set_fd(k->s.ssl, sv[1]), 1);
	assert_true(hs_pump(&k->c, &k->s));
}

void conn_close(struct conn *k)
{
	SSL_free(k->c.ssl);
	SSL_free(k->s.ssl);
	close(k->c.fd);
	close(k->s.fd);
	ERR_clear_error();
}

/* Data passes client -> server (only on an accepted connection). */
bool conn_data_passes(struct conn *k)
{
	static const char ping[] = "OPTIONS sips:example.net SIP/2.0\r\n";
	char buf[64];
	ERR_clear_error();
	if (SSL_write(k->c.ssl, ping, (int)sizeof(ping) - 1) != (int)sizeof(ping) - 1)
		return false;
	return app_read(&k->s, buf, sizeof(buf)) == (int)sizeof(ping) - 1;
}
