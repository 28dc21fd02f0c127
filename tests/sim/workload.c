/* Client requests and their outcomes.  Pending requests are a small array
 * (bounded by expiry); each outcome is reported to the checker:
 *   proposal rv == 0, then the entry at (index) applied on the same node:
 *       same term     -> acknowledged (sim_checker_acked)
 *       another term  -> lost (GOULETTE_EDROPPED), not a violation
 *   read rv == 0, then applied >= read index on the same node:
 *       served        -> sim_checker_read (linearizability) */
#include "workload.h"

#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>

void sim_workload_init(struct sim_workload *w, uint64_t seed)
{
    memset(w, 0, sizeof *w);
    w->next_context = 1;
    w->next_value = (seed << 20) + 1; /* unique across seeds too */
}

void sim_workload_fini(struct sim_workload *w)
{
    free(w->ops);
    w->ops = NULL;
    w->n_ops = 0;
}

static struct sim_op *op_add(struct sim_workload *w)
{
    if (w->n_ops == w->cap_ops) {
        size_t cap = w->cap_ops == 0 ? 64 : w->cap_ops * 2;
        struct sim_op *ops = realloc(w->ops, cap * sizeof *ops);
        if (ops == NULL) {
            return NULL;
        }
        w->ops = ops;
        w->cap_ops = cap;
    }
    memset(&w->ops[w->n_ops], 0, sizeof w->ops[0]);
    return &w->ops[w->n_ops++];
}

static void op_remove(struct sim_workload *w, size_t i)
{
    w->ops[i] = w->ops[--w->n_ops];
}

static struct sim_op *op_find(struct sim_workload *w,
                              enum sim_op_kind kind,
                              uint64_t context,
                              size_t *at)
{
    size_t i;
    for (i = 0; i < w->n_ops; i++) {
        if (w->ops[i].kind == kind && w->ops[i].context == context) {
            *at = i;
            return &w->ops[i];
        }
    }
    return NULL;
}

void sim_workload_propose(struct sim_workload *w,
                          struct sim_node *n,
                          struct sim_env *env)
{
    unsigned char cmd[SIM_SM_CMD_BYTES];
    struct goulette_buf buf = {cmd, sizeof cmd};
    struct raft_event e;
    struct sim_op *op;
    uint64_t value = w->next_value++;
    if (!n->up) {
        return;
    }
    op = op_add(w);
    if (op == NULL) {
        sim_checker_fail(env->checker, SIM_P_RUNTIME, "out of memory");
        return;
    }
    op->kind = SIM_OP_PROPOSE;
    op->context = w->next_context++;
    op->node = n->id;
    op->incarnation = n->incarnation;
    op->issued_at = env->clock->now;
    w->proposed++;
    sim_sm_command(value, value, cmd);
    sim_trace_printf(env->trace, "client: propose %llu (ctx %llu) at n%llu",
                     (unsigned long long)value, (unsigned long long)op->context,
                     (unsigned long long)n->id);
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_PROPOSE;
    e.propose.context = op->context;
    e.propose.type = RAFT_ENTRY_NORMAL;
    e.propose.data = &buf;
    e.propose.n = 1;
    sim_node_step(n, env, &e);
}

void sim_workload_read(struct sim_workload *w,
                       struct sim_node *n,
                       struct sim_env *env)
{
    struct raft_event e;
    struct sim_op *op;
    if (!n->up) {
        return;
    }
    op = op_add(w);
    if (op == NULL) {
        sim_checker_fail(env->checker, SIM_P_RUNTIME, "out of memory");
        return;
    }
    op->kind = SIM_OP_READ;
    op->context = w->next_context++;
    op->node = n->id;
    op->incarnation = n->incarnation;
    op->issued_at = env->clock->now;
    op->issued_ack = env->checker->ack_index;
    w->reads++;
    sim_trace_printf(env->trace,
                     "client: read (ctx %llu) at n%llu, newest ack %llu",
                     (unsigned long long)op->context, (unsigned long long)n->id,
                     (unsigned long long)op->issued_ack);
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_READ_INDEX;
    e.read_index.context = op->context;
    sim_node_step(n, env, &e);
}

