/* Unit tests for store/value.c: classifying bytes written through the mount
 * and turning writes, creates and unlinks into commands. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "goulette/store.h"

#define CLASSIFY(dir, s) store_value_classify((dir), (s), strlen(s))

static int command(enum store_dir dir,
                   const char *name,
                   const char *value,
                   bool new_file,
                   struct store_cmd *cmd)
{
    return store_value_command(dir, name, STORE_VALUE_WRITE, value,
                               strlen(value), new_file, 42, cmd);
}

START_TEST(replica_counts_are_complete_at_a_newline)
{
    ck_assert_int_eq(CLASSIFY(STORE_DIR_TOPICS, ""), STORE_VALUE_INCOMPLETE);
    ck_assert_int_eq(CLASSIFY(STORE_DIR_TOPICS, "3"), STORE_VALUE_INCOMPLETE);
    ck_assert_int_eq(CLASSIFY(STORE_DIR_TOPICS, "3\n"), STORE_VALUE_COMPLETE);
    ck_assert_int_eq(CLASSIFY(STORE_DIR_TOPICS, " 12 \n"),
                     STORE_VALUE_COMPLETE);
    ck_assert_int_eq(CLASSIFY(STORE_DIR_TOPICS, "0\n"), -EINVAL);
    ck_assert_int_eq(CLASSIFY(STORE_DIR_TOPICS, "1025\n"), -EINVAL);
    ck_assert_int_eq(CLASSIFY(STORE_DIR_TOPICS, "x"), -EINVAL);
    ck_assert_int_eq(CLASSIFY(STORE_DIR_TOPICS, "3 4\n"), -EINVAL);
    ck_assert_int_eq(CLASSIFY(STORE_DIR_TOPICS, "3\n4\n"), -EINVAL);
}
END_TEST

START_TEST(addresses_are_complete_at_a_newline)
{
    ck_assert_int_eq(CLASSIFY(STORE_DIR_BROKERS, "h:1"),
                     STORE_VALUE_INCOMPLETE);
    ck_assert_int_eq(CLASSIFY(STORE_DIR_BROKERS, "h:1\n"),
                     STORE_VALUE_COMPLETE);
    ck_assert_int_eq(CLASSIFY(STORE_DIR_BROKERS, "h\n"), -EINVAL);
    ck_assert_int_eq(CLASSIFY(STORE_DIR_BROKERS, "h :1"), -EINVAL);
}
END_TEST

START_TEST(json_is_complete_when_the_object_closes)
{
    ck_assert_int_eq(CLASSIFY(STORE_DIR_TOPICS, "{\"replica_count\":"),
                     STORE_VALUE_INCOMPLETE);
    ck_assert_int_eq(CLASSIFY(STORE_DIR_TOPICS, "{\"replica_count\":3}"),
                     STORE_VALUE_COMPLETE);
    ck_assert_int_eq(CLASSIFY(STORE_DIR_TOPICS, "{\"replica_count\":3}\n"),
                     STORE_VALUE_COMPLETE);
    ck_assert_int_eq(CLASSIFY(STORE_DIR_TOPICS, "{\"a\" 1}"), -EINVAL);
    ck_assert_int_eq(CLASSIFY(STORE_DIR_TOPICS, "{}}"), -EINVAL);
}
END_TEST

START_TEST(read_only_directories_and_huge_values_are_refused)
{
    char *big = calloc(1, STORE_VALUE_MAX + 2);
    memset(big, '1', STORE_VALUE_MAX + 1);
    ck_assert_int_eq(CLASSIFY(STORE_DIR_OPERATIONS, "1\n"), -EROFS);
    ck_assert_int_eq(CLASSIFY(STORE_DIR_INCREMENT, "1\n"), -EROFS);
    ck_assert_int_eq(
        store_value_classify(STORE_DIR_TOPICS, big, STORE_VALUE_MAX + 1),
        -EFBIG);
    ck_assert_int_eq(store_value_classify(STORE_DIR_TOPICS, "3\0\n", 3),
                     -EINVAL);
    free(big);
}
END_TEST

START_TEST(topic_count_write_generates)
{
    struct store_cmd c;
    ck_assert_int_eq(command(STORE_DIR_TOPICS, "orders", "3\n", false, &c), 0);
    ck_assert_int_eq(c.type, STORE_CMD_GENERATE_TOPIC_REPLICAS);
    ck_assert_str_eq(c.topic, "orders");
    ck_assert_uint_eq(c.replica_count, 3);
    ck_assert(!c.exclusive);
    ck_assert_int_eq(c.timestamp_ns, 42);
    store_cmd_fini(&c);
    ck_assert_int_eq(command(STORE_DIR_TOPICS, "orders", "2", true, &c), 0);
    ck_assert(c.exclusive);
    store_cmd_fini(&c);
    ck_assert_int_eq(command(STORE_DIR_TOPICS, "orders", "0", false, &c),
                     -EINVAL);
}
END_TEST

START_TEST(topic_json_writes_generate_or_report_unreachable)
{
    struct store_cmd c;
    ck_assert_int_eq(
        command(STORE_DIR_TOPICS, "orders",
                "{\"unreachable_brokers\":[\"b1\",\"b2\"]}", false, &c),
        0);
    ck_assert_int_eq(c.type, STORE_CMD_HANDLE_UNREACHABLE);
    ck_assert_uint_eq(c.replica_count, 0);
    ck_assert_uint_eq(c.n_names, 2);
    ck_assert_str_eq(c.names[1], "b2");
    store_cmd_fini(&c);
    /* A record as `cat` shows it, written back. */
    ck_assert_int_eq(
        command(STORE_DIR_TOPICS, "orders",
                "{\"topic\":\"orders\",\"brokers\":[],\"version\":1,"
                "\"timestamp\":1,\"replica_count\":2}\n",
                false, &c),
        0);
    ck_assert_int_eq(c.type, STORE_CMD_GENERATE_TOPIC_REPLICAS);
    ck_assert_uint_eq(c.replica_count, 2);
    store_cmd_fini(&c);
    ck_assert_int_eq(
        command(STORE_DIR_TOPICS, "orders",
                "{\"topic\":\"other\",\"replica_count\":2}", false, &c),
        -EINVAL);
    ck_assert_int_eq(command(STORE_DIR_TOPICS, "orders",
                             "{\"unreachable_brokers\":\"b1\"}", false, &c),
                     -EINVAL);
    ck_assert_int_eq(command(STORE_DIR_TOPICS, "orders", "{}", false, &c),
                     -EINVAL);
}
END_TEST

