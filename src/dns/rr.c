/* rr.c: record sets (one allocation each) and the DNS answer parser (RFC 1035 §4.1). */
#include "dns/rr.h"

#include <ares.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/str.h"

/* Longest name ares_expand_name() can give: 255 wire bytes with every
 * byte escaped as \DDD. */
#define WIRE_NAME_MAX 1100

struct dns_rrset *dns_rrset_dup(const struct dns_rrset *s)
{
	struct dns_rrset *c = malloc(s->size);
	if (c)
		memcpy(c, s, s->size);
	return c;
}

void dns_rrset_builder_init(struct dns_rrset_builder *b, uint16_t type)
{
	b->type = type;
	b->n = 0;
	b->ttl = UINT32_MAX;
	b->has_ttl = false;
	b->names_len = 0;
}

void dns_rrset_builder_ttl(struct dns_rrset_builder *b, uint32_t ttl)
{
	if (ttl < b->ttl)
		b->ttl = ttl;
	b->has_ttl = true;
}

/* Copy a string into the builder's string area; returns its offset or -1
 * when the area is full. */
static long builder_str(struct dns_rrset_builder *b, const char *s)
{
	size_t n = strlen(s) + 1;
	if (n > sizeof(b->names) - b->names_len)
		return -1;
	memcpy(b->names + b->names_len, s, n);
	long off = (long)b->names_len;
	b->names_len += n;
	return off;
}

static struct dns_rr *builder_next(struct dns_rrset_builder *b, uint16_t type, uint32_t ttl,
				   int *err)
{
	if (b->type != type) {
		*err = -EINVAL;
		return NULL;
	}
	if (b->n >= DNS_RRSET_MAX) {
		*err = -ENOSPC;
		return NULL;
	}
	struct dns_rr *rr = &b->rr[b->n];
	memset(rr, 0, sizeof(*rr));
	/* RFC 2181 §8: a TTL with the top bit set is read as zero. */
	rr->ttl = (ttl & 0x80000000u) ? 0 : ttl;
	return rr;
}

int dns_rrset_add_naptr(struct dns_rrset_builder *b, uint32_t ttl, uint16_t order, uint16_t pref,
			const char *flags, const char *service, const char *regexp,
			const char *replacement)
{
	int err = 0;
	struct dns_rr *rr = builder_next(b, DNS_TYPE_NAPTR, ttl, &err);
	if (!rr)
		return err;
	size_t mark = b->names_len;
	long f = builder_str(b, flags), s = builder_str(b, service), x = builder_str(b, regexp),
	     r = builder_str(b, replacement);
	if (f < 0 || s < 0 || x < 0 || r < 0) {
		b->names_len = mark;
		return -ENOSPC;
	}
	rr->u.naptr.order = order;
	rr->u.naptr.pref = pref;
	rr->u.naptr.flags = (uint32_t)f;
	rr->u.naptr.service = (uint32_t)s;
	rr->u.naptr.regexp = (uint32_t)x;
	rr->u.naptr.replacement = (uint32_t)r;
	dns_rrset_builder_ttl(b, rr->ttl);
	b->n++;
	return 0;
}

int dns_rrset_add_srv(struct dns_rrset_builder *b, uint32_t ttl, uint16_t prio, uint16_t weight,
		      uint16_t port, const char *target)
{
	int err = 0;
	struct dns_rr *rr = builder_next(b, DNS_TYPE_SRV, ttl, &err);
	if (!rr)
		return err;
	long t = builder_str(b, target);
	if (t < 0)
		return -ENOSPC;
	rr->u.srv.prio = prio;
	rr->u.srv.weight = weight;
	rr->u.srv.port = port;
	rr->u.srv.target = (uint32_t)t;
	dns_rrset_builder_ttl(b, rr->ttl);
	b->n++;
	return 0;
}

int dns_rrset_add_addr(struct dns_rrset_builder *b, uint32_t ttl, int family, const void *bytes)
{
	int err = 0;
	uint16_t want = family == AF_INET ? DNS_TYPE_A : family == AF_INET6 ? DNS_TYPE_AAAA : 0;
	if (!want)
		return -EINVAL;
	struct dns_rr *rr = builder_next(b, want, ttl, &err);
	if (!rr)
		return err;
	rr->u.addr.family = family;
	memcpy(rr->u.addr.bytes, bytes, family == AF_INET ? 4 : 16);
	dns_rrset_builder_ttl(b, rr->ttl);
	b->n++;
	return 0;
}

