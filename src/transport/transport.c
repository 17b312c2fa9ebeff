/* transport.c: listeners and connections of one worker (RFC 3261 §18, RFC 5923). */
#include "transport/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/err.h>

#include "base/limits.h"
#include "base/log.h"
#include "tls/tls_ctx.h"

#define TP_MAX_LISTENERS 16
#define TP_HASH_BUCKETS 4096 /* power of two */
#define TP_READ_CHUNK 16384
#define TP_UDP_BUF (SIPS_MAX_MSG_SIZE + 1)

/* Bytes kept of the reason an outbound connection failed (tp_conn_failure). */
#define TP_FAILURE_MAX 768

/* An IPv4 or IPv6 address: what a connection stores (a sockaddr_storage
 * would be 128 bytes on every connection). */
union tp_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

enum conn_state { CONN_CONNECTING, CONN_HANDSHAKE, CONN_OPEN, CONN_CLOSING, CONN_CLOSED };

struct wq_chunk {
	struct wq_chunk *next;
	size_t len, off;
	char data[];
};

struct tp_listener {
	int fd;
	enum tp_proto proto;
	struct tls_ctx *ctx;
	uint16_t port;
	struct transport *tp;
};

struct tp_conn {
	struct transport *tp;
	struct tp_conn *hnext; /* hash chain by remote address */
	struct tp_conn **hprev;
	struct tp_conn *inext; /* hash chain by id */
	struct tp_conn **iprev;
	uint64_t id;
	unsigned refs;
	int fd;
	enum tp_proto proto;
	enum conn_state state;
	bool inbound;
	bool authenticated;
	bool want_write;
	bool close_after_flush;
	bool alias; /* RFC 5923: reusable for requests to the peer */
	bool flow;  /* a registration is bound to it */
	bool ip_handshake; /* counted in its address's handshakes in flight */
	uint64_t partial_since_ms; /* first byte of a message not yet complete, 0 = none */
	bool shared; /* listed in the group for other workers */
	union tp_addr alias_addr; /* ... at its Via sent-by address */
	union tp_addr remote;
	socklen_t remote_len;
	union tp_addr local;
	socklen_t local_len;
	SSL *ssl; /* freed when the connection closes */
	struct sip_framer framer;
	struct wq_chunk *wq_head, *wq_tail;
	size_t wq_bytes;
	struct loop_timer timer; /* handshake, then idle timeout */
	uint64_t last_rx_ms;
	struct loop_deferred free_node;
	struct loop_deferred release_node; /* frees SSL and buffers once closed */
	/* TLS, authenticated: a compact copy of the peer's identity set, kept
	 * after the SSL is gone (transactions may still ask for it). */
	struct tls_identity_set *ids;
	char *sni;     /* TLS: SNI sent or received; NULL: none */
	char *failure; /* why it failed (TP_FAILURE_MAX bytes); NULL: no failure */
};

struct ip_count {
	struct ip_count *next;
	struct sockaddr_storage addr; /* port zeroed */
	unsigned count;
	unsigned handshakes; /* TLS handshakes in flight from this address */
};

/* Counts shared by the transports of all workers: limits are per process,
 * while SO_REUSEPORT spreads connections over the workers. */
/* A connection other workers may send on: an authenticated TLS
 * connection we opened, or an inbound one whose peer asked for reuse
 * (RFC 5923 alias). The identities are copied: the owner's SSL is not
 * read from other threads. */
struct shared_conn {
	struct shared_conn *next;
	enum tp_proto proto;
	struct sockaddr_storage addr; /* the address it is filed under */
	unsigned worker;
	uint64_t conn_id;
	bool alias; /* an inbound connection its peer asked us to reuse */
	struct tls_identity_set *ids; /* compact copy (tls_identity_set_dup) */
};

struct tp_group {
	pthread_mutex_t lock; /* guards ipbuckets and shared (accept, close, share) */
	struct ip_count *ipbuckets[TP_HASH_BUCKETS];
	struct shared_conn *shared;
	unsigned nshared;
	atomic_uint conns;
	atomic_uint handshakes;
};

/* Shared connections kept at most (a bound like every other). */
#define TP_MAX_SHARED 4096

struct transport {
	struct tp_group *group;
	bool owns_group;
	unsigned worker; /* index recorded with shared connections */
	struct loop *loop;
	struct tp_limits limits;
	struct tp_handler h;
	struct tp_listener listeners[TP_MAX_LISTENERS];
	unsigned nlisteners;
	struct tp_conn *buckets[TP_HASH_BUCKETS];
	struct tp_conn *id_buckets[TP_HASH_BUCKETS];
	struct tp_stats stats;
	uint64_t next_id;
	char *udp_buf;
	/* One limiter per kind of peer-triggered line, so a flood of one kind
	 * does not hide the others. */
	struct log_ratelimit rl;         /* handshake failures */
	struct log_ratelimit rl_refused; /* refusals at a limit */
	struct log_ratelimit rl_wq;      /* write queue overflows */
	struct log_ratelimit rl_frame;   /* framing errors, message timeouts */
};

const char *tp_proto_name(enum tp_proto proto)
{
	switch (proto) {
	case TP_PROTO_UDP: return "udp";
	case TP_PROTO_TCP: return "tcp";
	case TP_PROTO_TLS: return "tls";
	}
	return "?";
}

void tp_limits_default(struct tp_limits *l)
{
	l->max_conns = 20000;
	l->max_conns_per_ip = 256;
	l->max_handshakes = 512;
	l->handshake_timeout_ms = 5000;
	l->idle_timeout_ms = 3600 * 1000;
	l->max_msg_size = SIPS_MAX_MSG_SIZE;
	l->max_write_queue = 1024 * 1024;
	l->cert_warn_days = 30;
	l->message_timeout_ms = 10000;
	l->max_handshakes_per_ip = 32;
}

/* ---- addresses ---- */

void tp_addr_format(const struct sockaddr *sa, char *buf, size_t size)
{
	/* Without printf: the proxy formats addresses for every message. */
	char tmp[INET6_ADDRSTRLEN + 16];
	size_t n = 0;
	if (!size)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		const unsigned char *a = (const unsigned char *)&in->sin_addr;
		for (int i = 0; i < 4; i++) {
			n += fmt_u64(tmp + n, a[i]);
			tmp[n++] = i < 3 ? '.' : ':';
		}
		n += fmt_u64(tmp + n, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		tmp[n++] = '[';
		if (!inet_ntop(AF_INET6, &in6->sin6_addr, tmp + n, INET6_ADDRSTRLEN))
			snprintf(tmp + n, INET6_ADDRSTRLEN, "?");
		n += strlen(tmp + n);
		tmp[n++] = ']';
		tmp[n++] = ':';
		n += fmt_u64(tmp + n, ntohs(in6->sin6_port));
	} else {
		tmp[n++] = '?';
	}
	if (n >= size)
		n = size - 1; /* truncated, as snprintf would */
	memcpy(buf, tmp, n);
	buf[n] = '\0';
}

