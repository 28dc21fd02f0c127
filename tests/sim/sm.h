/* The simulated state machine: a small key-value map of 8 keys, plus the
 * chain hash of every entry applied so far (so two states can be compared
 * in O(1)), and the configuration of the last applied RAFT_ENTRY_CONF.  Its
 * encoding is the snapshot data sent through the chunked InstallSnapshot
 * protocol.  Commands are 16 bytes: key (u64 LE) then value (u64 LE). */
#ifndef SIM_SM_H
#define SIM_SM_H

#include <stdint.h>

#include <goulette/raft.h>

#define SIM_SM_KEYS 8
#define SIM_SM_CMD_BYTES 16

struct sim_sm
{
    raft_index applied;       /* last applied index */
    raft_term applied_term;   /* its term */
    uint64_t chain;           /* sim_log_chain over entries 1..applied */
    uint64_t n_values;        /* RAFT_ENTRY_NORMAL entries applied */
    uint64_t kv[SIM_SM_KEYS]; /* value last written per key */
    raft_index kv_index[SIM_SM_KEYS]; /* index of that write */
    struct raft_configuration conf;   /* last applied configuration */
    raft_index conf_index;            /* its index, 0 if none */
};

void sim_sm_init(struct sim_sm *sm);
void sim_sm_fini(struct sim_sm *sm);

/* Deep copy into an initialized @dst (its old content is freed).
 * Errors: -ENOMEM. */
int sim_sm_copy(const struct sim_sm *src, struct sim_sm *dst);

/* Encode a command for proposals. */
void sim_sm_command(uint64_t key, uint64_t value, unsigned char *out);

/* Apply @e, which must be the entry at applied + 1 (the caller checks).
 * Errors: -EBADMSG (malformed command or configuration), -ENOMEM. */
int sim_sm_apply(struct sim_sm *sm, const struct raft_entry *e);

/* Snapshot data: everything but the configuration (which travels in the
 * snapshot metadata).  buf->base is returned, free() it.  Errors: -ENOMEM. */
int sim_sm_encode(const struct sim_sm *sm, struct goulette_buf *buf);

/* Restore from snapshot data and metadata into @sm (its old content is
 * freed).  Errors: -EBADMSG, -ENOMEM. */
int sim_sm_restore(struct sim_sm *sm,
                   const struct goulette_buf *data,
                   const struct raft_snapshot_meta *meta);

#endif /* SIM_SM_H */
