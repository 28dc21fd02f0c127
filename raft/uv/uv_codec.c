/* The Raft message codec (see uv_codec.h): struct raft_message <-> the
 * protobuf-c Message of raft.proto, and the validation rules that every
 * decoded message passes before the node sees it.  No I/O.
 *
 * Decoding avoids a second copy of the bulk bytes (entry data, snapshot
 * chunks): protobuf-c allocates every bytes field separately with the
 * allocator we pass (malloc/free), so the decoded struct takes those
 * buffers over and clears them in the unpacked message before freeing it. */
#include "uv_codec.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raft.pb-c.h"

static bool msg_type_valid(uint64_t t)
{
    return t >= RAFT_MSG_APPEND && t <= RAFT_MSG_READ_INDEX_RESP;
}

static bool entry_type_valid(uint64_t t)
{
    return t >= RAFT_ENTRY_NORMAL && t <= RAFT_ENTRY_BARRIER;
}

static bool buf_valid(const struct goulette_buf *b)
{
    return b->len == 0 || b->base != NULL;
}

static int check_entries(const struct raft_message *m)
{
    unsigned i;

    if (m->n_entries == 0) {
        return 0;
    }
    if (m->type != RAFT_MSG_APPEND && m->type != RAFT_MSG_PROPOSE) {
        return -EBADMSG;
    }
    if (m->n_entries > RAFT_UV_CODEC_MAX_ENTRIES || m->entries == NULL) {
        return -EBADMSG;
    }
    for (i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        if (!entry_type_valid(e->type) || !buf_valid(&e->data)) {
            return -EBADMSG;
        }
        if (e->type == RAFT_ENTRY_BARRIER && e->data.len != 0) {
            return -EBADMSG;
        }
        if (m->type != RAFT_MSG_APPEND) {
            continue; /* forwarded proposals have no position yet */
        }
        /* AppendEntries carries a contiguous run that follows
         * (log_index, log_term), with terms that never decrease and never
         * exceed the leader's term (paper §5.3, Log Matching). */
        if (e->index != m->log_index + 1 + i || e->index == 0) {
            return -EBADMSG;
        }
        if (e->term < (i == 0 ? m->log_term : m->entries[i - 1].term) ||
            e->term > m->term) {
            return -EBADMSG;
        }
    }
    return 0;
}

static int check_snapshot(const struct raft_message *m)
{
    const struct raft_snapshot_chunk *c = &m->snapshot;

    if (m->type != RAFT_MSG_SNAPSHOT) {
        if (c->data.len != 0 || c->conf.len != 0 || c->size != 0 ||
            c->offset != 0 || c->last || c->index != 0 || c->term != 0 ||
            c->conf_index != 0) {
            return -EBADMSG;
        }
        return 0;
    }
    if (!buf_valid(&c->data) || !buf_valid(&c->conf)) {
        return -EBADMSG;
    }
    if (c->offset > c->size || c->data.len > c->size - c->offset) {
        return -EBADMSG;
    }
    if (c->last != (c->offset + c->data.len == c->size)) {
        return -EBADMSG;
    }
    if (c->conf.len != 0 && !c->last) {
        return -EBADMSG;
    }
    if (c->index == 0) {
        return -EBADMSG;
    }
    return 0;
}

int raft_uv__codec_check(const struct raft_message *m)
{
    int rv;

    if (!msg_type_valid(m->type) || m->from == 0 || m->to == 0) {
        return -EBADMSG;
    }
    if (m->rv > 0) {
        return -EBADMSG;
    }
    rv = check_entries(m);
    if (rv != 0) {
        return rv;
    }
    return check_snapshot(m);
}

/* ------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------ */

static ProtobufCBinaryData pb_bytes(const struct goulette_buf *b)
{
    ProtobufCBinaryData d;
    d.len = b->len;
    d.data = b->base;
    return d;
}

/* The scalar fields of @m into @pm. */
static void encode_fields(const struct raft_message *m,
                          Goulette__Raft__Message *pm)
{
    pm->type = (uint32_t)m->type;
    pm->from = m->from;
    pm->to = m->to;
    pm->term = m->term;
    pm->log_index = m->log_index;
    pm->log_term = m->log_term;
    pm->commit = m->commit;
    pm->index = m->index;
    pm->reject = m->reject;
    pm->reject_hint = m->reject_hint;
    pm->hint_term = m->hint_term;
    pm->context = m->context;
    pm->transfer = m->transfer;
    pm->rv = m->rv;
}

