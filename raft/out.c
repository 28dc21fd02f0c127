/* Assembly of struct raft_update: everything one raft_step() hands back,
 * in the order of the execution rules of include/goulette/raft.h.  Entries to
 * persist and committed entries are slices of the in-memory log; messages are
 * gathered while the event is handled and their entries resolved last. */
#include "out.h"

#include <stdlib.h>
#include <string.h>

#include "impl.h"

bool raft__garbage_add(struct raft__garbage *g, void *p)
{
    if (p == NULL) {
        return true;
    }
    if (g->n == g->cap) {
        unsigned cap = g->cap == 0 ? 32 : g->cap * 2;
        void **ptrs = realloc(g->ptrs, cap * sizeof *ptrs);
        if (ptrs == NULL) {
            /* Freeing now is the only option left; callers that need the
             * memory for the update are told so and drop what needed it. */
            g->oom = true;
            free(p);
            return false;
        }
        g->ptrs = ptrs;
        g->cap = cap;
    }
    g->ptrs[g->n++] = p;
    return true;
}

void raft__garbage_free(struct raft__garbage *g)
{
    unsigned i;
    for (i = 0; i < g->n; i++) {
        free(g->ptrs[i]);
    }
    g->n = 0;
}

void raft__out_init(struct raft__out *o)
{
    memset(o, 0, sizeof *o);
}

void raft__out_fini(struct raft__out *o)
{
    raft__garbage_free(&o->garbage);
    free(o->garbage.ptrs);
    free(o->msgs);
    free(o->props);
    free(o->reads);
    memset(o, 0, sizeof *o);
}

void raft__out_reset(struct raft__out *o)
{
    raft__garbage_free(&o->garbage);
    o->garbage.oom = false;
    o->n_msgs = 0;
    o->n_props = 0;
    o->n_reads = 0;
    o->oom = false;
    o->chunk = NULL;
    o->install = false;
    o->conf_changed = false;
    o->compact = 0;
}

/* Make room for one more element of @size in *arr. */
static bool grow(void **arr, unsigned n, unsigned *cap, size_t size)
{
    void *p;
    unsigned c;
    if (n < *cap) {
        return true;
    }
    c = *cap == 0 ? 16 : *cap * 2;
    p = realloc(*arr, c * size);
    if (p == NULL) {
        return false;
    }
    *arr = p;
    *cap = c;
    return true;
}

void raft__send(struct raft__impl *r, const struct raft_message *m)
{
    struct raft__out *o = &r->out;
    if (!grow((void **)&o->msgs, o->n_msgs, &o->cap_msgs, sizeof *m)) {
        o->oom = true;
        return;
    }
    o->msgs[o->n_msgs] = *m;
    o->msgs[o->n_msgs].from = r->cfg.id;
    o->n_msgs++;
}

void raft__out_proposal(struct raft__impl *r,
                        uint64_t context,
                        int rv,
                        raft_index index,
                        raft_term term)
{
    struct raft__out *o = &r->out;
    struct raft_proposal *p;
    if (!grow((void **)&o->props, o->n_props, &o->cap_props, sizeof *p)) {
        o->oom = true;
        return;
    }
    p = &o->props[o->n_props++];
    p->context = context;
    p->rv = rv;
    p->index = rv == 0 ? index : 0;
    p->term = rv == 0 ? term : 0;
}

void raft__out_read(struct raft__impl *r,
                    uint64_t context,
                    int rv,
                    raft_index index)
{
    struct raft__out *o = &r->out;
    struct raft_read *p;
    if (!grow((void **)&o->reads, o->n_reads, &o->cap_reads, sizeof *p)) {
        o->oom = true;
        return;
    }
    p = &o->reads[o->n_reads++];
    p->context = context;
    p->rv = rv;
    p->index = rv == 0 ? index : 0;
}

