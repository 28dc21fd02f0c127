/* Moves bytes between a uv_tcp_t and an HTTP/2 session (pump.h).  Owns the
 * two write buffers and the read/write state; decides nothing about HTTP/2
 * or gRPC beyond "the session is finished".
 *
 * Invariants: at most one uv_write in flight (out[!filling]); out[filling]
 * collects session output up to PUMP_CHUNK bytes past which draining waits
 * for the write to finish; reading pauses while the bytes queued in both
 * buffers reach pause_at, so a peer that does not read cannot make us
 * buffer without bound. */
#include "pump.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Stop draining the session into the filling buffer past this size. */
#define PUMP_CHUNK (64 * 1024)

static void pump_report(struct rpc__pump *p, int rv)
{
    if (p->stopped) {
        return;
    }
    rpc__pump_stop(p);
    p->cb->done(p, rv);
}

static void pump_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct rpc__pump *p = h->data;

    buf->base = (char *)p->rbuf;
    buf->len = p->rbuf_len;
}

static void pump_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct rpc__pump *p = s->data;
    long rv;

    if (p->stopped) {
        return;
    }
    if (nread == UV_EOF) {
        pump_report(p, 0);
        return;
    }
    if (nread < 0) {
        pump_report(p, (int)nread);
        return;
    }
    if (nread == 0) {
        return;
    }
    p->in_recv++;
    rv = rpc__h2_recv(p->h2, buf->base, (size_t)nread);
    p->in_recv--;
    if (p->cb->activity != NULL && !p->stopped) {
        p->cb->activity(p);
    }
    if (rv < 0) {
        /* The session may still have a GOAWAY to say; try once, then end. */
        const uint8_t *data;
        long n = rpc__h2_send(p->h2, &data);
        if (n > 0 && !p->writing) {
            uv_buf_t b = uv_buf_init((char *)(uintptr_t)data, (unsigned)n);
            (void)uv_try_write((uv_stream_t *)p->tcp, &b, 1);
        }
        pump_report(p, (int)rv);
        return;
    }
    rpc__pump_flush(p);
}

static int pump_append(struct rpc__pump *p, const uint8_t *data, size_t n)
{
    int i = p->filling;
    size_t need = p->out_len[i] + n;

    if (need > p->out_cap[i]) {
        size_t cap = p->out_cap[i] ? p->out_cap[i] : 16 * 1024;
        unsigned char *nb;
        while (cap < need) {
            cap *= 2;
        }
        nb = realloc(p->out[i], cap);
        if (nb == NULL) {
            return -ENOMEM;
        }
        p->out[i] = nb;
        p->out_cap[i] = cap;
    }
    memcpy(p->out[i] + p->out_len[i], data, n);
    p->out_len[i] += n;
    return 0;
}

static void pump_written(uv_write_t *req, int status);

static void pump_start_write(struct rpc__pump *p)
{
    int i = p->filling;
    uv_buf_t b;
    int rv;

    if (p->writing || p->out_len[i] == 0) {
        return;
    }
    b = uv_buf_init((char *)p->out[i], (unsigned)p->out_len[i]);
    rv = uv_write(&p->wreq, (uv_stream_t *)p->tcp, &b, 1, pump_written);
    if (rv != 0) {
        pump_report(p, rv);
        return;
    }
    p->writing = true;
    p->filling = !i;
}

static void pump_update_reading(struct rpc__pump *p)
{
    size_t pending = p->out_len[0] + p->out_len[1];
    bool want = rpc__h2_want_read(p->h2) && pending < p->pause_at;

    if (want && !p->reading) {
        if (uv_read_start((uv_stream_t *)p->tcp, pump_alloc, pump_read) == 0) {
            p->reading = true;
        }
    } else if (!want && p->reading) {
        uv_read_stop((uv_stream_t *)p->tcp);
        p->reading = false;
    }
}

void rpc__pump_flush(struct rpc__pump *p)
{
    const uint8_t *data;
    long n;
    int rv;

    if (p->stopped || p->in_recv > 0) {
        return;
    }
    for (;;) {
        while (p->out_len[p->filling] < PUMP_CHUNK) {
            n = rpc__h2_send(p->h2, &data);
            if (n < 0) {
                pump_report(p, (int)n);
                return;
            }
            if (n == 0) {
                break;
            }
            rv = pump_append(p, data, (size_t)n);
            if (rv != 0) {
                pump_report(p, rv);
                return;
            }
        }
        if (p->writing || p->out_len[p->filling] == 0) {
            break;
        }
        pump_start_write(p);
        if (p->stopped) {
            return;
        }
    }
    if (!p->writing && !rpc__h2_want_read(p->h2) &&
        !rpc__h2_want_write(p->h2)) {
        pump_report(p, 0);
        return;
    }
    pump_update_reading(p);
}

static void pump_written(uv_write_t *req, int status)
{
    struct rpc__pump *p = req->data;

    p->writing = false;
    p->out_len[!p->filling] = 0;
    if (p->stopped) {
        return;
    }
    if (status != 0) {
        pump_report(p, status);
        return;
    }
    rpc__pump_flush(p);
}

void rpc__pump_init(struct rpc__pump *p,
                    uv_tcp_t *tcp,
                    struct rpc__h2 *h2,
                    const struct rpc__pump_callbacks *cb,
                    void *owner,
                    unsigned char *rbuf,
                    size_t rbuf_len,
                    size_t pause_at)
{
    memset(p, 0, sizeof *p);
    p->tcp = tcp;
    p->h2 = h2;
    p->cb = cb;
    p->owner = owner;
    p->rbuf = rbuf;
    p->rbuf_len = rbuf_len;
    p->pause_at = pause_at;
    p->wreq.data = p;
    tcp->data = p;
}

void rpc__pump_start(struct rpc__pump *p)
{
    rpc__pump_flush(p);
}

void rpc__pump_stop(struct rpc__pump *p)
{
    if (p->reading) {
        uv_read_stop((uv_stream_t *)p->tcp);
        p->reading = false;
    }
    p->stopped = true;
}

void rpc__pump_fini(struct rpc__pump *p)
{
    free(p->out[0]);
    free(p->out[1]);
    p->out[0] = p->out[1] = NULL;
}
