/* dns.c: the resolver: c-ares in the epoll loop, the RFC 3263 §4 steps, delivery of results. */
#include "dns/dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/log.h"
#include "dns/cache.h"
#include "dns/order.h"
#include "dns/rr.h"
#include "loop/timer.h"

/* Limits of one resolution (design.md: every growth path is bounded). */
/* SRV names looked up: the usable NAPTR records, or the fallback names. */
#define DNS_MAX_SRVSETS 8
/* Distinct host names whose A/AAAA records are looked up. */
#define DNS_MAX_HOSTS 16
/* (transport, port, host) entries before they are expanded to addresses. */
#define DNS_MAX_PLAN 32

/* Defaults of struct dns_config. */
#define DNS_DEFAULT_TIMEOUT_MS 2000
#define DNS_DEFAULT_TRIES 2
#define DNS_DEFAULT_CACHE_SIZE 4096
#define DNS_DEFAULT_TTL_MIN 1
#define DNS_DEFAULT_TTL_MAX 3600
#define DNS_DEFAULT_NEG_TTL 30
/* EDNS0 payload size we announce (the DNS flag day 2020 value), so that a
 * NAPTR set rarely needs the TCP retry of a truncated answer. */
#define DNS_EDNS_SIZE 1232

#define DNS_CLASS_IN 1

enum query_stage { STAGE_NAPTR, STAGE_SRV, STAGE_ADDR, STAGE_DONE };

/* One SRV name to look up and what it gave. */
struct srv_set {
	enum dns_transport tp;
	struct dns_rrset *rs;
	int status;
	char name[DNS_NAME_MAX + 1];
};

/* One host name whose addresses are looked up ([0] A, [1] AAAA). */
struct host_slot {
	struct dns_rrset *rs[2];
	int status[2];
	char name[DNS_NAME_MAX + 1];
};

/* One place in the failover order, before addresses are known. */
struct plan_entry {
	enum dns_transport tp;
	uint16_t port, prio, weight;
	unsigned host;
};

struct dns_lookup;

struct dns_query {
	struct dns_resolver *r; /* NULL once the resolver is gone */
	struct dns_query *prev, *next;
	dns_result_cb cb;
	void *arg;
	struct loop_deferred deliver;
	enum query_stage stage;
	bool sips;
	bool has_port;
	bool busy;	/* inside query_step(): completions only count down */
	bool cancelled; /* the callback will not be called */
	bool in_cb;
	enum dns_transport tp; /* from the transport parameter, or NONE */
	uint16_t port;
	unsigned pending; /* lookups in flight */
	struct dns_lookup *lookups;
	int err;    /* the first lookup failure that was not a negative answer */
	int status; /* the result */
	char domain[DNS_NAME_MAX + 1];
	struct dns_rrset *naptr;
	int naptr_status;
	unsigned nsrv, nhosts, nplan;
	struct srv_set srv[DNS_MAX_SRVSETS];
	struct host_slot hosts[DNS_MAX_HOSTS];
	struct plan_entry plan[DNS_MAX_PLAN];
	struct dns_targets result;
};

/* One c-ares query in flight. It outlives its dns_query when that one is
 * cancelled (q becomes NULL): c-ares has no per-query cancel, and its
 * callback always comes (an answer, an error, or ARES_EDESTRUCTION). */
struct dns_lookup {
	struct dns_lookup *prev, *next; /* in q->lookups */
	struct dns_query *q;
	struct dns_resolver *r;
	struct dns_rrset **rs_slot;
	int *st_slot;
	uint16_t type;
	char name[];
};

struct dns_resolver {
	struct loop *loop;
	ares_channel channel;
	bool channel_ok;
	struct loop_timer timer;
	struct dns_cache *cache;
	uint32_t neg_ttl;
	enum dns_family family;
	bool prefer_tls;
	dns_rng_fn rng;
	void *rng_arg;
	uint64_t rng_state;
	dns_clock_fn clock;
	void *clock_arg;
	struct dns_query *queries; /* not yet delivered */
	struct dns_stats stats;
};

/* ---- Small helpers. ---- */

const char *dns_transport_name(enum dns_transport tp)
{
	switch (tp) {
	case DNS_TRANSPORT_UDP:
		return "udp";
	case DNS_TRANSPORT_TCP:
		return "tcp";
	case DNS_TRANSPORT_TLS:
		return "tls";
	default:
		return "none";
	}
}

