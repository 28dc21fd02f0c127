/* Log replication, dissertation §3.5: "The leader maintains a nextIndex for
 * each follower [...] After a rejection, the leader decrements nextIndex and
 * retries"; here with the fast back-off of §3.5 (the follower returns the
 * first index of the conflicting term), pipelining and flow control (the
 * progress states of progress.c), and commitment by counting replicas of
 * current-term entries only (§3.6.2, paper Figure 8). */
#include "replication.h"

#include <stdlib.h>

#include "configuration.h"
#include "election.h"
#include "membership.h"
#include "read.h"
#include "snapshot.h"
#include "transfer.h"

bool raft__send_append(struct raft__impl *r,
                       struct raft__progress *p,
                       bool allow_empty)
{
    struct raft_message m = {0};
    raft_index last = raft__last_index(r);
    raft_index prev, i;
    uint64_t bytes = 0;
    unsigned n = 0;
    if (p->id == r->cfg.id ||
        raft__progress_paused(p, r->cfg.max_inflight_bytes)) {
        return false;
    }
    if (p->next > last + 1) {
        p->next = last + 1;
    }
    prev = p->next - 1;
    if (prev < r->log.offset) {
        /* The entries it needs are compacted: §5.3 InstallSnapshot. */
        return raft__snapshot_send_start(r, p);
    }
    for (i = p->next; i <= last; i++) {
        const struct raft_entry *e = raft__log_get(&r->log, i);
        if (n > 0 && bytes + e->data.len > r->cfg.max_append_bytes) {
            break;
        }
        bytes += e->data.len;
        n++;
    }
    if (n == 0 && !allow_empty) {
        return false;
    }
    m.type = RAFT_MSG_APPEND;
    m.to = p->id;
    m.term = r->term;
    m.log_index = prev;
    m.log_term = raft__log_term(&r->log, prev);
    m.commit = r->commit;
    m.n_entries = n; /* entries resolved by raft__out_finish */
    raft__send(r, &m);
    if (n > 0 || p->state == RAFT__PR_PROBE) {
        raft__progress_sent(p, prev + n, bytes);
    }
    return true;
}

void raft__broadcast_append(struct raft__impl *r)
{
    unsigned i;
    if (r->state != RAFT_LEADER) {
        return;
    }
    for (i = 0; i < r->n_prs; i++) {
        raft__send_append(r, &r->prs[i], true);
    }
}

void raft__broadcast_heartbeat(struct raft__impl *r)
{
    unsigned i;
    if (r->state != RAFT_LEADER) {
        return;
    }
    for (i = 0; i < r->n_prs; i++) {
        struct raft__progress *p = &r->prs[i];
        struct raft_message m = {0};
        if (p->id == r->cfg.id) {
            continue;
        }
        m.type = RAFT_MSG_HEARTBEAT;
        m.to = p->id;
        m.term = r->term;
        /* Only what the follower is known to hold may be committed by a
         * heartbeat, which skips the log-matching check. */
        m.commit = p->match < r->commit ? p->match : r->commit;
        m.context = r->read_seq;
        raft__send(r, &m);
    }
}

void raft__replication_tick(struct raft__impl *r)
{
    unsigned i;
    for (i = 0; i < r->n_prs && r->state == RAFT_LEADER; i++) {
        if (r->prs[i].state == RAFT__PR_SNAPSHOT) {
            raft__snapshot_tick(r, &r->prs[i]);
        }
    }
}

static int cmp_desc(const void *a, const void *b)
{
    raft_index x = *(const raft_index *)a, y = *(const raft_index *)b;
    return x < y ? 1 : (x > y ? -1 : 0);
}

/* The highest index a quorum of voters holds (0 when no voters). */
static raft_index quorum_match(struct raft__impl *r)
{
    raft_index small[16], *matches = small, result = 0;
    unsigned i, n = 0, q = raft__conf_quorum(&r->conf);
    if (r->conf.n > 16) {
        matches = malloc(r->conf.n * sizeof *matches);
        if (matches == NULL) {
            r->out.oom = true;
            return 0;
        }
    }
    for (i = 0; i < r->conf.n; i++) {
        const struct raft_server *s = &r->conf.servers[i];
        struct raft__progress *p;
        if (s->role != RAFT_VOTER) {
            continue;
        }
        if (s->id == r->cfg.id) {
            matches[n++] = r->stable; /* only what is durable here */
            continue;
        }
        p = raft__progress_get(r, s->id);
        matches[n++] = p != NULL ? p->match : 0;
    }
    if (n > 0) {
        qsort(matches, n, sizeof *matches, cmp_desc);
        result = matches[q - 1];
    }
    if (matches != small) {
        free(matches);
    }
    return result;
}

