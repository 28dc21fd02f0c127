/* Parses and validates the goulettefs command line.  Owns the option names
 * and defaults; knows nothing of what the daemon does with them. */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_NAME "default"
#define DEFAULT_PEER_LISTEN "127.0.0.1:7001"
#define DEFAULT_GRPC_LISTEN "127.0.0.1:50052"

static const char usage_text[] =
    "Usage: goulettefs [OPTION]...\n"
    "Run one goulettefs member in the foreground: the Goulette metadata\n"
    "store, replicated with Raft, mounted with FUSE and served over gRPC.\n"
    "\n"
    "  --name NAME                 member name (default: default)\n"
    "  --data-dir DIR              data directory (default: ./NAME.goulette)\n"
    "  --mount DIR                 mount the metadata tree at DIR\n"
    "  --allow-other               let other users access the mount\n"
    "  --peer-listen HOST:PORT     Raft peer address "
    "(default: " DEFAULT_PEER_LISTEN
    ")\n"
    "  --grpc-listen HOST:PORT     gRPC address "
    "(default: " DEFAULT_GRPC_LISTEN
    ")\n"
    "  --initial-cluster NAME=HOST:PORT,...\n"
    "                              peer addresses of the founding members\n"
    "                              (default: this member alone)\n"
    "  --join HOST:PORT            join a running cluster through the gRPC\n"
    "                              address of its leader\n"
    "  --log-level LEVEL           debug, info, warn or error (default: info)\n"
    "  --snapshot-threshold N      entries applied between snapshots, which\n"
    "                              compact the log (default: 1024)\n"
    "  --broker-suspect-after DURATION\n"
    "                              a broker silent this long is suspicious\n"
    "                              (default: 60s; units ms, s, m, h)\n"
    "  --broker-down-after DURATION\n"
    "                              a broker silent this long is down and its\n"
    "                              topics are re-placed (default: 120s)\n"
    "  --report-interval DURATION  a client's unreachable report moves a "
    "topic\n"
    "                              only if its assignment is this old\n"
    "                              (default: 10s)\n"
    "  --help                      print this help and exit\n"
    "  --version                   print the version and exit\n";

const char *options_usage(void)
{
    return usage_text;
}

enum {
    OPT_NAME = 256,
    OPT_DATA_DIR,
    OPT_MOUNT,
    OPT_ALLOW_OTHER,
    OPT_PEER_LISTEN,
    OPT_GRPC_LISTEN,
    OPT_INITIAL_CLUSTER,
    OPT_JOIN,
    OPT_LOG_LEVEL,
    OPT_SNAPSHOT_THRESHOLD,
    OPT_BROKER_SUSPECT,
    OPT_BROKER_DOWN,
    OPT_REPORT_INTERVAL,
    OPT_HELP,
    OPT_VERSION,
};

static const struct option long_options[] = {
    {"name", required_argument, NULL, OPT_NAME},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"mount", required_argument, NULL, OPT_MOUNT},
    {"allow-other", no_argument, NULL, OPT_ALLOW_OTHER},
    {"peer-listen", required_argument, NULL, OPT_PEER_LISTEN},
    {"grpc-listen", required_argument, NULL, OPT_GRPC_LISTEN},
    {"initial-cluster", required_argument, NULL, OPT_INITIAL_CLUSTER},
    {"join", required_argument, NULL, OPT_JOIN},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"snapshot-threshold", required_argument, NULL, OPT_SNAPSHOT_THRESHOLD},
    {"broker-suspect-after", required_argument, NULL, OPT_BROKER_SUSPECT},
    {"broker-down-after", required_argument, NULL, OPT_BROKER_DOWN},
    {"report-interval", required_argument, NULL, OPT_REPORT_INTERVAL},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static enum options_result
usage_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return OPTIONS_USAGE;
}

bool options_name_valid(const char *s)
{
    size_t i;
    size_t n = strlen(s);
    if (n == 0 || n > OPTIONS_NAME_MAX || s[0] == '.' || s[0] == '-') {
        return false;
    }
    for (i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static int parse_port(const char *s, uint16_t *port)
{
    unsigned long v = 0;
    size_t i;
    size_t n = strlen(s);
    if (n == 0 || n > 5) {
        return -EINVAL;
    }
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -EINVAL;
        }
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v == 0 || v > 65535) {
        return -EINVAL;
    }
    *port = (uint16_t)v;
    return 0;
}

int options_parse_hostport(const char *s, struct options_hostport *hp)
{
    const char *colon;
    const char *host = s;
    size_t hostlen;

    if (s[0] == '[') {
        /* [v6addr]:port */
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':') {
            return -EINVAL;
        }
        host = s + 1;
        hostlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            return -EINVAL;
        }
        hostlen = (size_t)(colon - s);
        /* An unbracketed host may not contain ':' (IPv6 needs brackets). */
        if (memchr(s, ':', hostlen) != NULL) {
            return -EINVAL;
        }
    }
    if (hostlen == 0 || hostlen > OPTIONS_HOST_MAX) {
        return -EINVAL;
    }
    if (memchr(host, ' ', hostlen) != NULL ||
        memchr(host, '/', hostlen) != NULL) {
        return -EINVAL;
    }
    if (parse_port(colon + 1, &hp->port) != 0) {
        return -EINVAL;
    }
    memcpy(hp->host, host, hostlen);
    hp->host[hostlen] = '\0';
    return 0;
}

