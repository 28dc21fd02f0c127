/* Clearing what a killed predecessor left behind: its mount and its stuck
 * FUSE connection.  See stale.h. */
#include "stale.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <goulette/err.h>

/* @path made absolute and without trailing slashes, lexically. */
static int absolute(const char *path, char *out, size_t size)
{
    char cwd[PATH_MAX];
    size_t n;
    if (path[0] == '/') {
        n = (size_t)snprintf(out, size, "%s", path);
    } else {
        if (getcwd(cwd, sizeof cwd) == NULL) {
            return -errno;
        }
        n = (size_t)snprintf(out, size, "%s/%s", cwd, path);
    }
    if (n >= size) {
        return -ENAMETOOLONG;
    }
    while (n > 1 && out[n - 1] == '/') {
        out[--n] = '\0';
    }
    if (n > 2 && strcmp(out + n - 2, "/.") == 0) {
        out[n - 2] = '\0';
    }
    return 0;
}

/* Undo the octal escapes of /proc/self/mountinfo (\040 for a space...). */
static void unescape(char *s)
{
    char *r = s, *w = s;
    while (*r != '\0') {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' &&
            r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

bool stale_mount_find(const char *path, unsigned *dev)
{
    char want[PATH_MAX];
    char line[8192];
    bool found = false;
    FILE *f;

    if (absolute(path, want, sizeof want) != 0) {
        return false;
    }
    f = fopen("/proc/self/mountinfo", "r");
    if (f == NULL) {
        return false;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        /* ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS ... - FSTYPE ... */
        unsigned major, minor;
        char mnt[PATH_MAX];
        char *sep = strstr(line, " - ");
        if (sep == NULL || sscanf(line, "%*u %*u %u:%u %*s %4095s", &major,
                                  &minor, mnt) != 3) {
            continue;
        }
        unescape(mnt);
        if (strcmp(mnt, want) == 0 &&
            strncmp(sep + 3, "fuse.goulettefs ", 16) == 0) {
            *dev = minor;
            found = true; /* the last one listed is the top mount */
        }
    }
    fclose(f);
    return found;
}

int stale_mount_clear(const struct goulette_log *log,
                      const char *path,
                      bool abort_connection)
{
    char ctl[64];
    unsigned dev;
    FILE *f;

    if (!stale_mount_find(path, &dev)) {
        return -ENOENT;
    }
    if (abort_connection) {
        snprintf(ctl, sizeof ctl, "/sys/fs/fuse/connections/%u/abort", dev);
        f = fopen(ctl, "w");
        if (f != NULL) {
            fputs("1", f);
            fclose(f);
            goulette_logf(log, GOULETTE_LOG_WARN, "main",
                          "aborted the FUSE connection of a dead goulettefs "
                          "at %s",
                          path);
        } else {
            goulette_logf(log, GOULETTE_LOG_WARN, "main",
                          "cannot abort the FUSE connection at %s (%s): is "
                          "fusectl mounted at /sys/fs/fuse/connections?",
                          path, strerror(errno));
        }
    }
    if (umount2(path, MNT_DETACH) != 0) {
        int rv = -errno;
        goulette_logf(log, GOULETTE_LOG_ERROR, "main",
                      "cannot detach the stale mount at %s: %s (try "
                      "fusermount3 -u -z %s)",
                      path, goulette_strerror(rv), path);
        return rv;
    }
    goulette_logf(log, GOULETTE_LOG_WARN, "main",
                  "detached a stale goulettefs mount at %s", path);
    return 0;
}

/* Whether SIGKILL is pending for @pid (its process-wide ShdPnd mask or
 * SigPnd): a process stuck exiting in uninterruptible sleep shows it. */
static bool sigkill_pending(pid_t pid)
{
    char path[64];
    char line[256];
    bool pending = false;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long long mask;
        if ((sscanf(line, "ShdPnd: %llx", &mask) == 1 ||
             sscanf(line, "SigPnd: %llx", &mask) == 1) &&
            (mask & (1ULL << (9 - 1))) != 0) {
            pending = true;
        }
    }
    fclose(f);
    return pending;
}

bool stale_pid_dying(pid_t pid)
{
    char path[64];
    char buf[512];
    char *close_paren;
    FILE *f;
    size_t n;

    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return true;
    }
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    close_paren = strrchr(buf, ')');
    if (close_paren == NULL || close_paren[1] != ' ' || close_paren[2] == 'Z' ||
        close_paren[2] == 'X') {
        return true;
    }
    /* Killed, but stuck in its own mount on the way out. */
    return close_paren[2] == 'D' && sigkill_pending(pid);
}
