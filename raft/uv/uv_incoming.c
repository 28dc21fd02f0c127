/* Accepted peer connections (the receiving half of the transport, see
 * uv_transport.h): the handshake check, message decoding and delivery to
 * recv_cb.  It owns the refusal rules; it does not own outgoing
 * connections or queues (uv_transport.c).
 *
 *   accepted --HANDSHAKE ok / ACK(0)--> identified --MESSAGE--> recv_cb
 *                                           |--APP-----> app_cb
 *      |                                    |
 *      | bad handshake: ACK(error), close   | bad frame or message,
 *      | garbage, oversized, timeout: close | EOF: close
 *
 * A connection is refused when the handshake names another protocol
 * version (GOULETTE_EVERSION), another cluster (GOULETTE_ECLUSTER), an
 * unknown sender (GOULETTE_ENOTFOUND) or another receiver (-ENXIO); those
 * four get an ACK carrying the reason so the dialer can log it.  Framing
 * errors, malformed messages, messages whose from/to disagree with the
 * handshake, and silence past handshake_timeout_ms close the connection
 * without an answer.  Every refusal is logged through the rate limit. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>

#include "uv_codec.h"
#include "uv_transport.h"

#define SUBSYS "raft.transport"

/* Close @c for a protocol violation, counting and logging it. */
static void refuse_close(struct raft_uv__conn *c, int rv, const char *why)
{
    struct raft_uv__transport *tr = c->tr;

    if (c->closing) {
        return;
    }
    tr->stats.refused++;
    raft_uv__log_refusal(tr, c, "%s (%s)", why, raft_uv__strerror(rv));
    raft_uv__conn_close(c);
}

/* Answer a handshake with @status, then close once written. */
static void refuse_with_ack(struct raft_uv__conn *c,
                            int status,
                            const char *why)
{
    struct raft_uv__transport *tr = c->tr;
    uint8_t ack[RAFT_UV_ACK_SIZE];

    tr->stats.refused++;
    raft_uv__log_refusal(tr, c, "%s (%s)", why, raft_uv__strerror(status));
    c->refusing = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    raft_uv__ack_encode(status, ack);
    if (raft_uv__conn_write_frame(c, RAFT_UV_FRAME_ACK, ack, sizeof ack) != 0) {
        raft_uv__conn_close(c);
        return;
    }
    /* The handshake timer, still running, bounds the wait for the write. */
}

void raft_uv__incoming_on_write(struct raft_uv__conn *c, int status)
{
    if (c->refusing || status < 0) {
        raft_uv__conn_close(c);
    }
}

static void on_handshake_timeout(uv_timer_t *timer)
{
    struct raft_uv__conn *c = timer->data;

    if (c->refusing) {
        raft_uv__conn_close(c);
        return;
    }
    refuse_close(c, -ETIMEDOUT, "no handshake in time");
}

/* Close any other identified connection from @id: the peer redialled, so
 * the old one is stale. */
static void close_older(struct raft_uv__conn *c)
{
    struct raft_uv__conn *o;

    for (o = c->tr->incoming; o != NULL; o = o->next) {
        if (o != c && o->from == c->from && !o->refusing) {
            raft_uv__conn_close(o);
        }
    }
}

static void handle_handshake(struct raft_uv__conn *c,
                             const struct goulette_buf *payload)
{
    struct raft_uv__transport *tr = c->tr;
    struct raft_uv__handshake h;
    uint8_t ack[RAFT_UV_ACK_SIZE];
    char why[400];
    int rv;

    rv = raft_uv__handshake_decode(payload->base, payload->len, &h);
    if (rv == GOULETTE_EVERSION) {
        snprintf(why, sizeof why, "protocol version %u, expected %u",
                 (unsigned)h.version, (unsigned)RAFT_UV_PROTOCOL_VERSION);
        refuse_with_ack(c, rv, why);
        return;
    }
    if (rv != 0) {
        refuse_close(c, rv, "malformed handshake");
        return;
    }
    if (h.cluster_id != tr->config.cluster_id) {
        snprintf(why, sizeof why,
                 "member %" PRIu64 " is in cluster %016" PRIx64
                 ", not %016" PRIx64,
                 h.from, h.cluster_id, tr->config.cluster_id);
        refuse_with_ack(c, GOULETTE_ECLUSTER, why);
        return;
    }
    if (h.to != tr->config.id) {
        snprintf(why, sizeof why,
                 "member %" PRIu64 " dialled member %" PRIu64
                 ", this is %" PRIu64,
                 h.from, h.to, tr->config.id);
        refuse_with_ack(c, -ENXIO, why);
        return;
    }
    if (h.from == tr->config.id || raft_uv__peer_find(tr, h.from) == NULL) {
        snprintf(why, sizeof why, "unknown member %" PRIu64 " (%s)", h.from,
                 h.address);
        refuse_with_ack(c, GOULETTE_ENOTFOUND, why);
        return;
    }
    raft_uv__ack_encode(0, ack);
    rv = raft_uv__conn_write_frame(c, RAFT_UV_FRAME_ACK, ack, sizeof ack);
    if (rv != 0) {
        raft_uv__conn_close(c);
        return;
    }
    uv_timer_stop(&c->timer);
    c->from = h.from;
    raft_uv__frame_decoder_set_max(&c->decoder, tr->config.max_frame_bytes);
    close_older(c);
    goulette_logf(tr->config.log, GOULETTE_LOG_INFO, SUBSYS,
                  "peer %" PRIu64 " (%s) connected from %s", h.from, h.address,
                  c->remote);
}

