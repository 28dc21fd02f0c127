/* The gRPC client (rpc/client.c) against our own server on one private
 * loop over loopback: round trips, statuses, deadlines and late replies,
 * connection reuse, failures to connect, concurrency, and clean shutdown
 * of both sides (every case ends with uv_loop_close() == 0). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>
#include <goulette/rpc.h>

#include "health.pb-c.h"

struct fixture
{
    uv_loop_t loop;
    struct rpc_server server;
    struct rpc_client client;
    char address[32];
    /* What the handlers saw. */
    int calls;
    int cancels;
    int late_rv;
    bool late_replied;
    struct rpc_call *held; /* a call a handler keeps */
    uv_timer_t late;       /* replies to held after late_ms */
    uint64_t late_ms;
    /* What the client saw. */
    int done;
    enum rpc_status status;
    char message[256];
    char body[256];
    size_t body_len;
    int server_closed, client_closed;
};

static struct fixture f;

static void echo(void *data,
                 struct rpc_call *call,
                 const struct goulette_buf *req)
{
    f.calls++;
    ck_assert_int_eq(rpc_call_reply(call, req), 0);
}

static void fail_cn(void *data,
                    struct rpc_call *call,
                    const struct goulette_buf *req)
{
    f.calls++;
    ck_assert_int_eq(
        rpc_call_fail(call, RPC_STATUS_UNKNOWN, "topic t 没有找到leader"), 0);
}

static void server_closed(struct rpc_server *s);

/* Closes the whole server from inside a handler (with nghttp2 on the
 * stack), then finishes its own, now dead, call. */
static void shutdown_h(void *data,
                       struct rpc_call *call,
                       const struct goulette_buf *req)
{
    f.calls++;
    rpc_server_close(&f.server, server_closed);
    f.late_rv = rpc_call_fail(call, RPC_STATUS_UNAVAILABLE, "bye");
}

static void on_cancel(void *data, struct rpc_call *call)
{
    f.cancels++;
}

static void late_fire(uv_timer_t *t)
{
    struct goulette_buf b = {"late", 4};

    if (f.held != NULL) {
        f.late_rv = rpc_call_reply(f.held, &b);
        f.late_replied = true;
        f.held = NULL;
    }
}

/* Keeps the call and answers 200 ms later. */
static void hold(void *data,
                 struct rpc_call *call,
                 const struct goulette_buf *req)
{
    f.calls++;
    f.held = call;
    rpc_call_on_cancel(call, on_cancel, NULL);
    uv_timer_start(&f.late, late_fire, f.late_ms, 0);
}

static struct rpc_limits limits;

static int health_check(void *data, const char *service)
{
    return service[0] == '\0' ? 1 : -ENOENT;
}

static const struct rpc_health health = {health_check, NULL};

static void setup_with(const struct rpc_limits *l)
{
    struct rpc_server_config sc;
    struct rpc_client_config cc;
    struct rpc_handler h_echo = {echo, NULL};
    struct rpc_handler h_fail = {fail_cn, NULL};
    struct rpc_handler h_hold = {hold, NULL};
    struct rpc_handler h_shut = {shutdown_h, NULL};

    memset(&f, 0, sizeof f);
    f.late_ms = 200;
    ck_assert_int_eq(uv_loop_init(&f.loop), 0);
    uv_timer_init(&f.loop, &f.late);
    memset(&sc, 0, sizeof sc);
    sc.loop = &f.loop;
    sc.limits = *l;
    ck_assert_int_eq(rpc_server_init(&f.server, &sc), 0);
    ck_assert_int_eq(rpc_server_register(&f.server, "/t.S/Echo", &h_echo), 0);
    ck_assert_int_eq(rpc_server_register(&f.server, "/t.S/Fail", &h_fail), 0);
    ck_assert_int_eq(rpc_server_register(&f.server, "/t.S/Hold", &h_hold), 0);
    ck_assert_int_eq(rpc_server_register(&f.server, "/t.S/Shutdown", &h_shut),
                     0);
    ck_assert_int_eq(rpc_health_register(&f.server, &health), 0);
    ck_assert_int_eq(rpc_server_register(&f.server, "/t.S/Echo", &h_echo),
                     -EEXIST);
    ck_assert_int_eq(rpc_server_register(&f.server, "bad", &h_echo), -EINVAL);
    ck_assert_int_eq(rpc_server_start(&f.server), 0);
    snprintf(f.address, sizeof f.address, "127.0.0.1:%u",
             (unsigned)rpc_server_port(&f.server));
    memset(&cc, 0, sizeof cc);
    cc.loop = &f.loop;
    ck_assert_int_eq(rpc_client_init(&f.client, &cc), 0);
}

