/* The Raft node runtime: drives one struct raft on a libuv loop and
 * executes its updates (raft.h, "Rules for executing a struct raft_update").
 * Owns the tick timer, the proposal queue (group commit), the callers
 * waiting on proposals and reads, and the durable log writer.  It makes no
 * protocol decision: every "what" comes from the core.
 *
 * Invariants:
 * - An update's entries and hard state are durable before any of its
 *   messages is sent (one synchronous LevelDB write per update).
 * - Committed entries are applied in index order, each once per run.
 * - Every proposal and read callback fires exactly once. */
#include "uv_node.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>

#include "uv_log.h"
#include "uv_snapshot.h"

#define DEFAULT_TICK_MS 100
#define DEFAULT_ELECTION_TICKS 10
#define DEFAULT_PROPOSAL_TIMEOUT_MS 5000
#define DEFAULT_SNAPSHOT_THRESHOLD 1024
#define DEFAULT_SNAPSHOT_TRAILING 128

/* A proposal: queued until the end of the loop turn, then waiting for the
 * core's verdict (index, term), then for that index to be applied. */
struct proposal
{
    struct goulette_buf data; /* owned until handed to the core */
    raft_uv_propose_cb cb;
    void *arg;
    uint64_t batch;   /* context of the PROPOSE event that carried it */
    raft_index index; /* 0 until the core accepted it */
    raft_term term;
    uint64_t deadline; /* uv_now() ms */
    struct proposal *next;
};

struct read
{
    uint64_t context;
    raft_index index; /* 0 until the core confirmed it */
    raft_uv_read_cb cb;
    void *arg;
    uint64_t deadline;
    struct read *next;
};

struct raft_uv_node
{
    struct raft_uv_node_config config;
    struct raft raft;
    struct raft_uv_log log;
    struct store_ldb_batch *batch; /* reused for every write */
    uv_timer_t tick;
    uv_check_t check; /* end of loop turn: flush queued proposals */
    uv_idle_t idle;   /* keeps poll from blocking while proposals wait */
    unsigned open_handles;

    struct proposal *queued; /* not yet given to the core, FIFO */
    struct proposal **queued_tail;
    unsigned n_queued;
    struct proposal *waiting; /* given to the core, ordered by batch/index */
    struct read *reads;       /* ordered by context */
    uint64_t next_context;

    raft_index applied; /* highest index handed to the apply callback */

    struct raft_uv_snapshots snaps; /* files, when snapshots_on */
    bool snapshots_on;              /* config.snapshot_dir given */
    raft_index snap_recorded;       /* snapshot whose metadata is durable */
    bool snapshot_wanted;           /* take one at the end of the step */
    bool stopped; /* close began, or a fatal error: take no work */
    int fatal;    /* the error that stopped applying, or 0 */

    void (*close_cb)(void *arg);
    void *close_arg;
};

static int step(struct raft_uv_node *n, const struct raft_event *e);

/* ---- completing callers ------------------------------------------------ */

static void proposal_done(struct proposal *p, int rv)
{
    free(p->data.base);
    p->cb(p->arg, rv, p->index);
    free(p);
}

/* Complete the waiting proposals the application of @e decides. */
static void proposals_applied(struct raft_uv_node *n,
                              const struct raft_entry *e,
                              int result)
{
    struct proposal **pp = &n->waiting;
    while (*pp != NULL) {
        struct proposal *p = *pp;
        if (p->index != 0 && p->index <= e->index) {
            *pp = p->next;
            if (p->index == e->index && p->term == e->term) {
                proposal_done(p, result);
            } else {
                /* Another leader's entry took this index. */
                proposal_done(p, GOULETTE_EDROPPED);
            }
            continue;
        }
        pp = &p->next;
    }
}

static void reads_applied(struct raft_uv_node *n)
{
    struct read **rp = &n->reads;
    while (*rp != NULL) {
        struct read *r = *rp;
        if (r->index != 0 && r->index <= n->applied) {
            *rp = r->next;
            r->cb(r->arg, 0);
            free(r);
            continue;
        }
        rp = &r->next;
    }
}

