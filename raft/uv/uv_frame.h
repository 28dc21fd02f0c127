/* Peer wire framing: the frame header, the incremental frame decoder and the
 * handshake / acknowledgement payloads.  Pure: no I/O, no libuv, no clock.
 * It does not own the Raft message encoding (uv_codec.c) nor connections
 * (uv_transport.c).  The wire format is documented in docs/transport.md.
 *
 * A frame is [u32 length][u8 kind][payload], length = payload bytes, big
 * endian.  The decoder accepts the stream in arbitrary splits:
 *
 *     struct raft_uv__frame f;
 *     while (len > 0) {
 *         n = raft_uv__frame_decoder_feed(&d, p, len, &f);
 *         if (n < 0) -> error: close the connection
 *         p += n; len -= n;
 *         if (f.kind != 0) -> a frame is complete; f.payload is taken
 *     }
 */
#ifndef GOULETTE_RAFT_UV_FRAME_H
#define GOULETTE_RAFT_UV_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include <goulette/buf.h>
#include <goulette/raft.h>

#define RAFT_UV_FRAME_HEADER 5 /* bytes: u32 length + u8 kind */

enum raft_uv_frame_kind {
    RAFT_UV_FRAME_HANDSHAKE = 1, /* dialer -> acceptor, first frame */
    RAFT_UV_FRAME_ACK = 2,       /* acceptor -> dialer, answer to it */
    RAFT_UV_FRAME_MESSAGE = 3,   /* dialer -> acceptor: one raft_message */
    RAFT_UV_FRAME_APP = 4,       /* dialer -> acceptor: opaque payload of the
                                    application (raft_uv_transport_send_app);
                                    members older than kind 4 refuse it */
};

#define RAFT_UV_FRAME_KIND_MAX 4

/* Handshake: "GRFT", version, flags, cluster id, from, to, address. */
#define RAFT_UV_HANDSHAKE_MAGIC 0x47524654u
#define RAFT_UV_PROTOCOL_VERSION 1
#define RAFT_UV_HANDSHAKE_FIXED 34 /* bytes before the address */
#define RAFT_UV_HANDSHAKE_MAX (RAFT_UV_HANDSHAKE_FIXED + RAFT_ADDRESS_MAX - 1)
#define RAFT_UV_ACK_SIZE 4 /* bytes: one big-endian i32 status */

struct raft_uv__handshake
{
    uint16_t version;               /* RAFT_UV_PROTOCOL_VERSION */
    uint64_t cluster_id;            /* the sender's cluster */
    raft_id from;                   /* sender member id, nonzero */
    raft_id to;                     /* intended receiver member id */
    char address[RAFT_ADDRESS_MAX]; /* sender's peer address, for logs;
                                       NUL-terminated, may be empty */
};

/* A completed frame, as handed out by the decoder. */
struct raft_uv__frame
{
    uint8_t kind;                /* enum raft_uv_frame_kind; 0: incomplete */
    struct goulette_buf payload; /* taken by the caller, who frees
                                    payload.base with free(); base may be
                                    NULL when len is 0 */
};

struct raft_uv__frame_decoder
{
    uint32_t max;                         /* largest payload accepted */
    uint8_t header[RAFT_UV_FRAME_HEADER]; /* partial header bytes */
    size_t header_len;                    /* bytes in header[] */
    uint8_t kind;                         /* of the frame being read */
    uint8_t *payload;                     /* owned; NULL between frames */
    size_t payload_len;                   /* bytes expected */
    size_t payload_got;                   /* bytes received so far */
};

/* Write the 5-byte header for a payload of @len bytes of @kind into @out. */
void raft_uv__frame_header(uint8_t out[RAFT_UV_FRAME_HEADER],
                           enum raft_uv_frame_kind kind,
                           uint32_t len);

/* Initialize @d to accept payloads of at most @max bytes. */
void raft_uv__frame_decoder_init(struct raft_uv__frame_decoder *d,
                                 uint32_t max);

/* Free a partially received payload. */
void raft_uv__frame_decoder_fini(struct raft_uv__frame_decoder *d);

/* Change the payload limit; it applies to frames whose header is not yet
 * complete. */
void raft_uv__frame_decoder_set_max(struct raft_uv__frame_decoder *d,
                                    uint32_t max);

/* Consume bytes from @data (@len > 0 bytes, borrowed) until one frame
 * completes or the input is used up.  @frame is out: its kind is 0 unless
 * a frame completed, in which case its payload is taken by the caller.
 * Returns the bytes consumed (>= 0).  After an error the decoder may only
 * be finalized.
 * Errors: -EMSGSIZE (length above the limit), -EBADMSG (unknown kind),
 * -ENOMEM. */
long raft_uv__frame_decoder_feed(struct raft_uv__frame_decoder *d,
                                 const void *data,
                                 size_t len,
                                 struct raft_uv__frame *frame);

/* Encode @h as a handshake payload into @out (RAFT_UV_HANDSHAKE_MAX
 * bytes).  Returns the payload length.  Errors: -EINVAL (address too long
 * or not NUL-terminated). */
long raft_uv__handshake_encode(const struct raft_uv__handshake *h,
                               uint8_t out[RAFT_UV_HANDSHAKE_MAX]);

/* Decode an untrusted handshake payload into @h (out).
 * Errors: -EBADMSG (bad magic, bad length, zero sender, NUL in address),
 * GOULETTE_EVERSION (another protocol version; h->version is set). */
int raft_uv__handshake_decode(const void *payload,
                              size_t len,
                              struct raft_uv__handshake *h);

/* Encode / decode the acknowledgement: 0 or a negative refusal code.
 * Decode errors: -EBADMSG (bad length, positive status). */
void raft_uv__ack_encode(int status, uint8_t out[RAFT_UV_ACK_SIZE]);
int raft_uv__ack_decode(const void *payload, size_t len, int *status);

#endif /* GOULETTE_RAFT_UV_FRAME_H */
