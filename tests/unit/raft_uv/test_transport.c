/* Tests of the libuv peer transport (raft/uv/uv_transport.c,
 * uv_incoming.c) with a REAL loop on 127.0.0.1 ephemeral ports: several
 * transports in one process, plus raw sockets playing misbehaving peers.
 * Every test ends by closing every handle and asserting uv_loop_close() ==
 * 0.  No timing assertions: waits are "until this happens", bounded by
 * generous deadlines that only catch hangs. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <goulette/err.h>
#include <goulette/raft_uv.h>

#include "failmalloc.h"
#include "uv_codec.h"
#include "uv_frame.h"

#define CLUSTER 0xC1A57E4ULL
#define DEADLINE_MS 20000 /* only catches hangs */
#define MAX_GOT 64

static uv_loop_t loop;
static uv_timer_t poke; /* keeps UV_RUN_ONCE from blocking forever */

/* True while the test is inside raft_uv_transport_send: callbacks must
 * never run then (the node runtime would re-enter raft_step). */
static bool in_send;

/* ------------------------------------------------------------------------
 * Harness: nodes
 * ------------------------------------------------------------------------ */

struct node
{
    struct raft_uv_transport t;
    raft_id id;
    char address[RAFT_ADDRESS_MAX];
    struct raft_message *got[MAX_GOT]; /* received, owned */
    unsigned n_got;
    unsigned n_got_total;
    unsigned unreachable[16]; /* count per peer id < 16 */
    bool open;
    bool close_in_recv; /* close the transport from recv_cb */
    /* Application frames (app_cb), and the order of everything received:
     * seq[i] is a message's context, or APP_SEQ + the frame's index. */
    char app[MAX_GOT][64]; /* payloads, NUL-terminated copies */
    size_t app_len[MAX_GOT];
    raft_id app_from[MAX_GOT];
    unsigned n_app;
    uint64_t seq[2 * MAX_GOT];
    unsigned n_seq;
};

#define APP_SEQ 1000000u

static void log_emit(void *data,
                     enum goulette_log_level level,
                     const char *subsys,
                     const char *msg)
{
    (void)data;
    fprintf(stderr, "[%s] %s: %s\n", goulette_log_level_name(level), subsys,
            msg);
}

static const struct goulette_log test_log = {GOULETTE_LOG_DEBUG, log_emit,
                                             NULL};

static void on_closed(struct raft_uv_transport *t)
{
    struct node *n = t->data;

    n->open = false;
}

static void on_recv(struct raft_uv_transport *t, struct raft_message *m)
{
    struct node *n = t->data;

    ck_assert(n->open);
    ck_assert(!in_send);
    n->n_got_total++;
    if (n->n_seq < 2 * MAX_GOT) {
        n->seq[n->n_seq++] = m->context;
    }
    if (n->n_got < MAX_GOT) {
        n->got[n->n_got++] = m;
    } else {
        raft_uv_message_free(m);
    }
    if (n->close_in_recv) {
        n->close_in_recv = false;
        raft_uv_transport_close(t, on_closed);
    }
}

static void on_app(struct raft_uv_transport *t,
                   raft_id from,
                   const void *payload,
                   size_t len)
{
    struct node *n = t->data;

    ck_assert(n->open);
    ck_assert(!in_send);
    ck_assert_uint_gt(len, 0);
    if (n->n_app < MAX_GOT) {
        size_t keep = len < sizeof n->app[0] - 1 ? len : sizeof n->app[0] - 1;
        memcpy(n->app[n->n_app], payload, keep);
        n->app[n->n_app][keep] = '\0';
        n->app_len[n->n_app] = len;
        n->app_from[n->n_app] = from;
        if (n->n_seq < 2 * MAX_GOT) {
            n->seq[n->n_seq++] = APP_SEQ + n->n_app;
        }
        n->n_app++;
    }
}

static void on_unreachable(struct raft_uv_transport *t, raft_id id)
{
    struct node *n = t->data;

    ck_assert(n->open);
    ck_assert(!in_send);
    if (id < 16) {
        n->unreachable[id]++;
    }
}

static void config_for(struct raft_uv_transport_config *c, raft_id id)
{
    raft_uv_transport_config_defaults(c);
    c->cluster_id = CLUSTER;
    c->id = id;
    c->seed = 42 + id;
    c->backoff_min_ms = 20;
    c->backoff_max_ms = 200;
    c->handshake_timeout_ms = 2000;
    c->max_frame_bytes = 8u << 20;
    c->log = &test_log;
    c->unreachable_cb = on_unreachable;
    c->app_cb = on_app;
}

static void node_start_with(struct node *n,
                            const struct raft_uv_transport_config *c,
                            const char *listen)
{
    memset(n, 0, sizeof *n);
    n->id = c->id;
    ck_assert_int_eq(raft_uv_transport_init(&n->t, &loop, c), 0);
    n->t.data = n;
    n->open = true;
    ck_assert_int_eq(raft_uv_transport_start(&n->t, listen, on_recv), 0);
    ck_assert_int_eq(
        raft_uv_transport_address(&n->t, n->address, sizeof n->address), 0);
}

static void node_start(struct node *n, raft_id id)
{
    struct raft_uv_transport_config c;

    config_for(&c, id);
    node_start_with(n, &c, "127.0.0.1:0");
}

/* Tell @n about every node in @all (its own entry is ignored). */
static void node_know(struct node *n, struct node **all, unsigned count)
{
    struct raft_uv_peer peers[8];
    unsigned i;

    for (i = 0; i < count; i++) {
        peers[i].id = all[i]->id;
        snprintf(peers[i].address, sizeof peers[i].address, "%s",
                 all[i]->address);
    }
    ck_assert_int_eq(raft_uv_transport_set_peers(&n->t, peers, count), 0);
}

static void node_free_got(struct node *n)
{
    unsigned i;

    for (i = 0; i < n->n_got; i++) {
        raft_uv_message_free(n->got[i]);
    }
    n->n_got = 0;
}

/* ------------------------------------------------------------------------
 * Harness: the loop
 * ------------------------------------------------------------------------ */

static void on_poke(uv_timer_t *t)
{
    (void)t;
}

static void setup(void)
{
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &poke);
    uv_timer_start(&poke, on_poke, 5, 5);
}

/* Run the loop until @pred(@arg) holds; fail after DEADLINE_MS. */
static void run_until(bool (*pred)(void *arg), void *arg, const char *what)
{
    uint64_t deadline;

    uv_update_time(&loop);
    deadline = uv_now(&loop) + DEADLINE_MS;
    while (!pred(arg)) {
        ck_assert_msg(uv_now(&loop) < deadline, "timed out waiting for %s",
                      what);
        uv_run(&loop, UV_RUN_ONCE);
    }
}

/* Run the loop for about @ms milliseconds. */
static void run_for(unsigned ms)
{
    uint64_t end;

    uv_update_time(&loop);
    end = uv_now(&loop) + ms;
    while (uv_now(&loop) < end) {
        uv_run(&loop, UV_RUN_ONCE);
    }
}

static bool node_closed(void *arg)
{
    return !((struct node *)arg)->open;
}

static void node_close(struct node *n)
{
    if (n->open && n->t.impl != NULL) {
        raft_uv_transport_close(&n->t, on_closed);
    }
    run_until(node_closed, n, "transport close");
    node_free_got(n);
}

static void on_poke_closed(uv_handle_t *h)
{
    (void)h;
}

/* Close the poke timer and assert that nothing else is left open. */
static void loop_finish(void)
{
    uv_close((uv_handle_t *)&poke, on_poke_closed);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}

struct wait_got
{
    struct node *n;
    unsigned count;
};

static bool got_at_least(void *arg)
{
    struct wait_got *w = arg;
    return w->n->n_got_total >= w->count;
}

static void wait_got(struct node *n, unsigned count)
{
    struct wait_got w = {n, count};
    run_until(got_at_least, &w, "messages");
}

static void wait_apps(struct node *n, unsigned count);

/* ------------------------------------------------------------------------
 * Harness: messages
 * ------------------------------------------------------------------------ */

static char payload_a[] = "register broker 7 at 10.0.0.7:9092";
static char conf_bytes[] = "conf";
static struct raft_entry entries[2];

