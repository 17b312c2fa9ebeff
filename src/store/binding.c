/* binding.c: binding-set rules and the text form of a binding. */
#include "store/binding.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool loc_binding_same(const struct loc_binding *x, const struct loc_binding *y)
{
	if (x->instance[0] && y->instance[0] && x->reg_id && y->reg_id)
		return !strcmp(x->instance, y->instance) && x->reg_id == y->reg_id;
	return !strcmp(x->contact, y->contact);
}

static void remove_at(struct loc_binding *arr, unsigned *count, unsigned i)
{
	arr[i] = arr[*count - 1];
	(*count)--;
}

enum loc_update_result loc_bindings_apply(struct loc_binding *arr, unsigned *count, unsigned cap,
					  const struct loc_binding *b, uint32_t expires,
					  int64_t now)
{
	/* Expired bindings do not count against the limit. */
	for (unsigned i = *count; i-- > 0;)
		if (arr[i].expires_at <= now)
			remove_at(arr, count, i);
	for (unsigned i = 0; i < *count; i++) {
		if (!loc_binding_same(&arr[i], b))
			continue;
		if (!strcmp(arr[i].call_id, b->call_id) && b->cseq <= arr[i].cseq)
			return LOC_OUT_OF_ORDER;
		if (expires == 0) {
			remove_at(arr, count, i);
		} else {
			arr[i] = *b;
			arr[i].expires_at = now + expires;
		}
		return LOC_UPDATED;
	}
	if (expires == 0)
		return LOC_UPDATED;
	if (*count >= LOC_MAX_BINDINGS_PER_AOR || *count >= cap)
		return LOC_TOO_MANY;
	arr[*count] = *b;
	arr[*count].expires_at = now + expires;
	(*count)++;
	return LOC_UPDATED;
}

bool loc_bindings_may_remove_all(const struct loc_binding *arr, unsigned count,
				 const char *call_id, size_t call_id_len, uint32_t cseq)
{
	for (unsigned i = 0; i < count; i++)
		if (strlen(arr[i].call_id) == call_id_len && !memcmp(arr[i].call_id, call_id, call_id_len) &&
		    cseq <= arr[i].cseq)
			return false;
	return true;
}

static int cmp_q(const void *x, const void *y)
{
	const struct loc_binding *a = x, *b = y;
	return a->q1000 < b->q1000 ? 1 : a->q1000 > b->q1000 ? -1 : 0;
}

void loc_bindings_sort(struct loc_binding *arr, unsigned count)
{
	qsort(arr, count, sizeof(*arr), cmp_q);
}

int loc_binding_key(const struct loc_binding *b, char *out, size_t cap)
{
	int n = b->instance[0] && b->reg_id ? snprintf(out, cap, "i:%s:%u", b->instance, b->reg_id)
					    : snprintf(out, cap, "c:%s", b->contact);
	return n < 0 || (size_t)n >= cap ? -EMSGSIZE : n;
}

int loc_flow_owner(const struct loc_flow *f, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%u:%u:%" PRIu64, f->node, f->worker, f->conn_id);
	return n < 0 || (size_t)n >= cap ? -EMSGSIZE : n;
}

/* ---- text form ---- */

struct writer {
	char *p;
	size_t left;
	bool overflow;
};

static void put_raw(struct writer *w, const char *s, size_t n)
{
	if (w->overflow || n >= w->left) {
		w->overflow = true;
		return;
	}
	memcpy(w->p, s, n);
	w->p += n;
	w->left -= n;
	*w->p = '\0';
}

int loc_netstring_put(char *out, size_t cap, const char *d, size_t n)
{
	int k = snprintf(out, cap, "%zu:", n);
	if (k < 0 || (size_t)k + n + 1 >= cap)
		return -EMSGSIZE;
	memcpy(out + k, d, n);
	out[(size_t)k + n] = ',';
	out[(size_t)k + n + 1] = '\0';
	return k + (int)n + 1;
}

static void put_field(struct writer *w, const char *s, size_t n)
{
	if (w->overflow)
		return;
	int k = loc_netstring_put(w->p, w->left, s, n);
	if (k < 0) {
		w->overflow = true;
		return;
	}
	w->p += k;
	w->left -= (size_t)k;
}

static void put_str(struct writer *w, const char *s)
{
	put_field(w, s, strlen(s));
}

static void put_u64(struct writer *w, uint64_t v)
{
	char b[24];
	int k = snprintf(b, sizeof(b), "%" PRIu64, v);
	put_field(w, b, (size_t)k);
}

static void put_i64(struct writer *w, int64_t v)
{
	char b[24];
	int k = snprintf(b, sizeof(b), "%" PRId64, v);
	put_field(w, b, (size_t)k);
}

/* Bump when a field is added; decoding refuses other versions. */
#define LOC_TEXT_VERSION "1"

