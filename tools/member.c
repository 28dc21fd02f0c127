/* One goulettefs member: opens the database, the state machine and the Raft
 * node, mounts, and routes proposals and applied entries between them.  See
 * member.h. */
#include "member.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <goulette/err.h>

#include "member_rpc.h"
#include "uv_log.h"

int64_t member_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

raft_id member_id_of(const char *name)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a 64 */
    const unsigned char *p;
    for (p = (const unsigned char *)name; *p != '\0'; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h != 0 ? h : 1;
}

const char *member_name_of(const struct member *m, raft_id id)
{
    unsigned i;
    for (i = 0; i < m->opts->n_members; i++) {
        if (member_id_of(m->opts->members[i].name) == id) {
            return m->opts->members[i].name;
        }
    }
    return NULL;
}

/* ---- proposals and apply ------------------------------------------------ */

static void on_proposed(void *arg, int rv, raft_index index)
{
    struct member_proposal *p = arg;
    (void)index;
    p->done(p, rv);
}

int member_propose(struct member *m,
                   const struct store_cmd *cmd,
                   struct member_proposal *p)
{
    struct goulette_buf data = {NULL, 0};
    int rv;

    if (m->stopping || m->node == NULL) {
        return GOULETTE_ESHUTDOWN;
    }
    rv = store_cmd_encode(cmd, &data);
    if (rv != 0) {
        return rv;
    }
    p->member = m;
    rv = raft_uv_node_propose(m->node, &data, on_proposed, p);
    free(data.base);
    return rv;
}

/* A broker registered or renewed through a committed command (a mount
 * write, or a gRPC registration) is alive: the leader counts it as a
 * heartbeat.  An unregistered one is forgotten.  A client's unreachable
 * report goes to the failure detector as a hint. */
static void note_broker_activity(struct member *m,
                                 const void *bytes,
                                 size_t len,
                                 int result)
{
    struct store_cmd cmd;
    if (!m->liveness_on || m->liveness.lead_since == 0 ||
        store_cmd_decode(bytes, len, &cmd) != 0) {
        return;
    }
    if (cmd.type == STORE_CMD_HANDLE_UNREACHABLE && cmd.hint) {
        /* A client's report, taken or refused: corroborated, it sets the
         * silent brokers down. */
        member_liveness_reported(m, cmd.names, cmd.n_names);
    } else if (result != 0) {
        /* rejected: nothing happened */
    } else if (cmd.type == STORE_CMD_REGISTER_BROKER ||
               cmd.type == STORE_CMD_KEEPALIVE_BROKER) {
        member_liveness_heartbeat(m, cmd.broker_id);
    } else if (cmd.type == STORE_CMD_UNREGISTER_BROKER) {
        store_liveness_forget(&m->liveness, cmd.broker_id);
    }
    store_cmd_fini(&cmd);
}

static void mark_joined(struct member *m);

static int on_apply(void *data,
                    const struct raft_entry *e,
                    void *origin,
                    int *fatal)
{
    struct member *m = data;
    struct member_proposal *p = origin;
    struct store_sm_result res;
    const void *bytes = NULL;
    size_t len = 0;
    int result;
    int rv;

    if (e->type == RAFT_ENTRY_NORMAL) {
        bytes = e->data.base;
        len = e->data.len;
    }
    rv = store_sm_apply(m->sm, e->index, e->term, bytes, len, &res);
    if (rv != 0) {
        *fatal = rv;
        return 0;
    }
    mark_joined(m);
    if (!res.already_applied && res.changes.n > 0 && m->mounted) {
        member_mount_applied(m, &res.changes, p != NULL ? p->mutation : NULL);
    }
    if (!res.already_applied && res.changes.n > 0) {
        member_roles_applied(m, &res.changes);
    }
    result = res.rv;
    if (!res.already_applied && bytes != NULL) {
        note_broker_activity(m, bytes, len, result);
    }
    if (result != 0) {
        goulette_logf(m->log, GOULETTE_LOG_INFO, "store",
                      "entry %llu rejected: %s", (unsigned long long)e->index,
                      goulette_strerror(result));
    }
    store_sm_result_fini(&res);
    return result;
}

