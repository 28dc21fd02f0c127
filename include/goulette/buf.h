/* A borrowed or owned byte range.  Dependency-free. */
#ifndef GOULETTE_BUF_H
#define GOULETTE_BUF_H

#include <stddef.h>

struct goulette_buf
{
    void *base; /* first byte; NULL only when len is 0 */
    size_t len; /* bytes */
};

#endif /* GOULETTE_BUF_H */
