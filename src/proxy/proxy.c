/* proxy.c: stateful proxy (RFC 3261 §16), registrar dispatch, SIPS rules
 * (RFC 5630), flows (RFC 5626) and stateless forwarding of 2xx ACKs. */
#include "proxy/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "base/log.h"
#include "base/mac.h"
#include "sip/build.h"

/* One place a branch may be sent to. */
struct hop {
	enum tp_proto proto;
	struct sockaddr_storage addr;
	socklen_t len;
	char domain[256];     /* TLS: the domain the peer must prove */
	struct tp_conn *conn; /* a flow to use (not owned) */
	unsigned flow_worker; /* a flow of another worker: (worker, id) */
	uint64_t flow_conn_id;
	char push_route[320]; /* to another node of ours: the Route naming the flow there */
};

struct proxy_ctx;

struct proxy_branch {
	struct proxy_ctx *ctx;
	struct txn_client *ct;
	char *ruri; /* new Request-URI, NULL to keep it */
	struct hop hops[PROXY_MAX_TARGETS];
	int nhops;
	int next_hop;
	int status; /* final status, 0 while pending */
	struct dns_query *dnsq; /* RFC 3263 resolution in flight */
};

struct proxy_ctx {
	struct proxy *p;
	struct txn_server *st;
	unsigned refs;
	bool invite;
	bool final_sent;
	bool cancelled;
	bool sips;        /* Request-URI (or top Route) is sips: every hop TLS */
	bool inbound_tls; /* arrived over TLS: best-effort TLS onward */
	struct tp_source src;
	char tag_header[200]; /* via_trail = tag: the verdict header to add */
	bool record_route; /* dialog-forming: add our Record-Route */
	int rr_domain;     /* which of our domains names us in it */
	int our_domain;    /* the domain the request is for (another node must prove it) */
	unsigned popped_routes; /* leading Route entries naming us (§16.4) */
	struct proxy_branch *branches[PROXY_MAX_BRANCHES];
	int nbranches;
	int best_status;
	char *best; /* best final response so far, ready to send */
	size_t best_len;
	char loop_hash[9];
};

struct proxy {
	struct loop *loop;
	struct transport *tp;
	unsigned index;
	struct txn_layer *txn;
	struct dns_resolver *dns;
	struct stateless_job *jobs; /* stateless sends waiting for DNS */
	struct sip_msg *strict_msg; /* a request rewritten after a strict router */
	char strict_buf[SIPS_MAX_MSG_SIZE];
	struct location *loc;
	struct proxy_cfg cfg;
	struct proxy_stats stats;
	char out[SIPS_MAX_MSG_SIZE];
	struct log_ratelimit rl;
};

/* ---- helpers ---- */

static bool is_our_domain(const struct proxy *p, struct str host, int *which)
{
	for (unsigned i = 0; i < p->cfg.ndomains; i++)
		if (str_case_eq_cstr(host, p->cfg.domains[i].name)) {
			if (which)
				*which = (int)i;
			return true;
		}
	return false;
}

static bool is_our_address(const struct proxy *p, const struct sip_uri *u)
{
	if (u->host_type != SIP_HOST_IPV4 && u->host_type != SIP_HOST_IPV6)
		return false;
	char host[64];
	struct str h = u->host;
	if (u->host_type == SIP_HOST_IPV6 && h.len >= 2)
		h = str_make(h.s + 1, h.len - 2);
	str_to_cbuf(h, host, sizeof(host));
	unsigned char a[16];
	int fam = u->host_type == SIP_HOST_IPV4 ? AF_INET : AF_INET6;
	if (inet_pton(fam, host, a) != 1)
		return false;
	for (unsigned i = 0; i < p->cfg.nlocals; i++) {
		const struct sockaddr_storage *ss = &p->cfg.locals[i].addr;
		if (ss->ss_family != fam)
			continue;
		uint16_t port;
		const void *la;
		if (fam == AF_INET) {
			la = &((const struct sockaddr_in *)ss)->sin_addr;
			port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
		} else {
			la = &((const struct sockaddr_in6 *)ss)->sin6_addr;
			port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
		}
		if (memcmp(la, a, fam == AF_INET ? 4 : 16) == 0 &&
		    (!u->has_port ? port == sip_uri_default_port(u) || port == 5060 : u->port == port))
			return true;
	}
	return false;
}

static bool domain_is_ours_cb(struct str host, void *arg)
{
	return is_our_domain(arg, host, NULL);
}

/* Does this URI name us (one of our domains without a user, or one of
 * our addresses)? Used for Route processing (§16.4). */
static bool uri_is_us(const struct proxy *p, const struct sip_uri *u)
{
	if (u->scheme_id != SIP_SCHEME_SIP && u->scheme_id != SIP_SCHEME_SIPS)
		return false;
	return is_our_domain(p, u->host, NULL) || is_our_address(p, u);
}

static const struct proxy_local *local_for(const struct proxy *p, enum tp_proto proto)
{
	for (unsigned i = 0; i < p->cfg.nlocals; i++)
		if (p->cfg.locals[i].proto == proto)
			return &p->cfg.locals[i];
	return p->cfg.nlocals ? &p->cfg.locals[0] : NULL;
}

static const char *proto_via_name(enum tp_proto proto)
{
	return proto == TP_PROTO_UDP ? "UDP" : proto == TP_PROTO_TCP ? "TCP" : "TLS";
}

/* ---- flow tokens (RFC 5626 §5.2) ---- */

/* A connection somewhere in our cluster: node (0 without one), worker,
 * connection id. */
struct flow_ref {
	unsigned node;
	unsigned worker;
	uint64_t conn;
};

/* "f" node(2 hex) worker(2 hex) conn-id(16 hex) mac(16 hex): the
 * connection a UA's requests must go down, carried in our Record-Route
 * user part (and in the Route one node adds for another). The MAC keeps
 * peers from steering requests into other users' flows; nodes of one
 * cluster share its key (docs/scaling.md). */
#define FLOW_TOKEN_LEN (1 + 20 + 16)
static void flow_token_make(const struct proxy *p, const struct flow_ref *f, char *out)
{
	/* "f" + node (2 hex) + worker (2 hex) + id (16 hex) + the MAC's first
	 * 8 bytes in hex */
	unsigned char mac[MAC_SHA256_LEN];
	out[0] = 'f';
	fmt_hex(out + 1, f->node & 0xff, 2);
	fmt_hex(out + 3, f->worker & 0xff, 2);
	fmt_hex(out + 5, f->conn, 16);
	bool ok = mac_sha256(p->cfg.flow_key, sizeof(p->cfg.flow_key), out + 1, 20, mac) == 0;
	for (int i = 0; i < 8; i++)
		fmt_hex(out + 21 + 2 * i, mac[i], 2);
	out[ok ? FLOW_TOKEN_LEN : 0] = '\0'; /* no MAC: an empty token, which nothing matches */
}

static bool flow_token_parse(const struct proxy *p, struct str user, struct flow_ref *f)
{
	if (user.len != FLOW_TOKEN_LEN || user.s[0] != 'f')
		return false;
	char expect[40];
	uint64_t v[3] = {0, 0, 0};
	for (int i = 1; i < 21; i++) {
		if (!ascii_is_hex(user.s[i]))
			return false;
		int which = i < 3 ? 0 : i < 5 ? 1 : 2;
		v[which] = v[which] * 16 + (uint64_t)ascii_hex_value(user.s[i]);
	}
	struct flow_ref got = {(unsigned)v[0], (unsigned)v[1], v[2]};
	flow_token_make(p, &got, expect);
	if (CRYPTO_memcmp(expect, user.s, user.len) != 0)
		return false;
	*f = got;
	return true;
}

/* This worker's own connection of this node. */
static struct flow_ref flow_here(const struct proxy *p, uint64_t conn)
{
	return (struct flow_ref){p->cfg.node, p->index, conn};
}

/* The flow the request arrived on (a token naming it routes nowhere). */
static bool flow_is_source(const struct proxy *p, const struct flow_ref *f,
			   const struct tp_source *src)
{
	return f->node == p->cfg.node && f->worker == p->index && src->conn &&
	       tp_conn_id(src->conn) == f->conn;
}

/* §16.4 (and, for a request leaving another node of ours, the same
 * again): remove every leading Route entry that names us; the flow token
 * among them that does not name the source flow is kept in *flow.
 * Returns the number of entries; *rest is the first Route left. */
