/* msg.h: the parsed SIP message (RFC 3261 §7, §20). */
#ifndef SIPSD_SIP_MSG_H
#define SIPSD_SIP_MSG_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/limits.h"
#include "base/str.h"
#include "sip/uri.h"

enum sip_method {
	SIP_METHOD_UNKNOWN = 0,
	SIP_METHOD_INVITE,
	SIP_METHOD_ACK,
	SIP_METHOD_BYE,
	SIP_METHOD_CANCEL,
	SIP_METHOD_REGISTER,
	SIP_METHOD_OPTIONS,
	SIP_METHOD_PRACK,
	SIP_METHOD_SUBSCRIBE,
	SIP_METHOD_NOTIFY,
	SIP_METHOD_PUBLISH,
	SIP_METHOD_INFO,
	SIP_METHOD_REFER,
	SIP_METHOD_MESSAGE,
	SIP_METHOD_UPDATE,
};

/* Header fields we know by name. Eager ones are parsed during
 * sip_msg_parse; the rest are kept as raw values and parsed on demand. */
enum sip_hdr_id {
	SIP_HDR_OTHER = 0,
	SIP_HDR_VIA,
	SIP_HDR_FROM,
	SIP_HDR_TO,
	SIP_HDR_CALL_ID,
	SIP_HDR_CSEQ,
	SIP_HDR_MAX_FORWARDS,
	SIP_HDR_CONTENT_LENGTH,
	SIP_HDR_ROUTE,
	SIP_HDR_RECORD_ROUTE,
	SIP_HDR_CONTACT,
	SIP_HDR_EXPIRES,
	SIP_HDR_CONTENT_TYPE,
	SIP_HDR_CONTENT_ENCODING,
	SIP_HDR_SUBJECT,
	SIP_HDR_SUPPORTED,
	SIP_HDR_REQUIRE,
	SIP_HDR_PROXY_REQUIRE,
	SIP_HDR_UNSUPPORTED,
	SIP_HDR_ALLOW,
	SIP_HDR_ACCEPT,
	SIP_HDR_DATE,
	SIP_HDR_AUTHORIZATION,
	SIP_HDR_PROXY_AUTHORIZATION,
	SIP_HDR_WWW_AUTHENTICATE,
	SIP_HDR_PROXY_AUTHENTICATE,
	SIP_HDR_P_ASSERTED_IDENTITY,
	SIP_HDR_PATH,
	SIP_HDR_WARNING,
	SIP_HDR_RETRY_AFTER,
	SIP_HDR_MIN_EXPIRES,
	SIP_HDR_FLOW_TIMER,
	SIP_HDR_EVENT,
	SIP_HDR_REFER_TO,
	SIP_HDR_REFERRED_BY,
	SIP_HDR_ALLOW_EVENTS,
	SIP_HDR_SESSION_EXPIRES,
	SIP_HDR_USER_AGENT,
	SIP_HDR_SERVER,
	SIP_HDR__COUNT
};

/* One header field line (possibly folded) as received. */
struct sip_hdr {
	struct sip_hdr *next;      /* next header in message order */
	struct sip_hdr *next_same; /* next header with the same id */
	enum sip_hdr_id id;
	struct str name;  /* as written, e.g. "v" or "MaX-fOrWaRdS" */
	struct str value; /* after HCOLON up to the line end, LWS-trimmed; may hold folds */
	struct str line;  /* from the name to the end of the line's CRLF */
};

/* One Via entry (via-parm), RFC 3261 §20.42, RFC 3581, RFC 5923. */
struct sip_via {
	struct sip_via *next;
	struct sip_hdr *hdr; /* the header line holding this entry */
	struct str raw;      /* this via-parm, trimmed */
	struct str protocol; /* "SIP" */
	struct str version;  /* "2.0" */
	struct str transport;
	struct str host; /* sent-by host (IPv6 with brackets) */
	enum sip_host_type host_type;
	uint16_t port;
	bool has_port;
	struct str params; /* ";..." as written */
	struct str branch;
	struct str received;
	struct str maddr;
	struct str ttl;
	struct str rport; /* value, empty when the flag has no value */
	bool has_branch;
	bool has_received;
	bool has_rport;
	bool has_alias;
};

/* One name-addr or addr-spec with its header parameters: From, To,
 * Contact, Route, Record-Route entries. */
struct sip_addr {
	struct sip_addr *next;
	struct sip_hdr *hdr;
	struct str raw;     /* the whole entry, trimmed */
	struct str display; /* display name as written (quotes kept), may be empty */
	struct sip_uri uri; /* filled whole by sip_uri_parse: not zeroed before */
	struct str params;  /* header params ";tag=..." as written; uri..params order matters */
	struct str tag;
	bool has_tag;
	bool bracketed; /* the URI was inside <> */
};

