/* txn.h: RFC 3261 §17 client and server transactions of one worker, with
 * timers A-K, UDP retransmission, absorption of retransmitted requests and
 * responses found by branch without locks (the owning worker's index is
 * encoded in every branch we make). */
#ifndef SIPSD_TXN_TXN_H
#define SIPSD_TXN_TXN_H

#include <stdbool.h>
#include <stdint.h>

#include "loop/worker.h"
#include "sip/msg.h"
#include "transport/transport.h"

/* RFC 3261 §17.1.1.1 timer values. */
struct txn_timers {
	unsigned t1_ms; /* RTT estimate, 500 */
	unsigned t2_ms; /* maximum retransmit interval, 4000 */
	unsigned t4_ms; /* maximum time a message stays in the network, 5000 */
};

/* Transactions alive at once per worker (a growth path with a limit). */
#define TXN_MAX_PER_WORKER 200000
/* Branch we make: "z9hG4bK" "s" WW "." 16 hex digits. */
#define TXN_BRANCH_LEN 27

struct txn_layer;
struct txn_server;
struct txn_client;

/* Where a client transaction sends. */
struct txn_target {
	enum tp_proto proto;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char domain[256];     /* TLS: the SIP domain the peer must prove (RFC 5922 §7.3) */
	struct tls_ctx *tls;  /* TLS: client context (our certificate for mutual TLS); not owned */
	struct tp_conn *conn; /* use this connection (a UA's flow, a reused one); not owned */
	/* A flow owned by another worker (RFC 5626): sent there by post. */
	unsigned flow_worker;
	uint64_t flow_conn_id; /* 0: none */
};

/* The transaction user (the proxy). Every callback runs on the worker. */
struct txn_user {
	/* A new request. `st` is its server transaction, or NULL for an ACK
	 * that matched none (the ACK of a 2xx goes end to end, §17.2.3). */
	void (*request_cb)(struct txn_layer *l, struct txn_server *st, const struct sip_msg *m,
			   const struct tp_source *src, void *arg);
	/* A response for a client transaction (m != NULL), or a failure the
	 * layer turned into a status: 408 on timer B/F, 503 on a transport
	 * error or a refused TLS handshake (§16.7 step 5, §16.9) with m NULL
	 * and `why` saying what happened. */
	void (*response_cb)(struct txn_layer *l, struct txn_client *ct, int status,
			    const struct sip_msg *m, const char *why, void *arg);
	/* A response that matched no client transaction: 2xx retransmissions
	 * of INVITEs, which a proxy forwards statelessly (§16.7, §17.1.1.2). */
	void (*stray_response_cb)(struct txn_layer *l, const struct sip_msg *m,
				  const struct tp_source *src, void *arg);
	/* A transaction is about to be freed; drop pointers to it. */
	void (*server_gone_cb)(struct txn_layer *l, struct txn_server *st, void *arg);
	void (*client_gone_cb)(struct txn_layer *l, struct txn_client *ct, void *arg);
	void *arg;
};

/* Counters of one layer. */
struct txn_stats {
	uint64_t server_created, client_created, retransmissions_absorbed, retransmissions_sent;
	uint64_t timeouts, transport_errors, stray_responses, cross_worker_posts, refused_limit;
	unsigned server_current, client_current;
};

/* Make the layer of worker `index` over transport `tp`. `peers` (may be
 * NULL with one worker) is the array of every worker's layer, indexed by
 * worker, used to hand a response to the worker owning its transaction.
 * `pool` is the pool those workers belong to. Returns 0 or -ENOMEM. */
int txn_layer_create(struct loop *loop, struct transport *tp, unsigned index,
		     struct worker_pool *pool, struct txn_layer **peers, const struct txn_user *u,
		     struct txn_layer **out);

/* Free every transaction (their gone callbacks run) and the layer. */
void txn_layer_destroy(struct txn_layer *l);

/* Override timer values (tests). */
void txn_layer_set_timers(struct txn_layer *l, const struct txn_timers *t);

/* Feed one message from the transport (the transport's message_cb). */
void txn_layer_receive(struct txn_layer *l, const struct tp_source *src, const char *buf,
		       size_t len);

/* The transport closed `conn`: client transactions on it fail with 503. */
void txn_layer_conn_closed(struct txn_layer *l, struct tp_conn *conn);

/* Send bytes down connection `conn_id` of worker `worker` (a flow held by
 * another worker: the bytes are copied and posted to it). Returns 0 or a
 * negative errno; a connection gone by then drops them silently. */
int txn_layer_send_flow(struct txn_layer *l, unsigned worker, uint64_t conn_id, const char *buf,
			size_t len);

/* A new branch of this worker into `out` (TXN_BRANCH_LEN + 1 bytes). */
void txn_branch_make(struct txn_layer *l, char *out);

/* The worker index encoded in a branch we made, or -1. */
int txn_branch_worker(struct str branch);

struct transport *txn_layer_transport(struct txn_layer *l);
unsigned txn_layer_index(const struct txn_layer *l);
const struct txn_stats *txn_layer_stats(const struct txn_layer *l);
/* The scratch message the layer parses into (valid until the next parse). */
struct sip_msg *txn_layer_scratch(struct txn_layer *l);

/* ---- server transactions ---- */

/* Send a response the TU built (forwarded or local) on the transaction,
 * following RFC 3261 §17.2 (retransmissions, timers G/H/J, state). */
int txn_server_respond(struct txn_server *st, int status, const char *buf, size_t len);

/* Build and send a local response from the stored request (§8.2.6). */
int txn_server_reply(struct txn_server *st, int status, const char *reason,
		     struct str extra_headers);

/* The request: during the request callback that created `st`, the message
 * the layer parsed on receipt; otherwise parsed again into a scratch
 * message. Valid until the next txn_server_request or client start. */
const struct sip_msg *txn_server_request(struct txn_server *st);
const struct tp_source *txn_server_source(const struct txn_server *st);
/* Replace the stored request (the proxy rewrote it, §16.4 strict routing);
 * later txn_server_request calls parse the new bytes. Returns 0 or -ENOMEM. */
int txn_server_replace_request(struct txn_server *st, const char *buf, size_t len);
bool txn_server_is_invite(const struct txn_server *st);
int txn_server_final_status(const struct txn_server *st); /* 0 until a final response */
void txn_server_set_user(struct txn_server *st, void *user);
void *txn_server_user(const struct txn_server *st);
/* The INVITE server transaction a CANCEL targets (same branch), or NULL. */
struct txn_server *txn_server_find_invite(struct txn_layer *l, const struct sip_msg *cancel);

/* ---- client transactions ---- */

/* Start a client transaction sending `req`/`len` (copied; its top Via
 * carries `branch` made by txn_branch_make) to `t`. Returns 0 and *out, or
 * a negative errno (the TU answers the branch itself then). */
int txn_client_start(struct txn_layer *l, const struct txn_target *t, const char *req, size_t len,
		     struct txn_client **out);

/* Send a CANCEL for a pending INVITE client transaction as a new client
 * transaction to the same target (§9.1); only after a provisional response
 * (otherwise it is sent when one arrives). */
int txn_client_cancel(struct txn_client *ct);

void txn_client_set_user(struct txn_client *ct, void *user);
void *txn_client_user(const struct txn_client *ct);
bool txn_client_is_invite(const struct txn_client *ct);
/* The connection the transaction went out on (streams), or NULL. */
struct tp_conn *txn_client_conn(const struct txn_client *ct);

#endif
