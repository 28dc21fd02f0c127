/* The unary gRPC client (rpc.h): one HTTP/2 connection per address, made
 * on demand (uv_getaddrinfo, uv_tcp_connect) and reused by later calls;
 * calls queue while it connects.  Owns connections and calls; HTTP/2 is
 * h2.c's, socket I/O pump.c's, message framing frame.c's.
 *
 * A call is finished exactly once (call_finish): by the response, by its
 * deadline, by its connection failing, or by rpc_client_close.  It is
 * freed when its timer handle has closed.  A connection leaves the pool
 * when it fails or the server sends GOAWAY; calls made afterwards open a
 * new one. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>
#include <goulette/rpc.h>

#include "frame.h"
#include "h2.h"
#include "pump.h"
#include "wire.h"

#define CCONN_READ_BUF (64 * 1024)

enum cconn_state {
    CCONN_RESOLVING,
    CCONN_CONNECTING,
    CCONN_READY,
    CCONN_CLOSING,
};

struct rpc__ccall;

struct rpc__cconn
{
    struct rpc__cconn *prev, *next; /* in client->conns */
    struct rpc_client *client;
    char *address; /* owned "host:port" */
    enum cconn_state state;
    uv_getaddrinfo_t gai;
    uv_connect_t creq;
    uv_tcp_t tcp;
    bool tcp_open;      /* tcp initialised, not yet closed */
    bool resolving;     /* gai in flight */
    struct rpc__h2 *h2; /* owned once connected */
    struct rpc__pump pump;
    struct rpc__ccall *calls; /* queued and active calls */
    unsigned char rbuf[CCONN_READ_BUF];
};

struct rpc__ccall
{
    struct rpc__ccall *prev, *next; /* in conn->calls while attached */
    struct rpc__cconn *conn;        /* NULL once finished */
    struct rpc_client *client;
    int32_t stream_id;        /* 0 while queued */
    char *method;             /* owned */
    struct goulette_buf body; /* owned framed request until sent */
    uint64_t timeout_ms;
    uint64_t deadline; /* uv_now ms, when timeout_ms > 0 */
    uv_timer_t timer;
    struct rpc_client_done done;
    bool finished;
    /* The response. */
    bool got_headers;
    int http_status;
    int grpc_status;    /* -1 until seen */
    char *grpc_message; /* owned, raw (percent-encoded) */
    struct rpc_frame_decoder dec;
    struct rpc_frame_msg msg;
    bool have_msg;
    int body_error; /* 0, or why the body was rejected */
};

static void client_maybe_done(struct rpc_client *c)
{
    if (c->closing && c->handles == 0 && c->close_cb != NULL) {
        void (*cb)(struct rpc_client *) = c->close_cb;
        c->close_cb = NULL;
        cb(c);
    }
}

static void cconn_unlink(struct rpc__cconn *conn)
{
    struct rpc_client *c = conn->client;

    if (conn->prev != NULL) {
        conn->prev->next = conn->next;
    } else if (c->conns == conn) {
        c->conns = conn->next;
    }
    if (conn->next != NULL) {
        conn->next->prev = conn->prev;
    }
    conn->prev = conn->next = NULL;
}

/* ------------------------------------------------------------------ */
/* Calls                                                                */

static void ccall_timer_closed(uv_handle_t *h)
{
    struct rpc__ccall *call = h->data;
    struct rpc_client *c = call->client;

    free(call->method);
    free(call->body.base);
    free(call->grpc_message);
    if (call->have_msg) {
        rpc_frame_decoder_release(&call->dec, &call->msg);
    }
    rpc_frame_decoder_fini(&call->dec);
    free(call);
    c->handles--;
    client_maybe_done(c);
}

