/* The mount's backend over a member: which paths exist, what the files
 * contain (the store's records, the member's status), and how a write on the
 * mount becomes a store command.  fs/ does the FUSE side; the store does the
 * validation that depends on state (unknown broker, placement).
 *
 * The tree (docs/mount.md):
 *   topics/<topic>        writable: a replica count, or JSON
 *   brokers/<broker_id>   writable: host:port, or JSON
 *   operations/<id>       read-only
 *   increment/operation   read-only
 *   cluster/<file>        read-only: this member's view of the cluster */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <goulette/err.h>

#include "member.h"

/* ---- paths -------------------------------------------------------------- */

enum area {
    AREA_ROOT,
    AREA_TOPICS,
    AREA_BROKERS,
    AREA_OPERATIONS,
    AREA_INCREMENT,
    AREA_CLUSTER,
};

static const struct
{
    const char *name;
    enum area area;
    bool writable;
} dirs[] = {
    {"topics", AREA_TOPICS, true},
    {"brokers", AREA_BROKERS, true},
    {"operations", AREA_OPERATIONS, false},
    {"increment", AREA_INCREMENT, false},
    {"cluster", AREA_CLUSTER, false},
};

#define N_DIRS (sizeof dirs / sizeof dirs[0])

/* Split @path into its directory and (for files) name.  Returns the index
 * into dirs, N_DIRS for the root, or -ENOENT. */
static int split(const char *path, const char **name)
{
    size_t i;
    *name = NULL;
    if (path[0] == '\0') {
        return (int)N_DIRS;
    }
    for (i = 0; i < N_DIRS; i++) {
        size_t n = strlen(dirs[i].name);
        if (strncmp(path, dirs[i].name, n) != 0) {
            continue;
        }
        if (path[n] == '\0') {
            return (int)i;
        }
        if (path[n] == '/' && path[n + 1] != '\0' &&
            strchr(path + n + 1, '/') == NULL) {
            *name = path + n + 1;
            return (int)i;
        }
    }
    return -ENOENT;
}

static int store_dir_of(enum area a, enum store_dir *d)
{
    switch (a) {
    case AREA_TOPICS:
        *d = STORE_DIR_TOPICS;
        return 0;
    case AREA_BROKERS:
        *d = STORE_DIR_BROKERS;
        return 0;
    case AREA_OPERATIONS:
        *d = STORE_DIR_OPERATIONS;
        return 0;
    case AREA_INCREMENT:
        *d = STORE_DIR_INCREMENT;
        return 0;
    default:
        return -ENOENT;
    }
}

/* ---- cluster/ status files ---------------------------------------------- */

static const char *const cluster_files[] = {
    "member",       "leader",        "state",   "term",
    "commit_index", "applied_index", "members", "status",
};

#define N_CLUSTER_FILES (sizeof cluster_files / sizeof cluster_files[0])

static const char *name_or_id(const struct member *m, raft_id id, char *buf)
{
    const char *name = member_name_of(m, id);
    if (name != NULL) {
        return name;
    }
    sprintf(buf, "%016llx", (unsigned long long)id);
    return buf;
}

/* The JSON status of this member.  Returns a new reference or NULL. */
static json_t *cluster_status(const struct member *m)
{
    struct raft_uv_node_status st;
    json_t *o = json_object();
    json_t *members = json_array();
    char idbuf[24];
    unsigned i;

    if (o == NULL || members == NULL || m->node == NULL) {
        json_decref(o);
        json_decref(members);
        return NULL;
    }
    raft_uv_node_status(m->node, &st);
    json_object_set_new(o, "member", json_string(m->opts->name));
    sprintf(idbuf, "%016llx", (unsigned long long)m->id);
    json_object_set_new(o, "id", json_string(idbuf));
    json_object_set_new(o, "state", json_string(raft_state_name(st.state)));
    json_object_set_new(o, "leader",
                        st.leader == 0
                            ? json_null()
                            : json_string(name_or_id(m, st.leader, idbuf)));
    json_object_set_new(o, "term", json_integer((json_int_t)st.term));
    json_object_set_new(o, "commit_index", json_integer((json_int_t)st.commit));
    json_object_set_new(o, "applied_index",
                        json_integer((json_int_t)st.applied));
    for (i = 0; st.conf != NULL && i < st.conf->n; i++) {
        const struct raft_server *s = &st.conf->servers[i];
        json_t *mo = json_object();
        char hex[24];
        sprintf(hex, "%016llx", (unsigned long long)s->id);
        json_object_set_new(mo, "name",
                            json_string(name_or_id(m, s->id, idbuf)));
        json_object_set_new(mo, "id", json_string(hex));
        json_object_set_new(mo, "address", json_string(s->address));
        json_object_set_new(
            mo, "role",
            json_string(s->role == RAFT_VOTER ? "voter" : "learner"));
        json_array_append_new(members, mo);
    }
    json_object_set_new(o, "members", members);
    return o;
}

