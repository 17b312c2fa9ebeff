/* frame.h: cuts a TCP/TLS byte stream into SIP messages (RFC 3261 §18.3,
 * RFC 5626 §3.5.1 CRLF keep-alive). */
#ifndef SIPSD_SIP_FRAME_H
#define SIPSD_SIP_FRAME_H

#include <stddef.h>

#include "base/str.h"
#include "sip/msg.h"

enum sip_frame_type {
	SIP_FRAME_MESSAGE = 1, /* `data` is one whole message, headers and body */
	SIP_FRAME_PING,        /* a double CRLF: answer with one CRLF */
	SIP_FRAME_CRLF,        /* a single CRLF: a pong, or stray; ignore */
};

struct sip_frame {
	enum sip_frame_type type;
	struct str data; /* valid until the next call on the framer */
};

/* A growable, bounded stream buffer. Memory is taken only while bytes are
 * pending and can be given back when the connection is idle. */
struct sip_framer {
	char *buf;
	size_t cap;
	size_t len;        /* bytes held */
	size_t off;        /* start of the unconsumed bytes */
	size_t max;        /* bound on pending bytes (one message plus slack) */
	size_t scan;       /* where the search for the end of headers resumes */
	int after_crlf;    /* the last unit was a lone CRLF (maybe half a ping) */
};

/* Initialises an empty framer bounded at `max` pending bytes (0 means
 * SIPS_STREAM_BUF_SIZE). Takes no memory yet. */
void sip_framer_init(struct sip_framer *f, size_t max);

/* Frees the buffer. */
void sip_framer_fini(struct sip_framer *f);

/* Space for reading at least `want` more bytes: sets *dst and *room.
 * Returns 0, -EMSGSIZE when the bound is reached, or -ENOMEM. */
int sip_framer_reserve(struct sip_framer *f, size_t want, char **dst, size_t *room);

/* Records that `n` bytes were written at the reserved place. */
void sip_framer_commit(struct sip_framer *f, size_t n);

/* Copies `n` bytes in (reserve + commit). Returns 0 or -EMSGSIZE / -ENOMEM. */
int sip_framer_feed(struct sip_framer *f, const void *data, size_t n);

/* Yields the next unit. Returns 1 with *out filled, 0 when more bytes are
 * needed, or a negative errno when the stream is broken and must be closed:
 * -EBADMSG (missing, repeated or bad Content-Length, bad header block) or
 * -EMSGSIZE (a message over the bound). `err` (optional) gets the reason
 * and the offset within the current message. */
int sip_framer_next(struct sip_framer *f, struct sip_frame *out, struct sip_parse_error *err);

/* Number of bytes pending (received, not yet yielded). */
static inline size_t sip_framer_pending(const struct sip_framer *f)
{
	return f->len - f->off;
}

/* Gives the buffer back when nothing is pending (idle connections). */
void sip_framer_shrink(struct sip_framer *f);

#endif