enum sip_parse_mode {
	/* UDP: one message per datagram. Body is Content-Length bytes; without
	 * Content-Length the rest of the datagram (RFC 3261 §18.3). Trailing
	 * octets after the body are ignored (RFC 4475 §3.1.1.8). */
	SIP_PARSE_DATAGRAM,
	/* Streams: the input is exactly one message as cut by the framer;
	 * Content-Length is mandatory. */
	SIP_PARSE_STREAM,
	/* A message this process built, read again by the transaction layer:
	 * as SIP_PARSE_STREAM, but From, To, Contact, Route and Record-Route
	 * are left unparsed (their headers are listed; m->from, m->to,
	 * m->contact, m->route, m->record_route stay empty). */
	SIP_PARSE_OWN,
};

struct sip_parse_error {
	size_t offset;      /* byte offset of the fault in the input */
	const char *reason; /* static text */
	int status;         /* SIP status a server would answer with (400, 505, ...) */
};

/* The parsed message. Slices point into the caller's input, which must
 * outlive the message; lists live in the message's own arena. */
struct sip_msg {
	struct str raw; /* start line to the end of the body */
	bool is_request;
	struct str start_line; /* without CRLF */
	struct str version;    /* "SIP/2.0" */
	/* requests */
	struct str method;
	enum sip_method method_id;
	struct str ruri_raw;
	struct sip_uri ruri;
	/* responses */
	unsigned status;
	struct str reason;

	struct sip_hdr *headers; /* message order */
	struct sip_hdr *hdr_last;
	struct sip_hdr *hdr_first[SIP_HDR__COUNT];
	unsigned hdr_count;
	unsigned hdr_counts[SIP_HDR__COUNT];

	/* eager header values */
	struct sip_via *via;
	struct sip_via *via_last; /* appends without a walk */
	unsigned via_count;
	struct sip_addr *from;
	struct sip_addr *to;
	struct str call_id;
	uint32_t cseq;
	struct str cseq_method;
	enum sip_method cseq_method_id;
	bool has_cseq;
	int max_forwards;       /* -1 when absent */
	int64_t content_length; /* -1 when absent */
	struct sip_addr *route;
	unsigned route_count;
	struct sip_addr *record_route;
	unsigned record_route_count;
	struct sip_addr *contact;
	unsigned contact_count;
	bool contact_star;
	int64_t expires; /* -1 when absent */

	struct str body;

	/* Not zeroed between messages (read only where hdr_first is set). */
	struct sip_hdr *hdr_tail[SIP_HDR__COUNT]; /* last of each id: appends without a walk */
	struct arena arena;
	unsigned char arena_mem[SIPS_MSG_ARENA_SIZE];
};

/* Parse one message from `buf`/`len` (not written to; may hold NUL bytes).
 * `m` needs no initialisation. Returns the number of bytes the message
 * occupies (<= len; a datagram may carry ignored trailing octets), or
 * -EBADMSG / -EMSGSIZE / -ENOMEM with `err` describing the fault. Syntax
 * only: see sip_msg_check for the rules that need the whole message. */
int sip_msg_parse(struct sip_msg *m, const char *buf, size_t len, enum sip_parse_mode mode,
		  struct sip_parse_error *err);

/* Message-level rules a server applies before acting (RFC 3261 §8.2, §16.3):
 * version (505), mandatory headers, single-valued headers not repeated,
 * CSeq method equal to the request method, no headers in the Request-URI,
 * a well-formed Date. Returns 0, or the SIP status to answer with and `err`
 * describing why. */
int sip_msg_check(const struct sip_msg *m, struct sip_parse_error *err);

/* First header with `id`, or NULL. */
static inline const struct sip_hdr *sip_msg_hdr(const struct sip_msg *m, enum sip_hdr_id id)
{
	return m->hdr_first[id];
}

/* First header named `name` (case-insensitive, compact forms understood). */
const struct sip_hdr *sip_msg_hdr_by_name(const struct sip_msg *m, struct str name);

/* Header id for a header name (full or compact form), SIP_HDR_OTHER if unknown. */
enum sip_hdr_id sip_hdr_id_from_name(struct str name);

/* Canonical full name of a known header id ("Via", "Call-ID", ...). */
const char *sip_hdr_canonical_name(enum sip_hdr_id id);

/* Method id for a method token (case-sensitive, RFC 3261 §7.1). */
enum sip_method sip_method_from_str(struct str method);
const char *sip_method_name(enum sip_method method);

/* Parse a comma-separated list of name-addr/addr-spec entries (From, To,
 * Contact, Route, ...) from a header value into `arena`. `allow_star`
 * accepts a lone "*" (Contact). Returns the number of entries or a
 * negative errno; *err_off is relative to `value`. */
int sip_addr_list_parse(struct str value, struct arena *arena, bool allow_star, bool *star,
			struct sip_addr **first, size_t *err_off, const char **reason);

/* Parse a comma-separated Via value into `arena`. */
int sip_via_list_parse(struct str value, struct arena *arena, struct sip_via **first,
		       size_t *err_off, const char **reason);

/* True when `c` is a token character (RFC 3261 §25.1). */
bool sip_is_token_char(unsigned char c);

#endif
