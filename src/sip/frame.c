/* frame.c: stream framing by Content-Length with CRLF keep-alives. */
#include "sip/frame.h"

#include <errno.h>
#include <stdlib.h>

#include "sip/chars.h"

#define FRAMER_MIN_CAP 2048

void sip_framer_init(struct sip_framer *f, size_t max)
{
	memset(f, 0, sizeof(*f));
	f->max = max ? max : SIPS_STREAM_BUF_SIZE;
}

void sip_framer_fini(struct sip_framer *f)
{
	free(f->buf);
	f->buf = NULL;
	f->cap = f->len = f->off = f->scan = 0;
}

void sip_framer_shrink(struct sip_framer *f)
{
	if (f->off == f->len) {
		free(f->buf);
		f->buf = NULL;
		f->cap = f->len = f->off = f->scan = 0;
	}
}

int sip_framer_reserve(struct sip_framer *f, size_t want, char **dst, size_t *room)
{
	size_t pending = f->len - f->off;
	if (pending >= f->max)
		return -EMSGSIZE;
	if (want == 0)
		want = 1;
	if (want > f->max - pending)
		want = f->max - pending;
	/* Move pending bytes to the front before growing. */
	if (f->off && f->cap - f->len < want) {
		memmove(f->buf, f->buf + f->off, pending);
		f->scan -= f->off;
		f->len = pending;
		f->off = 0;
	}
	if (f->cap - f->len < want) {
		size_t need = f->len + want, cap = f->cap ? f->cap : FRAMER_MIN_CAP;
		while (cap < need)
			cap *= 2;
		if (cap > f->max)
			cap = f->max;
		char *nb = realloc(f->buf, cap);
		if (!nb)
			return -ENOMEM;
		f->buf = nb;
		f->cap = cap;
	}
	*dst = f->buf + f->len;
	*room = f->cap - f->len;
	return 0;
}

void sip_framer_commit(struct sip_framer *f, size_t n)
{
	f->len += n;
}

int sip_framer_feed(struct sip_framer *f, const void *data, size_t n)
{
	const char *p = data;
	while (n) {
		char *dst;
		size_t room;
		int rc = sip_framer_reserve(f, n, &dst, &room);
		if (rc < 0)
			return rc;
		size_t k = n < room ? n : room;
		memcpy(dst, p, k);
		sip_framer_commit(f, k);
		p += k;
		n -= k;
	}
	return 0;
}

static int ferr(struct sip_parse_error *err, size_t off, const char *why, int rc)
{
	if (err) {
		err->offset = off;
		err->reason = why;
		err->status = rc == -EMSGSIZE ? 413 : 400;
	}
	return rc;
}

/* Finds Content-Length in the header block [0, hlen) of `h`: the full
 * name or the compact "l" (RFC 3261 §7.3.3), at the start of a line that
 * is not a continuation. Returns 0 with *cl set, or a negative errno. */
static int find_content_length(const char *h, size_t hlen, uint64_t *cl,
			       struct sip_parse_error *err)
{
	bool found = false;
	size_t p = 0;
	/* Skip the start line. */
	const char *lf = memchr(h, '\n', hlen);
	if (!lf)
		return ferr(err, 0, "no end of start line", -EBADMSG);
	p = (size_t)(lf - h) + 1;
	while (p < hlen) {
		const char *e = memchr(h + p, '\n', hlen - p);
		size_t le = e ? (size_t)(e - h) : hlen;
		/* Only a name starting with c or l can be Content-Length (or
		 * its compact form): the other lines cost one test. */
		char c0 = (char)(h[p] | 0x20);
		if ((c0 == 'c' || c0 == 'l') && h[p] != ' ' && h[p] != '\t') {
			size_t i = p;
			while (i < le && sip_cc((unsigned char)h[i], SIP_CC_TOKEN))
				i++;
			struct str name = str_make(h + p, i - p);
			if (str_case_eq_cstr(name, "content-length") || str_case_eq_cstr(name, "l")) {
				while (i < le && (h[i] == ' ' || h[i] == '\t'))
					i++;
				if (i < le && h[i] == ':') {
					if (found)
						return ferr(err, p, "more than one Content-Length", -EBADMSG);
					found = true;
					/* The value may be folded onto following lines. */
					size_t ve = le;
					while (ve + 1 < hlen && (h[ve + 1] == ' ' || h[ve + 1] == '\t')) {
						const char *e2 = memchr(h + ve + 1, '\n', hlen - ve - 1);
						ve = e2 ? (size_t)(e2 - h) : hlen;
					}
					struct str v = str_trim_lws(str_make(h + i + 1, ve - i - 1));
					if (str_to_u64(v, UINT32_MAX, cl) < 0)
						return ferr(err, i + 1, "bad Content-Length", -EBADMSG);
				}
			}
		}
		p = le + 1;
	}
	if (!found)
		return ferr(err, hlen, "missing Content-Length on a stream", -EBADMSG);
	return 0;
}

