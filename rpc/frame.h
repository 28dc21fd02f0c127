/* gRPC length-prefixed message framing (the 5-byte header: a compressed
 * flag byte and a big-endian 32-bit length), as an incremental decoder that
 * accepts bytes in arbitrary pieces, and the matching encoder.
 *
 * Pure: no I/O, no clock, no HTTP/2.  The decoder never buffers more than
 * the bytes actually received, so a peer that announces a large message and
 * sends nothing costs nothing.  Loop-agnostic: any thread, one at a time. */
#ifndef GOULETTE_RPC_FRAME_H
#define GOULETTE_RPC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <goulette/buf.h>

#define RPC_FRAME_HEADER_LEN 5
#define RPC_FRAME_FLAG_COMPRESSED 0x01

/* Optional allocator, so tests can fail the Nth allocation.  NULL in the
 * decoder means malloc/realloc/free. */
struct rpc_frame_alloc
{
    void *(*realloc)(void *data, void *ptr, size_t size); /* like realloc */
    void (*free)(void *data, void *ptr);                  /* like free */
    void *data;                                           /* passed back */
};

/* One decoded message. */
struct rpc_frame_msg
{
    bool compressed;          /* the header's compressed flag was set */
    struct goulette_buf body; /* returned, caller frees with
                                 rpc_frame_decoder_release() */
};

struct rpc_frame_decoder
{
    uint32_t max_len;                    /* largest body accepted, bytes */
    const struct rpc_frame_alloc *alloc; /* borrowed, may be NULL */
    unsigned char header[RPC_FRAME_HEADER_LEN]; /* header bytes seen so far */
    size_t header_got;                          /* 0..5 */
    uint32_t body_len;                          /* announced length */
    unsigned char *body;                        /* owned; grows as bytes come */
    size_t body_cap;                            /* allocated bytes of body */
    size_t body_got;                            /* bytes of body received */
    int error;                                  /* sticky: first error, or 0 */
};

/* Initialise @d to accept messages of at most @max_len body bytes.
 * @alloc is borrowed for the decoder's lifetime (NULL: libc). */
void rpc_frame_decoder_init(struct rpc_frame_decoder *d,
                            uint32_t max_len,
                            const struct rpc_frame_alloc *alloc);

/* Free whatever a partial message holds.  @d may be initialised again. */
void rpc_frame_decoder_fini(struct rpc_frame_decoder *d);

/* Consume bytes from @data (@len bytes, borrowed) up to the end of at most
 * one message.  Returns the number of bytes consumed (0..@len).  When a
 * message completes, *@out is filled and *@done set to true; call again with
 * the rest of the input for further messages.  A zero-length message is a
 * valid message with body.base == NULL.
 *
 * Errors (sticky: every later call returns the same error):
 *   -EMSGSIZE  the header announces more than max_len bytes;
 *   -EBADMSG   the flag byte has bits other than the compressed bit;
 *   -ENOMEM    no memory for the body. */
long rpc_frame_decoder_feed(struct rpc_frame_decoder *d,
                            const void *data,
                            size_t len,
                            struct rpc_frame_msg *out,
                            bool *done);

/* True when bytes of an incomplete message are buffered (a header or body
 * started but not finished). */
bool rpc_frame_decoder_partial(const struct rpc_frame_decoder *d);

/* The announced length of the message being received (valid once its 5
 * header bytes arrived), for error messages. */
uint32_t rpc_frame_decoder_announced(const struct rpc_frame_decoder *d);

/* Free a body returned by rpc_frame_decoder_feed() with @d's allocator. */
void rpc_frame_decoder_release(struct rpc_frame_decoder *d,
                               struct rpc_frame_msg *msg);

/* Write the 5-byte header for a body of @len bytes into @out. */
void rpc_frame_header_encode(unsigned char out[RPC_FRAME_HEADER_LEN],
                             bool compressed,
                             uint32_t len);

/* Bytes needed to frame a body of @len bytes. */
size_t rpc_frame_encoded_len(size_t len);

/* Frame @body (borrowed) into @out (@cap bytes, out), which must hold
 * rpc_frame_encoded_len(body->len) bytes.  Returns the bytes written.
 *
 * Errors:
 *   -EMSGSIZE  the body exceeds UINT32_MAX bytes;
 *   -ENOBUFS   @cap is too small. */
long rpc_frame_encode(const struct goulette_buf *body, void *out, size_t cap);

#endif /* GOULETTE_RPC_FRAME_H */