static void ccall_finish(struct rpc__ccall *call,
                         enum rpc_status status,
                         const char *message,
                         const struct goulette_buf *resp)
{
    struct rpc__cconn *conn = call->conn;
    struct goulette_buf empty = {NULL, 0};

    if (call->finished) {
        return;
    }
    call->finished = true;
    if (conn != NULL) {
        if (call->prev != NULL) {
            call->prev->next = call->next;
        } else {
            conn->calls = call->next;
        }
        if (call->next != NULL) {
            call->next->prev = call->prev;
        }
        if (call->stream_id > 0 && conn->h2 != NULL) {
            rpc__h2_detach(conn->h2, call->stream_id);
        }
        call->conn = NULL;
    }
    uv_timer_stop(&call->timer);
    call->done.cb(call->done.data, status, message != NULL ? message : "",
                  resp != NULL ? resp : &empty);
    uv_close((uv_handle_t *)&call->timer, ccall_timer_closed);
}

/* Map an HTTP status without grpc-status to a gRPC status, as the gRPC
 * spec's http-grpc-status-mapping.md does. */
static enum rpc_status ccall_http_status(int http)
{
    switch (http) {
    case 400:
        return RPC_STATUS_INTERNAL;
    case 401:
        return RPC_STATUS_UNAUTHENTICATED;
    case 403:
        return RPC_STATUS_PERMISSION_DENIED;
    case 404:
        return RPC_STATUS_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return RPC_STATUS_UNAVAILABLE;
    default:
        return RPC_STATUS_UNKNOWN;
    }
}

/* The server ended the stream: work out the outcome. */
static void ccall_complete(struct rpc__ccall *call)
{
    char *decoded = NULL;
    const char *msg = "";
    enum rpc_status st;
    char buf[64];

    if (call->body_error != 0) {
        ccall_finish(call, RPC_STATUS_RESOURCE_EXHAUSTED,
                     "response message larger than max", NULL);
        return;
    }
    if (call->grpc_status < 0) {
        if (call->http_status != 200) {
            snprintf(buf, sizeof buf, "unexpected HTTP status code %d",
                     call->http_status);
            ccall_finish(call, ccall_http_status(call->http_status), buf, NULL);
        } else {
            ccall_finish(call, RPC_STATUS_INTERNAL,
                         "server closed the stream without grpc-status", NULL);
        }
        return;
    }
    st = (enum rpc_status)call->grpc_status;
    if (call->grpc_message != NULL) {
        size_t len = strlen(call->grpc_message);
        decoded = malloc(len + 1);
        if (decoded != NULL) {
            rpc_wire_message_decode(call->grpc_message, len, decoded);
            msg = decoded;
        }
    }
    if (st == RPC_STATUS_OK && !call->have_msg) {
        ccall_finish(call, RPC_STATUS_INTERNAL,
                     "server sent no response message", NULL);
    } else if (st == RPC_STATUS_OK) {
        ccall_finish(call, st, msg, &call->msg.body);
    } else {
        ccall_finish(call, st, msg, NULL);
    }
    free(decoded);
}

static void ccall_deadline(uv_timer_t *t)
{
    struct rpc__ccall *call = t->data;
    struct rpc__cconn *conn = call->conn;
    int32_t id = call->stream_id;

    /* Finish (which detaches the stream) before the reset goes out, or the
     * reset's stream-close callback would finish it as a failure. */
    ccall_finish(call, RPC_STATUS_DEADLINE_EXCEEDED,
                 "context deadline exceeded", NULL);
    if (conn != NULL && id > 0 && conn->h2 != NULL) {
        rpc__h2_reset(conn->h2, id, RPC__H2_CANCEL);
        rpc__pump_flush(&conn->pump);
    }
}

static struct rpc__h2_nv cnv(const char *name, const char *value)
{
    struct rpc__h2_nv nv;

    nv.name = name;
    nv.name_len = strlen(name);
    nv.value = value;
    nv.value_len = strlen(value);
    return nv;
}

/* Open the call's stream on its ready connection.
 * Errors: -EAGAIN (the connection is going away), -ENOMEM. */
