/* Log replication (dissertation §3.5), commitment (§3.6), heartbeats, and
 * the leader side of flow control. */
#ifndef RAFT_REPLICATION_H
#define RAFT_REPLICATION_H

#include "impl.h"

/* Send the next AppendEntries to @p if flow control allows; with
 * @allow_empty, also when there is nothing new (to carry the commit index
 * or probe).  Falls back to a snapshot when the entries are compacted.
 * Returns true if something was sent. */
bool raft__send_append(struct raft__impl *r,
                       struct raft__progress *p,
                       bool allow_empty);
void raft__broadcast_append(struct raft__impl *r);
void raft__broadcast_heartbeat(struct raft__impl *r);
void raft__replication_tick(struct raft__impl *r);

/* Leader: advance commit by counting replicas of current-term entries
 * (§3.6.2).  Returns true if the commit index moved. */
bool raft__maybe_commit(struct raft__impl *r);

/* Follower: move commit to @index (bounded by the log). */
void raft__commit_to(struct raft__impl *r, raft_index index);

/* RAFT_EVENT_PERSISTED. */
void raft__persisted(struct raft__impl *r, raft_index index, raft_term term);

void raft__recv_append(struct raft__impl *r, const struct raft_message *m);
void raft__recv_append_resp(struct raft__impl *r, const struct raft_message *m);
void raft__recv_heartbeat(struct raft__impl *r, const struct raft_message *m);
void raft__recv_heartbeat_resp(struct raft__impl *r,
                               const struct raft_message *m);

#endif /* RAFT_REPLICATION_H */
