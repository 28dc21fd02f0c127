/* Unit tests for store/ring.c: CRC-32/IEEE and the hash ring against the
 * vectors of goulette-sentinel.md §2.6, the wrap quirk of §2.2, and the
 * no-duplicate / no-ghost / rank rules of include/goulette/ring.h. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "goulette/ring.h"

/* Walk @ring from @key with Go's GetNodes semantics (stop at the end or at
 * the wrap error, dropping that node), writing ids space-separated. */
static void walk(struct store_ring *ring, const char *key, char *out)
{
    struct store_ring_iter it;
    const char *id;
    out[0] = '\0';
    ck_assert_int_eq(store_ring_iter_init(&it, ring, key, strlen(key)), 0);
    while (store_ring_iter_next(&it, &id) == 0 && id != NULL) {
        if (out[0] != '\0') {
            strcat(out, " ");
        }
        strcat(out, id);
    }
    store_ring_iter_fini(&it);
}

static void ring_of(struct store_ring *ring,
                    unsigned vnodes,
                    const char *const *ids,
                    size_t n)
{
    ck_assert_int_eq(store_ring_init(ring, vnodes), 0);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(store_ring_add(ring, ids[i], i + 1), 0);
    }
}

START_TEST(crc32_matches_go_checksum_ieee)
{
    ck_assert_uint_eq(store_ring_crc32("", 0), 0);
    ck_assert_uint_eq(store_ring_crc32("123456789", 9), 0xCBF43926u);
    ck_assert_uint_eq(store_ring_crc32("topic1", 6), 153380485u);
    ck_assert_uint_eq(store_ring_crc32("topic2", 6), 2418882367u);
    ck_assert_uint_eq(store_ring_crc32("topic3", 6), 3878291369u);
    ck_assert_uint_eq(store_ring_crc32("test-topic", 10), 3497317594u);
    ck_assert_uint_eq(store_ring_crc32("broker1:0", 9), 3541637548u);
    ck_assert_uint_eq(store_ring_crc32("broker1:1", 9), 2753440058u);
    ck_assert_uint_eq(store_ring_crc32("broker1:149", 11), 3270347531u);
}
END_TEST

START_TEST(crc32_update_in_pieces_equals_whole)
{
    uint32_t h = store_ring_crc32_update(0, "broker1", 7);
    h = store_ring_crc32_update(h, ":149", 4);
    ck_assert_uint_eq(h, 3270347531u);
}
END_TEST

START_TEST(three_brokers_place_topics_like_go)
{
    const char *ids[] = {"broker1", "broker2", "broker3"};
    struct store_ring ring;
    char out[256];
    ring_of(&ring, STORE_RING_VNODES, ids, 3);
    walk(&ring, "topic1", out);
    ck_assert_str_eq(out, "broker3 broker1 broker2");
    walk(&ring, "topic2", out);
    ck_assert_str_eq(out, "broker3 broker2 broker1");
    walk(&ring, "topic3", out);
    ck_assert_str_eq(out, "broker3 broker2 broker1");
    store_ring_fini(&ring);
}
END_TEST

START_TEST(two_brokers_place_topic1_like_go)
{
    const char *ids[] = {"broker1", "broker2"};
    struct store_ring ring;
    char out[256];
    ring_of(&ring, STORE_RING_VNODES, ids, 2);
    walk(&ring, "topic1", out);
    ck_assert_str_eq(out, "broker1 broker2");
    store_ring_fini(&ring);
}
END_TEST

START_TEST(dashed_ids_place_test_topic_like_go)
{
    const char *ids[] = {"broker-1", "broker-2", "broker-3"};
    struct store_ring ring;
    char out[256];
    ring_of(&ring, STORE_RING_VNODES, ids, 3);
    walk(&ring, "test-topic", out);
    ck_assert_str_eq(out, "broker-2 broker-1 broker-3");
    store_ring_fini(&ring);
}
END_TEST