static struct raft_message msg_of_type(enum raft_msg_type type,
                                       raft_id from,
                                       raft_id to)
{
    struct raft_message m;

    memset(&m, 0, sizeof m);
    m.type = type;
    m.from = from;
    m.to = to;
    m.term = 3;
    m.log_index = 10;
    m.log_term = 2;
    m.commit = 9;
    m.index = 11;
    m.reject = type % 2 == 0;
    m.reject_hint = 8;
    m.hint_term = 1;
    m.context = 1000 + type;
    m.transfer = type == RAFT_MSG_VOTE;
    m.rv = type == RAFT_MSG_PROPOSE_RESP ? GOULETTE_ENOTLEADER : 0;
    if (type == RAFT_MSG_APPEND || type == RAFT_MSG_PROPOSE) {
        entries[0] = (struct raft_entry){
            3, 11, RAFT_ENTRY_NORMAL, {payload_a, sizeof payload_a - 1}};
        entries[1] = (struct raft_entry){3, 12, RAFT_ENTRY_BARRIER, {NULL, 0}};
        m.entries = entries;
        m.n_entries = 2;
    }
    if (type == RAFT_MSG_SNAPSHOT) {
        m.snapshot.index = 50;
        m.snapshot.term = 2;
        m.snapshot.size = sizeof payload_a - 1;
        m.snapshot.offset = 0;
        m.snapshot.last = true;
        m.snapshot.data =
            (struct goulette_buf){payload_a, sizeof payload_a - 1};
        m.snapshot.conf =
            (struct goulette_buf){conf_bytes, sizeof conf_bytes - 1};
        m.snapshot.conf_index = 40;
    }
    return m;
}

static void assert_same(const struct raft_message *a,
                        const struct raft_message *b)
{
    struct goulette_buf ea, eb;

    /* Encodings are canonical for equal messages (protobuf-c writes fields
     * in order), so comparing them compares every field. */
    ck_assert_int_eq(raft_uv__codec_encode(a, 0, &ea), 0);
    ck_assert_int_eq(raft_uv__codec_encode(b, 0, &eb), 0);
    ck_assert_uint_eq(ea.len, eb.len);
    ck_assert_int_eq(memcmp(ea.base, eb.base, ea.len), 0);
    free(ea.base);
    free(eb.base);
}

static int send_heartbeat(struct node *from, raft_id to, uint64_t context)
{
    struct raft_message m = msg_of_type(RAFT_MSG_HEARTBEAT, from->id, to);
    int rv;

    m.context = context;
    in_send = true;
    rv = raft_uv_transport_send(&from->t, to, &m);
    in_send = false;
    return rv;
}

/* ------------------------------------------------------------------------
 * Harness: raw sockets (misbehaving peers)
 * ------------------------------------------------------------------------ */

struct raw
{
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    int connect_status; /* 1 until the connect callback */
    bool eof;           /* the other side closed */
    bool closed;
    uint8_t in[4096];
    size_t in_len;
    char rbuf[65536];
};

static void raw_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct raw *r = h->data;
    (void)hint;
    buf->base = r->rbuf;
    buf->len = sizeof r->rbuf;
}

static void raw_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct raw *r = s->data;

    if (n < 0) {
        r->eof = true;
        uv_read_stop(s);
        return;
    }
    if (n > 0 && r->in_len + (size_t)n <= sizeof r->in) {
        memcpy(r->in + r->in_len, buf->base, (size_t)n);
        r->in_len += (size_t)n;
    }
}

static void raw_on_connect(uv_connect_t *req, int status)
{
    struct raw *r = req->data;

    r->connect_status = status;
    if (status == 0) {
        uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_on_read);
    }
}

static bool raw_connected(void *arg)
{
    return ((struct raw *)arg)->connect_status != 1;
}

static void parse_addr(const char *address, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(address, ':');

    ck_assert_ptr_nonnull(colon);
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    ck_assert_int_eq(uv_ip4_addr(host, atoi(colon + 1), sa), 0);
}

static void raw_connect(struct raw *r, const char *address)
{
    struct sockaddr_in sa;

    memset(r, 0, sizeof *r);
    r->connect_status = 1;
    parse_addr(address, &sa);
    uv_tcp_init(&loop, &r->tcp);
    r->tcp.data = r;
    r->connect_req.data = r;
    ck_assert_int_eq(
        uv_tcp_connect(&r->connect_req, &r->tcp, (const struct sockaddr *)&sa,
                       raw_on_connect),
        0);
    run_until(raw_connected, r, "raw connect");
    ck_assert_int_eq(r->connect_status, 0);
}

static void raw_on_write(uv_write_t *req, int status)
{
    (void)status;
    free(req->data);
    free(req);
}

static void raw_write(struct raw *r, const void *data, size_t len)
{
    uv_write_t *req = malloc(sizeof *req);
    char *copy = malloc(len);
    uv_buf_t b;

    memcpy(copy, data, len);
    req->data = copy;
    b = uv_buf_init(copy, (unsigned)len);
    ck_assert_int_eq(uv_write(req, (uv_stream_t *)&r->tcp, &b, 1, raw_on_write),
                     0);
}

static void raw_write_frame(struct raw *r,
                            uint8_t kind,
                            const void *payload,
                            size_t len)
{
    uint8_t *buf = malloc(RAFT_UV_FRAME_HEADER + len);

    raft_uv__frame_header(buf, kind, (uint32_t)len);
    if (len > 0) {
        memcpy(buf + RAFT_UV_FRAME_HEADER, payload, len);
    }
    raw_write(r, buf, RAFT_UV_FRAME_HEADER + len);
    free(buf);
}

static void raw_handshake(struct raw *r,
                          uint64_t cluster,
                          raft_id from,
                          raft_id to)
{
    struct raft_uv__handshake h;
    uint8_t buf[RAFT_UV_HANDSHAKE_MAX];
    long n;

    memset(&h, 0, sizeof h);
    h.version = RAFT_UV_PROTOCOL_VERSION;
    h.cluster_id = cluster;
    h.from = from;
    h.to = to;
    strcpy(h.address, "127.0.0.1:1");
    n = raft_uv__handshake_encode(&h, buf);
    ck_assert_int_gt(n, 0);
    raw_write_frame(r, RAFT_UV_FRAME_HANDSHAKE, buf, (size_t)n);
}

static bool raw_eof(void *arg)
{
    return ((struct raw *)arg)->eof;
}

static bool raw_has_ack(void *arg)
{
    struct raw *r = arg;
    return r->in_len >= RAFT_UV_FRAME_HEADER + RAFT_UV_ACK_SIZE || r->eof;
}

/* The status in the ACK the server sent, or 1 if none arrived. */
static int raw_ack_status(struct raw *r)
{
    int status = 1;

    run_until(raw_has_ack, r, "ACK");
    if (r->in_len < RAFT_UV_FRAME_HEADER + RAFT_UV_ACK_SIZE) {
        return 1;
    }
    ck_assert_uint_eq(r->in[4], RAFT_UV_FRAME_ACK);
    ck_assert_int_eq(raft_uv__ack_decode(r->in + RAFT_UV_FRAME_HEADER,
                                         RAFT_UV_ACK_SIZE, &status),
                     0);
    return status;
}

static void raw_on_closed(uv_handle_t *h)
{
    struct raw *r = h->data;
    r->closed = true;
}

static bool raw_closed(void *arg)
{
    return ((struct raw *)arg)->closed;
}

static void raw_close(struct raw *r)
{
    uv_close((uv_handle_t *)&r->tcp, raw_on_closed);
    run_until(raw_closed, r, "raw close");
}

static uint64_t refused(struct node *n)
{
    struct raft_uv_transport_stats s;

    ck_assert_int_eq(raft_uv_transport_stats(&n->t, 0, &s), 0);
    return s.refused;
}

struct wait_refused
{
    struct node *n;
    uint64_t count;
};

static bool refused_at_least(void *arg)
{
    struct wait_refused *w = arg;
    return refused(w->n) >= w->count;
}

/* Two nodes that know each other, and a third one; used by most tests. */
static struct node a, b, c;

static void pair_start(void)
{
    struct node *all[] = {&a, &b};

    node_start(&a, 1);
    node_start(&b, 2);
    node_know(&a, all, 2);
    node_know(&b, all, 2);
}

/* B still serves the good peer A: a fresh message from A arrives. */
static void assert_b_serves_a(void)
{
    unsigned before = b.n_got_total;

    ck_assert_int_eq(send_heartbeat(&a, 2, 777), 0);
    wait_got(&b, before + 1);
    ck_assert_uint_eq(b.got[b.n_got - 1]->context, 777);
}

/* ------------------------------------------------------------------------
 * Delivery
 * ------------------------------------------------------------------------ */

START_TEST(every_message_type_is_delivered_intact)
{
    struct raft_message m;
    int t;

    pair_start();
    for (t = RAFT_MSG_APPEND; t <= RAFT_MSG_READ_INDEX_RESP; t++) {
        m = msg_of_type((enum raft_msg_type)t, 1, 2);
        ck_assert_int_eq(raft_uv_transport_send(&a.t, 2, &m), 0);
        m = msg_of_type((enum raft_msg_type)t, 2, 1);
        ck_assert_int_eq(raft_uv_transport_send(&b.t, 1, &m), 0);
    }
    wait_got(&b, 15);
    wait_got(&a, 15);
    for (t = RAFT_MSG_APPEND; t <= RAFT_MSG_READ_INDEX_RESP; t++) {
        m = msg_of_type((enum raft_msg_type)t, 1, 2);
        assert_same(&m, b.got[t - 1]); /* in order */
        m = msg_of_type((enum raft_msg_type)t, 2, 1);
        assert_same(&m, a.got[t - 1]);
    }
    node_close(&a);
    node_close(&b);
    loop_finish();
}
END_TEST

