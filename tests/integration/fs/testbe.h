/* testbe: an in-memory fs backend for the FUSE integration tests.  It keeps
 * the Goulette tree (topics/, brokers/, operations/, increment/, cluster/)
 * with etcd-style revisions, validates values the way the store does
 * (replica counts, host:port addresses, unreachable-broker reports), and
 * commits asynchronously: mutations queue and apply together on a timer,
 * each applied mutation writing operations/<n> and increment/operation.
 * Not production code: placement is a simple rotation, not the CRC ring. */
#ifndef GOULETTE_TESTBE_H
#define GOULETTE_TESTBE_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "goulette/fs.h"

struct testbe_rec;
struct testbe_queued;

struct testbe
{
    uv_loop_t *loop;          /* borrowed */
    uv_timer_t timer;         /* commit timer */
    struct fs *fs;            /* borrowed; set before mutations apply */
    struct testbe_rec **recs; /* sorted by (dir, name), numeric-aware */
    size_t nrecs;
    size_t cap;
    uint64_t revision;          /* last store revision */
    uint64_t next_op;           /* next operation id */
    uint64_t term;              /* cluster/status term */
    int64_t start_ns;           /* mtime of directories never changed */
    int64_t dir_mtime[5];       /* per testbe_dirs entry: last create/remove */
    struct testbe_queued *head; /* mutations awaiting commit */
    struct testbe_queued *tail;
    unsigned commit_delay_ms; /* 0: next loop turn */
    unsigned long applied;    /* mutations applied */
    unsigned long rejected;   /* mutations refused (submit or apply) */
    unsigned long submitted;  /* mutations accepted by submit */
    bool timer_armed;
    const struct goulette_log *log;
};

/* Errors: -ENOMEM. */
int testbe_init(struct testbe *b,
                uv_loop_t *loop,
                const struct goulette_log *log);
void testbe_close(struct testbe *b); /* closes the timer; frees on its cb */

/* The fs_backend vtable over @b. */
void testbe_backend(struct testbe *b, struct fs_backend *out);

/* Queue a mutation that did not come from the mount (gRPC, another member):
 * applied with origin NULL; @m->cb fires after apply.  @m is borrowed until
 * cb.  Errors: validation errnos (cb not called). */
int testbe_submit_remote(struct testbe *b, struct fs_mutation *m);

/* A status change inside the node: cluster/status gets a new term. */
void testbe_status_change(struct testbe *b);

#endif /* GOULETTE_TESTBE_H */
