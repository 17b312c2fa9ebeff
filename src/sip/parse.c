/* parse.c: SIP message parser (RFC 3261 §7, §18.3, §20, §25). */
#include <errno.h>

#include "sip/chars.h"
#include "sip/msg.h"

static const struct {
	const char *name;
	enum sip_method id;
} method_names[] = {
	{"INVITE", SIP_METHOD_INVITE},     {"ACK", SIP_METHOD_ACK},
	{"BYE", SIP_METHOD_BYE},           {"CANCEL", SIP_METHOD_CANCEL},
	{"REGISTER", SIP_METHOD_REGISTER}, {"OPTIONS", SIP_METHOD_OPTIONS},
	{"PRACK", SIP_METHOD_PRACK},       {"SUBSCRIBE", SIP_METHOD_SUBSCRIBE},
	{"NOTIFY", SIP_METHOD_NOTIFY},     {"PUBLISH", SIP_METHOD_PUBLISH},
	{"INFO", SIP_METHOD_INFO},         {"REFER", SIP_METHOD_REFER},
	{"MESSAGE", SIP_METHOD_MESSAGE},   {"UPDATE", SIP_METHOD_UPDATE},
};

/* Method names by length (3 to 9 bytes), indices into method_names + 1. */
static const unsigned char method_by_len[10][4] = {
	[3] = {2, 3},	      /* ACK BYE */
	[4] = {11},	      /* INFO */
	[5] = {7, 12},	      /* PRACK REFER */
	[6] = {1, 4, 9, 14},  /* INVITE CANCEL NOTIFY UPDATE */
	[7] = {6, 10, 13},    /* OPTIONS PUBLISH MESSAGE */
	[8] = {5},	      /* REGISTER */
	[9] = {8},	      /* SUBSCRIBE */
};

enum sip_method sip_method_from_str(struct str method)
{
	/* Methods are case-sensitive (RFC 3261 §7.1). */
	if (method.len >= sizeof(method_by_len) / sizeof(method_by_len[0]))
		return SIP_METHOD_UNKNOWN;
	const unsigned char *cand = method_by_len[method.len];
	for (size_t k = 0; k < sizeof(method_by_len[0]) && cand[k]; k++) {
		const char *name = method_names[cand[k] - 1].name;
		if (method.s[0] == name[0] && memcmp(method.s, name, method.len) == 0)
			return method_names[cand[k] - 1].id;
	}
	return SIP_METHOD_UNKNOWN;
}

const char *sip_method_name(enum sip_method method)
{
	for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
		if (method_names[i].id == method)
			return method_names[i].name;
	return NULL;
}

const struct sip_hdr *sip_msg_hdr_by_name(const struct sip_msg *m, struct str name)
{
	enum sip_hdr_id id = sip_hdr_id_from_name(name);
	if (id != SIP_HDR_OTHER)
		return m->hdr_first[id];
	for (const struct sip_hdr *h = m->headers; h; h = h->next)
		if (h->id == SIP_HDR_OTHER && str_case_eq(h->name, name))
			return h;
	return NULL;
}

static int perr(struct sip_parse_error *err, size_t off, const char *why, int rc)
{
	if (err) {
		err->offset = off;
		err->reason = why;
		err->status = 400;
	}
	return rc;
}

/* Finds the end of the line starting at `p`: returns the index of its LF,
 * or -1. Lines end in CRLF; a bare LF is tolerated. */
static long line_end(const char *buf, size_t len, size_t p)
{
	const char *lf = memchr(buf + p, '\n', len - p);
	return lf ? (long)(lf - buf) : -1;
}

static size_t content_end(const char *buf, size_t lf)
{
	return (lf > 0 && buf[lf - 1] == '\r') ? lf - 1 : lf;
}

/* "SIP/" in any case at the start of `s` (§7.1: the version is
 * case-insensitive). */
static inline bool has_sip_slash(struct str s)
{
	return s.len >= 4 && (s.s[0] | 0x20) == 's' && (s.s[1] | 0x20) == 'i' &&
	       (s.s[2] | 0x20) == 'p' && s.s[3] == '/';
}

