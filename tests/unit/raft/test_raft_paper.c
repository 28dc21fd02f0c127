/* Tests per claim of the Raft paper and dissertation (§5.1 terms, §5.2
 * election, §5.3 replication, §5.4 safety incl. Figure 8), modelled on
 * etcd-io/raft's raft_paper_test.go, over the in-test cluster harness. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

static struct test_cluster C;

static struct raft *R(raft_id id)
{
    return &cluster_node(&C, id)->raft;
}

static void no_pre_vote(unsigned n)
{
    unsigned i;
    for (i = 1; i <= n; i++) {
        cluster_node(&C, i)->cfg.pre_vote = false;
        cluster_node(&C, i)->cfg.check_quorum = false;
    }
}

static void inject(raft_id from,
                   raft_id to,
                   enum raft_msg_type type,
                   raft_term term)
{
    struct raft_message m = {0};
    m.type = type;
    m.from = from;
    m.to = to;
    m.term = term;
    cluster_inject(&C, &m);
}

static unsigned queued(raft_id from, raft_id to, enum raft_msg_type type)
{
    unsigned i, n = 0;
    for (i = 0; i < C.qn; i++) {
        n += C.q[i].from == from && C.q[i].to == to && C.q[i].type == type;
    }
    return n;
}

static void teardown(void)
{
    cluster_fini(&C);
}

/* §5.1 -------------------------------------------------------------------- */

START_TEST(servers_start_as_followers)
{
    unsigned i;
    cluster_init(&C, 3, 3);
    cluster_start(&C);
    for (i = 1; i <= 3; i++) {
        ck_assert_int_eq(raft_state(R(i)), RAFT_FOLLOWER);
        ck_assert_uint_eq(raft_current_term(R(i)), 1);
        ck_assert_uint_eq(raft_leader(R(i)), 0);
    }
}
END_TEST

START_TEST(follower_adopts_higher_term_and_leader)
{
    cluster_init(&C, 3, 3);
    cluster_start(&C);
    inject(2, 1, RAFT_MSG_HEARTBEAT, 5);
    ck_assert_uint_eq(raft_current_term(R(1)), 5);
    ck_assert_int_eq(raft_state(R(1)), RAFT_FOLLOWER);
    ck_assert_uint_eq(raft_leader(R(1)), 2);
}
END_TEST

START_TEST(candidate_steps_down_on_higher_term)
{
    cluster_init(&C, 3, 3);
    no_pre_vote(3);
    cluster_start(&C);
    cluster_campaign(&C, 1);
    ck_assert_int_eq(raft_state(R(1)), RAFT_CANDIDATE);
    inject(3, 1, RAFT_MSG_VOTE_RESP, 7);
    ck_assert_int_eq(raft_state(R(1)), RAFT_FOLLOWER);
    ck_assert_uint_eq(raft_current_term(R(1)), 7);
}
END_TEST

START_TEST(leader_steps_down_on_higher_term)
{
    cluster_init(&C, 3, 3);
    cluster_start(&C);
    ck_assert(cluster_elect(&C, 1));
    inject(2, 1, RAFT_MSG_APPEND, raft_current_term(R(1)) + 1);
    ck_assert_int_eq(raft_state(R(1)), RAFT_FOLLOWER);
    ck_assert_uint_eq(raft_leader(R(1)), 2);
}
END_TEST

START_TEST(stale_term_message_is_rejected_with_current_term)
{
    raft_term terms[] = {3};
    struct raft_message resp;
    cluster_init(&C, 3, 3);
    cluster_set_log(&C, 1, terms, 1, 3);
    cluster_start(&C);
    cluster_drop_all(&C);
    inject(2, 1, RAFT_MSG_APPEND, 2);
    ck_assert_uint_eq(raft_current_term(R(1)), 3);
    ck_assert_uint_eq(raft_leader(R(1)), 0);
    ck_assert(cluster_take(&C, 1, 2, RAFT_MSG_APPEND_RESP, &resp));
    ck_assert_uint_eq(resp.term, 3);
    cluster_msg_free(&resp);
}
END_TEST