static void update_peers(struct member *m,
                         const struct raft_configuration *conf);

static void on_state_changed(void *data, struct raft_uv_node *node)
{
    struct member *m = data;
    struct raft_uv_node_status st;
    const char *leader;

    raft_uv_node_status(node, &st);
    update_peers(m, st.conf);
    member_liveness_leadership(m, st.state == RAFT_LEADER);
    member_roles_leadership(m, st.state == RAFT_LEADER);
    leader = member_name_of(m, st.leader);
    goulette_logf(m->log, GOULETTE_LOG_INFO, "raft",
                  "%s in term %llu, leader %s", raft_state_name(st.state),
                  (unsigned long long)st.term,
                  st.leader == 0   ? "unknown"
                  : leader != NULL ? leader
                                   : "(unnamed member)");
}

/* ---- start and stop ----------------------------------------------------- */

static int bootstrap_configuration(struct member *m)
{
    unsigned i;
    int rv;

    raft_configuration_init(&m->bootstrap);
    for (i = 0; i < m->opts->n_members; i++) {
        const struct options_member *om = &m->opts->members[i];
        char address[RAFT_ADDRESS_MAX];
        if (strchr(om->peer.host, ':') != NULL) {
            snprintf(address, sizeof address, "[%s]:%u", om->peer.host,
                     (unsigned)om->peer.port);
        } else {
            snprintf(address, sizeof address, "%s:%u", om->peer.host,
                     (unsigned)om->peer.port);
        }
        rv = raft_configuration_add(&m->bootstrap, member_id_of(om->name),
                                    address, RAFT_VOTER);
        if (rv != 0) {
            goulette_logf(m->log, GOULETTE_LOG_ERROR, "main",
                          "member \"%s\" cannot be added: %s", om->name,
                          rv == -EEXIST ? "its name's id collides with "
                                          "another member's"
                                        : goulette_strerror(rv));
            return rv;
        }
    }
    return 0;
}

static int open_store(struct member *m)
{
    struct store_sm_config sc;
    char path[4096];
    int rv;

    if ((size_t)snprintf(path, sizeof path, "%s/db", m->opts->data_dir) >=
        sizeof path) {
        return -ENAMETOOLONG;
    }
    rv = store_ldb_open(path, m->log, &m->db);
    if (rv != 0) {
        goulette_logf(m->log, GOULETTE_LOG_ERROR, "store",
                      "cannot open the database in %s: %s", path,
                      goulette_strerror(rv));
        return rv;
    }
    memset(&sc, 0, sizeof sc);
    sc.db = m->db;
    sc.log = m->log;
    rv = store_sm_open(&sc, &m->sm);
    if (rv != 0) {
        goulette_logf(m->log, GOULETTE_LOG_ERROR, "store",
                      "cannot load the state machine from %s: %s", path,
                      goulette_strerror(rv));
        return rv;
    }
    return 0;
}

/* The cluster id of a new cluster: a hash of its founding members' names
 * and peer addresses, in name order, so that every founder computes the
 * same id from the same --initial-cluster. */
static uint64_t cluster_id_of(const struct options *o)
{
    uint64_t h = 14695981039346656037ULL;
    bool used[OPTIONS_MEMBERS_MAX] = {false};
    unsigned k;

    for (k = 0; k < o->n_members; k++) {
        const struct options_member *next = NULL;
        unsigned i, pick = 0;
        char item[OPTIONS_NAME_MAX + OPTIONS_HOST_MAX + 16];
        const unsigned char *p;
        for (i = 0; i < o->n_members; i++) {
            if (!used[i] &&
                (next == NULL || strcmp(o->members[i].name, next->name) < 0)) {
                next = &o->members[i];
                pick = i;
            }
        }
        used[pick] = true;
        snprintf(item, sizeof item, "%s=%s:%u,", next->name, next->peer.host,
                 (unsigned)next->peer.port);
        for (p = (const unsigned char *)item; *p != '\0'; p++) {
            h ^= *p;
            h *= 1099511628211ULL;
        }
    }
    return h != 0 ? h : 1;
}

