/* Snapshots of the state machine: export of the 'S' key space at one
 * LevelDB snapshot as a chunked stream, and atomic install of such a
 * stream (staged in memory, checked, written in one batch).
 *
 * Stream format (version 1; all integers big-endian):
 *
 *   header   "GSNP" | u32 format version | u64 applied index | u64 term
 *   record   'K' | u32 key length | u32 value length | key | value
 *            ... one per 'S' key, in key order ...
 *   trailer  'E' | u64 record count | u32 CRC-32/IEEE of every byte
 *            before this field
 *
 * Chunk boundaries carry no meaning: a record may span chunks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "goulette/err.h"
#include "goulette/ring.h"

#include "codec.h"
#include "sm.h"

#define SNAP_MAGIC "GSNP"
#define SNAP_VERSION 1u
#define SNAP_HDR_LEN 24
#define SNAP_REC_HDR 9
#define SNAP_TRAILER 13
#define SNAP_KEY_MAX 4096
#define SNAP_VAL_MAX (64u << 20)

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | p[3];
}

/* ---- Export ------------------------------------------------------------- */

enum snap_phase {
    SNAP_HEADER = 0,
    SNAP_RECORDS = 1,
    SNAP_DONE = 2,
};

struct store_snap_export
{
    struct store_sm *sm; /* borrowed */
    struct store_ldb_snapshot *snap;
    struct store_ldb_iter *it;
    uint64_t index;
    uint64_t term;
    enum snap_phase phase;
    bool trailer_sent;
    uint64_t count;      /* records emitted */
    uint32_t crc;        /* over every byte emitted so far */
    unsigned char *pend; /* serialised bytes not yet emitted */
    size_t pend_len;
    size_t pend_off;
    size_t pend_cap;
    unsigned char *chunk; /* the chunk handed out */
    size_t chunk_max;
};

int store_snap_export_begin(struct store_sm *sm,
                            size_t chunk_max,
                            struct store_snap_export **out)
{
    struct store_snap_export *e;
    struct goulette_buf v = {NULL, 0};
    char key[2] = {STORE_KEY_STATE, STORE_KEY_APPLIED};
    int rv;

    *out = NULL;
    if (chunk_max < 64) {
        return -EINVAL;
    }
    e = calloc(1, sizeof *e);
    if (e == NULL) {
        return -ENOMEM;
    }
    e->sm = sm;
    e->chunk_max = chunk_max;
    e->chunk = malloc(chunk_max);
    e->snap = store_ldb_snapshot_new(sm->db);
    if (e->chunk == NULL || e->snap == NULL) {
        store_snap_export_end(e);
        return -ENOMEM;
    }
    /* The applied index as of the snapshot, not as of now. */
    rv = store_ldb_get(sm->db, e->snap, key, 2, &v);
    if (rv == 0 && v.len == 16) {
        e->index = store__get_u64(v.base);
        e->term = store__get_u64((unsigned char *)v.base + 8);
    }
    free(v.base);
    if (rv != 0 && rv != -ENOENT) {
        store_snap_export_end(e);
        return rv == -ENOMEM ? -ENOMEM : -EIO;
    }
    e->it = store_ldb_iter_new(sm->db, e->snap, "S", 1, "T", 1);
    if (e->it == NULL) {
        store_snap_export_end(e);
        return -ENOMEM;
    }
    *out = e;
    return 0;
}

uint64_t store_snap_export_index(const struct store_snap_export *e)
{
    return e->index;
}

uint64_t store_snap_export_term(const struct store_snap_export *e)
{
    return e->term;
}

static int pend_reserve(struct store_snap_export *e, size_t n)
{
    if (n > e->pend_cap) {
        unsigned char *p = realloc(e->pend, n);
        if (p == NULL) {
            return -ENOMEM;
        }
        e->pend = p;
        e->pend_cap = n;
    }
    e->pend_len = n;
    e->pend_off = 0;
    return 0;
}

/* Serialise the next piece of the stream into pend.  Returns 1 when there
 * is one, 0 at the end. */
