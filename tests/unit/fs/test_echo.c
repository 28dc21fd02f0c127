/* Unit tests of the echo notifier thread (fs/echo.c) on a plain directory:
 * replay order, invalidation before each replay, the item in replay, errors,
 * and stopping with a queue.  Links fs_echo, libuv and check only. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "echo.h"

#define MAX_ITEMS 128

struct fixture
{
    uv_loop_t loop;
    struct fs_echo echo;
    char dir[64];
    uv_mutex_t lock; /* protects the fields written by the echo thread */
    int entry_kinds[MAX_ITEMS]; /* fs__echo_current seen in inval_entry */
    int existed[MAX_ITEMS];     /* the file existed when invalidated */
    char entry_names[MAX_ITEMS][32];
    int nentries;
    uint64_t inodes[MAX_ITEMS];
    int ninodes;
    uv_sem_t gate; /* inval_entry waits on it when gated */
    int gated;     /* under lock */
    struct fs_echo_item *done[MAX_ITEMS]; /* loop thread */
    int ndone;
    int stopped;
};

static struct fixture *f;

static void hook_inval_entry(void *data, uint64_t parent, const char *name)
{
    struct fixture *x = data;
    char path[128];
    struct stat st;
    int gated;
    int i;
    snprintf(path, sizeof path, "%s/%s", x->dir, name);
    uv_mutex_lock(&x->lock);
    i = x->nentries++;
    snprintf(x->entry_names[i], sizeof x->entry_names[i], "%s", name);
    x->existed[i] = stat(path, &st) == 0;
    gated = x->gated;
    uv_mutex_unlock(&x->lock);
    /* The item is "current" while it is replayed. */
    x->entry_kinds[i] = fs__echo_current(&x->echo, parent, name);
    if (gated) {
        uv_sem_wait(&x->gate);
    }
}

static void hook_inval_inode(void *data, uint64_t ino)
{
    struct fixture *x = data;
    uv_mutex_lock(&x->lock);
    x->inodes[x->ninodes++] = ino;
    uv_mutex_unlock(&x->lock);
}

static void hook_done(void *data, struct fs_echo_item *item)
{
    struct fixture *x = data;
    ck_assert_int_lt(x->ndone, MAX_ITEMS);
    x->done[x->ndone++] = item;
}

static void hook_stopped(void *data)
{
    struct fixture *x = data;
    x->stopped++;
}

static void setup(void)
{
    struct fs_echo_hooks hooks = {hook_inval_entry, hook_inval_inode, hook_done,
                                  hook_stopped, NULL};
    f = calloc(1, sizeof *f);
    ck_assert_ptr_nonnull(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/fs-echo-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->dir));
    ck_assert_int_eq(uv_loop_init(&f->loop), 0);
    ck_assert_int_eq(uv_mutex_init(&f->lock), 0);
    ck_assert_int_eq(uv_sem_init(&f->gate, 0), 0);
    hooks.data = f;
    ck_assert_int_eq(fs__echo_init(&f->echo, &f->loop, &hooks, NULL), 0);
}

static void closed(uv_handle_t *h)
{
}

static void teardown(void)
{
    char cmd[128];
    int i;
    fs__echo_stop(&f->echo);
    while (!f->stopped) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    fs__echo_close(&f->echo, closed);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&f->loop), 0);
    for (i = 0; i < f->ndone; i++) {
        fs__echo_item_free(f->done[i]);
    }
    uv_sem_destroy(&f->gate);
    uv_mutex_destroy(&f->lock);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    ck_assert_int_eq(system(cmd), 0);
    free(f);
}

static void push(enum fs_echo_kind kind, const char *name, uint64_t ino)
{
    char path[128];
    struct fs_echo_item *it;
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    it = fs__echo_item_new(kind, name, path);
    ck_assert_ptr_nonnull(it);
    it->parent = 7;
    it->ino = ino;
    fs__echo_push(&f->echo, it);
}

static void make_file(const char *name, const char *content)
{
    char path[128];
    FILE *fp;
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    fputs(content, fp);
    fclose(fp);
}

static int file_exists(const char *name)
{
    char path[128];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    return stat(path, &st) == 0;
}