static unsigned routes_pop_ours(const struct proxy *p, const struct sip_msg *m,
				const struct tp_source *src, const struct sip_addr **rest,
				bool *has_flow, struct flow_ref *flow)
{
	unsigned n = 0;
	const struct sip_addr *r = m->route;
	while (r && uri_is_us(p, &r->uri)) {
		struct flow_ref f;
		if (flow_token_parse(p, r->uri.user, &f)) {
			if (!*has_flow || !flow_is_source(p, &f, src))
				*flow = f;
			*has_flow = true;
		}
		r = r->next;
		n++;
	}
	*rest = r;
	return n;
}

/* Another node of our domain holds the flow: the hop is that node, over
 * mutual TLS proving our domain, with a Route naming the flow there. */
static bool hop_to_node(const struct proxy *p, const struct flow_ref *f, int dom, bool sips,
			struct hop *h)
{
	memset(h, 0, sizeof(*h));
	if (!p->cfg.ndomains)
		return false;
	for (unsigned i = 0; i < p->cfg.nnodes; i++) {
		const struct proxy_node *n = &p->cfg.nodes[i];
		if (n->number != f->node)
			continue;
		h->proto = TP_PROTO_TLS;
		memcpy(&h->addr, &n->addr, n->len);
		h->len = n->len;
		snprintf(h->domain, sizeof(h->domain), "%s", p->cfg.domains[dom].name);
		char token[40];
		flow_token_make(p, f, token);
		snprintf(h->push_route, sizeof(h->push_route), "<%s:%s@%s;lr>", sips ? "sips" : "sip",
			 token, p->cfg.domains[dom].name);
		return true;
	}
	return false;
}

/* A mutual-TLS peer proving one of our own domains is another node of
 * ours (the site certificate, docs/scaling.md): it checked the request
 * already; the peer policies are for other domains. */
static bool peer_is_our_node(const struct proxy *p, const struct tls_identity_set *peer)
{
	if (!peer || !p->cfg.node)
		return false;
	for (unsigned i = 0; i < p->cfg.ndomains; i++)
		if (tls_identity_match(peer, str_from_cstr(p->cfg.domains[i].name)))
			return true;
	return false;
}

/* ---- loop detection (§16.3 step 4, §16.6 step 8) ---- */

static void loop_hash_compute(const struct sip_msg *m, char out[9])
{
	uint32_t h = 2166136261u;
	struct str parts[6] = {m->ruri_raw, m->call_id, m->from ? m->from->tag : STR_NULL,
			       m->to ? m->to->tag : STR_NULL, STR_NULL, STR_NULL};
	const struct sip_hdr *pr = m->hdr_first[SIP_HDR_PROXY_REQUIRE];
	const struct sip_hdr *pa = m->hdr_first[SIP_HDR_PROXY_AUTHORIZATION];
	if (pr)
		parts[4] = pr->value;
	if (pa)
		parts[5] = pa->value;
	for (int i = 0; i < 6; i++) {
		for (size_t k = 0; k < parts[i].len; k++)
			h = (h ^ (unsigned char)parts[i].s[k]) * 16777619u;
		h = (h ^ 0xff) * 16777619u;
	}
	h = (h ^ m->cseq) * 16777619u;
	snprintf(out, 9, "%08x", h);
}

static bool loop_detected(const struct proxy *p, const struct sip_msg *m, const char *hash)
{
	for (const struct sip_via *v = m->via; v; v = v->next) {
		/* Our branches: TXN_BRANCH_LEN bytes, '.', 8 hex of the hash. */
		if (v->branch.len != TXN_BRANCH_LEN + 9 || txn_branch_worker(v->branch) < 0)
			continue;
		struct sip_uri hu = {0};
		hu.scheme_id = SIP_SCHEME_SIP;
		hu.host = v->host;
		hu.host_type = v->host_type;
		hu.has_port = v->has_port;
		hu.port = v->port;
		if (!is_our_address(p, &hu) && !is_our_domain(p, v->host, NULL))
			continue;
		if (memcmp(v->branch.s + TXN_BRANCH_LEN + 1, hash, 8) == 0)
			return true;
	}
	return false;
}

/* ---- contexts ---- */

static void ctx_unref(struct proxy_ctx *ctx)
{
	if (--ctx->refs)
		return;
	for (int i = 0; i < ctx->nbranches; i++) {
		if (ctx->branches[i]->dnsq)
			dns_query_cancel(ctx->branches[i]->dnsq);
		free(ctx->branches[i]->ruri);
		free(ctx->branches[i]);
	}
	if (ctx->src.conn)
		tp_conn_unref(ctx->src.conn);
	free(ctx->best);
	free(ctx);
}

/* Send a response towards the request's sender: through the server
 * transaction while it lives, directly afterwards (2xx of a fork). */
static void ctx_send_response(struct proxy_ctx *ctx, int status, const char *buf, size_t len)
{
	if (status >= 100 && status < 700)
		ctx->p->stats.by_class[status / 100]++;
	if (ctx->st) {
		txn_server_respond(ctx->st, status, buf, len);
		return;
	}
	if (ctx->src.conn) {
		tp_conn_send(ctx->src.conn, buf, len);
	} else if (ctx->src.proto == TP_PROTO_UDP) {
		tp_udp_send(ctx->p->tp, ctx->src.udp_fd, (struct sockaddr *)&ctx->src.remote,
			    ctx->src.remote_len, buf, len);
	}
}

static void ctx_reply(struct proxy_ctx *ctx, int status, const char *reason, const char *extra)
{
	if (!ctx->st || ctx->final_sent)
		return;
	ctx->final_sent = status >= 200;
	ctx->p->stats.local_replies++;
	if (status >= 100 && status < 700)
		ctx->p->stats.by_class[status / 100]++;
	txn_server_reply(ctx->st, status, reason, str_from_cstr(extra ? extra : ""));
}

static void branch_try_next(struct proxy_branch *b);
static int hops_order(struct proxy *p, struct proxy_ctx *ctx, struct str domain, struct hop *hops,
		      int n);

/* All branches have a final answer: send the best one (§16.7 step 6). */
static void ctx_check_done(struct proxy_ctx *ctx)
{
	if (ctx->final_sent)
		return;
	for (int i = 0; i < ctx->nbranches; i++)
		if (!ctx->branches[i]->status)
			return;
	ctx->final_sent = true;
	if (ctx->best) {
		ctx_send_response(ctx, ctx->best_status, ctx->best, ctx->best_len);
		ctx->p->stats.responses_forwarded++;
		return;
	}
	int status = ctx->best_status ? ctx->best_status : 408;
	ctx->final_sent = false;
	ctx_reply(ctx, status, NULL, NULL);
}

/* §16.7 step 6 preference: 6xx, then the lowest class among 3xx-5xx. */
static bool better(int candidate, int current)
{
	if (!current)
		return true;
	if (current >= 600)
		return false;
	if (candidate >= 600)
		return true;
	return candidate / 100 < current / 100;
}

static void ctx_cancel_pending(struct proxy_ctx *ctx)
{
	for (int i = 0; i < ctx->nbranches; i++)
		if (!ctx->branches[i]->status && ctx->branches[i]->ct)
			txn_client_cancel(ctx->branches[i]->ct);
}

/* ---- forwarding ---- */

/* Builds the request for branch `b` from `m` (the original request) into
 * p->out and starts its client transaction to the branch's next hop. */
/* §18.2.1 and RFC 3581 §4: the received top Via gets received= when the
 * packet came from another address than its sent-by names, and rport= the
 * source port when it asked for it. */
static void via_annotate(const struct tp_source *src, const struct sip_msg *m, struct sip_edit *e,
			 char *ip, size_t ipsize)
{
	const struct sip_via *v = m->via;
	char host[64];
	tp_addr_format((const struct sockaddr *)&src->remote, host, sizeof(host));
	/* host is "a.b.c.d:port" or "[v6]:port": keep the address part. */
	char *colon = strrchr(host, ':');
	if (colon)
		*colon = '\0';
	const char *addr = host;
	if (host[0] == '[') {
		addr = host + 1;
		char *close = strchr(host, ']');
		if (close)
			*close = '\0';
	}
	snprintf(ip, ipsize, "%s", addr);
	struct str sent = v->host;
	if (v->host_type == SIP_HOST_IPV6 && sent.len >= 2)
		sent = str_make(sent.s + 1, sent.len - 2);
	if (!str_case_eq(sent, str_from_cstr(ip)))
		e->via_received = str_from_cstr(ip);
	if (v->has_rport && v->rport.len == 0) {
		uint16_t port = src->remote.ss_family == AF_INET
					? ntohs(((const struct sockaddr_in *)&src->remote)->sin_port)
					: ntohs(((const struct sockaddr_in6 *)&src->remote)->sin6_port);
		e->via_rport = port;
		e->via_received = str_from_cstr(ip); /* RFC 3581 §4: always with rport */
	}
}

