/* Tests of struct raft_configuration: membership values and their
 * encoding (untrusted bytes must decode to -EBADMSG, never crash). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>
#include <goulette/raft.h>

START_TEST(servers_are_kept_sorted_and_unique)
{
    struct raft_configuration c;
    raft_configuration_init(&c);
    ck_assert_int_eq(raft_configuration_add(&c, 3, "a:3", RAFT_VOTER), 0);
    ck_assert_int_eq(raft_configuration_add(&c, 1, "a:1", RAFT_LEARNER), 0);
    ck_assert_int_eq(raft_configuration_add(&c, 2, "a:2", RAFT_VOTER), 0);
    ck_assert_int_eq(raft_configuration_add(&c, 2, "a:2", RAFT_VOTER), -EEXIST);
    ck_assert_uint_eq(c.n, 3);
    ck_assert_uint_eq(c.servers[0].id, 1);
    ck_assert_uint_eq(c.servers[2].id, 3);
    ck_assert_int_eq(raft_configuration_get(&c, 1)->role, RAFT_LEARNER);
    ck_assert_ptr_null(raft_configuration_get(&c, 4));
    raft_configuration_fini(&c);
}
END_TEST

START_TEST(invalid_servers_are_refused)
{
    struct raft_configuration c;
    char long_address[RAFT_ADDRESS_MAX + 1];
    memset(long_address, 'x', sizeof long_address - 1);
    long_address[RAFT_ADDRESS_MAX] = '\0';
    raft_configuration_init(&c);
    ck_assert_int_eq(raft_configuration_add(&c, 0, "a", RAFT_VOTER), -EINVAL);
    ck_assert_int_eq(raft_configuration_add(&c, 1, "", RAFT_VOTER), -EINVAL);
    ck_assert_int_eq(raft_configuration_add(&c, 1, long_address, RAFT_VOTER),
                     -EINVAL);
    ck_assert_int_eq(raft_configuration_add(&c, 1, "a", 7), -EINVAL);
    ck_assert_uint_eq(c.n, 0);
    raft_configuration_fini(&c);
}
END_TEST

START_TEST(encoding_round_trips)
{
    struct raft_configuration c, d, e;
    struct goulette_buf buf;
    raft_configuration_init(&c);
    raft_configuration_init(&d);
    raft_configuration_init(&e);
    ck_assert_int_eq(raft_configuration_add(&c, 9, "h:9", RAFT_VOTER), 0);
    ck_assert_int_eq(raft_configuration_add(&c, 4, "h:4", RAFT_LEARNER), 0);
    ck_assert_int_eq(raft_configuration_encode(&c, &buf), 0);
    ck_assert_int_eq(raft_configuration_decode(&buf, &d), 0);
    ck_assert_uint_eq(d.n, 2);
    ck_assert_uint_eq(d.servers[0].id, 4);
    ck_assert_int_eq(d.servers[0].role, RAFT_LEARNER);
    ck_assert_str_eq(d.servers[1].address, "h:9");
    ck_assert_int_eq(raft_configuration_copy(&d, &e), 0);
    ck_assert_uint_eq(e.n, 2);
    free(buf.base);
    raft_configuration_fini(&c);
    raft_configuration_fini(&d);
    raft_configuration_fini(&e);
}
END_TEST

START_TEST(every_truncation_and_corruption_is_rejected_cleanly)
{
    struct raft_configuration c, d;
    struct goulette_buf buf, cut;
    uint8_t *copy;
    size_t len, i;
    raft_configuration_init(&c);
    ck_assert_int_eq(raft_configuration_add(&c, 1, "h:1", RAFT_VOTER), 0);
    ck_assert_int_eq(raft_configuration_add(&c, 2, "h:2", RAFT_VOTER), 0);
    ck_assert_int_eq(raft_configuration_encode(&c, &buf), 0);
    for (len = 0; len < buf.len; len++) {
        raft_configuration_init(&d);
        cut.base = len > 0 ? buf.base : NULL;
        cut.len = len;
        ck_assert_int_eq(raft_configuration_decode(&cut, &d), -EBADMSG);
        ck_assert_uint_eq(d.n, 0);
    }
    copy = malloc(buf.len);
    for (i = 0; i < buf.len; i++) {
        int rv;
        memcpy(copy, buf.base, buf.len);
        copy[i] ^= 0xff;
        cut.base = copy;
        cut.len = buf.len;
        raft_configuration_init(&d);
        rv = raft_configuration_decode(&cut, &d);
        ck_assert(rv == 0 || rv == -EBADMSG);
        raft_configuration_fini(&d);
    }
    free(copy);
    free(buf.base);
    raft_configuration_fini(&c);
}
END_TEST

static Suite *configuration_suite(void)
{
    Suite *s = suite_create("raft_configuration");
    TCase *t = tcase_create("values");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, servers_are_kept_sorted_and_unique);
    tcase_add_test(t, invalid_servers_are_refused);
    suite_add_tcase(s, t);
    t = tcase_create("encoding");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, encoding_round_trips);
    tcase_add_test(t, every_truncation_and_corruption_is_rejected_cleanly);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(configuration_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
