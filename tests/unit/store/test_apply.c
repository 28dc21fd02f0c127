/* Unit tests for the pure apply core (store/apply.c, store/state.c): every
 * command accepted and rejected, placement per goulette-sentinel.md §2.3,
 * §2.4 and §5.4, operation records and the counter, revisions, changes and
 * rollback.  Links only store_core (jansson, protobuf-c) and check. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goulette/err.h"
#include "goulette/store.h"

#include "apply.h"
#include "codec.h"
#include "state.h"

#define TS 1720000000123456789LL

static struct store__state st;

static void setup(void)
{
    ck_assert_int_eq(store__state_init(&st, STORE_RING_VNODES), 0);
}

static void teardown(void)
{
    store__state_fini(&st);
}

/* Apply @cmd; keep the changes in @ch (may be NULL). */
static int run(const struct store_cmd *cmd, struct store_changes *ch)
{
    struct store__txn txn;
    int result = 12345;
    store__txn_init(&txn, &st, cmd->timestamp_ns);
    ck_assert_int_eq(store__apply(&st, cmd, &txn, &result), 0);
    if (result == 0) {
        store__txn_commit(&st, &txn);
        if (ch != NULL) {
            *ch = txn.changes;
        } else {
            store_changes_fini(&txn.changes);
        }
    } else {
        ck_assert_uint_eq(txn.n_muts, 0);
        ck_assert_uint_eq(txn.changes.n, 0);
    }
    return result;
}

static int reg(const char *id, const char *addr)
{
    struct store_cmd c = {.type = STORE_CMD_REGISTER_BROKER,
                          .timestamp_ns = TS,
                          .broker_id = (char *)id,
                          .address = (char *)addr};
    return run(&c, NULL);
}

static int unreg(const char *id)
{
    struct store_cmd c = {.type = STORE_CMD_UNREGISTER_BROKER,
                          .timestamp_ns = TS,
                          .broker_id = (char *)id};
    return run(&c, NULL);
}

static int keepalive(const char *id, const char *addr)
{
    struct store_cmd c = {.type = STORE_CMD_KEEPALIVE_BROKER,
                          .timestamp_ns = TS,
                          .broker_id = (char *)id,
                          .address = (char *)addr};
    return run(&c, NULL);
}

static int set_status(const char *id, uint32_t status)
{
    struct store_cmd c = {.type = STORE_CMD_SET_BROKER_STATUS,
                          .timestamp_ns = TS,
                          .broker_id = (char *)id,
                          .status = status};
    return run(&c, NULL);
}

static int gen(const char *topic, uint32_t rc)
{
    struct store_cmd c = {.type = STORE_CMD_GENERATE_TOPIC_REPLICAS,
                          .timestamp_ns = TS,
                          .topic = (char *)topic,
                          .replica_count = rc};
    return run(&c, NULL);
}

/* A handle-unreachable command about the space-separated @ids at @ts: an
 * operator's verdict, or (@hint) a client's report limited to one move per
 * @interval_ns. */
static int report(const char *topic,
                  uint32_t rc,
                  const char *ids,
                  int64_t ts,
                  bool hint,
                  int64_t interval_ns)
{
    char buf[256];
    char *names[8];
    size_t n = 0;
    struct store_cmd c = {.type = STORE_CMD_HANDLE_UNREACHABLE,
                          .timestamp_ns = ts,
                          .topic = (char *)topic,
                          .replica_count = rc,
                          .hint = hint,
                          .interval_ns = interval_ns};
    snprintf(buf, sizeof buf, "%s", ids);
    for (char *tok = strtok(buf, " "); tok != NULL; tok = strtok(NULL, " ")) {
        names[n++] = tok;
    }
    c.names = names;
    c.n_names = n;
    return run(&c, NULL);
}

static int unreachable(const char *topic, uint32_t rc, const char *ids)
{
    return report(topic, rc, ids, TS, false, 0);
}

static int rm_topic(const char *topic)
{
    struct store_cmd c = {.type = STORE_CMD_REMOVE_TOPIC,
                          .timestamp_ns = TS,
                          .topic = (char *)topic};
    return run(&c, NULL);
}

/* "broker3 broker1": the replica ids of @topic, leader first. */
static const char *replicas(const char *topic)
{
    static char out[512];
    const struct store__topic *t = store__state_topic(&st, topic);
    out[0] = '\0';
    ck_assert_ptr_nonnull(t);
    for (size_t i = 0; i < t->rec.n_replicas; i++) {
        if (i > 0) {
            strcat(out, " ");
        }
        strcat(out, t->rec.replicas[i].broker_id);
    }
    return out;
}

static int status_of(const char *id)
{
    const struct store__broker *b = store__state_broker(&st, id);
    ck_assert_ptr_nonnull(b);
    return b->rec.status;
}

static void three_brokers(void)
{
    ck_assert_int_eq(reg("broker1", "localhost:8081"), 0);
    ck_assert_int_eq(reg("broker2", "localhost:8082"), 0);
    ck_assert_int_eq(reg("broker3", "localhost:8083"), 0);
}

