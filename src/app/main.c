/* main.c: the sipsd daemon: configuration, TLS contexts, worker threads,
 * transports, and the proxy/registrar of each worker. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "base/log.h"
#include "cfg/cfg.h"
#include "control.h"
#include "loop/worker.h"
#include "proxy/proxy.h"
#include "store/location.h"
#include "tls/tls_ctx.h"
#include "transport/transport.h"

struct server;

/* What one worker owns: its transport and its TLS contexts. */
struct server_worker {
	struct server *srv;
	unsigned index;
	struct transport *tp;
	struct tls_ctx *tls[CFG_MAX_LISTENERS];       /* per TLS listener */
	struct tls_ctx *client_tls[CFG_MAX_DOMAINS];  /* per domain, outbound */
	struct proxy *proxy;
};

struct server {
	struct cfg cfg;
	unsigned char flow_key[32]; /* one per process: tokens verify at every worker */
	struct digest_ctx *digest;
	struct credentials *users;
	struct tls_ticket_keys *ticket_keys; /* one ring: tickets resume at every worker */
	struct control *control;
	uint64_t reloads_done, reloads_refused;
	struct tp_group *group;
	struct worker_pool *pool;
	struct server_worker *workers;
	struct txn_layer **layers; /* every worker's, for responses owned elsewhere */
	struct location *loc;
	unsigned nworkers;
};

static void usage(FILE *out)
{
	fprintf(out, "usage: sipsd -c FILE [-t] [-v]\n"
		     "  -c FILE  configuration file (docs/configuration.md)\n"
		     "  -t       check the configuration (files, certificates) and exit\n"
		     "  -v       verbose: log level debug\n");
}

static void message_cb(struct transport *tp, const struct tp_source *src, const char *buf,
		       size_t len, void *arg)
{
	struct server_worker *w = arg;
	(void)tp;
	txn_layer_receive(proxy_txn_layer(w->proxy), src, buf, len);
}

static void conn_closed_cb(struct transport *tp, struct tp_conn *conn, const char *reason,
			   void *arg)
{
	struct server_worker *w = arg;
	(void)tp;
	(void)reason;
	if (w->proxy)
		proxy_conn_closed(w->proxy, conn);
}

static enum tp_proto proto_of(enum cfg_proto p)
{
	return p == CFG_PROTO_UDP ? TP_PROTO_UDP : p == CFG_PROTO_TCP ? TP_PROTO_TCP : TP_PROTO_TLS;
}

static void tls_cfg_for_domain(const struct cfg *cfg, const struct cfg_domain *d,
			       struct tls_ctx_cfg *tc)
{
	tls_ctx_cfg_init(tc);
	tc->cert_file = d->cert;
	tc->key_file = d->key[0] ? d->key : NULL;
	tc->chain_file = d->chain[0] ? d->chain : NULL;
	tc->ca_file = cfg->ca_file[0] ? cfg->ca_file : NULL;
	tc->ca_dir = cfg->ca_dir[0] ? cfg->ca_dir : NULL;
	tc->crl_file = cfg->crl_file[0] ? cfg->crl_file : NULL;
	tc->policy = cfg->policy;
}

