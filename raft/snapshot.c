/* Snapshots and log compaction, dissertation §5.1 ("each server takes
 * snapshots independently, covering just the committed entries in its log")
 * and §5.4.1 (InstallSnapshot sent in chunks).  The runtime owns the snapshot
 * bytes; the core owns its metadata, the log compaction, and the transfer
 * protocol:
 *
 * - leader: a follower whose next entry is compacted goes to SNAPSHOT state;
 *   chunks of snapshot_chunk_bytes are sent with data.base == NULL (the
 *   runtime fills them), up to max_inflight_bytes ahead of the follower's
 *   acknowledged offset.  A reject carries the offset the follower expects,
 *   and the transfer resumes there; with no progress for an election
 *   timeout the transfer restarts (with the newest snapshot if one was
 *   taken meanwhile).
 * - follower: chunks are accepted in order only; each accepted chunk is
 *   handed to the runtime to stage (update.snapshot_chunk); the last one
 *   also installs it (update.snapshot_install), which replaces the whole
 *   log, unless the log already holds the snapshot's last entry (then the
 *   commit index just moves), and is acknowledged with an APPEND_RESP. */
#include "snapshot.h"

#include <stdlib.h>
#include <string.h>

#include "configuration.h"
#include "membership.h"
#include "replication.h"

/* Configuration as of @index (> log offset or == snapshot index). */
static int conf_at(struct raft__impl *r,
                   raft_index index,
                   struct raft_configuration *c,
                   raft_index *c_index)
{
    raft_index i;
    for (i = index; i > r->log.offset; i--) {
        const struct raft_entry *e = raft__log_get(&r->log, i);
        int rv;
        if (e->type != RAFT_ENTRY_CONF) {
            continue;
        }
        rv = raft_configuration_decode(&e->data, c);
        if (rv != -EBADMSG) {
            *c_index = i;
            return rv; /* 0, or -ENOMEM */
        }
    }
    *c_index = r->snap.conf_index;
    return raft_configuration_copy(&r->snap.conf, c);
}

int raft__snapshot_taken(struct raft__impl *r, const struct raft_event *ev)
{
    struct raft_configuration c;
    raft_index index = ev->snapshot.index, c_index = 0, upto;
    int rv;
    if (index == 0 || index > r->applied || index <= r->snap.index ||
        index <= r->log.offset || index > raft__last_index(r)) {
        return -EINVAL;
    }
    raft_configuration_init(&c);
    rv = conf_at(r, index, &c, &c_index);
    if (rv != 0) {
        return rv;
    }
    raft_configuration_fini(&r->snap.conf);
    r->snap.conf = c;
    r->snap.conf_index = c_index;
    r->snap.index = index;
    r->snap.term = raft__log_term(&r->log, index);
    r->snap.size = ev->snapshot.size;
    upto = index > ev->snapshot.trailing ? index - ev->snapshot.trailing : 0;
    if (upto > r->log.offset) {
        raft__log_compact(&r->log, upto, &r->out.garbage);
        r->out.compact = upto + 1;
    }
    return 0;
}

static void send_chunk(struct raft__impl *r, struct raft__progress *p)
{
    struct raft_message m = {0};
    uint64_t len = p->snap_size - p->snap_sent;
    if (len > r->cfg.snapshot_chunk_bytes) {
        len = r->cfg.snapshot_chunk_bytes;
    }
    m.type = RAFT_MSG_SNAPSHOT;
    m.to = p->id;
    m.term = r->term;
    m.snapshot.index = p->snap_index;
    m.snapshot.term = p->snap_term;
    m.snapshot.size = p->snap_size;
    m.snapshot.offset = p->snap_sent;
    m.snapshot.data.len = (size_t)len; /* base NULL: the runtime fills it */
    m.snapshot.last = p->snap_sent + len == p->snap_size;
    if (m.snapshot.last) {
        if (raft_configuration_encode(&r->snap.conf, &m.snapshot.conf) != 0) {
            r->out.oom = true;
            return;
        }
        if (!raft__garbage_add(&r->out.garbage, m.snapshot.conf.base)) {
            r->out.oom = true;
            return;
        }
        m.snapshot.conf_index = r->snap.conf_index;
        p->snap_last_sent = true;
    }
    raft__send(r, &m);
    p->snap_sent += len;
}

static void send_chunks(struct raft__impl *r, struct raft__progress *p)
{
    uint64_t window = r->cfg.max_inflight_bytes;
    if (p->snap_index != r->snap.index) {
        /* A newer snapshot replaced it. */
        (void)raft__snapshot_send_start(r, p);
        return;
    }
    do {
        send_chunk(r, p);
    } while (!p->snap_last_sent && p->snap_sent - p->snap_acked < window &&
             !r->out.oom);
}

