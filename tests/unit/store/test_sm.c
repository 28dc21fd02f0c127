/* Unit tests for the state machine driver (store/sm.c) and the LevelDB
 * driver (store/ldb.c) on a real LevelDB in a temporary directory: entries
 * applied exactly once, reads as the mount shows them, numeric operation
 * order, persistence, format version, and crash consistency. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "goulette/err.h"
#include "goulette/ldb.h"
#include "goulette/store.h"

#include "helpers.h"

static char *dir;

static void setup(void)
{
    dir = helper_tmpdir();
}

static void teardown(void)
{
    helper_rmdir(dir);
    dir = NULL;
}

static int reg(struct store_sm *sm, uint64_t index, const char *id)
{
    struct store_cmd c = {.type = STORE_CMD_REGISTER_BROKER,
                          .timestamp_ns = 1720000000000000000LL,
                          .broker_id = (char *)id,
                          .address = "localhost:8081"};
    return helper_apply(sm, index, &c);
}

static int gen(struct store_sm *sm, uint64_t index, const char *t, uint32_t rc)
{
    struct store_cmd c = {.type = STORE_CMD_GENERATE_TOPIC_REPLICAS,
                          .timestamp_ns = 1720000001000000000LL,
                          .topic = (char *)t,
                          .replica_count = rc};
    return helper_apply(sm, index, &c);
}

static char *read_file(struct store_sm *sm, enum store_dir d, const char *n)
{
    struct goulette_buf b;
    ck_assert_int_eq(store_sm_read(sm, d, n, &b, NULL), 0);
    return b.base;
}

/* ---- open ---------------------------------------------------------------- */

START_TEST(new_store_is_empty_at_index_zero)
{
    struct store_sm *sm = helper_open(dir);
    ck_assert_uint_eq(store_sm_applied_index(sm), 0);
    ck_assert_uint_eq(store_sm_revision(sm), 0);
    ck_assert_uint_eq(store_sm_count(sm, STORE_DIR_TOPICS), 0);
    ck_assert_uint_eq(store_sm_count(sm, STORE_DIR_INCREMENT), 0);
    store_sm_close(sm);
    sm = helper_open(dir);
    ck_assert_uint_eq(store_sm_applied_index(sm), 0);
    store_sm_close(sm);
}
END_TEST

START_TEST(unknown_format_version_is_eversion)
{
    struct store_ldb *db;
    struct store_ldb_batch *b;
    struct store_sm_config cfg = {.path = dir};
    struct store_sm *sm = NULL;
    ck_assert_int_eq(store_ldb_open(dir, NULL, &db), 0);
    b = store_ldb_batch_new();
    store_ldb_batch_put(b, "Mv", 2, "\0\0\0\2", 4);
    ck_assert_int_eq(store_ldb_write(db, b), 0);
    store_ldb_batch_free(b);
    store_ldb_close(db);
    ck_assert_int_eq(store_sm_open(&cfg, &sm), GOULETTE_EVERSION);
    ck_assert_ptr_null(sm);
}
END_TEST

START_TEST(state_keys_without_version_are_corrupt)
{
    struct store_ldb *db;
    struct store_ldb_batch *b;
    struct store_sm_config cfg = {.path = dir};
    struct store_sm *sm = NULL;
    ck_assert_int_eq(store_ldb_open(dir, NULL, &db), 0);
    b = store_ldb_batch_new();
    store_ldb_batch_put(b, "Sr", 2, "\0\0\0\0\0\0\0\1", 8);
    ck_assert_int_eq(store_ldb_write(db, b), 0);
    store_ldb_batch_free(b);
    store_ldb_close(db);
    ck_assert_int_eq(store_sm_open(&cfg, &sm), GOULETTE_ECORRUPT);
}
END_TEST

START_TEST(corrupt_record_is_reported_corrupt)
{
    struct store_sm *sm = helper_open(dir);
    struct store_ldb *db;
    struct store_ldb_batch *b;
    struct store_sm_config cfg = {.path = dir};
    ck_assert_int_eq(reg(sm, 1, "b1"), 0);
    store_sm_close(sm);
    ck_assert_int_eq(store_ldb_open(dir, NULL, &db), 0);
    b = store_ldb_batch_new();
    store_ldb_batch_put(b, "Sbb1", 4, "short", 5);
    ck_assert_int_eq(store_ldb_write(db, b), 0);
    store_ldb_batch_free(b);
    store_ldb_close(db);
    sm = NULL;
    ck_assert_int_eq(store_sm_open(&cfg, &sm), GOULETTE_ECORRUPT);
}
END_TEST

