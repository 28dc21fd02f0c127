/* The in-memory model of the state machine and its undo-logged
 * transactions (store/state.h).  Pure: no I/O, no clock.
 *
 * Invariants: topics[] and brokers[] are sorted by name with no duplicates;
 * the ring's members are exactly the brokers, each with rank = its record's
 * create revision; every record's meta.version >= 1 and
 * create_rev <= mod_rev <= revision; has_counter iff counter > 0. */
#include "state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goulette/err.h"

enum {
    STORE__UNDO_TOPIC = 1,
    STORE__UNDO_BROKER = 2,
    STORE__UNDO_COUNTER = 3,
};

int store__state_init(struct store__state *st, unsigned vnodes)
{
    memset(st, 0, sizeof *st);
    return store_ring_init(&st->ring, vnodes);
}

static void topic_free(struct store__topic *t)
{
    if (t == NULL) {
        return;
    }
    store__topic_rec_fini(&t->rec);
    free(t->json);
    free(t);
}

static void broker_free(struct store__broker *b)
{
    if (b == NULL) {
        return;
    }
    store__broker_rec_fini(&b->rec);
    free(b->json);
    free(b);
}

void store__state_fini(struct store__state *st)
{
    for (size_t i = 0; i < st->n_topics; i++) {
        topic_free(st->topics[i]);
    }
    for (size_t i = 0; i < st->n_brokers; i++) {
        broker_free(st->brokers[i]);
    }
    free(st->topics);
    free(st->brokers);
    store_ring_fini(&st->ring);
    memset(st, 0, sizeof *st);
}

/* Binary search over an array of records whose first member is a record
 * with the name first.  Returns the index of @name or where it would go. */
static size_t search_topic(const struct store__state *st,
                           const char *name,
                           bool *found)
{
    size_t lo = 0;
    size_t hi = st->n_topics;
    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->topics[mid]->rec.topic, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static size_t search_broker(const struct store__state *st,
                            const char *id,
                            bool *found)
{
    size_t lo = 0;
    size_t hi = st->n_brokers;
    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->brokers[mid]->rec.broker_id, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

struct store__topic *store__state_topic(const struct store__state *st,
                                        const char *name)
{
    bool found;
    size_t i = search_topic(st, name, &found);
    return found ? st->topics[i] : NULL;
}

struct store__broker *store__state_broker(const struct store__state *st,
                                          const char *id)
{
    bool found;
    size_t i = search_broker(st, id, &found);
    return found ? st->brokers[i] : NULL;
}

size_t store__state_topic_after(const struct store__state *st,
                                const char *after)
{
    bool found;
    size_t i;
    if (after == NULL) {
        return 0;
    }
    i = search_topic(st, after, &found);
    return found ? i + 1 : i;
}

size_t store__state_broker_after(const struct store__state *st,
                                 const char *after)
{
    bool found;
    size_t i;
    if (after == NULL) {
        return 0;
    }
    i = search_broker(st, after, &found);
    return found ? i + 1 : i;
}

/* Insert @p at @at in a pointer array, growing it. */
static int array_insert(void ***arr, size_t *n, size_t *cap, size_t at, void *p)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        void **a = realloc(*arr, ncap * sizeof *a);
        if (a == NULL) {
            return -ENOMEM;
        }
        *arr = a;
        *cap = ncap;
    }
    memmove(*arr + at + 1, *arr + at, (*n - at) * sizeof **arr);
    (*arr)[at] = p;
    (*n)++;
    return 0;
}

static void array_remove(void **arr, size_t *n, size_t at)
{
    memmove(arr + at, arr + at + 1, (*n - at - 1) * sizeof *arr);
    (*n)--;
}

/* Put @t into the model, replacing a topic of the same name (returned in
 * *@old, or NULL).  Errors: -ENOMEM (model unchanged). */
static int model_put_topic(struct store__state *st,
                           struct store__topic *t,
                           struct store__topic **old)
{
    bool found;
    size_t i = search_topic(st, t->rec.topic, &found);
    *old = NULL;
    if (found) {
        *old = st->topics[i];
        st->topics[i] = t;
        return 0;
    }
    return array_insert((void ***)&st->topics, &st->n_topics, &st->cap_topics,
                        i, t);
}

