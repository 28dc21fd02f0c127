/* Unit tests of the leader's broker failure detection (store/liveness.c). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <goulette/liveness.h>

#define S 1000000000LL /* one second in ns */

static struct store_liveness l;

static void setup(void)
{
    struct store_liveness_config c = {60 * S, 120 * S, 5 * S, 0};
    ck_assert_int_eq(store_liveness_init(&l, &c), 0);
}

static void teardown(void)
{
    store_liveness_fini(&l);
}

START_TEST(bad_thresholds_are_refused)
{
    struct store_liveness x;
    struct store_liveness_config c = {120 * S, 60 * S, S, 0};
    ck_assert_int_eq(store_liveness_init(&x, &c), -EINVAL);
    c.suspect_after_ns = 0;
    ck_assert_int_eq(store_liveness_init(&x, &c), -EINVAL);
    c.suspect_after_ns = S;
    c.retry_ns = 0;
    ck_assert_int_eq(store_liveness_init(&x, &c), -EINVAL);
    c.retry_ns = S;
    c.down_after_ns = 2 * S;
    c.report_after_ns = 2 * S; /* longer than suspect_after */
    ck_assert_int_eq(store_liveness_init(&x, &c), -EINVAL);
}
END_TEST

START_TEST(a_member_that_does_not_lead_judges_nobody)
{
    ck_assert_int_eq(store_liveness_heartbeat(&l, "b1", 1 * S), 0);
    ck_assert_int_eq(store_liveness_due(&l, "b1", 0, 1000 * S), -1);
    store_liveness_lead(&l, 10 * S);
    store_liveness_follow(&l);
    ck_assert_int_eq(store_liveness_due(&l, "b1", 0, 1000 * S), -1);
}
END_TEST

START_TEST(a_silent_broker_goes_suspicious_then_down)
{
    store_liveness_lead(&l, 100 * S);
    ck_assert_int_eq(store_liveness_due(&l, "b1", 0, 160 * S), -1);
    ck_assert_int_eq(store_liveness_due(&l, "b1", 0, 161 * S), 1);
    ck_assert_int_eq(store_liveness_due(&l, "b1", 1, 200 * S), -1);
    ck_assert_int_eq(store_liveness_due(&l, "b1", 1, 221 * S), 2);
    ck_assert_int_eq(store_liveness_due(&l, "b1", 2, 5000 * S), -1);
}
END_TEST

START_TEST(heartbeats_keep_a_broker_healthy)
{
    int64_t t;
    store_liveness_lead(&l, 0);
    for (t = 1; t < 1000; t += 30) {
        ck_assert_int_eq(store_liveness_heartbeat(&l, "b1", t * S), 0);
        ck_assert_int_eq(store_liveness_due(&l, "b1", 0, (t + 29) * S), -1);
    }
}
END_TEST

START_TEST(a_broker_that_renews_becomes_healthy_again)
{
    store_liveness_lead(&l, 0);
    ck_assert_int_eq(store_liveness_heartbeat(&l, "s", 10 * S), 0);
    ck_assert_int_eq(store_liveness_due(&l, "s", 1, 11 * S), 0);
    ck_assert_int_eq(store_liveness_heartbeat(&l, "d", 10 * S), 0);
    ck_assert_int_eq(store_liveness_due(&l, "d", 2, 11 * S), 0);
}
END_TEST

START_TEST(a_down_broker_stays_down_without_a_heartbeat)
{
    store_liveness_lead(&l, 0);
    /* A new leadership: the broker is in its grace period, but a grace
     * period is no heartbeat: it is not declared healthy. */
    ck_assert_int_eq(store_liveness_due(&l, "b1", 2, 1 * S), -1);
    ck_assert_int_eq(store_liveness_due(&l, "b1", 1, 1 * S), -1);
}
END_TEST

START_TEST(a_report_of_a_renewing_broker_changes_nothing)
{
    int64_t t;
    store_liveness_lead(&l, 0);
    /* Renewing every 29 s, reported at the worst moment, many times. */
    for (t = 1; t < 1000; t += 29) {
        ck_assert_int_eq(store_liveness_heartbeat(&l, "b1", t * S), 0);
        ck_assert_int_eq(store_liveness_reported(&l, "b1", 0, (t + 28) * S),
                         -1);
        ck_assert_int_eq(store_liveness_due(&l, "b1", 0, (t + 28) * S), -1);
    }
}
END_TEST

