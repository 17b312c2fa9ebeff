/* control.c: control socket and metrics endpoint, served by one thread. */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"

/* Bytes a reply may take (connection and registration lists). */
#define CONTROL_REPLY_MAX (1024 * 1024)
/* Bytes of a request (a command line, or an HTTP request head). */
#define CONTROL_REQUEST_MAX 4096
/* How long a client may take to send its request. */
#define CONTROL_CLIENT_MS 2000

struct control {
	pthread_t thread;
	int unix_fd;
	int metrics_fd;
	int stop_pipe[2];
	char unix_path[108];
	struct control_ops ops;
	char *reply;
};

static int listen_unix(const char *path, char *saved, size_t size)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path) || strlen(path) >= size)
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path); /* a socket file left by a previous run */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	chmod(path, 0660); /* the service's user and group only */
	memcpy(saved, path, strlen(path) + 1);
	return fd;
}

static int listen_tcp(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	if (tp_addr_parse(addr, 9090, &ss, &sl) < 0)
		return -EINVAL;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 16) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

/* Read until `end` appears (or the buffer fills, or time runs out). */
static ssize_t read_request(int fd, char *buf, size_t cap, const char *end)
{
	size_t n = 0;
	while (n + 1 < cap) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, CONTROL_CLIENT_MS) <= 0)
			return -ETIMEDOUT;
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = '\0';
		if (strstr(buf, end))
			break;
	}
	buf[n] = '\0';
	return (ssize_t)n;
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		buf += w;
		len -= (size_t)w;
	}
}

