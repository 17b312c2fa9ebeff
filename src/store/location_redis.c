/* location_redis.c: the location store in Redis, shared by the sipsd nodes
 * of one domain (docs/scaling.md).
 *
 * Keys (P = redis_prefix):
 *   P:aor:AOR            hash: binding key (binding.h) -> binding text;
 *                        expires with its last binding
 *   P:flow:N:W:C         set of "AOR\nKEY" registered over connection C of
 *                        worker W of node N (so its close drops them)
 *   P:nodeflows:N        set of node N's flow keys
 *   P:alive:N            node N's heartbeat (PX node_timeout_ms)
 *   P:nodes              set of node numbers that have beaten
 *
 * A binding's text starts with its flow's owner "N:W:C|"; the scripts
 * below drop a field only while that owner still holds it, so a UA that
 * registered again elsewhere keeps its new binding.
 *
 * Each thread talks to Redis over its own blocking connection (hiredis,
 * timeouts of redis_timeout_ms): a worker waits one loopback round trip
 * per store operation. When Redis does not answer, operations fail at
 * once (LOC_STORE_DOWN, -EIO) and the connection is tried again after
 * REDIS_RETRY_MS. */
#include "store/location_redis.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "base/log.h"
#include "store/binding.h"

#define REDIS_RETRY_MS 500
#define REDIS_WATCH_TRIES 8 /* optimistic-lock retries of one update */
#define REDIS_MAX_NODES 256
#define REDIS_KEY_MAX (LOC_MAX_AOR + 128)

struct loc_redis {
	struct location_cfg cfg;
	char password[256]; /* AUTH, "" = none */
	pthread_key_t key; /* this thread's struct rconn */
	pthread_mutex_t clean_lock;
	bool cleaned; /* this node's previous life's flows are gone */
	int64_t missing_since[REDIS_MAX_NODES]; /* ms; maintenance thread only */
	bool was_down; /* maintenance thread: log the change only */
};

struct rconn {
	redisContext *c;
	int64_t retry_at_ms;
	bool reused; /* served an earlier operation: a failure may be staleness */
	bool stale;  /* a reused connection just broke: try once more, now */
};

/* Drop the bindings of flows. ARGV: prefix, node, one flow key or "" for
 * every flow of the node, and "sweep" when another node declares this one
 * gone: then only if it is still silent and still listed, and it is
 * unlisted in the same step, so of several nodes sweeping at once exactly
 * one does it. Returns the number of bindings removed, -1 when the sweep
 * was not ours to do. */
static const char DROP_FLOWS_LUA[] =
	"local prefix = ARGV[1]\n"
	"if ARGV[4] == 'sweep' then\n"
	"  if redis.call('EXISTS', prefix .. ':alive:' .. ARGV[2]) == 1 then return -1 end\n"
	"  if redis.call('SREM', prefix .. ':nodes', ARGV[2]) == 0 then return -1 end\n"
	"end\n"
	"local nodeset = prefix .. ':nodeflows:' .. ARGV[2]\n"
	"local flows\n"
	"if ARGV[3] ~= '' then flows = {ARGV[3]} else flows = redis.call('SMEMBERS', nodeset) end\n"
	"local removed = 0\n"
	"for _, fk in ipairs(flows) do\n"
	"  local owner = string.sub(fk, #prefix + 7) .. '|'\n"
	"  for _, m in ipairs(redis.call('SMEMBERS', fk)) do\n"
	"    local nl = string.find(m, '\\n', 1, true)\n"
	"    if nl then\n"
	"      local key = prefix .. ':aor:' .. string.sub(m, 1, nl - 1)\n"
	"      local field = string.sub(m, nl + 1)\n"
	"      local v = redis.call('HGET', key, field)\n"
	"      if v and string.sub(v, 1, #owner) == owner then\n"
	"        redis.call('HDEL', key, field)\n"
	"        removed = removed + 1\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"  redis.call('DEL', fk)\n"
	"  redis.call('SREM', nodeset, fk)\n"
	"end\n"
	"return removed\n";

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rconn_free(void *arg)
{
	struct rconn *rc = arg;
	if (rc && rc->c)
		redisFree(rc->c);
	free(rc);
}

