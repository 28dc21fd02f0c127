/* The virtual clock and the event queue of the simulator.  Owns the
 * ordering of everything that happens in a run: events are popped in
 * (time, seq) order, where seq is the insertion order, so two events at the
 * same virtual time always run in the order they were scheduled (the fixed
 * tie-break rule).  It does not know what events mean. */
#ifndef SIM_CLOCK_H
#define SIM_CLOCK_H

#include <stddef.h>
#include <stdint.h>

enum sim_event_kind {
    SIM_EV_TICK = 1,  /* node: one raft tick */
    SIM_EV_DELIVER,   /* node: a message arrives (payload: struct sim_msg) */
    SIM_EV_DISK,      /* node: the head of its write queue completes */
    SIM_EV_RESTART,   /* node: come back after a crash */
    SIM_EV_CLIENT,    /* workload: next proposal or read */
    SIM_EV_ADMIN,     /* workload: next membership change or transfer */
    SIM_EV_CHAOS,     /* cluster: next fault */
    SIM_EV_HEAL,      /* cluster: heal the network */
    SIM_EV_SNAPSHOT,  /* cluster: next snapshot taken by some node */
    SIM_EV_CRASH,     /* node: crash now (a storm's voter) */
    SIM_EV_CAMPAIGN,  /* node: campaign now (a storm's second candidate) */
    SIM_EV_PERSISTED, /* node: a deferred RAFT_EVENT_PERSISTED (arg) */
};

struct sim_event
{
    uint64_t time; /* virtual time units */
    uint64_t seq;  /* insertion order: the tie-break */
    enum sim_event_kind kind;
    uint64_t node;        /* target node id, or 0 */
    uint64_t incarnation; /* of the target node when scheduled, or 0 */
    void *payload;        /* owned by the queue until popped */
    uint64_t arg[2];      /* small event data (SIM_EV_PERSISTED: index,
                             term) */
};

struct sim_clock
{
    uint64_t now;           /* virtual time of the last popped event */
    uint64_t next_seq;      /* next insertion number */
    struct sim_event *heap; /* binary min-heap on (time, seq); owned */
    size_t n;               /* events queued */
    size_t cap;             /* allocated slots */
    void (*free_payload)(void *payload); /* for events never popped */
};

void sim_clock_init(struct sim_clock *c, void (*free_payload)(void *));

/* Frees queued events and their payloads. */
void sim_clock_fini(struct sim_clock *c);

/* Queue @e to happen @delay units from now.  The payload is taken on
 * success.  Errors: -ENOMEM. */
int sim_clock_schedule(struct sim_clock *c,
                       uint64_t delay,
                       const struct sim_event *e);

/* Pop the earliest event into @out and advance the clock to its time.
 * Returns 0, or -ENOENT when the queue is empty.  The payload becomes the
 * caller's. */
int sim_clock_pop(struct sim_clock *c, struct sim_event *out);

#endif /* SIM_CLOCK_H */
