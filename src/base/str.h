/* str.h: slices (pointer + length) into bytes owned by someone else. */
#ifndef SIPSD_BASE_STR_H
#define SIPSD_BASE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A slice: `s` points into a buffer the slice does not own; `len` bytes.
 * Never NUL-terminated by contract; may contain NUL bytes. */
struct str {
	const char *s;
	size_t len;
};

#define STR_NULL ((struct str){NULL, 0})
#define STR_LIT(lit) ((struct str){(lit), sizeof(lit) - 1})

static inline struct str str_make(const char *s, size_t len)
{
	return (struct str){s, len};
}

static inline struct str str_from_cstr(const char *s)
{
	return (struct str){s, s ? strlen(s) : 0};
}

static inline bool str_is_empty(struct str a)
{
	return a.len == 0;
}

/* Byte-exact equality. */
static inline bool str_eq(struct str a, struct str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.s, b.s, a.len) == 0);
}

/* ASCII case-insensitive equality (no locale). */
bool str_case_eq(struct str a, struct str b);

/* ASCII case-insensitive equality against a C string literal. */
static inline bool str_case_eq_cstr(struct str a, const char *b)
{
	return str_case_eq(a, str_from_cstr(b));
}

/* ASCII case-insensitive prefix test. */
bool str_case_has_prefix(struct str a, const char *prefix);

/* Sub-slice [from, from+len) clipped to `a`. */
static inline struct str str_sub(struct str a, size_t from, size_t len)
{
	if (from > a.len)
		from = a.len;
	if (len > a.len - from)
		len = a.len - from;
	return (struct str){a.s + from, len};
}

/* Trim SP, HTAB, CR and LF from both ends (folded header values). */
struct str str_trim_lws(struct str a);

/* Parse an unsigned decimal with no sign; rejects empty input, non-digits
 * and values above `max`. Leading zeros are allowed (RFC 4475 §3.1.1.1).
 * Returns 0 and stores the value, or -EINVAL / -ERANGE. */
int str_to_u64(struct str a, uint64_t max, uint64_t *out);

/* Position of byte `c` in `a`, or -1. */
static inline long str_index(struct str a, char c)
{
	const char *p = a.len ? memchr(a.s, c, a.len) : NULL;
	return p ? (long)(p - a.s) : -1;
}

/* Copy `a` into `buf` (size `size`) NUL-terminated; truncates. Returns buf. */
char *str_to_cbuf(struct str a, char *buf, size_t size);

static inline char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

static inline bool ascii_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static inline bool ascii_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool ascii_is_hex(char c)
{
	return ascii_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static inline int ascii_hex_value(char c)
{
	if (ascii_is_digit(c))
		return c - '0';
	return ascii_lower(c) - 'a' + 10;
}

/* Formatting without printf (hot paths): each writes at `out`, adds no
 * NUL, and returns the number of bytes written. */

/* Exactly `digits` (at most 16) lower-case hex digits of v, zero-padded. */
static inline size_t fmt_hex(char *out, uint64_t v, unsigned digits)
{
	static const char hex[] = "0123456789abcdef";
	for (unsigned i = digits; i-- > 0; v >>= 4)
		out[i] = hex[v & 0xf];
	return digits;
}

/* The decimal digits of v (1 to 20). */
size_t fmt_u64(char *out, uint64_t v);

/* The bytes of `a`. */
static inline size_t fmt_str(char *out, struct str a)
{
	if (a.len)
		memcpy(out, a.s, a.len);
	return a.len;
}

#endif
