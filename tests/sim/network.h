/* The simulated network: owns messages in flight (deep copies of what a
 * core sent) and the faults applied to them: drop, duplicate, delay,
 * reorder, link cuts that make symmetric and one-way partitions, and
 * saturated links (much slower, lossy, one direction).  It
 * does not decide when faults start or end (cluster.c does). */
#ifndef SIM_NETWORK_H
#define SIM_NETWORK_H

#include <stdbool.h>
#include <stdint.h>

#include <goulette/raft.h>

#include "clock.h"
#include "prng.h"

#define SIM_MAX_NODES 12 /* node ids are 1..SIM_MAX_NODES */

/* A message in flight: m and everything it points to are owned. */
struct sim_msg
{
    struct raft_message m;
};

/* Deep copy of @src (entries, their data, snapshot chunk data and conf).
 * Returned; free with sim_msg_free().  Errors: -ENOMEM. */
int sim_msg_copy(const struct raft_message *src, struct sim_msg **out);
void sim_msg_free(void *msg);

struct sim_net_config
{
    unsigned drop_pm;   /* per mille of messages dropped */
    unsigned dup_pm;    /* per mille of messages delivered twice */
    uint64_t delay_min; /* time units */
    uint64_t delay_max;
    unsigned slow_pm; /* per mille of messages delayed up to slow_max */
    uint64_t slow_max;
    bool reorder; /* false: each link delivers in FIFO order */
};

struct sim_net
{
    struct sim_net_config config;
    bool cut[SIM_MAX_NODES + 1][SIM_MAX_NODES + 1];           /* [from][to] */
    uint64_t fifo[SIM_MAX_NODES + 1][SIM_MAX_NODES + 1];      /* last delivery
                                                                  time per link */
    uint64_t saturated[SIM_MAX_NODES + 1][SIM_MAX_NODES + 1]; /* extra delay
                                                  (time units), 0: none */
    uint64_t sent;                                            /* statistics */
    uint64_t dropped;
    uint64_t duplicated;
};

void sim_net_init(struct sim_net *n, const struct sim_net_config *config);

/* Put @msg in flight (taken): schedules its delivery (or two, or none)
 * on @clock.  Errors: -ENOMEM (msg freed). */
int sim_net_send(struct sim_net *n,
                 struct sim_clock *clock,
                 struct sim_prng *prng,
                 struct sim_msg *msg);

/* Whether a message from @from may be delivered to @to now. */
bool sim_net_connected(const struct sim_net *n, raft_id from, raft_id to);

/* Cut or restore one direction of a link. */
void sim_net_set_cut(struct sim_net *n, raft_id from, raft_id to, bool cut);

/* Cut every link between the two sides of @side (side[id] true / false),
 * both ways. */
void sim_net_partition(struct sim_net *n, const bool *side);

/* Saturate the link @from -> @to: each message takes up to @extra more
 * time units and a fifth of them are lost, until the next heal. */
void sim_net_saturate(struct sim_net *n,
                      raft_id from,
                      raft_id to,
                      uint64_t extra);

/* Restore every link. */
void sim_net_heal(struct sim_net *n);

/* Whether any link is cut. */
bool sim_net_is_cut(const struct sim_net *n);

#endif /* SIM_NETWORK_H */
