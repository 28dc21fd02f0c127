/* Transcript lines "step time | text".  Deterministic: it prints only
 * virtual time and step numbers, so two traces of one seed are identical. */
#include "trace.h"

#include <stdarg.h>

static void core_emit(void *data,
                      enum goulette_log_level level,
                      const char *subsys,
                      const char *msg)
{
    struct sim_trace *t = data;
    fprintf(t->out, "%8llu %8llu |   core %s %s: %s\n",
            (unsigned long long)t->step, (unsigned long long)t->time,
            goulette_log_level_name(level), subsys, msg);
}

void sim_trace_init(struct sim_trace *t, FILE *out)
{
    t->out = out;
    t->step = 0;
    t->time = 0;
    t->core_log.level = GOULETTE_LOG_DEBUG;
    t->core_log.emit = core_emit;
    t->core_log.data = t;
}

void sim_trace_printf(struct sim_trace *t, const char *fmt, ...)
{
    va_list ap;
    if (t->out == NULL) {
        return;
    }
    fprintf(t->out, "%8llu %8llu | ", (unsigned long long)t->step,
            (unsigned long long)t->time);
    va_start(ap, fmt);
    vfprintf(t->out, fmt, ap);
    va_end(ap);
    fputc('\n', t->out);
}
