/* gRPC status names, the goulette-error -> gRPC status boundary, and the
 * default limits.  No I/O. */
#include <goulette/err.h>
#include <goulette/rpc.h>

static const char *const status_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *rpc_status_name(enum rpc_status status)
{
    if ((unsigned)status < sizeof status_names / sizeof status_names[0]) {
        return status_names[status];
    }
    return "UNKNOWN";
}

enum rpc_status rpc_status_from(int rv)
{
    switch (rv) {
    case 0:
        return RPC_STATUS_OK;
    case GOULETTE_ENOTLEADER:
    case GOULETTE_ENOLEADER:
    case GOULETTE_ENOQUORUM:
    case GOULETTE_EDROPPED:
    case GOULETTE_ETRANSFER:
    case GOULETTE_ESHUTDOWN:
    case -EAGAIN:
    case -ECONNREFUSED:
    case -ECONNRESET:
    case -EHOSTUNREACH:
    case -ENOTCONN:
        return RPC_STATUS_UNAVAILABLE;
    case GOULETTE_EREJECTED:
    case -EINVAL:
        return RPC_STATUS_INVALID_ARGUMENT;
    case GOULETTE_ENOTFOUND:
    case -ENOENT:
        return RPC_STATUS_NOT_FOUND;
    case -EEXIST:
        return RPC_STATUS_ALREADY_EXISTS;
    case GOULETTE_ENOBROKERS:
    case GOULETTE_ECONFCHANGE:
    case -EBUSY:
        return RPC_STATUS_FAILED_PRECONDITION;
    case -ETIMEDOUT:
        return RPC_STATUS_DEADLINE_EXCEEDED;
    case -ECANCELED:
        return RPC_STATUS_CANCELLED;
    case -ENOMEM:
    case -ENOSPC:
    case -EMSGSIZE:
        return RPC_STATUS_RESOURCE_EXHAUSTED;
    case -EPERM:
    case -EACCES:
        return RPC_STATUS_PERMISSION_DENIED;
    case -ENOSYS:
    case -EOPNOTSUPP:
        return RPC_STATUS_UNIMPLEMENTED;
    case GOULETTE_ECORRUPT:
    case -EIO:
        return RPC_STATUS_DATA_LOSS;
    default:
        return rv < 0 ? RPC_STATUS_INTERNAL : RPC_STATUS_UNKNOWN;
    }
}

void rpc_limits_default(struct rpc_limits *l)
{
    l->max_message = 4u << 20;        /* grpc-go's default receive limit */
    l->max_concurrent_streams = 256;  /* per connection */
    l->max_header_list = 16u << 10;   /* grpc-go sends 16 MiB; 16 KiB is
                                         plenty for our metadata */
    l->max_conn_buffered = 16u << 20; /* >= 2 max messages */
    l->max_server_buffered = 256u << 20;
    l->max_connections = 1024;
    l->receive_timeout_ms = 30 * 1000;
    l->idle_timeout_ms = 5 * 60 * 1000;
    l->ping_burst = 100;
    l->ping_per_sec = 10;
    l->settings_burst = 50;
    l->settings_per_sec = 5;
    l->reset_burst = 200;
    l->reset_per_sec = 100;
    l->empty_burst = 100;
    l->empty_per_sec = 50;
}
