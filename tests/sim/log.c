/* The runtime's log copy: a dense array above a base, with chain hashes.
 * Used twice per node: once for what is durable ("disk") and once for what
 * the core has handed out ("mem", the core's log as far as it is visible). */
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "prng.h"

uint64_t sim_log_chain(uint64_t prev, const struct raft_entry *e)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a over the data */
    const unsigned char *p = e->data.base;
    size_t i;
    for (i = 0; i < e->data.len; i++) {
        h = (h ^ p[i]) * 0x100000001b3ULL;
    }
    h = sim_prng_mix(h ^ (uint64_t)e->type);
    h = sim_prng_mix(h ^ e->term);
    h = sim_prng_mix(h ^ e->index);
    return sim_prng_mix(h ^ prev);
}

void sim_log_init(struct sim_log *l)
{
    memset(l, 0, sizeof *l);
}

static void truncate_to(struct sim_log *l, size_t n)
{
    while (l->n > n) {
        l->n--;
        free(l->v[l->n].e.data.base);
    }
}

void sim_log_fini(struct sim_log *l)
{
    truncate_to(l, 0);
    free(l->v);
    sim_log_init(l);
}

const struct sim_entry *sim_log_get(const struct sim_log *l, raft_index index)
{
    if (index <= l->base || index > sim_log_last(l)) {
        return NULL;
    }
    return &l->v[index - l->base - 1];
}

raft_term sim_log_term(const struct sim_log *l, raft_index index)
{
    const struct sim_entry *e;
    if (index == l->base) {
        return l->base_term;
    }
    e = sim_log_get(l, index);
    return e == NULL ? 0 : e->e.term;
}

static int copy_entry(struct raft_entry *dst, const struct raft_entry *src)
{
    *dst = *src;
    dst->data.base = NULL;
    if (src->data.len > 0) {
        dst->data.base = malloc(src->data.len);
        if (dst->data.base == NULL) {
            return -ENOMEM;
        }
        memcpy(dst->data.base, src->data.base, src->data.len);
    }
    return 0;
}

static int reserve(struct sim_log *l, size_t n)
{
    struct sim_entry *v;
    size_t cap;
    if (n <= l->cap) {
        return 0;
    }
    cap = l->cap == 0 ? 64 : l->cap;
    while (cap < n) {
        cap *= 2;
    }
    v = realloc(l->v, cap * sizeof *v);
    if (v == NULL) {
        return -ENOMEM;
    }
    l->v = v;
    l->cap = cap;
    return 0;
}

int sim_log_append(struct sim_log *l, const struct raft_entry *es, unsigned n)
{
    unsigned i;
    int rv;
    if (n == 0) {
        return 0;
    }
    if (es[0].index <= l->base || es[0].index > sim_log_last(l) + 1) {
        return -ERANGE;
    }
    for (i = 1; i < n; i++) {
        if (es[i].index != es[0].index + i) {
            return -ERANGE;
        }
    }
    truncate_to(l, es[0].index - l->base - 1);
    rv = reserve(l, l->n + n);
    if (rv != 0) {
        return rv;
    }
    for (i = 0; i < n; i++) {
        uint64_t prev = l->n == 0 ? l->base_chain : l->v[l->n - 1].chain;
        rv = copy_entry(&l->v[l->n].e, &es[i]);
        if (rv != 0) {
            return rv;
        }
        l->v[l->n].chain = sim_log_chain(prev, &es[i]);
        l->n++;
    }
    return 0;
}

static void drop_front(struct sim_log *l, size_t k)
{
    size_t i;
    if (k == 0) {
        return;
    }
    l->base_term = l->v[k - 1].e.term;
    l->base_chain = l->v[k - 1].chain;
    l->base += k;
    for (i = 0; i < k; i++) {
        free(l->v[i].e.data.base);
    }
    memmove(l->v, l->v + k, (l->n - k) * sizeof *l->v);
    l->n -= k;
}

void sim_log_compact(struct sim_log *l, raft_index below)
{
    if (below <= l->base + 1) {
        return;
    }
    if (below - 1 > sim_log_last(l)) {
        below = sim_log_last(l) + 1;
    }
    drop_front(l, below - 1 - l->base);
}

void sim_log_install(struct sim_log *l,
                     raft_index index,
                     raft_term term,
                     uint64_t chain)
{
    truncate_to(l, 0);
    l->base = index;
    l->base_term = term;
    l->base_chain = chain;
}

int sim_log_copy(const struct sim_log *src, struct sim_log *dst)
{
    size_t i;
    int rv;
    dst->base = src->base;
    dst->base_term = src->base_term;
    dst->base_chain = src->base_chain;
    rv = reserve(dst, src->n);
    if (rv != 0) {
        return rv;
    }
    for (i = 0; i < src->n; i++) {
        rv = copy_entry(&dst->v[i].e, &src->v[i].e);
        if (rv != 0) {
            return rv;
        }
        dst->v[i].chain = src->v[i].chain;
        dst->n++;
    }
    return 0;
}

int sim_log_entries(const struct sim_log *l,
                    struct raft_entry **out,
                    unsigned *n)
{
    struct raft_entry *es;
    size_t i;
    *out = NULL;
    *n = 0;
    if (l->n == 0) {
        return 0;
    }
    es = calloc(l->n, sizeof *es);
    if (es == NULL) {
        return -ENOMEM;
    }
    for (i = 0; i < l->n; i++) {
        if (copy_entry(&es[i], &l->v[i].e) != 0) {
            sim_log_entries_free(es, (unsigned)i);
            return -ENOMEM;
        }
    }
    *out = es;
    *n = (unsigned)l->n;
    return 0;
}

void sim_log_entries_free(struct raft_entry *es, unsigned n)
{
    unsigned i;
    for (i = 0; i < n; i++) {
        free(es[i].data.base);
    }
    free(es);
}