int dns_rrset_build(const struct dns_rrset_builder *b, int status, uint32_t neg_ttl,
		    struct dns_rrset **out)
{
	size_t names = b->n ? b->names_len : 0;
	size_t size = sizeof(struct dns_rrset) + (size_t)b->n * sizeof(struct dns_rr) + names;
	struct dns_rrset *s = malloc(size);
	if (!s)
		return -ENOMEM;
	s->size = size;
	s->type = b->type;
	s->n = b->n;
	if (b->n) {
		s->status = 0;
		s->ttl = b->ttl;
		memcpy(s->rr, b->rr, (size_t)b->n * sizeof(struct dns_rr));
		memcpy(s->rr + b->n, b->names, names);
	} else {
		s->status = status ? status : -ENODATA;
		/* A CNAME that led to nothing may not outlive its own TTL. */
		s->ttl = (b->has_ttl && b->ttl < neg_ttl) ? b->ttl : neg_ttl;
	}
	*out = s;
	return 0;
}

bool dns_name_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la && a[la - 1] == '.')
		la--;
	if (lb && b[lb - 1] == '.')
		lb--;
	return str_case_eq(str_make(a, la), str_make(b, lb));
}

/* ---- Wire format (RFC 1035 §4.1). ---- */

struct wire {
	const unsigned char *msg;
	size_t len;
	size_t off;
};

static int wire_u16(struct wire *w, uint16_t *v)
{
	if (w->off > w->len || w->len - w->off < 2)
		return -EBADMSG;
	*v = (uint16_t)((w->msg[w->off] << 8) | w->msg[w->off + 1]);
	w->off += 2;
	return 0;
}

static int wire_u32(struct wire *w, uint32_t *v)
{
	if (w->off > w->len || w->len - w->off < 4)
		return -EBADMSG;
	const unsigned char *p = w->msg + w->off;
	*v = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
	w->off += 4;
	return 0;
}

/* Expand the (possibly compressed) name at w->off into out and advance
 * past its encoding, which must end by `end`. -ENAMETOOLONG (offset still
 * advanced) when it does not fit in `size`. */
static int wire_name(struct wire *w, size_t end, char *out, size_t size)
{
	char *s = NULL;
	long enclen = 0;
	if (w->off >= end || end > w->len)
		return -EBADMSG;
	if (ares_expand_name(w->msg + w->off, w->msg, (int)w->len, &s, &enclen) != ARES_SUCCESS)
		return -EBADMSG;
	size_t n = strlen(s);
	int rc = 0;
	if (enclen <= 0 || (size_t)enclen > end - w->off)
		rc = -EBADMSG;
	else if (n >= size)
		rc = -ENAMETOOLONG;
	else
		memcpy(out, s, n + 1);
	ares_free_string(s);
	if (rc != -EBADMSG)
		w->off += (size_t)enclen;
	return rc;
}

/* A <character-string> (RFC 1035 §3.3) ending by `end`; -EILSEQ for one
 * with a NUL byte (kept out of C strings). */
static int wire_cstring(struct wire *w, size_t end, char *out, size_t size)
{
	if (w->off >= end)
		return -EBADMSG;
	size_t n = w->msg[w->off];
	if (n > end - w->off - 1 || n >= size)
		return -EBADMSG;
	memcpy(out, w->msg + w->off + 1, n);
	out[n] = '\0';
	w->off += n + 1;
	return memchr(out, '\0', n) ? -EILSEQ : 0;
}

/* The fixed part of a resource record. */
struct wire_rr {
	char owner[WIRE_NAME_MAX];
	uint16_t type, class;
	uint32_t ttl;
	size_t rdata, rdend;
};