START_TEST(stale_vote_request_is_answered_with_the_current_term)
{
    raft_term terms[] = {4};
    struct raft_message resp;
    cluster_init(&C, 3, 3);
    no_pre_vote(3);
    cluster_set_log(&C, 1, terms, 1, 4);
    cluster_start(&C);
    cluster_campaign(&C, 2); /* candidate in term 2 */
    cluster_drop_all(&C);
    {
        struct raft_message m = {0};
        m.type = RAFT_MSG_VOTE;
        m.from = 2;
        m.to = 1;
        m.term = 2;
        m.log_index = 1;
        m.log_term = 1;
        cluster_inject(&C, &m);
    }
    ck_assert(cluster_take(&C, 1, 2, RAFT_MSG_VOTE_RESP, &resp));
    ck_assert(resp.reject);
    ck_assert_uint_eq(resp.term, 4);
    cluster_inject(&C, &resp); /* the candidate catches up */
    cluster_msg_free(&resp);
    ck_assert_uint_eq(raft_current_term(R(2)), 4);
    ck_assert_int_eq(raft_state(R(2)), RAFT_FOLLOWER);
}
END_TEST

/* §5.2 -------------------------------------------------------------------- */

START_TEST(leader_sends_heartbeats_every_heartbeat_interval)
{
    cluster_init(&C, 3, 3);
    cluster_start(&C);
    ck_assert(cluster_elect(&C, 1));
    cluster_drop_all(&C);
    cluster_tick(&C, 1, 1);
    ck_assert_uint_eq(queued(1, 2, RAFT_MSG_HEARTBEAT), 1);
    ck_assert_uint_eq(queued(1, 3, RAFT_MSG_HEARTBEAT), 1);
}
END_TEST

START_TEST(follower_campaigns_after_election_timeout)
{
    struct raft_message m;
    cluster_init(&C, 3, 3);
    no_pre_vote(3);
    cluster_start(&C);
    cluster_tick(&C, 1, 2 * 10);
    ck_assert_int_eq(raft_state(R(1)), RAFT_CANDIDATE);
    ck_assert_uint_eq(raft_current_term(R(1)), 2);
    ck_assert_uint_eq(cluster_node(&C, 1)->hs.vote, 1); /* persisted */
    ck_assert(cluster_take(&C, 1, 2, RAFT_MSG_VOTE, &m));
    ck_assert_uint_eq(m.term, 2);
    ck_assert_uint_eq(m.log_index, 1);
    ck_assert_uint_eq(m.log_term, 1);
    cluster_msg_free(&m);
    ck_assert_uint_eq(queued(1, 3, RAFT_MSG_VOTE), 1);
}
END_TEST

START_TEST(no_election_before_minimum_timeout)
{
    cluster_init(&C, 3, 3);
    cluster_start(&C);
    cluster_tick(&C, 1, 10 - 1);
    ck_assert_int_eq(raft_state(R(1)), RAFT_FOLLOWER);
    ck_assert_uint_eq(C.qn, 0);
}
END_TEST

/* The outcome of one round of votes: {n, grants, rejects, expected}. */
START_TEST(election_outcome_follows_the_vote_count)
{
    static const struct
    {
        unsigned n, grants, rejects;
        enum raft_state want;
    } cases[] = {
        {1, 0, 0, RAFT_LEADER},    {3, 1, 0, RAFT_LEADER},
        {3, 0, 0, RAFT_CANDIDATE}, {3, 0, 2, RAFT_FOLLOWER},
        {5, 2, 0, RAFT_LEADER},    {5, 1, 1, RAFT_CANDIDATE},
        {5, 1, 3, RAFT_FOLLOWER},  {5, 0, 2, RAFT_CANDIDATE},
    };
    unsigned k, i;
    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct raft_message m = {0};
        cluster_init(&C, cases[k].n, cases[k].n);
        no_pre_vote(cases[k].n);
        cluster_start(&C);
        cluster_campaign(&C, 1);
        cluster_drop_all(&C);
        m.to = 1;
        m.term = 2;
        for (i = 0; i < cases[k].grants + cases[k].rejects; i++) {
            m.type = RAFT_MSG_VOTE_RESP;
            m.from = 2 + i;
            m.reject = i >= cases[k].grants;
            cluster_inject(&C, &m);
        }
        ck_assert_msg(raft_state(R(1)) == cases[k].want, "case %u", k);
        cluster_fini(&C);
    }
    cluster_init(&C, 1, 1); /* for teardown */
}
END_TEST