int tp_addr_parse(const char *text, uint16_t default_port, struct sockaddr_storage *ss,
		  socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *port_s = NULL;
	memset(ss, 0, sizeof(*ss));
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (!close || (size_t)(close - text - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, text + 1, (size_t)(close - text - 1));
		host[close - text - 1] = '\0';
		if (close[1] == ':')
			port_s = close + 2;
		else if (close[1] != '\0')
			return -EINVAL;
	} else {
		const char *colon = strrchr(text, ':');
		size_t hl = colon ? (size_t)(colon - text) : strlen(text);
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, text, hl);
		host[hl] = '\0';
		if (colon)
			port_s = colon + 1;
	}
	uint64_t port = default_port;
	if (port_s && str_to_u64(str_from_cstr(port_s), 65535, &port) < 0)
		return -EINVAL;
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*len = sizeof(*in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

static bool addr_equal(const struct sockaddr *a, const struct sockaddr *b, bool with_port)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_addr.s_addr == y->sin_addr.s_addr && (!with_port || x->sin_port == y->sin_port);
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return !memcmp(&x->sin6_addr, &y->sin6_addr, 16) &&
		       (!with_port || x->sin6_port == y->sin6_port);
	}
	return false;
}

static uint32_t addr_hash(const struct sockaddr *sa, bool with_port)
{
	uint32_t h = 2166136261u;
	const unsigned char *p;
	size_t n;
	uint16_t port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		p = (const unsigned char *)&in->sin_addr;
		n = 4;
		port = in->sin_port;
	} else {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		p = (const unsigned char *)&in6->sin6_addr;
		n = 16;
		port = in6->sin6_port;
	}
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	if (with_port)
		h = (h ^ port) * 16777619u;
	return h & (TP_HASH_BUCKETS - 1);
}

/* ---- per-source-address counts (inbound limit) ---- */

static struct ip_count **ip_slot(struct tp_group *g, const struct sockaddr *sa)
{
	struct ip_count **pp = &g->ipbuckets[addr_hash(sa, false)];
	while (*pp && !addr_equal((struct sockaddr *)&(*pp)->addr, sa, false))
		pp = &(*pp)->next;
	return pp;
}

static int ip_count_inc(struct transport *tp, const struct sockaddr *sa, socklen_t len)
{
	struct tp_group *g = tp->group;
	int rc = 0;
	pthread_mutex_lock(&g->lock);
	struct ip_count **pp = ip_slot(g, sa);
	if (!*pp) {
		struct ip_count *n = calloc(1, sizeof(*n));
		if (!n) {
			rc = -ENOMEM;
			goto out;
		}
		memcpy(&n->addr, sa, len);
		*pp = n;
	}
	if ((*pp)->count >= tp->limits.max_conns_per_ip)
		rc = -EMFILE;
	else
		(*pp)->count++;
out:
	pthread_mutex_unlock(&g->lock);
	return rc;
}

/* Count a handshake from `sa` unless it already has its share in flight:
 * one address must not take every slot of the shared pool. */
static int ip_handshake_inc(struct transport *tp, const struct sockaddr *sa)
{
	struct tp_group *g = tp->group;
	int rc = 0;
	pthread_mutex_lock(&g->lock);
	struct ip_count **pp = ip_slot(g, sa);
	if (!*pp)
		rc = -ENOENT;
	else if ((*pp)->handshakes >= tp->limits.max_handshakes_per_ip)
		rc = -EMFILE;
	else
		(*pp)->handshakes++;
	pthread_mutex_unlock(&g->lock);
	return rc;
}

static void ip_handshake_dec(struct transport *tp, const struct sockaddr *sa)
{
	struct tp_group *g = tp->group;
	pthread_mutex_lock(&g->lock);
	struct ip_count **pp = ip_slot(g, sa);
	if (*pp && (*pp)->handshakes)
		(*pp)->handshakes--;
	pthread_mutex_unlock(&g->lock);
}

static void ip_count_dec(struct transport *tp, const struct sockaddr *sa)
{
	struct tp_group *g = tp->group;
	pthread_mutex_lock(&g->lock);
	struct ip_count **pp = ip_slot(g, sa);
	if (*pp && --(*pp)->count == 0) {
		struct ip_count *dead = *pp;
		*pp = dead->next;
		free(dead);
	}
	pthread_mutex_unlock(&g->lock);
}

int tp_group_create(struct tp_group **out)
{
	struct tp_group *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	pthread_mutex_init(&g->lock, NULL);
	*out = g;
	return 0;
}

void tp_group_destroy(struct tp_group *g)
{
	if (!g)
		return;
	while (g->shared) {
		struct shared_conn *e = g->shared;
		g->shared = e->next;
		free(e->ids);
		free(e);
	}
	for (unsigned b = 0; b < TP_HASH_BUCKETS; b++) {
		struct ip_count *n = g->ipbuckets[b];
		while (n) {
			struct ip_count *next = n->next;
			free(n);
			n = next;
		}
	}
	pthread_mutex_destroy(&g->lock);
	free(g);
}

static void group_share(struct tp_conn *c)
{
	struct tp_group *g = c->tp->group;
	if (c->shared || !c->authenticated || !c->ids)
		return;
	struct shared_conn *e = calloc(1, sizeof(*e));
	if (!e)
		return;
	e->proto = c->proto;
	memcpy(&e->addr, c->alias ? &c->alias_addr : &c->remote,
	       c->alias ? sizeof(c->alias_addr) : c->remote_len);
	e->worker = c->tp->worker;
	e->conn_id = c->id;
	e->alias = c->alias;
	e->ids = tls_identity_set_dup(c->ids);
	if (!e->ids) {
		free(e);
		return;
	}
	pthread_mutex_lock(&g->lock);
	if (g->nshared < TP_MAX_SHARED) {
		e->next = g->shared;
		g->shared = e;
		g->nshared++;
		c->shared = true;
		e = NULL;
	}
	pthread_mutex_unlock(&g->lock);
	if (e)
		free(e->ids);
	free(e);
}

static void group_unshare(struct tp_conn *c)
{
	struct tp_group *g = c->tp->group;
	if (!c->shared)
		return;
	pthread_mutex_lock(&g->lock);
	for (struct shared_conn **pp = &g->shared; *pp; pp = &(*pp)->next) {
		if ((*pp)->conn_id == c->id && (*pp)->worker == c->tp->worker) {
			struct shared_conn *dead = *pp;
			*pp = dead->next;
			g->nshared--;
			free(dead->ids);
			free(dead);
			break;
		}
	}
	pthread_mutex_unlock(&g->lock);
	c->shared = false;
}