static int wire_rr_next(struct wire *w, struct wire_rr *rr)
{
	uint16_t rdlen;
	int rc = wire_name(w, w->len, rr->owner, sizeof(rr->owner));
	if (rc == 0)
		rc = wire_u16(w, &rr->type);
	if (rc == 0)
		rc = wire_u16(w, &rr->class);
	if (rc == 0)
		rc = wire_u32(w, &rr->ttl);
	if (rc == 0)
		rc = wire_u16(w, &rdlen);
	if (rc)
		return rc;
	if (rdlen > w->len - w->off)
		return -EBADMSG;
	rr->rdata = w->off;
	rr->rdend = w->off + rdlen;
	if (rr->ttl & 0x80000000u)
		rr->ttl = 0; /* RFC 2181 §8 */
	w->off = rr->rdend;
	return 0;
}

/* Decode the rdata of `rr` (of the builder's type) into the builder;
 * unusable records are skipped. Returns 0 or -EBADMSG. */
static int wire_rdata(const struct wire *msg, const struct wire_rr *rr, struct dns_rrset_builder *b,
		      char *tmp, size_t tmpsize)
{
	struct wire w = {msg->msg, msg->len, rr->rdata};
	size_t rdlen = rr->rdend - rr->rdata;
	int rc;
	switch (rr->type) {
	case DNS_TYPE_A:
		if (rdlen != 4)
			return -EBADMSG;
		(void)dns_rrset_add_addr(b, rr->ttl, AF_INET, msg->msg + rr->rdata);
		return 0;
	case DNS_TYPE_AAAA:
		if (rdlen != 16)
			return -EBADMSG;
		(void)dns_rrset_add_addr(b, rr->ttl, AF_INET6, msg->msg + rr->rdata);
		return 0;
	case DNS_TYPE_SRV: {
		uint16_t prio, weight, port;
		if (wire_u16(&w, &prio) || wire_u16(&w, &weight) || wire_u16(&w, &port) ||
		    w.off > rr->rdend)
			return -EBADMSG;
		/* RFC 2782 says uncompressed, but some servers compress. */
		rc = wire_name(&w, rr->rdend, tmp, tmpsize);
		if (rc)
			return rc == -ENAMETOOLONG ? 0 : rc;
		(void)dns_rrset_add_srv(b, rr->ttl, prio, weight, port, tmp);
		return 0;
	}
	case DNS_TYPE_NAPTR: {
		/* RFC 3403 §4.1: order, preference, flags, services, regexp,
		 * replacement. Four strings of up to 255 bytes each fit in
		 * four quarters of tmp. */
		uint16_t order, pref;
		size_t q = tmpsize / 4;
		char *fl = tmp, *sv = tmp + q, *rx = tmp + 2 * q, *rp = tmp + 3 * q;
		if (wire_u16(&w, &order) || wire_u16(&w, &pref) || w.off > rr->rdend)
			return -EBADMSG;
		int r1 = wire_cstring(&w, rr->rdend, fl, q);
		int r2 = r1 == -EBADMSG ? r1 : wire_cstring(&w, rr->rdend, sv, q);
		int r3 = r2 == -EBADMSG ? r2 : wire_cstring(&w, rr->rdend, rx, q);
		if (r1 == -EBADMSG || r2 == -EBADMSG || r3 == -EBADMSG)
			return -EBADMSG;
		rc = wire_name(&w, rr->rdend, rp, q);
		if (rc)
			return rc == -ENAMETOOLONG ? 0 : rc;
		if (r1 || r2 || r3)
			return 0; /* a NUL inside a string: skip the record */
		(void)dns_rrset_add_naptr(b, rr->ttl, order, pref, fl, sv, rx, rp);
		return 0;
	}
	default:
		return 0;
	}
}

/* RFC 2308 §5: the negative TTL is the smaller of the SOA's TTL and its
 * MINIMUM field. Returns 0 and *ttl when the authority section has one. */
static int wire_soa_ttl(struct wire *w, unsigned nscount, struct wire_rr *rr, char *tmp,
			size_t tmpsize, uint32_t *ttl)
{
	for (unsigned i = 0; i < nscount; i++) {
		if (wire_rr_next(w, rr))
			return -EBADMSG;
		if (rr->type != DNS_TYPE_SOA || rr->class != 1)
			continue;
		struct wire r = {w->msg, w->len, rr->rdata};
		uint32_t v[5];
		if (wire_name(&r, rr->rdend, tmp, tmpsize) ||
		    wire_name(&r, rr->rdend, tmp, tmpsize))
			return -EBADMSG;
		for (int k = 0; k < 5; k++)
			if (wire_u32(&r, &v[k]) || r.off > rr->rdend)
				return -EBADMSG;
		uint32_t minimum = (v[4] & 0x80000000u) ? 0 : v[4];
		*ttl = rr->ttl < minimum ? rr->ttl : minimum;
		return 0;
	}
	return -ENOENT;
}