START_TEST(follower_votes_once_per_term_first_come_first_served)
{
    struct raft_message m = {0}, resp;
    cluster_init(&C, 3, 3);
    no_pre_vote(3);
    cluster_start(&C);
    m.type = RAFT_MSG_VOTE;
    m.to = 1;
    m.term = 2;
    m.log_index = 1;
    m.log_term = 1;
    m.from = 2;
    cluster_inject(&C, &m);
    m.from = 3;
    cluster_inject(&C, &m);
    m.from = 2; /* a retransmission is granted again */
    cluster_inject(&C, &m);
    ck_assert(cluster_take(&C, 1, 2, RAFT_MSG_VOTE_RESP, &resp));
    ck_assert(!resp.reject);
    ck_assert(cluster_take(&C, 1, 3, RAFT_MSG_VOTE_RESP, &resp));
    ck_assert(resp.reject);
    ck_assert(cluster_take(&C, 1, 2, RAFT_MSG_VOTE_RESP, &resp));
    ck_assert(!resp.reject);
    ck_assert_uint_eq(cluster_node(&C, 1)->hs.vote, 2);
}
END_TEST

START_TEST(candidate_returns_to_follower_on_append_from_leader)
{
    cluster_init(&C, 3, 3);
    no_pre_vote(3);
    cluster_start(&C);
    cluster_campaign(&C, 1);
    cluster_drop_all(&C);
    inject(2, 1, RAFT_MSG_HEARTBEAT, 2);
    ck_assert_int_eq(raft_state(R(1)), RAFT_FOLLOWER);
    ck_assert_uint_eq(raft_leader(R(1)), 2);
    ck_assert_uint_eq(raft_current_term(R(1)), 2);
}
END_TEST

START_TEST(election_timeouts_are_randomized_in_range)
{
    bool seen[21] = {false};
    unsigned distinct = 0, seed, t;
    for (seed = 1; seed <= 40; seed++) {
        cluster_init(&C, 1, 1);
        C.nodes[0].cfg.seed = seed;
        C.nodes[0].cfg.pre_vote = false;
        cluster_start(&C);
        /* A single voter becomes leader as soon as it campaigns. */
        for (t = 1; t <= 20 && raft_state(R(1)) != RAFT_LEADER; t++) {
            cluster_tick(&C, 1, 1);
        }
        ck_assert_int_eq(raft_state(R(1)), RAFT_LEADER);
        ck_assert_uint_ge(t - 1, 10);
        ck_assert_uint_lt(t - 1, 20);
        if (!seen[t - 1]) {
            seen[t - 1] = true;
            distinct++;
        }
        cluster_fini(&C);
    }
    ck_assert_uint_ge(distinct, 4);
    cluster_init(&C, 1, 1);
}
END_TEST

START_TEST(split_vote_is_resolved_by_a_later_election)
{
    struct raft_message m;
    unsigned i, leaders = 0;
    cluster_init(&C, 4, 4);
    no_pre_vote(4);
    cluster_start(&C);
    cluster_campaign(&C, 1);
    cluster_campaign(&C, 2);
    /* 3 votes for 1 and 4 votes for 2: 2 votes each, quorum is 3. */
    ck_assert(cluster_take(&C, 1, 3, RAFT_MSG_VOTE, &m));
    cluster_inject(&C, &m);
    cluster_msg_free(&m);
    ck_assert(cluster_take(&C, 2, 4, RAFT_MSG_VOTE, &m));
    cluster_inject(&C, &m);
    cluster_msg_free(&m);
    cluster_deliver(&C);
    ck_assert_int_eq(raft_state(R(1)), RAFT_CANDIDATE);
    ck_assert_int_eq(raft_state(R(2)), RAFT_CANDIDATE);
    for (i = 0; i < 200 && cluster_leader(&C) == 0; i++) {
        cluster_tick_all(&C, 1);
        cluster_deliver(&C);
    }
    for (i = 1; i <= 4; i++) {
        leaders += raft_state(R(i)) == RAFT_LEADER;
    }
    ck_assert_uint_eq(leaders, 1);
    ck_assert_uint_ge(raft_current_term(R(cluster_leader(&C))), 3);
}
END_TEST

