/* txn.c: client and server transactions (RFC 3261 §17). */
#include "txn/txn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/rand.h>

#include "base/log.h"
#include "loop/timer.h"
#include "sip/build.h"

#define TXN_BUCKETS 16384 /* power of two */
#define TIMER_C_MS (180 * 1000) /* §16.6 step 11: > 3 minutes for INVITE */

enum txn_state { TS_TRYING, TS_PROCEEDING, TS_COMPLETED, TS_CONFIRMED, TS_TERMINATED };

struct txn_server {
	struct txn_layer *l;
	struct txn_server *hnext;
	char *key;
	uint32_t hash;
	bool invite;
	enum txn_state state;
	char *req;
	size_t req_len;
	struct tp_source src;
	struct sockaddr_storage dst; /* UDP: where responses go (§18.2.2) */
	socklen_t dst_len;
	char *resp;
	size_t resp_len;
	int final_status;
	unsigned g_interval;
	struct loop_timer timer_retx; /* G */
	struct loop_timer timer_end;  /* H, I, J */
	void *user;
	struct loop_deferred free_node;
};

struct txn_client {
	struct txn_layer *l;
	struct txn_client *hnext;
	struct txn_client *anext, **aprev; /* list of live client transactions */
	char *key;
	uint32_t hash;
	bool invite;
	bool internal; /* a CANCEL we sent on our own: responses are not reported */
	bool cancel_pending;
	bool cancelled;
	bool reported_final;
	bool send_failed; /* the first send failed: report 503 from the timer */
	enum txn_state state;
	char *req;
	size_t req_len;
	struct txn_target target;
	struct tp_conn *conn; /* referenced while the transaction lives */
	unsigned interval;
	struct loop_timer timer_retx;    /* A, E */
	struct loop_timer timer_timeout; /* B, F, C */
	struct loop_timer timer_end;     /* D, K */
	void *user;
	struct loop_deferred free_node;
};

struct txn_layer {
	struct loop *loop;
	struct transport *tp;
	unsigned index;
	struct worker_pool *pool;
	struct txn_layer **peers;
	struct txn_user u;
	struct txn_timers t;
	struct txn_server *sbuckets[TXN_BUCKETS];
	struct txn_client *cbuckets[TXN_BUCKETS];
	struct txn_client *clients; /* all live client transactions */
	struct txn_stats stats;
	uint64_t branch_seq;
	uint64_t branch_salt;
	struct sip_msg *scratch;
	struct sip_msg *scratch2;
	/* The server transaction whose request `scratch` holds, during its
	 * request callback (txn_server_request then needs no new parse). */
	const struct txn_server *scratch_st;
	char out[SIPS_MAX_MSG_SIZE];
	struct log_ratelimit rl;
};

