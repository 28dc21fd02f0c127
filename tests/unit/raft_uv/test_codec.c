/* Unit tests of the Raft message codec (raft/uv/uv_codec.c): round trips
 * of every message type, a corpus of malformed inputs, and a bounded fuzz
 * loop of random mutations that must never crash (run under ASan/UBSan in
 * CI's sanitizer build). */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>

#include "failmalloc.h"
#include "raft.pb-c.h"
#include "uv_codec.h"

static uint64_t prng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static char data_a[] = "set topics/orders 3";
static char data_b[] = "\x00\x01\x02\xff binary";
static char conf_bytes[] = "conf-v1:1,2,3";

static struct raft_entry sample_entries[3];

/* A message of @type with every field that type uses set to a distinctive
 * value (and, to prove the codec carries every field, the generic ones set
 * too). */
static struct raft_message sample(enum raft_msg_type type)
{
    struct raft_message m;

    memset(&m, 0, sizeof m);
    m.type = type;
    m.from = 1;
    m.to = 0xFFFFFFFFFFFFFFFFULL;
    m.term = 9;
    m.log_index = 41;
    m.log_term = 7;
    m.commit = 40;
    m.index = 77;
    m.reject = true;
    m.reject_hint = 12345678901ULL;
    m.hint_term = 6;
    m.context = 0xDEADBEEFCAFEULL;
    m.transfer = true;
    m.rv = GOULETTE_ENOTLEADER;
    if (type == RAFT_MSG_APPEND || type == RAFT_MSG_PROPOSE) {
        sample_entries[0] = (struct raft_entry){
            8, 42, RAFT_ENTRY_NORMAL, {data_a, sizeof data_a - 1}};
        sample_entries[1] =
            (struct raft_entry){9, 43, RAFT_ENTRY_BARRIER, {NULL, 0}};
        sample_entries[2] = (struct raft_entry){
            9, 44, RAFT_ENTRY_CONF, {data_b, sizeof data_b - 1}};
        m.entries = sample_entries;
        m.n_entries = 3;
    }
    if (type == RAFT_MSG_SNAPSHOT) {
        m.snapshot.index = 100;
        m.snapshot.term = 5;
        m.snapshot.size = 1000 + sizeof data_a - 1;
        m.snapshot.offset = 1000;
        m.snapshot.last = true;
        m.snapshot.data = (struct goulette_buf){data_a, sizeof data_a - 1};
        m.snapshot.conf =
            (struct goulette_buf){conf_bytes, sizeof conf_bytes - 1};
        m.snapshot.conf_index = 99;
    }
    return m;
}

static void assert_buf_eq(const struct goulette_buf *a,
                          const struct goulette_buf *b)
{
    ck_assert_uint_eq(a->len, b->len);
    if (a->len > 0) {
        ck_assert_ptr_nonnull(a->base);
        ck_assert_ptr_nonnull(b->base);
        ck_assert_int_eq(memcmp(a->base, b->base, a->len), 0);
    }
}