/* A fingerprint of the whole model, to prove a rejection changed nothing. */
static char *fingerprint(void)
{
    size_t cap = 1 << 16;
    char *out = calloc(1, cap);
    size_t n = 0;
    n += (size_t)snprintf(out + n, cap - n, "rev=%llu counter=%llu %d\n",
                          (unsigned long long)st.revision,
                          (unsigned long long)st.counter, st.has_counter);
    for (size_t i = 0; i < st.n_brokers; i++) {
        n += (size_t)snprintf(out + n, cap - n, "%s %llu %llu\n",
                              st.brokers[i]->json,
                              (unsigned long long)st.brokers[i]->meta.mod_rev,
                              (unsigned long long)st.brokers[i]->meta.version);
    }
    for (size_t i = 0; i < st.n_topics; i++) {
        n += (size_t)snprintf(out + n, cap - n, "%s %llu\n", st.topics[i]->json,
                              (unsigned long long)st.topics[i]->meta.mod_rev);
    }
    n += (size_t)snprintf(out + n, cap - n, "ring=%zu\n",
                          store_ring_size(&st.ring));
    return out;
}

#define ASSERT_UNCHANGED_BY(expr, want)    \
    do {                                   \
        char *before_ = fingerprint();     \
        ck_assert_int_eq((expr), (want));  \
        char *after_ = fingerprint();      \
        ck_assert_str_eq(before_, after_); \
        free(before_);                     \
        free(after_);                      \
    } while (0)

/* ---- register ----------------------------------------------------------- */

START_TEST(register_creates_healthy_broker_on_ring_and_logs_it)
{
    struct store_changes ch;
    char *topics[] = {"topic1", "topic2"};
    struct store_cmd c = {.type = STORE_CMD_REGISTER_BROKER,
                          .timestamp_ns = TS,
                          .broker_id = "broker1",
                          .address = "localhost:8081",
                          .names = topics,
                          .n_names = 2};
    ck_assert_int_eq(run(&c, &ch), 0);
    const struct store__broker *b = store__state_broker(&st, "broker1");
    ck_assert_ptr_nonnull(b);
    ck_assert_str_eq(b->json,
                     "{\"broker_id\":\"broker1\",\"address\":"
                     "\"localhost:8081\",\"status\":0,\"topics\":["
                     "\"topic1\",\"topic2\"]}");
    ck_assert(store_ring_has(&st.ring, "broker1"));
    ck_assert_uint_eq(st.counter, 1);
    ck_assert_uint_eq(st.revision, 1);
    ck_assert_uint_eq(ch.n, 3);
    ck_assert_int_eq(ch.items[0].kind, STORE_CHANGE_CREATE);
    ck_assert_str_eq(ch.items[0].path, "brokers/broker1");
    ck_assert_int_eq(ch.items[1].kind, STORE_CHANGE_CREATE);
    ck_assert_str_eq(ch.items[1].path, "increment/operation");
    ck_assert_int_eq(ch.items[2].kind, STORE_CHANGE_CREATE);
    ck_assert_str_eq(ch.items[2].path, "operations/1");
    store_changes_fini(&ch);
}
END_TEST

START_TEST(register_existing_broker_is_eexist_and_changes_nothing)
{
    ck_assert_int_eq(reg("b1", "h:1"), 0);
    ASSERT_UNCHANGED_BY(reg("b1", "h:1"), -EEXIST);
    ASSERT_UNCHANGED_BY(reg("b1", "other:2"), -EEXIST);
}
END_TEST

START_TEST(register_rejects_bad_names_and_addresses)
{
    char longname[300];
    memset(longname, 'x', 256);
    longname[256] = '\0';
    ASSERT_UNCHANGED_BY(reg("", "h:1"), -EINVAL);
    ASSERT_UNCHANGED_BY(reg(".", "h:1"), -EINVAL);
    ASSERT_UNCHANGED_BY(reg("..", "h:1"), -EINVAL);
    ASSERT_UNCHANGED_BY(reg("a/b", "h:1"), -EINVAL);
    ASSERT_UNCHANGED_BY(reg("\xff\xfe", "h:1"), -EINVAL);
    ASSERT_UNCHANGED_BY(reg(longname, "h:1"), -ENAMETOOLONG);
    ASSERT_UNCHANGED_BY(reg("b1", "h"), -EINVAL);
    ASSERT_UNCHANGED_BY(reg("b1", ":1"), -EINVAL);
    ASSERT_UNCHANGED_BY(reg("b1", "h:0"), -EINVAL);
    ASSERT_UNCHANGED_BY(reg("b1", "h:65536"), -EINVAL);
    ASSERT_UNCHANGED_BY(reg("b1", "h:8x"), -EINVAL);
    ASSERT_UNCHANGED_BY(reg("b1", "h:"), -EINVAL);
    ASSERT_UNCHANGED_BY(reg("b1", "a b:1"), -EINVAL);
    ASSERT_UNCHANGED_BY(reg("b1", ""), -EINVAL);
    longname[255] = '\0';
    ck_assert_int_eq(reg(longname, "h:65535"), 0);
    ck_assert_int_eq(reg("v6", "[::1]:50051"), 0);
}
END_TEST

START_TEST(register_with_bad_topic_name_is_rejected)
{
    char *topics[] = {"ok", "bad/name"};
    struct store_cmd c = {.type = STORE_CMD_REGISTER_BROKER,
                          .timestamp_ns = TS,
                          .broker_id = "b1",
                          .address = "h:1",
                          .names = topics,
                          .n_names = 2};
    ASSERT_UNCHANGED_BY(run(&c, NULL), -EINVAL);
}
END_TEST

