/* Unit tests of the durable Raft log (raft/uv/uv_log.c) on a real LevelDB in
 * a temporary directory. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <goulette/err.h>

#include "uv_log.h"

static char dir[64];
static struct store_ldb *db;

static void setup(void)
{
    strcpy(dir, "/tmp/goulette-uvlog-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(store_ldb_open(dir, NULL, &db), 0);
}

static void teardown(void)
{
    char cmd[128];
    store_ldb_close(db);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void reopen(void)
{
    store_ldb_close(db);
    ck_assert_int_eq(store_ldb_open(dir, NULL, &db), 0);
}

static struct raft_entry entry(raft_index index, raft_term term, char *text)
{
    struct raft_entry e;
    e.index = index;
    e.term = term;
    e.type = text != NULL ? RAFT_ENTRY_NORMAL : RAFT_ENTRY_BARRIER;
    e.data.base = text;
    e.data.len = text != NULL ? strlen(text) : 0;
    return e;
}

static void write_batch(void (*fill)(struct store_ldb_batch *, void *),
                        void *arg)
{
    struct store_ldb_batch *b = store_ldb_batch_new();
    fill(b, arg);
    ck_assert_int_eq(store_ldb_write(db, b), 0);
    store_ldb_batch_free(b);
}

struct append_arg
{
    struct raft_uv_log *l;
    struct raft_entry *e;
    unsigned n;
};

static void fill_append(struct store_ldb_batch *b, void *arg)
{
    struct append_arg *a = arg;
    ck_assert_int_eq(raft_uv_log_append(a->l, b, a->e, a->n), 0);
}

static void append(struct raft_uv_log *l, struct raft_entry *e, unsigned n)
{
    struct append_arg a = {l, e, n};
    write_batch(fill_append, &a);
}

static void assert_entry(const struct raft_entry *e,
                         raft_index index,
                         raft_term term,
                         const char *text)
{
    ck_assert_uint_eq(e->index, index);
    ck_assert_uint_eq(e->term, term);
    if (text == NULL) {
        ck_assert_int_eq(e->type, RAFT_ENTRY_BARRIER);
        ck_assert_uint_eq(e->data.len, 0);
    } else {
        ck_assert_int_eq(e->type, RAFT_ENTRY_NORMAL);
        ck_assert_uint_eq(e->data.len, strlen(text));
        ck_assert(memcmp(e->data.base, text, e->data.len) == 0);
    }
}

START_TEST(empty_database_loads_empty_state)
{
    struct raft_uv_log_state s;
    ck_assert_int_eq(raft_uv_log_load(db, NULL, &s), 0);
    ck_assert_uint_eq(s.n_entries, 0);
    ck_assert_uint_eq(s.hard_state.term, 0);
    ck_assert_uint_eq(s.snapshot.index, 0);
    raft_uv_log_state_fini(&s);
}
END_TEST

START_TEST(appended_entries_survive_reopen)
{
    struct raft_uv_log_state s;
    struct raft_uv_log l = {0, 0};
    struct raft_entry e[3] = {entry(1, 1, NULL), entry(2, 1, "a"),
                              entry(3, 2, "bcd")};
    append(&l, e, 3);
    ck_assert_uint_eq(l.first, 1);
    ck_assert_uint_eq(l.last, 3);
    reopen();
    ck_assert_int_eq(raft_uv_log_load(db, NULL, &s), 0);
    ck_assert_uint_eq(s.n_entries, 3);
    assert_entry(&s.entries[0], 1, 1, NULL);
    assert_entry(&s.entries[1], 2, 1, "a");
    assert_entry(&s.entries[2], 3, 2, "bcd");
    raft_uv_log_state_fini(&s);
}
END_TEST

START_TEST(append_over_a_conflict_truncates_the_old_suffix)
{
    struct raft_uv_log_state s;
    struct raft_uv_log l = {0, 0};
    struct raft_entry old[4] = {entry(1, 1, "a"), entry(2, 1, "b"),
                                entry(3, 1, "c"), entry(4, 1, "d")};
    struct raft_entry repl[1] = {entry(2, 2, "x")};
    append(&l, old, 4);
    append(&l, repl, 1);
    ck_assert_uint_eq(l.last, 2);
    ck_assert_int_eq(raft_uv_log_load(db, NULL, &s), 0);
    ck_assert_uint_eq(s.n_entries, 2);
    assert_entry(&s.entries[0], 1, 1, "a");
    assert_entry(&s.entries[1], 2, 2, "x");
    raft_uv_log_state_fini(&s);
}
END_TEST

static void fill_hard_state(struct store_ldb_batch *b, void *arg)
{
    ck_assert_int_eq(raft_uv_log_hard_state(b, arg), 0);
}

START_TEST(hard_state_round_trips)
{
    struct raft_uv_log_state s;
    struct raft_hard_state hs = {7, 3, 42};
    write_batch(fill_hard_state, &hs);
    reopen();
    ck_assert_int_eq(raft_uv_log_load(db, NULL, &s), 0);
    ck_assert_uint_eq(s.hard_state.term, 7);
    ck_assert_uint_eq(s.hard_state.vote, 3);
    ck_assert_uint_eq(s.hard_state.commit, 42);
    raft_uv_log_state_fini(&s);
}
END_TEST

struct snap_arg
{
    struct raft_uv_log *l;
    struct raft_snapshot_meta *m;
};

/* A snapshot this member took, then compaction behind it. */
static void fill_snapshot(struct store_ldb_batch *b, void *arg)
{
    struct snap_arg *a = arg;
    ck_assert_int_eq(raft_uv_log_snapshot_record(b, a->m), 0);
    raft_uv_log_compact(a->l, b, a->m->index + 1);
}

