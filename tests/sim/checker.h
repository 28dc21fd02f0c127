/* The safety checker: the global facts every node's behaviour is compared
 * against, and the properties of Raft (paper Figure 3) plus the client
 * guarantees.  It owns:
 *   - the leader of each term                      (election safety)
 *   - the chain hash of every (index, term) seen   (log matching)
 *   - the committed history, learned from applies  (state-machine safety,
 *                                                   leader completeness)
 *   - the acknowledged writes                      (no acked write lost,
 *                                                   linearizable reads)
 * Nodes report to it as they act (node.c); it records the first violation
 * (property, step, detail) and the run stops there.  It never touches a
 * core. */
#ifndef SIM_CHECKER_H
#define SIM_CHECKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <goulette/raft.h>

#include "log.h"
#include "trace.h"

/* Property names, as printed on failure. */
#define SIM_P_ELECTION "election-safety"
#define SIM_P_LOG_MATCHING "log-matching"
#define SIM_P_COMPLETENESS "leader-completeness"
#define SIM_P_APPEND_ONLY "leader-append-only"
#define SIM_P_SM_SAFETY "state-machine-safety"
#define SIM_P_ACKED "acked-write-lost"
#define SIM_P_READ "linearizable-read"
#define SIM_P_LIVENESS "liveness"
#define SIM_P_RUNTIME "runtime-contract" /* the core broke raft.h's rules */

struct sim_truth
{
    raft_term term;  /* 0: unknown */
    uint64_t chain;  /* hash of the committed prefix [1, index] */
    raft_term bound; /* the entry was committed in a term <= bound: the
                        term of the first node that applied it, when it
                        did (it learnt the commit from a leader of a term
                        no higher than its own) */
};

struct sim_match_slot
{
    raft_index index; /* 0: empty slot */
    raft_term term;
    uint64_t chain;
};

struct sim_checker
{
    struct sim_trace *trace; /* borrowed */
    const uint64_t *step;    /* borrowed: the cluster's step counter */

    bool failed;
    const char *property; /* static string, see SIM_P_* */
    uint64_t fail_step;
    char detail[256];

    raft_id *leaders; /* [term]: leader of term, 0 if none seen; owned */
    size_t n_leaders;

    struct sim_match_slot *match; /* open addressing on (index, term) */
    size_t match_cap;
    size_t match_n;

    struct sim_truth *truth; /* [index]: committed history; owned */
    size_t truth_cap;
    raft_index truth_max; /* highest index known committed */
    raft_index *frontier; /* [b]: highest committed index whose bound is
                             b; a leader of term t must hold the highest
                             of frontier[b < t] (Leader Completeness only
                             speaks of leaders of later terms) */
    size_t frontier_cap;
    uint64_t truth_gen; /* bumped when the committed history grows or a
                           bound tightens: standing leaders are checked
                           again */

    raft_index ack_index; /* highest acknowledged write ... */
    raft_term ack_term;   /* ... and its term */
    uint64_t acks;        /* acknowledged writes */
    uint64_t reads;       /* reads served and checked */
};

void sim_checker_init(struct sim_checker *c,
                      struct sim_trace *trace,
                      const uint64_t *step);
void sim_checker_fini(struct sim_checker *c);

/* Record the first violation (later ones are ignored). */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void sim_checker_fail(struct sim_checker *c,
                      const char *property,
                      const char *fmt,
                      ...);

/* @id is leader of @term (election safety). */
void sim_checker_leader(struct sim_checker *c, raft_id id, raft_term term);

/* Entries from @from to the end of @id's log @l are new (log matching). */
void sim_checker_appended(struct sim_checker *c,
                          raft_id id,
                          const struct sim_log *l,
                          raft_index from);

/* @id is leader of @term with log @l: it just became leader, or the
 * committed history grew while it leads (leader completeness and no
 * acknowledged write lost: a leader of term T holds every entry committed
 * in a term below T, even one committed, by an older leader that did not
 * know it was deposed, after T's election). */
void sim_checker_new_leader(struct sim_checker *c,
                            raft_id id,
                            raft_term term,
                            const struct sim_log *l);

/* @id, in term @term, applied entry @e on top of applied index @applied,
 * reaching the prefix hash @chain (state-machine safety). */
void sim_checker_applied(struct sim_checker *c,
                         raft_id id,
                         raft_term term,
                         raft_index applied,
                         const struct raft_entry *e,
                         uint64_t chain);

/* @id, in term @node_term, installed a snapshot (index, term, chain) over
 * applied index @applied. */
void sim_checker_installed(struct sim_checker *c,
                           raft_id id,
                           raft_term node_term,
                           raft_index applied,
                           raft_index index,
                           raft_term term,
                           uint64_t chain);

/* @id's commit index is now @commit, with log @l: its entry there must be
 * the committed one when the committed history knows it. */
void sim_checker_commit(struct sim_checker *c,
                        raft_id id,
                        raft_index commit,
                        const struct sim_log *l);

/* Committed term at @index, 0 when unknown. */
raft_term sim_checker_committed_term(const struct sim_checker *c,
                                     raft_index index);

/* A client saw its write (index, term) applied. */
void sim_checker_acked(struct sim_checker *c, raft_index index, raft_term term);

/* A read issued when the newest acknowledged write had index
 * @issued_ack_index got @read_index and was served by @id at applied index
 * @applied: both must cover that write. */
void sim_checker_read(struct sim_checker *c,
                      raft_id id,
                      uint64_t context,
                      raft_index issued_ack_index,
                      raft_index read_index,
                      raft_index applied);

#endif /* SIM_CHECKER_H */
