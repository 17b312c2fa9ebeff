/* test_sip_torture.c: the parser and framer against every RFC 4475 and RFC 5118
 * message, judged by tests/data/{rfc4475,rfc5118}/VERDICTS.tsv. */
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

#include "sip/frame.h"
#include "sip/msg.h"

#define MAX_ROWS 128

/* One line of VERDICTS.tsv. */
struct verdict_row {
	char dir[16];	  /* "rfc4475" or "rfc5118" */
	char name[96];	  /* file name without ".txt", may hold "cl-corrected/" */
	char mode[16];	  /* "datagram" or "stream" */
	char verdict[24]; /* valid | parse-error | check-NNN | need-more */
};

static const char *data_dir(void)
{
	const char *d = getenv("SIPSD_TEST_DATA");
	return d && *d ? d : "tests/data";
}

/* Reads tests/data/REL whole into a malloc'd buffer. Returns 0 or -errno. */
static int data_read(const char *rel, char **out, size_t *len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", data_dir(), rel);
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		n += fread(buf + n, 1, cap - n, f);
		if (n < cap)
			break;
		char *nb = realloc(buf, cap * 2);
		if (!nb) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = nb;
		cap *= 2;
	}
	int err = ferror(f);
	fclose(f);
	if (!buf)
		return -ENOMEM;
	if (err) {
		free(buf);
		return -EIO;
	}
	*out = buf;
	*len = n;
	return 0;
}

static char *data_read_or_fail(const char *rel, size_t *len)
{
	char *buf = NULL;
	int rc = data_read(rel, &buf, len);
	if (rc < 0)
		fail_msg("cannot read %s/%s: %s", data_dir(), rel, strerror(-rc));
	return buf;
}

/* Copies the tab-separated field starting at *p (up to the end `e`) into
 * out, NUL-terminated and truncated; advances *p past the tab. */
static void tsv_field(const char **p, const char *e, char *out, size_t cap)
{
	const char *s = *p;
	const char *t = memchr(s, '\t', (size_t)(e - s));
	size_t n = (size_t)((t ? t : e) - s);
	if (n >= cap)
		n = cap - 1;
	memcpy(out, s, n);
	out[n] = '\0';
	*p = t ? t + 1 : e;
}

/* Appends the rows of DIR/VERDICTS.tsv to rows[]. Returns the new count. */
static size_t verdicts_load(const char *dir, struct verdict_row *rows, size_t count)
{
	char rel[64];
	size_t len;
	snprintf(rel, sizeof(rel), "%s/VERDICTS.tsv", dir);
	char *buf = data_read_or_fail(rel, &len);
	const char *p = buf, *end = buf + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		if (e > p && e[-1] == '\r')
			e--;
		if (e > p && *p != '#' && !(e - p >= 5 && memcmp(p, "name\t", 5) == 0)) {
			if (count >= MAX_ROWS)
				fail_msg("too many rows in %s", rel);
			struct verdict_row *r = &rows[count++];
			memset(r, 0, sizeof(*r));
			snprintf(r->dir, sizeof(r->dir), "%s", dir);
			const char *q = p;
			tsv_field(&q, e, r->name, sizeof(r->name));
			tsv_field(&q, e, r->mode, sizeof(r->mode));
			tsv_field(&q, e, r->verdict, sizeof(r->verdict));
			if (!r->name[0] || !r->mode[0] || !r->verdict[0])
				fail_msg("%s: malformed row '%.*s'", rel, (int)(e - p), p);
		}
		p = nl ? nl + 1 : end;
	}
	free(buf);
	return count;
}

/* The verdict of our code on `buf` in `mode`, written to `out`; `why`
 * gets the reason and offset for messages. */
