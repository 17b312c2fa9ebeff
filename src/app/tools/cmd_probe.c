/* cmd_probe.c: `sipsctl probe DOMAIN`: resolve sips:DOMAIN and sip:DOMAIN by
 * RFC 3263, connect to every target and audit it (TLS version, certificate
 * identities and the RFC 5922 verdict for DOMAIN, RFC 5924 EKU, expiry,
 * OPTIONS, RFC 5626 CRLF keep-alive), then print a verdict. See docs/probe.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "base/log.h"
#include "dns/dns.h"
#include "loop/loop.h"
#include "sip/msg.h"
#include "sipsctl.h"
#include "tls/identity.h"
#include "tls/tls_ctx.h"
#include "ua_conn.h"

/* Targets probed: every target of both resolutions, duplicates merged. */
#define PROBE_MAX_TARGETS (2 * DNS_MAX_TARGETS)
/* Problems and warnings kept for the summary (more are counted, not kept). */
#define PROBE_MAX_NOTES 64
#define PROBE_NOTE_SIZE 512
/* A certificate that ends within this many days is worth a warning. */
#define PROBE_EXPIRY_WARN_DAYS 30
/* Default and largest --timeout, seconds (per step: connect, handshake,
 * ping, OPTIONS; DNS gets three steps for NAPTR, SRV and A/AAAA). */
#define PROBE_TIMEOUT_DEFAULT_S 5
#define PROBE_TIMEOUT_MAX_S 600
/* RFC 3261 §17.1.2.2: UDP retransmission from T1 = 500 ms, capped at T2. */
#define PROBE_T1_MS 500
#define PROBE_T2_MS 4000

/* How far the connection to a target got. */
enum probe_stage {
	PROBE_STAGE_NONE = 0,	  /* not tried */
	PROBE_STAGE_CONNECT_FAIL, /* TCP connect / socket failed */
	PROBE_STAGE_TLS_REFUSED,  /* we refused the server's certificate (RFC 5922/5924/5280) */
	PROBE_STAGE_TLS_FAIL,	  /* the handshake failed otherwise (alert, close, timeout) */
	PROBE_STAGE_CONNECTED,	  /* ready for SIP (TLS: DOMAIN authenticated) */
};

enum probe_options_result {
	PROBE_OPTIONS_NOT_SENT = 0,
	PROBE_OPTIONS_ANSWERED, /* a final response came */
	PROBE_OPTIONS_NO_ANSWER,
	PROBE_OPTIONS_ERROR, /* the connection broke */
};

/* RFC 5626 §3.5.1: a double CRLF ping on a stream is answered with one CRLF. */
enum probe_ping {
	PROBE_PING_NA = 0,     /* UDP: STUN is the keep-alive there, not CRLF */
	PROBE_PING_NOT_SENT,   /* no usable connection */
	PROBE_PING_PONG,       /* exactly "\r\n" came back */
	PROBE_PING_NO_PONG,    /* nothing within the timeout */
	PROBE_PING_UNEXPECTED, /* other bytes came back */
	PROBE_PING_CLOSED,     /* the server closed the connection */
	PROBE_PING_SEND_FAILED,
};

/* What we learnt about the server's certificate. */
struct probe_cert {
	bool have_peer;		       /* `peer` holds the record of the handshake */
	struct tls_peer peer;	       /* copy of tls_ssl_peer(): verdict, wanted, ids */
	bool has_leaf;		       /* the server sent a certificate */
	struct tls_identity_set ids;   /* its SIP domain identities (RFC 5922 §7.1) */
	char sha256[3 * 32];	       /* "AB:CD:..." */
	enum tls_verdict name_verdict; /* RFC 5922 §7.2 match for DOMAIN alone */
	enum tls_verdict eku;	       /* RFC 5924, role server, lenient (sipsd's default) */
	enum tls_verdict eku_strict;   /* the same under a strict policy */
	bool has_expiry;
	char not_after[32]; /* ISO 8601, UTC */
	long days_left;	    /* negative when expired */
};

struct probe_target {
	enum dns_transport transport;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char addr_text[64];
	char host[DNS_NAME_MAX + 1]; /* SRV target (or resolved name) */
	uint16_t priority;
	uint16_t weight;
	bool via_sips; /* found by resolving sips:DOMAIN */
	bool via_sip;  /* found by resolving sip:DOMAIN */

	enum probe_stage stage;
	char failure[512]; /* why the connection failed (ua_conn's words) */
	char tls_version[16];
	struct probe_cert cert;

	char ruri[DNS_NAME_MAX + 8]; /* Request-URI of the OPTIONS */
	enum probe_options_result options;
	unsigned status;
	char status_line[160]; /* sanitised */
	char server[160];      /* Server or User-Agent of the response, sanitised */
	char options_error[160];

	enum probe_ping ping;
};

/* One RFC 3263 resolution. */
struct probe_lookup {
	char uri[DNS_NAME_MAX + 8];
	bool started;
	bool done;
	int status; /* 0 or the negative errno of dns_result_cb */
	struct dns_query *q;
	struct dns_targets targets;
};

struct probe_notes {
	size_t n; /* notes made (may exceed PROBE_MAX_NOTES) */
	char text[PROBE_MAX_NOTES][PROBE_NOTE_SIZE];
};

struct probe {
	const char *domain;
	const char *dns; /* --dns, NULL for /etc/resolv.conf */
	const char *ca;	 /* --ca, NULL for the system store */
	int timeout_ms;
	bool json;

	struct probe_lookup lookup[2]; /* [0] sips:, [1] sip: */
	size_t n;
	struct probe_target t[PROBE_MAX_TARGETS];
	unsigned tls_targets;
	unsigned tls_good; /* authenticated DOMAIN and answered OPTIONS */
	struct probe_notes problems;
	struct probe_notes warnings;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sipsctl probe DOMAIN [--dns HOST:PORT] [--ca FILE] [--timeout S] [--json]\n"
		"  Resolves sips:DOMAIN and sip:DOMAIN (RFC 3263), connects to every target and\n"
		"  reports per target: transport, address, SRV host, TLS version, certificate\n"
		"  identities (RFC 5922 §7.1), the RFC 5922 verdict for DOMAIN, the RFC 5924 EKU\n"
		"  verdict, certificate expiry, the OPTIONS answer and the RFC 5626 CRLF pong.\n"
		"  --dns HOST:PORT  DNS server to ask (numeric; default: /etc/resolv.conf)\n"
		"  --ca FILE        trust anchors, PEM bundle (default: the system store)\n"
		"  --timeout S      bound of each step in seconds (default %d)\n"
		"  --json           print one JSON object instead of text\n"
		"  Exit 0 when every TLS target authenticates DOMAIN and answers OPTIONS, 1 when\n"
		"  problems were found, 2 on a usage error or when DOMAIN does not resolve.\n",
		PROBE_TIMEOUT_DEFAULT_S);
}