START_TEST(a_report_of_a_silent_broker_sets_it_down_until_it_renews)
{
    store_liveness_lead(&l, 0);
    ck_assert_int_eq(store_liveness_heartbeat(&l, "b1", 10 * S), 0);
    /* Silent 30 s (the default report_after, suspect_after / 2): not yet. */
    ck_assert_int_eq(store_liveness_reported(&l, "b1", 0, 40 * S), -1);
    ck_assert_int_eq(store_liveness_reported(&l, "b1", 0, 41 * S), 2);
    /* In flight: not again until retry_ns, then again. */
    ck_assert_int_eq(store_liveness_reported(&l, "b1", 0, 42 * S), -1);
    ck_assert_int_eq(store_liveness_reported(&l, "b1", 0, 47 * S), 2);
    /* Down in the store: the detector does not bring it back by itself. */
    ck_assert_int_eq(store_liveness_due(&l, "b1", 2, 48 * S), -1);
    ck_assert_int_eq(store_liveness_reported(&l, "b1", 2, 48 * S), -1);
    /* It renews: healthy again. */
    ck_assert_int_eq(store_liveness_heartbeat(&l, "b1", 50 * S), 0);
    ck_assert_int_eq(store_liveness_due(&l, "b1", 2, 51 * S), 0);
}
END_TEST

START_TEST(reports_respect_a_new_leaders_grace)
{
    store_liveness_lead(&l, 100 * S);
    ck_assert_int_eq(store_liveness_reported(&l, "b1", 0, 130 * S), -1);
    ck_assert_int_eq(store_liveness_reported(&l, "b1", 0, 131 * S), 2);
    store_liveness_follow(&l);
    ck_assert_int_eq(store_liveness_reported(&l, "b2", 0, 1000 * S), -1);
}
END_TEST

START_TEST(a_new_leader_gives_every_broker_a_full_grace_period)
{
    store_liveness_lead(&l, 0);
    ck_assert_int_eq(store_liveness_heartbeat(&l, "b1", 10 * S), 0);
    /* Leadership moves away and comes back much later: the old heartbeat
     * would make b1 look dead, but it gets a full period again. */
    store_liveness_follow(&l);
    store_liveness_lead(&l, 500 * S);
    ck_assert_int_eq(store_liveness_due(&l, "b1", 0, 501 * S), -1);
    ck_assert_int_eq(store_liveness_due(&l, "b1", 0, 559 * S), -1);
    ck_assert_int_eq(store_liveness_due(&l, "b1", 0, 561 * S), 1);
}
END_TEST

START_TEST(a_change_in_flight_is_not_proposed_twice_until_retry)
{
    store_liveness_lead(&l, 0);
    ck_assert_int_eq(store_liveness_due(&l, "b1", 0, 61 * S), 1);
    ck_assert_int_eq(store_liveness_due(&l, "b1", 0, 62 * S), -1);
    ck_assert_int_eq(store_liveness_due(&l, "b1", 0, 65 * S), -1);
    ck_assert_int_eq(store_liveness_due(&l, "b1", 0, 67 * S), 1);
    /* Once the store shows it, nothing more is due. */
    ck_assert_int_eq(store_liveness_due(&l, "b1", 1, 68 * S), -1);
}
END_TEST

START_TEST(forgotten_brokers_start_over)
{
    store_liveness_lead(&l, 0);
    ck_assert_int_eq(store_liveness_heartbeat(&l, "b1", 50 * S), 0);
    store_liveness_forget(&l, "b1");
    store_liveness_forget(&l, "never-seen");
    /* No heartbeat remembered: silent since the leadership began. */
    ck_assert_int_eq(store_liveness_due(&l, "b1", 0, 61 * S), 1);
}
END_TEST

START_TEST(many_brokers_are_tracked_independently)
{
    char id[16];
    int i;
    store_liveness_lead(&l, 0);
    for (i = 999; i >= 0; i -= 2) { /* the odd ones renew at 100 s */
        snprintf(id, sizeof id, "b%d", i);
        ck_assert_int_eq(store_liveness_heartbeat(&l, id, 100 * S), 0);
    }
    for (i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "b%d", i);
        /* At 100 s the even ones, silent since the leadership began, are
         * suspicious; the odd ones are fine. */
        ck_assert_int_eq(store_liveness_due(&l, id, 0, 100 * S),
                         (i % 2) ? -1 : 1);
    }
    ck_assert_uint_eq(l.n, 1000);
}
END_TEST

static Suite *liveness_suite(void)
{
    Suite *s = suite_create("liveness");
    TCase *tc = tcase_create("rule");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, bad_thresholds_are_refused);
    tcase_add_test(tc, a_member_that_does_not_lead_judges_nobody);
    tcase_add_test(tc, a_silent_broker_goes_suspicious_then_down);
    tcase_add_test(tc, heartbeats_keep_a_broker_healthy);
    tcase_add_test(tc, a_broker_that_renews_becomes_healthy_again);
    tcase_add_test(tc, a_down_broker_stays_down_without_a_heartbeat);
    tcase_add_test(tc, a_new_leader_gives_every_broker_a_full_grace_period);
    tcase_add_test(tc, a_change_in_flight_is_not_proposed_twice_until_retry);
    tcase_add_test(tc, forgotten_brokers_start_over);
    tcase_add_test(tc, many_brokers_are_tracked_independently);
    tcase_add_test(tc, a_report_of_a_renewing_broker_changes_nothing);
    tcase_add_test(tc,
                   a_report_of_a_silent_broker_sets_it_down_until_it_renews);
    tcase_add_test(tc, reports_respect_a_new_leaders_grace);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(liveness_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
