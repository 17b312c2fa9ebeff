/* limits.h: every growth bound of sipsd in one place (design.md, Conventions).
 * A limit exceeded is a clean error with its offset, never a crash. */
#ifndef SIPSD_BASE_LIMITS_H
#define SIPSD_BASE_LIMITS_H

/* Whole SIP message, headers and body (RFC 3261 §18.1.1 bounds UDP at path
 * MTU; streams may carry more, but a proxy has no use for more than this). */
#define SIPS_MAX_MSG_SIZE 65535
/* Header fields (lines) in one message. */
#define SIPS_MAX_HEADERS 256
/* One header line, including its folded continuation lines. */
#define SIPS_MAX_LINE 8192
/* One URI, in the start line or in a header. */
#define SIPS_MAX_URI 4096
/* Parameters on one URI or one header value. */
#define SIPS_MAX_PARAMS 64
/* Via entries in one message (RFC 4475 longreq has 34). */
#define SIPS_MAX_VIA 128
/* Entries of Contact / Route / Record-Route (each). */
#define SIPS_MAX_ADDRS 64
/* Bytes of the per-message arena that holds parsed lists. */
#define SIPS_MSG_ARENA_SIZE 32768
/* Stream framer buffer: one whole message plus the start of the next. */
#define SIPS_STREAM_BUF_SIZE (SIPS_MAX_MSG_SIZE + 4096)
/* CRLFs tolerated between messages on a stream before we call it abuse. */
#define SIPS_MAX_IDLE_CRLF 1024

#endif