/* A snapshot received from the leader. */
static void fill_install(struct store_ldb_batch *b, void *arg)
{
    struct snap_arg *a = arg;
    ck_assert_int_eq(raft_uv_log_snapshot_install(a->l, b, a->m), 0);
}

START_TEST(snapshot_metadata_round_trips_and_drops_covered_entries)
{
    struct raft_uv_log_state s;
    struct raft_uv_log l = {0, 0};
    struct raft_snapshot_meta m;
    struct raft_entry e[5] = {entry(1, 1, "a"), entry(2, 1, "b"),
                              entry(3, 2, "c"), entry(4, 2, "d"),
                              entry(5, 2, "e")};
    struct snap_arg a = {&l, &m};

    append(&l, e, 5);
    memset(&m, 0, sizeof m);
    raft_configuration_init(&m.conf);
    ck_assert_int_eq(
        raft_configuration_add(&m.conf, 1, "127.0.0.1:7001", RAFT_VOTER), 0);
    ck_assert_int_eq(
        raft_configuration_add(&m.conf, 2, "127.0.0.1:7002", RAFT_LEARNER), 0);
    m.index = 3;
    m.term = 2;
    m.conf_index = 1;
    m.size = 12345;
    write_batch(fill_snapshot, &a);
    ck_assert_uint_eq(l.first, 4);
    reopen();
    ck_assert_int_eq(raft_uv_log_load(db, NULL, &s), 0);
    ck_assert_uint_eq(s.snapshot.index, 3);
    ck_assert_uint_eq(s.snapshot.term, 2);
    ck_assert_uint_eq(s.snapshot.conf_index, 1);
    ck_assert_uint_eq(s.snapshot.size, 12345);
    ck_assert_uint_eq(s.snapshot.conf.n, 2);
    ck_assert_str_eq(raft_configuration_get(&s.snapshot.conf, 2)->address,
                     "127.0.0.1:7002");
    ck_assert_int_eq(raft_configuration_get(&s.snapshot.conf, 2)->role,
                     RAFT_LEARNER);
    ck_assert_uint_eq(s.n_entries, 2);
    assert_entry(&s.entries[0], 4, 2, "d");
    assert_entry(&s.entries[1], 5, 2, "e");
    raft_uv_log_state_fini(&s);
    raft_configuration_fini(&m.conf);
}
END_TEST

START_TEST(an_installed_snapshot_replaces_the_whole_log)
{
    struct raft_uv_log_state s;
    struct raft_uv_log l = {0, 0};
    struct raft_snapshot_meta m;
    struct raft_entry e[3] = {entry(1, 1, "a"), entry(2, 1, "b"),
                              entry(3, 1, "c")};
    struct raft_entry next[1] = {entry(10, 4, "after")};
    struct snap_arg a = {&l, &m};

    append(&l, e, 3);
    memset(&m, 0, sizeof m);
    raft_configuration_init(&m.conf);
    raft_configuration_add(&m.conf, 1, "h:1", RAFT_VOTER);
    m.index = 9;
    m.term = 4;
    write_batch(fill_install, &a);
    ck_assert_uint_eq(l.last, 0);
    ck_assert_int_eq(raft_uv_log_load(db, NULL, &s), 0);
    ck_assert_uint_eq(s.snapshot.index, 9);
    ck_assert_uint_eq(s.n_entries, 0);
    raft_uv_log_state_fini(&s);
    append(&l, next, 1);
    reopen();
    ck_assert_int_eq(raft_uv_log_load(db, NULL, &s), 0);
    ck_assert_uint_eq(s.n_entries, 1);
    assert_entry(&s.entries[0], 10, 4, "after");
    raft_uv_log_state_fini(&s);
    raft_configuration_fini(&m.conf);
}
END_TEST

