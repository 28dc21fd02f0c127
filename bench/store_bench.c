/* store_bench: how fast commands apply into LevelDB, and what a store of
 * 10,000 topics and 1,000 brokers costs on disk and in memory.
 *
 * usage: store_bench [DIR] [TOPICS] [BROKERS]
 * DIR (default: a fresh directory under $TMPDIR, removed at the end) holds
 * the LevelDB.  Every apply is one synchronous LevelDB batch, as in the
 * daemon, so the rate includes an fsync per command. */
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "goulette/err.h"
#include "goulette/store.h"

#include "apply.h"
#include "state.h"

struct bench
{
    struct store_sm *sm;
    uint64_t index;
    int64_t ts;
    unsigned long rejected;
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int apply(struct bench *b, struct store_cmd *cmd)
{
    struct goulette_buf buf;
    struct store_sm_result res;
    int rv;
    cmd->timestamp_ns = b->ts++;
    rv = store_cmd_encode(cmd, &buf);
    if (rv != 0) {
        return rv;
    }
    rv = store_sm_apply(b->sm, ++b->index, 1, buf.base, buf.len, &res);
    free(buf.base);
    if (rv != 0) {
        return rv;
    }
    if (res.rv != 0) {
        b->rejected++;
    }
    store_sm_result_fini(&res);
    return 0;
}

static unsigned long long dir_bytes;

static int add_size(const char *path,
                    const struct stat *sb,
                    int flag,
                    struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F) {
        dir_bytes += (unsigned long long)sb->st_size;
    }
    return 0;
}

static unsigned long long du(const char *dir)
{
    dir_bytes = 0;
    nftw(dir, add_size, 16, FTW_PHYS);
    return dir_bytes;
}

static int rm_one(const char *path,
                  const struct stat *sb,
                  int flag,
                  struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) {
            break;
        }
    }
    fclose(f);
    return kib;
}

static void report(const char *what, unsigned long n, double secs)
{
    printf("%-34s %8lu commands %8.2f s %10.0f commands/s\n", what, n, secs,
           secs > 0 ? (double)n / secs : 0.0);
}

/* The pure apply core alone (no LevelDB, no fsync): the same brokers and
 * topics applied to an in-memory model. */
static int run_core(unsigned long topics, unsigned long brokers)
{
    struct store__state st;
    char id[64];
    char addr[64];
    char topic[64];
    int64_t ts = 1720000000000000000LL;
    double t0;
    int rv = store__state_init(&st, STORE_RING_VNODES);

    t0 = now();
    for (unsigned long i = 0; rv == 0 && i < brokers + topics; i++) {
        struct store_cmd c = {.timestamp_ns = ts++};
        struct store__txn txn;
        int result = 0;
        if (i < brokers) {
            c.type = STORE_CMD_REGISTER_BROKER;
            c.broker_id = id;
            c.address = addr;
            snprintf(id, sizeof id, "broker-%lu", i);
            snprintf(addr, sizeof addr, "10.0.%lu.%lu:50051", i / 250, i % 250);
        } else {
            c.type = STORE_CMD_GENERATE_TOPIC_REPLICAS;
            c.topic = topic;
            c.replica_count = 3;
            snprintf(topic, sizeof topic, "topic-%lu", i - brokers);
        }
        store__txn_init(&txn, &st, c.timestamp_ns);
        rv = store__apply(&st, &c, &txn, &result);
        if (rv == 0 && result == 0) {
            store__txn_commit(&st, &txn);
            store_changes_fini(&txn.changes);
        }
    }
    report("apply core only (no LevelDB)", brokers + topics, now() - t0);
    store__state_fini(&st);
    return rv;
}

