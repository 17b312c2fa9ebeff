/* mac.c: HMAC-SHA256 with a per-thread keyed context. */
#include "base/mac.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

struct mac_cache {
	EVP_MAC_CTX *ctx; /* keyed with key[0, key_len) */
	size_t key_len;
	unsigned char key[MAC_KEY_MAX];
};

static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static pthread_key_t mac_tls;
static EVP_MAC *mac_alg; /* fetched once, kept for the process */
static bool mac_ready;

static void mac_cache_free(void *arg)
{
	struct mac_cache *c = arg;
	if (c) {
		EVP_MAC_CTX_free(c->ctx);
		OPENSSL_cleanse(c->key, sizeof(c->key));
		free(c);
	}
}

static void mac_init_once(void)
{
	if (pthread_key_create(&mac_tls, mac_cache_free) != 0)
		return;
	mac_alg = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	mac_ready = mac_alg != NULL;
	ERR_clear_error();
}

/* The calling thread's context keyed with `key`, or NULL. */
static EVP_MAC_CTX *mac_keyed(const void *key, size_t key_len)
{
	if (pthread_once(&mac_once, mac_init_once) != 0 || !mac_ready || key_len > MAC_KEY_MAX)
		return NULL;
	struct mac_cache *c = pthread_getspecific(mac_tls);
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c || pthread_setspecific(mac_tls, c) != 0) {
			free(c);
			return NULL;
		}
	}
	if (c->ctx && c->key_len == key_len && CRYPTO_memcmp(c->key, key, key_len) == 0) {
		/* Same key: start again from the stored keyed state. */
		if (EVP_MAC_init(c->ctx, NULL, 0, NULL) == 1)
			return c->ctx;
	}
	EVP_MAC_CTX_free(c->ctx);
	c->key_len = 0;
	c->ctx = EVP_MAC_CTX_new(mac_alg);
	if (!c->ctx)
		return NULL;
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
	    OSSL_PARAM_construct_end(),
	};
	if (EVP_MAC_init(c->ctx, key, key_len, params) != 1) {
		EVP_MAC_CTX_free(c->ctx);
		c->ctx = NULL;
		return NULL;
	}
	memcpy(c->key, key, key_len);
	c->key_len = key_len;
	return c->ctx;
}

int mac_sha256(const void *key, size_t key_len, const void *data, size_t len,
	       unsigned char out[MAC_SHA256_LEN])
{
	size_t outl = 0;
	EVP_MAC_CTX *ctx = mac_keyed(key, key_len);
	if (ctx && EVP_MAC_update(ctx, data, len) == 1 &&
	    EVP_MAC_final(ctx, out, &outl, MAC_SHA256_LEN) == 1 && outl == MAC_SHA256_LEN)
		return 0;
	/* No cached context (a long key, or out of memory): one shot. */
	unsigned int ol = 0;
	if (key_len <= INT32_MAX && HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &ol) &&
	    ol == MAC_SHA256_LEN) {
		ERR_clear_error();
		return 0;
	}
	ERR_clear_error();
	memset(out, 0, MAC_SHA256_LEN);
	return -ENOMEM;
}
