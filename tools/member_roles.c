/* Telling brokers their roles on the member: feeds applied assignments and
 * leadership changes to the decision piece (tools/roles.c), and while this
 * member leads, makes the SetTopicRole / RemoveTopic calls it asks for with
 * the gRPC client, and announces settled topics to the other members
 * (PeerNotice.delivered).  Owns the client, the send timer and the notice
 * timer; the decisions are the core's.  docs/liveness.md "Telling brokers". */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>
#include <goulette/rpc.h>

#include "goulette.pb-c.h"
#include "goulettefs.pb-c.h"
#include "member.h"
#include "roles.h"

#define SUBSYS "roles"
#define CALL_TIMEOUT_MS 5000 /* per call, as Goulette's sentinel (§4.4) */
#define NOTICE_DELAY_MS 100  /* settled topics are announced in batches */
#define NOTICE_MAX 256       /* topics per notice */
#define WARN_EVERY 10        /* failures of one call logged: 1st, every Nth */
#define REPLICAS_MAX 1024    /* as the store's replica_count bound */

struct member_roles
{
    struct member *m; /* borrowed; not touched once stopping */
    struct roles core;
    struct rpc_client client;
    uv_timer_t timer;        /* the next due call */
    uv_timer_t notice_timer; /* the next batch of delivered topics */
    bool client_open, timer_open, notice_open;
    bool leading;
    bool stopping;
    /* Delivered topics waiting for the notice timer (owned copies). */
    char **out_topic;
    uint64_t *out_digest;
    size_t nout, capout;
};

/* One call in flight. */
struct call
{
    struct member_roles *mr;
    struct roles_action a; /* its strings point at topic/broker below */
    char *topic, *broker;  /* owned */
};

static void kick(struct member_roles *mr);
static void on_notice_timer(uv_timer_t *t);

/* ---- the assignment from the store --------------------------------------- */

/* Where broker @id is reached: its record's current address (the topic
 * record's copy may lag), else the address the topic record holds. */
static const char *address_of(const struct store_sm *sm,
                              const struct store_replica *r)
{
    struct store_broker_view b;
    if (store_sm_broker_get(sm, r->broker_id, &b) == 0) {
        return b.address;
    }
    return r->address;
}

/* The current assignment of @topic: ids and addresses (borrowed from the
 * store until the next apply), and its digest.  Returns n (0: no topic). */
static size_t assignment(const struct store_sm *sm,
                         const char *topic,
                         const char **ids,
                         const char **addrs,
                         uint64_t *digest)
{
    struct store_topic_view v;
    size_t i, n;
    if (store_sm_topic_get(sm, topic, &v) != 0 || v.n_replicas == 0) {
        *digest = 0;
        return 0;
    }
    n = v.n_replicas < REPLICAS_MAX ? v.n_replicas : REPLICAS_MAX;
    for (i = 0; i < n; i++) {
        ids[i] = v.replicas[i].broker_id;
        addrs[i] = address_of(sm, &v.replicas[i]);
    }
    *digest = roles_digest(ids, addrs, n);
    return n;
}

static void refresh(struct member_roles *mr, const char *topic)
{
    const char *ids[REPLICAS_MAX], *addrs[REPLICAS_MAX];
    uint64_t digest;
    size_t n = assignment(mr->m->sm, topic, ids, addrs, &digest);
    int rv = roles_topic_set(&mr->core, topic, ids, n, digest);
    if (rv != 0) {
        goulette_logf(mr->m->log, GOULETTE_LOG_ERROR, SUBSYS,
                      "cannot track the assignment of %s: %s", topic,
                      goulette_strerror(rv));
    }
}

static int init_topic(void *arg, const char *name)
{
    refresh(arg, name);
    return 0;
}

/* ---- delivered topics: to the other members -------------------------------
 */

static void keep_delivered(void *arg, const char *topic, uint64_t digest)
{
    struct member_roles *mr = arg;
    char *copy;
    if (mr->nout == mr->capout) {
        size_t cap = mr->capout == 0 ? 64 : mr->capout * 2;
        char **t = realloc(mr->out_topic, cap * sizeof *t);
        uint64_t *d;
        if (t == NULL) {
            return; /* costs a re-send after a failover, nothing else */
        }
        mr->out_topic = t;
        d = realloc(mr->out_digest, cap * sizeof *d);
        if (d == NULL) {
            return;
        }
        mr->out_digest = d;
        mr->capout = cap;
    }
    copy = strdup(topic);
    if (copy == NULL) {
        return;
    }
    mr->out_topic[mr->nout] = copy;
    mr->out_digest[mr->nout] = digest;
    mr->nout++;
}

