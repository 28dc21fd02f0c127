/* fs apply: turns the backend's applied changes into the inode table's
 * view (bind, unbind, commit pending names) and into echo items, in commit
 * order: invalidation only for the change the kernel raised itself, a
 * replay for every other one.  Also the retraction of names that never
 * committed.  No FUSE: the echo thread does the notify calls. */
#include <stdio.h>
#include <string.h>

#include "goulette/err.h"

#include "state.h"

/* The directory node of @path's parent, binding missing components (they
 * are directories).  Sets *@name to the last component (inside @path). */
static struct fs_inode *fs_dir_of(struct fs_state *s,
                                  char *path,
                                  const char **name)
{
    struct fs_inode *dir = fs_inode_get(&s->inodes, FS_INODE_ROOT);
    char *p = path;
    char *slash;
    while ((slash = strchr(p, '/')) != NULL) {
        struct fs_inode *c;
        *slash = '\0';
        c = fs_inode_lookup(&s->inodes, dir->ino, p);
        if (c == NULL || !(c->flags & FS_INODE_DIR)) {
            if (fs_inode_bind(&s->inodes, dir->ino, p, FS_INODE_DIR, &c) != 0) {
                *slash = '/';
                return NULL;
            }
        }
        *slash = '/';
        dir = c;
        p = slash + 1;
    }
    *name = p;
    return dir;
}

static void fs_change_one(struct fs_state *s,
                          const struct fs_change *c,
                          bool origin)
{
    char path[FS_MAX_PATH];
    char abs[FS_MAX_PATH + 256];
    const char *name = NULL;
    struct fs_inode *dir;
    struct fs_inode *n;
    struct fs_echo_item *it;
    enum fs_echo_kind kind;
    if (snprintf(path, sizeof path, "%s", c->path) >= (int)sizeof path ||
        path[0] == '\0') {
        return;
    }
    dir = fs_dir_of(s, path, &name);
    if (dir == NULL) {
        goulette_logf(s->log, GOULETTE_LOG_WARN, "fs",
                      "change %s: no memory, no event", c->path);
        return;
    }
    fs_inode_pin(dir); /* held by the item below, or released at the end */
    n = fs_inode_lookup(&s->inodes, dir->ino, name);
    switch (c->kind) {
    case FS_CHANGE_CREATE:
        if (n != NULL && (n->flags & FS_INODE_PENDING)) {
            fs__pending_clear(s, n); /* committed: now the store's */
        } else if (n != NULL && !origin) {
            fs_inode_unbind(&s->inodes, n); /* stale binding */
            n = NULL;
        }
        break;
    case FS_CHANGE_DELETE:
        if (n != NULL) {
            fs_inode_unbind(&s->inodes, n);
            n = NULL;
        }
        break;
    case FS_CHANGE_MODIFY:
        break;
    }
    if (origin) {
        /* The kernel raised the events of this change itself; only its
         * attributes need invalidating. */
        if (n == NULL) {
            fs_inode_unpin(&s->inodes, dir);
            return;
        }
        kind = FS_ECHO_INVAL;
    } else {
        kind = c->kind == FS_CHANGE_CREATE   ? FS_ECHO_CREATE
               : c->kind == FS_CHANGE_DELETE ? FS_ECHO_DELETE
                                             : FS_ECHO_MODIFY;
    }
    if (kind == FS_ECHO_CREATE && n == NULL &&
        fs_inode_bind(&s->inodes, dir->ino, name, 0, &n) != 0) {
        n = NULL;
    }
    snprintf(abs, sizeof abs, "%s/%s", s->mountpoint, c->path);
    it = fs__echo_item_new(kind, kind == FS_ECHO_INVAL ? NULL : name,
                           kind == FS_ECHO_INVAL ? NULL : abs);
    if (it == NULL) {
        goulette_logf(s->log, GOULETTE_LOG_WARN, "fs",
                      "change %s: no memory, no event", c->path);
        if (n != NULL) {
            fs_inode_release(&s->inodes, n);
        }
        fs_inode_unpin(&s->inodes, dir);
        return;
    }
    it->dir = dir;
    it->parent = kind == FS_ECHO_INVAL ? 0 : dir->ino;
    it->ino = n != NULL ? n->ino : 0;
    if (n != NULL) {
        fs_inode_pin(n);
        it->node = n;
        if (kind == FS_ECHO_CREATE) {
            n->echo_creates++;
        }
    }
    fs__echo_push(&s->echo, it);
}

void fs_changes_applied(struct fs *fs,
                        const struct fs_change *changes,
                        size_t n,
                        const struct fs_mutation *origin)
{
    struct fs_state *s = fs->state;
    size_t i;
    if (s == NULL) {
        return; /* closed: nothing is mounted any more */
    }
    for (i = 0; i < n; i++) {
        bool own = origin != NULL && strcmp(origin->path, changes[i].path) == 0;
        fs_change_one(s, &changes[i], own);
    }
}

/* Queue an echoed unlink for a pending name that will never commit, so a
 * watcher who saw its IN_CREATE sees IN_DELETE. */
void fs__retract(struct fs_state *s, struct fs_inode *n)
{
    struct fs_inode *dir = fs_inode_get(&s->inodes, n->parent);
    struct fs_echo_item *it;
    char path[FS_MAX_PATH];
    int len;
    fs__pending_clear(s, n);
    if (dir == NULL || n->name == NULL) {
        return;
    }
    len = snprintf(path, sizeof path, "%s/", s->mountpoint);
    if (fs_inode_path(&s->inodes, n, path + len, sizeof path - (size_t)len) <
        0) {
        return;
    }
    it = fs__echo_item_new(FS_ECHO_DELETE, n->name, path);
    if (it != NULL) {
        it->parent = dir->ino;
        it->dir = dir;
        fs_inode_pin(dir);
        fs__echo_push(&s->echo, it);
    }
    fs_inode_unbind(&s->inodes, n);
}

void fs__echo_item_done(void *data, struct fs_echo_item *it)
{
    struct fs_state *s = data;
    struct fs_inode *n = it->node;
    if (n != NULL) {
        if (it->kind == FS_ECHO_CREATE && n->echo_creates > 0) {
            n->echo_creates--;
        }
        fs_inode_unpin(&s->inodes, n);
    }
    if (it->dir != NULL) {
        fs_inode_unpin(&s->inodes, it->dir);
    }
    fs__echo_item_free(it);
}