static int64_t probe_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void probe_random_hex(char *out, size_t bytes)
{
	unsigned char r[32];
	if (bytes > sizeof(r))
		bytes = sizeof(r);
	if (RAND_bytes(r, (int)bytes) != 1)
		memset(r, 0x5a, bytes);
	for (size_t i = 0; i < bytes; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/* Copy bytes a server sent into a C string fit for a terminal and JSON:
 * control and non-ASCII bytes become '?'. */
static void probe_sanitise(const char *s, size_t n, char *out, size_t size)
{
	size_t i;
	if (!size)
		return;
	for (i = 0; i < n && i + 1 < size; i++) {
		unsigned char ch = (unsigned char)s[i];
		out[i] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
	}
	out[i] = '\0';
}

static void probe_note(struct probe_notes *notes, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void probe_note(struct probe_notes *notes, const char *fmt, ...)
{
	if (notes->n < PROBE_MAX_NOTES) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(notes->text[notes->n], PROBE_NOTE_SIZE, fmt, ap);
		va_end(ap);
	}
	notes->n++;
}

static const char *probe_ping_name(enum probe_ping p)
{
	switch (p) {
	case PROBE_PING_NA:
		return "n/a";
	case PROBE_PING_NOT_SENT:
		return "not-sent";
	case PROBE_PING_PONG:
		return "pong";
	case PROBE_PING_NO_PONG:
		return "no-pong";
	case PROBE_PING_UNEXPECTED:
		return "unexpected";
	case PROBE_PING_CLOSED:
		return "closed";
	case PROBE_PING_SEND_FAILED:
		return "send-failed";
	}
	return "?";
}

static const char *probe_stage_name(enum probe_stage s)
{
	switch (s) {
	case PROBE_STAGE_NONE:
		return "not-tried";
	case PROBE_STAGE_CONNECT_FAIL:
		return "connect-failed";
	case PROBE_STAGE_TLS_REFUSED:
		return "tls-refused";
	case PROBE_STAGE_TLS_FAIL:
		return "tls-failed";
	case PROBE_STAGE_CONNECTED:
		return "ok";
	}
	return "?";
}

static const char *probe_options_name(enum probe_options_result r)
{
	switch (r) {
	case PROBE_OPTIONS_NOT_SENT:
		return "not-sent";
	case PROBE_OPTIONS_ANSWERED:
		return "answered";
	case PROBE_OPTIONS_NO_ANSWER:
		return "no-answer";
	case PROBE_OPTIONS_ERROR:
		return "error";
	}
	return "?";
}

static enum tp_proto probe_proto(enum dns_transport tp)
{
	return tp == DNS_TRANSPORT_TLS	 ? TP_PROTO_TLS
	       : tp == DNS_TRANSPORT_TCP ? TP_PROTO_TCP
					 : TP_PROTO_UDP;
}

/* ---- RFC 3263 resolution ---------------------------------------------- */

static void probe_resolved_cb(int status, const struct dns_targets *targets, void *arg)
{
	struct probe_lookup *l = arg;
	l->done = true;
	l->q = NULL;
	l->status = status;
	if (status == 0 && targets)
		l->targets = *targets;
	else
		l->targets.n = 0;
}

static const char *probe_dns_error(int status)
{
	switch (status) {
	case 0:
		return "ok";
	case -ENOENT:
		return "no such domain or no usable records";
	case -ETIMEDOUT:
		return "DNS server did not answer";
	case -ECONNREFUSED:
		return "DNS server refused the connection";
	case -EIO:
		return "DNS error (SERVFAIL, REFUSED or malformed answer)";
	case -ENOMEM:
		return "out of memory";
	case -EPROTONOSUPPORT:
		return "no transport we speak";
	case -EINVAL:
		return "not a usable SIP domain";
	}
	return strerror(-status);
}

/* Resolve sips:DOMAIN and sip:DOMAIN side by side on one loop, bounded by
 * three DNS steps (NAPTR, SRV, A/AAAA; RFC 3263 §4). Returns 0 (each lookup
 * has its own status) or a negative errno when the resolver cannot start. */
static int probe_resolve(struct probe *p)
{
	static const char *const schemes[2] = {"sips", "sip"};
	struct loop *loop = NULL;
	struct dns_resolver *r = NULL;
	struct dns_config cfg = {0};
	int rc;

	cfg.servers = p->dns;
	/* c-ares doubles the try timeout: two tries of timeout/3 stay within
	 * one step of the overall bound. */
	cfg.timeout_ms = (unsigned)(p->timeout_ms / 3 > 100 ? p->timeout_ms / 3 : 100);
	cfg.tries = 2;
	cfg.cache_size = 64;
	rc = loop_create(&loop);
	if (rc < 0)
		return rc;
	rc = dns_resolver_create(loop, &cfg, &r);
	if (rc < 0) {
		loop_destroy(loop);
		return rc;
	}
	for (size_t i = 0; i < 2; i++) {
		struct probe_lookup *l = &p->lookup[i];
		struct sip_uri uri;
		size_t off;
		const char *why;
		snprintf(l->uri, sizeof(l->uri), "%s:%s", schemes[i], p->domain);
		l->started = true;
		rc = sip_uri_parse(str_from_cstr(l->uri), &uri, &off, &why);
		if (rc == 0)
			rc = dns_resolve_uri(r, &uri, probe_resolved_cb, l, &l->q);
		if (rc < 0) {
			l->done = true;
			l->status = rc;
			l->q = NULL;
		}
	}
	int64_t deadline = probe_now_ms() + 3 * (int64_t)p->timeout_ms + 500;
	while (!(p->lookup[0].done && p->lookup[1].done)) {
		int64_t left = deadline - probe_now_ms();
		if (left <= 0)
			break;
		rc = loop_run_once(loop, left > 100 ? 100 : (int)left);
		if (rc < 0)
			break;
	}
	for (size_t i = 0; i < 2; i++) {
		struct probe_lookup *l = &p->lookup[i];
		if (!l->done) {
			dns_query_cancel(l->q);
			l->q = NULL;
			l->done = true;
			l->status = -ETIMEDOUT;
			l->targets.n = 0;
		}
	}
	dns_resolver_destroy(r);
	loop_destroy(loop);
	return 0;
}

static bool probe_same_addr(const struct sockaddr_storage *a, socklen_t al,
			    const struct sockaddr_storage *b, socklen_t bl)
{
	return al == bl && !memcmp(a, b, al);
}

/* Merge both failover lists into p->t: sips: targets first, a (transport,
 * address) found by both resolutions probed once. */
static void probe_collect(struct probe *p)
{
	for (size_t li = 0; li < 2; li++) {
		const struct dns_targets *ts = &p->lookup[li].targets;
		for (size_t i = 0; i < ts->n; i++) {
			const struct dns_target *d = &ts->t[i];
			struct probe_target *t = NULL;
			for (size_t k = 0; k < p->n; k++)
				if (p->t[k].transport == d->transport &&
				    probe_same_addr(&p->t[k].addr, p->t[k].addrlen, &d->addr,
						    d->addrlen))
					t = &p->t[k];
			if (!t) {
				if (p->n >= PROBE_MAX_TARGETS)
					continue;
				t = &p->t[p->n++];
				memset(t, 0, sizeof(*t));
				t->transport = d->transport;
				t->addr = d->addr;
				t->addrlen = d->addrlen;
				tp_addr_format((const struct sockaddr *)&d->addr, t->addr_text,
					       sizeof(t->addr_text));
				snprintf(t->host, sizeof(t->host), "%s", d->host);
				t->priority = d->priority;
				t->weight = d->weight;
			}
			if (li == 0)
				t->via_sips = true;
			else
				t->via_sip = true;
		}
	}
}

/* ---- TLS ----------------------------------------------------------------- */

static int probe_wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - probe_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd pfd = {.fd = fd, .events = events};
		int rc = poll(&pfd, 1, (int)left);
		if (rc > 0)
			return 0;
		if (rc == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* Record what the handshake on `ssl` showed: the peer record the verify
 * callback kept (also when it refused), and from the leaf certificate the
 * identities, the EKU verdicts and the expiry. The leaf of a refused
 * handshake is still in the session's peer chain. */
static void probe_tls_record(const struct probe *p, struct probe_target *t, SSL *ssl)
{
	struct probe_cert *c = &t->cert;
	const struct tls_peer *peer = tls_ssl_peer(ssl);
	if (peer) {
		c->have_peer = true;
		c->peer = *peer;
	}
	X509 *leaf = SSL_get0_peer_certificate(ssl);
	if (!leaf) {
		STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
		if (chain && sk_X509_num(chain) > 0)
			leaf = sk_X509_value(chain, 0);
	}
	if (!leaf)
		return;
	c->has_leaf = true;
	/* The version is settled by the ServerHello, before the certificate. */
	snprintf(t->tls_version, sizeof(t->tls_version), "%s", SSL_get_version(ssl));
	unsigned char md[32];
	if (peer && peer->has_cert) {
		tls_identity_set_copy(&c->ids, peer->ids);
		memcpy(md, peer->sha256, sizeof(md));
	} else {
		unsigned int len = 0;
		(void)tls_identity_extract(leaf, NULL, &c->ids);
		if (!X509_digest(leaf, EVP_sha256(), md, &len) || len != sizeof(md))
			memset(md, 0, sizeof(md));
	}
	for (size_t i = 0, pos = 0; i < sizeof(md) && pos < sizeof(c->sha256); i++) {
		int w = snprintf(c->sha256 + pos, sizeof(c->sha256) - pos, "%s%02X", i ? ":" : "",
				 md[i]);
		if (w < 0)
			break;
		pos += (size_t)w;
	}
	c->name_verdict = tls_identity_verdict(&c->ids, str_from_cstr(p->domain));
	/* RFC 5924 §4: the holder of this certificate is the TLS server. */
	c->eku = tls_eku_check(leaf, TLS_ROLE_SERVER, TLS_EKU_LENIENT);
	c->eku_strict = tls_eku_check(leaf, TLS_ROLE_SERVER, TLS_EKU_STRICT);
	const ASN1_TIME *na = X509_get0_notAfter(leaf);
	struct tm tm;
	int days = 0, secs = 0;
	if (na && ASN1_TIME_to_tm(na, &tm) == 1 && ASN1_TIME_diff(&days, &secs, NULL, na) == 1) {
		c->has_expiry = true;
		strftime(c->not_after, sizeof(c->not_after), "%Y-%m-%dT%H:%M:%SZ", &tm);
		c->days_left = days;
	}
	ERR_clear_error();
}

/* A second handshake of our own after ua_conn_open() refused the server,
 * to see the certificate it had refused (ua_conn frees its SSL). Same
 * context settings, same SNI and wanted domain; bounded by the timeout. */
static void probe_tls_inspect(const struct probe *p, struct probe_target *t)
{
	struct tls_ctx_cfg cfg;
	struct tls_ctx *ctx = NULL;
	SSL *ssl = NULL;
	int64_t deadline = probe_now_ms() + 2 * (int64_t)p->timeout_ms;

	tls_ctx_cfg_init(&cfg);
	cfg.ca_file = p->ca;
	if (tls_ctx_create(&cfg, TLS_SIDE_CLIENT, &ctx) < 0)
		return;
	int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto out;
	if (connect(fd, (const struct sockaddr *)&t->addr, t->addrlen) < 0) {
		int err = 0;
		socklen_t el = sizeof(err);
		if (errno != EINPROGRESS || probe_wait_fd(fd, POLLOUT, deadline) < 0 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err)
			goto out;
	}
	if (tls_ssl_client_create(ctx, str_from_cstr(p->domain), &ssl) < 0 ||
	    SSL_set_fd(ssl, fd) != 1)
		goto out;
	for (;;) {
		ERR_clear_error();
		int r = SSL_connect(ssl);
		if (r == 1)
			break;
		int e = SSL_get_error(ssl, r);
		if (e == SSL_ERROR_WANT_READ) {
			if (probe_wait_fd(fd, POLLIN, deadline) < 0)
				break;
		} else if (e == SSL_ERROR_WANT_WRITE) {
			if (probe_wait_fd(fd, POLLOUT, deadline) < 0)
				break;
		} else {
			break;
		}
	}
	probe_tls_record(p, t, ssl);
out:
	ERR_clear_error();
	SSL_free(ssl);
	if (fd >= 0)
		close(fd);
	tls_ctx_destroy(ctx);
}

/* ---- SIP checks ---------------------------------------------------------- */

/* RFC 5626 §3.5.1, §4.4.1: send a double CRLF, expect a single CRLF back.
 * Reads at most two bytes so that nothing of a later message is taken
 * from the connection's framer. */
static void probe_crlf_ping(const struct probe *p, struct probe_target *t, struct ua_conn *c)
{
	char got[2];
	size_t n = 0;
	int64_t deadline = probe_now_ms() + p->timeout_ms;

	if (ua_conn_send(c, "\r\n\r\n", 4) < 0) {
		t->ping = PROBE_PING_SEND_FAILED;
		return;
	}
	t->ping = PROBE_PING_NO_PONG;
	while (n < sizeof(got)) {
		if (!(c->ssl && SSL_pending(c->ssl)) && probe_wait_fd(c->fd, POLLIN, deadline) < 0)
			return;
		ssize_t r;
		if (c->ssl) {
			ERR_clear_error();
			int k = SSL_read(c->ssl, got + n, (int)(sizeof(got) - n));
			if (k <= 0) {
				int e = SSL_get_error(c->ssl, k);
				if (e == SSL_ERROR_WANT_READ && probe_now_ms() < deadline)
					continue; /* a handshake record, or SO_RCVTIMEO */
				t->ping = e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL
					      ? PROBE_PING_CLOSED
					      : PROBE_PING_NO_PONG;
				return;
			}
			r = k;
		} else {
			r = recv(c->fd, got + n, sizeof(got) - n, 0);
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (r <= 0) {
				t->ping = PROBE_PING_CLOSED;
				return;
			}
		}
		n += (size_t)r;
		if (got[0] != '\r' || (n == 2 && got[1] != '\n')) {
			t->ping = PROBE_PING_UNEXPECTED;
			return;
		}
	}
	t->ping = PROBE_PING_PONG;
}

/* Send `OPTIONS t->ruri` (RFC 3261 §11) as `sipsctl options` does and wait
 * for the final response to our branch; over UDP retransmit (§17.1.2.2). */
static void probe_options(const struct probe *p, struct probe_target *t, struct ua_conn *c,
			  enum tp_proto proto)
{
	char branch[33], tag[17], callid[33], local[64], req[2048];
	probe_random_hex(branch, 16);
	probe_random_hex(tag, 8);
	probe_random_hex(callid, 16);
	tp_addr_format((struct sockaddr *)&c->local, local, sizeof(local));
	const char *tname = proto == TP_PROTO_UDP ? "UDP" : proto == TP_PROTO_TCP ? "TCP" : "TLS";
	/* From: the probe's own domain under .invalid (RFC 2606 §2): nobody
	 * can mistake it for a user of DOMAIN or route anything back. */
	int n = snprintf(req, sizeof(req),
			 "OPTIONS %s SIP/2.0\r\n"
			 "Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport\r\n"
			 "Max-Forwards: 70\r\n"
			 "From: <sip:probe@sipsctl-probe.invalid>;tag=%s\r\n"
			 "To: <%s>\r\n"
			 "Call-ID: %s\r\n"
			 "CSeq: 1 OPTIONS\r\n"
			 "Accept: application/sdp\r\n"
			 "User-Agent: sipsctl probe\r\n"
			 "Content-Length: 0\r\n\r\n",
			 t->ruri, tname, local, branch, tag, t->ruri, callid);
	if (n < 0 || (size_t)n >= sizeof(req)) {
		t->options = PROBE_OPTIONS_ERROR;
		snprintf(t->options_error, sizeof(t->options_error), "request too long");
		return;
	}
	if (ua_conn_send(c, req, (size_t)n) < 0) {
		t->options = PROBE_OPTIONS_ERROR;
		snprintf(t->options_error, sizeof(t->options_error), "send failed");
		return;
	}
	t->options = PROBE_OPTIONS_NO_ANSWER;
	struct sip_msg *m = malloc(sizeof(*m));
	if (!m) {
		t->options = PROBE_OPTIONS_ERROR;
		snprintf(t->options_error, sizeof(t->options_error), "out of memory");
		return;
	}
	int64_t deadline = probe_now_ms() + p->timeout_ms;
	int interval = PROBE_T1_MS;
	int64_t next_tx = probe_now_ms() + interval;
	for (;;) {
		int64_t now = probe_now_ms();
		if (now >= deadline)
			break;
		int64_t until = proto == TP_PROTO_UDP && next_tx < deadline ? next_tx : deadline;
		int wait = until > now ? (int)(until - now) : 0;
		const char *msg;
		size_t len;
		int rc = ua_conn_recv(c, wait, &msg, &len);
		if (rc < 0) {
			t->options = PROBE_OPTIONS_ERROR;
			snprintf(t->options_error, sizeof(t->options_error), "connection: %s",
				 strerror(-rc));
			break;
		}
		if (rc == 0) {
			if (proto == TP_PROTO_UDP && probe_now_ms() >= next_tx) {
				interval = interval * 2 > PROBE_T2_MS ? PROBE_T2_MS : interval * 2;
				next_tx = probe_now_ms() + interval;
				(void)ua_conn_send(c, req, (size_t)n);
			}
			continue;
		}
		struct sip_parse_error err;
		int prc = sip_msg_parse(
		    m, msg, len, proto == TP_PROTO_UDP ? SIP_PARSE_DATAGRAM : SIP_PARSE_STREAM,
		    &err);
		bool ours = prc >= 0 && !m->is_request && m->via && m->via->has_branch &&
			    m->via->branch.len == 7 + 32 &&
			    !memcmp(m->via->branch.s + 7, branch, 32);
		if (!ours || m->status < 200)
			continue;
		t->options = PROBE_OPTIONS_ANSWERED;
		t->status = m->status;
		probe_sanitise(m->start_line.s, m->start_line.len, t->status_line,
			       sizeof(t->status_line));
		const struct sip_hdr *h = sip_msg_hdr(m, SIP_HDR_SERVER);
		if (!h)
			h = sip_msg_hdr(m, SIP_HDR_USER_AGENT);
		if (h)
			probe_sanitise(h->value.s, h->value.len, t->server, sizeof(t->server));
		break;
	}
	free(m);
}

/* Connect to one target and run every check that its transport allows. A
 * TLS target that is refused gets no SIP byte (RFC 5922 §7.3): its checks
 * stop at the certificate. */
static void probe_target_run(const struct probe *p, struct probe_target *t)
{
	enum tp_proto proto = probe_proto(t->transport);
	struct ua_conn_opts o = {.ca_file = p->ca, .timeout_ms = p->timeout_ms};
	struct ua_conn *c = malloc(sizeof(*c));

	snprintf(t->ruri, sizeof(t->ruri), "%s:%s", t->via_sips ? "sips" : "sip", p->domain);
	t->ping = proto == TP_PROTO_UDP ? PROBE_PING_NA : PROBE_PING_NOT_SENT;
	if (!c) {
		t->stage = PROBE_STAGE_CONNECT_FAIL;
		snprintf(t->failure, sizeof(t->failure), "out of memory");
		return;
	}
	int rc =
	    ua_conn_open(c, proto, (const struct sockaddr *)&t->addr, t->addrlen, p->domain, &o);
	if (rc < 0) {
		snprintf(t->failure, sizeof(t->failure), "%s", c->failure);
		t->stage = PROBE_STAGE_CONNECT_FAIL;
		if (proto == TP_PROTO_TLS && rc == -EPERM) {
			probe_tls_inspect(p, t);
			t->stage = t->cert.have_peer && t->cert.peer.auth == TLS_PEER_REFUSED
				       ? PROBE_STAGE_TLS_REFUSED
				       : PROBE_STAGE_TLS_FAIL;
		}
		free(c);
		return;
	}
	t->stage = PROBE_STAGE_CONNECTED;
	if (c->ssl)
		probe_tls_record(p, t, c->ssl);
	/* The ping first: nothing else is in flight, so any byte that comes
	 * back answers it. */
	if (proto != TP_PROTO_UDP)
		probe_crlf_ping(p, t, c);
	if (t->ping != PROBE_PING_CLOSED && t->ping != PROBE_PING_SEND_FAILED)
		probe_options(p, t, c, proto);
	else
		snprintf(t->options_error, sizeof(t->options_error), "connection closed");
	ua_conn_close(c);
	free(c);
}

/* ---- verdict ------------------------------------------------------------- */

/* Problems (exit 1): everything that keeps a peer proxy from reaching
 * DOMAIN over TLS: no TLS target, a TLS target refused or unreachable, a
 * TLS target that does not answer OPTIONS. Everything else is a warning. */
static void probe_judge(struct probe *p)
{
	const struct probe_lookup *ls = &p->lookup[0], *l = &p->lookup[1];
	if (ls->status < 0)
		probe_note(&p->problems, "%s: %s", ls->uri, probe_dns_error(ls->status));
	if (l->status < 0)
		probe_note(&p->warnings, "%s: %s", l->uri, probe_dns_error(l->status));
	for (size_t i = 0; i < p->n; i++) {
		struct probe_target *t = &p->t[i];
		const char *tn = dns_transport_name(t->transport);
		bool tls = t->transport == DNS_TRANSPORT_TLS;
		struct probe_notes *bad = tls ? &p->problems : &p->warnings;
		if (tls)
			p->tls_targets++;
		switch (t->stage) {
		case PROBE_STAGE_CONNECT_FAIL:
		case PROBE_STAGE_NONE:
			probe_note(bad, "%s %s (%s): %s", tn, t->addr_text, t->host, t->failure);
			continue;
		case PROBE_STAGE_TLS_REFUSED: {
			char why[400];
			tls_verdict_format(why, sizeof(why), t->cert.peer.verdict,
					   t->cert.peer.x509_err, str_from_cstr(p->domain),
					   &t->cert.ids);
			probe_note(bad, "%s %s (%s): does not authenticate %s (RFC 5922): %s", tn,
				   t->addr_text, t->host, p->domain, why);
			continue;
		}
		case PROBE_STAGE_TLS_FAIL:
			probe_note(bad, "%s %s (%s): %s", tn, t->addr_text, t->host, t->failure);
			continue;
		case PROBE_STAGE_CONNECTED:
			break;
		}
		if (t->options != PROBE_OPTIONS_ANSWERED)
			probe_note(bad, "%s %s (%s): OPTIONS %s not answered%s%s", tn, t->addr_text,
				   t->host, t->ruri, t->options_error[0] ? ": " : "",
				   t->options_error);
		else if (t->status >= 300)
			probe_note(&p->warnings, "%s %s (%s): OPTIONS %s answered %s", tn,
				   t->addr_text, t->host, t->ruri, t->status_line);
		if (tls && t->options == PROBE_OPTIONS_ANSWERED)
			p->tls_good++;
		if (t->ping != PROBE_PING_NA && t->ping != PROBE_PING_PONG)
			probe_note(&p->warnings,
				   "%s %s (%s): CRLF keep-alive not answered (RFC 5626 §3.5.1): %s",
				   tn, t->addr_text, t->host, probe_ping_name(t->ping));
		if (tls && t->cert.has_leaf && t->cert.eku_strict != TLS_VERDICT_OK)
			probe_note(&p->warnings,
				   "%s %s (%s): the EKU lacks id-kp-sipDomain: peers with a strict "
				   "RFC 5924 policy refuse it",
				   tn, t->addr_text, t->host);
		if (tls && t->cert.has_expiry && t->cert.days_left < PROBE_EXPIRY_WARN_DAYS)
			probe_note(&p->warnings,
				   "%s %s (%s): certificate expires %s (%ld days left)", tn,
				   t->addr_text, t->host, t->cert.not_after, t->cert.days_left);
	}
	if (p->tls_targets == 0)
		probe_note(&p->problems, "no TLS target: %s cannot be reached over TLS (RFC 5630)",
			   p->domain);
}

/* ---- text output --------------------------------------------------------- */

static void probe_print_lookup(const struct probe_lookup *l)
{
	if (l->status < 0) {
		printf("  %-22s error: %s\n", l->uri, probe_dns_error(l->status));
		return;
	}
	printf("  %-22s %zu target%s:", l->uri, l->targets.n, l->targets.n == 1 ? "" : "s");
	for (size_t i = 0; i < l->targets.n; i++) {
		char a[64];
		tp_addr_format((const struct sockaddr *)&l->targets.t[i].addr, a, sizeof(a));
		printf("%s %s %s (%s)", i ? "," : "", dns_transport_name(l->targets.t[i].transport),
		       a, l->targets.t[i].host);
	}
	printf("\n");
}

static void probe_print_target(const struct probe *p, const struct probe_target *t, size_t i)
{
	const struct probe_cert *c = &t->cert;
	bool tls = t->transport == DNS_TRANSPORT_TLS;
	printf("\ntarget %zu/%zu: %s %s\n", i + 1, p->n, dns_transport_name(t->transport),
	       t->addr_text);
	if (t->priority || t->weight)
		printf("  SRV host:     %s (priority %u, weight %u)\n", t->host, t->priority,
		       t->weight);
	else
		printf("  host:         %s (no SRV)\n", t->host);
	printf("  found by:     %s%s%s\n", t->via_sips ? p->lookup[0].uri : "",
	       t->via_sips && t->via_sip ? ", " : "", t->via_sip ? p->lookup[1].uri : "");
	if (t->stage == PROBE_STAGE_CONNECTED)
		printf("  connection:   ok\n");
	else if (t->stage == PROBE_STAGE_TLS_REFUSED)
		printf("  connection:   tls-refused (the probe aborted the handshake, see RFC "
		       "5922)\n");
	else
		printf("  connection:   %s: %s\n", probe_stage_name(t->stage), t->failure);
	/* Without a handshake there is nothing to say about TLS. */
	if (tls && t->stage >= PROBE_STAGE_TLS_REFUSED) {
		printf("  TLS version:  %s (SNI %s)\n", t->tls_version[0] ? t->tls_version : "-",
		       p->domain);
		if (c->has_leaf) {
			char ids[600];
			tls_identity_set_format(&c->ids, ids, sizeof(ids));
			printf("  certificate:  sha256 %s\n", c->sha256);
			printf("  identities:   %s (source %s)\n", ids,
			       tls_identity_source_name((enum tls_identity_source)c->ids.source));
		} else {
			printf("  certificate:  none received\n");
		}
		if (c->have_peer && c->peer.auth == TLS_PEER_AUTHENTICATED) {
			printf("  RFC 5922:     ok (authenticates %s)\n", p->domain);
		} else if (c->have_peer && c->peer.auth == TLS_PEER_REFUSED) {
			char why[400];
			tls_verdict_format(why, sizeof(why), c->peer.verdict, c->peer.x509_err,
					   str_from_cstr(p->domain), &c->ids);
			printf("  RFC 5922:     %s (refused in the handshake: %s)\n",
			       tls_verdict_name(c->peer.verdict), why);
			if (c->has_leaf && c->peer.verdict != c->name_verdict)
				printf("  name match:   %s for %s (RFC 5922 §7.2, chain aside)\n",
				       tls_verdict_name(c->name_verdict), p->domain);
		} else {
			printf("  RFC 5922:     unknown (no certificate checked)\n");
		}
		if (c->has_leaf) {
			printf("  EKU:          %s (RFC 5924, role server, lenient; strict: %s)\n",
			       tls_verdict_name(c->eku), tls_verdict_name(c->eku_strict));
			if (c->has_expiry)
				printf("  expiry:       notAfter %s (%ld days left)\n",
				       c->not_after, c->days_left);
		}
	}
	switch (t->options) {
	case PROBE_OPTIONS_ANSWERED:
		printf("  OPTIONS:      %s -> %s%s%s%s\n", t->ruri, t->status_line,
		       t->server[0] ? " (server: " : "", t->server, t->server[0] ? ")" : "");
		break;
	case PROBE_OPTIONS_NO_ANSWER:
		printf("  OPTIONS:      %s -> no final response within %d s\n", t->ruri,
		       p->timeout_ms / 1000);
		break;
	case PROBE_OPTIONS_ERROR:
		printf("  OPTIONS:      %s -> error: %s\n", t->ruri, t->options_error);
		break;
	case PROBE_OPTIONS_NOT_SENT:
		printf("  OPTIONS:      not sent (%s)\n",
		       t->stage == PROBE_STAGE_CONNECTED ? "connection closed"
		       : tls && t->stage != PROBE_STAGE_CONNECT_FAIL
			   ? "no SIP to a server not authenticated, RFC 5922 §7.3"
			   : "no connection");
		break;
	}
	if (t->ping == PROBE_PING_NA)
		printf("  CRLF ping:    n/a (UDP)\n");
	else
		printf("  CRLF ping:    %s\n", probe_ping_name(t->ping));
}

static void probe_print_notes(const char *title, const struct probe_notes *notes)
{
	if (!notes->n)
		return;
	printf("%s:\n", title);
	for (size_t i = 0; i < notes->n && i < PROBE_MAX_NOTES; i++)
		printf("  - %s\n", notes->text[i]);
	if (notes->n > PROBE_MAX_NOTES)
		printf("  - ... and %zu more\n", notes->n - PROBE_MAX_NOTES);
}

static void probe_print_text(const struct probe *p)
{
	printf("probe %s (DNS %s, CA %s, timeout %d s)\n\nresolution (RFC 3263):\n", p->domain,
	       p->dns ? p->dns : "/etc/resolv.conf", p->ca ? p->ca : "system store",
	       p->timeout_ms / 1000);
	probe_print_lookup(&p->lookup[0]);
	probe_print_lookup(&p->lookup[1]);
	for (size_t i = 0; i < p->n; i++)
		probe_print_target(p, &p->t[i], i);
	printf("\n");
	if (!p->problems.n)
		printf("summary: ok (%u TLS target%s authenticate%s %s and answer%s OPTIONS)\n",
		       p->tls_good, p->tls_good == 1 ? "" : "s", p->tls_good == 1 ? "s" : "",
		       p->domain, p->tls_good == 1 ? "s" : "");
	else
		printf("summary: problems (%u of %u TLS targets authenticate %s and answer)\n",
		       p->tls_good, p->tls_targets, p->domain);
	probe_print_notes("problems", &p->problems);
	probe_print_notes("warnings", &p->warnings);
}

/* ---- JSON output --------------------------------------------------------- */

/* A JSON string (RFC 8259 §7); NULL prints null. Bytes outside printable
 * ASCII are escaped, so the output is ASCII whatever a server sent. */
static void json_str(const char *s)
{
	if (!s) {
		fputs("null", stdout);
		return;
	}
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void json_key(const char *k, bool *first)
{
	if (!*first)
		putchar(',');
	*first = false;
	json_str(k);
	putchar(':');
}

static void json_kv_str(const char *k, const char *v, bool *first)
{
	json_key(k, first);
	json_str(v);
}

static void json_kv_bool(const char *k, bool v, bool *first)
{
	json_key(k, first);
	fputs(v ? "true" : "false", stdout);
}

static void json_kv_long(const char *k, long v, bool *first)
{
	json_key(k, first);
	printf("%ld", v);
}

static void json_notes(const char *k, const struct probe_notes *notes, bool *first)
{
	json_key(k, first);
	putchar('[');
	for (size_t i = 0; i < notes->n && i < PROBE_MAX_NOTES; i++) {
		if (i)
			putchar(',');
		json_str(notes->text[i]);
	}
	putchar(']');
}

static void probe_json_cert(const struct probe *p, const struct probe_target *t)
{
	const struct probe_cert *c = &t->cert;
	bool f = true;
	putchar('{');
	json_kv_str("version", t->tls_version[0] ? t->tls_version : NULL, &f);
	json_kv_str("sni", p->domain, &f);
	json_key("certificate", &f);
	if (!c->has_leaf) {
		fputs("null", stdout);
	} else {
		bool g = true;
		putchar('{');
		json_kv_str("sha256", c->sha256, &g);
		json_key("identities", &g);
		putchar('[');
		for (size_t i = 0; i < c->ids.count; i++) {
			char name[TLS_IDENTITY_MAX_NAME + 1];
			str_to_cbuf(tls_identity_set_name(&c->ids, i), name, sizeof(name));
			if (i)
				putchar(',');
			json_str(name);
		}
		putchar(']');
		json_kv_str("identity_source",
			    tls_identity_source_name((enum tls_identity_source)c->ids.source), &g);
		json_kv_str("not_after", c->has_expiry ? c->not_after : NULL, &g);
		json_key("days_left", &g);
		if (c->has_expiry)
			printf("%ld", c->days_left);
		else
			fputs("null", stdout);
		putchar('}');
	}
	json_key("rfc5922", &f);
	{
		bool g = true;
		char why[400] = "";
		const char *verdict = NULL;
		if (c->have_peer && c->peer.auth == TLS_PEER_AUTHENTICATED) {
			verdict = "ok";
		} else if (c->have_peer && c->peer.auth == TLS_PEER_REFUSED) {
			verdict = tls_verdict_name(c->peer.verdict);
			tls_verdict_format(why, sizeof(why), c->peer.verdict, c->peer.x509_err,
					   str_from_cstr(p->domain), &c->ids);
		}
		putchar('{');
		json_kv_str("domain", p->domain, &g);
		json_kv_str("verdict", verdict, &g);
		json_kv_bool("authenticated",
			     c->have_peer && c->peer.auth == TLS_PEER_AUTHENTICATED, &g);
		json_kv_str("reason", why[0] ? why : NULL, &g);
		json_kv_str("name_match", c->has_leaf ? tls_verdict_name(c->name_verdict) : NULL,
			    &g);
		putchar('}');
	}
	json_key("eku", &f);
	if (!c->has_leaf) {
		fputs("null", stdout);
	} else {
		bool g = true;
		putchar('{');
		json_kv_str("role", "server", &g);
		json_kv_str("verdict", tls_verdict_name(c->eku), &g);
		json_kv_str("strict", tls_verdict_name(c->eku_strict), &g);
		putchar('}');
	}
	putchar('}');
}

static void probe_json_target(const struct probe *p, const struct probe_target *t)
{
	bool f = true;
	putchar('{');
	json_kv_str("transport", dns_transport_name(t->transport), &f);
	json_kv_str("address", t->addr_text, &f);
	json_kv_str("srv_host", t->host, &f);
	json_kv_long("priority", t->priority, &f);
	json_kv_long("weight", t->weight, &f);
	json_key("found_by", &f);
	putchar('[');
	if (t->via_sips)
		json_str(p->lookup[0].uri);
	if (t->via_sip) {
		if (t->via_sips)
			putchar(',');
		json_str(p->lookup[1].uri);
	}
	putchar(']');
	json_kv_str("connection", probe_stage_name(t->stage), &f);
	json_kv_str("error", t->stage == PROBE_STAGE_CONNECTED ? NULL : t->failure, &f);
	json_key("tls", &f);
	if (t->transport == DNS_TRANSPORT_TLS)
		probe_json_cert(p, t);
	else
		fputs("null", stdout);
	json_key("options", &f);
	{
		bool g = true;
		putchar('{');
		json_kv_str("request_uri", t->ruri, &g);
		json_kv_str("result", probe_options_name(t->options), &g);
		json_kv_bool("answered", t->options == PROBE_OPTIONS_ANSWERED, &g);
		json_key("status", &g);
		if (t->options == PROBE_OPTIONS_ANSWERED)
			printf("%u", t->status);
		else
			fputs("null", stdout);
		json_kv_str("status_line",
			    t->options == PROBE_OPTIONS_ANSWERED ? t->status_line : NULL, &g);
		json_kv_str("server", t->server[0] ? t->server : NULL, &g);
		json_kv_str("error", t->options_error[0] ? t->options_error : NULL, &g);
		putchar('}');
	}
	json_key("crlf_ping", &f);
	{
		bool g = true;
		putchar('{');
		json_kv_str("result", probe_ping_name(t->ping), &g);
		json_kv_bool("pong", t->ping == PROBE_PING_PONG, &g);
		putchar('}');
	}
	putchar('}');
}

static void probe_print_json(const struct probe *p, int exit_status)
{
	bool f = true;
	putchar('{');
	json_kv_str("domain", p->domain, &f);
	json_kv_str("dns", p->dns, &f);
	json_kv_str("ca", p->ca, &f);
	json_kv_long("timeout_s", p->timeout_ms / 1000, &f);
	json_key("resolution", &f);
	putchar('[');
	for (size_t i = 0; i < 2; i++) {
		const struct probe_lookup *l = &p->lookup[i];
		bool g = true;
		if (i)
			putchar(',');
		putchar('{');
		json_kv_str("uri", l->uri, &g);
		json_kv_str("status", l->status < 0 ? "error" : "ok", &g);
		json_kv_str("error", l->status < 0 ? probe_dns_error(l->status) : NULL, &g);
		json_key("targets", &g);
		putchar('[');
		for (size_t k = 0; k < l->targets.n; k++) {
			char a[64];
			bool h = true;
			tp_addr_format((const struct sockaddr *)&l->targets.t[k].addr, a,
				       sizeof(a));
			if (k)
				putchar(',');
			putchar('{');
			json_kv_str("transport", dns_transport_name(l->targets.t[k].transport), &h);
			json_kv_str("address", a, &h);
			json_kv_str("host", l->targets.t[k].host, &h);
			putchar('}');
		}
		putchar(']');
		putchar('}');
	}
	putchar(']');
	json_key("targets", &f);
	putchar('[');
	for (size_t i = 0; i < p->n; i++) {
		if (i)
			putchar(',');
		probe_json_target(p, &p->t[i]);
	}
	putchar(']');
	json_key("summary", &f);
	{
		bool g = true;
		putchar('{');
		json_kv_str("verdict",
			    exit_status == SIPSCTL_OK	  ? "ok"
			    : exit_status == SIPSCTL_FAIL ? "problems"
							  : "error",
			    &g);
		json_kv_long("exit", exit_status, &g);
		json_kv_long("tls_targets", p->tls_targets, &g);
		json_kv_long("tls_ok", p->tls_good, &g);
		json_notes("problems", &p->problems, &g);
		json_notes("warnings", &p->warnings, &g);
		putchar('}');
	}
	printf("}\n");
}

/* ---- command ------------------------------------------------------------- */

/* DOMAIN must be a bare host: what a peer proxy would find in a Request-URI
 * and resolve (no scheme, user, port or parameters). */
static int probe_check_domain(const char *domain)
{
	char text[DNS_NAME_MAX + 8];
	struct sip_uri uri;
	size_t off;
	const char *why;
	size_t n = strlen(domain);
	if (n == 0 || n > DNS_NAME_MAX)
		return -EINVAL;
	snprintf(text, sizeof(text), "sips:%s", domain);
	if (sip_uri_parse(str_from_cstr(text), &uri, &off, &why) < 0)
		return -EINVAL;
	if (uri.has_user || uri.has_port || uri.params.len || uri.headers.len || uri.host.len != n)
		return -EINVAL;
	return 0;
}

int sipsctl_cmd_probe(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"dns", required_argument, NULL, 'd'},     {"ca", required_argument, NULL, 'a'},
	    {"timeout", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},	       {NULL, 0, NULL, 0},
	};
	const char *dns = NULL, *ca = NULL;
	int timeout_ms = PROBE_TIMEOUT_DEFAULT_S * 1000;
	bool json = false;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			dns = optarg;
			break;
		case 'a':
			ca = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 't': {
			uint64_t s;
			if (str_to_u64(str_from_cstr(optarg), PROBE_TIMEOUT_MAX_S, &s) < 0 ||
			    s == 0) {
				fprintf(stderr, "sipsctl probe: --timeout takes seconds (1-%d)\n",
					PROBE_TIMEOUT_MAX_S);
				return SIPSCTL_USAGE;
			}
			timeout_ms = (int)s * 1000;
			break;
		}
		case 'h':
			usage(stdout);
			return SIPSCTL_OK;
		default:
			usage(stderr);
			return SIPSCTL_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return SIPSCTL_USAGE;
	}
	const char *domain = argv[optind];
	if (probe_check_domain(domain) < 0) {
		fprintf(stderr,
			"sipsctl probe: '%s' is not a SIP domain (a host name, no scheme, "
			"user or port)\n",
			domain);
		return SIPSCTL_USAGE;
	}
	if (dns) {
		struct sockaddr_storage ss;
		socklen_t sl;
		if (tp_addr_parse(dns, 53, &ss, &sl) < 0) {
			fprintf(stderr,
				"sipsctl probe: --dns takes a numeric HOST:PORT, not '%s'\n", dns);
			return SIPSCTL_USAGE;
		}
	}
	if (ca && access(ca, R_OK) != 0) {
		fprintf(stderr, "sipsctl probe: cannot read --ca %s: %s\n", ca, strerror(errno));
		return SIPSCTL_USAGE;
	}

	struct probe *p = calloc(1, sizeof(*p));
	if (!p) {
		fprintf(stderr, "sipsctl probe: out of memory\n");
		return SIPSCTL_USAGE;
	}
	p->domain = domain;
	p->dns = dns;
	p->ca = ca;
	p->timeout_ms = timeout_ms;
	p->json = json;
	/* A server that closes mid-write must not kill the probe. */
	signal(SIGPIPE, SIG_IGN);
	/* Library log lines are for the daemon; the report is ours. */
	log_set_level(LOG_LVL_ERROR);

	int rc = probe_resolve(p);
	if (rc < 0) {
		fprintf(stderr, "sipsctl probe: cannot start the resolver: %s\n", strerror(-rc));
		free(p);
		return SIPSCTL_USAGE;
	}
	probe_collect(p);
	int status;
	if (p->n == 0) {
		/* Neither URI resolves: nothing to audit (a usage or DNS error). */
		status = SIPSCTL_USAGE;
		probe_note(&p->problems, "%s: %s", p->lookup[0].uri,
			   probe_dns_error(p->lookup[0].status));
		probe_note(&p->problems, "%s: %s", p->lookup[1].uri,
			   probe_dns_error(p->lookup[1].status));
	} else {
		for (size_t i = 0; i < p->n; i++)
			probe_target_run(p, &p->t[i]);
		probe_judge(p);
		status = p->problems.n ? SIPSCTL_FAIL : SIPSCTL_OK;
	}
	if (json) {
		probe_print_json(p, status);
	} else if (status == SIPSCTL_USAGE) {
		printf("probe %s (DNS %s)\n\nresolution (RFC 3263):\n", p->domain,
		       p->dns ? p->dns : "/etc/resolv.conf");
		probe_print_lookup(&p->lookup[0]);
		probe_print_lookup(&p->lookup[1]);
		printf("\nsummary: error (%s resolves to no target)\n", p->domain);
	} else {
		probe_print_text(p);
	}
	fflush(stdout);
	free(p);
	return status;
}
