/* One run of the simulator.
 *
 * Phases:
 *   1. faulty: o->steps steps; each step pops one event (SIM_EV_*) and
 *      dispatches it; checks run as nodes act (checker.c).
 *   2. heal:   faults stop, the network heals, crashed nodes restart; run
 *      until a leader exists whose configuration's members have all applied
 *      its whole, committed log (liveness) or the heal budget runs out.
 *
 * Four PRNG streams derived from the seed (network, disk, workload, chaos)
 * keep unrelated choices independent: e.g. one more message drawn does not
 * shift every later fault. */
#include "cluster.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>
#include <goulette/raft.h>

#include "checker.h"
#include "clock.h"
#include "network.h"
#include "node.h"
#include "prng.h"
#include "trace.h"
#include "workload.h"

#define TICK_UNITS 10 /* virtual time units per raft tick */
#define HEAL_STALL                                                      \
    10000                  /* heal phase: give up after this long (time \
                              units) without any log or state machine   \
                              changing */
#define HEAL_TIME 400000   /* heal phase: hard budget, time units */
#define HEAL_STEPS 1000000 /* heal phase: hard budget, steps */
#define MAX_QUEUED                                                         \
    1000000                 /* events queued at once: more is a storm that \
                               would exhaust memory, reported as a         \
                               liveness failure */
#define HEAL_CHECK_EVERY 64 /* steps between liveness checks */

struct sim_cluster
{
    struct sim_options o;
    uint64_t seed;
    struct sim_prng net_prng;
    struct sim_prng disk_prng;
    struct sim_prng work_prng;
    struct sim_prng chaos_prng;
    struct sim_clock clock;
    struct sim_net net;
    struct sim_checker checker;
    struct sim_trace trace;
    struct sim_workload workload;
    struct sim_env env;
    struct sim_node nodes[SIM_MAX_NODES + 1]; /* [id], id 0 unused */
    raft_id next_id;                          /* next id to add */
    uint64_t step;
    bool healing;           /* phase 2 */
    uint64_t client_events; /* client requests issued */
    uint64_t truth_seen;    /* checker.truth_gen of the last leader check */
    /* scenario parameters, time units */
    uint64_t client_gap;
    unsigned read_pm; /* share of client requests that are reads */
    uint64_t admin_min, admin_max;
    uint64_t chaos_min, chaos_max;
    uint64_t heal_min, heal_max;
    uint64_t down_min, down_max;
    uint64_t snap_min, snap_max;
    unsigned max_down; /* nodes down at once */
    unsigned w_crash, w_crash_leader, w_partition, w_isolate, w_oneway;
    unsigned w_campaign, w_storm, w_saturate; /* weights of the chaos
                                                 actions */
    raft_id storm_a; /* a storm's first candidate, 0: no storm under way */
    raft_id storm_b; /* its second candidate */
};

static const struct
{
    const char *name;
    unsigned bit;
} fault_names[] = {
    {"drop", SIM_F_DROP},           {"dup", SIM_F_DUP},
    {"delay", SIM_F_DELAY},         {"reorder", SIM_F_REORDER},
    {"partition", SIM_F_PARTITION}, {"oneway", SIM_F_ONEWAY},
    {"crash", SIM_F_CRASH},         {"snapshot", SIM_F_SNAPSHOT},
    {"conf", SIM_F_CONF},           {"transfer", SIM_F_TRANSFER},
    {"campaign", SIM_F_CAMPAIGN},   {"saturate", SIM_F_SATURATE},
};

int sim_cluster_parse_faults(const char *list, unsigned *faults)
{
    const char *p = list;
    *faults = 0;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        size_t i;
        bool found = false;
        if (len == 3 && strncmp(p, "all", 3) == 0) {
            *faults |= SIM_F_ALL;
            found = true;
        } else if (len == 4 && strncmp(p, "none", 4) == 0) {
            found = true;
        }
        for (i = 0; !found && i < sizeof fault_names / sizeof fault_names[0];
             i++) {
            if (strlen(fault_names[i].name) == len &&
                strncmp(p, fault_names[i].name, len) == 0) {
                *faults |= fault_names[i].bit;
                found = true;
            }
        }
        if (!found) {
            return -1;
        }
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    return 0;
}

static bool on(const struct sim_cluster *c, unsigned fault)
{
    return (c->o.faults & fault) != 0;
}

static void schedule(struct sim_cluster *c,
                     enum sim_event_kind kind,
                     raft_id node,
                     uint64_t delay)
{
    struct sim_event e = {0};
    e.kind = kind;
    e.node = node;
    if (node != 0) {
        e.incarnation = c->nodes[node].incarnation;
    }
    if (sim_clock_schedule(&c->clock, delay, &e) != 0) {
        sim_checker_fail(&c->checker, SIM_P_RUNTIME, "out of memory");
    }
}

/* ---- parameters ---------------------------------------------------- */

/* Network faults drawn from the seed, within the enabled classes. */
static void setup_net(struct sim_cluster *c, struct sim_net_config *net)
{
    struct sim_prng *p = &c->chaos_prng;
    net->delay_min = 1;
    net->delay_max = on(c, SIM_F_DELAY) ? sim_prng_between(p, 2, 30) : 1;
    net->slow_pm = on(c, SIM_F_DELAY) ? (unsigned)sim_prng_below(p, 30) : 0;
    net->slow_max = 300;
    net->drop_pm = on(c, SIM_F_DROP) ? (unsigned)sim_prng_below(p, 60) : 0;
    net->dup_pm = on(c, SIM_F_DUP) ? (unsigned)sim_prng_below(p, 40) : 0;
    net->reorder = on(c, SIM_F_REORDER) && sim_prng_chance(p, 700);
}

