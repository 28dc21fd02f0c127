/* Commands on the wire: struct store_cmd <-> goulette.store.Command
 * (store/command.proto, protobuf-c).  Pure: no I/O.  Checks only the wire
 * format; apply (store/apply.c) judges the contents. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "goulette/store.h"

#include "command.pb-c.h"

int store_cmd_encode(const struct store_cmd *cmd, struct goulette_buf *out)
{
    Goulette__Store__Command c = GOULETTE__STORE__COMMAND__INIT;
    Goulette__Store__RegisterBroker reg =
        GOULETTE__STORE__REGISTER_BROKER__INIT;
    Goulette__Store__UnregisterBroker unreg =
        GOULETTE__STORE__UNREGISTER_BROKER__INIT;
    Goulette__Store__KeepAliveBroker ka =
        GOULETTE__STORE__KEEP_ALIVE_BROKER__INIT;
    Goulette__Store__SetBrokerStatus st =
        GOULETTE__STORE__SET_BROKER_STATUS__INIT;
    Goulette__Store__GenerateTopicReplicas gen =
        GOULETTE__STORE__GENERATE_TOPIC_REPLICAS__INIT;
    Goulette__Store__HandleUnreachableBrokers hu =
        GOULETTE__STORE__HANDLE_UNREACHABLE_BROKERS__INIT;
    Goulette__Store__RemoveTopic rm = GOULETTE__STORE__REMOVE_TOPIC__INIT;
    char empty[1] = "";
    size_t len;

    out->base = NULL;
    out->len = 0;
    c.timestamp_ns = cmd->timestamp_ns;
#define S(x) ((x) != NULL ? (x) : empty)
    switch (cmd->type) {
    case STORE_CMD_REGISTER_BROKER:
        reg.broker_id = S(cmd->broker_id);
        reg.address = S(cmd->address);
        reg.n_topics = cmd->n_names;
        reg.topics = cmd->names;
        c.body_case = GOULETTE__STORE__COMMAND__BODY_REGISTER_BROKER;
        c.register_broker = &reg;
        break;
    case STORE_CMD_UNREGISTER_BROKER:
        unreg.broker_id = S(cmd->broker_id);
        c.body_case = GOULETTE__STORE__COMMAND__BODY_UNREGISTER_BROKER;
        c.unregister_broker = &unreg;
        break;
    case STORE_CMD_KEEPALIVE_BROKER:
        ka.broker_id = S(cmd->broker_id);
        ka.address = S(cmd->address);
        c.body_case = GOULETTE__STORE__COMMAND__BODY_KEEPALIVE_BROKER;
        c.keepalive_broker = &ka;
        break;
    case STORE_CMD_SET_BROKER_STATUS:
        st.broker_id = S(cmd->broker_id);
        st.status = cmd->status;
        c.body_case = GOULETTE__STORE__COMMAND__BODY_SET_BROKER_STATUS;
        c.set_broker_status = &st;
        break;
    case STORE_CMD_GENERATE_TOPIC_REPLICAS:
        gen.topic = S(cmd->topic);
        gen.replica_count = cmd->replica_count;
        gen.exclusive = cmd->exclusive;
        c.body_case = GOULETTE__STORE__COMMAND__BODY_GENERATE_TOPIC_REPLICAS;
        c.generate_topic_replicas = &gen;
        break;
    case STORE_CMD_HANDLE_UNREACHABLE:
        hu.topic = S(cmd->topic);
        hu.replica_count = cmd->replica_count;
        hu.n_unreachable_brokers = cmd->n_names;
        hu.unreachable_brokers = cmd->names;
        hu.hint = cmd->hint;
        hu.hint_interval_ns = cmd->interval_ns;
        c.body_case = GOULETTE__STORE__COMMAND__BODY_HANDLE_UNREACHABLE_BROKERS;
        c.handle_unreachable_brokers = &hu;
        break;
    case STORE_CMD_REMOVE_TOPIC:
        rm.topic = S(cmd->topic);
        c.body_case = GOULETTE__STORE__COMMAND__BODY_REMOVE_TOPIC;
        c.remove_topic = &rm;
        break;
    default:
        return -EINVAL;
    }
#undef S
    for (size_t i = 0; i < cmd->n_names; i++) {
        if (cmd->names[i] == NULL) {
            return -EINVAL;
        }
    }
    len = goulette__store__command__get_packed_size(&c);
    out->base = malloc(len > 0 ? len : 1);
    if (out->base == NULL) {
        return -ENOMEM;
    }
    out->len = goulette__store__command__pack(&c, out->base);
    return 0;
}

static int dup(const char *s, char **out)
{
    *out = strdup(s != NULL ? s : "");
    return *out == NULL ? -ENOMEM : 0;
}

static int dup_list(char **in, size_t n, struct store_cmd *cmd)
{
    if (n == 0) {
        return 0;
    }
    cmd->names = calloc(n, sizeof *cmd->names);
    if (cmd->names == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int rv = dup(in[i], &cmd->names[i]);
        if (rv != 0) {
            return rv;
        }
        cmd->n_names++;
    }
    return 0;
}

static int decode_body(const Goulette__Store__Command *c, struct store_cmd *cmd)
{
    int rv = -EBADMSG;
    switch (c->body_case) {
    case GOULETTE__STORE__COMMAND__BODY_REGISTER_BROKER:
        cmd->type = STORE_CMD_REGISTER_BROKER;
        rv = dup(c->register_broker->broker_id, &cmd->broker_id);
        if (rv == 0) {
            rv = dup(c->register_broker->address, &cmd->address);
        }
        if (rv == 0) {
            rv = dup_list(c->register_broker->topics,
                          c->register_broker->n_topics, cmd);
        }
        break;
    case GOULETTE__STORE__COMMAND__BODY_UNREGISTER_BROKER:
        cmd->type = STORE_CMD_UNREGISTER_BROKER;
        rv = dup(c->unregister_broker->broker_id, &cmd->broker_id);
        break;
    case GOULETTE__STORE__COMMAND__BODY_KEEPALIVE_BROKER:
        cmd->type = STORE_CMD_KEEPALIVE_BROKER;
        rv = dup(c->keepalive_broker->broker_id, &cmd->broker_id);
        if (rv == 0) {
            rv = dup(c->keepalive_broker->address, &cmd->address);
        }
        break;
    case GOULETTE__STORE__COMMAND__BODY_SET_BROKER_STATUS:
        cmd->type = STORE_CMD_SET_BROKER_STATUS;
        cmd->status = c->set_broker_status->status;
        rv = dup(c->set_broker_status->broker_id, &cmd->broker_id);
        break;
    case GOULETTE__STORE__COMMAND__BODY_GENERATE_TOPIC_REPLICAS:
        cmd->type = STORE_CMD_GENERATE_TOPIC_REPLICAS;
        cmd->replica_count = c->generate_topic_replicas->replica_count;
        cmd->exclusive = c->generate_topic_replicas->exclusive;
        rv = dup(c->generate_topic_replicas->topic, &cmd->topic);
        break;
    case GOULETTE__STORE__COMMAND__BODY_HANDLE_UNREACHABLE_BROKERS:
        cmd->type = STORE_CMD_HANDLE_UNREACHABLE;
        cmd->replica_count = c->handle_unreachable_brokers->replica_count;
        cmd->hint = c->handle_unreachable_brokers->hint;
        cmd->interval_ns = c->handle_unreachable_brokers->hint_interval_ns;
        rv = dup(c->handle_unreachable_brokers->topic, &cmd->topic);
        if (rv == 0) {
            rv = dup_list(c->handle_unreachable_brokers->unreachable_brokers,
                          c->handle_unreachable_brokers->n_unreachable_brokers,
                          cmd);
        }
        break;
    case GOULETTE__STORE__COMMAND__BODY_REMOVE_TOPIC:
        cmd->type = STORE_CMD_REMOVE_TOPIC;
        rv = dup(c->remove_topic->topic, &cmd->topic);
        break;
    default:
        break;
    }
    return rv;
}

/* protobuf-c reports a malformed message and a failed allocation alike
 * (NULL); this allocator tells them apart, because a malformed entry is
 * rejected on every node while a failed allocation is local. */
