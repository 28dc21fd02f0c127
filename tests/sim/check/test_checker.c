/* Tests of the simulator's checker (tests/sim/checker.c) on hand-made
 * histories: each property must fire on a violation that the planted core
 * bugs do not exercise (log matching, leader append-only is in node.c,
 * acked writes, snapshots going back), and stay quiet on legal histories
 * that look alike (a stale leader of an older term, a fresh read). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "checker.h"
#include "log.h"

static uint64_t step;
static struct sim_trace trace;
static struct sim_checker c;

static void setup(void)
{
    step = 1;
    sim_trace_init(&trace, NULL);
    sim_checker_init(&c, &trace, &step);
}

static void teardown(void)
{
    sim_checker_fini(&c);
}

static struct raft_entry entry(raft_index index, raft_term term, char byte)
{
    static char data[64];
    struct raft_entry e;
    memset(&e, 0, sizeof e);
    data[index % sizeof data] = byte;
    e.index = index;
    e.term = term;
    e.type = RAFT_ENTRY_BARRIER;
    e.data.base = &data[index % sizeof data];
    e.data.len = 1;
    return e;
}

/* A log holding (1, t1), (2, t2), ... with the given terms and a payload
 * byte that tells two histories apart. */
static void make_log(struct sim_log *l,
                     const raft_term *terms,
                     unsigned n,
                     char byte)
{
    unsigned i;
    sim_log_init(l);
    for (i = 0; i < n; i++) {
        struct raft_entry e = entry(i + 1, terms[i], byte);
        ck_assert_int_eq(sim_log_append(l, &e, 1), 0);
    }
}

/* Node @id applies the whole of @l, in term @term. */
static void apply_all(raft_id id, const struct sim_log *l, raft_term term)
{
    raft_index i;
    for (i = 1; i <= sim_log_last(l); i++) {
        const struct sim_entry *e = sim_log_get(l, i);
        sim_checker_applied(&c, id, term, i - 1, &e->e, e->chain);
    }
}

static void assert_failed(const char *property)
{
    ck_assert(c.failed);
    ck_assert_str_eq(c.property, property);
}

/* ---- election safety ------------------------------------------------ */

START_TEST(two_leaders_in_one_term_fail_election_safety)
{
    sim_checker_leader(&c, 1, 4);
    sim_checker_leader(&c, 1, 4); /* the same leader again is fine */
    ck_assert(!c.failed);
    sim_checker_leader(&c, 2, 5);
    ck_assert(!c.failed);
    sim_checker_leader(&c, 3, 4);
    assert_failed(SIM_P_ELECTION);
}
END_TEST

/* ---- log matching --------------------------------------------------- */

START_TEST(same_index_and_term_after_another_prefix_fails_log_matching)
{
    static const raft_term a_terms[] = {1, 1, 2};
    static const raft_term b_terms[] = {1, 1, 2};
    struct sim_log a;
    struct sim_log b;
    make_log(&a, a_terms, 3, 'a');
    make_log(&b, b_terms, 3, 'b'); /* same terms, other commands */
    sim_checker_appended(&c, 1, &a, 1);
    ck_assert(!c.failed);
    sim_checker_appended(&c, 2, &b, 1);
    assert_failed(SIM_P_LOG_MATCHING);
    sim_log_fini(&a);
    sim_log_fini(&b);
}
END_TEST

START_TEST(identical_prefixes_pass_log_matching)
{
    static const raft_term terms[] = {1, 2, 2, 3};
    struct sim_log a;
    struct sim_log b;
    make_log(&a, terms, 4, 'x');
    make_log(&b, terms, 2, 'x');
    sim_checker_appended(&c, 1, &a, 1);
    sim_checker_appended(&c, 2, &b, 1);
    ck_assert(!c.failed);
    sim_log_fini(&a);
    sim_log_fini(&b);
}
END_TEST

/* ---- leader completeness ------------------------------------------- */

