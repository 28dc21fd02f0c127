/* Leadership transfer (dissertation §3.10). */
#ifndef RAFT_TRANSFER_H
#define RAFT_TRANSFER_H

#include "impl.h"

/* RAFT_EVENT_TRANSFER.  Errors: GOULETTE_ENOTLEADER, GOULETTE_ETRANSFER (one
 * is in progress), GOULETTE_ENOTFOUND (target is not another voter). */
int raft__transfer_start(struct raft__impl *r, raft_id to);

/* @p made progress: send TimeoutNow if it is the caught-up target. */
void raft__transfer_progress(struct raft__impl *r, struct raft__progress *p);

void raft__transfer_tick(struct raft__impl *r);
void raft__transfer_abort(struct raft__impl *r);
void raft__recv_timeout_now(struct raft__impl *r, const struct raft_message *m);

#endif /* RAFT_TRANSFER_H */