bool raft__maybe_commit(struct raft__impl *r)
{
    raft_index n = quorum_match(r), old = r->commit;
    uint64_t bytes;
    if (r->state != RAFT_LEADER || n <= r->commit) {
        return false;
    }
    /* §3.6.2: "Raft never commits log entries from previous terms by
     * counting replicas. Only log entries from the leader's current term
     * are committed by counting replicas." */
    if (raft__log_term(&r->log, n) != r->term &&
        !raft__bug(r, RAFT_BUG_COMMIT_OLD_TERM)) {
        return false;
    }
    r->commit = n;
    bytes = raft__log_bytes(&r->log, old, n);
    r->uncommitted_bytes =
        r->uncommitted_bytes > bytes ? r->uncommitted_bytes - bytes : 0;
    raft__read_advance(r);
    raft__membership_committed(r);
    return true;
}

void raft__commit_to(struct raft__impl *r, raft_index index)
{
    raft_index last = raft__last_index(r);
    if (index > last) {
        index = last;
    }
    if (index > r->commit) {
        r->commit = index;
    }
}

void raft__persisted(struct raft__impl *r, raft_index index, raft_term term)
{
    if (index >= r->persist_from || index <= r->stable ||
        raft__log_term(&r->log, index) != term) {
        return; /* stale: superseded by a truncation, or already known */
    }
    r->stable = index;
    if (r->state == RAFT_LEADER && raft__maybe_commit(r)) {
        raft__broadcast_append(r);
    }
}

/* Truncate at @from: the entries there were superseded (§3.5). */
static void truncate_at(struct raft__impl *r, raft_index from)
{
    raft__log_truncate(&r->log, from, &r->out.garbage);
    if (r->stable >= from) {
        r->stable = from - 1;
    }
    if (r->persist_from > from) {
        r->persist_from = from;
    }
    if (r->conf_index >= from) {
        raft__membership_reload(r); /* roll the configuration back */
    }
}

/* Append the entries of @m that the log lacks.  Errors: -EINVAL (would
 * overwrite a committed entry: a protocol violation by the sender), -ENOMEM.
 */
static int append_entries(struct raft__impl *r, const struct raft_message *m)
{
    unsigned i;
    int rv;
    for (i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        if (e->index <= raft__last_index(r) &&
            raft__log_term(&r->log, e->index) == e->term) {
            continue; /* already held: log matching (§3.5) */
        }
        if (e->index <= r->commit) {
            raft__warnf(r,
                        "%llu: append from %llu conflicts with committed "
                        "entry %llu; dropped",
                        (unsigned long long)r->cfg.id,
                        (unsigned long long)m->from,
                        (unsigned long long)e->index);
            return -EINVAL;
        }
        if (e->index <= raft__last_index(r)) {
            truncate_at(r, e->index);
        }
        rv = raft__log_append(&r->log, e);
        if (rv != 0) {
            return rv;
        }
        if (e->type == RAFT_ENTRY_CONF) {
            raft__membership_appended(r, raft__log_get(&r->log, e->index));
        }
    }
    return 0;
}

static void reject_append(struct raft__impl *r, const struct raft_message *m)
{
    struct raft_message resp = {0};
    raft_index hint = m->log_index;
    if (hint > raft__last_index(r)) {
        hint = raft__last_index(r);
    }
    /* §3.5: skip back over the whole term that conflicts. */
    while (hint > r->log.offset &&
           raft__log_term(&r->log, hint) > m->log_term) {
        hint--;
    }
    resp.type = RAFT_MSG_APPEND_RESP;
    resp.to = m->from;
    resp.term = r->term;
    resp.reject = true;
    resp.index = m->log_index;
    resp.reject_hint = hint;
    resp.hint_term = raft__log_term(&r->log, hint);
    raft__send(r, &resp);
}

