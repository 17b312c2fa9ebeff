/* test_digest.c: Digest parsing, nonces, challenges, verification (RFC 2617,
 * RFC 7616 worked examples) and the credentials file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "registrar/credentials.h"
#include "registrar/digest.h"
#include "sip/msg.h"

static bool str_is(struct str s, const char *c)
{
	return str_eq(s, str_from_cstr(c));
}

#define assert_str(got, want)                                                                      \
	do {                                                                                       \
		struct str g_ = (got);                                                             \
		if (!str_is(g_, (want)))                                                           \
			fail_msg("got '%.*s', want '%s'", (int)g_.len, g_.s, (want));              \
	} while (0)

/* ---- an injectable clock ---- */

static uint64_t fake_now = 1700000000;

static uint64_t fake_clock_cb(void *arg)
{
	(void)arg;
	return fake_now;
}

static struct digest_ctx *ctx_new(const struct digest_config *extra)
{
	struct digest_config cfg = {0};
	if (extra)
		cfg = *extra;
	cfg.now_cb = fake_clock_cb;
	struct digest_ctx *ctx = NULL;
	assert_int_equal(digest_ctx_create(&cfg, &ctx), 0);
	assert_non_null(ctx);
	return ctx;
}

static void parse_ok(const char *text, struct digest_credentials *cr)
{
	int rc = digest_credentials_parse(str_from_cstr(text), cr);
	if (rc != 0)
		fail_msg("'%s' should parse, got %d: %s at %zu", text, rc,
			 cr->error ? cr->error : "?", cr->error_offset);
}

static void parse_fails(const char *text, int want)
{
	struct digest_credentials cr;
	int rc = digest_credentials_parse(str_from_cstr(text), &cr);
	if (rc != want)
		fail_msg("'%s': got %d, want %d", text, rc, want);
	assert_non_null(cr.error);
	assert_true(cr.error_offset <= strlen(text));
}

/* ---- RFC worked examples ---- */

/* RFC 2617 §3.5: Mufasa / "Circle Of Life", qop=auth, MD5. */
static const char rfc2617_hdr[] =
    "Digest username=\"Mufasa\",\r\n"
    "                 realm=\"testrealm@host.com\",\r\n"
    "                 nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\r\n"
    "                 uri=\"/dir/index.html\",\r\n"
    "                 qop=auth,\r\n"
    "                 nc=00000001,\r\n"
    "                 cnonce=\"0a4f113b\",\r\n"
    "                 response=\"6629fae49393a05397450978507c4ef1\",\r\n"
    "                 opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";

static void test_rfc2617_example(void **state)
{
	(void)state;
	struct digest_credentials cr;
	parse_ok(rfc2617_hdr, &cr);
	assert_str(cr.username, "Mufasa");
	assert_str(cr.realm, "testrealm@host.com");
	assert_str(cr.nonce, "dcd98b7102dd2f0e8b11d0f600bfb0c093");
	assert_str(cr.uri, "/dir/index.html");
	assert_str(cr.cnonce, "0a4f113b");
	assert_str(cr.opaque, "5ccc069c403ebaf9f0171e9517f40e41");
	assert_int_equal(cr.qop, DIGEST_QOP_AUTH);
	assert_int_equal(cr.nc, 1);
	assert_int_equal(cr.algorithm, DIGEST_ALG_MD5); /* absent: MD5 */

	struct digest_response_input in = {
	    .algorithm = cr.algorithm,
	    .username = cr.username,
	    .realm = cr.realm,
	    .password = STR_LIT("Circle Of Life"),
	    .nonce = cr.nonce,
	    .cnonce = cr.cnonce,
	    .nc = cr.nc_text,
	    .qop = cr.qop_text,
	    .method = STR_LIT("GET"),
	    .uri = cr.uri,
	};
	char hex[DIGEST_HEX_MAX + 1];
	assert_int_equal(digest_response_compute(&in, hex, sizeof(hex)), 32);
	assert_string_equal(hex, "6629fae49393a05397450978507c4ef1");
	assert_true(str_is(cr.response, hex));

	/* The same from a stored HA1 = MD5("Mufasa:testrealm@host.com:Circle Of Life") */
	static const uint8_t ha1[16] = {0x93, 0x9e, 0x75, 0x78, 0xed, 0x9e, 0x3c, 0x51,
					0x8a, 0x45, 0x2a, 0xce, 0xe7, 0x63, 0xbc, 0xe9};
	in.password = STR_NULL;
	in.ha1 = ha1;
	assert_int_equal(digest_response_compute(&in, hex, sizeof(hex)), 32);
	assert_string_equal(hex, "6629fae49393a05397450978507c4ef1");

	/* Too small an output buffer. */
	assert_int_equal(digest_response_compute(&in, hex, 32), -EMSGSIZE);
}

/* RFC 7616 §3.9.1: the same user against SHA-256 and MD5 challenges. */
static void test_rfc7616_examples(void **state)
{
	(void)state;
	static const char sha_hdr[] =
	    "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", "
	    "uri=\"/dir/index.html\", algorithm=SHA-256, "
	    "nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, "
	    "cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, "
	    "response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\", "
	    "opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
	static const char md5_hdr[] =
	    "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", "
	    "uri=\"/dir/index.html\", algorithm=MD5, "
	    "nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, "
	    "cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, "
	    "response=\"8ca523f5e9506fed4657c9700eebdbec\", "
	    "opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
	const char *hdrs[] = {sha_hdr, md5_hdr};
	const enum digest_algorithm algs[] = {DIGEST_ALG_SHA256, DIGEST_ALG_MD5};
	for (int k = 0; k < 2; k++) {
		struct digest_credentials cr;
		parse_ok(hdrs[k], &cr);
		assert_int_equal(cr.algorithm, algs[k]);
		struct digest_response_input in = {
		    .algorithm = cr.algorithm,
		    .username = cr.username,
		    .realm = cr.realm,
		    .password = STR_LIT("Circle of Life"),
		    .nonce = cr.nonce,
		    .cnonce = cr.cnonce,
		    .nc = cr.nc_text,
		    .qop = cr.qop_text,
		    .method = STR_LIT("GET"),
		    .uri = cr.uri,
		};
		char hex[DIGEST_HEX_MAX + 1];
		int n = digest_response_compute(&in, hex, sizeof(hex));
		assert_int_equal(n, k == 0 ? 64 : 32);
		if (!str_is(cr.response, hex))
			fail_msg("%s: computed %s", digest_algorithm_name(algs[k]), hex);
	}
}

/* ---- parsing ---- */

static void test_parse_folded_and_escaped(void **state)
{
	(void)state;
	struct digest_credentials cr;
	/* folds between params, around '=', and inside a quoted value;
	 * quoted-pairs in username; token and quoted forms mixed. */
	parse_ok(
	    "dIgEsT\r\n\tUserName = \"al\\\"ice\\\\x\" ,realm=\"exa\r\n mple.com\",\r\n"
	    " NONCE=abc, uri=\"sip:example.com\", response=\"0123456789abcdef0123456789ABCDEF\","
	    " Algorithm=md5, qop=\"auth\", nc=0000000A, cnonce=\"c\"",
	    &cr);
	assert_str(cr.username, "al\"ice\\x");
	assert_str(cr.realm, "exa mple.com");
	assert_str(cr.nonce, "abc");
	assert_str(cr.uri, "sip:example.com");
	assert_int_equal(cr.algorithm, DIGEST_ALG_MD5);
	assert_str(cr.algorithm_text, "md5");
	assert_int_equal(cr.nc, 10);
	assert_int_equal(cr.qop, DIGEST_QOP_AUTH);
	/* Undecoded values point into the input. */
	assert_true(cr.username.s >= cr.buf && cr.username.s < cr.buf + sizeof(cr.buf));

	/* Unknown parameters ignored, in either form. */
	parse_ok("Digest foo=bar, username=\"u\", x-y=\"a,b=c\", realm=\"r\", nonce=\"n\", "
		 "uri=\"sip:r\", response=\"00000000000000000000000000000000\", "
		 "algorithm=SHA-256-sess-x",
		 &cr);
	assert_int_equal(cr.algorithm, DIGEST_ALG_UNKNOWN); /* left to verify */
	assert_int_equal(cr.qop, DIGEST_QOP_NONE);

	parse_ok("Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", "
		 "algorithm=SHA-256, "
		 "response=\"0000000000000000000000000000000000000000000000000000000000000000\"",
		 &cr);
	assert_int_equal(cr.algorithm, DIGEST_ALG_SHA256);
	parse_ok("Digest username=\"\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", "
		 "response=\"00000000000000000000000000000000\", userhash=TRUE",
		 &cr);
	assert_true(cr.userhash);
	assert_int_equal(cr.username.len, 0);
}