static size_t appendf(char *buf, size_t cap, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static size_t appendf(char *buf, size_t cap, size_t n, const char *fmt, ...)
{
	if (n >= cap)
		return n;
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(buf + n, cap - n, fmt, ap);
	va_end(ap);
	if (k < 0)
		return n;
	return (size_t)k >= cap - n ? cap - 1 : n + (size_t)k;
}

size_t control_metrics_format(const struct control_stats *s, char *b, size_t cap)
{
	size_t n = 0;
#define GAUGE(name, help, v)                                                                       \
	n = appendf(b, cap, n, "# HELP sipsd_%s %s\n# TYPE sipsd_%s gauge\nsipsd_%s %llu\n", name, help, \
		    name, name, (unsigned long long)(v))
#define COUNTER(name, help, v)                                                                     \
	n = appendf(b, cap, n, "# HELP sipsd_%s %s\n# TYPE sipsd_%s counter\nsipsd_%s %llu\n", name,    \
		    help, name, name, (unsigned long long)(v))
	GAUGE("workers", "Worker threads.", s->workers);
	GAUGE("connections", "Open TCP and TLS connections.", s->tp.conns_current);
	GAUGE("tls_handshakes_in_flight", "TLS handshakes in progress.", s->tp.handshakes_current);
	COUNTER("connections_accepted_total", "Inbound connections accepted.", s->tp.conns_accepted);
	COUNTER("connections_opened_total", "Outbound connections opened.", s->tp.conns_opened);
	COUNTER("tls_handshake_failures_total", "TLS handshakes refused or failed.",
		s->tp.handshake_failures);
	COUNTER("tls_handshake_timeouts_total", "TLS handshakes dropped at the timeout.",
		s->tp.handshake_timeouts);
	n = appendf(b, cap, n,
		    "# HELP sipsd_limit_refusals_total Connections refused at a limit.\n"
		    "# TYPE sipsd_limit_refusals_total counter\n"
		    "sipsd_limit_refusals_total{limit=\"max_conns\"} %llu\n"
		    "sipsd_limit_refusals_total{limit=\"max_conns_per_ip\"} %llu\n"
		    "sipsd_limit_refusals_total{limit=\"max_handshakes\"} %llu\n"
		    "sipsd_limit_refusals_total{limit=\"write_queue\"} %llu\n"
		    "sipsd_limit_refusals_total{limit=\"message_size\"} %llu\n",
		    (unsigned long long)s->tp.refused_max_conns, (unsigned long long)s->tp.refused_per_ip,
		    (unsigned long long)s->tp.refused_handshakes,
		    (unsigned long long)s->tp.write_queue_overflows, (unsigned long long)s->tp.oversize);
	COUNTER("framing_errors_total", "Streams closed on a framing error.", s->tp.framing_errors);
	COUNTER("keepalive_pongs_total", "CRLF keep-alive pings answered.", s->tp.pings_answered);
	COUNTER("messages_received_total", "SIP messages received.", s->tp.messages_in);
	COUNTER("messages_sent_total", "SIP messages sent.", s->tp.messages_out);
	n = appendf(b, cap, n,
		    "# HELP sipsd_transactions Transactions alive.\n# TYPE sipsd_transactions gauge\n"
		    "sipsd_transactions{kind=\"server\"} %u\nsipsd_transactions{kind=\"client\"} %u\n",
		    s->txn.server_current, s->txn.client_current);
	COUNTER("transaction_timeouts_total", "Client transactions timed out (408).", s->txn.timeouts);
	COUNTER("retransmissions_absorbed_total", "Retransmitted requests absorbed.",
		s->txn.retransmissions_absorbed);
	COUNTER("requests_total", "Requests handled by the proxy.", s->proxy.requests);
	COUNTER("requests_forwarded_total", "Requests forwarded (branches).", s->proxy.forwarded);
	COUNTER("requests_to_node_total",
		"Requests handed to the cluster node holding the UA's flow (docs/scaling.md).",
		s->proxy.to_node);
	COUNTER("local_replies_total", "Responses sipsd answered itself.", s->proxy.local_replies);
	COUNTER("responses_forwarded_total", "Responses forwarded.", s->proxy.responses_forwarded);
	COUNTER("registrations_total", "REGISTER requests handled.", s->proxy.registrations);
	GAUGE("registered_aors", "Addresses of record with bindings.", s->aors);
	GAUGE("registered_bindings", "Bindings in the location store.", s->bindings);
	n = appendf(b, cap, n,
		    "# HELP sipsd_connections_by_transport Open connections by transport.\n"
		    "# TYPE sipsd_connections_by_transport gauge\n"
		    "sipsd_connections_by_transport{transport=\"tcp\"} %u\n"
		    "sipsd_connections_by_transport{transport=\"tls\"} %u\n"
		    "# HELP sipsd_tls_authenticated_connections TLS connections whose peer proved a "
		    "SIP domain.\n# TYPE sipsd_tls_authenticated_connections gauge\n"
		    "sipsd_tls_authenticated_connections %u\n",
		    s->conns_tcp, s->conns_tls, s->conns_tls_authenticated);
	n = appendf(b, cap, n, "# HELP sipsd_peer_connections Authenticated connections by the "
			       "peer's verified identity.\n# TYPE sipsd_peer_connections gauge\n");
	for (unsigned i = 0; i < s->npeers; i++)
		n = appendf(b, cap, n, "sipsd_peer_connections{identity=\"%s\"} %u\n", s->peers[i].identity,
			    s->peers[i].conns);
	n = appendf(b, cap, n, "# HELP sipsd_tls_handshake_refusals_total TLS handshakes refused, by "
			       "verdict.\n# TYPE sipsd_tls_handshake_refusals_total counter\n");
	for (unsigned v = 0; v <= TLS_VERDICT_COUNT; v++)
		if (v != TLS_VERDICT_OK)
			n = appendf(b, cap, n, "sipsd_tls_handshake_refusals_total{verdict=\"%s\"} %llu\n",
				    v < TLS_VERDICT_COUNT ? tls_verdict_name((enum tls_verdict)v) : "other",
				    (unsigned long long)s->tp.handshake_refusals[v]);
	n = appendf(b, cap, n, "# HELP sipsd_requests_by_method_total Requests by method.\n"
			       "# TYPE sipsd_requests_by_method_total counter\n");
	for (unsigned m = 0; m <= SIP_METHOD_UPDATE; m++)
		n = appendf(b, cap, n, "sipsd_requests_by_method_total{method=\"%s\"} %llu\n",
			    m ? sip_method_name((enum sip_method)m) : "other",
			    (unsigned long long)s->proxy.by_method[m]);
	n = appendf(b, cap, n, "# HELP sipsd_responses_total Responses sent, by class.\n"
			       "# TYPE sipsd_responses_total counter\n");
	for (unsigned c = 1; c <= 6; c++)
		n = appendf(b, cap, n, "sipsd_responses_total{class=\"%uxx\"} %llu\n", c,
			    (unsigned long long)s->proxy.by_class[c]);
	n = appendf(b, cap, n,
		    "# HELP sipsd_policy_verdicts_total Authoritative-proxy and Via-trail verdicts.\n"
		    "# TYPE sipsd_policy_verdicts_total counter\n"
		    "sipsd_policy_verdicts_total{verdict=\"reject\"} %llu\n"
		    "sipsd_policy_verdicts_total{verdict=\"log\"} %llu\n",
		    (unsigned long long)s->proxy.policy_rejected,
		    (unsigned long long)s->proxy.policy_logged);
	n = appendf(b, cap, n, "# HELP sipsd_certificate_days_left Days until a domain certificate "
			       "expires.\n# TYPE sipsd_certificate_days_left gauge\n");
	for (unsigned i = 0; i < s->ncerts; i++)
		n = appendf(b, cap, n, "sipsd_certificate_days_left{domain=\"%s\"} %d\n",
			    s->certs[i].domain, s->certs[i].days_left);
	COUNTER("reloads_total", "Successful reloads.", s->reloads_done);
	COUNTER("reloads_refused_total", "Refused reloads.", s->reloads_refused);
#undef GAUGE
#undef COUNTER
	return n;
}

static void serve_unix(struct control *c, int fd)
{
	char req[CONTROL_REQUEST_MAX];
	if (read_request(fd, req, sizeof(req), "\n") <= 0)
		return;
	req[strcspn(req, "\r\n")] = '\0';
	size_t n = 0;
	if (!strcmp(req, "stats")) {
		struct control_stats s;
		memset(&s, 0, sizeof(s));
		c->ops.stats(c->ops.arg, &s);
		n = control_metrics_format(&s, c->reply, CONTROL_REPLY_MAX);
	} else if (!strcmp(req, "connections")) {
		n = c->ops.connections(c->ops.arg, c->reply, CONTROL_REPLY_MAX);
	} else if (!strcmp(req, "registrations")) {
		n = c->ops.registrations(c->ops.arg, c->reply, CONTROL_REPLY_MAX);
	} else if (!strcmp(req, "reload")) {
		c->ops.reload(c->ops.arg);
		n = (size_t)snprintf(c->reply, CONTROL_REPLY_MAX,
				     "reload requested: see event=reload in the log\n");
	} else {
		n = (size_t)snprintf(c->reply, CONTROL_REPLY_MAX,
				     "error: unknown command (stats, connections, registrations, reload)\n");
	}
	write_all(fd, c->reply, n);
}

static void serve_http(struct control *c, int fd)
{
	char req[CONTROL_REQUEST_MAX];
	if (read_request(fd, req, sizeof(req), "\r\n\r\n") <= 0)
		return;
	char head[256];
	if (strncmp(req, "GET /metrics ", 13) != 0) {
		static const char nf[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
		write_all(fd, nf, sizeof(nf) - 1);
		return;
	}
	struct control_stats s;
	memset(&s, 0, sizeof(s));
	c->ops.stats(c->ops.arg, &s);
	size_t n = control_metrics_format(&s, c->reply, CONTROL_REPLY_MAX);
	int h = snprintf(head, sizeof(head),
			 "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 n);
	write_all(fd, head, (size_t)h);
	write_all(fd, c->reply, n);
}

static void *control_main(void *arg)
{
	struct control *c = arg;
	for (;;) {
		struct pollfd p[3] = {{.fd = c->stop_pipe[0], .events = POLLIN},
				      {.fd = c->unix_fd, .events = POLLIN},
				      {.fd = c->metrics_fd, .events = POLLIN}};
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents)
			break;
		for (int i = 1; i < 3; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			int fd = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			if (i == 1)
				serve_unix(c, fd);
			else
				serve_http(c, fd);
			close(fd);
		}
	}
	return NULL;
}

int control_start(const char *unix_path, const char *metrics_addr, const struct control_ops *ops,
		  struct control **out)
{
	struct control *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->unix_fd = c->metrics_fd = -1;
	c->ops = *ops;
	c->reply = malloc(CONTROL_REPLY_MAX);
	int rc = c->reply && pipe2(c->stop_pipe, O_CLOEXEC) == 0 ? 0 : -ENOMEM;
	if (rc == 0 && unix_path && *unix_path) {
		c->unix_fd = listen_unix(unix_path, c->unix_path, sizeof(c->unix_path));
		if (c->unix_fd < 0) {
			rc = c->unix_fd;
			LOG_ERROR("control", "socket=%s reason=\"%s\"", unix_path, strerror(-rc));
		}
	}
	if (rc == 0 && metrics_addr && *metrics_addr) {
		c->metrics_fd = listen_tcp(metrics_addr);
		if (c->metrics_fd < 0) {
			rc = c->metrics_fd;
			LOG_ERROR("metrics", "addr=%s reason=\"%s\"", metrics_addr, strerror(-rc));
		}
	}
	if (rc == 0 && pthread_create(&c->thread, NULL, control_main, c) != 0)
		rc = -EAGAIN;
	if (rc < 0) {
		if (c->unix_fd >= 0) {
			close(c->unix_fd);
			unlink(c->unix_path);
		}
		if (c->metrics_fd >= 0)
			close(c->metrics_fd);
		free(c->reply);
		free(c);
		return rc;
	}
	if (c->unix_fd >= 0)
		LOG_INFO("control", "socket=%s", c->unix_path);
	if (c->metrics_fd >= 0)
		LOG_INFO("metrics", "addr=%s path=/metrics", metrics_addr);
	*out = c;
	return 0;
}

void control_stop(struct control *c)
{
	if (!c)
		return;
	ssize_t w = write(c->stop_pipe[1], "x", 1);
	(void)w;
	pthread_join(c->thread, NULL);
	if (c->unix_fd >= 0) {
		close(c->unix_fd);
		unlink(c->unix_path);
	}
	if (c->metrics_fd >= 0)
		close(c->metrics_fd);
	close(c->stop_pipe[0]);
	close(c->stop_pipe[1]);
	free(c->reply);
	free(c);
}
