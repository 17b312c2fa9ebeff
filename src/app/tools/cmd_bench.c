/* cmd_bench.c: `sipsctl bench`, a SIP load generator on sipsd's own event
 * loop and transport (src/loop, src/transport): a UAS that answers as fast
 * as it can, a UAC with open-loop rate control whose calls are
 * INVITE/100/180/200/ACK/BYE/200 through a proxy (RFC 3261 §13-§15, the
 * route set taken from Record-Route, §12.1.2), and an opener of idle
 * connections for memory figures. One worker thread per --threads, each with
 * its own loop, transport and TLS context (design.md: OpenSSL objects never
 * cross threads). Every run is bounded in time and count. The figures are
 * explained in docs/benchmarks.md. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <openssl/rand.h>

#include "base/log.h"
#include "loop/loop.h"
#include "loop/timer.h"
#include "loop/worker.h"
#include "sip/build.h"
#include "sip/msg.h"
#include "sipsctl.h"
#include "tls/tls_ctx.h"
#include "transport/transport.h"

/* ---- bounds (design.md: every growth path has a named limit) ---- */

#define BENCH_MAX_THREADS 64
#define BENCH_MAX_RATE 1000000.0	       /* calls (or connections) per second */
#define BENCH_MAX_CALLS 100000000ull	       /* --calls */
#define BENCH_MAX_DURATION_S 86400.0	       /* --duration, --hold, UAS lifetime */
#define BENCH_MAX_TIMEOUT_S 600.0	       /* --timeout of one call */
#define BENCH_MAX_INFLIGHT 1000000ull	       /* calls in flight, whole run */
#define BENCH_DEFAULT_INFLIGHT 50000ull	       /* ... by default */
#define BENCH_MAX_SAMPLES (1u << 23)	       /* setup-time samples kept per thread */
#define BENCH_MAX_STEPS 48		       /* --ramp steps */
#define BENCH_MAX_CONNS 200000ull	       /* connections of one run */
#define BENCH_MAX_PARALLEL 4096u	       /* conns: connections being set up per thread */
#define BENCH_STARTS_PER_TICK 20000u	       /* calls started in one tick at most */
#define BENCH_TICK_MS 1u		       /* rate control granularity */
#define BENCH_T1_MS 500u		       /* RFC 3261 §17.1.1.1 */
#define BENCH_T2_MS 4000u		       /* RFC 3261 §17.1.2.2 */
#define BENCH_UAS_PENDING_MAX 65536u	       /* UDP 2xx awaiting their ACK (§13.3.1.4) */
#define BENCH_UAS_BUCKETS 16384u	       /* power of two */
#define BENCH_DRAIN_GRACE_S 5.0		       /* past the last call's timeout: stop anyway */
#define BENCH_SAMPLE_US_MASK ((1u << 26) - 1u) /* a sample: step << 26 | microseconds */
#define BENCH_ROUTE_MAX 1024		       /* bytes of one call's Route lines */
#define BENCH_ROUTE_ENTRIES 16		       /* Record-Route entries followed */
#define BENCH_LOG_FAILURES 5		       /* failures described on stderr per thread */
#define BENCH_MAX_REUSE_CONNS 64	       /* --conns: reused connections per thread */
#define BENCH_RAMP_P99_MS 100.0 /* a step whose p99 setup exceeds this is not sustained */

enum bench_role { BENCH_ROLE_UAS, BENCH_ROLE_UAC, BENCH_ROLE_CONNS };
enum bench_scenario { BENCH_SCEN_CALL, BENCH_SCEN_OPTIONS, BENCH_SCEN_REGISTER };

/* Why a call failed when no final response said so. */
enum bench_reason {
	BR_TIMEOUT = 0,
	BR_CONNECT,
	BR_TLS,
	BR_CLOSED,
	BR_SEND,
	BR_INFLIGHT,
	BR_UNFINISHED,
	BR__COUNT
};
static const char *const bench_reason_names[BR__COUNT] = {
    "timeout",	   "connect-failed", "tls-handshake-failed", "conn-closed",
    "send-failed", "inflight-limit", "unfinished",
};

/* The request a failing final response answered. */
enum bench_meth { BM_INVITE = 0, BM_BYE, BM_OTHER, BM__COUNT };

/* UAS: requests received by method. */
enum bench_uas_kind {
	BU_INVITE = 0,
	BU_ACK,
	BU_BYE,
	BU_OPTIONS,
	BU_REGISTER,
	BU_CANCEL,
	BU_OTHER,
	BU__COUNT
};
static const char *const bench_uas_names[BU__COUNT] = {"INVITE",   "ACK",    "BYE",  "OPTIONS",
						       "REGISTER", "CANCEL", "other"};

struct bench_opts {
	enum bench_role role;
	enum tp_proto proto;
	enum bench_scenario scenario;
	const char *listen, *cert, *key, *ca, *domain, *target, *proxy, *from, *contact, *local;
	unsigned threads;
	double rate;	      /* calls/s (uac), connections/s (conns); 0: not given */
	double duration_s;    /* 0: not given */
	uint64_t calls;	      /* 0: not given */
	uint64_t count;	      /* conns: connections to open */
	unsigned parallel;    /* conns: set up at once per thread */
	unsigned reuse_conns; /* uac --conn reuse: connections per thread */
	uint64_t max_inflight;
	double timeout_s;
	double hold_s;
	bool per_call;
	bool json;
	bool resume;
	bool verbose;
	bool ramp;
	double ramp_start, ramp_factor, ramp_step_s, ramp_max;
};

struct bench_thread;

enum bench_call_state { CALL_FREE = 0, CALL_INVITING, CALL_HOLD, CALL_BYE, CALL_REQ };

/* One call (or one OPTIONS/REGISTER transaction) of the UAC. Calls live in
 * slots that are reused; the Call-ID names thread, slot and generation so a
 * response finds its call without a search. */
struct bench_call {
	struct bench_call *next, *prev; /* the thread's in-flight list */
	struct bench_thread *t;
	uint32_t slot;
	uint32_t gen;
	enum bench_call_state state;
	unsigned step;
	bool provisional;
	struct tp_conn *conn; /* streams: a reference */
	uint64_t t_start_ns;
	struct loop_timer rtx;	    /* UDP retransmissions (§17.1), or the hold */
	struct loop_timer deadline; /* --timeout */
	unsigned rtx_ms;
	char callid[64];
	char tag[24];
	char branch[48];  /* INVITE (or OPTIONS/REGISTER) */
	char bbranch[48]; /* BYE */
	char to[320];	  /* To of the 2xx, with its tag */
	char target[320]; /* remote target: the Contact of the 2xx */
	char route[BENCH_ROUTE_MAX];
};

/* One idle connection of `bench conns`. */
enum bench_conn_state { BC_NONE = 0, BC_PENDING, BC_OPEN, BC_DEAD };
struct bench_conn {
	struct tp_conn *conn;
	enum bench_conn_state state;
};

/* A UDP 2xx that the UAS retransmits until the ACK (§13.3.1.4). */
struct uas_pending {
	struct uas_pending *next;
	struct bench_thread *t;
	uint64_t hash;
	char callid[128];
	size_t callid_len;
	struct sockaddr_storage dst;
	socklen_t dst_len;
	int fd;
	unsigned interval_ms, elapsed_ms;
	struct loop_timer timer;
	size_t len;
	char buf[];
};

struct bench_stats {
	_Atomic uint64_t started, ok, failed, inflight;
	_Atomic uint64_t step_started[BENCH_MAX_STEPS], step_ok[BENCH_MAX_STEPS],
	    step_failed[BENCH_MAX_STEPS];
	uint64_t by_reason[BR__COUNT];
	uint64_t by_status[BM__COUNT][700];
	uint64_t provisional, retransmissions, stray, parse_errors, answered;
	uint64_t handshakes_ok;
	uint32_t *samples;
	size_t nsamples, samples_cap;
	uint64_t samples_dropped;
	uint64_t first_start_ns, last_end_ns;
	/* uas */
	uint64_t uas_req[BU__COUNT];
	uint64_t uas_responses, uas_rtx, uas_pending_full, uas_ack_timeouts;
	/* conns */
	_Atomic uint64_t conns_ok, conns_failed, conns_lost;
	uint64_t first_fail_logged;
};

struct bench_run;

struct bench_thread {
	struct bench_run *run;
	unsigned index;
	double share;	/* this thread's part of the rate */
	uint64_t quota; /* calls (connections) this thread starts at most */
	struct worker *w;
	struct loop *loop;
	struct transport *tp;
	struct tls_ctx *tls;
	struct sip_msg *msg;
	char sentby[96];
	uint16_t udp_port;
	struct loop_timer tick;
	bool starting_done;
	bool destroying; /* connection callbacks ignored from now on */
	atomic_bool done;
	atomic_bool ready; /* conns: every connection set up */
	/* uac */
	struct tp_conn *rconn[BENCH_MAX_REUSE_CONNS]; /* --conn reuse, used in turn */
	struct tp_conn *failed_conn;
	enum bench_reason failed_reason;
	struct bench_call **slots;
	uint32_t *free_slots;
	uint32_t nslots, nfree;
	struct bench_call *inflight_head;
	uint64_t seq;
	uint64_t started_local;
	/* uas */
	struct uas_pending **buckets;
	unsigned npending;
	/* conns */
	struct bench_conn *conns;
	uint64_t conns_opened;
	unsigned conns_pending;
	bool conns_closed;
	struct bench_stats st;
	char out[SIPS_MAX_MSG_SIZE];
};

struct bench_run {
	struct bench_opts o;
	struct sockaddr_storage proxy;
	socklen_t proxy_len;
	struct sockaddr_storage listen;
	socklen_t listen_len;
	char domain[256]; /* what the proxy must prove (TLS) */
	char from_uri[300];
	char target_domain[256];
	char sdp[300];
	int sdp_len;
	char run_id[12];
	uint64_t t0_ns;
	uint64_t end_ns;  /* no call starts after this */
	uint64_t stop_ns; /* when starting stopped early (0: it did not) */
	double step_rate[BENCH_MAX_STEPS];
	double step_cum[BENCH_MAX_STEPS + 1];
	unsigned nsteps;
	bool calls_only; /* --calls without --duration */
	atomic_int stop;
	atomic_int release;
	struct tls_ticket_keys *keys;
	struct bench_thread *th[BENCH_MAX_THREADS];
	unsigned nthreads;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char *proto_upper(enum tp_proto p)
{
	return p == TP_PROTO_UDP ? "UDP" : p == TP_PROTO_TCP ? "TCP" : "TLS";
}

static const char *proto_lower(enum tp_proto p)
{
	return p == TP_PROTO_UDP ? "udp" : p == TP_PROTO_TCP ? "tcp" : "tls";
}

static uint64_t fnv64(struct str s)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < s.len; i++)
		h = (h ^ (unsigned char)s.s[i]) * 1099511628211ull;
	return h;
}

/* Parse a hex number ending at `end` or at `stop`; advances *p. */
static bool hex_field(const char **p, const char *end, char stop, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = *p;
	int n = 0;
	while (s < end && *s != stop) {
		if (!ascii_is_hex(*s) || ++n > 16)
			return false;
		v = v * 16 + (uint64_t)ascii_hex_value(*s);
		s++;
	}
	if (n == 0 || s >= end)
		return false;
	*p = s + 1;
	*out = v;
	return true;
}

/* ---- shared: sending ---- */

/* Send on the call's connection, or over UDP to the proxy. Returns 0 or a
 * negative errno; a stream error may already have failed the call (its
 * state is then CALL_FREE). */
static int uac_send(struct bench_thread *t, struct bench_call *c, const char *buf, size_t len)
{
	struct bench_run *r = t->run;
	if (r->o.proto == TP_PROTO_UDP)
		return tp_udp_send(t->tp, -1, (struct sockaddr *)&r->proxy, r->proxy_len, buf, len);
	if (!c->conn)
		return -ENOTCONN;
	return tp_conn_send(c->conn, buf, len);
}

/* ---- UAC: statistics ---- */

