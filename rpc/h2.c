/* HTTP/2 driver over nghttp2 (h2.h): owns the nghttp2 session, the
 * per-stream wrapper that carries the owner's pointer and the response body
 * being sent, and the NGHTTP2_ERR_* -> errno boundary.  Protocol decisions
 * (what to answer, when to give up on a peer) belong to server.c/client.c.
 *
 * Invariant: every stream this module knows of has one struct h2_stream,
 * linked in h2->streams, set as nghttp2's stream user data, and freed by
 * on_stream_close or rpc__h2_free (nghttp2_session_del makes no stream close
 * callbacks). */
#include "h2.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

struct h2_stream
{
    struct h2_stream *prev, *next; /* in h2->streams */
    int32_t id;                    /* nghttp2 stream id, -1 until known */
    void *owner;                   /* the owner's pointer; NULL: detached */
    struct goulette_buf body;      /* response/request body; owned */
    size_t body_off;               /* bytes of body handed to nghttp2 */
    nghttp2_nv *trailers;          /* owned block with names and values */
    size_t ntrailers;
};

struct rpc__h2
{
    nghttp2_session *session;
    struct rpc__h2_callbacks cb; /* copy of the config's */
    void *data;                  /* the config's data */
    bool server;
    bool goaway;               /* GOAWAY sent or received */
    struct h2_stream *streams; /* list of live wrappers */
    size_t nstreams;
};

/* The one NGHTTP2_ERR_* -> errno conversion. */
static int h2_errno(int rv)
{
    switch (rv) {
    case NGHTTP2_ERR_NOMEM:
        return -ENOMEM;
    case NGHTTP2_ERR_FLOODED:
        return -ENOBUFS;
    case NGHTTP2_ERR_INVALID_ARGUMENT:
        return -EINVAL;
    case NGHTTP2_ERR_STREAM_CLOSED:
    case NGHTTP2_ERR_STREAM_CLOSING:
    case NGHTTP2_ERR_INVALID_STREAM_ID:
    case NGHTTP2_ERR_INVALID_STREAM_STATE:
        return -ENOENT;
    case NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE:
    case NGHTTP2_ERR_SESSION_CLOSING:
    case NGHTTP2_ERR_START_STREAM_NOT_ALLOWED:
        return -EAGAIN;
    default:
        return -EPROTO;
    }
}

static void h2_stream_free(struct rpc__h2 *h2, struct h2_stream *s)
{
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        h2->streams = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    h2->nstreams--;
    free(s->body.base);
    free(s->trailers);
    free(s);
}

static struct h2_stream *h2_stream_new(struct rpc__h2 *h2, void *owner)
{
    struct h2_stream *s = calloc(1, sizeof *s);

    if (s == NULL) {
        return NULL;
    }
    s->id = -1;
    s->owner = owner;
    s->next = h2->streams;
    if (h2->streams != NULL) {
        h2->streams->prev = s;
    }
    h2->streams = s;
    h2->nstreams++;
    return s;
}

static struct h2_stream *h2_stream_get(struct rpc__h2 *h2, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h2->session, id);
}

