/* Unit tests of the goulettefs option parser (tools/options.c). */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

static struct options opts;
static char err[512];

static enum options_result parse(const char *first, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    const char *a;

    argv[argc++] = "goulettefs";
    va_start(ap, first);
    for (a = first; a != NULL; a = va_arg(ap, const char *)) {
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    argv[argc] = NULL;
    err[0] = '\0';
    return options_parse(&opts, argc, argv, err, sizeof err);
}

static void teardown(void)
{
    options_fini(&opts);
}

START_TEST(defaults_make_a_single_member_cluster)
{
    ck_assert_int_eq(parse(NULL), OPTIONS_RUN);
    ck_assert_str_eq(opts.name, "default");
    ck_assert_str_eq(opts.data_dir, "./default.goulette");
    ck_assert_ptr_null(opts.mount);
    ck_assert_str_eq(opts.peer_listen.host, "127.0.0.1");
    ck_assert_uint_eq(opts.peer_listen.port, 7001);
    ck_assert_str_eq(opts.grpc_listen.host, "127.0.0.1");
    ck_assert_uint_eq(opts.grpc_listen.port, 50052);
    ck_assert_uint_eq(opts.n_members, 1);
    ck_assert_str_eq(opts.members[0].name, "default");
    ck_assert_uint_eq(opts.members[0].peer.port, 7001);
    ck_assert_int_eq(opts.log_level, GOULETTE_LOG_INFO);
    ck_assert_uint_eq(opts.snapshot_threshold, 1024);
    ck_assert_uint_eq(opts.broker_suspect_ms, 60000);
    ck_assert_uint_eq(opts.broker_down_ms, 120000);
    ck_assert_uint_eq(opts.report_interval_ms, 10000);
    ck_assert(!opts.has_join);
    ck_assert(!opts.allow_other);
}
END_TEST

START_TEST(data_dir_default_follows_name)
{
    ck_assert_int_eq(parse("--name", "n2", NULL), OPTIONS_RUN);
    ck_assert_str_eq(opts.data_dir, "./n2.goulette");
    ck_assert_str_eq(opts.members[0].name, "n2");
}
END_TEST

START_TEST(every_option_is_taken)
{
    ck_assert_int_eq(
        parse("--name", "n1", "--data-dir", "/tmp/x", "--mount", "/mnt/g",
              "--peer-listen", "127.0.0.1:7101", "--grpc-listen",
              "localhost:50100", "--initial-cluster",
              "n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=[::1]:7103",
              "--log-level", "debug", "--allow-other", "--snapshot-threshold",
              "50", NULL),
        OPTIONS_RUN);
    ck_assert_str_eq(opts.data_dir, "/tmp/x");
    ck_assert_str_eq(opts.mount, "/mnt/g");
    ck_assert_uint_eq(opts.peer_listen.port, 7101);
    ck_assert_str_eq(opts.grpc_listen.host, "localhost");
    ck_assert_uint_eq(opts.n_members, 3);
    ck_assert_str_eq(opts.members[1].name, "n2");
    ck_assert_uint_eq(opts.members[1].peer.port, 7102);
    ck_assert_str_eq(opts.members[2].peer.host, "::1");
    ck_assert_int_eq(opts.log_level, GOULETTE_LOG_DEBUG);
    ck_assert(opts.allow_other);
    ck_assert_uint_eq(opts.snapshot_threshold, 50);
}
END_TEST

START_TEST(durations_are_taken)
{
    ck_assert_int_eq(
        parse("--broker-suspect-after", "3s", "--broker-down-after", "2m",
              "--report-interval", "1500ms", NULL),
        OPTIONS_RUN);
    ck_assert_uint_eq(opts.broker_suspect_ms, 3000);
    ck_assert_uint_eq(opts.broker_down_ms, 120000);
    ck_assert_uint_eq(opts.report_interval_ms, 1500);
}
END_TEST

START_TEST(join_is_taken)
{
    ck_assert_int_eq(parse("--name", "n4", "--join", "127.0.0.1:7001", NULL),
                     OPTIONS_RUN);
    ck_assert(opts.has_join);
    ck_assert_uint_eq(opts.join.port, 7001);
}
END_TEST

START_TEST(help_and_version_are_recognised)
{
    ck_assert_int_eq(parse("--help", NULL), OPTIONS_HELP);
    options_fini(&opts);
    ck_assert_int_eq(parse("--version", NULL), OPTIONS_VERSION);
    ck_assert_ptr_nonnull(strstr(options_usage(), "--initial-cluster"));
}
END_TEST

/* Each bad command line is a usage error whose message names the problem. */
static const struct
{
    const char *args[4];
    const char *message;
} bad[] = {
    {{"--bogus"}, "unknown option --bogus"},
    {{"--name"}, "needs a value"},
    {{"--name", "a/b"}, "bad --name"},
    {{"--name", ""}, "bad --name"},
    {{"--name", "-x"}, "bad --name"},
    {{"--log-level", "loud"}, "bad --log-level"},
    {{"--peer-listen", "127.0.0.1"}, "bad address"},
    {{"--peer-listen", ":7001"}, "bad address"},
    {{"--peer-listen", "h:0"}, "bad address"},
    {{"--peer-listen", "h:65536"}, "bad address"},
    {{"--grpc-listen", "h:12x"}, "bad address"},
    {{"--grpc-listen", "::1:80"}, "bad address"},
    {{"--join", "nope"}, "bad address"},
    {{"--initial-cluster", "default"}, "is not NAME=HOST:PORT"},
    {{"--initial-cluster", "default=h:1,"}, "ends with a comma"},
    {{"--initial-cluster", "default=h:1,default=h:2"}, "listed twice"},
    {{"--initial-cluster", "other=h:1"}, "does not list this member"},
    {{"--initial-cluster", "default=h"}, "bad address"},
    {{"--initial-cluster", ""}, "is empty"},
    {{"--data-dir", ""}, "needs a directory"},
    {{"--snapshot-threshold", "1"}, "bad --snapshot-threshold"},
    {{"--snapshot-threshold", "12x"}, "bad --snapshot-threshold"},
    {{"--snapshot-threshold", "-5"}, "bad --snapshot-threshold"},
    {{"--broker-down-after", "soon"}, "bad duration"},
    {{"--broker-down-after", "10x"}, "bad duration"},
    {{"--broker-suspect-after", "0s"}, "bad duration"},
    {{"--broker-suspect-after", "3m"}, "must be shorter"},
    {{"--report-interval", "0ms"}, "bad duration"},
    {{"--report-interval", "often"}, "bad duration"},
    {{"extra"}, "unexpected argument"},
};

START_TEST(bad_command_lines_are_usage_errors)
{
    const char *const *a = bad[_i].args;
    ck_assert_int_eq(parse(a[0], a[1], a[2], a[3]), OPTIONS_USAGE);
    ck_assert_msg(strstr(err, bad[_i].message) != NULL,
                  "args %s %s: error \"%s\" lacks \"%s\"", a[0],
                  a[1] ? a[1] : "", err, bad[_i].message);
    ck_assert_ptr_null(strchr(err, '\n'));
}
END_TEST

START_TEST(join_and_initial_cluster_exclude_each_other)
{
    ck_assert_int_eq(
        parse("--join", "h:1", "--initial-cluster", "default=h:2", NULL),
        OPTIONS_USAGE);
    ck_assert_ptr_nonnull(strstr(err, "exclude each other"));
}
END_TEST

START_TEST(hostport_accepts_names_v4_and_bracketed_v6)
{
    struct options_hostport hp;
    ck_assert_int_eq(options_parse_hostport("example.org:1", &hp), 0);
    ck_assert_str_eq(hp.host, "example.org");
    ck_assert_uint_eq(hp.port, 1);
    ck_assert_int_eq(options_parse_hostport("[fe80::1]:65535", &hp), 0);
    ck_assert_str_eq(hp.host, "fe80::1");
    ck_assert_uint_eq(hp.port, 65535);
    ck_assert_int_eq(options_parse_hostport("[::1]7", &hp), -EINVAL);
    ck_assert_int_eq(options_parse_hostport("h:-1", &hp), -EINVAL);
    ck_assert_int_eq(options_parse_hostport("h:123456", &hp), -EINVAL);
    ck_assert_int_eq(options_parse_hostport("a b:1", &hp), -EINVAL);
}
END_TEST

START_TEST(durations_take_units)
{
    uint64_t ms;
    ck_assert_int_eq(options_parse_duration("500ms", &ms), 0);
    ck_assert_uint_eq(ms, 500);
    ck_assert_int_eq(options_parse_duration("3s", &ms), 0);
    ck_assert_uint_eq(ms, 3000);
    ck_assert_int_eq(options_parse_duration("2m", &ms), 0);
    ck_assert_uint_eq(ms, 120000);
    ck_assert_int_eq(options_parse_duration("1h", &ms), 0);
    ck_assert_uint_eq(ms, 3600000);
    ck_assert_int_eq(options_parse_duration("45", &ms), 0);
    ck_assert_uint_eq(ms, 45000);
    ck_assert_int_eq(options_parse_duration("s", &ms), -EINVAL);
    ck_assert_int_eq(options_parse_duration("1.5s", &ms), -EINVAL);
    ck_assert_int_eq(options_parse_duration("99999999999999s", &ms), -EINVAL);
}
END_TEST

START_TEST(names_are_restricted_to_a_safe_alphabet)
{
    char longname[OPTIONS_NAME_MAX + 2];
    ck_assert(options_name_valid("n1"));
    ck_assert(options_name_valid("sentinel-1.east_2"));
    ck_assert(!options_name_valid(".hidden"));
    ck_assert(!options_name_valid("a b"));
    ck_assert(!options_name_valid("a=b"));
    memset(longname, 'a', sizeof longname);
    longname[OPTIONS_NAME_MAX] = '\0';
    ck_assert(options_name_valid(longname));
    longname[OPTIONS_NAME_MAX] = 'a';
    longname[OPTIONS_NAME_MAX + 1] = '\0';
    ck_assert(!options_name_valid(longname));
}
END_TEST

static Suite *options_suite(void)
{
    Suite *s = suite_create("options");
    TCase *tc = tcase_create("parse");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, defaults_make_a_single_member_cluster);
    tcase_add_test(tc, data_dir_default_follows_name);
    tcase_add_test(tc, every_option_is_taken);
    tcase_add_test(tc, durations_are_taken);
    tcase_add_test(tc, join_is_taken);
    tcase_add_test(tc, help_and_version_are_recognised);
    tcase_add_loop_test(tc, bad_command_lines_are_usage_errors, 0,
                        (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(tc, join_and_initial_cluster_exclude_each_other);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    tcase_add_test(tc, hostport_accepts_names_v4_and_bracketed_v6);
    tcase_add_test(tc, names_are_restricted_to_a_safe_alphabet);
    tcase_add_test(tc, durations_take_units);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(options_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
