/* raft-uv-peer: one peer transport in its own process, for the transport
 * integration test (test_transport.py).  It sends a HEARTBEAT to every peer
 * each --interval ms (context = boot << 32 | sequence) and prints one line
 * per event on stdout:
 *
 *     ready <bound address>
 *     recv <from> <boot> <sequence>
 *     unreachable <id>
 *     closed <uv_loop_close result>
 *
 * SIGTERM closes everything; the exit status is 0 only if uv_loop_close()
 * returned 0.  Logs go to stderr. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>
#include <goulette/raft_uv.h>

#define PEERS_MAX 8

struct peer_proc
{
    uv_loop_t loop;
    struct raft_uv_transport transport;
    uv_timer_t tick;
    uv_signal_t sigterm;
    raft_id id;
    uint64_t boot;
    uint64_t seq;
    struct raft_uv_peer peers[PEERS_MAX];
    unsigned n_peers;
};

static void log_emit(void *data,
                     enum goulette_log_level level,
                     const char *subsys,
                     const char *msg)
{
    (void)data;
    fprintf(stderr, "[%s] %s: %s\n", goulette_log_level_name(level), subsys,
            msg);
}

static void on_recv(struct raft_uv_transport *t, struct raft_message *m)
{
    printf("recv %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", m->from,
           m->context >> 32, m->context & 0xFFFFFFFFu);
    fflush(stdout);
    raft_uv_message_free(m);
    (void)t;
}

static void on_unreachable(struct raft_uv_transport *t, raft_id id)
{
    (void)t;
    printf("unreachable %" PRIu64 "\n", id);
    fflush(stdout);
}

static void on_tick(uv_timer_t *timer)
{
    struct peer_proc *p = timer->data;
    struct raft_message m;
    unsigned i;

    p->seq++;
    for (i = 0; i < p->n_peers; i++) {
        if (p->peers[i].id == p->id) {
            continue;
        }
        memset(&m, 0, sizeof m);
        m.type = RAFT_MSG_HEARTBEAT;
        m.from = p->id;
        m.to = p->peers[i].id;
        m.term = 1;
        m.context = p->boot << 32 | (p->seq & 0xFFFFFFFFu);
        raft_uv_transport_send(&p->transport, m.to, &m);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_transport_closed(struct raft_uv_transport *t)
{
    (void)t;
}

static void on_sigterm(uv_signal_t *s, int signum)
{
    struct peer_proc *p = s->data;

    (void)signum;
    uv_close((uv_handle_t *)&p->tick, on_handle_closed);
    uv_close((uv_handle_t *)&p->sigterm, on_handle_closed);
    raft_uv_transport_close(&p->transport, on_transport_closed);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: raft-uv-peer --id N --cluster N --listen ADDR "
            "[--peer ID=ADDR]... [--boot N] [--interval MS]\n");
    return 2;
}

int main(int argc, char **argv)
{
    static struct peer_proc p;
    struct raft_uv_transport_config cfg;
    struct goulette_log log = {GOULETTE_LOG_INFO, log_emit, NULL};
    const char *listen = NULL;
    char bound[RAFT_ADDRESS_MAX];
    unsigned interval = 20;
    uint64_t cluster = 0;
    int i, rv;

    for (i = 1; i + 1 < argc; i += 2) {
        const char *v = argv[i + 1];
        if (strcmp(argv[i], "--id") == 0) {
            p.id = strtoull(v, NULL, 0);
        } else if (strcmp(argv[i], "--cluster") == 0) {
            cluster = strtoull(v, NULL, 0);
        } else if (strcmp(argv[i], "--listen") == 0) {
            listen = v;
        } else if (strcmp(argv[i], "--boot") == 0) {
            p.boot = strtoull(v, NULL, 0);
        } else if (strcmp(argv[i], "--interval") == 0) {
            interval = (unsigned)strtoul(v, NULL, 0);
        } else if (strcmp(argv[i], "--peer") == 0 && p.n_peers < PEERS_MAX) {
            const char *eq = strchr(v, '=');
            if (eq == NULL) {
                return usage();
            }
            p.peers[p.n_peers].id = strtoull(v, NULL, 0);
            snprintf(p.peers[p.n_peers].address, RAFT_ADDRESS_MAX, "%s",
                     eq + 1);
            p.n_peers++;
        } else {
            return usage();
        }
    }
    if (i != argc || p.id == 0 || listen == NULL) {
        return usage();
    }

    uv_loop_init(&p.loop);
    raft_uv_transport_config_defaults(&cfg);
    cfg.cluster_id = cluster;
    cfg.id = p.id;
    cfg.seed = p.id * 7919 + p.boot;
    cfg.backoff_min_ms = 20;
    cfg.backoff_max_ms = 500;
    cfg.log = &log;
    cfg.unreachable_cb = on_unreachable;
    rv = raft_uv_transport_init(&p.transport, &p.loop, &cfg);
    if (rv == 0) {
        rv = raft_uv_transport_start(&p.transport, listen, on_recv);
    }
    if (rv == 0) {
        rv = raft_uv_transport_set_peers(&p.transport, p.peers, p.n_peers);
    }
    if (rv != 0) {
        fprintf(stderr, "raft-uv-peer: %s\n", goulette_strerror(rv));
        return 1;
    }
    raft_uv_transport_address(&p.transport, bound, sizeof bound);
    printf("ready %s\n", bound);
    fflush(stdout);

    uv_timer_init(&p.loop, &p.tick);
    p.tick.data = &p;
    uv_timer_start(&p.tick, on_tick, interval, interval);
    uv_signal_init(&p.loop, &p.sigterm);
    p.sigterm.data = &p;
    uv_signal_start(&p.sigterm, on_sigterm, SIGTERM);

    uv_run(&p.loop, UV_RUN_DEFAULT);
    rv = uv_loop_close(&p.loop);
    printf("closed %d\n", rv);
    fflush(stdout);
    return rv == 0 ? 0 : 1;
}
