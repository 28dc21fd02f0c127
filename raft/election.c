/* Leader election, dissertation §3.4: "If a follower receives no
 * communication over a period of time called the election timeout, then it
 * assumes there is no viable leader and begins an election".  Also the
 * pre-vote phase (§9.6), check-quorum and the lease that makes servers
 * disregard RequestVote while they hear from a leader (§4.2.3, §6.2).
 *
 *                 timeout          pre-vote quorum         vote quorum
 *   FOLLOWER ----------------> PRE_CANDIDATE ----------> CANDIDATE ------>
 * LEADER ^  ^  (pre_vote off or TimeoutNow: straight to CANDIDATE)  | | |
 * +------------------- higher term / current leader ------+          |
 *      +----------- higher term, check-quorum failure, removal committed -----+
 *
 *   transition                      function
 *   any -> FOLLOWER                 raft__become_follower
 *   FOLLOWER -> (PRE_)CANDIDATE     raft__campaign -> become_pre_candidate /
 *                                   become_candidate
 *   (PRE_)CANDIDATE -> next stage   raft__recv_vote_resp -> tally
 *   CANDIDATE -> LEADER             become_leader
 */
#include "election.h"

#include <stdlib.h>
#include <string.h>

#include "configuration.h"
#include "read.h"
#include "replication.h"
#include "transfer.h"

static void reset_timeout(struct raft__impl *r)
{
    unsigned e = r->cfg.election_ticks;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    r->timeout = raft__prng_range(&r->prng, e, 2 * e);
}

bool raft__promotable(const struct raft__impl *r)
{
    return raft__conf_is_voter(&r->conf, r->cfg.id);
}

void raft__become_follower(struct raft__impl *r, raft_term term, raft_id leader)
{
    bool was_leader = r->state == RAFT_LEADER;
    if (term != r->term) {
        r->term = term;
        r->vote = 0;
    }
    r->state = RAFT_FOLLOWER;
    r->leader = leader;
    r->n_votes = 0;
    reset_timeout(r);
    if (was_leader) {
        raft__transfer_abort(r);
        raft__read_fail_all(r, GOULETTE_ENOTLEADER);
        raft__progress_clear(r);
    }
}

static void record_vote(struct raft__impl *r, raft_id id, bool granted)
{
    unsigned i;
    for (i = 0; i < r->n_votes; i++) {
        if (r->votes[i].id == id) {
            return; /* the first answer counts; duplicates are ignored */
        }
    }
    /* n_votes never exceeds the number of distinct senders, so grow the
     * array one step at a time. */
    {
        struct raft__vote *v =
            realloc(r->votes, (r->n_votes + 1) * sizeof *r->votes);
        if (v == NULL) {
            r->out.oom = true;
            return;
        }
        r->votes = v;
    }
    r->votes[r->n_votes].id = id;
    r->votes[r->n_votes].granted = granted;
    r->n_votes++;
}

static void become_candidate(struct raft__impl *r, bool transfer);

static void become_leader(struct raft__impl *r)
{
    r->state = RAFT_LEADER;
    r->leader = r->cfg.id;
    r->n_votes = 0;
    r->uncommitted_bytes = 0;
    r->transfer_to = 0;
    r->read_seq = 0;
    r->read_confirmed = 0;
    reset_timeout(r);
    if (raft__progress_sync(r, true) != 0) {
        /* A leader that cannot track its followers would only block the
         * cluster until check-quorum: give the term up at once. */
        r->out.oom = true;
        raft__become_follower(r, r->term, 0);
        return;
    }
    /* §3.6.2 / paper §8: a no-op entry at the start of the term, so that
     * entries of earlier terms get committed by counting this one. */
    raft__append_local(r, RAFT_ENTRY_BARRIER, NULL);
    raft__debugf(r, "%llu: leader in term %llu", (unsigned long long)r->cfg.id,
                 (unsigned long long)r->term);
    raft__maybe_commit(r);
    raft__broadcast_append(r);
}