static void server_closed(struct rpc_server *s)
{
    f.server_closed++;
}

static void setup(void)
{
    rpc_limits_default(&limits);
    setup_with(&limits);
}

/* One connection at most, idle after 200 ms. */
static void setup_tight(void)
{
    rpc_limits_default(&limits);
    limits.max_connections = 1;
    limits.idle_timeout_ms = 200;
    setup_with(&limits);
}

static void client_closed(struct rpc_client *c)
{
    f.client_closed++;
}

static void teardown(void)
{
    if (!f.client.closing) {
        rpc_client_close(&f.client, client_closed);
    }
    if (!f.server.closing) {
        rpc_server_close(&f.server, server_closed);
    }
    uv_close((uv_handle_t *)&f.late, NULL);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    if (f.held != NULL) {
        /* A handler may finish its call after the server closed. */
        struct goulette_buf b = {"x", 1};
        ck_assert_int_eq(rpc_call_reply(f.held, &b), -ECANCELED);
        f.held = NULL;
    }
    ck_assert_int_eq(f.server_closed, 1);
    ck_assert_int_eq(f.client_closed, 1);
    ck_assert_int_eq(uv_loop_close(&f.loop), 0);
}

static void on_done(void *data,
                    enum rpc_status status,
                    const char *message,
                    const struct goulette_buf *resp)
{
    f.done++;
    f.status = status;
    snprintf(f.message, sizeof f.message, "%s", message);
    f.body_len = resp->len < sizeof f.body ? resp->len : sizeof f.body;
    if (resp->len > 0) {
        memcpy(f.body, resp->base, f.body_len);
    }
}

/* One call, run until it completes. */
static void call(const char *address,
                 const char *method,
                 const char *body,
                 uint64_t timeout_ms)
{
    struct goulette_buf b = {(void *)body, strlen(body)};
    struct rpc_client_done d = {on_done, NULL};
    int before = f.done;

    ck_assert_int_eq(
        rpc_client_call(&f.client, address, method, &b, timeout_ms, &d), 0);
    ck_assert_int_eq(f.done, before); /* never before the call returns */
    while (f.done == before) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
}

START_TEST(call_round_trips_through_the_server)
{
    call(f.address, "/t.S/Echo", "hello", 5000);
    ck_assert_int_eq(f.status, RPC_STATUS_OK);
    ck_assert_uint_eq(f.body_len, 5);
    ck_assert_int_eq(memcmp(f.body, "hello", 5), 0);
}
END_TEST

START_TEST(protobuf_calls_reach_the_health_service)
{
    Grpc__Health__V1__HealthCheckRequest req =
        GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    Grpc__Health__V1__HealthCheckResponse *resp;
    struct rpc_client_done d = {on_done, NULL};

    ck_assert_int_eq(
        rpc_client_call_pb(&f.client, f.address, "/grpc.health.v1.Health/Check",
                           &req.base, 5000, &d),
        0);
    while (f.done == 0) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ck_assert_int_eq(f.status, RPC_STATUS_OK);
    resp = grpc__health__v1__health_check_response__unpack(
        NULL, f.body_len, (const uint8_t *)f.body);
    ck_assert_ptr_nonnull(resp);
    ck_assert_int_eq(
        resp->status,
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING);
    grpc__health__v1__health_check_response__free_unpacked(resp, NULL);

    req.service = "other";
    ck_assert_int_eq(
        rpc_client_call_pb(&f.client, f.address, "/grpc.health.v1.Health/Check",
                           &req.base, 5000, &d),
        0);
    while (f.done == 1) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ck_assert_int_eq(f.status, RPC_STATUS_NOT_FOUND);
}
END_TEST

START_TEST(an_empty_request_round_trips)
{
    call(f.address, "/t.S/Echo", "", 0);
    ck_assert_int_eq(f.status, RPC_STATUS_OK);
    ck_assert_uint_eq(f.body_len, 0);
}
END_TEST

