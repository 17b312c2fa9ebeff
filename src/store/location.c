/* location.c: the location interface, the memory back end, its
 * snapshot file and the store's maintenance thread. */
#include "store/location.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "store/binding.h"
#include "store/location_redis.h"

#define LOC_BUCKETS 65536

struct loc_aor {
	struct loc_aor *next;
	char aor[LOC_MAX_AOR];
	unsigned count;
	unsigned cap;
	struct loc_binding *b; /* grows to LOC_MAX_BINDINGS_PER_AOR */
};

struct location {
	struct loc_redis *redis; /* the Redis back end; NULL = memory */
	struct location_cfg cfg;
	pthread_mutex_t lock;
	struct loc_aor *buckets[LOC_BUCKETS];
	unsigned aors;
	unsigned bindings;
	/* Maintenance thread: expiry and snapshot, or the Redis heartbeat. */
	pthread_t thread;
	bool thread_running;
	bool stopping;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
};

static uint32_t aor_hash(struct str aor)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < aor.len; i++)
		h = (h ^ (unsigned char)aor.s[i]) * 16777619u;
	return h & (LOC_BUCKETS - 1);
}

void location_cfg_default(struct location_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->backend = LOC_BACKEND_MEMORY;
	c->snapshot_interval_s = 30;
	snprintf(c->redis_host, sizeof(c->redis_host), "127.0.0.1");
	c->redis_port = 6379;
	snprintf(c->redis_prefix, sizeof(c->redis_prefix), "sipsd");
	c->redis_timeout_ms = 200;
	c->heartbeat_ms = 1000;
	c->node_timeout_ms = 5000;
}

int location_create(struct location **out)
{
	struct location *loc = calloc(1, sizeof(*loc));
	if (!loc)
		return -ENOMEM;
	location_cfg_default(&loc->cfg);
	pthread_mutex_init(&loc->lock, NULL);
	pthread_mutex_init(&loc->stop_lock, NULL);
	pthread_cond_init(&loc->stop_cond, NULL);
	*out = loc;
	return 0;
}

static void *maintenance_main(void *arg)
{
	struct location *loc = arg;
	unsigned period_ms = loc->redis ? loc->cfg.heartbeat_ms
			     : loc->cfg.snapshot[0] ? loc->cfg.snapshot_interval_s * 1000u
						    : 60000u;
	pthread_mutex_lock(&loc->stop_lock);
	while (!loc->stopping) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += period_ms / 1000;
		until.tv_nsec += (long)(period_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&loc->stop_cond, &loc->stop_lock, &until);
		if (loc->stopping)
			break;
		pthread_mutex_unlock(&loc->stop_lock);
		if (loc->redis) {
			loc_redis_maintain(loc->redis);
		} else {
			int n = location_expire(loc, (int64_t)time(NULL));
			if (n)
				LOG_DEBUG("location.expire", "bindings_removed=%d", n);
			if (loc->cfg.snapshot[0]) {
				int rc = location_snapshot_save(loc, loc->cfg.snapshot);
				if (rc < 0)
					LOG_WARN("location.snapshot", "path=%s reason=\"%s\"", loc->cfg.snapshot,
						 strerror(-rc));
			}
		}
		pthread_mutex_lock(&loc->stop_lock);
	}
	pthread_mutex_unlock(&loc->stop_lock);
	return NULL;
}

int location_open(const struct location_cfg *cfg, struct location **out, char *err, size_t errsz)
{
	struct location *loc;
	int rc = location_create(&loc);
	if (rc < 0) {
		snprintf(err, errsz, "out of memory");
		return rc;
	}
	loc->cfg = *cfg;
	if (cfg->backend == LOC_BACKEND_REDIS) {
		rc = loc_redis_open(cfg, &loc->redis, err, errsz);
		if (rc < 0) {
			location_destroy(loc);
			return rc;
		}
	} else if (cfg->snapshot[0]) {
		unsigned dropped = 0;
		rc = location_snapshot_load(loc, cfg->snapshot, (int64_t)time(NULL), &dropped);
		if (rc == -EINVAL) {
			/* A damaged file is kept for a human, not overwritten. */
			snprintf(err, errsz, "snapshot %s is damaged; move it away to start empty",
				 cfg->snapshot);
			location_destroy(loc);
			return rc;
		}
		if (rc >= 0)
			LOG_INFO("location.snapshot", "path=%s restored=%d dropped_outbound=%u",
				 cfg->snapshot, rc, dropped);
		else if (rc != -ENOENT)
			LOG_WARN("location.snapshot", "path=%s reason=\"%s\"", cfg->snapshot, strerror(-rc));
	}
	rc = pthread_create(&loc->thread, NULL, maintenance_main, loc);
	if (rc != 0) {
		snprintf(err, errsz, "cannot start the store thread: %s", strerror(rc));
		location_destroy(loc);
		return -rc;
	}
	loc->thread_running = true;
	*out = loc;
	return 0;
}

