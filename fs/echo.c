/* fs echo notifier thread: replays changes through the mount so the kernel
 * raises the inotify events of a local change (design.md "inotify as the
 * watch mechanism").  Owns the queue and the thread; fs/fuse.c owns what an
 * item means for inodes and how requests from this thread are answered. */
#include "echo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "goulette/err.h"

struct fs_echo_item *fs__echo_item_new(enum fs_echo_kind kind,
                                       const char *name,
                                       const char *path)
{
    struct fs_echo_item *it = calloc(1, sizeof *it);
    if (it == NULL) {
        return NULL;
    }
    it->kind = kind;
    if (name != NULL && (it->name = strdup(name)) == NULL) {
        goto err;
    }
    if (path != NULL && (it->path = strdup(path)) == NULL) {
        goto err;
    }
    return it;
err:
    fs__echo_item_free(it);
    return NULL;
}

void fs__echo_item_free(struct fs_echo_item *item)
{
    if (item == NULL) {
        return;
    }
    free(item->name);
    free(item->path);
    free(item);
}

/* Write one byte so that the kernel raises IN_MODIFY (a zero-byte write
 * raises nothing); the FUSE handler acknowledges it without storing it. */
static int fs_echo_write_close(int fd)
{
    int rv = 0;
    if (write(fd, "\n", 1) < 0) {
        rv = -errno;
    }
    if (close(fd) != 0 && rv == 0) {
        rv = -errno;
    }
    return rv;
}

static int fs_echo_replay(struct fs_echo *e, struct fs_echo_item *it)
{
    int fd;
    if (it->parent != 0 && it->name != NULL) {
        e->hooks.inval_entry(e->hooks.data, it->parent, it->name);
    }
    if (it->ino != 0) {
        e->hooks.inval_inode(e->hooks.data, it->ino);
    }
    switch (it->kind) {
    case FS_ECHO_CREATE:
        fd = open(it->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno == EEXIST) {
            /* Lost the race against a cached dentry: still raise the
             * modification events rather than nothing. */
            goulette_logf(e->log, GOULETTE_LOG_WARN, "fs",
                          "echo create %s: exists, replaying as a write",
                          it->path);
            fd = open(it->path, O_WRONLY | O_CLOEXEC);
        }
        if (fd < 0) {
            return -errno;
        }
        return fs_echo_write_close(fd);
    case FS_ECHO_MODIFY:
        fd = open(it->path, O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
            return -errno;
        }
        return fs_echo_write_close(fd);
    case FS_ECHO_DELETE:
        if (unlink(it->path) != 0) {
            return -errno;
        }
        return 0;
    case FS_ECHO_INVAL:
        return 0;
    }
    return -EINVAL;
}

static void fs_echo_main(void *arg)
{
    struct fs_echo *e = arg;
    struct fs_echo_item *it;
    __atomic_store_n(&e->tid, (int)gettid(), __ATOMIC_SEQ_CST);
    uv_mutex_lock(&e->lock);
    uv_cond_broadcast(&e->cond); /* fs__echo_init waits for the tid */
    for (;;) {
        while (e->head == NULL && !e->stop) {
            uv_cond_wait(&e->cond, &e->lock);
        }
        if (e->stop) {
            break;
        }
        it = e->head;
        e->head = it->next;
        if (e->head == NULL) {
            e->tail = NULL;
        }
        it->next = NULL;
        e->current = it;
        uv_mutex_unlock(&e->lock);

        it->result = fs_echo_replay(e, it);
        if (it->result != 0) {
            goulette_logf(e->log, GOULETTE_LOG_WARN, "fs", "echo %d %s: %s",
                          (int)it->kind, it->path != NULL ? it->path : "-",
                          goulette_strerror(it->result));
        }
        e->replays++;

        uv_mutex_lock(&e->lock);
        e->current = NULL;
        if (e->done_tail != NULL) {
            e->done_tail->next = it;
        } else {
            e->done_head = it;
        }
        e->done_tail = it;
        uv_async_send(&e->async);
    }
    e->exited = true;
    uv_mutex_unlock(&e->lock);
    uv_async_send(&e->async);
}

static void fs_echo_deliver(struct fs_echo_item *list,
                            const struct fs_echo_hooks *hooks,
                            int cancel)
{
    while (list != NULL) {
        struct fs_echo_item *next = list->next;
        list->next = NULL;
        if (cancel) {
            list->result = -ECANCELED;
        }
        hooks->done(hooks->data, list);
        list = next;
    }
}