/* DATA_DIR/member records that this member was initialized, as
 * "NAME ID CLUSTER_ID".  LevelDB drops a damaged tail of its write-ahead log
 * as if it were a torn write; if that ever empties a database, this marker
 * is what tells a member that lost its state from a new one, and the member
 * refuses to start instead of bootstrapping an empty cluster.  It also
 * keeps the cluster id stable whatever --initial-cluster says later. */
static int read_marker(struct member *m, bool *initialized)
{
    char path[4096];
    char name[OPTIONS_NAME_MAX + 1];
    unsigned long long id, cluster;
    FILE *f;
    int empty;
    int n;

    snprintf(path, sizeof path, "%s/member", m->opts->data_dir);
    m->cluster_id = cluster_id_of(m->opts);
    f = fopen(path, "r");
    *initialized = f != NULL;
    if (f != NULL) {
        n = fscanf(f, "%63s %llx %llx", name, &id, &cluster);
        fclose(f);
        if (n != 3 || id != m->id) {
            goulette_logf(m->log, GOULETTE_LOG_ERROR, "main",
                          "%s is damaged or belongs to another member "
                          "(this one is \"%s\")",
                          path, m->opts->name);
            return GOULETTE_ECORRUPT;
        }
        m->cluster_id = cluster;
    }
    empty = raft_uv_log_empty(m->db);
    if (empty < 0) {
        return empty;
    }
    if (*initialized && empty == 1) {
        goulette_logf(m->log, GOULETTE_LOG_ERROR, "raft",
                      "the database in %s/db has lost its Raft state although "
                      "this member was initialized (%s exists): refusing to "
                      "start; restore the data directory from a backup, or "
                      "remove it and add the member again",
                      m->opts->data_dir, path);
        return GOULETTE_ECORRUPT;
    }
    return 0;
}

static int write_marker(struct member *m)
{
    char path[4096];
    char tmp[4096];
    FILE *f;
    int rv = 0;

    snprintf(path, sizeof path, "%s/member", m->opts->data_dir);
    snprintf(tmp, sizeof tmp, "%s/member.tmp", m->opts->data_dir);
    f = fopen(tmp, "w");
    if (f == NULL) {
        return -errno;
    }
    fprintf(f, "%s %016llx %016llx\n", m->opts->name, (unsigned long long)m->id,
            (unsigned long long)m->cluster_id);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        rv = -errno;
    }
    if (fclose(f) != 0 && rv == 0) {
        rv = -errno;
    }
    if (rv == 0 && rename(tmp, path) != 0) {
        rv = -errno;
    }
    return rv;
}

/* ---- peers ----------------------------------------------------------------
 */

static void on_send(void *data, const struct raft_message *msg)
{
    struct member *m = data;
    if (m->transport_up) {
        raft_uv_transport_send(&m->transport, msg->to, msg);
    }
}

static void on_receive(struct raft_uv_transport *t, struct raft_message *msg)
{
    struct member *m = t->data;
    if (m->node != NULL && !m->stopping) {
        raft_uv_node_receive(m->node, msg);
    }
    raft_uv_message_free(msg);
}

static void on_unreachable(struct raft_uv_transport *t, raft_id id)
{
    struct member *m = t->data;
    if (m->node != NULL && !m->stopping) {
        raft_uv_node_unreachable(m->node, id);
    }
}