/* Core configuration: small timeouts, and flow-control and chunk limits
 * from one entry per message up to the defaults. */
static void setup_raft(struct sim_cluster *c)
{
    struct sim_prng *p = &c->chaos_prng;
    static const unsigned inflight[] = {1, 2, 4, 16, 256};
    static const uint64_t append_bytes[] = {1, 64, 512, 1 << 20};
    static const uint64_t chunk_bytes[] = {16, 64, 100, 1 << 20};

    raft_config_defaults(&c->env.raft);
    c->env.raft.election_ticks = 10;
    c->env.raft.heartbeat_ticks = (unsigned)sim_prng_between(p, 1, 3);
    c->env.raft.max_inflight = inflight[sim_prng_below(p, 5)];
    c->env.raft.max_inflight_bytes = sim_prng_chance(p, 500) ? 256 : 1 << 24;
    c->env.raft.max_append_bytes = append_bytes[sim_prng_below(p, 4)];
    c->env.raft.snapshot_chunk_bytes = chunk_bytes[sim_prng_below(p, 4)];
    c->env.raft.planted_bugs = c->o.bugs;
    c->env.send_before_persist = c->o.send_before_persist;
    if (sim_prng_chance(p, 200)) {
        /* A tight budget: the leader refuses proposals (-ENOBUFS). */
        c->env.raft.max_uncommitted_bytes = 256;
    }
}

/* Disk, clients, administrator and fault rates of the default scenario. */
static void setup_activity(struct sim_cluster *c)
{
    struct sim_prng *p = &c->chaos_prng;
    c->env.disk_delay_max = sim_prng_between(p, 0, 6);
    c->env.crash_in_write_pm = on(c, SIM_F_CRASH) ? 1 : 0;
    c->env.defer_persisted_pm = sim_prng_chance(p, 500) ? 300 : 0;
    c->env.trailing_max = (unsigned)sim_prng_below(p, 20);
    c->env.restart_min = 20;
    c->env.restart_max = 400;

    c->client_gap = sim_prng_between(p, 2, 20);
    c->read_pm = 400;
    c->admin_min = 100;
    c->admin_max = 700;
    c->chaos_min = 100;
    c->chaos_max = 800;
    c->heal_min = 50;
    c->heal_max = 900;
    c->down_min = 20;
    c->down_max = 500;
    c->snap_min = 50;
    c->snap_max = 400;
    c->max_down = (c->o.nodes - 1) / 2;
    c->w_crash = on(c, SIM_F_CRASH) ? 4 : 0;
    c->w_crash_leader = on(c, SIM_F_CRASH) ? 1 : 0;
    c->w_partition = on(c, SIM_F_PARTITION) ? 2 : 0;
    c->w_isolate = on(c, SIM_F_PARTITION) ? 2 : 0;
    c->w_oneway = on(c, SIM_F_ONEWAY) ? 2 : 0;
    c->w_campaign = on(c, SIM_F_CAMPAIGN) ? 1 : 0;
    c->w_saturate = on(c, SIM_F_SATURATE) ? 2 : 0;
}

/* The biases of --scenario (the checkers never change). */
static void setup_scenario(struct sim_cluster *c, struct sim_net_config *net)
{
    struct sim_prng *p = &c->chaos_prng;
    switch (c->o.scenario) {
    case SIM_SCENARIO_DEFAULT:
        break;
    case SIM_SCENARIO_ELECTIONS:
        /* Concurrent candidates, voters that crash right after voting and
         * vote requests that arrive late or twice. */
        net->slow_pm = on(c, SIM_F_DELAY) ? 150 : 0;
        net->slow_max = 250;
        net->dup_pm = on(c, SIM_F_DUP) ? 150 : 0;
        c->chaos_min = 10;
        c->chaos_max = 120;
        c->down_min = 1;
        c->down_max = 60;
        c->max_down = c->o.nodes;
        c->w_campaign = on(c, SIM_F_CAMPAIGN) ? 6 : 0;
        c->w_crash = on(c, SIM_F_CRASH) ? 6 : 0;
        c->env.crash_in_write_pm = on(c, SIM_F_CRASH) ? 20 : 0;
        c->env.restart_min = 1;
        c->env.restart_max = 60;
        c->w_storm = on(c, SIM_F_CAMPAIGN) && on(c, SIM_F_CRASH) ? 12 : 0;
        /* Pre-vote is a liveness aid: without it, storms of real
         * candidacies (and split votes) happen at every forced campaign. */
        c->env.raft.pre_vote = sim_prng_chance(p, 300);
        break;
    case SIM_SCENARIO_FIGURE8:
        /* Leaders replicate one entry per message to some followers, then
         * crash or are cut off: old-term entries sit on a majority
         * without the new term's no-op (paper Figure 8). */
        c->env.raft.max_append_bytes = 1;
        c->env.raft.max_inflight = 1;
        net->delay_max = on(c, SIM_F_DELAY) ? 40 : 1;
        c->chaos_min = 20;
        c->chaos_max = 200;
        c->down_min = 20;
        c->down_max = 300;
        c->w_crash = on(c, SIM_F_CRASH) ? 3 : 0;
        c->w_crash_leader = on(c, SIM_F_CRASH) ? 6 : 0;
        c->w_isolate = on(c, SIM_F_PARTITION) ? 4 : 0;
        c->w_campaign = on(c, SIM_F_CAMPAIGN) ? 4 : 0;
        c->client_gap = 12;
        c->read_pm = 100;
        break;
    case SIM_SCENARIO_STALE_READ:
        /* A leader cut off from the rest keeps believing it leads for up
         * to an election timeout; reads sent to it must still see every
         * write the new majority acknowledged meanwhile. */
        c->chaos_min = 50;
        c->chaos_max = 300;
        c->heal_min = 100;
        c->heal_max = 400;
        c->w_isolate = on(c, SIM_F_PARTITION) ? 8 : 0;
        c->w_oneway = on(c, SIM_F_ONEWAY) ? 2 : 0;
        c->w_crash = 0;
        c->w_crash_leader = 0;
        c->w_campaign = on(c, SIM_F_CAMPAIGN) ? 4 : 0;
        c->admin_min = 100;
        c->admin_max = 400;
        c->client_gap = 3;
        c->read_pm = 600;
        break;
    }
}

