/* The durable Raft log: entries, hard state and snapshot metadata in the
 * member's LevelDB, under the 'R' key space (docs/store.md).  Owns the record
 * formats and the keys; does not own the database (borrowed from the store)
 * nor decide what to write (the core's update does).
 *
 * Keys:
 *   'R' 'E' be64(index)  one entry
 *   'R' 'H'              the hard state
 *   'R' 'S'              the metadata of the last snapshot
 *
 * Every record starts with a CRC-32 of the rest and a format version, so a
 * damaged record is reported as GOULETTE_ECORRUPT instead of being served.
 *
 * Writes go into a caller's batch: the runtime puts everything one loop turn
 * produced (entries, hard state, the applied state) into one synchronous
 * LevelDB write, the group commit.  Loop thread only. */
#ifndef GOULETTE_RAFT_UV_LOG_H
#define GOULETTE_RAFT_UV_LOG_H

#include <goulette/ldb.h>
#include <goulette/raft.h>

/* What a member finds on disk at start: entries may begin at or below the
 * snapshot index (the core skips those). */
struct raft_uv_log_state
{
    struct raft_hard_state hard_state;  /* zeros when none was written */
    struct raft_snapshot_meta snapshot; /* index 0 when there is none; conf
                                           owned */
    struct raft_entry *entries;         /* every persisted entry, consecutive;
                                           owned, data included */
    unsigned n_entries;
};

void raft_uv_log_state_fini(struct raft_uv_log_state *s);

/* Read the persisted Raft state of @db into @s (initialized here).
 * A gap in the log, a record whose checksum or format is wrong, or entries
 * that do not follow the snapshot are GOULETTE_ECORRUPT, with the reason
 * logged to @log.  Errors: GOULETTE_ECORRUPT, GOULETTE_EVERSION, -EIO,
 * -ENOMEM.  On error @s is left empty. */
int raft_uv_log_load(struct store_ldb *db,
                     const struct goulette_log *log,
                     struct raft_uv_log_state *s);

/* Whether @db holds no Raft state at all (no hard state, snapshot or
 * entry).  Errors: -EIO, GOULETTE_ECORRUPT, -ENOMEM (returned instead of
 * 0 or 1). */
int raft_uv_log_empty(struct store_ldb *db);

/* The log writer: remembers which indexes are on disk, so that truncation
 * and compaction delete exactly the keys that exist. */
struct raft_uv_log
{
    raft_index first; /* lowest persisted entry, 0 when the log is empty */
    raft_index last;  /* highest persisted entry, 0 when the log is empty */
};

/* Start from what raft_uv_log_load found. */
void raft_uv_log_init(struct raft_uv_log *l, const struct raft_uv_log_state *s);

/* Queue into @b: delete persisted entries from entries[0].index on (they
 * were superseded), then put @entries (@n > 0, consecutive indexes).
 * Errors: -ENOMEM. */
int raft_uv_log_append(struct raft_uv_log *l,
                       struct store_ldb_batch *b,
                       const struct raft_entry *entries,
                       unsigned n);

/* Queue the hard state into @b.  Errors: -ENOMEM. */
int raft_uv_log_hard_state(struct store_ldb_batch *b,
                           const struct raft_hard_state *hs);

/* Queue the metadata of a snapshot this member took into @b.  The log is
 * left alone: compaction behind the snapshot is a separate step
 * (raft_uv_log_compact), as the core asks for it.  Errors: -ENOMEM. */
int raft_uv_log_snapshot_record(struct store_ldb_batch *b,
                                const struct raft_snapshot_meta *meta);

/* Queue the metadata of a snapshot received from the leader into @b, and
 * the deletion of every persisted entry (raft.h rule 1: the core installs a
 * snapshot only when its log lacks the snapshot's last entry, so the whole
 * log is stale).  Errors: -ENOMEM. */
int raft_uv_log_snapshot_install(struct raft_uv_log *l,
                                 struct store_ldb_batch *b,
                                 const struct raft_snapshot_meta *meta);

/* Queue the deletion of persisted entries below @index (log compaction behind
 * a snapshot). */
void raft_uv_log_compact(struct raft_uv_log *l,
                         struct store_ldb_batch *b,
                         raft_index index);

/* Write the bootstrap entry of a brand-new cluster: index 1, term 1, a
 * RAFT_ENTRY_CONF holding @conf, durably.  Every founding member writes the
 * same entry.  Errors: -EEXIST (the database already has Raft state),
 * -ENOMEM, -EIO, GOULETTE_ECORRUPT. */
int raft_uv_log_bootstrap(struct store_ldb *db,
                          const struct raft_configuration *conf);

#endif /* GOULETTE_RAFT_UV_LOG_H */
