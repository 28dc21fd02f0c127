/* gRPC-over-HTTP/2 wire details that need no HTTP/2 library: grpc-timeout
 * parsing, grpc-message percent-encoding, content-type checks, and the
 * token bucket that meters abusive peers.  Pure: time comes in as an
 * argument; no I/O, no clock. */
#ifndef GOULETTE_RPC_WIRE_H
#define GOULETTE_RPC_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parse a grpc-timeout value (@v, @len bytes, borrowed): 1 to 8 ASCII
 * digits followed by one unit of H, M, S, m, u, n.  Stores the timeout in
 * milliseconds, rounded up (1n is 1 ms; 0S is 0 ms), in *@out_ms.
 *
 * Errors:
 *   -EINVAL  not of that form. */
int rpc_wire_timeout_parse(const char *v, size_t len, uint64_t *out_ms);

/* Format @ms as a grpc-timeout value into @out (at least 16 bytes):
 * milliseconds while they fit in 8 digits, then seconds, minutes, hours. */
void rpc_wire_timeout_format(uint64_t ms, char out[16]);

/* Percent-encode @msg (@len bytes, borrowed) as the gRPC spec requires for
 * grpc-message: bytes outside 0x20..0x7E and '%' itself become %XX
 * (upper-case hex).  Writes at most @cap bytes to @out (which may be NULL
 * when @cap is 0) and returns the length the full encoding needs (not
 * NUL-terminated); call with the returned size to encode. */
size_t rpc_wire_message_encode(const char *msg,
                               size_t len,
                               char *out,
                               size_t cap);

/* Decode a percent-encoded grpc-message (@in, @len bytes) into @out, which
 * must hold @len + 1 bytes; the result is NUL-terminated.  Malformed escapes
 * are kept as they are, as the spec asks of receivers.  Returns the decoded
 * length. */
size_t rpc_wire_message_decode(const char *in, size_t len, char *out);

/* True when a content-type value names gRPC: "application/grpc" alone or
 * followed by '+' or ';' (application/grpc+proto, ...). */
bool rpc_wire_content_type_ok(const char *v, size_t len);

/* A token bucket: @burst tokens at most, refilled at @per_sec tokens per
 * second of the caller's clock.  Counts in thousandths of a token so that
 * slow rates refill smoothly. */
struct rpc_wire_bucket
{
    uint64_t milli;   /* tokens available, in 1/1000 */
    uint64_t last_ms; /* caller's clock at the last refill, ms */
    uint32_t burst;   /* capacity, tokens */
    uint32_t per_sec; /* refill rate, tokens per second */
};

/* Start full at time @now_ms. */
void rpc_wire_bucket_init(struct rpc_wire_bucket *b,
                          uint32_t burst,
                          uint32_t per_sec,
                          uint64_t now_ms);

/* Take one token at time @now_ms.  Returns true if one was available;
 * false means the peer exceeded the rate.  A clock that goes backwards
 * refills nothing. */
bool rpc_wire_bucket_take(struct rpc_wire_bucket *b, uint64_t now_ms);

#endif /* GOULETTE_RPC_WIRE_H */
