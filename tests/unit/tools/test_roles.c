/* Unit tests of tools/roles.c: which SetTopicRole / RemoveTopic calls the
 * leader makes, in which order, how it retries, when a topic is settled,
 * and what a new leader resumes. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roles.h"

static struct roles r;

static void setup(void)
{
    struct roles_config c = {42, 200, 30000, 64};
    ck_assert_int_eq(roles_init(&r, &c), 0);
}

static void teardown(void)
{
    roles_fini(&r);
}

/* Set @topic to the replicas in @spec ("b1,b2,b3", leader first), every
 * broker at "<id>:<version>"; returns the digest. */
static uint64_t assign(const char *topic, const char *spec, int version)
{
    const char *ids[8], *addrs[8];
    char idbuf[8][16], addrbuf[8][32];
    size_t n = 0;
    const char *p = spec;
    uint64_t d;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        memcpy(idbuf[n], p, len);
        idbuf[n][len] = '\0';
        snprintf(addrbuf[n], sizeof addrbuf[n], "%s:%d", idbuf[n], version);
        ids[n] = idbuf[n];
        addrs[n] = addrbuf[n];
        n++;
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    d = n > 0 ? roles_digest(ids, addrs, n) : 0;
    ck_assert_int_eq(roles_topic_set(&r, topic, ids, n, d), 0);
    return d;
}

/* The next action, which must exist, copied (roles_done may free the
 * strings the action points to). */
struct act
{
    struct roles_action a;
    char topic[32], broker[32];
};

static struct act next_at(uint64_t now)
{
    struct act x;
    memset(&x, 0, sizeof x);
    ck_assert_int_eq(roles_next(&r, now, &x.a), 1);
    snprintf(x.topic, sizeof x.topic, "%s", x.a.topic);
    snprintf(x.broker, sizeof x.broker, "%s", x.a.broker);
    x.a.topic = x.topic;
    x.a.broker = x.broker;
    return x;
}

static void none_at(uint64_t now)
{
    struct roles_action a;
    ck_assert_int_eq(roles_next(&r, now, &a), 0);
}

static void expect(const struct act *x,
                   enum roles_kind kind,
                   const char *topic,
                   const char *broker)
{
    ck_assert_int_eq(x->a.kind, kind);
    ck_assert_str_eq(x->topic, topic);
    ck_assert_str_eq(x->broker, broker);
}

/* Finish @x's call (a copy: its string pointers are re-aimed at its own
 * buffers first). */
static bool done(struct act *x, enum roles_outcome outcome, uint64_t now)
{
    x->a.topic = x->topic;
    x->a.broker = x->broker;
    return roles_done(&r, &x->a, outcome, now);
}

static void ack(struct act *x, uint64_t now)
{
    done(x, ROLES_ACKED, now);
}

/* Deliver every due call of one topic with success (leader first). */
static void settle_all(uint64_t now)
{
    struct roles_action a;
    int guard = 0;
    while (roles_next(&r, now, &a) == 1 && guard++ < 100) {
        struct act x;
        x.a = a;
        snprintf(x.topic, sizeof x.topic, "%s", a.topic);
        snprintf(x.broker, sizeof x.broker, "%s", a.broker);
        x.a.topic = x.topic;
        x.a.broker = x.broker;
        done(&x, a.kind == ROLES_REMOVE ? ROLES_ABSENT : ROLES_ACKED, now);
    }
}

struct seen
{
    char topic[32];
    uint64_t digest;
    int n;
};

static void take(void *arg, const char *topic, uint64_t digest)
{
    struct seen *s = arg;
    snprintf(s->topic, sizeof s->topic, "%s", topic);
    s->digest = digest;
    s->n++;
}

/* ---- ordering -------------------------------------------------------------
 */

START_TEST(the_leader_is_told_before_its_followers)
{
    struct act l, f1, f2;
    struct seen s = {"", 0, 0};
    uint64_t d;

    roles_lead(&r, true);
    d = assign("orders", "b1,b2,b3", 1);
    l = next_at(0);
    expect(&l, ROLES_SET_LEADER, "orders", "b1");
    ck_assert_uint_eq(l.a.digest, d);
    none_at(0); /* the followers wait for the leader's acknowledgement */
    ck_assert(done(&l, ROLES_ACKED, 1));
    f1 = next_at(1);
    f2 = next_at(1);
    expect(&f1, ROLES_SET_FOLLOWER, "orders", "b2");
    expect(&f2, ROLES_SET_FOLLOWER, "orders", "b3");
    ck_assert(!roles_settled(&r, "orders"));
    ack(&f1, 2);
    roles_take_delivered(&r, take, &s);
    ck_assert_int_eq(s.n, 0);
    ack(&f2, 2);
    ck_assert(roles_settled(&r, "orders"));
    roles_take_delivered(&r, take, &s);
    ck_assert_int_eq(s.n, 1);
    ck_assert_str_eq(s.topic, "orders");
    ck_assert_uint_eq(s.digest, d);
    ck_assert_uint_eq(roles_delivered_digest(&r, "orders"), d);
    none_at(1000000);
}
END_TEST

