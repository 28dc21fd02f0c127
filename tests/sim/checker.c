/* Safety properties, checked incrementally as nodes act, so that "after
 * every step" costs O(work done in the step).
 *
 * Invariants kept:
 *   leaders[t]       the only node ever seen leading term t;
 *   match{(i, t)}    the prefix hash every log holding (i, t) must have;
 *   truth[i]         (term, prefix hash) of the committed entry i; every
 *                    apply and snapshot install must agree with it;
 *   frontier[b]      every leader elected from now on in a term > b must
 *                    hold it;
 *   ack_index        every read issued from now on must see it. */
#include "checker.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prng.h"

void sim_checker_init(struct sim_checker *c,
                      struct sim_trace *trace,
                      const uint64_t *step)
{
    memset(c, 0, sizeof *c);
    c->trace = trace;
    c->step = step;
}

void sim_checker_fini(struct sim_checker *c)
{
    free(c->leaders);
    free(c->match);
    free(c->truth);
    free(c->frontier);
    c->frontier = NULL;
    c->leaders = NULL;
    c->match = NULL;
    c->truth = NULL;
}

void sim_checker_fail(struct sim_checker *c,
                      const char *property,
                      const char *fmt,
                      ...)
{
    va_list ap;
    if (c->failed) {
        return;
    }
    c->failed = true;
    c->property = property;
    c->fail_step = *c->step;
    va_start(ap, fmt);
    vsnprintf(c->detail, sizeof c->detail, fmt, ap);
    va_end(ap);
    sim_trace_printf(c->trace, "VIOLATION %s: %s", property, c->detail);
}

static bool grow(void **v, size_t *cap, size_t need, size_t size)
{
    size_t n = *cap == 0 ? 1024 : *cap;
    void *p;
    if (need < *cap) {
        return true;
    }
    while (n <= need) {
        n *= 2;
    }
    p = realloc(*v, n * size);
    if (p == NULL) {
        return false;
    }
    memset((char *)p + *cap * size, 0, (n - *cap) * size);
    *v = p;
    *cap = n;
    return true;
}

void sim_checker_leader(struct sim_checker *c, raft_id id, raft_term term)
{
    if (!grow((void **)&c->leaders, &c->n_leaders, term, sizeof(raft_id))) {
        sim_checker_fail(c, SIM_P_RUNTIME, "out of memory");
        return;
    }
    if (c->leaders[term] != 0 && c->leaders[term] != id) {
        sim_checker_fail(c, SIM_P_ELECTION,
                         "n%llu and n%llu are both leader of term %llu",
                         (unsigned long long)c->leaders[term],
                         (unsigned long long)id, (unsigned long long)term);
        return;
    }
    c->leaders[term] = id;
}

static size_t slot_of(raft_index index, raft_term term, size_t cap)
{
    return (size_t)(sim_prng_mix(index * 0x9e3779b97f4a7c15ULL ^ term) &
                    (cap - 1));
}

static bool match_grow(struct sim_checker *c)
{
    struct sim_match_slot *old = c->match;
    size_t old_cap = c->match_cap;
    size_t cap = old_cap == 0 ? 4096 : old_cap * 2;
    size_t i;
    c->match = calloc(cap, sizeof *c->match);
    if (c->match == NULL) {
        c->match = old;
        return false;
    }
    c->match_cap = cap;
    for (i = 0; i < old_cap; i++) {
        if (old[i].index != 0) {
            size_t s = slot_of(old[i].index, old[i].term, cap);
            while (c->match[s].index != 0) {
                s = (s + 1) & (cap - 1);
            }
            c->match[s] = old[i];
        }
    }
    free(old);
    return true;
}

/* Returns false (and records a violation) when (index, term) is known with
 * another prefix hash. */
static bool match_check(struct sim_checker *c,
                        raft_id id,
                        raft_index index,
                        raft_term term,
                        uint64_t chain)
{
    size_t s;
    if (index == 0) {
        return true;
    }
    if (c->match_n * 2 >= c->match_cap && !match_grow(c)) {
        sim_checker_fail(c, SIM_P_RUNTIME, "out of memory");
        return false;
    }
    s = slot_of(index, term, c->match_cap);
    while (c->match[s].index != 0) {
        if (c->match[s].index == index && c->match[s].term == term) {
            if (c->match[s].chain != chain) {
                sim_checker_fail(c, SIM_P_LOG_MATCHING,
                                 "n%llu holds entry (index %llu, term %llu) "
                                 "after a prefix that differs from another "
                                 "log's",
                                 (unsigned long long)id,
                                 (unsigned long long)index,
                                 (unsigned long long)term);
                return false;
            }
            return true;
        }
        s = (s + 1) & (c->match_cap - 1);
    }
    c->match[s].index = index;
    c->match[s].term = term;
    c->match[s].chain = chain;
    c->match_n++;
    return true;
}

