/* Telling brokers their roles: the per-topic jobs, their order, retries and
 * settlement (roles.h).  Pure: no I/O, no clock, no random source.
 *
 * Design.  A topic holds one job per broker it concerns: first its
 * replicas, in assignment order (leader first), then the brokers dropped
 * from it that still owe a RemoveTopic.  A job is keyed by its broker, so
 * at most one call per (topic, broker) is in flight, and a broker moving
 * between "replica" and "dropped" keeps its in-flight flag and backoff.
 *
 *   replica job:  acked != digest  --roles_next-->  in flight
 *                 in flight --ACKED--> acked = the digest sent
 *                 in flight --FAILED--> waiting (due = now + backoff)
 *                 due only when it is the leader's job, or when the
 *                 leader's job has acked the current digest
 *   removal job:  --roles_next--> in flight --ACKED/ABSENT--> gone
 *                 --FAILED--> waiting;  again a replica: a replica job
 *
 * A topic is settled when every replica job has acked the current digest
 * and no removal is owed; the leader then records it delivered (and hands
 * it out for the PeerNotice).  Invariants: r->inflight counts the jobs with
 * inflight set; a topic with work left is on the active list; jobs of an
 * older generation never touch the counters. */
#include "roles.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct roles_job
{
    char *broker;        /* owned */
    uint64_t acked;      /* digest this broker acknowledged; 0: none */
    uint64_t due_ms;     /* not sent before this time */
    uint32_t backoff_ms; /* the last retry delay's base; 0: none yet */
    uint32_t failures;   /* since the last success */
    bool inflight;
    bool removal; /* dropped from the topic: owes a RemoveTopic */
};

struct roles_topic
{
    struct roles_topic *next;          /* hash chain */
    struct roles_topic *anext, *aprev; /* the active list */
    bool active;
    char *name;             /* owned */
    uint64_t digest;        /* current assignment; 0: deleted */
    uint64_t delivered;     /* digest known delivered; 0: none */
    size_t n;               /* replicas: jobs[0..n) */
    struct roles_job *jobs; /* owned; replicas, then removals */
    size_t njobs, cap;
};

