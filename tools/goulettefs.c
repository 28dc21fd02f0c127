/* goulettefs, the daemon: the composition root.  The only place that creates
 * the libuv loop and wires the subsystems together; it owns process-level
 * concerns (options, logging to stderr, the data-directory lock, signals,
 * exit status) and no protocol logic.
 *
 * Exit status: 0 after a clean shutdown (SIGINT/SIGTERM), 1 when the member
 * cannot start or fails, 2 on a usage error. */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include <goulette/err.h>
#include <goulette/log.h>

#include "member.h"
#include "options.h"
#include "stale.h"

#define GOULETTEFS_VERSION "0.1.0"

struct daemon
{
    struct options opts;
    struct goulette_log log; /* emits to stderr */
    uv_loop_t loop;
    uv_signal_t sigint;
    uv_signal_t sigterm;
    struct member member; /* the store, Raft and the mount */
    bool member_started;
    int lock_fd;   /* DATA_DIR/LOCK, held with flock; -1 when not held */
    bool stopping; /* a shutdown has begun */
    int exit_status;
};

/* One line per event on stderr: UTC time, level, member, subsystem. */
static void log_emit(void *data,
                     enum goulette_log_level level,
                     const char *subsys,
                     const char *msg)
{
    const struct daemon *d = data;
    struct timespec ts;
    struct tm tm;
    char when[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ %-5s %s %s: %s\n", when, ts.tv_nsec / 1000000,
            goulette_log_level_name(level), d->opts.name, subsys, msg);
}

/* mkdir -p with mode 0700 for the last component. */
static int make_dirs(const char *path)
{
    char *copy = strdup(path);
    char *p;
    int rv = 0;

    if (copy == NULL) {
        return -ENOMEM;
    }
    for (p = copy + 1; *p != '\0'; p++) {
        if (*p != '/') {
            continue;
        }
        *p = '\0';
        if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
            rv = -errno;
            goto err_after_alloc;
        }
        *p = '/';
    }
    if (mkdir(copy, 0700) != 0 && errno != EEXIST) {
        rv = -errno;
        goto err_after_alloc;
    }
err_after_alloc:
    free(copy);
    return rv;
}

/* Create the data directory if needed and take its lock, so that two
 * members never share one directory. */
static int data_dir_lock(struct daemon *d)
{
    const char *dir = d->opts.data_dir;
    char path[4096];
    char pid[32];
    struct stat st;
    int rv;
    int fd = -1;

    rv = make_dirs(dir);
    if (rv != 0) {
        goulette_logf(&d->log, GOULETTE_LOG_ERROR, "main",
                      "cannot create data directory %s: %s", dir,
                      goulette_strerror(rv));
        return rv;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        goulette_logf(&d->log, GOULETTE_LOG_ERROR, "main",
                      "data directory %s is not a directory", dir);
        return -ENOTDIR;
    }
    if ((size_t)snprintf(path, sizeof path, "%s/LOCK", dir) >= sizeof path) {
        return -ENAMETOOLONG;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        rv = -errno;
        goulette_logf(&d->log, GOULETTE_LOG_ERROR, "main", "cannot open %s: %s",
                      path, goulette_strerror(rv));
        return rv;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
        /* A predecessor killed with SIGKILL may still hold the lock as a
         * zombie: one of its threads waits on its own, now unserved,
         * mount.  Aborting that mount's connection lets it go. */
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        long holder;
        int tries;
        pid[n > 0 ? n : 0] = '\0';
        holder = strtol(pid, NULL, 10);
        if (holder > 0 && stale_pid_dying((pid_t)holder) &&
            d->opts.mount != NULL) {
            stale_mount_clear(&d->log, d->opts.mount, true);
        }
        for (tries = 0;
             tries < 100 && holder > 0 && stale_pid_dying((pid_t)holder);
             tries++) {
            if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
                break;
            }
            usleep(100 * 1000);
        }
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        rv = -errno;
        if (rv == -EWOULDBLOCK) {
            ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
            pid[n > 0 ? n : 0] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
            goulette_logf(&d->log, GOULETTE_LOG_ERROR, "main",
                          "data directory %s is in use by another goulettefs "
                          "(pid %s)",
                          dir, pid[0] != '\0' ? pid : "unknown");
            rv = -EBUSY;
        }
        goto err_after_open;
    }
    snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 ||
        pwrite(fd, pid, strlen(pid), 0) != (ssize_t)strlen(pid)) {
        rv = -errno;
        goto err_after_open;
    }
    d->lock_fd = fd;
    return 0;

err_after_open:
    close(fd);
    return rv;
}