/* Fail every waiting caller whose deadline passed (or all, when @all).
 * Proposals parked because no leader was known fail with ENOLEADER. */
static void expire(struct raft_uv_node *n, bool all, int rv)
{
    uint64_t now = uv_now(n->config.loop);
    struct proposal **pp = &n->queued;
    struct read **rp = &n->reads;

    n->queued_tail = &n->queued;
    while (*pp != NULL) {
        struct proposal *p = *pp;
        if (all || p->deadline <= now) {
            *pp = p->next;
            n->n_queued--;
            proposal_done(p, all ? rv : GOULETTE_ENOLEADER);
            continue;
        }
        pp = &p->next;
        n->queued_tail = pp;
    }
    pp = &n->waiting;

    while (*pp != NULL) {
        struct proposal *p = *pp;
        if (all || p->deadline <= now) {
            *pp = p->next;
            proposal_done(p, rv);
            continue;
        }
        pp = &p->next;
    }
    while (*rp != NULL) {
        struct read *r = *rp;
        if (all || r->deadline <= now) {
            *rp = r->next;
            r->cb(r->arg, rv);
            free(r);
            continue;
        }
        rp = &r->next;
    }
}

/* ---- executing an update ------------------------------------------------ */

/* Install the staged snapshot @meta into the state machine, then queue its
 * metadata and the discarding of the whole log.  The state machine goes
 * first: a crash between the two leaves it ahead of the log, which is safe
 * (it skips what it has applied); the other order would lose entries. */
static int install_snapshot(struct raft_uv_node *n,
                            const struct raft_snapshot_meta *meta)
{
    int fd;
    int rv;

    rv = raft_uv_snapshots_staged(&n->snaps, meta->index, meta->term, &fd);
    if (rv == 0) {
        rv = n->config.snapshot_install(n->config.data, fd, meta);
    }
    if (rv != 0) {
        goulette_logf(n->config.log, GOULETTE_LOG_ERROR, "raft",
                      "cannot install snapshot %llu: %s",
                      (unsigned long long)meta->index, goulette_strerror(rv));
        return rv;
    }
    if (raft_uv_snapshots_promote(&n->snaps) != 0) {
        goulette_logf(n->config.log, GOULETTE_LOG_WARN, "raft",
                      "installed snapshot %llu cannot be kept for others",
                      (unsigned long long)meta->index);
    }
    rv = raft_uv_log_snapshot_install(&n->log, n->batch, meta);
    if (rv != 0) {
        return rv;
    }
    n->snap_recorded = meta->index;
    if (meta->index > n->applied) {
        n->applied = meta->index;
    }
    goulette_logf(n->config.log, GOULETTE_LOG_INFO, "raft",
                  "installed snapshot %llu (term %llu, %llu bytes)",
                  (unsigned long long)meta->index,
                  (unsigned long long)meta->term,
                  (unsigned long long)meta->size);
    return 0;
}

static int persist(struct raft_uv_node *n, const struct raft_update *u)
{
    const struct raft_snapshot_meta *snap;
    bool dirty = false;
    int rv;

    store_ldb_batch_clear(n->batch);
    if ((u->snapshot_install != NULL || u->snapshot_chunk != NULL) &&
        !n->snapshots_on) {
        goulette_logf(n->config.log, GOULETTE_LOG_ERROR, "raft",
                      "a snapshot arrived but this member keeps none");
        return -ENOTSUP;
    }
    if (u->snapshot_chunk != NULL) { /* rule 0 */
        rv = raft_uv_snapshots_stage(&n->snaps, u->snapshot_chunk);
        if (rv != 0) {
            goulette_logf(n->config.log, GOULETTE_LOG_ERROR, "raft",
                          "cannot stage snapshot %llu: %s",
                          (unsigned long long)u->snapshot_chunk->index,
                          goulette_strerror(rv));
            return rv;
        }
    }
    if (u->snapshot_install != NULL) { /* rule 1 */
        rv = install_snapshot(n, u->snapshot_install);
        if (rv != 0) {
            return rv;
        }
        dirty = true;
    }
    if (u->n_entries > 0) {
        rv = raft_uv_log_append(&n->log, n->batch, u->entries, u->n_entries);
        if (rv != 0) {
            return rv;
        }
        dirty = true;
    }
    if (u->flags & RAFT_UPDATE_HARD_STATE) {
        raft_uv_log_hard_state(n->batch, &u->hard_state);
        dirty = true;
    }
    if (u->flags & RAFT_UPDATE_COMPACT) {
        raft_uv_log_compact(&n->log, n->batch, u->compact);
        dirty = true;
    }
    /* The metadata of a snapshot just taken goes with the compaction it
     * allows: a log compacted without it would not load. */
    snap = raft_snapshot(&n->raft);
    if (snap != NULL && snap->index > n->snap_recorded) {
        rv = raft_uv_log_snapshot_record(n->batch, snap);
        if (rv != 0) {
            return rv;
        }
        n->snap_recorded = snap->index;
        dirty = true;
    }
    if (!dirty) {
        return 0;
    }
    return store_ldb_write(n->config.db, n->batch);
}

