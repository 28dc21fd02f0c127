/* The pure Raft consensus core.
 *
 * This header owns the protocol: leader election (with pre-vote and
 * check-quorum), log replication (pipelined, flow-controlled), commitment,
 * snapshots sent in chunks, single-server membership changes with learners,
 * leadership transfer, batched ReadIndex reads and proposal forwarding.  It
 * does NOT own any I/O: no sockets, files, clocks or randomness.  The
 * runtime (raft_uv.h) feeds it events and executes the update it hands back.
 *
 * Model: etcd-io/raft (Ready batches, async storage writes, progress
 * tracking) and cowsql/raft (raft_step with an event and an update, C style).
 * Protocol sections quoted as "§x" refer to Ongaro's dissertation "Consensus:
 * Bridging Theory and Practice" (2014); "paper §x" to the extended Raft paper.
 *
 * Everything here is called on one thread (the runtime's loop thread).  The
 * core never blocks and never calls back into the runtime: all output goes
 * into the struct raft_update filled by raft_step().
 *
 * ## Driving the core
 *
 *     struct raft r;
 *     raft_init(&r, &config);                      // id, seed, timeouts
 *     raft_step(&r, &(struct raft_event){RAFT_EVENT_START, ...}, &u);
 *     loop:
 *         execute u (rules below)
 *         raft_step(&r, &next_event, &u);           // u is overwritten
 *     raft_fini(&r);
 *
 * ## Rules for executing a struct raft_update (in this order)
 *
 * 0. If u.snapshot_chunk is set: durably write the chunk (data at its
 *    offset) into the staging area for that snapshot (index, term) first.
 *    Staging contract: a chunk at offset 0 replaces the staging area
 *    unless it continues the transfer being staged (same index, term and
 *    sender: chunks of two senders are never mixed, their bytes may
 *    differ); chunks arrive in offset order without gaps; the last chunk
 *    (chunk.last) may come in the same update as u.snapshot_install, which
 *    then installs what was staged.  The staging area need not survive a
 *    crash: after a restart the core rejects chunks past offset 0 and the
 *    leader restarts the transfer.
 * 1. If u.snapshot_install is set: install the staged snapshot into the
 *    state machine and durably record its metadata, atomically, and discard
 *    EVERY persisted log entry, including those after its index (the core
 *    has already done the same in memory: it installs a snapshot only when
 *    its log does not hold the snapshot's last entry, so what follows in
 *    the log is stale; entries after the snapshot come in later updates).
 * 2. If u.n_entries > 0: durably truncate the persisted log from
 *    u.entries[0].index on (entries there were superseded) and append
 *    u.entries.  If RAFT_UPDATE_HARD_STATE is set: durably store
 *    u.hard_state.  Steps 1 and 2 may share one atomic batch, and the
 *    runtime may batch the persistence of several consecutive updates into
 *    one write (group commit) as long as it keeps their order and holds back
 *    their messages (rule 3) until that write is done.
 *    If u.snapshot_chunk is set: durably write the chunk at its offset into
 *    the staging area for that snapshot (index, term) before rule 3.
 * 3. Only then send u.messages.  Persist-before-send is what makes a vote or
 *    an append acknowledgement safe across a crash (§3.8).  A message of type
 *    RAFT_MSG_SNAPSHOT with chunk.data.base == NULL asks the runtime to fill
 *    in bytes [offset, offset + len) of its snapshot (index, term) before
 *    sending; if it no longer has that snapshot it drops the message (the
 *    core retries after a timeout).
 * 4. After the entries of u are durable, tell the core with
 *    RAFT_EVENT_PERSISTED (last index and its term).  The leader only counts
 *    itself towards a quorum for entries it has persisted.
 * 5. Apply u.committed in order, then report the highest applied index with
 *    RAFT_EVENT_APPLIED.  Entries of type RAFT_ENTRY_BARRIER carry no data
 *    and RAFT_ENTRY_CONF entries were already acted on by the core: the
 *    runtime records their application (applied index) like any other.
 *    Committed entries are always durable locally before they appear here.
 * 6. Report u.proposals (results of raft_propose), u.reads (ReadIndex
 *    results) and u.state changes to whoever waits for them.  A read with
 *    rv == 0 may be served once the applied index is >= read.index.
 *    A proposal result gives (index, term): the proposal is committed and
 *    applied when an entry with that index AND that term is applied; if the
 *    applied entry at that index has another term, the proposal was lost
 *    (GOULETTE_EDROPPED).
 *
 * All pointers in a struct raft_update are owned by the core and stay valid
 * until the next call to raft_step() or raft_fini() on the same instance,
 * except snapshot_chunk.data, which borrows from the received message the
 * runtime passed in (valid as long as the runtime keeps that message).
 *
 * ## Time
 *
 * Time comes in only as RAFT_EVENT_TICK.  Timeouts are counted in ticks: a
 * follower campaigns after a randomized election timeout in
 * [election_ticks, 2 * election_ticks) drawn from the instance PRNG (seeded
 * by config.seed); the leader sends heartbeats every heartbeat_ticks.
 */