START_TEST(many_messages_arrive_in_order)
{
    struct raft_uv_transport_stats s;
    unsigned i;

    pair_start();
    for (i = 0; i < 500; i++) {
        ck_assert_int_eq(send_heartbeat(&a, 2, i), 0);
    }
    wait_got(&b, 500);
    for (i = 0; i < MAX_GOT; i++) {
        ck_assert_uint_eq(b.got[i]->context, i);
    }
    ck_assert_int_eq(raft_uv_transport_stats(&a.t, 2, &s), 0);
    ck_assert_uint_eq(s.sent, 500);
    ck_assert_uint_eq(s.dropped, 0);
    ck_assert_uint_eq(s.connects, 1);
    ck_assert_int_eq(raft_uv_transport_stats(&b.t, 1, &s), 0);
    ck_assert_uint_eq(s.received, 500);
    node_close(&a);
    node_close(&b);
    loop_finish();
}
END_TEST

START_TEST(five_mib_snapshot_chunk_is_delivered)
{
    struct raft_message m = msg_of_type(RAFT_MSG_SNAPSHOT, 1, 2);
    size_t len = 5u << 20, i;
    uint8_t *big = malloc(len);

    for (i = 0; i < len; i++) {
        big[i] = (uint8_t)(i ^ (i >> 11));
    }
    pair_start();
    m.snapshot.size = len;
    m.snapshot.data = (struct goulette_buf){big, len};
    ck_assert_int_eq(raft_uv_transport_send(&a.t, 2, &m), 0);
    /* The message was encoded on send: the caller's buffer may go. */
    memset(big, 0, len);
    ck_assert_int_eq(send_heartbeat(&a, 2, 1), 0);
    wait_got(&b, 2);
    ck_assert_int_eq(b.got[0]->type, RAFT_MSG_SNAPSHOT);
    ck_assert_uint_eq(b.got[0]->snapshot.data.len, len);
    for (i = 0; i < len; i++) {
        big[i] = (uint8_t)(i ^ (i >> 11));
    }
    ck_assert_int_eq(memcmp(b.got[0]->snapshot.data.base, big, len), 0);
    ck_assert_int_eq(b.got[1]->type, RAFT_MSG_HEARTBEAT);
    free(big);
    node_close(&a);
    node_close(&b);
    loop_finish();
}
END_TEST

START_TEST(message_above_frame_limit_is_refused_on_send)
{
    struct raft_message m = msg_of_type(RAFT_MSG_SNAPSHOT, 1, 2);
    size_t len = (8u << 20) + 1;
    uint8_t *big = calloc(1, len);

    pair_start();
    m.snapshot.size = len;
    m.snapshot.data = (struct goulette_buf){big, len};
    ck_assert_int_eq(raft_uv_transport_send(&a.t, 2, &m), -EMSGSIZE);
    free(big);
    assert_b_serves_a();
    node_close(&a);
    node_close(&b);
    loop_finish();
}
END_TEST

START_TEST(close_from_recv_callback_is_safe)
{
    unsigned i;

    pair_start();
    b.close_in_recv = true;
    for (i = 0; i < 50; i++) {
        ck_assert_int_eq(send_heartbeat(&a, 2, i), 0);
    }
    run_until(node_closed, &b, "B closed from its recv_cb");
    ck_assert_uint_eq(b.n_got_total, 1); /* nothing after close */
    node_close(&b);
    node_close(&a);
    loop_finish();
}
END_TEST

/* ------------------------------------------------------------------------
 * Reconnection
 * ------------------------------------------------------------------------ */

struct retry
{
    struct node *from;
    struct node *to;
    unsigned want;
};

/* Send one heartbeat per call until @to has @want messages. */
static bool delivered_with_retries(void *arg)
{
    struct retry *r = arg;

    if (r->to->n_got_total >= r->want) {
        return true;
    }
    send_heartbeat(r->from, r->to->id, 5);
    run_for(10);
    return r->to->n_got_total >= r->want;
}

struct wait_unreachable
{
    struct node *n;
    raft_id id;
};

static bool unreachable_reported(void *arg)
{
    struct wait_unreachable *w = arg;
    return w->n->unreachable[w->id] > 0;
}

static bool peer_dropped_one(void *arg)
{
    struct raft_uv_transport_stats s;

    (void)arg;
    ck_assert_int_eq(raft_uv_transport_stats(&a.t, 2, &s), 0);
    return s.dropped >= 1 && a.unreachable[2] >= 2;
}

START_TEST(restarted_peer_is_reconnected_after_backoff)
{
    struct wait_unreachable w = {&a, 2};
    struct raft_uv_transport_config cfg;
    struct raft_uv_transport_stats s;
    struct retry r;
    char b_address[RAFT_ADDRESS_MAX];

    pair_start();
    assert_b_serves_a();
    strcpy(b_address, b.address);

    /* B goes away: A notices, reports it unreachable, keeps dialling. */
    node_close(&b);
    run_until(unreachable_reported, &w, "A noticing B's close");
    /* A message now needs a new dial, which fails: it is dropped. */
    ck_assert_int_eq(send_heartbeat(&a, 2, 1), 0);
    run_until(peer_dropped_one, NULL, "the message to the dead peer dropped");
    ck_assert_int_ge(a.unreachable[2], 2);

    /* B comes back on the same port. */
    config_for(&cfg, 2);
    node_start_with(&b, &cfg, b_address);
    {
        struct node *all[] = {&a, &b};
        node_know(&b, all, 2);
    }
    r = (struct retry){&a, &b, 1};
    run_until(delivered_with_retries, &r, "delivery after restart");
    ck_assert_int_eq(raft_uv_transport_stats(&a.t, 2, &s), 0);
    ck_assert_uint_ge(s.connects, 2);
    ck_assert_uint_ge(s.dials, 3);
    node_close(&a);
    node_close(&b);
    loop_finish();
}
END_TEST

START_TEST(backoff_grows_while_peer_is_down)
{
    struct raft_uv_transport_config cfg;
    struct raft_uv_transport_stats s;
    struct node *all[] = {&a, &b};
    uint64_t start, elapsed;
    unsigned i;

    /* B is known at an address where nobody listens. */
    config_for(&cfg, 1);
    cfg.backoff_min_ms = 50;
    cfg.backoff_max_ms = 400;
    node_start_with(&a, &cfg, "127.0.0.1:0");
    node_start(&b, 2);
    node_know(&a, all, 2);
    node_close(&b);
    /* Keep traffic flowing for at least 1.5 s.  Redials wait at least half
     * the base delay (equal jitter): 25, 50, 100, then 200 ms once the base
     * reaches the 400 ms cap.  So over E ms there are at most 4 + E / 200
     * dials, however slow the machine is (timers never fire early), where
     * immediate redials would make one per 10 ms turn. */
    uv_update_time(&loop);
    start = uv_now(&loop);
    for (i = 0; i < 150; i++) {
        send_heartbeat(&a, 2, i);
        run_for(10);
    }
    uv_update_time(&loop);
    elapsed = uv_now(&loop) - start;
    ck_assert_int_eq(raft_uv_transport_stats(&a.t, 2, &s), 0);
    ck_assert_uint_ge(s.dials, 3);
    ck_assert_uint_le(s.dials, 4 + elapsed / 200);
    ck_assert_uint_eq(s.connects, 0);
    ck_assert_uint_eq(s.sent, 0);
    node_close(&a);
    loop_finish();
}
END_TEST

/* ------------------------------------------------------------------------
 * Refusals
 * ------------------------------------------------------------------------ */

START_TEST(peer_from_another_cluster_is_refused)
{
    struct raft_uv_transport_config cfg;
    struct raft_uv_transport_stats s;
    struct node *all[] = {&a, &b, &c};
    struct wait_refused w = {&b, 1};

    pair_start();
    config_for(&cfg, 3);
    cfg.cluster_id = CLUSTER + 1;
    node_start_with(&c, &cfg, "127.0.0.1:0");
    node_know(&c, all, 3);
    node_know(&b, all, 3); /* B knows member 3: only the cluster differs */
    ck_assert_int_eq(send_heartbeat(&c, 2, 1), 0);
    run_until(refused_at_least, &w, "refusal");
    run_for(100);
    ck_assert_uint_eq(b.n_got_total, 0);
    ck_assert_int_ge(c.unreachable[2], 1);
    ck_assert_int_eq(raft_uv_transport_stats(&c.t, 2, &s), 0);
    ck_assert_uint_eq(s.connects, 0);
    ck_assert_uint_eq(s.sent, 0);
    assert_b_serves_a();
    node_close(&c);
    node_close(&a);
    node_close(&b);
    loop_finish();
}
END_TEST

