/* Private to store/: the state machine's key layout, record header and the
 * JSON values of Goulette's etcd records (goulette-sentinel.md §3.2), built
 * and parsed with jansson.  Pure: no I/O. */
#ifndef STORE_CODEC_H
#define STORE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "goulette/store.h"

/* ---- Key layout (docs/store.md) ----------------------------------------- */

#define STORE_KEY_META 'M'  /* node metadata */
#define STORE_KEY_RAFT 'R'  /* reserved for the Raft runtime */
#define STORE_KEY_STATE 'S' /* the state machine */

/* Second byte of a state machine key. */
#define STORE_KEY_APPLIED 'a'  /* "Sa": applied index, term (2 x u64 BE) */
#define STORE_KEY_BROKER 'b'   /* "Sb" <broker_id>: broker record */
#define STORE_KEY_COUNTER 'c'  /* "Sc": increment/operation */
#define STORE_KEY_OP 'o'       /* "So" <id u64 BE>: operation record */
#define STORE_KEY_REVISION 'r' /* "Sr": store-wide revision (u64 BE) */
#define STORE_KEY_TOPIC 't'    /* "St" <topic>: topic record */

/* "Mv": format version of the database (u32 BE). */
#define STORE_META_VERSION_KEY "Mv"
#define STORE_FORMAT_VERSION 1u

/* Longest key: 2 bytes of prefix plus a name. */
#define STORE_KEY_MAX (2 + STORE_NAME_MAX)

void store__put_u64(unsigned char *p, uint64_t v);
uint64_t store__get_u64(const unsigned char *p);

/* Build the key of a named record (@kind STORE_KEY_TOPIC or _BROKER) into
 * @key (STORE_KEY_MAX bytes); returns its length. */
size_t store__key_named(char kind, const char *name, char *key);

/* Build the key of operation @id into @key (10 bytes); returns 10. */
size_t store__key_op(uint64_t id, char *key);

/* ---- Record header ------------------------------------------------------ */

/* etcd-style metadata kept in front of every record value. */
struct store__meta
{
    uint64_t create_rev; /* store revision that created the key */
    uint64_t mod_rev;    /* store revision of the last change */
    uint64_t version;    /* changes since creation, from 1 */
    int64_t mtime_ns;    /* command timestamp of the last change */
};

#define STORE_HDR_LEN 32

/* Value = header (4 x u64 BE) + payload.  Encode into a fresh buffer
 * (returned, free with free()); NULL when out of memory. */
char *store__record_encode(const struct store__meta *meta,
                           const char *payload,
                           size_t plen,
                           size_t *vlen);

/* Split a value.  Errors: GOULETTE_ECORRUPT (shorter than a header). */
int store__record_decode(const void *val,
                         size_t vlen,
                         struct store__meta *meta,
                         const char **payload,
                         size_t *plen);

/* ---- JSON ---------------------------------------------------------------- */

/* Serialise @json compactly, the way Go's encoding/json writes it (no
 * spaces, object keys in insertion order, HTML-safe escapes \u003c \u003e
 * \u0026, \u2028 \u2029, lowercase hex).  Returned, free with free();
 * NULL when out of memory. */
char *store__json_dump(const json_t *json, size_t *len);

/* Goulette's BrokerInfo object {"broker_id","address","status"}. */
json_t *store__json_replica(const struct store_replica *r);

/* A parsed topic record (all strings owned). */
struct store__topic_rec
{
    char *topic;
    struct store_replica *replicas; /* strings owned (cast away const) */
    size_t n_replicas;
    uint32_t replica_count;
    int64_t version;
    int64_t timestamp;
};

/* A parsed broker record. */
struct store__broker_rec
{
    char *broker_id;
    char *address;
    int status;
    char **topics;
    size_t n_topics;
};

/* A parsed operation record. */
struct store__op_rec
{
    int64_t id;
    char *function;
    char *params; /* the JSON text of the params */
    int64_t timestamp;
};

/* Encoders: the JSON text (no newline), returned, free with free().  NULL
 * when out of memory or when a string is not UTF-8. */
char *store__topic_encode(const struct store__topic_rec *t, size_t *len);
char *store__broker_encode(const struct store__broker_rec *b, size_t *len);
char *store__op_encode(const struct store__op_rec *op, size_t *len);

/* Decoders.  Errors: GOULETTE_ECORRUPT (not the expected JSON), -ENOMEM.
 * On success the record owns its strings: free with the _fini function. */
int store__topic_decode(const char *json,
                        size_t len,
                        struct store__topic_rec *t);
int store__broker_decode(const char *json,
                         size_t len,
                         struct store__broker_rec *b);
int store__op_decode(const char *json, size_t len, struct store__op_rec *op);

void store__topic_rec_fini(struct store__topic_rec *t);
void store__broker_rec_fini(struct store__broker_rec *b);
void store__op_rec_fini(struct store__op_rec *op);

/* Counter value: decimal text.  Errors: GOULETTE_ECORRUPT. */
int store__counter_decode(const char *text, size_t len, uint64_t *value);

/* Duplicate @n bytes of @s as a NUL-terminated string; NULL on ENOMEM. */
char *store__strndup(const char *s, size_t n);

#endif /* STORE_CODEC_H */