START_TEST(broker_writes_register_update_or_set_status)
{
    struct store_cmd c;
    ck_assert_int_eq(command(STORE_DIR_BROKERS, "b1", "h:1\n", true, &c), 0);
    ck_assert_int_eq(c.type, STORE_CMD_REGISTER_BROKER);
    ck_assert_str_eq(c.broker_id, "b1");
    ck_assert_str_eq(c.address, "h:1");
    store_cmd_fini(&c);
    ck_assert_int_eq(command(STORE_DIR_BROKERS, "b1", "h:2", false, &c), 0);
    ck_assert_int_eq(c.type, STORE_CMD_KEEPALIVE_BROKER);
    store_cmd_fini(&c);
    ck_assert_int_eq(
        command(STORE_DIR_BROKERS, "b1",
                "{\"broker_id\":\"b1\",\"address\":\"h:1\",\"topics\":[\"t\"]}",
                true, &c),
        0);
    ck_assert_int_eq(c.type, STORE_CMD_REGISTER_BROKER);
    ck_assert_uint_eq(c.n_names, 1);
    store_cmd_fini(&c);
    ck_assert_int_eq(
        command(STORE_DIR_BROKERS, "b1", "{\"status\":2}", false, &c), 0);
    ck_assert_int_eq(c.type, STORE_CMD_SET_BROKER_STATUS);
    ck_assert_uint_eq(c.status, 2);
    store_cmd_fini(&c);
    ck_assert_int_eq(
        command(STORE_DIR_BROKERS, "b1", "{\"status\":3}", false, &c), -EINVAL);
    ck_assert_int_eq(
        command(STORE_DIR_BROKERS, "b1",
                "{\"broker_id\":\"b2\",\"address\":\"h:1\"}", false, &c),
        -EINVAL);
    ck_assert_int_eq(command(STORE_DIR_BROKERS, "b1", "nohost", false, &c),
                     -EINVAL);
}
END_TEST

START_TEST(creates_and_removals_map_to_commands)
{
    struct store_cmd c;
    ck_assert_int_eq(
        store_value_command(STORE_DIR_TOPICS, "t", STORE_VALUE_CREATE, NULL, 0,
                            true, 1, &c),
        0);
    ck_assert_int_eq(c.type, STORE_CMD_GENERATE_TOPIC_REPLICAS);
    ck_assert_uint_eq(c.replica_count, STORE_DEFAULT_REPLICA_COUNT);
    ck_assert(c.exclusive);
    store_cmd_fini(&c);
    ck_assert_int_eq(
        store_value_command(STORE_DIR_BROKERS, "b", STORE_VALUE_CREATE, NULL, 0,
                            true, 1, &c),
        -EINVAL);
    ck_assert_int_eq(
        store_value_command(STORE_DIR_TOPICS, "t", STORE_VALUE_REMOVE, NULL, 0,
                            false, 1, &c),
        0);
    ck_assert_int_eq(c.type, STORE_CMD_REMOVE_TOPIC);
    store_cmd_fini(&c);
    ck_assert_int_eq(
        store_value_command(STORE_DIR_BROKERS, "b", STORE_VALUE_REMOVE, NULL, 0,
                            false, 1, &c),
        0);
    ck_assert_int_eq(c.type, STORE_CMD_UNREGISTER_BROKER);
    store_cmd_fini(&c);
    ck_assert_int_eq(
        store_value_command(STORE_DIR_OPERATIONS, "1", STORE_VALUE_REMOVE, NULL,
                            0, false, 1, &c),
        -EROFS);
    ck_assert_int_eq(
        store_value_command(STORE_DIR_TOPICS, "..", STORE_VALUE_REMOVE, NULL, 0,
                            false, 1, &c),
        -EINVAL);
}
END_TEST

static Suite *value_suite(void)
{
    Suite *s = suite_create("value");
    TCase *tc = tcase_create("classify");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, replica_counts_are_complete_at_a_newline);
    tcase_add_test(tc, addresses_are_complete_at_a_newline);
    tcase_add_test(tc, json_is_complete_when_the_object_closes);
    tcase_add_test(tc, read_only_directories_and_huge_values_are_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("command");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, topic_count_write_generates);
    tcase_add_test(tc, topic_json_writes_generate_or_report_unreachable);
    tcase_add_test(tc, broker_writes_register_update_or_set_status);
    tcase_add_test(tc, creates_and_removals_map_to_commands);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(value_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
