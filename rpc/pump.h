/* The byte pump between one TCP connection and its HTTP/2 session, shared
 * by server connections and client connections: reads into the session,
 * drains the session into at most two write buffers (one being written, one
 * filling), pauses reading while output backs up, and reports when the
 * connection is finished.  Owns the write buffers; borrows the tcp handle
 * and the session from its owner. */
#ifndef GOULETTE_RPC_PUMP_H
#define GOULETTE_RPC_PUMP_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "h2.h"

struct rpc__pump;

struct rpc__pump_callbacks
{
    /* The connection failed (@rv: a read/write error, or the session's
     * error from rpc__h2_recv/send) or ended cleanly (@rv 0: EOF, or the
     * session wants neither to read nor to write).  The owner closes the
     * connection; the pump does nothing more until rpc__pump_fini. */
    void (*done)(struct rpc__pump *pump, int rv);
    /* Bytes arrived and were fed (for idle tracking); may be NULL. */
    void (*activity)(struct rpc__pump *pump);
};

struct rpc__pump
{
    uv_tcp_t *tcp;                        /* borrowed, owner's */
    struct rpc__h2 *h2;                   /* borrowed, owner's */
    const struct rpc__pump_callbacks *cb; /* borrowed */
    void *owner;                          /* for the owner's callbacks */
    unsigned char *rbuf;                  /* borrowed shared read buffer */
    size_t rbuf_len;
    size_t pause_at; /* pending output bytes that pause reading */
    uv_write_t wreq;
    unsigned char *out[2]; /* owned write buffers */
    size_t out_len[2], out_cap[2];
    int filling;  /* index of the buffer being filled */
    bool writing; /* wreq in flight with out[!filling] */
    bool reading; /* uv_read_start active */
    bool stopped; /* done() reported: inert */
    int in_recv;  /* nesting of rpc__h2_recv calls */
};

/* Set up @pump (caller-allocated) for @tcp and @h2; tcp->data is set to
 * @pump.  Nothing happens until rpc__pump_start(). */
void rpc__pump_init(struct rpc__pump *pump,
                    uv_tcp_t *tcp,
                    struct rpc__h2 *h2,
                    const struct rpc__pump_callbacks *cb,
                    void *owner,
                    unsigned char *rbuf,
                    size_t rbuf_len,
                    size_t pause_at);

/* Start reading and write what the session has queued (its SETTINGS). */
void rpc__pump_start(struct rpc__pump *pump);

/* Write whatever the session has queued.  Safe to call from inside session
 * callbacks: then it only takes effect once rpc__h2_recv returns. */
void rpc__pump_flush(struct rpc__pump *pump);

/* Stop reading and reporting.  Pending writes are abandoned when the owner
 * closes the tcp handle. */
void rpc__pump_stop(struct rpc__pump *pump);

/* Free the write buffers.  Call after the tcp handle's close callback. */
void rpc__pump_fini(struct rpc__pump *pump);

#endif /* GOULETTE_RPC_PUMP_H */