static redisReply *command(redisContext *c, int argc, const char **argv, const size_t *lens)
{
	return redisCommandArgv(c, argc, argv, lens);
}

/* A command of plain C strings. */
static redisReply *commandv(redisContext *c, int argc, const char **argv)
{
	size_t lens[16];
	for (int i = 0; i < argc && i < 16; i++)
		lens[i] = strlen(argv[i]);
	return command(c, argc, argv, lens);
}

/* Returns the script's answer (bindings removed, or -1 for a sweep not
 * ours), or -EIO. */
static int drop_flows(redisContext *c, const struct loc_redis *r, unsigned node, const char *flow_key,
		      bool sweep)
{
	char nodes[16];
	snprintf(nodes, sizeof(nodes), "%u", node);
	const char *argv[] = {"EVAL",	DROP_FLOWS_LUA, "0", r->cfg.redis_prefix, nodes, flow_key,
			      sweep ? "sweep" : ""};
	redisReply *rep = commandv(c, 7, argv);
	if (!rep)
		return -EIO;
	int n = rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : -EIO;
	if (rep->type == REDIS_REPLY_ERROR)
		LOG_WARN("location.redis", "op=drop_flows reason=\"%s\"", rep->str);
	freeReplyObject(rep);
	return n;
}

static redisContext *do_connect(const struct loc_redis *r)
{
	struct timeval tv = {(time_t)(r->cfg.redis_timeout_ms / 1000),
			     (suseconds_t)(r->cfg.redis_timeout_ms % 1000) * 1000};
	redisContext *c = redisConnectWithTimeout(r->cfg.redis_host, (int)r->cfg.redis_port, tv);
	if (!c)
		return NULL;
	if (c->err || redisSetTimeout(c, tv) != REDIS_OK) {
		redisFree(c);
		return NULL;
	}
	if (r->password[0]) {
		redisReply *rep = commandv(c, 2, (const char *[]){"AUTH", r->password});
		bool ok = rep && rep->type == REDIS_REPLY_STATUS;
		if (rep && rep->type == REDIS_REPLY_ERROR)
			LOG_WARN("location.redis", "host=%s port=%u reason=\"AUTH refused: %s\"",
				 r->cfg.redis_host, r->cfg.redis_port, rep->str);
		freeReplyObject(rep);
		if (!ok) {
			redisFree(c);
			return NULL;
		}
	}
	return c;
}

/* This node's earlier process held flows that died with it: drop their
 * bindings before this process registers anything (its connection ids
 * start again from 1). */
static bool ensure_cleaned(struct loc_redis *r, redisContext *c)
{
	if (__atomic_load_n(&r->cleaned, __ATOMIC_ACQUIRE))
		return true;
	pthread_mutex_lock(&r->clean_lock);
	bool ok = r->cleaned;
	if (!ok) {
		int n = drop_flows(c, r, r->cfg.node, "", false);
		if (n >= 0) {
			LOG_INFO("location.redis", "node=%u op=restart_cleanup bindings_removed=%d",
				 r->cfg.node, n);
			__atomic_store_n(&r->cleaned, true, __ATOMIC_RELEASE);
			ok = true;
		}
	}
	pthread_mutex_unlock(&r->clean_lock);
	return ok;
}

/* This thread's connection, made or made again when needed; NULL while
 * Redis does not answer. */
