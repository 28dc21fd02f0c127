/* Unit tests for store/codec.c and store/cmd.c: Goulette's JSON records
 * (exact field names and order, Go's escaping, round trips), the record
 * header, name and address checks, and the command wire format. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "goulette/err.h"
#include "goulette/store.h"

#include "codec.h"

static struct store_replica two[] = {
    {"b1", "10.0.0.1:50051", 0},
    {"b2", "10.0.0.2:50051", 1},
};

START_TEST(topic_json_has_goulette_fields_in_order)
{
    struct store__topic_rec t = {.topic = "orders",
                                 .replicas = two,
                                 .n_replicas = 2,
                                 .replica_count = 3,
                                 .version = 1720000000123456789LL,
                                 .timestamp = 1720000000};
    size_t len;
    char *json = store__topic_encode(&t, &len);
    ck_assert_str_eq(json,
                     "{\"topic\":\"orders\",\"brokers\":[{\"broker_id\":\"b1\","
                     "\"address\":\"10.0.0.1:50051\",\"status\":0},{"
                     "\"broker_id\":\"b2\",\"address\":\"10.0.0.2:50051\","
                     "\"status\":1}],\"version\":1720000000123456789,"
                     "\"timestamp\":1720000000,\"replica_count\":3}");
    ck_assert_uint_eq(len, strlen(json));
    free(json);
}
END_TEST

START_TEST(topic_json_round_trips)
{
    struct store__topic_rec t = {.topic = "orders",
                                 .replicas = two,
                                 .n_replicas = 2,
                                 .replica_count = 2,
                                 .version = -5,
                                 .timestamp = 7};
    struct store__topic_rec back;
    size_t len;
    char *json = store__topic_encode(&t, &len);
    ck_assert_int_eq(store__topic_decode(json, len, &back), 0);
    ck_assert_str_eq(back.topic, "orders");
    ck_assert_uint_eq(back.n_replicas, 2);
    ck_assert_str_eq(back.replicas[1].broker_id, "b2");
    ck_assert_str_eq(back.replicas[1].address, "10.0.0.2:50051");
    ck_assert_int_eq(back.replicas[1].status, 1);
    ck_assert_int_eq(back.version, -5);
    ck_assert_int_eq(back.timestamp, 7);
    ck_assert_uint_eq(back.replica_count, 2);
    size_t len2;
    char *again = store__topic_encode(&back, &len2);
    ck_assert_str_eq(again, json);
    store__topic_rec_fini(&back);
    free(json);
    free(again);
}
END_TEST

START_TEST(topic_json_from_go_fixture_decodes)
{
    /* goulette-sentinel.md §7.2 fixture shape, spaces and all. */
    const char *go =
        "{\"topic\": \"t\", \"brokers\": [{\"broker_id\": "
        "\"broker1\", \"address\": \"localhost:8081\", "
        "\"status\": 1}], \"version\": 1, \"timestamp\": 2, "
        "\"replica_count\": 1}";
    struct store__topic_rec t;
    ck_assert_int_eq(store__topic_decode(go, strlen(go), &t), 0);
    ck_assert_str_eq(t.replicas[0].broker_id, "broker1");
    store__topic_rec_fini(&t);
}
END_TEST

START_TEST(topic_json_with_missing_or_wrong_fields_is_corrupt)
{
    const char *bad[] = {
        "",
        "[]",
        "{\"topic\":\"t\"}",
        "{\"topic\":1,\"brokers\":[],\"version\":1,\"timestamp\":1,"
        "\"replica_count\":1}",
        "{\"topic\":\"t\",\"brokers\":[1],\"version\":1,\"timestamp\":1,"
        "\"replica_count\":1}",
        "{\"topic\":\"t\",\"brokers\":[{\"broker_id\":\"b\",\"address\":"
        "\"a:1\"}],\"version\":1,\"timestamp\":1,\"replica_count\":1}",
        "{\"topic\":\"t\",\"brokers\":[],\"version\":\"1\",\"timestamp\":1,"
        "\"replica_count\":1}",
        "{\"topic\":\"t\",\"brokers\":[],\"version\":1,\"timestamp\":1,"
        "\"replica_count\":-1}",
        "{\"topic\":\"t\",\"topic\":\"u\",\"brokers\":[],\"version\":1,"
        "\"timestamp\":1,\"replica_count\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct store__topic_rec t;
        ck_assert_int_eq(store__topic_decode(bad[i], strlen(bad[i]), &t),
                         GOULETTE_ECORRUPT);
    }
}
END_TEST

