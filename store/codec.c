/* Record formats of the state machine: key layout, the etcd-style record
 * header, and Goulette's JSON values (topic, broker, operation, counter)
 * with Go encoding/json's exact output.  Also the name and address checks.
 * Pure: no I/O; memory only. */
#include "codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "goulette/err.h"

void store__put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xFFu);
        v >>= 8;
    }
}

uint64_t store__get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

size_t store__key_named(char kind, const char *name, char *key)
{
    size_t n = strlen(name);
    key[0] = STORE_KEY_STATE;
    key[1] = kind;
    memcpy(key + 2, name, n);
    return n + 2;
}

size_t store__key_op(uint64_t id, char *key)
{
    key[0] = STORE_KEY_STATE;
    key[1] = STORE_KEY_OP;
    store__put_u64((unsigned char *)key + 2, id);
    return 10;
}

char *store__strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* ---- Names ----------------------------------------------------------------
 */

/* Length of the valid UTF-8 sequence at @p (at most @n bytes), 0 if none.
 * Rejects overlong forms, surrogates and code points above U+10FFFF, as
 * jansson does. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    uint32_t cp;
    size_t len;
    if (p[0] < 0x80) {
        return 1;
    }
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        len = 2;
        cp = p[0] & 0x1Fu;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        len = 3;
        cp = p[0] & 0x0Fu;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        len = 4;
        cp = p[0] & 0x07u;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0u) != 0x80u) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3Fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return len;
}

int store_name_check(const char *name, size_t len)
{
    const unsigned char *p = (const unsigned char *)name;
    size_t i = 0;

    if (len == 0) {
        return -EINVAL;
    }
    if (len > STORE_NAME_MAX) {
        return -ENAMETOOLONG;
    }
    if ((len == 1 && name[0] == '.') ||
        (len == 2 && name[0] == '.' && name[1] == '.')) {
        return -EINVAL;
    }
    while (i < len) {
        size_t n;
        if (p[i] == '\0' || p[i] == '/') {
            return -EINVAL;
        }
        n = utf8_seq(p + i, len - i);
        if (n == 0) {
            return -EINVAL;
        }
        i += n;
    }
    return 0;
}

int store_address_check(const char *addr, size_t len)
{
    size_t colon = len;
    size_t hostlen;
    unsigned long port = 0;

    if (len == 0 || len > STORE_NAME_MAX) {
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)addr[i];
        if (c <= ' ' || c == 0x7F || c == '/') {
            return -EINVAL;
        }
        if (c == ':') {
            colon = i;
        }
    }
    if (colon == len || colon == 0 || colon + 1 == len) {
        return -EINVAL;
    }
    hostlen = colon;
    if (addr[0] == '[') {
        /* "[v6]:port": the bracket must close right before the colon. */
        if (hostlen < 3 || addr[hostlen - 1] != ']') {
            return -EINVAL;
        }
    } else if (memchr(addr, ':', hostlen) != NULL ||
               memchr(addr, '[', hostlen) != NULL ||
               memchr(addr, ']', hostlen) != NULL) {
        return -EINVAL;
    }
    if (len - colon - 1 > 5) {
        return -EINVAL;
    }
    for (size_t i = colon + 1; i < len; i++) {
        if (addr[i] < '0' || addr[i] > '9') {
            return -EINVAL;
        }
        port = port * 10 + (unsigned long)(addr[i] - '0');
    }
    if (port < 1 || port > 65535) {
        return -EINVAL;
    }
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq((const unsigned char *)addr + i, len - i);
        if (n == 0) {
            return -EINVAL;
        }
        i += n;
    }
    return 0;
}

/* ---- Record header --------------------------------------------------------
 */

char *store__record_encode(const struct store__meta *meta,
                           const char *payload,
                           size_t plen,
                           size_t *vlen)
{
    unsigned char *v = malloc(STORE_HDR_LEN + plen);
    if (v == NULL) {
        return NULL;
    }
    store__put_u64(v, meta->create_rev);
    store__put_u64(v + 8, meta->mod_rev);
    store__put_u64(v + 16, meta->version);
    store__put_u64(v + 24, (uint64_t)meta->mtime_ns);
    if (plen > 0) {
        memcpy(v + STORE_HDR_LEN, payload, plen);
    }
    *vlen = STORE_HDR_LEN + plen;
    return (char *)v;
}

