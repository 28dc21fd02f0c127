/* Private to store/: the in-memory model of the state machine (topics,
 * brokers, the counter, the store revision, the ring) and the transaction
 * that changes it with an undo log.  Pure: no I/O, no clock.
 *
 * A transaction (struct store__txn) is how apply changes the model:
 *
 *   txn_init --put/del/log_op...--> txn_finish --> commit   (written)
 *                     \                  \
 *                      `------------------`----> rollback   (rejected,
 *                                                            write failed)
 *
 * Every change is made to the model at once (later steps of the same
 * command see it), recorded in the undo log, queued as a LevelDB mutation
 * (key, value or delete) and as a mount change.  Commit drops the undo log;
 * rollback restores the model exactly. */
#ifndef STORE_STATE_H
#define STORE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "goulette/ring.h"
#include "goulette/store.h"

#include "codec.h"

struct store__topic
{
    struct store__topic_rec rec; /* owned */
    struct store__meta meta;
    char *json; /* owned; the record's JSON text, no newline */
    size_t json_len;
};

struct store__broker
{
    struct store__broker_rec rec; /* owned */
    struct store__meta meta;
    char *json; /* owned */
    size_t json_len;
};

struct store__state
{
    struct store__topic **topics; /* owned; sorted by name (byte order) */
    size_t n_topics;
    size_t cap_topics;
    struct store__broker **brokers; /* owned; sorted by id (byte order) */
    size_t n_brokers;
    size_t cap_brokers;
    bool has_counter; /* increment/operation exists */
    uint64_t counter; /* last operation id; ids are 1..counter */
    struct store__meta counter_meta;
    uint64_t revision;      /* store-wide revision */
    struct store_ring ring; /* one member per broker, rank = create
                               revision of its record */
    bool broken;            /* a rollback ran out of memory: the model no longer
                               matches the database and must be reloaded */
};

/* Errors: -EINVAL (bad vnodes). */
int store__state_init(struct store__state *st, unsigned vnodes);
void store__state_fini(struct store__state *st);

/* Lookups; NULL when absent.  Borrowed until the next change. */
struct store__topic *store__state_topic(const struct store__state *st,
                                        const char *name);
struct store__broker *store__state_broker(const struct store__state *st,
                                          const char *id);

/* Index of the first topic/broker whose name is > @after (0 for NULL). */
size_t store__state_topic_after(const struct store__state *st,
                                const char *after);
size_t store__state_broker_after(const struct store__state *st,
                                 const char *after);

/* Load one stored state machine record (key "S...", value as stored) into
 * an empty-or-loading model, without a transaction.  Operation records and
 * the applied index are not kept in memory and are ignored here.
 * Errors: GOULETTE_ECORRUPT (unknown key, bad value, name of the key and
 * record disagree, duplicate broker on the ring), -ENOMEM. */
int store__state_load(struct store__state *st,
                      const void *key,
                      size_t klen,
                      const void *val,
                      size_t vlen);

/* Add a mount change "<dir>/<name>" to @changes.  Errors: -ENOMEM. */
int store__changes_add(struct store_changes *changes,
                       enum store_change_kind kind,
                       const char *dir,
                       const char *name);

/* ---- Transactions -------------------------------------------------------- */

struct store__mut
{
    char *key; /* owned */
    size_t klen;
    char *val; /* owned; NULL: delete the key */
    size_t vlen;
};

struct store__undo
{
    int kind;         /* STORE__UNDO_* in state.c */
    void *old;        /* owned by the undo log: the replaced object, or NULL */
    void *cur;        /* borrowed: the object now in the model, or NULL */
    uint64_t counter; /* UNDO_COUNTER: previous value */
    struct store__meta meta; /* UNDO_COUNTER: previous metadata */
    bool has_counter;        /* UNDO_COUNTER: previous existence */
};

struct store__txn
{
    int64_t ts_ns;           /* the command's timestamp */
    uint64_t rev;            /* revision every change of this command gets */
    uint64_t old_rev;        /* st->revision before the command */
    bool dirty;              /* something changed */
    struct store__mut *muts; /* owned; LevelDB mutations, in order */
    size_t n_muts;
    size_t cap_muts;
    struct store__undo *undo; /* owned */
    size_t n_undo;
    size_t cap_undo;
    struct store_changes changes; /* owned until moved out */
};

void store__txn_init(struct store__txn *txn,
                     const struct store__state *st,
                     int64_t ts_ns);

/* Insert or replace the topic named rec->topic.  @rec is taken on success
 * (its strings now belong to the model; *rec is zeroed); on error the
 * caller still owns it.  Errors: -ENOMEM. */
int store__txn_put_topic(struct store__state *st,
                         struct store__txn *txn,
                         struct store__topic_rec *rec);

/* Delete topic @name, which must exist.  Errors: -ENOMEM. */
int store__txn_del_topic(struct store__state *st,
                         struct store__txn *txn,
                         const char *name);

/* Insert or replace a broker (and add a new one to the ring); @rec as for
 * put_topic.  Errors: -ENOMEM. */
int store__txn_put_broker(struct store__state *st,
                          struct store__txn *txn,
                          struct store__broker_rec *rec);

/* Delete broker @id, which must exist, and remove it from the ring.
 * Errors: -ENOMEM. */
int store__txn_del_broker(struct store__state *st,
                          struct store__txn *txn,
                          const char *id);

/* Append operation record {id: counter+1, function, params, timestamp}
 * and advance the counter.  @params is borrowed; its keys must already be
 * in alphabetical order (Go map order).  Errors: -ENOMEM. */
int store__txn_log_op(struct store__state *st,
                      struct store__txn *txn,
                      const char *function,
                      const json_t *params);

/* Close the transaction: when anything changed, the model takes the new
 * revision and the revision record is queued.  Errors: -ENOMEM. */
int store__txn_finish(struct store__state *st, struct store__txn *txn);

/* Keep the changes; free the undo log and mutations.  Changes are left in
 * txn->changes for the caller to move out or free. */
void store__txn_commit(struct store__state *st, struct store__txn *txn);

/* Undo every change, in reverse; free everything. */
void store__txn_rollback(struct store__state *st, struct store__txn *txn);

#endif /* STORE_STATE_H */
