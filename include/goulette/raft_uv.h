/* The Raft runtime on libuv: the drivers that execute what the pure core
 * (raft.h) asks for.  Each part below is a self-contained section owned by
 * its module under raft/uv/.  None of them makes protocol decisions.
 *
 * Everything here runs on the loop thread of the loop passed in. */
#ifndef GOULETTE_RAFT_UV_H
#define GOULETTE_RAFT_UV_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "log.h"
#include "raft.h"

/* ========================================================================
 * Peer transport (raft/uv/uv_transport.c, uv_codec.c, uv_frame.c)
 *
 * Carries struct raft_message between members over TCP; wire format,
 * limits, backoff and logging in docs/transport.md.  Each member dials one
 * outgoing connection per peer, on demand, and sends on it only; it receives
 * on the connections that peers dialled.  Every connection starts with a
 * handshake (protocol version, cluster id, sender id, receiver id) that the
 * acceptor answers; a peer from another cluster, an unknown member, a wrong
 * receiver id, a malformed or oversized frame, or a connection silent past
 * the handshake timeout is refused, closed and logged (rate-limited).
 * Messages wait in a bounded queue per peer; when it is full, new messages
 * are dropped and counted (Raft tolerates loss).  Delivery is best effort
 * and in order per connection.
 *
 * The same connections carry application frames (raft_uv_transport_send_app
 * / app_cb): opaque bytes between members, for the node's own best-effort
 * notices, queued and ordered with the Raft messages.
 *
 * Every function below except _init and _config_defaults takes a
 * transport between a successful _init and its close callback; callbacks
 * (recv_cb, unreachable_cb, app_cb) run from the loop, never from inside a
 * transport call.
 * ======================================================================== */

/* A member the transport may talk to. */
struct raft_uv_peer
{
    raft_id id;                     /* nonzero */
    char address[RAFT_ADDRESS_MAX]; /* "a.b.c.d:port", "[v6]:port" or
                                       "localhost:port" */
};

struct raft_uv_transport;

struct raft_uv_transport_config
{
    uint64_t cluster_id;            /* both ends must agree */
    raft_id id;                     /* this member; nonzero */
    uint64_t seed;                  /* seeds the backoff jitter PRNG */
    unsigned max_queue_messages;    /* per peer, queued + in flight;
                                       default 1024 */
    uint64_t max_queue_bytes;       /* per peer, encoded bytes queued + in
                                       flight; default 64 MiB */
    uint32_t max_frame_bytes;       /* largest frame payload sent or
                                       accepted; default 64 MiB */
    unsigned handshake_timeout_ms;  /* acceptor: handshake must arrive;
                                       dialer: connect + answer; default
                                       5000 */
    unsigned write_timeout_ms;      /* a write batch to a connected peer
                                       (<= 4 MiB, or one larger frame)
                                       not done this long after it began
                                       resets the connection (a peer that
                                       stopped reading or vanished without
                                       a reset); 0: never; default 30000 */
    unsigned backoff_min_ms;        /* first redial delay; default 100 */
    unsigned backoff_max_ms;        /* cap of the doubling; default 5000 */
    unsigned max_incoming;          /* accepted connections at once;
                                       default 64 */
    unsigned log_burst;             /* refusal log lines per interval before
                                       suppressing; default 10 */
    unsigned log_interval_ms;       /* rate-limit window; default 10000 */
    const struct goulette_log *log; /* may be NULL; borrowed for the
                                       transport's lifetime */
    /* A peer could not be reached: a dial failed or was refused, or an
     * established connection broke.  Feed RAFT_EVENT_UNREACHABLE.  May be
     * NULL.  Called from the loop, never from inside a transport call,
     * once per failed connection; may call any transport function. */
    void (*unreachable_cb)(struct raft_uv_transport *t, raft_id id);
    /* An application frame (raft_uv_transport_send_app) arrived from member
     * @from, the sender the incoming connection's handshake identified.
     * @payload (@len > 0 bytes) is borrowed for the call.  May be NULL:
     * application frames are then dropped and counted (app_ignored).
     * Called from the loop, never from inside a transport call; may call
     * any transport function, raft_uv_transport_close() included. */
    void (*app_cb)(struct raft_uv_transport *t,
                   raft_id from,
                   const void *payload,
                   size_t len);
};

/* Counters, for one peer or (id 0) summed over all peers and connections. */
struct raft_uv_transport_stats
{
    uint64_t sent;            /* messages fully written to a socket,
                                 application frames included */
    uint64_t dropped;         /* messages dropped: queue full, or purged
                                 when the connection failed or the peer was
                                 removed (application frames included) */
    uint64_t received;        /* messages delivered to recv_cb */
    uint64_t app_sent;        /* application frames among sent */
    uint64_t app_received;    /* application frames delivered to app_cb */
    uint64_t app_ignored;     /* application frames received while app_cb
                                 is NULL, dropped */
    uint64_t refused;         /* incoming connections refused or closed
                                 for a protocol violation */
    uint64_t dials;           /* outgoing connection attempts */
    uint64_t connects;        /* outgoing handshakes accepted */
    unsigned queued_messages; /* now: queued + in flight */
    uint64_t queued_bytes;    /* now: queued + in flight */
};