static uint32_t hash_bytes(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

int txn_layer_create(struct loop *loop, struct transport *tp, unsigned index,
		     struct worker_pool *pool, struct txn_layer **peers, const struct txn_user *u,
		     struct txn_layer **out)
{
	struct txn_layer *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->scratch = malloc(sizeof(*l->scratch));
	l->scratch2 = malloc(sizeof(*l->scratch2));
	if (!l->scratch || !l->scratch2) {
		free(l->scratch);
		free(l->scratch2);
		free(l);
		return -ENOMEM;
	}
	l->loop = loop;
	l->tp = tp;
	l->index = index;
	l->pool = pool;
	l->peers = peers;
	l->u = *u;
	l->t = (struct txn_timers){500, 4000, 5000};
	l->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(20, 1000);
	if (RAND_bytes((unsigned char *)&l->branch_salt, sizeof(l->branch_salt)) != 1)
		l->branch_salt = (uint64_t)(uintptr_t)l ^ 0x9e3779b97f4a7c15ull;
	*out = l;
	return 0;
}

void txn_layer_set_timers(struct txn_layer *l, const struct txn_timers *t)
{
	l->t = *t;
}

struct transport *txn_layer_transport(struct txn_layer *l) { return l->tp; }
unsigned txn_layer_index(const struct txn_layer *l) { return l->index; }
const struct txn_stats *txn_layer_stats(const struct txn_layer *l) { return &l->stats; }
struct sip_msg *txn_layer_scratch(struct txn_layer *l) { return l->scratch; }

void txn_branch_make(struct txn_layer *l, char *out)
{
	/* The counter is mixed with a per-worker secret so branches are not
	 * predictable (§8.1.1.7 asks for uniqueness; guessable ones invite
	 * spoofed responses). */
	uint64_t v = (++l->branch_seq * 0x9e3779b97f4a7c15ull) ^ l->branch_salt;
	/* "z9hG4bKs" WW "." 16 hex digits */
	memcpy(out, "z9hG4bKs", 8);
	fmt_hex(out + 8, l->index & 0xff, 2);
	out[10] = '.';
	fmt_hex(out + 11, v, 16);
	out[TXN_BRANCH_LEN] = '\0';
}

int txn_branch_worker(struct str b)
{
	/* Ours: exactly the made branch, or it followed by '.' and more (the
	 * proxy appends its loop-detection hash). */
	if (b.len < TXN_BRANCH_LEN || (b.len > TXN_BRANCH_LEN && b.s[TXN_BRANCH_LEN] != '.') ||
	    memcmp(b.s, "z9hG4bKs", 8) != 0 || b.s[10] != '.' ||
	    !ascii_is_hex(b.s[8]) || !ascii_is_hex(b.s[9]))
		return -1;
	return ascii_hex_value(b.s[8]) * 16 + ascii_hex_value(b.s[9]);
}

/* ---- keys ---- */

/* §17.2.3: branch + sent-by + method (ACK matches INVITE). Without the
 * magic cookie (RFC 2543 peers) the dialog identifiers and the top Via.
 * `as_invite` keys any method as its INVITE (a CANCEL looking for the
 * transaction it cancels, §9.2). */
static char *server_key(const struct sip_msg *m, bool as_invite, size_t *len)
{
	const struct sip_via *v = m->via;
	struct str meth = m->method;
	if (as_invite || m->method_id == SIP_METHOD_ACK || m->method_id == SIP_METHOD_INVITE)
		meth = STR_LIT("INVITE");
	size_t cap = v->raw.len + v->branch.len + m->call_id.len + meth.len + 128 +
		     (m->from ? m->from->tag.len : 0);
	char *k = malloc(cap);
	if (!k)
		return NULL;
	size_t n = 0;
	if (v->has_branch && str_case_has_prefix(v->branch, "z9hG4bK") && v->branch.len > 7) {
		/* branch|host:port|method */
		n += fmt_str(k + n, v->branch);
		k[n++] = '|';
		n += fmt_str(k + n, v->host);
		k[n++] = ':';
		n += fmt_u64(k + n, v->has_port ? v->port : 0);
		k[n++] = '|';
		n += fmt_str(k + n, meth);
	} else {
		/* 2543|call-id|cseq|from-tag|via|method */
		n += fmt_str(k + n, STR_LIT("2543|"));
		n += fmt_str(k + n, m->call_id);
		k[n++] = '|';
		n += fmt_u64(k + n, m->cseq);
		k[n++] = '|';
		if (m->from)
			n += fmt_str(k + n, m->from->tag);
		k[n++] = '|';
		n += fmt_str(k + n, v->raw);
		k[n++] = '|';
		n += fmt_str(k + n, meth);
	}
	k[n] = '\0';
	/* Host names compare case-insensitively. */
	for (size_t i = 0; i < n; i++)
		k[i] = ascii_lower(k[i]);
	*len = n;
	return k;
}

static char *client_key(struct str branch, struct str method, size_t *len)
{
	size_t cap = branch.len + method.len + 2;
	char *k = malloc(cap);
	if (!k)
		return NULL;
	size_t n = fmt_str(k, branch);
	k[n++] = '|';
	n += fmt_str(k + n, method);
	k[n] = '\0';
	*len = n;
	return k;
}

static struct txn_server *server_lookup(struct txn_layer *l, const char *key, size_t len, uint32_t h)
{
	for (struct txn_server *s = l->sbuckets[h & (TXN_BUCKETS - 1)]; s; s = s->hnext)
		if (s->hash == h && strlen(s->key) == len && !memcmp(s->key, key, len))
			return s;
	return NULL;
}

static struct txn_client *client_lookup(struct txn_layer *l, const char *key, size_t len, uint32_t h)
{
	for (struct txn_client *c = l->cbuckets[h & (TXN_BUCKETS - 1)]; c; c = c->hnext)
		if (c->hash == h && strlen(c->key) == len && !memcmp(c->key, key, len))
			return c;
	return NULL;
}

/* ---- sending ---- */

static int server_send(struct txn_server *st, const char *buf, size_t len)
{
	if (st->src.proto == TP_PROTO_UDP)
		return tp_udp_send(st->l->tp, st->src.udp_fd, (struct sockaddr *)&st->dst, st->dst_len,
				   buf, len);
	if (!st->src.conn || !tp_conn_is_open(st->src.conn))
		return -EPIPE; /* §18.2.2 would open a new connection: not for TLS peers we cannot authenticate */
	return tp_conn_send(st->src.conn, buf, len);
}

struct flow_post {
	struct txn_layer *to;
	uint64_t conn_id;
	size_t len;
	char buf[];
};

static void flow_post_cb(void *arg)
{
	struct flow_post *fp = arg;
	struct tp_conn *c = tp_conn_by_id(fp->to->tp, fp->conn_id);
	if (c)
		tp_conn_send(c, fp->buf, fp->len);
	free(fp);
}

int txn_layer_send_flow(struct txn_layer *l, unsigned worker, uint64_t conn_id, const char *buf,
			size_t len)
{
	if (worker == l->index) {
		struct tp_conn *c = tp_conn_by_id(l->tp, conn_id);
		return c ? tp_conn_send(c, buf, len) : -ENOTCONN;
	}
	if (!l->pool || !l->peers || worker >= worker_pool_size(l->pool) || !l->peers[worker])
		return -ENOTCONN;
	struct flow_post *fp = malloc(sizeof(*fp) + len);
	if (!fp)
		return -ENOMEM;
	fp->to = l->peers[worker];
	fp->conn_id = conn_id;
	fp->len = len;
	memcpy(fp->buf, buf, len);
	int rc = worker_pool_post(l->pool, worker, flow_post_cb, fp);
	if (rc < 0)
		free(fp);
	else
		l->stats.cross_worker_posts++;
	return rc;
}

static int client_send(struct txn_client *ct, const char *buf, size_t len)
{
	if (ct->target.flow_conn_id)
		return txn_layer_send_flow(ct->l, ct->target.flow_worker, ct->target.flow_conn_id, buf,
					   len);
	if (ct->target.proto == TP_PROTO_UDP)
		return tp_udp_send(ct->l->tp, -1, (struct sockaddr *)&ct->target.addr, ct->target.addr_len,
				   buf, len);
	if (!ct->conn)
		return -EPIPE;
	return tp_conn_send(ct->conn, buf, len);
}

/* ---- server transactions ---- */

static void server_free(void *arg)
{
	struct txn_server *st = arg;
	if (st->src.conn)
		tp_conn_unref(st->src.conn);
	free(st->key);
	free(st->req);
	free(st->resp);
	free(st);
}

static void server_terminate(struct txn_server *st)
{
	struct txn_layer *l = st->l;
	if (st->state == TS_TERMINATED)
		return;
	st->state = TS_TERMINATED;
	loop_timer_cancel(&st->timer_retx);
	loop_timer_cancel(&st->timer_end);
	struct txn_server **pp = &l->sbuckets[st->hash & (TXN_BUCKETS - 1)];
	while (*pp && *pp != st)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = st->hnext;
	l->stats.server_current--;
	if (l->u.server_gone_cb)
		l->u.server_gone_cb(l, st, l->u.arg);
	loop_defer_node(l->loop, &st->free_node, server_free, st);
}

static void server_timer_end_cb(void *arg)
{
	server_terminate(arg);
}

static void server_timer_retx_cb(void *arg)
{
	/* Timer G: retransmit the final response of an INVITE over UDP. */
	struct txn_server *st = arg;
	if (st->state != TS_COMPLETED || !st->resp)
		return;
	server_send(st, st->resp, st->resp_len);
	st->l->stats.retransmissions_sent++;
	st->g_interval = st->g_interval * 2 > st->l->t.t2_ms ? st->l->t.t2_ms : st->g_interval * 2;
	loop_timer_start(st->l->loop, &st->timer_retx, st->g_interval);
}

int txn_server_respond(struct txn_server *st, int status, const char *buf, size_t len)
{
	struct txn_layer *l = st->l;
	if (st->state == TS_TERMINATED || st->state == TS_COMPLETED || st->state == TS_CONFIRMED)
		return -EALREADY; /* a final response was sent already */
	int rc = server_send(st, buf, len);
	bool reliable = st->src.proto != TP_PROTO_UDP;
	if (status < 200) {
		/* Keep the latest provisional for retransmitted requests. */
		char *copy = malloc(len);
		if (copy) {
			memcpy(copy, buf, len);
			free(st->resp);
			st->resp = copy;
			st->resp_len = len;
		}
		st->state = TS_PROCEEDING;
		return rc;
	}
	st->final_status = status;
	if (st->invite && status < 300) {
		/* §17.2.1: a 2xx ends the INVITE server transaction; its
		 * retransmissions are the UAS's business, end to end. */
		server_terminate(st);
		return rc;
	}
	char *copy = malloc(len);
	if (copy) {
		memcpy(copy, buf, len);
		free(st->resp);
		st->resp = copy;
		st->resp_len = len;
	}
	st->state = TS_COMPLETED;
	if (st->invite) {
		if (!reliable) {
			st->g_interval = l->t.t1_ms;
			loop_timer_start(l->loop, &st->timer_retx, st->g_interval);
		}
		loop_timer_start(l->loop, &st->timer_end, 64ull * l->t.t1_ms); /* H */
	} else {
		loop_timer_start(l->loop, &st->timer_end, reliable ? 0 : 64ull * l->t.t1_ms); /* J */
	}
	return rc;
}

const struct sip_msg *txn_server_request(struct txn_server *st)
{
	if (st == st->l->scratch_st)
		return st->l->scratch; /* parsed already, from the same bytes */
	struct sip_msg *m = st->l->scratch2;
	if (sip_msg_parse(m, st->req, st->req_len,
			  st->src.proto == TP_PROTO_UDP ? SIP_PARSE_DATAGRAM : SIP_PARSE_STREAM, NULL) < 0)
		return NULL;
	return m;
}

int txn_server_reply(struct txn_server *st, int status, const char *reason, struct str extra)
{
	const struct sip_msg *req = txn_server_request(st);
	if (!req)
		return -EINVAL;
	char tag[24];
	snprintf(tag, sizeof(tag), "%08x", st->hash);
	int n = sip_response_build(req, status, reason, str_from_cstr(tag), extra, st->l->out,
				   sizeof(st->l->out));
	if (n < 0)
		return n;
	return txn_server_respond(st, status, st->l->out, (size_t)n);
}

const struct tp_source *txn_server_source(const struct txn_server *st) { return &st->src; }

int txn_server_replace_request(struct txn_server *st, const char *buf, size_t len)
{
	char *copy = malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, buf, len);
	free(st->req);
	st->req = copy;
	st->req_len = len;
	if (st->l->scratch_st == st)
		st->l->scratch_st = NULL; /* other bytes now: parse them */
	return 0;
}
bool txn_server_is_invite(const struct txn_server *st) { return st->invite; }
int txn_server_final_status(const struct txn_server *st) { return st->final_status; }
void txn_server_set_user(struct txn_server *st, void *user) { st->user = user; }
void *txn_server_user(const struct txn_server *st) { return st->user; }

