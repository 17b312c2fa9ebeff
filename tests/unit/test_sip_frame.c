/* test_sip_frame.c: the stream framer (RFC 3261 §18.3 framing, RFC 5626 §3.5.1 keep-alive). */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/limits.h"
#include "sip/frame.h"
#include "sip/msg.h"

/* A regression of a framer bug found (and fixed) earlier. */
static void known_bug(const char *what)
{
	fail_msg("REGRESSION: %s", what);
}

static const char *data_dir(void)
{
	const char *d = getenv("SIPSD_TEST_DATA");
	return d && *d ? d : "tests/data";
}

/* Reads tests/data/REL whole into a malloc'd buffer, or fails the test. */
static char *data_read(const char *rel, size_t *len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", data_dir(), rel);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	char *buf = malloc(2 * SIPS_MAX_MSG_SIZE);
	assert_non_null(buf);
	*len = fread(buf, 1, 2 * SIPS_MAX_MSG_SIZE, f);
	assert_false(ferror(f));
	fclose(f);
	return buf;
}

#define MAX_MSGS 80

/* The valid messages with a Content-Length: the typical ones and every
 * RFC 4475/5118 message that is valid over UDP, cut to the bytes the
 * datagram parser took (dblreq and the errata carry trailing octets). */
struct corpus {
	char *msg[MAX_MSGS];
	size_t len[MAX_MSGS];
	char name[MAX_MSGS][300];
	size_t count;
};

static void corpus_add_dir(struct corpus *c, const char *sub, struct sip_msg *m)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", data_dir(), sub);
	DIR *d = opendir(path);
	if (!d)
		fail_msg("cannot open %s", path);
	for (struct dirent *e; (e = readdir(d));) {
		size_t l = strlen(e->d_name);
		if (l < 5 || strcmp(e->d_name + l - 4, ".txt") != 0 || c->count >= MAX_MSGS)
			continue;
		char rel[300];
		size_t len;
		snprintf(rel, sizeof(rel), "%.40s/%.250s", sub, e->d_name);
		char *buf = data_read(rel, &len);
		int rc = sip_msg_parse(m, buf, len, SIP_PARSE_DATAGRAM, NULL);
		if (rc < 0 || sip_msg_check(m, NULL) != 0 || m->content_length < 0) {
			free(buf);
			continue;
		}
		c->msg[c->count] = buf;
		c->len[c->count] = (size_t)rc;
		memcpy(c->name[c->count], rel, sizeof(rel));
		c->count++;
	}
	closedir(d);
}

static struct corpus corpus;

static int corpus_setup(void **state)
{
	struct sip_msg *m = malloc(sizeof(*m));
	if (!m)
		return -1;
	corpus_add_dir(&corpus, "messages", m);
	corpus_add_dir(&corpus, "rfc4475", m);
	corpus_add_dir(&corpus, "rfc5118", m);
	corpus_add_dir(&corpus, "rfc5118/cl-corrected", m);
	free(m);
	*state = &corpus;
	return corpus.count >= 40 ? 0 : -1;
}

static int corpus_teardown(void **state)
{
	struct corpus *c = *state;
	for (size_t i = 0; i < c->count; i++)
		free(c->msg[i]);
	c->count = 0;
	return 0;
}

/* Drains the framer: message units are appended to out (their lengths to
 * lens[]), pings and CRLFs counted. Returns the last sip_framer_next
 * result (0 or a negative errno). */
struct drained {
	char *out;
	size_t out_len;
	size_t lens[16];
	unsigned msgs, pings, crlfs;
};

static int drain(struct sip_framer *f, struct drained *d, struct sip_parse_error *err)
{
	struct sip_frame fr;
	int rc;
	while ((rc = sip_framer_next(f, &fr, err)) == 1) {
		switch (fr.type) {
		case SIP_FRAME_MESSAGE:
			memcpy(d->out + d->out_len, fr.data.s, fr.data.len);
			d->out_len += fr.data.len;
			if (d->msgs < 16)
				d->lens[d->msgs] = fr.data.len;
			d->msgs++;
			break;
		case SIP_FRAME_PING:
			d->pings++;
			break;
		case SIP_FRAME_CRLF:
			d->crlfs++;
			break;
		default:
			fail_msg("unknown frame type %d", fr.type);
		}
	}
	return rc;
}

