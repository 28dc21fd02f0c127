/* raft-sim: the command line of the deterministic Raft simulator.  Parses
 * options, runs seeds one after another (cluster.c), prints one line per
 * failing seed and the final tally, and re-runs a seed with its transcript
 * on request.  Exit status 0 only when every seed passed. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/raft.h>

#include "cluster.h"

struct bug_name
{
    const char *name;
    unsigned bit; /* RAFT_BUG_*, or 0 for the simulator's own runtime bug */
    enum sim_scenario scenario; /* the bias that exposes it fastest */
};

static const struct bug_name bugs[] = {
    {"commit-old-term", RAFT_BUG_COMMIT_OLD_TERM, SIM_SCENARIO_FIGURE8},
    {"vote-no-log-check", RAFT_BUG_VOTE_NO_LOG_CHECK, SIM_SCENARIO_ELECTIONS},
    {"read-no-quorum", RAFT_BUG_READ_NO_QUORUM, SIM_SCENARIO_STALE_READ},
    {"apply-twice", RAFT_BUG_APPLY_TWICE, SIM_SCENARIO_DEFAULT},
    {"no-persist-vote", RAFT_BUG_NO_PERSIST_VOTE, SIM_SCENARIO_ELECTIONS},
    /* Not a core bug: the simulated runtime breaks raft.h rule 3. */
    {"send-before-persist", 0, SIM_SCENARIO_ELECTIONS},
};

static const struct
{
    const char *name;
    enum sim_scenario scenario;
} scenarios[] = {
    {"default", SIM_SCENARIO_DEFAULT},
    {"elections", SIM_SCENARIO_ELECTIONS},
    {"figure8", SIM_SCENARIO_FIGURE8},
    {"stale-read", SIM_SCENARIO_STALE_READ},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: raft-sim [--seeds N] [--first-seed S] [--nodes 3|5]\n"
            "                [--steps K] [--faults LIST] [--scenario NAME]\n"
            "                [--trace] [--verbose] [--list-bugs]\n"
            "                [--skip-seeds LIST]"
#ifdef SIM_PLANTED_BUGS
            " [--bug NAME]"
#endif
            "\n"
            "  --faults    comma list of drop,dup,delay,reorder,partition,\n"
            "              oneway,crash,snapshot,conf,transfer,campaign,\n"
            "              saturate,\n"
            "              or all (default) or none\n"
            "  --scenario  default, elections, figure8, stale-read\n"
            "  --list-bugs print each planted bug and its scenario\n"
            "  --skip-seeds S1,S2,...  do not run these seeds (documented\n"
            "              core bugs, tests/sim/KNOWN_FAILURES.md)\n"
            "  --trace     print the transcript of each failing seed (of\n"
            "              the seed itself when --seeds 1)\n"
#ifdef SIM_PLANTED_BUGS
            "  --bug       commit-old-term, vote-no-log-check,\n"
            "              read-no-quorum, apply-twice, no-persist-vote,\n"
            "              or send-before-persist (the runtime's)\n"
            "              (also selects the scenario that exposes it)\n"
#endif
    );
}

static const char *scenario_name(enum sim_scenario s)
{
    size_t i;
    for (i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        if (scenarios[i].scenario == s) {
            return scenarios[i].name;
        }
    }
    return "?";
}

/* "bug scenario" per line, for tests/sim/check/planted.sh. */
static void list_bugs(void)
{
    size_t i;
    for (i = 0; i < sizeof bugs / sizeof bugs[0]; i++) {
        printf("%s %s\n", bugs[i].name, scenario_name(bugs[i].scenario));
    }
}

/* Whether @seed is in the comma list @list (digits and commas only). */
static bool skipped(const char *list, uint64_t seed)
{
    const char *p = list;
    while (*p != '\0') {
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (end != p && v == seed) {
            return true;
        }
        /* Only digits and commas get here: this always moves on. */
        p = *end == ',' ? end + 1 : end;
    }
    return false;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        return false;
    }
    *out = v;
    return true;
}

static bool find_scenario(const char *name, enum sim_scenario *out)
{
    size_t i;
    for (i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        if (strcmp(scenarios[i].name, name) == 0) {
            *out = scenarios[i].scenario;
            return true;
        }
    }
    return false;
}

#ifdef SIM_PLANTED_BUGS
static bool find_bug(const char *name, const struct bug_name **out)
{
    size_t i;
    for (i = 0; i < sizeof bugs / sizeof bugs[0]; i++) {
        if (strcmp(bugs[i].name, name) == 0) {
            *out = &bugs[i];
            return true;
        }
    }
    return false;
}
#endif

/* What the command line asked for. */
struct cli
{
    struct sim_options o;
    uint64_t seeds;   /* how many */
    uint64_t first;   /* first seed */
    bool trace;       /* transcripts of failing seeds (or of the only one) */
    bool verbose;     /* statistics per seed */
    const char *skip; /* --skip-seeds list, "" when none */
};

enum parse_result {
    PARSE_RUN = 0,  /* run the seeds */
    PARSE_DONE = 1, /* --help or --list-bugs: done, exit 0 */
    PARSE_BAD = 2,  /* usage error, exit 2 */
};

