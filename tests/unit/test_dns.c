/* test_dns.c: RFC 3263 resolver: ordering, NAPTR selection, answer parsing, cache expiry, whole
 * resolutions from a seeded cache; with SIPSD_DNS_LIVE set, the same against a real dnsmasq. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dns/cache.h"
#include "dns/dns.h"
#include "dns/order.h"
#include "dns/rr.h"
#include "loop/loop.h"
#include "sip/uri.h"

/* ---- Helpers. ---- */

/* A seeded deterministic RNG (xorshift64*) and a fixed-value one. */
static uint32_t xs_rng(void *arg)
{
	uint64_t *s = arg;
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (uint32_t)((*s * 0x2545F4914F6CDD1Dull) >> 32);
}

static uint32_t fixed_rng(void *arg)
{
	return *(uint32_t *)arg;
}

static uint64_t clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The injected cache clock. */
static uint64_t test_now_ms = 1000000;

static uint64_t test_clock(void *arg)
{
	(void)arg;
	return test_now_ms;
}

static struct dns_rrset *build(struct dns_rrset_builder *b, int status, uint32_t neg)
{
	struct dns_rrset *s = NULL;
	assert_int_equal(dns_rrset_build(b, status, neg, &s), 0);
	return s;
}

/* What a completed resolution delivered. */
struct result {
	int calls;
	int status;
	struct dns_targets t;
};

static void result_cb(int status, const struct dns_targets *t, void *arg)
{
	struct result *res = arg;
	res->calls++;
	res->status = status;
	res->t = *t;
}

/* Run the loop until the callback came (bounded by max_ms). */
static void run_until_done(struct loop *loop, struct result *res, unsigned max_ms)
{
	uint64_t end = clock_ms() + max_ms;
	while (res->calls == 0 && clock_ms() < end)
		assert_true(loop_run_once(loop, 20) >= 0);
	assert_int_equal(res->calls, 1);
}

static int resolve(struct dns_resolver *r, const char *text, struct result *res)
{
	struct sip_uri uri;
	size_t off;
	const char *why;
	memset(res, 0, sizeof(*res));
	assert_int_equal(sip_uri_parse(str_from_cstr(text), &uri, &off, &why), 0);
	return dns_resolve_uri(r, &uri, result_cb, res, NULL);
}

/* Resolve and wait; returns the status. */
static int resolve_wait(struct loop *loop, struct dns_resolver *r, const char *text,
			struct result *res, unsigned max_ms)
{
	int rc = resolve(r, text, res);
	if (rc)
		return rc;
	/* Never called back from inside dns_resolve_uri(). */
	assert_int_equal(res->calls, 0);
	run_until_done(loop, res, max_ms);
	return res->status;
}

/* "tls:127.0.0.1:5061" for target i. */
static const char *target_str(const struct dns_targets *t, size_t i, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN];
	const struct dns_target *x = &t->t[i];
	unsigned port;
	if (x->addr.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)&x->addr;
		inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
		port = ntohs(s->sin_port);
		snprintf(buf, size, "%s:%s:%u", dns_transport_name(x->transport), ip, port);
	} else {
		const struct sockaddr_in6 *s = (const void *)&x->addr;
		inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
		port = ntohs(s->sin6_port);
		snprintf(buf, size, "%s:[%s]:%u", dns_transport_name(x->transport), ip, port);
	}
	return buf;
}

/* Check the targets against a NULL-terminated list of "tp:ip:port"; every
 * target must carry `domain`. */
static void expect_targets(const struct result *res, const char *domain, ...)
{
	va_list ap;
	va_start(ap, domain);
	size_t i = 0;
	char buf[128];
	for (const char *want = va_arg(ap, const char *); want; want = va_arg(ap, const char *)) {
		if (i >= res->t.n)
			fail_msg("missing target %zu, want %s", i, want);
		const char *got = target_str(&res->t, i, buf, sizeof(buf));
		if (strcmp(got, want) != 0)
			fail_msg("target %zu: got %s, want %s", i, got, want);
		assert_string_equal(res->t.t[i].domain, domain);
		i++;
	}
	va_end(ap);
	if (i != res->t.n) {
		char all[2048];
		fail_msg("%zu targets, want %zu: %s", res->t.n, i,
			 dns_targets_format(&res->t, all, sizeof(all)));
	}
}

/* ---- SRV ordering (RFC 2782). ---- */

static void test_srv_priority(void **state)
{
	(void)state;
	uint64_t seed = 42;
	struct dns_srv_pick v[] = {{20, 5, 0}, {10, 0, 1}, {30, 1, 2}, {10, 7, 3}, {20, 0, 4}};
	dns_srv_order(v, 5, xs_rng, &seed);
	uint16_t want[] = {10, 10, 20, 20, 30};
	for (int i = 0; i < 5; i++)
		assert_int_equal(v[i].prio, want[i]);
}

static void test_srv_weight_fixed_rng(void **state)
{
	(void)state;
	/* Same priority: weights 0, 10, 30 (answer order 10, 0, 30). */
	uint32_t val = 0;
	struct dns_srv_pick v[3];
	const struct dns_srv_pick init[3] = {{1, 10, 0}, {1, 0, 1}, {1, 30, 2}};

	/* R = 0: the weight-0 record (moved to the front) is chosen first,
	 * then again R = 0 picks the first of the rest (weight 10). */
	memcpy(v, init, sizeof(v));
	dns_srv_order(v, 3, fixed_rng, &val);
	assert_int_equal(v[0].idx, 1);
	assert_int_equal(v[1].idx, 0);
	assert_int_equal(v[2].idx, 2);

	/* R = max: the record whose running sum reaches the total: weight 30;
	 * then among {0, 10}: weight 10; the weight-0 one is last. */
	val = UINT32_MAX;
	memcpy(v, init, sizeof(v));
	dns_srv_order(v, 3, fixed_rng, &val);
	assert_int_equal(v[0].idx, 2);
	assert_int_equal(v[1].idx, 0);
	assert_int_equal(v[2].idx, 1);

	/* R in the middle: sum 40, R = 40 * 0.5 = 20 -> running sums 0, 10,
	 * 40: weight 30 is the first with sum >= 20. */
	val = 0x80000000u;
	memcpy(v, init, sizeof(v));
	dns_srv_order(v, 3, fixed_rng, &val);
	assert_int_equal(v[0].idx, 2);
}

static void test_srv_all_zero_keeps_order(void **state)
{
	(void)state;
	uint64_t seed = 7;
	struct dns_srv_pick v[] = {{5, 0, 0}, {5, 0, 1}, {5, 0, 2}, {5, 0, 3}};
	dns_srv_order(v, 4, xs_rng, &seed);
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(v[i].idx, i);
}

static void test_srv_weight_distribution(void **state)
{
	(void)state;
	/* Weights 10 and 30: RFC 2782 picks weight 30 first for R in
	 * [11, 40] of [0, 40]: 30/41. Weight 0 vs 10: the 0 goes first only
	 * for R = 0: 1/11. Seeded, so exact, but the bounds are generous. */
	uint64_t seed = 0x1234567;
	enum { N = 20000 };
	unsigned first30 = 0, first0 = 0;
	for (int i = 0; i < N; i++) {
		struct dns_srv_pick v[] = {{1, 10, 0}, {1, 30, 1}};
		dns_srv_order(v, 2, xs_rng, &seed);
		first30 += v[0].idx == 1;
		struct dns_srv_pick z[] = {{1, 10, 0}, {1, 0, 1}};
		dns_srv_order(z, 2, xs_rng, &seed);
		first0 += z[0].idx == 1;
	}
	double p30 = (double)first30 / N, p0 = (double)first0 / N;
	assert_true(p30 > 0.70 && p30 < 0.76); /* 30/41 = 0.732 */
	assert_true(p0 > 0.07 && p0 < 0.11);   /* 1/11 = 0.091 */
}

/* ---- NAPTR selection (RFC 3263 §4.1). ---- */

