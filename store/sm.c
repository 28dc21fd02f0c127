/* The state machine driver: opens the node's LevelDB, loads the model,
 * applies Raft entries (model change + applied index in one synchronous
 * batch) and serves reads.  Decides nothing itself: the judgement of a
 * command is the pure core's (store/apply.c). */
#include "sm.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goulette/err.h"

#include "apply.h"
#include "codec.h"

#define SUBSYS "store"

/* ---- Opening ------------------------------------------------------------ */

/* Check the format version, writing it into a brand-new database. */
static int check_format(struct store_sm *sm)
{
    struct goulette_buf v = {NULL, 0};
    struct store_ldb_batch *b;
    struct store_ldb_iter *it;
    unsigned char ver[4];
    bool empty;
    int rv;

    rv = store_ldb_get(sm->db, NULL, STORE_META_VERSION_KEY, 2, &v);
    if (rv == 0) {
        const unsigned char *p = v.base;
        uint32_t n;
        if (v.len != 4) {
            free(v.base);
            return GOULETTE_ECORRUPT;
        }
        n = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
            ((uint32_t)p[2] << 8) | p[3];
        free(v.base);
        if (n != STORE_FORMAT_VERSION) {
            goulette_logf(sm->log, GOULETTE_LOG_ERROR, SUBSYS,
                          "database format version %" PRIu32
                          " (this build knows %u)",
                          n, STORE_FORMAT_VERSION);
            return GOULETTE_EVERSION;
        }
        return 0;
    }
    if (rv != -ENOENT) {
        return rv;
    }
    /* No version: a new database, unless state machine keys exist. */
    it = store_ldb_iter_new(sm->db, NULL, "S", 1, "T", 1);
    if (it == NULL) {
        return -ENOMEM;
    }
    empty = !store_ldb_iter_valid(it);
    rv = store_ldb_iter_status(it);
    store_ldb_iter_free(it);
    if (rv != 0) {
        return rv;
    }
    if (!empty) {
        return GOULETTE_ECORRUPT;
    }
    b = store_ldb_batch_new();
    if (b == NULL) {
        return -ENOMEM;
    }
    ver[0] = 0;
    ver[1] = 0;
    ver[2] = 0;
    ver[3] = STORE_FORMAT_VERSION;
    store_ldb_batch_put(b, STORE_META_VERSION_KEY, 2, ver, 4);
    rv = store_ldb_write(sm->db, b);
    store_ldb_batch_free(b);
    return rv;
}

int store__sm_load(struct store_ldb *db,
                   const struct store_ldb_snapshot *snap,
                   struct store__state *st,
                   uint64_t *applied_index,
                   uint64_t *applied_term)
{
    struct store_ldb_iter *it;
    int rv = 0;

    *applied_index = 0;
    *applied_term = 0;
    it = store_ldb_iter_new(db, snap, "S", 1, "T", 1);
    if (it == NULL) {
        return -ENOMEM;
    }
    while (rv == 0 && store_ldb_iter_valid(it)) {
        struct goulette_buf k = store_ldb_iter_key(it);
        struct goulette_buf v = store_ldb_iter_value(it);
        const char *key = k.base;
        if (k.len == 2 && key[1] == STORE_KEY_APPLIED && v.len == 16) {
            *applied_index = store__get_u64(v.base);
            *applied_term = store__get_u64((unsigned char *)v.base + 8);
        }
        if (k.len >= 2 && key[1] == STORE_KEY_OP) {
            /* Operations stay on disk; skip past them in one seek. */
            store_ldb_iter_seek(it, "Sp", 2);
            continue;
        }
        rv = store__state_load(st, k.base, k.len, v.base, v.len);
        store_ldb_iter_next(it);
    }
    if (rv == 0) {
        rv = store_ldb_iter_status(it);
    }
    store_ldb_iter_free(it);
    return rv;
}

