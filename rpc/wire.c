/* gRPC wire helpers (wire.h): grpc-timeout, grpc-message escaping,
 * content-type, and the abuse-metering token bucket.  Pure functions of
 * their arguments; the HTTP/2 driver and the server feed them header values
 * and the loop's clock. */
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int rpc_wire_timeout_parse(const char *v, size_t len, uint64_t *out_ms)
{
    uint64_t n = 0;
    uint64_t ms;
    size_t i;

    /* "TimeoutValue -> {positive integer as ASCII string of at most 8
     * digits}" followed by one TimeoutUnit (gRPC PROTOCOL-HTTP2.md). */
    if (len < 2 || len > 9) {
        return -EINVAL;
    }
    for (i = 0; i + 1 < len; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return -EINVAL;
        }
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    switch (v[len - 1]) {
    case 'H':
        ms = n * 3600 * 1000;
        break;
    case 'M':
        ms = n * 60 * 1000;
        break;
    case 'S':
        ms = n * 1000;
        break;
    case 'm':
        ms = n;
        break;
    case 'u':
        ms = (n + 999) / 1000;
        break;
    case 'n':
        ms = (n + 999999) / 1000000;
        break;
    default:
        return -EINVAL;
    }
    *out_ms = ms;
    return 0;
}

void rpc_wire_timeout_format(uint64_t ms, char out[16])
{
    if (ms < 100000000) {
        snprintf(out, 16, "%llum", (unsigned long long)ms);
    } else if (ms / 1000 < 100000000) {
        snprintf(out, 16, "%lluS", (unsigned long long)((ms + 999) / 1000));
    } else if (ms / 60000 < 100000000) {
        snprintf(out, 16, "%lluM", (unsigned long long)((ms + 59999) / 60000));
    } else {
        snprintf(out, 16, "%lluH", 99999999ULL);
    }
}

static bool wire_unreserved(unsigned char c)
{
    return c >= 0x20 && c <= 0x7e && c != '%';
}

size_t rpc_wire_message_encode(const char *msg,
                               size_t len,
                               char *out,
                               size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t need = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (wire_unreserved(c)) {
            if (need < cap) {
                out[need] = (char)c;
            }
            need++;
            continue;
        }
        if (need + 3 <= cap) {
            out[need] = '%';
            out[need + 1] = hex[c >> 4];
            out[need + 2] = hex[c & 15];
        }
        need += 3;
    }
    return need;
}

static int wire_hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

size_t rpc_wire_message_decode(const char *in, size_t len, char *out)
{
    size_t i = 0;
    size_t o = 0;

    while (i < len) {
        if (in[i] == '%' && i + 2 < len && wire_hexval(in[i + 1]) >= 0 &&
            wire_hexval(in[i + 2]) >= 0) {
            out[o++] =
                (char)(wire_hexval(in[i + 1]) * 16 + wire_hexval(in[i + 2]));
            i += 3;
            continue;
        }
        out[o++] = in[i++];
    }
    out[o] = '\0';
    return o;
}

bool rpc_wire_content_type_ok(const char *v, size_t len)
{
    static const char base[] = "application/grpc";
    size_t n = sizeof base - 1;

    if (len < n || strncasecmp(v, base, n) != 0) {
        return false;
    }
    return len == n || v[n] == '+' || v[n] == ';';
}

void rpc_wire_bucket_init(struct rpc_wire_bucket *b,
                          uint32_t burst,
                          uint32_t per_sec,
                          uint64_t now_ms)
{
    b->burst = burst;
    b->per_sec = per_sec;
    b->milli = (uint64_t)burst * 1000;
    b->last_ms = now_ms;
}

bool rpc_wire_bucket_take(struct rpc_wire_bucket *b, uint64_t now_ms)
{
    uint64_t cap = (uint64_t)b->burst * 1000;

    if (now_ms > b->last_ms) {
        /* per_sec tokens per 1000 ms is per_sec milli-tokens per ms. */
        uint64_t add = (now_ms - b->last_ms) * b->per_sec;
        b->milli = (b->milli + add > cap) ? cap : b->milli + add;
        b->last_ms = now_ms;
    }
    if (b->milli < 1000) {
        return false;
    }
    b->milli -= 1000;
    return true;
}
