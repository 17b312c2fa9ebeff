/* build.h: serialise new messages from parsed ones (forwarding, local responses). */
#ifndef SIPSD_SIP_BUILD_H
#define SIPSD_SIP_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/str.h"
#include "sip/msg.h"

/* Edits applied while a parsed message is written anew; the received
 * bytes are never modified (design.md, Memory). */
struct sip_edit {
	struct str new_ruri;        /* requests: replaces the Request-URI when set */
	struct str add_via;         /* a via-parm to put on top, e.g. "SIP/2.0/TLS h;branch=z9hG4bK.." */
	bool remove_top_via;        /* responses going back (RFC 3261 §16.7 step 3) */
	bool decrement_max_forwards; /* §16.6 step 3; adds "Max-Forwards: 70" when absent */
	unsigned pop_routes;        /* remove this many leading Route entries (§16.4, §16.6 step 6) */
	struct str push_route;      /* a Route value to put before every other, e.g. "<sip:t@h;lr>" */
	struct str add_record_route; /* a Record-Route value to put on top, e.g. "<sips:h;lr>" */
	struct str extra_headers;   /* whole lines ("Name: value\r\n"), appended */
	/* §18.2.1 / RFC 3581 §4: annotate the received top Via with the
	 * source address (received=) and, when it asked, the source port
	 * (rport=). Empty / 0: leave it. */
	struct str via_received;
	uint16_t via_rport;
	/* §16.4 strict routing: remove the last Route entry (its value went
	 * into the Request-URI through new_ruri). */
	bool pop_last_route;
};

/* Writes `m` with `e` applied into `out` (capacity `cap`). Content-Length
 * is always written for the body carried. Returns the length written, or
 * -EMSGSIZE when `cap` is too small. */
int sip_msg_build(const struct sip_msg *m, const struct sip_edit *e, char *out, size_t cap);

/* Writes a response to request `req` (RFC 3261 §8.2.6): the Via headers,
 * From, Call-ID and CSeq copied, To copied with `to_tag` added when the
 * To has no tag and the status is above 100, then `extra_headers` (whole
 * lines) and an empty body. Returns the length or -EMSGSIZE. */
int sip_response_build(const struct sip_msg *req, int status, const char *reason,
		       struct str to_tag, struct str extra_headers, char *out, size_t cap);

/* Writes the ACK a client INVITE transaction sends for a non-2xx final
 * response (RFC 3261 §17.1.1.3): Request-URI, top Via, From, Call-ID and
 * Route of the INVITE, To of the response, CSeq number with ACK. Returns the
 * length or -EMSGSIZE. */
int sip_ack_build(const struct sip_msg *invite, const struct sip_msg *resp, char *out, size_t cap);

/* Writes a CANCEL for a pending INVITE (RFC 3261 §9.1): Request-URI, top
 * Via, From, To, Call-ID and Route of the INVITE, CSeq number with CANCEL,
 * Max-Forwards 70. `reason` (may be empty) is a Reason header value
 * (RFC 3326). Returns the length or -EMSGSIZE. */
int sip_cancel_build(const struct sip_msg *invite, struct str reason, char *out, size_t cap);

/* A 400 for a request the parser refused (RFC 3261 §16.3, RFC 4475 §3.1.2):
 * copies the Via, From, To, Call-ID and CSeq lines found in the raw header
 * block as they are, adds a Warning with `why`. Returns the length, 0 when
 * the bytes are not a request or hold no Via (nothing to answer), or
 * -EMSGSIZE. */
int sip_bad_request_build(const char *raw, size_t len, const char *why, char *out, size_t cap);

/* The reason phrase RFC 3261 §21 gives a status code ("Not Found"). */
const char *sip_status_reason(int status);

#endif
