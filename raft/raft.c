/* The instance: lifecycle, raft_step() dispatch, restart from persisted
 * state (START), validation of untrusted messages, read-only views.  The
 * protocol itself lives in the facility files (election.c, replication.c,
 * snapshot.c, membership.c, read.c, propose.c, transfer.c); the design,
 * invariants and section map are in docs/raft.md. */
#include <stdlib.h>
#include <string.h>

#include "configuration.h"
#include "election.h"
#include "impl.h"
#include "membership.h"
#include "propose.h"
#include "read.h"
#include "replication.h"
#include "snapshot.h"
#include "transfer.h"

void raft_config_defaults(struct raft_config *c)
{
    memset(c, 0, sizeof *c);
    c->election_ticks = 10;
    c->heartbeat_ticks = 1;
    c->pre_vote = true;
    c->check_quorum = true;
    c->max_inflight = 256;
    c->max_inflight_bytes = 16u << 20;
    c->max_append_bytes = 1u << 20;
    c->snapshot_chunk_bytes = 1u << 20;
    c->max_uncommitted_bytes = 64u << 20;
}

int raft_init(struct raft *r, const struct raft_config *config)
{
    struct raft__impl *i;
    if (config == NULL || config->id == 0 || config->election_ticks == 0 ||
        config->heartbeat_ticks == 0 ||
        config->heartbeat_ticks >= config->election_ticks ||
        config->max_inflight == 0 || config->max_append_bytes == 0 ||
        config->snapshot_chunk_bytes == 0) {
        return -EINVAL;
    }
    i = calloc(1, sizeof *i);
    if (i == NULL) {
        return -ENOMEM;
    }
    i->cfg = *config;
    if (i->cfg.max_uncommitted_bytes == 0) {
        i->cfg.max_uncommitted_bytes = UINT64_MAX;
    }
    raft__prng_seed(&i->prng, config->seed);
    raft__log_init(&i->log);
    raft_configuration_init(&i->conf);
    raft_configuration_init(&i->snap.conf);
    raft__out_init(&i->out);
    i->state = RAFT_FOLLOWER;
    r->impl = i;
    return 0;
}

void raft_fini(struct raft *r)
{
    struct raft__impl *i = r->impl;
    if (i == NULL) {
        return;
    }
    raft__progress_clear(i);
    raft__log_fini(&i->log);
    raft_configuration_fini(&i->conf);
    raft_configuration_fini(&i->snap.conf);
    raft__out_fini(&i->out);
    free(i->votes);
    free(i->reads);
    free(i);
    r->impl = NULL;
}

/* ---------------------------------------------------------------------
 * Leader helpers shared by the facility files
 * --------------------------------------------------------------------- */

struct raft__progress *raft__progress_get(struct raft__impl *r, raft_id id)
{
    unsigned i;
    for (i = 0; i < r->n_prs; i++) {
        if (r->prs[i].id == id) {
            return &r->prs[i];
        }
    }
    return NULL;
}

void raft__progress_clear(struct raft__impl *r)
{
    unsigned i;
    for (i = 0; i < r->n_prs; i++) {
        raft__progress_fini(&r->prs[i]);
    }
    free(r->prs);
    r->prs = NULL;
    r->n_prs = 0;
}

int raft__progress_sync(struct raft__impl *r, bool reset)
{
    struct raft__progress *prs, *old;
    unsigned i;
    prs = calloc(r->conf.n > 0 ? r->conf.n : 1, sizeof *prs);
    if (prs == NULL) {
        return -ENOMEM;
    }
    /* First allocate what is new, so that a failure changes nothing... */
    for (i = 0; i < r->conf.n; i++) {
        raft_id id = r->conf.servers[i].id;
        if (!reset && raft__progress_get(r, id) != NULL) {
            continue;
        }
        if (raft__progress_init(&prs[i], id, raft__last_index(r) + 1,
                                r->cfg.max_inflight) != 0) {
            while (i-- > 0) {
                raft__progress_fini(&prs[i]); /* NULL arrays if not init */
            }
            free(prs);
            return -ENOMEM;
        }
        prs[i].recent_active = true;
        if (id == r->cfg.id) {
            prs[i].match = r->stable;
        }
    }
    /* ...then move what members that stay already had. */
    for (i = 0; i < r->conf.n; i++) {
        old = reset ? NULL : raft__progress_get(r, r->conf.servers[i].id);
        if (old != NULL) {
            prs[i] = *old;
            old->inflights.last = NULL;
            old->inflights.bytes = NULL;
        }
    }
    raft__progress_clear(r);
    r->prs = prs;
    r->n_prs = r->conf.n;
    return 0;
}