/* ---- keepalive ---------------------------------------------------------- */

START_TEST(keepalive_from_unknown_broker_creates_it)
{
    ck_assert_int_eq(keepalive("b1", "h:1"), 0);
    ck_assert_int_eq(status_of("b1"), STORE_BROKER_HEALTHY);
    ck_assert(store_ring_has(&st.ring, "b1"));
    ck_assert_uint_eq(st.counter, 1);
}
END_TEST

START_TEST(keepalive_with_nothing_new_is_a_noop)
{
    ck_assert_int_eq(keepalive("b1", "h:1"), 0);
    ASSERT_UNCHANGED_BY(keepalive("b1", "h:1"), 0);
}
END_TEST

START_TEST(keepalive_with_new_address_updates_broker_and_topics)
{
    three_brokers();
    ck_assert_int_eq(gen("topic1", 2), 0);
    uint64_t rev = st.revision;
    ck_assert_int_eq(keepalive("broker3", "newhost:9"), 0);
    ck_assert_uint_eq(st.revision, rev + 1);
    const struct store__broker *b = store__state_broker(&st, "broker3");
    ck_assert_str_eq(b->rec.address, "newhost:9");
    ck_assert_uint_eq(b->meta.version, 2);
    const struct store__topic *t = store__state_topic(&st, "topic1");
    ck_assert_str_eq(t->rec.replicas[0].broker_id, "broker3");
    ck_assert_str_eq(t->rec.replicas[0].address, "newhost:9");
}
END_TEST

START_TEST(keepalive_brings_a_down_broker_back_to_healthy)
{
    ck_assert_int_eq(reg("b1", "h:1"), 0);
    ck_assert_int_eq(set_status("b1", STORE_BROKER_DOWN), 0);
    ck_assert_int_eq(keepalive("b1", "h:1"), 0);
    ck_assert_int_eq(status_of("b1"), STORE_BROKER_HEALTHY);
}
END_TEST

START_TEST(keepalive_rejects_bad_address)
{
    ASSERT_UNCHANGED_BY(keepalive("b1", "nohost"), -EINVAL);
    ASSERT_UNCHANGED_BY(keepalive("", "h:1"), -EINVAL);
}
END_TEST

/* ---- set status --------------------------------------------------------- */

START_TEST(set_status_changes_status_and_logs_it)
{
    ck_assert_int_eq(reg("b1", "h:1"), 0);
    ck_assert_int_eq(set_status("b1", STORE_BROKER_SUSPICIOUS), 0);
    ck_assert_int_eq(status_of("b1"), STORE_BROKER_SUSPICIOUS);
    ck_assert_uint_eq(st.counter, 2);
    ASSERT_UNCHANGED_BY(set_status("b1", STORE_BROKER_SUSPICIOUS), 0);
}
END_TEST

START_TEST(set_status_rejects_unknown_broker_and_bad_status)
{
    ck_assert_int_eq(reg("b1", "h:1"), 0);
    ASSERT_UNCHANGED_BY(set_status("nope", STORE_BROKER_DOWN), -ENOENT);
    ASSERT_UNCHANGED_BY(set_status("b1", 3), -EINVAL);
    ASSERT_UNCHANGED_BY(set_status("", 0), -EINVAL);
}
END_TEST

START_TEST(setting_a_broker_down_replaces_every_topic_holding_it)
{
    three_brokers();
    ck_assert_int_eq(gen("topic1", 2), 0); /* broker3 broker1 */
    ck_assert_int_eq(gen("topic2", 2), 0); /* broker3 broker2 */
    ck_assert_str_eq(replicas("topic1"), "broker3 broker1");
    ck_assert_str_eq(replicas("topic2"), "broker3 broker2");
    uint64_t counter = st.counter;
    ck_assert_int_eq(set_status("broker3", STORE_BROKER_DOWN), 0);
    /* Survivors keep their order and lead; the ring tops up. */
    ck_assert_str_eq(replicas("topic1"), "broker1 broker2");
    ck_assert_str_eq(replicas("topic2"), "broker2 broker1");
    /* setBrokerStatus + one handleUnreachableBrokers per topic. */
    ck_assert_uint_eq(st.counter, counter + 3);
}
END_TEST

START_TEST(replacement_that_cannot_be_filled_keeps_what_survives)
{
    ck_assert_int_eq(reg("broker1", "h:1"), 0);
    ck_assert_int_eq(reg("broker2", "h:2"), 0);
    ck_assert_int_eq(gen("topic1", 2), 0);
    ck_assert_str_eq(replicas("topic1"), "broker1 broker2");
    ck_assert_int_eq(set_status("broker1", STORE_BROKER_DOWN), 0);
    ck_assert_str_eq(replicas("topic1"), "broker2");
    /* Nothing left at all: the record stays, never stored empty. */
    ck_assert_int_eq(set_status("broker2", STORE_BROKER_DOWN), 0);
    ck_assert_str_eq(replicas("topic1"), "broker2");
}
END_TEST

/* ---- unregister --------------------------------------------------------- */

