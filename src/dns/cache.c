/* cache.c: answers in a hash table with an LRU list, kept for their clamped TTL (RFC 2308). */
#include "dns/cache.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/str.h"
#include "dns/dns.h"

struct cache_entry {
	struct cache_entry *hnext;	 /* hash chain */
	struct cache_entry *prev, *next; /* LRU list, most recent first */
	uint64_t expires_ms;
	uint32_t hash;
	uint16_t type;
	struct dns_rrset *set;
	char name[]; /* lower case, no trailing dot */
};

struct dns_cache {
	struct cache_entry **buckets;
	size_t nbuckets; /* a power of two */
	size_t count, max;
	uint32_t ttl_min, ttl_max;
	struct cache_entry *head, *tail;
};

int dns_cache_create(size_t max_entries, uint32_t ttl_min_s, uint32_t ttl_max_s,
		     struct dns_cache **out)
{
	if (max_entries == 0 || ttl_min_s > ttl_max_s || max_entries > (SIZE_MAX >> 4))
		return -EINVAL;
	struct dns_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	size_t nb = 16;
	while (nb < max_entries * 2)
		nb <<= 1;
	c->buckets = calloc(nb, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return -ENOMEM;
	}
	c->nbuckets = nb;
	c->max = max_entries;
	c->ttl_min = ttl_min_s;
	c->ttl_max = ttl_max_s;
	*out = c;
	return 0;
}

/* Lower-case `name` into key without a trailing dot; returns its length or
 * -1 when empty or too long. */
static long cache_key(const char *name, char *key, size_t size)
{
	size_t n = strlen(name);
	if (n && name[n - 1] == '.')
		n--;
	if (n == 0 || n >= size)
		return -1;
	for (size_t i = 0; i < n; i++)
		key[i] = ascii_lower(name[i]);
	key[n] = '\0';
	return (long)n;
}

static uint32_t cache_hash(const char *key, size_t n, uint16_t type)
{
	/* FNV-1a: the names come from DNS answers and our own queries, and
	 * the table is bounded, so a simple hash is enough. */
	uint32_t h = 2166136261u ^ type;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)key[i];
		h *= 16777619u;
	}
	return h;
}

static void lru_unlink(struct dns_cache *c, struct cache_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_front(struct dns_cache *c, struct cache_entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

static struct cache_entry **cache_slot(struct dns_cache *c, const char *key, uint32_t hash,
				       uint16_t type)
{
	struct cache_entry **pp = &c->buckets[hash & (c->nbuckets - 1)];
	for (; *pp; pp = &(*pp)->hnext) {
		struct cache_entry *e = *pp;
		if (e->hash == hash && e->type == type && strcmp(e->name, key) == 0)
			break;
	}
	return pp;
}

static void cache_drop(struct dns_cache *c, struct cache_entry *e)
{
	struct cache_entry **pp = cache_slot(c, e->name, e->hash, e->type);
	if (*pp == e)
		*pp = e->hnext;
	lru_unlink(c, e);
	free(e->set);
	free(e);
	c->count--;
}

int dns_cache_put(struct dns_cache *c, const char *name, uint16_t type, const struct dns_rrset *s,
		  uint64_t now_ms)
{
	char key[DNS_NAME_MAX + 1];
	long n = cache_key(name, key, sizeof(key));
	if (n < 0)
		return -EINVAL;
	struct dns_rrset *copy = dns_rrset_dup(s);
	if (!copy)
		return -ENOMEM;
	uint32_t ttl = s->ttl;
	if (ttl < c->ttl_min)
		ttl = c->ttl_min;
	if (ttl > c->ttl_max)
		ttl = c->ttl_max;
	uint64_t expires = now_ms + (uint64_t)ttl * 1000u;
	uint32_t hash = cache_hash(key, (size_t)n, type);

	struct cache_entry **pp = cache_slot(c, key, hash, type);
	struct cache_entry *e = *pp;
	if (e) {
		free(e->set);
		e->set = copy;
		e->expires_ms = expires;
		lru_unlink(c, e);
		lru_push_front(c, e);
		return 0;
	}
	e = malloc(sizeof(*e) + (size_t)n + 1);
	if (!e) {
		free(copy);
		return -ENOMEM;
	}
	memcpy(e->name, key, (size_t)n + 1);
	e->hash = hash;
	e->type = type;
	e->set = copy;
	e->expires_ms = expires;
	if (c->count >= c->max)
		cache_drop(c, c->tail);	     /* LRU; expired entries drift there too */
	pp = cache_slot(c, key, hash, type); /* the drop may have moved it */
	e->hnext = NULL;
	*pp = e;
	lru_push_front(c, e);
	c->count++;
	return 0;
}

int dns_cache_get(struct dns_cache *c, const char *name, uint16_t type, uint64_t now_ms,
		  struct dns_rrset **out)
{
	char key[DNS_NAME_MAX + 1];
	long n = cache_key(name, key, sizeof(key));
	if (n < 0)
		return -ENOENT;
	uint32_t hash = cache_hash(key, (size_t)n, type);
	struct cache_entry *e = *cache_slot(c, key, hash, type);
	if (!e)
		return -ENOENT;
	if (now_ms >= e->expires_ms) {
		cache_drop(c, e);
		return -ENOENT;
	}
	struct dns_rrset *copy = dns_rrset_dup(e->set);
	if (!copy)
		return -ENOMEM;
	lru_unlink(c, e);
	lru_push_front(c, e);
	*out = copy;
	return 0;
}

size_t dns_cache_count(const struct dns_cache *c)
{
	return c->count;
}

void dns_cache_flush(struct dns_cache *c)
{
	while (c->head)
		cache_drop(c, c->head);
}

void dns_cache_destroy(struct dns_cache *c)
{
	if (!c)
		return;
	dns_cache_flush(c);
	free(c->buckets);
	free(c);
}