int tp_conn_find_shared(struct transport *tp, enum tp_proto proto, const struct sockaddr *dst,
			struct str domain, bool aliases_only, unsigned *worker, uint64_t *conn_id)
{
	struct tp_group *g = tp->group;
	int rc = -ENOENT;
	pthread_mutex_lock(&g->lock);
	for (struct shared_conn *e = g->shared; e; e = e->next) {
		if (e->proto != proto || e->worker == tp->worker || (aliases_only && !e->alias) ||
		    !addr_equal((const struct sockaddr *)&e->addr, dst, true))
			continue;
		/* Spec rule 17: only for a domain the connection proved. */
		if (domain.len && !tls_identity_match(e->ids, domain))
			continue;
		*worker = e->worker;
		*conn_id = e->conn_id;
		rc = 0;
		break;
	}
	pthread_mutex_unlock(&g->lock);
	return rc;
}

void tp_set_worker(struct transport *tp, unsigned worker)
{
	tp->worker = worker;
}

static void handshake_begin(struct transport *tp)
{
	tp->stats.handshakes_current++;
	atomic_fetch_add(&tp->group->handshakes, 1);
}

static void conn_handshake_release(struct tp_conn *c)
{
	if (c->ip_handshake) {
		c->ip_handshake = false;
		ip_handshake_dec(c->tp, (struct sockaddr *)&c->remote);
	}
}

static void handshake_end(struct transport *tp)
{
	if (tp->stats.handshakes_current) {
		tp->stats.handshakes_current--;
		atomic_fetch_sub(&tp->group->handshakes, 1);
	}
}

/* ---- creation ---- */

int tp_create(struct loop *loop, struct tp_group *group, const struct tp_limits *limits,
	      const struct tp_handler *h, struct transport **out)
{
	struct transport *tp = calloc(1, sizeof(*tp));
	if (!tp)
		return -ENOMEM;
	if (group) {
		tp->group = group;
	} else if (tp_group_create(&tp->group) < 0) {
		free(tp);
		return -ENOMEM;
	} else {
		tp->owns_group = true;
	}
	tp->loop = loop;
	if (limits)
		tp->limits = *limits;
	else
		tp_limits_default(&tp->limits);
	tp->h = *h;
	tp->next_id = 1;
	tp->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(20, 1000);
	tp->rl_refused = (struct log_ratelimit)LOG_RATELIMIT_INIT(20, 1000);
	tp->rl_wq = (struct log_ratelimit)LOG_RATELIMIT_INIT(20, 1000);
	tp->rl_frame = (struct log_ratelimit)LOG_RATELIMIT_INIT(20, 1000);
	*out = tp;
	return 0;
}

static void conn_io_cb(int fd, uint32_t events, void *arg);
static void listener_cb(int fd, uint32_t events, void *arg);
static void udp_cb(int fd, uint32_t events, void *arg);

int tp_listen(struct transport *tp, enum tp_proto proto, const struct sockaddr *addr,
	      socklen_t addr_len, struct tls_ctx *server_ctx)
{
	if (tp->nlisteners >= TP_MAX_LISTENERS)
		return -ENOSPC;
	if (proto == TP_PROTO_TLS && !server_ctx)
		return -EINVAL;
	int type = proto == TP_PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
	int fd = socket(addr->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (addr->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, addr, addr_len) < 0 || (type == SOCK_STREAM && listen(fd, 1024) < 0)) {
		int e = -errno;
		close(fd);
		return e;
	}
	struct sockaddr_storage bound;
	socklen_t bl = sizeof(bound);
	getsockname(fd, (struct sockaddr *)&bound, &bl);
	struct tp_listener *l = &tp->listeners[tp->nlisteners];
	l->fd = fd;
	l->proto = proto;
	l->ctx = server_ctx;
	l->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
						   : ((struct sockaddr_in6 *)&bound)->sin6_port);
	l->tp = tp;
	if (proto == TP_PROTO_UDP && !tp->udp_buf) {
		tp->udp_buf = malloc(TP_UDP_BUF);
		if (!tp->udp_buf) {
			close(fd);
			return -ENOMEM;
		}
	}
	int rc = loop_fd_add(tp->loop, fd, LOOP_READ, proto == TP_PROTO_UDP ? udp_cb : listener_cb, l);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	tp->nlisteners++;
	return 0;
}

