/* Private to tools/member_rpc.c and tools/member_rpc_cluster.c: the port,
 * the ops waiting on Raft, and the helpers both files use.  Loop thread
 * only. */
#ifndef GOULETTE_TOOLS_MEMBER_RPC_INT_H
#define GOULETTE_TOOLS_MEMBER_RPC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <goulette/rpc.h>

#include "member.h"

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

/* A new op for @call (NULL: out of memory); it holds a reference on @mr. */
struct op *member_rpc__op_new(struct member_rpc *mr,
                              struct rpc_call *call,
                              enum op_kind kind);

/* Free @op (its call must be finished) and drop its reference. */
void member_rpc__op_free(struct op *op);

/* Free @mr once it is stopping and nothing refers to it any more. */
void member_rpc__maybe_free(struct member_rpc *mr);

/* The node, or NULL once the member (or the port) stops taking work. */
struct raft_uv_node *member_rpc__node(const struct member_rpc *mr);

/* Decode @req as @d, or answer the call as grpc-go does (INTERNAL) and
 * return NULL.  *@nul tells whether a string field holds a NUL byte.
 * Returned, free with protobuf_c_message_free_unpacked. */
ProtobufCMessage *member_rpc__unpack(struct rpc_call *call,
                                     const ProtobufCMessageDescriptor *d,
                                     const struct goulette_buf *req,
                                     bool *nul);

/* "host:port", or "[v6]:port", of @hp into @buf. */
void member_rpc__hostport(char *buf,
                          size_t size,
                          const struct options_hostport *hp);

/* A port for @m with nothing started (NULL: out of memory). */
struct member_rpc *member_rpc__alloc(struct member *m);

/* Joining member: start asking PromoteMember once caught up
 * (member_rpc_cluster.c).  Errors: -ENOMEM, uv errors. */
int member_rpc__start_promoter(struct member_rpc *mr);

/* ClusterService handlers (member_rpc_cluster.c); @data is the port. */
void member_rpc__handle_status(void *data,
                               struct rpc_call *call,
                               const struct goulette_buf *req);
void member_rpc__handle_add_member(void *data,
                                   struct rpc_call *call,
                                   const struct goulette_buf *req);
void member_rpc__handle_promote_member(void *data,
                                       struct rpc_call *call,
                                       const struct goulette_buf *req);
void member_rpc__handle_remove_member(void *data,
                                      struct rpc_call *call,
                                      const struct goulette_buf *req);
void member_rpc__handle_transfer(void *data,
                                 struct rpc_call *call,
                                 const struct goulette_buf *req);

#endif /* GOULETTE_TOOLS_MEMBER_RPC_INT_H */