static void fs_echo_async_cb(uv_async_t *async)
{
    struct fs_echo *e = async->data;
    struct fs_echo_item *done;
    struct fs_echo_item *rest = NULL;
    bool exited;
    uv_mutex_lock(&e->lock);
    done = e->done_head;
    e->done_head = e->done_tail = NULL;
    exited = e->exited;
    if (exited) {
        rest = e->head;
        e->head = e->tail = NULL;
    }
    uv_mutex_unlock(&e->lock);
    fs_echo_deliver(done, &e->hooks, 0);
    if (exited && !e->joined) {
        /* The thread set exited as its last action under the lock: the
         * join waits only for it to return. */
        uv_thread_join(&e->thread);
        e->joined = true;
        fs_echo_deliver(rest, &e->hooks, 1);
        e->hooks.stopped(e->hooks.data);
    } else if (e->joined) {
        fs_echo_deliver(rest, &e->hooks, 1);
    }
}

int fs__echo_init(struct fs_echo *e,
                  uv_loop_t *loop,
                  const struct fs_echo_hooks *hooks,
                  const struct goulette_log *log)
{
    int rv;
    memset(e, 0, sizeof *e);
    e->loop = loop;
    e->hooks = *hooks;
    e->log = log;
    rv = uv_mutex_init(&e->lock);
    if (rv != 0) {
        goto err;
    }
    rv = uv_cond_init(&e->cond);
    if (rv != 0) {
        goto err_lock;
    }
    rv = uv_async_init(loop, &e->async, fs_echo_async_cb);
    if (rv != 0) {
        goto err_cond;
    }
    e->async.data = e;
    uv_mutex_lock(&e->lock);
    rv = uv_thread_create(&e->thread, fs_echo_main, e);
    if (rv != 0) {
        uv_mutex_unlock(&e->lock);
        goto err_async;
    }
    while (__atomic_load_n(&e->tid, __ATOMIC_SEQ_CST) == 0) {
        uv_cond_wait(&e->cond, &e->lock);
    }
    uv_mutex_unlock(&e->lock);
    return 0;

err_async:
    /* The handle must still be closed; the caller's loop run does it and
     * nothing references @e afterwards. */
    uv_close((uv_handle_t *)&e->async, NULL);
err_cond:
    uv_cond_destroy(&e->cond);
err_lock:
    uv_mutex_destroy(&e->lock);
err:
    return rv == UV_ENOMEM ? -ENOMEM : -EAGAIN;
}

void fs__echo_push(struct fs_echo *e, struct fs_echo_item *item)
{
    item->next = NULL;
    if (e->joined) {
        /* The thread is gone: hand it back cancelled, now (the async
         * handle may be closing). */
        item->result = -ECANCELED;
        e->hooks.done(e->hooks.data, item);
        return;
    }
    uv_mutex_lock(&e->lock);
    if (e->tail != NULL) {
        e->tail->next = item;
    } else {
        e->head = item;
    }
    e->tail = item;
    uv_cond_signal(&e->cond);
    uv_mutex_unlock(&e->lock);
}

int fs__echo_tid(struct fs_echo *e)
{
    return __atomic_load_n(&e->tid, __ATOMIC_SEQ_CST);
}

int fs__echo_current(struct fs_echo *e, uint64_t parent, const char *name)
{
    int kind = 0;
    uv_mutex_lock(&e->lock);
    if (e->current != NULL && e->current->parent == parent &&
        e->current->name != NULL && strcmp(e->current->name, name) == 0) {
        kind = (int)e->current->kind;
    }
    uv_mutex_unlock(&e->lock);
    return kind;
}

void fs__echo_stop(struct fs_echo *e)
{
    if (e->stopping) {
        return;
    }
    e->stopping = true;
    uv_mutex_lock(&e->lock);
    e->stop = true;
    uv_cond_broadcast(&e->cond);
    uv_mutex_unlock(&e->lock);
}

void fs__echo_close(struct fs_echo *e, uv_close_cb cb)
{
    uv_cond_destroy(&e->cond);
    uv_mutex_destroy(&e->lock);
    uv_close((uv_handle_t *)&e->async, cb);
}