START_TEST(unregister_removes_broker_from_ring_and_replaces_topics)
{
    struct store_changes ch;
    struct store_cmd c = {.type = STORE_CMD_UNREGISTER_BROKER,
                          .timestamp_ns = TS,
                          .broker_id = "broker3"};
    three_brokers();
    ck_assert_int_eq(gen("topic1", 2), 0);
    ck_assert_int_eq(run(&c, &ch), 0);
    ck_assert_ptr_null(store__state_broker(&st, "broker3"));
    ck_assert(!store_ring_has(&st.ring, "broker3"));
    ck_assert_str_eq(replicas("topic1"), "broker1 broker2");
    ck_assert_int_eq(ch.items[0].kind, STORE_CHANGE_DELETE);
    ck_assert_str_eq(ch.items[0].path, "brokers/broker3");
    ck_assert_int_eq(ch.items[3].kind, STORE_CHANGE_MODIFY);
    ck_assert_str_eq(ch.items[3].path, "topics/topic1");
    store_changes_fini(&ch);
}
END_TEST

START_TEST(unregister_unknown_broker_is_enoent)
{
    ck_assert_int_eq(reg("b1", "h:1"), 0);
    ASSERT_UNCHANGED_BY(unreg("b2"), -ENOENT);
    ASSERT_UNCHANGED_BY(unreg("."), -EINVAL);
}
END_TEST

/* ---- generate ----------------------------------------------------------- */

START_TEST(generate_places_like_goulette_with_first_as_leader)
{
    three_brokers();
    ck_assert_int_eq(gen("topic1", 2), 0);
    ck_assert_str_eq(replicas("topic1"), "broker3 broker1");
    ck_assert_int_eq(gen("topic2", 3), 0);
    ck_assert_str_eq(replicas("topic2"), "broker3 broker2 broker1");
    const struct store__topic *t = store__state_topic(&st, "topic1");
    ck_assert_str_eq(
        t->json,
        "{\"topic\":\"topic1\",\"brokers\":[{\"broker_id\":\"broker3\","
        "\"address\":\"localhost:8083\",\"status\":0},{\"broker_id\":"
        "\"broker1\",\"address\":\"localhost:8081\",\"status\":0}],"
        "\"version\":1720000000123456789,\"timestamp\":1720000000,"
        "\"replica_count\":2}");
}
END_TEST

START_TEST(generate_unhealthy_brokers_use_up_attempts)
{
    three_brokers();
    ck_assert_int_eq(set_status("broker3", STORE_BROKER_SUSPICIOUS), 0);
    /* §2.3: broker3 is first in the walk and uses up one of two tries. */
    ck_assert_int_eq(gen("topic1", 2), 0);
    ck_assert_str_eq(replicas("topic1"), "broker1");
}
END_TEST

START_TEST(generate_with_no_healthy_broker_is_enobrokers_and_stores_nothing)
{
    ASSERT_UNCHANGED_BY(gen("topic1", 3), GOULETTE_ENOBROKERS);
    ck_assert_ptr_null(store__state_topic(&st, "topic1"));
    ck_assert_int_eq(reg("b1", "h:1"), 0);
    ck_assert_int_eq(set_status("b1", STORE_BROKER_DOWN), 0);
    ASSERT_UNCHANGED_BY(gen("topic1", 3), GOULETTE_ENOBROKERS);
}
END_TEST

START_TEST(generate_same_count_again_is_unchanged)
{
    three_brokers();
    ck_assert_int_eq(gen("topic1", 2), 0);
    ASSERT_UNCHANGED_BY(gen("topic1", 2), 0);
}
END_TEST

START_TEST(generate_other_count_resizes_keeping_the_leader)
{
    three_brokers();
    ck_assert_int_eq(gen("topic1", 2), 0);
    ck_assert_int_eq(gen("topic1", 3), 0);
    ck_assert_str_eq(replicas("topic1"), "broker3 broker1 broker2");
    ck_assert_int_eq(gen("topic1", 1), 0);
    ck_assert_str_eq(replicas("topic1"), "broker3");
    ck_assert_uint_eq(store__state_topic(&st, "topic1")->rec.replica_count, 1);
    /* Growing past the healthy brokers cannot be filled. */
    ASSERT_UNCHANGED_BY(gen("topic1", 4), GOULETTE_ENOBROKERS);
}
END_TEST

START_TEST(exclusive_generate_of_existing_topic_is_eexist)
{
    struct store_cmd c = {.type = STORE_CMD_GENERATE_TOPIC_REPLICAS,
                          .timestamp_ns = TS,
                          .topic = "topic1",
                          .replica_count = 3,
                          .exclusive = true};
    three_brokers();
    ck_assert_int_eq(run(&c, NULL), 0);
    ck_assert_str_eq(replicas("topic1"), "broker3 broker1 broker2");
    ASSERT_UNCHANGED_BY(run(&c, NULL), -EEXIST);
    c.replica_count = 1;
    ASSERT_UNCHANGED_BY(run(&c, NULL), -EEXIST);
}
END_TEST

START_TEST(generate_rejects_bad_topic_and_count)
{
    three_brokers();
    ASSERT_UNCHANGED_BY(gen("topic1", 0), -EINVAL);
    ASSERT_UNCHANGED_BY(gen("topic1", STORE_REPLICA_COUNT_MAX + 1), -EINVAL);
    ASSERT_UNCHANGED_BY(gen("", 1), -EINVAL);
    ASSERT_UNCHANGED_BY(gen("a/b", 1), -EINVAL);
}
END_TEST

