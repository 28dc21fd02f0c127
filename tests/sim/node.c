/* The runtime role: executes each struct raft_update by raft.h's rules.
 *
 *   raft_step ──> on_update: checks on what the core decided (election
 *                 safety, leader append-only, log matching, leader
 *                 completeness), then a deep copy goes to the write queue
 *   SIM_EV_DISK ─> execute every queued update (group commit), each:
 *       [crash point A: before anything is durable]
 *       rule 0: chunk into staging; rule 1: install snapshot (the whole
 *       log is discarded);
 *       rule 2: truncate + append entries, hard state; COMPACT
 *       [crash point B: durable but nothing sent]
 *       rule 3: send messages (filling snapshot chunks)
 *       rule 4: RAFT_EVENT_PERSISTED (now, or in order a little later:
 *               SIM_EV_PERSISTED)
 *       rule 5: apply committed, RAFT_EVENT_APPLIED
 *       rule 6: proposal and read results to the clients
 *
 * Rule 0 writes the chunk first, so that the staged snapshot is complete
 * when the same update installs it (rule 1).  The staging area lives on
 * the simulated disk; a crash loses it half of the time (raft.h allows
 * both). */
#include "node.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>

#include "workload.h"

struct sim_work
{
    struct sim_work *next;
    unsigned flags;
    struct raft_hard_state hs;
    bool install;
    struct raft_snapshot_meta meta; /* meta.conf owned, when install */
    bool chunk;
    struct raft_snapshot_chunk ck; /* ck.data owned, ck.conf not kept */
    struct raft_entry *entries;    /* owned, with data */
    unsigned n_entries;
    struct sim_msg **msgs; /* owned */
    unsigned n_msgs;
    struct raft_entry *committed; /* owned, with data */
    unsigned n_committed;
    struct raft_proposal *proposals;
    unsigned n_proposals;
    struct raft_read *reads;
    unsigned n_reads;
    raft_index compact;
};

static void work_free(struct sim_work *w)
{
    unsigned i;
    if (w == NULL) {
        return;
    }
    if (w->install) {
        raft_configuration_fini(&w->meta.conf);
    }
    free(w->ck.data.base);
    sim_log_entries_free(w->entries, w->n_entries);
    for (i = 0; i < w->n_msgs; i++) {
        sim_msg_free(w->msgs[i]);
    }
    free(w->msgs);
    sim_log_entries_free(w->committed, w->n_committed);
    free(w->proposals);
    free(w->reads);
    free(w);
}

static int copy_entries(const struct raft_entry *src,
                        unsigned n,
                        struct raft_entry **out)
{
    struct raft_entry *es;
    unsigned i;
    *out = NULL;
    if (n == 0) {
        return 0;
    }
    es = calloc(n, sizeof *es);
    if (es == NULL) {
        return -ENOMEM;
    }
    for (i = 0; i < n; i++) {
        es[i] = src[i];
        es[i].data.base = NULL;
        if (src[i].data.len > 0) {
            es[i].data.base = malloc(src[i].data.len);
            if (es[i].data.base == NULL) {
                sim_log_entries_free(es, i);
                return -ENOMEM;
            }
            memcpy(es[i].data.base, src[i].data.base, src[i].data.len);
        }
    }
    *out = es;
    return 0;
}

static void *copy_array(const void *src, size_t n, size_t size)
{
    void *p;
    if (n == 0) {
        return NULL;
    }
    p = malloc(n * size);
    if (p != NULL) {
        memcpy(p, src, n * size);
    }
    return p;
}

