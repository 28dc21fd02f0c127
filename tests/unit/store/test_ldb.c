/* Unit tests for store/ldb.c, the LevelDB driver shared with the Raft log:
 * batches, gets, bounded iterators, seeks, snapshots, range deletion,
 * error conversion, and the write-failure hook. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "goulette/err.h"
#include "goulette/ldb.h"

#include "helpers.h"

static char *dir;
static struct store_ldb *db;

static void setup(void)
{
    dir = helper_tmpdir();
    ck_assert_int_eq(store_ldb_open(dir, NULL, &db), 0);
}

static void teardown(void)
{
    store_ldb_close(db);
    helper_rmdir(dir);
}

static void put(const char *k, const char *v)
{
    struct store_ldb_batch *b = store_ldb_batch_new();
    store_ldb_batch_put(b, k, strlen(k), v, strlen(v));
    ck_assert_int_eq(store_ldb_write(db, b), 0);
    store_ldb_batch_free(b);
}

/* The keys in [lo, hi) joined with spaces. */
static const char *scan(const char *lo, const char *hi)
{
    static char out[1024];
    struct store_ldb_iter *it = store_ldb_iter_new(db, NULL, lo, strlen(lo), hi,
                                                   hi != NULL ? strlen(hi) : 0);
    out[0] = '\0';
    for (; store_ldb_iter_valid(it); store_ldb_iter_next(it)) {
        struct goulette_buf k = store_ldb_iter_key(it);
        if (out[0] != '\0') {
            strcat(out, " ");
        }
        strncat(out, k.base, k.len);
    }
    ck_assert_int_eq(store_ldb_iter_status(it), 0);
    store_ldb_iter_free(it);
    return out;
}

START_TEST(get_returns_what_a_batch_wrote)
{
    struct goulette_buf v;
    put("Sa", "1");
    ck_assert_int_eq(store_ldb_get(db, NULL, "Sa", 2, &v), 0);
    ck_assert_uint_eq(v.len, 1);
    ck_assert_str_eq(v.base, "1");
    free(v.base);
    ck_assert_int_eq(store_ldb_get(db, NULL, "Sb", 2, &v), -ENOENT);
}
END_TEST

START_TEST(batch_puts_and_deletes_apply_together_in_order)
{
    struct store_ldb_batch *b = store_ldb_batch_new();
    struct goulette_buf v;
    put("k1", "old");
    store_ldb_batch_delete(b, "k1", 2);
    store_ldb_batch_put(b, "k1", 2, "new", 3);
    store_ldb_batch_put(b, "k2", 2, "x", 1);
    store_ldb_batch_delete(b, "k2", 2);
    ck_assert_int_eq(store_ldb_write(db, b), 0);
    store_ldb_batch_clear(b);
    ck_assert_int_eq(store_ldb_write(db, b), 0);
    store_ldb_batch_free(b);
    ck_assert_int_eq(store_ldb_get(db, NULL, "k1", 2, &v), 0);
    ck_assert_str_eq(v.base, "new");
    free(v.base);
    ck_assert_int_eq(store_ldb_get(db, NULL, "k2", 2, &v), -ENOENT);
}
END_TEST

START_TEST(iterator_stays_inside_its_range)
{
    put("M1", "");
    put("R1", "");
    put("R2", "");
    put("S", "");
    put("Sa", "");
    put("Sz", "");
    put("T", "");
    ck_assert_str_eq(scan("S", "T"), "S Sa Sz");
    ck_assert_str_eq(scan("R", "S"), "R1 R2");
    ck_assert_str_eq(scan("Sb", NULL), "Sz T");
    ck_assert_str_eq(scan("U", NULL), "");
}
END_TEST

START_TEST(prefix_end_bounds_a_prefix_scan)
{
    unsigned char hi[4];
    ck_assert_uint_eq(store_ldb_prefix_end("Sb", 2, hi), 2);
    ck_assert_int_eq(memcmp(hi, "Sc", 2), 0);
    ck_assert_uint_eq(store_ldb_prefix_end("S\xff", 2, hi), 1);
    ck_assert_int_eq(hi[0], 'T');
    ck_assert_uint_eq(store_ldb_prefix_end("\xff\xff", 2, hi), 0);
}
END_TEST

START_TEST(seek_is_clamped_to_the_range_start)
{
    struct store_ldb_iter *it;
    put("a", "");
    put("b", "");
    put("c", "");
    it = store_ldb_iter_new(db, NULL, "b", 1, "d", 1);
    store_ldb_iter_seek(it, "a", 1);
    ck_assert(store_ldb_iter_valid(it));
    ck_assert_int_eq(*(char *)store_ldb_iter_key(it).base, 'b');
    store_ldb_iter_seek(it, "bb", 2);
    ck_assert_int_eq(*(char *)store_ldb_iter_key(it).base, 'c');
    store_ldb_iter_seek(it, "z", 1);
    ck_assert(!store_ldb_iter_valid(it));
    store_ldb_iter_free(it);
}
END_TEST

