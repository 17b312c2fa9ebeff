/* sipsctl.c: the sipsctl tool's entry point and sub-command dispatch. */
#include <stdio.h>
#include <string.h>

#include "sipsctl.h"

struct sipsctl_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct sipsctl_command commands[] = {
	{"msg", sipsctl_cmd_msg, "parse SIP messages from files and report their validity"},
	{"cert", sipsctl_cmd_cert, "print a certificate's SIP domain identities and verdict"},
	{"options", sipsctl_cmd_options, "send OPTIONS over UDP, TCP or TLS and print the answer"},
	{"register", sipsctl_cmd_register, "register an AOR at its proxy (a UA without a certificate)"},
	{"call", sipsctl_cmd_call, "place a call, or with --answer take calls on a registration flow"},
	{"probe", sipsctl_cmd_probe, "audit a SIP domain: RFC 3263 targets, TLS identity, OPTIONS"},
	{"bench", sipsctl_cmd_bench, "load generator: UAS, UAC (calls/s, setup time), idle connections"},
	{"stats", sipsctl_cmd_ctl, "counters of a running sipsd (control socket)"},
	{"connections", sipsctl_cmd_ctl, "open connections of a running sipsd with peer identities"},
	{"registrations", sipsctl_cmd_ctl, "registered bindings of a running sipsd"},
	{"reload", sipsctl_cmd_ctl, "ask a running sipsd to reload its configuration"},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: sipsctl COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return SIPSCTL_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return SIPSCTL_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "sipsctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return SIPSCTL_USAGE;
}