/* Deep copy of @u; NULL when out of memory. */
static struct sim_work *work_copy(const struct raft_update *u)
{
    struct sim_work *w = calloc(1, sizeof *w);
    unsigned i;
    if (w == NULL) {
        return NULL;
    }
    w->flags = u->flags;
    w->hs = u->hard_state;
    w->compact = (u->flags & RAFT_UPDATE_COMPACT) ? u->compact : 0;
    if (u->snapshot_install != NULL) {
        w->install = true;
        w->meta = *u->snapshot_install;
        raft_configuration_init(&w->meta.conf);
        if (raft_configuration_copy(&u->snapshot_install->conf,
                                    &w->meta.conf) != 0) {
            goto err;
        }
    }
    if (u->snapshot_chunk != NULL) {
        w->chunk = true;
        w->ck = *u->snapshot_chunk;
        w->ck.data.base = NULL;
        w->ck.conf.base = NULL;
        w->ck.conf.len = 0;
        if (u->snapshot_chunk->data.len > 0) {
            w->ck.data.base = copy_array(u->snapshot_chunk->data.base,
                                         u->snapshot_chunk->data.len, 1);
            if (w->ck.data.base == NULL) {
                goto err;
            }
        }
    }
    if (copy_entries(u->entries, u->n_entries, &w->entries) != 0) {
        goto err;
    }
    w->n_entries = u->n_entries;
    if (copy_entries(u->committed, u->n_committed, &w->committed) != 0) {
        goto err;
    }
    w->n_committed = u->n_committed;
    if (u->n_messages > 0) {
        w->msgs = calloc(u->n_messages, sizeof *w->msgs);
        if (w->msgs == NULL) {
            goto err;
        }
        for (i = 0; i < u->n_messages; i++) {
            if (sim_msg_copy(&u->messages[i], &w->msgs[i]) != 0) {
                goto err;
            }
            w->n_msgs = i + 1;
        }
    }
    w->proposals =
        copy_array(u->proposals, u->n_proposals, sizeof *u->proposals);
    w->n_proposals = w->proposals == NULL ? 0 : u->n_proposals;
    w->reads = copy_array(u->reads, u->n_reads, sizeof *u->reads);
    w->n_reads = w->reads == NULL ? 0 : u->n_reads;
    if (w->n_proposals != u->n_proposals || w->n_reads != u->n_reads) {
        goto err;
    }
    return w;
err:
    work_free(w);
    return NULL;
}

static const char *state_name(enum raft_state s)
{
    switch (s) {
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_PRE_CANDIDATE:
        return "pre-candidate";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_LEADER:
        return "leader";
    }
    return "?";
}

static void schedule_disk(struct sim_node *n, struct sim_env *env)
{
    struct sim_event e = {0};
    if (n->disk_busy || n->head == NULL) {
        return;
    }
    e.kind = SIM_EV_DISK;
    e.node = n->id;
    e.incarnation = n->incarnation;
    if (sim_clock_schedule(
            env->clock, sim_prng_below(env->disk_prng, env->disk_delay_max + 1),
            &e) != 0) {
        sim_checker_fail(env->checker, SIM_P_RUNTIME, "out of memory");
        return;
    }
    n->disk_busy = true;
}

/* Soft state: follow RAFT_UPDATE_STATE; Election Safety is checked here,
 * before the entries of the update, so that a second leader of a term
 * shows as such rather than as a log clash. */
static void track_state(struct sim_node *n,
                        struct sim_env *env,
                        const struct raft_update *u)
{
    if (u->flags & RAFT_UPDATE_HARD_STATE) {
        n->commit = u->hard_state.commit;
    }
    if (!(u->flags & RAFT_UPDATE_STATE)) {
        return;
    }
    if (u->state != n->state || u->term != n->term || u->leader != n->leader) {
        sim_trace_printf(env->trace, "n%llu: %s term %llu leader n%llu",
                         (unsigned long long)n->id, state_name(u->state),
                         (unsigned long long)u->term,
                         (unsigned long long)u->leader);
    }
    n->state = u->state;
    n->term = u->term;
    n->leader = u->leader;
    if (n->state == RAFT_LEADER) {
        sim_checker_leader(env->checker, n->id, n->term);
    }
}

/* Leader Append-Only (Figure 3): a leader never overwrites or deletes
 * entries in its log.  Called when @n leads the same term before and after
 * @u. */
static void check_append_only(struct sim_node *n,
                              struct sim_env *env,
                              const struct raft_update *u)
{
    if (u->n_entries > 0 && u->entries[0].index <= sim_log_last(&n->mem)) {
        sim_checker_fail(env->checker, SIM_P_APPEND_ONLY,
                         "leader n%llu of term %llu rewrites its log from "
                         "index %llu (last %llu)",
                         (unsigned long long)n->id, (unsigned long long)n->term,
                         (unsigned long long)u->entries[0].index,
                         (unsigned long long)sim_log_last(&n->mem));
    }
    if (u->snapshot_install != NULL) {
        sim_checker_fail(env->checker, SIM_P_APPEND_ONLY,
                         "leader n%llu of term %llu installs a snapshot",
                         (unsigned long long)n->id,
                         (unsigned long long)n->term);
    }
}

/* Keep n->mem equal to the core's log: rule 1 (install discards the whole
 * log) and rule 2 (truncate and append), then check Log Matching on the
 * new entries. */
