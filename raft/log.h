/* The in-memory log: the suffix of the Raft log after the last compaction
 * point (§5.1 of the dissertation: the log is compacted below a snapshot,
 * possibly keeping some trailing entries).  It owns copies of entry data.
 * It knows nothing of persistence, commitment or terms' meaning. */
#ifndef RAFT_LOG_H
#define RAFT_LOG_H

#include <goulette/raft.h>

struct raft__garbage;

struct raft__log
{
    struct raft_entry *entries; /* owned; entries[i].index == offset + 1 + i */
    unsigned n;                 /* entries held */
    unsigned cap;               /* allocated slots */
    raft_index offset;          /* index just before entries[0] */
    raft_term offset_term;      /* term of the entry at offset (0 if none) */
};

void raft__log_init(struct raft__log *l);
void raft__log_fini(struct raft__log *l);

raft_index raft__log_last_index(const struct raft__log *l);
raft_term raft__log_last_term(const struct raft__log *l);

/* Term of the entry at @index, or 0 when @index is outside
 * [offset, last_index] (unknown). */
raft_term raft__log_term(const struct raft__log *l, raft_index index);

/* The entry at @index or NULL when not held.  Borrowed: valid until the log
 * changes. */
struct raft_entry *raft__log_get(const struct raft__log *l, raft_index index);

/* Append a copy of @e (data copied), which must have index last + 1.
 * Errors: -ENOMEM. */
int raft__log_append(struct raft__log *l, const struct raft_entry *e);

/* Remove entries with index >= @from.  Their data goes to @g (freed later,
 * because the current update may still point at it). */
void raft__log_truncate(struct raft__log *l,
                        raft_index from,
                        struct raft__garbage *g);

/* Drop entries with index <= @upto (which must be <= last index); the term of
 * @upto becomes offset_term. */
void raft__log_compact(struct raft__log *l,
                       raft_index upto,
                       struct raft__garbage *g);

/* Drop everything; the log restarts after (@index, @term). */
void raft__log_reset(struct raft__log *l,
                     raft_index index,
                     raft_term term,
                     struct raft__garbage *g);

/* Bytes of data held in entries (from, to]. */
uint64_t raft__log_bytes(const struct raft__log *l,
                         raft_index from,
                         raft_index to);

#endif /* RAFT_LOG_H */
