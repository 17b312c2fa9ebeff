/* dns.h: asynchronous RFC 3263 resolution of SIP URIs on c-ares in the epoll loop, TTL cache. */
#ifndef SIPSD_DNS_DNS_H
#define SIPSD_DNS_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "loop/loop.h"
#include "sip/uri.h"

/*
 * One resolver per worker loop: every function here must be called on the
 * thread that runs the loop the resolver was made for (not thread-safe
 * across loops). See docs/dns.md.
 *
 * RFC 3263 §4 in one paragraph: a numeric host gives one target; a host
 * name with a port (or a transport parameter) skips NAPTR; otherwise NAPTR
 * (§4.1), then SRV (RFC 2782: priority, then weighted random), then A/AAAA.
 * `maddr` is ignored (a routing hint; RFC 5922 §7.3 and spec rule 5 make
 * the URI host the name to verify). The result is the failover order of
 * RFC 3263 §4.3: the caller tries the next target on a transport error or
 * a 503.
 */

/* Longest host name we resolve or report (RFC 1035 §2.3.4, textual form
 * without the trailing dot). */
#define DNS_NAME_MAX 253
/* Targets in one result (the failover list is cut here). */
#define DNS_MAX_TARGETS 16

enum dns_transport {
	DNS_TRANSPORT_NONE = 0,
	DNS_TRANSPORT_UDP,
	DNS_TRANSPORT_TCP,
	DNS_TRANSPORT_TLS,
};

/* Address families to ask for (A and/or AAAA). */
enum dns_family { DNS_FAMILY_ANY = 0, DNS_FAMILY_INET, DNS_FAMILY_INET6 };

/* Resolver settings; every zero field takes the default shown. The strings
 * are copied by dns_resolver_create(). */
struct dns_config {
	/* Servers as "IP:PORT[,IP:PORT...]" ("[v6]:PORT" for IPv6; the port
	 * may be omitted for 53). NULL or "" uses /etc/resolv.conf. */
	const char *servers;
	/* Timeout of the first try per server; c-ares doubles it on each
	 * later round (default 2000 ms). */
	unsigned timeout_ms;
	/* Tries per server (default 2). One lookup then fails after at most
	 * timeout_ms * (2^tries - 1) with one server. */
	unsigned tries;
	/* Cached (name, type) answers, positive and negative (default 4096).
	 * The least recently used entry goes when the cache is full. */
	unsigned cache_size;
	/* TTL clamp for the cache, seconds (defaults 1 and 3600). */
	uint32_t ttl_min_s;
	uint32_t ttl_max_s;
	/* Lifetime of a negative answer (NXDOMAIN, NODATA) that carries no
	 * SOA to take it from (RFC 2308 §5), seconds (default 30). */
	uint32_t neg_ttl_s;
	/* Which address records to ask for; IPv4 targets come first. */
	enum dns_family family;
	/* For sip: URIs whose transport DNS chooses (no port, no transport
	 * parameter): put TLS targets first (best-effort TLS, spec rule 14).
	 * Never used for sips:, never changes the scheme. */
	bool sip_prefer_tls;
};

/* One place to send the request to. */
struct dns_target {
	enum dns_transport transport;
	socklen_t addrlen;
	struct sockaddr_storage addr; /* address and port, ready for connect() */
	uint16_t priority;	      /* SRV priority (0 without SRV) */
	uint16_t weight;	      /* SRV weight (0 without SRV) */
	/* The SRV target, or the resolved name without SRV: for logs only,
	 * never for certificate checks. */
	char host[DNS_NAME_MAX + 1];
	/* The host of the URI that was resolved (the AUS, RFC 5922 §7.3),
	 * without brackets or trailing dot: the name the TLS layer must
	 * verify and send as SNI (spec rules 5 and 6), the same in every
	 * target of a result. */
	char domain[DNS_NAME_MAX + 1];
};

/* A result: targets in failover order (RFC 3263 §4.3). */
struct dns_targets {
	size_t n;
	struct dns_target t[DNS_MAX_TARGETS];
};

struct dns_resolver;
struct dns_query;

