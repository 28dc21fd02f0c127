/* One simulated member: a raft core plus the runtime that executes its
 * updates exactly as raft.h's rules say.  Owns the node's "disk" (what
 * survives a crash: hard state, log, snapshot, snapshot staging area and
 * the state machine, which like goulettefs's store applies an entry and
 * records the applied index atomically) and its volatile state (the core,
 * the write queue of updates not yet executed, the log as the core handed
 * it out).  Execution is asynchronous: each update is deep-copied into a
 * FIFO write queue and executed when its disk write completes, so the core
 * keeps stepping meanwhile, and a crash loses every queued update. */
#ifndef SIM_NODE_H
#define SIM_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include <goulette/raft.h>

#include "checker.h"
#include "clock.h"
#include "log.h"
#include "network.h"
#include "prng.h"
#include "sm.h"
#include "trace.h"

struct sim_workload;

/* What the runtime knows of the world; every pointer borrowed. */
struct sim_env
{
    uint64_t seed;
    struct sim_clock *clock;
    struct sim_net *net;
    struct sim_prng *disk_prng; /* write latency and crash points */
    struct sim_prng *net_prng;  /* network faults */
    struct sim_checker *checker;
    struct sim_trace *trace;
    struct sim_workload *workload;
    struct raft_config raft;     /* template: id and seed set per node */
    uint64_t disk_delay_max;     /* time units per write */
    unsigned crash_in_write_pm;  /* per mille of writes interrupted */
    bool send_before_persist;    /* planted runtime bug: rule 3 broken */
    unsigned defer_persisted_pm; /* per mille of PERSISTED told late */
    unsigned trailing_max;       /* entries kept below a snapshot */
    uint64_t restart_min;        /* downtime after a crash in a write */
    uint64_t restart_max;
};

struct sim_snapshot
{
    bool has;
    struct raft_snapshot_meta meta; /* meta.conf owned */
    struct goulette_buf data;       /* owned */
};

struct sim_staging
{
    raft_index index; /* snapshot being received, 0: none */
    raft_term term;
    uint64_t size;
    uint64_t filled;     /* bytes [0, filled) written */
    unsigned char *data; /* size bytes; owned */
};

struct sim_disk
{
    struct raft_hard_state hs;
    struct sim_log log;
    struct sim_snapshot snap;
    struct sim_staging staging;
    struct sim_sm sm;
};

struct sim_work; /* one queued update, node.c */

struct sim_node
{
    raft_id id;
    bool exists;          /* created (bootstrap or added) */
    bool up;              /* running, not crashed */
    uint64_t incarnation; /* bumped at every start */
    struct raft raft;     /* valid while up */
    struct sim_disk disk;
    struct sim_log mem;    /* the core's log as handed out; while up */
    struct sim_work *head; /* write queue; owned */
    struct sim_work *tail;
    bool disk_busy;        /* a SIM_EV_DISK is scheduled */
    uint64_t persisted_at; /* time of the last deferred PERSISTED: reports
                              keep their order */
    enum raft_state state; /* soft state from the last update */
    raft_id leader;
    raft_term term;
    raft_index commit;
    uint64_t crashes;
    uint64_t installs; /* snapshots installed */
};

/* Create @id.  With @bootstrap non-NULL, write entry 1 (term 1, CONF) on
 * its disk as raft.h asks of a founding member; otherwise it starts empty
 * and learns from the leader.  Then start it.  Errors: -ENOMEM, or a
 * negative error from the core. */
int sim_node_create(struct sim_node *n,
                    raft_id id,
                    struct sim_env *env,
                    const struct raft_configuration *bootstrap);

/* Start a stopped node from its disk (raft_init + START) and schedule its
 * ticks.  Errors: as raft_init and raft_step. */
int sim_node_start(struct sim_node *n, struct sim_env *env);

/* Crash: volatile state and unexecuted updates are lost. */
void sim_node_crash(struct sim_node *n, struct sim_env *env);

/* Free everything, disk included. */
void sim_node_destroy(struct sim_node *n);

/* Feed one event to the core and queue the update it hands back.  Does
 * nothing when the node is down.  A core error is recorded as a violation
 * of the runtime contract. */
void sim_node_step(struct sim_node *n,
                   struct sim_env *env,
                   const struct raft_event *event);

/* A message arrived (borrowed). */
void sim_node_receive(struct sim_node *n,
                      struct sim_env *env,
                      const struct raft_message *m);

/* The disk finished the head of the write queue: execute that update. */
void sim_node_disk_done(struct sim_node *n, struct sim_env *env);

/* Tell the core, late, that entries up to (index, term) are durable. */
void sim_node_persisted(struct sim_node *n,
                        struct sim_env *env,
                        raft_index index,
                        raft_term term);

/* Take a snapshot of the state machine and tell the core. */
void sim_node_snapshot(struct sim_node *n, struct sim_env *env);

/* One tick of logical time (RAFT_EVENT_TICK). */
void sim_node_tick(struct sim_node *n, struct sim_env *env);

#endif /* SIM_NODE_H */