/* The entries of @m into @pm, which borrows their data.  *@pe and *@pp are
 * returned (NULL when there are no entries); the caller frees both.
 * Errors: -ENOMEM. */
static int encode_entries(const struct raft_message *m,
                          Goulette__Raft__Message *pm,
                          Goulette__Raft__Entry **pe,
                          Goulette__Raft__Entry ***pp)
{
    unsigned i;

    *pe = NULL;
    *pp = NULL;
    if (m->n_entries == 0) {
        return 0;
    }
    *pe = calloc(m->n_entries, sizeof **pe);
    *pp = calloc(m->n_entries, sizeof **pp);
    if (*pe == NULL || *pp == NULL) {
        return -ENOMEM;
    }
    for (i = 0; i < m->n_entries; i++) {
        Goulette__Raft__Entry *e = &(*pe)[i];
        goulette__raft__entry__init(e);
        e->term = m->entries[i].term;
        e->index = m->entries[i].index;
        e->type = (uint32_t)m->entries[i].type;
        e->data = pb_bytes(&m->entries[i].data);
        (*pp)[i] = e;
    }
    pm->n_entries = m->n_entries;
    pm->entries = *pp;
    return 0;
}

/* The snapshot chunk of @m into @pc (borrowing its bytes), linked from @pm
 * on SNAPSHOT messages only. */
static void encode_snapshot(const struct raft_message *m,
                            Goulette__Raft__Message *pm,
                            Goulette__Raft__SnapshotChunk *pc)
{
    if (m->type != RAFT_MSG_SNAPSHOT) {
        return;
    }
    pc->index = m->snapshot.index;
    pc->term = m->snapshot.term;
    pc->size = m->snapshot.size;
    pc->offset = m->snapshot.offset;
    pc->last = m->snapshot.last;
    pc->data = pb_bytes(&m->snapshot.data);
    pc->conf = pb_bytes(&m->snapshot.conf);
    pc->conf_index = m->snapshot.conf_index;
    pm->snapshot = pc;
}

int raft_uv__codec_encode(const struct raft_message *m,
                          size_t headroom,
                          struct goulette_buf *out)
{
    Goulette__Raft__Message pm = GOULETTE__RAFT__MESSAGE__INIT;
    Goulette__Raft__SnapshotChunk pc = GOULETTE__RAFT__SNAPSHOT_CHUNK__INIT;
    Goulette__Raft__Entry *pe = NULL;
    Goulette__Raft__Entry **pp = NULL;
    uint8_t *buf = NULL;
    size_t size;
    int rv;

    out->base = NULL;
    out->len = 0;
    if (raft_uv__codec_check(m) != 0) {
        rv = -EINVAL;
        goto err;
    }
    encode_fields(m, &pm);
    rv = encode_entries(m, &pm, &pe, &pp);
    if (rv != 0) {
        goto err_after_entries;
    }
    encode_snapshot(m, &pm, &pc);

    size = goulette__raft__message__get_packed_size(&pm);
    buf = malloc(headroom + size > 0 ? headroom + size : 1);
    if (buf == NULL) {
        rv = -ENOMEM;
        goto err_after_entries;
    }
    goulette__raft__message__pack(&pm, buf + headroom);
    out->base = buf;
    out->len = headroom + size;
    free(pp);
    free(pe);
    return 0;

err_after_entries:
    free(pp);
    free(pe);
err:
    assert(rv == -EINVAL || rv == -ENOMEM);
    return rv;
}

/* ------------------------------------------------------------------------
 * Decoding
 * ------------------------------------------------------------------------ */

static void *codec_alloc(void *data, size_t size)
{
    (void)data;
    return malloc(size);
}

static void codec_free(void *data, void *p)
{
    (void)data;
    free(p);
}