#define GOOD_TAIL "uri=\"sip:r\", response=\"00000000000000000000000000000000\""

static void test_parse_errors(void **state)
{
	(void)state;
	/* Other schemes: -ENOTSUP, to be ignored (RFC 4475 §3.3.14). */
	parse_fails("NoOneKnowsThisScheme opaque-data=here", -ENOTSUP);
	parse_fails("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", -ENOTSUP);
	parse_fails("Digestive username=\"u\"", -ENOTSUP);
	/* Syntax. */
	parse_fails("", -EBADMSG);
	parse_fails("   ", -EBADMSG);
	parse_fails("Digest", -EBADMSG);
	parse_fails("Digest   ", -EBADMSG);
	parse_fails("Digest,username=\"u\"", -EBADMSG);
	parse_fails("Digest username=\"u\", realm=\"r\", nonce=\"n\", " GOOD_TAIL ",", -EBADMSG);
	parse_fails("Digest username=\"u\" realm=\"r\", nonce=\"n\", " GOOD_TAIL, -EBADMSG);
	parse_fails("Digest username=\"u, realm=\"r\", nonce=\"n\", " GOOD_TAIL "x", -EBADMSG);
	parse_fails("Digest username=, realm=\"r\", nonce=\"n\", " GOOD_TAIL, -EBADMSG);
	parse_fails("Digest username=\"u\", =\"r\", nonce=\"n\", " GOOD_TAIL, -EBADMSG);
	parse_fails("Digest username=\"u\\", -EBADMSG);
	parse_fails("Digest username=\"a\rb\", realm=\"r\", nonce=\"n\", " GOOD_TAIL, -EBADMSG);
	parse_fails("Digest username=\"a\r\nb\", realm=\"r\", nonce=\"n\", " GOOD_TAIL, -EBADMSG);
	parse_fails("Digest username=\"a\\\r\n b\", realm=\"r\", nonce=\"n\", " GOOD_TAIL,
		    -EBADMSG);
	parse_fails("Digest username=\"a\x01\", realm=\"r\", nonce=\"n\", " GOOD_TAIL, -EBADMSG);
	parse_fails("Digest username=\"u\",\r\nrealm=\"r\", nonce=\"n\", " GOOD_TAIL, -EBADMSG);
	/* Missing fields. */
	parse_fails("Digest realm=\"r\", nonce=\"n\", " GOOD_TAIL, -EBADMSG);
	parse_fails("Digest username=\"u\", nonce=\"n\", " GOOD_TAIL, -EBADMSG);
	parse_fails("Digest username=\"u\", realm=\"r\", " GOOD_TAIL, -EBADMSG);
	parse_fails("Digest username=\"u\", realm=\"r\", nonce=\"n\", "
		    "response=\"00000000000000000000000000000000\"",
		    -EBADMSG);
	parse_fails("Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:r\"", -EBADMSG);
	parse_fails(
	    "Digest username=\"u\", realm=\"r\", nonce=\"n\", qop=auth, nc=00000001, " GOOD_TAIL,
	    -EBADMSG);
	parse_fails(
	    "Digest username=\"u\", realm=\"r\", nonce=\"n\", qop=auth, cnonce=\"c\", " GOOD_TAIL,
	    -EBADMSG);
	parse_fails("Digest username=\"u\", realm=\"r\", nonce=\"n\", nc=00000001, "
		    "cnonce=\"c\", " GOOD_TAIL,
		    -EBADMSG);
	/* Duplicates (names are case-insensitive). */
	parse_fails("Digest username=\"u\", USERNAME=\"v\", realm=\"r\", nonce=\"n\", " GOOD_TAIL,
		    -EBADMSG);
	parse_fails("Digest username=\"u\", realm=\"r\", nonce=\"n\", " GOOD_TAIL ", uri=\"sip:r\"",
		    -EBADMSG);
	/* Bad values. */
	parse_fails("Digest username=\"u\", realm=\"r\", nonce=\"n\", qop=auth, nc=0000001, "
		    "cnonce=\"c\", " GOOD_TAIL,
		    -EBADMSG);
	parse_fails("Digest username=\"u\", realm=\"r\", nonce=\"n\", qop=auth, nc=00000000, "
		    "cnonce=\"c\", " GOOD_TAIL,
		    -EBADMSG);
	parse_fails("Digest username=\"u\", realm=\"r\", nonce=\"n\", qop=auth, nc=0000000g, "
		    "cnonce=\"c\", " GOOD_TAIL,
		    -EBADMSG);
	parse_fails("Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", "
		    "response=\"0000000000000000000000000000000\"",
		    -EBADMSG);
	parse_fails("Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", "
		    "response=\"0000000000000000000000000000000z\"",
		    -EBADMSG);
	parse_fails(
	    "Digest username=\"u\", realm=\"r\", nonce=\"n\", algorithm=SHA-256, " GOOD_TAIL,
	    -EBADMSG);
}

static void test_parse_limits(void **state)
{
	(void)state;
	struct digest_credentials cr;
	size_t big = SIPS_MAX_LINE * 2;
	char *v = malloc(big + 64);
	assert_non_null(v);

	/* A huge username (over DIGEST_MAX_VALUE). */
	int n = snprintf(v, 64, "Digest username=\"");
	memset(v + n, 'a', DIGEST_MAX_VALUE + 1);
	n += DIGEST_MAX_VALUE + 1;
	snprintf(v + n, 64, "\", realm=\"r\"");
	assert_int_equal(digest_credentials_parse(str_from_cstr(v), &cr), -EMSGSIZE);

	/* The whole value over SIPS_MAX_LINE. */
	n = snprintf(v, 64, "Digest x=\"");
	memset(v + n, 'a', big - (size_t)n);
	v[big] = '\0';
	assert_int_equal(digest_credentials_parse(str_make(v, big), &cr), -EMSGSIZE);

	/* Too many (unknown) parameters. */
	n = snprintf(v, 64, "Digest ");
	for (int i = 0; i <= DIGEST_MAX_PARAMS; i++)
		n += snprintf(v + n, 16, "p%d=1, ", i);
	snprintf(v + n, 16, "q=1");
	assert_int_equal(digest_credentials_parse(str_from_cstr(v), &cr), -EMSGSIZE);

	/* Escaped values filling the decode buffer: each value under the
	 * per-value limit, together over DIGEST_UNQUOTE_BUF. */
	n = snprintf(v, 64, "Digest username=\"");
	for (int i = 0; i < 500; i++)
		n += snprintf(v + n, 8, "\\a");
	n += snprintf(v + n, 32, "\", realm=\"");
	for (int i = 0; i < 500; i++)
		n += snprintf(v + n, 8, "\\b");
	n += snprintf(v + n, 32, "\", nonce=\"");
	for (int i = 0; i < 500; i++)
		n += snprintf(v + n, 8, "\\c");
	n += snprintf(v + n, 32, "\", opaque=\"");
	for (int i = 0; i < 500; i++)
		n += snprintf(v + n, 8, "\\d");
	n += snprintf(v + n, 32, "\", cnonce=\"");
	for (int i = 0; i < 500; i++)
		n += snprintf(v + n, 8, "\\e");
	snprintf(v + n, 32, "\"");
	assert_true(strlen(v) < SIPS_MAX_LINE);
	assert_int_equal(digest_credentials_parse(str_from_cstr(v), &cr), -EMSGSIZE);

	/* A long uri is fine up to DIGEST_MAX_URI. */
	n = snprintf(v, 64, "Digest uri=\"sip:");
	memset(v + n, 'u', DIGEST_MAX_VALUE + 100);
	n += DIGEST_MAX_VALUE + 100;
	snprintf(v + n, 200,
		 "\", username=\"u\", realm=\"r\", nonce=\"n\", "
		 "response=\"00000000000000000000000000000000\"");
	parse_ok(v, &cr);
	assert_int_equal(cr.uri.len, DIGEST_MAX_VALUE + 104);
	free(v);
}

