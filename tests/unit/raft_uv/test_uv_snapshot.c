/* Unit tests of the snapshot files (raft/uv/uv_snapshot.c) in a temporary
 * directory. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uv_snapshot.h"

static char dir[64];
static struct raft_uv_snapshots s;

static void setup(void)
{
    strcpy(dir, "/tmp/goulette-uvsnap-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(raft_uv_snapshots_init(&s, dir, NULL), 0);
}

static void teardown(void)
{
    char cmd[128];
    raft_uv_snapshots_fini(&s);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static struct raft_snapshot_chunk chunk(raft_index index,
                                        uint64_t offset,
                                        const char *text)
{
    struct raft_snapshot_chunk c;
    memset(&c, 0, sizeof c);
    c.index = index;
    c.term = 2;
    c.offset = offset;
    c.data.base = (void *)text;
    c.data.len = strlen(text);
    return c;
}

START_TEST(a_taken_snapshot_is_served_by_offset)
{
    char buf[8];
    uint64_t size;
    int fd;
    ck_assert_int_eq(raft_uv_snapshots_create(&s, 10, &fd), 0);
    ck_assert_int_eq(write(fd, "abcdefgh", 8), 8);
    ck_assert_int_eq(raft_uv_snapshots_commit(&s, 10, fd, &size), 0);
    ck_assert_uint_eq(size, 8);
    raft_uv_snapshots_set_term(&s, 10, 3);
    ck_assert_int_eq(raft_uv_snapshots_read(&s, 10, 3, 2, buf, 4), 0);
    ck_assert(memcmp(buf, "cdef", 4) == 0);
    /* Another snapshot, past the end, or the wrong term: not served. */
    ck_assert_int_eq(raft_uv_snapshots_read(&s, 9, 3, 0, buf, 4), -ENOENT);
    ck_assert_int_eq(raft_uv_snapshots_read(&s, 10, 2, 0, buf, 4), -ENOENT);
    ck_assert_int_eq(raft_uv_snapshots_read(&s, 10, 3, 6, buf, 4), -ENOENT);
}
END_TEST

START_TEST(a_newer_snapshot_replaces_the_older_file)
{
    uint64_t size;
    int fd;
    ck_assert_int_eq(raft_uv_snapshots_create(&s, 10, &fd), 0);
    ck_assert_int_eq(raft_uv_snapshots_commit(&s, 10, fd, &size), 0);
    ck_assert_int_eq(raft_uv_snapshots_create(&s, 20, &fd), 0);
    ck_assert_int_eq(raft_uv_snapshots_commit(&s, 20, fd, &size), 0);
    ck_assert_int_eq(raft_uv_snapshots_open(&s, 10, 1), -ENOENT);
    ck_assert_int_eq(raft_uv_snapshots_open(&s, 20, 1), 0);
}
END_TEST

START_TEST(received_chunks_are_staged_in_order_and_promoted)
{
    struct raft_snapshot_chunk a = chunk(30, 0, "hello ");
    struct raft_snapshot_chunk b = chunk(30, 6, "world");
    struct raft_snapshot_chunk gap = chunk(30, 20, "x");
    struct raft_snapshot_chunk other = chunk(31, 6, "y");
    char buf[16] = {0};
    int fd;

    ck_assert_int_eq(raft_uv_snapshots_stage(&s, &b), -EINVAL); /* no 0 */
    ck_assert_int_eq(raft_uv_snapshots_stage(&s, &a), 0);
    ck_assert_int_eq(raft_uv_snapshots_stage(&s, &gap), -EINVAL);
    ck_assert_int_eq(raft_uv_snapshots_stage(&s, &other), -EINVAL);
    ck_assert_int_eq(raft_uv_snapshots_stage(&s, &b), 0);
    ck_assert_int_eq(raft_uv_snapshots_staged(&s, 31, 2, &fd), -ENOENT);
    ck_assert_int_eq(raft_uv_snapshots_staged(&s, 30, 2, &fd), 0);
    ck_assert_int_eq(read(fd, buf, sizeof buf), 11);
    ck_assert_str_eq(buf, "hello world");
    ck_assert_int_eq(raft_uv_snapshots_promote(&s), 0);
    memset(buf, 0, sizeof buf);
    ck_assert_int_eq(raft_uv_snapshots_read(&s, 30, 2, 6, buf, 5), 0);
    ck_assert_str_eq(buf, "world");
}
END_TEST

START_TEST(a_chunk_at_offset_0_restarts_the_staging)
{
    struct raft_snapshot_chunk a = chunk(30, 0, "old data");
    struct raft_snapshot_chunk b = chunk(40, 0, "new");
    char buf[16] = {0};
    int fd;
    ck_assert_int_eq(raft_uv_snapshots_stage(&s, &a), 0);
    ck_assert_int_eq(raft_uv_snapshots_stage(&s, &b), 0);
    ck_assert_int_eq(raft_uv_snapshots_staged(&s, 30, 2, &fd), -ENOENT);
    ck_assert_int_eq(raft_uv_snapshots_staged(&s, 40, 2, &fd), 0);
    ck_assert_int_eq(read(fd, buf, sizeof buf), 3);
    ck_assert_str_eq(buf, "new");
}
END_TEST

START_TEST(leftovers_of_interrupted_work_are_dropped_at_init)
{
    char path[128];
    FILE *f;
    snprintf(path, sizeof path, "%s/snap-5.tmp", dir);
    f = fopen(path, "w");
    fclose(f);
    snprintf(path, sizeof path, "%s/incoming", dir);
    f = fopen(path, "w");
    fclose(f);
    raft_uv_snapshots_fini(&s);
    ck_assert_int_eq(raft_uv_snapshots_init(&s, dir, NULL), 0);
    ck_assert_int_eq(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/snap-5.tmp", dir);
    ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("uv_snapshot");
    TCase *tc = tcase_create("files");
    SRunner *sr;
    int failed;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_taken_snapshot_is_served_by_offset);
    tcase_add_test(tc, a_newer_snapshot_replaces_the_older_file);
    tcase_add_test(tc, received_chunks_are_staged_in_order_and_promoted);
    tcase_add_test(tc, a_chunk_at_offset_0_restarts_the_staging);
    tcase_add_test(tc, leftovers_of_interrupted_work_are_dropped_at_init);
    suite_add_tcase(su, tc);
    sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