/* Completion of dns_resolve_uri(): status 0 with targets->n >= 1, or a
 * negative errno with targets->n == 0:
 *   -ENOENT        the name does not exist or has no usable records;
 *   -ETIMEDOUT     the DNS server did not answer;
 *   -ECONNREFUSED  the DNS server refused the connection (port closed);
 *   -EIO           SERVFAIL, REFUSED or a malformed answer;
 *   -ENOMEM        out of memory.
 * `targets` is valid only during the call: copy what you keep. Always
 * called from the loop's deferred phase, never from inside
 * dns_resolve_uri(); the query is freed when the callback returns. */
typedef void (*dns_result_cb)(int status, const struct dns_targets *targets, void *arg);

/* Random numbers for the RFC 2782 weighted selection. */
typedef uint32_t (*dns_rng_fn)(void *arg);
/* Monotonic milliseconds for cache expiry. */
typedef uint64_t (*dns_clock_fn)(void *arg);

/* Make a resolver for `loop` (the loop must outlive it) with `cfg` (NULL:
 * every default) and store it in *out; the caller ends it with
 * dns_resolver_destroy(). Initialises c-ares once per process. Returns 0,
 * -EINVAL for a bad server list, -ENOMEM, or -EIO when c-ares could not
 * start. */
int dns_resolver_create(struct loop *loop, const struct dns_config *cfg, struct dns_resolver **out);

/* End a resolver: pending queries are cancelled (their callbacks are never
 * called), c-ares sockets leave the loop. NULL is a no-op. Safe from any
 * callback of the loop, including a dns_result_cb. */
void dns_resolver_destroy(struct dns_resolver *r);

/* Resolve `uri` (sip: or sips:, parsed by sip_uri_parse(); it is not kept
 * after the call) by RFC 3263 §4 and call cb(status, targets, arg) once,
 * later. When `q` is not NULL it receives a handle for dns_query_cancel(),
 * valid until the callback has started or the query is cancelled.
 * Answers in the cache make no network traffic (the callback still comes
 * from the deferred phase). Returns 0 (the callback will come unless the
 * query is cancelled), or with no callback ever: -EINVAL for a non-SIP URI
 * or a bad host, -EPROTONOSUPPORT for a transport we do not speak (sctp,
 * or udp on a sips: URI), -ENOMEM. */
int dns_resolve_uri(struct dns_resolver *r, const struct sip_uri *uri, dns_result_cb cb, void *arg,
		    struct dns_query **q);

/* Cancel a query: its callback will not be called and the handle is
 * invalid afterwards. A no-op for NULL and from inside the query's own
 * callback. Lookups already sent still complete into the cache. */
void dns_query_cancel(struct dns_query *q);

/* Counters of one resolver (read on its thread). */
struct dns_stats {
	uint64_t resolutions;	/* dns_resolve_uri() calls accepted */
	uint64_t failures;	/* resolutions completed with an error */
	uint64_t cache_hits;	/* lookups answered by the cache */
	uint64_t cache_misses;	/* lookups that went to the network */
	uint64_t lookup_errors; /* network lookups that failed (timeout, SERVFAIL...) */
	size_t cache_entries;
	size_t pending; /* queries not yet completed */
};

void dns_resolver_stats(const struct dns_resolver *r, struct dns_stats *out);

/* Drop every cached answer. */
void dns_resolver_flush(struct dns_resolver *r);

/* Testing: replace the random source (default: xorshift seeded from
 * getrandom()) or the cache clock (default: loop_now_ms()). NULL restores
 * the default. */
void dns_resolver_set_rng(struct dns_resolver *r, dns_rng_fn fn, void *arg);
void dns_resolver_set_clock(struct dns_resolver *r, dns_clock_fn fn, void *arg);

/* "udp", "tcp", "tls" ("none" otherwise). */
const char *dns_transport_name(enum dns_transport tp);

/* 5061 for TLS, 5060 otherwise (RFC 3261 §19.1.2). */
uint16_t dns_transport_default_port(enum dns_transport tp);

/* Write the targets for a log line into buf (size > 0), as
 * "tls:192.0.2.1:5061/sip1.example.net/p10w20,udp:[2001:db8::1]:5060/...",
 * "-" when empty, cut with "..." when it does not fit. Returns buf. */
const char *dns_targets_format(const struct dns_targets *t, char *buf, size_t size);

#endif
