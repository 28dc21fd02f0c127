/* Tests of the core's features beyond the basic paper claims, modelled on
 * etcd-io/raft's raft_test.go: pre-vote, check-quorum and the leader lease,
 * learners and membership changes (promotion, removal of the leader, one at
 * a time, roll-back), leadership transfer, batched ReadIndex, forwarding,
 * flow control, snapshots in chunks and compaction, restart from persisted
 * state, and malformed input. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>

#include "cluster.h"

static struct test_cluster C;

static struct raft *R(raft_id id)
{
    return &cluster_node(&C, id)->raft;
}

static struct test_node *N(raft_id id)
{
    return cluster_node(&C, id);
}

static void teardown(void)
{
    cluster_fini(&C);
}

/* Tick everyone and deliver, @n times. */
static void run(unsigned n)
{
    while (n-- > 0) {
        cluster_tick_all(&C, 1);
        cluster_deliver(&C);
    }
}

static unsigned count_sent(raft_id from, raft_id to, enum raft_msg_type type)
{
    unsigned i, n = 0;
    for (i = 0; i < C.qn; i++) {
        n += C.q[i].from == from && C.q[i].to == to && C.q[i].type == type;
    }
    return n;
}

static void start3(void)
{
    cluster_init(&C, 3, 3);
    cluster_start(&C);
    ck_assert(cluster_elect(&C, 1));
    run(1);
}

/* Pre-vote and check-quorum ------------------------------------------------ */

START_TEST(prevote_keeps_a_rejoining_partitioned_node_from_disrupting)
{
    raft_term term;
    start3();
    term = raft_current_term(R(1));
    cluster_isolate(&C, 3);
    run(100);
    /* It kept asking for pre-votes, but its term never moved. */
    ck_assert_int_ne(raft_state(R(3)), RAFT_LEADER);
    ck_assert_uint_eq(raft_current_term(R(3)), term);
    cluster_heal(&C);
    run(30);
    ck_assert_uint_eq(cluster_leader(&C), 1);
    ck_assert_uint_eq(raft_current_term(R(1)), term);
    ck_assert_uint_eq(raft_leader(R(3)), 1);
}
END_TEST

START_TEST(without_prevote_a_rejoining_node_forces_a_new_term)
{
    raft_term term;
    unsigned i;
    cluster_init(&C, 3, 3);
    for (i = 1; i <= 3; i++) {
        N(i)->cfg.pre_vote = false;
    }
    cluster_start(&C);
    ck_assert(cluster_elect(&C, 1));
    term = raft_current_term(R(1));
    cluster_isolate(&C, 3);
    run(100);
    ck_assert_uint_gt(raft_current_term(R(3)), term);
    cluster_heal(&C);
    run(60);
    ck_assert_uint_gt(raft_current_term(R(cluster_leader(&C))), term);
}
END_TEST

START_TEST(leader_without_quorum_contact_steps_down)
{
    start3();
    cluster_isolate(&C, 1);
    cluster_tick(&C, 1, 10);
    cluster_tick(&C, 1, 10);
    ck_assert_int_eq(raft_state(R(1)), RAFT_FOLLOWER);
}
END_TEST

START_TEST(leader_with_quorum_contact_stays)
{
    start3();
    cluster_cut(&C, 1, 3);
    run(50);
    ck_assert_int_eq(raft_state(R(1)), RAFT_LEADER);
}
END_TEST

START_TEST(follower_in_lease_ignores_higher_term_vote_requests)
{
    struct raft_message m = {0};
    raft_term term;
    start3();
    term = raft_current_term(R(2));
    m.type = RAFT_MSG_VOTE;
    m.from = 3;
    m.to = 2;
    m.term = term + 5;
    m.log_index = 100;
    m.log_term = term + 4;
    cluster_drop_all(&C);
    cluster_inject(&C, &m);
    ck_assert_uint_eq(raft_current_term(R(2)), term);
    ck_assert_uint_eq(C.qn, 0);
    m.transfer = true; /* a transfer target is not disruptive */
    cluster_inject(&C, &m);
    ck_assert_uint_eq(raft_current_term(R(2)), term + 5);
}
END_TEST

/* Membership ----------------------------------------------------------------
 */

static void add_learner_4(void)
{
    cluster_init(&C, 4, 3);
    cluster_start(&C);
    ck_assert(cluster_elect(&C, 1));
    run(1);
    cluster_conf_change(&C, 1, RAFT_CONF_ADD_LEARNER, 4);
    ck_assert_int_eq(N(1)->props[N(1)->n_props - 1].rv, 0);
    run(5);
}

START_TEST(learner_catches_up_but_never_votes_nor_campaigns)
{
    struct raft_message m = {0};
    unsigned i = 0, sent_votes;
    add_learner_4();
    sent_votes =
        C.sent_by_type[RAFT_MSG_PREVOTE] + C.sent_by_type[RAFT_MSG_VOTE];
    ck_assert_uint_eq(raft_last_index(R(4)), raft_last_index(R(1)));
    ck_assert_uint_eq(N(4)->applied, raft_commit_index(R(1)));
    ck_assert_uint_eq(raft_configuration_get(raft_configuration(R(4)), 4)->role,
                      RAFT_LEARNER);
    cluster_isolate(&C, 4);
    cluster_tick(&C, 4, 100);
    ck_assert_int_eq(raft_state(R(4)), RAFT_FOLLOWER);
    ck_assert_uint_eq(count_sent(4, 1, RAFT_MSG_PREVOTE), 0);
    ck_assert_uint_eq(
        C.sent_by_type[RAFT_MSG_PREVOTE] + C.sent_by_type[RAFT_MSG_VOTE],
        sent_votes);
    cluster_heal(&C);
    /* A grant from the learner is not counted: 2 with its own vote and the
     * learner's is still a candidate of a 3-voter cluster. */
    cluster_isolate(&C, 1);
    cluster_cut(&C, 2, 3);
    cluster_tick(&C, 2, 30);
    ck_assert_int_eq(raft_state(R(2)), RAFT_PRE_CANDIDATE);
    m.type = RAFT_MSG_PREVOTE_RESP;
    m.from = 4;
    m.to = 2;
    m.term = raft_current_term(R(2)) + 1;
    cluster_inject(&C, &m);
    ck_assert_int_eq(raft_state(R(2)), RAFT_PRE_CANDIDATE);
    cluster_heal(&C);
    m.from = 3; /* a voter's grant makes the quorum */
    cluster_inject(&C, &m);
    ck_assert_int_eq(raft_state(R(2)), RAFT_CANDIDATE);
    (void)i;
}
END_TEST

