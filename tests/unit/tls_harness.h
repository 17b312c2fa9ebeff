/* tls_harness.h: shared by the TLS unit tests (tls_harness.c). Failures
 * are cmocka assertions. */
#ifndef SIPSD_TESTS_TLS_HARNESS_H
#define SIPSD_TESTS_TLS_HARNESS_H

#include <stdbool.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls/tls_ctx.h"

/* Bound on handshake pump rounds (each round: one step per side). */
#define PUMP_ROUNDS 2000

struct endpoint {
	SSL *ssl;
	int fd;
	bool done;
	bool ok;
};

struct conn {
	struct endpoint c, s;
};

/* The test's temporary directory (the group setup fills it with mkdtemp). */
extern char dir[1024];

/* buf (PATH_MAX bytes) = dir/name. */
void path_of(char *buf, const char *name);
/* A certificate for `key`, signed by issuer (self-signed when NULL). */
X509 *cert_make(EVP_PKEY *key, const char *cn, const char *san, const char *eku, bool ca,
		X509 *issuer, EVP_PKEY *issuer_key);
/* dir/NAME.pem, and dir/NAME.key when key is given. */
void pem_write(const char *name, X509 *x, EVP_PKEY *key);
/* A leaf `name`.pem/.key signed by issuer. */
void leaf_make(const char *name, bool rsa, const char *cn, const char *san, const char *eku,
	       X509 *issuer, EVP_PKEY *issuer_key);
/* cmocka group teardown: removes dir and everything in it. */
int group_teardown(void **state);

/* Step both sides until both are done (at most PUMP_ROUNDS rounds). */
bool hs_pump(struct endpoint *c, struct endpoint *s);
/* Read size bytes of application data (bounded wait). */
int app_read(struct endpoint *e, char *buf, int size);
/* Connect a client SSL (made by the caller) to a new server SSL of sctx. */
void conn_run(struct conn *k, struct tls_ctx *sctx, SSL *client, int max_version);
void conn_close(struct conn *k);
/* Data passes client -> server (only on an accepted connection). */
bool conn_data_passes(struct conn *k);

#endif
