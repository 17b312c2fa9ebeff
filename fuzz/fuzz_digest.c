/* fuzz_digest.c: libFuzzer target for Digest credentials parsing and
 * verification, and (input starting "#creds\n") the credentials file. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "registrar/credentials.h"
#include "registrar/digest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_digest: %s:%d: check failed: %s\n", __FILE__,        \
				__LINE__, #cond);                                                  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define REALM "example.com"

static struct digest_ctx *g_ctx;
static char g_nonce[DIGEST_NONCE_LEN + 1];

static uint64_t fixed_clock_cb(void *arg)
{
	(void)arg;
	return 1700000000;
}

static void setup_once(void)
{
	if (g_ctx)
		return;
	static const uint8_t key[32] = "fuzz-digest-fixed-secret-0123456";
	struct digest_config cfg = {
	    .secret = key,
	    .secret_len = sizeof(key),
	    .algorithms = DIGEST_ALG_BIT(DIGEST_ALG_MD5) | DIGEST_ALG_BIT(DIGEST_ALG_MD5_SESS) |
			  DIGEST_ALG_BIT(DIGEST_ALG_SHA256) |
			  DIGEST_ALG_BIT(DIGEST_ALG_SHA256_SESS),
	    .allow_no_qop = true,
	    .no_nc_check = true, /* the oracle below reuses one nonce */
	    .now_cb = fixed_clock_cb,
	};
	FUZZ_CHECK(digest_ctx_create(&cfg, &g_ctx) == 0);
	FUZZ_CHECK(digest_nonce_create(g_ctx, STR_LIT(REALM), g_nonce, sizeof(g_nonce)) ==
		   DIGEST_NONCE_LEN);
}

static bool within(struct str s, const char *base, size_t len)
{
	return s.len == 0 || (s.s >= base && s.s + s.len <= base + len);
}

static bool slice_ok(struct str s, struct str in, const struct digest_credentials *cr)
{
	return within(s, in.s, in.len) || within(s, cr->buf, sizeof(cr->buf));
}

static void check_parsed(const struct digest_credentials *cr, struct str in)
{
	const struct str *all[] = {&cr->username, &cr->realm,  &cr->nonce,  &cr->uri,
				   &cr->response, &cr->cnonce, &cr->opaque, &cr->algorithm_text,
				   &cr->qop_text, &cr->nc_text};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		FUZZ_CHECK(slice_ok(*all[i], in, cr));
	FUZZ_CHECK(cr->buf_used <= sizeof(cr->buf));
	unsigned need =
	    DIGEST_P_USERNAME | DIGEST_P_REALM | DIGEST_P_NONCE | DIGEST_P_URI | DIGEST_P_RESPONSE;
	FUZZ_CHECK((cr->seen & need) == need);
	FUZZ_CHECK(cr->uri.len <= DIGEST_MAX_URI && cr->username.len <= DIGEST_MAX_VALUE);
	for (size_t i = 0; i < cr->response.len; i++)
		FUZZ_CHECK(ascii_is_hex(cr->response.s[i]));
	if (cr->algorithm != DIGEST_ALG_UNKNOWN)
		FUZZ_CHECK(cr->response.len == 32 || cr->response.len == 64);
	if (cr->qop != DIGEST_QOP_NONE)
		FUZZ_CHECK(cr->nc >= 1 && cr->nc_text.len == 8 && (cr->seen & DIGEST_P_CNONCE));
	else
		FUZZ_CHECK(!(cr->seen & (DIGEST_P_NC | DIGEST_P_CNONCE)));
}

/* Verifies as the registrar would, then checks the oracle: the right
 * response for the same parameters, with our nonce, always verifies. */
