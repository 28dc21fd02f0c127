/* testbe: the in-memory fs backend of the FUSE integration tests (see
 * testbe.h).  Records, validation, placement and the commit timer; it calls
 * fs_changes_applied() for every applied mutation, exactly as the real
 * composition root will. */
#include "testbe.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "goulette/err.h"

#define TESTBE_MAX_NAME 128
#define TESTBE_MAX_REPLICAS 64
#define TESTBE_DEFAULT_REPLICAS 3
#define TESTBE_MAX_CHANGES 512

enum testbe_kind {
    REC_TOPIC = 1,
    REC_BROKER,
    REC_OP,
    REC_COUNTER,
    REC_STATUS,
};

struct testbe_rec
{
    char *path;  /* owned, "topics/orders" */
    size_t dlen; /* length of the directory part */
    enum testbe_kind kind;
    char *value; /* owned JSON text + '\n' */
    size_t len;
    uint64_t create_rev;
    uint64_t mod_rev;
    uint64_t version;
    int64_t mtime_ns;
    /* brokers */
    char *address; /* owned */
    int status;    /* 0 healthy, 2 down */
    /* topics */
    int replica_count;
    char **ids; /* owned: placed broker ids */
    size_t nids;
};

enum testbe_cmd_op {
    CMD_TOPIC_PUT = 1,
    CMD_TOPIC_UNREACH,
    CMD_TOPIC_REMOVE,
    CMD_BROKER_PUT,
    CMD_BROKER_REMOVE,
};

struct testbe_cmd
{
    enum testbe_cmd_op op;
    char name[TESTBE_MAX_NAME + 1];
    int replica_count;
    char address[256];
    char unreach[16][TESTBE_MAX_NAME + 1];
    size_t nunreach;
};

struct testbe_queued
{
    struct fs_mutation *m; /* borrowed until its cb */
    bool remote;           /* not from the mount: origin NULL */
    struct testbe_cmd cmd;
    struct testbe_queued *next;
};

/* Changes of one applied mutation. */
struct testbe_changes
{
    struct fs_change c[TESTBE_MAX_CHANGES];
    char *paths[TESTBE_MAX_CHANGES];
    size_t n;
};

static int64_t testbe_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* Records                                                              */
/* ------------------------------------------------------------------ */

