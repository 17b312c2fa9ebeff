/* rr.h: DNS record sets as the resolver keeps them, and the answer parser (internal to src/dns). */
#ifndef SIPSD_DNS_RR_H
#define SIPSD_DNS_RR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RR types we use (RFC 1035 §3.2.2, RFC 3596, RFC 2782, RFC 3403). */
#define DNS_TYPE_A 1
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_SOA 6
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_SRV 33
#define DNS_TYPE_NAPTR 35

/* Records kept per answer; extra records are dropped. */
#define DNS_RRSET_MAX 32
/* Bytes of strings (names, NAPTR fields) kept per answer. */
#define DNS_RRSET_NAMES_MAX 32768
/* CNAME links followed inside one answer. */
#define DNS_CNAME_MAX 8

/* One record. Strings are offsets into the set's string area. */
struct dns_rr {
	uint32_t ttl;
	union {
		struct {
			uint16_t order, pref;
			uint32_t flags, service, regexp, replacement;
		} naptr;
		struct {
			uint16_t prio, weight, port;
			uint32_t target;
		} srv;
		struct {
			int family; /* AF_INET or AF_INET6 */
			uint8_t bytes[16];
		} addr;
	} u;
};

/* The answer to one (name, type) question, in one allocation (so a copy
 * is one memcpy): `n` records, then their NUL-terminated strings. A
 * negative answer has n == 0 and status -ENOENT (NXDOMAIN) or -ENODATA. */
struct dns_rrset {
	size_t size; /* bytes of the whole block */
	uint16_t type;
	int status;
	uint32_t ttl; /* seconds: the smallest TTL used, or the negative TTL */
	uint32_t n;
	struct dns_rr rr[];
};

static inline const char *dns_rrset_str(const struct dns_rrset *s, uint32_t off)
{
	return (const char *)(s->rr + s->n) + off;
}

/* A copy of `s` (free() it), or NULL. */
struct dns_rrset *dns_rrset_dup(const struct dns_rrset *s);

/* Collects records, then builds the set. Large: keep it off small stacks. */
struct dns_rrset_builder {
	uint16_t type;
	uint32_t n;
	uint32_t ttl;
	bool has_ttl;
	size_t names_len;
	struct dns_rr rr[DNS_RRSET_MAX];
	char names[DNS_RRSET_NAMES_MAX];
};

void dns_rrset_builder_init(struct dns_rrset_builder *b, uint16_t type);

/* Add one record of the builder's type; strings are NUL-terminated and
 * copied. Returns 0, -ENOSPC when the set is full (the record is
 * dropped), or -EINVAL for a record of another type. */
int dns_rrset_add_naptr(struct dns_rrset_builder *b, uint32_t ttl, uint16_t order, uint16_t pref,
			const char *flags, const char *service, const char *regexp,
			const char *replacement);
int dns_rrset_add_srv(struct dns_rrset_builder *b, uint32_t ttl, uint16_t prio, uint16_t weight,
		      uint16_t port, const char *target);
int dns_rrset_add_addr(struct dns_rrset_builder *b, uint32_t ttl, int family, const void *bytes);

/* Lower the set's TTL to `ttl` (a CNAME on the way). */
void dns_rrset_builder_ttl(struct dns_rrset_builder *b, uint32_t ttl);

/* Build the set: with records, status 0 and the smallest TTL; without,
 * `status` (-ENOENT or -ENODATA) and `neg_ttl`. Returns 0 and *out (free()
 * it), or -ENOMEM. */
int dns_rrset_build(const struct dns_rrset_builder *b, int status, uint32_t neg_ttl,
		    struct dns_rrset **out);

/* Parse a DNS response `msg` to the question (qname, qtype): follows CNAMEs
 * from qname inside the answer section (at most DNS_CNAME_MAX), keeps the
 * records of qtype owned by the end of the chain, and for a negative answer
 * (NXDOMAIN, or NOERROR without such records) takes the TTL from the SOA in
 * the authority section (RFC 2308 §5: min of its TTL and MINIMUM), else
 * `neg_ttl`. Unusable records (a NAPTR string with a NUL, a bad length)
 * are skipped. Returns 0 and *out (free() it), -EBADMSG for a malformed
 * message or one that is not an answer to that question, -EIO for another
 * rcode, -ENOMEM. */
int dns_answer_parse(const unsigned char *msg, size_t len, const char *qname, uint16_t qtype,
		     uint32_t neg_ttl, struct dns_rrset **out);

/* Compare two host names, ASCII case-insensitively, ignoring a trailing
 * dot on either. */
bool dns_name_eq(const char *a, const char *b);

#endif