static int check_mountpoint(struct daemon *d)
{
    struct stat st;
    unsigned dev;
    int rv;
    if (d->opts.mount == NULL) {
        return 0;
    }
    if (stale_mount_find(d->opts.mount, &dev)) {
        if (d->lock_fd < 0) {
            return 0; /* checked again once the data directory is ours */
        }
        /* We hold the data directory: whoever served this mount is gone. */
        rv = stale_mount_clear(&d->log, d->opts.mount, true);
        if (rv != 0) {
            return rv;
        }
    }
    if (stat(d->opts.mount, &st) != 0) {
        rv = -errno;
        goulette_logf(&d->log, GOULETTE_LOG_ERROR, "main", "mount point %s: %s",
                      d->opts.mount, goulette_strerror(rv));
        return rv;
    }
    if (!S_ISDIR(st.st_mode)) {
        goulette_logf(&d->log, GOULETTE_LOG_ERROR, "main",
                      "mount point %s is not a directory", d->opts.mount);
        return -ENOTDIR;
    }
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void close_signals(struct daemon *d)
{
    uv_close((uv_handle_t *)&d->sigint, on_handle_closed);
    uv_close((uv_handle_t *)&d->sigterm, on_handle_closed);
}

static void on_member_stopped(struct member *m)
{
    struct daemon *d =
        (struct daemon *)((char *)m - offsetof(struct daemon, member));
    d->member_started = false;
    if (m->fatal != 0) {
        d->exit_status = 1;
    }
    if (!d->stopping) {
        /* The member stopped by itself (its mount was taken away). */
        goulette_logf(&d->log, GOULETTE_LOG_ERROR, "main",
                      "the member stopped by itself: %s",
                      goulette_strerror(m->fatal));
        d->stopping = true;
        d->exit_status = 1;
    }
    close_signals(d);
}

/* Begin an orderly shutdown: stop accepting work, let in-flight work finish,
 * unmount, close every handle.  The loop then runs out and main() returns. */
static void daemon_stop(struct daemon *d)
{
    if (d->stopping) {
        return;
    }
    d->stopping = true;
    goulette_logf(&d->log, GOULETTE_LOG_INFO, "main", "shutting down");
    if (d->member_started) {
        member_stop(&d->member);
        return;
    }
    close_signals(d);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct daemon *d = s->data;
    goulette_logf(&d->log, GOULETTE_LOG_INFO, "main", "received %s",
                  signum == SIGINT ? "SIGINT" : "SIGTERM");
    if (d->stopping) {
        /* A second signal: the operator does not want to wait. */
        goulette_logf(&d->log, GOULETTE_LOG_WARN, "main",
                      "second signal: exiting without a clean shutdown");
        _exit(1);
    }
    daemon_stop(d);
}

static int daemon_start(struct daemon *d)
{
    int rv;

    rv = uv_loop_init(&d->loop);
    if (rv != 0) {
        return rv;
    }
    uv_signal_init(&d->loop, &d->sigint);
    uv_signal_init(&d->loop, &d->sigterm);
    d->sigint.data = d;
    d->sigterm.data = d;
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    rv = member_start(&d->member, &d->loop, &d->opts, &d->log,
                      on_member_stopped);
    if (rv != 0) {
        close_signals(d);
        uv_run(&d->loop, UV_RUN_DEFAULT);
        uv_loop_close(&d->loop);
        return rv;
    }
    d->member_started = true;
    goulette_logf(&d->log, GOULETTE_LOG_INFO, "main",
                  "goulettefs %s started: data %s, peer %s:%u, grpc %s:%u, "
                  "%u member(s)%s%s",
                  GOULETTEFS_VERSION, d->opts.data_dir,
                  d->opts.peer_listen.host, d->opts.peer_listen.port,
                  d->opts.grpc_listen.host, d->opts.grpc_listen.port,
                  d->opts.n_members, d->opts.mount != NULL ? ", mount " : "",
                  d->opts.mount != NULL ? d->opts.mount : "");
    return 0;
}

int main(int argc, char **argv)
{
    struct daemon d;
    char err[512];
    int rv;

    memset(&d, 0, sizeof d);
    d.lock_fd = -1;
    switch (options_parse(&d.opts, argc, argv, err, sizeof err)) {
    case OPTIONS_RUN:
        break;
    case OPTIONS_HELP:
        fputs(options_usage(), stdout);
        options_fini(&d.opts);
        return 0;
    case OPTIONS_VERSION:
        printf("goulettefs %s\n", GOULETTEFS_VERSION);
        options_fini(&d.opts);
        return 0;
    case OPTIONS_USAGE:
        fprintf(stderr, "goulettefs: %s\n%s", err, options_usage());
        options_fini(&d.opts);
        return 2;
    }

    d.log.level = d.opts.log_level;
    d.log.emit = log_emit;
    d.log.data = &d;
    signal(SIGPIPE, SIG_IGN);

    rv = check_mountpoint(&d);
    if (rv == 0) {
        rv = data_dir_lock(&d);
    }
    if (rv == 0) {
        rv = check_mountpoint(&d);
    }
    if (rv == 0) {
        rv = daemon_start(&d);
    }
    if (rv != 0) {
        goulette_logf(&d.log, GOULETTE_LOG_ERROR, "main", "cannot start: %s",
                      goulette_strerror(rv));
        d.exit_status = 1;
        goto out;
    }

    uv_run(&d.loop, UV_RUN_DEFAULT);
    rv = uv_loop_close(&d.loop);
    if (rv != 0) {
        goulette_logf(&d.log, GOULETTE_LOG_ERROR, "main",
                      "handles left open at exit: %s", uv_strerror(rv));
        d.exit_status = 1;
    }
    goulette_logf(&d.log, GOULETTE_LOG_INFO, "main", "stopped");

out:
    if (d.lock_fd >= 0) {
        close(d.lock_fd);
    }
    options_fini(&d.opts);
    return d.exit_status;
}