static void sample_add(struct bench_thread *t, unsigned step, uint64_t ns)
{
	struct bench_stats *s = &t->st;
	if (s->nsamples == s->samples_cap) {
		size_t cap = s->samples_cap ? s->samples_cap * 2 : 65536;
		if (cap > BENCH_MAX_SAMPLES)
			cap = BENCH_MAX_SAMPLES;
		uint32_t *n = cap > s->samples_cap ? realloc(s->samples, cap * sizeof(*n)) : NULL;
		if (!n) {
			s->samples_dropped++;
			return;
		}
		s->samples = n;
		s->samples_cap = cap;
	}
	uint64_t us = ns / 1000;
	if (us > BENCH_SAMPLE_US_MASK)
		us = BENCH_SAMPLE_US_MASK;
	s->samples[s->nsamples++] = ((uint32_t)step << 26) | (uint32_t)us;
}

static void uac_check_done(struct bench_thread *t);

/* End a call: timers off, out of the in-flight list, the slot freed, a
 * per-call connection closed (after what is queued is written). */
static void call_end(struct bench_call *c)
{
	struct bench_thread *t = c->t;
	loop_timer_cancel(&c->rtx);
	loop_timer_cancel(&c->deadline);
	if (c->prev)
		c->prev->next = c->next;
	else
		t->inflight_head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
	c->state = CALL_FREE;
	t->free_slots[t->nfree++] = c->slot;
	atomic_fetch_sub_explicit(&t->st.inflight, 1, memory_order_relaxed);
	t->st.last_end_ns = now_ns();
	struct tp_conn *conn = c->conn;
	c->conn = NULL;
	if (conn) {
		if (t->run->o.per_call)
			tp_conn_close(conn, true, "call done");
		tp_conn_unref(conn);
	}
	uac_check_done(t);
}

static void call_ok(struct bench_call *c)
{
	struct bench_thread *t = c->t;
	atomic_fetch_add_explicit(&t->st.ok, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&t->st.step_ok[c->step], 1, memory_order_relaxed);
	call_end(c);
}

/* Fail a call for `reason` (>= 0), or for a final `status` to `meth`. */
static void call_fail(struct bench_call *c, int reason, enum bench_meth meth, unsigned status,
		      const char *detail)
{
	struct bench_thread *t = c->t;
	if (c->state == CALL_FREE)
		return;
	if (reason >= 0)
		t->st.by_reason[reason]++;
	else if (status < 700)
		t->st.by_status[meth][status]++;
	if (t->run->o.verbose && t->st.first_fail_logged < BENCH_LOG_FAILURES) {
		t->st.first_fail_logged++;
		if (reason >= 0)
			fprintf(stderr, "bench: call %s failed: %s %s\n", c->callid,
				bench_reason_names[reason], detail ? detail : "");
		else
			fprintf(stderr, "bench: call %s failed: %s answered %u\n", c->callid,
				meth == BM_BYE ? "BYE" : "request", status);
	}
	atomic_fetch_add_explicit(&t->st.failed, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&t->st.step_failed[c->step], 1, memory_order_relaxed);
	call_end(c);
}

/* ---- UAC: messages (RFC 3261 §8.1.1, §13.2.1, §13.2.2.4, §15.1.1) ---- */

static void branch_make(struct bench_thread *t, char *out, size_t size)
{
	snprintf(out, size, "z9hG4bK%s.%x.%llx", t->run->run_id, t->index,
		 (unsigned long long)++t->seq);
}

static const char *scenario_method(enum bench_scenario s)
{
	return s == BENCH_SCEN_OPTIONS	  ? "OPTIONS"
	       : s == BENCH_SCEN_REGISTER ? "REGISTER"
					  : "INVITE";
}

/* The first request of a call: INVITE with an SDP offer, or OPTIONS, or
 * REGISTER. Returns the length, or -EMSGSIZE. */
static int build_first(struct bench_thread *t, struct bench_call *c)
{
	struct bench_run *r = t->run;
	const char *tp = proto_upper(r->o.proto), *tl = proto_lower(r->o.proto);
	int n;
	if (r->o.scenario == BENCH_SCEN_CALL)
		n = snprintf(t->out, sizeof(t->out),
			     "INVITE %s SIP/2.0\r\n"
			     "Via: SIP/2.0/%s %s;branch=%s;rport\r\n"
			     "Max-Forwards: 70\r\n"
			     "From: <%s>;tag=%s\r\n"
			     "To: <%s>\r\n"
			     "Call-ID: %s\r\n"
			     "CSeq: 1 INVITE\r\n"
			     "Contact: <sip:uac@%s;transport=%s>\r\n"
			     "User-Agent: sipsctl-bench\r\n"
			     "Content-Type: application/sdp\r\n"
			     "Content-Length: %d\r\n\r\n%s",
			     r->o.target, tp, t->sentby, c->branch, r->from_uri, c->tag,
			     r->o.target, c->callid, t->sentby, tl, r->sdp_len, r->sdp);
	else if (r->o.scenario == BENCH_SCEN_OPTIONS)
		n = snprintf(t->out, sizeof(t->out),
			     "OPTIONS %s SIP/2.0\r\n"
			     "Via: SIP/2.0/%s %s;branch=%s;rport\r\n"
			     "Max-Forwards: 70\r\n"
			     "From: <%s>;tag=%s\r\n"
			     "To: <%s>\r\n"
			     "Call-ID: %s\r\n"
			     "CSeq: 1 OPTIONS\r\n"
			     "Accept: application/sdp\r\n"
			     "User-Agent: sipsctl-bench\r\n"
			     "Content-Length: 0\r\n\r\n",
			     r->o.target, tp, t->sentby, c->branch, r->from_uri, c->tag,
			     r->o.target, c->callid);
	else
		n = snprintf(t->out, sizeof(t->out),
			     "REGISTER sip:%s SIP/2.0\r\n"
			     "Via: SIP/2.0/%s %s;branch=%s;rport\r\n"
			     "Max-Forwards: 70\r\n"
			     "From: <%s>;tag=%s\r\n"
			     "To: <%s>\r\n"
			     "Call-ID: %s\r\n"
			     "CSeq: 1 REGISTER\r\n"
			     "Contact: <sip:uac-%x-%x@%s;transport=%s>\r\n"
			     "Expires: 600\r\n"
			     "User-Agent: sipsctl-bench\r\n"
			     "Content-Length: 0\r\n\r\n",
			     r->target_domain, tp, t->sentby, c->branch, r->o.target, c->tag,
			     r->o.target, c->callid, t->index, c->slot, t->sentby, tl);
	return n < 0 || (size_t)n >= sizeof(t->out) ? -EMSGSIZE : n;
}

/* ACK (§13.2.2.4 for a 2xx: new branch, along the route set to the remote
 * target; §17.1.1.3 for a non-2xx: the INVITE's branch and Request-URI) or
 * BYE (§15.1.1, along the route set). */
static int build_in_dialog(struct bench_thread *t, struct bench_call *c, const char *method,
			   unsigned cseq, bool non2xx_ack)
{
	struct bench_run *r = t->run;
	const char *ruri = non2xx_ack || !c->target[0] ? r->o.target : c->target;
	const char *branch = non2xx_ack ? c->branch : !strcmp(method, "BYE") ? c->bbranch : NULL;
	char ackb[48];
	if (!branch) {
		branch_make(t, ackb, sizeof(ackb));
		branch = ackb;
	}
	int n = snprintf(t->out, sizeof(t->out),
			 "%s %s SIP/2.0\r\n"
			 "Via: SIP/2.0/%s %s;branch=%s;rport\r\n"
			 "%s"
			 "Max-Forwards: 70\r\n"
			 "From: <%s>;tag=%s\r\n"
			 "To: %s\r\n"
			 "Call-ID: %s\r\n"
			 "CSeq: %u %s\r\n"
			 "User-Agent: sipsctl-bench\r\n"
			 "Content-Length: 0\r\n\r\n",
			 method, ruri, proto_upper(r->o.proto), t->sentby, branch,
			 non2xx_ack ? "" : c->route, r->from_uri, c->tag, c->to, c->callid, cseq,
			 method);
	return n < 0 || (size_t)n >= sizeof(t->out) ? -EMSGSIZE : n;
}

/* Send a built message for `c`; a failure fails the call. Returns 0 or <0. */
static int call_send_out(struct bench_call *c, int n)
{
	struct bench_thread *t = c->t;
	if (n < 0) {
		call_fail(c, BR_SEND, BM_INVITE, 0, "message too large");
		return n;
	}
	int rc = uac_send(t, c, t->out, (size_t)n);
	if (rc < 0 && c->state != CALL_FREE)
		call_fail(c, BR_SEND, BM_INVITE, 0, strerror(-rc));
	return rc;
}

static void bye_send(struct bench_call *c)
{
	struct bench_thread *t = c->t;
	branch_make(t, c->bbranch, sizeof(c->bbranch));
	c->state = CALL_BYE;
	if (call_send_out(c, build_in_dialog(t, c, "BYE", 2, false)) < 0)
		return;
	if (t->run->o.proto == TP_PROTO_UDP) {
		c->rtx_ms = BENCH_T1_MS;
		loop_timer_start(t->loop, &c->rtx, c->rtx_ms);
	}
}

/* Retransmissions over UDP (Timer A for INVITE until a provisional, Timer
 * E for BYE, OPTIONS and REGISTER, §17.1.1.2, §17.1.2.2), and the end of
 * the hold (BYE). */
static void call_rtx_cb(void *arg)
{
	struct bench_call *c = arg;
	struct bench_thread *t = c->t;
	if (c->state == CALL_HOLD) {
		bye_send(c);
		return;
	}
	int n;
	if (c->state == CALL_INVITING || c->state == CALL_REQ)
		n = build_first(t, c);
	else if (c->state == CALL_BYE)
		n = build_in_dialog(t, c, "BYE", 2, false);
	else
		return;
	t->st.retransmissions++;
	if (call_send_out(c, n) < 0)
		return;
	bool invite = c->state == CALL_INVITING;
	c->rtx_ms = invite ? c->rtx_ms * 2 : (c->provisional ? BENCH_T2_MS : c->rtx_ms * 2);
	if (!invite && c->rtx_ms > BENCH_T2_MS)
		c->rtx_ms = BENCH_T2_MS;
	loop_timer_start(t->loop, &c->rtx, c->rtx_ms);
}

static void call_deadline_cb(void *arg)
{
	struct bench_call *c = arg;
	call_fail(c, BR_TIMEOUT, BM_INVITE, 0,
		  c->state == CALL_BYE ? "(waiting for the BYE's response)"
				       : "(waiting for the final response)");
}

/* Start one call now. */
static void uac_call_start(struct bench_thread *t, unsigned step)
{
	struct bench_run *r = t->run;
	t->started_local++;
	atomic_fetch_add_explicit(&t->st.started, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&t->st.step_started[step], 1, memory_order_relaxed);
	struct bench_call *c = NULL;
	if (t->nfree) {
		uint32_t slot = t->free_slots[t->nfree - 1];
		c = t->slots[slot];
		if (!c) {
			c = calloc(1, sizeof(*c));
			if (c) {
				c->t = t;
				c->slot = slot;
				loop_timer_init(&c->rtx, call_rtx_cb, c);
				loop_timer_init(&c->deadline, call_deadline_cb, c);
				t->slots[slot] = c;
			}
		}
		if (c)
			t->nfree--;
	}
	if (!c) {
		t->st.by_reason[BR_INFLIGHT]++;
		atomic_fetch_add_explicit(&t->st.failed, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&t->st.step_failed[step], 1, memory_order_relaxed);
		return;
	}
	c->gen++;
	c->step = step;
	c->state = r->o.scenario == BENCH_SCEN_CALL ? CALL_INVITING : CALL_REQ;
	c->provisional = false;
	c->to[0] = c->target[0] = c->route[0] = '\0';
	c->conn = NULL;
	c->rtx_ms = BENCH_T1_MS;
	snprintf(c->callid, sizeof(c->callid), "%x.%x.%x.%s@bench", t->index, c->slot, c->gen,
		 r->run_id);
	snprintf(c->tag, sizeof(c->tag), "%x.%x.%x", t->index, c->slot, c->gen);
	branch_make(t, c->branch, sizeof(c->branch));
	c->prev = NULL;
	c->next = t->inflight_head;
	if (c->next)
		c->next->prev = c;
	t->inflight_head = c;
	atomic_fetch_add_explicit(&t->st.inflight, 1, memory_order_relaxed);
	c->t_start_ns = now_ns();
	if (!t->st.first_start_ns)
		t->st.first_start_ns = c->t_start_ns;
	loop_timer_start(t->loop, &c->deadline, (uint64_t)(r->o.timeout_s * 1000.0));
	if (r->o.proto != TP_PROTO_UDP) {
		unsigned k = (unsigned)(t->started_local % r->o.reuse_conns);
		if (!r->o.per_call && t->rconn[k]) {
			c->conn = t->rconn[k];
			tp_conn_ref(c->conn);
		} else {
			struct tp_conn *conn = NULL;
			int rc = tp_connect(t->tp, r->o.proto, (struct sockaddr *)&r->proxy,
					    r->proxy_len, t->tls, str_from_cstr(r->domain), &conn);
			if (rc < 0) {
				call_fail(c, BR_CONNECT, BM_INVITE, 0, strerror(-rc));
				return;
			}
			c->conn = conn;
			if (!r->o.per_call) {
				t->rconn[k] = conn;
				tp_conn_ref(conn);
			}
		}
	}
	if (call_send_out(c, build_first(t, c)) < 0)
		return;
	if (r->o.proto == TP_PROTO_UDP)
		loop_timer_start(t->loop, &c->rtx, c->rtx_ms);
}

