/* xoshiro256** (Blackman and Vigna), seeded with splitmix64.  The only
 * source of randomness in the simulator; each user holds its own state. */
#include "prng.h"

uint64_t sim_prng_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void sim_prng_seed(struct sim_prng *p, uint64_t seed)
{
    uint64_t x = seed;
    unsigned i;
    for (i = 0; i < 4; i++) {
        x += 0x9e3779b97f4a7c15ULL;
        p->s[i] = sim_prng_mix(x);
    }
    if ((p->s[0] | p->s[1] | p->s[2] | p->s[3]) == 0) {
        p->s[0] = 1;
    }
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sim_prng_next(struct sim_prng *p)
{
    uint64_t *s = p->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t sim_prng_below(struct sim_prng *p, uint64_t n)
{
    if (n == 0) {
        return 0;
    }
    /* The modulo bias is below 2^-40 for the small ranges used here. */
    return sim_prng_next(p) % n;
}

uint64_t sim_prng_between(struct sim_prng *p, uint64_t lo, uint64_t hi)
{
    return lo + sim_prng_below(p, hi - lo + 1);
}

bool sim_prng_chance(struct sim_prng *p, unsigned per_mille)
{
    return sim_prng_below(p, 1000) < per_mille;
}
