/* The consistent hash ring: Goulette's Go ring (internal/utils/hash.go),
 * byte for byte.  Pure: no I/O, no clock, no global state.  Used by the
 * store's apply core for placement and by `goulettectl ring`.
 *
 * Ring model (goulette-sentinel.md §2):
 *  - every member (a broker id) owns `vnodes` points, the CRC-32/IEEE of the
 *    string "<id>:<i>" for i = 0..vnodes-1;
 *  - a walk for a key starts at the first point whose hash is >= CRC(key)
 *    (wrapping to the first point) and goes clockwise, yielding each
 *    distinct member once, in encounter order;
 *  - the iterator keeps Go's quirk: when a non-first Next() finds its member
 *    at the point just before the start point, that member is returned
 *    together with an error (STORE_RING_WRAPPED), and every Goulette caller
 *    drops it.
 *
 * Where Go's ring depends on history, this one depends on the member set
 * only: a member can be added once (no duplicate points), removing a member
 * removes all of its points (no ghosts), and when two members share a point
 * hash, the point belongs to the member with the higher `rank` (Go: the
 * member added last).  The store passes the broker record's create revision
 * as the rank, so a ring rebuilt from the store on restart is the ring Go
 * would have built by adding the current brokers in registration order. */
#ifndef GOULETTE_RING_H
#define GOULETTE_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Goulette's sentinel uses 150 virtual nodes per broker. */
#define STORE_RING_VNODES 150

/* Largest vnode count accepted by store_ring_init (keeps point counts and
 * allocations bounded for the operator tool). */
#define STORE_RING_VNODES_MAX 100000

/* Return value of store_ring_iter_next for a member found with Go's
 * "back at the start position" error. */
#define STORE_RING_WRAPPED 1

/* One point on the ring. */
struct store_ring_point
{
    uint32_t hash;   /* CRC-32/IEEE of "<id>:<i>" */
    uint32_t member; /* index into members[] of the member owning it */
};

/* One member: a broker id. */
struct store_ring_member
{
    char *id;      /* owned, NUL-terminated */
    uint64_t rank; /* collision tie-break: the higher rank owns the point */
};

struct store_ring
{
    unsigned vnodes;                   /* points per member */
    struct store_ring_member *members; /* owned; unordered */
    size_t n_members;
    size_t cap_members;
    struct store_ring_point *points; /* owned; sorted by hash when !dirty */
    size_t n_points;
    size_t cap_points;
    bool dirty; /* points need sorting and owner resolution */
};

/* A walk from one key.  Borrows the ring: the ring must not change while an
 * iterator is in use. */
struct store_ring_iter
{
    struct store_ring *ring; /* borrowed */
    size_t start;            /* startIdx in Go */
    size_t curr;             /* currIdx in Go */
    bool started;
    bool *seen; /* owned; one flag per member index */
};

/* CRC-32/IEEE 802.3 (reflected 0xEDB88320, init and xorout 0xFFFFFFFF), the
 * value of Go's crc32.ChecksumIEEE and zlib's crc32(0, ...). */
uint32_t store_ring_crc32(const void *data, size_t len);

/* Continue a CRC: store_ring_crc32_update(0, d, n) == store_ring_crc32(d,n),
 * and feeding the bytes in pieces gives the same value. */
uint32_t store_ring_crc32_update(uint32_t crc, const void *data, size_t len);

/* Initialise an empty ring with @vnodes points per member.
 * Errors: -EINVAL (@vnodes is 0 or above STORE_RING_VNODES_MAX). */
int store_ring_init(struct store_ring *ring, unsigned vnodes);

/* Free everything the ring owns.  The ring can be initialised again. */
void store_ring_fini(struct store_ring *ring);

/* Add member @id (borrowed, copied) with collision rank @rank.
 * Errors: -EEXIST (already a member; the ring is unchanged), -ENOMEM. */
int store_ring_add(struct store_ring *ring, const char *id, uint64_t rank);

/* Remove member @id and all of its points.
 * Errors: -ENOENT (not a member). */
int store_ring_remove(struct store_ring *ring, const char *id);

/* Whether @id is a member. */
bool store_ring_has(const struct store_ring *ring, const char *id);

/* Number of members. */
size_t store_ring_size(const struct store_ring *ring);

/* Start a walk from @key (borrowed; @key_len bytes, not necessarily
 * NUL-terminated).  Sorts the ring if members changed since the last walk.
 * Errors: -ENOMEM. On error there is nothing to clean up. */
int store_ring_iter_init(struct store_ring_iter *it,
                         struct store_ring *ring,
                         const void *key,
                         size_t key_len);

/* Go's Next(): store the next distinct member id in *@id (borrowed from the
 * ring, valid until the ring changes).  Returns 0 with a member, 0 with
 * *@id == NULL at the end of the walk (Go's ""), or STORE_RING_WRAPPED with
 * a member that Go returns together with its wrap error. */
int store_ring_iter_next(struct store_ring_iter *it, const char **id);

/* Go's Reset(): restart the walk at its start point. */
void store_ring_iter_reset(struct store_ring_iter *it);

/* Free the iterator's memory. */
void store_ring_iter_fini(struct store_ring_iter *it);

#endif /* GOULETTE_RING_H */