/* ---- handle unreachable ------------------------------------------------- */

START_TEST(unreachable_follower_is_replaced_like_sentinel_test)
{
    /* goulette-sentinel.md §7.1 TestSentinelServer_Cache. */
    three_brokers();
    ck_assert_int_eq(gen("topic1", 2), 0);
    ck_assert_int_eq(unreachable("topic1", 2, "broker1"), 0);
    ck_assert_str_eq(replicas("topic1"), "broker3 broker2");
    ck_assert_int_eq(status_of("broker1"), STORE_BROKER_DOWN);
}
END_TEST

START_TEST(unreachable_leader_hands_leadership_to_first_healthy)
{
    three_brokers();
    ck_assert_int_eq(gen("topic1", 2), 0);
    ck_assert_int_eq(unreachable("topic1", 2, "broker3"), 0);
    ck_assert_str_eq(replicas("topic1"), "broker1 broker2");
    ck_assert_int_eq(status_of("broker3"), STORE_BROKER_DOWN);
}
END_TEST

START_TEST(unreachable_marking_replaces_other_topics_too)
{
    three_brokers();
    ck_assert_int_eq(gen("topic1", 2), 0); /* broker3 broker1 */
    ck_assert_int_eq(gen("topic2", 2), 0); /* broker3 broker2 */
    uint64_t counter = st.counter;
    ck_assert_int_eq(unreachable("topic1", 2, "broker3"), 0);
    ck_assert_str_eq(replicas("topic2"), "broker2 broker1");
    ck_assert_uint_eq(st.counter, counter + 2);
}
END_TEST

START_TEST(unreachable_that_cannot_be_filled_is_enobrokers)
{
    ck_assert_int_eq(reg("broker1", "h:1"), 0);
    ck_assert_int_eq(reg("broker2", "h:2"), 0);
    ck_assert_int_eq(gen("topic1", 2), 0);
    ASSERT_UNCHANGED_BY(unreachable("topic1", 2, "broker1"),
                        GOULETTE_ENOBROKERS);
    ck_assert_int_eq(status_of("broker1"), STORE_BROKER_HEALTHY);
}
END_TEST

START_TEST(unreachable_rejects_empty_list_and_bad_names)
{
    three_brokers();
    ck_assert_int_eq(gen("topic1", 2), 0);
    ASSERT_UNCHANGED_BY(unreachable("topic1", 2, ""), -EINVAL);
    ASSERT_UNCHANGED_BY(unreachable("topic1", 2, ".."), -EINVAL);
    ASSERT_UNCHANGED_BY(unreachable("", 2, "broker1"), -EINVAL);
    ASSERT_UNCHANGED_BY(unreachable("newtopic", 0, "broker1"), -EINVAL);
}
END_TEST

START_TEST(unreachable_with_zero_count_keeps_the_topic_count)
{
    three_brokers();
    ck_assert_int_eq(gen("topic1", 2), 0);
    ck_assert_int_eq(unreachable("topic1", 0, "broker1"), 0);
    ck_assert_str_eq(replicas("topic1"), "broker3 broker2");
}
END_TEST

START_TEST(unreachable_for_unknown_topic_assigns_it)
{
    three_brokers();
    ck_assert_int_eq(unreachable("topic1", 2, "broker3"), 0);
    ck_assert_str_eq(replicas("topic1"), "broker1 broker2");
}
END_TEST

START_TEST(unreachable_op_params_are_sorted_and_exact)
{
    struct store_changes ch;
    char *names[] = {"broker1"};
    struct store_cmd c = {.type = STORE_CMD_HANDLE_UNREACHABLE,
                          .timestamp_ns = TS,
                          .topic = "topic1",
                          .replica_count = 2,
                          .names = names,
                          .n_names = 1};
    three_brokers();
    ck_assert_int_eq(gen("topic1", 2), 0);
    ck_assert_int_eq(run(&c, &ch), 0);
    /* broker1 modified, topic modified, counter, operation 5. */
    ck_assert_uint_eq(ch.n, 4);
    ck_assert_str_eq(ch.items[0].path, "brokers/broker1");
    ck_assert_str_eq(ch.items[1].path, "topics/topic1");
    ck_assert_str_eq(ch.items[2].path, "increment/operation");
    ck_assert_int_eq(ch.items[2].kind, STORE_CHANGE_MODIFY);
    ck_assert_str_eq(ch.items[3].path, "operations/5");
    store_changes_fini(&ch);
}
END_TEST

/* A client's report (hint) at @ts about @ids, limited to one re-placement
 * per @interval_ns for the topic. */
static int hint(const char *topic,
                const char *ids,
                int64_t ts,
                int64_t interval_ns)
{
    return report(topic, 0, ids, ts, true, interval_ns);
}

#define SEC 1000000000LL

START_TEST(hint_moves_the_topic_and_marks_nobody_down)
{
    three_brokers();
    ck_assert_int_eq(gen("topic1", 2), 0); /* broker3 broker1 */
    ck_assert_int_eq(gen("topic2", 2), 0); /* broker3 broker2 */
    ck_assert_int_eq(hint("topic1", "broker3", TS + 20 * SEC, 10 * SEC), 0);
    ck_assert_str_eq(replicas("topic1"), "broker1 broker2");
    /* The reported broker stays healthy, and its other topics stay. */
    ck_assert_int_eq(status_of("broker3"), STORE_BROKER_HEALTHY);
    ck_assert_str_eq(replicas("topic2"), "broker3 broker2");
}
END_TEST

