/* Per-follower replication progress kept by the leader (dissertation §3.5
 * nextIndex/matchIndex, plus etcd-style probe/replicate/snapshot states and
 * flow control: at most max_inflight AppendEntries and max_inflight_bytes
 * in flight per follower). */
#ifndef RAFT_PROGRESS_H
#define RAFT_PROGRESS_H

#include <goulette/raft.h>

enum raft__pr_state {
    RAFT__PR_PROBE = 0,     /* one append at a time until the log matches */
    RAFT__PR_REPLICATE = 1, /* pipelined appends, optimistic next */
    RAFT__PR_SNAPSHOT = 2,  /* sending a snapshot in chunks */
};

/* A ring of (last index, bytes) of the appends in flight. */
struct raft__inflights
{
    raft_index *last; /* owned, cap slots */
    uint64_t *bytes;  /* owned, cap slots */
    unsigned start;   /* oldest slot */
    unsigned count;   /* appends in flight */
    unsigned cap;     /* config.max_inflight */
    uint64_t total;   /* bytes in flight */
};

struct raft__progress
{
    raft_id id;
    raft_index match; /* highest index known replicated */
    raft_index next;  /* next index to send */
    enum raft__pr_state state;
    bool probe_sent;    /* PROBE: an append is out, wait */
    bool recent_active; /* heard from since the last quorum check */
    uint64_t read_ack;  /* highest ReadIndex round acknowledged */
    struct raft__inflights inflights;
    /* SNAPSHOT state: the snapshot being sent and the transfer position. */
    raft_index snap_index;
    raft_term snap_term;
    uint64_t snap_size;
    uint64_t snap_sent;  /* next offset to send */
    uint64_t snap_acked; /* next offset the follower expects */
    bool snap_last_sent; /* the final chunk is out */
    unsigned snap_ticks; /* ticks without transfer progress */
};

/* Errors: -ENOMEM. */
int raft__progress_init(struct raft__progress *p,
                        raft_id id,
                        raft_index next,
                        unsigned max_inflight);
void raft__progress_fini(struct raft__progress *p);

void raft__progress_become_probe(struct raft__progress *p);
void raft__progress_become_replicate(struct raft__progress *p);

/* True when no further append may be sent now (flow control). */
bool raft__progress_paused(const struct raft__progress *p, uint64_t max_bytes);

/* Record an append of entries up to @last carrying @bytes. */
void raft__progress_sent(struct raft__progress *p,
                         raft_index last,
                         uint64_t bytes);

/* The follower acknowledged up to @index.  Returns true if match grew. */
bool raft__progress_ack(struct raft__progress *p, raft_index index);

/* Free in-flight slots of appends that ended at or before @index. */
void raft__inflights_free_to(struct raft__inflights *f, raft_index index);
void raft__inflights_free_first(struct raft__inflights *f);
bool raft__inflights_full(const struct raft__inflights *f, uint64_t max_bytes);

#endif /* RAFT_PROGRESS_H */