struct txn_server *txn_server_find_invite(struct txn_layer *l, const struct sip_msg *cancel)
{
	/* The CANCEL has the INVITE's branch and sent-by (§9.2). */
	if (!cancel->via)
		return NULL;
	size_t len;
	char *key = server_key(cancel, true, &len);
	if (!key)
		return NULL;
	struct txn_server *st = server_lookup(l, key, len, hash_bytes(key, len));
	free(key);
	return st;
}

/* §18.2.2: responses over UDP go to the source address with the Via's
 * port, or the source port when rport was asked for (RFC 3581 §4). */
static void server_response_dest(struct txn_server *st, const struct sip_msg *m)
{
	memcpy(&st->dst, &st->src.remote, st->src.remote_len);
	st->dst_len = st->src.remote_len;
	const struct sip_via *v = m->via;
	if (v->has_rport)
		return;
	uint16_t port = v->has_port ? v->port : 5060;
	if (st->dst.ss_family == AF_INET)
		((struct sockaddr_in *)&st->dst)->sin_port = htons(port);
	else if (st->dst.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&st->dst)->sin6_port = htons(port);
}

static void handle_request(struct txn_layer *l, const struct tp_source *src, const char *buf,
			   size_t len, struct sip_msg *m)
{
	size_t klen;
	char *key = server_key(m, false, &klen);
	if (!key)
		return;
	uint32_t h = hash_bytes(key, klen);
	struct txn_server *st = server_lookup(l, key, klen, h);
	if (st) {
		free(key);
		if (m->method_id == SIP_METHOD_ACK) {
			if (st->invite && st->state == TS_COMPLETED) {
				/* §17.2.1: Confirmed; timer I absorbs further ACKs. */
				st->state = TS_CONFIRMED;
				loop_timer_cancel(&st->timer_retx);
				loop_timer_start(l->loop, &st->timer_end,
						 src->proto == TP_PROTO_UDP ? l->t.t4_ms : 0);
			}
			l->stats.retransmissions_absorbed++;
			return;
		}
		/* A retransmitted request: send the last response again. */
		l->stats.retransmissions_absorbed++;
		if (st->resp)
			server_send(st, st->resp, st->resp_len);
		return;
	}
	if (m->method_id == SIP_METHOD_ACK) {
		free(key);
		l->u.request_cb(l, NULL, m, src, l->u.arg);
		return;
	}
	if (l->stats.server_current + l->stats.client_current >= TXN_MAX_PER_WORKER) {
		free(key);
		l->stats.refused_limit++;
		if (log_ratelimit_allow(&l->rl))
			LOG_WARN("txn.limit", "worker=%u limit=%u", l->index, TXN_MAX_PER_WORKER);
		char out[2048];
		int n = sip_response_build(m, 503, NULL, STR_NULL, STR_LIT("Retry-After: 5\r\n"), out,
					   sizeof(out));
		if (n > 0) {
			if (src->conn)
				tp_conn_send(src->conn, out, (size_t)n);
			else
				tp_udp_send(l->tp, src->udp_fd, (const struct sockaddr *)&src->remote,
					    src->remote_len, out, (size_t)n);
		}
		return;
	}
	st = calloc(1, sizeof(*st));
	char *copy = malloc(len);
	if (!st || !copy) {
		free(st);
		free(copy);
		free(key);
		return;
	}
	memcpy(copy, buf, len);
	st->l = l;
	st->key = key;
	st->hash = h;
	st->invite = m->method_id == SIP_METHOD_INVITE;
	st->state = TS_TRYING;
	st->req = copy;
	st->req_len = (size_t)m->raw.len;
	st->src = *src;
	if (st->src.conn)
		tp_conn_ref(st->src.conn);
	server_response_dest(st, m);
	loop_timer_init(&st->timer_retx, server_timer_retx_cb, st);
	loop_timer_init(&st->timer_end, server_timer_end_cb, st);
	struct txn_server **b = &l->sbuckets[h & (TXN_BUCKETS - 1)];
	st->hnext = *b;
	*b = st;
	l->stats.server_created++;
	l->stats.server_current++;
	l->scratch_st = st;
	l->u.request_cb(l, st, m, src, l->u.arg);
	l->scratch_st = NULL;
}