static void *pb_alloc(void *data, size_t size)
{
    void *p = malloc(size);
    if (p == NULL) {
        *(bool *)data = true;
    }
    return p;
}

static void pb_free(void *data, void *p)
{
    (void)data;
    free(p);
}

int store_cmd_decode(const void *data, size_t len, struct store_cmd *cmd)
{
    Goulette__Store__Command *c;
    bool oom = false;
    ProtobufCAllocator alloc = {pb_alloc, pb_free, &oom};
    int rv;

    memset(cmd, 0, sizeof *cmd);
    c = goulette__store__command__unpack(&alloc, len, data);
    if (c == NULL) {
        return oom ? -ENOMEM : -EBADMSG;
    }
    cmd->timestamp_ns = c->timestamp_ns;
    rv = decode_body(c, cmd);
    goulette__store__command__free_unpacked(c, &alloc);
    if (rv != 0) {
        store_cmd_fini(cmd);
    }
    return rv;
}

void store_cmd_fini(struct store_cmd *cmd)
{
    free(cmd->broker_id);
    free(cmd->address);
    free(cmd->topic);
    for (size_t i = 0; i < cmd->n_names; i++) {
        free(cmd->names[i]);
    }
    free(cmd->names);
    memset(cmd, 0, sizeof *cmd);
}
