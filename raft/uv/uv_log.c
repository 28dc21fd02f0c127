/* The durable Raft log on LevelDB: record formats, keys, load and the
 * batch operations the runtime uses to execute the core's updates.  See
 * uv_log.h for the key layout.
 *
 * Record formats (integers little-endian):
 *   entry:      crc32 u32 | version u8 | type u8 | term u64 | data...
 *   hard state: crc32 u32 | version u8 | term u64 | vote u64 | commit u64
 *   snapshot:   crc32 u32 | version u8 | index u64 | term u64 |
 *               conf_index u64 | size u64 | conf (raft_configuration_encode)
 * The CRC-32 (IEEE) covers every byte after it. */
#include "uv_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>
#include <goulette/ring.h>

#define LOG_FORMAT 1

#define ENTRY_HEADER (4 + 1 + 1 + 8)
#define HARD_STATE_SIZE (4 + 1 + 8 + 8 + 8)
#define SNAPSHOT_HEADER (4 + 1 + 8 + 8 + 8 + 8)

static const unsigned char key_hard_state[2] = {'R', 'H'};
static const unsigned char key_snapshot[2] = {'R', 'S'};
static const unsigned char entry_prefix[2] = {'R', 'E'};

static void put_u64(unsigned char *p, uint64_t v)
{
    unsigned i;
    for (i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    unsigned i;
    for (i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    unsigned i;
    for (i = 0; i < 4; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void entry_key(raft_index index, unsigned char key[10])
{
    unsigned i;
    key[0] = entry_prefix[0];
    key[1] = entry_prefix[1];
    for (i = 0; i < 8; i++) {
        key[2 + i] = (unsigned char)(index >> (8 * (7 - i)));
    }
}

static raft_index entry_key_index(const unsigned char *key)
{
    raft_index index = 0;
    unsigned i;
    for (i = 0; i < 8; i++) {
        index = index << 8 | key[2 + i];
    }
    return index;
}

/* Stamp the CRC of @buf[4..len) into @buf[0..4). */
static void seal(unsigned char *buf, size_t len)
{
    put_u32(buf, store_ring_crc32(buf + 4, len - 4));
}

static bool sealed(const unsigned char *buf, size_t len)
{
    return len >= 5 && get_u32(buf) == store_ring_crc32(buf + 4, len - 4);
}

void raft_uv_log_state_fini(struct raft_uv_log_state *s)
{
    unsigned i;
    for (i = 0; i < s->n_entries; i++) {
        free(s->entries[i].data.base);
    }
    free(s->entries);
    raft_configuration_fini(&s->snapshot.conf);
    memset(s, 0, sizeof *s);
    raft_configuration_init(&s->snapshot.conf);
}

static int load_hard_state(struct store_ldb *db,
                           const struct goulette_log *log,
                           struct raft_hard_state *hs)
{
    struct goulette_buf val = {NULL, 0};
    const unsigned char *p;
    int rv;

    rv = store_ldb_get(db, NULL, key_hard_state, sizeof key_hard_state, &val);
    if (rv == -ENOENT) {
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    p = val.base;
    if (val.len != HARD_STATE_SIZE || !sealed(p, val.len)) {
        goulette_logf(log, GOULETTE_LOG_ERROR, "raft",
                      "hard state record is damaged (%zu bytes)", val.len);
        rv = GOULETTE_ECORRUPT;
        goto out;
    }
    if (p[4] != LOG_FORMAT) {
        goulette_logf(log, GOULETTE_LOG_ERROR, "raft",
                      "hard state has unknown format %u", p[4]);
        rv = GOULETTE_EVERSION;
        goto out;
    }
    hs->term = get_u64(p + 5);
    hs->vote = get_u64(p + 13);
    hs->commit = get_u64(p + 21);
out:
    free(val.base);
    return rv;
}

static int load_snapshot(struct store_ldb *db,
                         const struct goulette_log *log,
                         struct raft_snapshot_meta *m)
{
    struct goulette_buf val = {NULL, 0};
    struct goulette_buf conf;
    const unsigned char *p;
    int rv;

    rv = store_ldb_get(db, NULL, key_snapshot, sizeof key_snapshot, &val);
    if (rv == -ENOENT) {
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    p = val.base;
    if (val.len < SNAPSHOT_HEADER || !sealed(p, val.len)) {
        goulette_logf(log, GOULETTE_LOG_ERROR, "raft",
                      "snapshot metadata record is damaged (%zu bytes)",
                      val.len);
        rv = GOULETTE_ECORRUPT;
        goto out;
    }
    if (p[4] != LOG_FORMAT) {
        rv = GOULETTE_EVERSION;
        goto out;
    }
    m->index = get_u64(p + 5);
    m->term = get_u64(p + 13);
    m->conf_index = get_u64(p + 21);
    m->size = get_u64(p + 29);
    conf.base = (void *)(p + SNAPSHOT_HEADER);
    conf.len = val.len - SNAPSHOT_HEADER;
    rv = raft_configuration_decode(&conf, &m->conf);
    if (rv != 0) {
        goulette_logf(log, GOULETTE_LOG_ERROR, "raft",
                      "snapshot metadata holds a bad configuration: %s",
                      goulette_strerror(rv));
        rv = rv == -ENOMEM ? rv : GOULETTE_ECORRUPT;
    }
out:
    free(val.base);
    return rv;
}

/* Decode the entry at the iterator into @e (data copied). */
static int decode_entry(const struct goulette_log *log,
                        struct goulette_buf key,
                        struct goulette_buf val,
                        struct raft_entry *e)
{
    const unsigned char *p = val.base;
    if (key.len != 10) {
        goulette_logf(log, GOULETTE_LOG_ERROR, "raft", "log key of %zu bytes",
                      key.len);
        return GOULETTE_ECORRUPT;
    }
    e->index = entry_key_index(key.base);
    if (val.len < ENTRY_HEADER || !sealed(p, val.len)) {
        goulette_logf(log, GOULETTE_LOG_ERROR, "raft",
                      "log entry %llu is damaged (checksum mismatch)",
                      (unsigned long long)e->index);
        return GOULETTE_ECORRUPT;
    }
    if (p[4] != LOG_FORMAT) {
        return GOULETTE_EVERSION;
    }
    if (p[5] < RAFT_ENTRY_NORMAL || p[5] > RAFT_ENTRY_BARRIER) {
        goulette_logf(log, GOULETTE_LOG_ERROR, "raft",
                      "log entry %llu has unknown type %u",
                      (unsigned long long)e->index, p[5]);
        return GOULETTE_ECORRUPT;
    }
    e->type = (enum raft_entry_type)p[5];
    e->term = get_u64(p + 6);
    e->data.len = val.len - ENTRY_HEADER;
    e->data.base = NULL;
    if (e->data.len > 0) {
        e->data.base = malloc(e->data.len);
        if (e->data.base == NULL) {
            return -ENOMEM;
        }
        memcpy(e->data.base, p + ENTRY_HEADER, e->data.len);
    }
    return 0;
}

static int push_entry(struct raft_uv_log_state *s,
                      unsigned *cap,
                      const struct raft_entry *e)
{
    if (s->n_entries == *cap) {
        unsigned ncap = *cap == 0 ? 64 : *cap * 2;
        struct raft_entry *n = realloc(s->entries, ncap * sizeof *n);
        if (n == NULL) {
            return -ENOMEM;
        }
        s->entries = n;
        *cap = ncap;
    }
    s->entries[s->n_entries++] = *e;
    return 0;
}

/* Load every entry on disk, from the lowest key: entries at or below the
 * snapshot index (kept for followers that lag a little) included, since the
 * core skips them at START.  The entries must be consecutive, and must reach
 * the entry after the snapshot: a hole there would lose committed entries. */
static int load_entries(struct store_ldb *db,
                        const struct goulette_log *log,
                        struct raft_uv_log_state *s)
{
    unsigned char lo[2] = {'R', 'E'};
    unsigned char hi[2] = {'R', 'E' + 1};
    struct store_ldb_iter *it;
    unsigned cap = 0;
    raft_index expect = 0;
    int rv = 0;

    it = store_ldb_iter_new(db, NULL, lo, sizeof lo, hi, sizeof hi);
    if (it == NULL) {
        return -ENOMEM;
    }
    for (; store_ldb_iter_valid(it); store_ldb_iter_next(it)) {
        struct raft_entry e;
        rv = decode_entry(log, store_ldb_iter_key(it), store_ldb_iter_value(it),
                          &e);
        if (rv != 0) {
            goto out;
        }
        if (expect != 0 && e.index != expect) {
            goulette_logf(log, GOULETTE_LOG_ERROR, "raft",
                          "log has a gap: entry %llu follows %llu",
                          (unsigned long long)e.index,
                          (unsigned long long)(expect - 1));
            free(e.data.base);
            rv = GOULETTE_ECORRUPT;
            goto out;
        }
        rv = push_entry(s, &cap, &e);
        if (rv != 0) {
            free(e.data.base);
            goto out;
        }
        expect = e.index + 1;
    }
    rv = store_ldb_iter_status(it);
out:
    store_ldb_iter_free(it);
    return rv;
}

int raft_uv_log_load(struct store_ldb *db,
                     const struct goulette_log *log,
                     struct raft_uv_log_state *s)
{
    int rv;

    memset(s, 0, sizeof *s);
    raft_configuration_init(&s->snapshot.conf);
    rv = load_hard_state(db, log, &s->hard_state);
    if (rv == 0) {
        rv = load_snapshot(db, log, &s->snapshot);
    }
    if (rv == 0) {
        rv = load_entries(db, log, s);
    }
    if (rv == 0 && s->n_entries > 0 &&
        s->entries[0].index > s->snapshot.index + 1) {
        goulette_logf(log, GOULETTE_LOG_ERROR, "raft",
                      "log starts at entry %llu but the snapshot ends at %llu",
                      (unsigned long long)s->entries[0].index,
                      (unsigned long long)s->snapshot.index);
        rv = GOULETTE_ECORRUPT;
    }
    if (rv != 0) {
        raft_uv_log_state_fini(s);
    }
    return rv;
}

int raft_uv_log_empty(struct store_ldb *db)
{
    unsigned char lo[1] = {'R'};
    unsigned char hi[1] = {'R' + 1};
    struct store_ldb_iter *it;
    int rv;

    it = store_ldb_iter_new(db, NULL, lo, sizeof lo, hi, sizeof hi);
    if (it == NULL) {
        return -ENOMEM;
    }
    rv = store_ldb_iter_valid(it) ? 0 : 1;
    if (rv == 1) {
        int st = store_ldb_iter_status(it);
        rv = st != 0 ? st : 1;
    }
    store_ldb_iter_free(it);
    return rv;
}

void raft_uv_log_init(struct raft_uv_log *l, const struct raft_uv_log_state *s)
{
    if (s->n_entries == 0) {
        l->first = 0;
        l->last = 0;
        return;
    }
    l->first = s->entries[0].index;
    l->last = s->entries[s->n_entries - 1].index;
}

/* Queue deletes of the persisted entries in [lo, hi]. */
static void delete_entries(struct raft_uv_log *l,
                           struct store_ldb_batch *b,
                           raft_index lo,
                           raft_index hi)
{
    unsigned char key[10];
    raft_index i;
    if (l->last == 0) {
        return;
    }
    if (lo < l->first) {
        lo = l->first;
    }
    if (hi > l->last) {
        hi = l->last;
    }
    for (i = lo; i <= hi && i != 0; i++) {
        entry_key(i, key);
        store_ldb_batch_delete(b, key, sizeof key);
    }
}

int raft_uv_log_append(struct raft_uv_log *l,
                       struct store_ldb_batch *b,
                       const struct raft_entry *entries,
                       unsigned n)
{
    unsigned char key[10];
    unsigned char *val = NULL;
    size_t cap = 0;
    unsigned i;

    if (n == 0) {
        return 0;
    }
    if (l->last >= entries[0].index) {
        delete_entries(l, b, entries[0].index, l->last);
    }
    for (i = 0; i < n; i++) {
        const struct raft_entry *e = &entries[i];
        size_t len = ENTRY_HEADER + e->data.len;
        if (len > cap) {
            unsigned char *nv = realloc(val, len);
            if (nv == NULL) {
                free(val);
                return -ENOMEM;
            }
            val = nv;
            cap = len;
        }
        val[4] = LOG_FORMAT;
        val[5] = (unsigned char)e->type;
        put_u64(val + 6, e->term);
        if (e->data.len > 0) {
            memcpy(val + ENTRY_HEADER, e->data.base, e->data.len);
        }
        seal(val, len);
        entry_key(e->index, key);
        store_ldb_batch_put(b, key, sizeof key, val, len);
    }
    free(val);
    if (l->last == 0 || entries[0].index < l->first) {
        l->first = entries[0].index;
    }
    l->last = entries[n - 1].index;
    return 0;
}

int raft_uv_log_hard_state(struct store_ldb_batch *b,
                           const struct raft_hard_state *hs)
{
    unsigned char val[HARD_STATE_SIZE];
    val[4] = LOG_FORMAT;
    put_u64(val + 5, hs->term);
    put_u64(val + 13, hs->vote);
    put_u64(val + 21, hs->commit);
    seal(val, sizeof val);
    store_ldb_batch_put(b, key_hard_state, sizeof key_hard_state, val,
                        sizeof val);
    return 0;
}

int raft_uv_log_snapshot_record(struct store_ldb_batch *b,
                                const struct raft_snapshot_meta *meta)
{
    struct goulette_buf conf = {NULL, 0};
    unsigned char *val;
    size_t len;
    int rv;

    rv = raft_configuration_encode(&meta->conf, &conf);
    if (rv != 0) {
        return rv;
    }
    len = SNAPSHOT_HEADER + conf.len;
    val = malloc(len);
    if (val == NULL) {
        free(conf.base);
        return -ENOMEM;
    }
    val[4] = LOG_FORMAT;
    put_u64(val + 5, meta->index);
    put_u64(val + 13, meta->term);
    put_u64(val + 21, meta->conf_index);
    put_u64(val + 29, meta->size);
    memcpy(val + SNAPSHOT_HEADER, conf.base, conf.len);
    seal(val, len);
    store_ldb_batch_put(b, key_snapshot, sizeof key_snapshot, val, len);
    free(val);
    free(conf.base);
    return 0;
}

int raft_uv_log_snapshot_install(struct raft_uv_log *l,
                                 struct store_ldb_batch *b,
                                 const struct raft_snapshot_meta *meta)
{
    int rv = raft_uv_log_snapshot_record(b, meta);
    if (rv != 0) {
        return rv;
    }
    if (l->last != 0) {
        delete_entries(l, b, l->first, l->last);
    }
    l->first = 0;
    l->last = 0;
    return 0;
}

void raft_uv_log_compact(struct raft_uv_log *l,
                         struct store_ldb_batch *b,
                         raft_index index)
{
    if (l->last == 0 || index <= l->first) {
        return;
    }
    delete_entries(l, b, l->first, index - 1);
    if (index > l->last) {
        l->first = 0;
        l->last = 0;
    } else {
        l->first = index;
    }
}

int raft_uv_log_bootstrap(struct store_ldb *db,
                          const struct raft_configuration *conf)
{
    struct raft_uv_log_state s;
    struct raft_uv_log l = {0, 0};
    struct store_ldb_batch *b = NULL;
    struct raft_entry e;
    struct goulette_buf data = {NULL, 0};
    int rv;

    rv = raft_uv_log_load(db, NULL, &s);
    if (rv != 0) {
        return rv;
    }
    if (s.n_entries > 0 || s.snapshot.index > 0 || s.hard_state.term > 0) {
        raft_uv_log_state_fini(&s);
        return -EEXIST;
    }
    raft_uv_log_state_fini(&s);
    rv = raft_configuration_encode(conf, &data);
    if (rv != 0) {
        return rv;
    }
    b = store_ldb_batch_new();
    if (b == NULL) {
        rv = -ENOMEM;
        goto err_after_encode;
    }
    e.term = 1;
    e.index = 1;
    e.type = RAFT_ENTRY_CONF;
    e.data = data;
    rv = raft_uv_log_append(&l, b, &e, 1);
    if (rv == 0) {
        rv = store_ldb_write(db, b);
    }
    store_ldb_batch_free(b);
err_after_encode:
    free(data.base);
    return rv;
}