#ifndef GOULETTE_RAFT_H
#define GOULETTE_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "log.h"

typedef uint64_t raft_id;    /* member id; 0 means "none" */
typedef uint64_t raft_term;  /* 0 before the first election */
typedef uint64_t raft_index; /* 1-based log index; 0 means "none" */

/* ------------------------------------------------------------------------
 * Log entries and configurations
 * ------------------------------------------------------------------------ */

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 1,  /* a state-machine command */
    RAFT_ENTRY_CONF = 2,    /* data is an encoded struct raft_configuration */
    RAFT_ENTRY_BARRIER = 3, /* no data: the no-op a new leader appends (§3.6.2
                               / paper §8) and the marker of transfers */
};

struct raft_entry
{
    raft_term term;
    raft_index index;
    enum raft_entry_type type;
    struct goulette_buf data; /* owned by whoever owns the entry array */
};

enum raft_role {
    RAFT_VOTER = 1,   /* counts towards quorums, may become leader */
    RAFT_LEARNER = 2, /* receives the log, never votes or campaigns */
};

#define RAFT_ADDRESS_MAX 256 /* bytes, including the terminating NUL */

struct raft_server
{
    raft_id id;
    enum raft_role role;
    char address[RAFT_ADDRESS_MAX]; /* peer address "host:port"; opaque to
                                       the core, carried for the runtime */
};

/* A cluster membership.  Servers are kept sorted by id, ids are unique. */
struct raft_configuration
{
    unsigned n;                  /* number of servers */
    struct raft_server *servers; /* owned; raft_configuration_fini frees */
};

void raft_configuration_init(struct raft_configuration *c);
void raft_configuration_fini(struct raft_configuration *c);

/* Add a server.  Errors: -EEXIST (id already present), -EINVAL (id 0,
 * address too long or empty), -ENOMEM. */
int raft_configuration_add(struct raft_configuration *c,
                           raft_id id,
                           const char *address,
                           enum raft_role role);

/* Returns the server with @id or NULL.  Borrowed: valid until @c changes. */
const struct raft_server *raft_configuration_get(
    const struct raft_configuration *c,
    raft_id id);

/* Deep copy into an initialized, empty @dst.  Errors: -ENOMEM. */
int raft_configuration_copy(const struct raft_configuration *src,
                            struct raft_configuration *dst);

/* Encode for a RAFT_ENTRY_CONF entry or snapshot metadata (a versioned,
 * self-delimiting little format of the core's own).  @buf is returned; the
 * caller frees buf->base with free().  Errors: -ENOMEM. */
int raft_configuration_encode(const struct raft_configuration *c,
                              struct goulette_buf *buf);

/* Decode into an initialized, empty @c.  Bytes come from disk or the
 * network: never trusted.  Errors: -EBADMSG (malformed), -ENOMEM. */