START_TEST(unreadable_database_is_corrupt)
{
    char path[600];
    struct store_sm_config cfg = {.path = dir};
    struct store_sm *sm = helper_open(dir);
    FILE *f;
    store_sm_close(sm);
    snprintf(path, sizeof path, "%s/CURRENT", dir);
    f = fopen(path, "w");
    fputs("garbage", f);
    fclose(f);
    sm = NULL;
    ck_assert_int_eq(store_sm_open(&cfg, &sm), GOULETTE_ECORRUPT);
}
END_TEST

START_TEST(raft_keys_are_left_alone)
{
    struct store_ldb *db;
    struct store_ldb_batch *b;
    struct goulette_buf v;
    struct store_sm *sm;
    ck_assert_int_eq(store_ldb_open(dir, NULL, &db), 0);
    b = store_ldb_batch_new();
    store_ldb_batch_put(b, "Rlog", 4, "entry", 5);
    ck_assert_int_eq(store_ldb_write(db, b), 0);
    store_ldb_batch_free(b);
    store_ldb_close(db);
    sm = helper_open(dir);
    ck_assert_int_eq(reg(sm, 1, "b1"), 0);
    struct goulette_buf dump = helper_dump(sm);
    ck_assert_ptr_null(memmem(dump.base, dump.len, "Rlog", 4));
    free(dump.base);
    store_sm_close(sm);
    ck_assert_int_eq(store_ldb_open(dir, NULL, &db), 0);
    ck_assert_int_eq(store_ldb_get(db, NULL, "Rlog", 4, &v), 0);
    ck_assert_int_eq(memcmp(v.base, "entry", 5), 0);
    free(v.base);
    store_ldb_close(db);
}
END_TEST

START_TEST(store_shares_a_database_opened_by_the_caller)
{
    struct store_ldb *db = NULL;
    struct store_ldb_batch *b;
    struct store_sm_config cfg = {.path = "/nonexistent/unused"};
    struct store_sm *sm = NULL;
    struct goulette_buf v;
    ck_assert_int_eq(store_ldb_open(dir, NULL, &db), 0);
    cfg.db = db;
    ck_assert_int_eq(store_sm_open(&cfg, &sm), 0);
    ck_assert_int_eq(reg(sm, 1, "b1"), 0);
    /* The Raft runtime writes its keys through the same handle. */
    b = store_ldb_batch_new();
    store_ldb_batch_put(b, "Rhard", 5, "x", 1);
    ck_assert_int_eq(store_ldb_write(db, b), 0);
    store_ldb_batch_free(b);
    store_sm_close(sm);
    /* Closing the store left the database open. */
    ck_assert_int_eq(store_ldb_get(db, NULL, "Rhard", 5, &v), 0);
    free(v.base);
    sm = NULL;
    ck_assert_int_eq(store_sm_open(&cfg, &sm), 0);
    ck_assert_uint_eq(store_sm_applied_index(sm), 1);
    store_sm_close(sm);
    store_ldb_close(db);
}
END_TEST

/* ---- apply ----------------------------------------------------------------
 */

START_TEST(apply_reports_changes_and_revision)
{
    struct store_sm *sm = helper_open(dir);
    struct store_cmd c = {.type = STORE_CMD_REGISTER_BROKER,
                          .timestamp_ns = 5,
                          .broker_id = "b1",
                          .address = "h:1"};
    struct goulette_buf buf;
    struct store_sm_result res;
    ck_assert_int_eq(store_cmd_encode(&c, &buf), 0);
    ck_assert_int_eq(store_sm_apply(sm, 1, 1, buf.base, buf.len, &res), 0);
    ck_assert_int_eq(res.rv, 0);
    ck_assert_uint_eq(res.revision, 1);
    ck_assert_uint_eq(res.changes.n, 3);
    ck_assert_str_eq(res.changes.items[0].path, "brokers/b1");
    store_sm_result_fini(&res);
    /* The same index again: nothing. */
    ck_assert_int_eq(store_sm_apply(sm, 1, 1, buf.base, buf.len, &res), 0);
    ck_assert(res.already_applied);
    ck_assert_uint_eq(res.changes.n, 0);
    store_sm_result_fini(&res);
    /* The same command at the next index: judged again, rejected. */
    ck_assert_int_eq(store_sm_apply(sm, 2, 1, buf.base, buf.len, &res), 0);
    ck_assert_int_eq(res.rv, -EEXIST);
    ck_assert_uint_eq(res.revision, 1);
    ck_assert_uint_eq(store_sm_applied_index(sm), 2);
    store_sm_result_fini(&res);
    free(buf.base);
    store_sm_close(sm);
}
END_TEST

