/* registrar.c: REGISTER handling (RFC 3261 §10.3, RFC 5626 §6, RFC 5630 §5.2). */
#include "registrar/registrar.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void registrar_cfg_default(struct registrar_cfg *c)
{
	c->min_expires = 60;
	c->max_expires = 3600;
	c->default_expires = 3600;
	c->flow_timer = 120;
}

int registrar_aor(const struct sip_uri *uri, char *out, size_t cap)
{
	if ((uri->scheme_id != SIP_SCHEME_SIP && uri->scheme_id != SIP_SCHEME_SIPS) || !uri->has_user)
		return -EINVAL;
	size_t n = uri->user.len + 1 + uri->host.len;
	if (n + 1 > cap)
		return -EINVAL;
	memcpy(out, uri->user.s, uri->user.len);
	out[uri->user.len] = '@';
	for (size_t i = 0; i < uri->host.len; i++)
		out[uri->user.len + 1 + i] = ascii_lower(uri->host.s[i]);
	out[n] = '\0';
	return (int)n;
}

static void extra_add(struct registrar_result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void extra_add(struct registrar_result *r, const char *fmt, ...)
{
	if (r->extra_len >= sizeof(r->extra))
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(r->extra + r->extra_len, sizeof(r->extra) - r->extra_len, fmt, ap);
	va_end(ap);
	if (n > 0)
		r->extra_len += (size_t)n < sizeof(r->extra) - r->extra_len ? (size_t)n
									: sizeof(r->extra) - r->extra_len - 1;
}

static void fail(struct registrar_result *r, int status, const char *reason)
{
	r->status = status;
	r->reason = reason;
}

/* Copies a parameter value without quotes into `out`. */
static void param_copy(struct str v, char *out, size_t cap)
{
	if (v.len >= 2 && v.s[0] == '"' && v.s[v.len - 1] == '"')
		v = str_make(v.s + 1, v.len - 2);
	str_to_cbuf(v, out, cap);
}

static unsigned q_parse(struct str v)
{
	/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) */
	unsigned q = 0;
	if (v.len == 0 || (v.s[0] != '0' && v.s[0] != '1'))
		return 1000;
	q = (unsigned)(v.s[0] - '0') * 1000;
	if (v.len > 1 && v.s[1] == '.') {
		unsigned scale = 100;
		for (size_t i = 2; i < v.len && i < 5 && ascii_is_digit(v.s[i]); i++, scale /= 10)
			q += (unsigned)(v.s[i] - '0') * scale;
	}
	return q > 1000 ? 1000 : q;
}