START_TEST(later_leader_without_a_committed_entry_fails_completeness)
{
    static const raft_term committed[] = {1, 2, 2};
    static const raft_term other[] = {1, 2, 3};
    struct sim_log l;
    struct sim_log m;
    make_log(&l, committed, 3, 'x');
    make_log(&m, other, 3, 'x');
    apply_all(1, &l, 2); /* committed by term 2 at the latest */
    ck_assert(!c.failed);
    sim_checker_new_leader(&c, 3, 4, &m);
    assert_failed(SIM_P_COMPLETENESS);
    sim_log_fini(&l);
    sim_log_fini(&m);
}
END_TEST

START_TEST(stale_leader_of_an_earlier_term_passes_completeness)
{
    /* Leader Completeness speaks of leaders of later terms only: a node
     * that wins term 1 late, after term 2 committed something, is legal
     * (it can commit nothing: every other node is past term 1). */
    static const raft_term committed[] = {1, 2};
    static const raft_term stale[] = {1};
    struct sim_log l;
    struct sim_log m;
    make_log(&l, committed, 2, 'x');
    make_log(&m, stale, 1, 'x');
    apply_all(1, &l, 2);
    sim_checker_new_leader(&c, 3, 1, &m);
    ck_assert(!c.failed);
    sim_checker_new_leader(&c, 3, 2, &m);
    ck_assert(!c.failed); /* committed by term <= 2: a term-2 leader may
                             predate the commit */
    sim_checker_new_leader(&c, 3, 3, &m);
    assert_failed(SIM_P_COMPLETENESS);
    sim_log_fini(&l);
    sim_log_fini(&m);
}
END_TEST

START_TEST(the_lowest_applier_term_bounds_the_commit_term)
{
    /* n1 applies in term 5, n2 (which heard of the commit from a leader of
     * term 2 at most) in term 2: a leader of term 3 must hold the entry. */
    static const raft_term committed[] = {1, 2};
    static const raft_term other[] = {1, 3};
    struct sim_log l;
    struct sim_log m;
    make_log(&l, committed, 2, 'x');
    make_log(&m, other, 2, 'x');
    apply_all(1, &l, 5);
    sim_checker_new_leader(&c, 3, 3, &m);
    ck_assert(!c.failed);
    apply_all(2, &l, 2);
    sim_checker_new_leader(&c, 3, 3, &m);
    assert_failed(SIM_P_COMPLETENESS);
    sim_log_fini(&l);
    sim_log_fini(&m);
}
END_TEST

/* ---- state-machine safety ------------------------------------------ */

START_TEST(applying_an_entry_twice_fails_state_machine_safety)
{
    static const raft_term terms[] = {1, 1};
    struct sim_log l;
    make_log(&l, terms, 2, 'x');
    apply_all(1, &l, 1);
    sim_checker_applied(&c, 1, 1, 2, &sim_log_get(&l, 2)->e,
                        sim_log_get(&l, 2)->chain);
    assert_failed(SIM_P_SM_SAFETY);
    sim_log_fini(&l);
}
END_TEST

START_TEST(applying_another_entry_at_an_index_fails_state_machine_safety)
{
    static const raft_term a_terms[] = {1, 2};
    static const raft_term b_terms[] = {1, 3};
    struct sim_log a;
    struct sim_log b;
    make_log(&a, a_terms, 2, 'x');
    make_log(&b, b_terms, 2, 'x');
    apply_all(1, &a, 2);
    apply_all(2, &b, 3);
    assert_failed(SIM_P_SM_SAFETY);
    sim_log_fini(&a);
    sim_log_fini(&b);
}
END_TEST

START_TEST(a_snapshot_behind_the_applied_index_fails_state_machine_safety)
{
    static const raft_term terms[] = {1, 1, 1};
    struct sim_log l;
    make_log(&l, terms, 3, 'x');
    apply_all(1, &l, 1);
    sim_checker_installed(&c, 1, 1, 3, 2, 1, sim_log_get(&l, 2)->chain);
    assert_failed(SIM_P_SM_SAFETY);
    sim_log_fini(&l);
}
END_TEST

