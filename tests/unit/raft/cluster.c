/* The in-test cluster harness (see cluster.h): a fake runtime per node that
 * executes struct raft_update by the rules of raft.h, and a manual network. */
#include "cluster.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xmalloc(size_t n)
{
    void *p = malloc(n == 0 ? 1 : n);
    ck_assert_ptr_nonnull(p);
    return p;
}

static void *xdup(const void *src, size_t n)
{
    void *p = xmalloc(n);
    if (n > 0) {
        memcpy(p, src, n);
    }
    return p;
}

struct test_node *cluster_node(struct test_cluster *c, raft_id id)
{
    ck_assert(id >= 1 && id <= c->n);
    return &c->nodes[id - 1];
}

static void bootstrap_conf(unsigned voters, struct raft_configuration *conf)
{
    unsigned i;
    raft_configuration_init(conf);
    for (i = 1; i <= voters; i++) {
        char addr[32];
        snprintf(addr, sizeof addr, "127.0.0.1:%u", 7000 + i);
        ck_assert_int_eq(raft_configuration_add(conf, i, addr, RAFT_VOTER), 0);
    }
}

void cluster_init(struct test_cluster *c, unsigned n, unsigned voters)
{
    struct raft_configuration conf;
    struct goulette_buf buf;
    unsigned i;
    ck_assert(n <= CLUSTER_MAX);
    memset(c, 0, sizeof *c);
    c->n = n;
    c->snapshot_size = 1000;
    bootstrap_conf(voters, &conf);
    ck_assert_int_eq(raft_configuration_encode(&conf, &buf), 0);
    for (i = 0; i < n; i++) {
        struct test_node *nd = &c->nodes[i];
        nd->id = i + 1;
        raft_config_defaults(&nd->cfg);
        nd->cfg.id = nd->id;
        nd->cfg.seed = nd->id;
        raft_configuration_init(&nd->snap.conf);
        raft_configuration_init(&nd->applied_conf);
        if (nd->id <= voters) {
            nd->log = xmalloc(sizeof *nd->log);
            nd->log[0].term = 1;
            nd->log[0].index = 1;
            nd->log[0].type = RAFT_ENTRY_CONF;
            nd->log[0].data.base = xdup(buf.base, buf.len);
            nd->log[0].data.len = buf.len;
            nd->n_log = 1;
            nd->hs.term = 1;
        }
    }
    free(buf.base);
    raft_configuration_fini(&conf);
}

/* State machine bytes of a snapshot: count, hash, then filler. */
static uint8_t *sm_encode(const struct test_node *nd, uint64_t size)
{
    uint8_t *d = xmalloc(size);
    uint64_t k;
    for (k = 0; k < size; k++) {
        d[k] = (uint8_t)(k * 7);
    }
    if (size >= 16) {
        memcpy(d, &nd->sm_count, 8);
        memcpy(d + 8, &nd->sm_hash, 8);
    }
    return d;
}

static void sm_decode(struct test_node *nd, const uint8_t *d, uint64_t size)
{
    nd->sm_count = 0;
    nd->sm_hash = 0;
    if (size >= 16) {
        memcpy(&nd->sm_count, d, 8);
        memcpy(&nd->sm_hash, d + 8, 8);
    }
}

/* cluster_step that must succeed, except that with c->oom_tolerant an
 * -ENOMEM loses the event (like a dropped message) or, for @retry events
 * the runtime must not lose (START, PERSISTED, APPLIED), is retried. */
static void step_ok(struct test_cluster *c,
                    raft_id id,
                    struct raft_event *ev,
                    bool retry)
{
    int rv = cluster_step(c, id, ev);
    while (rv == -ENOMEM && c->oom_tolerant && retry) {
        rv = cluster_step(c, id, ev);
    }
    if (rv == -ENOMEM && c->oom_tolerant) {
        return;
    }
    ck_assert_int_eq(rv, 0);
}

