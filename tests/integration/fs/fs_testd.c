/* fs_testd: the FUSE front end over the in-memory test backend, for the
 * integration tests.  Mounts, serves until SIGTERM/SIGINT, then unmounts
 * cleanly and exits 0.  A control socket injects "remote" changes (as if
 * from gRPC or another member) and reports statistics:
 *
 *   write <path> <value>    a remote write of <value> + '\n'
 *   create <path>           a remote create (default value)
 *   remove <path>           a remote removal
 *   burst <n> <prefix>      n remote topic creates <prefix>0.. in one commit
 *   status                  a status change inside the node (cluster/status)
 *   delay <ms>              commit delay of later mutations
 *   stats                   "ok submitted=N applied=N rejected=N"
 *
 * Each command gets one reply line, "ok ..." or "err <errno> <message>",
 * after its mutations applied. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "goulette/err.h"
#include "goulette/fs.h"

#include "testbe.h"

struct testd
{
    uv_loop_t loop;
    struct testbe be;
    struct fs fs;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_pipe_t server;
    bool have_server;
    bool stopping;
    struct goulette_log log;
};

struct conn
{
    uv_pipe_t pipe;
    struct testd *d;
    char line[65536];
    size_t len;
    unsigned inflight; /* remote mutations awaiting apply */
    bool closing;
    bool closed; /* the pipe's close callback ran */
};

/* One remote mutation (or a burst of them) answered with one line. */
struct remote
{
    struct fs_mutation m;
    struct conn *c;
    struct remote *group; /* burst: the one that replies */
    unsigned pending;     /* burst leader: members not yet applied */
    int status;           /* burst leader: first error */
    char *path;
    char *value;
};

static void log_emit(void *data,
                     enum goulette_log_level level,
                     const char *subsys,
                     const char *msg)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fprintf(stderr, "%lld.%03ld %s %s: %s\n", (long long)ts.tv_sec,
            ts.tv_nsec / 1000000, goulette_log_level_name(level), subsys, msg);
}

/* A connection is freed once its pipe is closed and no remote mutation
 * still refers to it. */
static void conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    c->closed = true;
    if (c->inflight == 0) {
        free(c);
    }
}

static void conn_close(struct conn *c)
{
    if (!c->closing) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->pipe, conn_closed);
    }
}

static void reply_written(uv_write_t *w, int status)
{
    free(w->data);
    free(w);
}