START_TEST(unknown_member_is_refused)
{
    struct node *all[] = {&a, &b, &c};
    struct wait_refused w = {&b, 1};

    pair_start();
    node_start(&c, 3);
    node_know(&c, all, 3); /* C knows B; B does not know C */
    ck_assert_int_eq(send_heartbeat(&c, 2, 1), 0);
    run_until(refused_at_least, &w, "refusal");
    run_for(100);
    ck_assert_uint_eq(b.n_got_total, 0);
    ck_assert_int_ge(c.unreachable[2], 1);
    assert_b_serves_a();
    node_close(&c);
    node_close(&a);
    node_close(&b);
    loop_finish();
}
END_TEST

START_TEST(wrong_receiver_id_is_refused)
{
    struct raw r;

    pair_start();
    raw_connect(&r, b.address);
    raw_handshake(&r, CLUSTER, 1, 5); /* B is member 2, not 5 */
    ck_assert_int_eq(raw_ack_status(&r), -ENXIO);
    run_until(raw_eof, &r, "close after refusal");
    raw_close(&r);

    raw_connect(&r, b.address);
    raw_handshake(&r, CLUSTER, 2, 2); /* B itself as sender */
    ck_assert_int_eq(raw_ack_status(&r), GOULETTE_ENOTFOUND);
    run_until(raw_eof, &r, "close after refusal");
    raw_close(&r);
    ck_assert_uint_ge(refused(&b), 2);
    assert_b_serves_a();
    node_close(&a);
    node_close(&b);
    loop_finish();
}
END_TEST

START_TEST(other_protocol_version_is_refused_with_reason)
{
    struct raw r;
    uint8_t hs[6] = {'G', 'R', 'F', 'T', 0, 9};

    pair_start();
    raw_connect(&r, b.address);
    raw_write_frame(&r, RAFT_UV_FRAME_HANDSHAKE, hs, sizeof hs);
    ck_assert_int_eq(raw_ack_status(&r), GOULETTE_EVERSION);
    run_until(raw_eof, &r, "close after refusal");
    raw_close(&r);
    assert_b_serves_a();
    node_close(&a);
    node_close(&b);
    loop_finish();
}
END_TEST

START_TEST(garbage_bytes_are_refused)
{
    static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    uint8_t noise[512];
    struct raw r;
    unsigned i;
    uint64_t before;

    pair_start();
    assert_b_serves_a(); /* A's connection exists before the abuse */
    before = refused(&b);
    raw_connect(&r, b.address);
    raw_write(&r, http, sizeof http - 1);
    run_until(raw_eof, &r, "close on garbage");
    ck_assert_uint_eq(r.in_len, 0); /* no answer to garbage */
    raw_close(&r);

    for (i = 0; i < sizeof noise; i++) {
        noise[i] = (uint8_t)(i * 167 + 13);
    }
    raw_connect(&r, b.address);
    raw_write(&r, noise, sizeof noise);
    run_until(raw_eof, &r, "close on noise");
    raw_close(&r);
    ck_assert_uint_ge(refused(&b), before + 2);
    assert_b_serves_a();
    node_close(&a);
    node_close(&b);
    loop_finish();
}
END_TEST

START_TEST(oversized_frame_is_refused)
{
    uint8_t h[RAFT_UV_FRAME_HEADER];
    struct raw r;

    pair_start();
    /* Before the handshake, only a handshake-sized frame is accepted. */
    raw_connect(&r, b.address);
    raft_uv__frame_header(h, RAFT_UV_FRAME_HANDSHAKE, 4096);
    raw_write(&r, h, sizeof h);
    run_until(raw_eof, &r, "close on oversized handshake");
    raw_close(&r);

    /* After it, max_frame_bytes (8 MiB here) holds. */
    raw_connect(&r, b.address);
    raw_handshake(&r, CLUSTER, 1, 2);
    ck_assert_int_eq(raw_ack_status(&r), 0);
    raft_uv__frame_header(h, RAFT_UV_FRAME_MESSAGE, (8u << 20) + 1);
    raw_write(&r, h, sizeof h);
    run_until(raw_eof, &r, "close on oversized message");
    raw_close(&r);
    ck_assert_uint_ge(refused(&b), 2);
    assert_b_serves_a();
    node_close(&a);
    node_close(&b);
    loop_finish();
}
END_TEST

START_TEST(malformed_or_spoofed_message_is_refused)
{
    static const uint8_t junk[] = {0x08, 0xff, 0xff};
    struct raft_message m;
    struct goulette_buf enc;
    struct raw r;

    pair_start();
    raw_connect(&r, b.address);
    raw_handshake(&r, CLUSTER, 1, 2);
    ck_assert_int_eq(raw_ack_status(&r), 0);
    raw_write_frame(&r, RAFT_UV_FRAME_MESSAGE, junk, sizeof junk);
    run_until(raw_eof, &r, "close on malformed message");
    raw_close(&r);

    /* A well-formed message whose sender is not the handshake's. */
    m = msg_of_type(RAFT_MSG_VOTE, 3, 2);
    ck_assert_int_eq(raft_uv__codec_encode(&m, 0, &enc), 0);
    raw_connect(&r, b.address);
    raw_handshake(&r, CLUSTER, 1, 2);
    ck_assert_int_eq(raw_ack_status(&r), 0);
    raw_write_frame(&r, RAFT_UV_FRAME_MESSAGE, enc.base, enc.len);
    run_until(raw_eof, &r, "close on spoofed message");
    raw_close(&r);
    free(enc.base);

    /* A second handshake on an identified connection. */
    raw_connect(&r, b.address);
    raw_handshake(&r, CLUSTER, 1, 2);
    ck_assert_int_eq(raw_ack_status(&r), 0);
    raw_handshake(&r, CLUSTER, 1, 2);
    run_until(raw_eof, &r, "close on second handshake");
    raw_close(&r);

    ck_assert_uint_eq(b.n_got_total, 0);
    ck_assert_uint_ge(refused(&b), 3);
    assert_b_serves_a();
    node_close(&a);
    node_close(&b);
    loop_finish();
}
END_TEST

/* Counts the refusal lines a transport logs. */
struct log_count
{
    unsigned refused;    /* "refused connection" lines */
    unsigned suppressed; /* "not logged" summary lines */
};

static void counting_emit(void *data,
                          enum goulette_log_level level,
                          const char *subsys,
                          const char *msg)
{
    struct log_count *lc = data;

    if (strstr(msg, "refused connection") != NULL) {
        lc->refused++;
    }
    if (strstr(msg, "not logged") != NULL) {
        lc->suppressed++;
    }
    log_emit(NULL, level, subsys, msg);
}

START_TEST(refusal_logs_are_rate_limited)
{
    struct log_count lc = {0, 0};
    struct goulette_log counting = {GOULETTE_LOG_DEBUG, counting_emit, &lc};
    struct raft_uv_transport_config cfg;
    struct wait_refused w;
    struct node *all[] = {&a, &b};
    struct raw r;
    unsigned i;

    node_start(&a, 1);
    config_for(&cfg, 2);
    cfg.log = &counting;
    cfg.log_burst = 3;
    cfg.log_interval_ms = 60000; /* one window for the whole test */
    node_start_with(&b, &cfg, "127.0.0.1:0");
    node_know(&a, all, 2);
    node_know(&b, all, 2);
    for (i = 0; i < 20; i++) {
        raw_connect(&r, b.address);
        raw_write(&r, "garbage!", 8);
        run_until(raw_eof, &r, "close on garbage");
        raw_close(&r);
    }
    w = (struct wait_refused){&b, 20};
    run_until(refused_at_least, &w, "20 refusals");
    ck_assert_uint_eq(lc.refused, 3);
    assert_b_serves_a();
    node_close(&a);
    node_close(&b);
    loop_finish();
}
END_TEST

START_TEST(connections_above_the_limit_are_closed)
{
    struct raft_uv_transport_config cfg;
    struct node *all[] = {&a, &b};
    struct raw r[3];
    unsigned i;

    node_start(&a, 1);
    config_for(&cfg, 2);
    cfg.max_incoming = 3;
    node_start_with(&b, &cfg, "127.0.0.1:0");
    node_know(&a, all, 2);
    node_know(&b, all, 2);
    /* Three silent connections take every slot; a fourth (A's) is closed
     * at once, so A cannot deliver until the silent ones go. */
    for (i = 0; i < 3; i++) {
        raw_connect(&r[i], b.address);
    }
    {
        struct wait_refused w = {&b, 1};
        struct wait_unreachable wu = {&a, 2};
        ck_assert_int_eq(send_heartbeat(&a, 2, 1), 0);
        run_until(refused_at_least, &w, "refusal above the limit");
        run_until(unreachable_reported, &wu, "A refused");
    }
    ck_assert_uint_eq(b.n_got_total, 0);
    for (i = 0; i < 3; i++) {
        raw_close(&r[i]);
    }
    {
        struct retry rr = {&a, &b, 1};
        run_until(delivered_with_retries, &rr, "delivery once slots free");
    }
    node_close(&a);
    node_close(&b);
    loop_finish();
}
END_TEST