/* Send (pre-)vote requests for @term to every other voter. */
static void request_votes(struct raft__impl *r,
                          enum raft_msg_type type,
                          raft_term term,
                          bool transfer)
{
    unsigned i;
    for (i = 0; i < r->conf.n; i++) {
        const struct raft_server *s = &r->conf.servers[i];
        struct raft_message m = {0};
        if (s->id == r->cfg.id || s->role != RAFT_VOTER) {
            continue;
        }
        m.type = type;
        m.to = s->id;
        m.term = term;
        m.log_index = raft__last_index(r);
        m.log_term = raft__last_term(r);
        m.transfer = transfer;
        raft__send(r, &m);
    }
}

/* Count the votes; move on when a quorum decided. */
static void tally(struct raft__impl *r)
{
    unsigned i, granted = 0, rejected = 0;
    unsigned quorum = raft__conf_quorum(&r->conf);
    for (i = 0; i < r->n_votes; i++) {
        if (!raft__conf_is_voter(&r->conf, r->votes[i].id)) {
            continue;
        }
        if (r->votes[i].granted) {
            granted++;
        } else {
            rejected++;
        }
    }
    if (granted >= quorum) {
        if (r->state == RAFT_PRE_CANDIDATE) {
            become_candidate(r, false); /* not a transfer: leases hold */
        } else {
            become_leader(r);
        }
    } else if (rejected >= quorum) {
        raft__become_follower(r, r->term, 0);
    }
}

static void become_candidate(struct raft__impl *r, bool transfer)
{
    r->term++;
    r->vote = r->cfg.id;
    r->state = RAFT_CANDIDATE;
    r->leader = 0;
    r->n_votes = 0;
    reset_timeout(r);
    record_vote(r, r->cfg.id, true);
    request_votes(r, RAFT_MSG_VOTE, r->term, transfer);
    tally(r);
}

static void become_pre_candidate(struct raft__impl *r)
{
    /* §9.6: the term does not change, so a server that cannot win (a
     * partitioned one, for instance) disrupts nobody. */
    r->state = RAFT_PRE_CANDIDATE;
    r->leader = 0;
    r->n_votes = 0;
    reset_timeout(r);
    record_vote(r, r->cfg.id, true);
    request_votes(r, RAFT_MSG_PREVOTE, r->term + 1, false);
    tally(r);
}

void raft__campaign(struct raft__impl *r, bool transfer)
{
    if (!raft__promotable(r) || r->state == RAFT_LEADER) {
        return;
    }
    if (r->cfg.pre_vote && !transfer && r->state != RAFT_PRE_CANDIDATE) {
        become_pre_candidate(r);
    } else {
        become_candidate(r, transfer);
    }
}

/* Leader: step down unless a quorum was heard from during the last election
 * timeout (check-quorum, §6.2). */
static void check_quorum(struct raft__impl *r)
{
    unsigned i, active = 0;
    for (i = 0; i < r->n_prs; i++) {
        struct raft__progress *p = &r->prs[i];
        if (raft__conf_is_voter(&r->conf, p->id) &&
            (p->recent_active || p->id == r->cfg.id)) {
            active++;
        }
        p->recent_active = false;
    }
    if (r->cfg.check_quorum && active < raft__conf_quorum(&r->conf)) {
        raft__warnf(r, "%llu: lost contact with a quorum, stepping down",
                    (unsigned long long)r->cfg.id);
        raft__become_follower(r, r->term, 0);
    }
}

static void leader_tick(struct raft__impl *r)
{
    r->election_elapsed++;
    r->heartbeat_elapsed++;
    raft__transfer_tick(r);
    if (r->election_elapsed >= r->cfg.election_ticks) {
        r->election_elapsed = 0;
        check_quorum(r);
        if (r->state != RAFT_LEADER) {
            return;
        }
    }
    raft__replication_tick(r);
    if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        raft__broadcast_heartbeat(r);
    }
}

void raft__election_tick(struct raft__impl *r)
{
    if (r->state == RAFT_LEADER) {
        leader_tick(r);
        return;
    }
    r->election_elapsed++;
    if (r->election_elapsed >= r->timeout) {
        reset_timeout(r);
        if (r->state == RAFT_PRE_CANDIDATE) {
            r->state = RAFT_FOLLOWER; /* a failed pre-vote starts over */
        }
        raft__campaign(r, false);
    }
}

