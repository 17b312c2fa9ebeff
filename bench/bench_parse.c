/* bench_parse.c: nanoseconds per message for our parser (sip_msg_parse,
 * datagram mode) and for libosip2 on the same corpus, measured in one run.
 *
 * Usage: bench_parse [DATA_DIR]   (default $SIPSD_TEST_DATA, else tests/data)
 *
 * Corpus: the RFC 4475 messages the RFC calls valid (rfc4475/EXPECTED.tsv)
 * and the typical messages of messages/ (INVITE, its 200, REGISTER, BYE).
 * Each group is timed for ROUNDS rounds after a warm-up; the median of the
 * rounds is printed, with the libosip2/ours ratio (above 1: we are faster).
 * Built with HAVE_OSIP2 when libosip2 is found (CMake does this). */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sip/msg.h"

#ifdef HAVE_OSIP2
#include <osipparser2/osip_message.h>
#include <osipparser2/osip_parser.h>
#endif

#define MAX_MSGS 64
#define ROUNDS 7
#define ROUND_TARGET_NS 100000000.0 /* ~100 ms per group, parser and round */
#define WARMUP_NS 100000000.0	    /* 100 ms per parser before measuring */

struct corpus_msg {
	char name[64];
	char *buf;
	size_t len;
	bool ours_ok;  /* sip_msg_parse accepted it */
	bool check_ok; /* ... and sip_msg_check too */
	bool osip_ok;  /* osip_message_parse accepted it */
};

/* A group is timed as one unit: ns per message over its messages. */
struct group {
	const char *name;
	size_t first, count; /* a range of corpus[] */
	double ours[ROUNDS];
	double osip[ROUNDS];
};

static struct corpus_msg corpus[MAX_MSGS];
static size_t corpus_count;
static struct sip_msg msg; /* large: keep it off the stack */
static volatile long sink;

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	size_t cap = 2 * SIPS_MAX_MSG_SIZE;
	char *buf = malloc(cap);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	size_t n = fread(buf, 1, cap, f);
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		return -EIO;
	}
	*out = buf;
	*len = n;
	return 0;
}

static int corpus_add(const char *dir, const char *sub, const char *name)
{
	char path[1024];
	if (corpus_count >= MAX_MSGS)
		return -ENOSPC;
	struct corpus_msg *c = &corpus[corpus_count];
	snprintf(path, sizeof(path), "%s/%s/%s.txt", dir, sub, name);
	int rc = read_file(path, &c->buf, &c->len);
	if (rc < 0) {
		fprintf(stderr, "bench_parse: %s: %s\n", path, strerror(-rc));
		return rc;
	}
	snprintf(c->name, sizeof(c->name), "%s", name);
	corpus_count++;
	return 0;
}

/* The RFC 4475 messages whose EXPECTED.tsv validity is "valid". */
static int corpus_add_rfc4475_valid(const char *dir)
{
	char path[1024], *buf = NULL;
	size_t len = 0;
	snprintf(path, sizeof(path), "%s/rfc4475/EXPECTED.tsv", dir);
	int rc = read_file(path, &buf, &len);
	if (rc < 0) {
		fprintf(stderr, "bench_parse: %s: %s\n", path, strerror(-rc));
		return rc;
	}
	const char *p = buf, *end = buf + len;
	while (p < end && rc == 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		const char *t1 = memchr(p, '\t', (size_t)(e - p));
		if (t1) {
			const char *t2 = memchr(t1 + 1, '\t', (size_t)(e - t1 - 1));
			size_t nlen = (size_t)(t1 - p);
			size_t vlen = (size_t)((t2 ? t2 : e) - t1 - 1);
			if (vlen == 5 && memcmp(t1 + 1, "valid", 5) == 0 && nlen > 0 && nlen < 60) {
				char name[64];
				memcpy(name, p, nlen);
				name[nlen] = '\0';
				rc = corpus_add(dir, "rfc4475", name);
			}
		}
		p = nl ? nl + 1 : end;
	}
	free(buf);
	return rc;
}

static long run_ours(size_t first, size_t count, long iters)
{
	long acc = 0;
	for (long i = 0; i < iters; i++)
		for (size_t k = first; k < first + count; k++)
			acc += sip_msg_parse(&msg, corpus[k].buf, corpus[k].len, SIP_PARSE_DATAGRAM,
					     NULL);
	return acc;
}

