/* uri.c: URI parsing and comparison (RFC 3261 §19.1, §25.1; RFC 5954 IPv6). */
#include "sip/uri.h"

#include <arpa/inet.h>
#include <errno.h>

#include "base/limits.h"
#include "sip/chars.h"

static int fail(size_t *err_off, const char **reason, size_t off, const char *why)
{
	if (err_off)
		*err_off = off;
	if (reason)
		*reason = why;
	return -EBADMSG;
}

/* Checks `s` against a class, allowing %HH escapes. Returns the offset of
 * the first bad byte or `s.len` when all are good. */
static size_t scan_escaped(struct str s, uint16_t cls)
{
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.s[i];
		if (c == '%') {
			if (i + 2 >= s.len || !ascii_is_hex(s.s[i + 1]) || !ascii_is_hex(s.s[i + 2]))
				return i;
			i += 2;
			continue;
		}
		if (!sip_cc(c, cls))
			return i;
	}
	return s.len;
}

static bool ipv4_parse(struct str s)
{
	unsigned parts = 0, digits = 0, value = 0;
	for (size_t i = 0; i < s.len; i++) {
		char c = s.s[i];
		if (ascii_is_digit(c)) {
			if (++digits > 3)
				return false;
			value = value * 10 + (unsigned)(c - '0');
			if (value > 255)
				return false;
		} else if (c == '.') {
			if (digits == 0)
				return false;
			parts++;
			digits = 0;
			value = 0;
		} else {
			return false;
		}
	}
	return digits > 0 && parts == 3;
}

/* hostname = *( domainlabel "." ) toplabel [ "." ]; labels of alphanum and
 * '-', not starting or ending with '-'. '_' is tolerated (seen in practice). */
static bool hostname_valid(struct str s, size_t *bad)
{
	size_t label_len = 0;
	if (s.len == 0 || s.len > 255) {
		*bad = 0;
		return false;
	}
	for (size_t i = 0; i < s.len; i++) {
		char c = s.s[i];
		if (c == '.') {
			if (label_len == 0 || s.s[i - 1] == '-') {
				*bad = i;
				return false;
			}
			label_len = 0;
			continue;
		}
		if (!sip_cc((unsigned char)c, SIP_CC_HOST)) {
			*bad = i;
			return false;
		}
		if (c == '-' && label_len == 0) {
			*bad = i;
			return false;
		}
		if (++label_len > 63) {
			*bad = i;
			return false;
		}
	}
	return true;
}

/* Host bytes for sip_host_fast: flags, 0 for a byte that ends a host. */
enum { HB_ALPHA = 1, HB_DIGIT = 2, HB_HYPHEN = 4, HB_DOT = 8 };
static const unsigned char host_byte[256] = {
	['a' ... 'z'] = HB_ALPHA, ['A' ... 'Z'] = HB_ALPHA, ['_'] = HB_ALPHA,
	['0' ... '9'] = HB_DIGIT, ['-'] = HB_HYPHEN,      ['.'] = HB_DOT,
};

/* One pass over a host name or IPv4 address at the start of `in`, up to
 * the first byte that cannot be in one (or the end), for the common case:
 * stores its end and type and returns true when it is valid; the caller
 * checks the byte that ended it. Returns false for anything else (a fault,
 * digits and dots that are no IPv4 address, a top label starting with a
 * digit): the caller then takes the slower path, which rejects it with the
 * offset of the fault. It accepts exactly what ipv4_parse and
 * hostname_valid accept (labels of at most 63 bytes, none empty, none
 * starting or ending with '-' before a '.', at most 255 bytes). */
bool sip_host_fast(struct str in, size_t *end, enum sip_host_type *type)
{
	const unsigned char *s = (const unsigned char *)in.s, *p = s, *e = s + in.len;
	const unsigned char *label = s, *prev_label = s;
	for (;;) {
		while (p < e && (host_byte[*p] & (HB_ALPHA | HB_DIGIT)))
			p++;
		if (p == e)
			break;
		if (*p == '-') {
			if (p == label)
				return false;
			p++;
		} else if (*p == '.') {
			if (p == label || p[-1] == '-' || p - label > 63)
				return false;
			prev_label = label;
			label = ++p;
		} else {
			break;
		}
	}
	size_t n = (size_t)(p - s);
	if (n == 0 || n > 255 || p - label > 63)
		return false;
	/* A top label (the last before an optional final '.') starting with a
	 * digit: an IPv4 address, or nothing valid. */
	if (ascii_is_digit((char)*(label < p ? label : prev_label))) {
		if (!ipv4_parse(str_make(in.s, n)))
			return false;
		*type = SIP_HOST_IPV4;
	} else {
		*type = SIP_HOST_NAME;
	}
	*end = n;
	return true;
}