void location_destroy(struct location *loc)
{
	if (!loc)
		return;
	if (loc->thread_running) {
		pthread_mutex_lock(&loc->stop_lock);
		loc->stopping = true;
		pthread_cond_signal(&loc->stop_cond);
		pthread_mutex_unlock(&loc->stop_lock);
		pthread_join(loc->thread, NULL);
		if (!loc->redis && loc->cfg.snapshot[0]) {
			int rc = location_snapshot_save(loc, loc->cfg.snapshot);
			if (rc >= 0)
				LOG_INFO("location.snapshot", "path=%s saved=%d", loc->cfg.snapshot, rc);
			else
				LOG_WARN("location.snapshot", "path=%s reason=\"%s\"", loc->cfg.snapshot,
					 strerror(-rc));
		}
	}
	loc_redis_close(loc->redis);
	for (unsigned i = 0; i < LOC_BUCKETS; i++) {
		struct loc_aor *a = loc->buckets[i];
		while (a) {
			struct loc_aor *n = a->next;
			free(a->b);
			free(a);
			a = n;
		}
	}
	pthread_mutex_destroy(&loc->lock);
	pthread_mutex_destroy(&loc->stop_lock);
	pthread_cond_destroy(&loc->stop_cond);
	free(loc);
}

static struct loc_aor **aor_slot(struct location *loc, struct str aor)
{
	struct loc_aor **pp = &loc->buckets[aor_hash(aor)];
	while (*pp && !(strlen((*pp)->aor) == aor.len && !memcmp((*pp)->aor, aor.s, aor.len)))
		pp = &(*pp)->next;
	return pp;
}

static void binding_remove_at(struct location *loc, struct loc_aor *a, unsigned i)
{
	a->b[i] = a->b[a->count - 1];
	a->count--;
	loc->bindings--;
}

static void aor_drop_if_empty(struct location *loc, struct loc_aor **pp)
{
	if (*pp && (*pp)->count == 0) {
		struct loc_aor *dead = *pp;
		*pp = dead->next;
		free(dead->b);
		free(dead);
		loc->aors--;
	}
}

int location_lookup(struct location *loc, struct str aor, int64_t now, struct loc_binding *out,
		    int max)
{
	if (loc->redis)
		return loc_redis_lookup(loc->redis, aor, now, out, max);
	int n = 0;
	pthread_mutex_lock(&loc->lock);
	struct loc_aor **pp = aor_slot(loc, aor);
	if (*pp) {
		struct loc_aor *a = *pp;
		for (unsigned i = 0; i < a->count && n < max; i++)
			if (a->b[i].expires_at > now)
				out[n++] = a->b[i];
	}
	pthread_mutex_unlock(&loc->lock);
	loc_bindings_sort(out, (unsigned)n);
	return n;
}

enum loc_update_result location_update(struct location *loc, struct str aor,
				       const struct loc_binding *b, uint32_t expires, int64_t now)
{
	if (aor.len >= LOC_MAX_AOR)
		return LOC_STORE_FULL;
	if (loc->redis)
		return loc_redis_update(loc->redis, aor, b, expires, now);
	enum loc_update_result rc = LOC_UPDATED;
	pthread_mutex_lock(&loc->lock);
	struct loc_aor **pp = aor_slot(loc, aor);
	struct loc_aor *a = *pp;
	if (!a) {
		if (expires == 0)
			goto out;
		if (loc->aors >= LOC_MAX_AORS) {
			rc = LOC_STORE_FULL;
			goto out;
		}
		a = calloc(1, sizeof(*a));
		if (!a) {
			rc = LOC_STORE_FULL;
			goto out;
		}
		memcpy(a->aor, aor.s, aor.len);
		*pp = a; /* the end of its bucket's chain, where the search stopped */
		loc->aors++;
	}
	/* Room for one more, up to the limit (the shared rules decide). */
	if (a->count == a->cap && a->cap < LOC_MAX_BINDINGS_PER_AOR) {
		unsigned cap = a->cap ? a->cap * 2 : 2;
		if (cap > LOC_MAX_BINDINGS_PER_AOR)
			cap = LOC_MAX_BINDINGS_PER_AOR;
		struct loc_binding *nb = realloc(a->b, cap * sizeof(*nb));
		if (!nb) {
			rc = LOC_STORE_FULL;
			aor_drop_if_empty(loc, pp);
			goto out;
		}
		a->b = nb;
		a->cap = cap;
	}
	unsigned before = a->count;
	rc = loc_bindings_apply(a->b, &a->count, a->cap, b, expires, now);
	loc->bindings = loc->bindings - before + a->count;
	aor_drop_if_empty(loc, pp);
out:
	pthread_mutex_unlock(&loc->lock);
	return rc;
}