static struct dns_rrset *naptr_fixture(void)
{
	static struct dns_rrset_builder b;
	dns_rrset_builder_init(&b, DNS_TYPE_NAPTR);
	/* Deliberately out of order; plus records a SIP client must skip. */
	assert_int_equal(
	    dns_rrset_add_naptr(&b, 60, 20, 10, "s", "SIP+D2U", "", "_sip._udp.x.test"), 0);
	assert_int_equal(
	    dns_rrset_add_naptr(&b, 60, 10, 60, "S", "sip+d2t", "", "_sip._tcp.x.test"), 0);
	assert_int_equal(
	    dns_rrset_add_naptr(&b, 60, 5, 10, "s", "SIP+D2S", "", "_sip._sctp.x.test"), 0);
	assert_int_equal(dns_rrset_add_naptr(&b, 60, 5, 5, "u", "SIP+D2T", "!.*!sip:a@b!", ""), 0);
	assert_int_equal(dns_rrset_add_naptr(&b, 60, 5, 6, "s", "E2U+sip", "", "_sip._tcp.x.test"),
			 0);
	assert_int_equal(
	    dns_rrset_add_naptr(&b, 60, 10, 50, "s", "SIPS+D2T", "", "_sips._tcp.x.test"), 0);
	/* A duplicate (same replacement and transport) of a worse rank. */
	assert_int_equal(dns_rrset_add_naptr(&b, 60, 30, 1, "s", "SIP+D2T", "", "_sip._tcp.x.test"),
			 0);
	return build(&b, 0, 0);
}

static void test_naptr_select_sip(void **state)
{
	(void)state;
	struct dns_rrset *s = naptr_fixture();
	struct dns_naptr_pick p[8];
	size_t n = dns_naptr_select(s, false, false, p, 8);
	assert_int_equal(n, 3);
	assert_int_equal(p[0].tp, DNS_TRANSPORT_TLS); /* 10/50 */
	assert_int_equal(p[1].tp, DNS_TRANSPORT_TCP); /* 10/60 */
	assert_int_equal(p[2].tp, DNS_TRANSPORT_UDP); /* 20/10 */
	assert_string_equal(dns_rrset_str(s, s->rr[p[1].idx].u.naptr.replacement),
			    "_sip._tcp.x.test");
	assert_int_equal(s->rr[p[1].idx].u.naptr.order, 10);
	/* max cuts the list. */
	assert_int_equal(dns_naptr_select(s, false, false, p, 2), 2);
	free(s);
}

static void test_naptr_select_sips_only(void **state)
{
	(void)state;
	struct dns_rrset *s = naptr_fixture();
	struct dns_naptr_pick p[8];
	/* Spec rule 7: a sips: URI uses SIPS+D2T only. */
	size_t n = dns_naptr_select(s, true, false, p, 8);
	assert_int_equal(n, 1);
	assert_int_equal(p[0].tp, DNS_TRANSPORT_TLS);
	assert_int_equal(dns_naptr_transport("SIP+D2T", true), DNS_TRANSPORT_NONE);
	assert_int_equal(dns_naptr_transport("SIP+D2U", true), DNS_TRANSPORT_NONE);
	assert_int_equal(dns_naptr_transport("sips+d2t", true), DNS_TRANSPORT_TLS);
	assert_int_equal(dns_naptr_transport("SIPS+D2U", false), DNS_TRANSPORT_NONE);
	free(s);
}

static void test_naptr_prefer_tls(void **state)
{
	(void)state;
	static struct dns_rrset_builder b;
	dns_rrset_builder_init(&b, DNS_TYPE_NAPTR);
	dns_rrset_add_naptr(&b, 60, 10, 10, "s", "SIP+D2U", "", "_sip._udp.y.test");
	dns_rrset_add_naptr(&b, 60, 10, 20, "s", "SIP+D2T", "", "_sip._tcp.y.test");
	dns_rrset_add_naptr(&b, 60, 20, 10, "s", "SIPS+D2T", "", "_sips._tcp.y.test");
	struct dns_rrset *s = build(&b, 0, 0);
	struct dns_naptr_pick p[8];
	assert_int_equal(dns_naptr_select(s, false, false, p, 8), 3);
	assert_int_equal(p[0].tp, DNS_TRANSPORT_UDP);
	assert_int_equal(p[2].tp, DNS_TRANSPORT_TLS);
	assert_int_equal(dns_naptr_select(s, false, true, p, 8), 3);
	assert_int_equal(p[0].tp, DNS_TRANSPORT_TLS);
	assert_int_equal(p[1].tp, DNS_TRANSPORT_UDP);
	assert_int_equal(p[2].tp, DNS_TRANSPORT_TCP);
	free(s);
}

/* ---- Answer parsing (RFC 1035 §4.1). ---- */

struct msgb {
	unsigned char b[2048];
	size_t n;
};

static void mb_u8(struct msgb *m, unsigned v)
{
	m->b[m->n++] = (unsigned char)v;
}

static void mb_u16(struct msgb *m, unsigned v)
{
	mb_u8(m, (v >> 8) & 0xFF);
	mb_u8(m, v & 0xFF);
}

static void mb_u32(struct msgb *m, uint32_t v)
{
	mb_u16(m, v >> 16);
	mb_u16(m, v & 0xFFFF);
}

static void mb_name(struct msgb *m, const char *name)
{
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t len = dot ? (size_t)(dot - name) : strlen(name);
		mb_u8(m, (unsigned)len);
		memcpy(m->b + m->n, name, len);
		m->n += len;
		name += len + (dot ? 1 : 0);
	}
	mb_u8(m, 0);
}

static void mb_cstring(struct msgb *m, const char *s)
{
	mb_u8(m, (unsigned)strlen(s));
	memcpy(m->b + m->n, s, strlen(s));
	m->n += strlen(s);
}

/* Header and question. */
static void mb_start(struct msgb *m, unsigned rcode, unsigned an, unsigned ns, const char *qname,
		     unsigned qtype)
{
	m->n = 0;
	mb_u16(m, 0x1234);
	mb_u16(m, 0x8180 | rcode);
	mb_u16(m, 1);
	mb_u16(m, an);
	mb_u16(m, ns);
	mb_u16(m, 0);
	mb_name(m, qname);
	mb_u16(m, qtype);
	mb_u16(m, 1);
}

/* An RR header; returns where RDLENGTH goes (filled by mb_rr_end). */
static size_t mb_rr(struct msgb *m, const char *owner, unsigned type, uint32_t ttl)
{
	if (owner)
		mb_name(m, owner);
	else
		mb_u16(m, 0xC00C); /* pointer to the question name */
	mb_u16(m, type);
	mb_u16(m, 1);
	mb_u32(m, ttl);
	size_t at = m->n;
	mb_u16(m, 0);
	return at;
}

static void mb_rr_end(struct msgb *m, size_t at)
{
	size_t len = m->n - at - 2;
	m->b[at] = (unsigned char)(len >> 8);
	m->b[at + 1] = (unsigned char)len;
}

static void test_parse_naptr_srv(void **state)
{
	(void)state;
	struct msgb m;
	struct dns_rrset *s = NULL;
	mb_start(&m, 0, 2, 0, "x.test", DNS_TYPE_NAPTR);
	size_t at = mb_rr(&m, NULL, DNS_TYPE_NAPTR, 300);
	mb_u16(&m, 10);
	mb_u16(&m, 50);
	mb_cstring(&m, "s");
	mb_cstring(&m, "SIPS+D2T");
	mb_cstring(&m, "");
	mb_name(&m, "_sips._tcp.x.test");
	mb_rr_end(&m, at);
	at = mb_rr(&m, NULL, DNS_TYPE_NAPTR, 120);
	mb_u16(&m, 20);
	mb_u16(&m, 10);
	mb_cstring(&m, "s");
	mb_cstring(&m, "SIP+D2U");
	mb_cstring(&m, "");
	mb_name(&m, "_sip._udp.x.test");
	mb_rr_end(&m, at);
	assert_int_equal(dns_answer_parse(m.b, m.n, "X.Test.", DNS_TYPE_NAPTR, 30, &s), 0);
	assert_int_equal(s->status, 0);
	assert_int_equal(s->n, 2);
	assert_int_equal(s->ttl, 120); /* the smallest */
	assert_int_equal(s->rr[0].u.naptr.order, 10);
	assert_string_equal(dns_rrset_str(s, s->rr[0].u.naptr.service), "SIPS+D2T");
	assert_string_equal(dns_rrset_str(s, s->rr[1].u.naptr.replacement), "_sip._udp.x.test");
	free(s);

	/* SRV with a compressed target (pointer into the question). */
	mb_start(&m, 0, 1, 0, "_sip._udp.x.test", DNS_TYPE_SRV);
	at = mb_rr(&m, NULL, DNS_TYPE_SRV, 60);
	mb_u16(&m, 10);
	mb_u16(&m, 20);
	mb_u16(&m, 5070);
	mb_u8(&m, 3);
	memcpy(m.b + m.n, "sip", 3);
	m.n += 3;
	mb_u16(&m, 0xC000 | 22); /* "x.test" inside the question name */
	mb_rr_end(&m, at);
	assert_int_equal(dns_answer_parse(m.b, m.n, "_sip._udp.x.test", DNS_TYPE_SRV, 30, &s), 0);
	assert_int_equal(s->n, 1);
	assert_int_equal(s->rr[0].u.srv.prio, 10);
	assert_int_equal(s->rr[0].u.srv.weight, 20);
	assert_int_equal(s->rr[0].u.srv.port, 5070);
	assert_string_equal(dns_rrset_str(s, s->rr[0].u.srv.target), "sip.x.test");
	free(s);
}