static redisContext *conn_get(struct loc_redis *r)
{
	struct rconn *rc = pthread_getspecific(r->key);
	if (!rc) {
		rc = calloc(1, sizeof(*rc));
		if (!rc || pthread_setspecific(r->key, rc) != 0) {
			free(rc);
			return NULL;
		}
	}
	if (rc->c && rc->c->err) {
		redisFree(rc->c);
		rc->c = NULL;
	}
	if (!rc->c) {
		int64_t t = now_ms();
		if (t < rc->retry_at_ms)
			return NULL;
		rc->c = do_connect(r);
		if (!rc->c) {
			rc->retry_at_ms = t + REDIS_RETRY_MS;
			return NULL;
		}
		rc->reused = false;
	} else {
		rc->reused = true;
	}
	if (!ensure_cleaned(r, rc->c))
		return NULL;
	return rc->c;
}

/* After a failed command: the connection is dropped when hiredis says it
 * is broken (a timeout leaves it unusable). */
static void conn_failed(struct loc_redis *r)
{
	struct rconn *rc = pthread_getspecific(r->key);
	if (rc && rc->c && rc->c->err) {
		LOG_WARN("location.redis", "host=%s port=%u reason=\"%s\"", r->cfg.redis_host,
			 r->cfg.redis_port, rc->c->errstr);
		redisFree(rc->c);
		rc->c = NULL;
		/* A connection that worked before may just have gone stale (a
		 * Redis restart): one new connection at once; a new one that
		 * fails means Redis is down: wait before the next try. */
		rc->stale = rc->reused;
		rc->retry_at_ms = rc->reused ? 0 : now_ms() + REDIS_RETRY_MS;
	}
}

/* After an operation failed: true (once) when it should be tried again on
 * a new connection. */
static bool take_stale(struct loc_redis *r)
{
	struct rconn *rc = pthread_getspecific(r->key);
	bool stale = rc && rc->stale;
	if (rc)
		rc->stale = false;
	return stale;
}

int loc_redis_open(const struct location_cfg *cfg, struct loc_redis **out, char *err, size_t errsz)
{
	struct loc_redis *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	r->cfg = *cfg;
	if (cfg->redis_password_file[0]) {
		FILE *f = fopen(cfg->redis_password_file, "r");
		if (!f || !fgets(r->password, sizeof(r->password), f)) {
			snprintf(err, errsz, "redis_password_file %s: %s", cfg->redis_password_file,
				 f ? "empty" : strerror(errno));
			if (f)
				fclose(f);
			free(r);
			return -EINVAL;
		}
		fclose(f);
		r->password[strcspn(r->password, "\r\n")] = '\0';
	}
	if (pthread_key_create(&r->key, rconn_free) != 0) {
		free(r);
		snprintf(err, errsz, "no thread-local key");
		return -ENOMEM;
	}
	pthread_mutex_init(&r->clean_lock, NULL);
	if (!conn_get(r))
		LOG_WARN("location.redis", "host=%s port=%u state=down reason=\"no answer at start; "
					   "registrations get 503 until it answers\"",
			 cfg->redis_host, cfg->redis_port);
	else
		LOG_INFO("location.redis", "host=%s port=%u prefix=%s node=%u state=up", cfg->redis_host,
			 cfg->redis_port, cfg->redis_prefix, cfg->node);
	*out = r;
	return 0;
}

void loc_redis_close(struct loc_redis *r)
{
	if (!r)
		return;
	/* The calling thread's connection; other threads freed theirs on exit. */
	rconn_free(pthread_getspecific(r->key));
	pthread_setspecific(r->key, NULL);
	pthread_key_delete(r->key);
	pthread_mutex_destroy(&r->clean_lock);
	OPENSSL_cleanse(r->password, sizeof(r->password));
	free(r);
}

static void aor_key(const struct loc_redis *r, struct str aor, char *out, size_t cap)
{
	snprintf(out, cap, "%s:aor:%.*s", r->cfg.redis_prefix, (int)aor.len, aor.s);
}

/* HGETALL of an AOR into arr; undecodable values are skipped (and so
 * dropped by the next update). Returns the count or -EIO. */
