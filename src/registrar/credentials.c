/* credentials.c: loading and looking up the Digest user table (format in
 * docs/digest.md). */
#include "registrar/credentials.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

struct credentials {
	struct credential_entry *entries; /* sorted by (lower(realm), user) */
	size_t count;
	size_t cap;
};

static int load_fail(char *err, size_t errsz, int rc, const char *path, unsigned line,
		     const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int load_fail(char *err, size_t errsz, int rc, const char *path, unsigned line,
		     const char *fmt, ...)
{
	if (err && errsz) {
		char why[256];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
		if (line)
			snprintf(err, errsz, "%s:%u: %s", path, line, why);
		else
			snprintf(err, errsz, "%s: %s", path, why);
	}
	return rc;
}

static void entry_wipe(struct credential_entry *e)
{
	if (e->mem) {
		OPENSSL_cleanse(e->mem, e->user.len + e->realm.len + e->password.len + 3);
		free(e->mem);
	}
	OPENSSL_cleanse(e, sizeof(*e));
}

void credentials_free(struct credentials *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->count; i++)
		entry_wipe(&c->entries[i]);
	free(c->entries);
	free(c);
}

size_t credentials_count(const struct credentials *c)
{
	return c ? c->count : 0;
}

/* (lower(realm), user) order; realm case-insensitive, user exact. */
static int key_cmp(struct str ua, struct str ra, struct str ub, struct str rb)
{
	size_t n = ra.len < rb.len ? ra.len : rb.len;
	for (size_t i = 0; i < n; i++) {
		unsigned char a = (unsigned char)ascii_lower(ra.s[i]);
		unsigned char b = (unsigned char)ascii_lower(rb.s[i]);
		if (a != b)
			return a < b ? -1 : 1;
	}
	if (ra.len != rb.len)
		return ra.len < rb.len ? -1 : 1;
	n = ua.len < ub.len ? ua.len : ub.len;
	int r = n ? memcmp(ua.s, ub.s, n) : 0;
	if (r)
		return r;
	if (ua.len != ub.len)
		return ua.len < ub.len ? -1 : 1;
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct credential_entry *x = a, *y = b;
	int r = key_cmp(x->user, x->realm, y->user, y->realm);
	if (r)
		return r;
	return x->line < y->line ? -1 : x->line > y->line;
}

const struct credential_entry *credentials_lookup(const struct credentials *c, struct str user,
						  struct str realm)
{
	if (!c)
		return NULL;
	size_t lo = 0, hi = c->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct credential_entry *e = &c->entries[mid];
		int r = key_cmp(user, realm, e->user, e->realm);
		if (r == 0)
			return e;
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* ---- one line ---- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool has_control(struct str s)
{
	for (size_t i = 0; i < s.len; i++) {
		unsigned char ch = (unsigned char)s.s[i];
		if (ch < 0x20 || ch == 0x7f)
			return true;
	}
	return false;
}

static bool hex_to_bytes(struct str hex, uint8_t *out, size_t n)
{
	if (hex.len != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!ascii_is_hex(hex.s[2 * i]) || !ascii_is_hex(hex.s[2 * i + 1]))
			return false;
		out[i] = (uint8_t)(ascii_hex_value(hex.s[2 * i]) << 4 |
				   ascii_hex_value(hex.s[2 * i + 1]));
	}
	return true;
}

struct line_ctx {
	const char *path;
	unsigned line;
	char *err;
	size_t errsz;
};

#define LINE_FAIL(lc, ...)                                                                         \
	load_fail((lc)->err, (lc)->errsz, -EINVAL, (lc)->path, (lc)->line, __VA_ARGS__)

/* Parses one non-comment line (NUL-free, no line terminator) into `e`,
 * allocating e->mem; `pwbuf` holds a decoded quoted password. Returns 0 or
 * a negative errno with the error written. */
static int line_parse_in(const struct line_ctx *lc, const char *text, size_t len,
			 struct credential_entry *e, char *pwbuf)
{
	size_t i = 0;
	memset(e, 0, sizeof(*e));
	e->line = lc->line;