uint16_t dns_transport_default_port(enum dns_transport tp)
{
	return tp == DNS_TRANSPORT_TLS ? 5061 : 5060;
}

/* RFC 3263 §4.2 / RFC 2782: the SRV owner name for a transport. */
static const char *srv_prefix(enum dns_transport tp)
{
	switch (tp) {
	case DNS_TRANSPORT_TLS:
		return "_sips._tcp.";
	case DNS_TRANSPORT_TCP:
		return "_sip._tcp.";
	default:
		return "_sip._udp.";
	}
}

static uint32_t default_rng(void *arg)
{
	/* xorshift64*: not for secrets; spreads load over SRV weights. */
	uint64_t *s = arg;
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (uint32_t)((*s * 0x2545F4914F6CDD1Dull) >> 32);
}

static uint64_t resolver_now(const struct dns_resolver *r)
{
	return r->clock ? r->clock(r->clock_arg) : loop_now_ms(r->loop);
}

static int ares_to_errno(int status)
{
	switch (status) {
	case ARES_ETIMEOUT:
		return -ETIMEDOUT;
	case ARES_ECONNREFUSED:
		return -ECONNREFUSED;
	case ARES_ENOMEM:
		return -ENOMEM;
	case ARES_ENOTFOUND:
		return -ENOENT;
	case ARES_ENODATA:
		return -ENODATA;
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION:
		return -ECANCELED;
	default:
		return -EIO; /* SERVFAIL, REFUSED, FORMERR, bad answers */
	}
}

/* A negative answer: the name or the type does not exist. */
static bool st_negative(int st)
{
	return st == -ENOENT || st == -ENODATA;
}

/* Failures that mean no server can be reached: asking more questions
 * would only wait for the same timeouts again. */
static bool st_unreachable(int st)
{
	return st == -ETIMEDOUT || st == -ECONNREFUSED || st == -ENOMEM;
}

/* ---- c-ares in the loop. ---- */

static void resolver_timer_update(struct dns_resolver *r)
{
	struct timeval tv;
	if (!ares_timeout(r->channel, NULL, &tv)) {
		loop_timer_cancel(&r->timer);
		return;
	}
	/* Round up: never wake before c-ares considers the timeout due. */
	uint64_t ms = (uint64_t)tv.tv_sec * 1000u + ((uint64_t)tv.tv_usec + 999u) / 1000u;
	if (loop_timer_start(r->loop, &r->timer, ms ? ms : 1) != 0)
		LOG_WARN("dns.timer", "err=%d", -ENOMEM);
}

static void resolver_timer_cb(void *arg)
{
	struct dns_resolver *r = arg;
	ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	resolver_timer_update(r);
}

static void resolver_io_cb(int fd, uint32_t events, void *arg)
{
	struct dns_resolver *r = arg;
	/* Errors and hang-ups go to c-ares as readable: its read fails and
	 * it moves the query to the next server. */
	ares_socket_t rfd = (events & (LOOP_READ | LOOP_ERROR | LOOP_HUP)) ? fd : ARES_SOCKET_BAD;
	ares_socket_t wfd = (events & LOOP_WRITE) ? fd : ARES_SOCKET_BAD;
	ares_process_fd(r->channel, rfd, wfd);
	resolver_timer_update(r);
}

/* ARES_OPT_SOCK_STATE_CB: c-ares tells which sockets it wants watched. */
static void resolver_sock_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_resolver *r = data;
	uint32_t ev = (readable ? LOOP_READ : 0) | (writable ? LOOP_WRITE : 0);
	if (!ev) {
		(void)loop_fd_remove(r->loop, fd);
		return;
	}
	int rc = loop_fd_modify(r->loop, fd, ev);
	if (rc == -ENOENT)
		rc = loop_fd_add(r->loop, fd, ev, resolver_io_cb, r);
	if (rc)
		/* The lookup will end by its timeout. */
		LOG_WARN("dns.socket", "fd=%d err=%d", fd, rc);
}

/* ---- Queries. ---- */

static void query_step(struct dns_query *q);
static void lookup_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen);

static void query_note(struct dns_query *q, int st)
{
	if (st < 0 && !st_negative(st) && q->err == 0)
		q->err = st;
}

static void query_unlink(struct dns_query *q)
{
	struct dns_resolver *r = q->r;
	if (!r)
		return;
	if (q->prev)
		q->prev->next = q->next;
	else if (r->queries == q)
		r->queries = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
	r->stats.pending--;
}