int location_remove_all(struct location *loc, struct str aor, struct str call_id, uint32_t cseq)
{
	if (loc->redis)
		return loc_redis_remove_all(loc->redis, aor, call_id, cseq);
	int n = 0;
	pthread_mutex_lock(&loc->lock);
	struct loc_aor **pp = aor_slot(loc, aor);
	struct loc_aor *a = *pp;
	if (a) {
		if (!loc_bindings_may_remove_all(a->b, a->count, call_id.s, call_id.len, cseq)) {
			pthread_mutex_unlock(&loc->lock);
			return -LOC_OUT_OF_ORDER;
		}
		n = (int)a->count;
		loc->bindings -= a->count;
		a->count = 0;
		aor_drop_if_empty(loc, pp);
	}
	pthread_mutex_unlock(&loc->lock);
	return n;
}

int location_flow_closed(struct location *loc, unsigned worker, uint64_t conn_id)
{
	int n = 0;
	if (conn_id == 0)
		return 0;
	if (loc->redis)
		return loc_redis_flow_closed(loc->redis, worker, conn_id);
	pthread_mutex_lock(&loc->lock);
	for (unsigned bkt = 0; bkt < LOC_BUCKETS; bkt++) {
		struct loc_aor **pp = &loc->buckets[bkt];
		while (*pp) {
			struct loc_aor *a = *pp;
			for (unsigned i = a->count; i-- > 0;)
				if (a->b[i].flow.conn_id == conn_id && a->b[i].flow.worker == worker) {
					binding_remove_at(loc, a, i);
					n++;
				}
			if (a->count == 0)
				aor_drop_if_empty(loc, pp);
			else
				pp = &a->next;
		}
	}
	pthread_mutex_unlock(&loc->lock);
	return n;
}

int location_expire(struct location *loc, int64_t now)
{
	int n = 0;
	if (loc->redis)
		return 0; /* keys carry their expiry; lookups skip expired bindings */
	pthread_mutex_lock(&loc->lock);
	for (unsigned bkt = 0; bkt < LOC_BUCKETS; bkt++) {
		struct loc_aor **pp = &loc->buckets[bkt];
		while (*pp) {
			struct loc_aor *a = *pp;
			for (unsigned i = a->count; i-- > 0;)
				if (a->b[i].expires_at <= now) {
					binding_remove_at(loc, a, i);
					n++;
				}
			if (a->count == 0)
				aor_drop_if_empty(loc, pp);
			else
				pp = &a->next;
		}
	}
	pthread_mutex_unlock(&loc->lock);
	return n;
}

void location_foreach(struct location *loc,
		      void (*cb)(const char *aor, const struct loc_binding *b, void *arg), void *arg)
{
	if (loc->redis) {
		loc_redis_foreach(loc->redis, cb, arg);
		return;
	}
	pthread_mutex_lock(&loc->lock);
	for (unsigned bkt = 0; bkt < LOC_BUCKETS; bkt++)
		for (struct loc_aor *a = loc->buckets[bkt]; a; a = a->next)
			for (unsigned i = 0; i < a->count; i++)
				cb(a->aor, &a->b[i], arg);
	pthread_mutex_unlock(&loc->lock);
}

void location_counts(struct location *loc, unsigned *aors, unsigned *bindings)
{
	if (loc->redis) {
		loc_redis_counts(loc->redis, aors, bindings);
		return;
	}
	pthread_mutex_lock(&loc->lock);
	*aors = loc->aors;
	*bindings = loc->bindings;
	pthread_mutex_unlock(&loc->lock);
}

/* ---- snapshot ---- */

/* File: a first line "sipsd-location 1", then one record per binding:
 * the AOR and the binding's text form (binding.h), each a netstring,
 * then "\n". */