static void judge(const char *buf, size_t len, const char *mode, char *out, size_t cap, char *why,
		  size_t why_cap)
{
	struct sip_msg *m = malloc(sizeof(*m));
	struct sip_parse_error err = {0, NULL, 0};
	const char *data = buf;
	size_t dlen = len;
	struct sip_framer f;
	bool stream = strcmp(mode, "stream") == 0;
	int rc;

	assert_non_null(m);
	why[0] = '\0';
	sip_framer_init(&f, 0);
	if (stream) {
		struct sip_frame fr;
		rc = sip_framer_feed(&f, buf, len);
		if (rc < 0) {
			snprintf(out, cap, "parse-error");
			snprintf(why, why_cap, "framer feed: %s", strerror(-rc));
			goto done;
		}
		do {
			rc = sip_framer_next(&f, &fr, &err);
		} while (rc == 1 && fr.type != SIP_FRAME_MESSAGE);
		if (rc < 0) {
			snprintf(out, cap, "parse-error");
			snprintf(why, why_cap, "framer: %s at %zu", err.reason ? err.reason : "?",
				 err.offset);
			goto done;
		}
		if (rc == 0) {
			snprintf(out, cap, "need-more");
			snprintf(why, why_cap, "framer holds %zu bytes", sip_framer_pending(&f));
			goto done;
		}
		data = fr.data.s;
		dlen = fr.data.len;
	}
	rc = sip_msg_parse(m, data, dlen, stream ? SIP_PARSE_STREAM : SIP_PARSE_DATAGRAM, &err);
	if (rc < 0) {
		snprintf(out, cap, "parse-error");
		snprintf(why, why_cap, "%s at %zu", err.reason ? err.reason : "?", err.offset);
		goto done;
	}
	int status = sip_msg_check(m, &err);
	if (status == 0) {
		snprintf(out, cap, "valid");
	} else {
		snprintf(out, cap, "check-%d", status);
		snprintf(why, why_cap, "%s at %zu", err.reason ? err.reason : "?", err.offset);
	}
done:
	sip_framer_fini(&f);
	free(m);
}

static void judge_file(const char *dir, const char *name, const char *mode, char *out, size_t cap,
		       char *why, size_t why_cap)
{
	char rel[160];
	size_t len;
	snprintf(rel, sizeof(rel), "%s/%s.txt", dir, name);
	char *buf = data_read_or_fail(rel, &len);
	judge(buf, len, mode, out, cap, why, why_cap);
	free(buf);
}

/* Every row of both VERDICTS.tsv files matches what the code does. */
static void test_verdicts(void **state)
{
	(void)state;
	static struct verdict_row rows[MAX_ROWS];
	size_t n4475 = verdicts_load("rfc4475", rows, 0);
	size_t n = verdicts_load("rfc5118", rows, n4475);
	unsigned ok = 0, bad = 0, valid = 0, rejected = 0;

	assert_true(n4475 > 40);
	assert_true(n > n4475 + 10);
	for (size_t i = 0; i < n; i++) {
		const struct verdict_row *r = &rows[i];
		char got[32], why[256];
		if (strcmp(r->mode, "datagram") != 0 && strcmp(r->mode, "stream") != 0)
			fail_msg("%s/%s: bad mode '%s'", r->dir, r->name, r->mode);
		judge_file(r->dir, r->name, r->mode, got, sizeof(got), why, sizeof(why));
		if (strcmp(got, r->verdict) == 0) {
			ok++;
			if (strcmp(got, "valid") == 0)
				valid++;
			else
				rejected++;
		} else {
			bad++;
			print_error("MISMATCH %s/%s (%s): expected %s, got %s%s%s\n", r->dir,
				    r->name, r->mode, r->verdict, got, why[0] ? ": " : "", why);
		}
	}
	print_message("torture: %zu verdicts (%zu rfc4475, %zu rfc5118): %u as expected "
		      "(%u valid, %u rejected), %u mismatches\n",
		      n, n4475, n - n4475, ok, valid, rejected, bad);
	assert_int_equal(bad, 0);
}

static bool rows_have(const struct verdict_row *rows, size_t n, const char *dir, const char *name,
		      const char *mode)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(rows[i].dir, dir) && !strcmp(rows[i].name, name) &&
		    !strcmp(rows[i].mode, mode))
			return true;
	return false;
}

