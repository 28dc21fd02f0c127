/* The goulettefs state machine: Goulette's metadata (topics, brokers, the
 * operation log and its counter) in a node's LevelDB, changed only by
 * commands that Raft replicates.  docs/store.md documents the key schema,
 * JSON formats, commands, errors, revisions and the snapshot format.
 *
 * Threads: a struct store_sm belongs to one thread (the loop thread); none
 * of these functions lock.  Snapshot export (struct store_snap_export) may
 * run on a worker thread while the loop keeps applying: it reads a LevelDB
 * snapshot only. */
#ifndef GOULETTE_STORE_H
#define GOULETTE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "goulette/buf.h"
#include "goulette/log.h"

/* Directories of the mount. */
enum store_dir {
    STORE_DIR_TOPICS = 0,     /* topics/<topic> */
    STORE_DIR_BROKERS = 1,    /* brokers/<broker_id> */
    STORE_DIR_OPERATIONS = 2, /* operations/<id> */
    STORE_DIR_INCREMENT = 3,  /* increment/operation */
};

/* ---- Names -------------------------------------------------------------- */

/* Longest topic or broker id, in bytes (a file name). */
#define STORE_NAME_MAX 255

/* Check that @name (@len bytes, borrowed) can be a topic or broker id: a
 * non-empty, valid UTF-8 file name.
 * Errors: -EINVAL (empty, ".", "..", contains '/' or NUL, not UTF-8),
 * -ENAMETOOLONG (over STORE_NAME_MAX bytes). */
int store_name_check(const char *name, size_t len);

/* Check that @addr (@len bytes, borrowed) is "host:port" with a non-empty
 * host, a decimal port in 1..65535, and no NUL or whitespace.  IPv6 hosts
 * are written "[::1]:port".
 * Errors: -EINVAL. */
int store_address_check(const char *addr, size_t len);

/* ---- Commands ----------------------------------------------------------- */

/* Goulette's internal broker status values (goulette-sentinel.md §4.1);
 * these are the numbers stored in the JSON records. */
enum store_broker_status {
    STORE_BROKER_HEALTHY = 0,
    STORE_BROKER_SUSPICIOUS = 1,
    STORE_BROKER_DOWN = 2,
};

enum store_cmd_type {
    STORE_CMD_REGISTER_BROKER = 1,   /* broker_id, address, names=topics */
    STORE_CMD_UNREGISTER_BROKER = 2, /* broker_id */
    STORE_CMD_KEEPALIVE_BROKER = 3,  /* broker_id, address */
    STORE_CMD_SET_BROKER_STATUS = 4, /* broker_id, status */
    STORE_CMD_GENERATE_TOPIC_REPLICAS = 5, /* topic, replica_count */
    STORE_CMD_HANDLE_UNREACHABLE = 6,      /* topic, replica_count,
                                              names=unreachable broker ids */
    STORE_CMD_REMOVE_TOPIC = 7,            /* topic */
};

/* A command in plain C.  Fields a type does not use are ignored (NULL/0).
 * When the caller fills it for store_cmd_encode, every pointer is borrowed.
 * When store_cmd_decode fills it, every pointer is owned by the command and
 * freed by store_cmd_fini. */
struct store_cmd
{
    enum store_cmd_type type;
    int64_t timestamp_ns; /* proposer's clock, Unix ns; apply reads no other */
    char *broker_id;
    char *address;
    uint32_t status; /* enum store_broker_status */
    char *topic;
    uint32_t replica_count;
    bool exclusive; /* generate: -EEXIST if the topic already exists */
    char **names;   /* registered topics, or unreachable broker ids */
    size_t n_names;
    bool hint;           /* handle unreachable: a client's report, which
                            marks nobody down and is limited per topic */
    int64_t interval_ns; /* hint: the topic's assignment must be at least
                            this old (command timestamp - version) */
};

/* Serialise @cmd (borrowed) as the data of a Raft entry.  @out->base is
 * returned, caller frees with free().
 * Errors: -EINVAL (unknown type), -ENOMEM. */
int store_cmd_encode(const struct store_cmd *cmd, struct goulette_buf *out);

/* Parse entry data (@data, @len bytes, borrowed) into @cmd (out; owned
 * strings, free with store_cmd_fini).  Only the wire format is checked here;
 * names are checked by apply.
 * Errors: -EBADMSG (not a command), -ENOMEM. */