static int on_begin_headers(nghttp2_session *session,
                            const nghttp2_frame *frame,
                            void *user_data)
{
    struct rpc__h2 *h2 = user_data;
    struct h2_stream *s;
    void *owner = NULL;
    int rv;

    if (!h2->server || frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    rv = h2->cb.begin_stream(h2->data, frame->hd.stream_id, &owner);
    if (rv != 0) {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE,
                                  frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    s = h2_stream_new(h2, owner);
    if (s == NULL) {
        h2->cb.stream_close(h2->data, owner, NGHTTP2_INTERNAL_ERROR);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    s->id = frame->hd.stream_id;
    nghttp2_session_set_stream_user_data(session, s->id, s);
    return 0;
}

static int on_header(nghttp2_session *session,
                     const nghttp2_frame *frame,
                     const uint8_t *name,
                     size_t namelen,
                     const uint8_t *value,
                     size_t valuelen,
                     uint8_t flags,
                     void *user_data)
{
    struct rpc__h2 *h2 = user_data;
    struct h2_stream *s = h2_stream_get(h2, frame->hd.stream_id);
    struct rpc__h2_nv nv;

    if (s == NULL || s->owner == NULL) {
        return 0;
    }
    nv.name = (const char *)name;
    nv.name_len = namelen;
    nv.value = (const char *)value;
    nv.value_len = valuelen;
    if (h2->cb.header(h2->data, s->owner, &nv) != 0) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

static void h2_metered(struct rpc__h2 *h2, const nghttp2_frame *frame)
{
    enum rpc__h2_frame kind = RPC__H2_FRAME_OTHER;

    switch (frame->hd.type) {
    case NGHTTP2_PING:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
            kind = RPC__H2_FRAME_PING;
        }
        break;
    case NGHTTP2_SETTINGS:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
            kind = RPC__H2_FRAME_SETTINGS;
        }
        break;
    case NGHTTP2_RST_STREAM:
        kind = RPC__H2_FRAME_RST_STREAM;
        break;
    case NGHTTP2_GOAWAY:
        h2->goaway = true;
        kind = RPC__H2_FRAME_GOAWAY;
        break;
    case NGHTTP2_DATA:
        if (frame->hd.length == 0 &&
            (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) {
            kind = RPC__H2_FRAME_EMPTY_DATA;
        }
        break;
    default:
        break;
    }
    h2->cb.frame(h2->data, kind);
}

static int on_frame_recv(nghttp2_session *session,
                         const nghttp2_frame *frame,
                         void *user_data)
{
    struct rpc__h2 *h2 = user_data;
    struct h2_stream *s;

    h2_metered(h2, frame);
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) {
        return 0;
    }
    s = h2_stream_get(h2, frame->hd.stream_id);
    if (s == NULL || s->owner == NULL) {
        return 0;
    }
    if (frame->hd.type == NGHTTP2_HEADERS) {
        h2->cb.headers_end(h2->data, s->owner);
    }
    /* The owner may have detached in headers_end: look again. */
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0 && s->owner != NULL) {
        h2->cb.end_stream(h2->data, s->owner);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *session,
                         uint8_t flags,
                         int32_t stream_id,
                         const uint8_t *data,
                         size_t len,
                         void *user_data)
{
    struct rpc__h2 *h2 = user_data;
    struct h2_stream *s = h2_stream_get(h2, stream_id);

    if (s == NULL || s->owner == NULL) {
        return 0;
    }
    h2->cb.data(h2->data, s->owner, data, len);
    return 0;
}

static int on_stream_close(nghttp2_session *session,
                           int32_t stream_id,
                           uint32_t error_code,
                           void *user_data)
{
    struct rpc__h2 *h2 = user_data;
    struct h2_stream *s = h2_stream_get(h2, stream_id);

    if (s == NULL) {
        return 0;
    }
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    if (s->owner != NULL) {
        h2->cb.stream_close(h2->data, s->owner, error_code);
    }
    h2_stream_free(h2, s);
    return 0;
}

static int on_frame_send(nghttp2_session *session,
                         const nghttp2_frame *frame,
                         void *user_data)
{
    struct rpc__h2 *h2 = user_data;

    nghttp2_stream *stream;

    if (frame->hd.type == NGHTTP2_GOAWAY) {
        h2->goaway = true;
        return 0;
    }
    /* RFC 9113 §8.1: a server that completed its response before the
     * request ended asks the client to stop sending, without error. */
    if (h2->server &&
        (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
        stream = nghttp2_session_find_stream(session, frame->hd.stream_id);
        if (stream != NULL && nghttp2_stream_get_state(stream) ==
                                  NGHTTP2_STREAM_STATE_HALF_CLOSED_LOCAL) {
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE,
                                      frame->hd.stream_id, NGHTTP2_NO_ERROR);
        }
    }
    return 0;
}

/* Copies the body into nghttp2's frame buffer; at the end, queues the
 * trailers (which is how nghttp2 sends trailing HEADERS after DATA). */
static ssize_t body_read(nghttp2_session *session,
                         int32_t stream_id,
                         uint8_t *buf,
                         size_t length,
                         uint32_t *data_flags,
                         nghttp2_data_source *source,
                         void *user_data)
{
    struct h2_stream *s = source->ptr;
    size_t n = s->body.len - s->body_off;
    int rv;

    if (n > length) {
        n = length;
    }
    if (n > 0) {
        memcpy(buf, (const uint8_t *)s->body.base + s->body_off, n);
        s->body_off += n;
    }
    if (s->body_off < s->body.len) {
        return (ssize_t)n;
    }
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    if (s->ntrailers > 0) {
        *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        rv = nghttp2_submit_trailer(session, stream_id, s->trailers,
                                    s->ntrailers);
        if (rv != 0) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
    }
    return (ssize_t)n;
}

int rpc__h2_new(const struct rpc__h2_config *cfg, struct rpc__h2 **out)
{
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    struct rpc__h2 *h2 = NULL;
    nghttp2_settings_entry iv[3];
    size_t niv = 0;
    int rv;

    h2 = calloc(1, sizeof *h2);
    if (h2 == NULL) {
        rv = -ENOMEM;
        goto err;
    }
    h2->cb = *cfg->cb;
    h2->data = cfg->data;
    h2->server = cfg->server;
    if (nghttp2_session_callbacks_new(&cbs) != 0 ||
        nghttp2_option_new(&opt) != 0) {
        rv = -ENOMEM;
        goto err_free;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs,
                                                            on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs,
                                                              on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs,
                                                           on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    /* Bounds on what a peer can make us queue or process (the settings
     * flood, rapid reset (CVE-2023-44487), CONTINUATION flood
     * (CVE-2024-28182)); server.c meters PING/SETTINGS/RST rates on top. */
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
    nghttp2_option_set_max_continuations(opt, 8);
    if (cfg->server) {
        rv = nghttp2_session_server_new2(&h2->session, cbs, h2, opt);
    } else {
        rv = nghttp2_session_client_new2(&h2->session, cbs, h2, opt);
    }
    if (rv != 0) {
        rv = h2_errno(rv);
        goto err_free;
    }
    iv[niv].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
    iv[niv++].value = cfg->max_concurrent_streams;
    iv[niv].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE;
    iv[niv++].value = cfg->max_header_list;
    if (!cfg->server) {
        iv[niv].settings_id = NGHTTP2_SETTINGS_ENABLE_PUSH;
        iv[niv++].value = 0;
    }
    rv = nghttp2_submit_settings(h2->session, NGHTTP2_FLAG_NONE, iv, niv);
    if (rv != 0) {
        rv = h2_errno(rv);
        goto err_session;
    }
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    *out = h2;
    return 0;

err_session:
    nghttp2_session_del(h2->session);
err_free:
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    free(h2);
err:
    assert(rv == -ENOMEM || rv == -EINVAL || rv == -EPROTO);
    return rv;
}

void rpc__h2_free(struct rpc__h2 *h2)
{
    if (h2 == NULL) {
        return;
    }
    nghttp2_session_del(h2->session);
    while (h2->streams != NULL) {
        h2_stream_free(h2, h2->streams);
    }
    free(h2);
}

long rpc__h2_recv(struct rpc__h2 *h2, const void *p, size_t len)
{
    ssize_t rv = nghttp2_session_mem_recv(h2->session, p, len);

    if (rv < 0) {
        return h2_errno((int)rv);
    }
    return (long)rv;
}

long rpc__h2_send(struct rpc__h2 *h2, const uint8_t **p)
{
    ssize_t rv = nghttp2_session_mem_send(h2->session, p);

    if (rv < 0) {
        return h2_errno((int)rv);
    }
    return (long)rv;
}

bool rpc__h2_want_read(const struct rpc__h2 *h2)
{
    return nghttp2_session_want_read(h2->session) != 0;
}

bool rpc__h2_want_write(const struct rpc__h2 *h2)
{
    return nghttp2_session_want_write(h2->session) != 0;
}

/* Convert @n fields into one allocation holding the nghttp2_nv array and
 * copies of every name and value (nghttp2 copies too, but trailers are
 * submitted later, from body_read). */
static nghttp2_nv *h2_nv_copy(const struct rpc__h2_nv *src, size_t n)
{
    size_t size = n * sizeof(nghttp2_nv);
    nghttp2_nv *nv;
    uint8_t *p;
    size_t i;

    for (i = 0; i < n; i++) {
        size += src[i].name_len + src[i].value_len;
    }
    nv = malloc(size > 0 ? size : 1);
    if (nv == NULL) {
        return NULL;
    }
    p = (uint8_t *)(nv + n);
    for (i = 0; i < n; i++) {
        memcpy(p, src[i].name, src[i].name_len);
        nv[i].name = p;
        nv[i].namelen = src[i].name_len;
        p += src[i].name_len;
        memcpy(p, src[i].value, src[i].value_len);
        nv[i].value = p;
        nv[i].valuelen = src[i].value_len;
        p += src[i].value_len;
        nv[i].flags = NGHTTP2_NV_FLAG_NONE;
    }
    return nv;
}

/* Borrowing view of @n fields for a submit call that copies them.  @tmp
 * must hold @n entries. */
static void h2_nv_view(const struct rpc__h2_nv *src, size_t n, nghttp2_nv *tmp)
{
    size_t i;

    for (i = 0; i < n; i++) {
        tmp[i].name = (uint8_t *)(uintptr_t)src[i].name;
        tmp[i].namelen = src[i].name_len;
        tmp[i].value = (uint8_t *)(uintptr_t)src[i].value;
        tmp[i].valuelen = src[i].value_len;
        tmp[i].flags = NGHTTP2_NV_FLAG_NONE;
    }
}

#define H2_MAX_FIELDS 16

int rpc__h2_respond(struct rpc__h2 *h2,
                    int32_t stream_id,
                    const struct rpc__h2_nv *hdrs,
                    size_t n,
                    struct goulette_buf *body,
                    const struct rpc__h2_nv *trailers,
                    size_t nt)
{
    struct h2_stream *s = h2_stream_get(h2, stream_id);
    nghttp2_nv nv[H2_MAX_FIELDS];
    nghttp2_data_provider prd;
    int rv;

    if (n > H2_MAX_FIELDS) {
        return -EINVAL;
    }
    if (s == NULL) {
        return -ENOENT;
    }
    h2_nv_view(hdrs, n, nv);
    if (body == NULL && nt == 0) {
        rv = nghttp2_submit_response(h2->session, stream_id, nv, n, NULL);
        return rv == 0 ? 0 : h2_errno(rv);
    }
    if (s->body.base != NULL || s->trailers != NULL) {
        return -EINVAL; /* one response per stream */
    }
    if (nt > 0) {
        s->trailers = h2_nv_copy(trailers, nt);
        if (s->trailers == NULL) {
            return -ENOMEM;
        }
        s->ntrailers = nt;
    }
    prd.source.ptr = s;
    prd.read_callback = body_read;
    rv = nghttp2_submit_response(h2->session, stream_id, nv, n, &prd);
    if (rv != 0) {
        free(s->trailers);
        s->trailers = NULL;
        s->ntrailers = 0;
        return h2_errno(rv);
    }
    if (body != NULL) {
        s->body = *body;
        s->body_off = 0;
    }
    return 0;
}

long rpc__h2_request(struct rpc__h2 *h2,
                     const struct rpc__h2_nv *hdrs,
                     size_t n,
                     struct goulette_buf *body,
                     void *stream)
{
    nghttp2_nv nv[H2_MAX_FIELDS];
    nghttp2_data_provider prd;
    struct h2_stream *s;
    int32_t id;

    if (n > H2_MAX_FIELDS) {
        return -EINVAL;
    }
    if (h2->goaway) {
        return -EAGAIN;
    }
    s = h2_stream_new(h2, stream);
    if (s == NULL) {
        return -ENOMEM;
    }
    h2_nv_view(hdrs, n, nv);
    prd.source.ptr = s;
    prd.read_callback = body_read;
    id = nghttp2_submit_request(h2->session, NULL, nv, n, &prd, s);
    if (id < 0) {
        h2_stream_free(h2, s);
        return h2_errno(id);
    }
    s->id = id;
    if (body != NULL) {
        s->body = *body;
    }
    return id;
}

void rpc__h2_reset(struct rpc__h2 *h2, int32_t stream_id, uint32_t code)
{
    /* Fails only for a stream already gone, which is what we want. */
    (void)nghttp2_submit_rst_stream(h2->session, NGHTTP2_FLAG_NONE, stream_id,
                                    code);
}

void rpc__h2_detach(struct rpc__h2 *h2, int32_t stream_id)
{
    struct h2_stream *s = h2_stream_get(h2, stream_id);

    if (s != NULL) {
        s->owner = NULL;
    }
}

void rpc__h2_goaway(struct rpc__h2 *h2, uint32_t code)
{
    h2->goaway = true;
    (void)nghttp2_session_terminate_session(h2->session, code);
}

bool rpc__h2_draining(const struct rpc__h2 *h2)
{
    return h2->goaway;
}

size_t rpc__h2_streams(const struct rpc__h2 *h2)
{
    return h2->nstreams;
}