/* The proxy's view of the configuration for one worker. */
static int proxy_cfg_build(const struct cfg *cfg, struct server_worker *w, struct tls_ctx **client,
			   struct proxy_cfg *pc)
{
	memset(pc, 0, sizeof(*pc));
	registrar_cfg_default(&pc->registrar);
	snprintf(pc->dns_servers, sizeof(pc->dns_servers), "%s", cfg->dns_servers);
	pc->dns.timeout_ms = cfg->dns_timeout_ms;
	pc->dns.tries = cfg->dns_tries;
	pc->dns.sip_prefer_tls = cfg->sip_prefer_tls;
	pc->policy = cfg->peer_policy;
	pc->digest = w->srv->digest;
	pc->users = w->srv->users;
	pc->auth_register = cfg->auth_register;
	pc->auth_requests = cfg->auth_requests;
	pc->auth_check_uri = cfg->auth_check_uri;
	memcpy(pc->flow_key, w->srv->flow_key, sizeof(pc->flow_key));
	pc->node = cfg->location.node;
	for (unsigned i = 0; i < cfg->nnodes && i < PROXY_MAX_NODES; i++) {
		struct proxy_node *pn = &pc->nodes[pc->nnodes];
		pn->number = cfg->nodes[i].number;
		if (tp_addr_parse(cfg->nodes[i].addr, 5061, &pn->addr, &pn->len) < 0) {
			LOG_ERROR("cfg.node", "line=%d addr=%s reason=\"not a numeric address\"",
				  cfg->nodes[i].line, cfg->nodes[i].addr);
			return -EINVAL;
		}
		pc->nnodes++;
	}
	pc->registrar.min_expires = cfg->min_expires;
	pc->registrar.max_expires = cfg->max_expires;
	pc->registrar.default_expires = cfg->default_expires;
	for (unsigned j = 0; j < cfg->ndomains && j < PROXY_MAX_DOMAINS; j++) {
		snprintf(pc->domains[j].name, sizeof(pc->domains[j].name), "%s", cfg->domains[j].name);
		pc->domains[j].client_tls = client[j];
		pc->ndomains++;
	}
	for (unsigned i = 0; i < cfg->nlisteners && i < PROXY_MAX_LOCAL_ADDRS; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];
		struct proxy_local *pl = &pc->locals[pc->nlocals];
		pl->proto = proto_of(l->proto);
		if (tp_addr_parse(l->addr, l->proto == CFG_PROTO_TLS ? 5061 : 5060, &pl->addr, &pl->len) == 0)
			pc->nlocals++;
	}
	for (unsigned i = 0; i < cfg->nroutes && i < PROXY_MAX_DOMAINS; i++) {
		const struct cfg_route *r = &cfg->routes[i];
		snprintf(pc->hops[pc->nhops].domain, sizeof(pc->hops[pc->nhops].domain), "%s", r->domain);
		pc->hops[pc->nhops].proto = proto_of(r->proto);
		if (tp_addr_parse(r->addr, r->proto == CFG_PROTO_TLS ? 5061 : 5060,
				  &pc->hops[pc->nhops].addr, &pc->hops[pc->nhops].len) < 0) {
			LOG_ERROR("cfg.route", "line=%d addr=%s reason=\"not a numeric address\"", r->line,
				  r->addr);
			return -EINVAL;
		}
		pc->nhops++;
	}
	return 0;
}

static void tls_contexts_free(struct tls_ctx **server, struct tls_ctx **client)
{
	for (unsigned j = 0; j < CFG_MAX_LISTENERS; j++) {
		tls_ctx_destroy(server[j]);
		server[j] = NULL;
	}
	for (unsigned j = 0; j < CFG_MAX_DOMAINS; j++) {
		tls_ctx_destroy(client[j]);
		client[j] = NULL;
	}
}

/* The TLS contexts of one worker from `cfg`: a server context per TLS
 * listener (its default domain, every other domain chosen by SNI, spec
 * rule 10) and a client context per domain (our certificate for outbound
 * mutual TLS). All or nothing: on error nothing is left allocated. */
static int tls_contexts_build(struct server *srv, const struct cfg *cfg, struct tls_ctx **server,
			      struct tls_ctx **client)
{
	int rc = 0;
	for (unsigned i = 0; rc == 0 && i < cfg->nlisteners; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];
		if (l->proto != CFG_PROTO_TLS)
			continue;
		const struct cfg_domain *d = &cfg->domains[0];
		for (unsigned j = 0; j < cfg->ndomains; j++)
			if (l->domain[0] && !strcasecmp(cfg->domains[j].name, l->domain))
				d = &cfg->domains[j];
		struct tls_ctx_cfg tc;
		tls_cfg_for_domain(cfg, d, &tc);
		tc.domain = d->name;
		tc.require_client_cert = l->require_client_cert;
		tc.ticket_keys = srv->ticket_keys;
		rc = tls_ctx_create(&tc, TLS_SIDE_SERVER, &server[i]);
		for (unsigned j = 0; rc == 0 && j < cfg->ndomains; j++) {
			const struct cfg_domain *o = &cfg->domains[j];
			if (o != d)
				rc = tls_ctx_add_domain(server[i], o->cert, o->key[0] ? o->key : NULL,
							o->chain[0] ? o->chain : NULL);
		}
		if (rc < 0)
			LOG_ERROR("cfg.tls", "line=%d domain=%s reason=\"%s\"", d->line, d->name,
				  strerror(-rc));
	}
	for (unsigned j = 0; rc == 0 && j < cfg->ndomains; j++) {
		struct tls_ctx_cfg tc;
		tls_cfg_for_domain(cfg, &cfg->domains[j], &tc);
		rc = tls_ctx_create(&tc, TLS_SIDE_CLIENT, &client[j]);
		if (rc < 0)
			LOG_ERROR("cfg.tls", "line=%d domain=%s side=client reason=\"%s\"",
				  cfg->domains[j].line, cfg->domains[j].name, strerror(-rc));
	}
	if (rc < 0)
		tls_contexts_free(server, client);
	return rc;
}

