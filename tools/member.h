/* One goulettefs member: the composition of the member's LevelDB, the state
 * machine, the Raft node and the mount.  Owns their lifecycle and the glue
 * between them (proposals from the mount, applied entries back to the mount's
 * change feed); owns no protocol and no record format.
 *
 * Loop thread only. */
#ifndef GOULETTE_TOOLS_MEMBER_H
#define GOULETTE_TOOLS_MEMBER_H

#include <stdbool.h>

#include <uv.h>

#include <goulette/fs.h>
#include <goulette/liveness.h>
#include <goulette/ldb.h>
#include <goulette/log.h>
#include <goulette/raft.h>
#include <goulette/store.h>

#include <goulette/raft_uv.h>

#include "options.h"
#include "renewals.h"
#include "uv_node.h"

struct Goulettefs__PeerNotice; /* goulettefs.pb-c.h */

struct member
{
    uv_loop_t *loop;                /* borrowed */
    const struct goulette_log *log; /* borrowed */
    const struct options *opts;     /* borrowed */
    raft_id id;                     /* this member, from its name */

    struct store_ldb *db;      /* owned */
    struct store_sm *sm;       /* owned */
    struct raft_uv_node *node; /* owned */
    struct fs fs;              /* the mount, when opts->mount is set */
    bool mounted;              /* fs is initialized and not yet closed */
    struct raft_configuration bootstrap; /* from --initial-cluster */
    uint64_t cluster_id; /* from --initial-cluster at the first start, then
                            from DATA_DIR/member */
    struct raft_uv_transport transport; /* peer traffic */
    char snapshot_dir[1024];            /* DATA_DIR/snapshots */
    struct store_liveness liveness;     /* broker failure detection */
    uv_timer_t liveness_timer;          /* its check, while leading */
    bool liveness_on;                   /* the timer is running */
    int64_t dir_mtime_ns[8]; /* mount directories' mtimes (tools/mount.c):
                                the last change applied in each */
    bool transport_up;       /* initialized and not closing */
    struct member_rpc *rpc;  /* owned: the gRPC port (member_rpc.h), or NULL */
    struct member_roles *roles; /* owned: telling brokers their roles
                                   (member_roles.c), or NULL */

    bool marked; /* DATA_DIR/member is written */
    bool stopping;
    void (*stop_cb)(struct member *m);
    int fatal; /* an error that stopped the member, or 0 */

    /* notices / forwarding (member_notice.c, member_liveness.c) */
    struct renewals renewals;  /* follower: brokers renewed here since the
                                  last notice to the leader */
    uv_timer_t forward_timer;  /* armed while renewals wait to go out */
    bool forward_on;           /* forward_timer is initialized, not closed */
    uint64_t forward_ms;       /* flush delay, ms (docs/liveness.md) */
    uint64_t notices_dropped;  /* received notices that failed the checks */
    raft_id notice_bad_from;   /* sender of the last one logged */
    int64_t notice_bad_logged; /* uv_hrtime() ns when it was logged */
};

/* A proposal of this member: the arg of raft_uv_node_propose.  Allocated by
 * whoever proposes; member_propose() calls @done exactly once. */
struct member_proposal
{
    struct member *member;
    struct fs_mutation *mutation; /* the mount mutation it carries, or NULL */
    void (*done)(struct member_proposal *p, int rv); /* rv: 0, the store's
                                                        rejection, or the
                                                        node's error */
};

/* Encode @cmd (borrowed) and propose it.  Returns 0 and later calls
 * p->done; or returns an error and never calls it.
 * Errors: -ENOMEM, -EINVAL, GOULETTE_ESHUTDOWN. */
int member_propose(struct member *m,
                   const struct store_cmd *cmd,
                   struct member_proposal *p);

/* The Raft id of a member name: a 64-bit FNV-1a hash, never 0.  Every
 * member derives the same ids from the same --initial-cluster. */
raft_id member_id_of(const char *name);

/* The name of member @id as this member knows it (from --initial-cluster),
 * or NULL. */
const char *member_name_of(const struct member *m, raft_id id);