static void node_start(struct test_cluster *c, struct test_node *nd)
{
    struct raft_event ev = {0};
    ck_assert_int_eq(raft_init(&nd->raft, &nd->cfg), 0);
    nd->up = true;
    nd->started = true;
    nd->applied = nd->snap.index;
    if (nd->snap.index > 0) {
        sm_decode(nd, nd->snap_data, nd->snap.size);
        raft_configuration_fini(&nd->applied_conf);
        ck_assert_int_eq(
            raft_configuration_copy(&nd->snap.conf, &nd->applied_conf), 0);
        nd->applied_conf_index = nd->snap.conf_index;
    } else {
        nd->sm_count = 0;
        nd->sm_hash = 0;
    }
    ev.type = RAFT_EVENT_START;
    ev.start.hard_state = nd->hs;
    ev.start.snapshot = &nd->snap;
    ev.start.entries = nd->log;
    ev.start.n_entries = nd->n_log;
    ev.start.applied = nd->applied;
    step_ok(c, nd->id, &ev, true);
}

void cluster_start(struct test_cluster *c)
{
    unsigned i;
    for (i = 0; i < c->n; i++) {
        node_start(c, &c->nodes[i]);
    }
}

static void node_free_log(struct test_node *nd, raft_index from)
{
    while (nd->n_log > 0 && nd->log[nd->n_log - 1].index >= from) {
        free(nd->log[--nd->n_log].data.base);
    }
}

void cluster_fini(struct test_cluster *c)
{
    unsigned i;
    for (i = 0; i < c->n; i++) {
        struct test_node *nd = &c->nodes[i];
        if (nd->up) {
            raft_fini(&nd->raft);
        }
        node_free_log(nd, 0);
        free(nd->log);
        free(nd->snap_data);
        free(nd->staging);
        raft_configuration_fini(&nd->snap.conf);
        raft_configuration_fini(&nd->applied_conf);
    }
    cluster_drop_all(c);
    free(c->q);
}

/* ---- executing an update ------------------------------------------- */

static void exec_chunk(struct test_node *nd,
                       const struct raft_snapshot_chunk *ch)
{
    if (ch->offset == 0 &&
        (ch->index != nd->staging_index || ch->term != nd->staging_term)) {
        free(nd->staging);
        nd->staging = xmalloc(ch->size);
        nd->staging_size = ch->size;
        nd->staging_index = ch->index;
        nd->staging_term = ch->term;
    }
    ck_assert_uint_eq(ch->index, nd->staging_index);
    ck_assert_uint_le(ch->offset + ch->data.len, nd->staging_size);
    if (ch->data.len > 0) {
        memcpy(nd->staging + ch->offset, ch->data.base, ch->data.len);
    }
    nd->n_chunks++;
}

static void exec_install(struct test_node *nd,
                         const struct raft_snapshot_meta *m)
{
    unsigned k = 0, i;
    ck_assert_uint_eq(m->index, nd->staging_index);
    ck_assert_uint_eq(m->size, nd->staging_size);
    free(nd->snap_data);
    nd->snap_data = nd->staging;
    nd->staging = NULL;
    nd->staging_index = 0;
    raft_configuration_fini(&nd->snap.conf);
    nd->snap = *m;
    ck_assert_int_eq(raft_configuration_copy(&m->conf, &nd->snap.conf), 0);
    for (i = 0; i < nd->n_log; i++) { /* rule 1: the whole log goes */
        free(nd->log[i].data.base);
    }
    nd->n_log = k;
    sm_decode(nd, nd->snap_data, m->size);
    nd->applied = m->index;
    raft_configuration_fini(&nd->applied_conf);
    ck_assert_int_eq(raft_configuration_copy(&m->conf, &nd->applied_conf), 0);
    nd->applied_conf_index = m->conf_index;
    nd->n_snapshot_installs++;
}

