/* Private to store/: the pure apply core.  Given the model and a command,
 * change the model inside a transaction and report the command's result.
 * No I/O, clock or randomness: the command carries its timestamp. */
#ifndef STORE_APPLY_H
#define STORE_APPLY_H

#include "goulette/store.h"

#include "state.h"

/* Largest replica count a command may ask for. */
#define STORE_REPLICA_COUNT_MAX 1024

/* Apply @cmd (borrowed) to @st within @txn, which the caller initialised
 * with store__txn_init and the command's timestamp.
 *
 * Returns 0 when the command was judged: *@result is then 0 (accepted; the
 * transaction is finished and holds the mutations and changes, possibly
 * none, for the caller to write and then commit or roll back) or a
 * rejection (-EINVAL, -ENOENT, -EEXIST, -ENAMETOOLONG,
 * GOULETTE_ENOBROKERS; the transaction was rolled back and is empty).
 * Errors: -ENOMEM (rolled back; not a judgement, nothing to record). */
int store__apply(struct store__state *st,
                 const struct store_cmd *cmd,
                 struct store__txn *txn,
                 int *result);

#endif /* STORE_APPLY_H */
