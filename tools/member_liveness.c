/* Broker liveness on the member: feeds heartbeats and leadership changes to
 * the failure detector (store/liveness.c) and, while this member leads,
 * proposes the status changes it finds due, every check period.  On any
 * other member it forwards the renewals it answered to the leader, in
 * memory (a PeerNotice per flush, member_notice.c), not through the log.
 * Owns the check and forward timers; the rule is the detector's, the
 * commands the store's. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>

#include "goulettefs.pb-c.h"
#include "member.h"

struct names
{
    char **v;
    size_t n, cap;
};

static int collect(void *arg, const char *name)
{
    struct names *ns = arg;
    char *copy;
    if (ns->n == ns->cap) {
        size_t cap = ns->cap == 0 ? 64 : ns->cap * 2;
        char **v = realloc(ns->v, cap * sizeof *v);
        if (v == NULL) {
            return -ENOMEM;
        }
        ns->v = v;
        ns->cap = cap;
    }
    copy = strdup(name);
    if (copy == NULL) {
        return -ENOMEM;
    }
    ns->v[ns->n++] = copy;
    return 0;
}

static void status_done(struct member_proposal *p, int rv)
{
    if (rv != 0 && rv != -ENOENT) {
        goulette_logf(p->member->log, GOULETTE_LOG_WARN, "liveness",
                      "a status change was not committed: %s",
                      goulette_strerror(rv));
    }
    free(p);
}

static const char *status_name(int s)
{
    return s == 0 ? "healthy" : s == 1 ? "suspicious" : "down";
}

static void propose_status(struct member *m, const char *id, int status)
{
    struct member_proposal *p = calloc(1, sizeof *p);
    struct store_cmd cmd;
    int rv;

    if (p == NULL) {
        return;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = STORE_CMD_SET_BROKER_STATUS;
    cmd.timestamp_ns = member_now_ns();
    cmd.broker_id = (char *)id;
    cmd.status = (uint32_t)status;
    p->done = status_done;
    rv = member_propose(m, &cmd, p);
    if (rv != 0) {
        free(p);
        return;
    }
    goulette_logf(m->log, GOULETTE_LOG_INFO, "liveness", "broker %s: %s", id,
                  status_name(status));
}

static void on_check(uv_timer_t *t)
{
    struct member *m = t->data;
    struct names ns = {NULL, 0, 0};
    int64_t now = (int64_t)uv_hrtime();
    size_t i;

    if (m->stopping || m->sm == NULL || m->liveness.lead_since == 0) {
        return;
    }
    if (store_sm_list(m->sm, STORE_DIR_BROKERS, NULL, collect, &ns) >= 0) {
        for (i = 0; i < ns.n; i++) {
            struct store_broker_view b;
            int want;
            if (store_sm_broker_get(m->sm, ns.v[i], &b) != 0) {
                continue;
            }
            want = store_liveness_due(&m->liveness, ns.v[i], b.status, now);
            if (want >= 0) {
                propose_status(m, ns.v[i], want);
            }
        }
    }
    for (i = 0; i < ns.n; i++) {
        free(ns.v[i]);
    }
    free(ns.v);
}

/* ---- forwarding renewals to the leader ------------------------------------
 *
 * A member that is not the leader answers KeepAlive itself and collects the
 * renewed broker ids in m->renewals.  The first id into an empty set arms a
 * one-shot timer of forward_ms; when it fires the whole set goes to the
 * current leader as one PeerNotice, and the set is emptied.  If no leader
 * is known, or the notice cannot be queued, the set is kept (bounded) and
 * the timer re-armed.  If this member has become the leader meanwhile, it
 * counts the set itself. */

static void on_forward(uv_timer_t *t);

static void forward_flush(struct member *m)
{
    Goulettefs__PeerNotice notice = GOULETTEFS__PEER_NOTICE__INIT;
    struct raft_uv_node_status st;
    int64_t now = (int64_t)uv_hrtime();
    size_t i;
    int rv;

    if (m->renewals.n == 0 || m->stopping || m->node == NULL) {
        return;
    }
    if (m->liveness.lead_since != 0) {
        for (i = 0; i < m->renewals.n; i++) {
            (void)store_liveness_heartbeat(&m->liveness, m->renewals.ids[i],
                                           now);
        }
        renewals_clear(&m->renewals);
        return;
    }
    raft_uv_node_status(m->node, &st);
    rv = GOULETTE_ENOLEADER;
    if (st.leader != 0 && st.leader != m->id) {
        notice.renewed_brokers = m->renewals.ids;
        notice.n_renewed_brokers = m->renewals.n;
        rv = member_notice_send(m, st.leader, &notice);
    }
    if (rv == 0 || rv == -EMSGSIZE || rv == -EINVAL) {
        if (rv != 0) {
            goulette_logf(m->log, GOULETTE_LOG_WARN, "liveness",
                          "%zu renewals not forwarded: %s", m->renewals.n,
                          goulette_strerror(rv));
        }
        renewals_clear(&m->renewals);
        return;
    }
    /* No leader yet, not yet a known peer, queue full, out of memory:
     * keep them for the next try. */
    goulette_logf(m->log, GOULETTE_LOG_DEBUG, "liveness",
                  "%zu renewals wait for the leader: %s", m->renewals.n,
                  goulette_strerror(rv));
    uv_timer_start(&m->forward_timer, on_forward, m->forward_ms, 0);
}

static void on_forward(uv_timer_t *t)
{
    forward_flush(t->data);
}

static void on_forward_closed(uv_handle_t *h)
{
    struct member *m = h->data;
    renewals_fini(&m->renewals);
}

/* The flush delay: the leader must see renewals well within suspect_after,
 * and a busy follower should not send a notice per KeepAlive. */
