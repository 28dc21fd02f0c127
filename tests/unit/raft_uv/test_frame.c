/* Unit tests of the peer wire framing (raft/uv/uv_frame.c): frame headers,
 * the incremental decoder under arbitrary splits, limits, and the
 * handshake / acknowledgement payloads. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>

#include "failmalloc.h"
#include "uv_frame.h"

/* A small deterministic PRNG for the split tests (seed printed on
 * failure through the assertion messages). */
static uint64_t prng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Append one frame of @kind with @len payload bytes (pattern derived from
 * @tag) to @out at @off; returns the new offset. */
static size_t put_frame(uint8_t *out,
                        size_t off,
                        uint8_t kind,
                        uint32_t len,
                        uint8_t tag)
{
    uint32_t i;

    raft_uv__frame_header(out + off, kind, len);
    for (i = 0; i < len; i++) {
        out[off + RAFT_UV_FRAME_HEADER + i] = (uint8_t)(tag + i * 7);
    }
    return off + RAFT_UV_FRAME_HEADER + len;
}

static void check_payload(const struct raft_uv__frame *f,
                          uint32_t len,
                          uint8_t tag)
{
    const uint8_t *p = f->payload.base;
    uint32_t i;

    ck_assert_uint_eq(f->payload.len, len);
    for (i = 0; i < len; i++) {
        ck_assert_uint_eq(p[i], (uint8_t)(tag + i * 7));
    }
}

START_TEST(header_is_big_endian_length_then_kind)
{
    uint8_t h[RAFT_UV_FRAME_HEADER];

    raft_uv__frame_header(h, RAFT_UV_FRAME_MESSAGE, 0x01020304);
    ck_assert_uint_eq(h[0], 1);
    ck_assert_uint_eq(h[1], 2);
    ck_assert_uint_eq(h[2], 3);
    ck_assert_uint_eq(h[3], 4);
    ck_assert_uint_eq(h[4], RAFT_UV_FRAME_MESSAGE);
}
END_TEST

START_TEST(whole_stream_in_one_feed_yields_every_frame)
{
    static const uint32_t lens[] = {0, 1, 4, 300, 5000, 2};
    uint8_t *buf = malloc(8192 * 2);
    struct raft_uv__frame_decoder d;
    struct raft_uv__frame f;
    size_t off = 0, pos = 0;
    unsigned i, got = 0;
    long n;

    for (i = 0; i < 6; i++) {
        off = put_frame(buf, off, (uint8_t)(1 + i % 3), lens[i], (uint8_t)i);
    }
    raft_uv__frame_decoder_init(&d, 1 << 20);
    while (pos < off) {
        n = raft_uv__frame_decoder_feed(&d, buf + pos, off - pos, &f);
        ck_assert_int_gt(n, 0);
        pos += (size_t)n;
        if (f.kind != 0) {
            ck_assert_uint_eq(f.kind, 1 + got % 3);
            check_payload(&f, lens[got], (uint8_t)got);
            free(f.payload.base);
            got++;
        }
    }
    ck_assert_uint_eq(got, 6);
    raft_uv__frame_decoder_fini(&d);
    free(buf);
}
END_TEST

START_TEST(random_splits_yield_the_same_frames)
{
    enum { FRAMES = 40 };
    uint32_t lens[FRAMES];
    uint8_t *buf = malloc(FRAMES * (RAFT_UV_FRAME_HEADER + 3000));
    uint64_t seed = 0x1234567u + (uint64_t)_i * 7919u;
    struct raft_uv__frame_decoder d;
    struct raft_uv__frame f;
    size_t off = 0, pos = 0, chunk;
    unsigned i, got = 0;
    long n;

    for (i = 0; i < FRAMES; i++) {
        lens[i] = (uint32_t)(prng_next(&seed) % 3000);
        if (i % 5 == 0) {
            lens[i] = 0;
        }
        off = put_frame(buf, off, RAFT_UV_FRAME_MESSAGE, lens[i], (uint8_t)i);
    }
    raft_uv__frame_decoder_init(&d, 4096);
    while (pos < off) {
        /* Splits of 1..17 bytes, sometimes large. */
        chunk = 1 + prng_next(&seed) % (prng_next(&seed) % 4 == 0 ? 4000 : 17);
        if (chunk > off - pos) {
            chunk = off - pos;
        }
        while (chunk > 0) {
            n = raft_uv__frame_decoder_feed(&d, buf + pos, chunk, &f);
            ck_assert_msg(n >= 0, "seed iteration %d: error %ld", _i, n);
            ck_assert_uint_le((size_t)n, chunk);
            pos += (size_t)n;
            chunk -= (size_t)n;
            if (f.kind != 0) {
                ck_assert_uint_lt(got, FRAMES);
                ck_assert_uint_eq(f.kind, RAFT_UV_FRAME_MESSAGE);
                check_payload(&f, lens[got], (uint8_t)got);
                free(f.payload.base);
                got++;
            } else {
                ck_assert_uint_eq(chunk, 0);
            }
        }
    }
    ck_assert_uint_eq(got, FRAMES);
    raft_uv__frame_decoder_fini(&d);
    free(buf);
}
END_TEST