static int parse_start_line(struct sip_msg *m, struct str line, struct sip_parse_error *err)
{
	const char *s = line.s;
	size_t n = line.len;
	/* §7.1: the SIP-Version is case-insensitive. */
	if (has_sip_slash(line)) {
		/* Status-Line = SIP-Version SP Status-Code SP Reason-Phrase */
		long sp = str_index(line, ' ');
		if (sp < 0)
			return perr(err, n, "bad status line", -EBADMSG);
		m->version = str_make(s, (size_t)sp);
		size_t i = (size_t)sp + 1;
		if (n - i < 3 || !ascii_is_digit(s[i]) || !ascii_is_digit(s[i + 1]) ||
		    !ascii_is_digit(s[i + 2]) || (n - i > 3 && s[i + 3] != ' '))
			return perr(err, i, "bad status code", -EBADMSG);
		m->status = (unsigned)((s[i] - '0') * 100 + (s[i + 1] - '0') * 10 + (s[i + 2] - '0'));
		if (m->status < 100 || m->status > 699)
			return perr(err, i, "status code out of range", -EBADMSG);
		i += 3;
		m->reason = i < n ? str_make(s + i + 1, n - i - 1) : STR_NULL;
		for (size_t k = 0; k < m->reason.len; k++) {
			unsigned char c = (unsigned char)m->reason.s[k];
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return perr(err, i + 1 + k, "control character in reason phrase", -EBADMSG);
		}
		m->is_request = false;
	} else {
		/* Request-Line = Method SP Request-URI SP SIP-Version: exactly one
		 * SP between elements, none at the end (RFC 4475 §3.1.2.8-10). */
		size_t i = 0;
		while (i < n && sip_cc((unsigned char)s[i], SIP_CC_TOKEN))
			i++;
		if (i == 0 || i == n || s[i] != ' ')
			return perr(err, i, "bad method in request line", -EBADMSG);
		m->method = str_make(s, i);
		m->method_id = sip_method_from_str(m->method);
		size_t u = ++i;
		while (i < n && s[i] != ' ')
			i++;
		if (i == u || i == n)
			return perr(err, i, "bad request line", -EBADMSG);
		m->ruri_raw = str_make(s + u, i - u);
		size_t v = ++i;
		while (i < n && s[i] != ' ')
			i++;
		if (i != n)
			return perr(err, i, "extra characters in request line", -EBADMSG);
		m->version = str_make(s + v, n - v);
		size_t off;
		const char *why;
		if (sip_uri_parse(m->ruri_raw, &m->ruri, &off, &why) < 0)
			return perr(err, u + off, why, -EBADMSG);
		m->is_request = true;
	}
	/* SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT; only 2.0 is served,
	 * which sip_msg_check answers with 505 (RFC 3261 §8.2.1... §21.5.6). */
	struct str ver = m->version;
	size_t off = (size_t)(ver.s - line.s);
	if (ver.len < 7 || !has_sip_slash(ver))
		return perr(err, off, "bad SIP version", -EBADMSG);
	size_t k = 4, d1 = 0, d2 = 0;
	while (k < ver.len && ascii_is_digit(ver.s[k]))
		k++, d1++;
	if (k == ver.len || ver.s[k] != '.')
		return perr(err, off + k, "bad SIP version", -EBADMSG);
	k++;
	while (k < ver.len && ascii_is_digit(ver.s[k]))
		k++, d2++;
	if (!d1 || !d2 || k != ver.len)
		return perr(err, off + k, "bad SIP version", -EBADMSG);
	return 0;
}

/* Call-ID = word [ "@" word ] (RFC 3261 §25.1). */
static bool call_id_valid(struct str v)
{
	const unsigned char *s = (const unsigned char *)v.s;
	size_t i = 0, n = v.len;
	while (i < n && sip_cc(s[i], SIP_CC_WORD))
		i++;
	if (i == 0)
		return false;
	if (i == n)
		return true;
	if (s[i] != '@' || ++i == n)
		return false;
	while (i < n && sip_cc(s[i], SIP_CC_WORD))
		i++;
	return i == n;
}