static int run(const char *dir, unsigned long topics, unsigned long brokers)
{
    struct store_sm_config cfg = {.path = dir};
    struct bench b = {.ts = 1720000000000000000LL};
    char id[64];
    char addr[64];
    char topic[64];
    double t0;
    int rv;

    rv = store_sm_open(&cfg, &b.sm);
    if (rv != 0) {
        fprintf(stderr, "store_bench: open %s: %s\n", dir,
                goulette_strerror(rv));
        return 1;
    }
    printf("store_bench: %lu brokers, %lu topics (replica_count 3) in %s\n",
           brokers, topics, dir);
    printf("RSS at start: %ld KiB\n", rss_kib());

    t0 = now();
    for (unsigned long i = 0; rv == 0 && i < brokers; i++) {
        struct store_cmd c = {.type = STORE_CMD_REGISTER_BROKER,
                              .broker_id = id,
                              .address = addr};
        snprintf(id, sizeof id, "broker-%lu", i);
        snprintf(addr, sizeof addr, "10.0.%lu.%lu:50051", i / 250, i % 250);
        rv = apply(&b, &c);
    }
    report("register broker", brokers, now() - t0);

    t0 = now();
    for (unsigned long i = 0; rv == 0 && i < topics; i++) {
        struct store_cmd c = {.type = STORE_CMD_GENERATE_TOPIC_REPLICAS,
                              .topic = topic,
                              .replica_count = 3};
        snprintf(topic, sizeof topic, "topic-%lu", i);
        rv = apply(&b, &c);
    }
    report("generate topic replicas", topics, now() - t0);

    t0 = now();
    for (unsigned long i = 0; rv == 0 && i < 1000; i++) {
        struct store_cmd c = {.type = STORE_CMD_KEEPALIVE_BROKER,
                              .broker_id = id,
                              .address = addr};
        snprintf(id, sizeof id, "broker-%lu", i % brokers);
        snprintf(addr, sizeof addr, "10.0.%lu.%lu:50051", (i % brokers) / 250,
                 (i % brokers) % 250);
        rv = apply(&b, &c);
    }
    report("keepalive (no change: no-op)", 1000, now() - t0);

    t0 = now();
    for (unsigned long i = 0; rv == 0 && i < 1000; i++) {
        /* Half the brokers go suspicious, then come back. */
        unsigned long half = brokers > 1 ? brokers / 2 : 1;
        struct store_cmd c = {.type = STORE_CMD_SET_BROKER_STATUS,
                              .broker_id = id,
                              .status = (i / half) % 2 == 0
                                            ? STORE_BROKER_SUSPICIOUS
                                            : STORE_BROKER_HEALTHY};
        snprintf(id, sizeof id, "broker-%lu", i % half);
        rv = apply(&b, &c);
    }
    report("set broker status", 1000, now() - t0);

    t0 = now();
    for (unsigned long i = 0; rv == 0 && i < 200; i++) {
        char *names[1] = {id};
        struct store_cmd c = {.type = STORE_CMD_HANDLE_UNREACHABLE,
                              .topic = topic,
                              .replica_count = 3,
                              .names = names,
                              .n_names = 1};
        struct store_topic_view tv;
        snprintf(topic, sizeof topic, "topic-%lu", i * 37 % topics);
        if (store_sm_topic_get(b.sm, topic, &tv) != 0) {
            continue;
        }
        snprintf(id, sizeof id, "%s", tv.replicas[tv.n_replicas - 1].broker_id);
        rv = apply(&b, &c);
    }
    report("handle unreachable (+ cascades)", 200, now() - t0);

    if (rv != 0) {
        fprintf(stderr, "store_bench: apply: %s\n", goulette_strerror(rv));
        store_sm_close(b.sm);
        return 1;
    }
    printf("rejected commands: %lu\n", b.rejected);
    printf("state: %zu topics, %zu brokers, %zu operations, revision %" PRIu64
           ", applied %" PRIu64 "\n",
           store_sm_count(b.sm, STORE_DIR_TOPICS),
           store_sm_count(b.sm, STORE_DIR_BROKERS),
           store_sm_count(b.sm, STORE_DIR_OPERATIONS), store_sm_revision(b.sm),
           store_sm_applied_index(b.sm));
    printf("RSS after load: %ld KiB\n", rss_kib());

    t0 = now();
    {
        struct store_snap_export *e = NULL;
        struct goulette_buf chunk;
        unsigned long long bytes = 0;
        rv = store_snap_export_begin(b.sm, 1 << 20, &e);
        while (rv == 0 && (rv = store_snap_export_next(e, &chunk)) == 1) {
            bytes += chunk.len;
            rv = 0;
        }
        store_snap_export_end(e);
        printf("snapshot export: %llu bytes in %.3f s\n", bytes, now() - t0);
    }
    store_sm_close(b.sm);
    printf("store on disk: %llu bytes (%.1f MiB)\n", du(dir),
           (double)du(dir) / (1024.0 * 1024.0));

    t0 = now();
    rv = store_sm_open(&cfg, &b.sm);
    if (rv != 0) {
        fprintf(stderr, "store_bench: reopen: %s\n", goulette_strerror(rv));
        return 1;
    }
    printf("reopen (load model and ring): %.3f s\n", now() - t0);
    store_sm_close(b.sm);
    return 0;
}

int main(int argc, char **argv)
{
    const char *tmp = getenv("TMPDIR");
    char dir[512];
    unsigned long topics = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000;
    unsigned long brokers = argc > 3 ? strtoul(argv[3], NULL, 10) : 1000;
    int own = argc < 2;
    int rv;

    if (brokers == 0 || topics == 0) {
        fprintf(stderr, "usage: store_bench [DIR] [TOPICS] [BROKERS]\n");
        return 2;
    }
    if (own) {
        snprintf(dir, sizeof dir, "%s/store-bench-XXXXXX", tmp ? tmp : "/tmp");
        if (mkdtemp(dir) == NULL) {
            perror("store_bench: mkdtemp");
            return 1;
        }
    } else {
        snprintf(dir, sizeof dir, "%s", argv[1]);
    }
    rv = run(dir, topics, brokers);
    if (rv == 0 && run_core(topics, brokers) != 0) {
        rv = 1;
    }
    if (own) {
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    return rv;
}