int store_sm_open(const struct store_sm_config *config, struct store_sm **out)
{
    struct store_sm *sm = NULL;
    int rv;

    *out = NULL;
    if (config == NULL || (config->db == NULL && config->path == NULL)) {
        return -EINVAL;
    }
    sm = calloc(1, sizeof *sm);
    if (sm == NULL) {
        return -ENOMEM;
    }
    sm->log = config->log;
    sm->vnodes = config->vnodes != 0 ? config->vnodes : STORE_RING_VNODES;
    rv = store__state_init(&sm->st, sm->vnodes);
    if (rv != 0) {
        goto err_free;
    }
    if (config->db != NULL) {
        sm->db = config->db;
    } else {
        rv = store_ldb_open(config->path, sm->log, &sm->db);
        if (rv != 0) {
            goto err_state;
        }
        sm->owns_db = true;
    }
    rv = check_format(sm);
    if (rv != 0) {
        goto err_db;
    }
    rv = store__sm_load(sm->db, NULL, &sm->st, &sm->applied_index,
                        &sm->applied_term);
    if (rv != 0) {
        goulette_logf(sm->log, GOULETTE_LOG_ERROR, SUBSYS,
                      "loading the state machine: %s", goulette_strerror(rv));
        goto err_db;
    }
    goulette_logf(sm->log, GOULETTE_LOG_INFO, SUBSYS,
                  "state machine loaded: applied %" PRIu64 ", revision %" PRIu64
                  ", %zu topics, %zu brokers, %" PRIu64 " operations",
                  sm->applied_index, sm->st.revision, sm->st.n_topics,
                  sm->st.n_brokers, sm->st.counter);
    *out = sm;
    return 0;

err_db:
    if (sm->owns_db) {
        store_ldb_close(sm->db);
    }
err_state:
    store__state_fini(&sm->st);
err_free:
    free(sm);
    assert(rv == -ENOMEM || rv == -EINVAL || rv == -EIO ||
           rv == GOULETTE_ECORRUPT || rv == GOULETTE_EVERSION);
    return rv;
}

void store_sm_close(struct store_sm *sm)
{
    if (sm == NULL) {
        return;
    }
    store__state_fini(&sm->st);
    if (sm->owns_db) {
        store_ldb_close(sm->db);
    }
    free(sm);
}

/* ---- Applying ----------------------------------------------------------- */

void store_sm_result_fini(struct store_sm_result *res)
{
    store_changes_fini(&res->changes);
}

/* Write the transaction's mutations and the applied index in one batch. */
static int write_txn(struct store_sm *sm,
                     const struct store__txn *txn,
                     uint64_t index,
                     uint64_t term)
{
    struct store_ldb_batch *b = store_ldb_batch_new();
    unsigned char applied[16];
    char key[2] = {STORE_KEY_STATE, STORE_KEY_APPLIED};
    int rv;

    if (b == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < txn->n_muts; i++) {
        const struct store__mut *m = &txn->muts[i];
        if (m->val != NULL) {
            store_ldb_batch_put(b, m->key, m->klen, m->val, m->vlen);
        } else {
            store_ldb_batch_delete(b, m->key, m->klen);
        }
    }
    store__put_u64(applied, index);
    store__put_u64(applied + 8, term);
    store_ldb_batch_put(b, key, 2, applied, 16);
    rv = store_ldb_write(sm->db, b);
    store_ldb_batch_free(b);
    return rv;
}

int store_sm_apply(struct store_sm *sm,
                   uint64_t index,
                   uint64_t term,
                   const void *data,
                   size_t len,
                   struct store_sm_result *res)
{
    struct store_cmd cmd;
    struct store__txn txn;
    int result = 0;
    int rv;

    memset(res, 0, sizeof *res);
    res->revision = sm->st.revision;
    if (sm->st.broken) {
        return -ENOMEM;
    }
    if (index <= sm->applied_index) {
        res->already_applied = true;
        return 0;
    }
    memset(&cmd, 0, sizeof cmd);
    store__txn_init(&txn, &sm->st, 0);
    if (len > 0) {
        rv = store_cmd_decode(data, len, &cmd);
        if (rv == -ENOMEM) {
            return rv;
        }
        if (rv != 0) {
            result = rv;
        } else {
            store__txn_init(&txn, &sm->st, cmd.timestamp_ns);
            rv = store__apply(&sm->st, &cmd, &txn, &result);
            store_cmd_fini(&cmd);
            if (rv != 0) {
                return rv;
            }
        }
    }
    rv = write_txn(sm, &txn, index, term);
    if (rv != 0) {
        store__txn_rollback(&sm->st, &txn);
        return rv;
    }
    store__txn_commit(&sm->st, &txn);
    sm->applied_index = index;
    sm->applied_term = term;
    res->rv = result;
    res->revision = sm->st.revision;
    res->changes = txn.changes;
    if (result != 0) {
        goulette_logf(sm->log, GOULETTE_LOG_DEBUG, SUBSYS,
                      "entry %" PRIu64 " rejected: %s", index,
                      goulette_strerror(result));
    }
    return 0;
}