static void exec_entries(struct test_node *nd, const struct raft_update *u)
{
    unsigned i;
    if (u->n_entries == 0) {
        return;
    }
    node_free_log(nd, u->entries[0].index);
    nd->log = realloc(nd->log, (nd->n_log + u->n_entries) * sizeof *nd->log);
    ck_assert_ptr_nonnull(nd->log);
    for (i = 0; i < u->n_entries; i++) {
        struct raft_entry *e = &nd->log[nd->n_log++];
        *e = u->entries[i];
        e->data.base = xdup(u->entries[i].data.base, u->entries[i].data.len);
        if (nd->n_log > 1) {
            ck_assert_msg(
                e->index == nd->log[nd->n_log - 2].index + 1,
                "node %llu: entries from %llu over a log ending at %llu",
                (unsigned long long)nd->id,
                (unsigned long long)u->entries[0].index,
                (unsigned long long)nd->log[nd->n_log - 2].index);
        }
    }
}

static void copy_message(struct test_cluster *c,
                         struct test_node *nd,
                         const struct raft_message *m,
                         struct raft_message *out)
{
    unsigned i;
    *out = *m;
    if (m->n_entries > 0) {
        out->entries = xmalloc(m->n_entries * sizeof *out->entries);
        for (i = 0; i < m->n_entries; i++) {
            out->entries[i] = m->entries[i];
            out->entries[i].data.base =
                xdup(m->entries[i].data.base, m->entries[i].data.len);
        }
    }
    out->snapshot.data.base = NULL;
    out->snapshot.conf.base = NULL;
    if (m->type == RAFT_MSG_SNAPSHOT) {
        const struct raft_snapshot_chunk *ch = &m->snapshot;
        ck_assert_ptr_null(ch->data.base);
        out->snapshot.data.base = xmalloc(ch->data.len);
        if (ch->data.len > 0) {
            memcpy(out->snapshot.data.base, nd->snap_data + ch->offset,
                   ch->data.len);
        }
        if (ch->last) {
            out->snapshot.conf.base = xdup(ch->conf.base, ch->conf.len);
        }
    }
    (void)c;
}

static void exec_messages(struct test_cluster *c,
                          struct test_node *nd,
                          const struct raft_update *u)
{
    unsigned i;
    for (i = 0; i < u->n_messages; i++) {
        const struct raft_message *m = &u->messages[i];
        ck_assert_uint_eq(m->from, nd->id);
        c->sent_by_type[m->type]++;
        if (m->n_entries > nd->max_entries_per_append &&
            m->type == RAFT_MSG_APPEND) {
            nd->max_entries_per_append = m->n_entries;
        }
        if (m->type == RAFT_MSG_SNAPSHOT &&
            (m->snapshot.index != nd->snap.index || nd->snap_data == NULL)) {
            continue; /* rule 3: we no longer have it */
        }
        if ((c->drop_type_mask & (1u << m->type)) || m->to == 0 ||
            m->to > c->n || c->cut[m->from][m->to]) {
            continue;
        }
        if (c->qn == c->qcap) {
            c->qcap = c->qcap == 0 ? 64 : c->qcap * 2;
            c->q = realloc(c->q, c->qcap * sizeof *c->q);
            ck_assert_ptr_nonnull(c->q);
        }
        copy_message(c, nd, m, &c->q[c->qn++]);
    }
}

static void apply_one(struct test_node *nd, const struct raft_entry *e)
{
    if (e->index <= nd->applied) {
        nd->dup_applies++;
        return;
    }
    ck_assert_uint_eq(e->index, nd->applied + 1);
    nd->applied = e->index;
    if (e->index < CLUSTER_LOG_MAX) {
        nd->applied_term[e->index] = e->term;
    }
    if (e->type == RAFT_ENTRY_NORMAL) {
        uint64_t v = 0;
        if (e->data.len >= 8) {
            memcpy(&v, e->data.base, 8);
        }
        nd->sm_count++;
        nd->sm_hash = nd->sm_hash * 31 + v;
    } else if (e->type == RAFT_ENTRY_CONF) {
        raft_configuration_fini(&nd->applied_conf);
        ck_assert_int_eq(raft_configuration_decode(&e->data, &nd->applied_conf),
                         0);
        nd->applied_conf_index = e->index;
    }
}