static void setup_parameters(struct sim_cluster *c)
{
    struct sim_net_config net = {0};
    setup_net(c, &net);
    setup_raft(c);
    setup_activity(c);
    setup_scenario(c, &net);
    sim_net_init(&c->net, &net);
    sim_trace_printf(
        &c->trace,
        "params: delay 1-%llu slow %u/1000 drop %u/1000 dup %u/1000 "
        "reorder %d, heartbeat %u inflight %u/%llu B append "
        "%llu B chunk %llu B, disk <= %llu",
        (unsigned long long)net.delay_max, net.slow_pm, net.drop_pm, net.dup_pm,
        net.reorder, c->env.raft.heartbeat_ticks, c->env.raft.max_inflight,
        (unsigned long long)c->env.raft.max_inflight_bytes,
        (unsigned long long)c->env.raft.max_append_bytes,
        (unsigned long long)c->env.raft.snapshot_chunk_bytes,
        (unsigned long long)c->env.disk_delay_max);
}

/* ---- helpers ------------------------------------------------------- */

static struct sim_node *leader_of(struct sim_cluster *c)
{
    struct sim_node *best = NULL;
    raft_id id;
    for (id = 1; id < c->next_id; id++) {
        struct sim_node *n = &c->nodes[id];
        if (n->up && n->state == RAFT_LEADER &&
            (best == NULL || n->term > best->term)) {
            best = n;
        }
    }
    return best;
}

static struct sim_node *random_up(struct sim_cluster *c, struct sim_prng *p)
{
    raft_id id = 1 + sim_prng_below(p, c->next_id - 1);
    struct sim_node *n = &c->nodes[id];
    return n->up ? n : NULL;
}

static unsigned count_down(const struct sim_cluster *c)
{
    unsigned k = 0;
    raft_id id;
    for (id = 1; id < c->next_id; id++) {
        if (c->nodes[id].exists && !c->nodes[id].up) {
            k++;
        }
    }
    return k;
}

/* ---- activities ---------------------------------------------------- */

/* Clients mostly talk to members of the current configuration (as they
 * would, from the membership they know); now and then to any node, a
 * removed one or one that never joined included. */
static struct sim_node *client_target(struct sim_cluster *c)
{
    struct sim_node *l = leader_of(c);
    const struct raft_configuration *conf;
    raft_id id;
    if (l == NULL || sim_prng_chance(&c->work_prng, 100)) {
        return random_up(c, &c->work_prng);
    }
    conf = raft_configuration(&l->raft);
    if (conf == NULL || conf->n == 0) {
        return l;
    }
    id = conf->servers[sim_prng_below(&c->work_prng, conf->n)].id;
    if (id == 0 || id > SIM_MAX_NODES || !c->nodes[id].up) {
        return NULL;
    }
    return &c->nodes[id];
}

static void client(struct sim_cluster *c)
{
    struct sim_node *n = client_target(c);
    if (n != NULL) {
        if (sim_prng_chance(&c->work_prng, c->read_pm)) {
            sim_workload_read(&c->workload, n, &c->env);
        } else {
            sim_workload_propose(&c->workload, n, &c->env);
        }
    }
    if (++c->client_events % 64 == 0) {
        /* Requests whose answer was lost (a forwarded proposal or read,
         * or its response, dropped) are given up after a while. */
        sim_workload_expire(&c->workload, c->clock.now, 3000);
    }
    schedule(c, SIM_EV_CLIENT, 0,
             sim_prng_between(&c->work_prng, 1, c->client_gap));
}

