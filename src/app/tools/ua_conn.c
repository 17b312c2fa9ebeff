/* ua_conn.c: blocking client connections for sipsctl. */
#include "ua_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ua_resolve(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	char h[300];
	size_t n = strlen(host);
	if (n >= sizeof(h))
		return -ENOENT;
	/* Strip IPv6 brackets. */
	if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
		memcpy(h, host + 1, n - 2);
		h[n - 2] = '\0';
	} else {
		memcpy(h, host, n + 1);
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	char ps[8];
	snprintf(ps, sizeof(ps), "%u", port);
	if (getaddrinfo(h, ps, &hints, &res) != 0 || !res)
		return -ENOENT;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	int rc;
	do {
		rc = poll(&p, 1, timeout_ms);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return -errno;
	return rc == 0 ? -ETIMEDOUT : 0;
}

int ua_conn_open(struct ua_conn *c, enum tp_proto proto, const struct sockaddr *dst,
		 socklen_t dst_len, const char *domain, const struct ua_conn_opts *o)
{
	memset(c, 0, offsetof(struct ua_conn, udp_buf));
	c->failure[0] = '\0';
	c->proto = proto;
	sip_framer_init(&c->framer, 0);
	memcpy(&c->remote, dst, dst_len);
	c->remote_len = dst_len;
	c->fd = socket(dst->sa_family, (proto == TP_PROTO_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		snprintf(c->failure, sizeof(c->failure), "socket: %s", strerror(errno));
		return -errno;
	}
	int fl = fcntl(c->fd, F_GETFL);
	fcntl(c->fd, F_SETFL, fl | O_NONBLOCK);
	if (connect(c->fd, dst, dst_len) < 0 && errno != EINPROGRESS) {
		int e = errno;
		snprintf(c->failure, sizeof(c->failure), "connect: %s", strerror(e));
		ua_conn_close(c);
		return -e;
	}
	if (proto != TP_PROTO_UDP) {
		int rc = wait_fd(c->fd, POLLOUT, o->timeout_ms);
		int err = 0;
		socklen_t el = sizeof(err);
		if (rc == 0)
			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (rc < 0 || err) {
			snprintf(c->failure, sizeof(c->failure), "connect: %s",
				 rc < 0 ? strerror(-rc) : strerror(err));
			ua_conn_close(c);
			return rc < 0 ? rc : -err;
		}
		int one = 1;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
	c->local_len = sizeof(c->local);
	getsockname(c->fd, (struct sockaddr *)&c->local, &c->local_len);
	if (proto != TP_PROTO_TLS)
		return 0;

	struct tls_ctx_cfg cfg;
	tls_ctx_cfg_init(&cfg);
	cfg.ca_file = o->ca_file;
	cfg.cert_file = o->cert_file;
	cfg.key_file = o->key_file;
	int rc = tls_ctx_create(&cfg, TLS_SIDE_CLIENT, &c->tls);
	if (rc < 0) {
		snprintf(c->failure, sizeof(c->failure), "TLS setup: %s", strerror(-rc));
		ua_conn_close(c);
		return rc;
	}
	rc = tls_ssl_client_create(c->tls, str_from_cstr(domain), &c->ssl);
	if (rc < 0 || SSL_set_fd(c->ssl, c->fd) != 1) {
		snprintf(c->failure, sizeof(c->failure), "TLS setup for domain '%s' failed", domain);
		ua_conn_close(c);
		return rc < 0 ? rc : -ENOMEM;
	}
	struct timeval tv = {o->timeout_ms / 1000, (o->timeout_ms % 1000) * 1000};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	ERR_clear_error();
	int hs = SSL_connect(c->ssl);
	if (hs != 1 || tls_ssl_handshake_done(c->ssl) < 0) {
		const struct tls_peer *p = tls_ssl_peer(c->ssl);
		if (p && p->auth == TLS_PEER_REFUSED) {
			char why[400];
			tls_peer_format(p, why, sizeof(why));
			snprintf(c->failure, sizeof(c->failure), "server refused: %s", why);
		} else {
			unsigned long e = ERR_peek_error();
			char es[256] = "connection closed or timed out";
			if (e)
				ERR_error_string_n(e, es, sizeof(es));
			snprintf(c->failure, sizeof(c->failure), "TLS handshake failed: %s", es);
		}
		ua_conn_close(c);
		return -EPERM;
	}
	return 0;
}

int ua_conn_send(struct ua_conn *c, const char *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n;
		if (c->ssl) {
			int r = SSL_write(c->ssl, buf + off, (int)(len - off));
			if (r <= 0)
				return -EPIPE;
			n = r;
		} else {
			n = send(c->fd, buf + off, len - off, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
		}
		off += (size_t)n;
	}
	return 0;
}

int ua_conn_recv(struct ua_conn *c, int timeout_ms, const char **msg, size_t *len)
{
	int64_t deadline = now_ms() + timeout_ms;
	if (c->proto == TP_PROTO_UDP) {
		int rc = wait_fd(c->fd, POLLIN, timeout_ms);
		if (rc == -ETIMEDOUT)
			return 0;
		if (rc < 0)
			return rc;
		ssize_t n = recv(c->fd, c->udp_buf, sizeof(c->udp_buf), 0);
		if (n < 0)
			return -errno;
		*msg = c->udp_buf;
		*len = (size_t)n;
		return 1;
	}
	for (;;) {
		struct sip_frame fr;
		struct sip_parse_error perr;
		int rc = sip_framer_next(&c->framer, &fr, &perr);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			if (fr.type != SIP_FRAME_MESSAGE)
				continue;
			*msg = fr.data.s;
			*len = fr.data.len;
			return 1;
		}
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return 0;
		if (!(c->ssl && SSL_pending(c->ssl))) {
			rc = wait_fd(c->fd, POLLIN, (int)left);
			if (rc == -ETIMEDOUT)
				return 0;
			if (rc < 0)
				return rc;
		}
		char *dst;
		size_t room;
		rc = sip_framer_reserve(&c->framer, 16384, &dst, &room);
		if (rc < 0)
			return rc;
		ssize_t n;
		if (c->ssl) {
			int r = SSL_read(c->ssl, dst, (int)room);
			if (r <= 0) {
				int err = SSL_get_error(c->ssl, r);
				if (err == SSL_ERROR_WANT_READ)
					continue;
				return -ECONNRESET;
			}
			n = r;
		} else {
			n = recv(c->fd, dst, room, 0);
			if (n < 0) {
				if (errno == EINTR || errno == EAGAIN)
					continue;
				return -errno;
			}
			if (n == 0)
				return -ECONNRESET;
		}
		sip_framer_commit(&c->framer, (size_t)n);
	}
}

void ua_conn_close(struct ua_conn *c)
{
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	tls_ctx_destroy(c->tls);
	c->tls = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	sip_framer_fini(&c->framer);
}