START_TEST(oversized_frame_is_refused_before_its_payload)
{
    uint8_t h[RAFT_UV_FRAME_HEADER];
    struct raft_uv__frame_decoder d;
    struct raft_uv__frame f;

    raft_uv__frame_decoder_init(&d, 1000);
    raft_uv__frame_header(h, RAFT_UV_FRAME_MESSAGE, 1001);
    ck_assert_int_eq(raft_uv__frame_decoder_feed(&d, h, 3, &f), 3);
    ck_assert_int_eq(raft_uv__frame_decoder_feed(&d, h + 3, 2, &f), -EMSGSIZE);
    raft_uv__frame_decoder_fini(&d);

    raft_uv__frame_decoder_init(&d, 1000);
    raft_uv__frame_header(h, RAFT_UV_FRAME_MESSAGE, 0xFFFFFFFFu);
    ck_assert_int_eq(raft_uv__frame_decoder_feed(&d, h, sizeof h, &f),
                     -EMSGSIZE);
    raft_uv__frame_decoder_fini(&d);
}
END_TEST

START_TEST(frame_at_the_limit_is_accepted)
{
    uint8_t *buf = malloc(RAFT_UV_FRAME_HEADER + 1000);
    struct raft_uv__frame_decoder d;
    struct raft_uv__frame f;

    put_frame(buf, 0, RAFT_UV_FRAME_ACK, 1000, 9);
    raft_uv__frame_decoder_init(&d, 1000);
    ck_assert_int_eq(
        raft_uv__frame_decoder_feed(&d, buf, RAFT_UV_FRAME_HEADER + 1000, &f),
        RAFT_UV_FRAME_HEADER + 1000);
    ck_assert_uint_eq(f.kind, RAFT_UV_FRAME_ACK);
    check_payload(&f, 1000, 9);
    free(f.payload.base);
    raft_uv__frame_decoder_fini(&d);
    free(buf);
}
END_TEST

START_TEST(unknown_kind_is_refused)
{
    uint8_t h[RAFT_UV_FRAME_HEADER];
    struct raft_uv__frame_decoder d;
    struct raft_uv__frame f;

    raft_uv__frame_decoder_init(&d, 1000);
    raft_uv__frame_header(h, 0, 4);
    ck_assert_int_eq(raft_uv__frame_decoder_feed(&d, h, sizeof h, &f),
                     -EBADMSG);
    raft_uv__frame_decoder_fini(&d);
    raft_uv__frame_decoder_init(&d, 1000);
    h[4] = RAFT_UV_FRAME_KIND_MAX + 1;
    ck_assert_int_eq(raft_uv__frame_decoder_feed(&d, h, sizeof h, &f),
                     -EBADMSG);
    raft_uv__frame_decoder_fini(&d);
}
END_TEST

START_TEST(app_kind_is_decoded_and_kind_five_is_not)
{
    uint8_t buf[RAFT_UV_FRAME_HEADER + 3] = {0};
    struct raft_uv__frame_decoder d;
    struct raft_uv__frame f;

    ck_assert_int_eq(RAFT_UV_FRAME_KIND_MAX, RAFT_UV_FRAME_APP);
    raft_uv__frame_decoder_init(&d, 1000);
    raft_uv__frame_header(buf, RAFT_UV_FRAME_APP, 3);
    memcpy(buf + RAFT_UV_FRAME_HEADER, "abc", 3);
    ck_assert_int_eq(raft_uv__frame_decoder_feed(&d, buf, sizeof buf, &f),
                     (long)sizeof buf);
    ck_assert_uint_eq(f.kind, RAFT_UV_FRAME_APP);
    ck_assert_uint_eq(f.payload.len, 3);
    ck_assert_int_eq(memcmp(f.payload.base, "abc", 3), 0);
    free(f.payload.base);
    raft_uv__frame_header(buf, RAFT_UV_FRAME_APP + 1, 3);
    ck_assert_int_eq(raft_uv__frame_decoder_feed(&d, buf, sizeof buf, &f),
                     -EBADMSG);
    raft_uv__frame_decoder_fini(&d);
}
END_TEST

