/* Unit tests of rpc/wire.c: grpc-timeout, grpc-message escaping,
 * content-type and the token bucket. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

static uint64_t parse(const char *v)
{
    uint64_t ms = 12345;
    ck_assert_int_eq(rpc_wire_timeout_parse(v, strlen(v), &ms), 0);
    return ms;
}

START_TEST(timeout_parses_every_unit)
{
    ck_assert_uint_eq(parse("2H"), 2ull * 3600 * 1000);
    ck_assert_uint_eq(parse("3M"), 3ull * 60 * 1000);
    ck_assert_uint_eq(parse("5S"), 5000);
    ck_assert_uint_eq(parse("250m"), 250);
    ck_assert_uint_eq(parse("1500u"), 2);
    ck_assert_uint_eq(parse("1000u"), 1);
    ck_assert_uint_eq(parse("1n"), 1);
    ck_assert_uint_eq(parse("0S"), 0);
    ck_assert_uint_eq(parse("99999999S"), 99999999000ull);
}
END_TEST

START_TEST(timeout_rejects_malformed_values)
{
    static const char *bad[] = {"",    "S",   "10",         "10s",  "1x",
                                "-1S", " 1S", "123456789S", "1.5S", "1SS"};
    uint64_t ms;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(
            rpc_wire_timeout_parse(bad[i], strlen(bad[i]), &ms) == -EINVAL,
            "accepted \"%s\"", bad[i]);
    }
}
END_TEST

START_TEST(timeout_format_round_trips)
{
    static const uint64_t v[] = {
        0, 1, 999, 5000, 99999999, 100000000, 3600ull * 1000 * 1000};
    char out[16];
    size_t i;

    for (i = 0; i < sizeof v / sizeof v[0]; i++) {
        rpc_wire_timeout_format(v[i], out);
        ck_assert_uint_ge(parse(out), v[i]);
        ck_assert_uint_le(strlen(out), 9);
    }
}
END_TEST

START_TEST(message_encoding_escapes_non_ascii_and_percent)
{
    const char *m = "topic t \xe6\xb2\xa1 100%";
    char out[64];
    size_t n = rpc_wire_message_encode(m, strlen(m), out, sizeof out);

    ck_assert_uint_eq(n, strlen("topic t %E6%B2%A1 100%25"));
    ck_assert_int_eq(memcmp(out, "topic t %E6%B2%A1 100%25", n), 0);
    ck_assert_uint_eq(rpc_wire_message_encode(m, strlen(m), NULL, 0), n);
}
END_TEST

START_TEST(message_decoding_inverts_encoding)
{
    const char *m = "Broker\xe5\xb7\xb2\xe5\xad\x98\xe5\x9c\xa8 \n\t%x";
    char enc[128];
    char dec[128];
    size_t n = rpc_wire_message_encode(m, strlen(m), enc, sizeof enc);

    ck_assert_uint_eq(rpc_wire_message_decode(enc, n, dec), strlen(m));
    ck_assert_str_eq(dec, m);
}
END_TEST

START_TEST(message_decoding_keeps_malformed_escapes)
{
    char dec[16];

    rpc_wire_message_decode("a%zz%4", 6, dec);
    ck_assert_str_eq(dec, "a%zz%4");
}
END_TEST

START_TEST(content_type_accepts_grpc_and_subtypes_only)
{
    ck_assert(rpc_wire_content_type_ok("application/grpc", 16));
    ck_assert(rpc_wire_content_type_ok("application/grpc+proto", 22));
    ck_assert(rpc_wire_content_type_ok("application/grpc;charset=x", 26));
    ck_assert(!rpc_wire_content_type_ok("application/grpcx", 17));
    ck_assert(!rpc_wire_content_type_ok("application/json", 16));
    ck_assert(!rpc_wire_content_type_ok("", 0));
}
END_TEST

START_TEST(bucket_allows_a_burst_then_the_rate)
{
    struct rpc_wire_bucket b;
    int i;

    rpc_wire_bucket_init(&b, 5, 2, 1000);
    for (i = 0; i < 5; i++) {
        ck_assert(rpc_wire_bucket_take(&b, 1000));
    }
    ck_assert(!rpc_wire_bucket_take(&b, 1000));
    ck_assert(!rpc_wire_bucket_take(&b, 1400)); /* 0.8 token */
    ck_assert(rpc_wire_bucket_take(&b, 1500));  /* 1 token at 2/s */
    ck_assert(!rpc_wire_bucket_take(&b, 1500));
    /* A long pause refills only up to the burst. */
    for (i = 0; i < 5; i++) {
        ck_assert(rpc_wire_bucket_take(&b, 100000));
    }
    ck_assert(!rpc_wire_bucket_take(&b, 100000));
    /* A clock going backwards refills nothing. */
    ck_assert(!rpc_wire_bucket_take(&b, 50));
}
END_TEST

static Suite *wire_suite(void)
{
    Suite *s = suite_create("rpc_wire");
    TCase *tc;

    tc = tcase_create("timeout");
    tcase_add_test(tc, timeout_parses_every_unit);
    tcase_add_test(tc, timeout_rejects_malformed_values);
    tcase_add_test(tc, timeout_format_round_trips);
    suite_add_tcase(s, tc);

    tc = tcase_create("message");
    tcase_add_test(tc, message_encoding_escapes_non_ascii_and_percent);
    tcase_add_test(tc, message_decoding_inverts_encoding);
    tcase_add_test(tc, message_decoding_keeps_malformed_escapes);
    tcase_add_test(tc, content_type_accepts_grpc_and_subtypes_only);
    suite_add_tcase(s, tc);

    tc = tcase_create("bucket");
    tcase_add_test(tc, bucket_allows_a_burst_then_the_rate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(wire_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