/* Writes our Via for a hop over `proto` into `via`. */
static void via_make(struct proxy *p, struct proxy_ctx *ctx, enum tp_proto proto, char *via,
		     size_t size)
{
	const struct proxy_local *local = local_for(p, proto);
	char branch[TXN_BRANCH_LEN + 1], host[64] = "invalid";
	txn_branch_make(p->txn, branch);
	if (local)
		tp_addr_format((const struct sockaddr *)&local->addr, host, sizeof(host));
	/* RFC 5923: over TLS we offer the connection for requests back
	 * (;alias); our certificate lets the peer decide to honour it. */
	snprintf(via, size, "SIP/2.0/%s %s;branch=%s.%s%s", proto_via_name(proto), host, branch,
		 ctx->loop_hash,
		 proto == TP_PROTO_UDP ? ";rport" : proto == TP_PROTO_TLS ? ";alias" : "");
}

static int branch_send(struct proxy_branch *b, const struct sip_msg *m)
{
	struct proxy_ctx *ctx = b->ctx;
	struct proxy *p = ctx->p;
	const struct hop *h = &b->hops[b->next_hop];
	enum tp_proto proto = h->proto;
	char via[512];
	via_make(p, ctx, proto, via, sizeof(via));
	char rr[400] = "";
	if (ctx->record_route) {
		/* The flow token names the UA-side connection, so in-dialog
		 * requests find it again (RFC 5626 §5.3): the connection the
		 * request came from when its peer is a UA (no verified
		 * certificate), else the flow the request goes down. */
		char token[48] = "";
		struct flow_ref f;
		if (ctx->src.conn && !tp_conn_authenticated(ctx->src.conn)) {
			f = flow_here(p, tp_conn_id(ctx->src.conn));
			flow_token_make(p, &f, token);
		} else if (h->conn && !tp_conn_authenticated(h->conn)) {
			f = flow_here(p, tp_conn_id(h->conn));
			flow_token_make(p, &f, token);
		} else if (h->flow_conn_id) {
			f = (struct flow_ref){p->cfg.node, h->flow_worker, h->flow_conn_id};
			flow_token_make(p, &f, token);
		}
		snprintf(rr, sizeof(rr), "<%s:%s%s%s;lr>", ctx->sips ? "sips" : "sip", token,
			 token[0] ? "@" : "",
			 p->cfg.ndomains ? p->cfg.domains[ctx->rr_domain].name : "invalid");
	}
	struct sip_edit e = {
		.new_ruri = b->ruri ? str_from_cstr(b->ruri) : STR_NULL,
		.add_via = str_from_cstr(via),
		.decrement_max_forwards = true,
		.add_record_route = str_from_cstr(rr),
		.extra_headers = str_from_cstr(ctx->tag_header),
	};
	/* Route popping happened before the targets were chosen: the edit
	 * repeats it on the copy (§16.4). */
	e.pop_routes = ctx->popped_routes;
	e.push_route = str_from_cstr(h->push_route);
	if (h->push_route[0])
		p->stats.to_node++;
	char src_ip[64];
	via_annotate(&ctx->src, m, &e, src_ip, sizeof(src_ip));
	int n = sip_msg_build(m, &e, p->out, sizeof(p->out));
	if (n < 0)
		return n;
	/* RFC 3261 §18.1.1: a request over 1300 bytes does not go over UDP;
	 * the same address over TCP instead (with a Via saying so). */
	if (proto == TP_PROTO_UDP && !h->conn && !h->flow_conn_id && n > 1300) {
		proto = TP_PROTO_TCP;
		via_make(p, ctx, proto, via, sizeof(via));
		e.add_via = str_from_cstr(via);
		n = sip_msg_build(m, &e, p->out, sizeof(p->out));
		if (n < 0)
			return n;
	}
	struct txn_target t = {.proto = proto, .addr_len = h->len, .conn = h->conn,
			       .flow_worker = h->flow_worker, .flow_conn_id = h->flow_conn_id};
	memcpy(&t.addr, &h->addr, h->len);
	snprintf(t.domain, sizeof(t.domain), "%s", h->domain);
	if (h->proto == TP_PROTO_TLS) {
		/* Present our certificate for mutual TLS (RFC 5922 §7.4). */
		t.tls = p->cfg.ndomains ? p->cfg.domains[0].client_tls : NULL;
		if (m->from) {
			int d;
			if (is_our_domain(p, m->from->uri.host, &d))
				t.tls = p->cfg.domains[d].client_tls;
		}
		if (!t.tls && !h->conn && !h->flow_conn_id)
			return -ENOTCONN;
	}
	struct txn_client *ct;
	int rc = txn_client_start(p->txn, &t, p->out, (size_t)n, &ct);
	if (rc < 0)
		return rc;
	/* The transaction may already have failed and reported (and been
	 * detached); attach only while it lives. */
	if (b->status == 0) {
		b->ct = ct;
		txn_client_set_user(ct, b);
		ctx->refs++;
	}
	p->stats.forwarded++;
	return 0;
}

static void branch_fail(struct proxy_branch *b, int status)
{
	struct proxy_ctx *ctx = b->ctx;
	b->status = status;
	if (better(status, ctx->best_status) && !ctx->best) {
		ctx->best_status = status;
	}
	ctx_check_done(ctx);
}

/* RFC 3263 §4.3: on a transport error or 503 try the next target. */
static void branch_try_next(struct proxy_branch *b)
{
	struct proxy_ctx *ctx = b->ctx;
	while (++b->next_hop < b->nhops) {
		if (!ctx->st) /* nothing left to answer */
			break;
		const struct sip_msg *m = txn_server_request(ctx->st);
		if (!m)
			break;
		if (b->next_hop > 0)
			ctx->p->stats.branch_failovers++;
		if (branch_send(b, m) == 0)
			return;
	}
	branch_fail(b, 503);
}

/* Choose the hops for a next-hop URI (Route or Request-URI, §16.6 step 7). */
static int hops_for_uri(struct proxy *p, struct proxy_ctx *ctx, const struct sip_uri *u,
			struct hop *hops, int max)
{
	int n = 0;
	char host[256];
	struct str hs = u->host;
	if (u->host_type == SIP_HOST_IPV6 && hs.len >= 2)
		hs = str_make(hs.s + 1, hs.len - 2);
	str_to_cbuf(hs, host, sizeof(host));
	enum tp_proto proto = u->scheme_id == SIP_SCHEME_SIPS ? TP_PROTO_TLS : TP_PROTO_UDP;
	struct str tparam;
	if (sip_params_find(u->params, "transport", &tparam)) {
		if (str_case_eq_cstr(tparam, "tcp"))
			proto = u->scheme_id == SIP_SCHEME_SIPS ? TP_PROTO_TLS : TP_PROTO_TCP;
		else if (str_case_eq_cstr(tparam, "tls"))
			proto = TP_PROTO_TLS;
	}
	/* Operator-configured next hops for a domain. */
	for (unsigned i = 0; i < p->cfg.nhops && n < max; i++) {
		if (!str_case_eq_cstr(u->host, p->cfg.hops[i].domain))
			continue;
		hops[n].proto = p->cfg.hops[i].proto;
		memcpy(&hops[n].addr, &p->cfg.hops[i].addr, p->cfg.hops[i].len);
		hops[n].len = p->cfg.hops[i].len;
		snprintf(hops[n].domain, sizeof(hops[n].domain), "%s", host);
		hops[n].conn = NULL;
		n++;
	}
	if (n == 0 && (u->host_type == SIP_HOST_IPV4 || u->host_type == SIP_HOST_IPV6)) {
		char spec[300];
		uint16_t port = u->has_port ? u->port : (proto == TP_PROTO_TLS ? 5061 : 5060);
		snprintf(spec, sizeof(spec), u->host_type == SIP_HOST_IPV6 ? "[%s]:%u" : "%s:%u", host,
			 port);
		if (tp_addr_parse(spec, port, &hops[0].addr, &hops[0].len) == 0) {
			hops[0].proto = proto;
			snprintf(hops[0].domain, sizeof(hops[0].domain), "%s", host);
			hops[0].conn = NULL;
			n = 1;
		}
	}
	return hops_order(p, ctx, u->host, hops, n);
}