START_TEST(lowered_limit_applies_to_the_next_frame)
{
    uint8_t buf[2 * RAFT_UV_FRAME_HEADER + 200];
    struct raft_uv__frame_decoder d;
    struct raft_uv__frame f;
    size_t off;
    long n;

    off = put_frame(buf, 0, RAFT_UV_FRAME_MESSAGE, 100, 1);
    off = put_frame(buf, off, RAFT_UV_FRAME_MESSAGE, 100, 2);
    raft_uv__frame_decoder_init(&d, 100);
    n = raft_uv__frame_decoder_feed(&d, buf, off, &f);
    ck_assert_int_eq(n, RAFT_UV_FRAME_HEADER + 100);
    free(f.payload.base);
    raft_uv__frame_decoder_set_max(&d, 99);
    ck_assert_int_eq(raft_uv__frame_decoder_feed(&d, buf + n, off - n, &f),
                     -EMSGSIZE);
    raft_uv__frame_decoder_fini(&d);
}
END_TEST

START_TEST(fini_frees_a_partial_payload)
{
    uint8_t buf[RAFT_UV_FRAME_HEADER + 50];
    struct raft_uv__frame_decoder d;
    struct raft_uv__frame f;

    put_frame(buf, 0, RAFT_UV_FRAME_MESSAGE, 50, 3);
    raft_uv__frame_decoder_init(&d, 100);
    ck_assert_int_eq(raft_uv__frame_decoder_feed(&d, buf, 20, &f), 20);
    ck_assert_uint_eq(f.kind, 0);
    raft_uv__frame_decoder_fini(&d); /* ASan reports a leak otherwise */
}
END_TEST

START_TEST(failed_payload_allocation_returns_enomem_and_leaks_nothing)
{
    uint8_t buf[RAFT_UV_FRAME_HEADER + 100];
    struct raft_uv__frame_decoder d;
    struct raft_uv__frame f;
    long before, after, n;

    put_frame(buf, 0, RAFT_UV_FRAME_MESSAGE, 100, 4);
    raft_uv__frame_decoder_init(&d, 1000);
    before = failmalloc_outstanding();
    failmalloc_arm(1);
    n = raft_uv__frame_decoder_feed(&d, buf, sizeof buf, &f);
    failmalloc_arm(0);
    raft_uv__frame_decoder_fini(&d);
    after = failmalloc_outstanding();
    ck_assert_int_eq(n, -ENOMEM);
    ck_assert(failmalloc_fired);
    ck_assert_int_eq(after, before);
}
END_TEST

/* ------------------------------------------------------------------------ */

static struct raft_uv__handshake sample_handshake(void)
{
    struct raft_uv__handshake h;

    memset(&h, 0, sizeof h);
    h.version = RAFT_UV_PROTOCOL_VERSION;
    h.cluster_id = 0xC0FFEE0011223344ULL;
    h.from = 2;
    h.to = 3;
    strcpy(h.address, "127.0.0.1:7002");
    return h;
}

START_TEST(handshake_round_trips)
{
    struct raft_uv__handshake h = sample_handshake(), g;
    uint8_t buf[RAFT_UV_HANDSHAKE_MAX];
    long n = raft_uv__handshake_encode(&h, buf);

    ck_assert_int_eq(n, RAFT_UV_HANDSHAKE_FIXED + 14);
    ck_assert_int_eq(raft_uv__handshake_decode(buf, (size_t)n, &g), 0);
    ck_assert_uint_eq(g.version, RAFT_UV_PROTOCOL_VERSION);
    ck_assert_uint_eq(g.cluster_id, h.cluster_id);
    ck_assert_uint_eq(g.from, 2);
    ck_assert_uint_eq(g.to, 3);
    ck_assert_str_eq(g.address, "127.0.0.1:7002");
}
END_TEST

START_TEST(handshake_with_longest_address_round_trips)
{
    struct raft_uv__handshake h = sample_handshake(), g;
    uint8_t buf[RAFT_UV_HANDSHAKE_MAX];
    long n;

    memset(h.address, 'a', RAFT_ADDRESS_MAX - 1);
    h.address[RAFT_ADDRESS_MAX - 1] = '\0';
    n = raft_uv__handshake_encode(&h, buf);
    ck_assert_int_eq(n, RAFT_UV_HANDSHAKE_MAX);
    ck_assert_int_eq(raft_uv__handshake_decode(buf, (size_t)n, &g), 0);
    ck_assert_str_eq(g.address, h.address);
}
END_TEST

START_TEST(handshake_encode_refuses_unterminated_address)
{
    struct raft_uv__handshake h = sample_handshake();
    uint8_t buf[RAFT_UV_HANDSHAKE_MAX];

    memset(h.address, 'a', sizeof h.address);
    ck_assert_int_eq(raft_uv__handshake_encode(&h, buf), -EINVAL);
}
END_TEST