START_TEST(garbage_and_empty_entries_only_advance_the_index)
{
    struct store_sm *sm = helper_open(dir);
    struct store_sm_result res;
    ck_assert_int_eq(store_sm_apply(sm, 1, 1, "\xff\xff", 2, &res), 0);
    ck_assert_int_eq(res.rv, -EBADMSG);
    store_sm_result_fini(&res);
    ck_assert_int_eq(store_sm_apply(sm, 5, 2, NULL, 0, &res), 0);
    ck_assert_int_eq(res.rv, 0);
    store_sm_result_fini(&res);
    ck_assert_uint_eq(store_sm_applied_index(sm), 5);
    ck_assert_uint_eq(store_sm_applied_term(sm), 2);
    ck_assert_uint_eq(store_sm_revision(sm), 0);
    store_sm_close(sm);
    sm = helper_open(dir);
    ck_assert_uint_eq(store_sm_applied_index(sm), 5);
    ck_assert_uint_eq(store_sm_applied_term(sm), 2);
    store_sm_close(sm);
}
END_TEST

/* ---- reads ----------------------------------------------------------------
 */

START_TEST(files_read_as_json_lines_with_revisions)
{
    struct store_sm *sm = helper_open(dir);
    struct store_stat st;
    struct goulette_buf b;
    ck_assert_int_eq(reg(sm, 1, "broker1"), 0);
    ck_assert_int_eq(reg(sm, 2, "broker2"), 0);
    ck_assert_int_eq(reg(sm, 3, "broker3"), 0);
    ck_assert_int_eq(gen(sm, 4, "topic1", 2), 0);
    ck_assert_int_eq(store_sm_read(sm, STORE_DIR_TOPICS, "topic1", &b, &st), 0);
    ck_assert_str_eq(b.base,
                     "{\"topic\":\"topic1\",\"brokers\":[{\"broker_id\":"
                     "\"broker3\",\"address\":\"localhost:8081\",\"status\":"
                     "0},{\"broker_id\":\"broker1\",\"address\":"
                     "\"localhost:8081\",\"status\":0}],\"version\":"
                     "1720000001000000000,\"timestamp\":1720000001,"
                     "\"replica_count\":2}\n");
    ck_assert_uint_eq(st.size, b.len);
    ck_assert_uint_eq(st.create_revision, 4);
    ck_assert_uint_eq(st.mod_revision, 4);
    ck_assert_uint_eq(st.version, 1);
    ck_assert_int_eq(st.mtime_ns, 1720000001000000000LL);
    free(b.base);

    char *op = read_file(sm, STORE_DIR_OPERATIONS, "4");
    ck_assert_ptr_nonnull(strstr(op,
                                 "\"id\":4,\"function\":"
                                 "\"generateTopicReplicas\""));
    ck_assert_ptr_nonnull(strstr(op, "\"timestamp\":1720000001}\n"));
    free(op);
    char *counter = read_file(sm, STORE_DIR_INCREMENT, "operation");
    ck_assert_str_eq(counter, "4\n");
    free(counter);
    ck_assert_int_eq(store_sm_stat(sm, STORE_DIR_INCREMENT, "operation", &st),
                     0);
    ck_assert_uint_eq(st.version, 4);
    ck_assert_uint_eq(st.size, 2);

    ck_assert_int_eq(store_sm_read(sm, STORE_DIR_TOPICS, "nope", &b, NULL),
                     -ENOENT);
    ck_assert_int_eq(store_sm_stat(sm, STORE_DIR_OPERATIONS, "5", &st),
                     -ENOENT);
    ck_assert_int_eq(store_sm_stat(sm, STORE_DIR_OPERATIONS, "04", &st),
                     -ENOENT);
    ck_assert_int_eq(store_sm_stat(sm, STORE_DIR_OPERATIONS, "0", &st),
                     -ENOENT);
    ck_assert_int_eq(store_sm_stat(sm, STORE_DIR_INCREMENT, "other", &st),
                     -ENOENT);

    struct store_topic_view tv;
    ck_assert_int_eq(store_sm_topic_get(sm, "topic1", &tv), 0);
    ck_assert_uint_eq(tv.n_replicas, 2);
    ck_assert_str_eq(tv.replicas[0].broker_id, "broker3");
    struct store_broker_view bv;
    ck_assert_int_eq(store_sm_broker_get(sm, "broker2", &bv), 0);
    ck_assert_str_eq(bv.address, "localhost:8081");
    ck_assert_int_eq(bv.status, STORE_BROKER_HEALTHY);
    ck_assert_int_eq(store_sm_broker_get(sm, "broker9", &bv), -ENOENT);
    store_sm_close(sm);
}
END_TEST