/* §5.3 -------------------------------------------------------------------- */

START_TEST(leader_replicates_a_proposal_then_commits_and_applies)
{
    struct raft_message m;
    uint64_t v;
    unsigned i;
    cluster_init(&C, 3, 3);
    cluster_start(&C);
    ck_assert(cluster_elect(&C, 1));
    ck_assert_int_eq(cluster_propose(&C, 1, 42), 0);
    ck_assert(cluster_take(&C, 1, 2, RAFT_MSG_APPEND, &m));
    ck_assert_uint_eq(m.n_entries, 1);
    ck_assert_uint_eq(m.log_index, 2);
    ck_assert_uint_eq(m.log_term, 2);
    ck_assert_uint_eq(m.commit, 2);
    memcpy(&v, m.entries[0].data.base, 8);
    ck_assert_uint_eq(v, 42);
    cluster_inject(&C, &m);
    cluster_msg_free(&m);
    cluster_deliver(&C);
    cluster_tick(&C, 1, 1); /* heartbeat spreads the commit index */
    cluster_deliver(&C);
    for (i = 1; i <= 3; i++) {
        ck_assert_uint_eq(raft_commit_index(R(i)), 3);
        ck_assert_uint_eq(cluster_node(&C, i)->applied, 3);
        ck_assert_uint_eq(cluster_node(&C, i)->sm_count, 1);
    }
    ck_assert_uint_eq(cluster_node(&C, 1)->props[0].index, 3);
    ck_assert_uint_eq(cluster_node(&C, 1)->props[0].term, 2);
}
END_TEST

START_TEST(leader_commits_only_once_a_majority_holds_the_entry)
{
    cluster_init(&C, 5, 5);
    cluster_start(&C);
    ck_assert(cluster_elect(&C, 1));
    cluster_cut(&C, 1, 3);
    cluster_cut(&C, 1, 4);
    cluster_cut(&C, 1, 5);
    cluster_propose(&C, 1, 7);
    cluster_deliver(&C);
    ck_assert_uint_eq(raft_commit_index(R(1)), 2); /* only 1 and 2 */
    cluster_heal(&C);
    cluster_tick(&C, 1, 1);
    cluster_deliver(&C);
    ck_assert_uint_eq(raft_commit_index(R(1)), 3);
}
END_TEST

START_TEST(new_leader_commits_preceding_entries_with_its_noop)
{
    raft_term old[] = {2, 2};
    unsigned i;
    cluster_init(&C, 3, 3);
    cluster_set_log(&C, 1, old, 2, 2);
    cluster_start(&C);
    ck_assert(cluster_elect(&C, 1));
    cluster_tick(&C, 1, 1);
    cluster_deliver(&C);
    for (i = 1; i <= 3; i++) {
        ck_assert_uint_eq(raft_commit_index(R(i)), 4);
        ck_assert_uint_eq(cluster_node(&C, i)->applied_term[2], 2);
        ck_assert_uint_eq(cluster_node(&C, i)->applied_term[4], 3);
    }
}
END_TEST

