/* goulettefs error codes.
 *
 * Functions return 0 on success or a negative error: either a negative errno
 * (-ENOMEM, -EIO, -EINVAL, ...) or one of the project conditions below, which
 * have no errno equivalent.  Project codes are <= -4096, outside Linux's errno
 * range, so the two sets never collide.
 *
 * This header is dependency-free: the pure cores may include it. */
#ifndef GOULETTE_ERR_H
#define GOULETTE_ERR_H

#include <errno.h>
#include <string.h>

/* X(name, value, message).  Append new codes at the end; never renumber:
 * codes cross process boundaries (forwarded proposals, goulettectl). */
#define GOULETTE_ERR_TABLE(X)                                             \
    X(GOULETTE_ENOTLEADER, -4096, "this member is not the leader")        \
    X(GOULETTE_ENOLEADER, -4097, "no leader is known")                    \
    X(GOULETTE_ECORRUPT, -4098, "stored data is corrupt")                 \
    X(GOULETTE_ESHUTDOWN, -4099, "shutting down")                         \
    X(GOULETTE_ECONFCHANGE, -4100,                                        \
      "a membership change is already in progress")                       \
    X(GOULETTE_EDROPPED, -4101, "proposal dropped (leadership changed)")  \
    X(GOULETTE_ENOQUORUM, -4102, "no quorum: the cluster cannot commit")  \
    X(GOULETTE_ETRANSFER, -4103, "leadership transfer in progress")       \
    X(GOULETTE_ENOTFOUND, -4104, "no such member")                        \
    X(GOULETTE_ECLUSTER, -4105, "peer belongs to another cluster")        \
    X(GOULETTE_EREJECTED, -4106, "command rejected by the state machine") \
    X(GOULETTE_ENOBROKERS, -4107, "not enough healthy brokers")           \
    X(GOULETTE_EVERSION, -4108, "unsupported format version")             \
    X(GOULETTE_ELIMIT, -4109, "refused by a rate limit")

enum goulette_err {
#define GOULETTE_ERR_ENUM(name, value, msg) name = (value),
    GOULETTE_ERR_TABLE(GOULETTE_ERR_ENUM)
#undef GOULETTE_ERR_ENUM
};

/* Return a static, human-readable message for @rv, which is 0, a negative
 * errno or a project code.  Never returns NULL. */
static inline const char *goulette_strerror(int rv)
{
    switch (rv) {
    case 0:
        return "success";
#define GOULETTE_ERR_CASE(name, value, msg) \
    case value:                             \
        return msg;
        GOULETTE_ERR_TABLE(GOULETTE_ERR_CASE)
#undef GOULETTE_ERR_CASE
    default:
        break;
    }
    if (rv < 0 && rv > -4096) {
        return strerror(-rv);
    }
    return "unknown error";
}

/* Map a project code to the closest errno, for boundaries that can only
 * speak errno (the FUSE reply).  Negative errnos pass through unchanged. */
static inline int goulette_errno(int rv)
{
    switch (rv) {
    case GOULETTE_ENOTLEADER:
    case GOULETTE_ENOLEADER:
    case GOULETTE_ENOQUORUM:
    case GOULETTE_EDROPPED:
    case GOULETTE_ETRANSFER:
        return -EAGAIN;
    case GOULETTE_ECORRUPT:
        return -EIO;
    case GOULETTE_ESHUTDOWN:
        return -ESHUTDOWN;
    case GOULETTE_ECONFCHANGE:
        return -EBUSY;
    case GOULETTE_ENOTFOUND:
        return -ENOENT;
    case GOULETTE_ECLUSTER:
        return -EPERM;
    case GOULETTE_EREJECTED:
        return -EINVAL;
    case GOULETTE_ENOBROKERS:
        return -ENOSPC;
    case GOULETTE_EVERSION:
        return -EPROTO;
    default:
        return rv;
    }
}

#endif /* GOULETTE_ERR_H */