static uint64_t forward_delay_ms(uint64_t suspect_ms)
{
    uint64_t ms = suspect_ms / 8;

    if (ms > 250) {
        ms = 250;
    }
    return ms < 10 ? 10 : ms;
}

static int forward_start(struct member *m)
{
    int rv = renewals_init(&m->renewals, RENEWALS_MAX);

    if (rv != 0) {
        return rv;
    }
    m->forward_ms = forward_delay_ms(m->opts->broker_suspect_ms);
    uv_timer_init(m->loop, &m->forward_timer);
    m->forward_timer.data = m;
    m->forward_on = true;
    return 0;
}

int member_liveness_start(struct member *m)
{
    struct store_liveness_config c;
    uint64_t period;
    int rv;

    c.suspect_after_ns = (int64_t)m->opts->broker_suspect_ms * 1000000;
    c.down_after_ns = (int64_t)m->opts->broker_down_ms * 1000000;
    c.retry_ns = 5LL * 1000000000;
    c.report_after_ns = 0; /* suspect_after / 2 */
    if (c.retry_ns > c.suspect_after_ns) {
        c.retry_ns = c.suspect_after_ns;
    }
    rv = store_liveness_init(&m->liveness, &c);
    if (rv != 0) {
        return rv;
    }
    period = m->opts->broker_suspect_ms / 4;
    if (period > 1000) {
        period = 1000;
    }
    if (period < 20) {
        period = 20;
    }
    rv = forward_start(m);
    if (rv != 0) {
        store_liveness_fini(&m->liveness);
        return rv;
    }
    uv_timer_init(m->loop, &m->liveness_timer);
    m->liveness_timer.data = m;
    uv_timer_start(&m->liveness_timer, on_check, period, period);
    m->liveness_on = true;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct member *m = h->data;
    store_liveness_fini(&m->liveness);
}

void member_liveness_stop(struct member *m)
{
    if (!m->liveness_on) {
        return;
    }
    m->liveness_on = false;
    uv_close((uv_handle_t *)&m->liveness_timer, on_timer_closed);
    if (m->forward_on) {
        m->forward_on = false;
        uv_close((uv_handle_t *)&m->forward_timer, on_forward_closed);
    }
}

void member_liveness_leadership(struct member *m, bool leading)
{
    if (!m->liveness_on) {
        return;
    }
    if (leading && m->liveness.lead_since == 0) {
        store_liveness_lead(&m->liveness, (int64_t)uv_hrtime());
        goulette_logf(m->log, GOULETTE_LOG_INFO, "liveness",
                      "leading: every broker has %llu ms of grace",
                      (unsigned long long)m->opts->broker_suspect_ms);
    } else if (!leading && m->liveness.lead_since != 0) {
        store_liveness_follow(&m->liveness);
    }
}

int member_liveness_heartbeat(struct member *m, const char *broker_id)
{
    int rv;

    if (!m->liveness_on) {
        return GOULETTE_ESHUTDOWN;
    }
    if (m->liveness.lead_since != 0) {
        return store_liveness_heartbeat(&m->liveness, broker_id,
                                        (int64_t)uv_hrtime());
    }
    rv = renewals_add(&m->renewals, broker_id);
    if (rv == -ENOBUFS) {
        /* Full (RENEWALS_MAX distinct brokers in one period): counted in
         * renewals.dropped; the broker's next renewal gets through. */
        return 0;
    }
    if (rv < 0) {
        return rv;
    }
    if (m->forward_on && !uv_is_active((uv_handle_t *)&m->forward_timer)) {
        uv_timer_start(&m->forward_timer, on_forward, m->forward_ms, 0);
    }
    return 0;
}

/* Whether @id is a server of the current configuration. */
static bool in_configuration(const struct member *m, raft_id id)
{
    struct raft_uv_node_status st;
    unsigned i;

    raft_uv_node_status(m->node, &st);
    for (i = 0; st.conf != NULL && i < st.conf->n; i++) {
        if (st.conf->servers[i].id == id) {
            return true;
        }
    }
    return false;
}

void member_liveness_renewed(struct member *m,
                             raft_id from,
                             char **ids,
                             size_t n)
{
    int64_t now = (int64_t)uv_hrtime();
    struct store_broker_view b;
    size_t i;

    /* Only the leader counts heartbeats; a notice that reaches a former
     * leader is stale: the follower sends the next one to the new leader. */
    if (!m->liveness_on || m->liveness.lead_since == 0 || m->node == NULL ||
        m->sm == NULL) {
        return;
    }
    if (!in_configuration(m, from)) {
        goulette_logf(m->log, GOULETTE_LOG_DEBUG, "liveness",
                      "renewals from %" PRIu64 ", not a member: ignored", from);
        return;
    }
    for (i = 0; i < n; i++) {
        /* Only registered brokers: an unregistered one was forgotten and
         * must not come back through a late notice. */
        if (store_sm_broker_get(m->sm, ids[i], &b) == 0) {
            (void)store_liveness_heartbeat(&m->liveness, ids[i], now);
        }
    }
}

void member_liveness_reported(struct member *m, char *const *ids, size_t n)
{
    int64_t now = (int64_t)uv_hrtime();
    size_t i;

    if (!m->liveness_on || m->liveness.lead_since == 0 || m->sm == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        struct store_broker_view b;
        if (store_sm_broker_get(m->sm, ids[i], &b) == 0 &&
            store_liveness_reported(&m->liveness, ids[i], b.status, now) ==
                STORE_BROKER_DOWN) {
            goulette_logf(m->log, GOULETTE_LOG_INFO, "liveness",
                          "broker %s reported unreachable and silent here "
                          "too",
                          ids[i]);
            propose_status(m, ids[i], STORE_BROKER_DOWN);
        }
    }
}