static enum parse_result parse_option(struct cli *cli,
                                      int opt,
                                      const char *arg,
                                      const struct bug_name **bug,
                                      bool *scenario_set)
{
    uint64_t v;
    switch (opt) {
    case 'n':
        return parse_u64(arg, &cli->seeds) ? PARSE_RUN : PARSE_BAD;
    case 's':
        return parse_u64(arg, &cli->first) ? PARSE_RUN : PARSE_BAD;
    case 'N':
        if (!parse_u64(arg, &v) || (v != 3 && v != 5)) {
            return PARSE_BAD;
        }
        cli->o.nodes = (unsigned)v;
        return PARSE_RUN;
    case 'k':
        return parse_u64(arg, &cli->o.steps) ? PARSE_RUN : PARSE_BAD;
    case 'f':
        return sim_cluster_parse_faults(arg, &cli->o.faults) == 0 ? PARSE_RUN
                                                                  : PARSE_BAD;
    case 'c':
        *scenario_set = true;
        return find_scenario(arg, &cli->o.scenario) ? PARSE_RUN : PARSE_BAD;
    case 'b':
#ifdef SIM_PLANTED_BUGS
        return find_bug(arg, bug) ? PARSE_RUN : PARSE_BAD;
#else
        fprintf(stderr,
                "raft-sim: --bug needs raft-sim-bugs (the core built with "
                "RAFT_PLANTED_BUGS)\n");
        return PARSE_BAD;
#endif
    case 't':
        cli->trace = true;
        return PARSE_RUN;
    case 'v':
        cli->verbose = true;
        return PARSE_RUN;
    case 'x':
        cli->skip = arg;
        return strspn(arg, "0123456789,") == strlen(arg) ? PARSE_RUN
                                                         : PARSE_BAD;
    case 'h':
        usage(stdout);
        return PARSE_DONE;
    case 'l':
        list_bugs();
        return PARSE_DONE;
    default:
        return PARSE_BAD;
    }
}

static enum parse_result parse(int argc, char **argv, struct cli *cli)
{
    static const struct option long_options[] = {
        {"seeds", required_argument, NULL, 'n'},
        {"first-seed", required_argument, NULL, 's'},
        {"nodes", required_argument, NULL, 'N'},
        {"steps", required_argument, NULL, 'k'},
        {"faults", required_argument, NULL, 'f'},
        {"scenario", required_argument, NULL, 'c'},
        {"bug", required_argument, NULL, 'b'},
        {"trace", no_argument, NULL, 't'},
        {"verbose", no_argument, NULL, 'v'},
        {"list-bugs", no_argument, NULL, 'l'},
        {"skip-seeds", required_argument, NULL, 'x'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct bug_name *bug = NULL;
    bool scenario_set = false;
    enum parse_result pr;
    int opt;

    memset(cli, 0, sizeof *cli);
    cli->o.nodes = 3;
    cli->o.steps = 20000;
    cli->o.faults = SIM_F_ALL;
    cli->o.scenario = SIM_SCENARIO_DEFAULT;
    cli->seeds = 100;
    cli->first = 1;
    cli->skip = "";
    while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        pr = parse_option(cli, opt, optarg, &bug, &scenario_set);
        if (pr != PARSE_RUN) {
            return pr;
        }
    }
    if (optind != argc) {
        return PARSE_BAD;
    }
    if (bug != NULL) {
        cli->o.bugs = bug->bit;
        cli->o.send_before_persist = bug->bit == 0;
        if (!scenario_set) {
            cli->o.scenario = bug->scenario;
        }
    }
    return PARSE_RUN;
}

static void print_stats(uint64_t seed, const struct sim_result *r)
{
    printf(
        "seed %llu: %s, %llu steps, time %llu, %llu msgs, %llu acked, "
        "%llu reads, %llu leaders, %llu crashes, %llu installs, %llu conf "
        "changes (%llu leader removals asked), %llu transfers\n",
        (unsigned long long)seed, r->failed ? "failed" : "ok",
        (unsigned long long)r->steps, (unsigned long long)r->time,
        (unsigned long long)r->msgs, (unsigned long long)r->acked,
        (unsigned long long)r->served, (unsigned long long)r->leaders,
        (unsigned long long)r->crashes, (unsigned long long)r->installs,
        (unsigned long long)r->conf_accepted,
        (unsigned long long)r->leader_removals,
        (unsigned long long)r->transfers);
}

/* Run every seed; returns the exit status. */
static int run(struct cli *cli)
{
    struct sim_result r;
    uint64_t passed = 0;
    uint64_t failed = 0;
    uint64_t i;
    for (i = 0; i < cli->seeds; i++) {
        uint64_t seed = cli->first + i;
        if (skipped(cli->skip, seed)) {
            printf(
                "seed %llu: skipped (--skip-seeds: a documented core bug, "
                "see tests/sim/KNOWN_FAILURES.md)\n",
                (unsigned long long)seed);
            continue;
        }
        cli->o.trace = cli->trace && cli->seeds == 1 ? stdout : NULL;
        if (sim_cluster_run(seed, &cli->o, &r) != 0) {
            fprintf(stderr, "raft-sim: out of memory\n");
            return 2;
        }
        if (r.failed) {
            failed++;
            printf("seed %llu: FAIL %s at step %llu: %s\n",
                   (unsigned long long)seed, r.property,
                   (unsigned long long)r.step, r.detail);
            if (cli->trace && cli->seeds != 1) {
                /* Same seed, same run: this time with its transcript. */
                cli->o.trace = stdout;
                sim_cluster_run(seed, &cli->o, &r);
            }
        } else {
            passed++;
        }
        if (cli->verbose) {
            print_stats(seed, &r);
        }
        fflush(stdout);
    }
    printf("%llu passed, %llu failed\n", (unsigned long long)passed,
           (unsigned long long)failed);
    return failed == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct cli cli;
    switch (parse(argc, argv, &cli)) {
    case PARSE_RUN:
        return run(&cli);
    case PARSE_DONE:
        return 0;
    case PARSE_BAD:
        break;
    }
    usage(stderr);
    return 2;
}