int tp_listen_probe(enum tp_proto proto, const struct sockaddr *addr, socklen_t addr_len)
{
	int type = proto == TP_PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM;
	int fd = socket(addr->sa_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1, rc = 0;
	/* TCP: SO_REUSEADDR so TIME_WAIT leftovers of a past run are fine. Not
	 * for UDP, where it would let us share the port with its holder. */
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (addr->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, addr, addr_len) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

struct tls_ctx *tp_listener_set_tls(struct transport *tp, unsigned index, struct tls_ctx *ctx)
{
	if (index >= tp->nlisteners || tp->listeners[index].proto != TP_PROTO_TLS)
		return NULL;
	struct tls_ctx *old = tp->listeners[index].ctx;
	tp->listeners[index].ctx = ctx;
	return old;
}

uint16_t tp_listener_port(const struct transport *tp, enum tp_proto proto)
{
	for (unsigned i = tp->nlisteners; i-- > 0;)
		if (tp->listeners[i].proto == proto)
			return tp->listeners[i].port;
	return 0;
}

/* ---- connection life ---- */

/* The address a connection is filed under: its alias (RFC 5923) or peer. */
static const struct sockaddr *conn_key_addr(const struct tp_conn *c)
{
	return (const struct sockaddr *)(c->alias ? &c->alias_addr : &c->remote);
}

static void conn_hash_insert(struct transport *tp, struct tp_conn *c)
{
	struct tp_conn **b = &tp->buckets[addr_hash(conn_key_addr(c), true)];
	c->hnext = *b;
	if (*b)
		(*b)->hprev = &c->hnext;
	c->hprev = b;
	*b = c;
}

static void conn_id_insert(struct transport *tp, struct tp_conn *c)
{
	struct tp_conn **b = &tp->id_buckets[c->id & (TP_HASH_BUCKETS - 1)];
	c->inext = *b;
	if (*b)
		(*b)->iprev = &c->inext;
	c->iprev = b;
	*b = c;
}

static void conn_addr_unlink(struct tp_conn *c)
{
	if (!c->hprev)
		return;
	*c->hprev = c->hnext;
	if (c->hnext)
		c->hnext->hprev = c->hprev;
	c->hprev = NULL;
	c->hnext = NULL;
}

static void conn_hash_remove(struct tp_conn *c)
{
	if (c->iprev) {
		*c->iprev = c->inext;
		if (c->inext)
			c->inext->iprev = c->iprev;
		c->iprev = NULL;
		c->inext = NULL;
	}
	conn_addr_unlink(c);
}

/* What only an open connection needs: the SSL (with its record state and
 * the peer record), the stream buffer, the write queue. */
static void conn_release(struct tp_conn *c)
{
	struct wq_chunk *w = c->wq_head;
	while (w) {
		struct wq_chunk *n = w->next;
		free(w);
		w = n;
	}
	c->wq_head = c->wq_tail = NULL;
	c->wq_bytes = 0;
	sip_framer_fini(&c->framer);
	if (c->ssl)
		SSL_free(c->ssl);
	c->ssl = NULL;
}

static void conn_free(struct tp_conn *c)
{
	conn_release(c);
	free(c->ids);
	free(c->sni);
	free(c->failure);
	free(c);
}

/* Deferred from conn_close_now: the close may happen inside a callback that
 * still reads the message bytes or the SSL. Holds the transport's
 * reference until then; touches no transport (it may be gone at shutdown). */
static void conn_release_deferred(void *arg)
{
	struct tp_conn *c = arg;
	conn_release(c);
	if (--c->refs == 0)
		conn_free(c);
}

/* The failure text buffer (TP_FAILURE_MAX bytes), allocated on first use;
 * NULL when out of memory (the reason is then not kept). */
static char *conn_failure_buf(struct tp_conn *c)
{
	if (!c->failure)
		c->failure = calloc(1, TP_FAILURE_MAX);
	return c->failure;
}

/* The length of `sa` as stored in a union tp_addr, or 0 when it does not
 * fit (another family). */
static socklen_t addr_fit(const struct sockaddr *sa, socklen_t len)
{
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
		return sizeof(struct sockaddr_in);
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
		return sizeof(struct sockaddr_in6);
	return len <= sizeof(union tp_addr) ? len : 0;
}

static void conn_free_deferred(void *arg)
{
	conn_free(arg);
}

void tp_conn_ref(struct tp_conn *c)
{
	c->refs++;
}

void tp_conn_unref(struct tp_conn *c)
{
	if (--c->refs == 0) {
		/* Never free inside a callback of the connection itself. */
		loop_defer_node(c->tp->loop, &c->free_node, conn_free_deferred, c);
	}
}

static void conn_timer_cb(void *arg);

static struct tp_conn *conn_new(struct transport *tp, int fd, enum tp_proto proto, bool inbound,
				const struct sockaddr *remote, socklen_t remote_len)
{
	struct tp_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->tp = tp;
	c->id = tp->next_id++;
	c->refs = 1; /* the transport's own reference while open */
	c->fd = fd;
	c->proto = proto;
	c->inbound = inbound;
	remote_len = addr_fit(remote, remote_len);
	memcpy(&c->remote, remote, remote_len);
	c->remote_len = remote_len;
	c->local_len = sizeof(c->local);
	getsockname(fd, (struct sockaddr *)&c->local, &c->local_len);
	sip_framer_init(&c->framer, tp->limits.max_msg_size + 4096);
	loop_timer_init(&c->timer, conn_timer_cb, c);
	c->last_rx_ms = loop_now_ms(tp->loop);
	conn_hash_insert(tp, c);
	conn_id_insert(tp, c);
	tp->stats.conns_current++;
	atomic_fetch_add(&tp->group->conns, 1);
	return c;
}

static void conn_close_now(struct tp_conn *c, const char *reason)
{
	struct transport *tp = c->tp;
	if (c->state == CONN_CLOSED)
		return;
	bool was_handshaking = c->state == CONN_HANDSHAKE;
	c->state = CONN_CLOSED;
	if (was_handshaking)
		handshake_end(tp);
	conn_handshake_release(c);
	loop_timer_cancel(&c->timer);
	group_unshare(c);
	loop_fd_remove(tp->loop, c->fd);
	close(c->fd);
	c->fd = -1;
	conn_hash_remove(c);
	if (c->inbound)
		ip_count_dec(tp, (struct sockaddr *)&c->remote);
	tp->stats.conns_current--;
	atomic_fetch_sub(&tp->group->conns, 1);
	tp->stats.conns_closed++;
	char addr[64];
	tp_addr_format((struct sockaddr *)&c->remote, addr, sizeof(addr));
	LOG_DEBUG("conn.close", "conn=%llu proto=%s peer=%s reason=\"%s\"", (unsigned long long)c->id,
		  tp_proto_name(c->proto), addr, reason);
	if (tp->h.conn_closed_cb)
		tp->h.conn_closed_cb(tp, c, reason, tp->h.arg);
	/* Free the SSL and buffers now (at the end of this loop iteration),
	 * not when the last transaction lets go of the connection: the
	 * transport's reference goes with them. */
	loop_defer_node(tp->loop, &c->release_node, conn_release_deferred, c);
}

void tp_conn_close(struct tp_conn *c, bool graceful, const char *reason)
{
	if (c->state == CONN_CLOSED)
		return;
	if (graceful && c->wq_bytes && c->state == CONN_OPEN) {
		c->close_after_flush = true;
		return;
	}
	if (c->ssl && c->state == CONN_OPEN)
		SSL_shutdown(c->ssl); /* best effort close_notify */
	conn_close_now(c, reason);
}

static void conn_arm_idle(struct tp_conn *c)
{
	loop_timer_start(c->tp->loop, &c->timer, c->tp->limits.idle_timeout_ms);
}

static void conn_timer_cb(void *arg)
{
	struct tp_conn *c = arg;
	struct transport *tp = c->tp;
	if (c->state == CONN_HANDSHAKE || c->state == CONN_CONNECTING) {
		tp->stats.handshake_timeouts++;
		char *f = conn_failure_buf(c);
		if (f)
			snprintf(f, TP_FAILURE_MAX, "handshake timeout");
		if (!c->inbound && tp->h.conn_ready_cb)
			tp->h.conn_ready_cb(tp, c, false, tp->h.arg);
		conn_close_now(c, "handshake timeout");
		return;
	}
	uint64_t now = loop_now_ms(tp->loop);
	if (c->partial_since_ms && now - c->partial_since_ms >= tp->limits.message_timeout_ms) {
		tp->stats.message_timeouts++;
		char addr[64];
		tp_addr_format((struct sockaddr *)&c->remote, addr, sizeof(addr));
		if (log_ratelimit_allow(&tp->rl_frame))
			LOG_WARN("conn.message_timeout", "conn=%llu peer=%s pending=%zu limit_ms=%u",
				 (unsigned long long)c->id, addr, sip_framer_pending(&c->framer),
				 tp->limits.message_timeout_ms);
		conn_close_now(c, "message timeout");
		return;
	}
	uint64_t idle = now - c->last_rx_ms;
	if (idle >= tp->limits.idle_timeout_ms) {
		tp->stats.idle_timeouts++;
		conn_close_now(c, "idle timeout");
		return;
	}
	uint64_t next = tp->limits.idle_timeout_ms - idle;
	if (c->partial_since_ms) {
		uint64_t m = tp->limits.message_timeout_ms - (now - c->partial_since_ms);
		if (m < next)
			next = m;
	}
	loop_timer_start(tp->loop, &c->timer, next);
}

static void conn_update_interest(struct tp_conn *c)
{
	uint32_t ev = LOOP_READ;
	if (c->state == CONN_CONNECTING || c->wq_bytes || c->want_write)
		ev |= LOOP_WRITE;
	loop_fd_modify(c->tp->loop, c->fd, ev);
}

/* ---- TLS ---- */

/* SSL_get_error() needs an empty error queue before each SSL call; an
 * empty queue is the common case and ERR_peek_error() checks it for much
 * less than ERR_clear_error() costs (it clears all 16 slots). */
static inline void ssl_err_reset(void)
{
	if (ERR_peek_error())
		ERR_clear_error();
}

static void conn_log_tls(struct tp_conn *c)
{
	char addr[64], peer[768] = "";
	tp_addr_format((struct sockaddr *)&c->remote, addr, sizeof(addr));
	const struct tls_peer *p = tls_ssl_peer(c->ssl);
	if (p)
		tls_peer_format(p, peer, sizeof(peer));
	/* RFC 5922 §7.4 / spec rule 9: one line per connection with the peer's
	 * identity set and the certificate fingerprint. */
	LOG_INFO("tls.peer", "conn=%llu dir=%s peer=%s sni=%s version=%s authenticated=%s %s",
		 (unsigned long long)c->id, c->inbound ? "in" : "out", addr, c->sni ? c->sni : "-",
		 SSL_get_version(c->ssl), c->authenticated ? "yes" : "no", peer);
}

/* After the handshake: what the verify callback decided. A client without a
 * certificate is "unauthenticated", not an error (spec rule 8). */
static void conn_identify(struct tp_conn *c)
{
	const struct tls_peer *p = tls_ssl_peer(c->ssl);
	if (c->inbound) {
		const char *sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
		if (sni && !c->sni)
			c->sni = strndup(sni, TLS_IDENTITY_MAX_NAME);
	}
	if (!p)
		return;
	c->authenticated = p->auth == TLS_PEER_AUTHENTICATED;
	if (c->authenticated)
		c->ids = tls_identity_set_dup(p->ids); /* NULL: reused for no domain */
	/* Certificate lifecycle: a peer whose certificate expires soon will
	 * stop authenticating; say so while there is time (once per
	 * connection, only for authenticated peers). */
	X509 *cert = c->authenticated ? SSL_get0_peer_certificate(c->ssl) : NULL;
	int days = 0, secs = 0;
	if (cert && ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(cert)) == 1 &&
	    days >= 0 && (unsigned)days < c->tp->limits.cert_warn_days) {
		char ids[256], addr[64];
		tls_identity_set_format(p->ids, ids, sizeof(ids));
		tp_addr_format((struct sockaddr *)&c->remote, addr, sizeof(addr));
		if (log_ratelimit_allow(&c->tp->rl))
			LOG_WARN("tls.peer_cert_expiry", "conn=%llu peer=%s identities=%s days_left=%d",
				 (unsigned long long)c->id, addr, ids, days);
	}
}

static void conn_flush(struct tp_conn *c);
static void conn_read(struct tp_conn *c);

static void conn_handshake(struct tp_conn *c)
{
	struct transport *tp = c->tp;
	ssl_err_reset();
	int rc = SSL_do_handshake(c->ssl);
	if (rc == 1 && tls_ssl_handshake_done(c->ssl) == 0) {
		c->state = CONN_OPEN;
		c->want_write = false;
		handshake_end(tp);
		conn_handshake_release(c);
		conn_identify(c);
		conn_log_tls(c);
		conn_arm_idle(c);
		if (!c->inbound && c->proto == TP_PROTO_TLS)
			group_share(c); /* other workers may send on it too */
		if (!c->inbound && tp->h.conn_ready_cb)
			tp->h.conn_ready_cb(tp, c, true, tp->h.arg);
		if (c->state != CONN_OPEN)
			return;
		conn_flush(c);
		if (c->state == CONN_OPEN)
			conn_read(c); /* TLS 1.3 may carry data with the last flight */
		return;
	}
	int err = rc == 1 ? SSL_ERROR_SSL : SSL_get_error(c->ssl, rc);
	if (err == SSL_ERROR_WANT_READ) {
		c->want_write = false;
		conn_update_interest(c);
		return;
	}
	if (err == SSL_ERROR_WANT_WRITE) {
		c->want_write = true;
		conn_update_interest(c);
		return;
	}
	tp->stats.handshake_failures++;
	const struct tls_peer *p = tls_ssl_peer(c->ssl);
	unsigned long e = ERR_peek_error();
	tp->stats.handshake_refusals[p && p->auth == TLS_PEER_REFUSED && p->verdict < TLS_VERDICT_COUNT
					     ? p->verdict
					     : TLS_VERDICT_COUNT]++;
	char *f = conn_failure_buf(c);
	if (!f)
		;
	else if (p && p->auth == TLS_PEER_REFUSED)
		tls_peer_format(p, f, TP_FAILURE_MAX);
	else if (e)
		ERR_error_string_n(e, f, TP_FAILURE_MAX);
	else
		snprintf(f, TP_FAILURE_MAX, "handshake failed (%s)",
			 err == SSL_ERROR_SYSCALL ? "connection closed" : "protocol error");
	char addr[64];
	tp_addr_format((struct sockaddr *)&c->remote, addr, sizeof(addr));
	if (log_ratelimit_allow(&tp->rl))
		LOG_WARN("tls.handshake_failed", "conn=%llu dir=%s peer=%s %s%s%s",
			 (unsigned long long)c->id, c->inbound ? "in" : "out", addr,
			 p && p->auth == TLS_PEER_REFUSED ? "" : "reason=\"", tp_conn_failure(c),
			 p && p->auth == TLS_PEER_REFUSED ? "" : "\"");
	if (!c->inbound && tp->h.conn_ready_cb)
		tp->h.conn_ready_cb(tp, c, false, tp->h.arg);
	conn_close_now(c, "handshake failed");
}

/* ---- I/O ---- */

static ssize_t conn_raw_write(struct tp_conn *c, const char *buf, size_t len)
{
	if (c->ssl) {
		ssl_err_reset();
		int n = SSL_write(c->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len));
		if (n > 0)
			return n;
		int err = SSL_get_error(c->ssl, n);
		if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ)
			return -EAGAIN;
		return -EPIPE;
	}
	ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
	if (n < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? -EAGAIN : -errno;
	return n;
}

