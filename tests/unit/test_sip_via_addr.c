/* test_sip_via_addr.c: Via lists, name-addr/addr-spec lists and sent-by host:port. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sip/chars.h"
#include "sip/msg.h"
#include "sip/uri.h"

static unsigned char arena_mem[32768];
static struct arena arena;

static bool str_is(struct str s, const char *c)
{
	return str_eq(s, str_from_cstr(c));
}

#define assert_str(expr, want)                                                                     \
	do {                                                                                       \
		struct str got_ = (expr);                                                          \
		if (!str_is(got_, (want)))                                                         \
			fail_msg("%s is '%.*s', expected '%s'", #expr, (int)got_.len,              \
				 got_.s ? got_.s : "", (want));                                    \
	} while (0)

/* Parses a Via value; returns the entry count (fails on error). */
static int via_ok(const char *value, struct sip_via **first)
{
	size_t off = 0;
	const char *why = NULL;
	arena_init(&arena, arena_mem, sizeof(arena_mem));
	int n = sip_via_list_parse(str_from_cstr(value), &arena, first, &off, &why);
	if (n < 0)
		fail_msg("Via '%s': %d, %s at %zu", value, n, why ? why : "?", off);
	return n;
}

static int addr_ok(const char *value, bool allow_star, bool *star, struct sip_addr **first)
{
	size_t off = 0;
	const char *why = NULL;
	arena_init(&arena, arena_mem, sizeof(arena_mem));
	int n =
	    sip_addr_list_parse(str_from_cstr(value), &arena, allow_star, star, first, &off, &why);
	if (n < 0)
		fail_msg("address '%s': %d, %s at %zu", value, n, why ? why : "?", off);
	return n;
}

/* Every Via parameter we extract (RFC 3261 §20.42, RFC 3581 rport,
 * RFC 5923 alias), and the others kept in `params`. */
static void test_via_params(void **state)
{
	(void)state;
	struct sip_via *v;
	assert_int_equal(
	    via_ok("SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;"
		   "received=192.0.2.1;rport=5061;maddr=224.2.0.1;ttl=16;alias;x-foo=bar",
		   &v),
	    1);
	assert_str(v->protocol, "SIP");
	assert_str(v->version, "2.0");
	assert_str(v->transport, "UDP");
	assert_str(v->host, "pc33.atlanta.com");
	assert_int_equal(v->host_type, SIP_HOST_NAME);
	assert_true(v->has_port);
	assert_int_equal(v->port, 5066);
	assert_true(v->has_branch);
	assert_str(v->branch, "z9hG4bK776asdhds");
	assert_true(v->has_received);
	assert_str(v->received, "192.0.2.1");
	assert_true(v->has_rport);
	assert_str(v->rport, "5061");
	assert_str(v->maddr, "224.2.0.1");
	assert_str(v->ttl, "16");
	assert_true(v->has_alias);
	assert_str(v->params,
		   ";branch=z9hG4bK776asdhds;received=192.0.2.1;rport=5061;maddr=224.2.0.1;"
		   "ttl=16;alias;x-foo=bar");
	struct str xv;
	assert_true(sip_params_find(v->params, "x-foo", &xv));
	assert_str(xv, "bar");
	assert_str(v->raw, "SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;"
			   "received=192.0.2.1;rport=5061;maddr=224.2.0.1;ttl=16;alias;x-foo=bar");
	assert_null(v->next);

	/* rport as a flag (RFC 3581 §3: the client asks for it); names are
	 * case-insensitive. */
	assert_int_equal(via_ok("SIP/2.0/TCP 192.0.2.7;RPORT;Branch=z9hG4bKa", &v), 1);
	assert_true(v->has_rport);
	assert_int_equal(v->rport.len, 0);
	assert_true(v->has_branch);
	assert_str(v->branch, "z9hG4bKa");
	assert_int_equal(v->host_type, SIP_HOST_IPV4);
	assert_false(v->has_port);
	assert_false(v->has_received);
	assert_false(v->has_alias);

	/* No parameters at all (RFC 2543 peers). */
	assert_int_equal(via_ok("SIP/2.0/UDP iftgw.example.com", &v), 1);
	assert_false(v->has_branch);
	assert_false(v->has_rport);
	assert_int_equal(v->params.len, 0);

	/* received with IPv6: bracketed (RFC 5118 §4.5) and RFC 3261's
	 * unbracketed form; IPv4-mapped. */
	assert_int_equal(
	    via_ok("SIP/2.0/UDP [2001:db8::9:1]:5070;received=[2001:db8::9:255];branch=z9hG4bKas3",
		   &v),
	    1);
	assert_str(v->host, "[2001:db8::9:1]");
	assert_int_equal(v->host_type, SIP_HOST_IPV6);
	assert_int_equal(v->port, 5070);
	assert_str(v->received, "[2001:db8::9:255]");
	assert_str(v->branch, "z9hG4bKas3");
	assert_int_equal(
	    via_ok("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3", &v),
	    1);
	assert_str(v->received, "2001:db8::9:255");
	assert_str(v->branch, "z9hG4bKas3");
	assert_false(v->has_port);
	assert_int_equal(
	    via_ok("SIP/2.0/TLS [::ffff:192.0.2.1]:5061;received=::ffff:192.0.2.2;rport=49152", &v),
	    1);
	assert_str(v->host, "[::ffff:192.0.2.1]");
	assert_str(v->received, "::ffff:192.0.2.2");
	assert_str(v->rport, "49152");

	/* Quoted and odd-but-legal parameter values. */
	assert_int_equal(
	    via_ok("SIP/2.0/UDP h.example.com;branch=z9hG4bK-1.2!3%4*5_6+7`8'9~0;x=\"a,b;c\"", &v),
	    1);
	assert_str(v->branch, "z9hG4bK-1.2!3%4*5_6+7`8'9~0");
	assert_true(sip_params_find(v->params, "x", &xv));
	assert_str(xv, "\"a,b;c\"");

	/* Unknown transports (RFC 4475 §3.1.1.10). */
	assert_int_equal(
	    via_ok("SIP/2.0/SCTP t.example.com;branch=z9hG4bK1, SIP/2.0/TLS-SCTP "
		   "t.example.com;branch=z9hG4bK2, SIP/2.0/UNKNOWN t.example.com;branch=z9hG4bK3",
		   &v),
	    3);
	assert_str(v->transport, "SCTP");
	assert_str(v->next->transport, "TLS-SCTP");
	assert_str(v->next->next->transport, "UNKNOWN");
}