/* SIPS: every hop TLS (RFC 5630 §4.1, spec rule 13). sip: requests: the
 * peer's sip_over_tls policy (require: TLS only; prefer, the default: TLS
 * first when the request arrived over TLS, best-effort TLS, rule 14; off:
 * as resolved). The scheme is never changed. */
static int hops_order(struct proxy *p, struct proxy_ctx *ctx, struct str domain, struct hop *hops,
		      int n)
{
	const struct policy_peer *peer = policy_peer_find(&p->cfg.policy, domain);
	enum policy_sip_over_tls mode = peer ? peer->sip_over_tls : POLICY_TLS_PREFER;
	int k = 0;
	for (int i = 0; i < n; i++)
		if ((!ctx->sips && mode != POLICY_TLS_REQUIRE) || hops[i].proto == TP_PROTO_TLS)
			hops[k++] = hops[i];
	n = k;
	if (mode == POLICY_TLS_PREFER && (ctx->inbound_tls || peer)) {
		struct hop tmp[PROXY_MAX_TARGETS];
		int t = 0;
		for (int i = 0; i < n; i++)
			if (hops[i].proto == TP_PROTO_TLS)
				tmp[t++] = hops[i];
		for (int i = 0; i < n; i++)
			if (hops[i].proto != TP_PROTO_TLS)
				tmp[t++] = hops[i];
		memcpy(hops, tmp, sizeof(struct hop) * (size_t)n);
	}
	return n;
}

static struct proxy_branch *branch_add(struct proxy_ctx *ctx)
{
	if (ctx->nbranches >= PROXY_MAX_BRANCHES)
		return NULL;
	struct proxy_branch *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->ctx = ctx;
	ctx->branches[ctx->nbranches++] = b;
	return b;
}

static enum tp_proto proto_from_dns(enum dns_transport t)
{
	return t == DNS_TRANSPORT_UDP ? TP_PROTO_UDP : t == DNS_TRANSPORT_TCP ? TP_PROTO_TCP : TP_PROTO_TLS;
}

/* RFC 3263 answered for branch `b`: its targets become the hops, tried
 * in order (§4.3); the TLS domain is the URI's (RFC 5922 §7.3). */
static void branch_resolved_cb(int status, const struct dns_targets *t, void *arg)
{
	struct proxy_branch *b = arg;
	struct proxy_ctx *ctx = b->ctx;
	struct proxy *p = ctx->p;
	b->dnsq = NULL;
	if (ctx->cancelled) {
		branch_fail(b, 487); /* CANCELled while we were resolving */
		ctx_unref(ctx);
		return;
	}
	if (status == 0) {
		for (size_t i = 0; i < t->n && b->nhops < PROXY_MAX_TARGETS; i++) {
			struct hop *h = &b->hops[b->nhops];
			memset(h, 0, sizeof(*h));
			h->proto = proto_from_dns(t->t[i].transport);
			memcpy(&h->addr, &t->t[i].addr, t->t[i].addrlen);
			h->len = t->t[i].addrlen;
			snprintf(h->domain, sizeof(h->domain), "%s", t->t[i].domain);
			b->nhops++;
		}
		if (t->n)
			b->nhops = hops_order(p, ctx, str_from_cstr(t->t[0].domain), b->hops, b->nhops);
	}
	if (b->nhops == 0) {
		char dom[256] = "";
		if (t && t->n)
			snprintf(dom, sizeof(dom), "%s", t->t[0].domain);
		if (log_ratelimit_allow(&p->rl))
			LOG_WARN("proxy.resolve_failed", "status=%d domain=%s", status, dom[0] ? dom : "-");
		branch_fail(b, ctx->sips && status == 0 ? 480 : 503);
		ctx_unref(ctx);
		return;
	}
	b->next_hop = -1;
	branch_try_next(b);
	ctx_unref(ctx);
}

/* Resolve `u` for branch `b` by RFC 3263 (the callback sends). */
static int branch_resolve(struct proxy_branch *b, const struct sip_uri *u)
{
	struct proxy_ctx *ctx = b->ctx;
	struct proxy *p = ctx->p;
	if (!p->dns)
		return -ENOSYS;
	int rc = dns_resolve_uri(p->dns, u, branch_resolved_cb, b, &b->dnsq);
	if (rc == 0)
		ctx->refs++;
	return rc;
}

/* A hop for a registered binding: the flow it was registered over
 * (RFC 5626 §5.3, spec rule 16), else its Contact URI (§16.6 step 7), else
 * the address the REGISTER came from. */
static bool hop_for_binding(struct proxy *p, struct proxy_ctx *ctx, const struct loc_binding *bd,
			    struct hop *h)
{
	memset(h, 0, sizeof(*h));
	if (bd->flow.conn_id && bd->flow.node != p->cfg.node) {
		/* Registered at another node of ours: through that node. */
		struct flow_ref f = {bd->flow.node, bd->flow.worker, bd->flow.conn_id};
		return hop_to_node(p, &f, ctx->our_domain, ctx->sips, h);
	}
	if (bd->flow.conn_id) {
		if (bd->flow.worker != p->index) {
			/* Owned by another worker: the bytes are posted there. */
			h->proto = (enum tp_proto)bd->flow.proto;
			h->flow_worker = bd->flow.worker;
			h->flow_conn_id = bd->flow.conn_id;
			memcpy(&h->addr, &bd->flow.remote, bd->flow.remote_len);
			h->len = bd->flow.remote_len;
			return true;
		}
		struct tp_conn *c = tp_conn_by_id(p->tp, bd->flow.conn_id);
		if (!c)
			return false;
		h->conn = c;
		h->proto = tp_conn_proto(c);
		socklen_t len;
		const struct sockaddr *ra = tp_conn_remote(c, &len);
		memcpy(&h->addr, ra, len);
		h->len = len;
		return true;
	}
	struct sip_uri cu;
	if (sip_uri_parse(str_from_cstr(bd->contact), &cu, NULL, NULL) == 0 &&
	    hops_for_uri(p, ctx, &cu, h, 1) == 1)
		return true;
	h->proto = TP_PROTO_UDP;
	memcpy(&h->addr, &bd->flow.remote, bd->flow.remote_len);
	h->len = bd->flow.remote_len;
	return true;
}

/* ---- request processing ---- */

static int reject(struct proxy *p, struct txn_server *st, int status, const char *reason,
		  const char *extra)
{
	p->stats.local_replies++;
	if (status >= 100 && status < 700)
		p->stats.by_class[status / 100]++;
	return txn_server_reply(st, status, reason, str_from_cstr(extra ? extra : ""));
}

static bool dialog_forming(const struct sip_msg *m)
{
	if (m->to && m->to->has_tag)
		return false;
	return m->method_id == SIP_METHOD_INVITE || m->method_id == SIP_METHOD_SUBSCRIBE ||
	       m->method_id == SIP_METHOD_REFER || m->method_id == SIP_METHOD_NOTIFY;
}

/* RFC 3261 §22: is this request from a user of ours who proved it? On
 * failure the challenge (401 for the registrar, 407 for the proxy) has been
 * sent. Digest authenticates the request only, never the connection
 * (RFC 5922 §8.1, spec rule 12). `user` must be the authenticated name
 * (the AOR user part). */