START_TEST(broker_json_starts_with_goulette_fields)
{
    char *topics[] = {"t1"};
    struct store__broker_rec b = {.broker_id = "b1",
                                  .address = "h:1",
                                  .status = 2,
                                  .topics = topics,
                                  .n_topics = 1};
    struct store__broker_rec back;
    size_t len;
    char *json = store__broker_encode(&b, &len);
    ck_assert_str_eq(json,
                     "{\"broker_id\":\"b1\",\"address\":\"h:1\","
                     "\"status\":2,\"topics\":[\"t1\"]}");
    ck_assert_int_eq(store__broker_decode(json, len, &back), 0);
    ck_assert_str_eq(back.broker_id, "b1");
    ck_assert_int_eq(back.status, 2);
    ck_assert_uint_eq(back.n_topics, 1);
    ck_assert_str_eq(back.topics[0], "t1");
    store__broker_rec_fini(&back);
    free(json);
}
END_TEST

START_TEST(broker_json_of_goulette_heartbeat_decodes)
{
    const char *go = "{\"broker_id\":\"b1\",\"address\":\"h:1\",\"status\":0}";
    struct store__broker_rec b;
    ck_assert_int_eq(store__broker_decode(go, strlen(go), &b), 0);
    ck_assert_uint_eq(b.n_topics, 0);
    store__broker_rec_fini(&b);
    const char *null_topics =
        "{\"broker_id\":\"b1\",\"address\":\"h:1\",\"status\":0,"
        "\"topics\":null}";
    ck_assert_int_eq(store__broker_decode(null_topics, strlen(null_topics), &b),
                     0);
    store__broker_rec_fini(&b);
}
END_TEST

START_TEST(operation_json_carries_params_as_a_string)
{
    struct store__op_rec op = {
        .id = 12,
        .function = "generateTopicReplicas",
        .params =
            "{\"brokers\":[{\"broker_id\":\"b1\",\"address\":\"h:1\","
            "\"status\":0}],\"replica_count\":3,\"topic\":\"orders\"}",
        .timestamp = 1720000000};
    struct store__op_rec back;
    size_t len;
    char *json = store__op_encode(&op, &len);
    /* The example of goulette-sentinel.md §3.2, byte for byte. */
    ck_assert_str_eq(
        json,
        "{\"id\":12,\"function\":\"generateTopicReplicas\",\"params\":\"{"
        "\\\"brokers\\\":[{\\\"broker_id\\\":\\\"b1\\\",\\\"address\\\":"
        "\\\"h:1\\\",\\\"status\\\":0}],\\\"replica_count\\\":3,\\\"topic\\\""
        ":\\\"orders\\\"}\",\"timestamp\":1720000000}");
    ck_assert_int_eq(store__op_decode(json, len, &back), 0);
    ck_assert_int_eq(back.id, 12);
    ck_assert_str_eq(back.function, op.function);
    ck_assert_str_eq(back.params, op.params);
    ck_assert_int_eq(back.timestamp, 1720000000);
    store__op_rec_fini(&back);
    free(json);
}
END_TEST

START_TEST(json_escapes_like_go_encoding_json)
{
    json_t *o = json_pack("{s:s}", "k", "<a&b>\x1f\xe2\x80\xa8\"\\/\n");
    size_t len;
    char *s = store__json_dump(o, &len);
    ck_assert_str_eq(s,
                     "{\"k\":\"\\u003ca\\u0026b\\u003e\\u001f\\u2028"
                     "\\\"\\\\/\\n\"}");
    free(s);
    json_decref(o);
}
END_TEST

START_TEST(counter_decodes_decimal_only)
{
    uint64_t v = 0;
    ck_assert_int_eq(store__counter_decode("7", 1, &v), 0);
    ck_assert_uint_eq(v, 7);
    ck_assert_int_eq(store__counter_decode("1000", 4, &v), 0);
    ck_assert_uint_eq(v, 1000);
    ck_assert_int_eq(store__counter_decode("", 0, &v), GOULETTE_ECORRUPT);
    ck_assert_int_eq(store__counter_decode("-1", 2, &v), GOULETTE_ECORRUPT);
    ck_assert_int_eq(store__counter_decode("1x", 2, &v), GOULETTE_ECORRUPT);
}
END_TEST

