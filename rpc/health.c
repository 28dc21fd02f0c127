/* grpc.health.v1.Health/Check on top of the server's protobuf-c routing.
 * Decides nothing about health itself: the composition root's check
 * callback does (SERVING only with a leader and applied up to it). */
#include <errno.h>
#include <stdint.h>

#include <goulette/rpc.h>

#include "health.pb-c.h"

static void health_check(void *data, struct rpc_call *call, ProtobufCMessage *m)
{
    const struct rpc_health *h = data;
    Grpc__Health__V1__HealthCheckRequest *req =
        (Grpc__Health__V1__HealthCheckRequest *)m;
    Grpc__Health__V1__HealthCheckResponse resp =
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    int rv = h->check(h->data, req->service);

    if (rv < 0) {
        /* The health-checking protocol: an unknown service is NOT_FOUND. */
        (void)rpc_call_fail(call, RPC_STATUS_NOT_FOUND, "unknown service");
        return;
    }
    resp.status =
        rv > 0
            ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
            : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    (void)rpc_call_reply_pb(call, &resp.base);
}

int rpc_health_register(struct rpc_server *server,
                        const struct rpc_health *health)
{
    struct rpc_pb_handler h;

    h.request = &grpc__health__v1__health_check_request__descriptor;
    h.handle = health_check;
    h.data = (void *)(uintptr_t)health;
    return rpc_server_register_pb(server, "/grpc.health.v1.Health/Check", &h);
}
