/* One unary call with our client (rpc/client.c), for interop tests against
 * servers that are not ours (Python grpcio fake brokers):
 *
 *   rpc_test_client ADDRESS METHOD REQUEST_HEX TIMEOUT_MS [REPEAT]
 *
 * makes REPEAT (default 1) concurrent calls to the same address and prints,
 * for the first one, "STATUS <code>", "MESSAGE <text>", "BODY <hex>", then
 * "SAME 1" if every call ended with the same status.  Exit status 0 once
 * every call completed and uv_loop_close() succeeded, 1 on usage errors, 3
 * if handles were left open. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/rpc.h>

struct state
{
    int done;
    int first_status;
    char first_message[512];
    unsigned char first_body[4096];
    size_t first_len;
    int all_same;
};

static void on_done(void *data,
                    enum rpc_status status,
                    const char *message,
                    const struct goulette_buf *resp)
{
    struct state *st = data;

    if (st->done == 0) {
        st->first_status = (int)status;
        snprintf(st->first_message, sizeof st->first_message, "%s", message);
        st->first_len = resp->len < sizeof st->first_body
                            ? resp->len
                            : sizeof st->first_body;
        if (resp->len > 0) {
            memcpy(st->first_body, resp->base, st->first_len);
        }
    } else if ((int)status != st->first_status) {
        st->all_same = 0;
    }
    st->done++;
}

static int unhex(const char *h, unsigned char *out, size_t cap)
{
    size_t n = strlen(h) / 2;
    size_t i;

    if (strlen(h) % 2 != 0 || n > cap) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1) {
            return -1;
        }
        out[i] = (unsigned char)v;
    }
    return (int)n;
}

static void closed(struct rpc_client *c)
{
}

int main(int argc, char **argv)
{
    static unsigned char req[65536];
    struct state st = {0, 0, "", {0}, 0, 1};
    struct rpc_client_config cfg = {NULL, NULL, 0};
    struct rpc_client_done done = {on_done, &st};
    struct rpc_client client;
    struct goulette_buf b;
    uv_loop_t loop;
    int repeat;
    int n;
    int i;

    if (argc < 5) {
        fprintf(stderr,
                "usage: %s ADDRESS METHOD REQUEST_HEX TIMEOUT_MS [REPEAT]\n",
                argv[0]);
        return 1;
    }
    n = unhex(argv[3], req, sizeof req);
    repeat = argc > 5 ? atoi(argv[5]) : 1;
    if (n < 0 || repeat < 1) {
        fprintf(stderr, "bad request hex or repeat\n");
        return 1;
    }
    uv_loop_init(&loop);
    cfg.loop = &loop;
    rpc_client_init(&client, &cfg);
    b.base = req;
    b.len = (size_t)n;
    for (i = 0; i < repeat; i++) {
        if (rpc_client_call(&client, argv[1], argv[2], &b,
                            (uint64_t)atoll(argv[4]), &done) != 0) {
            fprintf(stderr, "rpc_client_call refused the call\n");
            return 1;
        }
    }
    while (st.done < repeat) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    printf("STATUS %d\nMESSAGE %s\nBODY ", st.first_status, st.first_message);
    for (size_t k = 0; k < st.first_len; k++) {
        printf("%02x", st.first_body[k]);
    }
    printf("\nSAME %d\n", st.all_same);
    rpc_client_close(&client, closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) {
        return 3;
    }
    return 0;
}