static uint64_t hash_of(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t roles_digest(const char *const *ids,
                      const char *const *addrs,
                      size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    size_t i;
    const char *parts[2];
    int k;
    for (i = 0; i < n; i++) {
        parts[0] = ids[i];
        parts[1] = addrs[i] != NULL ? addrs[i] : "";
        for (k = 0; k < 2; k++) {
            const unsigned char *p = (const unsigned char *)parts[k];
            for (; *p != '\0'; p++) {
                h ^= *p;
                h *= 1099511628211ULL;
            }
            /* A separator no name or address contains. */
            h ^= 0xff;
            h *= 1099511628211ULL;
        }
    }
    return h != 0 ? h : 1;
}

/* xorshift64* */
static uint64_t prng_next(struct roles *r)
{
    uint64_t x = r->prng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->prng = x;
    return x * 2685821657736338717ULL;
}

int roles_init(struct roles *r, const struct roles_config *c)
{
    if (c == NULL) {
        return -EINVAL;
    }
    memset(r, 0, sizeof *r);
    r->prng = c->seed != 0 ? c->seed : 0x9e3779b97f4a7c15ULL;
    r->backoff_min_ms = c->backoff_min_ms != 0 ? c->backoff_min_ms : 200;
    r->backoff_max_ms = c->backoff_max_ms != 0 ? c->backoff_max_ms : 30000;
    if (r->backoff_max_ms < r->backoff_min_ms) {
        r->backoff_max_ms = r->backoff_min_ms;
    }
    r->max_inflight = c->max_inflight != 0 ? c->max_inflight : 64;
    return 0;
}

static void topic_free(struct roles_topic *t)
{
    size_t i;
    for (i = 0; i < t->njobs; i++) {
        free(t->jobs[i].broker);
    }
    free(t->jobs);
    free(t->name);
    free(t);
}

static void clear_delivered(struct roles *r)
{
    size_t i;
    for (i = 0; i < r->ndelivered; i++) {
        free(r->delivered[i]);
    }
    r->ndelivered = 0;
}

void roles_fini(struct roles *r)
{
    size_t b;
    for (b = 0; b < r->nbuckets; b++) {
        struct roles_topic *t = r->buckets[b], *next;
        for (; t != NULL; t = next) {
            next = t->next;
            topic_free(t);
        }
    }
    free(r->buckets);
    clear_delivered(r);
    free(r->delivered);
    free(r->delivered_digest);
    memset(r, 0, sizeof *r);
}

/* ---- the table and the active list ---------------------------------- */

static struct roles_topic *find(const struct roles *r, const char *name)
{
    struct roles_topic *t;
    if (r->nbuckets == 0) {
        return NULL;
    }
    t = r->buckets[hash_of(name) % r->nbuckets];
    for (; t != NULL; t = t->next) {
        if (strcmp(t->name, name) == 0) {
            return t;
        }
    }
    return NULL;
}

static int grow(struct roles *r)
{
    size_t n = r->nbuckets == 0 ? 64 : r->nbuckets * 2;
    struct roles_topic **b = calloc(n, sizeof *b);
    size_t i;
    if (b == NULL) {
        return -ENOMEM;
    }
    for (i = 0; i < r->nbuckets; i++) {
        struct roles_topic *t = r->buckets[i], *next;
        for (; t != NULL; t = next) {
            size_t k = hash_of(t->name) % n;
            next = t->next;
            t->next = b[k];
            b[k] = t;
        }
    }
    free(r->buckets);
    r->buckets = b;
    r->nbuckets = n;
    return 0;
}

static struct roles_topic *add(struct roles *r, const char *name)
{
    struct roles_topic *t;
    size_t k;
    if (r->ntopics >= r->nbuckets && grow(r) != 0) {
        return NULL;
    }
    t = calloc(1, sizeof *t);
    if (t == NULL) {
        return NULL;
    }
    t->name = strdup(name);
    if (t->name == NULL) {
        free(t);
        return NULL;
    }
    k = hash_of(name) % r->nbuckets;
    t->next = r->buckets[k];
    r->buckets[k] = t;
    r->ntopics++;
    return t;
}

static void activate(struct roles *r, struct roles_topic *t)
{
    if (t->active) {
        return;
    }
    t->active = true;
    t->aprev = NULL;
    t->anext = r->active;
    if (r->active != NULL) {
        r->active->aprev = t;
    } else {
        r->active_tail = t;
    }
    r->active = t;
}

static void deactivate(struct roles *r, struct roles_topic *t)
{
    if (!t->active) {
        return;
    }
    if (t->aprev != NULL) {
        t->aprev->anext = t->anext;
    } else {
        r->active = t->anext;
    }
    if (t->anext != NULL) {
        t->anext->aprev = t->aprev;
    } else {
        r->active_tail = t->aprev;
    }
    t->active = false;
    t->anext = t->aprev = NULL;
}

/* Move @t to the end of the active list: the topics after it get their
 * turn first (round robin under the in-flight cap). */
static void rotate(struct roles *r, struct roles_topic *t)
{
    struct roles_topic *last;
    if (!t->active || t->anext == NULL) {
        return;
    }
    deactivate(r, t);
    last = r->active_tail;
    t->active = true;
    t->aprev = last;
    last->anext = t;
    r->active_tail = t;
}

static void drop(struct roles *r, struct roles_topic *t)
{
    struct roles_topic **p = &r->buckets[hash_of(t->name) % r->nbuckets];
    size_t i;
    for (i = 0; i < t->njobs; i++) {
        if (t->jobs[i].inflight) {
            r->inflight--; /* its reply finds no job and is ignored */
        }
    }
    deactivate(r, t);
    while (*p != t) {
        p = &(*p)->next;
    }
    *p = t->next;
    r->ntopics--;
    topic_free(t);
}

/* ---- settlement -------------------------------------------------------- */

static bool settled(const struct roles_topic *t)
{
    size_t i;
    if (t->njobs > t->n) {
        return false;
    }
    for (i = 0; i < t->n; i++) {
        if (t->jobs[i].acked != t->digest) {
            return false;
        }
    }
    return true;
}

static int push_delivered(struct roles *r, const char *topic, uint64_t d)
{
    char *copy;
    if (r->ndelivered == r->delivered_cap) {
        size_t cap = r->delivered_cap == 0 ? 16 : r->delivered_cap * 2;
        char **v = realloc(r->delivered, cap * sizeof *v);
        uint64_t *dv;
        if (v == NULL) {
            return -ENOMEM;
        }
        r->delivered = v;
        dv = realloc(r->delivered_digest, cap * sizeof *dv);
        if (dv == NULL) {
            return -ENOMEM;
        }
        r->delivered_digest = dv;
        r->delivered_cap = cap;
    }
    copy = strdup(topic);
    if (copy == NULL) {
        return -ENOMEM;
    }
    r->delivered[r->ndelivered] = copy;
    r->delivered_digest[r->ndelivered] = d;
    r->ndelivered++;
    return 0;
}

/* If @t is settled, take it off the active list; as the leader, record it
 * delivered and announce it.  A deleted topic with nothing owed is
 * forgotten.  Returns true if @t was freed. */
static bool check_settled(struct roles *r, struct roles_topic *t)
{
    if (!settled(t)) {
        activate(r, t);
        return false;
    }
    deactivate(r, t);
    if (r->leading && (t->delivered != t->digest || t->digest == 0)) {
        t->delivered = t->digest;
        /* Out of memory only costs a re-send after a failover. */
        (void)push_delivered(r, t->name, t->digest);
    }
    if (t->digest == 0) {
        drop(r, t);
        return true;
    }
    return false;
}

/* ---- applied assignments ------------------------------------------------ */

static struct roles_job *job_of(struct roles_topic *t, const char *broker)
{
    size_t i;
    for (i = 0; i < t->njobs; i++) {
        if (strcmp(t->jobs[i].broker, broker) == 0) {
            return &t->jobs[i];
        }
    }
    return NULL;
}

static void job_reset(struct roles_job *j)
{
    j->due_ms = 0;
    j->backoff_ms = 0;
    j->failures = 0;
}

static bool same_replicas(const struct roles_topic *t,
                          const char *const *ids,
                          size_t n)
{
    size_t i;
    if (t->n != n) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (strcmp(t->jobs[i].broker, ids[i]) != 0) {
            return false;
        }
    }
    return true;
}

