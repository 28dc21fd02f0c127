/* The member's gRPC port (member_rpc.h): Goulette's SentinelService, our
 * ClusterService and health, each request turned into a ReadIndex read, a
 * store command proposed through member_propose, or a Raft membership call.
 * Answers are built from this member's applied store.  It owns no record
 * format (the store's) and no gRPC mechanics (rpc/).
 *
 * Every request that waits (a read, a proposal, a conf change) is an op:
 *
 *   handler --read--> on read --found--> answer
 *      |                  `--missing--> propose generate --> answer
 *      `--propose (keepalive, register, unregister, unreachable)--> answer
 *
 * An op holds a reference on the port, which frees itself only when its
 * server has closed and no op is left (member_rpc_stop). */
#include "member_rpc.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <goulette/err.h>
#include <goulette/rpc.h>

#include "goulette.pb-c.h"
#include "goulettefs.pb-c.h"
#include "member.h"
#include "member_rpc_int.h"

/* Goulette's texts (goulette-sentinel.md §1.3-§1.7). */
#define MSG_KEEPALIVE_OK "心跳续约成功"
#define MSG_KEEPALIVE_FAILED "心跳处理失败: "
#define MSG_BROKER_EXISTS "Broker已存在"
#define MSG_BROKER_UNKNOWN "Broker不存在"
#define MSG_UNREGISTER_FAILED "注销broker心跳失败: "
#define MSG_NO_BROKER "topic %s 没有可用的broker"
#define MSG_NOT_ENOUGH "topic %s 可用broker不足"
#define MSG_NO_LEADER_ADDR "无法获取leader地址"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void member_rpc__maybe_free(struct member_rpc *mr)
{
    if (mr->stopping && !mr->server_open && !mr->client_open &&
        !mr->timer_open && mr->ops == 0 && !mr->promoting) {
        free(mr->join_peers);
        free(mr);
    }
}

struct op *member_rpc__op_new(struct member_rpc *mr,
                              struct rpc_call *call,
                              enum op_kind kind)
{
    struct op *op = calloc(1, sizeof *op);
    if (op == NULL) {
        return NULL;
    }
    op->mr = mr;
    op->call = call;
    op->kind = kind;
    mr->ops++;
    return op;
}

void member_rpc__op_free(struct op *op)
{
    struct member_rpc *mr = op->mr;
    free(op->topic);
    free(op);
    mr->ops--;
    member_rpc__maybe_free(mr);
}

/* The node, or NULL once the member stops taking work. */
struct raft_uv_node *member_rpc__node(const struct member_rpc *mr)
{
    if (mr->stopping || mr->m->stopping) {
        return NULL;
    }
    return mr->m->node;
}

static int read_index(struct op *op, raft_uv_read_cb cb)
{
    struct raft_uv_node *node = member_rpc__node(op->mr);
    if (node == NULL) {
        return GOULETTE_ESHUTDOWN;
    }
    return raft_uv_node_read(node, cb, op);
}

static int propose(struct op *op,
                   const struct store_cmd *cmd,
                   void (*done)(struct member_proposal *p, int rv))
{
    if (member_rpc__node(op->mr) == NULL) {
        return GOULETTE_ESHUTDOWN;
    }
    op->proposal.mutation = NULL;
    op->proposal.done = done;
    return member_propose(op->mr->m, cmd, &op->proposal);
}

/* ---- requests ------------------------------------------------------------
 */

/* Whether a string field of the message in @req (already known to decode)
 * holds a NUL byte: protobuf strings may, C strings cannot, and
 * store_name_check must see the name's real length. */