/* Forget the lookups in flight: their answers still reach the cache. */
static void query_detach_lookups(struct dns_query *q)
{
	for (struct dns_lookup *l = q->lookups; l; l = l->next)
		l->q = NULL;
	q->lookups = NULL;
	q->pending = 0;
}

static void query_free(struct dns_query *q)
{
	free(q->naptr);
	for (unsigned i = 0; i < q->nsrv; i++)
		free(q->srv[i].rs);
	for (unsigned i = 0; i < q->nhosts; i++) {
		free(q->hosts[i].rs[0]);
		free(q->hosts[i].rs[1]);
	}
	free(q);
}

static void query_deliver_cb(void *arg)
{
	struct dns_query *q = arg;
	if (!q->cancelled) {
		query_unlink(q);
		q->in_cb = true;
		/* The resolver may be destroyed inside: q->r is not used after. */
		q->cb(q->status, &q->result, q->arg);
	}
	query_free(q);
}

static void query_finish(struct dns_query *q, int status)
{
	struct dns_resolver *r = q->r;
	q->stage = STAGE_DONE;
	q->status = status;
	if (status) {
		q->result.n = 0;
		r->stats.failures++;
	}
	if (log_get_level() >= LOG_LVL_DEBUG) {
		char buf[1024];
		LOG_DEBUG("dns.resolved", "domain=%s status=%d targets=%s", q->domain, status,
			  dns_targets_format(&q->result, buf, sizeof(buf)));
	}
	/* Never call back from inside dns_resolve_uri() or c-ares: the loop's
	 * deferred phase runs it once the current callbacks have returned. */
	(void)loop_defer_node(r->loop, &q->deliver, query_deliver_cb, q);
}

/* Ask for (name, type): from the cache at once, or from the network, the
 * answer landing in *rs / *st. */
static void query_lookup(struct dns_query *q, const char *name, uint16_t type,
			 struct dns_rrset **rs, int *st)
{
	struct dns_resolver *r = q->r;
	struct dns_rrset *hit = NULL;
	*rs = NULL;
	int rc = dns_cache_get(r->cache, name, type, resolver_now(r), &hit);
	if (rc == 0) {
		r->stats.cache_hits++;
		*rs = hit;
		*st = hit->status;
		return;
	}
	if (rc == -ENOMEM) {
		*st = -ENOMEM;
		query_note(q, *st);
		return;
	}
	r->stats.cache_misses++;
	size_t n = strlen(name);
	struct dns_lookup *l = malloc(sizeof(*l) + n + 1);
	if (!l) {
		*st = -ENOMEM;
		query_note(q, *st);
		return;
	}
	memcpy(l->name, name, n + 1);
	l->q = q;
	l->r = r;
	l->rs_slot = rs;
	l->st_slot = st;
	l->type = type;
	l->prev = NULL;
	l->next = q->lookups;
	if (q->lookups)
		q->lookups->prev = l;
	q->lookups = l;
	q->pending++;
	*st = -EINPROGRESS;
	/* May call lookup_cb() before returning (c-ares reports some errors
	 * at once); query_step() copes through q->busy. */
	ares_query(r->channel, l->name, DNS_CLASS_IN, type, lookup_cb, l);
	resolver_timer_update(r);
}

static struct dns_rrset *negative_set(uint16_t type, int status, uint32_t ttl)
{
	struct dns_rrset *s = malloc(sizeof(*s));
	if (s) {
		s->size = sizeof(*s);
		s->type = type;
		s->status = status;
		s->ttl = ttl;
		s->n = 0;
	}
	return s;
}