int store_cmd_decode(const void *data, size_t len, struct store_cmd *cmd);

/* Free what store_cmd_decode allocated. */
void store_cmd_fini(struct store_cmd *cmd);

/* ---- Values written through the mount ------------------------------------ */

/* Largest value accepted from a write, in bytes. */
#define STORE_VALUE_MAX 65536

/* Replica count of a topic created without a value (touch): what every
 * Goulette client asks for. */
#define STORE_DEFAULT_REPLICA_COUNT 3

/* Verdicts of store_value_classify (errors are negative). */
enum store_value_state {
    STORE_VALUE_INCOMPLETE = 0, /* a valid prefix: more bytes may follow */
    STORE_VALUE_COMPLETE = 1,   /* a whole value */
};

/* What happened to a file of the mount. */
enum store_value_op {
    STORE_VALUE_WRITE = 1,  /* a value was written (@buf, @len) */
    STORE_VALUE_CREATE = 2, /* created and closed without a write */
    STORE_VALUE_REMOVE = 3, /* unlinked */
};

/* Classify the bytes written so far (@buf, @len, borrowed) to a file of
 * @dir.  Accepted values, surrounding whitespace allowed:
 *   topics/<t>   a replica count ("3"), or a JSON object with
 *                "replica_count" and/or "unreachable_brokers" (a topic
 *                record as `cat` shows it is accepted too);
 *   brokers/<b>  an address ("host:port"), or a JSON object with "address"
 *                (and optionally "topics"), or with "status" (0, 1, 2).
 * Text is complete at a newline, JSON when the object closes.  Pure.
 * Errors: -EINVAL (cannot become valid), -EFBIG (over STORE_VALUE_MAX),
 * -EROFS (operations/ and increment/ are read-only). */
int store_value_classify(enum store_dir dir, const void *buf, size_t len);

/* Build the command for @op on file @dir/@name (@name, @buf borrowed):
 *   topics   WRITE: generate (a count) or handle unreachable (a JSON list);
 *            CREATE: generate with STORE_DEFAULT_REPLICA_COUNT;
 *            REMOVE: remove topic;
 *   brokers  WRITE: register when @new_file, else keepalive (an address),
 *            or set status (a JSON status); CREATE: -EINVAL (no address);
 *            REMOVE: unregister.
 * @new_file: the name was created through the mount and did not exist:
 * the command then fails with -EEXIST if the record exists when it applies
 * (register, exclusive generate).  @ts_ns is the proposer's clock.
 * On success @cmd (out) owns its strings: free with store_cmd_fini.
 * Errors: -EINVAL, -ENAMETOOLONG, -EFBIG, -EROFS, -ENOMEM. */
int store_value_command(enum store_dir dir,
                        const char *name,
                        enum store_value_op op,
                        const void *buf,
                        size_t len,
                        bool new_file,
                        int64_t ts_ns,
                        struct store_cmd *cmd);

/* ---- Changes, as the mount shows them ----------------------------------- */

enum store_change_kind {
    STORE_CHANGE_CREATE = 0,
    STORE_CHANGE_MODIFY = 1,
    STORE_CHANGE_DELETE = 2,
};

struct store_change
{
    enum store_change_kind kind;
    char *path; /* owned; relative to the mount root, e.g. "topics/orders",
                   "operations/12", "increment/operation", "brokers/b1" */
};

/* An ordered list of changes, in the order they happened. */
struct store_changes
{
    struct store_change *items; /* owned */
    size_t n;
    size_t cap;
};

/* Free every change; the list is left empty and reusable. */
void store_changes_fini(struct store_changes *changes);

/* ---- The state machine -------------------------------------------------- */

struct store_sm;  /* opaque */
struct store_ldb; /* include/goulette/ldb.h */

struct store_sm_config
{
    /* The member's database, already open (store_ldb_open) and shared with
     * the Raft runtime: borrowed until store_sm_close, which leaves it
     * open.  When NULL, the store opens @path itself and owns it. */
    struct store_ldb *db;
    const char *path; /* LevelDB directory, used when db is NULL; borrowed */
    const struct goulette_log *log; /* borrowed until store_sm_close; may be
                                       NULL */
    unsigned vnodes; /* ring points per broker; 0 means STORE_RING_VNODES
                        (150).  Every node of a cluster must agree. */
};

