/* The unary gRPC server (rpc.h): listener, connections, calls and the
 * method registry.  Decides every gRPC answer (validation, statuses,
 * deadlines, limits); HTTP/2 framing is h2.c's, socket I/O pump.c's, the
 * 5-byte message framing frame.c's.
 *
 * A call's life (states, and the function making each transition):
 *
 *   HEADERS --call_headers_end--> BODY --call_end_stream--> DISPATCHED
 *      |                            |                           |
 *      +------- call_fail_early ----+----------------------+    | reply/fail
 *      |  (bad headers, unknown method, oversize, deadline) |    | deadline
 *      v                                                    v    v cancel
 *     DONE <------------------------------------------------------+
 *
 * References: the stream holds one from begin_stream until the stream is
 * closed and the call's deadline timer has closed (call_detach ->
 * call_timer_closed); the handler holds one from dispatch until it finishes
 * the call.  A finish on a DONE call sends nothing: it only drops the
 * handler's reference, so a late reply after a reset, a disconnect or an
 * expired deadline is harmless.  A detached call has conn == NULL and
 * touches no connection again. */
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

#define RPC_READ_BUF (64 * 1024)

enum call_state {
    CALL_HEADERS,
    CALL_BODY,
    CALL_DISPATCHED,
    CALL_DONE,
};

struct rpc__method
{
    char *name; /* owned, "/pkg.Service/Method" */
    size_t name_len;
    bool pb;
    struct rpc_handler raw;
    struct rpc_pb_handler typed;
};

struct rpc__conn
{
    struct rpc__conn *prev, *next; /* in server->conns */
    struct rpc_server *server;
    uv_tcp_t tcp;
    uv_timer_t idle;
    int open_handles;   /* tcp + idle, until both closed */
    struct rpc__h2 *h2; /* owned; NULL once closing */
    struct rpc__pump pump;
    struct rpc_call *calls; /* attached calls */
    size_t buffered;        /* request bytes held by attached calls */
    uint64_t last_active;   /* uv_now of the last bytes read */
    bool closing;
    struct rpc_wire_bucket pings, settings, resets, empties;
};

struct rpc_call
{
    struct rpc_call *prev, *next; /* in conn->calls while attached */
    struct rpc_server *server;    /* until the timer has closed */
    struct rpc__conn *conn;       /* NULL once detached */
    int32_t stream_id;
    int refs;
    enum call_state state;
    bool request_ended; /* the client sent END_STREAM */
    uv_timer_t timer;   /* grpc-timeout */
    bool has_deadline;
    uint64_t deadline; /* uv_now ms */
    /* Headers of the request, gathered field by field. */
    size_t header_bytes;
    bool too_big, is_post, have_te, te_ok, have_ct, ct_ok;
    bool have_timeout, timeout_ok, enc_ok;
    uint64_t timeout_ms;
    char *path; /* owned */
    char enc[32];
    /* The request message. */
    const struct rpc__method *method;
    struct rpc_frame_decoder dec;
    struct rpc_frame_msg msg;
    bool have_msg;
    size_t held; /* bytes counted in conn->buffered */
    void (*cancel_cb)(void *data, struct rpc_call *call);
    void *cancel_data;
};

static void server_maybe_done(struct rpc_server *s)
{
    if (s->closing && s->handles == 0 && s->close_cb != NULL) {
        void (*cb)(struct rpc_server *) = s->close_cb;
        s->close_cb = NULL;
        free(s->rbuf);
        s->rbuf = NULL;
        cb(s);
    } else if (s->closing && s->handles == 0) {
        free(s->rbuf);
        s->rbuf = NULL;
    }
}

/* ------------------------------------------------------------------ */
/* Calls                                                                */

static void call_unref(struct rpc_call *call)
{
    assert(call->refs > 0);
    if (--call->refs > 0) {
        return;
    }
    free(call->path);
    free(call);
}

static void call_release_body(struct rpc_call *call)
{
    if (call->conn != NULL) {
        call->conn->buffered -= call->held;
        call->conn->server->buffered -= call->held;
    }
    call->held = 0;
    if (call->have_msg) {
        rpc_frame_decoder_release(&call->dec, &call->msg);
        call->have_msg = false;
    }
    rpc_frame_decoder_fini(&call->dec);
}

static void call_timer_closed(uv_handle_t *h)
{
    struct rpc_call *call = h->data;
    struct rpc_server *s = call->server;

    call->server = NULL;
    s->handles--;
    call_unref(call);
    server_maybe_done(s);
}

