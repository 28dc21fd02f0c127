/* fs_inode: inode numbers, name bindings, lookup counts and generations of
 * the FUSE front end (see inode.h for the invariants).  Pure: memory only,
 * through the allocator hook.
 *
 * Slots: node ino N lives in slots[N - 1].  A freed slot goes on a stack and
 * is reused by the next new node, whose generation is one more than the
 * slot's previous one.  Names: a chained hash on (parent ino, name) holds
 * exactly the bound nodes. */
#include "inode.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FS_INODE_MIN_BUCKETS 64
#define FS_INODE_MAX_DEPTH 64

static void *fs_inode_malloc(struct fs_inode_table *t, size_t size)
{
    if (t->alloc.malloc != NULL) {
        return t->alloc.malloc(t->alloc.data, size);
    }
    return malloc(size);
}

static void fs_inode_free(struct fs_inode_table *t, void *p)
{
    if (p == NULL) {
        return;
    }
    if (t->alloc.free != NULL) {
        t->alloc.free(t->alloc.data, p);
        return;
    }
    free(p);
}

/* Grow an array of @elem-byte elements from @n to @m elements; the old
 * contents are copied.  Returns NULL (old array untouched) on failure. */
static void *fs_inode_grow(struct fs_inode_table *t,
                           void *old,
                           size_t n,
                           size_t m,
                           size_t elem)
{
    void *p = fs_inode_malloc(t, m * elem);
    if (p == NULL) {
        return NULL;
    }
    memset(p, 0, m * elem);
    if (old != NULL) {
        memcpy(p, old, n * elem);
    }
    return p;
}

static uint64_t fs_inode_hash(uint64_t parent, const char *name)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    unsigned i;
    for (i = 0; i < 8; i++) {
        h ^= (parent >> (8 * i)) & 0xff;
        h *= 1099511628211ull;
    }
    for (; *name != '\0'; name++) {
        h ^= (unsigned char)*name;
        h *= 1099511628211ull;
    }
    return h;
}

static void fs_inode_hash_insert(struct fs_inode_table *t, struct fs_inode *n)
{
    size_t b = fs_inode_hash(n->parent, n->name) & (t->nbuckets - 1);
    n->hnext = t->buckets[b];
    t->buckets[b] = n;
    t->nbound++;
}

static void fs_inode_hash_remove(struct fs_inode_table *t, struct fs_inode *n)
{
    size_t b = fs_inode_hash(n->parent, n->name) & (t->nbuckets - 1);
    struct fs_inode **pp = &t->buckets[b];
    while (*pp != NULL && *pp != n) {
        pp = &(*pp)->hnext;
    }
    assert(*pp == n);
    *pp = n->hnext;
    n->hnext = NULL;
    t->nbound--;
}

/* Double the bucket array when the load passes 1.  Failure is harmless:
 * chains just get longer. */
static void fs_inode_hash_maybe_grow(struct fs_inode_table *t)
{
    struct fs_inode **nb;
    size_t m = t->nbuckets * 2;
    size_t i;
    if (t->nbound < t->nbuckets) {
        return;
    }
    nb = fs_inode_grow(t, NULL, 0, m, sizeof *nb);
    if (nb == NULL) {
        return;
    }
    for (i = 0; i < t->nbuckets; i++) {
        struct fs_inode *n = t->buckets[i];
        while (n != NULL) {
            struct fs_inode *next = n->hnext;
            size_t b = fs_inode_hash(n->parent, n->name) & (m - 1);
            n->hnext = nb[b];
            nb[b] = n;
            n = next;
        }
    }
    fs_inode_free(t, t->buckets);
    t->buckets = nb;
    t->nbuckets = m;
}

/* Reserve a slot for a new node.  Returns the slot index or -ENOMEM. */
static long fs_inode_slot_take(struct fs_inode_table *t)
{
    struct fs_inode **slots;
    uint64_t *gens;
    uint64_t *fl;
    size_t m;
    if (t->nfree > 0) {
        t->nfree--;
        return (long)t->free_list[t->nfree];
    }
    if (t->used < t->nslots) {
        return (long)t->used;
    }
    m = t->nslots == 0 ? 64 : t->nslots * 2;
    slots = fs_inode_grow(t, t->slots, t->nslots, m, sizeof *slots);
    gens = fs_inode_grow(t, t->generations, t->nslots, m, sizeof *gens);
    fl = fs_inode_grow(t, t->free_list, t->nfree, m, sizeof *fl);
    if (slots == NULL || gens == NULL || fl == NULL) {
        fs_inode_free(t, slots);
        fs_inode_free(t, gens);
        fs_inode_free(t, fl);
        return -ENOMEM;
    }
    fs_inode_free(t, t->slots);
    fs_inode_free(t, t->generations);
    fs_inode_free(t, t->free_list);
    t->slots = slots;
    t->generations = gens;
    t->free_list = fl;
    t->nslots = m;
    return (long)t->used;
}