static void model_del_topic(struct store__state *st, const char *name)
{
    bool found;
    size_t i = search_topic(st, name, &found);
    if (found) {
        array_remove((void **)st->topics, &st->n_topics, i);
    }
}

/* As model_put_topic, and keep the ring in step: a new broker joins it. */
static int model_put_broker(struct store__state *st,
                            struct store__broker *b,
                            struct store__broker **old)
{
    bool found;
    size_t i = search_broker(st, b->rec.broker_id, &found);
    int rv;
    *old = NULL;
    if (found) {
        *old = st->brokers[i];
        st->brokers[i] = b;
        return 0;
    }
    rv = store_ring_add(&st->ring, b->rec.broker_id, b->meta.create_rev);
    if (rv != 0) {
        return rv;
    }
    rv = array_insert((void ***)&st->brokers, &st->n_brokers, &st->cap_brokers,
                      i, b);
    if (rv != 0) {
        store_ring_remove(&st->ring, b->rec.broker_id);
    }
    return rv;
}

static void model_del_broker(struct store__state *st, const char *id)
{
    bool found;
    size_t i = search_broker(st, id, &found);
    if (found) {
        store_ring_remove(&st->ring, id);
        array_remove((void **)st->brokers, &st->n_brokers, i);
    }
}

/* ---- Loading
 * ----------------------------------------------------------------- */

static int load_topic(struct store__state *st,
                      const char *name,
                      size_t nlen,
                      const struct store__meta *meta,
                      const char *json,
                      size_t jlen)
{
    struct store__topic *t = calloc(1, sizeof *t);
    struct store__topic *old = NULL;
    int rv;
    if (t == NULL) {
        return -ENOMEM;
    }
    rv = store__topic_decode(json, jlen, &t->rec);
    if (rv != 0) {
        free(t);
        return rv;
    }
    t->meta = *meta;
    t->json = store__strndup(json, jlen);
    t->json_len = jlen;
    if (t->json == NULL) {
        rv = -ENOMEM;
    } else if (strlen(t->rec.topic) != nlen ||
               memcmp(t->rec.topic, name, nlen) != 0 ||
               store__state_topic(st, t->rec.topic) != NULL) {
        rv = GOULETTE_ECORRUPT;
    } else {
        rv = model_put_topic(st, t, &old);
    }
    if (rv != 0) {
        topic_free(t);
    }
    return rv;
}

static int load_broker(struct store__state *st,
                       const char *name,
                       size_t nlen,
                       const struct store__meta *meta,
                       const char *json,
                       size_t jlen)
{
    struct store__broker *b = calloc(1, sizeof *b);
    struct store__broker *old = NULL;
    int rv;
    if (b == NULL) {
        return -ENOMEM;
    }
    rv = store__broker_decode(json, jlen, &b->rec);
    if (rv != 0) {
        free(b);
        return rv;
    }
    b->meta = *meta;
    b->json = store__strndup(json, jlen);
    b->json_len = jlen;
    if (b->json == NULL) {
        rv = -ENOMEM;
    } else if (strlen(b->rec.broker_id) != nlen ||
               memcmp(b->rec.broker_id, name, nlen) != 0 ||
               store__state_broker(st, b->rec.broker_id) != NULL) {
        rv = GOULETTE_ECORRUPT;
    } else {
        rv = model_put_broker(st, b, &old);
        if (rv == -EEXIST) {
            rv = GOULETTE_ECORRUPT;
        }
    }
    if (rv != 0) {
        broker_free(b);
    }
    return rv;
}