/* The arg of the local proposal that @e carries, if any. */
static void *origin_of(struct raft_uv_node *n, const struct raft_entry *e)
{
    struct proposal *p;
    for (p = n->waiting; p != NULL; p = p->next) {
        if (p->index == e->index && p->term == e->term) {
            return p->arg;
        }
    }
    return NULL;
}

static void apply(struct raft_uv_node *n, const struct raft_update *u)
{
    unsigned i;
    for (i = 0; i < u->n_committed && n->fatal == 0; i++) {
        const struct raft_entry *e = &u->committed[i];
        int fatal = 0;
        int result;
        if (e->index <= n->applied) {
            continue;
        }
        result = n->config.apply(n->config.data, e, origin_of(n, e), &fatal);
        if (fatal != 0) {
            n->fatal = fatal;
            goulette_logf(n->config.log, GOULETTE_LOG_ERROR, "raft",
                          "cannot apply entry %llu: %s; this member stops "
                          "applying",
                          (unsigned long long)e->index,
                          goulette_strerror(fatal));
            break;
        }
        n->applied = e->index;
        proposals_applied(n, e, result);
    }
    reads_applied(n);
}

/* Match the core's verdicts to the proposals of each batch. */
static void proposal_results(struct raft_uv_node *n,
                             const struct raft_update *u)
{
    unsigned i;
    for (i = 0; i < u->n_proposals; i++) {
        const struct raft_proposal *res = &u->proposals[i];
        struct proposal **pp = &n->waiting;
        raft_index index = res->index;
        while (*pp != NULL) {
            struct proposal *p = *pp;
            if (p->batch != res->context || p->index != 0) {
                pp = &p->next;
                continue;
            }
            if (res->rv == GOULETTE_ENOLEADER) {
                /* Park it until a leader is known (an election is under
                 * way): it is proposed again then, or fails at its
                 * deadline. */
                *pp = p->next;
                p->next = NULL;
                p->batch = 0;
                *n->queued_tail = p;
                n->queued_tail = &p->next;
                n->n_queued++;
                continue;
            }
            if (res->rv != 0) {
                *pp = p->next;
                proposal_done(p, res->rv);
                continue;
            }
            p->index = index++;
            p->term = res->term;
            pp = &p->next;
        }
    }
}

static void read_results(struct raft_uv_node *n, const struct raft_update *u)
{
    unsigned i;
    for (i = 0; i < u->n_reads; i++) {
        const struct raft_read *res = &u->reads[i];
        struct read **rp = &n->reads;
        while (*rp != NULL) {
            struct read *r = *rp;
            if (r->context != res->context) {
                rp = &r->next;
                continue;
            }
            if (res->rv != 0) {
                *rp = r->next;
                r->cb(r->arg, res->rv);
                free(r);
            } else {
                r->index = res->index;
            }
            break;
        }
    }
    reads_applied(n);
}

/* Send @m; a snapshot chunk gets its bytes from the snapshot file first
 * (raft.h rule 3).  A chunk of a snapshot this member no longer has is
 * dropped: the core starts over with the current one. */