/* Put node @n (already allocated, name set or NULL) into @slot. */
static void fs_inode_slot_fill(struct fs_inode_table *t,
                               long slot,
                               struct fs_inode *n)
{
    if ((size_t)slot == t->used) {
        t->used++;
    }
    t->generations[slot]++;
    n->ino = (uint64_t)slot + 1;
    n->generation = t->generations[slot];
    t->slots[slot] = n;
}

static int fs_inode_held(const struct fs_inode *n)
{
    return n->ino == FS_INODE_ROOT || n->nlookup > 0 || n->pins > 0 ||
           n->children > 0;
}

static void fs_inode_destroy(struct fs_inode_table *t, struct fs_inode *n);

/* Drop the binding of @n, releasing its parent's child count (which may free
 * the parent in turn). */
static void fs_inode_detach(struct fs_inode_table *t, struct fs_inode *n)
{
    struct fs_inode *parent;
    if (n->name == NULL) {
        return;
    }
    fs_inode_hash_remove(t, n);
    fs_inode_free(t, n->name);
    n->name = NULL;
    parent = fs_inode_get(t, n->parent);
    n->parent = 0;
    if (parent != NULL) {
        assert(parent->children > 0);
        parent->children--;
        if (!fs_inode_held(parent)) {
            fs_inode_destroy(t, parent);
        }
    }
}

static void fs_inode_destroy(struct fs_inode_table *t, struct fs_inode *n)
{
    uint64_t slot = n->ino - 1;
    assert(n->ino != FS_INODE_ROOT);
    fs_inode_detach(t, n);
    t->slots[slot] = NULL;
    t->free_list[t->nfree++] = slot;
    fs_inode_free(t, n);
}

static int fs_inode_maybe_free(struct fs_inode_table *t, struct fs_inode *n)
{
    if (fs_inode_held(n)) {
        return 0;
    }
    fs_inode_destroy(t, n);
    return 1;
}

int fs_inode_init(struct fs_inode_table *t, const struct fs_inode_alloc *alloc)
{
    struct fs_inode *root = NULL;
    long slot;
    memset(t, 0, sizeof *t);
    if (alloc != NULL) {
        t->alloc = *alloc;
    }
    t->buckets =
        fs_inode_grow(t, NULL, 0, FS_INODE_MIN_BUCKETS, sizeof *t->buckets);
    if (t->buckets == NULL) {
        goto err;
    }
    t->nbuckets = FS_INODE_MIN_BUCKETS;
    root = fs_inode_malloc(t, sizeof *root);
    if (root == NULL) {
        goto err_buckets;
    }
    memset(root, 0, sizeof *root);
    slot = fs_inode_slot_take(t);
    if (slot < 0) {
        goto err_root;
    }
    assert(slot == 0);
    fs_inode_slot_fill(t, slot, root);
    root->flags = FS_INODE_DIR;
    return 0;

err_root:
    fs_inode_free(t, root);
err_buckets:
    fs_inode_free(t, t->buckets);
err:
    memset(t, 0, sizeof *t);
    return -ENOMEM;
}

void fs_inode_fini(struct fs_inode_table *t)
{
    size_t i;
    for (i = 0; i < t->used; i++) {
        struct fs_inode *n = t->slots[i];
        if (n != NULL) {
            fs_inode_free(t, n->name);
            fs_inode_free(t, n);
        }
    }
    fs_inode_free(t, t->slots);
    fs_inode_free(t, t->generations);
    fs_inode_free(t, t->free_list);
    fs_inode_free(t, t->buckets);
    memset(t, 0, sizeof *t);
}

struct fs_inode *fs_inode_get(const struct fs_inode_table *t, uint64_t ino)
{
    if (ino == 0 || ino > t->used) {
        return NULL;
    }
    return t->slots[ino - 1];
}

struct fs_inode *fs_inode_lookup(const struct fs_inode_table *t,
                                 uint64_t parent,
                                 const char *name)
{
    size_t b = fs_inode_hash(parent, name) & (t->nbuckets - 1);
    struct fs_inode *n;
    for (n = t->buckets[b]; n != NULL; n = n->hnext) {
        if (n->parent == parent && strcmp(n->name, name) == 0) {
            return n;
        }
    }
    return NULL;
}

