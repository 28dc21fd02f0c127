/* fs FUSE driver: the libfuse3 low-level session on the caller's libuv loop,
 * every file system operation, write handles, and the wiring of applied
 * changes to cache invalidation and the echo notifier (echo.c).  The ONLY
 * file that includes <fuse_lowlevel.h>.  The tree's content and the meaning
 * of a write belong to the backend (include/goulette/fs.h).
 *
 * Design.
 * - The session fd is non-blocking and polled with uv_poll; requests are
 *   received and processed on the loop.  Requests waiting on the backend
 *   (write, flush, unlink) are answered from the mutation's callback.
 * - Caches.  File attributes are never cached (attr_timeout 0): stat always
 *   asks the backend, so the size is the size cat reads.  Directory
 *   attributes are cached for FS_DIR_ATTR_TIMEOUT (see fs_attr_timeout).  Files
 * are opened with direct_io: no page cache, each read(2)/write(2) is one
 * request, and a write's error reaches write(2).  Positive entries are cached
 * for FS_ENTRY_TIMEOUT, except for a name whose echo create is queued (0, so
 *   the echo thread's O_EXCL open always reaches us); every removal of a
 *   cached name is invalidated (echo thread) or done by the kernel itself.
 * - Notifications.  fuse_lowlevel_notify_inval_entry takes the directory's
 *   inode lock in the kernel.  The loop may not call it: a process holds
 *   that lock between the LOOKUP and the CREATE of open(O_CREAT), and across
 *   an UNLINK that waits for a commit, and the loop is what must answer
 *   them.  All notify calls therefore run on the echo thread, in commit
 *   order, each before the replay of its change.
 * - Write handles.  Bytes written accumulate in the handle; the backend
 *   classifies them after each write: COMPLETE submits them and the write
 *   is answered after commit (or with the error), INCOMPLETE answers at
 *   once and waits for more (submitted at flush, whose error close(2)
 *   returns), an error fails the write and discards them.  A file created
 *   by O_CREAT exists only here (FS_INODE_PENDING) until its first value
 *   commits; created and closed without a write, it submits
 *   FS_MUTATION_CREATE at flush.  A pending name that never commits is
 *   retracted with an echoed unlink, so a watcher who saw IN_CREATE sees
 *   IN_DELETE.
 * - The echo thread is recognised by fuse_req_ctx()->pid == its tid (lookup,
 *   create, open, unlink) and by its handles (write, flush, release): its
 *   requests are acknowledged without proposing anything.  For the name of
 *   the replay in progress a create sees ENOENT and a delete sees a ghost
 *   node, i.e. the state before the change.
 */
#define FUSE_USE_VERSION 314

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "goulette/err.h"
#include "goulette/fs.h"

#include "echo.h"
#include "inode.h"
#include "state.h"

#define FS_ENTRY_TIMEOUT 60.0
#define FS_DIR_ATTR_TIMEOUT 1.0
#define FS_RECV_BATCH 64
/* d_ino of a listed name the kernel has not looked up (as libfuse's
 * high-level API reports it). */
#define FS_UNKNOWN_INO 0xffffffffu

#define container_of(ptr, type, member) \
    ((type *)((char *)(ptr)-offsetof(type, member)))

enum fs_op_what {
    FS_OP_WRITE = 1,
    FS_OP_FLUSH = 2,
    FS_OP_UNLINK = 3,
};

/* A request waiting on a backend mutation. */
struct fs_op
{
    struct fs_mutation m; /* handed to the backend */
    struct fs_state *s;
    fuse_req_t req; /* answered in fs_op_done */
    enum fs_op_what what;
    struct fs_handle *h; /* WRITE/FLUSH: the handle (outlives the op) */
    size_t reply_size;   /* WRITE: bytes to acknowledge */
    bool final;          /* FLUSH: the closing process's last fd on it */
    char *path;          /* owned; m.path */
    void *value;         /* owned; m.value.base */
};

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

/* Ours -> the positive errno of a FUSE reply (the fs/ boundary). */
static int fs_errno(int rv)
{
    rv = goulette_errno(rv);
    if (rv < 0 && rv > -4096) {
        return -rv;
    }
    return EIO;
}

/* Files: 0, so stat's size is always what cat reads.  Directories: their
 * attributes change only when a name is created or removed, which the
 * kernel does itself (locally or in the echo notifier's replay) and then
 * invalidates; caching them spares the GETATTR that default_permissions
 * would otherwise send for every path walk through the directory. */
static double fs_attr_timeout(const struct fs_attr *a)
{
    return a->kind == FS_KIND_DIR ? FS_DIR_ATTR_TIMEOUT : 0;
}

static bool fs_is_echo(struct fs_state *s, fuse_req_t req)
{
    int tid = fs__echo_tid(&s->echo);
    return tid != 0 && fuse_req_ctx(req)->pid == tid;
}

static void fs_stat_fill(const struct fs_state *s,
                         uint64_t ino,
                         const struct fs_attr *a,
                         struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = ino;
    if (a->kind == FS_KIND_DIR) {
        st->st_mode = S_IFDIR | (a->writable ? 0755 : s->ro_dir_mode);
        st->st_nlink = 2;
    } else {
        st->st_mode = S_IFREG | (a->writable ? 0644 : s->ro_file_mode);
        st->st_nlink = 1;
        st->st_size = (off_t)a->size;
        st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
    }
    st->st_uid = s->uid;
    st->st_gid = s->gid;
    st->st_blksize = 4096;
    st->st_mtim.tv_sec = (time_t)(a->mtime_ns / 1000000000);
    st->st_mtim.tv_nsec = (long)(a->mtime_ns % 1000000000);
    st->st_atim = st->st_mtim;
    st->st_ctim = st->st_mtim;
}

/* Reply with an entry for @n and count the lookup if the kernel got it. */
static void fs_reply_entry(struct fs_state *s,
                           fuse_req_t req,
                           struct fs_inode *n,
                           const struct fs_attr *a)
{
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = n->ino;
    e.generation = n->generation;
    fs_stat_fill(s, n->ino, a, &e.attr);
    e.attr_timeout = fs_attr_timeout(a);
    /* A ghost's dentry must not outlive the replay it serves. */
    e.entry_timeout = n->echo_creates > 0 || (n->flags & FS_INODE_GHOST)
                          ? 0
                          : FS_ENTRY_TIMEOUT;
    if (fuse_reply_entry(req, &e) == 0) {
        fs_inode_ref(n);
    } else {
        fs_inode_release(&s->inodes, n);
    }
}

static void fs_maybe_finish_close(struct fs_state *s);

/* ------------------------------------------------------------------ */
/* Mutations                                                            */
/* ------------------------------------------------------------------ */