int raft_configuration_decode(const struct goulette_buf *buf,
                              struct raft_configuration *c);

/* ------------------------------------------------------------------------
 * Persistent state
 * ------------------------------------------------------------------------ */

struct raft_hard_state
{
    raft_term term;    /* current term */
    raft_id vote;      /* voted for in term, or 0 */
    raft_index commit; /* highest index known committed (an optimisation:
                          losing it is safe) */
};

/* Metadata of a state-machine snapshot. */
struct raft_snapshot_meta
{
    raft_index index;               /* last entry the snapshot includes */
    raft_term term;                 /* term of that entry */
    struct raft_configuration conf; /* membership as of index */
    raft_index conf_index;          /* index of the entry holding conf */
    uint64_t size;                  /* bytes of snapshot data */
};

/* ------------------------------------------------------------------------
 * Messages
 * ------------------------------------------------------------------------ */

enum raft_msg_type {
    RAFT_MSG_APPEND = 1,      /* AppendEntries (and heartbeats with
                                 n_entries == 0, see RAFT_MSG_HEARTBEAT) */
    RAFT_MSG_APPEND_RESP = 2, /* reject + hint on a log mismatch */
    RAFT_MSG_VOTE = 3,        /* RequestVote */
    RAFT_MSG_VOTE_RESP = 4,
    RAFT_MSG_PREVOTE = 5, /* §9.6: term is the term the candidate
                             would campaign in; changes no state */
    RAFT_MSG_PREVOTE_RESP = 6,
    RAFT_MSG_HEARTBEAT = 7, /* leader liveness, commit and ReadIndex
                               round (context) */
    RAFT_MSG_HEARTBEAT_RESP = 8,
    RAFT_MSG_SNAPSHOT = 9, /* one chunk of InstallSnapshot */
    RAFT_MSG_SNAPSHOT_RESP = 10,
    RAFT_MSG_TIMEOUT_NOW = 11, /* leadership transfer: campaign now (§3.10) */
    RAFT_MSG_PROPOSE = 12,     /* a follower forwards proposals */
    RAFT_MSG_PROPOSE_RESP = 13,
    RAFT_MSG_READ_INDEX = 14, /* a follower forwards a ReadIndex request */
    RAFT_MSG_READ_INDEX_RESP = 15,
};

struct raft_snapshot_chunk
{
    raft_index index;         /* identity of the snapshot ... */
    raft_term term;           /* ... being sent */
    uint64_t size;            /* total bytes */
    uint64_t offset;          /* of this chunk */
    bool last;                /* offset + data.len == size */
    struct goulette_buf data; /* see rule 3 above */
    struct goulette_buf conf; /* encoded configuration of the snapshot,
                                 set on the last chunk */
    raft_index conf_index;
};

/* One flat message, like etcd's raftpb.Message: which fields are meaningful
 * depends on type; the rest are zero.  The runtime's codec (protobuf-c)
 * carries every field. */
struct raft_message
{
    enum raft_msg_type type;
    raft_id from;
    raft_id to;
    raft_term term; /* sender's current term (0 for forwarded requests,
                       which are not term-checked) */

    /* APPEND / VOTE / PREVOTE: the log position.  APPEND: index and term of
     * the entry preceding entries[].  VOTE/PREVOTE: the candidate's last
     * index and term. */
    raft_index log_index;
    raft_term log_term;
    raft_index commit; /* APPEND, HEARTBEAT: leader's commit index */

    struct raft_entry *entries; /* APPEND, PROPOSE: borrowed from the
                                   sender's storage for the message's
                                   lifetime */
    unsigned n_entries;

    /* Responses.  APPEND_RESP: index = highest index known to match (on
     * success) or the rejected log_index (on reject), reject_hint = the
     * follower's hint for fast back-off (§3.5: the last index of its log or
     * the first index of the conflicting term), hint_term = that term.
     * VOTE_RESP / PREVOTE_RESP: reject = vote not granted.
     * SNAPSHOT_RESP: index = snapshot index, reject_hint = next offset the
     * follower expects. */
    raft_index index;
    bool reject;
    raft_index reject_hint;
    raft_term hint_term;