static void clear_out(struct member_roles *mr)
{
    size_t i;
    for (i = 0; i < mr->nout; i++) {
        free(mr->out_topic[i]);
    }
    mr->nout = 0;
}

static void collect_delivered(struct member_roles *mr)
{
    roles_take_delivered(&mr->core, keep_delivered, mr);
    if (mr->nout > 0 && mr->leading &&
        !uv_is_active((uv_handle_t *)&mr->notice_timer)) {
        uv_timer_start(&mr->notice_timer, on_notice_timer, NOTICE_DELAY_MS, 0);
    }
}

/* Send @n delivered entries from @from to every other member. */
static void broadcast(struct member_roles *mr, size_t from, size_t n)
{
    struct member *m = mr->m;
    Goulettefs__PeerNotice notice = GOULETTEFS__PEER_NOTICE__INIT;
    Goulettefs__RolesDelivered *items = calloc(n, sizeof *items);
    Goulettefs__RolesDelivered **ptrs = calloc(n, sizeof *ptrs);
    struct raft_uv_node_status st;
    size_t i;

    if (items == NULL || ptrs == NULL || m->node == NULL) {
        goto out;
    }
    for (i = 0; i < n; i++) {
        Goulettefs__RolesDelivered init = GOULETTEFS__ROLES_DELIVERED__INIT;
        items[i] = init;
        items[i].topic = mr->out_topic[from + i];
        items[i].digest = mr->out_digest[from + i];
        ptrs[i] = &items[i];
    }
    notice.n_delivered = n;
    notice.delivered = ptrs;
    raft_uv_node_status(m->node, &st);
    for (i = 0; st.conf != NULL && i < st.conf->n; i++) {
        raft_id to = st.conf->servers[i].id;
        int rv;
        if (to == m->id) {
            continue;
        }
        rv = member_notice_send(m, to, &notice);
        if (rv != 0) {
            goulette_logf(m->log, GOULETTE_LOG_DEBUG, SUBSYS,
                          "delivered notice to %016" PRIx64 " not sent: %s", to,
                          goulette_strerror(rv));
        }
    }
out:
    free(items);
    free(ptrs);
}

static void on_notice_timer(uv_timer_t *t)
{
    struct member_roles *mr = t->data;
    size_t i;
    if (mr->stopping || !mr->leading) {
        clear_out(mr);
        return;
    }
    for (i = 0; i < mr->nout; i += NOTICE_MAX) {
        broadcast(mr, i, mr->nout - i < NOTICE_MAX ? mr->nout - i : NOTICE_MAX);
    }
    clear_out(mr);
}

/* ---- calls -----------------------------------------------------------------
 */

static bool should_warn(uint32_t failures)
{
    return failures == 1 || failures % WARN_EVERY == 0;
}

static const char *kind_name(enum roles_kind k)
{
    return k == ROLES_SET_LEADER     ? "SetTopicRole LEADER"
           : k == ROLES_SET_FOLLOWER ? "SetTopicRole FOLLOWER"
                                     : "RemoveTopic";
}

static void call_free(struct call *c)
{
    free(c->topic);
    free(c->broker);
    free(c);
}

/* @c finished with @outcome; @why explains a failure. */
static void finish(struct call *c, enum roles_outcome outcome, const char *why)
{
    struct member_roles *mr = c->mr;
    struct member *m = mr->m;
    uint64_t now = uv_now(m->loop);
    bool first = roles_done(&mr->core, &c->a, outcome, now);

    if (outcome == ROLES_FAILED) {
        if (should_warn(c->a.attempt + 1)) {
            goulette_logf(m->log, GOULETTE_LOG_WARN, SUBSYS,
                          "%s %s to broker %s failed (%" PRIu32
                          " times so far): %s; retrying",
                          kind_name(c->a.kind), c->topic, c->broker,
                          c->a.attempt + 1, why);
        }
    } else if (first) {
        goulette_logf(m->log, GOULETTE_LOG_INFO, SUBSYS,
                      "%s %s acknowledged by broker %s%s", kind_name(c->a.kind),
                      c->topic, c->broker,
                      outcome == ROLES_ABSENT ? " (it did not have it)" : "");
    }
    collect_delivered(mr);
    call_free(c);
    kick(mr);
}