static void test_parse_cname_chain(void **state)
{
	(void)state;
	struct msgb m;
	struct dns_rrset *s = NULL;
	mb_start(&m, 0, 3, 0, "alias.test", DNS_TYPE_A);
	/* Out of order: the A first, then the chain. */
	size_t at = mb_rr(&m, "real.test", DNS_TYPE_A, 500);
	mb_u8(&m, 192), mb_u8(&m, 0), mb_u8(&m, 2), mb_u8(&m, 7);
	mb_rr_end(&m, at);
	at = mb_rr(&m, NULL, DNS_TYPE_CNAME, 40);
	mb_name(&m, "mid.test");
	mb_rr_end(&m, at);
	at = mb_rr(&m, "mid.test", DNS_TYPE_CNAME, 400);
	mb_name(&m, "real.test");
	mb_rr_end(&m, at);
	assert_int_equal(dns_answer_parse(m.b, m.n, "alias.test", DNS_TYPE_A, 30, &s), 0);
	assert_int_equal(s->n, 1);
	assert_int_equal(s->ttl, 40); /* the chain's TTL counts */
	assert_int_equal(s->rr[0].u.addr.family, AF_INET);
	assert_memory_equal(s->rr[0].u.addr.bytes, "\xC0\x00\x02\x07", 4);
	free(s);

	/* An A record of an unrelated owner is not taken. */
	mb_start(&m, 0, 1, 0, "a.test", DNS_TYPE_A);
	at = mb_rr(&m, "evil.test", DNS_TYPE_A, 500);
	mb_u32(&m, 0x01020304);
	mb_rr_end(&m, at);
	assert_int_equal(dns_answer_parse(m.b, m.n, "a.test", DNS_TYPE_A, 30, &s), 0);
	assert_int_equal(s->n, 0);
	assert_int_equal(s->status, -ENODATA);
	free(s);
}

static void test_parse_negative(void **state)
{
	(void)state;
	struct msgb m;
	struct dns_rrset *s = NULL;
	/* NXDOMAIN with an SOA: TTL = min(SOA TTL 900, MINIMUM 300). */
	mb_start(&m, 3, 0, 1, "nope.test", DNS_TYPE_NAPTR);
	size_t at = mb_rr(&m, "test", DNS_TYPE_SOA, 900);
	mb_name(&m, "ns.test");
	mb_name(&m, "admin.test");
	mb_u32(&m, 1), mb_u32(&m, 2), mb_u32(&m, 3), mb_u32(&m, 4), mb_u32(&m, 300);
	mb_rr_end(&m, at);
	assert_int_equal(dns_answer_parse(m.b, m.n, "nope.test", DNS_TYPE_NAPTR, 30, &s), 0);
	assert_int_equal(s->status, -ENOENT);
	assert_int_equal(s->n, 0);
	assert_int_equal(s->ttl, 300);
	free(s);

	/* NODATA without an SOA: the configured negative TTL. */
	mb_start(&m, 0, 0, 0, "host.test", DNS_TYPE_AAAA);
	assert_int_equal(dns_answer_parse(m.b, m.n, "host.test", DNS_TYPE_AAAA, 30, &s), 0);
	assert_int_equal(s->status, -ENODATA);
	assert_int_equal(s->ttl, 30);
	free(s);
}

static void test_parse_malformed(void **state)
{
	(void)state;
	struct msgb m;
	struct dns_rrset *s = NULL;
	mb_start(&m, 0, 1, 0, "a.test", DNS_TYPE_A);
	size_t at = mb_rr(&m, NULL, DNS_TYPE_A, 60);
	mb_u32(&m, 0x7F000001);
	mb_rr_end(&m, at);
	/* Every truncation fails cleanly. */
	for (size_t cut = 0; cut < m.n; cut++)
		assert_int_equal(dns_answer_parse(m.b, cut, "a.test", DNS_TYPE_A, 30, &s),
				 -EBADMSG);
	/* Not the question we asked. */
	assert_int_equal(dns_answer_parse(m.b, m.n, "b.test", DNS_TYPE_A, 30, &s), -EBADMSG);
	assert_int_equal(dns_answer_parse(m.b, m.n, "a.test", DNS_TYPE_AAAA, 30, &s), -EBADMSG);
	/* A wrong A length. */
	m.b[at + 1] = 3;
	assert_int_equal(dns_answer_parse(m.b, m.n - 1, "a.test", DNS_TYPE_A, 30, &s), -EBADMSG);
	/* SERVFAIL is not an answer. */
	mb_start(&m, 2, 0, 0, "a.test", DNS_TYPE_A);
	assert_int_equal(dns_answer_parse(m.b, m.n, "a.test", DNS_TYPE_A, 30, &s), -EIO);
	/* A compression loop. */
	mb_start(&m, 0, 1, 0, "a.test", DNS_TYPE_A);
	mb_u16(&m, 0xC000 | (unsigned)m.n);
	mb_u16(&m, 1), mb_u16(&m, 1), mb_u32(&m, 1), mb_u16(&m, 4), mb_u32(&m, 1);
	assert_int_equal(dns_answer_parse(m.b, m.n, "a.test", DNS_TYPE_A, 30, &s), -EBADMSG);
}

/* ---- Cache. ---- */

static struct dns_rrset *a_set(uint32_t ttl, const char *ip)
{
	static struct dns_rrset_builder b;
	struct in_addr a;
	dns_rrset_builder_init(&b, DNS_TYPE_A);
	assert_int_equal(inet_pton(AF_INET, ip, &a), 1);
	assert_int_equal(dns_rrset_add_addr(&b, ttl, AF_INET, &a), 0);
	return build(&b, 0, 0);
}

static void test_cache_expiry(void **state)
{
	(void)state;
	struct dns_cache *c;
	struct dns_rrset *s = a_set(10, "192.0.2.1"), *got = NULL;
	assert_int_equal(dns_cache_create(8, 1, 3600, &c), 0);
	uint64_t t0 = 5000;
	assert_int_equal(dns_cache_put(c, "Host.Test.", DNS_TYPE_A, s, t0), 0);
	/* Case-insensitive, trailing dot ignored, type matters. */
	assert_int_equal(dns_cache_get(c, "host.test", DNS_TYPE_A, t0 + 9999, &got), 0);
	assert_int_equal(got->n, 1);
	free(got);
	assert_int_equal(dns_cache_get(c, "host.test", DNS_TYPE_AAAA, t0, &got), -ENOENT);
	/* Expired exactly at the TTL, and then dropped. */
	assert_int_equal(dns_cache_get(c, "host.test", DNS_TYPE_A, t0 + 10000, &got), -ENOENT);
	assert_int_equal(dns_cache_count(c), 0);

	/* Clamps: TTL 0 lives 1 s; a week lives one hour. */
	s->ttl = 0;
	assert_int_equal(dns_cache_put(c, "zero.test", DNS_TYPE_A, s, t0), 0);
	assert_int_equal(dns_cache_get(c, "zero.test", DNS_TYPE_A, t0 + 999, &got), 0);
	free(got);
	assert_int_equal(dns_cache_get(c, "zero.test", DNS_TYPE_A, t0 + 1000, &got), -ENOENT);
	s->ttl = 7 * 86400;
	assert_int_equal(dns_cache_put(c, "week.test", DNS_TYPE_A, s, t0), 0);
	assert_int_equal(dns_cache_get(c, "week.test", DNS_TYPE_A, t0 + 3599999, &got), 0);
	free(got);
	assert_int_equal(dns_cache_get(c, "week.test", DNS_TYPE_A, t0 + 3600000, &got), -ENOENT);

	/* Replacing renews. */
	s->ttl = 5;
	assert_int_equal(dns_cache_put(c, "r.test", DNS_TYPE_A, s, t0), 0);
	assert_int_equal(dns_cache_put(c, "r.test", DNS_TYPE_A, s, t0 + 4000), 0);
	assert_int_equal(dns_cache_count(c), 1);
	assert_int_equal(dns_cache_get(c, "r.test", DNS_TYPE_A, t0 + 8000, &got), 0);
	free(got);

	/* Negative answers are cached too. */
	struct dns_rrset_builder *b = malloc(sizeof(*b));
	dns_rrset_builder_init(b, DNS_TYPE_NAPTR);
	struct dns_rrset *neg = build(b, -ENOENT, 20);
	free(b);
	assert_int_equal(dns_cache_put(c, "nx.test", DNS_TYPE_NAPTR, neg, t0), 0);
	assert_int_equal(dns_cache_get(c, "nx.test", DNS_TYPE_NAPTR, t0 + 19000, &got), 0);
	assert_int_equal(got->status, -ENOENT);
	free(got);
	assert_int_equal(dns_cache_put(c, "", DNS_TYPE_A, s, t0), -EINVAL);
	free(neg);
	free(s);
	dns_cache_destroy(c);
}

