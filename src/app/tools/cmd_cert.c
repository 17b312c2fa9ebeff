/* cmd_cert.c: `sipsctl cert` (being written; see issue on TLS identity). */
#include <stdio.h>

#include "sipsctl.h"

int sipsctl_cmd_cert(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "sipsctl cert: not available in this build yet\n");
	return SIPSCTL_USAGE;
}
