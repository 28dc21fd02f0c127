/* The apply core: every command of the state machine, judged and carried
 * out against the in-memory model (store/state.h).  Pure and
 * deterministic: reads only the model and the command.
 *
 * Placement follows Goulette (goulette-sentinel.md §2.3, §2.4) with the
 * intended behaviour of §5.4:
 *
 *   command                 checks -> rejection        operations logged
 *   register broker         names, address; -EEXIST    registerBroker
 *   keepalive broker        names, address             registerBroker (new)
 *                                                      keepAliveBroker
 *   set broker status       -ENOENT, -EINVAL           setBrokerStatus
 *                                                      + re-placements
 *   unregister broker       -ENOENT                    unregisterBroker
 *                                                      + re-placements
 *   generate topic replicas -EINVAL, -EEXIST (exclusive),
 *                           ENOBROKERS                 generateTopicReplicas
 *   handle unreachable      -EINVAL, ENOBROKERS        handleUnreachableBrokers
 *                                                      + re-placements
 *     (a hint: a client's    ELIMIT (topic assigned    handleUnreachableBrokers
 *      report)               less than interval ago)   (nobody marked down)
 *   remove topic            -ENOENT                    removeTopic
 *
 * A "re-placement" happens to every topic holding a broker that went down
 * or was unregistered: its surviving replicas keep their order, the ring
 * tops it up (§2.4), and one handleUnreachableBrokers operation is logged
 * per topic, in topic byte order. */
#include "apply.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "goulette/err.h"

/* A list of brokers chosen from the model (borrowed pointers). */
struct pick
{
    struct store__broker **b;
    size_t n;
    size_t cap;
};

static int pick_init(struct pick *p, size_t cap)
{
    p->n = 0;
    p->cap = cap;
    p->b = calloc(cap > 0 ? cap : 1, sizeof *p->b);
    return p->b == NULL ? -ENOMEM : 0;
}

static void pick_fini(struct pick *p)
{
    free(p->b);
    p->b = NULL;
}

static bool pick_has(const struct pick *p, const char *id)
{
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->b[i]->rec.broker_id, id) == 0) {
            return true;
        }
    }
    return false;
}

static bool names_have(char *const *names, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], id) == 0) {
            return true;
        }
    }
    return false;
}

static int check_name(const char *name)
{
    if (name == NULL) {
        return -EINVAL;
    }
    return store_name_check(name, strlen(name));
}

static int check_address(const char *addr)
{
    if (addr == NULL) {
        return -EINVAL;
    }
    return store_address_check(addr, strlen(addr));
}

/* §2.3: call Next() exactly @rc times from @topic, stopping on the end or
 * the wrap error; keep the healthy brokers.  Unhealthy ones use up an
 * attempt, as in Goulette. */
static int walk_initial(struct store__state *st,
                        const char *topic,
                        uint32_t rc,
                        struct pick *out)
{
    struct store_ring_iter it;
    int rv = store_ring_iter_init(&it, &st->ring, topic, strlen(topic));
    if (rv != 0) {
        return rv;
    }
    for (uint32_t i = 0; i < rc && out->n < out->cap; i++) {
        const char *id = NULL;
        struct store__broker *b;
        if (store_ring_iter_next(&it, &id) != 0 || id == NULL) {
            break;
        }
        b = store__state_broker(st, id);
        if (b != NULL && b->rec.status == STORE_BROKER_HEALTHY) {
            out->b[out->n++] = b;
        }
    }
    store_ring_iter_fini(&it);
    return 0;
}

/* §2.4: walk from @topic until @needed more brokers are appended to @list,
 * skipping brokers already in @list, brokers named in @excl and unhealthy
 * ones (skips do not count).  Stops early at the end or the wrap error. */
static int walk_replacements(struct store__state *st,
                             const char *topic,
                             char *const *excl,
                             size_t n_excl,
                             size_t needed,
                             struct pick *list)
{
    struct store_ring_iter it;
    size_t found = 0;
    int rv = store_ring_iter_init(&it, &st->ring, topic, strlen(topic));
    if (rv != 0) {
        return rv;
    }
    while (found < needed && list->n < list->cap) {
        const char *id = NULL;
        struct store__broker *b;
        if (store_ring_iter_next(&it, &id) != 0 || id == NULL) {
            break;
        }
        if (pick_has(list, id) || names_have(excl, n_excl, id)) {
            continue;
        }
        b = store__state_broker(st, id);
        if (b == NULL || b->rec.status != STORE_BROKER_HEALTHY) {
            continue;
        }
        list->b[list->n++] = b;
        found++;
    }
    store_ring_iter_fini(&it);
    return 0;
}