static void reply(struct conn *c, const char *fmt, ...)
{
    uv_write_t *w;
    uv_buf_t b;
    char *s;
    va_list ap;
    int n;
    if (c->closing) {
        return;
    }
    s = malloc(512);
    w = malloc(sizeof *w);
    if (s == NULL || w == NULL) {
        free(s);
        free(w);
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(s, 510, fmt, ap);
    va_end(ap);
    if (n < 0 || n > 509) {
        n = 509;
    }
    s[n++] = '\n';
    w->data = s;
    b = uv_buf_init(s, (unsigned)n);
    if (uv_write(w, (uv_stream_t *)&c->pipe, &b, 1, reply_written) != 0) {
        free(s);
        free(w);
    }
}

static void reply_status(struct conn *c, int status)
{
    if (status == 0) {
        reply(c, "ok");
    } else {
        reply(c, "err %d %s", -goulette_errno(status),
              goulette_strerror(status));
    }
}

static void remote_free(struct remote *r)
{
    free(r->path);
    free(r->value);
    free(r);
}

static void conn_unref(struct conn *c)
{
    c->inflight--;
    if (c->closed && c->inflight == 0) {
        free(c);
    }
}

static void remote_done(struct fs_mutation *m, int status)
{
    struct remote *r = (struct remote *)m;
    struct remote *lead = r->group != NULL ? r->group : r;
    struct conn *c = r->c;
    if (status != 0 && lead->status == 0) {
        lead->status = status;
    }
    if (r != lead) {
        remote_free(r);
    }
    if (--lead->pending == 0) {
        reply_status(c, lead->status);
        remote_free(lead);
        conn_unref(c);
    }
}

static struct remote *remote_new(struct conn *c,
                                 enum fs_mutation_kind kind,
                                 const char *path,
                                 const char *value)
{
    struct remote *r = calloc(1, sizeof *r);
    if (r == NULL) {
        return NULL;
    }
    r->c = c;
    r->path = strdup(path);
    if (value != NULL) {
        size_t l = strlen(value);
        r->value = malloc(l + 2);
        if (r->value != NULL) {
            memcpy(r->value, value, l);
            r->value[l] = '\n';
            r->value[l + 1] = '\0';
            r->m.value.base = r->value;
            r->m.value.len = l + 1;
        }
    }
    r->m.kind = kind;
    r->m.path = r->path;
    r->m.cb = remote_done;
    return r;
}

static void do_burst(struct conn *c, long n, const char *prefix)
{
    struct remote *lead = NULL;
    char path[256];
    long i;
    int rv;
    for (i = 0; i < n; i++) {
        struct remote *r;
        snprintf(path, sizeof path, "topics/%s%ld", prefix, i);
        r = remote_new(c, FS_MUTATION_CREATE, path, NULL);
        if (r == NULL) {
            break;
        }
        if (lead == NULL) {
            lead = r;
            c->inflight++;
        }
        r->group = r == lead ? NULL : lead;
        lead->pending++;
        rv = testbe_submit_remote(&c->d->be, &r->m);
        if (rv != 0) {
            lead->pending--;
            if (lead->status == 0) {
                lead->status = rv;
            }
            if (r != lead) {
                remote_free(r);
            }
        }
    }
    if (lead == NULL) {
        reply(c, "err %d burst", ENOMEM);
    } else if (lead->pending == 0) {
        reply_status(c, lead->status);
        remote_free(lead);
        conn_unref(c);
    }
}

static void command(struct conn *c, char *line)
{
    struct testd *d = c->d;
    char *verb = strtok(line, " ");
    char *path = strtok(NULL, " ");
    char *rest = path != NULL ? strtok(NULL, "") : NULL;
    struct remote *r;
    enum fs_mutation_kind kind;
    int rv;
    if (verb == NULL) {
        return;
    }
    if (strcmp(verb, "stats") == 0) {
        reply(c, "ok submitted=%lu applied=%lu rejected=%lu", d->be.submitted,
              d->be.applied, d->be.rejected);
        return;
    }
    if (strcmp(verb, "status") == 0) {
        testbe_status_change(&d->be);
        reply(c, "ok");
        return;
    }
    if (strcmp(verb, "delay") == 0 && path != NULL) {
        d->be.commit_delay_ms = (unsigned)strtoul(path, NULL, 10);
        reply(c, "ok");
        return;
    }
    if (strcmp(verb, "burst") == 0 && path != NULL) {
        do_burst(c, strtol(path, NULL, 10), rest != NULL ? rest : "burst-");
        return;
    }
    if (strcmp(verb, "write") == 0 && path != NULL && rest != NULL) {
        kind = FS_MUTATION_WRITE;
    } else if (strcmp(verb, "create") == 0 && path != NULL) {
        kind = FS_MUTATION_CREATE;
    } else if (strcmp(verb, "remove") == 0 && path != NULL) {
        kind = FS_MUTATION_REMOVE;
    } else {
        reply(c, "err %d unknown command", EINVAL);
        return;
    }
    r = remote_new(c, kind, path, kind == FS_MUTATION_WRITE ? rest : NULL);
    if (r == NULL) {
        reply(c, "err %d no memory", ENOMEM);
        return;
    }
    r->pending = 1;
    rv = testbe_submit_remote(&d->be, &r->m);
    if (rv != 0) {
        reply_status(c, rv);
        remote_free(r);
        return;
    }
    c->inflight++;
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct conn *c = h->data;
    buf->base = c->line + c->len;
    buf->len = sizeof c->line - c->len - 1;
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    char *nl;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)nread;
    c->line[c->len] = '\0';
    while ((nl = strchr(c->line, '\n')) != NULL) {
        size_t used = (size_t)(nl - c->line) + 1;
        *nl = '\0';
        command(c, c->line);
        memmove(c->line, c->line + used, c->len - used + 1);
        c->len -= used;
    }
    if (c->len >= sizeof c->line - 1) {
        conn_close(c);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    struct testd *d = server->data;
    struct conn *c;
    if (status != 0) {
        return;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        return;
    }
    c->d = d;
    uv_pipe_init(&d->loop, &c->pipe, 0);
    c->pipe.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        conn_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->pipe, conn_alloc, conn_read);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    struct testd *d = arg;
    if (uv_is_closing(h)) {
        return;
    }
    if (h->type == UV_NAMED_PIPE && h != (uv_handle_t *)&d->server) {
        conn_close(h->data);
    }
}

