/* Unit tests for store/snap.c: export at one LevelDB snapshot in bounded
 * chunks, atomic install on another store with the changes reported,
 * rejection of corrupt, truncated and unknown streams without any change. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goulette/err.h"
#include "goulette/ring.h"
#include "goulette/store.h"

#include "helpers.h"

static char *dir_a;
static char *dir_b;

static void setup(void)
{
    dir_a = helper_tmpdir();
    dir_b = helper_tmpdir();
}

static void teardown(void)
{
    helper_rmdir(dir_a);
    helper_rmdir(dir_b);
}

static void run_workload(struct store_sm *sm, uint64_t from, uint64_t to)
{
    char scratch[256];
    struct store_cmd cmd;
    for (uint64_t i = from; i <= to; i++) {
        helper_workload(i, &cmd, scratch);
        (void)helper_apply(sm, i, &cmd);
    }
}

/* Export @src with @chunk_max and install it into @dst, feeding each
 * chunk as it comes; returns commit's result. */
static int transfer(struct store_sm *src,
                    struct store_sm *dst,
                    size_t chunk_max,
                    struct store_changes *changes)
{
    struct store_snap_export *e = NULL;
    struct store_snap_install *in = NULL;
    struct goulette_buf chunk;
    int rv;
    ck_assert_int_eq(store_snap_export_begin(src, chunk_max, &e), 0);
    ck_assert_int_eq(store_snap_install_begin(dst, &in), 0);
    while ((rv = store_snap_export_next(e, &chunk)) == 1) {
        ck_assert_uint_le(chunk.len, chunk_max);
        ck_assert_uint_gt(chunk.len, 0);
        ck_assert_int_eq(store_snap_install_feed(in, chunk.base, chunk.len), 0);
    }
    ck_assert_int_eq(rv, 0);
    store_snap_export_end(e);
    return store_snap_install_commit(in, changes);
}

static void assert_same_dump(struct store_sm *a, struct store_sm *b)
{
    struct goulette_buf x = helper_dump(a);
    struct goulette_buf y = helper_dump(b);
    ck_assert_uint_eq(x.len, y.len);
    ck_assert_int_eq(memcmp(x.base, y.base, x.len), 0);
    free(x.base);
    free(y.base);
}

static bool has_change(const struct store_changes *c,
                       enum store_change_kind kind,
                       const char *path)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->items[i].kind == kind && strcmp(c->items[i].path, path) == 0) {
            return true;
        }
    }
    return false;
}

START_TEST(export_install_round_trip_reproduces_the_store)
{
    const size_t sizes[] = {64, 1000, 1 << 20};
    for (size_t k = 0; k < 3; k++) {
        struct store_sm *a;
        struct store_sm *b;
        struct store_changes ch;
        teardown();
        setup();
        a = helper_open(dir_a);
        b = helper_open(dir_b);
        run_workload(a, 1, 150);
        ck_assert_int_eq(transfer(a, b, sizes[k], &ch), 0);
        ck_assert_uint_eq(store_sm_applied_index(b), 150);
        ck_assert_uint_eq(store_sm_applied_term(b), 1);
        ck_assert_uint_eq(store_sm_revision(b), store_sm_revision(a));
        assert_same_dump(a, b);
        /* Everything is new to b. */
        ck_assert(has_change(&ch, STORE_CHANGE_CREATE, "operations/1"));
        ck_assert(has_change(&ch, STORE_CHANGE_CREATE, "increment/operation"));
        ck_assert_uint_eq(ch.n, store_sm_count(a, STORE_DIR_TOPICS) +
                                    store_sm_count(a, STORE_DIR_BROKERS) +
                                    store_sm_count(a, STORE_DIR_OPERATIONS) +
                                    1);
        store_changes_fini(&ch);
        /* The rebuilt model and ring keep b in step with a. */
        run_workload(a, 151, 220);
        run_workload(b, 151, 220);
        assert_same_dump(a, b);
        store_sm_close(a);
        store_sm_close(b);
        /* And it survives a reopen. */
        b = helper_open(dir_b);
        ck_assert_uint_eq(store_sm_applied_index(b), 220);
        store_sm_close(b);
    }
}
END_TEST