START_TEST(record_header_round_trips_and_rejects_short_values)
{
    struct store__meta m = {3, 9, 4, -12345}, back;
    const char *payload;
    size_t plen;
    size_t vlen;
    char *v = store__record_encode(&m, "{}", 2, &vlen);
    ck_assert_uint_eq(vlen, STORE_HDR_LEN + 2);
    ck_assert_int_eq(store__record_decode(v, vlen, &back, &payload, &plen), 0);
    ck_assert_uint_eq(back.create_rev, 3);
    ck_assert_uint_eq(back.mod_rev, 9);
    ck_assert_uint_eq(back.version, 4);
    ck_assert_int_eq(back.mtime_ns, -12345);
    ck_assert_uint_eq(plen, 2);
    ck_assert_int_eq(memcmp(payload, "{}", 2), 0);
    ck_assert_int_eq(store__record_decode(v, 31, &back, &payload, &plen),
                     GOULETTE_ECORRUPT);
    free(v);
}
END_TEST

START_TEST(op_keys_sort_numerically)
{
    char k9[16], k10[16], k999[16], k1000[16];
    store__key_op(9, k9);
    store__key_op(10, k10);
    store__key_op(999, k999);
    store__key_op(1000, k1000);
    ck_assert_int_lt(memcmp(k9, k10, 10), 0);
    ck_assert_int_lt(memcmp(k999, k1000, 10), 0);
}
END_TEST

START_TEST(name_check_rejects_what_cannot_be_a_file_name)
{
    char n[300];
    ck_assert_int_eq(store_name_check("orders", 6), 0);
    ck_assert_int_eq(store_name_check("\xe4\xb8\xbb\xe9\xa2\x98", 6), 0);
    ck_assert_int_eq(store_name_check("...", 3), 0);
    ck_assert_int_eq(store_name_check("", 0), -EINVAL);
    ck_assert_int_eq(store_name_check(".", 1), -EINVAL);
    ck_assert_int_eq(store_name_check("..", 2), -EINVAL);
    ck_assert_int_eq(store_name_check("a/b", 3), -EINVAL);
    ck_assert_int_eq(store_name_check("/", 1), -EINVAL);
    ck_assert_int_eq(store_name_check("a\0b", 3), -EINVAL);
    ck_assert_int_eq(store_name_check("\xc0\xaf", 2), -EINVAL);
    ck_assert_int_eq(store_name_check("\xed\xa0\x80", 3), -EINVAL);
    memset(n, 'a', sizeof n);
    ck_assert_int_eq(store_name_check(n, 255), 0);
    ck_assert_int_eq(store_name_check(n, 256), -ENAMETOOLONG);
}
END_TEST

START_TEST(address_check_wants_host_and_port)
{
    ck_assert_int_eq(store_address_check("localhost:50051", 15), 0);
    ck_assert_int_eq(store_address_check("10.0.0.1:1", 10), 0);
    ck_assert_int_eq(store_address_check("[::1]:65535", 11), 0);
    ck_assert_int_eq(store_address_check(":50051", 6), -EINVAL);
    ck_assert_int_eq(store_address_check("host", 4), -EINVAL);
    ck_assert_int_eq(store_address_check("host:", 5), -EINVAL);
    ck_assert_int_eq(store_address_check("host:0", 6), -EINVAL);
    ck_assert_int_eq(store_address_check("host:65536", 10), -EINVAL);
    ck_assert_int_eq(store_address_check("host:123456", 11), -EINVAL);
    ck_assert_int_eq(store_address_check("host:-1", 7), -EINVAL);
    ck_assert_int_eq(store_address_check("::1:80", 6), -EINVAL);
    ck_assert_int_eq(store_address_check("[]:80", 5), -EINVAL);
    ck_assert_int_eq(store_address_check("ho st:80", 8), -EINVAL);
    ck_assert_int_eq(store_address_check("h\0:80", 5), -EINVAL);
    ck_assert_int_eq(store_address_check("http://h:80", 11), -EINVAL);
}
END_TEST