static void send_message(struct raft_uv_node *n, const struct raft_message *m)
{
    struct raft_message copy;
    void *buf;
    int rv;

    if (m->type != RAFT_MSG_SNAPSHOT || m->snapshot.data.base != NULL ||
        m->snapshot.data.len == 0) {
        n->config.send(n->config.data, m);
        return;
    }
    buf = n->snapshots_on ? malloc(m->snapshot.data.len) : NULL;
    if (buf == NULL) {
        return;
    }
    rv = raft_uv_snapshots_read(&n->snaps, m->snapshot.index, m->snapshot.term,
                                m->snapshot.offset, buf, m->snapshot.data.len);
    if (rv != 0) {
        goulette_logf(n->config.log, GOULETTE_LOG_DEBUG, "raft",
                      "snapshot %llu chunk at %llu not sent: %s",
                      (unsigned long long)m->snapshot.index,
                      (unsigned long long)m->snapshot.offset,
                      goulette_strerror(rv));
        free(buf);
        return;
    }
    copy = *m;
    copy.snapshot.data.base = buf;
    n->config.send(n->config.data, &copy);
    free(buf);
}

/* Execute @u.  Returns the follow-up events the rules call for (PERSISTED,
 * APPLIED) through @next (up to 2).  A failed write is fatal for the
 * member: continuing could acknowledge what is not durable. */
static int execute(struct raft_uv_node *n,
                   const struct raft_update *u,
                   struct raft_event *next,
                   unsigned *n_next)
{
    raft_index applied_before = n->applied;
    unsigned i;
    int rv;

    *n_next = 0;
    rv = persist(n, u);
    if (rv != 0) {
        goulette_logf(n->config.log, GOULETTE_LOG_ERROR, "raft",
                      "cannot persist the log: %s", goulette_strerror(rv));
        return rv;
    }
    if (n->config.send != NULL) {
        for (i = 0; i < u->n_messages; i++) {
            send_message(n, &u->messages[i]);
        }
    }
    if (u->n_entries > 0) {
        struct raft_event *e = &next[(*n_next)++];
        const struct raft_entry *last = &u->entries[u->n_entries - 1];
        memset(e, 0, sizeof *e);
        e->type = RAFT_EVENT_PERSISTED;
        e->persisted.index = last->index;
        e->persisted.term = last->term;
    }
    proposal_results(n, u);
    apply(n, u);
    read_results(n, u);
    if (n->snapshots_on &&
        n->applied >= n->snap_recorded + n->config.snapshot_threshold) {
        n->snapshot_wanted = true;
    }
    if (n->applied > applied_before) {
        struct raft_event *e = &next[(*n_next)++];
        memset(e, 0, sizeof *e);
        e->type = RAFT_EVENT_APPLIED;
        e->applied.index = n->applied;
    }
    if ((u->flags & (RAFT_UPDATE_STATE | RAFT_UPDATE_CONF)) &&
        n->config.state_changed != NULL) {
        n->config.state_changed(n->config.data, n);
    }
    return 0;
}

static void take_snapshot(struct raft_uv_node *n);

/* Step @e, then every follow-up event, until the core has nothing left. */
static int step(struct raft_uv_node *n, const struct raft_event *e)
{
    struct raft_event pending[16];
    unsigned head = 0;
    unsigned tail = 0;
    struct raft_update u;
    int rv;

    pending[tail++] = *e;
    while (head < tail) {
        struct raft_event next[2];
        unsigned n_next;
        unsigned i;
        rv = raft_step(&n->raft, &pending[head++], &u);
        if (rv != 0) {
            goulette_logf(n->config.log, GOULETTE_LOG_ERROR, "raft",
                          "raft_step failed on event %d: %s",
                          (int)pending[head - 1].type, goulette_strerror(rv));
            return rv;
        }
        rv = execute(n, &u, next, &n_next);
        if (rv != 0) {
            n->fatal = rv;
            n->stopped = true;
            expire(n, true, rv);
            return rv;
        }
        if (head == tail) {
            head = tail = 0;
        }
        for (i = 0; i < n_next && tail < sizeof pending / sizeof pending[0];
             i++) {
            pending[tail++] = next[i];
        }
    }
    if (n->snapshot_wanted && !n->stopped) {
        n->snapshot_wanted = false;
        take_snapshot(n);
    }
    return 0;
}

