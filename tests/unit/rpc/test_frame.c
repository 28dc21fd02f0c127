/* Unit tests of rpc/frame.c: the gRPC 5-byte message framing. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

static struct rpc_frame_decoder dec;

static void setup(void)
{
    rpc_frame_decoder_init(&dec, 1024, NULL);
}

static void teardown(void)
{
    rpc_frame_decoder_fini(&dec);
}

/* Frame @len bytes of a pattern into a fresh buffer. */
static unsigned char *framed(size_t len, size_t *out_len)
{
    unsigned char *body = malloc(len + 1);
    unsigned char *out = malloc(rpc_frame_encoded_len(len));
    struct goulette_buf b = {body, len};
    size_t i;

    for (i = 0; i < len; i++) {
        body[i] = (unsigned char)(i * 7 + 3);
    }
    ck_assert_int_eq(rpc_frame_encode(&b, out, rpc_frame_encoded_len(len)),
                     (long)rpc_frame_encoded_len(len));
    free(body);
    *out_len = rpc_frame_encoded_len(len);
    return out;
}

START_TEST(encode_writes_flag_and_big_endian_length)
{
    unsigned char h[5];

    rpc_frame_header_encode(h, false, 0x01020304);
    ck_assert_int_eq(h[0], 0);
    ck_assert_int_eq(h[1], 1);
    ck_assert_int_eq(h[2], 2);
    ck_assert_int_eq(h[3], 3);
    ck_assert_int_eq(h[4], 4);
    rpc_frame_header_encode(h, true, 5);
    ck_assert_int_eq(h[0], 1);
}
END_TEST

START_TEST(encode_refuses_a_small_buffer)
{
    unsigned char out[8];
    struct goulette_buf b = {"abcdef", 6};

    ck_assert_int_eq(rpc_frame_encode(&b, out, sizeof out), -ENOBUFS);
}
END_TEST

/* Every split of a framed message into two pieces decodes to the body. */
START_TEST(decode_accepts_every_two_piece_split)
{
    size_t len;
    unsigned char *f = framed(300, &len);
    size_t cut;

    for (cut = 0; cut <= len; cut++) {
        struct rpc_frame_msg m;
        bool done = false;
        long n1, n2 = 0;
        size_t i;

        rpc_frame_decoder_init(&dec, 1024, NULL);
        n1 = rpc_frame_decoder_feed(&dec, f, cut, &m, &done);
        ck_assert_int_eq(n1, (long)cut);
        if (cut < len) {
            ck_assert(!done);
            n2 = rpc_frame_decoder_feed(&dec, f + cut, len - cut, &m, &done);
            ck_assert_int_eq(n2, (long)(len - cut));
        }
        ck_assert(done);
        ck_assert(!m.compressed);
        ck_assert_uint_eq(m.body.len, 300);
        for (i = 0; i < 300; i++) {
            ck_assert_int_eq(((unsigned char *)m.body.base)[i],
                             (unsigned char)(i * 7 + 3));
        }
        ck_assert(!rpc_frame_decoder_partial(&dec));
        rpc_frame_decoder_release(&dec, &m);
        rpc_frame_decoder_fini(&dec);
    }
    free(f);
}
END_TEST

START_TEST(decode_accepts_one_byte_at_a_time)
{
    size_t len;
    unsigned char *f = framed(50, &len);
    struct rpc_frame_msg m;
    bool done = false;
    size_t i;

    for (i = 0; i < len; i++) {
        ck_assert(!done);
        ck_assert_int_eq(rpc_frame_decoder_feed(&dec, f + i, 1, &m, &done), 1);
        if (i > 0 && i + 1 < len) {
            ck_assert(rpc_frame_decoder_partial(&dec));
        }
    }
    ck_assert(done);
    ck_assert_uint_eq(m.body.len, 50);
    ck_assert_int_eq(memcmp(m.body.base, f + 5, 50), 0);
    rpc_frame_decoder_release(&dec, &m);
    free(f);
}
END_TEST

START_TEST(decode_stops_at_the_end_of_each_message)
{
    size_t l1, l2;
    unsigned char *a = framed(10, &l1);
    unsigned char *b = framed(20, &l2);
    unsigned char both[64];
    struct rpc_frame_msg m;
    bool done;
    long n;

    memcpy(both, a, l1);
    memcpy(both + l1, b, l2);
    n = rpc_frame_decoder_feed(&dec, both, l1 + l2, &m, &done);
    ck_assert_int_eq(n, (long)l1);
    ck_assert(done);
    ck_assert_uint_eq(m.body.len, 10);
    rpc_frame_decoder_release(&dec, &m);
    n = rpc_frame_decoder_feed(&dec, both + l1, l2, &m, &done);
    ck_assert_int_eq(n, (long)l2);
    ck_assert(done);
    ck_assert_uint_eq(m.body.len, 20);
    rpc_frame_decoder_release(&dec, &m);
    free(a);
    free(b);
}
END_TEST

START_TEST(decode_yields_a_zero_length_message)
{
    unsigned char z[5] = {0, 0, 0, 0, 0};
    struct rpc_frame_msg m;
    bool done;

    ck_assert_int_eq(rpc_frame_decoder_feed(&dec, z, 5, &m, &done), 5);
    ck_assert(done);
    ck_assert_uint_eq(m.body.len, 0);
    ck_assert_ptr_null(m.body.base);
}
END_TEST