static void exec_results(struct test_node *nd, const struct raft_update *u)
{
    unsigned i;
    for (i = 0; i < u->n_proposals && nd->n_props < 256; i++) {
        nd->props[nd->n_props++] = u->proposals[i];
    }
    for (i = 0; i < u->n_reads && nd->n_reads < 256; i++) {
        nd->reads_applied[nd->n_reads] = nd->applied;
        nd->reads[nd->n_reads++] = u->reads[i];
    }
}

int cluster_step(struct test_cluster *c, raft_id id, struct raft_event *ev)
{
    struct test_node *nd = cluster_node(c, id);
    struct raft_update u;
    raft_index persisted = 0, applied = 0;
    raft_term persisted_term = 0;
    unsigned i;
    int rv;
    ck_assert(nd->up);
    if (c->arm != NULL) {
        c->arm(true);
    }
    rv = raft_step(&nd->raft, ev, &u);
    if (c->arm != NULL) {
        c->arm(false);
    }
    if (rv != 0) {
        return rv;
    }
    if (u.snapshot_chunk != NULL) {
        exec_chunk(nd, u.snapshot_chunk); /* rule 0 */
    }
    if (u.snapshot_install != NULL) {
        exec_install(nd, u.snapshot_install); /* rule 1 */
    }
    exec_entries(nd, &u); /* rule 2 */
    if (u.flags & RAFT_UPDATE_HARD_STATE) {
        nd->hs = u.hard_state;
    }
    if (u.n_entries > 0) {
        persisted = u.entries[u.n_entries - 1].index;
        persisted_term = u.entries[u.n_entries - 1].term;
    }
    exec_messages(c, nd, &u);             /* rule 3 */
    for (i = 0; i < u.n_committed; i++) { /* rule 5 */
        apply_one(nd, &u.committed[i]);
        applied = nd->applied;
    }
    exec_results(nd, &u); /* rule 6 */
    if (persisted > 0) {  /* rule 4 */
        struct raft_event pe = {.type = RAFT_EVENT_PERSISTED};
        pe.persisted.index = persisted;
        pe.persisted.term = persisted_term;
        step_ok(c, id, &pe, true);
    }
    if (applied > 0) {
        struct raft_event ae = {.type = RAFT_EVENT_APPLIED};
        ae.applied.index = applied;
        step_ok(c, id, &ae, true);
    }
    return 0;
}

/* ---- network --------------------------------------------------------- */

void cluster_msg_free(struct raft_message *m)
{
    unsigned i;
    for (i = 0; i < m->n_entries; i++) {
        free(m->entries[i].data.base);
    }
    free(m->entries);
    free(m->snapshot.data.base);
    free(m->snapshot.conf.base);
}

void cluster_inject(struct test_cluster *c, const struct raft_message *m)
{
    struct raft_event ev = {.type = RAFT_EVENT_RECEIVE};
    struct test_node *nd;
    if (m->to == 0 || m->to > c->n) {
        return;
    }
    nd = cluster_node(c, m->to);
    if (!nd->up || c->cut[m->from][m->to]) {
        return;
    }
    ev.receive.message = m;
    step_ok(c, m->to, &ev, false);
}

bool cluster_take(struct test_cluster *c,
                  raft_id from,
                  raft_id to,
                  int type,
                  struct raft_message *out)
{
    unsigned i;
    for (i = 0; i < c->qn; i++) {
        struct raft_message *m = &c->q[i];
        if ((from == 0 || m->from == from) && (to == 0 || m->to == to) &&
            (type == 0 || (int)m->type == type)) {
            *out = *m;
            memmove(&c->q[i], &c->q[i + 1], (c->qn - i - 1) * sizeof *m);
            c->qn--;
            return true;
        }
    }
    return false;
}

unsigned cluster_deliver(struct test_cluster *c)
{
    unsigned delivered = 0;
    struct raft_message m;
    while (c->qn > 0 && delivered < 100000) {
        cluster_take(c, 0, 0, 0, &m);
        cluster_inject(c, &m);
        cluster_msg_free(&m);
        delivered++;
    }
    return delivered;
}