/* Calls due (whole run) at `now`, open loop: the rate, or the ramp's rate
 * of each step, integrated from t0. */
static double run_due(const struct bench_run *r, uint64_t now, unsigned *step)
{
	*step = 0;
	if (now <= r->t0_ns)
		return 0;
	double el = (double)(now - r->t0_ns) / 1e9;
	if (!r->o.ramp)
		return el * r->o.rate;
	unsigned k = (unsigned)(el / r->o.ramp_step_s);
	if (k >= r->nsteps) {
		*step = r->nsteps - 1;
		return r->step_cum[r->nsteps];
	}
	*step = k;
	return r->step_cum[k] + (el - k * r->o.ramp_step_s) * r->step_rate[k];
}

static void uac_tick_cb(void *arg)
{
	struct bench_thread *t = arg;
	struct bench_run *r = t->run;
	uint64_t now = now_ns();
	if (!atomic_load(&r->stop) && t->started_local < t->quota) {
		/* Past the end, the calls due at the end still start. */
		uint64_t at = now < r->end_ns ? now : r->end_ns;
		unsigned step;
		double due = run_due(r, at, &step) * t->share;
		uint64_t want = (uint64_t)(due + 1e-6);
		if (want > t->quota)
			want = t->quota;
		for (unsigned n = 0; t->started_local < want && n < BENCH_STARTS_PER_TICK; n++)
			uac_call_start(t, step);
		if (t->started_local < t->quota && (now < r->end_ns || t->started_local < want)) {
			loop_timer_start(t->loop, &t->tick, BENCH_TICK_MS);
			return;
		}
	}
	t->starting_done = true;
	uac_check_done(t);
}

/* Every call started and ended: close the reused connection and stop. */
static void uac_check_done(struct bench_thread *t)
{
	if (!t->starting_done || atomic_load_explicit(&t->st.inflight, memory_order_relaxed) ||
	    atomic_load(&t->done))
		return;
	for (unsigned k = 0; k < BENCH_MAX_REUSE_CONNS; k++) {
		struct tp_conn *conn = t->rconn[k];
		t->rconn[k] = NULL;
		if (conn) {
			tp_conn_close(conn, true, "bench done");
			tp_conn_unref(conn);
		}
	}
	atomic_store(&t->done, true);
	loop_stop(t->loop);
}

/* Find the call a Call-ID names ("thread.slot.gen.run@bench"), or NULL. */
static struct bench_call *call_lookup(struct bench_thread *t, struct str id)
{
	const char *p = id.s, *end = id.s + id.len;
	uint64_t th, slot, gen;
	if (!hex_field(&p, end, '.', &th) || !hex_field(&p, end, '.', &slot) ||
	    !hex_field(&p, end, '.', &gen) || th != t->index || slot >= t->nslots)
		return NULL;
	size_t rl = strlen(t->run->run_id);
	if ((size_t)(end - p) < rl || memcmp(p, t->run->run_id, rl) != 0)
		return NULL;
	struct bench_call *c = t->slots[slot];
	if (!c || c->gen != (uint32_t)gen || c->state == CALL_FREE)
		return NULL;
	return c;
}

/* §12.1.2: the route set is the Record-Route list in reverse; the remote
 * target is the Contact of the 2xx. */
static void dialog_save(struct bench_call *c, const struct sip_msg *m)
{
	if (m->to)
		snprintf(c->to, sizeof(c->to), "%.*s", (int)m->to->raw.len, m->to->raw.s);
	if (m->contact)
		snprintf(c->target, sizeof(c->target), "%.*s", (int)m->contact->uri.raw.len,
			 m->contact->uri.raw.s);
	const struct sip_addr *rr[BENCH_ROUTE_ENTRIES];
	int cnt = 0;
	for (const struct sip_addr *a = m->record_route; a && cnt < BENCH_ROUTE_ENTRIES;
	     a = a->next)
		rr[cnt++] = a;
	size_t off = 0;
	c->route[0] = '\0';
	for (int i = cnt - 1; i >= 0; i--) {
		int k = snprintf(c->route + off, sizeof(c->route) - off, "Route: <%.*s>\r\n",
				 (int)rr[i]->uri.raw.len, rr[i]->uri.raw.s);
		if (k < 0 || (size_t)k >= sizeof(c->route) - off) {
			c->route[off] = '\0';
			break;
		}
		off += (size_t)k;
	}
}

static void uac_response(struct bench_thread *t, const struct sip_msg *m)
{
	struct bench_call *c = call_lookup(t, m->call_id);
	if (!c) {
		t->st.stray++;
		return;
	}
	unsigned status = m->status;
	uint64_t now = now_ns();
	switch (m->cseq_method_id) {
	case SIP_METHOD_INVITE:
		if (c->state != CALL_INVITING) {
			/* A retransmitted 2xx: its ACK again (§13.2.2.4). */
			if (status >= 200 && status < 300 &&
			    (c->state == CALL_HOLD || c->state == CALL_BYE)) {
				t->st.retransmissions++;
				int n = build_in_dialog(t, c, "ACK", 1, false);
				if (n > 0)
					uac_send(t, c, t->out, (size_t)n);
			}
			return;
		}
		if (status < 200) {
			t->st.provisional++;
			if (!c->provisional) {
				c->provisional = true;
				if (t->run->o.proto == TP_PROTO_UDP)
					loop_timer_cancel(&c->rtx); /* §17.1.1.2: Timer A stops */
			}
			return;
		}
		if (status < 300) {
			sample_add(t, c->step, now - c->t_start_ns);
			dialog_save(c, m);
			loop_timer_cancel(&c->rtx);
			int n = build_in_dialog(t, c, "ACK", 1, false);
			if (call_send_out(c, n) < 0)
				return;
			if (t->run->o.hold_s > 0) {
				c->state = CALL_HOLD;
				loop_timer_start(t->loop, &c->rtx,
						 (uint64_t)(t->run->o.hold_s * 1000.0));
			} else {
				bye_send(c);
			}
			return;
		}
		if (m->to)
			snprintf(c->to, sizeof(c->to), "%.*s", (int)m->to->raw.len, m->to->raw.s);
		{
			int n = build_in_dialog(t, c, "ACK", 1, true);
			if (n > 0)
				uac_send(t, c, t->out, (size_t)n);
		}
		call_fail(c, -1, BM_INVITE, status, NULL);
		return;
	case SIP_METHOD_BYE:
		if (c->state != CALL_BYE)
			return;
		if (status < 200) {
			c->provisional = true;
			return;
		}
		if (status < 300)
			call_ok(c);
		else
			call_fail(c, -1, BM_BYE, status, NULL);
		return;
	case SIP_METHOD_OPTIONS:
	case SIP_METHOD_REGISTER:
		if (c->state != CALL_REQ)
			return;
		if (status < 200) {
			c->provisional = true;
			return;
		}
		sample_add(t, c->step, now - c->t_start_ns);
		if (status < 300)
			call_ok(c);
		else
			call_fail(c, -1, BM_OTHER, status, NULL);
		return;
	default:
		t->st.stray++;
		return;
	}
}

/* Answer a request that reaches the UAC (a BYE or OPTIONS): 200. */
static void answer_request(struct bench_thread *t, const struct tp_source *src,
			   const struct sip_msg *m, int status)
{
	if (m->method_id == SIP_METHOD_ACK)
		return;
	int n = sip_response_build(m, status, NULL, str_from_cstr("bench"), STR_NULL, t->out,
				   sizeof(t->out));
	if (n <= 0)
		return;
	if (src->conn)
		tp_conn_send(src->conn, t->out, (size_t)n);
	else
		tp_udp_send(t->tp, src->udp_fd, (const struct sockaddr *)&src->remote,
			    src->remote_len, t->out, (size_t)n);
	t->st.answered++;
}

static void uac_message_cb(struct transport *tp, const struct tp_source *src, const char *buf,
			   size_t len, void *arg)
{
	struct bench_thread *t = arg;
	(void)tp;
	struct sip_parse_error err;
	if (sip_msg_parse(t->msg, buf, len,
			  src->proto == TP_PROTO_UDP ? SIP_PARSE_DATAGRAM : SIP_PARSE_STREAM,
			  &err) < 0) {
		t->st.parse_errors++;
		return;
	}
	if (t->msg->is_request) {
		bool known =
		    t->msg->method_id == SIP_METHOD_BYE || t->msg->method_id == SIP_METHOD_OPTIONS;
		answer_request(t, src, t->msg, known ? 200 : 501);
		return;
	}
	uac_response(t, t->msg);
}

static void uac_conn_ready_cb(struct transport *tp, struct tp_conn *conn, bool ok, void *arg)
{
	struct bench_thread *t = arg;
	(void)tp;
	if (t->destroying)
		return;
	if (ok) {
		if (tp_conn_proto(conn) == TP_PROTO_TLS)
			t->st.handshakes_ok++;
		return;
	}
	const char *why = tp_conn_failure(conn);
	t->failed_conn = conn;
	t->failed_reason = tp_conn_proto(conn) != TP_PROTO_TLS || !strncmp(why, "connect:", 8) ||
				   !strcmp(why, "handshake timeout")
			       ? BR_CONNECT
			       : BR_TLS;
	if (t->run->o.verbose && t->st.first_fail_logged < BENCH_LOG_FAILURES) {
		t->st.first_fail_logged++;
		fprintf(stderr, "bench: connection failed: %s\n", why);
	}
}

/* A connection is gone: the calls still on it fail. */
static void uac_conn_closed_cb(struct transport *tp, struct tp_conn *conn, const char *reason,
			       void *arg)
{
	struct bench_thread *t = arg;
	(void)tp;
	if (t->destroying)
		return;
	enum bench_reason why = conn == t->failed_conn ? t->failed_reason : BR_CLOSED;
	t->failed_conn = NULL;
	for (unsigned k = 0; k < BENCH_MAX_REUSE_CONNS; k++)
		if (conn == t->rconn[k]) {
			t->rconn[k] = NULL;
			tp_conn_unref(conn);
		}
	struct bench_call *next;
	for (struct bench_call *c = t->inflight_head; c; c = next) {
		next = c->next;
		if (c->conn == conn)
			call_fail(c, (int)why, BM_INVITE, 0, reason);
	}
}

/* ---- UAS ---- */

static int uas_send(struct bench_thread *t, const struct tp_source *src, const char *buf,
		    size_t len)
{
	t->st.uas_responses++;
	if (src->conn)
		return tp_conn_send(src->conn, buf, len);
	return tp_udp_send(t->tp, src->udp_fd, (const struct sockaddr *)&src->remote,
			   src->remote_len, buf, len);
}