START_TEST(learner_acks_do_not_count_towards_commit)
{
    raft_index commit;
    add_learner_4();
    cluster_cut(&C, 1, 2);
    cluster_cut(&C, 1, 3);
    commit = raft_commit_index(R(1));
    cluster_propose(&C, 1, 5);
    cluster_deliver(&C);
    ck_assert_uint_eq(raft_last_index(R(4)), raft_last_index(R(1)));
    ck_assert_uint_eq(raft_commit_index(R(1)), commit);
}
END_TEST

START_TEST(promoted_learner_votes_and_counts)
{
    add_learner_4();
    cluster_conf_change(&C, 1, RAFT_CONF_PROMOTE, 4);
    ck_assert_int_eq(N(1)->props[N(1)->n_props - 1].rv, 0);
    run(3);
    ck_assert_uint_eq(raft_configuration_get(raft_configuration(R(2)), 4)->role,
                      RAFT_VOTER);
    /* With 4 voters, 1 + 4 alone are not a quorum; 1 + 3 + 4 are. */
    cluster_cut(&C, 1, 2);
    cluster_cut(&C, 1, 3);
    cluster_propose(&C, 1, 6);
    cluster_deliver(&C);
    ck_assert_uint_lt(raft_commit_index(R(1)), raft_last_index(R(1)));
    cluster_heal(&C);
    cluster_cut(&C, 1, 2);
    run(2);
    ck_assert_uint_eq(raft_commit_index(R(1)), raft_last_index(R(1)));
}
END_TEST

START_TEST(second_change_is_refused_until_the_first_commits)
{
    cluster_init(&C, 4, 3);
    cluster_start(&C);
    ck_assert(cluster_elect(&C, 1));
    run(1);
    cluster_isolate(&C, 1);
    cluster_conf_change(&C, 1, RAFT_CONF_ADD_LEARNER, 4);
    ck_assert_int_eq(N(1)->props[N(1)->n_props - 1].rv, 0);
    cluster_conf_change(&C, 1, RAFT_CONF_REMOVE, 3);
    ck_assert_int_eq(N(1)->props[N(1)->n_props - 1].rv, GOULETTE_ECONFCHANGE);
    cluster_heal(&C);
    run(2);
    cluster_conf_change(&C, 1, RAFT_CONF_REMOVE, 3);
    ck_assert_int_eq(N(1)->props[N(1)->n_props - 1].rv, 0);
}
END_TEST

START_TEST(configuration_takes_effect_when_appended_and_rolls_back)
{
    struct raft_message m;
    start3();
    /* The change reaches follower 2 only; 1 then loses leadership. */
    cluster_drop_all(&C);
    cluster_conf_change(&C, 1, RAFT_CONF_REMOVE, 3);
    ck_assert_uint_eq(raft_configuration(R(1))->n, 2); /* on append */
    ck_assert(cluster_take(&C, 1, 2, RAFT_MSG_APPEND, &m));
    cluster_drop_all(&C);
    cluster_inject(&C, &m);
    cluster_msg_free(&m);
    cluster_drop_all(&C);
    ck_assert_uint_eq(raft_configuration(R(2))->n, 2);
    /* 3 leads a new term without that entry (1 and 2 voting for it would
     * need it; give 3 a vote from 1 by crashing 2 and letting 1 follow). */
    cluster_crash(&C, 2);
    cluster_isolate(&C, 1);
    cluster_tick(&C, 1, 25);
    cluster_heal(&C);
    cluster_crash(&C, 1);
    cluster_restart(&C, 1);
    /* 1 restarts with the entry in its log: roll back by truncation below
     * needs a leader without it, so make 3 leader with votes of 1 and 3? 1
     * has a longer log and would refuse; instead truncate via a direct
     * append from a fake higher-term leader 3 that lacks the entry. */
    {
        struct raft_message a = {0};
        a.type = RAFT_MSG_APPEND;
        a.from = 3;
        a.to = 1;
        a.term = raft_current_term(R(1)) + 1;
        a.log_index = 2;
        a.log_term = 2;
        a.commit = 2;
        {
            struct raft_entry e = {0};
            e.index = 3;
            e.term = a.term;
            e.type = RAFT_ENTRY_BARRIER;
            a.entries = &e;
            a.n_entries = 1;
            cluster_inject(&C, &a);
        }
    }
    ck_assert_uint_eq(raft_configuration(R(1))->n, 3); /* rolled back */
    ck_assert_ptr_nonnull(raft_configuration_get(raft_configuration(R(1)), 3));
}
END_TEST

START_TEST(removed_leader_leads_until_removal_commits_then_steps_down)
{
    unsigned i;
    raft_id leader;
    start3();
    cluster_drop_all(&C);
    cluster_conf_change(&C, 1, RAFT_CONF_REMOVE, 1);
    ck_assert_int_eq(N(1)->props[N(1)->n_props - 1].rv, 0);
    ck_assert_int_eq(raft_state(R(1)), RAFT_LEADER); /* not committed yet */
    cluster_deliver(&C);
    ck_assert_int_eq(raft_state(R(1)), RAFT_FOLLOWER);
    for (i = 0; i < 50 && cluster_leader(&C) == 0; i++) {
        run(1);
    }
    leader = cluster_leader(&C);
    ck_assert(leader == 2 || leader == 3);
    ck_assert_ptr_null(
        raft_configuration_get(raft_configuration(R(leader)), 1));
    /* The removed server never campaigns again. */
    run(50);
    ck_assert_int_ne(raft_state(R(1)), RAFT_LEADER);
    ck_assert_int_ne(raft_state(R(1)), RAFT_CANDIDATE);
    cluster_propose(&C, leader, 77);
    run(2);
    ck_assert_uint_eq(raft_commit_index(R(leader)), raft_last_index(R(leader)));
}
END_TEST