static void conn_flush(struct tp_conn *c)
{
	while (c->wq_head && c->state == CONN_OPEN) {
		struct wq_chunk *w = c->wq_head;
		ssize_t n = conn_raw_write(c, w->data + w->off, w->len - w->off);
		if (n == -EAGAIN)
			break;
		if (n < 0) {
			conn_close_now(c, "write error");
			return;
		}
		w->off += (size_t)n;
		c->wq_bytes -= (size_t)n;
		if (w->off == w->len) {
			c->wq_head = w->next;
			if (!c->wq_head)
				c->wq_tail = NULL;
			free(w);
		}
	}
	if (c->state != CONN_OPEN)
		return;
	if (!c->wq_head && c->close_after_flush) {
		tp_conn_close(c, false, "closed after flush");
		return;
	}
	conn_update_interest(c);
}

int tp_conn_send(struct tp_conn *c, const char *buf, size_t len)
{
	struct transport *tp = c->tp;
	if (c->state == CONN_CLOSED || c->state == CONN_CLOSING || c->close_after_flush)
		return -EPIPE;
	if (c->wq_bytes + len > tp->limits.max_write_queue) {
		tp->stats.write_queue_overflows++;
		char addr[64];
		tp_addr_format((struct sockaddr *)&c->remote, addr, sizeof(addr));
		if (log_ratelimit_allow(&tp->rl_wq))
			LOG_WARN("conn.write_queue_full", "conn=%llu peer=%s queued=%zu limit=%u",
				 (unsigned long long)c->id, addr, c->wq_bytes, tp->limits.max_write_queue);
		conn_close_now(c, "write queue limit");
		return -ENOBUFS;
	}
	size_t off = 0;
	/* Write directly when nothing is queued and the connection is open. */
	if (!c->wq_head && c->state == CONN_OPEN) {
		ssize_t n = conn_raw_write(c, buf, len);
		if (n < 0 && n != -EAGAIN) {
			conn_close_now(c, "write error");
			return -EPIPE;
		}
		if (n > 0)
			off = (size_t)n;
		if (off == len) {
			tp->stats.messages_out++;
			return 0;
		}
	}
	struct wq_chunk *w = malloc(sizeof(*w) + (len - off));
	if (!w)
		return -ENOMEM;
	w->next = NULL;
	w->len = len - off;
	w->off = 0;
	memcpy(w->data, buf + off, len - off);
	if (c->wq_tail)
		c->wq_tail->next = w;
	else
		c->wq_head = w;
	c->wq_tail = w;
	c->wq_bytes += w->len;
	tp->stats.messages_out++;
	if (c->state == CONN_OPEN)
		conn_update_interest(c);
	return 0;
}

