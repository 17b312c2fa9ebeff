/* order.h: RFC 3263 §4.1 NAPTR selection and RFC 2782 SRV ordering (internal to src/dns). */
#ifndef SIPSD_DNS_ORDER_H
#define SIPSD_DNS_ORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/dns.h"
#include "dns/rr.h"

/* One SRV record to order: `idx` is its index in the record set. */
struct dns_srv_pick {
	uint16_t prio, weight;
	uint32_t idx;
};

/* Order `v` by RFC 2782 ("Usage rules"): priority ascending; inside one
 * priority, repeatedly put the records not yet chosen with weight 0 first
 * (others keep their order), sum their weights, take a uniform number R in
 * [0, sum] from rng, and choose the first record whose running sum is >= R.
 * n <= DNS_RRSET_MAX. */
void dns_srv_order(struct dns_srv_pick *v, size_t n, dns_rng_fn rng, void *rng_arg);

/* One usable NAPTR record: `idx` is its index in the record set. */
struct dns_naptr_pick {
	uint16_t order, pref;
	enum dns_transport tp;
	uint32_t idx;
};

/* The transport of a NAPTR service field (RFC 3263 §4.1, ASCII case-
 * insensitive): "SIPS+D2T" gives TLS for both schemes; "SIP+D2T" (TCP) and
 * "SIP+D2U" (UDP) only for sip: URIs (spec rule 7). Anything else (SCTP,
 * WebSocket, other applications): DNS_TRANSPORT_NONE. */
enum dns_transport dns_naptr_transport(const char *service, bool sips);

/* The usable NAPTR records of `s` in the order to try them: flag "S", an
 * empty regexp, a replacement, a service dns_naptr_transport() accepts, no
 * duplicate (replacement, transport); sorted by order then preference
 * (RFC 3403 §4.1; records of a later order are kept after, as failover);
 * with prefer_tls the TLS ones move first, keeping their order. Returns how
 * many were written to out (at most max). */
size_t dns_naptr_select(const struct dns_rrset *s, bool sips, bool prefer_tls,
			struct dns_naptr_pick *out, size_t max);

#endif