static void mirror_log(struct sim_node *n,
                       struct sim_env *env,
                       const struct raft_update *u)
{
    struct sim_checker *c = env->checker;
    const struct raft_snapshot_meta *m = u->snapshot_install;
    const struct raft_entry *es = u->entries;
    if (m != NULL) {
        raft_term t = sim_checker_committed_term(c, m->index);
        if (t != m->term) {
            sim_checker_fail(
                c, SIM_P_SM_SAFETY,
                "n%llu is told to install snapshot (index %llu, term %llu), "
                "which is not committed history (term there: %llu)",
                (unsigned long long)n->id, (unsigned long long)m->index,
                (unsigned long long)m->term, (unsigned long long)t);
            return;
        }
        sim_trace_printf(
            env->trace,
            "n%llu: to install snapshot (%llu, %llu) over log "
            "(%llu, %llu]",
            (unsigned long long)n->id, (unsigned long long)m->index,
            (unsigned long long)m->term, (unsigned long long)n->mem.base,
            (unsigned long long)sim_log_last(&n->mem));
        sim_log_install(&n->mem, m->index, m->term, c->truth[m->index].chain);
    }
    if (u->n_entries == 0) {
        return;
    }
    sim_trace_printf(env->trace,
                     "n%llu: to persist [%llu, %llu] terms %llu..%llu over "
                     "log (%llu, %llu]",
                     (unsigned long long)n->id, (unsigned long long)es[0].index,
                     (unsigned long long)es[u->n_entries - 1].index,
                     (unsigned long long)es[0].term,
                     (unsigned long long)es[u->n_entries - 1].term,
                     (unsigned long long)n->mem.base,
                     (unsigned long long)sim_log_last(&n->mem));
    if (sim_log_append(&n->mem, es, u->n_entries) != 0) {
        sim_checker_fail(c, SIM_P_RUNTIME,
                         "n%llu: entries to persist from %llu do not follow "
                         "its log (base %llu, last %llu)",
                         (unsigned long long)n->id,
                         (unsigned long long)es[0].index,
                         (unsigned long long)n->mem.base,
                         (unsigned long long)sim_log_last(&n->mem));
        return;
    }
    sim_checker_appended(c, n->id, &n->mem, es[0].index);
}

static bool update_is_empty(const struct raft_update *u)
{
    return u->snapshot_install == NULL && u->snapshot_chunk == NULL &&
           u->n_entries == 0 && !(u->flags & RAFT_UPDATE_HARD_STATE) &&
           !(u->flags & RAFT_UPDATE_COMPACT) && u->n_messages == 0 &&
           u->n_committed == 0 && u->n_proposals == 0 && u->n_reads == 0;
}

/* What the core decided in @u is checked at once (the core's state is
 * real as soon as raft_step returns); the update itself joins the write
 * queue, to be executed when the disk gets to it. */
static void on_update(struct sim_node *n,
                      struct sim_env *env,
                      const struct raft_update *u)
{
    bool was_leader = n->state == RAFT_LEADER;
    raft_term old_term = n->term;
    struct sim_work *w;

    track_state(n, env, u);
    if (was_leader && n->state == RAFT_LEADER && n->term == old_term) {
        check_append_only(n, env, u);
    }
    mirror_log(n, env, u);
    if (u->flags & RAFT_UPDATE_HARD_STATE) {
        sim_checker_commit(env->checker, n->id, u->hard_state.commit, &n->mem);
    }
    if (n->state == RAFT_LEADER && (!was_leader || old_term != n->term)) {
        sim_checker_new_leader(env->checker, n->id, n->term, &n->mem);
    }
    if (update_is_empty(u)) {
        return;
    }
    w = work_copy(u);
    if (w == NULL) {
        sim_checker_fail(env->checker, SIM_P_RUNTIME, "out of memory");
        return;
    }
    if (n->tail == NULL) {
        n->head = w;
    } else {
        n->tail->next = w;
    }
    n->tail = w;
    schedule_disk(n, env);
}

