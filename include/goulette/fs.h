/* fs: the FUSE front end of goulettefs and its inotify echo notifier.
 *
 * fs/ serves a tree of directories and files whose names, contents, sizes,
 * mtimes and extended attributes all come from a BACKEND (struct
 * fs_backend), which the composition root implements with the store and
 * Raft.  fs/ knows nothing about topics or brokers: it turns system calls
 * into backend reads and mutations, and the backend's applied changes into
 * kernel cache invalidations and inotify events.
 *
 * Threads.  Every function here, and every backend callback, runs on the
 * loop thread given to fs_init().  fs/ owns one extra thread, the echo
 * notifier: it performs cache invalidations (fuse_lowlevel_notify_*) and
 * replays changes the kernel did not see through the mount path itself, so
 * that watchers get IN_CREATE / IN_MODIFY / IN_CLOSE_WRITE / IN_DELETE.  It
 * never touches backend or fs state: it only waits on the loop (whose FUSE
 * handlers serve its system calls), and the loop never waits on it.
 *
 * Paths.  The backend sees paths relative to the mount root, without a
 * leading slash: "" is the root, "topics" a directory, "topics/orders" a
 * file.  Names never contain '/' and are never "." or "..".
 */
#ifndef GOULETTE_FS_H
#define GOULETTE_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "goulette/buf.h"
#include "goulette/log.h"

struct fs;
struct fs_state;

enum fs_kind {
    FS_KIND_DIR = 1,
    FS_KIND_FILE = 2,
};

/* What the backend reports about one path. */
struct fs_attr
{
    enum fs_kind kind;
    /* Directories: names may be created and removed in it.  Files: the
     * content may be written.  Decides modes (0755/0644 versus 0555/0444)
     * and whether fs/ refuses writes with EROFS before asking. */
    bool writable;
    uint64_t size;    /* files: exactly the bytes read() returns */
    int64_t mtime_ns; /* wall clock, ns since the epoch; 0 if unknown */
};

/* Verdicts of fs_backend.classify (non-negative; errors are negative). */
enum fs_value {
    FS_VALUE_INCOMPLETE = 0, /* a valid prefix: wait for more bytes */
    FS_VALUE_COMPLETE = 1,   /* a whole value: submit it now */
};

enum fs_mutation_kind {
    /* Replace (or, for a new name, create) the record at path with the
     * written value. */
    FS_MUTATION_WRITE = 1,
    /* A file was created (O_CREAT, touch) and closed without any write:
     * create the record with the directory's default (a topic with the
     * default replica count); the backend may refuse (-EINVAL for a broker
     * without an address). */
    FS_MUTATION_CREATE = 2,
    /* unlink(2). */
    FS_MUTATION_REMOVE = 3,
};

/* One mutation proposed by a system call on the mount.  Allocated and owned
 * by fs/; the backend only reads the fields and finally calls cb. */
struct fs_mutation
{
    enum fs_mutation_kind kind;
    const char *path;          /* borrowed until cb */
    struct goulette_buf value; /* WRITE: the bytes; borrowed until cb */
    /* The name was created through this mount (O_CREAT) and did not exist
     * in the backend when it was created: a WRITE or CREATE must fail with
     * -EEXIST if the record exists by the time it applies. */
    bool new_file;
    /* Set by fs/: the backend calls it exactly once, on the loop thread,
     * after the mutation was committed AND applied (status 0), or when it
     * failed (negative errno or project code; -ECANCELED on shutdown).  On
     * success, fs_changes_applied() for the entry MUST come first. */
    void (*cb)(struct fs_mutation *m, int status);
    void *fs_data; /* owned by fs/ */
};

enum fs_change_kind {
    FS_CHANGE_CREATE = 1,
    FS_CHANGE_MODIFY = 2,
    FS_CHANGE_DELETE = 3,
};

/* One path changed by an applied entry. */
struct fs_change
{
    enum fs_change_kind kind;
    const char *path; /* borrowed: "operations/12" */
};

/* The contract the composition root implements with the store and Raft.
 * All callbacks run on the loop thread and must not block.  @data is the
 * backend's own pointer.  Reads see every change already reported with
 * fs_changes_applied(), and nothing not yet reported. */
struct fs_backend
{
    void *data;

    /* Attributes of @path into *@out.
     * Errors: -ENOENT (no such path), -ENOMEM, -EIO. */
    int (*stat)(void *data, const char *path, struct fs_attr *out);