START_TEST(an_unknown_method_is_unimplemented)
{
    call(f.address, "/t.S/Nope", "x", 5000);
    ck_assert_int_eq(f.status, RPC_STATUS_UNIMPLEMENTED);
    ck_assert_str_eq(f.message, "unknown method Nope for service t.S");
    call(f.address, "/u.V/Nope", "x", 5000);
    ck_assert_str_eq(f.message, "unknown service u.V");
}
END_TEST

START_TEST(non_ascii_error_messages_round_trip)
{
    call(f.address, "/t.S/Fail", "x", 5000);
    ck_assert_int_eq(f.status, RPC_STATUS_UNKNOWN);
    ck_assert_str_eq(f.message, "topic t 没有找到leader");
}
END_TEST

START_TEST(an_expired_deadline_cancels_and_drops_the_late_reply)
{
    /* The deadline is long enough for the handler to be reached even on a
     * loaded machine, and the reply comes well after it. */
    f.late_ms = 3000;
    call(f.address, "/t.S/Hold", "x", 1000);
    ck_assert_msg(f.status == RPC_STATUS_DEADLINE_EXCEEDED, "%d: %s",
                  (int)f.status, f.message);
    while (!f.late_replied) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ck_assert_int_eq(f.cancels, 1);
    ck_assert_int_eq(f.late_rv, -ECANCELED);
    /* The connection is still good. */
    call(f.address, "/t.S/Echo", "again", 5000);
    ck_assert_int_eq(f.status, RPC_STATUS_OK);
}
END_TEST

START_TEST(a_reply_within_the_deadline_arrives)
{
    call(f.address, "/t.S/Hold", "x", 10000);
    ck_assert_int_eq(f.status, RPC_STATUS_OK);
    ck_assert_int_eq(memcmp(f.body, "late", 4), 0);
    ck_assert_int_eq(f.late_rv, 0);
    ck_assert_int_eq(f.cancels, 0);
}
END_TEST

START_TEST(calls_to_one_address_share_one_connection)
{
    int i;

    for (i = 0; i < 5; i++) {
        call(f.address, "/t.S/Echo", "r", 5000);
        ck_assert_int_eq(f.status, RPC_STATUS_OK);
    }
    ck_assert_uint_eq(f.server.nconns, 1);
}
END_TEST

START_TEST(nothing_listening_is_unavailable)
{
    char addr[32];
    uint16_t port = rpc_server_port(&f.server);

    /* Close the server first, then call its port. */
    rpc_server_close(&f.server, server_closed);
    while (f.server_closed == 0) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
    call(addr, "/t.S/Echo", "x", 5000);
    ck_assert_int_eq(f.status, RPC_STATUS_UNAVAILABLE);
}
END_TEST

START_TEST(bad_addresses_are_refused_synchronously)
{
    struct goulette_buf b = {"x", 1};
    struct rpc_client_done d = {on_done, NULL};

    ck_assert_int_eq(
        rpc_client_call(&f.client, "nocolon", "/t.S/Echo", &b, 0, &d), -EINVAL);
    ck_assert_int_eq(rpc_client_call(&f.client, "h:1", "t.S/Echo", &b, 0, &d),
                     -EINVAL);
    ck_assert_int_eq(f.done, 0);
}
END_TEST

START_TEST(many_concurrent_calls_all_complete)
{
    struct rpc_client_done d = {on_done, NULL};
    char body[16];
    int i;

    for (i = 0; i < 400; i++) {
        struct goulette_buf b = {body,
                                 (size_t)snprintf(body, sizeof body, "%d", i)};
        ck_assert_int_eq(
            rpc_client_call(&f.client, f.address, "/t.S/Echo", &b, 20000, &d),
            0);
    }
    while (f.done < 400) {
        ck_assert_int_eq(f.status, RPC_STATUS_OK);
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ck_assert_int_eq(f.status, RPC_STATUS_OK);
    ck_assert_int_eq(f.calls, 400);
}
END_TEST

START_TEST(closing_the_server_cancels_calls_handlers_hold)
{
    struct goulette_buf b = {"x", 1};
    struct rpc_client_done d = {on_done, NULL};

    ck_assert_int_eq(
        rpc_client_call(&f.client, f.address, "/t.S/Hold", &b, 0, &d), 0);
    while (f.held == NULL) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&f.late);
    rpc_server_close(&f.server, server_closed);
    ck_assert_int_eq(f.cancels, 1);
    while (f.done == 0) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ck_assert_int_ne(f.status, RPC_STATUS_OK);
    /* teardown finishes the held call after the server closed. */
}
END_TEST