void sim_node_step(struct sim_node *n,
                   struct sim_env *env,
                   const struct raft_event *event)
{
    struct raft_update u;
    int rv;
    if (!n->up) {
        return;
    }
    memset(&u, 0, sizeof u);
    rv = raft_step(&n->raft, event, &u);
    if (rv != 0 && event->type == RAFT_EVENT_TRANSFER &&
        (rv == GOULETTE_ENOTLEADER || rv == GOULETTE_ETRANSFER ||
         rv == GOULETTE_ENOTFOUND)) {
        /* Documented refusals of a transfer request: nothing happened. */
        sim_trace_printf(env->trace, "n%llu: transfer refused: %s",
                         (unsigned long long)n->id, goulette_strerror(rv));
        return;
    }
    if (rv != 0) {
        sim_checker_fail(env->checker, SIM_P_RUNTIME,
                         "n%llu: raft_step(event %d) failed: %s (core: "
                         "commit %llu, last %llu; runtime: applied %llu, "
                         "snapshot %llu, log (%llu, %llu])",
                         (unsigned long long)n->id, (int)event->type,
                         goulette_strerror(rv),
                         (unsigned long long)raft_commit_index(&n->raft),
                         (unsigned long long)raft_last_index(&n->raft),
                         (unsigned long long)n->disk.sm.applied,
                         (unsigned long long)n->disk.snap.meta.index,
                         (unsigned long long)n->disk.log.base,
                         (unsigned long long)sim_log_last(&n->disk.log));
        return;
    }
    on_update(n, env, &u);
}

void sim_node_tick(struct sim_node *n, struct sim_env *env)
{
    struct raft_event e;
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_TICK;
    sim_node_step(n, env, &e);
}

void sim_node_receive(struct sim_node *n,
                      struct sim_env *env,
                      const struct raft_message *m)
{
    struct raft_event e;
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_RECEIVE;
    e.receive.message = m;
    sim_node_step(n, env, &e);
}

/* ---- execution ---------------------------------------------------- */

static void staging_reset(struct sim_staging *s)
{
    free(s->data);
    memset(s, 0, sizeof *s);
}

/* Rule 0: write a chunk into the staging area of its snapshot.  A chunk at
 * offset 0 replaces the staging area; the others must continue it. */
static void stage_chunk(struct sim_node *n,
                        struct sim_env *env,
                        const struct raft_snapshot_chunk *ck)
{
    struct sim_staging *s = &n->disk.staging;
    if (ck->size > (1u << 20) || ck->offset + ck->data.len > ck->size) {
        sim_checker_fail(env->checker, SIM_P_RUNTIME,
                         "n%llu: snapshot chunk [%llu, +%zu) outside size "
                         "%llu",
                         (unsigned long long)n->id,
                         (unsigned long long)ck->offset, ck->data.len,
                         (unsigned long long)ck->size);
        return;
    }
    if (s->index != ck->index || s->term != ck->term || s->size != ck->size ||
        ck->offset == 0) {
        staging_reset(s);
        s->data = malloc(ck->size > 0 ? ck->size : 1);
        if (s->data == NULL) {
            sim_checker_fail(env->checker, SIM_P_RUNTIME, "out of memory");
            return;
        }
        s->index = ck->index;
        s->term = ck->term;
        s->size = ck->size;
    }
    if (ck->offset != s->filled) {
        sim_checker_fail(env->checker, SIM_P_RUNTIME,
                         "n%llu: snapshot chunk at %llu but %llu bytes are "
                         "staged (chunks must come in order, without gaps)",
                         (unsigned long long)n->id,
                         (unsigned long long)ck->offset,
                         (unsigned long long)s->filled);
        return;
    }
    if (ck->data.len > 0) {
        memcpy(s->data + ck->offset, ck->data.base, ck->data.len);
    }
    if (ck->offset + ck->data.len > s->filled) {
        s->filled = ck->offset + ck->data.len;
    }
}

static void snapshot_free(struct sim_snapshot *s)
{
    if (s->has) {
        raft_configuration_fini(&s->meta.conf);
        free(s->data.base);
    }
    memset(s, 0, sizeof *s);
}