int store__state_load(struct store__state *st,
                      const void *key,
                      size_t klen,
                      const void *val,
                      size_t vlen)
{
    const char *k = key;
    struct store__meta meta;
    const char *payload;
    size_t plen;
    int rv;

    if (klen < 2 || k[0] != STORE_KEY_STATE) {
        return GOULETTE_ECORRUPT;
    }
    switch (k[1]) {
    case STORE_KEY_APPLIED:
        return klen == 2 && vlen == 16 ? 0 : GOULETTE_ECORRUPT;
    case STORE_KEY_REVISION:
        if (klen != 2 || vlen != 8) {
            return GOULETTE_ECORRUPT;
        }
        st->revision = store__get_u64(val);
        return 0;
    case STORE_KEY_OP:
        return klen == 10 && vlen >= STORE_HDR_LEN ? 0 : GOULETTE_ECORRUPT;
    default:
        break;
    }
    rv = store__record_decode(val, vlen, &meta, &payload, &plen);
    if (rv != 0) {
        return rv;
    }
    switch (k[1]) {
    case STORE_KEY_COUNTER:
        if (klen != 2) {
            return GOULETTE_ECORRUPT;
        }
        rv = store__counter_decode(payload, plen, &st->counter);
        if (rv == 0) {
            st->has_counter = true;
            st->counter_meta = meta;
        }
        return rv;
    case STORE_KEY_TOPIC:
        return load_topic(st, k + 2, klen - 2, &meta, payload, plen);
    case STORE_KEY_BROKER:
        return load_broker(st, k + 2, klen - 2, &meta, payload, plen);
    default:
        return GOULETTE_ECORRUPT;
    }
}

/* ---- Changes
 * ------------------------------------------------------------------ */

int store__changes_add(struct store_changes *changes,
                       enum store_change_kind kind,
                       const char *dir,
                       const char *name)
{
    size_t len = strlen(dir) + 1 + strlen(name) + 1;
    char *path;
    if (changes->n == changes->cap) {
        size_t cap = changes->cap ? changes->cap * 2 : 8;
        struct store_change *c = realloc(changes->items, cap * sizeof *c);
        if (c == NULL) {
            return -ENOMEM;
        }
        changes->items = c;
        changes->cap = cap;
    }
    path = malloc(len);
    if (path == NULL) {
        return -ENOMEM;
    }
    snprintf(path, len, "%s/%s", dir, name);
    changes->items[changes->n].kind = kind;
    changes->items[changes->n].path = path;
    changes->n++;
    return 0;
}

void store_changes_fini(struct store_changes *changes)
{
    for (size_t i = 0; i < changes->n; i++) {
        free(changes->items[i].path);
    }
    free(changes->items);
    memset(changes, 0, sizeof *changes);
}

/* ---- Transactions
 * -------------------------------------------------------------- */

void store__txn_init(struct store__txn *txn,
                     const struct store__state *st,
                     int64_t ts_ns)
{
    memset(txn, 0, sizeof *txn);
    txn->ts_ns = ts_ns;
    txn->old_rev = st->revision;
    txn->rev = st->revision + 1;
}

/* Queue a mutation; @key is copied, @val (may be NULL) is taken. */
static int txn_mut(struct store__txn *txn,
                   const char *key,
                   size_t klen,
                   char *val,
                   size_t vlen)
{
    char *k;
    if (txn->n_muts == txn->cap_muts) {
        size_t cap = txn->cap_muts ? txn->cap_muts * 2 : 8;
        struct store__mut *m = realloc(txn->muts, cap * sizeof *m);
        if (m == NULL) {
            return -ENOMEM;
        }
        txn->muts = m;
        txn->cap_muts = cap;
    }
    k = store__strndup(key, klen);
    if (k == NULL) {
        return -ENOMEM;
    }
    txn->muts[txn->n_muts].key = k;
    txn->muts[txn->n_muts].klen = klen;
    txn->muts[txn->n_muts].val = val;
    txn->muts[txn->n_muts].vlen = vlen;
    txn->n_muts++;
    return 0;
}

static int txn_undo_reserve(struct store__txn *txn)
{
    if (txn->n_undo == txn->cap_undo) {
        size_t cap = txn->cap_undo ? txn->cap_undo * 2 : 8;
        struct store__undo *u = realloc(txn->undo, cap * sizeof *u);
        if (u == NULL) {
            return -ENOMEM;
        }
        txn->undo = u;
        txn->cap_undo = cap;
    }
    return 0;
}