static bool digest_ok(struct proxy *p, struct txn_server *st, const struct sip_msg *m, bool proxy,
		      struct str realm, struct str user)
{
	struct digest_credentials cr;
	bool stale = false;
	int rc = digest_credentials_find(m, proxy ? SIP_HDR_PROXY_AUTHORIZATION : SIP_HDR_AUTHORIZATION,
					 realm, &cr);
	if (rc == -EBADMSG || rc == -EMSGSIZE) {
		reject(p, st, 400, "Bad Credentials", NULL);
		return false;
	}
	if (rc == 0) {
		const struct credential_entry *e = credentials_lookup(p->cfg.users, cr.username, cr.realm);
		/* Some UAs (SIPp among them) put another URI in uri; with
		 * check_uri = no the response is checked against what they sent
		 * (the nonce count still stops replays). */
		struct str uri = p->cfg.auth_check_uri ? m->ruri_raw : cr.uri;
		enum digest_verdict v = digest_verify(p->cfg.digest, &cr, m->method, uri, realm, e);
		if (v == DIGEST_VERIFY_OK) {
			/* Authenticated as cr.username: it may act only as itself. */
			if (str_eq(cr.username, user))
				return true;
			reject(p, st, 403, "Not Your Address", NULL);
			return false;
		}
		if (v == DIGEST_VERIFY_URI_MISMATCH) {
			reject(p, st, 400, "Digest URI Mismatch", NULL);
			return false;
		}
		stale = v == DIGEST_VERIFY_STALE || v == DIGEST_VERIFY_REPLAY;
		if (log_ratelimit_allow(&p->rl))
			LOG_INFO("auth", "user=%.*s realm=%.*s verdict=%s", (int)cr.username.len, cr.username.s,
				 (int)realm.len, realm.s, digest_verdict_name(v));
	}
	char hdrs[2048];
	int n = digest_challenge_headers_build(p->cfg.digest, proxy, realm, stale, hdrs, sizeof(hdrs));
	if (n < 0) {
		reject(p, st, 500, NULL, NULL);
		return false;
	}
	reject(p, st, proxy ? 407 : 401, NULL, hdrs);
	return false;
}

static void handle_register(struct proxy *p, struct txn_server *st, const struct sip_msg *m,
			    const struct tp_source *src)
{
	if (p->cfg.digest && p->cfg.auth_register && m->to &&
	    (m->to->uri.scheme_id == SIP_SCHEME_SIP || m->to->uri.scheme_id == SIP_SCHEME_SIPS) &&
	    !digest_ok(p, st, m, false, m->to->uri.host, m->to->uri.user))
		return;
	struct loc_flow flow = {.proto = (int)src->proto, .node = p->cfg.node, .worker = p->index,
				.udp_fd = src->udp_fd};
	memcpy(&flow.remote, &src->remote, src->remote_len);
	flow.remote_len = src->remote_len;
	if (src->conn)
		flow.conn_id = tp_conn_id(src->conn);
	struct registrar_result res;
	registrar_handle(p->loc, &p->cfg.registrar, m, &flow, src->proto == TP_PROTO_TLS, &res);
	p->stats.registrations++;
	if (res.status == 200 && src->conn)
		tp_conn_mark_flow(src->conn); /* its closing must clean the store */
	char aor[LOC_MAX_AOR] = "?";
	if (m->to)
		registrar_aor(&m->to->uri, aor, sizeof(aor));
	LOG_INFO("registrar", "aor=%s status=%d contacts=%u proto=%s conn=%llu", aor, res.status,
		 m->contact_count, tp_proto_name(src->proto),
		 src->conn ? (unsigned long long)tp_conn_id(src->conn) : 0ull);
	reject(p, st, res.status, res.reason, res.extra);
}

/* Send bytes to a hop without a transaction (ACK for 2xx, §16.11): down
 * a flow, over UDP, or on a connection to the hop (opened if needed; a TLS
 * peer must prove the hop's domain like any other, RFC 5922 §7.3). */
static void stateless_send(struct proxy *p, const struct hop *h, const char *buf, size_t len)
{
	p->stats.stateless_forwarded++;
	if (h->flow_conn_id) {
		txn_layer_send_flow(p->txn, h->flow_worker, h->flow_conn_id, buf, len);
		return;
	}
	if (h->conn) {
		tp_conn_send(h->conn, buf, len);
		return;
	}
	if (h->proto == TP_PROTO_UDP) {
		tp_udp_send(p->tp, -1, (const struct sockaddr *)&h->addr, h->len, buf, len);
		return;
	}
	struct tp_conn *c = tp_conn_find(p->tp, h->proto, (const struct sockaddr *)&h->addr,
					 str_from_cstr(h->domain));
	if (c) {
		tp_conn_send(c, buf, len);
		return;
	}
	unsigned ow;
	uint64_t oid;
	if (h->proto == TP_PROTO_TLS &&
	    tp_conn_find_shared(p->tp, h->proto, (const struct sockaddr *)&h->addr,
				str_from_cstr(h->domain), false, &ow, &oid) == 0) {
		txn_layer_send_flow(p->txn, ow, oid, buf, len);
		return;
	}
	struct tls_ctx *tls = p->cfg.ndomains ? p->cfg.domains[0].client_tls : NULL;
	if (tp_connect(p->tp, h->proto, (const struct sockaddr *)&h->addr, h->len, tls,
		       str_from_cstr(h->domain), &c) == 0) {
		tp_conn_send(c, buf, len);
		tp_conn_unref(c);
	}
}

/* A stateless message waiting for RFC 3263 to name its next hop. */
struct stateless_job {
	struct proxy *p;
	struct stateless_job *next, **prev; /* pending jobs, freed at shutdown */
	struct dns_query *q;
	bool sips;
	bool inbound_tls;
	size_t len;
	char buf[];
};

static void stateless_job_unlink(struct stateless_job *j)
{
	*j->prev = j->next;
	if (j->next)
		j->next->prev = j->prev;
}

static void stateless_resolved_cb(int status, const struct dns_targets *t, void *arg)
{
	struct stateless_job *j = arg;
	struct proxy *p = j->p;
	stateless_job_unlink(j);
	struct hop hops[PROXY_MAX_TARGETS];
	int n = 0;
	for (size_t i = 0; status == 0 && i < t->n && n < PROXY_MAX_TARGETS; i++) {
		struct hop *h = &hops[n++];
		memset(h, 0, sizeof(*h));
		h->proto = proto_from_dns(t->t[i].transport);
		memcpy(&h->addr, &t->t[i].addr, t->t[i].addrlen);
		h->len = t->t[i].addrlen;
		snprintf(h->domain, sizeof(h->domain), "%s", t->t[i].domain);
	}
	struct proxy_ctx tmp = {.p = p, .sips = j->sips, .inbound_tls = j->inbound_tls};
	if (n)
		n = hops_order(p, &tmp, str_from_cstr(hops[0].domain), hops, n);
	/* No transaction, no failover: the ACK goes where the INVITE went, a
	 * connection already open and verified for the domain (the INVITE's
	 * target answered on it); else the first target in policy order. */
	int pick = -1;
	for (int i = 0; i < n && pick < 0; i++)
		if (hops[i].proto != TP_PROTO_UDP &&
		    (tp_conn_find(p->tp, hops[i].proto, (struct sockaddr *)&hops[i].addr,
				  str_from_cstr(hops[i].domain)) ||
		     tp_conn_find_shared(p->tp, hops[i].proto, (struct sockaddr *)&hops[i].addr,
					 str_from_cstr(hops[i].domain), false, &(unsigned){0},
					 &(uint64_t){0}) == 0))
			pick = i;
	if (pick < 0 && n)
		pick = 0;
	if (pick >= 0)
		stateless_send(p, &hops[pick], j->buf, j->len);
	free(j);
}

/* Stateless forwarding of an ACK for a 2xx (§16.11): Route processing,
 * then to the next hop, no transaction. */
