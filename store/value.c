/* Values written through the mount: classify the bytes of a write and turn
 * a finished write, a bare create or an unlink into a command.  Pure: no
 * I/O and no state; whether the command applies is decided by apply. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "goulette/store.h"

/* Trim ASCII whitespace around @buf; returns the trimmed length and sets
 * *@start. */
static size_t trim(const char *buf, size_t len, const char **start)
{
    while (len > 0 && isspace((unsigned char)buf[0])) {
        buf++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)buf[len - 1])) {
        len--;
    }
    *start = buf;
    return len;
}

/* A replica count: 1..STORE_REPLICA_COUNT_MAX (1024), decimal. */
static int parse_count(const char *s, size_t len, uint32_t *out)
{
    uint32_t v = 0;
    if (len == 0 || len > 4) {
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -EINVAL;
        }
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v == 0 || v > 1024) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* Can @s (@len bytes, trimmed) still become a value of @dir?  Only digits
 * for a count, only address characters for an address. */
static bool text_prefix_ok(enum store_dir dir, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (dir == STORE_DIR_TOPICS ? !isdigit(c) : (c <= ' ' || c == 0x7F)) {
            return false;
        }
    }
    return true;
}

static int text_check(enum store_dir dir, const char *s, size_t len)
{
    uint32_t rc;
    if (dir == STORE_DIR_TOPICS) {
        return parse_count(s, len, &rc);
    }
    return store_address_check(s, len);
}

int store_value_classify(enum store_dir dir, const void *buf, size_t len)
{
    const char *raw = buf;
    const char *s;
    size_t n;
    json_error_t err;
    json_t *j;

    if (dir != STORE_DIR_TOPICS && dir != STORE_DIR_BROKERS) {
        return -EROFS;
    }
    if (len > STORE_VALUE_MAX) {
        return -EFBIG;
    }
    if (memchr(raw, '\0', len) != NULL) {
        return -EINVAL;
    }
    n = trim(raw, len, &s);
    if (n == 0) {
        return STORE_VALUE_INCOMPLETE;
    }
    if (s[0] == '{') {
        j = json_loadb(s, n, JSON_REJECT_DUPLICATES, &err);
        if (j != NULL) {
            json_decref(j);
            return STORE_VALUE_COMPLETE;
        }
        return json_error_code(&err) == json_error_premature_end_of_input
                   ? STORE_VALUE_INCOMPLETE
                   : -EINVAL;
    }
    if (!text_prefix_ok(dir, s, n) || memchr(s, '\n', n) != NULL) {
        return -EINVAL;
    }
    /* A text value is whole once a newline follows it. */
    if (memchr(s + n, '\n', (size_t)(raw + len - (s + n))) == NULL) {
        return STORE_VALUE_INCOMPLETE;
    }
    return text_check(dir, s, n) == 0 ? STORE_VALUE_COMPLETE : -EINVAL;
}

static int dup_into(char **out, const char *s, size_t len)
{
    *out = malloc(len + 1);
    if (*out == NULL) {
        return -ENOMEM;
    }
    memcpy(*out, s, len);
    (*out)[len] = '\0';
    return 0;
}

/* Copy the strings of JSON array @a (NULL: none) into cmd->names. */
static int names_from(json_t *a, struct store_cmd *cmd)
{
    size_t n = json_array_size(a);
    if (a != NULL && !json_is_array(a)) {
        return -EINVAL;
    }
    if (n == 0) {
        return 0;
    }
    cmd->names = calloc(n, sizeof *cmd->names);
    if (cmd->names == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(a, i);
        int rv;
        if (!json_is_string(v)) {
            return -EINVAL;
        }
        rv = dup_into(&cmd->names[i], json_string_value(v),
                      json_string_length(v));
        if (rv != 0) {
            return rv;
        }
        cmd->n_names++;
    }
    return 0;
}

/* A JSON field that, when present, must name this very record. */
static int same_name(json_t *o, const char *field, const char *name)
{
    json_t *v = json_object_get(o, field);
    if (v == NULL) {
        return 0;
    }
    return json_is_string(v) && strcmp(json_string_value(v), name) == 0
               ? 0
               : -EINVAL;
}

static int topic_json(json_t *o,
                      const char *name,
                      bool new_file,
                      struct store_cmd *cmd)
{
    json_t *rc = json_object_get(o, "replica_count");
    json_t *unreachable = json_object_get(o, "unreachable_brokers");
    int rv = same_name(o, "topic", name);
    if (rv != 0) {
        return rv;
    }
    if (rc != NULL) {
        if (!json_is_integer(rc) || json_integer_value(rc) < 0 ||
            json_integer_value(rc) > 1024) {
            return -EINVAL;
        }
        cmd->replica_count = (uint32_t)json_integer_value(rc);
    }
    if (unreachable != NULL) {
        cmd->type = STORE_CMD_HANDLE_UNREACHABLE;
        return names_from(unreachable, cmd);
    }
    if (rc == NULL || cmd->replica_count == 0) {
        return -EINVAL;
    }
    cmd->type = STORE_CMD_GENERATE_TOPIC_REPLICAS;
    cmd->exclusive = new_file;
    return 0;
}