static int ccall_submit(struct rpc__ccall *call)
{
    struct rpc__cconn *conn = call->conn;
    struct rpc__h2_nv nv[9];
    char timeout[16];
    size_t n = 0;
    long id;

    nv[n++] = cnv(":method", "POST");
    nv[n++] = cnv(":scheme", "http");
    nv[n++] = cnv(":path", call->method);
    nv[n++] = cnv(":authority", conn->address);
    nv[n++] = cnv("content-type", "application/grpc");
    nv[n++] = cnv("te", "trailers");
    nv[n++] = cnv("user-agent", "goulettefs-rpc/0.1");
    if (call->timeout_ms > 0) {
        uint64_t now = uv_now(call->client->loop);
        uint64_t left = call->deadline > now ? call->deadline - now : 1;
        rpc_wire_timeout_format(left, timeout);
        nv[n++] = cnv("grpc-timeout", timeout);
    }
    id = rpc__h2_request(conn->h2, nv, n, &call->body, call);
    if (id < 0) {
        return (int)id;
    }
    call->body.base = NULL; /* taken by the session */
    call->body.len = 0;
    call->stream_id = (int32_t)id;
    return 0;
}

/* ------------------------------------------------------------------ */
/* HTTP/2 callbacks                                                     */

static int cconn_header(void *data, void *stream, const struct rpc__h2_nv *nv)
{
    struct rpc__ccall *call = stream;

    if (nv->name_len == 7 && memcmp(nv->name, ":status", 7) == 0) {
        call->http_status = 0;
        for (size_t i = 0; i < nv->value_len && i < 3; i++) {
            call->http_status = call->http_status * 10 + (nv->value[i] - '0');
        }
    } else if (nv->name_len == 11 && memcmp(nv->name, "grpc-status", 11) == 0) {
        call->grpc_status = 0;
        for (size_t i = 0; i < nv->value_len && i < 4; i++) {
            if (nv->value[i] < '0' || nv->value[i] > '9') {
                call->grpc_status = RPC_STATUS_UNKNOWN;
                break;
            }
            call->grpc_status = call->grpc_status * 10 + (nv->value[i] - '0');
        }
    } else if (nv->name_len == 12 &&
               memcmp(nv->name, "grpc-message", 12) == 0) {
        free(call->grpc_message);
        call->grpc_message = strndup(nv->value, nv->value_len);
        if (call->grpc_message == NULL) {
            return -ENOMEM;
        }
    }
    return 0;
}

static void cconn_headers_end(void *data, void *stream)
{
    struct rpc__ccall *call = stream;

    call->got_headers = true;
}

static void cconn_data(void *data, void *stream, const uint8_t *p, size_t len)
{
    struct rpc__cconn *conn = data;
    struct rpc__ccall *call = stream;
    struct rpc_frame_msg m;
    bool done;
    long n;

    while (len > 0 && call->body_error == 0) {
        if (call->have_msg) {
            call->body_error = -EPROTO;
            break;
        }
        n = rpc_frame_decoder_feed(&call->dec, p, len, &m, &done);
        if (n < 0) {
            call->body_error = (int)n;
            break;
        }
        p += n;
        len -= (size_t)n;
        if (done) {
            call->msg = m;
            call->have_msg = true;
        }
    }
    if (call->body_error != 0 && call->stream_id > 0) {
        int32_t id = call->stream_id;
        ccall_finish(call, RPC_STATUS_RESOURCE_EXHAUSTED,
                     call->body_error == -EMSGSIZE
                         ? "grpc: received message larger than max"
                         : "grpc: malformed response message",
                     NULL);
        rpc__h2_reset(conn->h2, id, RPC__H2_CANCEL);
    }
}

static void cconn_end_stream(void *data, void *stream)
{
    ccall_complete(stream);
}

