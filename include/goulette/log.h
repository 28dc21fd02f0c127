/* Logging: one line per event, with a level and a subsystem.
 *
 * The logger is instance state handed in through each subsystem's config (no
 * global logger), so the pure cores can log without doing I/O themselves: the
 * emit callback, owned by the composition root, does the writing.
 * Dependency-free. */
#ifndef GOULETTE_LOG_H
#define GOULETTE_LOG_H

#include <stdarg.h>
#include <stdio.h>

enum goulette_log_level {
    GOULETTE_LOG_DEBUG = 0,
    GOULETTE_LOG_INFO = 1,
    GOULETTE_LOG_WARN = 2,
    GOULETTE_LOG_ERROR = 3,
};

struct goulette_log
{
    enum goulette_log_level level; /* lowest level emitted */
    /* Writes one formatted line.  @msg has no trailing newline and is
     * borrowed.  Called on the thread that logs. */
    void (*emit)(void *data,
                 enum goulette_log_level level,
                 const char *subsys,
                 const char *msg);
    void *data; /* passed to emit */
};

static inline const char *goulette_log_level_name(enum goulette_log_level l)
{
    switch (l) {
    case GOULETTE_LOG_DEBUG:
        return "debug";
    case GOULETTE_LOG_INFO:
        return "info";
    case GOULETTE_LOG_WARN:
        return "warn";
    case GOULETTE_LOG_ERROR:
        return "error";
    }
    return "?";
}

/* Format and emit one line when @log is non-NULL and @level is enabled.
 * Lines longer than 1 KiB are truncated. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static inline void
goulette_logf(const struct goulette_log *log,
              enum goulette_log_level level,
              const char *subsys,
              const char *fmt,
              ...)
{
    char msg[1024];
    va_list ap;
    if (log == NULL || log->emit == NULL || level < log->level) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log->emit(log->data, level, subsys, msg);
}

#endif /* GOULETTE_LOG_H */