static int broker_json(json_t *o,
                       const char *name,
                       bool new_file,
                       struct store_cmd *cmd)
{
    json_t *addr = json_object_get(o, "address");
    json_t *status = json_object_get(o, "status");
    int rv = same_name(o, "broker_id", name);
    if (rv != 0) {
        return rv;
    }
    if (addr == NULL && status != NULL) {
        if (!json_is_integer(status) || json_integer_value(status) < 0 ||
            json_integer_value(status) > 2) {
            return -EINVAL;
        }
        cmd->type = STORE_CMD_SET_BROKER_STATUS;
        cmd->status = (uint32_t)json_integer_value(status);
        return 0;
    }
    if (!json_is_string(addr)) {
        return -EINVAL;
    }
    rv = store_address_check(json_string_value(addr), json_string_length(addr));
    if (rv == 0) {
        rv = dup_into(&cmd->address, json_string_value(addr),
                      json_string_length(addr));
    }
    if (rv != 0) {
        return rv;
    }
    if (new_file) {
        cmd->type = STORE_CMD_REGISTER_BROKER;
        return names_from(json_object_get(o, "topics"), cmd);
    }
    cmd->type = STORE_CMD_KEEPALIVE_BROKER;
    return 0;
}

static int from_write(enum store_dir dir,
                      const char *name,
                      const char *buf,
                      size_t len,
                      bool new_file,
                      struct store_cmd *cmd)
{
    const char *s;
    size_t n = trim(buf, len, &s);
    json_t *o;
    int rv;

    if (len > STORE_VALUE_MAX) {
        return -EFBIG;
    }
    if (n == 0 || memchr(buf, '\0', len) != NULL) {
        return -EINVAL;
    }
    if (s[0] == '{') {
        o = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(o)) {
            json_decref(o);
            return -EINVAL;
        }
        rv = dir == STORE_DIR_TOPICS ? topic_json(o, name, new_file, cmd)
                                     : broker_json(o, name, new_file, cmd);
        json_decref(o);
        return rv;
    }
    if (dir == STORE_DIR_TOPICS) {
        cmd->type = STORE_CMD_GENERATE_TOPIC_REPLICAS;
        cmd->exclusive = new_file;
        return parse_count(s, n, &cmd->replica_count);
    }
    rv = store_address_check(s, n);
    if (rv == 0) {
        rv = dup_into(&cmd->address, s, n);
    }
    cmd->type =
        new_file ? STORE_CMD_REGISTER_BROKER : STORE_CMD_KEEPALIVE_BROKER;
    return rv;
}

int store_value_command(enum store_dir dir,
                        const char *name,
                        enum store_value_op op,
                        const void *buf,
                        size_t len,
                        bool new_file,
                        int64_t ts_ns,
                        struct store_cmd *cmd)
{
    int rv;

    memset(cmd, 0, sizeof *cmd);
    if (dir != STORE_DIR_TOPICS && dir != STORE_DIR_BROKERS) {
        return -EROFS;
    }
    rv = store_name_check(name, strlen(name));
    if (rv != 0) {
        return rv;
    }
    cmd->timestamp_ns = ts_ns;
    rv = dir == STORE_DIR_TOPICS
             ? dup_into(&cmd->topic, name, strlen(name))
             : dup_into(&cmd->broker_id, name, strlen(name));
    if (rv == 0) {
        switch (op) {
        case STORE_VALUE_WRITE:
            rv = from_write(dir, name, buf, len, new_file, cmd);
            break;
        case STORE_VALUE_CREATE:
            cmd->type = STORE_CMD_GENERATE_TOPIC_REPLICAS;
            cmd->replica_count = STORE_DEFAULT_REPLICA_COUNT;
            cmd->exclusive = new_file;
            rv = dir == STORE_DIR_TOPICS ? 0 : -EINVAL;
            break;
        case STORE_VALUE_REMOVE:
            cmd->type = dir == STORE_DIR_TOPICS ? STORE_CMD_REMOVE_TOPIC
                                                : STORE_CMD_UNREGISTER_BROKER;
            break;
        default:
            rv = -EINVAL;
            break;
        }
    }
    if (rv != 0) {
        store_cmd_fini(cmd);
    }
    return rv;
}