/* Leadership transfer -------------------------------------------------------
 */

static int transfer(raft_id leader, raft_id to)
{
    struct raft_event ev = {.type = RAFT_EVENT_TRANSFER};
    ev.transfer.to = to;
    return cluster_step(&C, leader, &ev);
}

START_TEST(transfer_hands_leadership_to_the_target)
{
    start3();
    ck_assert_int_eq(transfer(1, 2), 0);
    cluster_deliver(&C);
    ck_assert_uint_eq(cluster_leader(&C), 2);
    ck_assert_int_eq(raft_state(R(1)), RAFT_FOLLOWER);
}
END_TEST

START_TEST(transfer_to_a_lagging_target_catches_it_up_first)
{
    start3();
    cluster_isolate(&C, 3);
    cluster_propose(&C, 1, 1);
    cluster_propose(&C, 1, 2);
    run(1);
    cluster_heal(&C);
    ck_assert_int_eq(transfer(1, 3), 0);
    ck_assert_int_eq(cluster_propose(&C, 1, 3), GOULETTE_ETRANSFER);
    cluster_deliver(&C);
    ck_assert_uint_eq(cluster_leader(&C), 3);
    cluster_check_applied(&C);
}
END_TEST

START_TEST(transfer_aborts_after_an_election_timeout)
{
    start3();
    cluster_isolate(&C, 2);
    ck_assert_int_eq(transfer(1, 2), 0);
    ck_assert_int_eq(transfer(1, 3), GOULETTE_ETRANSFER);
    ck_assert_int_eq(cluster_propose(&C, 1, 3), GOULETTE_ETRANSFER);
    cluster_tick(&C, 1, 10);
    ck_assert_int_eq(raft_state(R(1)), RAFT_LEADER);
    ck_assert_int_eq(cluster_propose(&C, 1, 4), 0);
}
END_TEST

START_TEST(transfer_errors)
{
    start3();
    ck_assert_int_eq(transfer(2, 3), GOULETTE_ENOTLEADER);
    ck_assert_int_eq(transfer(1, 1), GOULETTE_ENOTFOUND);
    ck_assert_int_eq(transfer(1, 9), GOULETTE_ENOTFOUND);
    ck_assert_int_eq(transfer(1, 0), 0); /* picks the best voter */
    cluster_deliver(&C);
    ck_assert(cluster_leader(&C) == 2 || cluster_leader(&C) == 3);
}
END_TEST

/* ReadIndex -----------------------------------------------------------------
 */

START_TEST(reads_are_batched_into_one_heartbeat_round)
{
    unsigned i, beats;
    start3();
    cluster_drop_all(&C);
    memset(C.sent_by_type, 0, sizeof C.sent_by_type);
    for (i = 0; i < 20; i++) {
        cluster_read(&C, 1, 100 + i);
    }
    ck_assert_uint_eq(N(1)->n_reads, 0); /* not before the round */
    beats = C.sent_by_type[RAFT_MSG_HEARTBEAT];
    ck_assert_uint_eq(beats, 2); /* one round, to 2 followers */
    cluster_deliver(&C);
    ck_assert_uint_eq(N(1)->n_reads, 20);
    for (i = 0; i < 20; i++) {
        ck_assert_int_eq(N(1)->reads[i].rv, 0);
        ck_assert_uint_eq(N(1)->reads[i].context, 100 + i);
        ck_assert_uint_eq(N(1)->reads[i].index, raft_commit_index(R(1)));
    }
    /* Reads that came while round 1 was out waited for round 2: twenty
     * reads, two rounds. */
    ck_assert_uint_le(C.sent_by_type[RAFT_MSG_HEARTBEAT], 4);
}
END_TEST

START_TEST(read_needs_a_quorum_of_acknowledgements)
{
    struct raft_message m;
    start3();
    cluster_drop_all(&C);
    cluster_read(&C, 1, 7);
    ck_assert(cluster_take(&C, 1, 2, RAFT_MSG_HEARTBEAT, &m));
    cluster_drop_all(&C);
    ck_assert_uint_eq(N(1)->n_reads, 0);
    cluster_inject(&C, &m);
    cluster_msg_free(&m);
    cluster_deliver(&C); /* 2's ack: with the leader, a quorum */
    ck_assert_uint_eq(N(1)->n_reads, 1);
}
END_TEST

START_TEST(deposed_leader_never_answers_a_read)
{
    unsigned i;
    start3();
    cluster_isolate(&C, 1);
    cluster_read(&C, 1, 9);
    run(40);
    ck_assert(cluster_leader(&C) == 2 || cluster_leader(&C) == 3);
    cluster_propose(&C, cluster_leader(&C), 1);
    run(2);
    cluster_heal(&C);
    run(5);
    for (i = 0; i < N(1)->n_reads; i++) {
        ck_assert_int_ne(N(1)->reads[i].rv, 0);
    }
    ck_assert_uint_eq(N(1)->n_reads, 1);
    ck_assert_int_eq(N(1)->reads[0].rv, GOULETTE_ENOTLEADER);
}
END_TEST

START_TEST(new_leader_answers_reads_only_after_committing_in_its_term)
{
    cluster_init(&C, 3, 3);
    cluster_start(&C);
    C.drop_type_mask = 1u << RAFT_MSG_APPEND;
    ck_assert(cluster_elect(&C, 1));
    cluster_read(&C, 1, 5);
    run(3);
    ck_assert_uint_eq(N(1)->n_reads, 0);
    C.drop_type_mask = 0;
    run(3);
    ck_assert_uint_eq(N(1)->n_reads, 1);
    ck_assert_int_eq(N(1)->reads[0].rv, 0);
    ck_assert_uint_eq(N(1)->reads[0].index, 2);
}
END_TEST

START_TEST(single_voter_answers_reads_at_once)
{
    cluster_init(&C, 1, 1);
    cluster_start(&C);
    ck_assert(cluster_elect(&C, 1));
    cluster_read(&C, 1, 1);
    ck_assert_uint_eq(N(1)->n_reads, 1);
    ck_assert_int_eq(N(1)->reads[0].rv, 0);
}
END_TEST

