/* A gRPC server for protocol tests: serves goulettefs.test.Test (echo,
 * delayed reply, chosen failure, stats), a raw-bytes echo, canned
 * goulette.SentinelService answers, and grpc.health.v1.Health/Check, on
 * 127.0.0.1:PORT (argv[1]; 0 picks one).  Prints "PORT <n>" once
 * listening.  RPC_TEST_RECEIVE_TIMEOUT_MS overrides the receive timeout.
 * On SIGTERM/SIGINT it closes the server and exits 0 only if
 * uv_loop_close() then succeeds. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/rpc.h>

#include "goulette.pb-c.h"
#include "rpc_test.pb-c.h"

struct delayed
{
    struct delayed *prev, *next;
    struct test_server *ts;
    struct rpc_call *call; /* NULL once finished */
    uv_timer_t timer;
    Goulettefs__Test__EchoResponse resp;
    uint8_t *payload;
    char *text;
};

struct test_server
{
    uv_loop_t loop;
    struct rpc_server server;
    uv_signal_t sigterm, sigint;
    struct delayed *delayed;
    uint64_t calls, cancelled, late_dropped, pending;
    struct goulette_log log;
};

static void log_emit(void *data,
                     enum goulette_log_level level,
                     const char *subsys,
                     const char *msg)
{
    fprintf(stderr, "[%s] %s: %s\n", goulette_log_level_name(level), subsys,
            msg);
}

static void echo(void *data, struct rpc_call *call, ProtobufCMessage *m)
{
    struct test_server *ts = data;
    Goulettefs__Test__EchoRequest *req = (Goulettefs__Test__EchoRequest *)m;
    Goulettefs__Test__EchoResponse resp = GOULETTEFS__TEST__ECHO_RESPONSE__INIT;

    ts->calls++;
    resp.payload = req->payload;
    resp.text = req->text;
    (void)rpc_call_reply_pb(call, &resp.base);
}

static void delayed_closed(uv_handle_t *h)
{
    struct delayed *d = h->data;

    free(d->payload);
    free(d->text);
    free(d);
}

static void delayed_finish(struct delayed *d)
{
    struct test_server *ts = d->ts;
    int rv;

    if (d->call == NULL) {
        return;
    }
    rv = rpc_call_reply_pb(d->call, &d->resp.base);
    d->call = NULL;
    if (rv == -ECANCELED) {
        ts->late_dropped++;
    }
    ts->pending--;
    if (d->prev != NULL) {
        d->prev->next = d->next;
    } else {
        ts->delayed = d->next;
    }
    if (d->next != NULL) {
        d->next->prev = d->prev;
    }
    uv_close((uv_handle_t *)&d->timer, delayed_closed);
}

static void delayed_fire(uv_timer_t *t)
{
    delayed_finish(t->data);
}

/* The call died: count it; the reply still happens when the timer fires
 * (that is the "late reply" path), unless the server is shutting down. */
static void delayed_cancel(void *data, struct rpc_call *call)
{
    struct delayed *d = data;

    d->ts->cancelled++;
}

static void delay(void *data, struct rpc_call *call, ProtobufCMessage *m)
{
    struct test_server *ts = data;
    Goulettefs__Test__EchoRequest *req = (Goulettefs__Test__EchoRequest *)m;
    Goulettefs__Test__EchoResponse init = GOULETTEFS__TEST__ECHO_RESPONSE__INIT;
    struct delayed *d = calloc(1, sizeof *d);

    ts->calls++;
    if (d == NULL) {
        (void)rpc_call_fail(call, RPC_STATUS_RESOURCE_EXHAUSTED, "no memory");
        return;
    }
    d->ts = ts;
    d->call = call;
    d->resp = init;
    d->payload = malloc(req->payload.len + 1);
    d->text = strdup(req->text);
    if (req->payload.len > 0) {
        memcpy(d->payload, req->payload.data, req->payload.len);
    }
    d->resp.payload.data = d->payload;
    d->resp.payload.len = req->payload.len;
    d->resp.text = d->text;
    uv_timer_init(&ts->loop, &d->timer);
    d->timer.data = d;
    uv_timer_start(&d->timer, delayed_fire, req->delay_ms, 0);
    rpc_call_on_cancel(call, delayed_cancel, d);
    d->next = ts->delayed;
    if (ts->delayed != NULL) {
        ts->delayed->prev = d;
    }
    ts->delayed = d;
    ts->pending++;
}

