/* goulettefs gRPC front end: a unary gRPC server and client over HTTP/2
 * cleartext (h2c, prior knowledge) on a caller-provided libuv loop.
 *
 * The server routes each call by its full method name ("/pkg.Service/Method")
 * to an asynchronous handler, which finishes the call later with
 * rpc_call_reply() or rpc_call_fail() (typically after a Raft commit).  The
 * client makes unary calls to other gRPC servers (Goulette brokers, other
 * members) with connection reuse per address.
 *
 * Loop affinity: every function here must be called on the loop thread of
 * the loop given in the config.  Limits and statuses: docs/grpc.md. */
#ifndef GOULETTE_RPC_H
#define GOULETTE_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include <goulette/buf.h>
#include <goulette/log.h>

/* gRPC status codes (grpc/grpc doc/statuscodes.md). */
enum rpc_status {
    RPC_STATUS_OK = 0,
    RPC_STATUS_CANCELLED = 1,
    RPC_STATUS_UNKNOWN = 2,
    RPC_STATUS_INVALID_ARGUMENT = 3,
    RPC_STATUS_DEADLINE_EXCEEDED = 4,
    RPC_STATUS_NOT_FOUND = 5,
    RPC_STATUS_ALREADY_EXISTS = 6,
    RPC_STATUS_PERMISSION_DENIED = 7,
    RPC_STATUS_RESOURCE_EXHAUSTED = 8,
    RPC_STATUS_FAILED_PRECONDITION = 9,
    RPC_STATUS_ABORTED = 10,
    RPC_STATUS_OUT_OF_RANGE = 11,
    RPC_STATUS_UNIMPLEMENTED = 12,
    RPC_STATUS_INTERNAL = 13,
    RPC_STATUS_UNAVAILABLE = 14,
    RPC_STATUS_DATA_LOSS = 15,
    RPC_STATUS_UNAUTHENTICATED = 16,
};

/* "OK", "CANCELLED", ...; "UNKNOWN" for values outside the table. */
const char *rpc_status_name(enum rpc_status status);

/* The gRPC status that reports our error @rv (0, a negative errno or a
 * goulette err.h code) to a client: ENOTLEADER/ENOLEADER/ENOQUORUM/...
 * -> UNAVAILABLE, EREJECTED/EINVAL -> INVALID_ARGUMENT, ENOENT/ENOTFOUND ->
 * NOT_FOUND, ENOBROKERS -> FAILED_PRECONDITION, ETIMEDOUT ->
 * DEADLINE_EXCEEDED, ECANCELED -> CANCELLED, ENOMEM/ENOSPC ->
 * RESOURCE_EXHAUSTED, others -> INTERNAL/UNKNOWN.  The one boundary
 * conversion from ours to gRPC. */
enum rpc_status rpc_status_from(int rv);

/* Bounds on what one peer can make the server hold.  rpc_limits_default()
 * gives the values docs/grpc.md lists. */
struct rpc_limits
{
    uint32_t max_message;              /* largest request body, bytes */
    uint32_t max_concurrent_streams;   /* per connection (SETTINGS) */
    uint32_t max_header_list;          /* per header block, bytes (RFC 9113) */
    uint32_t max_conn_buffered;        /* request bytes buffered per
                                          connection, and pending output bytes
                                          before reading pauses */
    uint64_t max_server_buffered;      /* request bytes buffered by all
                                          connections together */
    uint32_t max_connections;          /* accepted at once; more are closed */
    uint32_t receive_timeout_ms;       /* a request without grpc-timeout must
                                          arrive whole within this; 0: never */
    uint32_t idle_timeout_ms;          /* a connection with no open stream for
                                          this long is sent GOAWAY; 0: never */
    uint32_t ping_burst, ping_per_sec; /* PINGs a peer may send */
    uint32_t settings_burst, settings_per_sec; /* SETTINGS (non-ACK) */
    uint32_t reset_burst, reset_per_sec;       /* RST_STREAMs */
    uint32_t empty_burst, empty_per_sec;       /* empty DATA frames */
};

void rpc_limits_default(struct rpc_limits *limits);

/* ---------------------------------------------------------------------
 * Server
 * ------------------------------------------------------------------- */

struct rpc_call;
struct rpc__conn;
struct rpc__method;