START_TEST(follower_read_is_forwarded_to_the_leader)
{
    start3();
    cluster_propose(&C, 1, 11);
    run(1);
    cluster_read(&C, 2, 55);
    ck_assert_uint_eq(count_sent(2, 1, RAFT_MSG_READ_INDEX), 1);
    cluster_deliver(&C);
    ck_assert_uint_eq(N(2)->n_reads, 1);
    ck_assert_int_eq(N(2)->reads[0].rv, 0);
    ck_assert_uint_eq(N(2)->reads[0].context, 55);
    ck_assert_uint_eq(N(2)->reads[0].index, raft_commit_index(R(1)));
}
END_TEST

/* Proposals -----------------------------------------------------------------
 */

START_TEST(proposal_without_leader_fails_at_once)
{
    cluster_init(&C, 3, 3);
    cluster_start(&C);
    ck_assert_int_eq(cluster_propose(&C, 2, 1), GOULETTE_ENOLEADER);
    cluster_read(&C, 2, 1);
    ck_assert_int_eq(N(2)->reads[0].rv, GOULETTE_ENOLEADER);
}
END_TEST

START_TEST(follower_forwards_proposals_to_the_leader)
{
    unsigned i;
    start3();
    ck_assert_int_eq(cluster_propose(&C, 3, 123), 1); /* pending */
    ck_assert_uint_eq(count_sent(3, 1, RAFT_MSG_PROPOSE), 1);
    cluster_deliver(&C);
    run(1);
    ck_assert_uint_eq(N(3)->n_props, 1);
    ck_assert_int_eq(N(3)->props[0].rv, 0);
    ck_assert_uint_eq(N(3)->props[0].context, 123);
    ck_assert_uint_eq(N(3)->props[0].term, raft_current_term(R(1)));
    for (i = 1; i <= 3; i++) {
        ck_assert_uint_eq(N(i)->applied, N(3)->props[0].index);
        ck_assert_uint_eq(N(i)->sm_count, 1);
    }
}
END_TEST

START_TEST(uncommitted_bytes_are_bounded)
{
    unsigned i;
    int rv = 0;
    cluster_init(&C, 3, 3);
    for (i = 1; i <= 3; i++) {
        N(i)->cfg.max_uncommitted_bytes = 64;
    }
    cluster_start(&C);
    ck_assert(cluster_elect(&C, 1));
    run(1);
    cluster_isolate(&C, 1);
    for (i = 0; i < 20 && rv == 0; i++) {
        rv = cluster_propose(&C, 1, i);
    }
    ck_assert_int_eq(rv, -ENOBUFS);
    ck_assert_uint_eq(i, 9); /* 8 entries of 8 bytes fit */
}
END_TEST

/* Flow control --------------------------------------------------------------
 */

START_TEST(appends_in_flight_are_bounded_by_count)
{
    unsigned i;
    cluster_init(&C, 3, 3);
    for (i = 1; i <= 3; i++) {
        N(i)->cfg.max_inflight = 3;
    }
    cluster_start(&C);
    ck_assert(cluster_elect(&C, 1));
    run(1);
    cluster_drop_all(&C);
    C.drop_type_mask = 1u << RAFT_MSG_APPEND_RESP; /* acks lost */
    memset(C.sent_by_type, 0, sizeof C.sent_by_type);
    for (i = 0; i < 10; i++) {
        cluster_propose(&C, 1, i);
    }
    ck_assert_uint_eq(count_sent(1, 2, RAFT_MSG_APPEND), 3);
    ck_assert_uint_eq(count_sent(1, 3, RAFT_MSG_APPEND), 3);
    C.drop_type_mask = 0;
    run(5);
    ck_assert_uint_eq(raft_commit_index(R(1)), raft_last_index(R(1)));
    ck_assert_uint_eq(N(2)->applied, raft_last_index(R(1)));
}
END_TEST

START_TEST(appends_in_flight_are_bounded_by_bytes)
{
    unsigned i;
    cluster_init(&C, 3, 3);
    for (i = 1; i <= 3; i++) {
        N(i)->cfg.max_inflight_bytes = 20; /* 8-byte entries: 3 appends */
        N(i)->cfg.max_append_bytes = 8;
    }
    cluster_start(&C);
    ck_assert(cluster_elect(&C, 1));
    run(1);
    cluster_drop_all(&C);
    C.drop_type_mask = 1u << RAFT_MSG_APPEND_RESP;
    for (i = 0; i < 10; i++) {
        cluster_propose(&C, 1, i);
    }
    ck_assert_uint_eq(count_sent(1, 2, RAFT_MSG_APPEND), 3);
    C.drop_type_mask = 0;
    run(8);
    ck_assert_uint_eq(N(3)->applied, raft_last_index(R(1)));
}
END_TEST

START_TEST(append_messages_respect_max_append_bytes)
{
    unsigned i;
    cluster_init(&C, 3, 3);
    for (i = 1; i <= 3; i++) {
        N(i)->cfg.max_append_bytes = 32;
    }
    cluster_start(&C);
    ck_assert(cluster_elect(&C, 1));
    run(1);
    cluster_isolate(&C, 3);
    for (i = 0; i < 40; i++) {
        cluster_propose(&C, 1, i);
    }
    run(1);
    cluster_heal(&C);
    run(20);
    ck_assert_uint_le(N(1)->max_entries_per_append, 4);
    ck_assert_uint_eq(N(3)->applied, raft_last_index(R(1)));
}
END_TEST

/* Snapshots ------------------------------------------------------------------
 */