static int fetch_bindings(struct loc_redis *r, redisContext *c, const char *key,
			  struct loc_binding *arr, unsigned cap)
{
	const char *argv[] = {"HGETALL", key};
	redisReply *rep = commandv(c, 2, argv);
	if (!rep) {
		conn_failed(r);
		return -EIO;
	}
	if (rep->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(rep);
		return -EIO;
	}
	unsigned n = 0;
	for (size_t i = 0; i + 1 < rep->elements && n < cap; i += 2) {
		const redisReply *v = rep->element[i + 1];
		if (v->type != REDIS_REPLY_STRING ||
		    loc_binding_decode(v->str, v->len, &arr[n]) < 0) {
			LOG_WARN("location.redis", "key=%s reason=\"undecodable binding skipped\"", key);
			continue;
		}
		n++;
	}
	freeReplyObject(rep);
	return (int)n;
}

static int op_lookup_once(struct loc_redis *r, struct str aor, int64_t now, struct loc_binding *out,
		     int max)
{
	redisContext *c = conn_get(r);
	if (!c)
		return -EIO;
	char key[REDIS_KEY_MAX];
	aor_key(r, aor, key, sizeof(key));
	struct loc_binding all[LOC_MAX_BINDINGS_PER_AOR];
	int n = fetch_bindings(r, c, key, all, LOC_MAX_BINDINGS_PER_AOR);
	if (n < 0)
		return n;
	int k = 0;
	for (int i = 0; i < n && k < max; i++)
		if (all[i].expires_at > now)
			out[k++] = all[i];
	loc_bindings_sort(out, (unsigned)k);
	return k;
}

static bool reply_ok(redisReply *rep)
{
	bool ok = rep && rep->type != REDIS_REPLY_ERROR;
	if (rep && rep->type == REDIS_REPLY_ERROR)
		LOG_WARN("location.redis", "reason=\"%s\"", rep->str);
	freeReplyObject(rep);
	return ok;
}

/* Write the whole set of an AOR inside MULTI/EXEC after a WATCH: true when
 * EXEC ran it, false when another node changed the AOR first (*retry) or
 * Redis failed. */
static bool write_set(struct loc_redis *r, redisContext *c, const char *key, struct str aor,
		      const struct loc_binding *arr, unsigned n, const struct loc_binding *added,
		      bool *retry)
{
	*retry = false;
	bool ok = reply_ok(commandv(c, 1, (const char *[]){"MULTI"}));
	ok = ok && reply_ok(commandv(c, 2, (const char *[]){"DEL", key}));
	if (ok && n) {
		static __thread char texts[LOC_MAX_BINDINGS_PER_AOR][LOC_BINDING_TEXT_MAX];
		static __thread char fields[LOC_MAX_BINDINGS_PER_AOR][LOC_MAX_CONTACT + LOC_MAX_INSTANCE + 16];
		const char *argv[2 + 2 * LOC_MAX_BINDINGS_PER_AOR];
		size_t lens[2 + 2 * LOC_MAX_BINDINGS_PER_AOR];
		int argc = 0;
		argv[argc] = "HSET";
		lens[argc++] = 4;
		argv[argc] = key;
		lens[argc++] = strlen(key);
		int64_t last = 0;
		for (unsigned i = 0; i < n; i++) {
			int fl = loc_binding_key(&arr[i], fields[i], sizeof(fields[i]));
			int tl = loc_binding_encode(&arr[i], texts[i], sizeof(texts[i]));
			if (fl < 0 || tl < 0)
				continue;
			argv[argc] = fields[i];
			lens[argc++] = (size_t)fl;
			argv[argc] = texts[i];
			lens[argc++] = (size_t)tl;
			if (arr[i].expires_at > last)
				last = arr[i].expires_at;
		}
		if (argc > 2)
			ok = reply_ok(command(c, argc, argv, lens));
		char at[32];
		snprintf(at, sizeof(at), "%" PRId64, (last + 5) * 1000);
		ok = ok && reply_ok(commandv(c, 3, (const char *[]){"PEXPIREAT", key, at}));
	}
	if (ok && added && added->flow.conn_id) {
		char owner[64], flow_key[160], nodeflows[160], field[LOC_MAX_CONTACT + LOC_MAX_INSTANCE + 16];
		char member[LOC_MAX_AOR + sizeof(field) + 2];
		loc_flow_owner(&added->flow, owner, sizeof(owner));
		snprintf(flow_key, sizeof(flow_key), "%s:flow:%s", r->cfg.redis_prefix, owner);
		snprintf(nodeflows, sizeof(nodeflows), "%s:nodeflows:%u", r->cfg.redis_prefix,
			 added->flow.node);
		loc_binding_key(added, field, sizeof(field));
		int ml = snprintf(member, sizeof(member), "%.*s\n%s", (int)aor.len, aor.s, field);
		const char *argv[] = {"SADD", flow_key, member};
		size_t lens[] = {4, strlen(flow_key), (size_t)ml};
		ok = reply_ok(command(c, 3, argv, lens));
		ok = ok && reply_ok(commandv(c, 3, (const char *[]){"SADD", nodeflows, flow_key}));
	}
	if (!ok) {
		freeReplyObject(commandv(c, 1, (const char *[]){"DISCARD"}));
		conn_failed(r);
		return false;
	}
	redisReply *rep = commandv(c, 1, (const char *[]){"EXEC"});
	if (!rep) {
		conn_failed(r);
		return false;
	}
	bool done = rep->type == REDIS_REPLY_ARRAY;
	*retry = rep->type == REDIS_REPLY_NIL; /* the WATCHed key changed */
	freeReplyObject(rep);
	return done;
}