static int parse_uint(struct str v, uint64_t max, uint64_t *out)
{
	return str_to_u64(v, max, out);
}

/* Parses the value of an eagerly parsed header into the message. */
static int parse_eager(struct sip_msg *m, struct sip_hdr *h, size_t vbase,
		       struct sip_parse_error *err)
{
	size_t off = 0;
	const char *why = NULL;
	int rc;
	uint64_t v;
	switch (h->id) {
	case SIP_HDR_VIA: {
		struct sip_via *first, *last;
		rc = sip_via_list_parse(h->value, &m->arena, &first, &off, &why);
		if (rc < 0)
			return perr(err, vbase + off, why, rc);
		if (m->via_count + (unsigned)rc > SIPS_MAX_VIA)
			return perr(err, vbase, "too many Via entries", -EMSGSIZE);
		for (last = first; last; last = last->next) {
			last->hdr = h;
			if (!last->next)
				break;
		}
		if (!m->via)
			m->via = first;
		else
			m->via_last->next = first;
		m->via_last = last;
		m->via_count += (unsigned)rc;
		return 0;
	}
	case SIP_HDR_FROM:
	case SIP_HDR_TO: {
		struct sip_addr *a;
		rc = sip_addr_list_parse(h->value, &m->arena, false, NULL, &a, &off, &why);
		if (rc < 0)
			return perr(err, vbase + off, why, rc);
		if (rc != 1)
			return perr(err, vbase, "From/To must hold exactly one address", -EBADMSG);
		a->hdr = h;
		if (h->id == SIP_HDR_FROM && !m->from)
			m->from = a;
		else if (h->id == SIP_HDR_TO && !m->to)
			m->to = a;
		return 0;
	}
	case SIP_HDR_ROUTE:
	case SIP_HDR_RECORD_ROUTE:
	case SIP_HDR_CONTACT: {
		struct sip_addr *first;
		bool star = false;
		rc = sip_addr_list_parse(h->value, &m->arena, h->id == SIP_HDR_CONTACT, &star, &first,
					 &off, &why);
		if (rc < 0)
			return perr(err, vbase + off, why, rc);
		struct sip_addr **head = h->id == SIP_HDR_ROUTE	       ? &m->route
					 : h->id == SIP_HDR_RECORD_ROUTE ? &m->record_route
									 : &m->contact;
		unsigned *count = h->id == SIP_HDR_ROUTE	 ? &m->route_count
				  : h->id == SIP_HDR_RECORD_ROUTE ? &m->record_route_count
								  : &m->contact_count;
		if (star)
			m->contact_star = true;
		if (*count + (unsigned)rc > SIPS_MAX_ADDRS)
			return perr(err, vbase, "too many addresses", -EMSGSIZE);
		for (struct sip_addr *a = first; a; a = a->next)
			a->hdr = h;
		while (*head)
			head = &(*head)->next;
		*head = first;
		*count += (unsigned)rc;
		return 0;
	}
	case SIP_HDR_CALL_ID:
		if (!call_id_valid(h->value))
			return perr(err, vbase, "bad Call-ID", -EBADMSG);
		if (!m->call_id.s)
			m->call_id = h->value;
		return 0;
	case SIP_HDR_CSEQ: {
		/* CSeq = 1*DIGIT LWS Method; a 32-bit number (§8.1.1.5). */
		struct str val = h->value;
		size_t i = 0;
		while (i < val.len && ascii_is_digit(val.s[i]))
			i++;
		if (parse_uint(str_make(val.s, i), UINT32_MAX, &v) < 0)
			return perr(err, vbase, "bad CSeq number", -EBADMSG);
		size_t j = i;
		while (j < val.len && (val.s[j] == ' ' || val.s[j] == '\t' || val.s[j] == '\r' ||
				       val.s[j] == '\n'))
			j++;
		if (j == i || j == val.len)
			return perr(err, vbase + i, "bad CSeq", -EBADMSG);
		struct str meth = str_make(val.s + j, val.len - j);
		for (size_t k = 0; k < meth.len; k++)
			if (!sip_cc((unsigned char)meth.s[k], SIP_CC_TOKEN))
				return perr(err, vbase + j + k, "bad CSeq method", -EBADMSG);
		if (!m->has_cseq) {
			m->cseq = (uint32_t)v;
			m->cseq_method = meth;
			m->cseq_method_id = sip_method_from_str(meth);
			m->has_cseq = true;
		}
		return 0;
	}
	case SIP_HDR_MAX_FORWARDS:
		/* 1*DIGIT; values above 255 are nonsense (RFC 4475 §3.1.2.4). */
		if (parse_uint(h->value, 255, &v) < 0)
			return perr(err, vbase, "bad Max-Forwards", -EBADMSG);
		if (m->max_forwards < 0)
			m->max_forwards = (int)v;
		return 0;
	case SIP_HDR_CONTENT_LENGTH:
		if (m->content_length >= 0)
			return perr(err, vbase, "more than one Content-Length", -EBADMSG);
		rc = parse_uint(h->value, UINT32_MAX, &v);
		if (rc < 0)
			return perr(err, vbase, "bad Content-Length", -EBADMSG);
		if (v > SIPS_MAX_MSG_SIZE)
			return perr(err, vbase, "Content-Length over the message size limit", -EMSGSIZE);
		m->content_length = (int64_t)v;
		return 0;
	case SIP_HDR_EXPIRES:
		if (parse_uint(h->value, UINT32_MAX, &v) < 0)
			return perr(err, vbase, "bad Expires", -EBADMSG);
		if (m->expires < 0)
			m->expires = (int64_t)v;
		return 0;
	default:
		return 0;
	}
}