static void test_cache_lru(void **state)
{
	(void)state;
	struct dns_cache *c;
	struct dns_rrset *s = a_set(60, "192.0.2.1"), *got = NULL;
	assert_int_equal(dns_cache_create(3, 1, 3600, &c), 0);
	assert_int_equal(dns_cache_put(c, "a.test", DNS_TYPE_A, s, 0), 0);
	assert_int_equal(dns_cache_put(c, "b.test", DNS_TYPE_A, s, 0), 0);
	assert_int_equal(dns_cache_put(c, "c.test", DNS_TYPE_A, s, 0), 0);
	/* Touch a: b is now the least recently used. */
	assert_int_equal(dns_cache_get(c, "a.test", DNS_TYPE_A, 1, &got), 0);
	free(got);
	assert_int_equal(dns_cache_put(c, "d.test", DNS_TYPE_A, s, 2), 0);
	assert_int_equal(dns_cache_count(c), 3);
	assert_int_equal(dns_cache_get(c, "b.test", DNS_TYPE_A, 3, &got), -ENOENT);
	for (const char *const *n = (const char *const[]){"a.test", "c.test", "d.test", NULL}; *n;
	     n++) {
		assert_int_equal(dns_cache_get(c, *n, DNS_TYPE_A, 3, &got), 0);
		free(got);
	}
	/* Many more than the bound. */
	for (int i = 0; i < 1000; i++) {
		char name[32];
		snprintf(name, sizeof(name), "n%d.test", i);
		assert_int_equal(dns_cache_put(c, name, DNS_TYPE_A, s, 4), 0);
		assert_true(dns_cache_count(c) <= 3);
	}
	assert_int_equal(dns_cache_get(c, "n999.test", DNS_TYPE_A, 5, &got), 0);
	free(got);
	free(s);
	dns_cache_destroy(c);
	struct dns_cache *bad = NULL;
	assert_int_equal(dns_cache_create(0, 1, 2, &bad), -EINVAL);
	assert_int_equal(dns_cache_create(4, 5, 2, &bad), -EINVAL);
	assert_null(bad);
	dns_cache_destroy(NULL);
}

/* ---- Whole resolutions from a seeded cache (no network). ---- */

struct fixture {
	struct loop *loop;
	struct dns_resolver *r;
	int sock; /* a UDP socket that never answers: the "server" */
	char server[64];
};

/* A bound UDP socket on 127.0.0.1 that nobody reads: queries to it time
 * out, so an unexpected lookup shows up as a failure. */
static int blackhole(char *addr, size_t size)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	socklen_t len = sizeof(sin);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	snprintf(addr, size, "127.0.0.1:%u", ntohs(sin.sin_port));
	return fd;
}

static int fixture_make(void **state, bool prefer_tls)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || loop_create(&f->loop) != 0)
		return -1;
	f->sock = blackhole(f->server, sizeof(f->server));
	struct dns_config cfg = {
	    .servers = f->server, .timeout_ms = 100, .tries = 1, .sip_prefer_tls = prefer_tls};
	if (dns_resolver_create(f->loop, &cfg, &f->r) != 0)
		return -1;
	dns_resolver_set_clock(f->r, test_clock, NULL);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return fixture_make(state, false);
}

static int setup_tls(void **state)
{
	return fixture_make(state, true);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	dns_resolver_destroy(f->r);
	loop_destroy(f->loop);
	close(f->sock);
	free(f);
	return 0;
}

static struct dns_rrset_builder *seed_b;

static void seed_put(struct fixture *f, const char *name, struct dns_rrset *s)
{
	assert_int_equal(dns_cache_put(dns_resolver_cache(f->r), name, s->type, s, test_now_ms), 0);
	free(s);
}

static void seed_naptr(struct fixture *f, const char *name, uint16_t order, uint16_t pref,
		       const char *service, const char *repl)
{
	/* Accumulate: re-read what is there and add one. */
	struct dns_rrset *old = NULL;
	dns_rrset_builder_init(seed_b, DNS_TYPE_NAPTR);
	if (dns_cache_get(dns_resolver_cache(f->r), name, DNS_TYPE_NAPTR, test_now_ms, &old) == 0) {
		for (uint32_t i = 0; i < old->n; i++) {
			const struct dns_rr *rr = &old->rr[i];
			dns_rrset_add_naptr(seed_b, rr->ttl, rr->u.naptr.order, rr->u.naptr.pref,
					    dns_rrset_str(old, rr->u.naptr.flags),
					    dns_rrset_str(old, rr->u.naptr.service),
					    dns_rrset_str(old, rr->u.naptr.regexp),
					    dns_rrset_str(old, rr->u.naptr.replacement));
		}
		free(old);
	}
	dns_rrset_add_naptr(seed_b, 300, order, pref, "s", service, "", repl);
	seed_put(f, name, build(seed_b, 0, 0));
}

static void seed_srv(struct fixture *f, const char *name, uint16_t prio, uint16_t weight,
		     uint16_t port, const char *target)
{
	struct dns_rrset *old = NULL;
	dns_rrset_builder_init(seed_b, DNS_TYPE_SRV);
	if (dns_cache_get(dns_resolver_cache(f->r), name, DNS_TYPE_SRV, test_now_ms, &old) == 0) {
		for (uint32_t i = 0; i < old->n; i++)
			dns_rrset_add_srv(seed_b, old->rr[i].ttl, old->rr[i].u.srv.prio,
					  old->rr[i].u.srv.weight, old->rr[i].u.srv.port,
					  dns_rrset_str(old, old->rr[i].u.srv.target));
		free(old);
	}
	dns_rrset_add_srv(seed_b, 300, prio, weight, port, target);
	seed_put(f, name, build(seed_b, 0, 0));
}

/* A host with an IPv4 and optionally an IPv6 address (NODATA otherwise). */
static void seed_host(struct fixture *f, const char *name, const char *v4, const char *v6)
{
	unsigned char a[16];
	dns_rrset_builder_init(seed_b, DNS_TYPE_A);
	if (v4) {
		assert_int_equal(inet_pton(AF_INET, v4, a), 1);
		dns_rrset_add_addr(seed_b, 300, AF_INET, a);
	}
	seed_put(f, name, build(seed_b, v4 ? 0 : -ENODATA, 300));
	dns_rrset_builder_init(seed_b, DNS_TYPE_AAAA);
	if (v6) {
		assert_int_equal(inet_pton(AF_INET6, v6, a), 1);
		dns_rrset_add_addr(seed_b, 300, AF_INET6, a);
	}
	seed_put(f, name, build(seed_b, v6 ? 0 : -ENODATA, 300));
}

static void seed_none(struct fixture *f, const char *name, uint16_t type, int status)
{
	dns_rrset_builder_init(seed_b, type);
	seed_put(f, name, build(seed_b, status, 300));
}

