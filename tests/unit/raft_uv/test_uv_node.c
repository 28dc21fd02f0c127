/* Tests of the node runtime (raft/uv/uv_node.c) with the real core, a real
 * libuv loop and a real LevelDB: a single-member cluster. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>

#include "uv_log.h"
#include "uv_node.h"

#define MAX_APPLIED 4096

static char dir[64];
static struct store_ldb *db;
static uv_loop_t loop;
static struct raft_uv_node *node;
static struct raft_configuration conf;
static bool expect_origin; /* every applied entry has a local waiter */

/* The test's state machine: the applied entries' data, by index. */
static struct
{
    raft_index index[MAX_APPLIED];
    char data[MAX_APPLIED][32];
    unsigned n;
    raft_index last;
} sm;

struct waiter
{
    bool done;
    int rv;
    raft_index index;
};

static int apply_cb(void *data,
                    const struct raft_entry *e,
                    void *origin,
                    int *fatal)
{
    (void)data;
    (void)fatal;
    /* Entries proposed here, while their proposer waits, carry it. */
    if (e->type == RAFT_ENTRY_NORMAL && expect_origin) {
        ck_assert_ptr_nonnull(origin);
        ck_assert(!((struct waiter *)origin)->done);
    }
    ck_assert_uint_gt(e->index, sm.last); /* in order, each once */
    sm.last = e->index;
    if (e->type != RAFT_ENTRY_NORMAL) {
        return 0;
    }
    ck_assert_uint_lt(sm.n, MAX_APPLIED);
    sm.index[sm.n] = e->index;
    ck_assert_uint_lt(e->data.len, sizeof sm.data[0]);
    memcpy(sm.data[sm.n], e->data.base, e->data.len);
    sm.data[sm.n][e->data.len] = '\0';
    sm.n++;
    /* The state machine's own verdict reaches the proposer. */
    return strncmp(e->data.base, "reject", 6) == 0 ? -EINVAL : 0;
}

static void propose_cb(void *arg, int rv, raft_index index)
{
    struct waiter *w = arg;
    ck_assert(!w->done); /* exactly once */
    w->done = true;
    w->rv = rv;
    w->index = index;
}

static void read_cb(void *arg, int rv)
{
    struct waiter *w = arg;
    ck_assert(!w->done);
    w->done = true;
    w->rv = rv;
}

static void start_node(uint64_t applied)
{
    struct raft_uv_node_config c;
    memset(&c, 0, sizeof c);
    c.loop = &loop;
    c.db = db;
    c.id = 1;
    c.seed = 42;
    c.tick_ms = 10;
    c.applied = applied;
    c.bootstrap = &conf;
    c.apply = apply_cb;
    ck_assert_int_eq(raft_uv_node_start(&c, &node), 0);
}

static void closed_cb(void *arg)
{
    *(bool *)arg = true;
}

static void stop_node(void)
{
    bool closed = false;
    raft_uv_node_close(node, closed_cb, &closed);
    while (!closed) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    node = NULL;
}

static void run_until(bool *flag)
{
    unsigned spins = 0;
    while (!*flag) {
        uv_run(&loop, UV_RUN_ONCE);
        ck_assert_uint_lt(++spins, 1000000);
    }
}

