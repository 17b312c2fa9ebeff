/* test_location.c: the memory location store, the binding rules shared
 * with the Redis back end (RFC 3261 §10.3, RFC 5626 §6), the text form of
 * a binding and the snapshot file. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/binding.h"
#include "store/location.h"

#define NOW 1800000000

static struct loc_binding make(const char *contact, const char *call_id, uint32_t cseq)
{
	struct loc_binding b;
	memset(&b, 0, sizeof(b));
	snprintf(b.contact, sizeof(b.contact), "%s", contact);
	snprintf(b.call_id, sizeof(b.call_id), "%s", call_id);
	b.cseq = cseq;
	b.q1000 = 1000;
	b.flow.proto = 1;
	struct sockaddr_in *a = (struct sockaddr_in *)&b.flow.remote;
	a->sin_family = AF_INET;
	a->sin_port = htons(5070);
	inet_pton(AF_INET, "192.0.2.7", &a->sin_addr);
	b.flow.remote_len = sizeof(*a);
	b.flow.udp_fd = -1;
	return b;
}

static void test_apply_rules(void **state)
{
	(void)state;
	struct loc_binding arr[LOC_MAX_BINDINGS_PER_AOR];
	unsigned n = 0;
	struct loc_binding a = make("sip:a@192.0.2.7", "c1", 1);
	assert_int_equal(loc_bindings_apply(arr, &n, 16, &a, 60, NOW), LOC_UPDATED);
	assert_int_equal(n, 1);
	assert_int_equal(arr[0].expires_at, NOW + 60);
	/* Same Call-ID, CSeq not higher: out of order (§10.3 step 7). */
	assert_int_equal(loc_bindings_apply(arr, &n, 16, &a, 60, NOW), LOC_OUT_OF_ORDER);
	/* A higher CSeq refreshes. */
	a.cseq = 2;
	assert_int_equal(loc_bindings_apply(arr, &n, 16, &a, 120, NOW), LOC_UPDATED);
	assert_int_equal(n, 1);
	assert_int_equal(arr[0].expires_at, NOW + 120);
	/* Another Call-ID may change it whatever its CSeq. */
	struct loc_binding other = make("sip:a@192.0.2.7", "c2", 1);
	assert_int_equal(loc_bindings_apply(arr, &n, 16, &other, 30, NOW), LOC_UPDATED);
	assert_int_equal(n, 1);
	assert_string_equal(arr[0].call_id, "c2");
	/* Expires 0 removes. */
	other.cseq = 2;
	assert_int_equal(loc_bindings_apply(arr, &n, 16, &other, 0, NOW), LOC_UPDATED);
	assert_int_equal(n, 0);
}

static void test_apply_outbound_and_limit(void **state)
{
	(void)state;
	struct loc_binding arr[LOC_MAX_BINDINGS_PER_AOR];
	unsigned n = 0;
	/* RFC 5626 §6: one contact, two reg-ids: two bindings. */
	struct loc_binding f1 = make("sip:ua@192.0.2.7;transport=tls", "c", 1);
	snprintf(f1.instance, sizeof(f1.instance), "<urn:uuid:1>");
	f1.reg_id = 1;
	struct loc_binding f2 = f1;
	f2.reg_id = 2;
	f2.cseq = 2;
	assert_int_equal(loc_bindings_apply(arr, &n, 16, &f1, 60, NOW), LOC_UPDATED);
	assert_int_equal(loc_bindings_apply(arr, &n, 16, &f2, 60, NOW), LOC_UPDATED);
	assert_int_equal(n, 2);
	char k1[700], k2[700];
	assert_true(loc_binding_key(&arr[0], k1, sizeof(k1)) > 0);
	assert_true(loc_binding_key(&arr[1], k2, sizeof(k2)) > 0);
	assert_string_not_equal(k1, k2);
	/* The per-AOR limit; expired bindings do not count. */
	n = 0;
	for (int i = 0; i < LOC_MAX_BINDINGS_PER_AOR; i++) {
		char c[64];
		snprintf(c, sizeof(c), "sip:u%d@192.0.2.7", i);
		struct loc_binding b = make(c, "x", (uint32_t)i + 1);
		assert_int_equal(loc_bindings_apply(arr, &n, 16, &b, 60, NOW), LOC_UPDATED);
	}
	struct loc_binding extra = make("sip:extra@192.0.2.7", "x", 100);
	assert_int_equal(loc_bindings_apply(arr, &n, 16, &extra, 60, NOW), LOC_TOO_MANY);
	assert_int_equal(loc_bindings_apply(arr, &n, 16, &extra, 60, NOW + 61), LOC_UPDATED);
	assert_int_equal(n, 1);
}

