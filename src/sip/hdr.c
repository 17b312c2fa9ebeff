/* hdr.c: header names, Via lists and name-addr lists (RFC 3261 §7.3, §20, §25.1). */
#include <errno.h>
#include <pthread.h>

#include "sip/chars.h"
#include "sip/msg.h"

struct hdr_name {
	const char *full;
	char compact; /* 0 when none (RFC 3261 §7.3.3 and later RFCs) */
	enum sip_hdr_id id;
};

static const struct hdr_name hdr_names[] = {
	{"Via", 'v', SIP_HDR_VIA},
	{"From", 'f', SIP_HDR_FROM},
	{"To", 't', SIP_HDR_TO},
	{"Call-ID", 'i', SIP_HDR_CALL_ID},
	{"CSeq", 0, SIP_HDR_CSEQ},
	{"Max-Forwards", 0, SIP_HDR_MAX_FORWARDS},
	{"Content-Length", 'l', SIP_HDR_CONTENT_LENGTH},
	{"Route", 0, SIP_HDR_ROUTE},
	{"Record-Route", 0, SIP_HDR_RECORD_ROUTE},
	{"Contact", 'm', SIP_HDR_CONTACT},
	{"Expires", 0, SIP_HDR_EXPIRES},
	{"Content-Type", 'c', SIP_HDR_CONTENT_TYPE},
	{"Content-Encoding", 'e', SIP_HDR_CONTENT_ENCODING},
	{"Subject", 's', SIP_HDR_SUBJECT},
	{"Supported", 'k', SIP_HDR_SUPPORTED},
	{"Require", 0, SIP_HDR_REQUIRE},
	{"Proxy-Require", 0, SIP_HDR_PROXY_REQUIRE},
	{"Unsupported", 0, SIP_HDR_UNSUPPORTED},
	{"Allow", 0, SIP_HDR_ALLOW},
	{"Accept", 0, SIP_HDR_ACCEPT},
	{"Date", 0, SIP_HDR_DATE},
	{"Authorization", 0, SIP_HDR_AUTHORIZATION},
	{"Proxy-Authorization", 0, SIP_HDR_PROXY_AUTHORIZATION},
	{"WWW-Authenticate", 0, SIP_HDR_WWW_AUTHENTICATE},
	{"Proxy-Authenticate", 0, SIP_HDR_PROXY_AUTHENTICATE},
	{"P-Asserted-Identity", 0, SIP_HDR_P_ASSERTED_IDENTITY},
	{"Path", 0, SIP_HDR_PATH},
	{"Warning", 0, SIP_HDR_WARNING},
	{"Retry-After", 0, SIP_HDR_RETRY_AFTER},
	{"Min-Expires", 0, SIP_HDR_MIN_EXPIRES},
	{"Flow-Timer", 0, SIP_HDR_FLOW_TIMER},
	{"Event", 'o', SIP_HDR_EVENT},
	{"Refer-To", 'r', SIP_HDR_REFER_TO},
	{"Referred-By", 'b', SIP_HDR_REFERRED_BY},
	{"Allow-Events", 'u', SIP_HDR_ALLOW_EVENTS},
	{"Session-Expires", 'x', SIP_HDR_SESSION_EXPIRES},
	{"User-Agent", 0, SIP_HDR_USER_AGENT},
	{"Server", 0, SIP_HDR_SERVER},
};

#define HDR_NAME_COUNT (sizeof(hdr_names) / sizeof(hdr_names[0]))

/* Candidates by (length, lower-case first letter): at most two known names
 * share both (Call-ID/Contact, Referred-By/Retry-After, ...). Slots hold
 * the hdr_names index + 1, 0 when empty. */
#define HDR_MAX_NAME 24
#define HDR_SLOTS 2
static unsigned char hdr_slot[HDR_MAX_NAME][26][HDR_SLOTS];
static enum sip_hdr_id hdr_compact[26];
/* Lower-case names, zero-padded for word loads. */
static char hdr_lower[HDR_NAME_COUNT][HDR_MAX_NAME];
static pthread_once_t hdr_once = PTHREAD_ONCE_INIT;
static bool hdr_ready;