/* Take a snapshot of the state machine at its applied index: write it to a
 * durable file, then tell the core, which compacts the log behind it (the
 * metadata and the compaction are persisted together). */
static void take_snapshot(struct raft_uv_node *n)
{
    const struct raft_snapshot_meta *meta;
    struct raft_event e;
    raft_index index = 0;
    uint64_t size = 0;
    int fd;
    int rv;

    rv = raft_uv_snapshots_create(&n->snaps, n->applied, &fd);
    if (rv != 0) {
        goto err;
    }
    rv = n->config.snapshot_export(n->config.data, fd, &index);
    if (rv != 0 || index != n->applied) {
        raft_uv_snapshots_abort(&n->snaps, n->applied, fd);
        rv = rv != 0 ? rv : -EINVAL;
        goto err;
    }
    rv = raft_uv_snapshots_commit(&n->snaps, index, fd, &size);
    if (rv != 0) {
        goto err;
    }
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_SNAPSHOT;
    e.snapshot.index = index;
    e.snapshot.size = size;
    e.snapshot.trailing = n->config.snapshot_trailing;
    rv = step(n, &e);
    if (rv != 0) {
        goto err;
    }
    meta = raft_snapshot(&n->raft);
    if (meta != NULL && meta->index == index) {
        raft_uv_snapshots_set_term(&n->snaps, index, meta->term);
        goulette_logf(n->config.log, GOULETTE_LOG_INFO, "raft",
                      "took snapshot %llu (term %llu, %llu bytes)",
                      (unsigned long long)index, (unsigned long long)meta->term,
                      (unsigned long long)size);
    }
    return;
err:
    goulette_logf(n->config.log, GOULETTE_LOG_WARN, "raft",
                  "cannot take a snapshot at %llu: %s",
                  (unsigned long long)n->applied, goulette_strerror(rv));
}

/* ---- the loop side ------------------------------------------------------ */

static void on_idle(uv_idle_t *h);

static void on_tick(uv_timer_t *t)
{
    struct raft_uv_node *n = t->data;
    struct raft_event e;
    if (n->stopped) {
        return;
    }
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_TICK;
    step(n, &e);
    expire(n, false, GOULETTE_ENOQUORUM);
    if (n->queued != NULL && raft_leader(&n->raft) != 0) {
        uv_idle_start(&n->idle, on_idle); /* flush at the end of the turn */
    }
}

/* Hand every queued proposal to the core as one PROPOSE event, so that
 * their entries are persisted in one write. */
static void flush_proposals(struct raft_uv_node *n)
{
    struct goulette_buf *data;
    struct raft_event e;
    struct proposal *p;
    unsigned i = 0;
    uint64_t batch;

    if (n->queued == NULL || raft_leader(&n->raft) == 0) {
        return; /* parked until a leader is known */
    }
    data = malloc(n->n_queued * sizeof *data);
    batch = ++n->next_context;
    for (p = n->queued; p != NULL; p = p->next) {
        if (data != NULL) {
            data[i++] = p->data;
        }
        p->batch = batch;
    }
    /* Move the queue to the front of the waiting list. */
    *n->queued_tail = n->waiting;
    n->waiting = n->queued;
    n->queued = NULL;
    n->queued_tail = &n->queued;
    n->n_queued = 0;
    if (data == NULL) {
        expire(n, true, -ENOMEM);
        return;
    }
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_PROPOSE;
    e.propose.context = batch;
    e.propose.type = RAFT_ENTRY_NORMAL;
    e.propose.data = data;
    e.propose.n = i;
    step(n, &e);
    free(data);
}

static void on_check(uv_check_t *c)
{
    struct raft_uv_node *n = c->data;
    flush_proposals(n);
    uv_idle_stop(&n->idle);
}

static void on_idle(uv_idle_t *h)
{
    (void)h; /* only there to make the loop's poll non-blocking */
}