static struct uas_pending **uas_bucket(struct bench_thread *t, uint64_t h)
{
	return &t->buckets[h & (BENCH_UAS_BUCKETS - 1)];
}

static struct uas_pending *uas_pending_find(struct bench_thread *t, struct str callid, uint64_t h,
					    struct uas_pending ***where)
{
	for (struct uas_pending **pp = uas_bucket(t, h); *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->callid_len == callid.len &&
		    !memcmp((*pp)->callid, callid.s, callid.len)) {
			if (where)
				*where = pp;
			return *pp;
		}
	return NULL;
}

static void uas_pending_drop(struct uas_pending **pp)
{
	struct uas_pending *e = *pp;
	*pp = e->next;
	loop_timer_cancel(&e->timer);
	e->t->npending--;
	free(e);
}

/* §13.3.1.4: the 2xx again, T1 doubling up to T2, until the ACK or 64*T1. */
static void uas_pending_cb(void *arg)
{
	struct uas_pending *e = arg;
	struct bench_thread *t = e->t;
	e->elapsed_ms += e->interval_ms;
	if (e->elapsed_ms >= 64 * BENCH_T1_MS) {
		t->st.uas_ack_timeouts++;
		struct uas_pending **pp;
		if (uas_pending_find(t, str_make(e->callid, e->callid_len), e->hash, &pp))
			uas_pending_drop(pp);
		return;
	}
	t->st.uas_rtx++;
	tp_udp_send(t->tp, e->fd, (struct sockaddr *)&e->dst, e->dst_len, e->buf, e->len);
	e->interval_ms = e->interval_ms * 2 > BENCH_T2_MS ? BENCH_T2_MS : e->interval_ms * 2;
	loop_timer_start(t->loop, &e->timer, e->interval_ms);
}

static void uas_pending_add(struct bench_thread *t, const struct tp_source *src, struct str callid,
			    uint64_t h, const char *buf, size_t len)
{
	if (t->npending >= BENCH_UAS_PENDING_MAX ||
	    callid.len > sizeof(((struct uas_pending *)0)->callid)) {
		t->st.uas_pending_full++;
		return;
	}
	struct uas_pending *e = malloc(sizeof(*e) + len);
	if (!e) {
		t->st.uas_pending_full++;
		return;
	}
	e->t = t;
	e->hash = h;
	memcpy(e->callid, callid.s, callid.len);
	e->callid_len = callid.len;
	memcpy(&e->dst, &src->remote, src->remote_len);
	e->dst_len = src->remote_len;
	e->fd = src->udp_fd;
	e->interval_ms = BENCH_T1_MS;
	e->elapsed_ms = 0;
	e->len = len;
	memcpy(e->buf, buf, len);
	loop_timer_init(&e->timer, uas_pending_cb, e);
	struct uas_pending **b = uas_bucket(t, h);
	e->next = *b;
	*b = e;
	t->npending++;
	loop_timer_start(t->loop, &e->timer, e->interval_ms);
}

/* INVITE: 180 then 200 with an SDP answer; the To tag is a digest of the
 * Call-ID so a retransmitted INVITE gets the same dialog (no state needed
 * on streams). */
static void uas_invite(struct bench_thread *t, const struct sip_msg *m, const struct tp_source *src)
{
	struct bench_run *r = t->run;
	uint64_t h = fnv64(m->call_id);
	if (src->proto == TP_PROTO_UDP) {
		struct uas_pending *e = uas_pending_find(t, m->call_id, h, NULL);
		if (e) {
			t->st.uas_rtx++;
			uas_send(t, src, e->buf, e->len);
			return;
		}
	}
	char tag[20], extra[600];
	snprintf(tag, sizeof(tag), "%016llx", (unsigned long long)h);
	int n =
	    sip_response_build(m, 180, NULL, str_from_cstr(tag), STR_NULL, t->out, sizeof(t->out));
	if (n > 0)
		uas_send(t, src, t->out, (size_t)n);
	snprintf(extra, sizeof(extra), "Contact: <%s>\r\nContent-Type: application/sdp\r\n",
		 r->o.contact);
	static const char cl0[] = "Content-Length: 0\r\n\r\n";
	n = sip_response_build(m, 200, NULL, str_from_cstr(tag), str_from_cstr(extra), t->out,
			       sizeof(t->out) - sizeof(r->sdp) - 32);
	if (n <= 0 || (size_t)n < sizeof(cl0) - 1)
		return;
	/* The builder ends with an empty body: put the SDP answer in its place. */
	size_t at = (size_t)n - (sizeof(cl0) - 1);
	int k = snprintf(t->out + at, sizeof(t->out) - at, "Content-Length: %d\r\n\r\n%s",
			 r->sdp_len, r->sdp);
	if (k < 0 || (size_t)k >= sizeof(t->out) - at)
		return;
	size_t len = at + (size_t)k;
	uas_send(t, src, t->out, len);
	if (src->proto == TP_PROTO_UDP)
		uas_pending_add(t, src, m->call_id, h, t->out, len);
}

static void uas_message_cb(struct transport *tp, const struct tp_source *src, const char *buf,
			   size_t len, void *arg)
{
	struct bench_thread *t = arg;
	(void)tp;
	struct sip_parse_error err;
	struct sip_msg *m = t->msg;
	if (sip_msg_parse(m, buf, len,
			  src->proto == TP_PROTO_UDP ? SIP_PARSE_DATAGRAM : SIP_PARSE_STREAM,
			  &err) < 0) {
		t->st.parse_errors++;
		return;
	}
	if (!m->is_request) {
		t->st.stray++;
		return;
	}
	char tag[20];
	snprintf(tag, sizeof(tag), "%016llx", (unsigned long long)fnv64(m->call_id));
	const char *extra = NULL;
	char reg[600];
	int status = 200;
	switch (m->method_id) {
	case SIP_METHOD_INVITE:
		t->st.uas_req[BU_INVITE]++;
		uas_invite(t, m, src);
		return;
	case SIP_METHOD_ACK:
		t->st.uas_req[BU_ACK]++;
		if (src->proto == TP_PROTO_UDP) {
			struct uas_pending **pp;
			if (uas_pending_find(t, m->call_id, fnv64(m->call_id), &pp))
				uas_pending_drop(pp);
		}
		return;
	case SIP_METHOD_BYE:
		t->st.uas_req[BU_BYE]++;
		break;
	case SIP_METHOD_OPTIONS:
		t->st.uas_req[BU_OPTIONS]++;
		break;
	case SIP_METHOD_CANCEL:
		t->st.uas_req[BU_CANCEL]++;
		break;
	case SIP_METHOD_REGISTER:
		t->st.uas_req[BU_REGISTER]++;
		if (m->contact && !m->contact_star) {
			snprintf(reg, sizeof(reg), "Contact: <%.*s>;expires=%lld\r\n",
				 (int)m->contact->uri.raw.len, m->contact->uri.raw.s,
				 (long long)(m->expires >= 0 ? m->expires : 3600));
			extra = reg;
		}
		break;
	default:
		t->st.uas_req[BU_OTHER]++;
		status = 501;
		break;
	}
	int n = sip_response_build(m, status, NULL, str_from_cstr(tag),
				   str_from_cstr(extra ? extra : ""), t->out, sizeof(t->out));
	if (n > 0)
		uas_send(t, src, t->out, (size_t)n);
}

/* ---- conns: idle connections ---- */

static void conns_send_options(struct bench_thread *t, uint64_t i)
{
	struct bench_run *r = t->run;
	char branch[48];
	branch_make(t, branch, sizeof(branch));
	int n =
	    snprintf(t->out, sizeof(t->out),
		     "OPTIONS sip:%s SIP/2.0\r\n"
		     "Via: SIP/2.0/%s %s;branch=%s;rport\r\n"
		     "Max-Forwards: 70\r\n"
		     "From: <%s>;tag=c%llx\r\n"
		     "To: <sip:%s>\r\n"
		     "Call-ID: c.%x.%llx.%s@bench\r\n"
		     "CSeq: 1 OPTIONS\r\n"
		     "User-Agent: sipsctl-bench\r\n"
		     "Content-Length: 0\r\n\r\n",
		     r->domain, proto_upper(r->o.proto), t->sentby, branch, r->from_uri,
		     (unsigned long long)i, r->domain, t->index, (unsigned long long)i, r->run_id);
	if (n > 0 && (size_t)n < sizeof(t->out))
		tp_conn_send(t->conns[i].conn, t->out, (size_t)n);
}

static void conns_mark_dead(struct bench_thread *t, uint64_t i, bool failed)
{
	struct bench_conn *bc = &t->conns[i];
	if (bc->state == BC_PENDING) {
		t->conns_pending--;
		atomic_fetch_add(&t->st.conns_failed, 1);
	} else if (bc->state == BC_OPEN && failed) {
		atomic_fetch_add(&t->st.conns_lost, 1);
	}
	bc->state = BC_DEAD;
	if (bc->conn) {
		struct tp_conn *c = bc->conn;
		bc->conn = NULL;
		tp_conn_close(c, false, "bench");
		tp_conn_unref(c);
	}
}

static void conns_tick_cb(void *arg)
{
	struct bench_thread *t = arg;
	struct bench_run *r = t->run;
	uint64_t now = now_ns();
	if (atomic_load(&r->release) || atomic_load(&r->stop)) {
		if (!t->conns_closed) {
			t->conns_closed = true;
			for (uint64_t i = 0; i < t->conns_opened; i++)
				if (t->conns[i].conn)
					conns_mark_dead(t, i, false);
		}
		atomic_store(&t->done, true);
		loop_stop(t->loop);
		return;
	}
	if (t->conns_opened < t->quota) {
		unsigned step;
		uint64_t want = (uint64_t)(run_due(r, now, &step) * t->share);
		if (want > t->quota)
			want = t->quota;
		while (t->conns_opened < want && t->conns_pending < r->o.parallel) {
			uint64_t i = t->conns_opened++;
			struct tp_conn *c = NULL;
			if (tp_connect(t->tp, r->o.proto, (struct sockaddr *)&r->proxy,
				       r->proxy_len, t->tls, str_from_cstr(r->domain), &c) < 0) {
				t->conns[i].state = BC_DEAD;
				atomic_fetch_add(&t->st.conns_failed, 1);
				continue;
			}
			t->conns[i].conn = c;
			t->conns[i].state = BC_PENDING;
			t->conns_pending++;
			conns_send_options(t, i);
		}
	}
	if (t->conns_opened >= t->quota && t->conns_pending == 0)
		atomic_store(&t->ready, true);
	loop_timer_start(t->loop, &t->tick, atomic_load(&t->ready) ? 50 : BENCH_TICK_MS);
}

static void conns_message_cb(struct transport *tp, const struct tp_source *src, const char *buf,
			     size_t len, void *arg)
{
	struct bench_thread *t = arg;
	(void)tp;
	struct sip_parse_error err;
	if (sip_msg_parse(t->msg, buf, len, SIP_PARSE_STREAM, &err) < 0) {
		t->st.parse_errors++;
		return;
	}
	const struct sip_msg *m = t->msg;
	if (m->is_request) {
		answer_request(t, src, m, m->method_id == SIP_METHOD_OPTIONS ? 200 : 501);
		return;
	}
	const char *p = m->call_id.s, *end = m->call_id.s + m->call_id.len;
	uint64_t th, i;
	if (m->call_id.len < 2 || p[0] != 'c' || p[1] != '.') {
		t->st.stray++;
		return;
	}
	p += 2;
	if (!hex_field(&p, end, '.', &th) || !hex_field(&p, end, '.', &i) || th != t->index ||
	    i >= t->conns_opened || t->conns[i].state != BC_PENDING || m->status < 200) {
		t->st.stray++;
		return;
	}
	if (m->status < 300) {
		t->conns[i].state = BC_OPEN;
		t->conns_pending--;
		atomic_fetch_add(&t->st.conns_ok, 1);
	} else {
		t->st.by_status[BM_OTHER][m->status < 700 ? m->status : 0]++;
		conns_mark_dead(t, i, true);
	}
}

