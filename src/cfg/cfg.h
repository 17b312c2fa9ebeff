/* cfg.h: the sipsd configuration file: a small, strict INI-like format
 * (sections, `key = value`, `#` comments). Errors name the file and line. */
#ifndef SIPSD_CFG_CFG_H
#define SIPSD_CFG_CFG_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/policy.h"
#include "store/location.h"
#include "tls/identity.h"

#define CFG_MAX_DOMAINS 16
#define CFG_MAX_LISTENERS 16
#define CFG_MAX_PATH 512
#define CFG_MAX_NAME 254

struct cfg_domain {
	char name[CFG_MAX_NAME];
	char cert[CFG_MAX_PATH];
	char key[CFG_MAX_PATH];
	char chain[CFG_MAX_PATH];
	int line;
};

enum cfg_proto { CFG_PROTO_UDP = 1, CFG_PROTO_TCP, CFG_PROTO_TLS };

struct cfg_listener {
	enum cfg_proto proto;
	char addr[64];              /* "127.0.0.1:5061", "[::1]:5061" */
	char domain[CFG_MAX_NAME];  /* TLS: default domain (no SNI); "" = first domain */
	bool require_client_cert;   /* TLS: refuse clients without a certificate */
	int line;
};

struct cfg_limits {
	unsigned max_conns;
	unsigned max_conns_per_ip;
	unsigned max_handshakes;
	unsigned handshake_timeout_ms;
	unsigned idle_timeout_ms;
	unsigned max_write_queue;
	unsigned message_timeout_ms;
	unsigned max_handshakes_per_ip;
};

/* Another sipsd node of our domain ([node N], docs/scaling.md). */
#define CFG_MAX_NODES 16
struct cfg_node {
	unsigned number; /* 1..255, as in its own [cluster] node */
	char addr[64];   /* its TLS listener, "IP:PORT" */
	int line;
};

/* A static next hop for a domain (before, or instead of, RFC 3263). */
struct cfg_route {
	char domain[CFG_MAX_NAME];
	enum cfg_proto proto;
	char addr[64];
	int line;
};

struct cfg {
	unsigned workers; /* 0: one per core */
	char user[64];    /* run as this user once the sockets are bound ("" = stay) */
	unsigned cert_warn_days; /* warn this many days before a certificate expires */
	char control[108];       /* unix control socket path ("" = none) */
	bool log_syslog;         /* log_target = syslog */
	char metrics[64];        /* Prometheus endpoint address ("" = none) */
	int log_level;    /* enum log_level */
	char ca_file[CFG_MAX_PATH];
	char ca_dir[CFG_MAX_PATH];
	char crl_file[CFG_MAX_PATH];
	struct tls_identity_policy policy;
	struct cfg_limits limits;
	struct cfg_domain domains[CFG_MAX_DOMAINS];
	unsigned ndomains;
	struct cfg_listener listeners[CFG_MAX_LISTENERS];
	unsigned nlisteners;
	struct cfg_route routes[CFG_MAX_DOMAINS];
	unsigned nroutes;
	unsigned min_expires, max_expires, default_expires;
	/* [dns] (docs/dns.md) */
	char dns_servers[256]; /* "IP:PORT,..."; "" = /etc/resolv.conf */
	unsigned dns_timeout_ms;
	unsigned dns_tries;
	bool sip_prefer_tls;
	/* [policy] and [peer DOMAIN] (docs/policies.md) */
	struct policy_cfg peer_policy;
	/* [auth] (docs/digest.md) */
	char credentials[CFG_MAX_PATH]; /* "" = no Digest authentication */
	bool auth_register;             /* challenge REGISTER (default yes with credentials) */
	bool auth_requests;             /* challenge requests from our users (default yes) */
	unsigned nonce_lifetime;        /* seconds (default 300) */
	unsigned auth_algorithms;       /* DIGEST_ALG_BIT set; 0 = SHA-256 and MD5 */
	bool auth_check_uri;            /* the uri parameter must be the Request-URI (default yes) */
	/* [location] and [cluster] (docs/scaling.md); location.node is [cluster] node */
	struct location_cfg location;
	char cluster_secret_file[CFG_MAX_PATH]; /* flow-token key shared by the nodes */
	int cluster_line;                       /* 0 = no [cluster] section */
	struct cfg_node nodes[CFG_MAX_NODES];
	unsigned nnodes;
};

/* Fill the defaults (docs/configuration.md). */
void cfg_init(struct cfg *c);

/* Read and validate `path` into `c` (which cfg_load initialises). On error
 * returns a negative errno and writes "FILE:LINE: message" into err. */
int cfg_load(const char *path, struct cfg *c, char *err, size_t err_size);

#endif