static bool testbe_all_digits(const char *s, size_t n)
{
    size_t i;
    if (n == 0) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

/* Order by directory, then by name; all-digit names numerically, so that
 * operations/ lists 1 2 ... 9 10. */
static int testbe_cmp(const char *a, size_t adl, const char *b, size_t bdl)
{
    const char *an = a + adl + (a[adl] == '/');
    const char *bn = b + bdl + (b[bdl] == '/');
    size_t al = strlen(an);
    size_t bl = strlen(bn);
    int c;
    size_t m = adl < bdl ? adl : bdl;
    c = memcmp(a, b, m);
    if (c != 0) {
        return c;
    }
    if (adl != bdl) {
        return adl < bdl ? -1 : 1;
    }
    if (testbe_all_digits(an, al) && testbe_all_digits(bn, bl) && al != bl) {
        return al < bl ? -1 : 1;
    }
    return strcmp(an, bn);
}

static size_t testbe_dirlen(const char *path)
{
    const char *s = strrchr(path, '/');
    return s == NULL ? 0 : (size_t)(s - path);
}

static const char *const testbe_dirs[] = {"topics", "brokers", "operations",
                                          "increment", "cluster"};

/* Index of directory @path (@len bytes) in testbe_dirs, or -1. */
static long testbe_dir_index(const char *path, size_t len)
{
    size_t i;
    for (i = 0; i < sizeof testbe_dirs / sizeof testbe_dirs[0]; i++) {
        if (strlen(testbe_dirs[i]) == len &&
            memcmp(testbe_dirs[i], path, len) == 0) {
            return (long)i;
        }
    }
    return -1;
}

static void testbe_dir_touch(struct testbe *b, const char *path)
{
    long d = testbe_dir_index(path, testbe_dirlen(path));
    if (d >= 0) {
        b->dir_mtime[d] = testbe_now_ns();
    }
}

/* Index of @path, or -(insertion point) - 1. */
static long testbe_find(const struct testbe *b, const char *path)
{
    size_t dl = testbe_dirlen(path);
    size_t lo = 0;
    size_t hi = b->nrecs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = testbe_cmp(b->recs[mid]->path, b->recs[mid]->dlen, path, dl);
        if (c == 0) {
            return (long)mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -(long)lo - 1;
}

static struct testbe_rec *testbe_get(const struct testbe *b, const char *path)
{
    long i = testbe_find(b, path);
    return i >= 0 ? b->recs[i] : NULL;
}

static void testbe_rec_free(struct testbe_rec *r)
{
    size_t i;
    for (i = 0; i < r->nids; i++) {
        free(r->ids[i]);
    }
    free(r->ids);
    free(r->address);
    free(r->value);
    free(r->path);
    free(r);
}

static void testbe_note(struct testbe_changes *ch,
                        enum fs_change_kind kind,
                        const char *path)
{
    if (ch == NULL || ch->n == TESTBE_MAX_CHANGES) {
        return;
    }
    ch->paths[ch->n] = strdup(path);
    ch->c[ch->n].kind = kind;
    ch->c[ch->n].path = ch->paths[ch->n] != NULL ? ch->paths[ch->n] : "";
    ch->n++;
}

/* Set @path's value to @json + '\n' (taking @json, a jansson dump), creating
 * the record if needed. */
static struct testbe_rec *testbe_put(struct testbe *b,
                                     const char *path,
                                     enum testbe_kind kind,
                                     char *json,
                                     struct testbe_changes *ch)
{
    long i = testbe_find(b, path);
    struct testbe_rec *r;
    size_t jl = strlen(json);
    char *v = malloc(jl + 2);
    if (v == NULL) {
        free(json);
        return NULL;
    }
    memcpy(v, json, jl);
    v[jl] = '\n';
    v[jl + 1] = '\0';
    free(json);
    b->revision++;
    if (i >= 0) {
        r = b->recs[i];
        free(r->value);
        r->value = v;
        r->len = jl + 1;
        r->mod_rev = b->revision;
        r->version++;
        r->mtime_ns = testbe_now_ns();
        testbe_note(ch, FS_CHANGE_MODIFY, path);
        return r;
    }
    r = calloc(1, sizeof *r);
    if (r == NULL || (r->path = strdup(path)) == NULL) {
        free(r);
        free(v);
        return NULL;
    }
    if (b->nrecs == b->cap) {
        size_t m = b->cap == 0 ? 64 : b->cap * 2;
        struct testbe_rec **p = realloc(b->recs, m * sizeof *p);
        if (p == NULL) {
            free(r->path);
            free(r);
            free(v);
            return NULL;
        }
        b->recs = p;
        b->cap = m;
    }
    i = -i - 1;
    memmove(&b->recs[i + 1], &b->recs[i],
            (b->nrecs - (size_t)i) * sizeof *b->recs);
    b->recs[i] = r;
    b->nrecs++;
    r->dlen = testbe_dirlen(path);
    r->kind = kind;
    r->value = v;
    r->len = jl + 1;
    r->create_rev = r->mod_rev = b->revision;
    r->version = 1;
    r->mtime_ns = testbe_now_ns();
    testbe_dir_touch(b, path);
    testbe_note(ch, FS_CHANGE_CREATE, path);
    return r;
}

static void testbe_del(struct testbe *b,
                       const char *path,
                       struct testbe_changes *ch)
{
    long i = testbe_find(b, path);
    if (i < 0) {
        return;
    }
    testbe_note(ch, FS_CHANGE_DELETE, path);
    testbe_dir_touch(b, path);
    testbe_rec_free(b->recs[i]);
    memmove(&b->recs[i], &b->recs[i + 1],
            (b->nrecs - (size_t)i - 1) * sizeof *b->recs);
    b->nrecs--;
    b->revision++;
}

static char *testbe_dump(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    return s;
}

/* ------------------------------------------------------------------ */
/* Brokers, topics, operations                                          */
/* ------------------------------------------------------------------ */

static json_t *testbe_broker_json(const struct testbe_rec *r, const char *id)
{
    return json_pack("{s:s, s:s, s:i}", "broker_id", id, "address", r->address,
                     "status", r->status);
}

static void testbe_broker_write(struct testbe *b,
                                struct testbe_rec *r,
                                const char *id,
                                struct testbe_changes *ch)
{
    char path[TESTBE_MAX_NAME + 16];
    snprintf(path, sizeof path, "brokers/%s", id);
    testbe_put(b, path, REC_BROKER, testbe_dump(testbe_broker_json(r, id)), ch);
}

static uint32_t testbe_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 16777619u;
    }
    return h;
}

