/* policy.h: the founding questions as policies (spec §4): the
 * authoritative proxy check of From/P-Asserted-Identity against the peer's
 * verified domain identities, the Via trail check, and per-peer transport
 * policy for sip: requests. */
#ifndef SIPSD_PROXY_POLICY_H
#define SIPSD_PROXY_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "sip/msg.h"
#include "tls/identity.h"

#define POLICY_MAX_PEERS 32
#define POLICY_MAX_AUTHZ 16

enum policy_peer_from { POLICY_PEER_FROM_REJECT = 0, POLICY_PEER_FROM_LOG, POLICY_PEER_FROM_OFF };
enum policy_via_trail { POLICY_VIA_TRAIL_OFF = 0, POLICY_VIA_TRAIL_TAG, POLICY_VIA_TRAIL_REJECT };
enum policy_sip_over_tls { POLICY_TLS_PREFER = 0, POLICY_TLS_REQUIRE, POLICY_TLS_OFF };

/* A peer domain: what it may send requests from beyond its own identities,
 * and how sip: requests towards it travel. */
struct policy_peer {
	char domain[254];
	char may_send_from[POLICY_MAX_AUTHZ][254];
	unsigned nfrom;
	enum policy_sip_over_tls sip_over_tls;
};

struct policy_cfg {
	enum policy_peer_from peer_from; /* default reject */
	enum policy_via_trail via_trail; /* default off */
	struct policy_peer peers[POLICY_MAX_PEERS];
	unsigned npeers;
};

void policy_cfg_default(struct policy_cfg *pc);

/* The peer entry of `domain` (case-insensitive), or NULL. */
const struct policy_peer *policy_peer_find(const struct policy_cfg *pc, struct str domain);

/* Outcome of the inbound checks. */
struct policy_result {
	int status;           /* 0 accept, else the status to answer with (403) */
	bool log;             /* a line worth logging (a mismatch) */
	char why[320];        /* the log text: peer identities and From domain */
	char tag_header[200]; /* via_trail = tag: a header line to add, "" otherwise */
};

/* Authoritative proxy (spec §4.1, T8) for a request that arrived over a
 * mutually authenticated TLS connection with identity set `peer`: the From
 * domain and the P-Asserted-Identity domains must be one of the peer's
 * identities or authorised for it (`may_send_from`). Via trail (spec §4.5):
 * the From domain must appear as a Via sent-by host or match the peer.
 * `peer` is NULL for a request that did not come over an authenticated
 * connection (only the Via trail check applies, and only for From domains
 * not in `ours`). Fills `r`. */
void policy_check_inbound(const struct policy_cfg *pc, const struct sip_msg *m,
			  const struct tls_identity_set *peer, bool (*is_ours)(struct str, void *),
			  void *arg, struct policy_result *r);

#endif
