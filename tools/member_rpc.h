/* The member's gRPC port: goulette.SentinelService (Goulette's wire API),
 * goulettefs.ClusterService (GetBrokers, Status, membership) and
 * grpc.health.v1.Health, served on --grpc-listen over the rpc/ engine.
 * Owns the translation between gRPC requests and store commands, ReadIndex
 * reads and Raft membership calls; owns no record format and no protocol
 * engine.  docs/grpc.md describes the behaviour, docs/operations.md the
 * membership commands.
 *
 * Loop thread only. */
#ifndef GOULETTE_TOOLS_MEMBER_RPC_H
#define GOULETTE_TOOLS_MEMBER_RPC_H

#include <stdbool.h>

struct member;
struct member_rpc;

/* Serve gRPC for @m (borrowed: must outlive the port, i.e. until every call
 * in flight has finished, which member_stop guarantees by closing the node
 * after this port) on m->opts->grpc_listen.  *@out is returned; release
 * with member_rpc_stop().
 * Errors: -ENOMEM, -EINVAL (bad listen address), and the listener's
 * negative errnos (-EADDRINUSE, ...). */
int member_rpc_start(struct member *m, struct member_rpc **out);

/* Stop listening and close every connection; calls in flight are answered
 * when their proposal or read completes (the node fails them with
 * GOULETTE_ESHUTDOWN when it closes).  @mr frees itself once the server is
 * closed and no call is left.  The member's loop must keep running until
 * then.  NULL is a no-op. */
void member_rpc_stop(struct member_rpc *mr);

/* Join a running cluster (--join: the gRPC address of its leader, or of
 * any member that leads by then).  Called by member_start after the node
 * started empty and before the transport starts: asks AddMember (as a
 * learner) with this member's name, peer and gRPC addresses, on a private
 * loop, retrying while the cluster has no leader (about 30 s), and accepts
 * "already a member" (a restart).  Sets m->cluster_id from the answer and
 * allocates m->rpc, which keeps the cluster's members until
 * member_rpc_start() hands them to the transport (so that the leader's
 * connections are accepted before the log tells who the members are) and
 * then asks PromoteMember once this member has caught up.
 * Errors: GOULETTE_ENOTLEADER (the address is a follower: the log names the
 * leader), GOULETTE_ENOLEADER, -ENOMEM, -ETIMEDOUT, and the leader's
 * refusal (GOULETTE_ECONFCHANGE, ...). */
int member_rpc_join(struct member *m);

/* True when this member knows a leader and has applied everything it knows
 * to be committed: the answer of grpc.health.v1.Health/Check. */
bool member_rpc_serving(const struct member *m);

#endif /* GOULETTE_TOOLS_MEMBER_RPC_H */