static enum loc_update_result op_update_once(struct loc_redis *r, struct str aor,
					const struct loc_binding *b, uint32_t expires, int64_t now)
{
	char key[REDIS_KEY_MAX];
	aor_key(r, aor, key, sizeof(key));
	for (int attempt = 0; attempt < REDIS_WATCH_TRIES; attempt++) {
		redisContext *c = conn_get(r);
		if (!c)
			return LOC_STORE_DOWN;
		if (!reply_ok(commandv(c, 2, (const char *[]){"WATCH", key}))) {
			conn_failed(r);
			return LOC_STORE_DOWN;
		}
		struct loc_binding arr[LOC_MAX_BINDINGS_PER_AOR];
		int n = fetch_bindings(r, c, key, arr, LOC_MAX_BINDINGS_PER_AOR);
		if (n < 0)
			return LOC_STORE_DOWN;
		unsigned count = (unsigned)n;
		enum loc_update_result rc =
			loc_bindings_apply(arr, &count, LOC_MAX_BINDINGS_PER_AOR, b, expires, now);
		if (rc != LOC_UPDATED) {
			freeReplyObject(commandv(c, 1, (const char *[]){"UNWATCH"}));
			return rc;
		}
		bool retry;
		if (write_set(r, c, key, aor, arr, count, expires ? b : NULL, &retry))
			return LOC_UPDATED;
		if (!retry)
			return LOC_STORE_DOWN;
	}
	LOG_WARN("location.redis", "key=%s reason=\"gave up after %d concurrent changes\"", key,
		 REDIS_WATCH_TRIES);
	return LOC_STORE_DOWN;
}

static int op_remove_all_once(struct loc_redis *r, struct str aor, struct str call_id, uint32_t cseq)
{
	char key[REDIS_KEY_MAX];
	aor_key(r, aor, key, sizeof(key));
	for (int attempt = 0; attempt < REDIS_WATCH_TRIES; attempt++) {
		redisContext *c = conn_get(r);
		if (!c)
			return -LOC_STORE_DOWN;
		if (!reply_ok(commandv(c, 2, (const char *[]){"WATCH", key}))) {
			conn_failed(r);
			return -LOC_STORE_DOWN;
		}
		struct loc_binding arr[LOC_MAX_BINDINGS_PER_AOR];
		int n = fetch_bindings(r, c, key, arr, LOC_MAX_BINDINGS_PER_AOR);
		if (n < 0)
			return -LOC_STORE_DOWN;
		if (!loc_bindings_may_remove_all(arr, (unsigned)n, call_id.s, call_id.len, cseq)) {
			freeReplyObject(commandv(c, 1, (const char *[]){"UNWATCH"}));
			return -LOC_OUT_OF_ORDER;
		}
		bool retry;
		if (write_set(r, c, key, aor, arr, 0, NULL, &retry))
			return n;
		if (!retry)
			return -LOC_STORE_DOWN;
	}
	return -LOC_STORE_DOWN;
}