/* Move @call to DONE; fire its cancel callback if a handler holds it. */
static void call_kill(struct rpc_call *call)
{
    void (*cb)(void *, struct rpc_call *) = call->cancel_cb;
    bool dispatched = call->state == CALL_DISPATCHED;

    call->state = CALL_DONE;
    call->cancel_cb = NULL;
    if (call->server != NULL) {
        uv_timer_stop(&call->timer);
    }
    if (dispatched && cb != NULL) {
        cb(call->cancel_data, call);
    }
}

/* The stream is gone (closed, or its connection is closing): cut every
 * link to the connection and release the stream's reference once the
 * timer handle has closed. */
static void call_detach(struct rpc_call *call)
{
    struct rpc__conn *conn = call->conn;

    if (conn == NULL) {
        return;
    }
    call_release_body(call);
    if (call->prev != NULL) {
        call->prev->next = call->next;
    } else {
        conn->calls = call->next;
    }
    if (call->next != NULL) {
        call->next->prev = call->prev;
    }
    if (conn->h2 != NULL) {
        rpc__h2_detach(conn->h2, call->stream_id);
    }
    call->conn = NULL;
    call_kill(call);
    uv_close((uv_handle_t *)&call->timer, call_timer_closed);
}

static struct rpc__h2_nv nv_str(const char *name, const char *value)
{
    struct rpc__h2_nv nv;

    nv.name = name;
    nv.name_len = strlen(name);
    nv.value = value;
    nv.value_len = strlen(value);
    return nv;
}

/* Send a trailers-only response with @status and @message on @call's
 * stream (h2.c then resets the stream with NO_ERROR if the client is still
 * sending). */
static int call_send_status(struct rpc_call *call,
                            enum rpc_status status,
                            const char *message,
                            const char *http_status)
{
    struct rpc__conn *conn = call->conn;
    struct rpc__h2_nv nv[5];
    char code[12];
    char *enc = NULL;
    size_t n = 0;
    size_t len;
    int rv;

    if (message == NULL) {
        message = "";
    }
    len = rpc_wire_message_encode(message, strlen(message), NULL, 0);
    enc = malloc(len + 1);
    if (enc == NULL) {
        return -ENOMEM;
    }
    rpc_wire_message_encode(message, strlen(message), enc, len);
    enc[len] = '\0';
    snprintf(code, sizeof code, "%d", (int)status);
    nv[n++] = nv_str(":status", http_status);
    nv[n++] = nv_str("content-type", "application/grpc");
    nv[n++] = nv_str("grpc-status", code);
    if (len > 0) {
        nv[n++] = nv_str("grpc-message", enc);
    }
    rv = rpc__h2_respond(conn->h2, call->stream_id, nv, n, NULL, NULL, 0);
    free(enc);
    rpc__pump_flush(&conn->pump);
    return rv;
}

/* Answer a call that never reached its handler, and drop its body. */
static void call_fail_early(struct rpc_call *call,
                            enum rpc_status status,
                            const char *message,
                            const char *http_status)
{
    assert(call->state == CALL_HEADERS || call->state == CALL_BODY);
    goulette_logf(call->server->log, GOULETTE_LOG_DEBUG, "rpc", "%s: %s: %s",
                  call->path ? call->path : "?", rpc_status_name(status),
                  message);
    call_release_body(call);
    call->state = CALL_DONE;
    uv_timer_stop(&call->timer);
    /* The flush inside may close the stream and detach the call: look at
     * call->conn again afterwards. */
    if (call_send_status(call, status, message, http_status) != 0 &&
        call->conn != NULL) {
        rpc__h2_reset(call->conn->h2, call->stream_id, RPC__H2_INTERNAL_ERROR);
        rpc__pump_flush(&call->conn->pump);
    }
}

static void call_deadline(uv_timer_t *t)
{
    struct rpc_call *call = t->data;

    if (call->conn == NULL || call->state == CALL_DONE) {
        return;
    }
    if (call->state == CALL_DISPATCHED) {
        /* Tell the client first, then the handler: it may finish the call
         * from its cancel callback, which then sends nothing. */
        void (*cb)(void *, struct rpc_call *) = call->cancel_cb;
        void *data = call->cancel_data;

        call->cancel_cb = NULL;
        call->state = CALL_BODY;
        call_fail_early(call, RPC_STATUS_DEADLINE_EXCEEDED,
                        "context deadline exceeded", "200");
        if (cb != NULL) {
            cb(data, call);
        }
        return;
    }
    call_fail_early(call, RPC_STATUS_DEADLINE_EXCEEDED,
                    "context deadline exceeded", "200");
}