/* digest_credentials_find over a parsed message: RFC 4475 regaut01 (only
 * an unknown scheme) and a message with credentials for two realms. */
static void test_find_in_message(void **state)
{
	(void)state;
	static struct sip_msg m;
	struct sip_parse_error perr;
	struct digest_credentials cr;
	char path[512];
	const char *data = getenv("SIPSD_TEST_DATA");
	snprintf(path, sizeof(path), "%s/rfc4475/regaut01.txt", data ? data : "tests/data");
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	static char buf[4096];
	size_t len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	assert_true(sip_msg_parse(&m, buf, len, SIP_PARSE_DATAGRAM, &perr) > 0);
	assert_int_equal(
	    digest_credentials_find(&m, SIP_HDR_AUTHORIZATION, STR_LIT("example.com"), &cr),
	    -ENOENT);

	static const char two[] =
	    "REGISTER sip:example.com SIP/2.0\r\n"
	    "Via: SIP/2.0/TLS 192.0.2.1;branch=z9hG4bK1\r\n"
	    "To: <sip:alice@example.com>\r\n"
	    "From: <sip:alice@example.com>;tag=1\r\n"
	    "Call-ID: c1\r\n"
	    "CSeq: 2 REGISTER\r\n"
	    "Max-Forwards: 70\r\n"
	    "Authorization: Basic Zm9vOmJhcg==\r\n"
	    "Authorization: Digest username=\"alice\", realm=\"other.org\", nonce=\"n\",\r\n"
	    " uri=\"sip:example.com\", response=\"00000000000000000000000000000000\"\r\n"
	    "Authorization: Digest username=\"alice\", realm=\"EXAMPLE.com\", nonce=\"n2\", "
	    "uri=\"sip:example.com\", response=\"11111111111111111111111111111111\"\r\n"
	    "Proxy-Authorization: Digest username=\"alice\", realm=\"example.com\"\r\n"
	    "Content-Length: 0\r\n\r\n";
	assert_true(sip_msg_parse(&m, two, sizeof(two) - 1, SIP_PARSE_DATAGRAM, &perr) > 0);
	assert_int_equal(
	    digest_credentials_find(&m, SIP_HDR_AUTHORIZATION, STR_LIT("example.com"), &cr), 0);
	assert_str(cr.nonce, "n2");
	assert_int_equal(
	    digest_credentials_find(&m, SIP_HDR_AUTHORIZATION, STR_LIT("other.org"), &cr), 0);
	assert_str(cr.nonce, "n");
	assert_int_equal(digest_credentials_find(&m, SIP_HDR_AUTHORIZATION, STR_LIT("x.net"), &cr),
			 -ENOENT);
	/* the only Proxy-Authorization is malformed: 400 material */
	assert_int_equal(
	    digest_credentials_find(&m, SIP_HDR_PROXY_AUTHORIZATION, STR_LIT("example.com"), &cr),
	    -EBADMSG);
}

/* ---- nonces ---- */

static void test_nonce_lifetime(void **state)
{
	(void)state;
	struct digest_config cfg = {.nonce_lifetime = 100};
	struct digest_ctx *ctx = ctx_new(&cfg);
	char nonce[DIGEST_NONCE_LEN + 1];
	fake_now = 1700000000;
	assert_int_equal(digest_nonce_create(ctx, STR_LIT("example.com"), nonce, sizeof(nonce)),
			 DIGEST_NONCE_LEN);
	assert_int_equal(strlen(nonce), DIGEST_NONCE_LEN);
	for (size_t i = 0; i < DIGEST_NONCE_LEN; i++)
		assert_true(ascii_is_alpha(nonce[i]) || ascii_is_digit(nonce[i]) ||
			    nonce[i] == '-' || nonce[i] == '_');
	struct str n = str_from_cstr(nonce);

	assert_int_equal(digest_nonce_check(ctx, n, STR_LIT("example.com")), 0);
	assert_int_equal(digest_nonce_check(ctx, n, STR_LIT("EXAMPLE.COM")), 0);
	assert_int_equal(digest_nonce_check(ctx, n, STR_LIT("example.org")), -EBADMSG);
	fake_now += 100;
	assert_int_equal(digest_nonce_check(ctx, n, STR_LIT("example.com")), 0);
	fake_now += 1;
	assert_int_equal(digest_nonce_check(ctx, n, STR_LIT("example.com")), -ESTALE);
	/* From the future: tolerated within the skew, then stale. */
	fake_now = 1700000000 - DIGEST_CLOCK_SKEW;
	assert_int_equal(digest_nonce_check(ctx, n, STR_LIT("example.com")), 0);
	fake_now -= 1;
	assert_int_equal(digest_nonce_check(ctx, n, STR_LIT("example.com")), -ESTALE);
	fake_now = 1700000000;

	/* Tampering anywhere (a changed char, truncation, extension). */
	for (size_t i = 0; i < DIGEST_NONCE_LEN; i++) {
		char t[DIGEST_NONCE_LEN + 1];
		memcpy(t, nonce, sizeof(t));
		t[i] = t[i] == 'A' ? 'B' : 'A';
		assert_int_equal(digest_nonce_check(ctx, str_from_cstr(t), STR_LIT("example.com")),
				 -EBADMSG);
	}
	assert_int_equal(
	    digest_nonce_check(ctx, str_make(nonce, DIGEST_NONCE_LEN - 1), STR_LIT("example.com")),
	    -EBADMSG);
	assert_int_equal(digest_nonce_check(ctx, STR_LIT("dcd98b7102dd2f0e8b11d0f600bfb0c093"),
					    STR_LIT("example.com")),
			 -EBADMSG);
	assert_int_equal(digest_nonce_check(ctx, STR_NULL, STR_LIT("example.com")), -EBADMSG);

	/* Another context (another secret) does not know it; one with the
	 * same secret does. */
	struct digest_ctx *other = ctx_new(NULL);
	assert_int_equal(digest_nonce_check(other, n, STR_LIT("example.com")), -EBADMSG);
	digest_ctx_destroy(other);
	static const uint8_t key[32] = {1, 2, 3};
	struct digest_config shared = {.secret = key, .secret_len = sizeof(key)};
	struct digest_ctx *a = ctx_new(&shared), *b = ctx_new(&shared);
	assert_int_equal(digest_nonce_create(a, STR_LIT("example.com"), nonce, sizeof(nonce)),
			 DIGEST_NONCE_LEN);
	assert_int_equal(digest_nonce_check(b, str_from_cstr(nonce), STR_LIT("example.com")), 0);
	digest_ctx_destroy(a);
	digest_ctx_destroy(b);

	/* Bad configurations and arguments. */
	struct digest_ctx *bad = NULL;
	struct digest_config shortkey = {.secret = key, .secret_len = 8};
	assert_int_equal(digest_ctx_create(&shortkey, &bad), -EINVAL);
	assert_null(bad);
	assert_int_equal(digest_nonce_create(ctx, STR_LIT("example.com"), nonce, DIGEST_NONCE_LEN),
			 -EMSGSIZE);
	digest_ctx_destroy(ctx);
	digest_ctx_destroy(NULL);
}

/* ---- challenges ---- */

/* Extracts the quoted value of `name` from a challenge into buf. */
static struct str challenge_param(const char *ch, const char *name, char *buf, size_t cap)
{
	char key[32];
	snprintf(key, sizeof(key), " %s=\"", name);
	const char *p = strstr(ch, key);
	if (!p)
		return STR_NULL;
	p += strlen(key);
	const char *e = strchr(p, '"');
	assert_non_null(e);
	return str_from_cstr(str_to_cbuf(str_make(p, (size_t)(e - p)), buf, cap));
}

