/* sipsctl.h: sub-commands of the sipsctl tool. Each returns the exit status. */
#ifndef SIPSD_APP_SIPSCTL_H
#define SIPSD_APP_SIPSCTL_H

/* Exit statuses shared by every sub-command. */
#define SIPSCTL_OK 0
#define SIPSCTL_FAIL 1
#define SIPSCTL_USAGE 2

int sipsctl_cmd_msg(int argc, char **argv);
int sipsctl_cmd_cert(int argc, char **argv);
int sipsctl_cmd_options(int argc, char **argv);
int sipsctl_cmd_register(int argc, char **argv);
int sipsctl_cmd_call(int argc, char **argv);
/* stats, connections, registrations, reload: argv[0] names which. */
int sipsctl_cmd_ctl(int argc, char **argv);
int sipsctl_cmd_bench(int argc, char **argv);
int sipsctl_cmd_probe(int argc, char **argv);

#endif