START_TEST(trailing_entries_below_the_snapshot_are_loaded)
{
    struct raft_uv_log_state s;
    struct raft_uv_log l = {0, 0};
    struct raft_snapshot_meta m;
    struct raft_entry e[4] = {entry(1, 1, "a"), entry(2, 1, "b"),
                              entry(3, 1, "c"), entry(4, 1, "d")};
    struct store_ldb_batch *b;

    append(&l, e, 4);
    memset(&m, 0, sizeof m);
    raft_configuration_init(&m.conf);
    raft_configuration_add(&m.conf, 1, "h:1", RAFT_VOTER);
    m.index = 3;
    m.term = 1;
    b = store_ldb_batch_new();
    ck_assert_int_eq(raft_uv_log_snapshot_record(b, &m), 0);
    raft_uv_log_compact(&l, b, 2); /* keep 2 and 3 as trailing entries */
    ck_assert_int_eq(store_ldb_write(db, b), 0);
    store_ldb_batch_free(b);
    ck_assert_int_eq(raft_uv_log_load(db, NULL, &s), 0);
    ck_assert_uint_eq(s.n_entries, 3);
    assert_entry(&s.entries[0], 2, 1, "b");
    assert_entry(&s.entries[2], 4, 1, "d");
    raft_uv_log_init(&l, &s);
    ck_assert_uint_eq(l.first, 2);
    ck_assert_uint_eq(l.last, 4);
    raft_uv_log_state_fini(&s);
    raft_configuration_fini(&m.conf);
}
END_TEST

START_TEST(compaction_then_append_keeps_the_log_contiguous)
{
    struct raft_uv_log_state s;
    struct raft_uv_log l = {0, 0};
    struct raft_entry e[3] = {entry(1, 1, "a"), entry(2, 1, "b"),
                              entry(3, 1, "c")};
    struct raft_entry more[1] = {entry(4, 1, "d")};
    struct store_ldb_batch *b = store_ldb_batch_new();
    struct raft_snapshot_meta m;
    struct snap_arg a = {&l, &m};

    append(&l, e, 3);
    raft_uv_log_compact(&l, b, 3);
    ck_assert_int_eq(store_ldb_write(db, b), 0);
    store_ldb_batch_free(b);
    ck_assert_uint_eq(l.first, 3);
    append(&l, more, 1);
    /* Without snapshot metadata, entries must start at 1: a log that was
     * compacted must have a snapshot, so this is reported as damage. */
    ck_assert_int_eq(raft_uv_log_load(db, NULL, &s), GOULETTE_ECORRUPT);
    memset(&m, 0, sizeof m);
    raft_configuration_init(&m.conf);
    raft_configuration_add(&m.conf, 1, "h:1", RAFT_VOTER);
    m.index = 2;
    m.term = 1;
    write_batch(fill_snapshot, &a);
    ck_assert_int_eq(raft_uv_log_load(db, NULL, &s), 0);
    ck_assert_uint_eq(s.n_entries, 2);
    assert_entry(&s.entries[0], 3, 1, "c");
    assert_entry(&s.entries[1], 4, 1, "d");
    raft_uv_log_state_fini(&s);
    raft_configuration_fini(&m.conf);
}
END_TEST

START_TEST(a_damaged_entry_is_reported_as_corruption)
{
    struct raft_uv_log_state s;
    struct raft_uv_log l = {0, 0};
    struct raft_entry e[2] = {entry(1, 1, "a"), entry(2, 1, "hello")};
    unsigned char key[10] = {'R', 'E', 0, 0, 0, 0, 0, 0, 0, 2};
    struct goulette_buf val;
    struct store_ldb_batch *b;

    append(&l, e, 2);
    ck_assert_int_eq(store_ldb_get(db, NULL, key, sizeof key, &val), 0);
    ((unsigned char *)val.base)[val.len - 1] ^= 0x01; /* one bit flipped */
    b = store_ldb_batch_new();
    store_ldb_batch_put(b, key, sizeof key, val.base, val.len);
    ck_assert_int_eq(store_ldb_write(db, b), 0);
    store_ldb_batch_free(b);
    free(val.base);
    ck_assert_int_eq(raft_uv_log_load(db, NULL, &s), GOULETTE_ECORRUPT);
    ck_assert_uint_eq(s.n_entries, 0);
}
END_TEST