int roles_topic_set(struct roles *r,
                    const char *topic,
                    const char *const *ids,
                    size_t n,
                    uint64_t digest)
{
    struct roles_topic *t = find(r, topic);
    struct roles_job *jobs = NULL;
    bool *used = NULL;
    size_t i, k, cap;

    if (n == 0) {
        digest = 0;
    }
    if (t == NULL) {
        if (n == 0) {
            return 0; /* a topic we never knew: nothing owed */
        }
        t = add(r, topic);
        if (t == NULL) {
            return -ENOMEM;
        }
    } else if (t->digest == digest && same_replicas(t, ids, n)) {
        return 0;
    }
    /* The new job list: the new replicas in order (with the state they had
     * as replicas or as dropped brokers), then everyone else as dropped. */
    cap = n + t->njobs;
    jobs = calloc(cap > 0 ? cap : 1, sizeof *jobs);
    used = calloc(t->njobs > 0 ? t->njobs : 1, sizeof *used);
    if (jobs == NULL || used == NULL) {
        goto oom;
    }
    for (i = 0; i < n; i++) {
        for (k = 0; k < t->njobs; k++) {
            if (!used[k] && strcmp(t->jobs[k].broker, ids[i]) == 0) {
                break;
            }
        }
        if (k < t->njobs) {
            used[k] = true;
            jobs[i] = t->jobs[k];
        } else {
            jobs[i].broker = strdup(ids[i]);
            if (jobs[i].broker == NULL) {
                goto oom;
            }
        }
        jobs[i].removal = false;
    }
    k = n;
    for (i = 0; i < t->njobs; i++) {
        if (!used[i]) {
            jobs[k] = t->jobs[i];
            if (!jobs[k].removal) {
                /* Newly dropped: its RemoveTopic is due at once. */
                jobs[k].removal = true;
                job_reset(&jobs[k]);
            }
            k++;
        }
    }
    free(t->jobs);
    free(used);
    t->jobs = jobs;
    t->njobs = k;
    t->cap = cap;
    t->n = n;
    if (digest != t->digest) {
        /* A new change is sent at once, whatever the old one's backoff. */
        for (i = 0; i < n; i++) {
            if (t->jobs[i].acked != digest) {
                job_reset(&t->jobs[i]);
            }
        }
        if (t->delivered != digest) {
            t->delivered = 0;
        }
        t->digest = digest;
    }
    check_settled(r, t);
    return 0;

oom:
    if (jobs != NULL && used != NULL) {
        for (i = 0; i < n; i++) {
            /* Only the fresh copies are ours; moved ones stay in t. */
            bool moved = false;
            for (k = 0; k < t->njobs; k++) {
                if (used[k] && t->jobs[k].broker == jobs[i].broker) {
                    moved = true;
                }
            }
            if (!moved) {
                free(jobs[i].broker);
            }
        }
    }
    free(jobs);
    free(used);
    if (t->njobs == 0 && t->digest == 0) {
        drop(r, t);
    }
    return -ENOMEM;
}