START_TEST(decode_reports_the_compressed_flag)
{
    unsigned char z[6] = {1, 0, 0, 0, 1, 'x'};
    struct rpc_frame_msg m;
    bool done;

    ck_assert_int_eq(rpc_frame_decoder_feed(&dec, z, 6, &m, &done), 6);
    ck_assert(done);
    ck_assert(m.compressed);
    rpc_frame_decoder_release(&dec, &m);
}
END_TEST

START_TEST(decode_rejects_unknown_flag_bits_for_good)
{
    unsigned char z[5] = {0x02, 0, 0, 0, 0};
    unsigned char ok[5] = {0, 0, 0, 0, 0};
    struct rpc_frame_msg m;
    bool done;

    ck_assert_int_eq(rpc_frame_decoder_feed(&dec, z, 5, &m, &done), -EBADMSG);
    ck_assert(!done);
    ck_assert_int_eq(rpc_frame_decoder_feed(&dec, ok, 5, &m, &done), -EBADMSG);
}
END_TEST

START_TEST(decode_rejects_an_oversized_announcement_before_its_body)
{
    unsigned char h[5];
    struct rpc_frame_msg m;
    bool done;

    rpc_frame_header_encode(h, false, 1025);
    ck_assert_int_eq(rpc_frame_decoder_feed(&dec, h, 5, &m, &done), -EMSGSIZE);
    ck_assert_uint_eq(rpc_frame_decoder_announced(&dec), 1025);
    ck_assert_ptr_null(dec.body);
}
END_TEST

START_TEST(decode_accepts_exactly_the_maximum)
{
    size_t len;
    unsigned char *f = framed(1024, &len);
    struct rpc_frame_msg m;
    bool done;

    ck_assert_int_eq(rpc_frame_decoder_feed(&dec, f, len, &m, &done),
                     (long)len);
    ck_assert(done);
    ck_assert_uint_eq(m.body.len, 1024);
    rpc_frame_decoder_release(&dec, &m);
    free(f);
}
END_TEST

/* Memory follows the bytes received: a 1 MiB announcement followed by 10
 * bytes allocates far less than 1 MiB. */
START_TEST(decode_buffers_only_what_arrived)
{
    unsigned char h[15] = {0};
    struct rpc_frame_msg m;
    bool done;

    rpc_frame_decoder_fini(&dec);
    rpc_frame_decoder_init(&dec, 1u << 20, NULL);
    rpc_frame_header_encode(h, false, 1u << 20);
    ck_assert_int_eq(rpc_frame_decoder_feed(&dec, h, 15, &m, &done), 15);
    ck_assert(!done);
    ck_assert_uint_le(dec.body_cap, 4096);
}
END_TEST

/* Allocation failures: fail the Nth allocation, N = 1...; the decoder
 * reports -ENOMEM and leaks nothing. */
struct fault
{
    int countdown; /* fail when it reaches 0 */
    int live;      /* allocations not freed */
};

static void *fault_realloc(void *data, void *p, size_t n)
{
    struct fault *f = data;
    void *q;

    if (f->countdown-- == 0) {
        return NULL;
    }
    q = realloc(p, n);
    if (p == NULL && q != NULL) {
        f->live++;
    }
    return q;
}

static void fault_free(void *data, void *p)
{
    struct fault *f = data;

    if (p != NULL) {
        f->live--;
    }
    free(p);
}

START_TEST(decode_survives_each_failed_allocation)
{
    size_t len;
    unsigned char *f = framed(1000, &len);
    int nth;

    for (nth = 0; nth < 8; nth++) {
        struct fault fl = {nth, 0};
        struct rpc_frame_alloc a = {fault_realloc, fault_free, &fl};
        struct rpc_frame_msg m;
        bool done = false;
        long rv = 0;
        size_t i;

        rpc_frame_decoder_init(&dec, 4096, &a);
        for (i = 0; i < len && rv >= 0 && !done; i += 100) {
            size_t n = len - i < 100 ? len - i : 100;
            rv = rpc_frame_decoder_feed(&dec, f + i, n, &m, &done);
        }
        if (rv < 0) {
            ck_assert_int_eq(rv, -ENOMEM);
        } else {
            ck_assert(done);
            rpc_frame_decoder_release(&dec, &m);
        }
        rpc_frame_decoder_fini(&dec);
        ck_assert_int_eq(fl.live, 0);
    }
    free(f);
}
END_TEST

static Suite *frame_suite(void)
{
    Suite *s = suite_create("rpc_frame");
    TCase *tc;

    tc = tcase_create("encode");
    tcase_add_test(tc, encode_writes_flag_and_big_endian_length);
    tcase_add_test(tc, encode_refuses_a_small_buffer);
    suite_add_tcase(s, tc);

    tc = tcase_create("decode");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, decode_accepts_every_two_piece_split);
    tcase_add_test(tc, decode_accepts_one_byte_at_a_time);
    tcase_add_test(tc, decode_stops_at_the_end_of_each_message);
    tcase_add_test(tc, decode_yields_a_zero_length_message);
    tcase_add_test(tc, decode_reports_the_compressed_flag);
    tcase_add_test(tc, decode_accepts_exactly_the_maximum);
    tcase_add_test(tc, decode_buffers_only_what_arrived);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, decode_rejects_unknown_flag_bits_for_good);
    tcase_add_test(tc,
                   decode_rejects_an_oversized_announcement_before_its_body);
    tcase_add_test(tc, decode_survives_each_failed_allocation);
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