static void forward_ack(struct proxy *p, const struct sip_msg *m, const struct tp_source *src)
{
	const struct sip_addr *route;
	struct flow_ref fl = {0};
	bool has_flow = false;
	unsigned popped = routes_pop_ours(p, m, src, &route, &has_flow, &fl);
	struct hop h = {0};
	const struct sip_uri *resolve = NULL;
	struct proxy_ctx tmp = {.p = p, .sips = m->ruri.scheme_id == SIP_SCHEME_SIPS,
				.inbound_tls = src->proto == TP_PROTO_TLS};
	if (route) {
		if (hops_for_uri(p, &tmp, &route->uri, &h, 1) != 1)
			resolve = &route->uri;
	} else if (has_flow && !flow_is_source(p, &fl, src)) {
		struct tp_conn *c = fl.node == p->cfg.node && fl.worker == p->index
					    ? tp_conn_by_id(p->tp, fl.conn)
					    : NULL;
		if (fl.node != p->cfg.node) {
			if (!hop_to_node(p, &fl, 0, tmp.sips, &h))
				return; /* no such node */
		} else if (c) {
			h.conn = c;
			h.proto = tp_conn_proto(c);
		} else if (fl.worker != p->index) {
			h.proto = TP_PROTO_TLS;
			h.flow_worker = fl.worker;
			h.flow_conn_id = fl.conn;
		} else {
			return; /* the flow is gone */
		}
	} else if (hops_for_uri(p, &tmp, &m->ruri, &h, 1) != 1) {
		resolve = &m->ruri;
	}
	char via[512], branch[TXN_BRANCH_LEN + 1], host[64] = "invalid";
	txn_branch_make(p->txn, branch);
	const struct proxy_local *local = local_for(p, resolve ? TP_PROTO_TLS : h.proto);
	if (local)
		tp_addr_format((const struct sockaddr *)&local->addr, host, sizeof(host));
	snprintf(via, sizeof(via), "SIP/2.0/%s %s;branch=%s",
		 proto_via_name(resolve ? TP_PROTO_TLS : h.proto), host, branch);
	struct sip_edit e = {.add_via = str_from_cstr(via), .decrement_max_forwards = true,
			     .pop_routes = popped, .push_route = str_from_cstr(h.push_route)};
	char src_ip[64];
	via_annotate(src, m, &e, src_ip, sizeof(src_ip));
	int n = sip_msg_build(m, &e, p->out, sizeof(p->out));
	if (n < 0)
		return;
	if (!resolve) {
		stateless_send(p, &h, p->out, (size_t)n);
		return;
	}
	struct stateless_job *j = malloc(sizeof(*j) + (size_t)n);
	if (!j || !p->dns) {
		free(j);
		return;
	}
	j->p = p;
	j->sips = tmp.sips || resolve->scheme_id == SIP_SCHEME_SIPS;
	j->inbound_tls = src->proto == TP_PROTO_TLS;
	j->len = (size_t)n;
	memcpy(j->buf, p->out, (size_t)n);
	if (dns_resolve_uri(p->dns, resolve, stateless_resolved_cb, j, &j->q) < 0) {
		free(j);
		return;
	}
	j->next = p->jobs;
	if (p->jobs)
		p->jobs->prev = &j->next;
	j->prev = &p->jobs;
	p->jobs = j;
}

static void handle_cancel(struct proxy *p, struct txn_server *st, const struct sip_msg *m)
{
	/* §16.10: answer the CANCEL, cancel the pending branches. */
	struct txn_server *inv = txn_server_find_invite(p->txn, m);
	struct proxy_ctx *ctx = inv ? txn_server_user(inv) : NULL;
	if (!ctx) {
		reject(p, st, 481, NULL, NULL);
		return;
	}
	reject(p, st, 200, NULL, NULL);
	ctx->cancelled = true;
	ctx_cancel_pending(ctx);
	if (ctx->nbranches == 0)
		ctx_reply(ctx, 487, NULL, NULL);
}

