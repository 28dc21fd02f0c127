/* Cluster membership changes, dissertation §4.1 ("a server always uses the
 * latest configuration in its log, regardless of whether the entry is
 * committed"; "a leader may not append a new configuration entry until the
 * previous one has committed", and, from the single-server-change bug fix,
 * until it has committed an entry of its own term), §4.2.1 (new servers join
 * as learners, then are promoted) and §4.2.2 (removing the current leader:
 * it keeps managing the cluster without counting itself, and steps down
 * once the removal has committed). */
#include "membership.h"

#include <stdlib.h>

#include "configuration.h"
#include "election.h"
#include "replication.h"

static void set_conf(struct raft__impl *r,
                     struct raft_configuration *c,
                     raft_index index)
{
    raft_configuration_fini(&r->conf);
    r->conf = *c;
    r->conf_index = index;
    r->out.conf_changed = true;
    if (r->state == RAFT_LEADER && raft__progress_sync(r, false) != 0) {
        r->out.oom = true;
    }
}

void raft__membership_reload(struct raft__impl *r)
{
    struct raft_configuration c;
    raft_index i;
    int rv;
    raft_configuration_init(&c);
    for (i = raft__last_index(r); i > r->log.offset; i--) {
        const struct raft_entry *e = raft__log_get(&r->log, i);
        if (e->type != RAFT_ENTRY_CONF) {
            continue;
        }
        rv = raft_configuration_decode(&e->data, &c);
        if (rv == 0) {
            set_conf(r, &c, i);
            return;
        }
        if (rv == -ENOMEM) {
            /* Never fall back to an older configuration by mistake: keep
             * the current one; the failure is logged by raft_step. */
            r->out.oom = true;
            return;
        }
        raft__warnf(r, "%llu: undecodable configuration at %llu skipped",
                    (unsigned long long)r->cfg.id, (unsigned long long)i);
    }
    if (raft_configuration_copy(&r->snap.conf, &c) != 0) {
        r->out.oom = true;
        return;
    }
    set_conf(r, &c, r->snap.conf_index);
}

void raft__membership_appended(struct raft__impl *r, const struct raft_entry *e)
{
    struct raft_configuration c;
    raft_configuration_init(&c);
    if (e == NULL || raft_configuration_decode(&e->data, &c) != 0) {
        raft__warnf(r, "%llu: undecodable configuration entry ignored",
                    (unsigned long long)r->cfg.id);
        return;
    }
    set_conf(r, &c, e->index);
}

/* Hand leadership to the most up-to-date voter right away, so the cluster
 * does not wait an election timeout after the leader's removal. */
static void hand_over(struct raft__impl *r)
{
    struct raft__progress *best = NULL;
    struct raft_message m = {0};
    unsigned i;
    for (i = 0; i < r->n_prs; i++) {
        struct raft__progress *p = &r->prs[i];
        if (p->id != r->cfg.id && raft__conf_is_voter(&r->conf, p->id) &&
            p->match == raft__last_index(r) &&
            (best == NULL || p->match > best->match)) {
            best = p;
        }
    }
    if (best == NULL) {
        return;
    }
    m.type = RAFT_MSG_TIMEOUT_NOW;
    m.to = best->id;
    m.term = r->term;
    raft__send(r, &m);
}

void raft__membership_committed(struct raft__impl *r)
{
    if (r->state != RAFT_LEADER || r->commit < r->conf_index ||
        raft__conf_is_voter(&r->conf, r->cfg.id)) {
        return;
    }
    raft__debugf(r, "%llu: removal committed, stepping down",
                 (unsigned long long)r->cfg.id);
    raft__broadcast_append(r); /* let the others learn the commit */
    hand_over(r);
    raft__become_follower(r, r->term, 0);
}

/* Apply the change in @ev to @c.  Errors: -EINVAL, -EEXIST,
 * GOULETTE_ENOTFOUND, -ENOMEM. */
static int change(const struct raft_event *ev, struct raft_configuration *c)
{
    const struct raft_server *s = raft_configuration_get(c, ev->conf_change.id);
    switch (ev->conf_change.type) {
    case RAFT_CONF_ADD_LEARNER:
        return raft_configuration_add(c, ev->conf_change.id,
                                      ev->conf_change.address, RAFT_LEARNER);
    case RAFT_CONF_PROMOTE:
        if (s == NULL) {
            return GOULETTE_ENOTFOUND;
        }
        if (s->role != RAFT_LEARNER) {
            return -EINVAL;
        }
        ((struct raft_server *)s)->role = RAFT_VOTER;
        return 0;
    case RAFT_CONF_REMOVE:
        if (s == NULL) {
            return GOULETTE_ENOTFOUND;
        }
        if (s->role == RAFT_VOTER && raft__conf_n_voters(c) == 1) {
            return -EINVAL; /* the last voter cannot go */
        }
        raft__conf_remove(c, ev->conf_change.id);
        return 0;
    }
    return -EINVAL;
}

/* Why the leader cannot take a change now, or 0. */
static int refusal(const struct raft__impl *r)
{
    if (r->state != RAFT_LEADER) {
        return r->leader != 0 ? GOULETTE_ENOTLEADER : GOULETTE_ENOLEADER;
    }
    if (r->transfer_to != 0) {
        return GOULETTE_ETRANSFER;
    }
    if (r->conf_index > r->commit ||
        raft__log_term(&r->log, r->commit) != r->term) {
        return GOULETTE_ECONFCHANGE;
    }
    return 0;
}

void raft__membership_change(struct raft__impl *r, const struct raft_event *ev)
{
    struct raft_configuration c;
    struct goulette_buf buf = {NULL, 0};
    uint64_t ctx = ev->conf_change.context;
    raft_index index;
    int rv = refusal(r);
    if (rv != 0) {
        raft__out_proposal(r, ctx, rv, 0, 0);
        return;
    }
    rv = raft_configuration_copy(&r->conf, &c);
    if (rv == 0) {
        rv = change(ev, &c);
        if (rv == 0) {
            rv = raft_configuration_encode(&c, &buf);
        }
        raft_configuration_fini(&c);
    }
    if (rv != 0) {
        raft__out_proposal(r, ctx, rv, 0, 0);
        return;
    }
    index = raft__append_local(r, RAFT_ENTRY_CONF, &buf);
    free(buf.base);
    if (index == 0) {
        raft__out_proposal(r, ctx, -ENOMEM, 0, 0);
        return;
    }
    raft__out_proposal(r, ctx, 0, index, r->term);
    raft__maybe_commit(r);
    raft__broadcast_append(r);
}