int raft_uv_node_propose(struct raft_uv_node *n,
                         const struct goulette_buf *data,
                         raft_uv_propose_cb cb,
                         void *arg)
{
    struct proposal *p;
    if (n->stopped) {
        return n->fatal != 0 ? n->fatal : GOULETTE_ESHUTDOWN;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        return -ENOMEM;
    }
    if (data->len > 0) {
        p->data.base = malloc(data->len);
        if (p->data.base == NULL) {
            free(p);
            return -ENOMEM;
        }
        memcpy(p->data.base, data->base, data->len);
        p->data.len = data->len;
    }
    p->cb = cb;
    p->arg = arg;
    p->deadline = uv_now(n->config.loop) + n->config.proposal_timeout_ms;
    *n->queued_tail = p;
    n->queued_tail = &p->next;
    n->n_queued++;
    uv_idle_start(&n->idle, on_idle);
    return 0;
}

int raft_uv_node_read(struct raft_uv_node *n, raft_uv_read_cb cb, void *arg)
{
    struct raft_event e;
    struct read *r;
    struct read **rp;

    if (n->stopped) {
        return n->fatal != 0 ? n->fatal : GOULETTE_ESHUTDOWN;
    }
    r = calloc(1, sizeof *r);
    if (r == NULL) {
        return -ENOMEM;
    }
    r->context = ++n->next_context;
    r->cb = cb;
    r->arg = arg;
    r->deadline = uv_now(n->config.loop) + n->config.proposal_timeout_ms;
    for (rp = &n->reads; *rp != NULL; rp = &(*rp)->next) {
    }
    *rp = r;
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_READ_INDEX;
    e.read_index.context = r->context;
    step(n, &e);
    return 0;
}

void raft_uv_node_receive(struct raft_uv_node *n, const struct raft_message *m)
{
    struct raft_event e;
    if (n->stopped) {
        return;
    }
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_RECEIVE;
    e.receive.message = m;
    step(n, &e);
}

void raft_uv_node_unreachable(struct raft_uv_node *n, raft_id id)
{
    struct raft_event e;
    if (n->stopped) {
        return;
    }
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_UNREACHABLE;
    e.unreachable.id = id;
    step(n, &e);
}

void raft_uv_node_status(const struct raft_uv_node *n,
                         struct raft_uv_node_status *st)
{
    st->id = n->config.id;
    st->state = raft_state(&n->raft);
    st->leader = raft_leader(&n->raft);
    st->term = raft_current_term(&n->raft);
    st->commit = raft_commit_index(&n->raft);
    st->applied = n->applied;
    st->last = raft_last_index(&n->raft);
    st->conf = raft_configuration(&n->raft);
}

const struct raft *raft_uv_node_raft(const struct raft_uv_node *n)
{
    return &n->raft;
}

/* ---- start and close ---------------------------------------------------- */

/* A member that is the only voter of its configuration need not wait for an
 * election timeout to lead: it campaigns at once. */
static int campaign_if_alone(struct raft_uv_node *n)
{
    const struct raft_configuration *c = raft_configuration(&n->raft);
    struct raft_event e;
    unsigned voters = 0;
    bool self = false;
    unsigned i;

    for (i = 0; c != NULL && i < c->n; i++) {
        if (c->servers[i].role == RAFT_VOTER) {
            voters++;
            self = self || c->servers[i].id == n->config.id;
        }
    }
    if (voters != 1 || !self) {
        return 0;
    }
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_CAMPAIGN;
    return step(n, &e);
}

