/* location.h: the location service (RFC 3261 §10): AOR -> bindings, each
 * tied to the flow it was registered over (RFC 5626). Two back ends behind
 * one interface: memory (one lock, shared by the workers; a snapshot file
 * keeps registrations across a restart) and Redis (several sipsd nodes of
 * one domain share the bindings: docs/scaling.md). */
#ifndef SIPSD_STORE_LOCATION_H
#define SIPSD_STORE_LOCATION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/str.h"

#define LOC_MAX_AOR 256
#define LOC_MAX_CONTACT 512
#define LOC_MAX_INSTANCE 160
#define LOC_MAX_CALLID 256
#define LOC_MAX_PATH 512
/* Bindings one AOR may hold (a REGISTER flood for one AOR stops here). */
#define LOC_MAX_BINDINGS_PER_AOR 16
/* AORs in the store. */
#define LOC_MAX_AORS 200000

/* The connection a binding was made over: requests for the UA go down it
 * (RFC 5626 §5.3, spec rule 16). proto 0 means "no flow" (UDP). */
struct loc_flow {
	int proto;        /* enum tp_proto; 1 = UDP */
	unsigned node;    /* cluster node holding the connection; 0 = no cluster */
	unsigned worker;  /* worker owning the connection */
	uint64_t conn_id; /* transport connection id; 0 for UDP */
	struct sockaddr_storage remote; /* source address (UDP: where to send) */
	socklen_t remote_len;
	int udp_fd;       /* UDP: the socket it arrived on */
};

struct loc_binding {
	char contact[LOC_MAX_CONTACT]; /* Contact URI as registered */
	char instance[LOC_MAX_INSTANCE]; /* +sip.instance, "" when none */
	unsigned reg_id;                 /* RFC 5626 reg-id, 0 when none */
	char call_id[LOC_MAX_CALLID];
	uint32_t cseq;
	int64_t expires_at; /* seconds, CLOCK_REALTIME */
	unsigned q1000;     /* q * 1000 (RFC 3261 §20.10) */
	char path[LOC_MAX_PATH]; /* Path header values (RFC 3327), "" when none */
	struct loc_flow flow;
};

struct location;

enum loc_backend { LOC_BACKEND_MEMORY = 0, LOC_BACKEND_REDIS };

/* [location] and [cluster] of the configuration (docs/configuration.md). */
struct location_cfg {
	enum loc_backend backend;
	char snapshot[512];           /* memory: snapshot file, "" = none */
	unsigned snapshot_interval_s; /* memory: write it this often (and at stop) */
	char redis_host[256];         /* redis: server address */
	unsigned redis_port;
	char redis_prefix[64];        /* redis: key prefix, one per domain's cluster */
	unsigned redis_timeout_ms;    /* redis: connect and command timeout */
	char redis_password_file[512]; /* redis: AUTH with the file's first line, "" = none */
	unsigned node;                /* this node's number (1..255); 0 = no cluster */
	unsigned heartbeat_ms;        /* redis: node liveness refresh */
	unsigned node_timeout_ms;     /* redis: a node silent this long is gone */
};

void location_cfg_default(struct location_cfg *c);

/* Open the configured store: memory (restoring the snapshot when there is
 * one) or Redis (cleaning what this node's previous life left). Starts
 * the store's maintenance thread (expiry and snapshot; Redis heartbeat
 * and the sweep of dead nodes). Returns 0, or a negative errno with `err`
 * saying why. A Redis server that is down is not an error: requests get
 * 503 until it answers. */
int location_open(const struct location_cfg *cfg, struct location **out, char *err,
		  size_t errsz);

/* Make an empty memory store without snapshot or thread (tests). */
int location_create(struct location **out);

/* Stop the thread, write the last snapshot, free everything. */
void location_destroy(struct location *loc);

/* Copy the live bindings of `aor` (canonical form, see registrar) into
 * `out` (capacity `max`) in descending q order. Returns the count, or
 * -EIO when the store cannot be reached. */
int location_lookup(struct location *loc, struct str aor, int64_t now, struct loc_binding *out,
		    int max);

/* Result of one binding update. */
enum loc_update_result {
	LOC_UPDATED = 0,
	LOC_OUT_OF_ORDER, /* same Call-ID with a CSeq not higher (§10.3 step 7): 500 */
	LOC_TOO_MANY,     /* the per-AOR limit */
	LOC_STORE_FULL,
	LOC_STORE_DOWN,   /* Redis unreachable: 503 */
};

/* Add or refresh `b` under `aor` (matched by contact URI, or by instance
 * and reg-id when both exist: RFC 5626 §6), or remove it when `expires` is
 * 0. `now` is CLOCK_REALTIME seconds. */
enum loc_update_result location_update(struct location *loc, struct str aor,
				       const struct loc_binding *b, uint32_t expires, int64_t now);

/* Remove every binding of `aor` (Contact: *, §10.3 step 6). Returns the
 * number removed, or LOC_OUT_OF_ORDER as a negative when a binding with the
 * same Call-ID has a higher or equal CSeq, or -LOC_STORE_DOWN. */
int location_remove_all(struct location *loc, struct str aor, struct str call_id, uint32_t cseq);

/* A connection of this node died: drop the bindings registered over it
 * (the UA must register again on a new flow). Returns the number removed. */
int location_flow_closed(struct location *loc, unsigned worker, uint64_t conn_id);

/* Drop expired bindings; returns the number removed. */
int location_expire(struct location *loc, int64_t now);

/* Call cb for every binding (memory: under the store's lock, so cb must
 * not call back into the store; Redis: the first LOC_LIST_MAX AORs). */
#define LOC_LIST_MAX 10000
void location_foreach(struct location *loc,
		      void (*cb)(const char *aor, const struct loc_binding *b, void *arg), void *arg);

/* Number of AORs and bindings held (Redis: counted up to LOC_LIST_MAX
 * AORs). */
void location_counts(struct location *loc, unsigned *aors, unsigned *bindings);

/* Memory store: write every binding to `path` (a temporary file renamed
 * over it, so a crash leaves the previous snapshot). Returns the number of
 * bindings written or a negative errno. */
int location_snapshot_save(struct location *loc, const char *path);

/* Memory store: add the bindings of a snapshot, dropping expired ones.
 * Connections do not survive a restart: a binding made over TCP or TLS
 * keeps its Contact (reached by a new connection, RFC 3261 §18.1.1)
 * unless it was an outbound flow (RFC 5626 §5.3: only that flow may
 * reach the UA, which registers again when it sees the flow fail); those
 * are dropped and counted in *dropped. Returns the number restored, -ENOENT
 * when there is no file, -EINVAL for a damaged one (nothing restored). */
int location_snapshot_load(struct location *loc, const char *path, int64_t now,
			   unsigned *dropped);

#endif
