/* test_sip_build.c: the serialiser (forwarding edits, RFC 3261 §16.6) and
 * local responses (§8.2.6), checked by parsing what they write. */
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
#include "sip/build.h"
#include "sip/msg.h"

#define OUT_CAP (SIPS_MAX_MSG_SIZE + 4096)

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

/* Fixed bug (build.c, put()): sip_msg_build with e == NULL, or with
 * extra_headers STR_NULL, called memcpy(dst, NULL, 0), undefined behaviour
 * the sanitizer build aborted on. test_null_edit_regression keeps it fixed;
 * the other tests pass empty non-NULL spans. */
static const struct sip_edit no_edits = {.extra_headers = {"", 0}};
#define NO_EXTRA STR_LIT("")

static bool str_is(struct str s, const char *c)
{
	return str_eq(s, str_from_cstr(c));
}

#define assert_str(expr, want)                                                                     \
	do {                                                                                       \
		struct str got_ = (expr);                                                          \
		if (!str_is(got_, (want)))                                                         \
			fail_msg("%s is '%.*s', expected '%s'", #expr, (int)got_.len,              \
				 got_.s ? got_.s : "", (want));                                    \
	} while (0)

/* Per-test state: the received message (and a copy of its bytes, to show
 * they are never written), the parsed message, the output, its parse. */
struct fixture {
	char *in;
	char *in_copy;
	size_t in_len;
	struct sip_msg *m;
	char *out;
	int out_len;
	struct sip_msg *m2;
};

static int fixture_setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	if (!fx)
		return -1;
	fx->m = malloc(sizeof(*fx->m));
	fx->m2 = malloc(sizeof(*fx->m2));
	fx->out = malloc(OUT_CAP);
	fx->in_copy = malloc(2 * SIPS_MAX_MSG_SIZE);
	if (!fx->m || !fx->m2 || !fx->out || !fx->in_copy)
		return -1;
	*state = fx;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *fx = *state;
	/* The received bytes are exactly as they were before any build. */
	if (fx->in) {
		assert_memory_equal(fx->in, fx->in_copy, fx->in_len);
		free(fx->in);
	}
	free(fx->in_copy);
	free(fx->m);
	free(fx->m2);
	free(fx->out);
	free(fx);
	return 0;
}

/* Loads and parses the received message (a literal or a data file). */
static void load_text(struct fixture *fx, const char *text, size_t len)
{
	free(fx->in);
	fx->in = malloc(len ? len : 1);
	assert_non_null(fx->in);
	memcpy(fx->in, text, len);
	memcpy(fx->in_copy, text, len);
	fx->in_len = len;
	struct sip_parse_error err = {0, NULL, 0};
	int rc = sip_msg_parse(fx->m, fx->in, len, SIP_PARSE_DATAGRAM, &err);
	if (rc < 0)
		fail_msg("input does not parse: %s at %zu", err.reason ? err.reason : "?",
			 err.offset);
}

static void load_file(struct fixture *fx, const char *rel)
{
	size_t len;
	char *buf = data_read(rel, &len);
	load_text(fx, buf, len);
	free(buf);
}

/* Builds with `e` and parses the output as a stream message: it must be
 * one whole message with a Content-Length. */
static void build_reparse(struct fixture *fx, const struct sip_edit *e)
{
	fx->out_len = sip_msg_build(fx->m, e, fx->out, OUT_CAP);
	assert_true(fx->out_len > 0);
	struct sip_parse_error err = {0, NULL, 0};
	int rc = sip_msg_parse(fx->m2, fx->out, (size_t)fx->out_len, SIP_PARSE_STREAM, &err);
	if (rc != fx->out_len)
		fail_msg("output does not parse (%d of %d): %s at %zu\n%.*s", rc, fx->out_len,
			 err.reason ? err.reason : "?", err.offset, fx->out_len, fx->out);
	/* The serialiser ends every header line in CRLF. A bare LF inside a
	 * fold of a received header is copied as it came (the value is not
	 * rewritten), so a bare LF is only allowed when a fold follows. */
	const char *hend = memmem(fx->out, (size_t)fx->out_len, "\r\n\r\n", 4);
	assert_non_null(hend);
	for (const char *p = fx->out; p < hend; p++)
		if (*p == '\n' && (p == fx->out || p[-1] != '\r') && p[1] != ' ' && p[1] != '\t')
			fail_msg("bare LF line end at %td in the output", p - fx->out);
	assert_memory_equal(fx->in, fx->in_copy, fx->in_len);
}