START_TEST(closing_the_client_cancels_its_calls)
{
    struct goulette_buf b = {"x", 1};
    struct rpc_client_done d = {on_done, NULL};

    ck_assert_int_eq(
        rpc_client_call(&f.client, f.address, "/t.S/Hold", &b, 0, &d), 0);
    while (f.held == NULL) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    rpc_client_close(&f.client, client_closed);
    ck_assert_int_eq(f.done, 1);
    ck_assert_int_eq(f.status, RPC_STATUS_CANCELLED);
    ck_assert_int_eq(
        rpc_client_call(&f.client, f.address, "/t.S/Echo", &b, 0, &d),
        GOULETTE_ESHUTDOWN);
    /* The server sees the disconnect as a cancellation. */
    while (f.cancels == 0) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
}
END_TEST

START_TEST(a_handler_may_close_the_server)
{
    call(f.address, "/t.S/Shutdown", "x", 5000);
    ck_assert_int_ne(f.status, RPC_STATUS_OK);
    ck_assert_int_eq(f.late_rv, -ECANCELED);
    ck_assert_int_eq(f.calls, 1);
}
END_TEST

START_TEST(an_idle_connection_is_closed_and_a_new_one_opens)
{
    call(f.address, "/t.S/Echo", "a", 5000);
    ck_assert_int_eq(f.status, RPC_STATUS_OK);
    ck_assert_uint_eq(f.server.nconns, 1);
    /* GOAWAY after the idle time; the client leaves, the server forgets. */
    while (f.server.nconns > 0) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    call(f.address, "/t.S/Echo", "b", 5000);
    ck_assert_int_eq(f.status, RPC_STATUS_OK);
    ck_assert_uint_eq(f.server.nconns, 1);
}
END_TEST

static void other_closed(struct rpc_client *c)
{
    f.done += 100;
}

START_TEST(connections_beyond_the_limit_are_closed)
{
    struct rpc_client other;
    struct rpc_client_config cc = {&f.loop, NULL, 0};
    struct goulette_buf b = {"x", 1};
    struct rpc_client_done d = {on_done, NULL};

    /* Hold the one allowed connection with a call in progress. */
    ck_assert_int_eq(
        rpc_client_call(&f.client, f.address, "/t.S/Hold", &b, 0, &d), 0);
    while (f.held == NULL) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ck_assert_int_eq(rpc_client_init(&other, &cc), 0);
    ck_assert_int_eq(
        rpc_client_call(&other, f.address, "/t.S/Echo", &b, 5000, &d), 0);
    while (f.done == 0) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
    ck_assert_int_eq(f.status, RPC_STATUS_UNAVAILABLE);
    ck_assert_uint_eq(f.server.nconns, 1);
    rpc_client_close(&other, other_closed);
    while (f.done < 100) {
        uv_run(&f.loop, UV_RUN_ONCE);
    }
}
END_TEST

static Suite *client_suite(void)
{
    Suite *s = suite_create("rpc_client");
    TCase *tc;

    tc = tcase_create("calls");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, call_round_trips_through_the_server);
    tcase_add_test(tc, an_empty_request_round_trips);
    tcase_add_test(tc, protobuf_calls_reach_the_health_service);
    tcase_add_test(tc, an_unknown_method_is_unimplemented);
    tcase_add_test(tc, non_ascii_error_messages_round_trip);
    tcase_add_test(tc, many_concurrent_calls_all_complete);
    suite_add_tcase(s, tc);

    tc = tcase_create("deadlines");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, an_expired_deadline_cancels_and_drops_the_late_reply);
    tcase_add_test(tc, a_reply_within_the_deadline_arrives);
    suite_add_tcase(s, tc);

    tc = tcase_create("connections");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, calls_to_one_address_share_one_connection);
    tcase_add_test(tc, nothing_listening_is_unavailable);
    tcase_add_test(tc, bad_addresses_are_refused_synchronously);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_checked_fixture(tc, setup_tight, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, an_idle_connection_is_closed_and_a_new_one_opens);
    tcase_add_test(tc, connections_beyond_the_limit_are_closed);
    suite_add_tcase(s, tc);

    tc = tcase_create("shutdown");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, closing_the_server_cancels_calls_handlers_hold);
    tcase_add_test(tc, closing_the_client_cancels_its_calls);
    tcase_add_test(tc, a_handler_may_close_the_server);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(client_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
