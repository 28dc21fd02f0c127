/* Linearizable reads with ReadIndex (dissertation §6.4), batched: every read
 * waiting when a heartbeat round starts is confirmed by that round. */
#ifndef RAFT_READ_H
#define RAFT_READ_H

#include "impl.h"

/* A read request, local (@from == 0) or forwarded by follower @from. */
void raft__read_request(struct raft__impl *r, uint64_t context, raft_id from);

/* Leader: assign waiting reads to a new round if none is in flight. */
void raft__read_advance(struct raft__impl *r);

/* Leader: answer the reads of every round a quorum acknowledged. */
void raft__read_check(struct raft__impl *r);

/* Answer every waiting read with @rv (leadership lost). */
void raft__read_fail_all(struct raft__impl *r, int rv);

void raft__recv_read_index(struct raft__impl *r, const struct raft_message *m);
void raft__recv_read_index_resp(struct raft__impl *r,
                                const struct raft_message *m);

#endif /* RAFT_READ_H */
