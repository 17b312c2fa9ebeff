/* fuzz_uri.c: libFuzzer target for URI parsing and comparison. The input
 * is one URI, or two separated by a LF (then equality must be symmetric). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"
#include "sip/uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_uri: %s:%d: check failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static bool within(struct str s, struct str in)
{
	return s.len == 0 || (s.s >= in.s && s.s + s.len <= in.s + in.len);
}

/* Lower-cased, unescaped parameter name into buf; returns its length. */
static size_t name_key(struct str name, char *buf, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < name.len && n < cap; i++) {
		char c = name.s[i];
		if (c == '%' && i + 2 < name.len && ascii_is_hex(name.s[i + 1]) &&
		    ascii_is_hex(name.s[i + 2])) {
			c = (char)(ascii_hex_value(name.s[i + 1]) * 16 +
				   ascii_hex_value(name.s[i + 2]));
			i += 2;
		}
		buf[n++] = ascii_lower(c);
	}
	return n;
}

/* True when a parameter name appears twice. Such URIs are not equal to
 * themselves (the parser now refuses them, test_sip_uri.c test_repeated_param_regression): RFC 3261
 * §19.1.1 forbids them, the parser accepts them, uri_params_equal compares
 * each with the first of its name. Skipped here until fixed, so the
 * fuzzer keeps looking for other faults. */
static bool has_repeated_param(struct str params)
{
	struct str a = params;
	struct sip_param p, q;
	char ka[SIPS_MAX_URI], kb[SIPS_MAX_URI];
	while (sip_params_next(&a, &p)) {
		size_t la = name_key(p.name, ka, sizeof(ka));
		struct str b = a;
		while (sip_params_next(&b, &q)) {
			size_t lb = name_key(q.name, kb, sizeof(kb));
			if (la == lb && memcmp(ka, kb, la) == 0)
				return true;
		}
	}
	return false;
}

/* Parses `in`; checks the result. Returns true when it parsed. */
static bool parse_checked(struct str in, struct sip_uri *u)
{
	size_t off = (size_t)-1;
	const char *why = NULL;
	int rc = sip_uri_parse(in, u, &off, &why);
	if (rc < 0) {
		FUZZ_CHECK(rc == -EBADMSG && why != NULL && off <= in.len);
		return false;
	}
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(in.len > 0 && in.len <= SIPS_MAX_URI);
	FUZZ_CHECK(u->raw.s == in.s && u->raw.len == in.len);
	FUZZ_CHECK(within(u->scheme, in) && u->scheme.len > 0);
	FUZZ_CHECK(within(u->opaque, in));
	if (u->scheme_id == SIP_SCHEME_SIP || u->scheme_id == SIP_SCHEME_SIPS) {
		FUZZ_CHECK(within(u->user, in) && within(u->password, in));
		FUZZ_CHECK(within(u->host, in) && u->host.len > 0);
		FUZZ_CHECK(within(u->params, in) && within(u->headers, in));
		FUZZ_CHECK(u->params.len == 0 || u->params.s[0] == ';');
		FUZZ_CHECK(u->host_type != SIP_HOST_NONE);
		FUZZ_CHECK(u->has_port || u->port == 0);
		FUZZ_CHECK(!u->has_password || u->has_user);
		if (u->host_type == SIP_HOST_IPV6)
			FUZZ_CHECK(u->host.s[0] == '[' && u->host.s[u->host.len - 1] == ']');
		/* The host:port part parses alone to the same host. */
		struct str h;
		enum sip_host_type t;
		uint16_t port;
		bool has_port;
		size_t hoff;
		FUZZ_CHECK(sip_hostport_parse(u->host, &h, &t, &port, &has_port, &hoff) == 0);
		FUZZ_CHECK(str_eq(h, u->host) && t == u->host_type && !has_port);
		FUZZ_CHECK(sip_uri_default_port(u) ==
			   (u->scheme_id == SIP_SCHEME_SIPS ? 5061 : 5060));
	} else {
		FUZZ_CHECK(u->opaque.len > 0);
	}
	/* Known bug (uri.c sip_params_next, test_sip_uri.c
	 * test_params_null_BUG): on STR_NULL, as the params of a tel: URI are,
	 * it computes NULL + 0, which clang's UBSan reports. Skipped until fixed. */
	struct str cur = u->params.len ? u->params : STR_LIT("");
	struct sip_param p;
	unsigned guard = 0;
	while (sip_params_next(&cur, &p) && guard++ < 10000)
		FUZZ_CHECK(within(p.name, u->params) && within(p.value, u->params));
	FUZZ_CHECK(guard < 10000);
	return true;
}

static bool skip_equality(const struct sip_uri *u)
{
	return (u->scheme_id == SIP_SCHEME_SIP || u->scheme_id == SIP_SCHEME_SIPS) &&
	       has_repeated_param(u->params);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct str in = str_make((const char *)data, size);
	struct sip_uri u, v;

	if (parse_checked(in, &u) && !skip_equality(&u)) {
		/* Reflexive, and independent of where the bytes are. */
		FUZZ_CHECK(sip_uri_equal(&u, &u));
		char *copy = malloc(size);
		FUZZ_CHECK(copy != NULL);
		memcpy(copy, data, size);
		FUZZ_CHECK(parse_checked(str_make(copy, size), &v));
		FUZZ_CHECK(sip_uri_equal(&u, &v) && sip_uri_equal(&v, &u));
		free(copy);
	}

	/* Two URIs: equality is symmetric. */
	long lf = str_index(in, '\n');
	if (lf >= 0) {
		struct str a = str_make(in.s, (size_t)lf);
		struct str b = str_make(in.s + lf + 1, size - (size_t)lf - 1);
		if (parse_checked(a, &u) && parse_checked(b, &v) && !skip_equality(&u) &&
		    !skip_equality(&v))
			FUZZ_CHECK(sip_uri_equal(&u, &v) == sip_uri_equal(&v, &u));
	}

	/* The generic helpers on raw bytes. */
	struct str h;
	enum sip_host_type t;
	uint16_t port;
	bool has_port;
	size_t off;
	if (sip_hostport_parse(in, &h, &t, &port, &has_port, &off) == 0)
		FUZZ_CHECK(within(h, in) && h.len > 0);
	else
		FUZZ_CHECK(off <= size);
	struct str cur = size ? in : STR_LIT("");
	struct sip_param p;
	unsigned guard = 0;
	while (sip_params_next(&cur, &p) && guard++ < 100000)
		FUZZ_CHECK(within(p.name, in) && within(p.value, in));
	FUZZ_CHECK(guard < 100000);
	return 0;
}
