/* fuzz_parse.c: libFuzzer target for the message parser, the message checks,
 * the serialiser and local responses: whatever parses must build into a
 * message that parses again, and parse and frame alike as a stream. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"
#include "sip/build.h"
#include "sip/frame.h"
#include "sip/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant that must hold for every input; a violation is a finding. */
#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_parse: %s:%d: check failed: %s\n", __FILE__,         \
				__LINE__, #cond);                                                  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define OUT_CAP (SIPS_MAX_MSG_SIZE + 8192)

/* Big objects live outside the stack (libFuzzer runs one input at a time). */
static struct sip_msg msg, again;
static char out[OUT_CAP], out2[OUT_CAP];

/* Known bug (build.c put(), test_sip_build.c test_null_edit_BUG): an edit
 * of NULL or an extra_headers of STR_NULL makes the serialiser call
 * memcpy(dst, NULL, 0), which UBSan reports. Until fixed the target uses
 * an empty edit and empty non-NULL extra headers. */
static const struct sip_edit no_edits = {.extra_headers = {"", 0}};

static bool within(struct str s, const char *buf, size_t len)
{
	return s.len == 0 || (s.s >= buf && s.len <= len && s.s - buf <= (ptrdiff_t)(len - s.len));
}

/* Structural invariants of a parsed message. */
static void check_parsed(const struct sip_msg *m, const char *buf, size_t len, int rc)
{
	FUZZ_CHECK(rc > 0 && (size_t)rc <= len && rc <= SIPS_MAX_MSG_SIZE);
	FUZZ_CHECK(m->raw.s == buf && m->raw.len == (size_t)rc);
	FUZZ_CHECK(within(m->body, buf, (size_t)rc));
	FUZZ_CHECK(m->body.len == 0 || m->body.s + m->body.len == buf + rc);
	FUZZ_CHECK(m->content_length < 0 || (size_t)m->content_length == m->body.len);
	FUZZ_CHECK(m->hdr_count <= SIPS_MAX_HEADERS);
	unsigned n = 0;
	for (const struct sip_hdr *h = m->headers; h; h = h->next) {
		FUZZ_CHECK(within(h->line, buf, (size_t)rc));
		FUZZ_CHECK(within(h->value, buf, (size_t)rc));
		FUZZ_CHECK(h->line.len > 0 && h->line.s[h->line.len - 1] == '\n');
		FUZZ_CHECK(h->id < SIP_HDR__COUNT);
		n++;
	}
	FUZZ_CHECK(n == m->hdr_count);
	n = 0;
	for (const struct sip_via *v = m->via; v; v = v->next) {
		FUZZ_CHECK(within(v->raw, buf, (size_t)rc) && within(v->host, buf, (size_t)rc));
		FUZZ_CHECK(v->hdr && v->hdr->id == SIP_HDR_VIA);
		n++;
	}
	FUZZ_CHECK(n == m->via_count && n <= SIPS_MAX_VIA);
	n = 0;
	for (const struct sip_addr *a = m->contact; a; a = a->next)
		n++;
	FUZZ_CHECK(n == m->contact_count && n <= SIPS_MAX_ADDRS);
	n = 0;
	for (const struct sip_addr *a = m->route; a; a = a->next)
		n++;
	FUZZ_CHECK(n == m->route_count);
	if (m->is_request)
		FUZZ_CHECK(within(m->ruri_raw, buf, (size_t)rc) && m->ruri_raw.len > 0);
	else
		FUZZ_CHECK(m->status >= 100 && m->status <= 699);
	FUZZ_CHECK(m->max_forwards >= -1 && m->max_forwards <= 255);

	/* Lookups and parameter iteration over every header value. */
	for (const struct sip_hdr *h = m->headers; h; h = h->next) {
		FUZZ_CHECK(sip_msg_hdr_by_name(m, h->name) != NULL);
		struct str cur = h->value;
		struct sip_param p;
		unsigned guard = 0;
		while (sip_params_next(&cur, &p) && guard++ < 10000)
			FUZZ_CHECK(within(p.name, h->value.s, h->value.len));
		FUZZ_CHECK(guard < 10000);
	}
}

/* `built` (length n) must parse as one whole stream message. */
static void check_reparse(const char *built, int n, const char *what)
{
	if (n < 0) {
		FUZZ_CHECK(n == -EMSGSIZE);
		return;
	}
	/* Edits may grow a message past the limit; that is refused, not a bug. */
	if ((size_t)n > SIPS_MAX_MSG_SIZE)
		return;
	struct sip_parse_error err = {0, NULL, 0};
	int rc = sip_msg_parse(&again, built, (size_t)n, SIP_PARSE_STREAM, &err);
	if (rc != n) {
		fprintf(stderr, "fuzz_parse: %s output does not parse: %d (%s at %zu)\n", what, rc,
			err.reason ? err.reason : "?", err.offset);
		fwrite(built, 1, (size_t)n, stderr);
		abort();
	}
}