struct collect
{
    char names[2048][16];
    size_t n;
    size_t stop_at;
};

static int collect_cb(void *arg, const char *name)
{
    struct collect *c = arg;
    snprintf(c->names[c->n++], 16, "%s", name);
    return c->n == c->stop_at ? 42 : 0;
}

START_TEST(operations_list_in_numeric_order_past_9_99_999)
{
    struct store_sm *sm = helper_open(dir);
    struct collect *c = calloc(1, sizeof *c);
    char id[32];
    for (uint64_t i = 1; i <= 1005; i++) {
        snprintf(id, sizeof id, "b%04llu", (unsigned long long)(1005 - i));
        ck_assert_int_eq(reg(sm, i, id), 0);
    }
    ck_assert_int_eq(
        store_sm_list(sm, STORE_DIR_OPERATIONS, NULL, collect_cb, c), 0);
    ck_assert_uint_eq(c->n, 1005);
    for (size_t i = 0; i < c->n; i++) {
        snprintf(id, sizeof id, "%zu", i + 1);
        ck_assert_str_eq(c->names[i], id);
    }
    /* Resuming after 9, 99 and 999. */
    const char *after[] = {"9", "99", "999"};
    const char *next[] = {"10", "100", "1000"};
    for (size_t k = 0; k < 3; k++) {
        c->n = 0;
        c->stop_at = 1;
        ck_assert_int_eq(
            store_sm_list(sm, STORE_DIR_OPERATIONS, after[k], collect_cb, c),
            42);
        ck_assert_str_eq(c->names[0], next[k]);
    }
    c->stop_at = 0;
    ck_assert_int_eq(
        store_sm_list(sm, STORE_DIR_OPERATIONS, "x", collect_cb, c), -EINVAL);
    /* And the records behind the names are the operations with those ids. */
    char *op = read_file(sm, STORE_DIR_OPERATIONS, "1000");
    ck_assert_ptr_nonnull(strstr(op, "{\"id\":1000,"));
    free(op);
    /* Brokers list in byte order. */
    c->n = 0;
    ck_assert_int_eq(
        store_sm_list(sm, STORE_DIR_BROKERS, "b0998", collect_cb, c), 0);
    ck_assert_uint_eq(c->n, 6);
    ck_assert_str_eq(c->names[0], "b0999");
    ck_assert_str_eq(c->names[5], "b1004");
    store_sm_close(sm);
    free(c);
}
END_TEST

/* ---- persistence and crashes -----------------------------------------------
 */

static void run_workload(struct store_sm *sm, uint64_t from, uint64_t to)
{
    char scratch[256];
    struct store_cmd cmd;
    for (uint64_t i = from; i <= to; i++) {
        helper_workload(i, &cmd, scratch);
        (void)helper_apply(sm, i, &cmd);
    }
}

