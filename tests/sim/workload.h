/* The clients: proposals of unique values and ReadIndex reads sent to
 * random nodes, and the bookkeeping of their results (cluster.c issues the
 * administrator's membership changes and transfers; their results are
 * counted here).  A proposal is
 * acknowledged when the node it was sent to applies an entry with the
 * (index, term) it was given; a read is served when that node's applied
 * index reaches the read index.  Both outcomes go to the checker. */
#ifndef SIM_WORKLOAD_H
#define SIM_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <goulette/raft.h>

#include "node.h"

enum sim_op_kind {
    SIM_OP_PROPOSE = 1,
    SIM_OP_READ,
};

struct sim_op
{
    enum sim_op_kind kind;
    uint64_t context;      /* unique per run */
    raft_id node;          /* where it was issued */
    uint64_t incarnation;  /* of that node */
    bool have_result;      /* the core answered rv == 0 */
    raft_index index;      /* proposal: entry index; read: read index */
    raft_term term;        /* proposal: entry term */
    raft_index issued_ack; /* read: newest acked write when issued */
    uint64_t issued_at;    /* virtual time */
};

struct sim_workload
{
    struct sim_op *ops; /* pending; owned */
    size_t n_ops;
    size_t cap_ops;
    uint64_t next_context;
    uint64_t next_value;
    /* statistics */
    uint64_t proposed;
    uint64_t acked;
    uint64_t lost;    /* applied with another term: dropped */
    uint64_t refused; /* rv != 0 */
    uint64_t reads;
    uint64_t served;
    uint64_t conf_changes;    /* issued */
    uint64_t conf_accepted;   /* appended by a leader (rv == 0) */
    uint64_t leader_removals; /* of those, removals of the leader itself */
    uint64_t transfers;
};

/* Contexts of membership changes carry this bit. */
#define SIM_CONF_CONTEXT (1ULL << 62)

void sim_workload_init(struct sim_workload *w, uint64_t seed);
void sim_workload_fini(struct sim_workload *w);

/* Issue a proposal or a read at @n. */
void sim_workload_propose(struct sim_workload *w,
                          struct sim_node *n,
                          struct sim_env *env);
void sim_workload_read(struct sim_workload *w,
                       struct sim_node *n,
                       struct sim_env *env);

/* Results handed back in an executed update of @n. */
void sim_workload_proposals(struct sim_workload *w,
                            struct sim_node *n,
                            struct sim_env *env,
                            const struct raft_proposal *p,
                            unsigned count);
void sim_workload_reads(struct sim_workload *w,
                        struct sim_node *n,
                        struct sim_env *env,
                        const struct raft_read *r,
                        unsigned count);

/* @n's applied index moved: resolve what waited on it. */
void sim_workload_applied(struct sim_workload *w,
                          struct sim_node *n,
                          struct sim_env *env);

/* @n crashed: its clients give up (the outcome stays unknown). */
void sim_workload_crashed(struct sim_workload *w, struct sim_node *n);

/* Give up on requests older than @age time units (lost messages). */
void sim_workload_expire(struct sim_workload *w, uint64_t now, uint64_t age);

#endif /* SIM_WORKLOAD_H */