/* Place @topic on min(@count, healthy) brokers; write the record. */
static json_t *testbe_place(struct testbe *b,
                            const char *topic,
                            int count,
                            struct testbe_changes *ch)
{
    struct testbe_rec *healthy[1024];
    size_t nh = 0;
    size_t i;
    size_t start;
    size_t take;
    struct testbe_rec *r;
    json_t *list = json_array();
    json_t *rec;
    char path[TESTBE_MAX_NAME + 16];
    int64_t now = testbe_now_ns();
    for (i = 0; i < b->nrecs && nh < 1024; i++) {
        if (b->recs[i]->kind == REC_BROKER && b->recs[i]->status == 0) {
            healthy[nh++] = b->recs[i];
        }
    }
    take = (size_t)count < nh ? (size_t)count : nh;
    start = nh > 0 ? testbe_hash(topic) % nh : 0;
    for (i = 0; i < take; i++) {
        struct testbe_rec *br = healthy[(start + i) % nh];
        json_array_append_new(list,
                              testbe_broker_json(br, br->path + br->dlen + 1));
    }
    rec = json_pack("{s:s, s:O, s:I, s:I, s:i}", "topic", topic, "brokers",
                    list, "version", (json_int_t)now, "timestamp",
                    (json_int_t)(now / 1000000000), "replica_count", count);
    snprintf(path, sizeof path, "topics/%s", topic);
    r = testbe_put(b, path, REC_TOPIC, testbe_dump(rec), ch);
    if (r != NULL) {
        for (i = 0; i < r->nids; i++) {
            free(r->ids[i]);
        }
        free(r->ids);
        r->ids = calloc(take > 0 ? take : 1, sizeof *r->ids);
        r->nids = 0;
        for (i = 0; r->ids != NULL && i < take; i++) {
            struct testbe_rec *br = healthy[(start + i) % nh];
            r->ids[r->nids++] = strdup(br->path + br->dlen + 1);
        }
        r->replica_count = count;
    }
    return list; /* the caller's reference, for operation params */
}

static void testbe_oplog(struct testbe *b,
                         const char *function,
                         json_t *params,
                         struct testbe_changes *ch)
{
    char path[64];
    char counter[32];
    char *ps = testbe_dump(params);
    int64_t now = testbe_now_ns();
    uint64_t id = b->next_op++;
    snprintf(path, sizeof path, "operations/%llu", (unsigned long long)id);
    testbe_put(b, path, REC_OP,
               testbe_dump(json_pack(
                   "{s:I, s:s, s:s, s:I}", "id", (json_int_t)id, "function",
                   function, "params", ps != NULL ? ps : "{}", "timestamp",
                   (json_int_t)(now / 1000000000))),
               ch);
    free(ps);
    snprintf(counter, sizeof counter, "%llu", (unsigned long long)id);
    testbe_put(b, "increment/operation", REC_COUNTER, strdup(counter), ch);
}

static json_t *testbe_ids_json(char ids[][TESTBE_MAX_NAME + 1], size_t n)
{
    json_t *a = json_array();
    size_t i;
    for (i = 0; i < n; i++) {
        json_array_append_new(a, json_string(ids[i]));
    }
    return a;
}

