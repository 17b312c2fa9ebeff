/* cfg.c: parse and validate the configuration file. */
#include "cfg/cfg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/str.h"
#include "registrar/digest.h"

void cfg_init(struct cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->log_level = LOG_LVL_INFO;
	c->cert_warn_days = 30;
	c->policy = TLS_IDENTITY_POLICY_DEFAULT;
	c->limits.max_conns = 20000;
	c->limits.max_conns_per_ip = 256;
	c->limits.max_handshakes = 512;
	c->limits.handshake_timeout_ms = 5000;
	c->limits.idle_timeout_ms = 3600 * 1000;
	c->limits.message_timeout_ms = 10000;
	c->limits.max_handshakes_per_ip = 32;
	c->limits.max_write_queue = 1024 * 1024;
	c->min_expires = 60;
	c->max_expires = 3600;
	c->default_expires = 3600;
	c->dns_timeout_ms = 2000;
	c->dns_tries = 2;
	policy_cfg_default(&c->peer_policy);
	c->auth_register = true;
	c->auth_requests = true;
	c->nonce_lifetime = 300;
	c->auth_check_uri = true;
	location_cfg_default(&c->location);
}

enum section { SEC_GLOBAL, SEC_TLS, SEC_LIMITS, SEC_DOMAIN, SEC_LISTEN, SEC_ROUTE, SEC_REGISTRAR, SEC_DNS, SEC_POLICY, SEC_PEER, SEC_AUTH, SEC_LOCATION, SEC_CLUSTER, SEC_NODE };

struct parser {
	const char *path;
	int line;
	char *err;
	size_t err_size;
};