static void test_text_round_trip(void **state)
{
	(void)state;
	struct loc_binding b = make("sips:bob@[2001:db8::1]:5061;transport=tls", "a,b:c\n", 77);
	snprintf(b.instance, sizeof(b.instance), "\"<urn:uuid:2>\"");
	b.reg_id = 3;
	b.q1000 = 500;
	b.expires_at = NOW + 3600;
	snprintf(b.path, sizeof(b.path), "<sip:p1.example.com;lr>, <sip:p2;lr>");
	b.flow.proto = 3;
	b.flow.node = 2;
	b.flow.worker = 1;
	b.flow.conn_id = 0x1234567890ull;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&b.flow.remote;
	memset(&b.flow.remote, 0, sizeof(b.flow.remote));
	a6->sin6_family = AF_INET6;
	a6->sin6_port = htons(40000);
	inet_pton(AF_INET6, "2001:db8::9", &a6->sin6_addr);
	b.flow.remote_len = sizeof(*a6);
	char text[LOC_BINDING_TEXT_MAX];
	int n = loc_binding_encode(&b, text, sizeof(text));
	assert_true(n > 0);
	/* The owner comes first, for the Redis scripts. */
	assert_memory_equal(text, "2:1:78187493520|", 16);
	struct loc_binding d;
	assert_int_equal(loc_binding_decode(text, (size_t)n, &d), 0);
	assert_string_equal(d.contact, b.contact);
	assert_string_equal(d.call_id, b.call_id);
	assert_string_equal(d.instance, b.instance);
	assert_string_equal(d.path, b.path);
	assert_int_equal(d.reg_id, 3);
	assert_int_equal(d.cseq, 77);
	assert_int_equal(d.q1000, 500);
	assert_int_equal(d.expires_at, NOW + 3600);
	assert_int_equal(d.flow.proto, 3);
	assert_int_equal(d.flow.node, 2);
	assert_int_equal(d.flow.worker, 1);
	assert_int_equal(d.flow.conn_id, 0x1234567890ull);
	assert_int_equal(d.flow.udp_fd, -1);
	assert_int_equal(d.flow.remote_len, sizeof(*a6));
	assert_memory_equal(&d.flow.remote, &b.flow.remote, sizeof(*a6));
	/* Every truncation, and any changed length, is refused. */
	for (int cut = 0; cut < n; cut++)
		assert_int_equal(loc_binding_decode(text, (size_t)cut, &d), -EINVAL);
	char bad[LOC_BINDING_TEXT_MAX];
	memcpy(bad, text, (size_t)n);
	char *v = strstr(bad, "|1:1,");
	assert_non_null(v);
	v[3] = '2'; /* another version */
	assert_int_equal(loc_binding_decode(bad, (size_t)n, &d), -EINVAL);
	/* Too small a buffer is said so. */
	assert_int_equal(loc_binding_encode(&b, text, 40), -EMSGSIZE);
}

static void test_memory_store(void **state)
{
	(void)state;
	struct location *loc;
	assert_int_equal(location_create(&loc), 0);
	struct loc_binding lo = make("sip:lo@192.0.2.7", "c", 1);
	lo.q1000 = 100;
	struct loc_binding hi = make("sip:hi@192.0.2.7", "c", 2);
	hi.q1000 = 900;
	hi.flow.proto = 3;
	hi.flow.conn_id = 42;
	struct str aor = str_from_cstr("sip:alice@example.com");
	assert_int_equal(location_update(loc, aor, &lo, 60, NOW), LOC_UPDATED);
	assert_int_equal(location_update(loc, aor, &hi, 60, NOW), LOC_UPDATED);
	struct loc_binding out[LOC_MAX_BINDINGS_PER_AOR];
	assert_int_equal(location_lookup(loc, aor, NOW, out, 16), 2);
	assert_string_equal(out[0].contact, "sip:hi@192.0.2.7"); /* q order */
	unsigned aors, bindings;
	location_counts(loc, &aors, &bindings);
	assert_int_equal(aors, 1);
	assert_int_equal(bindings, 2);
	/* The flow closes: its binding goes. */
	assert_int_equal(location_flow_closed(loc, 0, 42), 1);
	assert_int_equal(location_lookup(loc, aor, NOW, out, 16), 1);
	/* Expiry sweeps the AOR away. */
	assert_int_equal(location_expire(loc, NOW + 61), 1);
	location_counts(loc, &aors, &bindings);
	assert_int_equal(aors, 0);
	assert_int_equal(bindings, 0);
	/* Contact: * with an older CSeq of the same Call-ID is refused. */
	assert_int_equal(location_update(loc, aor, &lo, 60, NOW), LOC_UPDATED);
	assert_int_equal(location_remove_all(loc, aor, str_from_cstr("c"), 1), -LOC_OUT_OF_ORDER);
	assert_int_equal(location_remove_all(loc, aor, str_from_cstr("c"), 5), 1);
	location_destroy(loc);
}

