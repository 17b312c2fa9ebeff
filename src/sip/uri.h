/* uri.h: SIP, SIPS, tel and other absolute URIs (RFC 3261 §19.1, §25.1). */
#ifndef SIPSD_SIP_URI_H
#define SIPSD_SIP_URI_H

#include <stdbool.h>
#include <stdint.h>

#include "base/str.h"

enum sip_uri_scheme { SIP_SCHEME_OTHER = 0, SIP_SCHEME_SIP, SIP_SCHEME_SIPS, SIP_SCHEME_TEL };
enum sip_host_type { SIP_HOST_NONE = 0, SIP_HOST_NAME, SIP_HOST_IPV4, SIP_HOST_IPV6 };

/* A parsed URI. Every slice points into the parsed text. For sip:/sips:
 * the structured fields are filled; for other schemes only `opaque` (the
 * part after "scheme:"). */
struct sip_uri {
	struct str raw;
	struct str scheme;
	enum sip_uri_scheme scheme_id;
	struct str user;     /* escaped as written; may contain ';' (RFC 4475 §3.1.1.9) */
	struct str password; /* escaped as written */
	struct str host;     /* IPv6 references keep their brackets */
	enum sip_host_type host_type;
	uint16_t port;       /* 0 when absent */
	bool has_user;
	bool has_password;
	bool has_port;
	struct str params;  /* ";a=b;lr" as written, leading ';' included; may be empty */
	struct str headers; /* after '?', as written; may be empty */
	struct str opaque;  /* non-SIP schemes: everything after the ':' */
};

/* A `name[=value]` parameter. */
struct sip_param {
	struct str name;
	struct str value;
	bool has_value;
};

/* Parse `in` as an absolute URI. For sip:/sips: the full RFC 3261 grammar
 * is checked (host, IPv6 reference via inet_pton, port 0-65535, parameter
 * and header characters). Returns 0, or -EBADMSG with *err_off set to the
 * offset of the fault within `in` and *reason to a static text. */
int sip_uri_parse(struct str in, struct sip_uri *uri, size_t *err_off, const char **reason);

/* Iterate ";name=value" parameters in `*cursor` (a params span such as
 * sip_uri.params or a header's params). Returns true and fills `p` while
 * parameters remain; LWS around names, '=' and values is skipped. */
bool sip_params_next(struct str *cursor, struct sip_param *p);

/* Find parameter `name` (case-insensitive) in a params span. Returns true
 * when present; `value` gets its value (empty when it has none). */
bool sip_params_find(struct str params, const char *name, struct str *value);

/* RFC 3261 §19.1.4 equality of two sip:/sips: URIs (scheme, userinfo
 * case-sensitive after unescaping, host case-insensitive, explicit port,
 * user/ttl/method/maddr/transport rules, headers). Non-SIP URIs compare
 * case-insensitively on the whole text. */
bool sip_uri_equal(const struct sip_uri *a, const struct sip_uri *b);

/* The default port of the URI's scheme (5060 for sip, 5061 for sips). */
uint16_t sip_uri_default_port(const struct sip_uri *uri);

/* Parse a `host[:port]` (hostname, IPv4, or "[IPv6]") as in a Via sent-by
 * or URI hostport. Returns 0 or -EBADMSG with *err_off at the fault. */
int sip_hostport_parse(struct str in, struct str *host, enum sip_host_type *type, uint16_t *port,
		       bool *has_port, size_t *err_off);

/* The common case of a host (a name or an IPv4 address) at the start of
 * `in`, in one pass: returns true with its length in *end and its type
 * when it is valid; false when the slower sip_hostport_parse must decide
 * (a fault, an IPv6 reference, digits and dots that are no IPv4 address).
 * The byte at *end (if any) is not a host byte; the caller checks it. */
bool sip_host_fast(struct str in, size_t *end, enum sip_host_type *type);

#endif