START_TEST(install_over_other_state_reports_creates_modifies_deletes)
{
    struct store_sm *a = helper_open(dir_a);
    struct store_sm *b = helper_open(dir_b);
    struct store_changes ch;
    struct store_cmd only_b = {.type = STORE_CMD_REGISTER_BROKER,
                               .timestamp_ns = 1,
                               .broker_id = "onlyb",
                               .address = "h:1"};
    run_workload(a, 1, 40);
    run_workload(b, 1, 20);
    (void)helper_apply(b, 21, &only_b);
    ck_assert_int_eq(transfer(a, b, 512, &ch), 0);
    ck_assert(has_change(&ch, STORE_CHANGE_DELETE, "brokers/onlyb"));
    ck_assert(has_change(&ch, STORE_CHANGE_MODIFY, "increment/operation"));
    ck_assert(!has_change(&ch, STORE_CHANGE_MODIFY, "operations/1"));
    ck_assert(!has_change(&ch, STORE_CHANGE_CREATE, "operations/1"));
    char last[32];
    snprintf(last, sizeof last, "operations/%zu",
             store_sm_count(a, STORE_DIR_OPERATIONS));
    ck_assert(has_change(&ch, STORE_CHANGE_CREATE, last));
    store_changes_fini(&ch);
    assert_same_dump(a, b);
    struct store_broker_view bv;
    ck_assert_int_eq(store_sm_broker_get(b, "onlyb", &bv), -ENOENT);
    store_sm_close(a);
    store_sm_close(b);
}
END_TEST

START_TEST(export_sees_one_consistent_point_in_time)
{
    struct store_sm *a = helper_open(dir_a);
    struct store_sm *b = helper_open(dir_b);
    struct store_snap_export *e = NULL;
    struct store_snap_install *in = NULL;
    struct goulette_buf chunk;
    struct goulette_buf at30;
    struct store_changes ch;
    int rv;
    run_workload(a, 1, 30);
    at30 = helper_dump(a);
    ck_assert_int_eq(store_snap_export_begin(a, 100, &e), 0);
    ck_assert_uint_eq(store_snap_export_index(e), 30);
    ck_assert_int_eq(store_snap_install_begin(b, &in), 0);
    /* Half the stream, then more entries on the source, then the rest. */
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(store_snap_export_next(e, &chunk), 1);
        ck_assert_int_eq(store_snap_install_feed(in, chunk.base, chunk.len), 0);
    }
    run_workload(a, 31, 60);
    while ((rv = store_snap_export_next(e, &chunk)) == 1) {
        ck_assert_int_eq(store_snap_install_feed(in, chunk.base, chunk.len), 0);
    }
    ck_assert_int_eq(rv, 0);
    store_snap_export_end(e);
    ck_assert_int_eq(store_snap_install_commit(in, &ch), 0);
    store_changes_fini(&ch);
    ck_assert_uint_eq(store_sm_applied_index(b), 30);
    struct goulette_buf got = helper_dump(b);
    ck_assert_uint_eq(got.len, at30.len);
    ck_assert_int_eq(memcmp(got.base, at30.base, got.len), 0);
    free(got.base);
    free(at30.base);
    store_sm_close(a);
    store_sm_close(b);
}
END_TEST

/* Install @bytes into a store holding a workload; the store must refuse
 * with @want and be exactly as before. */
static void assert_rejected(const void *bytes, size_t len, int want)
{
    struct store_sm *b = helper_open(dir_b);
    struct store_snap_install *in = NULL;
    struct store_changes ch;
    struct goulette_buf before;
    int rv;
    if (store_sm_applied_index(b) == 0) {
        run_workload(b, 1, 25);
    }
    before = helper_dump(b);
    ck_assert_int_eq(store_snap_install_begin(b, &in), 0);
    rv = store_snap_install_feed(in, bytes, len);
    if (rv == 0) {
        rv = store_snap_install_commit(in, &ch);
    } else {
        store_snap_install_abort(in);
    }
    ck_assert_int_eq(rv, want);
    struct goulette_buf after = helper_dump(b);
    ck_assert_uint_eq(before.len, after.len);
    ck_assert_int_eq(memcmp(before.base, after.base, before.len), 0);
    ck_assert_uint_eq(store_sm_applied_index(b), 25);
    free(before.base);
    free(after.base);
    store_sm_close(b);
}

START_TEST(corrupt_truncated_or_foreign_streams_change_nothing)
{
    struct store_sm *a = helper_open(dir_a);
    run_workload(a, 1, 80);
    struct goulette_buf good = helper_dump(a);
    store_sm_close(a);
    unsigned char *bad = malloc(good.len);

    /* Every single flipped byte is caught (by structure or checksum). */
    for (size_t at = 0; at < good.len; at += 1 + good.len / 97) {
        memcpy(bad, good.base, good.len);
        bad[at] ^= 0x5A;
        assert_rejected(
            bad, good.len,
            at >= 4 && at < 8 ? GOULETTE_EVERSION : GOULETTE_ECORRUPT);
    }
    /* Truncations. */
    assert_rejected(good.base, good.len - 1, GOULETTE_ECORRUPT);
    assert_rejected(good.base, good.len / 2, GOULETTE_ECORRUPT);
    assert_rejected(good.base, 10, GOULETTE_ECORRUPT);
    /* Trailing garbage. */
    memcpy(bad, good.base, good.len);
    unsigned char *longer = malloc(good.len + 1);
    memcpy(longer, good.base, good.len);
    longer[good.len] = 'x';
    assert_rejected(longer, good.len + 1, GOULETTE_ECORRUPT);
    /* Another format version. */
    memcpy(bad, good.base, good.len);
    bad[7] = 2;
    assert_rejected(bad, good.len, GOULETTE_EVERSION);
    free(longer);
    free(bad);
    free(good.base);
}
END_TEST

static uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | p[3];
}

static void put_be(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

/* Re-serialise stream @in without the record whose key is @drop, with a
 * correct count and checksum: well-formed, but not a state. */
static size_t without_record(const unsigned char *in,
                             size_t len,
                             const char *drop,
                             size_t drop_len,
                             unsigned char *out)
{
    size_t off = 24;
    size_t w = 24;
    uint64_t count = 0;
    memcpy(out, in, 24);
    while (in[off] == 'K') {
        size_t klen = be32(in + off + 1);
        size_t vlen = be32(in + off + 5);
        size_t rec = 9 + klen + vlen;
        if (klen != drop_len || memcmp(in + off + 9, drop, klen) != 0) {
            memcpy(out + w, in + off, rec);
            w += rec;
            count++;
        }
        off += rec;
    }
    out[w] = 'E';
    put_be(out + w + 1, count, 8);
    put_be(out + w + 9, store_ring_crc32(out, w + 9), 4);
    return w + 13;
}

START_TEST(stream_with_a_gap_in_operations_is_rejected)
{
    struct store_sm *a = helper_open(dir_a);
    run_workload(a, 1, 40);
    struct goulette_buf good = helper_dump(a);
    store_sm_close(a);
    unsigned char *bad = malloc(good.len);
    char key[10] = {'S', 'o', 0, 0, 0, 0, 0, 0, 0, 3};
    size_t n = without_record(good.base, good.len, key, 10, bad);
    ck_assert_uint_lt(n, good.len);
    assert_rejected(bad, n, GOULETTE_ECORRUPT);
    /* Dropping nothing gives the same, valid stream back. */
    n = without_record(good.base, good.len, "none", 4, bad);
    ck_assert_uint_eq(n, good.len);
    ck_assert_int_eq(memcmp(bad, good.base, n), 0);
    free(bad);
    free(good.base);
}
END_TEST

START_TEST(abort_leaves_the_store_as_it_was)
{
    struct store_sm *a = helper_open(dir_a);
    struct store_sm *b = helper_open(dir_b);
    struct store_snap_install *in = NULL;
    run_workload(a, 1, 20);
    run_workload(b, 1, 10);
    struct goulette_buf src = helper_dump(a);
    struct goulette_buf before = helper_dump(b);
    ck_assert_int_eq(store_snap_install_begin(b, &in), 0);
    ck_assert_int_eq(store_snap_install_feed(in, src.base, src.len), 0);
    store_snap_install_abort(in);
    struct goulette_buf after = helper_dump(b);
    ck_assert_uint_eq(before.len, after.len);
    ck_assert_int_eq(memcmp(before.base, after.base, before.len), 0);
    free(src.base);
    free(before.base);
    free(after.base);
    store_sm_close(a);
    store_sm_close(b);
}
END_TEST

START_TEST(empty_store_exports_and_installs)
{
    struct store_sm *a = helper_open(dir_a);
    struct store_sm *b = helper_open(dir_b);
    struct store_changes ch;
    run_workload(b, 1, 10);
    ck_assert_int_eq(transfer(a, b, 64, &ch), 0);
    ck_assert_uint_eq(store_sm_applied_index(b), 0);
    ck_assert_uint_eq(store_sm_count(b, STORE_DIR_BROKERS), 0);
    ck_assert_uint_eq(store_sm_count(b, STORE_DIR_OPERATIONS), 0);
    ck_assert(has_change(&ch, STORE_CHANGE_DELETE, "increment/operation"));
    store_changes_fini(&ch);
    store_sm_close(a);
    store_sm_close(b);
}
END_TEST

static Suite *snap_suite(void)
{
    Suite *s = suite_create("snap");
    TCase *tc = tcase_create("round_trip");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, export_install_round_trip_reproduces_the_store);
    tcase_add_test(tc,
                   install_over_other_state_reports_creates_modifies_deletes);
    tcase_add_test(tc, export_sees_one_consistent_point_in_time);
    tcase_add_test(tc, empty_store_exports_and_installs);
    suite_add_tcase(s, tc);

    tc = tcase_create("rejection");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, corrupt_truncated_or_foreign_streams_change_nothing);
    tcase_add_test(tc, abort_leaves_the_store_as_it_was);
    tcase_add_test(tc, stream_with_a_gap_in_operations_is_rejected);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(snap_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
