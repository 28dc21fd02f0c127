/* Private to store/: the state machine driver's instance, shared by sm.c
 * (open, apply, reads) and snap.c (snapshot export and install). */
#ifndef STORE_SM_H
#define STORE_SM_H

#include <stdbool.h>
#include <stdint.h>

#include "goulette/ldb.h"
#include "goulette/store.h"

#include "state.h"

struct store_sm
{
    struct store_ldb *db; /* owned when owns_db, else borrowed */
    bool owns_db;
    const struct goulette_log *log; /* borrowed */
    unsigned vnodes;                /* ring points per broker */
    struct store__state st;         /* the model; matches the 'S' keys */
    uint64_t applied_index;         /* as in the "Sa" record */
    uint64_t applied_term;
};

/* Fill @st (initialised, empty) and the applied index/term from the 'S'
 * keys of @db at @snap (NULL: latest).
 * Errors: GOULETTE_ECORRUPT, -EIO, -ENOMEM. */
int store__sm_load(struct store_ldb *db,
                   const struct store_ldb_snapshot *snap,
                   struct store__state *st,
                   uint64_t *applied_index,
                   uint64_t *applied_term);

/* Mount path of state machine key @key (borrowed), or NULL for keys that
 * are not files (applied index, revision).  Returned, free with free();
 * *@oom is set when allocation failed. */
char *store__sm_key_path(const char *key, size_t klen, bool *oom);

#endif /* STORE_SM_H */