static void test_challenge(void **state)
{
	(void)state;
	struct digest_config cfg = {.with_opaque = true};
	struct digest_ctx *ctx = ctx_new(&cfg);
	char out[1024], buf[128];

	int n = digest_challenge_build(ctx, STR_LIT("example.com"), DIGEST_ALG_SHA256, false, out,
				       sizeof(out));
	assert_true(n > 0 && (size_t)n == strlen(out));
	assert_true(strncmp(out, "Digest realm=\"example.com\", nonce=\"", 35) == 0);
	assert_non_null(strstr(out, ", algorithm=SHA-256, qop=\"auth\""));
	assert_null(strstr(out, "stale"));
	struct str nonce = challenge_param(out, "nonce", buf, sizeof(buf));
	assert_int_equal(nonce.len, DIGEST_NONCE_LEN);
	assert_int_equal(digest_nonce_check(ctx, nonce, STR_LIT("example.com")), 0);
	assert_int_equal(challenge_param(out, "opaque", buf, sizeof(buf)).len, 16);

	/* The challenge parses back as credentials-like auth-params. */
	n = digest_challenge_build(ctx, STR_LIT("example.com"), DIGEST_ALG_MD5, true, out,
				   sizeof(out));
	assert_true(n > 0);
	assert_non_null(strstr(out, ", algorithm=MD5, qop=\"auth\", stale=true"));

	/* A realm with a quote and a backslash is escaped. */
	n = digest_challenge_build(ctx, STR_LIT("a\"b\\c"), DIGEST_ALG_MD5, false, out,
				   sizeof(out));
	assert_true(n > 0);
	assert_true(strncmp(out, "Digest realm=\"a\\\"b\\\\c\", ", 24) == 0);

	/* Errors. */
	assert_int_equal(
	    digest_challenge_build(ctx, STR_LIT("example.com"), DIGEST_ALG_MD5, false, out, 40),
	    -EMSGSIZE);
	assert_int_equal(digest_challenge_build(ctx, STR_LIT("example.com"), DIGEST_ALG_MD5_SESS,
						false, out, sizeof(out)),
			 -ENOTSUP);
	assert_int_equal(
	    digest_challenge_build(ctx, STR_NULL, DIGEST_ALG_MD5, false, out, sizeof(out)),
	    -EINVAL);
	assert_int_equal(
	    digest_challenge_build(ctx, STR_LIT("a\r\nb"), DIGEST_ALG_MD5, false, out, sizeof(out)),
	    -EINVAL);

	/* Header lines: SHA-256 first, then MD5 (RFC 8760 §2.4). */
	n = digest_challenge_headers_build(ctx, false, STR_LIT("example.com"), true, out,
					   sizeof(out));
	assert_true(n > 0 && (size_t)n == strlen(out));
	const char *sha = strstr(out, "WWW-Authenticate: Digest realm=\"example.com\"");
	assert_ptr_equal(sha, out);
	const char *md5 = strstr(out, "\r\nWWW-Authenticate: Digest ");
	assert_non_null(md5);
	assert_true(strstr(out, "algorithm=SHA-256") < md5);
	assert_true(strstr(out, "algorithm=MD5") > md5);
	assert_true(out[n - 2] == '\r' && out[n - 1] == '\n');
	n = digest_challenge_headers_build(ctx, true, STR_LIT("example.com"), false, out,
					   sizeof(out));
	assert_int_equal(n, (int)strlen(out));
	assert_true(strncmp(out, "Proxy-Authenticate: Digest ", 27) == 0);
	assert_int_equal(
	    digest_challenge_headers_build(ctx, true, STR_LIT("example.com"), false, out, 200),
	    -EMSGSIZE);
	digest_ctx_destroy(ctx);

	/* Only SHA-256 configured: one line. */
	struct digest_config sha_only = {.algorithms = DIGEST_ALG_BIT(DIGEST_ALG_SHA256)};
	ctx = ctx_new(&sha_only);
	n = digest_challenge_headers_build(ctx, false, STR_LIT("example.com"), false, out,
					   sizeof(out));
	assert_true(n > 0);
	assert_null(strstr(out, "MD5"));
	assert_null(strstr(out, "opaque"));
	digest_ctx_destroy(ctx);
}

/* ---- verification ---- */

static const char test_uri[] = "sip:example.com";

/* How a test UA answers a challenge. */
struct ua_opts {
	enum digest_algorithm alg;
	const char *user, *realm, *password, *uri;
	unsigned nc;
	const char *nonce;		     /* NULL: the challenge's */
	const char *qop;		     /* NULL: "auth"; "": none (RFC 2069) */
	const char *opaque;		     /* NULL: the challenge's */
	const char *extra;		     /* appended auth-params */
	enum digest_algorithm challenge_alg; /* used when alg is not offered */
	bool use_challenge_alg;
};

/* A UA's answer to a fresh challenge from `ctx`: an Authorization value. */
static void ua_answer_opts(struct digest_ctx *ctx, const struct ua_opts *o, char *out, size_t cap)
{
	char ch[512], nonce[128], opaque[64];
	enum digest_algorithm chal = o->use_challenge_alg ? o->challenge_alg : o->alg;
	assert_true(
	    digest_challenge_build(ctx, str_from_cstr(o->realm), chal, false, ch, sizeof(ch)) > 0);
	struct str nonce_s = challenge_param(ch, "nonce", nonce, sizeof(nonce));
	if (o->nonce)
		nonce_s = str_from_cstr(o->nonce);
	struct str opaque_s = challenge_param(ch, "opaque", opaque, sizeof(opaque));
	if (o->opaque)
		opaque_s = str_from_cstr(o->opaque);
	const char *qop = o->qop ? o->qop : "auth";
	char ncbuf[9];
	snprintf(ncbuf, sizeof(ncbuf), "%08x", o->nc ? o->nc : 1);
	struct digest_response_input in = {
	    .algorithm = o->alg,
	    .username = str_from_cstr(o->user),
	    .realm = str_from_cstr(o->realm),
	    .password = str_from_cstr(o->password),
	    .nonce = nonce_s,
	    .cnonce = *qop ? STR_LIT("0a4f113b") : STR_NULL,
	    .nc = *qop ? str_from_cstr(ncbuf) : STR_NULL,
	    .qop = str_from_cstr(qop),
	    .method = STR_LIT("REGISTER"),
	    .uri = str_from_cstr(o->uri),
	};
	char hex[DIGEST_HEX_MAX + 1];
	assert_true(digest_response_compute(&in, hex, sizeof(hex)) > 0);
	int n = snprintf(out, cap,
			 "Digest username=\"%s\", realm=\"%s\", nonce=\"%.*s\", uri=\"%s\", "
			 "response=\"%s\", algorithm=%s",
			 o->user, o->realm, (int)nonce_s.len, nonce_s.s, o->uri, hex,
			 digest_algorithm_name(o->alg));
	if (*qop)
		n += snprintf(out + n, cap - (size_t)n, ", cnonce=\"0a4f113b\", qop=%s, nc=%s", qop,
			      ncbuf);
	if (opaque_s.len)
		n += snprintf(out + n, cap - (size_t)n, ", opaque=\"%.*s\"", (int)opaque_s.len,
			      opaque_s.s);
	if (o->extra)
		snprintf(out + n, cap - (size_t)n, "%s", o->extra);
}

static void ua_answer(struct digest_ctx *ctx, enum digest_algorithm alg, const char *user,
		      const char *realm, const char *password, const char *uri, unsigned nc,
		      const char *nonce_override, char *out, size_t cap)
{
	struct ua_opts o = {.alg = alg,
			    .user = user,
			    .realm = realm,
			    .password = password,
			    .uri = uri,
			    .nc = nc,
			    .nonce = nonce_override};
	ua_answer_opts(ctx, &o, out, cap);
}

static struct credential_entry entry_pw(const char *user, const char *realm, const char *pw)
{
	struct credential_entry e = {0};
	e.user = str_from_cstr(user);
	e.realm = str_from_cstr(realm);
	e.password = str_from_cstr(pw);
	e.has_password = true;
	return e;
}

static enum digest_verdict verify_text(struct digest_ctx *ctx, const char *hdr, const char *uri,
				       const char *realm, const struct credential_entry *e)
{
	struct digest_credentials cr;
	parse_ok(hdr, &cr);
	return digest_verify(ctx, &cr, STR_LIT("REGISTER"), str_from_cstr(uri),
			     str_from_cstr(realm), e);
}