START_TEST(a_gap_in_the_log_is_reported_as_corruption)
{
    struct raft_uv_log_state s;
    struct raft_uv_log l = {0, 0};
    struct raft_entry e[3] = {entry(1, 1, "a"), entry(2, 1, "b"),
                              entry(3, 1, "c")};
    unsigned char key[10] = {'R', 'E', 0, 0, 0, 0, 0, 0, 0, 2};
    struct store_ldb_batch *b;

    append(&l, e, 3);
    b = store_ldb_batch_new();
    store_ldb_batch_delete(b, key, sizeof key);
    ck_assert_int_eq(store_ldb_write(db, b), 0);
    store_ldb_batch_free(b);
    ck_assert_int_eq(raft_uv_log_load(db, NULL, &s), GOULETTE_ECORRUPT);
}
END_TEST

START_TEST(a_damaged_hard_state_is_reported_as_corruption)
{
    struct raft_uv_log_state s;
    unsigned char key[2] = {'R', 'H'};
    struct store_ldb_batch *b = store_ldb_batch_new();
    store_ldb_batch_put(b, key, sizeof key, "garbage", 7);
    ck_assert_int_eq(store_ldb_write(db, b), 0);
    store_ldb_batch_free(b);
    ck_assert_int_eq(raft_uv_log_load(db, NULL, &s), GOULETTE_ECORRUPT);
}
END_TEST

START_TEST(bootstrap_writes_the_initial_configuration_once)
{
    struct raft_uv_log_state s;
    struct raft_configuration conf, got;

    raft_configuration_init(&conf);
    raft_configuration_init(&got);
    raft_configuration_add(&conf, 1, "127.0.0.1:7001", RAFT_VOTER);
    raft_configuration_add(&conf, 2, "127.0.0.1:7002", RAFT_VOTER);
    ck_assert_int_eq(raft_uv_log_bootstrap(db, &conf), 0);
    ck_assert_int_eq(raft_uv_log_bootstrap(db, &conf), -EEXIST);
    ck_assert_int_eq(raft_uv_log_load(db, NULL, &s), 0);
    ck_assert_uint_eq(s.n_entries, 1);
    ck_assert_uint_eq(s.entries[0].index, 1);
    ck_assert_uint_eq(s.entries[0].term, 1);
    ck_assert_int_eq(s.entries[0].type, RAFT_ENTRY_CONF);
    ck_assert_int_eq(raft_configuration_decode(&s.entries[0].data, &got), 0);
    ck_assert_uint_eq(got.n, 2);
    ck_assert_str_eq(raft_configuration_get(&got, 2)->address,
                     "127.0.0.1:7002");
    raft_configuration_fini(&got);
    raft_configuration_fini(&conf);
    raft_uv_log_state_fini(&s);
}
END_TEST

static Suite *uv_log_suite(void)
{
    Suite *s = suite_create("uv_log");
    TCase *tc = tcase_create("persist");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, empty_database_loads_empty_state);
    tcase_add_test(tc, appended_entries_survive_reopen);
    tcase_add_test(tc, append_over_a_conflict_truncates_the_old_suffix);
    tcase_add_test(tc, hard_state_round_trips);
    tcase_add_test(tc, snapshot_metadata_round_trips_and_drops_covered_entries);
    tcase_add_test(tc, compaction_then_append_keeps_the_log_contiguous);
    tcase_add_test(tc, an_installed_snapshot_replaces_the_whole_log);
    tcase_add_test(tc, trailing_entries_below_the_snapshot_are_loaded);
    tcase_add_test(tc, bootstrap_writes_the_initial_configuration_once);
    suite_add_tcase(s, tc);

    tc = tcase_create("damage");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_damaged_entry_is_reported_as_corruption);
    tcase_add_test(tc, a_gap_in_the_log_is_reported_as_corruption);
    tcase_add_test(tc, a_damaged_hard_state_is_reported_as_corruption);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(uv_log_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