/* Tell the transport who the other members are. */
static void update_peers(struct member *m,
                         const struct raft_configuration *conf)
{
    struct raft_uv_peer *peers;
    unsigned i, n = 0;
    int rv;

    /* An empty configuration is a joiner's before the log reaches it: keep
     * the members it was told about (member_rpc_join). */
    if (!m->transport_up || conf == NULL || conf->n == 0) {
        return;
    }
    peers = calloc(conf->n > 0 ? conf->n : 1, sizeof *peers);
    if (peers == NULL) {
        goulette_logf(m->log, GOULETTE_LOG_ERROR, "raft",
                      "out of memory updating the peer list");
        return;
    }
    for (i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == m->id) {
            continue;
        }
        peers[n].id = conf->servers[i].id;
        memcpy(peers[n].address, conf->servers[i].address,
               sizeof peers[n].address);
        n++;
    }
    rv = raft_uv_transport_set_peers(&m->transport, peers, n);
    if (rv != 0) {
        goulette_logf(m->log, GOULETTE_LOG_ERROR, "raft",
                      "cannot set the peer list: %s", goulette_strerror(rv));
    }
    free(peers);
}

static int start_transport(struct member *m)
{
    struct raft_uv_transport_config c;
    char address[OPTIONS_HOST_MAX + 16];
    int rv;

    raft_uv_transport_config_defaults(&c);
    c.cluster_id = m->cluster_id;
    c.id = m->id;
    c.seed = m->id ^ (uint64_t)uv_hrtime();
    c.log = m->log;
    c.unreachable_cb = on_unreachable;
    c.app_cb = member_notice_on_app;
    m->transport.data = m;
    rv = raft_uv_transport_init(&m->transport, m->loop, &c);
    if (rv != 0) {
        return rv;
    }
    if (strchr(m->opts->peer_listen.host, ':') != NULL) {
        snprintf(address, sizeof address, "[%s]:%u", m->opts->peer_listen.host,
                 (unsigned)m->opts->peer_listen.port);
    } else {
        snprintf(address, sizeof address, "%s:%u", m->opts->peer_listen.host,
                 (unsigned)m->opts->peer_listen.port);
    }
    m->transport_up = true;
    rv = raft_uv_transport_start(&m->transport, address, on_receive);
    if (rv != 0) {
        goulette_logf(m->log, GOULETTE_LOG_ERROR, "raft",
                      "cannot listen for peers on %s: %s", address,
                      goulette_strerror(rv));
        return rv;
    }
    {
        struct raft_uv_node_status st;
        raft_uv_node_status(m->node, &st);
        update_peers(m, st.conf);
    }
    return 0;
}

/* ---- snapshots ----------------------------------------------------------- */

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int on_snapshot_export(void *data, int fd, raft_index *index)
{
    struct member *m = data;
    struct store_snap_export *e = NULL;
    struct goulette_buf chunk;
    int rv;

    rv = store_snap_export_begin(m->sm, 1 << 20, &e);
    if (rv != 0) {
        return rv;
    }
    *index = store_snap_export_index(e);
    while ((rv = store_snap_export_next(e, &chunk)) == 1) {
        rv = write_all(fd, chunk.base, chunk.len);
        if (rv != 0) {
            break;
        }
    }
    store_snap_export_end(e);
    return rv;
}

/* Replace the state machine with the snapshot in @fd; the mount learns
 * what changed, so watchers see a snapshot's changes like any others. */
static int on_snapshot_install(void *data,
                               int fd,
                               const struct raft_snapshot_meta *meta)
{
    struct member *m = data;
    struct store_snap_install *in = NULL;
    struct store_changes changes = {NULL, 0, 0};
    char buf[65536];
    ssize_t n;
    int rv;

    rv = store_snap_install_begin(m->sm, &in);
    if (rv != 0) {
        return rv;
    }
    while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            rv = -errno;
            store_snap_install_abort(in);
            return rv;
        }
        rv = store_snap_install_feed(in, buf, (size_t)n);
        if (rv != 0) {
            store_snap_install_abort(in);
            return rv;
        }
    }
    rv = store_snap_install_commit(in, &changes);
    if (rv != 0) {
        return rv;
    }
    if (store_sm_applied_index(m->sm) != meta->index) {
        goulette_logf(m->log, GOULETTE_LOG_ERROR, "store",
                      "snapshot %llu holds state up to %llu",
                      (unsigned long long)meta->index,
                      (unsigned long long)store_sm_applied_index(m->sm));
        store_changes_fini(&changes);
        return GOULETTE_ECORRUPT;
    }
    if (changes.n > 0 && m->mounted) {
        member_mount_applied(m, &changes, NULL);
    }
    if (changes.n > 0) {
        member_roles_applied(m, &changes);
    }
    store_changes_fini(&changes);
    return 0;
}