static void request_cb(struct txn_layer *l, struct txn_server *st, const struct sip_msg *m,
		       const struct tp_source *src, void *arg)
{
	struct proxy *p = arg;
	(void)l;
	p->stats.requests++;
	if ((unsigned)m->method_id <= SIP_METHOD_UPDATE)
		p->stats.by_method[m->method_id]++;
	if (!st) {
		if (m->method_id == SIP_METHOD_ACK && sip_msg_check(m, NULL) == 0)
			forward_ack(p, m, src);
		return;
	}
	struct sip_parse_error err;
	int status = sip_msg_check(m, &err);
	if (status) {
		char warn[200];
		snprintf(warn, sizeof(warn), "Warning: 399 sipsd \"%s\"\r\n", err.reason);
		reject(p, st, status, NULL, warn);
		return;
	}
	if (m->method_id == SIP_METHOD_INVITE)
		txn_server_reply(st, 100, NULL, STR_NULL); /* §16.2: quench retransmissions */
	/* §16.3 step 2: a scheme we cannot route. */
	if (m->ruri.scheme_id != SIP_SCHEME_SIP && m->ruri.scheme_id != SIP_SCHEME_SIPS) {
		reject(p, st, 416, NULL, NULL);
		return;
	}
	/* §16.3 step 3: Max-Forwards. */
	if (m->max_forwards == 0) {
		/* OPTIONS for us (no user part) is answered as a UAS would;
		 * anything else stops here (RFC 4475 §3.3.11). */
		if (m->method_id == SIP_METHOD_OPTIONS && !m->ruri.has_user &&
		    uri_is_us(p, &m->ruri))
			reject(p, st, 200, NULL, "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER\r\n");
		else
			reject(p, st, 483, NULL, NULL);
		return;
	}
	char hash[9];
	loop_hash_compute(m, hash);
	if (loop_detected(p, m, hash)) {
		reject(p, st, 482, NULL, NULL);
		return;
	}
	/* §16.3 step 6: Proxy-Require lists extensions we must support: none. */
	const struct sip_hdr *preq = m->hdr_first[SIP_HDR_PROXY_REQUIRE];
	if (preq) {
		char uns[600];
		snprintf(uns, sizeof(uns), "Unsupported: %.*s\r\n", (int)preq->value.len, preq->value.s);
		reject(p, st, 420, NULL, uns);
		return;
	}
	/* RFC 5923 §5 / spec rule 17: ;alias only on mutually authenticated
	 * TLS; elsewhere it is ignored (and said so). */
	if (m->via && m->via->has_alias && src->conn && !tp_conn_alias(src->conn)) {
		struct sockaddr_storage sb;
		socklen_t sbl;
		char spec[300];
		const struct sip_via *v = m->via;
		snprintf(spec, sizeof(spec), "%.*s:%u", (int)v->host.len, v->host.s,
			 v->has_port ? v->port : 5061);
		if (src->proto == TP_PROTO_TLS && tp_conn_authenticated(src->conn) &&
		    tp_addr_parse(spec, 5061, &sb, &sbl) == 0) {
			tp_conn_set_alias(src->conn, (struct sockaddr *)&sb, sbl);
			LOG_INFO("conn.alias", "conn=%llu honoured=yes alias=%s",
				 (unsigned long long)tp_conn_id(src->conn), spec);
		} else if (log_ratelimit_allow(&p->rl)) {
			LOG_INFO("conn.alias", "conn=%llu honoured=no reason=\"no verified client certificate\"",
				 (unsigned long long)tp_conn_id(src->conn));
		}
	}
	/* Spec §4.1 and §4.5: authoritative proxy and Via trail. */
	const struct tls_identity_set *peer = NULL;
	if (src->conn && src->proto == TP_PROTO_TLS && tp_conn_authenticated(src->conn))
		peer = tp_conn_identities(src->conn);
	struct policy_result pr;
	if (peer_is_our_node(p, peer))
		memset(&pr, 0, sizeof(pr));
	else
		policy_check_inbound(&p->cfg.policy, m, peer, domain_is_ours_cb, p, &pr);
	if (pr.status)
		p->stats.policy_rejected++;
	else if (pr.log)
		p->stats.policy_logged++;
	if (pr.log) {
		char addr[64];
		tp_addr_format((const struct sockaddr *)&src->remote, addr, sizeof(addr));
		LOG_WARN("policy", "peer=%s method=%.*s %s", addr, (int)m->method.len, m->method.s, pr.why);
	}
	if (pr.status) {
		reject(p, st, pr.status, NULL,
		       "Warning: 399 sipsd \"From domain not authorised for the sending peer\"\r\n");
		return;
	}
	/* Requests from our own users' UAs prove who they are (RFC 3261 §22.3):
	 * out-of-dialog requests with a From of our domains, not from an
	 * authenticated peer proxy. REGISTER is the registrar's (401). */
	if (p->cfg.digest && p->cfg.auth_requests && !peer && m->method_id != SIP_METHOD_CANCEL &&
	    m->method_id != SIP_METHOD_REGISTER && !(m->to && m->to->has_tag) && m->from &&
	    is_our_domain(p, m->from->uri.host, NULL) &&
	    !digest_ok(p, st, m, true, m->from->uri.host, m->from->uri.user))
		return;
	if (m->method_id == SIP_METHOD_CANCEL) {
		handle_cancel(p, st, m);
		return;
	}
	/* §16.4: Route processing. */
	bool has_flow = false;
	struct flow_ref fl = {0};
	if (m->route && uri_is_us(p, &m->ruri) &&
	    (sip_params_find(m->ruri.params, "lr", NULL) || flow_token_parse(p, m->ruri.user, &fl))) {
		/* The previous hop was a strict router: the Request-URI is our
		 * Record-Route URI and the real one is the last Route value. */
		has_flow = flow_token_parse(p, m->ruri.user, &fl);
		const struct sip_addr *last = m->route;
		while (last->next)
			last = last->next;
		struct sip_edit e = {.new_ruri = last->uri.raw, .pop_last_route = true};
		int n = sip_msg_build(m, &e, p->strict_buf, sizeof(p->strict_buf));
		if (!p->strict_msg)
			p->strict_msg = malloc(sizeof(*p->strict_msg));
		if (n < 0 || !p->strict_msg ||
		    sip_msg_parse(p->strict_msg, p->strict_buf, (size_t)n, SIP_PARSE_STREAM, NULL) < 0 ||
		    txn_server_replace_request(st, p->strict_buf, (size_t)n) < 0) {
			reject(p, st, 500, NULL, NULL);
			return;
		}
		m = p->strict_msg;
	}
	const struct sip_addr *route;
	unsigned popped = routes_pop_ours(p, m, src, &route, &has_flow, &fl);
	const struct sip_uri *ruri = &m->ruri;
	int dom = -1;
	bool ruri_ours = !route && (is_our_domain(p, ruri->host, &dom) || is_our_address(p, ruri));
	if (m->method_id == SIP_METHOD_REGISTER && ruri_ours) {
		/* A To that is no SIP AOR is the registrar's 400 (RFC 4475
		 * §3.3.4); a SIP AOR of another domain is not ours to bind. */
		bool sip_to = m->to && (m->to->uri.scheme_id == SIP_SCHEME_SIP ||
					m->to->uri.scheme_id == SIP_SCHEME_SIPS);
		if (!sip_to || is_our_domain(p, m->to->uri.host, NULL))
			handle_register(p, st, m, src);
		else
			reject(p, st, 404, "Not A Domain Served Here", NULL);
		return;
	}
	if (ruri_ours && !ruri->has_user && !has_flow) {
		if (m->method_id == SIP_METHOD_OPTIONS)
			reject(p, st, 200, NULL, "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER\r\n");
		else
			reject(p, st, 404, NULL, NULL);
		return;
	}

	struct proxy_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx) {
		reject(p, st, 500, NULL, NULL);
		return;
	}
	ctx->p = p;
	ctx->st = st;
	ctx->refs = 1;
	ctx->invite = m->method_id == SIP_METHOD_INVITE;
	ctx->src = *src;
	if (ctx->src.conn)
		tp_conn_ref(ctx->src.conn);
	memcpy(ctx->loop_hash, hash, sizeof(ctx->loop_hash));
	ctx->sips = ruri->scheme_id == SIP_SCHEME_SIPS ||
		    (route && route->uri.scheme_id == SIP_SCHEME_SIPS);
	ctx->inbound_tls = src->proto == TP_PROTO_TLS;
	ctx->popped_routes = popped;
	ctx->our_domain = dom >= 0 ? dom : 0;
	if (dom < 0 && m->from)
		is_our_domain(p, m->from->uri.host, &ctx->our_domain);
	snprintf(ctx->tag_header, sizeof(ctx->tag_header), "%s", pr.tag_header);
	txn_server_set_user(st, ctx);

	if (dialog_forming(m)) {
		/* §16.6 step 4, RFC 5922 §7.5: Record-Route with our domain,
		 * sips: when the request is sips:. Built per branch (the flow
		 * token may differ), see branch_send. */
		ctx->record_route = true;
		ctx->rr_domain = ctx->our_domain;
		/* Over TLS, the domain whose certificate the previous hop
		 * authenticated (chosen by its SNI) names us. */
		const struct tls_peer *tp_peer =
			src->conn && src->proto == TP_PROTO_TLS ? tp_conn_tls_peer(src->conn) : NULL;
		if (tp_peer && tp_peer->served_domain_len)
			is_our_domain(p, str_make(tp_peer->served_domain, tp_peer->served_domain_len),
				      &ctx->rr_domain);
	}

	if (has_flow && !route && !flow_is_source(p, &fl, src)) {
		/* An in-dialog request for a UA behind one of our flows (or,
		 * in a cluster, behind another node's). */
		struct proxy_branch *b = branch_add(ctx);
		bool here = fl.node == p->cfg.node;
		struct tp_conn *c = here && fl.worker == p->index ? tp_conn_by_id(p->tp, fl.conn) : NULL;
		if (!b || (here && fl.worker == p->index && !c) ||
		    (!here && !hop_to_node(p, &fl, ctx->our_domain, ctx->sips, &b->hops[0]))) {
			ctx_reply(ctx, 430, "Flow Failed", NULL); /* RFC 5626 §5.3 */
		} else {
			if (!here) {
				/* hops[0] is the node holding the flow */
			} else if (c) {
				b->hops[0].conn = c;
				b->hops[0].proto = tp_conn_proto(c);
			} else {
				/* The proto of a remote flow is not known here;
				 * it only matters for the Via we add. */
				b->hops[0].proto = TP_PROTO_TLS;
				b->hops[0].flow_worker = fl.worker;
				b->hops[0].flow_conn_id = fl.conn;
			}
			b->nhops = 1;
			if (branch_send(b, m) < 0)
				branch_try_next(b);
		}
	} else if (route || !ruri_ours) {
		/* Towards the next hop: the top Route, or the Request-URI. */
		struct proxy_branch *b = branch_add(ctx);
		if (!b) {
			ctx_reply(ctx, 500, NULL, NULL);
		} else {
			const struct sip_uri *next = route ? &route->uri : ruri;
			b->nhops = hops_for_uri(p, ctx, next, b->hops, PROXY_MAX_TARGETS);
			if (b->nhops == 0 && branch_resolve(b, next) == 0) {
				/* sent when RFC 3263 answers */
			} else if (b->nhops == 0) {
				b->status = ctx->sips ? 480 : 404;
				ctx_reply(ctx, ctx->sips ? 480 : 404, NULL,
					  ctx->sips ? "Warning: 380 sipsd \"SIPS Not Allowed\"\r\n" : NULL);
			} else if (branch_send(b, m) < 0) {
				branch_try_next(b);
			}
		}
	} else {
		/* §16.5: a user of our domain: the registered contacts. */
		char aor[LOC_MAX_AOR];
		struct loc_binding bds[LOC_MAX_BINDINGS_PER_AOR];
		int n = registrar_aor(ruri, aor, sizeof(aor)) < 0
				? 0
				: location_lookup(p->loc, str_from_cstr(aor), (int64_t)time(NULL), bds,
						  LOC_MAX_BINDINGS_PER_AOR);
		if (n < 0) {
			/* The shared store does not answer (docs/scaling.md). */
			ctx_reply(ctx, 503, "Location Store Unavailable", "Retry-After: 5\r\n");
			return;
		}
		int usable = 0, wrong_scheme = 0;
		for (int i = 0; i < n; i++) {
			struct sip_uri cu;
			if (sip_uri_parse(str_from_cstr(bds[i].contact), &cu, NULL, NULL) < 0)
				continue;
			/* RFC 5630 §4.1 / spec rule 14: never change the scheme. */
			if ((cu.scheme_id == SIP_SCHEME_SIPS) != ctx->sips) {
				wrong_scheme++;
				continue;
			}
			struct proxy_branch *b = branch_add(ctx);
			if (!b)
				break;
			if (!hop_for_binding(p, ctx, &bds[i], &b->hops[0]) ||
			    (ctx->sips && b->hops[0].proto != TP_PROTO_TLS)) {
				ctx->nbranches--;
				free(b);
				continue;
			}
			b->nhops = 1;
			b->ruri = strdup(bds[i].contact);
			usable++;
		}
		if (!usable) {
			if (wrong_scheme && ctx->sips)
				ctx_reply(ctx, 480, NULL, "Warning: 380 sipsd \"SIPS Not Allowed\"\r\n");
			else if (wrong_scheme)
				ctx_reply(ctx, 480, NULL, "Warning: 381 sipsd \"SIPS Required\"\r\n");
			else if (n)
				ctx_reply(ctx, 480, NULL, NULL);
			else
				ctx_reply(ctx, 404, NULL, NULL);
		} else {
			/* Parallel fork to every usable contact (§16.6). */
			int count = ctx->nbranches;
			for (int i = 0; i < count; i++) {
				struct proxy_branch *b = ctx->branches[i];
				if (branch_send(b, m) < 0)
					branch_fail(b, 503);
			}
		}
	}
}

/* ---- responses ---- */