START_TEST(reopened_store_has_the_same_state_and_placements)
{
    struct store_sm *sm = helper_open(dir);
    run_workload(sm, 1, 200);
    struct goulette_buf before = helper_dump(sm);
    uint64_t rev = store_sm_revision(sm);
    store_sm_close(sm);
    sm = helper_open(dir);
    struct goulette_buf after = helper_dump(sm);
    ck_assert_uint_eq(before.len, after.len);
    ck_assert_int_eq(memcmp(before.base, after.base, before.len), 0);
    ck_assert_uint_eq(store_sm_revision(sm), rev);
    ck_assert_uint_eq(store_sm_applied_index(sm), 200);
    /* The rebuilt ring places the same way: continuing after the reopen
     * ends where a store that never closed ends. */
    run_workload(sm, 201, 300);
    struct goulette_buf cont = helper_dump(sm);
    store_sm_close(sm);
    char *dir2 = helper_tmpdir();
    struct store_sm *ref = helper_open(dir2);
    run_workload(ref, 1, 300);
    struct goulette_buf want = helper_dump(ref);
    store_sm_close(ref);
    helper_rmdir(dir2);
    ck_assert_uint_eq(cont.len, want.len);
    ck_assert_int_eq(memcmp(cont.base, want.base, want.len), 0);
    free(before.base);
    free(after.base);
    free(cont.base);
    free(want.base);
}
END_TEST

static int append_cb(void *arg, const char *name)
{
    char **out = arg;
    size_t n = strlen(*out);
    *out = realloc(*out, n + strlen(name) + 2);
    sprintf(*out + n, "%s\n", name);
    return 0;
}

/* Everything the mount would show, read through the public API. */
static char *model_text(struct store_sm *sm)
{
    char *names = calloc(1, 1);
    char *out = calloc(1, 1);
    const enum store_dir dirs[] = {STORE_DIR_TOPICS, STORE_DIR_BROKERS,
                                   STORE_DIR_OPERATIONS, STORE_DIR_INCREMENT};
    for (size_t d = 0; d < 4; d++) {
        names[0] = '\0';
        ck_assert_int_eq(store_sm_list(sm, dirs[d], NULL, append_cb, &names),
                         0);
        for (char *n = strtok(names, "\n"); n != NULL; n = strtok(NULL, "\n")) {
            struct goulette_buf b;
            struct store_stat st;
            char meta[128];
            ck_assert_int_eq(store_sm_read(sm, dirs[d], n, &b, &st), 0);
            snprintf(meta, sizeof meta, "%zu %s %llu %llu %llu %lld\n", d, n,
                     (unsigned long long)st.create_revision,
                     (unsigned long long)st.mod_revision,
                     (unsigned long long)st.version, (long long)st.mtime_ns);
            out = realloc(out, strlen(out) + strlen(meta) + b.len + 1);
            strcat(out, meta);
            strcat(out, b.base);
            free(b.base);
        }
    }
    free(names);
    return out;
}

static int apply_workload_entry(struct store_sm *sm, uint64_t i)
{
    char scratch[256];
    struct store_cmd cmd;
    struct goulette_buf buf;
    struct store_sm_result res;
    int rv;
    helper_workload(i, &cmd, scratch);
    ck_assert_int_eq(store_cmd_encode(&cmd, &buf), 0);
    rv = store_sm_apply(sm, i, 1, buf.base, buf.len, &res);
    free(buf.base);
    if (rv == 0) {
        store_sm_result_fini(&res);
        if (res.already_applied) {
            return 1;
        }
    }
    return rv;
}

static struct goulette_buf reference_dump(uint64_t upto)
{
    char *dir2 = helper_tmpdir();
    struct store_sm *ref = helper_open(dir2);
    run_workload(ref, 1, upto);
    struct goulette_buf want = helper_dump(ref);
    store_sm_close(ref);
    helper_rmdir(dir2);
    return want;
}

static void assert_same(struct goulette_buf a, struct goulette_buf b)
{
    ck_assert_uint_eq(a.len, b.len);
    ck_assert_int_eq(memcmp(a.base, b.base, a.len), 0);
    free(a.base);
    free(b.base);
}

