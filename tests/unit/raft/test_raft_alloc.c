/* Allocation failures inside the core: for N = 1, 2, ... the Nth allocation
 * made inside raft_step() fails (the test binary wraps malloc, calloc and
 * realloc at link time).  raft_step must return -ENOMEM or succeed, never
 * crash, and once memory is back the cluster must converge with consistent
 * state machines.  Leaks are for the sanitizer build (-Db_sanitize=address).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cluster.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);

/* Test-only state of the allocator hook (the core itself has none). */
static bool armed;
static unsigned countdown; /* fail when it reaches 0 from 1 */
static unsigned failures;

static bool fail_now(void)
{
    if (!armed || countdown == 0) {
        return false;
    }
    if (--countdown == 0) {
        failures++;
        return true;
    }
    return false;
}

void *__wrap_malloc(size_t size)
{
    return fail_now() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    return fail_now() ? NULL : __real_realloc(p, size);
}

static void arm(bool on)
{
    armed = on;
}

static struct test_cluster C;

static void run(unsigned n)
{
    while (n-- > 0) {
        cluster_tick_all(&C, 1);
        cluster_deliver(&C);
    }
}

/* A workload touching every allocation site: start, election, proposals,
 * forwarding, reads, a membership change, snapshots sent in chunks. */
static void workload(void)
{
    unsigned i;
    cluster_start(&C);
    cluster_elect(&C, 1);
    run(2);
    for (i = 0; i < 5; i++) {
        cluster_propose(&C, 1 + i % 3, i);
        cluster_read(&C, 1 + i % 3, i);
    }
    run(2);
    cluster_conf_change(&C, 1, RAFT_CONF_ADD_LEARNER, 4);
    run(3);
    cluster_snapshot(&C, 1, 0);
    cluster_crash(&C, 3);
    cluster_propose(&C, 1, 50);
    run(2);
    cluster_snapshot(&C, 1, 0);
    cluster_restart(&C, 3);
    run(5);
}

START_TEST(every_allocation_failure_is_survived)
{
    unsigned n, i;
    for (n = 1; n < 400; n++) {
        raft_id leader = 0;
        cluster_init(&C, 4, 3);
        for (i = 1; i <= 4; i++) {
            cluster_node(&C, i)->cfg.snapshot_chunk_bytes = 300;
        }
        C.arm = arm;
        C.oom_tolerant = true;
        countdown = n;
        if (getenv("ALLOC_DEBUG"))
            fprintf(stderr, "n=%u\n", n);
        failures = 0;
        workload();
        countdown = 0;
        if (failures == 0) {
            cluster_fini(&C);
            break; /* n is past the last allocation of the workload */
        }
        for (i = 0; i < 200 && leader == 0; i++) {
            run(1);
            leader = cluster_leader(&C);
        }
        ck_assert_msg(leader != 0, "no leader after failing allocation %u", n);
        cluster_propose(&C, leader, 1000);
        run(30);
        for (i = 1; i <= 3; i++) {
            ck_assert_msg(cluster_node(&C, i)->applied ==
                              raft_last_index(&cluster_node(&C, leader)->raft),
                          "node %u behind after failing allocation %u", i, n);
        }
        cluster_check_applied(&C);
        cluster_fini(&C);
    }
    ck_assert_uint_gt(n, 20); /* the workload did allocate */
    cluster_init(&C, 1, 1);
}
END_TEST

static void teardown(void)
{
    cluster_fini(&C);
}

int main(void)
{
    Suite *s = suite_create("raft_alloc");
    TCase *t = tcase_create("enomem");
    SRunner *sr;
    int failed;
    tcase_add_checked_fixture(t, NULL, teardown);
    tcase_set_timeout(t, 600);
    tcase_add_test(t, every_allocation_failure_is_survived);
    suite_add_tcase(s, t);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
