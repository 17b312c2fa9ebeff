/* cmd_ua.c: sipsctl as a user agent without a certificate: `register` and
 * `call` (caller, or with --answer the callee that keeps its registration
 * flow open and answers on it). RFC 3261 §8, §10, §13-15; RFC 5626 flows;
 * the RFC 5922 check of the proxy comes from ua_conn. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "sip/build.h"
#include "sip/msg.h"
#include "sipsctl.h"
#include "ua_conn.h"

struct ua {
	struct ua_conn conn;
	struct sip_uri aor;     /* --as */
	char aor_text[256];
	char from_text[256]; /* From of calls: --from, else the AOR */
	char domain[256];       /* the AOR's domain: what the proxy must prove */
	char contact[512];
	char instance[64];
	char local[64];
	enum tp_proto proto;
	uint32_t cseq;
	int timeout_ms;
	bool quiet;
	struct sip_msg *msg;
	char buf[SIPS_MAX_MSG_SIZE];
};

static void random_hex(char *out, size_t bytes)
{
	unsigned char r[32];
	if (bytes > sizeof(r))
		bytes = sizeof(r);
	if (RAND_bytes(r, (int)bytes) != 1)
		memset(r, 0x33, bytes);
	for (size_t i = 0; i < bytes; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/* Wall-clock time of day, so the ladders of several UAs merge by sorting. */
static void time_of_day(char *out, size_t size)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct tm tm;
	gmtime_r(&now.tv_sec, &tm);
	snprintf(out, size, "%02u:%02u:%02u.%03u", (unsigned)tm.tm_hour % 24u, (unsigned)tm.tm_min % 60u,
		 (unsigned)tm.tm_sec % 61u, (unsigned)(now.tv_nsec / 1000000) % 1000u);
}

/* One ladder line: time, direction, first line (and CSeq for responses). */
static void ladder(struct ua *u, bool out, const char *msg, size_t len)
{
	const char *eol = memchr(msg, '\r', len);
	size_t n = eol ? (size_t)(eol - msg) : len;
	const char *cseq = NULL;
	for (const char *p = msg; p && p < msg + len; p = memchr(p, '\n', (size_t)(msg + len - p))) {
		if (*p == '\n')
			p++;
		if ((size_t)(msg + len - p) > 5 && !strncasecmp(p, "CSeq:", 5)) {
			cseq = p + 5;
			break;
		}
	}
	int cl = 0;
	if (cseq) {
		while (*cseq == ' ')
			cseq++;
		while (cseq[cl] && cseq[cl] != '\r' && cseq[cl] != '\n')
			cl++;
	}
	char tod[24];
	time_of_day(tod, sizeof(tod));
	printf("%s %s %s %.*s%s%.*s%s\n", tod, u->aor_text, out ? "-->" : "<--", (int)n, msg,
	       cseq && !strncmp(msg, "SIP/", 4) ? " (" : "", cseq && !strncmp(msg, "SIP/", 4) ? cl : 0,
	       cseq ? cseq : "", cseq && !strncmp(msg, "SIP/", 4) ? ")" : "");
	/* The routing headers show who Record-Routed how (RFC 5922 §7.5);
	 * X-Sipsd-* carry policy verdicts (docs/policies.md). */
	const char *end = msg + len;
	for (const char *p = memchr(msg, '\n', len); p && p + 1 < end; p = memchr(p + 1, '\n', (size_t)(end - p - 1))) {
		const char *line = p + 1;
		if (line[0] == '\r')
			break;
		if ((size_t)(end - line) > 13 && (!strncasecmp(line, "Record-Route:", 13) ||
						  !strncasecmp(line, "Route:", 6) ||
						  !strncasecmp(line, "X-Sipsd-", 8))) {
			const char *le = memchr(line, '\r', (size_t)(end - line));
			printf("%s %s        %.*s\n", tod, u->aor_text, (int)(le ? le - line : end - line),
			       line);
		}
	}
	fflush(stdout);
}

static int ua_send(struct ua *u, const char *buf, size_t len)
{
	ladder(u, true, buf, len);
	return ua_conn_send(&u->conn, buf, len);
}

/* Wait for a message; parse it into u->msg. Returns 1, 0 on timeout, <0. */
static int ua_wait(struct ua *u, int timeout_ms)
{
	for (;;) {
		const char *m;
		size_t len;
		int rc = ua_conn_recv(&u->conn, timeout_ms, &m, &len);
		if (rc <= 0)
			return rc;
		if (len > sizeof(u->buf))
			continue;
		memcpy(u->buf, m, len);
		struct sip_parse_error err;
		if (sip_msg_parse(u->msg, u->buf, len,
				  u->proto == TP_PROTO_UDP ? SIP_PARSE_DATAGRAM : SIP_PARSE_STREAM, &err) < 0)
			continue;
		ladder(u, false, u->buf, len);
		return 1;
	}
}

/* Waits for the final response to the request with branch `branch`,
 * answering requests that arrive meanwhile is not needed here. Returns the
 * status, 0 on timeout, <0 on error. */
static int ua_final(struct ua *u, const char *branch)
{
	for (;;) {
		int rc = ua_wait(u, u->timeout_ms);
		if (rc <= 0)
			return rc;
		const struct sip_msg *m = u->msg;
		if (m->is_request || !m->via || !str_eq(m->via->branch, str_from_cstr(branch)))
			continue;
		if (m->status >= 200)
			return (int)m->status;
	}
}

static const char *proto_name(enum tp_proto p)
{
	return p == TP_PROTO_UDP ? "UDP" : p == TP_PROTO_TCP ? "TCP" : "TLS";
}

static int ua_register(struct ua *u, unsigned expires)
{
	char branch[48], tag[17], callid[33], req[2048];
	snprintf(branch, sizeof(branch), "z9hG4bK");
	random_hex(branch + 7, 16);
	random_hex(tag, 8);
	random_hex(callid, 16);
	const char *scheme = u->aor.scheme_id == SIP_SCHEME_SIPS ? "sips" : "sip";
	int n = snprintf(req, sizeof(req),
			 "REGISTER %s:%s SIP/2.0\r\n"
			 "Via: SIP/2.0/%s %s;branch=%s;rport\r\n"
			 "Max-Forwards: 70\r\n"
			 "From: <%s>;tag=%s\r\n"
			 "To: <%s>\r\n"
			 "Call-ID: %s\r\n"
			 "CSeq: %u REGISTER\r\n"
			 "Contact: <%s>;+sip.instance=\"<urn:uuid:%s>\";reg-id=1\r\n"
			 "Supported: outbound, path\r\n"
			 "Expires: %u\r\n"
			 "Content-Length: 0\r\n\r\n",
			 scheme, u->domain, proto_name(u->proto), u->local, branch, u->aor_text, tag,
			 u->aor_text, callid, ++u->cseq, u->contact, u->instance, expires);
	if (n < 0 || (size_t)n >= sizeof(req))
		return -EMSGSIZE;
	if (ua_send(u, req, (size_t)n) < 0)
		return -EPIPE;
	return ua_final(u, branch);
}

/* Answer `req` (in u->msg) with `status` and optional extra lines. */
static void ua_respond(struct ua *u, int status, const char *totag, const char *extra)
{
	char out[8192];
	int n = sip_response_build(u->msg, status, NULL, str_from_cstr(totag), str_from_cstr(extra),
				   out, sizeof(out));
	if (n > 0)
		ua_send(u, out, (size_t)n);
}

static const char sdp_fmt[] = "v=0\r\no=sipsctl 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
			      "m=audio 9 RTP/AVP 0\r\n";

/* Callee: register, then answer up to `calls` INVITEs on the flow until each
 * is hung up, sending CRLF keep-alives (RFC 5626 §4.4.1). */
/* The dialog a callee keeps from the INVITE it answered (§12.1.1): the
 * route set is the Record-Route in order, the remote target the Contact. */
struct ua_dialog {
	char route[2048];
	char target[512];
	char from[600]; /* the caller's From, our To */
	char to[600];   /* the caller's To, our From (with our tag) */
	char callid[256];
};

static struct ua_dialog callee_dialog;

static void dialog_from_invite(const struct sip_msg *m, const char *totag)
{
	struct ua_dialog *d = &callee_dialog;
	size_t off = 0;
	d->route[0] = '\0';
	for (const struct sip_addr *a = m->record_route; a && off < sizeof(d->route); a = a->next)
		off += (size_t)snprintf(d->route + off, sizeof(d->route) - off, "Route: <%.*s>\r\n",
					(int)a->uri.raw.len, a->uri.raw.s);
	snprintf(d->target, sizeof(d->target), "%.*s", m->contact ? (int)m->contact->uri.raw.len : 0,
		 m->contact ? m->contact->uri.raw.s : "");
	snprintf(d->from, sizeof(d->from), "%.*s", (int)m->from->raw.len, m->from->raw.s);
	snprintf(d->to, sizeof(d->to), "%.*s;tag=%s", (int)m->to->raw.len, m->to->raw.s, totag);
	snprintf(d->callid, sizeof(d->callid), "%.*s", (int)m->call_id.len, m->call_id.s);
}

/* Callee hangs up: BYE along the dialog's route set, wait for its 200. */
static int ua_hangup(struct ua *u, const char *totag, int after_ms)
{
	(void)totag;
	struct ua_dialog *d = &callee_dialog;
	if (!d->target[0])
		return -EINVAL;
	struct timespec ts = {after_ms / 1000, (long)(after_ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	char branch[48], req[8192];
	snprintf(branch, sizeof(branch), "z9hG4bK");
	random_hex(branch + 7, 16);
	int n = snprintf(req, sizeof(req),
			 "BYE %s SIP/2.0\r\nVia: SIP/2.0/%s %s;branch=%s;rport\r\n%s"
			 "Max-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\n"
			 "CSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
			 d->target, proto_name(u->proto), u->local, branch, d->route, d->to, d->from,
			 d->callid);
	if (n < 0 || (size_t)n >= sizeof(req) || ua_send(u, req, (size_t)n) < 0)
		return -EPIPE;
	int st = ua_final(u, branch);
	printf("result: hung up, BYE answered %d\n", st);
	return st == 200 ? 0 : -EPROTO;
}

static int ua_answer(struct ua *u, unsigned calls, int wait_ms, int hangup_ms)
{
	char totag[17];
	random_hex(totag, 8);
	unsigned done = 0;
	int idle = 0;
	while (done < calls && idle < wait_ms) {
		int rc = ua_wait(u, 1000);
		if (rc < 0) {
			printf("error: connection lost: %s\n", strerror(-rc));
			return SIPSCTL_FAIL;
		}
		if (rc == 0) {
			idle += 1000;
			ua_conn_send(&u->conn, "\r\n\r\n", 4); /* keep-alive ping */
			continue;
		}
		idle = 0;
		struct sip_msg *m = u->msg;
		if (!m->is_request)
			continue;
		char ip[64];
		snprintf(ip, sizeof(ip), "%s", u->local);
		char *colon = strrchr(ip, ':');
		if (colon)
			*colon = '\0';
		switch (m->method_id) {
		case SIP_METHOD_INVITE: {
			char extra[1024];
			dialog_from_invite(m, totag);
			ua_respond(u, 180, totag, NULL);
			char sdp[256];
			int sl = snprintf(sdp, sizeof(sdp), sdp_fmt, ip, ip);
			/* The 200 carries the body: build it by hand. */
			char out[8192];
			snprintf(extra, sizeof(extra), "Contact: <%s>\r\nContent-Type: application/sdp\r\n",
				 u->contact);
			int n = sip_response_build(m, 200, NULL, str_from_cstr(totag), str_from_cstr(extra),
						   out, sizeof(out) - (size_t)sl);
			if (n > 0) {
				/* Replace "Content-Length: 0\r\n\r\n" by the body's. */
				char *cl = strstr(out, "Content-Length: 0\r\n\r\n");
				if (cl) {
					int k = snprintf(cl, sizeof(out) - (size_t)(cl - out),
							 "Content-Length: %d\r\n\r\n%s", sl, sdp);
					n = (int)(cl - out) + k;
				}
				ua_send(u, out, (size_t)n);
			}
			break;
		}
		case SIP_METHOD_ACK:
			if (hangup_ms >= 0 && ua_hangup(u, totag, hangup_ms) == 0)
				done++;
			break;
		case SIP_METHOD_BYE:
			ua_respond(u, 200, totag, NULL);
			done++;
			break;
		case SIP_METHOD_CANCEL:
			ua_respond(u, 200, totag, NULL);
			done++;
			break;
		case SIP_METHOD_OPTIONS:
			ua_respond(u, 200, totag, NULL);
			break;
		default:
			ua_respond(u, 501, totag, NULL);
			break;
		}
	}
	if (done < calls) {
		printf("error: %u of %u calls handled before the wait ran out\n", done, calls);
		return SIPSCTL_FAIL;
	}
	printf("result: answered %u call(s)\n", done);
	return SIPSCTL_OK;
}

/* Caller: INVITE `target`, ACK the 200 along the route set, hold, BYE. */
static int ua_call(struct ua *u, const char *target, int hold_ms)
{
	char branch[48], tag[17], callid[33], req[8192], sdp[256], ip[64];
	snprintf(ip, sizeof(ip), "%s", u->local);
	char *colon = strrchr(ip, ':');
	if (colon)
		*colon = '\0';
	int sl = snprintf(sdp, sizeof(sdp), sdp_fmt, ip, ip);
	snprintf(branch, sizeof(branch), "z9hG4bK");
	random_hex(branch + 7, 16);
	random_hex(tag, 8);
	random_hex(callid, 16);
	int n = snprintf(req, sizeof(req),
			 "INVITE %s SIP/2.0\r\n"
			 "Via: SIP/2.0/%s %s;branch=%s;rport\r\n"
			 "Max-Forwards: 70\r\n"
			 "From: <%s>;tag=%s\r\n"
			 "To: <%s>\r\n"
			 "Call-ID: %s\r\n"
			 "CSeq: 1 INVITE\r\n"
			 "Contact: <%s>\r\n"
			 "Content-Type: application/sdp\r\n"
			 "Content-Length: %d\r\n\r\n%s",
			 target, proto_name(u->proto), u->local, branch, u->from_text, tag, target, callid,
			 u->contact, sl, sdp);
	if (n < 0 || (size_t)n >= sizeof(req) || ua_send(u, req, (size_t)n) < 0)
		return SIPSCTL_FAIL;
	int status = 0;
	char route[2048] = "", remote_target[512] = "", to[600] = "";
	for (;;) {
		int rc = ua_wait(u, u->timeout_ms);
		if (rc <= 0) {
			printf("error: no final response to INVITE\n");
			return SIPSCTL_FAIL;
		}
		const struct sip_msg *m = u->msg;
		if (m->is_request || !m->via || !str_eq(m->via->branch, str_from_cstr(branch)))
			continue;
		if (m->status < 200)
			continue;
		status = (int)m->status;
		if (m->to)
			snprintf(to, sizeof(to), "%.*s", (int)m->to->raw.len, m->to->raw.s);
		if (status < 300) {
			/* §12.1.2: the route set is the Record-Route reversed; the
			 * remote target the Contact. */
			int cnt = 0;
			const struct sip_addr *rr[32];
			for (const struct sip_addr *a = m->record_route; a && cnt < 32; a = a->next)
				rr[cnt++] = a;
			size_t off = 0;
			for (int i = cnt - 1; i >= 0 && off < sizeof(route); i--)
				off += (size_t)snprintf(route + off, sizeof(route) - off, "Route: <%.*s>\r\n",
							(int)rr[i]->uri.raw.len, rr[i]->uri.raw.s);
			if (m->contact)
				snprintf(remote_target, sizeof(remote_target), "%.*s",
					 (int)m->contact->uri.raw.len, m->contact->uri.raw.s);
		}
		break;
	}
	if (status >= 300) {
		/* The ACK of a non-2xx goes in the INVITE transaction. */
		n = snprintf(req, sizeof(req),
			     "ACK %s SIP/2.0\r\nVia: SIP/2.0/%s %s;branch=%s;rport\r\n"
			     "Max-Forwards: 70\r\nFrom: <%s>;tag=%s\r\nTo: %s\r\nCall-ID: %s\r\n"
			     "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
			     target, proto_name(u->proto), u->local, branch, u->from_text, tag, to, callid);
		ua_send(u, req, (size_t)n);
		printf("result: call failed with %d\n", status);
		return SIPSCTL_FAIL;
	}
	char b2[48];
	snprintf(b2, sizeof(b2), "z9hG4bK");
	random_hex(b2 + 7, 16);
	n = snprintf(req, sizeof(req),
		     "ACK %s SIP/2.0\r\nVia: SIP/2.0/%s %s;branch=%s;rport\r\n%s"
		     "Max-Forwards: 70\r\nFrom: <%s>;tag=%s\r\nTo: %s\r\nCall-ID: %s\r\n"
		     "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
		     remote_target, proto_name(u->proto), u->local, b2, route, u->from_text, tag, to,
		     callid);
	ua_send(u, req, (size_t)n);
	/* Hold the call; the callee may hang up first (a BYE along the route
	 * set towards us): answer it and stop. */
	for (int waited = 0; waited < hold_ms;) {
		int step = hold_ms - waited < 200 ? hold_ms - waited : 200;
		int rc = ua_wait(u, step);
		if (rc < 0)
			break;
		if (rc == 0) {
			waited += step;
			continue;
		}
		if (u->msg->is_request && u->msg->method_id == SIP_METHOD_BYE) {
			ua_respond(u, 200, "", NULL);
			printf("result: call completed (INVITE 200, ACK, BYE from the callee answered 200)\n");
			return SIPSCTL_OK;
		}
	}
	random_hex(b2 + 7, 16);
	n = snprintf(req, sizeof(req),
		     "BYE %s SIP/2.0\r\nVia: SIP/2.0/%s %s;branch=%s;rport\r\n%s"
		     "Max-Forwards: 70\r\nFrom: <%s>;tag=%s\r\nTo: %s\r\nCall-ID: %s\r\n"
		     "CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
		     remote_target, proto_name(u->proto), u->local, b2, route, u->from_text, tag, to,
		     callid);
	ua_send(u, req, (size_t)n);
	int bye = ua_final(u, b2);
	if (bye != 200) {
		printf("result: BYE answered %d\n", bye);
		return SIPSCTL_FAIL;
	}
	printf("result: call completed (INVITE 200, ACK, BYE 200)\n");
	return SIPSCTL_OK;
}

static void usage(FILE *out, const char *cmd)
{
	if (!strcmp(cmd, "register"))
		fprintf(out, "usage: sipsctl register --as AOR --proxy HOST:PORT [--ca FILE] [--expires S]\n"
			     "                         [--transport udp|tcp|tls] [--timeout S]\n"
			     "  Registers AOR (sip: or sips:) at its domain's proxy over TLS (sips:) and\n"
			     "  prints the answer. The proxy must prove AOR's domain (RFC 5922).\n");
	else
		fprintf(out, "usage: sipsctl call --as AOR --proxy HOST:PORT [--ca FILE] --to URI [--hold S]\n"
			     "                    [--from URI]\n"
			     "       sipsctl call --answer --as AOR --proxy HOST:PORT [--ca FILE] [--calls N]\n"
			     "                    [--wait S] [--hangup S]\n"
			     "  Caller: INVITE, ACK, hold, BYE along the route set. Callee (--answer):\n"
			     "  registers, keeps the flow open, answers calls on it.\n");
}

static int run(int argc, char **argv, bool is_call)
{
	static const struct option longopts[] = {
		{"as", required_argument, NULL, 'a'},	     {"proxy", required_argument, NULL, 'p'},
		{"ca", required_argument, NULL, 'c'},	     {"expires", required_argument, NULL, 'e'},
		{"transport", required_argument, NULL, 'T'}, {"timeout", required_argument, NULL, 't'},
		{"to", required_argument, NULL, 'o'},	     {"hold", required_argument, NULL, 'H'},
		{"answer", no_argument, NULL, 'A'},	     {"calls", required_argument, NULL, 'n'},
		{"wait", required_argument, NULL, 'w'},	     {"register", no_argument, NULL, 'R'},
		{"from", required_argument, NULL, 'f'},	     {"hangup", required_argument, NULL, 'U'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *as = NULL, *proxy = NULL, *ca = NULL, *transport = NULL, *to = NULL, *from = NULL;
	uint64_t expires = 600, timeout = 10, hold = 1, calls = 1, wait = 30;
	bool answer = false, do_register = !is_call;
	int hangup = -1; /* callee: hang up this many ms after the ACK */
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int bad = 0;
		switch (opt) {
		case 'a': as = optarg; break;
		case 'p': proxy = optarg; break;
		case 'c': ca = optarg; break;
		case 'T': transport = optarg; break;
		case 'o': to = optarg; break;
		case 'f': from = optarg; break;
		case 'U': {
			uint64_t v;
			if (str_to_u64(str_from_cstr(optarg), 3600, &v) < 0) {
				fprintf(stderr, "sipsctl %s: bad number '%s'\n", argv[0], optarg);
				return SIPSCTL_USAGE;
			}
			hangup = (int)v * 1000;
			break;
		}
		case 'A': answer = true; do_register = true; break;
		case 'R': do_register = true; break;
		case 'e': bad = str_to_u64(str_from_cstr(optarg), 86400, &expires); break;
		case 't': bad = str_to_u64(str_from_cstr(optarg), 3600, &timeout); break;
		case 'H': bad = str_to_u64(str_from_cstr(optarg), 3600, &hold); break;
		case 'n': bad = str_to_u64(str_from_cstr(optarg), 100000, &calls); break;
		case 'w': bad = str_to_u64(str_from_cstr(optarg), 86400, &wait); break;
		case 'h': usage(stdout, argv[0]); return SIPSCTL_OK;
		default: usage(stderr, argv[0]); return SIPSCTL_USAGE;
		}
		if (bad) {
			fprintf(stderr, "sipsctl %s: bad number '%s'\n", argv[0], optarg);
			return SIPSCTL_USAGE;
		}
	}
	if (!as || !proxy || optind != argc || (is_call && !answer && !to)) {
		usage(stderr, argv[0]);
		return SIPSCTL_USAGE;
	}
	struct ua *u = calloc(1, sizeof(*u));
	struct sip_msg *msg = malloc(sizeof(*msg));
	if (!u || !msg) {
		free(u);
		free(msg);
		return SIPSCTL_USAGE;
	}
	u->msg = msg;
	u->timeout_ms = (int)timeout * 1000;
	snprintf(u->aor_text, sizeof(u->aor_text), "%s", as);
	int status = SIPSCTL_USAGE;
	if (sip_uri_parse(str_from_cstr(u->aor_text), &u->aor, NULL, NULL) < 0 ||
	    (u->aor.scheme_id != SIP_SCHEME_SIP && u->aor.scheme_id != SIP_SCHEME_SIPS) ||
	    !u->aor.has_user) {
		fprintf(stderr, "sipsctl %s: --as needs a sip: or sips: AOR with a user\n", argv[0]);
		goto out;
	}
	str_to_cbuf(u->aor.host, u->domain, sizeof(u->domain));
	u->proto = u->aor.scheme_id == SIP_SCHEME_SIPS ? TP_PROTO_TLS : TP_PROTO_TCP;
	if (transport) {
		u->proto = !strcmp(transport, "udp") ? TP_PROTO_UDP : !strcmp(transport, "tcp") ? TP_PROTO_TCP : TP_PROTO_TLS;
		if (u->aor.scheme_id == SIP_SCHEME_SIPS && u->proto != TP_PROTO_TLS) {
			fprintf(stderr, "sipsctl %s: a sips: AOR uses TLS (RFC 5630)\n", argv[0]);
			goto out;
		}
	}
	struct sockaddr_storage dst;
	socklen_t dl;
	if (tp_addr_parse(proxy, u->proto == TP_PROTO_TLS ? 5061 : 5060, &dst, &dl) < 0) {
		fprintf(stderr, "sipsctl %s: --proxy takes a numeric HOST:PORT\n", argv[0]);
		goto out;
	}
	struct ua_conn_opts o = {.ca_file = ca, .timeout_ms = u->timeout_ms};
	status = SIPSCTL_FAIL;
	if (ua_conn_open(&u->conn, u->proto, (struct sockaddr *)&dst, dl, u->domain, &o) < 0) {
		printf("error: %s\n", u->conn.failure);
		goto out;
	}
	tp_addr_format((struct sockaddr *)&u->conn.local, u->local, sizeof(u->local));
	if (u->conn.ssl) {
		const struct tls_peer *p = tls_ssl_peer(u->conn.ssl);
		char ids[512] = "{}";
		if (p)
			tls_identity_set_format(p->ids, ids, sizeof(ids));
		printf("tls: %s authenticated its proxy %s as %s (identities %s, %s); no client certificate\n",
		       u->aor_text, proxy, u->domain, ids, SSL_get_version(u->conn.ssl));
	}
	random_hex(u->instance, 16);
	snprintf(u->contact, sizeof(u->contact), "%s:%.*s@%s;transport=%s;ob",
		 u->aor.scheme_id == SIP_SCHEME_SIPS ? "sips" : "sip", (int)u->aor.user.len,
		 u->aor.user.s, u->local,
		 u->proto == TP_PROTO_UDP ? "udp" : u->proto == TP_PROTO_TCP ? "tcp" : "tls");
	if (do_register) {
		int r = ua_register(u, (unsigned)expires);
		if (r != 200) {
			printf("result: REGISTER answered %d\n", r);
			goto close;
		}
		if (!is_call) {
			printf("result: registered\n");
			status = SIPSCTL_OK;
			goto close;
		}
	}
	/* --from: the caller claims another identity in From (tests of the
	 * authoritative proxy policy, spec T8); --as still picks the proxy. */
	if (from)
		snprintf(u->from_text, sizeof(u->from_text), "%s", from);
	else
		snprintf(u->from_text, sizeof(u->from_text), "%s", u->aor_text);
	status = answer ? ua_answer(u, (unsigned)calls, (int)wait * 1000, hangup)
			: ua_call(u, to, (int)hold * 1000);
close:
	ua_conn_close(&u->conn);
out:
	free(msg);
	free(u);
	return status;
}

int sipsctl_cmd_register(int argc, char **argv)
{
	return run(argc, argv, false);
}

int sipsctl_cmd_call(int argc, char **argv)
{
	return run(argc, argv, true);
}
