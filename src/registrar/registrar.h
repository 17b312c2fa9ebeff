/* registrar.h: REGISTER processing (RFC 3261 §10.3) with bindings tied to
 * the flow they arrived on (RFC 5626), SIPS contact rules (RFC 5630 §5.2). */
#ifndef SIPSD_REGISTRAR_REGISTRAR_H
#define SIPSD_REGISTRAR_REGISTRAR_H

#include <stdbool.h>
#include <stddef.h>

#include "sip/msg.h"
#include "store/location.h"

struct registrar_cfg {
	unsigned min_expires;     /* 423 below this (default 60) */
	unsigned max_expires;     /* clamp (default 3600) */
	unsigned default_expires; /* without Expires (default 3600) */
	unsigned flow_timer;      /* RFC 5626 §4.4.1 Flow-Timer sent with outbound (default 120) */
};

void registrar_cfg_default(struct registrar_cfg *c);

struct registrar_result {
	int status;
	const char *reason; /* NULL: the standard phrase */
	char extra[4096];   /* header lines for the response */
	size_t extra_len;
};

/* The canonical AOR of a SIP/SIPS URI: "user@host" with the host
 * lower-cased (sip: and sips: name the same AOR, RFC 5630 §3.1.3).
 * Returns the length or -EINVAL (not sip/sips, no user, too long). */
int registrar_aor(const struct sip_uri *uri, char *out, size_t cap);

/* Handle a REGISTER whose To domain is ours (the caller checked). `flow`
 * is where it came from (streams: the connection); `over_tls` whether the
 * last hop was TLS. Fills `res` with the status and the header lines
 * (Contact list with expires, Min-Expires, Require/Flow-Timer). */
void registrar_handle(struct location *loc, const struct registrar_cfg *cfg,
		      const struct sip_msg *m, const struct loc_flow *flow, bool over_tls,
		      struct registrar_result *res);

#endif
