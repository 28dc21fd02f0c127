/* Snapshots (dissertation §5.1-§5.4): taking them (the runtime does; the
 * core compacts its log), sending them to lagging followers in chunks, and
 * receiving and installing them. */
#ifndef RAFT_SNAPSHOT_H
#define RAFT_SNAPSHOT_H

#include "impl.h"

/* RAFT_EVENT_SNAPSHOT.  Errors: -EINVAL (index not applied, not newer than
 * the current snapshot, or not in the log), -ENOMEM. */
int raft__snapshot_taken(struct raft__impl *r, const struct raft_event *ev);

/* Leader: switch @p to SNAPSHOT and send the first chunks.  Returns false
 * (and changes nothing) when there is no snapshot to send. */
bool raft__snapshot_send_start(struct raft__impl *r, struct raft__progress *p);
void raft__snapshot_tick(struct raft__impl *r, struct raft__progress *p);

void raft__recv_snapshot(struct raft__impl *r, const struct raft_message *m);
void raft__recv_snapshot_resp(struct raft__impl *r,
                              const struct raft_message *m);

#endif /* RAFT_SNAPSHOT_H */
