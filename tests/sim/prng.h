/* Seeded pseudo-random numbers for the simulator (xoshiro256**, seeded with
 * splitmix64).  Owns nothing but its four words of state: every run draws
 * from PRNGs derived from the seed, never from a clock or a global. */
#ifndef SIM_PRNG_H
#define SIM_PRNG_H

#include <stdbool.h>
#include <stdint.h>

struct sim_prng
{
    uint64_t s[4]; /* xoshiro256** state; never all zero */
};

/* Seed @p from @seed.  Two PRNGs seeded alike draw the same sequence. */
void sim_prng_seed(struct sim_prng *p, uint64_t seed);

/* Next 64 random bits. */
uint64_t sim_prng_next(struct sim_prng *p);

/* Uniform in [0, n); returns 0 when n is 0. */
uint64_t sim_prng_below(struct sim_prng *p, uint64_t n);

/* Uniform in [lo, hi]; requires lo <= hi. */
uint64_t sim_prng_between(struct sim_prng *p, uint64_t lo, uint64_t hi);

/* True with probability @per_mille / 1000. */
bool sim_prng_chance(struct sim_prng *p, unsigned per_mille);

/* A 64-bit mix of @x (splitmix64's finalizer), for deriving sub-seeds and
 * for the simulator's content hashes. */
uint64_t sim_prng_mix(uint64_t x);

#endif /* SIM_PRNG_H */