static void remove_job(struct roles *r, struct roles_topic *t, size_t i)
{
    if (t->jobs[i].inflight) {
        r->inflight--;
    }
    free(t->jobs[i].broker);
    memmove(&t->jobs[i], &t->jobs[i + 1],
            (t->njobs - i - 1) * sizeof t->jobs[0]);
    t->njobs--;
}

void roles_broker_gone(struct roles *r, const char *broker)
{
    size_t b, i;
    for (b = 0; b < r->nbuckets; b++) {
        struct roles_topic *t = r->buckets[b], *next;
        for (; t != NULL; t = next) {
            bool changed = false;
            next = t->next;
            for (i = t->n; i < t->njobs; i++) {
                if (strcmp(t->jobs[i].broker, broker) == 0) {
                    remove_job(r, t, i);
                    changed = true;
                    break;
                }
            }
            if (changed) {
                check_settled(r, t);
            }
        }
    }
}

void roles_topics_of(const struct roles *r,
                     const char *broker,
                     void (*cb)(void *arg, const char *topic),
                     void *arg)
{
    size_t b, i;
    for (b = 0; b < r->nbuckets; b++) {
        const struct roles_topic *t = r->buckets[b];
        for (; t != NULL; t = t->next) {
            for (i = 0; i < t->n; i++) {
                if (strcmp(t->jobs[i].broker, broker) == 0) {
                    cb(arg, t->name);
                    break;
                }
            }
        }
    }
}

uint64_t roles_topic_digest(const struct roles *r,
                            const char *topic,
                            size_t *n_replicas)
{
    const struct roles_topic *t = find(r, topic);
    if (n_replicas != NULL) {
        *n_replicas = t != NULL ? t->n : 0;
    }
    return t != NULL ? t->digest : 0;
}

/* ---- leadership ---------------------------------------------------------- */

void roles_lead(struct roles *r, bool leading)
{
    size_t b, i;
    r->generation++;
    r->inflight = 0;
    r->leading = leading;
    for (b = 0; b < r->nbuckets; b++) {
        struct roles_topic *t = r->buckets[b], *next;
        for (; t != NULL; t = next) {
            next = t->next;
            for (i = 0; i < t->njobs; i++) {
                t->jobs[i].inflight = false;
            }
            if (!leading) {
                continue;
            }
            if (t->delivered != 0 && t->delivered == t->digest) {
                /* Settled under an earlier leader: nothing is re-sent. */
                for (i = 0; i < t->n; i++) {
                    t->jobs[i].acked = t->digest;
                }
                while (t->njobs > t->n) {
                    remove_job(r, t, t->njobs - 1);
                }
            } else {
                /* Not known delivered: which replicas acknowledged is not
                 * known either, so every one is sent its role again. */
                for (i = 0; i < t->njobs; i++) {
                    if (!t->jobs[i].removal) {
                        t->jobs[i].acked = 0;
                    }
                    job_reset(&t->jobs[i]);
                }
            }
            check_settled(r, t);
        }
    }
}

/* ---- sending ------------------------------------------------------------- */

/* Whether job @i of @t has something to send (time aside). */
static bool wants(const struct roles_topic *t, size_t i)
{
    const struct roles_job *j = &t->jobs[i];
    if (j->inflight) {
        return false;
    }
    if (j->removal) {
        return true;
    }
    if (j->acked == t->digest) {
        return false;
    }
    /* Followers wait for the leader's acknowledgement (§4.4). */
    return i == 0 || t->jobs[0].acked == t->digest;
}

int roles_next(struct roles *r, uint64_t now_ms, struct roles_action *out)
{
    struct roles_topic *t;
    size_t i;

    if (!r->leading || r->inflight >= r->max_inflight) {
        return 0;
    }
    for (t = r->active; t != NULL; t = t->anext) {
        for (i = 0; i < t->njobs; i++) {
            struct roles_job *j = &t->jobs[i];
            if (!wants(t, i) || j->due_ms > now_ms) {
                continue;
            }
            j->inflight = true;
            r->inflight++;
            out->kind = j->removal ? ROLES_REMOVE
                        : i == 0   ? ROLES_SET_LEADER
                                   : ROLES_SET_FOLLOWER;
            out->topic = t->name;
            out->broker = j->broker;
            out->digest = t->digest;
            out->generation = r->generation;
            out->attempt = j->failures;
            rotate(r, t);
            return 1;
        }
    }
    return 0;
}

