/* raft_bench: entries per second committed by the pure Raft core in a
 * 3-node in-memory cluster (no I/O: "persisting" is acknowledged at once,
 * messages are copied between instances in one process).  It measures the
 * core's own cost (bookkeeping, flow control, commit counting, compaction),
 * for later comparison; the runtime's LevelDB and TCP costs are not in it.
 *
 * Usage: raft_bench [ENTRIES [ENTRY_BYTES [BATCH]]]
 *   defaults 200000 entries of 64 bytes, 64 proposals between deliveries. */
#include <goulette/raft.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NODES 3

struct bench_msg
{
    struct raft_message m; /* entries deep-copied */
};

struct bench
{
    struct raft r[NODES];
    raft_index applied[NODES];
    struct bench_msg *q; /* pending messages */
    size_t qn, qcap, head;
    uint64_t committed; /* NORMAL entries applied on node 1 */
    uint64_t messages;
};

static void *xmalloc(size_t n)
{
    void *p = malloc(n == 0 ? 1 : n);
    if (p == NULL) {
        fprintf(stderr, "raft_bench: out of memory\n");
        exit(1);
    }
    return p;
}

static void enqueue(struct bench *b, const struct raft_message *m)
{
    struct raft_message *c;
    unsigned i;
    if (b->qn == b->qcap) {
        b->qcap = b->qcap == 0 ? 1024 : b->qcap * 2;
        b->q = realloc(b->q, b->qcap * sizeof *b->q);
        if (b->q == NULL) {
            fprintf(stderr, "raft_bench: out of memory\n");
            exit(1);
        }
    }
    c = &b->q[b->qn++].m;
    *c = *m;
    if (m->n_entries > 0) {
        c->entries = xmalloc(m->n_entries * sizeof *c->entries);
        for (i = 0; i < m->n_entries; i++) {
            c->entries[i] = m->entries[i];
            c->entries[i].data.base = xmalloc(m->entries[i].data.len);
            memcpy(c->entries[i].data.base, m->entries[i].data.base,
                   m->entries[i].data.len);
        }
    }
    b->messages++;
}

static void free_msg(struct raft_message *m)
{
    unsigned i;
    for (i = 0; i < m->n_entries; i++) {
        free(m->entries[i].data.base);
    }
    free(m->entries);
}

static void step(struct bench *b, unsigned n, const struct raft_event *ev);

/* Execute an update: persistence and application are instantaneous. */
static void execute(struct bench *b, unsigned n, const struct raft_update *u)
{
    struct raft_event ev = {0};
    raft_index persisted = 0, applied = 0;
    raft_term persisted_term = 0;
    unsigned i;
    if (u->n_entries > 0) {
        persisted = u->entries[u->n_entries - 1].index;
        persisted_term = u->entries[u->n_entries - 1].term;
    }
    for (i = 0; i < u->n_messages; i++) {
        enqueue(b, &u->messages[i]);
    }
    for (i = 0; i < u->n_committed; i++) {
        applied = u->committed[i].index;
        if (n == 0 && u->committed[i].type == RAFT_ENTRY_NORMAL) {
            b->committed++;
        }
    }
    if (persisted > 0) {
        ev.type = RAFT_EVENT_PERSISTED;
        ev.persisted.index = persisted;
        ev.persisted.term = persisted_term;
        step(b, n, &ev);
    }
    if (applied > 0) {
        b->applied[n] = applied;
        ev.type = RAFT_EVENT_APPLIED;
        ev.applied.index = applied;
        step(b, n, &ev);
    }
}

static void step(struct bench *b, unsigned n, const struct raft_event *ev)
{
    struct raft_update u;
    int rv = raft_step(&b->r[n], ev, &u);
    if (rv != 0) {
        fprintf(stderr, "raft_bench: raft_step: %d\n", rv);
        exit(1);
    }
    execute(b, n, &u);
}

static void deliver(struct bench *b)
{
    struct raft_event ev = {.type = RAFT_EVENT_RECEIVE};
    while (b->head < b->qn) {
        struct raft_message m = b->q[b->head++].m;
        ev.receive.message = &m;
        step(b, (unsigned)(m.to - 1), &ev);
        free_msg(&m);
    }
    b->head = 0;
    b->qn = 0;
}