START_TEST(silent_connection_is_closed_after_handshake_timeout)
{
    struct raft_uv_transport_config cfg;
    struct node *all[] = {&a, &b};
    struct raw r;

    node_start(&a, 1);
    config_for(&cfg, 2);
    cfg.handshake_timeout_ms = 200;
    node_start_with(&b, &cfg, "127.0.0.1:0");
    node_know(&a, all, 2);
    node_know(&b, all, 2);
    raw_connect(&r, b.address);
    run_until(raw_eof, &r, "close of a silent connection");
    ck_assert_uint_eq(r.in_len, 0);
    raw_close(&r);
    ck_assert_uint_ge(refused(&b), 1);
    assert_b_serves_a();
    node_close(&a);
    node_close(&b);
    loop_finish();
}
END_TEST

/* ------------------------------------------------------------------------
 * Bounded queues
 * ------------------------------------------------------------------------ */

static void assert_within_bounds(struct node *n,
                                 raft_id id,
                                 const struct raft_uv_transport_config *cfg)
{
    struct raft_uv_transport_stats s;

    ck_assert_int_eq(raft_uv_transport_stats(&n->t, id, &s), 0);
    ck_assert_uint_le(s.queued_messages, cfg->max_queue_messages);
    ck_assert_uint_le(s.queued_bytes, cfg->max_queue_bytes);
}

START_TEST(send_queue_bound_holds_when_peer_is_down)
{
    struct raft_uv_transport_config cfg;
    struct raft_uv_transport_stats s;
    struct node *all[] = {&a, &b};
    struct raft_message m;
    uint8_t *big = calloc(1, 20000);
    unsigned i, accepted = 0, nobufs = 0;
    int rv;

    config_for(&cfg, 1);
    cfg.max_queue_messages = 8;
    cfg.max_queue_bytes = 64 * 1024;
    node_start_with(&a, &cfg, "127.0.0.1:0");
    node_start(&b, 2);
    node_know(&a, all, 2);
    node_close(&b); /* nobody listens at B's address any more */

    for (i = 0; i < 1000; i++) {
        rv = send_heartbeat(&a, 2, i);
        ck_assert(rv == 0 || rv == -ENOBUFS);
        accepted += rv == 0;
        nobufs += rv == -ENOBUFS;
        assert_within_bounds(&a, 2, &cfg);
    }
    ck_assert_uint_le(accepted, 8);
    ck_assert_uint_ge(nobufs, 992);
    /* Bytes bound: 20 kB messages, at most 3 fit in 64 KiB. */
    m = msg_of_type(RAFT_MSG_SNAPSHOT, 1, 2);
    m.snapshot.size = 20000;
    m.snapshot.data = (struct goulette_buf){big, 20000};
    for (i = 0; i < 20; i++) {
        run_for(20); /* dials fail, queues get purged */
        rv = raft_uv_transport_send(&a.t, 2, &m);
        ck_assert(rv == 0 || rv == -ENOBUFS);
        rv = raft_uv_transport_send(&a.t, 2, &m);
        rv = raft_uv_transport_send(&a.t, 2, &m);
        rv = raft_uv_transport_send(&a.t, 2, &m);
        ck_assert_int_eq(rv, -ENOBUFS);
        assert_within_bounds(&a, 2, &cfg);
    }
    ck_assert_int_eq(raft_uv_transport_stats(&a.t, 2, &s), 0);
    ck_assert_uint_ge(s.dropped, 992 + 20);
    ck_assert_uint_eq(s.sent, 0);
    ck_assert_int_ge(a.unreachable[2], 1);
    free(big);
    node_close(&a);
    loop_finish();
}
END_TEST

/* A peer that accepts the handshake and then never reads again (a stopped
 * process): the sender's memory stays bounded and its loop keeps running. */
#define STUCK_MAX 8

struct stuck_conn
{
    uv_tcp_t tcp;
    struct raft_uv__frame_decoder dec;
    bool acked;
};

struct stuck
{
    uv_tcp_t listener;
    struct stuck_conn conns[STUCK_MAX];
    unsigned n_conns;
    unsigned n_acked;
    char rbuf[4096];
    unsigned closed;
    char address[64];
};

static struct stuck stuck;

static void stuck_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    buf->base = stuck.rbuf;
    buf->len = sizeof stuck.rbuf;
}

static void stuck_write_done(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void stuck_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    static const uint8_t ack[RAFT_UV_FRAME_HEADER + RAFT_UV_ACK_SIZE] = {
        0, 0, 0, RAFT_UV_ACK_SIZE, RAFT_UV_FRAME_ACK, 0, 0, 0, 0};
    struct stuck_conn *sc = s->data;
    struct raft_uv__frame f;
    uv_write_t *req;
    uv_buf_t wb;
    long used;

    if (n <= 0) {
        uv_read_stop(s);
        return;
    }
    used = raft_uv__frame_decoder_feed(&sc->dec, buf->base, (size_t)n, &f);
    ck_assert_int_ge(used, 0);
    if (f.kind == RAFT_UV_FRAME_HANDSHAKE) {
        free(f.payload.base);
        req = malloc(sizeof *req);
        wb = uv_buf_init((char *)ack, sizeof ack);
        uv_write(req, s, &wb, 1, stuck_write_done);
        sc->acked = true;
        stuck.n_acked++;
        uv_read_stop(s); /* and never read again */
    }
}

static void stuck_on_connection(uv_stream_t *l, int status)
{
    struct stuck_conn *sc;
    int size = 4096;

    ck_assert_int_eq(status, 0);
    ck_assert_uint_lt(stuck.n_conns, STUCK_MAX);
    sc = &stuck.conns[stuck.n_conns++];
    uv_tcp_init(&loop, &sc->tcp);
    sc->tcp.data = sc;
    raft_uv__frame_decoder_init(&sc->dec, RAFT_UV_HANDSHAKE_MAX);
    ck_assert_int_eq(uv_accept(l, (uv_stream_t *)&sc->tcp), 0);
    /* A small receive buffer fills up sooner. */
    uv_recv_buffer_size((uv_handle_t *)&sc->tcp, &size);
    uv_read_start((uv_stream_t *)&sc->tcp, stuck_alloc, stuck_read);
}

static bool stuck_acked(void *arg)
{
    return stuck.n_acked >= *(unsigned *)arg;
}

static void stuck_start(void)
{
    struct sockaddr_in sa;
    struct sockaddr_storage bound;
    int len = sizeof bound;

    memset(&stuck, 0, sizeof stuck);
    uv_tcp_init(&loop, &stuck.listener);
    uv_ip4_addr("127.0.0.1", 0, &sa);
    ck_assert_int_eq(
        uv_tcp_bind(&stuck.listener, (const struct sockaddr *)&sa, 0), 0);
    ck_assert_int_eq(
        uv_listen((uv_stream_t *)&stuck.listener, 8, stuck_on_connection), 0);
    uv_tcp_getsockname(&stuck.listener, (struct sockaddr *)&bound, &len);
    snprintf(stuck.address, sizeof stuck.address, "127.0.0.1:%u",
             (unsigned)ntohs(((struct sockaddr_in *)&bound)->sin_port));
}

static void stuck_closed(uv_handle_t *h)
{
    (void)h;
    stuck.closed++;
}

static bool stuck_all_closed(void *arg)
{
    (void)arg;
    return stuck.closed == 1 + stuck.n_conns;
}

static void stuck_stop(void)
{
    unsigned i;

    uv_close((uv_handle_t *)&stuck.listener, stuck_closed);
    for (i = 0; i < stuck.n_conns; i++) {
        raft_uv__frame_decoder_fini(&stuck.conns[i].dec);
        uv_close((uv_handle_t *)&stuck.conns[i].tcp, stuck_closed);
    }
    run_until(stuck_all_closed, NULL, "stuck peer close");
}

static void know_stuck_as_2(struct node *n)
{
    struct raft_uv_peer peer;

    peer.id = 2;
    snprintf(peer.address, sizeof peer.address, "%s", stuck.address);
    ck_assert_int_eq(raft_uv_transport_set_peers(&n->t, &peer, 1), 0);
}

