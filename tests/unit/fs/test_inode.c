/* Unit tests of fs_inode, the pure inode table of the FUSE front end.  Links
 * fs_inode and check only. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inode.h"

/* A counting allocator that fails the Nth allocation (N = 0: never). */
struct test_alloc
{
    long countdown; /* fail when it reaches 1; 0 = never */
    long live;      /* allocations not yet freed */
};

static void *test_malloc(void *data, size_t size)
{
    struct test_alloc *a = data;
    void *p;
    if (a->countdown > 0 && --a->countdown == 0) {
        return NULL;
    }
    p = malloc(size);
    if (p != NULL) {
        a->live++;
    }
    return p;
}

static void test_free(void *data, void *ptr)
{
    struct test_alloc *a = data;
    a->live--;
    free(ptr);
}

static struct test_alloc alloc_state;
static struct fs_inode_alloc alloc_hook = {test_malloc, test_free,
                                           &alloc_state};
static struct fs_inode_table t;

static void setup(void)
{
    memset(&alloc_state, 0, sizeof alloc_state);
    ck_assert_int_eq(fs_inode_init(&t, &alloc_hook), 0);
}

static void teardown(void)
{
    fs_inode_fini(&t);
    ck_assert_int_eq(alloc_state.live, 0);
}

static struct fs_inode *bind(uint64_t parent, const char *name, unsigned fl)
{
    struct fs_inode *n = NULL;
    ck_assert_int_eq(fs_inode_bind(&t, parent, name, fl, &n), 0);
    ck_assert_ptr_nonnull(n);
    return n;
}

/* --- root and binding --- */