static void fs_op_free(struct fs_op *op)
{
    free(op->path);
    free(op->value);
    free(op);
}

static void fs_op_done(struct fs_mutation *m, int status)
{
    struct fs_op *op = container_of(m, struct fs_op, m);
    struct fs_state *s = op->s;
    struct fs_handle *h = op->h;
    assert(s->ops > 0);
    s->ops--;
    if (status != 0) {
        goulette_logf(s->log, GOULETTE_LOG_INFO, "fs", "%s %s: %s",
                      op->what == FS_OP_UNLINK ? "unlink" : "write", op->path,
                      goulette_strerror(status));
    }
    if (h != NULL) {
        /* Whatever the outcome, the submitted bytes are done with: a
         * failed value is discarded, not retried at flush. */
        h->flags &= ~(unsigned)FS_H_DIRTY;
        h->value_off += h->len;
        h->len = 0;
        if (status == 0) {
            h->flags |= FS_H_COMMITTED;
            if (h->node->flags & FS_INODE_PENDING) {
                /* The store reported the record under another kind of
                 * change; it exists now all the same. */
                fs__pending_clear(s, h->node);
            }
        } else if (op->final && (h->node->flags & FS_INODE_PENDING) &&
                   h->node->pins == 1) {
            /* The last close of a name that never committed: retract it
             * before close(2) returns, so ls no longer shows it. */
            fs__retract(s, h->node);
        }
    }
    switch (op->what) {
    case FS_OP_WRITE:
        if (status == 0) {
            fuse_reply_write(op->req, op->reply_size);
        } else {
            fuse_reply_err(op->req, fs_errno(status));
        }
        break;
    case FS_OP_FLUSH:
    case FS_OP_UNLINK:
        fuse_reply_err(op->req, status == 0 ? 0 : fs_errno(status));
        break;
    }
    fs_op_free(op);
    fs_maybe_finish_close(s);
}

/* Submit a mutation for @req.  On 0, @req is answered by fs_op_done; on an
 * error nothing was submitted and the caller answers.
 * Errors: -ENOMEM, -ESHUTDOWN (closing), the backend's submit errors. */
static int fs_submit(struct fs_state *s,
                     fuse_req_t req,
                     enum fs_op_what what,
                     enum fs_mutation_kind kind,
                     struct fs_handle *h,
                     const char *path,
                     const void *value,
                     size_t len,
                     size_t reply_size)
{
    struct fs_op *op = NULL;
    int rv;
    if (s->closing) {
        return -ESHUTDOWN;
    }
    op = calloc(1, sizeof *op);
    if (op == NULL) {
        return -ENOMEM;
    }
    op->s = s;
    op->req = req;
    op->what = what;
    op->h = h;
    op->reply_size = reply_size;
    op->path = strdup(path);
    if (op->path == NULL) {
        rv = -ENOMEM;
        goto err_op;
    }
    if (len > 0) {
        op->value = malloc(len);
        if (op->value == NULL) {
            rv = -ENOMEM;
            goto err_op;
        }
        memcpy(op->value, value, len);
    }
    op->m.kind = kind;
    op->m.path = op->path;
    op->m.value.base = op->value;
    op->m.value.len = len;
    op->m.new_file = h != NULL && (h->flags & FS_H_CREATED) &&
                     (h->node->flags & FS_INODE_PENDING);
    op->m.cb = fs_op_done;
    op->m.fs_data = s;
    op->final = s->flush_final;
    rv = s->be.submit(s->be.data, &op->m);
    if (rv != 0) {
        goto err_op;
    }
    s->ops++;
    return 0;

err_op:
    fs_op_free(op);
    return rv;
}

/* ------------------------------------------------------------------ */
/* Lookup, attributes, forget                                           */
/* ------------------------------------------------------------------ */

/* Answer a lookup from the echo thread for the name of the replay in
 * progress: the state before the change.  Returns false when the name is
 * not the current replay's (normal lookup then). */
static bool fs_lookup_echo(struct fs_state *s,
                           fuse_req_t req,
                           struct fs_inode *dir,
                           const char *name)
{
    int kind = fs__echo_current(&s->echo, dir->ino, name);
    struct fs_inode *g = NULL;
    struct fs_attr a;
    int rv;
    if (kind == FS_ECHO_CREATE) {
        fuse_reply_err(req, ENOENT);
        return true;
    }
    if (kind != FS_ECHO_DELETE && kind != FS_ECHO_MODIFY) {
        return false;
    }
    if (kind == FS_ECHO_MODIFY) {
        char path[FS_MAX_PATH];
        if (fs__child_path(s, dir, name, path, sizeof path) == 0 &&
            s->be.stat(s->be.data, path, &a) == 0) {
            return false; /* it exists: the normal lookup binds it */
        }
    }
    rv = fs_inode_ghost(&s->inodes, 0, &g);
    if (rv != 0) {
        fuse_reply_err(req, fs_errno(rv));
        return true;
    }
    fs__attr_synthetic(&a);
    fs_reply_entry(s, req, g, &a);
    return true;
}

static void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fs_state *s = fuse_req_userdata(req);
    struct fs_inode *dir = fs_inode_get(&s->inodes, parent);
    struct fs_inode *n;
    struct fs_attr a;
    char path[FS_MAX_PATH];
    int rv;
    if (dir == NULL || !(dir->flags & FS_INODE_DIR)) {
        fuse_reply_err(req, dir == NULL ? ESTALE : ENOTDIR);
        return;
    }
    if (fs_is_echo(s, req) && fs_lookup_echo(s, req, dir, name)) {
        return;
    }
    rv = fs__child_path(s, dir, name, path, sizeof path);
    if (rv != 0) {
        fuse_reply_err(req, fs_errno(rv));
        return;
    }
    n = fs_inode_lookup(&s->inodes, parent, name);
    rv = s->be.stat(s->be.data, path, &a);
    if (rv == -ENOENT && n != NULL && (n->flags & FS_INODE_PENDING)) {
        fs__attr_synthetic(&a);
        fs_reply_entry(s, req, n, &a);
        return;
    }
    if (rv != 0) {
        fuse_reply_err(req, fs_errno(rv));
        return;
    }
    if (n != NULL &&
        ((n->flags & FS_INODE_DIR) != 0) != (a.kind == FS_KIND_DIR)) {
        n = NULL; /* the name changed kind: a new node */
    }
    if (n == NULL) {
        rv = fs_inode_bind(&s->inodes, parent, name,
                           a.kind == FS_KIND_DIR ? FS_INODE_DIR : 0, &n);
        if (rv != 0) {
            fuse_reply_err(req, fs_errno(rv));
            return;
        }
    }
    fs_reply_entry(s, req, n, &a);
}

