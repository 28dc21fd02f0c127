/* fs tree: the front end's view of what it serves, without FUSE: node
 * paths and attributes (the backend's, or synthetic for names created here
 * and not yet committed), the list of those pending names, open file and
 * directory handles, and the shell-close heuristic of flush. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "state.h"

int64_t fs__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Attributes of a node that has no backend record: a pending create or a
 * ghost. */
void fs__attr_synthetic(struct fs_attr *a)
{
    memset(a, 0, sizeof *a);
    a->kind = FS_KIND_FILE;
    a->writable = true;
    a->size = 0;
    a->mtime_ns = fs__now_ns();
}

int fs__node_path(struct fs_state *s,
                  const struct fs_inode *n,
                  char *buf,
                  size_t size)
{
    int rv = fs_inode_path(&s->inodes, n, buf, size);
    return rv < 0 ? rv : 0;
}

int fs__child_path(struct fs_state *s,
                   const struct fs_inode *dir,
                   const char *name,
                   char *buf,
                   size_t size)
{
    int len = fs_inode_path(&s->inodes, dir, buf, size);
    int n;
    if (len < 0) {
        return len;
    }
    n = snprintf(buf + len, size - (size_t)len, "%s%s", len > 0 ? "/" : "",
                 name);
    if (n < 0 || (size_t)n >= size - (size_t)len) {
        return -ENAMETOOLONG;
    }
    return 0;
}

/* Attributes of @n: the backend's, or synthetic for pending and ghost
 * nodes.  Errors: -ENOENT (record gone), backend errors. */
int fs__node_attr(struct fs_state *s, struct fs_inode *n, struct fs_attr *a)
{
    char path[FS_MAX_PATH];
    int rv;
    if (n->ino == FS_INODE_ROOT) {
        return s->be.stat(s->be.data, "", a);
    }
    if (n->flags & (FS_INODE_GHOST | FS_INODE_PENDING)) {
        fs__attr_synthetic(a);
        return 0;
    }
    if (n->name == NULL) {
        return -ENOENT; /* removed; fstat of an open one is answered apart */
    }
    rv = fs__node_path(s, n, path, sizeof path);
    if (rv != 0) {
        return rv;
    }
    return s->be.stat(s->be.data, path, a);
}

bool fs__dir_writable(struct fs_state *s, struct fs_inode *dir)
{
    struct fs_attr a;
    if (fs__node_attr(s, dir, &a) != 0) {
        return false;
    }
    return a.kind == FS_KIND_DIR && a.writable;
}

int fs__pending_add(struct fs_state *s, struct fs_inode *n)
{
    if (s->npending == s->cap_pending) {
        size_t m = s->cap_pending == 0 ? 8 : s->cap_pending * 2;
        struct fs_inode **p = realloc(s->pending, m * sizeof *p);
        if (p == NULL) {
            return -ENOMEM;
        }
        s->pending = p;
        s->cap_pending = m;
    }
    s->pending[s->npending++] = n;
    return 0;
}

/* Clear FS_INODE_PENDING on @n and drop it from the pending list. */
void fs__pending_clear(struct fs_state *s, struct fs_inode *n)
{
    size_t i;
    n->flags &= ~(unsigned)FS_INODE_PENDING;
    for (i = 0; i < s->npending; i++) {
        if (s->pending[i] == n) {
            s->pending[i] = s->pending[--s->npending];
            return;
        }
    }
}

void fs__handle_free(struct fs_state *s, struct fs_handle *h)
{
    if (h->prev != NULL) {
        h->prev->next = h->next;
    } else {
        s->handles = h->next;
    }
    if (h->next != NULL) {
        h->next->prev = h->prev;
    }
    free(h->buf);
    fs_inode_unpin(&s->inodes, h->node);
    free(h);
}

struct fs_handle *fs__handle_new(struct fs_state *s,
                                 struct fs_inode *n,
                                 unsigned flags)
{
    struct fs_handle *h = calloc(1, sizeof *h);
    if (h == NULL) {
        return NULL;
    }
    h->node = n;
    h->flags = flags;
    fs_inode_pin(n);
    h->next = s->handles;
    if (h->next != NULL) {
        h->next->prev = h;
    }
    s->handles = h;
    return h;
}