static int worker_setup(struct server *srv, struct server_worker *w)
{
	const struct cfg *cfg = &srv->cfg;
	struct tp_limits lim;
	tp_limits_default(&lim);
	lim.max_conns = cfg->limits.max_conns;
	lim.max_conns_per_ip = cfg->limits.max_conns_per_ip;
	lim.max_handshakes = cfg->limits.max_handshakes;
	lim.handshake_timeout_ms = cfg->limits.handshake_timeout_ms;
	lim.idle_timeout_ms = cfg->limits.idle_timeout_ms;
	lim.max_write_queue = cfg->limits.max_write_queue;
	lim.cert_warn_days = cfg->cert_warn_days;
	lim.message_timeout_ms = cfg->limits.message_timeout_ms;
	lim.max_handshakes_per_ip = cfg->limits.max_handshakes_per_ip;
	struct tp_handler h = {.message_cb = message_cb, .conn_closed_cb = conn_closed_cb, .arg = w};
	int rc = tp_create(worker_loop(worker_pool_get(srv->pool, w->index)), srv->group, &lim, &h,
			   &w->tp);
	if (rc < 0)
		return rc;
	tp_set_worker(w->tp, w->index);
	rc = tls_contexts_build(srv, cfg, w->tls, w->client_tls);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < cfg->nlisteners; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];
		struct sockaddr_storage ss;
		socklen_t sl;
		uint16_t defport = l->proto == CFG_PROTO_TLS ? 5061 : 5060;
		if (tp_addr_parse(l->addr, defport, &ss, &sl) < 0) {
			LOG_ERROR("cfg.listen", "line=%d addr=%s reason=\"not a numeric address\"", l->line,
				  l->addr);
			return -EINVAL;
		}
		enum tp_proto proto = proto_of(l->proto);
		struct tls_ctx *ctx = proto == TP_PROTO_TLS ? w->tls[i] : NULL;
		rc = tp_listen(w->tp, proto, (struct sockaddr *)&ss, sl, ctx);
		if (rc < 0) {
			LOG_ERROR("listen", "proto=%s addr=%s reason=\"%s\"", tp_proto_name(proto), l->addr,
				  strerror(-rc));
			return rc;
		}
		if (w->index == 0)
			LOG_INFO("listen", "proto=%s addr=%s port=%u", tp_proto_name(proto), l->addr,
				 tp_listener_port(w->tp, proto));
	}
	struct proxy_cfg pc;
	rc = proxy_cfg_build(cfg, w, w->client_tls, &pc);
	if (rc < 0)
		return rc;
	rc = proxy_create(worker_loop(worker_pool_get(srv->pool, w->index)), w->tp, w->index, srv->pool,
			  srv->layers, srv->loc, &pc, &w->proxy);
	if (rc < 0)
		return rc;
	srv->layers[w->index] = proxy_txn_layer(w->proxy);
	return 0;
}

static void server_teardown(struct server *srv)
{
	for (unsigned i = 0; i < srv->nworkers; i++) {
		struct server_worker *w = &srv->workers[i];
		proxy_destroy(w->proxy);
		w->proxy = NULL;
		tp_destroy(w->tp);
		tls_contexts_free(w->tls, w->client_tls);
	}
	worker_pool_destroy(srv->pool);
	tp_group_destroy(srv->group);
	location_destroy(srv->loc);
	digest_ctx_destroy(srv->digest);
	tls_ticket_keys_destroy(srv->ticket_keys);
	credentials_free(srv->users);
	free(srv->layers);
	free(srv->workers);
}

/* ---- operations: readiness, privileges, certificate lifetimes ---- */

/* systemd Type=notify (sd_notify(3) protocol, no libsystemd needed): a
 * datagram to $NOTIFY_SOCKET. Quiet when not run by systemd. */
static void notify_systemd(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	if (n >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, n);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	ssize_t w = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
			   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
	(void)w;
	close(fd);
}

/* Once every socket is bound: become `user` (from root only). */
/* The cluster's flow-token key: SHA-256 of the secret file, which must
 * hold at least 32 bytes (e.g. `openssl rand -hex 32`). */