int store__record_decode(const void *val,
                         size_t vlen,
                         struct store__meta *meta,
                         const char **payload,
                         size_t *plen)
{
    const unsigned char *v = val;
    if (vlen < STORE_HDR_LEN) {
        return GOULETTE_ECORRUPT;
    }
    meta->create_rev = store__get_u64(v);
    meta->mod_rev = store__get_u64(v + 8);
    meta->version = store__get_u64(v + 16);
    meta->mtime_ns = (int64_t)store__get_u64(v + 24);
    *payload = (const char *)v + STORE_HDR_LEN;
    *plen = vlen - STORE_HDR_LEN;
    if (meta->version == 0 || meta->create_rev > meta->mod_rev) {
        return GOULETTE_ECORRUPT;
    }
    return 0;
}

/* ---- JSON output -----------------------------------------------------------
 */

/* Rewrite jansson's compact output into Go's: escape < > & U+2028 U+2029
 * (they can only occur inside strings, raw) and lowercase the hex digits of
 * \u escapes (jansson writes \u001F, Go \u001f). */
static char *go_escape(const char *in, size_t *len)
{
    size_t n = strlen(in);
    size_t extra = 0;
    char *out;
    size_t w = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '<' || c == '>' || c == '&') {
            extra += 5;
        } else if (c == 0xE2 && i + 2 < n && (unsigned char)in[i + 1] == 0x80 &&
                   ((unsigned char)in[i + 2] == 0xA8 ||
                    (unsigned char)in[i + 2] == 0xA9)) {
            extra += 3;
        }
    }
    out = malloc(n + extra + 1);
    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '\\') {
            out[w++] = in[i++];
            if (in[i] == 'u') {
                out[w++] = 'u';
                for (int k = 1; k <= 4; k++) {
                    char h = in[i + k];
                    out[w++] =
                        (h >= 'A' && h <= 'F') ? (char)(h - 'A' + 'a') : h;
                }
                i += 4;
            } else {
                out[w++] = in[i];
            }
        } else if (c == '<' || c == '>' || c == '&') {
            const char *esc = c == '<'   ? "\\u003c"
                              : c == '>' ? "\\u003e"
                                         : "\\u0026";
            memcpy(out + w, esc, 6);
            w += 6;
        } else if (c == 0xE2 && i + 2 < n && (unsigned char)in[i + 1] == 0x80 &&
                   ((unsigned char)in[i + 2] == 0xA8 ||
                    (unsigned char)in[i + 2] == 0xA9)) {
            memcpy(out + w,
                   (unsigned char)in[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
            w += 6;
            i += 2;
        } else {
            out[w++] = (char)c;
        }
    }
    out[w] = '\0';
    *len = w;
    return out;
}

/* Output buffer for json_dump_callback.  The failure flag is sticky because
 * jansson 2.14 ignores the callback's result for object keys: on a failed
 * append it would carry on and report success with bytes missing. */
struct dump_buf
{
    char *p;
    size_t len;
    size_t cap;
    bool failed;
};

static int dump_append(const char *data, size_t size, void *arg)
{
    struct dump_buf *b = arg;
    if (b->failed) {
        return -1;
    }
    if (b->len + size + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (cap < b->len + size + 1) {
            cap *= 2;
        }
        p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = true;
            return -1;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, size);
    b->len += size;
    b->p[b->len] = '\0';
    return 0;
}