static unsigned count_lines(const struct sip_msg *m, enum sip_hdr_id id)
{
	return m->hdr_counts[id];
}

/* Without edits: the same message, with Content-Length, and building the
 * output again gives the same bytes (a fixed point). */
static void test_no_edits(void **state)
{
	struct fixture *fx = *state;
	static const char *const subs[] = {"messages", "rfc4475", "rfc5118",
					   "rfc5118/cl-corrected"};
	char *again = malloc(OUT_CAP);
	unsigned built = 0;
	assert_non_null(again);
	for (size_t s = 0; s < sizeof(subs) / sizeof(subs[0]); s++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", data_dir(), subs[s]);
		DIR *d = opendir(path);
		assert_non_null(d);
		for (struct dirent *de; (de = readdir(d));) {
			size_t l = strlen(de->d_name);
			if (l < 5 || strcmp(de->d_name + l - 4, ".txt") != 0)
				continue;
			char rel[300];
			size_t len;
			snprintf(rel, sizeof(rel), "%.40s/%.250s", subs[s], de->d_name);
			char *buf = data_read(rel, &len);
			if (sip_msg_parse(fx->m, buf, len, SIP_PARSE_DATAGRAM, NULL) < 0) {
				free(buf);
				continue;
			}
			load_text(fx, buf, len);
			free(buf);
			build_reparse(fx, &no_edits);
			const struct sip_msg *a = fx->m, *b = fx->m2;
			assert_int_equal(a->is_request, b->is_request);
			assert_int_equal(a->via_count, b->via_count);
			assert_int_equal(a->route_count, b->route_count);
			assert_int_equal(a->record_route_count, b->record_route_count);
			assert_int_equal(a->contact_count, b->contact_count);
			assert_true(str_eq(a->call_id, b->call_id));
			assert_int_equal(a->cseq, b->cseq);
			assert_int_equal(a->max_forwards, b->max_forwards);
			assert_int_equal(b->content_length, (int64_t)a->body.len);
			assert_true(str_eq(a->body, b->body));
			assert_int_equal(a->hdr_count - a->hdr_counts[SIP_HDR_CONTENT_LENGTH],
					 b->hdr_count - 1);
			if (a->is_request)
				assert_true(str_eq(a->ruri_raw, b->ruri_raw));
			else
				assert_int_equal(a->status, b->status);
			int n2 = sip_msg_build(fx->m2, &no_edits, again, OUT_CAP);
			if (n2 != fx->out_len || memcmp(again, fx->out, (size_t)n2) != 0)
				fail_msg("%s: building the output again changes it", rel);
			built++;
		}
		closedir(d);
	}
	print_message("build: %u messages rebuilt and re-parsed\n", built);
	assert_true(built >= 45);
	free(again);
}

static const char invite[] = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
			     "Via: SIP/2.0/TLS p2.example.com;branch=z9hG4bKp2, SIP/2.0/TLS "
			     "p1.example.com;branch=z9hG4bKp1\r\n"
			     "v: SIP/2.0/TLS ua.example.com:5061;branch=z9hG4bKua;rport\r\n"
			     "Max-Forwards: 68\r\n"
			     "Route: <sips:p3.example.com;lr>, <sips:p4.example.com;lr>\r\n"
			     "Route: <sips:p5.example.com;lr>\r\n"
			     "Record-Route: <sips:p2.example.com;lr>\r\n"
			     "Record-Route: <sips:p1.example.com;lr>\r\n"
			     "From: \"Alice\" <sips:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
			     "To: Bob <sips:bob@biloxi.example.com>\r\n"
			     "Call-ID: 3848276298220188511@atlanta.example.com\r\n"
			     "CSeq: 1 INVITE\r\n"
			     "Contact: <sips:alice@client.atlanta.example.com;transport=tls>\r\n"
			     "Content-Type: application/sdp\r\n"
			     "Content-Length: 10\r\n"
			     "\r\n"
			     "v=0\r\ns=-\r\n";

