/* Client proposals: appended by the leader, forwarded by followers. */
#ifndef RAFT_PROPOSE_H
#define RAFT_PROPOSE_H

#include "impl.h"

void raft__propose(struct raft__impl *r, const struct raft_event *ev);
void raft__recv_propose(struct raft__impl *r, const struct raft_message *m);
void raft__recv_propose_resp(struct raft__impl *r,
                             const struct raft_message *m);

#endif /* RAFT_PROPOSE_H */
