/* The HTTP/2 driver: the one module that includes the nghttp2 header.  It
 * wraps an nghttp2 session (server or client role) behind callbacks in our
 * own terms and translates NGHTTP2_ERR_* into negative errnos once.  It does
 * no I/O (bytes go in with rpc__h2_recv and come out of rpc__h2_send) and
 * makes no gRPC decisions: server.c and client.c do. */
#ifndef GOULETTE_RPC_H2_H
#define GOULETTE_RPC_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <goulette/buf.h>

struct rpc__h2;

/* HTTP/2 error codes (RFC 9113 §7) that we send. */
enum rpc__h2_code {
    RPC__H2_NO_ERROR = 0x0,
    RPC__H2_PROTOCOL_ERROR = 0x1,
    RPC__H2_INTERNAL_ERROR = 0x2,
    RPC__H2_REFUSED_STREAM = 0x7,
    RPC__H2_CANCEL = 0x8,
    RPC__H2_ENHANCE_YOUR_CALM = 0xb,
};

/* Frames reported to the owner for metering. */
enum rpc__h2_frame {
    RPC__H2_FRAME_PING,       /* a PING that is not an ACK */
    RPC__H2_FRAME_SETTINGS,   /* a SETTINGS that is not an ACK */
    RPC__H2_FRAME_RST_STREAM, /* the peer reset a stream */
    RPC__H2_FRAME_EMPTY_DATA, /* DATA with no payload and no END_STREAM */
    RPC__H2_FRAME_GOAWAY,     /* the peer is going away */
    RPC__H2_FRAME_OTHER,
};

/* One header field.  Borrowed in callbacks; copied by submit functions. */
struct rpc__h2_nv
{
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Callbacks from inside rpc__h2_recv() (and stream_close also from
 * rpc__h2_send()).  @data is the config's data.  @stream is the pointer the
 * owner attached to the stream (begin_stream's out, or submit_request's
 * @stream); callbacks for a stream whose pointer was detached are not made.
 * The owner may submit frames from inside a callback but must not call
 * rpc__h2_recv/rpc__h2_send/rpc__h2_free from one. */
struct rpc__h2_callbacks
{
    /* Server role: a client opened stream @stream_id.  Set *@stream, or
     * return a negative errno to refuse it (RST_STREAM REFUSED_STREAM). */
    int (*begin_stream)(void *data, int32_t stream_id, void **stream);
    /* One header field of the current header block (headers or trailers).
     * A negative return resets the stream with INTERNAL_ERROR. */
    int (*header)(void *data, void *stream, const struct rpc__h2_nv *nv);
    /* The header block is complete. */
    void (*headers_end)(void *data, void *stream);
    /* Payload bytes of a DATA frame (borrowed). */
    void (*data)(void *data, void *stream, const uint8_t *p, size_t len);
    /* The peer ended its side of the stream (END_STREAM). */
    void (*end_stream)(void *data, void *stream);
    /* The stream is closed; @code is the HTTP/2 error code (0 when it ended
     * normally).  The pointer is detached afterwards. */
    void (*stream_close)(void *data, void *stream, uint32_t code);
    /* A frame of @kind arrived, for metering. */
    void (*frame)(void *data, enum rpc__h2_frame kind);
};

struct rpc__h2_config
{
    bool server;                        /* server role, else client */
    uint32_t max_concurrent_streams;    /* advertised and enforced */
    uint32_t max_header_list;           /* advertised, bytes (RFC 9113 sizes) */
    const struct rpc__h2_callbacks *cb; /* borrowed for the session */
    void *data;                         /* passed to every callback */
};

/* Create a session and queue our SETTINGS (and, as client, nothing else:
 * the connection preface is emitted by the first rpc__h2_send).
 * @h2 is out: free it with rpc__h2_free().
 * Errors: -ENOMEM. */
int rpc__h2_new(const struct rpc__h2_config *cfg, struct rpc__h2 **h2);

/* Free the session (NULL is ignored).  Makes no callbacks: the owner
 * detaches its streams itself.  Bodies of responses not yet sent are freed.
 * Never from inside a session callback. */
void rpc__h2_free(struct rpc__h2 *h2);

/* Feed @len received bytes (borrowed).  Returns the bytes consumed.
 * Errors (the session is then unusable except for rpc__h2_send of a final
 * GOAWAY and rpc__h2_free):
 *   -EPROTO   the peer broke HTTP/2 (bad preface, bad frames);
 *   -ENOBUFS  the peer flooded us (too many frames to acknowledge);
 *   -ENOMEM. */
long rpc__h2_recv(struct rpc__h2 *h2, const void *p, size_t len);

/* Next bytes to write: sets *@p (valid until the next call into the
 * session) and returns their length, 0 when nothing is pending.
 * Errors: -ENOMEM, -EPROTO. */
long rpc__h2_send(struct rpc__h2 *h2, const uint8_t **p);

bool rpc__h2_want_read(const struct rpc__h2 *h2);
bool rpc__h2_want_write(const struct rpc__h2 *h2);

/* Server role: respond on @stream_id with header fields @hdrs (@n), then
 * @body (taken on success: freed with free() once sent or the stream
 * closes; may be NULL), then trailer fields @trailers (@nt, copied).  With
 * @body NULL and @nt 0, @hdrs is a trailers-only response ending the stream.
 * Errors: -ENOMEM, -ENOENT (no such open stream), -EINVAL. */
int rpc__h2_respond(struct rpc__h2 *h2,
                    int32_t stream_id,
                    const struct rpc__h2_nv *hdrs,
                    size_t n,
                    struct goulette_buf *body,
                    const struct rpc__h2_nv *trailers,
                    size_t nt);

/* Client role: open a stream with request headers @hdrs (@n, copied) and
 * @body (taken on success, freed with free()), which ends the stream.
 * @stream is attached to the stream for callbacks.  Returns the stream id.
 * Errors: -ENOMEM, -EAGAIN (no stream ids left or the peer is going
 * away), -EINVAL. */
long rpc__h2_request(struct rpc__h2 *h2,
                     const struct rpc__h2_nv *hdrs,
                     size_t n,
                     struct goulette_buf *body,
                     void *stream);

/* Reset @stream_id with @code (queued).  A stream already closed is
 * ignored. */
void rpc__h2_reset(struct rpc__h2 *h2, int32_t stream_id, uint32_t code);

/* Detach the owner's pointer from @stream_id: no further callbacks for it. */
void rpc__h2_detach(struct rpc__h2 *h2, int32_t stream_id);

/* Queue GOAWAY with @code; the session then stops reading and, once the
 * GOAWAY is written, wants nothing more. */
void rpc__h2_goaway(struct rpc__h2 *h2, uint32_t code);

/* True once either side sent or received GOAWAY: no new requests. */
bool rpc__h2_draining(const struct rpc__h2 *h2);

/* Number of streams the session holds open. */
size_t rpc__h2_streams(const struct rpc__h2 *h2);

#endif /* GOULETTE_RPC_H2_H */
