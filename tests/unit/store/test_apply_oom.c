/* Allocation-failure tests for the pure apply core: for every command,
 * fail the Nth allocation, N = 1, 2, ... until the command completes, and
 * check that -ENOMEM comes back, the model is exactly as before and nothing
 * leaked.  This binary replaces malloc (glibc supports interposition), so
 * it is a program of its own. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goulette/err.h"
#include "goulette/store.h"

#include "apply.h"
#include "state.h"

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

/* Test-only allocator state (this test binary is single-threaded). */
static long countdown = -1; /* allocations left before the failing one */
static bool fired;
static long live; /* allocations not yet freed */

static bool fail_now(void)
{
    if (countdown < 0) {
        return false;
    }
    if (countdown == 0) {
        countdown = -1;
        fired = true;
        return true;
    }
    countdown--;
    return false;
}

void *malloc(size_t n)
{
    void *p = fail_now() ? NULL : __libc_malloc(n);
    live += p != NULL;
    return p;
}

void *calloc(size_t n, size_t size)
{
    void *p = fail_now() ? NULL : __libc_calloc(n, size);
    live += p != NULL;
    return p;
}

void *realloc(void *old, size_t n)
{
    void *p;
    if (fail_now()) {
        return NULL;
    }
    p = __libc_realloc(old, n);
    live += old == NULL && p != NULL;
    return p;
}

void free(void *p)
{
    live -= p != NULL;
    __libc_free(p);
}

#define TS 1720000000123456789LL

static struct store__state st;

static void must(struct store_cmd c)
{
    struct store__txn txn;
    int result = -1;
    c.timestamp_ns = TS;
    store__txn_init(&txn, &st, TS);
    ck_assert_int_eq(store__apply(&st, &c, &txn, &result), 0);
    ck_assert_int_eq(result, 0);
    store__txn_commit(&st, &txn);
    store_changes_fini(&txn.changes);
}

static void base_state(void)
{
    char *topics[] = {"topic1"};
    ck_assert_int_eq(store__state_init(&st, 150), 0);
    must((struct store_cmd){.type = STORE_CMD_REGISTER_BROKER,
                            .broker_id = "broker1",
                            .address = "h:1",
                            .names = topics,
                            .n_names = 1});
    must((struct store_cmd){.type = STORE_CMD_REGISTER_BROKER,
                            .broker_id = "broker2",
                            .address = "h:2"});
    must((struct store_cmd){.type = STORE_CMD_REGISTER_BROKER,
                            .broker_id = "broker3",
                            .address = "h:3"});
    must((struct store_cmd){.type = STORE_CMD_REGISTER_BROKER,
                            .broker_id = "broker4",
                            .address = "h:4"});
    must((struct store_cmd){.type = STORE_CMD_GENERATE_TOPIC_REPLICAS,
                            .topic = "topic1",
                            .replica_count = 2});
    must((struct store_cmd){.type = STORE_CMD_GENERATE_TOPIC_REPLICAS,
                            .topic = "topic2",
                            .replica_count = 2});
}

static char *fingerprint(void)
{
    size_t cap = 1 << 14;
    char *out = __libc_calloc(1, cap);
    size_t n = (size_t)snprintf(out, cap, "%llu %llu %d %zu %zu|",
                                (unsigned long long)st.revision,
                                (unsigned long long)st.counter, st.has_counter,
                                st.ring.n_members, st.ring.n_points);
    for (size_t i = 0; i < st.n_brokers; i++) {
        n += (size_t)snprintf(out + n, cap - n, "%s %llu|", st.brokers[i]->json,
                              (unsigned long long)st.brokers[i]->meta.version);
    }
    for (size_t i = 0; i < st.n_topics; i++) {
        n += (size_t)snprintf(out + n, cap - n, "%s %llu|", st.topics[i]->json,
                              (unsigned long long)st.topics[i]->meta.version);
    }
    return out;
}