static void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    struct fs_state *s = fuse_req_userdata(req);
    fs_inode_forget(&s->inodes, ino, nlookup);
    fuse_reply_none(req);
}

static void fs_op_forget_multi(fuse_req_t req,
                               size_t count,
                               struct fuse_forget_data *forgets)
{
    struct fs_state *s = fuse_req_userdata(req);
    size_t i;
    for (i = 0; i < count; i++) {
        fs_inode_forget(&s->inodes, forgets[i].ino, forgets[i].nlookup);
    }
    fuse_reply_none(req);
}

static void fs_reply_attr(struct fs_state *s,
                          fuse_req_t req,
                          struct fs_inode *n)
{
    struct fs_attr a;
    struct stat st;
    int rv = fs__node_attr(s, n, &a);
    if (rv != 0) {
        fuse_reply_err(req, fs_errno(rv));
        return;
    }
    fs_stat_fill(s, n->ino, &a, &st);
    fuse_reply_attr(req, &st, fs_attr_timeout(&a));
}

static void fs_op_getattr(fuse_req_t req,
                          fuse_ino_t ino,
                          struct fuse_file_info *fi)
{
    struct fs_state *s = fuse_req_userdata(req);
    struct fs_inode *n = fs_inode_get(&s->inodes, ino);
    if (n == NULL) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (fi != NULL && n->name == NULL && n->ino != FS_INODE_ROOT) {
        /* fstat of a file removed while open. */
        struct fs_attr a;
        struct stat st;
        fs__attr_synthetic(&a);
        fs_stat_fill(s, n->ino, &a, &st);
        st.st_nlink = 0;
        fuse_reply_attr(req, &st, 0);
        return;
    }
    fs_reply_attr(s, req, n);
}

/* chmod/chown: EPERM.  Times (touch): accepted and ignored, mtimes follow
 * the records.  Size: resizes an open write handle's value (ftruncate);
 * without a handle only a no-op size is accepted, since a record cannot be
 * emptied (EPERM); open(O_TRUNC) arrives with the open (atomic_o_trunc). */
static void fs_op_setattr(fuse_req_t req,
                          fuse_ino_t ino,
                          struct stat *attr,
                          int to_set,
                          struct fuse_file_info *fi)
{
    struct fs_state *s = fuse_req_userdata(req);
    struct fs_inode *n = fs_inode_get(&s->inodes, ino);
    struct fs_handle *h = fi != NULL ? (struct fs_handle *)fi->fh : NULL;
    struct fs_attr a;
    int rv;
    if (n == NULL) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    if (to_set & FUSE_SET_ATTR_SIZE) {
        if (n->flags & FS_INODE_DIR) {
            fuse_reply_err(req, EISDIR);
            return;
        }
        if (h != NULL && (h->flags & FS_H_ECHO)) {
            /* nothing: the echo thread never truncates */
        } else if (h != NULL && (h->flags & FS_H_WRITE)) {
            uint64_t size = (uint64_t)attr->st_size;
            size_t rel = size > h->value_off ? size - h->value_off : 0;
            if (size < h->value_off) {
                h->value_off = size;
            }
            rv = fs__handle_reserve(h, rel);
            if (rv != 0) {
                fuse_reply_err(req, ENOMEM);
                return;
            }
            if (rel > h->len) {
                memset(h->buf + h->len, 0, rel - h->len);
            }
            h->len = rel;
            h->flags |= FS_H_DIRTY | FS_H_WRITTEN;
        } else {
            rv = fs__node_attr(s, n, &a);
            if (rv != 0) {
                fuse_reply_err(req, fs_errno(rv));
                return;
            }
            if (!a.writable) {
                fuse_reply_err(req, EROFS);
                return;
            }
            if (a.size != (uint64_t)attr->st_size) {
                fuse_reply_err(req, EPERM);
                return;
            }
        }
    }
    fs_reply_attr(s, req, n);
}

/* ------------------------------------------------------------------ */
/* Files                                                                */
/* ------------------------------------------------------------------ */

static void fs_file_info_set(struct fuse_file_info *fi, struct fs_handle *h)
{
    fi->fh = (uint64_t)(uintptr_t)h;
    fi->direct_io = 1;
    fi->keep_cache = 0;
}