static int load_and_start(struct raft_uv_node *n)
{
    struct raft_uv_log_state s;
    struct raft_event e;
    int rv;

    rv = raft_uv_log_load(n->config.db, n->config.log, &s);
    if (rv != 0) {
        return rv;
    }
    if (s.n_entries == 0 && s.snapshot.index == 0 && s.hard_state.term == 0 &&
        n->config.bootstrap != NULL) {
        raft_uv_log_state_fini(&s);
        rv = raft_uv_log_bootstrap(n->config.db, n->config.bootstrap);
        if (rv != 0) {
            return rv;
        }
        goulette_logf(n->config.log, GOULETTE_LOG_INFO, "raft",
                      "bootstrapped a new cluster of %u member(s)",
                      n->config.bootstrap->n);
        rv = raft_uv_log_load(n->config.db, n->config.log, &s);
        if (rv != 0) {
            return rv;
        }
    }
    raft_uv_log_init(&n->log, &s);
    n->snap_recorded = s.snapshot.index;
    if (n->snapshots_on && s.snapshot.index > 0 &&
        raft_uv_snapshots_open(&n->snaps, s.snapshot.index, s.snapshot.term) !=
            0) {
        /* The file went missing: a new one is taken as soon as possible,
         * or followers that need it could never catch up. */
        goulette_logf(n->config.log, GOULETTE_LOG_WARN, "raft",
                      "snapshot %llu has no file; taking a new one",
                      (unsigned long long)s.snapshot.index);
        n->snapshot_wanted = true;
    }
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_START;
    e.start.hard_state = s.hard_state;
    e.start.snapshot = s.snapshot.index > 0 ? &s.snapshot : NULL;
    e.start.entries = s.entries;
    e.start.n_entries = s.n_entries;
    e.start.applied = n->config.applied;
    rv = step(n, &e);
    raft_uv_log_state_fini(&s);
    if (rv != 0) {
        return rv;
    }
    return campaign_if_alone(n);
}

int raft_uv_node_start(const struct raft_uv_node_config *config,
                       struct raft_uv_node **out)
{
    struct raft_uv_node *n;
    struct raft_config rc;
    int rv;

    if (config->loop == NULL || config->db == NULL || config->id == 0 ||
        config->apply == NULL) {
        return -EINVAL;
    }
    n = calloc(1, sizeof *n);
    if (n == NULL) {
        return -ENOMEM;
    }
    n->config = *config;
    if (n->config.tick_ms == 0) {
        n->config.tick_ms = DEFAULT_TICK_MS;
    }
    if (n->config.election_ticks == 0) {
        n->config.election_ticks = DEFAULT_ELECTION_TICKS;
    }
    if (n->config.proposal_timeout_ms == 0) {
        n->config.proposal_timeout_ms = DEFAULT_PROPOSAL_TIMEOUT_MS;
    }
    if (n->config.snapshot_threshold == 0) {
        n->config.snapshot_threshold = DEFAULT_SNAPSHOT_THRESHOLD;
    }
    if (n->config.snapshot_trailing == 0) {
        n->config.snapshot_trailing = DEFAULT_SNAPSHOT_TRAILING;
    }
    n->queued_tail = &n->queued;
    n->applied = config->applied;
    n->snaps.fd = -1;
    n->snaps.in_fd = -1;
    if (config->snapshot_dir != NULL) {
        if (config->snapshot_export == NULL ||
            config->snapshot_install == NULL) {
            free(n);
            return -EINVAL;
        }
        rv = raft_uv_snapshots_init(&n->snaps, config->snapshot_dir,
                                    config->log);
        if (rv != 0) {
            free(n);
            return rv;
        }
        n->snapshots_on = true;
    }
    n->batch = store_ldb_batch_new();
    if (n->batch == NULL) {
        rv = -ENOMEM;
        goto err_after_alloc;
    }
    raft_config_defaults(&rc);
    rc.id = config->id;
    rc.seed = config->seed;
    rc.election_ticks = n->config.election_ticks;
    rc.log = config->log;
    rv = raft_init(&n->raft, &rc);
    if (rv != 0) {
        goto err_after_batch;
    }
    rv = load_and_start(n);
    if (rv != 0) {
        goto err_after_raft;
    }
    uv_timer_init(config->loop, &n->tick);
    uv_check_init(config->loop, &n->check);
    uv_idle_init(config->loop, &n->idle);
    n->tick.data = n;
    n->check.data = n;
    n->idle.data = n;
    n->open_handles = 3;
    uv_timer_start(&n->tick, on_tick, n->config.tick_ms, n->config.tick_ms);
    uv_check_start(&n->check, on_check);
    *out = n;
    return 0;

err_after_raft:
    raft_fini(&n->raft);
err_after_batch:
    store_ldb_batch_free(n->batch);
err_after_alloc:
    raft_uv_snapshots_fini(&n->snaps);
    free(n);
    return rv;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct raft_uv_node *n = h->data;
    if (--n->open_handles > 0) {
        return;
    }
    raft_fini(&n->raft);
    store_ldb_batch_free(n->batch);
    raft_uv_snapshots_fini(&n->snaps);
    if (n->close_cb != NULL) {
        n->close_cb(n->close_arg);
    }
    free(n);
}