/* Fail allocation N = 0, 1, ... of applying @c to the base state. */
static void fail_each_allocation(struct store_cmd c)
{
    c.timestamp_ns = TS + 1;
    for (long n = 0;; n++) {
        struct store__txn txn;
        int result = -1;
        int rv;
        base_state();
        char *before = fingerprint();
        long live_before = live;
        store__txn_init(&txn, &st, c.timestamp_ns);
        fired = false;
        countdown = n;
        rv = store__apply(&st, &c, &txn, &result);
        countdown = -1;
        if (!fired) {
            /* Every allocation succeeded: the command went through. */
            ck_assert_int_eq(rv, 0);
            ck_assert_int_eq(result, 0);
            store__txn_commit(&st, &txn);
            store_changes_fini(&txn.changes);
            __libc_free(before);
            store__state_fini(&st);
            ck_assert_int_gt(n, 0);
            return;
        }
        ck_assert_msg(rv == -ENOMEM, "allocation %ld: rv %d", n, rv);
        ck_assert(!st.broken);
        char *after = fingerprint();
        ck_assert_msg(strcmp(before, after) == 0, "allocation %ld", n);
        ck_assert_msg(live == live_before, "allocation %ld leaked %ld", n,
                      live - live_before);
        __libc_free(before);
        __libc_free(after);
        store__state_fini(&st);
    }
}

START_TEST(register_survives_every_failed_allocation)
{
    char *topics[] = {"t1", "t2"};
    fail_each_allocation((struct store_cmd){.type = STORE_CMD_REGISTER_BROKER,
                                            .broker_id = "broker5",
                                            .address = "h:5",
                                            .names = topics,
                                            .n_names = 2});
}
END_TEST

START_TEST(keepalive_move_survives_every_failed_allocation)
{
    fail_each_allocation((struct store_cmd){.type = STORE_CMD_KEEPALIVE_BROKER,
                                            .broker_id = "broker1",
                                            .address = "moved:1"});
}
END_TEST

START_TEST(set_down_survives_every_failed_allocation)
{
    fail_each_allocation((struct store_cmd){.type = STORE_CMD_SET_BROKER_STATUS,
                                            .broker_id = "broker3",
                                            .status = STORE_BROKER_DOWN});
}
END_TEST

START_TEST(unregister_survives_every_failed_allocation)
{
    fail_each_allocation((struct store_cmd){.type = STORE_CMD_UNREGISTER_BROKER,
                                            .broker_id = "broker3"});
}
END_TEST

START_TEST(generate_and_resize_survive_every_failed_allocation)
{
    fail_each_allocation(
        (struct store_cmd){.type = STORE_CMD_GENERATE_TOPIC_REPLICAS,
                           .topic = "topic3",
                           .replica_count = 3});
    fail_each_allocation(
        (struct store_cmd){.type = STORE_CMD_GENERATE_TOPIC_REPLICAS,
                           .topic = "topic1",
                           .replica_count = 4});
}
END_TEST

START_TEST(unreachable_survives_every_failed_allocation)
{
    char *names[] = {"broker3"};
    fail_each_allocation(
        (struct store_cmd){.type = STORE_CMD_HANDLE_UNREACHABLE,
                           .topic = "topic1",
                           .replica_count = 2,
                           .names = names,
                           .n_names = 1});
}
END_TEST

START_TEST(remove_survives_every_failed_allocation)
{
    fail_each_allocation(
        (struct store_cmd){.type = STORE_CMD_REMOVE_TOPIC, .topic = "topic2"});
}
END_TEST

static Suite *oom_suite(void)
{
    Suite *s = suite_create("apply_oom");
    TCase *tc = tcase_create("fail_nth_allocation");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, register_survives_every_failed_allocation);
    tcase_add_test(tc, keepalive_move_survives_every_failed_allocation);
    tcase_add_test(tc, set_down_survives_every_failed_allocation);
    tcase_add_test(tc, unregister_survives_every_failed_allocation);
    tcase_add_test(tc, generate_and_resize_survive_every_failed_allocation);
    tcase_add_test(tc, unreachable_survives_every_failed_allocation);
    tcase_add_test(tc, remove_survives_every_failed_allocation);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(oom_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
