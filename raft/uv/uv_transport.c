/* The peer transport on libuv (raft_uv.h, "Peer transport"): lifecycle,
 * the member set, outgoing connections with backoff, bounded send queues
 * and write batching.  Accepted connections live in uv_incoming.c, the
 * wire format in uv_frame.c and uv_codec.c.  It makes no protocol decision.
 *
 * An outgoing connection per peer, dialled on demand:
 *
 *            send                 connected,            ACK(0)
 *   IDLE ----------> DIALING ---- HANDSHAKE sent ----> CONNECTED
 *    ^                  |                                  |
 *    | queue empty      | connect error, timeout,          | write/read
 *    |                  | ACK(refused), EOF                | error, EOF
 *  BACKOFF <------- CLOSING <-------------------------------+
 *    | queue not empty      (queue purged, unreachable_cb)
 *    +--> DIALING
 *
 *   transition                        function
 *   IDLE/BACKOFF -> DIALING           peer_dial
 *   DIALING -> CONNECTED              on_outgoing_read (ACK 0)
 *   any -> CLOSING                    peer_conn_failed, peer_reset
 *   CLOSING -> BACKOFF                peer_conn_closed
 *   BACKOFF -> DIALING or IDLE        on_backoff
 *
 * Invariants: peer->n_queued <= max_queue_messages and peer->queued_bytes
 * <= max_queue_bytes at all times (they count queued and in-flight
 * frames); at most one uv_write is in flight per connection, so libuv's own
 * write queue holds at most one batch (backpressure: the rest waits in our
 * bounded queue, and the loop never blocks on a slow peer). */
#include "uv_transport.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>

#include "uv_codec.h"

#define SUBSYS "raft.transport"

struct batch
{
    uv_write_t req;
    struct raft_uv__conn *conn;
    struct raft_uv__out *frames; /* owned */
    unsigned n_counted;          /* messages among frames */
    uint64_t counted_bytes;      /* their bytes */
    unsigned nbufs;
    uv_buf_t bufs[];
};

static void transport_maybe_finish(struct raft_uv__transport *tr);
static void peer_flush(struct raft_uv__peer *p);
static void peer_dial(struct raft_uv__peer *p);

/* ------------------------------------------------------------------------
 * Helpers: PRNG, addresses, logging
 * ------------------------------------------------------------------------ */

static uint64_t prng_next(struct raft_uv__transport *tr)
{
    /* xorshift64*: instance state seeded from the config, no rand(). */
    uint64_t x = tr->prng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    tr->prng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Parse "a.b.c.d:port", "[v6]:port" or "localhost:port". */
static int address_parse(const char *address,
                         struct sockaddr_storage *out,
                         bool allow_port_zero)
{
    char host[RAFT_ADDRESS_MAX];
    const char *colon;
    char *end;
    unsigned long port;
    size_t hlen;
    int rv;

    if (address == NULL) {
        return -EINVAL;
    }
    colon = strrchr(address, ':');
    if (colon == NULL || colon == address || colon[1] == '\0') {
        return -EINVAL;
    }
    hlen = (size_t)(colon - address);
    if (hlen >= sizeof host) {
        return -EINVAL;
    }
    memcpy(host, address, hlen);
    host[hlen] = '\0';
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || errno != 0 || port > 65535 ||
        (port == 0 && !allow_port_zero) || colon[1] == '-' ||
        colon[1] == '+') {
        return -EINVAL;
    }
    memset(out, 0, sizeof *out);
    if (host[0] == '[' && hlen >= 2 && host[hlen - 1] == ']') {
        host[hlen - 1] = '\0';
        rv = uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)out);
    } else if (strcmp(host, "localhost") == 0) {
        rv = uv_ip4_addr("127.0.0.1", (int)port, (struct sockaddr_in *)out);
    } else {
        rv = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out);
    }
    return rv == 0 ? 0 : -EINVAL;
}

void raft_uv__sockaddr_name(const struct sockaddr *sa, char *buf, size_t n)
{
    char ip[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(s6, ip, sizeof ip);
        snprintf(buf, n, "[%s]:%u", ip, (unsigned)ntohs(s6->sin6_port));
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        uv_ip4_name(s4, ip, sizeof ip);
        snprintf(buf, n, "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
    } else {
        snprintf(buf, n, "?");
    }
}

void raft_uv__log_refusal(struct raft_uv__transport *tr,
                          const struct raft_uv__conn *c,
                          const char *fmt,
                          ...)
{
    struct raft_uv__ratelimit *rl = &tr->ratelimit;
    uint64_t now = uv_now(tr->loop);
    char msg[512];
    va_list ap;

    if (now - rl->window_start >= tr->config.log_interval_ms) {
        if (rl->suppressed > 0) {
            goulette_logf(tr->config.log, GOULETTE_LOG_WARN, SUBSYS,
                          "%" PRIu64 " more refused connections not logged",
                          rl->suppressed);
        }
        rl->window_start = now;
        rl->count = 0;
        rl->suppressed = 0;
    }
    if (rl->count >= tr->config.log_burst) {
        rl->suppressed++;
        return;
    }
    rl->count++;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    goulette_logf(tr->config.log, GOULETTE_LOG_WARN, SUBSYS,
                  "refused connection from %s: %s", c->remote, msg);
}

/* ------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------ */

static void on_conn_closed(uv_handle_t *h)
{
    struct raft_uv__conn *c = h->data;
    struct raft_uv__transport *tr = c->tr;
    struct raft_uv__peer *p = c->peer;

    tr->n_handles--;
    if (--c->open_handles > 0) {
        return;
    }
    raft_uv__frame_decoder_fini(&c->decoder);
    if (c->outgoing) {
        if (p != NULL) {
            p->conn = NULL;
            if (p->removed) {
                if (p->timer_closed) {
                    free(p);
                }
            } else if (!tr->closing) {
                /* CLOSING -> BACKOFF. */
                uint64_t delay = tr->config.backoff_min_ms;
                unsigned shift = p->attempt < 20 ? p->attempt : 20;
                delay <<= shift;
                if (delay > tr->config.backoff_max_ms) {
                    delay = tr->config.backoff_max_ms;
                }
                /* Equal jitter: half fixed, half random, so that members
                 * restarted together do not redial in lockstep. */
                delay = delay / 2 + prng_next(tr) % (delay / 2 + 1);
                p->attempt++;
                p->state = RAFT_UV__PEER_BACKOFF;
                uv_timer_start(&p->timer, (uv_timer_cb)NULL, 0, 0);
                uv_timer_stop(&p->timer);
                p->state = RAFT_UV__PEER_BACKOFF;
                p->backoff_delay = delay;
                raft_uv__peer_backoff_start(p);
            }
        }
    } else {
        if (c->prev != NULL) {
            c->prev->next = c->next;
        } else {
            tr->incoming = c->next;
        }
        if (c->next != NULL) {
            c->next->prev = c->prev;
        }
        tr->n_incoming--;
    }
    free(c);
    transport_maybe_finish(tr);
}