/* ---- client transactions ---- */

static void client_free(void *arg)
{
	struct txn_client *ct = arg;
	if (ct->conn)
		tp_conn_unref(ct->conn);
	free(ct->key);
	free(ct->req);
	free(ct);
}

static void client_terminate(struct txn_client *ct)
{
	struct txn_layer *l = ct->l;
	if (ct->state == TS_TERMINATED)
		return;
	ct->state = TS_TERMINATED;
	loop_timer_cancel(&ct->timer_retx);
	loop_timer_cancel(&ct->timer_timeout);
	loop_timer_cancel(&ct->timer_end);
	struct txn_client **pp = &l->cbuckets[ct->hash & (TXN_BUCKETS - 1)];
	while (*pp && *pp != ct)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = ct->hnext;
	*ct->aprev = ct->anext;
	if (ct->anext)
		ct->anext->aprev = ct->aprev;
	l->stats.client_current--;
	if (!ct->internal && l->u.client_gone_cb)
		l->u.client_gone_cb(l, ct, l->u.arg);
	loop_defer_node(l->loop, &ct->free_node, client_free, ct);
}

/* Report a final outcome to the TU once. */
static void client_report(struct txn_client *ct, int status, const struct sip_msg *m, const char *why)
{
	struct txn_layer *l = ct->l;
	if (ct->internal)
		return;
	if (status >= 200) {
		if (ct->reported_final && !(ct->invite && status < 300))
			return;
		ct->reported_final = true;
	}
	l->u.response_cb(l, ct, status, m, why, l->u.arg);
}

