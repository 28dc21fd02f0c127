/* goulettectl's gRPC client side: one unary call to the first member of
 * --endpoints that answers, on a private uv loop with rpc/'s client.
 * Owns endpoint failover and leader redirects; owns no message format. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>
#include <goulette/rpc.h>

#include "ctl.h"

#define CTL_CALL_TIMEOUT_MS 15000

struct pending
{
    bool done;
    struct ctl_reply *out;
};

static void on_done(void *data,
                    enum rpc_status status,
                    const char *message,
                    const struct goulette_buf *resp)
{
    struct pending *p = data;
    struct ctl_reply *out = p->out;

    p->done = true;
    out->status = status;
    snprintf(out->message, sizeof out->message, "%s", message);
    free(out->resp.base);
    out->resp.base = NULL;
    out->resp.len = 0;
    if (status == RPC_STATUS_OK && resp->len > 0) {
        out->resp.base = malloc(resp->len);
        if (out->resp.base == NULL) {
            out->status = RPC_STATUS_RESOURCE_EXHAUSTED;
            snprintf(out->message, sizeof out->message, "out of memory");
            return;
        }
        memcpy(out->resp.base, resp->base, resp->len);
        out->resp.len = resp->len;
    }
}

static void on_client_closed(struct rpc_client *client)
{
    (void)client;
}

/* Whether an answer from one endpoint means "ask the next one". */
static bool try_next(enum rpc_status status, bool leader_only)
{
    return status == RPC_STATUS_UNAVAILABLE ||
           status == RPC_STATUS_DEADLINE_EXCEEDED ||
           (leader_only && status == RPC_STATUS_FAILED_PRECONDITION);
}

int ctl_call(const char *endpoints,
             const char *method,
             const ProtobufCMessage *req,
             bool leader_only,
             struct ctl_reply *out)
{
    struct rpc_client_config cc;
    struct rpc_client client;
    uv_loop_t loop;
    char *list = NULL;
    char *save = NULL;
    char *ep;
    int rv;

    memset(out, 0, sizeof *out);
    out->status = RPC_STATUS_UNAVAILABLE;
    snprintf(out->message, sizeof out->message, "no endpoint given");
    list = strdup(endpoints);
    if (list == NULL) {
        return -ENOMEM;
    }
    rv = uv_loop_init(&loop);
    if (rv != 0) {
        free(list);
        return rv;
    }
    memset(&cc, 0, sizeof cc);
    cc.loop = &loop;
    rv = rpc_client_init(&client, &cc);
    if (rv != 0) {
        uv_loop_close(&loop);
        free(list);
        return rv;
    }
    for (ep = strtok_r(list, ",", &save); ep != NULL;
         ep = strtok_r(NULL, ",", &save)) {
        struct pending p = {false, out};
        struct rpc_client_done done = {on_done, &p};
        char first[sizeof out->message + 320];
        rv = rpc_client_call_pb(&client, ep, method, req, CTL_CALL_TIMEOUT_MS,
                                &done);
        if (rv != 0) {
            out->status = RPC_STATUS_INVALID_ARGUMENT;
            snprintf(out->message, sizeof out->message,
                     "bad endpoint \"%s\": %s", ep, goulette_strerror(rv));
            continue;
        }
        while (!p.done) {
            uv_run(&loop, UV_RUN_ONCE);
        }
        snprintf(out->endpoint, sizeof out->endpoint, "%s", ep);
        if (!try_next(out->status, leader_only)) {
            break;
        }
        snprintf(first, sizeof first, "%s: %s", ep, out->message);
        snprintf(out->message, sizeof out->message, "%.500s", first);
    }
    rv = 0;
    rpc_client_close(&client, on_client_closed);
    while (uv_run(&loop, UV_RUN_DEFAULT) != 0) {
    }
    uv_loop_close(&loop);
    free(list);
    return rv;
}

void ctl_reply_fini(struct ctl_reply *r)
{
    free(r->resp.base);
    r->resp.base = NULL;
    r->resp.len = 0;
}