static void conns_conn_closed_cb(struct transport *tp, struct tp_conn *conn, const char *reason,
				 void *arg)
{
	struct bench_thread *t = arg;
	(void)tp;
	(void)reason;
	if (t->conns_closed || t->destroying)
		return;
	for (uint64_t i = 0; i < t->conns_opened; i++)
		if (t->conns[i].conn == conn) {
			if (t->run->o.verbose && t->st.first_fail_logged < BENCH_LOG_FAILURES) {
				t->st.first_fail_logged++;
				fprintf(stderr, "bench: connection %llu closed: %s %s\n",
					(unsigned long long)i, reason, tp_conn_failure(conn));
			}
			conns_mark_dead(t, i, true);
			return;
		}
}

static void conns_conn_ready_cb(struct transport *tp, struct tp_conn *conn, bool ok, void *arg)
{
	struct bench_thread *t = arg;
	(void)tp;
	if (ok && tp_conn_proto(conn) == TP_PROTO_TLS)
		t->st.handshakes_ok++;
}

/* ---- threads ---- */

static void thread_start_cb(void *arg)
{
	struct bench_thread *t = arg;
	if (t->run->o.role == BENCH_ROLE_UAC)
		loop_timer_init(&t->tick, uac_tick_cb, t);
	else if (t->run->o.role == BENCH_ROLE_CONNS)
		loop_timer_init(&t->tick, conns_tick_cb, t);
	else
		return;
	loop_timer_start(t->loop, &t->tick, 0);
}

/* Stop the thread, then let go of everything. Our connection references
 * go first, while the transport exists (a reference dropped later would
 * reach a freed transport); the transport then closes what is still open
 * without telling us; the loop's end runs the deferred frees. */
static void thread_destroy(struct bench_thread *t)
{
	if (!t)
		return;
	if (t->w) {
		worker_stop(t->w);
		worker_join(t->w);
	}
	t->destroying = true;
	for (unsigned k = 0; k < BENCH_MAX_REUSE_CONNS; k++)
		if (t->rconn[k]) {
			tp_conn_unref(t->rconn[k]);
			t->rconn[k] = NULL;
		}
	if (t->conns)
		for (uint64_t i = 0; i < t->conns_opened; i++)
			if (t->conns[i].conn) {
				tp_conn_unref(t->conns[i].conn);
				t->conns[i].conn = NULL;
			}
	for (uint32_t i = 0; t->slots && i < t->nslots; i++)
		if (t->slots[i]) {
			loop_timer_cancel(&t->slots[i]->rtx);
			loop_timer_cancel(&t->slots[i]->deadline);
			if (t->slots[i]->conn) {
				tp_conn_unref(t->slots[i]->conn);
				t->slots[i]->conn = NULL;
			}
		}
	if (t->buckets)
		for (unsigned b = 0; b < BENCH_UAS_BUCKETS; b++)
			while (t->buckets[b])
				uas_pending_drop(&t->buckets[b]);
	loop_timer_cancel(&t->tick);
	tp_destroy(t->tp);
	worker_destroy(t->w); /* runs the deferred frees of the connections */
	tls_ctx_destroy(t->tls);
	for (uint32_t i = 0; t->slots && i < t->nslots; i++)
		free(t->slots[i]);
	free(t->slots);
	free(t->free_slots);
	free(t->buckets);
	free(t->conns);
	free(t->st.samples);
	free(t->msg);
	free(t);
}

static int thread_create(struct bench_run *r, unsigned index, struct bench_thread **out)
{
	const struct bench_opts *o = &r->o;
	struct bench_thread *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->run = r;
	t->index = index;
	int rc = -ENOMEM;
	t->msg = malloc(sizeof(*t->msg));
	if (!t->msg)
		goto fail;
	rc = worker_create(&t->w, index);
	if (rc < 0) {
		t->w = NULL;
		goto fail;
	}
	t->loop = worker_loop(t->w);
	struct tp_limits lim;
	tp_limits_default(&lim);
	lim.max_conns = (unsigned)BENCH_MAX_CONNS;
	lim.max_conns_per_ip = (unsigned)BENCH_MAX_CONNS;
	lim.max_handshakes = (unsigned)BENCH_MAX_CONNS;
	lim.handshake_timeout_ms = (unsigned)(o->timeout_s * 1000.0);
	lim.idle_timeout_ms = (unsigned)(BENCH_MAX_DURATION_S * 1000.0);
	struct tp_handler h = {.arg = t};
	if (o->role == BENCH_ROLE_UAS) {
		h.message_cb = uas_message_cb;
	} else if (o->role == BENCH_ROLE_UAC) {
		h.message_cb = uac_message_cb;
		h.conn_closed_cb = uac_conn_closed_cb;
		h.conn_ready_cb = uac_conn_ready_cb;
	} else {
		h.message_cb = conns_message_cb;
		h.conn_closed_cb = conns_conn_closed_cb;
		h.conn_ready_cb = conns_conn_ready_cb;
	}
	rc = tp_create(t->loop, NULL, &lim, &h, &t->tp);
	if (rc < 0)
		goto fail;
	tp_set_worker(t->tp, index);
	if (o->proto == TP_PROTO_TLS) {
		struct tls_ctx_cfg cfg;
		tls_ctx_cfg_init(&cfg);
		cfg.ca_file = o->ca;
		cfg.cert_file = o->cert;
		cfg.key_file = o->key;
		cfg.resume = o->resume;
		if (o->role == BENCH_ROLE_UAS) {
			cfg.domain = o->domain;
			cfg.ticket_keys = r->keys;
		}
		rc = tls_ctx_create(
		    &cfg, o->role == BENCH_ROLE_UAS ? TLS_SIDE_SERVER : TLS_SIDE_CLIENT, &t->tls);
		if (rc < 0) {
			fprintf(stderr, "sipsctl bench: TLS context: %s\n", strerror(-rc));
			t->tls = NULL;
			goto fail;
		}
	}
	if (o->role == BENCH_ROLE_UAS) {
		rc = tp_listen(t->tp, o->proto, (struct sockaddr *)&r->listen, r->listen_len,
			       t->tls);
		if (rc < 0) {
			fprintf(stderr, "sipsctl bench uas: listen %s: %s\n", o->listen,
				strerror(-rc));
			goto fail;
		}
		t->buckets = calloc(BENCH_UAS_BUCKETS, sizeof(*t->buckets));
		if (!t->buckets) {
			rc = -ENOMEM;
			goto fail;
		}
	} else {
		const char *local = o->local			     ? o->local
				    : r->proxy.ss_family == AF_INET6 ? "[::1]:0"
								     : "127.0.0.1:0";
		struct sockaddr_storage la;
		socklen_t ll;
		if (tp_addr_parse(local, 0, &la, &ll) < 0) {
			fprintf(stderr, "sipsctl bench: --local takes a numeric ADDR[:PORT]\n");
			rc = -EINVAL;
			goto fail;
		}
		char host[80];
		tp_addr_format((struct sockaddr *)&la, host, sizeof(host));
		char *colon = strrchr(host, ':');
		if (colon)
			*colon = '\0';
		if (o->proto == TP_PROTO_UDP) {
			rc = tp_listen(t->tp, TP_PROTO_UDP, (struct sockaddr *)&la, ll, NULL);
			if (rc < 0) {
				fprintf(stderr, "sipsctl bench: UDP socket on %s: %s\n", local,
					strerror(-rc));
				goto fail;
			}
			t->udp_port = tp_listener_port(t->tp, TP_PROTO_UDP);
			snprintf(t->sentby, sizeof(t->sentby), "%s:%u", host, t->udp_port);
		} else {
			snprintf(t->sentby, sizeof(t->sentby), "%s", host);
		}
	}
	rc = worker_post(t->w, thread_start_cb, t);
	if (rc < 0)
		goto fail;
	*out = t;
	return 0;
fail:
	thread_destroy(t);
	return rc;
}

/* ---- reports ---- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile: the index of the ceil(q*n)-th smallest of n. */
static size_t rank(double q, size_t n)
{
	double x = q * (double)n;
	size_t k = (size_t)x;
	if ((double)k < x)
		k++;
	return k ? k - 1 : 0;
}

struct bench_pct {
	size_t n;
	double p50, p95, p99, max; /* milliseconds */
};

/* Percentiles of the setup samples of `step` (-1: every step). */
static struct bench_pct samples_pct(const struct bench_run *r, int step)
{
	struct bench_pct p = {0};
	size_t total = 0;
	for (unsigned i = 0; i < r->nthreads; i++)
		total += r->th[i]->st.nsamples;
	uint32_t *v = total ? malloc(total * sizeof(*v)) : NULL;
	if (!v)
		return p;
	size_t n = 0;
	for (unsigned i = 0; i < r->nthreads; i++) {
		const struct bench_stats *s = &r->th[i]->st;
		for (size_t k = 0; k < s->nsamples; k++)
			if (step < 0 || (s->samples[k] >> 26) == (uint32_t)step)
				v[n++] = s->samples[k] & BENCH_SAMPLE_US_MASK;
	}
	if (n) {
		qsort(v, n, sizeof(*v), cmp_u32);
		p.n = n;
		p.p50 = v[rank(0.50, n)] / 1000.0;
		p.p95 = v[rank(0.95, n)] / 1000.0;
		p.p99 = v[rank(0.99, n)] / 1000.0;
		p.max = v[n - 1] / 1000.0;
	}
	free(v);
	return p;
}

struct bench_totals {
	uint64_t started, ok, failed, inflight;
	uint64_t by_reason[BR__COUNT];
	uint64_t by_status[BM__COUNT][700];
	uint64_t provisional, retransmissions, stray, parse_errors, answered, handshakes_ok;
	uint64_t conns_opened, conns_ok, conns_failed, conns_lost;
	uint64_t first_start_ns, last_end_ns, samples_dropped;
	uint64_t step_started[BENCH_MAX_STEPS], step_ok[BENCH_MAX_STEPS],
	    step_failed[BENCH_MAX_STEPS];
	uint64_t uas_req[BU__COUNT], uas_responses, uas_rtx, uas_pending_full, uas_ack_timeouts;
	struct tls_ctx_stats tls;
};

static void totals_sum(const struct bench_run *r, struct bench_totals *a)
{
	memset(a, 0, sizeof(*a));
	for (unsigned i = 0; i < r->nthreads; i++) {
		const struct bench_thread *t = r->th[i];
		const struct bench_stats *s = &t->st;
		a->started += atomic_load(&s->started);
		a->ok += atomic_load(&s->ok);
		a->failed += atomic_load(&s->failed);
		a->inflight += atomic_load(&s->inflight);
		for (int k = 0; k < BR__COUNT; k++)
			a->by_reason[k] += s->by_reason[k];
		for (int m = 0; m < BM__COUNT; m++)
			for (int k = 0; k < 700; k++)
				a->by_status[m][k] += s->by_status[m][k];
		for (int k = 0; k < BENCH_MAX_STEPS; k++) {
			a->step_started[k] += atomic_load(&s->step_started[k]);
			a->step_ok[k] += atomic_load(&s->step_ok[k]);
			a->step_failed[k] += atomic_load(&s->step_failed[k]);
		}
		for (int k = 0; k < BU__COUNT; k++)
			a->uas_req[k] += s->uas_req[k];
		a->uas_responses += s->uas_responses;
		a->uas_rtx += s->uas_rtx;
		a->uas_pending_full += s->uas_pending_full;
		a->uas_ack_timeouts += s->uas_ack_timeouts;
		a->provisional += s->provisional;
		a->retransmissions += s->retransmissions;
		a->stray += s->stray;
		a->parse_errors += s->parse_errors;
		a->answered += s->answered;
		a->handshakes_ok += s->handshakes_ok;
		a->samples_dropped += s->samples_dropped;
		a->conns_ok += atomic_load(&s->conns_ok);
		a->conns_failed += atomic_load(&s->conns_failed);
		a->conns_lost += atomic_load(&s->conns_lost);
		if (t->tp)
			a->conns_opened += tp_stats(t->tp)->conns_opened;
		if (s->first_start_ns &&
		    (!a->first_start_ns || s->first_start_ns < a->first_start_ns))
			a->first_start_ns = s->first_start_ns;
		if (s->last_end_ns > a->last_end_ns)
			a->last_end_ns = s->last_end_ns;
		if (t->tls) {
			struct tls_ctx_stats ts;
			tls_ctx_stats_get(t->tls, &ts);
			a->tls.full += ts.full;
			a->tls.resumed += ts.resumed;
			a->tls.resume_refused += ts.resume_refused;
			a->tls.tickets_issued += ts.tickets_issued;
		}
	}
}