/* Rule 1: install the staged snapshot. */
static void install(struct sim_node *n,
                    struct sim_env *env,
                    const struct raft_snapshot_meta *meta)
{
    struct sim_staging *s = &n->disk.staging;
    struct goulette_buf data;
    raft_index before = n->disk.sm.applied;
    int rv;
    if (s->index != meta->index || s->term != meta->term ||
        s->filled != s->size || s->size != meta->size) {
        sim_checker_fail(
            env->checker, SIM_P_RUNTIME,
            "n%llu: install of snapshot (%llu, %llu, %llu "
            "bytes) but staged are (%llu, %llu) %llu/%llu "
            "bytes",
            (unsigned long long)n->id, (unsigned long long)meta->index,
            (unsigned long long)meta->term, (unsigned long long)meta->size,
            (unsigned long long)s->index, (unsigned long long)s->term,
            (unsigned long long)s->filled, (unsigned long long)s->size);
        return;
    }
    data.base = s->data;
    data.len = s->size;
    rv = sim_sm_restore(&n->disk.sm, &data, meta);
    if (rv != 0) {
        sim_checker_fail(env->checker, SIM_P_RUNTIME,
                         "n%llu: staged snapshot (%llu, %llu) does not "
                         "decode: %s",
                         (unsigned long long)n->id,
                         (unsigned long long)meta->index,
                         (unsigned long long)meta->term, goulette_strerror(rv));
        return;
    }
    sim_checker_installed(env->checker, n->id, n->term, before, meta->index,
                          meta->term, n->disk.sm.chain);
    sim_trace_printf(env->trace, "n%llu: installed snapshot (%llu, %llu)",
                     (unsigned long long)n->id, (unsigned long long)meta->index,
                     (unsigned long long)meta->term);
    n->installs++;
    snapshot_free(&n->disk.snap);
    n->disk.snap.meta = *meta;
    raft_configuration_init(&n->disk.snap.meta.conf);
    if (raft_configuration_copy(&meta->conf, &n->disk.snap.meta.conf) != 0) {
        sim_checker_fail(env->checker, SIM_P_RUNTIME, "out of memory");
        return;
    }
    n->disk.snap.data.base = s->data;
    n->disk.snap.data.len = s->size;
    n->disk.snap.has = true;
    s->data = NULL;
    staging_reset(s);
    sim_log_install(&n->disk.log, meta->index, meta->term, n->disk.sm.chain);
}

/* Rule 3, with the runtime's part of InstallSnapshot: fill chunk bytes. */
static void send(struct sim_node *n, struct sim_env *env, struct sim_msg *msg)
{
    struct raft_snapshot_chunk *ck = &msg->m.snapshot;
    const struct sim_snapshot *snap = &n->disk.snap;
    if (msg->m.type == RAFT_MSG_SNAPSHOT && ck->data.base == NULL &&
        ck->data.len > 0) {
        if (!snap->has || snap->meta.index != ck->index ||
            snap->meta.term != ck->term ||
            ck->offset + ck->data.len > snap->data.len) {
            sim_msg_free(msg); /* no longer have it: the core retries */
            return;
        }
        ck->data.base = malloc(ck->data.len);
        if (ck->data.base == NULL) {
            sim_msg_free(msg);
            return;
        }
        memcpy(ck->data.base, (unsigned char *)snap->data.base + ck->offset,
               ck->data.len);
    }
    if (sim_net_send(env->net, env->clock, env->net_prng, msg) != 0) {
        sim_checker_fail(env->checker, SIM_P_RUNTIME, "out of memory");
    }
}

static void schedule_restart(struct sim_node *n, struct sim_env *env)
{
    struct sim_event e = {0};
    e.kind = SIM_EV_RESTART;
    e.node = n->id;
    e.incarnation = n->incarnation;
    if (sim_clock_schedule(env->clock,
                           sim_prng_between(env->disk_prng, env->restart_min,
                                            env->restart_max),
                           &e) != 0) {
        sim_checker_fail(env->checker, SIM_P_RUNTIME, "out of memory");
    }
}

static void apply(struct sim_node *n,
                  struct sim_env *env,
                  const struct raft_entry *es,
                  unsigned count)
{
    struct raft_event e;
    unsigned i;
    int rv;
    for (i = 0; i < count && !env->checker->failed; i++) {
        raft_index before = n->disk.sm.applied;
        const struct sim_entry *d = sim_log_get(&n->disk.log, es[i].index);
        if (d == NULL || d->e.term != es[i].term) {
            /* raft.h rule 5: committed entries are durable locally before
             * they are handed out. */
            sim_checker_fail(env->checker, SIM_P_RUNTIME,
                             "n%llu: committed entry (%llu, %llu) handed out "
                             "before it is durable here (durable log (%llu, "
                             "%llu])",
                             (unsigned long long)n->id,
                             (unsigned long long)es[i].index,
                             (unsigned long long)es[i].term,
                             (unsigned long long)n->disk.log.base,
                             (unsigned long long)sim_log_last(&n->disk.log));
            return;
        }
        if (es[i].index != before + 1) {
            sim_checker_applied(env->checker, n->id, n->term, before, &es[i],
                                0);
            return;
        }
        rv = sim_sm_apply(&n->disk.sm, &es[i]);
        if (rv != 0) {
            sim_checker_fail(env->checker, SIM_P_RUNTIME,
                             "n%llu: committed entry %llu is malformed: %s",
                             (unsigned long long)n->id,
                             (unsigned long long)es[i].index,
                             goulette_strerror(rv));
            return;
        }
        sim_checker_applied(env->checker, n->id, n->term, before, &es[i],
                            n->disk.sm.chain);
    }
    if (count == 0 || env->checker->failed) {
        return;
    }
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_APPLIED;
    e.applied.index = n->disk.sm.applied;
    sim_node_step(n, env, &e);
}

