/* Private helpers over struct raft_configuration (quorum arithmetic). */
#ifndef RAFT_CONFIGURATION_H
#define RAFT_CONFIGURATION_H

#include <goulette/raft.h>

unsigned raft__conf_n_voters(const struct raft_configuration *c);
bool raft__conf_is_voter(const struct raft_configuration *c, raft_id id);

/* Majority of the voters (§3.4): n / 2 + 1. */
unsigned raft__conf_quorum(const struct raft_configuration *c);

/* Remove @id (present).  No allocation. */
void raft__conf_remove(struct raft_configuration *c, raft_id id);

#endif /* RAFT_CONFIGURATION_H */