static void conf_change(struct sim_cluster *c, struct sim_node *l)
{
    const struct raft_configuration *conf = raft_configuration(&l->raft);
    struct raft_event e;
    raft_id learners[SIM_MAX_NODES];
    raft_id members[SIM_MAX_NODES];
    unsigned n_learners = 0;
    unsigned n_voters = 0;
    unsigned n_members = 0;
    char address[32];
    unsigned i;
    uint64_t pick;

    for (i = 0; conf != NULL && i < conf->n; i++) {
        members[n_members++] = conf->servers[i].id;
        if (conf->servers[i].role == RAFT_LEARNER) {
            learners[n_learners++] = conf->servers[i].id;
        } else {
            n_voters++;
        }
    }
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_CONF_CHANGE;
    e.conf_change.context = SIM_CONF_CONTEXT | c->workload.next_context++;
    pick = sim_prng_below(&c->work_prng, 3);
    if (sim_prng_chance(&c->work_prng, 100) && n_members > 0) {
        /* A change the core must refuse: promote a voter, add an existing
         * member, remove a stranger. */
        static const enum raft_conf_change_type bogus[] = {
            RAFT_CONF_PROMOTE, RAFT_CONF_ADD_LEARNER, RAFT_CONF_REMOVE};
        pick = sim_prng_below(&c->work_prng, 3);
        e.conf_change.type = bogus[pick];
        e.conf_change.id = pick == 2 ? 1000 : members[0];
        e.conf_change.address = "127.0.0.1:1";
        if (pick == 0 && n_learners > 0 && members[0] == learners[0]) {
            return; /* members[0] is a learner: promoting it is legal */
        }
        sim_trace_printf(&c->trace, "admin: bogus conf change %d n%llu",
                         (int)e.conf_change.type,
                         (unsigned long long)e.conf_change.id);
        sim_node_step(l, &c->env, &e);
        return;
    }
    if (pick == 0 && c->next_id <= SIM_MAX_NODES &&
        n_members < c->o.nodes + 2) {
        raft_id id = c->next_id++;
        if (sim_node_create(&c->nodes[id], id, &c->env, NULL) != 0) {
            sim_checker_fail(&c->checker, SIM_P_RUNTIME,
                             "cannot create node %llu", (unsigned long long)id);
            return;
        }
        snprintf(address, sizeof address, "127.0.0.1:%llu",
                 (unsigned long long)(7000 + id));
        e.conf_change.type = RAFT_CONF_ADD_LEARNER;
        e.conf_change.id = id;
        e.conf_change.address = address;
    } else if (pick == 1 && n_learners > 0) {
        e.conf_change.type = RAFT_CONF_PROMOTE;
        e.conf_change.id = learners[sim_prng_below(&c->work_prng, n_learners)];
    } else if (pick == 2 && n_members > 0) {
        /* The leader removes itself a third of the time (§4.2.2). */
        raft_id id = sim_prng_chance(&c->work_prng, 333)
                         ? l->id
                         : members[sim_prng_below(&c->work_prng, n_members)];
        const struct raft_server *s = raft_configuration_get(conf, id);
        if (s == NULL || (s->role == RAFT_VOTER && n_voters <= 2)) {
            return;
        }
        e.conf_change.type = RAFT_CONF_REMOVE;
        e.conf_change.id = id;
        c->workload.leader_removals += id == l->id;
    } else {
        return;
    }
    c->workload.conf_changes++;
    sim_trace_printf(&c->trace, "admin: conf change %d n%llu at leader n%llu",
                     (int)e.conf_change.type,
                     (unsigned long long)e.conf_change.id,
                     (unsigned long long)l->id);
    sim_node_step(l, &c->env, &e);
}

static void transfer(struct sim_cluster *c, struct sim_node *l)
{
    const struct raft_configuration *conf = raft_configuration(&l->raft);
    struct raft_event e;
    raft_id to = 0;
    if (conf != NULL && conf->n > 0 && !sim_prng_chance(&c->work_prng, 200)) {
        const struct raft_server *s =
            &conf->servers[sim_prng_below(&c->work_prng, conf->n)];
        /* Mostly to another voter; now and then to itself or a learner,
         * which the core must refuse (GOULETTE_ENOTFOUND). */
        if ((s->id == l->id || s->role != RAFT_VOTER) &&
            !sim_prng_chance(&c->work_prng, 200)) {
            return;
        }
        to = s->id;
    }
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_TRANSFER;
    e.transfer.to = to;
    c->workload.transfers++;
    sim_trace_printf(&c->trace, "admin: transfer from n%llu to n%llu",
                     (unsigned long long)l->id, (unsigned long long)to);
    sim_node_step(l, &c->env, &e);
}

static void admin(struct sim_cluster *c)
{
    struct sim_node *l = leader_of(c);
    bool conf = on(c, SIM_F_CONF);
    bool xfer = on(c, SIM_F_TRANSFER);
    if (!conf && !xfer) {
        return;
    }
    if (sim_prng_chance(&c->work_prng, 100)) {
        /* Now and then the administrator asks a node that is not the
         * leader: the core must refuse (ENOTLEADER / ENOLEADER). */
        l = random_up(c, &c->work_prng);
    }
    if (l != NULL) {
        if (conf && (!xfer || sim_prng_chance(&c->work_prng, 600))) {
            conf_change(c, l);
        } else {
            transfer(c, l);
        }
    }
    schedule(c, SIM_EV_ADMIN, 0,
             sim_prng_between(&c->work_prng, c->admin_min, c->admin_max));
}

static void heal_later(struct sim_cluster *c)
{
    schedule(c, SIM_EV_HEAL, 0,
             sim_prng_between(&c->chaos_prng, c->heal_min, c->heal_max));
}

/* Saturate one to three links, one direction each: slow and lossy until
 * the next heal (a congested or flaky path rather than a cut one). */
static void saturate(struct sim_cluster *c)
{
    struct sim_prng *p = &c->chaos_prng;
    unsigned k = (unsigned)sim_prng_between(p, 1, 3);
    while (k-- > 0) {
        raft_id from = 1 + sim_prng_below(p, c->next_id - 1);
        raft_id to = 1 + sim_prng_below(p, c->next_id - 1);
        uint64_t extra = sim_prng_between(p, 20, 200);
        if (from != to) {
            sim_trace_printf(&c->trace,
                             "chaos: saturate n%llu -> n%llu "
                             "(+%llu)",
                             (unsigned long long)from, (unsigned long long)to,
                             (unsigned long long)extra);
            sim_net_saturate(&c->net, from, to, extra);
        }
    }
    heal_later(c);
}