static void lookup_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_lookup *l = arg;
	struct dns_resolver *r = l->r;
	(void)timeouts;
	if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
		/* The resolver is going away: its queries were detached. */
		free(l);
		return;
	}
	struct dns_rrset *rs = NULL;
	int st;
	if (status == ARES_SUCCESS || status == ARES_ENODATA || status == ARES_ENOTFOUND) {
		if (abuf && alen > 0)
			st =
			    dns_answer_parse(abuf, (size_t)alen, l->name, l->type, r->neg_ttl, &rs);
		else if (status != ARES_SUCCESS &&
			 (rs = negative_set(l->type, ares_to_errno(status), r->neg_ttl)) != NULL)
			st = 0;
		else if (status != ARES_SUCCESS)
			st = -ENOMEM;
		else
			st = -EIO;
		if (st == 0) {
			(void)dns_cache_put(r->cache, l->name, l->type, rs, resolver_now(r));
			st = rs->status;
		} else if (st != -ENOMEM) {
			st = -EIO; /* a malformed answer */
		}
	} else {
		st = ares_to_errno(status);
	}
	if (!st_negative(st) && st < 0) {
		r->stats.lookup_errors++;
		LOG_DEBUG("dns.lookup_failed", "name=%s type=%u err=%d", l->name, l->type, st);
	}
	struct dns_query *q = l->q;
	if (!q) {
		free(rs);
		free(l);
		return;
	}
	if (l->prev)
		l->prev->next = l->next;
	else
		q->lookups = l->next;
	if (l->next)
		l->next->prev = l->prev;
	*l->rs_slot = rs;
	*l->st_slot = st;
	query_note(q, st);
	q->pending--;
	free(l);
	query_step(q);
}

/* ---- RFC 3263 §4 steps. ---- */

/* Add (tp, port) on host `name` to the failover plan. */
static void plan_add(struct dns_query *q, enum dns_transport tp, uint16_t port, uint16_t prio,
		     uint16_t weight, const char *name)
{
	if (q->nplan >= DNS_MAX_PLAN || strlen(name) > DNS_NAME_MAX)
		return;
	unsigned h = 0;
	while (h < q->nhosts && !dns_name_eq(q->hosts[h].name, name))
		h++;
	if (h == q->nhosts) {
		if (q->nhosts >= DNS_MAX_HOSTS)
			return;
		struct host_slot *hs = &q->hosts[q->nhosts++];
		memset(hs, 0, sizeof(*hs));
		snprintf(hs->name, sizeof(hs->name), "%s", name);
	}
	q->plan[q->nplan++] = (struct plan_entry){tp, port, prio, weight, h};
}

static void srv_add(struct dns_query *q, enum dns_transport tp, const char *prefix,
		    const char *name)
{
	if (q->nsrv >= DNS_MAX_SRVSETS)
		return;
	struct srv_set *s = &q->srv[q->nsrv];
	int n = snprintf(s->name, sizeof(s->name), "%s%s", prefix, name);
	if (n < 0 || (size_t)n >= sizeof(s->name))
		return;
	s->tp = tp;
	s->rs = NULL;
	s->status = 0;
	q->nsrv++;
}

static void stage_srv(struct dns_query *q)
{
	q->stage = STAGE_SRV;
	for (unsigned i = 0; i < q->nsrv; i++)
		query_lookup(q, q->srv[i].name, DNS_TYPE_SRV, &q->srv[i].rs, &q->srv[i].status);
}

static void stage_addr(struct dns_query *q)
{
	q->stage = STAGE_ADDR;
	struct dns_resolver *r = q->r;
	for (unsigned i = 0; i < q->nhosts; i++) {
		struct host_slot *h = &q->hosts[i];
		if (r->family != DNS_FAMILY_INET6)
			query_lookup(q, h->name, DNS_TYPE_A, &h->rs[0], &h->status[0]);
		if (r->family != DNS_FAMILY_INET)
			query_lookup(q, h->name, DNS_TYPE_AAAA, &h->rs[1], &h->status[1]);
	}
}

/* RFC 3263 §4.1: no usable NAPTR: an SRV query per transport we speak
 * ("_sips" only for a sips: URI, spec rule 7). The order among transports
 * is the client's choice: UDP, TCP, TLS (RFC 3261's default first), or TLS
 * first with sip_prefer_tls. */
static void srv_fallback(struct dns_query *q)
{
	static const enum dns_transport plain[] = {DNS_TRANSPORT_UDP, DNS_TRANSPORT_TCP,
						   DNS_TRANSPORT_TLS};
	static const enum dns_transport tls_first[] = {DNS_TRANSPORT_TLS, DNS_TRANSPORT_UDP,
						       DNS_TRANSPORT_TCP};
	if (q->sips) {
		srv_add(q, DNS_TRANSPORT_TLS, srv_prefix(DNS_TRANSPORT_TLS), q->domain);
		return;
	}
	const enum dns_transport *order = q->r->prefer_tls ? tls_first : plain;
	for (int i = 0; i < 3; i++)
		srv_add(q, order[i], srv_prefix(order[i]), q->domain);
}

/* RFC 3263 §4.2: no SRV records: the domain's own addresses with the
 * default port of the transport. */
