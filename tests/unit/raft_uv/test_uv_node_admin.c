/* Tests of the node runtime's membership and leadership calls
 * (raft_uv_node_change, raft_uv_node_transfer in raft/uv/uv_node.c) with
 * the real core, a real libuv loop and a real LevelDB. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>

#include "uv_log.h"
#include "uv_node.h"

static char dir[64];
static struct store_ldb *db;
static uv_loop_t loop;
static struct raft_uv_node *node;
static struct raft_configuration conf;
static unsigned conf_entries; /* RAFT_ENTRY_CONF entries applied */

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
    (void)origin;
    (void)fatal;
    if (e->type == RAFT_ENTRY_CONF) {
        conf_entries++;
    }
    return 0;
}

static void change_cb(void *arg, int rv, raft_index index)
{
    struct waiter *w = arg;
    ck_assert(!w->done); /* exactly once */
    w->done = true;
    w->rv = rv;
    w->index = index;
}

static void start_node(unsigned proposal_timeout_ms)
{
    struct raft_uv_node_config c;
    memset(&c, 0, sizeof c);
    c.loop = &loop;
    c.db = db;
    c.id = 1;
    c.seed = 42;
    c.tick_ms = 10;
    c.proposal_timeout_ms = proposal_timeout_ms;
    /* Elections (and check-quorum) far beyond any proposal timeout here:
     * a leader that loses its quorum keeps leading while a test looks. */
    c.election_ticks = 3000;
    c.bootstrap = &conf;
    c.apply = apply_cb;
    ck_assert_int_eq(raft_uv_node_start(&c, &node), 0);
}