START_TEST(follower_rejects_append_that_does_not_match_its_log)
{
    struct raft_message m = {0}, resp;
    raft_term terms[] = {1, 2, 2};
    cluster_init(&C, 3, 3);
    cluster_set_log(&C, 1, terms, 3, 2);
    cluster_start(&C);
    m.type = RAFT_MSG_APPEND;
    m.from = 2;
    m.to = 1;
    m.term = 3;
    m.log_index = 6; /* beyond its log */
    m.log_term = 3;
    cluster_inject(&C, &m);
    ck_assert(cluster_take(&C, 1, 2, RAFT_MSG_APPEND_RESP, &resp));
    ck_assert(resp.reject);
    ck_assert_uint_eq(resp.reject_hint, 4);
    m.log_index = 4; /* index 4 has term 2, not 3: skip the whole term */
    cluster_inject(&C, &m);
    ck_assert(cluster_take(&C, 1, 2, RAFT_MSG_APPEND_RESP, &resp));
    ck_assert(resp.reject);
    ck_assert_uint_eq(resp.index, 4);
    ck_assert_uint_eq(resp.reject_hint, 4);
    ck_assert_uint_eq(resp.hint_term, 2);
    m.log_term = 1;
    m.log_index = 4;
    cluster_inject(&C, &m);
    ck_assert(cluster_take(&C, 1, 2, RAFT_MSG_APPEND_RESP, &resp));
    ck_assert(resp.reject);
    ck_assert_uint_eq(resp.reject_hint, 2);      /* first index of term <= 1 */
    ck_assert_uint_eq(raft_last_index(R(1)), 4); /* nothing truncated */
}
END_TEST

START_TEST(follower_replaces_conflicting_suffix)
{
    struct raft_message m = {0}, resp;
    struct raft_entry e = {0};
    uint64_t v = 99;
    raft_term terms[] = {1, 1, 1};
    cluster_init(&C, 3, 3);
    cluster_set_log(&C, 1, terms, 3, 1);
    cluster_start(&C);
    e.term = 2;
    e.index = 3;
    e.type = RAFT_ENTRY_NORMAL;
    e.data.base = &v;
    e.data.len = sizeof v;
    m.type = RAFT_MSG_APPEND;
    m.from = 2;
    m.to = 1;
    m.term = 2;
    m.log_index = 2;
    m.log_term = 1;
    m.entries = &e;
    m.n_entries = 1;
    cluster_inject(&C, &m);
    ck_assert(cluster_take(&C, 1, 2, RAFT_MSG_APPEND_RESP, &resp));
    ck_assert(!resp.reject);
    ck_assert_uint_eq(resp.index, 3);
    ck_assert_uint_eq(raft_last_index(R(1)), 3);
    ck_assert_uint_eq(cluster_node(&C, 1)->n_log, 3); /* persisted too */
    ck_assert_uint_eq(cluster_node(&C, 1)->log[2].term, 2);
}
END_TEST

/* Figure 7: whatever the follower's log, the leader makes it equal to its
 * own (after the followers' index-1 configuration entry). */
START_TEST(leader_repairs_every_follower_log_of_figure_7)
{
    static const raft_term leader[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
    static const struct
    {
        raft_term t[12];
        unsigned n;
    } f[] = {
        {{1, 1, 1, 4, 4, 5, 5, 6, 6}, 9},
        {{1, 1, 1, 4}, 4},
        {{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6}, 11},
        {{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}, 12},
        {{1, 1, 1, 4, 4, 4, 4}, 7},
        {{1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}, 11},
    };
    unsigned k, i;
    for (k = 0; k < sizeof f / sizeof f[0]; k++) {
        struct test_node *a, *b;
        cluster_init(&C, 3, 3);
        cluster_set_log(&C, 1, leader, 10, 7);
        cluster_set_log(&C, 2, f[k].t, f[k].n, 7);
        cluster_set_log(&C, 3, leader, 10, 7);
        cluster_start(&C);
        ck_assert_msg(cluster_elect(&C, 1), "case %u", k);
        cluster_tick(&C, 1, 1);
        cluster_deliver(&C);
        a = cluster_node(&C, 1);
        b = cluster_node(&C, 2);
        ck_assert_uint_eq(a->n_log, b->n_log);
        for (i = 0; i < a->n_log; i++) {
            ck_assert_uint_eq(a->log[i].index, b->log[i].index);
            ck_assert_msg(a->log[i].term == b->log[i].term, "case %u idx %u", k,
                          i + 1);
        }
        ck_assert_uint_eq(raft_commit_index(R(2)), 12);
        cluster_check_applied(&C);
        cluster_fini(&C);
    }
    cluster_init(&C, 1, 1);
}
END_TEST

/* §5.4.1 ------------------------------------------------------------------ */

START_TEST(voter_rejects_candidate_with_less_up_to_date_log)
{
    static const struct
    {
        raft_index index;
        raft_term term;
        bool reject;
    } cases[] = {
        {3, 2, false}, {4, 2, false}, {2, 2, true},
        {9, 1, true},  {2, 3, false}, {1, 1, true},
    };
    raft_term terms[] = {2, 2}; /* voter: last index 3, last term 2 */
    unsigned k;
    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct raft_message m = {0}, resp;
        cluster_init(&C, 3, 3);
        no_pre_vote(3);
        cluster_set_log(&C, 1, terms, 2, 2);
        cluster_start(&C);
        m.type = RAFT_MSG_VOTE;
        m.from = 2;
        m.to = 1;
        m.term = 5;
        m.log_index = cases[k].index;
        m.log_term = cases[k].term;
        cluster_inject(&C, &m);
        ck_assert(cluster_take(&C, 1, 2, RAFT_MSG_VOTE_RESP, &resp));
        ck_assert_msg(resp.reject == cases[k].reject, "case %u", k);
        cluster_fini(&C);
    }
    cluster_init(&C, 1, 1);
}
END_TEST

