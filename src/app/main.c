/* main.c: the sipsd daemon: configuration, TLS contexts, worker threads,
 * transports, and (until the proxy core lands) a responder that answers
 * OPTIONS itself and refuses other requests honestly. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/log.h"
#include "cfg/cfg.h"
#include "loop/worker.h"
#include "sip/build.h"
#include "sip/msg.h"
#include "tls/tls_ctx.h"
#include "transport/transport.h"

struct server;

/* What one worker owns: its transport and its TLS contexts. */
struct server_worker {
	struct server *srv;
	unsigned index;
	struct transport *tp;
	struct tls_ctx *tls[CFG_MAX_LISTENERS]; /* per TLS listener */
	struct sip_msg *msg;                    /* parse buffer, reused */
	char out[SIPS_MAX_MSG_SIZE];
};

struct server {
	struct cfg cfg;
	struct tp_group *group;
	struct worker_pool *pool;
	struct server_worker *workers;
	unsigned nworkers;
};

static void usage(FILE *out)
{
	fprintf(out, "usage: sipsd -c FILE [-t] [-v]\n"
		     "  -c FILE  configuration file (docs/configuration.md)\n"
		     "  -t       check the configuration (files, certificates) and exit\n"
		     "  -v       verbose: log level debug\n");
}

/* RFC 3261 §18.2.2 and RFC 3581: where a response to a UDP request goes. */
static void response_dest_udp(const struct tp_source *src, const struct sip_msg *req,
			      struct sockaddr_storage *dst, socklen_t *len)
{
	memcpy(dst, &src->remote, src->remote_len);
	*len = src->remote_len;
	const struct sip_via *v = req->via;
	if (!v || v->has_rport)
		return; /* rport: back to the source port (RFC 3581 §4) */
	uint16_t port = v->has_port ? v->port : 5060;
	if (dst->ss_family == AF_INET)
		((struct sockaddr_in *)dst)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)dst)->sin6_port = htons(port);
}

static void send_reply(struct server_worker *w, const struct tp_source *src,
		       const struct sip_msg *req, const char *buf, size_t len)
{
	if (src->conn) {
		tp_conn_send(src->conn, buf, len);
		return;
	}
	struct sockaddr_storage dst;
	socklen_t dl;
	response_dest_udp(src, req, &dst, &dl);
	tp_udp_send(w->tp, src->udp_fd, (struct sockaddr *)&dst, dl, buf, len);
}

static void reply(struct server_worker *w, const struct tp_source *src, const struct sip_msg *req,
		  int status, const char *extra)
{
	char tag[32];
	snprintf(tag, sizeof(tag), "sipsd%u%llx", w->index,
		 (unsigned long long)tp_stats(w->tp)->messages_in);
	int n = sip_response_build(req, status, NULL, str_from_cstr(tag), str_from_cstr(extra), w->out,
				   sizeof(w->out));
	if (n > 0)
		send_reply(w, src, req, w->out, (size_t)n);
}

static void message_cb(struct transport *tp, const struct tp_source *src, const char *buf,
		       size_t len, void *arg)
{
	struct server_worker *w = arg;
	struct sip_msg *m = w->msg;
	struct sip_parse_error err;
	char addr[64];
	int rc = sip_msg_parse(m, buf, len, src->conn ? SIP_PARSE_STREAM : SIP_PARSE_DATAGRAM, &err);
	if (rc < 0) {
		tp_addr_format((const struct sockaddr *)&src->remote, addr, sizeof(addr));
		LOG_INFO("sip.parse_error", "peer=%s proto=%s reason=\"%s\" offset=%zu", addr,
			 tp_proto_name(src->proto), err.reason, err.offset);
		/* A 400 needs the Via, From, To, Call-ID and CSeq it echoes;
		 * without them the message is dropped (RFC 3261 §16.3). */
		return;
	}
	if (!m->is_request)
		return; /* no transactions of our own yet: stray response */
	int status = sip_msg_check(m, &err);
	if (status) {
		if (m->method_id != SIP_METHOD_ACK && m->via && m->has_cseq && m->from && m->to &&
		    m->call_id.len) {
			char warn[160];
			snprintf(warn, sizeof(warn), "Warning: 399 sipsd \"%s\"\r\n", err.reason);
			reply(w, src, m, status, warn);
		}
		return;
	}
	switch (m->method_id) {
	case SIP_METHOD_ACK:
		return;
	case SIP_METHOD_OPTIONS:
		reply(w, src, m, 200,
		      "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER\r\n"
		      "Accept: application/sdp\r\nSupported: outbound, path\r\n");
		return;
	default:
		/* The proxy core is not built yet: say so rather than pretend. */
		reply(w, src, m, 501, "Warning: 399 sipsd \"proxying not available in this build\"\r\n");
		return;
	}
}

