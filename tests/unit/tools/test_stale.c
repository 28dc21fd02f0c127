/* Unit tests of the predecessor checks of tools/stale.c. */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stale.h"

START_TEST(a_live_process_is_not_dying)
{
    ck_assert(!stale_pid_dying(getpid()));
}
END_TEST

START_TEST(a_missing_process_counts_as_gone)
{
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        _exit(0);
    }
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
    ck_assert(stale_pid_dying(child));
}
END_TEST

START_TEST(a_zombie_is_dying)
{
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        _exit(0);
    }
    /* Not reaped yet: a zombie once it has exited. */
    while (!stale_pid_dying(child)) {
        usleep(1000);
    }
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
}
END_TEST

START_TEST(a_stopped_process_is_not_dying)
{
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        pause();
        _exit(0);
    }
    kill(child, SIGSTOP);
    usleep(20000);
    ck_assert(!stale_pid_dying(child));
    kill(child, SIGKILL);
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
}
END_TEST

START_TEST(no_goulettefs_mount_is_found_where_there_is_none)
{
    unsigned dev = 0;
    ck_assert(!stale_mount_find("/", &dev));
    ck_assert(!stale_mount_find("/nonexistent/goulette", &dev));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stale");
    TCase *tc = tcase_create("checks");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, a_live_process_is_not_dying);
    tcase_add_test(tc, a_missing_process_counts_as_gone);
    tcase_add_test(tc, a_zombie_is_dying);
    tcase_add_test(tc, a_stopped_process_is_not_dying);
    tcase_add_test(tc, no_goulettefs_mount_is_found_where_there_is_none);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
