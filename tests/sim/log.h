/* A node's copy of the Raft log as the runtime sees it: the entries the
 * core handed out for persistence, above a base (the snapshot or compaction
 * point).  Each entry carries a chain hash of the whole log prefix ending at
 * it, so that comparing two chain hashes compares two prefixes: that is how
 * the checker tests log matching in O(1).  Owns copies of entry data. */
#ifndef SIM_LOG_H
#define SIM_LOG_H

#include <stddef.h>
#include <stdint.h>

#include <goulette/raft.h>

struct sim_entry
{
    struct raft_entry e; /* e.data owned by the log */
    uint64_t chain;      /* hash of the prefix [1, e.index] */
};

struct sim_log
{
    raft_index base;     /* last index NOT held (snapshot/compaction point) */
    raft_term base_term; /* term of base, 0 when unknown or none */
    uint64_t base_chain; /* chain hash of the prefix [1, base] */
    struct sim_entry *v; /* entries base+1 .. base+n; owned */
    size_t n;
    size_t cap;
};

/* The chain hash of the prefix ending with @e, given that of the prefix
 * before it. */
uint64_t sim_log_chain(uint64_t prev, const struct raft_entry *e);

void sim_log_init(struct sim_log *l);
void sim_log_fini(struct sim_log *l);

static inline raft_index sim_log_last(const struct sim_log *l)
{
    return l->base + l->n;
}

/* Entry at @index, or NULL when not held.  Borrowed until @l changes. */
const struct sim_entry *sim_log_get(const struct sim_log *l, raft_index index);

/* Term at @index: the base term at the base, 0 when unknown. */
raft_term sim_log_term(const struct sim_log *l, raft_index index);

/* Truncate from es[0].index on and append copies of @es (rule 2).
 * Errors: -ERANGE (es[0].index is not in [base + 1, last + 1], or the
 * indexes of @es are not consecutive), -ENOMEM. */
int sim_log_append(struct sim_log *l, const struct raft_entry *es, unsigned n);

/* Drop entries with index < @below (COMPACT). */
void sim_log_compact(struct sim_log *l, raft_index below);

/* A snapshot (index, term, chain) was installed: raft.h rule 1 drops EVERY
 * entry (those after the snapshot are stale), the snapshot is the base. */
void sim_log_install(struct sim_log *l,
                     raft_index index,
                     raft_term term,
                     uint64_t chain);

/* Deep copy into an initialized, empty @dst.  Errors: -ENOMEM. */
int sim_log_copy(const struct sim_log *src, struct sim_log *dst);

/* Copy of @n entries starting at @from, for a START event: returns an array
 * the caller frees with sim_log_entries_free().  Errors: -ENOMEM. */
int sim_log_entries(const struct sim_log *l,
                    struct raft_entry **out,
                    unsigned *n);
void sim_log_entries_free(struct raft_entry *es, unsigned n);

#endif /* SIM_LOG_H */