START_TEST(lagging_follower_receives_snapshot_in_chunks)
{
    unsigned i;
    cluster_init(&C, 3, 3);
    for (i = 1; i <= 3; i++) {
        N(i)->cfg.snapshot_chunk_bytes = 100;
        N(i)->cfg.max_inflight_bytes = 250; /* window: 3 chunks */
    }
    C.snapshot_size = 1000;
    cluster_start(&C);
    ck_assert(cluster_elect(&C, 1));
    run(1);
    cluster_crash(&C, 3);
    for (i = 0; i < 30; i++) {
        cluster_propose(&C, 1, i);
    }
    run(2);
    ck_assert_int_eq(cluster_snapshot(&C, 1, 0), 0);
    cluster_restart(&C, 3);
    run(10);
    ck_assert_uint_eq(N(3)->n_snapshot_installs, 1);
    ck_assert_uint_eq(N(3)->n_chunks, 10);
    ck_assert_uint_eq(N(3)->sm_count, N(1)->sm_count);
    ck_assert_uint_eq(N(3)->sm_hash, N(1)->sm_hash);
    cluster_propose(&C, 1, 1000);
    run(2);
    ck_assert_uint_eq(N(3)->applied, raft_last_index(R(1)));
    ck_assert_uint_eq(N(3)->sm_hash, N(1)->sm_hash);
    /* The installed snapshot and log survive a restart of 3. */
    cluster_crash(&C, 3);
    cluster_restart(&C, 3);
    ck_assert_uint_eq(N(3)->sm_hash, N(1)->sm_hash);
}
END_TEST

START_TEST(lost_snapshot_chunk_is_resent_from_the_follower_offset)
{
    struct raft_message m;
    unsigned i, k;
    cluster_init(&C, 3, 3);
    for (i = 1; i <= 3; i++) {
        N(i)->cfg.snapshot_chunk_bytes = 100;
        N(i)->cfg.max_inflight_bytes = 1000;
    }
    C.snapshot_size = 500;
    cluster_start(&C);
    ck_assert(cluster_elect(&C, 1));
    run(1);
    cluster_crash(&C, 3);
    for (i = 0; i < 5; i++) {
        cluster_propose(&C, 1, i);
    }
    run(2);
    ck_assert_int_eq(cluster_snapshot(&C, 1, 0), 0);
    cluster_restart(&C, 3);
    /* Let heartbeats make the leader probe 3 until the chunks go out. */
    for (k = 0; k < 500; k++) {
        if (cluster_take(&C, 1, 3, RAFT_MSG_SNAPSHOT, &m)) {
            break;
        }
        if (!cluster_deliver_one(&C)) {
            cluster_tick(&C, 1, 1);
        }
    }
    ck_assert_uint_lt(k, 500);
    ck_assert_uint_eq(m.snapshot.offset, 0);
    ck_assert_uint_eq(count_sent(1, 3, RAFT_MSG_SNAPSHOT), 4); /* window */
    cluster_msg_free(&m); /* chunk 0 lost: the rest is rejected */
    cluster_deliver(&C);
    run(3);
    ck_assert_uint_eq(N(3)->n_snapshot_installs, 1);
    ck_assert_uint_eq(N(3)->sm_hash, N(1)->sm_hash);
    cluster_check_applied(&C);
}
END_TEST

START_TEST(snapshot_compacts_the_log_keeping_trailing_entries)
{
    struct raft_event ev = {.type = RAFT_EVENT_SNAPSHOT};
    unsigned i;
    start3();
    for (i = 0; i < 20; i++) {
        cluster_propose(&C, 1, i);
    }
    run(2);
    ck_assert_uint_eq(N(1)->applied, 22);
    ck_assert_int_eq(cluster_snapshot(&C, 1, 5), 0);
    ck_assert_uint_eq(N(1)->log[0].index, 18); /* 22 - 5 + 1 */
    ev.snapshot.index = 22;                    /* not newer */
    ck_assert_int_eq(cluster_step(&C, 1, &ev), -EINVAL);
    ev.snapshot.index = 23; /* not applied */
    ck_assert_int_eq(cluster_step(&C, 1, &ev), -EINVAL);
    /* A follower 5 entries behind is served from the log, not the
     * snapshot; one further behind gets the snapshot. */
    cluster_isolate(&C, 3);
    cluster_propose(&C, 1, 100);
    run(2);
    cluster_heal(&C);
    run(3);
    ck_assert_uint_eq(N(3)->n_snapshot_installs, 0);
    ck_assert_uint_eq(N(3)->applied, raft_last_index(R(1)));
}
END_TEST

/* Restart ---------------------------------------------------------------------
 */

START_TEST(cluster_restarts_from_persisted_state)
{
    unsigned i;
    raft_term term;
    start3();
    for (i = 0; i < 10; i++) {
        cluster_propose(&C, 1, i);
    }
    run(2);
    term = raft_current_term(R(1));
    ck_assert_int_eq(cluster_snapshot(&C, 2, 2), 0);
    for (i = 1; i <= 3; i++) {
        cluster_crash(&C, i);
    }
    for (i = 1; i <= 3; i++) {
        cluster_restart(&C, i);
        ck_assert_uint_eq(raft_current_term(R(i)), term);
        ck_assert_uint_eq(raft_last_index(R(i)), 12);
    }
    ck_assert_uint_eq(N(2)->applied, 12); /* from its snapshot + commit */
    for (i = 0; i < 100 && cluster_leader(&C) == 0; i++) {
        run(1);
    }
    ck_assert_uint_ne(cluster_leader(&C), 0);
    run(2);
    for (i = 1; i <= 3; i++) {
        ck_assert_uint_eq(N(i)->sm_hash, N(2)->sm_hash);
        ck_assert_uint_eq(N(i)->sm_count, 10);
    }
}
END_TEST

START_TEST(vote_survives_a_restart)
{
    struct raft_message m = {0}, resp;
    cluster_init(&C, 3, 3);
    cluster_start(&C);
    m.type = RAFT_MSG_VOTE;
    m.from = 2;
    m.to = 1;
    m.term = 2;
    m.log_index = 1;
    m.log_term = 1;
    cluster_inject(&C, &m);
    cluster_crash(&C, 1);
    cluster_restart(&C, 1);
    m.from = 3;
    cluster_inject(&C, &m);
    ck_assert(cluster_take(&C, 1, 3, RAFT_MSG_VOTE_RESP, &resp));
    ck_assert(resp.reject);
}
END_TEST

/* Untrusted input ---------------------------------------------------------- */

