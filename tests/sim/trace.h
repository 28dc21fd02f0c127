/* The transcript of one simulated run: one line per step and per notable
 * runtime action, printed only when --trace asks for it.  Owns no state
 * beyond where lines go and the step/time prefix. */
#ifndef SIM_TRACE_H
#define SIM_TRACE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <goulette/log.h>

struct sim_trace
{
    FILE *out;                    /* NULL: tracing off; borrowed */
    uint64_t step;                /* current step number */
    uint64_t time;                /* current virtual time */
    struct goulette_log core_log; /* hands the core's debug lines to out */
};

/* @out may be NULL (no transcript). */
void sim_trace_init(struct sim_trace *t, FILE *out);

static inline bool sim_trace_on(const struct sim_trace *t)
{
    return t->out != NULL;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void sim_trace_printf(struct sim_trace *t, const char *fmt, ...);

#endif /* SIM_TRACE_H */