START_TEST(hint_on_a_young_assignment_is_elimit)
{
    three_brokers();
    ck_assert_int_eq(gen("topic1", 2), 0);
    ASSERT_UNCHANGED_BY(hint("topic1", "broker3", TS + 9 * SEC, 10 * SEC),
                        GOULETTE_ELIMIT);
    /* Once the interval has passed, the same report moves the topic, and
     * the moved topic is young again. */
    ck_assert_int_eq(hint("topic1", "broker3", TS + 10 * SEC, 10 * SEC), 0);
    ck_assert_str_eq(replicas("topic1"), "broker1 broker2");
    ASSERT_UNCHANGED_BY(hint("topic1", "broker1", TS + 19 * SEC, 10 * SEC),
                        GOULETTE_ELIMIT);
}
END_TEST

START_TEST(hint_about_brokers_already_moved_away_is_a_no_op)
{
    three_brokers();
    ck_assert_int_eq(gen("topic1", 2), 0);
    ck_assert_int_eq(hint("topic1", "broker3", TS + 20 * SEC, 10 * SEC), 0);
    /* A second client's report of the same broker, right after: nothing to
     * do, no limit to hit. */
    ASSERT_UNCHANGED_BY(hint("topic1", "broker3", TS + 21 * SEC, 10 * SEC), 0);
}
END_TEST

START_TEST(hint_for_a_new_topic_places_it_without_the_reported)
{
    three_brokers();
    ck_assert_int_eq(reg("broker4", "h:4"), 0);
    struct store_cmd c = {.type = STORE_CMD_HANDLE_UNREACHABLE,
                          .timestamp_ns = TS,
                          .topic = "topic1",
                          .replica_count = 2,
                          .names = (char *[]){"broker3"},
                          .n_names = 1,
                          .hint = true,
                          .interval_ns = 10 * SEC};
    ck_assert_int_eq(run(&c, NULL), 0);
    ck_assert_ptr_null(strstr(replicas("topic1"), "broker3"));
    ck_assert_int_eq(status_of("broker3"), STORE_BROKER_HEALTHY);
}
END_TEST

/* ---- remove ------------------------------------------------------------- */

START_TEST(remove_topic_deletes_it_and_logs_remove_topic)
{
    three_brokers();
    ck_assert_int_eq(gen("topic1", 2), 0);
    ck_assert_int_eq(rm_topic("topic1"), 0);
    ck_assert_ptr_null(store__state_topic(&st, "topic1"));
    ck_assert_uint_eq(st.counter, 5);
    ASSERT_UNCHANGED_BY(rm_topic("topic1"), -ENOENT);
    ASSERT_UNCHANGED_BY(rm_topic("."), -EINVAL);
}
END_TEST

START_TEST(unknown_command_type_is_einval)
{
    struct store_cmd c = {.type = 99, .timestamp_ns = TS};
    ASSERT_UNCHANGED_BY(run(&c, NULL), -EINVAL);
}
END_TEST

/* ---- revisions ---------------------------------------------------------- */

START_TEST(revisions_follow_etcd_rules)
{
    three_brokers(); /* revisions 1..3 */
    ck_assert_uint_eq(st.revision, 3);
    ck_assert_int_eq(gen("topic1", 2), 0); /* 4 */
    const struct store__topic *t = store__state_topic(&st, "topic1");
    ck_assert_uint_eq(t->meta.create_rev, 4);
    ck_assert_uint_eq(t->meta.mod_rev, 4);
    ck_assert_uint_eq(t->meta.version, 1);
    ck_assert_int_eq(t->meta.mtime_ns, TS);
    ck_assert_int_eq(gen("topic1", 3), 0); /* 5 */
    t = store__state_topic(&st, "topic1");
    ck_assert_uint_eq(t->meta.create_rev, 4);
    ck_assert_uint_eq(t->meta.mod_rev, 5);
    ck_assert_uint_eq(t->meta.version, 2);
    /* A rejection does not move the revision. */
    ASSERT_UNCHANGED_BY(gen("topic1", 0), -EINVAL);
    ck_assert_int_eq(rm_topic("topic1"), 0); /* 6 */
    ck_assert_int_eq(gen("topic1", 2), 0);   /* 7: a new key */
    t = store__state_topic(&st, "topic1");
    ck_assert_uint_eq(t->meta.create_rev, 7);
    ck_assert_uint_eq(t->meta.version, 1);
    ck_assert_uint_eq(st.revision, 7);
    /* The counter changed once per operation. */
    ck_assert_uint_eq(st.counter_meta.version, st.counter);
    ck_assert_uint_eq(st.counter_meta.create_rev, 1);
    ck_assert_uint_eq(st.counter_meta.mod_rev, 7);
}
END_TEST

START_TEST(broker_rank_is_its_create_revision)
{
    three_brokers();
    ck_assert_uint_eq(store__state_broker(&st, "broker2")->meta.create_rev, 2);
    for (size_t i = 0; i < st.ring.n_members; i++) {
        const struct store__broker *b =
            store__state_broker(&st, st.ring.members[i].id);
        ck_assert_uint_eq(st.ring.members[i].rank, b->meta.create_rev);
    }
}
END_TEST