static void addr_fallback(struct dns_query *q)
{
	if (q->tp != DNS_TRANSPORT_NONE) {
		plan_add(q, q->tp, dns_transport_default_port(q->tp), 0, 0, q->domain);
	} else if (q->sips) {
		plan_add(q, DNS_TRANSPORT_TLS, 5061, 0, 0, q->domain);
	} else {
		/* Best-effort TLS (spec rule 14): try 5061 first, then 5060. */
		if (q->r->prefer_tls)
			plan_add(q, DNS_TRANSPORT_TLS, 5061, 0, 0, q->domain);
		plan_add(q, DNS_TRANSPORT_UDP, 5060, 0, 0, q->domain);
	}
}

static void after_naptr(struct dns_query *q)
{
	int st = q->naptr_status;
	/* A server that cannot be reached will not answer the SRV queries
	 * either. NXDOMAIN is not final: RFC 8020 would allow it, but servers
	 * such as dnsmasq answer NXDOMAIN for an empty non-terminal (a domain
	 * with only _sip._udp SRV records below it), so SRV and A are still
	 * asked (each negative answer is cached). */
	if (st_unreachable(st)) {
		query_finish(q, st);
		return;
	}
	struct dns_naptr_pick picks[DNS_MAX_SRVSETS];
	size_t n = 0;
	if (q->naptr && q->naptr->n)
		n = dns_naptr_select(q->naptr, q->sips, q->r->prefer_tls, picks, DNS_MAX_SRVSETS);
	for (size_t i = 0; i < n; i++)
		srv_add(q, picks[i].tp, "",
			dns_rrset_str(q->naptr, q->naptr->rr[picks[i].idx].u.naptr.replacement));
	if (q->nsrv == 0)
		srv_fallback(q);
	stage_srv(q);
}

static void after_srv(struct dns_query *q)
{
	struct dns_resolver *r = q->r;
	bool found = false, all_unreachable = q->nsrv > 0;
	for (unsigned i = 0; i < q->nsrv; i++) {
		struct srv_set *s = &q->srv[i];
		if (!st_unreachable(s->status))
			all_unreachable = false;
		if (!s->rs || s->rs->n == 0)
			continue;
		found = true;
		struct dns_srv_pick picks[DNS_RRSET_MAX];
		size_t m = 0;
		for (uint32_t k = 0; k < s->rs->n; k++) {
			const char *t = dns_rrset_str(s->rs, s->rs->rr[k].u.srv.target);
			/* RFC 2782: a target of "." means the service is
			 * decidedly not available at this domain. */
			if (t[0] == '\0' || strcmp(t, ".") == 0)
				continue;
			picks[m++] = (struct dns_srv_pick){s->rs->rr[k].u.srv.prio,
							   s->rs->rr[k].u.srv.weight, k};
		}
		dns_srv_order(picks, m, r->rng, r->rng_arg);
		for (size_t k = 0; k < m; k++) {
			const struct dns_rr *rr = &s->rs->rr[picks[k].idx];
			plan_add(q, s->tp, rr->u.srv.port, rr->u.srv.prio, rr->u.srv.weight,
				 dns_rrset_str(s->rs, rr->u.srv.target));
		}
	}
	if (!found) {
		if (all_unreachable) {
			query_finish(q, q->err ? q->err : -ETIMEDOUT);
			return;
		}
		addr_fallback(q);
	}
	if (q->nplan == 0) {
		query_finish(q, q->err ? q->err : -ENOENT);
		return;
	}
	stage_addr(q);
}

static bool target_add(struct dns_query *q, enum dns_transport tp, const struct dns_rr *rr,
		       uint16_t port, uint16_t prio, uint16_t weight, const char *host)
{
	struct dns_targets *res = &q->result;
	if (res->n >= DNS_MAX_TARGETS)
		return false;
	struct dns_target *t = &res->t[res->n];
	memset(&t->addr, 0, sizeof(t->addr));
	if (rr->u.addr.family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&t->addr;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, rr->u.addr.bytes, 4);
		t->addrlen = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->addr;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, rr->u.addr.bytes, 16);
		t->addrlen = sizeof(*sin6);
	}
	/* The same address, port and transport twice is one target. */
	for (size_t i = 0; i < res->n; i++)
		if (res->t[i].transport == tp && res->t[i].addrlen == t->addrlen &&
		    memcmp(&res->t[i].addr, &t->addr, t->addrlen) == 0)
			return true;
	t->transport = tp;
	t->priority = prio;
	t->weight = weight;
	snprintf(t->host, sizeof(t->host), "%s", host);
	snprintf(t->domain, sizeof(t->domain), "%s", q->domain);
	res->n++;
	return true;
}