static bool has_nul(const ProtobufCMessageDescriptor *d,
                    const struct goulette_buf *req)
{
    const uint8_t *p = req->base;
    const uint8_t *end = p + req->len;

    while (p < end) {
        uint64_t key = 0, len = 0;
        unsigned shift = 0;
        const ProtobufCFieldDescriptor *f;
        while (p < end && shift < 64) {
            key |= (uint64_t)(*p & 0x7f) << shift;
            shift += 7;
            if ((*p++ & 0x80) == 0) {
                break;
            }
        }
        switch (key & 7) {
        case 0:
            while (p < end && (*p++ & 0x80) != 0) {
            }
            break;
        case 1:
            p += 8;
            break;
        case 5:
            p += 4;
            break;
        case 2:
            shift = 0;
            while (p < end && shift < 64) {
                len |= (uint64_t)(*p & 0x7f) << shift;
                shift += 7;
                if ((*p++ & 0x80) == 0) {
                    break;
                }
            }
            if (len > (uint64_t)(end - p)) {
                return false; /* cannot be: it decoded */
            }
            f = protobuf_c_message_descriptor_get_field(d,
                                                        (unsigned)(key >> 3));
            if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING &&
                memchr(p, 0, (size_t)len) != NULL) {
                return true;
            }
            p += len;
            break;
        default:
            return false;
        }
    }
    return false;
}

/* Decode @req as @d, or answer the call as grpc-go does and return NULL.
 * *@nul tells whether a string field holds a NUL byte. */
ProtobufCMessage *member_rpc__unpack(struct rpc_call *call,
                                     const ProtobufCMessageDescriptor *d,
                                     const struct goulette_buf *req,
                                     bool *nul)
{
    ProtobufCMessage *pb =
        protobuf_c_message_unpack(d, NULL, req->len, req->base);
    char msg[160];

    if (pb == NULL) {
        snprintf(msg, sizeof msg,
                 "grpc: error unmarshalling request: malformed %s", d->name);
        (void)rpc_call_fail(call, RPC_STATUS_INTERNAL, msg);
        return NULL;
    }
    *nul = has_nul(d, req);
    return pb;
}

static int name_check(const char *name, bool nul)
{
    return nul ? -EINVAL : store_name_check(name, strlen(name));
}

/* ---- SentinelService/GetTopicLeader ---------------------------------------
 * Failures are gRPC UNKNOWN with Goulette's message (§1.4, §1.7). */

static void leader_fail(struct op *op, int rv)
{
    char msg[STORE_NAME_MAX + 128];
    const char *t = op->topic != NULL ? op->topic : "";

    if (rv == GOULETTE_ENOBROKERS || rv == -ENOENT ||
        (rv == -EINVAL && op->replica_count == 0 && !op->unreachable)) {
        snprintf(msg, sizeof msg,
                 op->unreachable ? MSG_NOT_ENOUGH : MSG_NO_BROKER, t);
    } else if (rv == GOULETTE_ELIMIT) {
        snprintf(msg, sizeof msg,
                 "topic %s was re-placed less than %llu ms ago; reports of "
                 "unreachable brokers move a topic at most once per "
                 "--report-interval",
                 t, (unsigned long long)op->mr->m->opts->report_interval_ms);
    } else if (rv == GOULETTE_ENOLEADER || rv == GOULETTE_ENOTLEADER) {
        snprintf(msg, sizeof msg, "%s", MSG_NO_LEADER_ADDR);
    } else if (rv == -EINVAL || rv == -ENAMETOOLONG) {
        snprintf(msg, sizeof msg, "请求无效: %s", goulette_strerror(rv));
    } else {
        snprintf(msg, sizeof msg, "%s", goulette_strerror(rv));
    }
    (void)rpc_call_fail(op->call, RPC_STATUS_UNKNOWN, msg);
    member_rpc__op_free(op);
}

/* The replica that leads: the first of the record whose broker exists and
 * is healthy (normally the first: re-placement drops down brokers). */
static const struct store_replica *leading(const struct store_sm *sm,
                                           const struct store_topic_view *v,
                                           struct store_broker_view *b)
{
    size_t i;
    for (i = 0; i < v->n_replicas; i++) {
        if (store_sm_broker_get(sm, v->replicas[i].broker_id, b) == 0 &&
            b->status == STORE_BROKER_HEALTHY) {
            return &v->replicas[i];
        }
    }
    return NULL;
}