int loc_binding_encode(const struct loc_binding *b, char *out, size_t cap)
{
	struct writer w = {out, cap, false};
	if (cap)
		out[0] = '\0';
	char owner[64];
	loc_flow_owner(&b->flow, owner, sizeof(owner));
	put_raw(&w, owner, strlen(owner));
	put_raw(&w, "|", 1);
	put_str(&w, LOC_TEXT_VERSION);
	put_str(&w, b->contact);
	put_str(&w, b->instance);
	put_u64(&w, b->reg_id);
	put_str(&w, b->call_id);
	put_u64(&w, b->cseq);
	put_i64(&w, b->expires_at);
	put_u64(&w, b->q1000);
	put_str(&w, b->path);
	put_u64(&w, (uint64_t)b->flow.proto);
	char host[INET6_ADDRSTRLEN] = "";
	unsigned port = 0, family = 0;
	if (b->flow.remote.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&b->flow.remote;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		family = 4;
	} else if (b->flow.remote.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&b->flow.remote;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		family = 6;
	}
	put_u64(&w, family);
	put_str(&w, host);
	put_u64(&w, port);
	return w.overflow ? -EMSGSIZE : (int)(cap - w.left);
}

struct reader {
	const char *p, *end;
	bool bad;
};

bool loc_netstring_next(const char **p, const char *end, const char **d, size_t *n)
{
	size_t len = 0;
	const char *q = *p;
	while (q < end && *q >= '0' && *q <= '9' && len <= LOC_BINDING_TEXT_MAX)
		len = len * 10 + (size_t)(*q++ - '0');
	if (q == *p || q >= end || *q != ':' || len > LOC_BINDING_TEXT_MAX ||
	    (size_t)(end - q - 1) < len + 1 || q[1 + len] != ',')
		return false;
	*d = q + 1;
	*n = len;
	*p = q + 1 + len + 1;
	return true;
}

/* Next field: its bytes and length. */
static bool get_field(struct reader *r, const char **s, size_t *n)
{
	if (r->bad || !loc_netstring_next(&r->p, r->end, s, n)) {
		r->bad = true;
		return false;
	}
	return true;
}

static void get_str(struct reader *r, char *dst, size_t cap)
{
	const char *s;
	size_t n;
	if (!get_field(r, &s, &n))
		return;
	if (n >= cap || memchr(s, '\0', n)) {
		r->bad = true;
		return;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
}

static uint64_t get_u64(struct reader *r, uint64_t max)
{
	char b[24];
	get_str(r, b, sizeof(b));
	if (r->bad || !b[0])
		goto bad;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(b, &end, 10);
	if (*end || errno || v > max || b[0] == '-')
		goto bad;
	return v;
bad:
	r->bad = true;
	return 0;
}

int loc_binding_decode(const char *s, size_t len, struct loc_binding *b)
{
	memset(b, 0, sizeof(*b));
	const char *bar = memchr(s, '|', len);
	if (!bar)
		return -EINVAL;
	unsigned long long node, worker, conn;
	char owner[64];
	size_t olen = (size_t)(bar - s);
	if (olen >= sizeof(owner))
		return -EINVAL;
	memcpy(owner, s, olen);
	owner[olen] = '\0';
	int used = 0;
	if (sscanf(owner, "%llu:%llu:%llu%n", &node, &worker, &conn, &used) != 3 ||
	    (size_t)used != olen || node > 255 || worker > 255)
		return -EINVAL;
	b->flow.node = (unsigned)node;
	b->flow.worker = (unsigned)worker;
	b->flow.conn_id = conn;
	b->flow.udp_fd = -1;
	struct reader r = {bar + 1, s + len, false};
	char version[8] = "";
	get_str(&r, version, sizeof(version));
	if (r.bad || strcmp(version, LOC_TEXT_VERSION))
		return -EINVAL;
	get_str(&r, b->contact, sizeof(b->contact));
	get_str(&r, b->instance, sizeof(b->instance));
	b->reg_id = (unsigned)get_u64(&r, UINT32_MAX);
	get_str(&r, b->call_id, sizeof(b->call_id));
	b->cseq = (uint32_t)get_u64(&r, UINT32_MAX);
	char exp[24] = "";
	get_str(&r, exp, sizeof(exp));
	char *end = NULL;
	b->expires_at = strtoll(exp, &end, 10);
	if (!exp[0] || !end || *end)
		r.bad = true;
	b->q1000 = (unsigned)get_u64(&r, 1000);
	get_str(&r, b->path, sizeof(b->path));
	b->flow.proto = (int)get_u64(&r, 16);
	unsigned family = (unsigned)get_u64(&r, 6);
	char host[INET6_ADDRSTRLEN + 1] = "";
	get_str(&r, host, sizeof(host));
	unsigned port = (unsigned)get_u64(&r, 65535);
	if (r.bad || r.p != r.end)
		return -EINVAL;
	if (family == 4) {
		struct sockaddr_in *a = (struct sockaddr_in *)&b->flow.remote;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -EINVAL;
		b->flow.remote_len = sizeof(*a);
	} else if (family == 6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&b->flow.remote;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -EINVAL;
		b->flow.remote_len = sizeof(*a);
	} else if (family != 0) {
		return -EINVAL;
	}
	return 0;
}