/* Lists the *.txt files of tests/data/SUB into names[][] (without .txt). */
static size_t list_txt(const char *sub, char names[][96], size_t max)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", data_dir(), sub);
	DIR *d = opendir(path);
	size_t n = 0;
	if (!d)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	for (struct dirent *e; (e = readdir(d));) {
		size_t l = strlen(e->d_name);
		if (l > 4 && l < 90 && !strcmp(e->d_name + l - 4, ".txt") && n < max) {
			memcpy(names[n], e->d_name, l - 4);
			names[n][l - 4] = '\0';
			n++;
		}
	}
	closedir(d);
	return n;
}

/* Every message file has a datagram verdict, and every message the RFCs
 * list (EXPECTED.tsv) is in VERDICTS.tsv. */
static void test_verdicts_cover_corpus(void **state)
{
	(void)state;
	static struct verdict_row rows[MAX_ROWS];
	static char names[MAX_ROWS][96];
	size_t n = verdicts_load("rfc4475", rows, 0);
	n = verdicts_load("rfc5118", rows, n);
	static const struct {
		const char *dir, *sub, *prefix;
	} dirs[] = {
	    {"rfc4475", "rfc4475", ""},
	    {"rfc5118", "rfc5118", ""},
	    {"rfc5118", "rfc5118/cl-corrected", "cl-corrected/"},
	};
	unsigned files = 0;
	for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
		size_t k = list_txt(dirs[d].sub, names, MAX_ROWS);
		assert_true(k > 0);
		for (size_t i = 0; i < k; i++) {
			char full[128];
			snprintf(full, sizeof(full), "%s%s", dirs[d].prefix, names[i]);
			if (!rows_have(rows, n, dirs[d].dir, full, "datagram"))
				fail_msg("%s/%s.txt has no datagram row in VERDICTS.tsv",
					 dirs[d].sub, names[i]);
			files++;
		}
	}
	/* EXPECTED.tsv: name, validity, ... (the RFC's own expectations). */
	static const char *const expected[] = {"rfc4475", "rfc5118"};
	unsigned listed = 0;
	for (size_t d = 0; d < 2; d++) {
		char rel[64];
		size_t len;
		snprintf(rel, sizeof(rel), "%s/EXPECTED.tsv", expected[d]);
		char *buf = data_read_or_fail(rel, &len);
		const char *p = buf, *end = buf + len;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *e = nl ? nl : end;
			char name[96];
			const char *q = p;
			tsv_field(&q, e, name, sizeof(name));
			if (name[0] && strcmp(name, "name") != 0) {
				if (!rows_have(rows, n, expected[d], name, "datagram"))
					fail_msg("%s lists %s, missing from VERDICTS.tsv", rel,
						 name);
				listed++;
			}
			p = nl ? nl + 1 : end;
		}
		free(buf);
	}
	print_message("torture: %u message files, %u RFC entries, all with a verdict\n", files,
		      listed);
	assert_int_equal(listed, 61);
}

/* Our verdicts never contradict the RFCs: what RFC 4475/5118 call invalid
 * we never accept (in any mode of VERDICTS.tsv); what they call valid we
 * accept over UDP, or, for the RFC 5118 Content-Length errata, in the
 * corrected form. */
static void test_agrees_with_rfcs(void **state)
{
	(void)state;
	static const char *const dirs[] = {"rfc4475", "rfc5118"};
	unsigned checked = 0;
	for (size_t d = 0; d < 2; d++) {
		char rel[64];
		size_t len;
		snprintf(rel, sizeof(rel), "%s/EXPECTED.tsv", dirs[d]);
		char *buf = data_read_or_fail(rel, &len);
		const char *p = buf, *end = buf + len;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *e = nl ? nl : end;
			char name[96], validity[32], got[32], why[256];
			const char *q = p;
			tsv_field(&q, e, name, sizeof(name));
			tsv_field(&q, e, validity, sizeof(validity));
			p = nl ? nl + 1 : end;
			if (!name[0] || !strcmp(name, "name"))
				continue;
			judge_file(dirs[d], name, "datagram", got, sizeof(got), why, sizeof(why));
			if (!strcmp(validity, "invalid")) {
				if (!strcmp(got, "valid"))
					fail_msg("%s/%s: the RFC says invalid, we accept it",
						 dirs[d], name);
				judge_file(dirs[d], name, "stream", got, sizeof(got), why,
					   sizeof(why));
				if (!strcmp(got, "valid"))
					fail_msg(
					    "%s/%s: the RFC says invalid, we accept it on a stream",
					    dirs[d], name);
			} else if (strcmp(got, "valid") != 0) {
				char fixed[128];
				snprintf(fixed, sizeof(fixed), "cl-corrected/%s", name);
				judge_file(dirs[d], fixed, "datagram", got, sizeof(got), why,
					   sizeof(why));
				if (strcmp(got, "valid") != 0)
					fail_msg("%s/%s: the RFC says valid, we say %s (%s)",
						 dirs[d], name, got, why);
			}
			checked++;
		}
		free(buf);
	}
	assert_int_equal(checked, 61);
}