static int cluster_key_load(const char *path, unsigned char key[32])
{
	FILE *f = fopen(path, "rb");
	unsigned char buf[4096];
	size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
	if (f)
		fclose(f);
	if (n < 32) {
		LOG_ERROR("start", "reason=\"cluster secret_file %s: %s\"", path,
			  f ? "shorter than 32 bytes" : strerror(errno));
		return -EINVAL;
	}
	SHA256(buf, n, key);
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

static int drop_privileges(const char *user)
{
	if (!user[0])
		return 0;
	if (geteuid() != 0) {
		LOG_WARN("privileges", "user=%s reason=\"not started as root: user ignored\"", user);
		return 0;
	}
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		LOG_ERROR("privileges", "user=%s reason=\"no such user\"", user);
		return -ENOENT;
	}
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		LOG_ERROR("privileges", "user=%s reason=\"%s\"", user, strerror(errno));
		return -errno;
	}
	LOG_INFO("privileges", "user=%s uid=%u gid=%u", user, (unsigned)pw->pw_uid,
		 (unsigned)pw->pw_gid);
	return 0;
}

/* Whole days until the certificate in `path` expires (negative once it
 * has). Returns 0, or -ENOENT when it cannot be read. */
static int cert_days_left(const char *path, int *days)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (!x)
		return -ENOENT;
	int d = 0, secs = 0, rc = -ENOENT;
	ASN1_TIME *now = ASN1_TIME_set(NULL, time(NULL));
	if (now && ASN1_TIME_diff(&d, &secs, now, X509_get0_notAfter(x)) == 1) {
		*days = (d == 0 && secs < 0) ? -1 : d;
		rc = 0;
	}
	ASN1_TIME_free(now);
	X509_free(x);
	return rc;
}

/* Warn before a domain certificate expires (and say when each does). */
static void certificates_check(const struct cfg *cfg)
{
	for (unsigned j = 0; j < cfg->ndomains; j++) {
		int days;
		if (cert_days_left(cfg->domains[j].cert, &days) < 0)
			continue;
		if (days < 0)
			LOG_ERROR("tls.cert_expiry", "domain=%s cert=%s expired=yes", cfg->domains[j].name,
				  cfg->domains[j].cert);
		else if ((unsigned)days < cfg->cert_warn_days)
			LOG_WARN("tls.cert_expiry", "domain=%s cert=%s days_left=%d warn_days=%u",
				 cfg->domains[j].name, cfg->domains[j].cert, days, cfg->cert_warn_days);
		else
			LOG_INFO("tls.cert_expiry", "domain=%s days_left=%d", cfg->domains[j].name, days);
	}
}

/* ---- control socket and metrics ---- */

/* A question for every worker, answered on its own thread. */
struct ask_job {
	struct server_worker *w;
	sem_t *done;
	struct control_stats *peers; /* stats: connection counts gathered here */
	pthread_mutex_t *peers_lock;
	struct tp_stats tp;
	struct txn_stats txn;
	struct proxy_stats proxy;
	char *buf; /* connections: lines */
	size_t cap, len;
};

static void conn_count_cb(struct tp_conn *c, void *arg)
{
	struct ask_job *j = arg;
	struct control_stats *s = j->peers;
	pthread_mutex_lock(j->peers_lock);
	if (tp_conn_proto(c) == TP_PROTO_TCP)
		s->conns_tcp++;
	else if (tp_conn_proto(c) == TP_PROTO_TLS)
		s->conns_tls++;
	if (tp_conn_authenticated(c)) {
		s->conns_tls_authenticated++;
		const struct tls_identity_set *ids = tp_conn_identities(c);
		for (size_t k = 0; k < ids->count; k++) {
			struct str name = tls_identity_set_name(ids, k);
			unsigned i = 0;
			while (i < s->npeers && !str_eq(str_from_cstr(s->peers[i].identity), name))
				i++;
			if (i == s->npeers && s->npeers < sizeof(s->peers) / sizeof(s->peers[0]))
				str_to_cbuf(name, s->peers[s->npeers++].identity, sizeof(s->peers[0].identity));
			if (i < s->npeers)
				s->peers[i].conns++;
		}
	}
	pthread_mutex_unlock(j->peers_lock);
}

static void ask_stats_cb(void *arg)
{
	struct ask_job *j = arg;
	tp_conn_foreach(j->w->tp, conn_count_cb, j);
	j->tp = *tp_stats(j->w->tp);
	j->txn = *txn_layer_stats(proxy_txn_layer(j->w->proxy));
	j->proxy = *proxy_stats(j->w->proxy);
	sem_post(j->done);
}