/* The SRV names a sip: domain without NAPTR is asked for. */
static void seed_no_srv(struct fixture *f, const char *domain, bool tls, bool tcp, bool udp)
{
	char n[300];
	if (tls) {
		snprintf(n, sizeof(n), "_sips._tcp.%s", domain);
		seed_none(f, n, DNS_TYPE_SRV, -ENOENT);
	}
	if (tcp) {
		snprintf(n, sizeof(n), "_sip._tcp.%s", domain);
		seed_none(f, n, DNS_TYPE_SRV, -ENOENT);
	}
	if (udp) {
		snprintf(n, sizeof(n), "_sip._udp.%s", domain);
		seed_none(f, n, DNS_TYPE_SRV, -ENOENT);
	}
}

static void expect_no_network(struct fixture *f)
{
	struct dns_stats st;
	dns_resolver_stats(f->r, &st);
	assert_int_equal(st.cache_misses, 0);
}

static void test_numeric_hosts(void **state)
{
	struct fixture *f = *state;
	struct result res;
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:192.0.2.1", &res, 1000), 0);
	expect_targets(&res, "192.0.2.1", "udp:192.0.2.1:5060", NULL);
	assert_int_equal(resolve_wait(f->loop, f->r, "sips:[2001:db8::1]:5071", &res, 1000), 0);
	expect_targets(&res, "2001:db8::1", "tls:[2001:db8::1]:5071", NULL);
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:192.0.2.1;transport=TCP", &res, 1000), 0);
	expect_targets(&res, "192.0.2.1", "tcp:192.0.2.1:5060", NULL);
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:192.0.2.1;transport=tls", &res, 1000), 0);
	expect_targets(&res, "192.0.2.1", "tls:192.0.2.1:5061", NULL);
	assert_int_equal(resolve_wait(f->loop, f->r, "sips:192.0.2.1;transport=tcp", &res, 1000),
			 0);
	expect_targets(&res, "192.0.2.1", "tls:192.0.2.1:5061", NULL);
	/* maddr is a routing hint we ignore: the host is what is resolved
	 * and verified (spec rule 5). */
	assert_int_equal(
	    resolve_wait(f->loop, f->r, "sip:192.0.2.1:5090;maddr=198.51.100.7", &res, 1000), 0);
	expect_targets(&res, "192.0.2.1", "udp:192.0.2.1:5090", NULL);
	expect_no_network(f);
}

static void test_refused_uris(void **state)
{
	struct fixture *f = *state;
	struct result res;
	assert_int_equal(resolve(f->r, "sips:example.test;transport=udp", &res), -EPROTONOSUPPORT);
	assert_int_equal(resolve(f->r, "sip:example.test;transport=sctp", &res), -EPROTONOSUPPORT);
	assert_int_equal(resolve(f->r, "tel:+15551234", &res), -EINVAL);
	/* None of them calls back. */
	for (int i = 0; i < 3; i++)
		assert_true(loop_run_once(f->loop, 0) >= 0);
	assert_int_equal(res.calls, 0);
	struct dns_stats st;
	dns_resolver_stats(f->r, &st);
	assert_int_equal(st.resolutions, 0);
}

/* naptr.test: three services out of order, each with one SRV target. */
static void seed_naptr_domain(struct fixture *f)
{
	seed_naptr(f, "naptr.test", 20, 10, "SIP+D2U", "_sip._udp.naptr.test");
	seed_naptr(f, "naptr.test", 10, 60, "SIP+D2T", "_sip._tcp.naptr.test");
	seed_naptr(f, "naptr.test", 10, 50, "SIPS+D2T", "_sips._tcp.naptr.test");
	seed_srv(f, "_sip._udp.naptr.test", 10, 1, 5060, "udp1.naptr.test");
	seed_srv(f, "_sip._tcp.naptr.test", 10, 1, 5060, "tcp1.naptr.test");
	seed_srv(f, "_sips._tcp.naptr.test", 10, 1, 5061, "tls1.naptr.test");
	seed_host(f, "udp1.naptr.test", "127.0.10.3", NULL);
	seed_host(f, "tcp1.naptr.test", "127.0.10.2", NULL);
	seed_host(f, "tls1.naptr.test", "127.0.10.1", "::1");
}

static void test_naptr_flow(void **state)
{
	struct fixture *f = *state;
	struct result res;
	seed_naptr_domain(f);
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:alice@naptr.test", &res, 1000), 0);
	expect_targets(&res, "naptr.test", "tls:127.0.10.1:5061", "tls:[::1]:5061",
		       "tcp:127.0.10.2:5060", "udp:127.0.10.3:5060", NULL);
	/* host is the SRV target, for logs; domain is the URI host. */
	assert_string_equal(res.t.t[0].host, "tls1.naptr.test");
	assert_int_equal(res.t.t[0].priority, 10);
	/* Spec rule 7: sips: keeps only SIPS+D2T. */
	assert_int_equal(resolve_wait(f->loop, f->r, "sips:alice@naptr.test", &res, 1000), 0);
	expect_targets(&res, "naptr.test", "tls:127.0.10.1:5061", "tls:[::1]:5061", NULL);
	expect_no_network(f);
	char buf[512];
	dns_targets_format(&res.t, buf, sizeof(buf));
	assert_string_equal(buf, "tls:127.0.10.1:5061/tls1.naptr.test/p10w1,"
				 "tls:[::1]:5061/tls1.naptr.test/p10w1");
	/* Cut with "...". */
	dns_targets_format(&res.t, buf, 50);
	assert_true(strlen(buf) < 50);
	assert_non_null(strstr(buf, "..."));
}

static void test_prefer_tls_naptr(void **state)
{
	struct fixture *f = *state;
	struct result res;
	seed_naptr(f, "udpfirst.test", 10, 10, "SIP+D2U", "_sip._udp.udpfirst.test");
	seed_naptr(f, "udpfirst.test", 20, 10, "SIPS+D2T", "_sips._tcp.udpfirst.test");
	seed_srv(f, "_sip._udp.udpfirst.test", 1, 1, 5070, "u.udpfirst.test");
	seed_srv(f, "_sips._tcp.udpfirst.test", 1, 1, 5071, "t.udpfirst.test");
	seed_host(f, "u.udpfirst.test", "127.0.11.1", NULL);
	seed_host(f, "t.udpfirst.test", "127.0.11.2", NULL);
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:udpfirst.test", &res, 1000), 0);
	expect_targets(&res, "udpfirst.test", "tls:127.0.11.2:5071", "udp:127.0.11.1:5070", NULL);
	expect_no_network(f);
}

static void test_no_prefer_naptr_order(void **state)
{
	struct fixture *f = *state;
	struct result res;
	seed_naptr(f, "udpfirst.test", 10, 10, "SIP+D2U", "_sip._udp.udpfirst.test");
	seed_naptr(f, "udpfirst.test", 20, 10, "SIPS+D2T", "_sips._tcp.udpfirst.test");
	seed_srv(f, "_sip._udp.udpfirst.test", 1, 1, 5070, "u.udpfirst.test");
	seed_srv(f, "_sips._tcp.udpfirst.test", 1, 1, 5071, "t.udpfirst.test");
	seed_host(f, "u.udpfirst.test", "127.0.11.1", NULL);
	seed_host(f, "t.udpfirst.test", "127.0.11.2", NULL);
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:udpfirst.test", &res, 1000), 0);
	expect_targets(&res, "udpfirst.test", "udp:127.0.11.1:5070", "tls:127.0.11.2:5071", NULL);
	expect_no_network(f);
}

/* srvonly.test: no NAPTR, _sips._tcp and _sip._udp SRV records. */
static void seed_srvonly(struct fixture *f)
{
	seed_none(f, "srvonly.test", DNS_TYPE_NAPTR, -ENODATA);
	seed_srv(f, "_sips._tcp.srvonly.test", 10, 1, 5061, "t.srvonly.test");
	seed_srv(f, "_sip._udp.srvonly.test", 10, 1, 5060, "u.srvonly.test");
	seed_no_srv(f, "srvonly.test", false, true, false);
	seed_host(f, "t.srvonly.test", "127.0.15.2", NULL);
	seed_host(f, "u.srvonly.test", "127.0.15.3", NULL);
}