void registrar_handle(struct location *loc, const struct registrar_cfg *cfg,
		      const struct sip_msg *m, const struct loc_flow *flow, bool over_tls,
		      struct registrar_result *res)
{
	memset(res, 0, sizeof(*res));
	res->status = 200;
	int64_t now = (int64_t)time(NULL);
	char aor[LOC_MAX_AOR];
	/* §10.3 step 5: the To header holds the AOR; it must be a SIP URI. */
	if (!m->to || registrar_aor(&m->to->uri, aor, sizeof(aor)) < 0) {
		fail(res, 400, "To Is Not A SIP Address-of-Record");
		return;
	}
	struct str aor_s = str_from_cstr(aor);
	if (m->contact_star) {
		/* §10.3 step 6: "*" only alone and with Expires: 0. */
		if (m->contact_count || m->expires != 0) {
			fail(res, 400, "Contact * Requires Expires 0 And No Other Contact");
			return;
		}
		int n = location_remove_all(loc, aor_s, m->call_id, m->cseq);
		if (n == -LOC_STORE_DOWN) {
			fail(res, 503, "Location Store Unavailable");
			extra_add(res, "Retry-After: 5\r\n");
			return;
		}
		if (n == -LOC_OUT_OF_ORDER) {
			fail(res, 500, "Out Of Order REGISTER");
			extra_add(res, "Retry-After: 1\r\n");
			return;
		}
		return;
	}
	/* First pass: validate every Contact before changing anything. */
	for (const struct sip_addr *c = m->contact; c; c = c->next) {
		struct str ev;
		uint64_t e = m->expires >= 0 ? (uint64_t)m->expires : cfg->default_expires;
		if (sip_params_find(c->params, "expires", &ev) && str_to_u64(ev, UINT32_MAX, &e) < 0) {
			fail(res, 400, "Bad Contact Expires");
			return;
		}
		if (e > 0 && e < cfg->min_expires) {
			fail(res, 423, NULL);
			extra_add(res, "Min-Expires: %u\r\n", cfg->min_expires);
			return;
		}
		/* RFC 5630 §5.2 (our policy): a SIPS contact promises TLS to the
		 * UA; it must be registered over TLS. */
		if (c->uri.scheme_id == SIP_SCHEME_SIPS && !over_tls) {
			fail(res, 400, "SIPS Contact Registered Without TLS");
			return;
		}
		if (c->uri.raw.len >= LOC_MAX_CONTACT) {
			fail(res, 400, "Contact Too Long");
			return;
		}
	}
	bool outbound = false;
	for (const struct sip_addr *c = m->contact; c; c = c->next) {
		struct loc_binding b;
		memset(&b, 0, sizeof(b));
		str_to_cbuf(c->uri.raw, b.contact, sizeof(b.contact));
		str_to_cbuf(m->call_id, b.call_id, sizeof(b.call_id));
		b.cseq = m->cseq;
		b.flow = *flow;
		struct str v;
		b.q1000 = sip_params_find(c->params, "q", &v) ? q_parse(v) : 1000;
		if (sip_params_find(c->params, "+sip.instance", &v))
			param_copy(v, b.instance, sizeof(b.instance));
		if (sip_params_find(c->params, "reg-id", &v)) {
			uint64_t id;
			if (str_to_u64(v, UINT32_MAX, &id) == 0)
				b.reg_id = (unsigned)id;
		}
		if (b.instance[0] && b.reg_id && flow->conn_id)
			outbound = true; /* RFC 5626 §6 */
		for (const struct sip_hdr *h = m->hdr_first[SIP_HDR_PATH]; h; h = h->next_same) {
			size_t used = strlen(b.path);
			snprintf(b.path + used, sizeof(b.path) - used, "%s%.*s", used ? ", " : "",
				 (int)h->value.len, h->value.s);
		}
		uint64_t e = m->expires >= 0 ? (uint64_t)m->expires : cfg->default_expires;
		if (sip_params_find(c->params, "expires", &v))
			str_to_u64(v, UINT32_MAX, &e);
		if (e > cfg->max_expires)
			e = cfg->max_expires;
		enum loc_update_result r = location_update(loc, aor_s, &b, (uint32_t)e, now);
		if (r == LOC_OUT_OF_ORDER) {
			fail(res, 500, "Out Of Order REGISTER");
			extra_add(res, "Retry-After: 1\r\n");
			return;
		}
		if (r == LOC_TOO_MANY) {
			fail(res, 403, "Too Many Bindings");
			return;
		}
		if (r == LOC_STORE_DOWN) {
			fail(res, 503, "Location Store Unavailable");
			extra_add(res, "Retry-After: 5\r\n");
			return;
		}
		if (r == LOC_STORE_FULL) {
			fail(res, 503, "Location Store Full");
			extra_add(res, "Retry-After: 60\r\n");
			return;
		}
	}
	/* §10.3 step 8: the 200 lists every current binding. */
	struct loc_binding cur[LOC_MAX_BINDINGS_PER_AOR];
	int n = location_lookup(loc, aor_s, now, cur, LOC_MAX_BINDINGS_PER_AOR);
	if (n < 0) {
		fail(res, 503, "Location Store Unavailable");
		extra_add(res, "Retry-After: 5\r\n");
		return;
	}
	for (int i = 0; i < n; i++)
		extra_add(res, "Contact: <%s>;expires=%lld\r\n", cur[i].contact,
			  (long long)(cur[i].expires_at - now));
	if (outbound) {
		extra_add(res, "Require: outbound\r\n");
		extra_add(res, "Flow-Timer: %u\r\n", cfg->flow_timer);
	}
}