/* Every valid message, split in two feeds at every byte position, yields
 * one message unit identical to the input. */
static void test_split_everywhere(void **state)
{
	struct corpus *c = *state;
	char *out = malloc(SIPS_STREAM_BUF_SIZE);
	unsigned long splits = 0;
	assert_non_null(out);
	for (size_t i = 0; i < c->count; i++) {
		const char *msg = c->msg[i];
		size_t len = c->len[i];
		for (size_t k = 0; k <= len; k++) {
			struct sip_framer f;
			struct sip_parse_error err = {0, NULL, 0};
			struct drained d = {out, 0, {0}, 0, 0, 0};
			sip_framer_init(&f, 0);
			assert_int_equal(sip_framer_feed(&f, msg, k), 0);
			assert_int_equal(drain(&f, &d, &err), 0);
			if (k < len && d.msgs != 0)
				fail_msg("%s: a message after %zu of %zu bytes", c->name[i], k,
					 len);
			assert_int_equal(sip_framer_feed(&f, msg + k, len - k), 0);
			int rc = drain(&f, &d, &err);
			if (rc != 0 || d.msgs != 1 || d.out_len != len)
				fail_msg(
				    "%s split at %zu: rc %d, %u messages, %zu bytes of %zu (%s)",
				    c->name[i], k, rc, d.msgs, d.out_len, len,
				    err.reason ? err.reason : "");
			assert_memory_equal(out, msg, len);
			assert_int_equal(d.pings + d.crlfs, 0);
			assert_int_equal(sip_framer_pending(&f), 0);
			sip_framer_fini(&f);
			splits++;
		}
	}
	print_message("frame: %zu messages split at %lu positions, all identical\n", c->count,
		      splits);
	free(out);
}

/* All messages back to back, pings between them, in one feed. */
static void test_pipelined(void **state)
{
	struct corpus *c = *state;
	size_t total = 0;
	for (size_t i = 0; i < c->count; i++)
		total += c->len[i] + 4;
	char *in = malloc(total), *out = malloc(total);
	assert_non_null(in);
	assert_non_null(out);
	size_t n = 0, expect_msgs = 0, expect_pings = 0;
	/* Batches of up to 8 messages so each feed stays under the bound. */
	for (size_t first = 0; first < c->count; first += 8) {
		struct sip_framer f;
		struct drained d = {out, 0, {0}, 0, 0, 0};
		struct sip_parse_error err = {0, NULL, 0};
		n = 0;
		expect_msgs = expect_pings = 0;
		for (size_t i = first; i < c->count && i < first + 8; i++) {
			memcpy(in + n, c->msg[i], c->len[i]);
			n += c->len[i];
			expect_msgs++;
			if (i % 2) {
				memcpy(in + n, "\r\n\r\n", 4);
				n += 4;
				expect_pings++;
			}
		}
		sip_framer_init(&f, 0);
		assert_int_equal(sip_framer_feed(&f, in, n), 0);
		assert_int_equal(drain(&f, &d, &err), 0);
		assert_int_equal(d.msgs, expect_msgs);
		assert_int_equal(d.pings, expect_pings);
		assert_int_equal(d.crlfs, 0);
		for (size_t i = first, k = 0; i < c->count && i < first + 8; i++, k++)
			assert_int_equal(d.lens[k], c->len[i]);
		assert_int_equal(sip_framer_pending(&f), 0);
		sip_framer_fini(&f);
	}

	/* The same stream through reserve/commit in 1000-byte reads. */
	size_t sent = 0;
	unsigned msgs = 0;
	struct sip_framer f;
	sip_framer_init(&f, 0);
	for (size_t i = 0; i < c->count; i++) {
		memcpy(in + sent, c->msg[i], c->len[i]);
		sent += c->len[i];
	}
	for (size_t off = 0; off < sent;) {
		char *dst;
		size_t room;
		assert_int_equal(sip_framer_reserve(&f, 1000, &dst, &room), 0);
		assert_true(room >= 1);
		size_t k = sent - off < 1000 ? sent - off : 1000;
		if (k > room)
			k = room;
		memcpy(dst, in + off, k);
		sip_framer_commit(&f, k);
		off += k;
		struct sip_frame fr;
		int rc;
		while ((rc = sip_framer_next(&f, &fr, NULL)) == 1) {
			assert_int_equal(fr.type, SIP_FRAME_MESSAGE);
			assert_int_equal(fr.data.len, c->len[msgs]);
			assert_memory_equal(fr.data.s, c->msg[msgs], fr.data.len);
			msgs++;
		}
		assert_int_equal(rc, 0);
		assert_true(f.cap <= f.max);
	}
	assert_int_equal(msgs, c->count);
	sip_framer_fini(&f);
	free(in);
	free(out);
}