START_TEST(three_vnodes_ring_has_go_points_and_order)
{
    const char *ids[] = {"node1", "node2", "node3"};
    static const struct
    {
        uint32_t hash;
        const char *owner;
    } want[] = {
        {341727173u, "node3"},  {362561010u, "node2"},  {400196523u, "node1"},
        {2358602824u, "node2"}, {2371290751u, "node3"}, {2396246545u, "node1"},
        {4191478407u, "node1"}, {4199560937u, "node3"}, {4220673246u, "node2"},
    };
    struct store_ring ring;
    struct store_ring_iter it;
    char out[256];
    ring_of(&ring, 3, ids, 3);
    walk(&ring, "test-topic", out);
    ck_assert_str_eq(out, "node1 node3 node2");
    /* The walk sorted the points. */
    ck_assert_uint_eq(ring.n_points, 9);
    for (size_t i = 0; i < 9; i++) {
        ck_assert_uint_eq(ring.points[i].hash, want[i].hash);
        ck_assert_str_eq(ring.members[ring.points[i].member].id, want[i].owner);
    }
    /* Reset restarts the walk at the same place. */
    ck_assert_int_eq(store_ring_iter_init(&it, &ring, "test-topic", 10), 0);
    const char *a;
    const char *b;
    ck_assert_int_eq(store_ring_iter_next(&it, &a), 0);
    ck_assert_str_eq(a, "node1");
    ck_assert_int_eq(store_ring_iter_next(&it, &b), 0);
    ck_assert_str_eq(b, "node3");
    store_ring_iter_reset(&it);
    ck_assert_int_eq(store_ring_iter_next(&it, &a), 0);
    ck_assert_str_eq(a, "node1");
    store_ring_iter_fini(&it);
    store_ring_fini(&ring);
}
END_TEST

START_TEST(one_vnode_ring_returns_second_member_with_wrap_error)
{
    const char *ids[] = {"a", "b"};
    const char *keys[] = {"x", "y", "z", "k"};
    struct store_ring ring;
    char out[64];
    ring_of(&ring, 1, ids, 2);
    for (size_t i = 0; i < 4; i++) {
        struct store_ring_iter it;
        const char *id;
        ck_assert_int_eq(store_ring_iter_init(&it, &ring, keys[i], 1), 0);
        ck_assert_int_eq(store_ring_iter_next(&it, &id), 0);
        ck_assert_str_eq(id, "a");
        ck_assert_int_eq(store_ring_iter_next(&it, &id), STORE_RING_WRAPPED);
        ck_assert_str_eq(id, "b");
        ck_assert_int_eq(store_ring_iter_next(&it, &id), 0);
        ck_assert_ptr_null(id);
        store_ring_iter_fini(&it);
        walk(&ring, keys[i], out);
        ck_assert_str_eq(out, "a");
    }
    store_ring_fini(&ring);
}
END_TEST

START_TEST(empty_ring_walk_ends_at_once)
{
    struct store_ring ring;
    struct store_ring_iter it;
    const char *id = "x";
    ck_assert_int_eq(store_ring_init(&ring, 150), 0);
    ck_assert_int_eq(store_ring_iter_init(&it, &ring, "t", 1), 0);
    ck_assert_int_eq(store_ring_iter_next(&it, &id), 0);
    ck_assert_ptr_null(id);
    store_ring_iter_fini(&it);
    store_ring_fini(&ring);
}
END_TEST

START_TEST(adding_a_member_twice_is_refused_without_duplicates)
{
    struct store_ring ring;
    ck_assert_int_eq(store_ring_init(&ring, 150), 0);
    ck_assert_int_eq(store_ring_add(&ring, "b1", 1), 0);
    ck_assert_int_eq(store_ring_add(&ring, "b1", 2), -EEXIST);
    ck_assert_uint_eq(ring.n_points, 150);
    ck_assert_uint_eq(store_ring_size(&ring), 1);
    store_ring_fini(&ring);
}
END_TEST

START_TEST(removing_a_member_leaves_no_ghost_points)
{
    const char *ids[] = {"broker1", "broker2", "broker3"};
    struct store_ring ring;
    char out[256];
    ring_of(&ring, STORE_RING_VNODES, ids, 3);
    ck_assert_int_eq(store_ring_remove(&ring, "broker3"), 0);
    ck_assert_int_eq(store_ring_remove(&ring, "broker3"), -ENOENT);
    ck_assert_uint_eq(ring.n_points, 300);
    ck_assert(!store_ring_has(&ring, "broker3"));
    /* What a fresh ring of the survivors gives. */
    walk(&ring, "topic1", out);
    ck_assert_str_eq(out, "broker1 broker2");
    for (size_t i = 0; i < ring.n_points; i++) {
        ck_assert_uint_lt(ring.points[i].member, ring.n_members);
    }
    store_ring_fini(&ring);
}
END_TEST