static void leader_reply(struct op *op)
{
    Goulette__GetTopicLeaderResponse resp =
        GOULETTE__GET_TOPIC_LEADER_RESPONSE__INIT;
    Goulette__BrokerInfo info = GOULETTE__BROKER_INFO__INIT;
    Goulette__Timestamp ts = GOULETTE__TIMESTAMP__INIT;
    const struct store_sm *sm = op->mr->m->sm;
    struct store_topic_view v;
    struct store_broker_view b;
    const struct store_replica *r;

    if (store_sm_topic_get(sm, op->topic, &v) != 0 ||
        (r = leading(sm, &v, &b)) == NULL) {
        leader_fail(op, GOULETTE_ENOBROKERS);
        return;
    }
    info.broker_id = (char *)r->broker_id;
    info.address = (char *)b.address;
    /* Goulette casts its internal Healthy (0) to the proto enum: a healthy
     * leader goes out as 0, i.e. the field is omitted (§1.2). */
    info.status = GOULETTE__BROKER_STATUS__BROKER_STATUS_UNSPECIFIED;
    ts.seconds = op->placed ? b.updated_ns / 1000000000 : v.timestamp;
    info.last_heartbeat = &ts;
    resp.leader = &info;
    (void)rpc_call_reply_pb(op->call, &resp.base);
    member_rpc__op_free(op);
}

static void generated(struct member_proposal *p, int rv)
{
    struct op *op = (struct op *)p;
    if (rv != 0) {
        leader_fail(op, rv);
        return;
    }
    op->placed = true;
    leader_reply(op);
}

/* Place a topic that has no assignment: the store's generate command.  Two
 * first requests racing propose the same command; the second finds the
 * same count stored and changes nothing. */
static int generate(struct op *op,
                    void (*done)(struct member_proposal *p, int rv))
{
    struct store_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = STORE_CMD_GENERATE_TOPIC_REPLICAS;
    cmd.timestamp_ns = now_ns();
    cmd.topic = op->topic;
    cmd.replica_count = op->replica_count;
    return propose(op, &cmd, done);
}

static void leader_read(void *arg, int rv)
{
    struct op *op = arg;
    struct store_topic_view v;

    if (rv == 0 && store_sm_topic_get(op->mr->m->sm, op->topic, &v) == 0) {
        leader_reply(op);
        return;
    }
    if (rv == 0) {
        rv = generate(op, generated);
        if (rv == 0) {
            return;
        }
    }
    leader_fail(op, rv);
}

static void unreachable_handled(struct member_proposal *p, int rv)
{
    struct op *op = (struct op *)p;
    if (rv != 0) {
        leader_fail(op, rv);
        return;
    }
    op->placed = true;
    leader_reply(op);
}