/* §5.4.2 ------------------------------------------------------------------ */

START_TEST(leader_does_not_commit_previous_term_entry_by_counting)
{
    raft_term old[] = {2};
    struct raft_message ack = {0};
    cluster_init(&C, 3, 3);
    cluster_set_log(&C, 1, old, 1, 2);
    cluster_set_log(&C, 2, old, 1, 2);
    cluster_start(&C);
    C.drop_type_mask = 1u << RAFT_MSG_APPEND;
    ck_assert(cluster_elect(&C, 1)); /* term 3, no-op at index 3 */
    ck_assert_uint_eq(raft_current_term(R(1)), 3);
    ack.type = RAFT_MSG_APPEND_RESP;
    ack.from = 2;
    ack.to = 1;
    ack.term = 3;
    ack.index = 2; /* a majority (1 and 2) now holds the term-2 entry */
    cluster_inject(&C, &ack);
    ck_assert_uint_eq(raft_commit_index(R(1)), 0);
    ack.index = 3; /* and now the term-3 no-op: both commit */
    cluster_inject(&C, &ack);
    ck_assert_uint_eq(raft_commit_index(R(1)), 3);
}
END_TEST

/* The whole Figure 8 run, indexes shifted by the configuration entry. */
START_TEST(figure_8_entry_on_a_majority_is_not_committed_and_is_overwritten)
{
    struct raft_message m;
    raft_index match = 0;
    unsigned i;
    cluster_init(&C, 5, 5);
    no_pre_vote(5);
    cluster_start(&C);
    /* (a) S1 leads term 2 and replicates index 3 to S2 only. */
    ck_assert(cluster_elect(&C, 1));
    cluster_propose(&C, 1, 33);
    ck_assert(cluster_take(&C, 1, 2, RAFT_MSG_APPEND, &m));
    cluster_drop_all(&C);
    cluster_inject(&C, &m);
    cluster_msg_free(&m);
    cluster_deliver(&C);
    ck_assert_uint_eq(raft_commit_index(R(1)), 2);
    /* (b) S1 crashes; S5 wins term 3 with S3, S4; its entry stays local. */
    cluster_crash(&C, 1);
    C.drop_type_mask = 1u << RAFT_MSG_APPEND;
    ck_assert(cluster_elect(&C, 5));
    ck_assert_uint_eq(raft_current_term(R(5)), 3);
    cluster_crash(&C, 5);
    /* (c) S1 restarts and wins term 4; it brings index 3 to S3, so a
     * majority holds the term-2 entry, but not the term-4 no-op. */
    cluster_restart(&C, 1);
    for (i = 0; i < 3 && raft_state(R(1)) != RAFT_LEADER; i++) {
        cluster_elect(&C, 1);
    }
    ck_assert_int_eq(raft_state(R(1)), RAFT_LEADER);
    ck_assert_uint_eq(raft_current_term(R(1)), 4);
    C.drop_type_mask = 0;
    {
        struct raft_message a = {0};
        struct raft_entry e = cluster_node(&C, 1)->log[2];
        a.type = RAFT_MSG_APPEND;
        a.from = 1;
        a.to = 3;
        a.term = 4;
        a.log_index = 2;
        a.log_term = 2;
        a.entries = &e;
        a.n_entries = 1;
        a.commit = raft_commit_index(R(1));
        cluster_inject(&C, &a);
        a.to = 2;
        cluster_inject(&C, &a);
        /* Deliver only the acks of S2 and S3, nothing S1 sends after. */
        while (cluster_take(&C, 0, 1, RAFT_MSG_APPEND_RESP, &m)) {
            cluster_inject(&C, &m);
            cluster_msg_free(&m);
        }
        cluster_drop_all(&C);
    }
    ck_assert_uint_eq(cluster_node(&C, 3)->log[2].term, 2);
    ck_assert_uint_eq(raft_progress(R(1), 2, &match), 0);
    ck_assert_uint_eq(match, 3);
    ck_assert_uint_eq(raft_progress(R(1), 3, &match), 0);
    ck_assert_uint_eq(match, 3);
    ck_assert_uint_lt(raft_commit_index(R(1)), 3); /* the Figure 8 rule */
    /* (d) S1 crashes; S5 restarts and wins term 5 with S2, S3, S4. */
    cluster_crash(&C, 1);
    cluster_restart(&C, 5);
    for (i = 0; i < 3 && raft_state(R(5)) != RAFT_LEADER; i++) {
        cluster_elect(&C, 5);
    }
    ck_assert_int_eq(raft_state(R(5)), RAFT_LEADER);
    cluster_tick(&C, 5, 1);
    cluster_deliver(&C);
    for (i = 2; i <= 5; i++) {
        ck_assert_uint_eq(cluster_node(&C, i)->log[2].term, 3);
        ck_assert_uint_ne(cluster_node(&C, i)->applied_term[3], 2);
    }
    cluster_check_applied(&C);
}
END_TEST