/* A new top Via; the rest in order. */
static void test_add_via(void **state)
{
	struct fixture *fx = *state;
	load_text(fx, invite, sizeof(invite) - 1);
	struct sip_edit e = no_edits;
	e.add_via = STR_LIT("SIP/2.0/TLS p3.example.com;branch=z9hG4bK.p3.1");
	build_reparse(fx, &e);
	assert_int_equal(fx->m2->via_count, 4);
	assert_str(fx->m2->via->host, "p3.example.com");
	assert_str(fx->m2->via->branch, "z9hG4bK.p3.1");
	assert_str(fx->m2->via->next->branch, "z9hG4bKp2");
	assert_str(fx->m2->via->next->next->branch, "z9hG4bKp1");
	assert_str(fx->m2->via->next->next->next->branch, "z9hG4bKua");
	/* The new Via is the first header line. */
	assert_ptr_equal(fx->m2->headers, fx->m2->via->hdr);
	assert_str(fx->m2->body, "v=0\r\ns=-\r\n");

	/* A message with no Via at all still gets one. */
	static const char novia[] =
	    "OPTIONS sip:example.com SIP/2.0\r\nFrom: <sip:a@example.com>;tag=1\r\n"
	    "To: <sip:example.com>\r\nCall-ID: nv\r\nCSeq: 1 OPTIONS\r\n\r\n";
	load_text(fx, novia, sizeof(novia) - 1);
	build_reparse(fx, &e);
	assert_int_equal(fx->m2->via_count, 1);
	assert_str(fx->m2->via->branch, "z9hG4bK.p3.1");
}

static const char response[] =
    "SIP/2.0 180 Ringing\r\n"
    "Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bKp2;received=192.0.2.2, SIP/2.0/UDP "
    "p1.example.com;branch=z9hG4bKp1, SIP/2.0/UDP p0.example.com;branch=z9hG4bKp0\r\n"
    "Via: SIP/2.0/UDP ua.example.com;branch=z9hG4bKua\r\n"
    "Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>\r\n"
    "From: <sip:alice@atlanta.example.com>;tag=a1\r\n"
    "To: <sip:bob@biloxi.example.com>;tag=b1\r\n"
    "Call-ID: r1@atlanta.example.com\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:bob@192.0.2.4>\r\n"
    "Content-Length: 0\r\n\r\n";

/* §16.7 step 3: the proxy removes its own Via, which shares a header line
 * with others. */
static void test_remove_top_via(void **state)
{
	struct fixture *fx = *state;
	load_text(fx, response, sizeof(response) - 1);
	assert_int_equal(fx->m->via_count, 4);
	struct sip_edit e = no_edits;
	e.remove_top_via = true;
	build_reparse(fx, &e);
	assert_int_equal(fx->m2->via_count, 3);
	const struct sip_via *v = fx->m2->via;
	assert_str(v->branch, "z9hG4bKp1");
	assert_str(v->next->branch, "z9hG4bKp0");
	assert_str(v->next->next->branch, "z9hG4bKua");
	/* The two remaining entries of the first line still share one line. */
	assert_ptr_equal(v->hdr, v->next->hdr);
	assert_ptr_not_equal(v->hdr, v->next->next->hdr);
	assert_int_equal(count_lines(fx->m2, SIP_HDR_VIA), 2);
	assert_int_equal(fx->m2->status, 180);
	assert_int_equal(fx->m2->record_route_count, 2);

	/* Again on the output: one entry left on the first line. */
	load_text(fx, fx->out, (size_t)fx->out_len);
	build_reparse(fx, &e);
	assert_int_equal(fx->m2->via_count, 2);
	assert_str(fx->m2->via->branch, "z9hG4bKp0");
	assert_str(fx->m2->via->next->branch, "z9hG4bKua");
	/* And again: the top line held one entry, the line goes. */
	load_text(fx, fx->out, (size_t)fx->out_len);
	build_reparse(fx, &e);
	assert_int_equal(fx->m2->via_count, 1);
	assert_int_equal(count_lines(fx->m2, SIP_HDR_VIA), 1);
	assert_str(fx->m2->via->branch, "z9hG4bKua");

	/* A compact "v" line keeps its name for the rest of its entries. */
	static const char compact[] =
	    "SIP/2.0 200 OK\r\n"
	    "v: SIP/2.0/UDP a.example.com;branch=z9hG4bKa,SIP/2.0/UDP "
	    "b.example.com;branch=z9hG4bKb\r\n"
	    "f: <sip:a@example.com>;tag=1\r\nt: <sip:b@example.com>;tag=2\r\n"
	    "i: c\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n";
	load_text(fx, compact, sizeof(compact) - 1);
	build_reparse(fx, &e);
	assert_int_equal(fx->m2->via_count, 1);
	assert_str(fx->m2->via->branch, "z9hG4bKb");
	assert_str(fx->m2->via->hdr->name, "v");
}