static void client_fail(struct txn_client *ct, int status, const char *why)
{
	if (ct->state == TS_TERMINATED || ct->state == TS_COMPLETED)
		return;
	if (status == 408)
		ct->l->stats.timeouts++;
	else
		ct->l->stats.transport_errors++;
	client_report(ct, status, NULL, why);
	client_terminate(ct);
}

static void client_timer_end_cb(void *arg)
{
	client_terminate(arg); /* D, K */
}

static void client_timer_timeout_cb(void *arg)
{
	struct txn_client *ct = arg;
	if (ct->send_failed) {
		client_fail(ct, 503, "transport error");
		return;
	}
	if (ct->invite && ct->state == TS_PROCEEDING) {
		/* Timer C (§16.8): no final response in time: CANCEL and 408. */
		txn_client_cancel(ct);
		client_report(ct, 408, NULL, "timer C");
		return;
	}
	client_fail(ct, 408, ct->invite ? "timer B" : "timer F");
}

static void client_timer_retx_cb(void *arg)
{
	struct txn_client *ct = arg;
	struct txn_layer *l = ct->l;
	if (ct->state != TS_TRYING && !(ct->state == TS_PROCEEDING && !ct->invite))
		return;
	if (client_send(ct, ct->req, ct->req_len) < 0) {
		client_fail(ct, 503, "transport error");
		return;
	}
	l->stats.retransmissions_sent++;
	if (ct->invite) /* A doubles */
		ct->interval *= 2;
	else if (ct->state == TS_PROCEEDING) /* E at T2 once Proceeding */
		ct->interval = l->t.t2_ms;
	else
		ct->interval = ct->interval * 2 > l->t.t2_ms ? l->t.t2_ms : ct->interval * 2;
	loop_timer_start(l->loop, &ct->timer_retx, ct->interval);
}