#define EXPECT_VERDICT(got, want)                                                                  \
	do {                                                                                       \
		enum digest_verdict g_ = (got), w_ = (want);                                       \
		if (g_ != w_)                                                                      \
			fail_msg("verdict %s, want %s", digest_verdict_name(g_),                   \
				 digest_verdict_name(w_));                                         \
	} while (0)

static void test_verify_outcomes(void **state)
{
	(void)state;
	struct digest_ctx *ctx = ctx_new(NULL);
	struct credential_entry alice = entry_pw("alice", "example.com", "s3cret");
	char hdr[1024];
	fake_now = 1700000000;

	for (int k = 0; k < 2; k++) {
		enum digest_algorithm alg = k ? DIGEST_ALG_SHA256 : DIGEST_ALG_MD5;
		ua_answer(ctx, alg, "alice", "example.com", "s3cret", test_uri, 1, NULL, hdr,
			  sizeof(hdr));
		EXPECT_VERDICT(verify_text(ctx, hdr, test_uri, "example.com", &alice),
			       DIGEST_VERIFY_OK);
		/* our realm compared case-insensitively */
		ua_answer(ctx, alg, "alice", "example.com", "s3cret", test_uri, 1, NULL, hdr,
			  sizeof(hdr));
		EXPECT_VERDICT(verify_text(ctx, hdr, test_uri, "EXAMPLE.COM", &alice),
			       DIGEST_VERIFY_OK);
		/* wrong password */
		ua_answer(ctx, alg, "alice", "example.com", "guess", test_uri, 1, NULL, hdr,
			  sizeof(hdr));
		EXPECT_VERDICT(verify_text(ctx, hdr, test_uri, "example.com", &alice),
			       DIGEST_VERIFY_BAD_RESPONSE);
		/* unknown user: no entry, or an entry of someone else */
		ua_answer(ctx, alg, "mallory", "example.com", "s3cret", test_uri, 1, NULL, hdr,
			  sizeof(hdr));
		EXPECT_VERDICT(verify_text(ctx, hdr, test_uri, "example.com", NULL),
			       DIGEST_VERIFY_UNKNOWN_USER);
		EXPECT_VERDICT(verify_text(ctx, hdr, test_uri, "example.com", &alice),
			       DIGEST_VERIFY_UNKNOWN_USER);
		/* wrong uri: the Request-URI differs from the uri parameter */
		ua_answer(ctx, alg, "alice", "example.com", "s3cret", test_uri, 1, NULL, hdr,
			  sizeof(hdr));
		EXPECT_VERDICT(
		    verify_text(ctx, hdr, "sip:example.com;transport=tls", "example.com", &alice),
		    DIGEST_VERIFY_URI_MISMATCH);
		EXPECT_VERDICT(verify_text(ctx, hdr, "sip:EXAMPLE.com", "example.com", &alice),
			       DIGEST_VERIFY_URI_MISMATCH);
		/* wrong realm: credentials for another realm */
		ua_answer(ctx, alg, "alice", "example.org", "s3cret", test_uri, 1, NULL, hdr,
			  sizeof(hdr));
		EXPECT_VERDICT(verify_text(ctx, hdr, test_uri, "example.com", &alice),
			       DIGEST_VERIFY_REALM_MISMATCH);
		/* a nonce we did not make */
		ua_answer(ctx, alg, "alice", "example.com", "s3cret", test_uri, 1,
			  "dcd98b7102dd2f0e8b11d0f600bfb0c093", hdr, sizeof(hdr));
		EXPECT_VERDICT(verify_text(ctx, hdr, test_uri, "example.com", &alice),
			       DIGEST_VERIFY_BAD_NONCE);
	}

	/* A nonce made for example.org presented with realm example.com. */
	{
		char ch[512], nbuf[128];
		assert_true(digest_challenge_build(ctx, STR_LIT("example.org"), DIGEST_ALG_MD5,
						   false, ch, sizeof(ch)) > 0);
		struct str nn = challenge_param(ch, "nonce", nbuf, sizeof(nbuf));
		char copy[128];
		str_to_cbuf(nn, copy, sizeof(copy));
		ua_answer(ctx, DIGEST_ALG_MD5, "alice", "example.com", "s3cret", test_uri, 1, copy,
			  hdr, sizeof(hdr));
		EXPECT_VERDICT(verify_text(ctx, hdr, test_uri, "example.com", &alice),
			       DIGEST_VERIFY_BAD_NONCE);
	}
	digest_ctx_destroy(ctx);
}

static void test_verify_stale_vs_bad(void **state)
{
	(void)state;
	struct digest_config cfg = {.nonce_lifetime = 300};
	struct digest_ctx *ctx = ctx_new(&cfg);
	struct credential_entry alice = entry_pw("alice", "example.com", "s3cret");
	char good[1024], bad[1024];
	fake_now = 1700000000;
	ua_answer(ctx, DIGEST_ALG_SHA256, "alice", "example.com", "s3cret", test_uri, 1, NULL, good,
		  sizeof(good));
	ua_answer(ctx, DIGEST_ALG_SHA256, "alice", "example.com", "wrong", test_uri, 1, NULL, bad,
		  sizeof(bad));
	fake_now += 301;
	/* Expired nonce: stale only when the digest itself is right
	 * (RFC 7616 §3.3); a wrong password stays a wrong password. */
	EXPECT_VERDICT(verify_text(ctx, good, test_uri, "example.com", &alice),
		       DIGEST_VERIFY_STALE);
	EXPECT_VERDICT(verify_text(ctx, bad, test_uri, "example.com", &alice),
		       DIGEST_VERIFY_BAD_RESPONSE);
	/* A tampered expired nonce is bad, not stale. */
	char *p = strstr(good, "nonce=\"");
	assert_non_null(p);
	p[7 + 10] = p[7 + 10] == 'A' ? 'B' : 'A';
	EXPECT_VERDICT(verify_text(ctx, good, test_uri, "example.com", &alice),
		       DIGEST_VERIFY_BAD_NONCE);
	fake_now = 1700000000;
	digest_ctx_destroy(ctx);
}

static void test_verify_replay(void **state)
{
	(void)state;
	struct digest_ctx *ctx = ctx_new(NULL);
	struct credential_entry alice = entry_pw("alice", "example.com", "s3cret");
	char hdr[1024], hdr2[1024], hdr3[1024], nbuf[128];
	fake_now = 1700000000;

	ua_answer(ctx, DIGEST_ALG_MD5, "alice", "example.com", "s3cret", test_uri, 1, NULL, hdr,
		  sizeof(hdr));
	/* the same nonce with nc 2 and 3 */
	struct digest_credentials cr;
	parse_ok(hdr, &cr);
	str_to_cbuf(cr.nonce, nbuf, sizeof(nbuf));
	ua_answer(ctx, DIGEST_ALG_MD5, "alice", "example.com", "s3cret", test_uri, 2, nbuf, hdr2,
		  sizeof(hdr2));
	ua_answer(ctx, DIGEST_ALG_MD5, "alice", "example.com", "s3cret", test_uri, 3, nbuf, hdr3,
		  sizeof(hdr3));

	/* A nonce first seen with nc > 1 is refused (the registrar answers
	 * with a stale challenge; the table never saw this nonce). */
	EXPECT_VERDICT(verify_text(ctx, hdr2, test_uri, "example.com", &alice),
		       DIGEST_VERIFY_REPLAY);
	EXPECT_VERDICT(verify_text(ctx, hdr, test_uri, "example.com", &alice), DIGEST_VERIFY_OK);
	EXPECT_VERDICT(verify_text(ctx, hdr, test_uri, "example.com", &alice),
		       DIGEST_VERIFY_REPLAY);
	EXPECT_VERDICT(verify_text(ctx, hdr3, test_uri, "example.com", &alice), DIGEST_VERIFY_OK);
	EXPECT_VERDICT(verify_text(ctx, hdr2, test_uri, "example.com", &alice),
		       DIGEST_VERIFY_REPLAY);
	EXPECT_VERDICT(verify_text(ctx, hdr3, test_uri, "example.com", &alice),
		       DIGEST_VERIFY_REPLAY);

	/* Many nonces: the bounded table evicts, nothing breaks. */
	for (int i = 0; i < DIGEST_NC_BUCKETS * DIGEST_NC_WAYS * 2; i++) {
		fake_now++;
		ua_answer(ctx, DIGEST_ALG_MD5, "alice", "example.com", "s3cret", test_uri, 1, NULL,
			  hdr, sizeof(hdr));
		EXPECT_VERDICT(verify_text(ctx, hdr, test_uri, "example.com", &alice),
			       DIGEST_VERIFY_OK);
		EXPECT_VERDICT(verify_text(ctx, hdr, test_uri, "example.com", &alice),
			       DIGEST_VERIFY_REPLAY);
	}
	digest_ctx_destroy(ctx);

	/* With the table off, a replay within the lifetime passes. */
	struct digest_config off = {.no_nc_check = true};
	ctx = ctx_new(&off);
	ua_answer(ctx, DIGEST_ALG_MD5, "alice", "example.com", "s3cret", test_uri, 1, NULL, hdr,
		  sizeof(hdr));
	EXPECT_VERDICT(verify_text(ctx, hdr, test_uri, "example.com", &alice), DIGEST_VERIFY_OK);
	EXPECT_VERDICT(verify_text(ctx, hdr, test_uri, "example.com", &alice), DIGEST_VERIFY_OK);
	digest_ctx_destroy(ctx);
}

