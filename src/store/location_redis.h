/* location_redis.h: the Redis back end of the location store (private to
 * src/store; location.c dispatches to it). Layout of the keys and the
 * failure behaviour: docs/scaling.md. */
#ifndef SIPSD_STORE_LOCATION_REDIS_H
#define SIPSD_STORE_LOCATION_REDIS_H

#include "store/location.h"

struct loc_redis;

int loc_redis_open(const struct location_cfg *cfg, struct loc_redis **out, char *err, size_t errsz);
void loc_redis_close(struct loc_redis *r); /* NULL allowed */

int loc_redis_lookup(struct loc_redis *r, struct str aor, int64_t now, struct loc_binding *out,
		     int max);
enum loc_update_result loc_redis_update(struct loc_redis *r, struct str aor,
					const struct loc_binding *b, uint32_t expires, int64_t now);
int loc_redis_remove_all(struct loc_redis *r, struct str aor, struct str call_id, uint32_t cseq);
int loc_redis_flow_closed(struct loc_redis *r, unsigned worker, uint64_t conn_id);
void loc_redis_foreach(struct loc_redis *r,
		       void (*cb)(const char *aor, const struct loc_binding *b, void *arg), void *arg);
void loc_redis_counts(struct loc_redis *r, unsigned *aors, unsigned *bindings);

/* One beat of the maintenance thread: refresh this node's liveness, and
 * drop the flows of nodes gone silent for node_timeout_ms. */
void loc_redis_maintain(struct loc_redis *r);

#endif