void sim_node_persisted(struct sim_node *n,
                        struct sim_env *env,
                        raft_index index,
                        raft_term term)
{
    struct raft_event e;
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_PERSISTED;
    e.persisted.index = index;
    e.persisted.term = term;
    sim_node_step(n, env, &e);
}

/* Rule 4, now or (as an asynchronous runtime may) a little later, keeping
 * the order of the reports: the core must then cope with acknowledgements
 * from followers that arrive before its own write is reported. */
static void tell_persisted(struct sim_node *n,
                           struct sim_env *env,
                           const struct raft_entry *last)
{
    struct sim_event e = {0};
    uint64_t at;
    if (n->persisted_at <= env->clock->now &&
        (env->defer_persisted_pm == 0 ||
         !sim_prng_chance(env->disk_prng, env->defer_persisted_pm))) {
        sim_node_persisted(n, env, last->index, last->term);
        return;
    }
    at = env->clock->now + sim_prng_between(env->disk_prng, 1, 30);
    if (at < n->persisted_at) {
        at = n->persisted_at;
    }
    n->persisted_at = at;
    e.kind = SIM_EV_PERSISTED;
    e.node = n->id;
    e.incarnation = n->incarnation;
    e.arg[0] = last->index;
    e.arg[1] = last->term;
    if (sim_clock_schedule(env->clock, at - env->clock->now, &e) != 0) {
        sim_checker_fail(env->checker, SIM_P_RUNTIME, "out of memory");
    }
}

/* Rule 3: send the messages of @w. */
static void send_all(struct sim_node *n,
                     struct sim_env *env,
                     struct sim_work *w)
{
    unsigned i;
    for (i = 0; i < w->n_msgs; i++) {
        send(n, env, w->msgs[i]);
        w->msgs[i] = NULL;
    }
    w->n_msgs = 0;
}

static void execute(struct sim_node *n, struct sim_env *env, struct sim_work *w)
{
    struct sim_checker *c = env->checker;
    uint64_t inc = n->incarnation;
    int rv;
    bool persists = w->install || w->chunk || w->n_entries > 0 ||
                    (w->flags & RAFT_UPDATE_HARD_STATE);

    if (env->send_before_persist) {
        /* The planted runtime bug: messages go out first, so that crash
         * point A loses a write whose vote or acknowledgement was sent. */
        send_all(n, env, w);
    }
    /* Crash point A: the write never happens. */
    if (persists && env->crash_in_write_pm > 0 &&
        sim_prng_chance(env->disk_prng, env->crash_in_write_pm)) {
        sim_trace_printf(env->trace, "n%llu: crash before a write",
                         (unsigned long long)n->id);
        sim_node_crash(n, env);
        schedule_restart(n, env);
        return;
    }
    if (w->chunk) {
        stage_chunk(n, env, &w->ck);
    }
    if (w->install && !c->failed) {
        install(n, env, &w->meta);
    }
    if (w->n_entries > 0) {
        rv = sim_log_append(&n->disk.log, w->entries, w->n_entries);
        if (rv != 0) {
            sim_checker_fail(c, SIM_P_RUNTIME,
                             "n%llu: persisted entries from %llu do not "
                             "follow the durable log (base %llu, last %llu)",
                             (unsigned long long)n->id,
                             (unsigned long long)w->entries[0].index,
                             (unsigned long long)n->disk.log.base,
                             (unsigned long long)sim_log_last(&n->disk.log));
            return;
        }
    }
    if (w->flags & RAFT_UPDATE_HARD_STATE) {
        n->disk.hs = w->hs;
    }
    if (w->compact > 0) {
        sim_log_compact(&n->disk.log, w->compact);
    }
    /* Crash point B: durable, but the messages that depend on it were
     * never sent. */
    if (persists && env->crash_in_write_pm > 0 &&
        sim_prng_chance(env->disk_prng, env->crash_in_write_pm)) {
        sim_trace_printf(env->trace,
                         "n%llu: crash after a write, before "
                         "sending",
                         (unsigned long long)n->id);
        sim_node_crash(n, env);
        schedule_restart(n, env);
        return;
    }
    send_all(n, env, w);
    if (w->n_entries > 0) {
        tell_persisted(n, env, &w->entries[w->n_entries - 1]);
    }
    if (c->failed || !n->up || n->incarnation != inc) {
        return;
    }
    apply(n, env, w->committed, w->n_committed);
    if (c->failed) {
        return;
    }
    sim_workload_proposals(env->workload, n, env, w->proposals, w->n_proposals);
    sim_workload_reads(env->workload, n, env, w->reads, w->n_reads);
    if (w->install || w->n_committed > 0) {
        sim_workload_applied(env->workload, n, env);
    }
}

