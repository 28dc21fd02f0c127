/* Broker failure detection on the leader: a table of last heartbeats and
 * the rule that turns silence into status changes.  Pure (liveness.h).
 *
 *   silent <= suspect_after                 healthy (only after a heartbeat)
 *   suspect_after < silent <= down_after    suspicious (from healthy)
 *   silent > down_after                     down
 *   silent > report_after, and a client     down (store_liveness_reported)
 *   reports it unreachable
 *
 * "silent" is now minus the later of the last heartbeat and the start of
 * this leadership: a new leader's grace period. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/liveness.h>

enum { HEALTHY = 0, SUSPICIOUS = 1, DOWN = 2 };

struct store_liveness__broker
{
    char *id;              /* owned */
    int64_t last_seen;     /* last heartbeat under this leadership, or 0 */
    int pending;           /* status last returned by _due, or -1 */
    int64_t pending_since; /* when it was returned */
};

int store_liveness_init(struct store_liveness *l,
                        const struct store_liveness_config *c)
{
    if (c->suspect_after_ns <= 0 || c->down_after_ns <= 0 ||
        c->suspect_after_ns >= c->down_after_ns || c->retry_ns <= 0) {
        return -EINVAL;
    }
    if (c->report_after_ns < 0 || c->report_after_ns > c->suspect_after_ns) {
        return -EINVAL;
    }
    memset(l, 0, sizeof *l);
    l->config = *c;
    if (l->config.report_after_ns == 0) {
        l->config.report_after_ns = c->suspect_after_ns / 2;
    }
    return 0;
}

void store_liveness_fini(struct store_liveness *l)
{
    size_t i;
    for (i = 0; i < l->n; i++) {
        free(l->brokers[i].id);
    }
    free(l->brokers);
    memset(l, 0, sizeof *l);
}

/* Binary search: the slot of @id, or where it would go. */
static size_t find(const struct store_liveness *l, const char *id, int *found)
{
    size_t lo = 0, hi = l->n;
    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(l->brokers[mid].id, id);
        if (c == 0) {
            *found = 1;
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

static struct store_liveness__broker *get(struct store_liveness *l,
                                          const char *id)
{
    struct store_liveness__broker *b;
    int found;
    size_t at = find(l, id, &found);
    char *copy;

    if (found) {
        return &l->brokers[at];
    }
    if (l->n == l->cap) {
        size_t cap = l->cap == 0 ? 16 : l->cap * 2;
        b = realloc(l->brokers, cap * sizeof *b);
        if (b == NULL) {
            return NULL;
        }
        l->brokers = b;
        l->cap = cap;
    }
    copy = strdup(id);
    if (copy == NULL) {
        return NULL;
    }
    memmove(&l->brokers[at + 1], &l->brokers[at],
            (l->n - at) * sizeof l->brokers[0]);
    l->n++;
    b = &l->brokers[at];
    b->id = copy;
    b->last_seen = 0;
    b->pending = -1;
    b->pending_since = 0;
    return b;
}

void store_liveness_lead(struct store_liveness *l, int64_t now)
{
    size_t i;
    l->lead_since = now > 0 ? now : 1;
    for (i = 0; i < l->n; i++) {
        l->brokers[i].last_seen = 0;
        l->brokers[i].pending = -1;
    }
}

void store_liveness_follow(struct store_liveness *l)
{
    l->lead_since = 0;
}

int store_liveness_heartbeat(struct store_liveness *l,
                             const char *id,
                             int64_t now)
{
    struct store_liveness__broker *b = get(l, id);
    if (b == NULL) {
        return -ENOMEM;
    }
    if (now > b->last_seen) {
        b->last_seen = now;
    }
    return 0;
}

void store_liveness_forget(struct store_liveness *l, const char *id)
{
    int found;
    size_t at = find(l, id, &found);
    if (!found) {
        return;
    }
    free(l->brokers[at].id);
    memmove(&l->brokers[at], &l->brokers[at + 1],
            (l->n - at - 1) * sizeof l->brokers[0]);
    l->n--;
}

int store_liveness_due(struct store_liveness *l,
                       const char *id,
                       int status,
                       int64_t now)
{
    struct store_liveness__broker *b;
    int64_t since, silent;
    int want;

    if (l->lead_since == 0) {
        return -1;
    }
    b = get(l, id);
    if (b == NULL) {
        return -ENOMEM;
    }
    since = b->last_seen > l->lead_since ? b->last_seen : l->lead_since;
    silent = now - since;
    if (silent > l->config.down_after_ns) {
        want = DOWN;
    } else if (silent > l->config.suspect_after_ns) {
        want = status == HEALTHY ? SUSPICIOUS : status;
    } else if (b->last_seen >= l->lead_since) {
        want = HEALTHY; /* renewing, and seen to renew by this leader */
    } else {
        want = status; /* in its grace period: not judged yet */
    }
    if (want == status) {
        b->pending = -1;
        return -1;
    }
    if (b->pending == want && now - b->pending_since < l->config.retry_ns) {
        return -1;
    }
    b->pending = want;
    b->pending_since = now;
    return want;
}

int store_liveness_reported(struct store_liveness *l,
                            const char *id,
                            int status,
                            int64_t now)
{
    struct store_liveness__broker *b;
    int64_t since;

    if (l->lead_since == 0 || status == DOWN) {
        return -1;
    }
    b = get(l, id);
    if (b == NULL) {
        return -ENOMEM;
    }
    since = b->last_seen > l->lead_since ? b->last_seen : l->lead_since;
    if (now - since <= l->config.report_after_ns) {
        return -1; /* it renews: the report is the client's problem */
    }
    if (b->pending == DOWN && now - b->pending_since < l->config.retry_ns) {
        return -1;
    }
    /* Forget its heartbeats: _due keeps a down broker down until it renews
     * again, instead of finding it recently seen and healthy. */
    b->last_seen = 0;
    b->pending = DOWN;
    b->pending_since = now;
    return DOWN;
}
