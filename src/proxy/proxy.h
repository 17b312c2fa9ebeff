/* proxy.h: the stateful proxy core (RFC 3261 §16) of one worker, with the
 * registrar for our domains, SIPS rules (RFC 5630) and flows (RFC 5626). */
#ifndef SIPSD_PROXY_PROXY_H
#define SIPSD_PROXY_PROXY_H

#include <stdbool.h>
#include <stdint.h>

#include "dns/dns.h"
#include "proxy/policy.h"
#include "registrar/credentials.h"
#include "registrar/digest.h"
#include "registrar/registrar.h"
#include "store/location.h"
#include "tls/tls_ctx.h"
#include "transport/transport.h"
#include "txn/txn.h"

#define PROXY_MAX_DOMAINS 16
#define PROXY_MAX_NODES 16
#define PROXY_MAX_LOCAL_ADDRS 16
/* Branches one request may fork to. */
#define PROXY_MAX_BRANCHES 16
/* Next-hop targets tried in turn for one branch (RFC 3263 §4.3). */
#define PROXY_MAX_TARGETS 8

struct proxy_domain {
	char name[254];
	struct tls_ctx *client_tls; /* our certificate for outbound mutual TLS; not owned */
};

/* One address we listen on, for "is this URI us?" and our Via. */
struct proxy_local {
	enum tp_proto proto;
	struct sockaddr_storage addr;
	socklen_t len;
};

struct proxy_cfg {
	struct proxy_domain domains[PROXY_MAX_DOMAINS];
	unsigned ndomains;
	struct proxy_local locals[PROXY_MAX_LOCAL_ADDRS];
	unsigned nlocals;
	struct registrar_cfg registrar;
	struct policy_cfg policy;
	/* Digest (RFC 3261 §22): shared by the workers, not owned; NULL = off. */
	struct digest_ctx *digest;
	const struct credentials *users;
	bool auth_register; /* challenge REGISTER (401) */
	bool auth_requests; /* challenge requests from our users' UAs (407) */
	bool auth_check_uri; /* RFC 2617 §3.2.2.5: uri must name the Request-URI */
	/* Key of the flow-token MAC: one per process, so a token made by one
	 * worker verifies at every other (RFC 5626 §5.2). */
	unsigned char flow_key[32];
	/* Static next hops for domains (tests without DNS, or an operator's
	 * override): "domain=ip:port/proto". Empty: numeric hosts only until
	 * the RFC 3263 resolver is wired in. */
	struct {
		char domain[254];
		enum tp_proto proto;
		struct sockaddr_storage addr;
		socklen_t len;
	} hops[PROXY_MAX_DOMAINS];
	unsigned nhops;
	/* RFC 3263 resolution of next hops (a resolver per worker). */
	struct dns_config dns;
	char dns_servers[256];
	/* Scale-out (docs/scaling.md): this node's number (0 = no cluster)
	 * and the other nodes of our domain. A binding whose flow another
	 * node holds is reached through that node, over mutual TLS, with a
	 * Route carrying the flow token; flow tokens name their node. The
	 * flow key is then shared by every node. */
	unsigned node;
	struct proxy_node {
		unsigned number;
		struct sockaddr_storage addr;
		socklen_t len;
	} nodes[PROXY_MAX_NODES];
	unsigned nnodes;
};

struct proxy_stats {
	uint64_t to_node;            /* requests handed to the node holding the flow */
	uint64_t requests, responses_forwarded, local_replies, forwarded, stateless_forwarded;
	uint64_t registrations, branch_failovers;
	uint64_t policy_rejected, policy_logged; /* authoritative proxy and Via trail */
	uint64_t by_method[SIP_METHOD_UPDATE + 1]; /* requests by enum sip_method */
	uint64_t by_class[7];                      /* responses sent, by status / 100 */
};

struct proxy;

/* Make the proxy of one worker. `loc` (shared, not owned) is the location
 * store; `cfg` is copied. The proxy creates its transaction layer on `tp`.
 * Returns 0 or -ENOMEM. */
int proxy_create(struct loop *loop, struct transport *tp, unsigned index, struct worker_pool *pool,
		 struct txn_layer **peers, struct location *loc, const struct proxy_cfg *cfg,
		 struct proxy **out);
void proxy_destroy(struct proxy *p);

/* A new configuration on the worker's thread (reload): domains and their
 * client contexts, policies, peers, registrar and Digest settings. Running
 * transactions keep what they started with. `cfg` is copied. */
void proxy_reconfigure(struct proxy *p, const struct proxy_cfg *cfg);

/* The transaction layer (for the transport's message callback). */
struct txn_layer *proxy_txn_layer(struct proxy *p);

/* The transport closed a connection: fail transactions on it, drop the
 * bindings registered over it. */
void proxy_conn_closed(struct proxy *p, struct tp_conn *conn);

const struct proxy_stats *proxy_stats(const struct proxy *p);

#endif