struct parse_scratch {
	struct dns_rrset_builder b;
	struct wire_rr rr;
	char cur[WIRE_NAME_MAX];
	char tmp[4 * 256 + 8];
};

int dns_answer_parse(const unsigned char *msg, size_t len, const char *qname, uint16_t qtype,
		     uint32_t neg_ttl, struct dns_rrset **out)
{
	struct wire w = {msg, len, 0};
	uint16_t id, flags, qd, an, ns, ar, qt, qc;
	if (wire_u16(&w, &id) || wire_u16(&w, &flags) || wire_u16(&w, &qd) || wire_u16(&w, &an) ||
	    wire_u16(&w, &ns) || wire_u16(&w, &ar))
		return -EBADMSG;
	(void)id;
	(void)ar;
	if (!(flags & 0x8000u) || qd != 1)
		return -EBADMSG;
	unsigned rcode = flags & 0xFu;
	if (rcode != 0 && rcode != 3)
		return -EIO;

	struct parse_scratch *sc = malloc(sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	int rc = wire_name(&w, len, sc->cur, sizeof(sc->cur));
	if (rc == 0)
		rc = wire_u16(&w, &qt);
	if (rc == 0)
		rc = wire_u16(&w, &qc);
	if (rc == 0 && (qt != qtype || !dns_name_eq(sc->cur, qname)))
		rc = -EBADMSG;
	if (rc) {
		free(sc);
		return -EBADMSG;
	}
	size_t answers = w.off;
	dns_rrset_builder_init(&sc->b, qtype);

	/* Follow the CNAME chain from qname (RFC 1034 §3.6.2). */
	size_t qlen = strlen(qname);
	if (qlen >= sizeof(sc->cur)) {
		free(sc);
		return -EBADMSG;
	}
	memcpy(sc->cur, qname, qlen + 1);
	for (int hop = 0; hop < DNS_CNAME_MAX && qtype != DNS_TYPE_CNAME; hop++) {
		bool moved = false;
		w.off = answers;
		for (unsigned i = 0; i < an && !moved; i++) {
			if ((rc = wire_rr_next(&w, &sc->rr)) != 0)
				goto out;
			if (sc->rr.type != DNS_TYPE_CNAME || sc->rr.class != 1 ||
			    !dns_name_eq(sc->rr.owner, sc->cur))
				continue;
			struct wire r = {msg, len, sc->rr.rdata};
			if ((rc = wire_name(&r, sc->rr.rdend, sc->tmp, sizeof(sc->tmp))) != 0)
				goto out;
			size_t n = strlen(sc->tmp);
			memcpy(sc->cur, sc->tmp, n + 1);
			dns_rrset_builder_ttl(&sc->b, sc->rr.ttl);
			moved = true;
		}
		if (!moved)
			break;
	}

	/* The records of qtype owned by the end of the chain. */
	w.off = answers;
	for (unsigned i = 0; i < an; i++) {
		if ((rc = wire_rr_next(&w, &sc->rr)) != 0)
			goto out;
		if (sc->rr.type != qtype || sc->rr.class != 1 ||
		    !dns_name_eq(sc->rr.owner, sc->cur))
			continue;
		if ((rc = wire_rdata(&w, &sc->rr, &sc->b, sc->tmp, sizeof(sc->tmp))) != 0)
			goto out;
	}

	uint32_t nttl = neg_ttl;
	if (sc->b.n == 0) {
		uint32_t soa;
		if (wire_soa_ttl(&w, ns, &sc->rr, sc->tmp, sizeof(sc->tmp), &soa) == 0)
			nttl = soa;
	}
	rc = dns_rrset_build(&sc->b, rcode == 3 ? -ENOENT : -ENODATA, nttl, out);
out:
	free(sc);
	return rc;
}