START_TEST(handshake_decode_refuses_malformed_payloads)
{
    struct raft_uv__handshake h = sample_handshake(), g;
    uint8_t buf[RAFT_UV_HANDSHAKE_MAX + 8];
    long n = raft_uv__handshake_encode(&h, buf);
    size_t k;

    /* Every truncation. */
    for (k = 0; k < (size_t)n; k++) {
        ck_assert_int_eq(raft_uv__handshake_decode(buf, k, &g), -EBADMSG);
    }
    /* Trailing byte. */
    buf[n] = 'x';
    ck_assert_int_eq(raft_uv__handshake_decode(buf, (size_t)n + 1, &g),
                     -EBADMSG);
    /* Bad magic. */
    buf[0] ^= 0xFF;
    ck_assert_int_eq(raft_uv__handshake_decode(buf, (size_t)n, &g), -EBADMSG);
    buf[0] ^= 0xFF;
    /* Address length longer than the payload. */
    buf[33] = (uint8_t)(buf[33] + 1);
    ck_assert_int_eq(raft_uv__handshake_decode(buf, (size_t)n, &g), -EBADMSG);
    buf[33] = (uint8_t)(buf[33] - 1);
    /* Address length above the maximum. */
    buf[32] = 0x01;
    buf[33] = 0x00;
    ck_assert_int_eq(raft_uv__handshake_decode(buf, 34 + 256, &g), -EBADMSG);
    buf[32] = 0;
    buf[33] = 14;
    /* NUL inside the address. */
    buf[RAFT_UV_HANDSHAKE_FIXED + 3] = '\0';
    ck_assert_int_eq(raft_uv__handshake_decode(buf, (size_t)n, &g), -EBADMSG);
    buf[RAFT_UV_HANDSHAKE_FIXED + 3] = '.';
    ck_assert_int_eq(raft_uv__handshake_decode(buf, (size_t)n, &g), 0);
    /* Sender 0. */
    memset(buf + 16, 0, 8);
    ck_assert_int_eq(raft_uv__handshake_decode(buf, (size_t)n, &g), -EBADMSG);
}
END_TEST

START_TEST(handshake_of_another_version_is_named)
{
    struct raft_uv__handshake h = sample_handshake(), g;
    uint8_t buf[RAFT_UV_HANDSHAKE_MAX];
    long n;

    h.version = 7;
    n = raft_uv__handshake_encode(&h, buf);
    ck_assert_int_eq(raft_uv__handshake_decode(buf, (size_t)n, &g),
                     GOULETTE_EVERSION);
    ck_assert_uint_eq(g.version, 7);
    /* Only magic and version are needed to recognise it. */
    ck_assert_int_eq(raft_uv__handshake_decode(buf, 6, &g), GOULETTE_EVERSION);
}
END_TEST

START_TEST(ack_round_trips_and_refuses_garbage)
{
    uint8_t buf[RAFT_UV_ACK_SIZE];
    int status = 1;

    raft_uv__ack_encode(0, buf);
    ck_assert_int_eq(raft_uv__ack_decode(buf, sizeof buf, &status), 0);
    ck_assert_int_eq(status, 0);
    raft_uv__ack_encode(GOULETTE_ECLUSTER, buf);
    ck_assert_int_eq(raft_uv__ack_decode(buf, sizeof buf, &status), 0);
    ck_assert_int_eq(status, GOULETTE_ECLUSTER);
    ck_assert_int_eq(raft_uv__ack_decode(buf, 3, &status), -EBADMSG);
    raft_uv__ack_encode(5, buf);
    ck_assert_int_eq(raft_uv__ack_decode(buf, sizeof buf, &status), -EBADMSG);
}
END_TEST

static Suite *frame_suite(void)
{
    Suite *s = suite_create("raft_uv_frame");
    TCase *tc;

    tc = tcase_create("decoder");
    tcase_add_test(tc, header_is_big_endian_length_then_kind);
    tcase_add_test(tc, app_kind_is_decoded_and_kind_five_is_not);
    tcase_add_test(tc, whole_stream_in_one_feed_yields_every_frame);
    tcase_add_loop_test(tc, random_splits_yield_the_same_frames, 0, 20);
    tcase_add_test(tc, frame_at_the_limit_is_accepted);
    tcase_add_test(tc, fini_frees_a_partial_payload);
    tcase_add_test(tc,
                   failed_payload_allocation_returns_enomem_and_leaks_nothing);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_test(tc, oversized_frame_is_refused_before_its_payload);
    tcase_add_test(tc, unknown_kind_is_refused);
    tcase_add_test(tc, lowered_limit_applies_to_the_next_frame);
    suite_add_tcase(s, tc);

    tc = tcase_create("handshake");
    tcase_add_test(tc, handshake_round_trips);
    tcase_add_test(tc, handshake_with_longest_address_round_trips);
    tcase_add_test(tc, handshake_encode_refuses_unterminated_address);
    tcase_add_test(tc, handshake_decode_refuses_malformed_payloads);
    tcase_add_test(tc, handshake_of_another_version_is_named);
    tcase_add_test(tc, ack_round_trips_and_refuses_garbage);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(frame_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