/* Open the data directory's database and state machine, start Raft and, if
 * asked, mount.  On error everything started is stopped again, the reason
 * is logged and @stopped is never called.  On success @stopped is called
 * exactly once, from the loop, when the member has stopped: after
 * member_stop(), or by itself (its mount was taken away: m->fatal is then
 * set).  Errors: -ENOMEM, -EIO, GOULETTE_ECORRUPT, GOULETTE_EVERSION, and
 * the mount's errors. */
int member_start(struct member *m,
                 uv_loop_t *loop,
                 const struct options *opts,
                 const struct goulette_log *log,
                 void (*stopped)(struct member *m));

/* Stop taking work, let in-flight writes finish, unmount, stop Raft, close
 * the database; then the start callback fires.  Idempotent. */
void member_stop(struct member *m);

/* Wall-clock time for command timestamps, Unix ns. */
int64_t member_now_ns(void);

/* Broker liveness (tools/member_liveness.c; docs/liveness.md). */
int member_liveness_start(struct member *m);
void member_liveness_stop(struct member *m);
/* This member started (@leading) or stopped leading. */
void member_liveness_leadership(struct member *m, bool leading);
/* A KeepAlive from @broker_id (borrowed) reached this member, or a
 * registration or keepalive committed.  The leader counts it at once; any
 * other member queues it for the leader (a PeerNotice within forward_ms,
 * docs/liveness.md) and returns 0.  Errors: -ENOMEM, GOULETTE_ESHUTDOWN. */
int member_liveness_heartbeat(struct member *m, const char *broker_id);
/* A client's unreachable report of brokers @ids (@n) was applied (accepted
 * or refused).  The leader sets down at once those it has not heard from
 * for report_after (docs/liveness.md, "Reports from clients"). */
void member_liveness_reported(struct member *m, char *const *ids, size_t n);

/* ---- notices / forwarding (tools/member_notice.c, member_liveness.c) ----
 * PeerNotice over the peer transport's application frames. */

/* Pack @n (borrowed) and queue it for member @to.  Best effort: 0 means
 * queued.  Errors: those of raft_uv_transport_send_app, -EINVAL (empty
 * notice), -ENOMEM, GOULETTE_ESHUTDOWN (the transport is down). */
int member_notice_send(struct member *m,
                       raft_id to,
                       const struct Goulettefs__PeerNotice *n);

/* The transport's app_cb: check and dispatch one notice from @from.  A
 * notice that fails the checks (tools/notice.h) is dropped, counted and
 * logged (rate-limited). */
void member_notice_on_app(struct raft_uv_transport *t,
                          raft_id from,
                          const void *payload,
                          size_t len);

/* Member @from says brokers @ids (@n, borrowed) renewed there.  Counted as
 * heartbeats while this member leads and @from is in the configuration;
 * ignored otherwise. */
void member_liveness_renewed(struct member *m,
                             raft_id from,
                             char **ids,
                             size_t n);

/* ---- roles (tools/member_roles.c; docs/liveness.md "Telling brokers") --
 * The leader tells brokers their roles (SetTopicRole, RemoveTopic). */

/* Track the store's assignments and open the broker client.  Call once the
 * store is open.  Errors: -ENOMEM, -EINVAL, the store's listing errors. */
int member_roles_start(struct member *m);
/* Cancel every call, close the client; idempotent. */
void member_roles_stop(struct member *m);
/* This member started (@leading) or stopped leading. */
void member_roles_leadership(struct member *m, bool leading);
/* The changes of one applied entry or snapshot install (borrowed). */
void member_roles_applied(struct member *m,
                          const struct store_changes *changes);
/* Member @from (the leader) delivered @topic (borrowed) at @digest. */
void member_roles_delivered(struct member *m,
                            raft_id from,
                            const char *topic,
                            uint64_t digest);

/* The fs backend over this member (tools/mount.c). */
void member_mount_backend(struct member *m, struct fs_backend *b);

/* Feed the changes of one applied entry to the mount (tools/mount.c).
 * @origin is the mount mutation the entry carries, or NULL. */
void member_mount_applied(struct member *m,
                          const struct store_changes *changes,
                          const struct fs_mutation *origin);

#endif /* GOULETTE_TOOLS_MEMBER_H */