static void test_srv_fallback(void **state)
{
	struct fixture *f = *state;
	struct result res;
	seed_srvonly(f);
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:srvonly.test", &res, 1000), 0);
	expect_targets(&res, "srvonly.test", "udp:127.0.15.3:5060", "tls:127.0.15.2:5061", NULL);
	assert_int_equal(resolve_wait(f->loop, f->r, "sips:srvonly.test", &res, 1000), 0);
	expect_targets(&res, "srvonly.test", "tls:127.0.15.2:5061", NULL);
	/* A transport parameter, no port: SRV of that transport only. */
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:srvonly.test;transport=tls", &res, 1000),
			 0);
	expect_targets(&res, "srvonly.test", "tls:127.0.15.2:5061", NULL);
	expect_no_network(f);
}

static void test_srv_fallback_prefer_tls(void **state)
{
	struct fixture *f = *state;
	struct result res;
	seed_srvonly(f);
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:srvonly.test", &res, 1000), 0);
	expect_targets(&res, "srvonly.test", "tls:127.0.15.2:5061", "udp:127.0.15.3:5060", NULL);
	expect_no_network(f);
}

/* aonly.test: neither NAPTR nor SRV. */
static void seed_aonly(struct fixture *f)
{
	seed_none(f, "aonly.test", DNS_TYPE_NAPTR, -ENODATA);
	seed_no_srv(f, "aonly.test", true, true, true);
	seed_host(f, "aonly.test", "127.0.16.1", "::1");
}

static void test_a_fallback(void **state)
{
	struct fixture *f = *state;
	struct result res;
	seed_aonly(f);
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:aonly.test", &res, 1000), 0);
	expect_targets(&res, "aonly.test", "udp:127.0.16.1:5060", "udp:[::1]:5060", NULL);
	assert_string_equal(res.t.t[0].host, "aonly.test");
	assert_int_equal(resolve_wait(f->loop, f->r, "sips:aonly.test", &res, 1000), 0);
	expect_targets(&res, "aonly.test", "tls:127.0.16.1:5061", "tls:[::1]:5061", NULL);
	/* A port: addresses only (no NAPTR/SRV is even asked). */
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:aonly.test:5080", &res, 1000), 0);
	expect_targets(&res, "aonly.test", "udp:127.0.16.1:5080", "udp:[::1]:5080", NULL);
	assert_int_equal(resolve_wait(f->loop, f->r, "sips:aonly.test.:5081", &res, 1000), 0);
	expect_targets(&res, "aonly.test", "tls:127.0.16.1:5081", "tls:[::1]:5081", NULL);
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:aonly.test;transport=tcp", &res, 1000),
			 0);
	expect_targets(&res, "aonly.test", "tcp:127.0.16.1:5060", "tcp:[::1]:5060", NULL);
	expect_no_network(f);
}

static void test_a_fallback_prefer_tls(void **state)
{
	struct fixture *f = *state;
	struct result res;
	seed_aonly(f);
	/* Best-effort TLS: 5061 first, then the RFC 3263 default. */
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:aonly.test", &res, 1000), 0);
	expect_targets(&res, "aonly.test", "tls:127.0.16.1:5061", "tls:[::1]:5061",
		       "udp:127.0.16.1:5060", "udp:[::1]:5060", NULL);
	/* A port given: the RFC 3263 §4.2 transport, no preference. */
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:aonly.test:5080", &res, 1000), 0);
	expect_targets(&res, "aonly.test", "udp:127.0.16.1:5080", "udp:[::1]:5080", NULL);
	expect_no_network(f);
}

static void test_srv_order_in_flow(void **state)
{
	struct fixture *f = *state;
	struct result res;
	seed_none(f, "prio.test", DNS_TYPE_NAPTR, -ENODATA);
	seed_no_srv(f, "prio.test", true, true, false);
	seed_srv(f, "_sip._udp.prio.test", 20, 0, 5060, "p20.prio.test");
	seed_srv(f, "_sip._udp.prio.test", 10, 0, 5060, "p10.prio.test");
	seed_srv(f, "_sip._udp.prio.test", 30, 0, 5062, "p30.prio.test");
	/* Two records on one host: one lookup, two targets. */
	seed_srv(f, "_sip._udp.prio.test", 40, 0, 5063, "p10.prio.test");
	seed_host(f, "p10.prio.test", "127.0.12.10", NULL);
	seed_host(f, "p20.prio.test", "127.0.12.20", NULL);
	seed_host(f, "p30.prio.test", "127.0.12.30", NULL);
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:prio.test", &res, 1000), 0);
	expect_targets(&res, "prio.test", "udp:127.0.12.10:5060", "udp:127.0.12.20:5060",
		       "udp:127.0.12.30:5062", "udp:127.0.12.10:5063", NULL);
	assert_int_equal(res.t.t[2].priority, 30);

	/* Weighted: with a fixed RNG the choice is exact. */
	seed_none(f, "w.test", DNS_TYPE_NAPTR, -ENODATA);
	seed_no_srv(f, "w.test", true, true, false);
	seed_srv(f, "_sip._udp.w.test", 1, 0, 5060, "w0.w.test");
	seed_srv(f, "_sip._udp.w.test", 1, 10, 5060, "w10.w.test");
	seed_host(f, "w0.w.test", "127.0.13.1", NULL);
	seed_host(f, "w10.w.test", "127.0.13.2", NULL);
	uint32_t val = 0;
	dns_resolver_set_rng(f->r, fixed_rng, &val);
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:w.test", &res, 1000), 0);
	expect_targets(&res, "w.test", "udp:127.0.13.1:5060", "udp:127.0.13.2:5060", NULL);
	val = UINT32_MAX;
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:w.test", &res, 1000), 0);
	expect_targets(&res, "w.test", "udp:127.0.13.2:5060", "udp:127.0.13.1:5060", NULL);
	expect_no_network(f);
}

static void test_negative_results(void **state)
{
	struct fixture *f = *state;
	struct result res;
	/* NXDOMAIN everywhere. */
	seed_none(f, "nope.test", DNS_TYPE_NAPTR, -ENOENT);
	seed_no_srv(f, "nope.test", true, true, true);
	seed_none(f, "nope.test", DNS_TYPE_A, -ENOENT);
	seed_none(f, "nope.test", DNS_TYPE_AAAA, -ENOENT);
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:nope.test", &res, 1000), -ENOENT);
	assert_int_equal(res.t.n, 0);
	/* RFC 2782: a lone "." target: no service there, and no A fallback. */
	seed_none(f, "dot.test", DNS_TYPE_NAPTR, -ENODATA);
	seed_srv(f, "_sips._tcp.dot.test", 0, 0, 0, ".");
	seed_host(f, "dot.test", "127.0.0.99", NULL);
	assert_int_equal(resolve_wait(f->loop, f->r, "sips:dot.test", &res, 1000), -ENOENT);
	expect_no_network(f);
	struct dns_stats st;
	dns_resolver_stats(f->r, &st);
	assert_int_equal(st.failures, 2);
	assert_int_equal(st.pending, 0);
}

static void test_cache_expiry_in_resolver(void **state)
{
	struct fixture *f = *state;
	struct result res;
	seed_aonly(f); /* TTL 300 s */
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:aonly.test", &res, 1000), 0);
	expect_no_network(f);
	test_now_ms += 299 * 1000;
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:aonly.test", &res, 1000), 0);
	expect_no_network(f);
	/* Expired: the lookup goes to the server, which never answers. */
	test_now_ms += 2 * 1000;
	uint64_t t0 = clock_ms();
	assert_int_equal(resolve_wait(f->loop, f->r, "sip:aonly.test", &res, 3000), -ETIMEDOUT);
	assert_true(clock_ms() - t0 < 2000);
	struct dns_stats st;
	dns_resolver_stats(f->r, &st);
	assert_int_equal(st.cache_misses, 1); /* the NAPTR; the rest never asked */
	assert_true(st.lookup_errors >= 1);
	dns_resolver_flush(f->r);
	dns_resolver_stats(f->r, &st);
	assert_int_equal(st.cache_entries, 0);
}

static void never_cb(int status, const struct dns_targets *t, void *arg)
{
	(void)status, (void)t, (void)arg;
	fail_msg("a cancelled query called back");
}