void sim_checker_appended(struct sim_checker *c,
                          raft_id id,
                          const struct sim_log *l,
                          raft_index from)
{
    raft_index i;
    for (i = from; i <= sim_log_last(l); i++) {
        const struct sim_entry *e = sim_log_get(l, i);
        if (e == NULL) {
            continue;
        }
        if (!match_check(c, id, i, e->e.term, e->chain)) {
            return;
        }
    }
}

void sim_checker_commit(struct sim_checker *c,
                        raft_id id,
                        raft_index commit,
                        const struct sim_log *l)
{
    const struct sim_entry *e = sim_log_get(l, commit);
    if (e == NULL || commit >= c->truth_cap || c->truth[commit].term == 0) {
        return;
    }
    if (e->chain != c->truth[commit].chain) {
        sim_checker_fail(
            c, SIM_P_SM_SAFETY,
            "n%llu takes (index %llu, term %llu) as committed "
            "but the committed history has term %llu%s there",
            (unsigned long long)id, (unsigned long long)commit,
            (unsigned long long)e->e.term,
            (unsigned long long)c->truth[commit].term,
            e->e.term == c->truth[commit].term ? " after another prefix" : "");
    }
}

raft_term sim_checker_committed_term(const struct sim_checker *c,
                                     raft_index index)
{
    if (index >= c->truth_cap) {
        return 0;
    }
    return c->truth[index].term;
}

void sim_checker_new_leader(struct sim_checker *c,
                            raft_id id,
                            raft_term term,
                            const struct sim_log *l)
{
    raft_index i = 0;
    raft_term b;
    const struct sim_entry *e;
    for (b = 0; b < term && b < c->frontier_cap; b++) {
        if (c->frontier[b] > i) {
            i = c->frontier[b];
        }
    }
    if (i == 0 || i < l->base) {
        /* Below the leader's snapshot: what is there is a committed
         * prefix that was checked when it was installed or applied. */
    } else if (i == l->base) {
        if (l->base_chain != c->truth[i].chain) {
            sim_checker_fail(c, SIM_P_COMPLETENESS,
                             "new leader n%llu of term %llu: snapshot at "
                             "%llu differs from the committed history",
                             (unsigned long long)id, (unsigned long long)term,
                             (unsigned long long)i);
            return;
        }
    } else {
        e = sim_log_get(l, i);
        if (e == NULL || e->chain != c->truth[i].chain) {
            sim_checker_fail(
                c, SIM_P_COMPLETENESS,
                "new leader n%llu of term %llu lacks entry (index %llu, "
                "term %llu) committed by term %llu: its log ends at %llu%s",
                (unsigned long long)id, (unsigned long long)term,
                (unsigned long long)i, (unsigned long long)c->truth[i].term,
                (unsigned long long)c->truth[i].bound,
                (unsigned long long)sim_log_last(l),
                e == NULL ? "" : " and differs there");
            return;
        }
    }
    if (c->ack_index > l->base && c->ack_index < c->truth_cap &&
        c->truth[c->ack_index].bound < term &&
        sim_log_term(l, c->ack_index) != c->ack_term) {
        sim_checker_fail(c, SIM_P_ACKED,
                         "new leader n%llu of term %llu lacks acknowledged "
                         "write (index %llu, term %llu)",
                         (unsigned long long)id, (unsigned long long)term,
                         (unsigned long long)c->ack_index,
                         (unsigned long long)c->ack_term);
    }
}

