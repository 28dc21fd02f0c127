/* The Raft message codec of the peer transport: struct raft_message <->
 * protobuf-c bytes (raft.proto).  It owns the validation of decoded
 * messages, which come from the network and are never trusted; it does not
 * own framing (uv_frame.c) or connections (uv_transport.c).  No I/O. */
#ifndef GOULETTE_RAFT_UV_CODEC_H
#define GOULETTE_RAFT_UV_CODEC_H

#include <stddef.h>

#include <goulette/buf.h>
#include <goulette/raft.h>

/* Most entries one message may carry.  The core batches at most
 * max_append_bytes per AppendEntries, so this is far above real traffic. */
#define RAFT_UV_CODEC_MAX_ENTRIES 65536u

/* Check that @m is a well-formed message (the rules of docs/transport.md,
 * "Message validation").  Returns 0 or -EBADMSG. */
int raft_uv__codec_check(const struct raft_message *m);

/* Encode @m (borrowed) into a new buffer that starts with @headroom unused
 * bytes (room for a frame header) followed by the protobuf bytes.  @out is
 * returned: the caller frees out->base with free(); out->len includes the
 * headroom.  A RAFT_MSG_SNAPSHOT whose chunk data is still to be filled in
 * (data.base == NULL, data.len > 0) is refused.
 * Errors: -EINVAL (@m fails raft_uv__codec_check), -ENOMEM. */
int raft_uv__codec_encode(const struct raft_message *m,
                          size_t headroom,
                          struct goulette_buf *out);

/* Decode @len untrusted bytes at @data (borrowed) into @m (out).  On
 * success @m owns its entries array, every entry's data, and the snapshot
 * chunk's data and conf: release them with raft_uv__codec_fini().  On
 * error @m holds nothing to release.
 * Errors: -EBADMSG (not a valid Message, or fails raft_uv__codec_check),
 * -ENOMEM. */
int raft_uv__codec_decode(const void *data, size_t len, struct raft_message *m);

/* Free what raft_uv__codec_decode() allocated in @m and zero it. */
void raft_uv__codec_fini(struct raft_message *m);

#endif /* GOULETTE_RAFT_UV_CODEC_H */