static void msg_reset(struct sip_msg *m)
{
	/* Everything before the header tails; neither they nor the arena
	 * memory are zeroed. */
	memset(m, 0, offsetof(struct sip_msg, hdr_tail));
	arena_init(&m->arena, m->arena_mem, sizeof(m->arena_mem));
	m->max_forwards = -1;
	m->content_length = -1;
	m->expires = -1;
}

int sip_msg_parse(struct sip_msg *m, const char *buf, size_t len, enum sip_parse_mode mode,
		  struct sip_parse_error *err)
{
	msg_reset(m);
	if (err) {
		err->offset = 0;
		err->reason = NULL;
		err->status = 400;
	}
	if (len == 0)
		return perr(err, 0, "empty message", -EBADMSG);
	size_t limit = len > SIPS_MAX_MSG_SIZE ? SIPS_MAX_MSG_SIZE : len;

	long lf = line_end(buf, limit, 0);
	if (lf < 0)
		return perr(err, limit, len > limit ? "message too large" : "no end of start line",
			    len > limit ? -EMSGSIZE : -EBADMSG);
	size_t ce = content_end(buf, (size_t)lf);
	if (ce > SIPS_MAX_LINE)
		return perr(err, SIPS_MAX_LINE, "start line too long", -EMSGSIZE);
	m->start_line = str_make(buf, ce);
	int rc = parse_start_line(m, m->start_line, err);
	if (rc < 0)
		return rc;

