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

#define DEFAULT_TICK_MS 100
#define DEFAULT_ELECTION_TICKS 10
#define DEFAULT_PROPOSAL_TIMEOUT_MS 5000

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
    bool stopped;       /* close began, or a fatal error: take no work */
    int fatal;          /* the error that stopped applying, or 0 */

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

/* Fail every waiting caller whose deadline passed (or all, when @all). */
static void expire(struct raft_uv_node *n, bool all, int rv)
{
    uint64_t now = uv_now(n->config.loop);
    struct proposal **pp = &n->waiting;
    struct read **rp = &n->reads;

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

static int persist(struct raft_uv_node *n, const struct raft_update *u)
{
    bool dirty = false;
    int rv;

    store_ldb_batch_clear(n->batch);
    if (u->snapshot_install != NULL || u->snapshot_chunk != NULL) {
        /* Receiving snapshots needs the state machine's install path,
         * which this runtime does not have yet: refuse loudly rather than
         * acknowledge data that was not stored. */
        goulette_logf(n->config.log, GOULETTE_LOG_ERROR, "raft",
                      "snapshot install is not supported by this runtime");
        return -ENOTSUP;
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
            n->config.send(n->config.data, &u->messages[i]);
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
    return 0;
}

/* ---- the loop side ------------------------------------------------------ */

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

    if (n->queued == NULL) {
        return;
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
    n->queued_tail = &n->queued;
    n->applied = config->applied;
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