START_TEST(a_failing_leader_blocks_its_followers_not_other_topics)
{
    struct act l, other;
    roles_lead(&r, true);
    assign("a", "b1,b2", 1);
    assign("b", "b3,b4", 1);
    l = next_at(0);
    other = next_at(0);
    ck_assert_str_ne(l.topic, other.topic);
    done(&l, ROLES_FAILED, 0);
    ack(&other, 0);
    /* The other topic's follower goes; the failed one's follower does
     * not. */
    other = next_at(0);
    ck_assert_int_eq(other.a.kind, ROLES_SET_FOLLOWER);
    none_at(0);
}
END_TEST

/* ---- retries --------------------------------------------------------------
 */

START_TEST(backoff_doubles_from_200ms_to_a_30s_cap_with_jitter)
{
    uint64_t now = 0, base = 200;
    int i;
    roles_lead(&r, true);
    assign("t", "b1", 1);
    for (i = 0; i < 12; i++) {
        struct act x = next_at(now);
        uint64_t wait;
        ck_assert_uint_eq(x.a.attempt, (uint32_t)i);
        done(&x, ROLES_FAILED, now);
        wait = roles_wait_ms(&r, now);
        ck_assert_uint_ge(wait, base / 2);
        ck_assert_uint_le(wait, base);
        none_at(now + wait - 1);
        now += wait;
        base = base * 2 > 30000 ? 30000 : base * 2;
    }
    ck_assert_uint_eq(base, 30000);
    /* Acknowledged at last: settled, nothing waits. */
    {
        struct act x = next_at(now);
        ack(&x, now);
    }
    ck_assert(roles_settled(&r, "t"));
    ck_assert_uint_eq(roles_wait_ms(&r, now), UINT64_MAX);
}
END_TEST

START_TEST(the_in_flight_cap_holds_calls_back_until_one_finishes)
{
    struct roles_config c = {7, 200, 30000, 2};
    struct act a, b;
    roles_fini(&r);
    roles_init(&r, &c);
    roles_lead(&r, true);
    assign("x", "b1", 1);
    assign("y", "b2", 1);
    assign("z", "b3", 1);
    a = next_at(0);
    b = next_at(0);
    none_at(0);
    ck_assert_uint_eq(roles_inflight(&r), 2);
    ck_assert_uint_eq(roles_wait_ms(&r, 0), UINT64_MAX);
    ack(&a, 1);
    (void)next_at(1);
    ack(&b, 1);
}
END_TEST

/* ---- once per change and supersede -----------------------------------------
 */

START_TEST(an_acknowledged_assignment_is_not_sent_again)
{
    uint64_t d;
    roles_lead(&r, true);
    d = assign("t", "b1,b2,b3", 1);
    settle_all(0);
    ck_assert(roles_settled(&r, "t"));
    /* The same assignment applied again (a renewal touched it). */
    ck_assert_uint_eq(assign("t", "b1,b2,b3", 1), d);
    none_at(100000);
    /* An address change is a change: everyone again, leader first. */
    assign("t", "b1,b2,b3", 2);
    {
        struct act l = next_at(0);
        expect(&l, ROLES_SET_LEADER, "t", "b1");
        none_at(0);
    }
}
END_TEST

START_TEST(a_newer_assignment_supersedes_one_in_flight)
{
    struct act l, n;
    uint64_t d1, d2;
    roles_lead(&r, true);
    d1 = assign("t", "b1,b2,b3", 1);
    l = next_at(0);
    expect(&l, ROLES_SET_LEADER, "t", "b1");
    /* Re-placed while b1's call is out: b2 leads, b1 follows, b3 is out. */
    d2 = assign("t", "b2,b1,b4", 1);
    ck_assert_uint_ne(d1, d2);
    n = next_at(0);
    expect(&n, ROLES_SET_LEADER, "t", "b2");
    {
        struct act rm = next_at(0);
        expect(&rm, ROLES_REMOVE, "t", "b3");
        done(&rm, ROLES_ABSENT, 0);
    }
    none_at(0); /* b1 is in flight; followers wait for b2 */
    /* b1 acknowledges the old assignment: not the current one. */
    ck_assert(!done(&l, ROLES_ACKED, 1));
    none_at(1);
    ack(&n, 2);
    {
        struct act f1 = next_at(2), f2 = next_at(2);
        expect(&f1, ROLES_SET_FOLLOWER, "t", "b1");
        expect(&f2, ROLES_SET_FOLLOWER, "t", "b4");
        ck_assert_uint_eq(f1.a.digest, d2);
        ack(&f1, 3);
        ack(&f2, 3);
    }
    ck_assert(roles_settled(&r, "t"));
}
END_TEST

