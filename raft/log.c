/* The in-memory log (dissertation §3.5 log structure, §5 compaction): an
 * array of entries after a compaction point.  Removed entries' data is
 * handed to the garbage list, because the update the runtime is executing may
 * still point at it until the next raft_step(). */
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "out.h"

void raft__log_init(struct raft__log *l)
{
    memset(l, 0, sizeof *l);
}

void raft__log_fini(struct raft__log *l)
{
    unsigned i;
    for (i = 0; i < l->n; i++) {
        free(l->entries[i].data.base);
    }
    free(l->entries);
    memset(l, 0, sizeof *l);
}

raft_index raft__log_last_index(const struct raft__log *l)
{
    return l->offset + l->n;
}

raft_term raft__log_last_term(const struct raft__log *l)
{
    return l->n > 0 ? l->entries[l->n - 1].term : l->offset_term;
}

raft_term raft__log_term(const struct raft__log *l, raft_index index)
{
    if (index == l->offset) {
        return l->offset_term;
    }
    if (index < l->offset || index > l->offset + l->n) {
        return 0;
    }
    return l->entries[index - l->offset - 1].term;
}

struct raft_entry *raft__log_get(const struct raft__log *l, raft_index index)
{
    if (index <= l->offset || index > l->offset + l->n) {
        return NULL;
    }
    return &l->entries[index - l->offset - 1];
}

int raft__log_append(struct raft__log *l, const struct raft_entry *e)
{
    struct raft_entry *copy;
    void *data = NULL;
    if (l->n == l->cap) {
        unsigned cap = l->cap == 0 ? 64 : l->cap * 2;
        struct raft_entry *p = realloc(l->entries, cap * sizeof *p);
        if (p == NULL) {
            return -ENOMEM;
        }
        l->entries = p;
        l->cap = cap;
    }
    if (e->data.len > 0) {
        data = malloc(e->data.len);
        if (data == NULL) {
            return -ENOMEM;
        }
        memcpy(data, e->data.base, e->data.len);
    }
    copy = &l->entries[l->n++];
    *copy = *e;
    copy->index = l->offset + l->n;
    copy->data.base = data;
    return 0;
}

void raft__log_truncate(struct raft__log *l,
                        raft_index from,
                        struct raft__garbage *g)
{
    while (l->n > 0 && l->offset + l->n >= from) {
        raft__garbage_add(g, l->entries[l->n - 1].data.base);
        l->n--;
    }
}

void raft__log_compact(struct raft__log *l,
                       raft_index upto,
                       struct raft__garbage *g)
{
    unsigned k, i;
    if (upto <= l->offset) {
        return;
    }
    if (upto > l->offset + l->n) {
        upto = l->offset + l->n;
    }
    k = (unsigned)(upto - l->offset);
    l->offset_term = l->entries[k - 1].term;
    for (i = 0; i < k; i++) {
        raft__garbage_add(g, l->entries[i].data.base);
    }
    memmove(l->entries, l->entries + k, (l->n - k) * sizeof *l->entries);
    l->n -= k;
    l->offset = upto;
}

void raft__log_reset(struct raft__log *l,
                     raft_index index,
                     raft_term term,
                     struct raft__garbage *g)
{
    raft__log_truncate(l, 0, g);
    l->offset = index;
    l->offset_term = term;
}

uint64_t raft__log_bytes(const struct raft__log *l,
                         raft_index from,
                         raft_index to)
{
    uint64_t bytes = 0;
    raft_index i;
    for (i = from + 1; i <= to; i++) {
        const struct raft_entry *e = raft__log_get(l, i);
        if (e != NULL) {
            bytes += e->data.len;
        }
    }
    return bytes;
}