static void cconn_stream_close(void *data, void *stream, uint32_t code)
{
    char msg[64];

    snprintf(msg, sizeof msg, "stream closed with HTTP/2 error code %u",
             (unsigned)code);
    ccall_finish(stream,
                 code == RPC__H2_REFUSED_STREAM ? RPC_STATUS_UNAVAILABLE
                                                : RPC_STATUS_INTERNAL,
                 msg, NULL);
}

static void cconn_frame(void *data, enum rpc__h2_frame kind)
{
    /* A GOAWAY marks the session draining (h2.c): rpc_client_call then
     * opens a new connection, and this one closes once its streams end. */
}

static const struct rpc__h2_callbacks cconn_h2_callbacks = {
    .begin_stream = NULL,
    .header = cconn_header,
    .headers_end = cconn_headers_end,
    .data = cconn_data,
    .end_stream = cconn_end_stream,
    .stream_close = cconn_stream_close,
    .frame = cconn_frame,
};

/* ------------------------------------------------------------------ */
/* Connections                                                          */

static void cconn_free(struct rpc__cconn *conn)
{
    struct rpc_client *c = conn->client;

    if (conn->h2 != NULL) {
        rpc__h2_free(conn->h2);
    }
    rpc__pump_fini(&conn->pump);
    free(conn->address);
    free(conn);
    c->handles--;
    client_maybe_done(c);
}

static void cconn_tcp_closed(uv_handle_t *h)
{
    cconn_free(h->data);
}

/* Fail every call with @status/@msg, leave the pool and release the
 * connection's resources (now, or when the resolver returns). */
static void cconn_fail(struct rpc__cconn *conn,
                       enum rpc_status status,
                       const char *msg)
{
    if (conn->state == CCONN_CLOSING) {
        return;
    }
    conn->state = CCONN_CLOSING;
    cconn_unlink(conn);
    if (conn->h2 != NULL) {
        rpc__pump_stop(&conn->pump);
    }
    while (conn->calls != NULL) {
        ccall_finish(conn->calls, status, msg, NULL);
    }
    if (conn->resolving) {
        uv_cancel((uv_req_t *)&conn->gai); /* cconn_resolved frees */
        return;
    }
    if (conn->tcp_open) {
        conn->tcp.data = conn;
        uv_close((uv_handle_t *)&conn->tcp, cconn_tcp_closed);
        return;
    }
    cconn_free(conn);
}

static void cconn_pump_done(struct rpc__pump *pump, int rv)
{
    struct rpc__cconn *conn = pump->owner;
    char msg[96];

    snprintf(msg, sizeof msg, "connection to %s closed: %s", conn->address,
             rv != 0 ? goulette_strerror(rv) : "end of stream");
    cconn_fail(conn, RPC_STATUS_UNAVAILABLE, msg);
}

static const struct rpc__pump_callbacks cconn_pump_callbacks = {
    .done = cconn_pump_done,
    .activity = NULL,
};