void sim_workload_proposals(struct sim_workload *w,
                            struct sim_node *n,
                            struct sim_env *env,
                            const struct raft_proposal *p,
                            unsigned count)
{
    unsigned i;
    size_t at;
    for (i = 0; i < count; i++) {
        struct sim_op *op;
        if (p[i].context & SIM_CONF_CONTEXT) {
            sim_trace_printf(
                env->trace,
                "admin: conf change ctx %llu at n%llu -> %s "
                "(%llu, %llu)",
                (unsigned long long)(p[i].context & ~SIM_CONF_CONTEXT),
                (unsigned long long)n->id, goulette_strerror(p[i].rv),
                (unsigned long long)p[i].index, (unsigned long long)p[i].term);
            w->conf_accepted += p[i].rv == 0;
            continue;
        }
        op = op_find(w, SIM_OP_PROPOSE, p[i].context, &at);
        if (op == NULL || op->node != n->id) {
            continue; /* given up */
        }
        sim_trace_printf(env->trace,
                         "client: proposal ctx %llu at n%llu -> %s "
                         "(%llu, %llu)",
                         (unsigned long long)p[i].context,
                         (unsigned long long)n->id, goulette_strerror(p[i].rv),
                         (unsigned long long)p[i].index,
                         (unsigned long long)p[i].term);
        if (p[i].rv != 0) {
            w->refused++;
            op_remove(w, at);
            continue;
        }
        op->have_result = true;
        op->index = p[i].index;
        op->term = p[i].term;
    }
    sim_workload_applied(w, n, env);
}

void sim_workload_reads(struct sim_workload *w,
                        struct sim_node *n,
                        struct sim_env *env,
                        const struct raft_read *r,
                        unsigned count)
{
    unsigned i;
    size_t at;
    for (i = 0; i < count; i++) {
        struct sim_op *op = op_find(w, SIM_OP_READ, r[i].context, &at);
        if (op == NULL || op->node != n->id) {
            continue;
        }
        sim_trace_printf(env->trace,
                         "client: read ctx %llu at n%llu -> %s "
                         "(index %llu)",
                         (unsigned long long)r[i].context,
                         (unsigned long long)n->id, goulette_strerror(r[i].rv),
                         (unsigned long long)r[i].index);
        if (r[i].rv != 0) {
            op_remove(w, at);
            continue;
        }
        op->have_result = true;
        op->index = r[i].index;
    }
    sim_workload_applied(w, n, env);
}

void sim_workload_applied(struct sim_workload *w,
                          struct sim_node *n,
                          struct sim_env *env)
{
    raft_index applied = n->disk.sm.applied;
    size_t i = 0;
    while (i < w->n_ops && !env->checker->failed) {
        struct sim_op *op = &w->ops[i];
        raft_term t;
        if (op->node != n->id || op->incarnation != n->incarnation ||
            !op->have_result || op->index > applied) {
            i++;
            continue;
        }
        if (op->kind == SIM_OP_READ) {
            w->served++;
            sim_trace_printf(env->trace,
                             "client: read ctx %llu served by n%llu at "
                             "applied %llu",
                             (unsigned long long)op->context,
                             (unsigned long long)n->id,
                             (unsigned long long)applied);
            sim_checker_read(env->checker, n->id, op->context, op->issued_ack,
                             op->index, applied);
        } else {
            t = sim_checker_committed_term(env->checker, op->index);
            if (t == op->term) {
                w->acked++;
                sim_trace_printf(env->trace,
                                 "client: ack ctx %llu (%llu, %llu)",
                                 (unsigned long long)op->context,
                                 (unsigned long long)op->index,
                                 (unsigned long long)op->term);
                sim_checker_acked(env->checker, op->index, op->term);
            } else if (t != 0) {
                w->lost++;
            }
        }
        op_remove(w, i);
    }
}

void sim_workload_crashed(struct sim_workload *w, struct sim_node *n)
{
    size_t i = 0;
    while (i < w->n_ops) {
        if (w->ops[i].node == n->id) {
            op_remove(w, i);
        } else {
            i++;
        }
    }
}

void sim_workload_expire(struct sim_workload *w, uint64_t now, uint64_t age)
{
    size_t i = 0;
    while (i < w->n_ops) {
        if (now - w->ops[i].issued_at > age) {
            op_remove(w, i);
        } else {
            i++;
        }
    }
}