/* New metadata for a key changed by this transaction. */
static struct store__meta next_meta(const struct store__txn *txn,
                                    const struct store__meta *old)
{
    struct store__meta m;
    m.create_rev = old != NULL ? old->create_rev : txn->rev;
    m.mod_rev = txn->rev;
    m.version = old != NULL ? old->version + 1 : 1;
    m.mtime_ns = txn->ts_ns;
    return m;
}

/* Queue the put of a record value (header + @json) under @key. */
static int txn_put_record(struct store__txn *txn,
                          const char *key,
                          size_t klen,
                          const struct store__meta *meta,
                          const char *json,
                          size_t jlen)
{
    size_t vlen;
    char *v = store__record_encode(meta, json, jlen, &vlen);
    int rv;
    if (v == NULL) {
        return -ENOMEM;
    }
    rv = txn_mut(txn, key, klen, v, vlen);
    if (rv != 0) {
        free(v);
    }
    return rv;
}

/* The part of a put shared by every record kind: queue the record under
 * @kind/@name with the meta that follows @old_meta (NULL: a new key) into
 * *@meta, and note the change in @dir. */
static int txn_put_named(struct store__txn *txn,
                         char kind,
                         const char *dir,
                         const char *name,
                         const struct store__meta *old_meta,
                         struct store__meta *meta,
                         const char *json,
                         size_t jlen)
{
    char key[STORE_KEY_MAX];
    size_t klen = store__key_named(kind, name, key);
    int rv;

    *meta = next_meta(txn, old_meta);
    rv = txn_put_record(txn, key, klen, meta, json, jlen);
    if (rv == 0) {
        rv = store__changes_add(
            &txn->changes,
            old_meta != NULL ? STORE_CHANGE_MODIFY : STORE_CHANGE_CREATE, dir,
            name);
    }
    return rv;
}

/* The part of a delete shared by every record kind. */
static int txn_del_named(struct store__txn *txn,
                         char kind,
                         const char *dir,
                         const char *name)
{
    char key[STORE_KEY_MAX];
    size_t klen = store__key_named(kind, name, key);
    int rv = txn_mut(txn, key, klen, NULL, 0);
    if (rv == 0) {
        rv = store__changes_add(&txn->changes, STORE_CHANGE_DELETE, dir, name);
    }
    return rv;
}

int store__txn_put_topic(struct store__state *st,
                         struct store__txn *txn,
                         struct store__topic_rec *rec)
{
    struct store__topic *t = NULL;
    struct store__topic *old = store__state_topic(st, rec->topic);
    int rv = -ENOMEM;

    if (txn_undo_reserve(txn) != 0) {
        return -ENOMEM;
    }
    t = calloc(1, sizeof *t);
    if (t == NULL) {
        return -ENOMEM;
    }
    t->json = store__topic_encode(rec, &t->json_len);
    if (t->json == NULL) {
        goto err;
    }
    rv = txn_put_named(txn, STORE_KEY_TOPIC, "topics", rec->topic,
                       old != NULL ? &old->meta : NULL, &t->meta, t->json,
                       t->json_len);
    if (rv != 0) {
        goto err;
    }
    t->rec = *rec;
    rv = model_put_topic(st, t, &old);
    if (rv != 0) {
        memset(&t->rec, 0, sizeof t->rec);
        goto err;
    }
    memset(rec, 0, sizeof *rec);
    txn->undo[txn->n_undo++] =
        (struct store__undo){.kind = STORE__UNDO_TOPIC, .old = old, .cur = t};
    txn->dirty = true;
    return 0;

err:
    /* A queued mutation or change without its model change is harmless:
     * the caller rolls the whole transaction back on any error. */
    if (t != NULL) {
        free(t->json);
        free(t);
    }
    return rv;
}

int store__txn_del_topic(struct store__state *st,
                         struct store__txn *txn,
                         const char *name)
{
    struct store__topic *old = store__state_topic(st, name);
    int rv;

    if (old == NULL || txn_undo_reserve(txn) != 0) {
        return -ENOMEM;
    }
    rv = txn_del_named(txn, STORE_KEY_TOPIC, "topics", name);
    if (rv != 0) {
        return rv;
    }
    model_del_topic(st, name);
    txn->undo[txn->n_undo++] = (struct store__undo){
        .kind = STORE__UNDO_TOPIC, .old = old, .cur = NULL};
    txn->dirty = true;
    return 0;
}