static int client_start(struct txn_layer *l, const struct txn_target *t, const char *req,
			size_t len, bool internal, struct txn_client **out)
{
	struct sip_msg *m = l->scratch2;
	struct sip_parse_error err;
	/* Only the top Via's branch and the method are read here. */
	if (sip_msg_parse(m, req, len, SIP_PARSE_OWN, &err) < 0 || !m->is_request || !m->via ||
	    !m->via->has_branch)
		return -EINVAL;
	if (l->stats.server_current + l->stats.client_current >= TXN_MAX_PER_WORKER) {
		l->stats.refused_limit++;
		return -ENOBUFS;
	}
	if (t->proto == TP_PROTO_UDP && len > 1300 && !t->conn) {
		/* §18.1.1: over 1300 bytes a request goes over a congestion-
		 * controlled transport; the caller chooses one. */
		return -EMSGSIZE;
	}
	struct txn_client *ct = calloc(1, sizeof(*ct));
	char *copy = malloc(len);
	size_t klen;
	char *key = client_key(m->via->branch, m->cseq_method, &klen);
	if (!ct || !copy || !key) {
		free(ct);
		free(copy);
		free(key);
		return -ENOMEM;
	}
	memcpy(copy, req, len);
	ct->l = l;
	ct->key = key;
	ct->hash = hash_bytes(key, klen);
	ct->invite = m->method_id == SIP_METHOD_INVITE;
	ct->internal = internal;
	ct->state = TS_TRYING;
	ct->req = copy;
	ct->req_len = len;
	ct->target = *t;
	ct->target.conn = NULL;
	loop_timer_init(&ct->timer_retx, client_timer_retx_cb, ct);
	loop_timer_init(&ct->timer_timeout, client_timer_timeout_cb, ct);
	loop_timer_init(&ct->timer_end, client_timer_end_cb, ct);
	struct txn_client **b = &l->cbuckets[ct->hash & (TXN_BUCKETS - 1)];
	ct->hnext = *b;
	*b = ct;
	ct->anext = l->clients;
	if (l->clients)
		l->clients->aprev = &ct->anext;
	ct->aprev = &l->clients;
	l->clients = ct;
	l->stats.client_created++;
	l->stats.client_current++;
	*out = ct;

	int rc = 0;
	if (t->proto != TP_PROTO_UDP && !t->flow_conn_id) {
		/* (a connection found with another worker sets flow_conn_id) */
		struct tp_conn *c = t->conn;
		if (!c)
			c = tp_conn_find(l->tp, t->proto, (const struct sockaddr *)&t->addr,
					 str_from_cstr(t->domain));
		unsigned ow;
		uint64_t oid;
		if (c) {
			tp_conn_ref(c);
		} else if (t->proto == TP_PROTO_TLS &&
			   tp_conn_find_shared(l->tp, t->proto, (const struct sockaddr *)&t->addr,
					       str_from_cstr(t->domain), true, &ow, &oid) == 0) {
			/* The peer asked us to reuse its connection (RFC 5923
			 * alias) and another worker holds it: send through it
			 * (responses come back by branch). */
			ct->target.flow_worker = ow;
			ct->target.flow_conn_id = oid;
		} else {
			/* A connection we opened ourselves is not shared: this
			 * worker opens its own to the hop, so requests and their
			 * responses stay on this worker instead of crossing to
			 * the other worker and back for every message (a
			 * wake-up and a context switch each). */
			rc = tp_connect(l->tp, t->proto, (const struct sockaddr *)&t->addr, t->addr_len,
					t->tls, str_from_cstr(t->domain), &c);
		}
		if (rc == 0)
			ct->conn = c;
	}
	if (rc == 0)
		rc = client_send(ct, ct->req, ct->req_len);
	if (rc < 0) {
		/* Reported on the next loop iteration, never from inside this
		 * call: the caller has not attached its state to *out yet. */
		ct->send_failed = true;
		loop_timer_start(l->loop, &ct->timer_timeout, 0);
		return 0;
	}
	bool reliable = t->proto != TP_PROTO_UDP;
	if (!reliable) {
		ct->interval = l->t.t1_ms;
		loop_timer_start(l->loop, &ct->timer_retx, ct->interval);
	}
	loop_timer_start(l->loop, &ct->timer_timeout, 64ull * l->t.t1_ms); /* B, F */
	return 0;
}