/* Several via-parms in one header line, and LWS everywhere LWS may be. */
static void test_via_lists_and_lws(void **state)
{
	(void)state;
	struct sip_via *v;
	assert_int_equal(
	    via_ok("SIP/2.0/UDP first.example.com:4000;branch=z9hG4bKa ,SIP/2.0/UDP "
		   "second.example.com:5000;branch=z9hG4bKb,  SIP/2.0/TCP third.example.com",
		   &v),
	    3);
	assert_str(v->host, "first.example.com");
	assert_int_equal(v->port, 4000);
	assert_str(v->branch, "z9hG4bKa");
	assert_str(v->raw, "SIP/2.0/UDP first.example.com:4000;branch=z9hG4bKa");
	assert_str(v->next->host, "second.example.com");
	assert_str(v->next->branch, "z9hG4bKb");
	assert_str(v->next->next->host, "third.example.com");
	assert_str(v->next->next->transport, "TCP");
	assert_null(v->next->next->next);

	/* RFC 4475 §3.1.1.1 style: LWS around '/', ':' and ';' and folds. */
	assert_int_equal(
	    via_ok("SIP  /   2.0\r\n /  UDP\r\n\t192.0.2.2 :\r\n 5060 ; branch = z9hG4bK1 ; rport",
		   &v),
	    1);
	assert_str(v->protocol, "SIP");
	assert_str(v->version, "2.0");
	assert_str(v->transport, "UDP");
	assert_str(v->host, "192.0.2.2");
	assert_true(v->has_port);
	assert_int_equal(v->port, 5060);
	assert_str(v->branch, "z9hG4bK1");
	assert_true(v->has_rport);
	assert_int_equal(v->rport.len, 0);

	/* A comma list folded over lines. */
	assert_int_equal(via_ok("SIP/2.0/UDP a.example.com;branch=z9hG4bK1,\r\n SIP/2.0/UDP "
				"b.example.com;branch=z9hG4bK2",
				&v),
			 2);
	assert_str(v->next->host, "b.example.com");
}

struct bad_value {
	const char *value;
	size_t offset;
};