static void conn_closed_cb(struct transport *tp, struct tp_conn *conn, const char *reason,
			   void *arg)
{
	(void)tp;
	(void)conn;
	(void)reason;
	(void)arg;
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
	struct tp_handler h = {.message_cb = message_cb, .conn_closed_cb = conn_closed_cb, .arg = w};
	w->msg = malloc(sizeof(*w->msg));
	if (!w->msg)
		return -ENOMEM;
	int rc = tp_create(worker_loop(worker_pool_get(srv->pool, w->index)), srv->group, &lim, &h,
			   &w->tp);
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
		enum tp_proto proto = l->proto == CFG_PROTO_UDP   ? TP_PROTO_UDP
				      : l->proto == CFG_PROTO_TCP ? TP_PROTO_TCP
								  : TP_PROTO_TLS;
		struct tls_ctx *ctx = NULL;
		if (proto == TP_PROTO_TLS) {
			const struct cfg_domain *d = &cfg->domains[0];
			for (unsigned j = 0; j < cfg->ndomains; j++)
				if (l->domain[0] && !strcasecmp(cfg->domains[j].name, l->domain))
					d = &cfg->domains[j];
			struct tls_ctx_cfg tc;
			tls_ctx_cfg_init(&tc);
			tc.cert_file = d->cert;
			tc.key_file = d->key[0] ? d->key : NULL;
			tc.chain_file = d->chain[0] ? d->chain : NULL;
			tc.ca_file = cfg->ca_file[0] ? cfg->ca_file : NULL;
			tc.ca_dir = cfg->ca_dir[0] ? cfg->ca_dir : NULL;
			tc.crl_file = cfg->crl_file[0] ? cfg->crl_file : NULL;
			tc.policy = cfg->policy;
			tc.require_client_cert = l->require_client_cert;
			rc = tls_ctx_create(&tc, TLS_SIDE_SERVER, &ctx);
			if (rc < 0) {
				LOG_ERROR("cfg.tls", "line=%d domain=%s reason=\"%s\"", d->line, d->name,
					  strerror(-rc));
				return rc;
			}
			w->tls[i] = ctx;
		}
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
	return 0;
}

static void server_teardown(struct server *srv)
{
	for (unsigned i = 0; i < srv->nworkers; i++) {
		struct server_worker *w = &srv->workers[i];
		tp_destroy(w->tp);
		for (unsigned j = 0; j < CFG_MAX_LISTENERS; j++)
			tls_ctx_destroy(w->tls[j]);
		free(w->msg);
	}
	worker_pool_destroy(srv->pool);
	tp_group_destroy(srv->group);
	free(srv->workers);
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

	int rc = tp_group_create(&srv.group);
	if (rc == 0)
		rc = worker_pool_create(&srv.pool, srv.cfg.workers);
	if (rc < 0) {
		LOG_ERROR("start", "reason=\"worker pool: %s\"", strerror(-rc));
		return 1;
	}
	srv.nworkers = worker_pool_size(srv.pool);
	srv.workers = calloc(srv.nworkers, sizeof(*srv.workers));
	if (!srv.workers)
		return 1;
	for (unsigned i = 0; i < srv.nworkers; i++) {
		srv.workers[i].srv = &srv;
		srv.workers[i].index = i;
		if (worker_setup(&srv, &srv.workers[i]) < 0) {
			server_teardown(&srv);
			return 1;
		}
	}
	rc = worker_pool_start(srv.pool);
	if (rc < 0) {
		LOG_ERROR("start", "reason=\"%s\"", strerror(-rc));
		server_teardown(&srv);
		return 1;
	}
	LOG_INFO("start", "workers=%u domains=%u listeners=%u pid=%d", srv.nworkers, srv.cfg.ndomains,
		 srv.cfg.nlisteners, (int)getpid());
	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			LOG_INFO("reload", "reason=\"reload is not implemented yet; nothing changed\"");
			continue;
		}
		LOG_INFO("stop", "signal=%d", sig);
		break;
	}
	worker_pool_stop(srv.pool);
	server_teardown(&srv);
	LOG_INFO("stopped", "pid=%d", (int)getpid());
	return 0;
}