START_TEST(malformed_messages_are_dropped)
{
    struct raft_message m = {0};
    struct raft_entry e[2] = {{0}};
    uint8_t data[4] = {0};
    raft_index last;
    raft_term term;
    start3();
    cluster_drop_all(&C);
    last = raft_last_index(R(2));
    term = raft_current_term(R(2));
    m.from = 1;
    m.to = 2;
    m.term = term;
    m.type = 99; /* unknown type */
    cluster_inject(&C, &m);
    m.type = RAFT_MSG_APPEND; /* non-consecutive indexes */
    m.log_index = last;
    m.log_term = term;
    e[0].index = last + 1;
    e[0].term = term;
    e[0].type = RAFT_ENTRY_NORMAL;
    e[1] = e[0];
    e[1].index = last + 3;
    m.entries = e;
    m.n_entries = 2;
    cluster_inject(&C, &m);
    e[1].index = last + 2; /* term above the message's */
    e[1].term = term + 1;
    cluster_inject(&C, &m);
    m.n_entries = 0;
    m.entries = NULL;
    m.type = RAFT_MSG_SNAPSHOT; /* chunk past its size */
    m.snapshot.index = 100;
    m.snapshot.term = term;
    m.snapshot.size = 10;
    m.snapshot.offset = 8;
    m.snapshot.data.base = data;
    m.snapshot.data.len = 4;
    cluster_inject(&C, &m);
    m.snapshot.offset = 6; /* last chunk with an undecodable conf */
    m.snapshot.last = true;
    m.snapshot.conf.base = data;
    m.snapshot.conf.len = 4;
    cluster_inject(&C, &m);
    m.type = RAFT_MSG_HEARTBEAT; /* term 0 */
    m.term = 0;
    cluster_inject(&C, &m);
    m.term = term; /* from a sender claiming to be the recipient */
    m.from = 2;
    cluster_inject(&C, &m);
    ck_assert_uint_eq(C.qn, 0); /* no answer to any */
    m.from = 3; /* a forwarded request carries no term that counts */
    m.type = RAFT_MSG_READ_INDEX_RESP;
    m.term = term + 10;
    cluster_inject(&C, &m);
    ck_assert_uint_eq(raft_last_index(R(2)), last);
    ck_assert_uint_eq(raft_current_term(R(2)), term);
    ck_assert_uint_eq(N(2)->n_snapshot_installs + N(2)->n_chunks, 0);
}
END_TEST

START_TEST(events_before_start_are_invalid)
{
    struct raft r;
    struct raft_config cfg;
    struct raft_event ev = {.type = RAFT_EVENT_TICK};
    struct raft_update u;
    raft_config_defaults(&cfg);
    ck_assert_int_eq(raft_init(&r, &cfg), -EINVAL); /* id 0 */
    cfg.id = 1;
    cfg.heartbeat_ticks = cfg.election_ticks;
    ck_assert_int_eq(raft_init(&r, &cfg), -EINVAL);
    cfg.heartbeat_ticks = 1;
    ck_assert_int_eq(raft_init(&r, &cfg), 0);
    ck_assert_int_eq(raft_step(&r, &ev, &u), -EINVAL);
    ck_assert_uint_eq(u.n_messages, 0);
    raft_fini(&r);
    cluster_init(&C, 1, 1);
}
END_TEST

START_TEST(leader_ignores_disruptive_vote_requests_while_in_lease)
{
    struct raft_message m = {0};
    raft_term term;
    start3();
    term = raft_current_term(R(1));
    m.type = RAFT_MSG_VOTE;
    m.from = 3;
    m.to = 1;
    m.term = term + 1;
    m.log_index = 100;
    m.log_term = term;
    cluster_drop_all(&C);
    cluster_inject(&C, &m);
    ck_assert_int_eq(raft_state(R(1)), RAFT_LEADER);
    ck_assert_uint_eq(raft_current_term(R(1)), term);
}
END_TEST

static int last_result(raft_id id)
{
    ck_assert_uint_gt(N(id)->n_props, 0);
    return N(id)->props[N(id)->n_props - 1].rv;
}

START_TEST(invalid_membership_changes_are_refused)
{
    cluster_init(&C, 4, 3);
    cluster_start(&C);
    cluster_conf_change(&C, 1, RAFT_CONF_ADD_LEARNER, 4);
    ck_assert_int_eq(last_result(1), GOULETTE_ENOLEADER);
    ck_assert(cluster_elect(&C, 1));
    cluster_conf_change(&C, 2, RAFT_CONF_ADD_LEARNER, 4);
    ck_assert_int_eq(last_result(2), GOULETTE_ENOTLEADER);
    run(1);
    cluster_conf_change(&C, 1, RAFT_CONF_ADD_LEARNER, 2);
    ck_assert_int_eq(last_result(1), -EEXIST);
    cluster_conf_change(&C, 1, RAFT_CONF_PROMOTE, 2);
    ck_assert_int_eq(last_result(1), -EINVAL);
    cluster_conf_change(&C, 1, RAFT_CONF_PROMOTE, 4);
    ck_assert_int_eq(last_result(1), GOULETTE_ENOTFOUND);
    cluster_conf_change(&C, 1, RAFT_CONF_REMOVE, 4);
    ck_assert_int_eq(last_result(1), GOULETTE_ENOTFOUND);
    ck_assert_uint_eq(raft_configuration(R(1))->n, 3);
}
END_TEST

START_TEST(new_leader_takes_no_change_before_its_noop_commits)
{
    cluster_init(&C, 4, 3);
    cluster_start(&C);
    C.drop_type_mask = 1u << RAFT_MSG_APPEND;
    ck_assert(cluster_elect(&C, 1));
    cluster_conf_change(&C, 1, RAFT_CONF_ADD_LEARNER, 4);
    ck_assert_int_eq(last_result(1), GOULETTE_ECONFCHANGE);
    C.drop_type_mask = 0;
    run(2);
    cluster_conf_change(&C, 1, RAFT_CONF_ADD_LEARNER, 4);
    ck_assert_int_eq(last_result(1), 0);
}
END_TEST