static void conn_deliver(struct tp_conn *c)
{
	struct transport *tp = c->tp;
	struct sip_frame fr;
	struct sip_parse_error perr;
	int rc;
	tp_conn_ref(c);
	while (c->state == CONN_OPEN && (rc = sip_framer_next(&c->framer, &fr, &perr)) != 0) {
		if (rc < 0) {
			char addr[64];
			tp_addr_format((struct sockaddr *)&c->remote, addr, sizeof(addr));
			if (rc == -EMSGSIZE)
				tp->stats.oversize++;
			else
				tp->stats.framing_errors++;
			if (log_ratelimit_allow(&tp->rl_frame))
				LOG_WARN("conn.framing_error", "conn=%llu peer=%s reason=\"%s\" offset=%zu",
					 (unsigned long long)c->id, addr, perr.reason, perr.offset);
			/* RFC 3261 §18.3 / spec rule 19: the stream cannot be
			 * resynchronised after a framing error: close it. */
			tp_conn_close(c, false, "framing error");
			break;
		}
		if (fr.type == SIP_FRAME_PING) {
			/* RFC 5626 §3.5.1: a double CRLF is answered with one CRLF. */
			tp->stats.pings_answered++;
			tp_conn_send(c, "\r\n", 2);
			continue;
		}
		if (fr.type == SIP_FRAME_CRLF)
			continue;
		tp->stats.messages_in++;
		struct tp_source src = {.proto = c->proto, .conn = c, .udp_fd = -1};
		memcpy(&src.remote, &c->remote, c->remote_len);
		src.remote_len = c->remote_len;
		memcpy(&src.local, &c->local, c->local_len);
		src.local_len = c->local_len;
		tp->h.message_cb(tp, &src, fr.data.s, fr.data.len, tp->h.arg);
	}
	if (c->state == CONN_OPEN && sip_framer_pending(&c->framer) == 0)
		sip_framer_shrink(&c->framer);
	tp_conn_unref(c);
}

static void conn_read(struct tp_conn *c)
{
	for (int rounds = 0; rounds < 16 && c->state == CONN_OPEN; rounds++) {
		char *dst;
		size_t room;
		int rc = sip_framer_reserve(&c->framer, TP_READ_CHUNK, &dst, &room);
		if (rc < 0) {
			c->tp->stats.oversize++;
			conn_close_now(c, "stream buffer limit");
			return;
		}
		ssize_t n;
		if (c->ssl) {
			ssl_err_reset();
			int r = SSL_read(c->ssl, dst, (int)(room > INT32_MAX ? INT32_MAX : room));
			if (r <= 0) {
				int err = SSL_get_error(c->ssl, r);
				if (err == SSL_ERROR_WANT_READ)
					return;
				if (err == SSL_ERROR_WANT_WRITE) {
					c->want_write = true;
					conn_update_interest(c);
					return;
				}
				conn_close_now(c, err == SSL_ERROR_ZERO_RETURN ? "peer closed" : "read error");
				return;
			}
			n = r;
		} else {
			n = recv(c->fd, dst, room, 0);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return;
				conn_close_now(c, "read error");
				return;
			}
			if (n == 0) {
				conn_close_now(c, "peer closed");
				return;
			}
		}
		sip_framer_commit(&c->framer, (size_t)n);
		c->last_rx_ms = loop_now_ms(c->tp->loop);
		conn_deliver(c);
		if (c->state != CONN_OPEN)
			return;
		/* A message must complete within message_timeout_ms of its first
		 * byte: bytes trickling in (slowloris) do not keep it alive. */
		if (sip_framer_pending(&c->framer) == 0) {
			c->partial_since_ms = 0;
		} else if (!c->partial_since_ms) {
			c->partial_since_ms = c->last_rx_ms;
			uint64_t left = loop_timer_remaining(&c->timer);
			if (!loop_timer_is_armed(&c->timer) || left > c->tp->limits.message_timeout_ms)
				loop_timer_start(c->tp->loop, &c->timer, c->tp->limits.message_timeout_ms);
		}
		if ((size_t)n < room && !(c->ssl && SSL_pending(c->ssl)))
			return;
	}
}