/* §16.6 step 3. */
static void test_max_forwards(void **state)
{
	struct fixture *fx = *state;
	struct sip_edit e = no_edits;
	e.decrement_max_forwards = true;
	load_text(fx, invite, sizeof(invite) - 1);
	build_reparse(fx, &e);
	assert_int_equal(fx->m2->max_forwards, 67);
	assert_int_equal(count_lines(fx->m2, SIP_HDR_MAX_FORWARDS), 1);
	/* Decrementing the output again. */
	load_text(fx, fx->out, (size_t)fx->out_len);
	build_reparse(fx, &e);
	assert_int_equal(fx->m2->max_forwards, 66);

	/* Absent (RFC 2543 peers): 70 is added. */
	load_file(fx, "rfc4475/inv2543.txt");
	assert_int_equal(fx->m->max_forwards, -1);
	build_reparse(fx, &e);
	assert_int_equal(fx->m2->max_forwards, 70);
	assert_int_equal(count_lines(fx->m2, SIP_HDR_MAX_FORWARDS), 1);
	assert_true(str_eq(fx->m2->body, fx->m->body));

	/* Zero stays zero (the proxy answers 483 before forwarding). */
	load_file(fx, "rfc4475/zeromf.txt");
	assert_int_equal(fx->m->max_forwards, 0);
	build_reparse(fx, &e);
	assert_int_equal(fx->m2->max_forwards, 0);

	/* A response gets none. */
	load_text(fx, response, sizeof(response) - 1);
	build_reparse(fx, &e);
	assert_int_equal(fx->m2->max_forwards, -1);
	assert_int_equal(count_lines(fx->m2, SIP_HDR_MAX_FORWARDS), 0);

	/* Without the edit, the value is kept. */
	load_text(fx, invite, sizeof(invite) - 1);
	build_reparse(fx, &no_edits);
	assert_int_equal(fx->m2->max_forwards, 68);
}

/* §16.4 / §16.6 step 6: the first Route entry goes. */
static void test_pop_route(void **state)
{
	struct fixture *fx = *state;
	struct sip_edit e = no_edits;
	e.pop_routes = 1;
	load_text(fx, invite, sizeof(invite) - 1);
	assert_int_equal(fx->m->route_count, 3);
	build_reparse(fx, &e);
	assert_int_equal(fx->m2->route_count, 2);
	assert_str(fx->m2->route->uri.host, "p4.example.com");
	assert_str(fx->m2->route->next->uri.host, "p5.example.com");
	assert_int_equal(count_lines(fx->m2, SIP_HDR_ROUTE), 2);
	/* Popping again: the first line now held one entry and goes. */
	load_text(fx, fx->out, (size_t)fx->out_len);
	build_reparse(fx, &e);
	assert_int_equal(fx->m2->route_count, 1);
	assert_int_equal(count_lines(fx->m2, SIP_HDR_ROUTE), 1);
	assert_str(fx->m2->route->uri.host, "p5.example.com");
	load_text(fx, fx->out, (size_t)fx->out_len);
	build_reparse(fx, &e);
	assert_int_equal(fx->m2->route_count, 0);
	assert_int_equal(count_lines(fx->m2, SIP_HDR_ROUTE), 0);
	/* Nothing to pop: nothing changes. */
	load_text(fx, fx->out, (size_t)fx->out_len);
	build_reparse(fx, &e);
	assert_int_equal(fx->m2->route_count, 0);
	assert_int_equal(fx->m2->hdr_count, fx->m->hdr_count);
}