/* Render cluster/@file into a malloc'd, newline-terminated text. */
static int cluster_read(const struct member *m,
                        const char *file,
                        struct goulette_buf *out)
{
    json_t *st = cluster_status(m);
    char *text = NULL;
    int rv = 0;

    if (st == NULL) {
        return -ENOMEM;
    }
    if (strcmp(file, "status") == 0) {
        char *dump = json_dumps(st, JSON_COMPACT);
        if (dump != NULL && asprintf(&text, "%s\n", dump) < 0) {
            text = NULL;
        }
        free(dump);
    } else if (strcmp(file, "members") == 0) {
        json_t *members = json_object_get(st, "members");
        size_t i;
        json_t *mo;
        size_t cap = 1;
        text = calloc(1, 1);
        json_array_foreach(members, i, mo)
        {
            char line[512];
            int n = snprintf(line, sizeof line, "%s %s %s %s\n",
                             json_string_value(json_object_get(mo, "name")),
                             json_string_value(json_object_get(mo, "id")),
                             json_string_value(json_object_get(mo, "address")),
                             json_string_value(json_object_get(mo, "role")));
            char *grown = text != NULL ? realloc(text, cap + (size_t)n) : NULL;
            if (grown == NULL) {
                free(text);
                text = NULL;
                break;
            }
            text = grown;
            memcpy(text + cap - 1, line, (size_t)n + 1);
            cap += (size_t)n;
        }
    } else {
        json_t *v = json_object_get(st, file);
        if (v == NULL) {
            rv = -ENOENT;
        } else if (json_is_string(v)) {
            if (asprintf(&text, "%s\n", json_string_value(v)) < 0) {
                text = NULL;
            }
        } else if (json_is_integer(v)) {
            if (asprintf(&text, "%lld\n", (long long)json_integer_value(v)) <
                0) {
                text = NULL;
            }
        } else {
            text = strdup("\n"); /* no leader known */
        }
    }
    json_decref(st);
    if (rv != 0) {
        return rv;
    }
    if (text == NULL) {
        return -ENOMEM;
    }
    out->base = text;
    out->len = strlen(text);
    return 0;
}