static void response_cb(struct txn_layer *l, struct txn_client *ct, int status,
			const struct sip_msg *m, const char *why, void *arg)
{
	struct proxy *p = arg;
	(void)l;
	struct proxy_branch *b = txn_client_user(ct);
	if (!b)
		return;
	struct proxy_ctx *ctx = b->ctx;
	if (!m) {
		/* A timeout or transport failure of this hop. */
		char addr[64] = "-";
		tp_addr_format((const struct sockaddr *)&b->hops[b->next_hop].addr, addr, sizeof(addr));
		if (log_ratelimit_allow(&p->rl))
		{
			/* A TLS refusal comes as key=value pairs already
			 * (tls_peer_format); anything else is quoted. */
			bool kv = why && !strncmp(why, "auth=", 5);
			LOG_WARN("proxy.branch_failed", "status=%d hop=%s proto=%s domain=%s %s%s%s", status,
				 addr, tp_proto_name(b->hops[b->next_hop].proto),
				 b->hops[b->next_hop].domain[0] ? b->hops[b->next_hop].domain : "-",
				 kv ? "" : "reason=\"", why ? why : "", kv ? "" : "\"");
		}
		txn_client_set_user(ct, NULL);
		b->ct = NULL;
		if (status == 503)
			branch_try_next(b);
		else
			branch_fail(b, status);
		ctx_unref(ctx);
		return;
	}
	if (status == 503 && b->next_hop + 1 < b->nhops) {
		/* RFC 3263 §4.3: a 503 moves on to the next target. */
		txn_client_set_user(ct, NULL);
		b->ct = NULL;
		branch_try_next(b);
		ctx_unref(ctx);
		return;
	}
	if (status == 100)
		return; /* §16.7 step 3: not forwarded */
	struct sip_edit e = {.remove_top_via = true};
	int n = sip_msg_build(m, &e, p->out, sizeof(p->out));
	if (n < 0)
		return;
	if (status < 200) {
		if (!ctx->final_sent) {
			ctx_send_response(ctx, status, p->out, (size_t)n);
			p->stats.responses_forwarded++;
		}
		return;
	}
	b->status = status;
	if (status < 300) {
		/* §16.7 step 5: every 2xx is forwarded at once. */
		ctx_send_response(ctx, status, p->out, (size_t)n);
		p->stats.responses_forwarded++;
		if (!ctx->final_sent && ctx->invite)
			ctx_cancel_pending(ctx);
		ctx->final_sent = true;
		return;
	}
	if (status >= 600 && ctx->invite)
		ctx_cancel_pending(ctx);
	if (status == 503) {
		/* §16.7 step 6: a 503 from downstream is answered upstream as
		 * a 500 of our own, not passed on. */
		if (better(500, ctx->best_status)) {
			free(ctx->best);
			ctx->best = NULL;
			ctx->best_status = 500;
		}
	} else if (better(status, ctx->best_status)) {
		char *copy = malloc((size_t)n);
		if (copy) {
			memcpy(copy, p->out, (size_t)n);
			free(ctx->best);
			ctx->best = copy;
			ctx->best_len = (size_t)n;
			ctx->best_status = status;
		}
	}
	ctx_check_done(ctx);
}

static void stray_response_cb(struct txn_layer *l, const struct sip_msg *m,
			      const struct tp_source *src, void *arg)
{
	/* §16.7 step 3 / §18.2.2: a response without a transaction (a 2xx
	 * retransmission of an INVITE) goes statelessly to the next Via. */
	struct proxy *p = arg;
	(void)l;
	(void)src;
	const struct sip_via *v = m->via;
	if (!v || !v->next || txn_branch_worker(v->branch) < 0)
		return;
	const struct sip_via *next = v->next;
	struct sockaddr_storage dst;
	socklen_t dl;
	char spec[300];
	struct str host = next->has_received ? next->received : next->host;
	uint16_t port = next->has_port ? next->port : 5060;
	if (next->has_rport && next->rport.len) {
		uint64_t rp;
		if (str_to_u64(next->rport, 65535, &rp) == 0)
			port = (uint16_t)rp;
	}
	if (host.len && host.s[0] == '[')
		snprintf(spec, sizeof(spec), "%.*s:%u", (int)host.len, host.s, port);
	else if (memchr(host.s, ':', host.len))
		snprintf(spec, sizeof(spec), "[%.*s]:%u", (int)host.len, host.s, port);
	else
		snprintf(spec, sizeof(spec), "%.*s:%u", (int)host.len, host.s, port);
	if (tp_addr_parse(spec, port, &dst, &dl) < 0)
		return;
	struct sip_edit e = {.remove_top_via = true};
	int n = sip_msg_build(m, &e, p->out, sizeof(p->out));
	if (n < 0)
		return;
	enum tp_proto proto = str_case_eq_cstr(next->transport, "UDP")	 ? TP_PROTO_UDP
			      : str_case_eq_cstr(next->transport, "TCP") ? TP_PROTO_TCP
									 : TP_PROTO_TLS;
	if (proto == TP_PROTO_UDP) {
		tp_udp_send(p->tp, -1, (struct sockaddr *)&dst, dl, p->out, (size_t)n);
	} else {
		struct tp_conn *c = tp_conn_find(p->tp, proto, (struct sockaddr *)&dst, STR_NULL);
		if (c)
			tp_conn_send(c, p->out, (size_t)n);
	}
	p->stats.stateless_forwarded++;
}

static void server_gone_cb(struct txn_layer *l, struct txn_server *st, void *arg)
{
	(void)l;
	(void)arg;
	struct proxy_ctx *ctx = txn_server_user(st);
	if (!ctx)
		return;
	ctx->st = NULL;
	ctx_unref(ctx);
}

static void client_gone_cb(struct txn_layer *l, struct txn_client *ct, void *arg)
{
	(void)l;
	(void)arg;
	struct proxy_branch *b = txn_client_user(ct);
	if (!b)
		return;
	b->ct = NULL;
	struct proxy_ctx *ctx = b->ctx;
	if (!b->status) {
		/* Ended without a final response (shutdown): count it failed;
		 * answer only while the request's transaction still lives. */
		b->status = 408;
		if (ctx->st)
			ctx_check_done(ctx);
	}
	ctx_unref(ctx);
}

/* ---- life ---- */

int proxy_create(struct loop *loop, struct transport *tp, unsigned index, struct worker_pool *pool,
		 struct txn_layer **peers, struct location *loc, const struct proxy_cfg *cfg,
		 struct proxy **out)
{
	struct proxy *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->loop = loop;
	p->tp = tp;
	p->index = index;
	p->loc = loc;
	p->cfg = *cfg;
	p->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(20, 1000);
	struct txn_user u = {
		.request_cb = request_cb,
		.response_cb = response_cb,
		.stray_response_cb = stray_response_cb,
		.server_gone_cb = server_gone_cb,
		.client_gone_cb = client_gone_cb,
		.arg = p,
	};
	int rc = txn_layer_create(loop, tp, index, pool, peers, &u, &p->txn);
	if (rc < 0) {
		free(p);
		return rc;
	}
	struct dns_config dc = cfg->dns;
	dc.servers = p->cfg.dns_servers[0] ? p->cfg.dns_servers : NULL;
	rc = dns_resolver_create(loop, &dc, &p->dns);
	if (rc < 0) {
		LOG_WARN("dns", "worker=%u reason=\"resolver unavailable: %s\"", index, strerror(-rc));
		p->dns = NULL;
	}
	*out = p;
	return 0;
}

void proxy_destroy(struct proxy *p)
{
	if (!p)
		return;
	txn_layer_destroy(p->txn);
	free(p->strict_msg);
	while (p->jobs) {
		struct stateless_job *j = p->jobs;
		dns_query_cancel(j->q);
		stateless_job_unlink(j);
		free(j);
	}
	dns_resolver_destroy(p->dns);
	free(p);
}

void proxy_reconfigure(struct proxy *p, const struct proxy_cfg *cfg)
{
	p->cfg = *cfg;
}

struct txn_layer *proxy_txn_layer(struct proxy *p)
{
	return p->txn;
}

void proxy_conn_closed(struct proxy *p, struct tp_conn *conn)
{
	txn_layer_conn_closed(p->txn, conn);
	/* Only connections that carried a registration touch the store (a
	 * mass close of other connections must not scan it each time). */
	if (!tp_conn_is_flow(conn))
		return;
	int n = location_flow_closed(p->loc, p->index, tp_conn_id(conn));
	if (n)
		LOG_INFO("registrar.flow_closed", "conn=%llu bindings_removed=%d",
			 (unsigned long long)tp_conn_id(conn), n);
}

const struct proxy_stats *proxy_stats(const struct proxy *p)
{
	return &p->stats;
}