static void call_receive_timeout(uv_timer_t *t)
{
    struct rpc_call *call = t->data;

    if (call->conn == NULL || call->state != CALL_BODY) {
        return;
    }
    call_fail_early(call, RPC_STATUS_DEADLINE_EXCEEDED,
                    "request not received in time", "200");
}

/* h2 callback: a client opened a stream. */
static int conn_begin_stream(void *data, int32_t stream_id, void **out)
{
    struct rpc__conn *conn = data;
    struct rpc_server *s = conn->server;
    struct rpc_call *call;

    if (s->closing || conn->closing) {
        return -ESHUTDOWN;
    }
    call = calloc(1, sizeof *call);
    if (call == NULL) {
        return -ENOMEM;
    }
    call->server = s;
    call->conn = conn;
    call->stream_id = stream_id;
    call->refs = 1;
    call->state = CALL_HEADERS;
    call->enc_ok = true;
    rpc_frame_decoder_init(&call->dec, s->limits.max_message, NULL);
    uv_timer_init(s->loop, &call->timer);
    call->timer.data = call;
    s->handles++;
    call->next = conn->calls;
    if (conn->calls != NULL) {
        conn->calls->prev = call;
    }
    conn->calls = call;
    *out = call;
    return 0;
}

static bool nv_is(const struct rpc__h2_nv *nv, const char *name)
{
    size_t n = strlen(name);
    return nv->name_len == n && memcmp(nv->name, name, n) == 0;
}

static bool nv_value_is(const struct rpc__h2_nv *nv, const char *value)
{
    size_t n = strlen(value);
    return nv->value_len == n && memcmp(nv->value, value, n) == 0;
}

/* h2 callback: one request header field.  Fields past the header-list
 * limit are counted, not kept, so a huge header block costs no memory. */
static int conn_header(void *data, void *stream, const struct rpc__h2_nv *nv)
{
    struct rpc__conn *conn = data;
    struct rpc_call *call = stream;

    if (call->state != CALL_HEADERS) {
        return 0; /* trailers from the client: ignored */
    }
    call->header_bytes += nv->name_len + nv->value_len + 32;
    if (call->header_bytes > conn->server->limits.max_header_list) {
        call->too_big = true;
        return 0;
    }
    if (nv_is(nv, ":method")) {
        call->is_post = nv_value_is(nv, "POST");
    } else if (nv_is(nv, ":path")) {
        free(call->path);
        call->path = strndup(nv->value, nv->value_len);
        if (call->path == NULL) {
            return -ENOMEM;
        }
    } else if (nv_is(nv, "content-type")) {
        call->have_ct = true;
        call->ct_ok = rpc_wire_content_type_ok(nv->value, nv->value_len);
    } else if (nv_is(nv, "te")) {
        call->have_te = true;
        call->te_ok = nv_value_is(nv, "trailers");
    } else if (nv_is(nv, "grpc-timeout")) {
        call->have_timeout = true;
        call->timeout_ok = rpc_wire_timeout_parse(nv->value, nv->value_len,
                                                  &call->timeout_ms) == 0;
    } else if (nv_is(nv, "grpc-encoding")) {
        call->enc_ok = nv_value_is(nv, "identity");
        snprintf(call->enc, sizeof call->enc, "%.*s",
                 (int)(nv->value_len < 31 ? nv->value_len : 31), nv->value);
    }
    return 0;
}

static const struct rpc__method *server_find(const struct rpc_server *s,
                                             const char *path)
{
    size_t n = strlen(path);
    size_t i;

    for (i = 0; i < s->nmethods; i++) {
        if (s->methods[i].name_len == n &&
            memcmp(s->methods[i].name, path, n) == 0) {
            return &s->methods[i];
        }
    }
    return NULL;
}

/* The UNIMPLEMENTED message grpc-go gives for @path. */
static void server_unknown_message(const struct rpc_server *s,
                                   const char *path,
                                   char *out,
                                   size_t cap)
{
    const char *slash = path[0] == '/' ? strrchr(path + 1, '/') : NULL;
    size_t svc_len;
    size_t i;

    if (slash == NULL || slash == path + 1 || slash[1] == '\0') {
        snprintf(out, cap, "malformed method name: \"%s\"", path);
        return;
    }
    svc_len = (size_t)(slash - path); /* "/pkg.Service" */
    for (i = 0; i < s->nmethods; i++) {
        if (s->methods[i].name_len > svc_len &&
            memcmp(s->methods[i].name, path, svc_len) == 0 &&
            s->methods[i].name[svc_len] == '/') {
            snprintf(out, cap, "unknown method %s for service %.*s", slash + 1,
                     (int)svc_len - 1, path + 1);
            return;
        }
    }
    snprintf(out, cap, "unknown service %.*s", (int)svc_len - 1, path + 1);
}