static int start_node(struct member *m)
{
    bool initialized;
    struct raft_uv_node_config c;
    int rv;

    rv = read_marker(m, &initialized);
    if (rv != 0) {
        return rv;
    }
    snprintf(m->snapshot_dir, sizeof m->snapshot_dir, "%s/snapshots",
             m->opts->data_dir);
    memset(&c, 0, sizeof c);
    c.loop = m->loop;
    c.db = m->db;
    c.log = m->log;
    c.id = m->id;
    c.seed = m->id ^ (uint64_t)uv_hrtime();
    c.applied = store_sm_applied_index(m->sm);
    c.bootstrap = m->opts->has_join ? NULL : &m->bootstrap;
    c.apply = on_apply;
    c.send = on_send;
    c.snapshot_dir = m->snapshot_dir;
    c.snapshot_threshold = m->opts->snapshot_threshold;
    c.snapshot_trailing = m->opts->snapshot_threshold / 8 > 0
                              ? m->opts->snapshot_threshold / 8
                              : 1;
    c.snapshot_export = on_snapshot_export;
    c.snapshot_install = on_snapshot_install;
    c.state_changed = on_state_changed;
    c.data = m;
    rv = raft_uv_node_start(&c, &m->node);
    if (rv != 0) {
        goulette_logf(m->log, GOULETTE_LOG_ERROR, "raft",
                      "cannot start Raft: %s", goulette_strerror(rv));
        return rv;
    }
    /* A joining member has no state until the leader reaches it: it is
     * marked at its first applied entry (mark_joined). */
    m->marked = initialized;
    if (!initialized && !m->opts->has_join) {
        rv = write_marker(m);
        if (rv != 0) {
            goulette_logf(m->log, GOULETTE_LOG_ERROR, "main",
                          "cannot write %s/member: %s", m->opts->data_dir,
                          goulette_strerror(rv));
        }
        m->marked = rv == 0;
    }
    return rv;
}

/* A member that joined writes DATA_DIR/member, with the cluster id it
 * learned when it joined, once it has Raft state of its own: from then on
 * it restarts with its identity, with or without --join. */
static void mark_joined(struct member *m)
{
    int rv;
    if (m->marked || !m->opts->has_join) {
        return;
    }
    rv = write_marker(m);
    if (rv != 0) {
        goulette_logf(m->log, GOULETTE_LOG_ERROR, "main",
                      "cannot write %s/member: %s", m->opts->data_dir,
                      goulette_strerror(rv));
        return;
    }
    m->marked = true;
}

static void on_unmounted(struct fs *fs)
{
    struct member *m = fs->data;
    goulette_logf(m->log, GOULETTE_LOG_WARN, "fs",
                  "%s was unmounted from outside; stopping", m->opts->mount);
    m->fatal = -ENOTCONN;
    member_stop(m);
}

static int mount(struct member *m)
{
    struct fs_config fc;
    int rv;

    memset(&fc, 0, sizeof fc);
    fc.mountpoint = m->opts->mount;
    fc.allow_other = m->opts->allow_other;
    fc.log = m->log;
    fc.unmounted = on_unmounted;
    member_mount_backend(m, &fc.backend);
    m->fs.data = m;
    rv = fs_init(&m->fs, m->loop, &fc);
    if (rv != 0) {
        goulette_logf(m->log, GOULETTE_LOG_ERROR, "fs", "cannot mount %s: %s",
                      m->opts->mount, goulette_strerror(rv));
        return rv;
    }
    m->mounted = true;
    return 0;
}