static void cconn_connected(uv_connect_t *req, int status)
{
    struct rpc__cconn *conn = req->data;
    struct rpc__h2_config hc;
    struct rpc__ccall *call;
    struct rpc__ccall *next;
    char msg[128];
    int rv;

    if (conn->state == CCONN_CLOSING) {
        return;
    }
    if (status != 0) {
        snprintf(msg, sizeof msg, "connect %s: %s", conn->address,
                 uv_strerror(status));
        cconn_fail(conn, RPC_STATUS_UNAVAILABLE, msg);
        return;
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    hc.server = false;
    hc.max_concurrent_streams = 100;
    hc.max_header_list = 64 * 1024;
    hc.cb = &cconn_h2_callbacks;
    hc.data = conn;
    rv = rpc__h2_new(&hc, &conn->h2);
    if (rv != 0) {
        cconn_fail(conn, RPC_STATUS_UNAVAILABLE, goulette_strerror(rv));
        return;
    }
    rpc__pump_init(&conn->pump, &conn->tcp, conn->h2, &cconn_pump_callbacks,
                   conn, conn->rbuf, sizeof conn->rbuf, 16u << 20);
    conn->state = CCONN_READY;
    for (call = conn->calls; call != NULL; call = next) {
        next = call->next;
        rv = ccall_submit(call);
        if (rv != 0) {
            ccall_finish(call, RPC_STATUS_UNAVAILABLE, goulette_strerror(rv),
                         NULL);
        }
    }
    rpc__pump_start(&conn->pump);
}

static void cconn_resolved(uv_getaddrinfo_t *req,
                           int status,
                           struct addrinfo *res)
{
    struct rpc__cconn *conn = req->data;
    char msg[128];
    int rv;

    conn->resolving = false;
    if (conn->state == CCONN_CLOSING) {
        uv_freeaddrinfo(res);
        cconn_free(conn);
        return;
    }
    if (status != 0 || res == NULL) {
        snprintf(msg, sizeof msg, "resolve %s: %s", conn->address,
                 uv_strerror(status));
        uv_freeaddrinfo(res);
        cconn_fail(conn, RPC_STATUS_UNAVAILABLE, msg);
        return;
    }
    uv_tcp_init(conn->client->loop, &conn->tcp);
    conn->tcp_open = true;
    conn->tcp.data = conn;
    conn->state = CCONN_CONNECTING;
    conn->creq.data = conn;
    rv = uv_tcp_connect(&conn->creq, &conn->tcp, res->ai_addr, cconn_connected);
    uv_freeaddrinfo(res);
    if (rv != 0) {
        snprintf(msg, sizeof msg, "connect %s: %s", conn->address,
                 uv_strerror(rv));
        cconn_fail(conn, RPC_STATUS_UNAVAILABLE, msg);
    }
}

/* Split "host:port" (host may be "[v6]").  Errors: -EINVAL. */
static int split_address(const char *address,
                         char *host,
                         size_t hcap,
                         char *port,
                         size_t pcap)
{
    const char *colon = strrchr(address, ':');
    const char *h = address;
    size_t hlen;

    if (colon == NULL || colon == address || colon[1] == '\0' ||
        strlen(colon + 1) >= pcap) {
        return -EINVAL;
    }
    hlen = (size_t)(colon - address);
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= hcap) {
        return -EINVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    strcpy(port, colon + 1);
    return 0;
}

static int cconn_new(struct rpc_client *c,
                     const char *address,
                     struct rpc__cconn **out)
{
    struct addrinfo hints;
    struct rpc__cconn *conn;
    char host[256];
    char port[8];
    int rv;

    rv = split_address(address, host, sizeof host, port, sizeof port);
    if (rv != 0) {
        return rv;
    }
    conn = calloc(1, sizeof *conn);
    if (conn == NULL) {
        return -ENOMEM;
    }
    conn->client = c;
    conn->address = strdup(address);
    if (conn->address == NULL) {
        free(conn);
        return -ENOMEM;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    conn->gai.data = conn;
    rv =
        uv_getaddrinfo(c->loop, &conn->gai, cconn_resolved, host, port, &hints);
    if (rv != 0) {
        free(conn->address);
        free(conn);
        return rv == UV_ENOMEM ? -ENOMEM : -EINVAL;
    }
    conn->resolving = true;
    conn->state = CCONN_RESOLVING;
    conn->next = c->conns;
    if (c->conns != NULL) {
        c->conns->prev = conn;
    }
    c->conns = conn;
    c->handles++;
    *out = conn;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Public API                                                           */

int rpc_client_init(struct rpc_client *c, const struct rpc_client_config *cfg)
{
    if (cfg->loop == NULL) {
        return -EINVAL;
    }
    memset(c, 0, sizeof *c);
    c->loop = cfg->loop;
    c->log = cfg->log;
    c->max_message = cfg->max_message != 0 ? cfg->max_message : 4u << 20;
    uv_timer_init(c->loop, &c->closer);
    c->closer.data = c;
    c->handles = 1;
    return 0;
}

int rpc_client_call(struct rpc_client *c,
                    const char *address,
                    const char *method,
                    const struct goulette_buf *req,
                    uint64_t timeout_ms,
                    const struct rpc_client_done *done)
{
    struct rpc__cconn *conn = NULL;
    struct rpc__ccall *call = NULL;
    int rv;

    if (c->closing) {
        return GOULETTE_ESHUTDOWN;
    }
    if (method == NULL || method[0] != '/' || address == NULL ||
        req->len > UINT32_MAX) {
        return -EINVAL;
    }
    for (conn = c->conns; conn != NULL; conn = conn->next) {
        if (strcmp(conn->address, address) == 0 &&
            conn->state != CCONN_CLOSING &&
            (conn->h2 == NULL || !rpc__h2_draining(conn->h2))) {
            break;
        }
    }
    call = calloc(1, sizeof *call);
    if (call == NULL) {
        return -ENOMEM;
    }
    call->client = c;
    call->grpc_status = -1;
    call->done = *done;
    call->timeout_ms = timeout_ms;
    call->method = strdup(method);
    call->body.len = rpc_frame_encoded_len(req->len);
    call->body.base = malloc(call->body.len);
    if (call->method == NULL || call->body.base == NULL) {
        rv = -ENOMEM;
        goto err_call;
    }
    (void)rpc_frame_encode(req, call->body.base, call->body.len);
    rpc_frame_decoder_init(&call->dec, c->max_message, NULL);
    if (conn == NULL) {
        rv = cconn_new(c, address, &conn);
        if (rv != 0) {
            goto err_call;
        }
    }
    call->conn = conn;
    if (timeout_ms > 0) {
        /* Before the submit, which sends the time left as grpc-timeout. */
        call->deadline = uv_now(c->loop) + timeout_ms;
    }
    if (conn->state == CCONN_READY) {
        rv = ccall_submit(call);
        if (rv != 0) {
            goto err_call;
        }
    }
    uv_timer_init(c->loop, &call->timer);
    call->timer.data = call;
    c->handles++;
    if (timeout_ms > 0) {
        uv_timer_start(&call->timer, ccall_deadline, timeout_ms, 0);
    }
    call->next = conn->calls;
    if (conn->calls != NULL) {
        conn->calls->prev = call;
    }
    conn->calls = call;
    if (conn->state == CCONN_READY) {
        rpc__pump_flush(&conn->pump);
    }
    return 0;

err_call:
    free(call->method);
    free(call->body.base);
    free(call);
    assert(rv == -ENOMEM || rv == -EINVAL || rv == -EAGAIN);
    return rv == -EAGAIN ? -ENOMEM : rv;
}

int rpc_client_call_pb(struct rpc_client *c,
                       const char *address,
                       const char *method,
                       const ProtobufCMessage *req,
                       uint64_t timeout_ms,
                       const struct rpc_client_done *done)
{
    struct goulette_buf b;
    uint8_t small[256];
    int rv;

    b.len = protobuf_c_message_get_packed_size(req);
    b.base = b.len <= sizeof small ? small : malloc(b.len);
    if (b.base == NULL) {
        return -ENOMEM;
    }
    protobuf_c_message_pack(req, b.base);
    rv = rpc_client_call(c, address, method, &b, timeout_ms, done);
    if (b.base != small) {
        free(b.base);
    }
    return rv;
}

static void client_closer_closed(uv_handle_t *h)
{
    struct rpc_client *c = h->data;

    c->handles--;
    client_maybe_done(c);
}

void rpc_client_close(struct rpc_client *c,
                      void (*cb)(struct rpc_client *client))
{
    assert(!c->closing);
    c->closing = true;
    c->close_cb = cb;
    while (c->conns != NULL) {
        cconn_fail(c->conns, RPC_STATUS_CANCELLED, "client closing");
    }
    uv_close((uv_handle_t *)&c->closer, client_closer_closed);
}
