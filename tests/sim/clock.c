/* Virtual time: a binary heap of events ordered by (time, seq).  No wall
 * clock is ever read; time advances only by popping the next event. */
#include "clock.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

void sim_clock_init(struct sim_clock *c, void (*free_payload)(void *))
{
    c->now = 0;
    c->next_seq = 0;
    c->heap = NULL;
    c->n = 0;
    c->cap = 0;
    c->free_payload = free_payload;
}

void sim_clock_fini(struct sim_clock *c)
{
    size_t i;
    for (i = 0; i < c->n; i++) {
        if (c->heap[i].payload != NULL && c->free_payload != NULL) {
            c->free_payload(c->heap[i].payload);
        }
    }
    free(c->heap);
    c->heap = NULL;
    c->n = 0;
    c->cap = 0;
}

static bool before(const struct sim_event *a, const struct sim_event *b)
{
    if (a->time != b->time) {
        return a->time < b->time;
    }
    return a->seq < b->seq;
}

static void swap(struct sim_event *a, struct sim_event *b)
{
    struct sim_event t = *a;
    *a = *b;
    *b = t;
}

int sim_clock_schedule(struct sim_clock *c,
                       uint64_t delay,
                       const struct sim_event *e)
{
    size_t i;
    if (c->n == c->cap) {
        size_t cap = c->cap == 0 ? 256 : c->cap * 2;
        struct sim_event *heap = realloc(c->heap, cap * sizeof *heap);
        if (heap == NULL) {
            return -ENOMEM;
        }
        c->heap = heap;
        c->cap = cap;
    }
    i = c->n++;
    c->heap[i] = *e;
    c->heap[i].time = c->now + delay;
    c->heap[i].seq = c->next_seq++;
    while (i > 0 && before(&c->heap[i], &c->heap[(i - 1) / 2])) {
        swap(&c->heap[i], &c->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    return 0;
}

int sim_clock_pop(struct sim_clock *c, struct sim_event *out)
{
    size_t i = 0;
    if (c->n == 0) {
        return -ENOENT;
    }
    *out = c->heap[0];
    c->now = out->time;
    c->heap[0] = c->heap[--c->n];
    for (;;) {
        size_t l = 2 * i + 1;
        size_t r = l + 1;
        size_t m = i;
        if (l < c->n && before(&c->heap[l], &c->heap[m])) {
            m = l;
        }
        if (r < c->n && before(&c->heap[r], &c->heap[m])) {
            m = r;
        }
        if (m == i) {
            break;
        }
        swap(&c->heap[i], &c->heap[m]);
        i = m;
    }
    return 0;
}