static int fs_inode_new(struct fs_inode_table *t,
                        const char *name,
                        unsigned flags,
                        struct fs_inode **out)
{
    struct fs_inode *n = NULL;
    char *copy = NULL;
    size_t len;
    long slot;
    n = fs_inode_malloc(t, sizeof *n);
    if (n == NULL) {
        goto err;
    }
    memset(n, 0, sizeof *n);
    if (name != NULL) {
        len = strlen(name);
        copy = fs_inode_malloc(t, len + 1);
        if (copy == NULL) {
            goto err_node;
        }
        memcpy(copy, name, len + 1);
    }
    slot = fs_inode_slot_take(t);
    if (slot < 0) {
        goto err_copy;
    }
    fs_inode_slot_fill(t, slot, n);
    n->name = copy;
    n->flags = flags;
    *out = n;
    return 0;

err_copy:
    fs_inode_free(t, copy);
err_node:
    fs_inode_free(t, n);
err:
    return -ENOMEM;
}

int fs_inode_bind(struct fs_inode_table *t,
                  uint64_t parent,
                  const char *name,
                  unsigned flags,
                  struct fs_inode **out)
{
    struct fs_inode *dir = fs_inode_get(t, parent);
    struct fs_inode *old;
    struct fs_inode *n = NULL;
    int rv;
    if (name[0] == '\0') {
        return -EINVAL;
    }
    if (dir == NULL || !(dir->flags & FS_INODE_DIR) ||
        (dir->ino != FS_INODE_ROOT && dir->name == NULL)) {
        return -ENOENT;
    }
    rv = fs_inode_new(t, name, flags & ~(unsigned)FS_INODE_GHOST, &n);
    if (rv != 0) {
        return rv;
    }
    /* The old binding goes only once the new node exists, so -ENOMEM
     * leaves the table as it was.  Hold the directory across the unbind:
     * dropping the old child must not free it. */
    dir->children++;
    old = fs_inode_lookup(t, parent, name);
    if (old != NULL) {
        fs_inode_unbind(t, old);
    }
    n->parent = parent;
    fs_inode_hash_insert(t, n);
    fs_inode_hash_maybe_grow(t);
    *out = n;
    return 0;
}

int fs_inode_ghost(struct fs_inode_table *t,
                   unsigned flags,
                   struct fs_inode **out)
{
    return fs_inode_new(t, NULL, flags | FS_INODE_GHOST, out);
}

int fs_inode_unbind(struct fs_inode_table *t, struct fs_inode *n)
{
    if (n->ino == FS_INODE_ROOT) {
        return 0;
    }
    fs_inode_detach(t, n);
    return fs_inode_maybe_free(t, n);
}

void fs_inode_ref(struct fs_inode *n)
{
    n->nlookup++;
}

int fs_inode_forget(struct fs_inode_table *t, uint64_t ino, uint64_t nlookup)
{
    struct fs_inode *n = fs_inode_get(t, ino);
    if (n == NULL) {
        return 0;
    }
    n->nlookup = nlookup >= n->nlookup ? 0 : n->nlookup - nlookup;
    if (n->ino == FS_INODE_ROOT) {
        return 0;
    }
    return fs_inode_maybe_free(t, n);
}

void fs_inode_pin(struct fs_inode *n)
{
    n->pins++;
}

int fs_inode_unpin(struct fs_inode_table *t, struct fs_inode *n)
{
    assert(n->pins > 0);
    n->pins--;
    if (n->ino == FS_INODE_ROOT) {
        return 0;
    }
    return fs_inode_maybe_free(t, n);
}

int fs_inode_release(struct fs_inode_table *t, struct fs_inode *n)
{
    if (n->ino == FS_INODE_ROOT) {
        return 0;
    }
    return fs_inode_maybe_free(t, n);
}

int fs_inode_path(const struct fs_inode_table *t,
                  const struct fs_inode *n,
                  char *buf,
                  size_t size)
{
    const struct fs_inode *chain[FS_INODE_MAX_DEPTH];
    size_t depth = 0;
    size_t len = 0;
    size_t i;
    while (n->ino != FS_INODE_ROOT) {
        if (n->name == NULL || depth == FS_INODE_MAX_DEPTH) {
            return -ENOENT;
        }
        chain[depth++] = n;
        n = fs_inode_get(t, n->parent);
        if (n == NULL) {
            return -ENOENT;
        }
    }
    for (i = depth; i > 0; i--) {
        size_t l = strlen(chain[i - 1]->name);
        size_t need = l + (len > 0 ? 1 : 0);
        if (len + need + 1 > size) {
            return -ENAMETOOLONG;
        }
        if (len > 0) {
            buf[len++] = '/';
        }
        memcpy(buf + len, chain[i - 1]->name, l);
        len += l;
    }
    if (size == 0) {
        return -ENAMETOOLONG;
    }
    buf[len] = '\0';
    return (int)len;
}

size_t fs_inode_count(const struct fs_inode_table *t)
{
    return t->used - t->nfree;
}
