/* Unit tests of rpc/status.c: the goulette error -> gRPC status boundary,
 * status names and the default limits. */
#include <check.h>
#include <stdlib.h>

#include <goulette/err.h>
#include <goulette/rpc.h>

START_TEST(leadership_conditions_are_unavailable)
{
    ck_assert_int_eq(rpc_status_from(GOULETTE_ENOTLEADER),
                     RPC_STATUS_UNAVAILABLE);
    ck_assert_int_eq(rpc_status_from(GOULETTE_ENOLEADER),
                     RPC_STATUS_UNAVAILABLE);
    ck_assert_int_eq(rpc_status_from(GOULETTE_ENOQUORUM),
                     RPC_STATUS_UNAVAILABLE);
    ck_assert_int_eq(rpc_status_from(GOULETTE_EDROPPED),
                     RPC_STATUS_UNAVAILABLE);
    ck_assert_int_eq(rpc_status_from(GOULETTE_ESHUTDOWN),
                     RPC_STATUS_UNAVAILABLE);
}
END_TEST

START_TEST(errnos_map_to_their_grpc_meaning)
{
    ck_assert_int_eq(rpc_status_from(0), RPC_STATUS_OK);
    ck_assert_int_eq(rpc_status_from(-EINVAL), RPC_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(rpc_status_from(GOULETTE_EREJECTED),
                     RPC_STATUS_INVALID_ARGUMENT);
    ck_assert_int_eq(rpc_status_from(-ENOENT), RPC_STATUS_NOT_FOUND);
    ck_assert_int_eq(rpc_status_from(-ETIMEDOUT), RPC_STATUS_DEADLINE_EXCEEDED);
    ck_assert_int_eq(rpc_status_from(-ECANCELED), RPC_STATUS_CANCELLED);
    ck_assert_int_eq(rpc_status_from(-ENOMEM), RPC_STATUS_RESOURCE_EXHAUSTED);
    ck_assert_int_eq(rpc_status_from(GOULETTE_ENOBROKERS),
                     RPC_STATUS_FAILED_PRECONDITION);
    ck_assert_int_eq(rpc_status_from(GOULETTE_ECORRUPT), RPC_STATUS_DATA_LOSS);
    ck_assert_int_eq(rpc_status_from(-EXDEV), RPC_STATUS_INTERNAL);
    ck_assert_int_eq(rpc_status_from(7), RPC_STATUS_UNKNOWN);
}
END_TEST

START_TEST(names_follow_the_grpc_table)
{
    ck_assert_str_eq(rpc_status_name(RPC_STATUS_OK), "OK");
    ck_assert_str_eq(rpc_status_name(RPC_STATUS_DEADLINE_EXCEEDED),
                     "DEADLINE_EXCEEDED");
    ck_assert_str_eq(rpc_status_name(RPC_STATUS_UNAUTHENTICATED),
                     "UNAUTHENTICATED");
    ck_assert_str_eq(rpc_status_name((enum rpc_status)99), "UNKNOWN");
}
END_TEST

START_TEST(default_limits_are_consistent)
{
    struct rpc_limits l;

    rpc_limits_default(&l);
    ck_assert_uint_eq(l.max_message, 4u << 20);
    /* One whole message always fits in a connection's budget, and a
     * connection's in the server's. */
    ck_assert_uint_ge(l.max_conn_buffered, l.max_message + 5);
    ck_assert_uint_ge(l.max_server_buffered, l.max_conn_buffered);
    ck_assert_uint_gt(l.max_concurrent_streams, 0);
    ck_assert_uint_gt(l.reset_burst, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rpc_status");
    TCase *tc = tcase_create("status");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, leadership_conditions_are_unavailable);
    tcase_add_test(tc, errnos_map_to_their_grpc_meaning);
    tcase_add_test(tc, names_follow_the_grpc_table);
    tcase_add_test(tc, default_limits_are_consistent);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