static void test_cancel(void **state)
{
	struct fixture *f = *state;
	struct sip_uri uri;
	size_t off;
	const char *why;
	struct dns_query *q = NULL;
	seed_aonly(f);
	/* A cache hit, cancelled before its delivery. */
	assert_int_equal(sip_uri_parse(STR_LIT("sip:aonly.test"), &uri, &off, &why), 0);
	assert_int_equal(dns_resolve_uri(f->r, &uri, never_cb, NULL, &q), 0);
	assert_non_null(q);
	dns_query_cancel(q);
	/* A lookup in flight (the server never answers), cancelled. */
	assert_int_equal(sip_uri_parse(STR_LIT("sip:elsewhere.test"), &uri, &off, &why), 0);
	assert_int_equal(dns_resolve_uri(f->r, &uri, never_cb, NULL, &q), 0);
	struct dns_stats st;
	dns_resolver_stats(f->r, &st);
	assert_int_equal(st.pending, 1);
	dns_query_cancel(q);
	dns_query_cancel(NULL);
	dns_resolver_stats(f->r, &st);
	assert_int_equal(st.pending, 0);
	/* Let the orphaned lookup time out. */
	uint64_t end = clock_ms() + 400;
	while (clock_ms() < end)
		assert_true(loop_run_once(f->loop, 20) >= 0);
	/* And one left pending when the resolver goes (teardown). */
	assert_int_equal(dns_resolve_uri(f->r, &uri, never_cb, NULL, &q), 0);
	assert_int_equal(sip_uri_parse(STR_LIT("sip:aonly.test"), &uri, &off, &why), 0);
	assert_int_equal(dns_resolve_uri(f->r, &uri, never_cb, NULL, &q), 0);
}

/* A callback that destroys the resolver (allowed) and starts nothing. */
struct destroyer {
	struct fixture *f;
	int calls;
};

static void destroy_cb(int status, const struct dns_targets *t, void *arg)
{
	struct destroyer *d = arg;
	(void)status, (void)t;
	d->calls++;
	dns_resolver_destroy(d->f->r);
	d->f->r = NULL;
}

static void test_destroy_from_callback(void **state)
{
	struct fixture *f = *state;
	struct sip_uri uri;
	size_t off;
	const char *why;
	struct destroyer d = {f, 0};
	seed_aonly(f);
	assert_int_equal(sip_uri_parse(STR_LIT("sip:aonly.test"), &uri, &off, &why), 0);
	/* Two deliveries queued in the same drain: the first destroys the
	 * resolver, the second must not be called. */
	assert_int_equal(dns_resolve_uri(f->r, &uri, destroy_cb, &d, NULL), 0);
	assert_int_equal(dns_resolve_uri(f->r, &uri, destroy_cb, &d, NULL), 0);
	for (int i = 0; i < 3; i++)
		assert_true(loop_run_once(f->loop, 0) >= 0);
	assert_int_equal(d.calls, 1);
	assert_null(f->r);
}

static void test_bad_config(void **state)
{
	(void)state;
	struct loop *loop;
	struct dns_resolver *r = NULL;
	assert_int_equal(loop_create(&loop), 0);
	struct dns_config cfg = {.servers = "not an address"};
	assert_int_equal(dns_resolver_create(loop, &cfg, &r), -EINVAL);
	/* Defaults (system servers) work without any traffic. */
	assert_int_equal(dns_resolver_create(loop, NULL, &r), 0);
	dns_resolver_destroy(r);
	dns_resolver_destroy(NULL);
	loop_destroy(loop);
	assert_string_equal(dns_transport_name(DNS_TRANSPORT_TCP), "tcp");
	assert_int_equal(dns_transport_default_port(DNS_TRANSPORT_TLS), 5061);
	assert_int_equal(dns_transport_default_port(DNS_TRANSPORT_UDP), 5060);
}

/* ---- Live: a real dnsmasq (tests/integration/dns_rfc3263.sh). ---- */

static const char *live_main, *live_cache;
static pid_t live_cache_pid;

struct live {
	struct loop *loop;
	struct dns_resolver *r;
};

static void live_open(struct live *l, const char *server, bool prefer_tls, unsigned timeout_ms,
		      unsigned tries)
{
	assert_int_equal(loop_create(&l->loop), 0);
	/* dnsmasq sends no SOA with NODATA (the AAAA of IPv4-only hosts):
	 * keep those as long as the records (local-ttl=60) for the TTL test. */
	struct dns_config cfg = {.servers = server,
				 .timeout_ms = timeout_ms,
				 .tries = tries,
				 .neg_ttl_s = 300,
				 .sip_prefer_tls = prefer_tls};
	assert_int_equal(dns_resolver_create(l->loop, &cfg, &l->r), 0);
}

static void live_close(struct live *l)
{
	dns_resolver_destroy(l->r);
	loop_destroy(l->loop);
}

static void test_live_naptr(void **state)
{
	(void)state;
	struct live l;
	struct result res;
	live_open(&l, live_main, false, 500, 2);
	assert_int_equal(resolve_wait(l.loop, l.r, "sip:naptr.test", &res, 5000), 0);
	expect_targets(&res, "naptr.test", "tls:127.0.10.1:5061", "tcp:127.0.10.2:5060",
		       "udp:127.0.10.3:5060", NULL);
	assert_string_equal(res.t.t[0].host, "tls1.naptr.test");
	assert_string_equal(res.t.t[2].host, "udp1.naptr.test");
	assert_int_equal(resolve_wait(l.loop, l.r, "sips:bob@naptr.test", &res, 5000), 0);
	expect_targets(&res, "naptr.test", "tls:127.0.10.1:5061", NULL);
	/* NAPTR order beats the server's: UDP first here, TLS with
	 * sip_prefer_tls (below). */
	assert_int_equal(resolve_wait(l.loop, l.r, "sip:udpfirst.test", &res, 5000), 0);
	expect_targets(&res, "udpfirst.test", "udp:127.0.11.1:5070", "tls:127.0.11.2:5071", NULL);
	live_close(&l);

	live_open(&l, live_main, true, 500, 2);
	assert_int_equal(resolve_wait(l.loop, l.r, "sip:udpfirst.test", &res, 5000), 0);
	expect_targets(&res, "udpfirst.test", "tls:127.0.11.2:5071", "udp:127.0.11.1:5070", NULL);
	live_close(&l);
}

static void test_live_srv_priority_weight(void **state)
{
	(void)state;
	struct live l;
	struct result res;
	live_open(&l, live_main, false, 500, 2);
	assert_int_equal(resolve_wait(l.loop, l.r, "sip:prio.test", &res, 5000), 0);
	expect_targets(&res, "prio.test", "udp:127.0.12.10:5060", "udp:127.0.12.20:5060",
		       "udp:127.0.12.30:5060", NULL);
	assert_int_equal(res.t.t[0].priority, 10);
	assert_int_equal(res.t.t[2].priority, 30);

	/* Weight 0 vs 10 in one priority: RFC 2782 puts the weight-0 record
	 * first for R = 0 only (1 in 11). 200 runs: expect ~182 with the
	 * weighted one first; the bounds are many deviations away. */
	unsigned w10_first = 0, runs = 200;
	for (unsigned i = 0; i < runs; i++) {
		assert_int_equal(resolve_wait(l.loop, l.r, "sip:weight.test", &res, 5000), 0);
		assert_int_equal(res.t.n, 2);
		w10_first += strcmp(res.t.t[0].host, "w10.weight.test") == 0;
	}
	printf("# weight.test: w10 first in %u of %u\n", w10_first, runs);
	assert_true(w10_first >= 150);
	assert_true(w10_first <= runs - 1);
	/* Those ran from the cache after the first resolution. */
	struct dns_stats st;
	dns_resolver_stats(l.r, &st);
	assert_true(st.cache_hits >= runs);
	live_close(&l);
}