bool cluster_deliver_one(struct test_cluster *c)
{
    struct raft_message m;
    if (!cluster_take(c, 0, 0, 0, &m)) {
        return false;
    }
    cluster_inject(c, &m);
    cluster_msg_free(&m);
    return true;
}

void cluster_drop_all(struct test_cluster *c)
{
    unsigned i;
    for (i = 0; i < c->qn; i++) {
        cluster_msg_free(&c->q[i]);
    }
    c->qn = 0;
}

/* ---- actions ----------------------------------------------------------- */

void cluster_tick(struct test_cluster *c, raft_id id, unsigned ticks)
{
    struct raft_event ev = {.type = RAFT_EVENT_TICK};
    while (ticks-- > 0) {
        if (cluster_node(c, id)->up) {
            step_ok(c, id, &ev, false);
        }
    }
}

void cluster_tick_all(struct test_cluster *c, unsigned ticks)
{
    unsigned i;
    while (ticks-- > 0) {
        for (i = 1; i <= c->n; i++) {
            cluster_tick(c, i, 1);
        }
    }
}

void cluster_campaign(struct test_cluster *c, raft_id id)
{
    struct raft_event ev = {.type = RAFT_EVENT_CAMPAIGN};
    step_ok(c, id, &ev, false);
}

bool cluster_elect(struct test_cluster *c, raft_id id)
{
    cluster_campaign(c, id);
    cluster_deliver(c);
    return raft_state(&cluster_node(c, id)->raft) == RAFT_LEADER;
}

int cluster_propose(struct test_cluster *c, raft_id id, uint64_t value)
{
    struct test_node *nd = cluster_node(c, id);
    struct raft_event ev = {.type = RAFT_EVENT_PROPOSE};
    struct goulette_buf buf = {&value, sizeof value};
    unsigned before = nd->n_props;
    ev.propose.context = value;
    ev.propose.type = RAFT_ENTRY_NORMAL;
    ev.propose.data = &buf;
    ev.propose.n = 1;
    step_ok(c, id, &ev, false);
    if (nd->n_props > before) {
        return nd->props[nd->n_props - 1].rv;
    }
    return 1; /* forwarded: the result comes later */
}

void cluster_read(struct test_cluster *c, raft_id id, uint64_t context)
{
    struct raft_event ev = {.type = RAFT_EVENT_READ_INDEX};
    ev.read_index.context = context;
    step_ok(c, id, &ev, false);
}

void cluster_conf_change(struct test_cluster *c,
                         raft_id leader,
                         enum raft_conf_change_type type,
                         raft_id id)
{
    struct raft_event ev = {.type = RAFT_EVENT_CONF_CHANGE};
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)(7000 + id));
    ev.conf_change.type = type;
    ev.conf_change.id = id;
    ev.conf_change.address = addr;
    ev.conf_change.context = 1000 + id;
    step_ok(c, leader, &ev, false);
}

int cluster_snapshot(struct test_cluster *c, raft_id id, raft_index trailing)
{
    struct test_node *nd = cluster_node(c, id);
    struct raft_event ev = {.type = RAFT_EVENT_SNAPSHOT};
    int rv;
    ev.snapshot.index = nd->applied;
    ev.snapshot.size = c->snapshot_size;
    ev.snapshot.trailing = trailing;
    rv = cluster_step(c, id, &ev);
    if (rv != 0) {
        return rv;
    }
    free(nd->snap_data);
    nd->snap_data = sm_encode(nd, c->snapshot_size);
    raft_configuration_fini(&nd->snap.conf);
    ck_assert_int_eq(raft_configuration_copy(&nd->applied_conf, &nd->snap.conf),
                     0);
    nd->snap.conf_index = nd->applied_conf_index;
    nd->snap.index = nd->applied;
    nd->snap.term = nd->applied_term[nd->applied];
    nd->snap.size = c->snapshot_size;
    /* Storage compaction as the core allows it. */
    {
        unsigned i, k = 0;
        raft_index keep = nd->applied > trailing ? nd->applied - trailing : 0;
        for (i = 0; i < nd->n_log; i++) {
            if (nd->log[i].index <= keep) {
                free(nd->log[i].data.base);
            } else {
                nd->log[k++] = nd->log[i];
            }
        }
        nd->n_log = k;
    }
    return 0;
}