int sip_hostport_parse(struct str in, struct str *host, enum sip_host_type *type, uint16_t *port,
		       bool *has_port, size_t *err_off)
{
	size_t i;
	*has_port = false;
	*port = 0;
	if (in.len == 0)
		return fail(err_off, NULL, 0, "empty host");
	if (in.s[0] == '[') {
		long close = str_index(in, ']');
		char buf[64];
		unsigned char addr[16];
		if (close < 0)
			return fail(err_off, NULL, 0, "unterminated IPv6 reference");
		if ((size_t)close - 1 >= sizeof(buf) || close < 3)
			return fail(err_off, NULL, 0, "bad IPv6 reference");
		/* RFC 5954: the reference must be a real IPv6 address, which rules
		 * out the three-colon form RFC 3261's ABNF let through. */
		str_to_cbuf(str_make(in.s + 1, (size_t)close - 1), buf, sizeof(buf));
		if (inet_pton(AF_INET6, buf, addr) != 1)
			return fail(err_off, NULL, 1, "bad IPv6 address");
		*host = str_make(in.s, (size_t)close + 1);
		*type = SIP_HOST_IPV6;
		i = (size_t)close + 1;
	} else if (sip_host_fast(in, &i, type) && (i == in.len || in.s[i] == ':')) {
		*host = str_make(in.s, i);
	} else {
		for (i = 0; i < in.len && in.s[i] != ':'; i++)
			;
		struct str h = str_make(in.s, i);
		size_t bad = 0;
		if (ipv4_parse(h)) {
			*type = SIP_HOST_IPV4;
		} else if (hostname_valid(h, &bad)) {
			/* A name whose last label starts with a digit is an
			 * invalid IPv4 address, not a host name (toplabel). */
			size_t last = h.len;
			if (h.s[last - 1] == '.')
				last--;
			size_t start = last;
			while (start > 0 && h.s[start - 1] != '.')
				start--;
			if (start < last && ascii_is_digit(h.s[start]))
				return fail(err_off, NULL, start, "bad host");
			*type = SIP_HOST_NAME;
		} else {
			return fail(err_off, NULL, bad, "bad host");
		}
		*host = h;
	}
	if (i == in.len)
		return 0;
	if (in.s[i] != ':')
		return fail(err_off, NULL, i, "bad host");
	uint64_t v;
	if (str_to_u64(str_make(in.s + i + 1, in.len - i - 1), 65535, &v) < 0)
		return fail(err_off, NULL, i + 1, "bad port");
	*port = (uint16_t)v;
	*has_port = true;
	return 0;
}

/* Scans a parameter name or value from p->s[*i]: unreserved, param-unreserved
 * and %HH escapes. Returns false at a byte that is none of these and not
 * '=' or ';' (the caller then takes the general path). */
static inline bool uri_param_span(struct str p, size_t *i)
{
	size_t k = *i;
	for (; k < p.len; k++) {
		unsigned char c = (unsigned char)p.s[k];
		if (sip_cc(c, SIP_CC_UNRESERVED | SIP_CC_PARAM_UNRES))
			continue;
		if (c == '%' && k + 2 < p.len && ascii_is_hex(p.s[k + 1]) && ascii_is_hex(p.s[k + 2])) {
			k += 2;
			continue;
		}
		if (c != '=' && c != ';')
			return false;
		break;
	}
	*i = k;
	return true;
}

/* The common case of uri_params_validate in one pass: true when `p` is
 * valid. False means "not sure": the general path decides and says why. */
static bool uri_params_fast(struct str p)
{
	struct str seen[SIPS_MAX_PARAMS];
	unsigned nseen = 0;
	size_t i = 0;
	while (i < p.len) {
		if (p.s[i] != ';')
			return false;
		size_t start = ++i;
		if (!uri_param_span(p, &i) || i == start)
			return false;
		struct str name = str_make(p.s + start, i - start);
		for (unsigned k = 0; k < nseen; k++)
			if (seen[k].len == name.len && str_case_eq(seen[k], name))
				return false;
		if (nseen == SIPS_MAX_PARAMS)
			return false;
		seen[nseen++] = name;
		if (i < p.len && p.s[i] == '=') {
			size_t v = ++i;
			if (!uri_param_span(p, &i) || i == v || (i < p.len && p.s[i] == '='))
				return false;
		}
	}
	return true;
}

