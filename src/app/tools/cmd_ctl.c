/* cmd_ctl.c: `sipsctl stats|connections|registrations|reload`: ask a
 * running sipsd over its unix control socket. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sipsctl.h"

#define CTL_DEFAULT_SOCKET "/run/sipsd/control.sock"

int sipsctl_cmd_ctl(int argc, char **argv)
{
	const char *cmd = argv[0];
	const char *path = CTL_DEFAULT_SOCKET;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--control") && i + 1 < argc) {
			path = argv[++i];
		} else {
			fprintf(stderr, "usage: sipsctl %s [--control SOCKET]   (default %s)\n", cmd,
				CTL_DEFAULT_SOCKET);
			return SIPSCTL_USAGE;
		}
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "sipsctl %s: socket path too long\n", cmd);
		return SIPSCTL_USAGE;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "sipsctl %s: cannot reach sipsd at %s: %s\n", cmd, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return SIPSCTL_FAIL;
	}
	char line[64];
	int n = snprintf(line, sizeof(line), "%s\n", cmd);
	if (write(fd, line, (size_t)n) != n) {
		close(fd);
		return SIPSCTL_FAIL;
	}
	char buf[65536];
	int status = SIPSCTL_OK;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 10000) <= 0) {
			fprintf(stderr, "sipsctl %s: no answer within 10 s\n", cmd);
			status = SIPSCTL_FAIL;
			break;
		}
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r <= 0)
			break;
		fwrite(buf, 1, (size_t)r, stdout);
		if (r >= 6 && !memcmp(buf, "error:", 6))
			status = SIPSCTL_FAIL;
	}
	close(fd);
	return status;
}