/* Framer output of `in` fed in one go: the sequence of unit types as a
 * string ("M" message, "P" ping, "C" crlf) and the final result. */
static int frame_types(const char *in, size_t n, char *types, size_t cap)
{
	struct sip_framer f;
	struct sip_frame fr;
	int rc;
	size_t k = 0;
	sip_framer_init(&f, 0);
	assert_int_equal(sip_framer_feed(&f, in, n), 0);
	while ((rc = sip_framer_next(&f, &fr, NULL)) == 1 && k + 1 < cap)
		types[k++] = fr.type == SIP_FRAME_MESSAGE ? 'M'
			     : fr.type == SIP_FRAME_PING  ? 'P'
							  : 'C';
	types[k] = '\0';
	sip_framer_fini(&f);
	return rc;
}

static const char options[] = "OPTIONS sip:example.com SIP/2.0\r\n"
			      "Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bKk\r\n"
			      "From: <sip:a@example.com>;tag=1\r\n"
			      "To: <sip:example.com>\r\n"
			      "Call-ID: ka1\r\n"
			      "CSeq: 1 OPTIONS\r\n"
			      "Content-Length: 0\r\n\r\n";

/* RFC 5626 §3.5.1: a double CRLF is a ping, a single CRLF a pong. */
static void test_keepalive(void **state)
{
	(void)state;
	char types[32];
	assert_int_equal(frame_types("\r\n\r\n", 4, types, sizeof(types)), 0);
	assert_string_equal(types, "P");
	assert_int_equal(frame_types("\r\n", 2, types, sizeof(types)), 0);
	assert_string_equal(types, "C");
	assert_int_equal(frame_types("\r\n\r\n\r\n\r\n", 8, types, sizeof(types)), 0);
	assert_string_equal(types, "PP");
	assert_int_equal(frame_types("\r\n\r\n\r\n", 6, types, sizeof(types)), 0);
	assert_string_equal(types, "PC");

	/* Pings before, between and after messages. */
	char in[512];
	size_t n = 0;
	memcpy(in + n, "\r\n\r\n", 4), n += 4;
	memcpy(in + n, options, sizeof(options) - 1), n += sizeof(options) - 1;
	memcpy(in + n, "\r\n", 2), n += 2;
	memcpy(in + n, options, sizeof(options) - 1), n += sizeof(options) - 1;
	memcpy(in + n, "\r\n\r\n", 4), n += 4;
	assert_int_equal(frame_types(in, n, types, sizeof(types)), 0);
	assert_string_equal(types, "PMCMP");

	/* A ping split across two reads, at every position: the pinger gets
	 * its PING (at most one CRLF event before it), and nothing is left. */
	for (size_t k = 0; k <= 4; k++) {
		struct sip_framer f;
		struct sip_frame fr;
		unsigned pings = 0, crlfs = 0;
		int rc;
		sip_framer_init(&f, 0);
		assert_int_equal(sip_framer_feed(&f, "\r\n\r\n", k), 0);
		while ((rc = sip_framer_next(&f, &fr, NULL)) == 1) {
			pings += fr.type == SIP_FRAME_PING;
			crlfs += fr.type == SIP_FRAME_CRLF;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(sip_framer_feed(&f, "\r\n\r\n" + k, 4 - k), 0);
		while ((rc = sip_framer_next(&f, &fr, NULL)) == 1) {
			pings += fr.type == SIP_FRAME_PING;
			crlfs += fr.type == SIP_FRAME_CRLF;
			assert_int_not_equal(fr.type, SIP_FRAME_MESSAGE);
		}
		assert_int_equal(rc, 0);
		if (pings != 1 || crlfs > 1)
			fail_msg("ping split at %zu: %u pings, %u crlfs", k, pings, crlfs);
		assert_int_equal(sip_framer_pending(&f), 0);
		sip_framer_fini(&f);
	}
	/* A lone CR waits for its LF. */
	struct sip_framer f;
	struct sip_frame fr;
	sip_framer_init(&f, 0);
	assert_int_equal(sip_framer_feed(&f, "\r", 1), 0);
	assert_int_equal(sip_framer_next(&f, &fr, NULL), 0);
	assert_int_equal(sip_framer_feed(&f, "\n", 1), 0);
	assert_int_equal(sip_framer_next(&f, &fr, NULL), 1);
	assert_int_equal(fr.type, SIP_FRAME_CRLF);
	/* A pong, then a message: the message is not mistaken for a ping. */
	assert_int_equal(sip_framer_feed(&f, options, sizeof(options) - 1), 0);
	assert_int_equal(sip_framer_next(&f, &fr, NULL), 1);
	assert_int_equal(fr.type, SIP_FRAME_MESSAGE);
	assert_int_equal(fr.data.len, sizeof(options) - 1);
	assert_int_equal(sip_framer_next(&f, &fr, NULL), 0);
	sip_framer_fini(&f);
	/* Empty framer. */
	sip_framer_init(&f, 0);
	assert_int_equal(sip_framer_next(&f, &fr, NULL), 0);
	sip_framer_fini(&f);
}

/* Header block variants the framer must still find the length in. */
static void test_content_length_forms(void **state)
{
	(void)state;
	static const char *const ok[] = {
	    "MESSAGE sip:b@example.com SIP/2.0\r\nl: 5\r\n\r\nhello",
	    "MESSAGE sip:b@example.com SIP/2.0\r\nL  :5\r\n\r\nhello",
	    "MESSAGE sip:b@example.com SIP/2.0\r\ncontent-LENGTH:   005\r\n\r\nhello",
	    "MESSAGE sip:b@example.com SIP/2.0\r\nContent-Length:\r\n 5\r\n\r\nhello",
	    "MESSAGE sip:b@example.com SIP/2.0\nContent-Length: 5\n\nhello",
	    "MESSAGE sip:b@example.com SIP/2.0\r\nX-Content-Length: 9\r\nContent-Length: "
	    "5\r\n\r\nhello",
	    "MESSAGE sip:b@example.com SIP/2.0\r\nSubject: a\r\n Content-Length: "
	    "9\r\nContent-Length: 5\r\n\r\nhello",
	    /* other names that start with c or l */
	    "MESSAGE sip:b@example.com SIP/2.0\r\nCall-ID: 9\r\nLx: 9\r\ncontent-lengthy: 9\r\n"
	    "Contact: <sip:a@b>\r\nl: 5\r\n\r\nhello",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct sip_framer f;
		struct sip_frame fr;
		struct sip_parse_error err = {0, NULL, 0};
		size_t n = strlen(ok[i]);
		sip_framer_init(&f, 0);
		assert_int_equal(sip_framer_feed(&f, ok[i], n), 0);
		int rc = sip_framer_next(&f, &fr, &err);
		if (rc != 1 || fr.type != SIP_FRAME_MESSAGE || fr.data.len != n)
			fail_msg("case %zu: rc %d (%s)", i, rc, err.reason ? err.reason : "");
		sip_framer_fini(&f);
	}
}

/* Broken framing closes the stream: -EBADMSG with a reason. */
static void test_bad_content_length(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int rc;
	} bad[] = {
	    /* missing */
	    {"OPTIONS sip:example.com SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n", -EBADMSG},
	    /* bad values */
	    {"OPTIONS sip:example.com SIP/2.0\r\nContent-Length: abc\r\n\r\n", -EBADMSG},
	    {"OPTIONS sip:example.com SIP/2.0\r\nContent-Length: 1a\r\n\r\n", -EBADMSG},
	    {"OPTIONS sip:example.com SIP/2.0\r\nContent-Length:\r\n\r\n", -EBADMSG},
	    {"OPTIONS sip:example.com SIP/2.0\r\nContent-Length: 1 2\r\n\r\n", -EBADMSG},
	    {"OPTIONS sip:example.com SIP/2.0\r\nContent-Length: +3\r\n\r\n", -EBADMSG},
	    {"OPTIONS sip:example.com SIP/2.0\r\nContent-Length: 0x10\r\n\r\n", -EBADMSG},
	    /* negative (RFC 4475 §3.1.2.3) */
	    {"OPTIONS sip:example.com SIP/2.0\r\nContent-Length: -999\r\n\r\n", -EBADMSG},
	    {"OPTIONS sip:example.com SIP/2.0\r\nl: -1\r\n\r\n", -EBADMSG},
	    /* above 2^32-1 */
	    {"OPTIONS sip:example.com SIP/2.0\r\nContent-Length: 99999999999999999999\r\n\r\n",
	     -EBADMSG},
	    /* duplicate, equal or not, full or compact (RFC 4475 §3.3.9) */
	    {"OPTIONS sip:example.com SIP/2.0\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
	     -EBADMSG},
	    {"OPTIONS sip:example.com SIP/2.0\r\nContent-Length: 3\r\nContent-Length: 0\r\n\r\nabc",
	     -EBADMSG},
	    {"OPTIONS sip:example.com SIP/2.0\r\nl: 0\r\ncontent-length: 0\r\n\r\n", -EBADMSG},
	    /* no end of the start line before the empty line cannot happen;
	     * a header block of only a start line still needs a length */
	    {"OPTIONS sip:example.com SIP/2.0\r\n\r\n", -EBADMSG},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sip_framer f;
		struct sip_frame fr;
		struct sip_parse_error err = {0, NULL, 0};
		sip_framer_init(&f, 0);
		assert_int_equal(sip_framer_feed(&f, bad[i].text, strlen(bad[i].text)), 0);
		int rc = sip_framer_next(&f, &fr, &err);
		if (rc != bad[i].rc)
			fail_msg("case %zu: got %d, expected %d", i, rc, bad[i].rc);
		assert_non_null(err.reason);
		assert_int_equal(err.status, 400);
		/* The stream stays broken: asking again gives the error again. */
		assert_int_equal(sip_framer_next(&f, &fr, NULL), bad[i].rc);
		sip_framer_fini(&f);
	}
}