static void on_reply(void *data,
                     enum rpc_status status,
                     const char *message,
                     const struct goulette_buf *resp)
{
    struct call *c = data;
    enum roles_outcome outcome = ROLES_FAILED;
    char why[512];
    protobuf_c_boolean success = 0;
    const char *error = "";

    if (c->mr->stopping) {
        call_free(c);
        return;
    }
    if (status != RPC_STATUS_OK) {
        snprintf(why, sizeof why, "%s %s", rpc_status_name(status), message);
        finish(c, ROLES_FAILED, why);
        return;
    }
    if (c->a.kind == ROLES_REMOVE) {
        Goulette__RemoveTopicResponse *r =
            goulette__remove_topic_response__unpack(NULL, resp->len,
                                                    resp->base);
        if (r != NULL) {
            success = r->success;
            snprintf(why, sizeof why, "success=false: %s", r->error_message);
            /* Goulette's broker: "Topic不存在: <t>" for a topic it does not
             * have; done, nothing to remove. */
            if (!success && strncmp(r->error_message, "Topic不存在",
                                    strlen("Topic不存在")) == 0) {
                outcome = ROLES_ABSENT;
            }
            goulette__remove_topic_response__free_unpacked(r, NULL);
        } else {
            error = "undecodable response";
        }
    } else {
        Goulette__SetTopicRoleResponse *r =
            goulette__set_topic_role_response__unpack(NULL, resp->len,
                                                      resp->base);
        if (r != NULL) {
            success = r->success;
            snprintf(why, sizeof why, "success=false: %s", r->error_message);
            goulette__set_topic_role_response__free_unpacked(r, NULL);
        } else {
            error = "undecodable response";
        }
    }
    if (success) {
        outcome = ROLES_ACKED;
    } else if (error[0] != '\0') {
        snprintf(why, sizeof why, "%s", error);
    }
    finish(c, outcome, why);
}

/* The RemoveTopic reason: Goulette's own text for a broker that is down
 * (§4.4), a plain one otherwise. */
static void removal_reason(const struct store_sm *sm,
                           const char *topic,
                           const struct store_broker_view *b,
                           char *buf,
                           size_t size)
{
    struct store_topic_view v;
    if (b->status == STORE_BROKER_DOWN) {
        snprintf(buf, size, "Broker %s 无法连接", b->broker_id);
    } else if (store_sm_topic_get(sm, topic, &v) == 0) {
        snprintf(buf, size, "topic %s moved", topic);
    } else {
        snprintf(buf, size, "topic %s deleted", topic);
    }
}

/* Make the call @c asks for.  Returns 0 (its reply finishes it) or the
 * outcome to finish it with now (1 + outcome), with @why. */
static int send_call(struct member_roles *mr,
                     struct call *c,
                     char *why,
                     size_t size)
{
    const char *ids[REPLICAS_MAX], *addrs[REPLICAS_MAX];
    const struct store_sm *sm = mr->m->sm;
    struct rpc_client_done done = {on_reply, c};
    struct store_broker_view b;
    const char *target = NULL;
    size_t i, n;
    uint64_t digest;
    int rv;

    if (c->a.kind == ROLES_REMOVE) {
        Goulette__RemoveTopicRequest req = GOULETTE__REMOVE_TOPIC_REQUEST__INIT;
        char reason[STORE_NAME_MAX + 64];
        if (store_sm_broker_get(sm, c->broker, &b) != 0) {
            return 1 + ROLES_ABSENT; /* unregistered: owed nothing */
        }
        removal_reason(sm, c->topic, &b, reason, sizeof reason);
        req.topic = c->topic;
        req.reason = reason;
        rv = rpc_client_call_pb(&mr->client, b.address,
                                "/goulette.BrokerService/RemoveTopic",
                                &req.base, CALL_TIMEOUT_MS, &done);
    } else {
        Goulette__SetTopicRoleRequest req =
            GOULETTE__SET_TOPIC_ROLE_REQUEST__INIT;
        n = assignment(sm, c->topic, ids, addrs, &digest);
        for (i = 0; i < n && strcmp(ids[i], c->broker) != 0; i++) {
        }
        if (n == 0 || i == n || digest != c->a.digest) {
            /* The store moved on (the core learns it at the same apply,
             * so this does not happen): the newest assignment wins. */
            snprintf(why, size, "assignment changed");
            return 1 + ROLES_FAILED;
        }
        target = addrs[i];
        req.topic = c->topic;
        req.role = i == 0 ? GOULETTE__TOPIC_ROLE__TOPIC_ROLE_LEADER
                          : GOULETTE__TOPIC_ROLE__TOPIC_ROLE_FOLLOWER;
        req.n_followers = n - 1;
        req.followers = (char **)(addrs + 1);
        req.leader_address = (char *)addrs[0];
        rv = rpc_client_call_pb(&mr->client, target,
                                "/goulette.BrokerService/SetTopicRole",
                                &req.base, CALL_TIMEOUT_MS, &done);
    }
    if (rv != 0) {
        snprintf(why, size, "%s", goulette_strerror(rv));
        return 1 + ROLES_FAILED;
    }
    return 0;
}