static void fs_op_open(fuse_req_t req,
                       fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
    struct fs_state *s = fuse_req_userdata(req);
    struct fs_inode *n = fs_inode_get(&s->inodes, ino);
    struct fs_handle *h = NULL;
    int acc = fi->flags & O_ACCMODE;
    unsigned flags = 0;
    struct fs_attr a;
    int rv;
    if (n == NULL) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (n->flags & FS_INODE_DIR) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    if (fs_is_echo(s, req)) {
        flags = FS_H_ECHO;
    } else {
        flags |= acc != O_WRONLY ? FS_H_READ : 0;
        flags |= acc != O_RDONLY ? FS_H_WRITE : 0;
        if (flags & FS_H_WRITE) {
            rv = fs__node_attr(s, n, &a);
            if (rv != 0) {
                fuse_reply_err(req, fs_errno(rv));
                return;
            }
            if (!a.writable || (n->flags & FS_INODE_GHOST)) {
                fuse_reply_err(req, EROFS);
                return;
            }
        }
    }
    h = fs__handle_new(s, n, flags);
    if (h == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    /* Reads see the record as of open(2); a write without O_TRUNC edits
     * that content at the written offsets. */
    if (!(flags & FS_H_ECHO) &&
        ((flags & FS_H_READ) || !(fi->flags & O_TRUNC))) {
        rv = fs__handle_snapshot(s, h);
        if (rv != 0) {
            fs__handle_free(s, h);
            fuse_reply_err(req, fs_errno(rv));
            return;
        }
    }
    if ((flags & FS_H_WRITE) && (fi->flags & O_TRUNC)) {
        h->len = 0;
    }
    fs_file_info_set(fi, h);
    /* Nothing to do at close for readers and for the echo thread: spare
     * the FLUSH round trip (cat of every file). */
    fi->noflush = (flags & FS_H_ECHO) || !(flags & FS_H_WRITE);
    if (fuse_reply_open(req, fi) != 0) {
        fs__handle_free(s, h);
    }
}

/* A create from the echo thread: answer with the node the change created
 * (bound by fs_changes_applied) and an echo handle. */
static void fs_create_echo(struct fs_state *s,
                           fuse_req_t req,
                           struct fs_inode *dir,
                           const char *name,
                           struct fuse_file_info *fi)
{
    struct fuse_entry_param e;
    struct fs_inode *n = fs_inode_lookup(&s->inodes, dir->ino, name);
    struct fs_handle *h;
    struct fs_attr a;
    int rv;
    if (n == NULL || fs__node_attr(s, n, &a) != 0) {
        rv = fs_inode_ghost(&s->inodes, 0, &n);
        if (rv != 0) {
            fuse_reply_err(req, fs_errno(rv));
            return;
        }
        fs__attr_synthetic(&a);
    }
    h = fs__handle_new(s, n, FS_H_ECHO);
    if (h == NULL) {
        fs_inode_release(&s->inodes, n);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    memset(&e, 0, sizeof e);
    e.ino = n->ino;
    e.generation = n->generation;
    fs_stat_fill(s, n->ino, &a, &e.attr);
    e.attr_timeout = 0;
    /* A ghost (the record went away before this replay) must not stay
     * visible to others through a cached dentry. */
    e.entry_timeout = n->echo_creates > 1 || (n->flags & FS_INODE_GHOST)
                          ? 0
                          : FS_ENTRY_TIMEOUT;
    fs_file_info_set(fi, h);
    if (fuse_reply_create(req, &e, fi) == 0) {
        fs_inode_ref(n);
    } else {
        fs__handle_free(s, h);
    }
}

static void fs_op_create(fuse_req_t req,
                         fuse_ino_t parent,
                         const char *name,
                         mode_t mode,
                         struct fuse_file_info *fi)
{
    struct fs_state *s = fuse_req_userdata(req);
    struct fs_inode *dir = fs_inode_get(&s->inodes, parent);
    struct fs_inode *n = NULL;
    struct fs_handle *h = NULL;
    struct fuse_entry_param e;
    struct fs_attr a;
    char dpath[FS_MAX_PATH];
    char path[FS_MAX_PATH];
    int acc = fi->flags & O_ACCMODE;
    unsigned flags = FS_H_CREATED;
    int rv;
    if (dir == NULL || !(dir->flags & FS_INODE_DIR)) {
        fuse_reply_err(req, dir == NULL ? ESTALE : ENOTDIR);
        return;
    }
    if (fs_is_echo(s, req) &&
        fs__echo_current(&s->echo, parent, name) == FS_ECHO_CREATE) {
        fs_create_echo(s, req, dir, name, fi);
        return;
    }
    if (!S_ISREG(mode)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    if (!fs__dir_writable(s, dir)) {
        fuse_reply_err(req, EROFS);
        return;
    }
    if (fs__node_path(s, dir, dpath, sizeof dpath) != 0 ||
        fs__child_path(s, dir, name, path, sizeof path) != 0) {
        fuse_reply_err(req, ENAMETOOLONG);
        return;
    }
    if (s->be.stat(s->be.data, path, &a) == 0) {
        /* Created elsewhere since our lookup answered ENOENT. */
        fuse_reply_err(req, EEXIST);
        return;
    }
    rv = s->be.check_name(s->be.data, dpath, name);
    if (rv != 0) {
        goulette_logf(s->log, GOULETTE_LOG_INFO, "fs", "create %s: %s", path,
                      goulette_strerror(rv));
        fuse_reply_err(req, fs_errno(rv));
        return;
    }
    rv = fs_inode_bind(&s->inodes, parent, name, FS_INODE_PENDING, &n);
    if (rv != 0) {
        fuse_reply_err(req, fs_errno(rv));
        return;
    }
    flags |= acc != O_WRONLY ? FS_H_READ : 0;
    flags |= acc != O_RDONLY ? FS_H_WRITE : 0;
    h = fs__handle_new(s, n, flags);
    if (h == NULL || fs__pending_add(s, n) != 0) {
        goto err_node;
    }
    memset(&e, 0, sizeof e);
    fs__attr_synthetic(&a);
    e.ino = n->ino;
    e.generation = n->generation;
    fs_stat_fill(s, n->ino, &a, &e.attr);
    e.attr_timeout = 0;
    e.entry_timeout = FS_ENTRY_TIMEOUT;
    fs_file_info_set(fi, h);
    if (fuse_reply_create(req, &e, fi) != 0) {
        fs__pending_clear(s, n);
        fs_inode_unbind(&s->inodes, n);
        fs__handle_free(s, h);
        return;
    }
    fs_inode_ref(n);
    return;

err_node:
    if (h != NULL) {
        fs__handle_free(s, h); /* unpins */
    }
    fs_inode_unbind(&s->inodes, n);
    fuse_reply_err(req, ENOMEM);
}

static void fs_op_read(fuse_req_t req,
                       fuse_ino_t ino,
                       size_t size,
                       off_t off,
                       struct fuse_file_info *fi)
{
    struct fs_handle *h = (struct fs_handle *)fi->fh;
    uint64_t o = (uint64_t)off;
    size_t rel;
    if (h->flags & FS_H_ECHO || o < h->value_off ||
        o - h->value_off >= h->len) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    rel = (size_t)(o - h->value_off);
    if (size > h->len - rel) {
        size = h->len - rel;
    }
    fuse_reply_buf(req, h->buf + rel, size);
}

static void fs_op_write(fuse_req_t req,
                        fuse_ino_t ino,
                        const char *buf,
                        size_t size,
                        off_t off,
                        struct fuse_file_info *fi)
{
    struct fs_state *s = fuse_req_userdata(req);
    struct fs_handle *h = (struct fs_handle *)fi->fh;
    char path[FS_MAX_PATH];
    uint64_t o = (uint64_t)off;
    size_t rel;
    int rv;
    if (h->flags & FS_H_ECHO) {
        fuse_reply_write(req, size);
        return;
    }
    if (!(h->flags & FS_H_WRITE)) {
        fuse_reply_err(req, EBADF);
        return;
    }
    rv = fs__node_path(s, h->node, path, sizeof path);
    if (rv != 0) {
        fuse_reply_err(req, fs_errno(rv));
        return;
    }
    /* After a committed value, the next write starts a new value where it
     * writes; a write before the value's start restarts it there. */
    if (((h->flags & FS_H_COMMITTED) && !(h->flags & FS_H_DIRTY)) ||
        o < h->value_off) {
        h->value_off = o;
        h->len = 0;
    }
    rel = (size_t)(o - h->value_off);
    if (fs__handle_reserve(h, rel + size) != 0) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (rel > h->len) {
        memset(h->buf + h->len, 0, rel - h->len);
    }
    memcpy(h->buf + rel, buf, size);
    if (rel + size > h->len) {
        h->len = rel + size;
    }
    h->flags |= FS_H_WRITTEN | FS_H_DIRTY;
    rv = s->be.classify(s->be.data, path, h->buf, h->len);
    if (rv == FS_VALUE_INCOMPLETE) {
        fuse_reply_write(req, size);
        return;
    }
    if (rv == FS_VALUE_COMPLETE) {
        rv = fs_submit(s, req, FS_OP_WRITE, FS_MUTATION_WRITE, h, path, h->buf,
                       h->len, size);
        if (rv == 0) {
            /* The op owns the bytes now: a flush through another fd of
             * this file must not submit them again. */
            h->flags &= ~(unsigned)FS_H_DIRTY;
            return; /* answered by fs_op_done */
        }
    }
    goulette_logf(s->log, GOULETTE_LOG_INFO, "fs", "write %s: %s", path,
                  goulette_strerror(rv));
    h->flags &= ~(unsigned)FS_H_DIRTY;
    h->value_off += h->len;
    h->len = 0;
    fuse_reply_err(req, fs_errno(rv));
}

static void fs_op_flush(fuse_req_t req,
                        fuse_ino_t ino,
                        struct fuse_file_info *fi)
{
    struct fs_state *s = fuse_req_userdata(req);
    struct fs_handle *h = (struct fs_handle *)fi->fh;
    struct fs_inode *n = h->node;
    bool pending = (n->flags & FS_INODE_PENDING) != 0;
    bool final = false;
    char path[FS_MAX_PATH] = "";
    enum fs_mutation_kind kind = FS_MUTATION_WRITE;
    int rv;
    if (h->flags & FS_H_ECHO) {
        fuse_reply_err(req, 0);
        return;
    }
    if ((h->flags & FS_H_DIRTY) && (h->flags & FS_H_COMMITTED) &&
        fs__all_space(h->buf, h->len)) {
        /* A trailing newline written after a complete value. */
        h->flags &= ~(unsigned)FS_H_DIRTY;
        h->len = 0;
    }
    if ((h->flags & FS_H_DIRTY) && h->len == 0) {
        /* ftruncate(0) and nothing written: a record cannot be emptied
         * (rm removes it).  Nothing is proposed. */
        h->flags &= ~(unsigned)FS_H_DIRTY;
        fuse_reply_err(req, EPERM);
        return;
    }
    if (pending) {
        final = fs__flush_is_final(s, h, fuse_req_ctx(req)->pid);
    }
    if (!(h->flags & FS_H_DIRTY)) {
        if (!pending || !final) {
            /* Nothing to submit; for a pending name another fd of this
             * process remains and a write may follow. */
            fuse_reply_err(req, 0);
            return;
        }
        if ((h->flags & (FS_H_WRITTEN | FS_H_CREATE_SUBMITTED)) ||
            !(h->flags & FS_H_CREATED)) {
            /* Its value failed: the name goes now, not at release. */
            if (n->pins == 1) {
                fs__retract(s, n);
            }
            fuse_reply_err(req, 0);
            return;
        }
        h->flags |= FS_H_CREATE_SUBMITTED;
        kind = FS_MUTATION_CREATE;
    }
    rv = fs__node_path(s, n, path, sizeof path);
    if (rv == 0) {
        s->flush_final = final;
        rv = fs_submit(s, req, FS_OP_FLUSH, kind, h, path,
                       kind == FS_MUTATION_WRITE ? h->buf : NULL,
                       kind == FS_MUTATION_WRITE ? h->len : 0, 0);
        s->flush_final = false;
    }
    if (rv == 0) {
        return; /* answered by fs_op_done */
    }
    h->flags &= ~(unsigned)FS_H_DIRTY;
    h->len = 0;
    goulette_logf(s->log, GOULETTE_LOG_INFO, "fs", "close %s: %s", path,
                  goulette_strerror(rv));
    if (final && (n->flags & FS_INODE_PENDING) && n->pins == 1) {
        fs__retract(s, n);
    }
    fuse_reply_err(req, fs_errno(rv));
}

static void fs_op_release(fuse_req_t req,
                          fuse_ino_t ino,
                          struct fuse_file_info *fi)
{
    struct fs_state *s = fuse_req_userdata(req);
    struct fs_handle *h = (struct fs_handle *)fi->fh;
    struct fs_inode *n = h->node;
    if (!(h->flags & FS_H_ECHO) && (n->flags & FS_INODE_PENDING) &&
        n->pins == 1) {
        fs__retract(s, n);
    }
    fs__handle_free(s, h);
    fuse_reply_err(req, 0);
}

static void fs_op_fsync(fuse_req_t req,
                        fuse_ino_t ino,
                        int datasync,
                        struct fuse_file_info *fi)
{
    /* Committed values are durable when their write returns. */
    fuse_reply_err(req, 0);
}

static void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fs_state *s = fuse_req_userdata(req);
    struct fs_inode *dir = fs_inode_get(&s->inodes, parent);
    struct fs_inode *n;
    struct fs_attr a;
    char path[FS_MAX_PATH];
    int rv;
    if (dir == NULL) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (fs_is_echo(s, req)) {
        fuse_reply_err(req, 0); /* the change is already applied */
        return;
    }
    if (!fs__dir_writable(s, dir)) {
        fuse_reply_err(req, EROFS);
        return;
    }
    n = fs_inode_lookup(&s->inodes, parent, name);
    if (n != NULL && (n->flags & FS_INODE_PENDING)) {
        fuse_reply_err(req, EBUSY); /* being created through an open fd */
        return;
    }
    rv = fs__child_path(s, dir, name, path, sizeof path);
    if (rv == 0) {
        rv = s->be.stat(s->be.data, path, &a);
    }
    if (rv == 0 && a.kind == FS_KIND_DIR) {
        rv = -EISDIR;
    }
    if (rv == 0) {
        rv = fs_submit(s, req, FS_OP_UNLINK, FS_MUTATION_REMOVE, NULL, path,
                       NULL, 0, 0);
    }
    if (rv != 0) {
        goulette_logf(s->log, GOULETTE_LOG_INFO, "fs", "unlink %s: %s", path,
                      goulette_strerror(rv));
        fuse_reply_err(req, fs_errno(rv));
    }
}

/* mkdir, rmdir, mknod, symlink, link, rename: the tree's shape is fixed and
 * records are created by writing them.  EROFS in a read-only directory,
 * EPERM ("not supported here") elsewhere. */
static void fs_reply_unsupported(fuse_req_t req, fuse_ino_t parent)
{
    struct fs_state *s = fuse_req_userdata(req);
    struct fs_inode *dir = fs_inode_get(&s->inodes, parent);
    if (dir == NULL) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    fuse_reply_err(req, fs__dir_writable(s, dir) ? EPERM : EROFS);
}

static void fs_op_mkdir(fuse_req_t req,
                        fuse_ino_t parent,
                        const char *name,
                        mode_t mode)
{
    fs_reply_unsupported(req, parent);
}

static void fs_op_mknod(fuse_req_t req,
                        fuse_ino_t parent,
                        const char *name,
                        mode_t mode,
                        dev_t rdev)
{
    fs_reply_unsupported(req, parent);
}

static void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fs_reply_unsupported(req, parent);
}

static void fs_op_symlink(fuse_req_t req,
                          const char *link,
                          fuse_ino_t parent,
                          const char *name)
{
    fs_reply_unsupported(req, parent);
}

static void fs_op_link(fuse_req_t req,
                       fuse_ino_t ino,
                       fuse_ino_t newparent,
                       const char *newname)
{
    fs_reply_unsupported(req, newparent);
}

static void fs_op_rename(fuse_req_t req,
                         fuse_ino_t parent,
                         const char *name,
                         fuse_ino_t newparent,
                         const char *newname,
                         unsigned int flags)
{
    struct fs_state *s = fuse_req_userdata(req);
    struct fs_inode *a = fs_inode_get(&s->inodes, parent);
    if (a != NULL && !fs__dir_writable(s, a)) {
        fuse_reply_err(req, EROFS);
        return;
    }
    fs_reply_unsupported(req, newparent);
}

/* ------------------------------------------------------------------ */
/* Directories                                                          */
/* ------------------------------------------------------------------ */

static int fs_dir_emit(void *ctx, const char *name, enum fs_kind kind)
{
    return fs__dir_add(ctx, name, kind);
}

static void fs_op_opendir(fuse_req_t req,
                          fuse_ino_t ino,
                          struct fuse_file_info *fi)
{
    struct fs_state *s = fuse_req_userdata(req);
    struct fs_inode *n = fs_inode_get(&s->inodes, ino);
    struct fs_dir_handle *d;
    char path[FS_MAX_PATH];
    size_t i;
    size_t listed;
    int rv;
    if (n == NULL || !(n->flags & FS_INODE_DIR)) {
        fuse_reply_err(req, n == NULL ? ESTALE : ENOTDIR);
        return;
    }
    d = calloc(1, sizeof *d);
    if (d == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    d->ino = n->ino;
    d->next = s->dirs;
    if (d->next != NULL) {
        d->next->prev = d;
    }
    s->dirs = d;
    rv = fs__node_path(s, n, path, sizeof path);
    if (rv == 0) {
        rv = fs__dir_add(d, ".", FS_KIND_DIR);
    }
    if (rv == 0) {
        rv = fs__dir_add(d, "..", FS_KIND_DIR);
    }
    if (rv == 0) {
        rv = s->be.list(s->be.data, path, fs_dir_emit, d);
    }
    /* Names being created through this mount exist here before the
     * store has them. */
    listed = d->n;
    for (i = 0; rv == 0 && i < s->npending; i++) {
        struct fs_inode *p = s->pending[i];
        size_t j;
        bool dup = false;
        if (p->parent != n->ino || p->name == NULL) {
            continue;
        }
        for (j = 2; j < listed && !dup; j++) {
            dup = strcmp(d->names[j], p->name) == 0;
        }
        if (!dup) {
            rv = fs__dir_add(d, p->name, FS_KIND_FILE);
        }
    }
    if (rv != 0) {
        fs__dir_handle_free(s, d);
        fuse_reply_err(req, fs_errno(rv));
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)d;
    fi->cache_readdir = 0;
    if (fuse_reply_open(req, fi) != 0) {
        fs__dir_handle_free(s, d);
    }
}

static void fs_op_readdir(fuse_req_t req,
                          fuse_ino_t ino,
                          size_t size,
                          off_t off,
                          struct fuse_file_info *fi)
{
    struct fs_state *s = fuse_req_userdata(req);
    struct fs_dir_handle *d = (struct fs_dir_handle *)fi->fh;
    char *buf;
    size_t used = 0;
    size_t i;
    buf = malloc(size);
    if (buf == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    for (i = (size_t)off; i < d->n; i++) {
        struct stat st;
        struct fs_inode *c;
        size_t need;
        memset(&st, 0, sizeof st);
        st.st_mode = d->kinds[i] == FS_KIND_DIR ? S_IFDIR : S_IFREG;
        if (i == 0) {
            st.st_ino = d->ino;
        } else if (i == 1) {
            c = fs_inode_get(&s->inodes, d->ino);
            st.st_ino = c != NULL && c->parent != 0 ? c->parent : d->ino;
        } else {
            c = fs_inode_lookup(&s->inodes, d->ino, d->names[i]);
            st.st_ino = c != NULL ? c->ino : FS_UNKNOWN_INO;
        }
        need = fuse_add_direntry(req, buf + used, size - used, d->names[i], &st,
                                 (off_t)(i + 1));
        if (need > size - used) {
            break;
        }
        used += need;
    }
    fuse_reply_buf(req, buf, used);
    free(buf);
}

static void fs_op_releasedir(fuse_req_t req,
                             fuse_ino_t ino,
                             struct fuse_file_info *fi)
{
    struct fs_state *s = fuse_req_userdata(req);
    fs__dir_handle_free(s, (struct fs_dir_handle *)fi->fh);
    fuse_reply_err(req, 0);
}

/* ------------------------------------------------------------------ */
/* Extended attributes, statfs                                          */
/* ------------------------------------------------------------------ */

struct fs_xattr_ctx
{
    const char *want; /* getxattr: the name sought; NULL for list */
    char *out;        /* value found / names, malloc'd */
    size_t len;
    bool found;
};

static int fs_xattr_emit(void *ctx,
                         const char *name,
                         const void *value,
                         size_t len)
{
    struct fs_xattr_ctx *x = ctx;
    size_t nl = strlen(name) + 1;
    char *p;
    if (x->want != NULL) {
        if (x->found || strcmp(name, x->want) != 0) {
            return 0;
        }
        x->out = malloc(len > 0 ? len : 1);
        if (x->out == NULL) {
            return -ENOMEM;
        }
        memcpy(x->out, value, len);
        x->len = len;
        x->found = true;
        return 0;
    }
    p = realloc(x->out, x->len + nl);
    if (p == NULL) {
        return -ENOMEM;
    }
    memcpy(p + x->len, name, nl);
    x->out = p;
    x->len += nl;
    return 0;
}

static void fs_xattr_run(fuse_req_t req,
                         fuse_ino_t ino,
                         const char *want,
                         size_t size)
{
    struct fs_state *s = fuse_req_userdata(req);
    struct fs_inode *n = fs_inode_get(&s->inodes, ino);
    struct fs_xattr_ctx x = {want, NULL, 0, false};
    char path[FS_MAX_PATH];
    int rv = 0;
    if (n == NULL) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (want != NULL && strncmp(want, "user.", 5) != 0) {
        /* security.*, system.posix_acl_* (ls -l asks for each file): the
         * backend only has user.* names. */
        fuse_reply_err(req, ENODATA);
        return;
    }
    if (!(n->flags & (FS_INODE_GHOST | FS_INODE_PENDING)) &&
        (n->name != NULL || n->ino == FS_INODE_ROOT)) {
        rv = fs__node_path(s, n, path, sizeof path);
        if (rv == 0) {
            rv = s->be.xattrs(s->be.data, path, fs_xattr_emit, &x);
        }
    }
    if (rv == 0 && want != NULL && !x.found) {
        rv = -ENODATA;
    }
    if (rv != 0) {
        fuse_reply_err(req, fs_errno(rv));
    } else if (size == 0) {
        fuse_reply_xattr(req, x.len);
    } else if (x.len > size) {
        fuse_reply_err(req, ERANGE);
    } else {
        fuse_reply_buf(req, x.out, x.len);
    }
    free(x.out);
}

static void fs_op_getxattr(fuse_req_t req,
                           fuse_ino_t ino,
                           const char *name,
                           size_t size)
{
    fs_xattr_run(req, ino, name, size);
}

static void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    fs_xattr_run(req, ino, NULL, size);
}

/* Revisions are the store's: nobody sets them.  ENOTSUP (not EPERM) lets
 * cp -a and rsync -X carry on. */
static void fs_op_setxattr(fuse_req_t req,
                           fuse_ino_t ino,
                           const char *name,
                           const char *value,
                           size_t size,
                           int flags)
{
    fuse_reply_err(req, ENOTSUP);
}

static void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    fuse_reply_err(req, ENOTSUP);
}

static void fs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct fs_state *s = fuse_req_userdata(req);
    struct statvfs st;
    memset(&st, 0, sizeof st);
    st.f_bsize = 4096;
    st.f_frsize = 4096;
    st.f_files = fs_inode_count(&s->inodes);
    st.f_namemax = 255;
    fuse_reply_statfs(req, &st);
}

