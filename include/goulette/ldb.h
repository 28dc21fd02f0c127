/* A thin driver over one node's LevelDB, shared by the state machine
 * (store/) and the Raft log runtime (raft/).  store/ldb.c is the only module
 * of the project that includes <leveldb/c.h>; LevelDB's errptr strings are
 * logged and converted to our negative codes there, once.
 *
 * Key space of a node's database (docs/store.md):
 *   'M' ...  node metadata (format version), owned by the store
 *   'R' ...  the Raft runtime (log entries, hard state, snapshot metadata)
 *   'S' ...  the state machine
 *
 * Every write is a batch written with sync=true.  Threads: a struct
 * store_ldb may be used from several threads at once (LevelDB allows it);
 * batches, iterators and snapshots belong to one thread each. */
#ifndef GOULETTE_LDB_H
#define GOULETTE_LDB_H

#include <stdbool.h>
#include <stddef.h>

#include "goulette/buf.h"
#include "goulette/log.h"

struct store_ldb;          /* an open database */
struct store_ldb_batch;    /* a write batch */
struct store_ldb_iter;     /* an iterator over a key range */
struct store_ldb_snapshot; /* a consistent read view */

/* Open the database in directory @path (borrowed), creating it if missing,
 * with paranoid checks.  @log is borrowed until close and may be NULL.
 * *@out is returned, caller frees with store_ldb_close.
 * Errors: -ENOMEM, -EIO (I/O error, lock held by another process),
 * GOULETTE_ECORRUPT (corrupt or unreadable database). */
int store_ldb_open(const char *path,
                   const struct goulette_log *log,
                   struct store_ldb **out);

/* Close and free.  Every iterator and snapshot must be released first.
 * NULL is a no-op. */
void store_ldb_close(struct store_ldb *db);

/* Read @key (@klen bytes, borrowed) at @snap (NULL: the latest state).
 * @val->base is returned, caller frees with free().
 * Errors: -ENOENT, -ENOMEM, -EIO, GOULETTE_ECORRUPT. */
int store_ldb_get(struct store_ldb *db,
                  const struct store_ldb_snapshot *snap,
                  const void *key,
                  size_t klen,
                  struct goulette_buf *val);

/* A new empty batch.  Returns NULL when out of memory.  Free with
 * store_ldb_batch_free. */
struct store_ldb_batch *store_ldb_batch_new(void);
void store_ldb_batch_free(struct store_ldb_batch *b);
void store_ldb_batch_clear(struct store_ldb_batch *b);

/* Queue a put or a delete; key and value are copied. */
void store_ldb_batch_put(struct store_ldb_batch *b,
                         const void *key,
                         size_t klen,
                         const void *val,
                         size_t vlen);
void store_ldb_batch_delete(struct store_ldb_batch *b,
                            const void *key,
                            size_t klen);

/* Queue a delete of every key in [@lo, @hi) as it exists now (@hi NULL: up
 * to the end of the key space).  Keys written later are not affected.
 * Errors: -EIO, GOULETTE_ECORRUPT, -ENOMEM. */
int store_ldb_batch_delete_range(struct store_ldb *db,
                                 struct store_ldb_batch *b,
                                 const void *lo,
                                 size_t lolen,
                                 const void *hi,
                                 size_t hilen);

/* Write @b atomically and durably (sync=true).  @b is not freed.
 * Errors: -EIO, GOULETTE_ECORRUPT. */
int store_ldb_write(struct store_ldb *db, struct store_ldb_batch *b);

/* A consistent read view of the current state.  Returns NULL when out of
 * memory.  Release with store_ldb_snapshot_release before closing. */
struct store_ldb_snapshot *store_ldb_snapshot_new(struct store_ldb *db);
void store_ldb_snapshot_release(struct store_ldb *db,
                                struct store_ldb_snapshot *snap);

/* An iterator over keys in [@lo, @hi) (@hi NULL: unbounded) at @snap (NULL:
 * the latest state), positioned on the first such key.  Bounds are copied.
 * Returns NULL when out of memory.  Free with store_ldb_iter_free. */
struct store_ldb_iter *store_ldb_iter_new(struct store_ldb *db,
                                          const struct store_ldb_snapshot *snap,
                                          const void *lo,
                                          size_t lolen,
                                          const void *hi,
                                          size_t hilen);

/* Helper for prefix scans: fills @hi (at least @plen bytes) with the first
 * key after every key starting with @prefix, and returns its length, or 0
 * when there is none (prefix all 0xFF: use an unbounded scan). */
size_t store_ldb_prefix_end(const void *prefix, size_t plen, void *hi);

/* Whether the iterator is on a key inside its range. */
bool store_ldb_iter_valid(const struct store_ldb_iter *it);

/* Current key and value, borrowed until the iterator moves. */
struct goulette_buf store_ldb_iter_key(const struct store_ldb_iter *it);
struct goulette_buf store_ldb_iter_value(const struct store_ldb_iter *it);

/* Move to the next key. */
void store_ldb_iter_next(struct store_ldb_iter *it);

/* Seek to the first key >= @key within the range (clamped to lo). */
void store_ldb_iter_seek(struct store_ldb_iter *it,
                         const void *key,
                         size_t klen);

/* After the iterator becomes invalid: was that the end of the range (0) or
 * an error?  Errors: -EIO, GOULETTE_ECORRUPT. */
int store_ldb_iter_status(struct store_ldb_iter *it);

void store_ldb_iter_free(struct store_ldb_iter *it);

/* Approximate bytes on disk used by keys in [@lo, @hi). */
unsigned long long store_ldb_approximate_size(struct store_ldb *db,
                                              const void *lo,
                                              size_t lolen,
                                              const void *hi,
                                              size_t hilen);

/* Testing hook (crash simulation): after @n more successful writes, every
 * store_ldb_write fails with -EIO without writing, as if the process had
 * died just before it.  A negative @n disables the hook. */
void store_ldb_fail_writes_after(struct store_ldb *db, long n);

#endif /* GOULETTE_LDB_H */
