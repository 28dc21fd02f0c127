/* Snapshot files of a member: the current local snapshot (taken here or
 * installed from the leader), served in chunks to followers, and the staging
 * file of a snapshot being received.  Owns the files under one directory
 * (DATA_DIR/snapshots); does not own their content, which is the state
 * machine's stream.
 *
 *   snap-<index>       the current snapshot (at most one kept)
 *   snap-<index>.tmp   being written by this member
 *   incoming           being received from the leader
 *
 * All I/O is blocking: snapshots of Goulette metadata are a few MiB.  Loop
 * thread only. */
#ifndef GOULETTE_RAFT_UV_SNAPSHOT_H
#define GOULETTE_RAFT_UV_SNAPSHOT_H

#include <limits.h>
#include <stdint.h>

#include <goulette/log.h>
#include <goulette/raft.h>

struct raft_uv_snapshots
{
    char dir[PATH_MAX - 64];        /* the directory (room for names) */
    const struct goulette_log *log; /* borrowed; may be NULL */
    raft_index index;               /* current snapshot, 0 if none */
    raft_term term;
    uint64_t size;
    int fd;              /* the current snapshot, open for reading, or -1 */
    raft_index in_index; /* snapshot being received, 0 if none */
    raft_term in_term;
    uint64_t in_next; /* next offset expected */
    int in_fd;        /* the incoming file, or -1 */
};

/* Create @dir if needed and drop leftovers of interrupted work (.tmp files,
 * an incoming file).  Errors: negative errno. */
int raft_uv_snapshots_init(struct raft_uv_snapshots *s,
                           const char *dir,
                           const struct goulette_log *log);
void raft_uv_snapshots_fini(struct raft_uv_snapshots *s);

/* Attach the file of snapshot (@index, @term), found at start.
 * Errors: -ENOENT (the file is missing: take a new snapshot), -EIO. */
int raft_uv_snapshots_open(struct raft_uv_snapshots *s,
                           raft_index index,
                           raft_term term);

/* Begin writing a snapshot taken here: *@fd gets a new file to write the
 * state machine's stream into.  Finish with _commit or _abort.
 * Errors: negative errno. */
int raft_uv_snapshots_create(struct raft_uv_snapshots *s,
                             raft_index index,
                             int *fd);

/* Make the file written through @fd durable and current (older snapshot
 * files are removed); *@size gets its size.  Closes @fd.  Its term is set
 * with _set_term once the core has taken it.
 * Errors: negative errno (then nothing changed). */
int raft_uv_snapshots_commit(struct raft_uv_snapshots *s,
                             raft_index index,
                             int fd,
                             uint64_t *size);
void raft_uv_snapshots_abort(struct raft_uv_snapshots *s,
                             raft_index index,
                             int fd);
void raft_uv_snapshots_set_term(struct raft_uv_snapshots *s,
                                raft_index index,
                                raft_term term);

/* Read @len bytes at @offset of snapshot (@index, @term) into @buf.
 * Errors: -ENOENT (not the current snapshot any more), -EIO. */
int raft_uv_snapshots_read(struct raft_uv_snapshots *s,
                           raft_index index,
                           raft_term term,
                           uint64_t offset,
                           void *buf,
                           size_t len);

/* Durably write a received chunk into the staging file (raft.h rule 0): a
 * chunk at offset 0 of another snapshot restarts the staging.
 * Errors: -EINVAL (a gap or another snapshot past offset 0), negative
 * errno. */
int raft_uv_snapshots_stage(struct raft_uv_snapshots *s,
                            const struct raft_snapshot_chunk *chunk);

/* The staging file of snapshot (@index, @term), complete, rewound for
 * reading (borrowed: do not close).  Errors: -ENOENT. */
int raft_uv_snapshots_staged(struct raft_uv_snapshots *s,
                             raft_index index,
                             raft_term term,
                             int *fd);

/* After the state machine installed the staged snapshot: it becomes the
 * current snapshot, servable to others.  Errors: negative errno. */
int raft_uv_snapshots_promote(struct raft_uv_snapshots *s);

#endif /* GOULETTE_RAFT_UV_SNAPSHOT_H */
