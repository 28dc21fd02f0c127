/* The LevelDB driver (include/goulette/ldb.h): the project's only user of
 * <leveldb/c.h>.  It translates calls and converts LevelDB's errptr strings
 * to negative codes, once; it makes no decisions about keys or values. */
#include "goulette/ldb.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <leveldb/c.h>

#include "goulette/err.h"

#define SUBSYS "store"

struct store_ldb
{
    leveldb_t *db;
    leveldb_options_t *opts;
    leveldb_readoptions_t *ropts;
    leveldb_writeoptions_t *wopts;  /* sync = 1 */
    const struct goulette_log *log; /* borrowed */
    long fail_after;                /* testing hook; < 0 disabled */
};

struct store_ldb_batch
{
    leveldb_writebatch_t *wb;
};

struct store_ldb_snapshot
{
    const leveldb_snapshot_t *snap;
};

struct store_ldb_iter
{
    leveldb_iterator_t *it;
    leveldb_readoptions_t *ropts;
    char *lo;
    size_t lolen;
    char *hi; /* NULL: unbounded */
    size_t hilen;
    const struct goulette_log *log; /* borrowed from the database */
};

/* The one conversion of LevelDB errors: log the message, free it, and map
 * it to a code.  LevelDB prefixes its Status strings with the kind. */
static int ldb_error(const struct goulette_log *log,
                     const char *what,
                     char *err)
{
    int rv = -EIO;
    if (strncmp(err, "Corruption", 10) == 0 ||
        strncmp(err, "Invalid argument", 16) == 0) {
        rv = GOULETTE_ECORRUPT;
    }
    goulette_logf(log, GOULETTE_LOG_ERROR, SUBSYS, "leveldb %s: %s", what, err);
    leveldb_free(err);
    return rv;
}

int store_ldb_open(const char *path,
                   const struct goulette_log *log,
                   struct store_ldb **out)
{
    struct store_ldb *db = NULL;
    char *err = NULL;
    int rv;

    *out = NULL;
    db = calloc(1, sizeof *db);
    if (db == NULL) {
        rv = -ENOMEM;
        goto err;
    }
    db->log = log;
    db->fail_after = -1;
    db->opts = leveldb_options_create();
    db->ropts = leveldb_readoptions_create();
    db->wopts = leveldb_writeoptions_create();
    if (db->opts == NULL || db->ropts == NULL || db->wopts == NULL) {
        rv = -ENOMEM;
        goto err_free;
    }
    leveldb_options_set_create_if_missing(db->opts, 1);
    leveldb_options_set_paranoid_checks(db->opts, 1);
    leveldb_readoptions_set_verify_checksums(db->ropts, 1);
    leveldb_writeoptions_set_sync(db->wopts, 1);
    db->db = leveldb_open(db->opts, path, &err);
    if (err != NULL) {
        rv = ldb_error(log, "open", err);
        goto err_free;
    }
    *out = db;
    return 0;

err_free:
    if (db->wopts != NULL) {
        leveldb_writeoptions_destroy(db->wopts);
    }
    if (db->ropts != NULL) {
        leveldb_readoptions_destroy(db->ropts);
    }
    if (db->opts != NULL) {
        leveldb_options_destroy(db->opts);
    }
    free(db);
err:
    assert(rv == -ENOMEM || rv == -EIO || rv == GOULETTE_ECORRUPT);
    return rv;
}

void store_ldb_close(struct store_ldb *db)
{
    if (db == NULL) {
        return;
    }
    leveldb_close(db->db);
    leveldb_writeoptions_destroy(db->wopts);
    leveldb_readoptions_destroy(db->ropts);
    leveldb_options_destroy(db->opts);
    free(db);
}

int store_ldb_get(struct store_ldb *db,
                  const struct store_ldb_snapshot *snap,
                  const void *key,
                  size_t klen,
                  struct goulette_buf *val)
{
    leveldb_readoptions_t *ro = db->ropts;
    char *err = NULL;
    char *v;
    size_t vlen = 0;

