/* Follower progress as the leader sees it (dissertation §3.5 nextIndex and
 * matchIndex; pipelining and flow control as in etcd-io/raft's tracker):
 * PROBE sends one append and waits; REPLICATE pipelines up to max_inflight
 * appends and max_inflight_bytes; SNAPSHOT sends chunks instead. */
#include "progress.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int raft__progress_init(struct raft__progress *p,
                        raft_id id,
                        raft_index next,
                        unsigned max_inflight)
{
    memset(p, 0, sizeof *p);
    p->id = id;
    p->next = next;
    p->state = RAFT__PR_PROBE;
    p->inflights.cap = max_inflight;
    p->inflights.last = calloc(max_inflight, sizeof *p->inflights.last);
    p->inflights.bytes = calloc(max_inflight, sizeof *p->inflights.bytes);
    if (p->inflights.last == NULL || p->inflights.bytes == NULL) {
        free(p->inflights.last);
        free(p->inflights.bytes);
        return -ENOMEM;
    }
    return 0;
}

void raft__progress_fini(struct raft__progress *p)
{
    free(p->inflights.last);
    free(p->inflights.bytes);
    p->inflights.last = NULL;
    p->inflights.bytes = NULL;
}

static void inflights_clear(struct raft__inflights *f)
{
    f->start = 0;
    f->count = 0;
    f->total = 0;
}

void raft__progress_become_probe(struct raft__progress *p)
{
    /* From SNAPSHOT, match already covers the snapshot if the follower
     * installed it; either way the log is probed right after match. */
    p->next = p->match + 1;
    p->state = RAFT__PR_PROBE;
    p->probe_sent = false;
    inflights_clear(&p->inflights);
}

void raft__progress_become_replicate(struct raft__progress *p)
{
    p->state = RAFT__PR_REPLICATE;
    p->next = p->match + 1;
    p->probe_sent = false;
    inflights_clear(&p->inflights);
}

bool raft__inflights_full(const struct raft__inflights *f, uint64_t max_bytes)
{
    return f->count >= f->cap || (max_bytes > 0 && f->total >= max_bytes);
}

bool raft__progress_paused(const struct raft__progress *p, uint64_t max_bytes)
{
    switch (p->state) {
    case RAFT__PR_PROBE:
        return p->probe_sent;
    case RAFT__PR_REPLICATE:
        return raft__inflights_full(&p->inflights, max_bytes);
    case RAFT__PR_SNAPSHOT:
        return true;
    }
    return true;
}

void raft__progress_sent(struct raft__progress *p,
                         raft_index last,
                         uint64_t bytes)
{
    struct raft__inflights *f = &p->inflights;
    if (p->state == RAFT__PR_PROBE) {
        p->probe_sent = true;
        return;
    }
    if (p->state != RAFT__PR_REPLICATE) {
        return;
    }
    if (last >= p->next) {
        p->next = last + 1;
    }
    if (f->count < f->cap) {
        unsigned slot = (f->start + f->count) % f->cap;
        f->last[slot] = last;
        f->bytes[slot] = bytes;
        f->count++;
        f->total += bytes;
    }
}

bool raft__progress_ack(struct raft__progress *p, raft_index index)
{
    bool grew = false;
    if (index > p->match) {
        p->match = index;
        grew = true;
        p->probe_sent = false;
    }
    if (p->next < index + 1) {
        p->next = index + 1;
    }
    return grew;
}

void raft__inflights_free_to(struct raft__inflights *f, raft_index index)
{
    while (f->count > 0 && f->last[f->start] <= index) {
        f->total -= f->bytes[f->start];
        f->start = (f->start + 1) % f->cap;
        f->count--;
    }
}

void raft__inflights_free_first(struct raft__inflights *f)
{
    if (f->count > 0) {
        raft__inflights_free_to(f, f->last[f->start]);
    }
}
