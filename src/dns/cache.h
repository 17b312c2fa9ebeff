/* cache.h: TTL cache of DNS answers keyed by (name, type), bounded, LRU (internal to src/dns). */
#ifndef SIPSD_DNS_CACHE_H
#define SIPSD_DNS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "dns/rr.h"

/*
 * Positive and negative answers (RFC 2308) are kept for their TTL, clamped
 * to [ttl_min_s, ttl_max_s]; the clock is passed in by the caller (`now_ms`,
 * monotonic), which is how tests move time. At most `max_entries` entries:
 * a put of a new key into a full cache drops the least recently used entry
 * (expired entries are never used, so they drift to that end). Names are compared ASCII
 * case-insensitively, ignoring a trailing dot. One thread.
 */
struct dns_cache;

/* Make a cache; max_entries >= 1, ttl_min_s <= ttl_max_s. Returns 0 and
 * *out (end it with dns_cache_destroy()), -EINVAL, or -ENOMEM. */
int dns_cache_create(size_t max_entries, uint32_t ttl_min_s, uint32_t ttl_max_s,
		     struct dns_cache **out);

/* Free the cache and every entry. NULL is a no-op. */
void dns_cache_destroy(struct dns_cache *c);

/* Keep a copy of `s` as the answer for (name, type) until now_ms plus its
 * clamped TTL, replacing an older one. Returns 0, -EINVAL for an empty or
 * overlong name, -ENOMEM (the cache is unchanged). */
int dns_cache_put(struct dns_cache *c, const char *name, uint16_t type, const struct dns_rrset *s,
		  uint64_t now_ms);

/* The live answer for (name, type): 0 and *out, a copy the caller frees;
 * -ENOENT when absent or expired (an expired entry is dropped); -ENOMEM. */
int dns_cache_get(struct dns_cache *c, const char *name, uint16_t type, uint64_t now_ms,
		  struct dns_rrset **out);

/* Entries held (expired ones included until they are looked at or
 * pushed out). */
size_t dns_cache_count(const struct dns_cache *c);

/* Drop every entry. */
void dns_cache_flush(struct dns_cache *c);

struct dns_resolver;

/* The cache of a resolver (defined in dns.c), for tests that seed answers
 * so that whole resolutions run without a network. */
struct dns_cache *dns_resolver_cache(struct dns_resolver *r);

#endif