static const char *meth_name(const struct bench_run *r, int m)
{
	return m == BM_INVITE ? "INVITE" : m == BM_BYE ? "BYE" : scenario_method(r->o.scenario);
}

/* The highest ramp step sustained: offered in full, at most 0.1% of its
 * calls failed and their p99 setup time under BENCH_RAMP_P99_MS. A lower
 * step may have failed on a passing hiccup; a real overload leaves a
 * backlog that fails the steps above it (and stops the ramp). */
static int ramp_best(const struct bench_run *r, const struct bench_totals *a)
{
	int best = -1;
	for (unsigned k = 0; k < r->nsteps; k++) {
		uint64_t step_end = r->t0_ns + (uint64_t)((k + 1) * r->o.ramp_step_s * 1e9);
		bool full = !r->stop_ns || r->stop_ns >= step_end;
		if (a->step_started[k] && full && a->step_failed[k] * 1000 <= a->step_started[k] &&
		    samples_pct(r, (int)k).p99 <= BENCH_RAMP_P99_MS)
			best = (int)k;
	}
	return best;
}

/* CPU seconds (user + system) of this process, every thread. */
static double tool_cpu_s(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void report_uac(const struct bench_run *r, double window_s)
{
	const struct bench_opts *o = &r->o;
	struct bench_totals a;
	totals_sum(r, &a);
	/* Calls a forced stop left behind count as failed. */
	if (a.inflight) {
		a.by_reason[BR_UNFINISHED] += a.inflight;
		a.failed += a.inflight;
	}
	struct bench_pct p = samples_pct(r, -1);
	double achieved = window_s > 0 ? (double)a.ok / window_s : 0;
	double fail_pct = a.started ? 100.0 * (double)a.failed / (double)a.started : 0;
	int best = o->ramp ? ramp_best(r, &a) : -1;
	if (o->json) {
		printf("{\"role\":\"uac\",\"scenario\":\"%s\",\"transport\":\"%s\",\"conn\":\"%s\","
		       "\"threads\":%u,",
		       o->scenario == BENCH_SCEN_CALL	   ? "call"
		       : o->scenario == BENCH_SCEN_OPTIONS ? "options"
							   : "register",
		       proto_lower(o->proto), o->per_call ? "per-call" : "reuse", r->nthreads);
		printf(
		    "\"rate\":%.3f,\"window_s\":%.3f,\"started\":%llu,\"ok\":%llu,\"failed\":%llu,"
		    "\"failed_pct\":%.4f,\"achieved_cps\":%.3f,",
		    o->ramp ? 0.0 : o->rate, window_s, (unsigned long long)a.started,
		    (unsigned long long)a.ok, (unsigned long long)a.failed, fail_pct, achieved);
		printf(
		    "\"setup_ms\":{\"n\":%zu,\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f,\"max\":%.3f},",
		    p.n, p.p50, p.p95, p.p99, p.max);
		printf("\"failures_by_status\":{");
		bool first = true;
		for (int m = 0; m < BM__COUNT; m++)
			for (int k = 0; k < 700; k++)
				if (a.by_status[m][k]) {
					printf("%s\"%s/%d\":%llu", first ? "" : ",",
					       meth_name(r, m), k,
					       (unsigned long long)a.by_status[m][k]);
					first = false;
				}
		printf("},\"failures_by_reason\":{");
		first = true;
		for (int k = 0; k < BR__COUNT; k++)
			if (a.by_reason[k]) {
				printf("%s\"%s\":%llu", first ? "" : ",", bench_reason_names[k],
				       (unsigned long long)a.by_reason[k]);
				first = false;
			}
		printf("},\"tls\":{\"handshakes\":%llu,\"full\":%llu,\"resumed\":%llu,\"resume_"
		       "refused\":%llu},",
		       (unsigned long long)a.handshakes_ok, (unsigned long long)a.tls.full,
		       (unsigned long long)a.tls.resumed, (unsigned long long)a.tls.resume_refused);
		printf("\"conns_opened\":%llu,\"provisional\":%llu,\"retransmissions\":%llu,"
		       "\"stray\":%llu,"
		       "\"parse_errors\":%llu,\"tool_cpu_s\":%.3f",
		       (unsigned long long)a.conns_opened, (unsigned long long)a.provisional,
		       (unsigned long long)a.retransmissions, (unsigned long long)a.stray,
		       (unsigned long long)a.parse_errors, tool_cpu_s());
		if (o->ramp) {
			printf(",\"steps\":[");
			for (unsigned k = 0; k < r->nsteps && a.step_started[k]; k++) {
				struct bench_pct sp = samples_pct(r, (int)k);
				printf("%s{\"rate\":%.1f,\"started\":%llu,\"ok\":%llu,\"failed\":%"
				       "llu,\"p50_ms\":%.3f,"
				       "\"p99_ms\":%.3f}",
				       k ? "," : "", r->step_rate[k],
				       (unsigned long long)a.step_started[k],
				       (unsigned long long)a.step_ok[k],
				       (unsigned long long)a.step_failed[k], sp.p50, sp.p99);
			}
			printf("],\"max_sustained_cps\":%.1f",
			       best >= 0 ? r->step_rate[best] : 0.0);
		}
		printf("}\n");
		return;
	}
	printf("bench uac: %s %s, %s, %u thread(s)", scenario_method(o->scenario),
	       proto_upper(o->proto),
	       o->proto == TP_PROTO_UDP ? "datagrams"
	       : o->per_call		? "new connection per call"
					: "reused connections",
	       r->nthreads);
	if (o->ramp)
		printf(", ramp from %.0f/s x%.2f every %.1f s\n", o->ramp_start, o->ramp_factor,
		       o->ramp_step_s);
	else
		printf(", offered %.1f/s\n", o->rate);
	printf("calls: started %llu, ok %llu, failed %llu (%.3f%%); achieved %.1f calls/s over "
	       "%.2f s\n",
	       (unsigned long long)a.started, (unsigned long long)a.ok,
	       (unsigned long long)a.failed, fail_pct, achieved, window_s);
	printf("setup time (%s sent -> final 2xx received), ms: p50 %.3f  p95 %.3f  p99 %.3f  max "
	       "%.3f  (%zu samples)\n",
	       o->scenario == BENCH_SCEN_CALL ? "INVITE" : "request", p.p50, p.p95, p.p99, p.max,
	       p.n);
	bool any = false;
	for (int m = 0; m < BM__COUNT; m++)
		for (int k = 0; k < 700; k++)
			if (a.by_status[m][k]) {
				printf("%s %s/%d %llu",
				       any ? "," : "failures by status:", meth_name(r, m), k,
				       (unsigned long long)a.by_status[m][k]);
				any = true;
			}
	if (any)
		printf("\n");
	any = false;
	for (int k = 0; k < BR__COUNT; k++)
		if (a.by_reason[k]) {
			printf("%s %s %llu",
			       any ? "," : "failures by reason:", bench_reason_names[k],
			       (unsigned long long)a.by_reason[k]);
			any = true;
		}
	if (any)
		printf("\n");
	if (o->proto == TP_PROTO_TLS)
		printf("tls: handshakes %llu (full %llu, resumed %llu, resumption refused %llu)\n",
		       (unsigned long long)a.handshakes_ok, (unsigned long long)a.tls.full,
		       (unsigned long long)a.tls.resumed, (unsigned long long)a.tls.resume_refused);
	printf("connections opened %llu; provisional responses %llu; retransmissions %llu; stray "
	       "%llu; "
	       "unparsable %llu\n",
	       (unsigned long long)a.conns_opened, (unsigned long long)a.provisional,
	       (unsigned long long)a.retransmissions, (unsigned long long)a.stray,
	       (unsigned long long)a.parse_errors);
	if (o->ramp) {
		printf("%10s %10s %10s %8s %10s %10s\n", "rate/s", "started", "ok", "failed",
		       "p50 ms", "p99 ms");
		for (unsigned k = 0; k < r->nsteps && a.step_started[k]; k++) {
			struct bench_pct sp = samples_pct(r, (int)k);
			printf("%10.1f %10llu %10llu %8llu %10.3f %10.3f%s\n", r->step_rate[k],
			       (unsigned long long)a.step_started[k],
			       (unsigned long long)a.step_ok[k],
			       (unsigned long long)a.step_failed[k], sp.p50, sp.p99,
			       (int)k == best ? "  <- max" : "");
		}
		printf("maximum sustained: %.1f calls/s (under 0.1%% failed)\n",
		       best >= 0 ? r->step_rate[best] : 0.0);
	}
}

static void report_uas(const struct bench_run *r, double secs)
{
	struct bench_totals a;
	totals_sum(r, &a);
	if (r->o.json) {
		printf("{\"role\":\"uas\",\"transport\":\"%s\",\"threads\":%u,\"seconds\":%.3f,"
		       "\"requests\":{",
		       proto_lower(r->o.proto), r->nthreads, secs);
		for (int k = 0; k < BU__COUNT; k++)
			printf("%s\"%s\":%llu", k ? "," : "", bench_uas_names[k],
			       (unsigned long long)a.uas_req[k]);
		printf("},\"responses\":%llu,\"retransmissions\":%llu,\"ack_timeouts\":%llu,"
		       "\"unparsable\":%llu,"
		       "\"stray\":%llu,\"tls\":{\"full\":%llu,\"resumed\":%llu},\"tool_cpu_s\":%."
		       "3f}\n",
		       (unsigned long long)a.uas_responses, (unsigned long long)a.uas_rtx,
		       (unsigned long long)a.uas_ack_timeouts, (unsigned long long)a.parse_errors,
		       (unsigned long long)a.stray, (unsigned long long)a.tls.full,
		       (unsigned long long)a.tls.resumed, tool_cpu_s());
		return;
	}
	printf("bench uas: %s, %u thread(s), %.1f s\nrequests:", proto_upper(r->o.proto),
	       r->nthreads, secs);
	for (int k = 0; k < BU__COUNT; k++)
		printf(" %s %llu", bench_uas_names[k], (unsigned long long)a.uas_req[k]);
	printf("\nresponses %llu, 2xx retransmissions %llu, ACK timeouts %llu, unparsable %llu, "
	       "stray %llu\n",
	       (unsigned long long)a.uas_responses, (unsigned long long)a.uas_rtx,
	       (unsigned long long)a.uas_ack_timeouts, (unsigned long long)a.parse_errors,
	       (unsigned long long)a.stray);
	if (r->o.proto == TP_PROTO_TLS)
		printf("tls: handshakes full %llu, resumed %llu\n", (unsigned long long)a.tls.full,
		       (unsigned long long)a.tls.resumed);
}

static void report_conns(const struct bench_run *r, double setup_s, double held_s)
{
	struct bench_totals a;
	totals_sum(r, &a);
	if (r->o.json) {
		printf("{\"role\":\"conns\",\"transport\":\"%s\",\"threads\":%u,\"wanted\":%llu,"
		       "\"open\":%llu,"
		       "\"failed\":%llu,\"lost\":%llu,\"setup_s\":%.3f,\"held_s\":%.3f,"
		       "\"tls\":{\"handshakes\":%llu,\"full\":%llu,\"resumed\":%llu}}\n",
		       proto_lower(r->o.proto), r->nthreads, (unsigned long long)r->o.count,
		       (unsigned long long)a.conns_ok, (unsigned long long)a.conns_failed,
		       (unsigned long long)a.conns_lost, setup_s, held_s,
		       (unsigned long long)a.handshakes_ok, (unsigned long long)a.tls.full,
		       (unsigned long long)a.tls.resumed);
		return;
	}
	printf("bench conns: %llu of %llu %s connections set up in %.2f s (failed %llu), held %.1f "
	       "s, lost %llu\n",
	       (unsigned long long)a.conns_ok, (unsigned long long)r->o.count,
	       proto_upper(r->o.proto), setup_s, (unsigned long long)a.conns_failed, held_s,
	       (unsigned long long)a.conns_lost);
	if (r->o.proto == TP_PROTO_TLS)
		printf("tls: handshakes %llu (full %llu, resumed %llu)\n",
		       (unsigned long long)a.handshakes_ok, (unsigned long long)a.tls.full,
		       (unsigned long long)a.tls.resumed);
}

/* ---- options ---- */

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: sipsctl bench uas --listen ADDR:PORT [--transport udp|tcp|tls] [--cert F --key "
	    "F]\n"
	    "                         [--ca F] [--domain D] [--contact URI] [--threads N] "
	    "[--duration S] [--json]\n"
	    "       sipsctl bench uac --target URI --proxy ADDR:PORT --rate R (--duration S | "
	    "--calls N)\n"
	    "                         [--transport udp|tcp|tls] [--conn reuse|per-call] [--conns "
	    "K] [--ca F]\n"
	    "                         [--domain D] [--from URI] [--threads N] [--timeout S] "
	    "[--hold S]\n"
	    "                         [--scenario call|options|register] [--max-inflight N]\n"
	    "                         [--ramp START:FACTOR:STEP_S:MAX] [--tls-resume yes|no] "
	    "[--json]\n"
	    "       sipsctl bench conns --proxy ADDR:PORT --count N [--rate R] [--parallel P] "
	    "[--hold S]\n"
	    "                         [--transport tcp|tls] [--ca F] [--domain D] [--threads N] "
	    "[--json]\n"
	    "  uas    answers INVITE with 180 and 200 (SDP), ACK, BYE/OPTIONS/REGISTER with 200.\n"
	    "  uac    places calls INVITE/100/180/200/ACK/BYE/200 through --proxy at --rate per "
	    "second\n"
	    "         (open loop), following the proxy's Record-Route; reports calls/s, failures "
	    "by\n"
	    "         status and reason, setup time percentiles, TLS handshakes and resumptions.\n"
	    "         --ramp raises the rate by FACTOR every STEP_S seconds up to MAX and reports "
	    "the\n"
	    "         highest step with under 0.1%% failed calls and p99 setup time under 100 ms.\n"
	    "  conns  opens --count connections to --proxy (one OPTIONS each), prints 'idle: N "
	    "open'\n"
	    "         and holds them --hold seconds (or until SIGTERM).\n"
	    "  TLS: the proxy must prove --domain (default: the host of --from), RFC 5922.\n");
}