int store__txn_put_broker(struct store__state *st,
                          struct store__txn *txn,
                          struct store__broker_rec *rec)
{
    struct store__broker *b = NULL;
    struct store__broker *old = store__state_broker(st, rec->broker_id);
    int rv = -ENOMEM;

    if (txn_undo_reserve(txn) != 0) {
        return -ENOMEM;
    }
    b = calloc(1, sizeof *b);
    if (b == NULL) {
        return -ENOMEM;
    }
    b->json = store__broker_encode(rec, &b->json_len);
    if (b->json == NULL) {
        goto err;
    }
    rv = txn_put_named(txn, STORE_KEY_BROKER, "brokers", rec->broker_id,
                       old != NULL ? &old->meta : NULL, &b->meta, b->json,
                       b->json_len);
    if (rv != 0) {
        goto err;
    }
    b->rec = *rec;
    rv = model_put_broker(st, b, &old);
    if (rv != 0) {
        memset(&b->rec, 0, sizeof b->rec);
        goto err;
    }
    memset(rec, 0, sizeof *rec);
    txn->undo[txn->n_undo++] =
        (struct store__undo){.kind = STORE__UNDO_BROKER, .old = old, .cur = b};
    txn->dirty = true;
    return 0;

err:
    if (b != NULL) {
        free(b->json);
        free(b);
    }
    return rv;
}

int store__txn_del_broker(struct store__state *st,
                          struct store__txn *txn,
                          const char *id)
{
    struct store__broker *old = store__state_broker(st, id);
    int rv;

    if (old == NULL || txn_undo_reserve(txn) != 0) {
        return -ENOMEM;
    }
    rv = txn_del_named(txn, STORE_KEY_BROKER, "brokers", id);
    if (rv != 0) {
        return rv;
    }
    model_del_broker(st, id);
    txn->undo[txn->n_undo++] = (struct store__undo){
        .kind = STORE__UNDO_BROKER, .old = old, .cur = NULL};
    txn->dirty = true;
    return 0;
}

int store__txn_log_op(struct store__state *st,
                      struct store__txn *txn,
                      const char *function,
                      const json_t *params)
{
    struct store__op_rec op;
    struct store__meta meta;
    char key[16];
    char text[24];
    char *json = NULL;
    size_t jlen = 0;
    size_t klen;
    int tlen;
    int rv;

    if (txn_undo_reserve(txn) != 0) {
        return -ENOMEM;
    }
    memset(&op, 0, sizeof op);
    op.id = (int64_t)(st->counter + 1);
    op.function = (char *)function;
    op.timestamp = txn->ts_ns / 1000000000;
    op.params = store__json_dump(params, &jlen);
    if (op.params == NULL) {
        return -ENOMEM;
    }
    json = store__op_encode(&op, &jlen);
    free(op.params);
    if (json == NULL) {
        return -ENOMEM;
    }

    /* The counter first (Goulette's getNextID), then the record. */
    meta = next_meta(txn, st->has_counter ? &st->counter_meta : NULL);
    tlen = snprintf(text, sizeof text, "%" PRIu64, st->counter + 1);
    key[0] = STORE_KEY_STATE;
    key[1] = STORE_KEY_COUNTER;
    rv = txn_put_record(txn, key, 2, &meta, text, (size_t)tlen);
    if (rv == 0) {
        rv = store__changes_add(
            &txn->changes,
            st->has_counter ? STORE_CHANGE_MODIFY : STORE_CHANGE_CREATE,
            "increment", "operation");
    }
    if (rv == 0) {
        struct store__meta om = next_meta(txn, NULL);
        klen = store__key_op(st->counter + 1, key);
        rv = txn_put_record(txn, key, klen, &om, json, jlen);
    }
    if (rv == 0) {
        rv = store__changes_add(&txn->changes, STORE_CHANGE_CREATE,
                                "operations", text);
    }
    free(json);
    if (rv != 0) {
        return rv;
    }
    txn->undo[txn->n_undo++] =
        (struct store__undo){.kind = STORE__UNDO_COUNTER,
                             .counter = st->counter,
                             .meta = st->counter_meta,
                             .has_counter = st->has_counter};
    st->counter++;
    st->counter_meta = meta;
    st->has_counter = true;
    txn->dirty = true;
    return 0;
}