/* Validates ";name[=value]" URI parameters (RFC 3261 §19.1.1 uri-parameters). */
static int uri_params_validate(struct str p, size_t base, size_t *err_off, const char **reason)
{
	if (uri_params_fast(p))
		return 0;
	size_t i = 0;
	struct str seen[SIPS_MAX_PARAMS];
	unsigned nseen = 0;
	while (i < p.len) {
		if (p.s[i] != ';')
			return fail(err_off, reason, base + i, "bad URI parameter");
		i++;
		size_t start = i;
		while (i < p.len && p.s[i] != ';')
			i++;
		struct str one = str_make(p.s + start, i - start);
		long eq = str_index(one, '=');
		struct str name = eq < 0 ? one : str_make(one.s, (size_t)eq);
		if (name.len == 0)
			return fail(err_off, reason, base + start, "empty URI parameter name");
		/* §19.1.1: a parameter name appears at most once. */
		for (unsigned k = 0; k < nseen; k++)
			if (seen[k].len == name.len && str_case_eq(seen[k], name))
				return fail(err_off, reason, base + start, "repeated URI parameter");
		if (nseen == SIPS_MAX_PARAMS)
			return fail(err_off, reason, base + start, "too many URI parameters");
		seen[nseen++] = name;
		size_t bad = scan_escaped(name, SIP_CC_UNRESERVED | SIP_CC_PARAM_UNRES);
		if (bad != name.len)
			return fail(err_off, reason, base + start + bad, "bad character in URI parameter");
		if (eq >= 0) {
			struct str val = str_make(one.s + eq + 1, one.len - (size_t)eq - 1);
			if (val.len == 0)
				return fail(err_off, reason, base + start + (size_t)eq, "empty URI parameter value");
			bad = scan_escaped(val, SIP_CC_UNRESERVED | SIP_CC_PARAM_UNRES);
			if (bad != val.len)
				return fail(err_off, reason, base + start + (size_t)eq + 1 + bad,
					    "bad character in URI parameter");
		}
	}
	return 0;
}

/* Validates "hname=hvalue *( & hname=hvalue )" (RFC 3261 §19.1.1 headers). */
static int uri_headers_validate(struct str h, size_t base, size_t *err_off, const char **reason)
{
	size_t i = 0;
	if (h.len == 0)
		return fail(err_off, reason, base, "empty URI headers");
	while (i <= h.len) {
		size_t start = i;
		while (i < h.len && h.s[i] != '&')
			i++;
		struct str one = str_make(h.s + start, i - start);
		long eq = str_index(one, '=');
		if (eq <= 0)
			return fail(err_off, reason, base + start, "bad URI header");
		size_t bad = scan_escaped(str_make(one.s, (size_t)eq), SIP_CC_UNRESERVED | SIP_CC_HNV_UNRES);
		if (bad != (size_t)eq)
			return fail(err_off, reason, base + start + bad, "bad character in URI header");
		struct str val = str_make(one.s + eq + 1, one.len - (size_t)eq - 1);
		bad = scan_escaped(val, SIP_CC_UNRESERVED | SIP_CC_HNV_UNRES);
		if (bad != val.len)
			return fail(err_off, reason, base + start + (size_t)eq + 1 + bad,
				    "bad character in URI header");
		if (i == h.len)
			break;
		i++;
	}
	return 0;
}

/* The common hostport of a SIP URI in one pass: a host name or IPv4
 * address, an optional port of 1-5 digits up to 65535, then ';', '?' or
 * the end. Fills uri->host, host_type, port, has_port and moves *pos past
 * it; returns false (nothing to trust) for anything else, which the caller
 * hands to sip_hostport_parse. */
static bool uri_hostport_fast(struct str rest, size_t *pos, struct sip_uri *uri)
{
	size_t i = *pos, hend;
	if (i >= rest.len || rest.s[i] == '[' ||
	    !sip_host_fast(str_make(rest.s + i, rest.len - i), &hend, &uri->host_type))
		return false;
	uri->host = str_make(rest.s + i, hend);
	i += hend;
	if (i < rest.len && rest.s[i] != ':' && rest.s[i] != ';' && rest.s[i] != '?')
		return false;
	if (i < rest.len && rest.s[i] == ':') {
		size_t d = ++i;
		unsigned v = 0;
		while (i < rest.len && ascii_is_digit(rest.s[i]) && i - d < 5)
			v = v * 10 + (unsigned)(rest.s[i++] - '0');
		if (i == d || v > 65535 || (i < rest.len && rest.s[i] != ';' && rest.s[i] != '?'))
			return false;
		uri->port = (uint16_t)v;
		uri->has_port = true;
	}
	*pos = i;
	return true;
}

