/* cmd_msg.c: `sipsctl msg [--stream] [--dump] FILE...` parses files as SIP messages. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"
#include "sip/msg.h"
#include "sipsctl.h"

/* Reads a whole file, bounded at twice the message limit (a larger file
 * cannot hold a valid message; reading it whole would only cost memory). */
static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	size_t cap = 2 * SIPS_MAX_MSG_SIZE + 1;
	char *buf = malloc(cap);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	size_t n = fread(buf, 1, cap, f);
	int rc = ferror(f) ? -EIO : 0;
	fclose(f);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	*len = n;
	return 0;
}

static void print_str(const char *label, struct str s)
{
	printf("  %s: ", label);
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.s[i];
		if (c >= 0x20 && c != 0x7f && c != '\\')
			putchar(c);
		else if (c == '\\')
			fputs("\\\\", stdout);
		else
			printf("\\x%02x", c);
	}
	putchar('\n');
}

static void dump_uri(const char *label, const struct sip_uri *u)
{
	print_str(label, u->raw);
	if (u->scheme_id == SIP_SCHEME_SIP || u->scheme_id == SIP_SCHEME_SIPS) {
		if (u->has_user)
			print_str("    user", u->user);
		print_str("    host", u->host);
		if (u->has_port)
			printf("    port: %u\n", u->port);
		if (u->params.len)
			print_str("    params", u->params);
		if (u->headers.len)
			print_str("    headers", u->headers);
	}
}

static void dump_addr_list(const char *label, const struct sip_addr *a)
{
	for (; a; a = a->next) {
		print_str(label, a->raw);
		if (a->display.len)
			print_str("    display", a->display);
		dump_uri("    uri", &a->uri);
		if (a->has_tag)
			print_str("    tag", a->tag);
	}
}

static void dump(const struct sip_msg *m)
{
	if (m->is_request) {
		print_str("method", m->method);
		dump_uri("request-uri", &m->ruri);
	} else {
		printf("  status: %u\n", m->status);
		print_str("reason", m->reason);
	}
	print_str("version", m->version);
	for (const struct sip_via *v = m->via; v; v = v->next) {
		print_str("via", v->raw);
		print_str("    transport", v->transport);
		print_str("    host", v->host);
		if (v->has_port)
			printf("    port: %u\n", v->port);
		if (v->has_branch)
			print_str("    branch", v->branch);
		if (v->has_received)
			print_str("    received", v->received);
		if (v->has_rport)
			print_str("    rport", v->rport);
		if (v->has_alias)
			printf("    alias: yes\n");
	}
	dump_addr_list("from", m->from);
	dump_addr_list("to", m->to);
	print_str("call-id", m->call_id);
	if (m->has_cseq) {
		printf("  cseq: %u ", m->cseq);
		print_str("method", m->cseq_method);
	}
	if (m->max_forwards >= 0)
		printf("  max-forwards: %d\n", m->max_forwards);
	dump_addr_list("route", m->route);
	dump_addr_list("record-route", m->record_route);
	if (m->contact_star)
		printf("  contact: *\n");
	dump_addr_list("contact", m->contact);
	if (m->expires >= 0)
		printf("  expires: %lld\n", (long long)m->expires);
	printf("  headers: %u\n", m->hdr_count);
	printf("  body-length: %zu\n", m->body.len);
}

int sipsctl_cmd_msg(int argc, char **argv)
{
	bool want_dump = false;
	enum sip_parse_mode mode = SIP_PARSE_DATAGRAM;
	int first = 1;
	for (; first < argc && argv[first][0] == '-'; first++) {
		if (!strcmp(argv[first], "--dump"))
			want_dump = true;
		else if (!strcmp(argv[first], "--stream"))
			mode = SIP_PARSE_STREAM;
		else if (!strcmp(argv[first], "--"))
			break;
		else {
			fprintf(stderr, "sipsctl msg: unknown option %s\n", argv[first]);
			fprintf(stderr, "usage: sipsctl msg [--stream] [--dump] FILE...\n");
			return SIPSCTL_USAGE;
		}
	}
	if (first < argc && !strcmp(argv[first], "--"))
		first++;
	if (first >= argc) {
		fprintf(stderr, "usage: sipsctl msg [--stream] [--dump] FILE...\n");
		return SIPSCTL_USAGE;
	}
	struct sip_msg *m = malloc(sizeof(*m));
	if (!m) {
		fprintf(stderr, "sipsctl msg: out of memory\n");
		return SIPSCTL_USAGE;
	}
	int status = SIPSCTL_OK;
	for (int i = first; i < argc; i++) {
		char *buf = NULL;
		size_t len = 0;
		int rc = read_file(argv[i], &buf, &len);
		if (rc < 0) {
			fprintf(stderr, "sipsctl msg: %s: %s\n", argv[i], strerror(-rc));
			free(m);
			return SIPSCTL_USAGE;
		}
		struct sip_parse_error err;
		rc = sip_msg_parse(m, buf, len, mode, &err);
		if (rc < 0) {
			printf("%s: invalid: %s at offset %zu\n", argv[i], err.reason, err.offset);
			status = SIPSCTL_FAIL;
		} else if (sip_msg_check(m, &err) != 0) {
			printf("%s: invalid: %s at offset %zu (a server answers %d)\n", argv[i], err.reason,
			       err.offset, err.status);
			status = SIPSCTL_FAIL;
		} else {
			printf("%s: valid\n", argv[i]);
			if ((size_t)rc < len)
				printf("  ignored-trailing-octets: %zu\n", len - (size_t)rc);
		}
		if (want_dump && rc >= 0)
			dump(m);
		free(buf);
	}
	free(m);
	return status;
}