int fs__handle_reserve(struct fs_handle *h, size_t need)
{
    char *p;
    size_t m;
    if (need <= h->cap) {
        return 0;
    }
    m = h->cap == 0 ? 256 : h->cap;
    while (m < need) {
        m *= 2;
    }
    p = realloc(h->buf, m);
    if (p == NULL) {
        return -ENOMEM;
    }
    h->buf = p;
    h->cap = m;
    return 0;
}

bool fs__all_space(const char *p, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        if (p[i] != ' ' && p[i] != '\n' && p[i] != '\t' && p[i] != '\r') {
            return false;
        }
    }
    return true;
}

/* Load the current content of @h's node into its buffer. */
int fs__handle_snapshot(struct fs_state *s, struct fs_handle *h)
{
    char path[FS_MAX_PATH];
    struct goulette_buf b = {NULL, 0};
    int rv;
    if (h->node->flags & (FS_INODE_PENDING | FS_INODE_GHOST) ||
        h->node->name == NULL) {
        return 0;
    }
    rv = fs__node_path(s, h->node, path, sizeof path);
    if (rv != 0) {
        return rv;
    }
    rv = s->be.read(s->be.data, path, &b);
    if (rv != 0) {
        return rv;
    }
    h->buf = b.base;
    h->len = b.len;
    h->cap = b.len;
    return 0;
}

void fs__dir_handle_free(struct fs_state *s, struct fs_dir_handle *d)
{
    size_t i;
    if (d->prev != NULL) {
        d->prev->next = d->next;
    } else if (s->dirs == d) {
        s->dirs = d->next;
    }
    if (d->next != NULL) {
        d->next->prev = d->prev;
    }
    for (i = 0; i < d->n; i++) {
        free(d->names[i]);
    }
    free(d->names);
    free(d->kinds);
    free(d);
}

int fs__dir_add(struct fs_dir_handle *d, const char *name, enum fs_kind kind)
{
    if (d->n == d->cap) {
        size_t m = d->cap == 0 ? 32 : d->cap * 2;
        char **names = realloc(d->names, m * sizeof *names);
        unsigned char *kinds;
        if (names == NULL) {
            return -ENOMEM;
        }
        d->names = names;
        kinds = realloc(d->kinds, m);
        if (kinds == NULL) {
            return -ENOMEM;
        }
        d->kinds = kinds;
        d->cap = m;
    }
    d->names[d->n] = strdup(name);
    if (d->names[d->n] == NULL) {
        return -ENOMEM;
    }
    d->kinds[d->n] = (unsigned char)kind;
    d->n++;
    return 0;
}

/* Whether the process closing @h's file (tid @pid) holds no other fd on
 * it.  A shell's "echo 5 > f" opens f, dup2()s the fd to 1 and closes the
 * original: that first flush must not create the record with its default
 * value, since the write follows.  The closing fd has already left the fd
 * table when FLUSH is sent.  readlink() on /proc never enters this mount. */
bool fs__flush_is_final(struct fs_state *s, struct fs_handle *h, pid_t pid)
{
    char want[FS_MAX_PATH + 256];
    char dirpath[64];
    char link[FS_MAX_PATH + 256];
    char fdpath[384];
    struct dirent *e;
    DIR *dir;
    int len;
    bool other = false;
    len = snprintf(want, sizeof want, "%s/", s->mountpoint);
    if (fs_inode_path(&s->inodes, h->node, want + len,
                      sizeof want - (size_t)len) < 0) {
        return true;
    }
    snprintf(dirpath, sizeof dirpath, "/proc/%d/fd", (int)pid);
    dir = opendir(dirpath);
    if (dir == NULL) {
        return true;
    }
    while (!other && (e = readdir(dir)) != NULL) {
        ssize_t n;
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(fdpath, sizeof fdpath, "%s/%s", dirpath, e->d_name);
        n = readlink(fdpath, link, sizeof link - 1);
        if (n > 0) {
            link[n] = '\0';
            other = strcmp(link, want) == 0;
        }
    }
    closedir(dir);
    return !other;
}