void store_sm_fail_writes_after(struct store_sm *sm, long n)
{
    store_ldb_fail_writes_after(sm->db, n);
}

uint64_t store_sm_applied_index(const struct store_sm *sm)
{
    return sm->applied_index;
}

uint64_t store_sm_applied_term(const struct store_sm *sm)
{
    return sm->applied_term;
}

uint64_t store_sm_revision(const struct store_sm *sm)
{
    return sm->st.revision;
}

/* ---- Reading ------------------------------------------------------------ */

/* Parse an operation file name: decimal, no sign, no leading zero. */
static int parse_op_id(const char *name, uint64_t *id)
{
    uint64_t v = 0;
    size_t n = strlen(name);
    if (n == 0 || n > 19 || name[0] == '0') {
        return -ENOENT;
    }
    for (size_t i = 0; i < n; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return -ENOENT;
        }
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *id = v;
    return 0;
}

static void fill_stat(struct store_stat *st,
                      const struct store__meta *meta,
                      size_t json_len)
{
    if (st == NULL) {
        return;
    }
    st->create_revision = meta->create_rev;
    st->mod_revision = meta->mod_rev;
    st->version = meta->version;
    st->mtime_ns = meta->mtime_ns;
    st->size = json_len + 1;
}

static int copy_file(const char *text, size_t len, struct goulette_buf *out)
{
    char *p = malloc(len + 2);
    if (p == NULL) {
        return -ENOMEM;
    }
    memcpy(p, text, len);
    p[len] = '\n';
    p[len + 1] = '\0';
    out->base = p;
    out->len = len + 1;
    return 0;
}

/* Read operation @name from LevelDB: its JSON (when @out) and metadata. */
static int read_op(struct store_sm *sm,
                   const char *name,
                   struct goulette_buf *out,
                   struct store_stat *st)
{
    struct goulette_buf v = {NULL, 0};
    struct store__meta meta;
    const char *payload;
    size_t plen;
    char key[16];
    uint64_t id;
    int rv = parse_op_id(name, &id);

    if (rv != 0 || id > sm->st.counter) {
        return -ENOENT;
    }
    rv = store_ldb_get(sm->db, NULL, key, store__key_op(id, key), &v);
    if (rv == -ENOENT) {
        /* Ids 1..counter are dense: a missing one is damage. */
        return GOULETTE_ECORRUPT;
    }
    if (rv != 0) {
        return rv;
    }
    rv = store__record_decode(v.base, v.len, &meta, &payload, &plen);
    if (rv == 0) {
        fill_stat(st, &meta, plen);
        if (out != NULL) {
            rv = copy_file(payload, plen, out);
        }
    }
    free(v.base);
    return rv;
}

static int read_any(struct store_sm *sm,
                    enum store_dir dir,
                    const char *name,
                    struct goulette_buf *out,
                    struct store_stat *st)
{
    char text[24];
    int n;

    if (out != NULL) {
        out->base = NULL;
        out->len = 0;
    }
    if (name == NULL) {
        return -ENOENT;
    }
    switch (dir) {
    case STORE_DIR_TOPICS: {
        const struct store__topic *t = store__state_topic(&sm->st, name);
        if (t == NULL) {
            return -ENOENT;
        }
        fill_stat(st, &t->meta, t->json_len);
        return out != NULL ? copy_file(t->json, t->json_len, out) : 0;
    }
    case STORE_DIR_BROKERS: {
        const struct store__broker *b = store__state_broker(&sm->st, name);
        if (b == NULL) {
            return -ENOENT;
        }
        fill_stat(st, &b->meta, b->json_len);
        return out != NULL ? copy_file(b->json, b->json_len, out) : 0;
    }
    case STORE_DIR_OPERATIONS:
        return read_op(sm, name, out, st);
    case STORE_DIR_INCREMENT:
        if (!sm->st.has_counter || strcmp(name, "operation") != 0) {
            return -ENOENT;
        }
        n = snprintf(text, sizeof text, "%" PRIu64, sm->st.counter);
        fill_stat(st, &sm->st.counter_meta, (size_t)n);
        return out != NULL ? copy_file(text, (size_t)n, out) : 0;
    }
    return -ENOENT;
}