uint64_t roles_wait_ms(const struct roles *r, uint64_t now_ms)
{
    const struct roles_topic *t;
    uint64_t best = UINT64_MAX;
    size_t i;

    if (!r->leading || r->inflight >= r->max_inflight) {
        return UINT64_MAX; /* a completion or a new leader kicks us */
    }
    for (t = r->active; t != NULL; t = t->anext) {
        for (i = 0; i < t->njobs; i++) {
            uint64_t due = t->jobs[i].due_ms;
            if (!wants(t, i)) {
                continue;
            }
            if (due <= now_ms) {
                return 0;
            }
            if (due - now_ms < best) {
                best = due - now_ms;
            }
        }
    }
    return best;
}

static void backoff(struct roles *r, struct roles_job *j, uint64_t now_ms)
{
    uint32_t b;
    if (j->backoff_ms == 0) {
        b = r->backoff_min_ms;
    } else if (j->backoff_ms >= r->backoff_max_ms / 2) {
        b = r->backoff_max_ms;
    } else {
        b = j->backoff_ms * 2;
    }
    j->backoff_ms = b;
    j->failures++;
    /* Jitter: a delay in [b/2, b], so retries of many topics spread out. */
    j->due_ms = now_ms + b / 2 + prng_next(r) % (b / 2 + 1);
}

bool roles_done(struct roles *r,
                const struct roles_action *a,
                enum roles_outcome outcome,
                uint64_t now_ms)
{
    struct roles_topic *t;
    struct roles_job *j;
    bool first = false;

    if (a->generation != r->generation) {
        return false; /* cancelled by a leadership change */
    }
    t = find(r, a->topic);
    j = t != NULL ? job_of(t, a->broker) : NULL;
    if (j == NULL || !j->inflight) {
        return false; /* dropped meanwhile; the counter was adjusted */
    }
    j->inflight = false;
    r->inflight--;
    if (a->kind == ROLES_REMOVE) {
        if (!j->removal) {
            return false; /* a replica again: its role supersedes this */
        }
        if (outcome == ROLES_FAILED) {
            backoff(r, j, now_ms);
            return false;
        }
        remove_job(r, t, (size_t)(j - t->jobs));
        check_settled(r, t);
        return true;
    }
    if (outcome != ROLES_ACKED) {
        backoff(r, j, now_ms);
        return false;
    }
    first = !j->removal && a->digest == t->digest && j->acked != a->digest;
    j->acked = a->digest;
    job_reset(j);
    check_settled(r, t);
    return first;
}

/* ---- what other members delivered ---------------------------------------- */

int roles_delivered(struct roles *r, const char *topic, uint64_t digest)
{
    struct roles_topic *t = find(r, topic);
    if (t == NULL) {
        if (digest == 0) {
            return 0; /* a deletion this member already forgot */
        }
        /* Ahead of this member's own apply: remember it. */
        t = add(r, topic);
        if (t == NULL) {
            return -ENOMEM;
        }
        t->delivered = digest;
        return 0;
    }
    t->delivered = digest;
    if (r->leading || digest != t->digest) {
        return 0;
    }
    while (t->njobs > t->n) {
        remove_job(r, t, t->njobs - 1);
    }
    if (t->digest == 0) {
        drop(r, t);
    }
    return 0;
}

uint64_t roles_delivered_digest(const struct roles *r, const char *topic)
{
    const struct roles_topic *t = find(r, topic);
    return t != NULL ? t->delivered : 0;
}

void roles_take_delivered(struct roles *r,
                          void (*cb)(void *arg,
                                     const char *topic,
                                     uint64_t digest),
                          void *arg)
{
    size_t i;
    for (i = 0; i < r->ndelivered; i++) {
        cb(arg, r->delivered[i], r->delivered_digest[i]);
    }
    clear_delivered(r);
}

uint32_t roles_inflight(const struct roles *r)
{
    return r->inflight;
}

bool roles_settled(const struct roles *r, const char *topic)
{
    const struct roles_topic *t = find(r, topic);
    return t == NULL || settled(t);
}
