/* Cluster membership values (dissertation §4.1: a configuration is a set of
 * servers; here voters and learners, §4.2.1) and their binary encoding for
 * RAFT_ENTRY_CONF entries and snapshot metadata.  Membership *changes* are in
 * membership.c.
 *
 * Encoding (little-endian): u8 version (1), u32 n, then per server u64 id,
 * u8 role, u16 address length, address bytes (no NUL). */
#include "configuration.h"

#include <goulette/err.h>
#include <stdlib.h>
#include <string.h>

#define CONF_VERSION 1

void raft_configuration_init(struct raft_configuration *c)
{
    c->n = 0;
    c->servers = NULL;
}

void raft_configuration_fini(struct raft_configuration *c)
{
    free(c->servers);
    c->servers = NULL;
    c->n = 0;
}

int raft_configuration_add(struct raft_configuration *c,
                           raft_id id,
                           const char *address,
                           enum raft_role role)
{
    struct raft_server *s;
    size_t len;
    unsigned i;
    if (id == 0 || address == NULL ||
        (role != RAFT_VOTER && role != RAFT_LEARNER)) {
        return -EINVAL;
    }
    len = strlen(address);
    if (len == 0 || len >= RAFT_ADDRESS_MAX) {
        return -EINVAL;
    }
    if (raft_configuration_get(c, id) != NULL) {
        return -EEXIST;
    }
    s = realloc(c->servers, (c->n + 1) * sizeof *s);
    if (s == NULL) {
        return -ENOMEM;
    }
    c->servers = s;
    /* Keep the servers sorted by id. */
    for (i = c->n; i > 0 && s[i - 1].id > id; i--) {
        s[i] = s[i - 1];
    }
    memset(&s[i], 0, sizeof s[i]);
    s[i].id = id;
    s[i].role = role;
    memcpy(s[i].address, address, len + 1);
    c->n++;
    return 0;
}

const struct raft_server *raft_configuration_get(
    const struct raft_configuration *c,
    raft_id id)
{
    unsigned i;
    for (i = 0; i < c->n; i++) {
        if (c->servers[i].id == id) {
            return &c->servers[i];
        }
    }
    return NULL;
}

int raft_configuration_copy(const struct raft_configuration *src,
                            struct raft_configuration *dst)
{
    dst->n = 0;
    dst->servers = NULL;
    if (src->n == 0) {
        return 0;
    }
    dst->servers = malloc(src->n * sizeof *dst->servers);
    if (dst->servers == NULL) {
        return -ENOMEM;
    }
    memcpy(dst->servers, src->servers, src->n * sizeof *dst->servers);
    dst->n = src->n;
    return 0;
}

static void put_le(uint8_t **p, uint64_t v, unsigned bytes)
{
    unsigned i;
    for (i = 0; i < bytes; i++) {
        (*p)[i] = (uint8_t)(v >> (8 * i));
    }
    *p += bytes;
}

static uint64_t get_le(const uint8_t **p, unsigned bytes)
{
    uint64_t v = 0;
    unsigned i;
    for (i = 0; i < bytes; i++) {
        v |= (uint64_t)(*p)[i] << (8 * i);
    }
    *p += bytes;
    return v;
}

int raft_configuration_encode(const struct raft_configuration *c,
                              struct goulette_buf *buf)
{
    size_t size = 1 + 4;
    uint8_t *p;
    unsigned i;
    for (i = 0; i < c->n; i++) {
        size += 8 + 1 + 2 + strlen(c->servers[i].address);
    }
    buf->base = malloc(size);
    if (buf->base == NULL) {
        buf->len = 0;
        return -ENOMEM;
    }
    buf->len = size;
    p = buf->base;
    put_le(&p, CONF_VERSION, 1);
    put_le(&p, c->n, 4);
    for (i = 0; i < c->n; i++) {
        size_t len = strlen(c->servers[i].address);
        put_le(&p, c->servers[i].id, 8);
        put_le(&p, (uint64_t)c->servers[i].role, 1);
        put_le(&p, len, 2);
        memcpy(p, c->servers[i].address, len);
        p += len;
    }
    return 0;
}

/* Decode one server at *p (bounded by end) into @c. */
static int decode_server(const uint8_t **p,
                         const uint8_t *end,
                         struct raft_configuration *c)
{
    char address[RAFT_ADDRESS_MAX];
    uint64_t id, role, len;
    int rv;
    if (end - *p < 11) {
        return -EBADMSG;
    }
    id = get_le(p, 8);
    role = get_le(p, 1);
    len = get_le(p, 2);
    if (len == 0 || len >= RAFT_ADDRESS_MAX || (uint64_t)(end - *p) < len) {
        return -EBADMSG;
    }
    memcpy(address, *p, len);
    address[len] = '\0';
    *p += len;
    if (memchr(address, '\0', len) != NULL) {
        return -EBADMSG;
    }
    rv = raft_configuration_add(c, id, address, (enum raft_role)role);
    if (rv == -EINVAL || rv == -EEXIST) {
        return -EBADMSG;
    }
    return rv;
}

int raft_configuration_decode(const struct goulette_buf *buf,
                              struct raft_configuration *c)
{
    const uint8_t *p = buf->base;
    const uint8_t *end;
    uint64_t n, i;
    int rv = 0;
    if (buf->base == NULL || buf->len < 5) {
        return -EBADMSG;
    }
    end = p + buf->len;
    if (get_le(&p, 1) != CONF_VERSION) {
        return -EBADMSG;
    }
    n = get_le(&p, 4);
    for (i = 0; i < n && rv == 0; i++) {
        rv = decode_server(&p, end, c);
    }
    if (rv == 0 && p != end) {
        rv = -EBADMSG;
    }
    if (rv != 0) {
        raft_configuration_fini(c);
    }
    return rv;
}

unsigned raft__conf_n_voters(const struct raft_configuration *c)
{
    unsigned i, n = 0;
    for (i = 0; i < c->n; i++) {
        n += c->servers[i].role == RAFT_VOTER;
    }
    return n;
}

bool raft__conf_is_voter(const struct raft_configuration *c, raft_id id)
{
    const struct raft_server *s = raft_configuration_get(c, id);
    return s != NULL && s->role == RAFT_VOTER;
}

unsigned raft__conf_quorum(const struct raft_configuration *c)
{
    return raft__conf_n_voters(c) / 2 + 1;
}

void raft__conf_remove(struct raft_configuration *c, raft_id id)
{
    unsigned i;
    for (i = 0; i < c->n; i++) {
        if (c->servers[i].id == id) {
            memmove(&c->servers[i], &c->servers[i + 1],
                    (c->n - i - 1) * sizeof c->servers[i]);
            c->n--;
            return;
        }
    }
}