/* §16.6 step 4: our Record-Route goes on top of any there. */
static void test_add_record_route(void **state)
{
	struct fixture *fx = *state;
	struct sip_edit e = no_edits;
	e.add_record_route = STR_LIT("<sips:p3.example.com;lr;ftag=9fxced76sl>");
	load_text(fx, invite, sizeof(invite) - 1);
	build_reparse(fx, &e);
	assert_int_equal(fx->m2->record_route_count, 3);
	assert_str(fx->m2->record_route->uri.host, "p3.example.com");
	assert_str(fx->m2->record_route->uri.params, ";lr;ftag=9fxced76sl");
	assert_str(fx->m2->record_route->next->uri.host, "p2.example.com");
	assert_str(fx->m2->record_route->next->next->uri.host, "p1.example.com");
	/* The new line comes right before the first existing one. */
	const struct sip_hdr *h = fx->m2->hdr_first[SIP_HDR_RECORD_ROUTE];
	assert_ptr_equal(h, fx->m2->record_route->hdr);
	assert_ptr_equal(h->next, fx->m2->record_route->next->hdr);

	/* None there yet. */
	load_file(fx, "messages/invite.txt");
	assert_int_equal(fx->m->record_route_count, 0);
	build_reparse(fx, &e);
	assert_int_equal(fx->m2->record_route_count, 1);
	assert_str(fx->m2->record_route->uri.host, "p3.example.com");
	assert_true(str_eq(fx->m2->body, fx->m->body));
}

/* §16.5 / §16.6 step 2: a new Request-URI (e.g. from the location service). */
static void test_new_ruri(void **state)
{
	struct fixture *fx = *state;
	struct sip_edit e = no_edits;
	e.new_ruri = STR_LIT("sips:bob@[2001:db8::4]:5061;transport=tls");
	load_text(fx, invite, sizeof(invite) - 1);
	build_reparse(fx, &e);
	assert_str(fx->m2->method, "INVITE");
	assert_str(fx->m2->ruri_raw, "sips:bob@[2001:db8::4]:5061;transport=tls");
	assert_str(fx->m2->ruri.host, "[2001:db8::4]");
	assert_int_equal(fx->m2->ruri.port, 5061);
	assert_str(fx->m2->version, "SIP/2.0");
	assert_int_equal(sip_msg_check(fx->m2, NULL), 0);
}

/* A whole forwarding step, and extra header lines. */
static void test_forward_all_edits(void **state)
{
	struct fixture *fx = *state;
	struct sip_edit e = no_edits;
	e.new_ruri = STR_LIT("sip:2002@192.168.1.42:5060");
	e.add_via = STR_LIT("SIP/2.0/UDP 198.51.100.10;branch=z9hG4bK.fwd.1");
	e.decrement_max_forwards = true;
	e.pop_routes = 1;
	e.add_record_route = STR_LIT("<sip:198.51.100.10;lr>");
	e.extra_headers = STR_LIT("X-Forwarded: yes\r\nP-Hint: outbound\r\n");
	load_file(fx, "messages/invite.txt");
	build_reparse(fx, &e);
	const struct sip_msg *a = fx->m, *b = fx->m2;
	assert_str(b->ruri_raw, "sip:2002@192.168.1.42:5060");
	assert_int_equal(b->via_count, a->via_count + 1);
	assert_str(b->via->branch, "z9hG4bK.fwd.1");
	assert_true(str_eq(b->via->next->raw, a->via->raw));
	assert_int_equal(b->max_forwards, a->max_forwards - 1);
	assert_int_equal(b->record_route_count, 1);
	assert_int_equal(b->route_count, 0);
	assert_true(str_eq(b->call_id, a->call_id));
	assert_true(str_eq(b->from->raw, a->from->raw));
	assert_true(str_eq(b->to->raw, a->to->raw));
	assert_true(str_eq(b->body, a->body));
	assert_int_equal(b->content_length, (int64_t)a->body.len);
	const struct sip_hdr *x = sip_msg_hdr_by_name(b, STR_LIT("x-forwarded"));
	assert_non_null(x);
	assert_str(x->value, "yes");
	assert_non_null(sip_msg_hdr_by_name(b, STR_LIT("P-Hint")));
	assert_int_equal(sip_msg_check(b, NULL), 0);
	/* The Content-Length line is the last header line. */
	assert_ptr_equal(b->hdr_last, b->hdr_first[SIP_HDR_CONTENT_LENGTH]);

	/* The BYE of the same call through the same proxy. */
	struct sip_edit e2 = no_edits;
	e2.add_via = STR_LIT("SIP/2.0/UDP 198.51.100.10;branch=z9hG4bK.fwd.2");
	e2.decrement_max_forwards = true;
	e2.pop_routes = 1;
	load_file(fx, "messages/bye.txt");
	build_reparse(fx, &e2);
	assert_int_equal(fx->m2->route_count, 0);
	assert_int_equal(fx->m2->via_count, 2);
	assert_int_equal(fx->m2->max_forwards, 69);
	assert_int_equal(sip_msg_check(fx->m2, NULL), 0);
}