char *store__json_dump(const json_t *json, size_t *len)
{
    struct dump_buf b = {NULL, 0, 0, false};
    char *out = NULL;
    int rv = json_dump_callback(json, dump_append, &b,
                                JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (rv == 0 && !b.failed && b.p != NULL) {
        out = go_escape(b.p, len);
    }
    free(b.p);
    return out;
}

json_t *store__json_replica(const struct store_replica *r)
{
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    if (json_object_set_new(o, "broker_id", json_string(r->broker_id)) ||
        json_object_set_new(o, "address", json_string(r->address)) ||
        json_object_set_new(o, "status", json_integer(r->status))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static char *dump_and_free(json_t *o, size_t *len)
{
    char *s;
    if (o == NULL) {
        return NULL;
    }
    s = store__json_dump(o, len);
    json_decref(o);
    return s;
}

char *store__topic_encode(const struct store__topic_rec *t, size_t *len)
{
    json_t *o = json_object();
    json_t *arr = json_array();
    if (o == NULL || arr == NULL) {
        json_decref(o);
        json_decref(arr);
        return NULL;
    }
    for (size_t i = 0; i < t->n_replicas; i++) {
        if (json_array_append_new(arr, store__json_replica(&t->replicas[i]))) {
            json_decref(arr);
            json_decref(o);
            return NULL;
        }
    }
    if (json_object_set_new(o, "topic", json_string(t->topic)) ||
        json_object_set(o, "brokers", arr) ||
        json_object_set_new(o, "version", json_integer(t->version)) ||
        json_object_set_new(o, "timestamp", json_integer(t->timestamp)) ||
        json_object_set_new(o, "replica_count",
                            json_integer(t->replica_count))) {
        json_decref(arr);
        json_decref(o);
        return NULL;
    }
    json_decref(arr); /* o holds it now */
    return dump_and_free(o, len);
}

char *store__broker_encode(const struct store__broker_rec *b, size_t *len)
{
    json_t *o = json_object();
    json_t *arr = json_array();
    if (o == NULL || arr == NULL) {
        json_decref(o);
        json_decref(arr);
        return NULL;
    }
    for (size_t i = 0; i < b->n_topics; i++) {
        if (json_array_append_new(arr, json_string(b->topics[i]))) {
            json_decref(arr);
            json_decref(o);
            return NULL;
        }
    }
    if (json_object_set_new(o, "broker_id", json_string(b->broker_id)) ||
        json_object_set_new(o, "address", json_string(b->address)) ||
        json_object_set_new(o, "status", json_integer(b->status)) ||
        json_object_set(o, "topics", arr)) {
        json_decref(arr);
        json_decref(o);
        return NULL;
    }
    json_decref(arr); /* o holds it now */
    return dump_and_free(o, len);
}

char *store__op_encode(const struct store__op_rec *op, size_t *len)
{
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    if (json_object_set_new(o, "id", json_integer(op->id)) ||
        json_object_set_new(o, "function", json_string(op->function)) ||
        json_object_set_new(o, "params", json_string(op->params)) ||
        json_object_set_new(o, "timestamp", json_integer(op->timestamp))) {
        json_decref(o);
        return NULL;
    }
    return dump_and_free(o, len);
}

/* ---- JSON input ------------------------------------------------------------
 */

static int dup_string(json_t *o, const char *field, char **out)
{
    json_t *v = json_object_get(o, field);
    if (!json_is_string(v)) {
        return GOULETTE_ECORRUPT;
    }
    *out = store__strndup(json_string_value(v), json_string_length(v));
    return *out == NULL ? -ENOMEM : 0;
}

static int get_int(json_t *o, const char *field, int64_t *out)
{
    json_t *v = json_object_get(o, field);
    if (!json_is_integer(v)) {
        return GOULETTE_ECORRUPT;
    }
    *out = (int64_t)json_integer_value(v);
    return 0;
}

static json_t *load(const char *json, size_t len)
{
    json_error_t err;
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (o != NULL && !json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

void store__topic_rec_fini(struct store__topic_rec *t)
{
    for (size_t i = 0; i < t->n_replicas; i++) {
        free((char *)t->replicas[i].broker_id);
        free((char *)t->replicas[i].address);
    }
    free(t->replicas);
    free(t->topic);
    memset(t, 0, sizeof *t);
}

int store__topic_decode(const char *json,
                        size_t len,
                        struct store__topic_rec *t)
{
    json_t *o = load(json, len);
    json_t *arr;
    int64_t rc = 0;
    int rv;

    memset(t, 0, sizeof *t);
    if (o == NULL) {
        return GOULETTE_ECORRUPT;
    }
    rv = dup_string(o, "topic", &t->topic);
    if (rv == 0) {
        rv = get_int(o, "version", &t->version);
    }
    if (rv == 0) {
        rv = get_int(o, "timestamp", &t->timestamp);
    }
    if (rv == 0) {
        rv = get_int(o, "replica_count", &rc);
    }
    if (rv == 0 && (rc < 0 || rc > UINT32_MAX)) {
        rv = GOULETTE_ECORRUPT;
    }
    t->replica_count = (uint32_t)rc;
    arr = json_object_get(o, "brokers");
    if (rv == 0 && !json_is_array(arr)) {
        rv = GOULETTE_ECORRUPT;
    }
    if (rv == 0 && json_array_size(arr) > 0) {
        t->replicas = calloc(json_array_size(arr), sizeof *t->replicas);
        if (t->replicas == NULL) {
            rv = -ENOMEM;
        }
    }
    for (size_t i = 0; rv == 0 && i < json_array_size(arr); i++) {
        json_t *b = json_array_get(arr, i);
        struct store_replica *r = &t->replicas[i];
        int64_t status = 0;
        char *id = NULL;
        char *addr = NULL;
        if (!json_is_object(b)) {
            rv = GOULETTE_ECORRUPT;
            break;
        }
        t->n_replicas++;
        rv = dup_string(b, "broker_id", &id);
        r->broker_id = id;
        if (rv == 0) {
            rv = dup_string(b, "address", &addr);
            r->address = addr;
        }
        if (rv == 0) {
            rv = get_int(b, "status", &status);
        }
        if (rv == 0 && (status < INT32_MIN || status > INT32_MAX)) {
            rv = GOULETTE_ECORRUPT;
        }
        r->status = (int)status;
    }
    json_decref(o);
    if (rv != 0) {
        store__topic_rec_fini(t);
    }
    return rv;
}

void store__broker_rec_fini(struct store__broker_rec *b)
{
    for (size_t i = 0; i < b->n_topics; i++) {
        free(b->topics[i]);
    }
    free(b->topics);
    free(b->broker_id);
    free(b->address);
    memset(b, 0, sizeof *b);
}

int store__broker_decode(const char *json,
                         size_t len,
                         struct store__broker_rec *b)
{
    json_t *o = load(json, len);
    json_t *arr;
    int64_t status = 0;
    int rv;

    memset(b, 0, sizeof *b);
    if (o == NULL) {
        return GOULETTE_ECORRUPT;
    }
    rv = dup_string(o, "broker_id", &b->broker_id);
    if (rv == 0) {
        rv = dup_string(o, "address", &b->address);
    }
    if (rv == 0) {
        rv = get_int(o, "status", &status);
    }
    if (rv == 0 && (status < INT32_MIN || status > INT32_MAX)) {
        rv = GOULETTE_ECORRUPT;
    }
    b->status = (int)status;
    /* "topics" is ours (Goulette's heartbeat JSON has only the first three
     * fields): absent or null reads as no topics. */
    arr = json_object_get(o, "topics");
    if (rv == 0 && arr != NULL && !json_is_null(arr) && !json_is_array(arr)) {
        rv = GOULETTE_ECORRUPT;
    }
    if (rv == 0 && json_is_array(arr) && json_array_size(arr) > 0) {
        b->topics = calloc(json_array_size(arr), sizeof *b->topics);
        if (b->topics == NULL) {
            rv = -ENOMEM;
        }
    }
    for (size_t i = 0;
         rv == 0 && json_is_array(arr) && i < json_array_size(arr); i++) {
        json_t *s = json_array_get(arr, i);
        if (!json_is_string(s)) {
            rv = GOULETTE_ECORRUPT;
            break;
        }
        b->topics[i] =
            store__strndup(json_string_value(s), json_string_length(s));
        if (b->topics[i] == NULL) {
            rv = -ENOMEM;
            break;
        }
        b->n_topics++;
    }
    json_decref(o);
    if (rv != 0) {
        store__broker_rec_fini(b);
    }
    return rv;
}

void store__op_rec_fini(struct store__op_rec *op)
{
    free(op->function);
    free(op->params);
    memset(op, 0, sizeof *op);
}

int store__op_decode(const char *json, size_t len, struct store__op_rec *op)
{
    json_t *o = load(json, len);
    int rv;

    memset(op, 0, sizeof *op);
    if (o == NULL) {
        return GOULETTE_ECORRUPT;
    }
    rv = get_int(o, "id", &op->id);
    if (rv == 0) {
        rv = dup_string(o, "function", &op->function);
    }
    if (rv == 0) {
        rv = dup_string(o, "params", &op->params);
    }
    if (rv == 0) {
        rv = get_int(o, "timestamp", &op->timestamp);
    }
    json_decref(o);
    if (rv != 0) {
        store__op_rec_fini(op);
    }
    return rv;
}

int store__counter_decode(const char *text, size_t len, uint64_t *value)
{
    uint64_t v = 0;
    if (len == 0 || len > 19) {
        return GOULETTE_ECORRUPT;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return GOULETTE_ECORRUPT;
        }
        v = v * 10 + (uint64_t)(text[i] - '0');
    }
    *value = v;
    return 0;
}