static enum digest_verdict verify_opts(struct digest_ctx *ctx, const struct ua_opts *o,
				       const struct credential_entry *e)
{
	char hdr[1024];
	ua_answer_opts(ctx, o, hdr, sizeof(hdr));
	return verify_text(ctx, hdr, test_uri, "example.com", e);
}

static void test_verify_policy(void **state)
{
	(void)state;
	struct credential_entry alice = entry_pw("alice", "example.com", "s3cret");
	struct ua_opts o = {.alg = DIGEST_ALG_MD5,
			    .user = "alice",
			    .realm = "example.com",
			    .password = "s3cret",
			    .uri = test_uri};
	fake_now = 1700000000;

	/* Defaults: MD5 and SHA-256 with qop=auth; nothing else. */
	struct digest_ctx *ctx = ctx_new(NULL);
	assert_int_equal(digest_ctx_algorithms(ctx), DIGEST_ALGS_DEFAULT);
	EXPECT_VERDICT(verify_opts(ctx, &o, &alice), DIGEST_VERIFY_OK);
	o.qop = ""; /* RFC 2069 answer */
	EXPECT_VERDICT(verify_opts(ctx, &o, &alice), DIGEST_VERIFY_UNSUPPORTED);
	o.qop = NULL;
	o.alg = DIGEST_ALG_MD5_SESS;
	o.use_challenge_alg = true;
	o.challenge_alg = DIGEST_ALG_MD5;
	EXPECT_VERDICT(verify_opts(ctx, &o, &alice), DIGEST_VERIFY_UNSUPPORTED);
	o.alg = DIGEST_ALG_MD5;
	o.use_challenge_alg = false;
	o.extra = ", userhash=true";
	EXPECT_VERDICT(verify_opts(ctx, &o, &alice), DIGEST_VERIFY_UNSUPPORTED);
	o.extra = NULL;
	/* opaque echoed though we sent none: ignored */
	o.opaque = "whatever";
	EXPECT_VERDICT(verify_opts(ctx, &o, &alice), DIGEST_VERIFY_OK);
	o.opaque = NULL;
	{
		/* qop=auth-int and an unknown algorithm */
		char hdr[1024];
		ua_answer_opts(ctx, &o, hdr, sizeof(hdr));
		char *q = strstr(hdr, "qop=auth");
		assert_non_null(q);
		memmove(q + 12, q + 8, strlen(q + 8) + 1);
		memcpy(q + 8, "-int", 4);
		EXPECT_VERDICT(verify_text(ctx, hdr, test_uri, "example.com", &alice),
			       DIGEST_VERIFY_UNSUPPORTED);
		EXPECT_VERDICT(
		    verify_text(ctx,
				"Digest username=\"alice\", realm=\"example.com\", "
				"nonce=\"n\", uri=\"sip:example.com\", algorithm=SHA-512, "
				"response=\"00\"",
				test_uri, "example.com", &alice),
		    DIGEST_VERIFY_UNSUPPORTED);
	}
	/* An entry without any secret. */
	struct credential_entry empty = {0};
	empty.user = STR_LIT("alice");
	empty.realm = STR_LIT("example.com");
	EXPECT_VERDICT(verify_opts(ctx, &o, &empty), DIGEST_VERIFY_UNSUPPORTED);
	digest_ctx_destroy(ctx);

	/* Everything on: -sess variants, RFC 2069 answers, opaque. */
	struct digest_config all = {
	    .algorithms = DIGEST_ALG_BIT(DIGEST_ALG_MD5) | DIGEST_ALG_BIT(DIGEST_ALG_MD5_SESS) |
			  DIGEST_ALG_BIT(DIGEST_ALG_SHA256) |
			  DIGEST_ALG_BIT(DIGEST_ALG_SHA256_SESS),
	    .allow_no_qop = true,
	    .with_opaque = true,
	};
	ctx = ctx_new(&all);
	const enum digest_algorithm algs[] = {DIGEST_ALG_MD5, DIGEST_ALG_MD5_SESS,
					      DIGEST_ALG_SHA256, DIGEST_ALG_SHA256_SESS};
	for (int k = 0; k < 4; k++) {
		o.alg = algs[k];
		o.qop = NULL;
		EXPECT_VERDICT(verify_opts(ctx, &o, &alice), DIGEST_VERIFY_OK);
		o.qop = "";
		EXPECT_VERDICT(verify_opts(ctx, &o, &alice), DIGEST_VERIFY_OK);
		o.password = "wrong";
		EXPECT_VERDICT(verify_opts(ctx, &o, &alice), DIGEST_VERIFY_BAD_RESPONSE);
		o.password = "s3cret";
		o.opaque = "AAAAAAAAAAAAAAAA";
		EXPECT_VERDICT(verify_opts(ctx, &o, &alice), DIGEST_VERIFY_BAD_NONCE);
		o.opaque = NULL;
	}
	/* The headers helper offers the four, SHA-256 first, MD5-sess last. */
	char out[2048];
	assert_true(digest_challenge_headers_build(ctx, false, STR_LIT("example.com"), false, out,
						   sizeof(out)) > 0);
	const char *p1 = strstr(out, "algorithm=SHA-256,"),
		   *p2 = strstr(out, "algorithm=SHA-256-sess"), *p3 = strstr(out, "algorithm=MD5,"),
		   *p4 = strstr(out, "algorithm=MD5-sess");
	assert_true(p1 && p2 && p3 && p4 && p1 < p2 && p2 < p3 && p3 < p4);
	digest_ctx_destroy(ctx);

	/* MD5 only: SHA-256 refused. */
	struct digest_config md5 = {.algorithms = DIGEST_ALG_BIT(DIGEST_ALG_MD5)};
	ctx = ctx_new(&md5);
	o.alg = DIGEST_ALG_SHA256;
	o.qop = NULL;
	o.use_challenge_alg = true;
	o.challenge_alg = DIGEST_ALG_MD5;
	EXPECT_VERDICT(verify_opts(ctx, &o, &alice), DIGEST_VERIFY_UNSUPPORTED);
	digest_ctx_destroy(ctx);
}

/* ---- credentials file ---- */

static char tmpdir[64];

static const char *write_file(const char *name, const char *content, size_t len)
{
	static char path[256];
	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_digest.XXXXXX");
		assert_non_null(mkdtemp(tmpdir));
	}
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(content, 1, len, f), len);
	fclose(f);
	return path;
}

static const char *write_cfile(const char *name, const char *content)
{
	return write_file(name, content, strlen(content));
}

static void load_fails(const char *content, int want_rc, const char *want_in_err)
{
	char err[512];
	struct credentials *c = (struct credentials *)1;
	const char *path = write_cfile("bad.txt", content);
	int rc = credentials_load(path, &c, err, sizeof(err));
	if (rc != want_rc)
		fail_msg("load of <<%s>>: got %d (%s), want %d", content, rc, err, want_rc);
	assert_null(c);
	if (!strstr(err, want_in_err))
		fail_msg("error '%s' lacks '%s'", err, want_in_err);
	assert_non_null(strstr(err, path));
}