/* h2 callback: the request header block is complete.  Validate it in the
 * order grpc-go does and either fail the call or start receiving. */
static void conn_headers_end(void *data, void *stream)
{
    struct rpc__conn *conn = data;
    struct rpc_server *s = conn->server;
    struct rpc_call *call = stream;
    char msg[256];

    if (call->state != CALL_HEADERS) {
        return;
    }
    if (call->too_big) {
        snprintf(msg, sizeof msg, "header list size exceeds limit (%u)",
                 s->limits.max_header_list);
        call_fail_early(call, RPC_STATUS_RESOURCE_EXHAUSTED, msg, "200");
        return;
    }
    if (!call->is_post) {
        call_fail_early(call, RPC_STATUS_INTERNAL,
                        "invalid :method, POST required", "405");
        return;
    }
    if (!call->have_ct || !call->ct_ok) {
        call_fail_early(call, RPC_STATUS_INVALID_ARGUMENT,
                        "invalid gRPC request content-type", "415");
        return;
    }
    if (!call->have_te || !call->te_ok) {
        call_fail_early(call, RPC_STATUS_INTERNAL,
                        "missing \"te: trailers\" header", "400");
        return;
    }
    if (call->have_timeout && !call->timeout_ok) {
        call_fail_early(call, RPC_STATUS_INTERNAL, "malformed grpc-timeout",
                        "200");
        return;
    }
    if (!call->enc_ok) {
        snprintf(msg, sizeof msg,
                 "grpc: Decompressor is not installed for grpc-encoding "
                 "\"%s\"",
                 call->enc);
        call_fail_early(call, RPC_STATUS_UNIMPLEMENTED, msg, "200");
        return;
    }
    if (call->path == NULL) {
        call_fail_early(call, RPC_STATUS_UNIMPLEMENTED, "missing :path", "200");
        return;
    }
    call->method = server_find(s, call->path);
    if (call->method == NULL) {
        server_unknown_message(s, call->path, msg, sizeof msg);
        call_fail_early(call, RPC_STATUS_UNIMPLEMENTED, msg, "200");
        return;
    }
    call->state = CALL_BODY;
    if (call->have_timeout) {
        call->has_deadline = true;
        call->deadline = uv_now(s->loop) + call->timeout_ms;
        uv_timer_start(&call->timer, call_deadline, call->timeout_ms, 0);
    } else if (s->limits.receive_timeout_ms > 0) {
        /* A request that never ends would hold a stream and its bytes
         * forever; dispatch stops this timer. */
        uv_timer_start(&call->timer, call_receive_timeout,
                       s->limits.receive_timeout_ms, 0);
    }
}

/* h2 callback: request body bytes. */
static void conn_data(void *data, void *stream, const uint8_t *p, size_t len)
{
    struct rpc__conn *conn = data;
    struct rpc_server *s = conn->server;
    struct rpc_call *call = stream;
    struct rpc_frame_msg m;
    char msg[128];
    bool done;
    long n;

    while (len > 0 && call->state == CALL_BODY) {
        if (call->have_msg) {
            call_fail_early(call, RPC_STATUS_INTERNAL,
                            "grpc: received more than one request message "
                            "for a unary method",
                            "200");
            return;
        }
        if (conn->buffered + len > s->limits.max_conn_buffered) {
            call_fail_early(call, RPC_STATUS_RESOURCE_EXHAUSTED,
                            "connection buffer limit exceeded", "200");
            return;
        }
        if (s->buffered + len > s->limits.max_server_buffered) {
            call_fail_early(call, RPC_STATUS_RESOURCE_EXHAUSTED,
                            "server buffer limit exceeded", "200");
            return;
        }
        n = rpc_frame_decoder_feed(&call->dec, p, len, &m, &done);
        if (n == -EMSGSIZE) {
            snprintf(msg, sizeof msg,
                     "grpc: received message larger than max (%u vs. %u)",
                     rpc_frame_decoder_announced(&call->dec),
                     s->limits.max_message);
            call_fail_early(call, RPC_STATUS_RESOURCE_EXHAUSTED, msg, "200");
            return;
        }
        if (n < 0) {
            call_fail_early(
                call, RPC_STATUS_INTERNAL,
                n == -ENOMEM ? "out of memory" : "grpc: invalid message flags",
                "200");
            return;
        }
        conn->buffered += (size_t)n;
        s->buffered += (size_t)n;
        call->held += (size_t)n;
        p += n;
        len -= (size_t)n;
        if (done) {
            call->msg = m;
            call->have_msg = true;
            if (m.compressed) {
                call_fail_early(call, RPC_STATUS_INTERNAL,
                                "grpc: compressed flag set with identity or "
                                "empty encoding",
                                "200");
                return;
            }
        }
    }
}