START_TEST(stalled_peer_never_grows_memory_or_stalls_the_loop)
{
    struct raft_uv_transport_config cfg;
    struct raft_uv_transport_stats s;
    struct raft_message m;
    size_t chunk = 256 * 1024;
    uint8_t *big = calloc(1, chunk);
    unsigned i, dropped_sends = 0, one = 1;
    int rv;

    stuck_start();
    config_for(&cfg, 1);
    cfg.max_queue_messages = 64;
    cfg.max_queue_bytes = 4u << 20;
    node_start_with(&a, &cfg, "127.0.0.1:0");
    know_stuck_as_2(&a);

    m = msg_of_type(RAFT_MSG_SNAPSHOT, 1, 2);
    m.snapshot.size = chunk;
    m.snapshot.data = (struct goulette_buf){big, chunk};
    ck_assert_int_eq(raft_uv_transport_send(&a.t, 2, &m), 0);
    run_until(stuck_acked, &one, "handshake with the stuck peer");
    /* 400 x 256 KiB = 100 MiB offered: far more than socket buffers and
     * the 4 MiB queue bound together. */
    for (i = 0; i < 400; i++) {
        rv = raft_uv_transport_send(&a.t, 2, &m);
        ck_assert(rv == 0 || rv == -ENOBUFS);
        dropped_sends += rv == -ENOBUFS;
        assert_within_bounds(&a, 2, &cfg);
        if (i % 20 == 0) {
            run_for(5); /* the loop keeps turning */
        }
    }
    ck_assert_uint_gt(dropped_sends, 0);
    ck_assert_int_eq(raft_uv_transport_stats(&a.t, 2, &s), 0);
    ck_assert_uint_ge(s.dropped, dropped_sends);
    ck_assert_uint_lt(s.sent, 400);
    ck_assert_uint_eq(s.connects, 1);
    free(big);
    node_close(&a);
    stuck_stop();
    loop_finish();
}
END_TEST

static bool sending_until_second_ack(void *arg)
{
    (void)arg;
    send_heartbeat(&a, 2, 1);
    run_for(10);
    return stuck.n_acked >= 2;
}

START_TEST(stalled_write_times_out_and_redials)
{
    struct raft_uv_transport_config cfg;
    struct raft_uv_transport_stats s;
    struct raft_message m;
    size_t chunk = 1u << 20;
    uint8_t *big = calloc(1, chunk);
    unsigned i, one = 1;

    stuck_start();
    config_for(&cfg, 1);
    cfg.write_timeout_ms = 300;
    node_start_with(&a, &cfg, "127.0.0.1:0");
    know_stuck_as_2(&a);
    m = msg_of_type(RAFT_MSG_SNAPSHOT, 1, 2);
    m.snapshot.size = chunk;
    m.snapshot.data = (struct goulette_buf){big, chunk};
    /* 16 MiB: more than the kernel buffers on both ends, so a write stays
     * in flight. */
    for (i = 0; i < 16; i++) {
        ck_assert_int_eq(raft_uv_transport_send(&a.t, 2, &m), 0);
    }
    run_until(stuck_acked, &one, "the first handshake");
    /* Keep offering traffic: after the timeout the transport redials. */
    run_until(sending_until_second_ack, NULL,
              "a second connection after the timeout");
    ck_assert_int_ge(a.unreachable[2], 1);
    ck_assert_int_eq(raft_uv_transport_stats(&a.t, 2, &s), 0);
    ck_assert_uint_ge(s.connects, 1);
    ck_assert_uint_ge(s.dropped, 1);
    free(big);
    node_close(&a);
    stuck_stop();
    loop_finish();
}
END_TEST

/* ------------------------------------------------------------------------
 * Membership and API contract
 * ------------------------------------------------------------------------ */

/* A sends a heartbeat to B on every call until B refused w->count
 * connections. */
static bool sending_until_refused(void *arg)
{
    struct wait_refused *w = arg;

    send_heartbeat(&a, 2, 3);
    run_for(10);
    return refused(w->n) >= w->count;
}

START_TEST(removed_member_is_forgotten_both_ways)
{
    struct node *all[] = {&a, &b};
    struct node *only_b[] = {&b};
    struct wait_refused w;

    pair_start();
    assert_b_serves_a();
    ck_assert_int_eq(send_heartbeat(&b, 1, 1), 0);
    wait_got(&a, 1);

    /* B forgets A: B refuses A's connection and cannot send to A. */
    node_know(&b, only_b, 1);
    ck_assert_int_eq(send_heartbeat(&b, 1, 2), GOULETTE_ENOTFOUND);
    ck_assert_int_eq(
        raft_uv_transport_stats(&b.t, 1, &(struct raft_uv_transport_stats){0}),
        GOULETTE_ENOTFOUND);
    /* A keeps sending: its connection was dropped by B, and every redial
     * is refused. */
    w = (struct wait_refused){&b, refused(&b) + 2};
    run_until(sending_until_refused, &w, "refusals of a removed member");
    ck_assert_int_ge(a.unreachable[2], 1);
    ck_assert_uint_eq(b.n_got_total, 1);

    /* Re-adding it lets traffic flow again. */
    node_know(&b, all, 2);
    {
        struct retry rr = {&a, &b, b.n_got_total + 1};
        run_until(delivered_with_retries, &rr, "delivery after re-add");
    }
    node_close(&a);
    node_close(&b);
    loop_finish();
}
END_TEST

START_TEST(moved_member_is_redialled_at_its_new_address)
{
    struct node *all[] = {&a, &b};
    struct raft_uv_peer peer;
    struct wait_unreachable w = {&a, 2};
    struct retry r;

    pair_start();
    /* A believes B is at a dead address (C's, once C is gone). */
    node_start(&c, 3);
    peer.id = 2;
    strcpy(peer.address, c.address);
    node_close(&c);
    ck_assert_int_eq(raft_uv_transport_set_peers(&a.t, &peer, 1), 0);
    ck_assert_int_eq(send_heartbeat(&a, 2, 1), 0);
    run_until(unreachable_reported, &w, "the dead address failing");
    ck_assert_uint_eq(b.n_got_total, 0);

    /* The configuration moves B to its real address. */
    node_know(&a, all, 2);
    r = (struct retry){&a, &b, 1};
    run_until(delivered_with_retries, &r, "delivery at the new address");
    node_close(&a);
    node_close(&b);
    loop_finish();
}
END_TEST

START_TEST(api_misuse_is_refused)
{
    struct raft_uv_transport_config cfg;
    struct raft_uv_transport t;
    struct raft_uv_peer peers[2];
    struct raft_message m;
    char small[4];

    config_for(&cfg, 0);
    ck_assert_int_eq(raft_uv_transport_init(&t, &loop, &cfg), -EINVAL);
    config_for(&cfg, 1);
    cfg.backoff_min_ms = 500;
    cfg.backoff_max_ms = 100;
    ck_assert_int_eq(raft_uv_transport_init(&t, &loop, &cfg), -EINVAL);

    node_start(&a, 1);
    ck_assert_int_eq(raft_uv_transport_start(&a.t, "127.0.0.1:0", on_recv),
                     -EINVAL);
    ck_assert_int_eq(raft_uv_transport_address(&a.t, small, sizeof small),
                     -ENOBUFS);

    memset(peers, 0, sizeof peers);
    peers[0].id = 2;
    strcpy(peers[0].address, "127.0.0.1:7002");
    peers[1].id = 2;
    strcpy(peers[1].address, "127.0.0.1:7003");
    ck_assert_int_eq(raft_uv_transport_set_peers(&a.t, peers, 2), -EINVAL);
    peers[1].id = 0;
    ck_assert_int_eq(raft_uv_transport_set_peers(&a.t, peers, 2), -EINVAL);
    peers[1].id = 3;
    strcpy(peers[1].address, "no-port");
    ck_assert_int_eq(raft_uv_transport_set_peers(&a.t, peers, 2), -EINVAL);
    strcpy(peers[1].address, "127.0.0.1:99999");
    ck_assert_int_eq(raft_uv_transport_set_peers(&a.t, peers, 2), -EINVAL);
    strcpy(peers[1].address, "example.com:7003");
    ck_assert_int_eq(raft_uv_transport_set_peers(&a.t, peers, 2), -EINVAL);
    strcpy(peers[1].address, "127.0.0.1: 7003");
    ck_assert_int_eq(raft_uv_transport_set_peers(&a.t, peers, 2), -EINVAL);
    strcpy(peers[1].address, "127.0.0.1:-7003");
    ck_assert_int_eq(raft_uv_transport_set_peers(&a.t, peers, 2), -EINVAL);
    strcpy(peers[1].address, "127.0.0.1:0");
    ck_assert_int_eq(raft_uv_transport_set_peers(&a.t, peers, 2), -EINVAL);
    strcpy(peers[1].address, "[::1:7003");
    ck_assert_int_eq(raft_uv_transport_set_peers(&a.t, peers, 2), -EINVAL);
    /* The failed calls left the (empty) set unchanged. */
    m = msg_of_type(RAFT_MSG_VOTE, 1, 2);
    ck_assert_int_eq(raft_uv_transport_send(&a.t, 2, &m), GOULETTE_ENOTFOUND);

    strcpy(peers[1].address, "[::1]:7003");
    ck_assert_int_eq(raft_uv_transport_set_peers(&a.t, peers, 2), 0);
    m = msg_of_type(RAFT_MSG_VOTE, 1, 1);
    ck_assert_int_eq(raft_uv_transport_send(&a.t, 1, &m), -EINVAL);
    m = msg_of_type(RAFT_MSG_VOTE, 1, 3);
    ck_assert_int_eq(raft_uv_transport_send(&a.t, 2, &m), -EINVAL);
    m = msg_of_type(RAFT_MSG_VOTE, 4, 2);
    ck_assert_int_eq(raft_uv_transport_send(&a.t, 2, &m), -EINVAL);
    m = msg_of_type(RAFT_MSG_VOTE, 1, 2);
    m.type = (enum raft_msg_type)99;
    ck_assert_int_eq(raft_uv_transport_send(&a.t, 2, &m), -EINVAL);
    node_close(&a);
    loop_finish();
}
END_TEST