static void after_addr(struct dns_query *q)
{
	bool room = true;
	for (unsigned i = 0; i < q->nplan && room; i++) {
		const struct plan_entry *e = &q->plan[i];
		const struct host_slot *h = &q->hosts[e->host];
		for (int f = 0; f < 2 && room; f++) {
			const struct dns_rrset *rs = h->rs[f];
			for (uint32_t k = 0; rs && k < rs->n && room; k++)
				room = target_add(q, e->tp, &rs->rr[k], e->port, e->prio, e->weight,
						  h->name);
		}
	}
	if (q->result.n)
		query_finish(q, 0);
	else
		query_finish(q, q->err ? q->err : -ENOENT);
}

/* Run the next steps while nothing is in flight. Re-entered from
 * lookup_cb() while a step issues lookups: then it only returns, and the
 * outer loop sees the count it left. */
static void query_step(struct dns_query *q)
{
	if (q->busy)
		return;
	q->busy = true;
	while (q->stage != STAGE_DONE && q->pending == 0) {
		switch (q->stage) {
		case STAGE_NAPTR:
			after_naptr(q);
			break;
		case STAGE_SRV:
			after_srv(q);
			break;
		case STAGE_ADDR:
			after_addr(q);
			break;
		default:
			break;
		}
	}
	q->busy = false;
}

/* The transport parameter (RFC 3261 §19.1.1; "tls" is deprecated but
 * parsed, spec rule 15). sips: means TLS over TCP (RFC 3261 §26.2.2). */
static int uri_transport(const struct sip_uri *uri, bool sips, enum dns_transport *tp)
{
	struct str v;
	*tp = DNS_TRANSPORT_NONE;
	if (!sip_params_find(uri->params, "transport", &v))
		return 0;
	if (str_case_eq_cstr(v, "udp"))
		*tp = DNS_TRANSPORT_UDP;
	else if (str_case_eq_cstr(v, "tcp"))
		*tp = DNS_TRANSPORT_TCP;
	else if (str_case_eq_cstr(v, "tls"))
		*tp = DNS_TRANSPORT_TLS;
	else
		return -EPROTONOSUPPORT;
	if (sips) {
		if (*tp == DNS_TRANSPORT_UDP)
			return -EPROTONOSUPPORT;
		*tp = DNS_TRANSPORT_TLS;
	}
	return 0;
}

/* A numeric host: one target, no DNS (RFC 3263 §4.1, §4.2). */
static int query_numeric(struct dns_query *q, const struct sip_uri *uri)
{
	enum dns_transport tp = q->tp;
	if (tp == DNS_TRANSPORT_NONE)
		tp = q->sips ? DNS_TRANSPORT_TLS : DNS_TRANSPORT_UDP;
	uint16_t port = q->has_port ? q->port : dns_transport_default_port(tp);
	struct dns_rr rr;
	memset(&rr, 0, sizeof(rr));
	if (uri->host_type == SIP_HOST_IPV4) {
		rr.u.addr.family = AF_INET;
		if (inet_pton(AF_INET, q->domain, rr.u.addr.bytes) != 1)
			return -EINVAL;
	} else {
		rr.u.addr.family = AF_INET6;
		if (inet_pton(AF_INET6, q->domain, rr.u.addr.bytes) != 1)
			return -EINVAL;
	}
	target_add(q, tp, &rr, port, 0, 0, q->domain);
	return 0;
}

int dns_resolve_uri(struct dns_resolver *r, const struct sip_uri *uri, dns_result_cb cb, void *arg,
		    struct dns_query **out)
{
	if (!r || !uri || !cb)
		return -EINVAL;
	if (uri->scheme_id != SIP_SCHEME_SIP && uri->scheme_id != SIP_SCHEME_SIPS)
		return -EINVAL;
	if (uri->host_type == SIP_HOST_NONE || uri->host.len == 0)
		return -EINVAL;
	if (uri->has_port && uri->port == 0)
		return -EINVAL;
	bool sips = uri->scheme_id == SIP_SCHEME_SIPS;
	enum dns_transport tp;
	int rc = uri_transport(uri, sips, &tp);
	if (rc)
		return rc;