static struct sip_msg *parse_file(const char *rel, enum sip_parse_mode mode, char **buf,
				  size_t *len, int *rc)
{
	struct sip_msg *m = malloc(sizeof(*m));
	struct sip_parse_error err = {0, NULL, 0};
	assert_non_null(m);
	*buf = data_read_or_fail(rel, len);
	*rc = sip_msg_parse(m, *buf, *len, mode, &err);
	return m;
}

static bool str_is(struct str s, const char *c)
{
	return str_eq(s, str_from_cstr(c));
}

/* RFC 4475 §3.1.1.8: the REGISTER is processed, the INVITE after it ignored. */
static void test_dblreq(void **state)
{
	(void)state;
	char *buf;
	size_t len;
	int rc;
	struct sip_msg *m = parse_file("rfc4475/dblreq.txt", SIP_PARSE_DATAGRAM, &buf, &len, &rc);
	assert_true(rc > 0);
	assert_true((size_t)rc < len);
	assert_int_equal(m->method_id, SIP_METHOD_REGISTER);
	assert_int_equal(m->content_length, 0);
	assert_int_equal(m->body.len, 0);
	assert_int_equal(m->raw.len, (size_t)rc);
	/* The REGISTER ends at its empty line; the INVITE lies beyond rc. */
	assert_memory_equal(buf + rc - 4, "\r\n\r\n", 4);
	const char *inv = memmem(buf, len, "INVITE sip:joe@example.com", 26);
	assert_non_null(inv);
	assert_true(inv >= buf + rc);
	assert_null(memmem(m->raw.s, m->raw.len, "INVITE", 6));
	assert_int_equal(sip_msg_check(m, NULL), 0);
	free(buf);
	free(m);
}

/* RFC 4475 §3.1.1.5: "C%6Fntact" is not Contact, so two Contact values. */
static void test_esc02(void **state)
{
	(void)state;
	char *buf;
	size_t len;
	int rc;
	struct sip_msg *m = parse_file("rfc4475/esc02.txt", SIP_PARSE_DATAGRAM, &buf, &len, &rc);
	assert_int_equal(rc, (int)len);
	assert_int_equal(m->contact_count, 2);
	assert_int_equal(m->hdr_counts[SIP_HDR_CONTACT], 2);
	assert_true(str_is(m->contact->uri.host, "host1.example.com"));
	assert_true(str_is(m->contact->next->uri.host, "host3.example.com"));
	assert_null(m->contact->next->next);
	/* The method is RE%47IST%45R, unknown, not REGISTER. */
	assert_int_equal(m->method_id, SIP_METHOD_UNKNOWN);
	assert_true(str_is(m->method, "RE%47IST%45R"));
	const struct sip_hdr *h = sip_msg_hdr_by_name(m, STR_LIT("C%6Fntact"));
	assert_non_null(h);
	assert_int_equal(h->id, SIP_HDR_OTHER);
	free(buf);
	free(m);
}

/* RFC 4475 §3.1.1.9: the user part holds ';'. */
static void test_semiuri(void **state)
{
	(void)state;
	char *buf;
	size_t len;
	int rc;
	struct sip_msg *m = parse_file("rfc4475/semiuri.txt", SIP_PARSE_DATAGRAM, &buf, &len, &rc);
	assert_int_equal(rc, (int)len);
	assert_true(m->ruri.has_user);
	assert_true(str_is(m->ruri.user, "user;par=u%40example.net"));
	assert_true(str_is(m->ruri.host, "example.com"));
	assert_int_equal(m->ruri.params.len, 0);
	free(buf);
	free(m);
}