static void fail(void *data, struct rpc_call *call, ProtobufCMessage *m)
{
    struct test_server *ts = data;
    Goulettefs__Test__FailRequest *req = (Goulettefs__Test__FailRequest *)m;

    ts->calls++;
    (void)rpc_call_fail(call, (enum rpc_status)req->code, req->message);
}

static void stats(void *data, struct rpc_call *call, ProtobufCMessage *m)
{
    struct test_server *ts = data;
    Goulettefs__Test__StatsResponse resp =
        GOULETTEFS__TEST__STATS_RESPONSE__INIT;

    resp.calls = ts->calls;
    resp.cancelled = ts->cancelled;
    resp.late_dropped = ts->late_dropped;
    resp.pending = ts->pending;
    (void)rpc_call_reply_pb(call, &resp.base);
}

static void raw_echo(void *data,
                     struct rpc_call *call,
                     const struct goulette_buf *req)
{
    struct test_server *ts = data;

    ts->calls++;
    (void)rpc_call_reply(call, req);
}

/* Serving as a whole; "goulettefs.test.Sick" is known but not serving. */
static int health_check(void *data, const char *service)
{
    if (service[0] == '\0' || strcmp(service, "goulettefs.test.Test") == 0) {
        return 1;
    }
    if (strcmp(service, "goulettefs.test.Sick") == 0) {
        return 0;
    }
    return -ENOENT;
}

/* Canned GetTopicLeader: a leader named after the topic, or Goulette's
 * failure for an empty topic (UNKNOWN with its Chinese message). */
static void topic_leader(void *data, struct rpc_call *call, ProtobufCMessage *m)
{
    Goulette__GetTopicLeaderRequest *req = (Goulette__GetTopicLeaderRequest *)m;
    Goulette__GetTopicLeaderResponse resp =
        GOULETTE__GET_TOPIC_LEADER_RESPONSE__INIT;
    Goulette__BrokerInfo leader = GOULETTE__BROKER_INFO__INIT;
    Goulette__Timestamp hb = GOULETTE__TIMESTAMP__INIT;
    char id[300];
    char msg[300];

    if (req->topic[0] == '\0') {
        snprintf(msg, sizeof msg, "topic %s 没有可用的broker", req->topic);
        (void)rpc_call_fail(call, RPC_STATUS_UNKNOWN, msg);
        return;
    }
    snprintf(id, sizeof id, "b-%.200s", req->topic);
    leader.broker_id = id;
    leader.address = "127.0.0.1:1";
    hb.seconds = 1720000000;
    leader.last_heartbeat = &hb;
    resp.leader = &leader;
    (void)rpc_call_reply_pb(call, &resp.base);
}

static void keep_alive(void *data, struct rpc_call *call, ProtobufCMessage *m)
{
    Goulette__KeepAliveResponse resp = GOULETTE__KEEP_ALIVE_RESPONSE__INIT;

    resp.success = 1;
    resp.error_message = "心跳续约成功";
    (void)rpc_call_reply_pb(call, &resp.base);
}

static void server_closed(struct rpc_server *server)
{
}

static void signal_closed(uv_handle_t *h)
{
}