static void closed_cb(void *arg)
{
    *(bool *)arg = true;
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
    strcpy(dir, "/tmp/goulette-uvadmin-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(store_ldb_open(dir, NULL, &db), 0);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    raft_configuration_init(&conf);
    ck_assert_int_eq(
        raft_configuration_add(&conf, 1, "127.0.0.1:1", RAFT_VOTER), 0);
    conf_entries = 0;
}

static void teardown(void)
{
    char cmd[128];
    if (node != NULL) {
        bool closed = false;
        raft_uv_node_close(node, closed_cb, &closed);
        run_until(&closed);
        node = NULL;
    }
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    raft_configuration_fini(&conf);
    store_ldb_close(db);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static const struct raft_server *server(raft_id id)
{
    struct raft_uv_node_status st;
    raft_uv_node_status(node, &st);
    return raft_configuration_get(st.conf, id);
}

/* Run the change and wait for its verdict. */
static int change(enum raft_conf_change_type type,
                  raft_id id,
                  const char *address)
{
    struct waiter w = {0};
    int rv = raft_uv_node_change(node, type, id, address, change_cb, &w);
    if (rv != 0) {
        ck_assert(!w.done);
        return rv;
    }
    run_until(&w.done);
    return w.rv;
}

START_TEST(a_learner_is_added_then_removed)
{
    const struct raft_server *s;
    unsigned before;

    start_node(0);
    before = conf_entries;
    ck_assert_int_eq(change(RAFT_CONF_ADD_LEARNER, 2, "127.0.0.1:2"), 0);
    s = server(2);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(s->role, RAFT_LEARNER);
    ck_assert_str_eq(s->address, "127.0.0.1:2");
    ck_assert_uint_eq(conf_entries, before + 1); /* committed and applied */
    ck_assert_int_eq(change(RAFT_CONF_REMOVE, 2, NULL), 0);
    ck_assert_ptr_null(server(2));
    ck_assert_uint_eq(conf_entries, before + 2);
}
END_TEST

START_TEST(the_core_refusals_reach_the_callback)
{
    start_node(0);
    ck_assert_int_eq(change(RAFT_CONF_ADD_LEARNER, 2, "127.0.0.1:2"), 0);
    ck_assert_int_eq(change(RAFT_CONF_ADD_LEARNER, 2, "127.0.0.1:3"), -EEXIST);
    ck_assert_int_eq(change(RAFT_CONF_PROMOTE, 9, NULL), GOULETTE_ENOTFOUND);
    ck_assert_int_eq(change(RAFT_CONF_PROMOTE, 1, NULL), -EINVAL);
    ck_assert_int_eq(change(RAFT_CONF_REMOVE, 9, NULL), GOULETTE_ENOTFOUND);
    ck_assert_int_eq(change(RAFT_CONF_REMOVE, 1, NULL), -EINVAL);
}
END_TEST

START_TEST(bad_arguments_are_refused_without_a_callback)
{
    char longaddr[RAFT_ADDRESS_MAX + 8];
    start_node(0);
    memset(longaddr, 'a', sizeof longaddr - 1);
    longaddr[sizeof longaddr - 1] = '\0';
    ck_assert_int_eq(change(RAFT_CONF_ADD_LEARNER, 0, "127.0.0.1:2"), -EINVAL);
    ck_assert_int_eq(change(RAFT_CONF_ADD_LEARNER, 2, NULL), -EINVAL);
    ck_assert_int_eq(change(RAFT_CONF_ADD_LEARNER, 2, ""), -EINVAL);
    ck_assert_int_eq(change(RAFT_CONF_ADD_LEARNER, 2, longaddr), -EINVAL);
    ck_assert_int_eq(change((enum raft_conf_change_type)42, 2, NULL), -EINVAL);
}
END_TEST

START_TEST(a_promotion_without_the_learner_cannot_commit)
{
    const struct raft_server *s;
    start_node(200);
    ck_assert_int_eq(change(RAFT_CONF_ADD_LEARNER, 2, "127.0.0.1:2"), 0);
    /* Two voters need both: member 2 does not exist, so the entry is
     * appended (the new configuration is active) but never commits. */
    ck_assert_int_eq(change(RAFT_CONF_PROMOTE, 2, NULL), GOULETTE_ENOQUORUM);
    s = server(2);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(s->role, RAFT_VOTER);
    /* The uncommitted change blocks the next one. */
    ck_assert_int_eq(change(RAFT_CONF_REMOVE, 2, NULL), GOULETTE_ECONFCHANGE);
}
END_TEST

START_TEST(a_transfer_needs_another_voter)
{
    start_node(0);
    ck_assert_int_eq(raft_uv_node_transfer(node, 7), GOULETTE_ENOTFOUND);
    ck_assert_int_eq(change(RAFT_CONF_ADD_LEARNER, 2, "127.0.0.1:2"), 0);
    ck_assert_int_eq(raft_uv_node_transfer(node, 2), GOULETTE_ENOTFOUND);
    ck_assert_int_eq(raft_uv_node_transfer(node, 1), GOULETTE_ENOTFOUND);
}
END_TEST

START_TEST(a_member_without_a_leader_refuses_at_once)
{
    struct waiter w = {0};
    int rv;
    /* Two voters, the other one absent: nobody can win an election. */
    ck_assert_int_eq(
        raft_configuration_add(&conf, 2, "127.0.0.1:2", RAFT_VOTER), 0);
    start_node(0);
    rv = raft_uv_node_change(node, RAFT_CONF_ADD_LEARNER, 3, "127.0.0.1:3",
                             change_cb, &w);
    ck_assert(rv == GOULETTE_ENOLEADER || rv == GOULETTE_ENOTLEADER);
    ck_assert(!w.done);
    rv = raft_uv_node_transfer(node, 2);
    ck_assert(rv == GOULETTE_ENOLEADER || rv == GOULETTE_ENOTLEADER);
}
END_TEST

START_TEST(a_change_waiting_at_close_fails_with_shutdown)
{
    struct waiter w = {0};
    bool closed = false;
    start_node(60000);
    ck_assert_int_eq(change(RAFT_CONF_ADD_LEARNER, 2, "127.0.0.1:2"), 0);
    /* Never commits (see above); close fails it. */
    ck_assert_int_eq(
        raft_uv_node_change(node, RAFT_CONF_PROMOTE, 2, NULL, change_cb, &w),
        0);
    ck_assert(!w.done);
    raft_uv_node_close(node, closed_cb, &closed);
    node = NULL;
    ck_assert(w.done);
    ck_assert_int_eq(w.rv, GOULETTE_ESHUTDOWN);
    run_until(&closed);
}
END_TEST

static Suite *uv_node_admin_suite(void)
{
    Suite *s = suite_create("uv_node_admin");
    TCase *tc = tcase_create("change");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_learner_is_added_then_removed);
    tcase_add_test(tc, the_core_refusals_reach_the_callback);
    tcase_add_test(tc, bad_arguments_are_refused_without_a_callback);
    tcase_add_test(tc, a_promotion_without_the_learner_cannot_commit);
    tcase_add_test(tc, a_change_waiting_at_close_fails_with_shutdown);
    suite_add_tcase(s, tc);
    tc = tcase_create("transfer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_transfer_needs_another_voter);
    tcase_add_test(tc, a_member_without_a_leader_refuses_at_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(uv_node_admin_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