START_TEST(failed_write_changes_nothing_and_reopen_resumes_exactly)
{
    const long survive[] = {0, 3};
    for (size_t k = 0; k < 2; k++) {
        uint64_t last = 60 + (uint64_t)survive[k];
        struct store_sm *sm;
        char *before;
        char *after;

        teardown();
        setup();
        sm = helper_open(dir);
        run_workload(sm, 1, 60);
        /* The process "dies" just before batch survive[k] + 1. */
        store_sm_fail_writes_after(sm, survive[k]);
        for (uint64_t i = 61; i <= last; i++) {
            ck_assert_int_eq(apply_workload_entry(sm, i), 0);
        }
        before = model_text(sm);
        ck_assert_int_eq(apply_workload_entry(sm, last + 1), -EIO);
        /* Memory did not move either. */
        after = model_text(sm);
        ck_assert_str_eq(before, after);
        ck_assert_uint_eq(store_sm_applied_index(sm), last);
        free(before);
        free(after);
        store_sm_close(sm);

        sm = helper_open(dir);
        ck_assert_uint_eq(store_sm_applied_index(sm), last);
        assert_same(helper_dump(sm), reference_dump(last));
        /* Raft re-delivers from the start: applied entries are no-ops. */
        for (uint64_t i = 1; i <= last; i++) {
            ck_assert_int_eq(apply_workload_entry(sm, i), 1);
        }
        for (uint64_t i = last + 1; i <= 100; i++) {
            ck_assert_int_eq(apply_workload_entry(sm, i), 0);
        }
        assert_same(helper_dump(sm), reference_dump(100));
        store_sm_close(sm);
    }
}
END_TEST

START_TEST(killed_process_leaves_state_and_applied_index_in_agreement)
{
    int fds[2];
    pid_t pid;
    uint64_t seen = 0;
    uint64_t got;
    struct store_sm *sm;

    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct store_sm_config cfg = {.path = dir};
        struct store_sm *child = NULL;
        close(fds[0]);
        if (store_sm_open(&cfg, &child) != 0) {
            _exit(3);
        }
        for (uint64_t i = 1; i <= 100000; i++) {
            if (apply_workload_entry(child, i) != 0 ||
                write(fds[1], &i, sizeof i) != sizeof i) {
                _exit(4);
            }
        }
        _exit(0);
    }
    close(fds[1]);
    /* Let it apply a while, then kill it mid-stream. */
    while (seen < 150 && read(fds[0], &got, sizeof got) == sizeof got) {
        seen = got;
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    /* The child may be ahead of what was read: drain its reports. */
    while (read(fds[0], &got, sizeof got) == sizeof got) {
        seen = got;
    }
    close(fds[0]);
    ck_assert_uint_ge(seen, 150);

    sm = helper_open(dir);
    uint64_t applied = store_sm_applied_index(sm);
    /* Everything acknowledged is there; at most the batch in flight more. */
    ck_assert_uint_ge(applied, seen);
    ck_assert_uint_le(applied, seen + 1);
    assert_same(helper_dump(sm), reference_dump(applied));
    for (uint64_t i = applied + 1; i <= applied + 30; i++) {
        ck_assert_int_eq(apply_workload_entry(sm, i), 0);
    }
    assert_same(helper_dump(sm), reference_dump(applied + 30));
    store_sm_close(sm);
}
END_TEST

static Suite *sm_suite(void)
{
    Suite *s = suite_create("sm");
    TCase *tc = tcase_create("open");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, new_store_is_empty_at_index_zero);
    tcase_add_test(tc, unknown_format_version_is_eversion);
    tcase_add_test(tc, state_keys_without_version_are_corrupt);
    tcase_add_test(tc, corrupt_record_is_reported_corrupt);
    tcase_add_test(tc, unreadable_database_is_corrupt);
    tcase_add_test(tc, raft_keys_are_left_alone);
    tcase_add_test(tc, store_shares_a_database_opened_by_the_caller);
    suite_add_tcase(s, tc);

    tc = tcase_create("apply");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, apply_reports_changes_and_revision);
    tcase_add_test(tc, garbage_and_empty_entries_only_advance_the_index);
    suite_add_tcase(s, tc);

    tc = tcase_create("reads");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, files_read_as_json_lines_with_revisions);
    tcase_add_test(tc, operations_list_in_numeric_order_past_9_99_999);
    suite_add_tcase(s, tc);

    tc = tcase_create("crash");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, reopened_store_has_the_same_state_and_placements);
    tcase_add_test(tc, failed_write_changes_nothing_and_reopen_resumes_exactly);
    tcase_add_test(tc,
                   killed_process_leaves_state_and_applied_index_in_agreement);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sm_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