	/* One look for NUL over the whole message spares one per header
	 * value in the common case of a message without any. */
	bool has_nul = memchr(buf, 0, limit) != NULL;
	size_t p = (size_t)lf + 1;
	for (;;) {
		if (p >= limit)
			return perr(err, p, len > limit ? "message too large" : "no end of headers",
				    len > limit ? -EMSGSIZE : -EBADMSG);
		/* Empty line: end of headers. */
		if (buf[p] == '\n') {
			p += 1;
			break;
		}
		if (buf[p] == '\r' && p + 1 < limit && buf[p + 1] == '\n') {
			p += 2;
			break;
		}
		if (buf[p] == ' ' || buf[p] == '\t')
			return perr(err, p, "continuation line without a header", -EBADMSG);
		/* One header: its lines continue while the next starts with WSP. */
		size_t hs = p, le;
		for (;;) {
			long e = line_end(buf, limit, p);
			if (e < 0)
				return perr(err, limit, len > limit ? "message too large" : "no end of headers",
					    len > limit ? -EMSGSIZE : -EBADMSG);
			le = (size_t)e;
			p = le + 1;
			if (p < limit && (buf[p] == ' ' || buf[p] == '\t'))
				continue;
			break;
		}
		if (le - hs > SIPS_MAX_LINE)
			return perr(err, hs + SIPS_MAX_LINE, "header line too long", -EMSGSIZE);
		if (m->hdr_count >= SIPS_MAX_HEADERS)
			return perr(err, hs, "too many header fields", -EMSGSIZE);
		/* header-name HCOLON value; HCOLON = *( SP / HTAB ) ":" SWS */
		/* The first line's LF is no token byte: it bounds the scan. */
		size_t i = hs;
		while (sip_cc((unsigned char)buf[i], SIP_CC_TOKEN))
			i++;
		if (i == hs)
			return perr(err, hs, "bad header name", -EBADMSG);
		size_t name_end = i;
		while (i < le && (buf[i] == ' ' || buf[i] == '\t'))
			i++;
		if (i >= le || buf[i] != ':')
			return perr(err, i, "missing colon after header name", -EBADMSG);
		i++;
		struct sip_hdr *h = arena_alloc(&m->arena, sizeof(*h));
		if (!h)
			return perr(err, hs, "message too complex", -ENOMEM);
		h->name = str_make(buf + hs, name_end - hs);
		h->id = sip_hdr_id_from_name(h->name);
		h->line = str_make(buf + hs, le + 1 - hs);
		/* The value, LWS-trimmed (SWS after the colon, a fold's CR LF at
		 * the end). */
		size_t ve = content_end(buf, le);
		while (i < ve && sip_cc((unsigned char)buf[i], SIP_CC_LWS))
			i++;
		while (ve > i && sip_cc((unsigned char)buf[ve - 1], SIP_CC_LWS))
			ve--;
		struct str value = str_make(buf + i, ve - i);
		h->value = value;
		/* A NUL is legal only in quoted strings of a few headers
		 * (RFC 4475 §3.1.1.2); bare CR or LF are folds. */
		if (has_nul && h->id != SIP_HDR_TO && h->id != SIP_HDR_FROM &&
		    h->id != SIP_HDR_CONTACT && h->id != SIP_HDR_OTHER && value.len) {
			const char *nul = memchr(value.s, 0, value.len);
			if (nul)
				return perr(err, (size_t)(nul - buf), "NUL in header value", -EBADMSG);
		}
		if (m->hdr_last)
			m->hdr_last->next = h;
		else
			m->headers = h;
		m->hdr_last = h;
		if (m->hdr_first[h->id])
			m->hdr_tail[h->id]->next_same = h;
		else
			m->hdr_first[h->id] = h;
		m->hdr_tail[h->id] = h;
		m->hdr_count++;
		m->hdr_counts[h->id]++;
		if (mode == SIP_PARSE_OWN &&
		    (h->id == SIP_HDR_FROM || h->id == SIP_HDR_TO || h->id == SIP_HDR_CONTACT ||
		     h->id == SIP_HDR_ROUTE || h->id == SIP_HDR_RECORD_ROUTE))
			continue; /* built here from parsed values: nothing to learn */
		rc = parse_eager(m, h, (size_t)(value.s - buf), err);
		if (rc < 0)
			return rc;
	}

	size_t avail = len - p;
	size_t body_len;
	if (m->content_length >= 0) {
		body_len = (size_t)m->content_length;
		if (body_len > avail) {
			if (mode == SIP_PARSE_DATAGRAM)
				return perr(err, len, "body shorter than Content-Length", -EBADMSG);
			return perr(err, len, "incomplete message", -EBADMSG);
		}
	} else if (mode == SIP_PARSE_DATAGRAM) {
		/* RFC 3261 §18.3: over UDP the body runs to the datagram's end. */
		body_len = avail;
	} else {
		return perr(err, p, "missing Content-Length on a stream", -EBADMSG);
	}
	if (p + body_len > SIPS_MAX_MSG_SIZE)
		return perr(err, SIPS_MAX_MSG_SIZE, "message too large", -EMSGSIZE);
	m->body = str_make(buf + p, body_len);
	m->raw = str_make(buf, p + body_len);
	return (int)(p + body_len);
}
