/* Helpers shared by the store driver tests (helpers.h). */
#include "helpers.h"

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *helper_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *dir = malloc(512);
    snprintf(dir, 512, "%s/goulette-store-XXXXXX", base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

static int rm_one(const char *path,
                  const struct stat *sb,
                  int flag,
                  struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void helper_rmdir(char *dir)
{
    if (dir == NULL) {
        return;
    }
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

struct store_sm *helper_open(const char *dir)
{
    struct store_sm_config cfg = {.path = dir};
    struct store_sm *sm = NULL;
    ck_assert_int_eq(store_sm_open(&cfg, &sm), 0);
    return sm;
}

int helper_apply(struct store_sm *sm, uint64_t index, struct store_cmd *cmd)
{
    struct goulette_buf buf;
    struct store_sm_result res;
    int rv;
    ck_assert_int_eq(store_cmd_encode(cmd, &buf), 0);
    rv = store_sm_apply(sm, index, 1, buf.base, buf.len, &res);
    free(buf.base);
    ck_assert_int_eq(rv, 0);
    ck_assert(!res.already_applied);
    store_sm_result_fini(&res);
    return res.rv;
}

void helper_workload(uint64_t i, struct store_cmd *cmd, char *scratch)
{
    static char *one[1];
    unsigned b = (unsigned)(i * 7 % 6);
    unsigned t = (unsigned)(i * 5 % 9);
    memset(cmd, 0, sizeof *cmd);
    cmd->timestamp_ns = 1720000000000000000LL + (int64_t)i * 1000;
    snprintf(scratch, 64, "broker%u", b);
    snprintf(scratch + 64, 64, "topic%u", t);
    snprintf(scratch + 128, 64, "host%u:%u", b, 5000 + (unsigned)(i % 3));
    cmd->broker_id = scratch;
    cmd->topic = scratch + 64;
    cmd->address = scratch + 128;
    switch (i % 10) {
    case 0:
    case 1:
    case 2:
        cmd->type = STORE_CMD_REGISTER_BROKER;
        break;
    case 3:
        cmd->type = STORE_CMD_KEEPALIVE_BROKER;
        break;
    case 4:
    case 5:
        cmd->type = STORE_CMD_GENERATE_TOPIC_REPLICAS;
        cmd->replica_count = 1 + (uint32_t)(i % 3);
        break;
    case 6:
        cmd->type = STORE_CMD_SET_BROKER_STATUS;
        cmd->status = (uint32_t)(i % 3);
        break;
    case 7:
        cmd->type = STORE_CMD_HANDLE_UNREACHABLE;
        cmd->replica_count = 2;
        one[0] = scratch;
        cmd->names = one;
        cmd->n_names = 1;
        break;
    case 8:
        cmd->type = STORE_CMD_UNREGISTER_BROKER;
        break;
    default:
        cmd->type = STORE_CMD_REMOVE_TOPIC;
        break;
    }
}

struct goulette_buf helper_dump(struct store_sm *sm)
{
    struct store_snap_export *e = NULL;
    struct goulette_buf out = {NULL, 0};
    struct goulette_buf chunk;
    int rv;
    ck_assert_int_eq(store_snap_export_begin(sm, 4096, &e), 0);
    while ((rv = store_snap_export_next(e, &chunk)) == 1) {
        out.base = realloc(out.base, out.len + chunk.len);
        memcpy((char *)out.base + out.len, chunk.base, chunk.len);
        out.len += chunk.len;
    }
    ck_assert_int_eq(rv, 0);
    store_snap_export_end(e);
    return out;
}
