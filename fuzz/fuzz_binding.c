/* fuzz_binding.c: libFuzzer target for the text form of a location binding
 * (what sipsd reads back from Redis and from the snapshot file: input it
 * does not control). A decoded binding encodes and decodes again to the
 * same fields; an input starting "#snap\n" is a whole snapshot file, loaded
 * into a memory store through a temporary file. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/binding.h"
#include "store/location.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_binding: %s:%d: check failed: %s\n", __FILE__,        \
				__LINE__, #cond);                                                  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static void snapshot_case(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/fuzz-binding-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return;
	bool written = write(fd, data, size) == (ssize_t)size;
	close(fd);
	struct location *loc;
	if (written && location_create(&loc) == 0) {
		unsigned dropped = 0;
		int n = location_snapshot_load(loc, path, 1800000000, &dropped);
		unsigned aors, bindings;
		location_counts(loc, &aors, &bindings);
		FUZZ_CHECK(n < 0 ? bindings == 0 : bindings <= (unsigned)n);
		location_destroy(loc);
	}
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size >= 6 && !memcmp(data, "#snap\n", 6)) {
		snapshot_case(data + 6, size - 6);
		return 0;
	}
	struct loc_binding b, again;
	if (loc_binding_decode((const char *)data, size, &b) < 0)
		return 0;
	char text[LOC_BINDING_TEXT_MAX];
	int n = loc_binding_encode(&b, text, sizeof(text));
	FUZZ_CHECK(n > 0);
	FUZZ_CHECK(loc_binding_decode(text, (size_t)n, &again) == 0);
	FUZZ_CHECK(!strcmp(b.contact, again.contact) && !strcmp(b.call_id, again.call_id));
	FUZZ_CHECK(!strcmp(b.instance, again.instance) && !strcmp(b.path, again.path));
	FUZZ_CHECK(b.reg_id == again.reg_id && b.cseq == again.cseq && b.q1000 == again.q1000);
	FUZZ_CHECK(b.expires_at == again.expires_at && b.flow.proto == again.flow.proto);
	FUZZ_CHECK(b.flow.node == again.flow.node && b.flow.worker == again.flow.worker &&
		   b.flow.conn_id == again.flow.conn_id);
	FUZZ_CHECK(b.flow.remote_len == again.flow.remote_len &&
		   !memcmp(&b.flow.remote, &again.flow.remote, b.flow.remote_len));
	char key[LOC_MAX_CONTACT + LOC_MAX_INSTANCE + 16];
	FUZZ_CHECK(loc_binding_key(&b, key, sizeof(key)) > 0);
	return 0;
}