/* An election storm, in three acts:
 *   1. a and b cannot hear each other; a campaigns and wins with v's vote;
 *   2. 30..60 units later v crashes, cut off from a, and restarts soon;
 *   3. as v comes back, b campaigns in the same term a won.
 * v must remember its vote across the crash (§3.8): if it does, b cannot
 * win; if it forgot it, the term gets two leaders.  The network heals a
 * few hundred units later. */
static void storm(struct sim_cluster *c)
{
    struct sim_prng *p = &c->chaos_prng;
    struct sim_node *a = random_up(c, p);
    struct sim_node *b = random_up(c, p);
    struct sim_node *v = random_up(c, p);
    struct raft_event e;
    if (a == NULL || b == NULL || v == NULL || a == b || v == a || v == b) {
        return;
    }
    sim_trace_printf(&c->trace,
                     "chaos: storm: n%llu campaigns away from n%llu, voter "
                     "n%llu will crash",
                     (unsigned long long)a->id, (unsigned long long)b->id,
                     (unsigned long long)v->id);
    sim_net_set_cut(&c->net, a->id, b->id, true);
    sim_net_set_cut(&c->net, b->id, a->id, true);
    c->storm_a = a->id;
    c->storm_b = b->id;
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_CAMPAIGN;
    sim_node_step(a, &c->env, &e);
    schedule(c, SIM_EV_CRASH, v->id, sim_prng_between(p, 30, 60));
    schedule(c, SIM_EV_HEAL, 0, sim_prng_between(p, 200, 400));
}

/* Act 2 of a storm (or a plain delayed crash). */
static void storm_crash(struct sim_cluster *c, struct sim_node *v)
{
    struct sim_prng *p = &c->chaos_prng;
    uint64_t down = sim_prng_between(p, 1, 20);
    sim_node_crash(v, &c->env);
    schedule(c, SIM_EV_RESTART, v->id, down);
    if (c->storm_a != 0) {
        sim_net_set_cut(&c->net, c->storm_a, v->id, true);
        sim_net_set_cut(&c->net, v->id, c->storm_a, true);
        schedule(c, SIM_EV_CAMPAIGN, c->storm_b,
                 down + sim_prng_between(p, 0, 5));
        c->storm_a = 0;
        c->storm_b = 0;
    }
}

static void chaos(struct sim_cluster *c)
{
    struct sim_prng *p = &c->chaos_prng;
    unsigned total = c->w_crash + c->w_crash_leader + c->w_partition +
                     c->w_isolate + c->w_oneway + c->w_campaign + c->w_storm +
                     c->w_saturate;
    uint64_t r;
    bool side[SIM_MAX_NODES + 1];
    raft_id id;
    struct sim_node *n;
    struct raft_event e;

    if (total == 0) {
        return;
    }
    r = sim_prng_below(p, total);
    if (r < c->w_crash + c->w_crash_leader) {
        n = r < c->w_crash ? random_up(c, p) : leader_of(c);
        if (n != NULL && count_down(c) < c->max_down) {
            sim_node_crash(n, &c->env);
            schedule(c, SIM_EV_RESTART, n->id,
                     sim_prng_between(p, c->down_min, c->down_max));
        }
    } else if ((r -= c->w_crash + c->w_crash_leader) < c->w_partition) {
        memset(side, 0, sizeof side);
        for (id = 1; id <= SIM_MAX_NODES; id++) {
            side[id] = sim_prng_chance(p, 500);
        }
        sim_trace_printf(&c->trace, "chaos: partition");
        sim_net_partition(&c->net, side);
        heal_later(c);
    } else if ((r -= c->w_partition) < c->w_isolate) {
        n = leader_of(c);
        if (n == NULL) {
            n = random_up(c, p);
        }
        if (n != NULL) {
            memset(side, 0, sizeof side);
            side[n->id] = true;
            sim_trace_printf(&c->trace, "chaos: isolate n%llu",
                             (unsigned long long)n->id);
            sim_net_partition(&c->net, side);
            heal_later(c);
        }
    } else if ((r -= c->w_isolate) < c->w_oneway) {
        unsigned k = (unsigned)sim_prng_between(p, 1, 3);
        while (k-- > 0) {
            raft_id from = 1 + sim_prng_below(p, c->next_id - 1);
            raft_id to = 1 + sim_prng_below(p, c->next_id - 1);
            if (from != to) {
                sim_trace_printf(&c->trace, "chaos: cut n%llu -> n%llu",
                                 (unsigned long long)from,
                                 (unsigned long long)to);
                sim_net_set_cut(&c->net, from, to, true);
            }
        }
        heal_later(c);
    } else if ((r -= c->w_oneway) < c->w_campaign) {
        n = random_up(c, p);
        if (n != NULL) {
            sim_trace_printf(&c->trace, "chaos: n%llu campaigns",
                             (unsigned long long)n->id);
            memset(&e, 0, sizeof e);
            e.type = RAFT_EVENT_CAMPAIGN;
            sim_node_step(n, &c->env, &e);
        }
    } else if ((r -= c->w_campaign) < c->w_storm) {
        storm(c);
    } else {
        saturate(c);
    }
    schedule(c, SIM_EV_CHAOS, 0,
             sim_prng_between(p, c->chaos_min, c->chaos_max));
}