/* ---- rollback ----------------------------------------------------------- */

START_TEST(rollback_restores_the_model_exactly)
{
    struct store__txn txn;
    char *names[] = {"broker3"};
    struct store_cmd c = {.type = STORE_CMD_HANDLE_UNREACHABLE,
                          .timestamp_ns = TS + 1,
                          .topic = "topic1",
                          .replica_count = 2,
                          .names = names,
                          .n_names = 1};
    int result = -1;
    three_brokers();
    ck_assert_int_eq(gen("topic1", 2), 0);
    ck_assert_int_eq(gen("topic2", 2), 0);
    char *before = fingerprint();
    store__txn_init(&txn, &st, c.timestamp_ns);
    ck_assert_int_eq(store__apply(&st, &c, &txn, &result), 0);
    ck_assert_int_eq(result, 0);
    ck_assert_uint_gt(txn.n_muts, 0);
    /* As the driver does when the LevelDB write fails. */
    store__txn_rollback(&st, &txn);
    char *after = fingerprint();
    ck_assert_str_eq(before, after);
    ck_assert_str_eq(replicas("topic1"), "broker3 broker1");
    free(before);
    free(after);
    /* And the same command then applies as if nothing had happened. */
    ck_assert_int_eq(run(&c, NULL), 0);
    ck_assert_str_eq(replicas("topic1"), "broker1 broker2");
}
END_TEST

START_TEST(rollback_of_unregister_restores_ring_membership)
{
    struct store__txn txn;
    struct store_cmd c = {.type = STORE_CMD_UNREGISTER_BROKER,
                          .timestamp_ns = TS,
                          .broker_id = "broker1"};
    int result = -1;
    three_brokers();
    ck_assert_int_eq(gen("topic1", 3), 0);
    store__txn_init(&txn, &st, TS);
    ck_assert_int_eq(store__apply(&st, &c, &txn, &result), 0);
    ck_assert(!store_ring_has(&st.ring, "broker1"));
    store__txn_rollback(&st, &txn);
    ck_assert(store_ring_has(&st.ring, "broker1"));
    ck_assert_uint_eq(st.ring.n_points, 450);
    ck_assert_str_eq(replicas("topic1"), "broker3 broker1 broker2");
}
END_TEST

/* ---- operations ---------------------------------------------------------- */

START_TEST(operation_ids_are_dense_and_counted)
{
    char name[16];
    for (int i = 0; i < 120; i++) {
        snprintf(name, sizeof name, "b%d", i);
        ck_assert_int_eq(reg(name, "h:1"), 0);
        ck_assert_uint_eq(st.counter, (uint64_t)i + 1);
    }
}
END_TEST

/* ---- invariants under a random workload ---------------------------------- */

/* xorshift64*: the test's own PRNG, seeded per run. */
static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 2685821657736338717ULL;
}

static void random_command(uint64_t *seed, struct store_cmd *c, char *buf)
{
    static char *names[2];
    uint64_t r = next_rand(seed);
    memset(c, 0, sizeof *c);
    c->timestamp_ns = TS + (int64_t)(r % 1000000);
    snprintf(buf, 32, "b%u", (unsigned)(r >> 8) % 12);
    snprintf(buf + 32, 32, "t%u", (unsigned)(r >> 16) % 20);
    snprintf(buf + 64, 32, "h%u:%u", (unsigned)(r >> 24) % 3,
             1 + (unsigned)(r >> 32) % 2);
    snprintf(buf + 96, 32, "b%u", (unsigned)(r >> 40) % 12);
    c->broker_id = buf;
    c->topic = buf + 32;
    c->address = buf + 64;
    names[0] = buf;
    names[1] = buf + 96;
    c->type = (enum store_cmd_type)(1 + (r >> 4) % 7);
    c->status = (uint32_t)(r >> 48) % 3;
    c->replica_count = 1 + (uint32_t)(r >> 52) % 4;
    c->names = names;
    c->n_names =
        c->type == STORE_CMD_HANDLE_UNREACHABLE ? 1 + (r >> 60) % 2 : 0;
}

static void check_invariants(void)
{
    ck_assert_uint_eq(st.ring.n_members, st.n_brokers);
    ck_assert_uint_eq(st.ring.n_points, st.n_brokers * STORE_RING_VNODES);
    for (size_t i = 0; i < st.n_brokers; i++) {
        const struct store__broker *b = st.brokers[i];
        ck_assert(store_ring_has(&st.ring, b->rec.broker_id));
        ck_assert_uint_le(b->meta.mod_rev, st.revision);
        ck_assert_uint_le(b->meta.create_rev, b->meta.mod_rev);
        if (i > 0) {
            ck_assert_int_lt(
                strcmp(st.brokers[i - 1]->rec.broker_id, b->rec.broker_id), 0);
        }
    }
    for (size_t i = 0; i < st.ring.n_members; i++) {
        const struct store__broker *b =
            store__state_broker(&st, st.ring.members[i].id);
        ck_assert_ptr_nonnull(b);
        ck_assert_uint_eq(st.ring.members[i].rank, b->meta.create_rev);
    }
    for (size_t i = 0; i < st.n_topics; i++) {
        const struct store__topic *t = st.topics[i];
        ck_assert_uint_gt(t->rec.n_replicas, 0);
        ck_assert_uint_le(t->rec.n_replicas, t->rec.replica_count);
        ck_assert_uint_le(t->meta.mod_rev, st.revision);
        for (size_t a = 0; a < t->rec.n_replicas; a++) {
            for (size_t b = a + 1; b < t->rec.n_replicas; b++) {
                ck_assert_str_ne(t->rec.replicas[a].broker_id,
                                 t->rec.replicas[b].broker_id);
            }
        }
    }
    ck_assert(st.has_counter == (st.counter > 0));
    if (st.has_counter) {
        ck_assert_uint_eq(st.counter_meta.version, st.counter);
    }
}

