/* The instance PRNG (splitmix64): the only source of randomness of the core,
 * seeded by raft_config.seed so that a run is a function of its seed. */
#ifndef RAFT_PRNG_H
#define RAFT_PRNG_H

#include <stdint.h>

struct raft__prng
{
    uint64_t state; /* splitmix64 state */
};

void raft__prng_seed(struct raft__prng *p, uint64_t seed);

/* Uniform in [lo, hi); returns lo when hi <= lo. */
unsigned raft__prng_range(struct raft__prng *p, unsigned lo, unsigned hi);

#endif /* RAFT_PRNG_H */
