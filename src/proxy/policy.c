/* policy.c: authoritative proxy and Via trail checks (spec §4.1, §4.5). */
#include "proxy/policy.h"

#include <stdio.h>
#include <string.h>

void policy_cfg_default(struct policy_cfg *pc)
{
	memset(pc, 0, sizeof(*pc));
	pc->peer_from = POLICY_PEER_FROM_REJECT;
	pc->via_trail = POLICY_VIA_TRAIL_OFF;
}

const struct policy_peer *policy_peer_find(const struct policy_cfg *pc, struct str domain)
{
	for (unsigned i = 0; i < pc->npeers; i++)
		if (str_case_eq_cstr(domain, pc->peers[i].domain))
			return &pc->peers[i];
	return NULL;
}

/* May a peer with identities `peer` send requests from `domain`? Its own
 * identities, or a domain its entry authorises. */
static bool peer_may_send_from(const struct policy_cfg *pc, const struct tls_identity_set *peer,
			       struct str domain)
{
	if (tls_identity_match(peer, domain))
		return true;
	for (size_t i = 0; i < peer->count; i++) {
		const struct policy_peer *e = policy_peer_find(pc, tls_identity_set_name(peer, i));
		if (!e)
			continue;
		for (unsigned k = 0; k < e->nfrom; k++)
			if (str_case_eq_cstr(domain, e->may_send_from[k]))
				return true;
	}
	return false;
}

static bool via_trail_has(const struct sip_msg *m, struct str domain)
{
	for (const struct sip_via *v = m->via; v; v = v->next)
		if (str_case_eq(v->host, domain))
			return true;
	return false;
}

void policy_check_inbound(const struct policy_cfg *pc, const struct sip_msg *m,
			  const struct tls_identity_set *peer, bool (*is_ours)(struct str, void *),
			  void *arg, struct policy_result *r)
{
	memset(r, 0, sizeof(*r));
	if (!m->from)
		return;
	struct str from_dom = m->from->uri.host;
	char ids[256] = "{}";
	if (peer)
		tls_identity_set_format(peer, ids, sizeof(ids));

	if (peer && pc->peer_from != POLICY_PEER_FROM_OFF) {
		struct str bad = STR_NULL;
		const char *what = "From";
		if ((m->from->uri.scheme_id == SIP_SCHEME_SIP || m->from->uri.scheme_id == SIP_SCHEME_SIPS) &&
		    !peer_may_send_from(pc, peer, from_dom)) {
			bad = from_dom;
		} else {
			/* RFC 3325: P-Asserted-Identity is checked the same way. */
			for (const struct sip_hdr *h = m->hdr_first[SIP_HDR_P_ASSERTED_IDENTITY]; h && !bad.len;
			     h = h->next_same) {
				const char *at = memchr(h->value.s, '@', h->value.len);
				if (!at)
					continue;
				const char *e = at + 1, *end = h->value.s + h->value.len;
				while (e < end && *e != '>' && *e != ';' && *e != ':' && *e != ' ')
					e++;
				struct str d = str_make(at + 1, (size_t)(e - at - 1));
				if (!peer_may_send_from(pc, peer, d)) {
					bad = d;
					what = "P-Asserted-Identity";
				}
			}
		}
		if (bad.len) {
			r->log = true;
			snprintf(r->why, sizeof(r->why),
				 "peer_identities=%s %s_domain=%.*s verdict=%s", ids,
				 !strcmp(what, "From") ? "from" : "pai", (int)bad.len, bad.s,
				 pc->peer_from == POLICY_PEER_FROM_REJECT ? "reject" : "log");
			if (pc->peer_from == POLICY_PEER_FROM_REJECT) {
				r->status = 403;
				return;
			}
		}
	}
	if (pc->via_trail != POLICY_VIA_TRAIL_OFF && !(is_ours && is_ours(from_dom, arg))) {
		/* Via entries are claims; only the last hop is proven (spec §4.5). */
		bool pass = via_trail_has(m, from_dom) || (peer && tls_identity_match(peer, from_dom));
		if (!pass) {
			r->log = true;
			size_t n = strlen(r->why);
			snprintf(r->why + n, sizeof(r->why) - n, "%svia_trail=fail from_domain=%.*s",
				 n ? " " : "", (int)from_dom.len, from_dom.s);
			if (pc->via_trail == POLICY_VIA_TRAIL_REJECT) {
				r->status = 403;
				return;
			}
		}
		if (pc->via_trail == POLICY_VIA_TRAIL_TAG)
			snprintf(r->tag_header, sizeof(r->tag_header), "X-Sipsd-Via-Trail: %s; from=%.*s\r\n",
				 pass ? "pass" : "fail", (int)from_dom.len, from_dom.s);
	}
}