static void assert_msg_eq(const struct raft_message *a,
                          const struct raft_message *b)
{
    unsigned i;

    ck_assert_int_eq(a->type, b->type);
    ck_assert_uint_eq(a->from, b->from);
    ck_assert_uint_eq(a->to, b->to);
    ck_assert_uint_eq(a->term, b->term);
    ck_assert_uint_eq(a->log_index, b->log_index);
    ck_assert_uint_eq(a->log_term, b->log_term);
    ck_assert_uint_eq(a->commit, b->commit);
    ck_assert_uint_eq(a->index, b->index);
    ck_assert_int_eq(a->reject, b->reject);
    ck_assert_uint_eq(a->reject_hint, b->reject_hint);
    ck_assert_uint_eq(a->hint_term, b->hint_term);
    ck_assert_uint_eq(a->context, b->context);
    ck_assert_int_eq(a->transfer, b->transfer);
    ck_assert_int_eq(a->rv, b->rv);
    ck_assert_uint_eq(a->n_entries, b->n_entries);
    for (i = 0; i < a->n_entries; i++) {
        ck_assert_uint_eq(a->entries[i].term, b->entries[i].term);
        ck_assert_uint_eq(a->entries[i].index, b->entries[i].index);
        ck_assert_int_eq(a->entries[i].type, b->entries[i].type);
        assert_buf_eq(&a->entries[i].data, &b->entries[i].data);
    }
    ck_assert_uint_eq(a->snapshot.index, b->snapshot.index);
    ck_assert_uint_eq(a->snapshot.term, b->snapshot.term);
    ck_assert_uint_eq(a->snapshot.size, b->snapshot.size);
    ck_assert_uint_eq(a->snapshot.offset, b->snapshot.offset);
    ck_assert_int_eq(a->snapshot.last, b->snapshot.last);
    ck_assert_uint_eq(a->snapshot.conf_index, b->snapshot.conf_index);
    assert_buf_eq(&a->snapshot.data, &b->snapshot.data);
    assert_buf_eq(&a->snapshot.conf, &b->snapshot.conf);
}

static void round_trip(const struct raft_message *m)
{
    struct goulette_buf enc;
    struct raft_message d;

    ck_assert_int_eq(raft_uv__codec_encode(m, 5, &enc), 0);
    ck_assert_uint_ge(enc.len, 5);
    ck_assert_int_eq(
        raft_uv__codec_decode((uint8_t *)enc.base + 5, enc.len - 5, &d), 0);
    assert_msg_eq(m, &d);
    raft_uv__codec_fini(&d);
    free(enc.base);
}

START_TEST(every_message_type_round_trips)
{
    struct raft_message m = sample((enum raft_msg_type)_i);

    round_trip(&m);
}
END_TEST

START_TEST(all_zero_optional_fields_round_trip)
{
    struct raft_message m;

    memset(&m, 0, sizeof m);
    m.type = RAFT_MSG_HEARTBEAT;
    m.from = 3;
    m.to = 1;
    round_trip(&m);
}
END_TEST

START_TEST(first_and_middle_snapshot_chunks_round_trip)
{
    struct raft_message m = sample(RAFT_MSG_SNAPSHOT);

    m.snapshot.offset = 0;
    m.snapshot.size = 3 * m.snapshot.data.len;
    m.snapshot.last = false;
    m.snapshot.conf.base = NULL;
    m.snapshot.conf.len = 0;
    round_trip(&m);
    m.snapshot.offset = m.snapshot.data.len;
    round_trip(&m);
}
END_TEST

START_TEST(five_mib_snapshot_chunk_round_trips)
{
    struct raft_message m = sample(RAFT_MSG_SNAPSHOT);
    size_t len = 5u << 20, i;
    uint8_t *big = malloc(len);

    for (i = 0; i < len; i++) {
        big[i] = (uint8_t)(i * 31 + (i >> 13));
    }
    m.snapshot.offset = 0;
    m.snapshot.size = len;
    m.snapshot.data = (struct goulette_buf){big, len};
    round_trip(&m);
    free(big);
}
END_TEST

