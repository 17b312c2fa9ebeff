/* transport.h: UDP, TCP and TLS for one worker's loop (RFC 3261 §18,
 * RFC 5923, RFC 5626 §3.5.1): listeners, connections keyed by (address,
 * transport, verified identity), framing, keep-alive, limits. */
#ifndef SIPSD_TRANSPORT_TRANSPORT_H
#define SIPSD_TRANSPORT_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "base/str.h"
#include "loop/loop.h"
#include "loop/timer.h"
#include "sip/frame.h"
#include "tls/identity.h"
#include "tls/tls_ctx.h"

enum tp_proto { TP_PROTO_UDP = 1, TP_PROTO_TCP, TP_PROTO_TLS };

const char *tp_proto_name(enum tp_proto proto);

/* Resource bounds of one transport instance; every one has a safe default
 * (tp_limits_default) and is counted when hit. */
struct tp_limits {
	unsigned max_conns;          /* connections in total */
	unsigned max_conns_per_ip;   /* inbound connections from one address */
	unsigned max_handshakes;     /* TLS handshakes in flight */
	unsigned handshake_timeout_ms;
	unsigned idle_timeout_ms;    /* no byte received for this long: close */
	unsigned message_timeout_ms; /* a message must be complete this long after its first byte */
	unsigned max_handshakes_per_ip; /* TLS handshakes in flight from one address */
	unsigned max_msg_size;       /* one message on a stream */
	unsigned max_write_queue;    /* bytes queued for a peer that does not read */
	unsigned cert_warn_days;     /* warn when a peer's certificate expires within this */
};

void tp_limits_default(struct tp_limits *l);

/* Counters of one transport instance (read on its thread). */
struct tp_stats {
	uint64_t conns_accepted, conns_opened, conns_closed;
	uint64_t refused_max_conns, refused_per_ip, refused_handshakes, refused_handshakes_per_ip;
	uint64_t handshake_timeouts, idle_timeouts, handshake_failures;
	uint64_t write_queue_overflows, framing_errors, oversize, message_timeouts;
	uint64_t pings_answered, messages_in, messages_out;
	unsigned conns_current, handshakes_current;
	/* TLS handshakes refused by our checks, by verdict (enum tls_verdict);
	 * the last slot counts failures that were not our refusal. */
	uint64_t handshake_refusals[TLS_VERDICT_COUNT + 1];
};

struct tp_conn;
struct transport;

/* Where a message came from; valid during the message callback. */
struct tp_source {
	enum tp_proto proto;
	struct sockaddr_storage remote;
	socklen_t remote_len;
	struct sockaddr_storage local;
	socklen_t local_len;
	struct tp_conn *conn; /* streams; take a reference to keep it */
	int udp_fd;           /* UDP: the socket it arrived on (reply from it) */
};

/* Called for every message cut from a stream or received as a datagram:
 * `buf`/`len` hold exactly one message (datagrams may carry trailing
 * octets the parser ignores). The bytes are valid during the call only. */
struct tp_handler {
	void (*message_cb)(struct transport *tp, const struct tp_source *src, const char *buf,
			   size_t len, void *arg);
	/* A connection is gone (closed by either side, failed, timed out).
	 * `reason` is a short static text. Optional. */
	void (*conn_closed_cb)(struct transport *tp, struct tp_conn *conn, const char *reason,
			       void *arg);
	/* An outbound connection finished its (TLS) handshake, or failed
	 * before it (then `verdict`/`reason` say why). Optional. */
	void (*conn_ready_cb)(struct transport *tp, struct tp_conn *conn, bool ok, void *arg);
	void *arg;
};

/* Counters shared by the transports of one process (one per worker):
 * total connections, handshakes in flight, connections per source address.
 * Create it before the transports, destroy it after them. */
struct tp_group;
int tp_group_create(struct tp_group **out);
void tp_group_destroy(struct tp_group *g);

/* Make a transport on `loop` (not owned). `group` (not owned) shares the
 * limits with other transports; NULL gives this transport its own.
 * `limits` may be NULL for the defaults. Returns 0 and *out, or -ENOMEM. */
int tp_create(struct loop *loop, struct tp_group *group, const struct tp_limits *limits,
	      const struct tp_handler *h, struct transport **out);

/* Close every listener and connection and free the transport. */
void tp_destroy(struct transport *tp);

/* Listen on `addr` (SO_REUSEPORT, so each worker may bind the same
 * address). For TLS `server_ctx` (not owned) is the listener's context: its
 * configuration says whether a client certificate is required. Returns 0
 * or a negative errno. The bound port (for port 0) is available through
 * tp_listener_port(). */
int tp_listen(struct transport *tp, enum tp_proto proto, const struct sockaddr *addr,
	      socklen_t addr_len, struct tls_ctx *server_ctx);

/* Check that nobody holds `addr` yet: bind it once without SO_REUSEPORT
 * and let go. Our workers share a port through SO_REUSEPORT, which would
 * also let a second sipsd (or any program of the same user) silently take
 * half the traffic; this refuses that at start. Returns 0, -EADDRINUSE, or
 * another negative errno. Call it before the first tp_listen on `addr`. */
int tp_listen_probe(enum tp_proto proto, const struct sockaddr *addr, socklen_t addr_len);

/* Replace the TLS context of listener `index` (the index-th tp_listen
 * call); new handshakes use `ctx`, running connections keep theirs.
 * Returns the old context (the caller destroys it) or NULL. */
struct tls_ctx *tp_listener_set_tls(struct transport *tp, unsigned index, struct tls_ctx *ctx);