static void test_via_errors(void **state)
{
	(void)state;
	static const struct bad_value bad[] = {
	    {"", 0},			    /* empty */
	    {"SIP", 3},			    /* no '/' */
	    {"SIP/2.0 UDP host", 8},	    /* "UDP" where '/' belongs */
	    {"SIP//UDP host", 4},	    /* empty version */
	    {"SIP/2.0/ host", 13},	    /* LWS after '/' is skipped: "host" is the transport */
	    {"SIP/2.0/UDP", 11},	    /* no sent-by */
	    {"SIP/2.0/UDPhost", 15},	    /* transport runs into the host */
	    {"SIP/2.0/UDP host:", 17},	    /* empty port */
	    {"SIP/2.0/UDP host:65536", 22}, /* port out of range */
	    {"SIP/2.0/UDP host:5060x", 21}, /* junk after the port */
	    {"SIP/2.0/UDP [2001:db8::1", 24},	       /* unterminated IPv6 reference */
	    {"SIP/2.0/UDP 2001:db8::1", 17},	       /* IPv6 without brackets: "db8" is no port */
	    {"SIP/2.0/UDP host;", 17},		       /* empty parameter */
	    {"SIP/2.0/UDP host;;branch=z9hG4bK1", 17}, /* empty parameter name */
	    {"SIP/2.0/UDP host;branch=", 24},	       /* empty value */
	    {"SIP/2.0/UDP host;branch=\"x", 24},       /* unterminated quoted value */
	    {"SIP/2.0/UDP host;branch=z9hG4bK1,", 33}, /* trailing comma */
	    {"SIP/2.0/UDP host;branch=z9hG4bK1,,SIP/2.0/UDP h2", 33}, /* empty entry */
	    {"SIP/2.0/UDP host x", 17},				      /* junk after the entry */
	    {"SIP/2.0/UDP host;branch=a b", 26},		      /* LWS inside a value */
	};
	unsigned failures = 0;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sip_via *v;
		size_t off = 9999;
		const char *why = NULL;
		arena_init(&arena, arena_mem, sizeof(arena_mem));
		int rc = sip_via_list_parse(str_from_cstr(bad[i].value), &arena, &v, &off, &why);
		if (rc >= 0) {
			print_error("Via '%s': accepted (%d entries)\n", bad[i].value, rc);
			failures++;
		} else if (rc != -EBADMSG || off != bad[i].offset || !why) {
			print_error("Via '%s': expected -EBADMSG at %zu, got %d at %zu (%s)\n",
				    bad[i].value, bad[i].offset, rc, off, why ? why : "no reason");
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* name-addr with quoted and token display names, addr-spec. */
static void test_name_addr(void **state)
{
	(void)state;
	struct sip_addr *a;
	bool star;

	assert_int_equal(
	    addr_ok("\"Alice \\\"The Great\\\" Smith\" <sip:alice@atlanta.com>;tag=1928301774",
		    false, NULL, &a),
	    1);
	assert_str(a->display, "\"Alice \\\"The Great\\\" Smith\"");
	assert_true(a->bracketed);
	assert_str(a->uri.raw, "sip:alice@atlanta.com");
	assert_str(a->uri.user, "alice");
	assert_str(a->params, ";tag=1928301774");
	assert_true(a->has_tag);
	assert_str(a->tag, "1928301774");
	assert_str(a->raw,
		   "\"Alice \\\"The Great\\\" Smith\" <sip:alice@atlanta.com>;tag=1928301774");

	/* Quoted display names may hold ',', ';', '<', UTF-8 and a quoted '\'. */
	assert_int_equal(addr_ok("\"Doe, John <boss>; \\\\ Zo\xc3\xab\" <sip:jdoe@example.com>, "
				 "<sip:other@example.com>",
				 false, NULL, &a),
			 2);
	assert_str(a->display, "\"Doe, John <boss>; \\\\ Zo\xc3\xab\"");
	assert_str(a->uri.user, "jdoe");
	assert_str(a->next->uri.user, "other");
	assert_int_equal(a->next->display.len, 0);
	/* Empty quoted display name. */
	assert_int_equal(addr_ok("\"\" <sip:anonymous@anonymous.invalid>;tag=x", false, NULL, &a),
			 1);
	assert_str(a->display, "\"\"");

	/* Token display names, with and without LWS before '<' (RFC 4475 §3.1.1.6). */
	assert_int_equal(addr_ok("Bob Smith <sip:bob@biloxi.com>;tag=a6c85cf", false, NULL, &a), 1);
	assert_str(a->display, "Bob Smith");
	assert_str(a->tag, "a6c85cf");
	assert_int_equal(addr_ok("caller<sip:caller@example.com>;tag=323", false, NULL, &a), 1);
	assert_str(a->display, "caller");
	assert_str(a->uri.raw, "sip:caller@example.com");
	assert_int_equal(addr_ok("<sip:bob@biloxi.com>", false, NULL, &a), 1);
	assert_int_equal(a->display.len, 0);
	assert_true(a->bracketed);
	assert_false(a->has_tag);
	assert_int_equal(a->params.len, 0);
	/* A display name of token characters only. */
	assert_int_equal(addr_ok("A.B-C_D!E%F*G+H`I'J~K <sip:x@example.com>", false, NULL, &a), 1);
	assert_str(a->display, "A.B-C_D!E%F*G+H`I'J~K");

	/* addr-spec: the parameters after the URI belong to the header
	 * (RFC 3261 §20.10), including user=phone. */
	assert_int_equal(
	    addr_ok("sip:+12125551212@server.phone2net.com;user=phone;tag=887s", false, NULL, &a),
	    1);
	assert_false(a->bracketed);
	assert_str(a->uri.raw, "sip:+12125551212@server.phone2net.com");
	assert_int_equal(a->uri.params.len, 0);
	assert_str(a->params, ";user=phone;tag=887s");
	assert_str(a->tag, "887s");
	/* Inside <> they belong to the URI. */
	assert_int_equal(
	    addr_ok("<sip:+12125551212@server.phone2net.com;user=phone>;tag=887s", false, NULL, &a),
	    1);
	assert_str(a->uri.params, ";user=phone");
	assert_str(a->params, ";tag=887s");
	/* RFC 4475 §3.3.12 / §3.3.13. */
	assert_int_equal(addr_ok("sip:+19725552222@gw1.example.net;unknownparam", true, &star, &a),
			 1);
	assert_int_equal(a->uri.params.len, 0);
	assert_str(a->params, ";unknownparam");
	assert_int_equal(
	    addr_ok("<sip:+19725552222@gw1.example.net;unknownparam>", true, &star, &a), 1);
	assert_str(a->uri.params, ";unknownparam");
	assert_int_equal(a->params.len, 0);

	/* Non-SIP URIs in name-addr. */
	assert_int_equal(addr_ok("<tel:+1-201-555-0123>;tag=1", false, NULL, &a), 1);
	assert_int_equal(a->uri.scheme_id, SIP_SCHEME_TEL);
	assert_int_equal(addr_ok("<http://example.com/a?b=c>", false, NULL, &a), 1);
	assert_int_equal(a->uri.scheme_id, SIP_SCHEME_OTHER);
	/* A URI with headers inside <> (RFC 4475 §3.3.14). */
	assert_int_equal(
	    addr_ok("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>", true, &star, &a), 1);
	assert_str(a->uri.headers, "Route=%3Csip:sip.example.com%3E");
}

/* Contact: "*", q and expires parameters, lists. */
static void test_contact(void **state)
{
	(void)state;
	struct sip_addr *a;
	bool star = false;
	assert_int_equal(addr_ok("*", true, &star, &a), 0);
	assert_true(star);
	assert_null(a);
	star = false;
	assert_int_equal(addr_ok(" \t* ", true, &star, &a), 0);
	assert_true(star);
	/* Without allow_star, '*' is just a bad address. */
	size_t off;
	const char *why;
	arena_init(&arena, arena_mem, sizeof(arena_mem));
	assert_int_equal(sip_addr_list_parse(STR_LIT("*"), &arena, false, NULL, &a, &off, &why),
			 -EBADMSG);
	/* '*' among addresses is not the wildcard. */
	arena_init(&arena, arena_mem, sizeof(arena_mem));
	assert_int_equal(sip_addr_list_parse(STR_LIT("*, <sip:a@b.example.com>"), &arena, true,
					     &star, &a, &off, &why),
			 -EBADMSG);

	star = true;
	assert_int_equal(
	    addr_ok("<sip:alice@pc33.atlanta.com>;q=0.7; expires=3600, "
		    "\"Mobile\" <sip:alice@192.0.2.4:5080;transport=tcp>;q=0.1;expires=60,\r\n"
		    " sip:alice@fallback.example.com;q=0",
		    true, &star, &a),
	    3);
	assert_false(star);
	struct str v;
	assert_true(sip_params_find(a->params, "q", &v));
	assert_str(v, "0.7");
	assert_true(sip_params_find(a->params, "expires", &v));
	assert_str(v, "3600");
	assert_str(a->next->display, "\"Mobile\"");
	assert_int_equal(a->next->uri.port, 5080);
	assert_str(a->next->uri.params, ";transport=tcp");
	assert_true(sip_params_find(a->next->params, "q", &v));
	assert_str(v, "0.1");
	assert_true(sip_params_find(a->next->params, "expires", &v));
	assert_str(v, "60");
	assert_false(a->next->next->bracketed);
	assert_true(sip_params_find(a->next->next->params, "q", &v));
	assert_str(v, "0");
	assert_null(a->next->next->next);

	/* RFC 5626 instance id and reg-id as phones send them. */
	assert_int_equal(
	    addr_ok("<sip:alice@10.0.0.17:49152;transport=tls>;+sip.instance=\"<urn:uuid:9b3d1f54-"
		    "4b0e-4c2e-8f4a-2f6a1d0c7e55>\";reg-id=1;expires=3600",
		    true, &star, &a),
	    1);
	assert_true(sip_params_find(a->params, "+sip.instance", &v));
	assert_str(v, "\"<urn:uuid:9b3d1f54-4b0e-4c2e-8f4a-2f6a1d0c7e55>\"");
	assert_true(sip_params_find(a->params, "reg-id", &v));
	assert_str(v, "1");
}

static void test_addr_errors(void **state)
{
	(void)state;
	static const struct bad_value bad[] = {
	    {"", 0},				     /* empty */
	    {"   ", 0},				     /* only LWS */
	    {"\"Alice <sip:alice@atlanta.com>", 0},  /* unterminated quote (RFC 4475 §3.1.2.6) */
	    {"\"Alice\" sip:alice@atlanta.com", 8},  /* quoted display without <> */
	    {"<sip:alice@atlanta.com", 22},	     /* missing '>' */
	    {"<sip:alice@atlanta.com>>", 23},	     /* extra '>' */
	    {"sip:alice@atlanta.com?subject=x", 0},  /* headers outside <> (RFC 4475 §3.1.2.13) */
	    {"<sip:alice@atlanta.com>;", 24},	     /* empty parameter */
	    {"<sip:alice@atlanta.com>;tag=", 28},    /* empty tag */
	    {"<sip:alice@atlanta.com>,", 24},	     /* trailing comma */
	    {"<sip:alice@atlanta.com> junk", 24},    /* junk after the entry */
	    {"<sip:alice @atlanta.com>", 10},	     /* SP inside the URI (RFC 4475 §3.1.2.14) */
	    {"<sip:alice@atlanta.com;a=\"b\">", 25}, /* quote in a URI parameter */
	    {"Bob Smith sip:bob@biloxi.com", 3},     /* token display without <>: "Bob" is no URI */
	    {"J. \"Bob\" Smith <sip:bob@biloxi.com>",
	     2},       /* quote in a token display (RFC 4475 §3.1.2.15) */
	    {"<>", 1}, /* empty URI */
	    {"\"\\\nx\" <sip:a@b.example.com>", 1}, /* quoted-pair with LF */
	};
	unsigned failures = 0;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sip_addr *a;
		size_t off = 9999;
		const char *why = NULL;
		bool star;
		arena_init(&arena, arena_mem, sizeof(arena_mem));
		int rc = sip_addr_list_parse(str_from_cstr(bad[i].value), &arena, true, &star, &a,
					     &off, &why);
		if (rc >= 0) {
			print_error("address '%s': accepted (%d entries)\n", bad[i].value, rc);
			failures++;
		} else if (rc != -EBADMSG || off != bad[i].offset || !why) {
			print_error("address '%s': expected -EBADMSG at %zu, got %d at %zu (%s)\n",
				    bad[i].value, bad[i].offset, rc, off, why ? why : "no reason");
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* Via, From/To, Contact as the message parser assembles them. */
static void test_in_message(void **state)
{
	(void)state;
	static const char text[] =
	    "SIP/2.0 200 OK\r\n"
	    "v: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1;received=192.0.2.10, SIP/2.0/UDP "
	    "p2.example.com;branch=z9hG4bKp2\r\n"
	    "Via: SIP/2.0/UDP "
	    "[2001:db8::5]:5062;branch=z9hG4bKua;rport=5062;received=2001:db8::99\r\n"
	    "f: \"Caller, The\" <sip:caller@example.com>;tag=f1\r\n"
	    "t: callee <sip:callee@example.com>;tag=t1\r\n"
	    "i: c1@example.com\r\n"
	    "CSeq: 7 INVITE\r\n"
	    "m: <sip:callee@192.0.2.20>;expires=30, sip:callee@192.0.2.21;q=0.5\r\n"
	    "Contact: <sip:callee@192.0.2.22>\r\n"
	    "l: 0\r\n\r\n";
	struct sip_msg *m = malloc(sizeof(*m));
	struct sip_parse_error err;
	assert_non_null(m);
	assert_int_equal(sip_msg_parse(m, text, sizeof(text) - 1, SIP_PARSE_STREAM, &err),
			 (int)sizeof(text) - 1);
	assert_int_equal(m->via_count, 3);
	assert_str(m->via->host, "p1.example.com");
	assert_str(m->via->received, "192.0.2.10");
	assert_ptr_equal(m->via->hdr, m->via->next->hdr);
	assert_str(m->via->next->branch, "z9hG4bKp2");
	const struct sip_via *ua = m->via->next->next;
	assert_ptr_not_equal(ua->hdr, m->via->hdr);
	assert_str(ua->host, "[2001:db8::5]");
	assert_int_equal(ua->port, 5062);
	assert_str(ua->rport, "5062");
	assert_str(ua->received, "2001:db8::99");
	assert_str(m->from->display, "\"Caller, The\"");
	assert_str(m->from->tag, "f1");
	assert_str(m->to->display, "callee");
	assert_str(m->to->tag, "t1");
	assert_int_equal(m->contact_count, 3);
	assert_false(m->contact_star);
	assert_str(m->contact->next->uri.host, "192.0.2.21");
	assert_str(m->contact->next->next->uri.host, "192.0.2.22");
	assert_int_equal(sip_msg_check(m, &err), 0);

	static const char reg[] = "REGISTER sip:example.com SIP/2.0\r\n"
				  "Via: SIP/2.0/TCP 192.0.2.30:5060;branch=z9hG4bKr\r\n"
				  "From: <sip:alice@example.com>;tag=r1\r\n"
				  "To: <sip:alice@example.com>\r\n"
				  "Call-ID: r1@192.0.2.30\r\n"
				  "CSeq: 3 REGISTER\r\n"
				  "Contact: *\r\n"
				  "Expires: 0\r\n"
				  "Content-Length: 0\r\n\r\n";
	assert_int_equal(sip_msg_parse(m, reg, sizeof(reg) - 1, SIP_PARSE_STREAM, &err),
			 (int)sizeof(reg) - 1);
	assert_true(m->contact_star);
	assert_int_equal(m->contact_count, 0);
	assert_null(m->contact);
	assert_int_equal(m->expires, 0);

	/* From must hold exactly one address. */
	static const char two_from[] =
	    "OPTIONS sip:example.com SIP/2.0\r\n"
	    "Via: SIP/2.0/UDP 192.0.2.30;branch=z9hG4bKo\r\n"
	    "From: <sip:a@example.com>;tag=1, <sip:b@example.com>;tag=2\r\n"
	    "To: <sip:example.com>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\n"
	    "Content-Length: 0\r\n\r\n";
	assert_int_equal(sip_msg_parse(m, two_from, sizeof(two_from) - 1, SIP_PARSE_STREAM, &err),
			 -EBADMSG);
	/* Contact "*" is for Contact only. */
	static const char star_to[] = "OPTIONS sip:example.com SIP/2.0\r\n"
				      "Via: SIP/2.0/UDP 192.0.2.30;branch=z9hG4bKo\r\n"
				      "From: <sip:a@example.com>;tag=1\r\nTo: *\r\nCall-ID: o1\r\n"
				      "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(sip_msg_parse(m, star_to, sizeof(star_to) - 1, SIP_PARSE_STREAM, &err),
			 -EBADMSG);
	free(m);
}

/* The header examples of RFC 3261 §20 parse as the RFC means them. */
static void test_rfc3261_examples(void **state)
{
	(void)state;
	static const struct {
		const char *value;
		int entries;
		const char *display, *uri, *tag;
	} addrs[] = {
	    {"The Operator <sip:operator@cs.columbia.edu>;tag=287447", 1, "The Operator",
	     "sip:operator@cs.columbia.edu", "287447"},
	    {"sip:+12125551212@server.phone2net.com", 1, "",
	     "sip:+12125551212@server.phone2net.com", NULL},
	    {"\"A. G. Bell\" <sip:agb@bell-telephone.com> ;tag=a48s", 1, "\"A. G. Bell\"",
	     "sip:agb@bell-telephone.com", "a48s"},
	    {"Anonymous <sip:c8oqz84zk7z@privacy.org>;tag=hyh8", 1, "Anonymous",
	     "sip:c8oqz84zk7z@privacy.org", "hyh8"},
	    {"sip:+12125551212@phone2net.com;tag=887s", 1, "", "sip:+12125551212@phone2net.com",
	     "887s"},
	    {"\"Bob\" <sips:bob@biloxi.com> ;tag=a48s", 1, "\"Bob\"", "sips:bob@biloxi.com",
	     "a48s"},
	    {"<sip:server10.biloxi.com;lr>, <sip:bigbox3.site3.atlanta.com;lr>", 2, "",
	     "sip:server10.biloxi.com;lr", NULL},
	    {"\"Mr. Watson\" <sip:watson@worcester.bell-telephone.com> ;q=0.7; expires=3600, "
	     "\"Mr. Watson\" <mailto:watson@bell-telephone.com> ;q=0.1",
	     2, "\"Mr. Watson\"", "sip:watson@worcester.bell-telephone.com", NULL},
	};
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		struct sip_addr *a;
		bool star;
		assert_int_equal(addr_ok(addrs[i].value, true, &star, &a), addrs[i].entries);
		assert_str(a->display, addrs[i].display);
		assert_str(a->uri.raw, addrs[i].uri);
		assert_int_equal(a->has_tag, addrs[i].tag != NULL);
		if (addrs[i].tag)
			assert_str(a->tag, addrs[i].tag);
	}
	struct sip_via *v;
	assert_int_equal(
	    via_ok("SIP/2.0/UDP erlang.bell-telephone.com:5060;branch=z9hG4bK87asdks7", &v), 1);
	assert_str(v->host, "erlang.bell-telephone.com");
	assert_int_equal(v->port, 5060);
	assert_int_equal(
	    via_ok("SIP/2.0/UDP 192.0.2.1:5060 ;received=192.0.2.207;branch=z9hG4bK77asjd", &v), 1);
	assert_str(v->received, "192.0.2.207");
	assert_str(v->branch, "z9hG4bK77asjd");
	assert_int_equal(via_ok("SIP / 2.0 / UDP first.example.com: 4000;ttl=16;maddr=224.2.0.1 "
				";branch=z9hG4bKa7c6a8dlze.1",
				&v),
			 1);
	assert_str(v->host, "first.example.com");
	assert_int_equal(v->port, 4000);
	assert_str(v->ttl, "16");
	assert_str(v->maddr, "224.2.0.1");
	assert_str(v->branch, "z9hG4bKa7c6a8dlze.1");
}

/* sip_hostport_parse: host [ ":" port ] as in Via sent-by and URIs. */
static void test_hostport(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int rc;
		const char *host;
		enum sip_host_type type;
		bool has_port;
		uint16_t port;
	} cases[] = {
	    {"example.com", 0, "example.com", SIP_HOST_NAME, false, 0},
	    {"Example.COM.:5060", 0, "Example.COM.", SIP_HOST_NAME, true, 5060},
	    {"192.0.2.1:0", 0, "192.0.2.1", SIP_HOST_IPV4, true, 0},
	    {"[::1]:5061", 0, "[::1]", SIP_HOST_IPV6, true, 5061},
	    {"[2001:db8::10:5070]", 0, "[2001:db8::10:5070]", SIP_HOST_IPV6, false, 0},
	    {"a-b.c_d.example", 0, "a-b.c_d.example", SIP_HOST_NAME, false, 0},
	    {"", -EBADMSG, NULL, 0, false, 0},
	    {"1.2.3", -EBADMSG, NULL, 0, false, 0},
	    {"a..b", -EBADMSG, NULL, 0, false, 0},
	    {"host:", -EBADMSG, NULL, 0, false, 0},
	    {"host:65536", -EBADMSG, NULL, 0, false, 0},
	    {"[::1]5060", -EBADMSG, NULL, 0, false, 0},
	    {"[fe80::1%25eth0]", -EBADMSG, NULL, 0, false, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct str host = STR_NULL;
		enum sip_host_type type = SIP_HOST_NONE;
		uint16_t port = 1;
		bool has_port = true;
		size_t off = 0;
		int rc = sip_hostport_parse(str_from_cstr(cases[i].in), &host, &type, &port,
					    &has_port, &off);
		if (rc != cases[i].rc)
			fail_msg("hostport '%s': %d, expected %d", cases[i].in, rc, cases[i].rc);
		if (rc == 0) {
			assert_str(host, cases[i].host);
			assert_int_equal(type, cases[i].type);
			assert_int_equal(has_port, cases[i].has_port);
			assert_int_equal(port, cases[i].port);
		}
	}
}

/* The parameters a Via entry and an address keep are noted while they are
 * scanned; they must be what iterating `params` afterwards gives: in a Via
 * the last of a repeated name, in an address the first tag, values as
 * written (quotes kept), any case of the name. */
static void check_via_params(const struct sip_via *v)
{
	struct sip_param p;
	struct str cur = v->params, branch = STR_NULL, received = STR_NULL, rport = STR_NULL,
		   maddr = STR_NULL, ttl = STR_NULL;
	bool has_branch = false, has_received = false, has_rport = false, has_alias = false;
	while (sip_params_next(&cur, &p)) {
		if (str_case_eq_cstr(p.name, "branch"))
			branch = p.value, has_branch = true;
		else if (str_case_eq_cstr(p.name, "received"))
			received = p.value, has_received = true;
		else if (str_case_eq_cstr(p.name, "rport"))
			rport = p.value, has_rport = true;
		else if (str_case_eq_cstr(p.name, "maddr"))
			maddr = p.value;
		else if (str_case_eq_cstr(p.name, "ttl"))
			ttl = p.value;
		else if (str_case_eq_cstr(p.name, "alias"))
			has_alias = true;
	}
	assert_true(str_eq(v->branch, branch) && v->has_branch == has_branch);
	assert_true(str_eq(v->received, received) && v->has_received == has_received);
	assert_true(str_eq(v->rport, rport) && v->has_rport == has_rport);
	assert_true(str_eq(v->maddr, maddr) && str_eq(v->ttl, ttl) && v->has_alias == has_alias);
}

static void test_params_noted_while_scanned(void **state)
{
	(void)state;
	static const char *const vias[] = {
	    "SIP/2.0/UDP h;branch=z9hG4bK1;BRANCH=z9hG4bK2",
	    "SIP/2.0/UDP h ; Branch = z9hG4bKx ; rport ; received=192.0.2.1",
	    "SIP/2.0/TCP h:5060;rport=5061;received=[2001:db8::1];maddr=224.0.0.1;ttl=16;alias",
	    "SIP/2.0/UDP h;x=\"a;branch=no\";branch=z9hG4bKq;ttl=1;ttl=2",
	    "SIP/2.0/UDP h;branchx=1;xbranch=2;rportx;Alias;TTL=3;MADDR=h2",
	    "SIP/2.0/UDP 192.0.2.1;received=2001:db8::9;RPORT=1",
	};
	for (size_t i = 0; i < sizeof(vias) / sizeof(vias[0]); i++) {
		struct sip_via *v;
		via_ok(vias[i], &v);
		check_via_params(v);
	}
	static const struct {
		const char *value, *tag;
		bool has_tag;
	} addrs[] = {
	    {"<sip:a@h>;tag=1;tag=2", "1", true},
	    {"<sip:a@h>;TAG = \"q\" ;x", "\"q\"", true},
	    {"sip:a@h;tagx=1;xtag=2", NULL, false},
	    {"\"d\" <sip:a@h;tag=inuri>;Tag;tag=2", "", true},
	};
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		struct sip_addr *a;
		addr_ok(addrs[i].value, false, NULL, &a);
		struct str tag = STR_NULL;
		bool has = sip_params_find(a->params, "tag", &tag);
		assert_int_equal(a->has_tag, has);
		assert_int_equal(a->has_tag, addrs[i].has_tag);
		assert_true(str_eq(a->tag, tag));
		if (addrs[i].tag)
			assert_str(a->tag, addrs[i].tag);
	}
}

/* Header names: every known one in its canonical form, lower and upper
 * case, and its compact form; near misses are other headers. Methods:
 * every known one and near misses. */
static void test_name_tables(void **state)
{
	(void)state;
	for (int id = SIP_HDR_VIA; id < SIP_HDR__COUNT; id++) {
		const char *name = sip_hdr_canonical_name((enum sip_hdr_id)id);
		assert_non_null(name);
		char up[32], low[32], longer[34];
		size_t n = strlen(name);
		assert_true(n < sizeof(up));
		for (size_t i = 0; i <= n; i++) {
			up[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
			low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
		}
		assert_int_equal(sip_hdr_id_from_name(str_from_cstr(name)), id);
		assert_int_equal(sip_hdr_id_from_name(str_from_cstr(up)), id);
		assert_int_equal(sip_hdr_id_from_name(str_from_cstr(low)), id);
		snprintf(longer, sizeof(longer), "%sx", name);
		assert_int_equal(sip_hdr_id_from_name(str_from_cstr(longer)), SIP_HDR_OTHER);
		if (n > 2) /* "T" of "To" is a compact form */
			assert_int_equal(sip_hdr_id_from_name(str_make(name, n - 1)), SIP_HDR_OTHER);
		low[n - 1] = (char)(low[n - 1] == 'z' ? 'a' : low[n - 1] + 1);
		assert_int_equal(sip_hdr_id_from_name(str_from_cstr(low)), SIP_HDR_OTHER);
	}
	static const struct {
		const char *name;
		enum sip_hdr_id id;
	} compact[] = {{"v", SIP_HDR_VIA},	       {"F", SIP_HDR_FROM},
		       {"t", SIP_HDR_TO},	       {"i", SIP_HDR_CALL_ID},
		       {"l", SIP_HDR_CONTENT_LENGTH}, {"M", SIP_HDR_CONTACT},
		       {"c", SIP_HDR_CONTENT_TYPE},   {"e", SIP_HDR_CONTENT_ENCODING},
		       {"s", SIP_HDR_SUBJECT},	       {"k", SIP_HDR_SUPPORTED},
		       {"o", SIP_HDR_EVENT},	       {"r", SIP_HDR_REFER_TO},
		       {"b", SIP_HDR_REFERRED_BY},    {"u", SIP_HDR_ALLOW_EVENTS},
		       {"x", SIP_HDR_SESSION_EXPIRES}, {"a", SIP_HDR_OTHER},
		       {"Min-SE", SIP_HDR_OTHER},     {"Call-IE", SIP_HDR_OTHER},
		       {"Contacts", SIP_HDR_OTHER},   {"X-Very-Long-Header-Name-Here", SIP_HDR_OTHER}};
	for (size_t i = 0; i < sizeof(compact) / sizeof(compact[0]); i++)
		assert_int_equal(sip_hdr_id_from_name(str_from_cstr(compact[i].name)), compact[i].id);
	for (int m = SIP_METHOD_INVITE; m <= SIP_METHOD_UPDATE; m++) {
		const char *name = sip_method_name((enum sip_method)m);
		assert_non_null(name);
		assert_int_equal(sip_method_from_str(str_from_cstr(name)), m);
	}
	static const char *const not_methods[] = {"invite", "INVITEX", "INVIT", "ACKS", "AC", "",
						  "SUBSCRIBEX", "REGISTRE", "XNFO"};
	for (size_t i = 0; i < sizeof(not_methods) / sizeof(not_methods[0]); i++)
		assert_int_equal(sip_method_from_str(str_from_cstr(not_methods[i])),
				 SIP_METHOD_UNKNOWN);
}

/* The character classes added for one-lookup scans agree with their
 * definitions in terms of the older classes. */
static void test_char_classes(void **state)
{
	(void)state;
	for (int c = 0; c < 256; c++) {
		bool lws = c == ' ' || c == '\t' || c == '\r' || c == '\n';
		assert_int_equal(sip_cc((unsigned char)c, SIP_CC_LWS), lws);
		assert_int_equal(sip_cc((unsigned char)c, SIP_CC_ADDR_END), lws || c == ';' || c == ',');
		assert_int_equal(sip_cc((unsigned char)c, SIP_CC_URI_HOST_END),
				 c == ';' || c == '?' || c == ':');
		assert_int_equal(sip_cc((unsigned char)c, SIP_CC_GEN_VALUE),
				 sip_cc((unsigned char)c, SIP_CC_TOKEN) || c == ':' || c == '[' ||
				     c == ']');
		assert_int_equal(sip_cc((unsigned char)c, SIP_CC_TOKEN),
				 (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				     (c >= '0' && c <= '9') || (c && strchr("-.!%*_+`'~", c)));
	}
}

/* "SIP/2.0/" is taken at once; the slices must be the ones the
 * token-by-token path gives, and what follows it is checked alike. */
static void test_via_sent_protocol_shortcut(void **state)
{
	(void)state;
	static const struct {
		const char *value, *protocol, *version, *transport;
	} ok[] = {
	    {"SIP/2.0/UDP h", "SIP", "2.0", "UDP"},
	    {"sip/2.0/tls h", "sip", "2.0", "tls"},
	    {"SIP/2.0/ TCP h", "SIP", "2.0", "TCP"},
	    {"SIP / 2.0 / UDP h", "SIP", "2.0", "UDP"},
	    {"SIP/2.00/UDP h", "SIP", "2.00", "UDP"},
	    {"SIPS/2.0/UDP h", "SIPS", "2.0", "UDP"},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct sip_via *v;
		via_ok(ok[i].value, &v);
		assert_str(v->protocol, ok[i].protocol);
		assert_str(v->version, ok[i].version);
		assert_str(v->transport, ok[i].transport);
		assert_str(v->host, "h");
	}
	static const char *const bad[] = {"SIP/2.0/", "SIP/2.0/ ", "SIP/2.0/UDP", "SIP/2.0//UDP h",
					  "SIP/2.0/ host"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sip_via *v;
		size_t off = 0;
		const char *why = NULL;
		arena_init(&arena, arena_mem, sizeof(arena_mem));
		assert_int_equal(sip_via_list_parse(str_from_cstr(bad[i]), &arena, &v, &off, &why),
				 -EBADMSG);
	}
}

int main(void)
{
	/* Only the tests matching SIPSD_TEST_FILTER (a pattern with * and ?). */
	const char *only = getenv("SIPSD_TEST_FILTER");
	if (only && *only)
		cmocka_set_test_filter(only);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_via_params), cmocka_unit_test(test_via_lists_and_lws),
	    cmocka_unit_test(test_via_errors), cmocka_unit_test(test_name_addr),
	    cmocka_unit_test(test_contact),    cmocka_unit_test(test_addr_errors),
	    cmocka_unit_test(test_in_message), cmocka_unit_test(test_rfc3261_examples),
	    cmocka_unit_test(test_hostport),
	    cmocka_unit_test(test_params_noted_while_scanned), cmocka_unit_test(test_name_tables),
	    cmocka_unit_test(test_char_classes), cmocka_unit_test(test_via_sent_protocol_shortcut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