/* RFC 5118 §4.3 and §4.4: the port inside or outside the brackets. */
static void test_port_ambiguity(void **state)
{
	(void)state;
	char *buf;
	size_t len;
	int rc;
	struct sip_msg *m =
	    parse_file("rfc5118/port-ambiguous.txt", SIP_PARSE_DATAGRAM, &buf, &len, &rc);
	assert_int_equal(rc, (int)len);
	assert_true(str_is(m->ruri.host, "[2001:db8::10:5070]"));
	assert_int_equal(m->ruri.host_type, SIP_HOST_IPV6);
	assert_false(m->ruri.has_port);
	assert_int_equal(m->ruri.port, 0);
	free(buf);
	free(m);

	m = parse_file("rfc5118/port-unambiguous.txt", SIP_PARSE_DATAGRAM, &buf, &len, &rc);
	assert_int_equal(rc, (int)len);
	assert_true(str_is(m->ruri.host, "[2001:db8::10]"));
	assert_int_equal(m->ruri.host_type, SIP_HOST_IPV6);
	assert_true(m->ruri.has_port);
	assert_int_equal(m->ruri.port, 5070);
	free(buf);
	free(m);
}

static bool is_via_name(const char *s, size_t n)
{
	return (n == 1 && (s[0] == 'v' || s[0] == 'V')) ||
	       (n == 3 && str_case_eq(str_make(s, n), STR_LIT("via")));
}

/* Counts Via entries in a raw message by hand: header lines named Via or
 * v, one entry plus one per comma outside quotes, folds included. */
static unsigned count_via_entries(const char *buf, size_t len)
{
	unsigned count = 0;
	const char *p = memchr(buf, '\n', len);
	const char *end = buf + len;
	bool in_via = false;
	if (!p)
		return 0;
	p++;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		if (e == p || (e == p + 1 && *p == '\r'))
			break; /* end of headers */
		const char *v = p;
		if (*p != ' ' && *p != '\t') {
			const char *n = p;
			while (v < e && *v != ':' && *v != ' ' && *v != '\t')
				v++;
			in_via = is_via_name(n, (size_t)(v - n));
			while (v < e && *v != ':')
				v++;
			if (in_via)
				count++;
		}
		if (in_via) {
			bool quoted = false;
			for (; v < e; v++) {
				if (*v == '"')
					quoted = !quoted;
				else if (*v == ',' && !quoted)
					count++;
			}
		}
		p = nl ? nl + 1 : end;
	}
	return count;
}

/* RFC 4475 §3.1.1.7: long values and many Via entries survive intact. */
static void test_longreq(void **state)
{
	(void)state;
	char *buf;
	size_t len;
	int rc;
	struct sip_msg *m = parse_file("rfc4475/longreq.txt", SIP_PARSE_DATAGRAM, &buf, &len, &rc);
	assert_int_equal(rc, (int)len);
	unsigned in_file = count_via_entries(buf, len);
	assert_int_equal(in_file, 34);
	assert_int_equal(m->via_count, in_file);
	unsigned listed = 0;
	const struct sip_via *last = NULL;
	for (const struct sip_via *v = m->via; v; v = v->next) {
		listed++;
		last = v;
	}
	assert_int_equal(listed, in_file);
	assert_true(str_is(m->via->host, "sip33.example.com"));
	assert_true(str_is(last->host, "host.example.com"));
	assert_true(last->has_received);
	assert_true(str_is(last->received, "192.0.2.5"));
	assert_true(last->branch.len > 100);
	assert_int_equal(m->content_length, 150);
	assert_int_equal(m->body.len, 150);
	assert_true(m->to->display.len > 90);
	assert_true(m->call_id.len > 100);
	free(buf);
	free(m);
}

/* RFC 4475 §3.4.1: no Content-Length: over UDP the body is the rest of the
 * datagram; on a stream the message cannot be framed. */
