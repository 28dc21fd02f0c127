/* The set of brokers whose KeepAlive a follower answered since it last told
 * the leader (docs/liveness.md, "Heartbeats"): deduplicated, bounded, kept
 * in arrival order so that it can go out as the repeated field of one
 * PeerNotice.  Pure: no I/O, no clock.  It does not decide when to send
 * (tools/member_liveness.c) nor how (tools/member_notice.c). */
#ifndef GOULETTE_TOOLS_RENEWALS_H
#define GOULETTE_TOOLS_RENEWALS_H

#include <stddef.h>
#include <stdint.h>

#define RENEWALS_MAX 4096 /* ids held at most, by default */

struct renewals
{
    char **ids;       /* owned: n ids, each owned, in arrival order */
    size_t n;         /* ids held */
    size_t max;       /* bound on n */
    uint32_t *slots;  /* owned: open addressing, index + 1, 0 = empty */
    size_t n_slots;   /* a power of two, >= 2 * max */
    uint64_t dropped; /* adds refused because the set was full */
};

/* Initialize @r empty, holding at most @max (> 0) ids.
 * Errors: -EINVAL (@max 0 or too large), -ENOMEM.  On error nothing is left
 * to clean up. */
int renewals_init(struct renewals *r, size_t max);

/* Free every id and the tables. */
void renewals_fini(struct renewals *r);

/* Add @id (borrowed, copied).  Returns 1 if added, 0 if already held.
 * Errors: -ENOBUFS (full: not added, counted in dropped), -ENOMEM. */
int renewals_add(struct renewals *r, const char *id);

/* Forget every id (after they were sent). */
void renewals_clear(struct renewals *r);

#endif /* GOULETTE_TOOLS_RENEWALS_H */