static void check_verify(const struct digest_credentials *cr)
{
	struct credential_entry entry = {0};
	entry.user = cr->username;
	entry.realm = cr->realm;
	entry.password = STR_LIT("s3cret");
	entry.has_password = true;

	enum digest_verdict v =
	    digest_verify(g_ctx, cr, STR_LIT("REGISTER"), cr->uri, STR_LIT(REALM), &entry);
	FUZZ_CHECK(v >= DIGEST_VERIFY_OK && v <= DIGEST_VERIFY_UNSUPPORTED);
	FUZZ_CHECK(v != DIGEST_VERIFY_OK || str_eq(cr->nonce, str_from_cstr(g_nonce)));
	v = digest_verify(g_ctx, cr, STR_LIT("REGISTER"), STR_LIT("sip:" REALM), STR_LIT(REALM),
			  NULL);
	FUZZ_CHECK(v != DIGEST_VERIFY_OK);

	if (cr->algorithm == DIGEST_ALG_UNKNOWN || cr->userhash)
		return;
	if (cr->qop != DIGEST_QOP_NONE && cr->qop != DIGEST_QOP_AUTH)
		return;
	struct digest_response_input in = {
	    .algorithm = cr->algorithm,
	    .username = cr->username,
	    .realm = cr->realm,
	    .password = entry.password,
	    .nonce = str_from_cstr(g_nonce),
	    .cnonce = cr->cnonce,
	    .nc = cr->nc_text,
	    .qop = cr->qop_text,
	    .method = STR_LIT("REGISTER"),
	    .uri = cr->uri,
	};
	char hex[DIGEST_HEX_MAX + 1];
	int n = digest_response_compute(&in, hex, sizeof(hex));
	FUZZ_CHECK(n == 32 || n == 64);
	static struct digest_credentials good;
	memcpy(&good, cr, sizeof(good)); /* slices keep pointing into *cr, alive */
	good.nonce = str_from_cstr(g_nonce);
	good.response = str_make(hex, (size_t)n);
	v = digest_verify(g_ctx, &good, STR_LIT("REGISTER"), cr->uri, STR_LIT(REALM), &entry);
	if (str_case_eq(cr->realm, STR_LIT(REALM)))
		FUZZ_CHECK(v == DIGEST_VERIFY_OK);
	else
		FUZZ_CHECK(v == DIGEST_VERIFY_REALM_MISMATCH);
	/* one flipped digit is refused */
	hex[n / 2] = hex[n / 2] == '0' ? '1' : '0';
	v = digest_verify(g_ctx, &good, STR_LIT("REGISTER"), cr->uri, STR_LIT(REALM), &entry);
	FUZZ_CHECK(v != DIGEST_VERIFY_OK);
}

static void fuzz_header(struct str in)
{
	static struct digest_credentials cr;
	int rc = digest_credentials_parse(in, &cr);
	if (rc < 0) {
		FUZZ_CHECK(rc == -ENOTSUP || rc == -EBADMSG || rc == -EMSGSIZE);
		FUZZ_CHECK(cr.error != NULL && cr.error_offset <= in.len);
		return;
	}
	FUZZ_CHECK(rc == 0);
	check_parsed(&cr, in);
	check_verify(&cr);
}

/* The credentials file through a memfd (the loader takes a path). */
static void fuzz_credentials(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz_digest", 0);
	if (fd < 0)
		return;
	size_t off = 0;
	while (off < size) {
		ssize_t w = write(fd, data + off, size - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	char path[64], err[512];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct credentials *c = NULL;
	int rc = credentials_load(path, &c, err, sizeof(err));
	close(fd);
	if (rc < 0) {
		FUZZ_CHECK(c == NULL && err[0] != '\0');
		return;
	}
	FUZZ_CHECK(c != NULL && credentials_count(c) <= CREDENTIALS_MAX_ENTRIES);
	/* Every entry is found by its own key, with the realm in upper case. */
	const struct credential_entry *e = credentials_lookup(c, STR_LIT("alice"), STR_LIT(REALM));
	if (e)
		FUZZ_CHECK(str_eq(e->user, STR_LIT("alice")) &&
			   str_case_eq(e->realm, STR_LIT(REALM)));
	credentials_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup_once();
	static const char creds_tag[] = "#creds\n";
	if (size >= sizeof(creds_tag) - 1 && memcmp(data, creds_tag, sizeof(creds_tag) - 1) == 0) {
		fuzz_credentials(data, size);
		return 0;
	}
	fuzz_header(str_make((const char *)data, size));
	return 0;
}