int sip_framer_next(struct sip_framer *f, struct sip_frame *out, struct sip_parse_error *err)
{
	const char *b = f->buf + f->off;
	size_t n = f->len - f->off;
	if (n == 0)
		return 0;
	/* Keep-alives between messages (RFC 5626 §3.5.1, RFC 3261 §7.5). */
	if (b[0] == '\r' || b[0] == '\n') {
		if (n >= 4 && memcmp(b, "\r\n\r\n", 4) == 0) {
			f->off += 4;
			f->scan = f->off;
			f->after_crlf = 0;
			out->type = SIP_FRAME_PING;
			out->data = str_make(b, 4);
			return 1;
		}
		if (n >= 2 && b[0] == '\r' && b[1] != '\n') {
			/* A CR that starts no CRLF cannot start a message either. */
			return ferr(err, 1, "stray CR between messages", -EBADMSG);
		}
		if (n >= 2 && b[0] == '\r' && b[1] == '\n') {
			if (n < 4 && n > 2 && b[2] == '\r')
				return 0; /* maybe the start of a ping */
			f->off += 2;
			f->scan = f->off;
			out->data = str_make(b, 2);
			/* The second half of a ping split across reads. */
			out->type = f->after_crlf ? SIP_FRAME_PING : SIP_FRAME_CRLF;
			f->after_crlf = out->type == SIP_FRAME_CRLF;
			return 1;
		}
		if (b[0] == '\n') {
			/* A bare LF between messages is tolerated and skipped. */
			f->off += 1;
			f->scan = f->off;
			out->type = SIP_FRAME_CRLF;
			out->data = str_make(b, 1);
			return 1;
		}
		return 0; /* a lone CR so far */
	}
	f->after_crlf = 0;
	/* Search for the empty line that ends the headers, resuming where the
	 * previous call stopped (a slow sender costs linear, not quadratic). */
	size_t from = f->scan > f->off ? f->scan - f->off : 0;
	size_t hend = 0;
	for (size_t i = from; i < n; i++) {
		const char *lf = memchr(b + i, '\n', n - i);
		if (!lf)
			break;
		i = (size_t)(lf - b);
		if (i + 1 < n && b[i + 1] == '\n') {
			hend = i + 2;
			break;
		}
		if (i + 2 < n && b[i + 1] == '\r' && b[i + 2] == '\n') {
			hend = i + 3;
			break;
		}
	}
	if (!hend) {
		f->scan = f->off + (n >= 3 ? n - 3 : 0);
		if (n >= f->max || n > SIPS_MAX_MSG_SIZE)
			return ferr(err, n, "header block over the message size limit", -EMSGSIZE);
		return 0;
	}
	uint64_t cl;
	int rc = find_content_length(b, hend, &cl, err);
	if (rc < 0)
		return rc;
	if (hend + cl > SIPS_MAX_MSG_SIZE || hend + cl > f->max)
		return ferr(err, hend, "message over the size limit", -EMSGSIZE);
	if (n < hend + cl) {
		f->scan = f->off + (hend >= 3 ? hend - 3 : 0);
		return 0;
	}
	out->type = SIP_FRAME_MESSAGE;
	out->data = str_make(b, hend + cl);
	f->off += hend + cl;
	f->scan = f->off;
	return 1;
}