static void call_dispatch(struct rpc_call *call)
{
    const struct rpc__method *m = call->method;
    struct goulette_buf req = call->msg.body;
    ProtobufCMessage *pb;
    char msg[96];

    call->state = CALL_DISPATCHED;
    call->refs++; /* the handler's */
    if (!call->has_deadline) {
        uv_timer_stop(&call->timer); /* the receive timeout */
    }
    if (call->conn != NULL) {
        call->conn->buffered -= call->held;
        call->conn->server->buffered -= call->held;
    }
    call->held = 0;
    /* Take the body out of the call: the handler may finish (and free) the
     * call before returning. */
    call->have_msg = false;
    if (!m->pb) {
        m->raw.handle(m->raw.data, call, &req);
        free(req.base);
        return;
    }
    pb = protobuf_c_message_unpack(m->typed.request, NULL, req.len, req.base);
    free(req.base);
    if (pb == NULL) {
        snprintf(msg, sizeof msg,
                 "grpc: error unmarshalling request: malformed %s",
                 m->typed.request->name);
        (void)rpc_call_fail(call, RPC_STATUS_INTERNAL, msg);
        return;
    }
    m->typed.handle(m->typed.data, call, pb);
    protobuf_c_message_free_unpacked(pb, NULL);
}

/* h2 callback: the client finished sending. */
static void conn_end_stream(void *data, void *stream)
{
    struct rpc_call *call = stream;

    call->request_ended = true;
    if (call->state != CALL_BODY) {
        return;
    }
    if (rpc_frame_decoder_partial(&call->dec)) {
        call_fail_early(call, RPC_STATUS_INTERNAL,
                        "grpc: request ended inside a message", "200");
        return;
    }
    if (!call->have_msg) {
        call_fail_early(call, RPC_STATUS_INTERNAL,
                        "grpc: no request message for a unary method", "200");
        return;
    }
    call_dispatch(call);
}

/* h2 callback: the stream is closed (answered, or reset by either side). */
static void conn_stream_close(void *data, void *stream, uint32_t code)
{
    call_detach(stream);
}

static void conn_goaway(struct rpc__conn *conn, const char *why)
{
    goulette_logf(conn->server->log, GOULETTE_LOG_WARN, "rpc",
                  "GOAWAY to a client: %s", why);
    rpc__h2_goaway(conn->h2, RPC__H2_ENHANCE_YOUR_CALM);
}

/* h2 callback: meter frames that cost us work without a request. */
static void conn_frame(void *data, enum rpc__h2_frame kind)
{
    struct rpc__conn *conn = data;
    uint64_t now = uv_now(conn->server->loop);

    if (rpc__h2_draining(conn->h2)) {
        return;
    }
    switch (kind) {
    case RPC__H2_FRAME_PING:
        if (!rpc_wire_bucket_take(&conn->pings, now)) {
            conn_goaway(conn, "PING flood");
        }
        break;
    case RPC__H2_FRAME_SETTINGS:
        if (!rpc_wire_bucket_take(&conn->settings, now)) {
            conn_goaway(conn, "SETTINGS flood");
        }
        break;
    case RPC__H2_FRAME_RST_STREAM:
        if (!rpc_wire_bucket_take(&conn->resets, now)) {
            conn_goaway(conn, "RST_STREAM flood");
        }
        break;
    case RPC__H2_FRAME_EMPTY_DATA:
        if (!rpc_wire_bucket_take(&conn->empties, now)) {
            conn_goaway(conn, "empty DATA flood");
        }
        break;
    default:
        break;
    }
}

static const struct rpc__h2_callbacks conn_h2_callbacks = {
    .begin_stream = conn_begin_stream,
    .header = conn_header,
    .headers_end = conn_headers_end,
    .data = conn_data,
    .end_stream = conn_end_stream,
    .stream_close = conn_stream_close,
    .frame = conn_frame,
};