/* Build a topic record for @list as the brokers are now. */
static int topic_rec_build(struct store__topic_rec *t,
                           const char *topic,
                           const struct pick *list,
                           uint32_t rc,
                           int64_t ts_ns)
{
    memset(t, 0, sizeof *t);
    t->topic = strdup(topic);
    t->replicas = calloc(list->n > 0 ? list->n : 1, sizeof *t->replicas);
    if (t->topic == NULL || t->replicas == NULL) {
        store__topic_rec_fini(t);
        return -ENOMEM;
    }
    for (size_t i = 0; i < list->n; i++) {
        const struct store__broker_rec *b = &list->b[i]->rec;
        t->replicas[i].broker_id = strdup(b->broker_id);
        t->replicas[i].address = strdup(b->address);
        t->replicas[i].status = b->status;
        t->n_replicas++;
        if (t->replicas[i].broker_id == NULL ||
            t->replicas[i].address == NULL) {
            store__topic_rec_fini(t);
            return -ENOMEM;
        }
    }
    t->replica_count = rc;
    t->version = ts_ns;
    t->timestamp = ts_ns / 1000000000;
    return 0;
}

/* ---- Operation params (keys in alphabetical order: Go map order) ------ */

static json_t *json_strings(char *const *s, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++) {
        if (json_array_append_new(a, json_string(s[i])) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}

static json_t *json_replicas(const struct store__topic_rec *t)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < t->n_replicas; i++) {
        if (json_array_append_new(a, store__json_replica(&t->replicas[i]))) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}

/* Build an object from (key, value) pairs given in alphabetical order,
 * taking every value; NULL if any value is NULL or out of memory. */
