/* Proposals (dissertation §3.5 "the leader appends the command to its log
 * as a new entry", §6.2 "servers other than the leader [...] forward the
 * request to the leader").  The leader refuses proposals while it transfers
 * leadership (§3.10) and when the bytes appended but not committed pass
 * max_uncommitted_bytes.  A follower with no known leader answers
 * GOULETTE_ENOLEADER at once; a forwarded proposal's result comes back in
 * a PROPOSE_RESP carrying the caller's context. */
#include "propose.h"

#include <string.h>

#include "replication.h"

/* Why the leader cannot take @bytes more now, or 0. */
static int refusal(const struct raft__impl *r, uint64_t bytes)
{
    if (r->state != RAFT_LEADER) {
        return r->leader != 0 ? GOULETTE_ENOTLEADER : GOULETTE_ENOLEADER;
    }
    if (r->transfer_to != 0) {
        return GOULETTE_ETRANSFER;
    }
    if (r->uncommitted_bytes > 0 &&
        r->uncommitted_bytes + bytes > r->cfg.max_uncommitted_bytes) {
        return -ENOBUFS;
    }
    return 0;
}

/* Leader: append @n entries of @type.  Returns 0 and the first index, or
 * an error for the proposal result. */
static int leader_append(struct raft__impl *r,
                         enum raft_entry_type type,
                         const struct goulette_buf *data,
                         unsigned n,
                         raft_index *first)
{
    uint64_t bytes = 0;
    unsigned i;
    int rv;
    if (n == 0 || (type != RAFT_ENTRY_NORMAL && type != RAFT_ENTRY_BARRIER)) {
        return -EINVAL;
    }
    for (i = 0; i < n; i++) {
        bytes += data != NULL ? data[i].len : 0;
    }
    rv = refusal(r, bytes);
    if (rv != 0) {
        return rv;
    }
    for (i = 0; i < n; i++) {
        raft_index index = raft__append_local(
            r, type, type == RAFT_ENTRY_NORMAL && data ? &data[i] : NULL);
        if (index == 0) {
            return -ENOMEM;
        }
        if (i == 0) {
            *first = index;
        }
    }
    raft__maybe_commit(r);
    raft__broadcast_append(r);
    return 0;
}

/* Follower: send the proposal to the leader, data copied (the event's is
 * borrowed only for this call). */
static void forward(struct raft__impl *r, const struct raft_event *ev)
{
    struct raft_message m = {0};
    struct raft_entry *entries;
    unsigned i;
    entries = raft__out_alloc(r, ev->propose.n * sizeof *entries);
    if (entries == NULL) {
        return;
    }
    for (i = 0; i < ev->propose.n; i++) {
        const struct goulette_buf *d = &ev->propose.data[i];
        memset(&entries[i], 0, sizeof entries[i]);
        entries[i].type = ev->propose.type;
        if (ev->propose.type == RAFT_ENTRY_NORMAL && d->len > 0) {
            entries[i].data.base = raft__out_alloc(r, d->len);
            if (entries[i].data.base == NULL) {
                return;
            }
            memcpy(entries[i].data.base, d->base, d->len);
            entries[i].data.len = d->len;
        }
    }
    m.type = RAFT_MSG_PROPOSE;
    m.to = r->leader;
    m.context = ev->propose.context;
    m.entries = entries;
    m.n_entries = ev->propose.n;
    raft__send(r, &m);
}

void raft__propose(struct raft__impl *r, const struct raft_event *ev)
{
    raft_index first = 0;
    int rv;
    if (ev->propose.n == 0 ||
        (ev->propose.type == RAFT_ENTRY_NORMAL && ev->propose.data == NULL) ||
        (ev->propose.type != RAFT_ENTRY_NORMAL &&
         ev->propose.type != RAFT_ENTRY_BARRIER)) {
        raft__out_proposal(r, ev->propose.context, -EINVAL, 0, 0);
        return;
    }
    if (r->state != RAFT_LEADER && r->leader != 0) {
        forward(r, ev);
        return;
    }
    rv = leader_append(r, ev->propose.type, ev->propose.data, ev->propose.n,
                       &first);
    raft__out_proposal(r, ev->propose.context, rv, first, r->term);
}

void raft__recv_propose(struct raft__impl *r, const struct raft_message *m)
{
    struct raft_message resp = {0};
    struct goulette_buf small[16], *data = small;
    raft_index first = 0;
    unsigned i;
    int rv = 0;
    if (raft_configuration_get(&r->conf, m->from) == NULL &&
        r->state == RAFT_LEADER) {
        raft__warnf(r, "%llu: proposal from non-member %llu dropped",
                    (unsigned long long)r->cfg.id, (unsigned long long)m->from);
        return;
    }
    if (m->n_entries > 16) {
        data = raft__out_alloc(r, m->n_entries * sizeof *data);
        if (data == NULL) {
            return;
        }
    }
    for (i = 0; i < m->n_entries; i++) {
        data[i] = m->entries[i].data;
        if (m->entries[i].type != m->entries[0].type) {
            rv = -EINVAL;
        }
    }
    if (rv == 0) {
        rv = leader_append(r, m->entries[0].type, data, m->n_entries, &first);
    }
    resp.type = RAFT_MSG_PROPOSE_RESP;
    resp.to = m->from;
    resp.context = m->context;
    resp.rv = rv;
    resp.index = rv == 0 ? first : 0;
    resp.log_term = rv == 0 ? r->term : 0;
    raft__send(r, &resp);
}

void raft__recv_propose_resp(struct raft__impl *r, const struct raft_message *m)
{
    raft__out_proposal(r, m->context, m->rv, m->index, m->log_term);
}
