/* location.c: the in-memory location store. */
#include "store/location.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define LOC_BUCKETS 65536

struct loc_aor {
	struct loc_aor *next;
	char aor[LOC_MAX_AOR];
	unsigned count;
	unsigned cap;
	struct loc_binding *b; /* grows to LOC_MAX_BINDINGS_PER_AOR */
};

struct location {
	pthread_mutex_t lock;
	struct loc_aor *buckets[LOC_BUCKETS];
	unsigned aors;
	unsigned bindings;
};

static uint32_t aor_hash(struct str aor)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < aor.len; i++)
		h = (h ^ (unsigned char)aor.s[i]) * 16777619u;
	return h & (LOC_BUCKETS - 1);
}

int location_create(struct location **out)
{
	struct location *loc = calloc(1, sizeof(*loc));
	if (!loc)
		return -ENOMEM;
	pthread_mutex_init(&loc->lock, NULL);
	*out = loc;
	return 0;
}

void location_destroy(struct location *loc)
{
	if (!loc)
		return;
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

static int cmp_q(const void *x, const void *y)
{
	const struct loc_binding *a = x, *b = y;
	return a->q1000 < b->q1000 ? 1 : a->q1000 > b->q1000 ? -1 : 0;
}

int location_lookup(struct location *loc, struct str aor, int64_t now, struct loc_binding *out,
		    int max)
{
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
	qsort(out, (size_t)n, sizeof(*out), cmp_q);
	return n;
}

static bool same_binding(const struct loc_binding *x, const struct loc_binding *y)
{
	/* RFC 5626 §6: with +sip.instance and reg-id the pair identifies the
	 * flow's binding; otherwise the Contact URI does (§10.3 step 7). */
	if (x->instance[0] && y->instance[0] && x->reg_id && y->reg_id)
		return !strcmp(x->instance, y->instance) && x->reg_id == y->reg_id;
	return !strcmp(x->contact, y->contact);
}

enum loc_update_result location_update(struct location *loc, struct str aor,
				       const struct loc_binding *b, uint32_t expires, int64_t now)
{
	enum loc_update_result rc = LOC_UPDATED;
	if (aor.len >= LOC_MAX_AOR)
		return LOC_STORE_FULL;
	pthread_mutex_lock(&loc->lock);
	struct loc_aor **pp = aor_slot(loc, aor);
	struct loc_aor *a = *pp;
	if (a) {
		/* Expired bindings do not count against the limit. */
		for (unsigned i = a->count; i-- > 0;)
			if (a->b[i].expires_at <= now)
				binding_remove_at(loc, a, i);
		for (unsigned i = 0; i < a->count; i++) {
			if (!same_binding(&a->b[i], b))
				continue;
			if (!strcmp(a->b[i].call_id, b->call_id) && b->cseq <= a->b[i].cseq) {
				rc = LOC_OUT_OF_ORDER;
				goto out;
			}
			if (expires == 0) {
				binding_remove_at(loc, a, i);
				aor_drop_if_empty(loc, pp);
			} else {
				a->b[i] = *b;
				a->b[i].expires_at = now + expires;
			}
			goto out;
		}
	}
	if (expires == 0)
		goto out;
	if (!a) {
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
		a->next = loc->buckets[aor_hash(aor)];
		loc->buckets[aor_hash(aor)] = a;
		loc->aors++;
	}
	if (a->count >= LOC_MAX_BINDINGS_PER_AOR) {
		rc = LOC_TOO_MANY;
		goto out;
	}
	if (a->count == a->cap) {
		unsigned cap = a->cap ? a->cap * 2 : 2;
		struct loc_binding *nb = realloc(a->b, cap * sizeof(*nb));
		if (!nb) {
			rc = LOC_STORE_FULL;
			aor_drop_if_empty(loc, aor_slot(loc, aor));
			goto out;
		}
		a->b = nb;
		a->cap = cap;
	}
	a->b[a->count] = *b;
	a->b[a->count].expires_at = now + expires;
	a->count++;
	loc->bindings++;
out:
	pthread_mutex_unlock(&loc->lock);
	return rc;
}

int location_remove_all(struct location *loc, struct str aor, struct str call_id, uint32_t cseq)
{
	int n = 0;
	pthread_mutex_lock(&loc->lock);
	struct loc_aor **pp = aor_slot(loc, aor);
	struct loc_aor *a = *pp;
	if (a) {
		for (unsigned i = 0; i < a->count; i++)
			if (strlen(a->b[i].call_id) == call_id.len &&
			    !memcmp(a->b[i].call_id, call_id.s, call_id.len) && cseq <= a->b[i].cseq) {
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
	pthread_mutex_lock(&loc->lock);
	for (unsigned bkt = 0; bkt < LOC_BUCKETS; bkt++)
		for (struct loc_aor *a = loc->buckets[bkt]; a; a = a->next)
			for (unsigned i = 0; i < a->count; i++)
				cb(a->aor, &a->b[i], arg);
	pthread_mutex_unlock(&loc->lock);
}

void location_counts(struct location *loc, unsigned *aors, unsigned *bindings)
{
	pthread_mutex_lock(&loc->lock);
	*aors = loc->aors;
	*bindings = loc->bindings;
	pthread_mutex_unlock(&loc->lock);
}