static void test_snapshot(void **state)
{
	(void)state;
	char path[] = "/tmp/sipsd-test-location-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	struct location *loc;
	assert_int_equal(location_create(&loc), 0);
	struct loc_binding udp = make("sip:udp@192.0.2.7", "c", 1);
	udp.flow.udp_fd = 9;
	struct loc_binding tls = make("sips:tls@192.0.2.8;transport=tls", "c", 2);
	tls.flow.proto = 3;
	tls.flow.conn_id = 7;
	struct loc_binding ob = make("sips:ob@192.0.2.9;transport=tls", "c", 3);
	ob.flow.proto = 3;
	ob.flow.conn_id = 8;
	snprintf(ob.instance, sizeof(ob.instance), "<urn:uuid:3>");
	ob.reg_id = 1;
	struct loc_binding gone = make("sip:gone@192.0.2.7", "c", 4);
	assert_int_equal(location_update(loc, str_from_cstr("sip:a@example.com"), &udp, 600, NOW), 0);
	assert_int_equal(location_update(loc, str_from_cstr("sip:a@example.com"), &tls, 600, NOW), 0);
	assert_int_equal(location_update(loc, str_from_cstr("sip:b@example.com"), &ob, 600, NOW), 0);
	assert_int_equal(location_update(loc, str_from_cstr("sip:c@example.com"), &gone, 10, NOW), 0);
	assert_int_equal(location_snapshot_save(loc, path), 4);
	location_destroy(loc);

	/* A new process, 60 s later. */
	assert_int_equal(location_create(&loc), 0);
	unsigned dropped = 0;
	assert_int_equal(location_snapshot_load(loc, path, NOW + 60, &dropped), 2);
	assert_int_equal(dropped, 1); /* the outbound flow died with the process */
	struct loc_binding out[LOC_MAX_BINDINGS_PER_AOR];
	int n = location_lookup(loc, str_from_cstr("sip:a@example.com"), NOW + 60, out, 16);
	assert_int_equal(n, 2);
	for (int i = 0; i < n; i++) {
		assert_int_equal(out[i].expires_at, NOW + 600); /* the same expiry */
		assert_int_equal(out[i].flow.conn_id, 0);      /* no flow any more */
		assert_int_equal(out[i].flow.udp_fd, -1);
	}
	assert_int_equal(location_lookup(loc, str_from_cstr("sip:b@example.com"), NOW + 60, out, 16), 0);
	assert_int_equal(location_lookup(loc, str_from_cstr("sip:c@example.com"), NOW + 60, out, 16), 0);
	location_destroy(loc);

	/* A damaged file restores nothing. */
	FILE *f = fopen(path, "a");
	assert_non_null(f);
	fputs("12:sip:x@exampl", f);
	fclose(f);
	assert_int_equal(location_create(&loc), 0);
	assert_int_equal(location_snapshot_load(loc, path, NOW + 60, &dropped), -EINVAL);
	unsigned aors, bindings;
	location_counts(loc, &aors, &bindings);
	assert_int_equal(aors, 0);
	location_destroy(loc);
	unlink(path);
	assert_int_equal(location_create(&loc), 0);
	assert_int_equal(location_snapshot_load(loc, path, NOW, &dropped), -ENOENT);
	location_destroy(loc);
}

/* location_open with a snapshot: restored at open, written at destroy. */
static void test_open_restores(void **state)
{
	(void)state;
	char path[] = "/tmp/sipsd-test-location-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	struct location_cfg cfg;
	location_cfg_default(&cfg);
	snprintf(cfg.snapshot, sizeof(cfg.snapshot), "%s", path);
	char err[256];
	struct location *loc;
	assert_int_equal(location_open(&cfg, &loc, err, sizeof(err)), 0);
	struct loc_binding b = make("sip:kept@192.0.2.7", "c", 1);
	int64_t now = (int64_t)time(NULL);
	assert_int_equal(location_update(loc, str_from_cstr("sip:k@example.com"), &b, 600, now), 0);
	location_destroy(loc);
	assert_int_equal(location_open(&cfg, &loc, err, sizeof(err)), 0);
	struct loc_binding out[4];
	assert_int_equal(location_lookup(loc, str_from_cstr("sip:k@example.com"), now, out, 4), 1);
	location_destroy(loc);
	/* A damaged snapshot stops the start rather than being overwritten. */
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("not a snapshot\n", f);
	fclose(f);
	assert_int_equal(location_open(&cfg, &loc, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "damaged"));
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apply_rules),   cmocka_unit_test(test_apply_outbound_and_limit),
		cmocka_unit_test(test_text_round_trip), cmocka_unit_test(test_memory_store),
		cmocka_unit_test(test_snapshot),      cmocka_unit_test(test_open_restores),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
