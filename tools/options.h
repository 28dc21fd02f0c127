/* Command-line options of the goulettefs daemon: parsing and validation.
 * Pure: no I/O beyond writing the error message into a caller buffer, so the
 * parser is unit-tested directly.  The names are a contract (README,
 * scripts): never rename an option. */
#ifndef GOULETTE_TOOLS_OPTIONS_H
#define GOULETTE_TOOLS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <goulette/log.h>

#define OPTIONS_NAME_MAX 63   /* bytes of a member name */
#define OPTIONS_HOST_MAX 255  /* bytes of a host name or address */
#define OPTIONS_MEMBERS_MAX 9 /* members in --initial-cluster */

struct options_hostport
{
    char host[OPTIONS_HOST_MAX + 1];
    uint16_t port; /* 1..65535 */
};

struct options_member
{
    char name[OPTIONS_NAME_MAX + 1];
    struct options_hostport peer;
};

struct options
{
    char name[OPTIONS_NAME_MAX + 1];     /* --name, default "default" */
    char *data_dir;                      /* --data-dir; owned */
    char *mount;                         /* --mount, or NULL; owned */
    struct options_hostport peer_listen; /* --peer-listen */
    struct options_hostport grpc_listen; /* --grpc-listen */
    unsigned n_members;                  /* --initial-cluster */
    struct options_member members[OPTIONS_MEMBERS_MAX];
    bool has_join;                     /* --join given */
    struct options_hostport join;      /* --join */
    bool allow_other;                  /* --allow-other */
    enum goulette_log_level log_level; /* --log-level, default info */
    unsigned snapshot_threshold;       /* --snapshot-threshold, default 1024 */
    uint64_t broker_suspect_ms;  /* --broker-suspect-after, default 60 s */
    uint64_t broker_down_ms;     /* --broker-down-after, default 120 s */
    uint64_t report_interval_ms; /* --report-interval, default 10 s */
};

enum options_result {
    OPTIONS_RUN = 0,     /* parsed: run the daemon */
    OPTIONS_HELP = 1,    /* --help: print usage to stdout, exit 0 */
    OPTIONS_VERSION = 2, /* --version: print version, exit 0 */
    OPTIONS_USAGE = 3,   /* bad command line: @err holds a one-line error */
};

/* Parse @argv into @o (which the caller then releases with options_fini,
 * whatever the result).  On OPTIONS_USAGE, @err (of @errlen bytes) holds a
 * one-line message without a trailing newline.  -ENOMEM is reported as
 * OPTIONS_USAGE with "out of memory".  Not reentrant: uses getopt_long. */
enum options_result options_parse(struct options *o,
                                  int argc,
                                  char **argv,
                                  char *err,
                                  size_t errlen);

void options_fini(struct options *o);

/* Parse "HOST:PORT" (HOST non-empty, may be [v6]; PORT 1..65535).
 * Errors: -EINVAL. */
int options_parse_hostport(const char *s, struct options_hostport *hp);

/* Member names: 1..OPTIONS_NAME_MAX bytes of [A-Za-z0-9._-], not starting
 * with '.' or '-'.  Returns true when @s is valid. */
bool options_name_valid(const char *s);

/* Parse a duration: a decimal number with a unit ms, s, m or h (a bare
 * number is seconds) into milliseconds.  Errors: -EINVAL. */
int options_parse_duration(const char *s, uint64_t *ms);

/* The usage text (for --help and usage errors). */
const char *options_usage(void);

#endif /* GOULETTE_TOOLS_OPTIONS_H */
