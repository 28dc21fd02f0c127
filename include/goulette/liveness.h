/* Broker failure detection, on the leader (issue 8; docs/liveness.md).
 *
 * The leader keeps every broker's last heartbeat in memory (heartbeats are
 * not Raft entries) and decides, at each check, which status each broker
 * should have; the member then proposes that status change as a store
 * command, so every member sees it committed.  A new leader gives every
 * broker a full grace period before judging it: a leadership change never
 * marks a live broker down.
 *
 * Pure: times (ns, any monotonic-enough clock the caller chooses) come in as
 * arguments; no clock, I/O or randomness inside.  One thread. */
#ifndef GOULETTE_LIVENESS_H
#define GOULETTE_LIVENESS_H

#include <stddef.h>
#include <stdint.h>

struct store_liveness_config
{
    int64_t suspect_after_ns; /* silent this long: suspicious (60 s) */
    int64_t down_after_ns;    /* silent this long: down (120 s) */
    int64_t retry_ns;         /* re-propose a change not yet seen applied
                                 after this long (5 s) */
    int64_t report_after_ns;  /* a client's unreachable report of a broker
                                 silent this long sets it down at once;
                                 0: suspect_after / 2 */
};

struct store_liveness__broker; /* private */

struct store_liveness
{
    struct store_liveness_config config;
    int64_t lead_since; /* when this member became leader; 0: not leading */
    struct store_liveness__broker *brokers; /* owned, sorted by id */
    size_t n, cap;
};

/* Errors: -EINVAL (a threshold <= 0, or suspect_after >= down_after). */
int store_liveness_init(struct store_liveness *l,
                        const struct store_liveness_config *config);
void store_liveness_fini(struct store_liveness *l);

/* This member became leader at @now: every broker is judged from @now on
 * at the earliest, and heartbeats seen under an earlier leadership are
 * forgotten (they were not this leader's to see). */
void store_liveness_lead(struct store_liveness *l, int64_t now);

/* This member stopped leading: it judges nobody until it leads again. */
void store_liveness_follow(struct store_liveness *l);

/* Broker @id (borrowed) renewed at @now.  Errors: -ENOMEM. */
int store_liveness_heartbeat(struct store_liveness *l,
                             const char *id,
                             int64_t now);

/* Forget broker @id (it was unregistered). */
void store_liveness_forget(struct store_liveness *l, const char *id);

/* The status (0 healthy, 1 suspicious, 2 down: the store's values) broker
 * @id should have at @now, given the @status it has in the store; or -1
 * when no change is due, when this member is not leading, or when the same
 * change was returned less than retry_ns ago (it is still in flight).
 * A broker becomes healthy again only through a heartbeat seen by this
 * leader.  Returning a change records it as in flight.  Errors: -ENOMEM. */
int store_liveness_due(struct store_liveness *l,
                       const char *id,
                       int status,
                       int64_t now);

/* A client reported broker @id unreachable at @now; @status is its status
 * in the store.  The report is a hint: it returns 2 (down) only when it
 * agrees with what this leader sees, that is when the broker has not
 * renewed for more than report_after_ns (counted from the start of this
 * leadership at the earliest) and is not down yet; otherwise -1.  A broker
 * set down this way stays down until its next heartbeat.  Returning a
 * change records it as in flight, like _due.  Errors: -ENOMEM. */
int store_liveness_reported(struct store_liveness *l,
                            const char *id,
                            int status,
                            int64_t now);

#endif /* GOULETTE_LIVENESS_H */
