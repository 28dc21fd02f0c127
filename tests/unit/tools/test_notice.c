/* Tests of the pure pieces of renewal forwarding: the renewal set
 * (tools/renewals.c: dedup, order, bound) and the PeerNotice checks
 * (tools/notice.c: what a member accepts from another). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notice.h"
#include "renewals.h"

START_TEST(renewals_dedup_and_keep_arrival_order)
{
    struct renewals r;

    ck_assert_int_eq(renewals_init(&r, 16), 0);
    ck_assert_int_eq(renewals_add(&r, "b2"), 1);
    ck_assert_int_eq(renewals_add(&r, "b1"), 1);
    ck_assert_int_eq(renewals_add(&r, "b2"), 0);
    ck_assert_int_eq(renewals_add(&r, "b3"), 1);
    ck_assert_int_eq(renewals_add(&r, "b1"), 0);
    ck_assert_uint_eq(r.n, 3);
    ck_assert_str_eq(r.ids[0], "b2");
    ck_assert_str_eq(r.ids[1], "b1");
    ck_assert_str_eq(r.ids[2], "b3");
    renewals_clear(&r);
    ck_assert_uint_eq(r.n, 0);
    ck_assert_int_eq(renewals_add(&r, "b1"), 1);
    ck_assert_uint_eq(r.n, 1);
    renewals_fini(&r);
}
END_TEST

START_TEST(renewals_are_bounded_and_count_what_they_drop)
{
    struct renewals r;
    char id[32];
    unsigned i;

    ck_assert_int_eq(renewals_init(&r, 0), -EINVAL);
    ck_assert_int_eq(renewals_init(&r, 100), 0);
    for (i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "broker-%u", i);
        ck_assert_int_eq(renewals_add(&r, id), 1);
    }
    /* Held ids are still recognised when full; new ones are refused. */
    ck_assert_int_eq(renewals_add(&r, "broker-7"), 0);
    ck_assert_int_eq(renewals_add(&r, "broker-100"), -ENOBUFS);
    ck_assert_int_eq(renewals_add(&r, "broker-101"), -ENOBUFS);
    ck_assert_uint_eq(r.dropped, 2);
    ck_assert_uint_eq(r.n, 100);
    for (i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "broker-%u", i);
        ck_assert_str_eq(r.ids[i], id);
        ck_assert_int_eq(renewals_add(&r, id), 0);
    }
    renewals_fini(&r);
}
END_TEST

static struct goulette_buf pack(char **ids, size_t n, const char *topic)
{
    Goulettefs__PeerNotice pn = GOULETTEFS__PEER_NOTICE__INIT;
    Goulettefs__RolesDelivered rd = GOULETTEFS__ROLES_DELIVERED__INIT;
    Goulettefs__RolesDelivered *rds[1] = {&rd};
    struct goulette_buf buf;

    pn.renewed_brokers = ids;
    pn.n_renewed_brokers = n;
    if (topic != NULL) {
        rd.topic = (char *)topic;
        rd.digest = 0x1234;
        pn.delivered = rds;
        pn.n_delivered = 1;
    }
    ck_assert_int_eq(notice_pack(&pn, &buf), 0);
    return buf;
}

START_TEST(notice_round_trip)
{
    char *ids[] = {"b1", "broker two"};
    struct goulette_buf buf = pack(ids, 2, "orders");
    Goulettefs__PeerNotice *n;

    ck_assert_int_eq(notice_unpack(buf.base, buf.len, &n), 0);
    ck_assert_uint_eq(n->n_renewed_brokers, 2);
    ck_assert_str_eq(n->renewed_brokers[0], "b1");
    ck_assert_str_eq(n->renewed_brokers[1], "broker two");
    ck_assert_uint_eq(n->n_delivered, 1);
    ck_assert_str_eq(n->delivered[0]->topic, "orders");
    ck_assert_uint_eq(n->delivered[0]->digest, 0x1234);
    notice_free(n);
    free(buf.base);
}
END_TEST