START_TEST(root_exists_with_empty_path)
{
    char buf[16];
    struct fs_inode *root = fs_inode_get(&t, FS_INODE_ROOT);
    ck_assert_ptr_nonnull(root);
    ck_assert_uint_eq(root->flags & FS_INODE_DIR, FS_INODE_DIR);
    ck_assert_int_eq(fs_inode_path(&t, root, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "");
    ck_assert_uint_eq(fs_inode_count(&t), 1);
}
END_TEST

START_TEST(bound_names_resolve_and_build_paths)
{
    char buf[64];
    struct fs_inode *dir = bind(FS_INODE_ROOT, "topics", FS_INODE_DIR);
    struct fs_inode *f;
    fs_inode_ref(dir);
    f = bind(dir->ino, "orders", 0);
    fs_inode_ref(f);
    ck_assert_ptr_eq(fs_inode_lookup(&t, FS_INODE_ROOT, "topics"), dir);
    ck_assert_ptr_eq(fs_inode_lookup(&t, dir->ino, "orders"), f);
    ck_assert_ptr_null(fs_inode_lookup(&t, dir->ino, "order"));
    ck_assert_ptr_null(fs_inode_lookup(&t, FS_INODE_ROOT, "orders"));
    ck_assert_ptr_eq(fs_inode_get(&t, f->ino), f);
    ck_assert_int_eq(fs_inode_path(&t, f, buf, sizeof buf),
                     (int)strlen("topics/orders"));
    ck_assert_str_eq(buf, "topics/orders");
}
END_TEST

START_TEST(path_reports_a_short_buffer)
{
    char buf[8];
    struct fs_inode *dir = bind(FS_INODE_ROOT, "topics", FS_INODE_DIR);
    struct fs_inode *f = bind(dir->ino, "orders", 0);
    fs_inode_ref(f);
    ck_assert_int_eq(fs_inode_path(&t, f, buf, sizeof buf), -ENAMETOOLONG);
    ck_assert_int_eq(fs_inode_path(&t, dir, buf, 6), -ENAMETOOLONG);
    ck_assert_int_eq(fs_inode_path(&t, dir, buf, 7), 6);
}
END_TEST

START_TEST(bind_refuses_bad_parents_and_empty_names)
{
    struct fs_inode *n = NULL;
    struct fs_inode *f = bind(FS_INODE_ROOT, "file", 0);
    fs_inode_ref(f);
    ck_assert_int_eq(fs_inode_bind(&t, f->ino, "x", 0, &n), -ENOENT);
    ck_assert_int_eq(fs_inode_bind(&t, 999, "x", 0, &n), -ENOENT);
    ck_assert_int_eq(fs_inode_bind(&t, FS_INODE_ROOT, "", 0, &n), -EINVAL);
    ck_assert_ptr_null(n);
}
END_TEST

START_TEST(rebinding_a_name_detaches_the_old_node)
{
    char buf[32];
    struct fs_inode *old = bind(FS_INODE_ROOT, "a", 0);
    struct fs_inode *neu;
    uint64_t old_ino = old->ino;
    fs_inode_ref(old); /* the kernel still holds it */
    neu = bind(FS_INODE_ROOT, "a", 0);
    ck_assert_ptr_ne(neu, old);
    ck_assert_ptr_eq(fs_inode_lookup(&t, FS_INODE_ROOT, "a"), neu);
    ck_assert_ptr_eq(fs_inode_get(&t, old_ino), old);
    ck_assert_ptr_null(old->name);
    ck_assert_int_eq(fs_inode_path(&t, old, buf, sizeof buf), -ENOENT);
    ck_assert_int_eq(fs_inode_forget(&t, old_ino, 1), 1);
    ck_assert_ptr_null(fs_inode_get(&t, old_ino));
    ck_assert_int_eq(fs_inode_release(&t, neu), 1);
}
END_TEST

/* --- lifetime --- */

START_TEST(forget_frees_at_zero_lookups)
{
    struct fs_inode *f = bind(FS_INODE_ROOT, "f", 0);
    uint64_t ino = f->ino;
    fs_inode_ref(f);
    fs_inode_ref(f);
    ck_assert_int_eq(fs_inode_forget(&t, ino, 1), 0);
    ck_assert_ptr_eq(fs_inode_get(&t, ino), f);
    ck_assert_int_eq(fs_inode_forget(&t, ino, 1), 1);
    ck_assert_ptr_null(fs_inode_get(&t, ino));
    ck_assert_ptr_null(fs_inode_lookup(&t, FS_INODE_ROOT, "f"));
    ck_assert_uint_eq(fs_inode_count(&t), 1);
}
END_TEST

START_TEST(forget_tolerates_unknown_inos_and_large_counts)
{
    struct fs_inode *f = bind(FS_INODE_ROOT, "f", 0);
    uint64_t ino = f->ino;
    fs_inode_ref(f);
    ck_assert_int_eq(fs_inode_forget(&t, 12345, 3), 0);
    ck_assert_int_eq(fs_inode_forget(&t, 0, 3), 0);
    ck_assert_int_eq(fs_inode_forget(&t, ino, 100), 1);
    ck_assert_int_eq(fs_inode_forget(&t, FS_INODE_ROOT, 100), 0);
    ck_assert_ptr_nonnull(fs_inode_get(&t, FS_INODE_ROOT));
}
END_TEST

START_TEST(pins_keep_forgotten_nodes_alive)
{
    struct fs_inode *f = bind(FS_INODE_ROOT, "f", 0);
    uint64_t ino = f->ino;
    fs_inode_ref(f);
    fs_inode_pin(f);
    ck_assert_int_eq(fs_inode_forget(&t, ino, 1), 0);
    ck_assert_int_eq(fs_inode_unbind(&t, f), 0);
    ck_assert_ptr_eq(fs_inode_get(&t, ino), f);
    ck_assert_int_eq(fs_inode_unpin(&t, f), 1);
    ck_assert_ptr_null(fs_inode_get(&t, ino));
}
END_TEST

START_TEST(bound_children_keep_their_directory)
{
    char buf[32];
    struct fs_inode *dir = bind(FS_INODE_ROOT, "operations", FS_INODE_DIR);
    uint64_t dino = dir->ino;
    struct fs_inode *f = bind(dino, "7", 0);
    fs_inode_pin(f);
    /* The directory has no lookups and no pins: its child holds it. */
    ck_assert_int_eq(fs_inode_release(&t, dir), 0);
    ck_assert_ptr_eq(fs_inode_get(&t, dino), dir);
    ck_assert_int_eq(fs_inode_path(&t, f, buf, sizeof buf), 12);
    /* Unbinding the child releases the directory. */
    ck_assert_int_eq(fs_inode_unbind(&t, f), 0);
    ck_assert_ptr_null(fs_inode_get(&t, dino));
    ck_assert_int_eq(fs_inode_unpin(&t, f), 1);
}
END_TEST

START_TEST(unreferenced_new_nodes_are_released)
{
    struct fs_inode *f = bind(FS_INODE_ROOT, "f", 0);
    uint64_t ino = f->ino;
    ck_assert_int_eq(fs_inode_release(&t, f), 1);
    ck_assert_ptr_null(fs_inode_get(&t, ino));
    ck_assert_ptr_null(fs_inode_lookup(&t, FS_INODE_ROOT, "f"));
}
END_TEST

START_TEST(ghosts_are_unbound_files)
{
    char buf[8];
    struct fs_inode *g = NULL;
    ck_assert_int_eq(fs_inode_ghost(&t, 0, &g), 0);
    ck_assert_uint_eq(g->flags & FS_INODE_GHOST, FS_INODE_GHOST);
    ck_assert_ptr_null(g->name);
    ck_assert_int_eq(fs_inode_path(&t, g, buf, sizeof buf), -ENOENT);
    fs_inode_ref(g);
    ck_assert_int_eq(fs_inode_forget(&t, g->ino, 1), 1);
}
END_TEST

/* --- generations --- */

START_TEST(reused_slots_never_repeat_ino_and_generation)
{
    uint64_t seen_ino[200];
    uint64_t seen_gen[200];
    int i;
    int j;
    for (i = 0; i < 200; i++) {
        /* Remove-then-recreate the same name, sometimes keeping an older
         * node alive so slots are reused out of order. */
        struct fs_inode *n = bind(FS_INODE_ROOT, "orders", 0);
        seen_ino[i] = n->ino;
        seen_gen[i] = n->generation;
        fs_inode_ref(n);
        fs_inode_unbind(&t, n);
        if (i % 3 != 0) {
            fs_inode_forget(&t, n->ino, 1);
        }
    }
    for (i = 0; i < 200; i++) {
        for (j = i + 1; j < 200; j++) {
            ck_assert(seen_ino[i] != seen_ino[j] || seen_gen[i] != seen_gen[j]);
        }
    }
    /* Slots were reused: far fewer distinct inos than nodes. */
    ck_assert_uint_lt(t.used, 100);
}
END_TEST

/* --- scale --- */

START_TEST(ten_thousand_names_resolve)
{
    char name[32];
    struct fs_inode *dir = bind(FS_INODE_ROOT, "topics", FS_INODE_DIR);
    int i;
    fs_inode_ref(dir);
    for (i = 0; i < 10000; i++) {
        snprintf(name, sizeof name, "topic-%d", i);
        fs_inode_ref(bind(dir->ino, name, 0));
    }
    ck_assert_uint_eq(fs_inode_count(&t), 10002);
    for (i = 0; i < 10000; i++) {
        struct fs_inode *n;
        snprintf(name, sizeof name, "topic-%d", i);
        n = fs_inode_lookup(&t, dir->ino, name);
        ck_assert_ptr_nonnull(n);
        ck_assert_str_eq(n->name, name);
    }
    ck_assert_uint_ge(t.nbuckets, 8192);
}
END_TEST

/* --- allocation failures --- */

START_TEST(init_fails_cleanly_on_every_allocation)
{
    struct test_alloc a;
    struct fs_inode_alloc hook = {test_malloc, test_free, &a};
    struct fs_inode_table u;
    long n;
    for (n = 1;; n++) {
        memset(&a, 0, sizeof a);
        a.countdown = n;
        if (fs_inode_init(&u, &hook) == 0) {
            fs_inode_fini(&u);
            ck_assert_int_eq(a.live, 0);
            break;
        }
        ck_assert_int_eq(a.live, 0);
    }
    ck_assert_int_gt(n, 1);
}
END_TEST

START_TEST(bind_fails_cleanly_on_every_allocation)
{
    struct test_alloc a;
    struct fs_inode_alloc hook = {test_malloc, test_free, &a};
    struct fs_inode_table u;
    struct fs_inode *keep = NULL;
    struct fs_inode *n;
    char name[32];
    long k;
    int i;
    int rv;
    for (k = 1; k < 200; k++) {
        memset(&a, 0, sizeof a);
        ck_assert_int_eq(fs_inode_init(&u, &hook), 0);
        ck_assert_int_eq(fs_inode_bind(&u, FS_INODE_ROOT, "n0", 0, &keep), 0);
        fs_inode_ref(keep);
        a.countdown = k;
        rv = 0;
        /* Enough binds to force slot and bucket growth. */
        for (i = 1; i < 130 && rv == 0; i++) {
            n = NULL;
            snprintf(name, sizeof name, "n%d", i % 100);
            rv = fs_inode_bind(&u, FS_INODE_ROOT, name, 0, &n);
            if (rv == 0) {
                fs_inode_ref(n);
            } else {
                ck_assert_int_eq(rv, -ENOMEM);
                ck_assert_ptr_null(n);
            }
        }
        /* The table is intact: the first node still resolves. */
        ck_assert_ptr_nonnull(fs_inode_lookup(&u, FS_INODE_ROOT, "n0"));
        ck_assert_ptr_eq(fs_inode_get(&u, keep->ino), keep);
        fs_inode_fini(&u);
        ck_assert_int_eq(a.live, 0);
    }
}
END_TEST

static Suite *inode_suite(void)
{
    Suite *s = suite_create("fs_inode");
    TCase *tc;

    tc = tcase_create("binding");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, root_exists_with_empty_path);
    tcase_add_test(tc, bound_names_resolve_and_build_paths);
    tcase_add_test(tc, path_reports_a_short_buffer);
    tcase_add_test(tc, bind_refuses_bad_parents_and_empty_names);
    tcase_add_test(tc, rebinding_a_name_detaches_the_old_node);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifetime");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, forget_frees_at_zero_lookups);
    tcase_add_test(tc, forget_tolerates_unknown_inos_and_large_counts);
    tcase_add_test(tc, pins_keep_forgotten_nodes_alive);
    tcase_add_test(tc, bound_children_keep_their_directory);
    tcase_add_test(tc, unreferenced_new_nodes_are_released);
    tcase_add_test(tc, ghosts_are_unbound_files);
    suite_add_tcase(s, tc);

    tc = tcase_create("generations");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, reused_slots_never_repeat_ino_and_generation);
    suite_add_tcase(s, tc);

    tc = tcase_create("scale");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ten_thousand_names_resolve);
    suite_add_tcase(s, tc);

    tc = tcase_create("allocation_failures");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, init_fails_cleanly_on_every_allocation);
    tcase_add_test(tc, bind_fails_cleanly_on_every_allocation);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(inode_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