static void run_until_done(int n)
{
    while (f->ndone < n) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

START_TEST(replays_in_queue_order_with_their_system_calls)
{
    make_file("a", "xyz");
    make_file("c", "old");
    push(FS_ECHO_MODIFY, "a", 11);
    push(FS_ECHO_CREATE, "b", 12);
    push(FS_ECHO_DELETE, "c", 0);
    run_until_done(3);
    ck_assert_str_eq(f->done[0]->name, "a");
    ck_assert_str_eq(f->done[1]->name, "b");
    ck_assert_str_eq(f->done[2]->name, "c");
    ck_assert_int_eq(f->done[0]->result, 0);
    ck_assert_int_eq(f->done[1]->result, 0);
    ck_assert_int_eq(f->done[2]->result, 0);
    ck_assert(file_exists("a"));
    ck_assert(file_exists("b"));
    ck_assert(!file_exists("c"));
    ck_assert_int_eq(f->ninodes, 2);
    ck_assert_uint_eq(f->inodes[0], 11);
    ck_assert_uint_eq(f->inodes[1], 12);
}
END_TEST

START_TEST(invalidates_before_each_replay)
{
    make_file("gone", "x");
    push(FS_ECHO_CREATE, "new", 0);
    push(FS_ECHO_DELETE, "gone", 0);
    run_until_done(2);
    ck_assert_int_eq(f->nentries, 2);
    ck_assert_str_eq(f->entry_names[0], "new");
    ck_assert_int_eq(f->existed[0], 0); /* not created yet */
    ck_assert_str_eq(f->entry_names[1], "gone");
    ck_assert_int_eq(f->existed[1], 1); /* not removed yet */
}
END_TEST

START_TEST(the_item_in_replay_is_current)
{
    push(FS_ECHO_CREATE, "n1", 0);
    push(FS_ECHO_DELETE, "n1", 0);
    run_until_done(2);
    ck_assert_int_eq(f->entry_kinds[0], FS_ECHO_CREATE);
    ck_assert_int_eq(f->entry_kinds[1], FS_ECHO_DELETE);
    /* Between replays, and for other names, nothing is current. */
    ck_assert_int_eq(fs__echo_current(&f->echo, 7, "n1"), 0);
    ck_assert_int_eq(fs__echo_current(&f->echo, 8, "n1"), 0);
}
END_TEST

START_TEST(failures_are_reported_per_item)
{
    make_file("exists", "x");
    push(FS_ECHO_MODIFY, "missing", 0);
    push(FS_ECHO_DELETE, "missing", 0);
    push(FS_ECHO_CREATE, "exists", 0); /* replayed as a write */
    run_until_done(3);
    ck_assert_int_eq(f->done[0]->result, -ENOENT);
    ck_assert_int_eq(f->done[1]->result, -ENOENT);
    ck_assert_int_eq(f->done[2]->result, 0);
}
END_TEST

START_TEST(the_thread_has_its_own_tid)
{
    int tid = fs__echo_tid(&f->echo);
    ck_assert_int_ne(tid, 0);
    ck_assert_int_ne(tid, (int)gettid());
}
END_TEST

START_TEST(stop_finishes_the_replay_in_progress_and_cancels_the_rest)
{
    int i;
    uv_mutex_lock(&f->lock);
    f->gated = 1;
    uv_mutex_unlock(&f->lock);
    push(FS_ECHO_CREATE, "first", 0);
    for (i = 0; i < 50; i++) {
        char name[16];
        snprintf(name, sizeof name, "q%d", i);
        push(FS_ECHO_CREATE, name, 0);
    }
    /* Wait until the thread is inside the first replay. */
    for (;;) {
        int n;
        uv_mutex_lock(&f->lock);
        n = f->nentries;
        uv_mutex_unlock(&f->lock);
        if (n > 0) {
            break;
        }
        usleep(1000);
    }
    fs__echo_stop(&f->echo);
    uv_sem_post(&f->gate);
    while (!f->stopped) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    ck_assert_int_eq(f->ndone, 51);
    ck_assert_int_eq(f->done[0]->result, 0);
    ck_assert(file_exists("first"));
    for (i = 1; i < 51; i++) {
        ck_assert_int_eq(f->done[i]->result, -ECANCELED);
    }
    ck_assert(!file_exists("q0"));
    /* After the join, a push comes straight back cancelled. */
    push(FS_ECHO_CREATE, "late", 0);
    ck_assert_int_eq(f->ndone, 52);
    ck_assert_int_eq(f->done[51]->result, -ECANCELED);
    ck_assert(!file_exists("late"));
}
END_TEST

static Suite *echo_suite(void)
{
    Suite *s = suite_create("fs_echo");
    TCase *tc;

    tc = tcase_create("replay");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, replays_in_queue_order_with_their_system_calls);
    tcase_add_test(tc, invalidates_before_each_replay);
    tcase_add_test(tc, the_item_in_replay_is_current);
    tcase_add_test(tc, failures_are_reported_per_item);
    tcase_add_test(tc, the_thread_has_its_own_tid);
    suite_add_tcase(s, tc);

    tc = tcase_create("stop");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc,
                   stop_finishes_the_replay_in_progress_and_cancels_the_rest);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(echo_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