void cluster_isolate(struct test_cluster *c, raft_id id)
{
    unsigned i;
    for (i = 1; i <= c->n; i++) {
        if (i != id) {
            c->cut[id][i] = c->cut[i][id] = true;
        }
    }
}

void cluster_cut(struct test_cluster *c, raft_id a, raft_id b)
{
    c->cut[a][b] = c->cut[b][a] = true;
}

void cluster_heal(struct test_cluster *c)
{
    memset(c->cut, 0, sizeof c->cut);
}

void cluster_crash(struct test_cluster *c, raft_id id)
{
    struct test_node *nd = cluster_node(c, id);
    unsigned i, k = 0;
    ck_assert(nd->up);
    raft_fini(&nd->raft);
    nd->up = false;
    free(nd->staging);
    nd->staging = NULL;
    nd->staging_index = 0;
    /* Messages to it are lost. */
    for (i = 0; i < c->qn; i++) {
        if (c->q[i].to == id) {
            cluster_msg_free(&c->q[i]);
        } else {
            c->q[k++] = c->q[i];
        }
    }
    c->qn = k;
}

void cluster_restart(struct test_cluster *c, raft_id id)
{
    struct test_node *nd = cluster_node(c, id);
    memset(nd->applied_term, 0, sizeof nd->applied_term);
    node_start(c, nd);
}

raft_id cluster_leader(struct test_cluster *c)
{
    raft_id leader = 0;
    raft_term term = 0;
    unsigned i;
    for (i = 0; i < c->n; i++) {
        struct test_node *nd = &c->nodes[i];
        if (nd->up && raft_state(&nd->raft) == RAFT_LEADER &&
            raft_current_term(&nd->raft) >= term) {
            leader = nd->id;
            term = raft_current_term(&nd->raft);
        }
    }
    return leader;
}

void cluster_check_applied(struct test_cluster *c)
{
    unsigned i, j;
    raft_index k;
    for (i = 0; i < c->n; i++) {
        for (j = i + 1; j < c->n; j++) {
            struct test_node *a = &c->nodes[i], *b = &c->nodes[j];
            for (k = 1; k < CLUSTER_LOG_MAX; k++) {
                if (a->applied_term[k] != 0 && b->applied_term[k] != 0) {
                    ck_assert_uint_eq(a->applied_term[k], b->applied_term[k]);
                }
            }
        }
        ck_assert_uint_eq(c->nodes[i].dup_applies, 0);
    }
}

void cluster_set_log(struct test_cluster *c,
                     raft_id id,
                     const raft_term *terms,
                     unsigned n,
                     raft_term term)
{
    struct test_node *nd = cluster_node(c, id);
    unsigned i;
    ck_assert_uint_ge(nd->n_log, 1);
    node_free_log(nd, 2);
    nd->log = realloc(nd->log, (n + 1) * sizeof *nd->log);
    ck_assert_ptr_nonnull(nd->log);
    for (i = 0; i < n; i++) {
        struct raft_entry *e = &nd->log[1 + i];
        uint64_t v = (i + 2) * 1000 + terms[i];
        e->index = i + 2;
        e->term = terms[i];
        e->type = RAFT_ENTRY_NORMAL;
        e->data.base = xdup(&v, sizeof v);
        e->data.len = sizeof v;
    }
    nd->n_log = n + 1;
    nd->hs.term = n > 0 && terms[n - 1] > term ? terms[n - 1] : term;
    if (nd->hs.term == 0) {
        nd->hs.term = 1;
    }
}