/* §4.2.3: a server that heard from a leader within the minimum election
 * timeout does not grant votes nor update its term.  A leader (whose
 * election_elapsed restarts every election timeout, at its quorum check) is
 * always in its own lease. */
static bool in_lease(const struct raft__impl *r)
{
    return r->cfg.check_quorum && r->leader != 0 &&
           r->election_elapsed < r->cfg.election_ticks;
}

static void reply_stale(struct raft__impl *r, const struct raft_message *m)
{
    struct raft_message resp = {0};
    resp.to = m->from;
    resp.term = r->term;
    if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT) {
        /* Tell a stale leader about the new term so it steps down (needed
         * with check-quorum/pre-vote, where it might not hear otherwise). */
        if (r->cfg.check_quorum || r->cfg.pre_vote) {
            resp.type = RAFT_MSG_APPEND_RESP;
            resp.reject = true;
            resp.index = m->log_index;
            raft__send(r, &resp);
        }
    } else if (m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE) {
        /* §3.4 Figure 3.1: "Reply false if term < currentTerm", with the
         * current term "for candidate to update itself".  Without it, a
         * candidate that only we would hear (configurations that diverged
         * while uncommitted) could campaign in stale terms forever. */
        resp.type = m->type == RAFT_MSG_VOTE ? RAFT_MSG_VOTE_RESP
                                             : RAFT_MSG_PREVOTE_RESP;
        resp.reject = true;
        raft__send(r, &resp);
    }
}

bool raft__election_check_term(struct raft__impl *r,
                               const struct raft_message *m)
{
    bool vote_req = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE;
    if (m->type >= RAFT_MSG_PROPOSE) {
        return true; /* forwarded requests are not term-checked */
    }
    if (m->term > r->term) {
        if (vote_req && !m->transfer && in_lease(r)) {
            return false;
        }
        if (m->type == RAFT_MSG_PREVOTE ||
            (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)) {
            return true; /* pre-votes change no state (§9.6) */
        }
        if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
            m->type == RAFT_MSG_SNAPSHOT) {
            raft__become_follower(r, m->term, m->from);
        } else {
            raft__become_follower(r, m->term, 0);
        }
        return true;
    }
    if (m->term < r->term) {
        reply_stale(r, m);
        return false;
    }
    return true;
}

static bool log_up_to_date(const struct raft__impl *r,
                           const struct raft_message *m)
{
    raft_term last_term = raft__last_term(r);
    if (raft__bug(r, RAFT_BUG_VOTE_NO_LOG_CHECK)) {
        return true;
    }
    return m->log_term > last_term ||
           (m->log_term == last_term && m->log_index >= raft__last_index(r));
}

void raft__recv_vote(struct raft__impl *r, const struct raft_message *m)
{
    struct raft_message resp = {0};
    bool pre = m->type == RAFT_MSG_PREVOTE;
    bool can = r->vote == m->from || (r->vote == 0 && r->leader == 0) ||
               (pre && m->term > r->term);
    resp.type = pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP;
    resp.to = m->from;
    if (can && log_up_to_date(r, m)) {
        /* A pre-vote answer carries the term asked about (§9.6). */
        resp.term = m->term;
        if (!pre) {
            r->vote = m->from;
            r->election_elapsed = 0;
        }
    } else {
        resp.term = r->term;
        resp.reject = true;
    }
    raft__send(r, &resp);
}

void raft__recv_vote_resp(struct raft__impl *r, const struct raft_message *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE_RESP;
    if (!raft__conf_is_voter(&r->conf, m->from)) {
        raft__warnf(r, "%llu: vote from non-voter %llu ignored",
                    (unsigned long long)r->cfg.id, (unsigned long long)m->from);
        return;
    }
    if (pre && r->state == RAFT_PRE_CANDIDATE) {
        if (m->reject ? m->term != r->term : m->term != r->term + 1) {
            return; /* an answer to an older round */
        }
    } else if (!pre && r->state == RAFT_CANDIDATE) {
        if (m->term != r->term) {
            return;
        }
    } else {
        return;
    }
    record_vote(r, m->from, !m->reject);
    tally(r);
}