static void test_inv2543(void **state)
{
	(void)state;
	char *buf;
	size_t len;
	int rc;
	struct sip_msg *m = parse_file("rfc4475/inv2543.txt", SIP_PARSE_DATAGRAM, &buf, &len, &rc);
	assert_int_equal(rc, (int)len);
	assert_int_equal(m->content_length, -1);
	const char *hend = memmem(buf, len, "\r\n\r\n", 4);
	assert_non_null(hend);
	hend += 4;
	assert_ptr_equal(m->body.s, hend);
	assert_int_equal(m->body.len, len - (size_t)(hend - buf));
	assert_memory_equal(m->body.s, "v=0\r\n", 5);
	assert_int_equal(m->max_forwards, -1);
	assert_false(m->via->has_branch);
	assert_false(m->from->has_tag);
	assert_int_equal(sip_msg_check(m, NULL), 0);

	struct sip_parse_error err = {0, NULL, 0};
	assert_int_equal(sip_msg_parse(m, buf, len, SIP_PARSE_STREAM, &err), -EBADMSG);
	assert_non_null(err.reason);

	struct sip_framer f;
	struct sip_frame fr;
	sip_framer_init(&f, 0);
	assert_int_equal(sip_framer_feed(&f, buf, len), 0);
	assert_int_equal(sip_framer_next(&f, &fr, &err), -EBADMSG);
	sip_framer_fini(&f);
	free(buf);
	free(m);
}

/* RFC 4475 §3.1.1.11: the binary multipart body is framed by Content-Length. */
static void test_mpart01(void **state)
{
	(void)state;
	char *buf;
	size_t len;
	int rc;
	struct sip_msg *m = parse_file("rfc4475/mpart01.txt", SIP_PARSE_DATAGRAM, &buf, &len, &rc);
	assert_true(rc > 0);
	assert_true(m->content_length > 0);
	assert_int_equal(m->body.len, (size_t)m->content_length);
	assert_int_equal((size_t)rc, (size_t)(m->body.s - buf) + m->body.len);
	assert_int_equal(rc, (int)len);
	/* The body carries a NUL byte and a bare LF (why framing must count). */
	assert_non_null(memchr(m->body.s, '\0', m->body.len));
	bool bare_lf = false;
	for (size_t i = 1; i < m->body.len; i++)
		bare_lf |= m->body.s[i] == '\n' && m->body.s[i - 1] != '\r';
	assert_true(bare_lf);
	free(buf);
	free(m);
}

/* Feeds `buf` one byte at a time; returns the first message unit (a copy
 * in *out) or fails the test on a framer error. */
static size_t frame_byte_by_byte(const char *buf, size_t len, char *out, size_t cap)
{
	struct sip_framer f;
	struct sip_frame fr;
	struct sip_parse_error err = {0, NULL, 0};
	size_t got = 0;
	sip_framer_init(&f, 0);
	for (size_t i = 0; i < len && !got; i++) {
		assert_int_equal(sip_framer_feed(&f, buf + i, 1), 0);
		int rc;
		while ((rc = sip_framer_next(&f, &fr, &err)) == 1) {
			if (fr.type == SIP_FRAME_MESSAGE) {
				assert_true(fr.data.len <= cap);
				memcpy(out, fr.data.s, fr.data.len);
				got = fr.data.len;
				break;
			}
		}
		if (rc < 0)
			fail_msg("framer error at byte %zu: %s (offset %zu)", i,
				 err.reason ? err.reason : "?", err.offset);
		assert_true(f.cap <= f.max);
	}
	sip_framer_fini(&f);
	return got;
}

/* Every message valid over UDP that carries a Content-Length also frames
 * and parses when it arrives on a stream one byte at a time. */