static int testbe_apply(struct testbe *b,
                        const struct testbe_cmd *cmd,
                        bool new_file,
                        struct testbe_changes *ch)
{
    char path[TESTBE_MAX_NAME + 16];
    struct testbe_rec *r;
    json_t *list;
    size_t i;
    size_t j;
    switch (cmd->op) {
    case CMD_TOPIC_PUT:
        snprintf(path, sizeof path, "topics/%s", cmd->name);
        if (new_file && testbe_get(b, path) != NULL) {
            return -EEXIST;
        }
        list = testbe_place(b, cmd->name, cmd->replica_count, ch);
        testbe_oplog(
            b, "generateTopicReplicas",
            json_pack("{s:o, s:i, s:s}", "brokers", list, "replica_count",
                      cmd->replica_count, "topic", cmd->name),
            ch);
        return 0;
    case CMD_TOPIC_UNREACH:
        snprintf(path, sizeof path, "topics/%s", cmd->name);
        r = testbe_get(b, path);
        if (r == NULL) {
            return -ENOENT;
        }
        for (i = 0; i < cmd->nunreach; i++) {
            snprintf(path, sizeof path, "brokers/%s", cmd->unreach[i]);
            if (testbe_get(b, path) == NULL) {
                return -ENOENT;
            }
        }
        for (i = 0; i < cmd->nunreach; i++) {
            snprintf(path, sizeof path, "brokers/%s", cmd->unreach[i]);
            r = testbe_get(b, path);
            if (r->status != 2) {
                r->status = 2;
                testbe_broker_write(b, r, cmd->unreach[i], ch);
            }
        }
        snprintf(path, sizeof path, "topics/%s", cmd->name);
        r = testbe_get(b, path);
        list = testbe_place(b, cmd->name, r->replica_count, ch);
        testbe_oplog(
            b, "handleUnreachableBrokers",
            json_pack(
                "{s:o, s:i, s:s, s:o}", "new_brokers", list, "replica_count",
                r->replica_count, "topic", cmd->name, "unreachable_brokers",
                testbe_ids_json((char(*)[TESTBE_MAX_NAME + 1]) cmd->unreach,
                                cmd->nunreach)),
            ch);
        return 0;
    case CMD_TOPIC_REMOVE:
        snprintf(path, sizeof path, "topics/%s", cmd->name);
        if (testbe_get(b, path) == NULL) {
            return -ENOENT;
        }
        testbe_del(b, path, ch);
        testbe_oplog(b, "removeTopic", json_pack("{s:s}", "topic", cmd->name),
                     ch);
        return 0;
    case CMD_BROKER_PUT:
        snprintf(path, sizeof path, "brokers/%s", cmd->name);
        r = testbe_get(b, path);
        if (new_file && r != NULL) {
            return -EEXIST;
        }
        r = testbe_put(b, path, REC_BROKER, strdup("{}"), ch);
        if (r == NULL) {
            return -ENOMEM;
        }
        free(r->address);
        r->address = strdup(cmd->address);
        r->status = 0;
        /* Rewrite with the real JSON: one change, noted above. */
        free(r->value);
        {
            char *s = testbe_dump(testbe_broker_json(r, cmd->name));
            size_t l = s != NULL ? strlen(s) : 0;
            r->value = malloc(l + 1);
            memcpy(r->value, s, l);
            r->value[l] = '\n';
            r->len = l + 1;
            free(s);
        }
        testbe_oplog(b, "registerBroker",
                     json_pack("{s:s, s:s, s:[]}", "address", cmd->address,
                               "broker_id", cmd->name, "topics"),
                     ch);
        return 0;
    case CMD_BROKER_REMOVE:
        snprintf(path, sizeof path, "brokers/%s", cmd->name);
        if (testbe_get(b, path) == NULL) {
            return -ENOENT;
        }
        testbe_del(b, path, ch);
        /* Re-place every topic that used it. */
        for (i = 0; i < b->nrecs; i++) {
            r = b->recs[i];
            if (r->kind != REC_TOPIC) {
                continue;
            }
            for (j = 0; j < r->nids; j++) {
                if (strcmp(r->ids[j], cmd->name) == 0) {
                    char topic[TESTBE_MAX_NAME + 1];
                    snprintf(topic, sizeof topic, "%s", r->path + r->dlen + 1);
                    json_decref(testbe_place(b, topic, r->replica_count, ch));
                    break;
                }
            }
        }
        testbe_oplog(b, "unregisterBroker",
                     json_pack("{s:s, s:[]}", "broker_id", cmd->name, "topics"),
                     ch);
        return 0;
    }
    return -EINVAL;
}

/* ------------------------------------------------------------------ */
/* Validation                                                           */
/* ------------------------------------------------------------------ */

static int testbe_check_name(void *data, const char *dir, const char *name)
{
    size_t i;
    size_t n = strlen(name);
    if (n > TESTBE_MAX_NAME) {
        return -ENAMETOOLONG;
    }
    if (name[0] == '.' || name[0] == '-') {
        return -EINVAL;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-') {
            return -EINVAL;
        }
    }
    return 0;
}

static int testbe_check_address(const char *a)
{
    const char *colon = strrchr(a, ':');
    const char *p;
    long port;
    char *end;
    if (colon == NULL || colon == a || strlen(a) > 255) {
        return -EINVAL;
    }
    for (p = a; p < colon; p++) {
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-') {
            return -EINVAL;
        }
    }
    if (!testbe_all_digits(colon + 1, strlen(colon + 1))) {
        return -EINVAL;
    }
    port = strtol(colon + 1, &end, 10);
    if (port < 1 || port > 65535) {
        return -EINVAL;
    }
    return 0;
}