/* Oversize header blocks and bodies: -EMSGSIZE, never unbounded memory. */
static void test_oversize(void **state)
{
	(void)state;
	struct sip_framer f;
	struct sip_frame fr;
	struct sip_parse_error err = {0, NULL, 0};
	char line[1024];

	/* A header block that never ends, default bound. */
	sip_framer_init(&f, 0);
	assert_int_equal(sip_framer_feed(&f, "INVITE sip:a@example.com SIP/2.0\r\n", 34), 0);
	memset(line, 'x', sizeof(line));
	memcpy(line, "X-Pad: ", 7);
	memcpy(line + sizeof(line) - 2, "\r\n", 2);
	int rc = 0;
	for (int i = 0; i < 200 && rc == 0; i++) {
		rc = sip_framer_feed(&f, line, sizeof(line));
		if (rc == 0)
			rc = sip_framer_next(&f, &fr, &err);
		assert_true(f.cap <= f.max);
		assert_true(sip_framer_pending(&f) <= f.max);
	}
	assert_int_equal(rc, -EMSGSIZE);
	sip_framer_fini(&f);

	/* With a small bound, the feed itself refuses to grow past it. */
	sip_framer_init(&f, 4096);
	rc = 0;
	for (int i = 0; i < 10 && rc == 0; i++)
		rc = sip_framer_feed(&f, line, sizeof(line));
	assert_int_equal(rc, -EMSGSIZE);
	assert_true(f.cap <= 4096);
	assert_int_equal(sip_framer_next(&f, &fr, &err), -EMSGSIZE);
	sip_framer_fini(&f);

	/* Content-Length over the message limit is refused before the body. */
	static const char big[] =
	    "MESSAGE sip:b@example.com SIP/2.0\r\nContent-Length: 70000\r\n\r\n";
	sip_framer_init(&f, 0);
	assert_int_equal(sip_framer_feed(&f, big, sizeof(big) - 1), 0);
	err.status = 0;
	assert_int_equal(sip_framer_next(&f, &fr, &err), -EMSGSIZE);
	assert_int_equal(err.status, 413);
	assert_non_null(err.reason);
	sip_framer_fini(&f);
	/* ...and so is one over a smaller bound of the framer. */
	static const char mid[] =
	    "MESSAGE sip:b@example.com SIP/2.0\r\nContent-Length: 5000\r\n\r\n";
	sip_framer_init(&f, 4096);
	assert_int_equal(sip_framer_feed(&f, mid, sizeof(mid) - 1), 0);
	assert_int_equal(sip_framer_next(&f, &fr, &err), -EMSGSIZE);
	sip_framer_fini(&f);
	/* Exactly at the message limit is fine. */
	char *whole = malloc(SIPS_MAX_MSG_SIZE);
	assert_non_null(whole);
	static const char head[] = "MESSAGE sip:b@example.com SIP/2.0\r\nContent-Length: ";
	char hdr[128];
	size_t hl = sizeof(head) - 1 + 5 + 4;
	snprintf(hdr, sizeof(hdr), "%s%05zu\r\n\r\n", head, (size_t)SIPS_MAX_MSG_SIZE - hl);
	assert_int_equal(strlen(hdr), hl);
	memcpy(whole, hdr, hl);
	memset(whole + hl, 'b', SIPS_MAX_MSG_SIZE - hl);
	sip_framer_init(&f, 0);
	assert_int_equal(sip_framer_feed(&f, whole, SIPS_MAX_MSG_SIZE), 0);
	assert_int_equal(sip_framer_next(&f, &fr, &err), 1);
	assert_int_equal(fr.data.len, SIPS_MAX_MSG_SIZE);
	sip_framer_fini(&f);
	/* One byte more is not. */
	snprintf(hdr, sizeof(hdr), "%s%05zu\r\n\r\n", head, (size_t)SIPS_MAX_MSG_SIZE - hl + 1);
	memcpy(whole, hdr, hl);
	sip_framer_init(&f, 0);
	assert_int_equal(sip_framer_feed(&f, whole, hl), 0);
	assert_int_equal(sip_framer_next(&f, &fr, &err), -EMSGSIZE);
	sip_framer_fini(&f);
	free(whole);
}