static void fs_op_init(void *userdata, struct fuse_conn_info *conn)
{
    /* O_TRUNC arrives with the open instead of as a separate truncate; no
     * writeback cache (each write must reach us and fail visibly). */
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) {
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    }
    conn->want &= ~(unsigned)(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_READDIRPLUS |
                              FUSE_CAP_EXPORT_SUPPORT);
}

static const struct fuse_lowlevel_ops fs_ops = {
    .init = fs_op_init,
    .lookup = fs_op_lookup,
    .forget = fs_op_forget,
    .forget_multi = fs_op_forget_multi,
    .getattr = fs_op_getattr,
    .setattr = fs_op_setattr,
    .mknod = fs_op_mknod,
    .mkdir = fs_op_mkdir,
    .unlink = fs_op_unlink,
    .rmdir = fs_op_rmdir,
    .symlink = fs_op_symlink,
    .rename = fs_op_rename,
    .link = fs_op_link,
    .open = fs_op_open,
    .create = fs_op_create,
    .read = fs_op_read,
    .write = fs_op_write,
    .flush = fs_op_flush,
    .release = fs_op_release,
    .fsync = fs_op_fsync,
    .opendir = fs_op_opendir,
    .readdir = fs_op_readdir,
    .releasedir = fs_op_releasedir,
    .statfs = fs_op_statfs,
    .setxattr = fs_op_setxattr,
    .getxattr = fs_op_getxattr,
    .listxattr = fs_op_listxattr,
    .removexattr = fs_op_removexattr,
};