START_TEST(immediate_dial_failure_is_reported_from_the_loop)
{
    struct raft_uv_peer peer = {2, "255.255.255.255:7"};
    struct wait_unreachable w = {&a, 2};
    struct raft_uv_transport_stats s;

    /* connect(2) to the broadcast address fails at once, inside
     * raft_uv_transport_send; the report must still come from the loop
     * (on_unreachable asserts it). */
    node_start(&a, 1);
    ck_assert_int_eq(raft_uv_transport_set_peers(&a.t, &peer, 1), 0);
    ck_assert_int_eq(send_heartbeat(&a, 2, 1), 0);
    ck_assert_uint_eq(a.unreachable[2], 0);
    run_until(unreachable_reported, &w, "unreachable report");
    ck_assert_int_eq(raft_uv_transport_stats(&a.t, 2, &s), 0);
    ck_assert_uint_eq(s.dropped, 1);
    node_close(&a);
    loop_finish();
}
END_TEST

START_TEST(failed_allocations_return_enomem_and_leave_nothing_behind)
{
    struct raft_uv_transport_config cfg;
    struct raft_uv_peer peers[3];
    struct raft_uv_transport_stats st;
    struct raft_message m;
    long before, after;
    unsigned n;
    int rv;

    /* init */
    config_for(&cfg, 1);
    memset(&a, 0, sizeof a);
    for (n = 1;; n++) {
        before = failmalloc_outstanding();
        failmalloc_arm(n);
        rv = raft_uv_transport_init(&a.t, &loop, &cfg);
        failmalloc_arm(0);
        after = failmalloc_outstanding();
        if (rv == 0) {
            break;
        }
        ck_assert_int_eq(rv, -ENOMEM);
        ck_assert_int_eq(after, before);
    }
    a.t.data = &a;
    a.open = true;
    node_close(&a);

    /* set_peers: on failure the previous set stays */
    pair_start();
    memset(peers, 0, sizeof peers);
    peers[0].id = 2;
    strcpy(peers[0].address, b.address);
    peers[1].id = 3;
    strcpy(peers[1].address, "127.0.0.1:9");
    peers[2].id = 4;
    strcpy(peers[2].address, "127.0.0.1:10");
    for (n = 1;; n++) {
        before = failmalloc_outstanding();
        failmalloc_arm(n);
        rv = raft_uv_transport_set_peers(&a.t, peers, 3);
        failmalloc_arm(0);
        after = failmalloc_outstanding();
        if (rv == 0) {
            break;
        }
        ck_assert_int_eq(rv, -ENOMEM);
        ck_assert_int_eq(after, before);
        ck_assert_int_eq(raft_uv_transport_stats(&a.t, 2, &st), 0);
        ck_assert_int_eq(raft_uv_transport_stats(&a.t, 3, &st),
                         GOULETTE_ENOTFOUND);
    }
    ck_assert_uint_ge(n, 2);
    ck_assert_int_eq(raft_uv_transport_stats(&a.t, 4, &st), 0);

    /* send on an established connection */
    assert_b_serves_a();
    m = msg_of_type(RAFT_MSG_APPEND, 1, 2);
    for (n = 1;; n++) {
        before = failmalloc_outstanding();
        failmalloc_arm(n);
        rv = raft_uv_transport_send(&a.t, 2, &m);
        failmalloc_arm(0);
        after = failmalloc_outstanding();
        if (rv == 0 && !failmalloc_fired) {
            break;
        }
        if (rv == 0) {
            /* Queued, but the write batch could not be allocated: the
             * connection resets (as on any write error) and redials. */
            continue;
        }
        ck_assert_int_eq(rv, -ENOMEM);
        ck_assert_int_eq(after, before);
    }
    ck_assert_uint_ge(n, 2);
    wait_got(&b, 2);
    ck_assert_int_eq(b.got[1]->type, RAFT_MSG_APPEND);

    /* send_app likewise */
    for (n = 1;; n++) {
        before = failmalloc_outstanding();
        failmalloc_arm(n);
        rv = raft_uv_transport_send_app(&a.t, 2, "renewed", 7);
        failmalloc_arm(0);
        after = failmalloc_outstanding();
        if (rv == 0 && !failmalloc_fired) {
            break;
        }
        if (rv == 0) {
            continue;
        }
        ck_assert_int_eq(rv, -ENOMEM);
        ck_assert_int_eq(after, before);
    }
    ck_assert_uint_ge(n, 2);
    wait_apps(&b, 1);
    ck_assert_str_eq(b.app[b.n_app - 1], "renewed");
    node_close(&a);
    node_close(&b);
    loop_finish();
}
END_TEST

START_TEST(unstarted_transport_closes_cleanly)
{
    struct raft_uv_transport_config cfg;

    config_for(&cfg, 1);
    memset(&a, 0, sizeof a);
    ck_assert_int_eq(raft_uv_transport_init(&a.t, &loop, &cfg), 0);
    a.t.data = &a;
    a.open = true;
    node_close(&a);
    loop_finish();
}
END_TEST

START_TEST(three_members_talk_to_each_other)
{
    struct node *all[] = {&a, &b, &c};
    struct node *n;
    unsigned i, j;

    node_start(&a, 1);
    node_start(&b, 2);
    node_start(&c, 3);
    for (i = 0; i < 3; i++) {
        node_know(all[i], all, 3);
    }
    for (i = 0; i < 3; i++) {
        for (j = 0; j < 3; j++) {
            if (i != j) {
                ck_assert_int_eq(send_heartbeat(all[i], all[j]->id, i), 0);
            }
        }
    }
    for (i = 0; i < 3; i++) {
        wait_got(all[i], 2);
    }
    for (i = 0; i < 3; i++) {
        n = all[i];
        ck_assert_uint_eq(n->n_got, 2);
        ck_assert_uint_ne(n->got[0]->from, n->got[1]->from);
        ck_assert_uint_eq(n->got[0]->to, n->id);
    }
    for (i = 0; i < 3; i++) {
        node_close(all[i]);
    }
    loop_finish();
}
END_TEST

/* ------------------------------------------------------------------------
 * Application frames (raft_uv_transport_send_app, app_cb)
 * ------------------------------------------------------------------------ */

static int send_app(struct node *from, raft_id to, const char *text)
{
    int rv;

    in_send = true;
    rv = raft_uv_transport_send_app(&from->t, to, text, strlen(text));
    in_send = false;
    return rv;
}

static bool got_apps(void *arg)
{
    struct wait_got *w = arg;
    return w->n->n_app >= w->count;
}

static void wait_apps(struct node *n, unsigned count)
{
    struct wait_got w = {n, count};
    run_until(got_apps, &w, "application frames");
}

START_TEST(app_frames_arrive_in_order_with_messages_and_their_sender)
{
    struct node *all[] = {&a, &b, &c};
    struct raft_uv_transport_stats s;
    char text[32];
    unsigned i, k;

    node_start(&a, 1);
    node_start(&b, 2);
    node_start(&c, 3);
    for (i = 0; i < 3; i++) {
        node_know(all[i], all, 3);
    }
    /* Interleaved on one connection: message i, then frame "app i". */
    for (i = 0; i < 20; i++) {
        ck_assert_int_eq(send_heartbeat(&a, 2, i), 0);
        snprintf(text, sizeof text, "app %u", i);
        ck_assert_int_eq(send_app(&a, 2, text), 0);
    }
    wait_got(&b, 20);
    wait_apps(&b, 20);
    ck_assert_uint_eq(b.n_seq, 40);
    for (i = 0; i < 20; i++) {
        ck_assert_uint_eq(b.seq[2 * i], i);
        ck_assert_uint_eq(b.seq[2 * i + 1], APP_SEQ + i);
        snprintf(text, sizeof text, "app %u", i);
        ck_assert_str_eq(b.app[i], text);
        ck_assert_uint_eq(b.app_len[i], strlen(text));
        ck_assert_uint_eq(b.app_from[i], 1);
    }
    /* Another sender is named as such. */
    ck_assert_int_eq(send_app(&c, 2, "from three"), 0);
    wait_apps(&b, 21);
    ck_assert_str_eq(b.app[20], "from three");
    ck_assert_uint_eq(b.app_from[20], 3);
    /* Counters: sent includes application frames, app_sent counts them. */
    k = 0;
    ck_assert_int_eq(raft_uv_transport_stats(&b.t, 1, &s), 0);
    ck_assert_uint_eq(s.received, 20);
    ck_assert_uint_eq(s.app_received, 20);
    ck_assert_int_eq(raft_uv_transport_stats(&b.t, 0, &s), 0);
    ck_assert_uint_eq(s.app_received, 21);
    ck_assert_int_eq(raft_uv_transport_stats(&a.t, 2, &s), 0);
    while (s.sent < 40 && k++ < 1000) {
        run_for(10); /* the write callback may still be pending */
        ck_assert_int_eq(raft_uv_transport_stats(&a.t, 2, &s), 0);
    }
    ck_assert_uint_eq(s.sent, 40);
    ck_assert_uint_eq(s.app_sent, 20);
    for (i = 0; i < 3; i++) {
        node_close(all[i]);
    }
    loop_finish();
}
END_TEST

