/* goulettectl subcommands: each lives in tools/ctl_<name>.c and is
 * dispatched by tools/goulettectl.c.  Each returns the process exit status:
 * 0 on success, 1 on failure, 2 on a usage error (after printing a one-line
 * error and its usage to stderr). */
#ifndef GOULETTE_TOOLS_CTL_H
#define GOULETTE_TOOLS_CTL_H

/* `goulettectl ring --brokers ID,ID,... [--vnodes N] TOPIC...`: the offline
 * placement what-if tool (tools/ctl_ring.c).  @argv[0] is "ring". */
int ctl_ring_main(int argc, char **argv);

/* ---- commands over a member's gRPC port (issue 6, 7) -------------------- */

#include <stdbool.h>

#include <goulette/buf.h>
#include <goulette/rpc.h>

/* Default for --endpoints: the default --grpc-listen of goulettefs. */
#define CTL_DEFAULT_ENDPOINTS "127.0.0.1:50052"

/* The answer of one call (tools/ctl_client.c). */
struct ctl_reply
{
    enum rpc_status status;
    char message[512];        /* grpc-message, or why no endpoint answered */
    struct goulette_buf resp; /* owned response body when status is OK;
                                 ctl_reply_fini frees it */
    char endpoint[300];       /* the endpoint that answered last */
};

/* Call @method with @req (borrowed) on each endpoint of the comma-separated
 * @endpoints in turn, until one answers with a status other than
 * UNAVAILABLE or DEADLINE_EXCEEDED (and, when @leader_only, other than
 * FAILED_PRECONDITION: a follower naming the leader).  @out is filled with
 * the last answer.  Runs and closes its own uv loop.
 * Errors: -ENOMEM, and uv's loop errors. */
int ctl_call(const char *endpoints,
             const char *method,
             const ProtobufCMessage *req,
             bool leader_only,
             struct ctl_reply *out);

void ctl_reply_fini(struct ctl_reply *r);

/* `goulettectl [--endpoints E] status|members|member|transfer|brokers ...`
 * (tools/ctl_cluster.c).  @argv[0] is the command name. */
int ctl_status_main(const char *endpoints, int argc, char **argv);
int ctl_members_main(const char *endpoints, int argc, char **argv);
int ctl_member_main(const char *endpoints, int argc, char **argv);
int ctl_transfer_main(const char *endpoints, int argc, char **argv);
int ctl_brokers_main(const char *endpoints, int argc, char **argv);

#endif /* GOULETTE_TOOLS_CTL_H */