/* Bare-LF input is written back with CRLF; body bytes are untouched. */
static void test_bare_lf_input(void **state)
{
	struct fixture *fx = *state;
	static const char lf[] = "MESSAGE sip:bob@example.com SIP/2.0\n"
				 "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKlf\n"
				 "Max-Forwards: 9\n"
				 "From: <sip:alice@example.com>;tag=1\n"
				 "To: <sip:bob@example.com>\n"
				 "Call-ID: lf1\n"
				 "CSeq: 1 MESSAGE\n"
				 "Subject: folded\n  over two lines\n"
				 "Content-Type: text/plain\n"
				 "Content-Length: 6\n"
				 "\n"
				 "a\nb\r\nc";
	load_text(fx, lf, sizeof(lf) - 1);
	struct sip_edit e = no_edits;
	e.decrement_max_forwards = true;
	build_reparse(fx, &e);
	assert_int_equal(fx->m2->max_forwards, 8);
	assert_str(fx->m2->body, "a\nb\r\nc");
	assert_int_equal(fx->m2->hdr_count, fx->m->hdr_count);
}

/* Output too small: -EMSGSIZE, never a partial write past cap. */
static void test_overflow(void **state)
{
	struct fixture *fx = *state;
	load_text(fx, invite, sizeof(invite) - 1);
	int n = sip_msg_build(fx->m, &no_edits, fx->out, OUT_CAP);
	assert_true(n > 0);
	char *exact = malloc((size_t)n + 16);
	assert_non_null(exact);
	memset(exact, 0x5a, (size_t)n + 16);
	assert_int_equal(sip_msg_build(fx->m, &no_edits, exact, (size_t)n), n);
	assert_memory_equal(exact, fx->out, (size_t)n);
	for (size_t k = 0; k < 16; k++)
		assert_int_equal((unsigned char)exact[n + k], 0x5a);
	for (size_t cap = 0; cap < (size_t)n; cap += 7) {
		memset(exact, 0x5a, (size_t)n + 16);
		assert_int_equal(sip_msg_build(fx->m, &no_edits, exact, cap), -EMSGSIZE);
		for (size_t k = cap; k < (size_t)n + 16; k++)
			if ((unsigned char)exact[k] != 0x5a)
				fail_msg("cap %zu: byte %zu written", cap, k);
	}
	assert_int_equal(sip_msg_build(fx->m, &no_edits, exact, (size_t)n - 1), -EMSGSIZE);
	free(exact);
}

/* RFC 3261 §8.2.6: a local response copies Via, From, To, Call-ID, CSeq
 * and adds the To tag. */