/* @path -> (dir, name).  Errors: -EROFS (read-only directory), -ENOENT. */
static int testbe_split(const char *path, char *dir, char *name)
{
    const char *slash = strchr(path, '/');
    size_t dl;
    if (slash == NULL || strchr(slash + 1, '/') != NULL) {
        return -ENOENT;
    }
    dl = (size_t)(slash - path);
    if (dl >= 16 || strlen(slash + 1) > TESTBE_MAX_NAME) {
        return -ENAMETOOLONG;
    }
    memcpy(dir, path, dl);
    dir[dl] = '\0';
    strcpy(name, slash + 1);
    if (strcmp(dir, "topics") == 0 || strcmp(dir, "brokers") == 0) {
        return 0;
    }
    if (strcmp(dir, "operations") == 0 || strcmp(dir, "increment") == 0 ||
        strcmp(dir, "cluster") == 0) {
        return -EROFS;
    }
    return -ENOENT;
}

/* Trim trailing whitespace; returns the trimmed length. */
static size_t testbe_trim(const char *buf, size_t len)
{
    while (len > 0 && isspace((unsigned char)buf[len - 1])) {
        len--;
    }
    return len;
}

static int testbe_parse_json(const char *dir,
                             const char *name,
                             json_t *j,
                             struct testbe_cmd *cmd)
{
    json_t *v;
    size_t i;
    if (!json_is_object(j)) {
        return -EINVAL;
    }
    if (strcmp(dir, "topics") == 0) {
        /* A record as cat shows it may be written back, to its own file
         * only (as the store: a copy under another name is refused). */
        v = json_object_get(j, "topic");
        if (v != NULL &&
            (!json_is_string(v) || strcmp(json_string_value(v), name) != 0)) {
            return -EINVAL;
        }
        v = json_object_get(j, "unreachable_brokers");
        if (v != NULL) {
            if (!json_is_array(v) || json_array_size(v) == 0 ||
                json_array_size(v) > 16) {
                return -EINVAL;
            }
            for (i = 0; i < json_array_size(v); i++) {
                json_t *s = json_array_get(v, i);
                if (!json_is_string(s) ||
                    strlen(json_string_value(s)) > TESTBE_MAX_NAME) {
                    return -EINVAL;
                }
                strcpy(cmd->unreach[i], json_string_value(s));
            }
            cmd->nunreach = json_array_size(v);
            cmd->op = CMD_TOPIC_UNREACH;
            return 0;
        }
        v = json_object_get(j, "replica_count");
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > TESTBE_MAX_REPLICAS) {
            return -EINVAL;
        }
        cmd->replica_count = (int)json_integer_value(v);
        cmd->op = CMD_TOPIC_PUT;
        return 0;
    }
    v = json_object_get(j, "broker_id");
    if (v != NULL &&
        (!json_is_string(v) || strcmp(json_string_value(v), name) != 0)) {
        return -EINVAL;
    }
    v = json_object_get(j, "address");
    if (!json_is_string(v) || testbe_check_address(json_string_value(v))) {
        return -EINVAL;
    }
    snprintf(cmd->address, sizeof cmd->address, "%s", json_string_value(v));
    cmd->op = CMD_BROKER_PUT;
    return 0;
}

