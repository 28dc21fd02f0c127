/* Recovery from a predecessor killed with SIGKILL: finding and clearing the
 * goulettefs mount it left at our mount point, and telling whether the
 * process holding our data directory is dying.  Reads /proc and
 * /sys/fs/fuse; never touches the mount itself (a dead FUSE server would
 * make any access to it hang). */
#ifndef GOULETTE_TOOLS_STALE_H
#define GOULETTE_TOOLS_STALE_H

#include <stdbool.h>
#include <sys/types.h>

#include <goulette/log.h>

/* Whether a goulettefs mount sits at @path (made absolute against the
 * working directory, without resolving links).  *@dev gets its device
 * minor, the FUSE connection number. */
bool stale_mount_find(const char *path, unsigned *dev);

/* Remove the goulettefs mount at @path: abort its FUSE connection first
 * when @abort_connection (releasing any thread still waiting on it, such as
 * a killed predecessor's), then detach it.  Logs what it did.
 * Errors: -ENOENT (no such mount), -EPERM, -EINVAL. */
int stale_mount_clear(const struct goulette_log *log,
                      const char *path,
                      bool abort_connection);

/* Whether process @pid is gone, a zombie, or killed (SIGKILL pending) and
 * stuck in uninterruptible sleep: a predecessor whose exit waits on its own,
 * now unserved, mount. */
bool stale_pid_dying(pid_t pid);

#endif /* GOULETTE_TOOLS_STALE_H */