static void hdr_table_init(void)
{
	for (size_t i = 0; i < HDR_NAME_COUNT; i++) {
		size_t len = strlen(hdr_names[i].full);
		int b = ascii_lower(hdr_names[i].full[0]) - 'a';
		for (size_t j = 0; j < len && j < HDR_MAX_NAME; j++)
			hdr_lower[i][j] = (char)(hdr_names[i].full[j] | 0x20);
		if (len < HDR_MAX_NAME) {
			unsigned char *slot = hdr_slot[len][b];
			size_t k = 0;
			while (k < HDR_SLOTS && slot[k])
				k++;
			if (k < HDR_SLOTS) /* a third name would be left out: two is the most today */
				slot[k] = (unsigned char)(i + 1);
		}
		if (hdr_names[i].compact)
			hdr_compact[hdr_names[i].compact - 'a'] = hdr_names[i].id;
	}
	__atomic_store_n(&hdr_ready, true, __ATOMIC_RELEASE);
}

static uint64_t load64(const char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t load32(const char *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

/* `name` (n >= 2 token bytes) equals the lower-case `known` ignoring case. The
 * known names hold only letters and '-': OR 0x20 folds case exactly for
 * them, and no token byte can fake a match ('-' | 0x20 is '-', and the one
 * other byte that becomes '-', CR, is not a token character). */
static bool hdr_name_eq(const char *name, const char *known, size_t n)
{
	const uint64_t fold = 0x2020202020202020ull;
	if (n >= 8) {
		size_t i = 0;
		for (; i + 8 <= n; i += 8)
			if ((load64(name + i) | fold) != load64(known + i))
				return false;
		return i == n || (load64(name + n - 8) | fold) == load64(known + n - 8);
	}
	if (n >= 4)
		return (load32(name) | 0x20202020u) == load32(known) &&
		       (load32(name + n - 4) | 0x20202020u) == load32(known + n - 4);
	uint16_t a, b;
	memcpy(&a, name, 2);
	memcpy(&b, known, 2);
	return (a | 0x2020u) == b && (char)(name[n - 1] | 0x20) == known[n - 1];
}

enum sip_hdr_id sip_hdr_id_from_name(struct str name)
{
	if (name.len == 0 || !ascii_is_alpha(name.s[0]))
		return SIP_HDR_OTHER;
	if (!__atomic_load_n(&hdr_ready, __ATOMIC_ACQUIRE))
		pthread_once(&hdr_once, hdr_table_init);
	int b = ascii_lower(name.s[0]) - 'a';
	if (name.len == 1)
		return hdr_compact[b];
	if (name.len >= HDR_MAX_NAME)
		return SIP_HDR_OTHER;
	const unsigned char *slot = hdr_slot[name.len][b];
	for (unsigned k = 0; k < HDR_SLOTS && slot[k]; k++) {
		unsigned i = slot[k] - 1u;
		if (hdr_name_eq(name.s, hdr_lower[i], name.len))
			return hdr_names[i].id;
	}
	return SIP_HDR_OTHER;
}

const char *sip_hdr_canonical_name(enum sip_hdr_id id)
{
	for (size_t i = 0; i < HDR_NAME_COUNT; i++)
		if (hdr_names[i].id == id)
			return hdr_names[i].full;
	return NULL;
}

bool sip_is_token_char(unsigned char c)
{
	return sip_cc(c, SIP_CC_TOKEN);
}

/* ---- a cursor over one header value (folds are LWS) ---- */

struct cur {
	const char *base;
	const char *p;
	const char *end;
	const char *reason;
};

static inline bool is_ws(char c)
{
	return sip_cc((unsigned char)c, SIP_CC_LWS);
}

/* str_trim_lws by the character table, inline: three calls per entry. */
static inline struct str trim_lws(struct str a)
{
	while (a.len && is_ws(a.s[0])) {
		a.s++;
		a.len--;
	}
	while (a.len && is_ws(a.s[a.len - 1]))
		a.len--;
	return a;
}

static inline void skip_lws(struct cur *c)
{
	while (c->p < c->end && is_ws(*c->p))
		c->p++;
}

static bool at(const struct cur *c, char ch)
{
	return c->p < c->end && *c->p == ch;
}

static int cur_fail(struct cur *c, const char *why)
{
	c->reason = why;
	return -EBADMSG;
}

static struct str scan_token(struct cur *c)
{
	const char *s = c->p;
	while (c->p < c->end && sip_cc((unsigned char)*c->p, SIP_CC_TOKEN))
		c->p++;
	return str_make(s, (size_t)(c->p - s));
}

/* quoted-string = SWS DQUOTE *(qdtext / quoted-pair) DQUOTE (RFC 3261 §25.1). */
static int scan_quoted(struct cur *c, struct str *out)
{
	const char *s = c->p;
	c->p++; /* opening quote */
	while (c->p < c->end) {
		unsigned char ch = (unsigned char)*c->p;
		if (ch == '"') {
			c->p++;
			*out = str_make(s, (size_t)(c->p - s));
			return 0;
		}
		if (ch == '\\') {
			if (c->p + 1 >= c->end)
				break;
			unsigned char q = (unsigned char)c->p[1];
			if (q == '\n' || q == '\r' || q > 0x7f)
				return cur_fail(c, "bad quoted-pair");
			c->p += 2;
			continue;
		}
		if (ch < 0x20 && !is_ws((char)ch))
			return cur_fail(c, "control character in quoted string");
		if (ch == 0x7f)
			return cur_fail(c, "control character in quoted string");
		c->p++;
	}
	c->p = s;
	return cur_fail(c, "unterminated quoted string");
}

/* `name` (token bytes) equals the lower-case letters `lower` ignoring case:
 * OR 0x20 folds exactly the letters, and no other token byte becomes one. */
static inline bool param_is(struct str name, const char *lower, size_t len)
{
	if (name.len != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((char)(name.s[i] | 0x20) != lower[i])
			return false;
	return true;
}

/* The parameters a Via entry or an address keeps, noted while they are
 * scanned (one pass). Via: the last of a repeated name wins; address: the
 * first tag. */
static void param_note(struct sip_via *v, struct sip_addr *a, struct str name, struct str value)
{
	if (a) {
		if (!a->has_tag && param_is(name, "tag", 3)) {
			a->tag = value;
			a->has_tag = true;
		}
		return;
	}
	if (!v)
		return;
	switch (name.len) {
	case 3:
		if (param_is(name, "ttl", 3))
			v->ttl = value;
		break;
	case 5:
		if (param_is(name, "rport", 5)) {
			v->rport = value;
			v->has_rport = true;
		} else if (param_is(name, "maddr", 5)) {
			v->maddr = value;
		} else if (param_is(name, "alias", 5)) {
			v->has_alias = true;
		}
		break;
	case 6:
		if (param_is(name, "branch", 6)) {
			v->branch = value;
			v->has_branch = true;
		}
		break;
	case 8:
		if (param_is(name, "received", 8)) {
			v->received = value;
			v->has_received = true;
		}
		break;
	default:
		break;
	}
}

/* *( SEMI generic-param ), generic-param = token [ EQUAL gen-value ],
 * gen-value = token / host / quoted-string. Stops before ',' or the end.
 * Known parameters go to `v` or `a` (either may be NULL): a value is the
 * text after '=' as written (quotes kept), empty without '='. */
static int scan_generic_params(struct cur *c, struct str *out, struct sip_via *via,
			       struct sip_addr *addr)
{
	const char *s = c->p;
	skip_lws(c);
	while (at(c, ';')) {
		c->p++;
		skip_lws(c);
		struct str name = scan_token(c);
		if (name.len == 0)
			return cur_fail(c, "empty or bad parameter name");
		struct str value = STR_NULL;
		skip_lws(c);
		if (at(c, '=')) {
			c->p++;
			skip_lws(c);
			if (at(c, '"')) {
				if (scan_quoted(c, &value) < 0)
					return -EBADMSG;
			} else {
				const char *v = c->p;
				/* token, or a host: IPv6 references and the
				 * unbracketed received=IPv6 of RFC 5118 §4.5. */
				while (c->p < c->end && sip_cc((unsigned char)*c->p, SIP_CC_GEN_VALUE))
					c->p++;
				if (c->p == v)
					return cur_fail(c, "empty parameter value");
				value = str_make(v, (size_t)(c->p - v));
			}
		}
		param_note(via, addr, name, value);
		skip_lws(c);
	}
	/* Trim trailing LWS from the span. */
	const char *e = c->p;
	while (e > s && is_ws(e[-1]))
		e--;
	*out = str_make(s, (size_t)(e - s));
	return 0;
}

/* ---- Via (RFC 3261 §20.42) ---- */

/* sent-by in general (IPv6 references, and every fault with its offset):
 * the host as far as host bytes go, copied with the port for
 * sip_hostport_parse. `hs` is where the host starts (c->p). */
static int via_sent_by_parse(struct cur *c, struct sip_via *v, const char *hs)
{
	if (at(c, '[')) {
		while (c->p < c->end && *c->p != ']')
			c->p++;
		if (c->p < c->end)
			c->p++;
	} else {
		while (c->p < c->end && sip_cc((unsigned char)*c->p, SIP_CC_HOST))
			c->p++;
	}
	const char *he = c->p;
	skip_lws(c);
	char hp[300];
	size_t hl = (size_t)(he - hs);
	if (hl == 0 || hl >= sizeof(hp) - 8)
		return cur_fail(c, "bad Via sent-by host");
	memcpy(hp, hs, hl);
	if (at(c, ':')) {
		c->p++;
		skip_lws(c);
		const char *ps = c->p;
		while (c->p < c->end && ascii_is_digit(*c->p))
			c->p++;
		size_t pl = (size_t)(c->p - ps);
		if (pl == 0 || pl > 6)
			return cur_fail(c, "bad Via sent-by port");
		hp[hl++] = ':';
		memcpy(hp + hl, ps, pl);
		hl += pl;
	}
	size_t bad;
	struct str host;
	if (sip_hostport_parse(str_make(hp, hl), &host, &v->host_type, &v->port, &v->has_port, &bad) < 0)
		return cur_fail(c, "bad Via sent-by");
	v->host = str_make(hs, host.len); /* the host is a prefix of the copy */
	return 0;
}

static int via_parm_parse(struct cur *c, struct sip_via *v)
{
	skip_lws(c);
	const char *start = c->p;
	/* Nearly every Via starts "SIP/2.0/": taken at once, the same slices
	 * as the token-by-token path below gives. */
	if (c->end - c->p >= 8 && (load32(c->p) | 0x00202020u) == load32("sip/") &&
	    load32(c->p + 4) == load32("2.0/")) {
		v->protocol = str_make(c->p, 3);
		v->version = str_make(c->p + 4, 3);
		c->p += 8;
		skip_lws(c);
		goto transport;
	}
	v->protocol = scan_token(c);
	if (v->protocol.len == 0)
		return cur_fail(c, "bad Via protocol name");
	skip_lws(c);
	if (!at(c, '/'))
		return cur_fail(c, "bad Via sent-protocol");
	c->p++;
	skip_lws(c);
	v->version = scan_token(c);
	if (v->version.len == 0)
		return cur_fail(c, "bad Via protocol version");
	skip_lws(c);
	if (!at(c, '/'))
		return cur_fail(c, "bad Via sent-protocol");
	c->p++;
	skip_lws(c);
transport:
	v->transport = scan_token(c);
	if (v->transport.len == 0)
		return cur_fail(c, "bad Via transport");
	if (c->p >= c->end || !is_ws(*c->p))
		return cur_fail(c, "missing LWS before Via sent-by");
	skip_lws(c);
	/* sent-by = host [ COLON port ], COLON may carry LWS. */
	const char *hs = c->p;
	size_t fast_len;
	if (!at(c, '[') &&
	    sip_host_fast(str_make(c->p, (size_t)(c->end - c->p)), &fast_len, &v->host_type)) {
		/* The common case in one pass; what it does not take, the
		 * general path below decides. */
		c->p += fast_len;
		skip_lws(c);
		if (at(c, ':')) {
			c->p++;
			skip_lws(c);
			const char *ps = c->p;
			unsigned port = 0;
			for (; c->p < c->end && ascii_is_digit(*c->p); c->p++)
				if (port <= 65535)
					port = port * 10 + (unsigned)(*c->p - '0');
			size_t pl = (size_t)(c->p - ps);
			if (pl == 0 || pl > 6)
				return cur_fail(c, "bad Via sent-by port");
			if (port > 65535)
				return cur_fail(c, "bad Via sent-by");
			v->port = (uint16_t)port;
			v->has_port = true;
		}
		v->host = str_make(hs, fast_len);
	} else if (via_sent_by_parse(c, v, hs) < 0) {
		return -EBADMSG;
	}
	int rc = scan_generic_params(c, &v->params, v, NULL);
	if (rc < 0)
		return rc;
	v->raw = trim_lws(str_make(start, (size_t)(c->p - start)));
	return 0;
}

int sip_via_list_parse(struct str value, struct arena *arena, struct sip_via **first,
		       size_t *err_off, const char **reason)
{
	struct cur c = {value.s, value.s, value.s + value.len, NULL};
	struct sip_via **tail = first;
	int n = 0;
	*first = NULL;
	for (;;) {
		if (n >= SIPS_MAX_VIA) {
			*err_off = (size_t)(c.p - c.base);
			*reason = "too many Via entries";
			return -EMSGSIZE;
		}
		struct sip_via *v = arena_alloc(arena, sizeof(*v));
		if (!v) {
			*err_off = (size_t)(c.p - c.base);
			*reason = "message too complex";
			return -ENOMEM;
		}
		if (via_parm_parse(&c, v) < 0) {
			*err_off = (size_t)(c.p - c.base);
			*reason = c.reason;
			return -EBADMSG;
		}
		*tail = v;
		tail = &v->next;
		n++;
		skip_lws(&c);
		if (c.p == c.end)
			return n;
		if (*c.p != ',') {
			*err_off = (size_t)(c.p - c.base);
			*reason = "unexpected character after Via entry";
			return -EBADMSG;
		}
		c.p++;
	}
}

/* ---- name-addr / addr-spec (RFC 3261 §20.10, §25.1) ---- */

static int addr_parse(struct cur *c, struct sip_addr *a)
{
	skip_lws(c);
	const char *start = c->p;
	const char *uri_s, *uri_e;
	if (at(c, '"')) {
		if (scan_quoted(c, &a->display) < 0)
			return -EBADMSG;
		skip_lws(c);
		if (!at(c, '<'))
			return cur_fail(c, "quoted display name without <URI>");
	} else if (!at(c, '<')) {
		/* Either display-name tokens followed by '<' (LWS before '<'
		 * optional, RFC 4475 §3.1.1.6), or an addr-spec. */
		const char *t = c->p;
		while (c->p < c->end && (sip_cc((unsigned char)*c->p, SIP_CC_TOKEN) || is_ws(*c->p)))
			c->p++;
		if (at(c, '<') && c->p > t) {
			a->display = trim_lws(str_make(t, (size_t)(c->p - t)));
		} else {
			c->p = t;
		}
	}
	if (at(c, '<')) {
		c->p++;
		uri_s = c->p;
		const char *gt = memchr(c->p, '>', (size_t)(c->end - c->p));
		if (!gt) {
			c->p = c->end;
			return cur_fail(c, "missing > after URI");
		}
		c->p = gt;
		uri_e = c->p;
		c->p++;
		a->bracketed = true;
	} else {
		/* addr-spec: the URI ends at ';' (header params), ',' or LWS.
		 * A URI with ',', ';' or '?' must be bracketed (§20). */
		uri_s = c->p;
		while (c->p < c->end && !sip_cc((unsigned char)*c->p, SIP_CC_ADDR_END))
			c->p++;
		uri_e = c->p;
		if (memchr(uri_s, '?', (size_t)(uri_e - uri_s))) {
			c->p = uri_s;
			return cur_fail(c, "URI with headers must be enclosed in <>");
		}
	}
	size_t off;
	const char *why;
	if (sip_uri_parse(str_make(uri_s, (size_t)(uri_e - uri_s)), &a->uri, &off, &why) < 0) {
		c->p = uri_s + off;
		return cur_fail(c, why);
	}
	if (scan_generic_params(c, &a->params, NULL, a) < 0)
		return -EBADMSG;
	a->raw = trim_lws(str_make(start, (size_t)(c->p - start)));
	return 0;
}

int sip_addr_list_parse(struct str value, struct arena *arena, bool allow_star, bool *star,
			struct sip_addr **first, size_t *err_off, const char **reason)
{
	struct cur c = {value.s, value.s, value.s + value.len, NULL};
	struct sip_addr **tail = first;
	int n = 0;
	*first = NULL;
	if (star)
		*star = false;
	struct str trimmed = trim_lws(value);
	if (allow_star && trimmed.len == 1 && trimmed.s[0] == '*') {
		*star = true;
		return 0;
	}
	if (trimmed.len == 0) {
		*err_off = 0;
		*reason = "empty address header";
		return -EBADMSG;
	}
	for (;;) {
		if (n >= SIPS_MAX_ADDRS) {
			*err_off = (size_t)(c.p - c.base);
			*reason = "too many entries in address header";
			return -EMSGSIZE;
		}
		/* Zeroed but for the URI, which sip_uri_parse fills whole. */
		struct sip_addr *a = arena_alloc_raw(arena, sizeof(*a));
		if (a) {
			memset(a, 0, offsetof(struct sip_addr, uri));
			memset(&a->params, 0, sizeof(*a) - offsetof(struct sip_addr, params));
		}
		if (!a) {
			*err_off = (size_t)(c.p - c.base);
			*reason = "message too complex";
			return -ENOMEM;
		}
		if (addr_parse(&c, a) < 0) {
			*err_off = (size_t)(c.p - c.base);
			*reason = c.reason;
			return -EBADMSG;
		}
		*tail = a;
		tail = &a->next;
		n++;
		skip_lws(&c);
		if (c.p == c.end)
			return n;
		if (*c.p != ',') {
			*err_off = (size_t)(c.p - c.base);
			*reason = "unexpected character after address";
			return -EBADMSG;
		}
		c.p++;
	}
}