static void test_response_build(void **state)
{
	struct fixture *fx = *state;
	load_text(fx, invite, sizeof(invite) - 1);
	struct sip_parse_error err;
	int n = sip_response_build(fx->m, 180, NULL, STR_LIT("t0Ag.1"), NO_EXTRA, fx->out, OUT_CAP);
	assert_true(n > 0);
	assert_int_equal(sip_msg_parse(fx->m2, fx->out, (size_t)n, SIP_PARSE_STREAM, &err), n);
	const struct sip_msg *q = fx->m, *r = fx->m2;
	assert_false(r->is_request);
	assert_int_equal(r->status, 180);
	assert_str(r->reason, "Ringing");
	assert_int_equal(r->via_count, q->via_count);
	for (const struct sip_via *a = q->via, *b = r->via; a; a = a->next, b = b->next)
		assert_true(str_eq(a->raw, b->raw));
	assert_int_equal(count_lines(r, SIP_HDR_VIA), 2);
	assert_true(str_eq(r->from->raw, q->from->raw));
	assert_str(r->from->tag, "9fxced76sl");
	assert_true(str_eq(r->call_id, q->call_id));
	assert_int_equal(r->cseq, 1);
	assert_str(r->cseq_method, "INVITE");
	assert_true(r->to->has_tag);
	assert_str(r->to->tag, "t0Ag.1");
	assert_true(sip_uri_equal(&r->to->uri, &q->to->uri));
	assert_str(r->to->display, "Bob");
	/* 18x/2xx: Record-Route copied (§12.1.1); no Route, Contact or body. */
	assert_int_equal(r->record_route_count, 2);
	assert_int_equal(r->route_count, 0);
	assert_int_equal(r->contact_count, 0);
	assert_int_equal(r->content_length, 0);
	assert_int_equal(r->body.len, 0);
	assert_int_equal(sip_msg_check(r, NULL), 0);

	/* 100 Trying: no To tag (§8.2.6.2 applies above 100). */
	n = sip_response_build(fx->m, 100, NULL, STR_LIT("t0Ag.1"), NO_EXTRA, fx->out, OUT_CAP);
	assert_int_equal(sip_msg_parse(fx->m2, fx->out, (size_t)n, SIP_PARSE_STREAM, &err), n);
	assert_str(fx->m2->reason, "Trying");
	assert_false(fx->m2->to->has_tag);
	assert_int_equal(fx->m2->record_route_count, 0);

	/* Error responses: no Record-Route; custom reason; extra lines. */
	n = sip_response_build(fx->m, 483, "Too Many Hops Here", STR_LIT("x1"),
			       STR_LIT("Warning: 399 p3.example.com \"loop\"\r\n"), fx->out,
			       OUT_CAP);
	assert_int_equal(sip_msg_parse(fx->m2, fx->out, (size_t)n, SIP_PARSE_STREAM, &err), n);
	assert_int_equal(fx->m2->status, 483);
	assert_str(fx->m2->reason, "Too Many Hops Here");
	assert_int_equal(fx->m2->record_route_count, 0);
	assert_str(fx->m2->to->tag, "x1");
	assert_non_null(sip_msg_hdr(fx->m2, SIP_HDR_WARNING));

	/* A To that has a tag already keeps it, and only it. */
	load_file(fx, "messages/bye.txt");
	n = sip_response_build(fx->m, 200, NULL, STR_LIT("other"), NO_EXTRA, fx->out, OUT_CAP);
	assert_int_equal(sip_msg_parse(fx->m2, fx->out, (size_t)n, SIP_PARSE_STREAM, &err), n);
	assert_str(fx->m2->to->tag, "as6a3f0c41");
	assert_str(fx->m2->to->params, ";tag=as6a3f0c41");
	assert_str(fx->m2->reason, "OK");
	assert_int_equal(sip_msg_check(fx->m2, NULL), 0);

	/* Compact names and LWS in the request (RFC 4475 §3.1.1.1); its To
	 * has a tag (written " ; tag = 1918181833n"). */
	load_file(fx, "rfc4475/wsinv.txt");
	n = sip_response_build(fx->m, 404, NULL, STR_LIT("nf1"), NO_EXTRA, fx->out, OUT_CAP);
	assert_int_equal(sip_msg_parse(fx->m2, fx->out, (size_t)n, SIP_PARSE_STREAM, &err), n);
	assert_str(fx->m2->reason, "Not Found");
	assert_int_equal(fx->m2->via_count, fx->m->via_count);
	assert_true(str_eq(fx->m2->call_id, fx->m->call_id));
	assert_str(fx->m2->to->tag, "1918181833n");
	assert_false(sip_params_find(fx->m2->to->params, "tag", NULL) &&
		     memmem(fx->out, (size_t)n, "nf1", 3) != NULL);

	/* Too small. */
	assert_int_equal(
	    sip_response_build(fx->m, 404, NULL, STR_LIT("nf1"), NO_EXTRA, fx->out, 40), -EMSGSIZE);
	assert_int_equal(
	    sip_response_build(fx->m, 404, NULL, STR_LIT("nf1"), NO_EXTRA, fx->out, (size_t)n - 1),
	    -EMSGSIZE);
	assert_int_equal(
	    sip_response_build(fx->m, 404, NULL, STR_LIT("nf1"), NO_EXTRA, fx->out, (size_t)n), n);
}

