/* gRPC length-prefixed message framing: the incremental decoder and the
 * encoder declared in frame.h.  Owns nothing but the partial message it is
 * assembling; knows nothing of HTTP/2, streams or statuses.
 *
 * Decoder invariants: header_got < 5 while a header is being read; once it
 * reaches 5, body_len is valid and body_got counts towards it; both reset to
 * 0 when a message is handed out.  body_cap >= body_got and never exceeds
 * body_len, so memory follows the bytes received, not the bytes announced. */
#include "frame.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The first allocation for a body, and the growth step's floor. */
#define FRAME_MIN_CAP 256

static void *frame_realloc(struct rpc_frame_decoder *d, void *p, size_t n)
{
    if (d->alloc != NULL) {
        return d->alloc->realloc(d->alloc->data, p, n);
    }
    return realloc(p, n);
}

static void frame_free(struct rpc_frame_decoder *d, void *p)
{
    if (d->alloc != NULL) {
        d->alloc->free(d->alloc->data, p);
        return;
    }
    free(p);
}

void rpc_frame_decoder_init(struct rpc_frame_decoder *d,
                            uint32_t max_len,
                            const struct rpc_frame_alloc *alloc)
{
    memset(d, 0, sizeof *d);
    d->max_len = max_len;
    d->alloc = alloc;
}

void rpc_frame_decoder_fini(struct rpc_frame_decoder *d)
{
    if (d->body != NULL) {
        frame_free(d, d->body);
    }
    d->body = NULL;
    d->body_cap = 0;
    d->body_got = 0;
    d->header_got = 0;
}

bool rpc_frame_decoder_partial(const struct rpc_frame_decoder *d)
{
    return d->header_got > 0;
}

uint32_t rpc_frame_decoder_announced(const struct rpc_frame_decoder *d)
{
    return d->body_len;
}

void rpc_frame_decoder_release(struct rpc_frame_decoder *d,
                               struct rpc_frame_msg *msg)
{
    if (msg->body.base != NULL) {
        frame_free(d, msg->body.base);
    }
    msg->body.base = NULL;
    msg->body.len = 0;
}

/* Make room for @want more body bytes: double the buffer, but never past
 * the announced length. */
static int frame_reserve(struct rpc_frame_decoder *d, size_t want)
{
    size_t need = d->body_got + want;
    size_t cap = d->body_cap;
    void *p;

    if (need <= cap) {
        return 0;
    }
    if (cap < FRAME_MIN_CAP) {
        cap = FRAME_MIN_CAP;
    }
    while (cap < need) {
        cap *= 2;
    }
    if (cap > d->body_len) {
        cap = d->body_len;
    }
    p = frame_realloc(d, d->body, cap);
    if (p == NULL) {
        return -ENOMEM;
    }
    d->body = p;
    d->body_cap = cap;
    return 0;
}

/* Hand out the completed message and reset for the next header. */
static void frame_emit(struct rpc_frame_decoder *d, struct rpc_frame_msg *out)
{
    out->compressed = (d->header[0] & RPC_FRAME_FLAG_COMPRESSED) != 0;
    out->body.base = d->body;
    out->body.len = d->body_got;
    d->body = NULL;
    d->body_cap = 0;
    d->body_got = 0;
    d->header_got = 0;
    d->body_len = 0;
}

/* Validate a complete header.  Errors: -EBADMSG, -EMSGSIZE. */
static int frame_check_header(struct rpc_frame_decoder *d)
{
    const unsigned char *h = d->header;

    if ((h[0] & ~RPC_FRAME_FLAG_COMPRESSED) != 0) {
        return -EBADMSG;
    }
    d->body_len = ((uint32_t)h[1] << 24) | ((uint32_t)h[2] << 16) |
                  ((uint32_t)h[3] << 8) | (uint32_t)h[4];
    if (d->body_len > d->max_len) {
        return -EMSGSIZE;
    }
    return 0;
}

long rpc_frame_decoder_feed(struct rpc_frame_decoder *d,
                            const void *data,
                            size_t len,
                            struct rpc_frame_msg *out,
                            bool *done)
{
    const unsigned char *p = data;
    size_t used = 0;
    size_t n;
    int rv;

    *done = false;
    if (d->error != 0) {
        return d->error;
    }
    if (d->header_got < RPC_FRAME_HEADER_LEN) {
        n = RPC_FRAME_HEADER_LEN - d->header_got;
        if (n > len) {
            n = len;
        }
        memcpy(d->header + d->header_got, p, n);
        d->header_got += n;
        used += n;
        if (d->header_got < RPC_FRAME_HEADER_LEN) {
            return (long)used;
        }
        rv = frame_check_header(d);
        if (rv != 0) {
            goto err;
        }
    }
    n = d->body_len - d->body_got;
    if (n > len - used) {
        n = len - used;
    }
    if (n > 0) {
        rv = frame_reserve(d, n);
        if (rv != 0) {
            goto err;
        }
        memcpy(d->body + d->body_got, p + used, n);
        d->body_got += n;
        used += n;
    }
    if (d->body_got == d->body_len) {
        frame_emit(d, out);
        *done = true;
    }
    return (long)used;

err:
    assert(rv == -EBADMSG || rv == -EMSGSIZE || rv == -ENOMEM);
    d->error = rv;
    return rv;
}

void rpc_frame_header_encode(unsigned char out[RPC_FRAME_HEADER_LEN],
                             bool compressed,
                             uint32_t len)
{
    out[0] = compressed ? RPC_FRAME_FLAG_COMPRESSED : 0;
    out[1] = (unsigned char)(len >> 24);
    out[2] = (unsigned char)(len >> 16);
    out[3] = (unsigned char)(len >> 8);
    out[4] = (unsigned char)len;
}

size_t rpc_frame_encoded_len(size_t len)
{
    return RPC_FRAME_HEADER_LEN + len;
}

long rpc_frame_encode(const struct goulette_buf *body, void *out, size_t cap)
{
    unsigned char *o = out;

    if (body->len > UINT32_MAX) {
        return -EMSGSIZE;
    }
    if (cap < rpc_frame_encoded_len(body->len)) {
        return -ENOBUFS;
    }
    rpc_frame_header_encode(o, false, (uint32_t)body->len);
    if (body->len > 0) {
        memcpy(o + RPC_FRAME_HEADER_LEN, body->base, body->len);
    }
    return (long)rpc_frame_encoded_len(body->len);
}