/* ------------------------------------------------------------------ */
/* Connections                                                          */

static void conn_handle_closed(uv_handle_t *h)
{
    struct rpc__conn *conn = h->data;
    struct rpc_server *s = conn->server;

    if (--conn->open_handles > 0) {
        return;
    }
    /* Freed here, not in conn_close: conn_close may run inside a session
     * callback (a handler closing the server), with nghttp2 on the stack. */
    rpc__h2_free(conn->h2);
    conn->h2 = NULL;
    rpc__pump_fini(&conn->pump);
    if (conn->prev != NULL) {
        conn->prev->next = conn->next;
    } else {
        s->conns = conn->next;
    }
    if (conn->next != NULL) {
        conn->next->prev = conn->prev;
    }
    s->nconns--;
    s->handles--;
    free(conn);
    server_maybe_done(s);
}

static void conn_close(struct rpc__conn *conn)
{
    if (conn->closing) {
        return;
    }
    conn->closing = true;
    rpc__pump_stop(&conn->pump);
    while (conn->calls != NULL) {
        call_detach(conn->calls);
    }
    conn->tcp.data = conn;
    uv_close((uv_handle_t *)&conn->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&conn->idle, conn_handle_closed);
}

static void conn_pump_done(struct rpc__pump *pump, int rv)
{
    struct rpc__conn *conn = pump->owner;

    if (rv != 0) {
        goulette_logf(conn->server->log, GOULETTE_LOG_DEBUG, "rpc",
                      "connection closed: %s", goulette_strerror(rv));
    }
    conn_close(conn);
}

static void conn_activity(struct rpc__pump *pump)
{
    struct rpc__conn *conn = pump->owner;

    conn->last_active = uv_now(conn->server->loop);
}

static const struct rpc__pump_callbacks conn_pump_callbacks = {
    .done = conn_pump_done,
    .activity = conn_activity,
};

static void conn_idle_tick(uv_timer_t *t)
{
    struct rpc__conn *conn = t->data;
    uint64_t now = uv_now(conn->server->loop);

    if (conn->closing || rpc__h2_draining(conn->h2)) {
        return;
    }
    if (conn->calls == NULL &&
        now - conn->last_active >= conn->server->limits.idle_timeout_ms) {
        rpc__h2_goaway(conn->h2, RPC__H2_NO_ERROR);
        rpc__pump_flush(&conn->pump);
    }
}

