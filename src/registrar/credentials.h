/* credentials.h: the registrar's Digest user table, loaded from a text file. */
#ifndef SIPSD_REGISTRAR_CREDENTIALS_H
#define SIPSD_REGISTRAR_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/str.h"

/* Limits of the credentials file (design.md: every growth path bounded). */
#define CREDENTIALS_MAX_ENTRIES 100000 /* users in one file */
#define CREDENTIALS_MAX_LINE 1024      /* bytes in one line, without its LF */
#define CREDENTIALS_MAX_FIELD 256      /* bytes of a user, realm or password */

#define CREDENTIALS_HA1_MD5_LEN 16    /* MD5(user:realm:password), RFC 2617 §3.2.2.2 */
#define CREDENTIALS_HA1_SHA256_LEN 32 /* SHA-256 of the same, RFC 7616 §3.4.2 */

/* One user of one realm. The slices point into `mem`, owned by the table;
 * an entry lives as long as its `struct credentials`. */
struct credential_entry {
	struct str user;     /* case-sensitive (RFC 3261 §22.4: opaque string) */
	struct str realm;    /* compared ASCII case-insensitively */
	struct str password; /* empty unless has_password */
	bool has_password;
	bool has_ha1_md5;
	bool has_ha1_sha256;
	uint8_t ha1_md5[CREDENTIALS_HA1_MD5_LEN];
	uint8_t ha1_sha256[CREDENTIALS_HA1_SHA256_LEN];
	unsigned line; /* line of the file that defined it */
	char *mem;     /* owned: user, realm and password bytes */
};

/* The loaded table (opaque). Read-only after load, so it may be shared by
 * every worker thread; reload by loading a new one and swapping. */
struct credentials;

/* Loads `path` (format in docs/digest.md): one user per line,
 *   user@realm  password
 *   user@realm  "pass word with \"quotes\""
 *   user@realm  ha1-md5:HEX32  [ha1-sha256:HEX64]
 * blank lines and lines starting with `#` ignored. The user is everything
 * before the last `@`. On success stores a new table in *out (the caller
 * frees it with credentials_free) and returns 0. On failure returns
 * -EINVAL (syntax; `err` says "path:LINE: why"), -EMSGSIZE (a limit),
 * -ENOMEM, or the negative errno of open/read; *out is left NULL. */
int credentials_load(const char *path, struct credentials **out, char *err, size_t errsz);

/* Frees the table and wipes its passwords and HA1s. NULL is allowed. */
void credentials_free(struct credentials *c);

/* Number of entries. */
size_t credentials_count(const struct credentials *c);

/* The entry of (user, realm): user compared byte for byte, realm ASCII
 * case-insensitively. Returns NULL when there is none. */
const struct credential_entry *credentials_lookup(const struct credentials *c, struct str user,
						  struct str realm);

#endif