START_TEST(a_dropped_broker_that_is_a_replica_again_is_not_removed)
{
    roles_lead(&r, true);
    assign("t", "b1,b2", 1);
    settle_all(0);
    assign("t", "b1,b3", 1); /* b2 dropped ... */
    assign("t", "b1,b2", 1); /* ... and back before anything was sent */
    /* b2 holds the current assignment already: no removal, no role.  b3
     * may have been told by an earlier leader: it is removed. */
    {
        struct act rm = next_at(0);
        expect(&rm, ROLES_REMOVE, "t", "b3");
        none_at(0);
        done(&rm, ROLES_ABSENT, 0);
    }
    ck_assert(roles_settled(&r, "t"));
}
END_TEST

/* ---- removals ---------------------------------------------------------- */

START_TEST(a_removal_is_done_when_the_broker_does_not_have_the_topic)
{
    struct act rm;
    roles_lead(&r, true);
    assign("t", "b1,b2", 1);
    settle_all(0);
    assign("t", "b1", 1);
    /* b1 needs its new role (no followers) and b2 its removal. */
    {
        struct act l = next_at(0);
        expect(&l, ROLES_SET_LEADER, "t", "b1");
        ack(&l, 0);
    }
    rm = next_at(0);
    expect(&rm, ROLES_REMOVE, "t", "b2");
    ck_assert(!roles_settled(&r, "t"));
    done(&rm, ROLES_FAILED, 0);
    none_at(0);
    rm = next_at(roles_wait_ms(&r, 0));
    done(&rm, ROLES_ABSENT, 500);
    ck_assert(roles_settled(&r, "t"));
}
END_TEST

START_TEST(an_unregistered_broker_is_owed_no_removal)
{
    roles_lead(&r, true);
    assign("t", "b1,b2", 1);
    settle_all(0);
    assign("t", "b1,b3", 1);
    roles_broker_gone(&r, "b2");
    settle_all(0);
    ck_assert(roles_settled(&r, "t"));
}
END_TEST

START_TEST(a_deleted_topic_removes_every_replica_then_is_forgotten)
{
    struct seen s = {"", 1, 0};
    int removed = 0;
    struct roles_action a;
    roles_lead(&r, true);
    assign("t", "b1,b2", 1);
    settle_all(0);
    roles_take_delivered(&r, take, &s);
    s.n = 0;
    assign("t", "", 1);
    while (roles_next(&r, 0, &a) == 1) {
        struct act x = {a, "", ""};
        ck_assert_int_eq(a.kind, ROLES_REMOVE);
        snprintf(x.topic, sizeof x.topic, "%s", a.topic);
        snprintf(x.broker, sizeof x.broker, "%s", a.broker);
        x.a.topic = x.topic;
        x.a.broker = x.broker;
        ack(&x, 0);
        removed++;
    }
    ck_assert_int_eq(removed, 2);
    roles_take_delivered(&r, take, &s);
    ck_assert_int_eq(s.n, 1);
    ck_assert_uint_eq(s.digest, 0);
    ck_assert_uint_eq(roles_topic_digest(&r, "t", NULL), 0);
}
END_TEST

/* ---- leadership ------------------------------------------------------------
 */

START_TEST(a_follower_sends_nothing)
{
    assign("t", "b1,b2", 1);
    none_at(0);
    ck_assert_uint_eq(roles_wait_ms(&r, 0), UINT64_MAX);
}
END_TEST

START_TEST(losing_leadership_cancels_calls_in_flight)
{
    struct act l;
    roles_lead(&r, true);
    assign("t", "b1,b2", 1);
    l = next_at(0);
    roles_lead(&r, false);
    none_at(0);
    /* The late reply belongs to the old generation: ignored. */
    ck_assert(!done(&l, ROLES_ACKED, 1));
    ck_assert_uint_eq(roles_inflight(&r), 0);
    roles_lead(&r, true);
    l = next_at(2);
    expect(&l, ROLES_SET_LEADER, "t", "b1");
}
END_TEST

