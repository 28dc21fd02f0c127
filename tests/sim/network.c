/* Messages in flight and the faults on them.  A cut is checked when a
 * message is delivered, so a partition also swallows messages that were
 * already on the wire.  Reordering comes from independent random delays;
 * with reorder off each link keeps FIFO order. */
#include "network.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int dup_buf(struct goulette_buf *dst, const struct goulette_buf *src)
{
    dst->base = NULL;
    dst->len = src->len;
    if (src->base == NULL) {
        return 0; /* keeps "len without base": a chunk still to fill */
    }
    dst->base = malloc(src->len > 0 ? src->len : 1);
    if (dst->base == NULL) {
        return -ENOMEM;
    }
    memcpy(dst->base, src->base, src->len);
    return 0;
}

void sim_msg_free(void *p)
{
    struct sim_msg *msg = p;
    unsigned i;
    if (msg == NULL) {
        return;
    }
    for (i = 0; i < msg->m.n_entries; i++) {
        free(msg->m.entries[i].data.base);
    }
    free(msg->m.entries);
    free(msg->m.snapshot.data.base);
    free(msg->m.snapshot.conf.base);
    free(msg);
}

int sim_msg_copy(const struct raft_message *src, struct sim_msg **out)
{
    struct sim_msg *msg = calloc(1, sizeof *msg);
    unsigned i;
    *out = NULL;
    if (msg == NULL) {
        return -ENOMEM;
    }
    msg->m = *src;
    msg->m.entries = NULL;
    msg->m.n_entries = 0;
    msg->m.snapshot.data.base = NULL;
    msg->m.snapshot.conf.base = NULL;
    if (src->n_entries > 0) {
        msg->m.entries = calloc(src->n_entries, sizeof *msg->m.entries);
        if (msg->m.entries == NULL) {
            goto err;
        }
        for (i = 0; i < src->n_entries; i++) {
            msg->m.entries[i] = src->entries[i];
            msg->m.n_entries = i + 1;
            if (dup_buf(&msg->m.entries[i].data, &src->entries[i].data) != 0) {
                msg->m.entries[i].data.base = NULL;
                goto err;
            }
        }
    }
    if (dup_buf(&msg->m.snapshot.data, &src->snapshot.data) != 0 ||
        dup_buf(&msg->m.snapshot.conf, &src->snapshot.conf) != 0) {
        goto err;
    }
    *out = msg;
    return 0;
err:
    sim_msg_free(msg);
    return -ENOMEM;
}

void sim_net_init(struct sim_net *n, const struct sim_net_config *config)
{
    memset(n, 0, sizeof *n);
    n->config = *config;
}

static uint64_t draw_delay(struct sim_net *n,
                           struct sim_prng *prng,
                           raft_id from,
                           raft_id to)
{
    if (from <= SIM_MAX_NODES && to <= SIM_MAX_NODES &&
        n->saturated[from][to] > 0) {
        return sim_prng_between(prng, n->config.delay_min,
                                n->config.delay_max + n->saturated[from][to]);
    }
    if (n->config.slow_pm > 0 && sim_prng_chance(prng, n->config.slow_pm)) {
        return sim_prng_between(prng, n->config.delay_min, n->config.slow_max);
    }
    return sim_prng_between(prng, n->config.delay_min, n->config.delay_max);
}

static int schedule(struct sim_net *n,
                    struct sim_clock *clock,
                    struct sim_prng *prng,
                    struct sim_msg *msg)
{
    struct sim_event e = {0};
    raft_id from = msg->m.from;
    raft_id to = msg->m.to;
    uint64_t delay = draw_delay(n, prng, from, to);
    if (!n->config.reorder && from <= SIM_MAX_NODES && to <= SIM_MAX_NODES) {
        uint64_t at = clock->now + delay;
        if (at < n->fifo[from][to]) {
            at = n->fifo[from][to];
        }
        n->fifo[from][to] = at;
        delay = at - clock->now;
    }
    e.kind = SIM_EV_DELIVER;
    e.node = to;
    e.payload = msg;
    return sim_clock_schedule(clock, delay, &e);
}

int sim_net_send(struct sim_net *n,
                 struct sim_clock *clock,
                 struct sim_prng *prng,
                 struct sim_msg *msg)
{
    struct sim_msg *copy = NULL;
    int rv;
    n->sent++;
    if ((n->config.drop_pm > 0 && sim_prng_chance(prng, n->config.drop_pm)) ||
        (msg->m.from <= SIM_MAX_NODES && msg->m.to <= SIM_MAX_NODES &&
         n->saturated[msg->m.from][msg->m.to] > 0 &&
         sim_prng_chance(prng, 200))) {
        n->dropped++;
        sim_msg_free(msg);
        return 0;
    }
    if (n->config.dup_pm > 0 && sim_prng_chance(prng, n->config.dup_pm)) {
        rv = sim_msg_copy(&msg->m, &copy);
        if (rv != 0) {
            sim_msg_free(msg);
            return rv;
        }
        n->duplicated++;
        rv = schedule(n, clock, prng, copy);
        if (rv != 0) {
            sim_msg_free(copy);
            sim_msg_free(msg);
            return rv;
        }
    }
    rv = schedule(n, clock, prng, msg);
    if (rv != 0) {
        sim_msg_free(msg);
    }
    return rv;
}

bool sim_net_connected(const struct sim_net *n, raft_id from, raft_id to)
{
    if (from == 0 || to == 0 || from > SIM_MAX_NODES || to > SIM_MAX_NODES) {
        return false;
    }
    return !n->cut[from][to];
}

void sim_net_set_cut(struct sim_net *n, raft_id from, raft_id to, bool cut)
{
    if (from == 0 || to == 0 || from > SIM_MAX_NODES || to > SIM_MAX_NODES) {
        return;
    }
    n->cut[from][to] = cut;
}

void sim_net_partition(struct sim_net *n, const bool *side)
{
    raft_id a;
    raft_id b;
    for (a = 1; a <= SIM_MAX_NODES; a++) {
        for (b = 1; b <= SIM_MAX_NODES; b++) {
            if (side[a] != side[b]) {
                n->cut[a][b] = true;
            }
        }
    }
}

void sim_net_saturate(struct sim_net *n,
                      raft_id from,
                      raft_id to,
                      uint64_t extra)
{
    if (from == 0 || to == 0 || from > SIM_MAX_NODES || to > SIM_MAX_NODES) {
        return;
    }
    n->saturated[from][to] = extra;
}

void sim_net_heal(struct sim_net *n)
{
    memset(n->cut, 0, sizeof n->cut);
    memset(n->saturated, 0, sizeof n->saturated);
}

bool sim_net_is_cut(const struct sim_net *n)
{
    raft_id a;
    raft_id b;
    for (a = 1; a <= SIM_MAX_NODES; a++) {
        for (b = 1; b <= SIM_MAX_NODES; b++) {
            if (n->cut[a][b]) {
                return true;
            }
        }
    }
    return false;
}
