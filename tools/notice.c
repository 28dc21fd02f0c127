/* PeerNotice encoding and the checks on a received one (notice.h). */
#include "notice.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/store.h>

int notice_pack(const Goulettefs__PeerNotice *n, struct goulette_buf *out)
{
    size_t len;

    out->base = NULL;
    out->len = 0;
    len = goulettefs__peer_notice__get_packed_size(n);
    if (len == 0) {
        return -EINVAL;
    }
    out->base = malloc(len);
    if (out->base == NULL) {
        return -ENOMEM;
    }
    out->len = goulettefs__peer_notice__pack(n, out->base);
    return 0;
}

static int name_ok(const char *name)
{
    return name != NULL ? store_name_check(name, strlen(name)) : -EINVAL;
}

int notice_unpack(const void *data, size_t len, Goulettefs__PeerNotice **out)
{
    Goulettefs__PeerNotice *n;
    size_t i;
    int rv = 0;

    *out = NULL;
    n = goulettefs__peer_notice__unpack(NULL, len, data);
    if (n == NULL) {
        return -EBADMSG;
    }
    /* Re-encoding gives back the same length only for protobuf-c's own
     * encoding: a string with a NUL inside comes out shorter. */
    if (goulettefs__peer_notice__get_packed_size(n) != len) {
        rv = -EBADMSG;
    }
    for (i = 0; rv == 0 && i < n->n_renewed_brokers; i++) {
        rv = name_ok(n->renewed_brokers[i]);
    }
    for (i = 0; rv == 0 && i < n->n_delivered; i++) {
        rv = n->delivered[i] != NULL ? name_ok(n->delivered[i]->topic)
                                     : -EBADMSG;
    }
    if (rv != 0) {
        goulettefs__peer_notice__free_unpacked(n, NULL);
        return rv;
    }
    *out = n;
    return 0;
}

void notice_free(Goulettefs__PeerNotice *n)
{
    if (n != NULL) {
        goulettefs__peer_notice__free_unpacked(n, NULL);
    }
}