raft_index raft__append_local(struct raft__impl *r,
                              enum raft_entry_type type,
                              const struct goulette_buf *data)
{
    struct raft_entry e = {0};
    e.term = r->term;
    e.index = raft__last_index(r) + 1;
    e.type = type;
    if (data != NULL) {
        e.data = *data;
    }
    if (raft__log_append(&r->log, &e) != 0) {
        r->out.oom = true;
        return 0;
    }
    r->uncommitted_bytes += e.data.len;
    if (type == RAFT_ENTRY_CONF) {
        raft__membership_appended(r, raft__log_get(&r->log, e.index));
    }
    return e.index;
}

/* ---------------------------------------------------------------------
 * START: rebuild from what the runtime loaded
 * --------------------------------------------------------------------- */

/* Entries must be consecutive with non-decreasing, nonzero terms. */
static bool entries_valid(const struct raft_entry *e,
                          unsigned n,
                          raft_index first,
                          raft_term min_term,
                          raft_term max_term)
{
    unsigned i;
    for (i = 0; i < n; i++) {
        if (e[i].index != first + i || e[i].term < min_term || e[i].term == 0 ||
            e[i].term > max_term ||
            (e[i].data.len > 0 && e[i].data.base == NULL) ||
            (e[i].type != RAFT_ENTRY_NORMAL && e[i].type != RAFT_ENTRY_CONF &&
             e[i].type != RAFT_ENTRY_BARRIER)) {
            return false;
        }
        min_term = e[i].term;
    }
    return true;
}

static int start(struct raft__impl *r, const struct raft_event *ev)
{
    const struct raft_snapshot_meta *snap = ev->start.snapshot;
    const struct raft_entry *e = ev->start.entries;
    unsigned n = ev->start.n_entries;
    raft_index base = snap != NULL ? snap->index : 0;
    raft_term base_term = snap != NULL ? snap->term : 0;
    unsigned i;
    int rv;
    if (n > 0 && e == NULL) {
        return -EINVAL;
    }
    while (n > 0 && e->index <= base) { /* trailing entries below it */
        e++;
        n--;
    }
    /* Entries after the snapshot with an older term than its last entry
     * are a stale suffix that a runtime kept across an install: they cannot
     * be committed (terms never decrease along a log), so drop them. */
    for (i = 0; i < n; i++) {
        if (e[i].term < base_term) {
            raft__warnf(r, "%llu: stale entries from %llu on dropped at start",
                        (unsigned long long)r->cfg.id,
                        (unsigned long long)e[i].index);
            n = i;
            break;
        }
    }
    if (!entries_valid(e, n, base + 1, base_term, UINT64_MAX)) {
        return -EINVAL;
    }
    if (snap != NULL && snap->index > 0) {
        rv = raft_configuration_copy(&snap->conf, &r->snap.conf);
        if (rv != 0) {
            return rv;
        }
        r->snap.index = snap->index;
        r->snap.term = snap->term;
        r->snap.conf_index = snap->conf_index;
        r->snap.size = snap->size;
    }
    raft__log_reset(&r->log, base, base_term, &r->out.garbage);
    for (; n > 0; n--, e++) {
        if (raft__log_append(&r->log, e) != 0) {
            /* Leave nothing half-loaded: START may be retried. */
            raft__log_reset(&r->log, 0, 0, &r->out.garbage);
            raft_configuration_fini(&r->snap.conf);
            memset(&r->snap, 0, sizeof r->snap);
            return -ENOMEM;
        }
    }
    r->term = ev->start.hard_state.term;
    r->vote = ev->start.hard_state.vote;
    r->stable = raft__last_index(r);
    r->persist_from = r->stable + 1;
    r->applied = ev->start.applied > base ? ev->start.applied : base;
    if (r->applied > r->stable) {
        r->applied = r->stable;
    }
    r->applied_sent = r->applied;
    r->commit = ev->start.hard_state.commit;
    if (r->commit < r->applied) {
        r->commit = r->applied;
    }
    if (r->commit > r->stable) {
        r->commit = r->stable;
    }
    raft__membership_reload(r);
    raft__become_follower(r, r->term, 0);
    r->out.hs_prev.term = r->term;
    r->out.hs_prev.vote = r->vote;
    r->out.hs_prev.commit = r->commit;
    r->started = true;
    return 0;
}

/* ---------------------------------------------------------------------
 * RECEIVE: validation and dispatch
 * --------------------------------------------------------------------- */