static void handle_topic_leader(void *data,
                                struct rpc_call *call,
                                const struct goulette_buf *body)
{
    struct member_rpc *mr = data;
    Goulette__GetTopicLeaderRequest *req;
    struct store_cmd cmd;
    struct op *op;
    bool nul;
    size_t i;
    int rv;

    req = (Goulette__GetTopicLeaderRequest *)member_rpc__unpack(
        call, &goulette__get_topic_leader_request__descriptor, body, &nul);
    if (req == NULL) {
        return;
    }
    op = member_rpc__op_new(mr, call, OP_TOPIC_LEADER);
    if (op == NULL || (op->topic = strdup(req->topic)) == NULL) {
        if (op != NULL) {
            member_rpc__op_free(op);
        }
        (void)rpc_call_fail(call, RPC_STATUS_RESOURCE_EXHAUSTED,
                            "out of memory");
        goto out;
    }
    op->replica_count = req->replica_count;
    op->unreachable = req->n_unreachable_brokers > 0;
    rv = name_check(req->topic, nul);
    for (i = 0; rv == 0 && i < req->n_unreachable_brokers; i++) {
        rv = name_check(req->unreachable_brokers[i], nul);
    }
    if (rv == 0 && op->unreachable) {
        /* A client's report is a hint (docs/liveness.md, "Reports from
         * clients"): the store moves this topic off the reported brokers
         * without marking them down, at most once per --report-interval;
         * the leader's failure detector sets down those it has not heard
         * from either. */
        memset(&cmd, 0, sizeof cmd);
        cmd.type = STORE_CMD_HANDLE_UNREACHABLE;
        cmd.timestamp_ns = now_ns();
        cmd.topic = op->topic;
        cmd.replica_count = op->replica_count;
        cmd.names = req->unreachable_brokers;
        cmd.n_names = req->n_unreachable_brokers;
        cmd.hint = true;
        cmd.interval_ns = (int64_t)mr->m->opts->report_interval_ms * 1000000;
        rv = propose(op, &cmd, unreachable_handled);
    } else if (rv == 0) {
        rv = read_index(op, leader_read);
    }
    if (rv != 0) {
        leader_fail(op, rv);
    }
out:
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

/* ---- SentinelService/KeepAlive, RegisterBroker, UnregisterBroker ---------
 * Always gRPC OK, failures in-band (success, error_message): §1.7. */

/* The three responses share their layout (success = 1, error_message = 2),
 * but not their descriptors. */
static void reply_inband(struct rpc_call *call,
                         enum op_kind kind,
                         bool success,
                         const char *message)
{
    Goulette__KeepAliveResponse ka = GOULETTE__KEEP_ALIVE_RESPONSE__INIT;
    Goulette__RegisterBrokerResponse rg =
        GOULETTE__REGISTER_BROKER_RESPONSE__INIT;
    Goulette__UnregisterBrokerResponse ur =
        GOULETTE__UNREGISTER_BROKER_RESPONSE__INIT;
    char *msg = (char *)message;

    switch (kind) {
    case OP_KEEPALIVE:
        ka.success = success;
        ka.error_message = msg;
        (void)rpc_call_reply_pb(call, &ka.base);
        break;
    case OP_REGISTER:
        rg.success = success;
        rg.error_message = msg;
        (void)rpc_call_reply_pb(call, &rg.base);
        break;
    default:
        ur.success = success;
        ur.error_message = msg;
        (void)rpc_call_reply_pb(call, &ur.base);
        break;
    }
}

/* The in-band answer to a broker command's result @rv. */
static void broker_answer(struct rpc_call *call, enum op_kind kind, int rv)
{
    char msg[256];

    switch (kind) {
    case OP_KEEPALIVE:
        if (rv == 0) {
            reply_inband(call, kind, true, MSG_KEEPALIVE_OK);
            return;
        }
        snprintf(msg, sizeof msg, MSG_KEEPALIVE_FAILED "%s",
                 goulette_strerror(rv));
        break;
    case OP_REGISTER:
        if (rv == 0) {
            reply_inband(call, kind, true, "");
            return;
        }
        if (rv == -EEXIST) {
            snprintf(msg, sizeof msg, "%s", MSG_BROKER_EXISTS);
        } else {
            snprintf(msg, sizeof msg, "注册broker失败: %s",
                     goulette_strerror(rv));
        }
        break;
    default:
        if (rv == 0) {
            reply_inband(call, kind, true, "");
            return;
        }
        if (rv == -ENOENT) {
            snprintf(msg, sizeof msg, "%s", MSG_BROKER_UNKNOWN);
        } else {
            snprintf(msg, sizeof msg, MSG_UNREGISTER_FAILED "%s",
                     goulette_strerror(rv));
        }
        break;
    }
    reply_inband(call, kind, false, msg);
}

static void broker_done(struct member_proposal *p, int rv)
{
    struct op *op = (struct op *)p;
    broker_answer(op->call, op->kind, rv);
    member_rpc__op_free(op);
}

/* Propose @cmd for the broker RPC @kind and answer once it is applied. */
static void broker_propose(struct member_rpc *mr,
                           struct rpc_call *call,
                           enum op_kind kind,
                           const struct store_cmd *cmd)
{
    struct op *op = member_rpc__op_new(mr, call, kind);
    int rv;

    if (op == NULL) {
        broker_answer(call, kind, -ENOMEM);
        return;
    }
    rv = propose(op, cmd, broker_done);
    if (rv != 0) {
        broker_answer(call, kind, rv);
        member_rpc__op_free(op);
    }
}

static void handle_keepalive(void *data,
                             struct rpc_call *call,
                             const struct goulette_buf *body)
{
    struct member_rpc *mr = data;
    Goulette__KeepAliveRequest *req;
    struct store_broker_view b;
    struct store_cmd cmd;
    bool nul;
    int rv;

    req = (Goulette__KeepAliveRequest *)member_rpc__unpack(
        call, &goulette__keep_alive_request__descriptor, body, &nul);
    if (req == NULL) {
        return;
    }
    rv = name_check(req->broker_id, nul);
    if (rv == 0) {
        rv = store_address_check(req->address, strlen(req->address));
    }
    if (rv != 0) {
        broker_answer(call, OP_KEEPALIVE, rv);
        goto out;
    }
    /* KeepAlive never waits when nothing would change: a known, healthy
     * broker at the same address is answered at once on every member.  The
     * leader notes the renewal in its memory; any other member forwards it
     * to the leader in memory too (member_liveness_heartbeat, a PeerNotice
     * over the peer transport; docs/liveness.md), never as a Raft entry.
     * Anything else is a state change and goes through Raft. */
    memset(&cmd, 0, sizeof cmd);
    cmd.type = STORE_CMD_KEEPALIVE_BROKER;
    cmd.timestamp_ns = now_ns();
    cmd.broker_id = req->broker_id;
    cmd.address = req->address;
    if (store_sm_broker_get(mr->m->sm, req->broker_id, &b) == 0 &&
        b.status == STORE_BROKER_HEALTHY &&
        strcmp(b.address, req->address) == 0) {
        /* Best effort, like the heartbeat itself: a renewal lost here (out
         * of memory, shutting down) is made up by the broker's next one. */
        (void)member_liveness_heartbeat(mr->m, req->broker_id);
        broker_answer(call, OP_KEEPALIVE, 0);
        goto out;
    }
    broker_propose(mr, call, OP_KEEPALIVE, &cmd);
out:
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

static void handle_register(void *data,
                            struct rpc_call *call,
                            const struct goulette_buf *body)
{
    struct member_rpc *mr = data;
    Goulette__RegisterBrokerRequest *req;
    struct store_cmd cmd;
    bool nul;
    size_t i;
    int rv;

    req = (Goulette__RegisterBrokerRequest *)member_rpc__unpack(
        call, &goulette__register_broker_request__descriptor, body, &nul);
    if (req == NULL) {
        return;
    }
    rv = name_check(req->broker_id, nul);
    if (rv == 0) {
        rv = store_address_check(req->address, strlen(req->address));
    }
    for (i = 0; rv == 0 && i < req->n_topics; i++) {
        rv = name_check(req->topics[i], nul);
    }
    if (rv != 0) {
        broker_answer(call, OP_REGISTER, rv);
        goto out;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = STORE_CMD_REGISTER_BROKER;
    cmd.timestamp_ns = now_ns();
    cmd.broker_id = req->broker_id;
    cmd.address = req->address;
    cmd.names = req->topics;
    cmd.n_names = req->n_topics;
    broker_propose(mr, call, OP_REGISTER, &cmd);
out:
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

static void handle_unregister(void *data,
                              struct rpc_call *call,
                              const struct goulette_buf *body)
{
    struct member_rpc *mr = data;
    Goulette__UnregisterBrokerRequest *req;
    struct store_cmd cmd;
    bool nul;

    req = (Goulette__UnregisterBrokerRequest *)member_rpc__unpack(
        call, &goulette__unregister_broker_request__descriptor, body, &nul);
    if (req == NULL) {
        return;
    }
    if (name_check(req->broker_id, nul) != 0) {
        /* A name no broker can have: no broker has it. */
        broker_answer(call, OP_UNREGISTER, -ENOENT);
        goto out;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = STORE_CMD_UNREGISTER_BROKER;
    cmd.timestamp_ns = now_ns();
    cmd.broker_id = req->broker_id;
    broker_propose(mr, call, OP_UNREGISTER, &cmd);
out:
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

/* ---- ClusterService/GetBrokers -------------------------------------------
 * Our service: statuses are ordinary gRPC statuses (rpc_status_from). */

static void brokers_fail(struct op *op, int rv)
{
    char msg[STORE_NAME_MAX + 64];
    if (rv == -ENOENT) {
        snprintf(msg, sizeof msg, "topic %s has no assignment", op->topic);
    } else {
        snprintf(msg, sizeof msg, "%s", goulette_strerror(rv));
    }
    (void)rpc_call_fail(op->call, rpc_status_from(rv), msg);
    member_rpc__op_free(op);
}

static void brokers_reply(struct op *op)
{
    Goulettefs__GetBrokersResponse resp =
        GOULETTEFS__GET_BROKERS_RESPONSE__INIT;
    Goulette__Timestamp ts = GOULETTE__TIMESTAMP__INIT;
    Goulette__BrokerInfo *infos = NULL;
    Goulette__BrokerInfo **ptrs = NULL;
    Goulette__Timestamp *beats = NULL;
    struct store_sm *sm = op->mr->m->sm;
    struct store_topic_view v;
    struct store_stat st;
    size_t i;
    int rv;

    rv = store_sm_topic_get(sm, op->topic, &v);
    if (rv == 0) {
        rv = store_sm_stat(sm, STORE_DIR_TOPICS, op->topic, &st);
    }
    if (rv != 0) {
        brokers_fail(op, rv);
        return;
    }
    infos = calloc(v.n_replicas + 1, sizeof *infos);
    ptrs = calloc(v.n_replicas + 1, sizeof *ptrs);
    beats = calloc(v.n_replicas + 1, sizeof *beats);
    if (infos == NULL || ptrs == NULL || beats == NULL) {
        brokers_fail(op, -ENOMEM);
        goto out;
    }
    for (i = 0; i < v.n_replicas; i++) {
        const struct store_replica *r = &v.replicas[i];
        struct store_broker_view b;
        Goulette__BrokerInfo init = GOULETTE__BROKER_INFO__INIT;
        Goulette__Timestamp tinit = GOULETTE__TIMESTAMP__INIT;
        int status = r->status;
        infos[i] = init;
        beats[i] = tinit;
        infos[i].broker_id = (char *)r->broker_id;
        infos[i].address = (char *)r->address;
        if (store_sm_broker_get(sm, r->broker_id, &b) == 0) {
            /* The broker's current record, which the topic's may lag. */
            infos[i].address = (char *)b.address;
            status = b.status;
            beats[i].seconds = b.updated_ns / 1000000000;
            beats[i].nanos = (int32_t)(b.updated_ns % 1000000000);
            infos[i].last_heartbeat = &beats[i];
        } else {
            status = STORE_BROKER_DOWN; /* unregistered since */
        }
        /* The proto enum used as meant: internal + 1. */
        infos[i].status = (Goulette__BrokerStatus)(status + 1);
        ptrs[i] = &infos[i];
    }
    resp.topic = op->topic;
    resp.brokers = ptrs;
    resp.n_brokers = v.n_replicas;
    resp.version = st.version;
    resp.replica_count = v.replica_count;
    ts.seconds = v.timestamp;
    resp.timestamp = &ts;
    (void)rpc_call_reply_pb(op->call, &resp.base);
    member_rpc__op_free(op);
out:
    free(infos);
    free(ptrs);
    free(beats);
}

static void brokers_generated(struct member_proposal *p, int rv)
{
    struct op *op = (struct op *)p;
    if (rv != 0) {
        brokers_fail(op, rv);
        return;
    }
    brokers_reply(op);
}

static void brokers_read(void *arg, int rv)
{
    struct op *op = arg;
    struct store_topic_view v;

    if (rv == 0 && store_sm_topic_get(op->mr->m->sm, op->topic, &v) != 0) {
        if (op->replica_count == 0) {
            rv = -ENOENT;
        } else {
            rv = generate(op, brokers_generated);
            if (rv == 0) {
                return;
            }
        }
    }
    if (rv != 0) {
        brokers_fail(op, rv);
        return;
    }
    brokers_reply(op);
}

static void handle_get_brokers(void *data,
                               struct rpc_call *call,
                               const struct goulette_buf *body)
{
    struct member_rpc *mr = data;
    Goulettefs__GetBrokersRequest *req;
    struct op *op;
    bool nul;
    int rv;

    req = (Goulettefs__GetBrokersRequest *)member_rpc__unpack(
        call, &goulettefs__get_brokers_request__descriptor, body, &nul);
    if (req == NULL) {
        return;
    }
    rv = name_check(req->topic, nul);
    if (rv != 0) {
        (void)rpc_call_fail(call, RPC_STATUS_INVALID_ARGUMENT,
                            "invalid topic name");
        goto out;
    }
    op = member_rpc__op_new(mr, call, OP_GET_BROKERS);
    if (op == NULL || (op->topic = strdup(req->topic)) == NULL) {
        if (op != NULL) {
            member_rpc__op_free(op);
        }
        (void)rpc_call_fail(call, RPC_STATUS_RESOURCE_EXHAUSTED,
                            "out of memory");
        goto out;
    }
    op->replica_count = req->replica_count;
    rv = read_index(op, brokers_read);
    if (rv != 0) {
        brokers_fail(op, rv);
    }
out:
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

/* ---- ClusterService/Status and health ------------------------------------
 */

bool member_rpc_serving(const struct member *m)
{
    struct raft_uv_node_status st;
    if (m->node == NULL || m->stopping) {
        return false;
    }
    raft_uv_node_status(m->node, &st);
    return st.leader != 0 && st.applied >= st.commit;
}

static int health_check(void *data, const char *service)
{
    struct member_rpc *mr = data;
    if (service[0] != '\0' &&
        strcmp(service, "goulette.SentinelService") != 0 &&
        strcmp(service, "goulettefs.ClusterService") != 0) {
        return -ENOENT;
    }
    return member_rpc_serving(mr->m) ? 1 : 0;
}

/* The members of the configuration as protobuf messages.  @out (calloc'd
 * array of @n, caller frees it and @ptrs) borrows the configuration's
 * strings.  Errors: -ENOMEM. */
/* ---- start and stop ------------------------------------------------------
 */

static const struct
{
    const char *method;
    void (*handle)(void *data,
                   struct rpc_call *call,
                   const struct goulette_buf *req);
} methods[] = {
    {"/goulette.SentinelService/KeepAlive", handle_keepalive},
    {"/goulette.SentinelService/GetTopicLeader", handle_topic_leader},
    {"/goulette.SentinelService/RegisterBroker", handle_register},
    {"/goulette.SentinelService/UnregisterBroker", handle_unregister},
    {"/goulettefs.ClusterService/GetBrokers", handle_get_brokers},
    {"/goulettefs.ClusterService/Status", member_rpc__handle_status},
    {"/goulettefs.ClusterService/AddMember", member_rpc__handle_add_member},
    {"/goulettefs.ClusterService/RemoveMember",
     member_rpc__handle_remove_member},
    {"/goulettefs.ClusterService/PromoteMember",
     member_rpc__handle_promote_member},
    {"/goulettefs.ClusterService/TransferLeadership",
     member_rpc__handle_transfer},
};

static void on_server_closed(struct rpc_server *server)
{
    struct member_rpc *mr =
        (struct member_rpc *)((char *)server -
                              offsetof(struct member_rpc, server));
    mr->server_open = false;
    member_rpc__maybe_free(mr);
}

void member_rpc__hostport(char *buf,
                          size_t size,
                          const struct options_hostport *hp)
{
    snprintf(buf, size, strchr(hp->host, ':') != NULL ? "[%s]:%u" : "%s:%u",
             hp->host, (unsigned)hp->port);
}

struct member_rpc *member_rpc__alloc(struct member *m)
{
    struct member_rpc *mr = calloc(1, sizeof *mr);
    if (mr == NULL) {
        return NULL;
    }
    mr->m = m;
    member_rpc__hostport(mr->grpc_address, sizeof mr->grpc_address,
                         &m->opts->grpc_listen);
    return mr;
}

int member_rpc_start(struct member *m, struct member_rpc **out)
{
    const struct options_hostport *hp = &m->opts->grpc_listen;
    struct rpc_server_config c;
    struct member_rpc *mr = *out;
    size_t i;
    int rv;

    if (mr == NULL) {
        mr = member_rpc__alloc(m);
        if (mr == NULL) {
            return -ENOMEM;
        }
    } else if (mr->join_peers != NULL) {
        /* Joining: dial and accept the members the leader named. */
        rv = raft_uv_transport_set_peers(&m->transport, mr->join_peers,
                                         mr->n_join_peers);
        if (rv != 0) {
            goulette_logf(m->log, GOULETTE_LOG_ERROR, "raft",
                          "cannot set the peers of the joined cluster: %s",
                          goulette_strerror(rv));
        }
    }
    memset(&c, 0, sizeof c);
    c.loop = m->loop;
    c.log = m->log;
    c.host = hp->host;
    c.port = hp->port;
    rpc_limits_default(&c.limits);
    rv = rpc_server_init(&mr->server, &c);
    if (rv != 0) {
        *out = NULL;
        free(mr->join_peers);
        free(mr);
        return rv;
    }
    mr->server_open = true;
    for (i = 0; rv == 0 && i < sizeof methods / sizeof methods[0]; i++) {
        struct rpc_handler h = {methods[i].handle, mr};
        rv = rpc_server_register(&mr->server, methods[i].method, &h);
    }
    mr->health.check = health_check;
    mr->health.data = mr;
    if (rv == 0) {
        rv = rpc_health_register(&mr->server, &mr->health);
    }
    if (rv == 0) {
        rv = rpc_server_start(&mr->server);
    }
    if (rv == 0 && m->opts->has_join) {
        rv = member_rpc__start_promoter(mr);
    }
    if (rv != 0) {
        goulette_logf(m->log, GOULETTE_LOG_ERROR, "rpc",
                      "cannot serve gRPC on %s: %s", mr->grpc_address,
                      goulette_strerror(rv));
        *out = NULL;
        member_rpc_stop(mr);
        return rv;
    }
    *out = mr;
    return 0;
}

static void on_client_closed(struct rpc_client *client)
{
    struct member_rpc *mr =
        (struct member_rpc *)((char *)client -
                              offsetof(struct member_rpc, client));
    mr->client_open = false;
    member_rpc__maybe_free(mr);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct member_rpc *mr = h->data;
    mr->timer_open = false;
    member_rpc__maybe_free(mr);
}

void member_rpc_stop(struct member_rpc *mr)
{
    if (mr == NULL || mr->stopping) {
        return;
    }
    mr->stopping = true;
    if (mr->timer_open) {
        uv_close((uv_handle_t *)&mr->promote_timer, on_timer_closed);
    }
    if (mr->client_open) {
        rpc_client_close(&mr->client, on_client_closed);
    }
    if (mr->server_open) {
        rpc_server_close(&mr->server, on_server_closed);
    }
    member_rpc__maybe_free(mr);
}