    val->base = NULL;
    val->len = 0;
    if (snap != NULL) {
        ro = leveldb_readoptions_create();
        if (ro == NULL) {
            return -ENOMEM;
        }
        leveldb_readoptions_set_verify_checksums(ro, 1);
        leveldb_readoptions_set_snapshot(ro, snap->snap);
    }
    v = leveldb_get(db->db, ro, key, klen, &vlen, &err);
    if (ro != db->ropts) {
        leveldb_readoptions_destroy(ro);
    }
    if (err != NULL) {
        return ldb_error(db->log, "get", err);
    }
    if (v == NULL) {
        return -ENOENT;
    }
    /* Hand back memory the caller frees with free(), not leveldb_free(). */
    val->base = malloc(vlen + 1);
    if (val->base == NULL) {
        leveldb_free(v);
        return -ENOMEM;
    }
    memcpy(val->base, v, vlen);
    ((char *)val->base)[vlen] = '\0';
    val->len = vlen;
    leveldb_free(v);
    return 0;
}

struct store_ldb_batch *store_ldb_batch_new(void)
{
    struct store_ldb_batch *b = malloc(sizeof *b);
    if (b == NULL) {
        return NULL;
    }
    b->wb = leveldb_writebatch_create();
    if (b->wb == NULL) {
        free(b);
        return NULL;
    }
    return b;
}

void store_ldb_batch_free(struct store_ldb_batch *b)
{
    if (b == NULL) {
        return;
    }
    leveldb_writebatch_destroy(b->wb);
    free(b);
}

void store_ldb_batch_clear(struct store_ldb_batch *b)
{
    leveldb_writebatch_clear(b->wb);
}

void store_ldb_batch_put(struct store_ldb_batch *b,
                         const void *key,
                         size_t klen,
                         const void *val,
                         size_t vlen)
{
    leveldb_writebatch_put(b->wb, key, klen, val, vlen);
}

void store_ldb_batch_delete(struct store_ldb_batch *b,
                            const void *key,
                            size_t klen)
{
    leveldb_writebatch_delete(b->wb, key, klen);
}

int store_ldb_batch_delete_range(struct store_ldb *db,
                                 struct store_ldb_batch *b,
                                 const void *lo,
                                 size_t lolen,
                                 const void *hi,
                                 size_t hilen)
{
    struct store_ldb_iter *it;
    int rv;

    it = store_ldb_iter_new(db, NULL, lo, lolen, hi, hilen);
    if (it == NULL) {
        return -ENOMEM;
    }
    for (; store_ldb_iter_valid(it); store_ldb_iter_next(it)) {
        struct goulette_buf k = store_ldb_iter_key(it);
        leveldb_writebatch_delete(b->wb, k.base, k.len);
    }
    rv = store_ldb_iter_status(it);
    store_ldb_iter_free(it);
    return rv;
}

int store_ldb_write(struct store_ldb *db, struct store_ldb_batch *b)
{
    char *err = NULL;

    if (db->fail_after == 0) {
        goulette_logf(db->log, GOULETTE_LOG_WARN, SUBSYS,
                      "leveldb write: failed by the testing hook");
        return -EIO;
    }
    leveldb_write(db->db, db->wopts, b->wb, &err);
    if (err != NULL) {
        return ldb_error(db->log, "write", err);
    }
    if (db->fail_after > 0) {
        db->fail_after--;
    }
    return 0;
}

void store_ldb_fail_writes_after(struct store_ldb *db, long n)
{
    db->fail_after = n < 0 ? -1 : n;
}

