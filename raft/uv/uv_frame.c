/* Peer wire framing (see uv_frame.h): frame headers, the incremental frame
 * decoder and the handshake / acknowledgement payloads.  Pure: no I/O.  All
 * input is untrusted and every inconsistency is an error code, never an
 * assertion. */
#include "uv_frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

void raft_uv__frame_header(uint8_t out[RAFT_UV_FRAME_HEADER],
                           enum raft_uv_frame_kind kind,
                           uint32_t len)
{
    put_u32(out, len);
    out[4] = (uint8_t)kind;
}

void raft_uv__frame_decoder_init(struct raft_uv__frame_decoder *d, uint32_t max)
{
    memset(d, 0, sizeof *d);
    d->max = max;
}

void raft_uv__frame_decoder_fini(struct raft_uv__frame_decoder *d)
{
    free(d->payload);
    d->payload = NULL;
}

void raft_uv__frame_decoder_set_max(struct raft_uv__frame_decoder *d,
                                    uint32_t max)
{
    d->max = max;
}

/* The header is complete: validate it and prepare for the payload. */
static int decoder_start_payload(struct raft_uv__frame_decoder *d)
{
    uint32_t len = get_u32(d->header);
    uint8_t kind = d->header[4];

    if (kind == 0 || kind > RAFT_UV_FRAME_KIND_MAX) {
        return -EBADMSG;
    }
    if (len > d->max) {
        return -EMSGSIZE;
    }
    d->kind = kind;
    d->payload_len = len;
    d->payload_got = 0;
    d->payload = NULL;
    if (len > 0) {
        d->payload = malloc(len);
        if (d->payload == NULL) {
            return -ENOMEM;
        }
    }
    return 0;
}

long raft_uv__frame_decoder_feed(struct raft_uv__frame_decoder *d,
                                 const void *data,
                                 size_t len,
                                 struct raft_uv__frame *frame)
{
    const uint8_t *p = data;
    size_t used = 0;
    size_t n;
    int rv;

    frame->kind = 0;
    frame->payload.base = NULL;
    frame->payload.len = 0;

    if (d->header_len < RAFT_UV_FRAME_HEADER) {
        n = RAFT_UV_FRAME_HEADER - d->header_len;
        if (n > len) {
            n = len;
        }
        memcpy(d->header + d->header_len, p, n);
        d->header_len += n;
        used += n;
        if (d->header_len < RAFT_UV_FRAME_HEADER) {
            return (long)used;
        }
        rv = decoder_start_payload(d);
        if (rv != 0) {
            return rv;
        }
    }

    n = d->payload_len - d->payload_got;
    if (n > len - used) {
        n = len - used;
    }
    if (n > 0) {
        memcpy(d->payload + d->payload_got, p + used, n);
        d->payload_got += n;
        used += n;
    }
    if (d->payload_got == d->payload_len) {
        frame->kind = d->kind;
        frame->payload.base = d->payload;
        frame->payload.len = d->payload_len;
        d->payload = NULL;
        d->payload_len = 0;
        d->payload_got = 0;
        d->header_len = 0;
        d->kind = 0;
    }
    return (long)used;
}

long raft_uv__handshake_encode(const struct raft_uv__handshake *h,
                               uint8_t out[RAFT_UV_HANDSHAKE_MAX])
{
    size_t alen = strnlen(h->address, sizeof h->address);

    if (alen == sizeof h->address) {
        return -EINVAL;
    }
    put_u32(out, RAFT_UV_HANDSHAKE_MAGIC);
    put_u16(out + 4, h->version);
    put_u16(out + 6, 0); /* flags: none defined */
    put_u64(out + 8, h->cluster_id);
    put_u64(out + 16, h->from);
    put_u64(out + 24, h->to);
    put_u16(out + 32, (uint16_t)alen);
    memcpy(out + RAFT_UV_HANDSHAKE_FIXED, h->address, alen);
    return (long)(RAFT_UV_HANDSHAKE_FIXED + alen);
}

int raft_uv__handshake_decode(const void *payload,
                              size_t len,
                              struct raft_uv__handshake *h)
{
    const uint8_t *p = payload;
    size_t alen;

    memset(h, 0, sizeof *h);
    /* Magic and version come first and never move, so that a later
     * version can always be recognised and refused by name. */
    if (len < 6 || get_u32(p) != RAFT_UV_HANDSHAKE_MAGIC) {
        return -EBADMSG;
    }
    h->version = get_u16(p + 4);
    if (h->version != RAFT_UV_PROTOCOL_VERSION) {
        return GOULETTE_EVERSION;
    }
    if (len < RAFT_UV_HANDSHAKE_FIXED) {
        return -EBADMSG;
    }
    alen = get_u16(p + 32);
    if (alen >= RAFT_ADDRESS_MAX || len != RAFT_UV_HANDSHAKE_FIXED + alen) {
        return -EBADMSG;
    }
    if (memchr(p + RAFT_UV_HANDSHAKE_FIXED, '\0', alen) != NULL) {
        return -EBADMSG;
    }
    h->cluster_id = get_u64(p + 8);
    h->from = get_u64(p + 16);
    h->to = get_u64(p + 24);
    if (h->from == 0) {
        return -EBADMSG;
    }
    memcpy(h->address, p + RAFT_UV_HANDSHAKE_FIXED, alen);
    h->address[alen] = '\0';
    return 0;
}

void raft_uv__ack_encode(int status, uint8_t out[RAFT_UV_ACK_SIZE])
{
    put_u32(out, (uint32_t)status);
}

int raft_uv__ack_decode(const void *payload, size_t len, int *status)
{
    int32_t v;

    if (len != RAFT_UV_ACK_SIZE) {
        return -EBADMSG;
    }
    v = (int32_t)get_u32(payload);
    if (v > 0) {
        return -EBADMSG;
    }
    *status = v;
    return 0;
}