/* Memory is held only while bytes are pending; shrink gives it back. */
static void test_bounded_memory(void **state)
{
	struct corpus *c = *state;
	struct sip_framer f;
	struct sip_frame fr;
	sip_framer_init(&f, 0);
	assert_null(f.buf);
	assert_int_equal(f.cap, 0);
	sip_framer_shrink(&f); /* harmless when empty */
	assert_null(f.buf);

	/* Half a message pending: shrink keeps it. */
	assert_int_equal(sip_framer_feed(&f, options, 20), 0);
	assert_int_equal(sip_framer_next(&f, &fr, NULL), 0);
	assert_non_null(f.buf);
	sip_framer_shrink(&f);
	assert_non_null(f.buf);
	assert_int_equal(sip_framer_pending(&f), 20);
	assert_int_equal(sip_framer_feed(&f, options + 20, sizeof(options) - 1 - 20), 0);
	assert_int_equal(sip_framer_next(&f, &fr, NULL), 1);
	assert_int_equal(fr.data.len, sizeof(options) - 1);
	assert_memory_equal(fr.data.s, options, sizeof(options) - 1);
	/* Idle: shrink frees. */
	assert_int_equal(sip_framer_pending(&f), 0);
	sip_framer_shrink(&f);
	assert_null(f.buf);
	assert_int_equal(f.cap, 0);
	assert_int_equal(sip_framer_pending(&f), 0);

	/* A long connection: thousands of messages, the buffer stays small
	 * and bounded, and works again after each shrink. */
	size_t max_cap = 0;
	for (unsigned round = 0; round < 2000; round++) {
		size_t i = round % c->count;
		assert_int_equal(sip_framer_feed(&f, c->msg[i], c->len[i]), 0);
		assert_int_equal(sip_framer_next(&f, &fr, NULL), 1);
		assert_int_equal(fr.data.len, c->len[i]);
		assert_int_equal(sip_framer_next(&f, &fr, NULL), 0);
		if (f.cap > max_cap)
			max_cap = f.cap;
		if (round % 100 == 99) {
			sip_framer_shrink(&f);
			assert_null(f.buf);
		}
	}
	assert_true(max_cap <= 16384);
	assert_true(max_cap <= f.max);
	sip_framer_fini(&f);
	assert_null(f.buf);
	sip_framer_fini(&f); /* twice is harmless */
}