/* Open the state machine on @config->db, or on the LevelDB at
 * @config->path (created if missing); check the format version (writing it
 * into a new database) and load the state machine into memory.  *@out is
 * returned, caller frees with store_sm_close.
 * Errors: -ENOMEM, -EINVAL (bad config), -EIO (LevelDB I/O error),
 * GOULETTE_ECORRUPT (unreadable database or records),
 * GOULETTE_EVERSION (written by an unknown format version). */
int store_sm_open(const struct store_sm_config *config, struct store_sm **out);

/* Free the state machine, and close the database if the store opened it.
 * NULL is a no-op. */
void store_sm_close(struct store_sm *sm);

/* Result of applying one entry. */
struct store_sm_result
{
    int rv;               /* the command's result: 0, or the rejection (-EINVAL,
                             -ENOENT, -EEXIST, -ENAMETOOLONG, -EBADMSG,
                             GOULETTE_ENOBROKERS); identical on every node */
    bool already_applied; /* index <= applied index: nothing happened */
    uint64_t revision;    /* store-wide revision after the entry */
    struct store_changes changes; /* owned; store_sm_result_fini */
};

/* Free the changes in @res. */
void store_sm_result_fini(struct store_sm_result *res);

/* Apply the Raft entry @index / @term whose data is @data (@len bytes,
 * borrowed; len 0 is a no-op entry that only advances the applied index).
 * The state change and the applied index are written in one synchronous
 * LevelDB batch, so an entry is applied exactly once across crashes.  An
 * index at or below the applied index is ignored (res->already_applied).
 * A rejected command changes nothing but the applied index.
 * Returns 0 when the entry has been applied (see res->rv); on a negative
 * return nothing was applied and memory is unchanged (the caller should
 * stop: the node can no longer apply).  @res is out.
 * Errors: -EIO (LevelDB write failed), -ENOMEM. */
int store_sm_apply(struct store_sm *sm,
                   uint64_t index,
                   uint64_t term,
                   const void *data,
                   size_t len,
                   struct store_sm_result *res);

/* Testing hook (crash simulation): after @n more successful LevelDB
 * writes, every write fails with -EIO without reaching the disk, as if the
 * process had died just before it.  A negative @n disables the hook. */
void store_sm_fail_writes_after(struct store_sm *sm, long n);

/* Index and term of the last applied entry (0, 0 for a new store). */
uint64_t store_sm_applied_index(const struct store_sm *sm);
uint64_t store_sm_applied_term(const struct store_sm *sm);

/* Store-wide revision: the number of applied commands that changed state. */
uint64_t store_sm_revision(const struct store_sm *sm);

/* Per-key metadata, etcd-style. */
struct store_stat
{
    uint64_t create_revision; /* store revision that created the key */
    uint64_t mod_revision;    /* store revision of its last change */
    uint64_t version;         /* number of changes since creation (1..) */
    int64_t mtime_ns;         /* command timestamp of its last change */
    size_t size;              /* bytes of the file: JSON text plus '\n' */
};

/* Read the file @dir/@name (@name borrowed): its JSON text, newline
 * terminated, as the mount shows it.  @out->base is returned, caller frees
 * with free().  @st (out, may be NULL) gets the key's metadata.
 * Errors: -ENOENT, -ENOMEM, -EIO, GOULETTE_ECORRUPT. */
int store_sm_read(struct store_sm *sm,
                  enum store_dir dir,
                  const char *name,
                  struct goulette_buf *out,
                  struct store_stat *st);

/* Metadata only (cheaper than store_sm_read for topics and brokers).
 * Errors: -ENOENT, -EIO, GOULETTE_ECORRUPT. */
int store_sm_stat(struct store_sm *sm,
                  enum store_dir dir,
                  const char *name,
                  struct store_stat *st);

/* List the names of @dir in order (topics, brokers: byte order;
 * operations: numeric order), starting after @after (borrowed; NULL starts
 * at the beginning), calling @cb for each.  @cb gets @arg and the name
 * (borrowed for the call) and returns non-zero to stop the listing; it
 * must not apply entries.
 * Returns 0 at the end, the callback's non-zero value if it stopped, or:
 * Errors: -EIO, -EINVAL (bad @after for operations). */