static void conn_line_cb(struct tp_conn *c, void *arg)
{
	struct ask_job *j = arg;
	if (j->len + 512 >= j->cap)
		return;
	char addr[64], ids[256] = "{}";
	socklen_t len;
	tp_addr_format(tp_conn_remote(c, &len), addr, sizeof(addr));
	tls_identity_set_format(tp_conn_identities(c), ids, sizeof(ids));
	int n = snprintf(j->buf + j->len, j->cap - j->len,
			 "worker=%u conn=%llu proto=%s dir=%s peer=%s tls=%s authenticated=%s "
			 "identities=%s\n",
			 j->w->index, (unsigned long long)tp_conn_id(c), tp_proto_name(tp_conn_proto(c)),
			 tp_conn_is_inbound(c) ? "in" : "out", addr,
			 tp_conn_tls_version(c)[0] ? tp_conn_tls_version(c) : "-",
			 tp_conn_authenticated(c) ? "yes" : "no", ids);
	if (n > 0)
		j->len += (size_t)n;
}

static void ask_conns_cb(void *arg)
{
	struct ask_job *j = arg;
	tp_conn_foreach(j->w->tp, conn_line_cb, j);
	sem_post(j->done);
}

/* Post `fn` to every worker and wait (bounded) for the answers. */
static void ask_workers(struct server *srv, struct ask_job *jobs, loop_work_fn fn)
{
	sem_t done;
	sem_init(&done, 0, 0);
	unsigned posted = 0;
	for (unsigned i = 0; i < srv->nworkers; i++) {
		jobs[i].w = &srv->workers[i];
		jobs[i].done = &done;
		if (worker_pool_post(srv->pool, i, fn, &jobs[i]) == 0)
			posted++;
	}
	for (unsigned i = 0; i < posted; i++) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 5;
		if (sem_timedwait(&done, &ts) < 0)
			break; /* a worker did not answer: report what came */
	}
	sem_destroy(&done);
}

static void control_stats_cb(void *arg, struct control_stats *out)
{
	struct server *srv = arg;
	struct ask_job *jobs = calloc(srv->nworkers, sizeof(*jobs));
	if (!jobs)
		return;
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	for (unsigned i = 0; i < srv->nworkers; i++) {
		jobs[i].peers = out;
		jobs[i].peers_lock = &lock;
	}
	ask_workers(srv, jobs, ask_stats_cb);
	out->workers = srv->nworkers;
	for (unsigned i = 0; i < srv->nworkers; i++) {
		const struct ask_job *j = &jobs[i];
		uint64_t *d = (uint64_t *)&out->tp;
		const uint64_t *sv = (const uint64_t *)&j->tp;
		/* The counters are uint64_t in a row, the gauges follow. */
		for (size_t k = 0; k < offsetof(struct tp_stats, conns_current) / sizeof(uint64_t); k++)
			d[k] += sv[k];
		out->tp.conns_current += j->tp.conns_current;
		out->tp.handshakes_current += j->tp.handshakes_current;
		for (size_t k = 0; k <= TLS_VERDICT_COUNT; k++)
			out->tp.handshake_refusals[k] += j->tp.handshake_refusals[k];
		d = (uint64_t *)&out->txn;
		sv = (const uint64_t *)&j->txn;
		for (size_t k = 0; k < offsetof(struct txn_stats, server_current) / sizeof(uint64_t); k++)
			d[k] += sv[k];
		out->txn.server_current += j->txn.server_current;
		out->txn.client_current += j->txn.client_current;
		d = (uint64_t *)&out->proxy;
		sv = (const uint64_t *)&j->proxy;
		for (size_t k = 0; k < sizeof(struct proxy_stats) / sizeof(uint64_t); k++)
			d[k] += sv[k];
	}
	location_counts(srv->loc, &out->aors, &out->bindings);
	for (unsigned d = 0; d < srv->cfg.ndomains && out->ncerts < 16; d++) {
		int days;
		if (cert_days_left(srv->cfg.domains[d].cert, &days) == 0) {
			snprintf(out->certs[out->ncerts].domain, sizeof(out->certs[0].domain), "%s",
				 srv->cfg.domains[d].name);
			out->certs[out->ncerts++].days_left = days;
		}
	}
	out->reloads_done = srv->reloads_done;
	out->reloads_refused = srv->reloads_refused;
	free(jobs);
}

static size_t control_conns_cb(void *arg, char *buf, size_t cap)
{
	struct server *srv = arg;
	struct ask_job *jobs = calloc(srv->nworkers, sizeof(*jobs));
	if (!jobs)
		return 0;
	size_t share = cap / (srv->nworkers ? srv->nworkers : 1);
	for (unsigned i = 0; i < srv->nworkers; i++) {
		jobs[i].buf = malloc(share);
		jobs[i].cap = jobs[i].buf ? share : 0;
	}
	ask_workers(srv, jobs, ask_conns_cb);
	size_t n = 0;
	for (unsigned i = 0; i < srv->nworkers; i++) {
		if (jobs[i].len && n + jobs[i].len < cap) {
			memcpy(buf + n, jobs[i].buf, jobs[i].len);
			n += jobs[i].len;
		}
		free(jobs[i].buf);
	}
	buf[n < cap ? n : cap - 1] = '\0';
	free(jobs);
	return n;
}