static void restart(struct sim_cluster *c, struct sim_node *n)
{
    int rv;
    if (!n->exists || n->up) {
        return;
    }
    rv = sim_node_start(n, &c->env);
    if (rv != 0) {
        sim_checker_fail(&c->checker, SIM_P_RUNTIME,
                         "n%llu: restart failed: %s", (unsigned long long)n->id,
                         goulette_strerror(rv));
    }
}

/* The transport of @from noticed that @to cannot be reached (a cut link
 * or a dead peer): it says so now and then, as a real one would. */
static void unreachable(struct sim_cluster *c, raft_id from, raft_id to)
{
    struct raft_event e;
    if (from == 0 || from > SIM_MAX_NODES || !c->nodes[from].up ||
        !sim_prng_chance(&c->net_prng, 100)) {
        return;
    }
    memset(&e, 0, sizeof e);
    e.type = RAFT_EVENT_UNREACHABLE;
    e.unreachable.id = to;
    sim_node_step(&c->nodes[from], &c->env, &e);
}

static void deliver(struct sim_cluster *c, struct sim_msg *msg)
{
    struct sim_node *n;
    raft_id to = msg->m.to;
    if (to == 0 || to > SIM_MAX_NODES) {
        sim_checker_fail(
            &c->checker, SIM_P_RUNTIME, "n%llu sent %s to unknown node %llu",
            (unsigned long long)msg->m.from, raft_msg_type_name(msg->m.type),
            (unsigned long long)to);
        return;
    }
    n = &c->nodes[to];
    if (!n->exists || !n->up || !sim_net_connected(&c->net, msg->m.from, to)) {
        unreachable(c, msg->m.from, to);
        return;
    }
    if (sim_trace_on(&c->trace)) {
        sim_trace_printf(
            &c->trace,
            "n%llu <- n%llu %s term %llu log (%llu, %llu) "
            "commit %llu n %u index %llu reject %d hint %llu "
            "ctx %llu",
            (unsigned long long)to, (unsigned long long)msg->m.from,
            raft_msg_type_name(msg->m.type), (unsigned long long)msg->m.term,
            (unsigned long long)msg->m.log_index,
            (unsigned long long)msg->m.log_term,
            (unsigned long long)msg->m.commit, msg->m.n_entries,
            (unsigned long long)msg->m.index, msg->m.reject,
            (unsigned long long)msg->m.reject_hint,
            (unsigned long long)msg->m.context);
    }
    sim_node_receive(n, &c->env, &msg->m);
}

static void dispatch(struct sim_cluster *c, struct sim_event *e)
{
    struct sim_node *n = e->node <= SIM_MAX_NODES ? &c->nodes[e->node] : NULL;
    bool current =
        n != NULL && n->exists && n->up && n->incarnation == e->incarnation;
    switch (e->kind) {
    case SIM_EV_TICK:
        if (current) {
            sim_node_tick(n, &c->env);
            if (n->up && n->incarnation == e->incarnation) {
                schedule(c, SIM_EV_TICK, n->id, TICK_UNITS);
            }
        }
        break;
    case SIM_EV_DELIVER:
        deliver(c, e->payload);
        sim_msg_free(e->payload);
        e->payload = NULL;
        break;
    case SIM_EV_DISK:
        if (current) {
            sim_node_disk_done(n, &c->env);
        }
        break;
    case SIM_EV_RESTART:
        if (n != NULL) {
            restart(c, n);
        }
        break;
    case SIM_EV_CLIENT:
        if (!c->healing) {
            client(c);
        }
        break;
    case SIM_EV_ADMIN:
        if (!c->healing) {
            admin(c);
        }
        break;
    case SIM_EV_CHAOS:
        if (!c->healing) {
            chaos(c);
        }
        break;
    case SIM_EV_HEAL:
        sim_trace_printf(&c->trace, "chaos: heal");
        sim_net_heal(&c->net);
        break;
    case SIM_EV_CRASH:
        if (current && !c->healing) {
            storm_crash(c, n);
        }
        break;
    case SIM_EV_PERSISTED:
        if (current) {
            sim_node_persisted(n, &c->env, e->arg[0], e->arg[1]);
        }
        break;
    case SIM_EV_CAMPAIGN:
        if (n != NULL && n->up && !c->healing) {
            struct raft_event ev;
            memset(&ev, 0, sizeof ev);
            ev.type = RAFT_EVENT_CAMPAIGN;
            sim_trace_printf(&c->trace, "chaos: storm: n%llu campaigns",
                             (unsigned long long)n->id);
            sim_node_step(n, &c->env, &ev);
        }
        break;
    case SIM_EV_SNAPSHOT:
        if (!c->healing) {
            n = random_up(c, &c->disk_prng);
            if (n != NULL) {
                sim_node_snapshot(n, &c->env);
            }
            schedule(c, SIM_EV_SNAPSHOT, 0,
                     sim_prng_between(&c->disk_prng, c->snap_min, c->snap_max));
        }
        break;
    }
}

/* The committed history grew: every standing leader must hold it. */
static void check_leaders(struct sim_cluster *c)
{
    raft_id id;
    c->truth_seen = c->checker.truth_gen;
    for (id = 1; id < c->next_id && !c->checker.failed; id++) {
        struct sim_node *n = &c->nodes[id];
        if (n->up && n->state == RAFT_LEADER) {
            sim_checker_new_leader(&c->checker, id, n->term, &n->mem);
        }
    }
}