	/* user@realm: one field, split at the last '@' */
	size_t f0 = i;
	while (i < len && !is_blank(text[i]))
		i++;
	struct str id = str_make(text + f0, i - f0);
	const char *at = NULL;
	for (size_t k = 0; k < id.len; k++)
		if (id.s[k] == '@')
			at = id.s + k;
	if (!at)
		return LINE_FAIL(lc, "expected user@realm");
	struct str user = str_make(id.s, (size_t)(at - id.s));
	struct str realm = str_make(at + 1, id.len - user.len - 1);
	if (user.len == 0)
		return LINE_FAIL(lc, "empty user");
	if (realm.len == 0)
		return LINE_FAIL(lc, "empty realm");
	if (user.len > CREDENTIALS_MAX_FIELD || realm.len > CREDENTIALS_MAX_FIELD)
		return LINE_FAIL(lc, "user or realm longer than %d bytes", CREDENTIALS_MAX_FIELD);
	if (has_control(user) || has_control(realm))
		return LINE_FAIL(lc, "control character in user@realm");

	/* secrets: a password (plain or quoted) or ha1-md5:/ha1-sha256: */
	struct str password = STR_NULL;
	bool has_pw = false;
	for (;;) {
		while (i < len && is_blank(text[i]))
			i++;
		if (i == len)
			break;
		struct str field;
		bool quoted = text[i] == '"';
		if (quoted) {
			size_t n = 0;
			i++;
			for (;;) {
				if (i == len)
					return LINE_FAIL(lc, "unterminated quoted password");
				char ch = text[i++];
				if (ch == '"')
					break;
				if (ch == '\\') {
					if (i == len)
						continue; /* reported as unterminated next round */
					ch = text[i++];
				}
				if (n == CREDENTIALS_MAX_FIELD)
					return LINE_FAIL(lc, "password longer than %d bytes",
							 CREDENTIALS_MAX_FIELD);
				pwbuf[n++] = ch;
			}
			if (i < len && !is_blank(text[i]))
				return LINE_FAIL(lc, "text after a quoted password");
			field = str_make(pwbuf, n);
		} else {
			size_t f = i;
			while (i < len && !is_blank(text[i]))
				i++;
			field = str_make(text + f, i - f);
		}

		if (!quoted && str_case_has_prefix(field, "ha1-md5:")) {
			if (e->has_ha1_md5)
				return LINE_FAIL(lc, "ha1-md5 given twice");
			if (!hex_to_bytes(str_sub(field, 8, field.len), e->ha1_md5,
					  sizeof(e->ha1_md5)))
				return LINE_FAIL(lc, "ha1-md5 needs 32 hex digits");
			e->has_ha1_md5 = true;
		} else if (!quoted && str_case_has_prefix(field, "ha1-sha256:")) {
			if (e->has_ha1_sha256)
				return LINE_FAIL(lc, "ha1-sha256 given twice");
			if (!hex_to_bytes(str_sub(field, 11, field.len), e->ha1_sha256,
					  sizeof(e->ha1_sha256)))
				return LINE_FAIL(lc, "ha1-sha256 needs 64 hex digits");
			e->has_ha1_sha256 = true;
		} else if (!quoted && str_case_has_prefix(field, "ha1-")) {
			return LINE_FAIL(lc,
					 "unknown ha1 kind (quote a password starting with ha1-)");
		} else {
			if (has_pw)
				return LINE_FAIL(lc, "more than one password");
			if (field.len > CREDENTIALS_MAX_FIELD)
				return LINE_FAIL(lc, "password longer than %d bytes",
						 CREDENTIALS_MAX_FIELD);
			if (has_control(field))
				return LINE_FAIL(lc, "control character in password");
			has_pw = true;
			password = field;
		}
	}
	if (!has_pw && !e->has_ha1_md5 && !e->has_ha1_sha256)
		return LINE_FAIL(lc, "no password or ha1");
	if (has_pw && (e->has_ha1_md5 || e->has_ha1_sha256))
		return LINE_FAIL(lc, "give a password or ha1 values, not both");

	/* user \0 realm \0 password \0 in one block */
	size_t total = user.len + realm.len + password.len + 3;
	e->mem = malloc(total);
	if (!e->mem)
		return load_fail(lc->err, lc->errsz, -ENOMEM, lc->path, lc->line, "out of memory");
	char *p = e->mem;
	memcpy(p, user.s, user.len);
	p[user.len] = '\0';
	e->user = str_make(p, user.len);
	p += user.len + 1;
	memcpy(p, realm.s, realm.len);
	p[realm.len] = '\0';
	e->realm = str_make(p, realm.len);
	p += realm.len + 1;
	if (password.len)
		memcpy(p, password.s, password.len);
	p[password.len] = '\0';
	e->password = str_make(p, password.len);
	e->has_password = has_pw;
	return 0;
}