int store_sm_read(struct store_sm *sm,
                  enum store_dir dir,
                  const char *name,
                  struct goulette_buf *out,
                  struct store_stat *st)
{
    return read_any(sm, dir, name, out, st);
}

int store_sm_stat(struct store_sm *sm,
                  enum store_dir dir,
                  const char *name,
                  struct store_stat *st)
{
    return read_any(sm, dir, name, NULL, st);
}

int store_sm_list(struct store_sm *sm,
                  enum store_dir dir,
                  const char *after,
                  int (*cb)(void *arg, const char *name),
                  void *arg)
{
    char text[24];
    uint64_t from = 0;
    int rv = 0;

    switch (dir) {
    case STORE_DIR_TOPICS:
        for (size_t i = store__state_topic_after(&sm->st, after);
             rv == 0 && i < sm->st.n_topics; i++) {
            rv = cb(arg, sm->st.topics[i]->rec.topic);
        }
        return rv;
    case STORE_DIR_BROKERS:
        for (size_t i = store__state_broker_after(&sm->st, after);
             rv == 0 && i < sm->st.n_brokers; i++) {
            rv = cb(arg, sm->st.brokers[i]->rec.broker_id);
        }
        return rv;
    case STORE_DIR_OPERATIONS:
        /* Operation ids are dense, 1..counter, never deleted. */
        if (after != NULL && parse_op_id(after, &from) != 0) {
            return -EINVAL;
        }
        for (uint64_t id = from + 1; rv == 0 && id <= sm->st.counter; id++) {
            snprintf(text, sizeof text, "%" PRIu64, id);
            rv = cb(arg, text);
        }
        return rv;
    case STORE_DIR_INCREMENT:
        if (sm->st.has_counter && after == NULL) {
            rv = cb(arg, "operation");
        }
        return rv;
    }
    return -EINVAL;
}

size_t store_sm_count(const struct store_sm *sm, enum store_dir dir)
{
    switch (dir) {
    case STORE_DIR_TOPICS:
        return sm->st.n_topics;
    case STORE_DIR_BROKERS:
        return sm->st.n_brokers;
    case STORE_DIR_OPERATIONS:
        return (size_t)sm->st.counter;
    case STORE_DIR_INCREMENT:
        return sm->st.has_counter ? 1 : 0;
    }
    return 0;
}

int store_sm_topic_get(const struct store_sm *sm,
                       const char *topic,
                       struct store_topic_view *out)
{
    const struct store__topic *t = store__state_topic(&sm->st, topic);
    if (t == NULL) {
        return -ENOENT;
    }
    out->topic = t->rec.topic;
    out->replicas = t->rec.replicas;
    out->n_replicas = t->rec.n_replicas;
    out->replica_count = t->rec.replica_count;
    out->version = t->rec.version;
    out->timestamp = t->rec.timestamp;
    return 0;
}

int store_sm_broker_get(const struct store_sm *sm,
                        const char *id,
                        struct store_broker_view *out)
{
    const struct store__broker *b = store__state_broker(&sm->st, id);
    if (b == NULL) {
        return -ENOENT;
    }
    out->broker_id = b->rec.broker_id;
    out->address = b->rec.address;
    out->status = b->rec.status;
    out->topics = (const char *const *)b->rec.topics;
    out->n_topics = b->rec.n_topics;
    out->updated_ns = b->meta.mtime_ns;
    return 0;
}

char *store__sm_key_path(const char *key, size_t klen, bool *oom)
{
    char *p = NULL;
    size_t n;
    *oom = false;
    if (klen < 2 || key[0] != STORE_KEY_STATE) {
        return NULL;
    }
    switch (key[1]) {
    case STORE_KEY_TOPIC:
    case STORE_KEY_BROKER:
        n = klen - 2 + 9;
        p = malloc(n);
        if (p != NULL) {
            snprintf(p, n, "%s/%.*s",
                     key[1] == STORE_KEY_TOPIC ? "topics" : "brokers",
                     (int)(klen - 2), key + 2);
        }
        break;
    case STORE_KEY_OP:
        if (klen != 10) {
            return NULL;
        }
        p = malloc(32);
        if (p != NULL) {
            snprintf(p, 32, "operations/%" PRIu64,
                     store__get_u64((const unsigned char *)key + 2));
        }
        break;
    case STORE_KEY_COUNTER:
        p = strdup("increment/operation");
        break;
    default:
        return NULL;
    }
    *oom = p == NULL;
    return p;
}