static void test_status_reason(void **state)
{
	(void)state;
	assert_string_equal(sip_status_reason(100), "Trying");
	assert_string_equal(sip_status_reason(200), "OK");
	assert_string_equal(sip_status_reason(404), "Not Found");
	assert_string_equal(sip_status_reason(416), "Unsupported URI Scheme");
	assert_string_equal(sip_status_reason(420), "Bad Extension");
	assert_string_equal(sip_status_reason(483), "Too Many Hops");
	assert_string_equal(sip_status_reason(505), "Version Not Supported");
	assert_non_null(sip_status_reason(299));
	assert_non_null(sip_status_reason(799));
}

/* See no_edits above: the documented NULL forms of the API. */
static void test_null_edit_regression(void **state)
{
	struct fixture *fx = *state;
	load_text(fx, invite, sizeof(invite) - 1);
	int n = sip_msg_build(fx->m, NULL, fx->out, OUT_CAP);
	assert_true(n > 0);
	assert_int_equal(sip_msg_parse(fx->m2, fx->out, (size_t)n, SIP_PARSE_STREAM, NULL), n);
	n = sip_response_build(fx->m, 404, NULL, STR_LIT("t"), STR_NULL, fx->out, OUT_CAP);
	assert_true(n > 0);
	assert_int_equal(sip_msg_parse(fx->m2, fx->out, (size_t)n, SIP_PARSE_STREAM, NULL), n);
}

/* SIP_PARSE_OWN (the transaction layer reading a request it is about to
 * send): the same start line, Via, CSeq, Call-ID and body as a full stream
 * parse; the address headers are listed but not parsed. */
static void test_parse_own(void **state)
{
	struct fixture *fx = *state;
	load_text(fx, invite, sizeof(invite) - 1);
	int n = sip_msg_build(fx->m, &(struct sip_edit){0}, fx->out, OUT_CAP);
	assert_true(n > 0);
	assert_int_equal(sip_msg_parse(fx->m2, fx->out, (size_t)n, SIP_PARSE_STREAM, NULL), n);
	static struct sip_msg own;
	assert_int_equal(sip_msg_parse(&own, fx->out, (size_t)n, SIP_PARSE_OWN, NULL), n);
	const struct sip_msg *full = fx->m2;
	assert_true(own.is_request);
	assert_int_equal(own.method_id, full->method_id);
	assert_true(str_eq(own.ruri_raw, full->ruri_raw));
	assert_int_equal(own.via_count, full->via_count);
	assert_true(str_eq(own.via->branch, full->via->branch));
	assert_int_equal(own.cseq, full->cseq);
	assert_true(str_eq(own.cseq_method, full->cseq_method));
	assert_true(str_eq(own.call_id, full->call_id));
	assert_true(str_eq(own.body, full->body));
	assert_int_equal(own.hdr_count, full->hdr_count);
	assert_non_null(full->from);
	assert_null(own.from);
	assert_null(own.to);
	assert_null(own.contact);
	assert_non_null(own.hdr_first[SIP_HDR_FROM]);
	assert_non_null(own.hdr_first[SIP_HDR_TO]);
}

#define FX_TEST(f) cmocka_unit_test_setup_teardown(f, fixture_setup, fixture_teardown)

int main(void)
{
	/* Only the tests matching SIPSD_TEST_FILTER (a pattern with * and ?). */
	const char *only = getenv("SIPSD_TEST_FILTER");
	if (only && *only)
		cmocka_set_test_filter(only);
	const struct CMUnitTest tests[] = {
	    FX_TEST(test_no_edits),
	    FX_TEST(test_add_via),
	    FX_TEST(test_remove_top_via),
	    FX_TEST(test_max_forwards),
	    FX_TEST(test_pop_route),
	    FX_TEST(test_add_record_route),
	    FX_TEST(test_new_ruri),
	    FX_TEST(test_forward_all_edits),
	    FX_TEST(test_bare_lf_input),
	    FX_TEST(test_overflow),
	    FX_TEST(test_response_build),
	    cmocka_unit_test(test_status_reason),
	    FX_TEST(test_null_edit_regression),
	    FX_TEST(test_parse_own),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