/* ------------------------------------------------------------------ */
/* Applied changes -> invalidation and echo                             */
/* ------------------------------------------------------------------ */

/* Echo hooks. */

static void fs_echo_inval_entry(void *data, uint64_t parent, const char *name)
{
    struct fs_state *s = data;
    fuse_lowlevel_notify_inval_entry(s->se, parent, name, strlen(name));
}

static void fs_echo_inval_inode(void *data, uint64_t ino)
{
    struct fs_state *s = data;
    /* Attributes only: files are direct_io, there is no page cache. */
    fuse_lowlevel_notify_inval_inode(s->se, ino, -1, 0);
}

static void fs_echo_stopped(void *data)
{
    struct fs_state *s = data;
    s->echo_stopped = true;
    fs_maybe_finish_close(s);
}

/* ------------------------------------------------------------------ */
/* Session on the loop                                                  */
/* ------------------------------------------------------------------ */

static void fs_poll_cb(uv_poll_t *poll, int status, int events)
{
    struct fs_state *s = poll->data;
    int i;
    int rv;
    for (i = 0; i < FS_RECV_BATCH; i++) {
        rv = fuse_session_receive_buf(s->se, s->recv);
        if (rv == -EAGAIN || rv == -EINTR) {
            break;
        }
        if (rv <= 0 || fuse_session_exited(s->se)) {
            /* ENODEV: unmounted from outside or aborted. */
            if (s->polling) {
                uv_poll_stop(&s->poll);
                s->polling = false;
            }
            goulette_logf(s->log, GOULETTE_LOG_WARN, "fs",
                          "mount %s went away (%s)", s->mountpoint,
                          rv < 0 ? goulette_strerror(rv) : "unmounted");
            if (!s->closing && !s->unmounted_reported && s->unmounted) {
                s->unmounted_reported = true;
                s->unmounted(s->fs);
            }
            return;
        }
        fuse_session_process_buf(s->se, s->recv);
    }
}

