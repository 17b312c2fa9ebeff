/* mac.h: HMAC-SHA256 under a long-lived key, for what is computed on every
 * message (flow tokens, RFC 5626 §5.2). */
#ifndef SIPSD_BASE_MAC_H
#define SIPSD_BASE_MAC_H

#include <stddef.h>

#define MAC_SHA256_LEN 32
#define MAC_KEY_MAX 64 /* longer keys work, without the cache */

/* out = HMAC-SHA256(key, data). Each thread keeps the keyed context of the
 * last key it used (a one-shot HMAC() looks the algorithms up and hashes
 * the key every time: some 20,000 instructions for a short input). Returns
 * 0, or -ENOMEM / -EIO with `out` cleared: never use `out` then. */
int mac_sha256(const void *key, size_t key_len, const void *data, size_t len,
	       unsigned char out[MAC_SHA256_LEN]);

#endif
