/* test_mac.c: mac_sha256 (per-thread keyed context) gives what HMAC() gives. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/mac.h"

static void check(const unsigned char *key, size_t klen, const char *data)
{
	unsigned char got[MAC_SHA256_LEN], want[MAC_SHA256_LEN];
	unsigned int wl = 0;
	assert_int_equal(mac_sha256(key, klen, data, strlen(data), got), 0);
	assert_non_null(HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)data,
			     strlen(data), want, &wl));
	assert_int_equal(wl, MAC_SHA256_LEN);
	assert_memory_equal(got, want, MAC_SHA256_LEN);
}

static void test_mac_matches_hmac(void **state)
{
	(void)state;
	unsigned char k1[32], k2[32], klong[100];
	for (size_t i = 0; i < sizeof(k1); i++) {
		k1[i] = (unsigned char)i;
		k2[i] = (unsigned char)(255 - i);
	}
	memset(klong, 0x5a, sizeof(klong));
	static const char *const data[] = {
	    "", "00000000000000000a", "0100000000000012ff",
	    "a longer input that spans more than one block of SHA-256, "
	    "which is sixty-four bytes long"};
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < sizeof(data) / sizeof(data[0]); i++) {
			check(k1, sizeof(k1), data[i]);	      /* cached key */
			check(k1, sizeof(k1), data[i]);	      /* the same again */
			check(k2, sizeof(k2), data[i]);	      /* another key replaces it */
			check(k1, 16, data[i]);		      /* a prefix is another key */
			check(klong, sizeof(klong), data[i]); /* over MAC_KEY_MAX: one shot */
			check(k1, 0, data[i]);
		}
	}
}

static void *thread_main(void *arg)
{
	(void)arg;
	unsigned char k[32];
	memset(k, 7, sizeof(k));
	for (int i = 0; i < 50; i++)
		check(k, sizeof(k), "per-thread context");
	return NULL;
}

static void test_mac_threads(void **state)
{
	(void)state;
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, thread_main, NULL), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mac_matches_hmac),
	    cmocka_unit_test(test_mac_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