#define SNAPSHOT_MAGIC "sipsd-location 1\n"

struct snap_buf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void snap_put(struct snap_buf *s, const char *d, size_t n)
{
	if (s->failed)
		return;
	if (s->len + n > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 65536;
		while (cap < s->len + n)
			cap *= 2;
		char *np = realloc(s->p, cap);
		if (!np) {
			s->failed = true;
			return;
		}
		s->p = np;
		s->cap = cap;
	}
	memcpy(s->p + s->len, d, n);
	s->len += n;
}

int location_snapshot_save(struct location *loc, const char *path)
{
	if (loc->redis)
		return -EOPNOTSUPP;
	/* Encode under the lock (fast), write without it. */
	struct snap_buf s = {0};
	int count = 0;
	char text[LOC_BINDING_TEXT_MAX], record[LOC_MAX_AOR + LOC_BINDING_TEXT_MAX + 32];
	snap_put(&s, SNAPSHOT_MAGIC, strlen(SNAPSHOT_MAGIC));
	pthread_mutex_lock(&loc->lock);
	for (unsigned bkt = 0; bkt < LOC_BUCKETS; bkt++)
		for (struct loc_aor *a = loc->buckets[bkt]; a; a = a->next)
			for (unsigned i = 0; i < a->count; i++) {
				int n = loc_binding_encode(&a->b[i], text, sizeof(text));
				int k = n < 0 ? -1 : loc_netstring_put(record, sizeof(record), a->aor, strlen(a->aor));
				int m = k < 0 ? -1
					      : loc_netstring_put(record + k, sizeof(record) - (size_t)k, text,
								  (size_t)n);
				if (m < 0)
					continue;
				snap_put(&s, record, (size_t)(k + m));
				snap_put(&s, "\n", 1);
				count++;
			}
	pthread_mutex_unlock(&loc->lock);
	if (s.failed) {
		free(s.p);
		return -ENOMEM;
	}
	char tmp[600];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		free(s.p);
		return -errno;
	}
	int rc = 0;
	for (size_t off = 0; off < s.len;) {
		ssize_t w = write(fd, s.p + off, s.len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		off += (size_t)w;
	}
	free(s.p);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		return rc;
	}
	return count;
}

/* Limit on the file read (the store's own limit, with room). */
#define SNAPSHOT_MAX_BYTES ((size_t)LOC_MAX_AORS * LOC_MAX_BINDINGS_PER_AOR * 1024u)

int location_snapshot_load(struct location *loc, const char *path, int64_t now,
			   unsigned *dropped)
{
	*dropped = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || (size_t)st.st_size > SNAPSHOT_MAX_BYTES) {
		close(fd);
		return -EINVAL;
	}
	size_t size = (size_t)st.st_size;
	char *buf = malloc(size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	size_t got = 0;
	while (got < size) {
		ssize_t r = read(fd, buf + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (got != size || size < strlen(SNAPSHOT_MAGIC) ||
	    memcmp(buf, SNAPSHOT_MAGIC, strlen(SNAPSHOT_MAGIC))) {
		free(buf);
		return -EINVAL;
	}
	/* Check the whole file first: a damaged one restores nothing. */
	const char *end = buf + size;
	for (int pass = 0; pass < 2; pass++) {
		const char *p = buf + strlen(SNAPSHOT_MAGIC);
		int restored = 0;
		while (p < end) {
			const char *aor, *text;
			size_t aor_len, text_len;
			struct loc_binding b;
			if (!loc_netstring_next(&p, end, &aor, &aor_len) ||
			    !loc_netstring_next(&p, end, &text, &text_len) ||
			    p >= end || *p != '\n' || aor_len == 0 || aor_len >= LOC_MAX_AOR ||
			    loc_binding_decode(text, text_len, &b) < 0) {
				free(buf);
				return -EINVAL;
			}
			p++;
			if (pass == 0 || b.expires_at <= now)
				continue;
			if (b.flow.conn_id) {
				/* The connection died with the old process. */
				if (b.instance[0] && b.reg_id) {
					(*dropped)++;
					continue;
				}
				b.flow.conn_id = 0;
				b.flow.worker = 0;
			}
			if (location_update(loc, str_make(aor, aor_len), &b,
					    (uint32_t)(b.expires_at - now), now) == LOC_UPDATED)
				restored++;
		}
		if (pass == 1) {
			free(buf);
			return restored;
		}
	}
	free(buf);
	return 0;
}