START_TEST(readding_after_removal_restores_the_same_walks)
{
    const char *ids[] = {"broker1", "broker2", "broker3"};
    const char *topics[] = {"topic1", "topic2", "topic3", "orders", "a"};
    struct store_ring ring;
    char before[5][256];
    char after[256];
    ring_of(&ring, STORE_RING_VNODES, ids, 3);
    for (size_t i = 0; i < 5; i++) {
        walk(&ring, topics[i], before[i]);
    }
    ck_assert_int_eq(store_ring_remove(&ring, "broker1"), 0);
    ck_assert_int_eq(store_ring_add(&ring, "broker1", 1), 0);
    for (size_t i = 0; i < 5; i++) {
        walk(&ring, topics[i], after);
        ck_assert_str_eq(after, before[i]);
    }
    store_ring_fini(&ring);
}
END_TEST

/* "njobkfgkmi:39" and "jloelgnjfi:14" have the same CRC-32 (1857298186):
 * the shared point belongs to the member of higher rank, whatever the
 * order of addition, and removing either leaves the other owning it. */
#define COLL_A "njobkfgkmi"
#define COLL_B "jloelgnjfi"

static const char *first_from_collision(struct store_ring *ring)
{
    struct store_ring_iter it;
    const char *id = NULL;
    ck_assert_int_eq(store_ring_iter_init(&it, ring, COLL_A ":39", 13), 0);
    ck_assert_int_eq(store_ring_iter_next(&it, &id), 0);
    store_ring_iter_fini(&it);
    return id;
}

START_TEST(colliding_point_belongs_to_the_higher_rank)
{
    struct store_ring ring;
    ck_assert_uint_eq(store_ring_crc32(COLL_A ":39", 13),
                      store_ring_crc32(COLL_B ":14", 13));
    ck_assert_int_eq(store_ring_init(&ring, 150), 0);
    ck_assert_int_eq(store_ring_add(&ring, COLL_A, 1), 0);
    ck_assert_int_eq(store_ring_add(&ring, COLL_B, 2), 0);
    ck_assert_str_eq(first_from_collision(&ring), COLL_B);
    store_ring_fini(&ring);

    /* Same ranks, added in the other order: same owner. */
    ck_assert_int_eq(store_ring_init(&ring, 150), 0);
    ck_assert_int_eq(store_ring_add(&ring, COLL_B, 2), 0);
    ck_assert_int_eq(store_ring_add(&ring, COLL_A, 1), 0);
    ck_assert_str_eq(first_from_collision(&ring), COLL_B);
    /* Removing the owner hands the point back, no ghost. */
    ck_assert_int_eq(store_ring_remove(&ring, COLL_B), 0);
    ck_assert_str_eq(first_from_collision(&ring), COLL_A);
    store_ring_fini(&ring);
}
END_TEST

START_TEST(init_rejects_zero_and_huge_vnode_counts)
{
    struct store_ring ring;
    ck_assert_int_eq(store_ring_init(&ring, 0), -EINVAL);
    ck_assert_int_eq(store_ring_init(&ring, STORE_RING_VNODES_MAX + 1),
                     -EINVAL);
}
END_TEST

static Suite *ring_suite(void)
{
    Suite *s = suite_create("ring");
    TCase *tc = tcase_create("crc32");
    tcase_add_test(tc, crc32_matches_go_checksum_ieee);
    tcase_add_test(tc, crc32_update_in_pieces_equals_whole);
    suite_add_tcase(s, tc);

    tc = tcase_create("vectors");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, three_brokers_place_topics_like_go);
    tcase_add_test(tc, two_brokers_place_topic1_like_go);
    tcase_add_test(tc, dashed_ids_place_test_topic_like_go);
    tcase_add_test(tc, three_vnodes_ring_has_go_points_and_order);
    tcase_add_test(tc, one_vnode_ring_returns_second_member_with_wrap_error);
    tcase_add_test(tc, empty_ring_walk_ends_at_once);
    suite_add_tcase(s, tc);

    tc = tcase_create("membership");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, adding_a_member_twice_is_refused_without_duplicates);
    tcase_add_test(tc, removing_a_member_leaves_no_ghost_points);
    tcase_add_test(tc, readding_after_removal_restores_the_same_walks);
    tcase_add_test(tc, colliding_point_belongs_to_the_higher_rank);
    tcase_add_test(tc, init_rejects_zero_and_huge_vnode_counts);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ring_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