static int sip_uri_parse_sip(struct str in, size_t off, struct sip_uri *uri, size_t *err_off,
			     const char **reason)
{
	struct str rest = str_make(in.s + off, in.len - off);
	/* userinfo ends at the first '@': neither host, parameters nor headers
	 * may hold an unescaped '@', while the user part may hold ';', '?' and
	 * '/' (RFC 3261 §25.1 user-unreserved, RFC 4475 §3.1.1.9). */
	long at = str_index(rest, '@');
	size_t hp_start = 0;
	size_t user_end = 0;
	if (at > 0 && (user_end = scan_escaped(str_make(rest.s, (size_t)at),
					       SIP_CC_UNRESERVED | SIP_CC_USER_UNRES)) == (size_t)at) {
		/* The common userinfo: a valid user and no password, checked in
		 * the one scan that looked for its end. */
		uri->user = str_make(rest.s, (size_t)at);
		uri->has_user = true;
		hp_start = (size_t)at + 1;
	} else if (at >= 0) {
		struct str userinfo = str_make(rest.s, (size_t)at);
		long colon = str_index(userinfo, ':');
		uri->user = colon < 0 ? userinfo : str_make(userinfo.s, (size_t)colon);
		uri->has_user = true;
		if (uri->user.len == 0)
			return fail(err_off, reason, off, "empty user part");
		size_t bad = scan_escaped(uri->user, SIP_CC_UNRESERVED | SIP_CC_USER_UNRES);
		if (bad != uri->user.len)
			return fail(err_off, reason, off + bad, "bad character in user part");
		if (colon >= 0) {
			uri->password = str_make(userinfo.s + colon + 1, userinfo.len - (size_t)colon - 1);
			uri->has_password = true;
			bad = scan_escaped(uri->password, SIP_CC_UNRESERVED | SIP_CC_PASS_EXTRA);
			if (bad != uri->password.len)
				return fail(err_off, reason, off + (size_t)colon + 1 + bad,
					    "bad character in password");
		}
		hp_start = (size_t)at + 1;
	}
	size_t i = hp_start;
	if (!uri_hostport_fast(rest, &i, uri)) {
		i = hp_start;
		if (i < rest.len && rest.s[i] == '[') {
			while (i < rest.len && rest.s[i] != ']')
				i++;
		}
		while (i < rest.len && rest.s[i] != ';' && rest.s[i] != '?')
			i++;
		size_t bad = 0;
		if (sip_hostport_parse(str_make(rest.s + hp_start, i - hp_start), &uri->host,
				       &uri->host_type, &uri->port, &uri->has_port, &bad) < 0)
			return fail(err_off, reason, off + hp_start + bad, "bad host or port in URI");
	}
	size_t params_start = i;
	const char *q = i < rest.len ? memchr(rest.s + i, '?', rest.len - i) : NULL;
	i = q ? (size_t)(q - rest.s) : rest.len;
	uri->params = str_make(rest.s + params_start, i - params_start);
	int rc = uri_params_validate(uri->params, off + params_start, err_off, reason);
	if (rc < 0)
		return rc;
	if (i < rest.len) {
		uri->headers = str_make(rest.s + i + 1, rest.len - i - 1);
		rc = uri_headers_validate(uri->headers, off + i + 1, err_off, reason);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int sip_uri_parse(struct str in, struct sip_uri *uri, size_t *err_off, const char **reason)
{
	memset(uri, 0, sizeof(*uri));
	uri->raw = in;
	if (in.len == 0)
		return fail(err_off, reason, 0, "empty URI");
	if (in.len > SIPS_MAX_URI)
		return fail(err_off, reason, SIPS_MAX_URI, "URI too long");
	size_t i = 0;
	if (!ascii_is_alpha(in.s[0]))
		return fail(err_off, reason, 0, "URI scheme must start with a letter");
	while (i < in.len && sip_cc((unsigned char)in.s[i], SIP_CC_SCHEME))
		i++;
	if (i == in.len || in.s[i] != ':')
		return fail(err_off, reason, i, "URI without scheme");
	uri->scheme = str_make(in.s, i);
	i++;
	uri->scheme_id = SIP_SCHEME_OTHER;
	if (i == 4 || i == 5) {
		/* Scheme bytes are alphanumeric or + - .: OR 0x20 folds only
		 * letters onto the letters compared here. */
		char c0 = (char)(in.s[0] | 0x20), c1 = (char)(in.s[1] | 0x20),
		     c2 = (char)(in.s[2] | 0x20);
		if (c0 == 's' && c1 == 'i' && c2 == 'p')
			uri->scheme_id = i == 4 ? SIP_SCHEME_SIP
				       : (in.s[3] | 0x20) == 's' ? SIP_SCHEME_SIPS
								  : SIP_SCHEME_OTHER;
		else if (i == 4 && c0 == 't' && c1 == 'e' && c2 == 'l')
			uri->scheme_id = SIP_SCHEME_TEL;
	}
	uri->opaque = str_make(in.s + i, in.len - i);
	if (uri->scheme_id == SIP_SCHEME_SIP || uri->scheme_id == SIP_SCHEME_SIPS)
		return sip_uri_parse_sip(in, i, uri, err_off, reason);
	if (uri->opaque.len == 0)
		return fail(err_off, reason, i, "empty URI after scheme");
	size_t bad = scan_escaped(uri->opaque, SIP_CC_UNRESERVED | SIP_CC_URIC_OPAQUE);
	if (bad != uri->opaque.len)
		return fail(err_off, reason, i + bad, "bad character in URI");
	return 0;
}

static bool is_lws_char(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool sip_params_next(struct str *cursor, struct sip_param *p)
{
	if (cursor->len == 0)
		return false; /* also for STR_NULL: no pointer arithmetic on NULL */
	const char *s = cursor->s, *end = cursor->s + cursor->len;
	while (s < end && (is_lws_char(*s) || *s == ';'))
		s++;
	if (s >= end) {
		cursor->s = end;
		cursor->len = 0;
		return false;
	}
	const char *name = s;
	while (s < end && *s != '=' && *s != ';' && !is_lws_char(*s))
		s++;
	p->name = str_make(name, (size_t)(s - name));
	p->value = STR_NULL;
	p->has_value = false;
	while (s < end && is_lws_char(*s))
		s++;
	if (s < end && *s == '=') {
		s++;
		while (s < end && is_lws_char(*s))
			s++;
		const char *v = s;
		if (s < end && *s == '"') {
			s++;
			while (s < end && *s != '"') {
				if (*s == '\\' && s + 1 < end)
					s++;
				s++;
			}
			if (s < end)
				s++;
		} else {
			while (s < end && *s != ';' && !is_lws_char(*s))
				s++;
		}
		p->value = str_make(v, (size_t)(s - v));
		p->has_value = true;
	}
	cursor->s = s;
	cursor->len = (size_t)(end - s);
	return true;
}

bool sip_params_find(struct str params, const char *name, struct str *value)
{
	struct sip_param p;
	struct str cur = params;
	while (sip_params_next(&cur, &p)) {
		if (str_case_eq_cstr(p.name, name)) {
			if (value)
				*value = p.value;
			return true;
		}
	}
	return false;
}

uint16_t sip_uri_default_port(const struct sip_uri *uri)
{
	return uri->scheme_id == SIP_SCHEME_SIPS ? 5061 : 5060;
}

/* RFC 3261 §19.1.4: an escaped character other than a reserved one equals
 * the character itself. Decodes into `out`, keeping reserved escapes as
 * upper-case %HH. Returns the decoded length or -1 on overflow. */
static long uri_normalise(struct str in, char *out, size_t cap, bool fold_case)
{
	size_t n = 0;
	for (size_t i = 0; i < in.len; i++) {
		char c = in.s[i];
		if (c == '%' && i + 2 < in.len && ascii_is_hex(in.s[i + 1]) &&
		    ascii_is_hex(in.s[i + 2])) {
			char d = (char)(ascii_hex_value(in.s[i + 1]) * 16 + ascii_hex_value(in.s[i + 2]));
			i += 2;
			if (sip_cc((unsigned char)d, SIP_CC_RESERVED)) {
				static const char hex[] = "0123456789ABCDEF";
				if (n + 3 > cap)
					return -1;
				out[n++] = '%';
				out[n++] = hex[((unsigned char)d) >> 4];
				out[n++] = hex[((unsigned char)d) & 15];
				continue;
			}
			c = d;
		}
		if (n + 1 > cap)
			return -1;
		out[n++] = fold_case ? ascii_lower(c) : c;
	}
	return (long)n;
}

static bool component_equal(struct str a, struct str b, bool fold_case)
{
	char na[SIPS_MAX_URI], nb[SIPS_MAX_URI];
	long la = uri_normalise(a, na, sizeof(na), fold_case);
	long lb = uri_normalise(b, nb, sizeof(nb), fold_case);
	return la >= 0 && la == lb && memcmp(na, nb, (size_t)la) == 0;
}

/* The parameters that must match when present in either URI. */
static bool param_must_match(struct str name)
{
	/* §19.1.4: user, ttl, method and maddr; its examples add transport
	 * ("can resolve to different transports"). */
	return str_case_eq_cstr(name, "user") || str_case_eq_cstr(name, "ttl") ||
	       str_case_eq_cstr(name, "method") || str_case_eq_cstr(name, "maddr") ||
	       str_case_eq_cstr(name, "transport");
}

static bool params_find_normalised(struct str params, struct str name, struct sip_param *out)
{
	struct sip_param p;
	struct str cur = params;
	while (sip_params_next(&cur, &p))
		if (component_equal(p.name, name, true)) {
			*out = p;
			return true;
		}
	return false;
}

static bool uri_params_equal(struct str a, struct str b)
{
	struct sip_param p, q;
	struct str cur = a;
	while (sip_params_next(&cur, &p)) {
		if (params_find_normalised(b, p.name, &q)) {
			if (p.has_value != q.has_value || !component_equal(p.value, q.value, true))
				return false;
		} else if (param_must_match(p.name)) {
			return false;
		}
	}
	cur = b;
	while (sip_params_next(&cur, &p))
		if (param_must_match(p.name) && !params_find_normalised(a, p.name, &q))
			return false;
	return true;
}

/* Headers: every header of either URI must be in the other with an equal
 * value (§19.1.4: "never ignored"). */
static bool uri_headers_subset(struct str a, struct str b)
{
	size_t i = 0;
	while (i < a.len) {
		size_t start = i;
		while (i < a.len && a.s[i] != '&')
			i++;
		struct str one = str_make(a.s + start, i - start);
		long eq = str_index(one, '=');
		struct str name = str_make(one.s, eq < 0 ? one.len : (size_t)eq);
		struct str val = eq < 0 ? STR_NULL : str_make(one.s + eq + 1, one.len - (size_t)eq - 1);
		bool found = false;
		size_t j = 0;
		while (j < b.len && !found) {
			size_t s2 = j;
			while (j < b.len && b.s[j] != '&')
				j++;
			struct str o2 = str_make(b.s + s2, j - s2);
			long e2 = str_index(o2, '=');
			struct str n2 = str_make(o2.s, e2 < 0 ? o2.len : (size_t)e2);
			struct str v2 = e2 < 0 ? STR_NULL : str_make(o2.s + e2 + 1, o2.len - (size_t)e2 - 1);
			if (component_equal(name, n2, true) && component_equal(val, v2, false))
				found = true;
			j++;
		}
		if (!found)
			return false;
		i++;
	}
	return true;
}

bool sip_uri_equal(const struct sip_uri *a, const struct sip_uri *b)
{
	if (a->scheme_id != b->scheme_id)
		return false;
	if (a->scheme_id != SIP_SCHEME_SIP && a->scheme_id != SIP_SCHEME_SIPS)
		return str_case_eq(a->scheme, b->scheme) && component_equal(a->opaque, b->opaque, true);
	if (a->has_user != b->has_user || a->has_password != b->has_password)
		return false;
	if (!component_equal(a->user, b->user, false) || !component_equal(a->password, b->password, false))
		return false;
	if (!str_case_eq(a->host, b->host)) {
		/* IPv6 references may be written differently. */
		if (a->host_type != SIP_HOST_IPV6 || b->host_type != SIP_HOST_IPV6)
			return false;
		char ba[64], bb[64];
		unsigned char xa[16], xb[16];
		str_to_cbuf(str_make(a->host.s + 1, a->host.len - 2), ba, sizeof(ba));
		str_to_cbuf(str_make(b->host.s + 1, b->host.len - 2), bb, sizeof(bb));
		if (inet_pton(AF_INET6, ba, xa) != 1 || inet_pton(AF_INET6, bb, xb) != 1 ||
		    memcmp(xa, xb, 16) != 0)
			return false;
	}
	if (a->has_port != b->has_port || a->port != b->port)
		return false;
	if (!uri_params_equal(a->params, b->params))
		return false;
	return uri_headers_subset(a->headers, b->headers) && uri_headers_subset(b->headers, a->headers);
}
