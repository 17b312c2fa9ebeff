/* build.c: message serialiser with edits (RFC 3261 §16.6, §8.2.6). */
#include "sip/build.h"

#include <errno.h>
#include <stdio.h>

struct out {
	char *p;
	size_t len;
	size_t cap;
	bool overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (n == 0)
		return; /* s may be NULL (STR_NULL): memcpy must not see it */
	if (o->overflow || n > o->cap - o->len) {
		o->overflow = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void put_str(struct out *o, struct str s)
{
	put(o, s.s, s.len);
}

static void put_cstr(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void put_uint(struct out *o, unsigned long v)
{
	char tmp[24];
	put(o, tmp, fmt_u64(tmp, v));
}

/* Writes "Name: e2, e3\r\n" for a multi-entry header line minus its first
 * entry, or nothing when it held only one. */
static void put_rest_of_via_line(struct out *o, const struct sip_hdr *h, const struct sip_via *first)
{
	bool any = false;
	for (const struct sip_via *v = first->next; v && v->hdr == h; v = v->next) {
		if (!any) {
			put_str(o, h->name);
			put_cstr(o, ": ");
		} else {
			put_cstr(o, ", ");
		}
		put_str(o, v->raw);
		any = true;
	}
	if (any)
		put_cstr(o, "\r\n");
}

/* Does the edit remove an entry of this Route line (popped from the top,
 * or the last one after a strict router)? */
static bool route_line_edited(const struct sip_msg *m, const struct sip_edit *e,
			      const struct sip_hdr *h, const struct sip_addr *last_route)
{
	unsigned index = 0;
	for (const struct sip_addr *a = m->route; a; a = a->next, index++)
		if (a->hdr == h && (index < e->pop_routes || (e->pop_last_route && a == last_route)))
			return true;
	return false;
}

/* Writes a via-parm with received= and rport= set to ours (any of the
 * peer's own removed), §18.2.1, RFC 3581 §4. */
static void put_via_annotated(struct out *o, const struct sip_via *v, struct str received,
			      uint16_t rport)
{
	put_str(o, v->protocol);
	put_cstr(o, "/");
	put_str(o, v->version);
	put_cstr(o, "/");
	put_str(o, v->transport);
	put_cstr(o, " ");
	put_str(o, v->host);
	if (v->has_port) {
		put_cstr(o, ":");
		put_uint(o, v->port);
	}
	struct sip_param prm;
	struct str cur = v->params;
	while (sip_params_next(&cur, &prm)) {
		if (str_case_eq_cstr(prm.name, "received") || str_case_eq_cstr(prm.name, "rport"))
			continue;
		put_cstr(o, ";");
		put_str(o, prm.name);
		if (prm.has_value) {
			put_cstr(o, "=");
			put_str(o, prm.value);
		}
	}
	if (received.len) {
		put_cstr(o, ";received=");
		put_str(o, received);
	}
	if (rport) {
		put_cstr(o, ";rport=");
		put_uint(o, rport);
	}
}

/* A header line that ended in a bare LF is written back ending in CRLF. */
static void put_line_end_fix(struct out *o, const struct sip_hdr *h)
{
	if (!o->overflow && h->line.len >= 2 && h->line.s[h->line.len - 2] != '\r') {
		o->len--;
		put_cstr(o, "\r\n");
	}
}

int sip_msg_build(const struct sip_msg *m, const struct sip_edit *e, char *buf, size_t cap)
{
	struct out o = {buf, 0, cap, false};
	static const struct sip_edit none;
	if (!e)
		e = &none;
	if (m->is_request) {
		put_str(&o, m->method);
		put_cstr(&o, " ");
		put_str(&o, e->new_ruri.len ? e->new_ruri : m->ruri_raw);
		put_cstr(&o, " SIP/2.0\r\n");
	} else {
		put_str(&o, m->start_line);
		put_cstr(&o, "\r\n");
	}
	bool via_done = false, rr_done = false, mf_done = false, push_done = false;
	const struct sip_addr *last_route = NULL;
	for (const struct sip_addr *a = m->route; a; a = a->next)
		last_route = a;
	const struct sip_hdr *first_via = m->hdr_first[SIP_HDR_VIA];
	for (const struct sip_hdr *h = m->headers; h; h = h->next) {
		if (h == first_via && !via_done) {
			via_done = true;
			if (e->add_via.len) {
				put_cstr(&o, "Via: ");
				put_str(&o, e->add_via);
				put_cstr(&o, "\r\n");
			}
			if (e->remove_top_via) {
				put_rest_of_via_line(&o, h, m->via);
				continue;
			}
			if (e->via_received.len || e->via_rport) {
				put_str(&o, h->name);
				put_cstr(&o, ": ");
				put_via_annotated(&o, m->via, e->via_received, e->via_rport);
				for (const struct sip_via *v = m->via->next; v && v->hdr == h; v = v->next) {
					put_cstr(&o, ", ");
					put_str(&o, v->raw);
				}
				put_cstr(&o, "\r\n");
				continue;
			}
		}
		switch (h->id) {
		case SIP_HDR_CONTENT_LENGTH:
			continue; /* written once at the end */
		case SIP_HDR_MAX_FORWARDS:
			if (e->decrement_max_forwards && !mf_done) {
				mf_done = true;
				put_cstr(&o, "Max-Forwards: ");
				put_uint(&o, m->max_forwards > 0 ? (unsigned long)m->max_forwards - 1 : 0);
				put_cstr(&o, "\r\n");
				continue;
			}
			break;
		case SIP_HDR_RECORD_ROUTE:
			if (e->add_record_route.len && !rr_done) {
				rr_done = true;
				put_cstr(&o, "Record-Route: ");
				put_str(&o, e->add_record_route);
				put_cstr(&o, "\r\n");
			}
			break;
		case SIP_HDR_ROUTE:
			if (e->push_route.len && !push_done) {
				push_done = true;
				put_cstr(&o, "Route: ");
				put_str(&o, e->push_route);
				put_cstr(&o, "\r\n");
			}
			if (route_line_edited(m, e, h, last_route)) {
				/* This line without the entries popped from the top
				 * or (strict routing) the last one. */
				bool any = false;
				unsigned index = 0;
				for (const struct sip_addr *a = m->route; a; a = a->next, index++) {
					if (a->hdr != h || index < e->pop_routes ||
					    (e->pop_last_route && a == last_route))
						continue;
					put_cstr(&o, any ? ", " : "");
					if (!any) {
						put_str(&o, h->name);
						put_cstr(&o, ": ");
					}
					put_str(&o, a->raw);
					any = true;
				}
				if (any)
					put_cstr(&o, "\r\n");
				continue;
			}
			break;
		default:
			break;
		}
		put_str(&o, h->line);
		/* A bare-LF line end is written back as CRLF. */
		put_line_end_fix(&o, h);
	}
	if (e->add_via.len && !via_done) {
		put_cstr(&o, "Via: ");
		put_str(&o, e->add_via);
		put_cstr(&o, "\r\n");
	}
	if (e->add_record_route.len && !rr_done) {
		put_cstr(&o, "Record-Route: ");
		put_str(&o, e->add_record_route);
		put_cstr(&o, "\r\n");
	}
	if (e->push_route.len && !push_done) {
		put_cstr(&o, "Route: ");
		put_str(&o, e->push_route);
		put_cstr(&o, "\r\n");
	}
	if (e->decrement_max_forwards && !mf_done && m->is_request)
		put_cstr(&o, "Max-Forwards: 70\r\n");
	put_str(&o, e->extra_headers);
	put_cstr(&o, "Content-Length: ");
	put_uint(&o, m->body.len);
	put_cstr(&o, "\r\n\r\n");
	put_str(&o, m->body);
	return o.overflow ? -EMSGSIZE : (int)o.len;
}

const char *sip_status_reason(int status)
{
	switch (status) {
	case 100: return "Trying";
	case 180: return "Ringing";
	case 181: return "Call Is Being Forwarded";
	case 182: return "Queued";
	case 183: return "Session Progress";
	case 200: return "OK";
	case 202: return "Accepted";
	case 300: return "Multiple Choices";
	case 301: return "Moved Permanently";
	case 302: return "Moved Temporarily";
	case 305: return "Use Proxy";
	case 380: return "Alternative Service";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Timeout";
	case 413: return "Request Entity Too Large";
	case 415: return "Unsupported Media Type";
	case 416: return "Unsupported URI Scheme";
	case 420: return "Bad Extension";
	case 423: return "Interval Too Brief";
	case 430: return "Flow Failed";
	case 439: return "First Hop Lacks Outbound Support";
	case 480: return "Temporarily Unavailable";
	case 481: return "Call/Transaction Does Not Exist";
	case 482: return "Loop Detected";
	case 483: return "Too Many Hops";
	case 484: return "Address Incomplete";
	case 486: return "Busy Here";
	case 487: return "Request Terminated";
	case 488: return "Not Acceptable Here";
	case 491: return "Request Pending";
	case 500: return "Server Internal Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Server Time-out";
	case 505: return "Version Not Supported";
	case 513: return "Message Too Large";
	case 600: return "Busy Everywhere";
	case 603: return "Decline";
	case 604: return "Does Not Exist Anywhere";
	case 606: return "Not Acceptable";
	default: break;
	}
	if (status >= 200 && status < 300)
		return "OK";
	return "Unknown";
}

int sip_response_build(const struct sip_msg *req, int status, const char *reason,
		       struct str to_tag, struct str extra_headers, char *buf, size_t cap)
{
	struct out o = {buf, 0, cap, false};
	put_cstr(&o, "SIP/2.0 ");
	put_uint(&o, (unsigned long)status);
	put_cstr(&o, " ");
	put_cstr(&o, reason ? reason : sip_status_reason(status));
	put_cstr(&o, "\r\n");
	for (const struct sip_hdr *h = req->headers; h; h = h->next) {
		switch (h->id) {
		case SIP_HDR_VIA:
		case SIP_HDR_FROM:
		case SIP_HDR_CALL_ID:
		case SIP_HDR_CSEQ:
			break;
		case SIP_HDR_TO:
			if (h != req->hdr_first[SIP_HDR_TO])
				continue;
			if (status > 100 && to_tag.len && req->to && !req->to->has_tag) {
				put_str(&o, h->name);
				put_cstr(&o, ": ");
				put_str(&o, h->value);
				put_cstr(&o, ";tag=");
				put_str(&o, to_tag);
				put_cstr(&o, "\r\n");
				continue;
			}
			break;
		case SIP_HDR_RECORD_ROUTE:
			/* §12.1.1: Record-Route is copied in 2xx/18x to dialog-forming requests. */
			if (status > 100 && status < 300)
				break;
			continue;
		default:
			continue;
		}
		put_str(&o, h->line);
		put_line_end_fix(&o, h);
	}
	put_str(&o, extra_headers);
	put_cstr(&o, "Content-Length: 0\r\n\r\n");
	return o.overflow ? -EMSGSIZE : (int)o.len;
}

/* Writes the first Via entry of `m` as its own header line. */
static void put_top_via(struct out *o, const struct sip_msg *m)
{
	put_cstr(o, "Via: ");
	put_str(o, m->via->raw);
	put_cstr(o, "\r\n");
}

/* Writes every header line of `id` as received. */
static void put_headers(struct out *o, const struct sip_msg *m, enum sip_hdr_id id)
{
	for (const struct sip_hdr *h = m->hdr_first[id]; h; h = h->next_same) {
		put_str(o, h->line);
		put_line_end_fix(o, h);
	}
}

int sip_ack_build(const struct sip_msg *invite, const struct sip_msg *resp, char *buf, size_t cap)
{
	struct out o = {buf, 0, cap, false};
	if (!invite->via || !resp->hdr_first[SIP_HDR_TO])
		return -EINVAL;
	put_cstr(&o, "ACK ");
	put_str(&o, invite->ruri_raw);
	put_cstr(&o, " SIP/2.0\r\n");
	put_top_via(&o, invite);
	put_cstr(&o, "Max-Forwards: 70\r\n");
	put_headers(&o, invite, SIP_HDR_ROUTE);
	put_headers(&o, invite, SIP_HDR_FROM);
	put_cstr(&o, "To: ");
	put_str(&o, resp->hdr_first[SIP_HDR_TO]->value);
	put_cstr(&o, "\r\nCall-ID: ");
	put_str(&o, invite->call_id);
	put_cstr(&o, "\r\nCSeq: ");
	put_uint(&o, invite->cseq);
	put_cstr(&o, " ACK\r\nContent-Length: 0\r\n\r\n");
	return o.overflow ? -EMSGSIZE : (int)o.len;
}

int sip_cancel_build(const struct sip_msg *invite, struct str reason, char *buf, size_t cap)
{
	struct out o = {buf, 0, cap, false};
	if (!invite->via)
		return -EINVAL;
	put_cstr(&o, "CANCEL ");
	put_str(&o, invite->ruri_raw);
	put_cstr(&o, " SIP/2.0\r\n");
	put_top_via(&o, invite);
	put_cstr(&o, "Max-Forwards: 70\r\n");
	put_headers(&o, invite, SIP_HDR_ROUTE);
	put_headers(&o, invite, SIP_HDR_FROM);
	put_headers(&o, invite, SIP_HDR_TO);
	put_cstr(&o, "Call-ID: ");
	put_str(&o, invite->call_id);
	put_cstr(&o, "\r\nCSeq: ");
	put_uint(&o, invite->cseq);
	put_cstr(&o, " CANCEL\r\n");
	if (reason.len) {
		put_cstr(&o, "Reason: ");
		put_str(&o, reason);
		put_cstr(&o, "\r\n");
	}
	put_cstr(&o, "Content-Length: 0\r\n\r\n");
	return o.overflow ? -EMSGSIZE : (int)o.len;
}

int sip_bad_request_build(const char *raw, size_t len, const char *why, char *buf, size_t cap)
{
	struct out o = {buf, 0, cap, false};
	if (len < 8 || str_case_has_prefix(str_make(raw, len), "SIP/"))
		return 0;
	const char *lf = memchr(raw, '\n', len);
	if (!lf)
		return 0;
	put_cstr(&o, "SIP/2.0 400 Bad Request\r\n");
	bool via = false;
	size_t p = (size_t)(lf - raw) + 1;
	while (p < len) {
		const char *e = memchr(raw + p, '\n', len - p);
		size_t le = e ? (size_t)(e - raw) : len;
		size_t ce = le > p && raw[le - 1] == '\r' ? le - 1 : le;
		if (ce == p)
			break; /* end of headers */
		size_t i = p;
		while (i < ce && raw[i] != ':' && raw[i] != ' ' && raw[i] != '\t')
			i++;
		enum sip_hdr_id id = sip_hdr_id_from_name(str_make(raw + p, i - p));
		if (id == SIP_HDR_VIA || id == SIP_HDR_FROM || id == SIP_HDR_TO ||
		    id == SIP_HDR_CALL_ID || id == SIP_HDR_CSEQ) {
			/* Only single, unfolded, printable lines are echoed. */
			bool clean = le + 1 >= len || (raw[le + 1] != ' ' && raw[le + 1] != '\t');
			for (size_t k = p; k < ce && clean; k++)
				clean = (unsigned char)raw[k] >= 0x20 && raw[k] != 0x7f;
			if (clean) {
				put(&o, raw + p, ce - p);
				put_cstr(&o, "\r\n");
				via |= id == SIP_HDR_VIA;
			}
		}
		p = le + 1;
	}
	if (!via)
		return 0;
	put_cstr(&o, "Warning: 399 sipsd \"");
	for (const char *c = why; c && *c; c++)
		if (*c != '"' && *c != '\\' && (unsigned char)*c >= 0x20)
			put(&o, c, 1);
	put_cstr(&o, "\"\r\nContent-Length: 0\r\n\r\n");
	return o.overflow ? -EMSGSIZE : (int)o.len;
}
