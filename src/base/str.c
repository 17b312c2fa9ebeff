/* str.c: slice helpers. */
#include "base/str.h"

#include <errno.h>

bool str_case_eq(struct str a, struct str b)
{
	if (a.len != b.len)
		return false;
	for (size_t i = 0; i < a.len; i++) {
		char x = a.s[i], y = b.s[i];
		/* Equal bytes need no folding; only letters fold. */
		if (x != y && ascii_lower(x) != ascii_lower(y))
			return false;
	}
	return true;
}

bool str_case_has_prefix(struct str a, const char *prefix)
{
	size_t n = strlen(prefix);
	return a.len >= n && str_case_eq(str_make(a.s, n), str_make(prefix, n));
}

static bool is_lws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

struct str str_trim_lws(struct str a)
{
	while (a.len && is_lws(a.s[0])) {
		a.s++;
		a.len--;
	}
	while (a.len && is_lws(a.s[a.len - 1]))
		a.len--;
	return a;
}

int str_to_u64(struct str a, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (a.len == 0)
		return -EINVAL;
	for (size_t i = 0; i < a.len; i++) {
		if (!ascii_is_digit(a.s[i]))
			return -EINVAL;
		/* Overflow checks without a division (a 64-bit divide per digit
		 * costs more than the rest of the loop); also right for a `max`
		 * below 9, where max - d would wrap. */
		unsigned d = (unsigned)(a.s[i] - '0');
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, d, &v) || v > max)
			return -ERANGE;
	}
	*out = v;
	return 0;
}

char *str_to_cbuf(struct str a, char *buf, size_t size)
{
	if (size == 0)
		return buf;
	size_t n = a.len < size - 1 ? a.len : size - 1;
	if (n)
		memcpy(buf, a.s, n);
	buf[n] = '\0';
	return buf;
}

size_t fmt_u64(char *out, uint64_t v)
{
	char tmp[20];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}