void sim_node_disk_done(struct sim_node *n, struct sim_env *env)
{
    /* Group commit (rule 2): one write makes every update queued so far
     * durable, in order; updates the core hands back while they execute
     * wait for the next write. */
    struct sim_work *last = n->tail;
    uint64_t inc = n->incarnation;
    bool more = true;
    n->disk_busy = false;
    while (more && n->head != NULL && !env->checker->failed) {
        struct sim_work *w = n->head;
        more = w != last;
        n->head = w->next;
        if (n->head == NULL) {
            n->tail = NULL;
        }
        execute(n, env, w);
        work_free(w);
        if (!n->up || n->incarnation != inc) {
            return; /* crashed: the queue is gone */
        }
    }
    schedule_disk(n, env);
}

/* ---- lifecycle ---------------------------------------------------- */

static void schedule_tick(struct sim_node *n, struct sim_env *env)
{
    struct sim_event e = {0};
    e.kind = SIM_EV_TICK;
    e.node = n->id;
    e.incarnation = n->incarnation;
    /* A random phase so that nodes do not tick in lockstep. */
    if (sim_clock_schedule(env->clock, sim_prng_below(env->disk_prng, 10),
                           &e) != 0) {
        sim_checker_fail(env->checker, SIM_P_RUNTIME, "out of memory");
    }
}

int sim_node_start(struct sim_node *n, struct sim_env *env)
{
    struct raft_config config = env->raft;
    struct raft_event e;
    struct raft_entry *es = NULL;
    unsigned n_es = 0;
    struct sim_log tail;
    raft_index from = n->disk.snap.has ? n->disk.snap.meta.index : 0;
    int rv;

    n->incarnation++;
    config.id = n->id;
    config.seed = sim_prng_mix(env->seed ^ sim_prng_mix(n->id) ^
                               sim_prng_mix(n->incarnation << 32));
    if (sim_trace_on(env->trace)) {
        config.log = &env->trace->core_log;
    }
    rv = raft_init(&n->raft, &config);
    if (rv != 0) {
        return rv;
    }
    /* START gets the persisted entries following the snapshot. */
    sim_log_init(&tail);
    rv = sim_log_copy(&n->disk.log, &tail);
    if (rv == 0 && from > tail.base) {
        sim_log_compact(&tail, from + 1);
    }
    if (rv == 0) {
        rv = sim_log_entries(&tail, &es, &n_es);
    }
    sim_log_fini(&tail);
    if (rv != 0) {
        raft_fini(&n->raft);
        return rv;
    }
    sim_log_init(&n->mem);
    rv = sim_log_copy(&n->disk.log, &n->mem);
    if (rv != 0) {
        sim_log_entries_free(es, n_es);
        raft_fini(&n->raft);
        return rv;
    }
    n->up = true;
    n->persisted_at = 0;
    n->state = RAFT_FOLLOWER;
    n->leader = 0;
    n->term = n->disk.hs.term;
    n->commit = n->disk.hs.commit;
    sim_trace_printf(
        env->trace,
        "n%llu: start #%llu term %llu vote n%llu, snapshot %llu, "
        "entries %u, applied %llu",
        (unsigned long long)n->id, (unsigned long long)n->incarnation,
        (unsigned long long)n->disk.hs.term,
        (unsigned long long)n->disk.hs.vote, (unsigned long long)from, n_es,
        (unsigned long long)n->disk.sm.applied);
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_START;
    e.start.hard_state = n->disk.hs;
    e.start.snapshot = n->disk.snap.has ? &n->disk.snap.meta : NULL;
    e.start.entries = es;
    e.start.n_entries = n_es;
    e.start.applied = n->disk.sm.applied;
    sim_node_step(n, env, &e);
    sim_log_entries_free(es, n_es);
    schedule_tick(n, env);
    return 0;
}