START_TEST(decoded_message_owns_its_memory)
{
    struct raft_message m = sample(RAFT_MSG_APPEND), d;
    struct goulette_buf enc;

    ck_assert_int_eq(raft_uv__codec_encode(&m, 0, &enc), 0);
    ck_assert_int_eq(raft_uv__codec_decode(enc.base, enc.len, &d), 0);
    /* Scribble over the input: the decoded message must not point into
     * it. */
    memset(enc.base, 0xAA, enc.len);
    free(enc.base);
    assert_msg_eq(&m, &d);
    raft_uv__codec_fini(&d);
    ck_assert_ptr_null(d.entries);
    ck_assert_uint_eq(d.n_entries, 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * Encoder refusals (what the decoder would refuse is never sent)
 * ------------------------------------------------------------------------ */

START_TEST(encode_refuses_inconsistent_messages)
{
    struct raft_message m;
    struct goulette_buf enc;

    m = sample(RAFT_MSG_SNAPSHOT);
    m.snapshot.data.base = NULL; /* still to be filled in (rule 3) */
    ck_assert_int_eq(raft_uv__codec_encode(&m, 0, &enc), -EINVAL);
    ck_assert_ptr_null(enc.base);

    m = sample(RAFT_MSG_VOTE);
    m.type = (enum raft_msg_type)0;
    ck_assert_int_eq(raft_uv__codec_encode(&m, 0, &enc), -EINVAL);

    m = sample(RAFT_MSG_APPEND);
    m.entries[1].index = 50;
    ck_assert_int_eq(raft_uv__codec_encode(&m, 0, &enc), -EINVAL);

    m = sample(RAFT_MSG_VOTE);
    m.from = 0;
    ck_assert_int_eq(raft_uv__codec_encode(&m, 0, &enc), -EINVAL);
}
END_TEST

/* ------------------------------------------------------------------------
 * Malformed input corpus
 * ------------------------------------------------------------------------ */

/* Encode @pm with protobuf-c directly, bypassing our validation, and
 * assert that the codec refuses it. */
static void assert_refused_pb(const Goulette__Raft__Message *pm,
                              const char *what)
{
    size_t len = goulette__raft__message__get_packed_size(pm);
    uint8_t *buf = malloc(len + 1);
    struct raft_message d;
    int rv;

    goulette__raft__message__pack(pm, buf);
    rv = raft_uv__codec_decode(buf, len, &d);
    ck_assert_msg(rv == -EBADMSG, "%s: decode returned %d", what, rv);
    free(buf);
}

/* A valid APPEND in protobuf-c form, to be broken one field at a time. */
struct pb_append
{
    Goulette__Raft__Message m;
    Goulette__Raft__Entry e[2];
    Goulette__Raft__Entry *ep[2];
};

static void pb_append_init(struct pb_append *a)
{
    static uint8_t d[] = "x";

    goulette__raft__message__init(&a->m);
    a->m.type = RAFT_MSG_APPEND;
    a->m.from = 1;
    a->m.to = 2;
    a->m.term = 5;
    a->m.log_index = 10;
    a->m.log_term = 4;
    for (int i = 0; i < 2; i++) {
        goulette__raft__entry__init(&a->e[i]);
        a->e[i].term = 5;
        a->e[i].index = 11 + (uint64_t)i;
        a->e[i].type = RAFT_ENTRY_NORMAL;
        a->e[i].data.data = d;
        a->e[i].data.len = 1;
        a->ep[i] = &a->e[i];
    }
    a->m.n_entries = 2;
    a->m.entries = a->ep;
}

START_TEST(valid_pb_append_is_accepted)
{
    struct pb_append a;
    size_t len;
    uint8_t *buf;
    struct raft_message d;

    pb_append_init(&a);
    len = goulette__raft__message__get_packed_size(&a.m);
    buf = malloc(len);
    goulette__raft__message__pack(&a.m, buf);
    ck_assert_int_eq(raft_uv__codec_decode(buf, len, &d), 0);
    ck_assert_uint_eq(d.n_entries, 2);
    raft_uv__codec_fini(&d);
    free(buf);
}
END_TEST

START_TEST(malformed_fields_are_refused)
{
    struct pb_append a;
    Goulette__Raft__SnapshotChunk c;

    pb_append_init(&a);
    a.m.type = 0;
    assert_refused_pb(&a.m, "type 0");
    a.m.type = RAFT_MSG_READ_INDEX_RESP + 1;
    assert_refused_pb(&a.m, "type past the last");
    a.m.type = 0xFFFFFFFFu;
    assert_refused_pb(&a.m, "type 2^32-1");

    pb_append_init(&a);
    a.m.from = 0;
    assert_refused_pb(&a.m, "from 0");
    pb_append_init(&a);
    a.m.to = 0;
    assert_refused_pb(&a.m, "to 0");
    pb_append_init(&a);
    a.m.rv = 3;
    assert_refused_pb(&a.m, "positive rv");

    pb_append_init(&a);
    a.e[1].type = 4;
    assert_refused_pb(&a.m, "entry type 4");
    pb_append_init(&a);
    a.e[0].type = 0;
    assert_refused_pb(&a.m, "entry type 0");
    pb_append_init(&a);
    a.e[0].type = RAFT_ENTRY_BARRIER;
    assert_refused_pb(&a.m, "barrier with data");
    pb_append_init(&a);
    a.e[1].index = 13;
    assert_refused_pb(&a.m, "gap in entry indices");
    pb_append_init(&a);
    a.e[0].index = 10;
    a.e[1].index = 11;
    assert_refused_pb(&a.m, "entries not following log_index");
    pb_append_init(&a);
    a.e[0].term = 3;
    assert_refused_pb(&a.m, "entry term below log_term");
    pb_append_init(&a);
    a.e[1].term = 4;
    assert_refused_pb(&a.m, "decreasing entry terms");
    pb_append_init(&a);
    a.e[1].term = 6;
    assert_refused_pb(&a.m, "entry term above message term");
    pb_append_init(&a);
    a.m.log_index = UINT64_MAX;
    a.e[0].index = 0;
    a.e[1].index = 1;
    assert_refused_pb(&a.m, "entry index wrapping around");
    pb_append_init(&a);
    a.m.type = RAFT_MSG_VOTE;
    assert_refused_pb(&a.m, "entries on a vote");

    /* Snapshot chunks. */
    pb_append_init(&a);
    a.m.n_entries = 0;
    a.m.type = RAFT_MSG_SNAPSHOT;
    assert_refused_pb(&a.m, "snapshot message without chunk");
    goulette__raft__snapshot_chunk__init(&c);
    c.index = 50;
    c.size = 10;
    c.offset = 8;
    c.data.data = (uint8_t *)"abc";
    c.data.len = 3;
    c.last = true;
    a.m.snapshot = &c;
    assert_refused_pb(&a.m, "chunk offset + len > size");
    c.offset = UINT64_MAX - 1;
    assert_refused_pb(&a.m, "chunk offset + len overflowing");
    c.offset = 7;
    ck_assert_int_eq(c.offset + c.data.len, c.size);
    c.last = false;
    assert_refused_pb(&a.m, "last chunk not marked last");
    c.offset = 0;
    c.last = true;
    assert_refused_pb(&a.m, "chunk marked last too early");
    c.last = false;
    c.conf.data = (uint8_t *)"conf";
    c.conf.len = 4;
    assert_refused_pb(&a.m, "conf on a chunk that is not last");
    c.conf.len = 0;
    c.index = 0;
    assert_refused_pb(&a.m, "chunk of snapshot index 0");
    c.index = 50;
    a.m.type = RAFT_MSG_HEARTBEAT;
    assert_refused_pb(&a.m, "chunk on a heartbeat");
}
END_TEST

START_TEST(too_many_entries_are_refused)
{
    Goulette__Raft__Message m = GOULETTE__RAFT__MESSAGE__INIT;
    unsigned n = RAFT_UV_CODEC_MAX_ENTRIES + 1, i;
    Goulette__Raft__Entry *e = calloc(n, sizeof *e);
    Goulette__Raft__Entry **ep = calloc(n, sizeof *ep);

    m.type = RAFT_MSG_PROPOSE;
    m.from = 2;
    m.to = 1;
    for (i = 0; i < n; i++) {
        goulette__raft__entry__init(&e[i]);
        e[i].type = RAFT_ENTRY_NORMAL;
        ep[i] = &e[i];
    }
    m.n_entries = n;
    m.entries = ep;
    assert_refused_pb(&m, "65537 entries");
    m.n_entries = n - 1;
    {
        size_t len = goulette__raft__message__get_packed_size(&m);
        uint8_t *buf = malloc(len);
        struct raft_message d;
        goulette__raft__message__pack(&m, buf);
        ck_assert_int_eq(raft_uv__codec_decode(buf, len, &d), 0);
        ck_assert_uint_eq(d.n_entries, n - 1);
        raft_uv__codec_fini(&d);
        free(buf);
    }
    free(ep);
    free(e);
}
END_TEST

START_TEST(garbage_bytes_are_refused)
{
    static const struct
    {
        const char *what;
        const char *bytes;
        size_t len;
    } corpus[] = {
        {"empty (type 0)", "", 0},
        {"truncated varint", "\x08", 1},
        {"varint of 11 bytes",
         "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12},
        {"bytes longer than input", "\x08\x01\x10\x01\x18\x01\x42\x10\x22\x05",
         10},
        {"group wire type", "\x0b\x0c", 2},
        {"wire type 7", "\x0f\x00", 2},
        {"field number 0", "\x00\x01", 2},
        {"entry submessage truncated", "\x08\x01\x10\x01\x18\x02\x42\x03\x08",
         9},
        {"huge length prefix", "\x42\xff\xff\xff\xff\x0f", 6},
        {"wrong wire type for type", "\x0a\x01\x01", 3},
    };
    struct raft_message d;
    size_t i;
    int rv;

    for (i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        rv = raft_uv__codec_decode(corpus[i].bytes, corpus[i].len, &d);
        ck_assert_msg(rv == -EBADMSG, "%s: decode returned %d", corpus[i].what,
                      rv);
    }
}
END_TEST

/* ------------------------------------------------------------------------
 * Fuzzing: random mutations of valid encodings never crash; whatever
 * decodes is valid (it encodes again).
 * ------------------------------------------------------------------------ */

START_TEST(random_mutations_never_crash)
{
    uint64_t seed = 0x5EED0000u + (uint64_t)_i;
    enum raft_msg_type type = (enum raft_msg_type)(1 + _i % 15);
    struct raft_message m = sample(type), d;
    struct goulette_buf enc, again;
    uint8_t *buf;
    size_t len, k, pos;
    unsigned it, accepted = 0;
    int rv;

    ck_assert_int_eq(raft_uv__codec_encode(&m, 0, &enc), 0);
    buf = malloc(enc.len + 64);
    for (it = 0; it < 2000; it++) {
        memcpy(buf, enc.base, enc.len);
        len = enc.len;
        for (k = 1 + prng_next(&seed) % 4; k > 0; k--) {
            pos = len > 0 ? prng_next(&seed) % len : 0;
            switch (prng_next(&seed) % 5) {
            case 0: /* flip bits */
                if (len > 0) {
                    buf[pos] ^= (uint8_t)(1u << (prng_next(&seed) % 8));
                }
                break;
            case 1: /* random byte */
                if (len > 0) {
                    buf[pos] = (uint8_t)prng_next(&seed);
                }
                break;
            case 2: /* truncate */
                len = pos;
                break;
            case 3: /* insert a byte */
                if (len < enc.len + 63) {
                    memmove(buf + pos + 1, buf + pos, len - pos);
                    buf[pos] = (uint8_t)prng_next(&seed);
                    len++;
                }
                break;
            default: /* delete a byte */
                if (len > 0) {
                    memmove(buf + pos, buf + pos + 1, len - pos - 1);
                    len--;
                }
                break;
            }
        }
        rv = raft_uv__codec_decode(buf, len, &d);
        ck_assert_msg(rv == 0 || rv == -EBADMSG,
                      "seed %d iteration %u: decode returned %d", _i, it, rv);
        if (rv == 0) {
            accepted++;
            ck_assert_int_eq(raft_uv__codec_check(&d), 0);
            ck_assert_int_eq(raft_uv__codec_encode(&d, 0, &again), 0);
            free(again.base);
            raft_uv__codec_fini(&d);
        }
    }
    (void)accepted;
    free(buf);
    free(enc.base);
}
END_TEST

/* ------------------------------------------------------------------------
 * Allocation failures: fail the n-th allocation, n = 1, 2, ... until the
 * call succeeds; every failure returns an error and leaks nothing.
 * ------------------------------------------------------------------------ */

START_TEST(failed_allocations_in_encode_return_enomem_and_leak_nothing)
{
    struct raft_message m = sample((enum raft_msg_type)_i);
    struct goulette_buf enc;
    long before, after;
    unsigned n;
    int rv;

    for (n = 1;; n++) {
        before = failmalloc_outstanding();
        failmalloc_arm(n);
        rv = raft_uv__codec_encode(&m, 5, &enc);
        failmalloc_arm(0);
        after = failmalloc_outstanding(); /* before any ck_assert: check
                                             allocates behind our back */
        if (rv == 0) {
            free(enc.base);
            break;
        }
        ck_assert_int_eq(rv, -ENOMEM);
        ck_assert_int_eq(after, before);
    }
    ck_assert_uint_ge(n, 2); /* at least one failure was injected */
}
END_TEST

START_TEST(failed_allocations_in_decode_return_an_error_and_leak_nothing)
{
    struct raft_message m = sample((enum raft_msg_type)_i), d;
    struct goulette_buf enc;
    long before, after;
    unsigned n;
    int rv;

    ck_assert_int_eq(raft_uv__codec_encode(&m, 0, &enc), 0);
    for (n = 1;; n++) {
        before = failmalloc_outstanding();
        failmalloc_arm(n);
        rv = raft_uv__codec_decode(enc.base, enc.len, &d);
        failmalloc_arm(0);
        after = failmalloc_outstanding();
        if (rv == 0) {
            assert_msg_eq(&m, &d);
            raft_uv__codec_fini(&d);
            break;
        }
        /* protobuf-c reports its own allocation failures as a failed
         * unpack, which the codec can only call malformed. */
        ck_assert(rv == -ENOMEM || rv == -EBADMSG);
        ck_assert_int_eq(after, before);
    }
    ck_assert_uint_ge(n, 2);
    free(enc.base);
}
END_TEST

static Suite *codec_suite(void)
{
    Suite *s = suite_create("raft_uv_codec");
    TCase *tc;

    tc = tcase_create("round_trip");
    tcase_add_loop_test(tc, every_message_type_round_trips, RAFT_MSG_APPEND,
                        RAFT_MSG_READ_INDEX_RESP + 1);
    tcase_add_test(tc, all_zero_optional_fields_round_trip);
    tcase_add_test(tc, first_and_middle_snapshot_chunks_round_trip);
    tcase_add_test(tc, five_mib_snapshot_chunk_round_trips);
    tcase_add_test(tc, decoded_message_owns_its_memory);
    tcase_add_test(tc, encode_refuses_inconsistent_messages);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("malformed");
    tcase_add_test(tc, valid_pb_append_is_accepted);
    tcase_add_test(tc, malformed_fields_are_refused);
    tcase_add_test(tc, too_many_entries_are_refused);
    tcase_add_test(tc, garbage_bytes_are_refused);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("allocation_failure");
    tcase_add_loop_test(
        tc, failed_allocations_in_encode_return_enomem_and_leak_nothing,
        RAFT_MSG_APPEND, RAFT_MSG_READ_INDEX_RESP + 1);
    tcase_add_loop_test(
        tc, failed_allocations_in_decode_return_an_error_and_leak_nothing,
        RAFT_MSG_APPEND, RAFT_MSG_READ_INDEX_RESP + 1);
    suite_add_tcase(s, tc);

    tc = tcase_create("fuzz");
    tcase_add_loop_test(tc, random_mutations_never_crash, 0, 30);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(codec_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
