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

/* Goulette's texts (goulette-sentinel.md §1.3-§1.7). */
#define MSG_KEEPALIVE_OK "心跳续约成功"
#define MSG_KEEPALIVE_FAILED "心跳处理失败: "
#define MSG_BROKER_EXISTS "Broker已存在"
#define MSG_BROKER_UNKNOWN "Broker不存在"
#define MSG_UNREGISTER_FAILED "注销broker心跳失败: "
#define MSG_NO_BROKER "topic %s 没有可用的broker"
#define MSG_NOT_ENOUGH "topic %s 可用broker不足"
#define MSG_NO_LEADER_ADDR "无法获取leader地址"

struct member_rpc
{
    struct member *m; /* borrowed */
    struct rpc_server server;
    struct rpc_health health;
    bool server_open; /* initialized, close callback not yet run */
    bool stopping;
    unsigned ops; /* ops in flight: each must finish before the free */
    char grpc_address[OPTIONS_HOST_MAX + 16]; /* this port, "host:port" */

    /* A joining member (--join): */
    struct raft_uv_peer *join_peers; /* owned; the cluster's members, for the
                                        transport until the log names them */
    unsigned n_join_peers;
    char join_address[OPTIONS_HOST_MAX + 16]; /* --join, "host:port" */
    struct rpc_client client;                 /* PromoteMember calls */
    bool client_open;         /* initialized, close callback not yet run */
    uv_timer_t promote_timer; /* checks whether we caught up */
    bool timer_open;          /* initialized, close callback not yet run */
    bool promoting;           /* a PromoteMember call is in flight */
};

enum op_kind {
    OP_TOPIC_LEADER = 1, /* SentinelService/GetTopicLeader */
    OP_GET_BROKERS,      /* ClusterService/GetBrokers */
    OP_KEEPALIVE,
    OP_REGISTER,
    OP_UNREGISTER,
    OP_MEMBER, /* ClusterService membership change */
};

