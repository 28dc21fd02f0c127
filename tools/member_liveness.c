/* Broker liveness on the member: feeds heartbeats and leadership changes to
 * the failure detector (store/liveness.c) and, while this member leads,
 * proposes the status changes it finds due, every check period.  Owns the
 * check timer; the rule is the detector's, the commands the store's. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>

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
    if (!m->liveness_on) {
        return GOULETTE_ESHUTDOWN;
    }
    if (m->liveness.lead_since == 0) {
        return GOULETTE_ENOTLEADER;
    }
    return store_liveness_heartbeat(&m->liveness, broker_id,
                                    (int64_t)uv_hrtime());
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
