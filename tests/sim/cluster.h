/* One simulated run: builds a cluster of 3 or 5 nodes from a seed, pops one
 * event per step from the virtual clock, drives the faults (partitions,
 * one-way cuts, crashes), the administrator (membership changes, leader
 * transfers) and the clients, then heals everything and checks liveness.
 * Everything is derived from the seed: two runs of one seed are identical. */
#ifndef SIM_CLUSTER_H
#define SIM_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Fault and activity classes, for --faults. */
enum sim_fault {
    SIM_F_DROP = 1 << 0,      /* messages lost */
    SIM_F_DUP = 1 << 1,       /* messages delivered twice */
    SIM_F_DELAY = 1 << 2,     /* variable latency, some very slow messages */
    SIM_F_REORDER = 1 << 3,   /* links need not be FIFO */
    SIM_F_PARTITION = 1 << 4, /* symmetric partitions, isolated leaders */
    SIM_F_ONEWAY = 1 << 5,    /* one-way link cuts */
    SIM_F_CRASH = 1 << 6,     /* crash/restart, also inside a write */
    SIM_F_SNAPSHOT = 1 << 7,  /* snapshots, compaction, InstallSnapshot */
    SIM_F_CONF = 1 << 8,      /* add learner, promote, remove */
    SIM_F_TRANSFER = 1 << 9,  /* leadership transfers */
    SIM_F_CAMPAIGN = 1 << 10, /* forced campaigns (RAFT_EVENT_CAMPAIGN) */
    SIM_F_SATURATE = 1 << 11, /* saturated links: slow and lossy */
    SIM_F_ALL = (1 << 12) - 1,
};

/* Parse "drop,dup,..." or "all" or "none"; returns -1 on an unknown name. */
int sim_cluster_parse_faults(const char *list, unsigned *faults);

/* Scenario biases (the checkers never change). */
enum sim_scenario {
    SIM_SCENARIO_DEFAULT = 0,
    SIM_SCENARIO_ELECTIONS,  /* many elections, crashes, long delays */
    SIM_SCENARIO_FIGURE8,    /* one entry per append, leaders crash often */
    SIM_SCENARIO_STALE_READ, /* isolated leaders, transfers, many reads */
};

struct sim_options
{
    unsigned nodes;           /* 3 or 5 voters at the start */
    uint64_t steps;           /* steps of the faulty phase */
    unsigned faults;          /* enum sim_fault mask */
    unsigned bugs;            /* RAFT_BUG_* for config.planted_bugs */
    bool send_before_persist; /* planted runtime bug (raft.h rule 3) */
    enum sim_scenario scenario;
    FILE *trace; /* NULL: no transcript */
};

struct sim_result
{
    bool failed;
    const char *property; /* SIM_P_* when failed */
    uint64_t step;        /* step of the violation */
    char detail[256];
    uint64_t steps;   /* steps run, heal phase included */
    uint64_t time;    /* virtual time at the end */
    uint64_t acked;   /* acknowledged writes */
    uint64_t served;  /* reads served */
    uint64_t leaders; /* distinct terms with a leader */
    uint64_t crashes;
    uint64_t conf_accepted;   /* membership changes appended */
    uint64_t leader_removals; /* removals of the leader issued */
    uint64_t transfers;       /* transfers issued */
    uint64_t installs;        /* snapshots installed by followers */
    uint64_t msgs;            /* messages sent */
};

/* Run @seed.  Returns 0 (the outcome is in @r) or -ENOMEM. */
int sim_cluster_run(uint64_t seed,
                    const struct sim_options *o,
                    struct sim_result *r);

#endif /* SIM_CLUSTER_H */