static Suite *paper_suite(void)
{
    Suite *s = suite_create("raft_paper");
    TCase *t;
    t = tcase_create("terms");
    tcase_add_checked_fixture(t, NULL, teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, servers_start_as_followers);
    tcase_add_test(t, follower_adopts_higher_term_and_leader);
    tcase_add_test(t, candidate_steps_down_on_higher_term);
    tcase_add_test(t, leader_steps_down_on_higher_term);
    tcase_add_test(t, stale_term_message_is_rejected_with_current_term);
    tcase_add_test(t, stale_vote_request_is_answered_with_the_current_term);
    suite_add_tcase(s, t);
    t = tcase_create("election");
    tcase_add_checked_fixture(t, NULL, teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, leader_sends_heartbeats_every_heartbeat_interval);
    tcase_add_test(t, follower_campaigns_after_election_timeout);
    tcase_add_test(t, no_election_before_minimum_timeout);
    tcase_add_test(t, election_outcome_follows_the_vote_count);
    tcase_add_test(t, follower_votes_once_per_term_first_come_first_served);
    tcase_add_test(t, candidate_returns_to_follower_on_append_from_leader);
    tcase_add_test(t, election_timeouts_are_randomized_in_range);
    tcase_add_test(t, split_vote_is_resolved_by_a_later_election);
    suite_add_tcase(s, t);
    t = tcase_create("replication");
    tcase_add_checked_fixture(t, NULL, teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, leader_replicates_a_proposal_then_commits_and_applies);
    tcase_add_test(t, leader_commits_only_once_a_majority_holds_the_entry);
    tcase_add_test(t, new_leader_commits_preceding_entries_with_its_noop);
    tcase_add_test(t, follower_rejects_append_that_does_not_match_its_log);
    tcase_add_test(t, follower_replaces_conflicting_suffix);
    tcase_add_test(t, leader_repairs_every_follower_log_of_figure_7);
    suite_add_tcase(s, t);
    t = tcase_create("safety");
    tcase_add_checked_fixture(t, NULL, teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, voter_rejects_candidate_with_less_up_to_date_log);
    tcase_add_test(t, leader_does_not_commit_previous_term_entry_by_counting);
    tcase_add_test(
        t, figure_8_entry_on_a_majority_is_not_committed_and_is_overwritten);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(paper_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