/* Take over the bytes of @d (allocated by our allocator) into @b. */
static void steal_bytes(ProtobufCBinaryData *d, struct goulette_buf *b)
{
    if (d->len == 0) {
        b->base = NULL;
        b->len = 0;
        return; /* protobuf-c frees whatever it allocated */
    }
    b->base = d->data;
    b->len = d->len;
    d->data = NULL;
    d->len = 0;
}

static int decode_entries(Goulette__Raft__Message *pm, struct raft_message *m)
{
    size_t i;

    if (pm->n_entries == 0) {
        return 0;
    }
    if (pm->n_entries > RAFT_UV_CODEC_MAX_ENTRIES) {
        return -EBADMSG;
    }
    m->entries = calloc(pm->n_entries, sizeof *m->entries);
    if (m->entries == NULL) {
        return -ENOMEM;
    }
    m->n_entries = (unsigned)pm->n_entries;
    for (i = 0; i < pm->n_entries; i++) {
        Goulette__Raft__Entry *pe = pm->entries[i];
        struct raft_entry *e = &m->entries[i];
        if (!entry_type_valid(pe->type)) {
            return -EBADMSG;
        }
        e->term = pe->term;
        e->index = pe->index;
        e->type = (enum raft_entry_type)pe->type;
        steal_bytes(&pe->data, &e->data);
    }
    return 0;
}

static int decode_snapshot(Goulette__Raft__Message *pm, struct raft_message *m)
{
    Goulette__Raft__SnapshotChunk *pc = pm->snapshot;

    if ((pc != NULL) != (m->type == RAFT_MSG_SNAPSHOT)) {
        return -EBADMSG;
    }
    if (pc == NULL) {
        return 0;
    }
    m->snapshot.index = pc->index;
    m->snapshot.term = pc->term;
    m->snapshot.size = pc->size;
    m->snapshot.offset = pc->offset;
    m->snapshot.last = pc->last;
    m->snapshot.conf_index = pc->conf_index;
    steal_bytes(&pc->data, &m->snapshot.data);
    steal_bytes(&pc->conf, &m->snapshot.conf);
    return 0;
}

int raft_uv__codec_decode(const void *data, size_t len, struct raft_message *m)
{
    ProtobufCAllocator allocator = {codec_alloc, codec_free, NULL};
    Goulette__Raft__Message *pm;
    int rv;

    memset(m, 0, sizeof *m);
    pm = goulette__raft__message__unpack(&allocator, len, data);
    if (pm == NULL) {
        /* protobuf-c does not tell malformed input from a failed
         * allocation; input bounded by the frame limit makes the latter
         * unlikely, and refusing the message is right either way. */
        return -EBADMSG;
    }
    if (!msg_type_valid(pm->type)) {
        rv = -EBADMSG;
        goto err_unpacked;
    }
    m->type = (enum raft_msg_type)pm->type;
    m->from = pm->from;
    m->to = pm->to;
    m->term = pm->term;
    m->log_index = pm->log_index;
    m->log_term = pm->log_term;
    m->commit = pm->commit;
    m->index = pm->index;
    m->reject = pm->reject;
    m->reject_hint = pm->reject_hint;
    m->hint_term = pm->hint_term;
    m->context = pm->context;
    m->transfer = pm->transfer;
    m->rv = pm->rv;

    rv = decode_entries(pm, m);
    if (rv != 0) {
        goto err_decoded;
    }
    rv = decode_snapshot(pm, m);
    if (rv != 0) {
        goto err_decoded;
    }
    rv = raft_uv__codec_check(m);
    if (rv != 0) {
        goto err_decoded;
    }
    goulette__raft__message__free_unpacked(pm, &allocator);
    return 0;

err_decoded:
    raft_uv__codec_fini(m);
err_unpacked:
    goulette__raft__message__free_unpacked(pm, &allocator);
    assert(rv == -EBADMSG || rv == -ENOMEM);
    return rv;
}

void raft_uv__codec_fini(struct raft_message *m)
{
    unsigned i;

    if (m->entries != NULL) {
        for (i = 0; i < m->n_entries; i++) {
            free(m->entries[i].data.base);
        }
        free(m->entries);
    }
    free(m->snapshot.data.base);
    free(m->snapshot.conf.base);
    memset(m, 0, sizeof *m);
}
