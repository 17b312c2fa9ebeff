/* ua_conn.h: a blocking SIP client connection for sipsctl (UDP, TCP, TLS
 * with the RFC 5922 checks of tls_ctx): open, send, receive messages. */
#ifndef SIPSD_APP_UA_CONN_H
#define SIPSD_APP_UA_CONN_H

#include <stdbool.h>
#include <sys/socket.h>

#include "sip/frame.h"
#include "tls/tls_ctx.h"
#include "transport/transport.h"

struct ua_conn {
	enum tp_proto proto;
	int fd;
	SSL *ssl;
	struct tls_ctx *tls;
	struct sip_framer framer;
	struct sockaddr_storage local;
	socklen_t local_len;
	struct sockaddr_storage remote;
	socklen_t remote_len;
	char udp_buf[SIPS_MAX_MSG_SIZE + 1];
	size_t udp_len;
	char failure[512]; /* why open failed */
};

struct ua_conn_opts {
	const char *ca_file;  /* trust anchors for TLS (NULL: system default) */
	const char *cert_file; /* optional client certificate (proxies only) */
	const char *key_file;
	int timeout_ms;
};

/* Open a connection to `dst` for `proto`; for TLS authenticate the server
 * as SIP domain `domain` (sent as SNI). Returns 0, or a negative errno with
 * c->failure saying why (for TLS the RFC 5922 verdict). */
int ua_conn_open(struct ua_conn *c, enum tp_proto proto, const struct sockaddr *dst,
		 socklen_t dst_len, const char *domain, const struct ua_conn_opts *o);

/* Send bytes (whole). Returns 0 or a negative errno. */
int ua_conn_send(struct ua_conn *c, const char *buf, size_t len);

/* Wait up to `timeout_ms` for one message (streams: one framed message,
 * CRLF keep-alives skipped; UDP: one datagram). On success msg and len point
 * into the connection's buffer, valid until the next call. Returns 1, 0 on
 * timeout, or a negative errno (closed, framing error). */
int ua_conn_recv(struct ua_conn *c, int timeout_ms, const char **msg, size_t *len);

void ua_conn_close(struct ua_conn *c);

/* Resolve "host" (numeric, or a name through the system resolver) with
 * `port` into `ss`. Returns 0 or -ENOENT. */
int ua_resolve(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len);

#endif