static int parse_double(const char *s, double min, double max, double *out)
{
	char *end = NULL;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || !end || end == s || *end || !(v >= min && v <= max))
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	return str_to_u64(str_from_cstr(s), max, out);
}

static int parse_ramp(const char *s, struct bench_opts *o)
{
	char buf[128];
	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	double v[4] = {0, 0, 0, 0};
	char *p = buf;
	for (int i = 0; i < 4; i++) {
		char *colon = strchr(p, ':');
		if (colon)
			*colon = '\0';
		if (parse_double(p, 0.001, BENCH_MAX_RATE, &v[i]) < 0)
			return -EINVAL;
		if (!colon) {
			if (i < 2)
				return -EINVAL;
			break;
		}
		p = colon + 1;
	}
	if (v[1] < 1.01 || v[2] <= 0)
		return -EINVAL;
	o->ramp = true;
	o->ramp_start = v[0];
	o->ramp_factor = v[1];
	o->ramp_step_s = v[2];
	o->ramp_max = v[3] > 0 ? v[3] : BENCH_MAX_RATE;
	return 0;
}

static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
	static const struct option longopts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"transport", required_argument, NULL, 'T'},
	    {"cert", required_argument, NULL, 'C'},
	    {"key", required_argument, NULL, 'K'},
	    {"ca", required_argument, NULL, 'a'},
	    {"domain", required_argument, NULL, 'd'},
	    {"threads", required_argument, NULL, 'n'},
	    {"target", required_argument, NULL, 'g'},
	    {"proxy", required_argument, NULL, 'p'},
	    {"rate", required_argument, NULL, 'r'},
	    {"duration", required_argument, NULL, 'D'},
	    {"calls", required_argument, NULL, 'N'},
	    {"conn", required_argument, NULL, 'c'},
	    {"json", no_argument, NULL, 'j'},
	    {"timeout", required_argument, NULL, 't'},
	    {"hold", required_argument, NULL, 'H'},
	    {"from", required_argument, NULL, 'f'},
	    {"contact", required_argument, NULL, 'o'},
	    {"scenario", required_argument, NULL, 's'},
	    {"max-inflight", required_argument, NULL, 'm'},
	    {"ramp", required_argument, NULL, 'R'},
	    {"count", required_argument, NULL, 'k'},
	    {"parallel", required_argument, NULL, 'P'},
	    {"tls-resume", required_argument, NULL, 'x'},
	    {"local", required_argument, NULL, 'L'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"conns", required_argument, NULL, 'X'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *role = argc > 1 ? argv[1] : "";
	if (!strcmp(role, "uas"))
		o->role = BENCH_ROLE_UAS;
	else if (!strcmp(role, "uac"))
		o->role = BENCH_ROLE_UAC;
	else if (!strcmp(role, "conns"))
		o->role = BENCH_ROLE_CONNS;
	else if (!strcmp(role, "-h") || !strcmp(role, "--help") || !strcmp(role, "help")) {
		usage(stdout);
		return 1;
	} else {
		usage(stderr);
		return -EINVAL;
	}
	o->proto = o->role == BENCH_ROLE_CONNS ? TP_PROTO_TLS : TP_PROTO_UDP;
	o->threads = 1;
	o->timeout_s = 10;
	o->resume = true;
	o->parallel = 8;
	o->reuse_conns = 1;
	o->max_inflight = BENCH_DEFAULT_INFLIGHT;
	bool timeout_given = false;
	int opt;
	optind = 2;
	while ((opt = getopt_long(argc, argv, "hv", longopts, NULL)) != -1) {
		int bad = 0;
		uint64_t u = 0;
		switch (opt) {
		case 'l':
			o->listen = optarg;
			break;
		case 'T':
			if (!strcmp(optarg, "udp"))
				o->proto = TP_PROTO_UDP;
			else if (!strcmp(optarg, "tcp"))
				o->proto = TP_PROTO_TCP;
			else if (!strcmp(optarg, "tls"))
				o->proto = TP_PROTO_TLS;
			else
				bad = -EINVAL;
			break;
		case 'C':
			o->cert = optarg;
			break;
		case 'K':
			o->key = optarg;
			break;
		case 'a':
			o->ca = optarg;
			break;
		case 'd':
			o->domain = optarg;
			break;
		case 'n':
			bad = parse_u64(optarg, BENCH_MAX_THREADS, &u);
			o->threads = (unsigned)u;
			if (!bad && u == 0)
				bad = -EINVAL;
			break;
		case 'g':
			o->target = optarg;
			break;
		case 'p':
			o->proxy = optarg;
			break;
		case 'r':
			bad = parse_double(optarg, 0.001, BENCH_MAX_RATE, &o->rate);
			break;
		case 'D':
			bad = parse_double(optarg, 0.001, BENCH_MAX_DURATION_S, &o->duration_s);
			break;
		case 'N':
			bad = parse_u64(optarg, BENCH_MAX_CALLS, &o->calls);
			if (!bad && !o->calls)
				bad = -EINVAL;
			break;
		case 'c':
			if (!strcmp(optarg, "reuse"))
				o->per_call = false;
			else if (!strcmp(optarg, "per-call"))
				o->per_call = true;
			else
				bad = -EINVAL;
			break;
		case 'j':
			o->json = true;
			break;
		case 't':
			bad = parse_double(optarg, 0.01, BENCH_MAX_TIMEOUT_S, &o->timeout_s);
			timeout_given = true;
			break;
		case 'H':
			bad = parse_double(optarg, 0, BENCH_MAX_DURATION_S, &o->hold_s);
			break;
		case 'f':
			o->from = optarg;
			break;
		case 'o':
			o->contact = optarg;
			break;
		case 's':
			if (!strcmp(optarg, "call"))
				o->scenario = BENCH_SCEN_CALL;
			else if (!strcmp(optarg, "options"))
				o->scenario = BENCH_SCEN_OPTIONS;
			else if (!strcmp(optarg, "register"))
				o->scenario = BENCH_SCEN_REGISTER;
			else
				bad = -EINVAL;
			break;
		case 'm':
			bad = parse_u64(optarg, BENCH_MAX_INFLIGHT, &o->max_inflight);
			if (!bad && !o->max_inflight)
				bad = -EINVAL;
			break;
		case 'R':
			bad = parse_ramp(optarg, o);
			break;
		case 'k':
			bad = parse_u64(optarg, BENCH_MAX_CONNS, &o->count);
			if (!bad && !o->count)
				bad = -EINVAL;
			break;
		case 'P':
			bad = parse_u64(optarg, BENCH_MAX_PARALLEL, &u);
			o->parallel = (unsigned)u;
			if (!bad && !u)
				bad = -EINVAL;
			break;
		case 'x':
			if (!strcmp(optarg, "yes"))
				o->resume = true;
			else if (!strcmp(optarg, "no"))
				o->resume = false;
			else
				bad = -EINVAL;
			break;
		case 'L':
			o->local = optarg;
			break;
		case 'X':
			bad = parse_u64(optarg, BENCH_MAX_REUSE_CONNS, &u);
			o->reuse_conns = (unsigned)u;
			if (!bad && !u)
				bad = -EINVAL;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -EINVAL;
		}
		if (bad) {
			fprintf(stderr, "sipsctl bench: bad value '%s'\n", optarg ? optarg : "");
			return -EINVAL;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	if (o->ramp && !timeout_given)
		o->timeout_s = 2;
	return 0;
}

/* The host part of a sip:/sips: URI into `out`; false when none. */
static bool uri_host(const char *uri, char *out, size_t size)
{
	struct sip_uri u;
	if (!uri || sip_uri_parse(str_from_cstr(uri), &u, NULL, NULL) < 0 ||
	    (u.scheme_id != SIP_SCHEME_SIP && u.scheme_id != SIP_SCHEME_SIPS) || !u.host.len)
		return false;
	str_to_cbuf(u.host, out, size);
	return true;
}

/* Check the options of a role and fill the run. Returns 0 or -EINVAL
 * (said on stderr). */
static int run_prepare(struct bench_run *r)
{
	struct bench_opts *o = &r->o;
	r->nthreads = o->threads;
	unsigned char rnd[4];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0x5a, sizeof(rnd));
	snprintf(r->run_id, sizeof(r->run_id), "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
	r->sdp_len =
	    snprintf(r->sdp, sizeof(r->sdp),
		     "v=0\r\no=bench 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
		     "m=audio 9 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n");
	if (o->role == BENCH_ROLE_UAS) {
		if (!o->listen || tp_addr_parse(o->listen, 5060, &r->listen, &r->listen_len) < 0) {
			fprintf(stderr, "sipsctl bench uas: --listen takes a numeric ADDR:PORT\n");
			return -EINVAL;
		}
		if (o->proto == TP_PROTO_TLS && (!o->cert || !o->key)) {
			fprintf(stderr, "sipsctl bench uas: TLS needs --cert and --key\n");
			return -EINVAL;
		}
		static char contact[320];
		if (!o->contact) {
			snprintf(contact, sizeof(contact), "sip:uas@%s;transport=%s", o->listen,
				 proto_lower(o->proto));
			o->contact = contact;
		}
		if (!o->duration_s)
			o->duration_s = 3600;
		return 0;
	}
	if (!o->proxy || tp_addr_parse(o->proxy, o->proto == TP_PROTO_TLS ? 5061 : 5060, &r->proxy,
				       &r->proxy_len) < 0) {
		fprintf(stderr, "sipsctl bench: --proxy takes a numeric ADDR:PORT\n");
		return -EINVAL;
	}
	if (o->role == BENCH_ROLE_UAC &&
	    (!o->target || !uri_host(o->target, r->target_domain, sizeof(r->target_domain)))) {
		fprintf(stderr, "sipsctl bench uac: --target takes a sip: or sips: URI\n");
		return -EINVAL;
	}
	if (o->role == BENCH_ROLE_CONNS && o->proto == TP_PROTO_UDP) {
		fprintf(stderr, "sipsctl bench conns: connections are TCP or TLS\n");
		return -EINVAL;
	}
	if (o->domain)
		snprintf(r->domain, sizeof(r->domain), "%s", o->domain);
	else if (!uri_host(o->from, r->domain, sizeof(r->domain)) && o->proto == TP_PROTO_TLS) {
		fprintf(stderr,
			"sipsctl bench: TLS needs --domain (or --from with the proxy's domain)\n");
		return -EINVAL;
	}
	if (o->from)
		snprintf(r->from_uri, sizeof(r->from_uri), "%s", o->from);
	else
		snprintf(r->from_uri, sizeof(r->from_uri), "sip:bench@%s",
			 r->domain[0] ? r->domain : "invalid");
	if (o->role == BENCH_ROLE_CONNS) {
		if (!o->count) {
			fprintf(stderr, "sipsctl bench conns: --count is required\n");
			return -EINVAL;
		}
		if (!o->rate)
			o->rate = 1000;
		if (!o->hold_s)
			o->hold_s = 60;
		if (o->threads > o->count)
			r->nthreads = (unsigned)o->count;
		r->end_ns = UINT64_MAX;
		return 0;
	}
	if (o->ramp) {
		double rate = o->ramp_start, cum = 0;
		r->nsteps = 0;
		while (r->nsteps < BENCH_MAX_STEPS && rate <= o->ramp_max * 1.0000001) {
			r->step_rate[r->nsteps] = rate;
			r->step_cum[r->nsteps] = cum;
			cum += rate * o->ramp_step_s;
			r->nsteps++;
			rate *= o->ramp_factor;
		}
		r->step_cum[r->nsteps] = cum;
		if (o->duration_s && o->duration_s < r->nsteps * o->ramp_step_s)
			r->nsteps = (unsigned)(o->duration_s / o->ramp_step_s)
					? (unsigned)(o->duration_s / o->ramp_step_s)
					: 1;
		o->duration_s = r->nsteps * o->ramp_step_s;
		if (!o->calls)
			o->calls = (uint64_t)r->step_cum[r->nsteps] + 1;
		return 0;
	}
	if (!o->rate || (!o->duration_s && !o->calls)) {
		fprintf(stderr,
			"sipsctl bench uac: --rate and --duration or --calls are required\n");
		return -EINVAL;
	}
	if (!o->calls) {
		double c = o->rate * o->duration_s;
		o->calls = c < 1 ? 1 : (uint64_t)(c + 0.5);
	}
	if (!o->duration_s) {
		r->calls_only = true;
		o->duration_s = (double)o->calls / o->rate + 1.0;
	}
	return 0;
}

/* Raise the open-files limit to its hard limit (many connections). */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Wait up to `ms` for SIGINT/SIGTERM (blocked in this thread). True when one came. */
static bool wait_signal(const sigset_t *set, unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	return sigtimedwait(set, NULL, &ts) > 0;
}

/* Main thread of a uac run: watch the workers, the clock, the ramp. */
static void uac_supervise(struct bench_run *r, const sigset_t *sigs)
{
	const struct bench_opts *o = &r->o;
	uint64_t hard = r->end_ns + (uint64_t)((o->timeout_s + BENCH_DRAIN_GRACE_S) * 1e9);
	for (;;) {
		bool all = true;
		for (unsigned i = 0; i < r->nthreads; i++)
			all = all && atomic_load(&r->th[i]->done);
		if (all)
			return;
		if (wait_signal(sigs, 100) && !atomic_load(&r->stop)) {
			atomic_store(&r->stop, 1);
			r->stop_ns = now_ns();
		}
		uint64_t now = now_ns();
		if (now >= hard) {
			fprintf(
			    stderr,
			    "sipsctl bench: calls still in flight past the timeout: stopping\n");
			return;
		}
		if (!o->ramp || atomic_load(&r->stop))
			continue;
		/* The ramp stops once a step fails (over 0.1%) or calls pile up
		 * (more in flight than a quarter second of the current rate:
		 * a queue is growing). */
		unsigned step;
		run_due(r, now, &step);
		uint64_t inflight = 0;
		bool failing = false;
		for (unsigned k = 0; k <= step && k < BENCH_MAX_STEPS; k++) {
			uint64_t s = 0, f = 0;
			for (unsigned i = 0; i < r->nthreads; i++) {
				s += atomic_load_explicit(&r->th[i]->st.step_started[k],
							  memory_order_relaxed);
				f += atomic_load_explicit(&r->th[i]->st.step_failed[k],
							  memory_order_relaxed);
			}
			if (f && f * 1000 > s)
				failing = true;
		}
		for (unsigned i = 0; i < r->nthreads; i++)
			inflight +=
			    atomic_load_explicit(&r->th[i]->st.inflight, memory_order_relaxed);
		double limit = r->step_rate[step] * 0.25 > 100 ? r->step_rate[step] * 0.25 : 100;
		if (failing || (double)inflight > limit) {
			atomic_store(&r->stop, 1);
			r->stop_ns = now;
		}
	}
}

int sipsctl_cmd_bench(int argc, char **argv)
{
	struct bench_run *r = calloc(1, sizeof(*r));
	if (!r)
		return SIPSCTL_FAIL;
	int rc = parse_opts(argc, argv, &r->o);
	if (rc) {
		free(r);
		return rc > 0 ? SIPSCTL_OK : SIPSCTL_USAGE;
	}
	if (run_prepare(r) < 0) {
		free(r);
		return SIPSCTL_USAGE;
	}
	struct bench_opts *o = &r->o;
	if (!o->verbose)
		log_set_level(LOG_LVL_WARN);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	sigset_t sigs, old;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	int status = SIPSCTL_FAIL;
	if (o->role == BENCH_ROLE_UAS && o->proto == TP_PROTO_TLS &&
	    tls_ticket_keys_create(0, &r->keys) < 0) {
		fprintf(stderr, "sipsctl bench: no ticket keys\n");
		goto out;
	}
	uint64_t per_thread_inflight = o->max_inflight / r->nthreads + 1;
	for (unsigned i = 0; i < r->nthreads; i++) {
		struct bench_thread *t;
		if (thread_create(r, i, &t) < 0) {
			r->nthreads = i;
			goto out;
		}
		r->th[i] = t;
		t->share = 1.0 / (double)r->nthreads;
		uint64_t total = o->role == BENCH_ROLE_CONNS ? o->count : o->calls;
		t->quota = total / r->nthreads + (i < total % r->nthreads ? 1 : 0);
		if (o->role == BENCH_ROLE_UAC) {
			t->nslots = (uint32_t)per_thread_inflight;
			t->slots = calloc(t->nslots, sizeof(*t->slots));
			t->free_slots = malloc(t->nslots * sizeof(*t->free_slots));
			if (!t->slots || !t->free_slots) {
				r->nthreads = i + 1;
				goto out;
			}
			for (uint32_t k = 0; k < t->nslots; k++)
				t->free_slots[k] = t->nslots - 1 - k;
			t->nfree = t->nslots;
		} else if (o->role == BENCH_ROLE_CONNS) {
			t->conns = calloc(t->quota ? t->quota : 1, sizeof(*t->conns));
			if (!t->conns) {
				r->nthreads = i + 1;
				goto out;
			}
		}
	}
	/* A common start a little ahead so every thread is running. */
	r->t0_ns = now_ns() + 20000000ull;
	if (o->role == BENCH_ROLE_UAC)
		r->end_ns = r->t0_ns + (uint64_t)(o->duration_s * 1e9);
	for (unsigned i = 0; i < r->nthreads; i++)
		if (worker_start(r->th[i]->w) < 0)
			goto out;
	if (o->role == BENCH_ROLE_UAS) {
		if (!o->json)
			printf("bench uas: listening on %s %s, %u thread(s), contact %s\n",
			       proto_upper(o->proto), o->listen, r->nthreads, o->contact);
		fflush(stdout);
		uint64_t end = r->t0_ns + (uint64_t)(o->duration_s * 1e9);
		while (now_ns() < end && !wait_signal(&sigs, 200))
			;
		for (unsigned i = 0; i < r->nthreads; i++) {
			worker_stop(r->th[i]->w);
			worker_join(r->th[i]->w);
		}
		report_uas(r, (double)(now_ns() - r->t0_ns) / 1e9);
		status = SIPSCTL_OK;
	} else if (o->role == BENCH_ROLE_UAC) {
		uac_supervise(r, &sigs);
		for (unsigned i = 0; i < r->nthreads; i++) {
			worker_stop(r->th[i]->w);
			worker_join(r->th[i]->w);
		}
		struct bench_totals a;
		totals_sum(r, &a);
		/* The window calls were offered in: the duration, up to an early
		 * stop; with --calls alone, first start to last end. */
		double window = o->duration_s;
		if (r->stop_ns && r->stop_ns < r->end_ns)
			window = (double)(r->stop_ns - r->t0_ns) / 1e9;
		else if (r->calls_only)
			window = a.last_end_ns > a.first_start_ns
				     ? (double)(a.last_end_ns - a.first_start_ns) / 1e9
				     : 0;
		report_uac(r, window);
		status = a.failed || a.inflight ? SIPSCTL_FAIL : SIPSCTL_OK;
	} else {
		uint64_t start = now_ns(), ready_ns = 0, hold_end = 0;
		bool sig = false;
		for (;;) {
			bool all = true;
			uint64_t done = 0;
			for (unsigned i = 0; i < r->nthreads; i++) {
				all = all && atomic_load(&r->th[i]->ready);
				done += atomic_load(&r->th[i]->st.conns_ok) +
					atomic_load(&r->th[i]->st.conns_failed);
			}
			if (all && !ready_ns) {
				ready_ns = now_ns();
				hold_end = ready_ns + (uint64_t)(o->hold_s * 1e9);
				uint64_t ok = 0, failed = 0;
				for (unsigned i = 0; i < r->nthreads; i++) {
					ok += atomic_load(&r->th[i]->st.conns_ok);
					failed += atomic_load(&r->th[i]->st.conns_failed);
				}
				printf("idle: %llu connections open (failed %llu) after %.2f s\n",
				       (unsigned long long)ok, (unsigned long long)failed,
				       (double)(ready_ns - start) / 1e9);
				fflush(stdout);
			}
			(void)done;
			if (wait_signal(&sigs, 100)) {
				sig = true;
				break;
			}
			uint64_t now = now_ns();
			if (ready_ns && now >= hold_end)
				break;
			/* Setting up is bounded too: six times count/rate (a proxy
			 * may accept more slowly than offered), plus the timeout. */
			if (!ready_ns &&
			    now - start > (uint64_t)((6.0 * (double)o->count / o->rate + 30.0 +
						      o->timeout_s) *
						     1e9)) {
				fprintf(
				    stderr,
				    "sipsctl bench conns: setting up took too long: stopping\n");
				break;
			}
		}
		(void)sig;
		double held = ready_ns ? (double)(now_ns() - ready_ns) / 1e9 : 0;
		atomic_store(&r->release, 1);
		uint64_t limit = now_ns() + 10000000000ull;
		for (;;) {
			bool all = true;
			for (unsigned i = 0; i < r->nthreads; i++)
				all = all && atomic_load(&r->th[i]->done);
			if (all || now_ns() > limit)
				break;
			struct timespec ts = {0, 20000000L};
			nanosleep(&ts, NULL);
		}
		for (unsigned i = 0; i < r->nthreads; i++) {
			worker_stop(r->th[i]->w);
			worker_join(r->th[i]->w);
		}
		report_conns(r, ready_ns ? (double)(ready_ns - start) / 1e9 : 0, held);
		struct bench_totals a;
		totals_sum(r, &a);
		status = ready_ns && a.conns_ok == o->count ? SIPSCTL_OK : SIPSCTL_FAIL;
	}
out:
	for (unsigned i = 0; i < r->nthreads; i++)
		thread_destroy(r->th[i]);
	tls_ticket_keys_destroy(r->keys);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	free(r);
	fflush(stdout);
	return status;
}