static void start_call(struct member_roles *mr, const struct roles_action *a)
{
    struct call *c = calloc(1, sizeof *c);
    char why[256] = "";
    int rv;

    if (c != NULL) {
        c->topic = strdup(a->topic);
        c->broker = strdup(a->broker);
    }
    if (c == NULL || c->topic == NULL || c->broker == NULL) {
        /* Out of memory: the action cannot even be finished by name, so
         * the leader gives the whole job set up; a new leadership term or
         * change starts it again. */
        if (c != NULL) {
            call_free(c);
        }
        goulette_logf(mr->m->log, GOULETTE_LOG_ERROR, SUBSYS,
                      "out of memory starting a call; roles paused");
        roles_lead(&mr->core, false);
        mr->leading = false;
        return;
    }
    c->mr = mr;
    c->a = *a;
    c->a.topic = c->topic;
    c->a.broker = c->broker;
    rv = send_call(mr, c, why, sizeof why);
    if (rv != 0) {
        enum roles_outcome o = (enum roles_outcome)(rv - 1);
        uint64_t now = uv_now(mr->m->loop);
        if (o == ROLES_FAILED && should_warn(c->a.attempt + 1)) {
            goulette_logf(mr->m->log, GOULETTE_LOG_WARN, SUBSYS,
                          "%s %s to broker %s not sent: %s",
                          kind_name(c->a.kind), c->topic, c->broker, why);
        }
        roles_done(&mr->core, &c->a, o, now);
        call_free(c);
    }
}

/* Make every call that is due, then sleep until the next one is. */
static void on_timer(uv_timer_t *t)
{
    struct member_roles *mr = t->data;
    struct roles_action a;
    uint64_t now, wait;

    if (mr->stopping || !mr->leading) {
        return;
    }
    now = uv_now(mr->m->loop);
    while (mr->leading && roles_next(&mr->core, now, &a) == 1) {
        start_call(mr, &a);
    }
    collect_delivered(mr);
    wait = roles_wait_ms(&mr->core, now);
    if (mr->leading && wait != UINT64_MAX) {
        uv_timer_start(&mr->timer, on_timer, wait, 0);
    }
}

/* Run the sender on the next loop turn (several applies in one turn make
 * one pass). */
static void kick(struct member_roles *mr)
{
    if (!mr->stopping && mr->leading) {
        uv_timer_start(&mr->timer, on_timer, 0, 0);
    }
}

/* ---- the member's hooks ----------------------------------------------------
 */

int member_roles_start(struct member *m)
{
    struct member_roles *mr = calloc(1, sizeof *mr);
    struct roles_config rc;
    struct rpc_client_config cc;
    int rv;

    if (mr == NULL) {
        return -ENOMEM;
    }
    mr->m = m;
    memset(&rc, 0, sizeof rc);
    rc.seed = m->id ^ (uint64_t)uv_hrtime();
    rv = roles_init(&mr->core, &rc);
    if (rv != 0) {
        free(mr);
        return rv;
    }
    memset(&cc, 0, sizeof cc);
    cc.loop = m->loop;
    cc.log = m->log;
    rv = rpc_client_init(&mr->client, &cc);
    if (rv != 0) {
        roles_fini(&mr->core);
        free(mr);
        return rv;
    }
    mr->client_open = true;
    uv_timer_init(m->loop, &mr->timer);
    mr->timer.data = mr;
    mr->timer_open = true;
    uv_timer_init(m->loop, &mr->notice_timer);
    mr->notice_timer.data = mr;
    mr->notice_open = true;
    m->roles = mr;
    /* The shadow of every applied assignment (the store's, at start). */
    rv = store_sm_list(m->sm, STORE_DIR_TOPICS, NULL, init_topic, mr);
    if (rv != 0) {
        goulette_logf(m->log, GOULETTE_LOG_ERROR, SUBSYS,
                      "cannot list the topics: %s", goulette_strerror(rv));
        member_roles_stop(m);
        return rv;
    }
    return 0;
}