static int parse_log_level(const char *s, enum goulette_log_level *level)
{
    static const struct
    {
        const char *name;
        enum goulette_log_level level;
    } levels[] = {
        {"debug", GOULETTE_LOG_DEBUG},
        {"info", GOULETTE_LOG_INFO},
        {"warn", GOULETTE_LOG_WARN},
        {"error", GOULETTE_LOG_ERROR},
    };
    size_t i;
    for (i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        if (strcmp(s, levels[i].name) == 0) {
            *level = levels[i].level;
            return 0;
        }
    }
    return -EINVAL;
}

/* Parse "NAME=HOST:PORT,..." into o->members. */
static enum options_result parse_cluster(struct options *o,
                                         const char *arg,
                                         char *err,
                                         size_t errlen)
{
    const char *p = arg;
    o->n_members = 0;
    if (*p == '\0') {
        return usage_error(err, errlen, "--initial-cluster is empty");
    }
    while (*p != '\0') {
        char item[OPTIONS_NAME_MAX + OPTIONS_HOST_MAX + 16];
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        struct options_member *m;
        char *eq;
        unsigned i;

        if (len == 0 || len >= sizeof item) {
            return usage_error(err, errlen,
                               "--initial-cluster: bad member \"%.*s\"",
                               (int)(len > 80 ? 80 : len), p);
        }
        memcpy(item, p, len);
        item[len] = '\0';
        eq = strchr(item, '=');
        if (eq == NULL) {
            return usage_error(
                err, errlen, "--initial-cluster: \"%s\" is not NAME=HOST:PORT",
                item);
        }
        *eq = '\0';
        if (!options_name_valid(item)) {
            return usage_error(
                err, errlen, "--initial-cluster: bad member name \"%s\"", item);
        }
        if (o->n_members == OPTIONS_MEMBERS_MAX) {
            return usage_error(err, errlen,
                               "--initial-cluster: more than %d members",
                               OPTIONS_MEMBERS_MAX);
        }
        for (i = 0; i < o->n_members; i++) {
            if (strcmp(o->members[i].name, item) == 0) {
                return usage_error(err, errlen,
                                   "--initial-cluster: member \"%s\" is "
                                   "listed twice",
                                   item);
            }
        }
        m = &o->members[o->n_members];
        if (options_parse_hostport(eq + 1, &m->peer) != 0) {
            return usage_error(err, errlen,
                               "--initial-cluster: bad address \"%s\" for "
                               "member \"%s\" (want HOST:PORT)",
                               eq + 1, item);
        }
        strcpy(m->name, item);
        o->n_members++;
        p += len;
        if (*p == ',') {
            p++;
            if (*p == '\0') {
                return usage_error(err, errlen,
                                   "--initial-cluster ends with a comma");
            }
        }
    }
    return OPTIONS_RUN;
}

static int set_string(char **dst, const char *src)
{
    char *copy = strdup(src);
    if (copy == NULL) {
        return -ENOMEM;
    }
    free(*dst);
    *dst = copy;
    return 0;
}

static void defaults(struct options *o)
{
    memset(o, 0, sizeof *o);
    strcpy(o->name, DEFAULT_NAME);
    options_parse_hostport(DEFAULT_PEER_LISTEN, &o->peer_listen);
    options_parse_hostport(DEFAULT_GRPC_LISTEN, &o->grpc_listen);
    o->log_level = GOULETTE_LOG_INFO;
    o->snapshot_threshold = 1024;
    o->broker_suspect_ms = 60 * 1000;
    o->report_interval_ms = 10 * 1000;
    o->broker_down_ms = 120 * 1000;
}

int options_parse_duration(const char *s, uint64_t *ms)
{
    static const struct
    {
        const char *unit;
        uint64_t ms;
    } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"", 1000}};
    uint64_t v = 0;
    size_t i, n = 0;

    while (s[n] >= '0' && s[n] <= '9') {
        if (v > 1000000000ULL) {
            return -EINVAL;
        }
        v = v * 10 + (uint64_t)(s[n] - '0');
        n++;
    }
    if (n == 0) {
        return -EINVAL;
    }
    for (i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(s + n, units[i].unit) == 0) {
            *ms = v * units[i].ms;
            return *ms > 0 ? 0 : -EINVAL;
        }
    }
    return -EINVAL;
}

/* Checks that need every option: defaults that depend on --name, and the
 * consistency of --initial-cluster with --name and --join. */