static void on_signal(uv_signal_t *sig, int signum)
{
    struct test_server *ts = sig->data;

    uv_signal_stop(&ts->sigterm);
    uv_signal_stop(&ts->sigint);
    uv_close((uv_handle_t *)&ts->sigterm, signal_closed);
    uv_close((uv_handle_t *)&ts->sigint, signal_closed);
    rpc_server_close(&ts->server, server_closed);
    /* The server cancelled our delayed calls; finish them now. */
    while (ts->delayed != NULL) {
        delayed_finish(ts->delayed);
    }
}

static int reg_pb(struct test_server *ts,
                  const char *name,
                  const ProtobufCMessageDescriptor *desc,
                  void (*fn)(void *, struct rpc_call *, ProtobufCMessage *))
{
    struct rpc_pb_handler h = {desc, fn, ts};
    return rpc_server_register_pb(&ts->server, name, &h);
}

int main(int argc, char **argv)
{
    static struct test_server ts;
    struct rpc_server_config cfg;
    struct rpc_handler raw = {raw_echo, &ts};
    static const struct rpc_health health = {health_check, NULL};
    int rv = 0;

    signal(SIGPIPE, SIG_IGN);
    memset(&cfg, 0, sizeof cfg);
    uv_loop_init(&ts.loop);
    ts.log.level =
        getenv("RPC_TEST_DEBUG") ? GOULETTE_LOG_DEBUG : GOULETTE_LOG_WARN;
    ts.log.emit = log_emit;
    cfg.loop = &ts.loop;
    cfg.log = &ts.log;
    cfg.port = (uint16_t)(argc > 1 ? atoi(argv[1]) : 0);
    rpc_limits_default(&cfg.limits);
    if (getenv("RPC_TEST_RECEIVE_TIMEOUT_MS") != NULL) {
        cfg.limits.receive_timeout_ms =
            (uint32_t)atoi(getenv("RPC_TEST_RECEIVE_TIMEOUT_MS"));
    }
    if (rpc_server_init(&ts.server, &cfg) != 0) {
        return 1;
    }
    rv |= reg_pb(&ts, "/goulettefs.test.Test/Echo",
                 &goulettefs__test__echo_request__descriptor, echo);
    rv |= reg_pb(&ts, "/goulettefs.test.Test/Delay",
                 &goulettefs__test__echo_request__descriptor, delay);
    rv |= reg_pb(&ts, "/goulettefs.test.Test/Fail",
                 &goulettefs__test__fail_request__descriptor, fail);
    rv |= reg_pb(&ts, "/goulettefs.test.Test/Stats",
                 &goulettefs__test__stats_request__descriptor, stats);
    rv |= rpc_server_register(&ts.server, "/goulettefs.test.Test/Raw", &raw);
    rv |= rpc_health_register(&ts.server, &health);
    rv |= reg_pb(&ts, "/goulette.SentinelService/GetTopicLeader",
                 &goulette__get_topic_leader_request__descriptor, topic_leader);
    rv |= reg_pb(&ts, "/goulette.SentinelService/KeepAlive",
                 &goulette__keep_alive_request__descriptor, keep_alive);
    if (rv != 0) {
        fprintf(stderr, "register failed\n");
        return 1;
    }
    rv = rpc_server_start(&ts.server);
    if (rv != 0) {
        fprintf(stderr, "listen: %s\n", uv_strerror(rv));
        return 1;
    }
    uv_signal_init(&ts.loop, &ts.sigterm);
    uv_signal_init(&ts.loop, &ts.sigint);
    ts.sigterm.data = &ts;
    ts.sigint.data = &ts;
    uv_signal_start(&ts.sigterm, on_signal, SIGTERM);
    uv_signal_start(&ts.sigint, on_signal, SIGINT);
    printf("PORT %u\n", (unsigned)rpc_server_port(&ts.server));
    fflush(stdout);
    uv_run(&ts.loop, UV_RUN_DEFAULT);
    rv = uv_loop_close(&ts.loop);
    if (rv != 0) {
        fprintf(stderr, "uv_loop_close: %s\n", uv_strerror(rv));
        return 2;
    }
    return 0;
}
