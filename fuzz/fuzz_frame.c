/* fuzz_frame.c: libFuzzer target for the stream framer: the input is cut
 * into reads whose sizes come from its first bytes, and every unit is
 * taken until the framer needs more or reports an error.
 *
 * Input layout: byte 0 = flags (bits 0-2: number K-1 of size bytes that
 * follow; bit 3: bound the framer at 2048 bytes; bit 4: shrink when idle),
 * then K bytes of read sizes (each 1 + value, used in turn), then the
 * stream. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"
#include "sip/frame.h"
#include "sip/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_frame: %s:%d: check failed: %s\n", __FILE__,         \
				__LINE__, #cond);                                                  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static struct sip_msg msg;

/* Takes units until 0 or an error. Returns that result; *consumed grows by
 * the bytes of each unit. */
static int take_units(struct sip_framer *f, size_t *consumed)
{
	struct sip_frame fr;
	struct sip_parse_error err = {0, NULL, 0};
	int rc;
	unsigned guard = 0;
	while ((rc = sip_framer_next(f, &fr, &err)) == 1) {
		FUZZ_CHECK(++guard < 1000000);
		FUZZ_CHECK(fr.data.len > 0 && fr.data.s >= f->buf &&
			   fr.data.s + fr.data.len <= f->buf + f->len);
		*consumed += fr.data.len;
		switch (fr.type) {
		case SIP_FRAME_MESSAGE: {
			FUZZ_CHECK(fr.data.len <= SIPS_MAX_MSG_SIZE);
			/* What the framer cut, the stream parser takes whole or
			 * rejects; it never disagrees on the length. */
			struct sip_parse_error perr = {0, NULL, 0};
			int prc =
			    sip_msg_parse(&msg, fr.data.s, fr.data.len, SIP_PARSE_STREAM, &perr);
			if (prc >= 0 && (size_t)prc != fr.data.len) {
				fprintf(stderr, "fuzz_frame: framed %zu bytes, parser took %d\n",
					fr.data.len, prc);
				abort();
			}
			if (prc >= 0)
				FUZZ_CHECK(msg.content_length >= 0 &&
					   msg.body.len == (size_t)msg.content_length);
			break;
		}
		case SIP_FRAME_PING:
			FUZZ_CHECK(fr.data.len == 4 || fr.data.len == 2);
			break;
		case SIP_FRAME_CRLF:
			FUZZ_CHECK(fr.data.len == 2 || fr.data.len == 1);
			break;
		default:
			FUZZ_CHECK(!"unknown frame type");
		}
	}
	if (rc < 0) {
		FUZZ_CHECK(rc == -EBADMSG || rc == -EMSGSIZE);
		FUZZ_CHECK(err.reason != NULL);
	}
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	unsigned flags = data[0];
	size_t k = 1 + (flags & 7);
	if (size < 1 + k)
		return 0;
	const uint8_t *sizes = data + 1;
	const uint8_t *in = data + 1 + k;
	size_t len = size - 1 - k;

	struct sip_framer f;
	sip_framer_init(&f, (flags & 8) ? 2048 : 0);
	size_t fed = 0, consumed = 0, turn = 0;
	while (fed < len) {
		size_t chunk = 1 + (size_t)sizes[turn % k];
		/* Odd turns read through reserve/commit, as a socket would. */
		if (chunk > len - fed)
			chunk = len - fed;
		int rc;
		if (turn & 1) {
			char *dst;
			size_t room;
			rc = sip_framer_reserve(&f, chunk, &dst, &room);
			if (rc == 0) {
				FUZZ_CHECK(room > 0);
				if (chunk > room)
					chunk = room;
				memcpy(dst, in + fed, chunk);
				sip_framer_commit(&f, chunk);
			}
		} else {
			rc = sip_framer_feed(&f, in + fed, chunk);
		}
		turn++;
		if (rc < 0) {
			/* Only the bound stops a feed (memory is not short here). */
			FUZZ_CHECK(rc == -EMSGSIZE);
			FUZZ_CHECK(sip_framer_pending(&f) >= f.max);
			break;
		}
		fed += chunk;
		FUZZ_CHECK(f.cap <= f.max && sip_framer_pending(&f) <= f.max);
		rc = take_units(&f, &consumed);
		/* Every byte fed is either yielded or still pending. */
		FUZZ_CHECK(consumed + sip_framer_pending(&f) == fed);
		if (rc < 0)
			break;
		if ((flags & 16) && sip_framer_pending(&f) == 0) {
			sip_framer_shrink(&f);
			FUZZ_CHECK(f.buf == NULL && f.cap == 0);
		}
	}
	sip_framer_fini(&f);
	return 0;
}