/* The whole validation of a mutation, against nothing but its bytes. */
static int testbe_parse(const struct fs_mutation *m, struct testbe_cmd *cmd)
{
    char dir[16];
    char text[256];
    const char *buf = m->value.base;
    size_t len;
    int rv;
    memset(cmd, 0, sizeof *cmd);
    rv = testbe_split(m->path, dir, cmd->name);
    if (rv != 0) {
        return rv;
    }
    rv = testbe_check_name(NULL, dir, cmd->name);
    if (rv != 0) {
        return rv;
    }
    if (m->kind == FS_MUTATION_REMOVE) {
        cmd->op = dir[0] == 't' ? CMD_TOPIC_REMOVE : CMD_BROKER_REMOVE;
        return 0;
    }
    if (m->kind == FS_MUTATION_CREATE) {
        if (dir[0] == 'b') {
            return -EINVAL; /* a broker needs an address */
        }
        cmd->op = CMD_TOPIC_PUT;
        cmd->replica_count = TESTBE_DEFAULT_REPLICAS;
        return 0;
    }
    len = testbe_trim(buf, m->value.len);
    while (len > 0 && isspace((unsigned char)*buf)) {
        buf++;
        len--;
    }
    if (len == 0) {
        return -EINVAL;
    }
    if (buf[0] == '{') {
        json_error_t err;
        json_t *j = json_loadb(buf, len, 0, &err);
        if (j == NULL) {
            return -EINVAL;
        }
        rv = testbe_parse_json(dir, cmd->name, j, cmd);
        json_decref(j);
        return rv;
    }
    if (len >= sizeof text || memchr(buf, '\n', len) != NULL) {
        return -EINVAL;
    }
    memcpy(text, buf, len);
    text[len] = '\0';
    if (dir[0] == 't') {
        long n;
        if (!testbe_all_digits(text, len) || len > 4) {
            return -EINVAL;
        }
        n = strtol(text, NULL, 10);
        if (n < 1 || n > TESTBE_MAX_REPLICAS) {
            return -EINVAL;
        }
        cmd->op = CMD_TOPIC_PUT;
        cmd->replica_count = (int)n;
        return 0;
    }
    rv = testbe_check_address(text);
    if (rv != 0) {
        return rv;
    }
    snprintf(cmd->address, sizeof cmd->address, "%s", text);
    cmd->op = CMD_BROKER_PUT;
    return 0;
}

/* Whether the failed parse of @buf (@len bytes) failed only because the
 * input stopped: jansson says "end of file" / "premature end of input", or
 * an "invalid token" that is the unfinished tail of a literal or number. */
static bool testbe_json_prefix(const char *buf,
                               size_t len,
                               const json_error_t *err)
{
    const char *near = strstr(err->text, "near '");
    const char *tok;
    size_t tl;
    size_t i;
    if (strstr(err->text, "end of file") != NULL ||
        strstr(err->text, "premature end of input") != NULL) {
        return true;
    }
    if (strncmp(err->text, "invalid token", 13) != 0 || near == NULL) {
        return false;
    }
    tok = near + 6;
    tl = strlen(tok);
    if (tl == 0 || tok[tl - 1] != '\'') {
        return false;
    }
    tl--;
    if (tl == 0 || tl > len || memcmp(buf + len - tl, tok, tl) != 0) {
        return false; /* not at the end of the input */
    }
    if (strncmp("true", tok, tl) == 0 || strncmp("false", tok, tl) == 0 ||
        strncmp("null", tok, tl) == 0) {
        return tl < 5;
    }
    for (i = 0; i < tl; i++) {
        if (strchr("-+0123456789.eE", tok[i]) == NULL) {
            return false;
        }
    }
    return true;
}

static int testbe_classify(void *data,
                           const char *path,
                           const void *buf,
                           size_t len)
{
    const char *p = buf;
    struct fs_mutation m;
    struct testbe_cmd cmd;
    size_t i = 0;
    size_t t;
    int rv;
    while (i < len && isspace((unsigned char)p[i])) {
        i++;
    }
    if (i == len) {
        return FS_VALUE_INCOMPLETE;
    }
    t = testbe_trim(p, len);
    if (p[i] == '{') {
        json_error_t err;
        json_t *j = json_loadb(p + i, t - i, 0, &err);
        if (j == NULL) {
            return testbe_json_prefix(p + i, t - i, &err) ? FS_VALUE_INCOMPLETE
                                                          : -EINVAL;
        }
        json_decref(j);
    } else if (p[len - 1] != '\n') {
        return FS_VALUE_INCOMPLETE; /* text values end with a newline */
    }
    memset(&m, 0, sizeof m);
    m.kind = FS_MUTATION_WRITE;
    m.path = path;
    m.value.base = (void *)buf;
    m.value.len = len;
    rv = testbe_parse(&m, &cmd);
    return rv != 0 ? rv : FS_VALUE_COMPLETE;
}

/* ------------------------------------------------------------------ */
/* Reads                                                                */
/* ------------------------------------------------------------------ */