/* Fixed bug (frame.c, sip_framer_next keep-alive branch): a CR at the
 * start of a unit that is not followed by LF ("\rX", or "\r\n\rOPTIONS ...")
 * makes sip_framer_next return 0 ("need more") forever, even once the
 * buffer is full (then only sip_framer_feed fails, with -EMSGSIZE; next
 * still says 0). No further bytes can make such a stream valid. Expected:
 * -EBADMSG as soon as the byte after the CR is known (or the stray CR
 * dropped); got: 0 with the CR still pending. */
static void test_stray_cr_regression(void **state)
{
	(void)state;
	static const char *const cases[] = {"\rX", "\r\r\n",
					    "\r\n\rOPTIONS sip:example.com SIP/2.0\r\n"};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sip_framer f;
		struct sip_frame fr;
		int rc;
		sip_framer_init(&f, 0);
		assert_int_equal(sip_framer_feed(&f, cases[i], strlen(cases[i])), 0);
		while ((rc = sip_framer_next(&f, &fr, NULL)) == 1)
			assert_int_not_equal(fr.type, SIP_FRAME_MESSAGE);
		bool stalled = rc == 0 && sip_framer_pending(&f) > 1 && f.buf[f.off] == '\r';
		sip_framer_fini(&f);
		if (stalled)
			known_bug("a CR not followed by LF between messages stalls the framer "
				  "(sip_framer_next returns 0 forever instead of -EBADMSG)");
		assert_true(rc == -EBADMSG || rc == 0);
	}
}

int main(void)
{
	/* Only the tests matching SIPSD_TEST_FILTER (a pattern with * and ?). */
	const char *only = getenv("SIPSD_TEST_FILTER");
	if (only && *only)
		cmocka_set_test_filter(only);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_split_everywhere),   cmocka_unit_test(test_pipelined),
	    cmocka_unit_test(test_keepalive),	       cmocka_unit_test(test_content_length_forms),
	    cmocka_unit_test(test_bad_content_length), cmocka_unit_test(test_oversize),
	    cmocka_unit_test(test_bounded_memory),     cmocka_unit_test(test_stray_cr_regression),
	};
	return cmocka_run_group_tests(tests, corpus_setup, corpus_teardown);
}
