/* cmd_options.c: `sipsctl options URI`: send OPTIONS over UDP, TCP or TLS
 * (with SNI and the RFC 5922 checks) and print the answer. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "sip/msg.h"
#include "sipsctl.h"
#include "ua_conn.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: sipsctl options URI [--ca FILE] [--via HOST:PORT] [--timeout S]\n"
		     "                        [--transport udp|tcp|tls] [--cert FILE --key FILE]\n"
		     "                        [--from URI]\n"
		     "  Sends OPTIONS to URI (TLS for sips: URIs and ;transport=tls) and prints the\n"
		     "  response status line, the server's SIP domain identities and the TLS version.\n"
		     "  --via sends to HOST:PORT instead of the URI's host; the server must still\n"
		     "  prove the URI's domain (RFC 5922 §7.3). Exit 0 on a 2xx.\n");
}

static void random_hex(char *out, size_t bytes)
{
	unsigned char r[32];
	if (bytes > sizeof(r))
		bytes = sizeof(r);
	if (RAND_bytes(r, (int)bytes) != 1)
		memset(r, 0x5a, bytes);
	for (size_t i = 0; i < bytes; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

int sipsctl_cmd_options(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"ca", required_argument, NULL, 'a'},      {"via", required_argument, NULL, 'v'},
		{"timeout", required_argument, NULL, 't'}, {"transport", required_argument, NULL, 'T'},
		{"cert", required_argument, NULL, 'c'},    {"key", required_argument, NULL, 'k'},
		{"from", required_argument, NULL, 'f'},    {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct ua_conn_opts o = {.timeout_ms = 5000};
	const char *via = NULL, *transport = NULL, *from = "sip:sipsctl@invalid";
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'a': o.ca_file = optarg; break;
		case 'v': via = optarg; break;
		case 'c': o.cert_file = optarg; break;
		case 'k': o.key_file = optarg; break;
		case 'T': transport = optarg; break;
		case 'f': from = optarg; break;
		case 't': {
			uint64_t s;
			if (str_to_u64(str_from_cstr(optarg), 3600, &s) < 0 || s == 0) {
				fprintf(stderr, "sipsctl options: --timeout takes seconds (1-3600)\n");
				return SIPSCTL_USAGE;
			}
			o.timeout_ms = (int)s * 1000;
			break;
		}
		case 'h': usage(stdout); return SIPSCTL_OK;
		default: usage(stderr); return SIPSCTL_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return SIPSCTL_USAGE;
	}
	const char *uri_text = argv[optind];
	struct sip_uri uri;
	size_t off;
	const char *why;
	if (sip_uri_parse(str_from_cstr(uri_text), &uri, &off, &why) < 0 ||
	    (uri.scheme_id != SIP_SCHEME_SIP && uri.scheme_id != SIP_SCHEME_SIPS)) {
		fprintf(stderr, "sipsctl options: '%s' is not a sip: or sips: URI%s%s\n", uri_text,
			why ? ": " : "", why ? why : "");
		return SIPSCTL_USAGE;
	}
	enum tp_proto proto = uri.scheme_id == SIP_SCHEME_SIPS ? TP_PROTO_TLS : TP_PROTO_UDP;
	struct str tparam;
	if (sip_params_find(uri.params, "transport", &tparam)) {
		if (str_case_eq_cstr(tparam, "tcp"))
			proto = uri.scheme_id == SIP_SCHEME_SIPS ? TP_PROTO_TLS : TP_PROTO_TCP;
		else if (str_case_eq_cstr(tparam, "tls"))
			proto = TP_PROTO_TLS;
	}
	if (transport) {
		if (!strcmp(transport, "udp"))
			proto = TP_PROTO_UDP;
		else if (!strcmp(transport, "tcp"))
			proto = TP_PROTO_TCP;
		else if (!strcmp(transport, "tls"))
			proto = TP_PROTO_TLS;
		else {
			fprintf(stderr, "sipsctl options: --transport must be udp, tcp or tls\n");
			return SIPSCTL_USAGE;
		}
		/* RFC 5630 §3: a sips: URI is never sent over a hop without TLS. */
		if (uri.scheme_id == SIP_SCHEME_SIPS && proto != TP_PROTO_TLS) {
			fprintf(stderr, "sipsctl options: a sips: URI goes over TLS only (RFC 5630)\n");
			return SIPSCTL_USAGE;
		}
	}
	char domain[256];
	str_to_cbuf(uri.host, domain, sizeof(domain));
	struct sockaddr_storage dst;
	socklen_t dl;
	uint16_t port = uri.has_port ? uri.port : (proto == TP_PROTO_TLS ? 5061 : 5060);
	int rc = via ? tp_addr_parse(via, port, &dst, &dl) : ua_resolve(domain, port, &dst, &dl);
	if (rc < 0) {
		fprintf(stderr, "sipsctl options: cannot resolve %s\n", via ? via : domain);
		return SIPSCTL_USAGE;
	}
	struct ua_conn *c = malloc(sizeof(*c));
	if (!c)
		return SIPSCTL_USAGE;
	rc = ua_conn_open(c, proto, (struct sockaddr *)&dst, dl, domain, &o);
	char addr[64];
	tp_addr_format((struct sockaddr *)&dst, addr, sizeof(addr));
	if (rc < 0) {
		printf("error: %s %s: %s\n", tp_proto_name(proto), addr, c->failure);
		free(c);
		return SIPSCTL_FAIL;
	}
	if (c->ssl) {
		const struct tls_peer *p = tls_ssl_peer(c->ssl);
		char ids[600] = "{}";
		if (p)
			tls_identity_set_format(p->ids, ids, sizeof(ids));
		printf("tls: version=%s sni=%s server-identities=%s authenticated-as=%s\n",
		       SSL_get_version(c->ssl), domain, ids, domain);
	}
	char branch[33], tag[17], callid[33], local[64];
	random_hex(branch, 16);
	random_hex(tag, 8);
	random_hex(callid, 16);
	tp_addr_format((struct sockaddr *)&c->local, local, sizeof(local));
	const char *tname = proto == TP_PROTO_UDP ? "UDP" : proto == TP_PROTO_TCP ? "TCP" : "TLS";
	char req[2048];
	int n = snprintf(req, sizeof(req),
			 "OPTIONS %s SIP/2.0\r\n"
			 "Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport\r\n"
			 "Max-Forwards: 70\r\n"
			 "From: <%s>;tag=%s\r\n"
			 "To: <%s>\r\n"
			 "Call-ID: %s\r\n"
			 "CSeq: 1 OPTIONS\r\n"
			 "Accept: application/sdp\r\n"
			 "User-Agent: sipsctl\r\n"
			 "Content-Length: 0\r\n\r\n",
			 uri_text, tname, local, branch, from, tag, uri_text, callid);
	if (n < 0 || (size_t)n >= sizeof(req)) {
		fprintf(stderr, "sipsctl options: URI too long\n");
		ua_conn_close(c);
		free(c);
		return SIPSCTL_USAGE;
	}
	int status = SIPSCTL_FAIL;
	/* UDP: retransmit with timer A doubling from T1 = 500 ms (RFC 3261 §17.1.2.2). */
	int interval = 500, waited = 0;
	bool done = false;
	if (ua_conn_send(c, req, (size_t)n) < 0) {
		printf("error: send failed\n");
		done = true;
	}
	while (!done && waited < o.timeout_ms) {
		int wait = proto == TP_PROTO_UDP ? interval : o.timeout_ms - waited;
		if (wait > o.timeout_ms - waited)
			wait = o.timeout_ms - waited;
		const char *msg;
		size_t len;
		rc = ua_conn_recv(c, wait, &msg, &len);
		if (rc < 0) {
			printf("error: connection: %s\n", strerror(-rc));
			break;
		}
		if (rc == 0) {
			waited += wait;
			if (proto == TP_PROTO_UDP) {
				interval = interval * 2 > 4000 ? 4000 : interval * 2;
				ua_conn_send(c, req, (size_t)n);
			}
			continue;
		}
		struct sip_msg *m = malloc(sizeof(*m));
		struct sip_parse_error err;
		if (!m)
			break;
		int prc = sip_msg_parse(m, msg, len,
					proto == TP_PROTO_UDP ? SIP_PARSE_DATAGRAM : SIP_PARSE_STREAM, &err);
		bool ours = prc >= 0 && !m->is_request && m->via && m->via->has_branch && m->via->branch.len == 7 + 32 &&
			    !memcmp(m->via->branch.s + 7, branch, 32);
		if (ours && m->status >= 200) {
			printf("%.*s\n", (int)m->start_line.len, m->start_line.s);
			status = m->status < 300 ? SIPSCTL_OK : SIPSCTL_FAIL;
			done = true;
		} else if (ours) {
			printf("%.*s\n", (int)m->start_line.len, m->start_line.s);
		}
		free(m);
	}
	if (!done && waited >= o.timeout_ms)
		printf("error: no final response within %d s\n", o.timeout_ms / 1000);
	ua_conn_close(c);
	free(c);
	return status;
}