static json_t *params(size_t n, const char *const *keys, json_t **vals)
{
    json_t *o = json_object();
    bool ok = o != NULL;
    for (size_t i = 0; i < n; i++) {
        if (!ok || vals[i] == NULL ||
            json_object_set_new(o, keys[i], vals[i]) != 0) {
            ok = false;
            json_decref(vals[i]);
        }
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int log_op(struct store__state *st,
                  struct store__txn *txn,
                  const char *function,
                  json_t *p)
{
    int rv;
    if (p == NULL) {
        return -ENOMEM;
    }
    rv = store__txn_log_op(st, txn, function, p);
    json_decref(p);
    return rv;
}

/* Write @t (taken) and log @function for it. */
static int put_topic_logged(struct store__state *st,
                            struct store__txn *txn,
                            struct store__topic_rec *t,
                            const char *function,
                            char *const *unreachable,
                            size_t n_unreachable)
{
    json_t *p;
    int rv;

    if (strcmp(function, "generateTopicReplicas") == 0) {
        const char *k[] = {"brokers", "replica_count", "topic"};
        json_t *v[] = {json_replicas(t), json_integer(t->replica_count),
                       json_string(t->topic)};
        p = params(3, k, v);
    } else {
        const char *k[] = {"new_brokers", "replica_count", "topic",
                           "unreachable_brokers"};
        json_t *v[] = {json_replicas(t), json_integer(t->replica_count),
                       json_string(t->topic),
                       json_strings(unreachable, n_unreachable)};
        p = params(4, k, v);
    }
    if (p == NULL) {
        store__topic_rec_fini(t);
        return -ENOMEM;
    }
    rv = store__txn_put_topic(st, txn, t);
    if (rv != 0) {
        store__topic_rec_fini(t);
        json_decref(p);
        return rv;
    }
    return log_op(st, txn, function, p);
}

/* ---- Re-placement after a broker went away --------------------------- */

static bool topic_holds(const struct store__topic *t,
                        char *const *ids,
                        size_t n)
{
    for (size_t i = 0; i < t->rec.n_replicas; i++) {
        if (names_have(ids, n, t->rec.replicas[i].broker_id)) {
            return true;
        }
    }
    return false;
}

/* Re-place topic @name, which holds a broker in @gone: keep replicas that
 * still exist, are not in @gone and are not down, in order; top up from
 * the ring; log handleUnreachableBrokers naming the replicas dropped.  A
 * topic with no broker left is kept as it is (never stored empty). */
static int replace_topic(struct store__state *st,
                         struct store__txn *txn,
                         const char *name,
                         char *const *gone,
                         size_t n_gone)
{
    struct store__topic *t = store__state_topic(st, name);
    struct store__topic_rec rec;
    struct pick list;
    char **dropped = NULL;
    size_t n_dropped = 0;
    size_t rc = t->rec.replica_count;
    int rv;

    rv = pick_init(&list, st->n_brokers);
    if (rv != 0) {
        return rv;
    }
    dropped = calloc(t->rec.n_replicas + 1, sizeof *dropped);
    if (dropped == NULL) {
        pick_fini(&list);
        return -ENOMEM;
    }
    for (size_t i = 0; i < t->rec.n_replicas; i++) {
        const char *id = t->rec.replicas[i].broker_id;
        struct store__broker *b = store__state_broker(st, id);
        if (b != NULL && !names_have(gone, n_gone, id) &&
            b->rec.status != STORE_BROKER_DOWN && !pick_has(&list, id) &&
            list.n < rc) {
            list.b[list.n++] = b;
        } else {
            dropped[n_dropped++] = (char *)id;
        }
    }
    if (list.n < rc) {
        rv = walk_replacements(st, name, gone, n_gone, rc - list.n, &list);
    }
    if (rv == 0 && list.n > 0) {
        rv = topic_rec_build(&rec, name, &list, (uint32_t)rc, txn->ts_ns);
        /* @dropped borrows strings of the old record, which the model
         * keeps alive (in the undo log) until the transaction ends. */
        if (rv == 0) {
            rv = put_topic_logged(st, txn, &rec, "handleUnreachableBrokers",
                                  dropped, n_dropped);
        }
    }
    free(dropped);
    pick_fini(&list);
    return rv;
}

/* Re-place every topic (except @skip) that holds a broker of @gone, in
 * topic byte order. */
static int replace_holding(struct store__state *st,
                           struct store__txn *txn,
                           char *const *gone,
                           size_t n_gone,
                           const char *skip)
{
    /* Re-placing a topic replaces its object in place; the array's order
     * and size do not change, so walking it by index is safe. */
    for (size_t i = 0; i < st->n_topics; i++) {
        struct store__topic *t = st->topics[i];
        int rv;
        if (skip != NULL && strcmp(t->rec.topic, skip) == 0) {
            continue;
        }
        if (!topic_holds(t, gone, n_gone)) {
            continue;
        }
        rv = replace_topic(st, txn, t->rec.topic, gone, n_gone);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* ---- Brokers ---------------------------------------------------------- */

static int broker_rec_new(struct store__broker_rec *b,
                          const char *id,
                          const char *address,
                          int status,
                          char *const *topics,
                          size_t n_topics)
{
    memset(b, 0, sizeof *b);
    b->broker_id = strdup(id);
    b->address = strdup(address);
    b->status = status;
    if (n_topics > 0) {
        b->topics = calloc(n_topics, sizeof *b->topics);
    }
    if (b->broker_id == NULL || b->address == NULL ||
        (n_topics > 0 && b->topics == NULL)) {
        store__broker_rec_fini(b);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n_topics; i++) {
        b->topics[i] = strdup(topics[i]);
        if (b->topics[i] == NULL) {
            store__broker_rec_fini(b);
            return -ENOMEM;
        }
        b->n_topics++;
    }
    return 0;
}

static int put_broker(struct store__state *st,
                      struct store__txn *txn,
                      struct store__broker_rec *b)
{
    int rv = store__txn_put_broker(st, txn, b);
    if (rv != 0) {
        store__broker_rec_fini(b);
    }
    return rv;
}

/* A new broker, healthy, on the ring; logged as registerBroker. */
static int create_broker(struct store__state *st,
                         struct store__txn *txn,
                         const char *id,
                         const char *address,
                         char *const *topics,
                         size_t n_topics)
{
    struct store__broker_rec b;
    const char *k[] = {"address", "broker_id", "topics"};
    json_t *v[3];
    int rv;

    rv =
        broker_rec_new(&b, id, address, STORE_BROKER_HEALTHY, topics, n_topics);
    if (rv == 0) {
        rv = put_broker(st, txn, &b);
    }
    if (rv != 0) {
        return rv;
    }
    v[0] = json_string(address);
    v[1] = json_string(id);
    v[2] = json_strings(topics, n_topics);
    return log_op(st, txn, "registerBroker", params(3, k, v));
}

static int cmd_register(struct store__state *st,
                        struct store__txn *txn,
                        const struct store_cmd *cmd,
                        int *result)
{
    int rv = check_name(cmd->broker_id);
    if (rv == 0) {
        rv = check_address(cmd->address);
    }
    for (size_t i = 0; rv == 0 && i < cmd->n_names; i++) {
        rv = check_name(cmd->names[i]);
    }
    if (rv == 0 && store__state_broker(st, cmd->broker_id) != NULL) {
        rv = -EEXIST;
    }
    if (rv != 0) {
        *result = rv;
        return 0;
    }
    return create_broker(st, txn, cmd->broker_id, cmd->address, cmd->names,
                         cmd->n_names);
}

/* Refresh the address of broker @id in every topic that holds it. */
static int refresh_addresses(struct store__state *st,
                             struct store__txn *txn,
                             const char *id)
{
    for (size_t i = 0; i < st->n_topics; i++) {
        const struct store__topic *t = st->topics[i];
        struct store__topic_rec rec;
        struct pick list;
        int rv;
        if (!topic_holds(t, (char *const *)&id, 1)) {
            continue;
        }
        rv = pick_init(&list, t->rec.n_replicas);
        if (rv != 0) {
            return rv;
        }
        /* The topic keeps its brokers; each entry is rebuilt from the
         * broker records, which now carry the new address. */
        for (size_t k = 0; k < t->rec.n_replicas; k++) {
            struct store__broker *b =
                store__state_broker(st, t->rec.replicas[k].broker_id);
            if (b != NULL) {
                list.b[list.n++] = b;
            }
        }
        rv = topic_rec_build(&rec, t->rec.topic, &list, t->rec.replica_count,
                             txn->ts_ns);
        pick_fini(&list);
        if (rv == 0) {
            rv = store__txn_put_topic(st, txn, &rec);
            if (rv != 0) {
                store__topic_rec_fini(&rec);
            }
        }
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

static int cmd_keepalive(struct store__state *st,
                         struct store__txn *txn,
                         const struct store_cmd *cmd,
                         int *result)
{
    struct store__broker *old;
    struct store__broker_rec b;
    bool moved;
    int rv = check_name(cmd->broker_id);
    if (rv == 0) {
        rv = check_address(cmd->address);
    }
    if (rv != 0) {
        *result = rv;
        return 0;
    }
    old = store__state_broker(st, cmd->broker_id);
    if (old == NULL) {
        return create_broker(st, txn, cmd->broker_id, cmd->address, NULL, 0);
    }
    moved = strcmp(old->rec.address, cmd->address) != 0;
    if (!moved && old->rec.status == STORE_BROKER_HEALTHY) {
        return 0; /* nothing changes: no revision, no operation */
    }
    rv = broker_rec_new(&b, cmd->broker_id, cmd->address, STORE_BROKER_HEALTHY,
                        old->rec.topics, old->rec.n_topics);
    if (rv == 0) {
        rv = put_broker(st, txn, &b);
    }
    if (rv == 0) {
        const char *k[] = {"address", "broker_id", "status"};
        json_t *v[] = {json_string(cmd->address), json_string(cmd->broker_id),
                       json_integer(STORE_BROKER_HEALTHY)};
        rv = log_op(st, txn, "keepAliveBroker", params(3, k, v));
    }
    if (rv == 0 && moved) {
        rv = refresh_addresses(st, txn, cmd->broker_id);
    }
    return rv;
}

static int cmd_set_status(struct store__state *st,
                          struct store__txn *txn,
                          const struct store_cmd *cmd,
                          int *result)
{
    struct store__broker *old;
    struct store__broker_rec b;
    int rv = check_name(cmd->broker_id);
    if (rv == 0 && cmd->status > STORE_BROKER_DOWN) {
        rv = -EINVAL;
    }
    if (rv == 0) {
        old = store__state_broker(st, cmd->broker_id);
        rv = old == NULL ? -ENOENT : 0;
    }
    if (rv != 0) {
        *result = rv;
        return 0;
    }
    if (old->rec.status == (int)cmd->status) {
        return 0;
    }
    rv = broker_rec_new(&b, cmd->broker_id, old->rec.address, (int)cmd->status,
                        old->rec.topics, old->rec.n_topics);
    if (rv == 0) {
        rv = put_broker(st, txn, &b);
    }
    if (rv == 0) {
        const char *k[] = {"broker_id", "status"};
        json_t *v[] = {json_string(cmd->broker_id), json_integer(cmd->status)};
        rv = log_op(st, txn, "setBrokerStatus", params(2, k, v));
    }
    if (rv == 0 && cmd->status == STORE_BROKER_DOWN) {
        rv = replace_holding(st, txn, &cmd->broker_id, 1, NULL);
    }
    return rv;
}

static int cmd_unregister(struct store__state *st,
                          struct store__txn *txn,
                          const struct store_cmd *cmd,
                          int *result)
{
    struct store__broker *old;
    json_t *p;
    int rv = check_name(cmd->broker_id);
    if (rv == 0) {
        old = store__state_broker(st, cmd->broker_id);
        rv = old == NULL ? -ENOENT : 0;
    }
    if (rv != 0) {
        *result = rv;
        return 0;
    }
    {
        const char *k[] = {"broker_id", "topics"};
        json_t *v[] = {json_string(cmd->broker_id),
                       json_strings(old->rec.topics, old->rec.n_topics)};
        p = params(2, k, v);
    }
    if (p == NULL) {
        return -ENOMEM;
    }
    rv = store__txn_del_broker(st, txn, cmd->broker_id);
    if (rv != 0) {
        json_decref(p);
        return rv;
    }
    rv = log_op(st, txn, "unregisterBroker", p);
    if (rv == 0) {
        rv = replace_holding(st, txn, &cmd->broker_id, 1, NULL);
    }
    return rv;
}

/* ---- Topics ----------------------------------------------------------- */

static int check_replica_count(uint32_t rc)
{
    return rc == 0 || rc > STORE_REPLICA_COUNT_MAX ? -EINVAL : 0;
}

/* Resize existing topic @t to @rc: shrinking keeps the first @rc replicas
 * (the leader stays), growing tops up from the ring (§2.4) and must be
 * filled completely. */
static int resize_topic(struct store__state *st,
                        struct store__txn *txn,
                        const struct store__topic *t,
                        uint32_t rc,
                        int *result)
{
    struct store__topic_rec rec;
    struct pick list;
    size_t keep = t->rec.n_replicas < rc ? t->rec.n_replicas : rc;
    int rv = pick_init(&list, st->n_brokers + keep);
    if (rv != 0) {
        return rv;
    }
    for (size_t i = 0; i < t->rec.n_replicas && list.n < keep; i++) {
        struct store__broker *b =
            store__state_broker(st, t->rec.replicas[i].broker_id);
        if (b != NULL && !pick_has(&list, b->rec.broker_id)) {
            list.b[list.n++] = b;
        }
    }
    if (list.n < rc) {
        size_t want = rc - list.n;
        size_t before = list.n;
        rv = walk_replacements(st, t->rec.topic, NULL, 0, want, &list);
        if (rv == 0 && list.n - before < want) {
            *result = GOULETTE_ENOBROKERS;
        }
    }
    if (rv == 0 && *result == 0) {
        rv = topic_rec_build(&rec, t->rec.topic, &list, rc, txn->ts_ns);
        if (rv == 0) {
            rv = put_topic_logged(st, txn, &rec, "generateTopicReplicas", NULL,
                                  0);
        }
    }
    pick_fini(&list);
    return rv;
}

static int cmd_generate(struct store__state *st,
                        struct store__txn *txn,
                        const struct store_cmd *cmd,
                        int *result)
{
    const struct store__topic *t;
    struct store__topic_rec rec;
    struct pick list;
    uint32_t rc = cmd->replica_count;
    int rv = check_name(cmd->topic);
    if (rv == 0) {
        rv = check_replica_count(rc);
    }
    if (rv != 0) {
        *result = rv;
        return 0;
    }
    t = store__state_topic(st, cmd->topic);
    if (t != NULL && cmd->exclusive) {
        *result = -EEXIST;
        return 0;
    }
    if (t != NULL) {
        if (t->rec.replica_count == rc) {
            return 0; /* already assigned with this count: unchanged */
        }
        return resize_topic(st, txn, t, rc, result);
    }
    rv = pick_init(&list, st->n_brokers);
    if (rv != 0) {
        return rv;
    }
    rv = walk_initial(st, cmd->topic, rc, &list);
    if (rv == 0 && list.n == 0) {
        *result = GOULETTE_ENOBROKERS; /* never stored empty */
    }
    if (rv == 0 && *result == 0) {
        rv = topic_rec_build(&rec, cmd->topic, &list, rc, txn->ts_ns);
        if (rv == 0) {
            rv = put_topic_logged(st, txn, &rec, "generateTopicReplicas", NULL,
                                  0);
        }
    }
    pick_fini(&list);
    return rv;
}

/* Mark every existing broker of @names down that is not down yet; collect
 * their ids in @downed (borrowing the command's strings). */
static int mark_down(struct store__state *st,
                     struct store__txn *txn,
                     char *const *names,
                     size_t n,
                     char **downed,
                     size_t *n_downed)
{
    *n_downed = 0;
    for (size_t i = 0; i < n; i++) {
        struct store__broker *old = store__state_broker(st, names[i]);
        struct store__broker_rec b;
        int rv;
        if (old == NULL || old->rec.status == STORE_BROKER_DOWN ||
            names_have(downed, *n_downed, names[i])) {
            continue;
        }
        rv = broker_rec_new(&b, old->rec.broker_id, old->rec.address,
                            STORE_BROKER_DOWN, old->rec.topics,
                            old->rec.n_topics);
        if (rv == 0) {
            rv = put_broker(st, txn, &b);
        }
        if (rv != 0) {
            return rv;
        }
        downed[(*n_downed)++] = names[i];
    }
    return 0;
}

static bool same_assignment(const struct store__topic *t,
                            const struct pick *list,
                            uint32_t rc)
{
    if (t == NULL || t->rec.replica_count != rc ||
        t->rec.n_replicas != list->n) {
        return false;
    }
    for (size_t i = 0; i < list->n; i++) {
        const struct store_replica *r = &t->rec.replicas[i];
        const struct store__broker_rec *b = &list->b[i]->rec;
        if (strcmp(r->broker_id, b->broker_id) != 0 ||
            strcmp(r->address, b->address) != 0 || r->status != b->status) {
            return false;
        }
    }
    return true;
}

/* Carry out handleUnreachableBrokers once @list is known to be filled. */
static int handle_commit(struct store__state *st,
                         struct store__txn *txn,
                         const struct store_cmd *cmd,
                         struct pick *list,
                         uint32_t rc)
{
    struct store__topic_rec rec;
    char **downed = calloc(cmd->n_names, sizeof *downed);
    size_t n_downed = 0;
    int rv;

    if (downed == NULL) {
        return -ENOMEM;
    }
    rv = topic_rec_build(&rec, cmd->topic, list, rc, txn->ts_ns);
    if (rv == 0 && !cmd->hint) {
        rv = mark_down(st, txn, cmd->names, cmd->n_names, downed, &n_downed);
        if (rv != 0) {
            store__topic_rec_fini(&rec);
        }
    }
    if (rv == 0) {
        rv = put_topic_logged(st, txn, &rec, "handleUnreachableBrokers",
                              cmd->names, cmd->n_names);
    }
    if (rv == 0 && n_downed > 0) {
        rv = replace_holding(st, txn, downed, n_downed, cmd->topic);
    }
    free(downed);
    return rv;
}

static int cmd_handle_unreachable(struct store__state *st,
                                  struct store__txn *txn,
                                  const struct store_cmd *cmd,
                                  int *result)
{
    const struct store__topic *t;
    struct pick list;
    uint32_t rc = cmd->replica_count;
    int rv = check_name(cmd->topic);
    if (rv == 0 && cmd->n_names == 0) {
        rv = -EINVAL;
    }
    for (size_t i = 0; rv == 0 && i < cmd->n_names; i++) {
        rv = check_name(cmd->names[i]);
    }
    t = store__state_topic(st, cmd->topic);
    if (rv == 0 && rc == 0 && t != NULL) {
        rc = t->rec.replica_count; /* 0: keep the topic's count */
    }
    if (rv == 0) {
        rv = check_replica_count(rc);
    }
    if (rv != 0) {
        *result = rv;
        return 0;
    }
    rv = pick_init(&list, st->n_brokers);
    if (rv != 0) {
        return rv;
    }
    /* §1.4.3 step 4: the stored brokers that are not reported, exist and
     * are healthy, in stored order (the leader stays first if it
     * survives; otherwise the first healthy survivor leads). */
    for (size_t i = 0; t != NULL && i < t->rec.n_replicas; i++) {
        const char *id = t->rec.replicas[i].broker_id;
        struct store__broker *b = store__state_broker(st, id);
        if (b != NULL && b->rec.status == STORE_BROKER_HEALTHY &&
            !names_have(cmd->names, cmd->n_names, id) && !pick_has(&list, id) &&
            list.n < rc) {
            list.b[list.n++] = b;
        }
    }
    if (list.n < rc) {
        size_t want = rc - list.n;
        size_t before = list.n;
        rv = walk_replacements(st, cmd->topic, cmd->names, cmd->n_names, want,
                               &list);
        if (rv == 0 && list.n - before < want) {
            *result = GOULETTE_ENOBROKERS;
        }
    }
    if (rv == 0 && *result == 0) {
        bool none_to_mark = true;
        for (size_t i = 0; i < cmd->n_names; i++) {
            struct store__broker *b = store__state_broker(st, cmd->names[i]);
            if (b != NULL && b->rec.status != STORE_BROKER_DOWN) {
                none_to_mark = false;
            }
        }
        /* Nothing to mark and the same assignment: a no-op. */
        if (cmd->hint) {
            none_to_mark = true; /* a client's report marks nobody */
        }
        if (none_to_mark && same_assignment(t, &list, rc)) {
            /* nothing to do */
        } else if (cmd->hint && t != NULL &&
                   cmd->timestamp_ns - t->rec.version < cmd->interval_ns) {
            /* A report would move a topic whose assignment is younger
             * than the interval: refused, so that reports cannot keep a
             * topic moving (docs/liveness.md). */
            *result = GOULETTE_ELIMIT;
        } else {
            rv = handle_commit(st, txn, cmd, &list, rc);
        }
    }
    pick_fini(&list);
    return rv;
}

static int cmd_remove_topic(struct store__state *st,
                            struct store__txn *txn,
                            const struct store_cmd *cmd,
                            int *result)
{
    int rv = check_name(cmd->topic);
    if (rv == 0 && store__state_topic(st, cmd->topic) == NULL) {
        rv = -ENOENT;
    }
    if (rv != 0) {
        *result = rv;
        return 0;
    }
    rv = store__txn_del_topic(st, txn, cmd->topic);
    if (rv == 0) {
        const char *k[] = {"topic"};
        json_t *v[] = {json_string(cmd->topic)};
        rv = log_op(st, txn, "removeTopic", params(1, k, v));
    }
    return rv;
}

int store__apply(struct store__state *st,
                 const struct store_cmd *cmd,
                 struct store__txn *txn,
                 int *result)
{
    int rv;

    *result = 0;
    switch (cmd->type) {
    case STORE_CMD_REGISTER_BROKER:
        rv = cmd_register(st, txn, cmd, result);
        break;
    case STORE_CMD_UNREGISTER_BROKER:
        rv = cmd_unregister(st, txn, cmd, result);
        break;
    case STORE_CMD_KEEPALIVE_BROKER:
        rv = cmd_keepalive(st, txn, cmd, result);
        break;
    case STORE_CMD_SET_BROKER_STATUS:
        rv = cmd_set_status(st, txn, cmd, result);
        break;
    case STORE_CMD_GENERATE_TOPIC_REPLICAS:
        rv = cmd_generate(st, txn, cmd, result);
        break;
    case STORE_CMD_HANDLE_UNREACHABLE:
        rv = cmd_handle_unreachable(st, txn, cmd, result);
        break;
    case STORE_CMD_REMOVE_TOPIC:
        rv = cmd_remove_topic(st, txn, cmd, result);
        break;
    default:
        rv = 0;
        *result = -EINVAL;
        break;
    }
    if (rv == 0 && *result == 0) {
        rv = store__txn_finish(st, txn);
    }
    if (rv != 0 || *result != 0) {
        store__txn_rollback(st, txn);
    }
    return rv;
}