static void fs_state_free(struct fs_state *s)
{
    /* Files still open when the connection went away are never
     * released by the kernel. */
    while (s->handles != NULL) {
        fs__handle_free(s, s->handles);
    }
    while (s->dirs != NULL) {
        fs__dir_handle_free(s, s->dirs);
    }
    fs_inode_fini(&s->inodes);
    free(s->pending);
    if (s->recv != NULL) {
        free(s->recv->mem);
        free(s->recv);
    }
    free(s->mountpoint);
    free(s);
}

static void fs_handle_closed(uv_handle_t *h)
{
    struct fs_state *s = h->data;
    struct fs *fs = s->fs;
    void (*cb)(struct fs *) = s->close_cb;
    assert(s->closing_handles > 0);
    if (--s->closing_handles > 0) {
        return;
    }
    /* fuse_kern_unmount closes the fd first (aborting the connection, so
     * nothing blocks), then detaches the mount. */
    fuse_session_unmount(s->se);
    fuse_session_destroy(s->se);
    goulette_logf(s->log, GOULETTE_LOG_INFO, "fs", "unmounted %s",
                  s->mountpoint);
    fs_state_free(s);
    fs->state = NULL;
    cb(fs);
}

static void fs_maybe_finish_close(struct fs_state *s)
{
    if (!s->closing || !s->echo_stopped || s->ops > 0 ||
        s->closing_handles > 0) {
        return;
    }
    if (s->polling) {
        uv_poll_stop(&s->poll);
        s->polling = false;
    }
    s->closing_handles = 2;
    uv_close((uv_handle_t *)&s->poll, fs_handle_closed);
    s->echo.async.data = s;
    fs__echo_close(&s->echo, fs_handle_closed);
}