START_TEST(committing_another_entry_fails_state_machine_safety)
{
    static const raft_term a_terms[] = {1, 2};
    static const raft_term b_terms[] = {1, 3};
    struct sim_log a;
    struct sim_log b;
    make_log(&a, a_terms, 2, 'x');
    make_log(&b, b_terms, 2, 'x');
    apply_all(1, &a, 2);
    sim_checker_commit(&c, 2, 1, &b);
    ck_assert(!c.failed);
    sim_checker_commit(&c, 2, 2, &b);
    assert_failed(SIM_P_SM_SAFETY);
    sim_log_fini(&a);
    sim_log_fini(&b);
}
END_TEST

/* ---- client guarantees ---------------------------------------------- */

START_TEST(an_ack_for_an_entry_that_was_not_committed_fails)
{
    static const raft_term terms[] = {1, 2};
    struct sim_log l;
    make_log(&l, terms, 2, 'x');
    apply_all(1, &l, 2);
    sim_checker_acked(&c, 2, 2);
    ck_assert(!c.failed);
    sim_checker_acked(&c, 2, 3); /* the client was given (2, 3) */
    assert_failed(SIM_P_ACKED);
    sim_log_fini(&l);
}
END_TEST

START_TEST(a_read_older_than_an_acked_write_fails_linearizability)
{
    static const raft_term terms[] = {1, 1, 1};
    struct sim_log l;
    make_log(&l, terms, 3, 'x');
    apply_all(1, &l, 1);
    sim_checker_acked(&c, 3, 1);
    sim_checker_read(&c, 2, 7, c.ack_index, 3, 3); /* fresh: fine */
    ck_assert(!c.failed);
    sim_checker_read(&c, 2, 8, c.ack_index, 2, 2); /* misses index 3 */
    assert_failed(SIM_P_READ);
    sim_log_fini(&l);
}
END_TEST

START_TEST(a_read_index_below_an_acked_write_fails_linearizability)
{
    static const raft_term terms[] = {1, 1, 1};
    struct sim_log l;
    make_log(&l, terms, 3, 'x');
    apply_all(1, &l, 1);
    sim_checker_acked(&c, 3, 1);
    /* The state served happens to be new enough, but the read index the
     * core gave was stale: a slower node would have served old data. */
    sim_checker_read(&c, 2, 9, c.ack_index, 2, 3);
    assert_failed(SIM_P_READ);
    sim_log_fini(&l);
}
END_TEST

START_TEST(only_the_first_violation_is_kept)
{
    sim_checker_leader(&c, 1, 2);
    sim_checker_leader(&c, 2, 2);
    step = 9;
    sim_checker_fail(&c, SIM_P_LIVENESS, "later");
    assert_failed(SIM_P_ELECTION);
    ck_assert_uint_eq(c.fail_step, 1);
}
END_TEST

static Suite *checker_suite(void)
{
    Suite *s = suite_create("sim_checker");
    struct
    {
        const char *name;
        const TTest *tests[5];
    } cases[] = {
        {"election_safety",
         {two_leaders_in_one_term_fail_election_safety, NULL}},
        {"log_matching",
         {same_index_and_term_after_another_prefix_fails_log_matching,
          identical_prefixes_pass_log_matching, NULL}},
        {"leader_completeness",
         {later_leader_without_a_committed_entry_fails_completeness,
          stale_leader_of_an_earlier_term_passes_completeness,
          the_lowest_applier_term_bounds_the_commit_term, NULL}},
        {"state_machine_safety",
         {applying_an_entry_twice_fails_state_machine_safety,
          applying_another_entry_at_an_index_fails_state_machine_safety,
          a_snapshot_behind_the_applied_index_fails_state_machine_safety,
          NULL}},
        {"commit", {committing_another_entry_fails_state_machine_safety, NULL}},
        {"clients",
         {an_ack_for_an_entry_that_was_not_committed_fails,
          a_read_older_than_an_acked_write_fails_linearizability,
          a_read_index_below_an_acked_write_fails_linearizability, NULL}},
        {"reporting", {only_the_first_violation_is_kept, NULL}},
    };
    size_t i;
    size_t j;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        for (j = 0; cases[i].tests[j] != NULL; j++) {
            tcase_add_test(tc, cases[i].tests[j]);
        }
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(checker_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