static void conn_connected(struct tp_conn *c)
{
	struct transport *tp = c->tp;
	int err = 0;
	socklen_t el = sizeof(err);
	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
	if (err) {
		char *f = conn_failure_buf(c);
		if (f)
			snprintf(f, TP_FAILURE_MAX, "connect: %s", strerror(err));
		if (tp->h.conn_ready_cb)
			tp->h.conn_ready_cb(tp, c, false, tp->h.arg);
		conn_close_now(c, "connect failed");
		return;
	}
	c->local_len = sizeof(c->local);
	getsockname(c->fd, (struct sockaddr *)&c->local, &c->local_len);
	if (c->ssl) {
		c->state = CONN_HANDSHAKE;
		handshake_begin(tp);
		conn_handshake(c);
		return;
	}
	c->state = CONN_OPEN;
	conn_arm_idle(c);
	if (tp->h.conn_ready_cb)
		tp->h.conn_ready_cb(tp, c, true, tp->h.arg);
	if (c->state == CONN_OPEN)
		conn_flush(c);
}

static void conn_io_cb(int fd, uint32_t events, void *arg)
{
	struct tp_conn *c = arg;
	(void)fd;
	tp_conn_ref(c);
	if (c->state == CONN_CONNECTING) {
		if (events & (LOOP_WRITE | LOOP_ERROR | LOOP_HUP))
			conn_connected(c);
	} else if (c->state == CONN_HANDSHAKE) {
		conn_handshake(c);
	} else if (c->state == CONN_OPEN) {
		if (events & LOOP_WRITE) {
			c->want_write = false;
			conn_flush(c);
		}
		if (c->state == CONN_OPEN && (events & (LOOP_READ | LOOP_ERROR | LOOP_HUP)))
			conn_read(c);
	}
	tp_conn_unref(c);
}

static void listener_cb(int fd, uint32_t events, void *arg)
{
	struct tp_listener *l = arg;
	struct transport *tp = l->tp;
	(void)events;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int cfd = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0)
			return;
		char addr[64];
		tp_addr_format((struct sockaddr *)&ss, addr, sizeof(addr));
		if (atomic_load(&tp->group->conns) >= tp->limits.max_conns) {
			tp->stats.refused_max_conns++;
			if (log_ratelimit_allow(&tp->rl_refused))
				LOG_WARN("conn.refused", "peer=%s reason=max_conns limit=%u", addr,
					 tp->limits.max_conns);
			close(cfd);
			continue;
		}
		if (l->proto == TP_PROTO_TLS &&
		    atomic_load(&tp->group->handshakes) >= tp->limits.max_handshakes) {
			tp->stats.refused_handshakes++;
			if (log_ratelimit_allow(&tp->rl_refused))
				LOG_WARN("conn.refused", "peer=%s reason=max_handshakes limit=%u", addr,
					 tp->limits.max_handshakes);
			close(cfd);
			continue;
		}
		int rc = ip_count_inc(tp, (struct sockaddr *)&ss, sl);
		if (rc < 0) {
			tp->stats.refused_per_ip++;
			if (log_ratelimit_allow(&tp->rl_refused))
				LOG_WARN("conn.refused", "peer=%s reason=max_conns_per_ip limit=%u", addr,
					 tp->limits.max_conns_per_ip);
			close(cfd);
			continue;
		}
		int one = 1;
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct tp_conn *c = conn_new(tp, cfd, l->proto, true, (struct sockaddr *)&ss, sl);
		if (!c) {
			ip_count_dec(tp, (struct sockaddr *)&ss);
			close(cfd);
			continue;
		}
		tp->stats.conns_accepted++;
		if (l->proto == TP_PROTO_TLS) {
			if (ip_handshake_inc(tp, (struct sockaddr *)&ss) < 0) {
				tp->stats.refused_handshakes_per_ip++;
				if (log_ratelimit_allow(&tp->rl_refused))
					LOG_WARN("conn.refused", "peer=%s reason=max_handshakes_per_ip limit=%u",
						 addr, tp->limits.max_handshakes_per_ip);
				conn_close_now(c, "handshakes per address");
				continue;
			}
			c->ip_handshake = true;
			if (tls_ssl_server_create(l->ctx, &c->ssl) < 0 || SSL_set_fd(c->ssl, cfd) != 1) {
				conn_close_now(c, "out of memory");
				continue;
			}
			c->state = CONN_HANDSHAKE;
			handshake_begin(tp);
			loop_timer_start(tp->loop, &c->timer, tp->limits.handshake_timeout_ms);
		} else {
			c->state = CONN_OPEN;
			conn_arm_idle(c);
		}
		if (loop_fd_add(tp->loop, cfd, LOOP_READ, conn_io_cb, c) < 0) {
			conn_close_now(c, "loop registration failed");
			continue;
		}
	}
}

static void udp_cb(int fd, uint32_t events, void *arg)
{
	struct tp_listener *l = arg;
	struct transport *tp = l->tp;
	(void)events;
	for (int i = 0; i < 64; i++) {
		struct tp_source src = {.proto = TP_PROTO_UDP, .udp_fd = fd};
		src.remote_len = sizeof(src.remote);
		ssize_t n = recvfrom(fd, tp->udp_buf, TP_UDP_BUF, MSG_TRUNC,
				     (struct sockaddr *)&src.remote, &src.remote_len);
		if (n < 0)
			return;
		if ((size_t)n > SIPS_MAX_MSG_SIZE) {
			tp->stats.oversize++;
			continue;
		}
		if (n == 0 || (n <= 4 && strspn(tp->udp_buf, "\r\n") == (size_t)n))
			continue; /* keep-alive datagrams carry nothing to answer */
		src.local_len = sizeof(src.local);
		getsockname(fd, (struct sockaddr *)&src.local, &src.local_len);
		tp->stats.messages_in++;
		tp->h.message_cb(tp, &src, tp->udp_buf, (size_t)n, tp->h.arg);
	}
}

int tp_udp_send(struct transport *tp, int src_fd, const struct sockaddr *dst, socklen_t dst_len,
		const char *buf, size_t len)
{
	if (src_fd < 0) {
		for (unsigned i = 0; i < tp->nlisteners; i++)
			if (tp->listeners[i].proto == TP_PROTO_UDP &&
			    ((struct sockaddr_storage *)dst)->ss_family != AF_UNSPEC) {
				src_fd = tp->listeners[i].fd;
				break;
			}
	}
	if (src_fd < 0)
		return -ENOTCONN;
	ssize_t n = sendto(src_fd, buf, len, MSG_NOSIGNAL, dst, dst_len);
	if (n < 0)
		return -errno;
	tp->stats.messages_out++;
	return 0;
}