static void start(struct bench *b)
{
    struct raft_configuration conf;
    struct raft_entry boot = {0};
    struct raft_event ev = {0};
    struct raft_config cfg;
    unsigned n;
    raft_configuration_init(&conf);
    for (n = 1; n <= NODES; n++) {
        char addr[32];
        snprintf(addr, sizeof addr, "127.0.0.1:%u", 7000 + n);
        raft_configuration_add(&conf, n, addr, RAFT_VOTER);
    }
    boot.term = 1;
    boot.index = 1;
    boot.type = RAFT_ENTRY_CONF;
    if (raft_configuration_encode(&conf, &boot.data) != 0) {
        exit(1);
    }
    for (n = 0; n < NODES; n++) {
        raft_config_defaults(&cfg);
        cfg.id = n + 1;
        cfg.seed = n + 1;
        if (raft_init(&b->r[n], &cfg) != 0) {
            exit(1);
        }
        ev.type = RAFT_EVENT_START;
        ev.start.hard_state.term = 1;
        ev.start.entries = &boot;
        ev.start.n_entries = 1;
        step(b, n, &ev);
    }
    free(boot.data.base);
    raft_configuration_fini(&conf);
    memset(&ev, 0, sizeof ev);
    ev.type = RAFT_EVENT_CAMPAIGN;
    step(b, 0, &ev);
    deliver(b);
}

/* Every node snapshots its applied index now and then, keeping 1,000
 * trailing entries, so the in-memory logs stay bounded. */
static void compact(struct bench *b)
{
    struct raft_event ev = {.type = RAFT_EVENT_SNAPSHOT};
    unsigned n;
    for (n = 0; n < NODES; n++) {
        ev.snapshot.index = b->applied[n];
        ev.snapshot.size = 0;
        ev.snapshot.trailing = 1000;
        step(b, n, &ev);
    }
}

static void print_machine(void)
{
    char line[256], model[256] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    unsigned cpus = 0;
    if (f != NULL) {
        while (fgets(line, sizeof line, f) != NULL) {
            char *colon = strchr(line, ':');
            if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
                snprintf(model, sizeof model, "%s", colon + 2);
                model[strcspn(model, "\n")] = '\0';
            }
            cpus += strncmp(line, "processor", 9) == 0;
        }
        fclose(f);
    }
    printf("machine: %s, %u CPUs online (shared); one thread used\n", model,
           cpus);
}

int main(int argc, char *argv[])
{
    uint64_t entries = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000;
    size_t size = argc > 2 ? strtoul(argv[2], NULL, 10) : 64;
    unsigned batch = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 64;
    struct bench *b = calloc(1, sizeof *b);
    struct raft_event ev = {.type = RAFT_EVENT_PROPOSE};
    struct goulette_buf data;
    struct timespec t0, t1;
    uint64_t proposed = 0, last_compact = 0;
    double secs;
    unsigned n, k;
    if (b == NULL || batch == 0) {
        return 1;
    }
    data.base = xmalloc(size);
    data.len = size;
    memset(data.base, 'x', size);
    start(b);
    if (raft_state(&b->r[0]) != RAFT_LEADER) {
        fprintf(stderr, "raft_bench: node 1 did not become leader\n");
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (b->committed < entries) {
        for (k = 0; k < batch && proposed < entries; k++, proposed++) {
            ev.propose.context = proposed;
            ev.propose.type = RAFT_ENTRY_NORMAL;
            ev.propose.data = &data;
            ev.propose.n = 1;
            step(b, 0, &ev);
        }
        deliver(b);
        if (b->committed - last_compact >= 10000) {
            compact(b);
            last_compact = b->committed;
        }
        if (proposed >= entries && b->committed < entries) {
            struct raft_event tick = {.type = RAFT_EVENT_TICK};
            step(b, 0, &tick); /* heartbeats carry the last commit */
            deliver(b);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) +
           (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_machine();
    printf(
        "raft core, 3 nodes in memory: %llu entries of %zu bytes, "
        "%u proposals per delivery round\n",
        (unsigned long long)entries, size, batch);
    printf(
        "committed %llu entries in %.3f s: %.0f entries/s "
        "(%llu messages)\n",
        (unsigned long long)b->committed, secs, (double)b->committed / secs,
        (unsigned long long)b->messages);
    for (n = 0; n < NODES; n++) {
        raft_fini(&b->r[n]);
    }
    free(b->q);
    free(b);
    free(data.base);
    return 0;
}
