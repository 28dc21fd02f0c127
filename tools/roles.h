/* Telling brokers their roles: the pure decision piece behind
 * tools/member_roles.c.  It keeps, per topic, the last applied assignment
 * (replica ids, leader first, and a digest of what SetTopicRole carries),
 * which brokers were dropped and still owe a RemoveTopic, and per
 * (topic, broker) the digest the broker acknowledged; and it decides what
 * to send next, when to retry, and when a topic is settled.  No I/O, no
 * clock, no randomness of its own: time comes in as now_ms, the PRNG seed
 * through the config.  docs/liveness.md "Telling brokers".
 *
 * Not thread-safe: one owner (the loop thread). */
#ifndef GOULETTE_TOOLS_ROLES_H
#define GOULETTE_TOOLS_ROLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct roles_topic;

struct roles_config
{
    uint64_t seed;           /* jitter PRNG */
    uint32_t backoff_min_ms; /* first retry delay; 0: 200 */
    uint32_t backoff_max_ms; /* cap of the doubling; 0: 30000 */
    uint32_t max_inflight;   /* calls in flight at once; 0: 64 */
};

struct roles
{
    /* All fields are private to roles.c. */
    struct roles_topic **buckets; /* owned hash table, chained */
    size_t nbuckets, ntopics;
    struct roles_topic *active;      /* topics with work left (a list) */
    struct roles_topic *active_tail; /* its last */
    bool leading;
    uint64_t generation; /* bumped at every leadership change */
    uint32_t inflight;   /* calls in flight of this generation */
    uint64_t prng;
    uint32_t backoff_min_ms, backoff_max_ms, max_inflight;
    char **delivered; /* topics settled since roles_take_delivered */
    uint64_t *delivered_digest;
    size_t ndelivered, delivered_cap;
};

enum roles_kind {
    ROLES_SET_LEADER = 1,   /* SetTopicRole role=LEADER */
    ROLES_SET_FOLLOWER = 2, /* SetTopicRole role=FOLLOWER */
    ROLES_REMOVE = 3,       /* RemoveTopic */
};

/* One call to make; strings are borrowed from the roles until the next
 * call that changes them (roles_topic_set, roles_done, ...): copy them. */
struct roles_action
{
    enum roles_kind kind;
    const char *topic;
    const char *broker;
    uint64_t digest;     /* of the assignment the call carries (SET) */
    uint64_t generation; /* hand back to roles_done */
    uint32_t attempt;    /* 0 for the first try, then failures so far */
};

enum roles_outcome {
    ROLES_ACKED = 0,  /* gRPC OK and success=true */
    ROLES_FAILED = 1, /* anything else: retried with backoff */
    ROLES_ABSENT = 2, /* RemoveTopic answered "Topic不存在": done */
};

/* Errors: -EINVAL (NULL config). */
int roles_init(struct roles *r, const struct roles_config *c);
void roles_fini(struct roles *r);

/* The digest of an assignment: replica ids[i] at addresses addrs[i], in
 * order, the first leading (@n >= 1; arrays borrowed).  FNV-1a 64, never
 * 0 (0 stands for "no assignment"). */
uint64_t roles_digest(const char *const *ids,
                      const char *const *addrs,
                      size_t n);

/* The applied assignment of @topic is now @ids (n >= 1, leader first,
 * borrowed) with digest @digest; n == 0 means the topic was deleted.
 * Brokers in the previous set and not in this one owe a RemoveTopic; a
 * broker that owed one and is a replica again no longer does.
 * Errors: -ENOMEM (nothing changed). */
int roles_topic_set(struct roles *r,
                    const char *topic,
                    const char *const *ids,
                    size_t n,
                    uint64_t digest);

/* Broker @broker no longer exists (unregistered): it is owed nothing. */
void roles_broker_gone(struct roles *r, const char *broker);

/* Call @cb(@arg, topic) for every topic that @broker is a replica of
 * (topics borrowed for the call; @cb must not change @r). */
void roles_topics_of(const struct roles *r,
                     const char *broker,
                     void (*cb)(void *arg, const char *topic),
                     void *arg);

/* The digest and replica count of @topic's current assignment (0, 0 when
 * unknown). */
uint64_t roles_topic_digest(const struct roles *r,
                            const char *topic,
                            size_t *n_replicas);

/* This member starts (@leading) or stops leading.  Stopping cancels every
 * call (replies of an older generation are ignored).  Starting makes every
 * topic not known delivered at its current digest due now, for all its
 * replicas and its pending removals; a topic known delivered is settled
 * (its removals dropped) and sent nothing. */
void roles_lead(struct roles *r, bool leading);

/* The next call to make at @now_ms, marked in flight: returns 1 and fills
 * @out, or 0 when nothing is due (not leading, cap reached, all waiting).
 * A topic's leader replica is sent its role before its followers: a
 * follower is due only once the leader acknowledged the current digest. */
int roles_next(struct roles *r, uint64_t now_ms, struct roles_action *out);

/* Milliseconds from @now_ms until a waiting retry falls due (0: something
 * is due now), or UINT64_MAX when nothing waits on time. */
uint64_t roles_wait_ms(const struct roles *r, uint64_t now_ms);

/* The call @a (as returned by roles_next; its strings may have been
 * copied) finished with @outcome at @now_ms.  A reply of an older
 * generation is ignored.  Returns true when @a's broker now holds the
 * current assignment for the first time (for the log). */
bool roles_done(struct roles *r,
                const struct roles_action *a,
                enum roles_outcome outcome,
                uint64_t now_ms);

/* Another member (the leader) delivered @topic at @digest: remember it, so
 * that this member does not re-send it if it leads later; when this
 * member's own assignment has that digest, its removals are done too.
 * Errors: -ENOMEM. */
int roles_delivered(struct roles *r, const char *topic, uint64_t digest);

/* The digest known delivered for @topic (0: none). */
uint64_t roles_delivered_digest(const struct roles *r, const char *topic);

/* Hand every topic this member settled (as leader) since the last call to
 * @cb (strings borrowed for the call), then forget them. */
void roles_take_delivered(struct roles *r,
                          void (*cb)(void *arg,
                                     const char *topic,
                                     uint64_t digest),
                          void *arg);

/* Pending work, for tests and logs: calls in flight, and whether @topic
 * is settled (every replica acknowledged, no removal owed). */
uint32_t roles_inflight(const struct roles *r);
bool roles_settled(const struct roles *r, const char *topic);

#endif /* GOULETTE_TOOLS_ROLES_H */