START_TEST(app_frame_errors_match_send)
{
    struct raft_uv_transport_config cfg;
    struct raft_uv_transport_stats s;
    struct node *all[] = {&a, &b};
    uint8_t *big;
    unsigned i, accepted = 0, nobufs = 0;
    int rv;

    config_for(&cfg, 1);
    cfg.max_queue_messages = 8;
    cfg.max_frame_bytes = 4096;
    node_start_with(&a, &cfg, "127.0.0.1:0");
    node_start(&b, 2);
    node_know(&a, all, 2);
    node_know(&b, all, 2);
    ck_assert_int_eq(raft_uv_transport_send_app(&a.t, 1, "x", 1), -EINVAL);
    ck_assert_int_eq(raft_uv_transport_send_app(&a.t, 2, "x", 0), -EINVAL);
    ck_assert_int_eq(raft_uv_transport_send_app(&a.t, 9, "x", 1),
                     GOULETTE_ENOTFOUND);
    big = calloc(1, 4097);
    ck_assert_int_eq(raft_uv_transport_send_app(&a.t, 2, big, 4097), -EMSGSIZE);
    ck_assert_int_eq(raft_uv_transport_send_app(&a.t, 2, big, 4096), 0);
    free(big);
    wait_apps(&b, 1);
    ck_assert_uint_eq(b.app_len[0], 4096);

    /* Queue bound, shared with messages, with the peer gone. */
    node_close(&b);
    for (i = 0; i < 100; i++) {
        rv = i % 2 == 0 ? send_app(&a, 2, "renewed") : send_heartbeat(&a, 2, i);
        ck_assert(rv == 0 || rv == -ENOBUFS);
        accepted += rv == 0;
        nobufs += rv == -ENOBUFS;
        ck_assert_int_eq(raft_uv_transport_stats(&a.t, 2, &s), 0);
        ck_assert_uint_le(s.queued_messages, 8);
    }
    ck_assert_uint_le(accepted, 8);
    ck_assert_uint_ge(nobufs, 92);
    ck_assert_uint_ge(s.dropped, nobufs);
    raft_uv_transport_close(&a.t, on_closed);
    ck_assert_int_eq(raft_uv_transport_send_app(&a.t, 2, "x", 1),
                     GOULETTE_ESHUTDOWN);
    run_until(node_closed, &a, "transport close");
    loop_finish();
}
END_TEST

START_TEST(app_frames_without_app_cb_are_dropped_and_counted)
{
    struct raft_uv_transport_config cfg;
    struct raft_uv_transport_stats s;
    struct node *all[] = {&a, &b};

    node_start(&a, 1);
    config_for(&cfg, 2);
    cfg.app_cb = NULL;
    node_start_with(&b, &cfg, "127.0.0.1:0");
    node_know(&a, all, 2);
    node_know(&b, all, 2);
    ck_assert_int_eq(send_app(&a, 2, "nobody listens"), 0);
    ck_assert_int_eq(send_heartbeat(&a, 2, 5), 0);
    wait_got(&b, 1); /* after the frame, on the same connection */
    ck_assert_int_eq(raft_uv_transport_stats(&b.t, 0, &s), 0);
    ck_assert_uint_eq(s.app_ignored, 1);
    ck_assert_uint_eq(s.app_received, 0);
    ck_assert_uint_eq(s.refused, 0);
    ck_assert_uint_eq(b.n_app, 0);
    node_close(&a);
    node_close(&b);
    loop_finish();
}
END_TEST

START_TEST(app_frame_rules_on_the_wire)
{
    static const uint8_t junk[] = {0xde, 0xad, 0xbe, 0xef};
    struct raw r;

    pair_start();
    /* Opaque: any bytes reach app_cb, from the handshake's sender. */
    raw_connect(&r, b.address);
    raw_handshake(&r, CLUSTER, 1, 2);
    ck_assert_int_eq(raw_ack_status(&r), 0);
    raw_write_frame(&r, RAFT_UV_FRAME_APP, junk, sizeof junk);
    wait_apps(&b, 1);
    ck_assert_uint_eq(b.app_len[0], sizeof junk);
    ck_assert_uint_eq(b.app_from[0], 1);
    ck_assert_int_eq(memcmp(b.app[0], junk, sizeof junk), 0);
    /* An empty application frame is a violation. */
    raw_write_frame(&r, RAFT_UV_FRAME_APP, NULL, 0);
    run_until(raw_eof, &r, "close on an empty application frame");
    raw_close(&r);

    /* Not before the handshake. */
    raw_connect(&r, b.address);
    raw_write_frame(&r, RAFT_UV_FRAME_APP, junk, sizeof junk);
    run_until(raw_eof, &r, "close on an application frame first");
    raw_close(&r);

    /* Kind 5 is still unknown. */
    raw_connect(&r, b.address);
    raw_handshake(&r, CLUSTER, 1, 2);
    ck_assert_int_eq(raw_ack_status(&r), 0);
    raw_write_frame(&r, RAFT_UV_FRAME_APP + 1, junk, sizeof junk);
    run_until(raw_eof, &r, "close on frame kind 5");
    raw_close(&r);
    ck_assert_uint_eq(b.n_app, 1);
    ck_assert_uint_ge(refused(&b), 3);
    assert_b_serves_a();
    node_close(&a);
    node_close(&b);
    loop_finish();
}
END_TEST

static Suite *transport_suite(void)
{
    Suite *s = suite_create("raft_uv_transport");
    TCase *tc;

    tc = tcase_create("delivery");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, every_message_type_is_delivered_intact);
    tcase_add_test(tc, many_messages_arrive_in_order);
    tcase_add_test(tc, five_mib_snapshot_chunk_is_delivered);
    tcase_add_test(tc, message_above_frame_limit_is_refused_on_send);
    tcase_add_test(tc, close_from_recv_callback_is_safe);
    tcase_add_test(tc, three_members_talk_to_each_other);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("app");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc,
                   app_frames_arrive_in_order_with_messages_and_their_sender);
    tcase_add_test(tc, app_frame_errors_match_send);
    tcase_add_test(tc, app_frames_without_app_cb_are_dropped_and_counted);
    tcase_add_test(tc, app_frame_rules_on_the_wire);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("reconnect");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, restarted_peer_is_reconnected_after_backoff);
    tcase_add_test(tc, backoff_grows_while_peer_is_down);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("refusal");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, peer_from_another_cluster_is_refused);
    tcase_add_test(tc, unknown_member_is_refused);
    tcase_add_test(tc, wrong_receiver_id_is_refused);
    tcase_add_test(tc, other_protocol_version_is_refused_with_reason);
    tcase_add_test(tc, garbage_bytes_are_refused);
    tcase_add_test(tc, oversized_frame_is_refused);
    tcase_add_test(tc, malformed_or_spoofed_message_is_refused);
    tcase_add_test(tc, silent_connection_is_closed_after_handshake_timeout);
    tcase_add_test(tc, refusal_logs_are_rate_limited);
    tcase_add_test(tc, connections_above_the_limit_are_closed);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("bounds");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, send_queue_bound_holds_when_peer_is_down);
    tcase_add_test(tc, stalled_peer_never_grows_memory_or_stalls_the_loop);
    tcase_add_test(tc, stalled_write_times_out_and_redials);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("membership");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, removed_member_is_forgotten_both_ways);
    tcase_add_test(tc, moved_member_is_redialled_at_its_new_address);
    tcase_add_test(tc, api_misuse_is_refused);
    tcase_add_test(tc, unstarted_transport_closes_cleanly);
    tcase_add_test(tc,
                   failed_allocations_return_enomem_and_leave_nothing_behind);
    tcase_add_test(tc, immediate_dial_failure_is_reported_from_the_loop);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(transport_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
