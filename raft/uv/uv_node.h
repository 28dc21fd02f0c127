/* The Raft node runtime: owns one struct raft on a libuv loop and executes
 * its updates by the rules of raft.h: persist to the LevelDB log (uv_log),
 * send through the transport, apply committed entries through the
 * state-machine callback, and complete the callers waiting on proposals and
 * reads.  It decides nothing about the protocol.
 *
 * Group commit: proposals made during one loop turn are queued and handed to
 * the core as one RAFT_EVENT_PROPOSE at the end of the turn (a uv_check
 * handle), so their entries reach LevelDB in one synchronous write.
 *
 * Loop thread only.  The node borrows the database, the transport hooks and
 * the apply callback for its whole life. */
#ifndef GOULETTE_RAFT_UV_NODE_H
#define GOULETTE_RAFT_UV_NODE_H

#include <uv.h>

#include <goulette/ldb.h>
#include <goulette/log.h>
#include <goulette/raft.h>

struct raft_uv_node;

/* Applies one committed entry to the state machine and returns the
 * command's own result (0 or a rejection code, handed to the proposer), or
 * sets *@fatal to a negative error when the state machine can no longer
 * apply (the node then stops applying and reports it).  Entries of every
 * type are passed, in index order, exactly once per node run; the state
 * machine skips the ones at or below its own applied index.  @origin is the
 * arg of this member's raft_uv_node_propose() call that the entry carries,
 * or NULL for entries proposed elsewhere (or lost by their proposer). */
typedef int (*raft_uv_apply_cb)(void *data,
                                const struct raft_entry *entry,
                                void *origin,
                                int *fatal);

/* Sends @m (borrowed for the call) to m->to. */
typedef void (*raft_uv_send_cb)(void *data, const struct raft_message *m);

/* Membership, leadership or term changed (for status files and logs). */
typedef void (*raft_uv_state_cb)(void *data, struct raft_uv_node *node);

struct raft_uv_node_config
{
    uv_loop_t *loop;                /* borrowed */
    struct store_ldb *db;           /* borrowed: the member's database */
    const struct goulette_log *log; /* borrowed; may be NULL */
    raft_id id;                     /* this member */
    uint64_t seed;                  /* election-timeout PRNG seed */
    unsigned tick_ms;               /* one tick; default 100 */
    unsigned election_ticks;        /* default 10 */
    unsigned proposal_timeout_ms;   /* a proposal not applied by then fails
                                       with GOULETTE_ENOQUORUM; default
                                       5000 */
    uint64_t applied;               /* the state machine's applied index */
    /* Founding configuration, used only when the database holds no Raft
     * state yet (a new member of a new cluster).  NULL for a joining member,
     * which waits to be contacted by the leader. */
    const struct raft_configuration *bootstrap;
    raft_uv_apply_cb apply;
    raft_uv_send_cb send; /* may be NULL for a single-member cluster */
    raft_uv_state_cb state_changed; /* may be NULL */
    void *data;                     /* passed to the callbacks */

    /* Snapshots (log compaction, catching up lagging and new members).
     * Without a directory the log is never compacted and snapshots cannot
     * be received. */
    const char *snapshot_dir;    /* borrowed; created if missing */
    unsigned snapshot_threshold; /* applied entries between snapshots;
                                    default 1024 */
    unsigned snapshot_trailing;  /* entries kept behind a snapshot for
                                    followers that lag a little; default
                                    128 */
    /* Write the state machine's snapshot stream to @fd; *@index gets the
     * last applied index it covers (the node's applied index).  Returns 0
     * or a negative error (the snapshot is then skipped). */
    int (*snapshot_export)(void *data, int fd, raft_index *index);
    /* Replace the state machine with the stream in @fd, which covers
     * everything up to @meta->index, atomically; errors are fatal for the
     * member (it can no longer follow the log). */
    int (*snapshot_install)(void *data,
                            int fd,
                            const struct raft_snapshot_meta *meta);
};

/* Called when a proposal completes: @rv is 0 or the state machine's result
 * for the entry (a rejection), GOULETTE_ENOLEADER / ENOTLEADER /
 * ETRANSFER / EDROPPED (not committed: leadership changed),
 * GOULETTE_ENOQUORUM (not applied within the proposal timeout: it may still
 * commit later), GOULETTE_ESHUTDOWN. */