START_TEST(a_new_leader_resends_what_is_not_known_delivered)
{
    uint64_t ds, dp;
    int sent = 0;
    struct roles_action a;
    /* As a follower: "settled" was delivered by the old leader (notice),
     * "pending" was not; "pending" also dropped b9. */
    ds = assign("settled", "b1,b2,b3", 1);
    assign("pending", "b1,b2,b9", 1);
    dp = assign("pending", "b1,b2,b3", 1);
    assign("settled", "b1,b2,b4", 1);
    ds = assign("settled", "b1,b2,b3", 1);
    ck_assert_int_eq(roles_delivered(&r, "settled", ds), 0);
    roles_lead(&r, true);
    /* All of pending's replicas (leader first) and its removal; nothing
     * of settled. */
    while (roles_next(&r, 0, &a) == 1) {
        struct act x = {a, "", ""};
        snprintf(x.topic, sizeof x.topic, "%s", a.topic);
        snprintf(x.broker, sizeof x.broker, "%s", a.broker);
        x.a.topic = x.topic;
        x.a.broker = x.broker;
        ck_assert_str_eq(x.topic, "pending");
        if (sent == 0) {
            ck_assert_int_eq(a.kind, ROLES_SET_LEADER);
        }
        ck_assert_uint_eq(a.digest, dp);
        done(&x, a.kind == ROLES_REMOVE ? ROLES_ABSENT : ROLES_ACKED, 0);
        sent++;
    }
    ck_assert_int_eq(sent, 4); /* b1, b2, b3 and b9's removal */
    ck_assert(roles_settled(&r, "pending"));
    ck_assert(roles_settled(&r, "settled"));
}
END_TEST

START_TEST(a_leader_that_led_before_does_not_trust_its_old_acknowledgements)
{
    roles_lead(&r, true);
    assign("t", "b1", 1);
    {
        struct act l = next_at(0);
        ack(&l, 0);
    }
    /* Acknowledged and delivered: after losing and regaining leadership
     * nothing is sent.  A change made meanwhile by another leader, then
     * undone, would be: delivered is forgotten when the digest moves. */
    roles_lead(&r, false);
    assign("t", "b2", 1);
    assign("t", "b1", 1);
    roles_lead(&r, true);
    {
        struct act l = next_at(0);
        expect(&l, ROLES_SET_LEADER, "t", "b1");
    }
}
END_TEST

START_TEST(a_notice_clears_a_followers_removals)
{
    uint64_t d;
    assign("t", "b1,b2", 1);
    d = assign("t", "b1,b3", 1);
    ck_assert(!roles_settled(&r, "t"));
    ck_assert_int_eq(roles_delivered(&r, "t", d), 0);
    roles_lead(&r, true);
    none_at(0);
}
END_TEST

START_TEST(digests_cover_ids_addresses_and_order)
{
    const char *a[] = {"b1", "b2"}, *b[] = {"b2", "b1"};
    const char *x[] = {"h:1", "h:2"}, *y[] = {"h:1", "h:3"};
    ck_assert_uint_ne(roles_digest(a, x, 2), roles_digest(b, x, 2));
    ck_assert_uint_ne(roles_digest(a, x, 2), roles_digest(a, y, 2));
    ck_assert_uint_eq(roles_digest(a, x, 2), roles_digest(a, x, 2));
    ck_assert_uint_ne(roles_digest(a, x, 2), 0);
}
END_TEST

static Suite *roles_suite(void)
{
    Suite *s = suite_create("roles");
    TCase *tc;

    tc = tcase_create("ordering");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, the_leader_is_told_before_its_followers);
    tcase_add_test(tc, a_failing_leader_blocks_its_followers_not_other_topics);
    suite_add_tcase(s, tc);

    tc = tcase_create("retries");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, backoff_doubles_from_200ms_to_a_30s_cap_with_jitter);
    tcase_add_test(tc, the_in_flight_cap_holds_calls_back_until_one_finishes);
    suite_add_tcase(s, tc);

    tc = tcase_create("changes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, an_acknowledged_assignment_is_not_sent_again);
    tcase_add_test(tc, a_newer_assignment_supersedes_one_in_flight);
    tcase_add_test(tc, a_dropped_broker_that_is_a_replica_again_is_not_removed);
    tcase_add_test(tc, digests_cover_ids_addresses_and_order);
    suite_add_tcase(s, tc);

    tc = tcase_create("removals");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc,
                   a_removal_is_done_when_the_broker_does_not_have_the_topic);
    tcase_add_test(tc, an_unregistered_broker_is_owed_no_removal);
    tcase_add_test(tc, a_deleted_topic_removes_every_replica_then_is_forgotten);
    suite_add_tcase(s, tc);

    tc = tcase_create("leadership");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_follower_sends_nothing);
    tcase_add_test(tc, losing_leadership_cancels_calls_in_flight);
    tcase_add_test(tc, a_new_leader_resends_what_is_not_known_delivered);
    tcase_add_test(
        tc, a_leader_that_led_before_does_not_trust_its_old_acknowledgements);
    tcase_add_test(tc, a_notice_clears_a_followers_removals);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(roles_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
