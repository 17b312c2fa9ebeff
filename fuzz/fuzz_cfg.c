/* fuzz_cfg.c: libFuzzer target for the configuration file parser: any
 * bytes must give a configuration or an error naming a line, never a
 * crash or a read past a buffer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cfg/cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* cfg_load reads a path: hand it the input through a memfd. */
	int fd = memfd_create("fuzz_cfg", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (size && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	static struct cfg c;
	char err[512];
	err[0] = '\0';
	int rc = cfg_load(path, &c, err, sizeof(err));
	/* An error always says where: "PATH:LINE: ..." (or the open error). */
	if (rc < 0 && strncmp(err, path, strlen(path)) != 0)
		abort();
	close(fd);
	return 0;
}