START_TEST(joining_server_catches_up_from_a_snapshot)
{
    unsigned i;
    cluster_init(&C, 4, 3);
    for (i = 1; i <= 4; i++) {
        N(i)->cfg.snapshot_chunk_bytes = 256;
    }
    cluster_start(&C);
    ck_assert(cluster_elect(&C, 1));
    for (i = 0; i < 30; i++) {
        cluster_propose(&C, 1, i);
    }
    run(2);
    ck_assert_int_eq(cluster_snapshot(&C, 1, 3), 0);
    cluster_conf_change(&C, 1, RAFT_CONF_ADD_LEARNER, 4);
    ck_assert_int_eq(last_result(1), 0);
    run(5);
    ck_assert_uint_eq(N(4)->n_snapshot_installs, 1);
    ck_assert_uint_eq(N(4)->n_chunks, 4); /* 1000 bytes in 256-byte chunks */
    ck_assert_uint_eq(N(4)->applied, raft_last_index(R(1)));
    ck_assert_uint_eq(N(4)->sm_hash, N(1)->sm_hash);
    ck_assert_uint_eq(raft_configuration(R(4))->n, 4);
}
END_TEST

START_TEST(unreachable_follower_is_probed_again)
{
    struct raft_event ev = {.type = RAFT_EVENT_UNREACHABLE};
    start3();
    cluster_isolate(&C, 3);
    cluster_propose(&C, 1, 1);
    cluster_deliver(&C);
    ev.unreachable.id = 3;
    ck_assert_int_eq(cluster_step(&C, 1, &ev), 0);
    cluster_heal(&C);
    cluster_propose(&C, 1, 2);
    run(2);
    ck_assert_uint_eq(N(3)->applied, raft_last_index(R(1)));
}
END_TEST

START_TEST(a_proposal_of_several_entries_reports_the_first_index)
{
    struct raft_event ev = {.type = RAFT_EVENT_PROPOSE};
    struct goulette_buf bufs[3];
    uint64_t v[3] = {1, 2, 3};
    unsigned i;
    start3();
    for (i = 0; i < 3; i++) {
        bufs[i].base = &v[i];
        bufs[i].len = sizeof v[i];
    }
    ev.propose.context = 9;
    ev.propose.type = RAFT_ENTRY_NORMAL;
    ev.propose.data = bufs;
    ev.propose.n = 3;
    ck_assert_int_eq(cluster_step(&C, 1, &ev), 0);
    ck_assert_int_eq(last_result(1), 0);
    ck_assert_uint_eq(N(1)->props[N(1)->n_props - 1].index, 3);
    ev.propose.n = 0;
    ck_assert_int_eq(cluster_step(&C, 1, &ev), 0);
    ck_assert_int_eq(last_result(1), -EINVAL);
    ev.propose.n = 1;
    ev.propose.type = RAFT_ENTRY_CONF; /* only through CONF_CHANGE */
    ck_assert_int_eq(cluster_step(&C, 1, &ev), 0);
    ck_assert_int_eq(last_result(1), -EINVAL);
    run(2);
    ck_assert_uint_eq(N(2)->sm_count, 3);
}
END_TEST

START_TEST(duplicated_messages_change_nothing)
{
    unsigned i, k;
    start3();
    for (i = 0; i < 10; i++) {
        cluster_propose(&C, 1, i);
        /* Deliver every message twice. */
        for (k = 0; k < 50 && C.qn > 0; k++) {
            struct raft_message m;
            cluster_take(&C, 0, 0, 0, &m);
            cluster_inject(&C, &m);
            cluster_inject(&C, &m);
            cluster_msg_free(&m);
        }
    }
    run(3);
    for (i = 1; i <= 3; i++) {
        ck_assert_uint_eq(N(i)->sm_count, 10);
    }
    cluster_check_applied(&C);
}
END_TEST

START_TEST(only_a_transfer_target_claims_to_override_leases)
{
    struct raft_message m;
    cluster_init(&C, 3, 3);
    cluster_start(&C);
    cluster_campaign(&C, 1); /* pre-vote first */
    ck_assert_int_eq(raft_state(R(1)), RAFT_PRE_CANDIDATE);
    while (cluster_take(&C, 1, 0, RAFT_MSG_PREVOTE, &m)) {
        ck_assert(!m.transfer);
        cluster_inject(&C, &m);
        cluster_msg_free(&m);
    }
    ck_assert(cluster_take(&C, 2, 1, RAFT_MSG_PREVOTE_RESP, &m));
    cluster_inject(&C, &m);
    cluster_msg_free(&m);
    ck_assert_int_eq(raft_state(R(1)), RAFT_CANDIDATE);
    ck_assert(cluster_take(&C, 1, 3, RAFT_MSG_VOTE, &m));
    ck_assert(!m.transfer);
    cluster_msg_free(&m);
    cluster_deliver(&C);
    ck_assert_int_eq(raft_state(R(1)), RAFT_LEADER);
    run(1);
    {
        struct raft_event ev = {.type = RAFT_EVENT_TRANSFER};
        ev.transfer.to = 3;
        ck_assert_int_eq(cluster_step(&C, 1, &ev), 0);
    }
    ck_assert(cluster_take(&C, 1, 3, RAFT_MSG_TIMEOUT_NOW, &m));
    cluster_inject(&C, &m);
    cluster_msg_free(&m);
    ck_assert(cluster_take(&C, 3, 2, RAFT_MSG_VOTE, &m));
    ck_assert(m.transfer);
    cluster_msg_free(&m);
}
END_TEST

START_TEST(snapshot_chunks_of_two_senders_are_never_mixed)
{
    struct raft_message m = {0}, resp;
    uint8_t data[100] = {0};
    cluster_init(&C, 3, 3);
    cluster_start(&C);
    m.type = RAFT_MSG_SNAPSHOT;
    m.from = 1;
    m.to = 2;
    m.term = 5;
    m.snapshot.index = 50;
    m.snapshot.term = 4;
    m.snapshot.size = 300;
    m.snapshot.data.base = data;
    m.snapshot.data.len = 100;
    cluster_inject(&C, &m);
    ck_assert(cluster_take(&C, 2, 1, RAFT_MSG_SNAPSHOT_RESP, &resp));
    ck_assert(!resp.reject);
    ck_assert_uint_eq(resp.reject_hint, 100);
    /* A new leader goes on with the same snapshot identity: restart. */
    m.from = 3;
    m.term = 6;
    m.snapshot.offset = 100;
    cluster_inject(&C, &m);
    ck_assert(cluster_take(&C, 2, 3, RAFT_MSG_SNAPSHOT_RESP, &resp));
    ck_assert(resp.reject);
    ck_assert_uint_eq(resp.reject_hint, 0);
    ck_assert_uint_eq(N(2)->n_chunks, 1);
}
END_TEST