START_TEST(empty_notice_is_not_packed)
{
    Goulettefs__PeerNotice pn = GOULETTEFS__PEER_NOTICE__INIT;
    struct goulette_buf buf;

    ck_assert_int_eq(notice_pack(&pn, &buf), -EINVAL);
    ck_assert_ptr_null(buf.base);
}
END_TEST

START_TEST(malformed_notices_are_refused)
{
    static const uint8_t not_protobuf[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    static const uint8_t truncated[] = {0x0a, 0x05, 'b', '1'};
    /* field 1, length 3, "b\0c": a name a C string would cut to "b" */
    static const uint8_t with_nul[] = {0x0a, 0x03, 'b', 0x00, 'c'};
    /* field 1 with a wire type of varint */
    static const uint8_t wrong_type[] = {0x08, 0x01};
    char *bad_names[] = {"a/b"};
    char *dots[] = {".."};
    char *empty[] = {""};
    Goulettefs__PeerNotice *n = (void *)1;
    struct goulette_buf buf;

    ck_assert_int_eq(notice_unpack(not_protobuf, sizeof not_protobuf, &n),
                     -EBADMSG);
    ck_assert_ptr_null(n);
    ck_assert_int_eq(notice_unpack(truncated, sizeof truncated, &n), -EBADMSG);
    ck_assert_int_eq(notice_unpack(with_nul, sizeof with_nul, &n), -EBADMSG);
    ck_assert_int_eq(notice_unpack(wrong_type, sizeof wrong_type, &n),
                     -EBADMSG);
    buf = pack(bad_names, 1, NULL);
    ck_assert_int_eq(notice_unpack(buf.base, buf.len, &n), -EINVAL);
    free(buf.base);
    buf = pack(dots, 1, NULL);
    ck_assert_int_eq(notice_unpack(buf.base, buf.len, &n), -EINVAL);
    free(buf.base);
    buf = pack(empty, 1, NULL);
    ck_assert_int_eq(notice_unpack(buf.base, buf.len, &n), -EINVAL);
    free(buf.base);
    buf = pack(NULL, 0, "x/y");
    ck_assert_int_eq(notice_unpack(buf.base, buf.len, &n), -EINVAL);
    free(buf.base);
    ck_assert_ptr_null(n);
}
END_TEST

START_TEST(unknown_fields_are_ignored)
{
    /* field 1 "b1", then field 15 (varint 7), from a newer member */
    static const uint8_t newer[] = {0x0a, 0x02, 'b', '1', 0x78, 0x07};
    Goulettefs__PeerNotice *n;

    ck_assert_int_eq(notice_unpack(newer, sizeof newer, &n), 0);
    ck_assert_uint_eq(n->n_renewed_brokers, 1);
    ck_assert_str_eq(n->renewed_brokers[0], "b1");
    notice_free(n);
}
END_TEST

START_TEST(random_bytes_never_crash)
{
    uint8_t buf[64];
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    Goulettefs__PeerNotice *n;
    unsigned i, j;

    for (i = 0; i < 20000; i++) {
        size_t len = 1 + i % sizeof buf;
        for (j = 0; j < len; j++) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            buf[j] = (uint8_t)((x * 0x2545F4914F6CDD1DULL) >> 56);
        }
        if (notice_unpack(buf, len, &n) == 0) {
            notice_free(n);
        }
    }
}
END_TEST

static Suite *notice_suite(void)
{
    Suite *s = suite_create("notice");
    TCase *tc;

    tc = tcase_create("renewals");
    tcase_add_test(tc, renewals_dedup_and_keep_arrival_order);
    tcase_add_test(tc, renewals_are_bounded_and_count_what_they_drop);
    suite_add_tcase(s, tc);

    tc = tcase_create("peer_notice");
    tcase_add_test(tc, notice_round_trip);
    tcase_add_test(tc, empty_notice_is_not_packed);
    tcase_add_test(tc, malformed_notices_are_refused);
    tcase_add_test(tc, unknown_fields_are_ignored);
    tcase_add_test(tc, random_bytes_never_crash);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(notice_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
