/* Snapshot files of a member: see uv_snapshot.h. */
#include "uv_snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <goulette/err.h>

static int path_of(const struct raft_uv_snapshots *s,
                   raft_index index,
                   const char *suffix,
                   char *out,
                   size_t size)
{
    int n = snprintf(out, size, "%s/snap-%llu%s", s->dir,
                     (unsigned long long)index, suffix);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int incoming_path(const struct raft_uv_snapshots *s,
                         char *out,
                         size_t size)
{
    int n = snprintf(out, size, "%s/incoming", s->dir);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rv = 0;
    if (fd < 0) {
        return -errno;
    }
    if (fsync(fd) != 0) {
        rv = -errno;
    }
    close(fd);
    return rv;
}

/* Remove every file of @dir except the current snapshot's. */
static void prune(struct raft_uv_snapshots *s, bool keep_current)
{
    char keep[64];
    DIR *d = opendir(s->dir);
    struct dirent *e;
    snprintf(keep, sizeof keep, "snap-%llu", (unsigned long long)s->index);
    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char path[PATH_MAX + 300];
        if (e->d_name[0] == '.' ||
            (keep_current && s->index != 0 && strcmp(e->d_name, keep) == 0)) {
            continue;
        }
        if (strcmp(e->d_name, "incoming") == 0 && s->in_fd >= 0) {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", s->dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

/* Files of interrupted work: a snapshot being written, one being received. */
static void drop_leftovers(struct raft_uv_snapshots *s)
{
    DIR *d = opendir(s->dir);
    struct dirent *e;
    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char path[PATH_MAX + 300];
        if (strcmp(e->d_name, "incoming") != 0 &&
            (n < 4 || strcmp(e->d_name + n - 4, ".tmp") != 0)) {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", s->dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

int raft_uv_snapshots_init(struct raft_uv_snapshots *s,
                           const char *dir,
                           const struct goulette_log *log)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->in_fd = -1;
    s->log = log;
    if ((size_t)snprintf(s->dir, sizeof s->dir, "%s", dir) >= sizeof s->dir) {
        return -ENAMETOOLONG;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return -errno;
    }
    drop_leftovers(s);
    return 0;
}

void raft_uv_snapshots_fini(struct raft_uv_snapshots *s)
{
    if (s->fd >= 0) {
        close(s->fd);
    }
    if (s->in_fd >= 0) {
        close(s->in_fd);
    }
    s->fd = -1;
    s->in_fd = -1;
}

int raft_uv_snapshots_open(struct raft_uv_snapshots *s,
                           raft_index index,
                           raft_term term)
{
    char path[PATH_MAX];
    struct stat st;
    int fd;
    int rv;

    rv = path_of(s, index, "", path, sizeof path);
    if (rv != 0) {
        return rv;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    if (fstat(fd, &st) != 0) {
        rv = -errno;
        close(fd);
        return rv;
    }
    if (s->fd >= 0) {
        close(s->fd);
    }
    s->fd = fd;
    s->index = index;
    s->term = term;
    s->size = (uint64_t)st.st_size;
    prune(s, true);
    return 0;
}

int raft_uv_snapshots_create(struct raft_uv_snapshots *s,
                             raft_index index,
                             int *fd)
{
    char path[PATH_MAX];
    int rv = path_of(s, index, ".tmp", path, sizeof path);
    if (rv != 0) {
        return rv;
    }
    *fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    return *fd < 0 ? -errno : 0;
}

void raft_uv_snapshots_abort(struct raft_uv_snapshots *s,
                             raft_index index,
                             int fd)
{
    char path[PATH_MAX];
    close(fd);
    if (path_of(s, index, ".tmp", path, sizeof path) == 0) {
        unlink(path);
    }
}

int raft_uv_snapshots_commit(struct raft_uv_snapshots *s,
                             raft_index index,
                             int fd,
                             uint64_t *size)
{
    char tmp[PATH_MAX];
    char path[PATH_MAX];
    struct stat st;
    int rv;

    if (fsync(fd) != 0 || fstat(fd, &st) != 0) {
        rv = -errno;
        raft_uv_snapshots_abort(s, index, fd);
        return rv;
    }
    close(fd);
    path_of(s, index, ".tmp", tmp, sizeof tmp);
    path_of(s, index, "", path, sizeof path);
    if (rename(tmp, path) != 0) {
        rv = -errno;
        unlink(tmp);
        return rv;
    }
    rv = sync_dir(s->dir);
    if (rv != 0) {
        return rv;
    }
    *size = (uint64_t)st.st_size;
    return raft_uv_snapshots_open(s, index, 0);
}

void raft_uv_snapshots_set_term(struct raft_uv_snapshots *s,
                                raft_index index,
                                raft_term term)
{
    if (s->index == index) {
        s->term = term;
    }
}

int raft_uv_snapshots_read(struct raft_uv_snapshots *s,
                           raft_index index,
                           raft_term term,
                           uint64_t offset,
                           void *buf,
                           size_t len)
{
    size_t done = 0;
    if (s->fd < 0 || s->index != index || s->term != term ||
        offset + len > s->size) {
        return -ENOENT;
    }
    while (done < len) {
        ssize_t n = pread(s->fd, (char *)buf + done, len - done,
                          (off_t)(offset + done));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            return -EIO;
        }
        done += (size_t)n;
    }
    return 0;
}

int raft_uv_snapshots_stage(struct raft_uv_snapshots *s,
                            const struct raft_snapshot_chunk *c)
{
    char path[PATH_MAX];
    size_t done = 0;
    int rv;

    rv = incoming_path(s, path, sizeof path);
    if (rv != 0) {
        return rv;
    }
    if (c->offset == 0) {
        if (s->in_fd >= 0) {
            close(s->in_fd);
        }
        s->in_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (s->in_fd < 0) {
            return -errno;
        }
        s->in_index = c->index;
        s->in_term = c->term;
        s->in_next = 0;
    } else if (s->in_fd < 0 || s->in_index != c->index ||
               s->in_term != c->term || s->in_next != c->offset) {
        return -EINVAL;
    }
    while (done < c->data.len) {
        ssize_t n = pwrite(s->in_fd, (const char *)c->data.base + done,
                           c->data.len - done, (off_t)(c->offset + done));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        done += (size_t)n;
    }
    if (fdatasync(s->in_fd) != 0) {
        return -errno;
    }
    s->in_next = c->offset + c->data.len;
    return 0;
}

int raft_uv_snapshots_staged(struct raft_uv_snapshots *s,
                             raft_index index,
                             raft_term term,
                             int *fd)
{
    if (s->in_fd < 0 || s->in_index != index || s->in_term != term) {
        return -ENOENT;
    }
    if (lseek(s->in_fd, 0, SEEK_SET) != 0) {
        return -errno;
    }
    *fd = s->in_fd;
    return 0;
}

int raft_uv_snapshots_promote(struct raft_uv_snapshots *s)
{
    char in[PATH_MAX];
    char path[PATH_MAX];
    int rv;

    if (s->in_fd < 0) {
        return -ENOENT;
    }
    incoming_path(s, in, sizeof in);
    rv = path_of(s, s->in_index, "", path, sizeof path);
    if (rv != 0) {
        return rv;
    }
    close(s->in_fd);
    s->in_fd = -1;
    if (rename(in, path) != 0) {
        return -errno;
    }
    rv = sync_dir(s->dir);
    if (rv != 0) {
        return rv;
    }
    return raft_uv_snapshots_open(s, s->in_index, s->in_term);
}