int store_sm_list(struct store_sm *sm,
                  enum store_dir dir,
                  const char *after,
                  int (*cb)(void *arg, const char *name),
                  void *arg);

/* Number of names in @dir. */
size_t store_sm_count(const struct store_sm *sm, enum store_dir dir);

/* One replica of a topic, borrowed from the store. */
struct store_replica
{
    const char *broker_id;
    const char *address;
    int status; /* status stored in the topic record */
};

/* A topic's record.  Every pointer is borrowed from the store and valid
 * until the next store_sm_apply or store_snap_install_commit. */
struct store_topic_view
{
    const char *topic;
    const struct store_replica *replicas; /* leader first */
    size_t n_replicas;
    uint32_t replica_count; /* requested count */
    int64_t version;        /* assignment version, Unix ns */
    int64_t timestamp;      /* Unix s of the assignment */
};

/* Look up @topic (borrowed).  Errors: -ENOENT. */
int store_sm_topic_get(const struct store_sm *sm,
                       const char *topic,
                       struct store_topic_view *out);

/* A broker's record, borrowed like store_topic_view. */
struct store_broker_view
{
    const char *broker_id;
    const char *address;
    int status;                /* enum store_broker_status */
    const char *const *topics; /* topics named at registration */
    size_t n_topics;
    int64_t updated_ns; /* command timestamp of the last change */
};

/* Look up broker @id (borrowed).  Errors: -ENOENT. */
int store_sm_broker_get(const struct store_sm *sm,
                        const char *id,
                        struct store_broker_view *out);

/* ---- Snapshots ---------------------------------------------------------- */

/* Streams the whole state machine key space ('S'), as of one LevelDB
 * snapshot, in chunks of at most chunk_max bytes. */
struct store_snap_export;

/* Begin an export of @sm's current state.  Entries applied afterwards are
 * not in it.  *@out is returned, free with store_snap_export_end, which
 * must come before store_sm_close.  @chunk_max >= 64.
 * Errors: -EINVAL, -ENOMEM. */
int store_snap_export_begin(struct store_sm *sm,
                            size_t chunk_max,
                            struct store_snap_export **out);

/* Index and term of the last entry included in the export. */
uint64_t store_snap_export_index(const struct store_snap_export *e);
uint64_t store_snap_export_term(const struct store_snap_export *e);

/* Produce the next chunk in @chunk (out; borrowed from the export until the
 * next call).  Returns 1 with a chunk, 0 at the end of the stream.
 * Errors: -EIO (LevelDB read error), -ENOMEM. */
int store_snap_export_next(struct store_snap_export *e,
                           struct goulette_buf *chunk);

/* Release the export (and its LevelDB snapshot).  NULL is a no-op. */
void store_snap_export_end(struct store_snap_export *e);

/* Stages a received stream; nothing is visible until commit. */
struct store_snap_install;

/* Begin installing a stream into @sm.  *@out is returned, free with
 * store_snap_install_commit or store_snap_install_abort.
 * Errors: -ENOMEM. */
int store_snap_install_begin(struct store_sm *sm,
                             struct store_snap_install **out);

/* Feed the next piece of the stream (@data, @len bytes, borrowed; pieces
 * may be cut anywhere).
 * Errors: GOULETTE_ECORRUPT (malformed stream), GOULETTE_EVERSION (unknown
 * stream format), -ENOMEM.  After an error only abort is allowed. */
int store_snap_install_feed(struct store_snap_install *in,
                            const void *data,
                            size_t len);

/* Check the complete stream (checksum, records) and replace the state
 * machine with it in one LevelDB batch, then rebuild memory.  @changes
 * (out) lists what differs between the old and the new state (creates,
 * modifies, deletes in mount path order).  Frees @in whatever the result;
 * on error nothing changed.
 * Errors: GOULETTE_ECORRUPT (truncated stream, bad checksum, bad records),
 * -EIO (LevelDB write failed), -ENOMEM. */
int store_snap_install_commit(struct store_snap_install *in,
                              struct store_changes *changes);

/* Drop a staged stream; the store is unchanged.  NULL is a no-op. */
void store_snap_install_abort(struct store_snap_install *in);

#endif /* GOULETTE_STORE_H */