static void setup(void)
{
    strcpy(dir, "/tmp/goulette-uvnode-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(store_ldb_open(dir, NULL, &db), 0);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    raft_configuration_init(&conf);
    ck_assert_int_eq(raft_configuration_add(&conf, 1, "127.0.0.1:1", 1), 0);
    memset(&sm, 0, sizeof sm);
    expect_origin = true;
}

static void teardown(void)
{
    char cmd[128];
    if (node != NULL) {
        stop_node();
    }
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    raft_configuration_fini(&conf);
    store_ldb_close(db);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static struct goulette_buf text(const char *s)
{
    struct goulette_buf b = {(void *)s, strlen(s)};
    return b;
}

START_TEST(a_single_member_applies_proposals_in_order)
{
    struct waiter w[50];
    char buf[50][16];
    unsigned i;

    start_node(0);
    memset(w, 0, sizeof w);
    for (i = 0; i < 50; i++) {
        struct goulette_buf b;
        snprintf(buf[i], sizeof buf[i], "v%u", i);
        b = text(buf[i]);
        ck_assert_int_eq(raft_uv_node_propose(node, &b, propose_cb, &w[i]), 0);
        ck_assert(!w[i].done); /* never synchronously */
    }
    run_until(&w[49].done);
    for (i = 0; i < 50; i++) {
        ck_assert(w[i].done);
        ck_assert_int_eq(w[i].rv, 0);
        ck_assert_uint_eq(w[i].index, sm.index[i]);
        ck_assert_str_eq(sm.data[i], buf[i]);
        if (i > 0) {
            ck_assert_uint_eq(w[i].index, w[i - 1].index + 1);
        }
    }
    ck_assert_uint_eq(sm.n, 50);
}
END_TEST

START_TEST(the_state_machine_verdict_reaches_the_proposer)
{
    struct waiter ok = {0}, bad = {0};
    struct goulette_buf a = text("fine"), b = text("reject me");
    start_node(0);
    ck_assert_int_eq(raft_uv_node_propose(node, &a, propose_cb, &ok), 0);
    ck_assert_int_eq(raft_uv_node_propose(node, &b, propose_cb, &bad), 0);
    run_until(&bad.done);
    ck_assert(ok.done);
    ck_assert_int_eq(ok.rv, 0);
    ck_assert_int_eq(bad.rv, -EINVAL);
}
END_TEST

START_TEST(a_read_completes_once_applied)
{
    struct waiter p = {0}, r = {0};
    struct goulette_buf a = text("x");
    start_node(0);
    ck_assert_int_eq(raft_uv_node_propose(node, &a, propose_cb, &p), 0);
    run_until(&p.done);
    ck_assert_int_eq(raft_uv_node_read(node, read_cb, &r), 0);
    run_until(&r.done);
    ck_assert_int_eq(r.rv, 0);
    ck_assert_uint_ge(sm.last, p.index);
}
END_TEST

START_TEST(restart_keeps_the_log_and_applies_nothing_twice)
{
    struct waiter w1 = {0}, w2 = {0};
    struct goulette_buf a = text("before"), b = text("after");
    raft_index applied;

    start_node(0);
    ck_assert_int_eq(raft_uv_node_propose(node, &a, propose_cb, &w1), 0);
    run_until(&w1.done);
    ck_assert_int_eq(w1.rv, 0);
    applied = sm.last;
    stop_node();
    store_ldb_close(db);
    ck_assert_int_eq(store_ldb_open(dir, NULL, &db), 0);

    start_node(applied); /* the state machine kept what it applied */
    ck_assert_int_eq(raft_uv_node_propose(node, &b, propose_cb, &w2), 0);
    run_until(&w2.done);
    ck_assert_int_eq(w2.rv, 0);
    ck_assert_uint_gt(w2.index, w1.index);
    ck_assert_uint_eq(sm.n, 2);
    ck_assert_str_eq(sm.data[0], "before");
    ck_assert_str_eq(sm.data[1], "after");
}
END_TEST

START_TEST(restart_with_a_lost_state_machine_reapplies_the_committed_log)
{
    struct waiter w[3];
    struct waiter r = {0};
    const char *vals[3] = {"a", "b", "c"};
    unsigned i;

    memset(w, 0, sizeof w);
    start_node(0);
    for (i = 0; i < 3; i++) {
        struct goulette_buf b = text(vals[i]);
        ck_assert_int_eq(raft_uv_node_propose(node, &b, propose_cb, &w[i]), 0);
    }
    run_until(&w[2].done);
    stop_node();
    memset(&sm, 0, sizeof sm);
    expect_origin = false; /* re-applied: nobody waits for these */
    start_node(0);
    /* Once the member leads again, a read confirms the committed log has
     * been applied again, in order. */
    ck_assert_int_eq(raft_uv_node_read(node, read_cb, &r), 0);
    run_until(&r.done);
    ck_assert_int_eq(r.rv, 0);
    ck_assert_uint_eq(sm.n, 3);
    for (i = 0; i < 3; i++) {
        ck_assert_str_eq(sm.data[i], vals[i]);
        ck_assert_uint_eq(sm.index[i], w[i].index);
    }
}
END_TEST

START_TEST(close_fails_waiting_proposals_with_eshutdown)
{
    struct waiter w = {0};
    struct goulette_buf a = text("never");
    bool closed = false;
    start_node(0);
    ck_assert_int_eq(raft_uv_node_propose(node, &a, propose_cb, &w), 0);
    raft_uv_node_close(node, closed_cb, &closed);
    node = NULL;
    ck_assert(w.done);
    ck_assert_int_eq(w.rv, GOULETTE_ESHUTDOWN);
    run_until(&closed);
}
END_TEST

START_TEST(a_damaged_log_refuses_to_start)
{
    struct raft_uv_node_config c;
    struct raft_uv_node *n = NULL;
    unsigned char key[10] = {'R', 'E', 0, 0, 0, 0, 0, 0, 0, 1};
    struct store_ldb_batch *b;
    struct waiter w = {0};
    struct goulette_buf a = text("x");

    start_node(0);
    ck_assert_int_eq(raft_uv_node_propose(node, &a, propose_cb, &w), 0);
    run_until(&w.done);
    stop_node();
    b = store_ldb_batch_new();
    store_ldb_batch_put(b, key, sizeof key, "junk!", 5);
    ck_assert_int_eq(store_ldb_write(db, b), 0);
    store_ldb_batch_free(b);

    memset(&c, 0, sizeof c);
    c.loop = &loop;
    c.db = db;
    c.id = 1;
    c.apply = apply_cb;
    c.bootstrap = &conf;
    ck_assert_int_eq(raft_uv_node_start(&c, &n), GOULETTE_ECORRUPT);
    ck_assert_ptr_null(n);
}
END_TEST

static Suite *uv_node_suite(void)
{
    Suite *s = suite_create("uv_node");
    TCase *tc = tcase_create("single");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_single_member_applies_proposals_in_order);
    tcase_add_test(tc, the_state_machine_verdict_reaches_the_proposer);
    tcase_add_test(tc, a_read_completes_once_applied);
    tcase_add_test(tc, restart_keeps_the_log_and_applies_nothing_twice);
    tcase_add_test(
        tc, restart_with_a_lost_state_machine_reapplies_the_committed_log);
    tcase_add_test(tc, close_fails_waiting_proposals_with_eshutdown);
    tcase_add_test(tc, a_damaged_log_refuses_to_start);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(uv_node_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
