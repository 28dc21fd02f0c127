/* ReadIndex, dissertation §6.4: "1. If the leader has not yet marked an
 * entry from its current term committed, it waits until it has done so.
 * 2. The leader saves its current commit index in a local variable readIndex.
 * 3. The leader needs to make sure it hasn't been superseded [...] it sends
 * a new round of heartbeats and waits for their acknowledgments from a
 * majority of the cluster. 4. The leader waits for its state machine to
 * advance at least as far as the readIndex" (step 4 is the runtime's).
 *
 * Batching: reads that arrive while a round is in flight wait for the next
 * round, started as soon as that one is confirmed, so N reads cost at most
 * two rounds.  A round k is confirmed when a quorum of voters answered a
 * heartbeat carrying context >= k (every heartbeat sent after round k
 * started carries at least k).  A deposed leader answers nothing: its
 * waiting reads fail when it steps down, and answers from another term
 * never reach this file (election.c drops them). */
#include "read.h"

#include <stdlib.h>

#include "configuration.h"
#include "replication.h"

/* Deliver the result of read @rd. */
static void answer(struct raft__impl *r,
                   const struct raft__read *rd,
                   int rv,
                   raft_index index)
{
    struct raft_message m = {0};
    if (rd->from == 0) {
        raft__out_read(r, rd->context, rv, index);
        return;
    }
    m.type = RAFT_MSG_READ_INDEX_RESP;
    m.to = rd->from;
    m.context = rd->context;
    m.rv = rv;
    m.index = rv == 0 ? index : 0;
    raft__send(r, &m);
}

static bool commit_in_term(const struct raft__impl *r)
{
    return raft__log_term(&r->log, r->commit) == r->term;
}

static void enqueue(struct raft__impl *r, uint64_t context, raft_id from)
{
    struct raft__read *rd;
    if (r->n_reads == r->cap_reads) {
        unsigned cap = r->cap_reads == 0 ? 16 : r->cap_reads * 2;
        struct raft__read *p = realloc(r->reads, cap * sizeof *p);
        if (p == NULL) {
            r->out.oom = true;
            return;
        }
        r->reads = p;
        r->cap_reads = cap;
    }
    rd = &r->reads[r->n_reads++];
    rd->context = context;
    rd->from = from;
    rd->index = 0;
    rd->round = 0;
}

void raft__read_request(struct raft__impl *r, uint64_t context, raft_id from)
{
    struct raft__read rd = {context, from, 0, 0};
    if (r->state != RAFT_LEADER) {
        if (from == 0 && r->leader != 0) {
            struct raft_message m = {0};
            m.type = RAFT_MSG_READ_INDEX;
            m.to = r->leader;
            m.context = context;
            raft__send(r, &m);
            return;
        }
        answer(r, &rd,
               r->leader != 0 ? GOULETTE_ENOTLEADER : GOULETTE_ENOLEADER, 0);
        return;
    }
    if (raft__bug(r, RAFT_BUG_READ_NO_QUORUM)) {
        answer(r, &rd, 0, r->commit); /* no heartbeat round: unsafe */
        return;
    }
    enqueue(r, context, from);
    raft__read_advance(r);
    raft__read_check(r); /* a single voter confirms its own rounds */
}

void raft__read_advance(struct raft__impl *r)
{
    unsigned i;
    bool waiting = false;
    if (r->state != RAFT_LEADER || !commit_in_term(r) ||
        r->read_seq != r->read_confirmed) {
        return;
    }
    for (i = 0; i < r->n_reads; i++) {
        if (r->reads[i].round == 0) {
            waiting = true;
            r->reads[i].round = r->read_seq + 1;
            r->reads[i].index = r->commit;
        }
    }
    if (!waiting) {
        return;
    }
    r->read_seq++;
    raft__broadcast_heartbeat(r);
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : (x > y ? -1 : 0);
}

/* The highest round a quorum of voters acknowledged. */
static uint64_t quorum_round(struct raft__impl *r)
{
    uint64_t small[16], *acks = small, result = 0;
    unsigned i, n = 0;
    if (r->conf.n > 16) {
        acks = malloc(r->conf.n * sizeof *acks);
        if (acks == NULL) {
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
        p = raft__progress_get(r, s->id);
        acks[n++] =
            s->id == r->cfg.id ? r->read_seq : (p != NULL ? p->read_ack : 0);
    }
    if (n > 0) {
        qsort(acks, n, sizeof *acks, cmp_desc);
        result = acks[raft__conf_quorum(&r->conf) - 1];
    }
    if (acks != small) {
        free(acks);
    }
    return result;
}

void raft__read_check(struct raft__impl *r)
{
    uint64_t round;
    unsigned i, k = 0;
    if (r->state != RAFT_LEADER || r->read_seq == r->read_confirmed) {
        return;
    }
    round = quorum_round(r);
    if (round <= r->read_confirmed) {
        return;
    }
    r->read_confirmed = round;
    for (i = 0; i < r->n_reads; i++) {
        struct raft__read *rd = &r->reads[i];
        if (rd->round != 0 && rd->round <= round) {
            answer(r, rd, 0, rd->index);
        } else {
            r->reads[k++] = *rd;
        }
    }
    r->n_reads = k;
    raft__read_advance(r);
    if (r->read_seq != r->read_confirmed) {
        raft__read_check(r); /* single voter: confirmed at once */
    }
}

void raft__read_fail_all(struct raft__impl *r, int rv)
{
    unsigned i;
    for (i = 0; i < r->n_reads; i++) {
        answer(r, &r->reads[i], rv, 0);
    }
    r->n_reads = 0;
}

void raft__recv_read_index(struct raft__impl *r, const struct raft_message *m)
{
    if (r->state == RAFT_LEADER &&
        raft_configuration_get(&r->conf, m->from) == NULL) {
        raft__warnf(r, "%llu: read request from non-member %llu dropped",
                    (unsigned long long)r->cfg.id, (unsigned long long)m->from);
        return;
    }
    raft__read_request(r, m->context, m->from);
}

void raft__recv_read_index_resp(struct raft__impl *r,
                                const struct raft_message *m)
{
    raft__out_read(r, m->context, m->rv, m->index);
}