	/* The AUS domain (RFC 5922 §7.3): the URI host as written, without
	 * IPv6 brackets or a trailing root dot. maddr is not looked at. */
	struct str host = uri->host;
	if (uri->host_type == SIP_HOST_IPV6 && host.len >= 2 && host.s[0] == '[')
		host = str_sub(host, 1, host.len - 2);
	if (uri->host_type == SIP_HOST_NAME && host.len > 1 && host.s[host.len - 1] == '.')
		host.len--;
	if (host.len == 0 || host.len > DNS_NAME_MAX || memchr(host.s, '\0', host.len))
		return -EINVAL;

	struct dns_query *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	q->sips = sips;
	q->tp = tp;
	q->has_port = uri->has_port;
	q->port = uri->port;
	str_to_cbuf(host, q->domain, sizeof(q->domain));

	if (uri->host_type != SIP_HOST_NAME && (rc = query_numeric(q, uri)) != 0) {
		free(q);
		return rc;
	}
	q->next = r->queries;
	if (r->queries)
		r->queries->prev = q;
	r->queries = q;
	r->stats.pending++;
	r->stats.resolutions++;

	q->busy = true;
	if (uri->host_type != SIP_HOST_NAME) {
		query_finish(q, 0);
	} else if (q->has_port) {
		/* RFC 3263 §4.2: a port given: addresses only; the transport
		 * from the parameter, else UDP for sip:, TLS for sips:. */
		enum dns_transport t = tp;
		if (t == DNS_TRANSPORT_NONE)
			t = sips ? DNS_TRANSPORT_TLS : DNS_TRANSPORT_UDP;
		plan_add(q, t, q->port, 0, 0, q->domain);
		stage_addr(q);
	} else if (tp != DNS_TRANSPORT_NONE) {
		/* RFC 3263 §4.2: a transport given, no port: SRV for it. */
		srv_add(q, tp, srv_prefix(tp), q->domain);
		stage_srv(q);
	} else {
		/* RFC 3263 §4.1: NAPTR first. */
		q->stage = STAGE_NAPTR;
		query_lookup(q, q->domain, DNS_TYPE_NAPTR, &q->naptr, &q->naptr_status);
	}
	q->busy = false;
	query_step(q);
	if (out)
		*out = q;
	return 0;
}

void dns_query_cancel(struct dns_query *q)
{
	if (!q || q->in_cb || q->cancelled)
		return;
	query_detach_lookups(q);
	query_unlink(q);
	q->cancelled = true;
	if (!q->deliver.queued)
		query_free(q);
}

/* ---- The resolver. ---- */

static pthread_once_t ares_once = PTHREAD_ONCE_INIT;
static int ares_once_status;

static void ares_once_init(void)
{
	/* Process-wide, never cleaned up: on Linux it allocates nothing. */
	ares_once_status = ares_library_init(ARES_LIB_INIT_ALL);
}

int dns_resolver_create(struct loop *loop, const struct dns_config *cfg, struct dns_resolver **out)
{
	static const struct dns_config defaults;
	if (!loop || !out)
		return -EINVAL;
	if (!cfg)
		cfg = &defaults;
	pthread_once(&ares_once, ares_once_init);
	if (ares_once_status != ARES_SUCCESS)
		return -EIO;

	struct dns_resolver *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->loop = loop;
	r->neg_ttl = cfg->neg_ttl_s ? cfg->neg_ttl_s : DNS_DEFAULT_NEG_TTL;
	r->family = cfg->family;
	r->prefer_tls = cfg->sip_prefer_tls;
	loop_timer_init(&r->timer, resolver_timer_cb, r);
	dns_resolver_set_rng(r, NULL, NULL);
	uint32_t ttl_min = cfg->ttl_min_s ? cfg->ttl_min_s : DNS_DEFAULT_TTL_MIN;
	uint32_t ttl_max = cfg->ttl_max_s ? cfg->ttl_max_s : DNS_DEFAULT_TTL_MAX;
	int rc = dns_cache_create(cfg->cache_size ? cfg->cache_size : DNS_DEFAULT_CACHE_SIZE,
				  ttl_min, ttl_max, &r->cache);
	if (rc) {
		free(r);
		return rc;
	}

	struct ares_options o;
	memset(&o, 0, sizeof(o));
	o.flags = ARES_FLAG_EDNS | ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	o.timeout = (int)(cfg->timeout_ms ? cfg->timeout_ms : DNS_DEFAULT_TIMEOUT_MS);
	o.tries = (int)(cfg->tries ? cfg->tries : DNS_DEFAULT_TRIES);
	o.ednspsz = DNS_EDNS_SIZE;
	o.sock_state_cb = resolver_sock_cb;
	o.sock_state_cb_data = r;
	int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_EDNSPSZ |
		   ARES_OPT_SOCK_STATE_CB;
	rc = ares_init_options(&r->channel, &o, mask);
	if (rc != ARES_SUCCESS) {
		LOG_ERROR("dns.init", "err=%s", ares_strerror(rc));
		dns_cache_destroy(r->cache);
		free(r);
		return rc == ARES_ENOMEM ? -ENOMEM : -EIO;
	}
	r->channel_ok = true;
	if (cfg->servers && cfg->servers[0]) {
		rc = ares_set_servers_ports_csv(r->channel, cfg->servers);
		if (rc != ARES_SUCCESS) {
			LOG_ERROR("dns.servers", "servers=\"%s\" err=%s", cfg->servers,
				  ares_strerror(rc));
			dns_resolver_destroy(r);
			return rc == ARES_ENOMEM ? -ENOMEM : -EINVAL;
		}
	}
	*out = r;
	return 0;
}