/* An asynchronous handler.  @req is the request message body (borrowed:
 * valid during the call only).  The handler takes one reference on @call
 * and must finish it exactly once, now or later, with rpc_call_reply() or
 * rpc_call_fail(), even after the call was cancelled. */
struct rpc_handler
{
    void (*handle)(void *data,
                   struct rpc_call *call,
                   const struct goulette_buf *req);
    void *data; /* passed to handle; borrowed by the server */
};

/* A handler that receives the request decoded with protobuf-c.  @req is
 * borrowed (freed after handle returns).  A body that does not decode is
 * answered INTERNAL ("grpc: error unmarshalling request: ..."), as grpc-go
 * does, without calling the handler. */
struct rpc_pb_handler
{
    const ProtobufCMessageDescriptor *request; /* static, borrowed */
    void (*handle)(void *data, struct rpc_call *call, ProtobufCMessage *req);
    void *data;
};

struct rpc_server_config
{
    uv_loop_t *loop;                /* borrowed; never the default loop */
    const struct goulette_log *log; /* borrowed, may be NULL */
    const char *host;               /* IP literal to bind; NULL: 127.0.0.1 */
    uint16_t port;                  /* 0: any free port (rpc_server_port) */
    struct rpc_limits limits;
};

struct rpc_server
{
    /* All fields are private to rpc/. */
    uv_loop_t *loop;
    const struct goulette_log *log;
    struct rpc_limits limits;
    char host[64];
    uint16_t port;
    uv_tcp_t listener;
    bool listening;
    struct rpc__method *methods; /* owned array */
    size_t nmethods;
    struct rpc__conn *conns; /* list of open connections */
    size_t nconns;
    size_t handles;      /* uv handles not yet closed (conns, call timers) */
    uint64_t buffered;   /* request bytes held by all connections */
    unsigned char *rbuf; /* owned read buffer, shared by connections */
    bool closing;
    void (*close_cb)(struct rpc_server *server);
};

/* Initialise @server (caller-allocated) from @cfg (borrowed; strings are
 * copied).  Nothing is bound until rpc_server_start().
 * Errors: -EINVAL (no loop, bad host). */
int rpc_server_init(struct rpc_server *server,
                    const struct rpc_server_config *cfg);

/* Route @method ("/pkg.Service/Method", copied) to @handler (copied).
 * Must be called before rpc_server_start().
 * Errors: -EEXIST (already registered), -EINVAL (not of that form),
 * -ENOMEM. */
int rpc_server_register(struct rpc_server *server,
                        const char *method,
                        const struct rpc_handler *handler);

/* The same, with protobuf-c decoding of the request.
 * Errors: as rpc_server_register(). */
int rpc_server_register_pb(struct rpc_server *server,
                           const char *method,
                           const struct rpc_pb_handler *handler);

/* Bind host:port and listen.
 * Errors: negative errnos from uv_tcp_bind/uv_listen (-EADDRINUSE, ...). */
int rpc_server_start(struct rpc_server *server);

/* The bound port (useful after port 0), or 0 before start. */
uint16_t rpc_server_port(const struct rpc_server *server);

/* Stop listening, cancel every call in flight (their cancel callbacks fire;
 * handlers still own and must finish them), close every connection, and
 * call @cb (may be NULL) once every handle is closed.  After @cb, @server
 * may be freed and uv_loop_close() succeeds.  Calls still held by handlers
 * stay valid: finishing them only frees them. */
void rpc_server_close(struct rpc_server *server,
                      void (*cb)(struct rpc_server *server));

/* grpc.health.v1.Health/Check.  @check is called for every request with
 * the requested service name ("" for the whole server) and returns 1 for
 * SERVING, 0 for NOT_SERVING, or -ENOENT for a service it does not know
 * (answered NOT_FOUND, as the health-checking protocol asks).  Watch is not
 * served (UNIMPLEMENTED). */
struct rpc_health
{
    int (*check)(void *data, const char *service);
    void *data;
};

/* Serve Health/Check on @server with @health (borrowed until the server's
 * close callback).  Errors: as rpc_server_register(). */
int rpc_health_register(struct rpc_server *server,
                        const struct rpc_health *health);

/* The full method name of @call ("/pkg.Service/Method"); borrowed, valid
 * until the call is finished. */
const char *rpc_call_method(const struct rpc_call *call);

/* True while the client still waits for an answer: false once the client
 * reset the stream, disconnected, the deadline passed or the server is
 * closing. */
