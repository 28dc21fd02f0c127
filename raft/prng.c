/* The instance PRNG: splitmix64 (Steele, Lea, Flood 2014).  It only draws
 * randomized election timeouts (§3.4); no global state, no clock. */
#include "prng.h"

void raft__prng_seed(struct raft__prng *p, uint64_t seed)
{
    p->state = seed;
}

static uint64_t prng_next(struct raft__prng *p)
{
    uint64_t z = (p->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

unsigned raft__prng_range(struct raft__prng *p, unsigned lo, unsigned hi)
{
    if (hi <= lo) {
        return lo;
    }
    return lo + (unsigned)(prng_next(p) % (uint64_t)(hi - lo));
}