int txn_client_start(struct txn_layer *l, const struct txn_target *t, const char *req, size_t len,
		     struct txn_client **out)
{
	return client_start(l, t, req, len, false, out);
}

static int client_send_cancel(struct txn_client *ct)
{
	struct txn_layer *l = ct->l;
	struct sip_msg *m = l->scratch2;
	if (sip_msg_parse(m, ct->req, ct->req_len, SIP_PARSE_STREAM, NULL) < 0)
		return -EINVAL;
	char buf[8192];
	int n = sip_cancel_build(m, STR_NULL, buf, sizeof(buf));
	if (n < 0)
		return n;
	struct txn_target t = ct->target;
	t.conn = ct->conn;
	struct txn_client *cancel;
	ct->cancelled = true;
	return client_start(l, &t, buf, (size_t)n, true, &cancel);
}

int txn_client_cancel(struct txn_client *ct)
{
	if (!ct->invite || ct->cancelled || ct->state == TS_TERMINATED || ct->state == TS_COMPLETED)
		return 0;
	if (ct->state == TS_TRYING) {
		/* §9.1: no CANCEL before a provisional response. */
		ct->cancel_pending = true;
		return 0;
	}
	return client_send_cancel(ct);
}

void txn_client_set_user(struct txn_client *ct, void *user) { ct->user = user; }
void *txn_client_user(const struct txn_client *ct) { return ct->user; }
bool txn_client_is_invite(const struct txn_client *ct) { return ct->invite; }
struct tp_conn *txn_client_conn(const struct txn_client *ct) { return ct->conn; }

static void send_ack(struct txn_client *ct, const struct sip_msg *resp)
{
	struct txn_layer *l = ct->l;
	struct sip_msg *inv = l->scratch2;
	if (sip_msg_parse(inv, ct->req, ct->req_len, SIP_PARSE_STREAM, NULL) < 0)
		return;
	char buf[8192];
	int n = sip_ack_build(inv, resp, buf, sizeof(buf));
	if (n > 0)
		client_send(ct, buf, (size_t)n);
}

static void handle_response(struct txn_layer *l, const struct tp_source *src, struct sip_msg *m)
{
	const struct sip_via *v = m->via;
	size_t klen;
	char *key = client_key(v->branch, m->cseq_method, &klen);
	if (!key)
		return;
	struct txn_client *ct = client_lookup(l, key, klen, hash_bytes(key, klen));
	free(key);
	if (!ct) {
		l->stats.stray_responses++;
		if (l->u.stray_response_cb)
			l->u.stray_response_cb(l, m, src, l->u.arg);
		return;
	}
	bool reliable = ct->target.proto != TP_PROTO_UDP;
	unsigned status = m->status;
	if (ct->invite) {
		switch (ct->state) {
		case TS_TRYING:
		case TS_PROCEEDING:
			if (status < 200) {
				if (ct->state == TS_TRYING) {
					ct->state = TS_PROCEEDING;
					loop_timer_cancel(&ct->timer_retx);
					loop_timer_start(l->loop, &ct->timer_timeout, TIMER_C_MS);
				}
				if (ct->cancel_pending) {
					ct->cancel_pending = false;
					client_send_cancel(ct);
				}
				client_report(ct, (int)status, m, NULL);
			} else if (status < 300) {
				client_report(ct, (int)status, m, NULL);
				client_terminate(ct);
			} else {
				send_ack(ct, m);
				ct->state = TS_COMPLETED;
				loop_timer_cancel(&ct->timer_retx);
				loop_timer_cancel(&ct->timer_timeout);
				loop_timer_start(l->loop, &ct->timer_end, reliable ? 0 : 32000); /* D */
				client_report(ct, (int)status, m, NULL);
			}
			break;
		case TS_COMPLETED:
			if (status >= 300)
				send_ack(ct, m); /* a retransmitted final response */
			break;
		default:
			break;
		}
		return;
	}
	if (ct->state == TS_TRYING || ct->state == TS_PROCEEDING) {
		if (status < 200) {
			ct->state = TS_PROCEEDING;
			client_report(ct, (int)status, m, NULL);
		} else {
			ct->state = TS_COMPLETED;
			loop_timer_cancel(&ct->timer_retx);
			loop_timer_cancel(&ct->timer_timeout);
			loop_timer_start(l->loop, &ct->timer_end, reliable ? 0 : l->t.t4_ms); /* K */
			client_report(ct, (int)status, m, NULL);
		}
	}
}