int store__txn_finish(struct store__state *st, struct store__txn *txn)
{
    unsigned char val[8];
    char key[2] = {STORE_KEY_STATE, STORE_KEY_REVISION};
    char *v;
    int rv;

    if (!txn->dirty) {
        return 0;
    }
    store__put_u64(val, txn->rev);
    v = store__strndup((const char *)val, 8);
    if (v == NULL) {
        return -ENOMEM;
    }
    rv = txn_mut(txn, key, 2, v, 8);
    if (rv != 0) {
        free(v);
        return rv;
    }
    st->revision = txn->rev;
    return 0;
}

static void txn_free(struct store__txn *txn)
{
    for (size_t i = 0; i < txn->n_muts; i++) {
        free(txn->muts[i].key);
        free(txn->muts[i].val);
    }
    free(txn->muts);
    free(txn->undo);
    txn->muts = NULL;
    txn->undo = NULL;
    txn->n_muts = txn->n_undo = 0;
    txn->cap_muts = txn->cap_undo = 0;
}

void store__txn_commit(struct store__state *st, struct store__txn *txn)
{
    (void)st;
    for (size_t i = 0; i < txn->n_undo; i++) {
        struct store__undo *u = &txn->undo[i];
        if (u->kind == STORE__UNDO_TOPIC) {
            topic_free(u->old);
        } else if (u->kind == STORE__UNDO_BROKER) {
            broker_free(u->old);
        }
    }
    txn_free(txn);
}

/* Swap the object named like @cur back to @old in place (no allocation). */
static void swap_topic(struct store__state *st,
                       struct store__topic *cur,
                       struct store__topic *old)
{
    bool found;
    size_t i = search_topic(st, cur->rec.topic, &found);
    if (found) {
        st->topics[i] = old;
    }
}

static void swap_broker(struct store__state *st,
                        struct store__broker *cur,
                        struct store__broker *old)
{
    bool found;
    size_t i = search_broker(st, cur->rec.broker_id, &found);
    if (found) {
        st->brokers[i] = old;
    }
}

static void undo_topic(struct store__state *st, struct store__undo *u)
{
    struct store__topic *cur = u->cur;
    struct store__topic *old = u->old;
    struct store__topic *dummy = NULL;
    if (cur != NULL && old != NULL) {
        swap_topic(st, cur, old);
    } else if (cur != NULL) {
        model_del_topic(st, cur->rec.topic);
    } else if (old != NULL) {
        /* Cannot fail: deleting left room in the array. */
        (void)model_put_topic(st, old, &dummy);
    }
    topic_free(cur);
}

static void undo_broker(struct store__state *st, struct store__undo *u)
{
    struct store__broker *cur = u->cur;
    struct store__broker *old = u->old;
    struct store__broker *dummy = NULL;
    if (cur != NULL && old != NULL) {
        swap_broker(st, cur, old);
    } else if (cur != NULL) {
        model_del_broker(st, cur->rec.broker_id);
    } else if (old != NULL) {
        /* Re-adding to the ring copies the id: only this step of a
         * rollback can fail (out of memory).  The model is then missing a
         * broker, so it is marked broken and refuses further commands. */
        if (model_put_broker(st, old, &dummy) != 0) {
            broker_free(old);
            st->broken = true;
        }
    }
    broker_free(cur);
}

void store__txn_rollback(struct store__state *st, struct store__txn *txn)
{
    for (size_t i = txn->n_undo; i-- > 0;) {
        struct store__undo *u = &txn->undo[i];
        if (u->kind == STORE__UNDO_TOPIC) {
            undo_topic(st, u);
        } else if (u->kind == STORE__UNDO_BROKER) {
            undo_broker(st, u);
        } else {
            st->counter = u->counter;
            st->counter_meta = u->meta;
            st->has_counter = u->has_counter;
        }
    }
    st->revision = txn->old_rev;
    txn_free(txn);
    store_changes_fini(&txn->changes);
}
