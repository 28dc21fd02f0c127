/* Allocation failure injection for the raft_uv unit tests: the test binary
 * is linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,
 * --wrap=free, so that every
 * allocation made by the code under test (static libraries linked into the
 * binary, and protobuf-c through the codec's allocator) comes here.
 * failmalloc_arm(n) makes the n-th following allocation fail (n = 1 is the
 * next one); failmalloc_outstanding() counts live allocations, so a test
 * can assert that a failed call leaked nothing.  Test-only global state. */
#ifndef GOULETTE_TESTS_RAFT_UV_FAILMALLOC_H
#define GOULETTE_TESTS_RAFT_UV_FAILMALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void __real_free(void *p);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
void __wrap_free(void *p);

#define FAILMALLOC_UNUSED __attribute__((unused))

static unsigned failmalloc_countdown; /* 0: disarmed */
static bool failmalloc_fired;         /* the armed failure happened */
static long failmalloc_live;

FAILMALLOC_UNUSED static void failmalloc_arm(unsigned n)
{
    failmalloc_countdown = n;
    if (n > 0) {
        failmalloc_fired = false; /* disarming keeps it for inspection */
    }
}

FAILMALLOC_UNUSED static long failmalloc_outstanding(void)
{
    return failmalloc_live;
}

static bool failmalloc_should_fail(void)
{
    if (failmalloc_countdown == 0) {
        return false;
    }
    if (--failmalloc_countdown == 0) {
        failmalloc_fired = true;
        return true;
    }
    return false;
}

void *__wrap_malloc(size_t size)
{
    void *p;

    if (failmalloc_should_fail()) {
        return NULL;
    }
    p = __real_malloc(size);
    if (p != NULL) {
        failmalloc_live++;
    }
    return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
    void *p;

    if (failmalloc_should_fail()) {
        return NULL;
    }
    p = __real_calloc(n, size);
    if (p != NULL) {
        failmalloc_live++;
    }
    return p;
}

void *__wrap_realloc(void *p, size_t size)
{
    void *q;

    if (failmalloc_should_fail()) {
        return NULL;
    }
    q = __real_realloc(p, size);
    if (q != NULL && p == NULL) {
        failmalloc_live++;
    }
    return q;
}

void __wrap_free(void *p)
{
    if (p != NULL) {
        failmalloc_live--;
    }
    __real_free(p);
}

#endif /* GOULETTE_TESTS_RAFT_UV_FAILMALLOC_H */