struct reg_lines {
	char *buf;
	size_t cap, len;
	int64_t now;
};

static void reg_line_cb(const char *aor, const struct loc_binding *b, void *arg)
{
	struct reg_lines *r = arg;
	if (r->len + 1024 >= r->cap)
		return;
	int n = snprintf(r->buf + r->len, r->cap - r->len,
			 "aor=%s contact=<%s> expires_in=%lld q=%u.%03u flow=%s%u:%llu instance=%s\n", aor,
			 b->contact, (long long)(b->expires_at - r->now), b->q1000 / 1000, b->q1000 % 1000,
			 b->flow.conn_id ? "worker" : "udp", b->flow.worker,
			 (unsigned long long)b->flow.conn_id, b->instance[0] ? b->instance : "-");
	if (n > 0)
		r->len += (size_t)n;
}

static size_t control_regs_cb(void *arg, char *buf, size_t cap)
{
	struct server *srv = arg;
	struct reg_lines r = {buf, cap, 0, (int64_t)time(NULL)};
	location_foreach(srv->loc, reg_line_cb, &r);
	buf[r.len < cap ? r.len : cap - 1] = '\0';
	return r.len;
}

static void control_reload_cb(void *arg)
{
	(void)arg;
	kill(getpid(), SIGHUP); /* the main thread reloads, as on a signal */
}

/* ---- reload (SIGHUP) ---- */

struct reload_job {
	struct server_worker *w;
	const struct cfg *cfg;
	struct tls_ctx *server[CFG_MAX_LISTENERS];
	struct tls_ctx *client[CFG_MAX_DOMAINS];
	struct proxy_cfg pc;
	sem_t *done;
};

/* On the worker's thread: swap in the new contexts and configuration; the
 * old contexts go (connections made with them keep a reference). */
static void reload_apply_cb(void *arg)
{
	struct reload_job *j = arg;
	struct server_worker *w = j->w;
	for (unsigned i = 0; i < j->cfg->nlisteners; i++) {
		if (j->cfg->listeners[i].proto != CFG_PROTO_TLS)
			continue;
		tp_listener_set_tls(w->tp, i, j->server[i]);
		struct tls_ctx *old = w->tls[i];
		w->tls[i] = j->server[i];
		j->server[i] = old;
	}
	proxy_reconfigure(w->proxy, &j->pc);
	for (unsigned k = 0; k < CFG_MAX_DOMAINS; k++) {
		struct tls_ctx *old = w->client_tls[k];
		w->client_tls[k] = j->client[k];
		j->client[k] = old;
	}
	tls_contexts_free(j->server, j->client);
	sem_post(j->done);
}

static bool listeners_same(const struct cfg *a, const struct cfg *b)
{
	if (a->nlisteners != b->nlisteners)
		return false;
	for (unsigned i = 0; i < a->nlisteners; i++)
		if (a->listeners[i].proto != b->listeners[i].proto ||
		    strcmp(a->listeners[i].addr, b->listeners[i].addr) != 0)
			return false;
	return a->workers == b->workers;
}

/* Re-read the configuration: certificates, keys, CA bundles, CRLs,
 * policies, peers, routes, registrar settings. Anything wrong (syntax, an
 * unreadable or bad certificate, changed listeners) is refused with the
 * reason and the running state kept. Limits, DNS and Digest settings apply
 * at the next start. */