static bool chunk_valid(const struct raft_snapshot_chunk *c)
{
    struct raft_configuration conf;
    if (c->index == 0 || c->term == 0 || c->offset > c->size ||
        c->data.len > c->size - c->offset ||
        (c->data.len > 0 && c->data.base == NULL) ||
        c->last != (c->offset + c->data.len == c->size)) {
        return false;
    }
    if (c->last) {
        raft_configuration_init(&conf);
        if (raft_configuration_decode(&c->conf, &conf) != 0) {
            return false;
        }
        raft_configuration_fini(&conf);
    }
    return true;
}

/* Untrusted input: anything inconsistent is dropped, never asserted on. */
static const char *invalid(const struct raft__impl *r,
                           const struct raft_message *m)
{
    bool forwarded = m->type >= RAFT_MSG_PROPOSE;
    if (m->type < RAFT_MSG_APPEND || m->type > RAFT_MSG_READ_INDEX_RESP) {
        return "unknown type";
    }
    if (m->from == 0 || m->from == r->cfg.id ||
        (m->to != 0 && m->to != r->cfg.id)) {
        return "bad sender or recipient";
    }
    if (!forwarded && m->term == 0) {
        return "term 0";
    }
    if (m->n_entries > 0 && m->entries == NULL) {
        return "missing entries";
    }
    if (m->type == RAFT_MSG_APPEND &&
        !entries_valid(m->entries, m->n_entries, m->log_index + 1, m->log_term,
                       m->term)) {
        return "inconsistent entries";
    }
    if (m->type == RAFT_MSG_PROPOSE && m->n_entries == 0) {
        return "empty proposal";
    }
    if (m->type == RAFT_MSG_SNAPSHOT && !chunk_valid(&m->snapshot)) {
        return "inconsistent snapshot chunk";
    }
    return NULL;
}

static void recv_from_leader(struct raft__impl *r, const struct raft_message *m)
{
    if (r->state == RAFT_LEADER) {
        raft__warnf(r, "%llu: %s from %llu in my own term %llu dropped",
                    (unsigned long long)r->cfg.id, raft_msg_type_name(m->type),
                    (unsigned long long)m->from, (unsigned long long)m->term);
        return;
    }
    if (r->state != RAFT_FOLLOWER) {
        raft__become_follower(r, r->term, m->from);
    }
    if (m->type == RAFT_MSG_APPEND) {
        raft__recv_append(r, m);
    } else if (m->type == RAFT_MSG_HEARTBEAT) {
        raft__recv_heartbeat(r, m);
    } else {
        raft__recv_snapshot(r, m);
    }
}

static void receive(struct raft__impl *r, const struct raft_message *m)
{
    const char *why = invalid(r, m);
    bool leader;
    if (why != NULL) {
        raft__warnf(r, "%llu: message dropped: %s",
                    (unsigned long long)r->cfg.id, why);
        return;
    }
    if (!raft__election_check_term(r, m)) {
        return;
    }
    leader = r->state == RAFT_LEADER;
    switch (m->type) {
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        recv_from_leader(r, m);
        break;
    case RAFT_MSG_APPEND_RESP:
        if (leader) {
            raft__recv_append_resp(r, m);
        }
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        if (leader) {
            raft__recv_heartbeat_resp(r, m);
        }
        break;
    case RAFT_MSG_SNAPSHOT_RESP:
        if (leader) {
            raft__recv_snapshot_resp(r, m);
        }
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        raft__recv_vote(r, m);
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP:
        raft__recv_vote_resp(r, m);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        raft__recv_timeout_now(r, m);
        break;
    case RAFT_MSG_PROPOSE:
        raft__recv_propose(r, m);
        break;
    case RAFT_MSG_PROPOSE_RESP:
        raft__recv_propose_resp(r, m);
        break;
    case RAFT_MSG_READ_INDEX:
        raft__recv_read_index(r, m);
        break;
    case RAFT_MSG_READ_INDEX_RESP:
        raft__recv_read_index_resp(r, m);
        break;
    }
}

/* ---------------------------------------------------------------------
 * raft_step
 * --------------------------------------------------------------------- */

static void unreachable(struct raft__impl *r, raft_id id)
{
    struct raft__progress *p = raft__progress_get(r, id);
    if (r->state != RAFT_LEADER || p == NULL || p->id == r->cfg.id) {
        return;
    }
    if (p->state != RAFT__PR_PROBE) {
        raft__progress_become_probe(p); /* restart from what is known */
    }
}