static const char good_file[] =
    "# sipsd users\n"
    "\n"
    "alice@example.com   s3cret\n"
    "   # indented comment\n"
    "Alice@example.com\t\"pass word \\\"q\\\" \\\\ #x\"  \r\n"
    "bob@Example.COM  ha1-md5:939e7db1fa5aed601fabf61d7f47a22c\n"
    "carol@corp@example.com "
    "ha1-sha256:7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
    " HA1-MD5:3d78807defe7de2157e2b0b6573a855f\n"
    "alice@example.org  \"ha1-md5:not-a-hash\"\n"
    "dave@example.com #not-a-comment";

static void test_credentials_load(void **state)
{
	(void)state;
	char err[512];
	struct credentials *c = NULL;
	const char *path = write_cfile("good.txt", good_file);
	int rc = credentials_load(path, &c, err, sizeof(err));
	if (rc != 0)
		fail_msg("load: %d %s", rc, err);
	assert_int_equal(credentials_count(c), 6);

	const struct credential_entry *e =
	    credentials_lookup(c, STR_LIT("alice"), STR_LIT("EXAMPLE.com"));
	assert_non_null(e);
	assert_str(e->user, "alice");
	assert_str(e->password, "s3cret");
	assert_true(e->has_password && !e->has_ha1_md5 && !e->has_ha1_sha256);
	assert_int_equal(e->line, 3);

	/* users are case-sensitive */
	e = credentials_lookup(c, STR_LIT("Alice"), STR_LIT("example.com"));
	assert_non_null(e);
	assert_str(e->password, "pass word \"q\" \\ #x");
	assert_int_equal(e->line, 5);
	assert_null(credentials_lookup(c, STR_LIT("ALICE"), STR_LIT("example.com")));
	assert_null(credentials_lookup(c, STR_LIT("alice"), STR_LIT("example.net")));
	assert_null(credentials_lookup(c, STR_LIT("alice"), STR_LIT("example.co")));

	e = credentials_lookup(c, STR_LIT("bob"), STR_LIT("example.com"));
	assert_non_null(e);
	assert_true(e->has_ha1_md5 && !e->has_password);
	assert_int_equal(e->ha1_md5[0], 0x93);
	assert_int_equal(e->ha1_md5[15], 0x2c);

	e = credentials_lookup(c, STR_LIT("carol@corp"), STR_LIT("example.com"));
	assert_non_null(e);
	assert_true(e->has_ha1_md5 && e->has_ha1_sha256);
	assert_int_equal(e->ha1_sha256[0], 0x79);

	e = credentials_lookup(c, STR_LIT("alice"), STR_LIT("example.org"));
	assert_non_null(e);
	assert_str(e->password, "ha1-md5:not-a-hash");

	e = credentials_lookup(c, STR_LIT("dave"), STR_LIT("example.com"));
	assert_non_null(e);
	assert_str(e->password, "#not-a-comment");

	credentials_free(c);
	credentials_free(NULL);
}

static void test_credentials_errors(void **state)
{
	(void)state;
	char err[512];
	struct credentials *c = (struct credentials *)1;
	assert_int_equal(credentials_load("/nonexistent/sipsd-users", &c, err, sizeof(err)),
			 -ENOENT);
	assert_null(c);
	assert_non_null(strstr(err, "/nonexistent/sipsd-users"));

	load_fails("# ok\nalice example.com pw\n", -EINVAL, ":2: expected user@realm");
	load_fails("\n\n@example.com pw\n", -EINVAL, ":3: empty user");
	load_fails("alice@ pw\n", -EINVAL, ":1: empty realm");
	load_fails("alice@example.com\n", -EINVAL, ":1: no password or ha1");
	load_fails("alice@example.com    \n", -EINVAL, ":1: no password or ha1");
	load_fails("alice@example.com a b\n", -EINVAL, ":1: more than one password");
	load_fails("a@b pw\nalice@example.com ha1-md5:1234\n", -EINVAL, ":2: ha1-md5 needs 32 hex");
	load_fails("alice@example.com ha1-sha256:939e7db1fa5aed601fabf61d7f47a22c\n", -EINVAL,
		   ":1: ha1-sha256 needs 64 hex");
	load_fails("alice@example.com ha1-md5:939e7db1fa5aed601fabf61d7f47a22c "
		   "ha1-md5:939e7db1fa5aed601fabf61d7f47a22c\n",
		   -EINVAL, ":1: ha1-md5 given twice");
	load_fails("alice@example.com ha1-sha1:00\n", -EINVAL, ":1: unknown ha1 kind");
	load_fails("alice@example.com pw ha1-md5:939e7db1fa5aed601fabf61d7f47a22c\n", -EINVAL,
		   ":1: give a password or ha1 values, not both");
	load_fails("alice@example.com \"unterminated\n", -EINVAL, ":1: unterminated quoted");
	load_fails("alice@example.com \"x\"y\n", -EINVAL, ":1: text after a quoted password");
	load_fails("a@b x\nalice@example.com pw\nbob@example.com pw\nALICE@example.com pw\n"
		   "alice@EXAMPLE.com pw2\n",
		   -EINVAL, ":5: alice@EXAMPLE.com already defined on line 2");

	/* a long line, a long field */
	char *big = malloc(CREDENTIALS_MAX_LINE * 2 + 64);
	assert_non_null(big);
	int n = snprintf(big, 64, "ok@x pw\nalice@example.com ");
	memset(big + n, 'p', CREDENTIALS_MAX_LINE);
	big[n + CREDENTIALS_MAX_LINE] = '\n';
	big[n + CREDENTIALS_MAX_LINE + 1] = '\0';
	load_fails(big, -EMSGSIZE, ":2: line longer than 1024 bytes");
	n = snprintf(big, 64, "alice@example.com ");
	memset(big + n, 'p', CREDENTIALS_MAX_FIELD + 1);
	big[n + CREDENTIALS_MAX_FIELD + 1] = '\0';
	load_fails(big, -EINVAL, ":1: password longer than 256 bytes");
	n = snprintf(big, 64, "alice@example.com \"");
	memset(big + n, 'p', CREDENTIALS_MAX_FIELD + 1);
	snprintf(big + n + CREDENTIALS_MAX_FIELD + 1, 8, "\"");
	load_fails(big, -EINVAL, ":1: password longer than 256 bytes");
	n = 0;
	memset(big, 'u', CREDENTIALS_MAX_FIELD + 1);
	snprintf(big + CREDENTIALS_MAX_FIELD + 1, 32, "@example.com pw");
	load_fails(big, -EINVAL, ":1: user or realm longer");
	free(big);

	/* a NUL byte, a control character */
	const char *path = write_file("nul.txt", "a@b pw\nc@d p\0w\n", 15);
	c = (struct credentials *)1;
	assert_int_equal(credentials_load(path, &c, err, sizeof(err)), -EINVAL);
	assert_null(c);
	assert_non_null(strstr(err, ":2: NUL byte"));
	load_fails("a@b p\x01w\n", -EINVAL, ":1: control character in password");

	/* an empty file is an empty table */
	path = write_cfile("empty.txt", "# nobody yet\n");
	assert_int_equal(credentials_load(path, &c, err, sizeof(err)), 0);
	assert_int_equal(credentials_count(c), 0);
	assert_null(credentials_lookup(c, STR_LIT("a"), STR_LIT("b")));
	credentials_free(c);
}