static int line_parse(const struct line_ctx *lc, const char *text, size_t len,
		      struct credential_entry *e)
{
	char pwbuf[CREDENTIALS_MAX_FIELD];
	int rc = line_parse_in(lc, text, len, e, pwbuf);
	OPENSSL_cleanse(pwbuf, sizeof(pwbuf));
	if (rc < 0)
		OPENSSL_cleanse(e, sizeof(*e)); /* may hold HA1 bytes */
	return rc;
}

/* ---- the file ---- */

/* Reads one line into buf (without its LF; a CR before it is dropped).
 * Returns the length, -1 at end of file, -EMSGSIZE for a line over the
 * limit (the rest of it is not read), -EINVAL for a NUL byte, -EIO. */
static long line_read(FILE *f, char *buf, size_t cap)
{
	size_t n = 0;
	int ch;
	bool any = false;
	while ((ch = getc(f)) != EOF) {
		any = true;
		if (ch == '\n')
			break;
		if (ch == '\0')
			return -EINVAL;
		if (n == cap)
			return -EMSGSIZE;
		buf[n++] = (char)ch;
	}
	if (ferror(f))
		return -EIO;
	if (!any)
		return -1;
	if (n && buf[n - 1] == '\r')
		n--;
	return (long)n;
}

static int table_add(struct credentials *c, const struct credential_entry *e)
{
	if (c->count == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 64;
		if (ncap > CREDENTIALS_MAX_ENTRIES)
			ncap = CREDENTIALS_MAX_ENTRIES;
		struct credential_entry *ne = realloc(c->entries, ncap * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		c->entries = ne;
		c->cap = ncap;
	}
	c->entries[c->count++] = *e;
	return 0;
}

int credentials_load(const char *path, struct credentials **out, char *err, size_t errsz)
{
	*out = NULL;
	if (err && errsz)
		err[0] = '\0';
	FILE *f = fopen(path, "r");
	if (!f) {
		int e = errno;
		return load_fail(err, errsz, -e, path, 0, "%s", strerror(e));
	}
	struct credentials *c = calloc(1, sizeof(*c));
	if (!c) {
		fclose(f);
		return load_fail(err, errsz, -ENOMEM, path, 0, "out of memory");
	}

	char buf[CREDENTIALS_MAX_LINE];
	struct line_ctx lc = {path, 0, err, errsz};
	int rc = 0;
	for (;;) {
		lc.line++;
		long n = line_read(f, buf, sizeof(buf));
		if (n == -1)
			break;
		if (n == -EMSGSIZE) {
			rc = load_fail(err, errsz, -EMSGSIZE, path, lc.line,
				       "line longer than %d bytes", CREDENTIALS_MAX_LINE);
			break;
		}
		if (n == -EINVAL) {
			rc = LINE_FAIL(&lc, "NUL byte in line");
			break;
		}
		if (n < 0) {
			rc = load_fail(err, errsz, (int)n, path, lc.line, "read error");
			break;
		}
		size_t i = 0;
		while (i < (size_t)n && is_blank(buf[i]))
			i++;
		if (i == (size_t)n || buf[i] == '#')
			continue;
		size_t end = (size_t)n;
		while (end > i && is_blank(buf[end - 1]))
			end--;
		if (c->count == CREDENTIALS_MAX_ENTRIES) {
			rc = load_fail(err, errsz, -EMSGSIZE, path, lc.line, "more than %d entries",
				       CREDENTIALS_MAX_ENTRIES);
			break;
		}
		struct credential_entry e;
		rc = line_parse(&lc, buf + i, end - i, &e);
		if (rc == 0) {
			rc = table_add(c, &e);
			if (rc < 0) {
				entry_wipe(&e);
				load_fail(err, errsz, rc, path, lc.line, "out of memory");
			}
		}
		if (rc < 0)
			break;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	fclose(f);

	if (rc == 0 && c->count > 1) {
		qsort(c->entries, c->count, sizeof(c->entries[0]), entry_cmp);
		for (size_t k = 1; k < c->count; k++) {
			const struct credential_entry *a = &c->entries[k - 1], *b = &c->entries[k];
			if (key_cmp(a->user, a->realm, b->user, b->realm) == 0) {
				lc.line = b->line;
				rc = LINE_FAIL(&lc, "%.*s@%.*s already defined on line %u",
					       (int)b->user.len, b->user.s, (int)b->realm.len,
					       b->realm.s, a->line);
				break;
			}
		}
	}
	if (rc < 0) {
		credentials_free(c);
		return rc;
	}
	*out = c;
	return 0;
}
