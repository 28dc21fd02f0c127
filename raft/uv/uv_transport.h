/* Private state of the peer transport, shared by uv_transport.c (lifecycle,
 * peers, outgoing connections, send queues) and uv_incoming.c (accepted
 * connections: handshake check and message delivery).  Not for use outside
 * raft/uv/.
 *
 * Handles and their memory: every uv handle here is counted in
 * tr->n_handles from uv_*_init to its close callback.  A connection frees
 * itself when both its handles (tcp, timer) are closed; a peer frees itself
 * when its timer is closed and it has no connection left; the transport
 * frees itself, then calls the user's close callback, when it is closing
 * and n_handles reaches 0.  Write callbacks (ECANCELED on close) run before
 * the close callback of their stream, so write batches never outlive their
 * connection. */
#ifndef GOULETTE_RAFT_UV_TRANSPORT_H
#define GOULETTE_RAFT_UV_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include <goulette/raft_uv.h>

#include "uv_frame.h"

#define RAFT_UV__REMOTE_MAX 64          /* bytes of a printed socket address */
#define RAFT_UV__READ_BUF 65536         /* bytes of the shared read buffer */
#define RAFT_UV__BATCH_FRAMES 64        /* frames per uv_write at most */
#define RAFT_UV__BATCH_BYTES (4u << 20) /* bytes per uv_write, soft */

/* One encoded frame waiting in a peer's queue or in flight. */
struct raft_uv__out
{
    struct raft_uv__out *next;
    uint8_t *buf; /* owned: header + payload */
    size_t len;   /* bytes in buf */
    bool counted; /* a queued message or application frame (not a
                     handshake / ack frame) */
    bool app;     /* an application frame (counted too) */
};

struct raft_uv__peer;

/* One TCP connection, outgoing (dialled to a peer) or incoming. */
struct raft_uv__conn
{
    struct raft_uv__transport *tr; /* owner */
    uv_tcp_t tcp;
    uv_timer_t timer;      /* handshake deadline; then, incoming: refusal
                              deadline, outgoing: write timeout */
    unsigned open_handles; /* 2 until both close callbacks ran */
    bool closing;          /* uv_close called */
    bool outgoing;
    struct raft_uv__peer *peer; /* outgoing: the peer; it outlives the
                                   connection, even when removed */
    uv_connect_t connect_req;   /* outgoing only */
    bool writing;               /* a write batch is in flight */
    bool write_timer_armed;     /* outgoing: timer = write timeout of the
                                   batch in flight */
    bool refusing;              /* incoming: answer written, closing after */
    raft_id from;               /* incoming: member id once identified */
    struct raft_uv__frame_decoder decoder;
    char remote[RAFT_UV__REMOTE_MAX];  /* peer socket address, for logs */
    struct raft_uv__conn *prev, *next; /* incoming list of tr */
};

enum raft_uv__peer_state {
    RAFT_UV__PEER_IDLE = 0,  /* no connection, not waiting */
    RAFT_UV__PEER_DIALING,   /* connect or handshake answer pending */
    RAFT_UV__PEER_CONNECTED, /* handshake accepted: queue flows */
    RAFT_UV__PEER_CLOSING,   /* connection closing */
    RAFT_UV__PEER_BACKOFF,   /* waiting before the next dial */
};

struct raft_uv__peer
{
    struct raft_uv__transport *tr;
    struct raft_uv__peer *next; /* tr->peers list; unlinked on removal */
    raft_id id;
    char address[RAFT_ADDRESS_MAX];
    struct sockaddr_storage addr;
    enum raft_uv__peer_state state;
    struct raft_uv__conn *conn; /* outgoing connection or NULL */
    uv_timer_t timer;           /* backoff */
    bool timer_closed;
    bool removed;
    unsigned attempt; /* failed dials since the last success */
    bool quiet;       /* a failure was already logged at warn */
    bool failed;      /* the closing connection failed: report the peer
                         unreachable once it is closed */
    struct raft_uv__out *head, *tail; /* queued, not yet written */
    unsigned n_queued;                /* queued + in flight messages */
    uint64_t queued_bytes;            /* queued + in flight bytes */
    struct raft_uv_transport_stats stats;
};

/* Rate limit for refusal logs: log_burst lines per log_interval_ms. */
struct raft_uv__ratelimit
{
    uint64_t window_start; /* uv_now() ms */
    unsigned count;        /* lines logged in this window */
    uint64_t suppressed;   /* lines dropped in this window */
};

struct raft_uv__transport
{
    struct raft_uv_transport *pub; /* back pointer */
    uv_loop_t *loop;               /* borrowed */
    struct raft_uv_transport_config config;
    uv_tcp_t listener;
    bool started;
    bool closing;
    void (*close_cb)(struct raft_uv_transport *t);
    void (*recv_cb)(struct raft_uv_transport *t, struct raft_message *m);
    unsigned n_handles;             /* initialized, not yet closed */
    struct raft_uv__peer *peers;    /* known members */
    struct raft_uv__conn *incoming; /* accepted connections */
    unsigned n_incoming;
    uint64_t prng; /* xorshift64* state for jitter */
    struct raft_uv__ratelimit ratelimit;
    struct raft_uv_transport_stats stats; /* transport-wide counters */
    char read_buf[RAFT_UV__READ_BUF];     /* every read lands here: reads
                                             are handled synchronously */
};

/* uv_transport.c */
struct raft_uv__conn *raft_uv__conn_new(struct raft_uv__transport *tr,
                                        bool outgoing);
void raft_uv__conn_close(struct raft_uv__conn *c);
int raft_uv__conn_write_frame(struct raft_uv__conn *c,
                              enum raft_uv_frame_kind kind,
                              const void *payload,
                              size_t len);
void raft_uv__conn_read_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
struct raft_uv__peer *raft_uv__peer_find(struct raft_uv__transport *tr,
                                         raft_id id);
const char *raft_uv__strerror(int rv);
void raft_uv__sockaddr_name(const struct sockaddr *sa, char *buf, size_t n);
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void raft_uv__log_refusal(struct raft_uv__transport *tr,
                          const struct raft_uv__conn *c,
                          const char *fmt,
                          ...);

/* uv_incoming.c */
void raft_uv__incoming_on_connection(uv_stream_t *listener, int status);
void raft_uv__incoming_on_write(struct raft_uv__conn *c, int status);
void raft_uv__incoming_drop_member(struct raft_uv__transport *tr, raft_id id);

#endif /* GOULETTE_RAFT_UV_TRANSPORT_H */
