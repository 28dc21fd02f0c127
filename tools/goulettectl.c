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
};

static const struct subcommand subcommands[] = {
    {"ring", "show where topics land on a hash ring of brokers (offline)",
     ctl_ring_main},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    const struct subcommand *s;
    fprintf(f,
            "Usage: goulettectl [--help] [--version] COMMAND [ARG]...\n"
            "Operate a goulettefs cluster.\n\nCommands:\n");
    for (s = subcommands; s->name != NULL; s++) {
        fprintf(f, "  %-10s %s\n", s->name, s->summary);
    }
    fprintf(f, "\nRun 'goulettectl COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    const struct subcommand *s;

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
            return s->main(argc - 1, argv + 1);
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