static void test_valid_byte_by_byte(void **state)
{
	(void)state;
	static struct verdict_row rows[MAX_ROWS];
	size_t n = verdicts_load("rfc4475", rows, 0);
	n = verdicts_load("rfc5118", rows, n);
	struct sip_msg *m = malloc(sizeof(*m));
	char *frame = malloc(SIPS_STREAM_BUF_SIZE);
	unsigned framed = 0, skipped = 0;
	assert_non_null(m);
	assert_non_null(frame);
	for (size_t i = 0; i < n; i++) {
		const struct verdict_row *r = &rows[i];
		if (strcmp(r->mode, "datagram") || strcmp(r->verdict, "valid"))
			continue;
		char rel[160];
		size_t len;
		snprintf(rel, sizeof(rel), "%s/%s.txt", r->dir, r->name);
		char *buf = data_read_or_fail(rel, &len);
		int rc = sip_msg_parse(m, buf, len, SIP_PARSE_DATAGRAM, NULL);
		assert_true(rc > 0);
		if (m->content_length < 0) {
			skipped++; /* inv2543: cannot be framed, see test_inv2543 */
			free(buf);
			continue;
		}
		size_t got = frame_byte_by_byte(buf, len, frame, SIPS_STREAM_BUF_SIZE);
		if (got != (size_t)rc)
			fail_msg("%s: framed %zu bytes byte by byte, datagram parse took %d", rel,
				 got, rc);
		assert_memory_equal(frame, buf, got);
		struct sip_parse_error err = {0, NULL, 0};
		rc = sip_msg_parse(m, frame, got, SIP_PARSE_STREAM, &err);
		if (rc != (int)got)
			fail_msg("%s: stream parse of the framed message: %d (%s at %zu)", rel, rc,
				 err.reason ? err.reason : "?", err.offset);
		assert_int_equal(sip_msg_check(m, NULL), 0);
		framed++;
		free(buf);
	}
	print_message("torture: %u valid messages framed byte by byte, %u without Content-Length\n",
		      framed, skipped);
	assert_true(framed >= 38);
	free(frame);
	free(m);
}

/* Fixed bug (parse.c parse_start_line, check.c sip_msg_check): RFC 3261
 * §7.1 says "The SIP-Version string is case-insensitive, but
 * implementations MUST send upper-case." Received lower-case versions:
 *   "OPTIONS sip:example.com sip/2.0"  expected valid, got check-505
 *       (sip_msg_check compares the version byte-exactly with "SIP/2.0");
 *   "sip/2.0 200 OK"                   expected valid, got parse-error
 *       "bad method in request line" at 3 (a status line is recognised
 *       only by an upper-case "SIP/" prefix). */
static void test_version_case_regression(void **state)
{
	(void)state;
	static const char req[] = "OPTIONS sip:example.com sip/2.0\r\n"
				  "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
				  "From: <sip:a@example.com>;tag=1\r\nTo: <sip:example.com>\r\n"
				  "Call-ID: v1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
	static const char resp[] =
	    "sip/2.0 200 OK\r\n"
	    "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
	    "From: <sip:a@example.com>;tag=1\r\nTo: <sip:example.com>;tag=2\r\n"
	    "Call-ID: v1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
	char got[32], why[256];
	bool bug = false;
	judge(req, sizeof(req) - 1, "datagram", got, sizeof(got), why, sizeof(why));
	if (strcmp(got, "valid") != 0) {
		print_message("lower-case version in a request: %s (%s)\n", got, why);
		bug = true;
	}
	judge(resp, sizeof(resp) - 1, "datagram", got, sizeof(got), why, sizeof(why));
	if (strcmp(got, "valid") != 0) {
		print_message("lower-case version in a status line: %s (%s)\n", got, why);
		bug = true;
	}
	if (bug)
		fail_msg("SIP-Version is case-insensitive (RFC 3261 §7.1)");
}

int main(void)
{
	/* Only the tests matching SIPSD_TEST_FILTER (a pattern with * and ?). */
	const char *only = getenv("SIPSD_TEST_FILTER");
	if (only && *only)
		cmocka_set_test_filter(only);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_verdicts),
	    cmocka_unit_test(test_verdicts_cover_corpus),
	    cmocka_unit_test(test_agrees_with_rfcs),
	    cmocka_unit_test(test_dblreq),
	    cmocka_unit_test(test_esc02),
	    cmocka_unit_test(test_semiuri),
	    cmocka_unit_test(test_port_ambiguity),
	    cmocka_unit_test(test_longreq),
	    cmocka_unit_test(test_inv2543),
	    cmocka_unit_test(test_mpart01),
	    cmocka_unit_test(test_valid_byte_by_byte),
	    cmocka_unit_test(test_version_case_regression),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