START_TEST(start_rebuilds_from_snapshot_and_drops_a_stale_suffix)
{
    struct raft r;
    struct raft_config cfg;
    struct raft_snapshot_meta snap = {0};
    struct raft_entry e[4] = {{0}};
    struct raft_event ev = {.type = RAFT_EVENT_START};
    struct raft_update u;
    unsigned i;
    raft_config_defaults(&cfg);
    cfg.id = 1;
    ck_assert_int_eq(raft_init(&r, &cfg), 0);
    raft_configuration_init(&snap.conf);
    ck_assert_int_eq(raft_configuration_add(&snap.conf, 1, "a:1", RAFT_VOTER),
                     0);
    ck_assert_int_eq(raft_configuration_add(&snap.conf, 2, "a:2", RAFT_VOTER),
                     0);
    snap.index = 5;
    snap.term = 3;
    snap.conf_index = 1;
    for (i = 0; i < 4; i++) {
        e[i].index = 4 + i; /* 4 is a trailing entry below the snapshot */
        e[i].term = i < 3 ? 3 : 2; /* 7 is older than the snapshot: stale */
        e[i].type = RAFT_ENTRY_BARRIER;
    }
    ev.start.hard_state.term = 4;
    ev.start.hard_state.vote = 2;
    ev.start.hard_state.commit = 6;
    ev.start.snapshot = &snap;
    ev.start.entries = e;
    ev.start.n_entries = 4;
    ev.start.applied = 5;
    ck_assert_int_eq(raft_step(&r, &ev, &u), 0);
    ck_assert_uint_eq(raft_last_index(&r), 6);
    ck_assert_uint_eq(raft_commit_index(&r), 6);
    ck_assert_uint_eq(raft_current_term(&r), 4);
    ck_assert_uint_eq(raft_configuration(&r)->n, 2);
    ck_assert_uint_eq(u.n_committed, 1); /* entry 6: committed, not applied */
    ck_assert_uint_eq(u.committed[0].index, 6);
    ck_assert(u.flags & RAFT_UPDATE_STATE);
    ck_assert(!(u.flags & RAFT_UPDATE_HARD_STATE));    /* nothing new */
    ck_assert_int_eq(raft_step(&r, &ev, &u), -EINVAL); /* START once */
    raft_fini(&r);
    e[1].index = 9; /* a gap is corruption, not staleness */
    ck_assert_int_eq(raft_init(&r, &cfg), 0);
    ck_assert_int_eq(raft_step(&r, &ev, &u), -EINVAL);
    raft_fini(&r);
    raft_configuration_fini(&snap.conf);
    cluster_init(&C, 1, 1);
}
END_TEST

static Suite *raft_suite(void)
{
    Suite *s = suite_create("raft");
    TCase *t;
    struct
    {
        const char *name;
        const TTest *tests[12];
    } groups[] = {
        {"election",
         {prevote_keeps_a_rejoining_partitioned_node_from_disrupting,
          without_prevote_a_rejoining_node_forces_a_new_term,
          leader_without_quorum_contact_steps_down,
          leader_with_quorum_contact_stays,
          follower_in_lease_ignores_higher_term_vote_requests,
          leader_ignores_disruptive_vote_requests_while_in_lease,
          only_a_transfer_target_claims_to_override_leases}},
        {"membership",
         {learner_catches_up_but_never_votes_nor_campaigns,
          learner_acks_do_not_count_towards_commit,
          promoted_learner_votes_and_counts,
          second_change_is_refused_until_the_first_commits,
          configuration_takes_effect_when_appended_and_rolls_back,
          removed_leader_leads_until_removal_commits_then_steps_down,
          invalid_membership_changes_are_refused,
          new_leader_takes_no_change_before_its_noop_commits,
          joining_server_catches_up_from_a_snapshot}},
        {"transfer",
         {transfer_hands_leadership_to_the_target,
          transfer_to_a_lagging_target_catches_it_up_first,
          transfer_aborts_after_an_election_timeout, transfer_errors}},
        {"read_index",
         {reads_are_batched_into_one_heartbeat_round,
          read_needs_a_quorum_of_acknowledgements,
          deposed_leader_never_answers_a_read,
          new_leader_answers_reads_only_after_committing_in_its_term,
          single_voter_answers_reads_at_once,
          follower_read_is_forwarded_to_the_leader}},
        {"proposals",
         {proposal_without_leader_fails_at_once,
          follower_forwards_proposals_to_the_leader,
          uncommitted_bytes_are_bounded,
          a_proposal_of_several_entries_reports_the_first_index}},
        {"flow_control",
         {appends_in_flight_are_bounded_by_count,
          appends_in_flight_are_bounded_by_bytes,
          append_messages_respect_max_append_bytes,
          unreachable_follower_is_probed_again,
          duplicated_messages_change_nothing}},
        {"snapshots",
         {lagging_follower_receives_snapshot_in_chunks,
          lost_snapshot_chunk_is_resent_from_the_follower_offset,
          snapshot_compacts_the_log_keeping_trailing_entries,
          snapshot_chunks_of_two_senders_are_never_mixed}},
        {"restart",
         {cluster_restarts_from_persisted_state, vote_survives_a_restart,
          start_rebuilds_from_snapshot_and_drops_a_stale_suffix}},
        {"input",
         {malformed_messages_are_dropped, events_before_start_are_invalid}},
    };
    unsigned g, k;
    for (g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        t = tcase_create(groups[g].name);
        tcase_add_checked_fixture(t, NULL, teardown);
        tcase_set_timeout(t, 60);
        for (k = 0; k < 12 && groups[g].tests[k] != NULL; k++) {
            tcase_add_test(t, groups[g].tests[k]);
        }
        suite_add_tcase(s, t);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(raft_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
