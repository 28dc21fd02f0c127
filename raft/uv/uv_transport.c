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
    unsigned n_app;              /* application frames among them */
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
        (port == 0 && !allow_port_zero) || colon[1] < '0' || colon[1] > '9') {
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
    if (c->from != 0) {
        goulette_logf(tr->config.log, GOULETTE_LOG_WARN, SUBSYS,
                      "closed connection from member %" PRIu64 " at %s: %s",
                      c->from, c->remote, msg);
    } else {
        goulette_logf(tr->config.log, GOULETTE_LOG_WARN, SUBSYS,
                      "refused connection from %s: %s", c->remote, msg);
    }
}

const char *raft_uv__strerror(int rv)
{
    /* libuv's codes are negative errnos, plus UV_EOF (-4095) just above
     * the project range; goulette_strerror does not know the latter. */
    if (rv == UV_EOF) {
        return uv_strerror(rv);
    }
    return goulette_strerror(rv);
}

/* ------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------ */

static void peer_conn_closed(struct raft_uv__peer *p);

static void on_conn_closed(uv_handle_t *h)
{
    struct raft_uv__conn *c = h->data;
    struct raft_uv__transport *tr = c->tr;

    tr->n_handles--;
    if (--c->open_handles > 0) {
        return;
    }
    raft_uv__frame_decoder_fini(&c->decoder);
    if (c->outgoing) {
        if (c->peer != NULL) {
            peer_conn_closed(c->peer);
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

struct raft_uv__conn *raft_uv__conn_new(struct raft_uv__transport *tr,
                                        bool outgoing)
{
    struct raft_uv__conn *c = calloc(1, sizeof *c);

    if (c == NULL) {
        return NULL;
    }
    c->tr = tr;
    c->outgoing = outgoing;
    /* Both inits only fill in structs: they do not fail on a valid loop. */
    uv_tcp_init(tr->loop, &c->tcp);
    uv_timer_init(tr->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    tr->n_handles += 2;
    raft_uv__frame_decoder_init(
        &c->decoder, outgoing ? RAFT_UV_ACK_SIZE : RAFT_UV_HANDSHAKE_MAX);
    snprintf(c->remote, sizeof c->remote, "?");
    if (!outgoing) {
        c->next = tr->incoming;
        if (tr->incoming != NULL) {
            tr->incoming->prev = c;
        }
        tr->incoming = c;
        tr->n_incoming++;
    }
    return c;
}

void raft_uv__conn_close(struct raft_uv__conn *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

void raft_uv__conn_read_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct raft_uv__conn *c = h->data;

    (void)hint;
    buf->base = c->tr->read_buf;
    buf->len = sizeof c->tr->read_buf;
}

static void free_frames(struct raft_uv__out *o)
{
    while (o != NULL) {
        struct raft_uv__out *next = o->next;
        free(o->buf);
        free(o);
        o = next;
    }
}

static void peer_conn_failed(struct raft_uv__conn *c, int rv, const char *what);

static void on_write(uv_write_t *req, int status)
{
    struct batch *b = req->data;
    struct raft_uv__conn *c = b->conn;
    struct raft_uv__peer *p = c->peer;
    struct raft_uv__transport *tr = c->tr;

    c->writing = false;
    if (c->outgoing && p != NULL) {
        p->n_queued -= b->n_counted;
        p->queued_bytes -= b->counted_bytes;
        if (status == 0) {
            p->stats.sent += b->n_counted;
            tr->stats.sent += b->n_counted;
            p->stats.app_sent += b->n_app;
            tr->stats.app_sent += b->n_app;
        } else {
            p->stats.dropped += b->n_counted;
            tr->stats.dropped += b->n_counted;
        }
    }
    free_frames(b->frames);
    free(b);
    if (c->write_timer_armed && !c->closing) {
        uv_timer_stop(&c->timer); /* the write timeout of this batch */
    }
    c->write_timer_armed = false;
    if (!c->outgoing) {
        raft_uv__incoming_on_write(c, status);
        return;
    }
    if (status < 0) {
        peer_conn_failed(c, status, "write");
        return;
    }
    if (p != NULL && !c->closing) {
        peer_flush(p);
    }
}

/* Write the chain @frames (taken on success) in one uv_write. */
static int conn_write(struct raft_uv__conn *c, struct raft_uv__out *frames)
{
    struct raft_uv__out *o;
    struct batch *b;
    unsigned n = 0;
    int rv;

    assert(!c->writing && !c->closing);
    for (o = frames; o != NULL; o = o->next) {
        n++;
    }
    b = malloc(sizeof *b + n * sizeof b->bufs[0]);
    if (b == NULL) {
        return -ENOMEM;
    }
    b->conn = c;
    b->frames = frames;
    b->n_counted = 0;
    b->n_app = 0;
    b->counted_bytes = 0;
    b->nbufs = n;
    n = 0;
    for (o = frames; o != NULL; o = o->next) {
        b->bufs[n++] = uv_buf_init((char *)o->buf, (unsigned)o->len);
        if (o->counted) {
            b->n_counted++;
            b->counted_bytes += o->len;
            b->n_app += o->app;
        }
    }
    b->req.data = b;
    rv = uv_write(&b->req, (uv_stream_t *)&c->tcp, b->bufs, b->nbufs, on_write);
    if (rv != 0) {
        free(b);
        return rv;
    }
    c->writing = true;
    return 0;
}

int raft_uv__conn_write_frame(struct raft_uv__conn *c,
                              enum raft_uv_frame_kind kind,
                              const void *payload,
                              size_t len)
{
    struct raft_uv__out *o;
    int rv;

    if (c->writing || c->closing) {
        return -EBUSY;
    }
    o = calloc(1, sizeof *o);
    if (o == NULL) {
        return -ENOMEM;
    }
    o->buf = malloc(RAFT_UV_FRAME_HEADER + len);
    if (o->buf == NULL) {
        free(o);
        return -ENOMEM;
    }
    raft_uv__frame_header(o->buf, kind, (uint32_t)len);
    memcpy(o->buf + RAFT_UV_FRAME_HEADER, payload, len);
    o->len = RAFT_UV_FRAME_HEADER + len;
    rv = conn_write(c, o);
    if (rv != 0) {
        free_frames(o);
    }
    return rv;
}

/* ------------------------------------------------------------------------
 * Peers: queue, dial, backoff
 * ------------------------------------------------------------------------ */

struct raft_uv__peer *raft_uv__peer_find(struct raft_uv__transport *tr,
                                         raft_id id)
{
    struct raft_uv__peer *p;

    for (p = tr->peers; p != NULL; p = p->next) {
        if (p->id == id) {
            return p;
        }
    }
    return NULL;
}

/* Drop every queued (not in-flight) message of @p. */
static void peer_purge(struct raft_uv__peer *p)
{
    struct raft_uv__out *o;
    unsigned n = 0;

    for (o = p->head; o != NULL; o = o->next) {
        n++;
        p->queued_bytes -= o->len;
    }
    free_frames(p->head);
    p->head = p->tail = NULL;
    p->n_queued -= n;
    p->stats.dropped += n;
    p->tr->stats.dropped += n;
}

static void on_write_timeout(uv_timer_t *timer)
{
    struct raft_uv__conn *c = timer->data;

    peer_conn_failed(c, -ETIMEDOUT, "write");
}

/* Start the next batch on a connected peer, if idle. */
static void peer_flush(struct raft_uv__peer *p)
{
    struct raft_uv__conn *c = p->conn;
    struct raft_uv__out *first = p->head;
    struct raft_uv__out *last = first;
    unsigned n = 1;
    size_t bytes;
    int rv;

    if (p->state != RAFT_UV__PEER_CONNECTED || c == NULL || c->writing ||
        c->closing || first == NULL) {
        return;
    }
    bytes = first->len;
    while (last->next != NULL && n < RAFT_UV__BATCH_FRAMES &&
           bytes + last->next->len <= RAFT_UV__BATCH_BYTES) {
        last = last->next;
        bytes += last->len;
        n++;
    }
    p->head = last->next;
    if (p->head == NULL) {
        p->tail = NULL;
    }
    last->next = NULL;
    rv = conn_write(c, first);
    if (rv == 0 && p->tr->config.write_timeout_ms > 0) {
        uv_timer_start(&c->timer, on_write_timeout,
                       p->tr->config.write_timeout_ms, 0);
        c->write_timer_armed = true;
    }
    if (rv != 0) {
        /* Put the batch back so that peer_purge accounts for it. */
        last->next = p->head;
        p->head = first;
        if (p->tail == NULL) {
            p->tail = last;
        }
        peer_conn_failed(c, rv, "write");
    }
}

/* The outgoing connection of @p failed: close it, purge the queue, and
 * have the close callback report the peer unreachable.  Any -> CLOSING. */
static void peer_conn_failed(struct raft_uv__conn *c, int rv, const char *what)
{
    struct raft_uv__transport *tr = c->tr;
    struct raft_uv__peer *p = c->peer;
    bool was_connected;

    if (c->closing) {
        return;
    }
    raft_uv__conn_close(c);
    if (p == NULL || tr->closing) {
        return;
    }
    was_connected = p->state == RAFT_UV__PEER_CONNECTED;
    p->state = RAFT_UV__PEER_CLOSING;
    peer_purge(p);
    /* One warning per outage; repeated failed dials go to debug. */
    goulette_logf(tr->config.log,
                  p->quiet ? GOULETTE_LOG_DEBUG : GOULETTE_LOG_WARN, SUBSYS,
                  "peer %" PRIu64 " at %s: %s %s: %s", p->id, p->address,
                  was_connected ? "connection lost on" : "dial failed at", what,
                  raft_uv__strerror(rv));
    p->quiet = true;
    /* Reported from the close callback: this function also runs inside
     * raft_uv_transport_send, where calling back into the node (and so
     * into raft_step) would be reentrant. */
    p->failed = true;
}

static void on_backoff(uv_timer_t *timer)
{
    struct raft_uv__peer *p = timer->data;

    if (p->state != RAFT_UV__PEER_BACKOFF) {
        return;
    }
    if (p->head == NULL) {
        p->state = RAFT_UV__PEER_IDLE;
        return;
    }
    peer_dial(p);
}

/* The connection of @p is fully closed.  CLOSING -> BACKOFF. */
static void peer_conn_closed(struct raft_uv__peer *p)
{
    struct raft_uv__transport *tr = p->tr;
    uint64_t delay = tr->config.backoff_min_ms;
    unsigned shift = p->attempt < 16 ? p->attempt : 16;

    p->conn = NULL;
    if (p->removed) {
        if (p->timer_closed) {
            free(p);
        }
        return;
    }
    if (tr->closing) {
        return;
    }
    delay <<= shift;
    if (delay > tr->config.backoff_max_ms) {
        delay = tr->config.backoff_max_ms;
    }
    /* Equal jitter: half fixed, half drawn from the seeded PRNG, so that
     * members restarted together do not redial in lockstep. */
    delay = delay / 2 + prng_next(tr) % (delay / 2 + 1);
    p->attempt++;
    p->state = RAFT_UV__PEER_BACKOFF;
    uv_timer_start(&p->timer, on_backoff, delay, 0);
    if (p->failed) {
        p->failed = false;
        if (tr->config.unreachable_cb != NULL) {
            /* Last: the callback may remove @p or close the transport. */
            tr->config.unreachable_cb(tr->pub, p->id);
        }
    }
}

static void on_dial_timeout(uv_timer_t *timer)
{
    struct raft_uv__conn *c = timer->data;

    peer_conn_failed(c, -ETIMEDOUT, "handshake");
}

static void on_outgoing_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct raft_uv__conn *c = s->data;
    struct raft_uv__peer *p = c->peer;
    struct raft_uv__transport *tr = c->tr;
    struct raft_uv__frame f;
    const char *data = buf->base;
    size_t len;
    long n;
    int status = 0;
    int rv;

    if (nread == 0 || c->closing) {
        return;
    }
    if (nread < 0) {
        peer_conn_failed(c, (int)nread, "read");
        return;
    }
    len = (size_t)nread;
    while (len > 0 && !c->closing) {
        n = raft_uv__frame_decoder_feed(&c->decoder, data, len, &f);
        if (n < 0) {
            peer_conn_failed(c, (int)n, "answer");
            return;
        }
        data += n;
        len -= (size_t)n;
        if (f.kind == 0) {
            continue;
        }
        /* Exactly one ACK, and only while dialling: anything else from the
         * acceptor is a protocol violation. */
        rv = -EPROTO;
        if (f.kind == RAFT_UV_FRAME_ACK && p != NULL &&
            p->state == RAFT_UV__PEER_DIALING) {
            rv = raft_uv__ack_decode(f.payload.base, f.payload.len, &status);
        }
        free(f.payload.base);
        if (rv != 0) {
            peer_conn_failed(c, rv, "answer");
            return;
        }
        if (status != 0) {
            peer_conn_failed(c, status, "handshake (refused by peer)");
            return;
        }
        uv_timer_stop(&c->timer);
        if (p->quiet || p->stats.connects == 0) {
            goulette_logf(tr->config.log, GOULETTE_LOG_INFO, SUBSYS,
                          "peer %" PRIu64 " at %s: connected", p->id,
                          p->address);
        }
        p->state = RAFT_UV__PEER_CONNECTED;
        p->attempt = 0;
        p->quiet = false;
        p->stats.connects++;
        tr->stats.connects++;
        peer_flush(p);
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    struct raft_uv__conn *c = req->data;
    struct raft_uv__transport *tr = c->tr;
    struct raft_uv__peer *p = c->peer;
    struct raft_uv__handshake h;
    uint8_t payload[RAFT_UV_HANDSHAKE_MAX];
    long len;
    int rv;

    if (c->closing) {
        return;
    }
    if (status < 0) {
        peer_conn_failed(c, status, "connect");
        return;
    }
    if (p == NULL) {
        raft_uv__conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 10);
    memset(&h, 0, sizeof h);
    h.version = RAFT_UV_PROTOCOL_VERSION;
    h.cluster_id = tr->config.cluster_id;
    h.from = tr->config.id;
    h.to = p->id;
    raft_uv_transport_address(tr->pub, h.address, sizeof h.address);
    len = raft_uv__handshake_encode(&h, payload);
    rv = len < 0 ? (int)len : 0;
    if (rv == 0) {
        rv = uv_read_start((uv_stream_t *)&c->tcp, raft_uv__conn_read_alloc,
                           on_outgoing_read);
    }
    if (rv == 0) {
        rv = raft_uv__conn_write_frame(c, RAFT_UV_FRAME_HANDSHAKE, payload,
                                       (size_t)len);
    }
    if (rv != 0) {
        peer_conn_failed(c, rv, "handshake");
    }
}

/* IDLE/BACKOFF -> DIALING. */
static void peer_dial(struct raft_uv__peer *p)
{
    struct raft_uv__transport *tr = p->tr;
    struct raft_uv__conn *c;
    int rv;

    assert(p->conn == NULL);
    p->stats.dials++;
    tr->stats.dials++;
    goulette_logf(tr->config.log, GOULETTE_LOG_DEBUG, SUBSYS,
                  "peer %" PRIu64 " at %s: dialling (attempt %u)", p->id,
                  p->address, p->attempt + 1);
    c = raft_uv__conn_new(tr, true);
    if (c == NULL) {
        /* Retry later, like any failed dial. */
        peer_purge(p);
        p->state = RAFT_UV__PEER_IDLE;
        return;
    }
    c->peer = p;
    p->conn = c;
    p->state = RAFT_UV__PEER_DIALING;
    raft_uv__sockaddr_name((const struct sockaddr *)&p->addr, c->remote,
                           sizeof c->remote);
    c->connect_req.data = c;
    uv_timer_start(&c->timer, on_dial_timeout, tr->config.handshake_timeout_ms,
                   0);
    rv = uv_tcp_connect(&c->connect_req, &c->tcp,
                        (const struct sockaddr *)&p->addr, on_connect);
    if (rv != 0) {
        peer_conn_failed(c, rv, "connect");
    }
}

static void on_peer_timer_closed(uv_handle_t *h)
{
    struct raft_uv__peer *p = h->data;
    struct raft_uv__transport *tr = p->tr;

    tr->n_handles--;
    p->timer_closed = true;
    if (p->conn == NULL) {
        free(p);
    }
    transport_maybe_finish(tr);
}

/* Forget @p (already unlinked from tr->peers): drop its queue, close its
 * connection and timer; it frees itself once both are closed. */
static void peer_remove(struct raft_uv__peer *p)
{
    struct raft_uv__conn *c = p->conn;

    p->removed = true;
    peer_purge(p);
    if (c != NULL) {
        raft_uv__conn_close(c);
    }
    uv_close((uv_handle_t *)&p->timer, on_peer_timer_closed);
}

/* Close the connection of @p without reporting it (the address changed). */
static void peer_reset(struct raft_uv__peer *p)
{
    if (p->conn != NULL && !p->conn->closing) {
        raft_uv__conn_close(p->conn);
        p->state = RAFT_UV__PEER_CLOSING;
        peer_purge(p);
    }
    p->attempt = 0;
}

static struct raft_uv__peer *peer_new(struct raft_uv__transport *tr,
                                      const struct raft_uv_peer *src,
                                      const struct sockaddr_storage *addr)
{
    struct raft_uv__peer *p = calloc(1, sizeof *p);

    if (p == NULL) {
        return NULL;
    }
    p->tr = tr;
    p->id = src->id;
    memcpy(p->address, src->address, sizeof p->address);
    p->addr = *addr;
    return p;
}

/* ------------------------------------------------------------------------
 * Public API
 * ------------------------------------------------------------------------ */

void raft_uv_transport_config_defaults(struct raft_uv_transport_config *c)
{
    memset(c, 0, sizeof *c);
    c->max_queue_messages = 1024;
    c->max_queue_bytes = 64u << 20;
    c->max_frame_bytes = 64u << 20;
    c->handshake_timeout_ms = 5000;
    c->write_timeout_ms = 30000;
    c->backoff_min_ms = 100;
    c->backoff_max_ms = 5000;
    c->max_incoming = 64;
    c->log_burst = 10;
    c->log_interval_ms = 10000;
}

int raft_uv_transport_init(struct raft_uv_transport *t,
                           uv_loop_t *loop,
                           const struct raft_uv_transport_config *config)
{
    struct raft_uv__transport *tr;
    const struct raft_uv_transport_config *c = config;

    t->impl = NULL;
    if (c->id == 0 || c->max_queue_messages == 0 || c->max_queue_bytes == 0 ||
        c->max_frame_bytes < RAFT_UV_HANDSHAKE_MAX ||
        c->handshake_timeout_ms == 0 || c->backoff_min_ms == 0 ||
        c->backoff_min_ms > c->backoff_max_ms || c->max_incoming == 0 ||
        c->log_interval_ms == 0) {
        return -EINVAL;
    }
    tr = calloc(1, sizeof *tr);
    if (tr == NULL) {
        return -ENOMEM;
    }
    tr->pub = t;
    tr->loop = loop;
    tr->config = *config;
    tr->prng = config->seed != 0 ? config->seed : 0x9E3779B97F4A7C15ULL;
    uv_tcp_init(loop, &tr->listener);
    tr->listener.data = tr;
    tr->n_handles = 1;
    tr->ratelimit.window_start = uv_now(loop);
    t->impl = tr;
    return 0;
}

int raft_uv_transport_start(struct raft_uv_transport *t,
                            const char *address,
                            void (*recv_cb)(struct raft_uv_transport *t,
                                            struct raft_message *message))
{
    struct raft_uv__transport *tr = t->impl;
    struct sockaddr_storage addr;
    char bound[RAFT_UV__REMOTE_MAX];
    int rv;

    if (tr->started || tr->closing || recv_cb == NULL) {
        return -EINVAL;
    }
    rv = address_parse(address, &addr, true);
    if (rv != 0) {
        return rv;
    }
    rv = uv_tcp_bind(&tr->listener, (const struct sockaddr *)&addr, 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&tr->listener, 128,
                       raft_uv__incoming_on_connection);
    }
    if (rv != 0) {
        goulette_logf(tr->config.log, GOULETTE_LOG_ERROR, SUBSYS,
                      "listen on %s: %s", address, raft_uv__strerror(rv));
        return rv;
    }
    tr->recv_cb = recv_cb;
    tr->started = true;
    raft_uv_transport_address(t, bound, sizeof bound);
    goulette_logf(tr->config.log, GOULETTE_LOG_INFO, SUBSYS,
                  "member %" PRIu64 " of cluster %016" PRIx64
                  " listening on %s",
                  tr->config.id, tr->config.cluster_id, bound);
    return 0;
}

int raft_uv_transport_address(const struct raft_uv_transport *t,
                              char *buf,
                              size_t size)
{
    struct raft_uv__transport *tr = t->impl;
    struct sockaddr_storage addr;
    char name[RAFT_UV__REMOTE_MAX];
    int len = sizeof addr;

    if (!tr->started ||
        uv_tcp_getsockname(&tr->listener, (struct sockaddr *)&addr, &len) !=
            0) {
        if (size > 0) {
            buf[0] = '\0';
        }
        return -EINVAL;
    }
    raft_uv__sockaddr_name((const struct sockaddr *)&addr, name, sizeof name);
    if (strlen(name) >= size) {
        return -ENOBUFS;
    }
    memcpy(buf, name, strlen(name) + 1);
    return 0;
}

static bool peers_contain(const struct raft_uv_peer *peers,
                          unsigned n,
                          raft_id id)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        if (peers[i].id == id) {
            return true;
        }
    }
    return false;
}

/* Forget the members of tr->peers that are not in @peers, both
 * directions. */
static void peers_remove_departed(struct raft_uv__transport *tr,
                                  const struct raft_uv_peer *peers,
                                  unsigned n)
{
    struct raft_uv__peer **pp = &tr->peers;
    struct raft_uv__peer *p;

    while ((p = *pp) != NULL) {
        if (peers_contain(peers, n, p->id) && p->id != tr->config.id) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        goulette_logf(tr->config.log, GOULETTE_LOG_INFO, SUBSYS,
                      "peer %" PRIu64 " removed", p->id);
        raft_uv__incoming_drop_member(tr, p->id);
        peer_remove(p);
    }
}

/* Link the new members (@fresh[i], taken) and move the ones whose address
 * changed. */
static void peers_add_and_move(struct raft_uv__transport *tr,
                               const struct raft_uv_peer *peers,
                               unsigned n,
                               const struct sockaddr_storage *addrs,
                               struct raft_uv__peer **fresh)
{
    struct raft_uv__peer *p;
    unsigned i;

    for (i = 0; i < n; i++) {
        p = fresh[i];
        if (p != NULL) {
            uv_timer_init(tr->loop, &p->timer);
            p->timer.data = p;
            tr->n_handles++;
            p->next = tr->peers;
            tr->peers = p;
            goulette_logf(tr->config.log, GOULETTE_LOG_INFO, SUBSYS,
                          "peer %" PRIu64 " at %s added", p->id, p->address);
            continue;
        }
        p = raft_uv__peer_find(tr, peers[i].id);
        if (p != NULL && strcmp(p->address, peers[i].address) != 0) {
            goulette_logf(tr->config.log, GOULETTE_LOG_INFO, SUBSYS,
                          "peer %" PRIu64 " moved from %s to %s", p->id,
                          p->address, peers[i].address);
            memcpy(p->address, peers[i].address, sizeof p->address);
            p->addr = addrs[i];
            peer_reset(p);
        }
    }
}

int raft_uv_transport_set_peers(struct raft_uv_transport *t,
                                const struct raft_uv_peer *peers,
                                unsigned n)
{
    struct raft_uv__transport *tr = t->impl;
    struct sockaddr_storage *addrs = NULL;
    struct raft_uv__peer **fresh = NULL;
    unsigned i;
    int rv;

    if (tr->closing) {
        return GOULETTE_ESHUTDOWN;
    }
    addrs = calloc(n + 1, sizeof *addrs);
    fresh = calloc(n + 1, sizeof *fresh);
    if (addrs == NULL || fresh == NULL) {
        rv = -ENOMEM;
        goto err_alloc;
    }
    /* Validate everything and allocate every new peer before changing
     * anything, so that a failure leaves the previous set. */
    for (i = 0; i < n; i++) {
        if (peers[i].id == 0 || peers_contain(peers, i, peers[i].id) ||
            strnlen(peers[i].address, RAFT_ADDRESS_MAX) == RAFT_ADDRESS_MAX ||
            address_parse(peers[i].address, &addrs[i], false) != 0) {
            rv = -EINVAL;
            goto err_fresh;
        }
        if (peers[i].id == tr->config.id ||
            raft_uv__peer_find(tr, peers[i].id) != NULL) {
            continue;
        }
        fresh[i] = peer_new(tr, &peers[i], &addrs[i]);
        if (fresh[i] == NULL) {
            rv = -ENOMEM;
            goto err_fresh;
        }
    }

    peers_remove_departed(tr, peers, n);
    peers_add_and_move(tr, peers, n, addrs, fresh);
    free(fresh);
    free(addrs);
    return 0;

err_fresh:
    for (i = 0; i < n; i++) {
        free(fresh[i]);
    }
err_alloc:
    free(fresh);
    free(addrs);
    assert(rv == -EINVAL || rv == -ENOMEM);
    return rv;
}

/* Append the frame @buf (@len bytes, header included; taken on success)
 * to the queue of @p and start it moving: dial an idle peer, or flush.
 * The caller has checked the bounds.  Errors: -ENOMEM. */
static int peer_enqueue(struct raft_uv__peer *p,
                        uint8_t *buf,
                        size_t len,
                        bool app)
{
    struct raft_uv__out *o = calloc(1, sizeof *o);

    if (o == NULL) {
        return -ENOMEM;
    }
    o->buf = buf;
    o->len = len;
    o->counted = true;
    o->app = app;
    if (p->tail != NULL) {
        p->tail->next = o;
    } else {
        p->head = o;
    }
    p->tail = o;
    p->n_queued++;
    p->queued_bytes += o->len;
    if (p->state == RAFT_UV__PEER_IDLE) {
        peer_dial(p);
    } else {
        peer_flush(p);
    }
    return 0;
}

int raft_uv_transport_send(struct raft_uv_transport *t,
                           raft_id to,
                           const struct raft_message *message)
{
    struct raft_uv__transport *tr = t->impl;
    struct raft_uv__peer *p;
    struct goulette_buf enc = {NULL, 0};
    size_t payload;
    int rv;

    if (tr->closing) {
        return GOULETTE_ESHUTDOWN;
    }
    if (to == tr->config.id || message->to != to ||
        message->from != tr->config.id) {
        return -EINVAL;
    }
    p = raft_uv__peer_find(tr, to);
    if (p == NULL) {
        return GOULETTE_ENOTFOUND;
    }
    if (p->n_queued >= tr->config.max_queue_messages) {
        rv = -ENOBUFS;
        goto err_drop;
    }
    rv = raft_uv__codec_encode(message, RAFT_UV_FRAME_HEADER, &enc);
    if (rv != 0) {
        goto err;
    }
    payload = enc.len - RAFT_UV_FRAME_HEADER;
    if (payload > tr->config.max_frame_bytes) {
        rv = -EMSGSIZE;
        goto err_encoded;
    }
    if (p->queued_bytes + enc.len > tr->config.max_queue_bytes) {
        free(enc.base);
        rv = -ENOBUFS;
        goto err_drop;
    }
    raft_uv__frame_header(enc.base, RAFT_UV_FRAME_MESSAGE, (uint32_t)payload);
    rv = peer_enqueue(p, enc.base, enc.len, false);
    if (rv != 0) {
        goto err_encoded;
    }
    return 0;

err_drop:
    p->stats.dropped++;
    tr->stats.dropped++;
    goto err;
err_encoded:
    free(enc.base);
err:
    assert(rv == -EINVAL || rv == -ENOBUFS || rv == -EMSGSIZE || rv == -ENOMEM);
    return rv;
}

int raft_uv_transport_send_app(struct raft_uv_transport *t,
                               raft_id to,
                               const void *payload,
                               size_t len)
{
    struct raft_uv__transport *tr = t->impl;
    struct raft_uv__peer *p;
    uint8_t *buf = NULL;
    int rv;

    if (tr->closing) {
        return GOULETTE_ESHUTDOWN;
    }
    if (to == tr->config.id || len == 0 || payload == NULL) {
        return -EINVAL;
    }
    p = raft_uv__peer_find(tr, to);
    if (p == NULL) {
        return GOULETTE_ENOTFOUND;
    }
    if (len > tr->config.max_frame_bytes) {
        return -EMSGSIZE;
    }
    if (p->n_queued >= tr->config.max_queue_messages ||
        p->queued_bytes + RAFT_UV_FRAME_HEADER + len >
            tr->config.max_queue_bytes) {
        p->stats.dropped++;
        tr->stats.dropped++;
        return -ENOBUFS;
    }
    buf = malloc(RAFT_UV_FRAME_HEADER + len);
    if (buf == NULL) {
        return -ENOMEM;
    }
    raft_uv__frame_header(buf, RAFT_UV_FRAME_APP, (uint32_t)len);
    memcpy(buf + RAFT_UV_FRAME_HEADER, payload, len);
    rv = peer_enqueue(p, buf, RAFT_UV_FRAME_HEADER + len, true);
    if (rv != 0) {
        free(buf);
    }
    assert(rv == 0 || rv == -ENOMEM);
    return rv;
}

int raft_uv_transport_stats(const struct raft_uv_transport *t,
                            raft_id id,
                            struct raft_uv_transport_stats *out)
{
    struct raft_uv__transport *tr = t->impl;
    struct raft_uv__peer *p;

    if (id != 0) {
        p = raft_uv__peer_find(tr, id);
        if (p == NULL) {
            return GOULETTE_ENOTFOUND;
        }
        *out = p->stats;
        out->queued_messages = p->n_queued;
        out->queued_bytes = p->queued_bytes;
        return 0;
    }
    *out = tr->stats;
    out->queued_messages = 0;
    out->queued_bytes = 0;
    for (p = tr->peers; p != NULL; p = p->next) {
        out->queued_messages += p->n_queued;
        out->queued_bytes += p->queued_bytes;
    }
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct raft_uv__transport *tr = h->data;

    tr->n_handles--;
    transport_maybe_finish(tr);
}

static void transport_maybe_finish(struct raft_uv__transport *tr)
{
    struct raft_uv_transport *t = tr->pub;
    void (*cb)(struct raft_uv_transport * t) = tr->close_cb;

    if (!tr->closing || tr->n_handles > 0) {
        return;
    }
    free(tr);
    t->impl = NULL;
    if (cb != NULL) {
        cb(t);
    }
}

void raft_uv_transport_close(struct raft_uv_transport *t,
                             void (*cb)(struct raft_uv_transport *t))
{
    struct raft_uv__transport *tr = t->impl;
    struct raft_uv__peer *p;
    struct raft_uv__conn *c;

    assert(!tr->closing);
    tr->closing = true;
    tr->close_cb = cb;
    while ((p = tr->peers) != NULL) {
        tr->peers = p->next;
        peer_remove(p);
    }
    for (c = tr->incoming; c != NULL; c = c->next) {
        raft_uv__conn_close(c);
    }
    uv_close((uv_handle_t *)&tr->listener, on_listener_closed);
}

void raft_uv_message_free(struct raft_message *message)
{
    if (message == NULL) {
        return;
    }
    raft_uv__codec_fini(message);
    free(message);
}