START_TEST(random_workload_keeps_invariants_and_is_deterministic)
{
    struct store__state other;
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    uint64_t replay = seed;
    char buf[160];
    ck_assert_int_eq(store__state_init(&other, STORE_RING_VNODES), 0);
    for (int i = 0; i < 3000; i++) {
        struct store_cmd c;
        struct store__txn txn;
        int r1 = 0;
        int r2 = 0;
        uint64_t rev = st.revision;
        random_command(&seed, &c, buf);
        store__txn_init(&txn, &st, c.timestamp_ns);
        ck_assert_int_eq(store__apply(&st, &c, &txn, &r1), 0);
        if (r1 == 0) {
            store__txn_commit(&st, &txn);
            store_changes_fini(&txn.changes);
        } else {
            ck_assert_uint_eq(st.revision, rev);
        }
        check_invariants();
        /* A second model fed the same commands stays identical. */
        random_command(&replay, &c, buf);
        store__txn_init(&txn, &other, c.timestamp_ns);
        ck_assert_int_eq(store__apply(&other, &c, &txn, &r2), 0);
        ck_assert_int_eq(r1, r2);
        if (r2 == 0) {
            store__txn_commit(&other, &txn);
            store_changes_fini(&txn.changes);
        }
    }
    char *a = fingerprint();
    struct store__state mine = st;
    st = other;
    char *b = fingerprint();
    st = mine;
    ck_assert_str_eq(a, b);
    ck_assert_uint_gt(st.counter, 1000);
    free(a);
    free(b);
    store__state_fini(&other);
}
END_TEST

static Suite *apply_suite(void)
{
    Suite *s = suite_create("apply");
    struct
    {
        const char *name;
        const TTest *tests[16];
    } groups[] = {
        {"register",
         {register_creates_healthy_broker_on_ring_and_logs_it,
          register_existing_broker_is_eexist_and_changes_nothing,
          register_rejects_bad_names_and_addresses,
          register_with_bad_topic_name_is_rejected}},
        {"keepalive",
         {keepalive_from_unknown_broker_creates_it,
          keepalive_with_nothing_new_is_a_noop,
          keepalive_with_new_address_updates_broker_and_topics,
          keepalive_brings_a_down_broker_back_to_healthy,
          keepalive_rejects_bad_address}},
        {"set_status",
         {set_status_changes_status_and_logs_it,
          set_status_rejects_unknown_broker_and_bad_status,
          setting_a_broker_down_replaces_every_topic_holding_it,
          replacement_that_cannot_be_filled_keeps_what_survives}},
        {"unregister",
         {unregister_removes_broker_from_ring_and_replaces_topics,
          unregister_unknown_broker_is_enoent}},
        {"generate",
         {generate_places_like_goulette_with_first_as_leader,
          generate_unhealthy_brokers_use_up_attempts,
          generate_with_no_healthy_broker_is_enobrokers_and_stores_nothing,
          generate_same_count_again_is_unchanged,
          generate_other_count_resizes_keeping_the_leader,
          exclusive_generate_of_existing_topic_is_eexist,
          generate_rejects_bad_topic_and_count}},
        {"unreachable",
         {unreachable_follower_is_replaced_like_sentinel_test,
          unreachable_leader_hands_leadership_to_first_healthy,
          unreachable_marking_replaces_other_topics_too,
          unreachable_that_cannot_be_filled_is_enobrokers,
          unreachable_rejects_empty_list_and_bad_names,
          unreachable_with_zero_count_keeps_the_topic_count,
          unreachable_for_unknown_topic_assigns_it,
          unreachable_op_params_are_sorted_and_exact}},
        {"hint",
         {hint_moves_the_topic_and_marks_nobody_down,
          hint_on_a_young_assignment_is_elimit,
          hint_about_brokers_already_moved_away_is_a_no_op,
          hint_for_a_new_topic_places_it_without_the_reported}},
        {"remove",
         {remove_topic_deletes_it_and_logs_remove_topic,
          unknown_command_type_is_einval}},
        {"revisions",
         {revisions_follow_etcd_rules, broker_rank_is_its_create_revision,
          operation_ids_are_dense_and_counted}},
        {"rollback",
         {rollback_restores_the_model_exactly,
          rollback_of_unregister_restores_ring_membership}},
        {"random", {random_workload_keeps_invariants_and_is_deterministic}},
    };
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        TCase *tc = tcase_create(groups[g].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        for (size_t i = 0; groups[g].tests[i] != NULL; i++) {
            tcase_add_test(tc, groups[g].tests[i]);
        }
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(apply_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
