/* control.h: the operator's interfaces of a running sipsd: a unix control
 * socket (`sipsctl stats|connections|registrations|reload`) and a
 * Prometheus text endpoint over HTTP on a local address. */
#ifndef SIPSD_APP_CONTROL_H
#define SIPSD_APP_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/proxy.h"
#include "transport/transport.h"
#include "txn/txn.h"

/* Counters summed over the workers. */
struct control_stats {
	unsigned workers;
	struct tp_stats tp;
	struct txn_stats txn;
	struct proxy_stats proxy;
	unsigned aors, bindings;
	uint64_t reloads_done, reloads_refused;
	unsigned conns_tcp, conns_tls, conns_tls_authenticated;
	/* Authenticated peer connections by verified identity (bounded). */
	struct {
		char identity[254];
		unsigned conns;
	} peers[16];
	unsigned npeers;
	/* Days until each domain certificate expires. */
	struct {
		char domain[254];
		int days_left;
	} certs[16];
	unsigned ncerts;
};

struct control_ops {
	void (*stats)(void *arg, struct control_stats *out);
	/* Write text lines into buf (NUL-terminated); return the length. */
	size_t (*connections)(void *arg, char *buf, size_t cap);
	size_t (*registrations)(void *arg, char *buf, size_t cap);
	void (*reload)(void *arg);
	void *arg;
};

struct control;

/* Serve `unix_path` (may be NULL) and `metrics_addr` ("127.0.0.1:9090",
 * may be NULL) from a thread of its own. Returns 0 and *out, or a negative
 * errno (the reason logged). */
int control_start(const char *unix_path, const char *metrics_addr, const struct control_ops *ops,
		  struct control **out);

/* Stop the thread, close the sockets, remove the unix socket file. */
void control_stop(struct control *c);

/* The Prometheus text exposition of `s` into buf; returns the length. */
size_t control_metrics_format(const struct control_stats *s, char *buf, size_t cap);

#endif