/* Release what start opened, in reverse; the node must be closed already. */
static void release(struct member *m)
{
    store_sm_close(m->sm);
    m->sm = NULL;
    store_ldb_close(m->db);
    m->db = NULL;
    raft_configuration_fini(&m->bootstrap);
}

static void on_closed_at_start(void *arg)
{
    (void)arg;
}

static void on_transport_closed_at_start(struct raft_uv_transport *t)
{
    (void)t;
}

int member_start(struct member *m,
                 uv_loop_t *loop,
                 const struct options *opts,
                 const struct goulette_log *log,
                 void (*stopped)(struct member *m))
{
    int rv;

    memset(m, 0, sizeof *m);
    m->stop_cb = stopped;
    m->loop = loop;
    m->opts = opts;
    m->log = log;
    m->id = member_id_of(opts->name);
    rv = bootstrap_configuration(m);
    if (rv == 0) {
        rv = open_store(m);
    }
    if (rv == 0) {
        rv = member_roles_start(m);
    }
    if (rv == 0) {
        rv = start_node(m);
    }
    if (rv == 0 && opts->has_join) {
        rv = member_rpc_join(m); /* sets cluster_id: before the transport */
    }
    if (rv == 0) {
        rv = start_transport(m);
    }
    if (rv == 0) {
        rv = member_rpc_start(m, &m->rpc);
    }
    if (rv == 0 && opts->mount != NULL) {
        rv = mount(m);
    }
    if (rv == 0) {
        rv = member_liveness_start(m);
        if (rv == 0 && m->node != NULL) {
            struct raft_uv_node_status st;
            raft_uv_node_status(m->node, &st);
            member_liveness_leadership(m, st.state == RAFT_LEADER);
            member_roles_leadership(m, st.state == RAFT_LEADER);
        }
    }
    if (rv != 0) {
        member_roles_stop(m);
        member_rpc_stop(m->rpc);
        m->rpc = NULL;
        /* Handles close on the next loop runs; main() runs the loop before
         * closing it. */
        if (m->node != NULL) {
            raft_uv_node_close(m->node, on_closed_at_start, NULL);
            m->node = NULL;
        }
        if (m->transport_up) {
            m->transport_up = false;
            raft_uv_transport_close(&m->transport,
                                    on_transport_closed_at_start);
        }
        release(m);
    }
    return rv;
}

static void on_transport_closed(struct raft_uv_transport *t)
{
    struct member *m = t->data;
    release(m);
    goulette_logf(m->log, GOULETTE_LOG_INFO, "main", "member stopped");
    if (m->stop_cb != NULL) {
        m->stop_cb(m);
    }
}

/* The node goes before the transport: it sends through it. */
static void on_node_closed(void *arg)
{
    struct member *m = arg;
    m->transport_up = false;
    raft_uv_transport_close(&m->transport, on_transport_closed);
}

static void close_node(struct member *m)
{
    struct raft_uv_node *node = m->node;
    m->node = NULL;
    if (node == NULL) {
        on_node_closed(m);
        return;
    }
    raft_uv_node_close(node, on_node_closed, m);
}

static void on_fs_closed(struct fs *fs)
{
    struct member *m = fs->data;
    m->mounted = false;
    close_node(m);
}

void member_stop(struct member *m)
{
    if (m->stopping) {
        return;
    }
    m->stopping = true;
    member_liveness_stop(m);
    member_roles_stop(m);
    /* gRPC first: no new calls; those in flight finish as the node does. */
    member_rpc_stop(m->rpc);
    m->rpc = NULL;
    /* The mount goes first: fs_close waits for the mutations in flight,
     * which the node, still running, completes. */
    if (m->mounted && fs_close(&m->fs, on_fs_closed) == 0) {
        return;
    }
    close_node(m);
}