struct store_ldb_snapshot *store_ldb_snapshot_new(struct store_ldb *db)
{
    struct store_ldb_snapshot *s = malloc(sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    s->snap = leveldb_create_snapshot(db->db);
    return s;
}

void store_ldb_snapshot_release(struct store_ldb *db,
                                struct store_ldb_snapshot *snap)
{
    if (snap == NULL) {
        return;
    }
    leveldb_release_snapshot(db->db, snap->snap);
    free(snap);
}

size_t store_ldb_prefix_end(const void *prefix, size_t plen, void *hi)
{
    unsigned char *h = hi;
    memcpy(h, prefix, plen);
    while (plen > 0) {
        if (h[plen - 1] != 0xFF) {
            h[plen - 1]++;
            return plen;
        }
        plen--;
    }
    return 0;
}

static bool iter_in_range(const struct store_ldb_iter *it)
{
    size_t klen = 0;
    const char *k;
    size_t n;
    int c;

    if (!leveldb_iter_valid(it->it)) {
        return false;
    }
    if (it->hi == NULL) {
        return true;
    }
    k = leveldb_iter_key(it->it, &klen);
    n = klen < it->hilen ? klen : it->hilen;
    c = memcmp(k, it->hi, n);
    return c < 0 || (c == 0 && klen < it->hilen);
}

struct store_ldb_iter *store_ldb_iter_new(struct store_ldb *db,
                                          const struct store_ldb_snapshot *snap,
                                          const void *lo,
                                          size_t lolen,
                                          const void *hi,
                                          size_t hilen)
{
    struct store_ldb_iter *it = calloc(1, sizeof *it);
    if (it == NULL) {
        return NULL;
    }
    it->log = db->log;
    it->ropts = leveldb_readoptions_create();
    it->lo = malloc(lolen + 1);
    if (hi != NULL) {
        it->hi = malloc(hilen + 1);
    }
    if (it->ropts == NULL || it->lo == NULL || (hi != NULL && it->hi == NULL)) {
        goto err;
    }
    memcpy(it->lo, lo, lolen);
    it->lolen = lolen;
    if (hi != NULL) {
        memcpy(it->hi, hi, hilen);
        it->hilen = hilen;
    }
    leveldb_readoptions_set_verify_checksums(it->ropts, 1);
    leveldb_readoptions_set_fill_cache(it->ropts, 0);
    if (snap != NULL) {
        leveldb_readoptions_set_snapshot(it->ropts, snap->snap);
    }
    it->it = leveldb_create_iterator(db->db, it->ropts);
    if (it->it == NULL) {
        goto err;
    }
    leveldb_iter_seek(it->it, it->lo, it->lolen);
    return it;

err:
    if (it->ropts != NULL) {
        leveldb_readoptions_destroy(it->ropts);
    }
    free(it->lo);
    free(it->hi);
    free(it);
    return NULL;
}

bool store_ldb_iter_valid(const struct store_ldb_iter *it)
{
    return iter_in_range(it);
}

struct goulette_buf store_ldb_iter_key(const struct store_ldb_iter *it)
{
    struct goulette_buf b;
    size_t len = 0;
    b.base = (void *)leveldb_iter_key(it->it, &len);
    b.len = len;
    return b;
}

struct goulette_buf store_ldb_iter_value(const struct store_ldb_iter *it)
{
    struct goulette_buf b;
    size_t len = 0;
    b.base = (void *)leveldb_iter_value(it->it, &len);
    b.len = len;
    return b;
}

void store_ldb_iter_next(struct store_ldb_iter *it)
{
    leveldb_iter_next(it->it);
}

void store_ldb_iter_seek(struct store_ldb_iter *it,
                         const void *key,
                         size_t klen)
{
    size_t n = klen < it->lolen ? klen : it->lolen;
    int c = memcmp(key, it->lo, n);
    if (c < 0 || (c == 0 && klen < it->lolen)) {
        leveldb_iter_seek(it->it, it->lo, it->lolen);
        return;
    }
    leveldb_iter_seek(it->it, key, klen);
}

int store_ldb_iter_status(struct store_ldb_iter *it)
{
    char *err = NULL;
    leveldb_iter_get_error(it->it, &err);
    if (err != NULL) {
        return ldb_error(it->log, "iterate", err);
    }
    return 0;
}

void store_ldb_iter_free(struct store_ldb_iter *it)
{
    if (it == NULL) {
        return;
    }
    leveldb_iter_destroy(it->it);
    leveldb_readoptions_destroy(it->ropts);
    free(it->lo);
    free(it->hi);
    free(it);
}

unsigned long long store_ldb_approximate_size(struct store_ldb *db,
                                              const void *lo,
                                              size_t lolen,
                                              const void *hi,
                                              size_t hilen)
{
    const char *starts[1] = {lo};
    size_t start_lens[1] = {lolen};
    const char *limits[1] = {hi};
    size_t limit_lens[1] = {hilen};
    uint64_t sizes[1] = {0};

    leveldb_approximate_sizes(db->db, 1, starts, start_lens, limits, limit_lens,
                              sizes);
    return (unsigned long long)sizes[0];
}
