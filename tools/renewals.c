/* The renewal set (renewals.h): an array in arrival order plus an open
 * addressing index over it (FNV-1a, linear probing).  The index never holds
 * more than half its slots, so a probe always ends at an empty slot. */
#include "renewals.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    while (*s != '\0') {
        h ^= (uint8_t)*s++;
        h *= 0x100000001b3ULL;
    }
    return h;
}

int renewals_init(struct renewals *r, size_t max)
{
    size_t n_slots = 2;

    memset(r, 0, sizeof *r);
    if (max == 0 || max > (1u << 24)) {
        return -EINVAL;
    }
    while (n_slots < 2 * max) {
        n_slots *= 2;
    }
    r->ids = calloc(max, sizeof *r->ids);
    r->slots = calloc(n_slots, sizeof *r->slots);
    if (r->ids == NULL || r->slots == NULL) {
        free(r->ids);
        free(r->slots);
        memset(r, 0, sizeof *r);
        return -ENOMEM;
    }
    r->max = max;
    r->n_slots = n_slots;
    return 0;
}

void renewals_clear(struct renewals *r)
{
    size_t i;

    for (i = 0; i < r->n; i++) {
        free(r->ids[i]);
        r->ids[i] = NULL;
    }
    r->n = 0;
    if (r->slots != NULL) {
        memset(r->slots, 0, r->n_slots * sizeof *r->slots);
    }
}

void renewals_fini(struct renewals *r)
{
    renewals_clear(r);
    free(r->ids);
    free(r->slots);
    memset(r, 0, sizeof *r);
}

int renewals_add(struct renewals *r, const char *id)
{
    size_t mask = r->n_slots - 1;
    size_t i = (size_t)hash(id) & mask;
    char *copy;

    while (r->slots[i] != 0) {
        if (strcmp(r->ids[r->slots[i] - 1], id) == 0) {
            return 0;
        }
        i = (i + 1) & mask;
    }
    if (r->n == r->max) {
        r->dropped++;
        return -ENOBUFS;
    }
    copy = strdup(id);
    if (copy == NULL) {
        return -ENOMEM;
    }
    r->ids[r->n++] = copy;
    r->slots[i] = (uint32_t)r->n;
    return 1;
}