static int export_fill(struct store_snap_export *e)
{
    int rv;
    switch (e->phase) {
    case SNAP_HEADER:
        rv = pend_reserve(e, SNAP_HDR_LEN);
        if (rv != 0) {
            return rv;
        }
        memcpy(e->pend, SNAP_MAGIC, 4);
        put_u32(e->pend + 4, SNAP_VERSION);
        store__put_u64(e->pend + 8, e->index);
        store__put_u64(e->pend + 16, e->term);
        e->phase = SNAP_RECORDS;
        break;
    case SNAP_RECORDS:
        if (store_ldb_iter_valid(e->it)) {
            struct goulette_buf k = store_ldb_iter_key(e->it);
            struct goulette_buf v = store_ldb_iter_value(e->it);
            rv = pend_reserve(e, SNAP_REC_HDR + k.len + v.len);
            if (rv != 0) {
                return rv;
            }
            e->pend[0] = 'K';
            put_u32(e->pend + 1, (uint32_t)k.len);
            put_u32(e->pend + 5, (uint32_t)v.len);
            memcpy(e->pend + SNAP_REC_HDR, k.base, k.len);
            memcpy(e->pend + SNAP_REC_HDR + k.len, v.base, v.len);
            e->count++;
            store_ldb_iter_next(e->it);
            break;
        }
        rv = store_ldb_iter_status(e->it);
        if (rv != 0) {
            return -EIO;
        }
        rv = pend_reserve(e, SNAP_TRAILER);
        if (rv != 0) {
            return rv;
        }
        e->pend[0] = 'E';
        store__put_u64(e->pend + 1, e->count);
        e->crc = store_ring_crc32_update(e->crc, e->pend, 9);
        put_u32(e->pend + 9, e->crc);
        e->phase = SNAP_DONE;
        e->trailer_sent = true;
        return 1;
    case SNAP_DONE:
        return 0;
    }
    e->crc = store_ring_crc32_update(e->crc, e->pend, e->pend_len);
    return 1;
}

int store_snap_export_next(struct store_snap_export *e,
                           struct goulette_buf *chunk)
{
    size_t n = 0;
    chunk->base = e->chunk;
    chunk->len = 0;
    while (n < e->chunk_max) {
        size_t take;
        if (e->pend_off == e->pend_len) {
            int rv = export_fill(e);
            if (rv < 0) {
                return rv;
            }
            if (rv == 0) {
                break;
            }
        }
        take = e->pend_len - e->pend_off;
        if (take > e->chunk_max - n) {
            take = e->chunk_max - n;
        }
        memcpy(e->chunk + n, e->pend + e->pend_off, take);
        e->pend_off += take;
        n += take;
    }
    chunk->len = n;
    return n > 0 ? 1 : 0;
}

void store_snap_export_end(struct store_snap_export *e)
{
    if (e == NULL) {
        return;
    }
    store_ldb_iter_free(e->it);
    if (e->snap != NULL) {
        store_ldb_snapshot_release(e->sm->db, e->snap);
    }
    free(e->pend);
    free(e->chunk);
    free(e);
}

/* ---- Install ------------------------------------------------------------ */

struct store_snap_install
{
    struct store_sm *sm; /* borrowed */
    unsigned char *buf;  /* the whole stream, staged */
    size_t len;
    size_t cap;
    bool failed;
};

/* One parsed record, pointing into the staged stream. */
struct snap_rec
{
    const char *key;
    size_t klen;
    const char *val;
    size_t vlen;
};

int store_snap_install_begin(struct store_sm *sm,
                             struct store_snap_install **out)
{
    struct store_snap_install *in = calloc(1, sizeof *in);
    *out = NULL;
    if (in == NULL) {
        return -ENOMEM;
    }
    in->sm = sm;
    *out = in;
    return 0;
}

static int check_header(const unsigned char *p, size_t len)
{
    if (len >= 4 && memcmp(p, SNAP_MAGIC, 4) != 0) {
        return GOULETTE_ECORRUPT;
    }
    if (len >= 8 && get_u32(p + 4) != SNAP_VERSION) {
        return GOULETTE_EVERSION;
    }
    return 0;
}

int store_snap_install_feed(struct store_snap_install *in,
                            const void *data,
                            size_t len)
{
    int rv;
    if (in->failed) {
        return GOULETTE_ECORRUPT;
    }
    if (in->len + len > in->cap) {
        size_t cap = in->cap ? in->cap : 4096;
        unsigned char *p;
        while (cap < in->len + len) {
            cap *= 2;
        }
        p = realloc(in->buf, cap);
        if (p == NULL) {
            in->failed = true;
            return -ENOMEM;
        }
        in->buf = p;
        in->cap = cap;
    }
    if (len > 0) {
        memcpy(in->buf + in->len, data, len);
    }
    in->len += len;
    rv = check_header(in->buf, in->len < 8 ? in->len : 8);
    if (rv != 0) {
        in->failed = true;
    }
    return rv;
}