START_TEST(commands_round_trip_through_protobuf)
{
    char *names[] = {"b1", "b2"};
    struct store_cmd c = {.type = STORE_CMD_HANDLE_UNREACHABLE,
                          .timestamp_ns = 1720000000123456789LL,
                          .topic = "orders",
                          .replica_count = 3,
                          .names = names,
                          .n_names = 2,
                          .hint = true,
                          .interval_ns = 10000000000LL};
    struct store_cmd back;
    struct goulette_buf buf;
    ck_assert_int_eq(store_cmd_encode(&c, &buf), 0);
    ck_assert_int_eq(store_cmd_decode(buf.base, buf.len, &back), 0);
    ck_assert_int_eq(back.type, STORE_CMD_HANDLE_UNREACHABLE);
    ck_assert_int_eq(back.timestamp_ns, c.timestamp_ns);
    ck_assert_str_eq(back.topic, "orders");
    ck_assert_uint_eq(back.replica_count, 3);
    ck_assert_uint_eq(back.n_names, 2);
    ck_assert_str_eq(back.names[1], "b2");
    ck_assert(back.hint);
    ck_assert_int_eq(back.interval_ns, 10000000000LL);
    store_cmd_fini(&back);
    free(buf.base);

    for (int type = STORE_CMD_REGISTER_BROKER; type <= STORE_CMD_REMOVE_TOPIC;
         type++) {
        struct store_cmd x = {.type = type,
                              .timestamp_ns = 5,
                              .exclusive = true,
                              .broker_id = "b",
                              .address = "h:1",
                              .status = 2,
                              .topic = "t",
                              .replica_count = 1};
        ck_assert_int_eq(store_cmd_encode(&x, &buf), 0);
        ck_assert_int_eq(store_cmd_decode(buf.base, buf.len, &back), 0);
        ck_assert_int_eq(back.type, type);
        ck_assert_int_eq(back.timestamp_ns, 5);
        ck_assert(back.exclusive ==
                  (type == STORE_CMD_GENERATE_TOPIC_REPLICAS));
        store_cmd_fini(&back);
        free(buf.base);
    }
}
END_TEST

START_TEST(garbage_is_not_a_command)
{
    struct store_cmd c;
    struct store_cmd none = {.type = 0};
    struct goulette_buf buf;
    ck_assert_int_eq(store_cmd_decode("\xff\xff\xff", 3, &c), -EBADMSG);
    /* A message with no body. */
    ck_assert_int_eq(store_cmd_decode("\x08\x01", 2, &c), -EBADMSG);
    ck_assert_int_eq(store_cmd_encode(&none, &buf), -EINVAL);
}
END_TEST

static Suite *codec_suite(void)
{
    Suite *s = suite_create("codec");
    TCase *tc = tcase_create("json");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, topic_json_has_goulette_fields_in_order);
    tcase_add_test(tc, topic_json_round_trips);
    tcase_add_test(tc, topic_json_from_go_fixture_decodes);
    tcase_add_test(tc, topic_json_with_missing_or_wrong_fields_is_corrupt);
    tcase_add_test(tc, broker_json_starts_with_goulette_fields);
    tcase_add_test(tc, broker_json_of_goulette_heartbeat_decodes);
    tcase_add_test(tc, operation_json_carries_params_as_a_string);
    tcase_add_test(tc, json_escapes_like_go_encoding_json);
    tcase_add_test(tc, counter_decodes_decimal_only);
    suite_add_tcase(s, tc);

    tc = tcase_create("keys");
    tcase_add_test(tc, record_header_round_trips_and_rejects_short_values);
    tcase_add_test(tc, op_keys_sort_numerically);
    suite_add_tcase(s, tc);

    tc = tcase_create("names");
    tcase_add_test(tc, name_check_rejects_what_cannot_be_a_file_name);
    tcase_add_test(tc, address_check_wants_host_and_port);
    suite_add_tcase(s, tc);

    tc = tcase_create("commands");
    tcase_add_test(tc, commands_round_trip_through_protobuf);
    tcase_add_test(tc, garbage_is_not_a_command);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(codec_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