static int op_flow_closed_once(struct loc_redis *r, unsigned worker, uint64_t conn_id)
{
	redisContext *c = conn_get(r);
	if (!c)
		return 0; /* the node's restart or its peers' sweep cleans up */
	struct loc_flow f = {.node = r->cfg.node, .worker = worker, .conn_id = conn_id};
	char owner[64], flow_key[160];
	loc_flow_owner(&f, owner, sizeof(owner));
	snprintf(flow_key, sizeof(flow_key), "%s:flow:%s", r->cfg.redis_prefix, owner);
	int n = drop_flows(c, r, r->cfg.node, flow_key, false);
	if (n < 0) {
		conn_failed(r);
		return 0;
	}
	return n;
}

int loc_redis_lookup(struct loc_redis *r, struct str aor, int64_t now, struct loc_binding *out,
		     int max)
{
	int res = op_lookup_once(r, aor, now, out, max);
	if (take_stale(r))
		res = op_lookup_once(r, aor, now, out, max);
	return res;
}

enum loc_update_result loc_redis_update(struct loc_redis *r, struct str aor,
					const struct loc_binding *b, uint32_t expires, int64_t now)
{
	enum loc_update_result res = op_update_once(r, aor, b, expires, now);
	if (take_stale(r))
		res = op_update_once(r, aor, b, expires, now);
	return res;
}

int loc_redis_remove_all(struct loc_redis *r, struct str aor, struct str call_id, uint32_t cseq)
{
	int res = op_remove_all_once(r, aor, call_id, cseq);
	if (take_stale(r))
		res = op_remove_all_once(r, aor, call_id, cseq);
	return res;
}

int loc_redis_flow_closed(struct loc_redis *r, unsigned worker, uint64_t conn_id)
{
	int res = op_flow_closed_once(r, worker, conn_id);
	if (take_stale(r))
		res = op_flow_closed_once(r, worker, conn_id);
	return res;
}

/* Walk the AOR keys (at most LOC_LIST_MAX). */
static void scan_aors(struct loc_redis *r,
		      void (*each)(struct loc_redis *r, redisContext *c, const char *key, void *arg),
		      void *arg)
{
	redisContext *c = conn_get(r);
	if (!c)
		return;
	char match[160], cursor[32] = "0";
	snprintf(match, sizeof(match), "%s:aor:*", r->cfg.redis_prefix);
	unsigned seen = 0;
	do {
		const char *argv[] = {"SCAN", cursor, "MATCH", match, "COUNT", "500"};
		redisReply *rep = commandv(c, 6, argv);
		if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
			freeReplyObject(rep);
			conn_failed(r);
			return;
		}
		snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str ? rep->element[0]->str : "0");
		const redisReply *keys = rep->element[1];
		for (size_t i = 0; i < keys->elements && seen < LOC_LIST_MAX; i++, seen++)
			each(r, c, keys->element[i]->str, arg);
		freeReplyObject(rep);
	} while (strcmp(cursor, "0") && seen < LOC_LIST_MAX);
}

struct foreach_arg {
	void (*cb)(const char *aor, const struct loc_binding *b, void *arg);
	void *arg;
	unsigned aors, bindings;
};

