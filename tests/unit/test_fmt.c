/* test_fmt.c: the printf-free formatters of hot paths give what printf gives. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/str.h"
#include "transport/transport.h"

static void test_fmt_numbers(void **state)
{
	(void)state;
	static const uint64_t vals[] = {0,
					1,
					9,
					10,
					255,
					5060,
					65535,
					4294967295ull,
					18446744073709551615ull,
					1234567890123ull};
	char got[32], want[32];
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		size_t n = fmt_u64(got, vals[i]);
		got[n] = '\0';
		snprintf(want, sizeof(want), "%llu", (unsigned long long)vals[i]);
		assert_string_equal(got, want);
		n = fmt_hex(got, vals[i], 16);
		got[n] = '\0';
		snprintf(want, sizeof(want), "%016llx", (unsigned long long)vals[i]);
		assert_string_equal(got, want);
		n = fmt_hex(got, vals[i] & 0xff, 2);
		got[n] = '\0';
		snprintf(want, sizeof(want), "%02x", (unsigned)(vals[i] & 0xff));
		assert_string_equal(got, want);
	}
	assert_int_equal(fmt_str(got, STR_NULL), 0);
	assert_int_equal(fmt_str(got, STR_LIT("abc")), 3);
	assert_memory_equal(got, "abc", 3);
}

/* What tp_addr_format wrote before it stopped using printf. */
static void addr_format_printf(const struct sockaddr *sa, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, size, "%s:%u", host, (unsigned)ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, size, "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
	} else {
		snprintf(buf, size, "?");
	}
}

static void test_addr_format(void **state)
{
	(void)state;
	static const char *const addrs[] = {"127.0.0.1:5060",
					    "0.0.0.0:0",
					    "255.255.255.255:65535",
					    "10.1.20.255:5061",
					    "[::1]:5060",
					    "[2001:db8::7]:0",
					    "[fe80::1:2:3:4]:65535",
					    "[::ffff:192.0.2.1]:5061"};
	static const size_t sizes[] = {64, 1, 2, 5, 10, 14, 15, 16, 22};
	char got[64], want[64];
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		struct sockaddr_storage ss;
		socklen_t len;
		assert_int_equal(tp_addr_parse(addrs[i], 0, &ss, &len), 0);
		for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
			memset(got, 'x', sizeof(got));
			tp_addr_format((struct sockaddr *)&ss, got, sizes[k]);
			addr_format_printf((struct sockaddr *)&ss, want, sizes[k]);
			assert_string_equal(got, want);
		}
		tp_addr_format((struct sockaddr *)&ss, got, sizeof(got));
		assert_string_equal(got, addrs[i]);
	}
	struct sockaddr_storage un = {.ss_family = AF_UNIX};
	tp_addr_format((struct sockaddr *)&un, got, sizeof(got));
	assert_string_equal(got, "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fmt_numbers),
	    cmocka_unit_test(test_addr_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