static enum options_result finish(struct options *o,
                                  const char *cluster_arg,
                                  char *err,
                                  size_t errlen)
{
    unsigned i;
    bool self = false;

    if (cluster_arg != NULL) {
        enum options_result r = parse_cluster(o, cluster_arg, err, errlen);
        if (r != OPTIONS_RUN) {
            return r;
        }
        if (o->has_join) {
            return usage_error(err, errlen,
                               "--join and --initial-cluster exclude each "
                               "other");
        }
        for (i = 0; i < o->n_members; i++) {
            if (strcmp(o->members[i].name, o->name) == 0) {
                self = true;
            }
        }
        if (!self) {
            return usage_error(err, errlen,
                               "--initial-cluster does not list this member "
                               "(\"%s\")",
                               o->name);
        }
    } else {
        /* Default: a cluster of this member alone, at its peer address. */
        o->n_members = 1;
        strcpy(o->members[0].name, o->name);
        o->members[0].peer = o->peer_listen;
    }
    if (o->data_dir == NULL) {
        char dir[OPTIONS_NAME_MAX + 16];
        snprintf(dir, sizeof dir, "./%s.goulette", o->name);
        if (set_string(&o->data_dir, dir) != 0) {
            return usage_error(err, errlen, "out of memory");
        }
    }
    return OPTIONS_RUN;
}

enum options_result options_parse(struct options *o,
                                  int argc,
                                  char **argv,
                                  char *err,
                                  size_t errlen)
{
    const char *cluster_arg = NULL;
    int c;

    defaults(o);
    opterr = 0; /* we print our own one-line errors */
    optind = 1;
    while ((c = getopt_long(argc, argv, ":", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_NAME:
            if (!options_name_valid(optarg)) {
                return usage_error(err, errlen,
                                   "bad --name \"%s\": use 1-%d characters "
                                   "of A-Z a-z 0-9 . _ -",
                                   optarg, OPTIONS_NAME_MAX);
            }
            strcpy(o->name, optarg);
            break;
        case OPT_DATA_DIR:
        case OPT_MOUNT:
            if (optarg[0] == '\0') {
                return usage_error(err, errlen, "%s needs a directory",
                                   argv[optind - 1]);
            }
            if (set_string(c == OPT_MOUNT ? &o->mount : &o->data_dir, optarg) !=
                0) {
                return usage_error(err, errlen, "out of memory");
            }
            break;
        case OPT_ALLOW_OTHER:
            o->allow_other = true;
            break;
        case OPT_PEER_LISTEN:
        case OPT_GRPC_LISTEN:
        case OPT_JOIN: {
            struct options_hostport *hp = c == OPT_PEER_LISTEN ? &o->peer_listen
                                          : c == OPT_GRPC_LISTEN
                                              ? &o->grpc_listen
                                              : &o->join;
            if (options_parse_hostport(optarg, hp) != 0) {
                return usage_error(err, errlen,
                                   "bad address \"%s\" (want HOST:PORT, port "
                                   "1-65535)",
                                   optarg);
            }
            if (c == OPT_JOIN) {
                o->has_join = true;
            }
            break;
        }
        case OPT_INITIAL_CLUSTER:
            cluster_arg = optarg;
            break;
        case OPT_LOG_LEVEL:
            if (parse_log_level(optarg, &o->log_level) != 0) {
                return usage_error(err, errlen,
                                   "bad --log-level \"%s\" (want debug, "
                                   "info, warn or error)",
                                   optarg);
            }
            break;
        case OPT_SNAPSHOT_THRESHOLD: {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' || v < 2 ||
                v > 100000000) {
                return usage_error(err, errlen,
                                   "bad --snapshot-threshold \"%s\" (want "
                                   "2..100000000)",
                                   optarg);
            }
            o->snapshot_threshold = (unsigned)v;
            break;
        }
        case OPT_BROKER_SUSPECT:
        case OPT_BROKER_DOWN:
        case OPT_REPORT_INTERVAL:
            if (options_parse_duration(
                    optarg, c == OPT_BROKER_SUSPECT ? &o->broker_suspect_ms
                            : c == OPT_BROKER_DOWN
                                ? &o->broker_down_ms
                                : &o->report_interval_ms) != 0) {
                return usage_error(err, errlen,
                                   "bad duration \"%s\" for %s (want e.g. "
                                   "500ms, 60s, 2m)",
                                   optarg, argv[optind - 1]);
            }
            break;
        case OPT_HELP:
            return OPTIONS_HELP;
        case OPT_VERSION:
            return OPTIONS_VERSION;
        case ':':
            return usage_error(err, errlen, "option %s needs a value",
                               argv[optind - 1]);
        default:
            return usage_error(err, errlen, "unknown option %s",
                               argv[optind - 1]);
        }
    }
    if (optind < argc) {
        return usage_error(err, errlen, "unexpected argument \"%s\"",
                           argv[optind]);
    }
    if (o->broker_suspect_ms >= o->broker_down_ms) {
        return usage_error(err, errlen,
                           "--broker-suspect-after must be shorter than "
                           "--broker-down-after");
    }
    return finish(o, cluster_arg, err, errlen);
}

void options_fini(struct options *o)
{
    free(o->data_dir);
    free(o->mount);
    o->data_dir = NULL;
    o->mount = NULL;
}
