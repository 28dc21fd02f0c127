/* Leader election (dissertation §3.4), pre-vote (§9.6), check-quorum and the
 * leader lease against disruptive servers (§6.2, §4.2.3), and the term rules
 * every message goes through (§3.3). */
#ifndef RAFT_ELECTION_H
#define RAFT_ELECTION_H

#include "impl.h"

/* Become follower in @term (the vote is kept if the term is unchanged) and
 * follow @leader (0: unknown). */
void raft__become_follower(struct raft__impl *r,
                           raft_term term,
                           raft_id leader);

/* Start an election: a pre-vote round first when configured, unless
 * @transfer (TimeoutNow skips it, §3.10). */
void raft__campaign(struct raft__impl *r, bool transfer);

void raft__election_tick(struct raft__impl *r);

/* True when this server may campaign: a voter of its configuration. */
bool raft__promotable(const struct raft__impl *r);

/* Apply the term rules of §3.3 to @m.  Returns false when the message must
 * be ignored from here on. */
bool raft__election_check_term(struct raft__impl *r,
                               const struct raft_message *m);

void raft__recv_vote(struct raft__impl *r, const struct raft_message *m);
void raft__recv_vote_resp(struct raft__impl *r, const struct raft_message *m);

#endif /* RAFT_ELECTION_H */
