/* The private instance of the Raft core (struct raft__impl) and the helpers
 * every facility file shares.  Only files under raft/ include this. */
#ifndef RAFT_IMPL_H
#define RAFT_IMPL_H

#include <goulette/err.h>
#include <goulette/raft.h>

#include "log.h"
#include "out.h"
#include "progress.h"
#include "prng.h"

#define RAFT__SUBSYS "raft"

/* A ReadIndex request waiting for its heartbeat round (§6.4). */
struct raft__read
{
    uint64_t context; /* the requester's */
    raft_id from;     /* 0: local request; else the follower to answer */
    raft_index index; /* read index, set when a round is assigned */
    uint64_t round;   /* 0: waiting for an entry of this term to commit */
};

/* One vote (or pre-vote) received in the current election. */
struct raft__vote
{
    raft_id id;
    bool granted;
};

struct raft__impl
{
    struct raft_config cfg; /* copy of the config, defaults applied */
    bool started;           /* START was handled */
    struct raft__prng prng;

    /* Persistent state (§3.2 Figure 3.1). */
    raft_term term;
    raft_id vote;
    raft_index commit;

    /* Soft state. */
    enum raft_state state;
    raft_id leader;             /* 0 when unknown */
    unsigned election_elapsed;  /* ticks since the last reset */
    unsigned heartbeat_elapsed; /* leader: ticks since the heartbeat */
    unsigned timeout;           /* randomized election timeout, ticks */

    /* The log and its persistence/application positions. */
    struct raft__log log;
    raft_index stable;       /* highest index known durable (PERSISTED) */
    raft_index persist_from; /* first index not yet handed out (rule 2) */
    raft_index applied;      /* highest applied index (APPLIED) */
    raft_index applied_sent; /* highest index handed out in committed */

    /* The latest snapshot (taken by the runtime or installed), index 0 if
     * none, and the staging state of one being received. */
    struct raft_snapshot_meta snap;
    struct
    {
        raft_index index; /* 0: nothing staged */
        raft_term term;
        raft_id from; /* the leader sending it */
        uint64_t size;
        uint64_t next; /* next offset expected */
    } recv;

    /* Configuration: the latest one in the log (§4.1), or the snapshot's. */
    struct raft_configuration conf;
    raft_index conf_index;

    /* Candidate state. */
    struct raft__vote *votes; /* owned */
    unsigned n_votes;

    /* Leader state. */
    struct raft__progress *prs; /* owned, one per member (self included) */
    unsigned n_prs;
    uint64_t uncommitted_bytes; /* data appended and not yet committed */
    raft_id transfer_to;        /* transfer target or 0 */
    unsigned transfer_elapsed;  /* ticks since the transfer started */

    /* ReadIndex. */
    struct raft__read *reads; /* owned */
    unsigned n_reads, cap_reads;
    uint64_t read_seq;       /* last heartbeat round started */
    uint64_t read_confirmed; /* last round a quorum acknowledged */

    struct raft__out out;
};

/* Logging shorthands. */
#define raft__debugf(r, ...) \
    goulette_logf((r)->cfg.log, GOULETTE_LOG_DEBUG, RAFT__SUBSYS, __VA_ARGS__)
#define raft__warnf(r, ...) \
    goulette_logf((r)->cfg.log, GOULETTE_LOG_WARN, RAFT__SUBSYS, __VA_ARGS__)

/* Planted bugs exist only in the raft_core_bugs build. */
#ifdef RAFT_PLANTED_BUGS
#define raft__bug(r, b) (((r)->cfg.planted_bugs & (b)) != 0)
#else
#define raft__bug(r, b) ((void)(r), false)
#endif

static inline raft_index raft__last_index(const struct raft__impl *r)
{
    return raft__log_last_index(&r->log);
}

static inline raft_term raft__last_term(const struct raft__impl *r)
{
    return raft__log_last_term(&r->log);
}

/* The progress of @id, or NULL. */
struct raft__progress *raft__progress_get(struct raft__impl *r, raft_id id);

/* Rebuild the progress array from the configuration, keeping what is known
 * of members that stay.  @reset: start afresh (new leader).  Errors:
 * -ENOMEM. */
int raft__progress_sync(struct raft__impl *r, bool reset);
void raft__progress_clear(struct raft__impl *r);

/* Append one entry of the current term to the local log (leader).  Returns
 * its index or 0 on -ENOMEM. */
raft_index raft__append_local(struct raft__impl *r,
                              enum raft_entry_type type,
                              const struct goulette_buf *data);

#endif /* RAFT_IMPL_H */
