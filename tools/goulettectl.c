/* goulettectl, the operator CLI: parses the global options and dispatches to
 * one subcommand (tools/ctl_<name>.c).  Owns the exit-status contract:
 * 0 success, 1 failure, 2 usage error. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

#define GOULETTECTL_VERSION "0.1.0"

struct subcommand
{
    const char *name;
    const char *summary;
    int (*main)(int argc, char **argv);
    /* Commands that talk to members take --endpoints. */
    int (*main_rpc)(const char *endpoints, int argc, char **argv);
};

static const struct subcommand subcommands[] = {
    {"ring", "show where topics land on a hash ring of brokers (offline)",
     ctl_ring_main, NULL},
    {"status", "this member's view of the cluster (gRPC)", NULL,
     ctl_status_main},
    {"members", "the members, their roles and addresses (gRPC)", NULL,
     ctl_members_main},
    {"member", "add, promote or remove a member (gRPC, leader)", NULL,
     ctl_member_main},
    {"transfer", "hand leadership to a member (gRPC, leader)", NULL,
     ctl_transfer_main},
    {"brokers", "a topic's replica set, leader first (gRPC)", NULL,
     ctl_brokers_main},
    {NULL, NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    const struct subcommand *s;
    fprintf(f,
            "Usage: goulettectl [--help] [--version] [--endpoints "
            "HOST:PORT,...] COMMAND [ARG]...\n"
            "Operate a goulettefs cluster.  --endpoints lists members' gRPC "
            "addresses\n(default " CTL_DEFAULT_ENDPOINTS
            "); each is tried until one answers.\n\nCommands:\n");
    for (s = subcommands; s->name != NULL; s++) {
        fprintf(f, "  %-10s %s\n", s->name, s->summary);
    }
    fprintf(f, "\nRun 'goulettectl COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    const struct subcommand *s;
    const char *endpoints = CTL_DEFAULT_ENDPOINTS;

    /* The one global option that takes a value comes before the command. */
    while (argc >= 2 && strncmp(argv[1], "--endpoints", 11) == 0) {
        if (argv[1][11] == '=') {
            endpoints = argv[1] + 12;
            argc -= 1;
            argv += 1;
        } else if (argv[1][11] == '\0' && argc >= 3) {
            endpoints = argv[2];
            argc -= 2;
            argv += 2;
        } else {
            fprintf(stderr, "goulettectl: --endpoints needs HOST:PORT,...\n");
            return 2;
        }
        if (endpoints[0] == '\0') {
            fprintf(stderr, "goulettectl: --endpoints is empty\n");
            return 2;
        }
    }

    if (argc < 2) {
        fprintf(stderr, "goulettectl: missing command\n");
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("goulettectl %s\n", GOULETTECTL_VERSION);
        return 0;
    }
    for (s = subcommands; s->name != NULL; s++) {
        if (strcmp(argv[1], s->name) == 0) {
            return s->main != NULL ? s->main(argc - 1, argv + 1)
                                   : s->main_rpc(endpoints, argc - 1, argv + 1);
        }
    }
    if (argv[1][0] == '-') {
        fprintf(stderr, "goulettectl: unknown option %s\n", argv[1]);
    } else {
        fprintf(stderr, "goulettectl: unknown command \"%s\"\n", argv[1]);
    }
    usage(stderr);
    return 2;
}