typedef void (*raft_uv_propose_cb)(void *arg, int rv, raft_index index);

/* Called when a ReadIndex read may be served (@rv 0: this member has
 * applied everything committed when the read began), or failed. */
typedef void (*raft_uv_read_cb)(void *arg, int rv);

/* Create the node, load the log (bootstrapping it if needed) and start the
 * core.  *@out is returned; free with raft_uv_node_close.
 * Errors: -EINVAL, -ENOMEM, GOULETTE_ECORRUPT and GOULETTE_EVERSION (the log
 * on disk is damaged or unknown: the member must not start), -EIO. */
int raft_uv_node_start(const struct raft_uv_node_config *config,
                       struct raft_uv_node **out);

/* Stop: fail every waiting caller with GOULETTE_ESHUTDOWN, close the
 * handles, free the node, then call @cb (may be NULL) from the loop. */
void raft_uv_node_close(struct raft_uv_node *node,
                        void (*cb)(void *arg),
                        void *arg);

/* Propose a command (@data borrowed: copied).  @cb fires exactly once,
 * from the loop, never before this function returns.
 * Errors (cb not called): -ENOMEM, GOULETTE_ESHUTDOWN. */
int raft_uv_node_propose(struct raft_uv_node *node,
                         const struct goulette_buf *data,
                         raft_uv_propose_cb cb,
                         void *arg);

/* Begin a linearizable read.  @cb fires exactly once, from the loop.
 * Errors (cb not called): -ENOMEM, GOULETTE_ESHUTDOWN. */
int raft_uv_node_read(struct raft_uv_node *node, raft_uv_read_cb cb, void *arg);

/* Hand a message that arrived from a peer to the core (borrowed). */
void raft_uv_node_receive(struct raft_uv_node *node,
                          const struct raft_message *m);

/* The transport could not reach @id. */
void raft_uv_node_unreachable(struct raft_uv_node *node, raft_id id);

/* Status (valid until the loop runs again). */
struct raft_uv_node_status
{
    raft_id id;
    enum raft_state state;
    raft_id leader;
    raft_term term;
    raft_index commit;
    raft_index applied;
    raft_index last;
    const struct raft_configuration *conf; /* borrowed */
};

void raft_uv_node_status(const struct raft_uv_node *node,
                         struct raft_uv_node_status *st);

/* Access to the core for tests and status: borrowed. */
const struct raft *raft_uv_node_raft(const struct raft_uv_node *node);

/* ---- membership and leadership ----------------------------------------- */

/* Leader only: propose the membership change @type for member @id
 * (@address, borrowed, copied: its peer "host:port", for
 * RAFT_CONF_ADD_LEARNER only).  @cb then fires exactly once with 0 once the
 * configuration entry is committed and applied here, or with the core's
 * refusal (GOULETTE_ECONFCHANGE: another change is not yet committed;
 * GOULETTE_ETRANSFER; -EEXIST: already a member; GOULETTE_ENOTFOUND: no
 * such member; -EINVAL: promoting a voter, removing the last voter), or as
 * a proposal fails (GOULETTE_EDROPPED, GOULETTE_ENOQUORUM,
 * GOULETTE_ESHUTDOWN).  A refusal the core knows at once may reach @cb
 * before this function returns.
 * Errors (cb not called): GOULETTE_ENOTLEADER / GOULETTE_ENOLEADER (this
 * member does not lead), -EINVAL (id 0, unknown type, missing or long
 * address), -ENOMEM, GOULETTE_ESHUTDOWN. */
int raft_uv_node_change(struct raft_uv_node *node,
                        enum raft_conf_change_type type,
                        raft_id id,
                        const char *address,
                        raft_uv_propose_cb cb,
                        void *arg);

/* Leader only: start a leadership transfer to voter @to (0: the most
 * up-to-date voter), Raft dissertation §3.10.  Returns once the transfer
 * has started; the state_changed callback reports the new leader.
 * Errors: GOULETTE_ENOTLEADER / GOULETTE_ENOLEADER, GOULETTE_ETRANSFER (a
 * transfer is under way), GOULETTE_ENOTFOUND (@to is not another voter),
 * GOULETTE_ESHUTDOWN, and -EIO if persisting failed (the node stops). */
int raft_uv_node_transfer(struct raft_uv_node *node, raft_id to);

#endif /* GOULETTE_RAFT_UV_NODE_H */