static void server_reload(struct server *srv, const char *path)
{
	uint64_t done_before = srv->reloads_done;
	struct cfg *nc = malloc(sizeof(*nc));
	struct reload_job *jobs = calloc(srv->nworkers, sizeof(*jobs));
	char err[512];
	if (!nc || !jobs) {
		LOG_ERROR("reload", "result=refused reason=\"out of memory\"");
		goto out;
	}
	if (cfg_load(path, nc, err, sizeof(err)) < 0) {
		LOG_ERROR("reload", "result=refused reason=\"%s\" state=unchanged", err);
		goto out;
	}
	if (!listeners_same(&srv->cfg, nc)) {
		LOG_ERROR("reload", "result=refused reason=\"listeners or workers changed: restart to "
				    "apply\" state=unchanged");
		goto out;
	}
	for (unsigned i = 0; i < srv->nworkers; i++) {
		jobs[i].w = &srv->workers[i];
		jobs[i].cfg = nc;
		if (tls_contexts_build(srv, nc, jobs[i].server, jobs[i].client) < 0 ||
		    proxy_cfg_build(nc, &srv->workers[i], jobs[i].client, &jobs[i].pc) < 0) {
			LOG_ERROR("reload", "result=refused reason=\"a certificate, key or CA file is "
					    "unusable (see cfg.tls above)\" state=unchanged");
			for (unsigned k = 0; k <= i; k++)
				tls_contexts_free(jobs[k].server, jobs[k].client);
			goto out;
		}
	}
	sem_t done;
	sem_init(&done, 0, 0);
	unsigned posted = 0;
	for (unsigned i = 0; i < srv->nworkers; i++) {
		jobs[i].done = &done;
		if (worker_pool_post(srv->pool, i, reload_apply_cb, &jobs[i]) == 0)
			posted++;
		else
			tls_contexts_free(jobs[i].server, jobs[i].client);
	}
	for (unsigned i = 0; i < posted; i++)
		sem_wait(&done); /* each worker answers within one loop iteration */
	sem_destroy(&done);
	/* Keep the running limits, DNS and Digest settings (next start). */
	nc->limits = srv->cfg.limits;
	if (memcmp(&nc->location, &srv->cfg.location, sizeof(nc->location)) ||
	    strcmp(nc->cluster_secret_file, srv->cfg.cluster_secret_file))
		LOG_WARN("reload", "reason=\"[location] and [cluster] changes apply at the next start\"");
	nc->location = srv->cfg.location;
	memcpy(nc->cluster_secret_file, srv->cfg.cluster_secret_file, sizeof(nc->cluster_secret_file));
	srv->cfg = *nc;
	LOG_INFO("reload", "result=done workers=%u domains=%u", posted, nc->ndomains);
	srv->reloads_done++;
out:
	if (srv->reloads_done == done_before)
		srv->reloads_refused++;
	free(jobs);
	free(nc);
}