START_TEST(snapshot_reads_do_not_see_later_writes)
{
    struct store_ldb_snapshot *snap;
    struct store_ldb_iter *it;
    struct goulette_buf v;
    put("k", "1");
    snap = store_ldb_snapshot_new(db);
    put("k", "2");
    put("k2", "x");
    ck_assert_int_eq(store_ldb_get(db, snap, "k", 1, &v), 0);
    ck_assert_str_eq(v.base, "1");
    free(v.base);
    ck_assert_int_eq(store_ldb_get(db, snap, "k2", 2, &v), -ENOENT);
    it = store_ldb_iter_new(db, snap, "k", 1, NULL, 0);
    ck_assert(store_ldb_iter_valid(it));
    struct goulette_buf val = store_ldb_iter_value(it);
    ck_assert_int_eq(memcmp(val.base, "1", 1), 0);
    store_ldb_iter_next(it);
    ck_assert(!store_ldb_iter_valid(it));
    store_ldb_iter_free(it);
    store_ldb_snapshot_release(db, snap);
}
END_TEST

START_TEST(delete_range_removes_only_the_range)
{
    struct store_ldb_batch *b = store_ldb_batch_new();
    put("R1", "");
    put("R9", "");
    put("Sa", "");
    put("Sb", "");
    put("T", "");
    ck_assert_int_eq(store_ldb_batch_delete_range(db, b, "R", 1, "S", 1), 0);
    ck_assert_int_eq(store_ldb_write(db, b), 0);
    store_ldb_batch_free(b);
    ck_assert_str_eq(scan("A", NULL), "Sa Sb T");
}
END_TEST

START_TEST(write_hook_fails_after_n_writes_without_writing)
{
    struct store_ldb_batch *b = store_ldb_batch_new();
    struct goulette_buf v;
    store_ldb_fail_writes_after(db, 1);
    store_ldb_batch_put(b, "a", 1, "1", 1);
    ck_assert_int_eq(store_ldb_write(db, b), 0);
    store_ldb_batch_clear(b);
    store_ldb_batch_put(b, "b", 1, "1", 1);
    ck_assert_int_eq(store_ldb_write(db, b), -EIO);
    ck_assert_int_eq(store_ldb_get(db, NULL, "b", 1, &v), -ENOENT);
    store_ldb_fail_writes_after(db, -1);
    ck_assert_int_eq(store_ldb_write(db, b), 0);
    store_ldb_batch_free(b);
    ck_assert_int_eq(store_ldb_get(db, NULL, "b", 1, &v), 0);
    free(v.base);
}
END_TEST

START_TEST(second_open_of_a_locked_database_is_eio)
{
    struct store_ldb *other = NULL;
    ck_assert_int_eq(store_ldb_open(dir, NULL, &other), -EIO);
    ck_assert_ptr_null(other);
}
END_TEST

START_TEST(approximate_size_grows_with_data)
{
    char key[32];
    char val[1024];
    memset(val, 'v', sizeof val);
    for (int i = 0; i < 2000; i++) {
        struct store_ldb_batch *b = store_ldb_batch_new();
        snprintf(key, sizeof key, "S%06d", i);
        store_ldb_batch_put(b, key, strlen(key), val, sizeof val);
        ck_assert_int_eq(store_ldb_write(db, b), 0);
        store_ldb_batch_free(b);
    }
    /* Reopen so the memtable is flushed to tables. */
    store_ldb_close(db);
    ck_assert_int_eq(store_ldb_open(dir, NULL, &db), 0);
    ck_assert_uint_gt(store_ldb_approximate_size(db, "S", 1, "T", 1), 0);
}
END_TEST

static Suite *ldb_suite(void)
{
    Suite *s = suite_create("ldb");
    TCase *tc = tcase_create("basics");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, get_returns_what_a_batch_wrote);
    tcase_add_test(tc, batch_puts_and_deletes_apply_together_in_order);
    tcase_add_test(tc, iterator_stays_inside_its_range);
    tcase_add_test(tc, prefix_end_bounds_a_prefix_scan);
    tcase_add_test(tc, seek_is_clamped_to_the_range_start);
    tcase_add_test(tc, snapshot_reads_do_not_see_later_writes);
    tcase_add_test(tc, delete_range_removes_only_the_range);
    tcase_add_test(tc, write_hook_fails_after_n_writes_without_writing);
    tcase_add_test(tc, second_open_of_a_locked_database_is_eio);
    tcase_add_test(tc, approximate_size_grows_with_data);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ldb_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