static int testbe_dir_attr(const char *path, struct fs_attr *out)
{
    size_t i;
    if (path[0] == '\0') {
        out->kind = FS_KIND_DIR;
        out->writable = false;
        return 0;
    }
    for (i = 0; i < sizeof testbe_dirs / sizeof testbe_dirs[0]; i++) {
        if (strcmp(path, testbe_dirs[i]) == 0) {
            out->kind = FS_KIND_DIR;
            out->writable = i < 2;
            return 0;
        }
    }
    return -ENOENT;
}

static int testbe_stat(void *data, const char *path, struct fs_attr *out)
{
    struct testbe *b = data;
    struct testbe_rec *r;
    memset(out, 0, sizeof *out);
    if (testbe_dir_attr(path, out) == 0) {
        /* As on a local file system, a directory's mtime is that of the
         * last name created or removed in it. */
        long d = testbe_dir_index(path, strlen(path));
        out->mtime_ns =
            d >= 0 && b->dir_mtime[d] != 0 ? b->dir_mtime[d] : b->start_ns;
        return 0;
    }
    r = testbe_get(b, path);
    if (r == NULL) {
        return -ENOENT;
    }
    out->kind = FS_KIND_FILE;
    out->writable = r->kind == REC_TOPIC || r->kind == REC_BROKER;
    out->size = r->len;
    out->mtime_ns = r->mtime_ns;
    return 0;
}

static int testbe_read(void *data, const char *path, struct goulette_buf *out)
{
    struct testbe *b = data;
    struct testbe_rec *r = testbe_get(b, path);
    if (r == NULL) {
        struct fs_attr a;
        return testbe_dir_attr(path, &a) == 0 ? -EISDIR : -ENOENT;
    }
    out->base = malloc(r->len > 0 ? r->len : 1);
    if (out->base == NULL) {
        return -ENOMEM;
    }
    memcpy(out->base, r->value, r->len);
    out->len = r->len;
    return 0;
}

static int testbe_list(void *data,
                       const char *path,
                       int (*emit)(void *ctx,
                                   const char *name,
                                   enum fs_kind kind),
                       void *ctx)
{
    struct testbe *b = data;
    struct fs_attr a;
    size_t pl = strlen(path);
    size_t i;
    int rv;
    if (testbe_dir_attr(path, &a) != 0) {
        return testbe_get(b, path) != NULL ? -ENOTDIR : -ENOENT;
    }
    if (pl == 0) {
        for (i = 0; i < sizeof testbe_dirs / sizeof testbe_dirs[0]; i++) {
            rv = emit(ctx, testbe_dirs[i], FS_KIND_DIR);
            if (rv < 0) {
                return rv;
            }
        }
        return 0;
    }
    for (i = 0; i < b->nrecs; i++) {
        struct testbe_rec *r = b->recs[i];
        if (r->dlen == pl && memcmp(r->path, path, pl) == 0) {
            rv = emit(ctx, r->path + pl + 1, FS_KIND_FILE);
            if (rv < 0) {
                return rv;
            }
        }
    }
    return 0;
}

static int testbe_xattrs(
    void *data,
    const char *path,
    int (*emit)(void *ctx, const char *name, const void *value, size_t len),
    void *ctx)
{
    struct testbe *b = data;
    struct testbe_rec *r = testbe_get(b, path);
    char v[32];
    int n;
    int rv;
    if (r == NULL) {
        struct fs_attr a;
        return testbe_dir_attr(path, &a) == 0 ? 0 : -ENOENT;
    }
    n = snprintf(v, sizeof v, "%llu", (unsigned long long)r->create_rev);
    rv = emit(ctx, "user.goulette.create_revision", v, (size_t)n);
    if (rv < 0) {
        return rv;
    }
    n = snprintf(v, sizeof v, "%llu", (unsigned long long)r->mod_rev);
    rv = emit(ctx, "user.goulette.mod_revision", v, (size_t)n);
    if (rv < 0) {
        return rv;
    }
    n = snprintf(v, sizeof v, "%llu", (unsigned long long)r->version);
    return emit(ctx, "user.goulette.version", v, (size_t)n);
}

/* ------------------------------------------------------------------ */
/* Commit                                                               */
/* ------------------------------------------------------------------ */

