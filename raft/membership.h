/* Membership changes (dissertation §4): one server at a time, learners
 * first, configurations effective when appended and rolled back when
 * truncated. */
#ifndef RAFT_MEMBERSHIP_H
#define RAFT_MEMBERSHIP_H

#include "impl.h"

/* Recompute the active configuration: the latest RAFT_ENTRY_CONF entry in
 * the log, else the snapshot's (§4.1). */
void raft__membership_reload(struct raft__impl *r);

/* A RAFT_ENTRY_CONF entry @e was appended: it takes effect now (§4.1). */
void raft__membership_appended(struct raft__impl *r,
                               const struct raft_entry *e);

/* Leader: the commit index moved; step down if our removal committed. */
void raft__membership_committed(struct raft__impl *r);

/* RAFT_EVENT_CONF_CHANGE; the result goes to update.proposals. */
void raft__membership_change(struct raft__impl *r, const struct raft_event *ev);

#endif /* RAFT_MEMBERSHIP_H */