    /* HEARTBEAT(_RESP), READ_INDEX(_RESP), PROPOSE(_RESP): an opaque
     * context echoed back: the ReadIndex round id on heartbeats, the
     * caller's request ids on forwarded requests. */
    uint64_t context;

    /* VOTE / PREVOTE: set by a transfer target so that voters grant it even
     * while they still hear from the current leader (§3.10, §4.2.3). */
    bool transfer;

    /* PROPOSE_RESP / READ_INDEX_RESP: 0 or a negative error code
     * (GOULETTE_ENOTLEADER, GOULETTE_ETRANSFER, ...); PROPOSE_RESP carries
     * (index, log_term) of the appended first entry on success. */
    int rv;

    struct raft_snapshot_chunk snapshot; /* SNAPSHOT */
};

/* ------------------------------------------------------------------------
 * Events (input) and updates (output)
 * ------------------------------------------------------------------------ */

enum raft_event_type {
    RAFT_EVENT_START = 1,   /* once, first: what the runtime loaded */
    RAFT_EVENT_RECEIVE,     /* a message arrived from a peer */
    RAFT_EVENT_TICK,        /* one tick of logical time passed */
    RAFT_EVENT_PROPOSE,     /* append command(s) to the log */
    RAFT_EVENT_READ_INDEX,  /* start a linearizable read */
    RAFT_EVENT_PERSISTED,   /* entries up to (index, term) are durable */
    RAFT_EVENT_APPLIED,     /* entries up to index were applied */
    RAFT_EVENT_SNAPSHOT,    /* the runtime took a snapshot */
    RAFT_EVENT_CONF_CHANGE, /* leader: change membership */
    RAFT_EVENT_TRANSFER,    /* leader: transfer leadership; raft_step
                               returns GOULETTE_ENOTLEADER, GOULETTE_ETRANSFER
                               (one in progress) or GOULETTE_ENOTFOUND (the
                               target is not another voter) */
    RAFT_EVENT_CAMPAIGN,    /* campaign now (tests, single-node start) */
    RAFT_EVENT_UNREACHABLE, /* transport: a peer could not be reached */
};

enum raft_conf_change_type {
    RAFT_CONF_ADD_LEARNER = 1, /* add a new member as a learner */
    RAFT_CONF_PROMOTE = 2,     /* learner -> voter */
    RAFT_CONF_REMOVE = 3,      /* remove any member, the leader included */
};

struct raft_event
{
    enum raft_event_type type;
    union
    {
        struct
        {
            struct raft_hard_state hard_state;
            /* Snapshot the state machine was restored from, or index 0. */
            const struct raft_snapshot_meta *snapshot; /* borrowed */
            /* Persisted entries following the snapshot, in order.  On a
             * brand-new member bootstrapping a cluster, the runtime writes
             * entry 1 (term 1, RAFT_ENTRY_CONF, the initial configuration)
             * before START, on every member alike.  A joining member starts
             * empty and learns its configuration from the leader. */
            const struct raft_entry *entries; /* borrowed: the core copies */
            unsigned n_entries;
            raft_index applied; /* state machine's applied index */
        } start;
        struct
        {
            const struct raft_message *message; /* borrowed, except the
                                                   snapshot chunk data (see
                                                   update rules) */
        } receive;
        struct
        {
            uint64_t context; /* echoed in the result */
            enum raft_entry_type type;
            const struct goulette_buf *data; /* borrowed: the core copies */
            unsigned n;                      /* entries in one proposal */
        } propose;
        struct
        {
            uint64_t context; /* echoed in the matching raft_read */
        } read_index;
        struct
        {
            raft_index index; /* last durable entry ... */
            raft_term term;   /* ... and its term */
        } persisted;
        struct
        {
            raft_index index;
        } applied;
        struct
        {
            raft_index index;    /* <= applied index */
            uint64_t size;       /* bytes of snapshot data */
            raft_index trailing; /* entries to keep below index for
                                    followers that lag a little */
        } snapshot;
        struct
        {
            enum raft_conf_change_type type;
            raft_id id;
            const char *address; /* ADD_LEARNER only; borrowed */
            uint64_t context;    /* echoed in the proposal result */
        } conf_change;
        struct
        {
            raft_id to; /* 0: pick the most up-to-date voter */
        } transfer;
        struct
        {
            raft_id id;
        } unreachable;
    };
};