struct op
{
    struct member_proposal proposal; /* first: member_propose's arg */
    struct member_rpc *mr;
    struct rpc_call *call; /* finished exactly once */
    enum op_kind kind;
    char *topic;            /* owned; topic ops */
    uint32_t replica_count; /* as requested */
    bool unreachable;       /* GetTopicLeader with unreachable_brokers */
    bool placed; /* this op's command made the assignment (last_heartbeat
                    is then the leader's, §1.4.2a; else the record's) */
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void maybe_free(struct member_rpc *mr)
{
    if (mr->stopping && !mr->server_open && !mr->client_open &&
        !mr->timer_open && mr->ops == 0 && !mr->promoting) {
        free(mr->join_peers);
        free(mr);
    }
}

static struct op *op_new(struct member_rpc *mr,
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

static void op_free(struct op *op)
{
    struct member_rpc *mr = op->mr;
    free(op->topic);
    free(op);
    mr->ops--;
    maybe_free(mr);
}

/* The node, or NULL once the member stops taking work. */
static struct raft_uv_node *node_of(const struct member_rpc *mr)
{
    if (mr->stopping || mr->m->stopping) {
        return NULL;
    }
    return mr->m->node;
}

static int read_index(struct op *op, raft_uv_read_cb cb)
{
    struct raft_uv_node *node = node_of(op->mr);
    if (node == NULL) {
        return GOULETTE_ESHUTDOWN;
    }
    return raft_uv_node_read(node, cb, op);
}

static int propose(struct op *op,
                   const struct store_cmd *cmd,
                   void (*done)(struct member_proposal *p, int rv))
{
    if (node_of(op->mr) == NULL) {
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
static ProtobufCMessage *unpack(struct rpc_call *call,
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
    } else if (rv == GOULETTE_ENOLEADER || rv == GOULETTE_ENOTLEADER) {
        snprintf(msg, sizeof msg, "%s", MSG_NO_LEADER_ADDR);
    } else if (rv == -EINVAL || rv == -ENAMETOOLONG) {
        snprintf(msg, sizeof msg, "请求无效: %s", goulette_strerror(rv));
    } else {
        snprintf(msg, sizeof msg, "%s", goulette_strerror(rv));
    }
    (void)rpc_call_fail(op->call, RPC_STATUS_UNKNOWN, msg);
    op_free(op);
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
    op_free(op);
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

/* Issue 8 will bound how often clients may report brokers unreachable (a
 * rate per topic and per client); every report passes through here first.
 * Returns 0 to go ahead or a negative error to refuse. */
static int unreachable_admit(struct member_rpc *mr,
                             const Goulette__GetTopicLeaderRequest *req)
{
    (void)mr;
    (void)req;
    return 0;
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

    req = (Goulette__GetTopicLeaderRequest *)unpack(
        call, &goulette__get_topic_leader_request__descriptor, body, &nul);
    if (req == NULL) {
        return;
    }
    op = op_new(mr, call, OP_TOPIC_LEADER);
    if (op == NULL || (op->topic = strdup(req->topic)) == NULL) {
        if (op != NULL) {
            op_free(op);
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
        rv = unreachable_admit(mr, req);
        if (rv == 0) {
            /* Goes to the leader through Raft's proposal forwarding; the
             * leader's apply replaces the brokers and picks the new leader
             * (store/, "Handle unreachable"). */
            memset(&cmd, 0, sizeof cmd);
            cmd.type = STORE_CMD_HANDLE_UNREACHABLE;
            cmd.timestamp_ns = now_ns();
            cmd.topic = op->topic;
            cmd.replica_count = op->replica_count;
            cmd.names = req->unreachable_brokers;
            cmd.n_names = req->n_unreachable_brokers;
            rv = propose(op, &cmd, unreachable_handled);
        }
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
    op_free(op);
}

/* Propose @cmd for the broker RPC @kind and answer once it is applied. */
static void broker_propose(struct member_rpc *mr,
                           struct rpc_call *call,
                           enum op_kind kind,
                           const struct store_cmd *cmd)
{
    struct op *op = op_new(mr, call, kind);
    int rv;

    if (op == NULL) {
        broker_answer(call, kind, -ENOMEM);
        return;
    }
    rv = propose(op, cmd, broker_done);
    if (rv != 0) {
        broker_answer(call, kind, rv);
        op_free(op);
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

    req = (Goulette__KeepAliveRequest *)unpack(
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
     * broker at the same address is answered from this member's state at
     * once (issue 8 moves heartbeat times into the leader's memory). */
    if (store_sm_broker_get(mr->m->sm, req->broker_id, &b) == 0 &&
        b.status == STORE_BROKER_HEALTHY &&
        strcmp(b.address, req->address) == 0) {
        broker_answer(call, OP_KEEPALIVE, 0);
        goto out;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = STORE_CMD_KEEPALIVE_BROKER;
    cmd.timestamp_ns = now_ns();
    cmd.broker_id = req->broker_id;
    cmd.address = req->address;
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

    req = (Goulette__RegisterBrokerRequest *)unpack(
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

    req = (Goulette__UnregisterBrokerRequest *)unpack(
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
    op_free(op);
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
    op_free(op);
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

    req = (Goulettefs__GetBrokersRequest *)unpack(
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
    op = op_new(mr, call, OP_GET_BROKERS);
    if (op == NULL || (op->topic = strdup(req->topic)) == NULL) {
        if (op != NULL) {
            op_free(op);
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
static int members_of(const struct member_rpc *mr,
                      Goulettefs__Member **out,
                      Goulettefs__Member ***ptrs,
                      size_t *n)
{
    const struct member *m = mr->m;
    const struct raft *r = raft_uv_node_raft(m->node);
    struct raft_uv_node_status st;
    unsigned i;

    raft_uv_node_status(m->node, &st);
    *n = st.conf != NULL ? st.conf->n : 0;
    *out = calloc(*n + 1, sizeof **out);
    *ptrs = calloc(*n + 1, sizeof **ptrs);
    if (*out == NULL || *ptrs == NULL) {
        free(*out);
        free(*ptrs);
        return -ENOMEM;
    }
    for (i = 0; i < *n; i++) {
        const struct raft_server *s = &st.conf->servers[i];
        Goulettefs__Member init = GOULETTEFS__MEMBER__INIT;
        Goulettefs__Member *o = &(*out)[i];
        const char *name = member_name_of(m, s->id);
        raft_index match = 0;
        *o = init;
        o->id = s->id;
        o->peer_address = (char *)s->address;
        if (s->id == m->id) {
            o->grpc_address = (char *)mr->grpc_address;
        }
        o->learner = s->role == RAFT_LEARNER;
        o->leader = s->id == st.leader;
        if (raft_progress(r, s->id, &match) == 0) {
            o->match_index = match;
        } else if (s->id == m->id && st.state == RAFT_LEADER) {
            o->match_index = st.last;
        }
        if (name != NULL) {
            o->name = (char *)name;
        }
        (*ptrs)[i] = o;
    }
    return 0;
}

static void handle_status(void *data,
                          struct rpc_call *call,
                          const struct goulette_buf *body)
{
    struct member_rpc *mr = data;
    struct member *m = mr->m;
    Goulettefs__StatusResponse resp = GOULETTEFS__STATUS_RESPONSE__INIT;
    Goulettefs__Member *members = NULL;
    Goulettefs__Member **ptrs = NULL;
    struct raft_uv_node_status st;
    const char *leader_name;
    size_t n = 0;
    bool nul;
    ProtobufCMessage *req =
        unpack(call, &goulettefs__status_request__descriptor, body, &nul);

    if (req == NULL) {
        return;
    }
    protobuf_c_message_free_unpacked(req, NULL);
    if (node_of(mr) == NULL) {
        (void)rpc_call_fail(call, RPC_STATUS_UNAVAILABLE, "shutting down");
        return;
    }
    if (members_of(mr, &members, &ptrs, &n) != 0) {
        (void)rpc_call_fail(call, RPC_STATUS_RESOURCE_EXHAUSTED,
                            "out of memory");
        return;
    }
    raft_uv_node_status(m->node, &st);
    resp.member_id = m->id;
    resp.member_name = (char *)m->opts->name;
    resp.state = (char *)raft_state_name(st.state);
    if (st.conf != NULL && raft_configuration_get(st.conf, m->id) != NULL &&
        raft_configuration_get(st.conf, m->id)->role == RAFT_LEARNER) {
        resp.state = "learner";
    }
    resp.leader_id = st.leader;
    leader_name = member_name_of(m, st.leader);
    if (leader_name != NULL) {
        resp.leader_name = (char *)leader_name;
    }
    resp.term = st.term;
    resp.commit_index = st.commit;
    resp.applied_index = st.applied;
    resp.members = ptrs;
    resp.n_members = n;
    resp.serving = member_rpc_serving(m);
    resp.cluster_id = m->cluster_id;
    (void)rpc_call_reply_pb(call, &resp.base);
    free(members);
    free(ptrs);
}

/* ---- ClusterService membership -------------------------------------------
 * Leader only.  A follower answers FAILED_PRECONDITION naming the leader;
 * goulettectl then tries its other endpoints (docs/operations.md). */

/* Answer a membership call with the result @rv and the configuration;
 * @why (may be NULL) replaces goulette_strerror(rv) as the message. */
static void member_reply_why(struct member_rpc *mr,
                             struct rpc_call *call,
                             int rv,
                             const char *why)
{
    Goulettefs__MemberResponse resp = GOULETTEFS__MEMBER_RESPONSE__INIT;
    Goulettefs__Member *members = NULL;
    Goulettefs__Member **ptrs = NULL;
    size_t n = 0;

    resp.success = rv == 0;
    resp.error_code = rv;
    resp.error_message = rv == 0       ? ""
                         : why != NULL ? (char *)why
                                       : (char *)goulette_strerror(rv);
    resp.cluster_id = mr->m->cluster_id;
    if (node_of(mr) != NULL && members_of(mr, &members, &ptrs, &n) == 0) {
        resp.members = ptrs;
        resp.n_members = n;
    }
    (void)rpc_call_reply_pb(call, &resp.base);
    free(members);
    free(ptrs);
}

static void member_reply(struct member_rpc *mr, struct rpc_call *call, int rv)
{
    member_reply_why(mr, call, rv, NULL);
}

/* Answer a call that reached a member that does not lead. */
static void not_leader(struct member_rpc *mr, struct rpc_call *call)
{
    struct raft_uv_node_status st;
    const struct raft_server *s = NULL;
    const char *name;
    char msg[RAFT_ADDRESS_MAX + OPTIONS_NAME_MAX + 96];

    raft_uv_node_status(mr->m->node, &st);
    if (st.leader == 0) {
        (void)rpc_call_fail(call, RPC_STATUS_UNAVAILABLE,
                            goulette_strerror(GOULETTE_ENOLEADER));
        return;
    }
    if (st.conf != NULL) {
        s = raft_configuration_get(st.conf, st.leader);
    }
    name = member_name_of(mr->m, st.leader);
    snprintf(msg, sizeof msg,
             "not the leader: the leader is %s (id %016llx, peer %s)",
             name != NULL ? name : "unnamed", (unsigned long long)st.leader,
             s != NULL ? s->address : "?");
    (void)rpc_call_fail(call, RPC_STATUS_FAILED_PRECONDITION, msg);
}

static void member_changed(void *arg, int rv, raft_index index)
{
    struct op *op = arg;
    (void)index;
    member_reply(op->mr, op->call, rv);
    op_free(op);
}

/* The member a request names: by name (its id derives from it) or by id. */
static raft_id member_named(const char *name, uint64_t id)
{
    return name != NULL && name[0] != '\0' ? member_id_of(name) : id;
}

/* Run conf change @type for @id on the leader and answer when committed. */
static void change(struct member_rpc *mr,
                   struct rpc_call *call,
                   enum raft_conf_change_type type,
                   raft_id id,
                   const char *address)
{
    struct raft_uv_node *node = node_of(mr);
    struct op *op;
    int rv;

    if (node == NULL) {
        (void)rpc_call_fail(call, RPC_STATUS_UNAVAILABLE, "shutting down");
        return;
    }
    if (id == 0) {
        (void)rpc_call_fail(call, RPC_STATUS_INVALID_ARGUMENT,
                            "no member named");
        return;
    }
    op = op_new(mr, call, OP_MEMBER);
    if (op == NULL) {
        (void)rpc_call_fail(call, RPC_STATUS_RESOURCE_EXHAUSTED,
                            "out of memory");
        return;
    }
    rv = raft_uv_node_change(node, type, id, address, member_changed, op);
    if (rv == GOULETTE_ENOTLEADER || rv == GOULETTE_ENOLEADER) {
        not_leader(mr, call);
        op_free(op);
    } else if (rv != 0) {
        member_reply(mr, call, rv);
        op_free(op);
    }
}

static void handle_add_member(void *data,
                              struct rpc_call *call,
                              const struct goulette_buf *body)
{
    struct member_rpc *mr = data;
    Goulettefs__AddMemberRequest *req;
    bool nul;

    req = (Goulettefs__AddMemberRequest *)unpack(
        call, &goulettefs__add_member_request__descriptor, body, &nul);
    if (req == NULL) {
        return;
    }
    if (nul || store_address_check(req->peer_address,
                                   strlen(req->peer_address)) != 0) {
        (void)rpc_call_fail(call, RPC_STATUS_INVALID_ARGUMENT,
                            "peer_address must be host:port");
    } else {
        change(mr, call, RAFT_CONF_ADD_LEARNER,
               member_named(req->name, req->id), req->peer_address);
    }
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

static void handle_promote_member(void *data,
                                  struct rpc_call *call,
                                  const struct goulette_buf *body)
{
    struct member_rpc *mr = data;
    Goulettefs__PromoteMemberRequest *req;
    bool nul;

    req = (Goulettefs__PromoteMemberRequest *)unpack(
        call, &goulettefs__promote_member_request__descriptor, body, &nul);
    if (req == NULL) {
        return;
    }
    change(mr, call, RAFT_CONF_PROMOTE, member_named(req->name, req->id), NULL);
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

static void handle_remove_member(void *data,
                                 struct rpc_call *call,
                                 const struct goulette_buf *body)
{
    struct member_rpc *mr = data;
    Goulettefs__RemoveMemberRequest *req;
    bool nul;

    req = (Goulettefs__RemoveMemberRequest *)unpack(
        call, &goulettefs__remove_member_request__descriptor, body, &nul);
    if (req == NULL) {
        return;
    }
    change(mr, call, RAFT_CONF_REMOVE, member_named(req->name, req->id), NULL);
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

static void handle_transfer(void *data,
                            struct rpc_call *call,
                            const struct goulette_buf *body)
{
    struct member_rpc *mr = data;
    Goulettefs__TransferLeadershipRequest *req;
    struct raft_uv_node *node = node_of(mr);
    bool nul;
    int rv;

    req = (Goulettefs__TransferLeadershipRequest *)unpack(
        call, &goulettefs__transfer_leadership_request__descriptor, body, &nul);
    if (req == NULL) {
        return;
    }
    if (node == NULL) {
        (void)rpc_call_fail(call, RPC_STATUS_UNAVAILABLE, "shutting down");
        goto out;
    }
    rv = raft_uv_node_transfer(node,
                               member_named(req->target_name, req->target_id));
    if (rv == GOULETTE_ENOTLEADER || rv == GOULETTE_ENOLEADER) {
        not_leader(mr, call);
    } else if (rv == GOULETTE_ENOTFOUND) {
        member_reply_why(mr, call, rv,
                         "no such voter: the target is not a member, is "
                         "still a learner, or is the leader itself");
    } else {
        member_reply(mr, call, rv);
    }
out:
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

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
    {"/goulettefs.ClusterService/Status", handle_status},
    {"/goulettefs.ClusterService/AddMember", handle_add_member},
    {"/goulettefs.ClusterService/RemoveMember", handle_remove_member},
    {"/goulettefs.ClusterService/PromoteMember", handle_promote_member},
    {"/goulettefs.ClusterService/TransferLeadership", handle_transfer},
};

static void on_server_closed(struct rpc_server *server)
{
    struct member_rpc *mr =
        (struct member_rpc *)((char *)server -
                              offsetof(struct member_rpc, server));
    mr->server_open = false;
    maybe_free(mr);
}

static void format_hostport(char *buf,
                            size_t size,
                            const struct options_hostport *hp)
{
    snprintf(buf, size, strchr(hp->host, ':') != NULL ? "[%s]:%u" : "%s:%u",
             hp->host, (unsigned)hp->port);
}

static struct member_rpc *alloc_port(struct member *m)
{
    struct member_rpc *mr = calloc(1, sizeof *mr);
    if (mr == NULL) {
        return NULL;
    }
    mr->m = m;
    format_hostport(mr->grpc_address, sizeof mr->grpc_address,
                    &m->opts->grpc_listen);
    return mr;
}

static int start_promoter(struct member_rpc *mr);

int member_rpc_start(struct member *m, struct member_rpc **out)
{
    const struct options_hostport *hp = &m->opts->grpc_listen;
    struct rpc_server_config c;
    struct member_rpc *mr = *out;
    size_t i;
    int rv;

    if (mr == NULL) {
        mr = alloc_port(m);
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
        rv = start_promoter(mr);
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
    maybe_free(mr);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct member_rpc *mr = h->data;
    mr->timer_open = false;
    maybe_free(mr);
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
    maybe_free(mr);
}

/* ---- joining: AddMember at start, PromoteMember once caught up -----------
 * The joiner drives its own promotion (docs/operations.md): it knows when
 * it has applied what it knows to be committed, and the leader needs no
 * policy for learners an operator added on purpose. */

#define JOIN_TIMEOUT_MS 5000
#define JOIN_ATTEMPTS 30
#define PROMOTE_PERIOD_MS 500

struct join_call
{
    bool done;
    enum rpc_status status;
    char message[512];
    Goulettefs__MemberResponse *resp; /* owned when status is OK */
};

static void join_done(void *data,
                      enum rpc_status status,
                      const char *message,
                      const struct goulette_buf *resp)
{
    struct join_call *jc = data;
    jc->done = true;
    jc->status = status;
    snprintf(jc->message, sizeof jc->message, "%s", message);
    if (status == RPC_STATUS_OK) {
        jc->resp =
            goulettefs__member_response__unpack(NULL, resp->len, resp->base);
        if (jc->resp == NULL) {
            jc->status = RPC_STATUS_INTERNAL;
            snprintf(jc->message, sizeof jc->message, "malformed response");
        }
    }
}

static void on_join_client_closed(struct rpc_client *client)
{
    (void)client;
}

/* One AddMember call on a private loop.  @jc is out. */
static int join_once(struct member_rpc *mr, struct join_call *jc)
{
    const struct member *m = mr->m;
    Goulettefs__AddMemberRequest req = GOULETTEFS__ADD_MEMBER_REQUEST__INIT;
    struct rpc_client_config cc;
    struct rpc_client client;
    struct rpc_client_done done = {join_done, jc};
    char peer[OPTIONS_HOST_MAX + 16];
    uv_loop_t loop;
    int rv;

    memset(jc, 0, sizeof *jc);
    format_hostport(peer, sizeof peer, &m->opts->peer_listen);
    req.id = m->id;
    req.name = (char *)m->opts->name;
    req.peer_address = peer;
    req.grpc_address = mr->grpc_address;
    req.learner = true;
    rv = uv_loop_init(&loop);
    if (rv != 0) {
        return rv;
    }
    memset(&cc, 0, sizeof cc);
    cc.loop = &loop;
    rv = rpc_client_init(&client, &cc);
    if (rv == 0) {
        rv = rpc_client_call_pb(&client, mr->join_address,
                                "/goulettefs.ClusterService/AddMember",
                                &req.base, JOIN_TIMEOUT_MS, &done);
        while (rv == 0 && !jc->done) {
            uv_run(&loop, UV_RUN_ONCE);
        }
        rpc_client_close(&client, on_join_client_closed);
        while (uv_run(&loop, UV_RUN_DEFAULT) != 0) {
        }
    }
    uv_loop_close(&loop);
    return rv;
}

/* Keep the members of @resp, but this one, for the transport. */
static int keep_peers(struct member_rpc *mr,
                      const Goulettefs__MemberResponse *resp)
{
    size_t i;
    mr->join_peers = calloc(resp->n_members + 1, sizeof *mr->join_peers);
    if (mr->join_peers == NULL) {
        return -ENOMEM;
    }
    for (i = 0; i < resp->n_members; i++) {
        const Goulettefs__Member *o = resp->members[i];
        struct raft_uv_peer *p = &mr->join_peers[mr->n_join_peers];
        if (o->id == mr->m->id || o->id == 0 ||
            strlen(o->peer_address) >= sizeof p->address) {
            continue;
        }
        p->id = o->id;
        snprintf(p->address, sizeof p->address, "%s", o->peer_address);
        mr->n_join_peers++;
    }
    return 0;
}

int member_rpc_join(struct member *m)
{
    struct member_rpc *mr = alloc_port(m);
    struct join_call jc;
    int attempt;
    int rv = 0;

    if (mr == NULL) {
        return -ENOMEM;
    }
    format_hostport(mr->join_address, sizeof mr->join_address, &m->opts->join);
    for (attempt = 0; attempt < JOIN_ATTEMPTS; attempt++) {
        rv = join_once(mr, &jc);
        if (rv != 0 || jc.status != RPC_STATUS_UNAVAILABLE) {
            break;
        }
        goulette_logf(m->log, GOULETTE_LOG_INFO, "raft",
                      "joining through %s: %s; retrying", mr->join_address,
                      jc.message);
        uv_sleep(1000);
    }
    if (rv == 0 && jc.status == RPC_STATUS_FAILED_PRECONDITION) {
        rv = GOULETTE_ENOTLEADER;
    } else if (rv == 0 && jc.status == RPC_STATUS_UNAVAILABLE) {
        rv = GOULETTE_ENOLEADER;
    } else if (rv == 0 && jc.status != RPC_STATUS_OK) {
        rv = -EPROTO;
    } else if (rv == 0 && !jc.resp->success && jc.resp->error_code != -EEXIST) {
        snprintf(jc.message, sizeof jc.message, "%s", jc.resp->error_message);
        rv = jc.resp->error_code < 0 ? jc.resp->error_code : -EPROTO;
    }
    if (rv == 0) {
        m->cluster_id = jc.resp->cluster_id;
        rv = keep_peers(mr, jc.resp);
    }
    if (jc.resp != NULL) {
        goulettefs__member_response__free_unpacked(jc.resp, NULL);
    }
    if (rv != 0) {
        goulette_logf(m->log, GOULETTE_LOG_ERROR, "raft",
                      "cannot join the cluster through %s: %s (%s)",
                      mr->join_address, goulette_strerror(rv), jc.message);
        free(mr->join_peers);
        free(mr);
        return rv;
    }
    goulette_logf(m->log, GOULETTE_LOG_INFO, "raft",
                  "joined cluster %016llx through %s as a learner; %u other "
                  "member(s)",
                  (unsigned long long)m->cluster_id, mr->join_address,
                  mr->n_join_peers);
    m->rpc = mr;
    return 0;
}

static void promote_done(void *data,
                         enum rpc_status status,
                         const char *message,
                         const struct goulette_buf *resp)
{
    struct member_rpc *mr = data;
    Goulettefs__MemberResponse *r = NULL;

    mr->promoting = false;
    if (status == RPC_STATUS_OK) {
        r = goulettefs__member_response__unpack(NULL, resp->len, resp->base);
    }
    if (r != NULL && r->success) {
        goulette_logf(mr->m->log, GOULETTE_LOG_INFO, "raft",
                      "promoted to voter");
    } else if (!mr->stopping) {
        goulette_logf(mr->m->log, GOULETTE_LOG_INFO, "raft",
                      "promotion not done yet: %s",
                      r != NULL ? r->error_message : message);
    }
    if (r != NULL) {
        goulettefs__member_response__free_unpacked(r, NULL);
    }
    maybe_free(mr);
}

static void on_promote_tick(uv_timer_t *t)
{
    struct member_rpc *mr = t->data;
    struct raft_uv_node *node = node_of(mr);
    Goulettefs__PromoteMemberRequest req =
        GOULETTEFS__PROMOTE_MEMBER_REQUEST__INIT;
    struct rpc_client_done done = {promote_done, mr};
    const struct raft_server *self;
    struct raft_uv_node_status st;

    if (node == NULL || mr->promoting) {
        return;
    }
    raft_uv_node_status(node, &st);
    self = st.conf != NULL ? raft_configuration_get(st.conf, mr->m->id) : NULL;
    if (self != NULL && self->role == RAFT_VOTER) {
        uv_timer_stop(t); /* done: a voter for good */
        return;
    }
    /* Caught up: in the configuration, following a leader, and applied
     * everything known to be committed. */
    if (self == NULL || st.leader == 0 || st.commit == 0 ||
        st.applied < st.commit) {
        return;
    }
    req.id = mr->m->id;
    if (rpc_client_call_pb(&mr->client, mr->join_address,
                           "/goulettefs.ClusterService/PromoteMember",
                           &req.base, JOIN_TIMEOUT_MS, &done) == 0) {
        mr->promoting = true;
    }
}

static int start_promoter(struct member_rpc *mr)
{
    struct rpc_client_config cc;
    int rv;

    if (mr->join_address[0] == '\0') {
        format_hostport(mr->join_address, sizeof mr->join_address,
                        &mr->m->opts->join);
    }
    memset(&cc, 0, sizeof cc);
    cc.loop = mr->m->loop;
    cc.log = mr->m->log;
    rv = rpc_client_init(&mr->client, &cc);
    if (rv != 0) {
        return rv;
    }
    mr->client_open = true;
    rv = uv_timer_init(mr->m->loop, &mr->promote_timer);
    if (rv != 0) {
        return rv;
    }
    mr->promote_timer.data = mr;
    mr->timer_open = true;
    return uv_timer_start(&mr->promote_timer, on_promote_tick,
                          PROMOTE_PERIOD_MS, PROMOTE_PERIOD_MS);
}
