/* A small in-test cluster of raft cores wired by a manual message queue
 * (like etcd-io/raft's `network` in raft_test.go): the test decides when
 * messages are delivered, dropped or cut, and ticks each node.  Each node
 * runs a fake runtime that follows the execution rules of raft.h: staging
 * and installing snapshots, persisting entries and hard state in memory,
 * sending, reporting PERSISTED, applying to a counter-and-hash state
 * machine, reporting APPLIED.  Crash/restart keeps only the persisted part. */
#ifndef TEST_RAFT_CLUSTER_H
#define TEST_RAFT_CLUSTER_H

#include <goulette/raft.h>

#define CLUSTER_MAX 7
#define CLUSTER_LOG_MAX 4096

struct test_node
{
    raft_id id;
    bool up;      /* running (not crashed) */
    bool started; /* raft_init + START done */
    struct raft raft;
    struct raft_config cfg; /* tests may edit before cluster_start */

    /* Durable state (survives crash). */
    struct raft_hard_state hs;
    struct raft_entry *log; /* deep copies */
    unsigned n_log;
    struct raft_snapshot_meta snap; /* index 0: none */
    uint8_t *snap_data;
    uint8_t *staging;
    uint64_t staging_size;
    raft_index staging_index;
    raft_term staging_term;

    /* State machine (volatile, rebuilt from the snapshot on restart). */
    raft_index applied;
    uint64_t sm_count; /* NORMAL entries applied */
    uint64_t sm_hash;
    struct raft_configuration applied_conf; /* for taking snapshots */
    raft_index applied_conf_index;
    raft_term applied_term[CLUSTER_LOG_MAX]; /* term of each applied index */
    unsigned dup_applies;                    /* entries handed out twice */

    /* Results reported by the core, in order. */
    struct raft_proposal props[256];
    unsigned n_props;
    struct raft_read reads[256];
    unsigned n_reads;
    raft_index reads_applied[256]; /* applied index when the read came */
    unsigned n_snapshot_installs;
    unsigned n_chunks;
    unsigned max_entries_per_append; /* seen in messages sent */
};

struct test_cluster
{
    unsigned n; /* nodes 1..n */
    struct test_node nodes[CLUSTER_MAX];
    struct raft_message *q; /* owned deep copies */
    unsigned qn, qcap;
    bool cut[CLUSTER_MAX + 1][CLUSTER_MAX + 1]; /* [from][to] */
    unsigned drop_type_mask; /* 1 << type: dropped when sent */
    uint64_t snapshot_size;  /* bytes of a snapshot taken */
    unsigned sent_by_type[16];
    /* Allocation-failure tests: called with true right before each
     * raft_step and false right after; with oom_tolerant, -ENOMEM from the
     * core is treated as a lost event instead of a failure. */
    void (*arm)(bool on);
    bool oom_tolerant;
};

/* @n nodes; the first @voters are voters of the bootstrap configuration
 * written as entry 1 on each of them; the others start empty (joiners).
 * Configs get defaults: election 10, heartbeat 1, pre-vote and
 * check-quorum on, seed = id. */
void cluster_init(struct test_cluster *c, unsigned n, unsigned voters);
void cluster_start(struct test_cluster *c);
void cluster_fini(struct test_cluster *c);

struct test_node *cluster_node(struct test_cluster *c, raft_id id);

/* Feed @ev to node @id and execute the update (recursively reporting
 * PERSISTED and APPLIED).  Returns raft_step's rv. */
int cluster_step(struct test_cluster *c, raft_id id, struct raft_event *ev);

void cluster_tick(struct test_cluster *c, raft_id id, unsigned ticks);
void cluster_tick_all(struct test_cluster *c, unsigned ticks);

/* Deliver queued messages until none is left (or @max deliveries).
 * Returns the number delivered. */
unsigned cluster_deliver(struct test_cluster *c);
/* Deliver the first queued message, if any; false when none. */
bool cluster_deliver_one(struct test_cluster *c);
/* Remove and return the first queued message matching (from, to, type),
 * 0 meaning any; it stays owned by the cluster until cluster_msg_free. */
bool cluster_take(struct test_cluster *c,
                  raft_id from,
                  raft_id to,
                  int type,
                  struct raft_message *out);
void cluster_msg_free(struct raft_message *m);
/* Deliver @m (borrowed) to m->to. */
void cluster_inject(struct test_cluster *c, const struct raft_message *m);
void cluster_drop_all(struct test_cluster *c);

void cluster_campaign(struct test_cluster *c, raft_id id);
/* Campaign on @id and deliver everything; returns true if it leads. */
bool cluster_elect(struct test_cluster *c, raft_id id);
int cluster_propose(struct test_cluster *c, raft_id id, uint64_t value);
void cluster_read(struct test_cluster *c, raft_id id, uint64_t context);
void cluster_conf_change(struct test_cluster *c,
                         raft_id leader,
                         enum raft_conf_change_type type,
                         raft_id id);
int cluster_snapshot(struct test_cluster *c, raft_id id, raft_index trailing);

void cluster_isolate(struct test_cluster *c, raft_id id);
void cluster_cut(struct test_cluster *c, raft_id a, raft_id b);
void cluster_heal(struct test_cluster *c);
void cluster_crash(struct test_cluster *c, raft_id id);
void cluster_restart(struct test_cluster *c, raft_id id);

/* The unique leader among running nodes with the highest term, or 0. */
raft_id cluster_leader(struct test_cluster *c);

/* ck_assert that applied prefixes agree (state-machine safety). */
void cluster_check_applied(struct test_cluster *c);

/* Before cluster_start: give node @id the persisted log [conf(term 1),
 * terms[0], terms[1], ...] (NORMAL entries), hard state term = the last
 * term (or @term if larger). */
void cluster_set_log(struct test_cluster *c,
                     raft_id id,
                     const raft_term *terms,
                     unsigned n,
                     raft_term term);
#endif /* TEST_RAFT_CLUSTER_H */
