/* fs private state: what fs/fuse.c (the FUSE operations), fs/tree.c (the
 * front end's view of nodes, handles and listings) and fs/apply.c (applied
 * changes -> invalidations and echoes) share.  No libfuse types beyond
 * opaque pointers: only fuse.c includes <fuse_lowlevel.h>.  Everything here
 * runs on the loop thread. */
#ifndef GOULETTE_FS_STATE_H
#define GOULETTE_FS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "goulette/fs.h"

#include "echo.h"
#include "inode.h"

#define FS_MAX_PATH 4096

struct fuse_session;
struct fuse_buf;

/* Handle flags. */
enum {
    FS_H_READ = 1u << 0,             /* opened for reading */
    FS_H_WRITE = 1u << 1,            /* opened for writing */
    FS_H_ECHO = 1u << 2,             /* opened by the echo thread */
    FS_H_CREATED = 1u << 3,          /* this open created the name (O_CREAT) */
    FS_H_WRITTEN = 1u << 4,          /* some write(2) reached this handle */
    FS_H_DIRTY = 1u << 5,            /* buffered bytes not yet submitted */
    FS_H_COMMITTED = 1u << 6,        /* a value of this handle committed */
    FS_H_CREATE_SUBMITTED = 1u << 7, /* the CREATE default went out */
};

/* An open file. */
struct fs_handle
{
    struct fs_inode *node;  /* pinned */
    unsigned flags;         /* FS_H_* */
    char *buf;              /* read snapshot / value being written; owned */
    size_t len;             /* valid bytes in buf */
    size_t cap;             /* allocated bytes */
    uint64_t value_off;     /* file offset of buf[0] */
    struct fs_handle *prev; /* fs_state.handles, to free them at close */
    struct fs_handle *next;
};

/* An open directory: the listing, snapshotted at opendir. */
struct fs_dir_handle
{
    char **names;         /* owned, with the names */
    unsigned char *kinds; /* enum fs_kind per name */
    size_t n;
    size_t cap;
    uint64_t ino;               /* of the directory */
    struct fs_dir_handle *prev; /* fs_state.dirs */
    struct fs_dir_handle *next;
};

struct fs_state
{
    struct fs *fs;                  /* owner's handle */
    uv_loop_t *loop;                /* borrowed */
    struct fuse_session *se;        /* owned */
    uv_poll_t poll;                 /* on the session fd */
    struct fuse_buf *recv;          /* receive buffer, owned by fuse.c */
    struct fs_inode_table inodes;   /* loop only */
    struct fs_backend be;           /* copied from config */
    const struct goulette_log *log; /* borrowed */
    struct fs_echo echo;            /* the notifier thread */
    char *mountpoint;               /* owned, absolute */
    uid_t uid;                      /* owner of every node */
    gid_t gid;
    mode_t ro_file_mode;       /* 0444, or 0644 when not root */
    mode_t ro_dir_mode;        /* 0555, or 0755 when not root */
    struct fs_inode **pending; /* PENDING nodes (pinned by handles) */
    size_t npending;
    size_t cap_pending;
    unsigned ops;               /* mutations awaiting their callback */
    struct fs_handle *handles;  /* open files, freed at close if unreleased */
    struct fs_dir_handle *dirs; /* open directories, likewise */
    unsigned closing_handles;   /* uv handles still closing */
    bool polling;               /* poll handle active */
    bool closing;               /* fs_close() was called */
    bool echo_stopped;          /* hooks.stopped fired */
    bool unmounted_reported;
    bool flush_final; /* fs_submit: marks the op final */
    void (*close_cb)(struct fs *fs);
    void (*unmounted)(struct fs *fs);
};

/* ---- tree.c ---- */

/* Wall clock in ns (synthetic mtimes). */
int64_t fs__now_ns(void);

/* Attributes of a node with no backend record: a pending create or a ghost
 * (a writable, empty file modified now). */
void fs__attr_synthetic(struct fs_attr *a);

/* Path of bound node @n / of @name in @dir, relative to the root, into @buf.
 * Errors: -ENOENT (unbound), -ENAMETOOLONG. */
int fs__node_path(struct fs_state *s,
                  const struct fs_inode *n,
                  char *buf,
                  size_t size);
int fs__child_path(struct fs_state *s,
                   const struct fs_inode *dir,
                   const char *name,
                   char *buf,
                   size_t size);

/* Attributes of @n: the backend's, synthetic for pending and ghost nodes.
 * Errors: -ENOENT (unbound: removed), the backend's stat errors. */
int fs__node_attr(struct fs_state *s, struct fs_inode *n, struct fs_attr *a);

/* Whether names may be created and removed in directory @dir. */
bool fs__dir_writable(struct fs_state *s, struct fs_inode *dir);

/* The list of FS_INODE_PENDING nodes (names created through the mount, not
 * yet committed), which readdir adds to the backend's listing.
 * fs__pending_add errors: -ENOMEM.  fs__pending_clear also clears the
 * flag. */
int fs__pending_add(struct fs_state *s, struct fs_inode *n);
void fs__pending_clear(struct fs_state *s, struct fs_inode *n);

/* An open file: pins @n and is linked into s->handles until
 * fs__handle_free.  Returns NULL when out of memory. */
struct fs_handle *fs__handle_new(struct fs_state *s,
                                 struct fs_inode *n,
                                 unsigned flags);
void fs__handle_free(struct fs_state *s, struct fs_handle *h);

/* Grow h->buf to hold @need bytes.  Errors: -ENOMEM. */
int fs__handle_reserve(struct fs_handle *h, size_t need);

/* Load the record of @h's node into its buffer (nothing for pending and
 * ghost nodes).  Errors: the backend's read errors, -ENOENT. */
int fs__handle_snapshot(struct fs_state *s, struct fs_handle *h);

/* Whether @p[0..@len) is only whitespace. */
bool fs__all_space(const char *p, size_t len);

/* Open directories: the listing snapshot.  fs__dir_add copies @name
 * (errors: -ENOMEM); fs__dir_handle_free unlinks from s->dirs. */
int fs__dir_add(struct fs_dir_handle *d, const char *name, enum fs_kind kind);
void fs__dir_handle_free(struct fs_state *s, struct fs_dir_handle *d);

/* Whether the process closing @h's file (thread @pid) holds no other fd
 * on it (the shell's open/dup2/close before a write). */
bool fs__flush_is_final(struct fs_state *s, struct fs_handle *h, pid_t pid);

/* ---- apply.c ---- */

/* Queue an echoed unlink for pending node @n that will never commit, so a
 * watcher who saw its IN_CREATE sees IN_DELETE; unbinds @n. */
void fs__retract(struct fs_state *s, struct fs_inode *n);

/* fs_echo_hooks.done: release what an echo item pinned and free it. */
void fs__echo_item_done(void *data, struct fs_echo_item *it);

#endif /* GOULETTE_FS_STATE_H */
