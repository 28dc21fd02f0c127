/* Leadership transfer, dissertation §3.10: "1. The prior leader stops
 * accepting new client requests. 2. The prior leader fully updates the
 * target server's log to match its own [...] 3. The prior leader sends a
 * TimeoutNow request to the target server", which starts an election at
 * once, its vote requests flagged so that voters disregard their leader
 * lease (§4.2.3).  "If the transfer does not complete within about one
 * election timeout, the prior leader aborts the transfer and resumes
 * accepting client requests." */
#include "transfer.h"

#include "configuration.h"
#include "election.h"
#include "replication.h"

static void send_timeout_now(struct raft__impl *r, raft_id to)
{
    struct raft_message m = {0};
    m.type = RAFT_MSG_TIMEOUT_NOW;
    m.to = to;
    m.term = r->term;
    raft__send(r, &m);
}

/* The voter (other than us) with the highest match, or 0. */
static raft_id most_up_to_date(struct raft__impl *r)
{
    struct raft__progress *best = NULL;
    unsigned i;
    for (i = 0; i < r->n_prs; i++) {
        struct raft__progress *p = &r->prs[i];
        if (p->id != r->cfg.id && raft__conf_is_voter(&r->conf, p->id) &&
            (best == NULL || p->match > best->match)) {
            best = p;
        }
    }
    return best != NULL ? best->id : 0;
}

int raft__transfer_start(struct raft__impl *r, raft_id to)
{
    struct raft__progress *p;
    if (r->state != RAFT_LEADER) {
        return GOULETTE_ENOTLEADER;
    }
    if (r->transfer_to != 0) {
        return GOULETTE_ETRANSFER;
    }
    if (to == 0) {
        to = most_up_to_date(r);
    }
    p = raft__progress_get(r, to);
    if (to == 0 || to == r->cfg.id || p == NULL ||
        !raft__conf_is_voter(&r->conf, to)) {
        return GOULETTE_ENOTFOUND;
    }
    r->transfer_to = to;
    r->transfer_elapsed = 0;
    if (p->match == raft__last_index(r)) {
        send_timeout_now(r, to);
    } else {
        raft__send_append(r, p, true);
    }
    return 0;
}

void raft__transfer_progress(struct raft__impl *r, struct raft__progress *p)
{
    if (r->transfer_to == p->id && p->match == raft__last_index(r)) {
        send_timeout_now(r, p->id);
    }
}

void raft__transfer_tick(struct raft__impl *r)
{
    if (r->transfer_to == 0) {
        return;
    }
    if (++r->transfer_elapsed >= r->cfg.election_ticks) {
        raft__warnf(r, "%llu: transfer to %llu timed out, aborted",
                    (unsigned long long)r->cfg.id,
                    (unsigned long long)r->transfer_to);
        raft__transfer_abort(r);
    }
}

void raft__transfer_abort(struct raft__impl *r)
{
    r->transfer_to = 0;
    r->transfer_elapsed = 0;
}

void raft__recv_timeout_now(struct raft__impl *r, const struct raft_message *m)
{
    if (r->state == RAFT_LEADER || !raft__promotable(r)) {
        return;
    }
    raft__debugf(r, "%llu: TimeoutNow from %llu, campaigning",
                 (unsigned long long)r->cfg.id, (unsigned long long)m->from);
    raft__campaign(r, true);
}