static void handle_message(struct raft_uv__conn *c,
                           const struct goulette_buf *payload)
{
    struct raft_uv__transport *tr = c->tr;
    struct raft_uv__peer *p;
    struct raft_message *m;
    int rv;

    m = malloc(sizeof *m);
    if (m == NULL) {
        refuse_close(c, -ENOMEM, "cannot decode message");
        return;
    }
    rv = raft_uv__codec_decode(payload->base, payload->len, m);
    if (rv != 0) {
        free(m);
        refuse_close(c, rv, "malformed message");
        return;
    }
    if (m->from != c->from || m->to != tr->config.id) {
        raft_uv_message_free(m);
        refuse_close(c, -EBADMSG, "message from/to disagree with handshake");
        return;
    }
    tr->stats.received++;
    p = raft_uv__peer_find(tr, c->from);
    if (p != NULL) {
        p->stats.received++;
    }
    tr->recv_cb(tr->pub, m);
}

/* An application frame: opaque to the transport, handed to app_cb with
 * the sender the handshake identified. */
static void handle_app(struct raft_uv__conn *c,
                       const struct goulette_buf *payload)
{
    struct raft_uv__transport *tr = c->tr;
    struct raft_uv__peer *p = raft_uv__peer_find(tr, c->from);

    if (payload->len == 0) {
        refuse_close(c, -EBADMSG, "empty application frame");
        return;
    }
    if (tr->config.app_cb == NULL) {
        tr->stats.app_ignored++;
        if (p != NULL) {
            p->stats.app_ignored++;
        }
        return;
    }
    tr->stats.app_received++;
    if (p != NULL) {
        p->stats.app_received++;
    }
    tr->config.app_cb(tr->pub, c->from, payload->base, payload->len);
}

static void handle_frame(struct raft_uv__conn *c, struct raft_uv__frame *f)
{
    if (c->from == 0) {
        if (f->kind == RAFT_UV_FRAME_HANDSHAKE) {
            handle_handshake(c, &f->payload);
        } else {
            refuse_close(c, -EPROTO, "frame before handshake");
        }
    } else if (f->kind == RAFT_UV_FRAME_MESSAGE) {
        handle_message(c, &f->payload);
    } else if (f->kind == RAFT_UV_FRAME_APP) {
        handle_app(c, &f->payload);
    } else {
        refuse_close(c, -EPROTO, "unexpected frame kind");
    }
    free(f->payload.base);
}

static void on_incoming_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct raft_uv__conn *c = s->data;
    struct raft_uv__transport *tr = c->tr;
    struct raft_uv__frame f;
    const char *data = buf->base;
    size_t len;
    long n;

    if (nread == 0 || c->closing || c->refusing) {
        return;
    }
    if (nread < 0) {
        if (c->from == 0) {
            refuse_close(c, (int)nread, "closed before handshake");
        } else {
            goulette_logf(tr->config.log, GOULETTE_LOG_INFO, SUBSYS,
                          "peer %" PRIu64 " disconnected: %s", c->from,
                          raft_uv__strerror((int)nread));
            raft_uv__conn_close(c);
        }
        return;
    }
    len = (size_t)nread;
    /* recv_cb may close this connection or the whole transport: re-check
     * before every frame. */
    while (len > 0 && !c->closing && !c->refusing && !tr->closing) {
        n = raft_uv__frame_decoder_feed(&c->decoder, data, len, &f);
        if (n < 0) {
            refuse_close(c, (int)n,
                         n == -EMSGSIZE ? "oversized frame" : "bad frame");
            return;
        }
        data += n;
        len -= (size_t)n;
        if (f.kind != 0) {
            handle_frame(c, &f);
        }
    }
}

void raft_uv__incoming_on_connection(uv_stream_t *listener, int status)
{
    struct raft_uv__transport *tr = listener->data;
    struct raft_uv__conn *c;
    struct sockaddr_storage addr;
    int len = sizeof addr;
    int rv;

    if (status < 0 || tr->closing) {
        return;
    }
    c = raft_uv__conn_new(tr, false);
    if (c == NULL) {
        /* Leave the connection in the backlog; a later one may fit. */
        return;
    }
    rv = uv_accept(listener, (uv_stream_t *)&c->tcp);
    if (rv != 0) {
        raft_uv__conn_close(c);
        return;
    }
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&addr, &len) == 0) {
        raft_uv__sockaddr_name((const struct sockaddr *)&addr, c->remote,
                               sizeof c->remote);
    }
    if (tr->n_incoming > tr->config.max_incoming) {
        refuse_close(c, -EMFILE, "too many connections");
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 10);
    uv_timer_start(&c->timer, on_handshake_timeout,
                   tr->config.handshake_timeout_ms, 0);
    rv = uv_read_start((uv_stream_t *)&c->tcp, raft_uv__conn_read_alloc,
                       on_incoming_read);
    if (rv != 0) {
        refuse_close(c, rv, "cannot read");
    }
}

void raft_uv__incoming_drop_member(struct raft_uv__transport *tr, raft_id id)
{
    struct raft_uv__conn *c;

    for (c = tr->incoming; c != NULL; c = c->next) {
        if (c->from == id) {
            raft_uv__conn_close(c);
        }
    }
}