/* One step: pop and dispatch one event.  Returns false when the queue is
 * empty. */
static bool step(struct sim_cluster *c)
{
    struct sim_event e;
    if (sim_clock_pop(&c->clock, &e) != 0) {
        return false;
    }
    c->step++;
    c->trace.step = c->step;
    c->trace.time = c->clock.now;
    dispatch(c, &e);
    if (e.payload != NULL) {
        sim_msg_free(e.payload);
    }
    if (c->checker.truth_gen != c->truth_seen) {
        check_leaders(c);
    }
    if (c->clock.n > MAX_QUEUED) {
        sim_checker_fail(&c->checker, SIM_P_LIVENESS,
                         "%zu events queued at time %llu: a message storm",
                         c->clock.n, (unsigned long long)c->clock.now);
    }
    return true;
}

/* ---- liveness ------------------------------------------------------ */

/* "no leader; n1 candidate t5 last (73, 34) voters 1,3 ..." */
static void describe(struct sim_cluster *c, char *why, size_t len)
{
    size_t at = (size_t)snprintf(why, len, "no leader;");
    raft_id id;
    unsigned i;
    for (id = 1; id < c->next_id && at < len; id++) {
        struct sim_node *n = &c->nodes[id];
        const struct raft_configuration *conf;
        if (!n->up) {
            continue;
        }
        conf = raft_configuration(&n->raft);
        at += (size_t)snprintf(why + at, len - at, " n%llu t%llu last %llu v",
                               (unsigned long long)id,
                               (unsigned long long)n->term,
                               (unsigned long long)raft_last_index(&n->raft));
        for (i = 0; conf != NULL && i < conf->n && at < len; i++) {
            if (conf->servers[i].role == RAFT_VOTER) {
                at += (size_t)snprintf(why + at, len - at, "%s%llu",
                                       i == 0 ? "" : ",",
                                       (unsigned long long)conf->servers[i].id);
            }
        }
    }
}

/* Returns true when the cluster is quiescent and live; otherwise writes
 * why into @why. */
static bool live(struct sim_cluster *c, char *why, size_t len)
{
    struct sim_node *l = leader_of(c);
    const struct raft_configuration *conf;
    raft_index commit;
    unsigned i;
    if (l == NULL) {
        describe(c, why, len);
        return false;
    }
    commit = raft_commit_index(&l->raft);
    if (commit != raft_last_index(&l->raft) || l->disk.sm.applied != commit) {
        snprintf(why, len,
                 "leader n%llu (term %llu): commit %llu, last %llu, "
                 "applied %llu",
                 (unsigned long long)l->id, (unsigned long long)l->term,
                 (unsigned long long)commit,
                 (unsigned long long)raft_last_index(&l->raft),
                 (unsigned long long)l->disk.sm.applied);
        return false;
    }
    conf = raft_configuration(&l->raft);
    for (i = 0; conf != NULL && i < conf->n; i++) {
        raft_id id = conf->servers[i].id;
        struct sim_node *n = id <= SIM_MAX_NODES ? &c->nodes[id] : NULL;
        if (n == NULL || !n->exists || !n->up || n->disk.sm.applied != commit) {
            snprintf(why, len,
                     "leader n%llu (term %llu) committed %llu but member "
                     "n%llu applied %llu%s",
                     (unsigned long long)l->id, (unsigned long long)l->term,
                     (unsigned long long)commit, (unsigned long long)id,
                     (unsigned long long)(n == NULL ? 0 : n->disk.sm.applied),
                     n == NULL || !n->up ? " (down)" : "");
            return false;
        }
    }
    if (commit < c->checker.ack_index) {
        snprintf(why, len, "commit %llu below acknowledged write %llu",
                 (unsigned long long)commit,
                 (unsigned long long)c->checker.ack_index);
        return false;
    }
    return true;
}

/* A digest of applied indexes and durable logs: it changes while the
 * cluster makes progress (a follower catching up entry by entry counts). */
static uint64_t progress(const struct sim_cluster *c)
{
    uint64_t sum = 0;
    raft_id id;
    for (id = 1; id < c->next_id; id++) {
        const struct sim_node *n = &c->nodes[id];
        sum = sim_prng_mix(sum ^ n->disk.sm.applied);
        sum = sim_prng_mix(sum ^ sim_log_last(&n->disk.log));
        sum = sim_prng_mix(sum ^ n->disk.log.base);
    }
    return sum;
}

static void heal_phase(struct sim_cluster *c)
{
    uint64_t deadline;
    uint64_t stall;
    uint64_t last_step;
    uint64_t seen;
    raft_id id;
    char why[200] = "";
    c->healing = true;
    c->env.crash_in_write_pm = 0;
    c->net.config.drop_pm = 0;
    c->net.config.slow_pm = 0;
    sim_net_heal(&c->net);
    sim_trace_printf(&c->trace, "heal: network healed, restarting nodes");
    for (id = 1; id < c->next_id; id++) {
        restart(c, &c->nodes[id]);
    }
    deadline = c->clock.now + HEAL_TIME;
    stall = c->clock.now + HEAL_STALL;
    last_step = c->step + HEAL_STEPS;
    seen = progress(c);
    while (!c->checker.failed && c->clock.now < deadline &&
           c->clock.now < stall && c->step < last_step) {
        if (c->step % HEAL_CHECK_EVERY == 0) {
            if (live(c, why, sizeof why)) {
                sim_trace_printf(&c->trace, "heal: live");
                return;
            }
            if (progress(c) != seen) {
                seen = progress(c);
                stall = c->clock.now + HEAL_STALL;
            }
        }
        if (!step(c)) {
            break;
        }
    }
    if (!c->checker.failed && !live(c, why, sizeof why)) {
        sim_checker_fail(&c->checker, SIM_P_LIVENESS, "%s", why);
    }
}