enum raft_state {
    RAFT_FOLLOWER = 1,
    RAFT_PRE_CANDIDATE = 2,
    RAFT_CANDIDATE = 3,
    RAFT_LEADER = 4,
};

/* The result of a proposal or conf change (raft_event.propose.context). */
struct raft_proposal
{
    uint64_t context;
    int rv;           /* 0, or GOULETTE_ENOLEADER / ENOTLEADER / ETRANSFER /
                         ECONFCHANGE / -EINVAL / -ENOMEM; also -ENOBUFS
                         (max_uncommitted_bytes reached, retry later) and,
                         for conf changes, -EEXIST (already a member),
                         GOULETTE_ENOTFOUND (no such member).  A proposal
                         forwarded to the leader whose PROPOSE_RESP is lost
                         gets no result: the caller times out. */
    raft_index index; /* of the first entry, when rv == 0 */
    raft_term term;   /* its term, when rv == 0 */
};

/* The result of a ReadIndex request (raft_event.read_index.context). */
struct raft_read
{
    uint64_t context;
    int rv;           /* 0, or GOULETTE_ENOLEADER / ENOTLEADER / ... */
    raft_index index; /* serve once applied >= index */
};

enum raft_update_flags {
    RAFT_UPDATE_HARD_STATE = 1 << 0, /* hard_state changed: persist it */
    RAFT_UPDATE_STATE = 1 << 1,      /* state/leader/term changed */
    RAFT_UPDATE_CONF = 1 << 2,       /* the active configuration changed */
    RAFT_UPDATE_COMPACT = 1 << 3,    /* storage may drop entries < compact */
};

struct raft_update
{
    unsigned flags; /* enum raft_update_flags */

    struct raft_hard_state hard_state;

    const struct raft_snapshot_meta *snapshot_install; /* rule 1, or NULL */
    const struct raft_snapshot_chunk *snapshot_chunk;  /* rule 2, or NULL */

    struct raft_entry *entries; /* rule 2 */
    unsigned n_entries;

    struct raft_message *messages; /* rule 3 */
    unsigned n_messages;

    struct raft_entry *committed; /* rule 5 */
    unsigned n_committed;

    struct raft_proposal *proposals; /* rule 6 */
    unsigned n_proposals;
    struct raft_read *reads;
    unsigned n_reads;

    /* RAFT_UPDATE_STATE: the soft state after this step. */
    enum raft_state state;
    raft_id leader; /* 0 when unknown */
    raft_term term;

    /* RAFT_UPDATE_CONF: the active configuration (latest in the log, §4.1),
     * borrowed. */
    const struct raft_configuration *conf;

    raft_index compact; /* RAFT_UPDATE_COMPACT */
};

/* ------------------------------------------------------------------------
 * The instance
 * ------------------------------------------------------------------------ */

struct raft_config
{
    raft_id id;                  /* this member; nonzero */
    uint64_t seed;               /* PRNG seed for election timeouts */
    unsigned election_ticks;     /* minimum election timeout; default 10 */
    unsigned heartbeat_ticks;    /* default 1; must be < election_ticks */
    bool pre_vote;               /* default true (§9.6) */
    bool check_quorum;           /* default true (§6.2) */
    unsigned max_inflight;       /* AppendEntries in flight per follower;
                                    default 256 */
    uint64_t max_inflight_bytes; /* per follower; default 16 MiB */
    uint64_t max_append_bytes;   /* per AppendEntries message; default 1 MiB */
    uint64_t snapshot_chunk_bytes;  /* default 1 MiB */
    uint64_t max_uncommitted_bytes; /* leader refuses proposals past this;
                                       default 64 MiB */
    const struct goulette_log *log; /* may be NULL; borrowed for the
                                       instance's lifetime */
    unsigned planted_bugs; /* bitmask of RAFT_BUG_*; honoured only by the
                              test build of the core (raft_core_bugs, built
                              with -DRAFT_PLANTED_BUGS), ignored otherwise */
};