static void server_accept(uv_stream_t *listener, int status)
{
    struct rpc_server *s = listener->data;
    const struct rpc_limits *l = &s->limits;
    struct rpc__h2_config hc;
    struct rpc__conn *conn;
    uint64_t now = uv_now(s->loop);
    int rv;

    if (status != 0 || s->closing) {
        return;
    }
    conn = calloc(1, sizeof *conn);
    if (conn == NULL) {
        return; /* the connection stays in the backlog until next time */
    }
    conn->server = s;
    uv_tcp_init(s->loop, &conn->tcp);
    uv_timer_init(s->loop, &conn->idle);
    conn->open_handles = 2;
    conn->tcp.data = conn;
    conn->idle.data = conn;
    conn->next = s->conns;
    if (s->conns != NULL) {
        s->conns->prev = conn;
    }
    s->conns = conn;
    s->nconns++;
    s->handles++;
    conn->last_active = now;
    rpc_wire_bucket_init(&conn->pings, l->ping_burst, l->ping_per_sec, now);
    rpc_wire_bucket_init(&conn->settings, l->settings_burst,
                         l->settings_per_sec, now);
    rpc_wire_bucket_init(&conn->resets, l->reset_burst, l->reset_per_sec, now);
    rpc_wire_bucket_init(&conn->empties, l->empty_burst, l->empty_per_sec, now);

    rv = uv_accept(listener, (uv_stream_t *)&conn->tcp);
    if (rv != 0 || s->nconns > l->max_connections) {
        goulette_logf(s->log, GOULETTE_LOG_WARN, "rpc",
                      "refusing a connection: %s",
                      rv != 0 ? uv_strerror(rv) : "too many connections");
        goto err_close;
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    hc.server = true;
    hc.max_concurrent_streams = l->max_concurrent_streams;
    hc.max_header_list = l->max_header_list;
    hc.cb = &conn_h2_callbacks;
    hc.data = conn;
    rv = rpc__h2_new(&hc, &conn->h2);
    if (rv != 0) {
        goto err_close;
    }
    rpc__pump_init(&conn->pump, &conn->tcp, conn->h2, &conn_pump_callbacks,
                   conn, s->rbuf, RPC_READ_BUF, l->max_conn_buffered);
    if (l->idle_timeout_ms > 0) {
        uint64_t tick = l->idle_timeout_ms / 4 ? l->idle_timeout_ms / 4 : 1;
        uv_timer_start(&conn->idle, conn_idle_tick, tick, tick);
    }
    rpc__pump_start(&conn->pump);
    return;

err_close:
    conn->closing = true;
    uv_close((uv_handle_t *)&conn->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&conn->idle, conn_handle_closed);
}

/* ------------------------------------------------------------------ */
/* Public API                                                           */

int rpc_server_init(struct rpc_server *s, const struct rpc_server_config *cfg)
{
    const char *host = cfg->host != NULL ? cfg->host : "127.0.0.1";
    int rv;

    if (cfg->loop == NULL || strlen(host) >= sizeof s->host) {
        return -EINVAL;
    }
    memset(s, 0, sizeof *s);
    s->loop = cfg->loop;
    s->log = cfg->log;
    s->limits = cfg->limits;
    if (s->limits.max_message == 0) {
        rpc_limits_default(&s->limits);
    }
    snprintf(s->host, sizeof s->host, "%s", host);
    s->port = cfg->port;
    s->rbuf = malloc(RPC_READ_BUF);
    if (s->rbuf == NULL) {
        return -ENOMEM;
    }
    rv = uv_tcp_init(s->loop, &s->listener);
    if (rv != 0) {
        free(s->rbuf);
        s->rbuf = NULL;
        return rv;
    }
    s->listener.data = s;
    s->handles = 1;
    return 0;
}

static int server_add(struct rpc_server *s,
                      const char *method,
                      struct rpc__method *m)
{
    const char *slash;
    struct rpc__method *grown;

    if (method == NULL || method[0] != '/') {
        return -EINVAL;
    }
    slash = strrchr(method + 1, '/');
    if (slash == NULL || slash == method + 1 || slash[1] == '\0') {
        return -EINVAL;
    }
    if (server_find(s, method) != NULL) {
        return -EEXIST;
    }
    grown = realloc(s->methods, (s->nmethods + 1) * sizeof *grown);
    if (grown == NULL) {
        return -ENOMEM;
    }
    s->methods = grown;
    m->name = strdup(method);
    if (m->name == NULL) {
        return -ENOMEM;
    }
    m->name_len = strlen(method);
    s->methods[s->nmethods++] = *m;
    return 0;
}

int rpc_server_register(struct rpc_server *s,
                        const char *method,
                        const struct rpc_handler *handler)
{
    struct rpc__method m;

    memset(&m, 0, sizeof m);
    m.raw = *handler;
    return server_add(s, method, &m);
}

int rpc_server_register_pb(struct rpc_server *s,
                           const char *method,
                           const struct rpc_pb_handler *handler)
{
    struct rpc__method m;

    memset(&m, 0, sizeof m);
    m.pb = true;
    m.typed = *handler;
    return server_add(s, method, &m);
}

int rpc_server_start(struct rpc_server *s)
{
    struct sockaddr_storage ss;
    struct sockaddr_storage bound;
    int len = sizeof bound;
    int rv;

    rv = uv_ip4_addr(s->host, s->port, (struct sockaddr_in *)&ss);
    if (rv != 0) {
        rv = uv_ip6_addr(s->host, s->port, (struct sockaddr_in6 *)&ss);
        if (rv != 0) {
            return -EINVAL;
        }
    }
    rv = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
    if (rv != 0) {
        return rv;
    }
    rv = uv_listen((uv_stream_t *)&s->listener, 128, server_accept);
    if (rv != 0) {
        return rv;
    }
    rv = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
    if (rv == 0) {
        if (bound.ss_family == AF_INET) {
            s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        } else {
            s->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
        }
    }
    s->listening = true;
    goulette_logf(s->log, GOULETTE_LOG_INFO, "rpc", "gRPC on %s:%u", s->host,
                  (unsigned)s->port);
    return 0;
}

uint16_t rpc_server_port(const struct rpc_server *s)
{
    return s->listening ? s->port : 0;
}

static void server_listener_closed(uv_handle_t *h)
{
    struct rpc_server *s = h->data;

    s->handles--;
    server_maybe_done(s);
}

void rpc_server_close(struct rpc_server *s,
                      void (*cb)(struct rpc_server *server))
{
    struct rpc__conn *c;
    size_t i;

    assert(!s->closing);
    s->closing = true;
    s->close_cb = cb;
    /* Closing connections stay on the list until their handles close. */
    for (c = s->conns; c != NULL; c = c->next) {
        conn_close(c);
    }
    for (i = 0; i < s->nmethods; i++) {
        free(s->methods[i].name);
    }
    free(s->methods);
    s->methods = NULL;
    s->nmethods = 0;
    uv_close((uv_handle_t *)&s->listener, server_listener_closed);
}

/* ------------------------------------------------------------------ */
/* Finishing calls                                                      */

const char *rpc_call_method(const struct rpc_call *call)
{
    return call->path != NULL ? call->path : "";
}

bool rpc_call_alive(const struct rpc_call *call)
{
    return call->state == CALL_DISPATCHED && call->conn != NULL;
}

uint64_t rpc_call_remaining(const struct rpc_call *call, uint64_t now_ms)
{
    if (!call->has_deadline) {
        return UINT64_MAX;
    }
    return now_ms >= call->deadline ? 0 : call->deadline - now_ms;
}

void rpc_call_on_cancel(struct rpc_call *call,
                        void (*cb)(void *data, struct rpc_call *call),
                        void *data)
{
    call->cancel_cb = cb;
    call->cancel_data = data;
}

static int call_send_reply(struct rpc_call *call, const void *body, size_t len)
{
    struct rpc__conn *conn = call->conn;
    struct rpc__h2_nv hdrs[2];
    struct rpc__h2_nv trailers[1];
    struct goulette_buf framed;
    struct goulette_buf in;
    int rv;

    framed.len = rpc_frame_encoded_len(len);
    framed.base = malloc(framed.len);
    if (framed.base == NULL) {
        return -ENOMEM;
    }
    in.base = (void *)(uintptr_t)body;
    in.len = len;
    (void)rpc_frame_encode(&in, framed.base, framed.len);
    hdrs[0] = nv_str(":status", "200");
    hdrs[1] = nv_str("content-type", "application/grpc");
    trailers[0] = nv_str("grpc-status", "0");
    rv = rpc__h2_respond(conn->h2, call->stream_id, hdrs, 2, &framed, trailers,
                         1);
    if (rv != 0) {
        free(framed.base);
        return rv;
    }
    rpc__pump_flush(&conn->pump);
    return 0;
}

/* Common end of reply/fail: drop the handler's reference. */
static int call_finish(struct rpc_call *call,
                       enum rpc_status status,
                       const char *message,
                       const void *body,
                       size_t len)
{
    int rv;

    if (call->state != CALL_DISPATCHED || call->conn == NULL) {
        call_unref(call);
        return -ECANCELED;
    }
    call->state = CALL_DONE;
    call->cancel_cb = NULL;
    uv_timer_stop(&call->timer);
    if (status == RPC_STATUS_OK) {
        rv = call_send_reply(call, body, len);
    } else {
        rv = call_send_status(call, status, message, "200");
    }
    if (rv != 0 && call->conn != NULL) {
        rpc__h2_reset(call->conn->h2, call->stream_id, RPC__H2_INTERNAL_ERROR);
        rpc__pump_flush(&call->conn->pump);
    }
    call_unref(call);
    assert(rv == 0 || rv == -ENOMEM || rv == -ENOENT || rv == -EINVAL);
    return rv == -ENOENT ? -ECANCELED : rv;
}

int rpc_call_reply(struct rpc_call *call, const struct goulette_buf *resp)
{
    return call_finish(call, RPC_STATUS_OK, NULL, resp->base, resp->len);
}

int rpc_call_reply_pb(struct rpc_call *call, const ProtobufCMessage *resp)
{
    size_t len = protobuf_c_message_get_packed_size(resp);
    uint8_t small[256];
    uint8_t *p = len <= sizeof small ? small : malloc(len);
    int rv;

    if (p == NULL) {
        (void)call_finish(call, RPC_STATUS_RESOURCE_EXHAUSTED, "out of memory",
                          NULL, 0);
        return -ENOMEM;
    }
    protobuf_c_message_pack(resp, p);
    rv = call_finish(call, RPC_STATUS_OK, NULL, p, len);
    if (p != small) {
        free(p);
    }
    return rv;
}

int rpc_call_fail(struct rpc_call *call,
                  enum rpc_status status,
                  const char *message)
{
    if (status == RPC_STATUS_OK) {
        status = RPC_STATUS_UNKNOWN;
    }
    return call_finish(call, status, message, NULL, 0);
}
