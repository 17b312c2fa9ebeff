/* order.c: which NAPTR records a SIP client uses and in which order SRV targets are tried. */
#include "dns/order.h"

#include <string.h>

#include "base/str.h"

/* A uniform number in [0, bound] (bound < 2^32 - 1) from 32 random bits,
 * by multiply and shift (no division; the bias is below bound / 2^32). */
static uint32_t uniform_upto(dns_rng_fn rng, void *arg, uint32_t bound)
{
	return (uint32_t)(((uint64_t)rng(arg) * ((uint64_t)bound + 1)) >> 32);
}

/* Move v[from] to v[to] (to <= from), shifting the others up by one. */
static void pick_move(struct dns_srv_pick *v, size_t from, size_t to)
{
	struct dns_srv_pick x = v[from];
	memmove(v + to + 1, v + to, (from - to) * sizeof(*v));
	v[to] = x;
}

void dns_srv_order(struct dns_srv_pick *v, size_t n, dns_rng_fn rng, void *rng_arg)
{
	/* Stable insertion sort by priority (n is small). */
	for (size_t i = 1; i < n; i++) {
		size_t j = i;
		while (j > 0 && v[j - 1].prio > v[i].prio)
			j--;
		if (j != i)
			pick_move(v, i, j);
	}
	/* Weighted selection inside each priority. */
	for (size_t lo = 0; lo < n;) {
		size_t hi = lo;
		while (hi < n && v[hi].prio == v[lo].prio)
			hi++;
		for (size_t pos = lo; pos + 1 < hi; pos++) {
			/* Weight 0 first among the records not chosen yet. */
			size_t z = pos;
			for (size_t k = pos; k < hi; k++)
				if (v[k].weight == 0)
					pick_move(v, k, z++);
			uint32_t sum = 0;
			for (size_t k = pos; k < hi; k++)
				sum += v[k].weight;
			uint32_t r = uniform_upto(rng, rng_arg, sum);
			uint32_t run = 0;
			size_t chosen = hi - 1;
			for (size_t k = pos; k < hi; k++) {
				run += v[k].weight;
				if (run >= r) {
					chosen = k;
					break;
				}
			}
			pick_move(v, chosen, pos);
		}
		lo = hi;
	}
}

enum dns_transport dns_naptr_transport(const char *service, bool sips)
{
	struct str s = str_from_cstr(service);
	if (str_case_eq_cstr(s, "SIPS+D2T"))
		return DNS_TRANSPORT_TLS;
	if (sips)
		return DNS_TRANSPORT_NONE; /* RFC 3263 §4.1: SIPS only */
	if (str_case_eq_cstr(s, "SIP+D2T"))
		return DNS_TRANSPORT_TCP;
	if (str_case_eq_cstr(s, "SIP+D2U"))
		return DNS_TRANSPORT_UDP;
	return DNS_TRANSPORT_NONE;
}

static bool pick_before(const struct dns_naptr_pick *a, const struct dns_naptr_pick *b)
{
	return a->order < b->order || (a->order == b->order && a->pref < b->pref);
}

size_t dns_naptr_select(const struct dns_rrset *s, bool sips, bool prefer_tls,
			struct dns_naptr_pick *out, size_t max)
{
	struct dns_naptr_pick all[DNS_RRSET_MAX];
	size_t n = 0;
	if (s->type != DNS_TYPE_NAPTR)
		return 0;
	for (uint32_t i = 0; i < s->n && n < DNS_RRSET_MAX; i++) {
		const struct dns_rr *rr = &s->rr[i];
		const char *flags = dns_rrset_str(s, rr->u.naptr.flags);
		const char *repl = dns_rrset_str(s, rr->u.naptr.replacement);
		/* RFC 3263 §4.1 uses the "S" flag: the replacement is an SRV
		 * name; regexp-based rewriting has no use for SIP. */
		if (!str_case_eq_cstr(str_from_cstr(flags), "s"))
			continue;
		if (dns_rrset_str(s, rr->u.naptr.regexp)[0] != '\0')
			continue;
		if (repl[0] == '\0' || strcmp(repl, ".") == 0 || strlen(repl) > DNS_NAME_MAX)
			continue;
		enum dns_transport tp =
		    dns_naptr_transport(dns_rrset_str(s, rr->u.naptr.service), sips);
		if (tp == DNS_TRANSPORT_NONE)
			continue;
		struct dns_naptr_pick p = {rr->u.naptr.order, rr->u.naptr.pref, tp, i};
		/* Stable insertion by (order, preference). */
		size_t j = n;
		while (j > 0 && pick_before(&p, &all[j - 1])) {
			all[j] = all[j - 1];
			j--;
		}
		all[j] = p;
		n++;
	}
	/* With prefer_tls, two passes: TLS first, then the others. */
	size_t k = 0;
	bool split = prefer_tls && !sips;
	for (int pass = split ? 0 : 1; pass < 2; pass++) {
		for (size_t i = 0; i < n && k < max; i++) {
			if (split && (pass == 0) != (all[i].tp == DNS_TRANSPORT_TLS))
				continue;
			const char *repl = dns_rrset_str(s, s->rr[all[i].idx].u.naptr.replacement);
			bool dup = false;
			for (size_t m = 0; m < k && !dup; m++)
				dup = out[m].tp == all[i].tp &&
				      dns_name_eq(
					  dns_rrset_str(s, s->rr[out[m].idx].u.naptr.replacement),
					  repl);
			if (!dup)
				out[k++] = all[i];
		}
	}
	return k;
}