/* ---- the run ------------------------------------------------------- */

static int cluster_init(struct sim_cluster *c,
                        uint64_t seed,
                        const struct sim_options *o)
{
    struct raft_configuration conf;
    char address[32];
    raft_id id;
    int rv;

    memset(c, 0, sizeof *c);
    c->o = *o;
    c->seed = seed;
    sim_prng_seed(&c->net_prng, sim_prng_mix(seed) ^ 1);
    sim_prng_seed(&c->disk_prng, sim_prng_mix(seed) ^ 2);
    sim_prng_seed(&c->work_prng, sim_prng_mix(seed) ^ 3);
    sim_prng_seed(&c->chaos_prng, sim_prng_mix(seed) ^ 4);
    sim_clock_init(&c->clock, sim_msg_free);
    sim_trace_init(&c->trace, o->trace);
    sim_checker_init(&c->checker, &c->trace, &c->step);
    sim_workload_init(&c->workload, seed);
    c->env.seed = seed;
    c->env.clock = &c->clock;
    c->env.net = &c->net;
    c->env.disk_prng = &c->disk_prng;
    c->env.net_prng = &c->net_prng;
    c->env.checker = &c->checker;
    c->env.trace = &c->trace;
    c->env.workload = &c->workload;
    sim_trace_printf(&c->trace, "seed %llu: %u nodes, %llu steps",
                     (unsigned long long)seed, o->nodes,
                     (unsigned long long)o->steps);
    setup_parameters(c);

    raft_configuration_init(&conf);
    for (id = 1; id <= o->nodes; id++) {
        snprintf(address, sizeof address, "127.0.0.1:%llu",
                 (unsigned long long)(7000 + id));
        rv = raft_configuration_add(&conf, id, address, RAFT_VOTER);
        if (rv != 0) {
            raft_configuration_fini(&conf);
            return rv;
        }
    }
    c->next_id = o->nodes + 1;
    for (id = 1; id <= o->nodes; id++) {
        rv = sim_node_create(&c->nodes[id], id, &c->env, &conf);
        if (rv != 0) {
            raft_configuration_fini(&conf);
            return rv;
        }
    }
    raft_configuration_fini(&conf);
    schedule(c, SIM_EV_CLIENT, 0, 50);
    schedule(c, SIM_EV_ADMIN, 0, c->admin_min);
    schedule(c, SIM_EV_CHAOS, 0, c->chaos_min);
    if (on(c, SIM_F_SNAPSHOT)) {
        schedule(c, SIM_EV_SNAPSHOT, 0, c->snap_min);
    }
    return 0;
}

static void cluster_fini(struct sim_cluster *c)
{
    raft_id id;
    for (id = 1; id <= SIM_MAX_NODES; id++) {
        sim_node_destroy(&c->nodes[id]);
    }
    sim_clock_fini(&c->clock);
    sim_workload_fini(&c->workload);
    sim_checker_fini(&c->checker);
}

int sim_cluster_run(uint64_t seed,
                    const struct sim_options *o,
                    struct sim_result *r)
{
    struct sim_cluster *c = calloc(1, sizeof *c);
    raft_id id;
    int rv;
    memset(r, 0, sizeof *r);
    if (c == NULL) {
        return -ENOMEM;
    }
    rv = cluster_init(c, seed, o);
    if (rv != 0) {
        sim_checker_fail(&c->checker, SIM_P_RUNTIME, "cluster start: %s",
                         goulette_strerror(rv));
    }
    while (!c->checker.failed && c->step < o->steps && step(c)) {
    }
    if (!c->checker.failed) {
        heal_phase(c);
    }
    r->failed = c->checker.failed;
    r->property = c->checker.property;
    r->step = c->checker.fail_step;
    memcpy(r->detail, c->checker.detail, sizeof r->detail);
    r->steps = c->step;
    r->time = c->clock.now;
    r->acked = c->workload.acked;
    r->served = c->workload.served;
    r->conf_accepted = c->workload.conf_accepted;
    r->leader_removals = c->workload.leader_removals;
    r->transfers = c->workload.transfers;
    r->msgs = c->net.sent;
    for (id = 1; id < c->checker.n_leaders; id++) {
        r->leaders += c->checker.leaders[id] != 0;
    }
    for (id = 1; id <= SIM_MAX_NODES; id++) {
        r->crashes += c->nodes[id].crashes;
        r->installs += c->nodes[id].installs;
    }
    sim_trace_printf(
        &c->trace,
        "end: %s, %llu acked writes, %llu reads served, "
        "%llu terms with a leader, %llu crashes, %llu msgs "
        "sent",
        r->failed ? "FAILED" : "ok", (unsigned long long)r->acked,
        (unsigned long long)r->served, (unsigned long long)r->leaders,
        (unsigned long long)r->crashes, (unsigned long long)c->net.sent);
    cluster_fini(c);
    free(c);
    return 0;
}