/* Record or compare the committed (index, term, chain). */
static void truth_check(struct sim_checker *c,
                        raft_id id,
                        raft_term node_term,
                        raft_index index,
                        raft_term term,
                        uint64_t chain,
                        const char *what)
{
    if (!grow((void **)&c->truth, &c->truth_cap, index, sizeof *c->truth)) {
        sim_checker_fail(c, SIM_P_RUNTIME, "out of memory");
        return;
    }
    if (c->truth[index].term == 0) {
        c->truth[index].term = term;
        c->truth[index].chain = chain;
        c->truth[index].bound = node_term;
        if (index > c->truth_max) {
            c->truth_max = index;
        }
        if (!grow((void **)&c->frontier, &c->frontier_cap, node_term,
                  sizeof *c->frontier)) {
            sim_checker_fail(c, SIM_P_RUNTIME, "out of memory");
            return;
        }
        if (index > c->frontier[node_term]) {
            c->frontier[node_term] = index;
        }
        c->truth_gen++;
    } else if (c->truth[index].term != term || c->truth[index].chain != chain) {
        sim_checker_fail(
            c, SIM_P_SM_SAFETY,
            "n%llu %s (index %llu, term %llu) but the committed "
            "history has term %llu%s there",
            (unsigned long long)id, what, (unsigned long long)index,
            (unsigned long long)term, (unsigned long long)c->truth[index].term,
            c->truth[index].term == term ? " after another prefix" : "");
        return;
    }
    if (node_term < c->truth[index].bound) {
        /* Every node that applies an entry learnt of its commitment from a
         * leader of a term no higher than its own: the lowest such term is
         * the tightest bound. */
        c->truth[index].bound = node_term;
        if (index > c->frontier[node_term]) {
            c->frontier[node_term] = index;
        }
        c->truth_gen++;
    }
    match_check(c, id, index, term, chain);
}

void sim_checker_applied(struct sim_checker *c,
                         raft_id id,
                         raft_term term,
                         raft_index applied,
                         const struct raft_entry *e,
                         uint64_t chain)
{
    if (e->index <= applied) {
        sim_checker_fail(c, SIM_P_SM_SAFETY,
                         "n%llu applies entry %llu twice (applied index "
                         "%llu)",
                         (unsigned long long)id, (unsigned long long)e->index,
                         (unsigned long long)applied);
        return;
    }
    if (e->index != applied + 1) {
        sim_checker_fail(c, SIM_P_SM_SAFETY,
                         "n%llu applies entry %llu after %llu: a gap",
                         (unsigned long long)id, (unsigned long long)e->index,
                         (unsigned long long)applied);
        return;
    }
    truth_check(c, id, term, e->index, e->term, chain, "applies");
}

void sim_checker_installed(struct sim_checker *c,
                           raft_id id,
                           raft_term node_term,
                           raft_index applied,
                           raft_index index,
                           raft_term term,
                           uint64_t chain)
{
    if (index < applied) {
        sim_checker_fail(c, SIM_P_SM_SAFETY,
                         "n%llu installs snapshot %llu over applied index "
                         "%llu: the state machine goes back in time",
                         (unsigned long long)id, (unsigned long long)index,
                         (unsigned long long)applied);
        return;
    }
    truth_check(c, id, node_term, index, term, chain, "installs a snapshot of");
}

void sim_checker_acked(struct sim_checker *c, raft_index index, raft_term term)
{
    c->acks++;
    if (sim_checker_committed_term(c, index) != term) {
        sim_checker_fail(
            c, SIM_P_ACKED,
            "write (index %llu, term %llu) acknowledged but "
            "the committed entry there has term %llu",
            (unsigned long long)index, (unsigned long long)term,
            (unsigned long long)sim_checker_committed_term(c, index));
        return;
    }
    if (index > c->ack_index) {
        c->ack_index = index;
        c->ack_term = term;
    }
}

void sim_checker_read(struct sim_checker *c,
                      raft_id id,
                      uint64_t context,
                      raft_index issued_ack_index,
                      raft_index read_index,
                      raft_index applied)
{
    c->reads++;
    if (read_index < issued_ack_index) {
        /* §6.4: the read index is the leader's commit index once it has
         * committed an entry of its term and confirmed its leadership, so
         * it covers every write committed before the read arrived. */
        sim_checker_fail(c, SIM_P_READ,
                         "read %llu at n%llu got read index %llu, below the "
                         "write at %llu acknowledged before the read was "
                         "issued",
                         (unsigned long long)context, (unsigned long long)id,
                         (unsigned long long)read_index,
                         (unsigned long long)issued_ack_index);
        return;
    }
    if (applied < issued_ack_index) {
        sim_checker_fail(c, SIM_P_READ,
                         "read %llu served by n%llu at applied index %llu "
                         "(read index %llu) misses the write at %llu "
                         "acknowledged before the read was issued",
                         (unsigned long long)context, (unsigned long long)id,
                         (unsigned long long)applied,
                         (unsigned long long)read_index,
                         (unsigned long long)issued_ack_index);
    }
}