void dns_resolver_destroy(struct dns_resolver *r)
{
	if (!r)
		return;
	while (r->queries) {
		struct dns_query *q = r->queries;
		query_detach_lookups(q);
		query_unlink(q);
		q->r = NULL;
		q->cancelled = true;
		if (!q->deliver.queued)
			query_free(q);
	}
	/* Calls every lookup_cb() with ARES_EDESTRUCTION and closes the
	 * sockets through resolver_sock_cb(). */
	if (r->channel_ok)
		ares_destroy(r->channel);
	loop_timer_cancel(&r->timer);
	dns_cache_destroy(r->cache);
	free(r);
}

void dns_resolver_stats(const struct dns_resolver *r, struct dns_stats *out)
{
	*out = r->stats;
	out->cache_entries = dns_cache_count(r->cache);
}

struct dns_cache *dns_resolver_cache(struct dns_resolver *r)
{
	return r->cache;
}

void dns_resolver_flush(struct dns_resolver *r)
{
	dns_cache_flush(r->cache);
}

void dns_resolver_set_rng(struct dns_resolver *r, dns_rng_fn fn, void *arg)
{
	if (fn) {
		r->rng = fn;
		r->rng_arg = arg;
		return;
	}
	uint64_t seed = 0;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)r;
	}
	r->rng_state = seed ? seed : 0x9E3779B97F4A7C15ull;
	r->rng = default_rng;
	r->rng_arg = &r->rng_state;
}

void dns_resolver_set_clock(struct dns_resolver *r, dns_clock_fn fn, void *arg)
{
	r->clock = fn;
	r->clock_arg = arg;
}

/* ---- Logging. ---- */

const char *dns_targets_format(const struct dns_targets *t, char *buf, size_t size)
{
	if (size == 0)
		return buf;
	if (!t || t->n == 0) {
		snprintf(buf, size, "-");
		return buf;
	}
	size_t used = 0;
	for (size_t i = 0; i < t->n; i++) {
		const struct dns_target *x = &t->t[i];
		char ip[INET6_ADDRSTRLEN] = "?";
		unsigned port = 0;
		bool v6 = x->addr.ss_family == AF_INET6;
		if (v6) {
			const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&x->addr;
			inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
			port = ntohs(s6->sin6_port);
		} else if (x->addr.ss_family == AF_INET) {
			const struct sockaddr_in *s4 = (const struct sockaddr_in *)&x->addr;
			inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
			port = ntohs(s4->sin_port);
		}
		int n = snprintf(buf + used, size - used, "%s%s:%s%s%s:%u/%s/p%uw%u", i ? "," : "",
				 dns_transport_name(x->transport), v6 ? "[" : "", ip, v6 ? "]" : "",
				 port, x->host, x->priority, x->weight);
		if (n < 0 || (size_t)n >= size - used) {
			/* Cut: end with "..." where it fits. */
			const char *dots = "...";
			size_t keep = size > 4 ? size - 4 : 0;
			if (used > keep)
				used = keep;
			snprintf(buf + used, size - used, "%s", dots);
			return buf;
		}
		used += (size_t)n;
	}
	return buf;
}