static void foreach_each(struct loc_redis *r, redisContext *c, const char *key, void *arg)
{
	struct foreach_arg *fa = arg;
	struct loc_binding arr[LOC_MAX_BINDINGS_PER_AOR];
	int n = fetch_bindings(r, c, key, arr, LOC_MAX_BINDINGS_PER_AOR);
	const char *aor = key + strlen(r->cfg.redis_prefix) + 5; /* ":aor:" */
	int64_t now = (int64_t)time(NULL);
	int live = 0;
	for (int i = 0; i < n; i++) {
		if (arr[i].expires_at <= now)
			continue;
		live++;
		if (fa->cb)
			fa->cb(aor, &arr[i], fa->arg);
	}
	if (live) {
		fa->aors++;
		fa->bindings += (unsigned)live;
	}
}

void loc_redis_foreach(struct loc_redis *r,
		       void (*cb)(const char *aor, const struct loc_binding *b, void *arg), void *arg)
{
	struct foreach_arg fa = {cb, arg, 0, 0};
	scan_aors(r, foreach_each, &fa);
}

void loc_redis_counts(struct loc_redis *r, unsigned *aors, unsigned *bindings)
{
	struct foreach_arg fa = {NULL, NULL, 0, 0};
	scan_aors(r, foreach_each, &fa);
	*aors = fa.aors;
	*bindings = fa.bindings;
}

void loc_redis_maintain(struct loc_redis *r)
{
	redisContext *c = conn_get(r);
	char alive[160], nodes[160], me[16], ttl[16], pid[16];
	snprintf(alive, sizeof(alive), "%s:alive:%u", r->cfg.redis_prefix, r->cfg.node);
	snprintf(nodes, sizeof(nodes), "%s:nodes", r->cfg.redis_prefix);
	snprintf(me, sizeof(me), "%u", r->cfg.node);
	snprintf(ttl, sizeof(ttl), "%u", r->cfg.node_timeout_ms);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	bool ok = c && reply_ok(commandv(c, 5, (const char *[]){"SET", alive, pid, "PX", ttl})) &&
		  reply_ok(commandv(c, 3, (const char *[]){"SADD", nodes, me}));
	redisReply *members = ok ? commandv(c, 2, (const char *[]){"SMEMBERS", nodes}) : NULL;
	if (!members || members->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(members);
		if (c)
			conn_failed(r);
		if (!r->was_down)
			LOG_WARN("location.redis", "host=%s port=%u state=down", r->cfg.redis_host,
				 r->cfg.redis_port);
		r->was_down = true;
		/* What was seen missing before is not known any more. */
		memset(r->missing_since, 0, sizeof(r->missing_since));
		return;
	}
	if (r->was_down)
		LOG_INFO("location.redis", "host=%s port=%u state=up", r->cfg.redis_host, r->cfg.redis_port);
	r->was_down = false;
	int64_t t = now_ms();
	for (size_t i = 0; i < members->elements; i++) {
		unsigned long n = strtoul(members->element[i]->str, NULL, 10);
		if (n == r->cfg.node || n >= REDIS_MAX_NODES)
			continue;
		char other[160];
		snprintf(other, sizeof(other), "%s:alive:%lu", r->cfg.redis_prefix, n);
		redisReply *ex = commandv(c, 2, (const char *[]){"EXISTS", other});
		bool present = ex && ex->type == REDIS_REPLY_INTEGER && ex->integer == 1;
		bool answered = ex != NULL;
		freeReplyObject(ex);
		if (!answered)
			break;
		if (present) {
			r->missing_since[n] = 0;
			continue;
		}
		/* Gone only after this node has itself seen it silent for the
		 * whole timeout (a restarted Redis loses no live node). */
		if (!r->missing_since[n]) {
			r->missing_since[n] = t;
			continue;
		}
		if (t - r->missing_since[n] < (int64_t)r->cfg.node_timeout_ms)
			continue;
		int removed = drop_flows(c, r, (unsigned)n, "", true);
		if (removed == -EIO)
			break;
		if (removed >= 0)
			LOG_WARN("cluster.node_gone", "node=%lu silent_ms=%lld bindings_removed=%d", n,
				 (long long)(t - r->missing_since[n]), removed);
		r->missing_since[n] = 0;
	}
	freeReplyObject(members);
}