void store_snap_install_abort(struct store_snap_install *in)
{
    if (in == NULL) {
        return;
    }
    free(in->buf);
    free(in);
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    if (c != 0) {
        return c;
    }
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* Parse and check the staged stream into @recs (returned, free()). */
static int parse_stream(const struct store_snap_install *in,
                        struct snap_rec **recs_out,
                        size_t *n_out,
                        uint64_t *index,
                        uint64_t *term)
{
    const unsigned char *p = in->buf;
    size_t off = SNAP_HDR_LEN;
    struct snap_rec *recs = NULL;
    size_t n = 0;
    size_t cap = 0;
    int rv;

    *recs_out = NULL;
    *n_out = 0;
    if (in->len < SNAP_HDR_LEN + SNAP_TRAILER) {
        return GOULETTE_ECORRUPT;
    }
    rv = check_header(p, SNAP_HDR_LEN);
    if (rv != 0) {
        return rv;
    }
    *index = store__get_u64(p + 8);
    *term = store__get_u64(p + 16);
    for (;;) {
        size_t klen;
        size_t vlen;
        if (off >= in->len) {
            goto corrupt;
        }
        if (p[off] == 'E') {
            break;
        }
        if (p[off] != 'K' || in->len - off < SNAP_REC_HDR) {
            goto corrupt;
        }
        klen = get_u32(p + off + 1);
        vlen = get_u32(p + off + 5);
        if (klen < 2 || klen > SNAP_KEY_MAX || vlen > SNAP_VAL_MAX ||
            in->len - off - SNAP_REC_HDR < klen + vlen) {
            goto corrupt;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            struct snap_rec *r = realloc(recs, ncap * sizeof *r);
            if (r == NULL) {
                free(recs);
                return -ENOMEM;
            }
            recs = r;
            cap = ncap;
        }
        recs[n].key = (const char *)p + off + SNAP_REC_HDR;
        recs[n].klen = klen;
        recs[n].val = recs[n].key + klen;
        recs[n].vlen = vlen;
        /* Only state machine keys, strictly increasing. */
        if (recs[n].key[0] != STORE_KEY_STATE ||
            (n > 0 && key_cmp(recs[n - 1].key, recs[n - 1].klen, recs[n].key,
                              klen) >= 0)) {
            goto corrupt;
        }
        n++;
        off += SNAP_REC_HDR + klen + vlen;
    }
    if (in->len - off != SNAP_TRAILER || store__get_u64(p + off + 1) != n ||
        get_u32(p + off + 9) != store_ring_crc32(p, off + 9)) {
        goto corrupt;
    }
    *recs_out = recs;
    *n_out = n;
    return 0;

corrupt:
    free(recs);
    return GOULETTE_ECORRUPT;
}

/* Build the new model from the records; the applied record must agree
 * with the header. */
/* Check operation record @r: a valid record whose JSON id is its key's,
 * and the next id of the dense sequence (*@last_id + 1). */
static int check_op(const struct snap_rec *r, uint64_t *last_id)
{
    struct store__meta meta;
    struct store__op_rec op;
    const char *payload;
    size_t plen;
    uint64_t id;
    int rv;

    if (r->klen != 10) {
        return GOULETTE_ECORRUPT;
    }
    id = store__get_u64((const unsigned char *)r->key + 2);
    rv = store__record_decode(r->val, r->vlen, &meta, &payload, &plen);
    if (rv == 0) {
        rv = store__op_decode(payload, plen, &op);
    }
    if (rv != 0) {
        return rv;
    }
    if (op.id < 0 || (uint64_t)op.id != id || id != *last_id + 1) {
        rv = GOULETTE_ECORRUPT;
    }
    store__op_rec_fini(&op);
    *last_id = id;
    return rv;
}

/* Build the new model from the records.  The applied record must agree
 * with the header, and operations must be exactly 1..counter. */
static int build_state(const struct snap_rec *recs,
                       size_t n,
                       uint64_t index,
                       uint64_t term,
                       struct store__state *st)
{
    bool has_applied = false;
    uint64_t last_op = 0;
    for (size_t i = 0; i < n; i++) {
        const struct snap_rec *r = &recs[i];
        int rv = 0;
        if (r->klen == 2 && r->key[1] == STORE_KEY_APPLIED) {
            if (r->vlen != 16 ||
                store__get_u64((const unsigned char *)r->val) != index ||
                store__get_u64((const unsigned char *)r->val + 8) != term) {
                return GOULETTE_ECORRUPT;
            }
            has_applied = true;
        }
        if (r->key[1] == STORE_KEY_OP) {
            rv = check_op(r, &last_op);
        }
        if (rv == 0) {
            rv = store__state_load(st, r->key, r->klen, r->val, r->vlen);
        }
        if (rv != 0) {
            return rv;
        }
    }
    if (last_op != st->counter || (!has_applied && index != 0)) {
        return GOULETTE_ECORRUPT;
    }
    return 0;
}

static int change_add(struct store_changes *changes,
                      enum store_change_kind kind,
                      const char *key,
                      size_t klen)
{
    bool oom;
    char *path = store__sm_key_path(key, klen, &oom);
    char *slash;
    int rv;
    if (path == NULL) {
        return oom ? -ENOMEM : 0;
    }
    slash = strchr(path, '/');
    *slash = '\0';
    rv = store__changes_add(changes, kind, path, slash + 1);
    free(path);
    return rv;
}

/* Queue the new state and collect the differences with the current one:
 * a merge of the current 'S' keys with the staged records. */
static int stage_batch(struct store_sm *sm,
                       const struct snap_rec *recs,
                       size_t n,
                       struct store_ldb_batch *b,
                       struct store_changes *changes)
{
    struct store_ldb_iter *it;
    size_t i = 0;
    int rv = 0;

    it = store_ldb_iter_new(sm->db, NULL, "S", 1, "T", 1);
    if (it == NULL) {
        return -ENOMEM;
    }
    while (rv == 0 && (store_ldb_iter_valid(it) || i < n)) {
        bool have_old = store_ldb_iter_valid(it);
        struct goulette_buf k = {NULL, 0};
        struct goulette_buf v = {NULL, 0};
        int c;
        if (have_old) {
            k = store_ldb_iter_key(it);
            v = store_ldb_iter_value(it);
        }
        c = !have_old ? 1
            : i == n  ? -1
                      : key_cmp(k.base, k.len, recs[i].key, recs[i].klen);
        if (c < 0) {
            store_ldb_batch_delete(b, k.base, k.len);
            rv = change_add(changes, STORE_CHANGE_DELETE, k.base, k.len);
            store_ldb_iter_next(it);
            continue;
        }
        store_ldb_batch_put(b, recs[i].key, recs[i].klen, recs[i].val,
                            recs[i].vlen);
        if (c > 0) {
            rv = change_add(changes, STORE_CHANGE_CREATE, recs[i].key,
                            recs[i].klen);
        } else {
            if (v.len != recs[i].vlen ||
                memcmp(v.base, recs[i].val, v.len) != 0) {
                rv = change_add(changes, STORE_CHANGE_MODIFY, recs[i].key,
                                recs[i].klen);
            }
            store_ldb_iter_next(it);
        }
        i++;
    }
    if (rv == 0) {
        rv = store_ldb_iter_status(it);
    }
    store_ldb_iter_free(it);
    return rv;
}

int store_snap_install_commit(struct store_snap_install *in,
                              struct store_changes *changes)
{
    struct store_sm *sm = in->sm;
    struct store__state st;
    struct store_ldb_batch *b = NULL;
    struct snap_rec *recs = NULL;
    size_t n = 0;
    uint64_t index = 0;
    uint64_t term = 0;
    int rv;

    memset(changes, 0, sizeof *changes);
    if (in->failed) {
        store_snap_install_abort(in);
        return GOULETTE_ECORRUPT;
    }
    rv = store__state_init(&st, sm->vnodes);
    if (rv != 0) {
        store_snap_install_abort(in);
        return rv;
    }
    rv = parse_stream(in, &recs, &n, &index, &term);
    if (rv == 0) {
        rv = build_state(recs, n, index, term, &st);
    }
    if (rv == 0) {
        b = store_ldb_batch_new();
        rv = b == NULL ? -ENOMEM : 0;
    }
    if (rv == 0) {
        rv = stage_batch(sm, recs, n, b, changes);
    }
    if (rv == 0) {
        rv = store_ldb_write(sm->db, b);
    }
    store_ldb_batch_free(b);
    free(recs);
    store_snap_install_abort(in);
    if (rv != 0) {
        store__state_fini(&st);
        store_changes_fini(changes);
        return rv == -ENOMEM || rv == -EIO ? rv : GOULETTE_ECORRUPT;
    }
    store__state_fini(&sm->st);
    sm->st = st;
    sm->applied_index = index;
    sm->applied_term = term;
    return 0;
}