/* A response for a transaction of another worker, copied to it. */
struct cross_post {
	struct txn_layer *to;
	struct tp_source src;
	size_t len;
	char buf[];
};

static void cross_post_cb(void *arg)
{
	struct cross_post *p = arg;
	txn_layer_receive(p->to, &p->src, p->buf, p->len);
	free(p);
}

void txn_layer_receive(struct txn_layer *l, const struct tp_source *src, const char *buf,
		       size_t len)
{
	struct sip_msg *m = l->scratch;
	struct sip_parse_error err;
	l->scratch_st = NULL; /* scratch is parsed again below */
	int rc = sip_msg_parse(m, buf, len, src->conn ? SIP_PARSE_STREAM : SIP_PARSE_DATAGRAM, &err);
	if (rc < 0 || !m->via || !m->has_cseq) {
		/* A request we cannot parse still gets a 400 where its Via can
		 * be found (RFC 4475 §3.1.2); responses are dropped. */
		int n = sip_bad_request_build(buf, len, rc < 0 ? err.reason : "missing Via or CSeq",
					      l->out, sizeof(l->out));
		if (n > 0) {
			if (src->conn)
				tp_conn_send(src->conn, l->out, (size_t)n);
			else
				tp_udp_send(l->tp, src->udp_fd, (const struct sockaddr *)&src->remote,
					    src->remote_len, l->out, (size_t)n);
		}
		if (log_ratelimit_allow(&l->rl)) {
			char addr[64];
			tp_addr_format((const struct sockaddr *)&src->remote, addr, sizeof(addr));
			LOG_INFO("sip.parse_error", "peer=%s proto=%s reason=\"%s\" offset=%zu", addr,
				 tp_proto_name(src->proto), rc < 0 ? err.reason : "missing Via or CSeq",
				 rc < 0 ? err.offset : 0);
		}
		return;
	}
	if (m->is_request) {
		handle_request(l, src, buf, (size_t)rc, m);
		return;
	}
	int owner = txn_branch_worker(m->via->branch);
	if (owner >= 0 && (unsigned)owner != l->index && l->peers && l->pool &&
	    (unsigned)owner < worker_pool_size(l->pool) && l->peers[owner]) {
		struct cross_post *p = malloc(sizeof(*p) + (size_t)rc);
		if (!p)
			return;
		p->to = l->peers[owner];
		p->src = *src;
		p->src.conn = NULL; /* the connection belongs to this worker */
		p->len = (size_t)rc;
		memcpy(p->buf, buf, (size_t)rc);
		if (worker_pool_post(l->pool, (unsigned)owner, cross_post_cb, p) < 0)
			free(p);
		else
			l->stats.cross_worker_posts++;
		return;
	}
	handle_response(l, src, m);
}

/* The transport closed a connection: client transactions waiting on it
 * fail with 503 (§16.9), carrying the handshake verdict when there is one. */
void txn_layer_conn_closed(struct txn_layer *l, struct tp_conn *conn)
{
	struct txn_client *ct = l->clients;
	while (ct) {
		struct txn_client *next = ct->anext;
		if (ct->conn == conn && (ct->state == TS_TRYING || ct->state == TS_PROCEEDING)) {
			const char *why = tp_conn_failure(conn);
			client_fail(ct, 503, why && *why ? why : "connection closed");
		}
		ct = next;
	}
}

void txn_layer_destroy(struct txn_layer *l)
{
	if (!l)
		return;
	for (unsigned b = 0; b < TXN_BUCKETS; b++) {
		while (l->sbuckets[b])
			server_terminate(l->sbuckets[b]);
		while (l->cbuckets[b])
			client_terminate(l->cbuckets[b]); /* gone callbacks release TU state */
	}
	/* Run the deferred frees now: the loop is not running any more. */
	loop_run_once(l->loop, 0);
	free(l->scratch);
	free(l->scratch2);
	free(l);
}