static void testbe_commit(uv_timer_t *timer)
{
    struct testbe *b = timer->data;
    struct testbe_queued *q = b->head;
    struct testbe_changes *ch = malloc(sizeof *ch);
    b->head = b->tail = NULL;
    b->timer_armed = false;
    while (q != NULL) {
        struct testbe_queued *next = q->next;
        struct fs_mutation *m = q->m;
        size_t i;
        int rv;
        if (ch == NULL) {
            rv = -ENOMEM;
        } else {
            ch->n = 0;
            rv = testbe_apply(b, &q->cmd, m->new_file, ch);
        }
        if (rv == 0) {
            b->applied++;
            if (b->fs != NULL) {
                fs_changes_applied(b->fs, ch->c, ch->n, q->remote ? NULL : m);
            }
        } else {
            b->rejected++;
            goulette_logf(b->log, GOULETTE_LOG_INFO, "testbe", "apply %s: %s",
                          m->path, goulette_strerror(rv));
        }
        for (i = 0; ch != NULL && i < ch->n; i++) {
            free(ch->paths[i]);
        }
        free(q);
        m->cb(m, rv);
        q = next;
    }
    free(ch);
}

static int testbe_enqueue(struct testbe *b, struct fs_mutation *m, bool remote)
{
    struct testbe_queued *q = calloc(1, sizeof *q);
    int rv;
    if (q == NULL) {
        return -ENOMEM;
    }
    rv = testbe_parse(m, &q->cmd);
    if (rv != 0) {
        b->rejected++;
        free(q);
        goulette_logf(b->log, GOULETTE_LOG_INFO, "testbe", "refuse %s: %s",
                      m->path, goulette_strerror(rv));
        return rv;
    }
    q->m = m;
    q->remote = remote;
    if (b->tail != NULL) {
        b->tail->next = q;
    } else {
        b->head = q;
    }
    b->tail = q;
    b->submitted++;
    if (!b->timer_armed) {
        uv_timer_start(&b->timer, testbe_commit, b->commit_delay_ms, 0);
        b->timer_armed = true;
    }
    return 0;
}

static int testbe_submit(void *data, struct fs_mutation *m)
{
    return testbe_enqueue(data, m, false);
}

int testbe_submit_remote(struct testbe *b, struct fs_mutation *m)
{
    return testbe_enqueue(b, m, true);
}

static void testbe_write_status(struct testbe *b, struct testbe_changes *ch)
{
    testbe_put(b, "cluster/status", REC_STATUS,
               testbe_dump(json_pack(
                   "{s:s, s:s, s:I, s:I, s:I, s:[s]}", "member", "test",
                   "leader", "test", "term", (json_int_t)b->term,
                   "commit_index", (json_int_t)b->revision, "applied_index",
                   (json_int_t)b->revision, "members", "test")),
               ch);
}

void testbe_status_change(struct testbe *b)
{
    struct testbe_changes *ch = malloc(sizeof *ch);
    size_t i;
    if (ch == NULL) {
        return;
    }
    ch->n = 0;
    b->term++;
    testbe_write_status(b, ch);
    if (b->fs != NULL) {
        fs_changes_applied(b->fs, ch->c, ch->n, NULL);
    }
    for (i = 0; i < ch->n; i++) {
        free(ch->paths[i]);
    }
    free(ch);
}

int testbe_init(struct testbe *b,
                uv_loop_t *loop,
                const struct goulette_log *log)
{
    memset(b, 0, sizeof *b);
    b->loop = loop;
    b->log = log;
    b->next_op = 1;
    b->term = 1;
    b->start_ns = testbe_now_ns();
    uv_timer_init(loop, &b->timer);
    b->timer.data = b;
    testbe_put(b, "increment/operation", REC_COUNTER, strdup("0"), NULL);
    testbe_write_status(b, NULL);
    return b->nrecs == 2 ? 0 : -ENOMEM;
}

static void testbe_timer_closed(uv_handle_t *h)
{
    struct testbe *b = h->data;
    size_t i;
    for (i = 0; i < b->nrecs; i++) {
        testbe_rec_free(b->recs[i]);
    }
    free(b->recs);
    b->recs = NULL;
    b->nrecs = 0;
}

void testbe_close(struct testbe *b)
{
    uv_close((uv_handle_t *)&b->timer, testbe_timer_closed);
}

void testbe_backend(struct testbe *b, struct fs_backend *out)
{
    memset(out, 0, sizeof *out);
    out->data = b;
    out->stat = testbe_stat;
    out->read = testbe_read;
    out->list = testbe_list;
    out->xattrs = testbe_xattrs;
    out->check_name = testbe_check_name;
    out->classify = testbe_classify;
    out->submit = testbe_submit;
}