/* Port bound by the most recent tp_listen for `proto`, 0 when none. */
uint16_t tp_listener_port(const struct transport *tp, enum tp_proto proto);

/* Send a datagram from the first UDP listener (or `src_fd` when >= 0).
 * Returns 0 or a negative errno. */
int tp_udp_send(struct transport *tp, int src_fd, const struct sockaddr *dst, socklen_t dst_len,
		const char *buf, size_t len);

/* Open a stream connection to `dst`. For TLS, `client_ctx` builds the SSL
 * and `domain` is the SIP domain the target must prove (RFC 5922 §7.3: the
 * domain of the URI that was resolved, never an SRV host or an address):
 * it is sent as SNI and checked inside the handshake. Bytes sent before the
 * connection is ready are queued. Returns 0 with *out (a reference the
 * caller must tp_conn_unref), or a negative errno. */
int tp_connect(struct transport *tp, enum tp_proto proto, const struct sockaddr *dst,
	       socklen_t dst_len, struct tls_ctx *client_ctx, struct str domain,
	       struct tp_conn **out);

/* Find a connection usable to reach (`proto`, `dst`) for `domain` (RFC 5923
 * §9, spec rule 17): for TLS only a connection whose verified identity set
 * holds `domain` — never one found by address alone; an empty `domain`
 * accepts any connection to the address (TCP, or TLS flows of UAs). NULL
 * when none. No reference is taken. */
struct tp_conn *tp_conn_find(struct transport *tp, enum tp_proto proto, const struct sockaddr *dst,
			     struct str domain);

/* Record the worker index this transport belongs to (shared connections
 * are listed with it). */
void tp_set_worker(struct transport *tp, unsigned worker);

/* A connection of ANOTHER worker usable to reach (`proto`, `dst`) for
 * `domain` under the same rule as tp_conn_find (verified identity holds
 * the domain): its owner and id, to send through the owner's queue. With
 * `aliases_only`, only an inbound connection whose peer asked for reuse
 * (RFC 5923), which must be used rather than a new one. Returns 0 or
 * -ENOENT. */
int tp_conn_find_shared(struct transport *tp, enum tp_proto proto, const struct sockaddr *dst,
			struct str domain, bool aliases_only, unsigned *worker, uint64_t *conn_id);

/* The open connection with id `id` (a flow, RFC 5626), or NULL. No
 * reference is taken. */
struct tp_conn *tp_conn_by_id(struct transport *tp, uint64_t id);

/* RFC 5923 §5: the peer asked (Via ;alias) that this inbound connection be
 * used for requests to its sent-by address `sent_by`. From then on
 * tp_conn_find finds it under that address (and only then does it return
 * an inbound connection). The caller decides whether to honour it (spec
 * rule 17: only on mutually authenticated TLS). */
void tp_conn_set_alias(struct tp_conn *c, const struct sockaddr *sent_by, socklen_t len);
bool tp_conn_alias(const struct tp_conn *c);

/* A registration was bound to this connection (a flow): its closing must
 * clean the location store; connections without one skip that. */
void tp_conn_mark_flow(struct tp_conn *c);
bool tp_conn_is_flow(const struct tp_conn *c);

/* Queue `len` bytes on the connection (copied). Returns 0, -EPIPE when it
 * is closing, or -ENOBUFS when the write queue bound is hit (the
 * connection is then closed). */
int tp_conn_send(struct tp_conn *c, const char *buf, size_t len);

/* Close the connection (after flushing what is queued when `graceful`). */
void tp_conn_close(struct tp_conn *c, bool graceful, const char *reason);

void tp_conn_ref(struct tp_conn *c);
void tp_conn_unref(struct tp_conn *c);

/* State and identity of a connection. */
enum tp_proto tp_conn_proto(const struct tp_conn *c);
uint64_t tp_conn_id(const struct tp_conn *c);
bool tp_conn_is_open(const struct tp_conn *c);
bool tp_conn_is_inbound(const struct tp_conn *c);
const struct sockaddr *tp_conn_remote(const struct tp_conn *c, socklen_t *len);
/* TLS: the peer presented a certificate that passed the chain (and, for
 * outbound connections, the wanted domain). */
bool tp_conn_authenticated(const struct tp_conn *c);
/* TLS: the peer's SIP domain identities (empty set when unauthenticated). */
const struct tls_identity_set *tp_conn_identities(const struct tp_conn *c);
/* TLS: the negotiated version ("TLSv1.3"), the SNI received or sent. */
const char *tp_conn_tls_version(const struct tp_conn *c);
struct str tp_conn_sni(const struct tp_conn *c);
/* Why an outbound TLS connection failed in its handshake ("" otherwise). */
const char *tp_conn_failure(const struct tp_conn *c);
/* TLS: what the verify callback decided (NULL for TCP). */
const struct tls_peer *tp_conn_tls_peer(const struct tp_conn *c);

const struct tp_stats *tp_stats(const struct transport *tp);

/* Call cb for every open connection of this transport (its thread only). */
void tp_conn_foreach(struct transport *tp, void (*cb)(struct tp_conn *c, void *arg), void *arg);

/* Format an address as "1.2.3.4:5060" or "[::1]:5060". */
void tp_addr_format(const struct sockaddr *sa, char *buf, size_t size);

/* Parse "host:port" / "[v6]:port" (numeric only) into `ss`. */
int tp_addr_parse(const char *text, uint16_t default_port, struct sockaddr_storage *ss,
		  socklen_t *len);

#endif