static void ha1_hex(const EVP_MD *md, const char *a1, char *out)
{
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	assert_int_equal(EVP_Digest(a1, strlen(a1), h, &n, md, NULL), 1);
	for (unsigned i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* Verification against entries loaded from a file: a password entry and
 * HA1-only entries, per algorithm. */
static void test_verify_with_file(void **state)
{
	(void)state;
	char err[512], hdr[1024];
	struct credentials *c = NULL;
	/* HA1s of "mufasa:example.com:Circle of Life", as an operator would
	 * compute them (docs/digest.md). */
	char ha1_md5[33], ha1_sha[65];
	ha1_hex(EVP_md5(), "mufasa:example.com:Circle of Life", ha1_md5);
	ha1_hex(EVP_sha256(), "mufasa:example.com:Circle of Life", ha1_sha);
	char content[512];
	snprintf(content, sizeof(content),
		 "alice@example.com s3cret\n"
		 "mufasa@example.com ha1-md5:%s ha1-sha256:%s\n"
		 "md5only@example.com ha1-md5:%s\n",
		 ha1_md5, ha1_sha, ha1_md5);
	const char *path = write_cfile("users.txt", content);
	assert_int_equal(credentials_load(path, &c, err, sizeof(err)), 0);

	struct digest_ctx *ctx = ctx_new(NULL);
	fake_now = 1700000000;
	const enum digest_algorithm algs[] = {DIGEST_ALG_MD5, DIGEST_ALG_SHA256};
	for (int k = 0; k < 2; k++) {
		struct digest_credentials cr;
		ua_answer(ctx, algs[k], "mufasa", "example.com", "Circle of Life", test_uri, 1,
			  NULL, hdr, sizeof(hdr));
		parse_ok(hdr, &cr);
		const struct credential_entry *e = credentials_lookup(c, cr.username, cr.realm);
		assert_non_null(e);
		EXPECT_VERDICT(digest_verify(ctx, &cr, STR_LIT("REGISTER"), str_from_cstr(test_uri),
					     STR_LIT("example.com"), e),
			       DIGEST_VERIFY_OK);
		/* the method is part of A2 */
		ua_answer(ctx, algs[k], "mufasa", "example.com", "Circle of Life", test_uri, 1,
			  NULL, hdr, sizeof(hdr));
		parse_ok(hdr, &cr);
		EXPECT_VERDICT(digest_verify(ctx, &cr, STR_LIT("INVITE"), str_from_cstr(test_uri),
					     STR_LIT("example.com"), e),
			       DIGEST_VERIFY_BAD_RESPONSE);
		ua_answer(ctx, algs[k], "alice", "example.com", "s3cret", test_uri, 1, NULL, hdr,
			  sizeof(hdr));
		parse_ok(hdr, &cr);
		EXPECT_VERDICT(digest_verify(ctx, &cr, STR_LIT("REGISTER"), str_from_cstr(test_uri),
					     STR_LIT("example.com"),
					     credentials_lookup(c, cr.username, cr.realm)),
			       DIGEST_VERIFY_OK);
	}
	/* A user with only an MD5 HA1 cannot answer a SHA-256 challenge. */
	struct digest_credentials cr;
	ua_answer(ctx, DIGEST_ALG_SHA256, "md5only", "example.com", "Circle of Life", test_uri, 1,
		  NULL, hdr, sizeof(hdr));
	parse_ok(hdr, &cr);
	EXPECT_VERDICT(digest_verify(ctx, &cr, STR_LIT("REGISTER"), str_from_cstr(test_uri),
				     STR_LIT("example.com"),
				     credentials_lookup(c, cr.username, cr.realm)),
		       DIGEST_VERIFY_UNSUPPORTED);
	digest_ctx_destroy(ctx);
	credentials_free(c);
}

static void test_misc(void **state)
{
	(void)state;
	/* Names for logs. */
	for (int v = DIGEST_VERIFY_OK; v <= DIGEST_VERIFY_UNSUPPORTED; v++)
		assert_string_not_equal(digest_verdict_name((enum digest_verdict)v), "?");
	assert_string_equal(digest_verdict_name(DIGEST_VERIFY_STALE), "stale");
	assert_string_equal(digest_algorithm_name(DIGEST_ALG_SHA256_SESS), "SHA-256-sess");
	assert_string_equal(digest_algorithm_name(DIGEST_ALG_UNKNOWN), "?");

	/* The default context: real clock, random secret. */
	struct digest_ctx *ctx = NULL;
	char nonce[DIGEST_NONCE_LEN + 1];
	assert_int_equal(digest_ctx_create(NULL, &ctx), 0);
	assert_int_equal(digest_nonce_create(ctx, STR_LIT("example.com"), nonce, sizeof(nonce)),
			 DIGEST_NONCE_LEN);
	assert_int_equal(digest_nonce_check(ctx, str_from_cstr(nonce), STR_LIT("example.com")), 0);
	char realm[DIGEST_MAX_REALM + 2];
	memset(realm, 'r', sizeof(realm));
	assert_int_equal(
	    digest_nonce_create(ctx, str_make(realm, sizeof(realm)), nonce, sizeof(nonce)),
	    -EINVAL);
	assert_int_equal(
	    digest_nonce_check(ctx, str_from_cstr(nonce), str_make(realm, sizeof(realm))),
	    -EBADMSG);
	digest_ctx_destroy(ctx);
	struct digest_config none = {.algorithms = DIGEST_ALG_BIT(DIGEST_ALG_UNKNOWN)};
	assert_int_equal(digest_ctx_create(&none, &ctx), -EINVAL);

	/* Parse corners: qop values, '=' missing. */
	struct digest_credentials cr;
	parse_ok("Digest username=\"u\", realm=\"r\", nonce=\"n\", qop=token, nc=00000001, "
		 "cnonce=\"c\", " GOOD_TAIL,
		 &cr);
	assert_int_equal(cr.qop, DIGEST_QOP_OTHER);
	parse_ok("Digest username=\"u\", realm=\"r\", nonce=\"n\", qop=\"AUTH-INT\", nc=ffffffff, "
		 "cnonce=\"c\", " GOOD_TAIL,
		 &cr);
	assert_int_equal(cr.qop, DIGEST_QOP_AUTH_INT);
	assert_int_equal(cr.nc, 0xffffffffu);
	parse_fails("Digest username \"u\"", -EBADMSG);
	parse_fails("Digest username", -EBADMSG);
}

static void test_credentials_limits(void **state)
{
	(void)state;
	char err[512];
	struct credentials *c = NULL;
	size_t cap = (size_t)(CREDENTIALS_MAX_ENTRIES + 1) * 32 + 64;
	char *text = malloc(cap);
	assert_non_null(text);
	size_t n = 0;
	for (int i = 0; i < CREDENTIALS_MAX_ENTRIES; i++)
		n += (size_t)snprintf(text + n, cap - n, "u%d@example.com p%d\n", i, i);
	const char *path = write_file("many.txt", text, n);
	assert_int_equal(credentials_load(path, &c, err, sizeof(err)), 0);
	assert_int_equal(credentials_count(c), CREDENTIALS_MAX_ENTRIES);
	const struct credential_entry *e =
	    credentials_lookup(c, STR_LIT("u77777"), STR_LIT("Example.Com"));
	assert_non_null(e);
	assert_str(e->password, "p77777");
	assert_int_equal(e->line, 77778);
	credentials_free(c);
	n += (size_t)snprintf(text + n, cap - n, "one@too.many x\n");
	path = write_file("many.txt", text, n);
	c = (struct credentials *)1;
	assert_int_equal(credentials_load(path, &c, err, sizeof(err)), -EMSGSIZE);
	assert_null(c);
	assert_non_null(strstr(err, ":100001: more than 100000 entries"));
	free(text);

	load_fails("a\x02"
		   "b@example.com pw\n",
		   -EINVAL, ":1: control character in user@realm");
	load_fails(
	    "a@b ha1-sha256:7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232 "
	    "ha1-sha256:7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232\n",
	    -EINVAL, ":1: ha1-sha256 given twice");
	load_fails("a@b \"pw\\", -EINVAL, ":1: unterminated quoted password");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc2617_example),
	    cmocka_unit_test(test_rfc7616_examples),
	    cmocka_unit_test(test_parse_folded_and_escaped),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_parse_limits),
	    cmocka_unit_test(test_find_in_message),
	    cmocka_unit_test(test_nonce_lifetime),
	    cmocka_unit_test(test_challenge),
	    cmocka_unit_test(test_verify_outcomes),
	    cmocka_unit_test(test_verify_stale_vs_bad),
	    cmocka_unit_test(test_verify_replay),
	    cmocka_unit_test(test_verify_policy),
	    cmocka_unit_test(test_credentials_load),
	    cmocka_unit_test(test_credentials_errors),
	    cmocka_unit_test(test_verify_with_file),
	    cmocka_unit_test(test_misc),
	    cmocka_unit_test(test_credentials_limits),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	if (tmpdir[0]) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
	return rc;
}