/* Deliberate protocol bugs, for proving that the simulator's checkers catch
 * them (tests/sim).  Never compiled into the daemon. */
enum raft_planted_bug {
    RAFT_BUG_COMMIT_OLD_TERM = 1 << 0,   /* commit previous-term entries by
                                            counting replicas (Figure 8) */
    RAFT_BUG_VOTE_NO_LOG_CHECK = 1 << 1, /* grant votes without the
                                            up-to-date check */
    RAFT_BUG_READ_NO_QUORUM = 1 << 2,    /* serve ReadIndex without the
                                            heartbeat round */
    RAFT_BUG_APPLY_TWICE = 1 << 3,       /* hand a committed entry to the
                                            runtime twice */
    RAFT_BUG_NO_PERSIST_VOTE = 1 << 4,   /* forget to persist the vote */
};

/* Fill @c with the defaults above (id and seed are zero). */
void raft_config_defaults(struct raft_config *c);

struct raft__impl; /* private to raft/ */

struct raft
{
    struct raft__impl *impl; /* owned */
};

/* Errors: -EINVAL (bad config), -ENOMEM.  On error nothing is left to clean
 * up. */
int raft_init(struct raft *r, const struct raft_config *config);
void raft_fini(struct raft *r);

/* Feed one event; fill @update (overwriting it) with the work to do.
 * Returns 0, or a negative error when the event itself is invalid (an event
 * before START, -EINVAL) or memory ran out (-ENOMEM), in which case the
 * instance is unchanged and @update is empty.  Protocol-level problems
 * (stale terms, malformed messages, proposals on a follower with no
 * leader) are not errors of raft_step: they are handled or reported through
 * @update.  (Precisely: -ENOMEM comes back only from START and SNAPSHOT,
 * which fail before changing anything; when memory runs out in the middle of
 * handling another event, what could not be allocated (a message, a
 * proposal or read result, a vote tally) is dropped, as a lossy network
 * would, the step returns 0 and its update carries every state change made,
 * so nothing durable is withheld; the failure is logged at ERROR.
 * RAFT_EVENT_SNAPSHOT fails with -EINVAL when its index is not applied or
 * not newer than the current snapshot; RAFT_EVENT_TRANSFER errors are listed
 * at the event type.) */
int raft_step(struct raft *r,
              const struct raft_event *event,
              struct raft_update *update);

/* Read-only views (valid until the next raft_step). */
enum raft_state raft_state(const struct raft *r);
raft_id raft_leader(const struct raft *r);
raft_term raft_current_term(const struct raft *r);
raft_index raft_commit_index(const struct raft *r);
raft_index raft_last_index(const struct raft *r);
const struct raft_configuration *raft_configuration(const struct raft *r);

/* The latest snapshot, taken (RAFT_EVENT_SNAPSHOT) or installed, or NULL
 * when there is none.  The runtime records it durably (with the compaction
 * the same step asks for) so that a restart finds the log and its snapshot
 * in agreement. */
const struct raft_snapshot_meta *raft_snapshot(const struct raft *r);

/* Progress of a follower as the leader sees it (for `cluster/` status and
 * goulettectl).  Errors: GOULETTE_ENOTLEADER, GOULETTE_ENOTFOUND. */
int raft_progress(const struct raft *r, raft_id id, raft_index *match);

const char *raft_state_name(enum raft_state s);
const char *raft_msg_type_name(enum raft_msg_type t);

#endif /* GOULETTE_RAFT_H */