static bool cluster_file_exists(const char *name)
{
    size_t i;
    for (i = 0; i < N_CLUSTER_FILES; i++) {
        if (strcmp(cluster_files[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- reading ------------------------------------------------------------ */

static int be_stat(void *data, const char *path, struct fs_attr *out)
{
    struct member *m = data;
    const char *name;
    int d = split(path, &name);
    struct store_stat st;
    enum store_dir sd = STORE_DIR_TOPICS;
    int rv;

    if (d < 0) {
        return d;
    }
    memset(out, 0, sizeof *out);
    if (name == NULL) {
        out->kind = FS_KIND_DIR;
        out->writable = d < (int)N_DIRS && dirs[d].writable;
        out->mtime_ns = m->dir_mtime_ns[d];
        return 0;
    }
    out->kind = FS_KIND_FILE;
    if (dirs[d].area == AREA_CLUSTER) {
        struct goulette_buf b;
        if (!cluster_file_exists(name)) {
            return -ENOENT;
        }
        rv = cluster_read(m, name, &b);
        if (rv != 0) {
            return rv;
        }
        out->size = b.len;
        free(b.base);
        return 0;
    }
    store_dir_of(dirs[d].area, &sd);
    rv = store_sm_stat(m->sm, sd, name, &st);
    if (rv != 0) {
        return rv;
    }
    out->writable = dirs[d].writable;
    out->size = st.size;
    out->mtime_ns = st.mtime_ns;
    return 0;
}

static int be_read(void *data, const char *path, struct goulette_buf *out)
{
    struct member *m = data;
    const char *name;
    int d = split(path, &name);
    enum store_dir sd = STORE_DIR_TOPICS;

    if (d < 0) {
        return d;
    }
    if (name == NULL) {
        return -EISDIR;
    }
    if (dirs[d].area == AREA_CLUSTER) {
        if (!cluster_file_exists(name)) {
            return -ENOENT;
        }
        return cluster_read(m, name, out);
    }
    store_dir_of(dirs[d].area, &sd);
    return store_sm_read(m->sm, sd, name, out, NULL);
}

struct list_ctx
{
    int (*emit)(void *ctx, const char *name, enum fs_kind kind);
    void *ctx;
};

static int list_one(void *arg, const char *name)
{
    struct list_ctx *l = arg;
    int rv = l->emit(l->ctx, name, FS_KIND_FILE);
    return rv < 0 ? rv : 0;
}

static int be_list(void *data,
                   const char *path,
                   int (*emit)(void *ctx, const char *name, enum fs_kind kind),
                   void *ctx)
{
    struct member *m = data;
    struct list_ctx l = {emit, ctx};
    const char *name;
    int d = split(path, &name);
    enum store_dir sd = STORE_DIR_TOPICS;
    size_t i;
    int rv;

    if (d < 0) {
        return d;
    }
    if (name != NULL) {
        return -ENOTDIR;
    }
    if (d == (int)N_DIRS) {
        for (i = 0; i < N_DIRS; i++) {
            rv = emit(ctx, dirs[i].name, FS_KIND_DIR);
            if (rv < 0) {
                return rv;
            }
        }
        return 0;
    }
    if (dirs[d].area == AREA_CLUSTER) {
        for (i = 0; i < N_CLUSTER_FILES; i++) {
            rv = emit(ctx, cluster_files[i], FS_KIND_FILE);
            if (rv < 0) {
                return rv;
            }
        }
        return 0;
    }
    store_dir_of(dirs[d].area, &sd);
    rv = store_sm_list(m->sm, sd, NULL, list_one, &l);
    return rv > 0 ? 0 : rv;
}

static int be_xattrs(
    void *data,
    const char *path,
    int (*emit)(void *ctx, const char *name, const void *value, size_t len),
    void *ctx)
{
    struct member *m = data;
    const char *name;
    int d = split(path, &name);
    struct store_stat st;
    enum store_dir sd = STORE_DIR_TOPICS;
    char v[24];
    int rv;

    if (d < 0) {
        return d;
    }
    if (name == NULL || dirs[d].area == AREA_CLUSTER) {
        return 0; /* directories and status files carry no revisions */
    }
    store_dir_of(dirs[d].area, &sd);
    rv = store_sm_stat(m->sm, sd, name, &st);
    if (rv != 0) {
        return rv;
    }
    snprintf(v, sizeof v, "%llu", (unsigned long long)st.create_revision);
    rv = emit(ctx, "user.goulette.create_revision", v, strlen(v));
    if (rv < 0) {
        return rv;
    }
    snprintf(v, sizeof v, "%llu", (unsigned long long)st.mod_revision);
    rv = emit(ctx, "user.goulette.mod_revision", v, strlen(v));
    if (rv < 0) {
        return rv;
    }
    snprintf(v, sizeof v, "%llu", (unsigned long long)st.version);
    rv = emit(ctx, "user.goulette.version", v, strlen(v));
    if (rv < 0) {
        return rv;
    }
    snprintf(v, sizeof v, "%llu", (unsigned long long)store_sm_revision(m->sm));
    return emit(ctx, "user.goulette.revision", v, strlen(v));
}

/* Names the store accepts, except dot-names: on the mount those are an
 * editor's swap and backup files, which must fail at create, not become
 * topics or brokers. */
static int be_check_name(void *data, const char *dir, const char *name)
{
    (void)data;
    (void)dir;
    if (name[0] == '.') {
        return -EINVAL;
    }
    return store_name_check(name, strlen(name));
}

/* ---- writing ------------------------------------------------------------
 * The values a file accepts and the commands they make are the store's
 * (store_value_classify, store_value_command: docs/store.md). */

static int be_classify(void *data,
                       const char *path,
                       const void *buf,
                       size_t len)
{
    const char *name;
    int d = split(path, &name);
    enum store_dir sd = STORE_DIR_TOPICS;
    int rv;

    (void)data;
    if (d < 0 || name == NULL || d == (int)N_DIRS || !dirs[d].writable) {
        return -EROFS;
    }
    store_dir_of(dirs[d].area, &sd);
    rv = store_value_classify(sd, buf, len);
    if (rv < 0) {
        return rv;
    }
    return rv == STORE_VALUE_COMPLETE ? FS_VALUE_COMPLETE : FS_VALUE_INCOMPLETE;
}

struct pending
{
    struct member_proposal proposal; /* the node's arg */
    struct fs_mutation *m;
};

static void pending_done(struct member_proposal *p, int rv)
{
    struct pending *pd = (struct pending *)p;
    struct fs_mutation *mut = pd->m;
    free(pd);
    mut->cb(mut, rv == GOULETTE_ESHUTDOWN ? -ECANCELED : rv);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static enum store_value_op value_op(enum fs_mutation_kind k)
{
    switch (k) {
    case FS_MUTATION_WRITE:
        return STORE_VALUE_WRITE;
    case FS_MUTATION_CREATE:
        return STORE_VALUE_CREATE;
    case FS_MUTATION_REMOVE:
        break;
    }
    return STORE_VALUE_REMOVE;
}

static int be_submit(void *data, struct fs_mutation *mut)
{
    struct member *m = data;
    enum store_dir sd = STORE_DIR_TOPICS;
    struct store_cmd cmd;
    struct pending *pd;
    const char *name;
    int d = split(mut->path, &name);
    int rv;

    if (d < 0 || name == NULL || d == (int)N_DIRS) {
        return d < 0 ? d : -EISDIR;
    }
    if (!dirs[d].writable) {
        return -EROFS;
    }
    store_dir_of(dirs[d].area, &sd);
    memset(&cmd, 0, sizeof cmd);
    rv = store_value_command(sd, name, value_op(mut->kind), mut->value.base,
                             mut->value.len, mut->new_file, now_ns(), &cmd);
    if (rv != 0) {
        goulette_logf(m->log, GOULETTE_LOG_INFO, "fs",
                      "write to %s refused: %s", mut->path,
                      goulette_strerror(rv));
        return rv;
    }
    pd = calloc(1, sizeof *pd);
    if (pd == NULL) {
        rv = -ENOMEM;
        goto out;
    }
    pd->m = mut;
    pd->proposal.mutation = mut;
    pd->proposal.done = pending_done;
    rv = member_propose(m, &cmd, &pd->proposal);
    if (rv != 0) {
        free(pd);
    }
out:
    store_cmd_fini(&cmd);
    return rv;
}

void member_mount_backend(struct member *m, struct fs_backend *b)
{
    size_t i;
    for (i = 0; i <= N_DIRS; i++) {
        m->dir_mtime_ns[i] = now_ns();
    }
    memset(b, 0, sizeof *b);
    b->data = m;
    b->stat = be_stat;
    b->read = be_read;
    b->list = be_list;
    b->xattrs = be_xattrs;
    b->check_name = be_check_name;
    b->classify = be_classify;
    b->submit = be_submit;
}

void member_mount_applied(struct member *m,
                          const struct store_changes *changes,
                          const struct fs_mutation *origin)
{
    struct fs_change stack[16] = {{0}};
    struct fs_change *c = stack;
    size_t i;

    if (changes->n > sizeof stack / sizeof stack[0]) {
        c = malloc(changes->n * sizeof *c);
        if (c == NULL) {
            goulette_logf(m->log, GOULETTE_LOG_ERROR, "fs",
                          "out of memory: %zu changes not echoed", changes->n);
            return;
        }
    }
    for (i = 0; i < changes->n; i++) {
        const char *name;
        int d = split(changes->items[i].path, &name);
        c[i].path = changes->items[i].path;
        if (d >= 0 && d < (int)N_DIRS) {
            m->dir_mtime_ns[d] = now_ns();
        }
        switch (changes->items[i].kind) {
        case STORE_CHANGE_CREATE:
            c[i].kind = FS_CHANGE_CREATE;
            break;
        case STORE_CHANGE_MODIFY:
            c[i].kind = FS_CHANGE_MODIFY;
            break;
        case STORE_CHANGE_DELETE:
            c[i].kind = FS_CHANGE_DELETE;
            break;
        }
    }
    fs_changes_applied(&m->fs, c, changes->n, origin);
    if (c != stack) {
        free(c);
    }
}