static void test_live_sips_filter_and_fallbacks(void **state)
{
	(void)state;
	struct live l;
	struct result res;
	live_open(&l, live_main, false, 500, 2);
	/* sips: ignores the SIP+D2U NAPTR and the _sip._udp SRV: no _sips
	 * SRV, so the domain's address on 5061. */
	assert_int_equal(resolve_wait(l.loop, l.r, "sips:sipnaptr.test", &res, 5000), 0);
	expect_targets(&res, "sipnaptr.test", "tls:127.0.14.1:5061", NULL);
	assert_int_equal(resolve_wait(l.loop, l.r, "sip:sipnaptr.test", &res, 5000), 0);
	expect_targets(&res, "sipnaptr.test", "udp:127.0.14.2:5060", NULL);
	/* No NAPTR: SRV per transport. */
	assert_int_equal(resolve_wait(l.loop, l.r, "sip:srvonly.test", &res, 5000), 0);
	expect_targets(&res, "srvonly.test", "udp:127.0.15.3:5060", "tls:127.0.15.2:5061", NULL);
	assert_int_equal(resolve_wait(l.loop, l.r, "sips:srvonly.test", &res, 5000), 0);
	expect_targets(&res, "srvonly.test", "tls:127.0.15.2:5061", NULL);
	/* No SRV: A and AAAA with the default port. */
	assert_int_equal(resolve_wait(l.loop, l.r, "sip:aonly.test", &res, 5000), 0);
	expect_targets(&res, "aonly.test", "udp:127.0.16.1:5060", "udp:[::1]:5060", NULL);
	assert_int_equal(resolve_wait(l.loop, l.r, "sips:aonly.test", &res, 5000), 0);
	expect_targets(&res, "aonly.test", "tls:127.0.16.1:5061", "tls:[::1]:5061", NULL);
	assert_int_equal(resolve_wait(l.loop, l.r, "sip:aonly.test:5080;transport=tcp", &res, 5000),
			 0);
	expect_targets(&res, "aonly.test", "tcp:127.0.16.1:5080", "tcp:[::1]:5080", NULL);
	/* A CNAME: the domain stays the URI host. */
	assert_int_equal(resolve_wait(l.loop, l.r, "sip:alias.test:5090", &res, 5000), 0);
	expect_targets(&res, "alias.test", "udp:127.0.16.1:5090", "udp:[::1]:5090", NULL);
	/* NXDOMAIN. */
	assert_int_equal(resolve_wait(l.loop, l.r, "sip:nope.test", &res, 5000), -ENOENT);
	assert_int_equal(resolve_wait(l.loop, l.r, "sips:nope.test:5061", &res, 5000), -ENOENT);
	live_close(&l);

	live_open(&l, live_main, true, 500, 2);
	assert_int_equal(resolve_wait(l.loop, l.r, "sip:srvonly.test", &res, 5000), 0);
	expect_targets(&res, "srvonly.test", "tls:127.0.15.2:5061", "udp:127.0.15.3:5060", NULL);
	assert_int_equal(resolve_wait(l.loop, l.r, "sip:aonly.test", &res, 5000), 0);
	expect_targets(&res, "aonly.test", "tls:127.0.16.1:5061", "tls:[::1]:5061",
		       "udp:127.0.16.1:5060", "udp:[::1]:5060", NULL);
	live_close(&l);
}

static void test_live_dead_server(void **state)
{
	(void)state;
	struct live l;
	struct result res;
	char addr[64];
	int fd = blackhole(addr, sizeof(addr));
	/* 200 ms, 2 tries: c-ares waits 200 + 400 ms. */
	live_open(&l, addr, false, 200, 2);
	uint64_t t0 = clock_ms();
	assert_int_equal(resolve_wait(l.loop, l.r, "sip:naptr.test", &res, 5000), -ETIMEDOUT);
	uint64_t took = clock_ms() - t0;
	printf("# silent server: -ETIMEDOUT after %llu ms\n", (unsigned long long)took);
	assert_true(took >= 500 && took < 2000);
	live_close(&l);
	close(fd);
}

static bool pid_alive(pid_t pid)
{
	return kill(pid, 0) == 0;
}

static uint64_t live_clock_ms;
static uint64_t live_clock(void *arg)
{
	(void)arg;
	return live_clock_ms;
}

static void test_live_ttl_cache(void **state)
{
	(void)state;
	if (!live_cache || live_cache_pid <= 0)
		skip();
	struct live l;
	struct result res;
	struct dns_stats st;
	live_open(&l, live_cache, false, 300, 2);
	live_clock_ms = 1000000;
	dns_resolver_set_clock(l.r, live_clock, NULL);
	assert_int_equal(resolve_wait(l.loop, l.r, "sips:cache.test", &res, 5000), 0);
	expect_targets(&res, "cache.test", "tls:127.0.17.1:5061", NULL);
	dns_resolver_stats(l.r, &st);
	uint64_t misses = st.cache_misses;
	assert_true(misses >= 3); /* NAPTR, SRV, A, AAAA */

	/* Stop that dnsmasq (by PID) and wait until it is gone. */
	assert_int_equal(kill(live_cache_pid, SIGTERM), 0);
	for (int i = 0; i < 100 && pid_alive(live_cache_pid); i++)
		usleep(50 * 1000);
	assert_false(pid_alive(live_cache_pid));

	/* Within the TTL (dnsmasq local-ttl=60): no network at all. */
	live_clock_ms += 59 * 1000;
	assert_int_equal(resolve_wait(l.loop, l.r, "sips:cache.test", &res, 5000), 0);
	expect_targets(&res, "cache.test", "tls:127.0.17.1:5061", NULL);
	dns_resolver_stats(l.r, &st);
	assert_int_equal(st.cache_misses, misses);

	/* Past it: the server is asked and is gone (port closed: refused, or
	 * a timeout), within the configured bound. */
	live_clock_ms += 2 * 1000;
	uint64_t t0 = clock_ms();
	int rc = resolve_wait(l.loop, l.r, "sips:cache.test", &res, 5000);
	printf("# after TTL with the server stopped: %d after %llu ms\n", rc,
	       (unsigned long long)(clock_ms() - t0));
	assert_true(rc == -ECONNREFUSED || rc == -ETIMEDOUT);
	assert_true(clock_ms() - t0 < 2000);
	live_close(&l);
}

int main(void)
{
	alarm(240); /* hard bound for the whole file */
	seed_b = malloc(sizeof(*seed_b));
	live_main = getenv("SIPSD_DNS_LIVE");
	if (live_main && live_main[0]) {
		live_cache = getenv("SIPSD_DNS_LIVE_B");
		const char *pid = getenv("SIPSD_DNS_LIVE_B_PID");
		live_cache_pid = pid ? (pid_t)strtol(pid, NULL, 10) : 0;
		const struct CMUnitTest live[] = {
		    cmocka_unit_test(test_live_naptr),
		    cmocka_unit_test(test_live_srv_priority_weight),
		    cmocka_unit_test(test_live_sips_filter_and_fallbacks),
		    cmocka_unit_test(test_live_dead_server),
		    cmocka_unit_test(test_live_ttl_cache),
		};
		int rc = cmocka_run_group_tests_name("dns_live", live, NULL, NULL);
		free(seed_b);
		return rc;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_srv_priority),
	    cmocka_unit_test(test_srv_weight_fixed_rng),
	    cmocka_unit_test(test_srv_all_zero_keeps_order),
	    cmocka_unit_test(test_srv_weight_distribution),
	    cmocka_unit_test(test_naptr_select_sip),
	    cmocka_unit_test(test_naptr_select_sips_only),
	    cmocka_unit_test(test_naptr_prefer_tls),
	    cmocka_unit_test(test_parse_naptr_srv),
	    cmocka_unit_test(test_parse_cname_chain),
	    cmocka_unit_test(test_parse_negative),
	    cmocka_unit_test(test_parse_malformed),
	    cmocka_unit_test(test_cache_expiry),
	    cmocka_unit_test(test_cache_lru),
	    cmocka_unit_test_setup_teardown(test_numeric_hosts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused_uris, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_naptr_flow, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prefer_tls_naptr, setup_tls, teardown),
	    cmocka_unit_test_setup_teardown(test_no_prefer_naptr_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_srv_fallback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_srv_fallback_prefer_tls, setup_tls, teardown),
	    cmocka_unit_test_setup_teardown(test_a_fallback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_fallback_prefer_tls, setup_tls, teardown),
	    cmocka_unit_test_setup_teardown(test_srv_order_in_flow, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_negative_results, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cache_expiry_in_resolver, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_destroy_from_callback, setup, teardown),
	    cmocka_unit_test(test_bad_config),
	};
	int rc = cmocka_run_group_tests_name("dns", tests, NULL, NULL);
	free(seed_b);
	return rc;
}