void raft_uv_node_close(struct raft_uv_node *n,
                        void (*cb)(void *arg),
                        void *arg)
{
    struct proposal *p;
    n->stopped = true;
    n->close_cb = cb;
    n->close_arg = arg;
    /* Queued proposals were never handed to the core. */
    while ((p = n->queued) != NULL) {
        n->queued = p->next;
        proposal_done(p, GOULETTE_ESHUTDOWN);
    }
    n->queued_tail = &n->queued;
    expire(n, true, GOULETTE_ESHUTDOWN);
    uv_close((uv_handle_t *)&n->tick, on_handle_closed);
    uv_close((uv_handle_t *)&n->check, on_handle_closed);
    uv_close((uv_handle_t *)&n->idle, on_handle_closed);
}

/* ---- membership and leadership (goulettectl, ClusterService) -------------
 * Kept apart from the code above: conf changes reuse the proposal waiting
 * list (a conf change is a one-entry proposal whose entry is RAFT_ENTRY_CONF)
 * and transfers are a single event whose refusal raft_step returns. */

int raft_uv_node_change(struct raft_uv_node *n,
                        enum raft_conf_change_type type,
                        raft_id id,
                        const char *address,
                        raft_uv_propose_cb cb,
                        void *arg)
{
    struct raft_event e;
    struct proposal *p;

    if (n->stopped) {
        return n->fatal != 0 ? n->fatal : GOULETTE_ESHUTDOWN;
    }
    if (id == 0 || (type != RAFT_CONF_ADD_LEARNER &&
                    type != RAFT_CONF_PROMOTE && type != RAFT_CONF_REMOVE)) {
        return -EINVAL;
    }
    if (type == RAFT_CONF_ADD_LEARNER &&
        (address == NULL || address[0] == '\0' ||
         strlen(address) >= RAFT_ADDRESS_MAX)) {
        return -EINVAL;
    }
    if (raft_state(&n->raft) != RAFT_LEADER) {
        return raft_leader(&n->raft) != 0 ? GOULETTE_ENOTLEADER
                                          : GOULETTE_ENOLEADER;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        return -ENOMEM;
    }
    p->cb = cb;
    p->arg = arg;
    p->batch = ++n->next_context;
    p->deadline = uv_now(n->config.loop) + n->config.proposal_timeout_ms;
    p->next = n->waiting;
    n->waiting = p;
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_CONF_CHANGE;
    e.conf_change.type = type;
    e.conf_change.id = id;
    e.conf_change.address = address;
    e.conf_change.context = p->batch;
    step(n, &e);
    return 0;
}

int raft_uv_node_transfer(struct raft_uv_node *n, raft_id to)
{
    struct raft_event e;
    struct raft_event next[2];
    struct raft_update u;
    unsigned n_next = 0;
    unsigned i;
    int rv;

    if (n->stopped) {
        return n->fatal != 0 ? n->fatal : GOULETTE_ESHUTDOWN;
    }
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_TRANSFER;
    e.transfer.to = to;
    /* Not step(): a refusal is an answer for the caller, not a failure of
     * the node worth an error in the log. */
    rv = raft_step(&n->raft, &e, &u);
    if (rv != 0) {
        return rv;
    }
    rv = execute(n, &u, next, &n_next);
    if (rv != 0) {
        n->fatal = rv;
        n->stopped = true;
        expire(n, true, rv);
        return rv;
    }
    for (i = 0; i < n_next; i++) {
        step(n, &next[i]);
    }
    return 0;
}
