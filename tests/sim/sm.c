/* The simulated state machine and its snapshot codec.  Deterministic: the
 * state is a pure function of the applied entries. */
#include "sm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Snapshot layout, all u64 little-endian: magic, applied, applied_term,
 * chain, n_values, then kv[i], kv_index[i] for each key, then padding words
 * so that a snapshot spans several chunks. */
#define SNAP_MAGIC 0x534e415053494dULL
#define SNAP_WORDS (5 + 2 * SIM_SM_KEYS + 11)

void sim_sm_init(struct sim_sm *sm)
{
    memset(sm, 0, sizeof *sm);
    raft_configuration_init(&sm->conf);
}

void sim_sm_fini(struct sim_sm *sm)
{
    raft_configuration_fini(&sm->conf);
}

int sim_sm_copy(const struct sim_sm *src, struct sim_sm *dst)
{
    struct raft_configuration conf;
    int rv;
    raft_configuration_init(&conf);
    rv = raft_configuration_copy(&src->conf, &conf);
    if (rv != 0) {
        return rv;
    }
    raft_configuration_fini(&dst->conf);
    *dst = *src;
    dst->conf = conf;
    return 0;
}

static void put64(unsigned char *p, uint64_t v)
{
    unsigned i;
    for (i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    unsigned i;
    for (i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

void sim_sm_command(uint64_t key, uint64_t value, unsigned char *out)
{
    put64(out, key);
    put64(out + 8, value);
}

int sim_sm_apply(struct sim_sm *sm, const struct raft_entry *e)
{
    struct raft_configuration conf;
    uint64_t key;
    int rv;
    switch (e->type) {
    case RAFT_ENTRY_NORMAL:
        if (e->data.len != SIM_SM_CMD_BYTES) {
            return -EBADMSG;
        }
        key = get64(e->data.base) % SIM_SM_KEYS;
        sm->kv[key] = get64((const unsigned char *)e->data.base + 8);
        sm->kv_index[key] = e->index;
        sm->n_values++;
        break;
    case RAFT_ENTRY_CONF:
        raft_configuration_init(&conf);
        rv = raft_configuration_decode(&e->data, &conf);
        if (rv != 0) {
            raft_configuration_fini(&conf);
            return rv;
        }
        raft_configuration_fini(&sm->conf);
        sm->conf = conf;
        sm->conf_index = e->index;
        break;
    case RAFT_ENTRY_BARRIER:
        break;
    default:
        return -EBADMSG;
    }
    sm->chain = sim_log_chain(sm->chain, e);
    sm->applied = e->index;
    sm->applied_term = e->term;
    return 0;
}

int sim_sm_encode(const struct sim_sm *sm, struct goulette_buf *buf)
{
    unsigned char *p = malloc(SNAP_WORDS * 8);
    unsigned i;
    unsigned w = 0;
    if (p == NULL) {
        return -ENOMEM;
    }
    put64(p + 8 * w++, SNAP_MAGIC);
    put64(p + 8 * w++, sm->applied);
    put64(p + 8 * w++, sm->applied_term);
    put64(p + 8 * w++, sm->chain);
    put64(p + 8 * w++, sm->n_values);
    for (i = 0; i < SIM_SM_KEYS; i++) {
        put64(p + 8 * w++, sm->kv[i]);
        put64(p + 8 * w++, sm->kv_index[i]);
    }
    while (w < SNAP_WORDS) {
        put64(p + 8 * w, sm->chain ^ w);
        w++;
    }
    buf->base = p;
    buf->len = SNAP_WORDS * 8;
    return 0;
}

int sim_sm_restore(struct sim_sm *sm,
                   const struct goulette_buf *data,
                   const struct raft_snapshot_meta *meta)
{
    const unsigned char *p = data->base;
    struct sim_sm next;
    unsigned i;
    unsigned w = 0;
    int rv;
    if (data->len != SNAP_WORDS * 8 || get64(p) != SNAP_MAGIC) {
        return -EBADMSG;
    }
    sim_sm_init(&next);
    w = 1;
    next.applied = get64(p + 8 * w++);
    next.applied_term = get64(p + 8 * w++);
    next.chain = get64(p + 8 * w++);
    next.n_values = get64(p + 8 * w++);
    for (i = 0; i < SIM_SM_KEYS; i++) {
        next.kv[i] = get64(p + 8 * w++);
        next.kv_index[i] = get64(p + 8 * w++);
    }
    if (next.applied != meta->index || next.applied_term != meta->term) {
        sim_sm_fini(&next);
        return -EBADMSG;
    }
    rv = raft_configuration_copy(&meta->conf, &next.conf);
    if (rv != 0) {
        sim_sm_fini(&next);
        return rv;
    }
    next.conf_index = meta->conf_index;
    sim_sm_fini(sm);
    *sm = next;
    return 0;
}