static void one_mode(const char *buf, size_t len, enum sip_parse_mode mode)
{
	struct sip_parse_error err = {0, NULL, 0};
	int rc = sip_msg_parse(&msg, buf, len, mode, &err);
	if (rc < 0) {
		FUZZ_CHECK(rc == -EBADMSG || rc == -EMSGSIZE || rc == -ENOMEM);
		FUZZ_CHECK(err.reason != NULL);
		FUZZ_CHECK(err.offset <= len);
		return;
	}
	check_parsed(&msg, buf, len, rc);
	if (mode == SIP_PARSE_STREAM)
		FUZZ_CHECK(msg.content_length >= 0);

	/* A datagram message with a Content-Length is also a stream message:
	 * the stream parser takes the same bytes, the framer cuts them. */
	if (mode == SIP_PARSE_DATAGRAM && msg.content_length >= 0) {
		struct sip_parse_error err2 = {0, NULL, 0};
		FUZZ_CHECK(sip_msg_parse(&again, buf, (size_t)rc, SIP_PARSE_STREAM, &err2) == rc);
		FUZZ_CHECK(again.via_count == msg.via_count && again.hdr_count == msg.hdr_count);
		struct sip_framer f;
		struct sip_frame fr;
		sip_framer_init(&f, 0);
		FUZZ_CHECK(sip_framer_feed(&f, buf, (size_t)rc) == 0);
		int frc = sip_framer_next(&f, &fr, &err2);
		if (frc != 1 || fr.type != SIP_FRAME_MESSAGE || fr.data.len != (size_t)rc) {
			fprintf(stderr, "fuzz_parse: parser took %d bytes, framer: %d (%s)\n", rc,
				frc, frc < 0 && err2.reason ? err2.reason : "");
			abort();
		}
		sip_framer_fini(&f);
	}

	int status = sip_msg_check(&msg, &err);
	FUZZ_CHECK(status == 0 || (status >= 400 && status <= 599 && err.reason != NULL));

	/* Forwarding without edits: parses again, and building that again
	 * gives the same bytes. */
	int n = sip_msg_build(&msg, &no_edits, out, sizeof(out));
	check_reparse(out, n, "plain build");
	if (n > 0 && (size_t)n <= SIPS_MAX_MSG_SIZE) {
		int n2 = sip_msg_build(&again, &no_edits, out2, sizeof(out2));
		FUZZ_CHECK(n2 == n && memcmp(out, out2, (size_t)n) == 0);
	}

	/* Forwarding with every edit a proxy makes. */
	struct sip_edit e = {0};
	if (msg.is_request) {
		e.new_ruri = STR_LIT("sip:fuzz@192.0.2.99:5060;transport=tcp");
		e.add_via = STR_LIT("SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK.fuzz;rport");
		e.decrement_max_forwards = true;
		e.pop_routes = 1;
		e.add_record_route = STR_LIT("<sip:192.0.2.1;lr;transport=tcp>");
	} else {
		e.remove_top_via = true;
	}
	e.extra_headers = STR_LIT("X-Fuzz: 1\r\n");
	n = sip_msg_build(&msg, &e, out, sizeof(out));
	check_reparse(out, n, "edited build");
	if (n > 0 && (size_t)n <= SIPS_MAX_MSG_SIZE && !msg.is_request && msg.via_count > 0)
		FUZZ_CHECK(again.via_count == msg.via_count - 1);
	if (n > 0 && (size_t)n <= SIPS_MAX_MSG_SIZE && msg.is_request)
		FUZZ_CHECK(again.via_count == msg.via_count + 1);

	/* A short output buffer is refused cleanly. */
	if (n > 1)
		FUZZ_CHECK(sip_msg_build(&msg, &e, out2, (size_t)n - 1) == -EMSGSIZE);

	/* Local responses to requests. */
	if (msg.is_request) {
		static const int statuses[] = {100, 180, 200, 404, 483};
		int s = statuses[len % 5];
		n = sip_response_build(&msg, s, NULL, STR_LIT("fuzztag"), STR_LIT(""), out,
				       sizeof(out));
		check_reparse(out, n, "response");
		if (n > 0 && (size_t)n <= SIPS_MAX_MSG_SIZE) {
			FUZZ_CHECK(!again.is_request && again.status == (unsigned)s);
			FUZZ_CHECK(again.via_count == msg.via_count);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	one_mode(buf, size, SIP_PARSE_DATAGRAM);
	one_mode(buf, size, SIP_PARSE_STREAM);
	return 0;
}
