/* The output side of one raft_step(): the messages, proposal results and
 * read results gathered while handling one event, the memory they borrow,
 * and the final assembly of struct raft_update (the execution rules are in
 * include/goulette/raft.h). */
#ifndef RAFT_OUT_H
#define RAFT_OUT_H

#include <goulette/raft.h>

/* Memory that must outlive the current update: freed at the next step. */
struct raft__garbage
{
    void **ptrs; /* owned */
    unsigned n;
    unsigned cap;
    bool oom; /* an allocation failed while growing ptrs */
};

/* Take @p (freed at the next step).  Returns false if the list could not
 * grow: @p was then freed at once. */
bool raft__garbage_add(struct raft__garbage *g, void *p);
void raft__garbage_free(struct raft__garbage *g);

struct raft__out
{
    struct raft_message *msgs; /* owned array */
    unsigned n_msgs, cap_msgs;
    struct raft_proposal *props; /* owned array */
    unsigned n_props, cap_props;
    struct raft_read *reads; /* owned array */
    unsigned n_reads, cap_reads;
    struct raft__garbage garbage; /* freed at the start of the next step */
    bool oom;                     /* an allocation failed in this step */

    const struct raft_snapshot_chunk *chunk; /* borrowed from the event */
    bool install;                            /* install r->snap */
    bool conf_changed;
    raft_index compact; /* 0 or the new first index kept by the log */

    /* What the runtime was last told, to report changes only. */
    struct raft_hard_state hs_prev;
    enum raft_state state_prev;
    raft_id leader_prev;
    raft_term term_prev;
};

struct raft__impl;

void raft__out_init(struct raft__out *o);
void raft__out_fini(struct raft__out *o);

/* Forget the previous update (and free what it borrowed). */
void raft__out_reset(struct raft__out *o);

/* Queue a copy of @m (shallow).  An APPEND with n_entries > 0 and entries ==
 * NULL gets its entries resolved from the log when the update is assembled
 * (the log array may move until then). */
void raft__send(struct raft__impl *r, const struct raft_message *m);

void raft__out_proposal(struct raft__impl *r,
                        uint64_t context,
                        int rv,
                        raft_index index,
                        raft_term term);
void raft__out_read(struct raft__impl *r,
                    uint64_t context,
                    int rv,
                    raft_index index);

/* malloc() whose result lives until the next step.  NULL on failure (and
 * the step reports -ENOMEM). */
void *raft__out_alloc(struct raft__impl *r, size_t size);

/* Fill @u from the instance: rules 1-6 of raft.h. */
void raft__out_finish(struct raft__impl *r, struct raft_update *u);

#endif /* RAFT_OUT_H */