bool rpc_call_alive(const struct rpc_call *call);

/* Milliseconds left before the call's grpc-timeout expires at loop time
 * @now_ms (uv_now), or UINT64_MAX without a deadline; 0 once expired. */
uint64_t rpc_call_remaining(const struct rpc_call *call, uint64_t now_ms);

/* Ask to be told when the call dies before being finished (client reset,
 * disconnect, deadline, server close).  @cb runs at most once, on the loop;
 * the handler must still finish the call (which then only frees it). */
void rpc_call_on_cancel(struct rpc_call *call,
                        void (*cb)(void *data, struct rpc_call *call),
                        void *data);

/* Finish @call with status OK and the response body @resp (borrowed;
 * copied).  The call handle is invalid afterwards.
 * Errors (the call is finished and freed all the same):
 *   -ECANCELED  the call was already dead: nothing was sent;
 *   -ENOMEM. */
int rpc_call_reply(struct rpc_call *call, const struct goulette_buf *resp);

/* The same with a protobuf-c message (packed here).
 * Errors: as rpc_call_reply(). */
int rpc_call_reply_pb(struct rpc_call *call, const ProtobufCMessage *resp);

/* Finish @call with a non-OK @status and @message (borrowed; UTF-8, may be
 * NULL; percent-encoded on the wire), as a trailers-only response.
 * Errors: as rpc_call_reply(). */
int rpc_call_fail(struct rpc_call *call,
                  enum rpc_status status,
                  const char *message);

/* ---------------------------------------------------------------------
 * Client
 * ------------------------------------------------------------------- */

struct rpc__cconn;

struct rpc_client_config
{
    uv_loop_t *loop;                /* borrowed; never the default loop */
    const struct goulette_log *log; /* borrowed, may be NULL */
    uint32_t max_message;           /* largest response body; 0: 4 MiB */
};

struct rpc_client
{
    /* All fields are private to rpc/. */
    uv_loop_t *loop;
    const struct goulette_log *log;
    uint32_t max_message;
    struct rpc__cconn *conns; /* one per address */
    size_t handles;           /* uv handles not yet closed */
    uv_timer_t closer;        /* closed last: close_cb is always async */
    bool closing;
    void (*close_cb)(struct rpc_client *client);
};

/* Completion of one call.  @message is the decoded grpc-message (borrowed,
 * NUL-terminated, "" when none).  @resp is the response body (borrowed, valid
 * during the callback) when @status is RPC_STATUS_OK, else empty.  Failures
 * to connect are UNAVAILABLE; an expired deadline is DEADLINE_EXCEEDED;
 * rpc_client_close() is CANCELLED. */
struct rpc_client_done
{
    void (*cb)(void *data,
               enum rpc_status status,
               const char *message,
               const struct goulette_buf *resp);
    void *data;
};

/* Errors: -EINVAL (no loop). */
int rpc_client_init(struct rpc_client *client,
                    const struct rpc_client_config *cfg);

/* Call @method ("/pkg.Service/Method") on the server at @address
 * ("host:port"; host a name or an IP literal) with request body @req
 * (borrowed; copied) and a deadline of @timeout_ms (0: none; sent as
 * grpc-timeout).  Connections are made on demand and reused per address.
 * If this returns 0, @done fires exactly once, never before this returns.
 * Errors (@done never fires): -EINVAL (bad address or method), -ENOMEM,
 * GOULETTE_ESHUTDOWN (the client is closing). */
int rpc_client_call(struct rpc_client *client,
                    const char *address,
                    const char *method,
                    const struct goulette_buf *req,
                    uint64_t timeout_ms,
                    const struct rpc_client_done *done);

/* rpc_client_call() with @req packed from a protobuf-c message (borrowed).
 * The response stays bytes: unpack it with the response type's
 * __unpack() in @done.  Errors: as rpc_client_call(). */
int rpc_client_call_pb(struct rpc_client *client,
                       const char *address,
                       const char *method,
                       const ProtobufCMessage *req,
                       uint64_t timeout_ms,
                       const struct rpc_client_done *done);

/* Fail every call in flight with CANCELLED, close every connection, then
 * call @cb (may be NULL) once every handle is closed. */
void rpc_client_close(struct rpc_client *client,
                      void (*cb)(struct rpc_client *client));

#endif /* GOULETTE_RPC_H */