void raft__recv_append(struct raft__impl *r, const struct raft_message *m)
{
    struct raft_message resp = {0};
    raft_index last_new;
    r->election_elapsed = 0;
    r->leader = m->from;
    resp.type = RAFT_MSG_APPEND_RESP;
    resp.to = m->from;
    resp.term = r->term;
    if (m->log_index < r->commit) {
        resp.index = r->commit;
        raft__send(r, &resp);
        return;
    }
    if (m->log_index > raft__last_index(r) ||
        raft__log_term(&r->log, m->log_index) != m->log_term) {
        reject_append(r, m);
        return;
    }
    if (append_entries(r, m) != 0) {
        return;
    }
    last_new = m->log_index + m->n_entries;
    raft__commit_to(r, m->commit < last_new ? m->commit : last_new);
    resp.index = last_new;
    raft__send(r, &resp);
}

static void handle_reject(struct raft__impl *r,
                          struct raft__progress *p,
                          const struct raft_message *m)
{
    raft_index probe = m->reject_hint, next;
    if (p->state == RAFT__PR_SNAPSHOT ||
        (p->state == RAFT__PR_REPLICATE && m->index <= p->match) ||
        (p->state == RAFT__PR_PROBE && m->index != p->next - 1)) {
        return; /* stale */
    }
    if (m->hint_term > 0) {
        /* Largest index of ours at or below the hint whose term is not
         * after the follower's: everything above it surely conflicts. */
        while (probe > r->log.offset &&
               raft__log_term(&r->log, probe) > m->hint_term) {
            probe--;
        }
    }
    next = probe + 1 < m->index ? probe + 1 : m->index;
    raft__progress_become_probe(p);
    if (next > p->match + 1) {
        p->next = next;
    }
    raft__send_append(r, p, true);
}

void raft__recv_append_resp(struct raft__impl *r, const struct raft_message *m)
{
    struct raft__progress *p = raft__progress_get(r, m->from);
    if (p == NULL || p->id == r->cfg.id) {
        raft__warnf(r, "%llu: append response from non-member %llu dropped",
                    (unsigned long long)r->cfg.id, (unsigned long long)m->from);
        return;
    }
    if (!m->reject && m->index > raft__last_index(r)) {
        raft__warnf(r, "%llu: %llu acknowledges %llu, past the log; dropped",
                    (unsigned long long)r->cfg.id, (unsigned long long)m->from,
                    (unsigned long long)m->index);
        return;
    }
    p->recent_active = true;
    if (m->reject) {
        handle_reject(r, p, m);
        return;
    }
    /* In probe state only an acknowledgement of the current match (or one
     * that advances it) may start replication: an older success still on
     * the wire would otherwise reset the in-flight window while a full one
     * is outstanding, and a storm of appends follows (the simulator's seed
     * 901155, stale-read scenario; etcd's rule). */
    if (raft__progress_ack(p, m->index) ||
        (p->state == RAFT__PR_PROBE && m->index == p->match)) {
        if (p->state == RAFT__PR_PROBE) {
            raft__progress_become_replicate(p);
        } else if (p->state == RAFT__PR_SNAPSHOT && p->match >= p->snap_index) {
            raft__progress_become_probe(p);
        }
        if (raft__maybe_commit(r)) {
            raft__broadcast_append(r);
        }
        if (r->state != RAFT_LEADER) {
            return;
        }
        raft__transfer_progress(r, p);
    }
    if (p->state == RAFT__PR_REPLICATE) {
        raft__inflights_free_to(&p->inflights, m->index);
    }
    while (raft__send_append(r, p, false)) {
    }
}

void raft__recv_heartbeat(struct raft__impl *r, const struct raft_message *m)
{
    struct raft_message resp = {0};
    r->election_elapsed = 0;
    r->leader = m->from;
    raft__commit_to(r, m->commit);
    resp.type = RAFT_MSG_HEARTBEAT_RESP;
    resp.to = m->from;
    resp.term = r->term;
    resp.context = m->context;
    raft__send(r, &resp);
}

void raft__recv_heartbeat_resp(struct raft__impl *r,
                               const struct raft_message *m)
{
    struct raft__progress *p = raft__progress_get(r, m->from);
    if (p == NULL || p->id == r->cfg.id) {
        return;
    }
    p->recent_active = true;
    p->probe_sent = false;
    if (p->state == RAFT__PR_REPLICATE &&
        raft__inflights_full(&p->inflights, r->cfg.max_inflight_bytes)) {
        raft__inflights_free_first(&p->inflights);
    }
    if (p->match < raft__last_index(r)) {
        raft__send_append(r, p, true);
    }
    if (m->context > p->read_ack) {
        p->read_ack = m->context;
        raft__read_check(r);
    }
}