    /* The whole content of file @path: *@out is returned, caller frees
     * out->base with free() (base may be NULL when len is 0).
     * Errors: -ENOENT, -EISDIR, -ENOMEM, -EIO. */
    int (*read)(void *data, const char *path, struct goulette_buf *out);

    /* Call @emit once per child of directory @path, in display order
     * (operations/ in numeric order).  @name is borrowed for the call.
     * Stops and returns @emit's value when it is negative.
     * Errors: -ENOENT, -ENOTDIR, -ENOMEM, and @emit's errors. */
    int (*list)(void *data,
                const char *path,
                int (*emit)(void *ctx, const char *name, enum fs_kind kind),
                void *ctx);

    /* Call @emit once per extended attribute of @path (full names such as
     * "user.goulette.mod_revision"; values borrowed for the call).  Stops
     * and returns @emit's value when it is negative.
     * Errors: -ENOENT, -ENOMEM, and @emit's errors. */
    int (*xattrs)(
        void *data,
        const char *path,
        int (*emit)(void *ctx, const char *name, const void *value, size_t len),
        void *ctx);

    /* May a file named @name be created in directory @dir?  Only called for
     * writable directories.
     * Errors: -EINVAL (bad characters, reserved name), -ENAMETOOLONG. */
    int (*check_name)(void *data, const char *dir, const char *name);

    /* Classify the bytes written so far to @path: FS_VALUE_COMPLETE,
     * FS_VALUE_INCOMPLETE, or a negative errno when no continuation can
     * make them valid (the write fails with it and nothing is proposed).
     * Pure: no state change. */
    int (*classify)(void *data, const char *path, const void *buf, size_t len);

    /* Propose @m (taken until m->cb).  Returns 0 and later calls m->cb
     * exactly once; or returns a negative errno at once (invalid value,
     * unknown broker, ...) and never calls m->cb.
     * Errors: any negative errno or project code (mapped with
     * goulette_errno() for the system call). */
    int (*submit)(void *data, struct fs_mutation *m);
};

struct fs_config
{
    const char *mountpoint; /* borrowed; an existing directory */
    bool allow_other;       /* mount with allow_other (others may enter) */
    /* Logger, borrowed until the close callback; NULL for silence.  Called
     * on the loop thread and on the echo thread. */
    const struct goulette_log *log;
    struct fs_backend backend; /* copied */
    /* Called on the loop when the mount went away without fs_close()
     * (fusermount3 -u, a forced abort).  Optional.  The owner should then
     * call fs_close(). */
    void (*unmounted)(struct fs *fs);
};

struct fs
{
    void *data;             /* free for the owner */
    struct fs_state *state; /* private to fs/ */
};

/* Mount the file system at cfg->mountpoint (options: default_permissions,
 * fsname and subtype "goulettefs", allow_other when asked), start serving
 * it on @loop (borrowed until the close callback; never the default loop
 * unless the caller owns it) and start the echo thread.  A dead mount left
 * at the mount point by a killed daemon is detached first (root only).
 * @fs is borrowed until the close callback.
 * Errors: -ENOMEM, -EINVAL (bad config), -ENOTDIR / -ENOENT / -EACCES
 * (mountpoint), -ENOTCONN (a dead mount there that cannot be detached), -EIO
 * (libfuse could not create the session or mount), -EAGAIN (the echo thread
 * could not start). */
int fs_init(struct fs *fs, uv_loop_t *loop, const struct fs_config *cfg);

/* Stop: the echo thread finishes the replay in progress and drops the rest
 * of its queue, every submitted mutation's callback is awaited (the backend
 * must complete them, with -ECANCELED if it is shutting down), then the
 * mount is removed (lazily if busy: no entry stays in /proc/mounts) and
 * @cb fires once on the loop; @fs may be freed then.  Requests arriving
 * meanwhile are still served so that the echo thread can finish.
 * Errors: -EALREADY (already closing; @cb will not fire). */
int fs_close(struct fs *fs, void (*cb)(struct fs *fs));

/* The backend applied one entry that changed @changes[0..@n) (in order).
 * @origin is the mutation of this mount that the entry carries, or NULL for
 * entries from elsewhere (gRPC, other members, status changes).  Every
 * change is invalidated in the kernel's caches; every change the kernel did
 * not raise itself (all of them, except the change to @origin's own path)
 * is queued for the echo notifier, in call order.  @changes and the paths
 * are borrowed.  Call in apply order, on the loop thread; calls after
 * fs_close()'s callback are ignored. */
void fs_changes_applied(struct fs *fs,
                        const struct fs_change *changes,
                        size_t n,
                        const struct fs_mutation *origin);

#endif /* GOULETTE_FS_H */