struct raft_uv__transport; /* private to raft/uv/ */

struct raft_uv_transport
{
    void *data;                      /* for the caller; never touched */
    struct raft_uv__transport *impl; /* owned; freed in the close callback */
};

/* Fill @c with the defaults above (cluster_id, id, seed zero, callbacks
 * NULL). */
void raft_uv_transport_config_defaults(struct raft_uv_transport_config *c);

/* Initialize @t on @loop (borrowed for the transport's lifetime).  @config
 * is copied.  Nothing is bound or dialled yet.
 * Errors: -EINVAL (id 0, zero limits, backoff_min_ms > backoff_max_ms),
 * -ENOMEM.  On error nothing is left to clean up. */
int raft_uv_transport_init(struct raft_uv_transport *t,
                           uv_loop_t *loop,
                           const struct raft_uv_transport_config *config);

/* Listen on @address (borrowed; port 0 picks an ephemeral port, see
 * raft_uv_transport_address) and deliver each received message to
 * @recv_cb.  @recv_cb takes @message: release it with
 * raft_uv_message_free() (the snapshot chunk data inside may be kept, as
 * raft.h rule 2 needs, for as long as the message is).  @recv_cb may call
 * any transport function, raft_uv_transport_close() included.
 * Errors: -EINVAL (bad address, already started), -EADDRINUSE and other
 * negative errnos from bind/listen. */
int raft_uv_transport_start(struct raft_uv_transport *t,
                            const char *address,
                            void (*recv_cb)(struct raft_uv_transport *t,
                                            struct raft_message *message));

/* Write the bound listen address ("127.0.0.1:7001") into @buf of @size
 * bytes.  Errors: -EINVAL (not started), -ENOBUFS (@buf too small). */
int raft_uv_transport_address(const struct raft_uv_transport *t,
                              char *buf,
                              size_t size);

/* Replace the set of known members with @peers (@n entries, borrowed; an
 * entry with this member's own id is ignored).  Removed members lose their
 * queue and their connections, both directions; a member whose address
 * changed is redialled at the new one.
 * Errors: -EINVAL (id 0, duplicate id, unparsable address), -ENOMEM,
 * GOULETTE_ESHUTDOWN (closing); on error the previous set stays. */
int raft_uv_transport_set_peers(struct raft_uv_transport *t,
                                const struct raft_uv_peer *peers,
                                unsigned n);

/* Encode @message (borrowed: not referenced after return) and queue it for
 * member @to, dialling if needed.  message->from must be this member and
 * message->to must be @to.  0 means queued, not delivered.
 * Errors: -EINVAL (bad message, @to is this member, from/to mismatch),
 * GOULETTE_ENOTFOUND (@to is not a known member), -EMSGSIZE (encoded
 * message above max_frame_bytes), -ENOBUFS (queue full: the message was
 * dropped and counted; Raft may ignore this), GOULETTE_ESHUTDOWN (closing),
 * -ENOMEM. */
int raft_uv_transport_send(struct raft_uv_transport *t,
                           raft_id to,
                           const struct raft_message *message);

/* Copy @payload (@len bytes, borrowed) into an application frame and queue
 * it for member @to, dialling if needed: the same queue, bounds and order as
 * raft_uv_transport_send (an application frame sent after a message arrives
 * after it, while the connection lasts), and the same best effort.  The
 * receiver's app_cb gets the bytes as they are; the transport does not look
 * into them.  0 means queued, not delivered.
 * Errors: -EINVAL (@to is this member, @len is 0), GOULETTE_ENOTFOUND (@to
 * is not a known member), -EMSGSIZE (@len above max_frame_bytes), -ENOBUFS
 * (queue full: dropped and counted), GOULETTE_ESHUTDOWN (closing),
 * -ENOMEM. */
int raft_uv_transport_send_app(struct raft_uv_transport *t,
                               raft_id to,
                               const void *payload,
                               size_t len);

/* Counters for member @id, or for the whole transport when @id is 0 (the
 * refused count is only kept transport-wide).  @out is out.
 * Errors: GOULETTE_ENOTFOUND (no such member). */
int raft_uv_transport_stats(const struct raft_uv_transport *t,
                            raft_id id,
                            struct raft_uv_transport_stats *out);

/* Stop listening, close every connection and timer, drop every queued
 * message, and call @cb (may be NULL) once everything is closed; the
 * memory behind t->impl is freed just before @cb.  After @cb, @t may be
 * freed or re-initialized.  recv_cb and unreachable_cb never fire after
 * this call.  Must be called exactly once after a successful init. */
void raft_uv_transport_close(struct raft_uv_transport *t,
                             void (*cb)(struct raft_uv_transport *t));

/* Free a message handed to recv_cb: its entries, their data, its snapshot
 * chunk data and conf, and the struct itself.  NULL is allowed. */
void raft_uv_message_free(struct raft_message *message);

#endif /* GOULETTE_RAFT_UV_H */