static int dispatch(struct raft__impl *r, const struct raft_event *ev)
{
    switch (ev->type) {
    case RAFT_EVENT_START:
        return -EINVAL; /* only once, first */
    case RAFT_EVENT_RECEIVE:
        if (ev->receive.message == NULL) {
            return -EINVAL;
        }
        receive(r, ev->receive.message);
        return 0;
    case RAFT_EVENT_TICK:
        raft__election_tick(r);
        return 0;
    case RAFT_EVENT_PROPOSE:
        raft__propose(r, ev);
        return 0;
    case RAFT_EVENT_READ_INDEX:
        raft__read_request(r, ev->read_index.context, 0);
        return 0;
    case RAFT_EVENT_PERSISTED:
        raft__persisted(r, ev->persisted.index, ev->persisted.term);
        return 0;
    case RAFT_EVENT_APPLIED:
        if (ev->applied.index > r->applied) {
            r->applied = ev->applied.index < r->applied_sent ? ev->applied.index
                                                             : r->applied_sent;
        }
        return 0;
    case RAFT_EVENT_SNAPSHOT:
        return raft__snapshot_taken(r, ev);
    case RAFT_EVENT_CONF_CHANGE:
        raft__membership_change(r, ev);
        return 0;
    case RAFT_EVENT_TRANSFER:
        return raft__transfer_start(r, ev->transfer.to);
    case RAFT_EVENT_CAMPAIGN:
        raft__campaign(r, false);
        return 0;
    case RAFT_EVENT_UNREACHABLE:
        unreachable(r, ev->unreachable.id);
        return 0;
    }
    return -EINVAL;
}

int raft_step(struct raft *r,
              const struct raft_event *event,
              struct raft_update *update)
{
    struct raft__impl *i = r->impl;
    int rv;
    memset(update, 0, sizeof *update);
    if (event == NULL) {
        return -EINVAL;
    }
    raft__out_reset(&i->out);
    if (!i->started) {
        rv = event->type == RAFT_EVENT_START ? start(i, event) : -EINVAL;
    } else {
        rv = dispatch(i, event);
    }
    if (rv != 0) {
        return rv;
    }
    if (i->out.oom || i->out.garbage.oom) {
        /* What could not be allocated (a message, a result, a vote tally, a
         * proposal's entry) was dropped, as a lossy network or a refused
         * proposal would be; the state changes already made are still
         * handed out below, so nothing durable is ever withheld. */
        goulette_logf(i->cfg.log, GOULETTE_LOG_ERROR, RAFT__SUBSYS,
                      "%llu: out of memory: some messages or results of this "
                      "step were dropped",
                      (unsigned long long)i->cfg.id);
    }
    raft__out_finish(i, update);
    return 0;
}

/* ---------------------------------------------------------------------
 * Views
 * --------------------------------------------------------------------- */

enum raft_state raft_state(const struct raft *r)
{
    return r->impl->state;
}

raft_id raft_leader(const struct raft *r)
{
    return r->impl->leader;
}

raft_term raft_current_term(const struct raft *r)
{
    return r->impl->term;
}

raft_index raft_commit_index(const struct raft *r)
{
    return r->impl->commit;
}

raft_index raft_last_index(const struct raft *r)
{
    return raft__last_index(r->impl);
}

const struct raft_configuration *raft_configuration(const struct raft *r)
{
    return &r->impl->conf;
}

const struct raft_snapshot_meta *raft_snapshot(const struct raft *r)
{
    return r->impl->snap.index != 0 ? &r->impl->snap : NULL;
}

int raft_progress(const struct raft *r, raft_id id, raft_index *match)
{
    struct raft__progress *p;
    if (r->impl->state != RAFT_LEADER) {
        return GOULETTE_ENOTLEADER;
    }
    p = raft__progress_get(r->impl, id);
    if (p == NULL) {
        return GOULETTE_ENOTFOUND;
    }
    *match = id == r->impl->cfg.id ? r->impl->stable : p->match;
    return 0;
}

const char *raft_state_name(enum raft_state s)
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

const char *raft_msg_type_name(enum raft_msg_type t)
{
    static const char *const names[] = {
        "?",
        "append",
        "append-resp",
        "vote",
        "vote-resp",
        "prevote",
        "prevote-resp",
        "heartbeat",
        "heartbeat-resp",
        "snapshot",
        "snapshot-resp",
        "timeout-now",
        "propose",
        "propose-resp",
        "read-index",
        "read-index-resp",
    };
    if ((unsigned)t >= sizeof names / sizeof names[0]) {
        return "?";
    }
    return names[t];
}
