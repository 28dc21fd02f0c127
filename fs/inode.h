/* fs_inode: the pure inode table of the FUSE front end.  It maps inode
 * numbers to (directory, name) bindings, counts the kernel's lookups and
 * hands out generation numbers.  No FUSE, no libuv, no syscalls: fs/fuse.c
 * drives it and tests/unit/fs/test_inode.c links it alone.
 *
 * Invariants:
 * - ino 1 (FS_INODE_ROOT) always exists, is bound to the empty name and is
 *   never freed before fs_inode_fini().
 * - A (parent, name) pair is bound to at most one node.  A node is "bound"
 *   while the front end believes the name refers to it, "unbound" after the
 *   name was removed (or for ghost nodes, which never had one).
 * - A node lives while the kernel holds lookups on it (nlookup > 0), the
 *   front end pins it (pins > 0) or bound children name it as parent.  When
 * both drop to zero the node is freed and its slot may be reused for a later
 * node, with the next generation, so an (ino, generation) pair is never handed
 * out twice.
 */
#ifndef GOULETTE_FS_INODE_H
#define GOULETTE_FS_INODE_H

#include <stddef.h>
#include <stdint.h>

#define FS_INODE_ROOT 1

/* Node flags (bit set). */
enum {
    FS_INODE_DIR = 1u << 0,     /* a directory */
    FS_INODE_PENDING = 1u << 1, /* created through the mount, not committed */
    FS_INODE_GHOST = 1u << 2,   /* stands in for a removed name (echo) */
};

/* Allocator hook, so tests can fail the Nth allocation.  NULL members mean
 * malloc/free. */
struct fs_inode_alloc
{
    void *(*malloc)(void *data, size_t size);
    void (*free)(void *data, void *ptr);
    void *data;
};

struct fs_inode
{
    uint64_t ino;           /* inode number handed to the kernel */
    uint64_t generation;    /* of this slot; bumped on each reuse */
    uint64_t parent;        /* ino of the directory; 0 for root and ghosts */
    char *name;             /* owned; NULL when unbound */
    uint64_t nlookup;       /* kernel lookups not yet forgotten */
    unsigned pins;          /* front-end references (handles, queued echoes) */
    unsigned flags;         /* FS_INODE_* */
    unsigned echo_creates;  /* queued echo creates of this name (fs/fuse.c) */
    unsigned children;      /* bound nodes whose parent is this node */
    struct fs_inode *hnext; /* next in the name hash chain (bound only) */
};

struct fs_inode_table
{
    struct fs_inode_alloc alloc; /* copied at init */
    struct fs_inode **slots;     /* slots[ino - 1]; NULL when free */
    uint64_t *generations;       /* per slot: generation of its last node */
    size_t nslots;               /* capacity of slots/generations */
    size_t used;                 /* slots in use */
    uint64_t *free_list;         /* stack of free slot indexes */
    size_t nfree;                /* entries on free_list */
    struct fs_inode **buckets;   /* name hash: (parent, name) -> node */
    size_t nbuckets;             /* power of two */
    size_t nbound;               /* bound nodes (hash entries) */
};

/* Initialise @t with the root directory.  @alloc is copied; NULL means
 * malloc/free.
 * Errors: -ENOMEM. */
int fs_inode_init(struct fs_inode_table *t, const struct fs_inode_alloc *alloc);

/* Free every node, whatever its counts.  @t may be initialised again. */
void fs_inode_fini(struct fs_inode_table *t);

/* The live node numbered @ino, or NULL when there is none. */
struct fs_inode *fs_inode_get(const struct fs_inode_table *t, uint64_t ino);

/* The node bound to (@parent, @name), or NULL.  @name is borrowed. */
struct fs_inode *fs_inode_lookup(const struct fs_inode_table *t,
                                 uint64_t parent,
                                 const char *name);

/* Create a node bound to (@parent, @name) with @flags and zero counts.  A
 * node already bound to that name is unbound first (and freed if nothing
 * holds it).  @name is copied.  The new node must be referenced (ref or pin)
 * before the caller's next call that may free unreferenced nodes, or be
 * released with fs_inode_release().
 * Errors: -ENOMEM (nothing changed), -ENOENT (@parent is not a live
 * directory), -EINVAL (empty name). */
int fs_inode_bind(struct fs_inode_table *t,
                  uint64_t parent,
                  const char *name,
                  unsigned flags,
                  struct fs_inode **out);

/* Create an unbound node (FS_INODE_GHOST | @flags) with zero counts.
 * Errors: -ENOMEM. */
int fs_inode_ghost(struct fs_inode_table *t,
                   unsigned flags,
                   struct fs_inode **out);

/* Unbind @n from its name (no-op when unbound); frees @n when nothing holds
 * it.  Returns 1 when @n was freed, 0 otherwise. */
int fs_inode_unbind(struct fs_inode_table *t, struct fs_inode *n);

/* Count one kernel lookup of @n (an entry the kernel accepted). */
void fs_inode_ref(struct fs_inode *n);

/* The kernel forgets @nlookup lookups of @ino.  Unknown inos and counts
 * larger than held are tolerated (clamped): the kernel is trusted, but a
 * bug must not corrupt the table.  Returns 1 when the node was freed. */
int fs_inode_forget(struct fs_inode_table *t, uint64_t ino, uint64_t nlookup);

/* Take and drop a front-end reference.  fs_inode_unpin() returns 1 when it
 * freed the node. */
void fs_inode_pin(struct fs_inode *n);
int fs_inode_unpin(struct fs_inode_table *t, struct fs_inode *n);

/* Free @n if nothing holds it (use after a bind or ghost that the caller
 * decided not to hand out).  Returns 1 when freed. */
int fs_inode_release(struct fs_inode_table *t, struct fs_inode *n);

/* Write the path of bound node @n relative to the root ("" for the root,
 * "topics/orders") into @buf of @size bytes, NUL-terminated.  Returns the
 * length, or:
 * Errors: -ENOENT (@n or an ancestor is unbound), -ENAMETOOLONG (@size too
 * small). */
int fs_inode_path(const struct fs_inode_table *t,
                  const struct fs_inode *n,
                  char *buf,
                  size_t size);

/* Number of live nodes, including the root. */
size_t fs_inode_count(const struct fs_inode_table *t);

#endif /* GOULETTE_FS_INODE_H */