bool raft__snapshot_send_start(struct raft__impl *r, struct raft__progress *p)
{
    if (r->snap.index == 0) {
        raft__warnf(r,
                    "%llu: follower %llu needs compacted entries but "
                    "there is no snapshot",
                    (unsigned long long)r->cfg.id, (unsigned long long)p->id);
        return false;
    }
    p->state = RAFT__PR_SNAPSHOT;
    p->probe_sent = false;
    p->snap_index = r->snap.index;
    p->snap_term = r->snap.term;
    p->snap_size = r->snap.size;
    p->snap_sent = 0;
    p->snap_acked = 0;
    p->snap_last_sent = false;
    p->snap_ticks = 0;
    send_chunks(r, p);
    return true;
}

void raft__snapshot_tick(struct raft__impl *r, struct raft__progress *p)
{
    if (++p->snap_ticks < r->cfg.election_ticks) {
        return;
    }
    /* No progress for an election timeout: chunks were lost, or the
     * runtime no longer had that snapshot.  Resume, or restart. */
    p->snap_ticks = 0;
    p->snap_sent = p->snap_acked;
    p->snap_last_sent = false;
    send_chunks(r, p);
}

void raft__recv_snapshot_resp(struct raft__impl *r,
                              const struct raft_message *m)
{
    struct raft__progress *p = raft__progress_get(r, m->from);
    uint64_t hint;
    if (p == NULL || p->id == r->cfg.id) {
        return;
    }
    p->recent_active = true;
    if (p->state != RAFT__PR_SNAPSHOT || m->index != p->snap_index) {
        return;
    }
    hint = m->reject_hint < p->snap_size ? m->reject_hint : p->snap_size;
    p->snap_ticks = 0;
    if (m->reject) {
        p->snap_sent = hint;
        p->snap_acked = hint;
        p->snap_last_sent = false;
        send_chunks(r, p);
        return;
    }
    if (hint > p->snap_acked) {
        p->snap_acked = hint;
        if (!p->snap_last_sent) {
            send_chunks(r, p);
        }
    }
}

/* Acknowledge a chunk (or reject it) with the next offset expected. */
static void reply_chunk(struct raft__impl *r,
                        const struct raft_message *m,
                        bool reject,
                        uint64_t next)
{
    struct raft_message resp = {0};
    resp.type = RAFT_MSG_SNAPSHOT_RESP;
    resp.to = m->from;
    resp.term = r->term;
    resp.index = m->snapshot.index;
    resp.reject = reject;
    resp.reject_hint = next;
    raft__send(r, &resp);
}

static void reply_done(struct raft__impl *r, const struct raft_message *m)
{
    struct raft_message resp = {0};
    resp.type = RAFT_MSG_APPEND_RESP;
    resp.to = m->from;
    resp.term = r->term;
    resp.index = r->commit;
    raft__send(r, &resp);
}

/* The last chunk arrived: the snapshot replaces the state machine. */
static int install(struct raft__impl *r, const struct raft_snapshot_chunk *c)
{
    struct raft_configuration conf;
    int rv;
    r->recv.index = 0;
    if (raft__log_term(&r->log, c->index) == c->term) {
        /* §5.3: "If the follower has an entry that matches the snapshot's
         * last included index and term, it retains the entries following
         * it": the log already holds everything the snapshot covers, so
         * there is nothing to install; the staged bytes are abandoned. */
        raft__commit_to(r, c->index);
        return 0;
    }
    raft_configuration_init(&conf);
    rv = raft_configuration_decode(&c->conf, &conf);
    if (rv != 0) {
        return rv;
    }
    raft_configuration_fini(&r->snap.conf);
    r->snap.conf = conf;
    r->snap.conf_index = c->conf_index;
    r->snap.index = c->index;
    r->snap.term = c->term;
    r->snap.size = c->size;
    /* Otherwise the whole log is discarded (rule 1 of raft.h). */
    raft__log_reset(&r->log, c->index, c->term, &r->out.garbage);
    r->commit = c->index;
    r->applied = c->index;
    r->applied_sent = c->index;
    r->stable = c->index;
    r->persist_from = c->index + 1;
    raft__membership_reload(r);
    r->out.install = true;
    return 0;
}

void raft__recv_snapshot(struct raft__impl *r, const struct raft_message *m)
{
    const struct raft_snapshot_chunk *c = &m->snapshot;
    r->election_elapsed = 0;
    r->leader = m->from;
    if (c->index <= r->commit) {
        reply_done(r, m); /* nothing to install: the log already has it */
        return;
    }
    /* Two servers' snapshots of the same state need not be the same
     * bytes: a transfer never mixes chunks of two senders. */
    if (r->recv.index != c->index || r->recv.term != c->term ||
        r->recv.from != m->from || r->recv.size != c->size) {
        if (c->offset != 0) {
            reply_chunk(r, m, true, 0);
            return;
        }
        r->recv.index = c->index;
        r->recv.term = c->term;
        r->recv.from = m->from;
        r->recv.size = c->size;
        r->recv.next = 0;
    }
    if (c->offset != r->recv.next) {
        reply_chunk(r, m, true, r->recv.next);
        return;
    }
    r->out.chunk = c;
    r->recv.next += c->data.len;
    if (!c->last) {
        reply_chunk(r, m, false, r->recv.next);
        return;
    }
    if (install(r, c) != 0) {
        r->out.oom = true;
        return;
    }
    reply_done(r, m);
}
