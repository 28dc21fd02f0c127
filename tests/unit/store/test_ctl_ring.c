/* Tests for `goulettectl ring` (tools/ctl_ring.c): output lines against the
 * ring vectors of goulette-sentinel.md §2.6, and usage errors (exit 2). */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

static char out[4096];
static char err[4096];

/* Run ctl_ring_main with the NULL-terminated arguments, capturing stdout
 * and stderr (each test runs in its own process). */
static int run(const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    FILE *o = tmpfile();
    FILE *e = tmpfile();
    int saved_out = dup(1);
    int saved_err = dup(2);
    int rv;
    size_t n;

    argv[argc++] = (char *)first;
    va_start(ap, first);
    for (char *a; (a = va_arg(ap, char *)) != NULL;) {
        argv[argc++] = a;
    }
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    dup2(fileno(o), 1);
    dup2(fileno(e), 2);
    rv = ctl_ring_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    rewind(o);
    rewind(e);
    n = fread(out, 1, sizeof out - 1, o);
    out[n] = '\0';
    n = fread(err, 1, sizeof err - 1, e);
    err[n] = '\0';
    fclose(o);
    fclose(e);
    return rv;
}

START_TEST(prints_goulette_order_for_each_topic)
{
    ck_assert_int_eq(run("ring", "--brokers", "broker1,broker2,broker3",
                         "topic1", "topic2", "topic3", NULL),
                     0);
    ck_assert_str_eq(out,
                     "topic1: broker3 broker1 broker2\n"
                     "topic2: broker3 broker2 broker1\n"
                     "topic3: broker3 broker2 broker1\n");
    ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(accepts_equals_forms_and_vnodes)
{
    ck_assert_int_eq(run("ring", "--vnodes=3", "--brokers=node1,node2,node3",
                         "test-topic", NULL),
                     0);
    ck_assert_str_eq(out, "test-topic: node1 node3 node2\n");
    ck_assert_int_eq(run("ring", "--brokers", "broker-1,broker-2,broker-3",
                         "--", "test-topic", NULL),
                     0);
    ck_assert_str_eq(out, "test-topic: broker-2 broker-1 broker-3\n");
}
END_TEST

START_TEST(one_vnode_drops_the_node_returned_with_the_wrap_error)
{
    ck_assert_int_eq(
        run("ring", "--vnodes", "1", "--brokers", "a,b", "x", "k", NULL), 0);
    ck_assert_str_eq(out, "x: a\nk: a\n");
}
END_TEST

START_TEST(bad_arguments_are_usage_errors)
{
    const char *cases[][6] = {
        {"ring", "topic1", NULL},
        {"ring", "--brokers", "", "topic1", NULL},
        {"ring", "--brokers=", "topic1", NULL},
        {"ring", "--brokers", "a,,b", "topic1", NULL},
        {"ring", "--brokers", "a,b,", "topic1", NULL},
        {"ring", "--brokers", "a,a", "topic1", NULL},
        {"ring", "--brokers", "a", NULL},
        {"ring", "--brokers", NULL},
        {"ring", "--brokers", "a", "--vnodes", "0", NULL},
        {"ring", "--brokers", "a", "--vnodes", "x1", NULL},
        {"ring", "--brokers", "a", "--vnodes", "100001", NULL},
        {"ring", "--bogus", "--brokers", "a", "t", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *const *c = cases[i];
        ck_assert_int_eq(run(c[0], c[1], c[2], c[3], c[4], c[5], NULL), 2);
        ck_assert_str_eq(out, "");
        ck_assert_ptr_nonnull(strstr(err, "usage: goulettectl ring"));
    }
}
END_TEST

static Suite *ctl_ring_suite(void)
{
    Suite *s = suite_create("ctl_ring");
    TCase *tc = tcase_create("output");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, prints_goulette_order_for_each_topic);
    tcase_add_test(tc, accepts_equals_forms_and_vnodes);
    tcase_add_test(tc, one_vnode_drops_the_node_returned_with_the_wrap_error);
    suite_add_tcase(s, tc);
    tc = tcase_create("usage");
    tcase_add_test(tc, bad_arguments_are_usage_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ctl_ring_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