void *raft__out_alloc(struct raft__impl *r, size_t size)
{
    void *p = malloc(size == 0 ? 1 : size);
    if (p == NULL) {
        r->out.oom = true;
        return NULL;
    }
    if (!raft__garbage_add(&r->out.garbage, p)) {
        r->out.oom = true;
        return NULL;
    }
    return p;
}

/* Point APPEND messages at their entries in the log, now that the log no
 * longer moves in this step; drop those whose entries went away. */
static void resolve_messages(struct raft__impl *r)
{
    struct raft__out *o = &r->out;
    unsigned i, k = 0;
    for (i = 0; i < o->n_msgs; i++) {
        struct raft_message *m = &o->msgs[i];
        if (m->type == RAFT_MSG_APPEND && m->n_entries > 0 &&
            m->entries == NULL) {
            struct raft_entry *e = raft__log_get(&r->log, m->log_index + 1);
            if (e == NULL ||
                raft__log_get(&r->log, m->log_index + m->n_entries) == NULL) {
                continue;
            }
            m->entries = e;
        }
        o->msgs[k++] = *m;
    }
    o->n_msgs = k;
}

static void finish_state(struct raft__impl *r, struct raft_update *u)
{
    struct raft__out *o = &r->out;
    struct raft_hard_state hs = {r->term, r->vote, r->commit};
    if (raft__bug(r, RAFT_BUG_NO_PERSIST_VOTE)) {
        hs.vote = 0;
    }
    if (hs.term != o->hs_prev.term || hs.vote != o->hs_prev.vote ||
        hs.commit != o->hs_prev.commit) {
        u->flags |= RAFT_UPDATE_HARD_STATE;
        o->hs_prev = hs;
    }
    u->hard_state = o->hs_prev;
    if (r->state != o->state_prev || r->leader != o->leader_prev ||
        r->term != o->term_prev) {
        u->flags |= RAFT_UPDATE_STATE;
        o->state_prev = r->state;
        o->leader_prev = r->leader;
        o->term_prev = r->term;
    }
    u->state = r->state;
    u->leader = r->leader;
    u->term = r->term;
    if (o->conf_changed) {
        u->flags |= RAFT_UPDATE_CONF;
    }
    u->conf = &r->conf;
    if (o->compact > 0) {
        u->flags |= RAFT_UPDATE_COMPACT;
        u->compact = o->compact;
    }
}

static void finish_entries(struct raft__impl *r, struct raft_update *u)
{
    raft_index last = raft__last_index(r);
    raft_index hi, from;
    if (r->persist_from <= r->log.offset) {
        r->persist_from = r->log.offset + 1;
    }
    if (r->persist_from <= last) {
        u->entries = raft__log_get(&r->log, r->persist_from);
        u->n_entries = (unsigned)(last - r->persist_from + 1);
        r->persist_from = last + 1;
    }
    /* Committed entries are handed out once durable locally (rule 5). */
    hi = r->commit < r->stable ? r->commit : r->stable;
    if (hi > r->applied_sent) {
        from = r->applied_sent + 1;
        if (raft__bug(r, RAFT_BUG_APPLY_TWICE) &&
            raft__log_get(&r->log, from - 1) != NULL) {
            from--;
        }
        u->committed = raft__log_get(&r->log, from);
        u->n_committed = (unsigned)(hi - from + 1);
        r->applied_sent = hi;
    }
}

void raft__out_finish(struct raft__impl *r, struct raft_update *u)
{
    struct raft__out *o = &r->out;
    memset(u, 0, sizeof *u);
    resolve_messages(r);
    finish_state(r, u);
    if (o->install) {
        u->snapshot_install = &r->snap;
    }
    u->snapshot_chunk = o->chunk;
    finish_entries(r, u);
    u->messages = o->n_msgs > 0 ? o->msgs : NULL;
    u->n_messages = o->n_msgs;
    u->proposals = o->n_props > 0 ? o->props : NULL;
    u->n_proposals = o->n_props;
    u->reads = o->n_reads > 0 ? o->reads : NULL;
    u->n_reads = o->n_reads;
}