static void maybe_free(struct member_roles *mr)
{
    if (mr->client_open || mr->timer_open || mr->notice_open) {
        return;
    }
    clear_out(mr);
    free(mr->out_topic);
    free(mr->out_digest);
    roles_fini(&mr->core);
    free(mr);
}

static void on_client_closed(struct rpc_client *client)
{
    struct member_roles *mr =
        (struct member_roles *)((char *)client -
                                offsetof(struct member_roles, client));
    mr->client_open = false;
    maybe_free(mr);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct member_roles *mr = h->data;
    if (h == (uv_handle_t *)&mr->timer) {
        mr->timer_open = false;
    } else {
        mr->notice_open = false;
    }
    maybe_free(mr);
}

void member_roles_stop(struct member *m)
{
    struct member_roles *mr = m->roles;
    if (mr == NULL) {
        return;
    }
    m->roles = NULL;
    mr->stopping = true;
    mr->leading = false;
    uv_close((uv_handle_t *)&mr->timer, on_timer_closed);
    uv_close((uv_handle_t *)&mr->notice_timer, on_timer_closed);
    /* Calls in flight come back CANCELLED and are only freed. */
    rpc_client_close(&mr->client, on_client_closed);
}

void member_roles_leadership(struct member *m, bool leading)
{
    struct member_roles *mr = m->roles;
    if (mr == NULL || mr->stopping || mr->leading == leading) {
        return;
    }
    mr->leading = leading;
    roles_lead(&mr->core, leading);
    if (leading) {
        goulette_logf(m->log, GOULETTE_LOG_INFO, SUBSYS,
                      "leading: telling brokers the roles not known "
                      "delivered");
        collect_delivered(mr);
        kick(mr);
    } else {
        uv_timer_stop(&mr->timer);
        uv_timer_stop(&mr->notice_timer);
        clear_out(mr);
    }
}

struct names
{
    char **v;
    size_t n, cap;
};

static void collect_name(void *arg, const char *topic)
{
    struct names *ns = arg;
    char *copy;
    if (ns->n == ns->cap) {
        size_t cap = ns->cap == 0 ? 16 : ns->cap * 2;
        char **v = realloc(ns->v, cap * sizeof *v);
        if (v == NULL) {
            return;
        }
        ns->v = v;
        ns->cap = cap;
    }
    copy = strdup(topic);
    if (copy != NULL) {
        ns->v[ns->n++] = copy;
    }
}

/* Broker @id changed (address, status) or was unregistered: its topics'
 * digests may have changed with its address. */
static void broker_changed(struct member_roles *mr, const char *id)
{
    struct store_broker_view b;
    struct names ns = {NULL, 0, 0};
    size_t i;

    if (store_sm_broker_get(mr->m->sm, id, &b) != 0) {
        roles_broker_gone(&mr->core, id);
    }
    roles_topics_of(&mr->core, id, collect_name, &ns);
    for (i = 0; i < ns.n; i++) {
        refresh(mr, ns.v[i]);
        free(ns.v[i]);
    }
    free(ns.v);
}

void member_roles_applied(struct member *m, const struct store_changes *changes)
{
    struct member_roles *mr = m->roles;
    size_t i;
    if (mr == NULL || mr->stopping) {
        return;
    }
    for (i = 0; i < changes->n; i++) {
        const char *p = changes->items[i].path;
        if (strncmp(p, "topics/", 7) == 0) {
            refresh(mr, p + 7);
        } else if (strncmp(p, "brokers/", 8) == 0) {
            broker_changed(mr, p + 8);
        }
    }
    if (mr->leading) {
        collect_delivered(mr);
        kick(mr);
    }
}

void member_roles_delivered(struct member *m,
                            raft_id from,
                            const char *topic,
                            uint64_t digest)
{
    struct member_roles *mr = m->roles;
    int rv;
    (void)from;
    if (mr == NULL || mr->stopping) {
        return;
    }
    rv = roles_delivered(&mr->core, topic, digest);
    if (rv != 0) {
        goulette_logf(m->log, GOULETTE_LOG_WARN, SUBSYS,
                      "cannot record %s delivered: %s", topic,
                      goulette_strerror(rv));
    }
}