int main(int argc, char **argv)
{
	const char *cfg_path = NULL;
	bool test_only = false, verbose = false;
	int opt;
	while ((opt = getopt(argc, argv, "c:tvh")) != -1) {
		switch (opt) {
		case 'c': cfg_path = optarg; break;
		case 't': test_only = true; break;
		case 'v': verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!cfg_path) {
		usage(stderr);
		return 2;
	}
	static struct server srv;
	char err[512];
	if (cfg_load(cfg_path, &srv.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "sipsd: %s\n", err);
		return 1;
	}
	log_set_level(verbose ? LOG_LVL_DEBUG : (enum log_level)srv.cfg.log_level);
	if (srv.cfg.log_syslog && !test_only)
		log_use_syslog(true);
	if (test_only) {
		/* Load every TLS context once so bad certificates fail here. */
		for (unsigned j = 0; j < srv.cfg.ndomains; j++) {
			struct tls_ctx_cfg tc;
			struct tls_ctx *ctx;
			tls_ctx_cfg_init(&tc);
			tc.cert_file = srv.cfg.domains[j].cert;
			tc.key_file = srv.cfg.domains[j].key[0] ? srv.cfg.domains[j].key : NULL;
			tc.ca_file = srv.cfg.ca_file[0] ? srv.cfg.ca_file : NULL;
			tc.ca_dir = srv.cfg.ca_dir[0] ? srv.cfg.ca_dir : NULL;
			tc.crl_file = srv.cfg.crl_file[0] ? srv.cfg.crl_file : NULL;
			int rc = tls_ctx_create(&tc, TLS_SIDE_SERVER, &ctx);
			if (rc < 0) {
				fprintf(stderr, "sipsd: %s:%d: domain %s: certificate or key unusable: %s\n",
					cfg_path, srv.cfg.domains[j].line, srv.cfg.domains[j].name,
					strerror(-rc));
				return 1;
			}
			tls_ctx_destroy(ctx);
		}
		printf("sipsd: %s: configuration ok\n", cfg_path);
		return 0;
	}

	/* Signals belong to the main thread, which waits for them. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (srv.cfg.credentials[0]) {
		char cerr[512];
		if (credentials_load(srv.cfg.credentials, &srv.users, cerr, sizeof(cerr)) < 0) {
			fprintf(stderr, "sipsd: %s\n", cerr);
			return 1;
		}
		struct digest_config dc = {.nonce_lifetime = srv.cfg.nonce_lifetime,
					   .algorithms = srv.cfg.auth_algorithms};
		if (digest_ctx_create(&dc, &srv.digest) < 0) {
			fprintf(stderr, "sipsd: cannot set up Digest authentication\n");
			return 1;
		}
		LOG_INFO("auth", "credentials=%s users=%zu", srv.cfg.credentials,
			 credentials_count(srv.users));
	}
	if (tls_ticket_keys_create(0, &srv.ticket_keys) < 0) {
		fprintf(stderr, "sipsd: cannot make TLS ticket keys\n");
		return 1;
	}
	if (srv.cfg.cluster_line) {
		/* Every node must verify the others' flow tokens (docs/scaling.md). */
		if (cluster_key_load(srv.cfg.cluster_secret_file, srv.flow_key) < 0)
			return 1;
	} else if (RAND_bytes(srv.flow_key, sizeof(srv.flow_key)) != 1) {
		fprintf(stderr, "sipsd: no random bytes for the flow-token key\n");
		return 1;
	}
	/* Refuse to start on an address somebody else holds (SO_REUSEPORT
	 * would otherwise share it with them silently). */
	for (unsigned i = 0; i < srv.cfg.nlisteners; i++) {
		const struct cfg_listener *l = &srv.cfg.listeners[i];
		struct sockaddr_storage ss;
		socklen_t sl;
		if (tp_addr_parse(l->addr, l->proto == CFG_PROTO_TLS ? 5061 : 5060, &ss, &sl) < 0)
			continue; /* reported by worker_setup */
		int prc = tp_listen_probe(proto_of(l->proto), (struct sockaddr *)&ss, sl);
		if (prc < 0) {
			LOG_ERROR("listen", "proto=%s addr=%s line=%d reason=\"%s\"",
				  tp_proto_name(proto_of(l->proto)), l->addr, l->line,
				  prc == -EADDRINUSE ? "address already in use by another process" : strerror(-prc));
			return 1;
		}
	}
	int rc = tp_group_create(&srv.group);
	if (rc == 0)
		rc = worker_pool_create(&srv.pool, srv.cfg.workers);
	if (rc < 0) {
		LOG_ERROR("start", "reason=\"worker pool: %s\"", strerror(-rc));
		return 1;
	}
	srv.nworkers = worker_pool_size(srv.pool);
	srv.workers = calloc(srv.nworkers, sizeof(*srv.workers));
	srv.layers = calloc(srv.nworkers, sizeof(*srv.layers));
	if (!srv.workers || !srv.layers)
		return 1;
	char lerr[512];
	if (location_open(&srv.cfg.location, &srv.loc, lerr, sizeof(lerr)) < 0) {
		LOG_ERROR("start", "reason=\"location store: %s\"", lerr);
		return 1;
	}
	for (unsigned i = 0; i < srv.nworkers; i++) {
		srv.workers[i].srv = &srv;
		srv.workers[i].index = i;
		if (worker_setup(&srv, &srv.workers[i]) < 0) {
			server_teardown(&srv);
			return 1;
		}
	}
	if (drop_privileges(srv.cfg.user) < 0) {
		server_teardown(&srv);
		return 1;
	}
	certificates_check(&srv.cfg);
	rc = worker_pool_start(srv.pool);
	if (rc < 0) {
		LOG_ERROR("start", "reason=\"%s\"", strerror(-rc));
		server_teardown(&srv);
		return 1;
	}
	LOG_INFO("start", "workers=%u domains=%u listeners=%u pid=%d", srv.nworkers, srv.cfg.ndomains,
		 srv.cfg.nlisteners, (int)getpid());
	if (srv.cfg.control[0] || srv.cfg.metrics[0]) {
		struct control_ops ops = {control_stats_cb, control_conns_cb, control_regs_cb,
					  control_reload_cb, &srv};
		if (control_start(srv.cfg.control, srv.cfg.metrics, &ops, &srv.control) < 0) {
			worker_pool_stop(srv.pool);
			server_teardown(&srv);
			return 1;
		}
	}
	notify_systemd("READY=1");
	for (;;) {
		/* Wake once a day to look at certificate lifetimes again. */
		struct timespec day = {86400, 0};
		siginfo_t info;
		int sig = sigtimedwait(&set, &info, &day);
		if (sig < 0) {
			if (errno == EAGAIN)
				certificates_check(&srv.cfg);
			continue;
		}
		if (sig == SIGHUP) {
			notify_systemd("RELOADING=1");
			server_reload(&srv, cfg_path);
			certificates_check(&srv.cfg);
			notify_systemd("READY=1");
			continue;
		}
		LOG_INFO("stop", "signal=%d", sig);
		notify_systemd("STOPPING=1");
		break;
	}
	control_stop(srv.control); /* before the workers it asks */
	worker_pool_stop(srv.pool);
	server_teardown(&srv);
	LOG_INFO("stopped", "pid=%d", (int)getpid());
	return 0;
}
