/* fs echo notifier: the one thread of fs/ besides the loop.  It owns a FIFO
 * of replays and performs them in order: kernel cache invalidations through
 * hooks (fs/fuse.c wraps fuse_lowlevel_notify_*), then the system calls on
 * the mount that make the kernel raise the inotify events of a change it did
 * not see.  It knows nothing of inodes or the backend.
 *
 *   loop thread                        echo thread
 *   fs__echo_push(item) --queue-->     pop; current = item
 *                                      hooks.inval_entry / inval_inode
 *                                      open/write/close or unlink on the mount
 *                      <--served--     (FUSE handlers see tid + current item)
 *   hooks.done(item)   <--done+async-- current = NULL
 *
 * The echo thread waits only on the loop (its system calls are served
 * there); the loop never waits on it: the lock is held for list operations
 * only.  Items are allocated and freed on the loop. */
#ifndef GOULETTE_FS_ECHO_H
#define GOULETTE_FS_ECHO_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "goulette/log.h"

enum fs_echo_kind {
    FS_ECHO_CREATE = 1, /* open(O_CREAT|O_EXCL|O_WRONLY), write, close */
    FS_ECHO_MODIFY = 2, /* open(O_WRONLY), write, close */
    FS_ECHO_DELETE = 3, /* unlink */
    FS_ECHO_INVAL = 4,  /* invalidation only, no system call */
};

struct fs_echo_item
{
    enum fs_echo_kind kind;
    uint64_t parent; /* directory ino whose entry @name to invalidate; 0 */
    uint64_t ino;    /* inode whose attributes to invalidate; 0 */
    char *name;      /* owned: last path component */
    char *path;      /* owned: absolute path on the mount; NULL for INVAL */
    void *dir;       /* loop only: pinned directory node (fs/fuse.c) */
    void *node;      /* loop only: pinned file node, or NULL */
    int result;      /* set by the echo thread: 0 or a negative errno */
    struct fs_echo_item *next; /* queue link, under fs_echo.lock */
};

struct fs_echo_hooks
{
    /* Echo thread.  Invalidate the kernel's dentry @name in directory
     * @parent / the attributes of @ino.  May block on kernel locks. */
    void (*inval_entry)(void *data, uint64_t parent, const char *name);
    void (*inval_inode)(void *data, uint64_t ino);
    /* Loop thread.  @item was replayed (result set) or dropped at stop
     * (result -ECANCELED); the hook takes it. */
    void (*done)(void *data, struct fs_echo_item *item);
    /* Loop thread.  After fs__echo_stop(): the thread was joined and every
     * item was passed to done. */
    void (*stopped)(void *data);
    void *data;
};

struct fs_echo
{
    uv_loop_t *loop;                /* borrowed */
    struct fs_echo_hooks hooks;     /* copied */
    const struct goulette_log *log; /* borrowed */
    uv_thread_t thread;
    uv_mutex_t lock;           /* protects the lists, current, stop */
    uv_cond_t cond;            /* signalled on push and stop */
    uv_async_t async;          /* echo thread -> loop: done or exited */
    struct fs_echo_item *head; /* queued; under lock */
    struct fs_echo_item *tail;
    struct fs_echo_item *done_head; /* replayed; under lock */
    struct fs_echo_item *done_tail;
    const struct fs_echo_item *current; /* in replay; under lock */
    int tid;                            /* the thread's tid; atomic access */
    bool stop;                          /* under lock */
    bool exited;           /* under lock: the thread left its loop */
    bool joined;           /* loop only */
    bool stopping;         /* loop only: fs__echo_stop() was called */
    unsigned long replays; /* echo thread only: statistics */
};

/* Start the thread.  @loop, @log are borrowed until fs__echo_close's cb;
 * @hooks is copied.  Returns once the thread's tid is known.
 * Errors: -ENOMEM, -EAGAIN (thread or handle creation failed). */
int fs__echo_init(struct fs_echo *e,
                  uv_loop_t *loop,
                  const struct fs_echo_hooks *hooks,
                  const struct goulette_log *log);

/* Queue @item (taken) at the tail.  Loop thread.  Once the thread was
 * joined, the item goes straight back through hooks.done, -ECANCELED. */
void fs__echo_push(struct fs_echo *e, struct fs_echo_item *item);

/* The thread's tid (compare with fuse_req_ctx()->pid); any thread. */
int fs__echo_tid(struct fs_echo *e);

/* The kind of the item in replay when it concerns (@parent, @name), else 0.
 * Loop thread (from a handler serving the echo thread). */
int fs__echo_current(struct fs_echo *e, uint64_t parent, const char *name);

/* Ask the thread to finish the replay in progress and exit; hooks.stopped
 * follows on the loop.  Loop thread; idempotent. */
void fs__echo_stop(struct fs_echo *e);

/* Close the async handle; call after hooks.stopped.  @cb fires on the loop
 * with the handle. */
void fs__echo_close(struct fs_echo *e, uv_close_cb cb);

/* Allocate an item with copies of @name and @path (either may be NULL).
 * Returns NULL on allocation failure. */
struct fs_echo_item *fs__echo_item_new(enum fs_echo_kind kind,
                                       const char *name,
                                       const char *path);
void fs__echo_item_free(struct fs_echo_item *item);

#endif /* GOULETTE_FS_ECHO_H */