#ifdef HAVE_OSIP2
static long run_osip(size_t first, size_t count, long iters)
{
	long acc = 0;
	for (long i = 0; i < iters; i++) {
		for (size_t k = first; k < first + count; k++) {
			osip_message_t *sip;
			if (osip_message_init(&sip) != 0)
				continue;
			acc += osip_message_parse(sip, corpus[k].buf, corpus[k].len);
			osip_message_free(sip);
		}
	}
	return acc;
}
#endif

#ifdef HAVE_OSIP2
static void osip_quiet(const char *fi, int li, osip_trace_level_t level, const char *chfr,
		       va_list ap)
{
	(void)fi;
	(void)li;
	(void)level;
	(void)chfr;
	(void)ap;
}
#endif

typedef long (*run_fn)(size_t first, size_t count, long iters);

/* Iterations of the group that take about ROUND_TARGET_NS. */
static long calibrate(run_fn fn, size_t first, size_t count)
{
	long iters = 1;
	for (;;) {
		double t0 = now_ns();
		sink += fn(first, count, iters);
		double dt = now_ns() - t0;
		if (dt > ROUND_TARGET_NS / 8 || iters > (1L << 28)) {
			double per = dt / (double)iters;
			long n = (long)(ROUND_TARGET_NS / (per > 1 ? per : 1));
			return n > 0 ? n : 1;
		}
		iters *= 2;
	}
}

static void warm_up(run_fn fn)
{
	double t0 = now_ns();
	while (now_ns() - t0 < WARMUP_NS)
		sink += fn(0, corpus_count, 1);
}