static int perror_at(struct parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int perror_at(struct parser *p, const char *fmt, ...)
{
	int n = snprintf(p->err, p->err_size, "%s:%d: ", p->path, p->line);
	if (n < 0 || (size_t)n >= p->err_size)
		return -EINVAL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->err_size - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

static int set_string(struct parser *p, char *dst, size_t size, const char *v)
{
	if (strlen(v) >= size)
		return perror_at(p, "value too long (at most %zu characters)", size - 1);
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static int set_bool(struct parser *p, bool *dst, const char *v)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on"))
		*dst = true;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off"))
		*dst = false;
	else
		return perror_at(p, "expected yes or no, got '%s'", v);
	return 0;
}

static int set_uint(struct parser *p, unsigned *dst, const char *v, unsigned min, unsigned max)
{
	uint64_t x;
	if (str_to_u64(str_from_cstr(v), max, &x) < 0 || x < min)
		return perror_at(p, "expected a whole number from %u to %u, got '%s'", min, max, v);
	*dst = (unsigned)x;
	return 0;
}

static int set_file(struct parser *p, char *dst, size_t size, const char *v)
{
	int rc = set_string(p, dst, size, v);
	if (rc < 0)
		return rc;
	if (access(v, R_OK) != 0)
		return perror_at(p, "cannot read '%s': %s", v, strerror(errno));
	return 0;
}

static bool domain_name_valid(const char *d)
{
	size_t n = strlen(d);
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = d[i];
		if (!(ascii_is_alpha(ch) || ascii_is_digit(ch) || ch == '-' || ch == '.'))
			return false;
	}
	return true;
}

static int kv_global(struct parser *p, struct cfg *c, const char *k, const char *v)
{
	if (!strcmp(k, "workers"))
		return set_uint(p, &c->workers, v, 0, 64);
	if (!strcmp(k, "user"))
		return set_string(p, c->user, sizeof(c->user), v);
	if (!strcmp(k, "log_target")) {
		if (!strcmp(v, "stderr"))
			c->log_syslog = false;
		else if (!strcmp(v, "syslog"))
			c->log_syslog = true;
		else
			return perror_at(p, "log_target must be stderr or syslog");
		return 0;
	}
	if (!strcmp(k, "control"))
		return set_string(p, c->control, sizeof(c->control), v);
	if (!strcmp(k, "metrics"))
		return set_string(p, c->metrics, sizeof(c->metrics), v);
	if (!strcmp(k, "cert_warn_days"))
		return set_uint(p, &c->cert_warn_days, v, 0, 3650);
	if (!strcmp(k, "log_level")) {
		static const char *names[] = {"error", "warn", "info", "debug"};
		for (int i = 0; i < 4; i++)
			if (!strcmp(v, names[i])) {
				c->log_level = i;
				return 0;
			}
		return perror_at(p, "log_level must be error, warn, info or debug");
	}
	return perror_at(p, "unknown key '%s' in the global section", k);
}

static int kv_tls(struct parser *p, struct cfg *c, const char *k, const char *v)
{
	if (!strcmp(k, "ca_file"))
		return set_file(p, c->ca_file, sizeof(c->ca_file), v);
	if (!strcmp(k, "ca_dir"))
		return set_file(p, c->ca_dir, sizeof(c->ca_dir), v);
	if (!strcmp(k, "crl_file"))
		return set_file(p, c->crl_file, sizeof(c->crl_file), v);
	if (!strcmp(k, "legacy_cn"))
		return set_bool(p, &c->policy.legacy_cn, v);
	if (!strcmp(k, "eku")) {
		if (!strcmp(v, "lenient"))
			c->policy.eku = TLS_EKU_LENIENT;
		else if (!strcmp(v, "strict"))
			c->policy.eku = TLS_EKU_STRICT;
		else
			return perror_at(p, "eku must be lenient or strict");
		return 0;
	}
	return perror_at(p, "unknown key '%s' in [tls]", k);
}

static int kv_limits(struct parser *p, struct cfg *c, const char *k, const char *v)
{
	struct cfg_limits *l = &c->limits;
	if (!strcmp(k, "max_conns"))
		return set_uint(p, &l->max_conns, v, 1, 1000000);
	if (!strcmp(k, "max_conns_per_ip"))
		return set_uint(p, &l->max_conns_per_ip, v, 1, 1000000);
	if (!strcmp(k, "max_handshakes"))
		return set_uint(p, &l->max_handshakes, v, 1, 100000);
	if (!strcmp(k, "handshake_timeout_ms"))
		return set_uint(p, &l->handshake_timeout_ms, v, 100, 600000);
	if (!strcmp(k, "idle_timeout_ms"))
		return set_uint(p, &l->idle_timeout_ms, v, 1000, 86400000);
	if (!strcmp(k, "message_timeout_ms"))
		return set_uint(p, &l->message_timeout_ms, v, 100, 600000);
	if (!strcmp(k, "max_handshakes_per_ip"))
		return set_uint(p, &l->max_handshakes_per_ip, v, 1, 100000);
	if (!strcmp(k, "max_write_queue"))
		return set_uint(p, &l->max_write_queue, v, 65536, 1u << 30);
	return perror_at(p, "unknown key '%s' in [limits]", k);
}

static int kv_domain(struct parser *p, struct cfg_domain *d, const char *k, const char *v)
{
	if (!strcmp(k, "cert"))
		return set_file(p, d->cert, sizeof(d->cert), v);
	if (!strcmp(k, "key"))
		return set_file(p, d->key, sizeof(d->key), v);
	if (!strcmp(k, "chain"))
		return set_file(p, d->chain, sizeof(d->chain), v);
	return perror_at(p, "unknown key '%s' in [domain]", k);
}

static int kv_listen(struct parser *p, struct cfg_listener *l, const char *k, const char *v)
{
	if (!strcmp(k, "domain")) {
		if (!domain_name_valid(v))
			return perror_at(p, "bad domain name '%s'", v);
		return set_string(p, l->domain, sizeof(l->domain), v);
	}
	if (!strcmp(k, "require_client_cert"))
		return set_bool(p, &l->require_client_cert, v);
	return perror_at(p, "unknown key '%s' in [listen]", k);
}

static int parse_proto(const char *w, enum cfg_proto *out)
{
	if (!strcmp(w, "udp"))
		*out = CFG_PROTO_UDP;
	else if (!strcmp(w, "tcp"))
		*out = CFG_PROTO_TCP;
	else if (!strcmp(w, "tls"))
		*out = CFG_PROTO_TLS;
	else
		return -EINVAL;
	return 0;
}

static int kv_route(struct parser *p, struct cfg_route *r, const char *k, const char *v)
{
	if (!strcmp(k, "next_hop")) {
		/* "tls 127.0.0.2:5061" */
		char buf[96];
		if (strlen(v) >= sizeof(buf))
			return perror_at(p, "next_hop too long");
		memcpy(buf, v, strlen(v) + 1);
		char *sp = strchr(buf, ' ');
		if (!sp)
			return perror_at(p, "next_hop is 'udp|tcp|tls ADDRESS:PORT'");
		*sp = '\0';
		if (parse_proto(buf, &r->proto) < 0)
			return perror_at(p, "next_hop transport must be udp, tcp or tls");
		return set_string(p, r->addr, sizeof(r->addr), trim(sp + 1));
	}
	return perror_at(p, "unknown key '%s' in [route]", k);
}

static int kv_registrar(struct parser *p, struct cfg *c, const char *k, const char *v)
{
	if (!strcmp(k, "min_expires"))
		return set_uint(p, &c->min_expires, v, 1, 86400);
	if (!strcmp(k, "max_expires"))
		return set_uint(p, &c->max_expires, v, 1, 86400 * 7);
	if (!strcmp(k, "default_expires"))
		return set_uint(p, &c->default_expires, v, 1, 86400 * 7);
	return perror_at(p, "unknown key '%s' in [registrar]", k);
}

static int kv_location(struct parser *p, struct cfg *c, const char *k, const char *v)
{
	struct location_cfg *l = &c->location;
	if (!strcmp(k, "store")) {
		if (!strcmp(v, "memory"))
			l->backend = LOC_BACKEND_MEMORY;
		else if (!strcmp(v, "redis"))
			l->backend = LOC_BACKEND_REDIS;
		else
			return perror_at(p, "store must be memory or redis");
		return 0;
	}
	if (!strcmp(k, "snapshot"))
		return set_string(p, l->snapshot, sizeof(l->snapshot), v);
	if (!strcmp(k, "snapshot_interval"))
		return set_uint(p, &l->snapshot_interval_s, v, 1, 86400);
	if (!strcmp(k, "redis")) {
		/* "HOST:PORT" or "HOST" (port 6379) */
		const char *colon = strrchr(v, ':');
		size_t hl = colon ? (size_t)(colon - v) : strlen(v);
		if (hl == 0 || hl >= sizeof(l->redis_host))
			return perror_at(p, "redis is HOST:PORT");
		memcpy(l->redis_host, v, hl);
		l->redis_host[hl] = '\0';
		l->redis_port = 6379;
		return colon ? set_uint(p, &l->redis_port, colon + 1, 1, 65535) : 0;
	}
	if (!strcmp(k, "redis_prefix")) {
		for (const char *q = v; *q; q++)
			if (*q == ' ' || *q == '\t' || (unsigned char)*q < 0x21)
				return perror_at(p, "redis_prefix may not contain spaces");
		return set_string(p, l->redis_prefix, sizeof(l->redis_prefix), v);
	}
	if (!strcmp(k, "redis_timeout_ms"))
		return set_uint(p, &l->redis_timeout_ms, v, 10, 10000);
	if (!strcmp(k, "redis_password_file"))
		return set_file(p, l->redis_password_file, sizeof(l->redis_password_file), v);
	return perror_at(p, "unknown key '%s' in [location]", k);
}

static int kv_cluster(struct parser *p, struct cfg *c, const char *k, const char *v)
{
	if (!strcmp(k, "node"))
		return set_uint(p, &c->location.node, v, 1, 255);
	if (!strcmp(k, "secret_file"))
		return set_file(p, c->cluster_secret_file, sizeof(c->cluster_secret_file), v);
	if (!strcmp(k, "heartbeat_ms"))
		return set_uint(p, &c->location.heartbeat_ms, v, 100, 60000);
	if (!strcmp(k, "node_timeout_ms"))
		return set_uint(p, &c->location.node_timeout_ms, v, 300, 600000);
	return perror_at(p, "unknown key '%s' in [cluster]", k);
}

static int kv_node(struct parser *p, struct cfg_node *n, const char *k, const char *v)
{
	if (!strcmp(k, "address"))
		return set_string(p, n->addr, sizeof(n->addr), v);
	return perror_at(p, "unknown key '%s' in [node]", k);
}

static int kv_dns(struct parser *p, struct cfg *c, const char *k, const char *v)
{
	if (!strcmp(k, "servers"))
		return set_string(p, c->dns_servers, sizeof(c->dns_servers), v);
	if (!strcmp(k, "timeout_ms"))
		return set_uint(p, &c->dns_timeout_ms, v, 10, 60000);
	if (!strcmp(k, "tries"))
		return set_uint(p, &c->dns_tries, v, 1, 10);
	if (!strcmp(k, "sip_prefer_tls"))
		return set_bool(p, &c->sip_prefer_tls, v);
	return perror_at(p, "unknown key '%s' in [dns]", k);
}

static int kv_policy(struct parser *p, struct cfg *c, const char *k, const char *v)
{
	if (!strcmp(k, "peer_from")) {
		if (!strcmp(v, "reject"))
			c->peer_policy.peer_from = POLICY_PEER_FROM_REJECT;
		else if (!strcmp(v, "log"))
			c->peer_policy.peer_from = POLICY_PEER_FROM_LOG;
		else if (!strcmp(v, "off"))
			c->peer_policy.peer_from = POLICY_PEER_FROM_OFF;
		else
			return perror_at(p, "peer_from must be reject, log or off");
		return 0;
	}
	if (!strcmp(k, "via_trail")) {
		if (!strcmp(v, "off"))
			c->peer_policy.via_trail = POLICY_VIA_TRAIL_OFF;
		else if (!strcmp(v, "tag"))
			c->peer_policy.via_trail = POLICY_VIA_TRAIL_TAG;
		else if (!strcmp(v, "reject"))
			c->peer_policy.via_trail = POLICY_VIA_TRAIL_REJECT;
		else
			return perror_at(p, "via_trail must be off, tag or reject");
		return 0;
	}
	return perror_at(p, "unknown key '%s' in [policy]", k);
}

static int kv_peer(struct parser *p, struct policy_peer *peer, const char *k, const char *v)
{
	if (!strcmp(k, "may_send_from")) {
		/* A comma-separated list of domains. */
		char buf[1024];
		if (strlen(v) >= sizeof(buf))
			return perror_at(p, "may_send_from too long");
		memcpy(buf, v, strlen(v) + 1);
		char *item = buf;
		while (item) {
			char *comma = strchr(item, ',');
			if (comma)
				*comma = '\0';
			char *d = trim(item);
			if (*d) {
				if (!domain_name_valid(d))
					return perror_at(p, "bad domain name '%s'", d);
				if (peer->nfrom >= POLICY_MAX_AUTHZ)
					return perror_at(p, "too many domains (at most %d)", POLICY_MAX_AUTHZ);
				set_string(p, peer->may_send_from[peer->nfrom++], sizeof(peer->may_send_from[0]), d);
			}
			item = comma ? comma + 1 : NULL;
		}
		return 0;
	}
	if (!strcmp(k, "sip_over_tls")) {
		if (!strcmp(v, "prefer"))
			peer->sip_over_tls = POLICY_TLS_PREFER;
		else if (!strcmp(v, "require"))
			peer->sip_over_tls = POLICY_TLS_REQUIRE;
		else if (!strcmp(v, "off"))
			peer->sip_over_tls = POLICY_TLS_OFF;
		else
			return perror_at(p, "sip_over_tls must be prefer, require or off");
		return 0;
	}
	return perror_at(p, "unknown key '%s' in [peer]", k);
}

static int kv_auth(struct parser *p, struct cfg *c, const char *k, const char *v)
{
	if (!strcmp(k, "credentials"))
		return set_file(p, c->credentials, sizeof(c->credentials), v);
	if (!strcmp(k, "register"))
		return set_bool(p, &c->auth_register, v);
	if (!strcmp(k, "requests"))
		return set_bool(p, &c->auth_requests, v);
	if (!strcmp(k, "nonce_lifetime"))
		return set_uint(p, &c->nonce_lifetime, v, 10, 86400);
	if (!strcmp(k, "check_uri"))
		return set_bool(p, &c->auth_check_uri, v);
	if (!strcmp(k, "algorithms")) {
		/* "sha-256, md5" in any order; the challenge order is fixed
		 * (RFC 8760 §2.4: SHA-256 first). */
		unsigned bits = 0;
		if (strstr(v, "sha-256") || strstr(v, "SHA-256"))
			bits |= DIGEST_ALG_BIT(DIGEST_ALG_SHA256);
		if (strstr(v, "md5") || strstr(v, "MD5"))
			bits |= DIGEST_ALG_BIT(DIGEST_ALG_MD5);
		if (!bits)
			return perror_at(p, "algorithms takes sha-256 and/or md5");
		c->auth_algorithms = bits;
		return 0;
	}
	return perror_at(p, "unknown key '%s' in [auth]", k);
}

/* "[name arg1 arg2]" into words. */
static int split_section(char *s, char **words, int max)
{
	int n = 0;
	while (*s) {
		while (*s == ' ' || *s == '\t')
			*s++ = '\0';
		if (!*s)
			break;
		if (n == max)
			return max + 1;
		words[n++] = s;
		while (*s && *s != ' ' && *s != '\t')
			s++;
	}
	return n;
}

int cfg_load(const char *path, struct cfg *c, char *err, size_t err_size)
{
	struct parser p = {path, 0, err, err_size};
	cfg_init(c);
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, err_size, "%s: %s", path, strerror(errno));
		return -errno;
	}
	char buf[1024];
	enum section sec = SEC_GLOBAL;
	int rc = 0;
	while (fgets(buf, sizeof(buf), f)) {
		p.line++;
		if (!strchr(buf, '\n') && !feof(f)) {
			rc = perror_at(&p, "line too long");
			break;
		}
		char *hash = strchr(buf, '#');
		if (hash)
			*hash = '\0';
		char *s = trim(buf);
		if (!*s)
			continue;
		if (*s == '[') {
			/* The last ']' closes: an IPv6 address has its own. */
			char *close = strrchr(s, ']');
			if (!close || close[1]) {
				rc = perror_at(&p, "bad section header");
				break;
			}
			*close = '\0';
			char *w[4];
			int nw = split_section(s + 1, w, 4);
			if (nw == 1 && !strcmp(w[0], "tls")) {
				sec = SEC_TLS;
			} else if (nw == 1 && !strcmp(w[0], "limits")) {
				sec = SEC_LIMITS;
			} else if (nw == 1 && !strcmp(w[0], "registrar")) {
				sec = SEC_REGISTRAR;
			} else if (nw == 1 && !strcmp(w[0], "dns")) {
				sec = SEC_DNS;
			} else if (nw == 1 && !strcmp(w[0], "policy")) {
				sec = SEC_POLICY;
			} else if (nw == 1 && !strcmp(w[0], "auth")) {
				sec = SEC_AUTH;
			} else if (nw == 1 && !strcmp(w[0], "location")) {
				sec = SEC_LOCATION;
			} else if (nw == 1 && !strcmp(w[0], "cluster")) {
				c->cluster_line = p.line;
				sec = SEC_CLUSTER;
			} else if (nw == 2 && !strcmp(w[0], "node")) {
				if (c->nnodes >= CFG_MAX_NODES) {
					rc = perror_at(&p, "too many nodes (at most %d)", CFG_MAX_NODES);
					break;
				}
				struct cfg_node *n = &c->nodes[c->nnodes];
				if (set_uint(&p, &n->number, w[1], 1, 255) < 0) {
					rc = -EINVAL;
					break;
				}
				for (unsigned i = 0; i < c->nnodes; i++)
					if (c->nodes[i].number == n->number) {
						rc = perror_at(&p, "node %u listed twice", n->number);
						break;
					}
				if (rc < 0)
					break;
				n->line = p.line;
				c->nnodes++;
				sec = SEC_NODE;
			} else if (nw == 2 && !strcmp(w[0], "peer")) {
				if (c->peer_policy.npeers >= POLICY_MAX_PEERS) {
					rc = perror_at(&p, "too many peers (at most %d)", POLICY_MAX_PEERS);
					break;
				}
				if (!domain_name_valid(w[1])) {
					rc = perror_at(&p, "bad domain name '%s'", w[1]);
					break;
				}
				struct policy_peer *peer = &c->peer_policy.peers[c->peer_policy.npeers++];
				set_string(&p, peer->domain, sizeof(peer->domain), w[1]);
				sec = SEC_PEER;
			} else if (nw == 2 && !strcmp(w[0], "route")) {
				if (c->nroutes >= CFG_MAX_DOMAINS) {
					rc = perror_at(&p, "too many routes (at most %d)", CFG_MAX_DOMAINS);
					break;
				}
				if (!domain_name_valid(w[1])) {
					rc = perror_at(&p, "bad domain name '%s'", w[1]);
					break;
				}
				struct cfg_route *r = &c->routes[c->nroutes++];
				set_string(&p, r->domain, sizeof(r->domain), w[1]);
				r->line = p.line;
				sec = SEC_ROUTE;
			} else if (nw == 2 && !strcmp(w[0], "domain")) {
				if (c->ndomains >= CFG_MAX_DOMAINS) {
					rc = perror_at(&p, "too many domains (at most %d)", CFG_MAX_DOMAINS);
					break;
				}
				if (!domain_name_valid(w[1])) {
					rc = perror_at(&p, "bad domain name '%s'", w[1]);
					break;
				}
				struct cfg_domain *d = &c->domains[c->ndomains++];
				set_string(&p, d->name, sizeof(d->name), w[1]);
				for (char *q = d->name; *q; q++)
					*q = ascii_lower(*q);
				d->line = p.line;
				sec = SEC_DOMAIN;
			} else if (nw == 3 && !strcmp(w[0], "listen")) {
				if (c->nlisteners >= CFG_MAX_LISTENERS) {
					rc = perror_at(&p, "too many listeners (at most %d)", CFG_MAX_LISTENERS);
					break;
				}
				struct cfg_listener *l = &c->listeners[c->nlisteners];
				if (!strcmp(w[1], "udp"))
					l->proto = CFG_PROTO_UDP;
				else if (!strcmp(w[1], "tcp"))
					l->proto = CFG_PROTO_TCP;
				else if (!strcmp(w[1], "tls"))
					l->proto = CFG_PROTO_TLS;
				else {
					rc = perror_at(&p, "listener transport must be udp, tcp or tls");
					break;
				}
				if (set_string(&p, l->addr, sizeof(l->addr), w[2]) < 0) {
					rc = -EINVAL;
					break;
				}
				l->line = p.line;
				c->nlisteners++;
				sec = SEC_LISTEN;
			} else {
				rc = perror_at(&p, "unknown section [%s]", s + 1);
				break;
			}
			continue;
		}
		char *eq = strchr(s, '=');
		if (!eq) {
			rc = perror_at(&p, "expected 'key = value'");
			break;
		}
		*eq = '\0';
		char *k = trim(s), *v = trim(eq + 1);
		if (!*k || !*v) {
			rc = perror_at(&p, "expected 'key = value'");
			break;
		}
		switch (sec) {
		case SEC_GLOBAL: rc = kv_global(&p, c, k, v); break;
		case SEC_TLS: rc = kv_tls(&p, c, k, v); break;
		case SEC_LIMITS: rc = kv_limits(&p, c, k, v); break;
		case SEC_DOMAIN: rc = kv_domain(&p, &c->domains[c->ndomains - 1], k, v); break;
		case SEC_LISTEN: rc = kv_listen(&p, &c->listeners[c->nlisteners - 1], k, v); break;
		case SEC_ROUTE: rc = kv_route(&p, &c->routes[c->nroutes - 1], k, v); break;
		case SEC_REGISTRAR: rc = kv_registrar(&p, c, k, v); break;
		case SEC_DNS: rc = kv_dns(&p, c, k, v); break;
		case SEC_POLICY: rc = kv_policy(&p, c, k, v); break;
		case SEC_AUTH: rc = kv_auth(&p, c, k, v); break;
		case SEC_LOCATION: rc = kv_location(&p, c, k, v); break;
		case SEC_CLUSTER: rc = kv_cluster(&p, c, k, v); break;
		case SEC_NODE: rc = kv_node(&p, &c->nodes[c->nnodes - 1], k, v); break;
		case SEC_PEER:
			rc = kv_peer(&p, &c->peer_policy.peers[c->peer_policy.npeers - 1], k, v);
			break;
		}
		if (rc < 0)
			break;
	}
	fclose(f);
	if (rc < 0)
		return rc;
	/* Whole-file rules. */
	for (unsigned i = 0; i < c->ndomains; i++) {
		p.line = c->domains[i].line;
		if (!c->domains[i].cert[0])
			return perror_at(&p, "domain %s has no cert", c->domains[i].name);
	}
	for (unsigned i = 0; i < c->nlisteners; i++) {
		struct cfg_listener *l = &c->listeners[i];
		p.line = l->line;
		if (l->proto != CFG_PROTO_TLS)
			continue;
		if (c->ndomains == 0)
			return perror_at(&p, "a tls listener needs at least one [domain]");
		if (l->domain[0]) {
			bool found = false;
			for (unsigned j = 0; j < c->ndomains; j++)
				found |= str_case_eq_cstr(str_from_cstr(c->domains[j].name), l->domain);
			if (!found)
				return perror_at(&p, "listener domain %s is not a configured [domain]",
						 l->domain);
		}
	}
	for (unsigned i = 0; i < c->nroutes; i++) {
		p.line = c->routes[i].line;
		if (!c->routes[i].addr[0])
			return perror_at(&p, "route %s has no next_hop", c->routes[i].domain);
	}
	for (unsigned i = 0; i < c->nnodes; i++) {
		p.line = c->nodes[i].line;
		if (!c->cluster_line)
			return perror_at(&p, "[node %u] needs a [cluster] section", c->nodes[i].number);
		if (!c->nodes[i].addr[0])
			return perror_at(&p, "node %u has no address", c->nodes[i].number);
		if (c->nodes[i].number == c->location.node)
			return perror_at(&p, "node %u is this node ([cluster] node)", c->nodes[i].number);
	}
	if (c->cluster_line) {
		p.line = c->cluster_line;
		if (!c->location.node)
			return perror_at(&p, "[cluster] needs node = N");
		if (!c->cluster_secret_file[0])
			return perror_at(&p, "[cluster] needs secret_file (the flow-token key every node shares)");
		if (c->location.backend != LOC_BACKEND_REDIS)
			return perror_at(&p, "[cluster] needs [location] store = redis");
		if (c->ndomains == 0)
			return perror_at(&p, "[cluster] needs a [domain]: nodes prove it to each other");
	}
	if (c->min_expires > c->max_expires) {
		p.line = 0;
		return perror_at(&p, "min_expires is above max_expires");
	}
	if (c->nlisteners == 0) {
		p.line = 0;
		return perror_at(&p, "no [listen ...] section");
	}
	return 0;
}