int sim_node_create(struct sim_node *n,
                    raft_id id,
                    struct sim_env *env,
                    const struct raft_configuration *bootstrap)
{
    struct raft_entry entry;
    struct goulette_buf buf = {NULL, 0};
    int rv;
    memset(n, 0, sizeof *n);
    n->id = id;
    n->exists = true;
    sim_log_init(&n->disk.log);
    sim_log_init(&n->mem);
    sim_sm_init(&n->disk.sm);
    if (bootstrap != NULL) {
        rv = raft_configuration_encode(bootstrap, &buf);
        if (rv != 0) {
            return rv;
        }
        memset(&entry, 0, sizeof entry);
        entry.term = 1;
        entry.index = 1;
        entry.type = RAFT_ENTRY_CONF;
        entry.data = buf;
        rv = sim_log_append(&n->disk.log, &entry, 1);
        free(buf.base);
        if (rv != 0) {
            return rv;
        }
    }
    return sim_node_start(n, env);
}

static void queue_free(struct sim_node *n)
{
    while (n->head != NULL) {
        struct sim_work *w = n->head;
        n->head = w->next;
        work_free(w);
    }
    n->tail = NULL;
    n->disk_busy = false;
}

void sim_node_crash(struct sim_node *n, struct sim_env *env)
{
    if (!n->up) {
        return;
    }
    sim_trace_printf(env->trace, "n%llu: CRASH (%s, term %llu)",
                     (unsigned long long)n->id, state_name(n->state),
                     (unsigned long long)n->term);
    raft_fini(&n->raft);
    queue_free(n);
    sim_log_fini(&n->mem);
    /* raft.h: the staging area need not survive a crash.  Lose it half of
     * the time, so that both kinds of runtime are exercised. */
    if (sim_prng_chance(env->disk_prng, 500)) {
        staging_reset(&n->disk.staging);
    }
    n->up = false;
    n->crashes++;
    n->state = RAFT_FOLLOWER;
    n->leader = 0;
    sim_workload_crashed(env->workload, n);
}

void sim_node_destroy(struct sim_node *n)
{
    if (!n->exists) {
        return;
    }
    if (n->up) {
        raft_fini(&n->raft);
        queue_free(n);
        sim_log_fini(&n->mem);
    }
    sim_log_fini(&n->disk.log);
    snapshot_free(&n->disk.snap);
    staging_reset(&n->disk.staging);
    sim_sm_fini(&n->disk.sm);
    memset(n, 0, sizeof *n);
}

/* Whether the write queue holds a snapshot install: the core already
 * moved to that snapshot, so a snapshot of the older state machine would be
 * stale (raft_step rejects it with -EINVAL). */
static bool install_pending(const struct sim_node *n)
{
    const struct sim_work *w;
    for (w = n->head; w != NULL; w = w->next) {
        if (w->install) {
            return true;
        }
    }
    return false;
}

void sim_node_snapshot(struct sim_node *n, struct sim_env *env)
{
    struct sim_sm *sm = &n->disk.sm;
    struct sim_snapshot next;
    struct raft_event e;
    int rv;
    if (n->up && install_pending(n)) {
        return;
    }
    if (!n->up || sm->applied == 0 || sm->conf_index == 0 ||
        (n->disk.snap.has && sm->applied <= n->disk.snap.meta.index)) {
        return;
    }
    memset(&next, 0, sizeof next);
    raft_configuration_init(&next.meta.conf);
    rv = raft_configuration_copy(&sm->conf, &next.meta.conf);
    if (rv == 0) {
        rv = sim_sm_encode(sm, &next.data);
    }
    if (rv != 0) {
        raft_configuration_fini(&next.meta.conf);
        sim_checker_fail(env->checker, SIM_P_RUNTIME, "out of memory");
        return;
    }
    next.has = true;
    next.meta.index = sm->applied;
    next.meta.term = sm->applied_term;
    next.meta.conf_index = sm->conf_index;
    next.meta.size = next.data.len;
    snapshot_free(&n->disk.snap);
    n->disk.snap = next;
    sim_trace_printf(env->trace, "n%llu: snapshot at (%llu, %llu)",
                     (unsigned long long)n->id,
                     (unsigned long long)next.meta.index,
                     (unsigned long long)next.meta.term);
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_SNAPSHOT;
    e.snapshot.index = next.meta.index;
    e.snapshot.size = next.meta.size;
    e.snapshot.trailing = sim_prng_below(env->disk_prng, env->trailing_max + 1);
    sim_node_step(n, env, &e);
}