int tp_connect(struct transport *tp, enum tp_proto proto, const struct sockaddr *dst,
	       socklen_t dst_len, struct tls_ctx *client_ctx, struct str domain,
	       struct tp_conn **out)
{
	if (proto == TP_PROTO_UDP || (proto == TP_PROTO_TLS && !client_ctx))
		return -EINVAL;
	if (atomic_load(&tp->group->conns) >= tp->limits.max_conns) {
		tp->stats.refused_max_conns++;
		return -EMFILE;
	}
	int fd = socket(dst->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, dst, dst_len) < 0 && errno != EINPROGRESS) {
		int e = -errno;
		close(fd);
		return e;
	}
	struct tp_conn *c = conn_new(tp, fd, proto, false, dst, dst_len);
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->state = CONN_CONNECTING;
	tp->stats.conns_opened++;
	if (proto == TP_PROTO_TLS) {
		if (domain.len) {
			c->sni = strndup(domain.s, domain.len < TLS_IDENTITY_MAX_NAME
						       ? domain.len
						       : TLS_IDENTITY_MAX_NAME);
			if (!c->sni) {
				conn_close_now(c, "out of memory");
				return -ENOMEM;
			}
		}
		int rc = tls_ssl_client_create(client_ctx, domain, &c->ssl);
		if (rc < 0 || SSL_set_fd(c->ssl, fd) != 1) {
			conn_close_now(c, "TLS setup failed");
			return rc < 0 ? rc : -ENOMEM;
		}
	}
	loop_timer_start(tp->loop, &c->timer, tp->limits.handshake_timeout_ms);
	int rc = loop_fd_add(tp->loop, fd, LOOP_READ | LOOP_WRITE, conn_io_cb, c);
	if (rc < 0) {
		conn_close_now(c, "loop registration failed");
		return rc;
	}
	tp_conn_ref(c);
	*out = c;
	return 0;
}

struct tp_conn *tp_conn_find(struct transport *tp, enum tp_proto proto, const struct sockaddr *dst,
			     struct str domain)
{
	for (struct tp_conn *c = tp->buckets[addr_hash(dst, true)]; c; c = c->hnext) {
		if (c->proto != proto || c->state == CONN_CLOSED || c->close_after_flush ||
		    !addr_equal(conn_key_addr(c), dst, true))
			continue;
		/* RFC 5923 §5: an inbound connection carries requests back only
		 * when its peer asked for it with ;alias (and we honoured it). */
		if (c->inbound && !c->alias)
			continue;
		if (proto == TP_PROTO_TLS && domain.len) {
			/* RFC 5923 §9 / spec rule 17: reuse only a connection whose
			 * verified identities hold the target domain. Connections
			 * still handshaking were opened for one domain: use them
			 * only for that same domain. */
			if (c->state == CONN_OPEN) {
				if (!c->authenticated || !c->ids || !tls_identity_match(c->ids, domain))
					continue;
			} else if (c->inbound || !str_case_eq(tp_conn_sni(c), domain)) {
				continue;
			}
		}
		return c;
	}
	return NULL;
}

void tp_conn_foreach(struct transport *tp, void (*cb)(struct tp_conn *c, void *arg), void *arg)
{
	for (unsigned b = 0; b < TP_HASH_BUCKETS; b++)
		for (struct tp_conn *c = tp->id_buckets[b]; c; c = c->inext)
			if (c->state != CONN_CLOSED)
				cb(c, arg);
}

struct tp_conn *tp_conn_by_id(struct transport *tp, uint64_t id)
{
	for (struct tp_conn *c = tp->id_buckets[id & (TP_HASH_BUCKETS - 1)]; c; c = c->inext)
		if (c->id == id && c->state != CONN_CLOSED)
			return c;
	return NULL;
}

void tp_destroy(struct transport *tp)
{
	if (!tp)
		return;
	for (unsigned b = 0; b < TP_HASH_BUCKETS; b++)
		while (tp->buckets[b])
			conn_close_now(tp->buckets[b], "shutdown");
	for (unsigned i = 0; i < tp->nlisteners; i++) {
		loop_fd_remove(tp->loop, tp->listeners[i].fd);
		close(tp->listeners[i].fd);
	}
	if (tp->owns_group)
		tp_group_destroy(tp->group);
	free(tp->udp_buf);
	free(tp);
}

/* ---- accessors ---- */

enum tp_proto tp_conn_proto(const struct tp_conn *c) { return c->proto; }
void tp_conn_mark_flow(struct tp_conn *c) { c->flow = true; }
bool tp_conn_is_flow(const struct tp_conn *c) { return c->flow; }

void tp_conn_set_alias(struct tp_conn *c, const struct sockaddr *sent_by, socklen_t len)
{
	len = addr_fit(sent_by, len);
	if (c->state == CONN_CLOSED || !len)
		return;
	/* Re-file the connection under the alias address. */
	conn_addr_unlink(c);
	memcpy(&c->alias_addr, sent_by, len);
	group_unshare(c);
	c->alias = true;
	conn_hash_insert(c->tp, c);
	group_share(c);
}
bool tp_conn_alias(const struct tp_conn *c) { return c->alias; }
uint64_t tp_conn_id(const struct tp_conn *c) { return c->id; }
bool tp_conn_is_open(const struct tp_conn *c) { return c->state == CONN_OPEN; }
bool tp_conn_is_inbound(const struct tp_conn *c) { return c->inbound; }
bool tp_conn_authenticated(const struct tp_conn *c) { return c->authenticated; }
const struct tls_identity_set *tp_conn_identities(const struct tp_conn *c)
{
	return c->ids ? c->ids : &tls_identity_set_empty;
}
const char *tp_conn_tls_version(const struct tp_conn *c)
{
	return c->ssl ? SSL_get_version(c->ssl) : "";
}
struct str tp_conn_sni(const struct tp_conn *c)
{
	return c->sni ? str_from_cstr(c->sni) : STR_NULL;
}
const char *tp_conn_failure(const struct tp_conn *c)
{
	return c->failure ? c->failure : "";
}
const struct tls_peer *tp_conn_tls_peer(const struct tp_conn *c)
{
	return c->ssl ? tls_ssl_peer(c->ssl) : NULL;
}
const struct tp_stats *tp_stats(const struct transport *tp) { return &tp->stats; }
const struct sockaddr *tp_conn_remote(const struct tp_conn *c, socklen_t *len)
{
	if (len)
		*len = c->remote_len;
	return (const struct sockaddr *)&c->remote;
}
