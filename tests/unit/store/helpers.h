/* Helpers shared by the store driver tests: temporary directories, command
 * entries, and a byte dump of a store's whole state machine. */
#ifndef TEST_STORE_HELPERS_H
#define TEST_STORE_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include "goulette/buf.h"
#include "goulette/store.h"

/* A fresh directory under $TMPDIR (returned, free with helper_rmdir). */
char *helper_tmpdir(void);

/* Remove @dir recursively and free it. */
void helper_rmdir(char *dir);

/* Open a store at @dir, failing the test on error. */
struct store_sm *helper_open(const char *dir);

/* Encode @cmd and apply it as entry @index (term 1); returns the command's
 * result and fails the test if the entry could not be applied. */
int helper_apply(struct store_sm *sm, uint64_t index, struct store_cmd *cmd);

/* The @i-th command of a fixed, deterministic workload mixing every
 * command type over a few brokers and topics. */
void helper_workload(uint64_t i, struct store_cmd *cmd, char *scratch);

/* The whole snapshot stream of @sm (returned, free with free()). */
struct goulette_buf helper_dump(struct store_sm *sm);

#endif