static void fs_closed(struct fs *fs)
{
    struct testd *d = fs->data;
    uv_walk(&d->loop, close_walk, d);
    testbe_close(&d->be);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
}

static void stop(struct testd *d)
{
    if (d->stopping) {
        return;
    }
    d->stopping = true;
    if (d->have_server) {
        uv_close((uv_handle_t *)&d->server, NULL);
        d->have_server = false;
    }
    if (fs_close(&d->fs, fs_closed) != 0) {
        fs_closed(&d->fs);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct testd *d = h->data;
    goulette_logf(&d->log, GOULETTE_LOG_INFO, "testd", "signal %d: stopping",
                  signum);
    stop(d);
}

static void on_unmounted(struct fs *fs)
{
    stop(fs->data);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: fs_testd --mount DIR --control SOCKET [--allow-other]"
            " [--delay MS] [--debug]\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"mount", required_argument, NULL, 'm'},
        {"control", required_argument, NULL, 'c'},
        {"allow-other", no_argument, NULL, 'a'},
        {"delay", required_argument, NULL, 'd'},
        {"debug", no_argument, NULL, 'D'},
        {NULL, 0, NULL, 0},
    };
    struct testd *d = calloc(1, sizeof *d);
    struct fs_config cfg;
    const char *mount = NULL;
    const char *control = NULL;
    bool allow_other = false;
    unsigned delay = 0;
    int opt;
    int rv;
    if (d == NULL) {
        return 1;
    }
    d->log.level = GOULETTE_LOG_INFO;
    d->log.emit = log_emit;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'm':
            mount = optarg;
            break;
        case 'c':
            control = optarg;
            break;
        case 'a':
            allow_other = true;
            break;
        case 'd':
            delay = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'D':
            d->log.level = GOULETTE_LOG_DEBUG;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (mount == NULL || control == NULL) {
        usage();
        return 2;
    }
    uv_loop_init(&d->loop);
    if (testbe_init(&d->be, &d->loop, &d->log) != 0) {
        return 1;
    }
    d->be.commit_delay_ms = delay;
    memset(&cfg, 0, sizeof cfg);
    cfg.mountpoint = mount;
    cfg.allow_other = allow_other;
    cfg.log = &d->log;
    cfg.unmounted = on_unmounted;
    testbe_backend(&d->be, &cfg.backend);
    d->fs.data = d;
    rv = fs_init(&d->fs, &d->loop, &cfg);
    if (rv != 0) {
        fprintf(stderr, "fs_testd: mount %s: %s\n", mount,
                goulette_strerror(rv));
        return 1;
    }
    d->be.fs = &d->fs;
    uv_signal_init(&d->loop, &d->sigterm);
    uv_signal_init(&d->loop, &d->sigint);
    d->sigterm.data = d->sigint.data = d;
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    uv_pipe_init(&d->loop, &d->server, 0);
    d->server.data = d;
    unlink(control);
    if (uv_pipe_bind(&d->server, control) != 0 ||
        uv_listen((uv_stream_t *)&d->server, 16, on_connection) != 0) {
        fprintf(stderr, "fs_testd: control socket %s failed\n", control);
        uv_close((uv_handle_t *)&d->server, NULL);
        stop(d);
    } else {
        d->have_server = true;
        goulette_logf(&d->log, GOULETTE_LOG_INFO, "testd", "ready");
    }
    uv_run(&d->loop, UV_RUN_DEFAULT);
    rv = uv_loop_close(&d->loop);
    if (rv != 0) {
        fprintf(stderr, "fs_testd: loop not empty at exit\n");
        return 1;
    }
    free(d);
    return 0;
}