static double time_group(run_fn fn, size_t first, size_t count, long iters)
{
	double t0 = now_ns();
	sink += fn(first, count, iters);
	return (now_ns() - t0) / ((double)iters * (double)count);
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(const double *v, size_t n)
{
	double tmp[ROUNDS];
	memcpy(tmp, v, n * sizeof(*v));
	qsort(tmp, n, sizeof(*tmp), dbl_cmp);
	return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : getenv("SIPSD_TEST_DATA");
	if (!dir || !*dir)
		dir = "tests/data";
	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: %s [DATA_DIR]\n", argv[0]);
		return 2;
	}

	/* Groups: each typical message alone, the RFC 4475 valid set, all. */
	static const char *const typical[] = {"invite", "invite-200", "register", "bye"};
	struct group groups[8];
	size_t ngroups = 0;
	for (size_t i = 0; i < 4; i++) {
		size_t first = corpus_count;
		if (corpus_add(dir, "messages", typical[i]) < 0)
			return 1;
		groups[ngroups++] = (struct group){typical[i], first, 1, {0}, {0}};
	}
	size_t rfc_first = corpus_count;
	if (corpus_add_rfc4475_valid(dir) < 0)
		return 1;
	groups[ngroups++] =
	    (struct group){"rfc4475-valid", rfc_first, corpus_count - rfc_first, {0}, {0}};
	groups[ngroups++] = (struct group){"all", 0, corpus_count, {0}, {0}};

#ifdef HAVE_OSIP2
	if (parser_init() != 0) {
		fprintf(stderr, "bench_parse: libosip2 parser_init failed\n");
		return 1;
	}
	/* libosip2 logs each rejected message to stdout; that would time the
	 * terminal, not the parser. A trace function with no level enabled
	 * silences it (disabling levels alone does not). */
	osip_trace_initialize_func(TRACE_LEVEL0, osip_quiet);
#endif
	/* Acceptance on the corpus. */
	unsigned ours_ok = 0, check_ok = 0, osip_ok = 0;
	for (size_t k = 0; k < corpus_count; k++) {
		struct corpus_msg *c = &corpus[k];
		c->ours_ok = sip_msg_parse(&msg, c->buf, c->len, SIP_PARSE_DATAGRAM, NULL) >= 0;
		c->check_ok = c->ours_ok && sip_msg_check(&msg, NULL) == 0;
		ours_ok += c->ours_ok;
		check_ok += c->check_ok;
#ifdef HAVE_OSIP2
		osip_message_t *sip;
		if (osip_message_init(&sip) == 0) {
			c->osip_ok = osip_message_parse(sip, c->buf, c->len) == 0;
			osip_message_free(sip);
		}
		osip_ok += c->osip_ok;
#endif
	}

	printf("bench_parse: %zu messages (%zu RFC 4475 valid + 4 typical) from %s\n", corpus_count,
	       corpus_count - 4, dir);
	printf("accepted by sipsd: %u/%zu parse, %u/%zu parse+check\n", ours_ok, corpus_count,
	       check_ok, corpus_count);
#ifdef HAVE_OSIP2
	printf("accepted by libosip2 %s: %u/%zu\n", "(osip_message_parse)", osip_ok, corpus_count);
	for (size_t k = 0; k < corpus_count; k++)
		if (corpus[k].ours_ok != corpus[k].osip_ok)
			printf("  differs: %-12s sipsd %s, libosip2 %s\n", corpus[k].name,
			       corpus[k].ours_ok ? "accepts" : "rejects",
			       corpus[k].osip_ok ? "accepts" : "rejects");
#else
	printf("libosip2: not available (built without HAVE_OSIP2); only sipsd is measured\n");
	(void)osip_ok;
#endif

	/* Warm up, calibrate, then interleave parsers round by round so that
	 * drift (frequency, other load) hits both alike. */
	warm_up(run_ours);
	long iters_ours[8], iters_osip[8];
	for (size_t g = 0; g < ngroups; g++)
		iters_ours[g] = calibrate(run_ours, groups[g].first, groups[g].count);
#ifdef HAVE_OSIP2
	warm_up(run_osip);
	for (size_t g = 0; g < ngroups; g++)
		iters_osip[g] = calibrate(run_osip, groups[g].first, groups[g].count);
#else
	(void)iters_osip;
#endif
	for (int r = 0; r < ROUNDS; r++) {
		for (size_t g = 0; g < ngroups; g++) {
			struct group *gr = &groups[g];
			gr->ours[r] = time_group(run_ours, gr->first, gr->count, iters_ours[g]);
#ifdef HAVE_OSIP2
			gr->osip[r] = time_group(run_osip, gr->first, gr->count, iters_osip[g]);
#endif
		}
	}

	printf("\nns per message, median of %d rounds (min-max in brackets)\n", ROUNDS);
#ifdef HAVE_OSIP2
	printf("%-14s %5s %24s %24s %8s\n", "group", "msgs", "sipsd", "libosip2", "ratio");
#else
	printf("%-14s %5s %24s\n", "group", "msgs", "sipsd");
#endif
	for (size_t g = 0; g < ngroups; g++) {
		struct group *gr = &groups[g];
		double mo = median(gr->ours, ROUNDS), lo = gr->ours[0], hi = gr->ours[0];
		for (int r = 1; r < ROUNDS; r++) {
			lo = gr->ours[r] < lo ? gr->ours[r] : lo;
			hi = gr->ours[r] > hi ? gr->ours[r] : hi;
		}
		char ours_s[64];
		snprintf(ours_s, sizeof(ours_s), "%.0f [%.0f-%.0f]", mo, lo, hi);
#ifdef HAVE_OSIP2
		double mx = median(gr->osip, ROUNDS), lx = gr->osip[0], hx = gr->osip[0];
		for (int r = 1; r < ROUNDS; r++) {
			lx = gr->osip[r] < lx ? gr->osip[r] : lx;
			hx = gr->osip[r] > hx ? gr->osip[r] : hx;
		}
		char osip_s[64];
		snprintf(osip_s, sizeof(osip_s), "%.0f [%.0f-%.0f]", mx, lx, hx);
		printf("%-14s %5zu %24s %24s %7.2fx\n", gr->name, gr->count, ours_s, osip_s,
		       mx / mo);
#else
		printf("%-14s %5zu %24s\n", gr->name, gr->count, ours_s);
#endif
	}
#ifdef HAVE_OSIP2
	printf(
	    "\nratio = libosip2 / sipsd (above 1: sipsd is faster). sipsd parses the start line,\n"
	    "every header line and eagerly Via/From/To/Call-ID/CSeq/Max-Forwards/Content-Length/\n"
	    "Route/Record-Route/Contact/Expires into a per-message arena; libosip2 parses its "
	    "known\n"
	    "headers into malloc'd structures (init + parse + free timed together).\n");
#endif
	return 0;
}