static int fs_session_start(struct fs_state *s, const struct fs_config *cfg)
{
    char opts[512];
    char *argv[] = {"goulettefs", "-o", opts, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(3, argv);
    int fd;
    int rv;
    snprintf(opts, sizeof opts,
             "fsname=goulettefs,subtype=goulettefs,default_permissions%s",
             cfg->allow_other ? ",allow_other" : "");
    s->se = fuse_session_new(&args, &fs_ops, sizeof fs_ops, s);
    fuse_opt_free_args(&args);
    if (s->se == NULL) {
        return -EIO;
    }
    if (fuse_session_mount(s->se, s->mountpoint) != 0) {
        fuse_session_destroy(s->se);
        s->se = NULL;
        return -EIO;
    }
    fd = fuse_session_fd(s->se);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        rv = -errno;
        goto err_mount;
    }
    rv = uv_poll_init(s->loop, &s->poll, fd);
    if (rv != 0) {
        rv = -EIO;
        goto err_mount;
    }
    s->poll.data = s;
    return 0;

err_mount:
    fuse_session_unmount(s->se);
    fuse_session_destroy(s->se);
    s->se = NULL;
    return rv;
}

/* The mount point must be a directory.  A dead mount left there by a
 * daemon that was killed (ENOTCONN) is detached first, so
 * that a restart after kill -9 just works; that needs root, otherwise the
 * error says what to run. */
static int fs_mountpoint_check(const char *path, const struct goulette_log *log)
{
    struct statvfs vfs;
    struct stat st;
    int rv;
    /* statfs always reaches a FUSE daemon (stat may be answered from the
     * attribute cache), so it tells a dead mount. */
    if (stat(path, &st) != 0 || statvfs(path, &vfs) != 0) {
        rv = -errno;
        if (rv != -ENOTCONN) {
            return rv;
        }
        if (umount2(path, MNT_DETACH) != 0) {
            rv = -errno;
            goulette_logf(log, GOULETTE_LOG_ERROR, "fs",
                          "%s: a dead mount is in the way and cannot be "
                          "detached (%s): run fusermount3 -u -z %s",
                          path, goulette_strerror(rv), path);
            return -ENOTCONN;
        }
        goulette_logf(log, GOULETTE_LOG_WARN, "fs",
                      "%s: detached a dead mount left by a previous run", path);
        if (stat(path, &st) != 0) {
            return -errno;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        return -ENOTDIR;
    }
    return 0;
}

int fs_init(struct fs *fs, uv_loop_t *loop, const struct fs_config *cfg)
{
    struct fs_state *s = NULL;
    struct fs_echo_hooks hooks;
    int rv;
    const struct fs_backend *b = &cfg->backend;
    if (cfg->mountpoint == NULL || b->stat == NULL || b->read == NULL ||
        b->list == NULL || b->xattrs == NULL || b->check_name == NULL ||
        b->classify == NULL || b->submit == NULL) {
        return -EINVAL;
    }
    rv = fs_mountpoint_check(cfg->mountpoint, cfg->log);
    if (rv != 0) {
        return rv;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        return -ENOMEM;
    }
    s->recv = calloc(1, sizeof *s->recv);
    if (s->recv == NULL) {
        free(s);
        return -ENOMEM;
    }
    s->fs = fs;
    s->loop = loop;
    s->be = *b;
    s->log = cfg->log;
    s->unmounted = cfg->unmounted;
    s->uid = getuid();
    s->gid = getgid();
    /* The echo thread runs as the daemon's user and must pass the kernel's
     * permission check to replay changes in read-only places: root always
     * does; any other user needs the owner's write bit. */
    s->ro_file_mode = geteuid() == 0 ? 0444 : 0644;
    s->ro_dir_mode = geteuid() == 0 ? 0555 : 0755;
    s->mountpoint = realpath(cfg->mountpoint, NULL);
    if (s->mountpoint == NULL) {
        rv = -errno;
        goto err_state;
    }
    rv = fs_inode_init(&s->inodes, NULL);
    if (rv != 0) {
        goto err_state;
    }
    rv = fs_session_start(s, cfg);
    if (rv != 0) {
        goto err_inodes;
    }
    hooks.inval_entry = fs_echo_inval_entry;
    hooks.inval_inode = fs_echo_inval_inode;
    hooks.done = fs__echo_item_done;
    hooks.stopped = fs_echo_stopped;
    hooks.data = s;
    rv = fs__echo_init(&s->echo, loop, &hooks, cfg->log);
    if (rv != 0) {
        goto err_session;
    }
    rv = uv_poll_start(&s->poll, UV_READABLE, fs_poll_cb);
    if (rv != 0) {
        /* Unreachable in practice (the fd is valid); the thread must go. */
        fs__echo_stop(&s->echo);
        rv = -EIO;
        goto err_session;
    }
    s->polling = true;
    fs->state = s;
    goulette_logf(s->log, GOULETTE_LOG_INFO, "fs", "mounted %s%s",
                  s->mountpoint, cfg->allow_other ? " (allow_other)" : "");
    return 0;

err_session:
    /* Only when the echo thread could not start.  The poll handle (and the
     * echo's async handle) live in @s and close on a later loop turn, so
     * @s is deliberately leaked rather than freed under them. */
    uv_close((uv_handle_t *)&s->poll, NULL);
    fuse_session_unmount(s->se);
    fuse_session_destroy(s->se);
    fs_inode_fini(&s->inodes);
    free(s->mountpoint);
    assert(rv == -ENOMEM || rv == -EAGAIN || rv == -EIO);
    return rv;
err_inodes:
    fs_inode_fini(&s->inodes);
err_state:
    free(s->mountpoint);
    free(s->recv);
    free(s);
    assert(rv == -ENOMEM || rv == -EIO || rv < 0);
    return rv;
}

int fs_close(struct fs *fs, void (*cb)(struct fs *fs))
{
    struct fs_state *s = fs->state;
    if (s == NULL || s->closing) {
        return -EALREADY;
    }
    s->closing = true;
    s->close_cb = cb;
    goulette_logf(s->log, GOULETTE_LOG_INFO, "fs",
                  "closing %s: %u mutation(s) in flight", s->mountpoint,
                  s->ops);
    fs__echo_stop(&s->echo);
    fs_maybe_finish_close(s);
    return 0;
}
